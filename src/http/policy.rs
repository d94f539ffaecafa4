//! Blocking HTTP client used to deliver Unleash-style webhooks.
//!
//! The extension's background worker takes queued events and POSTs them to the
//! configured endpoints. This module is the only place that talks to the
//! network, and it is deliberately free of PostgreSQL types so that it can be
//! built and tested as plain Rust.
//!
//! What it does, and why:
//!
//! * One [`Client`] wraps a [`ureq::Agent`]: cheap to clone, `Send + Sync`, and
//!   its keep-alive pool is shared by every thread that holds a clone, so
//!   repeated deliveries to the same host reuse one TCP/TLS connection.
//! * Every call to [`Client::send`] returns an [`Attempt`], never a Rust error:
//!   the caller records the attempt (status, error class, short message, body
//!   excerpt, duration) and asks [`classify`] whether to mark the event
//!   delivered, retry it later, or give up.
//! * Redirects are never followed (a webhook endpoint that redirects is
//!   misconfigured, and following would re-send the payload and its
//!   credentials elsewhere); 4xx/5xx come back as statuses, not errors.
//! * The response body is only sampled: at most [`EXCERPT_LEN`] + 1 bytes are
//!   read, so a huge or endless body cannot stall the worker or eat memory.
//! * TLS is rustls (ring), never OpenSSL. Trust = the system roots (loaded with
//!   `rustls-native-certs`, i.e. `/etc/ssl/certs` or `SSL_CERT_FILE` /
//!   `SSL_CERT_DIR`) plus an optional extra PEM CA file.
//! * Error messages never contain header values or the URL's userinfo or
//!   query string, because they end up in tables and server logs.
//!
//! # Destination policy (SSRF protection)
//!
//! Like Unleash 8.0.2+ (`validate-url.ts`), a webhook may not reach an
//! address that is not public unless the operator allows it
//! ([`DestinationPolicy`], set as [`ClientConfig::destination_policy`];
//! the default refuses them all). Refused, after DNS resolution: private
//! (10/8, 172.16/12, 192.168/16, fc00::/7), loopback (127/8, ::1),
//! link-local (169.254/16 including the 169.254.169.254 cloud metadata
//! address, fe80::/10), unspecified and "this network" (0/8, ::), CGNAT
//! (100.64/10), 192.0.0/24, the documentation ranges (192.0.2/24,
//! 198.51.100/24, 203.0.113/24, 2001:db8::/32), benchmarking (198.18/15),
//! multicast (224/4, ff00::/8), reserved and broadcast (240/4), 6to4
//! (2002::/16) and 64:ff95::/96 (all as in Unleash). IPv4-mapped IPv6
//! addresses (`::ffff:a.b.c.d`) and NAT64 addresses (`64:ff9b::/96`) are
//! judged by the IPv4 address they carry. Beyond Unleash, the deprecated
//! IPv4-compatible (`::/96`) and site-local (`fec0::/10`) ranges and local-use
//! NAT64 (`64:ff9b:1::/48`) are refused too. A host name resolving to several
//! addresses is refused if any one of them is.
//!
//! DNS rebinding cannot bypass the check: the agent is built with a custom
//! [`ureq::unversioned::resolver::Resolver`] that resolves the host once,
//! checks every address and fails the request with
//! [`ErrorClass::Policy`] if one is refused; the connector then connects
//! only to the addresses this resolver returned, i.e. the checked ones.
//!
//! With a proxy (ureq 3 tunnels both `http` and `https` targets with
//! `CONNECT`) the proxy resolves the target itself. The proxy's own address
//! is trusted (it is the operator's setting); the target is checked by our
//! own lookup just before sending. The proxy's later lookup is not under our
//! control, so in that setup a DNS rebinding between the two lookups is not
//! prevented. A target allowed by host name (or `*`) is not looked up, so
//! hosts that only the proxy can resolve work when they are allowlisted.

use std::collections::HashMap;
use std::fmt;
use std::io::{self, Read};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use ureq::config::AutoHeaderValue;
use ureq::http::Uri;
use ureq::tls::{Certificate, RootCerts, TlsConfig, TlsProvider};
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{DefaultConnector, NextTimeout};

/// How many bytes of the response body are kept in [`Attempt::response_excerpt`].
pub const EXCERPT_LEN: usize = 1024;

/// Upper bound (in characters) for [`Attempt::error`] and [`ConfigError`] texts.
pub const MAX_ERROR_LEN: usize = 300;

/// How long an idle pooled connection may be reused. Kept below the 5 s
/// keep-alive timeout of common servers (Node.js, nginx upstreams) so that we
/// rarely pick a connection the server is just closing.
const MAX_IDLE_AGE: Duration = Duration::from_secs(4);

/// Headers that describe the connection or the message framing. The client
/// computes them itself; letting a caller set them would corrupt the exchange.
const MANAGED_HEADERS: [&str; 4] = ["host", "content-length", "transfer-encoding", "connection"];

/// Settings for building a [`Client`].
#[derive(Clone, PartialEq, Eq)]
pub struct ClientConfig {
    /// Limit for resolving the host name and for establishing the connection
    /// (TCP connect, proxy CONNECT and TLS handshake), each.
    pub connect_timeout: Duration,
    /// Limit for the whole exchange, from name lookup to the body excerpt.
    pub total_timeout: Duration,
    /// PEM file with one or more CA certificates trusted in addition to the
    /// system roots.
    pub extra_ca_file: Option<PathBuf>,
    /// Proxy URL (`http://[user:pass@]host:port` or `https://...`); requests
    /// to `http://` and `https://` targets alike are tunnelled through it
    /// with CONNECT. `None` means no proxy at all: the `HTTP(S)_PROXY`
    /// environment variables are deliberately ignored. The proxy's own
    /// address is not subject to `destination_policy`; the target is checked
    /// by a local lookup before each send (see the module docs).
    pub proxy: Option<String>,
    /// Idle keep-alive connections kept per host:port (0 disables reuse).
    pub max_idle_per_host: usize,
    /// Which non-public destinations may be reached (see the module docs).
    /// The default refuses every private-like address.
    pub destination_policy: DestinationPolicy,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            connect_timeout: Duration::from_secs(5),
            total_timeout: Duration::from_secs(30),
            extra_ca_file: None,
            proxy: None,
            max_idle_per_host: 4,
            destination_policy: DestinationPolicy::default(),
        }
    }
}

// Hand-written so that proxy credentials never reach a log line.
impl fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientConfig")
            .field("connect_timeout", &self.connect_timeout)
            .field("total_timeout", &self.total_timeout)
            .field("extra_ca_file", &self.extra_ca_file)
            .field("proxy", &self.proxy.as_ref().map(|_| "<set>"))
            .field("max_idle_per_host", &self.max_idle_per_host)
            .field("destination_policy", &self.destination_policy)
            .finish()
    }
}

/// Why a [`ClientConfig`] could not be turned into a [`Client`].
///
/// The message is meant for the user (e.g. a `WARNING` in the server log) and
/// never contains proxy credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    message: String,
}

impl ConfigError {
    fn new(message: impl Into<String>) -> Self {
        ConfigError {
            message: clip(message.into()),
        }
    }

    /// The human-readable reason.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConfigError {}

/// A webhook HTTP client: a configured [`ureq::Agent`] with its connection pool.
///
/// Clones share the pool, so a single `Client` (or clones of it) can be used
/// from several threads at once.
#[derive(Clone)]
pub struct Client {
    agent: ureq::Agent,
    /// The same policy the agent's resolver applies.
    policy: Arc<DestinationPolicy>,
    /// Whether a proxy is configured: the target is then checked by our own
    /// lookup before sending, because the proxy resolves it.
    proxied: bool,
    /// Limit for that lookup.
    resolve_timeout: Duration,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client").finish_non_exhaustive()
    }
}

/// One webhook delivery: always sent as `POST` over HTTP/1.1.
#[derive(Clone, PartialEq, Eq)]
pub struct Request {
    /// Absolute `http://` or `https://` URL. Userinfo in it becomes a Basic
    /// `Authorization` header unless `headers` already has one.
    pub url: String,
    /// Header fields, written to the wire in this order with this casing,
    /// after the `Host` and `Content-Length` lines the client adds. Repeated
    /// names are sent next to each other, at the place of their first use.
    pub headers: Vec<(String, String)>,
    /// Body bytes, sent verbatim with a `Content-Length`.
    pub body: Vec<u8>,
}

