// Property tests (proptest) for the pure core: no input makes these functions panic, the
// outputs stay within their documented bounds, and JSON round-trips.
//
// Every property has a bounded case count and bounded input sizes, so that the whole module
// runs in well under a minute on two slow cores in a debug build. Failing cases are saved
// under tests/fuzz-regressions/ (one file per property) and replayed first on the next run.

use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use std::collections::HashSet;

use crate::core::event_json::{EventRow, event_json, event_value, template_view};
use crate::core::js::{self, Value, parse_json, stringify};
use crate::core::markdown::{PLACEHOLDER, event_markdown, substitute_markdown, try_event_markdown};
use crate::core::request::{Subscription, render_body};
use crate::core::signing::parse_secret;
use crate::core::template::{Limits, Template};
use crate::http::{check_url, valid_header_name, valid_header_value};

fn config(cases: u32, file: &'static str) -> ProptestConfig {
    ProptestConfig {
        cases,
        max_shrink_iters: 1024,
        max_shrink_time: 20_000,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(file))),
        ..ProptestConfig::default()
    }
}

/// Limits for fuzzed renders: small enough that a pathological template costs milliseconds.
const FUZZ_LIMITS: Limits = Limits {
    max_output_bytes: 1 << 16,
    max_steps: 200_000,
};

// ---------------------------------------------------------------------------------------------
// Generators
// ---------------------------------------------------------------------------------------------

/// Any Unicode text, up to `max` characters.
fn text(max: usize) -> BoxedStrategy<String> {
    prop::collection::vec(any::<char>(), 0..=max)
        .prop_map(|v| v.into_iter().collect())
        .boxed()
}

/// Arbitrary bytes, made UTF-8 the lossy way.
fn lossy(max: usize) -> BoxedStrategy<String> {
    prop::collection::vec(any::<u8>(), 0..=max)
        .prop_map(|v| String::from_utf8_lossy(&v).into_owned())
        .boxed()
}

/// A soup of the given pieces, up to `max` of them.
fn soup(pieces: &'static [&'static str], max: usize) -> BoxedStrategy<String> {
    prop::collection::vec(prop::sample::select(pieces), 0..=max)
        .prop_map(|v| v.concat())
        .boxed()
}

const JSON_PIECES: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    "\"",
    "\\",
    "\\u",
    "d800",
    "dc00",
    "0041",
    "\\n",
    "1e400",
    "-",
    "0",
    "1",
    ".",
    "e",
    "E",
    "+",
    "true",
    "false",
    "null",
    "nul",
    " ",
    "\n",
    "\t",
    "\r",
    "\"a\"",
    "\"0\"",
    "\"__proto__\"",
    "é",
    "\u{7f}",
    "\u{0}",
    "\u{feff}",
    "1e-400",
    "00",
    "4294967295",
    "\"4294967294\"",
    "Infinity",
    "NaN",
];

const TEMPLATE_PIECES: &[&str] = &[
    "{{",
    "}}",
    "{{{",
    "}}}",
    "{",
    "}",
    "{{#a}}",
    "{{/a}}",
    "{{^a}}",
    "{{#b}}",
    "{{/b}}",
    "{{#event.data}}",
    "{{/event.data}}",
    "{{a}}",
    "{{b.c}}",
    "{{.}}",
    "{{&a}}",
    "{{{a}}}",
    "{{!c}}",
    "{{! }}",
    "{{> p}}",
    "{{>/etc/passwd}}",
    "{{=<% %>=}}",
    "<%",
    "%>",
    "<%a%>",
    "<%={{ }}=%>",
    "{{= | | =}}",
    "|a|",
    "{{=a=}}",
    "{{event.createdAt}}",
    "{{event.createdAt.getTime}}",
    "{{event.createdAt.toISOString}}",
    "{{a.getFullYear}}",
    "{{a.toString}}",
    "{{#event.createdAt}}",
    "{{/event.createdAt}}",
    "{{a.length}}",
    "{{constructor}}",
    "{{toString}}",
    "{{hasOwnProperty}}",
    "{{valueOf}}",
    "{{#toString}}",
    "{{/toString}}",
    "{{#.}}",
    "{{/.}}",
    "{{^.}}",
    "\n",
    " ",
    "\r\n",
    "x",
    "é",
    "😀",
    "\t",
    "{{ a }}",
    "{{#a}}\n",
    "  {{/a}}\n",
    "{{eventJson}}",
    "{{{eventMarkdown}}}",
    "\u{0}",
    "{{0}}",
    "{{a.0}}",
    "{{#a.1}}",
    "{{/a.1}}",
    "\"",
    "\\",
];

