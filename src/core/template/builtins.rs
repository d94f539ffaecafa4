//! JavaScript property access, as far as mustache.js templates can reach it: own properties,
//! the modelled prototype members and `Date` methods (see the list of known differences in
//! the module docs of [`super`]), and `String(v)` with its one failure.

use super::error::TemplateError;
use super::parser::Name;
use crate::core::js::{self, Value};

/// The modelled built-in functions (see the list of known differences at the top).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Builtin {
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
pub(super) enum DateMethod {
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
pub(super) enum Got<'a> {
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
    pub(super) fn into_owned(self) -> Got<'static> {
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
pub(super) fn lookup_in<'a>(
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
pub(super) fn js_string(v: &Value) -> Result<String, TemplateError> {
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

/// Calls the built-in `f` with `this_got`, the innermost context's view, as `this`: what
/// mustache.js does with a function a lookup finds.
pub(super) fn call(f: Builtin, this_got: Got<'_>) -> Result<Got<'_>, TemplateError> {
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
