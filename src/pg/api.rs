//! The Rust half of the SQL API: checks the plpgsql functions in `sql/finalize.sql` call,
//! `preview`, and the worker's counters. Subscription management itself is plpgsql, where the
//! SQLSTATEs and hints are easiest to read.

use crate::core::event_json::EventRow;
use crate::core::js::{Value, stringify};
use crate::core::request::{self, Context, Subscription};
use crate::core::signing;
use crate::core::template::Template;
use crate::http::{DestinationPolicy, destination_refusal};
use crate::pg::{gucs, queue, wake};
use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;
use std::sync::atomic::Ordering;

/// NULL when `template` compiles (or is NULL), else mustache.js's message for it.
#[pg_extern(immutable, parallel_safe)]
fn _template_error(template: Option<&str>) -> Option<String> {
    Template::compile(template?).err().map(|e| e.to_string())
}

/// The URL with its secrets masked (see `http::masked_url`), for the views.
#[pg_extern(immutable, parallel_safe, strict)]
fn _masked_url(url: &str) -> String {
    crate::http::masked_url(url)
}

/// NULL when `url` is an absolute http(s) URL with a host, else what is wrong with it.
#[pg_extern(immutable, parallel_safe)]
fn _url_error(url: Option<&str>) -> Option<String> {
    match url {
        None => Some("url must not be NULL".to_string()),
        Some(u) => crate::http::check_url(u).err(),
    }
}

/// NULL when the URL's host may be called under `unleash_webhook.destination_allowlist`.
/// A host that does not resolve now is let through: DNS can be down for a moment, and the
/// worker checks every address again when it connects.
#[pg_extern(volatile, parallel_safe)]
fn _destination_error(url: Option<&str>) -> Option<String> {
    let url = url?;
    let policy = match DestinationPolicy::parse(&gucs::destination_allowlist()) {
        Ok(p) => p,
        Err(e) => {
            return Some(format!(
                "unleash_webhook.destination_allowlist is invalid: {e}"
            ));
        }
    };
    destination_refusal(url, &policy)
}

/// NULL when `secret` is a usable Standard Webhooks secret (or NULL), else why not.
#[pg_extern(immutable, parallel_safe)]
fn _signing_secret_error(secret: Option<&str>) -> Option<String> {
    signing::parse_secret(secret?).err()
}

/// A fresh random signing secret, `whsec_` + base64 of 32 bytes.
#[pg_extern(volatile, parallel_safe)]
fn generate_signing_secret() -> String {
    signing::generate_secret().unwrap_or_else(|e| {
        raise(
            PgSqlErrorCode::ERRCODE_SYSTEM_ERROR,
            format!("no random bytes for a secret: {e}"),
            "The operating system's random source failed; try again.",
        )
    })
}

/// The delivery worker's pid, or NULL when none runs (library not preloaded, or restarting).
#[pg_extern(volatile, parallel_safe)]
fn worker_pid() -> Option<i32> {
    wake::worker_pid()
}

/// The worker's counters since it started (worker_status() wraps this with timestamps).
#[pg_extern(volatile, parallel_safe)]
#[allow(clippy::type_complexity)]
fn _worker_stats() -> TableIterator<
    'static,
    (
        name!(pid, Option<i32>),
        name!(started_at_us, Option<i64>),
        name!(last_activity_us, Option<i64>),
        name!(in_flight, i32),
        name!(attempts, i64),
        name!(delivered, i64),
        name!(failed, i64),
        name!(retries, i64),
        name!(purged, i64),
    ),
> {
    let pid = wake::worker_pid();
    let row = match wake::stats() {
        Some(s) if pid.is_some() => {
            let n = |c: &std::sync::atomic::AtomicU64| {
                i64::try_from(c.load(Ordering::Relaxed)).unwrap_or(i64::MAX)
            };
            (
                pid,
                Some(s.started_at_us.load(Ordering::Relaxed)),
                Some(s.last_activity_us.load(Ordering::Relaxed)),
                s.in_flight.load(Ordering::Relaxed),
                n(&s.attempts),
                n(&s.delivered),
                n(&s.failed),
                n(&s.retries),
                n(&s.purged),
            )
        }
        _ => (None, None, None, 0, 0, 0, 0, 0, 0),
    };
    TableIterator::once(row)
}

/// What the worker last had to say (the last problem it logged, and when), and the pid that
/// holds a lock it is waiting for, if any (worker_status() shows them).
#[pg_extern(volatile, parallel_safe)]
#[allow(clippy::type_complexity)]
fn _worker_state() -> TableIterator<
    'static,
    (
        name!(last_error, Option<String>),
        name!(last_error_at_us, Option<i64>),
        name!(waiting_for_pid, Option<i32>),
    ),
