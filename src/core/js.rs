//! JavaScript values as Node.js sees them.
//!
//! Unleash builds its webhook bodies in Node: node-pg `JSON.parse`s the `json`/`jsonb` columns,
//! the event object is printed with `JSON.stringify`, and mustache.js prints values with
//! `String(v)`. To reproduce those bytes exactly we need the same value model and the same three
//! conversions. What is JavaScript's own is here: the value model, property order (integer-like
//! keys first) and the duplicate-key rule, `String(v)`, and the texts of `Date`. The rest is
//! done by libraries: `serde_json` reads and writes JSON's grammar and string escapes (which are
//! JavaScript's), `ryu-js` prints numbers as `Number.prototype.toString` does, and `time` does
//! the calendar. Two inputs that `JSON.parse` accepts and `serde_json` refuses are handled here,
//! each in one place: lone surrogate escapes ([`replace_lone_surrogates`]) and numbers beyond
//! the range of a double ([`overflowing_numbers`]).
//!
//! Everything here is total: no function panics on any input. Nesting is bounded by
//! [`MAX_DEPTH`] at parse time, so every recursive function below recurses at most that deep on
//! values that came from [`parse_json`] (callers who build deeper [`Value`]s by hand own the
//! stack they use).

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::io;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};

/// Deepest array/object nesting [`parse_json`] accepts. Deeper input is an error rather than a
/// risk to the stack (every consumer of [`Value`] recurses once per level).
pub const MAX_DEPTH: usize = 200;

/// Largest magnitude of a JavaScript time value (ECMAScript `TimeClip`): ±100,000,000 days.
pub const MAX_TIME_MS: f64 = 8.64e15;

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
    /// What was wrong (serde_json's words, or ours for the nesting bound).
    pub message: String,
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
    let text = replace_lone_surrogates(text);
    match parse_with(&text, &[]) {
        Err(ParseError::OutOfRange(first)) => {
            // JavaScript reads such a number as ±Infinity; serde_json refuses it. Parse again
            // with each one replaced by a finite stand-in that the visitor turns back.
            let Some((patched, infinite)) = overflowing_numbers(&text) else {
                return Err(first);
            };
            parse_with(&patched, &infinite).map_err(ParseError::into_json_error)
        }
        other => other.map_err(ParseError::into_json_error),
    }
}

enum ParseError {
    /// serde_json found a number beyond the range of a double.
    OutOfRange(JsonError),
    Other(JsonError),
}

impl ParseError {
    fn into_json_error(self) -> JsonError {
        match self {
            ParseError::OutOfRange(e) | ParseError::Other(e) => e,
        }
    }
}

/// One serde_json pass. `infinite`: the ordinals (among all numbers, in document order) of the
/// numbers [`overflowing_numbers`] replaced, and whether each was negative.
fn parse_with(text: &str, infinite: &[(usize, bool)]) -> Result<Value, ParseError> {
    let mut de = serde_json::Deserializer::from_str(text);
    // Our own bound (MAX_DEPTH) is checked by the visitor, before serde_json recurses.
    de.disable_recursion_limit();
    let mut numbers = NumberCount { seen: 0, infinite };
    let parsed = ValueSeed {
        depth: 0,
        numbers: &mut numbers,
    }
    .deserialize(&mut de)
    .and_then(|v| de.end().map(|()| v));
    parsed.map_err(|e| {
        let out_of_range = e.to_string().starts_with("number out of range");
        let error = json_error(text, &e);
        if out_of_range {
            ParseError::OutOfRange(error)
        } else {
            ParseError::Other(error)
        }
    })
}

/// serde_json's error as a message and a byte offset (it reports a line and a 1-based column).
fn json_error(text: &str, e: &serde_json::Error) -> JsonError {
    let full = e.to_string();
    let message = match full.rfind(" at line ") {
        Some(i) => full.get(..i).unwrap_or(&full),
        None => &full,
    };
    let line_start = if e.line() <= 1 {
        0
    } else {
        text.match_indices('\n')
            .nth(e.line() - 2)
            .map_or(text.len(), |(i, _)| i + 1)
    };
    JsonError {
        message: message.to_string(),
        position: (line_start + e.column().saturating_sub(1)).min(text.len()),
    }
}

/// Counts numbers in document order, to find the ones [`overflowing_numbers`] replaced.
struct NumberCount<'a> {
    seen: usize,
    infinite: &'a [(usize, bool)],
}

