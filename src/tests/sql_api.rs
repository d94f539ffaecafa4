// `#[pg_test]`s for the SQL API, validation, and the capture trigger. Each test runs in its own
// transaction, rolled back at the end, with all tests at once against one cluster: every test
// builds its events table in a schema of its own and uses its own subscription names.

use pgrx::prelude::*;

const EVENTS_DDL: &str = include_str!("../../tests/fixtures/unleash/events-table.sql");
const SAMPLE_EVENTS: &str = include_str!("../../tests/fixtures/unleash/sample-events.sql");

/// Creates schema `schema` holding Unleash's real tables (and trigger), attaches ours.
fn unleash_schema(schema: &str) {
    Spi::run(&format!("CREATE SCHEMA {schema}; SET LOCAL search_path = {schema}, public")).unwrap();
    Spi::run(EVENTS_DDL).unwrap();
    Spi::run(&format!("SELECT unleash_webhook.attach('{schema}.events')")).unwrap();
}

/// The first value of `sql`, after writing what the capture trigger queued into the log (see
/// `flush`). Only as a superuser: some tests count as a role without rights.
fn count(sql: &str) -> i64 {
    let superuser = Spi::get_one::<bool>(
        "SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user",
    )
    .unwrap()
    .unwrap_or(false);
    if superuser {
        flush();
    }
    Spi::get_one::<i64>(sql).unwrap().unwrap()
}

/// Writes what the capture trigger queued into the delivery log as pending, as the worker does
/// with what it puts aside (the worker cannot see a test's open transaction).
fn flush() {
    Spi::run(
        "INSERT INTO unleash_webhook._deliveries
                (id, subscription_id, event_table, event_id, event_type, status, created_at,
                 next_attempt_at)
         SELECT q.id, q.subscription_id, q.event_table, q.event_id, q.event_type, 'pending',
                q.queued_at, now()
           FROM unleash_webhook._queued q
             ON CONFLICT DO NOTHING",
    )
    .unwrap();
}

/// Runs `stmt` and returns "SQLSTATE|hint" of the error it raised, or "00000|".
fn sqlstate_of(stmt: &str) -> String {
    // Created once per session (as the test's superuser), so that it also works after SET ROLE.
    Spi::run(
        "CREATE OR REPLACE FUNCTION pg_temp.sqlstate_of(stmt text) RETURNS text
         LANGUAGE plpgsql AS $$
         DECLARE hint text;
         BEGIN
             EXECUTE stmt;
             RETURN '00000|';
         EXCEPTION WHEN OTHERS THEN
             GET STACKED DIAGNOSTICS hint = PG_EXCEPTION_HINT;
             RETURN SQLSTATE || '|' || coalesce(hint, '');
         END $$",
    )
    .unwrap();
    Spi::get_one_with_args::<String>("SELECT pg_temp.sqlstate_of($1)", &[stmt.into()])
        .unwrap()
        .unwrap()
}

/// sqlstate_of without (re)defining the helper: for use after SET ROLE.
fn sqlstate_of_existing(stmt: &str) -> String {
    Spi::get_one_with_args::<String>("SELECT pg_temp.sqlstate_of($1)", &[stmt.into()])
        .unwrap()
        .unwrap()
}

fn assert_refused(stmt: &str, sqlstate: &str) {
    let got = sqlstate_of(stmt);
    let (code, hint) = got.split_once('|').unwrap();
    assert_eq!(code, sqlstate, "{stmt}");
    assert!(!hint.is_empty(), "no hint for {stmt}");
}

#[pg_test]
fn create_and_view_hides_secrets() {
    let id = Spi::get_one::<i64>(
        "SELECT unleash_webhook.create_subscription('view-1', 'https://user:pw@example.com/h',
            ARRAY['feature-created'], \"authorization\" => 'Bearer s3cret',
            headers => '{\"X-Token\": \"hdr-s3cret\"}')",
    )
    .unwrap()
    .unwrap();
    assert!(id > 0);
    let row = Spi::get_one::<String>(
        "SELECT row_to_json(s)::text FROM unleash_webhook.subscriptions s WHERE name = 'view-1'",
    )
    .unwrap()
    .unwrap();
    assert!(!row.contains("s3cret"), "{row}");
    assert!(!row.contains(":pw@"), "{row}");
    assert!(row.contains("\"has_authorization\":true"), "{row}");
    assert!(row.contains("X-Token"), "{row}");
}

