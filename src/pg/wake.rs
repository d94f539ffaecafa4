//! Waking the worker at COMMIT.
//!
//! The capture trigger calls `_wake_at_commit()`, which only sets a backend-local flag. One
//! transaction callback per backend (registered the first time) turns that flag into a
//! `SetLatch` on the worker's latch when the transaction commits, so the worker starts sending
//! within a millisecond of the commit instead of at its next poll; an aborted or prepared
//! transaction wakes nothing. Registering a callback per transaction instead would pile them up
//! (an insert loop fell from 2,512/s to 466/s over 100k inserts in a trial).
//!
//! The worker publishes its PGPROC number in shared memory. Shared memory exists only when the
//! library was preloaded; without it every function here is a no-op and the rows wait, queued.

use crate::pg::compat;
use pgrx::pg_sys;
use pgrx::prelude::*;
use pgrx::{PGRXSharedMemory, PgAtomic};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicI64, AtomicU32, AtomicU64, Ordering};

/// What backends need to find the worker.
#[derive(Default)]
pub struct WorkerSlot {
    /// The worker's PGPROC number, or -1 when no worker runs.
    procno: AtomicI32,
    /// The worker's pid (0 when none), for `worker_pid()` and logs.
    pid: AtomicI32,
    /// The OID of the database the worker serves (0 when none). A commit in another database
    /// (the extension may be created in several) has nothing for it: no wake, no wasted turn.
    database: AtomicU32,
    /// Set by committing transactions that queued something; cleared by the worker before it
    /// drains, so a commit that lands during a drain makes it loop again at once.
    pending: AtomicBool,
    /// Set by committing transactions that made a delivery of the log due (redeliver(),
    /// resume_subscription()): the worker looks at the log then, not on every commit.
    log_pending: AtomicBool,
    /// What worker_status() shows; written by the worker only.
    pub stats: WorkerStats,
    /// Set while the worker connects to its database: still set at the next start means the
    /// last attempt died there (the database does not exist), so that start waits instead.
    connecting: AtomicBool,
    /// The pid of a backend about to DROP, RENAME or copy (CREATE DATABASE ... TEMPLATE) the
    /// worker's database, which needs the worker gone from it; 0 when none (see `leave`).
    leave_for: AtomicI32,
}

/// Counters since the worker started, readable by any backend without a lock.
#[derive(Default)]
pub struct WorkerStats {
    /// Unix time in microseconds.
    pub started_at_us: AtomicI64,
    pub last_activity_us: AtomicI64,
    pub in_flight: AtomicI32,
    pub attempts: AtomicU64,
    pub delivered: AtomicU64,
    pub failed: AtomicU64,
    pub retries: AtomicU64,
    pub purged: AtomicU64,
    /// The last problem the worker logged (a step that failed, why it waits), and when.
    pub last_error: Message,
    /// The pid holding a lock on an events table that the worker needs now, 0 when none.
    pub blocked_by: AtomicI32,
}

/// A short text in shared memory, written by one process (the worker) and read by any: a
/// sequence number, odd while a write is under way, tells a reader to read again.
pub struct Message {
    seq: AtomicU64,
    at_us: AtomicI64,
    len: AtomicU32,
    bytes: [std::sync::atomic::AtomicU8; 256],
}

impl Default for Message {
    fn default() -> Self {
        Message {
            seq: AtomicU64::new(0),
            at_us: AtomicI64::new(0),
            len: AtomicU32::new(0),
            bytes: std::array::from_fn(|_| std::sync::atomic::AtomicU8::new(0)),
        }
    }
}

impl Message {
    /// Stores `text` (cut at 256 bytes, on a character boundary), or clears it with "".
    pub fn set(&self, text: &str, at_us: i64) {
        let mut end = text.len().min(self.bytes.len());
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        self.seq.fetch_add(1, Ordering::AcqRel);
        for (slot, b) in self.bytes.iter().zip(&text.as_bytes()[..end]) {
            slot.store(*b, Ordering::Relaxed);
        }
        self.len.store(end as u32, Ordering::Relaxed);
        self.at_us.store(at_us, Ordering::Relaxed);
        self.seq.fetch_add(1, Ordering::AcqRel);
    }

    /// The text and when it was set, None when there is none.
    pub fn get(&self) -> Option<(String, i64)> {
        loop {
            let before = self.seq.load(Ordering::Acquire);
            if before % 2 == 1 {
                std::hint::spin_loop();
                continue;
            }
            let len = (self.len.load(Ordering::Relaxed) as usize).min(self.bytes.len());
            let bytes: Vec<u8> = self.bytes[..len]
                .iter()
                .map(|b| b.load(Ordering::Relaxed))
                .collect();
            let at = self.at_us.load(Ordering::Relaxed);
            if self.seq.load(Ordering::Acquire) == before {
                return (len > 0).then(|| (String::from_utf8_lossy(&bytes).into_owned(), at));
            }
        }
    }
}

