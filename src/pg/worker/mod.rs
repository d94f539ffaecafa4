//! The background worker: registration and its one loop.
//!
//! Shape: signals, connect, wait for the extension, recover what a dead predecessor had
//! claimed, then loop { record finished attempts (one short transaction); claim due deliveries
//! (one short transaction, FOR UPDATE SKIP LOCKED, with a lease); render them and hand them to
//! the sender threads; wait on the latch (set at COMMIT by `wake`), the senders' socket, or a
//! timeout }. No transaction is ever open while HTTP is in flight. A Postgres error inside a
//! transaction is caught, logged and rolled back: it costs one batch, never the worker.

mod pool;

use crate::core::event_json::EventRow;
use crate::core::request::{self, Context, Subscription};
use crate::http::{self, Client, ClientConfig, DestinationPolicy, Verdict};
use crate::pg::NAME;
use crate::pg::compat;
use crate::pg::gucs::{self, WorkerSettings};
use crate::pg::queue::{self, Claimed, Outcome};
use crate::pg::vacuum;
use crate::pg::wake;
use pgrx::bgworkers::{BackgroundWorker, BackgroundWorkerBuilder, SignalWakeFlags};
use pgrx::pg_sys;
use pgrx::prelude::*;
use pool::{Done, Job, Pool, Ticket};
use std::collections::HashMap;
use std::ffi::CString;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long a SIGTERM waits for attempts in flight before the rest are left claimed (they are
/// sent again after the restart). Postgres's shutdown waits for us, so keep it short.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// Finished deliveries deleted per purge transaction.
const PURGE_BATCH: i64 = 1_000;
/// Inbox rows (captured events) turned into deliveries per turn; more loops again.
const FLUSH_BATCH: i32 = 1_000;

/// Registers the worker. `_PG_init`, preload branch only.
pub fn init() {
    BackgroundWorkerBuilder::new("unleash_webhook worker")
        .set_type(NAME)
        .set_library("unleash_webhook")
        .set_function("unleash_webhook_worker_main")
        // Also makes it start only once recovery is finished: never on a standby, and right
        // after a promotion.
        .enable_spi_access()
        // Restarted after any exit but a clean shutdown. A missing database costs one FATAL,
        // then the next start waits for it without exiting (wait_for_database).
        .set_restart_time(Some(Duration::from_secs(2)))
        .load();
}

/// The worker's entry point, named in its registration.
#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn unleash_webhook_worker_main(_arg: pg_sys::Datum) {
    BackgroundWorker::attach_signal_handlers(SignalWakeFlags::SIGHUP | SignalWakeFlags::SIGTERM);
    compat::disable_timeouts_before_connecting();
    let database = gucs::database_name();
    if wake::previous_connect_failed() {
        // The last start died connecting (FATAL: database does not exist). Wait, quietly and
        // without a restart loop, until the database exists; then exit to be started again.
        wait_for_database(&database);
        // SAFETY: proc_exit runs the exit callbacks and never returns.
        unsafe { pg_sys::proc_exit(1) }
    }
    wake::set_connecting(true);
    BackgroundWorker::connect_worker_to_spi(Some(&database), None);
    wake::set_connecting(false);
    set_session_option("application_name", NAME);
    // The worker runs as the bootstrap superuser. With the default search_path a function in
    // `public` whose argument types match a call in our SQL exactly would be chosen over
    // pg_catalog's (CVE-2018-1058), and on 14 every role may create in `public` (from 15 the
    // database's owner may). Every name the worker uses is qualified or in pg_catalog.
    set_session_option("search_path", "pg_catalog, pg_temp");
    // The worker's own commits need no flush wait, but for claims (see queue::commit_durably):
    // a lost result is simply sent again, which at-least-once allows.
    set_session_option("synchronous_commit", "off");
    // The claim must walk the due-index in id order and stop after a few rows. The table's
    // statistics lag behind a fast-growing queue (estimate: 1 row; truth: 40,000), and then the
    // planner picks a bitmap scan that reads and sorts every pending row on every claim:
    // measured 11 ms per claim at 40k pending, throughput 741/s instead of 4,000+/s.
    set_session_option("enable_bitmapscan", "off");
    // The same stale statistics (a queue planned as empty) made a kept generic plan scan the
    // whole queue (1,752/s). Every statement of the worker has an index path, so sequential
    // scans are off, and then a generic plan is as good as a custom one: planning anew on each
    // turn was 40% of the worker's SQL time (0.16 ms per claim, pg_stat_statements).
    set_session_option("enable_seqscan", "off");
    set_session_option("plan_cache_mode", "force_generic_plan");
    // Disabled paths still cost 1e10 in the estimate, over every JIT threshold: a scan of the
    // (index-less, few-page) inbox was JIT-compiled on every turn, 120 ms each. The worker's
    // statements touch a few rows; JIT never pays off for them.
    set_session_option("jit", "off");
    wake::publish_worker();
    let settings = gucs::worker_settings();
    log!(
        "{NAME}: worker started for database \"{database}\" ({})",
        describe(&settings)
    );
    let code = match Worker::new(settings) {
        Ok(mut worker) => worker.run(),
        Err(e) => {
            log!("{NAME}: worker cannot start: {e}");
            1
        }
    };
    wake::withdraw_worker();
    log!("{NAME}: worker stopped");
    // Exit code 1 asks the postmaster to start us again (after a terminate); at shutdown it
    // does not matter.
    // SAFETY: proc_exit runs the exit callbacks and never returns.
    unsafe { pg_sys::proc_exit(code) }
}