#[pg_test]
fn bad_input_is_refused_with_sqlstate_and_hint() {
    Spi::run("SELECT unleash_webhook.create_subscription('dup-1', 'http://h/', ARRAY['x'])").unwrap();
    let ok = "'http://h/', ARRAY['feature-created']";
    for (stmt, code) in [
        ("SELECT unleash_webhook.create_subscription('b1', 'ftp://h/', ARRAY['x'])".to_string(), "22023"),
        ("SELECT unleash_webhook.create_subscription('b2', 'javascript:alert(1)', ARRAY['x'])".into(), "22023"),
        ("SELECT unleash_webhook.create_subscription('b3', 'http:///nohost', ARRAY['x'])".into(), "22023"),
        ("SELECT unleash_webhook.create_subscription('b4', NULL, ARRAY['x'])".into(), "22023"),
        ("SELECT unleash_webhook.create_subscription('dup-1', 'http://h/', ARRAY['x'])".into(), "42710"),
        (format!("SELECT unleash_webhook.create_subscription('b5', {ok}, body_template => 'x {{{{y')"), "22023"),
        (format!("SELECT unleash_webhook.create_subscription('b6', {ok}, body_template => '{{{{#a}}}}')"), "22023"),
        (format!("SELECT unleash_webhook.create_subscription('b7', {ok}, headers => '[1]')"), "22023"),
        (format!("SELECT unleash_webhook.create_subscription('b8', {ok}, headers => '{{\"X\": 1}}')"), "22023"),
        (format!("SELECT unleash_webhook.create_subscription('b9', {ok}, headers => '{{\"Bad Name\": \"v\"}}')"), "22023"),
        (format!("SELECT unleash_webhook.create_subscription('b10', {ok}, headers => '{{\"X\": \"a\\r\\nEvil: 1\"}}')"), "22023"),
        (format!("SELECT unleash_webhook.create_subscription('b11', {ok}, content_type => E'text/plain\\r\\nX: y')"), "22023"),
        (format!("SELECT unleash_webhook.create_subscription('b12', {ok}, \"authorization\" => E'a\\nb')"), "22023"),
        ("SELECT unleash_webhook.create_subscription('b13', 'http://h/', ARRAY[]::text[])".into(), "22023"),
        ("SELECT unleash_webhook.create_subscription('b14', 'http://h/', ARRAY['a', NULL])".into(), "22023"),
        ("SELECT unleash_webhook.create_subscription('b15', 'http://h/', ARRAY[''])".into(), "22023"),
        ("SELECT unleash_webhook.create_subscription('b16', 'http://h/', NULL)".into(), "22023"),
        ("SELECT unleash_webhook.create_subscription('', 'http://h/', ARRAY['x'])".into(), "22023"),
        ("SELECT unleash_webhook.create_subscription(NULL, 'http://h/', ARRAY['x'])".into(), "22004"),
        (format!("SELECT unleash_webhook.create_subscription('b17', {ok}, projects => ARRAY[NULL]::text[])"), "22004"),
        ("SELECT unleash_webhook.alter_subscription('nope-1', url => 'http://x/')".into(), "42704"),
        ("SELECT unleash_webhook.alter_subscription('dup-1', url => 'gopher://x/')".into(), "22023"),
        ("SELECT unleash_webhook.pause_subscription('nope-1')".into(), "42704"),
        ("SELECT unleash_webhook.resume_subscription('nope-1')".into(), "42704"),
        ("SELECT unleash_webhook.drop_subscription('nope-1')".into(), "42704"),
        ("SELECT unleash_webhook.redeliver(-1)".into(), "42704"),
        ("SELECT unleash_webhook.attach('pg_catalog.pg_class')".into(), "42703"),
    ] {
        assert_refused(&stmt, code);
    }
    // A refused call changed nothing.
    assert_eq!(count("SELECT count(*) FROM unleash_webhook._subscriptions WHERE name LIKE 'b%'"), 0);
    let url = Spi::get_one::<String>("SELECT url FROM unleash_webhook.subscriptions WHERE name = 'dup-1'");
    assert_eq!(url.unwrap().unwrap(), "http://h/");
}

#[pg_test]
fn errors_never_echo_secrets() {
    Spi::run("SELECT unleash_webhook.create_subscription('sec-1', 'http://h/', ARRAY['x'])").unwrap();
    let message = Spi::get_one::<String>(
        "CREATE OR REPLACE FUNCTION pg_temp.msg() RETURNS text LANGUAGE plpgsql AS $$
         BEGIN
             PERFORM unleash_webhook.alter_subscription('sec-1',
                 headers => '{\"X-Key\": \"topsecret\\r\\nInjected: 1\"}');
             RETURN 'none';
         EXCEPTION WHEN OTHERS THEN RETURN SQLERRM;
         END $$;
         SELECT pg_temp.msg()",
    )
    .unwrap()
    .unwrap();
    assert!(message.contains("X-Key"), "{message}");
    assert!(!message.contains("topsecret"), "{message}");
}

