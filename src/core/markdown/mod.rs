//! The one-line Markdown summary of an event that Unleash offers body templates as
//! `{{eventMarkdown}}`, byte for byte, and Unleash's rule for putting it into a rendered body.
//!
//! Unleash's webhook computes `eventMarkdown` with `FeatureEventFormatterMd` (Unleash 8.1,
//! `src/lib/addons/feature-event-formatter-md.ts`, with its defaults: Markdown links, `*bold*`).
//! Users' templates already depend on those exact bytes, so this is a port of that class, not a
//! reimplementation of its intent:
//!
//! - Known event types have a Mustache message and link path (`EVENT_MAP` in
//!   `feature-event-formatter-md-events.ts`, copied verbatim in events.rs); other types fall back to
//!   `*<createdBy>* triggered *<type>*`, which Unleash *also* renders as a Mustache template.
//! - Unleash renders these messages with mustache.js and an identity `escape`, so `{{x}}` prints
//!   `String(x)` without HTML escaping: [`Template::render_unescaped`]; everything else
//!   (lookups, `String(v)`, parsing) is mustache.js's.
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
use crate::core::template::Template;

mod events;

use events::{
    EVENT_MAP, FEATURE_ARCHIVED, FEATURE_STRATEGY_UPDATE, OBJECT_PROTOTYPE_KEYS,
    OPERATOR_DESCRIPTIONS,
};

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
    let escaped_md = js::quote_json_string(markdown);
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
    Template::compile(template)
        .and_then(|t| t.render_unescaped(view))
        .map_err(|e| MarkdownError {
            message: e.js_message(),
        })
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

#[cfg(test)]
mod tests;
