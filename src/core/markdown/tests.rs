//! The one-line Markdown summary of an event that Unleash offers body templates as
//! `{{eventMarkdown}}`, byte for byte, and Unleash's rule for putting it into a rendered body.
//!
//! Unleash's webhook computes `eventMarkdown` with `FeatureEventFormatterMd` (Unleash 8.1,
//! `src/lib/addons/feature-event-formatter-md.ts`, with its defaults: Markdown links, `*bold*`).
//! Users' templates already depend on those exact bytes, so this is a port of that class, not a
//! reimplementation of its intent:
//!
//! - Known event types have a Mustache message and link path (`EVENT_MAP` in
//!   `feature-event-formatter-md-events.ts`, copied verbatim below); other types fall back to
//!   `*<createdBy>* triggered *<type>*`, which Unleash *also* renders as a Mustache template.
//! - Unleash renders these messages with mustache.js and an identity `escape`, so `{{x}}` prints
//!   `String(x)` without HTML escaping. [`crate::core::template`] always HTML-escapes `{{x}}`, so every
//!   message is first rewritten to use `{{&x}}` for its escaped-variable tags (by a scan that
//!   follows mustache.js's own); everything else (lookups, `String(v)`, parsing) is
//!   mustache.js's.
//! - The helper texts (links, the strategy-change description with its constraints and
//!   segments) are JavaScript template literals over loosely typed event data. They are
//!   reproduced with JavaScript's semantics on [`Value`]: `undefined` (a missing key) differs
//!   from `null` (`project = ''` defaults only the former, so a `null` project prints
//!   `projects/null`), truthiness, `===`, `String(v)` (`undefined`, `[object Object]`, arrays
//!   joined with `,`), and the places where Unleash's code throws a `TypeError` on odd data
//!   (e.g. `preData.parameters` missing on a `remoteAddress` strategy update). When Unleash
//!   throws, its webhook sends nothing; [`try_event_markdown`] reports that as an error.
//!
//! Nothing here panics, on any input.

use std::fmt;

use crate::core::js::{self, Value};
use crate::core::template::{Template, is_js_space};

/// Stands for `eventMarkdown` while a body template is rendered; Unleash 8.0.3+ renders with
/// this value and substitutes the Markdown afterwards (see [`substitute_markdown`]).
pub const PLACEHOLDER: &str = "\0UNLEASH_EVENT_MARKDOWN\0";

/// The exception Unleash's formatter would throw for this event (its webhook then sends
/// nothing for it). `message` is JavaScript's `String(error)`, e.g.
/// `TypeError: Cannot read properties of undefined (reading 'IPs')`; V8's wording is followed
/// where it is cheap to, but only the fact that it throws is exact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarkdownError {
    /// `String(error)` as Node would print it.
    pub message: String,
}

impl fmt::Display for MarkdownError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for MarkdownError {}

fn type_error(message: impl fmt::Display) -> MarkdownError {
    MarkdownError {
        message: format!("TypeError: {message}"),
    }
}

/// `Cannot read properties of null (reading 'x')`: a property read on `null`/`undefined`.
fn read_error(receiver: Option<&Value>, key: &str) -> MarkdownError {
    let what = if receiver.is_some() {
        "null"
    } else {
        "undefined"
    };
    type_error(format_args!(
        "Cannot read properties of {what} (reading '{key}')"
    ))
}

/// What `FeatureEventFormatterMd.format(event)` returns (`IFormattedEventData`). The webhook
/// uses only `text`; `label` and `url` are kept for parity with Unleash (and its tests).
#[allow(dead_code)] // the extension reads only `text`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormattedEvent {
    /// A short title: the event map's label, or the event type itself for unknown types.
    pub label: String,
    /// The Markdown line (`eventMarkdown`).
    pub text: String,
    /// A link to the affected object; `None` for unknown types.
    pub url: Option<String>,
}

/// The Markdown line Unleash's FeatureEventFormatterMd produces for `event` (the event object as
/// event_json::event_value builds it, createdAt as an ISO string or null), with links built from
/// `unleash_url` (e.g. "http://localhost:4242", no trailing slash handling surprises: match Unleash).
///
/// `unleash_url` is pasted in front of every path verbatim, as Unleash does (a trailing `/`
/// gives `//projects/...`).
///
/// For the rare events on which Unleash's formatter throws (so that Unleash would send no
/// webhook at all, see [`try_event_markdown`]), this returns Unleash's generic fallback line
/// `*<createdBy>* triggered *<type>*` printed without Mustache, so that callers who only want
/// text always get some.
pub fn event_markdown(event: &Value, unleash_url: &str) -> String {
    try_event_markdown(event, unleash_url).unwrap_or_else(|_| {
        let user = event.get("createdBy");
        let ty = event.get("type");
        let show = |v: Option<&Value>| match v {
            Some(v) if v.is_truthy() => format!("*{}*", js::to_display_string(v)),
            _ => "*".to_string(),
        };
        format!("{} triggered {}", show(user), show(ty))
    })
}

/// [`event_markdown`], or the error where Unleash's formatter throws (Unleash's webhook then
/// fails for this event and sends nothing).
pub fn try_event_markdown(event: &Value, unleash_url: &str) -> Result<String, MarkdownError> {
    format_event(event, unleash_url).map(|f| f.text)
}

/// `new FeatureEventFormatterMd({ unleashUrl }).format(event)`: label, Markdown text and link.
pub fn format_event(event: &Value, unleash_url: &str) -> Result<FormattedEvent, MarkdownError> {
    // `const { createdBy, type } = event` throws only on null/undefined.
    if matches!(event, Value::Null) {
        return Err(type_error(
            "Cannot destructure property 'createdBy' of 'event' as it is null.",
        ));
    }
    let f = Formatter {
        event,
        url: unleash_url,
    };
    let created_by = event.get("createdBy");
    let ty = event.get("type");

    // `EVENT_MAP[type] || { label: type, action: ... }`: an ordinary property lookup, so the
    // names Object.prototype provides find a function (or the prototype) instead of an entry.
    // Destructuring that gives `action === undefined`, and Mustache.render throws on it.
    let key = js_string(ty)?;
    let (label, action, path) = match EVENT_MAP.iter().find(|e| e.event_type == key) {
        Some(e) => (e.label.to_string(), e.action.to_string(), Some(e.path)),
        None if OBJECT_PROTOTYPE_KEYS.contains(&key.as_str()) => {
            return Err(type_error(
                "Invalid template! Template should be a \"string\" but \"undefined\" was given \
                 as the first argument for mustache#render(template, view, partials)",
            ));
        }
        None => {
            let action = format!("{} triggered {}", bold(created_by)?, bold(ty)?);
            (
                ty.map_or_else(String::new, js::to_display_string),
                action,
                None,
            )
        }
    };

    // The Mustache view, built in the order Unleash evaluates it. A JavaScript `undefined` is
    // left out: mustache.js prints nothing for it, as for a missing key.
    let strategy_title = f.strategy_title();
    let strategy_change = f.strategy_change_text()?;
    let change_request = f.change_request_link()?;
    let feature = f.feature_link_md()?;
    let project = f.project_link_md()?;
    let mut view: Vec<(String, Value)> = Vec::with_capacity(8);
    let mut put = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            view.push((k.to_string(), v));
        }
    };
    put("user", created_by.cloned());
    put("event", Some(view_event(event)));
    put("strategyTitle", strategy_title.cloned());
    put("strategyChangeText", strategy_change.map(Value::String));
    put("changeRequest", change_request.map(Value::String));
    put("feature", feature.map(Value::String));
    put("project", project.map(Value::String));
    put("b", Some(Value::String(BOLD.to_string())));
    let view = Value::Object(view);

    let text = render(&action, &view)?;
    let url = match path {
        Some(p) => Some(format!("{unleash_url}{}", render(p, &view)?)),
        None => None,
    };
    Ok(FormattedEvent { label, text, url })
}

/// Unleash 8.0.3+'s rule for putting eventMarkdown into a rendered template: render the template
/// with eventMarkdown = PLACEHOLDER, then replace each placeholder occurrence by the Markdown,
/// JSON-escaped (JSON.stringify(md).slice(1,-1)) when the occurrence sits inside a double-quoted
/// string of the rendered text (see isInsideDoubleQuotedString in webhook.ts), raw otherwise.
///
/// Occurrences are found left to right without overlap (`String.prototype.replaceAll`), and
/// each is judged on the rendered text before any replacement. The quote state is a scan from
/// the start that toggles on `"` and skips the character after a `\`; it ignores everything
/// else, so scanning bytes gives the same answer as JavaScript's scan over UTF-16 units (both
/// characters are ASCII, and UTF-8 continuation bytes never are). The Markdown is inserted
/// literally (a replacer function: no `$&` patterns).
pub fn substitute_markdown(rendered: &str, markdown: &str) -> String {
    let mut escaped_md = String::with_capacity(markdown.len() + 2);
    js::quote_json_string(markdown, &mut escaped_md);
    // Drop the quotes JSON.stringify added; both are one byte.
    let escaped_md = escaped_md
        .get(1..escaped_md.len().saturating_sub(1))
        .unwrap_or_default();

    let mut out = String::with_capacity(rendered.len() + markdown.len());
    let mut in_string = false;
    let mut escaped = false;
    let mut scanned = 0; // bytes of `rendered` the quote state has seen
    let mut copied = 0; // bytes of `rendered` already in `out`
    for (at, _) in rendered.match_indices(PLACEHOLDER) {
        for &b in rendered.as_bytes().get(scanned..at).unwrap_or_default() {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = !in_string;
            }
        }
        scanned = at;
        out.push_str(rendered.get(copied..at).unwrap_or_default());
        out.push_str(if in_string { escaped_md } else { markdown });
        copied = at + PLACEHOLDER.len();
    }
    out.push_str(rendered.get(copied..).unwrap_or_default());
    out
}

// ---------------------------------------------------------------------------------------------
// The formatter.
// ---------------------------------------------------------------------------------------------

/// `this.bold()` with the default `formatStyle: 'simple'`.
const BOLD: &str = "*";

/// `bold(text)`: `*text*` when `text` is truthy, else a lone `*`.
fn bold(text: Option<&Value>) -> Result<String, MarkdownError> {
    if truthy(text) {
        Ok(format!("{BOLD}{}{BOLD}", js_string(text)?))
    } else {
        Ok(BOLD.to_string())
    }
}

/// `bold(text)` for a string the formatter built itself.
fn bold_str(text: &str) -> String {
    if text.is_empty() {
        BOLD.to_string()
    } else {
        format!("{BOLD}{text}{BOLD}")
    }
}

/// Renders one of the formatter's messages as Unleash does: mustache.js with an identity
/// `escape`, i.e. no HTML escaping anywhere.
fn render(template: &str, view: &Value) -> Result<String, MarkdownError> {
    let js_error = |e: crate::core::template::TemplateError| MarkdownError {
        message: e.js_message(),
    };
    // The rewrite changes no tag's kind but `name`, so it compiles exactly when the original
    // does. Parse errors come from the original, so that their positions are mustache.js's
    // (the inserted `&`s would shift them); so do those where the scan gave up.
    let compiled = match raw_variable_tags(template).map(|raw| Template::compile(&raw)) {
        Some(Ok(t)) => t,
        _ => Template::compile(template).map_err(js_error)?,
    };
    compiled.render(view).map_err(js_error)
}

/// The event as Unleash's formatter sees it: `createdAt` is a `Date` there (only a template
/// smuggled into `createdBy`/`type` of an unknown event could print it).
fn view_event(event: &Value) -> Value {
    crate::core::event_json::with_created_at_date(event.clone())
}

/// The formatter's state: the event and `this.unleashUrl` (link style Markdown, bold `*`).
struct Formatter<'a> {
    event: &'a Value,
    url: &'a str,
}

