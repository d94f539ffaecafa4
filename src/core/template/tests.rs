//! The engine's tests: mustache.js's conformance corpus (tests/fixtures/mustache), then each
//! rule and quirk on its own.

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