#[pg_test]
fn fan_out_follows_unleash_matching() {
    unleash_schema("fan1");
    for sql in [
        "SELECT unleash_webhook.create_subscription('fan1-all', 'http://h/a', ARRAY['feature-created','feature-environment-enabled','feature-metadata-updated','feature-tagged','feature-strategy-update','feature-archived'])",
        "SELECT unleash_webhook.create_subscription('fan1-prod', 'http://h/p', ARRAY['feature-created','feature-environment-enabled','feature-strategy-update'], environments => ARRAY['production'])",
        "SELECT unleash_webhook.create_subscription('fan1-star', 'http://h/s', ARRAY['feature-strategy-update','feature-environment-enabled'], projects => ARRAY['*','ignored'], environments => ARRAY['*'])",
        "SELECT unleash_webhook.create_subscription('fan1-other', 'http://h/o', ARRAY['feature-created','feature-archived'], projects => ARRAY['other'])",
        "SELECT unleash_webhook.create_subscription('fan1-off', 'http://h/x', ARRAY['feature-created'], enabled => false)",
    ] {
        Spi::run(sql).unwrap();
    }
    Spi::run(SAMPLE_EVENTS).unwrap();
    let per = |name: &str| {
        count(&format!(
            "SELECT count(*) FROM unleash_webhook.deliveries WHERE subscription = '{name}'"
        ))
    };
    // all six sample events
    assert_eq!(per("fan1-all"), 6);
    // feature-created (no environment: passes), strategy-update in production; not the
    // development enable
    assert_eq!(per("fan1-prod"), 2);
    // '*' first: every project and environment
    assert_eq!(per("fan1-star"), 2);
    // project 'default' is not 'other'
    assert_eq!(per("fan1-other"), 0);
    assert_eq!(per("fan1-off"), 0);
    assert_eq!(
        count("SELECT count(*) FROM unleash_webhook.deliveries WHERE subscription LIKE 'fan1-%' AND status = 'pending' AND attempts = 0"),
        10
    );
    // The announcer's UPDATE queues nothing.
    Spi::run("UPDATE fan1.events SET announced = true WHERE announced = false").unwrap();
    assert_eq!(per("fan1-all"), 6);
}

#[pg_test]
fn multi_row_insert_and_project_less_events() {
    unleash_schema("multi1");
    Spi::run("SELECT unleash_webhook.create_subscription('multi1-a', 'http://h/', ARRAY['feature-created','segment-created'], projects => ARRAY['p1'], environments => ARRAY['production'])").unwrap();
    Spi::run(
        "INSERT INTO multi1.events (type, created_by, project, environment, feature_name) VALUES
            ('feature-created', 'u', 'p1', NULL, 'f1'),
            ('feature-created', 'u', 'p2', NULL, 'f2'),
            ('feature-created', 'u', 'p1', 'production', 'f3'),
            ('feature-created', 'u', 'p1', 'development', 'f4'),
            ('segment-created', 'u', NULL, NULL, NULL),
            ('segment-created', 'u', '', '', NULL),
            ('feature-archived', 'u', 'p1', NULL, 'f5')",
    )
    .unwrap();
    flush();
    let got = Spi::get_one::<String>(
        "SELECT string_agg(coalesce(e.feature_name, '-'), ',' ORDER BY d.event_id)
           FROM unleash_webhook._deliveries d JOIN multi1.events e ON e.id = d.event_id
          WHERE d.subscription_id = (SELECT id FROM unleash_webhook.subscriptions WHERE name = 'multi1-a')",
    )
    .unwrap()
    .unwrap();
    assert_eq!(got, "f1,f3,-,-");
}

#[pg_test]
fn capture_matches_as_the_sql_filter_does() {
    // The trigger matches in Rust (src/matching.rs); replay() uses the SQL _matches(). They
    // must agree on every combination of these filters and events.
    unleash_schema("agree1");
    let lists = ["ARRAY[]::text[]", "ARRAY['*']", "ARRAY['p1']", "ARRAY['p1','p2']", "ARRAY['x','*']", "ARRAY['p2','p1','p3']"];
    let mut n = 0;
    for projects in lists {
        for environments in lists {
            for types in ["ARRAY['a']", "ARRAY['a','b']", "ARRAY['c']"] {
                n += 1;
                Spi::run(&format!(
                    "SELECT unleash_webhook.create_subscription('agree1-{n}', 'http://h/', {types}, projects => {projects}, environments => {environments})"
                ))
                .unwrap();
            }
        }
    }
    // one multi-row statement with every kind of event, and single-row ones
    let values: Vec<String> = ["'a'", "'b'", "'c'", "'d'"]
        .iter()
        .flat_map(|t| {
            ["NULL", "''", "'p1'", "'p2'", "'p3'", "'*'"].iter().flat_map(move |p| {
                ["NULL", "''", "'p1'", "'p2'", "'e'"]
                    .iter()
                    .map(move |e| format!("({t}, 'u', {p}, {e})"))
            })
        })
        .collect();
    Spi::run(&format!(
        "INSERT INTO agree1.events (type, created_by, project, environment) VALUES {}",
        values.join(", ")
    ))
    .unwrap();
    Spi::run("INSERT INTO agree1.events (type, created_by, project, environment) VALUES ('a', 'u', 'p1', 'p2')").unwrap();
    let differ = count(
        "WITH want AS (
             SELECT e.id AS event_id, s.id AS subscription_id
               FROM agree1.events e JOIN unleash_webhook._subscriptions s
                 ON s.enabled AND s.name LIKE 'agree1-%'
                AND unleash_webhook._matches(e.type, e.project, e.environment,
                                             s.event_types, s.projects, s.environments)
         ), got AS (
             SELECT d.event_id, d.subscription_id FROM unleash_webhook._deliveries d
               JOIN unleash_webhook._subscriptions s ON s.id = d.subscription_id
              WHERE s.name LIKE 'agree1-%'
         )
         SELECT count(*) FROM ((TABLE want EXCEPT ALL TABLE got) UNION ALL
                               (TABLE got EXCEPT ALL TABLE want)) x",
    );
    let matched = count("SELECT count(*) FROM unleash_webhook.deliveries WHERE subscription LIKE 'agree1-%'");
    assert_eq!(differ, 0);
    assert!(matched > 500, "{matched}");
}

