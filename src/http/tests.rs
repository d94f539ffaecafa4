//! The client's tests: its own checks, then real exchanges with test servers on 127.0.0.1
//! (plain, TLS, through a CONNECT proxy), bounded in time and count.

use super::*;
use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;

#[test]
fn scrub_and_clip() {
    let req = Request {
        url: "https://alice:pa55word@example.com/hook?sig=abcdef".into(),
        headers: vec![
            ("Authorization".into(), "Bearer topsecret-token".into()),
            ("Content-Type".into(), "json".into()),
        ],
        body: vec![],
    };
    let msg = "x alice:pa55word y pa55word z sig=abcdef w Bearer topsecret-token json".to_owned();
    let out = scrub(msg, &req);
    for s in ["pa55word", "alice", "sig=abcdef", "topsecret"] {
        assert!(!out.contains(s), "{out}");
    }
    assert!(out.contains("json"));
    let long = scrub("é".repeat(1000), &req);
    assert_eq!(long.chars().count(), MAX_ERROR_LEN);
    assert!(long.ends_with("..."));
}

#[test]
fn excerpt_utf8_cut() {
    // A 2-byte character split by the cut is dropped, not replaced.
    let mut body = vec![b'a'; EXCERPT_LEN - 1];
    body.extend_from_slice("é".as_bytes());
    body.extend_from_slice(b"tail");
    let ex = excerpt_of(&body);
    assert_eq!(ex.len(), EXCERPT_LEN - 1);
    assert!(!ex.contains('\u{fffd}'));
    // Invalid bytes inside are replaced.
    assert_eq!(excerpt_of(b"a\xffb"), "a\u{fffd}b");
    assert_eq!(excerpt_of(b"ok"), "ok");
}

#[test]
fn client_config_checks() {
    let cfg = ClientConfig::default();
    assert!(Client::new(&cfg).is_ok());
    // Production default: refuse every private-like address.
    assert_eq!(cfg.destination_policy, DestinationPolicy::default());
    assert!(
        !cfg.destination_policy
            .allows("x", "127.0.0.1".parse().unwrap())
    );

    let zero = ClientConfig {
        total_timeout: Duration::ZERO,
        ..ClientConfig::default()
    };
    assert!(Client::new(&zero).is_err());

    let socks = ClientConfig {
        proxy: Some("socks5://bob:hunter22@proxy:1080".into()),
        ..ClientConfig::default()
    };
    let err = Client::new(&socks).expect_err("socks");
    assert!(err.message().contains("SOCKS"), "{err}");
    assert!(!err.message().contains("hunter22"));

    let with_creds = ClientConfig {
        proxy: Some("http://bob:hunter22@proxy.example:3128".into()),
        ..ClientConfig::default()
    };
    assert!(Client::new(&with_creds).is_ok());
    assert!(!format!("{with_creds:?}").contains("hunter22"));

    let req = Request {
        url: "https://bob:hunter22@h.example/x?k=v".into(),
        headers: vec![("Authorization".into(), "Bearer xyzzy-secret".into())],
        body: vec![1, 2, 3],
    };
    let dbg = format!("{req:?}");
    assert!(!dbg.contains("hunter22") && !dbg.contains("xyzzy") && !dbg.contains("k=v"));
    assert!(dbg.contains("Authorization") && dbg.contains("h.example:443"));
}

#[test]
fn client_is_shareable() {
    fn assert_send_sync_clone<T: Send + Sync + Clone + 'static>() {}
    assert_send_sync_clone::<Client>();
}

