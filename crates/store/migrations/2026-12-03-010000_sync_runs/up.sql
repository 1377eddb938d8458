-- Full syncs and their progress, folded from sync.* events and the rows they carried.
CREATE TABLE sync_runs (
    id UUID PRIMARY KEY,
    tenant_id UUID NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('running', 'completed', 'failed')),
    requested_by JSONB NOT NULL,
    started_at TIMESTAMPTZ NOT NULL,
    finished_at TIMESTAMPTZ,
    pages_done INTEGER NOT NULL,
    pages_total INTEGER,
    rows_seen INTEGER NOT NULL,
    users_created INTEGER NOT NULL,
    users_updated INTEGER NOT NULL,
    users_deactivated INTEGER NOT NULL,
    records_failed INTEGER NOT NULL,
    failure_reason TEXT,
    last_event_id UUID NOT NULL
);
CREATE INDEX sync_runs_by_tenant ON sync_runs (tenant_id, started_at DESC);
