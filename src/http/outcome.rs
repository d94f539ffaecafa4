//! What one attempt came to: the error classes, the [`Attempt`] record, the [`Verdict`]
//! ([`classify`]), the messages for ureq's errors, and `Retry-After` with its HTTP dates.

use std::fmt;
use std::io;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Coarse reason for an attempt that did not end in a 2xx response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// Connect, total or read timeout.
    Timeout,
    /// The connection could not be established (refused, unreachable, proxy).
    Connect,
    /// The host name could not be resolved.
    Dns,
    /// TLS handshake or certificate verification failed.
    Tls,
    /// The connection broke (reset or closed) before a complete response.
    Reset,
    /// The server answered 3xx; redirects are never followed.
    Redirect,
    /// The server answered with a non-2xx, non-3xx status.
    Http,
    /// The request itself is invalid (URL, header name or value).
    InvalidRequest,
    /// The destination policy refused the address the host resolves to.
    Policy,
    /// Anything else, e.g. a malformed HTTP response.
    Other,
}

impl ErrorClass {
    /// Stable lower-case name, suitable for storing in a table.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::Timeout => "timeout",
            ErrorClass::Connect => "connect",
            ErrorClass::Dns => "dns",
            ErrorClass::Tls => "tls",
            ErrorClass::Reset => "reset",
            ErrorClass::Redirect => "redirect",
            ErrorClass::Http => "http",
            ErrorClass::InvalidRequest => "invalid_request",
            ErrorClass::Policy => "policy",
            ErrorClass::Other => "other",
        }
    }
}

impl fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The outcome of one [`Client::send`](super::Client::send).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// The response status, when a complete response head was received.
    pub status: Option<u16>,
    /// Set for every outcome except a 2xx response.
    pub error_class: Option<ErrorClass>,
    /// Short, secret-free description (at most [`MAX_ERROR_LEN`](super::MAX_ERROR_LEN) characters).
    /// Set whenever `error_class` is; may also be set next to a 2xx status
    /// when the response body could not be read, which is only informational:
    /// [`classify`] decides on the status alone.
    pub error: Option<String>,
    /// The first [`EXCERPT_LEN`](super::EXCERPT_LEN) bytes of the response body, lossy UTF-8.
    pub response_excerpt: String,
    /// Wall time of the whole attempt.
    pub duration: Duration,
    /// The parsed `Retry-After` header of the response, if any (not capped).
    pub retry_after: Option<Duration>,
}

/// What to do with the event after an [`Attempt`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// The endpoint accepted it (2xx).
    Delivered,
    /// A transient failure: try again later.
    Retry,
    /// A permanent failure: retrying will not help.
    Fail,
}

/// Decide what an attempt means for the event.
///
/// 2xx is delivered; 408, 429, 5xx, timeouts, connection failures, resets,
/// DNS failures and other (protocol) errors are retried; 3xx, other 4xx, TLS
/// failures, invalid requests and destinations refused by the policy fail for
/// good.
pub fn classify(a: &Attempt) -> Verdict {
    if let Some(status) = a.status {
        // The status is the server's own verdict; it wins over any body error.
        return match status {
            200..=299 => Verdict::Delivered,
            408 | 429 | 500..=599 => Verdict::Retry,
            _ => Verdict::Fail,
        };
    }
    match a.error_class {
        Some(
            ErrorClass::Timeout
            | ErrorClass::Connect
            | ErrorClass::Dns
            | ErrorClass::Reset
            | ErrorClass::Other,
        ) => Verdict::Retry,
        Some(
            ErrorClass::Tls
            | ErrorClass::Redirect
            | ErrorClass::Http
            | ErrorClass::InvalidRequest
            | ErrorClass::Policy,
        ) => Verdict::Fail,
        // Not produced by `send`; treat an unexplained failure as transient.
        None => Verdict::Retry,
    }
}

/// A destination refused by the policy, carried through ureq as
/// `ureq::Error::Other`.
#[derive(Debug)]
pub(super) struct PolicyRefusal(pub(super) String);

impl fmt::Display for PolicyRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PolicyRefusal {}

