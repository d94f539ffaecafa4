//! Mustache templates rendered exactly as mustache.js 4.2.0 renders them, but safely.
//!
//! Unleash renders webhook body templates with `Mustache.render(template, view)` from
//! mustache.js 4.2.0. Users' existing templates must keep producing the same bytes, so this is a
//! port of that library's parser (`parseTemplate` with its regex scanner, standalone-line
//! whitespace stripping, set delimiters, comments, sections) and renderer (context stack,
//! dotted-name lookup, HTML escaping, JavaScript truthiness and `String(v)` printing). No Rust
//! Mustache crate matches it, and the `mustache` crate panics on some data and reads partials
//! from disk.
//!
//! Safety, on any template and any view: nothing panics, partials never touch the filesystem
//! (they always render empty, as mustache.js does when no partials are given), section nesting
//! is limited to [`MAX_SECTION_DEPTH`] (so recursion is bounded), and rendering stops with an
//! error past [`Limits`] on output size and work (nested sections over arrays multiply).
//!
//! # Known differences from mustache.js 4.2.0
//!
//! None on the conformance corpus (83/83). Outside it, deliberately or because JavaScript's
//! object model is only partly modelled:
//! - Sections nested deeper than [`MAX_SECTION_DEPTH`] are a compile error, and rendering past
//!   [`Limits`] is an error; mustache.js has no such limits (it would exhaust its stack or
//!   memory instead).
//! - Values are never functions, so there are no lambdas / higher-order sections.
//! - JavaScript prototype properties: modelled are `Object.prototype`'s `constructor`,
//!   `toString`, `hasOwnProperty`, `valueOf`, `isPrototypeOf` and `propertyIsEnumerable`;
//!   `Array.prototype`'s `toString` and `constructor`; and `Date.prototype`'s `constructor`
//!   (`Date()` as a function: the current time as text), getters (`getTime`, `valueOf`,
//!   `get[UTC]FullYear/Month/Date/Day/Hours/Minutes/Seconds/Milliseconds`,
//!   `getTimezoneOffset`, `getYear`) and printers (`toString`, `toISOString`, `toUTCString`,
//!   `toGMTString`, `toDateString`, `toTimeString`), each called with the innermost context as
//!   `this` like mustache.js does, including the TypeErrors V8 throws. Every other inherited
//!   property — other `Array`/`String`/`Number`/`Boolean`/`Function` prototype members
//!   (`list.join`, `s.toUpperCase`, `n.toFixed`, `f.name`), `__proto__` (other than as an own
//!   key), `__defineGetter__` and friends, `toLocaleString`, `Date` setters, `toJSON` and
//!   `toLocale*` — is treated as absent, so the lookup falls through to outer contexts and
//!   prints empty where JavaScript would find a function and call it. Reaching them needs a
//!   template written to probe JavaScript internals; each is cheap to add if ever needed.
//! - `valueOf` on a primitive context gives a wrapper object in JavaScript: always truthy, as
//!   here; but used as a section context it behaves as the primitive for lookups inside it
//!   (JavaScript would find the wrapper's prototype members there, and name it
//!   `[object String]` in error messages).
//! - JavaScript strings are UTF-16: `{{s.0}}` on a string starting with an astral character
//!   yields a lone surrogate, which a Rust string cannot hold; it prints U+FFFD (also inside
//!   error messages). Node would also send U+FFFD for a lone surrogate in a UTF-8 body, but two
//!   adjacent halves printed by two tags would rejoin there.
//!
//! Reproduced although odd: `String(v)` of an object with an own `toString` key throws
//! `Cannot convert object to primitive value` (values are never callable), and mustache.js's
//! lookup cache breaks after a `hasOwnProperty` or `__proto__` lookup that finds data (see
//! `Context`), making later lookups in that context throw.

use std::fmt;

use crate::core::js::{self, Value};

/// Deepest section nesting a template may have; deeper is a compile error.
pub const MAX_SECTION_DEPTH: usize = 200;

/// Bounds on one render, so that a hostile template cannot exhaust memory or time: nested
/// sections over arrays multiply (`{{#a}}{{#a}}…` over a 10-element array 30 levels deep would
/// otherwise run for ever).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest output in bytes.
    pub max_output_bytes: usize,
    /// Most work units: tokens rendered, contexts searched, object keys and string units
    /// scanned by lookups, array items visited.
    pub max_steps: u64,
}

impl Default for Limits {
    /// 64 MiB of output and 20 million steps: far above any real webhook body, and a few tenths
    /// of a second of work at most.
    fn default() -> Self {
        Limits {
            max_output_bytes: 64 << 20,
            max_steps: 20_000_000,
        }
    }
}

/// A template that failed to compile or render.
///
/// `Display` gives the message as mustache.js / V8 word it (without the `Error: ` prefix);
/// [`TemplateError::js_message`] adds the JavaScript error name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplateError {
    /// A tag is not closed. `pos`: UTF-16 offset where the scanner stopped.
    UnclosedTag {
        /// UTF-16 offset, as mustache.js reports it.
        pos: usize,
    },
    /// A section is not closed, or is closed by a tag with another name.
    UnclosedSection {
        /// The open section's name.
        name: String,
        /// UTF-16 offset of the mismatched closing tag, or of the end of the template.
        pos: usize,
    },
    /// A closing tag without an open section.
    UnopenedSection {
        /// The closing tag's name.
        name: String,
        /// UTF-16 offset of the closing tag.
        pos: usize,
    },
    /// A set-delimiter tag that does not give two delimiters.
    InvalidTags {
        /// What the tag held.
        tags: String,
    },
    /// Sections nested deeper than [`MAX_SECTION_DEPTH`] (not in mustache.js).
    NestedTooDeep {
        /// UTF-16 offset of the section tag that went too deep.
        pos: usize,
    },
    /// A JavaScript `TypeError` mustache.js would throw while rendering (e.g. calling a `Date`
    /// method on something that is not a date, or looking up a name in a `null` context).
    TypeError {
        /// V8's message.
        message: String,
    },
    /// A JavaScript `RangeError` (e.g. `toISOString` of an invalid date).
    RangeError {
        /// V8's message.
        message: String,
    },
    /// The output grew beyond [`Limits::max_output_bytes`] (not in mustache.js).
    OutputTooLarge {
        /// The limit that was hit.
        limit: usize,
    },
    /// Rendering took more than [`Limits::max_steps`] (not in mustache.js).
    TooMuchWork {
        /// The limit that was hit.
        limit: u64,
    },
}

