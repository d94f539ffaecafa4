//! Plain TCP under ureq (and under its TLS), with fewer system calls per request than the
//! connector ureq ships with.
//!
//! Profiled at 15,000 deliveries a second (2026-12-08, strace -c on the worker), ureq's own
//! TCP transport made about four system calls per request that carry nothing: a keep-alive
//! connection's liveness probe switches the socket to non-blocking and back around a one-byte
//! read (three calls), and each read or write sets the socket's timeout to the time left
//! (`setsockopt`), which differs on every request. Here the probe is one `recv` with
//! `MSG_PEEK | MSG_DONTWAIT`, and a timeout already set is kept while it ends no earlier than
//! the time left and at most a little later ([`slack`]). The errors are ureq's for the same
//! failures, so that `outcome.rs` classifies them alike. Where this differs from ureq's
//! connector: a host's addresses share the connect time equally (ureq halves it from one to
//! the next); a connect timeout names the limit that ran out (`Connect` or `Global`) rather
//! than always `Connect`; a write that a slow reader or a signal splits waits in all only for
//! the time left, as a read does.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use ureq::unversioned::transport::{
    Buffers, ConnectionDetails, Connector, Either, LazyBuffers, NextTimeout, ShutdownHandle,
    Transport,
};
use ureq::{Error, Timeout};

/// Opens plain TCP connections; chained after the CONNECT proxy connector (which opens its
/// own through the whole chain) and before TLS, as ureq's default chain does.
#[derive(Debug, Default)]
pub struct TcpConnector;

impl<In: Transport> Connector<In> for TcpConnector {
    type Out = Either<In, TcpTransport>;

    fn connect(
        &self,
        details: &ConnectionDetails,
        chained: Option<In>,
    ) -> Result<Option<Self::Out>, Error> {
        if let Some(transport) = chained {
            return Ok(Some(Either::A(transport)));
        }
        let deadline = details
            .timeout
            .not_zero()
            .map(|after| Instant::now() + *after);
        let stream = connect_any(&details.addrs, deadline, details.timeout.reason)?;
        if details.config.no_delay() {
            stream.set_nodelay(true)?;
        }
        let stream = Arc::new(Shared(stream));
        // the agent can then interrupt this socket's blocking I/O from another thread
        (details.register_shutdown)(Arc::downgrade(&stream) as Weak<dyn ShutdownHandle>)?;
        let config = details.config;
        Ok(Some(Either::B(TcpTransport {
            stream,
            buffers: LazyBuffers::new(config.input_buffer_size(), config.output_buffer_size()),
            read_timeout: None,
            write_timeout: None,
        })))
    }
}

/// Tries the addresses in order, each with an equal share of the time left; the first that
/// connects wins. A refusal or an unreachable network concerns only that address (a host
/// without an IPv6 route given an IPv6 address first), so the next is tried.
fn connect_any(
    addrs: &[SocketAddr],
    deadline: Option<Instant>,
    reason: Timeout,
) -> Result<TcpStream, Error> {
    let mut last = None;
    for (i, addr) in addrs.iter().enumerate() {
        let result = match deadline {
            None => TcpStream::connect(addr),
            Some(deadline) => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(Error::Timeout(reason));
                }
                let share = left / u32::try_from(addrs.len() - i).unwrap_or(u32::MAX);
                TcpStream::connect_timeout(addr, share.max(Duration::from_millis(10)).min(left))
            }
        };
        match result {
            Ok(stream) => return Ok(stream),
            Err(e) if e.kind() == io::ErrorKind::TimedOut => last = Some(Error::Timeout(reason)),
            Err(e) if next_address_may_do(&e) => last = Some(Error::Io(e)),
            Err(e) => return Err(Error::Io(e)),
        }
    }
    Err(last.unwrap_or(Error::Io(io::Error::new(
        io::ErrorKind::ConnectionRefused,
        "Connection refused",
    ))))
}

fn next_address_may_do(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::HostUnreachable
            | io::ErrorKind::NetworkUnreachable
            | io::ErrorKind::NetworkDown
            | io::ErrorKind::AddrNotAvailable
    )
}

