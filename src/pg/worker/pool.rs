//! The sender threads: bounded parallel HTTP, reporting back to the worker's main thread.
//!
//! Only the worker's main thread may touch Postgres, so the HTTP work runs on plain threads that
//! never call into Postgres. A finished attempt goes back on a channel, and one byte on a socket
//! pair wakes the main thread, which waits on its latch and that socket together
//! (`WaitLatchOrSocket`): a result is recorded as soon as it exists, without polling.
//! No pgrx in here.

use crate::http::{Attempt, Client, ErrorClass, Request};
use std::collections::{HashMap, VecDeque};
use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Instant, SystemTime};

/// One HTTP attempt to make.
pub struct Job {
    /// Names the attempt for the main thread, which keeps what it needs to record it.
    pub key: u64,
    /// Its subscription: the jobs of one group run at most `limit` at a time. More may wait in
    /// the queue, so that a sender that finishes one takes the next at once instead of waiting
    /// for the main thread's next turn.
    pub group: i64,
    pub limit: usize,
    pub request: Request,
    /// The client current when the job was made (a reload swaps it for new jobs only).
    pub client: Client,
}

/// A finished attempt.
pub struct Done {
    pub key: u64,
    pub group: i64,
    pub started_at: SystemTime,
    pub attempt: Attempt,
}

/// The jobs not yet taken. A thread that finishes an attempt takes the next runnable job here
/// without sleeping if there is one: at full load no thread waits between attempts, and the
/// main thread wakes a sleeper only when one sleeps.
struct Queue {
    jobs: Mutex<Jobs>,
    ready: Condvar,
    /// Threads asleep on `ready`. Changed only under the `jobs` lock (so it is exact there);
    /// read without it by `submit`: whether a job staged now would be taken now.
    sleeping: AtomicUsize,
}

struct Jobs {
    waiting: VecDeque<Job>,
    /// Jobs running per group.
    running: HashMap<i64, usize>,
    open: bool,
}

impl Jobs {
    fn runnable(&self, job: &Job) -> bool {
        self.running.get(&job.group).copied().unwrap_or(0) < job.limit
    }

    /// The oldest job whose group has room, marked running. A group at its limit does not
    /// hold back the others behind it.
    fn take(&mut self) -> Option<Job> {
        let i = self.waiting.iter().position(|j| self.runnable(j))?;
        let job = self.waiting.remove(i)?;
        *self.running.entry(job.group).or_insert(0) += 1;
        Some(job)
    }

    fn finished(&mut self, group: i64) {
        if let Some(n) = self.running.get_mut(&group) {
            *n -= 1;
            if *n == 0 {
                self.running.remove(&group);
            }
        }
    }

    fn any_runnable(&self) -> bool {
        self.waiting.iter().any(|j| self.runnable(j))
    }
}

/// What the sender threads share to report back: the results, and the socket that wakes the
/// main thread. `wake_pending` says a byte is already on its way, so that a burst of results
/// costs one write and one wake-up, not one per result.
struct Reporter {
    results: Sender<Done>,
    wake: UnixStream,
    wake_pending: AtomicBool,
}

/// A fixed-purpose thread pool that grows on demand up to the concurrency setting.
pub struct Pool {
    queue: Arc<Queue>,
    reporter: Arc<Reporter>,
    results: Receiver<Done>,
    wake_rx: UnixStream,
    threads: Vec<JoinHandle<()>>,
    in_flight: usize,
    /// Jobs handed out and not yet collected, per group, and the group's limit: how many
    /// threads the work in hand can keep busy.
    outstanding: HashMap<i64, (usize, usize)>,
    busy_possible: usize,
    /// Jobs submitted and not yet handed over (see `hand_over`).
    staged: Vec<Job>,
    /// False once shut down: no more jobs are taken.
    open: bool,
}

/// Jobs handed to the senders at least this often while a batch is being submitted, so that
/// they start on a long batch before it is all rendered.
const HAND_OVER_EVERY: usize = 32;

impl Pool {
    /// Creates the pool with no threads yet.
    pub fn new() -> std::io::Result<Pool> {
        let (results_tx, results) = mpsc::channel();
        let (wake_tx, wake_rx) = UnixStream::pair()?;
        wake_tx.set_nonblocking(true)?;
        wake_rx.set_nonblocking(true)?;
        Ok(Pool {
            queue: Arc::new(Queue {
                jobs: Mutex::new(Jobs {
                    waiting: VecDeque::new(),
                    running: HashMap::new(),
                    open: true,
                }),
                ready: Condvar::new(),
                sleeping: AtomicUsize::new(0),
            }),
            reporter: Arc::new(Reporter {
                results: results_tx,
                wake: wake_tx,
                wake_pending: AtomicBool::new(false),
            }),
            results,
            wake_rx,
            threads: Vec::new(),
            in_flight: 0,
            outstanding: HashMap::new(),
            busy_possible: 0,
            staged: Vec::new(),
            open: true,
        })
    }

