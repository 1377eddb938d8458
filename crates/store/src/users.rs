//! `users`: the Espresso users made from Omie records. Never hard-deleted.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::upsert::excluded;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::Serialize;
use uuid::Uuid;

use crate::StoreError;
use crate::page::{Condition, Page, Position, contains_pattern};
use crate::schema::users;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Queryable, Selectable, Insertable)]
#[diesel(table_name = users)]
pub struct User {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub omie_code: i64,
    pub name: String,
    pub email: String,
    pub document: Option<String>,
    pub active: bool,
    pub deactivation_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub last_event_id: Uuid,
}

/// Users of `codes` within `tenants` (a superset of the exact pairs; the caller indexes them).
pub async fn for_codes(conn: &mut AsyncPgConnection, tenants: &[Uuid], codes: &[i64]) -> Result<Vec<User>, StoreError> {
    Ok(users::table
        .filter(users::tenant_id.eq_any(tenants))
        .filter(users::omie_code.eq_any(codes))
        .select(User::as_select())
        .load(conn)
        .await?)
}

/// Active users holding any of `emails` within `tenants`.
pub async fn active_with_emails(
    conn: &mut AsyncPgConnection,
    tenants: &[Uuid],
    emails: &[String],
) -> Result<Vec<User>, StoreError> {
    Ok(users::table
        .filter(users::tenant_id.eq_any(tenants))
        .filter(users::email.eq_any(emails))
        .filter(users::active.eq(true))
        .select(User::as_select())
        .load(conn)
        .await?)
}

pub async fn upsert(conn: &mut AsyncPgConnection, rows: &[User]) -> Result<(), StoreError> {
    for chunk in rows.chunks(crate::WRITE_CHUNK) {
        diesel::insert_into(users::table)
            .values(chunk)
            .on_conflict(users::id)
            .do_update()
            .set((
                users::name.eq(excluded(users::name)),
                users::email.eq(excluded(users::email)),
                users::document.eq(excluded(users::document)),
                users::active.eq(excluded(users::active)),
                users::deactivation_reason.eq(excluded(users::deactivation_reason)),
                users::updated_at.eq(excluded(users::updated_at)),
                users::last_event_id.eq(excluded(users::last_event_id)),
            ))
            .execute(conn)
            .await?;
    }
    Ok(())
}

/// Fewer digits than this search Omie codes, not documents.
const MIN_DOCUMENT_DIGITS: usize = 4;

/// Which users a page holds.
#[derive(Debug, Clone, Default)]
pub struct UserFilter {
    pub active: Option<bool>,
    /// Part of the name or e-mail, at least four digits of the document (punctuation ignored), or
    /// the whole Omie code.
    pub search: Option<String>,
}

diesel::define_sql_function! {
    /// PostgreSQL's `regexp_replace(source, pattern, replacement, flags)`.
    fn regexp_replace(source: diesel::sql_types::Nullable<diesel::sql_types::Text>, pattern: diesel::sql_types::Text, replacement: diesel::sql_types::Text, flags: diesel::sql_types::Text) -> diesel::sql_types::Nullable<diesel::sql_types::Text>;
}

/// A page of the tenant's users, newest first, after `after`.
pub async fn page(
    conn: &mut AsyncPgConnection,
    tenant_id: Uuid,
    filter: &UserFilter,
    after: Option<Position>,
    limit: i64,
) -> Result<Page<User>, StoreError> {
    let mut query = users::table.filter(users::tenant_id.eq(tenant_id)).into_boxed();
    if let Some(active) = filter.active {
        query = query.filter(users::active.eq(active));
    }
    if let Some(search) = filter.search.as_deref() {
        let pattern = contains_pattern(search);
        let digits: String = search.chars().filter(char::is_ascii_digit).collect();
        let document_digits = regexp_replace(users::document, "[^0-9]", "", "g");
        let mut matches: Condition<users::table> =
            Box::new(users::name.ilike(pattern.clone()).nullable().or(users::email.ilike(pattern).nullable()));
        // Only a query shaped like a CPF/CNPJ (or part of one) searches documents: the digits of an
        // e-mail or a short code would match unrelated documents.
        let document_like = search.chars().all(|c| c.is_ascii_digit() || ".-/ ".contains(c));
        if document_like && digits.len() >= MIN_DOCUMENT_DIGITS {
            matches = Box::new(matches.or(document_digits.like(contains_pattern(&digits))));
        }
        if let Ok(code) = search.trim().parse::<i64>() {
            matches = Box::new(matches.or(users::omie_code.eq(code).nullable()));
        }
        query = query.filter(matches);
    }
    if let Some(after) = after {
        query =
            query.filter(users::created_at.lt(after.at).or(users::created_at.eq(after.at).and(users::id.lt(after.id))));
    }
    let rows = query
        .order((users::created_at.desc(), users::id.desc()))
        .limit(limit + 1)
        .select(User::as_select())
        .load(conn)
        .await?;
    Ok(Page::from_overfetch(rows, limit))
}

pub async fn count_by_state(conn: &mut AsyncPgConnection, tenant_id: Uuid) -> Result<(i64, i64), StoreError> {
    let rows: Vec<(bool, i64)> = users::table
        .filter(users::tenant_id.eq(tenant_id))
        .group_by(users::active)
        .select((users::active, diesel::dsl::count_star()))
        .load(conn)
        .await?;
    let count = |wanted: bool| rows.iter().filter(|(active, _)| *active == wanted).map(|(_, n)| n).sum();
    Ok((count(true), count(false)))
}

/// Every active user of `tenants` (the reconciliation of a completed sync reads them).
pub async fn active_of_tenants(conn: &mut AsyncPgConnection, tenants: &[Uuid]) -> Result<Vec<User>, StoreError> {
    Ok(users::table
        .filter(users::tenant_id.eq_any(tenants))
        .filter(users::active.eq(true))
        .select(User::as_select())
        .load(conn)
        .await?)
}

/// The users of `tenants` (every tenant when `None`), for comparing two builds of the projections.
pub async fn of_scope(conn: &mut AsyncPgConnection, tenants: Option<&[Uuid]>) -> Result<Vec<User>, StoreError> {
    let mut query = users::table.select(User::as_select()).into_boxed();
    if let Some(tenants) = tenants {
        query = query.filter(users::tenant_id.eq_any(tenants.to_vec()));
    }
    Ok(query.load(conn).await?)
}
