//! Everything that touches PostgreSQL (lib.rs's `_PG_init` calls each part's `init()`).
//!
//! - `gucs`: every setting, with typed accessors;
//! - `capture`: the row trigger on Unleash's events table and the inbox it writes;
//! - `wake`: shared memory, and the transaction callback that wakes the worker at COMMIT;
//! - `queue`: the worker's SQL (inbox, claims, events, results, retention);
//! - `worker`: the background worker's one loop, and its sender thread;
//! - `vacuum`: the short-lived helper that vacuums the queue while the worker is busy;
//! - `leave`: the worker leaves its database for a DROP, RENAME or copy of it;
//! - `api`: the Rust half of the SQL API (the plpgsql half is sql/finalize.sql);
//! - `compat`: what differs between PostgreSQL 14 to 18, and nowhere else.

pub(crate) mod api;
pub(crate) mod capture;
pub(crate) mod compat;
pub(crate) mod gucs;
pub(crate) mod leave;
pub(crate) mod queue;
pub(crate) mod vacuum;
pub(crate) mod wake;
pub(crate) mod worker;

/// The name in `pg_stat_activity.backend_type`, `application_name` and every log line.
pub const NAME: &str = "unleash_webhook";