/// Map a ureq error to a class and a short message naming `target` (host:port).
pub(super) fn describe_error(
    err: &ureq::Error,
    target: &str,
    elapsed: Duration,
) -> (ErrorClass, String) {
    use ureq::Error as E;
    match err {
        E::Timeout(which) => (
            ErrorClass::Timeout,
            format!(
                "timed out ({which} timeout) after {} ms ({target})",
                elapsed.as_millis()
            ),
        ),
        E::HostNotFound => (
            ErrorClass::Dns,
            format!("DNS lookup found no address ({target})"),
        ),
        E::Io(e) => describe_io(e, target, elapsed),
        E::Rustls(e) => (ErrorClass::Tls, format!("TLS error: {e} ({target})")),
        E::Tls(m) => (ErrorClass::Tls, format!("TLS error: {m} ({target})")),
        E::Pem(_) => (ErrorClass::Tls, "TLS error: invalid PEM data".to_owned()),
        E::TlsRequired => (
            ErrorClass::Tls,
            format!("TLS required but not established ({target})"),
        ),
        E::ConnectionFailed => (ErrorClass::Connect, format!("connection failed ({target})")),
        E::ConnectProxyFailed(m) => (ErrorClass::Connect, format!("proxy CONNECT failed: {m}")),
        E::InvalidProxyUrl => (ErrorClass::InvalidRequest, "invalid proxy URL".to_owned()),
        // These variants may carry the URL; describe them without it.
        E::BadUri(_) | E::RequireHttpsOnly(_) => {
            (ErrorClass::InvalidRequest, "invalid URL".to_owned())
        }
        E::Http(e) => (ErrorClass::InvalidRequest, format!("invalid request: {e}")),
        E::BodyExceedsLimit(_) => (
            ErrorClass::InvalidRequest,
            "request body larger than its Content-Length".to_owned(),
        ),
        E::RedirectFailed | E::TooManyRedirects => {
            (ErrorClass::Redirect, "redirect not followed".to_owned())
        }
        E::StatusCode(code) => (ErrorClass::Http, format!("HTTP {code}")),
        // The refusal names the host and the address; add nothing.
        E::Other(e) if e.is::<PolicyRefusal>() => (ErrorClass::Policy, e.to_string()),
        E::Protocol(e) => (
            ErrorClass::Other,
            format!("invalid HTTP response: {e} ({target})"),
        ),
        E::LargeResponseHeader(size, limit) => (
            ErrorClass::Other,
            format!("response header too large ({size} > {limit} bytes) ({target})"),
        ),
        other => (ErrorClass::Other, format!("{other} ({target})")),
    }
}

fn describe_io(e: &io::Error, target: &str, elapsed: Duration) -> (ErrorClass, String) {
    // rustls reports handshake and certificate failures as io errors that
    // wrap a rustls::Error.
    if let Some(tls) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
        return (ErrorClass::Tls, format!("TLS error: {tls} ({target})"));
    }
    match e.kind() {
        io::ErrorKind::ConnectionRefused => (
            ErrorClass::Connect,
            format!("connection refused ({target})"),
        ),
        io::ErrorKind::HostUnreachable
        | io::ErrorKind::NetworkUnreachable
        | io::ErrorKind::NetworkDown
        | io::ErrorKind::AddrNotAvailable
        | io::ErrorKind::PermissionDenied => (
            ErrorClass::Connect,
            format!("connect failed: {e} ({target})"),
        ),
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => (
            ErrorClass::Timeout,
            format!("timed out after {} ms ({target})", elapsed.as_millis()),
        ),
        io::ErrorKind::ConnectionReset => (
            ErrorClass::Reset,
            format!("connection reset by peer ({target})"),
        ),
        io::ErrorKind::ConnectionAborted | io::ErrorKind::BrokenPipe => (
            ErrorClass::Reset,
            format!("connection aborted: {e} ({target})"),
        ),
        io::ErrorKind::UnexpectedEof => (
            ErrorClass::Reset,
            format!("connection closed by peer before the response was complete ({target})"),
        ),
        _ => {
            // std reports getaddrinfo failures with this fixed prefix and no
            // dedicated ErrorKind.
            let text = e.to_string();
            if let Some(detail) = text.strip_prefix("failed to lookup address information") {
                let detail = detail.trim_start_matches(':').trim();
                (
                    ErrorClass::Dns,
                    format!("DNS lookup failed: {detail} ({target})"),
                )
            } else {
                (ErrorClass::Other, format!("I/O error: {text} ({target})"))
            }
        }
    }
}

