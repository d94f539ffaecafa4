//! The sender threads: bounded parallel HTTP, reporting back to the worker's main thread.
//!
//! Only the worker's main thread may touch Postgres, so the HTTP work runs on plain threads that
//! never call into Postgres. A finished attempt goes back on a channel, and one byte on a socket
//! pair wakes the main thread, which waits on its latch and that socket together
//! (`WaitLatchOrSocket`): a result is recorded as soon as it exists, without polling.
//! No pgrx in here.

use crate::http::{Attempt, Client, ErrorClass, Request};
use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Instant, SystemTime};

/// One HTTP attempt to make.
pub struct Job {
    /// Names the attempt for the main thread, which keeps what it needs to record it.
    pub key: u64,
    pub request: Request,
    /// The client current when the job was made (a reload swaps it for new jobs only).
    pub client: Client,
}

/// A finished attempt.
pub struct Done {
    pub key: u64,
    pub started_at: SystemTime,
    pub attempt: Attempt,
}

/// A fixed-purpose thread pool that grows on demand up to the concurrency setting.
pub struct Pool {
    jobs: Option<Sender<Job>>,
    job_queue: Arc<Mutex<Receiver<Job>>>,
    results_tx: Sender<Done>,
    results: Receiver<Done>,
    wake_tx: Arc<UnixStream>,
    wake_rx: UnixStream,
    threads: Vec<JoinHandle<()>>,
    in_flight: usize,
}

impl Pool {
    /// Creates the pool with no threads yet.
    pub fn new() -> std::io::Result<Pool> {
        let (jobs, job_rx) = mpsc::channel();
        let (results_tx, results) = mpsc::channel();
        let (wake_tx, wake_rx) = UnixStream::pair()?;
        wake_tx.set_nonblocking(true)?;
        wake_rx.set_nonblocking(true)?;
        Ok(Pool {
            jobs: Some(jobs),
            job_queue: Arc::new(Mutex::new(job_rx)),
            results_tx,
            results,
            wake_tx: Arc::new(wake_tx),
            wake_rx,
            threads: Vec::new(),
            in_flight: 0,
        })
    }

    /// The socket that becomes readable when a result is waiting.
    pub fn wake_fd(&self) -> RawFd {
        self.wake_rx.as_raw_fd()
    }

    /// Attempts handed out and not yet collected.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// Hands a job to a sender thread, starting one if fewer than `max_threads` run.
    pub fn submit(&mut self, job: Job, max_threads: usize) -> std::io::Result<()> {
        if self.threads.len() < max_threads.max(1) && self.threads.len() <= self.in_flight {
            self.spawn()?;
        }
        let Some(jobs) = &self.jobs else {
            return Err(std::io::Error::other("pool is shut down"));
        };
        jobs.send(job)
            .map_err(|_| std::io::Error::other("every sender thread has exited"))?;
        self.in_flight += 1;
        Ok(())
    }

    fn spawn(&mut self) -> std::io::Result<()> {
        let queue = Arc::clone(&self.job_queue);
        let results = self.results_tx.clone();
        let wake = Arc::clone(&self.wake_tx);
        let handle = std::thread::Builder::new()
            .name(format!("unleash_webhook sender {}", self.threads.len() + 1))
            .spawn(move || sender_loop(&queue, &results, &wake))?;
        self.threads.push(handle);
        Ok(())
    }

    /// Takes every finished attempt that is waiting, without blocking.
    pub fn collect(&mut self) -> Vec<Done> {
        // Empty the wake socket first: a byte written after this point belongs to a result
        // that the loop below may miss, and will wake the main thread again.
        let mut buf = [0u8; 256];
        while let Ok(n) = (&self.wake_rx).read(&mut buf) {
            if n == 0 {
                break;
            }
        }
        let mut out = Vec::new();
        while let Ok(done) = self.results.try_recv() {
            out.push(done);
        }
        self.in_flight = self.in_flight.saturating_sub(out.len());
        out
    }

    /// Stops taking jobs and waits up to `deadline` for the attempts in flight; returns what
    /// finished. Threads still blocked in HTTP are left to die with the process: their rows
    /// stay claimed and are sent again after the restart.
    pub fn shutdown(&mut self, deadline: Instant) -> Vec<Done> {
        self.jobs = None;
        let mut out = Vec::new();
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

fn sender_loop(queue: &Mutex<Receiver<Job>>, results: &Sender<Done>, wake: &UnixStream) {
    loop {
        // Hold the lock only to take a job, never while sending.
        let job = match queue.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        let Ok(job) = job else { return };
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
        if results
            .send(Done {
                key: job.key,
                started_at,
                attempt,
            })
            .is_err()
        {
            return;
        }
        // A full socket buffer already guarantees a wake-up; nothing else can fail here.
        if let Err(e) = (&*wake).write(&[1])
            && e.kind() != ErrorKind::WouldBlock
        {
            return;
        }
    }
}

/// What a caught panic said, if it said it with a string.
pub fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".to_string())
}