impl<'a> Formatter<'a> {
    /// `event.<key>`; `None` is JavaScript's `undefined` (the key is missing).
    fn field(&self, key: &str) -> Option<&'a Value> {
        self.event.get(key)
    }

    fn is_type(&self, ty: &str) -> bool {
        matches!(self.field("type"), Some(Value::String(s)) if s == ty)
    }

    /// `generateChangeRequestLink`: `*[#id](url)*` plus the flag, environment and project it is
    /// for, when the event has a project and `data`/`preData` a truthy `changeRequestId`.
    fn change_request_link(&self) -> Result<Option<String>, MarkdownError> {
        let data = self.field("data");
        let pre = self.field("preData");
        let project = self.field("project");
        let environment = self.field("environment");
        let id = match opt_prop(data, "changeRequestId") {
            v if truthy(v) => v,
            _ => opt_prop(pre, "changeRequestId"),
        };
        if !(truthy(project) && truthy(id)) {
            return Ok(None);
        }
        let project_s = js_string(project)?;
        let id_s = js_string(id)?;
        let url = format!("{}/projects/{project_s}/change-requests/{id_s}", self.url);
        let text = format!("#{id_s}");
        let feature_text = match self.feature_link_md()? {
            Some(link) => format!(" for feature flag {}", bold_str(&link)),
            None => String::new(),
        };
        let environment_text = if truthy(environment) {
            format!(" in the {} environment", bold(environment)?)
        } else {
            String::new()
        };
        // `project` is truthy here, so the project link exists.
        let project_link = self.project_link_md()?.unwrap_or_default();
        let project_text = format!(" in project {}", bold_str(&project_link));
        Ok(Some(format!(
            "{}{feature_text}{environment_text}{project_text}",
            bold_str(&format!("[{text}]({url})"))
        )))
    }

    /// `featureLink`: the archive for archived flags, else the flag's page when it has a name.
    fn feature_url(&self) -> Result<Option<String>, MarkdownError> {
        // `const { project = '' } = event`: the default replaces `undefined` only, so a `null`
        // project prints as "null" below.
        let project = match self.field("project") {
            None => String::new(),
            p => js_string(p)?,
        };
        if self.is_type(FEATURE_ARCHIVED) {
            return Ok(Some(if truthy(self.field("project")) {
                format!("{}/projects/{project}/archive", self.url)
            } else {
                format!("{}/archive", self.url)
            }));
        }
        let name = self.field("featureName");
        if truthy(name) {
            return Ok(Some(format!(
                "{}/projects/{project}/features/{}",
                self.url,
                js_string(name)?
            )));
        }
        Ok(None)
    }

    /// `generateFeatureLink`: `[name](featureLink)` when the event names a flag.
    fn feature_link_md(&self) -> Result<Option<String>, MarkdownError> {
        let name = self.field("featureName");
        if !truthy(name) {
            return Ok(None);
        }
        let name = js_string(name)?;
        // Never undefined once featureName is truthy; JavaScript would print "undefined".
        let link = self
            .feature_url()?
            .unwrap_or_else(|| "undefined".to_string());
        Ok(Some(format!("[{name}]({link})")))
    }

    /// `generateProjectLink`: `[project](url/projects/project)` when the event has a project.
    fn project_link_md(&self) -> Result<Option<String>, MarkdownError> {
        let project = self.field("project");
        if !truthy(project) {
            return Ok(None);
        }
        let p = js_string(project)?;
        Ok(Some(format!("[{p}]({}/projects/{p})", self.url)))
    }

    /// `getStrategyTitle`: `preData?.title || data?.title || preData?.name || data?.name`,
    /// which yields the last operand (possibly `undefined`, `null`, `""`...) when none is truthy.
    fn strategy_title(&self) -> Option<&'a Value> {
        let pre = self.field("preData");
        let data = self.field("data");
        [
            opt_prop(pre, "title"),
            opt_prop(data, "title"),
            opt_prop(pre, "name"),
        ]
        .into_iter()
        .find(|v| truthy(*v))
        .unwrap_or_else(|| opt_prop(data, "name"))
    }

    /// `generateFeatureStrategyChangeText`: only for `feature-strategy-update` events with
    /// `data` or `preData`; picks a description by the strategy's name.
    fn strategy_change_text(&self) -> Result<Option<String>, MarkdownError> {
        let data = self.field("data");
        let pre = self.field("preData");
        if !self.is_type(FEATURE_STRATEGY_UPDATE) {
            return Ok(None);
        }
        let strategy = if truthy(data) { data } else { pre };
        if !truthy(strategy) {
            return Ok(None);
        }
        let text = match opt_prop(strategy, "name") {
            Some(Value::String(s)) if s == "flexibleRollout" => self.flexible_rollout_text()?,
            Some(Value::String(s)) if s == "default" => self.default_strategy_text()?,
            Some(Value::String(s)) if s == "remoteAddress" => self.list_of_values_text("IPs")?,
            Some(Value::String(s)) if s == "applicationHostname" => {
                self.list_of_values_text("hostNames")?
            }
            _ => self.strategy_heading()?,
        };
        Ok(Some(text))
    }

    /// `by updating strategy *<title>* in *<environment>*`, the start of every description.
    fn strategy_heading(&self) -> Result<String, MarkdownError> {
        Ok(format!(
            "by updating strategy {} in {}",
            bold(self.strategy_title())?,
            bold(self.field("environment"))?
        ))
    }

    /// The heading followed by the non-empty detail texts joined with `;` (each detail starts
    /// with a space).
    fn with_details(&self, details: &[String]) -> Result<String, MarkdownError> {
        let details: Vec<&str> = details
            .iter()
            .map(String::as_str)
            .filter(|s| !s.is_empty())
            .collect();
        Ok(format!("{}{}", self.strategy_heading()?, details.join(";")))
    }

    /// `constraintChangeText(preData?.constraints, data?.constraints)`.
    fn constraints_text(&self) -> Result<String, MarkdownError> {
        let old = format_constraints(opt_prop(self.field("preData"), "constraints"))?;
        let new = format_constraints(opt_prop(self.field("data"), "constraints"))?;
        Ok(if old == new {
            String::new()
        } else {
            format!(" constraints from {old} to {new}")
        })
    }

    /// `segmentsChangeText(preData?.segments, data?.segments)`.
    fn segments_text(&self) -> Result<String, MarkdownError> {
        let old = format_segments(opt_prop(self.field("preData"), "segments"))?;
        let new = format_segments(opt_prop(self.field("data"), "segments"))?;
        Ok(if old == new {
            String::new()
        } else {
            format!(" segments from {old} to {new}")
        })
    }

    /// `flexibleRolloutStrategyChangeText`: stickiness, rollout (with `%`) and groupId changes,
    /// then constraints and segments.
    fn flexible_rollout_text(&self) -> Result<String, MarkdownError> {
        // `const { rollout, ... } = preData?.parameters || {}`: a falsy value reads from `{}`;
        // a truthy primitive destructures to undefined properties, like `Value::get` gives.
        let params = |v: Option<&'a Value>| match opt_prop(v, "parameters") {
            p if truthy(p) => p,
            _ => None,
        };
        let old = params(self.field("preData"));
        let new = params(self.field("data"));
        let change = |key: &str, suffix: &str| -> Result<String, MarkdownError> {
            let (o, n) = (opt_prop(old, key), opt_prop(new, key));
            Ok(if strict_equals(o, n) {
                String::new()
            } else if !truthy(o) {
                format!(" {key} to {}{suffix}", js_string(n)?)
            } else {
                format!(
                    " {key} from {}{suffix} to {}{suffix}",
                    js_string(o)?,
                    js_string(n)?
                )
            })
        };
        let details = [
            change("stickiness", "")?,
            change("rollout", "%")?,
            change("groupId", "")?,
            self.constraints_text()?,
            self.segments_text()?,
        ];
        self.with_details(&details)
    }

    /// `defaultStrategyChangeText`: constraints and segments only.
    fn default_strategy_text(&self) -> Result<String, MarkdownError> {
        let details = [self.constraints_text()?, self.segments_text()?];
        self.with_details(&details)
    }

    /// `listOfValuesStrategyChangeText` (remoteAddress `IPs`, applicationHostname `hostNames`):
    /// the parameter's change, then constraints and segments.
    fn list_of_values_text(&self, name: &str) -> Result<String, MarkdownError> {
        let pre = self.field("preData");
        let data = self.field("data");
        // `preData?.parameters[name]`: `?.` spares a null/undefined preData, but not a missing
        // `parameters`.
        let param = |v: Option<&'a Value>| -> Result<Option<&'a Value>, MarkdownError> {
            match v {
                None | Some(Value::Null) => Ok(None),
                Some(v) => match v.get("parameters") {
                    p @ (None | Some(Value::Null)) => Err(read_error(p, name)),
                    Some(p) => Ok(p.get(name)),
                },
            }
        };
        // `values.length === 0 ? 'empty set of <name>' : `[${values}]``.
        let values_text = |values: Option<&Value>| -> Result<String, MarkdownError> {
            Ok(if length_is_zero(values)? {
                format!("empty set of {name}")
            } else {
                format!("[{}]", js_string(values)?)
            })
        };
        let old = param(pre)?;
        let new = param(data)?;
        let values_change = if strict_equals(old, new) {
            String::new()
        } else if !truthy(pre) {
            format!(" {name} to {}", values_text(new)?)
        } else {
            format!(
                " {name} from {} to {}",
                values_text(old)?,
                values_text(new)?
            )
        };
        let details = [
            values_change,
            self.constraints_text()?,
            self.segments_text()?,
        ];
        self.with_details(&details)
    }
}

/// `formatConstraints` (with the parameter default `= []`, which replaces `undefined` only).
fn format_constraints(list: Option<&Value>) -> Result<String, MarkdownError> {
    const EMPTY: &str = "empty set of constraints";
    let Some(list) = list else {
        return Ok(EMPTY.to_string());
    };
    if length_is_zero(Some(list))? {
        return Ok(EMPTY.to_string());
    }
    let Value::Array(items) = list else {
        return Err(type_error("constraints.map is not a function"));
    };
    let parts = items
        .iter()
        .map(format_constraint)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(format!("[{}]", parts.join(", ")))
}

/// `formatConstraint`: `<contextName> [not ]<operator text> <value or (values)>`.
fn format_constraint(c: &Value) -> Result<String, MarkdownError> {
    // `constraint.hasOwnProperty('value') ? constraint.value : `(${constraint.values?.join(',')})``
    let has_value = match c {
        Value::Null => return Err(read_error(Some(c), "hasOwnProperty")),
        // An own `hasOwnProperty` key shadows the method with data.
        Value::Object(_) if c.get("hasOwnProperty").is_some() => {
            return Err(type_error("constraint.hasOwnProperty is not a function"));
        }
        Value::Object(_) => c.get("value").is_some(),
        _ => false,
    };
    let val = if has_value {
        js_string(c.get("value"))?
    } else {
        match c {
            // `[].values` is Array.prototype.values, which has no `join`.
            Value::Array(_) => {
                return Err(type_error("constraint.values?.join is not a function"));
            }
            _ => match c.get("values") {
                None | Some(Value::Null) => "(undefined)".to_string(),
                Some(Value::Array(items)) => format!("({})", join(items, ",")?),
                Some(_) => return Err(type_error("constraint.values?.join is not a function")),
            },
        }
    };
    // `constraintOperatorDescriptions.hasOwnProperty(constraint.operator)` converts the
    // operator to a property key, the same text the template literal prints otherwise.
    let op = js_string(c.get("operator"))?;
    let operator = OPERATOR_DESCRIPTIONS
        .iter()
        .find(|(k, _)| *k == op)
        .map_or(op.as_str(), |(_, d)| d);
    let not = if truthy(c.get("inverted")) {
        "not "
    } else {
        ""
    };
    Ok(format!(
        "{} {not}{operator} {val}",
        js_string(c.get("contextName"))?
    ))
}

/// `formatSegments` (with the parameter default `= []`).
fn format_segments(list: Option<&Value>) -> Result<String, MarkdownError> {
    const EMPTY: &str = "empty set of segments";
    let Some(list) = list else {
        return Ok(EMPTY.to_string());
    };
    if length_is_zero(Some(list))? {
        return Ok(EMPTY.to_string());
    }
    match list {
        Value::Array(items) => Ok(format!("({})", join(items, ",")?)),
        _ => Err(type_error("segments.join is not a function")),
    }
}

// ---------------------------------------------------------------------------------------------
// JavaScript semantics on `Option<&Value>` (`None` is `undefined`).
// ---------------------------------------------------------------------------------------------

/// `!!v`.
fn truthy(v: Option<&Value>) -> bool {
    v.is_some_and(Value::is_truthy)
}

/// `v?.key` for the plain data keys the formatter reads (none of them is a property that
/// strings, arrays or `Object.prototype` provide, so an own key or `undefined` is the answer).
fn opt_prop<'v>(v: Option<&'v Value>, key: &str) -> Option<&'v Value> {
    v.and_then(|v| v.get(key))
}

/// `a === b`. Objects, arrays and dates are compared by identity in JavaScript, and the
/// formatter never compares a value with itself, so they are never equal here.
fn strict_equals(a: Option<&Value>, b: Option<&Value>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(Value::Null), Some(Value::Null)) => true,
        (Some(Value::Bool(x)), Some(Value::Bool(y))) => x == y,
        // IEEE equality: NaN !== NaN, 0 === -0, as in JavaScript.
        (Some(Value::Number(x)), Some(Value::Number(y))) => x == y,
        (Some(Value::String(x)), Some(Value::String(y))) => x == y,
        _ => false,
    }
}

/// `v.length === 0`, throwing as JavaScript does on `null`/`undefined`. Strings and arrays
/// have a length (a string's UTF-16 length is 0 only when empty); objects only an own key.
fn length_is_zero(v: Option<&Value>) -> Result<bool, MarkdownError> {
    match v {
        None | Some(Value::Null) => Err(read_error(v, "length")),
        Some(Value::String(s)) => Ok(s.is_empty()),
        Some(Value::Array(items)) => Ok(items.is_empty()),
        Some(o @ Value::Object(_)) => {
            Ok(matches!(o.get("length"), Some(Value::Number(n)) if *n == 0.0))
        }
        Some(_) => Ok(false),
    }
}