impl NumberCount<'_> {
    fn number(&mut self, n: f64) -> Value {
        let ordinal = self.seen;
        self.seen += 1;
        match self.infinite.binary_search_by_key(&ordinal, |(o, _)| *o) {
            Ok(i) if self.infinite.get(i).is_some_and(|(_, negative)| *negative) => {
                Value::Number(f64::NEG_INFINITY)
            }
            Ok(_) => Value::Number(f64::INFINITY),
            Err(_) => Value::Number(n),
        }
    }
}

/// Builds a [`Value`] from serde_json's events, with JavaScript's key order and the depth bound.
struct ValueSeed<'n, 'a> {
    depth: usize,
    numbers: &'n mut NumberCount<'a>,
}

impl<'de> DeserializeSeed<'de> for ValueSeed<'_, '_> {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl ValueSeed<'_, '_> {
    /// The depth inside the array or object being entered, or the nesting error.
    fn enter<E: de::Error>(&self) -> Result<usize, E> {
        if self.depth >= MAX_DEPTH {
            Err(E::custom("JSON nested deeper than 200 levels"))
        } else {
            Ok(self.depth + 1)
        }
    }
}

impl<'de> Visitor<'de> for ValueSeed<'_, '_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }

    // serde_json gives an integer that fits 64 bits as one; `as` rounds it to the nearest
    // double, as JavaScript does.
    #[allow(clippy::cast_precision_loss)]
    fn visit_u64<E>(self, n: u64) -> Result<Value, E> {
        Ok(self.numbers.number(n as f64))
    }

    #[allow(clippy::cast_precision_loss)]
    fn visit_i64<E>(self, n: i64) -> Result<Value, E> {
        Ok(self.numbers.number(n as f64))
    }

    fn visit_f64<E>(self, n: f64) -> Result<Value, E> {
        Ok(self.numbers.number(n))
    }

    fn visit_str<E>(self, s: &str) -> Result<Value, E> {
        Ok(Value::String(s.to_string()))
    }

    fn visit_string<E>(self, s: String) -> Result<Value, E> {
        Ok(Value::String(s))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let depth = self.enter()?;
        let mut items = Vec::new();
        while let Some(v) = seq.next_element_seed(ValueSeed {
            depth,
            numbers: &mut *self.numbers,
        })? {
            items.push(v);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let depth = self.enter()?;
        let mut obj = ObjectBuilder::default();
        while let Some(key) = map.next_key::<String>()? {
            let v = map.next_value_seed(ValueSeed {
                depth,
                numbers: &mut *self.numbers,
            })?;
            obj.insert(key, v);
        }
        Ok(Value::Object(obj.finish()))
    }
}

/// `text` with each lone surrogate escape (`\ud800` without a low half after it, or a low half
/// on its own) replaced by `\ufffd`, which has the same length, so error positions stay.
///
/// Kept by hand because JavaScript's `JSON.parse` accepts lone surrogates (a JavaScript string
/// holds UTF-16 units) and serde_json refuses them; a Rust `String` cannot hold one, so U+FFFD
/// stands in, as Node prints a lone surrogate in UTF-8. Backslashes appear only in strings in
/// valid JSON, and each escape is consumed as a unit, so `\\ud800` stays an escaped backslash.
fn replace_lone_surrogates(text: &str) -> Cow<'_, str> {
    fn unit_at(b: &[u8], i: usize) -> Option<u16> {
        if b.get(i..i + 2)? != b"\\u" {
            return None;
        }
        let hex = std::str::from_utf8(b.get(i + 2..i + 6)?).ok()?;
        u16::from_str_radix(hex, 16).ok()
    }
    let b = text.as_bytes();
    if !b.contains(&b'\\') {
        return Cow::Borrowed(text);
    }
    let mut lone: Vec<usize> = Vec::new();
    let mut i = 0;
    while let Some(off) = b
        .get(i..)
        .and_then(|rest| rest.iter().position(|&c| c == b'\\'))
    {
        i += off;
        match unit_at(b, i) {
            Some(0xD800..=0xDBFF) if matches!(unit_at(b, i + 6), Some(0xDC00..=0xDFFF)) => i += 12,
            Some(0xD800..=0xDFFF) => {
                lone.push(i);
                i += 6;
            }
            // Any other escape, `\\` included, is two bytes or more and has no backslash after
            // its first byte.
            _ => i += 2,
        }
    }
    if lone.is_empty() {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    for at in lone {
        out.push_str(text.get(copied..at).unwrap_or_default());
        out.push_str("\\ufffd");
        copied = at + 6;
    }
    out.push_str(text.get(copied..).unwrap_or_default());
    Cow::Owned(out)
}

