//! JavaScript values as Node.js sees them.
//!
//! Unleash builds its webhook bodies in Node: node-pg `JSON.parse`s the `json`/`jsonb` columns,
//! the event object is printed with `JSON.stringify`, and mustache.js prints values with
//! `String(v)`. To reproduce those bytes exactly we need the same value model and the same three
//! conversions, which differ from serde_json's in key order (integer-like keys first), number
//! printing (`1e+21`, `0.000001`, `5e-324`), and date printing. This module holds exactly that,
//! with no dependencies.
//!
//! Everything here is total: no function panics on any input. Nesting is bounded by
//! [`MAX_DEPTH`] at parse time, so every recursive function below recurses at most that deep on
//! values that came from [`parse_json`] (callers who build deeper [`Value`]s by hand own the
//! stack they use).

use std::collections::HashMap;
use std::fmt;

/// Deepest array/object nesting [`parse_json`] accepts. Deeper input is an error rather than a
/// risk to the stack (every consumer of [`Value`] recurses once per level).
pub const MAX_DEPTH: usize = 200;

/// Largest magnitude of a JavaScript time value (ECMAScript `TimeClip`): ±100,000,000 days.
pub const MAX_TIME_MS: f64 = 8.64e15;

const MS_PER_DAY: i64 = 86_400_000;

/// A JavaScript value, restricted to what JSON and Unleash's event objects contain.
///
/// `Object` keeps its keys in JavaScript property order (see [`parse_json`]); keys are unique.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `null`.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// A JavaScript number (IEEE-754 double).
    Number(f64),
    /// A string. JavaScript strings are UTF-16; lone surrogates cannot be held here (see
    /// [`parse_json`]).
    String(String),
    /// An array.
    Array(Vec<Value>),
    /// A plain object, keys unique and in JavaScript property order.
    Object(Vec<(String, Value)>),
    /// A `Date`: milliseconds since the Unix epoch, UTC. Not finite or beyond [`MAX_TIME_MS`]
    /// means an invalid date.
    Date(f64),
}

impl Value {
    /// JavaScript truthiness (`!!v`): false for `null`, `false`, `0`, `-0`, `NaN` and `""`;
    /// every object, array and date (even empty or invalid) is truthy.
    pub fn is_truthy(&self) -> bool {
        match self {
            Value::Null => false,
            Value::Bool(b) => *b,
            Value::Number(n) => *n != 0.0 && !n.is_nan(),
            Value::String(s) => !s.is_empty(),
            Value::Array(_) | Value::Object(_) | Value::Date(_) => true,
        }
    }

    /// The own property `key` of an object (`None` for other values or a missing key).
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Object(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }
}

/// Why [`parse_json`] rejected its input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonError {
    /// What was wrong.
    pub message: &'static str,
    /// Byte offset into the input where it was noticed.
    pub position: usize,
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at position {}", self.message, self.position)
    }
}

impl std::error::Error for JsonError {}

/// `JSON.parse(text)`.
///
/// - Whitespace is JSON's four characters only (no BOM), as in `JSON.parse`.
/// - Object keys come out in JavaScript property order: canonical array-index keys (`"0"`,
///   `"1"`, …, up to `"4294967294"`, no leading zeros) first in ascending numeric order, then the
///   other keys in insertion order. A duplicate key keeps its first position and takes the last
///   value, as assignment to an existing property does.
/// - Numbers are correctly rounded to the nearest double, as JavaScript parses them
///   (`18446744073709551615` becomes `18446744073709552000`); out-of-range ones become ±Infinity.
/// - `\u` escapes are decoded, surrogate pairs combined. A lone surrogate (which a JavaScript
///   string can hold but a Rust `String` cannot) becomes U+FFFD.
/// - Nesting deeper than [`MAX_DEPTH`] is an error instead of a deep recursion.
///
/// The text PostgreSQL prints for `json`/`jsonb` (with `": "` and `", "` separators) is plain
/// JSON and parses like any other.
pub fn parse_json(text: &str) -> Result<Value, JsonError> {
    let mut p = Parser {
        b: text.as_bytes(),
        s: text,
        pos: 0,
    };
    p.skip_ws();
    let v = p.value(0)?;
    p.skip_ws();
    if p.pos < p.b.len() {
        return Err(p.err("unexpected character after JSON value"));
    }
    Ok(v)
}