#[test]
fn extra_ca_file_errors() {
    let dir = scratch_dir("cafile");
    let missing = dir.join("missing.pem");
    let err = Client::new(&ClientConfig {
        extra_ca_file: Some(missing.clone()),
        ..ClientConfig::default()
    })
    .expect_err("missing");
    assert!(err.message().contains("cannot read CA file"), "{err}");
    assert!(err.message().contains("missing.pem"), "{err}");

    let empty = dir.join("empty.pem");
    std::fs::write(&empty, "just text\n").unwrap();
    let err = Client::new(&ClientConfig {
        extra_ca_file: Some(empty),
        ..ClientConfig::default()
    })
    .expect_err("empty");
    assert!(err.message().contains("no PEM CERTIFICATE"), "{err}");

    let garbage = dir.join("garbage.pem");
    std::fs::write(
        &garbage,
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let err = Client::new(&ClientConfig {
        extra_ca_file: Some(garbage),
        ..ClientConfig::default()
    })
    .expect_err("garbage");
    assert!(err.message().contains("trust anchor"), "{err}");

    let broken = dir.join("broken.pem");
    std::fs::write(&broken, "-----BEGIN CERTIFICATE-----\n!!!!\n").unwrap();
    assert!(
        Client::new(&ClientConfig {
            extra_ca_file: Some(broken),
            ..ClientConfig::default()
        })
        .is_err()
    );
}

#[test]
fn invalid_requests_are_not_sent() {
    let client = Client::new(&quick_config()).unwrap();
    let cases: Vec<(Request, &str)> = vec![
        (post("ftp://127.0.0.1:1/", vec![], b""), "scheme"),
        (
            post(
                "http://127.0.0.1:1/",
                vec![("Bad Name".into(), "v".into())],
                b"",
            ),
            "invalid name",
        ),
        (
            post(
                "http://127.0.0.1:1/",
                vec![("X-Evil".into(), "a\r\nInjected: yes".into())],
                b"",
            ),
            "X-Evil",
        ),
        (
            post(
                "http://127.0.0.1:1/",
                vec![("Content-Length".into(), "3".into())],
                b"",
            ),
            "cannot be overridden",
        ),
    ];
    for (req, want) in cases {
        let a = client.send(&req);
        assert_eq!(a.error_class, Some(ErrorClass::InvalidRequest), "{a:?}");
        assert!(a.error.as_deref().unwrap_or("").contains(want), "{a:?}");
        assert_eq!(classify(&a), Verdict::Fail);
        assert!(!a.error.unwrap_or_default().contains("Injected"));
    }
}

// ---------- test servers (127.0.0.1 only, bounded in time and count) ----------

/// One request as received by a test server.
#[derive(Debug, Clone)]
struct Captured {
    request_line: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

struct Server {
    addr: SocketAddr,
    accepts: Arc<AtomicUsize>,
    requests: Arc<Mutex<Vec<Captured>>>,
}

impl Server {
    fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }
    fn accepts(&self) -> usize {
        self.accepts.load(Ordering::SeqCst)
    }
}

/// Longest a test server lives, so nothing outlasts the test run.
const SERVER_LIFETIME: Duration = Duration::from_secs(20);

/// Start a server that accepts up to `max_conns` connections and runs
/// `handler` on each in its own thread.
fn serve<F>(max_conns: usize, handler: F) -> Server
where
    F: Fn(TcpStream, &Mutex<Vec<Captured>>) + Send + Sync + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    listener.set_nonblocking(true).unwrap();
    let accepts = Arc::new(AtomicUsize::new(0));
    let requests = Arc::new(Mutex::new(Vec::new()));
    let handler = Arc::new(handler);
    let (acc, reqs) = (accepts.clone(), requests.clone());
    thread::spawn(move || {
        let deadline = Instant::now() + SERVER_LIFETIME;
        while Instant::now() < deadline && acc.load(Ordering::SeqCst) < max_conns {
            match listener.accept() {
                Ok((stream, _)) => {
                    acc.fetch_add(1, Ordering::SeqCst);
                    stream.set_nonblocking(false).unwrap();
                    stream
                        .set_read_timeout(Some(Duration::from_secs(10)))
                        .unwrap();
                    let (h, r) = (handler.clone(), reqs.clone());
                    thread::spawn(move || h(stream, &r));
                }
                Err(_) => thread::sleep(Duration::from_millis(5)),
            }
        }
    });
    Server {
        addr,
        accepts,
        requests,
    }
}

/// Read one request head byte by byte (so nothing past it is consumed).
fn read_head(s: &mut impl Read) -> Option<(String, Vec<(String, String)>)> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match s.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return None,
        }
        if head.len() > 65_536 {
            return None;
        }
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    let mut lines = text.split("\r\n");
    let request_line = lines.next()?.to_owned();
    let headers = lines
        .filter(|l| !l.is_empty())
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.to_owned(), v.trim().to_owned()))
        .collect();
    Some((request_line, headers))
}

/// Read one whole request (head + Content-Length body).
fn read_request(s: &mut impl Read) -> Option<Captured> {
    let (request_line, headers) = read_head(s)?;
    let len: usize = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    s.read_exact(&mut body).ok()?;
    Some(Captured {
        request_line,
        headers,
        body,
    })
}

/// Handler: answer every request on the connection with `response`.
fn answer_all(
    response: Vec<u8>,
) -> impl Fn(TcpStream, &Mutex<Vec<Captured>>) + Send + Sync + 'static {
    move |mut s, log| {
        while let Some(req) = read_request(&mut s) {
            log.lock().unwrap().push(req);
            if s.write_all(&response).is_err() {
                return;
            }
        }
    }
}

