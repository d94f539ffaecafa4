//! From a subscription and an events row to the exact HTTP request Unleash would send.
//!
//! Body: the Unleash event JSON, or the subscription's Mustache template rendered with
//! `{ event, eventJson, eventMarkdown }` when the template is longer than one character (the
//! rule Unleash applies; eventMarkdown goes in as Unleash 8.0.3+ puts it: JSON-escaped inside a
//! double-quoted string of the output, raw elsewhere). Headers, in this order: Content-Type,
//! Authorization when set, the custom headers (a custom header replaces an earlier one of the
//! same name, as in Unleash), then ours: `webhook-id` and, for a subscription with signing
//! secrets, the Standard Webhooks `webhook-timestamp` and `webhook-signature`.
//!
//! The webhook-id is `msg_<installation>_<delivery id>_<content hash>`: the delivery id is fixed
//! when the event is captured, and the hash is of what the request says (URL, content type,
//! body). So a retry or redelivery of the same request carries the same id, and an id never
//! names two different requests: not after a subscription changed, and not after a crash or
//! failover lost the transaction that captured an event whose delivery had already gone out
//! (its id may then be drawn again for another event, whose body differs).

use crate::core::event_json::{EventRow, event_json, event_value, template_view};
use crate::core::js::{Value, parse_json};
use crate::core::markdown::{PLACEHOLDER, event_markdown, substitute_markdown};
use crate::core::signing::{parse_secret, signature_header};
use crate::core::template::Template;
use crate::http::Request;
use std::sync::Arc;

/// A subscription as the worker needs it to build requests; built once per change.
pub struct Subscription {
    pub url: String,
    pub content_type: String,
    pub authorization: Option<String>,
    pub headers: Vec<(String, String)>,
    /// `None`: the default body. `Some(Err)`: a template that no longer compiles (it was
    /// checked when stored, so only a change of engine could do this); deliveries fail.
    pub template: Option<Result<Arc<Template>, String>>,
    /// Decoded Standard Webhooks keys, newest first (two during a rotation).
    pub signing_keys: Vec<Vec<u8>>,
}

/// What a request needs besides the subscription and the event.
pub struct Context<'a> {
    /// `msg_<installation>_<delivery id>`; the content hash is appended.
    pub webhook_id_prefix: &'a str,
    /// Unix seconds, for `webhook-timestamp`.
    pub timestamp: i64,
    /// Unleash's URL, for the links in eventMarkdown.
    pub unleash_url: &'a str,
}

impl Subscription {
    /// Builds from the stored columns; `headers_json` is the jsonb object as text.
    pub fn new(
        url: String,
        content_type: String,
        authorization: Option<String>,
        headers_json: &str,
        body_template: Option<&str>,
        signing_secrets: &[String],
    ) -> Subscription {
        let headers = match parse_json(headers_json) {
            Ok(Value::Object(fields)) => fields
                .into_iter()
                .filter_map(|(k, v)| match v {
                    Value::String(s) => Some((k, s)),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        };
        let template = body_template.filter(|t| t.chars().count() > 1).map(|t| {
            Template::compile(t)
                .map(Arc::new)
                .map_err(|e| e.to_string())
        });
        // Secrets were checked when stored; one that no longer parses signs nothing.
        let signing_keys = signing_secrets
            .iter()
            .filter_map(|s| parse_secret(s).ok())
            .collect();
        Subscription {
            url,
            content_type,
            authorization,
            headers,
            template,
            signing_keys,
        }
    }
}

/// Everything of a subscription that is secret, as strings to scrub from what an endpoint sends
/// back (an echo of the request) before it is stored: the authorization, the custom header
/// values, the signing secrets (with and without `whsec_`), and the URL's password, path
/// segments and query values (where Slack, Teams and the like carry theirs).
pub fn secret_values(
    url: &str,
    authorization: Option<&str>,
    headers_json: &str,
    signing_secrets: &[String],
) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    out.extend(authorization.map(str::to_string));
    if let Ok(Value::Object(fields)) = parse_json(headers_json) {
        out.extend(fields.into_iter().filter_map(|(_, v)| match v {
            Value::String(s) => Some(s),
            _ => None,
        }));
    }
    for secret in signing_secrets {
        out.push(secret.clone());
        out.extend(secret.strip_prefix("whsec_").map(str::to_string));
    }
    if let Some((_, rest)) = url.split_once("://") {
        let (authority, tail) = rest.split_at(rest.find(['/', '?', '#']).unwrap_or(rest.len()));
        if let Some((userinfo, _)) = authority.rsplit_once('@') {
            out.extend(userinfo.split_once(':').map(|(_, pw)| pw.to_string()));
        }
        let tail = tail.split('#').next().unwrap_or("");
        if !tail.is_empty() && tail != "/" {
            out.push(tail.to_string());
        }
        let (path, query) = tail.split_once('?').unwrap_or((tail, ""));
        out.extend(
            path.split('/')
                .filter(|s| !s.is_empty())
                .map(str::to_string),
        );
        out.extend(
            query
                .split('&')
                .filter_map(|f| f.split_once('=').map(|(_, v)| v.to_string())),
        );
    }
    // longest first: a secret containing another is masked whole
    out.sort_by_key(|s| std::cmp::Reverse(s.len()));
    out.dedup();
    out
}

/// Why no request could be built; recorded as a failed attempt without any HTTP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderFailure(pub String);

/// A request, and the hash its webhook-id ends with.
pub struct Built {
    pub request: Request,
    pub content_hash: i64,
}

/// The first 64 bits of SHA-256 over what makes a request this request: where it goes, how its
/// body is to be read, and the body.
pub fn content_hash(url: &str, content_type: &str, body: &[u8]) -> i64 {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for part in [url.as_bytes(), b"\n", content_type.as_bytes(), b"\n", body] {
        ctx.update(part);
    }
    let digest = ctx.finish();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest.as_ref()[..8]);
    i64::from_be_bytes(first)
}

