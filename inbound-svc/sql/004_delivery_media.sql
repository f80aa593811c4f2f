-- Media deliveries (SPEC 6, 10): what a delivery sends besides its body.  content_type is "text"
-- or a media kind (image, video, audio, voice, document, sticker); a media delivery names the
-- media-svc resource whose signed download URL is asked for at each try (the URL expires, so it
-- is never stored), and body is then the caption.  Rows recorded before this migration are text.
ALTER TABLE deliveries
    ADD COLUMN content_type text NOT NULL DEFAULT 'text',
    ADD COLUMN media_id uuid;
