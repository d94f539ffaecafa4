//! The sender thread: bounded parallel HTTP, reporting back to the worker's main thread.
//!
//! Only the worker's main thread may touch Postgres, so the HTTP work runs on a plain thread
//! that never calls into Postgres. Each attempt is a task of that thread's reactor
//! (`http::reactor`): up to `max_concurrency` run at once, each waiting for its own socket,
//! all served by one `epoll_wait`. A finished attempt goes back on a channel, and one byte on
//! a socket pair wakes the main thread, which waits on its latch and that socket together
//! (`WaitLatchOrSocket`): a result is recorded as soon as it exists, without polling.
//! No pgrx in here.

use crate::http::reactor::{self, Reactor};
use crate::http::{Attempt, Client, ErrorClass, Request};
use std::collections::{HashMap, VecDeque};
use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

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

/// The jobs not yet taken. The sender thread takes every runnable job it has room for on each
/// turn of its loop: at full load it never sleeps between attempts, and the main thread wakes
/// it only when it sleeps with room.
struct Queue {
    jobs: Mutex<Jobs>,
    /// Written to wake the sender thread from `epoll_wait` (an eventfd).
    wake: OwnedFd,
    /// True while the sender thread sleeps, or is about to, with room for more attempts: a job
    /// handed over then must wake it. Set only under the `jobs` lock; read without it by
    /// `submit`: whether a job staged now would be taken now.
    sleeping: AtomicBool,
    /// Most attempts at once (`max_concurrency`, as last submitted with).
    max: AtomicUsize,
}

impl Queue {
    /// Poisoned only if the sender panicked holding the lock, which it does not (each attempt
    /// runs under catch_unwind, outside it), and the queue is consistent at every unlock:
    /// taken as it is rather than lose the jobs.
    fn lock(&self) -> MutexGuard<'_, Jobs> {
        self.jobs.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn wake(&self) {
        let one = 1u64;
        // SAFETY: an 8-byte write from a value we own to our eventfd. It fails only when the
        // counter is full, which is a wake-up pending anyway.
        unsafe { libc::write(self.wake.as_raw_fd(), (&raw const one).cast(), 8) };
    }

    fn drain_wake(&self) {
        let mut n = 0u64;
        // SAFETY: an 8-byte read into a value we own, from our non-blocking eventfd.
        unsafe { libc::read(self.wake.as_raw_fd(), (&raw mut n).cast(), 8) };
    }
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
}

/// What the sender thread shares to report back: the results, and the socket that wakes the
/// main thread. `wake_pending` says a byte is already on its way, so that a burst of results
/// costs one write and one wake-up, not one per result.
struct Reporter {
    results: Sender<Done>,
    wake: UnixStream,
    wake_pending: AtomicBool,
}

/// The sender thread and what the main thread keeps of it.
pub struct Pool {
    queue: Arc<Queue>,
    reporter: Arc<Reporter>,
    results: Receiver<Done>,
    wake_rx: UnixStream,
    thread: Option<JoinHandle<()>>,
    in_flight: usize,
    /// Jobs submitted and not yet handed over (see `hand_over`).
    staged: Vec<Job>,
    /// False once shut down: no more jobs are taken.
    open: bool,
}

/// Jobs handed to the sender at least this often while a batch is being submitted, so that
/// it starts on a long batch before it is all rendered.
const HAND_OVER_EVERY: usize = 32;