/// The socket, shared with the agent's shutdown handle.
struct Shared(TcpStream);

impl ShutdownHandle for Shared {
    fn shutdown(&self) {
        // already closed or shut down: nothing left to interrupt
        let _ = self.0.shutdown(std::net::Shutdown::Both);
    }
}

pub struct TcpTransport {
    stream: Arc<Shared>,
    buffers: LazyBuffers,
    /// The socket's SO_RCVTIMEO and SO_SNDTIMEO as last set (`None`: never set, blocks).
    read_timeout: Option<Duration>,
    write_timeout: Option<Duration>,
}

impl fmt::Debug for TcpTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpTransport")
            .field("peer", &self.stream.0.peer_addr().ok())
            .finish()
    }
}

/// How much later than asked a socket timeout already set may end, for a wait of `left`: a
/// tenth of it, at most 20 ms. Each request's time left starts again from the full timeout, so
/// a keep-alive connection's timeout set for one request still fits the next (its reads come
/// within milliseconds of its start), and is not set again.
fn slack(left: Duration) -> Duration {
    (left / 10).min(Duration::from_millis(20))
}

/// Sets a socket timeout when the one set does not fit `left` (see [`slack`]): never one that
/// ends sooner than asked, so a timeout never fires early.
fn fit_timeout(
    current: &mut Option<Duration>,
    left: Option<Duration>,
    set: impl FnOnce(Option<Duration>) -> io::Result<()>,
) -> io::Result<()> {
    let fits = match (*current, left) {
        (Some(c), Some(l)) => c >= l && c <= l + slack(l),
        (c, l) => c.is_none() && l.is_none(),
    };
    if fits {
        return Ok(());
    }
    let new = left.map(|l| l + slack(l) / 2);
    set(new)?;
    *current = new;
    Ok(())
}

/// The wait a NextTimeout allows, or an error if none is left.
fn time_left(timeout: NextTimeout) -> Result<Option<Duration>, Error> {
    if !timeout.after.is_not_happening() && timeout.after.is_zero() {
        return Err(Error::Timeout(timeout.reason));
    }
    Ok(timeout.not_zero().map(|d| *d))
}

/// The time left until `deadline` (`None`: no deadline), or the timeout once it has passed.
fn left_until(deadline: Option<Instant>, reason: Timeout) -> Result<Option<Duration>, Error> {
    match deadline.map(|d| d.saturating_duration_since(Instant::now())) {
        Some(left) if left.is_zero() => Err(Error::Timeout(reason)),
        left => Ok(left),
    }
}

