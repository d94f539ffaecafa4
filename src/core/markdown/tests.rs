//! The formatter's tests: Unleash's own test cases and snapshots
//! (tests/fixtures/unleash), then each JavaScript corner on its own.

use super::*;
use crate::core::event_json::template_view;
use crate::core::js::{parse_json, stringify};

const URL: &str = "unleashUrl";

fn json(text: &str) -> Value {
    match parse_json(text) {
        Ok(v) => v,
        Err(e) => panic!("bad test JSON {text}: {e}"),
    }
}

/// An event as the TypeScript tests write it (`createdByUserId: SYSTEM_USER_ID`, the
/// `createdAt` Date as its ISO string). `None` leaves a key out (JavaScript `undefined`).
#[allow(clippy::too_many_arguments)]
fn event(
    id: u32,
    ty: &str,
    created_by: &str,
    created_at: &str,
    data: &str,
    pre_data: &str,
    feature: Option<&str>,
    project: Option<&str>,
    environment: Option<&str>,
) -> Value {
    let mut text = format!(
        r#"{{"id":{id},"type":"{ty}","createdBy":"{created_by}","createdByUserId":-1337,"createdAt":"{created_at}","data":{data},"preData":{pre_data},"tags":[]"#
    );
    for (k, v) in [
        ("featureName", feature),
        ("project", project),
        ("environment", environment),
    ] {
        if let Some(v) = v {
            text.push_str(&format!(r#","{k}":"{v}""#));
        }
    }
    text.push('}');
    json(&text)
}

fn flexible(group: &str, rollout: &str, stickiness: &str, constraints: &str) -> String {
    format!(
        r#"{{"id":"3f4bf713-696c-43a4-8ce7-d6c607108858","name":"flexibleRollout","constraints":{constraints},"parameters":{{"groupId":"{group}","rollout":"{rollout}","stickiness":"{stickiness}"}}}}"#
    )
}

const APP_NAME_IN_XY: &str = r#"[{"values":["x","y"],"inverted":false,"operator":"IN","contextName":"appName","caseInsensitive":false}]"#;

/// A strategy update on flag `new-feature` in `my-other-project`/`production`.
fn strategy_update(data: &str, pre_data: &str) -> Value {
    event(
        920,
        "feature-strategy-update",
        "user@company.com",
        "2022-06-01T10:03:11.549Z",
        data,
        pre_data,
        Some("new-feature"),
        Some("my-other-project"),
        Some("production"),
    )
}

/// A `default` strategy update on flag `aaa` in project `default`.
fn default_update(data_constraints: &str, pre_constraints: &str) -> Value {
    let strategy = |c: &str| {
        format!(
            r#"{{"id":"f2d34aac-52ec-49d2-82d3-08d710e89eaa","name":"default","constraints":{c},"parameters":{{}},"segments":[]}}"#
        )
    };
    event(
        39,
        "feature-strategy-update",
        "admin",
        "2023-02-20T20:23:28.791Z",
        &strategy(data_constraints),
        &strategy(pre_constraints),
        Some("aaa"),
        Some("default"),
        Some("production"),
    )
}

/// A change-request event (id 1) for `new-feature` in `my-other-project`/`production`.
fn change_request(id: u32, ty: &str, data: &str, feature: Option<&str>) -> Value {
    event(
        id,
        ty,
        "user@company.com",
        "2022-06-01T10:03:11.549Z",
        data,
        "{}",
        feature,
        Some("my-other-project"),
        Some("production"),
    )
}

/// The inputs of `feature-event-formatter-md.test.ts`, by test description.
fn snapshot_inputs() -> Vec<(String, Value)> {
    let mut cases: Vec<(String, Value)> = vec![
        (
            "when groupId changed".into(),
            strategy_update(
                &flexible("different-feature", "32", "default", "[]"),
                &flexible("new-feature", "32", "default", "[]"),
            ),
        ),
        (
            "when rollout percentage changed".into(),
            strategy_update(
                &flexible("new-feature", "32", "default", "[]"),
                &flexible("new-feature", "67", "default", "[]"),
            ),
        ),
        (
            "when stickiness changed".into(),
            strategy_update(
                &flexible("new-feature", "67", "random", "[]"),
                &flexible("new-feature", "67", "default", "[]"),
            ),
        ),
        (
            "when constraints and rollout percentage and stickiness changed".into(),
            strategy_update(
                &flexible("new-feature", "32", "random", APP_NAME_IN_XY),
                &flexible("new-feature", "67", "default", "[]"),
            ),
        ),
        (
            "when neither rollout percentage nor stickiness changed".into(),
            strategy_update(
                &flexible("new-feature", "67", "default", "[]"),
                &flexible("new-feature", "67", "default", "[]"),
            ),
        ),
        (
            "when strategy added".into(),
            event(
                919,
                "feature-strategy-add",
                "user@company.com",
                "2022-06-01T10:03:08.290Z",
                &flexible("new-feature", "67", "default", "[]"),
                "null",
                Some("new-feature"),
                Some("my-other-project"),
                Some("production"),
            ),
        ),
        (
            "when strategy removed".into(),
            event(
                918,
                "feature-strategy-remove",
                "user@company.com",
                "2022-06-01T10:03:00.229Z",
                "null",
                r#"{"id":"9591090e-acb0-4088-8958-21faaeb7147d","name":"default","parameters":{},"constraints":[]}"#,
                Some("new-feature"),
                Some("my-other-project"),
                Some("production"),
            ),
        ),
    ];
    let constraint = |value: &str, inverted: bool, op: &str| {
        format!(
            r#"{{{value},"inverted":{inverted},"operator":"{op}","contextName":"appName","caseInsensitive":false}}"#
        )
    };
    // `...[REGEX].map(...)` in the TypeScript: one operator, with `value`.
    {
        let op = "REGEX";
        let data = format!(
            "[{},{}]",
            constraint(r#""value":"[x|y]""#, false, op),
            constraint(r#""value":"x""#, true, op)
        );
        cases.push((
            format!("when default strategy updated with operator {op}"),
            default_update(&data, "[]"),
        ));
    }
    for op in [
        "IN",
        "NOT_IN",
        "STR_CONTAINS",
        "STR_STARTS_WITH",
        "STR_ENDS_WITH",
    ] {
        let data = format!(
            "[{},{}]",
            constraint(r#""values":["x","y"]"#, false, op),
            constraint(r#""values":["x"]"#, true, op)
        );
        cases.push((
            format!("when default strategy updated with operator {op}"),
            default_update(&data, "[]"),
        ));
    }
    for op in [
        "NUM_EQ",
        "NUM_GT",
        "NUM_GTE",
        "NUM_LT",
        "NUM_LTE",
        "DATE_BEFORE",
        "DATE_AFTER",
        "SEMVER_EQ",
        "SEMVER_GT",
        "SEMVER_LT",
        "SEMVER_GTE",
        "SEMVER_LTE",
    ] {
        let pre = format!("[{}]", constraint(r#""value":"4","values":[]"#, false, op));
        cases.push((
            format!("when default strategy updated with numeric constraint {op}"),
            default_update("[]", &pre),
        ));
    }
    let list_strategy = |name: &str, param: &str, value: &str, constraints: &str| {
        format!(
            r#"{{"name":"{name}","constraints":{constraints},"parameters":{{"{param}":"{value}"}}}}"#
        )
    };
    cases.extend([
            (
                "when IPs changed".into(),
                strategy_update(
                    &list_strategy("remoteAddress", "IPs", "127.0.0.1", APP_NAME_IN_XY),
                    &list_strategy("remoteAddress", "IPs", "", "[]"),
                ),
            ),
            (
                "when host names changed".into(),
                strategy_update(
                    &list_strategy(
                        "applicationHostname",
                        "hostNames",
                        "unleash.com",
                        APP_NAME_IN_XY,
                    ),
                    &list_strategy("applicationHostname", "hostNames", "", "[]"),
                ),
            ),
            (
                "when no specific text for strategy exists yet".into(),
                strategy_update(
                    &list_strategy("newStrategy", "IPs", "127.0.0.1", APP_NAME_IN_XY),
                    &list_strategy("newStrategy", "IPs", "", "[]"),
                ),
            ),
            (
                "when change request is scheduled".into(),
                change_request(
                    920,
                    "change-request-scheduled",
                    r#"{"changeRequestId":1,"scheduledDate":"2024-06-01T10:03:11.549Z"}"#,
                    Some("new-feature"),
                ),
            ),
            (
                "when scheduled change request succeeds ".into(),
                change_request(
                    920,
                    "change-request-scheduled-application-success",
                    r#"{"changeRequestId":1}"#,
                    Some("new-feature"),
                ),
            ),
            (
                "when scheduled change request fails ".into(),
                change_request(
                    920,
                    "change-request-scheduled-application-failure",
                    r#"{"changeRequestId":1}"#,
                    Some("new-feature"),
                ),
            ),
            (
                "when a scheduled change request is suspended".into(),
                change_request(
                    921,
                    "change-request-schedule-suspended",
                    r#"{"changeRequestId":1,"reason":"The user who scheduled this change request (user id: 6) has been deleted from this Unleash instance."}"#,
                    None,
                ),
            ),
            (
                "when project archived".into(),
                event(
                    922,
                    "project-archived",
                    "user@company.com",
                    "2024-11-25T10:33:59.459Z",
                    "null",
                    "null",
                    None,
                    Some("my-other-project"),
                    Some("production"),
                ),
            ),
        ]);
    cases
}

/// `feature-event-formatter-md.test.ts.snap` (Unleash 8.1): description, label, text, url.
const SNAPSHOT: &[(&str, &str, &str, &str)] = &[
    (
        "when IPs changed",
        "Flag strategy updated",
        r#"*user@company.com* updated *[new-feature](unleashUrl/projects/my-other-project/features/new-feature)* in project *[my-other-project](unleashUrl/projects/my-other-project)* by updating strategy *remoteAddress* in *production* IPs from empty set of IPs to [127.0.0.1]; constraints from empty set of constraints to [appName is one of (x,y)]"#,
        "unleashUrl/projects/my-other-project/features/new-feature",
    ),
    (
        "when a scheduled change request is suspended",
        "Change request suspended",
        r#"Change request *[#1](unleashUrl/projects/my-other-project/change-requests/1)* in the *production* environment in project *[my-other-project](unleashUrl/projects/my-other-project)* was suspended for the following reason: The user who scheduled this change request (user id: 6) has been deleted from this Unleash instance."#,
        "unleashUrl/projects/my-other-project/change-requests/1",
    ),
    (
        "when change request is scheduled",
        "Change request scheduled",
        r#"*user@company.com* scheduled change request *[#1](unleashUrl/projects/my-other-project/change-requests/1)* for feature flag *[new-feature](unleashUrl/projects/my-other-project/features/new-feature)* in the *production* environment in project *[my-other-project](unleashUrl/projects/my-other-project)* to be applied at 2024-06-01T10:03:11.549Z."#,
        "unleashUrl/projects/my-other-project/change-requests/1",
    ),
    (
        "when constraints and rollout percentage and stickiness changed",
        "Flag strategy updated",
        r#"*user@company.com* updated *[new-feature](unleashUrl/projects/my-other-project/features/new-feature)* in project *[my-other-project](unleashUrl/projects/my-other-project)* by updating strategy *flexibleRollout* in *production* stickiness from default to random; rollout from 67% to 32%; constraints from empty set of constraints to [appName is one of (x,y)]"#,
        "unleashUrl/projects/my-other-project/features/new-feature",
    ),
    (
        "when default strategy updated with numeric constraint DATE_AFTER",
        "Flag strategy updated",
        r#"*admin* updated *[aaa](unleashUrl/projects/default/features/aaa)* in project *[default](unleashUrl/projects/default)* by updating strategy *default* in *production* constraints from [appName is a date after 4] to empty set of constraints"#,
        "unleashUrl/projects/default/features/aaa",
    ),
    (
        "when default strategy updated with numeric constraint DATE_BEFORE",
        "Flag strategy updated",
        r#"*admin* updated *[aaa](unleashUrl/projects/default/features/aaa)* in project *[default](unleashUrl/projects/default)* by updating strategy *default* in *production* constraints from [appName is a date before 4] to empty set of constraints"#,
        "unleashUrl/projects/default/features/aaa",
    ),
    (
        "when default strategy updated with numeric constraint NUM_EQ",
        "Flag strategy updated",
        r#"*admin* updated *[aaa](unleashUrl/projects/default/features/aaa)* in project *[default](unleashUrl/projects/default)* by updating strategy *default* in *production* constraints from [appName is a number equal to 4] to empty set of constraints"#,
        "unleashUrl/projects/default/features/aaa",
    ),
    (
        "when default strategy updated with numeric constraint NUM_GT",
        "Flag strategy updated",
        r#"*admin* updated *[aaa](unleashUrl/projects/default/features/aaa)* in project *[default](unleashUrl/projects/default)* by updating strategy *default* in *production* constraints from [appName is a number greater than 4] to empty set of constraints"#,
        "unleashUrl/projects/default/features/aaa",
    ),
    (
        "when default strategy updated with numeric constraint NUM_GTE",
        "Flag strategy updated",
        r#"*admin* updated *[aaa](unleashUrl/projects/default/features/aaa)* in project *[default](unleashUrl/projects/default)* by updating strategy *default* in *production* constraints from [appName is a number greater than or equal to 4] to empty set of constraints"#,
        "unleashUrl/projects/default/features/aaa",
    ),
    (
        "when default strategy updated with numeric constraint NUM_LT",
        "Flag strategy updated",
        r#"*admin* updated *[aaa](unleashUrl/projects/default/features/aaa)* in project *[default](unleashUrl/projects/default)* by updating strategy *default* in *production* constraints from [appName is a number less than 4] to empty set of constraints"#,
        "unleashUrl/projects/default/features/aaa",
    ),
    (
        "when default strategy updated with numeric constraint NUM_LTE",
        "Flag strategy updated",
        r#"*admin* updated *[aaa](unleashUrl/projects/default/features/aaa)* in project *[default](unleashUrl/projects/default)* by updating strategy *default* in *production* constraints from [appName is a number less than or equal to 4] to empty set of constraints"#,
        "unleashUrl/projects/default/features/aaa",
    ),
    (
        "when default strategy updated with numeric constraint SEMVER_EQ",
        "Flag strategy updated",
        r#"*admin* updated *[aaa](unleashUrl/projects/default/features/aaa)* in project *[default](unleashUrl/projects/default)* by updating strategy *default* in *production* constraints from [appName is a SemVer equal to 4] to empty set of constraints"#,
        "unleashUrl/projects/default/features/aaa",
    ),
    (
        "when default strategy updated with numeric constraint SEMVER_GT",
        "Flag strategy updated",
        r#"*admin* updated *[aaa](unleashUrl/projects/default/features/aaa)* in project *[default](unleashUrl/projects/default)* by updating strategy *default* in *production* constraints from [appName is a SemVer greater than 4] to empty set of constraints"#,
        "unleashUrl/projects/default/features/aaa",
    ),
    (
        "when default strategy updated with numeric constraint SEMVER_GTE",
        "Flag strategy updated",
        r#"*admin* updated *[aaa](unleashUrl/projects/default/features/aaa)* in project *[default](unleashUrl/projects/default)* by updating strategy *default* in *production* constraints from [appName is a SemVer greater than or equal to 4] to empty set of constraints"#,
        "unleashUrl/projects/default/features/aaa",
    ),
    (
        "when default strategy updated with numeric constraint SEMVER_LT",
        "Flag strategy updated",
        r#"*admin* updated *[aaa](unleashUrl/projects/default/features/aaa)* in project *[default](unleashUrl/projects/default)* by updating strategy *default* in *production* constraints from [appName is a SemVer less than 4] to empty set of constraints"#,
        "unleashUrl/projects/default/features/aaa",
    ),
    (
        "when default strategy updated with numeric constraint SEMVER_LTE",
        "Flag strategy updated",
        r#"*admin* updated *[aaa](unleashUrl/projects/default/features/aaa)* in project *[default](unleashUrl/projects/default)* by updating strategy *default* in *production* constraints from [appName is a SemVer less than or equal to 4] to empty set of constraints"#,
        "unleashUrl/projects/default/features/aaa",
    ),
    (
        "when default strategy updated with operator IN",
        "Flag strategy updated",
        r#"*admin* updated *[aaa](unleashUrl/projects/default/features/aaa)* in project *[default](unleashUrl/projects/default)* by updating strategy *default* in *production* constraints from empty set of constraints to [appName is one of (x,y), appName not is one of (x)]"#,
        "unleashUrl/projects/default/features/aaa",
    ),
    (
        "when default strategy updated with operator NOT_IN",
        "Flag strategy updated",
        r#"*admin* updated *[aaa](unleashUrl/projects/default/features/aaa)* in project *[default](unleashUrl/projects/default)* by updating strategy *default* in *production* constraints from empty set of constraints to [appName is not one of (x,y), appName not is not one of (x)]"#,
        "unleashUrl/projects/default/features/aaa",
    ),
    (
        "when default strategy updated with operator REGEX",
        "Flag strategy updated",
        r#"*admin* updated *[aaa](unleashUrl/projects/default/features/aaa)* in project *[default](unleashUrl/projects/default)* by updating strategy *default* in *production* constraints from empty set of constraints to [appName matches regex [x|y], appName not matches regex x]"#,
        "unleashUrl/projects/default/features/aaa",
    ),
    (
        "when default strategy updated with operator STR_CONTAINS",
        "Flag strategy updated",
        r#"*admin* updated *[aaa](unleashUrl/projects/default/features/aaa)* in project *[default](unleashUrl/projects/default)* by updating strategy *default* in *production* constraints from empty set of constraints to [appName is a string that contains (x,y), appName not is a string that contains (x)]"#,
        "unleashUrl/projects/default/features/aaa",
    ),
    (
        "when default strategy updated with operator STR_ENDS_WITH",
        "Flag strategy updated",
        r#"*admin* updated *[aaa](unleashUrl/projects/default/features/aaa)* in project *[default](unleashUrl/projects/default)* by updating strategy *default* in *production* constraints from empty set of constraints to [appName is a string that ends with (x,y), appName not is a string that ends with (x)]"#,
        "unleashUrl/projects/default/features/aaa",
    ),
    (
        "when default strategy updated with operator STR_STARTS_WITH",
        "Flag strategy updated",
        r#"*admin* updated *[aaa](unleashUrl/projects/default/features/aaa)* in project *[default](unleashUrl/projects/default)* by updating strategy *default* in *production* constraints from empty set of constraints to [appName is a string that starts with (x,y), appName not is a string that starts with (x)]"#,
        "unleashUrl/projects/default/features/aaa",
    ),
    (
        "when groupId changed",
        "Flag strategy updated",
        r#"*user@company.com* updated *[new-feature](unleashUrl/projects/my-other-project/features/new-feature)* in project *[my-other-project](unleashUrl/projects/my-other-project)* by updating strategy *flexibleRollout* in *production* groupId from new-feature to different-feature"#,
        "unleashUrl/projects/my-other-project/features/new-feature",
    ),
    (
        "when host names changed",
        "Flag strategy updated",
        r#"*user@company.com* updated *[new-feature](unleashUrl/projects/my-other-project/features/new-feature)* in project *[my-other-project](unleashUrl/projects/my-other-project)* by updating strategy *applicationHostname* in *production* hostNames from empty set of hostNames to [unleash.com]; constraints from empty set of constraints to [appName is one of (x,y)]"#,
        "unleashUrl/projects/my-other-project/features/new-feature",
    ),
    (
        "when neither rollout percentage nor stickiness changed",
        "Flag strategy updated",
        r#"*user@company.com* updated *[new-feature](unleashUrl/projects/my-other-project/features/new-feature)* in project *[my-other-project](unleashUrl/projects/my-other-project)* by updating strategy *flexibleRollout* in *production*"#,
        "unleashUrl/projects/my-other-project/features/new-feature",
    ),
    (
        "when no specific text for strategy exists yet",
        "Flag strategy updated",
        r#"*user@company.com* updated *[new-feature](unleashUrl/projects/my-other-project/features/new-feature)* in project *[my-other-project](unleashUrl/projects/my-other-project)* by updating strategy *newStrategy* in *production*"#,
        "unleashUrl/projects/my-other-project/features/new-feature",
    ),
    (
        "when project archived",
        "Project archived",
        r#"*user@company.com* archived project *my-other-project*"#,
        "unleashUrl/projects-archive",
    ),
    (
        "when rollout percentage changed",
        "Flag strategy updated",
        r#"*user@company.com* updated *[new-feature](unleashUrl/projects/my-other-project/features/new-feature)* in project *[my-other-project](unleashUrl/projects/my-other-project)* by updating strategy *flexibleRollout* in *production* rollout from 67% to 32%"#,
        "unleashUrl/projects/my-other-project/features/new-feature",
    ),
    (
        "when scheduled change request fails ",
        "Scheduled change request failed",
        r#"*Failed* to apply the scheduled change request *[#1](unleashUrl/projects/my-other-project/change-requests/1)* for feature flag *[new-feature](unleashUrl/projects/my-other-project/features/new-feature)* in the *production* environment in project *[my-other-project](unleashUrl/projects/my-other-project)* by *user@company.com*."#,
        "unleashUrl/projects/my-other-project/change-requests/1",
    ),
    (
        "when scheduled change request succeeds ",
        "Scheduled change request applied successfully",
        r#"*Successfully* applied the scheduled change request *[#1](unleashUrl/projects/my-other-project/change-requests/1)* for feature flag *[new-feature](unleashUrl/projects/my-other-project/features/new-feature)* in the *production* environment in project *[my-other-project](unleashUrl/projects/my-other-project)* by *user@company.com*."#,
        "unleashUrl/projects/my-other-project/change-requests/1",
    ),
    (
        "when stickiness changed",
        "Flag strategy updated",
        r#"*user@company.com* updated *[new-feature](unleashUrl/projects/my-other-project/features/new-feature)* in project *[my-other-project](unleashUrl/projects/my-other-project)* by updating strategy *flexibleRollout* in *production* stickiness from default to random"#,
        "unleashUrl/projects/my-other-project/features/new-feature",
    ),
    (
        "when strategy added",
        "Flag strategy added",
        r#"*user@company.com* added strategy *flexibleRollout* to *[new-feature](unleashUrl/projects/my-other-project/features/new-feature)* for the *production* environment in project *[my-other-project](unleashUrl/projects/my-other-project)*"#,
        "unleashUrl/projects/my-other-project/features/new-feature",
    ),
    (
        "when strategy removed",
        "Flag strategy removed",
        r#"*user@company.com* removed strategy *default* from *[new-feature](unleashUrl/projects/my-other-project/features/new-feature)* for the *production* environment in project *[my-other-project](unleashUrl/projects/my-other-project)*"#,
        "unleashUrl/projects/my-other-project/features/new-feature",
    ),
];

#[test]
fn snapshot_cases_match_unleash() {
    let inputs = snapshot_inputs();
    assert_eq!(inputs.len(), 33);
    assert_eq!(SNAPSHOT.len(), 33);
    let mut matched = 0;
    for (desc, label, text, url) in SNAPSHOT {
        let Some((_, ev)) = inputs.iter().find(|(d, _)| d == desc) else {
            panic!("no input for {desc:?}");
        };
        let got = format_event(ev, URL).unwrap();
        assert_eq!(got.text, *text, "text of {desc:?}");
        assert_eq!(got.label, *label, "label of {desc:?}");
        assert_eq!(got.url.as_deref(), Some(*url), "url of {desc:?}");
        assert_eq!(event_markdown(ev, URL), *text);
        matched += 1;
    }
    assert_eq!(matched, 33);
}

fn md(ev: &Value) -> String {
    try_event_markdown(ev, "http://localhost:4242").unwrap()
}

fn err(ev: &Value) -> String {
    match try_event_markdown(ev, "http://localhost:4242") {
        Ok(text) => panic!("expected Unleash to throw, got {text:?}"),
        Err(e) => e.message,
    }
}

/// `webhook.test.ts` "should allow for eventJson and eventMarkdown in bodyTemplate": the
/// whole 8.0.3+ pipeline (render with the placeholder, then substitute), against
/// `__snapshots__/webhook.test.ts.snap`.
#[test]
fn webhook_snapshot_body() {
    let ev = json(
        r#"{"id":1,"createdAt":"2024-07-24T00:00:00.000Z","createdByUserId":-1337,"type":"feature-created","createdBy":"some@user.com","featureName":"some-toggle","project":"default","data":{"name":"some-toggle","enabled":false,"strategies":[{"name":"default"}]}}"#,
    );
    let markdown = try_event_markdown(&ev, "http://some-url.com").unwrap();
    let view = template_view(ev.clone(), &stringify(&ev), PLACEHOLDER);
    let template = Template::compile(
        "{\n  \"json\": {{{eventJson}}},\n  \"markdown\": \"{{eventMarkdown}}\"\n}",
    )
    .unwrap();
    let body = substitute_markdown(&template.render(&view).unwrap(), &markdown);
    assert_eq!(
        body,
        r#"{
  "json": "{\"id\":1,\"createdAt\":\"2024-07-24T00:00:00.000Z\",\"createdByUserId\":-1337,\"type\":\"feature-created\",\"createdBy\":\"some@user.com\",\"featureName\":\"some-toggle\",\"project\":\"default\",\"data\":{\"name\":\"some-toggle\",\"enabled\":false,\"strategies\":[{\"name\":\"default\"}]}}",
  "markdown": "*some@user.com* created *[some-toggle](http://some-url.com/projects/default/features/some-toggle)* in project *[default](http://some-url.com/projects/default)*"
}"#
    );
}

/// The texts Unleash's Teams and Datadog snapshots hold (same formatter, same defaults),
/// where `project` is `undefined`: `project = ''` gives `projects//`, and no project link.
#[test]
fn teams_and_datadog_snapshots() {
    let url = "http://some-url.com";
    let base =
        r#""id":1,"createdByUserId":-1337,"createdBy":"some@user.com","featureName":"some-toggle""#;
    let created = json(&format!(
        r#"{{{base},"type":"feature-created","data":{{"name":"some-toggle","enabled":false,"strategies":[{{"name":"default"}}]}}}}"#
    ));
    let archived = json(&format!(
        r#"{{{base},"type":"feature-archived","data":{{"name":"some-toggle"}}}}"#
    ));
    let archived_in_project = json(&format!(
        r#"{{{base},"type":"feature-archived","project":"some-project","data":{{"name":"some-toggle"}}}}"#
    ));
    let disabled = json(&format!(
        r#"{{{base},"type":"feature-environment-disabled","environment":"development","project":"default","data":{{"name":"some-toggle"}}}}"#
    ));
    let cases = [
        (
            &created,
            "*some@user.com* created *[some-toggle](http://some-url.com/projects//features/some-toggle)* in project **",
            "http://some-url.com/projects//features/some-toggle",
        ),
        (
            &archived,
            "*some@user.com* archived *some-toggle* in project **",
            "http://some-url.com/projects//archive",
        ),
        (
            &archived_in_project,
            "*some@user.com* archived *some-toggle* in project *[some-project](http://some-url.com/projects/some-project)*",
            "http://some-url.com/projects/some-project/archive",
        ),
        (
            &disabled,
            "*some@user.com* disabled *[some-toggle](http://some-url.com/projects/default/features/some-toggle)* for the *development* environment in project *[default](http://some-url.com/projects/default)*",
            "http://some-url.com/projects/default/features/some-toggle",
        ),
    ];
    for (ev, text, link) in cases {
        let got = format_event(ev, url).unwrap();
        assert_eq!(got.text, text);
        assert_eq!(got.url.as_deref(), Some(link));
    }
}

fn row(id: i64, ty: &str) -> crate::core::event_json::EventRow {
    crate::core::event_json::EventRow {
        id,
        created_at_us: Some(1_795_729_242_045_794),
        event_type: ty.to_string(),
        created_by: "admin".to_string(),
        tags: Some("[]".to_string()),
        project: Some("default".to_string()),
        feature_name: Some("f1".to_string()),
        created_by_user_id: Some(1),
        ..Default::default()
    }
}

/// Events as `event_json::event_value` builds them from `events` rows (absent columns are
/// `null`, not `undefined`), including the example in shared/unleash/README.md that was
/// captured from a live Unleash.
#[test]
fn rows_from_the_events_table() {
    use crate::core::event_json::event_value;
    let mut enabled = row(16, "feature-environment-enabled");
    enabled.environment = Some("development".to_string());
    assert_eq!(
        md(&event_value(&enabled).unwrap()),
        "*admin* enabled *[f1](http://localhost:4242/projects/default/features/f1)* for the *development* environment in project *[default](http://localhost:4242/projects/default)*"
    );

    let mut update = row(23, "feature-strategy-update");
    update.environment = Some("production".to_string());
    update.data = Some(r#"{"id":"s1","name":"flexibleRollout","title":null,"disabled":false,"constraints":[],"parameters":{"groupId":"f1","rollout":"75","stickiness":"default"},"variants":[],"sortOrder":0,"segments":[]}"#.to_string());
    update.pre_data = Some(r#"{"id": "s1", "name": "flexibleRollout", "title": null, "disabled": false, "segments": [], "variants": [], "sortOrder": 0, "parameters": {"groupId": "f1", "rollout": "50", "stickiness": "default"}, "constraints": []}"#.to_string());
    assert_eq!(
        md(&event_value(&update).unwrap()),
        "*admin* updated *[f1](http://localhost:4242/projects/default/features/f1)* in project *[default](http://localhost:4242/projects/default)* by updating strategy *flexibleRollout* in *production* rollout from 50% to 75%"
    );

    // A `null` project is not defaulted to '' (only `undefined` is): Unleash prints "null".
    let mut no_project = row(14, "feature-created");
    no_project.project = None;
    assert_eq!(
        md(&event_value(&no_project).unwrap()),
        "*admin* created *[f1](http://localhost:4242/projects/null/features/f1)* in project **"
    );
    let mut archived = row(37, "feature-archived");
    archived.project = None;
    assert_eq!(
        md(&event_value(&archived).unwrap()),
        "*admin* archived *f1* in project **"
    );
    assert_eq!(
        format_event(&event_value(&archived).unwrap(), "http://x")
            .unwrap()
            .url
            .as_deref(),
        Some("http://x/projects//archive"),
        "the path template prints null as empty"
    );

    let mut tagged = row(21, "feature-tagged");
    tagged.data = Some(r#"{"type":"simple","value":"spike"}"#.to_string());
    assert_eq!(
        md(&event_value(&tagged).unwrap()),
        "*admin* tagged *[f1](http://localhost:4242/projects/default/features/f1)* with *simple:spike* in project *[default](http://localhost:4242/projects/default)*"
    );
}

#[test]
fn event_map_is_complete() {
    assert_eq!(EVENT_MAP.len(), 69);
    for (i, e) in EVENT_MAP.iter().enumerate() {
        assert!(
            EVENT_MAP
                .iter()
                .skip(i + 1)
                .all(|o| o.event_type != e.event_type),
            "{} twice",
            e.event_type
        );
        // Every entry renders, with and without data.
        let ev = json(&format!(
            r#"{{"id":1,"type":"{}","createdBy":"u","createdAt":null,"createdByUserId":1,"data":null,"preData":null,"tags":[],"featureName":null,"project":null,"environment":null}}"#,
            e.event_type
        ));
        let got = format_event(&ev, "U").unwrap();
        assert_eq!(got.label, e.label);
        assert!(got.url.is_some_and(|u| u.starts_with("U/")));
    }
}

#[test]
fn other_event_types() {
    let ev = |ty: &str, extra: &str| {
        json(&format!(
            r#"{{"id":1,"type":"{ty}","createdBy":"alice","createdAt":"2024-01-02T03:04:05.678Z","createdByUserId":1,"data":null,"preData":null,"tags":[],"featureName":"f","project":"p","environment":"dev"{extra}}}"#
        ))
    };
    assert_eq!(
        md(&ev(
            "segment-updated",
            r#","preData":{"name":"beta users"}"#
        )),
        "*alice* updated segment *beta users*"
    );
    assert_eq!(
        md(&ev("change-added", r#","data":{"changeRequestId":7}"#)),
        "*alice* added a change to change request *[#7](http://localhost:4242/projects/p/change-requests/7)* for feature flag *[f](http://localhost:4242/projects/p/features/f)* in the *dev* environment in project *[p](http://localhost:4242/projects/p)*"
    );
    // changeRequestId from preData when data has none; a falsy one gives no link.
    let from_pre = ev(
        "change-request-applied",
        r#","data":{"changeRequestId":0},"preData":{"changeRequestId":"12"}"#,
    );
    let got = format_event(&from_pre, "http://localhost:4242").unwrap();
    assert!(
        got.text
            .contains("*[#12](http://localhost:4242/projects/p/change-requests/12)*")
    );
    // The link path reads data.changeRequestId only.
    assert_eq!(
        got.url.as_deref(),
        Some("http://localhost:4242/projects/p/change-requests/0")
    );
    assert_eq!(
        md(&ev("change-request-created", "")),
        "*alice* created change request "
    );
    assert_eq!(
        md(&ev(
            "release-plan-milestone-started",
            r#","data":{"name":"plan","milestoneName":"m2"}"#
        )),
        "*alice* started milestone *m2* in release plan *plan* for *[f](http://localhost:4242/projects/p/features/f)* for the *dev* environment in project *[p](http://localhost:4242/projects/p)*"
    );
    assert_eq!(
        md(&ev(
            "user-access-request-registered",
            r#","data":{"email":"a@b.c"}"#
        )),
        "*a@b.c* requested access to Unleash"
    );
    assert_eq!(
        md(&ev(
            "feature-strategy-add",
            r#","data":{"name":"default","title":"My title"}"#
        )),
        "*alice* added strategy *My title* to *[f](http://localhost:4242/projects/p/features/f)* for the *dev* environment in project *[p](http://localhost:4242/projects/p)*"
    );
    // With no truthy title or name the last operand, data?.name, is the title: a falsy
    // value other than null/undefined still prints (mustache.js skips only those two).
    assert_eq!(
        md(&ev("feature-strategy-remove", r#","data":{"name":false}"#)),
        "*alice* removed strategy *false* from *[f](http://localhost:4242/projects/p/features/f)* for the *dev* environment in project *[p](http://localhost:4242/projects/p)*"
    );
    let variants = format_event(&ev("feature-environment-variants-updated", ""), "u/").unwrap();
    assert_eq!(
        variants.text,
        "*alice* updated variants for *[f](u//projects/p/features/f)* for the *dev* environment in project *[p](u//projects/p)*",
        "unleash_url is used verbatim, trailing slash and all"
    );
    assert_eq!(
        variants.url.as_deref(),
        Some("u//projects/p/features/f/variants")
    );
    assert_eq!(
        md(&ev(
            "feature-untagged",
            r#","preData":{"type":"simple","value":"old"}"#
        )),
        "*alice* untagged *[f](http://localhost:4242/projects/p/features/f)* with *simple:old* in project *[p](http://localhost:4242/projects/p)*"
    );
    assert_eq!(
        md(&ev(
            "feature-project-change",
            r#","data":{"oldProject":"q"}"#
        )),
        "*alice* moved *[f](http://localhost:4242/projects/p/features/f)* from *q* to *[p](http://localhost:4242/projects/p)*"
    );
    // Numbers and arrays print as JavaScript prints them.
    assert_eq!(
        md(&ev(
            "api-token-created",
            r#","data":{"username":[1.50,null,"x",[2,3]]}"#
        )),
        "*alice* created API token *1.5,,x,2,3*"
    );
    assert_eq!(
        md(&ev("group-created", r#","data":{"name":{"a":1}}"#)),
        "*alice* created group *[object Object]*"
    );
}

#[test]
fn values_are_never_html_escaped() {
    let ev = json(
        r#"{"id":1,"type":"feature-tagged","createdBy":"<b>&\"'/`=","createdAt":null,"createdByUserId":1,"data":{"type":"a&b","value":"<i>"},"preData":null,"tags":[],"featureName":"x<y","project":"p&q","environment":null}"#,
    );
    assert_eq!(
        md(&ev),
        "*<b>&\"'/`=* tagged *[x<y](http://localhost:4242/projects/p&q/features/x<y)* with *a&b:<i>* in project *[p&q](http://localhost:4242/projects/p&q)*"
    );
    assert_eq!(
        format_event(&ev, "u").unwrap().url.as_deref(),
        Some("u/projects/p&q/features/x<y")
    );
}

#[test]
fn unknown_types_use_the_fallback_template() {
    let ev = |ty: &str, by: &str, data: &str| {
        let mut o = vec![
            ("id".to_string(), Value::Number(5.0)),
            ("type".to_string(), Value::String(ty.to_string())),
            ("createdBy".to_string(), Value::String(by.to_string())),
            (
                "createdAt".to_string(),
                Value::String("2026-11-26T21:40:42.045Z".to_string()),
            ),
        ];
        o.push(("data".to_string(), json(data)));
        o.push(("project".to_string(), Value::String("p".to_string())));
        Value::Object(o)
    };
    let got = format_event(&ev("feature-updated", "admin", "null"), "u").unwrap();
    assert_eq!(got.text, "*admin* triggered *feature-updated*");
    assert_eq!(got.label, "feature-updated");
    assert_eq!(got.url, None);
    assert_eq!(
        md(&ev("", "", "null")),
        "* triggered *",
        "bold() of a falsy value is a lone marker"
    );
    // Unleash renders the fallback text as a Mustache template, without escaping.
    assert_eq!(
        md(&ev(
            "t",
            "{{event.data.x}} {{b}} {{ project }}",
            r#"{"x":"<&>"}"#
        )),
        "*<&> * [p](http://localhost:4242/projects/p)* triggered *t*"
    );
    assert_eq!(
        md(&ev("t", "{{event.createdAt}}", "null")),
        "*Thu Nov 26 2026 21:40:42 GMT+0000 (Coordinated Universal Time)* triggered *t*"
    );
    assert_eq!(
        md(&ev(
            "t",
            "{{=<% %>=}}<%event.data.x%> {{x}} <%{event.data.x}%>",
            r#"{"x":"'"}"#
        )),
        "*' {{x}} '* triggered *t*"
    );
    assert_eq!(
        md(&ev(
            "t",
            "{{#event.data}}{{x}}{{/event.data}}{{! note }}",
            r#"{"x":"="}"#
        )),
        "*=* triggered *t*"
    );
    // Where mustache.js throws, so does Unleash's formatter.
    assert_eq!(err(&ev("t", "{{oops", "null")), "Error: Unclosed tag at 22");
    assert_eq!(
        err(&ev("t", "{{#a}}", "null")),
        "Error: Unclosed section \"a\" at 22"
    );
    // Positions are the original template's, not the rewritten one's.
    assert_eq!(
        err(&ev("t", "{{x}}{{/y}}", "null")),
        "Error: Unopened section \"y\" at 6"
    );
    assert!(err(&ev("constructor", "a", "null")).starts_with("TypeError: Invalid template!"));
    assert!(err(&ev("__proto__", "a", "null")).starts_with("TypeError: Invalid template!"));
    // event_markdown still gives a line for those.
    assert_eq!(
        event_markdown(&ev("t", "{{oops", "null"), "u"),
        "*{{oops* triggered *t*"
    );
    assert_eq!(
        event_markdown(&ev("valueOf", "a", "null"), "u"),
        "*a* triggered *valueOf*"
    );
}

fn update(data: &str, pre: &str) -> Value {
    json(&format!(
        r#"{{"id":1,"type":"feature-strategy-update","createdBy":"u","createdAt":null,"createdByUserId":1,"data":{data},"preData":{pre},"tags":[],"featureName":"f","project":"p","environment":"prod"}}"#
    ))
}

/// The strategy-change description alone.
fn change(data: &str, pre: &str) -> String {
    let text = md(&update(data, pre));
    let prefix = "*u* updated *[f](http://localhost:4242/projects/p/features/f)* in project *[p](http://localhost:4242/projects/p)* ";
    match text.strip_prefix(prefix) {
        Some(rest) => rest.to_string(),
        None => panic!("unexpected text {text:?}"),
    }
}

#[test]
fn strategy_update_texts() {
    // Added parameters (no old value): "to" only.
    assert_eq!(
        change(
            r#"{"name":"flexibleRollout","parameters":{"rollout":"50","stickiness":"userId","groupId":"g"}}"#,
            "null"
        ),
        "by updating strategy *flexibleRollout* in *prod* stickiness to userId; rollout to 50%; groupId to g"
    );
    // Removed ones print `undefined`; a number and a string never compare equal.
    assert_eq!(
        change(
            r#"{"name":"flexibleRollout","parameters":{"rollout":50}}"#,
            r#"{"name":"flexibleRollout","parameters":{"rollout":"50","groupId":"g"}}"#
        ),
        "by updating strategy *flexibleRollout* in *prod* rollout from 50% to 50%; groupId from g to undefined"
    );
    // title beats name; no environment gives a lone marker.
    let ev = json(
        r#"{"type":"feature-strategy-update","createdBy":"u","data":{"name":"userWithId","title":"Beta","parameters":{"userIds":"a,b"}},"preData":{"name":"userWithId","parameters":{"userIds":"a"}},"featureName":"f","project":"p"}"#,
    );
    assert!(
        md(&ev).ends_with(" by updating strategy *Beta* in *"),
        "{}",
        md(&ev)
    );
    // Segments and constraints, with inverted, unknown operators and missing values.
    assert_eq!(
        change(
            r#"{"name":"default","segments":[1,2],"constraints":[{"contextName":"userId","operator":"IN","values":null,"inverted":1},{"contextName":"x","operator":"SOMETHING_NEW","value":null},{"operator":7}]}"#,
            r#"{"name":"default","segments":[3]}"#
        ),
        "by updating strategy *default* in *prod* constraints from empty set of constraints to [userId not is one of (undefined), x SOMETHING_NEW null, undefined 7 (undefined)]; segments from (3) to (1,2)"
    );
    // Unchanged lists print nothing; `default` without data falls back to preData's name.
    assert_eq!(
        change(
            r#"{"name":"default","segments":[1]}"#,
            r#"{"name":"default","segments":[1]}"#
        ),
        "by updating strategy *default* in *prod*"
    );
    assert_eq!(
        change(
            "null",
            r#"{"name":"default","constraints":[{"contextName":"a","operator":"IN","values":["b"]}]}"#
        ),
        "by updating strategy *default* in *prod* constraints from [a is one of (b)] to empty set of constraints"
    );
    // remoteAddress: array values, a new strategy (no preData), unchanged values.
    assert_eq!(
        change(
            r#"{"name":"remoteAddress","parameters":{"IPs":["10.0.0.1","10.0.0.2"]}}"#,
            "null"
        ),
        "by updating strategy *remoteAddress* in *prod* IPs to [10.0.0.1,10.0.0.2]"
    );
    assert_eq!(
        change(
            r#"{"name":"applicationHostname","parameters":{"hostNames":"a"},"segments":[5]}"#,
            r#"{"name":"applicationHostname","parameters":{"hostNames":"a"}}"#
        ),
        "by updating strategy *applicationHostname* in *prod* segments from empty set of segments to (5)"
    );
    assert_eq!(
        change(
            r#"{"name":"applicationHostname","parameters":{"hostNames":""}}"#,
            r#"{"name":"applicationHostname","parameters":{"hostNames":"a,b"}}"#
        ),
        "by updating strategy *applicationHostname* in *prod* hostNames from [a,b] to empty set of hostNames"
    );
    // Other strategies (userWithId, gradualRollout..., custom ones) get the heading only.
    assert_eq!(
        change(
            r#"{"name":"userWithId","parameters":{"userIds":"a,b"},"constraints":[{"contextName":"a","operator":"IN","values":["b"]}]}"#,
            r#"{"name":"userWithId","parameters":{"userIds":"a"}}"#
        ),
        "by updating strategy *userWithId* in *prod*"
    );
    // Other event types never get the description, even with strategy data.
    let add = json(
        r#"{"type":"feature-strategy-add","createdBy":"u","data":{"name":"flexibleRollout","parameters":{"rollout":"5"}},"featureName":"f","project":"p","environment":"e"}"#,
    );
    assert!(!md(&add).contains("by updating"));
}

#[test]
fn strategy_update_throws_where_unleash_throws() {
    // `preData.parameters[name]` with no parameters.
    assert_eq!(
        err(&update(
            r#"{"name":"remoteAddress","parameters":{"IPs":"1"}}"#,
            r#"{"name":"remoteAddress"}"#
        )),
        "TypeError: Cannot read properties of undefined (reading 'IPs')"
    );
    // `values.length` of a missing value.
    assert_eq!(
        err(&update(
            r#"{"name":"remoteAddress","parameters":{}}"#,
            r#"{"name":"remoteAddress","parameters":{"IPs":"1"}}"#
        )),
        "TypeError: Cannot read properties of undefined (reading 'length')"
    );
    // `null.length`, `"str".map`, `"str".join`, `null.hasOwnProperty`, `[].values.join`.
    for (data, msg) in [
        (
            r#"{"name":"default","constraints":null}"#,
            "reading 'length'",
        ),
        (
            r#"{"name":"default","constraints":"abc"}"#,
            "constraints.map is not a function",
        ),
        (
            r#"{"name":"default","segments":"abc"}"#,
            "segments.join is not a function",
        ),
        (
            r#"{"name":"default","constraints":[null]}"#,
            "reading 'hasOwnProperty'",
        ),
        (
            r#"{"name":"default","constraints":[[1]]}"#,
            "join is not a function",
        ),
        (
            r#"{"name":"default","constraints":[{"values":"ab"}]}"#,
            "join is not a function",
        ),
        (
            r#"{"name":"flexibleRollout","parameters":{"rollout":{"toString":1}}}"#,
            "Cannot convert object to primitive value",
        ),
    ] {
        let e = err(&update(data, "null"));
        assert!(e.contains(msg), "{data}: {e}");
    }
    // Empty strings have length 0, so these do not throw.
    assert_eq!(
        change(
            r#"{"name":"default","constraints":"","segments":""}"#,
            "null"
        ),
        "by updating strategy *default* in *prod*"
    );
    // The fallback line for event_markdown.
    assert_eq!(
        event_markdown(
            &update(r#"{"name":"default","constraints":null}"#, "null"),
            "u"
        ),
        "*u* triggered *feature-strategy-update*"
    );
}

/// Unleash renders its messages with an identity `escape`: `{{x}}` prints as `{{&x}}` would,
/// and nothing else changes (sections, comments, partials, set delimiters, errors).
#[test]
fn messages_render_without_html_escaping() {
    let view = json(r#"{"a":"<&>","b":"\"'","c":"/`=","x":"<x>","s":true,"t":false,"ü":"é&"}"#);
    let cases = [
        ("", ""),
        ("plain", "plain"),
        ("{{a}}", "{{&a}}"),
        ("{{ a }} {{{b}}} {{&c}}", "{{ &a }} {{{b}}} {{&c}}"),
        (
            "{{#s}}{{x}}{{/s}}{{^t}}{{! c }}{{/t}}{{> p}}",
            "{{#s}}{{&x}}{{/s}}{{^t}}{{! c }}{{/t}}{{> p}}",
        ),
        (
            "{{=<% %>=}}<%a%>{{b}}<%={{ }}=%>{{c}}",
            "{{=<% %>=}}<%&a%>{{b}}<%={{ }}=%>{{&c}}",
        ),
        ("{{ {x} }}}", "{{ {x} }}}"),
        ("é{{\u{3000}ü }}", "é{{\u{3000}&ü }}"),
        ("{{}}", "{{&}}"),
    ];
    for (src, raw) in cases {
        let want = Template::compile(raw).and_then(|t| t.render(&view));
        assert!(want.is_ok(), "{raw:?}");
        assert_eq!(
            render(src, &view).map_err(|e| e.message),
            want.map_err(|e| e.js_message()),
            "{src:?}"
        );
    }
    for (bad, err) in [
        ("{{a", "Error: Unclosed tag at 3"),
        ("{{", "Error: Unclosed tag at 2"),
        ("a {{=x=}}", "Error: Invalid tags: x"),
        ("{{{a}}", "Error: Unclosed tag at 6"),
        ("{{ {x} }}", "Error: Unclosed tag at 9"),
        ("{{= a =}} a", "Error: Invalid tags: a"),
    ] {
        assert_eq!(
            render(bad, &view).map_err(|e| e.message),
            Err(err.to_string()),
            "{bad:?}"
        );
    }
}

#[test]
fn substitute_outside_and_inside_quotes() {
    let md = "*a* \"q\" \\ \n\t\u{1} é";
    let esc = "*a* \\\"q\\\" \\\\ \\n\\t\\u0001 é";
    let p = PLACEHOLDER;
    assert_eq!(substitute_markdown(p, md), md);
    assert_eq!(
        substitute_markdown(&format!("\"{p}\""), md),
        format!("\"{esc}\"")
    );
    assert_eq!(
        substitute_markdown(&format!("{p} \"{p}\" {p}"), md),
        format!("{md} \"{esc}\" {md}")
    );
    // No placeholder: unchanged.
    assert_eq!(substitute_markdown("{\"a\": \"b\"}", md), "{\"a\": \"b\"}");
}

#[test]
fn substitute_tracks_escapes() {
    let p = PLACEHOLDER;
    let md = "x\"y";
    // An escaped quote does not end the string.
    assert_eq!(
        substitute_markdown(&format!(r#""a\" {p}""#), md),
        r#""a\" x\"y""#
    );
    // An escaped backslash does not escape the quote after it.
    assert_eq!(
        substitute_markdown(&format!(r#""a\\" {p}"#), md),
        r#""a\\" x"y"#
    );
    // A backslash right before the placeholder escapes its first character only.
    assert_eq!(substitute_markdown(&format!(r#""\{p}""#), md), r#""\x\"y""#);
    assert_eq!(substitute_markdown(&format!(r#"\{p}"#), md), r#"\x"y"#);
    // Quotes outside JSON strings count too: the scan knows no JSON.
    assert_eq!(
        substitute_markdown(&format!("it's \"{p} and {p}"), md),
        "it's \"x\\\"y and x\\\"y"
    );
    // Non-ASCII text before the placeholder does not shift the state.
    assert_eq!(
        substitute_markdown(&format!("\"é😀\" {p} \"ü{p}\""), md),
        "\"é😀\" x\"y \"üx\\\"y\""
    );
}

#[test]
fn substitute_is_literal_and_non_overlapping() {
    let p = PLACEHOLDER;
    // Replacement patterns are not interpreted, the Markdown is not rescanned.
    assert_eq!(substitute_markdown(p, "$&-toggle $1 $$"), "$&-toggle $1 $$");
    assert_eq!(
        substitute_markdown(&format!("{p}{p}"), p),
        format!("{p}{p}")
    );
    // Placeholders sharing a NUL: replaceAll takes the first, then searches after it.
    let overlapping = "\0UNLEASH_EVENT_MARKDOWN\0UNLEASH_EVENT_MARKDOWN\0";
    assert_eq!(
        substitute_markdown(overlapping, "M"),
        "MUNLEASH_EVENT_MARKDOWN\0"
    );
    // Control characters use JSON.stringify's forms inside strings.
    assert_eq!(
        substitute_markdown(&format!("\"{p}\""), "\u{8}\u{c}\u{1f}\u{7f}\u{2028}/"),
        "\"\\b\\f\\u001f\u{7f}\u{2028}/\""
    );
}