const URL_PIECES: &[&str] = &[
    "http://",
    "https://",
    "HTTP://",
    "javascript:",
    "file://",
    "data:",
    "gopher://",
    "ftp://",
    "//",
    "user:pw@",
    "@",
    "[",
    "]",
    "::1",
    "fe80::1",
    "%25eth0",
    "%",
    "127.0.0.1",
    "10.0.0.1",
    ":",
    "99999",
    "65535",
    "0",
    "/",
    "?",
    "#",
    " ",
    "\n",
    "\r",
    "\t",
    "é",
    "xn--",
    "a",
    ".",
    "..",
    "localhost",
    "\u{0}",
    "\\",
    "%00",
    "%0d%0a",
    "0x7f",
    "2130706433",
];

/// A JavaScript-compatible value (no Date, finite numbers), objects in JavaScript property
/// order with unique keys: what JSON.stringify/JSON.parse round-trip exactly.
fn json_value() -> impl Strategy<Value = Value> {
    let number = prop_oneof![
        any::<f64>().prop_filter("finite", |n| n.is_finite()),
        any::<i32>().prop_map(f64::from),
        prop::sample::select(&[0.0, -0.0, 5e-324, 1e21, 1e-7, 0.1, 1.7976931348623157e308][..]),
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        number.prop_map(Value::Number),
        text(12).prop_map(Value::String),
    ];
    leaf.prop_recursive(6, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..6).prop_map(js_object),
        ]
    })
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(
            &[
                "0",
                "1",
                "2",
                "10",
                "01",
                "-1",
                "4294967294",
                "4294967295",
                "",
                "a",
                "__proto__",
                "constructor",
                "length",
                "toString",
            ][..]
        )
        .prop_map(str::to_string),
        text(6),
    ]
}

/// Builds an object as JSON.parse would: first occurrence of a key wins its place, array-index
/// keys first in numeric order, then the others in insertion order.
fn js_object(entries: Vec<(String, Value)>) -> Value {
    let mut seen = HashSet::new();
    let mut indexed = Vec::new();
    let mut named = Vec::new();
    for (k, v) in entries {
        if !seen.insert(k.clone()) {
            continue;
        }
        match js::array_index(&k) {
            Some(i) => indexed.push((i, k, v)),
            None => named.push((k, v)),
        }
    }
    indexed.sort_by_key(|e| e.0);
    Value::Object(
        indexed
            .into_iter()
            .map(|(_, k, v)| (k, v))
            .chain(named)
            .collect(),
    )
}

/// Any value a view can hold, dates (valid, invalid, NaN) included.
fn view_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<f64>().prop_map(Value::Number),
        text(8).prop_map(Value::String),
        prop_oneof![
            any::<f64>(),
            -8.64e15..8.64e15f64,
            Just(f64::NAN),
            Just(8.64e15 + 1.0)
        ]
        .prop_map(Value::Date),
    ];
    let view_key = prop_oneof![
        prop::sample::select(
            &[
                "a",
                "b",
                "c",
                "p",
                "event",
                "data",
                "createdAt",
                "length",
                "0",
                "1",
                "toString",
                "constructor",
            ][..]
        )
        .prop_map(str::to_string),
        text(4),
    ];
    leaf.prop_recursive(5, 40, 5, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec((view_key.clone(), inner), 0..5).prop_map(js_object),
        ]
    })
}

/// Text for a json column: garbage, JSON soup, or real JSON.
fn json_column() -> impl Strategy<Value = Option<String>> {
    prop::option::of(prop_oneof![
        text(24),
        soup(JSON_PIECES, 24),
        json_value().prop_map(|v| stringify(&v)),
    ])
}

fn event_row() -> impl Strategy<Value = EventRow> {
    let s = || text(16);
    let os = || prop::option::of(text(16));
    (
        (any::<i64>(), prop::option::of(any::<i64>()), s(), s()),
        (json_column(), json_column(), json_column()),
        (os(), os(), os(), prop::option::of(any::<i64>()), os(), os()),
    )
        .prop_map(
            |(
                (id, created_at_us, event_type, created_by),
                (data, pre_data, tags),
                (project, environment, feature_name, created_by_user_id, group_type, group_id),
            )| EventRow {
                id,
                created_at_us,
                event_type,
                created_by,
                data,
                pre_data,
                tags,
                project,
                environment,
                feature_name,
                created_by_user_id,
                group_type,
                group_id,
            },
        )
}