#[pg_test]
fn rolled_back_event_queues_nothing() {
    unleash_schema("rb1");
    Spi::run("SELECT unleash_webhook.create_subscription('rb1-a', 'http://h/', ARRAY['feature-created'])").unwrap();
    Spi::run(
        "DO $$ BEGIN
             INSERT INTO rb1.events (type, created_by) VALUES ('feature-created', 'u');
             RAISE EXCEPTION 'roll back';
         EXCEPTION WHEN raise_exception THEN NULL;
         END $$",
    )
    .unwrap();
    assert_eq!(count("SELECT count(*) FROM rb1.events"), 0);
    assert_eq!(count("SELECT count(*) FROM unleash_webhook.deliveries WHERE subscription = 'rb1-a'"), 0);
    Spi::run("INSERT INTO rb1.events (type, created_by) VALUES ('feature-created', 'u')").unwrap();
    assert_eq!(count("SELECT count(*) FROM unleash_webhook.deliveries WHERE subscription = 'rb1-a'"), 1);
    // The trigger runs BEFORE the row is written: a row refused after it (a duplicate id, a
    // NULL in a NOT NULL column) takes what the trigger queued down with it.
    let id = Spi::get_one::<i32>("SELECT max(id) FROM rb1.events").unwrap().unwrap();
    for refused in [
        format!("INSERT INTO rb1.events (id, type, created_by) VALUES ({id}, 'feature-created', 'u')"),
        "INSERT INTO rb1.events (type, created_by) VALUES ('feature-created', NULL)".into(),
    ] {
        assert_ne!(sqlstate_of(&refused), "00000|", "{refused}");
    }
    assert_eq!(count("SELECT count(*) FROM unleash_webhook.deliveries WHERE subscription = 'rb1-a'"), 1);
}

#[pg_test]
fn unleash_role_needs_no_privilege_on_ours() {
    unleash_schema("role1");
    Spi::run("SELECT unleash_webhook.create_subscription('role1-a', 'http://h/', ARRAY['feature-created'])").unwrap();
    Spi::run(
        "CREATE ROLE role1_unleash NOLOGIN;
         GRANT USAGE ON SCHEMA role1 TO role1_unleash;
         GRANT INSERT, SELECT, UPDATE ON role1.events, role1.stat_environment_updates TO role1_unleash;
         GRANT USAGE ON SEQUENCE role1.events_id_seq TO role1_unleash;
         SET LOCAL ROLE role1_unleash;
         INSERT INTO role1.events (type, created_by, environment) VALUES ('feature-created', 'u', 'production');
         RESET ROLE",
    )
    .unwrap();
    assert_eq!(count("SELECT count(*) FROM unleash_webhook.deliveries WHERE subscription = 'role1-a'"), 1);
    // ...and can read none of our objects.
    Spi::run("SET LOCAL ROLE role1_unleash").unwrap();
    let code = sqlstate_of("SELECT * FROM unleash_webhook._subscriptions");
    let code2 = sqlstate_of("SELECT unleash_webhook.create_subscription('role1-b', 'http://h/', ARRAY['x'])");
    Spi::run("RESET ROLE").unwrap();
    assert!(code.starts_with("42501"), "{code}");
    assert!(code2.starts_with("42501"), "{code2}");
}

#[pg_test]
fn changes_apply_to_the_next_event() {
    unleash_schema("chg1");
    Spi::run("SELECT unleash_webhook.create_subscription('chg1-a', 'http://h/', ARRAY['feature-created'])").unwrap();
    let ins = "INSERT INTO chg1.events (type, created_by) VALUES ('feature-created', 'u'), ('feature-archived', 'u')";
    let n = || count("SELECT count(*) FROM unleash_webhook.deliveries WHERE subscription = 'chg1-a'");
    Spi::run(ins).unwrap();
    assert_eq!(n(), 1);
    Spi::run("SELECT unleash_webhook.alter_subscription('chg1-a', event_types => ARRAY['feature-created','feature-archived'])").unwrap();
    Spi::run(ins).unwrap();
    assert_eq!(n(), 3);
    Spi::run("SELECT unleash_webhook.pause_subscription('chg1-a')").unwrap();
    Spi::run(ins).unwrap();
    assert_eq!(n(), 3);
    Spi::run("SELECT unleash_webhook.resume_subscription('chg1-a')").unwrap();
    Spi::run(ins).unwrap();
    assert_eq!(n(), 5);
    // A pause that is rolled back with its subtransaction no longer applies, though the
    // trigger saw it (the trigger keeps the subscriptions it read per snapshot).
    Spi::run(&format!(
        "DO $$ BEGIN
             PERFORM unleash_webhook.pause_subscription('chg1-a');
             {ins};
             RAISE EXCEPTION 'roll back';
         EXCEPTION WHEN raise_exception THEN NULL;
         END $$"
    ))
    .unwrap();
    Spi::run(ins).unwrap();
    assert_eq!(n(), 7);
    // alter keeps what it is not given; '' removes the authorization.
    Spi::run("SELECT unleash_webhook.alter_subscription('chg1-a', \"authorization\" => 'tok')").unwrap();
    assert_eq!(count("SELECT count(*) FROM unleash_webhook.subscriptions WHERE name = 'chg1-a' AND has_authorization AND cardinality(event_types) = 2"), 1);
    Spi::run("SELECT unleash_webhook.alter_subscription('chg1-a', \"authorization\" => '', new_name => 'chg1-b')").unwrap();
    assert_eq!(count("SELECT count(*) FROM unleash_webhook.subscriptions WHERE name = 'chg1-b' AND NOT has_authorization"), 1);
}

