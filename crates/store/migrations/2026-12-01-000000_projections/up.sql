-- Projections of the event log and the projector's offsets. Every id is derived from the log
-- (see omie-sync-events::ids), every timestamp comes from an event, so a rebuild reproduces rows.

CREATE TABLE consumer_offsets (
    consumer_group TEXT NOT NULL,
    topic TEXT NOT NULL,
    partition INTEGER NOT NULL,
    next_offset BIGINT NOT NULL,
    PRIMARY KEY (consumer_group, topic, partition)
);

-- The integrations read model; ingress reads it (read-only) to resolve app keys.
CREATE TABLE integrations (
    tenant_id UUID PRIMARY KEY,
    integration_id UUID NOT NULL,
    app_key TEXT UNIQUE,
    app_secret_sealed TEXT,
    webhook_token_sealed TEXT,
    tag TEXT NOT NULL,
    template TEXT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    last_event_id UUID NOT NULL
);

-- Every applied event, raw: the source of error logs, related events and record timelines.
CREATE TABLE events (
    id UUID PRIMARY KEY,
    tenant_id UUID NOT NULL,
    event_type TEXT NOT NULL,
    subject TEXT,
    occurred_at TIMESTAMPTZ NOT NULL,
    recorded_at TIMESTAMPTZ NOT NULL,
    log_partition INTEGER NOT NULL,
    log_offset BIGINT NOT NULL,
    actor JSONB NOT NULL,
    payload JSONB NOT NULL
);
CREATE INDEX events_by_subject ON events (tenant_id, subject, log_offset);

-- Freshness of each Omie record, for the staleness rule (also for records that are not users).
CREATE TABLE omie_records (
    tenant_id UUID NOT NULL,
    omie_code BIGINT NOT NULL,
    source_changed_at TIMESTAMPTZ NOT NULL,
    last_event_id UUID NOT NULL,
    PRIMARY KEY (tenant_id, omie_code)
);

CREATE TABLE users (
    id UUID PRIMARY KEY,
    tenant_id UUID NOT NULL,
    omie_code BIGINT NOT NULL,
    name TEXT NOT NULL,
    email TEXT NOT NULL,
    document TEXT,
    active BOOLEAN NOT NULL,
    deactivation_reason TEXT,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    last_event_id UUID NOT NULL,
    UNIQUE (tenant_id, omie_code)
);
-- Not unique: the fold keeps one active user per e-mail, and a batch may move an address between
-- users in an order a per-row unique check would reject.
CREATE INDEX users_by_email ON users (tenant_id, email) WHERE active;

CREATE TABLE import_errors (
    id UUID PRIMARY KEY,
    tenant_id UUID NOT NULL,
    omie_code BIGINT,
    kind TEXT NOT NULL,
    name TEXT,
    email TEXT,
    message TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('open', 'resolved', 'archived')),
    occurrences INTEGER NOT NULL,
    first_event_id UUID NOT NULL,
    last_event_id UUID NOT NULL,
    first_seen_at TIMESTAMPTZ NOT NULL,
    last_seen_at TIMESTAMPTZ NOT NULL,
    resolved_at TIMESTAMPTZ
);
CREATE INDEX import_errors_by_record ON import_errors (tenant_id, omie_code);
CREATE INDEX import_errors_by_status ON import_errors (tenant_id, status, last_seen_at);

-- The log of an error: each failing event with its reason.
CREATE TABLE error_events (
    error_id UUID NOT NULL REFERENCES import_errors (id),
    event_id UUID NOT NULL,
    seen_at TIMESTAMPTZ NOT NULL,
    reason TEXT NOT NULL,
    PRIMARY KEY (error_id, event_id)
);

CREATE TABLE history (
    id UUID PRIMARY KEY,
    tenant_id UUID NOT NULL,
    at TIMESTAMPTZ NOT NULL,
    action TEXT NOT NULL,
    actor JSONB NOT NULL,
    subject TEXT,
    details JSONB NOT NULL,
    event_id UUID NOT NULL,
    log_offset BIGINT NOT NULL,
    ordinal SMALLINT NOT NULL
);
CREATE INDEX history_by_tenant ON history (tenant_id, log_offset, ordinal);

-- Every event of one Omie record with the projector's verdict.
CREATE TABLE record_timeline (
    id UUID PRIMARY KEY,
    tenant_id UUID NOT NULL,
    omie_code BIGINT NOT NULL,
    event_id UUID NOT NULL,
    event_type TEXT NOT NULL,
    verdict TEXT NOT NULL,
    detail TEXT,
    at TIMESTAMPTZ NOT NULL,
    log_partition INTEGER NOT NULL,
    log_offset BIGINT NOT NULL
);
CREATE INDEX record_timeline_by_record ON record_timeline (tenant_id, omie_code, log_offset);

-- Records the projector could not decode, kept with the reason (nothing acknowledged is dropped).
CREATE TABLE dead_letters (
    topic TEXT NOT NULL,
    log_partition INTEGER NOT NULL,
    log_offset BIGINT NOT NULL,
    record_key TEXT,
    payload BYTEA,
    reason TEXT NOT NULL,
    PRIMARY KEY (topic, log_partition, log_offset)
);
