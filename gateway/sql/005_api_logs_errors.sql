-- "Show me the errors" is the filter api_logs is read with most, and errors are rare: without an
-- index of their own, GET /logs?status=5xx walked the whole table (1-2 s at 6 million rows, and
-- past the statement timeout as the table grows).  A partial index holds only the rows with a
-- status of 400 or more, so the other rows cost nothing more to insert.
CREATE INDEX api_logs_errors ON api_logs (created_at DESC, id DESC) WHERE status >= 400;
