//! An `events` row turned into Unleash's event JSON, byte for byte.
//!
//! Unleash's webhook sends `JSON.stringify(event)` where `event` is built from the row by its
//! event store (`rowToEvent`): node-pg has already `JSON.parse`d the `json`/`jsonb` columns and
//! turned `created_at` into a `Date`. Reproducing those bytes therefore means going through the
//! same JavaScript value model ([`crate::core::js`]): parse each JSON column, build the object with
//! Unleash's key order, and print it the way `JSON.stringify` does. This module also builds the
//! Mustache view `{ event, eventJson, eventMarkdown }` that body templates are rendered against.

use std::fmt;

use crate::core::js::{self, JsonError, Value};

/// One row of Unleash's `events` table, as read by the extension (`ip` and `announced` are
/// never sent, so they are not here).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventRow {
    /// `id` (int4 serial).
    pub id: i64,
    /// `created_at` as microseconds since the Unix epoch, UTC; `None` when NULL.
    pub created_at_us: Option<i64>,
    /// `type`.
    pub event_type: String,
    /// `created_by`.
    pub created_by: String,
    /// `data`, the `json` column's text (key order as written).
    pub data: Option<String>,
    /// `pre_data`, the `jsonb` column's text as PostgreSQL prints it (jsonb key order).
    pub pre_data: Option<String>,
    /// `tags`, the `json` column's text.
    pub tags: Option<String>,
    /// `project`.
    pub project: Option<String>,
    /// `environment`.
    pub environment: Option<String>,
    /// `feature_name`.
    pub feature_name: Option<String>,
    /// `created_by_user_id`.
    pub created_by_user_id: Option<i64>,
    /// `group_type`.
    pub group_type: Option<String>,
    /// `group_id`.
    pub group_id: Option<String>,
}

/// Why a row could not be turned into an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventError {
    /// A JSON column held text that is not JSON (or is nested deeper than
    /// [`js::MAX_DEPTH`]). Node would have failed on it too; we report which column.
    InvalidJson {
        /// The column name: `data`, `pre_data` or `tags`.
        column: &'static str,
        /// What the parser found.
        error: JsonError,
    },
}

impl fmt::Display for EventError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EventError::InvalidJson { column, error } => {
                write!(f, "events.{column} does not hold valid JSON: {error}")
            }
        }
    }
}

impl std::error::Error for EventError {}

fn json_column(column: &'static str, text: Option<&str>) -> Result<Value, EventError> {
    match text {
        None => Ok(Value::Null),
        Some(t) => js::parse_json(t).map_err(|error| EventError::InvalidJson { column, error }),
    }
}

fn opt_string(s: Option<&String>) -> Value {
    s.map_or(Value::Null, |s| Value::String(s.clone()))
}

/// `created_at` as the JavaScript `Date` node-pg makes of it, printed by `toJSON`: UTC ISO-8601
/// with the microseconds floored to milliseconds (also before 1970), or `null` when NULL or
/// outside JavaScript's date range (an invalid `Date` prints `null`).
fn created_at_value(us: Option<i64>) -> Value {
    let Some(us) = us else {
        return Value::Null;
    };
    #[allow(clippy::cast_precision_loss)]
    // |ms| < 2^63 / 1000 < 2^54; only out-of-range values round
    let ms = us.div_euclid(1000) as f64;
    if ms.abs() <= js::MAX_TIME_MS {
        Value::String(js::date_iso(ms))
    } else {
        Value::Null
    }
}

