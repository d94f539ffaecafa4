//! The background worker: registration and its one loop.
//!
//! Shape: signals, connect, wait for the extension, recover what a dead predecessor had
//! claimed, then loop { record finished attempts (one short transaction); claim due deliveries
//! (one short transaction, FOR UPDATE SKIP LOCKED, with a lease); render them and hand them to
//! the sender thread; wait on the latch (set at COMMIT by `wake`), the sender's socket, or a
//! timeout }. No transaction is ever open while HTTP is in flight. A Postgres error inside a
//! transaction is caught, logged and rolled back: it costs one batch, never the worker.

mod held;
mod pool;
mod send;

use crate::core::event_json::EventRow;
use crate::core::request::{self, Context, Subscription};
use crate::http::{self, Client, ClientConfig, DestinationPolicy, Verdict};
use crate::pg::NAME;
use crate::pg::capture;
use crate::pg::compat;
use crate::pg::gucs::{self, WorkerSettings, set_session_option};
use crate::pg::queue::{self, Outcome};
use crate::pg::vacuum;
use crate::pg::wake;
use pgrx::bgworkers::{BackgroundWorker, BackgroundWorkerBuilder, SignalWakeFlags};
use pgrx::datum::TimestampWithTimeZone;
use pgrx::pg_sys;
use pgrx::prelude::*;
use pool::{Done, Job, Pool};
use std::collections::{HashMap, HashSet, VecDeque};
use std::ffi::CString;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long a SIGTERM waits for attempts in flight before the rest are left claimed (they are
/// sent again after the restart). Postgres's shutdown waits for us, so keep it short.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// Deliveries the retention purge looks at per transaction.
const PURGE_BATCH: i64 = 1_000;

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
    // A DROP, RENAME or copy of the database asked the last worker to leave: wait until it is
    // over (the database may be gone then; connecting finds out).
    let mut told = false;
    while let Some(pid) = wake::asked_to_leave_by() {
        if !told {
            log!("{NAME}: waiting for pid {pid} to finish with database \"{database}\"");
            told = true;
        }
        if !BackgroundWorker::wait_latch(Some(Duration::from_millis(100))) {
            // SAFETY: proc_exit runs the exit callbacks and never returns.
            unsafe { pg_sys::proc_exit(0) }
        }
    }
    wake::set_connecting(true);
    BackgroundWorker::connect_worker_to_spi(Some(&database), None);
    wake::set_connecting(false);
    // Its statements take milliseconds; a minute means something is wrong.
    gucs::pin_session(NAME, "60s");
    // The worker's own commits need no flush wait: what a crash loses of them is sent again
    // (at-least-once), under the same webhook-id (the delivery id is fixed at capture).
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

fn describe(s: &WorkerSettings) -> String {
    format!(
        "max_retries={} retry_delay={}ms timeout={}ms connect_timeout={}ms max_concurrency={} \
         max_concurrency_per_subscription={} ca_file={} poll_interval={}ms http_proxy={} \
         destination_allowlist={} retention={}s vacuum_interval={}s max_body_size={}kB \
         worker_nice={} unleash_url={}",
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
        s.max_body_size / 1024,
        s.nice,
        s.unleash_url
    )
}

/// The worker's CPU priority, for its main thread and its sender thread (see worker_nice).
fn apply_nice(nice: i32) {
    if let Err(e) = pool::set_process_nice(nice) {
        log!(
            "{NAME}: unleash_webhook.worker_nice = {nice} not applied ({e}): lowering the value \
             takes effect when the worker starts again"
        );
    }
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
        // Every sender may hold a connection to the same host (many subscriptions often
        // share one endpoint): fewer idle slots than senders means a connection closed and
        // opened again per request, a TIME_WAIT socket each, at full load.
        max_idle_per_host: s.max_concurrency.max(4),
        destination_policy,
    }
}

/// A subscription as the worker holds it: the parsed settings and the row version (xmin) they
/// were built from.
struct SubState {
    version: i64,
    enabled: bool,
    dropped: bool,
    sub: Arc<Subscription>,
    /// Its secrets, scrubbed from what is stored of an endpoint's answer (an echo).
    secrets: Vec<String>,
}

