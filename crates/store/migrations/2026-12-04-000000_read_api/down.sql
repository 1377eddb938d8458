DROP INDEX error_events_by_event;
DROP INDEX history_page;
DROP INDEX import_errors_page;
DROP INDEX users_page;
ALTER TABLE integrations DROP COLUMN webhook_token_masked;
ALTER TABLE import_errors DROP COLUMN archived;
