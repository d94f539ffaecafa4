//! Every setting of the extension, in one place, with typed accessors.
//!
//! All are `unleash_webhook.*`. Only `database_name` needs a restart (the worker connects to one
//! database for life); the rest are re-read by the worker on SIGHUP (`SELECT pg_reload_conf()`).

use pgrx::guc::{GucContext, GucFlags, GucRegistry, GucSetting};
use std::ffi::CString;
use std::time::Duration;

static DATABASE_NAME: GucSetting<Option<CString>> =
    GucSetting::<Option<CString>>::new(Some(c"postgres"));
static MAX_RETRIES: GucSetting<i32> = GucSetting::<i32>::new(1);
static RETRY_DELAY_MS: GucSetting<i32> = GucSetting::<i32>::new(300);
static RETRY_AFTER_MAX_MS: GucSetting<i32> = GucSetting::<i32>::new(60_000);
static CONNECT_TIMEOUT_MS: GucSetting<i32> = GucSetting::<i32>::new(5_000);
static TIMEOUT_MS: GucSetting<i32> = GucSetting::<i32>::new(10_000);
static MAX_CONCURRENCY: GucSetting<i32> = GucSetting::<i32>::new(64);
static MAX_CONCURRENCY_PER_SUBSCRIPTION: GucSetting<i32> = GucSetting::<i32>::new(16);
static CA_FILE: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
static POLL_INTERVAL_MS: GucSetting<i32> = GucSetting::<i32>::new(1_000);
static UNLEASH_URL: GucSetting<Option<CString>> =
    GucSetting::<Option<CString>>::new(Some(c"http://localhost:4242"));
static HTTP_PROXY: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
static DESTINATION_ALLOWLIST: GucSetting<Option<CString>> =
    GucSetting::<Option<CString>>::new(None);
static RETENTION_S: GucSetting<i32> = GucSetting::<i32>::new(7 * 24 * 3600);
static VACUUM_INTERVAL_S: GucSetting<i32> = GucSetting::<i32>::new(10);
static MAX_BODY_SIZE_KB: GucSetting<i32> = GucSetting::<i32>::new(4 * 1024);
static WORKER_NICE: GucSetting<i32> = GucSetting::<i32>::new(10);