struct Parser<'a> {
    b: &'a [u8],
    s: &'a str,
    pos: usize,
}

impl Parser<'_> {
    fn err(&self, message: &'static str) -> JsonError {
        JsonError {
            message,
            position: self.pos,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    fn literal(&mut self, word: &str, v: Value) -> Result<Value, JsonError> {
        if self.b.get(self.pos..self.pos + word.len()) == Some(word.as_bytes()) {
            self.pos += word.len();
            Ok(v)
        } else {
            Err(self.err("invalid literal"))
        }
    }

    fn value(&mut self, depth: usize) -> Result<Value, JsonError> {
        match self.peek() {
            None => Err(self.err("unexpected end of JSON input")),
            Some(b'{') => self.object(depth),
            Some(b'[') => self.array(depth),
            Some(b'"') => Ok(Value::String(self.string()?)),
            Some(b't') => self.literal("true", Value::Bool(true)),
            Some(b'f') => self.literal("false", Value::Bool(false)),
            Some(b'n') => self.literal("null", Value::Null),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(_) => Err(self.err("unexpected character")),
        }
    }

    fn enter(&self, depth: usize) -> Result<usize, JsonError> {
        if depth >= MAX_DEPTH {
            Err(self.err("JSON nested deeper than 200 levels"))
        } else {
            Ok(depth + 1)
        }
    }

    fn array(&mut self, depth: usize) -> Result<Value, JsonError> {
        let depth = self.enter(depth)?;
        self.pos += 1; // '['
        let mut items = Vec::new();
        self.skip_ws();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(Value::Array(items));
        }
        loop {
            self.skip_ws();
            items.push(self.value(depth)?);
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(Value::Array(items));
                }
                None => return Err(self.err("unexpected end of JSON input")),
                Some(_) => return Err(self.err("expected ',' or ']'")),
            }
        }
    }

    fn object(&mut self, depth: usize) -> Result<Value, JsonError> {
        let depth = self.enter(depth)?;
        self.pos += 1; // '{'
        let mut obj = ObjectBuilder::default();
        self.skip_ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(Value::Object(obj.finish()));
        }
        loop {
            self.skip_ws();
            if self.peek() != Some(b'"') {
                return Err(if self.peek().is_none() {
                    self.err("unexpected end of JSON input")
                } else {
                    self.err("expected a string key")
                });
            }
            let key = self.string()?;
            self.skip_ws();
            if self.peek() != Some(b':') {
                return Err(self.err("expected ':'"));
            }
            self.pos += 1;
            self.skip_ws();
            let v = self.value(depth)?;
            obj.insert(key, v);
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(Value::Object(obj.finish()));
                }
                None => return Err(self.err("unexpected end of JSON input")),
                Some(_) => return Err(self.err("expected ',' or '}'")),
            }
        }
    }

    fn hex4(&mut self) -> Result<u16, JsonError> {
        let mut n: u16 = 0;
        for _ in 0..4 {
            let d = match self.peek() {
                Some(c @ b'0'..=b'9') => c - b'0',
                Some(c @ b'a'..=b'f') => c - b'a' + 10,
                Some(c @ b'A'..=b'F') => c - b'A' + 10,
                _ => return Err(self.err("invalid \\u escape")),
            };
            n = (n << 4) | u16::from(d);
            self.pos += 1;
        }
        Ok(n)
    }

    fn string(&mut self) -> Result<String, JsonError> {
        self.pos += 1; // opening quote
        let mut out = String::new();
        loop {
            // Copy the longest run that needs no decoding in one go.
            let run_start = self.pos;
            while let Some(c) = self.peek() {
                if c == b'"' || c == b'\\' || c < 0x20 {
                    break;
                }
                self.pos += 1;
            }
            // Stops only at ASCII bytes, so both ends are char boundaries.
            out.push_str(self.s.get(run_start..self.pos).unwrap_or_default());
            match self.peek() {
                None => return Err(self.err("unterminated string")),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.pos += 1;
                    let Some(e) = self.peek() else {
                        return Err(self.err("unterminated string"));
                    };
                    self.pos += 1;
                    match e {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => {
                            let unit = self.hex4()?;
                            out.push(self.surrogate_aware(unit)?);
                        }
                        _ => {
                            self.pos -= 1;
                            return Err(self.err("invalid escape"));
                        }
                    }
                }
                Some(_) => return Err(self.err("control character in string")),
            }
        }
    }

    /// Turns a `\uXXXX` code unit into a char, consuming a following low-surrogate escape to
    /// complete a pair. Lone surrogates become U+FFFD (a Rust string cannot hold them).
    fn surrogate_aware(&mut self, unit: u16) -> Result<char, JsonError> {
        if (0xD800..0xDC00).contains(&unit) {
            let save = self.pos;
            if self.b.get(self.pos..self.pos + 2) == Some(b"\\u") {
                self.pos += 2;
                let low = self.hex4()?;
                if (0xDC00..0xE000).contains(&low) {
                    let c =
                        0x10000 + ((u32::from(unit) - 0xD800) << 10) + (u32::from(low) - 0xDC00);
                    return Ok(char::from_u32(c).unwrap_or('\u{FFFD}'));
                }
                // Not a low surrogate: leave that escape to be decoded on its own.
                self.pos = save;
            }
            return Ok('\u{FFFD}');
        }
        Ok(char::from_u32(u32::from(unit)).unwrap_or('\u{FFFD}'))
    }

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
        self.pos - start
    }

    fn number(&mut self) -> Result<Value, JsonError> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return Err(self.err("invalid number")),
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if self.digits() == 0 {
                return Err(self.err("invalid number"));
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            if self.digits() == 0 {
                return Err(self.err("invalid number"));
            }
        }
        // Rust's float parser is correctly rounded, like JavaScript's; the grammar was checked
        // above, and overflow gives ±inf as in JavaScript.
        let text = self.s.get(start..self.pos).unwrap_or_default();
        text.parse::<f64>()
            .map(Value::Number)
            .map_err(|_| JsonError {
                message: "invalid number",
                position: start,
            })
    }
}

