//! A span per SQL statement (OpenTelemetry database conventions), child of whatever span runs
//! the query: the projector's batch, a read request. The statement text is recorded without its
//! bind values, which hold personal data.

use std::fmt::{self, Write as _};

use diesel::connection::{Instrumentation, InstrumentationEvent};

/// Longest statement text kept on a span: enough to name the operation and table of a
/// thousand-row insert without copying it.
const MAX_STATEMENT_CHARS: usize = 300;

/// Every connection opened after this call traces its statements.
pub fn trace_queries() {
    if let Err(error) = diesel::connection::set_default_instrumentation(query_spans) {
        tracing::warn!(%error, "SQL statements will not be traced");
    }
}

fn query_spans() -> Option<Box<dyn Instrumentation>> {
    Some(Box::new(QuerySpans::default()))
}

#[derive(Default)]
struct QuerySpans {
    statement: Option<tracing::Span>,
    transaction: Option<tracing::Span>,
}

impl Instrumentation for QuerySpans {
    fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
        match event {
            InstrumentationEvent::StartQuery { query, .. } => {
                let text = statement_text(query);
                let summary = summary(&text);
                self.statement = Some(tracing::info_span!(
                    "db.query",
                    otel.name = %summary,
                    otel.kind = "client",
                    db.system.name = "postgresql",
                    db.query.summary = %summary,
                    db.query.text = %text,
                    otel.status_code = tracing::field::Empty,
                    error.type = tracing::field::Empty,
                ));
            }
            InstrumentationEvent::FinishQuery { error, .. } => {
                if let (Some(span), Some(error)) = (self.statement.take(), error) {
                    span.record("otel.status_code", "ERROR");
                    span.record("error.type", error.to_string());
                }
            }
            InstrumentationEvent::BeginTransaction { depth, .. } if depth.get() == 1 => {
                self.transaction = Some(tracing::info_span!(
                    "db.transaction",
                    otel.name = "BEGIN … COMMIT",
                    otel.kind = "client",
                    db.system.name = "postgresql",
                ));
            }
            InstrumentationEvent::CommitTransaction { depth, .. }
            | InstrumentationEvent::RollbackTransaction { depth, .. }
                if depth.get() == 1 =>
            {
                self.transaction = None;
            }
            _ => {}
        }
    }
}

/// The SQL of a statement, without the ` -- binds: […]` diesel appends: formatting stops at the
/// first write after the statement, so bind values are never even formatted.
fn statement_text(query: &dyn diesel::connection::DebugQuery) -> String {
    struct FirstWrite(Option<String>);
    impl fmt::Write for FirstWrite {
        fn write_str(&mut self, text: &str) -> fmt::Result {
            if self.0.is_some() {
                return Err(fmt::Error);
            }
            self.0 = Some(text.chars().take(MAX_STATEMENT_CHARS).collect());
            Ok(())
        }
    }
    let mut first = FirstWrite(None);
    let _ = write!(first, "{query}");
    first.0.unwrap_or_default()
}

/// `INSERT events`, `SELECT users`: the operation and the first table named.
fn summary(statement: &str) -> String {
    let operation = statement.split_whitespace().next().unwrap_or("SQL").to_ascii_uppercase();
    let table = statement
        .split_whitespace()
        .skip_while(|word| !["FROM", "INTO", "UPDATE"].contains(&word.to_ascii_uppercase().as_str()))
        .nth(1)
        .and_then(|name| name.rsplit('.').next())
        .map(|name| name.trim_matches(|c: char| !c.is_alphanumeric() && c != '_'))
        .filter(|name| !name.is_empty());
    match table {
        Some(table) => format!("{operation} {table}"),
        None => operation,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_operation_and_table() {
        assert_eq!(summary(r#"INSERT INTO "events" ("id", "tenant_id") VALUES ($1, $2)"#), "INSERT events");
        assert_eq!(summary(r#"SELECT "users"."id" FROM "users" WHERE "users"."tenant_id" = $1"#), "SELECT users");
        assert_eq!(summary(r#"UPDATE "import_errors" SET "status" = $1"#), "UPDATE import_errors");
        assert_eq!(summary("BEGIN"), "BEGIN");
    }
}