/// An inbox row the worker holds: its events, and how many of its pairs still have no
/// `_deliveries` row. It is deleted in the transaction that records its last pair.
struct HeldRow {
    table: pg_sys::Oid,
    queued_at: TimestampWithTimeZone,
    events: Vec<(i64, String)>,
    left: usize,
}

/// An inbox pair waiting in memory for a free sender (its subscription's share of them).
struct Held {
    delivery_id: i64,
    inbox_id: i64,
    /// Index into its row's events.
    event: usize,
    since: Instant,
}

/// Where a delivery comes from, and so how its outcome is written.
#[derive(Clone)]
enum Origin {
    /// An inbox pair: its outcome writes its `_deliveries` row, and counts down its row.
    Inbox { inbox_id: i64 },
    /// A row of `_deliveries` claimed by this worker: its outcome updates it.
    Log { has_body: bool },
}

/// One delivery on its way out (or just back): what its outcome needs.
struct Sending {
    delivery_id: i64,
    subscription_id: i64,
    origin: Origin,
    table: pg_sys::Oid,
    event_id: i64,
    event_type: String,
    created_at: TimestampWithTimeZone,
    /// The attempt's number over the delivery's life, and within its current round (reset by
    /// redeliver), for the retry rule.
    attempt: i32,
    round_attempt: i32,
    /// Set when the attempt is handed out: the body to store (first attempt only), and the
    /// hash the request's webhook-id ends with.
    body: Option<String>,
    content_hash: Option<i64>,
}

/// An event as the turn read it.
enum Read {
    Row(Box<EventRow>),
    /// It cannot be read (the table's columns changed, a value does not convert): why.
    Failed(String),
    /// Its table is locked by the pid given (an ALTER, a DROP, a migration): read it later.
    Locked(i32),
}

/// A turn's batch: what to send, once its events are read.
struct Batch {
    sending: Vec<Sending>,
    events: HashMap<(pg_sys::Oid, i64), Read>,
}

struct Worker {
    settings: WorkerSettings,
    client: Client,
    pool: Pool,
    wait_set: *mut pg_sys::WaitEventSet,
    /// Set once the extension exists at this library's version and recovery ran; cleared when
    /// a transaction fails.
    ready: bool,
    /// Whether the start-up recovery of a predecessor's claims has run.
    recovered: bool,
    plans: queue::Plans,
    installation: Arc<str>,
    subs: HashMap<i64, SubState>,
    rows: HashMap<i64, HeldRow>,
    /// Inbox pairs waiting for a sender, per subscription, oldest first.
    held: HashMap<i64, VecDeque<Held>>,
    held_total: usize,
    /// Subscriptions with held pairs, in the order they get the next free sender.
    turns: VecDeque<i64>,
    in_flight: HashMap<u64, Sending>,
    /// Claimed log deliveries whose events table was locked: sent in a later turn.
    deferred: Vec<Sending>,
    in_flight_per_sub: HashMap<i64, i32>,
    next_key: u64,
    /// Outcomes to write, and inbox rows whose pairs all have one.
    outcomes: Vec<Outcome>,
    finished_rows: Vec<i64>,
    /// `_deliveries` may hold due rows (a retry, a put-aside or redelivered delivery).
    log_due: bool,
    /// Subscriptions whose last claim stopped at their share of the senders while more of
    /// their log rows may be due: a result of theirs makes the log due again at once, instead
    /// of at the next LOG_CHECK_EVERY (which paced put-aside deliveries at one share a second).
    log_capped: HashSet<i64>,
    last_log_check: Option<Instant>,
    /// The earliest retry the worker scheduled, so that it wakes for it without polling.
    next_retry: Option<Instant>,
    last_error: Option<String>,
    last_purge: Option<Instant>,
    purge_from: i64,
    purge_sweep: Instant,
    vacuums: vacuum::Vacuums,
    /// A commit queued something (or the poll interval passed): read the inbox this turn.
    inbox_due: bool,
    last_load: Option<Instant>,
}