/// Collects object members with JavaScript's duplicate-key rule, and orders them on finish.
#[derive(Default)]
struct ObjectBuilder {
    entries: Vec<(String, Value)>,
    // Built only for large objects, so that hostile input with many keys stays linear.
    index: Option<HashMap<String, usize>>,
}

impl ObjectBuilder {
    const INDEX_FROM: usize = 16;

    fn insert(&mut self, key: String, v: Value) {
        let existing = match &self.index {
            Some(ix) => ix.get(&key).copied(),
            None => self.entries.iter().position(|(k, _)| *k == key),
        };
        if let Some(slot) = existing.and_then(|i| self.entries.get_mut(i)) {
            slot.1 = v;
            return;
        }
        if let Some(ix) = &mut self.index {
            ix.insert(key.clone(), self.entries.len());
        }
        self.entries.push((key, v));
        if self.index.is_none() && self.entries.len() >= Self::INDEX_FROM {
            let ix = self
                .entries
                .iter()
                .enumerate()
                .map(|(i, (k, _))| (k.clone(), i))
                .collect();
            self.index = Some(ix);
        }
    }

    fn finish(self) -> Vec<(String, Value)> {
        let entries = self.entries;
        if !entries.iter().any(|(k, _)| array_index(k).is_some()) {
            return entries;
        }
        let (mut indexed, named): (Vec<_>, Vec<_>) = entries
            .into_iter()
            .partition(|(k, _)| array_index(k).is_some());
        // Keys are unique, so the numeric order is total.
        indexed.sort_by_key(|(k, _)| array_index(k));
        indexed.extend(named);
        indexed
    }
}

/// `Some(n)` when `key` is a canonical array index (`"0"`, or digits without a leading zero,
/// at most 4294967294), the keys JavaScript orders numerically and treats as array elements.
pub fn array_index(key: &str) -> Option<u32> {
    let bytes = key.as_bytes();
    if bytes.is_empty() || bytes.len() > 10 || !bytes.iter().all(u8::is_ascii_digit) {
        return None;
    }
    if bytes.len() > 1 && bytes.first() == Some(&b'0') {
        return None;
    }
    let n: u64 = key.parse().ok()?;
    if n <= 4_294_967_294 {
        u32::try_from(n).ok()
    } else {
        None
    }
}

