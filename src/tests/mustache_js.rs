//! Differential test of [`crate::core::template`] against the real mustache.js 4.2.0.
//!
//! A deterministic generator (seeded xorshift, no dependencies) builds a corpus of templates ×
//! event views, renders every case with this crate and with `Mustache.render(tpl, view)` run by
//! Node (`tests/mustache-diff/render.js`, mustache pinned to 4.2.0 by its lock file, `TZ=UTC`,
//! no partials, as Unleash calls it), and requires identical output, or, when mustache.js
//! throws, our `TemplateError::js_message()` equal to its `String(e)`.
//!
//! Templates: realistic webhook bodies (Slack, Teams, Discord, Google Chat, form-encoded,
//! plain text, Unleash's documented example), hand-picked edge cases (modelled prototype
//! members, date methods and their `TypeError`s, standalone lines, set delimiters, partials,
//! malformed tags with astral characters before the error), random combinations of every tag
//! kind, those truncated at a random character, and random junk over Mustache's sigils.
//! Views: the six real Unleash sample events (`sample-events.sql`) plus synthetic ones
//! (unicode, HTML specials, extreme numbers, nested arrays and nulls, scalar JSON columns,
//! keys that shadow `Object.prototype`, dates at the edges of the range), built with
//! [`event_json::event_value`] and [`event_json::template_view`] as the extension builds them.
//!
//! Classes of case deliberately not generated (each is a documented difference in
//! `core/template/mod.rs`, or not deterministic):
//! - `constructor` reaching `Date` (`{{#event.createdAt}}{{constructor}}…`,
//!   `{{event.createdAt.constructor}}`): `Date()` prints the current time. `constructor`
//!   elsewhere (`Object`, `Array`) is generated.
//! - Prototype members that are not modelled: `Array.prototype.values`/`at`/`join`…,
//!   `String`/`Number` methods, `toJSON`, `toLocale*`, `__defineGetter__`… (JavaScript finds a
//!   function there, we treat the name as absent). Relative names in the random pools avoid
//!   all of them, so e.g. `values` only appears in templates whose contexts are objects.
//! - `__proto__` where it is not an own key (`{{#event.data}}{{__proto__}}…`): JavaScript
//!   gives `Object.prototype` (printed `[object Object]`), we treat it as absent. The first run
//!   of this test found exactly this, and nothing else, in 8,700 cases; own `__proto__` keys
//!   are generated.
//! - Both halves of an astral character printed by adjacent tags (`{{s.0}}{{s.1}}`): Node
//!   rejoins them, a Rust string holds each lone half as U+FFFD. A single half is generated.
//! - This crate's own limits (nesting depth, output size, work): no generated case nears them.
//!
//! `render.js` receives views as JSON with `{"$date": "<ISO>"}` for dates and `{"$num": …}`
//! for `NaN`, `±Infinity` and `-0`; no view here has an object whose only key is `$date` or
//! `$num` of its own.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::core::event_json::{EventRow, event_json, event_value, template_view};
use crate::core::js::{self, Value};
use crate::core::template::Template;

/// xorshift64*: tiny, deterministic, good enough to pick fragments.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            return 0;
        }
        (self.next() % n as u64) as usize
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    fn pick<'a, T: ?Sized>(&mut self, items: &[&'a T]) -> &'a T {
        items[self.below(items.len())]
    }
}

// ---------------------------------------------------------------------------------------------
// Events
// ---------------------------------------------------------------------------------------------

fn s(x: &str) -> Option<String> {
    Some(x.to_string())
}

const MARKDOWN: &str = "*admin* created *[spike-flag-1](http://localhost:4242/projects/default/features/spike-flag-1)* in project *[default](http://localhost:4242/projects/default)* — \"quoted\" 'single' <b>tag</b> & a=b `code` ✓ 😀";

/// The six real rows of Unleash's sample events, as `event_json`'s own tests have them.
fn sample_rows() -> Vec<(String, EventRow)> {
    crate::core::event_json::tests::sample_rows()
        .into_iter()
        .map(|r| (format!("sample {} {}", r.id, r.event_type), r))
        .collect()
}