    /// The socket that becomes readable when a result is waiting.
    pub fn wake_fd(&self) -> RawFd {
        self.wake_rx.as_raw_fd()
    }

    /// Jobs queued that no sender has taken yet.
    pub fn waiting(&self) -> usize {
        self.staged.len() + self.queue.jobs.lock().map_or(0, |jobs| jobs.waiting.len())
    }

    /// Attempts handed out and not yet collected.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// Stages a job for the sender threads, starting one more (up to `max_threads`) when the
    /// work in hand could keep more busy than run. A staged job reaches the senders at once
    /// when one of them sleeps; otherwise at [`Pool::hand_over`], or with the next
    /// [`HAND_OVER_EVERY`] jobs.
    pub fn submit(&mut self, job: Job, max_threads: usize) -> std::io::Result<()> {
        let (group, group_limit) = (job.group, job.limit);
        // counted as outstanding only once staged: a refused job is never collected
        let count = self.outstanding.get(&group).map_or(0, |(count, _)| *count);
        let busy_possible = self.busy_possible + usize::from(count < group_limit);
        if self.threads.len() < max_threads.max(1).min(busy_possible) {
            self.spawn()?;
        }
        if !self.open {
            return Err(std::io::Error::other("pool is shut down"));
        }
        self.staged.push(job);
        self.outstanding.insert(group, (count + 1, group_limit));
        self.busy_possible = busy_possible;
        self.in_flight += 1;
        // A sleeping sender takes the job now (a single event's latency; a big body rendered
        // after it does not hold it back). When all are busy, the jobs go in bulk: they would
        // only wait in the queue, and handing them over one by one costs a lock each.
        if self.staged.len() >= HAND_OVER_EVERY || self.queue.sleeping.load(Ordering::Relaxed) > 0 {
            self.hand_over();
        }
        Ok(())
    }

    /// Queues the staged jobs for the senders under one lock, and wakes one sleeping sender if
    /// any can run: it passes the wake-up on to the next (`next_job`). A wake-up is a system
    /// call; one per batch instead of one per job.
    pub fn hand_over(&mut self) {
        if self.staged.is_empty() {
            return;
        }
        let wake = {
            // Poisoned only if a sender panicked holding the lock, which none does (each
            // attempt runs under catch_unwind, outside it), and the queue is consistent at
            // every unlock: take it as it is rather than lose the jobs.
            let mut jobs = self
                .queue
                .jobs
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let wake = self.queue.sleeping.load(Ordering::Relaxed) > 0
                && self.staged.iter().any(|j| jobs.runnable(j));
            jobs.waiting.extend(self.staged.drain(..));
            wake
        };
        if wake {
            self.queue.ready.notify_one();
        }
    }

    fn forget(&mut self, group: i64) {
        if let Some((count, limit)) = self.outstanding.get_mut(&group) {
            if *count <= *limit {
                self.busy_possible = self.busy_possible.saturating_sub(1);
            }
            *count -= 1;
            if *count == 0 {
                self.outstanding.remove(&group);
            }
        }
    }

    fn spawn(&mut self) -> std::io::Result<()> {
        let queue = Arc::clone(&self.queue);
        let reporter = Arc::clone(&self.reporter);
        let handle = std::thread::Builder::new()
            .name(format!("unleash_webhook sender {}", self.threads.len() + 1))
            .spawn(move || sender_loop(&queue, &reporter))?;
        self.threads.push(handle);
        Ok(())
    }

    /// Takes every finished attempt that is waiting, without blocking.
    pub fn collect(&mut self) -> Vec<Done> {
        // Empty the socket, then clear the flag, then take the results, in this order: a
        // sender that finds the flag clear writes a byte after the socket was emptied, which
        // wakes the main thread again; one that found it set sent its result before the flag
        // was cleared, so the loop below takes it.
        let mut buf = [0u8; 256];
        while let Ok(n) = (&self.wake_rx).read(&mut buf) {
            if n == 0 {
                break;
            }
        }
        self.reporter.wake_pending.swap(false, Ordering::SeqCst);
        let mut out = Vec::new();
        while let Ok(done) = self.results.try_recv() {
            self.forget(done.group);
            out.push(done);
        }
        self.in_flight = self.in_flight.saturating_sub(out.len());
        out
    }