// Hand-written so that header values (tokens, signatures) and URL credentials
// never reach a log line.
impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.headers.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("Request")
            .field("url", &redacted_url(&self.url))
            .field("header_names", &names)
            .field("body_len", &self.body.len())
            .finish()
    }
}

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

/// The outcome of one [`Client::send`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// The response status, when a complete response head was received.
    pub status: Option<u16>,
    /// Set for every outcome except a 2xx response.
    pub error_class: Option<ErrorClass>,
    /// Short, secret-free description (at most [`MAX_ERROR_LEN`] characters).
    /// Set whenever `error_class` is; may also be set next to a 2xx status
    /// when the response body could not be read, which is only informational:
    /// [`classify`] decides on the status alone.
    pub error: Option<String>,
    /// The first [`EXCERPT_LEN`] bytes of the response body, lossy UTF-8.
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

impl Client {
    /// Build a client. Reads the system trust store and `extra_ca_file` now,
    /// so a bad file is reported here and the caller can keep its old client.
    pub fn new(cfg: &ClientConfig) -> Result<Client, ConfigError> {
        if cfg.total_timeout.is_zero() {
            return Err(ConfigError::new("total_timeout must be greater than zero"));
        }
        if cfg.connect_timeout.is_zero() {
            return Err(ConfigError::new(
                "connect_timeout must be greater than zero",
            ));
        }

        let proxy = match cfg.proxy.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(p) => Some(parse_proxy(p)?),
        };

        let proxied = proxy.is_some();

        let tls = TlsConfig::builder()
            .provider(TlsProvider::Rustls)
            .root_certs(root_certs(cfg.extra_ca_file.as_deref())?)
            .build();

        let config = ureq::Agent::config_builder()
            // Non-2xx must come back as a response with its status and body.
            .http_status_as_error(false)
            // Never follow redirects; with 0 ureq returns the 3xx as is.
            .max_redirects(0)
            .max_redirects_will_error(false)
            // Unleash sends no User-Agent or Accept; send only what we are given.
            .user_agent(AutoHeaderValue::None)
            .accept(AutoHeaderValue::None)
            .accept_encoding(AutoHeaderValue::None)
            // An explicit value (also `None`) stops ureq reading *_PROXY from
            // the server's environment.
            .proxy(proxy)
            .tls_config(tls)
            .timeout_global(Some(cfg.total_timeout))
            .timeout_resolve(Some(cfg.connect_timeout))
            .timeout_connect(Some(cfg.connect_timeout))
            .max_idle_connections_per_host(cfg.max_idle_per_host)
            // A webhook worker talks to a handful of endpoints; bound the
            // whole pool in proportion to the per-host limit.
            .max_idle_connections(cfg.max_idle_per_host.saturating_mul(16))
            .max_idle_age(MAX_IDLE_AGE)
            .build();

        let policy = Arc::new(cfg.destination_policy.clone());
        let resolver = PolicyResolver::new(policy.clone());
        Ok(Client {
            agent: ureq::Agent::with_parts(config, DefaultConnector::default(), resolver),
            policy,
            proxied,
            resolve_timeout: cfg.connect_timeout.min(cfg.total_timeout),
        })
    }

    /// POST `req` and report what happened. Never panics and never returns a
    /// Rust error: every failure is described in the returned [`Attempt`].
    pub fn send(&self, req: &Request) -> Attempt {
        let start = Instant::now();
        let mut attempt = Attempt {
            status: None,
            error_class: None,
            error: None,
            response_excerpt: String::new(),
            duration: Duration::ZERO,
            retry_after: None,
        };

        match self.exchange(req, start, &mut attempt) {
            Ok(()) => {}
            Err((class, message)) => {
                attempt.error_class = Some(class);
                attempt.error = Some(message);
            }
        }
        // Defence in depth: whatever the message was built from, strip
        // anything that could be a credential before it leaves this module.
        attempt.error = attempt.error.take().map(|m| scrub(m, req));
        attempt.duration = start.elapsed();
        attempt
    }

    /// The actual exchange; fills `attempt` on a response, or returns the
    /// class and message of the failure.
    fn exchange(
        &self,
        req: &Request,
        start: Instant,
        attempt: &mut Attempt,
    ) -> Result<(), (ErrorClass, String)> {
        let uri = parse_url(&req.url).map_err(|m| (ErrorClass::InvalidRequest, m))?;
        check_headers(&req.headers).map_err(|m| (ErrorClass::InvalidRequest, m))?;
        let target = target_of(&uri);

        if self.proxied {
            // The proxy resolves the target; check it with our own lookup.
            // (Without a proxy the agent's resolver does this.) Since the
            // proxy was set, its own address is not looked up here.
            let timeout = NextTimeout {
                after: self.resolve_timeout.into(),
                reason: ureq::Timeout::Resolve,
                ..NextTimeout::default()
            };
            precheck(&self.policy, &uri, self.agent.config(), timeout)
                .map_err(|e| describe_error(&e, &target, start.elapsed()))?;
        }

        let mut builder = self.agent.post(uri);
        for (name, value) in &req.headers {
            // header_raw keeps the caller's casing; names and values were
            // validated above.
            builder = builder.header_raw(name, value.as_bytes());
        }

        let mut response = builder
            .send(req.body.as_slice())
            .map_err(|e| describe_error(&e, &target, start.elapsed()))?;

        let status = response.status();
        let code = status.as_u16();
        attempt.status = Some(code);
        attempt.retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, SystemTime::now()));

        let reason = status.canonical_reason().unwrap_or("");
        if status.is_redirection() {
            attempt.error_class = Some(ErrorClass::Redirect);
            attempt.error = Some(format!("redirect not followed (HTTP {code} {reason})"));
        } else if !status.is_success() {
            attempt.error_class = Some(ErrorClass::Http);
            attempt.error = Some(format!("HTTP {code} {reason}").trim_end().to_owned());
        }

        let (excerpt, body_error) = read_excerpt(response.body_mut());
        attempt.response_excerpt = excerpt;
        if let Some(e) = body_error {
            let (_, detail) = describe_error(&ureq::Error::from(e), &target, start.elapsed());
            let note = format!("response body not fully read: {detail}");
            attempt.error = Some(match attempt.error.take() {
                Some(prev) => format!("{prev}; {note}"),
                None => note,
            });
        }
        // Dropping `response` here: if the body was read to its end the
        // connection goes back to the pool, otherwise ureq closes it.
        Ok(())
    }
}

/// Setting named in refusal messages, where the operator sets the allowlist.
pub const ALLOWLIST_SETTING: &str = "unleash_webhook.destination_allowlist";

/// How long [`check_destination`] waits for the DNS lookup.
const CHECK_RESOLVE_TIMEOUT: Duration = Duration::from_secs(10);

/// Which non-public destinations a webhook may reach (see the module docs
/// for the refused ranges). Public addresses are always allowed.
///
/// The default (also `parse("")`) allows no private-like address at all.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct DestinationPolicy {
    /// `*`: every address is allowed.
    allow_all: bool,
    /// Host names allowed whatever they resolve to: lower case, without a
    /// trailing dot.
    hosts: Vec<String>,
    /// Allowed networks (single addresses are /32 or /128).
    nets: Vec<Cidr>,
}

