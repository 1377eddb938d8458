-- The W3C trace id an event travelled with (its Kafka `traceparent` header), and on an import
-- error the trace of the event that last failed it: ops follow a row back to its trace.
ALTER TABLE events ADD COLUMN trace_id TEXT;
ALTER TABLE import_errors ADD COLUMN trace_id TEXT;