/// Connected to no database (shared catalogs only), polls pg_database every 5 s until
/// `database` exists, or until SIGTERM.
fn wait_for_database(database: &str) {
    BackgroundWorker::connect_worker_to_spi(None, None);
    log!(
        "{NAME}: database \"{database}\" does not exist; waiting for it to be created \
         (or set unleash_webhook.database_name to Unleash's database and restart)"
    );
    for checks in 1u64.. {
        if database_exists(database) {
            wake::set_connecting(false);
            log!("{NAME}: database \"{database}\" exists now; restarting to connect to it");
            return;
        }
        // Visible in pg_stat_activity: one process, waiting, checking every 5 s.
        report_activity(&format!(
            "waiting for database \"{database}\" (checked {checks} times)"
        ));
        if !BackgroundWorker::wait_latch(Some(Duration::from_secs(5))) {
            return;
        }
    }
}

/// Shows `what` as the worker's query in pg_stat_activity.
fn report_activity(what: &str) {
    let what = CString::new(what).unwrap_or_default();
    // SAFETY: a valid C string; pgstat copies it.
    unsafe {
        pg_sys::pgstat_report_activity(pg_sys::BackendState::STATE_RUNNING, what.as_ptr());
    }
}

/// Scans the shared catalog pg_database for `name`. A heap scan, as the autovacuum launcher
/// does: without a database, index lookups (get_database_oid) cannot open pg_class.
fn database_exists(name: &str) -> bool {
    let mut found = false;
    // SAFETY: a read-only catalog scan inside its own transaction; the tuples are only read
    // while the scan holds them.
    unsafe {
        pg_sys::StartTransactionCommand();
        let _ = pg_sys::GetTransactionSnapshot();
        let rel = pg_sys::table_open(pg_sys::DatabaseRelationId, pg_sys::AccessShareLock as i32);
        let scan = pg_sys::table_beginscan_catalog(rel, 0, std::ptr::null_mut());
        loop {
            let tuple = pg_sys::heap_getnext(scan, pg_sys::ScanDirection::ForwardScanDirection);
            if tuple.is_null() {
                break;
            }
            let form = pg_sys::heap_tuple_get_struct::<pg_sys::FormData_pg_database>(tuple);
            let datname = std::ffi::CStr::from_ptr((*form).datname.data.as_ptr());
            if datname.to_bytes() == name.as_bytes() {
                found = true;
                break;
            }
        }
        pg_sys::table_endscan(scan);
        pg_sys::table_close(rel, pg_sys::AccessShareLock as i32);
        pg_sys::CommitTransactionCommand();
    }
    found
}