#[pg_test]
fn drop_cancels_pending_and_keeps_history() {
    unleash_schema("drop1");
    Spi::run("SELECT unleash_webhook.create_subscription('drop1-a', 'http://h/', ARRAY['feature-created'], \"authorization\" => 'x')").unwrap();
    Spi::run("INSERT INTO drop1.events (type, created_by) VALUES ('feature-created', 'u'), ('feature-created', 'u')").unwrap();
    let cancelled = count("SELECT unleash_webhook.drop_subscription('drop1-a')");
    assert_eq!(cancelled, 2);
    assert_eq!(count("SELECT count(*) FROM unleash_webhook.deliveries WHERE subscription = 'drop1-a' AND status = 'cancelled'"), 2);
    assert_eq!(count("SELECT count(*) FROM unleash_webhook.subscriptions WHERE name = 'drop1-a'"), 0);
    // The name is free again, and new events go to the new subscription only.
    Spi::run("SELECT unleash_webhook.create_subscription('drop1-a', 'http://h/', ARRAY['feature-created'])").unwrap();
    Spi::run("INSERT INTO drop1.events (type, created_by) VALUES ('feature-created', 'u')").unwrap();
    assert_eq!(count("SELECT count(*) FROM unleash_webhook.deliveries WHERE subscription = 'drop1-a' AND status = 'pending'"), 1);
    // Secrets are wiped from the dropped row.
    assert_eq!(count("SELECT count(*) FROM unleash_webhook._subscriptions WHERE dropped_at IS NOT NULL AND \"authorization\" IS NOT NULL"), 0);
}

#[pg_test]
fn redeliver_requeues_with_the_same_id() {
    unleash_schema("red1");
    Spi::run("SELECT unleash_webhook.create_subscription('red1-a', 'http://h/', ARRAY['feature-created'])").unwrap();
    Spi::run("INSERT INTO red1.events (type, created_by) VALUES ('feature-created', 'u')").unwrap();
    let id = count("SELECT id FROM unleash_webhook.deliveries WHERE subscription = 'red1-a'");
    // as the worker leaves it after two failed attempts of the request whose hash is 42
    Spi::run(&format!("UPDATE unleash_webhook._deliveries SET status = 'failed', round_attempts = 2, attempts = 2, content_hash = 42 WHERE id = {id}")).unwrap();
    let wid = Spi::get_one::<String>(&format!("SELECT webhook_id FROM unleash_webhook.deliveries WHERE id = {id}")).unwrap().unwrap();
    assert!(wid.ends_with(&format!("_{id}_000000000000002a")), "{wid}");
    Spi::run(&format!("SELECT unleash_webhook.redeliver({id})")).unwrap();
    assert_eq!(count(&format!("SELECT count(*) FROM unleash_webhook._deliveries WHERE id = {id} AND status = 'pending' AND round_attempts = 0 AND attempts = 2")), 1);
    let wid2 = Spi::get_one::<String>(&format!("SELECT webhook_id FROM unleash_webhook.deliveries WHERE id = {id}")).unwrap().unwrap();
    assert_eq!(wid, wid2);
    assert!(wid.starts_with("msg_"));
}

#[pg_test]
fn attach_is_idempotent_and_detach_stops_capture() {
    unleash_schema("att1");
    Spi::run("SELECT unleash_webhook.attach('att1.events')").unwrap();
    assert_eq!(count("SELECT count(*) FROM pg_trigger WHERE tgrelid = 'att1.events'::regclass AND tgname = 'unleash_webhook_capture'"), 1);
    Spi::run("SELECT unleash_webhook.create_subscription('att1-a', 'http://h/', ARRAY['feature-created'])").unwrap();
    Spi::run("SELECT unleash_webhook.detach('att1.events')").unwrap();
    Spi::run("INSERT INTO att1.events (type, created_by) VALUES ('feature-created', 'u')").unwrap();
    assert_eq!(count("SELECT count(*) FROM unleash_webhook.deliveries WHERE subscription = 'att1-a'"), 0);
    // Unleash's own trigger still ran beside ours.
    assert_eq!(count("SELECT count(*) FROM pg_trigger WHERE tgrelid = 'att1.events'::regclass AND tgname = 'unleash_update_stat_environment_changes'"), 1);
}