/// Short timeouts, and a policy that lets the tests reach their
/// servers on 127.0.0.1 (the production default refuses loopback).
fn quick_config() -> ClientConfig {
    ClientConfig {
        connect_timeout: Duration::from_secs(2),
        total_timeout: Duration::from_secs(5),
        destination_policy: DestinationPolicy::parse("127.0.0.1").unwrap(),
        ..ClientConfig::default()
    }
}

fn post(url: &str, headers: Vec<(String, String)>, body: &[u8]) -> Request {
    Request {
        url: url.to_owned(),
        headers,
        body: body.to_vec(),
    }
}

fn json_post(url: &str) -> Request {
    post(
        url,
        vec![("Content-Type".into(), "application/json".into())],
        b"{\"event\":\"feature-created\"}",
    )
}

fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "unleash-webhook-http-test-{}-{name}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn status_response(status: &str, extra: &str, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status}\r\n{extra}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

// ---------- behaviour against real sockets ----------

#[test]
fn status_200_is_delivered() {
    let server = serve(4, answer_all(status_response("200 OK", "", "thanks")));
    let client = Client::new(&quick_config()).unwrap();
    let a = client.send(&json_post(&server.url("/hook")));
    assert_eq!(a.status, Some(200), "{a:?}");
    assert_eq!(a.error_class, None);
    assert_eq!(a.error, None);
    assert_eq!(a.response_excerpt, "thanks");
    assert_eq!(classify(&a), Verdict::Delivered);
}

#[test]
fn server_errors_are_retried_and_404_fails() {
    for (status, class, verdict, body) in [
        (
            "503 Service Unavailable",
            ErrorClass::Http,
            Verdict::Retry,
            "busy",
        ),
        (
            "500 Internal Server Error",
            ErrorClass::Http,
            Verdict::Retry,
            "oops",
        ),
        (
            "404 Not Found",
            ErrorClass::Http,
            Verdict::Fail,
            "no such hook",
        ),
    ] {
        let server = serve(4, answer_all(status_response(status, "", body)));
        let client = Client::new(&quick_config()).unwrap();
        let a = client.send(&json_post(&server.url("/hook")));
        let code: u16 = status[..3].parse().unwrap();
        assert_eq!(a.status, Some(code), "{a:?}");
        assert_eq!(a.error_class, Some(class));
        assert!(a.error.as_deref().unwrap().contains(&status[..3]), "{a:?}");
        assert_eq!(a.response_excerpt, body);
        assert_eq!(classify(&a), verdict, "{status}");
    }
}

#[test]
fn redirect_is_not_followed() {
    let target = serve(4, answer_all(status_response("200 OK", "", "")));
    let location = format!("Location: {}\r\n", target.url("/elsewhere"));
    for status in [
        "301 Moved Permanently",
        "302 Found",
        "307 Temporary Redirect",
    ] {
        let server = serve(4, answer_all(status_response(status, &location, "moved")));
        let client = Client::new(&quick_config()).unwrap();
        let a = client.send(&json_post(&server.url("/hook")));
        assert_eq!(a.status, Some(status[..3].parse().unwrap()), "{a:?}");
        assert_eq!(a.error_class, Some(ErrorClass::Redirect));
        assert_eq!(a.response_excerpt, "moved");
        assert_eq!(classify(&a), Verdict::Fail);
    }
    thread::sleep(Duration::from_millis(200));
    assert_eq!(target.accepts(), 0, "redirect target was contacted");
}

#[test]
fn too_many_requests_with_retry_after() {
    let server = serve(
        4,
        answer_all(status_response(
            "429 Too Many Requests",
            "Retry-After: 2\r\n",
            "slow down",
        )),
    );
    let client = Client::new(&quick_config()).unwrap();
    let a = client.send(&json_post(&server.url("/hook")));
    assert_eq!(a.status, Some(429));
    assert_eq!(a.retry_after, Some(Duration::from_secs(2)));
    assert_eq!(classify(&a), Verdict::Retry);
}