impl DestinationPolicy {
    /// Parse an allowlist.
    ///
    /// `spec`: comma-separated entries: `*` (allow everything), a host name
    /// (exact, case-insensitive; allows that host whatever it resolves to),
    /// an IP address, or a CIDR (v4 or v6). Blank entries are ignored; an
    /// empty spec refuses all private-like addresses. Host bits of a CIDR
    /// are ignored (`10.1.2.3/8` means `10.0.0.0/8`). An IPv4 entry and its
    /// IPv4-mapped IPv6 form (`::ffff:10.0.0.1`) are the same: each allows
    /// both forms of the address.
    ///
    /// Returns `Err(message)` naming the first bad entry.
    pub fn parse(spec: &str) -> Result<DestinationPolicy, String> {
        let mut policy = DestinationPolicy::default();
        for entry in spec.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let bad = |why: &str| {
                let shown: String = entry.chars().take(64).collect();
                format!("invalid entry {shown:?} in the destination allowlist: {why}")
            };
            if entry == "*" {
                policy.allow_all = true;
            } else if let Some((addr, prefix)) = entry.split_once('/') {
                policy
                    .nets
                    .push(parse_cidr(addr, prefix).map_err(bad)?.unmapped());
            } else if let Some(ip) = parse_ip(entry) {
                policy.nets.push(Cidr::host(ip).unmapped());
            } else {
                policy.hosts.push(parse_host_entry(entry).map_err(bad)?);
            }
        }
        Ok(policy)
    }

    /// A policy that allows every destination (same as `parse("*")`).
    #[cfg(test)]
    pub fn allow_all() -> DestinationPolicy {
        DestinationPolicy {
            allow_all: true,
            ..DestinationPolicy::default()
        }
    }

    /// Checks an already-resolved address for `host` (the URL's host: a name
    /// or an IP literal, with or without IPv6 brackets). The resolver uses the
    /// parts; tests ask the whole question.
    #[cfg(test)]
    pub fn allows(&self, host: &str, addr: IpAddr) -> bool {
        self.allows_host(host) || self.refusal(addr).is_none()
    }

    /// Whether `host` is allowed whatever it resolves to.
    fn allows_host(&self, host: &str) -> bool {
        if self.allow_all {
            return true;
        }
        let host = normalize_host(host);
        !host.is_empty() && self.hosts.contains(&host)
    }

    /// Why `addr` is refused (ignoring host names), if it is.
    fn refusal(&self, addr: IpAddr) -> Option<Refusal> {
        if self.allow_all {
            return None;
        }
        let mapped = match addr {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4),
            IpAddr::V4(_) => None,
        };
        let listed = self
            .nets
            .iter()
            .any(|n| n.contains(addr) || mapped.is_some_and(|m| n.contains(m)));
        if listed { None } else { refused_range(addr) }
    }

    /// Check every resolved address of `host`; the error names the host, the
    /// first refused address and why.
    fn check(
        &self,
        host: &str,
        addrs: impl IntoIterator<Item = IpAddr>,
    ) -> Result<(), PolicyRefusal> {
        if self.allows_host(host) {
            return Ok(());
        }
        for addr in addrs {
            if let Some(why) = self.refusal(addr) {
                let host = normalize_host(host);
                let message = if parse_ip(&host) == Some(addr) {
                    format!("{addr} is {why}; allow it with {ALLOWLIST_SETTING}")
                } else {
                    format!(
                        "{host} resolves to {addr}, which is {why}; allow the host or the address with {ALLOWLIST_SETTING}"
                    )
                };
                return Err(PolicyRefusal(message));
            }
        }
        Ok(())
    }
}

/// Resolves `url`'s host (port from the URL or the scheme default) and
/// checks every address against `policy`.
///
/// A host allowed by name (or `*`) is not looked up. The lookup is bounded
/// by a fixed 10 s. `Err` names the host and why it is refused or could not
/// be resolved (e.g. "127.0.0.1 is a loopback address; allow it with
/// unleash_webhook.destination_allowlist"); it never repeats the URL's
/// userinfo or query.
#[cfg(test)]
pub fn check_destination(url: &str, policy: &DestinationPolicy) -> Result<(), String> {
    check_destination_classified(url, policy).map_err(|(_, message)| message)
}

/// The policy's verdict on `url` at subscription time: `Some(why)` only when the policy
/// refuses it (or the URL is malformed). A host that does not resolve right now is not a
/// refusal: DNS can fail for a moment, and the worker checks every address again when it
/// connects.
pub fn destination_refusal(url: &str, policy: &DestinationPolicy) -> Option<String> {
    match check_destination_classified(url, policy) {
        Err((ErrorClass::Policy | ErrorClass::InvalidRequest, message)) => Some(message),
        _ => None,
    }
}

fn check_destination_classified(
    url: &str,
    policy: &DestinationPolicy,
) -> Result<(), (ErrorClass, String)> {
    let uri = parse_url(url).map_err(|e| (ErrorClass::InvalidRequest, e))?;
    let target = target_of(&uri);
    let start = Instant::now();
    let timeout = NextTimeout {
        after: CHECK_RESOLVE_TIMEOUT.into(),
        reason: ureq::Timeout::Resolve,
        ..NextTimeout::default()
    };
    precheck(policy, &uri, &ureq::config::Config::default(), timeout)
        .map_err(|e| describe_error(&e, &target, start.elapsed()))
}

/// Check a target that something else will resolve again (a proxy): look it
/// up unless its name is allowed anyway.
fn precheck(
    policy: &DestinationPolicy,
    uri: &Uri,
    config: &ureq::config::Config,
    timeout: NextTimeout,
) -> Result<(), ureq::Error> {
    if policy.allows_host(uri.host().unwrap_or("")) {
        return Ok(());
    }
    resolve_checked(policy, uri, config, timeout).map(|_| ())
}

/// Resolve `uri` once (ureq's own lookup, with its timeout handling) and
/// return the addresses only if the policy allows every one of them.
fn resolve_checked(
    policy: &DestinationPolicy,
    uri: &Uri,
    config: &ureq::config::Config,
    timeout: NextTimeout,
) -> Result<ResolvedSocketAddrs, ureq::Error> {
    let addrs = DefaultResolver::default().resolve(uri, config, timeout)?;
    policy
        .check(uri.host().unwrap_or(""), addrs.iter().map(SocketAddr::ip))
        .map_err(|r| ureq::Error::Other(Box::new(r)))?;
    Ok(addrs)
}

/// The agent's resolver: the addresses it returns are the only ones the
/// connector tries, so checking them here is what defeats DNS rebinding.
///
/// ureq resolves before it looks for a kept-alive connection, on every
/// request, and with a resolve timeout set it does each lookup on a new
/// thread: at thousands of requests a second that thread spawn was the
/// largest single cost in the worker's profile. So checked answers are kept
/// for [`RESOLVE_CACHE_TTL`]: still only checked addresses are returned, and
/// a DNS change is seen within that time (a kept-alive connection is reused
/// whatever DNS says, as before).
#[derive(Debug)]
struct PolicyResolver {
    policy: Arc<DestinationPolicy>,
    cache: Mutex<HashMap<(String, u16), (Instant, ResolvedSocketAddrs)>>,
}

/// How long a checked DNS answer is reused.
const RESOLVE_CACHE_TTL: Duration = Duration::from_secs(5);
/// Endpoints are few; the cache is emptied rather than grown past this.
const RESOLVE_CACHE_MAX: usize = 1024;

impl PolicyResolver {
    fn new(policy: Arc<DestinationPolicy>) -> PolicyResolver {
        PolicyResolver {
            policy,
            cache: Mutex::new(HashMap::new()),
        }
    }
}

impl Resolver for PolicyResolver {
    fn resolve(
        &self,
        uri: &Uri,
        config: &ureq::config::Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        // ureq asks for the proxy's own address through this resolver too.
        // It is the operator's setting and trusted; the target behind it was
        // checked in `Client::exchange`.
        if config.proxy().is_some_and(|p| p.uri() == uri) {
            return DefaultResolver::default().resolve(uri, config, timeout);
        }
        let key = (
            uri.host().unwrap_or("").to_ascii_lowercase(),
            uri.port_u16()
                .unwrap_or(if uri.scheme_str() == Some("https") {
                    443
                } else {
                    80
                }),
        );
        let now = Instant::now();
        if let Ok(cache) = self.cache.lock()
            && let Some((at, addrs)) = cache.get(&key)
            && now.duration_since(*at) < RESOLVE_CACHE_TTL
        {
            return Ok(addrs.clone());
        }
        // Failures and refusals are not kept: the next request looks again.
        let addrs = resolve_checked(&self.policy, uri, config, timeout)?;
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() >= RESOLVE_CACHE_MAX {
                cache.clear();
            }
            cache.insert(key, (now, addrs.clone()));
        }
        Ok(addrs)
    }
}

