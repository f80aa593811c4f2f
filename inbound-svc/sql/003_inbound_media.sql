-- Media fetched for inbound messages (SPEC 10 metadata.media.media_id): which media-svc resource
-- holds the file of a provider media id.  A webhook row retried after the fetch (the message
-- create failed, the worker died) finds the media here instead of fetching it again, so a retry
-- converges on one media resource.  The primary key decides between two workers that fetched
-- the same media at once: the first recorded id wins, and both messages use it.
CREATE TABLE inbound_media (
    provider          text NOT NULL CHECK (provider IN ('whatsapp', 'telegram')),
    provider_media_id text NOT NULL,
    media_id          uuid NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (provider, provider_media_id)
);