#[test]
fn connection_refused_is_retried() {
    // Bind then drop: the port is closed for the rest of the test.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let client = Client::new(&quick_config()).unwrap();
    let req = post(
        &format!("http://alice:s3cr3t@127.0.0.1:{port}/hook?token=t0k3n"),
        vec![("Authorization".into(), "Bearer very-secret".into())],
        b"{}",
    );
    let a = client.send(&req);
    assert_eq!(a.status, None);
    assert_eq!(a.error_class, Some(ErrorClass::Connect), "{a:?}");
    let msg = a.error.clone().unwrap();
    assert!(msg.contains("connection refused"), "{msg}");
    assert!(msg.contains(&format!("127.0.0.1:{port}")), "{msg}");
    for secret in ["s3cr3t", "alice", "t0k3n", "very-secret"] {
        assert!(!msg.contains(secret), "{msg}");
    }
    assert!(msg.chars().count() <= MAX_ERROR_LEN);
    assert_eq!(classify(&a), Verdict::Retry);
}

#[test]
fn silent_server_times_out() {
    let server = serve(1, |mut s, _| {
        let _ = read_request(&mut s);
        // Hold the connection open without answering.
        thread::sleep(Duration::from_secs(4));
    });
    let total = Duration::from_millis(700);
    let client = Client::new(&ClientConfig {
        connect_timeout: Duration::from_millis(500),
        total_timeout: total,
        ..quick_config()
    })
    .unwrap();
    let t0 = Instant::now();
    let a = client.send(&json_post(&server.url("/hook")));
    let elapsed = t0.elapsed();
    assert_eq!(a.error_class, Some(ErrorClass::Timeout), "{a:?}");
    assert!(elapsed >= total, "{elapsed:?}");
    assert!(elapsed < total + Duration::from_millis(1500), "{elapsed:?}");
    assert!(a.duration >= total);
    assert_eq!(classify(&a), Verdict::Retry);
}

#[test]
fn reset_mid_response_is_retried() {
    // Read only the head and leave the body unread: closing a socket
    // with unread input makes the kernel send RST instead of FIN.
    let server = serve(1, |mut s, _| {
        let _ = read_head(&mut s);
        thread::sleep(Duration::from_millis(100));
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Le");
        let _ = s.flush();
        thread::sleep(Duration::from_millis(50));
    });
    let client = Client::new(&quick_config()).unwrap();
    let a = client.send(&json_post(&server.url("/hook")));
    assert_eq!(a.status, None, "{a:?}");
    assert_eq!(a.error_class, Some(ErrorClass::Reset), "{a:?}");
    assert_eq!(classify(&a), Verdict::Retry);
}

#[test]
fn close_mid_headers_is_retried() {
    let server = serve(1, |mut s, _| {
        let _ = read_request(&mut s);
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Le");
        let _ = s.shutdown(std::net::Shutdown::Both);
    });
    let client = Client::new(&quick_config()).unwrap();
    let a = client.send(&json_post(&server.url("/hook")));
    assert_eq!(a.status, None, "{a:?}");
    assert_eq!(a.error_class, Some(ErrorClass::Reset), "{a:?}");
    assert_eq!(classify(&a), Verdict::Retry);
}

#[test]
fn garbage_response_is_other() {
    let server = serve(1, |mut s, _| {
        let _ = read_request(&mut s);
        let _ = s.write_all(b"SMTP ready\r\n\r\n");
    });
    let client = Client::new(&quick_config()).unwrap();
    let a = client.send(&json_post(&server.url("/hook")));
    assert_eq!(a.status, None, "{a:?}");
    assert_eq!(a.error_class, Some(ErrorClass::Other), "{a:?}");
}

/// Server answering every request with `size` bytes of body, recording
/// the most it managed to write for one response.
fn serve_big_body(size: usize, written: Arc<AtomicUsize>) -> Server {
    serve(4, move |mut s, _| {
        while read_request(&mut s).is_some() {
            let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {size}\r\n\r\n");
            if s.write_all(head.as_bytes()).is_err() {
                return;
            }
            let chunk = vec![b'x'; 64 * 1024];
            let mut sent = 0;
            while sent < size {
                let n = chunk.len().min(size - sent);
                if s.write_all(&chunk[..n]).is_err() {
                    written.fetch_max(sent, Ordering::SeqCst);
                    return;
                }
                sent += n;
            }
            written.fetch_max(sent, Ordering::SeqCst);
        }
    })
}

#[test]
fn large_body_is_not_read() {
    const MB: usize = 1024 * 1024;
    for size in [5 * MB, 100 * MB] {
        let written = Arc::new(AtomicUsize::new(0));
        let server = serve_big_body(size, written.clone());
        let client = Client::new(&quick_config()).unwrap();
        let t0 = Instant::now();
        let a = client.send(&json_post(&server.url("/big")));
        assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
        assert_eq!(a.status, Some(200));
        assert_eq!(a.error, None, "{a:?}");
        assert_eq!(a.response_excerpt.len(), EXCERPT_LEN);
        assert_eq!(classify(&a), Verdict::Delivered);
        // The half-read connection must not go back to the pool.
        let b = client.send(&json_post(&server.url("/big")));
        assert_eq!(b.status, Some(200));
        assert_eq!(server.accepts(), 2);
        if size == 100 * MB {
            // Socket buffers can swallow a few MB, never 100 MB.
            thread::sleep(Duration::from_millis(200));
            let w = written.load(Ordering::SeqCst);
            assert!(w < size, "server wrote the whole body ({w} bytes)");
        }
    }
}