/// Parse a `Retry-After` value: delta-seconds or an HTTP-date (IMF-fixdate,
/// RFC 850 or asctime form). A date in the past gives zero. The result is not
/// capped; the caller applies its own limits.
pub fn parse_retry_after(v: &str, now: SystemTime) -> Option<Duration> {
    let v = v.trim();
    if v.is_empty() {
        return None;
    }
    if v.bytes().all(|b| b.is_ascii_digit()) {
        // All digits: only overflow can fail; such a value just means "long".
        return Some(Duration::from_secs(v.parse::<u64>().unwrap_or(u64::MAX)));
    }
    let at = parse_http_date(v, now)?;
    let target = if at >= 0 {
        UNIX_EPOCH.checked_add(Duration::from_secs(at.unsigned_abs()))?
    } else {
        return Some(Duration::ZERO);
    };
    Some(target.duration_since(now).unwrap_or(Duration::ZERO))
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];
const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
const LONG_DAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

/// Seconds since the Unix epoch of an HTTP-date (RFC 9110 §5.6.7).
fn parse_http_date(v: &str, now: SystemTime) -> Option<i64> {
    let parts: Vec<&str> = v.split_ascii_whitespace().collect();
    let (year, month, day, time) = match parts.as_slice() {
        // IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT
        [wd, day, mon, year, time, "GMT"] => {
            let wd = wd.strip_suffix(',')?;
            if !DAYS.contains(&wd) || day.len() != 2 || year.len() != 4 {
                return None;
            }
            (digits(year)?, month_of(mon)?, digits(day)?, *time)
        }
        // RFC 850: Sunday, 06-Nov-94 08:49:37 GMT
        [wd, date, time, "GMT"] => {
            let wd = wd.strip_suffix(',')?;
            if !LONG_DAYS.contains(&wd) {
                return None;
            }
            let mut it = date.split('-');
            let (day, mon, yy) = (it.next()?, it.next()?, it.next()?);
            if it.next().is_some() || day.len() != 2 || yy.len() != 2 {
                return None;
            }
            (
                rfc850_year(digits(yy)?, now),
                month_of(mon)?,
                digits(day)?,
                *time,
            )
        }
        // asctime: Sun Nov  6 08:49:37 1994
        [wd, mon, day, time, year] => {
            if !DAYS.contains(wd) || day.is_empty() || day.len() > 2 || year.len() != 4 {
                return None;
            }
            (digits(year)?, month_of(mon)?, digits(day)?, *time)
        }
        _ => return None,
    };

    let mut hms = time.split(':');
    let (h, m, s) = (hms.next()?, hms.next()?, hms.next()?);
    if hms.next().is_some() || h.len() != 2 || m.len() != 2 || s.len() != 2 {
        return None;
    }
    let (h, m, s) = (digits(h)?, digits(m)?, digits(s)?);
    // 60 seconds is a leap second, which HTTP-date allows.
    if h > 23 || m > 59 || s > 60 {
        return None;
    }
    // The calendar (days in a month, leap years) is `time`'s.
    let month = time::Month::try_from(u8::try_from(month).ok()?).ok()?;
    let date =
        time::Date::from_calendar_date(i32::try_from(year).ok()?, month, u8::try_from(day).ok()?)
            .ok()?;
    Some(date.midnight().assume_utc().unix_timestamp() + h * 3600 + m * 60 + s)
}

fn digits(s: &str) -> Option<i64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn month_of(s: &str) -> Option<i64> {
    let i = MONTHS.iter().position(|m| *m == s)?;
    i64::try_from(i).ok().map(|i| i + 1)
}

