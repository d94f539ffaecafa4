//! unleash_webhook: Unleash's webhooks, delivered from inside PostgreSQL.
//!
//! A row trigger on Unleash's `events` table queues each event for its matching subscriptions,
//! in the event's own transaction; a background worker, woken at COMMIT, renders
//! and POSTs them, retries once, and logs every attempt. This file is the table of contents.

use pgrx::prelude::*;

::pgrx::pg_module_magic!(name, version);

// The SQL edge (pgrx).
mod api;
mod capture;
mod gucs;
mod queue;
mod vacuum;
mod wake;
mod worker;

// The pure core: no pgrx in these, tested with plain #[test].
mod event_json;
#[cfg(test)]
mod fuzz;
mod http;
mod js;
mod markdown;
mod matching;
mod pool;
mod request;
mod signing;
mod template;
#[cfg(test)]
mod template_diff;

// Tables and views first, then the plpgsql API that calls the Rust functions.
extension_sql_file!("../sql/bootstrap.sql", name = "bootstrap", bootstrap);
extension_sql_file!("../sql/finalize.sql", name = "finalize", finalize);

/// Registers settings, shared memory and the worker. Loading the library any other way than
/// shared_preload_libraries is refused: without the worker nothing would ever be delivered.
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
        pgrx::pg_sys::panic::ErrorReport::new(
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
    gucs::init();
    wake::init();
    capture::init();
    worker::init();
}

// The #[pg_test]s (SQL API, validation, capture). pg_schema needs an inline module.
#[cfg(any(test, feature = "pg_test"))]
#[pg_schema]
mod tests {
    include!("pg_tests.rs");
    include!("pg_hostile.rs");
}

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