#[test]
fn truncated_body_after_2xx_is_still_delivered() {
    // The status line is the endpoint's decision; a body cut short after
    // it is reported but does not turn delivery into a retry.
    let server = serve(1, |mut s, _| {
        let _ = read_request(&mut s);
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort");
    });
    let client = Client::new(&quick_config()).unwrap();
    let a = client.send(&json_post(&server.url("/hook")));
    assert_eq!(a.status, Some(200), "{a:?}");
    assert_eq!(a.error_class, None);
    assert!(
        a.error
            .as_deref()
            .unwrap_or("")
            .contains("response body not fully read"),
        "{a:?}"
    );
    assert_eq!(a.response_excerpt, "short");
    assert_eq!(classify(&a), Verdict::Delivered);
}

#[test]
fn empty_body_sends_content_length_zero() {
    let server = serve(1, answer_all(status_response("202 Accepted", "", "")));
    let client = Client::new(&quick_config()).unwrap();
    let a = client.send(&post(&server.url("/"), vec![], b""));
    assert_eq!(a.status, Some(202), "{a:?}");
    let got = server.requests.lock().unwrap()[0].clone();
    assert_eq!(got.request_line, "POST / HTTP/1.1");
    assert!(
        got.headers
            .iter()
            .any(|(n, v)| n == "content-length" && v == "0"),
        "{got:?}"
    );
}

/// A CONNECT proxy on 127.0.0.1 that tunnels to whatever it is asked
/// (only loopback targets are ever requested) or answers `refuse`.
fn serve_proxy(refuse: Option<&'static str>) -> Server {
    serve(4, move |mut client, log| {
        let Some((request_line, headers)) = read_head(&mut client) else {
            return;
        };
        log.lock().unwrap().push(Captured {
            request_line: request_line.clone(),
            headers,
            body: vec![],
        });
        if let Some(status) = refuse {
            let _ = client.write_all(&status_response(status, "", ""));
            return;
        }
        let target = request_line.split(' ').nth(1).unwrap_or("").to_owned();
        // Only loopback targets; "localhost" is taken as 127.0.0.1.
        let port = target
            .strip_prefix("127.0.0.1:")
            .or_else(|| target.strip_prefix("localhost:"))
            .unwrap_or_else(|| panic!("unexpected CONNECT target {target}"));
        let Ok(upstream) = TcpStream::connect(format!("127.0.0.1:{port}")) else {
            return;
        };
        let _ = client.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n");
        let (mut c2, mut u2) = (client.try_clone().unwrap(), upstream.try_clone().unwrap());
        let up = thread::spawn(move || {
            let _ = io::copy(&mut c2, &mut u2);
            let _ = u2.shutdown(std::net::Shutdown::Write);
        });
        let (mut u, mut c) = (upstream, client);
        let _ = io::copy(&mut u, &mut c);
        let _ = c.shutdown(std::net::Shutdown::Write);
        let _ = up.join();
    })
}

#[test]
fn proxy_tunnels_with_credentials() {
    let target = serve(2, answer_all(status_response("200 OK", "", "via proxy")));
    let proxy = serve_proxy(None);
    let client = Client::new(&ClientConfig {
        proxy: Some(format!("http://bob:hunter22@{}", proxy.addr)),
        ..quick_config()
    })
    .unwrap();
    let a = client.send(&json_post(&target.url("/hook")));
    assert_eq!(a.status, Some(200), "{a:?}");
    assert_eq!(a.response_excerpt, "via proxy");
    let connect = proxy.requests.lock().unwrap()[0].clone();
    assert_eq!(
        connect.request_line,
        format!("CONNECT {} HTTP/1.1", target.addr)
    );
    // base64("bob:hunter22")
    assert!(
        connect
            .headers
            .iter()
            .any(|(n, v)| n == "Proxy-Authorization" && v == "Basic Ym9iOmh1bnRlcjIy"),
        "{connect:?}"
    );
    assert!(
        !connect
            .headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("user-agent")),
        "{connect:?}"
    );
    assert_eq!(target.requests.lock().unwrap().len(), 1);
}

