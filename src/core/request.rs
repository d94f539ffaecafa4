//! From a subscription and an events row to the exact HTTP request Unleash would send.
//!
//! Body: the Unleash event JSON, or the subscription's Mustache template rendered with
//! `{ event, eventJson, eventMarkdown }` when the template is longer than one character (the
//! rule Unleash applies; eventMarkdown goes in as Unleash 8.0.3+ puts it: JSON-escaped inside a
//! double-quoted string of the output, raw elsewhere). Headers, in this order: Content-Type,
//! Authorization when set, the custom headers (a custom header replaces an earlier one of the
//! same name, as in Unleash), then ours: `webhook-id` (the same on every attempt of a
//! delivery) and, for a subscription with signing secrets, the Standard Webhooks
//! `webhook-timestamp` and `webhook-signature`.
//! No pgrx in here.

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
    pub webhook_id: &'a str,
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

/// Why no request could be built; recorded as a failed attempt without any HTTP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderFailure(pub String);

/// Builds the request for one delivery.
pub fn build(
    sub: &Subscription,
    row: &EventRow,
    ctx: &Context<'_>,
) -> Result<Request, RenderFailure> {
    let body = render_body(sub, row, ctx.unleash_url)?;
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
    headers.push(("webhook-id".to_string(), ctx.webhook_id.to_string()));
    if !sub.signing_keys.is_empty() {
        let signature = signature_header(
            ctx.webhook_id,
            ctx.timestamp,
            body.as_bytes(),
            &sub.signing_keys,
        );
        headers.push(("webhook-timestamp".to_string(), ctx.timestamp.to_string()));
        headers.push(("webhook-signature".to_string(), signature));
    }
    Ok(Request {
        url: sub.url.clone(),
        headers,
        body: body.into_bytes(),
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