impl Pool {
    /// Creates the pool; its thread starts with the first job.
    pub fn new() -> std::io::Result<Pool> {
        let (results_tx, results) = mpsc::channel();
        let (wake_tx, wake_rx) = UnixStream::pair()?;
        wake_tx.set_nonblocking(true)?;
        wake_rx.set_nonblocking(true)?;
        // SAFETY: plain system call; the fd is owned below.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: a fresh fd that nothing else owns.
        let wake = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Pool {
            queue: Arc::new(Queue {
                jobs: Mutex::new(Jobs {
                    waiting: VecDeque::new(),
                    running: HashMap::new(),
                    open: true,
                }),
                wake,
                sleeping: AtomicBool::new(false),
                max: AtomicUsize::new(1),
            }),
            reporter: Arc::new(Reporter {
                results: results_tx,
                wake: wake_tx,
                wake_pending: AtomicBool::new(false),
            }),
            results,
            wake_rx,
            thread: None,
            in_flight: 0,
            staged: Vec::new(),
            open: true,
        })
    }

    /// The socket that becomes readable when a result is waiting.
    pub fn wake_fd(&self) -> RawFd {
        self.wake_rx.as_raw_fd()
    }

    /// Jobs queued that the sender has not started yet.
    pub fn waiting(&self) -> usize {
        self.staged.len() + self.queue.lock().waiting.len()
    }

    /// Attempts handed out and not yet collected.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// Stages a job for the sender, which runs up to `max_at_once` attempts at once. A staged
    /// job reaches the sender at once when it sleeps with room; otherwise at
    /// [`Pool::hand_over`], or with the next [`HAND_OVER_EVERY`] jobs.
    pub fn submit(&mut self, job: Job, max_at_once: usize) -> std::io::Result<()> {
        if !self.open {
            return Err(std::io::Error::other("pool is shut down"));
        }
        if self.thread.is_none() {
            self.start()?;
        }
        self.queue.max.store(max_at_once.max(1), Ordering::Relaxed);
        self.staged.push(job);
        self.in_flight += 1;
        // A sleeping sender takes the job now (a single event's latency; a big body rendered
        // after it does not hold it back). When it is busy, the jobs go in bulk: they would
        // only wait in the queue, and handing them over one by one costs a lock each.
        if self.staged.len() >= HAND_OVER_EVERY || self.queue.sleeping.load(Ordering::Relaxed) {
            self.hand_over();
        }
        Ok(())
    }

    /// Queues the staged jobs for the sender under one lock, and wakes it if it sleeps with
    /// room: one wake-up per batch instead of one per job.
    pub fn hand_over(&mut self) {
        if self.staged.is_empty() {
            return;
        }
        let wake = {
            let mut jobs = self.queue.lock();
            // (a job of a subscription at its limit would wake it for nothing)
            let wake = self.queue.sleeping.load(Ordering::Relaxed)
                && self.staged.iter().any(|j| jobs.runnable(j));
            jobs.waiting.extend(self.staged.drain(..));
            wake
        };
        if wake {
            self.queue.wake();
        }
    }

    /// Starts the sender thread; on failure the next submit tries again.
    fn start(&mut self) -> std::io::Result<()> {
        let epoll = reactor::epoll_with(self.queue.wake.as_raw_fd())?;
        let queue = Arc::clone(&self.queue);
        let reporter = Arc::clone(&self.reporter);
        let handle = std::thread::Builder::new()
            .name("unleash_webhook sender".to_string())
            .spawn(move || {
                // however it ends (a panic included), the main thread hears of it (`ended`)
                let _ended = Ended(&reporter);
                sender_loop(&queue, &reporter, Reactor::new(epoll));
            })?;
        self.thread = Some(handle);
        Ok(())
    }

    /// Whether the sender thread has ended while the pool is open: what it held is lost (the
    /// worker must start again, which sends it again).
    pub fn ended(&self) -> bool {
        self.open && self.thread.as_ref().is_some_and(JoinHandle::is_finished)
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
        let out: Vec<Done> = self.results.try_iter().collect();
        self.in_flight = self.in_flight.saturating_sub(out.len());
        out
    }

    /// Stops taking jobs and waits up to `deadline` for the attempts in flight; returns what
    /// finished. Attempts still waiting for their endpoint are left to die with the process:
    /// their rows stay claimed and are sent again after the restart.
    pub fn shutdown(&mut self, deadline: Instant) -> Vec<Done> {
        let mut out = Vec::new();
        self.open = false;
        self.in_flight = self.in_flight.saturating_sub(self.staged.len());
        self.staged.clear();
        {
            let mut jobs = self.queue.lock();
            jobs.open = false;
            // Jobs not started are not sent: they are dropped as never attempted.
            self.in_flight = self.in_flight.saturating_sub(jobs.waiting.len());
            jobs.waiting.clear();
        }
        self.queue.wake();
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

/// Sets the nice value of every thread of this process: on Linux each thread has its own, and
/// a new thread starts with its creator's, so a sender thread started later follows the main
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

/// Wakes the main thread when the sender thread ends, so that it sees [`Pool::ended`].
struct Ended<'a>(&'a Reporter);