#[test]
fn proxy_refusal_is_a_connect_error() {
    let proxy = serve_proxy(Some("407 Proxy Authentication Required"));
    let client = Client::new(&ClientConfig {
        proxy: Some(format!("http://bob:hunter22@{}", proxy.addr)),
        ..quick_config()
    })
    .unwrap();
    let a = client.send(&json_post("http://127.0.0.1:9/hook"));
    assert_eq!(a.status, None, "{a:?}");
    assert_eq!(a.error_class, Some(ErrorClass::Connect), "{a:?}");
    let msg = a.error.unwrap();
    assert!(msg.contains("407"), "{msg}");
    assert!(!msg.contains("hunter22"), "{msg}");
}

#[test]
fn refused_destination_is_never_contacted() {
    let server = serve(4, answer_all(status_response("200 OK", "", "ok")));
    let port = server.addr.port();
    let client = Client::new(&ClientConfig {
        destination_policy: DestinationPolicy::default(),
        ..quick_config()
    })
    .unwrap();
    for (url, want) in [
        (
            format!("http://alice:s3cr3t@127.0.0.1:{port}/hook?token=t0k3n"),
            "127.0.0.1 is a loopback address; allow it with unleash_webhook.destination_allowlist",
        ),
        (
            format!("http://localhost:{port}/hook"),
            "localhost resolves to 127.0.0.1, which is a loopback address",
        ),
        (
            format!("https://127.0.0.1:{port}/hook"),
            "127.0.0.1 is a loopback address",
        ),
    ] {
        let a = client.send(&json_post(&url));
        assert_eq!(a.status, None, "{a:?}");
        assert_eq!(a.error_class, Some(ErrorClass::Policy), "{a:?}");
        assert_eq!(classify(&a), Verdict::Fail);
        let msg = a.error.unwrap();
        assert!(msg.contains(want), "{msg}");
        for secret in ["alice", "s3cr3t", "t0k3n"] {
            assert!(!msg.contains(secret), "{msg}");
        }
    }
    // Allowing something else does not help.
    let other = Client::new(&ClientConfig {
        destination_policy: DestinationPolicy::parse("10.0.0.0/8, ::1, example.com").unwrap(),
        ..quick_config()
    })
    .unwrap();
    let a = other.send(&json_post(&server.url("/hook")));
    assert_eq!(a.error_class, Some(ErrorClass::Policy), "{a:?}");
    thread::sleep(Duration::from_millis(200));
    assert_eq!(server.accepts(), 0, "refused destination was contacted");
}

#[test]
fn allowed_destinations_are_delivered() {
    let server = serve(16, answer_all(status_response("200 OK", "", "ok")));
    let port = server.addr.port();
    let ip_url = server.url("/hook");
    let name_url = format!("http://localhost:{port}/hook");
    for (spec, url) in [
        ("127.0.0.1", &ip_url),
        ("127.0.0.0/8", &ip_url),
        ("::ffff:127.0.0.1", &ip_url),
        ("localhost", &name_url),
        ("LocalHost", &name_url),
        ("127.0.0.0/8", &name_url),
        ("*", &ip_url),
        ("*", &name_url),
    ] {
        let client = Client::new(&ClientConfig {
            destination_policy: DestinationPolicy::parse(spec).unwrap(),
            ..quick_config()
        })
        .unwrap();
        let a = client.send(&json_post(url));
        assert_eq!(a.status, Some(200), "{spec} {url}: {a:?}");
        assert_eq!(classify(&a), Verdict::Delivered, "{spec} {url}");
    }
    // A host name entry does not allow the IP literal.
    let by_name = Client::new(&ClientConfig {
        destination_policy: DestinationPolicy::parse("localhost").unwrap(),
        ..quick_config()
    })
    .unwrap();
    let a = by_name.send(&json_post(&ip_url));
    assert_eq!(a.error_class, Some(ErrorClass::Policy), "{a:?}");
    assert_eq!(server.requests.lock().unwrap().len(), 8);
}

