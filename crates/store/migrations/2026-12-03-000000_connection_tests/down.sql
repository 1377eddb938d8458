ALTER TABLE integrations
    DROP COLUMN connection_status,
    DROP COLUMN connection_detail,
    DROP COLUMN connection_tested_at,
    DROP COLUMN connection_tested_by;
