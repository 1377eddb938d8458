-- The last connection test of each integration (integration.connection_tested).
ALTER TABLE integrations
    ADD COLUMN connection_status TEXT,
    ADD COLUMN connection_detail TEXT,
    ADD COLUMN connection_tested_at TIMESTAMPTZ,
    ADD COLUMN connection_tested_by JSONB;