/// `JSON.stringify(v)` without indentation.
pub fn stringify(v: &Value) -> String {
    let mut out = String::new();
    stringify_into(v, &mut out);
    out
}

/// `JSON.stringify(v)` appended to `out`.
///
/// Non-finite numbers and invalid dates print `null`, as in JavaScript; a valid date prints its
/// ISO string (what `Date.prototype.toJSON` returns).
pub fn stringify_into(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(n) if n.is_finite() => out.push_str(&number_to_string(*n)),
        Value::Number(_) => out.push_str("null"),
        Value::String(s) => quote_json_string(s, out),
        Value::Date(ms) => match time_clip(*ms) {
            Some(t) => {
                out.push('"');
                out.push_str(&iso_of(t));
                out.push('"');
            }
            None => out.push_str("null"),
        },
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                stringify_into(item, out);
            }
            out.push(']');
        }
        Value::Object(entries) => {
            out.push('{');
            for (i, (k, item)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                quote_json_string(k, out);
                out.push(':');
                stringify_into(item, out);
            }
            out.push('}');
        }
    }
}

/// `JSON.stringify(s)` for a string, appended to `out`: escapes only `"`, `\` and control
/// characters below U+0020 (`\b \f \n \r \t` in short form, others as lowercase `\u00xx`);
/// `/`, DEL and all non-ASCII text stay as they are. (JavaScript also escapes lone surrogates,
/// which a Rust string cannot contain.)
pub fn quote_json_string(s: &str, out: &mut String) {
    out.reserve(s.len() + 2);
    out.push('"');
    let mut run_start = 0;
    for (i, b) in s.bytes().enumerate() {
        let esc: Option<&str> = match b {
            b'"' => Some("\\\""),
            b'\\' => Some("\\\\"),
            0x08 => Some("\\b"),
            0x0c => Some("\\f"),
            b'\n' => Some("\\n"),
            b'\r' => Some("\\r"),
            b'\t' => Some("\\t"),
            0..=0x1f => None,
            _ => continue,
        };
        // Every byte handled here is ASCII, so the slice ends on a char boundary.
        out.push_str(s.get(run_start..i).unwrap_or_default());
        match esc {
            Some(e) => out.push_str(e),
            None => {
                out.push_str("\\u00");
                out.push(char::from_digit(u32::from(b >> 4), 16).unwrap_or('0'));
                out.push(char::from_digit(u32::from(b & 0xf), 16).unwrap_or('0'));
            }
        }
        run_start = i + 1;
    }
    out.push_str(s.get(run_start..).unwrap_or_default());
    out.push('"');
}

/// `Number.prototype.toString()` (ECMAScript Number::toString with radix 10): the shortest
/// digits that round-trip, printed in plain notation for exponents -7 < e < 21 and as
/// `d.ddde±x` otherwise. `-0` prints `0`.
pub fn number_to_string(n: f64) -> String {
    if n.is_nan() {
        return "NaN".to_string();
    }
    if n == 0.0 {
        return "0".to_string();
    }
    if n.is_infinite() {
        return if n > 0.0 { "Infinity" } else { "-Infinity" }.to_string();
    }
    let mut out = String::new();
    if n < 0.0 {
        out.push('-');
    }
    // Rust's `{:e}` prints the shortest round-tripping digits (closest to the value when there
    // is a choice), which is what ECMAScript asks for; only the layout differs.
    let sci = format!("{:e}", n.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let e: i64 = exp.parse().unwrap_or(0);
    let k = i64::try_from(digits.len()).unwrap_or(i64::MAX);
    let point = e + 1; // ECMAScript's n: the decimal point sits after `point` digits
    if k <= point && point <= 21 {
        out.push_str(&digits);
        out.extend(std::iter::repeat_n(
            '0',
            usize::try_from(point - k).unwrap_or(0),
        ));
    } else if 0 < point && point <= 21 {
        let (int, frac) = digits.split_at(usize::try_from(point).unwrap_or(0));
        out.push_str(int);
        out.push('.');
        out.push_str(frac);
    } else if -6 < point && point <= 0 {
        out.push_str("0.");
        out.extend(std::iter::repeat_n(
            '0',
            usize::try_from(-point).unwrap_or(0),
        ));
        out.push_str(&digits);
    } else {
        let (first, rest) = digits.split_at(1.min(digits.len()));
        out.push_str(first);
        if !rest.is_empty() {
            out.push('.');
            out.push_str(rest);
        }
        out.push('e');
        out.push(if e >= 0 { '+' } else { '-' });
        out.push_str(&e.unsigned_abs().to_string());
    }
    out
}

/// `String(v)` as JavaScript computes it: `null` → `"null"`, booleans and numbers as usual,
/// arrays joined with `,` (null elements empty, nested arrays recursively), objects
/// `"[object Object]"`, dates via [`date_to_string`].
pub fn to_display_string(v: &Value) -> String {
    let mut out = String::new();
    display_into(v, &mut out);
    out
}

fn display_into(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(n) => out.push_str(&number_to_string(*n)),
        Value::String(s) => out.push_str(s),
        Value::Object(_) => out.push_str("[object Object]"),
        Value::Date(ms) => out.push_str(&date_to_string(*ms)),
        Value::Array(items) => {
            // Array.prototype.join: null and undefined elements print as empty.
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                if !matches!(item, Value::Null) {
                    display_into(item, out);
                }
            }
        }
    }
}