/// The event object Unleash builds from a row (`rowToEvent`), with `createdAt` as its ISO
/// string (or `null`).
///
/// Keys, in order: `id, type, createdBy, createdAt, createdByUserId, data, preData, tags,
/// featureName, project, environment`, then `groupType` and `groupId`, each only when its
/// column is neither NULL nor empty. `data`/`preData` NULL are `null`; `tags` is `[]` when NULL
/// or when its JSON is falsy (`row.tags || []`). JSON columns are parsed as `JSON.parse` does
/// (so `{"a": 1.0}` becomes `{"a":1}` when printed).
pub fn event_value(row: &EventRow) -> Result<Value, EventError> {
    let data = json_column("data", row.data.as_deref())?;
    let pre_data = json_column("pre_data", row.pre_data.as_deref())?;
    let tags = match json_column("tags", row.tags.as_deref())? {
        t if t.is_truthy() => t,
        _ => Value::Array(Vec::new()),
    };
    #[allow(clippy::cast_precision_loss)] // int4 columns in practice; JS numbers round the same way
    let num = |n: i64| Value::Number(n as f64);
    let mut o: Vec<(String, Value)> = Vec::with_capacity(13);
    let mut put = |k: &str, v: Value| o.push((k.to_string(), v));
    put("id", num(row.id));
    put("type", Value::String(row.event_type.clone()));
    put("createdBy", Value::String(row.created_by.clone()));
    put("createdAt", created_at_value(row.created_at_us));
    put(
        "createdByUserId",
        row.created_by_user_id.map_or(Value::Null, num),
    );
    put("data", data);
    put("preData", pre_data);
    put("tags", tags);
    put("featureName", opt_string(row.feature_name.as_ref()));
    put("project", opt_string(row.project.as_ref()));
    put("environment", opt_string(row.environment.as_ref()));
    // Unleash leaves these out when the row has no transaction context.
    for (key, col) in [("groupType", &row.group_type), ("groupId", &row.group_id)] {
        if let Some(s) = col.as_ref().filter(|s| !s.is_empty()) {
            put(key, Value::String(s.clone()));
        }
    }
    Ok(Value::Object(o))
}

/// The default webhook body: `JSON.stringify(event)` of [`event_value`].
pub fn event_json(row: &EventRow) -> Result<String, EventError> {
    Ok(js::stringify(&event_value(row)?))
}

/// The Mustache view Unleash renders body templates against:
/// `{ event, eventJson, eventMarkdown }`.
///
/// - `event` is `event` with `createdAt` turned into a [`Value::Date`] when it is an ISO string
///   as [`event_value`] makes it (so `{{event.createdAt}}` prints `Date.toString()`);
/// - `eventJson` is `JSON.stringify(event_json)`, i.e. `JSON.stringify(JSON.stringify(event))`:
///   a JSON string literal including its quotes; pass the body [`event_json`] produced;
/// - `eventMarkdown` is the given one-line summary.
pub fn template_view(event: Value, event_json: &str, event_markdown: &str) -> Value {
    let event = with_created_at_date(event);
    Value::Object(vec![
        ("event".to_string(), event),
        (
            "eventJson".to_string(),
            Value::String(js::quote_json_string(event_json)),
        ),
        (
            "eventMarkdown".to_string(),
            Value::String(event_markdown.to_string()),
        ),
    ])
}

