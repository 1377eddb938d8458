-- The Omie records each full sync listed, for the reconciliation when it completes.
CREATE TABLE sync_seen (
    sync_id UUID NOT NULL,
    omie_code BIGINT NOT NULL,
    PRIMARY KEY (sync_id, omie_code)
);
