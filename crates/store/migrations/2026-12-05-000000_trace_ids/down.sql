ALTER TABLE import_errors DROP COLUMN trace_id;
ALTER TABLE events DROP COLUMN trace_id;
