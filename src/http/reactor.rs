//! Many HTTP exchanges on one thread. Each exchange runs as a task (a coroutine on its own
//! stack) through the same blocking-style code as anywhere else (ureq over `tcp.rs`, rustls
//! over that); where that code would block on a socket it calls [`wait`], which hands the
//! socket to the reactor and switches to the next task. One `epoll_wait` then serves every
//! exchange that became ready.
//!
//! Why: with one sender thread per request in flight, profiled at 15,000 deliveries a second
//! (2026-12-08, `perf record -a` over the 10-subscription benchmark), about a third of the
//! senders' CPU went to switching threads: each request put its thread to sleep in `recv`, and
//! each response woke one. Under load one `epoll_wait` here returns many ready sockets, and
//! switching between tasks costs a few instructions, not a trip through the scheduler.
//!
//! Outside a task (the tests, a backend checking a URL) [`wait`] is a plain `ppoll`: the same
//! code then blocks its own thread. No pgrx in here.

use std::cell::Cell;
use std::collections::VecDeque;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::ptr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use corosensei::stack::DefaultStack;
use corosensei::{Coroutine, CoroutineResult, Yielder};

/// What a socket is awaited for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interest {
    Read,
    Write,
}

/// What a suspended task waits for.
struct Wait {
    fd: RawFd,
    interest: Interest,
    deadline: Option<Instant>,
}

/// What a task is resumed with: whether its socket became ready (false: its deadline passed).
type Woken = io::Result<bool>;

type Task<T> = Coroutine<Woken, Wait, T, DefaultStack>;

/// Each task's own stack: half a thread's default, many times what a TLS handshake under ureq
/// takes. Only the pages touched are ever backed by memory, and a guard page ends each one.
const STACK_SIZE: usize = 1024 * 1024;

thread_local! {
    /// The yielder of the task running on this thread, null when none runs: set by the task
    /// itself when it starts and again each time it is resumed (see [`wait`]), cleared by the
    /// reactor when the task hands control back.
    static CURRENT: Cell<*const Yielder<Woken, Wait>> = const { Cell::new(ptr::null()) };
}

/// Waits until `fd` is ready for `interest`, or until `deadline` (false then). In a task this
/// suspends the task; elsewhere it blocks the thread in `ppoll`. Readiness may be spurious:
/// callers try their I/O again and wait again on `WouldBlock`.
pub fn wait(fd: RawFd, interest: Interest, deadline: Option<Instant>) -> io::Result<bool> {
    let yielder = CURRENT.get();
    if yielder.is_null() {
        return poll(fd, interest, deadline);
    }
    // SAFETY: non-null only while a task runs on this thread, and then it is that task's own
    // yielder (set at its start and after each resumption, below), which lives as long as the
    // task's stack; the task running now is the caller.
    let woken = unsafe { &*yielder }.suspend(Wait {
        fd,
        interest,
        deadline,
    });
    // other tasks ran meanwhile and set their own
    CURRENT.set(yielder);
    woken
}

