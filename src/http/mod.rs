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
//! The parts: this file is the client ([`Client`], [`Request`], sending and reading a
//! response); [`policy`] decides which destinations may be reached (the SSRF protection,
//! with the resolver that enforces it); [`outcome`] names what happened ([`ErrorClass`],
//! [`Attempt`]) and what it means ([`classify`], `Retry-After`); [`url`] checks URLs and
//! header fields before anything is sent.

use std::fmt;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use ureq::config::AutoHeaderValue;
use ureq::tls::{Certificate, RootCerts, TlsConfig, TlsProvider};
use ureq::unversioned::transport::{
    ConnectProxyConnector, Connector, NextTimeout, RustlsConnector,
};

mod outcome;
mod policy;
pub mod reactor;
mod tcp;
mod url;

pub use outcome::{Attempt, ErrorClass, Verdict, classify, parse_retry_after};
pub use policy::{DestinationPolicy, destination_refusal};
pub use url::{check_url, masked_url, scrub_secrets};
// Only the property tests (src/tests/properties.rs) call these from outside.
#[cfg(test)]
pub use url::{valid_header_name, valid_header_value};

use outcome::describe_error;
use policy::{PolicyResolver, precheck};
use url::{check_headers, parse_url, redacted_url, target_of};

/// How many bytes of the response body are kept in [`Attempt::response_excerpt`].
pub const EXCERPT_LEN: usize = 1024;

/// Upper bound (in characters) for [`Attempt::error`] and [`ConfigError`] texts.
pub const MAX_ERROR_LEN: usize = 300;

/// How long an idle pooled connection may be reused. Kept below the 5 s
/// keep-alive timeout of common servers (Node.js, nginx upstreams) so that we
/// rarely pick a connection the server is just closing.
const MAX_IDLE_AGE: Duration = Duration::from_secs(4);

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
    /// by a local lookup before each send (see [`policy`]).
    pub proxy: Option<String>,
    /// Idle keep-alive connections kept per host:port (0 disables reuse).
    pub max_idle_per_host: usize,
    /// Which non-public destinations may be reached (see [`policy`]).
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
            // whole pool (file descriptors) in proportion to the per-host limit.
            .max_idle_connections(cfg.max_idle_per_host.saturating_mul(4))
            .max_idle_age(MAX_IDLE_AGE)
            .build();

        let policy = Arc::new(cfg.destination_policy.clone());
        let resolver = PolicyResolver::new(policy.clone());
        Ok(Client {
            agent: ureq::Agent::with_parts(config, connector(), resolver),
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

/// ureq's default chain of connectors without SOCKS (refused in `parse_proxy`) and with our
/// own TCP connector ([`tcp`]): a CONNECT proxy's tunnel when one is set, else plain TCP,
/// then TLS for https.
fn connector() -> impl Connector<()> {
    ().chain(ConnectProxyConnector::default())
        .chain(tcp::TcpConnector)
        .chain(RustlsConnector::default())
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
mod tests;