/// An event object as event_value builds it, with arbitrary values in every field.
fn event_object() -> impl Strategy<Value = Value> {
    let types = crate::tests::hx_markdown_types();
    let event_type = prop_oneof![
        prop::sample::select(types).prop_map(|t| Value::String(t.to_string())),
        view_value(),
    ];
    (
        event_type,
        view_value(),
        view_value(),
        view_value(),
        view_value(),
        view_value(),
        view_value(),
        any::<bool>(),
    )
        .prop_map(
            |(ty, created_by, data, pre_data, feature, project, env, extra)| {
                let mut o = vec![
                    ("id".to_string(), Value::Number(1.0)),
                    ("type".to_string(), ty),
                    ("createdBy".to_string(), created_by),
                    ("createdAt".to_string(), Value::Null),
                    ("data".to_string(), data),
                    ("preData".to_string(), pre_data),
                    ("tags".to_string(), Value::Array(Vec::new())),
                    ("featureName".to_string(), feature),
                    ("project".to_string(), project),
                    ("environment".to_string(), env),
                ];
                if extra {
                    o.retain(|(k, _)| k != "data");
                }
                Value::Object(o)
            },
        )
}

// ---------------------------------------------------------------------------------------------
// js
// ---------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config(4096, "tests/fuzz-regressions/js_parse.txt"))]

    #[test]
    fn js_parse_json_never_panics(
        s in prop_oneof![text(256), lossy(256), soup(JSON_PIECES, 96)]
    ) {
        if let Ok(v) = parse_json(&s) {
            // Whatever parses prints, and printing is stable.
            let out = stringify(&v);
            let again = parse_json(&out);
            prop_assert!(again.is_ok(), "{out:?}");
            prop_assert_eq!(stringify(&again.unwrap()), out);
        }
    }

    #[test]
    fn js_parse_json_bounds_nesting(depth in 0usize..2000, open in prop::sample::select(&["[", "{\"a\":"][..])) {
        let close = if open == "[" { "]" } else { "}" };
        let s = format!("{}1{}", open.repeat(depth), close.repeat(depth));
        let r = parse_json(&s);
        if depth <= js::MAX_DEPTH {
            prop_assert!(r.is_ok(), "depth {}", depth);
        } else {
            prop_assert!(r.is_err(), "depth {}", depth);
        }
    }
}

proptest! {
    #![proptest_config(config(2048, "tests/fuzz-regressions/js_roundtrip.txt"))]

    #[test]
    fn js_parse_stringify_round_trips(v in json_value()) {
        let text = stringify(&v);
        let back = parse_json(&text);
        prop_assert!(back.is_ok(), "{text:?}: {back:?}");
        prop_assert_eq!(back.unwrap(), v);
    }
}

// ---------------------------------------------------------------------------------------------
// template
// ---------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config(4096, "tests/fuzz-regressions/template_compile.txt"))]

    #[test]
    fn template_compile_never_panics(
        src in prop_oneof![text(256), lossy(256), soup(TEMPLATE_PIECES, 64)]
    ) {
        if let Err(e) = Template::compile(&src) {
            // Errors print (mustache.js's words), with or without the JS error name.
            prop_assert!(!e.to_string().is_empty());
            prop_assert!(!e.js_message().is_empty());
        }
    }

    #[test]
    fn template_nesting_is_bounded(depth in 0usize..3000, inverted in any::<bool>()) {
        let tag = if inverted { "{{^a}}" } else { "{{#a}}" };
        let src = format!("{}x{}", tag.repeat(depth), "{{/a}}".repeat(depth));
        let r = Template::compile(&src);
        prop_assert_eq!(r.is_ok(), depth <= crate::core::template::MAX_SECTION_DEPTH, "depth {}", depth);
    }
}