/// Synthetic rows for what the samples lack.
fn synthetic_rows() -> Vec<(String, EventRow)> {
    let base = EventRow {
        id: 100,
        created_at_us: Some(1_795_729_242_045_794),
        event_type: "feature-updated".into(),
        created_by: "admin".into(),
        tags: s("[]"),
        project: s("default"),
        feature_name: s("f1"),
        created_by_user_id: Some(1),
        ..Default::default()
    };
    vec![
        (
            "unicode".into(),
            EventRow {
                id: 101,
                event_type: "feature-created".into(),
                created_by: "José ✓ 😀 \u{2028} ünïcödé".into(),
                feature_name: s("flag-😀-ñ"),
                project: s("проект"),
                environment: s("生产"),
                data: s(
                    r#"{"name":"😀flag","description":"emoji 😀, RTL עברית, combining e\u0301, BOM \ufeff, NBSP \u00a0","emoji":"😀x","list":["α","β","😀"],"nul":"a\u0000b","ctl":"tab\tnl\ncr\r","sep":"\u2028\u2029","enabled":true}"#,
                ),
                tags: s(r#"[{"value":"ü","type":"simple"},{"value":"😀","type":"emoji"}]"#),
                group_type: s("transaction"),
                group_id: s("01ÜNÏCÖDÉ"),
                ..base.clone()
            },
        ),
        (
            "html".into(),
            EventRow {
                id: 102,
                created_by: r#"<script>alert("x")</script>"#.into(),
                feature_name: s(r#"a&b<c>"d"'e'/f`g=h"#),
                environment: s("dev&<prod>"),
                data: s(
                    r#"{"name":"a&b<c>","description":"<b>bold</b> & \"q\" 'a' `b` =c /d \\e","url":"https://x.example/?a=1&b=2#f","html":"&amp;&lt;","enabled":false,"parameters":{"rollout":"100","groupId":"</script>"}}"#,
                ),
                tags: s(
                    r#"[{"value":"<a href=\"x\">","type":"html"},{"value":"&","type":"'"},{"value":"=","type":"`"}]"#,
                ),
                ..base.clone()
            },
        ),
        (
            "numbers".into(),
            EventRow {
                id: 2_147_483_647,
                created_by_user_id: Some(-1),
                data: s(
                    r#"{"name":1e21,"big":1e21,"bigger":123456789012345678901234567890,"small":1e-7,"smallish":0.000001,"tiny":5e-324,"neg":-42.5,"negzero":-0,"zero":0,"max":1.7976931348623157e308,"inf":1e400,"ninf":-1e400,"frac":0.1,"third":0.3333333333333333,"int53":9007199254740993,"nums":[0,1,-1,1.5,1e21,-0,1e-7],"exp":1E2,"hex":"0x10","numstr":"007","enabled":1,"stale":0}"#,
                ),
                pre_data: s(
                    r#"{"10": "ten", "9": "nine", "a": 1, "01": "zero-one", "4294967295": "big"}"#,
                ),
                tags: s(r#"[{"value":0,"type":1},{"value":-0.5,"type":1e300}]"#),
                ..base.clone()
            },
        ),
        (
            "nested-nulls".into(),
            EventRow {
                id: 103,
                created_at_us: None,
                created_by_user_id: None,
                project: None,
                feature_name: None,
                data: s(
                    r#"{"name":null,"list":[[1,2],[3,[4,5]],[],[[]],["a",null]],"objs":[{"name":"a","value":null},{"name":null},{},{"name":"d","value":{"x":[1,{"y":2}]}}],"nulls":[null,null],"mixed":[1,"two",true,false,null,{"k":"v"},[3],""],"deep":{"a":{"b":{"c":{"d":"deep"}}}},"empty":{},"emptyList":[],"emptyStr":"","f":false,"t":true,"parameters":null,"constraints":[{"contextName":"userId","operator":"IN","values":["1","2"],"inverted":false},{"contextName":"env","operator":"NOT_IN","values":[],"inverted":true}]}"#,
                ),
                pre_data: s("null"),
                tags: None,
                ..base.clone()
            },
        ),
        (
            "shadowing-keys".into(),
            EventRow {
                id: 104,
                data: s(
                    r#"{"toString":"own","hasOwnProperty":1,"__proto__":{"x":1},"length":3,"0":"zero","constructor":"c","valueOf":"v","isPrototypeOf":true,"name":"shadow"}"#,
                ),
                pre_data: s(
                    r#"{"__proto__": null, "toString": null, "hasOwnProperty": {"hasOwnProperty": 0}}"#,
                ),
                tags: s(r#"[{"toString":"t","value":"x"},{"valueOf":0,"value":"y"}]"#),
                ..base.clone()
            },
        ),
        (
            "scalars".into(),
            EventRow {
                id: 105,
                event_type: String::new(),
                created_by: String::new(),
                feature_name: s(""),
                project: s(""),
                environment: s(""),
                data: s(r#""just a string""#),
                pre_data: s("[1, 2, 3]"),
                tags: s(r#""str""#),
                group_type: s(""),
                group_id: s(""),
                ..base.clone()
            },
        ),
        (
            "scalar-data".into(),
            EventRow {
                id: 106,
                data: s("42"),
                pre_data: s("true"),
                tags: s(r#"{"value":"obj-tag","type":"object"}"#),
                ..base.clone()
            },
        ),
        (
            "variants".into(),
            EventRow {
                id: 107,
                event_type: "feature-environment-variants-updated".into(),
                environment: s("production"),
                data: s(
                    r##"{"variants":[{"name":"blue","weight":500,"weightType":"variable","stickiness":"default","payload":{"type":"json","value":"{\"color\":\"#00f\"}"},"overrides":[]},{"name":"red","weight":500,"weightType":"fix","stickiness":"userId","overrides":[{"contextName":"userId","values":["u1","u2"]}]}]}"##,
                ),
                pre_data: s(r#"{"variants": []}"#),
                tags: s(
                    r#"[{"value":"a","type":"simple"},{"value":"b","type":"simple"},{"value":"c","type":"team"},{"value":"d","type":"team"},{"value":"e","type":"x"},{"value":"f","type":"x"},{"value":"g","type":"x"},{"value":"h","type":"x"},{"value":"i","type":"x"},{"value":"j","type":"x"},{"value":"k","type":"x"}]"#,
                ),
                ..base.clone()
            },
        ),
        (
            "change-request".into(),
            EventRow {
                id: 108,
                event_type: "change-request-approved".into(),
                created_by: "reviewer@example.com".into(),
                environment: s("production"),
                feature_name: None,
                data: s(
                    r#"{"changeRequestId":5,"state":"Approved","changes":[{"feature":"f1","action":"updateEnabled","payload":{"enabled":true}},{"feature":"f2","action":"addStrategy","payload":{"name":"default","constraints":[{"contextName":"userId","operator":"IN","values":["1"]}]}}]}"#,
                ),
                ..base.clone()
            },
        ),
        (
            "epoch".into(),
            EventRow {
                id: 109,
                created_at_us: Some(0),
                data: s(r#"{"name":"epoch","createdAt":"1970-01-01T00:00:00.000Z"}"#),
                ..base.clone()
            },
        ),
        (
            "before-1970".into(),
            EventRow {
                id: 110,
                created_at_us: Some(-14_182_940_000_001),
                ..base.clone()
            },
        ),
        (
            "year-10000".into(),
            EventRow {
                id: 111,
                created_at_us: Some(253_402_300_800_000_000),
                ..base.clone()
            },
        ),
        (
            "year-minus-1".into(),
            EventRow {
                id: 112,
                created_at_us: Some(-62_198_755_200_000_000),
                environment: s("staging"),
                ..base.clone()
            },
        ),
        (
            "leap-day".into(),
            EventRow {
                id: 113,
                created_at_us: Some(951_782_399_999_999),
                ..base
            },
        ),
    ]
}

/// `(label, view)` for every event, the view built as the extension builds it.
fn views() -> Vec<(String, Value)> {
    let mut rows = sample_rows();
    rows.extend(synthetic_rows());
    rows.into_iter()
        .enumerate()
        .map(|(i, (label, row))| {
            let event = event_value(&row).unwrap_or_else(|e| panic!("{label}: {e}"));
            let json = event_json(&row).unwrap_or_else(|e| panic!("{label}: {e}"));
            let md = if i % 2 == 0 { "" } else { MARKDOWN };
            (label, template_view(event, &json, md))
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Templates
// ---------------------------------------------------------------------------------------------

/// Realistic webhook bodies, the way people write them for Unleash.
const REALISTIC: &[&str] = &[
    // Unleash's documented example.
    r#"{"event": "{{event.type}}", "createdBy": "{{event.createdBy}}", "featureToggle": "{{event.data.name}}", "timestamp": "{{event.data.createdAt}}"}"#,
    r#"{"text": "{{{eventMarkdown}}}", "username": "Unleash", "icon_emoji": ":unleash:"}"#,
    r#"{"text": "{{eventMarkdown}}", "attachments": [{"color": "{{#event.data.enabled}}good{{/event.data.enabled}}{{^event.data.enabled}}warning{{/event.data.enabled}}", "fields": [{"title": "Project", "value": "{{event.project}}", "short": true}, {"title": "Environment", "value": "{{event.environment}}{{^event.environment}}all{{/event.environment}}", "short": true}]}]}"#,
    "{\n  \"blocks\": [\n    {\n      \"type\": \"section\",\n      \"text\": { \"type\": \"mrkdwn\", \"text\": \"{{{eventMarkdown}}}\" }\n    },\n    {{#event.tags}}\n    { \"type\": \"context\", \"elements\": [{ \"type\": \"mrkdwn\", \"text\": \"{{type}}:{{value}}\" }] },\n    {{/event.tags}}\n    { \"type\": \"divider\" }\n  ]\n}\n",
    "{\r\n  \"@type\": \"MessageCard\",\r\n  \"@context\": \"https://schema.org/extensions\",\r\n  \"summary\": \"{{event.type}}\",\r\n  \"themeColor\": \"0076D7\",\r\n  \"sections\": [{\r\n    \"activityTitle\": \"{{event.createdBy}} {{event.type}} {{event.featureName}}\",\r\n    \"facts\": [\r\n      {{#event.tags}}\r\n      { \"name\": \"{{type}}\", \"value\": \"{{value}}\" },\r\n      {{/event.tags}}\r\n      { \"name\": \"Project\", \"value\": \"{{event.project}}\" }\r\n    ],\r\n    \"markdown\": true\r\n  }]\r\n}\r\n",
    r#"{"content": "**{{event.type}}** by {{event.createdBy}}", "embeds": [{"title": "{{event.featureName}}", "description": {{{eventJson}}}, "timestamp": "{{event.data.createdAt}}"}]}"#,
    "{{{eventJson}}}",
    r#"{"payload": {{{eventJson}}}, "markdown": "{{{eventMarkdown}}}"}"#,
    "{{event.createdBy}} did {{event.type}} on {{event.featureName}} at {{event.createdAt}}",
    "rollout {{event.preData.parameters.rollout}}% -> {{event.data.parameters.rollout}}% ({{event.data.parameters.stickiness}}, group {{event.data.parameters.groupId}})",
    "type={{event.type}}&flag={{event.featureName}}&user={{event.createdBy}}&env={{event.environment}}",
    r#"{"text": "{{&eventMarkdown}}"}"#,
    "{{! Slack body, written with other delimiters }}\n{{=<% %>=}}\n{\"text\": \"<% event.type %> <%{ eventMarkdown }%>\", \"raw\": <%& eventJson %>}\n<%={{ }}=%>\n{{event.id}}\n",
    "{{#event.data}}data: {{name}} ({{type}}){{/event.data}}{{^event.data}}no data{{/event.data}}",
    "[{{#event.tags}}\"{{value}}\",{{/event.tags}}null]",
    "{{#event.data}}\n{{#constraints}}\n- {{contextName}} {{operator}} {{#values}}{{.}},{{/values}}{{#inverted}} (inverted){{/inverted}}\n{{/constraints}}\n{{/event.data}}\n",
    "{{#event.createdAt}}{{getFullYear}}-{{getMonth}}-{{getDate}} {{getHours}}:{{getMinutes}}:{{getSeconds}}.{{getMilliseconds}} day {{getDay}} | {{toISOString}} | {{toUTCString}}{{/event.createdAt}}{{^event.createdAt}}no date{{/event.createdAt}}",
    "{\n  \"type\": \"message\",\n  \"attachments\": [\n    {\n      \"contentType\": \"application/vnd.microsoft.card.adaptive\",\n      \"content\": {\n        \"type\": \"AdaptiveCard\",\n        \"body\": [\n          { \"type\": \"TextBlock\", \"text\": \"{{event.type}}\", \"weight\": \"bolder\" },\n          {{#event.data}}\n          { \"type\": \"TextBlock\", \"text\": \"{{name}}: {{description}}\", \"wrap\": true },\n          {{/event.data}}\n          { \"type\": \"FactSet\", \"facts\": [\n            {{#event.project}}{ \"title\": \"Project\", \"value\": \"{{.}}\" },{{/event.project}}\n            { \"title\": \"By\", \"value\": \"{{event.createdBy}}\" }\n          ] }\n        ]\n      }\n    }\n  ]\n}",
    "{\"cards\":[{\"header\":{\"title\":\"{{event.featureName}}\",\"subtitle\":\"{{event.project}} / {{event.environment}}\"},\"sections\":[{\"widgets\":[{\"textParagraph\":{\"text\":\"{{event.createdBy}}: {{event.type}}\"}}]}]}]}",
    "{{#event.data.variants}}{{name}}={{weight}} ({{weightType}}, {{stickiness}}){{#payload}} payload {{type}}: {{{value}}}{{/payload}}\n{{/event.data.variants}}",
    "{{#event.data.changes}}{{feature}}: {{action}} {{#payload.enabled}}on{{/payload.enabled}}{{payload.name}}\n{{/event.data.changes}}{{event.data.state}} #{{event.data.changeRequestId}}",
    "Event {{event.id}} ({{event.type}})\n  by:      {{event.createdBy}} (user {{event.createdByUserId}})\n  flag:    {{event.featureName}}\n  project: {{event.project}}\n  env:     {{event.environment}}\n  tags:    {{event.tags.length}}\n  group:   {{event.groupType}}/{{event.groupId}}\n",
    "{{#event.preData}}before: {{description}}{{/event.preData}}\n{{#event.data}}after: {{description}}{{/event.data}}\n",
    "<p>{{event.data.description}}</p><pre>{{{event.data.description}}}</pre>",
];

/// Hand-picked edge cases.
const EDGE: &[&str] = &[
    "{{constructor}}|{{#event.tags}}{{constructor}}{{/event.tags}}|{{#event.type}}{{constructor}}{{/event.type}}|{{event.tags.constructor}}",
    "{{event.tags.toString}}|{{#event.tags}}{{toString}};{{/event.tags}}|{{#event.data.nums}}{{toString}};{{/event.data.nums}}|{{toString}}",
    "{{#event.createdAt}}{{getTime}} {{valueOf}} {{getTimezoneOffset}} {{getYear}} {{toDateString}} | {{toTimeString}} | {{toGMTString}} | {{toString}} | {{getUTCFullYear}}{{/event.createdAt}}",
    "[{{event.createdAt.getTime}}]",
    "[{{event.createdAt.toISOString}}]",
    "{{#event.tags}}[{{event.createdAt.toISOString}}]{{/event.tags}}",
    "{{#event.type}}[{{event.createdAt.toString}}]{{/event.type}}",
    "{{#event.data.nums}}[{{event.createdAt.toUTCString}}]{{/event.data.nums}}",
    "{{#event.data}}[{{event.createdAt.getYear}}]{{/event.data}}",
    "{{#event.data.list}}[{{event.createdAt.toDateString}}]{{/event.data.list}}",
    "{{hasOwnProperty}}|{{valueOf}}|{{isPrototypeOf}}|{{propertyIsEnumerable}}|{{event.hasOwnProperty}}|{{event.valueOf}}",
    "{{#event}}{{#hasOwnProperty}}yes{{/hasOwnProperty}}{{^hasOwnProperty}}no{{/hasOwnProperty}}|{{type}}{{/event}}",
    "{{#event.data.nums}}{{#valueOf}}<{{.}}>{{/valueOf}}{{/event.data.nums}}",
    "{{#event.data}}{{hasOwnProperty}}|{{name}}{{/event.data}}",
    "{{#event.data}}{{__proto__.x}}|{{name}}{{/event.data}}",
    "{{#event.preData}}{{#__proto__}}{{x}}{{/__proto__}}|{{name}}{{/event.preData}}",
    "{{#event.preData}}{{hasOwnProperty}}|{{name}}{{/event.preData}}",
    "{{#event.preData}}{{#hasOwnProperty}}{{hasOwnProperty}}|{{name}}{{/hasOwnProperty}}{{/event.preData}}",
    "{{event.data}}|{{{event.data}}}|{{event.tags}}|{{event.preData}}|{{event}}",
    "{{#event.data.objs}}[{{name}}:{{value}}:{{value.x}}:{{value.x.1.y}}]{{/event.data.objs}}",
    "{{#event.data.list}}({{#.}}{{.}};{{/.}}){{/event.data.list}}",
    "{{#event.data.list}}({{length}}|{{0}}|{{1.1}}){{/event.data.list}}",
    "{{#event.data.mixed}}[{{.}}|{{k}}|{{#.}}t{{/.}}{{^.}}f{{/.}}]{{/event.data.mixed}}",
    "{{#event.data.nulls}}[{{.}}]{{/event.data.nulls}}",
    "{{#event.data.nulls}}[{{x}}]{{/event.data.nulls}}",
    "{{#event.data.mixed}}[{{x.y}}]{{/event.data.mixed}}",
    "{{#event.data.list}}[{{x}}]{{/event.data.list}}",
    "{{event.data.big}} {{event.data.bigger}} {{event.data.small}} {{event.data.smallish}} {{event.data.tiny}} {{event.data.neg}} {{event.data.negzero}} {{event.data.max}} {{event.data.inf}} {{event.data.ninf}} {{event.data.frac}} {{event.data.third}} {{event.data.int53}} {{event.data.nums}} {{event.data.exp}}",
    "{{#event.data.negzero}}t{{/event.data.negzero}}{{^event.data.negzero}}f{{/event.data.negzero}}{{#event.data.inf}}[{{.}}]{{/event.data.inf}}{{#event.data.zero}}z{{/event.data.zero}}",
    "{{event.preData.10}} {{event.preData.9}} {{event.preData.01}} {{event.preData.4294967295}} {{event.preData}}",
    "[{{event.data.emoji.0}}] [{{event.data.name.0}}] [{{event.data.emoji.length}}] [{{event.createdBy.length}}] [{{event.data.list.2.length}}]",
    "{{event.type.length}} {{event.type.0}} {{event.type.1}} {{event.type.99}} {{event.type.01}} {{event.tags.length}} {{event.tags.0.value}} {{event.tags.1.value}} {{eventJson.length}} {{eventMarkdown.length}}",
    "{{#event.type.length}}[{{.}}]{{/event.type.length}}{{#event.type}}({{length}}|{{.}}|{{0}}){{/event.type}}",
    "{{.}}|{{#event.type}}{{.}}{{/event.type}}|{{#event.id}}{{.}}{{/event.id}}|{{#event}}{{id}}{{/event}}",
    "{{a..b}}|{{event..type}}|{{event.type.}}|{{.event}}|{{}}|{{ }}|{{..}}|{{event.}}|{{é}}",
    "a\n {{!c}} \nb\n\t{{#event}}\t\nx\n  {{/event}}\n{{> partial}}\n  {{>p}}  \n[{{>p}}]\n",
    "  {{#event.tags}}\r\n  - {{value}}\r\n  {{/event.tags}}\r\n{{^event.tags}}\r\nnone\r\n{{/event.tags}}\r\n",
    "\u{a0}{{#event}}\u{feff}\nx{{/event}}\n\u{85}{{#event}}\ny{{/event}}\n\u{2028}{{^missing}}\u{2029}\nz\n{{/missing}}",
    "{{=<% %>=}}<%event.type%>{{event.type}}<%={{ }}=%>{{event.type}}",
    "{{=[[ ]]=}}[[#event.tags]][[value]][[/event.tags]][[={{ }}=]]|{{=| |=}}|{event.type}||&event.createdBy|",
    "{{= [[ ]] extra =}}[[event.id]]",
    "{{=$ $=}}$event.type$ ${eventMarkdown}$ {{=( )=}}",
    "{{=.* +?=}}.*event.type+? .*{event.id}+?",
    "{{=<% %>=}}\n<%#event.tags%>\n<%value%>\n<%/event.tags%>\n",
    "{{==}}",
    "{{= a =}}x",
    "{{=<% %>=}}<%x",
    "😀é{{event.type",
    "😀{{/x}}",
    "😀{{#a}}{{#b}}{{/a}}",
    "{{#a}}😀{{#b}}{{/b}}",
    "{{{event.type}}",
    "{{{event.type}}}}",
    "{{{ event.type }}}|{{& event.type }}|{{&event.type}}|{{ event.type }}",
    "{{#event.tags}}{{/event.tags }}{{# event.tags }}x{{/ event.tags}}",
    "{{#event.tags}}{{/event.type}}",
    "}}{{!x}}{{=<% %>=}}<%%><%={{ }}=%>}}",
    "{{!unclosed comment",
    "{{! multi\nline\ncomment }}\n{{event.type}}",
    "{{#event.data.emptyList}}x{{/event.data.emptyList}}{{^event.data.emptyList}}empty{{/event.data.emptyList}}{{#event.data.empty}}obj{{/event.data.empty}}{{^event.data.empty}}noobj{{/event.data.empty}}{{#event.data.emptyStr}}s{{/event.data.emptyStr}}{{^event.data.emptyStr}}nos{{/event.data.emptyStr}}",
    "{{#event.data.deep}}{{a.b.c.d}}|{{#a}}{{#b}}{{c.d}}|{{#c}}{{d}}|{{event.type}}{{/c}}{{/b}}{{/a}}{{/event.data.deep}}",
    "{{#event.data.constraints}}{{contextName}}:{{#values}}{{.}}{{/values}}{{^values}}-{{/values}}{{/event.data.constraints}}",
    "{{event.data.ctl}}|{{{event.data.ctl}}}|{{event.data.nul}}|{{event.data.sep}}|{{event.data.list}}",
    "{{#event.data}}{{toString}}{{/event.data}}",
    "{{#event.tags}}{{.}}{{/event.tags}}",
    "{{#event.tags}}{{valueOf}}|{{/event.tags}}",
    "{{event.data.length}}|{{event.data.0}}|{{event.data.__proto__.x}}",
    "{{=<%\u{a0}%>=}}<%event.type%>|{{=<%\u{2028}\u{3000}%>=}}<%event.id%>",
    "{{=<% %> =}}<%event.type%>",
    "{{= <% %>=}}<%event.type%>",
    "{{=<%%>=}}",
    "{{=  =}}",
    "{{=a b=}}abc a event.type b",
    "{{=[ [[=}}[event.type[[ [[event.id[[",
    "{{=<% %>=}}<%={{{ }}}=%>{{{event.type}}}",
    "{{#}}x{{/}}|{{^}}y{{/}}|{{&}}|{{{}}}|{{!}}|{{>}}|{{ # event }}{{/event}}",
    "{{# #a}}{{/#a}}",
    "{{\u{a0}event.type\u{a0}}}|{{\u{85}event.type}}|{{\u{feff}event.id}}",
    "x\n  {{#event}}  ",
    "{{!c}}\nabc\n  {{#event}}{{/event}}  \n  {{=<% %>=}}  \n<%event.type%>\n  <%! c %>\r\n\r  <%#event%>\r\n",
    "  {{#event.tags}}  {{value}}  {{/event.tags}}  \n",
    "\t{{^event.data}}\n\t{{/event.data}}\n{{#event.data}}\n{{#event.data}}\n{{name}}\n{{/event.data}}\n{{/event.data}}",
    "{{#event.createdAt}}{{getYear}}|{{getUTCDay}}|{{getUTCHours}}|{{getUTCMilliseconds}}{{/event.createdAt}}",
    "{{#event.id}}{{toFixed}}|{{.}}|{{length}}{{/event.id}}",
    "{{#event.tags}}{{#event.createdAt}}{{value}}:{{getTime}}{{/event.createdAt}}{{/event.tags}}",
    "{{#event.createdAt}}{{#event.tags}}{{value}}:{{getTime}}{{/event.tags}}{{/event.createdAt}}",
    "{{#event.createdAt}}{{#event.data.nums}}{{toISOString}};{{/event.data.nums}}{{/event.createdAt}}",
];

/// Names that resolve from the root view.
const ABS_NAMES: &[&str] = &[
    "event.type",
    "event.id",
    "event.createdBy",
    "event.createdAt",
    "event.createdByUserId",
    "event.data",
    "event.data.name",
    "event.data.description",
    "event.data.type",
    "event.data.project",
    "event.data.stale",
    "event.data.createdAt",
    "event.data.enabled",
    "event.data.parameters.rollout",
    "event.data.parameters",
    "event.data.constraints",
    "event.data.variants",
    "event.data.title",
    "event.data.list",
    "event.data.nums",
    "event.data.mixed",
    "event.data.big",
    "event.data.negzero",
    "event.data.emoji.0",
    "event.preData",
    "event.preData.description",
    "event.preData.parameters.rollout",
    "event.tags",
    "event.tags.0",
    "event.tags.0.value",
    "event.tags.0.type",
    "event.tags.1.value",
    "event.tags.length",
    "event.featureName",
    "event.project",
    "event.environment",
    "event.groupType",
    "event.groupId",
    "event",
    "eventJson",
    "eventMarkdown",
    "eventMarkdown.length",
    "event.type.length",
    "event.type.0",
    "event.featureName.length",
    "missing",
    "event.missing",
    "event.missing.deep",
    "event.data.name.length",
    ".",
    "toString",
    "hasOwnProperty",
    "valueOf",
];

/// Names meant to resolve in section contexts (and to fall through otherwise). None of them
/// is a prototype member of arrays, strings, numbers or dates that is not modelled.
const REL_NAMES: &[&str] = &[
    ".",
    ".",
    "value",
    "type",
    "name",
    "length",
    "0",
    "1",
    "id",
    "description",
    "rollout",
    "stickiness",
    "groupId",
    "parameters.rollout",
    "contextName",
    "operator",
    "weight",
    "k",
    "x",
    "missing",
    "name.length",
    "value.0",
    "stale",
    "enabled",
    "a.b.c.d",
    "toString",
    "valueOf",
    "getTime",
    "getFullYear",
    "toISOString",
    "getDay",
    "event.type",
    "eventMarkdown",
];

/// Names for sections, of every kind of value across the events.
const SECTION_NAMES: &[&str] = &[
    "event.tags",
    "event.tags",
    "event.data",
    "event.data",
    "event.preData",
    "event.data.constraints",
    "event.data.variants",
    "event.data.parameters",
    "event.data.stale",
    "event.data.enabled",
    "event.data.list",
    "event.data.objs",
    "event.data.mixed",
    "event.data.nums",
    "event.data.nulls",
    "event.data.title",
    "event.id",
    "event.createdByUserId",
    "event.type",
    "event.environment",
    "event.groupId",
    "event.createdAt",
    "eventMarkdown",
    "event.tags.length",
    "event.tags.0",
    "event",
    "missing",
    "event.missing",
    ".",
    "value",
    "name",
    "0",
];

const TEXTS: &[&str] = &[
    "",
    " ",
    "x",
    "\n",
    "\r\n",
    "  \n",
    ", ",
    "\"",
    "{\"k\": \"",
    "\", ",
    "}",
    "<b>",
    "&amp;",
    "é😀",
    "\t",
    " \r\n  ",
    "{",
    "}",
    "=",
    "/",
];

const DELIMS: &[(&str, &str)] = &[
    ("<%", "%>"),
    ("[[", "]]"),
    ("|", "|"),
    ("((", "))"),
    ("<<", ">>"),
    ("$", "$"),
    ("{%", "%}"),
    (".*", "+?"),
    ("{{", "}}"),
];

struct Gen<'r> {
    rng: &'r mut Rng,
    open: String,
    close: String,
}

impl Gen<'_> {
    fn ws(&mut self) -> &'static str {
        match self.rng.below(10) {
            0 => " ",
            1 => "  ",
            2 => "\t",
            _ => "",
        }
    }

    fn tag(&mut self, sigil: &str, name: &str) -> String {
        let (a, b) = (self.ws(), self.ws());
        format!("{}{sigil}{a}{name}{b}{}", self.open, self.close)
    }

    fn var(&mut self, name: &str) -> String {
        match self.rng.below(6) {
            0 => {
                let (a, b) = (self.ws(), self.ws());
                format!("{}{{{a}{name}{b}}}{}", self.open, self.close)
            }
            1 => self.tag("&", name),
            _ => self.tag("", name),
        }
    }

    fn name(&mut self, depth: usize) -> &'static str {
        if depth > 0 && self.rng.chance(60) {
            self.rng.pick(REL_NAMES)
        } else {
            self.rng.pick(ABS_NAMES)
        }
    }

    /// A standalone-ish line break around a block tag.
    fn line(&mut self) -> &'static str {
        match self.rng.below(8) {
            0 => "\n",
            1 => "\r\n",
            2 => "  \n",
            3 => "\n  ",
            _ => "",
        }
    }

    fn body(&mut self, depth: usize, max_items: usize) -> String {
        let mut out = String::new();
        let n = 1 + self.rng.below(max_items);
        for _ in 0..n {
            let piece = match self.rng.below(20) {
                0..=5 => {
                    let name = self.name(depth);
                    self.var(name)
                }
                6..=8 => self.rng.pick(TEXTS).to_string(),
                9..=11 if depth < 3 => self.section(depth, false),
                12 if depth < 3 => self.section(depth, true),
                13 => {
                    let text = match self.rng.below(3) {
                        0 => " a comment ",
                        1 => "multi\nline",
                        _ => "",
                    };
                    let l = self.line();
                    format!("{}{}!{text}{}{}", l, self.open, self.close, l)
                }
                14 => {
                    let l = self.line();
                    let p = self.tag(">", "partial");
                    format!("{l}{p}{l}")
                }
                15 if self.rng.chance(40) => {
                    let (o, c) = DELIMS[self.rng.below(DELIMS.len())];
                    let l = self.line();
                    let t = format!("{}={o} {c}={}", self.open, self.close);
                    self.open = o.to_string();
                    self.close = c.to_string();
                    format!("{l}{t}{l}")
                }
                _ => {
                    let name = self.name(depth);
                    self.var(name)
                }
            };
            out.push_str(&piece);
        }
        out
    }

    fn section(&mut self, depth: usize, inverted: bool) -> String {
        let name = if depth > 0 && self.rng.chance(25) {
            self.rng.pick(REL_NAMES)
        } else {
            self.rng.pick(SECTION_NAMES)
        };
        let sigil = if inverted { "^" } else { "#" };
        let l1 = self.line();
        let open_tag = self.tag(sigil, name);
        let l2 = self.line();
        let body = self.body(depth + 1, 4);
        let l3 = self.line();
        // The body may have changed the delimiters; close with the current ones.
        let close_tag = self.tag("/", name);
        let l4 = self.line();
        format!("{l1}{open_tag}{l2}{body}{l3}{close_tag}{l4}")
    }
}

/// Random structured templates: every tag kind, nested, in JSON-ish bodies.
fn generated(rng: &mut Rng, n: usize) -> Vec<String> {
    (0..n)
        .map(|_| {
            let mut g = Gen {
                rng,
                open: "{{".into(),
                close: "}}".into(),
            };
            let body = g.body(0, 8);
            match g.rng.below(4) {
                0 => format!("{{\"text\": \"{body}\"}}"),
                1 => format!("{{\n  \"payload\": {body}\n}}\n"),
                _ => body,
            }
        })
        .collect()
}

/// Each template cut at a random character: unclosed tags and sections.
fn truncated(rng: &mut Rng, from: &[String]) -> Vec<String> {
    from.iter()
        .filter_map(|t| {
            let cuts: Vec<usize> = t.char_indices().map(|(i, _)| i).skip(1).collect();
            if cuts.is_empty() {
                return None;
            }
            let at = cuts[rng.below(cuts.len())];
            Some(t[..at].to_string())
        })
        .collect()
}

/// Other corruptions: a stray or mismatched closing tag, a dropped closing delimiter.
fn corrupted(rng: &mut Rng, from: &[String]) -> Vec<String> {
    from.iter()
        .map(|t| {
            let positions: Vec<usize> = t.char_indices().map(|(i, _)| i).chain([t.len()]).collect();
            let at = positions[rng.below(positions.len())];
            let (a, b) = t.split_at(at);
            match rng.below(5) {
                0 => format!("{a}{{{{/event.tags}}}}{b}"),
                1 => format!("{a}{{{{#event.tags}}}}{b}"),
                2 => format!("{a}{{{{^event.type}}}}😀{b}"),
                3 => t.replacen("}}", "}", 1),
                _ => t.replacen("{{/", "{{/x", 1),
            }
        })
        .collect()
}

/// Random junk over Mustache's sigils and a few names.
fn junk(rng: &mut Rng, n: usize) -> Vec<String> {
    const ATOMS: &[&str] = &[
        "{{",
        "}}",
        "{{{",
        "}}}",
        "{",
        "}",
        "#",
        "^",
        "/",
        "!",
        "=",
        "&",
        ">",
        " ",
        "\n",
        "\r\n",
        "\t",
        ".",
        "a",
        "b",
        "é",
        "😀",
        "<%",
        "%>",
        "event",
        "type",
        "tags",
        "value",
        "{{=<% %>=}}",
        "{{=| |=}}",
        "{{#a}}",
        "{{/a}}",
        "{{#event.tags}}",
        "{{/event.tags}}",
        "{{.}}",
        "{{=",
        "=}}",
        "<%=",
        "=%>",
        "\u{a0}",
        "\u{2028}",
        "{{^",
        "{{/",
        "{{&",
        "{{>",
        "{{!",
        "event.type",
        "event.tags.0",
        "|",
    ];
    (0..n)
        .map(|_| {
            let len = 1 + rng.below(24);
            (0..len).map(|_| rng.pick(ATOMS)).collect::<String>()
        })
        .collect()
}

/// The corpus. `UW_DIFF_SEED=<u64>` and `UW_DIFF_SCALE=<n>` (n times more random templates)
/// explore beyond it when hunting for differences; the suite runs the defaults.
fn templates() -> Vec<String> {
    let env = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<u64>().ok());
    let seed = env("UW_DIFF_SEED").unwrap_or(0x5EED_CAFE_F00D_0042).max(1);
    let scale = env("UW_DIFF_SCALE").unwrap_or(1).clamp(1, 1000) as usize;
    let mut rng = Rng(seed);
    let mut all: Vec<String> = REALISTIC
        .iter()
        .chain(EDGE)
        .map(|t| t.to_string())
        .collect();
    let gen_ = generated(&mut rng, 160 * scale);
    let realistic: Vec<String> = REALISTIC.iter().map(|t| t.to_string()).collect();
    all.extend(truncated(&mut rng, &realistic));
    all.extend(truncated(&mut rng, &gen_[..40 * scale]));
    all.extend(corrupted(&mut rng, &gen_[40 * scale..80 * scale]));
    all.extend(gen_);
    all.extend(junk(&mut rng, 80 * scale));
    all
}

// ---------------------------------------------------------------------------------------------
// Running mustache.js
// ---------------------------------------------------------------------------------------------

/// The view as JSON for `render.js`: dates and non-JSON numbers marked (see module docs).
fn transport(v: &Value) -> String {
    js::stringify(&marked(v))
}

/// `v` with what JSON cannot carry replaced by its marker object.
fn marked(v: &Value) -> Value {
    let marker =
        |key: &str, text: String| Value::Object(vec![(key.to_string(), Value::String(text))]);
    match v {
        Value::Number(n) if !n.is_finite() || (*n == 0.0 && n.is_sign_negative()) => {
            let text = if *n == 0.0 {
                "-0".to_string()
            } else {
                js::number_to_string(*n)
            };
            marker("$num", text)
        }
        Value::Date(ms) => marker(
            "$date",
            match js::time_clip(*ms) {
                Some(_) => js::date_iso(*ms),
                None => "invalid".to_string(),
            },
        ),
        Value::Array(items) => Value::Array(items.iter().map(marked).collect()),
        Value::Object(entries) => Value::Object(
            entries
                .iter()
                .map(|(k, item)| (k.clone(), marked(item)))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn setup_hint(repo: &Path) -> String {
    format!(
        "the mustache.js differential test needs Node.js and mustache 4.2.0: run \
         `npm ci --prefix tests/mustache-diff` in {} (CI does), and set UW_NODE if `node` is \
         not on PATH",
        repo.display()
    )
}

/// Runs `render.js` over `input` (a JSON array of cases); returns its parsed output.
fn run_mustache_js(input: &str) -> Vec<Value> {
    let manifest =
        std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").into());
    let repo = PathBuf::from(manifest);
    let dir = repo.join("tests/mustache-diff");
    let hint = setup_hint(&repo);
    let pkg = dir.join("node_modules/mustache/package.json");
    let pkg_text = std::fs::read_to_string(&pkg)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}\n{hint}", pkg.display()));
    let version = js::parse_json(&pkg_text)
        .ok()
        .and_then(|v| match v.get("version") {
            Some(Value::String(s)) => Some(s.clone()),
            _ => None,
        });
    assert_eq!(
        version.as_deref(),
        Some("4.2.0"),
        "{} is not mustache 4.2.0\n{hint}",
        pkg.display()
    );

    let path = std::env::temp_dir().join(format!("mustache-diff-{}.json", std::process::id()));
    std::fs::write(&path, input).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let node = std::env::var("UW_NODE").unwrap_or_else(|_| "node".into());
    let file = std::fs::File::open(&path).unwrap();
    let out = Command::new(&node)
        .arg(dir.join("render.js"))
        .env("TZ", "UTC")
        .stdin(file)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output();
    let _ = std::fs::remove_file(&path);
    let out = out.unwrap_or_else(|e| panic!("cannot run {node:?}: {e}\n{hint}"));
    assert!(
        out.status.success(),
        "{node:?} render.js failed ({}): {}\n{hint}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("render.js printed UTF-8");
    match js::parse_json(&text) {
        Ok(Value::Array(results)) => results,
        other => panic!("render.js printed something else than an array: {other:?}"),
    }
}

#[test]
fn differential_against_mustache_js() {
    let templates = templates();
    let views = views();
    let view_json: Vec<String> = views.iter().map(|(_, v)| transport(v)).collect();

    let mut input = String::from("[");
    let mut cases: Vec<(usize, usize)> = Vec::new();
    for (ti, tpl) in templates.iter().enumerate() {
        for (vi, vj) in view_json.iter().enumerate() {
            if !cases.is_empty() {
                input.push(',');
            }
            input.push_str("{\"tpl\":");
            input.push_str(&js::quote_json_string(tpl));
            input.push_str(",\"view\":");
            input.push_str(vj);
            input.push('}');
            cases.push((ti, vi));
        }
    }
    input.push(']');
    assert!(cases.len() >= 2000, "only {} cases", cases.len());

    let results = run_mustache_js(&input);
    assert_eq!(
        results.len(),
        cases.len(),
        "render.js answered a different count"
    );

    let compiled: Vec<_> = templates.iter().map(|t| Template::compile(t)).collect();
    let mut matched = 0usize;
    let mut js_errors = 0usize;
    let mut diffs: Vec<String> = Vec::new();
    for ((ti, vi), want) in cases.iter().zip(&results) {
        let got = compiled[*ti]
            .as_ref()
            .map_err(|e| e.js_message())
            .and_then(|t| t.render(&views[*vi].1).map_err(|e| e.js_message()));
        let want_r = match (want.get("ok"), want.get("out"), want.get("err")) {
            (Some(Value::Bool(true)), Some(Value::String(o)), _) => Ok(o.clone()),
            (Some(Value::Bool(false)), _, Some(Value::String(e))) => {
                js_errors += 1;
                Err(e.clone())
            }
            _ => panic!("unexpected render.js result {}", js::stringify(want)),
        };
        if got == want_r {
            matched += 1;
        } else {
            let mut d = String::new();
            let _ = write!(
                d,
                "template #{ti} {:?}\n  event:    {}\n  expected: {:?}\n  got:      {:?}",
                templates[*ti], views[*vi].0, want_r, got
            );
            if let (Ok(w), Ok(g)) = (&want_r, &got) {
                let at = w.chars().zip(g.chars()).take_while(|(a, b)| a == b).count();
                let _ = write!(d, "\n  first difference at character {at}");
            }
            diffs.push(d);
        }
    }
    println!(
        "mustache.js differential: {matched}/{} cases match ({} templates × {} events; {js_errors} \
         are errors in mustache.js)",
        cases.len(),
        templates.len(),
        views.len()
    );
    if !diffs.is_empty() {
        let shown: Vec<&String> = diffs.iter().take(10).collect();
        panic!(
            "{} of {} cases differ from mustache.js 4.2.0; first {}:\n{}",
            diffs.len(),
            cases.len(),
            shown.len(),
            shown
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}