impl TemplateError {
    /// The JavaScript error class mustache.js would throw: `Error`, `TypeError` or
    /// `RangeError` (`Error` for this crate's own limits).
    pub fn js_name(&self) -> &'static str {
        match self {
            TemplateError::TypeError { .. } => "TypeError",
            TemplateError::RangeError { .. } => "RangeError",
            _ => "Error",
        }
    }

    /// `String(error)` in JavaScript: `Error: Unclosed tag at 18`,
    /// `TypeError: this is not a Date object.`.
    pub fn js_message(&self) -> String {
        format!("{}: {}", self.js_name(), self)
    }
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TemplateError::UnclosedTag { pos } => write!(f, "Unclosed tag at {pos}"),
            TemplateError::UnclosedSection { name, pos } => {
                write!(f, "Unclosed section \"{name}\" at {pos}")
            }
            TemplateError::UnopenedSection { name, pos } => {
                write!(f, "Unopened section \"{name}\" at {pos}")
            }
            TemplateError::InvalidTags { tags } => write!(f, "Invalid tags: {tags}"),
            TemplateError::NestedTooDeep { pos } => write!(
                f,
                "Sections nested deeper than {MAX_SECTION_DEPTH} levels at {pos}"
            ),
            TemplateError::TypeError { message } | TemplateError::RangeError { message } => {
                f.write_str(message)
            }
            TemplateError::OutputTooLarge { limit } => {
                write!(f, "Rendered output larger than {limit} bytes")
            }
            TemplateError::TooMuchWork { limit } => {
                write!(f, "Rendering needed more than {limit} steps")
            }
        }
    }
}

impl std::error::Error for TemplateError {}

/// A compiled template: parse once, render many times (from any thread).
#[derive(Debug, Clone)]
pub struct Template {
    tokens: Vec<Token>,
}

#[derive(Debug, Clone)]
enum Token {
    Text(String),
    /// `{{name}}` (escaped) or `{{{name}}}` / `{{&name}}` (raw).
    Var {
        name: Name,
        escape: bool,
    },
    /// `{{#name}}…{{/name}}` or, inverted, `{{^name}}…{{/name}}`.
    Section {
        name: Name,
        inverted: bool,
        children: Vec<Token>,
    },
}

/// A tag's name, pre-split the way `Context.prototype.lookup` treats it.
#[derive(Debug, Clone)]
enum Name {
    /// `.`: the current context's view.
    Dot,
    /// No `.` after the first character: a property of some context's view.
    Simple(String),
    /// `a.b.c`: the whole path is tried against each context in turn.
    Dotted(Vec<String>),
}

impl Name {
    fn new(full: &str) -> Name {
        if full == "." {
            Name::Dot
        } else if full.find('.').is_some_and(|i| i > 0) {
            Name::Dotted(full.split('.').map(str::to_string).collect())
        } else {
            Name::Simple(full.to_string())
        }
    }
}

impl Template {
    /// Parses `src` as mustache.js's `parseTemplate` does (default delimiters `{{ }}`).
    ///
    /// Errors carry mustache.js's messages and UTF-16 positions, e.g. `Unclosed tag at 18`;
    /// in addition, sections nested deeper than [`MAX_SECTION_DEPTH`] are an error.
    pub fn compile(src: &str) -> Result<Template, TemplateError> {
        Ok(Template {
            tokens: parse(src)?,
        })
    }

    /// Renders against `view` (the root context) with the default [`Limits`].
    pub fn render(&self, view: &Value) -> Result<String, TemplateError> {
        self.render_with_limits(view, &Limits::default())
    }

    /// Renders against `view` with explicit [`Limits`].
    pub fn render_with_limits(
        &self,
        view: &Value,
        limits: &Limits,
    ) -> Result<String, TemplateError> {
        let mut r = Renderer {
            stack: vec![Context::new(Frame::Ref(view))],
            out: String::new(),
            steps: 0,
            limits: *limits,
        };
        r.tokens(&self.tokens)?;
        Ok(r.out)
    }
}

// ---------------------------------------------------------------------------------------------
// Parser: a port of mustache.js 4.2.0's parseTemplate / Scanner / squashTokens / nestTokens.
// ---------------------------------------------------------------------------------------------

/// JavaScript's `\s`: WhiteSpace and LineTerminator (differs from `char::is_whitespace` on
/// U+0085 and U+FEFF). Also used by markdown.rs's tag scanner.
pub(crate) fn is_js_space(c: char) -> bool {
    matches!(
        c,
        '\t' | '\n' | '\u{b}' | '\u{c}' | '\r' | ' ' | '\u{a0}' | '\u{1680}' | '\u{2000}'
            ..='\u{200a}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{202f}'
                | '\u{205f}'
                | '\u{3000}'
                | '\u{feff}'
    )
}

/// mustache.js reports positions as JavaScript string indices (UTF-16 code units).
fn utf16_pos(src: &str, byte: usize) -> usize {
    src.get(..byte).map_or(0, |s| s.encode_utf16().count())
}

/// mustache.js's Scanner. Its regexes are all of the forms `LIT\s*`, `\s*LIT` or `\s*` with a
/// literal (escaped) delimiter, so they are matched here with plain string searches.
struct Scanner<'a> {
    src: &'a str,
    pos: usize, // byte offset; always on a char boundary
}