#[test]
fn proxy_target_is_checked_but_proxy_is_trusted() {
    let target = serve(2, answer_all(status_response("200 OK", "", "via proxy")));
    let proxy = serve_proxy(None);
    let proxy_url = format!("http://{}", proxy.addr);

    // Refused target: neither the proxy nor the target is contacted.
    let refusing = Client::new(&ClientConfig {
        proxy: Some(proxy_url.clone()),
        destination_policy: DestinationPolicy::default(),
        ..quick_config()
    })
    .unwrap();
    let a = refusing.send(&json_post(&target.url("/hook")));
    assert_eq!(a.error_class, Some(ErrorClass::Policy), "{a:?}");
    assert!(a.error.as_deref().unwrap().contains("loopback"), "{a:?}");
    assert_eq!(classify(&a), Verdict::Fail);
    let a = refusing.send(&json_post(&format!(
        "http://localhost:{}/hook",
        target.addr.port()
    )));
    assert_eq!(a.error_class, Some(ErrorClass::Policy), "{a:?}");
    thread::sleep(Duration::from_millis(200));
    assert_eq!(proxy.accepts(), 0);
    assert_eq!(target.accepts(), 0);

    // Target allowed by host name, proxy on 127.0.0.1 which the policy
    // does not list: the proxy is the operator's setting and trusted.
    let allowing = Client::new(&ClientConfig {
        proxy: Some(proxy_url),
        destination_policy: DestinationPolicy::parse("localhost").unwrap(),
        ..quick_config()
    })
    .unwrap();
    let url = format!("http://localhost:{}/hook", target.addr.port());
    let a = allowing.send(&json_post(&url));
    assert_eq!(a.status, Some(200), "{a:?}");
    assert_eq!(a.response_excerpt, "via proxy");
    let connect = proxy.requests.lock().unwrap()[0].clone();
    // The proxy resolves the target itself.
    assert_eq!(
        connect.request_line,
        format!("CONNECT localhost:{} HTTP/1.1", target.addr.port())
    );
    assert_eq!(target.requests.lock().unwrap().len(), 1);
}

#[test]
fn https_through_connect_proxy() {
    let pki = make_pki();
    let server = serve_tls(pki.server_config.clone(), 2);
    let proxy = serve_proxy(None);
    let dir = scratch_dir("proxy-tls");
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, &pki.ca_pem).unwrap();
    let client = Client::new(&ClientConfig {
        proxy: Some(format!("http://bob:hunter22@{}", proxy.addr)),
        extra_ca_file: Some(ca_file),
        ..quick_config()
    })
    .unwrap();
    let url = format!("https://127.0.0.1:{}/hook", server.addr.port());
    for _ in 0..2 {
        let a = client.send(&json_post(&url));
        assert_eq!(a.status, Some(200), "{a:?}");
        assert_eq!(a.response_excerpt, "secure");
        assert_eq!(classify(&a), Verdict::Delivered);
    }
    // One tunnel, kept alive and reused for the second request.
    assert_eq!(proxy.accepts(), 1);
    assert_eq!(server.accepts(), 1);
    let connect = proxy.requests.lock().unwrap()[0].clone();
    assert_eq!(
        connect.request_line,
        format!("CONNECT 127.0.0.1:{} HTTP/1.1", server.addr.port())
    );
    assert!(
        connect
            .headers
            .iter()
            .any(|(n, v)| n == "Proxy-Authorization" && v == "Basic Ym9iOmh1bnRlcjIy"),
        "{connect:?}"
    );
    let got = server.requests.lock().unwrap().clone();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].request_line, "POST /hook HTTP/1.1");
    assert!(
        !got[0]
            .headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("proxy-authorization")),
        "proxy credentials leaked to the target: {got:?}"
    );
}

#[test]
fn request_arrives_exactly_as_given() {
    let server = serve(1, answer_all(status_response("204 No Content", "", "")));
    let client = Client::new(&quick_config()).unwrap();
    let body: Vec<u8> = (0..=255u8).chain(b"{\"a\":1}".iter().copied()).collect();
    let headers: Vec<(String, String)> = vec![
        ("Content-Type".into(), "application/json".into()),
        ("Authorization".into(), "Bearer abc123".into()),
        ("X-Custom-One".into(), "one".into()),
        ("x-lower".into(), "two words\tand tab".into()),
        ("X-Empty".into(), "".into()),
        ("X-Z-Last".into(), "café".into()),
    ];
    let a = client.send(&post(
        &server.url("/path/hook?x=1&y=2"),
        headers.clone(),
        &body,
    ));
    assert_eq!(a.status, Some(204), "{a:?}");
    assert_eq!(classify(&a), Verdict::Delivered);

    let got = server.requests.lock().unwrap()[0].clone();
    assert_eq!(got.request_line, "POST /path/hook?x=1&y=2 HTTP/1.1");
    assert_eq!(got.body, body);
    // ureq writes its two framing headers first, then ours in order.
    let mut want = vec![
        ("content-length".to_owned(), body.len().to_string()),
        ("host".to_owned(), server.addr.to_string()),
    ];
    want.extend(headers.into_iter().map(|(n, v)| (n, v.trim().to_owned())));
    assert_eq!(got.headers, want);
}