/// `String(v)` / `${v}`: `undefined` for a missing value, and the `TypeError` JavaScript
/// throws for an object whose own `toString` key hides the method (also inside arrays).
fn js_string(v: Option<&Value>) -> Result<String, MarkdownError> {
    match v {
        None => Ok("undefined".to_string()),
        Some(Value::Object(_)) if v.and_then(|o| o.get("toString")).is_some() => {
            Err(type_error("Cannot convert object to primitive value"))
        }
        Some(Value::Array(items)) => join(items, ","),
        Some(other) => Ok(js::to_display_string(other)),
    }
}

/// `Array.prototype.join(sep)`: `null` elements print empty, others as `String(v)`.
fn join(items: &[Value], sep: &str) -> Result<String, MarkdownError> {
    let mut out = String::new();
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(sep);
        }
        if !matches!(item, Value::Null) {
            out.push_str(&js_string(Some(item))?);
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Mustache: rendering without HTML escaping.
// ---------------------------------------------------------------------------------------------

/// The end of the run of `\s` starting at byte `pos` (`scan(/\s*/)`).
fn skip_space(s: &str, pos: usize) -> usize {
    let tail = s.get(pos..).unwrap_or_default();
    let rest = tail.trim_start_matches(is_js_space);
    pos + (tail.len() - rest.len())
}

/// `scanUntil(/\s*LIT/)` from `pos`: where the leftmost match of `\s*LIT` starts, or the end.
/// As `LIT` never starts with whitespace, that is the first `LIT` less the whitespace right
/// before it.
fn until_space_lit(s: &str, pos: usize, lit: &str) -> usize {
    let tail = s.get(pos..).unwrap_or_default();
    match tail.find(lit) {
        None => s.len(),
        Some(i) => {
            let before = tail.get(..i).unwrap_or_default();
            pos + before.trim_end_matches(is_js_space).len()
        }
    }
}

/// `scan(/\s*LIT/)` at `pos`: the position after the match, if it matches right there.
fn at_space_lit(s: &str, pos: usize, lit: &str) -> Option<usize> {
    let p = skip_space(s, pos);
    s.get(p..)?.starts_with(lit).then_some(p + lit.len())
}

/// The template with `&` inserted into each escaped-variable tag (`{{ name }}` becomes
/// `{{ &name }}`), so that [`Template`] prints it raw as mustache.js with an identity `escape`
/// does; every other tag and all text are left alone, so parsing (standalone lines, positions
/// of sections) is otherwise unchanged.
///
/// This follows mustache.js 4.2.0's `parseTemplate` scanner exactly, set-delimiter tags
/// included. `None` where mustache.js throws while scanning (an unclosed tag or invalid
/// delimiters); compiling the original template then reports that error.
fn raw_variable_tags(template: &str) -> Option<String> {
    let mut open: &str = "{{";
    let mut close: &str = "}}";
    let mut out = String::with_capacity(template.len() + 16);
    let mut pos = 0;
    while pos < template.len() {
        // scanUntil(openingTagRe): the text up to the next opening delimiter.
        let tail = template.get(pos..)?;
        let Some(i) = tail.find(open) else {
            out.push_str(tail);
            break;
        };
        let tag_start = pos + i;
        out.push_str(template.get(pos..tag_start)?);
        // scan(openingTagRe): the delimiter and the whitespace after it.
        pos = skip_space(template, tag_start + open.len());
        out.push_str(template.get(tag_start..pos)?);
        // scan(tagRe): the tag type, `name` when none.
        // Everything from here to the closing delimiter is copied as it is.
        let body_start = pos;
        let ty = match template.get(pos..)?.chars().next() {
            Some(c @ ('#' | '^' | '/' | '>' | '{' | '&' | '=' | '!')) => {
                pos += 1;
                Some(c)
            }
            _ => {
                // The rewrite: a `name` tag becomes a `&` tag.
                out.push('&');
                None
            }
        };
        pos = skip_space(template, pos);
        let mut new_tags = None;
        match ty {
            Some('=') => {
                let end = until_space_lit(template, pos, "=");
                new_tags = Some(template.get(pos..end)?);
                pos = at_space_lit(template, end, "=").unwrap_or(end);
                pos = until_space_lit(template, pos, close);
            }
            Some('{') => {
                let curly_close = format!("}}{close}");
                pos = until_space_lit(template, pos, &curly_close);
                pos = at_space_lit(template, pos, "}").unwrap_or(pos);
                pos = until_space_lit(template, pos, close);
            }
            _ => pos = until_space_lit(template, pos, close),
        }
        // scan(closingTagRe), or "Unclosed tag".
        pos = at_space_lit(template, pos, close)?;
        out.push_str(template.get(body_start..pos)?);
        if let Some(value) = new_tags {
            // compileTags(value): `value.split(/\s+/, 2)` must give two delimiters.
            let (o, rest) = value.split_once(is_js_space)?;
            let rest = rest.trim_start_matches(is_js_space);
            let c = rest.split(is_js_space).next().unwrap_or_default();
            if o.is_empty() || c.is_empty() {
                return None;
            }
            open = o;
            close = c;
        }
    }
    Some(out)
}

// ---------------------------------------------------------------------------------------------
// Unleash's tables.
// ---------------------------------------------------------------------------------------------

const FEATURE_ARCHIVED: &str = "feature-archived";
const FEATURE_STRATEGY_UPDATE: &str = "feature-strategy-update";

/// The properties every object inherits from `Object.prototype` in Node (so `EVENT_MAP[type]`
/// finds something for these types, with no `action`).
const OBJECT_PROTOTYPE_KEYS: [&str; 12] = [
    "constructor",
    "__defineGetter__",
    "__defineSetter__",
    "hasOwnProperty",
    "__lookupGetter__",
    "__lookupSetter__",
    "isPrototypeOf",
    "propertyIsEnumerable",
    "toString",
    "valueOf",
    "__proto__",
    "toLocaleString",
];

/// `constraintOperatorDescriptions`.
const OPERATOR_DESCRIPTIONS: [(&str, &str); 18] = [
    ("IN", "is one of"),
    ("NOT_IN", "is not one of"),
    ("STR_CONTAINS", "is a string that contains"),
    ("STR_STARTS_WITH", "is a string that starts with"),
    ("STR_ENDS_WITH", "is a string that ends with"),
    ("NUM_EQ", "is a number equal to"),
    ("NUM_GT", "is a number greater than"),
    ("NUM_GTE", "is a number greater than or equal to"),
    ("NUM_LT", "is a number less than"),
    ("NUM_LTE", "is a number less than or equal to"),
    ("DATE_BEFORE", "is a date before"),
    ("DATE_AFTER", "is a date after"),
    ("SEMVER_EQ", "is a SemVer equal to"),
    ("SEMVER_GT", "is a SemVer greater than"),
    ("SEMVER_LT", "is a SemVer less than"),
    ("SEMVER_GTE", "is a SemVer greater than or equal to"),
    ("SEMVER_LTE", "is a SemVer less than or equal to"),
    ("REGEX", "matches regex"),
];

/// One entry of Unleash's `EVENT_MAP`: the event type (the value of its constant in
/// `src/lib/events/index.ts`), a label, and Mustache templates for the text and the link path.
struct Entry {
    event_type: &'static str,
    label: &'static str,
    action: &'static str,
    path: &'static str,
}

/// `EVENT_MAP` of `feature-event-formatter-md-events.ts` (Unleash 8.1), in its order, the
/// templates verbatim.
const EVENT_MAP: &[Entry] = &[
    Entry {
        event_type: "addon-config-created",
        label: "Integration configuration created",
        action: "{{b}}{{user}}{{b}} created a new {{b}}{{event.data.provider}}{{b}} integration configuration",
        path: "/integrations",
    },
    Entry {
        event_type: "addon-config-deleted",
        label: "Integration configuration deleted",
        action: "{{b}}{{user}}{{b}} deleted a {{b}}{{event.preData.provider}}{{b}} integration configuration",
        path: "/integrations",
    },
    Entry {
        event_type: "addon-config-updated",
        label: "Integration configuration updated",
        action: "{{b}}{{user}}{{b}} updated a {{b}}{{event.preData.provider}}{{b}} integration configuration",
        path: "/integrations",
    },
    Entry {
        event_type: "api-token-created",
        label: "API token created",
        action: "{{b}}{{user}}{{b}} created API token {{b}}{{event.data.username}}{{b}}",
        path: "/admin/api",
    },
    Entry {
        event_type: "api-token-deleted",
        label: "API token deleted",
        action: "{{b}}{{user}}{{b}} deleted API token {{b}}{{event.preData.username}}{{b}}",
        path: "/admin/api",
    },
    Entry {
        event_type: "change-added",
        label: "Change added",
        action: "{{b}}{{user}}{{b}} added a change to change request {{changeRequest}}",
        path: "/projects/{{event.project}}/change-requests/{{event.data.changeRequestId}}",
    },
    Entry {
        event_type: "change-discarded",
        label: "Change discarded",
        action: "{{b}}{{user}}{{b}} discarded a change in change request {{changeRequest}}",
        path: "/projects/{{event.project}}/change-requests/{{event.data.changeRequestId}}",
    },
    Entry {
        event_type: "change-edited",
        label: "Change edited",
        action: "{{b}}{{user}}{{b}} edited a change in change request {{changeRequest}}",
        path: "/projects/{{event.project}}/change-requests/{{event.data.changeRequestId}}",
    },
    Entry {
        event_type: "change-request-applied",
        label: "Change request applied",
        action: "{{b}}{{user}}{{b}} applied change request {{changeRequest}}",
        path: "/projects/{{event.project}}/change-requests/{{event.data.changeRequestId}}",
    },
    Entry {
        event_type: "change-request-approval-added",
        label: "Change request approval added",
        action: "{{b}}{{user}}{{b}} added an approval to change request {{changeRequest}}",
        path: "/projects/{{event.project}}/change-requests/{{event.data.changeRequestId}}",
    },
    Entry {
        event_type: "change-request-approved",
        label: "Change request approved",
        action: "{{b}}{{user}}{{b}} approved change request {{changeRequest}}",
        path: "/projects/{{event.project}}/change-requests/{{event.data.changeRequestId}}",
    },
    Entry {
        event_type: "change-request-cancelled",
        label: "Change request cancelled",
        action: "{{b}}{{user}}{{b}} cancelled change request {{changeRequest}}",
        path: "/projects/{{event.project}}/change-requests/{{event.data.changeRequestId}}",
    },
    Entry {
        event_type: "change-request-created",
        label: "Change request created",
        action: "{{b}}{{user}}{{b}} created change request {{changeRequest}}",
        path: "/projects/{{event.project}}/change-requests/{{event.data.changeRequestId}}",
    },
    Entry {
        event_type: "change-request-discarded",
        label: "Change request discarded",
        action: "{{b}}{{user}}{{b}} discarded change request {{changeRequest}}",
        path: "/projects/{{event.project}}/change-requests/{{event.data.changeRequestId}}",
    },
    Entry {
        event_type: "change-request-rejected",
        label: "Change request rejected",
        action: "{{b}}{{user}}{{b}} rejected change request {{changeRequest}}",
        path: "/projects/{{event.project}}/change-requests/{{event.data.changeRequestId}}",
    },
    Entry {
        event_type: "change-request-sent-to-review",
        label: "Change request sent to review",
        action: "{{b}}{{user}}{{b}} sent to review change request {{changeRequest}}",
        path: "/projects/{{event.project}}/change-requests/{{event.data.changeRequestId}}",
    },
    Entry {
        event_type: "change-request-scheduled",
        label: "Change request scheduled",
        action: "{{b}}{{user}}{{b}} scheduled change request {{changeRequest}} to be applied at {{event.data.scheduledDate}}.",
        path: "/projects/{{event.project}}/change-requests/{{event.data.changeRequestId}}",
    },
    Entry {
        event_type: "change-request-scheduled-application-success",
        label: "Scheduled change request applied successfully",
        action: "{{b}}Successfully{{b}} applied the scheduled change request {{changeRequest}} by {{b}}{{user}}{{b}}.",
        path: "/projects/{{event.project}}/change-requests/{{event.data.changeRequestId}}",
    },
    Entry {
        event_type: "change-request-scheduled-application-failure",
        label: "Scheduled change request failed",
        action: "{{b}}Failed{{b}} to apply the scheduled change request {{changeRequest}} by {{b}}{{user}}{{b}}.",
        path: "/projects/{{event.project}}/change-requests/{{event.data.changeRequestId}}",
    },
    Entry {
        event_type: "change-request-schedule-suspended",
        label: "Change request suspended",
        action: "Change request {{changeRequest}} was suspended for the following reason: {{event.data.reason}}",
        path: "/projects/{{event.project}}/change-requests/{{event.data.changeRequestId}}",
    },
    Entry {
        event_type: "context-field-created",
        label: "Context field created",
        action: "{{b}}{{user}}{{b}} created context field {{b}}{{event.data.name}}{{b}}",
        path: "/context",
    },
    Entry {
        event_type: "context-field-deleted",
        label: "Context field deleted",
        action: "{{b}}{{user}}{{b}} deleted context field {{b}}{{event.preData.name}}{{b}}",
        path: "/context",
    },
    Entry {
        event_type: "context-field-updated",
        label: "Context field updated",
        action: "{{b}}{{user}}{{b}} updated context field {{b}}{{event.preData.name}}{{b}}",
        path: "/context",
    },
    Entry {
        event_type: "feature-archived",
        label: "Flag archived",
        action: "{{b}}{{user}}{{b}} archived {{b}}{{event.featureName}}{{b}} in project {{b}}{{project}}{{b}}",
        path: "/projects/{{event.project}}/archive",
    },
    Entry {
        event_type: "feature-created",
        label: "Flag created",
        action: "{{b}}{{user}}{{b}} created {{b}}{{feature}}{{b}} in project {{b}}{{project}}{{b}}",
        path: "/projects/{{event.project}}/features/{{event.featureName}}",
    },
    Entry {
        event_type: "feature-deleted",
        label: "Flag deleted",
        action: "{{b}}{{user}}{{b}} deleted {{b}}{{event.featureName}}{{b}} in project {{b}}{{project}}{{b}}",
        path: "/projects/{{event.project}}",
    },
    Entry {
        event_type: "feature-environment-disabled",
        label: "Flag disabled",
        action: "{{b}}{{user}}{{b}} disabled {{b}}{{feature}}{{b}} for the {{b}}{{event.environment}}{{b}} environment in project {{b}}{{project}}{{b}}",
        path: "/projects/{{event.project}}/features/{{event.featureName}}",
    },
    Entry {
        event_type: "feature-environment-enabled",
        label: "Flag enabled",
        action: "{{b}}{{user}}{{b}} enabled {{b}}{{feature}}{{b}} for the {{b}}{{event.environment}}{{b}} environment in project {{b}}{{project}}{{b}}",
        path: "/projects/{{event.project}}/features/{{event.featureName}}",
    },
    Entry {
        event_type: "feature-environment-variants-updated",
        label: "Flag variants updated",
        action: "{{b}}{{user}}{{b}} updated variants for {{b}}{{feature}}{{b}} for the {{b}}{{event.environment}}{{b}} environment in project {{b}}{{project}}{{b}}",
        path: "/projects/{{event.project}}/features/{{event.featureName}}/variants",
    },
    Entry {
        event_type: "feature-metadata-updated",
        label: "Flag metadata updated",
        action: "{{b}}{{user}}{{b}} updated {{b}}{{feature}}{{b}} metadata in project {{b}}{{project}}{{b}}",
        path: "/projects/{{event.project}}/features/{{event.featureName}}",
    },
    Entry {
        event_type: "feature-completed",
        label: "Flag marked as completed",
        action: "{{b}}{{feature}}{{b}} was marked as completed in project {{b}}{{project}}{{b}}",
        path: "/projects/{{event.project}}/features/{{event.featureName}}",
    },
    Entry {
        event_type: "feature-potentially-stale-on",
        label: "Flag potentially stale",
        action: "{{b}}{{feature}}{{b}} was marked as potentially stale in project {{b}}{{project}}{{b}}",
        path: "/projects/{{event.project}}/features/{{event.featureName}}",
    },
    Entry {
        event_type: "feature-project-change",
        label: "Flag moved to a new project",
        action: "{{b}}{{user}}{{b}} moved {{b}}{{feature}}{{b}} from {{b}}{{event.data.oldProject}}{{b}} to {{b}}{{project}}{{b}}",
        path: "/projects/{{event.project}}/features/{{event.featureName}}",
    },
    Entry {
        event_type: "feature-revived",
        label: "Flag revived",
        action: "{{b}}{{user}}{{b}} revived {{b}}{{feature}}{{b}} in project {{b}}{{project}}{{b}}",
        path: "/projects/{{event.project}}/features/{{event.featureName}}",
    },
    Entry {
        event_type: "feature-stale-off",
        label: "Flag stale marking removed",
        action: "{{b}}{{user}}{{b}} removed the stale marking on {{b}}{{feature}}{{b}} in project {{b}}{{project}}{{b}}",
        path: "/projects/{{event.project}}/features/{{event.featureName}}",
    },
    Entry {
        event_type: "feature-stale-on",
        label: "Flag marked as stale",
        action: "{{b}}{{user}}{{b}} marked {{b}}{{feature}}{{b}} as stale in project {{b}}{{project}}{{b}}",
        path: "/projects/{{event.project}}/features/{{event.featureName}}",
    },
    Entry {
        event_type: "feature-strategy-add",
        label: "Flag strategy added",
        action: "{{b}}{{user}}{{b}} added strategy {{b}}{{strategyTitle}}{{b}} to {{b}}{{feature}}{{b}} for the {{b}}{{event.environment}}{{b}} environment in project {{b}}{{project}}{{b}}",
        path: "/projects/{{event.project}}/features/{{event.featureName}}",
    },
    Entry {
        event_type: "feature-strategy-remove",
        label: "Flag strategy removed",
        action: "{{b}}{{user}}{{b}} removed strategy {{b}}{{strategyTitle}}{{b}} from {{b}}{{feature}}{{b}} for the {{b}}{{event.environment}}{{b}} environment in project {{b}}{{project}}{{b}}",
        path: "/projects/{{event.project}}/features/{{event.featureName}}",
    },
    Entry {
        event_type: "feature-strategy-update",
        label: "Flag strategy updated",
        action: "{{b}}{{user}}{{b}} updated {{b}}{{feature}}{{b}} in project {{b}}{{project}}{{b}} {{strategyChangeText}}",
        path: "/projects/{{event.project}}/features/{{event.featureName}}",
    },
    Entry {
        event_type: "feature-tagged",
        label: "Flag tagged",
        action: "{{b}}{{user}}{{b}} tagged {{b}}{{feature}}{{b}} with {{b}}{{event.data.type}}:{{event.data.value}}{{b}} in project {{b}}{{project}}{{b}}",
        path: "/projects/{{event.project}}/features/{{event.featureName}}",
    },
    Entry {
        event_type: "feature-untagged",
        label: "Flag untagged",
        action: "{{b}}{{user}}{{b}} untagged {{b}}{{feature}}{{b}} with {{b}}{{event.preData.type}}:{{event.preData.value}}{{b}} in project {{b}}{{project}}{{b}}",
        path: "/projects/{{event.project}}/features/{{event.featureName}}",
    },
    Entry {
        event_type: "group-created",
        label: "Group created",
        action: "{{b}}{{user}}{{b}} created group {{b}}{{event.data.name}}{{b}}",
        path: "/admin/groups",
    },
    Entry {
        event_type: "group-deleted",
        label: "Group deleted",
        action: "{{b}}{{user}}{{b}} deleted group {{b}}{{event.preData.name}}{{b}}",
        path: "/admin/groups",
    },
    Entry {
        event_type: "group-updated",
        label: "Group updated",
        action: "{{b}}{{user}}{{b}} updated group {{b}}{{event.preData.name}}{{b}}",
        path: "/admin/groups",
    },
    Entry {
        event_type: "banner-created",
        label: "Banner created",
        action: "{{b}}{{user}}{{b}} created banner {{b}}{{event.data.message}}{{b}}",
        path: "/admin/message-banners",
    },
    Entry {
        event_type: "banner-deleted",
        label: "Banner deleted",
        action: "{{b}}{{user}}{{b}} deleted banner {{b}}{{event.preData.message}}{{b}}",
        path: "/admin/message-banners",
    },
    Entry {
        event_type: "banner-updated",
        label: "Banner updated",
        action: "{{b}}{{user}}{{b}} updated banner {{b}}{{event.preData.message}}{{b}}",
        path: "/admin/message-banners",
    },
    Entry {
        event_type: "project-created",
        label: "Project created",
        action: "{{b}}{{user}}{{b}} created project {{b}}{{project}}{{b}}",
        path: "/projects",
    },
    Entry {
        event_type: "project-archived",
        label: "Project archived",
        action: "{{b}}{{user}}{{b}} archived project {{b}}{{event.project}}{{b}}",
        path: "/projects-archive",
    },
    Entry {
        event_type: "project-deleted",
        label: "Project deleted",
        action: "{{b}}{{user}}{{b}} deleted project {{b}}{{event.project}}{{b}}",
        path: "/projects",
    },
    Entry {
        event_type: "segment-created",
        label: "Segment created",
        action: "{{b}}{{user}}{{b}} created segment {{b}}{{event.data.name}}{{b}}",
        path: "/segments",
    },
    Entry {
        event_type: "segment-deleted",
        label: "Segment deleted",
        action: "{{b}}{{user}}{{b}} deleted segment {{b}}{{event.preData.name}}{{b}}",
        path: "/segments",
    },
    Entry {
        event_type: "segment-updated",
        label: "Segment updated",
        action: "{{b}}{{user}}{{b}} updated segment {{b}}{{event.preData.name}}{{b}}",
        path: "/segments",
    },
    Entry {
        event_type: "service-account-created",
        label: "Service account created",
        action: "{{b}}{{user}}{{b}} created service account {{b}}{{event.data.name}}{{b}}",
        path: "/admin/service-accounts",
    },
    Entry {
        event_type: "service-account-token-created",
        label: "Service account token created",
        action: "{{b}}{{user}}{{b}} created a token for service account {{b}}{{event.data.ownerId}}{{b}}",
        path: "/admin/service-accounts",
    },
    Entry {
        event_type: "service-account-token-deleted",
        label: "Service account token deleted",
        action: "{{b}}{{user}}{{b}} deleted a token for service account {{b}}{{event.data.ownerId}}{{b}}",
        path: "/admin/service-accounts",
    },
    Entry {
        event_type: "service-account-deleted",
        label: "Service account deleted",
        action: "{{b}}{{user}}{{b}} deleted service account {{b}}{{event.preData.name}}{{b}}",
        path: "/admin/service-accounts",
    },
    Entry {
        event_type: "service-account-updated",
        label: "Service account updated",
        action: "{{b}}{{user}}{{b}} updated service account {{b}}{{event.preData.name}}{{b}}",
        path: "/admin/service-accounts",
    },
    Entry {
        event_type: "user-created",
        label: "User created",
        action: "{{b}}{{user}}{{b}} created user {{b}}{{event.data.name}}{{b}}",
        path: "/admin/users",
    },
    Entry {
        event_type: "user-deleted",
        label: "User deleted",
        action: "{{b}}{{user}}{{b}} deleted user {{b}}{{event.preData.name}}{{b}}",
        path: "/admin/users",
    },
    Entry {
        event_type: "user-updated",
        label: "User updated",
        action: "{{b}}{{user}}{{b}} updated user {{b}}{{event.preData.name}}{{b}}",
        path: "/admin/users",
    },
    Entry {
        event_type: "release-plan-added",
        label: "Release plan added",
        action: "{{b}}{{user}}{{b}} added release plan {{b}}{{event.data.name}}{{b}} to {{b}}{{feature}}{{b}} for the {{b}}{{event.environment}}{{b}} environment in project {{b}}{{project}}{{b}}",
        path: "/projects/{{event.project}}/features/{{event.featureName}}",
    },
    Entry {
        event_type: "release-plan-removed",
        label: "Release plan removed",
        action: "{{b}}{{user}}{{b}} removed release plan {{b}}{{event.preData.name}}{{b}} from {{b}}{{feature}}{{b}} for the {{b}}{{event.environment}}{{b}} environment in project {{b}}{{project}}{{b}}",
        path: "/projects/{{event.project}}/features/{{event.featureName}}",
    },
    Entry {
        event_type: "release-plan-milestone-started",
        label: "Release plan milestone started",
        action: "{{b}}{{user}}{{b}} started milestone {{b}}{{event.data.milestoneName}}{{b}} in release plan {{b}}{{event.data.name}}{{b}} for {{b}}{{feature}}{{b}} for the {{b}}{{event.environment}}{{b}} environment in project {{b}}{{project}}{{b}}",
        path: "/projects/{{event.project}}/features/{{event.featureName}}",
    },
    Entry {
        event_type: "release-plan-progressions-paused",
        label: "Release plan progressions paused",
        action: "{{b}}Release plan progressions paused{{b}} by safeguard for {{b}}{{feature}}{{b}} in the {{b}}{{event.environment}}{{b}} environment in project {{b}}{{project}}{{b}}",
        path: "/projects/{{event.project}}/features/{{event.featureName}}",
    },
    Entry {
        event_type: "release-plan-progressions-resumed",
        label: "Release plan progressions resumed",
        action: "{{b}}{{user}}{{b}} resumed release plan progressions for {{b}}{{feature}}{{b}} in the {{b}}{{event.environment}}{{b}} environment in project {{b}}{{project}}{{b}}",
        path: "/projects/{{event.project}}/features/{{event.featureName}}",
    },
    Entry {
        event_type: "user-access-request-registered",
        label: "User access request registered",
        action: "{{b}}{{event.data.email}}{{b}} requested access to Unleash",
        path: "/admin/users",
    },
    Entry {
        event_type: "user-access-request-approved",
        label: "User access request approved",
        action: "{{b}}{{user}}{{b}} approved access request for {{b}}{{event.data.email}}{{b}}",
        path: "/admin/users",
    },
    Entry {
        event_type: "user-access-request-rejected",
        label: "User access request rejected",
        action: "{{b}}{{user}}{{b}} rejected access request for {{b}}{{event.data.email}}{{b}}",
        path: "/admin/users",
    },
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::event_json::template_view;
    use crate::core::js::{parse_json, stringify};

    const URL: &str = "unleashUrl";

    fn json(text: &str) -> Value {
        match parse_json(text) {
            Ok(v) => v,
            Err(e) => panic!("bad test JSON {text}: {e}"),
        }
    }

    /// An event as the TypeScript tests write it (`createdByUserId: SYSTEM_USER_ID`, the
    /// `createdAt` Date as its ISO string). `None` leaves a key out (JavaScript `undefined`).
    #[allow(clippy::too_many_arguments)]
    fn event(
        id: u32,
        ty: &str,
        created_by: &str,
        created_at: &str,
        data: &str,
        pre_data: &str,
        feature: Option<&str>,
        project: Option<&str>,
        environment: Option<&str>,
    ) -> Value {
        let mut text = format!(
            r#"{{"id":{id},"type":"{ty}","createdBy":"{created_by}","createdByUserId":-1337,"createdAt":"{created_at}","data":{data},"preData":{pre_data},"tags":[]"#
        );
        for (k, v) in [
            ("featureName", feature),
            ("project", project),
            ("environment", environment),
        ] {
            if let Some(v) = v {
                text.push_str(&format!(r#","{k}":"{v}""#));
            }
        }
        text.push('}');
        json(&text)
    }

    fn flexible(group: &str, rollout: &str, stickiness: &str, constraints: &str) -> String {
        format!(
            r#"{{"id":"3f4bf713-696c-43a4-8ce7-d6c607108858","name":"flexibleRollout","constraints":{constraints},"parameters":{{"groupId":"{group}","rollout":"{rollout}","stickiness":"{stickiness}"}}}}"#
        )
    }

    const APP_NAME_IN_XY: &str = r#"[{"values":["x","y"],"inverted":false,"operator":"IN","contextName":"appName","caseInsensitive":false}]"#;

    /// A strategy update on flag `new-feature` in `my-other-project`/`production`.
    fn strategy_update(data: &str, pre_data: &str) -> Value {
        event(
            920,
            "feature-strategy-update",
            "user@company.com",
            "2022-06-01T10:03:11.549Z",
            data,
            pre_data,
            Some("new-feature"),
            Some("my-other-project"),
            Some("production"),
        )
    }

    /// A `default` strategy update on flag `aaa` in project `default`.
    fn default_update(data_constraints: &str, pre_constraints: &str) -> Value {
        let strategy = |c: &str| {
            format!(
                r#"{{"id":"f2d34aac-52ec-49d2-82d3-08d710e89eaa","name":"default","constraints":{c},"parameters":{{}},"segments":[]}}"#
            )
        };
        event(
            39,
            "feature-strategy-update",
            "admin",
            "2023-02-20T20:23:28.791Z",
            &strategy(data_constraints),
            &strategy(pre_constraints),
            Some("aaa"),
            Some("default"),
            Some("production"),
        )
    }

    /// A change-request event (id 1) for `new-feature` in `my-other-project`/`production`.
    fn change_request(id: u32, ty: &str, data: &str, feature: Option<&str>) -> Value {
        event(
            id,
            ty,
            "user@company.com",
            "2022-06-01T10:03:11.549Z",
            data,
            "{}",
            feature,
            Some("my-other-project"),
            Some("production"),
        )
    }

    /// The inputs of `feature-event-formatter-md.test.ts`, by test description.
    fn snapshot_inputs() -> Vec<(String, Value)> {
        let mut cases: Vec<(String, Value)> = vec![
            (
                "when groupId changed".into(),
                strategy_update(
                    &flexible("different-feature", "32", "default", "[]"),
                    &flexible("new-feature", "32", "default", "[]"),
                ),
            ),
            (
                "when rollout percentage changed".into(),
                strategy_update(
                    &flexible("new-feature", "32", "default", "[]"),
                    &flexible("new-feature", "67", "default", "[]"),
                ),
            ),
            (
                "when stickiness changed".into(),
                strategy_update(
                    &flexible("new-feature", "67", "random", "[]"),
                    &flexible("new-feature", "67", "default", "[]"),
                ),
            ),
            (
                "when constraints and rollout percentage and stickiness changed".into(),
                strategy_update(
                    &flexible("new-feature", "32", "random", APP_NAME_IN_XY),
                    &flexible("new-feature", "67", "default", "[]"),
                ),
            ),
            (
                "when neither rollout percentage nor stickiness changed".into(),
                strategy_update(
                    &flexible("new-feature", "67", "default", "[]"),
                    &flexible("new-feature", "67", "default", "[]"),
                ),
            ),
            (
                "when strategy added".into(),
                event(
                    919,
                    "feature-strategy-add",
                    "user@company.com",
                    "2022-06-01T10:03:08.290Z",
                    &flexible("new-feature", "67", "default", "[]"),
                    "null",
                    Some("new-feature"),
                    Some("my-other-project"),
                    Some("production"),
                ),
            ),
            (
                "when strategy removed".into(),
                event(
                    918,
                    "feature-strategy-remove",
                    "user@company.com",
                    "2022-06-01T10:03:00.229Z",
                    "null",
                    r#"{"id":"9591090e-acb0-4088-8958-21faaeb7147d","name":"default","parameters":{},"constraints":[]}"#,
                    Some("new-feature"),
                    Some("my-other-project"),
                    Some("production"),
                ),
            ),
        ];
        let constraint = |value: &str, inverted: bool, op: &str| {
            format!(
                r#"{{{value},"inverted":{inverted},"operator":"{op}","contextName":"appName","caseInsensitive":false}}"#
            )
        };
        // `...[REGEX].map(...)` in the TypeScript: one operator, with `value`.
        {
            let op = "REGEX";
            let data = format!(
                "[{},{}]",
                constraint(r#""value":"[x|y]""#, false, op),
                constraint(r#""value":"x""#, true, op)
            );
            cases.push((
                format!("when default strategy updated with operator {op}"),
                default_update(&data, "[]"),
            ));
        }
        for op in [
            "IN",
            "NOT_IN",
            "STR_CONTAINS",
            "STR_STARTS_WITH",
            "STR_ENDS_WITH",
        ] {
            let data = format!(
                "[{},{}]",
                constraint(r#""values":["x","y"]"#, false, op),
                constraint(r#""values":["x"]"#, true, op)
            );
            cases.push((
                format!("when default strategy updated with operator {op}"),
                default_update(&data, "[]"),
            ));
        }
        for op in [
            "NUM_EQ",
            "NUM_GT",
            "NUM_GTE",
            "NUM_LT",
            "NUM_LTE",
            "DATE_BEFORE",
            "DATE_AFTER",
            "SEMVER_EQ",
            "SEMVER_GT",
            "SEMVER_LT",
            "SEMVER_GTE",
            "SEMVER_LTE",
        ] {
            let pre = format!("[{}]", constraint(r#""value":"4","values":[]"#, false, op));
            cases.push((
                format!("when default strategy updated with numeric constraint {op}"),
                default_update("[]", &pre),
            ));
        }
        let list_strategy = |name: &str, param: &str, value: &str, constraints: &str| {
            format!(
                r#"{{"name":"{name}","constraints":{constraints},"parameters":{{"{param}":"{value}"}}}}"#
            )
        };
        cases.extend([
            (
                "when IPs changed".into(),
                strategy_update(
                    &list_strategy("remoteAddress", "IPs", "127.0.0.1", APP_NAME_IN_XY),
                    &list_strategy("remoteAddress", "IPs", "", "[]"),
                ),
            ),
            (
                "when host names changed".into(),
                strategy_update(
                    &list_strategy(
                        "applicationHostname",
                        "hostNames",
                        "unleash.com",
                        APP_NAME_IN_XY,
                    ),
                    &list_strategy("applicationHostname", "hostNames", "", "[]"),
                ),
            ),
            (
                "when no specific text for strategy exists yet".into(),
                strategy_update(
                    &list_strategy("newStrategy", "IPs", "127.0.0.1", APP_NAME_IN_XY),
                    &list_strategy("newStrategy", "IPs", "", "[]"),
                ),
            ),
            (
                "when change request is scheduled".into(),
                change_request(
                    920,
                    "change-request-scheduled",
                    r#"{"changeRequestId":1,"scheduledDate":"2024-06-01T10:03:11.549Z"}"#,
                    Some("new-feature"),
                ),
            ),
            (
                "when scheduled change request succeeds ".into(),
                change_request(
                    920,
                    "change-request-scheduled-application-success",
                    r#"{"changeRequestId":1}"#,
                    Some("new-feature"),
                ),
            ),
            (
                "when scheduled change request fails ".into(),
                change_request(
                    920,
                    "change-request-scheduled-application-failure",
                    r#"{"changeRequestId":1}"#,
                    Some("new-feature"),
                ),
            ),
            (
                "when a scheduled change request is suspended".into(),
                change_request(
                    921,
                    "change-request-schedule-suspended",
                    r#"{"changeRequestId":1,"reason":"The user who scheduled this change request (user id: 6) has been deleted from this Unleash instance."}"#,
                    None,
                ),
            ),
            (
                "when project archived".into(),
                event(
                    922,
                    "project-archived",
                    "user@company.com",
                    "2024-11-25T10:33:59.459Z",
                    "null",
                    "null",
                    None,
                    Some("my-other-project"),
                    Some("production"),
                ),
            ),
        ]);
        cases
    }

    /// `feature-event-formatter-md.test.ts.snap` (Unleash 8.1): description, label, text, url.
    const SNAPSHOT: &[(&str, &str, &str, &str)] = &[
        (
            "when IPs changed",
            "Flag strategy updated",
            r#"*user@company.com* updated *[new-feature](unleashUrl/projects/my-other-project/features/new-feature)* in project *[my-other-project](unleashUrl/projects/my-other-project)* by updating strategy *remoteAddress* in *production* IPs from empty set of IPs to [127.0.0.1]; constraints from empty set of constraints to [appName is one of (x,y)]"#,
            "unleashUrl/projects/my-other-project/features/new-feature",
        ),
        (
            "when a scheduled change request is suspended",
            "Change request suspended",
            r#"Change request *[#1](unleashUrl/projects/my-other-project/change-requests/1)* in the *production* environment in project *[my-other-project](unleashUrl/projects/my-other-project)* was suspended for the following reason: The user who scheduled this change request (user id: 6) has been deleted from this Unleash instance."#,
            "unleashUrl/projects/my-other-project/change-requests/1",
        ),
        (
            "when change request is scheduled",
            "Change request scheduled",
            r#"*user@company.com* scheduled change request *[#1](unleashUrl/projects/my-other-project/change-requests/1)* for feature flag *[new-feature](unleashUrl/projects/my-other-project/features/new-feature)* in the *production* environment in project *[my-other-project](unleashUrl/projects/my-other-project)* to be applied at 2024-06-01T10:03:11.549Z."#,
            "unleashUrl/projects/my-other-project/change-requests/1",
        ),
        (
            "when constraints and rollout percentage and stickiness changed",
            "Flag strategy updated",
            r#"*user@company.com* updated *[new-feature](unleashUrl/projects/my-other-project/features/new-feature)* in project *[my-other-project](unleashUrl/projects/my-other-project)* by updating strategy *flexibleRollout* in *production* stickiness from default to random; rollout from 67% to 32%; constraints from empty set of constraints to [appName is one of (x,y)]"#,
            "unleashUrl/projects/my-other-project/features/new-feature",
        ),
        (
            "when default strategy updated with numeric constraint DATE_AFTER",
            "Flag strategy updated",
            r#"*admin* updated *[aaa](unleashUrl/projects/default/features/aaa)* in project *[default](unleashUrl/projects/default)* by updating strategy *default* in *production* constraints from [appName is a date after 4] to empty set of constraints"#,
            "unleashUrl/projects/default/features/aaa",
        ),
        (
            "when default strategy updated with numeric constraint DATE_BEFORE",
            "Flag strategy updated",
            r#"*admin* updated *[aaa](unleashUrl/projects/default/features/aaa)* in project *[default](unleashUrl/projects/default)* by updating strategy *default* in *production* constraints from [appName is a date before 4] to empty set of constraints"#,
            "unleashUrl/projects/default/features/aaa",
        ),
        (
            "when default strategy updated with numeric constraint NUM_EQ",
            "Flag strategy updated",
            r#"*admin* updated *[aaa](unleashUrl/projects/default/features/aaa)* in project *[default](unleashUrl/projects/default)* by updating strategy *default* in *production* constraints from [appName is a number equal to 4] to empty set of constraints"#,
            "unleashUrl/projects/default/features/aaa",
        ),
        (
            "when default strategy updated with numeric constraint NUM_GT",
            "Flag strategy updated",
            r#"*admin* updated *[aaa](unleashUrl/projects/default/features/aaa)* in project *[default](unleashUrl/projects/default)* by updating strategy *default* in *production* constraints from [appName is a number greater than 4] to empty set of constraints"#,
            "unleashUrl/projects/default/features/aaa",
        ),
        (
            "when default strategy updated with numeric constraint NUM_GTE",
            "Flag strategy updated",
            r#"*admin* updated *[aaa](unleashUrl/projects/default/features/aaa)* in project *[default](unleashUrl/projects/default)* by updating strategy *default* in *production* constraints from [appName is a number greater than or equal to 4] to empty set of constraints"#,
            "unleashUrl/projects/default/features/aaa",
        ),
        (
            "when default strategy updated with numeric constraint NUM_LT",
            "Flag strategy updated",
            r#"*admin* updated *[aaa](unleashUrl/projects/default/features/aaa)* in project *[default](unleashUrl/projects/default)* by updating strategy *default* in *production* constraints from [appName is a number less than 4] to empty set of constraints"#,
            "unleashUrl/projects/default/features/aaa",
        ),
        (
            "when default strategy updated with numeric constraint NUM_LTE",
            "Flag strategy updated",
            r#"*admin* updated *[aaa](unleashUrl/projects/default/features/aaa)* in project *[default](unleashUrl/projects/default)* by updating strategy *default* in *production* constraints from [appName is a number less than or equal to 4] to empty set of constraints"#,
            "unleashUrl/projects/default/features/aaa",
        ),
        (
            "when default strategy updated with numeric constraint SEMVER_EQ",
            "Flag strategy updated",
            r#"*admin* updated *[aaa](unleashUrl/projects/default/features/aaa)* in project *[default](unleashUrl/projects/default)* by updating strategy *default* in *production* constraints from [appName is a SemVer equal to 4] to empty set of constraints"#,
            "unleashUrl/projects/default/features/aaa",
        ),
        (
            "when default strategy updated with numeric constraint SEMVER_GT",
            "Flag strategy updated",
            r#"*admin* updated *[aaa](unleashUrl/projects/default/features/aaa)* in project *[default](unleashUrl/projects/default)* by updating strategy *default* in *production* constraints from [appName is a SemVer greater than 4] to empty set of constraints"#,
            "unleashUrl/projects/default/features/aaa",
        ),
        (
            "when default strategy updated with numeric constraint SEMVER_GTE",
            "Flag strategy updated",
            r#"*admin* updated *[aaa](unleashUrl/projects/default/features/aaa)* in project *[default](unleashUrl/projects/default)* by updating strategy *default* in *production* constraints from [appName is a SemVer greater than or equal to 4] to empty set of constraints"#,
            "unleashUrl/projects/default/features/aaa",
        ),
        (
            "when default strategy updated with numeric constraint SEMVER_LT",
            "Flag strategy updated",
            r#"*admin* updated *[aaa](unleashUrl/projects/default/features/aaa)* in project *[default](unleashUrl/projects/default)* by updating strategy *default* in *production* constraints from [appName is a SemVer less than 4] to empty set of constraints"#,
            "unleashUrl/projects/default/features/aaa",
        ),
        (
            "when default strategy updated with numeric constraint SEMVER_LTE",
            "Flag strategy updated",
            r#"*admin* updated *[aaa](unleashUrl/projects/default/features/aaa)* in project *[default](unleashUrl/projects/default)* by updating strategy *default* in *production* constraints from [appName is a SemVer less than or equal to 4] to empty set of constraints"#,
            "unleashUrl/projects/default/features/aaa",
        ),
        (
            "when default strategy updated with operator IN",
            "Flag strategy updated",
            r#"*admin* updated *[aaa](unleashUrl/projects/default/features/aaa)* in project *[default](unleashUrl/projects/default)* by updating strategy *default* in *production* constraints from empty set of constraints to [appName is one of (x,y), appName not is one of (x)]"#,
            "unleashUrl/projects/default/features/aaa",
        ),
        (
            "when default strategy updated with operator NOT_IN",
            "Flag strategy updated",
            r#"*admin* updated *[aaa](unleashUrl/projects/default/features/aaa)* in project *[default](unleashUrl/projects/default)* by updating strategy *default* in *production* constraints from empty set of constraints to [appName is not one of (x,y), appName not is not one of (x)]"#,
            "unleashUrl/projects/default/features/aaa",
        ),
        (
            "when default strategy updated with operator REGEX",
            "Flag strategy updated",
            r#"*admin* updated *[aaa](unleashUrl/projects/default/features/aaa)* in project *[default](unleashUrl/projects/default)* by updating strategy *default* in *production* constraints from empty set of constraints to [appName matches regex [x|y], appName not matches regex x]"#,
            "unleashUrl/projects/default/features/aaa",
        ),
        (
            "when default strategy updated with operator STR_CONTAINS",
            "Flag strategy updated",
            r#"*admin* updated *[aaa](unleashUrl/projects/default/features/aaa)* in project *[default](unleashUrl/projects/default)* by updating strategy *default* in *production* constraints from empty set of constraints to [appName is a string that contains (x,y), appName not is a string that contains (x)]"#,
            "unleashUrl/projects/default/features/aaa",
        ),
        (
            "when default strategy updated with operator STR_ENDS_WITH",
            "Flag strategy updated",
            r#"*admin* updated *[aaa](unleashUrl/projects/default/features/aaa)* in project *[default](unleashUrl/projects/default)* by updating strategy *default* in *production* constraints from empty set of constraints to [appName is a string that ends with (x,y), appName not is a string that ends with (x)]"#,
            "unleashUrl/projects/default/features/aaa",
        ),
        (
            "when default strategy updated with operator STR_STARTS_WITH",
            "Flag strategy updated",
            r#"*admin* updated *[aaa](unleashUrl/projects/default/features/aaa)* in project *[default](unleashUrl/projects/default)* by updating strategy *default* in *production* constraints from empty set of constraints to [appName is a string that starts with (x,y), appName not is a string that starts with (x)]"#,
            "unleashUrl/projects/default/features/aaa",
        ),
        (
            "when groupId changed",
            "Flag strategy updated",
            r#"*user@company.com* updated *[new-feature](unleashUrl/projects/my-other-project/features/new-feature)* in project *[my-other-project](unleashUrl/projects/my-other-project)* by updating strategy *flexibleRollout* in *production* groupId from new-feature to different-feature"#,
            "unleashUrl/projects/my-other-project/features/new-feature",
        ),
        (
            "when host names changed",
            "Flag strategy updated",
            r#"*user@company.com* updated *[new-feature](unleashUrl/projects/my-other-project/features/new-feature)* in project *[my-other-project](unleashUrl/projects/my-other-project)* by updating strategy *applicationHostname* in *production* hostNames from empty set of hostNames to [unleash.com]; constraints from empty set of constraints to [appName is one of (x,y)]"#,
            "unleashUrl/projects/my-other-project/features/new-feature",
        ),
        (
            "when neither rollout percentage nor stickiness changed",
            "Flag strategy updated",
            r#"*user@company.com* updated *[new-feature](unleashUrl/projects/my-other-project/features/new-feature)* in project *[my-other-project](unleashUrl/projects/my-other-project)* by updating strategy *flexibleRollout* in *production*"#,
            "unleashUrl/projects/my-other-project/features/new-feature",
        ),
        (
            "when no specific text for strategy exists yet",
            "Flag strategy updated",
            r#"*user@company.com* updated *[new-feature](unleashUrl/projects/my-other-project/features/new-feature)* in project *[my-other-project](unleashUrl/projects/my-other-project)* by updating strategy *newStrategy* in *production*"#,
            "unleashUrl/projects/my-other-project/features/new-feature",
        ),
        (
            "when project archived",
            "Project archived",
            r#"*user@company.com* archived project *my-other-project*"#,
            "unleashUrl/projects-archive",
        ),
        (
            "when rollout percentage changed",
            "Flag strategy updated",
            r#"*user@company.com* updated *[new-feature](unleashUrl/projects/my-other-project/features/new-feature)* in project *[my-other-project](unleashUrl/projects/my-other-project)* by updating strategy *flexibleRollout* in *production* rollout from 67% to 32%"#,
            "unleashUrl/projects/my-other-project/features/new-feature",
        ),
        (
            "when scheduled change request fails ",
            "Scheduled change request failed",
            r#"*Failed* to apply the scheduled change request *[#1](unleashUrl/projects/my-other-project/change-requests/1)* for feature flag *[new-feature](unleashUrl/projects/my-other-project/features/new-feature)* in the *production* environment in project *[my-other-project](unleashUrl/projects/my-other-project)* by *user@company.com*."#,
            "unleashUrl/projects/my-other-project/change-requests/1",
        ),
        (
            "when scheduled change request succeeds ",
            "Scheduled change request applied successfully",
            r#"*Successfully* applied the scheduled change request *[#1](unleashUrl/projects/my-other-project/change-requests/1)* for feature flag *[new-feature](unleashUrl/projects/my-other-project/features/new-feature)* in the *production* environment in project *[my-other-project](unleashUrl/projects/my-other-project)* by *user@company.com*."#,
            "unleashUrl/projects/my-other-project/change-requests/1",
        ),
        (
            "when stickiness changed",
            "Flag strategy updated",
            r#"*user@company.com* updated *[new-feature](unleashUrl/projects/my-other-project/features/new-feature)* in project *[my-other-project](unleashUrl/projects/my-other-project)* by updating strategy *flexibleRollout* in *production* stickiness from default to random"#,
            "unleashUrl/projects/my-other-project/features/new-feature",
        ),
        (
            "when strategy added",
            "Flag strategy added",
            r#"*user@company.com* added strategy *flexibleRollout* to *[new-feature](unleashUrl/projects/my-other-project/features/new-feature)* for the *production* environment in project *[my-other-project](unleashUrl/projects/my-other-project)*"#,
            "unleashUrl/projects/my-other-project/features/new-feature",
        ),
        (
            "when strategy removed",
            "Flag strategy removed",
            r#"*user@company.com* removed strategy *default* from *[new-feature](unleashUrl/projects/my-other-project/features/new-feature)* for the *production* environment in project *[my-other-project](unleashUrl/projects/my-other-project)*"#,
            "unleashUrl/projects/my-other-project/features/new-feature",
        ),
    ];

    #[test]
    fn snapshot_cases_match_unleash() {
        let inputs = snapshot_inputs();
        assert_eq!(inputs.len(), 33);
        assert_eq!(SNAPSHOT.len(), 33);
        let mut matched = 0;
        for (desc, label, text, url) in SNAPSHOT {
            let Some((_, ev)) = inputs.iter().find(|(d, _)| d == desc) else {
                panic!("no input for {desc:?}");
            };
            let got = format_event(ev, URL).unwrap();
            assert_eq!(got.text, *text, "text of {desc:?}");
            assert_eq!(got.label, *label, "label of {desc:?}");
            assert_eq!(got.url.as_deref(), Some(*url), "url of {desc:?}");
            assert_eq!(event_markdown(ev, URL), *text);
            matched += 1;
        }
        assert_eq!(matched, 33);
    }

    fn md(ev: &Value) -> String {
        try_event_markdown(ev, "http://localhost:4242").unwrap()
    }

    fn err(ev: &Value) -> String {
        match try_event_markdown(ev, "http://localhost:4242") {
            Ok(text) => panic!("expected Unleash to throw, got {text:?}"),
            Err(e) => e.message,
        }
    }

    /// `webhook.test.ts` "should allow for eventJson and eventMarkdown in bodyTemplate": the
    /// whole 8.0.3+ pipeline (render with the placeholder, then substitute), against
    /// `__snapshots__/webhook.test.ts.snap`.
    #[test]
    fn webhook_snapshot_body() {
        let ev = json(
            r#"{"id":1,"createdAt":"2024-07-24T00:00:00.000Z","createdByUserId":-1337,"type":"feature-created","createdBy":"some@user.com","featureName":"some-toggle","project":"default","data":{"name":"some-toggle","enabled":false,"strategies":[{"name":"default"}]}}"#,
        );
        let markdown = try_event_markdown(&ev, "http://some-url.com").unwrap();
        let view = template_view(ev.clone(), &stringify(&ev), PLACEHOLDER);
        let template = Template::compile(
            "{\n  \"json\": {{{eventJson}}},\n  \"markdown\": \"{{eventMarkdown}}\"\n}",
        )
        .unwrap();
        let body = substitute_markdown(&template.render(&view).unwrap(), &markdown);
        assert_eq!(
            body,
            r#"{
  "json": "{\"id\":1,\"createdAt\":\"2024-07-24T00:00:00.000Z\",\"createdByUserId\":-1337,\"type\":\"feature-created\",\"createdBy\":\"some@user.com\",\"featureName\":\"some-toggle\",\"project\":\"default\",\"data\":{\"name\":\"some-toggle\",\"enabled\":false,\"strategies\":[{\"name\":\"default\"}]}}",
  "markdown": "*some@user.com* created *[some-toggle](http://some-url.com/projects/default/features/some-toggle)* in project *[default](http://some-url.com/projects/default)*"
}"#
        );
    }

    /// The texts Unleash's Teams and Datadog snapshots hold (same formatter, same defaults),
    /// where `project` is `undefined`: `project = ''` gives `projects//`, and no project link.
    #[test]
    fn teams_and_datadog_snapshots() {
        let url = "http://some-url.com";
        let base = r#""id":1,"createdByUserId":-1337,"createdBy":"some@user.com","featureName":"some-toggle""#;
        let created = json(&format!(
            r#"{{{base},"type":"feature-created","data":{{"name":"some-toggle","enabled":false,"strategies":[{{"name":"default"}}]}}}}"#
        ));
        let archived = json(&format!(
            r#"{{{base},"type":"feature-archived","data":{{"name":"some-toggle"}}}}"#
        ));
        let archived_in_project = json(&format!(
            r#"{{{base},"type":"feature-archived","project":"some-project","data":{{"name":"some-toggle"}}}}"#
        ));
        let disabled = json(&format!(
            r#"{{{base},"type":"feature-environment-disabled","environment":"development","project":"default","data":{{"name":"some-toggle"}}}}"#
        ));
        let cases = [
            (
                &created,
                "*some@user.com* created *[some-toggle](http://some-url.com/projects//features/some-toggle)* in project **",
                "http://some-url.com/projects//features/some-toggle",
            ),
            (
                &archived,
                "*some@user.com* archived *some-toggle* in project **",
                "http://some-url.com/projects//archive",
            ),
            (
                &archived_in_project,
                "*some@user.com* archived *some-toggle* in project *[some-project](http://some-url.com/projects/some-project)*",
                "http://some-url.com/projects/some-project/archive",
            ),
            (
                &disabled,
                "*some@user.com* disabled *[some-toggle](http://some-url.com/projects/default/features/some-toggle)* for the *development* environment in project *[default](http://some-url.com/projects/default)*",
                "http://some-url.com/projects/default/features/some-toggle",
            ),
        ];
        for (ev, text, link) in cases {
            let got = format_event(ev, url).unwrap();
            assert_eq!(got.text, text);
            assert_eq!(got.url.as_deref(), Some(link));
        }
    }

    fn row(id: i64, ty: &str) -> crate::core::event_json::EventRow {
        crate::core::event_json::EventRow {
            id,
            created_at_us: Some(1_795_729_242_045_794),
            event_type: ty.to_string(),
            created_by: "admin".to_string(),
            tags: Some("[]".to_string()),
            project: Some("default".to_string()),
            feature_name: Some("f1".to_string()),
            created_by_user_id: Some(1),
            ..Default::default()
        }
    }

    /// Events as `event_json::event_value` builds them from `events` rows (absent columns are
    /// `null`, not `undefined`), including the example in shared/unleash/README.md that was
    /// captured from a live Unleash.
    #[test]
    fn rows_from_the_events_table() {
        use crate::core::event_json::event_value;
        let mut enabled = row(16, "feature-environment-enabled");
        enabled.environment = Some("development".to_string());
        assert_eq!(
            md(&event_value(&enabled).unwrap()),
            "*admin* enabled *[f1](http://localhost:4242/projects/default/features/f1)* for the *development* environment in project *[default](http://localhost:4242/projects/default)*"
        );

        let mut update = row(23, "feature-strategy-update");
        update.environment = Some("production".to_string());
        update.data = Some(r#"{"id":"s1","name":"flexibleRollout","title":null,"disabled":false,"constraints":[],"parameters":{"groupId":"f1","rollout":"75","stickiness":"default"},"variants":[],"sortOrder":0,"segments":[]}"#.to_string());
        update.pre_data = Some(r#"{"id": "s1", "name": "flexibleRollout", "title": null, "disabled": false, "segments": [], "variants": [], "sortOrder": 0, "parameters": {"groupId": "f1", "rollout": "50", "stickiness": "default"}, "constraints": []}"#.to_string());
        assert_eq!(
            md(&event_value(&update).unwrap()),
            "*admin* updated *[f1](http://localhost:4242/projects/default/features/f1)* in project *[default](http://localhost:4242/projects/default)* by updating strategy *flexibleRollout* in *production* rollout from 50% to 75%"
        );

        // A `null` project is not defaulted to '' (only `undefined` is): Unleash prints "null".
        let mut no_project = row(14, "feature-created");
        no_project.project = None;
        assert_eq!(
            md(&event_value(&no_project).unwrap()),
            "*admin* created *[f1](http://localhost:4242/projects/null/features/f1)* in project **"
        );
        let mut archived = row(37, "feature-archived");
        archived.project = None;
        assert_eq!(
            md(&event_value(&archived).unwrap()),
            "*admin* archived *f1* in project **"
        );
        assert_eq!(
            format_event(&event_value(&archived).unwrap(), "http://x")
                .unwrap()
                .url
                .as_deref(),
            Some("http://x/projects//archive"),
            "the path template prints null as empty"
        );

        let mut tagged = row(21, "feature-tagged");
        tagged.data = Some(r#"{"type":"simple","value":"spike"}"#.to_string());
        assert_eq!(
            md(&event_value(&tagged).unwrap()),
            "*admin* tagged *[f1](http://localhost:4242/projects/default/features/f1)* with *simple:spike* in project *[default](http://localhost:4242/projects/default)*"
        );
    }

    #[test]
    fn event_map_is_complete() {
        assert_eq!(EVENT_MAP.len(), 69);
        for (i, e) in EVENT_MAP.iter().enumerate() {
            assert!(
                EVENT_MAP
                    .iter()
                    .skip(i + 1)
                    .all(|o| o.event_type != e.event_type),
                "{} twice",
                e.event_type
            );
            // Every entry renders, with and without data.
            let ev = json(&format!(
                r#"{{"id":1,"type":"{}","createdBy":"u","createdAt":null,"createdByUserId":1,"data":null,"preData":null,"tags":[],"featureName":null,"project":null,"environment":null}}"#,
                e.event_type
            ));
            let got = format_event(&ev, "U").unwrap();
            assert_eq!(got.label, e.label);
            assert!(got.url.is_some_and(|u| u.starts_with("U/")));
        }
    }

    #[test]
    fn other_event_types() {
        let ev = |ty: &str, extra: &str| {
            json(&format!(
                r#"{{"id":1,"type":"{ty}","createdBy":"alice","createdAt":"2024-01-02T03:04:05.678Z","createdByUserId":1,"data":null,"preData":null,"tags":[],"featureName":"f","project":"p","environment":"dev"{extra}}}"#
            ))
        };
        assert_eq!(
            md(&ev(
                "segment-updated",
                r#","preData":{"name":"beta users"}"#
            )),
            "*alice* updated segment *beta users*"
        );
        assert_eq!(
            md(&ev("change-added", r#","data":{"changeRequestId":7}"#)),
            "*alice* added a change to change request *[#7](http://localhost:4242/projects/p/change-requests/7)* for feature flag *[f](http://localhost:4242/projects/p/features/f)* in the *dev* environment in project *[p](http://localhost:4242/projects/p)*"
        );
        // changeRequestId from preData when data has none; a falsy one gives no link.
        let from_pre = ev(
            "change-request-applied",
            r#","data":{"changeRequestId":0},"preData":{"changeRequestId":"12"}"#,
        );
        let got = format_event(&from_pre, "http://localhost:4242").unwrap();
        assert!(
            got.text
                .contains("*[#12](http://localhost:4242/projects/p/change-requests/12)*")
        );
        // The link path reads data.changeRequestId only.
        assert_eq!(
            got.url.as_deref(),
            Some("http://localhost:4242/projects/p/change-requests/0")
        );
        assert_eq!(
            md(&ev("change-request-created", "")),
            "*alice* created change request "
        );
        assert_eq!(
            md(&ev(
                "release-plan-milestone-started",
                r#","data":{"name":"plan","milestoneName":"m2"}"#
            )),
            "*alice* started milestone *m2* in release plan *plan* for *[f](http://localhost:4242/projects/p/features/f)* for the *dev* environment in project *[p](http://localhost:4242/projects/p)*"
        );
        assert_eq!(
            md(&ev(
                "user-access-request-registered",
                r#","data":{"email":"a@b.c"}"#
            )),
            "*a@b.c* requested access to Unleash"
        );
        assert_eq!(
            md(&ev(
                "feature-strategy-add",
                r#","data":{"name":"default","title":"My title"}"#
            )),
            "*alice* added strategy *My title* to *[f](http://localhost:4242/projects/p/features/f)* for the *dev* environment in project *[p](http://localhost:4242/projects/p)*"
        );
        // With no truthy title or name the last operand, data?.name, is the title: a falsy
        // value other than null/undefined still prints (mustache.js skips only those two).
        assert_eq!(
            md(&ev("feature-strategy-remove", r#","data":{"name":false}"#)),
            "*alice* removed strategy *false* from *[f](http://localhost:4242/projects/p/features/f)* for the *dev* environment in project *[p](http://localhost:4242/projects/p)*"
        );
        let variants = format_event(&ev("feature-environment-variants-updated", ""), "u/").unwrap();
        assert_eq!(
            variants.text,
            "*alice* updated variants for *[f](u//projects/p/features/f)* for the *dev* environment in project *[p](u//projects/p)*",
            "unleash_url is used verbatim, trailing slash and all"
        );
        assert_eq!(
            variants.url.as_deref(),
            Some("u//projects/p/features/f/variants")
        );
        assert_eq!(
            md(&ev(
                "feature-untagged",
                r#","preData":{"type":"simple","value":"old"}"#
            )),
            "*alice* untagged *[f](http://localhost:4242/projects/p/features/f)* with *simple:old* in project *[p](http://localhost:4242/projects/p)*"
        );
        assert_eq!(
            md(&ev(
                "feature-project-change",
                r#","data":{"oldProject":"q"}"#
            )),
            "*alice* moved *[f](http://localhost:4242/projects/p/features/f)* from *q* to *[p](http://localhost:4242/projects/p)*"
        );
        // Numbers and arrays print as JavaScript prints them.
        assert_eq!(
            md(&ev(
                "api-token-created",
                r#","data":{"username":[1.50,null,"x",[2,3]]}"#
            )),
            "*alice* created API token *1.5,,x,2,3*"
        );
        assert_eq!(
            md(&ev("group-created", r#","data":{"name":{"a":1}}"#)),
            "*alice* created group *[object Object]*"
        );
    }

    #[test]
    fn values_are_never_html_escaped() {
        let ev = json(
            r#"{"id":1,"type":"feature-tagged","createdBy":"<b>&\"'/`=","createdAt":null,"createdByUserId":1,"data":{"type":"a&b","value":"<i>"},"preData":null,"tags":[],"featureName":"x<y","project":"p&q","environment":null}"#,
        );
        assert_eq!(
            md(&ev),
            "*<b>&\"'/`=* tagged *[x<y](http://localhost:4242/projects/p&q/features/x<y)* with *a&b:<i>* in project *[p&q](http://localhost:4242/projects/p&q)*"
        );
        assert_eq!(
            format_event(&ev, "u").unwrap().url.as_deref(),
            Some("u/projects/p&q/features/x<y")
        );
    }

    #[test]
    fn unknown_types_use_the_fallback_template() {
        let ev = |ty: &str, by: &str, data: &str| {
            let mut o = vec![
                ("id".to_string(), Value::Number(5.0)),
                ("type".to_string(), Value::String(ty.to_string())),
                ("createdBy".to_string(), Value::String(by.to_string())),
                (
                    "createdAt".to_string(),
                    Value::String("2026-11-26T21:40:42.045Z".to_string()),
                ),
            ];
            o.push(("data".to_string(), json(data)));
            o.push(("project".to_string(), Value::String("p".to_string())));
            Value::Object(o)
        };
        let got = format_event(&ev("feature-updated", "admin", "null"), "u").unwrap();
        assert_eq!(got.text, "*admin* triggered *feature-updated*");
        assert_eq!(got.label, "feature-updated");
        assert_eq!(got.url, None);
        assert_eq!(
            md(&ev("", "", "null")),
            "* triggered *",
            "bold() of a falsy value is a lone marker"
        );
        // Unleash renders the fallback text as a Mustache template, without escaping.
        assert_eq!(
            md(&ev(
                "t",
                "{{event.data.x}} {{b}} {{ project }}",
                r#"{"x":"<&>"}"#
            )),
            "*<&> * [p](http://localhost:4242/projects/p)* triggered *t*"
        );
        assert_eq!(
            md(&ev("t", "{{event.createdAt}}", "null")),
            "*Thu Nov 26 2026 21:40:42 GMT+0000 (Coordinated Universal Time)* triggered *t*"
        );
        assert_eq!(
            md(&ev(
                "t",
                "{{=<% %>=}}<%event.data.x%> {{x}} <%{event.data.x}%>",
                r#"{"x":"'"}"#
            )),
            "*' {{x}} '* triggered *t*"
        );
        assert_eq!(
            md(&ev(
                "t",
                "{{#event.data}}{{x}}{{/event.data}}{{! note }}",
                r#"{"x":"="}"#
            )),
            "*=* triggered *t*"
        );
        // Where mustache.js throws, so does Unleash's formatter.
        assert_eq!(err(&ev("t", "{{oops", "null")), "Error: Unclosed tag at 22");
        assert_eq!(
            err(&ev("t", "{{#a}}", "null")),
            "Error: Unclosed section \"a\" at 22"
        );
        // Positions are the original template's, not the rewritten one's.
        assert_eq!(
            err(&ev("t", "{{x}}{{/y}}", "null")),
            "Error: Unopened section \"y\" at 6"
        );
        assert!(err(&ev("constructor", "a", "null")).starts_with("TypeError: Invalid template!"));
        assert!(err(&ev("__proto__", "a", "null")).starts_with("TypeError: Invalid template!"));
        // event_markdown still gives a line for those.
        assert_eq!(
            event_markdown(&ev("t", "{{oops", "null"), "u"),
            "*{{oops* triggered *t*"
        );
        assert_eq!(
            event_markdown(&ev("valueOf", "a", "null"), "u"),
            "*a* triggered *valueOf*"
        );
    }

    fn update(data: &str, pre: &str) -> Value {
        json(&format!(
            r#"{{"id":1,"type":"feature-strategy-update","createdBy":"u","createdAt":null,"createdByUserId":1,"data":{data},"preData":{pre},"tags":[],"featureName":"f","project":"p","environment":"prod"}}"#
        ))
    }

    /// The strategy-change description alone.
    fn change(data: &str, pre: &str) -> String {
        let text = md(&update(data, pre));
        let prefix = "*u* updated *[f](http://localhost:4242/projects/p/features/f)* in project *[p](http://localhost:4242/projects/p)* ";
        match text.strip_prefix(prefix) {
            Some(rest) => rest.to_string(),
            None => panic!("unexpected text {text:?}"),
        }
    }

    #[test]
    fn strategy_update_texts() {
        // Added parameters (no old value): "to" only.
        assert_eq!(
            change(
                r#"{"name":"flexibleRollout","parameters":{"rollout":"50","stickiness":"userId","groupId":"g"}}"#,
                "null"
            ),
            "by updating strategy *flexibleRollout* in *prod* stickiness to userId; rollout to 50%; groupId to g"
        );
        // Removed ones print `undefined`; a number and a string never compare equal.
        assert_eq!(
            change(
                r#"{"name":"flexibleRollout","parameters":{"rollout":50}}"#,
                r#"{"name":"flexibleRollout","parameters":{"rollout":"50","groupId":"g"}}"#
            ),
            "by updating strategy *flexibleRollout* in *prod* rollout from 50% to 50%; groupId from g to undefined"
        );
        // title beats name; no environment gives a lone marker.
        let ev = json(
            r#"{"type":"feature-strategy-update","createdBy":"u","data":{"name":"userWithId","title":"Beta","parameters":{"userIds":"a,b"}},"preData":{"name":"userWithId","parameters":{"userIds":"a"}},"featureName":"f","project":"p"}"#,
        );
        assert!(
            md(&ev).ends_with(" by updating strategy *Beta* in *"),
            "{}",
            md(&ev)
        );
        // Segments and constraints, with inverted, unknown operators and missing values.
        assert_eq!(
            change(
                r#"{"name":"default","segments":[1,2],"constraints":[{"contextName":"userId","operator":"IN","values":null,"inverted":1},{"contextName":"x","operator":"SOMETHING_NEW","value":null},{"operator":7}]}"#,
                r#"{"name":"default","segments":[3]}"#
            ),
            "by updating strategy *default* in *prod* constraints from empty set of constraints to [userId not is one of (undefined), x SOMETHING_NEW null, undefined 7 (undefined)]; segments from (3) to (1,2)"
        );
        // Unchanged lists print nothing; `default` without data falls back to preData's name.
        assert_eq!(
            change(
                r#"{"name":"default","segments":[1]}"#,
                r#"{"name":"default","segments":[1]}"#
            ),
            "by updating strategy *default* in *prod*"
        );
        assert_eq!(
            change(
                "null",
                r#"{"name":"default","constraints":[{"contextName":"a","operator":"IN","values":["b"]}]}"#
            ),
            "by updating strategy *default* in *prod* constraints from [a is one of (b)] to empty set of constraints"
        );
        // remoteAddress: array values, a new strategy (no preData), unchanged values.
        assert_eq!(
            change(
                r#"{"name":"remoteAddress","parameters":{"IPs":["10.0.0.1","10.0.0.2"]}}"#,
                "null"
            ),
            "by updating strategy *remoteAddress* in *prod* IPs to [10.0.0.1,10.0.0.2]"
        );
        assert_eq!(
            change(
                r#"{"name":"applicationHostname","parameters":{"hostNames":"a"},"segments":[5]}"#,
                r#"{"name":"applicationHostname","parameters":{"hostNames":"a"}}"#
            ),
            "by updating strategy *applicationHostname* in *prod* segments from empty set of segments to (5)"
        );
        assert_eq!(
            change(
                r#"{"name":"applicationHostname","parameters":{"hostNames":""}}"#,
                r#"{"name":"applicationHostname","parameters":{"hostNames":"a,b"}}"#
            ),
            "by updating strategy *applicationHostname* in *prod* hostNames from [a,b] to empty set of hostNames"
        );
        // Other strategies (userWithId, gradualRollout..., custom ones) get the heading only.
        assert_eq!(
            change(
                r#"{"name":"userWithId","parameters":{"userIds":"a,b"},"constraints":[{"contextName":"a","operator":"IN","values":["b"]}]}"#,
                r#"{"name":"userWithId","parameters":{"userIds":"a"}}"#
            ),
            "by updating strategy *userWithId* in *prod*"
        );
        // Other event types never get the description, even with strategy data.
        let add = json(
            r#"{"type":"feature-strategy-add","createdBy":"u","data":{"name":"flexibleRollout","parameters":{"rollout":"5"}},"featureName":"f","project":"p","environment":"e"}"#,
        );
        assert!(!md(&add).contains("by updating"));
    }

    #[test]
    fn strategy_update_throws_where_unleash_throws() {
        // `preData.parameters[name]` with no parameters.
        assert_eq!(
            err(&update(
                r#"{"name":"remoteAddress","parameters":{"IPs":"1"}}"#,
                r#"{"name":"remoteAddress"}"#
            )),
            "TypeError: Cannot read properties of undefined (reading 'IPs')"
        );
        // `values.length` of a missing value.
        assert_eq!(
            err(&update(
                r#"{"name":"remoteAddress","parameters":{}}"#,
                r#"{"name":"remoteAddress","parameters":{"IPs":"1"}}"#
            )),
            "TypeError: Cannot read properties of undefined (reading 'length')"
        );
        // `null.length`, `"str".map`, `"str".join`, `null.hasOwnProperty`, `[].values.join`.
        for (data, msg) in [
            (
                r#"{"name":"default","constraints":null}"#,
                "reading 'length'",
            ),
            (
                r#"{"name":"default","constraints":"abc"}"#,
                "constraints.map is not a function",
            ),
            (
                r#"{"name":"default","segments":"abc"}"#,
                "segments.join is not a function",
            ),
            (
                r#"{"name":"default","constraints":[null]}"#,
                "reading 'hasOwnProperty'",
            ),
            (
                r#"{"name":"default","constraints":[[1]]}"#,
                "join is not a function",
            ),
            (
                r#"{"name":"default","constraints":[{"values":"ab"}]}"#,
                "join is not a function",
            ),
            (
                r#"{"name":"flexibleRollout","parameters":{"rollout":{"toString":1}}}"#,
                "Cannot convert object to primitive value",
            ),
        ] {
            let e = err(&update(data, "null"));
            assert!(e.contains(msg), "{data}: {e}");
        }
        // Empty strings have length 0, so these do not throw.
        assert_eq!(
            change(
                r#"{"name":"default","constraints":"","segments":""}"#,
                "null"
            ),
            "by updating strategy *default* in *prod*"
        );
        // The fallback line for event_markdown.
        assert_eq!(
            event_markdown(
                &update(r#"{"name":"default","constraints":null}"#, "null"),
                "u"
            ),
            "*u* triggered *feature-strategy-update*"
        );
    }

    #[test]
    fn rewrite_marks_only_escaped_variables() {
        let cases = [
            ("", ""),
            ("plain", "plain"),
            ("{{a}}", "{{&a}}"),
            ("{{ a }} {{{b}}} {{&c}}", "{{ &a }} {{{b}}} {{&c}}"),
            (
                "{{#s}}{{x}}{{/s}}{{^t}}{{! c }}{{/t}}{{> p}}",
                "{{#s}}{{&x}}{{/s}}{{^t}}{{! c }}{{/t}}{{> p}}",
            ),
            (
                "{{=<% %>=}}<%a%>{{b}}<%={{ }}=%>{{c}}",
                "{{=<% %>=}}<%&a%>{{b}}<%={{ }}=%>{{&c}}",
            ),
            ("{{ {x} }}}", "{{ {x} }}}"),
            ("é{{\u{3000}ü }}", "é{{\u{3000}&ü }}"),
            ("{{}}", "{{&}}"),
        ];
        for (src, want) in cases {
            assert_eq!(raw_variable_tags(src).as_deref(), Some(want), "{src:?}");
        }
        for bad in [
            "{{a",
            "{{",
            "a {{=x=}}",
            "{{{a}}",
            "{{ {x} }}",
            "{{= a =}} a",
        ] {
            assert_eq!(raw_variable_tags(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn substitute_outside_and_inside_quotes() {
        let md = "*a* \"q\" \\ \n\t\u{1} é";
        let esc = "*a* \\\"q\\\" \\\\ \\n\\t\\u0001 é";
        let p = PLACEHOLDER;
        assert_eq!(substitute_markdown(p, md), md);
        assert_eq!(
            substitute_markdown(&format!("\"{p}\""), md),
            format!("\"{esc}\"")
        );
        assert_eq!(
            substitute_markdown(&format!("{p} \"{p}\" {p}"), md),
            format!("{md} \"{esc}\" {md}")
        );
        // No placeholder: unchanged.
        assert_eq!(substitute_markdown("{\"a\": \"b\"}", md), "{\"a\": \"b\"}");
    }

    #[test]
    fn substitute_tracks_escapes() {
        let p = PLACEHOLDER;
        let md = "x\"y";
        // An escaped quote does not end the string.
        assert_eq!(
            substitute_markdown(&format!(r#""a\" {p}""#), md),
            r#""a\" x\"y""#
        );
        // An escaped backslash does not escape the quote after it.
        assert_eq!(
            substitute_markdown(&format!(r#""a\\" {p}"#), md),
            r#""a\\" x"y"#
        );
        // A backslash right before the placeholder escapes its first character only.
        assert_eq!(substitute_markdown(&format!(r#""\{p}""#), md), r#""\x\"y""#);
        assert_eq!(substitute_markdown(&format!(r#"\{p}"#), md), r#"\x"y"#);
        // Quotes outside JSON strings count too: the scan knows no JSON.
        assert_eq!(
            substitute_markdown(&format!("it's \"{p} and {p}"), md),
            "it's \"x\\\"y and x\\\"y"
        );
        // Non-ASCII text before the placeholder does not shift the state.
        assert_eq!(
            substitute_markdown(&format!("\"é😀\" {p} \"ü{p}\""), md),
            "\"é😀\" x\"y \"üx\\\"y\""
        );
    }

    #[test]
    fn substitute_is_literal_and_non_overlapping() {
        let p = PLACEHOLDER;
        // Replacement patterns are not interpreted, the Markdown is not rescanned.
        assert_eq!(substitute_markdown(p, "$&-toggle $1 $$"), "$&-toggle $1 $$");
        assert_eq!(
            substitute_markdown(&format!("{p}{p}"), p),
            format!("{p}{p}")
        );
        // Placeholders sharing a NUL: replaceAll takes the first, then searches after it.
        let overlapping = "\0UNLEASH_EVENT_MARKDOWN\0UNLEASH_EVENT_MARKDOWN\0";
        assert_eq!(
            substitute_markdown(overlapping, "M"),
            "MUNLEASH_EVENT_MARKDOWN\0"
        );
        // Control characters use JSON.stringify's forms inside strings.
        assert_eq!(
            substitute_markdown(&format!("\"{p}\""), "\u{8}\u{c}\u{1f}\u{7f}\u{2028}/"),
            "\"\\b\\f\\u001f\u{7f}\u{2028}/\""
        );
    }
}