impl<'a> Scanner<'a> {
    fn tail(&self) -> &'a str {
        self.src.get(self.pos..).unwrap_or("")
    }

    fn eos(&self) -> bool {
        self.pos >= self.src.len()
    }

    /// `scan(/\s*/)`.
    fn skip_ws(&mut self) {
        let tail = self.tail();
        self.pos += tail.len() - tail.trim_start_matches(is_js_space).len();
    }

    /// `scanUntil(/LIT\s*/)`: the text before the first `lit`, or all of it.
    fn scan_until(&mut self, lit: &str) -> &'a str {
        let tail = self.tail();
        let end = tail.find(lit).unwrap_or(tail.len());
        self.pos += end;
        tail.get(..end).unwrap_or("")
    }

    /// `scanUntil(/\s*LIT/)`: the leftmost match starts at the whitespace run right before the
    /// first `lit` (a delimiter never contains whitespace), so that run is not part of the text.
    fn scan_until_ws_lit(&mut self, lit: &str) -> &'a str {
        let tail = self.tail();
        let end = match tail.find(lit) {
            Some(p) => tail
                .get(..p)
                .map_or(0, |s| s.trim_end_matches(is_js_space).len()),
            None => tail.len(),
        };
        self.pos += end;
        tail.get(..end).unwrap_or("")
    }

    /// `scan(/\s*LIT/)`: consumes whitespace plus `lit` only when both are here.
    fn scan_ws_lit(&mut self, lit: &str) -> bool {
        let tail = self.tail();
        let rest = tail.trim_start_matches(is_js_space);
        if rest.starts_with(lit) {
            self.pos += tail.len() - rest.len() + lit.len();
            true
        } else {
            false
        }
    }

    /// `scan(/LIT\s*/)`.
    fn scan_open(&mut self, lit: &str) -> bool {
        if self.tail().starts_with(lit) {
            self.pos += lit.len();
            self.skip_ws();
            true
        } else {
            false
        }
    }

    /// `scan(/#|\^|\/|>|\{|&|=|!/)`: the tag type, if the next character is one.
    fn scan_tag_type(&mut self) -> Option<char> {
        let c = self.tail().chars().next()?;
        if matches!(c, '#' | '^' | '/' | '>' | '{' | '&' | '=' | '!') {
            self.pos += c.len_utf8();
            Some(c)
        } else {
            None
        }
    }
}

/// Flat tokens before nesting; text as byte ranges of the template.
enum Raw {
    Text(usize, usize),
    Var { name: String, escape: bool },
    Open { name: String, inverted: bool },
    Close,
}

/// Per-line state for mustache.js's standalone-tag rule: a line that holds section, inverted,
/// closing, comment, partial or delimiter tags and otherwise only whitespace loses that
/// whitespace, its newline included.
struct Lines {
    start: usize, // index in `raw` where the current line's tokens begin
    has_tag: bool,
    non_space: bool,
}

impl Lines {
    /// mustache.js's `stripSpace`: when the line was standalone, every text token on it is
    /// whitespace and is dropped.
    fn end_line(&mut self, raw: &mut Vec<Raw>) {
        if self.has_tag && !self.non_space {
            let kept: Vec<Raw> = raw
                .drain(self.start..)
                .filter(|r| !matches!(r, Raw::Text(..)))
                .collect();
            raw.extend(kept);
        }
        self.has_tag = false;
        self.non_space = false;
        self.start = raw.len();
    }
}

/// mustache.js's `compileTags` for a `{{=open close=}}` tag: split on whitespace, two parts.
fn compile_tags(value: &str) -> Result<(String, String), TemplateError> {
    let mut parts = value.split(is_js_space).filter(|p| !p.is_empty());
    match (parts.next(), parts.next()) {
        (Some(open), Some(close)) => Ok((open.to_string(), close.to_string())),
        // With fewer than two parts the value holds no whitespace, so `String(tags)` is it.
        _ => Err(TemplateError::InvalidTags {
            tags: value.to_string(),
        }),
    }
}

fn parse(src: &str) -> Result<Vec<Token>, TemplateError> {
    let mut open = "{{".to_string();
    let mut close = "}}".to_string();
    let mut raw: Vec<Raw> = Vec::new();
    let mut lines = Lines {
        start: 0,
        has_tag: false,
        non_space: false,
    };
    let mut sections: Vec<String> = Vec::new();
    let mut sc = Scanner { src, pos: 0 };

    while !sc.eos() {
        // Text up to the next opening delimiter, split into lines.
        let text_start = sc.pos;
        let text = sc.scan_until(&open);
        let mut seg = text_start;
        for (i, c) in text.char_indices() {
            if !is_js_space(c) {
                lines.non_space = true;
            }
            if c == '\n' {
                let end = text_start + i + 1;
                raw.push(Raw::Text(seg, end));
                seg = end;
                lines.end_line(&mut raw);
            }
        }
        if seg < sc.pos {
            raw.push(Raw::Text(seg, sc.pos));
        }

        let tag_start = sc.pos;
        if !sc.scan_open(&open) {
            break;
        }
        lines.has_tag = true;

        let mut kind = sc.scan_tag_type();
        sc.skip_ws();
        let value = match kind {
            Some('=') => {
                let v = sc.scan_until_ws_lit("=");
                sc.scan_ws_lit("=");
                sc.scan_until_ws_lit(&close);
                v
            }
            Some('{') => {
                let v = sc.scan_until_ws_lit(&format!("}}{close}"));
                sc.scan_ws_lit("}");
                sc.scan_until_ws_lit(&close);
                kind = Some('&');
                v
            }
            _ => sc.scan_until_ws_lit(&close),
        };
        if !sc.scan_ws_lit(&close) {
            return Err(TemplateError::UnclosedTag {
                pos: utf16_pos(src, sc.pos),
            });
        }

        match kind {
            Some(c @ ('#' | '^')) => {
                if sections.len() >= MAX_SECTION_DEPTH {
                    return Err(TemplateError::NestedTooDeep {
                        pos: utf16_pos(src, tag_start),
                    });
                }
                sections.push(value.to_string());
                raw.push(Raw::Open {
                    name: value.to_string(),
                    inverted: c == '^',
                });
            }
            Some('/') => match sections.pop() {
                None => {
                    return Err(TemplateError::UnopenedSection {
                        name: value.to_string(),
                        pos: utf16_pos(src, tag_start),
                    });
                }
                Some(open_name) if open_name != value => {
                    return Err(TemplateError::UnclosedSection {
                        name: open_name,
                        pos: utf16_pos(src, tag_start),
                    });
                }
                Some(_) => raw.push(Raw::Close),
            },
            None | Some('&') => {
                lines.non_space = true;
                raw.push(Raw::Var {
                    name: value.to_string(),
                    escape: kind.is_none(),
                });
            }
            Some('=') => (open, close) = compile_tags(value)?,
            // Comments render nothing; partials render nothing because mustache.js is called
            // without partials. Both still count as tags for standalone lines (above).
            _ => {}
        }
    }
    lines.end_line(&mut raw);

    if let Some(name) = sections.pop() {
        return Err(TemplateError::UnclosedSection {
            name,
            pos: utf16_pos(src, sc.pos),
        });
    }
    Ok(nest(src, raw))
}

