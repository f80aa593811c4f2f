-- Merged metadata stays within the 16 KiB of SPEC section 10, not only each request's part.
-- The constraint name "<field>__<rule>" lets the service answer 422 on that field.
ALTER TABLE customers ADD CONSTRAINT metadata__max_16384_bytes
    CHECK (octet_length(metadata::text) <= 16384) NOT VALID;