proptest! {
    #![proptest_config(config(1024, "tests/fuzz-regressions/template_render.txt"))]

    #[test]
    fn template_render_never_panics_and_stays_bounded(
        src in soup(TEMPLATE_PIECES, 48),
        view in view_value(),
    ) {
        if let Ok(t) = Template::compile(&src)
            && let Ok(out) = t.render_with_limits(&view, &FUZZ_LIMITS)
        {
            prop_assert!(out.len() <= FUZZ_LIMITS.max_output_bytes);
        }
    }

    #[test]
    fn template_render_against_event_views(
        src in soup(TEMPLATE_PIECES, 32),
        row in event_row(),
    ) {
        if let (Ok(t), Ok(event)) = (Template::compile(&src), event_value(&row)) {
            let json = event_json(&row).unwrap_or_default();
            let view = template_view(event, &json, PLACEHOLDER);
            if let Ok(out) = t.render_with_limits(&view, &FUZZ_LIMITS) {
                prop_assert!(out.len() <= FUZZ_LIMITS.max_output_bytes);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// event_json and the whole body
// ---------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config(2048, "tests/fuzz-regressions/event_json.txt"))]

    #[test]
    fn event_json_never_panics_and_prints_json(row in event_row()) {
        match event_json(&row) {
            Ok(body) => {
                let parsed = parse_json(&body);
                prop_assert!(matches!(parsed, Ok(Value::Object(_))), "{body:?}");
                prop_assert!(body.starts_with("{\"id\":"), "{body:?}");
            }
            Err(e) => {
                // Only a JSON column can be wrong, and the message names it.
                let m = e.to_string();
                prop_assert!(m.contains("events.data") || m.contains("events.pre_data") || m.contains("events.tags"), "{m}");
            }
        }
    }
}

proptest! {
    #![proptest_config(config(512, "tests/fuzz-regressions/render_body.txt"))]

    #[test]
    fn render_body_never_panics(
        row in event_row(),
        template in prop::option::of(soup(TEMPLATE_PIECES, 16)),
        url in text(12),
    ) {
        let sub = Subscription::new(
            "http://127.0.0.1:9/".to_string(),
            "application/json".to_string(),
            None,
            "{}",
            template.as_deref(),
            &[],
        );
        // Default limits: the template soup is small enough to stay fast.
        let _ = render_body(&sub, &row, &url);
    }
}

// ---------------------------------------------------------------------------------------------
// http
// ---------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config(4096, "tests/fuzz-regressions/http.txt"))]

    #[test]
    fn check_url_never_panics(s in prop_oneof![text(128), lossy(128), soup(URL_PIECES, 24)]) {
        let _ = check_url(&s);
    }

    #[test]
    fn check_url_never_repeats_credentials(
        before in soup(URL_PIECES, 6),
        after in soup(URL_PIECES, 10),
    ) {
        let url = format!("{before}user:S3CRETPW@{after}");
        if let Err(m) = check_url(&url) {
            prop_assert!(!m.contains("S3CRETPW"), "{m}");
        }
    }

    #[test]
    fn header_checks_never_panic(s in prop_oneof![text(64), lossy(64)]) {
        if valid_header_name(&s) {
            prop_assert!(!s.is_empty());
            prop_assert!(s.bytes().all(|b| b.is_ascii_graphic() && !b"\"(),/:;<=>?@[\\]{}".contains(&b)), "{s:?}");
        }
        if valid_header_value(&s) {
            prop_assert!(s.bytes().all(|b| b == b'\t' || (b >= 0x20 && b != 0x7f)), "{s:?}");
        }
    }

    #[test]
    fn header_values_with_cr_or_lf_are_invalid(
        a in text(32),
        b in text(32),
        brk in prop::sample::select(&["\r", "\n", "\r\n", "\n\r"][..]),
    ) {
        let v = format!("{a}{brk}{b}");
        prop_assert!(!valid_header_value(&v), "{v:?}");
        prop_assert!(!valid_header_name(&v), "{v:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// markdown
// ---------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config(2048, "tests/fuzz-regressions/markdown.txt"))]

    #[test]
    fn event_markdown_never_panics(event in event_object(), url in text(12)) {
        let _ = try_event_markdown(&event, &url);
        let _ = event_markdown(&event, &url);
    }

    #[test]
    fn event_markdown_never_panics_on_any_value(v in view_value(), url in text(12)) {
        let _ = try_event_markdown(&v, &url);
        let _ = event_markdown(&v, &url);
    }

    #[test]
    fn substitute_markdown_never_panics(
        parts in prop::collection::vec(prop_oneof![text(8), Just(PLACEHOLDER.to_string()), Just("\"".to_string()), Just("\\".to_string())], 0..16),
        md in text(16),
    ) {
        let rendered = parts.concat();
        let out = substitute_markdown(&rendered, &md);
        if !rendered.contains(PLACEHOLDER) {
            prop_assert_eq!(out, rendered);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// signing
// ---------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config(4096, "tests/fuzz-regressions/signing.txt"))]

    #[test]
    fn parse_secret_never_panics_nor_echoes(
        s in prop_oneof![
            text(96),
            lossy(96),
            "[A-Za-z0-9+/=!\\- \n]{0,120}".prop_map(|b| format!("whsec_{b}")),
        ]
    ) {
        match parse_secret(&s) {
            Ok(key) => prop_assert!((24..=64).contains(&key.len())),
            Err(m) => {
                // No part of the value: not the whole, not what follows the prefix.
                let body = s.trim().strip_prefix("whsec_").unwrap_or(s.trim());
                if body.chars().count() >= 12 {
                    prop_assert!(!m.contains(body), "{m}");
                }
                if s.chars().count() >= 12 {
                    prop_assert!(!m.contains(&s), "{m}");
                }
            }
        }
    }
}