/// `squashTokens` + `nestTokens`: merge adjacent text, build the section tree (balanced, as
/// `parse` checked), iteratively.
fn nest(src: &str, raw: Vec<Raw>) -> Vec<Token> {
    let mut stack: Vec<(Name, bool, Vec<Token>)> = Vec::new();
    let mut cur: Vec<Token> = Vec::new();
    for r in raw {
        match r {
            Raw::Text(a, b) => {
                let t = src.get(a..b).unwrap_or("");
                if let Some(Token::Text(last)) = cur.last_mut() {
                    last.push_str(t);
                } else {
                    cur.push(Token::Text(t.to_string()));
                }
            }
            Raw::Var { name, escape } => cur.push(Token::Var {
                name: Name::new(&name),
                escape,
            }),
            Raw::Open { name, inverted } => {
                stack.push((Name::new(&name), inverted, std::mem::take(&mut cur)));
            }
            Raw::Close => {
                if let Some((name, inverted, parent)) = stack.pop() {
                    let children = std::mem::replace(&mut cur, parent);
                    cur.push(Token::Section {
                        name,
                        inverted,
                        children,
                    });
                }
            }
        }
    }
    cur
}

// ---------------------------------------------------------------------------------------------
// JavaScript property access, as far as mustache.js templates can reach it.
// ---------------------------------------------------------------------------------------------

/// The modelled built-in functions (see the list of known differences at the top).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Builtin {
    ObjectConstructor,
    ArrayConstructor,
    DateConstructor,
    ObjectToString,
    ArrayToString,
    HasOwnProperty,
    ValueOf,
    IsPrototypeOf,
    PropertyIsEnumerable,
    Date(DateMethod),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DateMethod {
    GetTime,
    FullYear,
    Month,
    Day,
    Weekday,
    Hours,
    Minutes,
    Seconds,
    Milliseconds,
    TimezoneOffset,
    Year,
    ToString,
    ToIsoString,
    ToUtcString,
    ToDateString,
    ToTimeString,
}

impl DateMethod {
    fn named(key: &str) -> Option<DateMethod> {
        use DateMethod::*;
        Some(match key {
            "getTime" | "valueOf" => GetTime,
            "getFullYear" | "getUTCFullYear" => FullYear,
            "getMonth" | "getUTCMonth" => Month,
            "getDate" | "getUTCDate" => Day,
            "getDay" | "getUTCDay" => Weekday,
            "getHours" | "getUTCHours" => Hours,
            "getMinutes" | "getUTCMinutes" => Minutes,
            "getSeconds" | "getUTCSeconds" => Seconds,
            "getMilliseconds" | "getUTCMilliseconds" => Milliseconds,
            "getTimezoneOffset" => TimezoneOffset,
            "getYear" => Year,
            "toString" => ToString,
            "toISOString" => ToIsoString,
            "toUTCString" | "toGMTString" => ToUtcString,
            "toDateString" => ToDateString,
            "toTimeString" => ToTimeString,
            _ => return None,
        })
    }

    /// V8's name for the method in "incompatible receiver" errors (`None` for the methods that
    /// say "this is not a Date object." instead).
    fn receiver_error_name(self) -> Option<&'static str> {
        use DateMethod::*;
        match self {
            ToString => Some("toString"),
            ToIsoString => Some("toISOString"),
            ToUtcString => Some("toUTCString"),
            ToDateString => Some("toDateString"),
            ToTimeString => Some("toTimeString"),
            Year => Some("getYear"),
            _ => None,
        }
    }
}

/// `Object.prototype` members.
fn object_proto(key: &str) -> Option<Builtin> {
    Some(match key {
        "constructor" => Builtin::ObjectConstructor,
        "toString" => Builtin::ObjectToString,
        "hasOwnProperty" => Builtin::HasOwnProperty,
        "valueOf" => Builtin::ValueOf,
        "isPrototypeOf" => Builtin::IsPrototypeOf,
        "propertyIsEnumerable" => Builtin::PropertyIsEnumerable,
        _ => return None,
    })
}

/// What a property access or a lookup produced.
#[derive(Debug, Clone)]
enum Got<'a> {
    /// `undefined`.
    Undefined,
    Ref(&'a Value),
    Own(Value),
    /// A primitive wrapped in an object (`Object.prototype.valueOf` of a primitive): truthy,
    /// printed as the primitive.
    Boxed(Value),
    Func(Builtin),
}

impl Got<'_> {
    fn into_owned(self) -> Got<'static> {
        match self {
            Got::Undefined => Got::Undefined,
            Got::Ref(v) => Got::Own(v.clone()),
            Got::Own(v) => Got::Own(v),
            Got::Boxed(v) => Got::Boxed(v),
            Got::Func(f) => Got::Func(f),
        }
    }

    fn is_undefined(&self) -> bool {
        matches!(self, Got::Undefined)
    }
}

/// UTF-16 length of a string (JavaScript's `length`).
#[allow(clippy::cast_precision_loss)] // a length is far below 2^53
fn utf16_len(s: &str) -> f64 {
    s.encode_utf16().count() as f64
}

/// Work units a property access costs: linear scans of object keys and string code units.
fn prop_cost(obj: &Value) -> u64 {
    let n = match obj {
        Value::Object(entries) => entries.len(),
        Value::String(s) => s.len(),
        _ => 0,
    };
    u64::try_from(n / 16).map_or(u64::MAX, |c| c.saturating_add(1))
}

