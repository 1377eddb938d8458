//! Diesel's view of the tables created by `migrations/` (kept in step by the round-trip test).

diesel::table! {
    consumer_offsets (consumer_group, topic, partition) {
        consumer_group -> Text,
        topic -> Text,
        partition -> Int4,
        next_offset -> Int8,
    }
}

diesel::table! {
    integrations (tenant_id) {
        tenant_id -> Uuid,
        integration_id -> Uuid,
        app_key -> Nullable<Text>,
        app_secret_sealed -> Nullable<Text>,
        webhook_token_sealed -> Nullable<Text>,
        tag -> Text,
        template -> Text,
        updated_at -> Timestamptz,
        last_event_id -> Uuid,
        connection_status -> Nullable<Text>,
        connection_detail -> Nullable<Text>,
        connection_tested_at -> Nullable<Timestamptz>,
        connection_tested_by -> Nullable<Jsonb>,
        webhook_token_masked -> Nullable<Text>,
    }
}

diesel::table! {
    events (id) {
        id -> Uuid,
        tenant_id -> Uuid,
        event_type -> Text,
        subject -> Nullable<Text>,
        occurred_at -> Timestamptz,
        recorded_at -> Timestamptz,
        log_partition -> Int4,
        log_offset -> Int8,
        actor -> Jsonb,
        payload -> Jsonb,
        trace_id -> Nullable<Text>,
    }
}

diesel::table! {
    omie_records (tenant_id, omie_code) {
        tenant_id -> Uuid,
        omie_code -> Int8,
        source_changed_at -> Timestamptz,
        last_event_id -> Uuid,
    }
}

diesel::table! {
    users (id) {
        id -> Uuid,
        tenant_id -> Uuid,
        omie_code -> Int8,
        name -> Text,
        email -> Text,
        document -> Nullable<Text>,
        active -> Bool,
        deactivation_reason -> Nullable<Text>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        last_event_id -> Uuid,
    }
}

diesel::table! {
    import_errors (id) {
        id -> Uuid,
        tenant_id -> Uuid,
        omie_code -> Nullable<Int8>,
        kind -> Text,
        name -> Nullable<Text>,
        email -> Nullable<Text>,
        message -> Text,
        status -> Text,
        occurrences -> Int4,
        first_event_id -> Uuid,
        last_event_id -> Uuid,
        first_seen_at -> Timestamptz,
        last_seen_at -> Timestamptz,
        resolved_at -> Nullable<Timestamptz>,
        archived -> Nullable<Jsonb>,
        trace_id -> Nullable<Text>,
    }
}

diesel::table! {
    error_events (error_id, event_id) {
        error_id -> Uuid,
        event_id -> Uuid,
        seen_at -> Timestamptz,
        reason -> Text,
    }
}

diesel::table! {
    history (id) {
        id -> Uuid,
        tenant_id -> Uuid,
        at -> Timestamptz,
        action -> Text,
        actor -> Jsonb,
        subject -> Nullable<Text>,
        details -> Jsonb,
        event_id -> Uuid,
        log_offset -> Int8,
        ordinal -> Int2,
    }
}

diesel::table! {
    record_timeline (id) {
        id -> Uuid,
        tenant_id -> Uuid,
        omie_code -> Int8,
        event_id -> Uuid,
        event_type -> Text,
        verdict -> Text,
        detail -> Nullable<Text>,
        at -> Timestamptz,
        log_partition -> Int4,
        log_offset -> Int8,
    }
}

diesel::table! {
    dead_letters (topic, log_partition, log_offset) {
        topic -> Text,
        log_partition -> Int4,
        log_offset -> Int8,
        record_key -> Nullable<Text>,
        payload -> Nullable<Bytea>,
        reason -> Text,
        redriven_at -> Nullable<Timestamptz>,
        redriven_to -> Nullable<Text>,
    }
}

diesel::table! {
    sync_runs (id) {
        id -> Uuid,
        tenant_id -> Uuid,
        status -> Text,
        requested_by -> Jsonb,
        started_at -> Timestamptz,
        finished_at -> Nullable<Timestamptz>,
        pages_done -> Int4,
        pages_total -> Nullable<Int4>,
        rows_seen -> Int4,
        users_created -> Int4,
        users_updated -> Int4,
        users_deactivated -> Int4,
        records_failed -> Int4,
        failure_reason -> Nullable<Text>,
        last_event_id -> Uuid,
    }
}

diesel::table! {
    sync_seen (sync_id, omie_code) {
        sync_id -> Uuid,
        omie_code -> Int8,
    }
}

diesel::joinable!(error_events -> import_errors (error_id));

diesel::allow_tables_to_appear_in_same_query!(
    consumer_offsets,
    integrations,
    events,
    omie_records,
    users,
    import_errors,
    error_events,
    history,
    record_timeline,
    dead_letters,
    sync_runs,
    sync_seen,
);
