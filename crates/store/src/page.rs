//! Keyset pages for the read API: rows come newest first by an immutable `(timestamp, id)` pair,
//! and a page continues strictly after the last row of the previous one, so rows that arrive
//! while a client pages never make another row appear twice or go missing.

use chrono::{DateTime, Utc};
use diesel::BoxableExpression;
use diesel::pg::Pg;
use diesel::sql_types::{Bool, Nullable};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The last row a client saw: the next page starts strictly after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    pub at: DateTime<Utc>,
    pub id: Uuid,
}

/// A search condition built up from optional parts.
pub type Condition<Table> = Box<dyn BoxableExpression<Table, Pg, SqlType = Nullable<Bool>>>;

/// Up to `limit` rows and whether more follow.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub rows: Vec<T>,
    pub more: bool,
}

impl<T> Page<T> {
    /// From a query that asked for `limit + 1` rows.
    pub fn from_overfetch(mut rows: Vec<T>, limit: i64) -> Page<T> {
        let limit = usize::try_from(limit).unwrap_or(0);
        let more = rows.len() > limit;
        rows.truncate(limit);
        Page { rows, more }
    }
}

/// `%text%` for `ILIKE`, with `text`'s own `%`, `_` and `\` matched literally.
pub fn contains_pattern(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 2);
    pattern.push('%');
    for character in text.chars() {
        if matches!(character, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(character);
    }
    pattern.push('%');
    pattern
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_in_the_search_are_literal() {
        assert_eq!(contains_pattern("ana_50%"), "%ana\\_50\\%%");
        assert_eq!(contains_pattern("a\\b"), "%a\\\\b%");
    }

    #[test]
    fn an_overfetched_page_knows_more_follow() {
        assert_eq!(Page::from_overfetch(vec![1, 2, 3], 2), Page { rows: vec![1, 2], more: true });
        assert_eq!(Page::from_overfetch(vec![1, 2], 2), Page { rows: vec![1, 2], more: false });
    }
}