> {
    let row = match wake::stats() {
        Some(s) => {
            let (error, at) = s.last_error.get().unzip();
            let blocked = s.blocked_by.load(Ordering::Relaxed);
            (error, at, (blocked != 0).then_some(blocked))
        }
        None => (None, None, None),
    };
    TableIterator::once(row)
}

fn raise(code: PgSqlErrorCode, message: String, hint: &str) -> ! {
    ErrorReport::new(code, message, "preview")
        .set_hint(hint)
        .report(PgLogLevel::ERROR);
    unreachable!("ERROR does not return")
}

/// What would be sent to `subscription` for event `event_id`, without sending: the URL's
/// secrets, the authorization, the custom header values and the signature are masked (a
/// signature would let whoever may preview mint signed webhooks). preview() wraps this
/// (headers as jsonb). Runs as the extension's owner, with its search_path pinned.
#[pg_extern(volatile)]
#[search_path(pg_catalog, pg_temp)]
#[allow(clippy::type_complexity)]
fn _preview(
    subscription: &str,
    event_id: i64,
) -> TableIterator<
    'static,
    (
        name!(method, String),
        name!(url, String),
        name!(headers, String),
        name!(body, String),
    ),
> {
    let found = Spi::connect(|client| {
        let rows = client.select(
            "SELECT url, content_type, \"authorization\", headers::text, body_template,
                    signing_secrets, id
               FROM unleash_webhook._subscriptions WHERE name = $1 AND dropped_at IS NULL",
            Some(1),
            &[subscription.into()],
        )?;
        let mut out = None;
        for row in rows {
            out = Some((
                row.get::<String>(1)?.unwrap_or_default(),
                row.get::<String>(2)?.unwrap_or_default(),
                row.get::<String>(3)?,
                row.get::<String>(4)?.unwrap_or_else(|| "{}".into()),
                row.get::<String>(5)?,
                row.get::<Vec<String>>(6)?.unwrap_or_default(),
                row.get::<i64>(7)?.unwrap_or_default(),
            ));
        }
        Ok::<_, pgrx::spi::Error>(out)
    });
    let Ok(Some((url, content_type, auth, headers_json, template, secrets, sub_id))) = found else {
        raise(
            PgSqlErrorCode::ERRCODE_UNDEFINED_OBJECT,
            format!("subscription \"{subscription}\" does not exist"),
            "SELECT name FROM unleash_webhook.subscriptions lists them.",
        )
    };
    let sub = Subscription::new(
        url,
        content_type,
        auth,
        &headers_json,
        template.as_deref(),
        &secrets,
    );
    let Some(row) = find_event(event_id) else {
        raise(
            PgSqlErrorCode::ERRCODE_UNDEFINED_OBJECT,
            format!("event {event_id} does not exist in any attached events table"),
            "Tables are attached with unleash_webhook.attach(); SELECT id FROM events ORDER BY id DESC LIMIT 10 lists recent events.",
        )
    };
    let installation = queue::installation_id().unwrap_or_default();
    let webhook_id = format!("msg_{installation}_preview_{sub_id}_{event_id}");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0));
    let ctx = Context {
        webhook_id_prefix: &webhook_id,
        timestamp: now,
        unleash_url: &gucs::unleash_url(),
    };
    let request = match request::build(&sub, &row, &ctx) {
        Ok(built) => built.request,
        Err(e) => raise(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!("the body cannot be rendered: {}", e.0),
            "Fix the subscription's body_template with alter_subscription().",
        ),
    };
    let masked: Vec<(String, Value)> = request
        .headers
        .iter()
        .map(|(name, value)| {
            let secret = name.eq_ignore_ascii_case("authorization")
                || name.eq_ignore_ascii_case("webhook-signature")
                || sub
                    .headers
                    .iter()
                    .any(|(n, _)| n.eq_ignore_ascii_case(name));
            let shown = if secret {
                "***".to_string()
            } else {
                value.clone()
            };
            (name.clone(), Value::String(shown))
        })
        .collect();
    let body = String::from_utf8_lossy(&request.body).into_owned();
    TableIterator::once((
        "POST".to_string(),
        crate::http::masked_url(&request.url),
        stringify(&Value::Object(masked)),
        body,
    ))
}

/// The event `id` from the first attached events table that has it.
fn find_event(id: i64) -> Option<EventRow> {
    let tables: Vec<pg_sys::Oid> = Spi::connect(|client| {
        let rows = client.select(
            "SELECT oid FROM unleash_webhook._event_tables() AS t(oid)",
            None,
            &[],
        )?;
        let mut out = Vec::new();
        for row in rows {
            if let Some(oid) = row.get::<pg_sys::Oid>(1)? {
                out.push(oid);
            }
        }
        Ok::<_, pgrx::spi::Error>(out)
    })
    .unwrap_or_default();
    tables.into_iter().find_map(|t| {
        queue::read_events(None, t, &[id])
            .ok()
            .and_then(|mut m| m.remove(&id))
    })
}