/// Rows the worker has changed so far (attempts recorded, deliveries purged): what the queue's
/// vacuum is paced by.
fn row_changes() -> u64 {
    wake::stats().map_or(0, |s| {
        s.attempts.load(Ordering::Relaxed) + s.purged.load(Ordering::Relaxed)
    })
}

fn set_session_option(name: &str, value: &str) {
    let (Ok(name), Ok(value)) = (CString::new(name), CString::new(value)) else {
        return;
    };
    // SAFETY: valid C strings; SetConfigOption copies them.
    unsafe {
        pg_sys::SetConfigOption(
            name.as_ptr(),
            value.as_ptr(),
            pg_sys::GucContext::PGC_SUSET,
            pg_sys::GucSource::PGC_S_SESSION,
        )
    };
}

fn describe(s: &WorkerSettings) -> String {
    format!(
        "max_retries={} retry_delay={}ms timeout={}ms connect_timeout={}ms max_concurrency={} \
         max_concurrency_per_subscription={} ca_file={} poll_interval={}ms http_proxy={} \
         destination_allowlist={} retention={}s vacuum_interval={}s unleash_url={}",
        s.max_retries,
        s.retry_delay.as_millis(),
        s.timeout.as_millis(),
        s.connect_timeout.as_millis(),
        s.max_concurrency,
        s.max_concurrency_per_subscription,
        s.ca_file.as_deref().unwrap_or("(none)"),
        s.poll_interval.as_millis(),
        // whether, not what: the proxy URL may carry credentials
        if s.http_proxy.is_some() {
            "(set)"
        } else {
            "(none)"
        },
        if s.destination_allowlist.is_empty() {
            "(none)"
        } else {
            &s.destination_allowlist
        },
        s.retention.as_secs(),
        s.vacuum_interval.as_secs(),
        s.unleash_url
    )
}

fn client_config(s: &WorkerSettings) -> ClientConfig {
    let destination_policy =
        DestinationPolicy::parse(&s.destination_allowlist).unwrap_or_else(|e| {
            // Refuse private destinations rather than allow them on a typo.
            log!("{NAME}: destination_allowlist ignored: {e}");
            DestinationPolicy::default()
        });
    ClientConfig {
        connect_timeout: s.connect_timeout,
        total_timeout: s.timeout,
        extra_ca_file: s.ca_file.as_ref().map(Into::into),
        proxy: s.http_proxy.clone(),
        max_idle_per_host: s.max_concurrency_per_subscription.max(4),
        destination_policy,
    }
}

/// A subscription as cached by the worker, with the version it was built from.
struct CachedSub {
    version: i64,
    sub: Arc<Subscription>,
}

struct Worker {
    settings: WorkerSettings,
    client: Client,
    pool: Pool,
    wait_set: *mut pg_sys::WaitEventSet,
    /// Set once the extension exists and recovery ran; cleared when a transaction fails.
    ready: bool,
    /// Whether the start-up recovery of a predecessor's claims has run.
    recovered: bool,
    plans: queue::Plans,
    installation: Arc<str>,
    subs: HashMap<i64, CachedSub>,
    in_flight_per_sub: HashMap<i64, i32>,
    /// Outcomes known without HTTP (render errors, missing events), recorded with the next batch.
    local_outcomes: Vec<Outcome>,
    /// The earliest retry the worker scheduled, so that it wakes for it without polling.
    next_retry: Option<Instant>,
    last_error: Option<String>,
    last_purge: Option<Instant>,
    vacuums: vacuum::Vacuums,
    /// A commit queued something (or the poll interval passed): take the inbox this turn.
    flush_due: bool,
    last_flush: Option<Instant>,
    /// Whether the schema is known to have the inbox. Looked up while false: an older schema
    /// (before ALTER EXTENSION UPDATE) has none, and the UPDATE may add it at any moment.
    has_inbox: bool,
}

