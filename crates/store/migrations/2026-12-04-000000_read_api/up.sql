-- The integrations centre's reads: archived errors show who set them aside, when and why
-- (`{"at", "by", "reason"}`); the integration shows which webhook token is set; lists page by
-- immutable keys, newest first.
ALTER TABLE import_errors ADD COLUMN archived JSONB;
ALTER TABLE integrations ADD COLUMN webhook_token_masked TEXT;

CREATE INDEX users_page ON users (tenant_id, created_at DESC, id DESC);
CREATE INDEX import_errors_page ON import_errors (tenant_id, first_seen_at DESC, id DESC);
CREATE INDEX history_page ON history (tenant_id, at DESC, id DESC);
CREATE INDEX error_events_by_event ON error_events (event_id);