/// A destination refused by the policy, carried through ureq as
/// `ureq::Error::Other`.
#[derive(Debug)]
struct PolicyRefusal(String);

impl fmt::Display for PolicyRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PolicyRefusal {}

/// An IP network: `addr` has no bits set past `prefix`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    fn new(addr: IpAddr, prefix: u8) -> Cidr {
        Cidr {
            addr: mask(addr, prefix),
            prefix,
        }
    }

    fn host(addr: IpAddr) -> Cidr {
        let prefix = if addr.is_ipv4() { 32 } else { 128 };
        Cidr { addr, prefix }
    }

    /// An IPv4-mapped IPv6 network (`::ffff:a.b.c.d/96+n`) as the IPv4
    /// network it stands for; any other network unchanged.
    fn unmapped(self) -> Cidr {
        match self.addr {
            IpAddr::V6(v6) if self.prefix >= 96 => match v6.to_ipv4_mapped() {
                Some(v4) => Cidr::new(IpAddr::V4(v4), self.prefix - 96),
                None => self,
            },
            _ => self,
        }
    }

    fn contains(&self, ip: IpAddr) -> bool {
        ip.is_ipv4() == self.addr.is_ipv4() && mask(ip, self.prefix) == self.addr
    }
}

/// `ip` with every bit past `prefix` cleared.
fn mask(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let keep = u32::MAX
                .checked_shl(32 - u32::from(prefix.min(32)))
                .unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(u32::from(v4) & keep))
        }
        IpAddr::V6(v6) => {
            let keep = u128::MAX
                .checked_shl(128 - u32::from(prefix.min(128)))
                .unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(u128::from(v6) & keep))
        }
    }
}

/// An IP literal, IPv6 with or without brackets.
fn parse_ip(s: &str) -> Option<IpAddr> {
    let s = s
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .unwrap_or(s);
    s.parse().ok()
}

fn parse_cidr(addr: &str, prefix: &str) -> Result<Cidr, &'static str> {
    let ip = parse_ip(addr.trim()).ok_or("the part before '/' is not an IP address")?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let prefix = prefix.trim();
    if prefix.is_empty() || !prefix.bytes().all(|b| b.is_ascii_digit()) {
        return Err("the prefix length after '/' is not a number");
    }
    match prefix.parse::<u8>() {
        Ok(p) if p <= max => Ok(Cidr::new(ip, p)),
        _ if max == 32 => Err("the prefix length of an IPv4 CIDR must be 0 to 32"),
        _ => Err("the prefix length of an IPv6 CIDR must be 0 to 128"),
    }
}

/// Validate a host name entry and return it normalized.
fn parse_host_entry(entry: &str) -> Result<String, &'static str> {
    if entry.contains('*') {
        return Err("wildcards are not supported (use \"*\" alone, or list each host name)");
    }
    if entry.contains(':') || entry.contains('[') || entry.contains(']') {
        return Err("not a valid IP address");
    }
    let host = normalize_host(entry);
    if !host.is_empty() && host.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Err("not a valid IPv4 address");
    }
    let labels_ok = host.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    });
    if host.is_empty() || host.len() > 253 || !labels_ok {
        return Err("not a valid host name, IP address or CIDR");
    }
    Ok(host)
}

/// Lower case, without IPv6 brackets or a trailing dot.
fn normalize_host(host: &str) -> String {
    let host = host.trim();
    let host = host
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .unwrap_or(host);
    host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase()
}

/// Why an address is refused unless allowed: the range it falls in and,
/// for IPv4 embedded in IPv6, how.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Refusal {
    range: Range,
    embedded: Option<(&'static str, Ipv4Addr)>,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.embedded {
            Some((how, v4)) => write!(f, "{how} of {v4}, {}", self.range.describe()),
            None => f.write_str(self.range.describe()),
        }
    }
}

/// The non-public ranges (module docs).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Range {
    Unspecified,
    ThisNetwork,
    Loopback,
    Private,
    Metadata,
    LinkLocal,
    SharedCgnat,
    ProtocolAssignments,
    Documentation,
    Benchmarking,
    Multicast,
    Reserved,
    Broadcast,
    UniqueLocal,
    SiteLocal,
    Ipv4Compatible,
    SixToFour,
    Nat64,
}

impl Range {
    fn describe(self) -> &'static str {
        match self {
            Range::Unspecified => "an unspecified address",
            Range::ThisNetwork => "a \"this network\" address (0.0.0.0/8)",
            Range::Loopback => "a loopback address",
            Range::Private => "a private address",
            Range::Metadata => "the link-local cloud metadata address",
            Range::LinkLocal => "a link-local address",
            Range::SharedCgnat => "a carrier-grade NAT address (100.64.0.0/10)",
            Range::ProtocolAssignments => "an IETF protocol assignment address (192.0.0.0/24)",
            Range::Documentation => "a documentation address",
            Range::Benchmarking => "a benchmarking address (198.18.0.0/15)",
            Range::Multicast => "a multicast address",
            Range::Reserved => "a reserved address (240.0.0.0/4)",
            Range::Broadcast => "the broadcast address",
            Range::UniqueLocal => "a unique local (private) address",
            Range::SiteLocal => "a deprecated site-local address",
            Range::Ipv4Compatible => "a deprecated IPv4-compatible address",
            Range::SixToFour => "a 6to4 address",
            Range::Nat64 => "a NAT64 address outside the public well-known prefix",
        }
    }
}

fn refused_range(ip: IpAddr) -> Option<Refusal> {
    let plain = |range| Refusal {
        range,
        embedded: None,
    };
    match ip {
        IpAddr::V4(v4) => v4_range(v4).map(plain),
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            if let Some(v4) = v6.to_ipv4_mapped() {
                return v4_range(v4).map(|range| Refusal {
                    range,
                    embedded: Some(("the IPv4-mapped form", v4)),
                });
            }
            // NAT64 well-known prefix 64:ff9b::/96: judged by the IPv4
            // address the translator would reach.
            if in_v6(v6, 0x0064_ff9b << 96, 96) {
                let v4 = Ipv4Addr::from(u32::try_from(bits & 0xffff_ffff).unwrap_or(0));
                return v4_range(v4).map(|range| Refusal {
                    range,
                    embedded: Some(("the NAT64 form", v4)),
                });
            }
            v6_range(v6).map(plain)
        }
    }
}

fn in_v4(ip: Ipv4Addr, net: [u8; 4], prefix: u8) -> bool {
    Cidr::new(IpAddr::V4(Ipv4Addr::from(net)), prefix).contains(IpAddr::V4(ip))
}

fn in_v6(ip: Ipv6Addr, net: u128, prefix: u8) -> bool {
    Cidr::new(IpAddr::V6(Ipv6Addr::from(net)), prefix).contains(IpAddr::V6(ip))
}

fn v4_range(ip: Ipv4Addr) -> Option<Range> {
    const RANGES: [([u8; 4], u8, Range); 17] = [
        // Exact addresses first, then the blocks containing them.
        ([0, 0, 0, 0], 32, Range::Unspecified),
        ([0, 0, 0, 0], 8, Range::ThisNetwork),
        ([127, 0, 0, 0], 8, Range::Loopback),
        ([10, 0, 0, 0], 8, Range::Private),
        ([172, 16, 0, 0], 12, Range::Private),
        ([192, 168, 0, 0], 16, Range::Private),
        ([169, 254, 169, 254], 32, Range::Metadata),
        ([169, 254, 0, 0], 16, Range::LinkLocal),
        ([100, 64, 0, 0], 10, Range::SharedCgnat),
        ([192, 0, 0, 0], 24, Range::ProtocolAssignments),
        ([192, 0, 2, 0], 24, Range::Documentation),
        ([198, 51, 100, 0], 24, Range::Documentation),
        ([203, 0, 113, 0], 24, Range::Documentation),
        ([198, 18, 0, 0], 15, Range::Benchmarking),
        ([224, 0, 0, 0], 4, Range::Multicast),
        ([255, 255, 255, 255], 32, Range::Broadcast),
        ([240, 0, 0, 0], 4, Range::Reserved),
    ];
    RANGES
        .iter()
        .find(|(net, prefix, _)| in_v4(ip, *net, *prefix))
        .map(|(_, _, range)| *range)
}