impl Drop for Ended<'_> {
    fn drop(&mut self) {
        let _ = (&self.0.wake).write(&[1]);
    }
}

/// The sender thread: on each turn, the jobs it has room for are started (each runs to its
/// first wait for a socket), then the sockets that are ready resume theirs. After shutdown it
/// finishes what runs, then ends.
fn sender_loop(queue: &Queue, reporter: &Reporter, mut reactor: Reactor<Done>) {
    set_batch_policy();
    let mut done: Vec<Done> = Vec::new();
    let mut start = Vec::new();
    loop {
        // it sleeps in epoll_wait only after a turn in which nothing was started or finished;
        // with room for more, saying so first, so that the next hand-over wakes it
        let sleeps = {
            let mut jobs = queue.lock();
            for d in &done {
                jobs.finished(d.group);
            }
            if !jobs.open && reactor.is_empty() {
                drop(jobs);
                // the last results too: shutdown() waits for them
                report(reporter, &mut done);
                return;
            }
            let max = queue.max.load(Ordering::Relaxed);
            while jobs.open && reactor.len() + start.len() < max {
                match jobs.take() {
                    Some(job) => start.push(job),
                    None => break,
                }
            }
            let room = reactor.len() + start.len() < max;
            let sleeps = start.is_empty() && done.is_empty();
            queue.sleeping.store(sleeps && room, Ordering::Relaxed);
            sleeps
        };
        if !report(reporter, &mut done) {
            return;
        }
        for job in start.drain(..) {
            let (key, group) = (job.key, job.group);
            if let Err(e) = reactor.spawn(move || attempt(job), &mut done) {
                // no memory for its stack: it fails like an attempt, and is retried as one
                done.push(Done {
                    key,
                    group,
                    started_at: SystemTime::now(),
                    attempt: internal_error(
                        format!("cannot start the attempt: {e}"),
                        Duration::ZERO,
                    ),
                });
            }
        }
        // (an attempt started may have finished already: not asleep then either)
        let timeout = (!sleeps || !done.is_empty()).then_some(Duration::ZERO);
        match reactor.turn(timeout, &mut done) {
            Ok(true) => queue.drain_wake(),
            Ok(false) => {}
            // EBADF or EINVAL: the epoll fd itself is broken, and nothing could be sent
            Err(_) => return,
        }
    }
}

/// One attempt, as a task of the sender's reactor.
fn attempt(job: Job) -> Done {
    let started_at = SystemTime::now();
    // A panic in the HTTP stack ends as this attempt's failure: the sender and the main
    // thread's count of attempts in flight stay right.
    let attempt = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        job.client.send(&job.request)
    }))
    .unwrap_or_else(|panic| {
        internal_error(
            format!(
                "internal error in the HTTP client: {}",
                panic_message(&panic)
            ),
            started_at.elapsed().unwrap_or_default(),
        )
    });
    Done {
        key: job.key,
        group: job.group,
        started_at,
        attempt,
    }
}

fn internal_error(error: String, duration: Duration) -> Attempt {
    Attempt {
        status: None,
        error_class: Some(ErrorClass::Other),
        error: Some(error),
        response_excerpt: String::new(),
        duration,
        retry_after: None,
    }
}