/// Inbox rows read per turn: a bulk INSERT's thousands of rows come in a few turns, each
/// short, and the first of its deliveries leave after the first of them.
const LOAD_ROWS: i64 = 200;
/// Most inbox pairs held in memory (about 100 bytes each). Past it the worker reads no more of
/// the inbox until some are sent.
const MAX_HELD: usize = 200_000;
/// When the held pairs fill MAX_HELD (no more of the inbox is read, so every subscription
/// waits), the subscription holding the most, if its oldest has waited this long (its endpoint
/// is slow or hangs), has its held deliveries written to the log as pending: the inbox is read
/// again, and the log's claims serve that subscription from then. A long queue alone is not
/// slowness: a bulk INSERT's backlog stays in memory, where it costs nothing to hold.
const PUT_ASIDE_AFTER: Duration = Duration::from_secs(5);
/// Outcomes per write: one statement's arrays stay far below PostgreSQL's 1 GB limit even with
/// stored bodies.
const RECORD_CHUNK: usize = 500;
/// How far the main thread fills the sender's queue ahead of it: this many times the
/// concurrency, per subscription and in all. The pool runs no more than the concurrency at once
/// (per subscription too); the rest wait in its queue, so that an attempt that finishes is
/// followed at once by the next instead of waiting for the main thread's next turn. Measured
/// with tests/bench (1 subscription, 2026-12-07):
/// 2 -> 9,900/s at 102-108 us of worker CPU per delivery; 4 -> 12,500-12,900/s at 73-78 us;
/// 8 -> no better than 4.
const LOOKAHEAD: usize = 4;
/// See run(): a pause of the main thread while this many requests wait for a sender.
const COALESCE_WHEN_QUEUED: usize = 8;
const COALESCE_FOR: Duration = Duration::from_micros(300);
/// How often the worker looks at the log for due rows when nothing told it some are there.
const LOG_CHECK_EVERY: Duration = Duration::from_secs(1);

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
        if settings.nice != 0 {
            apply_nice(settings.nice);
        }
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
            rows: HashMap::new(),
            held: HashMap::new(),
            held_total: 0,
            turns: VecDeque::new(),
            in_flight: HashMap::new(),
            deferred: Vec::new(),
            in_flight_per_sub: HashMap::new(),
            next_key: 0,
            outcomes: Vec::new(),
            finished_rows: Vec::new(),
            log_due: true,
            log_capped: HashSet::new(),
            last_log_check: None,
            next_retry: None,
            last_error: None,
            last_purge: None,
            purge_from: 0,
            purge_sweep: Instant::now(),
            vacuums: vacuum::Vacuums::new(row_changes()),
            inbox_due: true,
            last_load: None,
        })
    }

    fn run(&mut self) -> i32 {
        loop {
            if BackgroundWorker::sigterm_received() {
                self.shutdown();
                return 1;
            }
            if let Some(pid) = wake::asked_to_leave_by() {
                log!(
                    "{NAME}: leaving database \"{}\": pid {pid} drops, renames or copies it",
                    gucs::database_name()
                );
                self.shutdown();
                return 1;
            }
            if self.pool.ended() {
                // Only a bug ends it (each attempt's panic is caught): what it held would never
                // come back. A new worker process sends it again (at-least-once).
                log!("{NAME}: the sender thread ended; the worker starts again");
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
                .last_load
                .is_none_or(|at| at.elapsed() >= self.settings.poll_interval);
            self.inbox_due |= committed || poll_due;
            self.log_due |= wake::take_log_pending()
                || self
                    .last_log_check
                    .is_none_or(|at| at.elapsed() >= LOG_CHECK_EVERY)
                || self.next_retry.is_some_and(|at| at <= Instant::now());
            let more = self.turn();
            let more_to_purge = self.purge_old();
            self.vacuums
                .tick(self.settings.vacuum_interval, row_changes());
            if more || more_to_purge {
                // The senders still have queued requests to take: let results gather for a
                // moment, so that a turn (three transactions) records and hands out many at
                // once rather than a few. Nothing waits on it: the senders are busy meanwhile.
                if self.pool.waiting() >= COALESCE_WHEN_QUEUED {
                    std::thread::sleep(COALESCE_FOR);
                }
                continue;
            }
            self.wait(self.next_timeout());
        }
    }

    /// Checks that the extension exists at this library's version and recovers a
    /// predecessor's claims.
    fn become_ready(&mut self) -> bool {
        let recover = !self.recovered;
        let result = txn("unleash_webhook: starting", || {
            let Some(version) = queue::extension_version()? else {
                return Ok(Err(format!(
                    "extension unleash_webhook is not installed in database \"{}\"; waiting for CREATE EXTENSION",
                    gucs::database_name()
                )));
            };
            if version != env!("CARGO_PKG_VERSION") {
                // A new library serves an older schema between the restart and ALTER EXTENSION
                // UPDATE: the capture trigger goes on writing the old inbox, and the update
                // carries it over; the worker sends from the new schema only.
                return Ok(Err(format!(
                    "extension unleash_webhook {version} is installed, this library is {}; \
                     waiting for ALTER EXTENSION unleash_webhook UPDATE",
                    env!("CARGO_PKG_VERSION")
                )));
            }
            let installation = queue::installation_id()?;
            // Only at start: what is 'sending' now was claimed by a predecessor that died.
            // Later (after a failed transaction) our own attempts are still in flight.
            let recovered = if recover {
                queue::recover_claimed()?
            } else {
                0
            };
            Ok(Ok((installation, recovered)))
        });
        match result {
            Ok(Ok((installation, recovered))) => {
                if recovered > 0 {
                    log!("{NAME}: {recovered} deliveries claimed before a restart are due again");
                }
                if *self.installation != *installation {
                    // A new installation (DROP + CREATE EXTENSION): what the worker holds or
                    // has in flight belongs to the old tables; results coming back are dropped.
                    self.forget_all();
                }
                self.installation = Arc::from(installation.as_str());
                self.recovered = true;
                self.ready = true;
                self.inbox_due = true;
                self.log_due = true;
                self.last_error = None;
                true
            }
            Ok(Err(waiting)) => {
                self.note_error(waiting);
                false
            }
            Err(e) => {
                self.note_error(e);
                false
            }
        }
    }

    /// Drops everything held for an installation that is gone.
    fn forget_all(&mut self) {
        self.subs.clear();
        self.rows.clear();
        self.held.clear();
        self.held_total = 0;
        self.turns.clear();
        self.in_flight.clear();
        self.in_flight_per_sub.clear();
        self.log_capped.clear();
        self.deferred.clear();
        self.outcomes.clear();
        self.finished_rows.clear();
    }

    /// Logs a problem once, not on every poll, and shows it in worker_status().
    fn note_error(&mut self, message: String) {
        if self.last_error.as_deref() != Some(message.as_str()) {
            log!("{NAME}: {message}");
            if let Some(stats) = wake::stats() {
                stats.last_error.set(&message, unix_micros());
            }
            self.last_error = Some(message);
        }
    }

    /// A transaction failed: the kept plans may be stale (DROP or ALTER EXTENSION), and the
    /// extension is checked again before the next turn. What the worker holds stays held.
    fn failed(&mut self, what: &str, e: String) {
        self.note_error(format!("could not {what}: {e}"));
        self.ready = false;
        self.plans.reset();
    }

    /// One step of a turn failed in its subtransaction; the others went on. The same as a
    /// failed transaction for what follows: the extension may be gone or changing.
    fn step_failed(&mut self, what: &str, e: String) {
        self.failed(what, e);
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
        if settings.nice != self.settings.nice {
            apply_nice(settings.nice);
        }
        log!("{NAME}: configuration reloaded ({})", describe(&settings));
        self.settings = settings;
    }

    fn next_timeout(&self) -> Duration {
        let poll = self.settings.poll_interval;
        let mut timeout = match self.next_retry {
            Some(at) => at.saturating_duration_since(Instant::now()).min(poll),
            None => poll,
        };
        // held deliveries of a subscription that may need putting aside
        if self.held_total > 0 {
            timeout = timeout.min(PUT_ASIDE_AFTER);
        }
        timeout
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

    /// One turn of the loop: write what finished; read new inbox rows and due log rows; hand
    /// what the free senders allow to them. Returns true when more may be due right now.
    fn turn(&mut self) -> bool {
        self.collect_results();
        self.put_aside_slow();
        if !self.outcomes.is_empty() || !self.finished_rows.is_empty() {
            self.write_outcomes();
        }
        if !self.ready {
            return false;
        }
        let free = self.window().saturating_sub(self.pool.in_flight());
        let load = self.inbox_due && self.held_total < MAX_HELD;
        let claim = self.log_due && free > 0;
        if !load && !claim && (free == 0 || self.held_total == 0) {
            return false;
        }
        let (loaded, batch) = match self.read_turn(load, claim, free) {
            Ok(v) => v,
            Err(e) => {
                self.failed("read the inbox and the events", e);
                return false;
            }
        };
        if load {
            self.last_load = Some(Instant::now());
            self.inbox_due = loaded >= LOAD_ROWS as usize;
        }
        let sent = self.dispatch(batch);
        if let Some(stats) = wake::stats() {
            stats.in_flight.store(
                i32::try_from(self.pool.in_flight()).unwrap_or(i32::MAX),
                Ordering::Relaxed,
            );
            stats
                .last_activity_us
                .store(unix_micros(), Ordering::Relaxed);
        }
        // more inbox to read, or senders free while deliveries are held
        self.inbox_due
            || !self.outcomes.is_empty()
            || (sent > 0 && self.held_total > 0 && self.pool.in_flight() < self.window())
    }

    /// Attempts the pool may hold at once, running or queued (see LOOKAHEAD).
    fn window(&self) -> usize {
        self.settings.max_concurrency.saturating_mul(LOOKAHEAD)
    }

    /// The same per subscription.
    fn window_per_sub(&self) -> i32 {
        i32::try_from(
            self.settings
                .max_concurrency_per_subscription
                .saturating_mul(LOOKAHEAD),
        )
        .unwrap_or(i32::MAX)
    }

    /// The read side of a turn: new inbox rows and the subscriptions; then due log rows and
    /// the events of what will be sent now. Each step runs in a subtransaction, so that one
    /// that fails (a lock held too long, a bad row) costs only itself and is tried again next
    /// turn; the others go on.
    fn read_turn(
        &mut self,
        load: bool,
        claim: bool,
        free: usize,
    ) -> Result<(usize, Batch), String> {
        let loaded_ids: Vec<i64> = self.rows.keys().copied().collect();
        // A claimed row may wait in the senders' queue behind LOOKAHEAD - 1 others of its
        // subscription, each up to the timeout, before its own attempt: the lease covers that,
        // or a slow endpoint's rows would be claimed (and sent) a second time meanwhile.
        let lease_ms = (self.settings.timeout.as_secs_f64() * LOOKAHEAD as f64 + 60.0) * 1000.0;
        let per_sub = self.window_per_sub();
        let mut loaded = 0;
        if load || claim {
            let mut plans = std::mem::take(&mut self.plans);
            let (rows, subs) = txn("unleash_webhook: reading the inbox", || {
                let rows = if load {
                    Some(queue::isolated(|| {
                        queue::load_inbox(&mut plans, &loaded_ids, LOAD_ROWS)
                    }))
                } else {
                    None
                };
                let subs = queue::isolated(|| queue::subscriptions(&mut plans));
                Ok((rows, subs))
            })?;
            self.plans = plans;
            match subs {
                Ok(subs) => self.refresh_subscriptions(subs),
                Err(e) => self.step_failed("read the subscriptions", e),
            }
            match rows {
                Some(Ok(rows)) => {
                    loaded = rows.len();
                    for row in rows {
                        self.hold(row);
                    }
                }
                Some(Err(e)) => self.step_failed("read the inbox", e),
                None => {}
            }
            self.put_aside_paused();
        }
        // what a locked events table held back last turn comes first
        let mut batch = std::mem::take(&mut self.deferred);
        batch.extend(self.take_held(free.saturating_sub(batch.len())));
        let room: HashMap<i64, i32> = self
            .in_flight_per_sub
            .iter()
            .map(|(id, n)| (*id, per_sub - n))
            .collect();
        let limit = free.saturating_sub(batch.len());
        let claim = claim && limit > 0;
        if batch.is_empty() && !claim {
            return Ok((
                loaded,
                Batch {
                    sending: batch,
                    events: HashMap::new(),
                },
            ));
        }
        let mut plans = std::mem::take(&mut self.plans);
        let wanted: Vec<(pg_sys::Oid, i64)> = batch.iter().map(|s| (s.table, s.event_id)).collect();
        let result = txn("unleash_webhook: claiming and reading events", || {
            let claimed = if claim {
                Some(queue::isolated(|| {
                    queue::claim(
                        &mut plans,
                        i64::try_from(limit).unwrap_or(i64::MAX),
                        per_sub,
                        &room,
                        lease_ms,
                    )
                }))
            } else {
                None
            };
            let mut wanted = wanted;
            if let Some(Ok(claimed)) = &claimed {
                wanted.extend(claimed.iter().map(|c| (c.event_table, c.event_id)));
            }
            let events = read_events_isolated(&mut plans, &wanted);
            Ok((claimed, events))
        });
        self.plans = plans;
        let (claimed, events) = match result {
            Ok(v) => v,
            Err(e) => {
                // What was taken from memory goes back, to be sent next turn; claimed log rows
                // stay claimed, and their lease brings them back.
                for s in batch.into_iter().rev() {
                    self.unhold(s);
                }
                return Err(e);
            }
        };
        match claimed {
            Some(Ok(claimed)) => {
                self.last_log_check = Some(Instant::now());
                self.log_due = claimed.len() >= limit;
                // a subscription that had no room this time stays marked: its results are
                // what makes room
                self.log_capped
                    .retain(|sub| room.get(sub).is_some_and(|r| *r <= 0));
                let mut claimed_per_sub: HashMap<i64, i32> = HashMap::new();
                for c in &claimed {
                    *claimed_per_sub.entry(c.subscription_id).or_insert(0) += 1;
                }
                for (sub, n) in claimed_per_sub {
                    if n >= room.get(&sub).copied().unwrap_or(per_sub) {
                        self.log_capped.insert(sub);
                    }
                }
                batch.extend(claimed.into_iter().map(|c| Sending {
                    delivery_id: c.delivery_id,
                    subscription_id: c.subscription_id,
                    origin: Origin::Log {
                        has_body: c.has_body,
                    },
                    table: c.event_table,
                    event_id: c.event_id,
                    event_type: c.event_type,
                    created_at: c.created_at,
                    attempt: c.attempt,
                    round_attempt: c.round_attempt,
                    body: None,
                    content_hash: None,
                }));
            }
            Some(Err(e)) => {
                self.last_log_check = Some(Instant::now());
                self.step_failed("claim due deliveries", e);
            }
            None => {}
        }
        Ok((
            loaded,
            Batch {
                sending: batch,
                events,
            },
        ))
    }

    /// Takes in the subscriptions as they are now; parses only those whose row changed.
    fn refresh_subscriptions(&mut self, rows: Vec<queue::SubscriptionRow>) {
        let mut seen = std::collections::HashSet::with_capacity(rows.len());
        for r in rows {
            seen.insert(r.id);
            if self.subs.get(&r.id).is_some_and(|s| s.version == r.version) {
                continue;
            }
            let secrets = request::secret_values(
                &r.url,
                r.authorization.as_deref(),
                &r.headers_json,
                &r.signing_secrets,
            );
            let sub = Subscription::new(
                r.url,
                r.content_type,
                r.authorization,
                &r.headers_json,
                r.body_template.as_deref(),
                &r.signing_secrets,
            );
            self.subs.insert(
                r.id,
                SubState {
                    version: r.version,
                    enabled: r.enabled,
                    dropped: r.dropped,
                    sub: Arc::new(sub),
                    secrets,
                },
            );
        }
        self.subs.retain(|id, _| seen.contains(id));
    }

    /// Deletes finished deliveries past the retention, at most once a second and in batches
    /// of `PURGE_BATCH`, so that it never holds up deliveries. Returns true when a full batch
    /// went (more is probably due).
    fn purge_old(&mut self) -> bool {
        let retention = self.settings.retention;
        if !self.ready
            || retention.is_zero()
            || self
                .last_purge
                .is_some_and(|t| t.elapsed() < Duration::from_secs(1))
        {
            return false;
        }
        // Now and then from the start again: a delivery that finished late (a long retry) sits
        // before where the last scan went on from.
        if self.purge_sweep.elapsed() > Duration::from_secs(600) {
            self.purge_from = 0;
            self.purge_sweep = Instant::now();
        }
        let from = self.purge_from;
        let result = txn("unleash_webhook: purging old deliveries", || {
            queue::purge_finished(retention.as_secs_f64(), from, PURGE_BATCH)
        });
        match result {
            Ok((n, next)) => {
                if let Some(stats) = wake::stats() {
                    stats
                        .purged
                        .fetch_add(u64::try_from(n).unwrap_or(0), Ordering::Relaxed);
                }
                let more = next > from && n > 0;
                self.purge_from = next;
                // Went on: go again at once, a backlog is being worked off.
                self.last_purge = if more { None } else { Some(Instant::now()) };
                more
            }
            Err(e) => {
                log!("{NAME}: could not purge old deliveries: {e}");
                self.last_purge = Some(Instant::now());
                false
            }
        }
    }

    fn shutdown(&mut self) {
        for done in self.pool.shutdown(Instant::now() + SHUTDOWN_GRACE) {
            if let Some(s) = self.in_flight.remove(&done.key) {
                self.outcome_of(s, done);
            }
        }
        let left = self.pool.in_flight();
        if self.ready && !self.outcomes.is_empty() {
            self.write_outcomes();
        }
        if left > 0 {
            log!(
                "{NAME}: stopping with {left} attempts in flight; they are sent again after the restart"
            );
        }
    }
}

/// Reads the events of `wanted`, a table at a time, each in a subtransaction: a table that
/// cannot be read (retyped columns, a lock held too long, a row that does not convert) costs
/// only its own deliveries. When a whole table's read fails, its events are read one by one,
/// so that one bad row fails only its own deliveries, with the reason.
fn read_events_isolated(
    plans: &mut queue::Plans,
    wanted: &[(pg_sys::Oid, i64)],
) -> HashMap<(pg_sys::Oid, i64), Read> {
    let mut by_table: HashMap<pg_sys::Oid, Vec<i64>> = HashMap::new();
    for (table, id) in wanted {
        let ids = by_table.entry(*table).or_default();
        if !ids.contains(id) {
            ids.push(*id);
        }
    }
    let mut out = HashMap::with_capacity(wanted.len());
    for (table, ids) in by_table {
        if let Err(holder) = queue::try_lock_events_table(table) {
            out.extend(ids.iter().map(|id| ((table, *id), Read::Locked(holder))));
            continue;
        }
        match queue::isolated(|| queue::read_events(Some(&mut *plans), table, &ids)) {
            Ok(rows) => {
                out.extend(
                    rows.into_iter()
                        .map(|(id, row)| ((table, id), Read::Row(Box::new(row)))),
                );
            }
            Err(table_error) => {
                plans.forget_events(table);
                for id in ids {
                    match queue::isolated(|| queue::read_events(None, table, &[id])) {
                        Ok(mut rows) => {
                            if let Some(row) = rows.remove(&id) {
                                out.insert((table, id), Read::Row(Box::new(row)));
                            }
                        }
                        Err(e) => {
                            // the row's own error when it has one, else the table's
                            let why = if e.is_empty() { table_error.clone() } else { e };
                            out.insert(
                                (table, id),
                                Read::Failed(format!("cannot read event {id}: {why}")),
                            );
                        }
                    }
                }
            }
        }
    }
    out
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
