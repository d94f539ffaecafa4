//! The renderer: mustache.js's `Context` and `Writer.renderTokens`.

use super::builtins::{Got, call, js_string, lookup_in};
use super::error::{Limits, TemplateError};
use super::parser::{Name, Token};
use crate::core::js::Value;

/// Renders `tokens` against `view` (the root context) within `limits`; `html_escape: false`
/// prints `{{x}}` as `{{{x}}}` (mustache.js with an identity `escape`).
pub(super) fn render(
    tokens: &[Token],
    view: &Value,
    limits: &Limits,
    html_escape: bool,
) -> Result<String, TemplateError> {
    let mut r = Renderer {
        stack: vec![Context::new(Frame::Ref(view))],
        out: String::new(),
        steps: 0,
        limits: *limits,
        html_escape,
    };
    r.tokens(tokens)?;
    Ok(r.out)
}

/// A context's view: borrowed from the caller's value, or computed during rendering (a
/// string's length, a character, a built-in's result).
enum Frame<'v> {
    Ref(&'v Value),
    Own(Value),
}

/// mustache.js's `Context`: a view, plus the one observable effect of its lookup cache.
struct Context<'v> {
    view: Frame<'v>,
    /// mustache.js caches every lookup in a plain object (`cache[name] = value`) and asks
    /// `cache.hasOwnProperty(name)` before each lookup. Looking up `hasOwnProperty` when it
    /// resolves to data (an own key) or to nothing, or `__proto__` when it resolves to `null`
    /// or to an object with an own `hasOwnProperty` key, breaks that call: every later lookup
    /// in this context throws `TypeError: cache.hasOwnProperty is not a function`.
    cache_broken: bool,
}

impl<'v> Context<'v> {
    fn new(view: Frame<'v>) -> Self {
        Context {
            view,
            cache_broken: false,
        }
    }
}

/// Whether storing `found` as `cache[name]` breaks `cache.hasOwnProperty` (see [`Context`]).
fn breaks_cache(name: &Name, found: &Got<'_>) -> bool {
    let Name::Simple(key) = name else {
        return false;
    };
    let proto_breaks = |v: &Value| {
        matches!(v, Value::Null)
            || (matches!(v, Value::Object(_)) && v.get("hasOwnProperty").is_some())
    };
    match key.as_str() {
        "hasOwnProperty" => !matches!(found, Got::Func(_)),
        "__proto__" => match found {
            Got::Ref(v) => proto_breaks(v),
            Got::Own(v) => proto_breaks(v),
            Got::Undefined | Got::Boxed(_) | Got::Func(_) => false,
        },
        _ => false,
    }
}

struct Renderer<'v> {
    stack: Vec<Context<'v>>,
    out: String,
    steps: u64,
    limits: Limits,
    /// Whether `{{x}}` is HTML-escaped (mustache.js's default `escape`).
    html_escape: bool,
}

/// The entity map of mustache.js's `escapeHtml`.
fn escape_html_into(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '/' => out.push_str("&#x2F;"),
            '`' => out.push_str("&#x60;"),
            '=' => out.push_str("&#x3D;"),
            c => out.push(c),
        }
    }
}

impl<'v> Renderer<'v> {
    fn tick(&mut self, n: u64) -> Result<(), TemplateError> {
        self.steps = self.steps.saturating_add(n);
        if self.steps > self.limits.max_steps {
            Err(TemplateError::TooMuchWork {
                limit: self.limits.max_steps,
            })
        } else {
            Ok(())
        }
    }

    fn check_output(&self) -> Result<(), TemplateError> {
        if self.out.len() > self.limits.max_output_bytes {
            Err(TemplateError::OutputTooLarge {
                limit: self.limits.max_output_bytes,
            })
        } else {
            Ok(())
        }
    }

