//! Why the template engine is our own: the `mustache` crate (0.9) renders mustache.js 4.2.0's
//! conformance corpus (tests/fixtures/mustache, what Unleash's templates render with)
//! differently. Wrapped as well as it can be (numbers and the Date of `event.createdAt` given as
//! the strings mustache.js prints), it still differs: it does not escape `/`, backtick and `=`,
//! panics on booleans, arrays and objects in a `{{x}}` tag (so whether it panics depends on an
//! event's data), reads `{{> partial}}` files from disk, and differs on truthiness, number
//! printing, dotted names and standalone lines. This test counts the cases and prints the
//! figure the README cites; it fails if the crate ever stops differing (then it is worth another
//! look).

use serde_json::Value;

fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/tests/fixtures/mustache/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// The view as mustache.js gets it, in the crate's terms: JavaScript prints numbers and the
/// event's Date as strings, so they are given as those strings.
fn view_of(case: &Value, event: &Value) -> Value {
    if let Some(ctx) = case.get("ctx") {
        return ctx.clone();
    }
    let mut event = event.clone();
    // eventJson is JSON.stringify(JSON.stringify(event)): JavaScript's printing, as our engine
    // has it (serde_json prints numbers differently, e.g. 1e21 for JavaScript's 1e+21)
    let text = std::fs::read_to_string(format!(
        "{}/tests/fixtures/mustache/event.json",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let json = crate::core::js::stringify(&crate::core::js::parse_json(&text).unwrap());
    // mustache.js prints the Date with Date.prototype.toString (TZ=UTC)
    event["createdAt"] =
        Value::String("Thu Nov 26 2026 21:40:42 GMT+0000 (Coordinated Universal Time)".into());
    serde_json::json!({
        "event": event,
        "eventJson": crate::core::js::stringify(&crate::core::js::Value::String(json)),
    })
}

#[test]
fn mustache_crate_differs_from_mustache_js() {
    let corpus = fixture("corpus.json");
    let expected = fixture("expected-mustachejs.json");
    let event = fixture("event.json");
    let cases = corpus.as_array().unwrap();
    let mut differ = Vec::new();
    // partials are read relative to the working directory: give it an empty one
    let empty = std::env::temp_dir().join(format!("uw-mustache-{}", std::process::id()));
    std::fs::create_dir_all(&empty).unwrap();
    let previous = std::env::current_dir().unwrap();
    std::env::set_current_dir(&empty).unwrap();
    let quiet = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    for case in cases {
        let id = case["id"].as_str().unwrap();
        let tpl = case["tpl"].as_str().unwrap().to_string();
        let view = view_of(case, &event);
        let got = std::panic::catch_unwind(move || {
            let template = mustache::compile_str(&tpl).map_err(|e| e.to_string())?;
            template.render_to_string(&view).map_err(|e| e.to_string())
        });
        let want = &expected[id];
        let same = match got {
            Ok(Ok(out)) => want["ok"] == true && want["out"] == out.as_str(),
            // both refuse the template
            Ok(Err(_)) => want["ok"] == false,
            Err(_) => false,
        };
        if !same {
            differ.push(id.to_string());
        }
    }
    std::panic::set_hook(quiet);
    std::env::set_current_dir(previous).unwrap();
    let _ = std::fs::remove_dir_all(&empty);
    let line = format!(
        "the mustache crate renders {} of mustache.js's {} corpus cases differently: {}",
        differ.len(),
        cases.len(),
        differ.join(", ")
    );
    println!("{line}");
    if let Ok(dir) = std::env::var("UW_REPORTS") {
        std::fs::write(format!("{dir}/mustache-crate.txt"), format!("{line}\n")).unwrap();
    }
    assert_eq!(cases.len(), 83);
    assert!(!differ.is_empty());
}