fn v6_range(ip: Ipv6Addr) -> Option<Range> {
    const RANGES: [(u128, u8, Range); 11] = [
        (0, 128, Range::Unspecified),
        (1, 128, Range::Loopback),
        // ::a.b.c.d (deprecated, RFC 4291 2.5.5.1).
        (0, 96, Range::Ipv4Compatible),
        (0xfe80 << 112, 10, Range::LinkLocal),
        (0xfec0 << 112, 10, Range::SiteLocal),
        (0xfc00 << 112, 7, Range::UniqueLocal),
        (0xff00 << 112, 8, Range::Multicast),
        (0x2001_0db8 << 96, 32, Range::Documentation),
        (0x2002 << 112, 16, Range::SixToFour),
        // Refused by Unleash as written in validate-url.ts.
        (0x0064_ff95 << 96, 96, Range::Nat64),
        // Local-use NAT64 (RFC 8215): may translate to private IPv4.
        (0x0064_ff9b_0001 << 80, 48, Range::Nat64),
    ];
    RANGES
        .iter()
        .find(|(net, prefix, _)| in_v6(ip, *net, *prefix))
        .map(|(_, _, range)| *range)
}

/// Read at most `EXCERPT_LEN + 1` bytes of the body (the extra byte tells a
/// complete short body, which lets the connection be pooled, from a longer
/// one, which is then abandoned).
fn read_excerpt(body: &mut ureq::Body) -> (String, Option<io::Error>) {
    let mut buf = Vec::with_capacity(EXCERPT_LEN + 1);
    let limit = u64::try_from(EXCERPT_LEN)
        .unwrap_or(u64::MAX)
        .saturating_add(1);
    // On error read_to_end keeps what it got so far, which is still useful.
    let error = body.as_reader().take(limit).read_to_end(&mut buf).err();
    (excerpt_of(&buf), error)
}

/// Lossy UTF-8 of the first `EXCERPT_LEN` bytes, without a replacement
/// character for a multi-byte sequence that our own cut split in two.
fn excerpt_of(bytes: &[u8]) -> String {
    let truncated = bytes.len() > EXCERPT_LEN;
    let cut = &bytes[..bytes.len().min(EXCERPT_LEN)];
    match std::str::from_utf8(cut) {
        Ok(s) => s.to_owned(),
        Err(e) if truncated && e.error_len().is_none() => {
            String::from_utf8_lossy(&cut[..e.valid_up_to()]).into_owned()
        }
        Err(_) => String::from_utf8_lossy(cut).into_owned(),
    }
}

/// Map a ureq error to a class and a short message naming `target` (host:port).
fn describe_error(err: &ureq::Error, target: &str, elapsed: Duration) -> (ErrorClass, String) {
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

/// Build the trust roots: the system store plus the extra CA file.
fn root_certs(extra_ca_file: Option<&Path>) -> Result<RootCerts, ConfigError> {
    let extra = match extra_ca_file {
        Some(path) => load_ca_file(path)?,
        None => Vec::new(),
    };
    // Unreadable entries of the system store are skipped, as every TLS
    // client does; only a wholly missing store changes behaviour below.
    let system = rustls_native_certs::load_native_certs().certs;

    if system.is_empty() && extra.is_empty() {
        // No usable system store (e.g. a minimal container without
        // ca-certificates): fall back to the Mozilla roots compiled into
        // ureq rather than rejecting every https endpoint.
        return Ok(RootCerts::WebPki);
    }
    let all: Vec<Certificate<'static>> = system
        .iter()
        .chain(extra.iter())
        .map(|der| Certificate::from_der(der.as_ref()).to_owned())
        .collect();
    Ok(RootCerts::Specific(Arc::new(all)))
}

/// Read and validate a PEM file of CA certificates.
fn load_ca_file(path: &Path) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    let shown = path.display();
    let bytes = std::fs::read(path)
        .map_err(|e| ConfigError::new(format!("cannot read CA file {shown}: {e}")))?;

    let mut certs = Vec::new();
    for item in CertificateDer::pem_slice_iter(&bytes) {
        let der =
            item.map_err(|e| ConfigError::new(format!("CA file {shown} is not valid PEM: {e}")))?;
        certs.push(der);
    }
    if certs.is_empty() {
        return Err(ConfigError::new(format!(
            "CA file {shown} contains no PEM CERTIFICATE block"
        )));
    }
    // ureq silently skips certificates it cannot use as trust anchors; check
    // them here so that a broken file is reported instead of ignored.
    for (i, der) in certs.iter().enumerate() {
        rustls::RootCertStore::empty()
            .add(der.clone())
            .map_err(|e| {
                ConfigError::new(format!(
                    "CA file {shown}: certificate #{} is not usable as a trust anchor: {e}",
                    i + 1
                ))
            })?;
    }
    Ok(certs)
}

fn parse_proxy(p: &str) -> Result<ureq::Proxy, ConfigError> {
    // Messages never repeat the proxy URL: it may carry credentials.
    let proxy = ureq::Proxy::new(p).map_err(|_| {
        ConfigError::new("proxy is not a valid URL (expected http://[user:pass@]host:port)")
    })?;
    match proxy.protocol() {
        ureq::ProxyProtocol::Http | ureq::ProxyProtocol::Https => Ok(proxy),
        _ => Err(ConfigError::new(
            "proxy scheme must be http or https (SOCKS is not supported)",
        )),
    }
}

/// Parse and check a webhook URL; the error text never repeats the URL.
fn parse_url(s: &str) -> Result<Uri, String> {
    let s = s.trim();
    if !s.contains("://") {
        return Err("URL has no scheme (expected http:// or https://)".to_owned());
    }
    let uri: Uri = s
        .parse()
        .map_err(|_| "URL is not a valid absolute URL".to_owned())?;
    match uri.scheme_str() {
        Some("http") | Some("https") => {}
        None => return Err("URL has no scheme (expected http:// or https://)".to_owned()),
        Some(_) => return Err("URL scheme must be http or https".to_owned()),
    }
    let authority = uri
        .authority()
        .ok_or_else(|| "URL has no host".to_owned())?;
    if uri.host().is_none_or(str::is_empty) {
        return Err("URL has no host".to_owned());
    }
    // http::Uri accepts an out-of-range port and then reports no port at
    // all, which would silently send to the default port instead.
    let host_port = authority
        .as_str()
        .rsplit_once('@')
        .map_or(authority.as_str(), |(_, hp)| hp);
    let after_host = match host_port.rfind(']') {
        Some(i) => &host_port[i + 1..],
        None => host_port,
    };
    if let Some((_, port)) = after_host.rsplit_once(':')
        && !port.is_empty()
    {
        match port.parse::<u16>() {
            Ok(p) if p > 0 => {}
            _ => return Err("URL port must be between 1 and 65535".to_owned()),
        }
    }
    Ok(uri)
}

/// Check that `s` is an absolute `http`/`https` URL with a host.
///
/// The error message says what is wrong without repeating the URL, so it is
/// safe to show even when the URL holds credentials.
pub fn check_url(s: &str) -> Result<(), String> {
    parse_url(s).map(|_| ())
}

/// `host:port` for messages: no userinfo, no path, no query.
fn target_of(uri: &Uri) -> String {
    let host = uri.host().unwrap_or("?");
    let port = uri.port_u16().unwrap_or(match uri.scheme_str() {
        Some("https") => 443,
        _ => 80,
    });
    format!("{host}:{port}")
}

/// `scheme://host:port/path` of a URL for Debug output, or a placeholder.
fn redacted_url(s: &str) -> String {
    match parse_url(s) {
        Ok(uri) => format!(
            "{}://{}{}",
            uri.scheme_str().unwrap_or("?"),
            target_of(&uri),
            uri.path()
        ),
        Err(_) => "<invalid URL>".to_owned(),
    }
}

