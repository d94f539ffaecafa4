//! The queue's own vacuum, run by a short-lived helper process.
//!
//! Every delivery leaves three to four dead row versions in `_deliveries` (queued, sending,
//! finished, purged) and more in `_attempts`: at 10,000 deliveries a second that is about 200 MB
//! of dead rows a minute. Autovacuum looks at each database once per `autovacuum_naptime`
//! (1 minute by default), so between its visits the queue's heap and indexes bloat, and in the
//! soak benchmark throughput fell to 0.73 of its start (0.78 in an earlier run). With a 10 s
//! naptime it held (1.06), but that setting is cluster-wide and not every operator can change
//! it. So while the worker is busy, it has its own tables vacuumed every
//! `unleash_webhook.vacuum_interval`: it starts a dynamic background worker that runs one
//! `VACUUM (SKIP_LOCKED)` of them and exits. Not in the worker itself: a vacuum of a busy queue
//! takes seconds, and the worker's loop must keep claiming. Autovacuum still runs as usual.

use crate::pg::NAME;
use crate::pg::{compat, gucs};
use pgrx::bgworkers::{BackgroundWorker, BackgroundWorkerBuilder, DynamicBackgroundWorker};
use pgrx::pg_sys;
use pgrx::prelude::*;
use std::ffi::CStr;
use std::time::{Duration, Instant};

/// Below this many row changes (attempts plus purged deliveries) since the last vacuum there is
/// too little to clean for a helper process to be worth starting.
const MIN_CHANGES: u64 = 10_000;

/// PARALLEL 0: the helper is one process, one slot of max_worker_processes. Parallel index
/// vacuuming would take more slots, and its workers start with the cluster's settings before
/// they take the helper's (a cluster-wide `transaction_timeout` of 1 ms ended them in a test).
const VACUUM: &CStr = c"VACUUM (SKIP_LOCKED, PARALLEL 0) unleash_webhook._deliveries, unleash_webhook._attempts, unleash_webhook._inbox";

/// The worker's side: when to start a helper, and the one that may be running.
pub struct Vacuums {
    running: Option<DynamicBackgroundWorker>,
    last_start: Instant,
    changes_at_last_start: u64,
}

impl Vacuums {
    pub fn new(changes: u64) -> Vacuums {
        Vacuums {
            running: None,
            last_start: Instant::now(),
            changes_at_last_start: changes,
        }
    }

    /// Called once per turn with the worker's running count of row changes; starts a helper
    /// when `interval` has passed since the last and enough has changed. Never waits.
    pub fn tick(&mut self, interval: Duration, changes: u64) {
        if interval.is_zero()
            || self.last_start.elapsed() < interval
            || changes.saturating_sub(self.changes_at_last_start) < MIN_CHANGES
        {
            return;
        }
        // One at a time: a helper still running (or not yet started) is left to finish.
        if let Some(helper) = &self.running
            && matches!(
                helper.pid(),
                Ok(_) | Err(pgrx::bgworkers::BackgroundWorkerStatus::NotYetStarted)
            )
        {
            return;
        }
        self.last_start = Instant::now();
        self.changes_at_last_start = changes;
        let started = BackgroundWorkerBuilder::new("unleash_webhook vacuum")
            .set_type("unleash_webhook vacuum")
            .set_library("unleash_webhook")
            .set_function("unleash_webhook_vacuum_main")
            .enable_spi_access()
            .load_dynamic();
        match started {
            Ok(helper) => self.running = Some(helper),
            // No free background worker slot (max_worker_processes): autovacuum still comes.
            Err(_) => {
                self.running = None;
                debug1!("{NAME}: no background worker slot free for a vacuum of the queue");
            }
        }
    }
}

unsafe extern "C-unwind" {
    /// Postgres's own SIGTERM handler for backends (postgres.c), unwrapped: a signal handler
    /// is called by the kernel, not through pgrx.
    #[link_name = "die"]
    fn backend_die(signal: std::ffi::c_int);
}

/// The helper: connects to the worker's database, vacuums the queue's tables, exits.
#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn unleash_webhook_vacuum_main(_arg: pg_sys::Datum) {
    // SAFETY: installing Postgres's own handler before signals are unblocked.
    unsafe {
        // A backend's SIGTERM handler: VACUUM checks for it and stops cleanly, so a shutdown
        // never waits for the vacuum to finish.
        compat::set_signal_handler(pg_sys::SIGTERM as i32, backend_die);
        pg_sys::BackgroundWorkerUnblockSignals();
    }
    compat::disable_timeouts_before_connecting();
    BackgroundWorker::connect_worker_to_spi(Some(&gucs::database_name()), None);
    // The database's settings are not ours to run with; a vacuum may take its time.
    gucs::pin_session("unleash_webhook vacuum", "0");
    // SAFETY: a fresh background worker connected to its database, outside any transaction,
    // which is where VACUUM must start; the calls are those of exec_simple_query.
    unsafe {
        // The parse tree must outlive the transactions VACUUM commits on its way, and VACUUM
        // keeps its own working memory under PortalContext, which only a backend has.
        let memory = pg_sys::AllocSetContextCreateExtended(
            pg_sys::TopMemoryContext,
            c"unleash_webhook vacuum".as_ptr(),
            0,
            8 * 1024,
            8 * 1024 * 1024,
        );
        pg_sys::MemoryContextSwitchTo(memory);
        pg_sys::PortalContext = memory;
        pg_sys::SetCurrentStatementStartTimestamp();
        pg_sys::StartTransactionCommand();
        pg_sys::MemoryContextSwitchTo(memory);
        pg_sys::pgstat_report_activity(pg_sys::BackendState::STATE_RUNNING, VACUUM.as_ptr());
        let parsed = pg_sys::pg_parse_query(VACUUM.as_ptr());
        let raw = (*(*parsed).elements).ptr_value as *mut pg_sys::RawStmt;
        let pstate = pg_sys::make_parsestate(std::ptr::null_mut());
        (*pstate).p_sourcetext = VACUUM.as_ptr();
        pg_sys::ExecVacuum(pstate, (*raw).stmt as *mut pg_sys::VacuumStmt, true);
        pg_sys::CommitTransactionCommand();
        pg_sys::pgstat_report_activity(pg_sys::BackendState::STATE_IDLE, std::ptr::null());
    }
}