/// Sends the finished attempts to the main thread, and wakes it once per burst. False when
/// the main thread is gone.
fn report(reporter: &Reporter, done: &mut Vec<Done>) -> bool {
    if done.is_empty() {
        return true;
    }
    for d in done.drain(..) {
        if reporter.results.send(d).is_err() {
            return false;
        }
    }
    // One byte per burst: the main thread clears the flag before it drains the results.
    if !reporter.wake_pending.swap(true, Ordering::SeqCst) {
        // A full socket buffer already guarantees a wake-up; nothing else can fail here.
        if let Err(e) = (&reporter.wake).write(&[1])
            && e.kind() != ErrorKind::WouldBlock
        {
            return false;
        }
    }
    true
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::reactor::Interest;
    use crate::http::{ClientConfig, DestinationPolicy};
    use std::net::TcpListener;

    /// A local endpoint that answers each request after `delay`; it counts the requests in
    /// progress per path (the most seen at once) and says when each arrives.
    struct Endpoint {
        url: String,
        most: Arc<Mutex<HashMap<String, usize>>>,
        arrived: Receiver<()>,
    }

    fn endpoint(delay: Duration) -> Endpoint {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (tx, arrived) = mpsc::channel();
        let most = Arc::new(Mutex::new(HashMap::new()));
        let now = Arc::new(Mutex::new(HashMap::<String, usize>::new()));
        let most2 = Arc::clone(&most);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let (tx, most, now) = (tx.clone(), Arc::clone(&most2), Arc::clone(&now));
                std::thread::spawn(move || {
                    let mut buf = [0u8; 4096];
                    // keep-alive: one request after another on this connection
                    while let Ok(n) = stream.read(&mut buf) {
                        if n == 0 {
                            return;
                        }
                        let head = String::from_utf8_lossy(&buf[..n]).to_string();
                        let path = head.split(' ').nth(1).unwrap_or("").to_string();
                        {
                            let mut now = now.lock().unwrap();
                            let c = now.entry(path.clone()).or_insert(0);
                            *c += 1;
                            let mut most = most.lock().unwrap();
                            let m = most.entry(path.clone()).or_insert(0);
                            *m = (*m).max(*c);
                        }
                        let _ = tx.send(());
                        std::thread::sleep(delay);
                        *now.lock().unwrap().get_mut(&path).unwrap() -= 1;
                        let reply = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
                        if stream.write_all(reply).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Endpoint { url, most, arrived }
    }

    fn job(key: u64, group: i64, limit: usize, url: String) -> Job {
        let client = Client::new(&ClientConfig {
            destination_policy: DestinationPolicy::allow_all(),
            ..ClientConfig::default()
        })
        .unwrap();
        Job {
            key,
            group,
            limit,
            request: Request {
                url,
                headers: Vec::new(),
                body: b"{}".to_vec(),
            },
            client,
        }
    }

    /// Every result, waiting on the wake-up socket as the worker does.
    fn collect_all(pool: &mut Pool, n: usize) -> Vec<Done> {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut out = Vec::new();
        while out.len() < n {
            out.extend(pool.collect());
            if out.len() < n {
                let ready = reactor::wait(pool.wake_fd(), Interest::Read, Some(deadline));
                assert!(ready.unwrap(), "{} of {n} results", out.len());
            }
        }
        out
    }

    #[test]
    fn attempts_run_together_on_the_one_thread_within_each_subscriptions_limit() {
        let e = endpoint(Duration::from_millis(300));
        let mut pool = Pool::new().unwrap();
        for key in 0..6 {
            pool.submit(job(key, 1, 2, format!("{}/one", e.url)), 8)
                .unwrap();
        }
        for key in 6..9 {
            pool.submit(job(key, 2, 3, format!("{}/two", e.url)), 8)
                .unwrap();
        }
        pool.hand_over();
        let done = collect_all(&mut pool, 9);
        assert!(done.iter().all(|d| d.attempt.status == Some(200)));
        let most = e.most.lock().unwrap().clone();
        // each subscription's limit held, and both ran at their limit at once
        assert_eq!(most.get("/one"), Some(&2), "{most:?}");
        assert_eq!(most.get("/two"), Some(&3), "{most:?}");
        assert_eq!(pool.in_flight(), 0);
    }

    #[test]
    fn shutdown_returns_the_attempts_that_finish_within_its_grace() {
        let e = endpoint(Duration::from_millis(200));
        let mut pool = Pool::new().unwrap();
        pool.submit(job(1, 1, 4, format!("{}/slow", e.url)), 8)
            .unwrap();
        pool.hand_over();
        e.arrived.recv_timeout(Duration::from_secs(10)).unwrap();
        let start = Instant::now();
        let done = pool.shutdown(start + Duration::from_secs(10));
        let got: Vec<_> = done.iter().map(|d| (d.key, d.attempt.status)).collect();
        assert_eq!(got, [(1, Some(200))]);
        // not the whole grace: the last result is reported as the sender ends
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{:?}",
            start.elapsed()
        );
        assert!(!pool.ended(), "shut down, not ended by itself");
    }
}