/// A socket timeout's expiry, as an error: EAGAIN from a timed read or write.
fn timed_out(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

impl Transport for TcpTransport {
    fn buffers(&mut self) -> &mut dyn Buffers {
        &mut self.buffers
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), Error> {
        let timeout = timeout.for_write();
        let deadline = time_left(timeout)?.map(|l| Instant::now() + l);
        let stream = &self.stream.0;
        let mut output = &self.buffers.output()[..amount];
        // each partial write (a slow reader) and each signal waits only for what is left
        while !output.is_empty() {
            let left = left_until(deadline, timeout.reason)?;
            fit_timeout(&mut self.write_timeout, left, |t| {
                stream.set_write_timeout(t)
            })?;
            match (&*stream).write(output) {
                Ok(0) => return Err(Error::Io(io::ErrorKind::WriteZero.into())),
                Ok(n) => output = &output[n..],
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if timed_out(&e) => return Err(Error::Timeout(timeout.reason)),
                Err(e) => return Err(Error::Io(e)),
            }
        }
        Ok(())
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, Error> {
        let timeout = timeout.for_read();
        let deadline = time_left(timeout)?.map(|l| Instant::now() + l);
        let stream = &self.stream.0;
        loop {
            let left = left_until(deadline, timeout.reason)?;
            fit_timeout(&mut self.read_timeout, left, |t| stream.set_read_timeout(t))?;
            let input = self.buffers.input_append_buf();
            match (&*stream).read(input) {
                Ok(n) => {
                    self.buffers.input_appended(n);
                    return Ok(n > 0);
                }
                // a signal (PostgreSQL's, delivered to this thread): wait for what is left
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if timed_out(&e) => return Err(Error::Timeout(timeout.reason)),
                Err(e) => return Err(Error::Io(e)),
            }
        }
    }

    /// Whether a pooled connection can carry another request: nothing to read on it (no
    /// close from the server, no stray bytes after the last response). One peek that does not
    /// wait, without switching the socket to non-blocking and back.
    fn is_open(&mut self) -> bool {
        let mut byte = 0u8;
        // SAFETY: recv into one byte we own, on a socket this transport owns.
        let n = unsafe {
            libc::recv(
                self.stream.0.as_raw_fd(),
                (&raw mut byte).cast(),
                1,
                libc::MSG_PEEK | libc::MSG_DONTWAIT,
            )
        };
        n < 0 && io::Error::last_os_error().kind() == io::ErrorKind::WouldBlock
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    fn pair() -> (TcpTransport, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        let transport = TcpTransport {
            stream: Arc::new(Shared(client)),
            buffers: LazyBuffers::new(1024, 1024),
            read_timeout: None,
            write_timeout: None,
        };
        (transport, server)
    }

    fn within(after: Duration) -> NextTimeout {
        NextTimeout {
            after: after.into(),
            reason: Timeout::Global,
            ..NextTimeout::default()
        }
    }

    #[test]
    fn the_probe_tells_a_reusable_connection_from_a_closed_or_dirty_one() {
        let (mut idle, _server) = pair();
        assert!(idle.is_open());
        assert!(idle.is_open(), "the probe must not consume anything");

        let (mut closed, server) = pair();
        drop(server);
        // the FIN arrives at once on loopback; wait for it rather than sleep a fixed time
        let until = Instant::now() + Duration::from_secs(5);
        while closed.is_open() && Instant::now() < until {
            std::thread::yield_now();
        }
        assert!(!closed.is_open());

        let (mut dirty, mut server) = pair();
        server.write_all(b"x").unwrap();
        let until = Instant::now() + Duration::from_secs(5);
        while dirty.is_open() && Instant::now() < until {
            std::thread::yield_now();
        }
        assert!(!dirty.is_open(), "bytes nobody asked for: not reused");
    }

    #[test]
    fn a_read_waits_for_the_time_left_and_not_much_longer() {
        let (mut t, _server) = pair();
        let start = Instant::now();
        let e = t
            .await_input(within(Duration::from_millis(200)))
            .unwrap_err();
        let took = start.elapsed();
        assert!(matches!(e, Error::Timeout(Timeout::Global)), "{e:?}");
        assert!(took >= Duration::from_millis(200), "fired early: {took:?}");
        assert!(took < Duration::from_millis(200 + 20 + 500), "{took:?}");

        // and what arrives in time is read
        let (mut t, mut server) = pair();
        server.write_all(b"HTTP/1.1 200 OK\r\n").unwrap();
        assert!(t.await_input(within(Duration::from_secs(5))).unwrap());
        assert_eq!(t.buffers().input(), b"HTTP/1.1 200 OK\r\n");
    }

    #[test]
    fn a_timeout_set_is_kept_while_it_ends_no_sooner_and_little_later() {
        let ms = Duration::from_millis;
        let mut sets = Vec::new();
        let mut current = None;
        for left in [ms(10_000), ms(9_999), ms(9_995), ms(10_000), ms(9_970)] {
            fit_timeout(&mut current, Some(left), |t| {
                sets.push(t);
                Ok(())
            })
            .unwrap();
            let c = current.unwrap();
            assert!(c >= left && c <= left + ms(20), "{c:?} for {left:?}");
        }
        // set for the first, kept for the next three (within 10 ms of their start), set again
        // for the last, which an endpoint kept waiting 30 ms
        assert_eq!(sets, [Some(ms(10_010)), Some(ms(9_980))]);
        // a short timeout is honoured within a tenth of itself
        fit_timeout(&mut current, Some(ms(5)), |_| Ok(())).unwrap();
        assert!(current.unwrap() <= ms(5) + ms(1) / 2);
        // none asked: blocking again
        fit_timeout(&mut current, None, |_| Ok(())).unwrap();
        assert_eq!(current, None);
    }
}