fn check_headers(headers: &[(String, String)]) -> Result<(), String> {
    for (i, (name, value)) in headers.iter().enumerate() {
        // An invalid name is not echoed: it might be a whole pasted
        // "Authorization: Bearer ..." line.
        if !valid_header_name(name) {
            return Err(format!("header #{} has an invalid name", i + 1));
        }
        let shown: String = name.chars().take(64).collect();
        if MANAGED_HEADERS.iter().any(|m| m.eq_ignore_ascii_case(name)) {
            return Err(format!(
                "header {shown} is set by the HTTP client and cannot be overridden"
            ));
        }
        if !valid_header_value(value) {
            return Err(format!(
                "header {shown} has an invalid value (control characters such as CR, LF or NUL are not allowed)"
            ));
        }
    }
    Ok(())
}

/// Whether `s` is a valid header field name (an RFC 9110 `token`).
pub fn valid_header_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'!' | b'#'
                        | b'$'
                        | b'%'
                        | b'&'
                        | b'\''
                        | b'*'
                        | b'+'
                        | b'-'
                        | b'.'
                        | b'^'
                        | b'_'
                        | b'`'
                        | b'|'
                        | b'~'
                )
        })
}

/// Whether `s` can be sent as a header field value: visible ASCII, space,
/// tab and non-ASCII (obs-text) are allowed; CR, LF, NUL and the other
/// control characters are not (they would allow header injection).
pub fn valid_header_value(s: &str) -> bool {
    s.bytes()
        .all(|b| b == b'\t' || (0x20..=0x7e).contains(&b) || b >= 0x80)
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
    if h > 23 || m > 59 || s > 60 || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + h * 3600 + m * 60 + s)
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
    let this_year = year_of_days(now_secs.div_euclid(86_400));
    let mut year = this_year - this_year.rem_euclid(100) + yy;
    if year > this_year + 50 {
        year -= 100;
    }
    year
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The year of a day count since 1970-01-01 (inverse of `days_from_civil`).
fn year_of_days(days: i64) -> i64 {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    yoe + era * 400 + i64::from(m <= 2)
}

/// Remove anything credential-like that belongs to `req` from `msg`, then
/// clip it to `MAX_ERROR_LEN` characters.
fn scrub(mut msg: String, req: &Request) -> String {
    let mut secrets: Vec<&str> = Vec::new();
    if let Some(rest) = req.url.split_once("://").map(|(_, r)| r) {
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        if let Some((userinfo, _)) = authority.rsplit_once('@') {
            secrets.push(userinfo);
            secrets.extend(userinfo.split(':'));
        }
    }
    if let Some((_, query)) = req.url.split_once('?') {
        secrets.push(query.split('#').next().unwrap_or(query));
    }
    // Short values ("json", "1") are not worth hiding and would mangle the
    // message; tokens and signatures are longer than this.
    secrets.extend(
        req.headers
            .iter()
            .map(|(_, v)| v.trim())
            .filter(|v| v.len() >= 6),
    );
    for s in secrets {
        if s.len() >= 3 && msg.contains(s) {
            msg = msg.replace(s, "***");
        }
    }
    clip(msg)
}