    /// The innermost context's view (`this.view` in mustache.js).
    fn top(&self) -> Got<'v> {
        match self.stack.last().map(|c| &c.view) {
            Some(Frame::Ref(v)) => Got::Ref(v),
            Some(Frame::Own(v)) => Got::Own(v.clone()),
            None => Got::Undefined,
        }
    }

    /// `Context.prototype.lookup`: search the stack innermost first; a function found is
    /// called with the innermost view as `this`.
    fn lookup(&mut self, name: &Name) -> Result<Got<'v>, TemplateError> {
        if self.stack.last().is_some_and(|c| c.cache_broken) {
            return Err(TemplateError::TypeError {
                message: "cache.hasOwnProperty is not a function".to_string(),
            });
        }
        let mut found = Got::Undefined;
        if let Name::Dot = name {
            found = self.top();
        } else {
            let mut work: u64 = 0;
            for ctx in self.stack.iter().rev() {
                work = work.saturating_add(1);
                let hit = match &ctx.view {
                    Frame::Ref(v) => lookup_in(v, name, &mut work)?,
                    Frame::Own(v) => lookup_in(v, name, &mut work)?.map(Got::into_owned),
                };
                if let Some(g) = hit {
                    found = g;
                    break;
                }
            }
            self.tick(work)?;
            if let Some(top) = self.stack.last_mut().filter(|_| breaks_cache(name, &found)) {
                top.cache_broken = true;
            }
        }
        match found {
            Got::Func(f) => call(f, self.top()),
            other => Ok(other),
        }
    }

    fn emit_text(&mut self, s: &str) -> Result<(), TemplateError> {
        self.out.push_str(s);
        self.check_output()
    }

    /// `escapedValue` / `unescapedValue`: null and undefined print nothing, others `String(v)`.
    fn print(&mut self, got: &Got<'_>, escape: bool) -> Result<(), TemplateError> {
        let escape = escape && self.html_escape;
        let v: &Value = match got {
            Got::Ref(v) => v,
            Got::Own(v) | Got::Boxed(v) => v,
            Got::Undefined | Got::Func(_) => return Ok(()),
        };
        match v {
            Value::Null => {}
            Value::String(s) if escape => escape_html_into(s, &mut self.out),
            Value::String(s) => self.out.push_str(s),
            // Numbers print without escaping, and their text never needs it.
            other if escape && !matches!(other, Value::Number(_)) => {
                escape_html_into(&js_string(other)?, &mut self.out);
            }
            other => self.out.push_str(&js_string(other)?),
        }
        self.check_output()
    }

    fn with_frame(&mut self, frame: Frame<'v>, children: &[Token]) -> Result<(), TemplateError> {
        self.stack.push(Context::new(frame));
        let r = self.tokens(children);
        self.stack.pop();
        r
    }

    /// `renderSection`: falsy skips, arrays iterate, other objects and strings/numbers become
    /// the context once, `true` renders in the current context.
    fn section(&mut self, got: Got<'v>, children: &[Token]) -> Result<(), TemplateError> {
        match got {
            Got::Undefined | Got::Func(_) => Ok(()),
            Got::Ref(Value::Array(items)) => {
                for item in items {
                    self.tick(1)?;
                    self.with_frame(Frame::Ref(item), children)?;
                }
                Ok(())
            }
            Got::Own(Value::Array(items)) => {
                for item in items {
                    self.tick(1)?;
                    self.with_frame(Frame::Own(item), children)?;
                }
                Ok(())
            }
            Got::Ref(v) if !v.is_truthy() => Ok(()),
            Got::Own(v) if !v.is_truthy() => Ok(()),
            Got::Ref(Value::Bool(_)) | Got::Own(Value::Bool(_)) => self.tokens(children),
            Got::Ref(v) => self.with_frame(Frame::Ref(v), children),
            // A boxed primitive is an object, so truthy and pushed even when `0`, `""`, `false`.
            Got::Own(v) | Got::Boxed(v) => self.with_frame(Frame::Own(v), children),
        }
    }

    /// `renderInverted`: renders when falsy or an empty array.
    fn inverted(&mut self, got: &Got<'_>, children: &[Token]) -> Result<(), TemplateError> {
        let show = match got {
            Got::Undefined => true,
            Got::Ref(v) => !v.is_truthy() || matches!(v, Value::Array(a) if a.is_empty()),
            Got::Own(v) => !v.is_truthy() || matches!(v, Value::Array(a) if a.is_empty()),
            Got::Boxed(_) | Got::Func(_) => false,
        };
        if show { self.tokens(children) } else { Ok(()) }
    }

    fn tokens(&mut self, tokens: &[Token]) -> Result<(), TemplateError> {
        for t in tokens {
            self.tick(1)?;
            match t {
                Token::Text(s) => self.emit_text(s)?,
                Token::Var { name, escape } => {
                    let got = self.lookup(name)?;
                    self.print(&got, *escape)?;
                }
                Token::Section {
                    name,
                    inverted: false,
                    children,
                } => {
                    let got = self.lookup(name)?;
                    self.section(got, children)?;
                }
                Token::Section {
                    name,
                    inverted: true,
                    children,
                } => {
                    let got = self.lookup(name)?;
                    self.inverted(&got, children)?;
                }
            }
        }
        Ok(())
    }
}