/// `obj[key]` for a non-null value, with the modelled part of the prototype chain.
fn get_prop<'a>(obj: &'a Value, key: &str) -> Got<'a> {
    match obj {
        Value::Object(entries) => match entries.iter().find(|(k, _)| k == key) {
            Some((_, v)) => Got::Ref(v),
            None => object_proto(key).map_or(Got::Undefined, Got::Func),
        },
        Value::Array(items) => {
            if key == "length" {
                #[allow(clippy::cast_precision_loss)] // a length is far below 2^53
                return Got::Own(Value::Number(items.len() as f64));
            }
            if let Some(i) = js::array_index(key) {
                return usize::try_from(i)
                    .ok()
                    .and_then(|i| items.get(i))
                    .map_or(Got::Undefined, Got::Ref);
            }
            match key {
                "toString" => Got::Func(Builtin::ArrayToString),
                "constructor" => Got::Func(Builtin::ArrayConstructor),
                _ => object_proto(key).map_or(Got::Undefined, Got::Func),
            }
        }
        Value::Date(_) => match (key, DateMethod::named(key)) {
            (_, Some(m)) => Got::Func(Builtin::Date(m)),
            ("constructor", None) => Got::Func(Builtin::DateConstructor),
            _ => object_proto(key).map_or(Got::Undefined, Got::Func),
        },
        Value::String(s) => {
            // Own properties only: a string's `length` and its UTF-16 code units.
            if key == "length" {
                return Got::Own(Value::Number(utf16_len(s)));
            }
            let unit = js::array_index(key)
                .and_then(|i| usize::try_from(i).ok())
                .and_then(|i| s.encode_utf16().nth(i));
            match unit {
                Some(u) => Got::Own(Value::String(
                    char::from_u32(u32::from(u))
                        .unwrap_or('\u{FFFD}')
                        .to_string(),
                )),
                None => Got::Undefined,
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => Got::Undefined,
    }
}

/// `typeof v === 'object'` for a non-null value (mustache.js's `hasProperty` requires it).
fn is_object(v: &Value) -> bool {
    matches!(v, Value::Object(_) | Value::Array(_) | Value::Date(_))
}

/// One context's part of `Context.prototype.lookup`: `Some` on a lookup hit.
/// `cost` accumulates the work done (see [`prop_cost`]).
fn lookup_in<'a>(
    view: &'a Value,
    name: &Name,
    cost: &mut u64,
) -> Result<Option<Got<'a>>, TemplateError> {
    match name {
        Name::Dot => Ok(Some(Got::Ref(view))),
        Name::Simple(key) => {
            // `context.view[name]` throws on a null view (a null array element as context).
            if matches!(view, Value::Null) {
                return Err(TemplateError::TypeError {
                    message: format!("Cannot read properties of null (reading '{key}')"),
                });
            }
            // `hasProperty`: only objects can hit; primitives fall through to outer contexts.
            if !is_object(view) {
                return Ok(None);
            }
            *cost = cost.saturating_add(prop_cost(view));
            let got = get_prop(view, key);
            Ok((!got.is_undefined()).then_some(got))
        }
        Name::Dotted(parts) => {
            // Walk down while the value is not null/undefined; the last step is a hit when it
            // finds a property (`in` for objects, an own property for strings).
            let mut cur: Got<'a> = Got::Ref(view);
            let last = parts.len().saturating_sub(1);
            for (i, part) in parts.iter().enumerate() {
                let next = match &cur {
                    Got::Undefined | Got::Ref(Value::Null) | Got::Own(Value::Null) => {
                        return Ok(None);
                    }
                    Got::Ref(v) => {
                        *cost = cost.saturating_add(prop_cost(v));
                        get_prop(v, part)
                    }
                    Got::Own(v) | Got::Boxed(v) => {
                        *cost = cost.saturating_add(prop_cost(v));
                        get_prop(v, part).into_owned()
                    }
                    Got::Func(_) => Got::Undefined,
                };
                if i == last {
                    return Ok((!next.is_undefined()).then_some(next));
                }
                cur = next;
            }
            Ok(None)
        }
    }
}

/// `Object.prototype.toString`'s class tag.
fn class_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "[object Null]",
        Value::Bool(_) => "[object Boolean]",
        Value::Number(_) => "[object Number]",
        Value::String(_) => "[object String]",
        Value::Array(_) => "[object Array]",
        Value::Object(_) => "[object Object]",
        Value::Date(_) => "[object Date]",
    }
}

fn to_object_error() -> TemplateError {
    TemplateError::TypeError {
        message: "Cannot convert undefined or null to object".to_string(),
    }
}

/// How V8 names a receiver in "called on incompatible receiver" errors: `#<Object>` while
/// `toString` and `constructor` are the inherited ones, else the class tag.
fn receiver_name(v: &Value) -> String {
    match v {
        Value::Object(_) if v.get("toString").is_none() && v.get("constructor").is_none() => {
            "#<Object>".to_string()
        }
        Value::Object(_) | Value::Array(_) => class_of(v).to_string(),
        other => js::to_display_string(other),
    }
}

/// Whether `String(v)` throws: an object with an own `toString` key has no callable
/// `toString` (values are never functions), and `valueOf` gives back the object, so
/// `ToPrimitive` fails; arrays fail when an element does.
fn unprintable(v: &Value) -> bool {
    match v {
        Value::Object(_) => v.get("toString").is_some(),
        Value::Array(items) => items.iter().any(unprintable),
        _ => false,
    }
}

/// `String(v)` with its one failure mode (see [`unprintable`]).
fn js_string(v: &Value) -> Result<String, TemplateError> {
    if unprintable(v) {
        return Err(TemplateError::TypeError {
            message: "Cannot convert object to primitive value".to_string(),
        });
    }
    Ok(js::to_display_string(v))
}

/// The current time as a JavaScript time value (for `Date()`).
fn now_ms() -> f64 {
    match std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => d.as_secs_f64() * 1000.0,
        Err(e) => -(e.duration().as_secs_f64() * 1000.0),
    }
    .floor()
}

fn number(n: impl Into<f64>) -> Got<'static> {
    Got::Own(Value::Number(n.into()))
}

fn string(s: String) -> Got<'static> {
    Got::Own(Value::String(s))
}

fn call_date(m: DateMethod, this: &Value) -> Result<Got<'static>, TemplateError> {
    let Value::Date(ms) = this else {
        let message = match m.receiver_error_name() {
            Some(method) => format!(
                "Method Date.prototype.{method} called on incompatible receiver {}",
                receiver_name(this)
            ),
            None => "this is not a Date object.".to_string(),
        };
        return Err(TemplateError::TypeError { message });
    };
    let Some(t) = js::time_clip(*ms) else {
        return match m {
            DateMethod::ToIsoString => Err(TemplateError::RangeError {
                message: "Invalid time value".to_string(),
            }),
            DateMethod::ToString
            | DateMethod::ToUtcString
            | DateMethod::ToDateString
            | DateMethod::ToTimeString => Ok(string("Invalid Date".to_string())),
            _ => Ok(number(f64::NAN)),
        };
    };
    let p = js::date_parts(t);
    #[allow(clippy::cast_precision_loss)] // time values and years are far below 2^53
    let got = match m {
        DateMethod::GetTime => number(t as f64),
        DateMethod::FullYear => number(p.year as f64),
        DateMethod::Year => number((p.year - 1900) as f64),
        DateMethod::Month => number(p.month.saturating_sub(1)),
        DateMethod::Day => number(p.day),
        DateMethod::Weekday => number(p.weekday),
        DateMethod::Hours => number(p.hour),
        DateMethod::Minutes => number(p.minute),
        DateMethod::Seconds => number(p.second),
        DateMethod::Milliseconds => number(p.millis),
        DateMethod::TimezoneOffset => number(0),
        DateMethod::ToString => string(js::date_to_string(*ms)),
        DateMethod::ToIsoString => string(js::date_iso(*ms)),
        DateMethod::ToUtcString => string(format!(
            "{}, {:02} {} {} {:02}:{:02}:{:02} GMT",
            js::weekday_name(&p),
            p.day,
            js::month_name(&p),
            js::display_year(p.year),
            p.hour,
            p.minute,
            p.second
        )),
        DateMethod::ToDateString => string(format!(
            "{} {} {:02} {}",
            js::weekday_name(&p),
            js::month_name(&p),
            p.day,
            js::display_year(p.year)
        )),
        DateMethod::ToTimeString => string(format!(
            "{:02}:{:02}:{:02} GMT+0000 (Coordinated Universal Time)",
            p.hour, p.minute, p.second
        )),
    };
    Ok(got)
}