impl Worker {
    fn new(settings: WorkerSettings) -> Result<Worker, String> {
        let client = match Client::new(&client_config(&settings)) {
            Ok(c) => c,
            Err(e) => {
                // A bad CA file must not stop delivery to public endpoints.
                log!("{NAME}: ca_file not used: {}", e.message());
                let mut fallback = client_config(&settings);
                fallback.extra_ca_file = None;
                Client::new(&fallback).map_err(|e| e.to_string())?
            }
        };
        let pool = Pool::new().map_err(|e| format!("cannot create the sender socket: {e}"))?;
        // SAFETY: TopMemoryContext lives for the process; the set is used only by this thread
        // and the latch and socket it watches outlive it.
        let wait_set = unsafe {
            let set = compat::create_wait_event_set(3);
            pg_sys::AddWaitEventToSet(
                set,
                pg_sys::WL_LATCH_SET,
                pg_sys::PGINVALID_SOCKET,
                pg_sys::MyLatch,
                std::ptr::null_mut(),
            );
            pg_sys::AddWaitEventToSet(
                set,
                pg_sys::WL_EXIT_ON_PM_DEATH,
                pg_sys::PGINVALID_SOCKET,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            );
            pg_sys::AddWaitEventToSet(
                set,
                pg_sys::WL_SOCKET_READABLE,
                pool.wake_fd(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            );
            set
        };
        Ok(Worker {
            settings,
            client,
            pool,
            wait_set,
            ready: false,
            recovered: false,
            plans: queue::Plans::default(),
            installation: Arc::from(""),
            subs: HashMap::new(),
            in_flight_per_sub: HashMap::new(),
            local_outcomes: Vec::new(),
            next_retry: None,
            last_error: None,
            last_purge: None,
            vacuums: vacuum::Vacuums::new(row_changes()),
            flush_due: true,
            last_flush: None,
            has_inbox: false,
        })
    }

    fn run(&mut self) -> i32 {
        loop {
            if BackgroundWorker::sigterm_received() {
                self.shutdown();
                return 1;
            }
            if BackgroundWorker::sighup_received() {
                self.reload();
            }
            if !self.ready && !self.become_ready() {
                self.wait(self.settings.poll_interval.max(Duration::from_secs(1)));
                continue;
            }
            // Clear the commit flag before looking, so a commit after this point loops again.
            let committed = wake::take_pending();
            let poll_due = self
                .last_flush
                .is_none_or(|at| at.elapsed() >= self.settings.poll_interval);
            self.flush_due |= committed || poll_due;
            let more = self.cycle();
            let more_to_purge = self.purge_old();
            self.vacuums
                .tick(self.settings.vacuum_interval, row_changes());
            if more || more_to_purge {
                continue;
            }
            self.wait(self.next_timeout());
        }
    }

    /// Checks that the extension exists and recovers a predecessor's claims.
    fn become_ready(&mut self) -> bool {
        let recover = !self.recovered;
        let result = txn("unleash_webhook: starting", || {
            if !queue::extension_installed()? {
                return Ok(None);
            }
            let installation = queue::installation_id()?;
            // Only at start: what is 'sending' now was claimed by a predecessor that died. Later
            // (after a failed transaction) our own attempts are still in flight.
            let recovered = if recover {
                queue::recover_claimed()?
            } else {
                0
            };
            Ok(Some((installation, recovered)))
        });
        match result {
            Ok(Some((installation, recovered))) => {
                if recovered > 0 {
                    log!("{NAME}: {recovered} deliveries claimed before a restart are due again");
                }
                if *self.installation != *installation {
                    // A new installation (DROP + CREATE EXTENSION): what is in flight belongs
                    // to the old tables; its results will be dropped when they come back.
                    self.in_flight_per_sub.clear();
                    self.local_outcomes.clear();
                }
                self.installation = Arc::from(installation.as_str());
                self.recovered = true;
                self.subs.clear();
                self.ready = true;
                self.last_error = None;
                true
            }
            Ok(None) => {
                self.note_error(format!(
                    "extension unleash_webhook is not installed in database \"{}\"; waiting for CREATE EXTENSION",
                    gucs::database_name()
                ));
                false
            }
            Err(e) => {
                self.note_error(e);
                false
            }
        }
    }

    /// Logs a problem once, not on every poll.
    fn note_error(&mut self, message: String) {
        if self.last_error.as_deref() != Some(message.as_str()) {
            log!("{NAME}: {message}");
            self.last_error = Some(message);
        }
    }

    fn reload(&mut self) {
        // SAFETY: the documented way for a background process to apply a SIGHUP.
        unsafe { pg_sys::ProcessConfigFile(pg_sys::GucContext::PGC_SIGHUP) };
        let settings = gucs::worker_settings();
        // One line per SIGHUP, changed or not: what the worker runs with is in the log, and
        // whoever reloaded can see that it was applied.
        if settings == self.settings {
            log!("{NAME}: configuration reloaded, settings unchanged");
            return;
        }
        let config = client_config(&settings);
        if config != client_config(&self.settings) {
            match Client::new(&config) {
                // Jobs already handed out keep the old client; new ones get this one.
                Ok(client) => self.client = client,
                Err(e) => log!("{NAME}: the HTTP client keeps its previous trust: {e}"),
            }
        }
        log!("{NAME}: configuration reloaded ({})", describe(&settings));
        self.settings = settings;
    }

    fn next_timeout(&self) -> Duration {
        let poll = self.settings.poll_interval;
        match self.next_retry {
            Some(at) => at.saturating_duration_since(Instant::now()).min(poll),
            None => poll,
        }
    }

    /// Sleeps until a commit sets the latch, a sender finishes, or the timeout passes.
    fn wait(&mut self, timeout: Duration) {
        let mut event = pg_sys::WaitEvent::default();
        let millis = i64::try_from(timeout.as_millis())
            .unwrap_or(i64::MAX)
            .max(0);
        // SAFETY: the set was built in new() and stays valid; `event` is a valid out-pointer.
        unsafe {
            pg_sys::pgstat_report_activity(pg_sys::BackendState::STATE_IDLE, std::ptr::null());
            let n = pg_sys::WaitEventSetWait(
                self.wait_set,
                millis as std::ffi::c_long,
                &mut event,
                1,
                pg_sys::PG_WAIT_EXTENSION,
            );
            if n > 0 && event.events & pg_sys::WL_LATCH_SET != 0 {
                pg_sys::ResetLatch(pg_sys::MyLatch);
            }
        }
        if self.next_retry.is_some_and(|at| at <= Instant::now()) {
            self.next_retry = None;
        }
    }

    /// Every finished attempt (and local outcome) waiting to be recorded.
    fn finished_outcomes(&mut self) -> Vec<Outcome> {
        let done = self.pool.collect();
        let mut outcomes = std::mem::take(&mut self.local_outcomes);
        for d in done {
            if *d.ticket.installation != *self.installation {
                continue;
            }
            if let Some(n) = self.in_flight_per_sub.get_mut(&d.ticket.subscription_id) {
                *n -= 1;
                if *n <= 0 {
                    self.in_flight_per_sub.remove(&d.ticket.subscription_id);
                }
            }
            outcomes.push(self.outcome_of(d));
        }
        if let Some(stats) = wake::stats() {
            for o in &outcomes {
                stats.attempts.fetch_add(1, Ordering::Relaxed);
                let counter = match o.new_status {
                    "delivered" => &stats.delivered,
                    "pending" => &stats.retries,
                    _ => &stats.failed,
                };
                counter.fetch_add(1, Ordering::Relaxed);
            }
        }
        outcomes
    }

    fn write_outcomes(&mut self, outcomes: &[Outcome]) {
        let plans = &mut self.plans;
        if let Err(e) = txn("unleash_webhook: recording results", || {
            queue::record(plans, outcomes)
        }) {
            // The rows stay 'sending' with a lease; they are sent again when it expires or the
            // worker restarts. Losing the record of an attempt is allowed, losing a delivery not.
            log!("{NAME}: could not record {} results: {e}", outcomes.len());
            self.ready = false;
            self.plans.reset();
        }
    }

    fn outcome_of(&mut self, done: Done) -> Outcome {
        let Done {
            ticket,
            started_at,
            attempt,
        } = done;
        let verdict = http::classify(&attempt);
        let retries_left =
            u32::try_from(ticket.round_attempt).unwrap_or(u32::MAX) <= self.settings.max_retries;
        let (new_status, retry_in) = match verdict {
            Verdict::Delivered => ("delivered", Duration::ZERO),
            Verdict::Retry if retries_left => {
                let delay = attempt
                    .retry_after
                    .map(|d| d.min(self.settings.retry_after_max))
                    .unwrap_or(self.settings.retry_delay);
                let at = Instant::now() + delay;
                self.next_retry = Some(self.next_retry.map_or(at, |t| t.min(at)));
                ("pending", delay)
            }
            Verdict::Retry | Verdict::Fail => ("failed", Duration::ZERO),
        };
        debug1!(
            "{NAME}: delivery {} attempt {}: {} -> {new_status}",
            ticket.delivery_id,
            ticket.attempt,
            attempt.status.map_or_else(
                || attempt
                    .error_class
                    .map_or("error", |c| c.as_str())
                    .to_string(),
                |s| s.to_string()
            )
        );
        Outcome {
            delivery_id: ticket.delivery_id,
            attempt: ticket.attempt,
            started_epoch: epoch_seconds(started_at),
            duration_ms: attempt.duration.as_secs_f64() * 1000.0,
            status_code: attempt.status.map(i32::from),
            error_class: attempt.error_class.map(|c| c.as_str().to_string()),
            error: attempt.error.clone(),
            excerpt: Some(attempt.response_excerpt.clone()).filter(|s| !s.is_empty()),
            new_status,
            retry_in_ms: retry_in.as_secs_f64() * 1000.0,
            body: ticket.body_to_store,
        }
    }

    /// One turn of the loop, in one transaction: record what finished, claim what the free
    /// sender slots allow, read those events; then hand the claims to the senders. Returns
    /// true when the claim was limited by the slots, i.e. more may be due right now.
    fn cycle(&mut self) -> bool {
        let outcomes = self.finished_outcomes();
        let free = self
            .settings
            .max_concurrency
            .saturating_sub(self.pool.in_flight());
        if free == 0 && outcomes.is_empty() && !self.flush_due {
            return false;
        }
        let per_sub =
            i32::try_from(self.settings.max_concurrency_per_subscription).unwrap_or(i32::MAX);
        let room: HashMap<i64, i32> = self
            .in_flight_per_sub
            .iter()
            .map(|(id, n)| (*id, per_sub - n))
            .collect();
        let known: HashMap<i64, i64> = self.subs.iter().map(|(id, c)| (*id, c.version)).collect();
        // The lease outlives any attempt by a wide margin, so it only ever expires for a worker
        // that died or stalled.
        let lease_ms = (self.settings.timeout.as_secs_f64() + 60.0) * 1000.0;
        let limit = i64::try_from(free).unwrap_or(i64::MAX);
        let plans = &mut self.plans;
        let flush = self.flush_due;
        let mut has_inbox = self.has_inbox;
        let mut flushed = None;
        let result = txn("unleash_webhook: recording and claiming", || {
            queue::record(plans, &outcomes)?;
            if flush {
                has_inbox = has_inbox || queue::has_inbox()?;
                flushed = Some(if has_inbox {
                    queue::flush_inbox(plans, FLUSH_BATCH)?
                } else {
                    0
                });
            }
            if limit == 0 {
                return Ok((Vec::new(), HashMap::new()));
            }
            let claimed = queue::claim(plans, limit, per_sub, &room, lease_ms, &known)?;
            if !claimed.is_empty() {
                // What is claimed is about to be sent under its delivery's id: the commit must
                // be durable (and on a synchronous standby) before any request leaves, or a
                // crash could lose these ids and hand them to other events after the restart.
                queue::commit_durably()?;
            }
            let mut by_table: HashMap<pg_sys::Oid, Vec<i64>> = HashMap::new();
            for c in &claimed {
                by_table.entry(c.event_table).or_default().push(c.event_id);
            }
            let mut events: HashMap<(pg_sys::Oid, i64), EventRow> = HashMap::new();
            for (table, ids) in by_table {
                for (id, row) in queue::read_events_kept(plans, table, &ids)? {
                    events.insert((table, id), row);
                }
            }
            Ok((claimed, events))
        });
        let (claimed, events) = match result {
            Ok(v) => v,
            Err(e) => {
                // The attempts stay 'sending' with their lease and are sent again when it
                // expires: losing the record of an attempt is allowed, losing a delivery not.
                log!(
                    "{NAME}: could not record {} results and claim: {e}",
                    outcomes.len()
                );
                self.ready = false;
                // A DROP or ALTER EXTENSION may have invalidated the kept plans.
                self.plans.reset();
                self.has_inbox = false;
                return false;
            }
        };
        self.has_inbox = has_inbox;
        let more_inbox = flushed.is_some_and(|n| n >= i64::from(FLUSH_BATCH));
        if flushed.is_some() {
            self.flush_due = more_inbox;
            self.last_flush = Some(Instant::now());
        }
        let count = claimed.len();
        for c in claimed {
            // One event usually goes to several subscriptions: look it up, do not take it.
            let event = events.get(&(c.event_table, c.event_id));
            self.dispatch(c, event);
        }
        if let Some(stats) = wake::stats() {
            stats.in_flight.store(
                i32::try_from(self.pool.in_flight()).unwrap_or(i32::MAX),
                Ordering::Relaxed,
            );
            stats
                .last_activity_us
                .store(unix_micros(), Ordering::Relaxed);
        }
        more_inbox || (free > 0 && count >= free)
    }

    /// Deletes finished deliveries past the retention, at most once a second and in batches
    /// of `PURGE_BATCH`, so that it never holds up deliveries. Returns true when a full batch
    /// went (more is probably due).
    fn purge_old(&mut self) -> bool {
        let retention = self.settings.retention;
        if retention.is_zero()
            || self
                .last_purge
                .is_some_and(|t| t.elapsed() < Duration::from_secs(1))
        {
            return false;
        }
        let result = txn("unleash_webhook: purging old deliveries", || {
            queue::purge_finished(retention.as_secs_f64(), PURGE_BATCH)
        });
        match result {
            Ok(n) => {
                if let Some(stats) = wake::stats() {
                    stats
                        .purged
                        .fetch_add(u64::try_from(n).unwrap_or(0), Ordering::Relaxed);
                }
                let full = n >= PURGE_BATCH;
                // A full batch: go again at once, the backlog is being worked off.
                self.last_purge = if full { None } else { Some(Instant::now()) };
                full
            }
            Err(e) => {
                log!("{NAME}: could not purge old deliveries: {e}");
                self.last_purge = Some(Instant::now());
                false
            }
        }
    }

    fn subscription(&mut self, c: &mut Claimed) -> Arc<Subscription> {
        if let Some(cols) = c.sub.take() {
            let sub = Arc::new(Subscription::new(
                cols.url,
                cols.content_type,
                cols.authorization,
                &cols.headers_json,
                cols.body_template.as_deref(),
                &cols.signing_secrets,
            ));
            self.subs.insert(
                c.subscription_id,
                CachedSub {
                    version: c.sub_version,
                    sub: Arc::clone(&sub),
                },
            );
            return sub;
        }
        match self.subs.get(&c.subscription_id) {
            Some(cached) => Arc::clone(&cached.sub),
            // Cannot happen (the claim returns the columns when our version differs); an empty
            // subscription makes the delivery fail visibly instead of panicking.
            None => Arc::new(Subscription::new(
                String::new(),
                String::new(),
                None,
                "{}",
                None,
                &[],
            )),
        }
    }

    fn dispatch(&mut self, mut c: Claimed, event: Option<&EventRow>) {
        let sub = self.subscription(&mut c);
        let webhook_id = format!("msg_{}_{}", self.installation, c.delivery_id);
        let ctx = Context {
            webhook_id: &webhook_id,
            timestamp: unix_seconds(SystemTime::now()),
            unleash_url: &self.settings.unleash_url,
        };
        let built = match event {
            Some(row) => request::build(&sub, row, &ctx).map_err(|e| ("render", e.0)),
            None => Err((
                "event_missing",
                format!("event {} no longer exists in its events table", c.event_id),
            )),
        };
        let request = match built {
            Ok(r) => r,
            Err((class, message)) => {
                self.local_outcomes.push(Outcome {
                    delivery_id: c.delivery_id,
                    attempt: c.attempt,
                    started_epoch: epoch_seconds(SystemTime::now()),
                    duration_ms: 0.0,
                    status_code: None,
                    error_class: Some(class.to_string()),
                    error: Some(message),
                    excerpt: None,
                    new_status: "failed",
                    retry_in_ms: 0.0,
                    body: None,
                });
                return;
            }
        };
        let body_to_store = if c.has_body {
            None
        } else {
            Some(String::from_utf8_lossy(&request.body).into_owned())
        };
        let ticket = Ticket {
            delivery_id: c.delivery_id,
            subscription_id: c.subscription_id,
            attempt: c.attempt,
            round_attempt: c.round_attempt,
            body_to_store,
            installation: Arc::clone(&self.installation),
        };
        let job = Job {
            ticket,
            request,
            client: self.client.clone(),
        };
        match self.pool.submit(job, self.settings.max_concurrency) {
            Ok(()) => *self.in_flight_per_sub.entry(c.subscription_id).or_insert(0) += 1,
            // The row stays claimed; its lease brings it back.
            Err(e) => log!(
                "{NAME}: cannot hand delivery {} to a sender: {e}",
                c.delivery_id
            ),
        }
    }

    fn shutdown(&mut self) {
        let finished = self.pool.shutdown(Instant::now() + SHUTDOWN_GRACE);
        let left = self.pool.in_flight();
        let mut outcomes = std::mem::take(&mut self.local_outcomes);
        for d in finished {
            outcomes.push(self.outcome_of(d));
        }
        if self.ready && !outcomes.is_empty() {
            self.write_outcomes(&outcomes);
        }
        if left > 0 {
            log!(
                "{NAME}: stopping with {left} attempts in flight; they are sent again after the restart"
            );
        }
    }
}

fn unix_micros() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

fn unix_seconds(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn epoch_seconds(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Runs `f` in its own transaction. A Postgres error (or an `Err`) rolls it back and comes
/// back as `Err(message)`, so that the loop goes on.
fn txn<R>(activity: &str, f: impl FnOnce() -> Result<R, String>) -> Result<R, String> {
    let activity = CString::new(activity).unwrap_or_default();
    // SAFETY: the worker's main thread, outside any transaction: the usual way a background
    // worker opens one (as BackgroundWorker::transaction does).
    unsafe {
        pg_sys::pgstat_report_activity(pg_sys::BackendState::STATE_RUNNING, activity.as_ptr());
        pg_sys::SetCurrentStatementStartTimestamp();
        pg_sys::StartTransactionCommand();
        pg_sys::PushActiveSnapshot(pg_sys::GetTransactionSnapshot());
    }
    let result = PgTryBuilder::new(AssertUnwindSafe(f))
        .catch_others(|e| {
            Err(match e {
                pg_sys::panic::CaughtError::PostgresError(r)
                | pg_sys::panic::CaughtError::ErrorReport(r)
                | pg_sys::panic::CaughtError::RustPanic { ereport: r, .. } => {
                    r.message().to_string()
                }
            })
        })
        .execute();
    // SAFETY: ends the transaction opened above, whichever way it went.
    unsafe {
        match &result {
            Ok(_) => {
                pg_sys::PopActiveSnapshot();
                pg_sys::CommitTransactionCommand();
                // A background worker must flush its table statistics itself (regular backends
                // do it when idle); without this autovacuum never sees the worker's updates and
                // the queue bloats. Rate-limited inside Postgres to once a second.
                pg_sys::pgstat_report_stat(false);
            }
            Err(_) => pg_sys::AbortCurrentTransaction(),
        }
    }
    result
}