/// ECMAScript `TimeClip`: the integral time value, or `None` for an invalid date.
pub(crate) fn time_clip(ms: f64) -> Option<i64> {
    if ms.is_finite() && ms.abs() <= MAX_TIME_MS {
        // Exact: |ms| ≤ 8.64e15 < 2^63 and is truncated first.
        Some(ms.trunc() as i64)
    } else {
        None
    }
}

/// Broken-down UTC time of a valid time value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DateParts {
    pub year: i64,
    pub month: u32, // 1..=12
    pub day: u32,   // 1..=31
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    pub millis: u32,
    pub weekday: u32, // 0 = Sunday
}

pub(crate) fn date_parts(t: i64) -> DateParts {
    let days = t.div_euclid(MS_PER_DAY);
    let in_day = t.rem_euclid(MS_PER_DAY);
    let (year, month, day) = civil_from_days(days);
    let in_day = u32::try_from(in_day).unwrap_or(0);
    DateParts {
        year,
        month,
        day,
        hour: in_day / 3_600_000,
        minute: in_day / 60_000 % 60,
        second: in_day / 1000 % 60,
        millis: in_day % 1000,
        // 1970-01-01 was a Thursday (4).
        weekday: u32::try_from((days + 4).rem_euclid(7)).unwrap_or(0),
    }
}

/// Days since 1970-01-01 to (year, month 1..=12, day 1..=31), proleptic Gregorian
/// (Howard Hinnant's algorithm; exact for the whole JavaScript date range).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    (
        y,
        u32::try_from(m).unwrap_or(1),
        u32::try_from(d).unwrap_or(1),
    )
}

/// (year, month 1..=12, day) to days since 1970-01-01; the inverse of `civil_from_days`.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn iso_of(t: i64) -> String {
    let p = date_parts(t);
    let year = if (0..=9999).contains(&p.year) {
        format!("{:04}", p.year)
    } else {
        // Expanded years, as Date.prototype.toISOString prints them.
        format!(
            "{}{:06}",
            if p.year < 0 { '-' } else { '+' },
            p.year.unsigned_abs()
        )
    };
    format!(
        "{year}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        p.month, p.day, p.hour, p.minute, p.second, p.millis
    )
}

/// `new Date(ms).toISOString()`: `2026-11-26T21:40:42.045Z` (years outside 0–9999 as
/// `+010000`/`-000001`). JavaScript throws `RangeError: Invalid time value` for an invalid date;
/// this returns `"Invalid Date"` instead so that it stays total.
pub fn date_iso(ms: f64) -> String {
    match time_clip(ms) {
        Some(t) => iso_of(t),
        None => "Invalid Date".to_string(),
    }
}

const WEEKDAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

pub(crate) fn weekday_name(p: &DateParts) -> &'static str {
    WEEKDAYS
        .get(usize::try_from(p.weekday).unwrap_or(0))
        .copied()
        .unwrap_or("")
}