fn clip(s: String) -> String {
    if s.chars().count() <= MAX_ERROR_LEN {
        return s;
    }
    let mut out: String = s.chars().take(MAX_ERROR_LEN - 3).collect();
    out.push_str("...");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::net::{SocketAddr, TcpListener, TcpStream};
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::thread;

    // ---------- pure functions ----------

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
        assert_eq!(year_of_days(0), 1970);
        assert_eq!(year_of_days(-1), 1969);
        assert_eq!(year_of_days(days_from_civil(2000, 2, 29)), 2000);
        assert_eq!(days_from_civil(1970, 1, 1), 0);
    }

    #[test]
    fn header_names() {
        for ok in [
            "Content-Type",
            "authorization",
            "X-Unleash-Signature",
            "x_y",
            "!#$%&'*+-.^_`|~09azAZ",
        ] {
            assert!(valid_header_name(ok), "{ok:?}");
        }
        for bad in [
            "",
            "X Bad",
            "X:Bad",
            "X\r\nInjected",
            "é",
            "a/b",
            "(x)",
            "a\"b",
            "a\tb",
            "a;b",
            "x{",
            "a@b",
            "a=b",
            "a,b",
        ] {
            assert!(!valid_header_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn header_values() {
        for ok in [
            "",
            "application/json",
            "Bearer abc.def",
            "a\tb",
            " x ",
            "café",
            "~!@#$%^&*()",
        ] {
            assert!(valid_header_value(ok), "{ok:?}");
        }
        for bad in [
            "a\rb",
            "a\nb",
            "a\0b",
            "x\r\nInjected: 1",
            "\u{1}",
            "a\u{7f}",
        ] {
            assert!(!valid_header_value(bad), "{bad:?}");
        }
    }

    #[test]
    fn urls() {
        for ok in [
            "http://example.com",
            "https://example.com/hook?x=1",
            "HTTPS://Example.com:8443/a/b",
            "http://127.0.0.1:1/",
            "http://[::1]:8080/x",
            "https://user:pw@example.com/",
            " http://example.com/ ",
        ] {
            assert_eq!(check_url(ok), Ok(()), "{ok:?}");
        }
        let cases = [
            ("", "no scheme"),
            ("example.com/hook", "no scheme"),
            ("ftp://example.com/", "http or https"),
            ("file:///etc/passwd", "not a valid"),
            ("http:///x", "not a valid"),
            ("/relative", "no scheme"),
            ("http://exa mple.com/", "not a valid"),
            ("http://h:99999/", "port"),
            ("http://h:0/", "port"),
        ];
        for (url, want) in cases {
            let err = check_url(url).expect_err(url);
            assert!(err.contains(want), "{url:?}: {err}");
        }
        // Never echoes the URL or its credentials.
        for url in [
            "ftp://alice:s3cr3t@example.com/?token=t0k3n",
            "alice:s3cr3t@example.com",
            "http://alice:s3cr3t@example.com:70000/",
            "http://alice:s3cr3t@exa mple.com/",
        ] {
            let err = check_url(url).expect_err(url);
            assert!(
                !err.contains("s3cr3t") && !err.contains("alice") && !err.contains("t0k3n"),
                "{err}"
            );
        }
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
    fn scrub_and_clip() {
        let req = Request {
            url: "https://alice:pa55word@example.com/hook?sig=abcdef".into(),
            headers: vec![
                ("Authorization".into(), "Bearer topsecret-token".into()),
                ("Content-Type".into(), "json".into()),
            ],
            body: vec![],
        };
        let msg =
            "x alice:pa55word y pa55word z sig=abcdef w Bearer topsecret-token json".to_owned();
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

    // ---------- destination policy ----------

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn policy(spec: &str) -> DestinationPolicy {
        DestinationPolicy::parse(spec).unwrap()
    }

    #[test]
    fn policy_parse_good_specs() {
        assert_eq!(policy(""), DestinationPolicy::default());
        assert_eq!(policy(" , ,"), DestinationPolicy::default());
        assert_eq!(policy("*"), DestinationPolicy::allow_all());
        assert_eq!(policy(" 10.0.0.0/8 , *"), {
            let mut p = DestinationPolicy::allow_all();
            p.nets.push(Cidr::new(ip("10.0.0.0"), 8));
            p
        });

        let p = policy(
            "10.0.0.0/8, 192.168.1.10 ,fd00::/8,::1,[fe80::1],[2001:db8::]/32, Hooks.Example.COM., localhost,my_host-1",
        );
        assert!(!p.allow_all);
        assert_eq!(p.hosts, ["hooks.example.com", "localhost", "my_host-1"]);
        assert_eq!(
            p.nets,
            [
                Cidr::new(ip("10.0.0.0"), 8),
                Cidr::host(ip("192.168.1.10")),
                Cidr::new(ip("fd00::"), 8),
                Cidr::host(ip("::1")),
                Cidr::host(ip("fe80::1")),
                Cidr::new(ip("2001:db8::"), 32),
            ]
        );
        // Host bits are dropped; /0 and the full lengths are valid.
        assert_eq!(policy("10.1.2.3/8"), policy("10.0.0.0/8"));
        assert_eq!(policy("fd12:3456::1/16"), policy("fd12::/16"));
        assert_eq!(policy("::ffff:10.0.0.1"), policy("10.0.0.1"));
        assert_eq!(policy("[::ffff:10.1.0.0]/112"), policy("10.1.0.0/16"));
        assert_eq!(policy("::ffff:0:0/96"), policy("0.0.0.0/0"));
        for spec in ["0.0.0.0/0", "::/0", "1.2.3.4/32", "::1/128", "10.0.0.0/ 8"] {
            assert!(DestinationPolicy::parse(spec).is_ok(), "{spec}");
        }
    }

    #[test]
    fn policy_parse_bad_specs() {
        let cases = [
            ("10.0.0.0/33", "0 to 32"),
            ("::/129", "0 to 128"),
            ("10.0.0.0/999", "0 to 32"),
            ("10.0.0.0/", "not a number"),
            ("10.0.0.0/x", "not a number"),
            ("10.0.0.0/-1", "not a number"),
            ("10.0.0/8", "not an IP address"),
            ("example.com/8", "not an IP address"),
            ("1.2.3", "not a valid IPv4 address"),
            ("256.1.1.1", "not a valid IPv4 address"),
            ("1.2.3.4.5", "not a valid IPv4 address"),
            (":::1", "not a valid IP address"),
            ("[::1", "not a valid IP address"),
            ("fe80::1%eth0", "not a valid IP address"),
            ("*.example.com", "wildcards"),
            ("**", "wildcards"),
            ("exa mple.com", "not a valid host name"),
            ("-bad.example", "not a valid host name"),
            ("bad-.example", "not a valid host name"),
            ("a..b", "not a valid host name"),
            (".", "not a valid host name"),
            ("http://x", "not an IP address"),
            ("é.example", "not a valid host name"),
        ];
        for (entry, why) in cases {
            // The bad entry is named even among good ones.
            let spec = format!("127.0.0.1, {entry} ,localhost");
            let err = DestinationPolicy::parse(&spec).expect_err(entry);
            assert!(err.contains(&format!("{entry:?}")), "{entry}: {err}");
            assert!(err.contains(why), "{entry}: {err}");
        }
        let long = format!("{}.example", "a".repeat(64));
        assert!(DestinationPolicy::parse(&long).is_err());
        let huge = ["abc"; 70].join(".");
        let err = DestinationPolicy::parse(&huge).expect_err("too long");
        assert!(err.chars().count() < 200, "{err}");
    }

    #[test]
    fn empty_policy_refuses_every_private_like_range() {
        let p = DestinationPolicy::default();
        let refused = [
            ("10.0.0.0", "private"),
            ("10.255.255.255", "private"),
            ("172.16.0.1", "private"),
            ("172.31.255.255", "private"),
            ("192.168.0.1", "private"),
            ("127.0.0.1", "loopback"),
            ("127.255.255.254", "loopback"),
            ("169.254.169.254", "metadata"),
            ("169.254.0.1", "link-local"),
            ("0.0.0.0", "unspecified"),
            ("0.1.2.3", "this network"),
            ("100.64.0.1", "carrier-grade NAT"),
            ("100.127.255.255", "carrier-grade NAT"),
            ("192.0.0.8", "IETF protocol"),
            ("192.0.2.1", "documentation"),
            ("198.51.100.7", "documentation"),
            ("203.0.113.9", "documentation"),
            ("198.18.0.1", "benchmarking"),
            ("198.19.255.255", "benchmarking"),
            ("224.0.0.1", "multicast"),
            ("239.255.255.250", "multicast"),
            ("240.0.0.1", "reserved"),
            ("255.255.255.254", "reserved"),
            ("255.255.255.255", "broadcast"),
            ("::", "unspecified"),
            ("::1", "loopback"),
            ("::7f00:1", "IPv4-compatible"),
            ("fe80::1", "link-local"),
            ("febf:ffff::1", "link-local"),
            ("fec0::1", "site-local"),
            ("fc00::1", "unique local"),
            ("fd12:3456::1", "unique local"),
            ("ff02::1", "multicast"),
            ("2001:db8::1", "documentation"),
            ("2002:7f00:1::1", "6to4"),
            ("2002:808:808::1", "6to4"),
            ("64:ff95::a00:1", "NAT64"),
            ("64:ff95::808:808", "NAT64"),
            ("64:ff9b:1::1", "NAT64"),
            // IPv4 carried in IPv6: judged by the IPv4 address.
            (
                "::ffff:127.0.0.1",
                "IPv4-mapped form of 127.0.0.1, a loopback",
            ),
            ("::ffff:10.1.2.3", "IPv4-mapped form of 10.1.2.3, a private"),
            ("::ffff:172.16.0.1", "private"),
            ("::ffff:192.168.1.1", "private"),
            ("::ffff:169.254.169.254", "metadata"),
            ("::ffff:169.254.1.1", "link-local"),
            ("::ffff:0.0.0.0", "unspecified"),
            ("::ffff:100.64.0.1", "carrier-grade NAT"),
            ("::ffff:198.18.0.1", "benchmarking"),
            ("::ffff:224.0.0.1", "multicast"),
            ("::ffff:255.255.255.255", "broadcast"),
            ("::ffff:7f00:1", "loopback"),
            ("64:ff9b::a00:1", "NAT64 form of 10.0.0.1, a private"),
            ("64:ff9b::7f00:1", "loopback"),
            ("64:ff9b::a9fe:a9fe", "metadata"),
        ];
        for (addr, why) in refused {
            let a = ip(addr);
            assert!(!p.allows("example.com", a), "{addr} allowed");
            let err = p.check("example.com", [a]).expect_err(addr).0;
            assert!(err.contains(why), "{addr}: {err}");
            assert!(err.contains(ALLOWLIST_SETTING), "{err}");
        }
        let public = [
            "8.8.8.8",
            "1.1.1.1",
            "93.184.216.34",
            "1.0.0.0",
            "9.255.255.255",
            "11.0.0.0",
            "126.255.255.255",
            "128.0.0.0",
            "172.15.255.255",
            "172.32.0.0",
            "192.167.255.255",
            "192.169.0.0",
            "169.253.255.255",
            "169.255.0.0",
            "100.63.255.255",
            "100.128.0.0",
            "192.0.1.1",
            "192.0.3.1",
            "198.17.255.255",
            "198.20.0.0",
            "198.51.99.1",
            "203.0.112.1",
            "223.255.255.255",
            "2606:4700:4700::1111",
            "2a00:1450:4001::200e",
            "2001:db9::1",
            "2003::1",
            "fbff::1",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "::1:0:0:1",
        ];
        for addr in public {
            assert!(p.allows("example.com", ip(addr)), "{addr} refused");
            assert!(p.allows("", ip(addr)), "{addr} refused");
        }
    }

    #[test]
    fn allowlist_entries() {
        let p = policy("10.0.0.0/8, ::1, fd00::/8, 169.254.169.254, Hooks.Internal");
        assert!(p.allows("x", ip("10.1.2.3")));
        assert!(
            p.allows("x", ip("::ffff:10.1.2.3")),
            "IPv4 entry covers mapped form"
        );
        assert!(p.allows("x", ip("11.0.0.1")), "public");
        assert!(p.allows("x", ip("::1")));
        assert!(!p.allows("x", ip("127.0.0.1")));
        assert!(!p.allows("x", ip("::ffff:127.0.0.1")));
        assert!(p.allows("x", ip("fd12::1")));
        assert!(!p.allows("x", ip("fc00::1")));
        assert!(p.allows("x", ip("169.254.169.254")));
        assert!(!p.allows("x", ip("169.254.169.253")));
        assert!(!p.allows("x", ip("192.168.0.1")));
        // A v6 CIDR never matches a v4 address and vice versa.
        assert!(!policy("::/0").allows("x", ip("127.0.0.1")));
        assert!(!policy("0.0.0.0/0").allows("x", ip("::1")));
        assert!(policy("0.0.0.0/0").allows("x", ip("::ffff:127.0.0.1")));
        assert!(policy("::/0").allows("x", ip("::1")));

        // Host names: exact, case-insensitive, whatever they resolve to.
        for host in [
            "hooks.internal",
            "HOOKS.Internal",
            "hooks.internal.",
            " hooks.internal",
        ] {
            assert!(p.allows(host, ip("127.0.0.1")), "{host}");
            assert!(p.allows(host, ip("::1")), "{host}");
            assert_eq!(
                p.check(host, [ip("192.168.1.1"), ip("::")])
                    .map_err(|e| e.0),
                Ok(())
            );
        }
        for host in ["x.hooks.internal", "hooks.internal.example", "hooks", ""] {
            assert!(!p.allows(host, ip("127.0.0.1")), "{host}");
        }
        // An IP literal host is not a host name entry.
        let lit = policy("localhost");
        assert!(lit.allows("localhost", ip("127.0.0.1")));
        assert!(!lit.allows("127.0.0.1", ip("127.0.0.1")));
        assert!(!lit.allows("[::1]", ip("::1")));
        assert!(policy("::1").allows("[::1]", ip("::1")));

        let all = DestinationPolicy::allow_all();
        for addr in ["127.0.0.1", "::1", "169.254.169.254", "10.0.0.1", "8.8.8.8"] {
            assert!(all.allows("anything", ip(addr)));
        }
    }

    #[test]
    fn any_refused_address_refuses_the_host() {
        let p = DestinationPolicy::default();
        let err = p
            .check(
                "mixed.example",
                [ip("8.8.8.8"), ip("10.0.0.1"), ip("1.1.1.1")],
            )
            .expect_err("mixed")
            .0;
        assert_eq!(
            err,
            format!(
                "mixed.example resolves to 10.0.0.1, which is a private address; \
                 allow the host or the address with {ALLOWLIST_SETTING}"
            )
        );
        assert!(
            p.check("public.example", [ip("8.8.8.8"), ip("2606:4700::1")])
                .is_ok()
        );
        let err = p.check("[::1]", [ip("::1")]).expect_err("literal").0;
        assert_eq!(
            err,
            format!("::1 is a loopback address; allow it with {ALLOWLIST_SETTING}")
        );
    }

    #[test]
    fn check_destination_literal_ips() {
        let empty = DestinationPolicy::default();
        let refused = [
            ("http://127.0.0.1:9/x", "127.0.0.1 is a loopback address"),
            ("https://127.9.9.9/", "127.9.9.9 is a loopback address"),
            ("http://[::1]:8080/", "::1 is a loopback address"),
            ("http://10.0.0.5/hook", "10.0.0.5 is a private address"),
            ("http://169.254.169.254/latest/meta-data/", "metadata"),
            ("http://0.0.0.0:80/", "0.0.0.0 is an unspecified address"),
            ("http://[::]/", "unspecified"),
            ("http://100.64.1.1/", "carrier-grade NAT"),
            ("http://[fe80::1]/", "link-local"),
            ("http://[fd00::1]/", "unique local"),
            ("http://[::ffff:10.0.0.1]/", "IPv4-mapped form of 10.0.0.1"),
            ("http://[::ffff:a9fe:a9fe]/", "metadata"),
        ];
        for (url, want) in refused {
            let err = check_destination(url, &empty).expect_err(url);
            assert!(err.contains(want), "{url}: {err}");
            assert!(
                err.ends_with(&format!("allow it with {ALLOWLIST_SETTING}")),
                "{url}: {err}"
            );
        }
        for url in [
            "http://8.8.8.8/",
            "https://1.1.1.1:8443/hook?x=1",
            "http://[2606:4700:4700::1111]/",
            "http://[::ffff:8.8.8.8]/",
        ] {
            assert_eq!(check_destination(url, &empty), Ok(()), "{url}");
        }
        assert_eq!(
            check_destination("http://127.0.0.1/", &policy("127.0.0.1")),
            Ok(())
        );
        assert_eq!(
            check_destination("http://127.0.0.1/", &policy("127.0.0.0/8")),
            Ok(())
        );
        assert_eq!(
            check_destination("http://[::1]/", &policy("::1/128")),
            Ok(())
        );
        assert_eq!(check_destination("http://10.9.8.7/", &policy("*")), Ok(()));
        assert!(check_destination("http://127.0.0.1/", &policy("10.0.0.0/8")).is_err());

        // Never echoes userinfo or query.
        let err = check_destination("http://alice:s3cr3t@127.0.0.1:8/?token=t0k3n", &empty)
            .expect_err("loopback");
        for secret in ["alice", "s3cr3t", "t0k3n"] {
            assert!(!err.contains(secret), "{err}");
        }
        // Invalid URLs are reported as such.
        let err = check_destination("ftp://127.0.0.1/", &empty).expect_err("ftp");
        assert!(err.contains("http or https"), "{err}");
    }

    #[test]
    fn check_destination_localhost() {
        // /etc/hosts; no DNS server is involved.
        let empty = DestinationPolicy::default();
        let err = check_destination("http://localhost:8080/hook", &empty).expect_err("localhost");
        assert!(
            err.starts_with("localhost resolves to ") && err.contains("loopback"),
            "{err}"
        );
        let err = check_destination("http://bob:pw123@LocalHost/?k=secretq", &empty)
            .expect_err("localhost");
        assert!(!err.contains("pw123") && !err.contains("secretq"), "{err}");
        for spec in ["localhost", "LOCALHOST", "127.0.0.0/8, ::1", "*"] {
            assert_eq!(
                check_destination("http://localhost:8080/hook", &policy(spec)),
                Ok(()),
                "{spec}"
            );
        }
    }

    fn no_timeout() -> NextTimeout {
        NextTimeout::default()
    }

    #[test]
    fn resolver_returns_only_checked_addresses() {
        let config = ureq::config::Config::default();
        let uri: Uri = "http://127.0.0.1:8080/x".parse().unwrap();
        let allowing = PolicyResolver::new(Arc::new(policy("127.0.0.1")));
        let addrs = allowing.resolve(&uri, &config, no_timeout()).unwrap();
        let got: Vec<SocketAddr> = addrs.iter().copied().collect();
        assert_eq!(got, ["127.0.0.1:8080".parse::<SocketAddr>().unwrap()]);
        // kept for the next request to that host and port, so no lookup thread per request
        assert_eq!(allowing.cache.lock().unwrap().len(), 1);
        let again = allowing.resolve(&uri, &config, no_timeout()).unwrap();
        assert_eq!(again.iter().copied().collect::<Vec<_>>(), got);
        let other: Uri = "http://127.0.0.1:8081/x".parse().unwrap();
        let addrs = allowing.resolve(&other, &config, no_timeout()).unwrap();
        assert_eq!(addrs[0].port(), 8081);
        assert_eq!(allowing.cache.lock().unwrap().len(), 2);

        let refusing = PolicyResolver::new(Arc::new(DestinationPolicy::default()));
        for url in ["http://127.0.0.1:8080/x", "http://localhost:1/"] {
            let uri: Uri = url.parse().unwrap();
            let err = refusing
                .resolve(&uri, &config, no_timeout())
                .expect_err(url);
            let (class, msg) = describe_error(&err, "h:1", Duration::ZERO);
            assert_eq!(class, ErrorClass::Policy, "{msg}");
            assert!(msg.contains("loopback"), "{msg}");
        }
        // a refusal is not kept: nothing cached, the next request is checked again
        assert!(refusing.cache.lock().unwrap().is_empty());

        // The configured proxy's own address is trusted; nothing else is.
        let proxied = ureq::Agent::config_builder()
            .proxy(Some(ureq::Proxy::new("http://u:p@127.0.0.1:3128").unwrap()))
            .build();
        let proxy_uri = proxied.proxy().unwrap().uri().clone();
        let addrs = refusing
            .resolve(&proxy_uri, &proxied, no_timeout())
            .unwrap();
        assert_eq!(addrs.len(), 1);
        assert!(refusing.resolve(&uri, &proxied, no_timeout()).is_err());
        let other_port: Uri = "http://127.0.0.1:3129".parse().unwrap();
        assert!(
            refusing
                .resolve(&other_port, &proxied, no_timeout())
                .is_err()
        );
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
}