// SAFETY: only atomics, no pointers: valid in every process that maps the segment.
unsafe impl PGRXSharedMemory for WorkerSlot {}

static SLOT: PgAtomic<WorkerSlot> = unsafe { PgAtomic::new(c"unleash_webhook_worker_slot") };

/// Set once, while preloading, when the shared memory was requested. Guards every `SLOT.get()`:
/// that call panics when the segment does not exist, and a panic in a commit callback would
/// take the whole cluster down.
static mut SHMEM_READY: bool = false;

thread_local! {
    static QUEUED_IN_XACT: Cell<bool> = const { Cell::new(false) };
    static LOG_DUE_IN_XACT: Cell<bool> = const { Cell::new(false) };
    static CALLBACK_REGISTERED: Cell<bool> = const { Cell::new(false) };
    static WARNED_NOT_PRELOADED: Cell<bool> = const { Cell::new(false) };
}

/// Requests the shared memory. `_PG_init`, preload branch only.
pub fn init() {
    pgrx::pg_shmem_init!(
        SLOT = WorkerSlot {
            procno: AtomicI32::new(-1),
            pid: AtomicI32::new(0),
            database: AtomicU32::new(0),
            pending: AtomicBool::new(false),
            log_pending: AtomicBool::new(false),
            stats: WorkerStats::default(),
            connecting: AtomicBool::new(false),
            leave_for: AtomicI32::new(0),
        }
    );
    // SAFETY: _PG_init runs once, single-threaded, in the postmaster before any fork.
    unsafe { SHMEM_READY = true };
}

fn slot() -> Option<&'static WorkerSlot> {
    // SAFETY: written only in _PG_init before any backend exists; read-only afterwards.
    if unsafe { SHMEM_READY } {
        Some(SLOT.get())
    } else {
        None
    }
}

/// Marks the current transaction as having queued deliveries; the worker is woken at COMMIT.
/// For the plpgsql API (redeliver, replay); the capture trigger calls
/// [`queued_in_transaction`] directly.
#[pg_extern(volatile, parallel_unsafe)]
fn _wake_at_commit() {
    queued_in_transaction();
}

/// Marks the current transaction as having made deliveries of the log due (redeliver, resume);
/// the worker is woken at COMMIT and looks at the log.
#[pg_extern(volatile, parallel_unsafe)]
fn _wake_for_log() {
    LOG_DUE_IN_XACT.set(true);
    queued_in_transaction();
}

/// Marks the current transaction as having queued something; the worker is woken at COMMIT.
pub fn queued_in_transaction() {
    if slot().is_none() {
        if !WARNED_NOT_PRELOADED.replace(true) {
            warning!(
                "unleash_webhook is not in shared_preload_libraries: deliveries stay queued until it is"
            );
        }
        return;
    }
    QUEUED_IN_XACT.set(true);
    if !CALLBACK_REGISTERED.replace(true) {
        // SAFETY: registers a plain extern fn once per backend; it lives as long as the process.
        unsafe { pg_sys::RegisterXactCallback(Some(on_xact_event), std::ptr::null_mut()) };
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn on_xact_event(
    event: pg_sys::XactEvent::Type,
    _arg: *mut std::ffi::c_void,
) {
    match event {
        pg_sys::XactEvent::XACT_EVENT_COMMIT | pg_sys::XactEvent::XACT_EVENT_PARALLEL_COMMIT
            if QUEUED_IN_XACT.replace(false) =>
        {
            if LOG_DUE_IN_XACT.replace(false)
                && let Some(slot) = slot()
            {
                slot.log_pending.store(true, Ordering::Release);
            }
            wake_worker()
        }
        // A prepared transaction commits later, elsewhere: the worker's poll finds its rows.
        pg_sys::XactEvent::XACT_EVENT_ABORT
        | pg_sys::XactEvent::XACT_EVENT_PARALLEL_ABORT
        | pg_sys::XactEvent::XACT_EVENT_PREPARE => {
            QUEUED_IN_XACT.set(false);
            LOG_DUE_IN_XACT.set(false);
        }
        _ => {}
    }
}

/// Sets the worker's latch if a worker runs. Safe to call from any backend.
pub fn wake_worker() {
    let Some(slot) = slot() else { return };
    // SAFETY: MyDatabaseId is set once a backend connects and never changes afterwards.
    let here = unsafe { pg_sys::MyDatabaseId }.to_u32();
    if slot.database.load(Ordering::Acquire) != here {
        return;
    }
    // Only the first commit since the worker last looked needs to set the latch.
    if slot.pending.swap(true, Ordering::AcqRel) {
        return;
    }
    wake_procno(slot.procno.load(Ordering::Acquire));
}

/// Sets the latch of the process with PGPROC number `procno` (none when negative).
fn wake_procno(procno: i32) {
    if procno < 0 {
        return;
    }
    // SAFETY: ProcGlobal and its allProcs array live in shared memory for the life of the
    // cluster, and procno was published by the worker from its own PGPROC. SetLatch on a
    // latch whose owner has exited is harmless.
    unsafe {
        let procs = (*pg_sys::ProcGlobal).allProcs;
        if procs.is_null() {
            return;
        }
        let proc_ = procs.add(procno as usize);
        pg_sys::SetLatch(&raw mut (*proc_).procLatch);
    }
}

/// The worker announces itself (at start) so that commits can find its latch.
pub fn publish_worker() {
    let Some(slot) = slot() else { return };
    // SAFETY: MyProc is this process's PGPROC, set up before the worker's main runs.
    let procno = unsafe { compat::my_proc_number() };
    // SAFETY: MyProcPid is set at process start.
    let pid = unsafe { pg_sys::MyProcPid };
    let stats = &slot.stats;
    for counter in [
        &stats.attempts,
        &stats.delivered,
        &stats.failed,
        &stats.retries,
        &stats.purged,
    ] {
        counter.store(0, Ordering::Relaxed);
    }
    stats.in_flight.store(0, Ordering::Relaxed);
    let now_us = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX));
    stats.started_at_us.store(now_us, Ordering::Relaxed);
    stats.last_activity_us.store(now_us, Ordering::Relaxed);
    slot.pid.store(pid, Ordering::Release);
    // SAFETY: the worker is connected to its database when it publishes itself.
    let database = unsafe { pg_sys::MyDatabaseId }.to_u32();
    slot.database.store(database, Ordering::Release);
    slot.procno.store(procno, Ordering::Release);
}

