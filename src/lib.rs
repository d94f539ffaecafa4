//! unleash_webhook: Unleash's webhooks, delivered from inside PostgreSQL.
//!
//! A row trigger on Unleash's `events` table queues each event for its matching subscriptions,
//! in the event's own transaction; a background worker, woken at COMMIT, renders and POSTs
//! them, retries once, and logs every attempt. This file is the table of contents.
//!
//! - [`core`]: pure Rust, no pgrx: what Unleash would send (event JSON, Mustache as mustache.js
//!   renders it, eventMarkdown, request building, Standard Webhooks signing, matching).
//! - [`http`]: pure Rust, no pgrx: the HTTP client, the destination policy and how an
//!   attempt's outcome is classified.
//! - [`pg`]: everything that touches PostgreSQL: settings, the capture trigger, waking the
//!   worker, the queue's SQL, the worker and its vacuum helper, the Rust half of the SQL API.
//!
//! `core` and `http` never import pgrx: `src/tests/boundary.rs` fails the build's tests if one
//! does.

use pgrx::prelude::*;

::pgrx::pg_module_magic!(name, version);

mod core;
mod http;
mod pg;

// Tables and views first, then the plpgsql API that calls the Rust functions.
extension_sql_file!("../sql/bootstrap.sql", name = "bootstrap", bootstrap);
extension_sql_file!("../sql/finalize.sql", name = "finalize", finalize);

/// Skips a binary upgrade, refuses to load outside shared_preload_libraries (without the worker
/// nothing would ever be delivered), then registers settings, shared memory, the capture
/// hooks and the worker.
#[pg_guard]
pub extern "C-unwind" fn _PG_init() {
    // SAFETY: plain reads of globals set by the postmaster before loading libraries.
    let (preloading, binary_upgrade) = unsafe {
        (
            pg_sys::process_shared_preload_libraries_in_progress,
            pg_sys::IsBinaryUpgrade,
        )
    };
    if binary_upgrade {
        return;
    }
    if !preloading {
        pg_sys::panic::ErrorReport::new(
            PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            "unleash_webhook must be loaded via shared_preload_libraries",
            "_PG_init",
        )
        .set_hint(
            "Add unleash_webhook to shared_preload_libraries in postgresql.conf and restart PostgreSQL.",
        )
        .report(PgLogLevel::ERROR);
        return;
    }
    pg::gucs::init();
    pg::wake::init();
    pg::capture::init();
    pg::leave::init();
    pg::worker::init();
}

// The #[pg_test] suites (SQL API, hostile input). pgrx's harness calls them in the SQL schema
// `tests`, which #[pg_schema] makes from an inline module of that name.
#[cfg(any(test, feature = "pg_test"))]
#[pg_schema]
mod tests {
    include!("tests/sql_api.rs");
    include!("tests/hostile.rs");
}

// The suites that span modules: property tests of the pure core, the differential test against
// mustache.js, the module boundary check (src/tests/).
#[cfg(test)]
#[path = "tests/mod.rs"]
mod suites;

/// Required by `cargo pgrx test`: the test cluster preloads the library like production.
#[cfg(test)]
pub mod pg_test {
    pub fn setup(_options: Vec<&str>) {}

    #[must_use]
    pub fn postgresql_conf_options() -> Vec<&'static str> {
        vec![
            "shared_preload_libraries = 'unleash_webhook'",
            "unleash_webhook.database_name = 'pgrx_tests'",
            "unleash_webhook.destination_allowlist = '127.0.0.1'",
        ]
    }
}
