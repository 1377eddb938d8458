//! The fold: pure functions from (state, event) to changes. No I/O here; the database adapter in
//! `apply` loads the state a batch needs, runs [`fold::decide`] per event, and writes the changes
//! in one transaction with the offsets.

pub mod email;
pub mod explain;
pub mod fold;
pub mod record;

pub use fold::{Changes, LoggedEvent, State, Verdict, decide};