/// Marks the start (true) and the success (false) of the worker's connection to its database.
pub fn set_connecting(on: bool) {
    if let Some(slot) = slot() {
        slot.connecting.store(on, Ordering::Release);
    }
}

/// Whether the previous worker died while connecting to its database.
pub fn previous_connect_failed() -> bool {
    slot().is_some_and(|s| s.connecting.load(Ordering::Acquire))
}

/// The worker's counters, when shared memory exists.
pub fn stats() -> Option<&'static WorkerStats> {
    slot().map(|s| &s.stats)
}

/// The worker withdraws (at exit), so nobody sets a latch that a new process may own.
pub fn withdraw_worker() {
    let Some(slot) = slot() else { return };
    slot.procno.store(-1, Ordering::Release);
    slot.pid.store(0, Ordering::Release);
    slot.database.store(0, Ordering::Release);
}

/// A backend asks the worker to leave its database (DROP, RENAME or CREATE DATABASE ...
/// TEMPLATE of it need it gone), and waits up to `wait` for it to go. Returns whether it went.
pub fn ask_worker_to_leave(wait: std::time::Duration) -> bool {
    let Some(slot) = slot() else { return true };
    // SAFETY: MyProcPid is set at process start.
    slot.leave_for
        .store(unsafe { pg_sys::MyProcPid }, Ordering::Release);
    let deadline = std::time::Instant::now() + wait;
    loop {
        if slot.pid.load(Ordering::Acquire) == 0 {
            return true;
        }
        wake_procno(slot.procno.load(Ordering::Acquire));
        if std::time::Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// The database operation that asked the worker to leave is over (or failed).
pub fn worker_may_return() {
    if let Some(slot) = slot() {
        slot.leave_for.store(0, Ordering::Release);
    }
}

/// The pid of a live backend that asked the worker to leave its database, if any: the worker
/// leaves, and a new worker waits before it connects. A requester that died (its statement
/// failed and it never cleared the flag) no longer counts.
pub fn asked_to_leave_by() -> Option<i32> {
    let pid = slot()?.leave_for.load(Ordering::Acquire);
    // SAFETY: kill(pid, 0) only checks that the process exists.
    (pid > 0 && unsafe { libc_kill(pid, 0) } == 0).then_some(pid)
}

unsafe extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, signal: i32) -> i32;
}

/// Clears the pending flag; returns whether a commit had set it since the last call.
pub fn take_pending() -> bool {
    slot().is_some_and(|s| s.pending.swap(false, Ordering::AcqRel))
}

/// Clears the log flag; returns whether a commit made a delivery of the log due since.
pub fn take_log_pending() -> bool {
    slot().is_some_and(|s| s.log_pending.swap(false, Ordering::AcqRel))
}

/// The worker's pid, if one runs.
pub fn worker_pid() -> Option<i32> {
    slot()
        .map(|s| s.pid.load(Ordering::Acquire))
        .filter(|p| *p > 0)
}