/// Registers the settings. Called from `_PG_init` only while preloading, because
/// `database_name` is a postmaster setting and those cannot be created later.
pub fn init() {
    GucRegistry::define_string_guc(
        c"unleash_webhook.database_name",
        c"Database whose Unleash events the worker delivers.",
        c"Read when the worker starts; the extension must be created in this database.",
        &DATABASE_NAME,
        GucContext::Postmaster,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"unleash_webhook.max_retries",
        c"Retries after a failed attempt (5xx, 408, 429, timeout, network error).",
        c"Unleash documents one retry; 0 disables retries.",
        &MAX_RETRIES,
        0,
        100,
        GucContext::Sighup,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"unleash_webhook.retry_delay",
        c"Delay before a retry, unless the endpoint sent Retry-After.",
        c"300 ms is what Unleash's documented retry waited.",
        &RETRY_DELAY_MS,
        0,
        3_600_000,
        GucContext::Sighup,
        GucFlags::UNIT_MS,
    );
    GucRegistry::define_int_guc(
        c"unleash_webhook.retry_after_max",
        c"Longest Retry-After the worker honours; longer values are capped to this.",
        c"",
        &RETRY_AFTER_MAX_MS,
        0,
        86_400_000,
        GucContext::Sighup,
        GucFlags::UNIT_MS,
    );
    GucRegistry::define_int_guc(
        c"unleash_webhook.connect_timeout",
        c"Time allowed to open a connection (TCP and TLS).",
        c"",
        &CONNECT_TIMEOUT_MS,
        1,
        600_000,
        GucContext::Sighup,
        GucFlags::UNIT_MS,
    );
    GucRegistry::define_int_guc(
        c"unleash_webhook.timeout",
        c"Time allowed for a whole attempt, from connect to the end of the response.",
        c"Unleash uses 10 s.",
        &TIMEOUT_MS,
        1,
        600_000,
        GucContext::Sighup,
        GucFlags::UNIT_MS,
    );
    GucRegistry::define_int_guc(
        c"unleash_webhook.max_concurrency",
        c"Most HTTP requests in flight at once, over all subscriptions.",
        c"",
        &MAX_CONCURRENCY,
        1,
        1024,
        GucContext::Sighup,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"unleash_webhook.worker_nice",
        c"CPU priority (nice value) of the worker and its sender thread.",
        c"When the CPU is busy, Unleash's own queries come first: 0 is PostgreSQL's own priority, 19 the lowest. An idle machine delivers as fast at any value. Raising it applies at once; lowering it needs the worker to be started again (an unprivileged process cannot raise its own priority).",
        &WORKER_NICE,
        0,
        19,
        GucContext::Sighup,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"unleash_webhook.max_concurrency_per_subscription",
        c"Most HTTP requests in flight at once to one subscription.",
        c"Keeps one slow endpoint from taking every sender. Throughput to one endpoint grows with it up to what that endpoint and this machine's CPUs can take (docs/benchmarks.md measures it at the default).",
        &MAX_CONCURRENCY_PER_SUBSCRIPTION,
        1,
        1024,
        GucContext::Sighup,
        GucFlags::default(),
    );
    GucRegistry::define_string_guc(
        c"unleash_webhook.ca_file",
        c"PEM file of CA certificates trusted in addition to the system roots.",
        c"Re-read on reload; a file that cannot be read keeps the previous trust and logs why.",
        &CA_FILE,
        GucContext::Sighup,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"unleash_webhook.poll_interval",
        c"How often the worker looks for due deliveries when nothing woke it.",
        c"Commits wake the worker at once; this is the backstop (and the pace of retry checks).",
        &POLL_INTERVAL_MS,
        10,
        3_600_000,
        GucContext::Sighup,
        GucFlags::UNIT_MS,
    );
    GucRegistry::define_string_guc(
        c"unleash_webhook.unleash_url",
        c"Unleash's public URL, for the links in eventMarkdown.",
        c"Unleash's own UNLEASH_URL (default http://localhost:4242).",
        &UNLEASH_URL,
        GucContext::Sighup,
        GucFlags::default(),
    );
    GucRegistry::define_string_guc(
        c"unleash_webhook.http_proxy",
        c"HTTP(S) proxy for every request, as http://[user:pass@]host:port.",
        c"Empty: connect directly. The *_PROXY environment variables are ignored.",
        &HTTP_PROXY,
        GucContext::Sighup,
        GucFlags::SUPERUSER_ONLY,
    );
    GucRegistry::define_string_guc(
        c"unleash_webhook.destination_allowlist",
        c"Hosts, IPs or CIDRs that may be private, loopback or link-local; * allows all.",
        c"Like Unleash 8.0.2+, such addresses are refused after DNS resolution unless allowed here.",
        &DESTINATION_ALLOWLIST,
        GucContext::Sighup,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"unleash_webhook.retention",
        c"How long finished deliveries and their attempts are kept; 0 keeps them forever.",
        c"The worker deletes older delivered, failed and cancelled rows in small batches.",
        &RETENTION_S,
        0,
        i32::MAX,
        GucContext::Sighup,
        GucFlags::UNIT_S,
    );
    GucRegistry::define_int_guc(
        c"unleash_webhook.vacuum_interval",
        c"While the worker is busy, how often it has its own tables vacuumed; 0 leaves them to autovacuum.",
        c"A short-lived background worker runs VACUUM of the queue and the attempt log (after at least 10,000 changed rows); autovacuum_naptime is often too long for a queue that turns over thousands of rows a second.",
        &VACUUM_INTERVAL_S,
        0,
        86_400,
        GucContext::Sighup,
        GucFlags::UNIT_S,
    );
    GucRegistry::define_int_guc(
        c"unleash_webhook.max_body_size",
        c"Largest body sent; a delivery whose event or body is larger fails, once, with the reason.",
        c"Keeps one huge event (rendered once per subscription) from taking the worker's memory.",
        &MAX_BODY_SIZE_KB,
        1,
        1024 * 1024,
        GucContext::Sighup,
        GucFlags::UNIT_KB,
    );
    reserve_prefix();
}

#[cfg(not(any(feature = "pg13", feature = "pg14")))]
fn reserve_prefix() {
    // SAFETY: called from _PG_init on the main thread with a static C string.
    unsafe { pgrx::pg_sys::MarkGUCPrefixReserved(c"unleash_webhook".as_ptr()) };
}

#[cfg(any(feature = "pg13", feature = "pg14"))]
fn reserve_prefix() {
    // SAFETY: called from _PG_init on the main thread with a static C string.
    unsafe { pgrx::pg_sys::EmitWarningsOnPlaceholders(c"unleash_webhook".as_ptr()) };
}

fn string(setting: &GucSetting<Option<CString>>) -> Option<String> {
    setting
        .get()
        .map(|s| s.to_string_lossy().into_owned())
        .filter(|s| !s.is_empty())
}