    /// Stops taking jobs and waits up to `deadline` for the attempts in flight; returns what
    /// finished. Threads still blocked in HTTP are left to die with the process: their rows
    /// stay claimed and are sent again after the restart.
    pub fn shutdown(&mut self, deadline: Instant) -> Vec<Done> {
        let mut out = Vec::new();
        self.open = false;
        self.in_flight = self.in_flight.saturating_sub(self.staged.len());
        self.staged.clear();
        if let Ok(mut jobs) = self.queue.jobs.lock() {
            jobs.open = false;
            // Jobs no thread has taken are not sent: they are dropped as never attempted.
            self.in_flight = self.in_flight.saturating_sub(jobs.waiting.len());
            jobs.waiting.clear();
        }
        self.queue.ready.notify_all();
        while self.in_flight > 0 && Instant::now() < deadline {
            let wait = deadline.saturating_duration_since(Instant::now());
            match self.results.recv_timeout(wait) {
                Ok(done) => {
                    self.in_flight -= 1;
                    out.push(done);
                }
                Err(_) => break,
            }
        }
        out
    }
}

/// The next runnable job, sleeping while there is none; `None` once the pool is shut down.
/// `finished` is the group of the job this thread just finished: its slot is freed under the
/// same lock, so that the thread can take that group's next job at once.
fn next_job(queue: &Queue, finished: Option<i64>) -> Option<Job> {
    let mut jobs = queue.jobs.lock().ok()?;
    if let Some(group) = finished {
        jobs.finished(group);
    }
    loop {
        if !jobs.open {
            return None;
        }
        if let Some(job) = jobs.take() {
            // A job that became runnable while every thread was busy, and a sleeper that a
            // notify missed: pass the wake-up on.
            if queue.sleeping.load(Ordering::Relaxed) > 0 && jobs.any_runnable() {
                queue.ready.notify_one();
            }
            return Some(job);
        }
        queue.sleeping.fetch_add(1, Ordering::Relaxed);
        let woken = queue.ready.wait(jobs);
        // (back under the lock, poisoned or not: the count stays right)
        queue.sleeping.fetch_sub(1, Ordering::Relaxed);
        jobs = woken.ok()?;
    }
}

/// Sets the nice value of every thread of this process: on Linux each thread has its own, and
/// a new thread starts with its creator's, so sender threads started later follow the main
/// thread. Lowering it fails without privileges (EACCES); the threads then stay as they were.
pub fn set_process_nice(nice: i32) -> std::io::Result<()> {
    let mut first_error = None;
    for entry in std::fs::read_dir("/proc/self/task")? {
        let Some(tid) = entry?
            .file_name()
            .to_str()
            .and_then(|t| t.parse::<libc::id_t>().ok())
        else {
            continue;
        };
        // SAFETY: a plain system call; a thread gone meanwhile only makes it fail (ESRCH).
        let rc = unsafe { libc::setpriority(libc::PRIO_PROCESS, tid, nice as libc::c_int) };
        if rc != 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::ESRCH) {
                first_error.get_or_insert(e);
            }
        }
    }
    first_error.map_or(Ok(()), Err)
}

fn sender_loop(queue: &Queue, reporter: &Reporter) {
    set_batch_policy();
    let mut finished = None;
    while let Some(job) = next_job(queue, finished) {
        finished = Some(job.group);
        let started_at = SystemTime::now();
        // A panic in the HTTP stack ends as this attempt's failure: the thread and the main
        // thread's count of attempts in flight stay right.
        let attempt = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            job.client.send(&job.request)
        }))
        .unwrap_or_else(|panic| Attempt {
            status: None,
            error_class: Some(ErrorClass::Other),
            error: Some(format!(
                "internal error in the HTTP client: {}",
                panic_message(&panic)
            )),
            response_excerpt: String::new(),
            duration: started_at.elapsed().unwrap_or_default(),
            retry_after: None,
        });
        if reporter
            .results
            .send(Done {
                key: job.key,
                group: job.group,
                started_at,
                attempt,
            })
            .is_err()
        {
            return;
        }
        // One byte per burst: the main thread clears the flag before it drains the results.
        if reporter.wake_pending.swap(true, Ordering::SeqCst) {
            continue;
        }
        // A full socket buffer already guarantees a wake-up; nothing else can fail here.
        if let Err(e) = (&reporter.wake).write(&[1])
            && e.kind() != ErrorKind::WouldBlock
        {
            return;
        }
    }
}

/// Puts the calling thread in SCHED_BATCH. A sender woken by a response or by a job then
/// waits for the running thread's time slice instead of taking its CPU at once: the endpoint
/// (on this host) finishes answering, the main thread finishes its batch, and one wake-up
/// serves several results. Its nice value, and so its share of the CPU, stays the same. Best
/// effort: without it the sender only switches more often.
fn set_batch_policy() {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: a plain system call on this thread (pid 0), with a valid parameter.
    unsafe { libc::sched_setscheduler(0, libc::SCHED_BATCH, &param) };
}

/// What a caught panic said, if it said it with a string.
pub fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".to_string())
}