#[pg_test]
fn event_types_lists_the_33_ui_types() {
    assert_eq!(count("SELECT count(*) FROM unleash_webhook.event_types()"), 33);
    assert_eq!(count("SELECT count(DISTINCT t) FROM unleash_webhook.event_types() t"), 33);
    assert_eq!(
        count("SELECT count(*) FROM unleash_webhook.event_types() t WHERE t IN ('feature-created', 'release-plan-progressions-resumed', 'change-request-scheduled-application-failure')"),
        3
    );
    // other strings are accepted too
    Spi::run("SELECT unleash_webhook.create_subscription('et1-a', 'http://h/', ARRAY['segment-created', 'api-token-created'])").unwrap();
}

/// import_unleash_addons' report for the addons table `table`, ordered by addon id.
fn import_report(table: &str, disable: bool) -> Vec<(i32, String, String, Option<String>)> {
    Spi::connect(|client| {
        let rows = client.select(
            &format!(
                "SELECT addon_id, subscription, action, detail
                   FROM unleash_webhook.import_unleash_addons('{table}', {disable})
                  ORDER BY addon_id"
            ),
            None,
            &[],
        )?;
        let mut out = Vec::new();
        for r in rows {
            out.push((
                r.get::<i32>(1)?.unwrap(),
                r.get::<String>(2)?.unwrap(),
                r.get::<String>(3)?.unwrap(),
                r.get::<String>(4)?,
            ));
        }
        Ok::<_, pgrx::spi::Error>(out)
    })
    .unwrap()
}