// ---------------------------------------------------------------------------------------------
// Renderer: mustache.js's Context and Writer.renderTokens.
// ---------------------------------------------------------------------------------------------

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
            Got::Func(f) => self.call(f),
            other => Ok(other),
        }
    }

    fn call(&self, f: Builtin) -> Result<Got<'v>, TemplateError> {
        let this_got = self.top();
        let this: &Value = match &this_got {
            Got::Ref(v) => v,
            Got::Own(v) | Got::Boxed(v) => v,
            Got::Undefined | Got::Func(_) => &Value::Null,
        };
        let has_own_undefined = |v: &Value| v.get("undefined").is_some();
        Ok(match f {
            // `Object.call(view)` passes no argument: a new empty object.
            Builtin::ObjectConstructor => Got::Own(Value::Object(Vec::new())),
            // `Array()`: a new empty array.
            Builtin::ArrayConstructor => Got::Own(Value::Array(Vec::new())),
            // `Date()` called as a function ignores `this` and gives the current time as text.
            Builtin::DateConstructor => string(js::date_to_string(now_ms())),
            Builtin::ObjectToString => string(class_of(this).to_string()),
            Builtin::ArrayToString => match this {
                Value::Array(_) => string(js_string(this)?),
                Value::Null => return Err(to_object_error()),
                // No callable `join` on anything else: Object.prototype.toString.
                other => string(class_of(other).to_string()),
            },
            // Called without an argument, the key is "undefined".
            Builtin::HasOwnProperty | Builtin::PropertyIsEnumerable => match this {
                Value::Null => return Err(to_object_error()),
                v => Got::Own(Value::Bool(has_own_undefined(v))),
            },
            Builtin::ValueOf => match this {
                Value::Null => return Err(to_object_error()),
                Value::Object(_) | Value::Array(_) | Value::Date(_) => this_got,
                primitive => Got::Boxed(primitive.clone()),
            },
            Builtin::IsPrototypeOf => Got::Own(Value::Bool(false)),
            Builtin::Date(m) => call_date(m, this)?,
        })
    }

    fn emit_text(&mut self, s: &str) -> Result<(), TemplateError> {
        self.out.push_str(s);
        self.check_output()
    }

    /// `escapedValue` / `unescapedValue`: null and undefined print nothing, others `String(v)`.
    fn print(&mut self, got: &Got<'_>, escape: bool) -> Result<(), TemplateError> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::event_json::template_view;
    use crate::core::js::{parse_json, stringify};

    /// Corpus cases whose output is known to differ from mustache.js (documented above).
    const KNOWN_DIFFERENCES: &[&str] = &[];

    /// A file of the mustache.js conformance fixture (tests/fixtures/mustache).
    fn read(name: &str) -> String {
        let path = format!(
            "{}/tests/fixtures/mustache/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"))
    }

    /// The view the corpus was rendered with: `event` with `createdAt` as a Date and
    /// `eventJson` computed before that conversion.
    fn event_view() -> Value {
        let event = parse_json(&read("event.json")).unwrap();
        let json = stringify(&event);
        template_view(event, &json, "")
    }

    fn render(tpl: &str, view: &Value) -> Result<String, TemplateError> {
        Template::compile(tpl)?.render(view)
    }

    fn r(tpl: &str, ctx: &str) -> String {
        match render(tpl, &parse_json(ctx).unwrap()) {
            Ok(s) => s,
            Err(e) => e.js_message(),
        }
    }

    #[test]
    fn mustache_js_corpus() {
        let corpus = parse_json(&read("corpus.json")).unwrap();
        let expected = parse_json(&read("expected-mustachejs.json")).unwrap();
        let default_view = event_view();
        let Value::Array(cases) = corpus else {
            panic!("corpus.json is not an array")
        };
        let mut matched = 0;
        let mut failures = Vec::new();
        for case in &cases {
            let Some(Value::String(id)) = case.get("id") else {
                panic!("case without id")
            };
            let Some(Value::String(tpl)) = case.get("tpl") else {
                panic!("{id}: no tpl")
            };
            let view = case.get("ctx").unwrap_or(&default_view);
            let got = render(tpl, view);
            let want = expected
                .get(id)
                .unwrap_or_else(|| panic!("{id}: no expectation"));
            let ok = match (want.get("ok"), &got) {
                (Some(Value::Bool(true)), Ok(out)) => {
                    want.get("out") == Some(&Value::String(out.clone()))
                }
                (Some(Value::Bool(false)), Err(e)) => {
                    want.get("err") == Some(&Value::String(e.js_message()))
                }
                _ => false,
            };
            if ok {
                matched += 1;
            } else if !KNOWN_DIFFERENCES.contains(&id.as_str()) {
                failures.push(format!(
                    "{id}: template {tpl:?}\n  want {}\n  got  {:?}",
                    stringify(want),
                    got.map_err(|e| e.js_message())
                ));
            }
        }
        println!("mustache.js corpus: {matched}/{} cases match", cases.len());
        assert_eq!(cases.len(), 83, "corpus size changed");
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn template_is_send_sync_and_reusable() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Template>();
        let t = Template::compile("{{a}}-{{#b}}{{.}}{{/b}}").unwrap();
        let v1 = parse_json(r#"{"a":1,"b":[1,2]}"#).unwrap();
        let v2 = parse_json(r#"{"a":"x","b":"y"}"#).unwrap();
        assert_eq!(t.render(&v1).unwrap(), "1-12");
        assert_eq!(t.render(&v2).unwrap(), "x-y");
        assert_eq!(t.render(&v1).unwrap(), "1-12");
    }

    #[test]
    fn escaping_and_printing() {
        assert_eq!(
            r("{{s}}|{{{s}}}|{{&s}}", r#"{"s":"&<>\"'/`=x"}"#),
            "&amp;&lt;&gt;&quot;&#39;&#x2F;&#x60;&#x3D;x|&<>\"'/`=x|&<>\"'/`=x"
        );
        assert_eq!(
            r(
                "{{n}} {{f}} {{b}} {{z}} {{a}} {{o}}",
                r#"{"n":1e21,"f":0.5,"b":false,"z":null,"a":["<",null,[1,[2]]],"o":{}}"#
            ),
            "1e+21 0.5 false  &lt;,,1,2 [object Object]"
        );
    }

    #[test]
    fn lookup_rules() {
        // The whole dotted path is retried in each outer context.
        assert_eq!(
            r("{{#a}}{{b.c}}{{/a}}", r#"{"a":{"b":{}},"b":{"c":"outer"}}"#),
            "outer"
        );
        // A hit on a null value stops the search.
        assert_eq!(
            r("{{#a}}[{{b}}]{{/a}}", r#"{"a":{"b":null},"b":"outer"}"#),
            "[]"
        );
        // Simple names are not looked up on primitives, dotted ones reach their own props.
        assert_eq!(
            r(
                "{{#s}}[{{length}}|{{s.length}}]{{/s}}",
                r#"{"s":"héllo😀","length":"L"}"#
            ),
            "[L|7]"
        );
        assert_eq!(
            r(
                "{{a.1}}{{a.length}}{{s.1}}{{a.01}}",
                r#"{"a":[5,6],"s":"xyz"}"#
            ),
            "62y"
        );
        assert_eq!(r("[{{a.b.c}}][{{a.b}}]", r#"{"a":{"b":"str"}}"#), "[][str]");
        // Integer-like keys of objects are plain keys.
        assert_eq!(r("{{o.0}}{{o.10}}", r#"{"o":{"10":"b","0":"a"}}"#), "ab");
    }

    #[test]
    fn null_context_throws_like_javascript() {
        assert_eq!(
            r("{{#list}}[{{x}}]{{/list}}", r#"{"list":[1,null]}"#),
            "TypeError: Cannot read properties of null (reading 'x')"
        );
        // Dotted names and `.` do not read from the null context.
        assert_eq!(
            r(
                "{{#list}}[{{.}}{{a.b}}]{{/list}}",
                r#"{"list":[null],"a":{"b":1}}"#
            ),
            "[1]"
        );
    }

    #[test]
    fn prototype_members() {
        let v = event_view();
        let t = |tpl: &str| match render(tpl, &v) {
            Ok(s) => s,
            Err(e) => e.js_message(),
        };
        assert_eq!(
            t(
                "{{#event.createdAt}}{{getTime}}|{{getYear}}|{{toISOString}}|{{getDay}}{{/event.createdAt}}"
            ),
            "1795729242045|126|2026-11-26T21:40:42.045Z|4"
        );
        assert_eq!(
            t(
                "{{#event.createdAt}}{{toUTCString}}|{{toDateString}}|{{toTimeString}}{{/event.createdAt}}"
            ),
            "Thu, 26 Nov 2026 21:40:42 GMT|Thu Nov 26 2026|21:40:42 GMT+0000 (Coordinated Universal Time)"
        );
        assert_eq!(
            t("{{event.createdAt.toString}}"),
            "TypeError: Method Date.prototype.toString called on incompatible receiver #<Object>"
        );
        assert_eq!(
            t("{{#event.tags}}{{event.createdAt.getMonth}}{{/event.tags}}"),
            "TypeError: this is not a Date object."
        );
        assert_eq!(
            t("{{#event.type}}{{toString}}{{/event.type}}|{{event.tags.toString}}"),
            "[object String]|[object Object]"
        );
        assert_eq!(
            t("{{#event.tags}}{{toString}}{{/event.tags}}"),
            "[object Object][object Object]"
        );
        assert_eq!(
            r(
                "{{#l}}{{#valueOf}}x{{/valueOf}}{{/l}}|{{#l}}{{#isPrototypeOf}}y{{/isPrototypeOf}}{{/l}}",
                r#"{"l":[0,"",false,1]}"#
            ),
            "xxxx|"
        );
        assert_eq!(
            r("{{#l}}{{constructor}}{{/l}}", r#"{"l":["a"]}"#),
            "[object Object]"
        );
        assert_eq!(
            r("{{#l}}{{a.hasOwnProperty}}{{/l}}", r#"{"l":[null],"a":{}}"#),
            "TypeError: Cannot convert undefined or null to object"
        );
    }

    /// JavaScript quirks reproduced (expected values from mustache.js 4.2.0 under Node 20).
    #[test]
    fn javascript_quirks() {
        let broken = "TypeError: cache.hasOwnProperty is not a function";
        assert_eq!(
            r("{{hasOwnProperty}}|{{a}}", r#"{"hasOwnProperty":1,"a":2}"#),
            broken
        );
        assert_eq!(
            r(
                "{{#o}}{{hasOwnProperty}}{{/o}}|{{a}}",
                r#"{"o":{"hasOwnProperty":1},"a":2}"#
            ),
            "1|2"
        );
        assert_eq!(r("{{hasOwnProperty}}|{{a}}", r#"{"a":2}"#), "false|2");
        assert_eq!(
            r("{{__proto__}}|{{a}}", r#"{"__proto__":null,"a":1}"#),
            broken
        );
        assert_eq!(
            r(
                "{{__proto__}}|{{a}}",
                r#"{"__proto__":{"hasOwnProperty":0},"a":1}"#
            ),
            broken
        );
        assert_eq!(
            r("{{__proto__}}|{{a}}", r#"{"__proto__":{"x":0},"a":1}"#),
            "[object Object]|1"
        );
        assert_eq!(
            r("{{#s}}{{hasOwnProperty}}|{{.}}{{/s}}", r#"{"s":"str"}"#),
            "false|str"
        );
        let unprintable = "TypeError: Cannot convert object to primitive value";
        assert_eq!(r("[{{o}}]", r#"{"o":{"toString":"x"}}"#), unprintable);
        assert_eq!(r("[{{{l}}}]", r#"{"l":[1,{"toString":"x"}]}"#), unprintable);
        let view = Value::Object(vec![
            (
                "o".into(),
                Value::Object(vec![("constructor".into(), Value::Number(1.0))]),
            ),
            ("d".into(), Value::Date(0.0)),
        ]);
        assert_eq!(
            render("{{#o}}{{d.getYear}}{{/o}}", &view).map_err(|e| e.js_message()),
            Err(
                "TypeError: Method Date.prototype.getYear called on incompatible receiver \
                 [object Object]"
                    .to_string()
            )
        );
    }

    #[test]
    fn sections_and_truthiness() {
        let ctx =
            r#"{"z":0,"nz":-0.0,"e":"","a":[],"o":{},"t":true,"f":false,"n":null,"s":"x","num":2}"#;
        assert_eq!(
            r(
                "{{#z}}1{{/z}}{{#nz}}2{{/nz}}{{#e}}3{{/e}}{{#a}}4{{/a}}{{#o}}5{{/o}}{{#t}}6{{/t}}{{#f}}7{{/f}}{{#n}}8{{/n}}{{#s}}9{{/s}}{{#num}}{{.}}{{/num}}",
                ctx
            ),
            "5692"
        );
        assert_eq!(
            r(
                "{{^z}}1{{/z}}{{^nz}}2{{/nz}}{{^e}}3{{/e}}{{^a}}4{{/a}}{{^o}}5{{/o}}{{^t}}6{{/t}}{{^f}}7{{/f}}{{^n}}8{{/n}}{{^s}}9{{/s}}{{^missing}}0{{/missing}}",
                ctx
            ),
            "1234780"
        );
        // `true` keeps the current context.
        assert_eq!(r("{{#o}}{{#t}}{{s}}{{/t}}{{/o}}", ctx), "x");
        // Owned values (string length) become contexts too.
        assert_eq!(r("{{#s.length}}[{{.}}]{{/s.length}}", ctx), "[1]");
    }

    #[test]
    fn parse_errors_and_positions() {
        let e = |tpl: &str| Template::compile(tpl).unwrap_err().js_message();
        assert_eq!(e("Hello {{event.type"), "Error: Unclosed tag at 18");
        // Positions count UTF-16 code units, as JavaScript does.
        assert_eq!(e("😀é{{x"), "Error: Unclosed tag at 6");
        assert_eq!(e("😀{{/x}}"), "Error: Unopened section \"x\" at 2");
        assert_eq!(
            e("{{#a}}{{#b}}{{/a}}"),
            "Error: Unclosed section \"b\" at 12"
        );
        assert_eq!(
            e("{{#a}}{{#b}}{{/b}}"),
            "Error: Unclosed section \"a\" at 18"
        );
        assert_eq!(e("{{==}}"), "Error: Invalid tags: ");
        assert_eq!(e("{{= a =}}"), "Error: Invalid tags: a");
        assert_eq!(e("{{=<% %>=}}<%x"), "Error: Unclosed tag at 14");
    }

    #[test]
    fn delimiters_comments_whitespace() {
        assert_eq!(r("{{=<% %>=}}<%a%><%={{ }}=%>{{a}}", r#"{"a":1}"#), "11");
        assert_eq!(r("{{=| |=}}|{a}|", r#"{"a":"<"}"#), "<");
        assert_eq!(r("{{= [[ ]] extra =}}[[a]]", r#"{"a":2}"#), "2");
        assert_eq!(r("a\n {{!c}} \nb", "{}"), "a\nb");
        assert_eq!(r(" {{#t}} \n x\n {{/t}} ", r#"{"t":true}"#), " x\n");
        assert_eq!(r("\u{a0}{{#t}}\u{feff}\nx{{/t}}", r#"{"t":true}"#), "x");
        assert_eq!(r("\u{85}{{#t}}\nx{{/t}}", r#"{"t":true}"#), "\u{85}\nx");
        assert_eq!(r("[{{>p}}]\n  {{>p}}  \n", "{}"), "[]\n");
        assert_eq!(r("", "{}"), "");
        assert_eq!(r("no tags", "{}"), "no tags");
    }

    #[test]
    fn hostile_templates_error_instead_of_crashing() {
        // 1 MB of nested section openers.
        let deep = "{{#a}}".repeat((1 << 20) / 6 + 1);
        assert!(matches!(
            Template::compile(&deep),
            Err(TemplateError::NestedTooDeep { .. })
        ));
        // Balanced but too deep.
        let n = 50_000;
        let balanced = "{{#a}}".repeat(n) + &"{{/a}}".repeat(n);
        assert!(matches!(
            Template::compile(&balanced),
            Err(TemplateError::NestedTooDeep { .. })
        ));
        // The deepest allowed nesting compiles and renders.
        let ok = "{{#a}}".repeat(MAX_SECTION_DEPTH) + "x" + &"{{/a}}".repeat(MAX_SECTION_DEPTH);
        let t = Template::compile(&ok).unwrap();
        assert_eq!(t.render(&parse_json(r#"{"a":{}}"#).unwrap()).unwrap(), "x");
        // Exponential blow-up is cut off by the limits.
        let blow = "{{#a}}".repeat(40) + "xxxxxxxx" + &"{{/a}}".repeat(40);
        let t = Template::compile(&blow).unwrap();
        let v = parse_json("{\"a\":[1,2,3,4,5,6,7,8,9,10]}").unwrap();
        assert!(matches!(
            t.render(&v),
            Err(TemplateError::TooMuchWork { .. })
        ));
        let quiet = "{{#a}}".repeat(40) + &"{{/a}}".repeat(40);
        let t = Template::compile(&quiet).unwrap();
        assert!(matches!(
            t.render(&v),
            Err(TemplateError::TooMuchWork { .. })
        ));
        let big = Template::compile("{{#a}}{{{s}}}{{/a}}").unwrap();
        let v = Value::Object(vec![
            ("a".into(), Value::Array(vec![Value::Bool(true); 100])),
            ("s".into(), Value::String("y".repeat(1 << 20))),
        ]);
        let limits = Limits {
            max_output_bytes: 10 << 20,
            ..Limits::default()
        };
        assert!(matches!(
            big.render_with_limits(&v, &limits),
            Err(TemplateError::OutputTooLarge { .. })
        ));
        // Unterminated tags and junk of 1 MB.
        assert!(Template::compile(&"{{".repeat(1 << 19)).is_err());
        assert!(Template::compile(&"{{{".repeat(1 << 18)).is_err());
        let junk = "}}{{!x}}{{=<% %>=}}<%%><%={{ }}=%>".repeat(20_000);
        assert!(Template::compile(&junk).is_ok());
        // A 10k-level nested JSON view is refused by the parser before it gets here.
        let json = "[".repeat(10_000) + &"]".repeat(10_000);
        assert!(parse_json(&json).is_err());
    }
}