/// Runs `f`, which may block its thread (a DNS lookup: `getaddrinfo` has no non-blocking
/// form), without blocking the other tasks: in a task on a thread of its own, waited for like
/// a socket; elsewhere here. `f` bounds its own time.
pub fn blocking<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> R {
    if CURRENT.get().is_null() {
        return f();
    }
    let Ok((done_rx, done_tx)) = UnixStream::pair() else {
        return f();
    };
    // shared so that it can still run here if no thread can be started
    let f = Arc::new(Mutex::new(Some(f)));
    let run = Arc::clone(&f);
    let spawned = std::thread::Builder::new()
        .name("unleash_webhook lookup".into())
        .spawn(move || {
            // closed when the thread ends, returning or panicking: what the task waits for
            let _done = done_tx;
            run.lock().ok().and_then(|mut f| f.take()).map(|f| f())
        });
    let handle = match spawned {
        Ok(handle) => handle,
        Err(_) => {
            let f = f.lock().ok().and_then(|mut f| f.take());
            return f.expect("not taken: the thread never started")();
        }
    };
    if done_rx.set_nonblocking(true).is_ok() {
        let mut byte = [0u8; 1];
        loop {
            match (&done_rx).read(&mut byte) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    let _ = wait(done_rx.as_raw_fd(), Interest::Read, None);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // the close; or an error, after which join below blocks instead
                _ => break,
            }
        }
    }
    match handle.join() {
        Ok(r) => r.expect("taken only by the thread"),
        // the lookup's panic, raised in the task as if it had run there
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// Clears [`CURRENT`] when dropped: outside a task, [`wait`] must not suspend anything.
struct ClearCurrent;

impl Drop for ClearCurrent {
    fn drop(&mut self) {
        CURRENT.set(ptr::null());
    }
}

/// [`wait`] for a thread of its own.
fn poll(fd: RawFd, interest: Interest, deadline: Option<Instant>) -> io::Result<bool> {
    let events = match interest {
        Interest::Read => libc::POLLIN,
        Interest::Write => libc::POLLOUT,
    };
    let mut pfd = libc::pollfd {
        fd,
        events,
        revents: 0,
    };
    loop {
        let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        if left.is_some_and(|l| l.is_zero()) {
            return Ok(false);
        }
        let ts = left.map(timespec);
        let ts_ptr = ts
            .as_ref()
            .map_or(ptr::null(), |t| t as *const libc::timespec);
        // SAFETY: one valid pollfd and a valid (or null) timeout, both outliving the call.
        let rc = unsafe { libc::ppoll(&mut pfd, 1, ts_ptr, ptr::null()) };
        match rc {
            // (a zero that came a little early loops to the deadline check)
            0 => continue,
            n if n > 0 => return Ok(true),
            _ => {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
        }
    }
}

fn timespec(d: Duration) -> libc::timespec {
    libc::timespec {
        tv_sec: libc::time_t::try_from(d.as_secs()).unwrap_or(libc::time_t::MAX),
        tv_nsec: libc::c_long::from(d.subsec_nanos()),
    }
}

/// A new epoll instance, with `wake` registered: readable `wake` ends a blocking
/// [`Reactor::turn`] (reported by its return value). Made apart from the reactor so that it
/// can fail where the caller can still say so, before the reactor's thread exists.
pub fn epoll_with(wake: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: plain system call; the fd is owned below.
    let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh fd that nothing else owns.
    let epoll = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut ev = libc::epoll_event {
        events: libc::EPOLLIN as u32,
        u64: WAKE,
    };
    // SAFETY: valid fds and event.
    if unsafe { libc::epoll_ctl(fd, libc::EPOLL_CTL_ADD, wake, &mut ev) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(epoll)
}

/// The epoll token of the wake-up fd; a task's token is its slot.
const WAKE: u64 = u64::MAX;

struct Slot<T> {
    task: Task<T>,
    wait: Option<Wait>,
}

/// Tasks and the epoll instance that resumes them. Tasks run only inside [`Reactor::spawn`]
/// and [`Reactor::turn`], on the calling thread.
pub struct Reactor<T> {
    epoll: OwnedFd,
    slots: Vec<Option<Slot<T>>>,
    free: Vec<usize>,
    /// Stacks of finished tasks, for the next ones: a new stack is two system calls and fresh
    /// page faults.
    stacks: Vec<DefaultStack>,
    events: Vec<libc::epoll_event>,
    running: usize,
}

impl<T: 'static> Reactor<T> {
    pub fn new(epoll: OwnedFd) -> Reactor<T> {
        Reactor {
            epoll,
            slots: Vec::new(),
            free: Vec::new(),
            stacks: Vec::new(),
            events: vec![libc::epoll_event { events: 0, u64: 0 }; 256],
            running: 0,
        }
    }

    /// Tasks not finished.
    pub fn len(&self) -> usize {
        self.running
    }

    pub fn is_empty(&self) -> bool {
        self.running == 0
    }

    /// Starts `f` as a task and runs it to its first wait; its result goes to `out` when it
    /// returns. An error (no memory for a stack) leaves `f` not run.
    pub fn spawn(&mut self, f: impl FnOnce() -> T + 'static, out: &mut Vec<T>) -> io::Result<()> {
        let stack = match self.stacks.pop() {
            Some(stack) => stack,
            None => DefaultStack::new(STACK_SIZE)?,
        };
        let task = Coroutine::with_stack(stack, move |yielder: &Yielder<Woken, Wait>, _| {
            CURRENT.set(yielder);
            f()
        });
        let slot = Slot { task, wait: None };
        let i = match self.free.pop() {
            Some(i) => {
                self.slots[i] = Some(slot);
                i
            }
            None => {
                self.slots.push(Some(slot));
                self.slots.len() - 1
            }
        };
        self.running += 1;
        self.resume(i, Ok(true), out);
        Ok(())
    }

    /// Waits for sockets (at most `timeout`; `None`: until one is ready or a deadline passes)
    /// and runs every task whose socket became ready or whose deadline passed. True when the
    /// wake-up fd is readable (the caller empties it).
    pub fn turn(&mut self, timeout: Option<Duration>, out: &mut Vec<T>) -> io::Result<bool> {
        let nearest = self
            .slots
            .iter()
            .flatten()
            .filter_map(|s| s.wait.as_ref()?.deadline)
            .min();
        let until_deadline = nearest.map(|d| d.saturating_duration_since(Instant::now()));
        let wait = match (timeout, until_deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        // in whole milliseconds, rounded up: a deadline is never reported early
        let ms = wait.map_or(-1, |w| {
            i32::try_from(w.as_micros().div_ceil(1000)).unwrap_or(i32::MAX)
        });
        let cap = i32::try_from(self.events.len()).unwrap_or(i32::MAX);
        // SAFETY: the buffer holds `cap` events and outlives the call.
        let n =
            unsafe { libc::epoll_wait(self.epoll.as_raw_fd(), self.events.as_mut_ptr(), cap, ms) };
        let n = if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
            0
        } else {
            usize::try_from(n).unwrap_or(0)
        };
        let mut woken = false;
        let mut ready = VecDeque::with_capacity(n);
        for ev in &self.events[..n] {
            let token = ev.u64;
            if token == WAKE {
                woken = true;
                continue;
            }
            let i = usize::try_from(token).unwrap_or(usize::MAX);
            // (a one-shot registration fires once; the slot's wait is cleared here so that an
            // event is never taken for a later wait)
            if let Some(Some(slot)) = self.slots.get_mut(i)
                && slot.wait.take().is_some()
            {
                ready.push_back((i, Ok(true)));
            }
        }
        if nearest.is_some() {
            let now = Instant::now();
            for (i, slot) in self.slots.iter_mut().enumerate() {
                let Some(slot) = slot else { continue };
                if slot
                    .wait
                    .as_ref()
                    .is_some_and(|w| w.deadline.is_some_and(|d| d <= now))
                {
                    let w = slot.wait.take().expect("checked above");
                    // its registration may still fire: removed, so it cannot wake a later task
                    // in this slot
                    // SAFETY: plain system call; a closed fd only makes it fail.
                    unsafe {
                        libc::epoll_ctl(
                            self.epoll.as_raw_fd(),
                            libc::EPOLL_CTL_DEL,
                            w.fd,
                            ptr::null_mut(),
                        )
                    };
                    ready.push_back((i, Ok(false)));
                }
            }
        }
        for (i, woken) in ready {
            self.resume(i, woken, out);
        }
        Ok(woken)
    }

    /// Runs task `i` until it waits again (its socket is armed) or returns.
    fn resume(&mut self, i: usize, mut woken: Woken, out: &mut Vec<T>) {
        loop {
            let Some(slot) = self.slots[i].as_mut() else {
                return;
            };
            let result = {
                // cleared however the task hands control back (an unwinding too)
                let _clear = ClearCurrent;
                slot.task.resume(woken)
            };
            match result {
                CoroutineResult::Yield(w) => match self.arm(&w, i) {
                    Ok(()) => {
                        if let Some(slot) = self.slots[i].as_mut() {
                            slot.wait = Some(w);
                        }
                        return;
                    }
                    // a socket epoll refuses: the task's wait fails with that error
                    Err(e) => woken = Err(e),
                },
                CoroutineResult::Return(t) => {
                    if let Some(slot) = self.slots[i].take() {
                        self.stacks.push(slot.task.into_stack());
                    }
                    self.free.push(i);
                    self.running -= 1;
                    out.push(t);
                    return;
                }
            }
        }
    }

    /// Registers `w.fd` for one event, naming slot `i`: re-armed if registered before (a
    /// connection kept alive keeps its registration, disarmed after its last event).
    fn arm(&self, w: &Wait, i: usize) -> io::Result<()> {
        let interest = match w.interest {
            Interest::Read => libc::EPOLLIN | libc::EPOLLRDHUP,
            Interest::Write => libc::EPOLLOUT,
        };
        let mut ev = libc::epoll_event {
            events: (interest | libc::EPOLLONESHOT) as u32,
            u64: i as u64,
        };
        let epoll = self.epoll.as_raw_fd();
        // SAFETY: valid event; a bad fd only makes the calls fail.
        if unsafe { libc::epoll_ctl(epoll, libc::EPOLL_CTL_MOD, w.fd, &mut ev) } == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::ENOENT) {
            return Err(e);
        }
        // SAFETY: as above.
        if unsafe { libc::epoll_ctl(epoll, libc::EPOLL_CTL_ADD, w.fd, &mut ev) } == 0 {
            return Ok(());
        }
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::os::unix::net::UnixStream;

    fn wake_pair() -> (UnixStream, UnixStream) {
        let (a, b) = UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        b.set_nonblocking(true).unwrap();
        (a, b)
    }

    /// A task's read: on `WouldBlock`, wait and try again.
    fn read_one(mut s: &UnixStream, deadline: Option<Instant>) -> Result<u8, &'static str> {
        let mut b = [0u8; 1];
        loop {
            match s.read(&mut b) {
                Ok(1) => return Ok(b[0]),
                Ok(_) => return Err("closed"),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if !wait(s.as_raw_fd(), Interest::Read, deadline).unwrap() {
                        return Err("timed out");
                    }
                }
                Err(_) => return Err("error"),
            }
        }
    }

    #[test]
    fn tasks_wait_for_their_own_sockets_and_deadlines_on_one_thread() {
        let (wake, _wake_tx) = wake_pair();
        let mut r = Reactor::new(epoll_with(wake.as_raw_fd()).unwrap());
        let mut out = Vec::new();
        let mut peers = Vec::new();
        for n in 0..3u8 {
            let (ours, theirs) = wake_pair();
            peers.push(theirs);
            r.spawn(move || read_one(&ours, None).map(|b| (n, b)), &mut out)
                .unwrap();
        }
        let (ours, _quiet) = wake_pair();
        let deadline = Instant::now() + Duration::from_millis(50);
        r.spawn(
            move || read_one(&ours, Some(deadline)).map(|b| (9, b)),
            &mut out,
        )
        .unwrap();
        assert!(out.is_empty(), "every task waits");
        assert_eq!(r.len(), 4);
        // answered in reverse order: each task gets its own peer's byte
        for (n, p) in peers.iter_mut().enumerate().rev() {
            (&*p).write_all(&[n as u8 + 10]).unwrap();
        }
        while out.len() < 3 {
            r.turn(None, &mut out).unwrap();
        }
        out.sort_by_key(|r| r.map_or(99, |(n, _)| n));
        assert_eq!(out, [Ok((0, 10)), Ok((1, 11)), Ok((2, 12))]);
        out.clear();
        // the quiet one times out, not before its deadline
        while out.is_empty() {
            r.turn(None, &mut out).unwrap();
        }
        assert!(Instant::now() >= deadline);
        assert_eq!(out, [Err("timed out")]);
        assert!(r.is_empty());
        // its stack is reused by the next task
        assert_eq!(r.stacks.len(), 4);
        r.spawn(|| Ok((7, 7)), &mut out).unwrap();
        assert_eq!(r.stacks.len(), 4);
    }

    #[test]
    fn the_wake_fd_ends_a_blocking_turn() {
        let (wake, wake_tx) = wake_pair();
        let mut r: Reactor<()> = Reactor::new(epoll_with(wake.as_raw_fd()).unwrap());
        let mut out = Vec::new();
        assert!(!r.turn(Some(Duration::ZERO), &mut out).unwrap());
        let t = std::thread::spawn(move || (&wake_tx).write_all(&[1]).unwrap());
        assert!(r.turn(None, &mut out).unwrap());
        t.join().unwrap();
    }

    #[test]
    fn outside_a_task_wait_blocks_the_thread_until_ready_or_the_deadline() {
        let (a, b) = wake_pair();
        let start = Instant::now();
        let deadline = start + Duration::from_millis(30);
        assert!(!wait(a.as_raw_fd(), Interest::Read, Some(deadline)).unwrap());
        assert!(Instant::now() >= deadline);
        (&b).write_all(&[1]).unwrap();
        assert!(wait(a.as_raw_fd(), Interest::Read, None).unwrap());
        assert!(wait(a.as_raw_fd(), Interest::Write, None).unwrap());
    }
}