#[pg_test]
fn import_unleash_addons_is_idempotent_and_reports_bad_rows() {
    unleash_schema("imp1");
    Spi::run(
        r#"INSERT INTO imp1.addons (id, provider, description, enabled, parameters, events, projects, environments) VALUES
        (1, 'webhook', 'ok', true,
         '{"url": "https://hooks.example.com/a", "contentType": "text/plain", "authorization": "Bearer t", "customHeaders": "{\"X-A\": \"1\"}", "bodyTemplate": "{\"e\": \"{{event.type}}\"}"}',
         '["feature-created", "feature-archived"]', '["default"]', '["production"]'),
        (2, 'webhook', 'bad headers', true, '{"url": "https://hooks.example.com/b", "customHeaders": "{not json"}', '["feature-created"]', '[]', '[]'),
        (3, 'webhook', 'bad url', true, '{"url": "ftp://files.example.com/"}', '["feature-created"]', '[]', '[]'),
        (4, 'slack', 'not a webhook', true, '{"url": "https://hooks.slack.com/x"}', '["feature-created"]', '[]', '[]'),
        (5, 'webhook', 'disabled, one-char template and headers', false, '{"url": "http://hooks.example.com/e", "bodyTemplate": "x", "customHeaders": " "}', '["feature-stale-on"]', '["*"]', '[]')"#,
    )
    .unwrap();
    let first = import_report("imp1.addons", false);
    let actions: Vec<(i32, &str)> = first.iter().map(|r| (r.0, r.2.as_str())).collect();
    assert_eq!(actions, vec![(1, "created"), (2, "skipped"), (3, "skipped"), (5, "created")]);
    assert!(first[1].3.as_deref().unwrap().contains("customHeaders"), "{first:?}");
    assert!(first[2].3.as_deref().unwrap().contains("url"), "{first:?}");
    let row = Spi::get_one::<String>(
        "SELECT row_to_json(s)::text FROM unleash_webhook._subscriptions s WHERE name = 'unleash-addon-1'",
    )
    .unwrap()
    .unwrap();
    for want in [
        "\"content_type\":\"text/plain\"",
        "\"authorization\":\"Bearer t\"",
        "\"headers\":{\"X-A\": \"1\"}",
        "\"projects\":[\"default\"]",
        "\"environments\":[\"production\"]",
        "\"event_types\":[\"feature-created\",\"feature-archived\"]",
    ] {
        assert!(row.contains(want), "{want} in {row}");
    }
    assert_eq!(count("SELECT count(*) FROM unleash_webhook.subscriptions WHERE name = 'unleash-addon-5' AND NOT enabled AND body_template IS NULL AND header_names = '{}'"), 1);
    // twice: nothing changes
    let second = import_report("imp1.addons", false);
    assert!(second.iter().filter(|r| r.2 != "skipped").all(|r| r.2 == "unchanged"), "{second:?}");
    // a changed addon updates its subscription
    Spi::run(r#"UPDATE imp1.addons SET parameters = '{"url": "https://hooks.example.com/a2"}' WHERE id = 1"#).unwrap();
    let third = import_report("imp1.addons", true);
    assert_eq!(third[0].2, "updated");
    assert_eq!(count("SELECT count(*) FROM unleash_webhook.subscriptions WHERE name = 'unleash-addon-1' AND NOT has_authorization AND body_template IS NULL AND enabled"), 1);
    assert_eq!(count("SELECT count(*) FROM unleash_webhook._subscriptions WHERE name = 'unleash-addon-1' AND dropped_at IS NULL AND url = 'https://hooks.example.com/a2'"), 1);
    // disable_source turned the imported addons off in Unleash, but not the subscriptions
    assert_eq!(count("SELECT count(*) FROM imp1.addons WHERE id = 1 AND NOT enabled"), 1);
    assert_eq!(count("SELECT count(*) FROM imp1.addons WHERE id = 2 AND enabled"), 1);
    let fourth = import_report("imp1.addons", false);
    assert_eq!(fourth[0].2, "unchanged", "{fourth:?}");
    assert_eq!(count("SELECT count(*) FROM unleash_webhook.subscriptions WHERE name = 'unleash-addon-1' AND enabled"), 1);
}

#[pg_test]
fn replay_queues_matching_events_in_the_window() {
    unleash_schema("rep1");
    Spi::run(
        "INSERT INTO rep1.events (created_at, type, created_by, project, environment) VALUES
            ('2026-01-01 10:00Z', 'feature-created', 'u', 'p1', NULL),
            ('2026-01-01 11:00Z', 'feature-created', 'u', 'p2', NULL),
            ('2026-01-01 12:00Z', 'feature-archived', 'u', 'p1', NULL),
            ('2026-01-02 10:00Z', 'feature-created', 'u', 'p1', NULL)",
    )
    .unwrap();
    Spi::run("SELECT unleash_webhook.create_subscription('rep1-a', 'http://h/', ARRAY['feature-created'], projects => ARRAY['p1'])").unwrap();
    assert_eq!(count("SELECT unleash_webhook.replay('rep1-a', '2026-01-01', '2026-01-02')"), 1);
    assert_eq!(count("SELECT unleash_webhook.replay('rep1-a', '2026-01-01')"), 2);
    assert_eq!(count("SELECT count(*) FROM unleash_webhook.deliveries WHERE subscription = 'rep1-a' AND status = 'pending'"), 3);
    assert_refused("SELECT unleash_webhook.replay('rep1-a', '2026-01-02', '2026-01-01')", "22023");
    assert_refused("SELECT unleash_webhook.replay('nope-x', '2026-01-01')", "42704");
}

#[pg_test]
fn purge_failed_and_dead_letters() {
    unleash_schema("dl1");
    Spi::run("SELECT unleash_webhook.create_subscription('dl1-a', 'http://h/', ARRAY['feature-created'])").unwrap();
    Spi::run("INSERT INTO dl1.events (type, created_by) VALUES ('feature-created', 'u'), ('feature-created', 'u')").unwrap();
    flush();
    Spi::run("UPDATE unleash_webhook._deliveries SET status = 'failed', finished_at = now(), last_error = 'x' WHERE subscription_id = (SELECT id FROM unleash_webhook.subscriptions WHERE name = 'dl1-a')").unwrap();
    assert_eq!(count("SELECT count(*) FROM unleash_webhook.dead_letters WHERE subscription = 'dl1-a'"), 2);
    assert_eq!(count("SELECT unleash_webhook.purge_failed('dl1-a', interval '1 hour')"), 0);
    assert_eq!(count("SELECT unleash_webhook.purge_failed('dl1-a')"), 2);
    assert_eq!(count("SELECT count(*) FROM unleash_webhook.dead_letters WHERE subscription = 'dl1-a'"), 0);
}

#[pg_test]
fn signing_secrets_rotate_and_never_show() {
    let secret = Spi::get_one::<String>("SELECT unleash_webhook.generate_signing_secret()").unwrap().unwrap();
    assert!(secret.starts_with("whsec_"));
    Spi::run(&format!("SELECT unleash_webhook.create_subscription('sig1-a', 'http://h/', ARRAY['x'], signing_secret => '{secret}')")).unwrap();
    let n = || count("SELECT signing_secrets FROM unleash_webhook.subscriptions WHERE name = 'sig1-a'");
    assert_eq!(n(), 1);
    let second = Spi::get_one::<String>("SELECT unleash_webhook.generate_signing_secret()").unwrap().unwrap();
    Spi::run(&format!("SELECT unleash_webhook.alter_subscription('sig1-a', signing_secret => '{second}')")).unwrap();
    assert_eq!(n(), 2);
    assert_eq!(
        Spi::get_one::<String>("SELECT signing_secrets[1] || ' ' || signing_secrets[2] FROM unleash_webhook._subscriptions WHERE name = 'sig1-a'").unwrap().unwrap(),
        format!("{second} {secret}")
    );
    Spi::run("SELECT unleash_webhook.end_secret_rotation('sig1-a')").unwrap();
    assert_eq!(n(), 1);
    Spi::run("SELECT unleash_webhook.alter_subscription('sig1-a', signing_secret => '')").unwrap();
    assert_eq!(n(), 0);
    assert_refused("SELECT unleash_webhook.alter_subscription('sig1-a', signing_secret => 'not-a-secret')", "22023");
    assert_refused("SELECT unleash_webhook.create_subscription('sig1-b', 'http://h/', ARRAY['x'], signing_secret => 'whsec_!!!')", "22023");
    let view = Spi::get_one::<String>("SELECT string_agg(row_to_json(s)::text, '') FROM unleash_webhook.subscriptions s").unwrap().unwrap_or_default();
    assert!(!view.contains(&second[6..]), "secret in the view");
}

#[pg_test]
fn destinations_are_checked_at_subscription_time() {
    // The test cluster allows 127.0.0.1 only (postgresql_conf_options).
    for url in ["http://10.1.2.3/x", "http://169.254.169.254/latest/meta-data", "http://[::1]:8080/", "http://192.168.1.1/"] {
        assert_refused(&format!("SELECT unleash_webhook.create_subscription('dst1', '{url}', ARRAY['x'])"), "22023");
    }
    Spi::run("SELECT unleash_webhook.create_subscription('dst1-ok', 'http://127.0.0.1:9/x', ARRAY['x'])").unwrap();
    // a host that does not resolve now is let through; the worker checks again at send time
    Spi::run("SELECT unleash_webhook.create_subscription('dst1-later', 'http://no-such-host.invalid/x', ARRAY['x'])").unwrap();
}

#[pg_test]
fn monitoring_role_reads_views_but_no_secrets_and_managers_need_a_grant() {
    Spi::run(
        "SELECT unleash_webhook.create_subscription('mon1-a', 'http://h/', ARRAY['x'],
             \"authorization\" => 'Bearer mon-s3cret', headers => '{\"X-K\": \"mon-h3ader\"}')",
    )
    .unwrap();
    Spi::run(
        "CREATE ROLE mon1_monitor NOLOGIN;
         GRANT USAGE ON SCHEMA unleash_webhook TO mon1_monitor;
         GRANT SELECT ON unleash_webhook.subscriptions, unleash_webhook.deliveries,
               unleash_webhook.delivery_attempts, unleash_webhook.subscription_stats,
               unleash_webhook.dead_letters TO mon1_monitor;
         CREATE ROLE mon1_manager NOLOGIN;
         GRANT USAGE ON SCHEMA unleash_webhook TO mon1_manager;
         GRANT EXECUTE ON FUNCTION unleash_webhook.create_subscription(text, text, text[], text, text, jsonb, text, text[], text[], boolean, text) TO mon1_manager",
    )
    .unwrap();
    sqlstate_of("SELECT 1"); // define the helper before switching roles
    Spi::run("SET LOCAL ROLE mon1_monitor").unwrap();
    let seen = Spi::get_one::<String>(
        "SELECT row_to_json(s)::text FROM unleash_webhook.subscriptions s WHERE name = 'mon1-a'",
    )
    .unwrap()
    .unwrap();
    let stats = count("SELECT count(*) FROM unleash_webhook.subscription_stats WHERE subscription = 'mon1-a'");
    let private = sqlstate_of_existing("SELECT \"authorization\" FROM unleash_webhook._subscriptions");
    let manage = sqlstate_of_existing("SELECT unleash_webhook.create_subscription('mon1-b', 'http://h/', ARRAY['x'])");
    Spi::run("RESET ROLE").unwrap();
    assert!(!seen.contains("mon-s3cret") && !seen.contains("mon-h3ader"), "{seen}");
    assert_eq!(stats, 1);
    assert!(private.starts_with("42501"), "{private}");
    assert!(manage.starts_with("42501"), "{manage}");
    // a role granted EXECUTE manages subscriptions without any right on the tables
    Spi::run("SET LOCAL ROLE mon1_manager").unwrap();
    let created = sqlstate_of_existing("SELECT unleash_webhook.create_subscription('mon1-c', 'http://h/', ARRAY['x'])");
    Spi::run("RESET ROLE").unwrap();
    assert_eq!(created, "00000|");
    assert_eq!(count("SELECT count(*) FROM unleash_webhook.subscriptions WHERE name = 'mon1-c'"), 1);
}

/// The worker's inbox read leaves out the rows it holds with one hash probe per inbox row, not a
/// comparison with every id held (quadratic: seconds of CPU per read with a backlog of
/// single-row INSERTs). The plan says which; PostgreSQL 14 to 18 all hash this form.
#[pg_test]
fn the_inbox_read_hashes_the_rows_held() {
    // (connect_mut: EXPLAIN counts as a write for SPI's read-only check)
    let plan = Spi::connect_mut(|client| {
        let held: Vec<i64> = (1..=20).collect();
        client
            .update(
                &format!("EXPLAIN (COSTS OFF) {}", crate::pg::queue::INBOX_SQL),
                None,
                &[held.into(), 200i64.into()],
            )
            .unwrap()
            .map(|row| row.get::<String>(1).unwrap().unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n")
    });
    assert!(plan.contains("hashed SubPlan"), "{plan}");
}