/// For a text in which serde_json found a number beyond the range of a double: the text with
/// each such number replaced by `0` and spaces (the same length, so positions stay), and the
/// ordinals of those numbers among all numbers in document order, with their signs.
///
/// Kept by hand because JavaScript reads such a number as ±Infinity and serde_json refuses it.
/// A scan of JSON's tokens: numbers are the runs outside strings that start with `-` or a digit
/// (a literal like `true` never does). A run that is not a valid JSON number ends the scan;
/// serde_json reports that text's error. `None` when no number overflows.
fn overflowing_numbers(text: &str) -> Option<(String, Vec<(usize, bool)>)> {
    let b = text.as_bytes();
    let mut patched = b.to_vec();
    let mut infinite = Vec::new();
    let mut ordinal = 0;
    let (mut i, mut in_string) = (0, false);
    while let Some(&c) = b.get(i) {
        match c {
            b'\\' if in_string => i += 1,
            b'"' => in_string = !in_string,
            b'-' | b'0'..=b'9' if !in_string => {
                let len = b
                    .get(i..)?
                    .iter()
                    .take_while(|c| matches!(c, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'))
                    .count();
                let literal = text.get(i..i + len)?;
                if !is_json_number(literal) {
                    break;
                }
                if literal.parse::<f64>().is_ok_and(f64::is_infinite) {
                    infinite.push((ordinal, c == b'-'));
                    let stand_in = patched.get_mut(i..i + len)?;
                    stand_in.fill(b' ');
                    *stand_in.first_mut()? = b'0';
                }
                ordinal += 1;
                i += len;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    if infinite.is_empty() {
        return None;
    }
    // Only ASCII bytes outside strings were replaced by ASCII bytes.
    String::from_utf8(patched).ok().map(|p| (p, infinite))
}

/// JSON's number grammar: `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`.
fn is_json_number(s: &str) -> bool {
    fn digits(s: &[u8]) -> usize {
        s.iter().take_while(|c| c.is_ascii_digit()).count()
    }
    let b = s.as_bytes();
    let mut i = usize::from(b.first() == Some(&b'-'));
    match b.get(i) {
        Some(b'0') => i += 1,
        Some(b'1'..=b'9') => i += digits(b.get(i..).unwrap_or_default()),
        _ => return false,
    }
    if b.get(i) == Some(&b'.') {
        let n = digits(b.get(i + 1..).unwrap_or_default());
        if n == 0 {
            return false;
        }
        i += 1 + n;
    }
    if let Some(b'e' | b'E') = b.get(i) {
        i += 1;
        if let Some(b'+' | b'-') = b.get(i) {
            i += 1;
        }
        let n = digits(b.get(i..).unwrap_or_default());
        if n == 0 {
            return false;
        }
        i += n;
    }
    i == b.len()
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
///
/// Non-finite numbers and invalid dates print `null`, as in JavaScript; a valid date prints its
/// ISO string (what `Date.prototype.toJSON` returns).
pub fn stringify(v: &Value) -> String {
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(&mut out, JsNumbers);
    // Writing to a Vec cannot fail, and every key is a string.
    if v.serialize(&mut ser).is_err() {
        return String::new();
    }
    // serde_json writes UTF-8 only.
    String::from_utf8(out).unwrap_or_default()
}

/// serde_json's JSON with JavaScript's number printing (`1e+21`, `100`, `5e-324`).
struct JsNumbers;

impl serde_json::ser::Formatter for JsNumbers {
    fn write_f64<W: ?Sized + io::Write>(&mut self, w: &mut W, n: f64) -> io::Result<()> {
        // serde_json writes `null` for NaN and ±Infinity itself, as JSON.stringify does.
        w.write_all(ryu_js::Buffer::new().format_finite(n).as_bytes())
    }
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Null => s.serialize_unit(),
            Value::Bool(b) => s.serialize_bool(*b),
            Value::Number(n) => s.serialize_f64(*n),
            Value::String(text) => s.serialize_str(text),
            Value::Date(ms) => match time_clip(*ms) {
                Some(t) => s.serialize_str(&iso_of(t)),
                None => s.serialize_unit(),
            },
            Value::Array(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Value::Object(entries) => {
                let mut map = s.serialize_map(Some(entries.len()))?;
                for (k, item) in entries {
                    map.serialize_entry(k, item)?;
                }
                map.end()
            }
        }
    }
}

/// `JSON.stringify(s)` for a string: escapes only `"`, `\` and control characters below
/// U+0020 (`\b \f \n \r \t` in short form, others as lowercase `\u00xx`); `/`, DEL and all
/// non-ASCII text stay as they are. (JavaScript also escapes lone surrogates, which a Rust
/// string cannot contain.)
pub fn quote_json_string(s: &str) -> String {
    // Serializing a string cannot fail.
    serde_json::to_string(s).unwrap_or_default()
}

/// `Number.prototype.toString()` (ECMAScript Number::toString with radix 10): the shortest
/// digits that round-trip, printed in plain notation for exponents -7 < e < 21 and as
/// `d.ddde±x` otherwise. `-0` prints `0`.
pub fn number_to_string(n: f64) -> String {
    ryu_js::Buffer::new().format(n).to_string()
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

/// The UTC date and time of a time value `t` that [`time_clip`] returned.
pub(crate) fn date_parts(t: i64) -> DateParts {
    // A clipped time value lies within ±275,760 years, inside `time`'s range with
    // large-dates (±999,999), so the fallback is never taken.
    let at = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(t) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    DateParts {
        year: i64::from(at.year()),
        month: u32::from(u8::from(at.month())),
        day: u32::from(at.day()),
        hour: u32::from(at.hour()),
        minute: u32::from(at.minute()),
        second: u32::from(at.second()),
        millis: u32::from(at.millisecond()),
        weekday: u32::from(at.weekday().number_days_from_sunday()),
    }
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
    let month = time::Month::try_from(u8::try_from(field(1, 3)?).ok()?).ok()?;
    let day = u8::try_from(field(4, 6)?).ok()?;
    let hour = field(7, 9)?;
    let minute = field(10, 12)?;
    let second = field(13, 15)?;
    let millis = field(16, 19)?;
    // The calendar (days in a month, leap years) is `time`'s.
    let date = time::Date::from_calendar_date(i32::try_from(year).ok()?, month, day).ok()?;
    if hour > 24
        || minute > 59
        || second > 59
        || (hour == 24 && (minute, second, millis) != (0, 0, 0))
    {
        return None;
    }
    let midnight = date.midnight().assume_utc().unix_timestamp();
    let t = midnight
        .checked_mul(1000)?
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
        let v = parse_json(
            r#"[18446744073709551615, 1.0, -0, 1e400, 0.1, 5e-324, 2.5e-3, "1e400", {"x": -1e999}, 1e-400, 12345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890]"#,
        )
        .unwrap();
        let Value::Array(items) = &v else { panic!() };
        let infinite: Vec<f64> = [3, 10]
            .iter()
            .map(|&i| match &items[i] {
                Value::Number(n) => *n,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(infinite, [f64::INFINITY, f64::INFINITY]);
        assert_eq!(items[8].get("x"), Some(&Value::Number(f64::NEG_INFINITY)));
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
        // An escaped backslash before `ud800` is not an escape; lone halves in keys too; a
        // high half before another pair.
        let v =
            parse_json(r#"{"\\ud800": "\\\ud800", "\udc00\ud800": "\ud800\ud83d\ude00"}"#).unwrap();
        assert_eq!(
            stringify(&v),
            "{\"\\\\ud800\":\"\\\\\u{FFFD}\",\"\u{FFFD}\u{FFFD}\":\"\u{FFFD}\u{1F600}\"}"
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
        assert_eq!(e.to_string(), "expected value at position 4");
        // Byte offsets across lines, unchanged by the stand-ins for a lone surrogate and an
        // overflowing number before the error.
        let text = "[\"\\ud800\",\n 1e400, x]";
        assert_eq!(
            parse_json(text).unwrap_err().position,
            text.find('x').unwrap()
        );
        let deep = format!("[{}", "[".repeat(MAX_DEPTH));
        assert_eq!(
            parse_json(&deep).unwrap_err().to_string(),
            "JSON nested deeper than 200 levels at position 200"
        );
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