fn millis(setting: &GucSetting<i32>) -> Duration {
    Duration::from_millis(u64::try_from(setting.get()).unwrap_or(0))
}

fn count(setting: &GucSetting<i32>) -> usize {
    usize::try_from(setting.get()).unwrap_or(1).max(1)
}

/// Unleash's URL for eventMarkdown links.
pub fn unleash_url() -> String {
    string(&UNLEASH_URL).unwrap_or_else(|| "http://localhost:4242".to_string())
}

/// The destination allowlist as written (empty when unset).
pub fn destination_allowlist() -> String {
    string(&DESTINATION_ALLOWLIST).unwrap_or_default()
}

/// The database the worker serves.
pub fn database_name() -> String {
    string(&DATABASE_NAME).unwrap_or_else(|| "postgres".to_string())
}

/// The settings the worker re-reads on SIGHUP, as one value it can compare and log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkerSettings {
    pub max_retries: u32,
    pub retry_delay: Duration,
    pub retry_after_max: Duration,
    pub connect_timeout: Duration,
    pub timeout: Duration,
    pub max_concurrency: usize,
    pub max_concurrency_per_subscription: usize,
    pub ca_file: Option<String>,
    pub poll_interval: Duration,
    pub unleash_url: String,
    pub http_proxy: Option<String>,
    pub destination_allowlist: String,
    /// Zero: keep forever.
    pub retention: Duration,
    /// Zero: leave the queue to autovacuum.
    pub vacuum_interval: Duration,
    pub max_body_size: usize,
    pub nice: i32,
}

/// Reads the current values (call again after `ProcessConfigFile`).
pub fn worker_settings() -> WorkerSettings {
    WorkerSettings {
        max_retries: u32::try_from(MAX_RETRIES.get()).unwrap_or(0),
        retry_delay: millis(&RETRY_DELAY_MS),
        retry_after_max: millis(&RETRY_AFTER_MAX_MS),
        connect_timeout: millis(&CONNECT_TIMEOUT_MS),
        timeout: millis(&TIMEOUT_MS),
        max_concurrency: count(&MAX_CONCURRENCY),
        max_concurrency_per_subscription: count(&MAX_CONCURRENCY_PER_SUBSCRIPTION),
        ca_file: string(&CA_FILE),
        poll_interval: millis(&POLL_INTERVAL_MS),
        unleash_url: unleash_url(),
        http_proxy: string(&HTTP_PROXY),
        destination_allowlist: destination_allowlist(),
        retention: Duration::from_secs(u64::try_from(RETENTION_S.get()).unwrap_or(0)),
        vacuum_interval: Duration::from_secs(u64::try_from(VACUUM_INTERVAL_S.get()).unwrap_or(0)),
        max_body_size: count(&MAX_BODY_SIZE_KB).saturating_mul(1024),
        nice: WORKER_NICE.get(),
    }
}

/// The session settings of our background processes (the worker, the vacuum helper), set over
/// whatever the database's or the role's settings say (ALTER DATABASE/ROLE ... SET), which the
/// owner of Unleash's database controls: a session-level value wins over those. Nothing it
/// sets may decide what our SQL resolves to (search_path), make it wait or stop (timeouts,
/// read-only), or whom it runs as (role). `statement_timeout` is the process's own.
pub fn pin_session(name: &str, statement_timeout: &str) {
    for (setting, value) in [
        ("application_name", name),
        // pg_temp last: our own temporary objects only, never another schema's look-alikes
        ("search_path", "pg_catalog, pg_temp"),
        ("role", "none"),
        ("default_transaction_read_only", "off"),
        ("default_transaction_isolation", "read committed"),
        ("default_transaction_deferrable", "off"),
        // never wait long on a lock someone else holds: the step is tried again next turn
        ("lock_timeout", "100ms"),
        ("statement_timeout", statement_timeout),
        ("idle_in_transaction_session_timeout", "0"),
        ("session_replication_role", "origin"),
    ] {
        set_session_option(setting, value);
    }
}

/// Sets `name` for this session, over the database's and the role's settings.
pub fn set_session_option(name: &str, value: &str) {
    let (Ok(name), Ok(value)) = (CString::new(name), CString::new(value)) else {
        return;
    };
    // SAFETY: valid C strings; SetConfigOption copies them.
    unsafe {
        pgrx::pg_sys::SetConfigOption(
            name.as_ptr(),
            value.as_ptr(),
            pgrx::pg_sys::GucContext::PGC_SUSET,
            pgrx::pg_sys::GucSource::PGC_S_SESSION,
        )
    };
}