/// The event as Unleash hands it to Mustache and to its Markdown formatter: `createdAt` is a
/// JavaScript `Date` there, not the ISO string of the JSON body.
pub fn with_created_at_date(mut event: Value) -> Value {
    if let Value::Object(entries) = &mut event {
        for (k, v) in entries.iter_mut() {
            let ms = match (k.as_str(), &*v) {
                ("createdAt", Value::String(s)) => js::parse_iso_date(s),
                _ => None,
            };
            if let Some(ms) = ms {
                *v = Value::Date(ms);
            }
        }
    }
    event
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn s(x: &str) -> Option<String> {
        Some(x.to_string())
    }

    /// The six rows of `sample-events.sql`; `pre_data` as PostgreSQL 15 prints the jsonb.
    /// Shared with the differential template test.
    pub(crate) fn sample_rows() -> Vec<EventRow> {
        let base = |id: i64, us: i64, ty: &str| EventRow {
            id,
            created_at_us: Some(us),
            event_type: ty.to_string(),
            created_by: "admin".to_string(),
            data: None,
            pre_data: None,
            tags: s("[]"),
            project: s("default"),
            environment: None,
            feature_name: s("spike-flag-1"),
            created_by_user_id: Some(-42),
            group_type: s("transaction"),
            group_id: None,
        };
        vec![
            EventRow {
                data: s(
                    r#"{"name":"spike-flag-1","description":"Spike <b>flag</b> & \"quotes\"","type":"release","project":"default","stale":false,"createdAt":"2026-11-26T21:40:42.045Z","impressionData":false,"archived":false}"#,
                ),
                group_id: s("01M8CWVDXY4DW93H0SA3HYV1BM"),
                ..base(14, 1_795_729_242_045_794, "feature-created")
            },
            EventRow {
                environment: s("development"),
                group_id: s("01M8CWVEHFNZFKSNFHKKBJWREC"),
                ..base(16, 1_795_729_242_646_461, "feature-environment-enabled")
            },
            EventRow {
                data: s(
                    r#"{"name":"spike-flag-1","description":"patched description","type":"release","project":"default","stale":false,"createdAt":"2026-11-26T21:40:42.045Z","impressionData":false,"archived":false}"#,
                ),
                pre_data: s(
                    r#"{"name": "spike-flag-1", "type": "release", "stale": false, "project": "default", "archived": false, "createdAt": "2026-11-26T21:40:42.045Z", "description": "Spike <b>flag</b> & \"quotes\"", "impressionData": false}"#,
                ),
                group_id: s("01M8CWVF4YFJ322XT5ZJSW0AX8"),
                ..base(19, 1_795_729_243_294_231, "feature-metadata-updated")
            },
            EventRow {
                data: s(r#"{"type":"simple","value":"spike"}"#),
                tags: s(r#"[{"value":"spike","type":"simple"}]"#),
                group_type: None,
                group_id: None,
                ..base(21, 1_795_729_243_615_279, "feature-tagged")
            },
            EventRow {
                data: s(
                    r#"{"id":"01M8CWVEYJ48XKZ4PJCDF8TG79","name":"flexibleRollout","title":null,"disabled":false,"constraints":[],"parameters":{"groupId":"spike-flag-1","rollout":"75","stickiness":"default"},"variants":[],"sortOrder":0,"segments":[]}"#,
                ),
                pre_data: s(
                    r#"{"id": "01M8CWVEYJ48XKZ4PJCDF8TG79", "name": "flexibleRollout", "title": null, "disabled": false, "segments": [], "variants": [], "sortOrder": 0, "parameters": {"groupId": "spike-flag-1", "rollout": "50", "stickiness": "default"}, "constraints": []}"#,
                ),
                tags: s(r#"[{"value":"spike","type":"simple"}]"#),
                environment: s("production"),
                group_id: s("01M8CWVG2Q1WKP9492RDABAREW"),
                ..base(23, 1_795_729_244_243_842, "feature-strategy-update")
            },
            EventRow {
                group_id: s("01M8CWVMQJMJZPCWATCD40RQXK"),
                ..base(37, 1_795_729_249_006_025, "feature-archived")
            },
        ]
    }

    /// The bodies of `expected-default-bodies.jsonl`, in the same order.
    const EXPECTED: [&str; 6] = [
        r#"{"id":14,"type":"feature-created","createdBy":"admin","createdAt":"2026-11-26T21:40:42.045Z","createdByUserId":-42,"data":{"name":"spike-flag-1","description":"Spike <b>flag</b> & \"quotes\"","type":"release","project":"default","stale":false,"createdAt":"2026-11-26T21:40:42.045Z","impressionData":false,"archived":false},"preData":null,"tags":[],"featureName":"spike-flag-1","project":"default","environment":null,"groupType":"transaction","groupId":"01M8CWVDXY4DW93H0SA3HYV1BM"}"#,
        r#"{"id":16,"type":"feature-environment-enabled","createdBy":"admin","createdAt":"2026-11-26T21:40:42.646Z","createdByUserId":-42,"data":null,"preData":null,"tags":[],"featureName":"spike-flag-1","project":"default","environment":"development","groupType":"transaction","groupId":"01M8CWVEHFNZFKSNFHKKBJWREC"}"#,
        r#"{"id":19,"type":"feature-metadata-updated","createdBy":"admin","createdAt":"2026-11-26T21:40:43.294Z","createdByUserId":-42,"data":{"name":"spike-flag-1","description":"patched description","type":"release","project":"default","stale":false,"createdAt":"2026-11-26T21:40:42.045Z","impressionData":false,"archived":false},"preData":{"name":"spike-flag-1","type":"release","stale":false,"project":"default","archived":false,"createdAt":"2026-11-26T21:40:42.045Z","description":"Spike <b>flag</b> & \"quotes\"","impressionData":false},"tags":[],"featureName":"spike-flag-1","project":"default","environment":null,"groupType":"transaction","groupId":"01M8CWVF4YFJ322XT5ZJSW0AX8"}"#,
        r#"{"id":21,"type":"feature-tagged","createdBy":"admin","createdAt":"2026-11-26T21:40:43.615Z","createdByUserId":-42,"data":{"type":"simple","value":"spike"},"preData":null,"tags":[{"value":"spike","type":"simple"}],"featureName":"spike-flag-1","project":"default","environment":null}"#,
        r#"{"id":23,"type":"feature-strategy-update","createdBy":"admin","createdAt":"2026-11-26T21:40:44.243Z","createdByUserId":-42,"data":{"id":"01M8CWVEYJ48XKZ4PJCDF8TG79","name":"flexibleRollout","title":null,"disabled":false,"constraints":[],"parameters":{"groupId":"spike-flag-1","rollout":"75","stickiness":"default"},"variants":[],"sortOrder":0,"segments":[]},"preData":{"id":"01M8CWVEYJ48XKZ4PJCDF8TG79","name":"flexibleRollout","title":null,"disabled":false,"segments":[],"variants":[],"sortOrder":0,"parameters":{"groupId":"spike-flag-1","rollout":"50","stickiness":"default"},"constraints":[]},"tags":[{"value":"spike","type":"simple"}],"featureName":"spike-flag-1","project":"default","environment":"production","groupType":"transaction","groupId":"01M8CWVG2Q1WKP9492RDABAREW"}"#,
        r#"{"id":37,"type":"feature-archived","createdBy":"admin","createdAt":"2026-11-26T21:40:49.006Z","createdByUserId":-42,"data":null,"preData":null,"tags":[],"featureName":"spike-flag-1","project":"default","environment":null,"groupType":"transaction","groupId":"01M8CWVMQJMJZPCWATCD40RQXK"}"#,
    ];

    #[test]
    fn sample_rows_give_unleash_bodies() {
        for (row, want) in sample_rows().iter().zip(EXPECTED) {
            assert_eq!(event_json(row).unwrap(), want, "event {}", row.id);
        }
    }

    /// Cross-checks the embedded bodies against the fixture file of what Unleash sent.
    #[test]
    fn embedded_bodies_match_fixture_file() {
        let text = include_str!("../../tests/fixtures/unleash/expected-default-bodies.jsonl");
        let rows = sample_rows();
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), rows.len());
        for (line, row) in lines.iter().zip(&rows) {
            let v = js::parse_json(line).unwrap();
            assert_eq!(v.get("event_id"), Some(&Value::Number(row.id as f64)));
            let Some(Value::String(body)) = v.get("body") else {
                panic!("no body in {line}")
            };
            assert_eq!(&event_json(row).unwrap(), body);
        }
    }

    #[test]
    fn nulls_everywhere() {
        let row = EventRow {
            id: 1,
            event_type: String::new(),
            created_by: String::new(),
            tags: None,
            ..Default::default()
        };
        assert_eq!(
            event_json(&row).unwrap(),
            r#"{"id":1,"type":"","createdBy":"","createdAt":null,"createdByUserId":null,"data":null,"preData":null,"tags":[],"featureName":null,"project":null,"environment":null}"#
        );
    }

    #[test]
    fn empty_group_fields_are_omitted() {
        let mut row = EventRow {
            group_type: s(""),
            group_id: s(""),
            ..Default::default()
        };
        assert!(!event_json(&row).unwrap().contains("group"));
        row.group_id = s("g");
        assert!(
            event_json(&row)
                .unwrap()
                .ends_with(r#""environment":null,"groupId":"g"}"#)
        );
    }

    #[test]
    fn falsy_or_json_null_tags_become_empty_array() {
        for t in ["null", "false", "0", "\"\""] {
            let row = EventRow {
                tags: s(t),
                ..Default::default()
            };
            assert!(event_json(&row).unwrap().contains(r#""tags":[]"#), "{t}");
        }
        let row = EventRow {
            tags: s(r#"{"a": 1}"#),
            ..Default::default()
        };
        assert!(event_json(&row).unwrap().contains(r#""tags":{"a":1}"#));
    }

    #[test]
    fn unicode_and_control_characters() {
        let row = EventRow {
            event_type: "t\u{1}\u{1f}\u{7f}".into(),
            created_by: "José ✓ 😀 \u{2028} / \\ \"".into(),
            data: s(r#"{"s": "tab\there\nnl \u0000 \u00e9 \ud83d\ude00 \/"}"#),
            feature_name: s("<b>&amp;</b>"),
            ..Default::default()
        };
        let out = event_json(&row).unwrap();
        assert!(out.contains("\"type\":\"t\\u0001\\u001f\u{7f}\""), "{out}");
        assert!(
            out.contains("\"createdBy\":\"José ✓ 😀 \u{2028} / \\\\ \\\"\""),
            "{out}"
        );
        assert!(
            out.contains(r#""data":{"s":"tab\there\nnl \u0000 é 😀 /"}"#),
            "{out}"
        );
        assert!(out.contains(r#""featureName":"<b>&amp;</b>""#), "{out}");
    }

    #[test]
    fn numbers_keys_and_duplicates_in_data() {
        let row = EventRow {
            data: s(
                r#"{"z": 1.0, "b": 18446744073709551615, "2": 0.1, "1": -0, "x": 1e21, "y": 1e-7, "z": 2.50, "01": 1E2}"#,
            ),
            pre_data: s(r#"{"a": 1, "10": 2, "9": 3}"#),
            ..Default::default()
        };
        let out = event_json(&row).unwrap();
        assert!(
            out.contains(r#""data":{"1":0,"2":0.1,"z":2.5,"b":18446744073709552000,"x":1e+21,"y":1e-7,"01":100}"#),
            "{out}"
        );
        assert!(out.contains(r#""preData":{"9":3,"10":2,"a":1}"#), "{out}");
    }

    #[test]
    fn timestamps_floor_to_milliseconds() {
        let at = |us| {
            let row = EventRow {
                created_at_us: Some(us),
                ..Default::default()
            };
            match event_value(&row).unwrap().get("createdAt") {
                Some(Value::String(s)) => s.clone(),
                Some(other) => format!("{other:?}"),
                None => "missing".to_string(),
            }
        };
        assert_eq!(at(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(at(999), "1970-01-01T00:00:00.000Z");
        assert_eq!(at(-1), "1969-12-31T23:59:59.999Z");
        assert_eq!(at(-1000), "1969-12-31T23:59:59.999Z");
        assert_eq!(at(-1001), "1969-12-31T23:59:59.998Z");
        assert_eq!(at(-14_182_940_000_000), "1969-07-20T20:17:40.000Z");
        assert_eq!(at(-62_198_755_200_000_000), "-000001-01-01T00:00:00.000Z");
        assert_eq!(at(253_402_300_799_999_999), "9999-12-31T23:59:59.999Z");
        assert_eq!(at(253_402_300_800_000_000), "+010000-01-01T00:00:00.000Z");
        // Beyond JavaScript's date range (PostgreSQL goes further): an invalid Date, `null`.
        assert_eq!(at(i64::MAX), "Null");
        assert_eq!(at(i64::MIN), "Null");
    }

    #[test]
    fn invalid_json_names_the_column() {
        for (col, row) in [
            (
                "data",
                EventRow {
                    data: s("{\"a\":"),
                    ..Default::default()
                },
            ),
            (
                "pre_data",
                EventRow {
                    pre_data: s("nope"),
                    ..Default::default()
                },
            ),
            (
                "tags",
                EventRow {
                    tags: s("[1,]"),
                    ..Default::default()
                },
            ),
            (
                "data",
                EventRow {
                    data: Some("[".repeat(10_000)),
                    ..Default::default()
                },
            ),
        ] {
            let err = event_json(&row).unwrap_err();
            let EventError::InvalidJson { column, .. } = &err;
            assert_eq!(*column, col);
            assert!(
                err.to_string().starts_with(&format!("events.{col} ")),
                "{err}"
            );
        }
    }

    #[test]
    fn view_has_date_and_double_encoded_json() {
        let row = &sample_rows()[3];
        let body = event_json(row).unwrap();
        let view = template_view(event_value(row).unwrap(), &body, "*admin* tagged");
        let Some(Value::Object(event)) = view.get("event") else {
            panic!()
        };
        assert_eq!(
            event.iter().find(|(k, _)| k == "createdAt").map(|(_, v)| v),
            Some(&Value::Date(1_795_729_243_615.0))
        );
        let Some(Value::String(ej)) = view.get("eventJson") else {
            panic!()
        };
        assert_eq!(js::parse_json(ej).unwrap(), Value::String(body));
        assert!(ej.starts_with("\"{\\\"id\\\":21,"));
        assert_eq!(
            view.get("eventMarkdown"),
            Some(&Value::String("*admin* tagged".into()))
        );
    }
}