/// Builds the request for one delivery.
pub fn build(
    sub: &Subscription,
    row: &EventRow,
    ctx: &Context<'_>,
) -> Result<Built, RenderFailure> {
    let body = render_body(sub, row, ctx.unleash_url)?;
    let hash = content_hash(&sub.url, &sub.content_type, body.as_bytes());
    let webhook_id = format!("{}_{:016x}", ctx.webhook_id_prefix, hash);
    let mut headers: Vec<(String, String)> = Vec::with_capacity(5 + sub.headers.len());
    headers.push(("Content-Type".to_string(), sub.content_type.clone()));
    if let Some(auth) = &sub.authorization {
        headers.push(("Authorization".to_string(), auth.clone()));
    }
    for (name, value) in &sub.headers {
        headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        headers.push((name.clone(), value.clone()));
    }
    // Ours last, and never overridable: a receiver must be able to trust them.
    headers.retain(|(n, _)| !n.to_ascii_lowercase().starts_with("webhook-"));
    if !sub.signing_keys.is_empty() {
        let signature = signature_header(
            &webhook_id,
            ctx.timestamp,
            body.as_bytes(),
            &sub.signing_keys,
        );
        headers.push(("webhook-id".to_string(), webhook_id));
        headers.push(("webhook-timestamp".to_string(), ctx.timestamp.to_string()));
        headers.push(("webhook-signature".to_string(), signature));
    } else {
        headers.push(("webhook-id".to_string(), webhook_id));
    }
    Ok(Built {
        request: Request {
            url: sub.url.clone(),
            headers,
            body: body.into_bytes(),
        },
        content_hash: hash,
    })
}

/// The body alone.
pub fn render_body(
    sub: &Subscription,
    row: &EventRow,
    unleash_url: &str,
) -> Result<String, RenderFailure> {
    let json = event_json(row).map_err(|e| RenderFailure(e.to_string()))?;
    match &sub.template {
        None => Ok(json),
        Some(Err(e)) => Err(RenderFailure(format!(
            "body_template does not compile: {e}"
        ))),
        Some(Ok(template)) => {
            let event = event_value(row).map_err(|e| RenderFailure(e.to_string()))?;
            let markdown = event_markdown(&event, unleash_url);
            let view = template_view(event, &json, PLACEHOLDER);
            let rendered = template
                .render(&view)
                .map_err(|e| RenderFailure(format!("body_template failed: {}", e.js_message())))?;
            let body = substitute_markdown(&rendered, &markdown);
            // PostgreSQL text cannot hold U+0000 (a raw {{{x}}} of "\u0000" in event data):
            // send what can be stored and previewed, the same bytes everywhere.
            Ok(if body.contains('\0') {
                body.replace('\0', "\u{FFFD}")
            } else {
                body
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(url: &str, template: Option<&str>) -> Subscription {
        Subscription::new(
            url.into(),
            "application/json".into(),
            None,
            "{}",
            template,
            &[],
        )
    }

    fn row(id: i64) -> EventRow {
        EventRow {
            id,
            event_type: "feature-created".into(),
            created_by: "admin".into(),
            created_at_us: Some(1_795_729_242_045_794),
            ..Default::default()
        }
    }

    fn id_of(b: &Built) -> &str {
        &b.request
            .headers
            .iter()
            .find(|(n, _)| n == "webhook-id")
            .unwrap()
            .1
    }

    #[test]
    fn secret_values_of_a_subscription() {
        let got = secret_values(
            "https://u:pw0rd@hooks.slack.com/services/T1/B2SECRET?token=QSECRET#frag",
            Some("Bearer AUTH"),
            r#"{"X-Key": "HDR1", "X-N": 5}"#,
            &["whsec_KEYKEY".to_string()],
        );
        for want in [
            "Bearer AUTH",
            "HDR1",
            "whsec_KEYKEY",
            "KEYKEY",
            "pw0rd",
            "B2SECRET",
            "QSECRET",
        ] {
            assert!(got.iter().any(|s| s == want), "{want} missing from {got:?}");
        }
        assert!(
            !got.iter()
                .any(|s| s.contains("frag") || s == "hooks.slack.com"),
            "{got:?}"
        );
    }

    #[test]
    fn webhook_id_names_one_request() {
        let ctx = Context {
            webhook_id_prefix: "msg_inst_7001",
            timestamp: 1,
            unleash_url: "http://localhost:4242",
        };
        let a = build(&sub("https://a.example/h", None), &row(1), &ctx).unwrap();
        // the same request again (a retry, a redelivery, a restart): the same id
        let again = build(&sub("https://a.example/h", None), &row(1), &ctx).unwrap();
        assert_eq!(id_of(&a), id_of(&again));
        assert!(id_of(&a).starts_with("msg_inst_7001_"), "{}", id_of(&a));
        assert_eq!(id_of(&a).len(), "msg_inst_7001_".len() + 16);
        // another event under the same delivery id (drawn again after a lost transaction),
        // another body (an altered template) or another URL: another id
        let other_event = build(&sub("https://a.example/h", None), &row(2), &ctx).unwrap();
        let other_body = build(
            &sub("https://a.example/h", Some("{{event.id}}!")),
            &row(1),
            &ctx,
        )
        .unwrap();
        let other_url = build(&sub("https://b.example/h", None), &row(1), &ctx).unwrap();
        for other in [&other_event, &other_body, &other_url] {
            assert_ne!(id_of(&a), id_of(other));
        }
        assert_eq!(
            a.content_hash,
            content_hash("https://a.example/h", "application/json", &a.request.body)
        );
    }
}