#[test]
fn keep_alive_reuses_one_connection() {
    let server = serve(8, answer_all(status_response("200 OK", "", "ok")));
    let client = Client::new(&quick_config()).unwrap();
    for _ in 0..2 {
        let a = client.send(&json_post(&server.url("/hook")));
        assert_eq!(a.status, Some(200), "{a:?}");
    }
    assert_eq!(server.accepts(), 1);

    // Clones used from several threads share the pool: sequential rounds
    // after the first one can reuse the idle connections.
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let c = client.clone();
            let url = server.url("/hook");
            thread::spawn(move || {
                (0..3)
                    .map(|_| c.send(&json_post(&url)).status)
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    for h in handles {
        assert!(h.join().unwrap().iter().all(|s| *s == Some(200)));
    }
    assert!(server.accepts() <= 5, "{}", server.accepts());
    assert_eq!(server.requests.lock().unwrap().len(), 14);
}

#[test]
fn no_pooling_when_disabled() {
    let server = serve(4, answer_all(status_response("200 OK", "", "ok")));
    let client = Client::new(&ClientConfig {
        max_idle_per_host: 0,
        ..quick_config()
    })
    .unwrap();
    for _ in 0..2 {
        assert_eq!(client.send(&json_post(&server.url("/"))).status, Some(200));
    }
    assert_eq!(server.accepts(), 2);
}

// ---------- TLS ----------

struct Pki {
    ca_pem: String,
    server_config: Arc<rustls::ServerConfig>,
}

fn make_pki() -> Pki {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
        KeyPair, KeyUsagePurpose,
    };
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "unleash-webhook test CA");
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);

    let leaf_key = KeyPair::generate().unwrap();
    let mut leaf_params =
        CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
    leaf_params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    leaf_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf_params.use_authority_key_identifier_extension = true;
    let leaf = leaf_params.signed_by(&leaf_key, &issuer).unwrap();

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let key_der = rustls_pki_types::PrivateKeyDer::try_from(leaf_key.serialize_der()).unwrap();
    let server_config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![leaf.der().clone()], key_der)
        .unwrap();
    Pki {
        ca_pem: ca_cert.pem(),
        server_config: Arc::new(server_config),
    }
}

fn serve_tls(config: Arc<rustls::ServerConfig>, max_conns: usize) -> Server {
    serve(max_conns, move |s, log| {
        let Ok(conn) = rustls::ServerConnection::new(config.clone()) else {
            return;
        };
        let mut tls = rustls::StreamOwned::new(conn, s);
        while let Some(req) = read_request(&mut tls) {
            log.lock().unwrap().push(req);
            if tls
                .write_all(&status_response("200 OK", "", "secure"))
                .is_err()
            {
                return;
            }
        }
    })
}

#[test]
fn tls_needs_the_extra_ca() {
    let pki = make_pki();
    let server = serve_tls(pki.server_config.clone(), 4);
    let url = format!("https://127.0.0.1:{}/hook", server.addr.port());

    let plain = Client::new(&quick_config()).unwrap();
    let a = plain.send(&json_post(&url));
    assert_eq!(a.status, None, "{a:?}");
    assert_eq!(a.error_class, Some(ErrorClass::Tls), "{a:?}");
    assert!(a.error.as_deref().unwrap().contains("TLS"), "{a:?}");
    assert_eq!(classify(&a), Verdict::Fail);

    let dir = scratch_dir("tls");
    let ca_file = dir.join("ca.pem");
    // Another certificate in the same file must not get in the way.
    let other = make_pki();
    std::fs::write(&ca_file, format!("{}{}", other.ca_pem, pki.ca_pem)).unwrap();
    let trusting = Client::new(&ClientConfig {
        extra_ca_file: Some(ca_file),
        ..quick_config()
    })
    .unwrap();
    let b = trusting.send(&json_post(&url));
    assert_eq!(b.status, Some(200), "{b:?}");
    assert_eq!(b.response_excerpt, "secure");
    assert_eq!(classify(&b), Verdict::Delivered);
    let c = trusting.send(&json_post(&url));
    assert_eq!(c.status, Some(200), "{c:?}");
    // Handshake failure + one pooled TLS connection for the two sends.
    assert_eq!(server.accepts(), 2);
    let got = server.requests.lock().unwrap()[0].clone();
    assert_eq!(got.request_line, "POST /hook HTTP/1.1");
}