/// RFC 9110: a two-digit year more than 50 years in the future means the
/// most recent past year with those last two digits.
fn rfc850_year(yy: i64, now: SystemTime) -> i64 {
    let now_secs = now
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    // A clock past year 999,999 (beyond `time`'s range) is no clock; read it as 1970.
    let this_year =
        time::OffsetDateTime::from_unix_timestamp(now_secs).map_or(1970, |t| i64::from(t.year()));
    let mut year = this_year - this_year.rem_euclid(100) + yy;
    if year > this_year + 50 {
        year -= 100;
    }
    year
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(status: Option<u16>, class: Option<ErrorClass>) -> Attempt {
        Attempt {
            status,
            error_class: class,
            error: None,
            response_excerpt: String::new(),
            duration: Duration::ZERO,
            retry_after: None,
        }
    }

    #[test]
    fn classify_statuses() {
        use Verdict::*;
        let cases = [
            (200, Delivered),
            (201, Delivered),
            (204, Delivered),
            (299, Delivered),
            (301, Fail),
            (302, Fail),
            (304, Fail),
            (307, Fail),
            (308, Fail),
            (400, Fail),
            (401, Fail),
            (403, Fail),
            (404, Fail),
            (408, Retry),
            (409, Fail),
            (413, Fail),
            (422, Fail),
            (429, Retry),
            (500, Retry),
            (502, Retry),
            (503, Retry),
            (504, Retry),
            (599, Retry),
            (101, Fail),
        ];
        for (status, want) in cases {
            assert_eq!(classify(&attempt(Some(status), None)), want, "{status}");
        }
        // The status wins over the class recorded next to it.
        assert_eq!(classify(&attempt(Some(503), Some(ErrorClass::Http))), Retry);
        assert_eq!(
            classify(&attempt(Some(301), Some(ErrorClass::Redirect))),
            Fail
        );
    }

    #[test]
    fn classify_errors() {
        use ErrorClass::*;
        for (class, want) in [
            (Timeout, Verdict::Retry),
            (Connect, Verdict::Retry),
            (Dns, Verdict::Retry),
            (Reset, Verdict::Retry),
            (Other, Verdict::Retry),
            (Tls, Verdict::Fail),
            (Redirect, Verdict::Fail),
            (Http, Verdict::Fail),
            (InvalidRequest, Verdict::Fail),
            (Policy, Verdict::Fail),
        ] {
            assert_eq!(classify(&attempt(None, Some(class))), want, "{class}");
        }
    }

    #[test]
    fn error_class_names() {
        use ErrorClass::*;
        let names: Vec<&str> = [
            Timeout,
            Connect,
            Dns,
            Tls,
            Reset,
            Redirect,
            Http,
            InvalidRequest,
            Policy,
            Other,
        ]
        .iter()
        .map(|c| c.as_str())
        .collect();
        assert_eq!(
            names,
            [
                "timeout",
                "connect",
                "dns",
                "tls",
                "reset",
                "redirect",
                "http",
                "invalid_request",
                "policy",
                "other"
            ]
        );
    }

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    // 1994-11-06 08:49:37 UTC
    const NOV_6_1994: u64 = 784_111_777;

    #[test]
    fn retry_after_delta_seconds() {
        let now = SystemTime::now();
        assert_eq!(parse_retry_after("2", now), Some(Duration::from_secs(2)));
        assert_eq!(
            parse_retry_after(" 120 ", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(parse_retry_after("0", now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("99999999999999999999999", now),
            Some(Duration::from_secs(u64::MAX))
        );
        for bad in ["", " ", "-1", "1.5", "+3", "3s", "abc", "1 2"] {
            assert_eq!(parse_retry_after(bad, now), None, "{bad:?}");
        }
    }

    #[test]
    fn retry_after_http_dates() {
        let now = at(NOV_6_1994 - 10);
        let ten = Some(Duration::from_secs(10));
        assert_eq!(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now), ten);
        assert_eq!(
            parse_retry_after("Sunday, 06-Nov-94 08:49:37 GMT", now),
            ten
        );
        assert_eq!(parse_retry_after("Sun Nov  6 08:49:37 1994", now), ten);
        // In the past: retry now.
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", at(NOV_6_1994 + 100)),
            Some(Duration::ZERO)
        );
        assert_eq!(
            parse_retry_after("Thu, 01 Jan 1970 00:00:00 GMT", at(0)),
            Some(Duration::ZERO)
        );
        // Leap years and month ends.
        let feb29 = 951_782_400; // 2000-02-29 00:00:00 UTC
        assert_eq!(
            parse_retry_after("Tue, 29 Feb 2000 00:00:00 GMT", at(feb29 - 1)),
            Some(Duration::from_secs(1))
        );
        assert_eq!(
            parse_retry_after("Fri, 31 Dec 2038 23:59:59 GMT", at(0)),
            Some(Duration::from_secs(2_177_452_799))
        );
        for bad in [
            "Sun, 06 Nov 1994 08:49:37 UTC",
            "Sun, 6 Nov 1994 08:49:37 GMT",
            "Sun, 06 Foo 1994 08:49:37 GMT",
            "Sun, 31 Nov 1994 08:49:37 GMT",
            "Mon, 29 Feb 1900 00:00:00 GMT",
            "Sun, 06 Nov 1994 24:00:00 GMT",
            "Sun, 06 Nov 1994 08:49 GMT",
            "Xyz, 06 Nov 1994 08:49:37 GMT",
            "Sunday, 06-Nov-1994 08:49:37 GMT",
            "Sun Nov 6 08:49:37",
            "tomorrow",
        ] {
            assert_eq!(parse_retry_after(bad, now), None, "{bad:?}");
        }
    }

    #[test]
    fn rfc850_two_digit_years() {
        // Now = 2026-06-01. Up to 50 years ahead (2076) stays in this
        // century; "77" would be 2077, so it means 1977.
        let now = at(1_780_272_000);
        assert_eq!(rfc850_year(94, now), 1994);
        assert_eq!(rfc850_year(30, now), 2030);
        assert_eq!(rfc850_year(76, now), 2076);
        assert_eq!(rfc850_year(77, now), 1977);
        // The first second of 2000 and the last of 1999.
        assert_eq!(rfc850_year(50, at(946_684_800)), 2050);
        assert_eq!(rfc850_year(51, at(946_684_800)), 1951);
        assert_eq!(rfc850_year(0, at(946_684_799)), 1900);
        assert_eq!(rfc850_year(49, at(946_684_799)), 1949);
        assert_eq!(rfc850_year(50, at(946_684_799)), 1950);
    }

    #[test]
    fn error_mapping() {
        let t = "h:1";
        let d = Duration::from_millis(5);
        let dns =
            io::Error::other("failed to lookup address information: Name or service not known");
        let (class, msg) = describe_error(&ureq::Error::Io(dns), t, d);
        assert_eq!(class, ErrorClass::Dns);
        assert!(msg.contains("Name or service not known"), "{msg}");
        assert_eq!(
            describe_error(&ureq::Error::HostNotFound, t, d).0,
            ErrorClass::Dns
        );
        let tls = io::Error::new(
            io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer),
        );
        assert_eq!(
            describe_error(&ureq::Error::Io(tls), t, d).0,
            ErrorClass::Tls
        );
        for (kind, class) in [
            (io::ErrorKind::ConnectionRefused, ErrorClass::Connect),
            (io::ErrorKind::NetworkUnreachable, ErrorClass::Connect),
            (io::ErrorKind::ConnectionReset, ErrorClass::Reset),
            (io::ErrorKind::UnexpectedEof, ErrorClass::Reset),
            (io::ErrorKind::BrokenPipe, ErrorClass::Reset),
            (io::ErrorKind::TimedOut, ErrorClass::Timeout),
            (io::ErrorKind::Other, ErrorClass::Other),
        ] {
            let e = ureq::Error::Io(io::Error::from(kind));
            assert_eq!(describe_error(&e, t, d).0, class, "{kind:?}");
        }
        assert_eq!(
            describe_error(&ureq::Error::Timeout(ureq::Timeout::Connect), t, d).0,
            ErrorClass::Timeout
        );
        let bad = ureq::Error::BadUri("http://u:secret@h/".into());
        let (class, msg) = describe_error(&bad, t, d);
        assert_eq!(class, ErrorClass::InvalidRequest);
        assert!(!msg.contains("secret"));
    }

    #[test]
    fn policy_error_mapping() {
        let refusal = ureq::Error::Other(Box::new(PolicyRefusal("10.0.0.1 is x".into())));
        let (class, msg) = describe_error(&refusal, "h:1", Duration::ZERO);
        assert_eq!((class, msg.as_str()), (ErrorClass::Policy, "10.0.0.1 is x"));
        let other = ureq::Error::Other(Box::new(io::Error::other("boom")));
        assert_eq!(
            describe_error(&other, "h:1", Duration::ZERO).0,
            ErrorClass::Other
        );
    }
}