pub(crate) fn month_name(p: &DateParts) -> &'static str {
    MONTHS
        .get(usize::try_from(p.month.saturating_sub(1)).unwrap_or(0))
        .copied()
        .unwrap_or("")
}

/// The year as `Date.prototype.toString` prints it: at least four digits, `-` when negative.
pub(crate) fn display_year(year: i64) -> String {
    if year < 0 {
        format!("-{:04}", year.unsigned_abs())
    } else {
        format!("{year:04}")
    }
}

/// `new Date(ms).toString()` in Node with `TZ=UTC`:
/// `Thu Nov 26 2026 21:40:42 GMT+0000 (Coordinated Universal Time)`; `"Invalid Date"` for an
/// invalid date.
pub fn date_to_string(ms: f64) -> String {
    let Some(t) = time_clip(ms) else {
        return "Invalid Date".to_string();
    };
    let p = date_parts(t);
    format!(
        "{} {} {:02} {} {:02}:{:02}:{:02} GMT+0000 (Coordinated Universal Time)",
        weekday_name(&p),
        month_name(&p),
        p.day,
        display_year(p.year),
        p.hour,
        p.minute,
        p.second
    )
}

/// Parses the exact format [`date_iso`] prints (`YYYY-MM-DDTHH:MM:SS.sssZ`, or with a `±YYYYYY`
/// year) back to a time value. Anything else — including the many other formats `Date.parse`
/// accepts — is `None`; this exists to turn the event's own `createdAt` back into a `Date`.
pub fn parse_iso_date(s: &str) -> Option<f64> {
    let b = s.as_bytes();
    let (year, rest): (i64, &[u8]) = match b.first()? {
        b'+' | b'-' => {
            let y = digits_value(b.get(1..7)?)?;
            if b.first() == Some(&b'-') {
                if y == 0 {
                    return None; // "-000000" is invalid by the spec
                }
                (-y, b.get(7..)?)
            } else {
                (y, b.get(7..)?)
            }
        }
        _ => (digits_value(b.get(0..4)?)?, b.get(4..)?),
    };
    // rest: -MM-DDTHH:MM:SS.sssZ
    if rest.len() != 20 {
        return None;
    }
    let sep_ok = [
        (0, b'-'),
        (3, b'-'),
        (6, b'T'),
        (9, b':'),
        (12, b':'),
        (15, b'.'),
        (19, b'Z'),
    ]
    .iter()
    .all(|&(i, c)| rest.get(i) == Some(&c));
    if !sep_ok {
        return None;
    }
    let field = |from: usize, to: usize| rest.get(from..to).and_then(digits_value);
    let month = u32::try_from(field(1, 3)?).ok()?;
    let day = u32::try_from(field(4, 6)?).ok()?;
    let hour = field(7, 9)?;
    let minute = field(10, 12)?;
    let second = field(13, 15)?;
    let millis = field(16, 19)?;
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    if hour > 24
        || minute > 59
        || second > 59
        || (hour == 24 && (minute, second, millis) != (0, 0, 0))
    {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let t = days
        .checked_mul(MS_PER_DAY)?
        .checked_add(((hour * 60 + minute) * 60 + second) * 1000 + millis)?;
    #[allow(clippy::cast_precision_loss)] // |t| is far below 2^53 here
    let t = t as f64;
    time_clip(t).map(|_| t)
}

fn digits_value(d: &[u8]) -> Option<i64> {
    if d.is_empty() || !d.iter().all(u8::is_ascii_digit) {
        return None;
    }
    d.iter().try_fold(0i64, |acc, c| {
        acc.checked_mul(10)?.checked_add(i64::from(c - b'0'))
    })
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if year.rem_euclid(4) == 0
            && (year.rem_euclid(100) != 0 || year.rem_euclid(400) == 0) =>
        {
            29
        }
        2 => 28,
        _ => 31,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(pairs: &[(&str, Value)]) -> Value {
        Value::Object(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_string(), v.clone()))
                .collect(),
        )
    }

    #[test]
    fn numbers_print_like_javascript() {
        let cases: &[(f64, &str)] = &[
            (0.0, "0"),
            (-0.0, "0"),
            (42.0, "42"),
            (-7.0, "-7"),
            (1.5, "1.5"),
            (-2.25, "-2.25"),
            (100.0, "100"),
            (1e20, "100000000000000000000"),
            (1e21, "1e+21"),
            (1.5e22, "1.5e+22"),
            (0.000001, "0.000001"),
            (1e-7, "1e-7"),
            (1.5e-7, "1.5e-7"),
            (5e-324, "5e-324"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (0.1 + 0.2, "0.30000000000000004"),
            (std::f64::consts::PI, "3.141592653589793"),
            (9007199254740993.0, "9007199254740992"),
            (18446744073709551615.0, "18446744073709552000"),
            (123456789012345680000.0, "123456789012345680000"),
            (0.1, "0.1"),
            (-1e-7, "-1e-7"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "Infinity"),
            (f64::NEG_INFINITY, "-Infinity"),
        ];
        for (n, want) in cases {
            assert_eq!(number_to_string(*n), *want, "{n:?}");
        }
    }

    #[test]
    fn parse_key_order_and_duplicates() {
        let v =
            parse_json(r#"{"b":1,"10":2,"a":3,"2":4,"01":5,"4294967295":6,"4294967294":7,"b":8}"#)
                .unwrap();
        assert_eq!(
            stringify(&v),
            r#"{"2":4,"10":2,"4294967294":7,"b":8,"a":3,"01":5,"4294967295":6}"#
        );
    }

    #[test]
    fn parse_many_keys_with_duplicates() {
        let mut text = String::from("{");
        for i in 0..100 {
            text.push_str(&format!("\"k{i}\":{i},"));
        }
        text.push_str("\"k5\":\"last\"}");
        let v = parse_json(&text).unwrap();
        let Value::Object(entries) = &v else { panic!() };
        assert_eq!(entries.len(), 100);
        assert_eq!(entries[5], ("k5".to_string(), Value::String("last".into())));
    }

    #[test]
    fn parse_numbers_exactly() {
        let v = parse_json("[18446744073709551615, 1.0, -0, 1e400, 0.1, 5e-324, 2.5e-3]").unwrap();
        assert_eq!(
            stringify(&v),
            "[18446744073709552000,1,0,null,0.1,5e-324,0.0025]"
        );
        assert!(
            matches!(&v, Value::Array(a) if matches!(a[2], Value::Number(z) if z == 0.0 && z.is_sign_negative()))
        );
    }

    #[test]
    fn parse_strings_and_escapes() {
        let v = parse_json(
            r#""a\"b\\c\/d\b\f\n\r\t\u00e9\u2028\ud83d\ude00 \ud800x \udc00 \ud800\u0041""#,
        )
        .unwrap();
        assert_eq!(
            v,
            Value::String(
                "a\"b\\c/d\u{8}\u{c}\n\r\t\u{e9}\u{2028}\u{1F600} \u{FFFD}x \u{FFFD} \u{FFFD}A"
                    .into()
            )
        );
    }

    #[test]
    fn parse_postgres_jsonb_text() {
        let v = parse_json(r#"{"a": 1, "bb": [true, false, null], "ccc": {"x": "y"}}"#).unwrap();
        assert_eq!(
            stringify(&v),
            r#"{"a":1,"bb":[true,false,null],"ccc":{"x":"y"}}"#
        );
    }

    #[test]
    fn parse_rejects_invalid() {
        for bad in [
            "",
            " ",
            "{",
            "[1,]",
            "{\"a\":1,}",
            "01",
            "1.",
            ".5",
            "-",
            "1e",
            "+1",
            "tru",
            "nul",
            "\"abc",
            "\"\\x\"",
            "\"\\u12\"",
            "\"a\nb\"",
            "{a:1}",
            "[1 2]",
            "1 2",
            "\u{feff}1",
            "NaN",
            "Infinity",
            "'a'",
            "[",
            "{\"a\" 1}",
        ] {
            assert!(parse_json(bad).is_err(), "{bad:?} should be rejected");
        }
        let e = parse_json("[1, x]").unwrap_err();
        assert_eq!(e.position, 4);
        assert_eq!(e.to_string(), "unexpected character at position 4");
    }

    #[test]
    fn parse_depth_is_bounded() {
        let ok = "[".repeat(MAX_DEPTH) + &"]".repeat(MAX_DEPTH);
        assert!(parse_json(&ok).is_ok());
        let deep = "[".repeat(MAX_DEPTH + 1) + &"]".repeat(MAX_DEPTH + 1);
        assert!(parse_json(&deep).is_err());
        let hostile = "{\"a\":".repeat(10_000) + "1" + &"}".repeat(10_000);
        assert!(parse_json(&hostile).is_err());
        let unclosed = "[".repeat(1_000_000);
        assert!(parse_json(&unclosed).is_err());
    }

    #[test]
    fn stringify_escapes_like_json_stringify() {
        let s = "q\" b\\ / é ✓ \u{7f} \u{1} \u{1f} \u{8}\u{c}\n\r\t \u{2028}";
        assert_eq!(
            stringify(&Value::String(s.into())),
            "\"q\\\" b\\\\ / é ✓ \u{7f} \\u0001 \\u001f \\b\\f\\n\\r\\t \u{2028}\""
        );
        let v = obj(&[
            ("d", Value::Date(1_795_729_242_045.0)),
            ("bad", Value::Date(f64::NAN)),
            ("inf", Value::Number(f64::INFINITY)),
        ]);
        assert_eq!(
            stringify(&v),
            r#"{"d":"2026-11-26T21:40:42.045Z","bad":null,"inf":null}"#
        );
    }

    #[test]
    fn display_strings() {
        let v = parse_json(r#"["a","b&c",1,null,true,2.5,[3,4],{},[]]"#).unwrap();
        assert_eq!(
            to_display_string(&v),
            "a,b&c,1,,true,2.5,3,4,[object Object],"
        );
        assert_eq!(to_display_string(&Value::Null), "null");
        assert_eq!(to_display_string(&Value::Bool(false)), "false");
        assert_eq!(
            to_display_string(&Value::Date(1_795_729_242_045.0)),
            "Thu Nov 26 2026 21:40:42 GMT+0000 (Coordinated Universal Time)"
        );
    }

    #[test]
    fn dates() {
        assert_eq!(date_iso(0.0), "1970-01-01T00:00:00.000Z");
        assert_eq!(date_iso(-1.0), "1969-12-31T23:59:59.999Z");
        assert_eq!(date_iso(951_782_400_000.0), "2000-02-29T00:00:00.000Z");
        assert_eq!(date_iso(8.64e15), "+275760-09-13T00:00:00.000Z");
        assert_eq!(date_iso(-8.64e15), "-271821-04-20T00:00:00.000Z");
        assert_eq!(
            date_iso(-62_198_755_200_000.0),
            "-000001-01-01T00:00:00.000Z"
        );
        assert_eq!(date_iso(8.64e15 + 1.0), "Invalid Date");
        assert_eq!(
            date_to_string(-1.0),
            "Wed Dec 31 1969 23:59:59 GMT+0000 (Coordinated Universal Time)"
        );
        assert_eq!(
            date_to_string(-62_198_755_200_000.0),
            "Fri Jan 01 -0001 00:00:00 GMT+0000 (Coordinated Universal Time)"
        );
        assert_eq!(date_to_string(f64::NAN), "Invalid Date");
        for t in [
            0.0,
            -1.0,
            1_795_729_242_045.0,
            8.64e15,
            -8.64e15,
            -62_198_755_200_000.0,
            951_782_400_000.0,
        ] {
            assert_eq!(parse_iso_date(&date_iso(t)), Some(t), "{t}");
        }
        for bad in [
            "2026-02-30T00:00:00.000Z",
            "2026-11-26T21:40:42Z",
            "2026-11-26 21:40:42.045Z",
            "-000000-01-01T00:00:00.000Z",
            "+275760-09-13T00:00:00.001Z",
            "",
            "2026",
        ] {
            assert_eq!(parse_iso_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn array_indices() {
        assert_eq!(array_index("0"), Some(0));
        assert_eq!(array_index("4294967294"), Some(4_294_967_294));
        assert_eq!(array_index("4294967295"), None);
        assert_eq!(array_index("00"), None);
        assert_eq!(array_index("-1"), None);
        assert_eq!(array_index("1.0"), None);
        assert_eq!(array_index(""), None);
        assert_eq!(array_index("99999999999"), None);
    }
}
