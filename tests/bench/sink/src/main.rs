//! A fast webhook endpoint for the benchmarks: HTTP/1.1 keep-alive, one thread per connection,
//! answers every POST with 200 at once and notes (event id, receipt time) for each. Std only.
//!
//! `uw-bench-sink PORT` listens on 127.0.0.1:PORT. `GET /count` returns how many POSTs arrived;
//! `GET /dump` returns one line per POST: `<event id> <receipt unix time in ns>`;
//! `GET /reset` forgets them.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

type Log = Arc<Mutex<Vec<(i64, u128)>>>;

fn main() {
    let port = std::env::args().nth(1).unwrap_or_else(|| "0".into());
    let listener = TcpListener::bind(format!("127.0.0.1:{port}")).expect("bind");
    println!("{}", listener.local_addr().expect("addr").port());
    let log: Log = Arc::new(Mutex::new(Vec::with_capacity(1 << 20)));
    for stream in listener.incoming().flatten() {
        let log = Arc::clone(&log);
        std::thread::spawn(move || {
            let _ = serve(stream, &log);
        });
    }
}

fn serve(stream: TcpStream, log: &Log) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let request_line = line.trim_end().to_string();
        let mut length = 0usize;
        loop {
            line.clear();
            if reader.read_line(&mut line)? == 0 {
                return Ok(());
            }
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0u8; length];
        reader.read_exact(&mut body)?;
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        // POST /hang...: never answer in time (the isolation benchmark's broken endpoint).
        if request_line.starts_with("POST /hang") {
            std::thread::sleep(std::time::Duration::from_secs(30));
            return Ok(());
        }
        let reply = if request_line.starts_with("POST") {
            log.lock().expect("log").push((event_id(&body), now));
            String::new()
        } else if request_line.starts_with("GET /count") {
            log.lock().expect("log").len().to_string()
        } else if request_line.starts_with("GET /dump") {
            let l = log.lock().expect("log");
            l.iter().map(|(id, t)| format!("{id} {t}\n")).collect()
        } else if request_line.starts_with("GET /reset") {
            log.lock().expect("log").clear();
            String::new()
        } else {
            String::new()
        };
        write!(writer, "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{reply}", reply.len())?;
    }
}

/// The event id from Unleash's default body, which starts `{"id":N,`.
fn event_id(body: &[u8]) -> i64 {
    let s = std::str::from_utf8(body).unwrap_or("");
    s.strip_prefix("{\"id\":")
        .and_then(|r| r.split(',').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(-1)
}
