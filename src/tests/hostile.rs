// Hostile input for every public SQL function, and events rows as Unleash (or someone else)
// might write them oddly. Included right after pg_tests.rs inside the same `mod tests`, so the
// helpers there (`unleash_schema`, `sqlstate_of`, `assert_refused`, `count`) are in scope.
//
// Every table row is (statement, expected SQLSTATE) where "00000" means "accepted". A refused
// row must carry a specific SQLSTATE (never 22000 or XX000), a non-empty hint, and must have
// changed nothing (subscriptions, deliveries, attempts, capture triggers and the catalog are
// compared before and after). An accepted row says in its comment why accepting is safe.
// Subscription names start with `hx-`; each test that needs an events table has its own
// schema (`hx_*`): tests run concurrently, each in its own rolled-back transaction.
//
// Tests named hx_fixed_* assert the correct behaviour for the defects this table found.

/// A healthy destination: the test cluster's destination_allowlist allows 127.0.0.1 (port 9
/// is never reached: nothing is committed, so the worker sends nothing).
const HX_URL: &str = "'http://127.0.0.1:9/hx'";

/// One megabyte, as an SQL expression (statements stay small; the value is built server-side).
const HX_MB: &str = "repeat('x', 1048576)";

/// Everything a refused call must leave as it was.
fn hx_state() -> String {
    // Row versions, not contents: any INSERT, UPDATE or DELETE changes a ctid list, and a
    // rolled-back change leaves it as it was. Cheap even with megabyte-sized rows around.
    Spi::get_one::<String>(
        "SELECT concat_ws(' / ',
            (SELECT count(*) || ':' || md5(coalesce(string_agg(ctid::text, ',' ORDER BY ctid), ''))
               FROM unleash_webhook._subscriptions),
            (SELECT count(*) || ':' || md5(coalesce(string_agg(ctid::text, ',' ORDER BY ctid), ''))
               FROM unleash_webhook._deliveries),
            (SELECT count(*) || ':' || md5(coalesce(string_agg(ctid::text, ',' ORDER BY ctid), ''))
               FROM unleash_webhook._attempts),
            (SELECT count(*) || ':' || md5(coalesce(string_agg(ctid::text, ',' ORDER BY ctid), ''))
               FROM unleash_webhook._inbox),
            (SELECT count(*) FROM pg_catalog.pg_trigger WHERE tgname = 'unleash_webhook_capture'),
            (SELECT count(*) FROM pg_catalog.pg_class))",
    )
    .unwrap()
    .unwrap()
}

/// The first 160 characters of a statement, for assertion messages.
fn hx_short(stmt: &str) -> String {
    stmt.chars().take(160).collect()
}

/// Appends what a table tried to `hostile-input.tsv` beside the test cluster's data directory
/// (`tests/run.sh` sums it up and prints it): the counts in the docs come from this run.
fn hx_tally(table: &str, rows: &[(String, &str)], by_postgres: bool) {
    use std::io::Write;
    let data = Spi::get_one::<String>("SHOW data_directory")
        .unwrap()
        .unwrap();
    let path = std::path::Path::new(&data).with_file_name("hostile-input.tsv");
    let refused = rows.iter().filter(|(_, want)| *want != "00000").count();
    // calls, refused by our code, refused by PostgreSQL itself, accepted
    let (ours, theirs) = if by_postgres { (0, refused) } else { (refused, 0) };
    let line = format!(
        "{table}\t{}\t{ours}\t{theirs}\t{}\n",
        rows.len(),
        rows.len() - refused
    );
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut f| f.write_all(line.as_bytes()))
        .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
}

/// Runs a table of (statement, expected SQLSTATE); see the file's header for the rules.
fn hx_check_table(table: &str, rows: &[(String, &str)]) {
    hx_tally(table, rows, false);
    for (stmt, want) in rows {
        assert!(
            *want != "22000" && *want != "XX000",
            "a table row may not expect a generic SQLSTATE: {}",
            hx_short(stmt)
        );
        let before = hx_state();
        let got = sqlstate_of(stmt);
        let (code, hint) = got.split_once('|').unwrap();
        assert_eq!(code, *want, "{} (hint: {hint})", hx_short(stmt));
        if code != "00000" {
            assert!(!hint.is_empty(), "no hint for {}", hx_short(stmt));
            assert_eq!(
                hx_state(),
                before,
                "refused, yet something changed: {}",
                hx_short(stmt)
            );
        }
    }
}

/// Statements PostgreSQL itself refuses while building the arguments (type input functions,
/// regclass lookups), before any of our code runs: the SQLSTATE is PostgreSQL's own, with no
/// hint of ours to give. Checked for the code, that nothing crashed and that nothing changed.
fn hx_check_pg_refusals(table: &str, rows: &[(String, &str)]) {
    hx_tally(table, rows, true);
    for (stmt, want) in rows {
        let before = hx_state();
        let got = sqlstate_of(stmt);
        let (code, _) = got.split_once('|').unwrap();
        assert_eq!(code, *want, "{}", hx_short(stmt));
        assert_eq!(hx_state(), before, "{}", hx_short(stmt));
    }
}

fn hx_exists(sql: &str) -> bool {
    Spi::get_one::<bool>(sql).unwrap().unwrap_or(false)
}

#[pg_test]
fn hx_create_subscription_table() {
    Spi::run("CREATE SCHEMA hx_c; CREATE TABLE hx_c.victim (x int)").unwrap();
    Spi::run(&format!(
        "SELECT unleash_webhook.create_subscription('hx-c-taken', {HX_URL}, ARRAY['x'])"
    ))
    .unwrap();
    let c = |args: String| format!("SELECT unleash_webhook.create_subscription({args})");
    let et = "ARRAY['feature-created']";
    let ok = format!("{HX_URL}, {et}");
    let rows: Vec<(String, &str)> = vec![
        // ---- name ----
        // NULL identifiers are 22004 throughout the API.
        (c(format!("NULL, {ok}")), "22004"),
        (c(format!("'', {ok}")), "22023"),
        (c(format!("'    ', {ok}")), "22023"),
        // 1 MB name: over the 200-character limit.
        (c(format!("{HX_MB}, {ok}")), "22023"),
        (c(format!("repeat('n', 201), {ok}")), "22023"),
        // Exactly 200 characters, multibyte: length() counts characters. Accepted.
        (c(format!("'hx-c-' || repeat('é', 195), {ok}")), "00000"),
        // SQL in a name is data: plpgsql passes it as a parameter; the victim table survives
        // (checked below). Accepted.
        (
            c(format!("'hx-c-''); DROP TABLE hx_c.victim; --', {ok}")),
            "00000",
        ),
        // CR/LF/tab in a name: names are never sent on the wire (webhook-id uses ids) and
        // error messages quote them with quote_literal. Accepted.
        (c(format!("E'hx-c-\\r\\nX-Evil: 1', {ok}")), "00000"),
        (c(format!("'hx-c-taken', {ok}")), "42710"),
        // ---- url ----
        (c(format!("'hx-c-u', NULL, {et}")), "22023"),
        (c(format!("'hx-c-u', '', {et}")), "22023"),
        (c(format!("'hx-c-u', '   ', {et}")), "22023"),
        (c(format!("'hx-c-u', 'javascript:alert(1)', {et}")), "22023"),
        (c(format!("'hx-c-u', 'file:///etc/passwd', {et}")), "22023"),
        (
            c(format!("'hx-c-u', 'data:text/plain,hello', {et}")),
            "22023",
        ),
        (
            c(format!("'hx-c-u', 'gopher://127.0.0.1:70/_GET', {et}")),
            "22023",
        ),
        (c(format!("'hx-c-u', 'ftp://127.0.0.1/x', {et}")), "22023"),
        (
            c(format!("'hx-c-u', 'http://127.0.0.1:9/a b', {et}")),
            "22023",
        ),
        (
            c(format!(
                "'hx-c-u', E'http://127.0.0.1:9/a\\r\\nHost: evil', {et}"
            )),
            "22023",
        ),
        (
            c(format!("'hx-c-u', E'http://127.0.0.1:9/a\\nb', {et}")),
            "22023",
        ),
        (
            c(format!("'hx-c-u', 'http://127.0.0.1:99999/', {et}")),
            "22023",
        ),
        (c(format!("'hx-c-u', 'http://127.0.0.1:0/', {et}")), "22023"),
        (c(format!("'hx-c-u', 'http:///nohost', {et}")), "22023"),
        // 1 MB URL: beyond what http::Uri parses.
        (
            c(format!("'hx-c-u', 'http://127.0.0.1:9/' || {HX_MB}, {et}")),
            "22023",
        ),
        // SSRF: private addresses in disguise, refused by the destination policy.
        (c(format!("'hx-c-u', 'http://0x0a.0.0.1/', {et}")), "22023"),
        (c(format!("'hx-c-u', 'http://167772161/', {et}")), "22023"),
        (
            c(format!("'hx-c-u', 'http://[::ffff:10.0.0.1]/', {et}")),
            "22023",
        ),
        (c(format!("'hx-c-u', 'http://0.0.0.0:9/', {et}")), "22023"),
        (
            c(format!("'hx-c-u', 'http://169.254.169.254/latest', {et}")),
            "22023",
        ),
        (c(format!("'hx-c-u', 'http://[fe80::1]:9/', {et}")), "22023"),
        // Credentials in the URL are allowed (README); the view masks the password
        // (checked below). Accepted.
        (
            c(format!(
                "'hx-c-cred', 'http://user:pw@127.0.0.1:9/hx', {et}"
            )),
            "00000",
        ),
        // An IPv6 literal with a zone id (link-local + interface) does not resolve: the
        // create-time check lets unresolvable hosts through and the worker's DNS step fails
        // every attempt ("DNS lookup failed"), so nothing is ever sent. Accepted, safe.
        (
            c(format!("'hx-c-zone', 'http://[fe80::1%25eth0]:9/', {et}")),
            "00000",
        ),
        // Surrounding whitespace/newline: the URL is trimmed before it is parsed, both here
        // and when sending, so the newline never reaches the request line. Accepted.
        (
            c(format!("'hx-c-nl', E'http://127.0.0.1:9/hx\\n', {et}")),
            "00000",
        ),
        // ---- event_types ----
        (c(format!("'hx-c-e', {HX_URL}, NULL")), "22023"),
        (c(format!("'hx-c-e', {HX_URL}, '{{}}'")), "22023"),
        (
            c(format!("'hx-c-e', {HX_URL}, ARRAY[NULL]::text[]")),
            "22023",
        ),
        (c(format!("'hx-c-e', {HX_URL}, ARRAY['a', NULL]")), "22023"),
        (c(format!("'hx-c-e', {HX_URL}, ARRAY['']")), "22023"),
        (c(format!("'hx-c-e', {HX_URL}, ARRAY['   ']")), "22023"),
        (
            c(format!("'hx-c-e', {HX_URL}, ARRAY[repeat('t', 256)]")),
            "22023",
        ),
        (c(format!("'hx-c-e', {HX_URL}, ARRAY[{HX_MB}]")), "22023"),
        // 100k event types: no count limit; matching is `= ANY`, stored TOASTed. Accepted.
        (
            c(format!(
                "'hx-c-e100k', {HX_URL}, array_fill('feature-created'::text, ARRAY[100000])"
            )),
            "00000",
        ),
        // A non-default lower bound changes nothing for `= ANY`. Accepted.
        (
            c(format!("'hx-c-ebound', {HX_URL}, '[5:5]={{x}}'::text[]")),
            "00000",
        ),
        // A type with a newline only never matches anything. Accepted.
        (
            c(format!(
                "'hx-c-enl', {HX_URL}, ARRAY[E'feature-created\\n']"
            )),
            "00000",
        ),
        // ---- content_type ----
        (c(format!("'hx-c-ct', {ok}, NULL")), "22023"),
        (c(format!("'hx-c-ct', {ok}, ''")), "22023"),
        (
            c(format!("'hx-c-ct', {ok}, E'text/plain\\r\\nX-Evil: 1'")),
            "22023",
        ),
        (c(format!("'hx-c-ct', {ok}, E'text/plain\\r'")), "22023"),
        (c(format!("'hx-c-ct', {ok}, E'text/plain\\n'")), "22023"),
        (c(format!("'hx-c-ct', {ok}, E'text/plain\\x01'")), "22023"),
        (c(format!("'hx-c-ct', {ok}, E'text/plain\\x7f'")), "22023"),
        (
            c(format!("'hx-c-ct', {ok}, E'text/plain\\x1b[31m'")),
            "22023",
        ),
        // A tab is allowed in a header value (RFC 9110). Accepted.
        (
            c(format!(
                "'hx-c-ct-tab', {ok}, E'text/plain;\\tcharset=utf-8'"
            )),
            "00000",
        ),
        // 1 MB content type: one line, no control characters; a receiver may reject the
        // request (a failed delivery, logged), nothing is injected. Accepted.
        (c(format!("'hx-c-ct-mb', {ok}, {HX_MB}")), "00000"),
        // ---- authorization ----
        (
            c(format!(
                "'hx-c-au', {ok}, \"authorization\" => E'Bearer x\\r\\nX-Evil: 1'"
            )),
            "22023",
        ),
        (
            c(format!(
                "'hx-c-au', {ok}, \"authorization\" => E'Bearer x\\n'"
            )),
            "22023",
        ),
        (
            c(format!(
                "'hx-c-au', {ok}, \"authorization\" => E'Bearer \\x1b'"
            )),
            "22023",
        ),
        (
            c(format!("'hx-c-au-null', {ok}, \"authorization\" => NULL")),
            "00000",
        ),
        // 1 MB token, one line. Accepted (as the content type).
        (
            c(format!("'hx-c-au-mb', {ok}, \"authorization\" => {HX_MB}")),
            "00000",
        ),
        // ---- headers ----
        (c(format!("'hx-c-h', {ok}, headers => NULL")), "22023"),
        (c(format!("'hx-c-h', {ok}, headers => '[]'")), "22023"),
        (
            c(format!("'hx-c-h', {ok}, headers => '[{{\"X\": \"v\"}}]'")),
            "22023",
        ),
        (c(format!("'hx-c-h', {ok}, headers => '\"X: v\"'")), "22023"),
        (c(format!("'hx-c-h', {ok}, headers => '123'")), "22023"),
        (c(format!("'hx-c-h', {ok}, headers => 'null'")), "22023"),
        (c(format!("'hx-c-h', {ok}, headers => 'true'")), "22023"),
        (
            c(format!("'hx-c-h', {ok}, headers => '{{\"X\": null}}'")),
            "22023",
        ),
        (
            c(format!("'hx-c-h', {ok}, headers => '{{\"X\": 1}}'")),
            "22023",
        ),
        (
            c(format!("'hx-c-h', {ok}, headers => '{{\"X\": [\"a\"]}}'")),
            "22023",
        ),
        (
            c(format!(
                "'hx-c-h', {ok}, headers => '{{\"X\": {{\"a\": \"b\"}}}}'"
            )),
            "22023",
        ),
        (
            c(format!("'hx-c-h', {ok}, headers => '{{\"\": \"v\"}}'")),
            "22023",
        ),
        (
            c(format!("'hx-c-h', {ok}, headers => '{{\"X Y\": \"v\"}}'")),
            "22023",
        ),
        (
            c(format!("'hx-c-h', {ok}, headers => '{{\"X:Y\": \"v\"}}'")),
            "22023",
        ),
        (
            c(format!(
                "'hx-c-h', {ok}, headers => '{{\"X\\r\\nEvil\": \"v\"}}'"
            )),
            "22023",
        ),
        (
            c(format!("'hx-c-h', {ok}, headers => '{{\"X-é\": \"v\"}}'")),
            "22023",
        ),
        (
            c(format!(
                "'hx-c-h', {ok}, headers => '{{\"X\": \"a\\r\\nEvil: 1\"}}'"
            )),
            "22023",
        ),
        (
            c(format!("'hx-c-h', {ok}, headers => '{{\"X\": \"a\\nb\"}}'")),
            "22023",
        ),
        (
            c(format!(
                "'hx-c-h', {ok}, headers => '{{\"X\": \"a\\u0001\"}}'"
            )),
            "22023",
        ),
        (
            c(format!(
                "'hx-c-h', {ok}, headers => '{{\"X\": \"a\\u007f\"}}'"
            )),
            "22023",
        ),
        (
            c(format!(
                "'hx-c-h', {ok}, headers => jsonb_build_object('X', 'a' || chr(13) || chr(10) || 'b')"
            )),
            "22023",
        ),
        // 1 MB header name is still a token; 1 MB value is one line. Accepted (the receiver
        // may refuse the request: a failed delivery, nothing injected).
        (
            c(format!(
                "'hx-c-h-mbname', {ok}, headers => jsonb_build_object({HX_MB}, 'v')"
            )),
            "00000",
        ),
        (
            c(format!(
                "'hx-c-h-mbval', {ok}, headers => jsonb_build_object('X', {HX_MB})"
            )),
            "00000",
        ),
        // 100k headers. Accepted (bounded by jsonb; the receiver decides).
        (
            c(format!(
                "'hx-c-h-100k', {ok}, headers => (SELECT jsonb_object_agg('X-' || i, 'v') FROM generate_series(1, 100000) i)"
            )),
            "00000",
        ),
        // Unicode line/paragraph separators and NEL are UTF-8 bytes >= 0x80 (obs-text), not
        // CR/LF: HTTP/1.1 does not split on them. Accepted.
        (
            c(format!(
                "'hx-c-h-u2028', {ok}, headers => '{{\"X\": \"a\\u2028b\\u0085c\"}}'"
            )),
            "00000",
        ),
        // Our own headers cannot be overridden: request.rs drops custom webhook-* headers.
        (
            c(format!(
                "'hx-c-h-wid', {ok}, headers => '{{\"webhook-id\": \"forged\"}}'"
            )),
            "00000",
        ),
        // ---- body_template ----
        (
            c(format!("'hx-c-t', {ok}, body_template => 'x {{{{y'")),
            "22023",
        ),
        (
            c(format!("'hx-c-t', {ok}, body_template => '{{{{#a}}}}'")),
            "22023",
        ),
        (
            c(format!("'hx-c-t', {ok}, body_template => '{{{{/a}}}}'")),
            "22023",
        ),
        (
            c(format!(
                "'hx-c-t', {ok}, body_template => '{{{{#a}}}}{{{{/b}}}}'"
            )),
            "22023",
        ),
        (
            c(format!("'hx-c-t', {ok}, body_template => '{{{{{{x}}}}'")),
            "22023",
        ),
        (
            c(format!("'hx-c-t', {ok}, body_template => '{{{{= =}}}}'")),
            "22023",
        ),
        (
            c(format!(
                "'hx-c-t', {ok}, body_template => '{{{{=<% %>=}}}}<%x'"
            )),
            "22023",
        ),
        // 1.2 MB of nested sections: refused at depth 201 (no deep recursion anywhere).
        (
            c(format!(
                "'hx-c-t', {ok}, body_template => repeat('{{{{#a}}}}', 200000)"
            )),
            "22023",
        ),
        (
            c(format!(
                "'hx-c-t', {ok}, body_template => repeat('{{{{^a}}}}', 200000)"
            )),
            "22023",
        ),
        (
            c(format!(
                "'hx-c-t', {ok}, body_template => repeat('{{{{', 200000)"
            )),
            "22023",
        ),
        // 1.2 MB of flat, closed sections: compiles; rendering is bounded by steps/output.
        (
            c(format!(
                "'hx-c-t-flat', {ok}, body_template => repeat('{{{{#a}}}}{{{{/a}}}}', 100000)"
            )),
            "00000",
        ),
        // Partials render empty and never touch the file system (checked in the preview
        // test). Accepted.
        (
            c(format!(
                "'hx-c-t-part', {ok}, body_template => '{{{{> /etc/passwd}}}}'"
            )),
            "00000",
        ),
        (
            c(format!("'hx-c-t-mb', {ok}, body_template => {HX_MB}")),
            "00000",
        ),
        // ---- projects / environments ----
        (c(format!("'hx-c-p', {ok}, projects => NULL")), "22004"),
        (
            c(format!("'hx-c-p', {ok}, projects => ARRAY[NULL]::text[]")),
            "22004",
        ),
        (c(format!("'hx-c-p', {ok}, environments => NULL")), "22004"),
        (
            c(format!(
                "'hx-c-p', {ok}, environments => ARRAY['production', NULL]"
            )),
            "22004",
        ),
        (
            c(format!(
                "'hx-c-p-100k', {ok}, projects => array_fill('p'::text, ARRAY[100000])"
            )),
            "00000",
        ),
        (
            c(format!("'hx-c-p-mb', {ok}, environments => ARRAY[{HX_MB}]")),
            "00000",
        ),
        // ---- enabled ----
        (c(format!("'hx-c-en', {ok}, enabled => NULL")), "22004"),
        // ---- signing_secret ----
        (c(format!("'hx-c-s', {ok}, signing_secret => ''")), "22023"),
        (
            c(format!("'hx-c-s', {ok}, signing_secret => 'whsec_'")),
            "22023",
        ),
        (
            c(format!("'hx-c-s', {ok}, signing_secret => 'whsec_!!!'")),
            "22023",
        ),
        (
            c(format!(
                "'hx-c-s', {ok}, signing_secret => 'whsec_' || repeat('QUFB', 262144)"
            )),
            "22023",
        ),
        (
            c(format!("'hx-c-s', {ok}, signing_secret => {HX_MB}")),
            "22023",
        ),
        (
            c(format!(
                "'hx-c-s', {ok}, signing_secret => E'whsec_MfKQ9r8GKYqr\\r\\nTwjUPD8ILPZIo2LaLaSw'"
            )),
            "22023",
        ),
        // A pasted trailing newline is trimmed wherever the secret is parsed. Accepted.
        (
            c(format!(
                "'hx-c-s-nl', {ok}, signing_secret => E'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\\n'"
            )),
            "00000",
        ),
    ];
    hx_check_table("hx_create_subscription_table", &rows);
    assert!(hx_exists("SELECT to_regclass('hx_c.victim') IS NOT NULL"));
    assert_eq!(
        count(
            "SELECT count(*) FROM unleash_webhook.subscriptions WHERE name = 'hx-c-''); DROP TABLE hx_c.victim; --'"
        ),
        1
    );
    // Nothing refused was stored under any of the refused rows' names.
    assert_eq!(
        count(
            "SELECT count(*) FROM unleash_webhook._subscriptions WHERE name IN ('hx-c-u', 'hx-c-e', 'hx-c-ct', 'hx-c-au', 'hx-c-h', 'hx-c-t', 'hx-c-p', 'hx-c-en', 'hx-c-s')"
        ),
        0
    );
    let url = Spi::get_one::<String>(
        "SELECT url FROM unleash_webhook.subscriptions WHERE name = 'hx-c-cred'",
    )
    .unwrap()
    .unwrap();
    assert!(!url.contains("pw"), "{url}");
}

// PostgreSQL refuses these while building the arguments, before our functions run.
#[pg_test]
fn hx_postgres_refuses_before_our_code() {
    let c = |args: &str| format!("SELECT unleash_webhook.create_subscription({args})");
    // A regclass in a missing schema: 3F000 on 14.23 and 15.20, 42P01 on 16.15, 17.11 and 18.6
    // (PostgreSQL's own choice, changed in a minor release): whatever the server says itself.
    let regclass = sqlstate_of("SELECT 'hx_nope.events'::regclass");
    let missing_schema = regclass.split_once('|').unwrap().0;
    let rows: Vec<(String, &str)> = vec![
        // NUL cannot be in a text value at all.
        (
            c("'hx-pg-1', 'http://127.0.0.1:9/' || chr(0), ARRAY['x']"),
            "54000",
        ),
        // \u0000 cannot be in jsonb.
        (
            c(&format!(
                "'hx-pg-2', {HX_URL}, ARRAY['x'], headers => '{{\"X\": \"a\\u0000\"}}'"
            )),
            "22P05",
        ),
        // A lone surrogate cannot be in jsonb either.
        (
            c(&format!(
                "'hx-pg-3', {HX_URL}, ARRAY['x'], headers => '{{\"X\": \"\\ud800\"}}'"
            )),
            "22P02",
        ),
        (
            c(&format!(
                "'hx-pg-4', {HX_URL}, ARRAY['x'], headers => 'not json'"
            )),
            "22P02",
        ),
        (c(&format!("'hx-pg-5', {HX_URL}, '{{x'")), "22P02"),
        (
            "SELECT unleash_webhook.attach('hx_nope.events')".into(),
            missing_schema,
        ),
        (
            "SELECT unleash_webhook.attach('public.hx_nope_events')".into(),
            "42P01",
        ),
        ("SELECT unleash_webhook.redeliver('abc')".into(), "22P02"),
        (
            "SELECT unleash_webhook.replay('hx-pg', 'not a date')".into(),
            "22007",
        ),
        (
            "SELECT unleash_webhook.purge_failed('hx-pg', 'forever')".into(),
            "22007",
        ),
        (
            "SELECT * FROM unleash_webhook.preview('hx-pg', 1e30::numeric::bigint)".into(),
            "22003",
        ),
    ];
    hx_check_pg_refusals("hx_postgres_refuses_before_our_code", &rows);
}

#[pg_test]
fn hx_alter_subscription_table() {
    Spi::run("CREATE SCHEMA hx_a; CREATE TABLE hx_a.victim (x int)").unwrap();
    Spi::run(&format!(
        "SELECT unleash_webhook.create_subscription('hx-a-1', {HX_URL}, ARRAY['feature-created'],
            \"authorization\" => 'Bearer a', headers => '{{\"X-A\": \"1\"}}',
            body_template => '{{{{event.type}}}}')"
    ))
    .unwrap();
    Spi::run(&format!(
        "SELECT unleash_webhook.create_subscription('hx-a-2', {HX_URL}, ARRAY['x'])"
    ))
    .unwrap();
    let original = Spi::get_one::<String>(
        "SELECT row_to_json(s)::text FROM (SELECT url, event_types, content_type, \"authorization\",
                headers, body_template, projects, environments, enabled, signing_secrets
           FROM unleash_webhook._subscriptions WHERE name = 'hx-a-1' AND dropped_at IS NULL) s",
    )
    .unwrap()
    .unwrap();
    let a = |args: &str| format!("SELECT unleash_webhook.alter_subscription({args})");
    let rows: Vec<(String, &str)> = vec![
        (a("NULL"), "22004"),
        (a("NULL, url => 'http://127.0.0.1:9/y'"), "22004"),
        (a("''"), "42704"),
        (a(HX_MB), "42704"),
        (a("'hx-a-1''); DROP TABLE hx_a.victim; --'"), "42704"),
        // Names match exactly: no case folding, no trimming.
        (a("'HX-A-1'"), "42704"),
        (a("' hx-a-1'"), "42704"),
        (a("'hx-a-1', url => ''"), "22023"),
        (a("'hx-a-1', url => 'javascript:alert(1)'"), "22023"),
        (a("'hx-a-1', url => 'file:///etc/passwd'"), "22023"),
        (a("'hx-a-1', url => 'data:,x'"), "22023"),
        (
            a("'hx-a-1', url => E'http://127.0.0.1:9/a\\r\\nHost: evil'"),
            "22023",
        ),
        (a("'hx-a-1', url => 'http://10.0.0.1/'"), "22023"),
        (a("'hx-a-1', event_types => '{}'"), "22023"),
        (a("'hx-a-1', event_types => ARRAY[NULL]::text[]"), "22023"),
        (a("'hx-a-1', event_types => ARRAY['']"), "22023"),
        (a("'hx-a-1', content_type => ''"), "22023"),
        (a("'hx-a-1', content_type => E'a\\nb'"), "22023"),
        (
            a("'hx-a-1', \"authorization\" => E'x\\r\\nSet-Cookie: a=b'"),
            "22023",
        ),
        // jsonb 'null' is not SQL NULL: it is a value, and not an object.
        (a("'hx-a-1', headers => 'null'"), "22023"),
        (a("'hx-a-1', headers => '[]'"), "22023"),
        (a("'hx-a-1', headers => '\"str\"'"), "22023"),
        (a("'hx-a-1', headers => '{\"X\": [\"a\"]}'"), "22023"),
        (a("'hx-a-1', headers => '{\"X:Y\": \"v\"}'"), "22023"),
        (
            a("'hx-a-1', headers => '{\"X\": \"a\\r\\nB: c\"}'"),
            "22023",
        ),
        (a("'hx-a-1', body_template => '{{#a}}{{/b}}'"), "22023"),
        (a("'hx-a-1', body_template => 'x {{y'"), "22023"),
        (
            a("'hx-a-1', body_template => repeat('{{^a}}', 200000)"),
            "22023",
        ),
        (a("'hx-a-1', projects => ARRAY[NULL]::text[]"), "22004"),
        (a("'hx-a-1', environments => ARRAY['a', NULL]"), "22004"),
        (a("'hx-a-1', new_name => ''"), "22023"),
        (a("'hx-a-1', new_name => '   '"), "22023"),
        (a("'hx-a-1', new_name => repeat('n', 201)"), "22023"),
        (a(&format!("'hx-a-1', new_name => {HX_MB}")), "22023"),
        (a("'hx-a-1', new_name => 'hx-a-2'"), "42710"),
        (a("'hx-a-1', signing_secret => 'whsec_'"), "22023"),
        (a("'hx-a-1', signing_secret => 'not-a-secret'"), "22023"),
        (
            a("'hx-a-1', signing_secret => 'whsec_' || repeat('QUFB', 262144)"),
            "22023",
        ),
        // The one bad argument among good ones refuses the whole call.
        (
            a("'hx-a-1', url => 'http://127.0.0.1:9/new', content_type => E'a\\r\\nb'"),
            "22023",
        ),
        // NULL means "unchanged" everywhere: a no-op. Accepted.
        (a("'hx-a-1', enabled => NULL"), "00000"),
        (a("'hx-a-1'"), "00000"),
        (
            a("'hx-a-1', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL"),
            "00000",
        ),
        // Renaming to a name with SQL in it is data; renamed back right after. Accepted.
        (
            a("'hx-a-1', new_name => 'hx-a-1''); DROP TABLE hx_a.victim; --'"),
            "00000",
        ),
        (
            a("'hx-a-1''); DROP TABLE hx_a.victim; --', new_name => 'hx-a-1'"),
            "00000",
        ),
        // Renaming to its own name is a no-op. Accepted.
        (a("'hx-a-1', new_name => 'hx-a-1'"), "00000"),
    ];
    hx_check_table("hx_alter_subscription_table", &rows);
    assert!(hx_exists("SELECT to_regclass('hx_a.victim') IS NOT NULL"));
    let after = Spi::get_one::<String>(
        "SELECT row_to_json(s)::text FROM (SELECT url, event_types, content_type, \"authorization\",
                headers, body_template, projects, environments, enabled, signing_secrets
           FROM unleash_webhook._subscriptions WHERE name = 'hx-a-1' AND dropped_at IS NULL) s",
    )
    .unwrap()
    .unwrap();
    assert_eq!(after, original, "the accepted no-ops changed a setting");
}

#[pg_test]
fn hx_name_only_functions_table() {
    for n in ["hx-n-1", "hx-n-dropped"] {
        Spi::run(&format!(
            "SELECT unleash_webhook.create_subscription('{n}', {HX_URL}, ARRAY['x'])"
        ))
        .unwrap();
    }
    Spi::run("SELECT unleash_webhook.drop_subscription('hx-n-dropped')").unwrap();
    let mut rows: Vec<(String, &str)> = Vec::new();
    for f in [
        "pause_subscription",
        "resume_subscription",
        "end_secret_rotation",
        "drop_subscription",
    ] {
        let call = |arg: &str| format!("SELECT unleash_webhook.{f}({arg})");
        rows.push((call("NULL"), "22004"));
        rows.push((call("NULL::text"), "22004"));
        rows.push((call("''"), "42704"));
        rows.push((call("'   '"), "42704"));
        rows.push((call(HX_MB), "42704"));
        rows.push((call("'hx-n-1''); DROP TABLE x; --'"), "42704"));
        rows.push((call("E'hx-n-1\\n'"), "42704"));
        rows.push((call("'HX-N-1'"), "42704"));
        // A dropped subscription is gone for every function.
        rows.push((call("'hx-n-dropped'"), "42704"));
        // Repeating a pause, resume or rotation end is harmless. Accepted.
        if f != "drop_subscription" {
            rows.push((call("'hx-n-1'"), "00000"));
            rows.push((call("'hx-n-1'"), "00000"));
        }
    }
    // drop, then drop again: the second finds nothing.
    rows.push((
        "SELECT unleash_webhook.drop_subscription('hx-n-1')".into(),
        "00000",
    ));
    rows.push((
        "SELECT unleash_webhook.drop_subscription('hx-n-1')".into(),
        "42704",
    ));
    rows.push((
        "SELECT unleash_webhook.pause_subscription('hx-n-1')".into(),
        "42704",
    ));
    hx_check_table("hx_name_only_functions_table", &rows);
}

#[pg_test]
fn hx_redeliver_replay_purge_table() {
    unleash_schema("hx_r");
    Spi::run(&format!(
        "SELECT unleash_webhook.create_subscription('hx-r-1', {HX_URL}, ARRAY['feature-created']);
         SELECT unleash_webhook.create_subscription('hx-r-gone', {HX_URL}, ARRAY['feature-created']);
         INSERT INTO hx_r.events (type, created_by, created_at) VALUES
             ('feature-created', 'u', now() - interval '1 day'), ('feature-created', 'u', NULL)"
    ))
    .unwrap();
    let live =
        count("SELECT min(id) FROM unleash_webhook.deliveries WHERE subscription = 'hx-r-1'");
    let gone =
        count("SELECT min(id) FROM unleash_webhook.deliveries WHERE subscription = 'hx-r-gone'");
    Spi::run("SELECT unleash_webhook.drop_subscription('hx-r-gone')").unwrap();
    let r = |args: &str| format!("SELECT unleash_webhook.redeliver({args})");
    let rp = |args: &str| format!("SELECT unleash_webhook.replay({args})");
    let pf = |args: &str| format!("SELECT unleash_webhook.purge_failed({args})");
    let rows: Vec<(String, &str)> = vec![
        (r("NULL"), "22004"),
        (r("-1"), "42704"),
        (r("0"), "42704"),
        (r("9223372036854775807"), "42704"),
        (r("-9223372036854775808"), "42704"),
        // A delivery of a dropped subscription: refused, with a hint to re-create it.
        (r(&gone.to_string()), "55000"),
        (r(&live.to_string()), "00000"),
        // Twice in a row is fine (pending again, same webhook-id).
        (r(&live.to_string()), "00000"),
        // ---- replay ----
        (rp("NULL, now() - interval '1 day'"), "22004"),
        (rp("'hx-r-1', NULL"), "22004"),
        (rp("'hx-r-1', now() - interval '1 day', NULL"), "22004"),
        (rp("'hx-r-1', now(), now()"), "22023"),
        (rp("'hx-r-1', 'infinity', '-infinity'"), "22023"),
        (rp("''::text, now() - interval '1 day'"), "42704"),
        (rp(&format!("{HX_MB}, now() - interval '1 day'")), "42704"),
        (rp("'hx-r-gone', now() - interval '1 day'"), "42704"),
        (
            rp("'hx-r-1''); DROP TABLE x; --', now() - interval '1 day'"),
            "42704",
        ),
        // The widest window there is: queues the one event with a created_at (NULL
        // created_at never matches a window). Accepted.
        (rp("'hx-r-1', '-infinity', 'infinity'"), "00000"),
        // ---- purge_failed ----
        (pf("''"), "42704"),
        (pf(HX_MB), "42704"),
        (pf("'hx-r-gone'"), "42704"),
        // NULL subscription = all; NULL interval = '0'. Accepted (nothing failed here).
        (pf("NULL, NULL"), "00000"),
        (pf("'hx-r-1', NULL"), "00000"),
        // A negative or absurd age is refused rather than guessed at.
        (pf("'hx-r-1', interval '-1000 years'"), "22023"),
        (pf("'hx-r-1', interval '1000000 years'"), "22023"),
    ];
    hx_check_table("hx_redeliver_replay_purge_table", &rows);
    assert_eq!(
        count("SELECT count(*) FROM unleash_webhook.deliveries WHERE subscription = 'hx-r-1'"),
        3
    );
}

#[pg_test]
fn hx_preview_arguments_table() {
    unleash_schema("hx_p");
    Spi::run(&format!(
        "SELECT unleash_webhook.create_subscription('hx-p-1', {HX_URL}, ARRAY['feature-created']);
         SELECT unleash_webhook.create_subscription('hx-p-gone', {HX_URL}, ARRAY['feature-created']);
         SELECT unleash_webhook.drop_subscription('hx-p-gone');
         INSERT INTO hx_p.events (id, type, created_by) VALUES (7200001, 'feature-created', 'u')"
    ))
    .unwrap();
    let p = |args: &str| format!("SELECT count(*) FROM unleash_webhook.preview({args})");
    let rows: Vec<(String, &str)> = vec![
        // preview's Rust half is STRICT: a NULL argument gives no row. Accepted.
        (p("NULL, NULL"), "00000"),
        (p("NULL, 7200001"), "00000"),
        (p("'hx-p-1', NULL"), "00000"),
        (p("'', 7200001"), "42704"),
        (p(&format!("{HX_MB}, 7200001")), "42704"),
        (p("'hx-p-nope', 7200001"), "42704"),
        (p("'hx-p-gone', 7200001"), "42704"),
        (p("'hx-p-1''); DROP TABLE x; --', 7200001"), "42704"),
        (p("E'hx-p-1\\r\\n', 7200001"), "42704"),
        (p("'hx-p-1', -1"), "42704"),
        (p("'hx-p-1', 0"), "42704"),
        (p("'hx-p-1', 9223372036854775807"), "42704"),
        (p("'hx-p-1', -9223372036854775808"), "42704"),
        (p("'hx-p-1', 7200001"), "00000"),
    ];
    hx_check_table("hx_preview_arguments_table", &rows);
    // preview sends nothing and queues nothing.
    assert_eq!(
        count("SELECT count(*) FROM unleash_webhook.deliveries WHERE subscription = 'hx-p-1'"),
        1
    );
}

#[pg_test]
fn hx_attach_detach_table() {
    unleash_schema("hx_at");
    Spi::run(
        "CREATE TABLE hx_at.victim (x int);
         CREATE TABLE hx_at.half (id int, type text, created_by text);
         CREATE TABLE hx_at.\"ev'); DROP TABLE hx_at.victim; --\" (LIKE hx_at.events INCLUDING DEFAULTS);
         CREATE TEMP TABLE hx_at_tmp (LIKE hx_at.events INCLUDING DEFAULTS);
         CREATE TABLE hx_at.parted (LIKE hx_at.events) PARTITION BY RANGE (id);
         CREATE VIEW hx_at.ev_view AS SELECT * FROM hx_at.events",
    )
    .unwrap();
    let rows: Vec<(String, &str)> = vec![
        ("SELECT unleash_webhook.attach(NULL)".into(), "22004"),
        (
            "SELECT unleash_webhook.attach('pg_catalog.pg_class')".into(),
            "42703",
        ),
        (
            "SELECT unleash_webhook.attach('hx_at.half')".into(),
            "42703",
        ),
        (
            "SELECT unleash_webhook.attach('hx_at.victim')".into(),
            "42703",
        ),
        (
            "SELECT unleash_webhook.attach('hx_at.parted')".into(),
            "0A000",
        ),
        (
            "SELECT unleash_webhook.attach('hx_at.ev_view')".into(),
            "42809",
        ),
        ("SELECT unleash_webhook.detach(NULL)".into(), "22004"),
        // Idempotent: attached by unleash_schema already.
        (
            "SELECT unleash_webhook.attach('hx_at.events')".into(),
            "00000",
        ),
        // A table name with SQL in it: regclass output is quoted, format('%s') keeps it so;
        // the victim survives (checked below). Accepted.
        (
            "SELECT unleash_webhook.attach('hx_at.\"ev''); DROP TABLE hx_at.victim; --\"')".into(),
            "00000",
        ),
        // A temporary copy of Unleash's table is a table like any other. Accepted.
        ("SELECT unleash_webhook.attach('hx_at_tmp')".into(), "00000"),
        // Detaching what was never attached is a no-op (DROP TRIGGER IF EXISTS), even on a
        // catalog. Accepted.
        (
            "SELECT unleash_webhook.detach('pg_catalog.pg_class')".into(),
            "00000",
        ),
        (
            "SELECT unleash_webhook.detach('hx_at.half')".into(),
            "00000",
        ),
        ("SELECT unleash_webhook.detach('hx_at_tmp')".into(), "00000"),
        ("SELECT unleash_webhook.detach('hx_at_tmp')".into(), "00000"),
    ];
    hx_check_table("hx_attach_detach_table", &rows);
    assert!(hx_exists("SELECT to_regclass('hx_at.victim') IS NOT NULL"));
    assert_eq!(
        count(
            "SELECT count(*) FROM pg_trigger WHERE tgname = 'unleash_webhook_capture' AND tgrelid IN ('hx_at.events'::regclass, 'hx_at.\"ev''); DROP TABLE hx_at.victim; --\"'::regclass)"
        ),
        2
    );
    // The oddly named table captures like the real one.
    Spi::run(&format!(
        "SELECT unleash_webhook.create_subscription('hx-at-1', {HX_URL}, ARRAY['feature-created']);
         INSERT INTO hx_at.\"ev'); DROP TABLE hx_at.victim; --\" (type, created_by) VALUES ('feature-created', 'u')"
    ))
    .unwrap();
    assert_eq!(
        count("SELECT count(*) FROM unleash_webhook.deliveries WHERE subscription = 'hx-at-1'"),
        1
    );
}

#[pg_test]
fn hx_no_argument_functions() {
    // generate_signing_secret: distinct, and every one is accepted as a secret.
    assert_eq!(
        count(
            "SELECT count(DISTINCT s) FROM (SELECT unleash_webhook.generate_signing_secret() s FROM generate_series(1, 500)) g"
        ),
        500
    );
    assert_eq!(
        count(
            "SELECT count(*) FROM (SELECT unleash_webhook.generate_signing_secret() s FROM generate_series(1, 50)) g WHERE unleash_webhook._signing_secret_error(s) IS NULL"
        ),
        50
    );
    let rows: Vec<(String, &str)> = vec![
        (
            "SELECT unleash_webhook.generate_signing_secret()".into(),
            "00000",
        ),
        (
            "SELECT count(*) FROM unleash_webhook.event_types()".into(),
            "00000",
        ),
        (
            "SELECT * FROM unleash_webhook.worker_status()".into(),
            "00000",
        ),
        ("SELECT unleash_webhook.worker_pid()".into(), "00000"),
        // The private checkers take any text, NULL included.
        ("SELECT unleash_webhook._url_error(NULL)".into(), "00000"),
        (
            format!("SELECT unleash_webhook._url_error({HX_MB})"),
            "00000",
        ),
        (
            "SELECT unleash_webhook._template_error(repeat('{{#a}}', 200000))".into(),
            "00000",
        ),
        (
            format!("SELECT unleash_webhook._signing_secret_error({HX_MB})"),
            "00000",
        ),
        (
            format!("SELECT unleash_webhook._destination_error({HX_MB})"),
            "00000",
        ),
    ];
    hx_check_table("hx_no_argument_functions", &rows);
    assert_eq!(
        count("SELECT count(*) FROM unleash_webhook.worker_status()"),
        1
    );
    // A secret's error never repeats the secret.
    let e = Spi::get_one::<String>(
        "SELECT unleash_webhook._signing_secret_error('whsec_SECRETSECRETSECRET!')",
    )
    .unwrap()
    .unwrap();
    assert!(!e.contains("SECRETSECRET"), "{e}");
}

// import_unleash_addons names its subscriptions unleash-addon-<id>, so this test cannot use the
// hx- prefix: it uses addon ids 9700xx/9701xx that no other test uses.
#[pg_test]
fn hx_import_unleash_addons_hostile_rows() {
    unleash_schema("hx_i");
    Spi::run(
        r#"INSERT INTO hx_i.addons (id, provider, enabled, parameters, events, projects, environments) VALUES
        (970001, 'webhook', true, NULL, '["feature-created"]', '[]', '[]'),
        (970002, 'webhook', true, '[]', '["feature-created"]', '[]', '[]'),
        (970003, 'webhook', true, '"http://127.0.0.1:9/i"', '["feature-created"]', '[]', '[]'),
        (970004, 'webhook', true, '{"url": "javascript:alert(1)"}', '["feature-created"]', '[]', '[]'),
        (970005, 'webhook', true, '{"url": "http://127.0.0.1:9/i", "customHeaders": "{\"X\": \"a\\r\\nB: c\"}"}', '["feature-created"]', '[]', '[]'),
        (970006, 'webhook', true, '{"url": "http://127.0.0.1:9/i", "customHeaders": "[1, 2]"}', '["feature-created"]', '[]', '[]'),
        (970007, 'webhook', true, '{"url": "http://127.0.0.1:9/i", "contentType": "text/plain\r\nX: y"}', '["feature-created"]', '[]', '[]'),
        (970008, 'webhook', true, '{"url": "http://127.0.0.1:9/i", "authorization": "a\nb"}', '["feature-created"]', '[]', '[]'),
        (970009, 'webhook', true, '{"url": "http://127.0.0.1:9/i"}', NULL, '[]', '[]'),
        (970010, 'webhook', true, '{"url": "http://127.0.0.1:9/i"}', '{"a": 1}', '[]', '[]'),
        (970011, 'webhook', true, '{"url": "http://127.0.0.1:9/i"}', '[null]', '[]', '[]'),
        (970012, 'webhook', true, '{"url": "http://127.0.0.1:9/i"}', '["feature-created"]', '"p"', '[]'),
        (970013, 'webhook', true, '{"url": "http://127.0.0.1:9/i"}', '["feature-created"]', '[]', '[null]'),
        (970014, 'webhook', true, '{"url": 123}', '["feature-created"]', '[]', '[]'),
        (970015, 'webhook', true, '{"url": "http://10.0.0.1/"}', '["feature-created"]', '[]', '[]'),
        (970016, 'webhook', true, '{"url": "http://127.0.0.1:9/i", "bodyTemplate": "{{#a}}"}', '["feature-created"]', '[]', '[]'),
        (970050, 'webhook', NULL, '{"url": "http://u:p@127.0.0.1:9/ok"}', '[1, true, "feature-created"]', '["*"]', '[]'),
        (970051, 'webhook', true, '{"url": "http://127.0.0.1:9/ok", "bodyTemplate": "{{> /etc/passwd}}"}', '["feature-created"]', '[]', '[]')"#,
    )
    .unwrap();
    Spi::run(
        "INSERT INTO hx_i.addons (id, provider, enabled, parameters, events) VALUES
            (970017, 'webhook', true,
             json_build_object('url', 'http://127.0.0.1:9/i', 'bodyTemplate', repeat('{{#a}}', 200000)),
             '[\"feature-created\"]'),
            (970052, 'webhook', true,
             json_build_object('url', 'http://127.0.0.1:9/ok', 'authorization', repeat('t', 1048576)),
             '[\"feature-created\"]')",
    )
    .unwrap();
    let rows: Vec<(String, &str)> = vec![
        (
            "SELECT count(*) FROM unleash_webhook.import_unleash_addons(NULL)".into(),
            "22004",
        ),
        (
            "SELECT count(*) FROM unleash_webhook.import_unleash_addons(NULL, true)".into(),
            "22004",
        ),
        // Every hostile row is reported as skipped; the import itself succeeds. Accepted.
        (
            "SELECT count(*) FROM unleash_webhook.import_unleash_addons('hx_i.addons', true)"
                .into(),
            "00000",
        ),
    ];
    hx_check_table("hx_import_unleash_addons_hostile_rows", &rows);
    let report = import_report("hx_i.addons", true);
    let skipped: Vec<i32> = report
        .iter()
        .filter(|r| r.2 == "skipped")
        .map(|r| r.0)
        .collect();
    assert_eq!(skipped, (970001..=970017).collect::<Vec<_>>(), "{report:?}");
    for r in &report {
        if r.2 == "skipped" {
            let detail = r.3.as_deref().unwrap_or("");
            assert!(!detail.is_empty(), "{r:?}");
            // The reason never repeats the authorization value.
            assert!(!detail.contains("a\nb"), "{r:?}");
        } else {
            assert!(r.2 == "unchanged", "{r:?}");
        }
    }
    // Skipped addons stay enabled in Unleash (disable_source only touches imported ones).
    assert_eq!(
        count("SELECT count(*) FROM hx_i.addons WHERE id BETWEEN 970001 AND 970017 AND enabled"),
        17
    );
    assert_eq!(
        count(
            "SELECT count(*) FROM unleash_webhook.subscriptions WHERE name = ANY (SELECT 'unleash-addon-' || i FROM generate_series(970001, 970017) i)"
        ),
        0
    );
    assert_eq!(
        count(
            "SELECT count(*) FROM unleash_webhook.subscriptions WHERE name IN ('unleash-addon-970050', 'unleash-addon-970051', 'unleash-addon-970052')"
        ),
        3
    );
    // A table with the right column names but text columns: refused before a row is read, as
    // a table of other types could run its owner's casts with our rights.
    Spi::run(
        "CREATE TABLE hx_i.addons2 (id int, provider text, enabled boolean, parameters text,
                                    events text, projects text, environments text);
         INSERT INTO hx_i.addons2 VALUES
            (970101, 'webhook', true, '{not json', '[]', '[]', '[]')",
    )
    .unwrap();
    assert_refused(
        "SELECT * FROM unleash_webhook.import_unleash_addons('hx_i.addons2')",
        "42804",
    );
}

/// The 69 event types Unleash's Markdown formatter has a message for: the keys of `EVENT_MAP` in
/// Unleash 8.2.0's `src/lib/addons/feature-event-formatter-md-events.ts`, listed here rather than
/// read from our own port, so that a type dropped from the port is noticed.
pub(crate) fn hx_markdown_types() -> Vec<&'static str> {
    vec![
        "addon-config-created", "addon-config-deleted", "addon-config-updated",
        "api-token-created", "api-token-deleted", "change-added", "change-discarded",
        "change-edited", "change-request-applied", "change-request-approval-added",
        "change-request-approved", "change-request-cancelled", "change-request-created",
        "change-request-discarded", "change-request-rejected", "change-request-sent-to-review",
        "change-request-scheduled", "change-request-scheduled-application-success",
        "change-request-scheduled-application-failure", "change-request-schedule-suspended",
        "context-field-created", "context-field-deleted", "context-field-updated",
        "feature-archived", "feature-created", "feature-deleted", "feature-environment-disabled",
        "feature-environment-enabled", "feature-environment-variants-updated",
        "feature-metadata-updated", "feature-completed", "feature-potentially-stale-on",
        "feature-project-change", "feature-revived", "feature-stale-off", "feature-stale-on",
        "feature-strategy-add", "feature-strategy-remove", "feature-strategy-update",
        "feature-tagged", "feature-untagged", "group-created", "group-deleted", "group-updated",
        "banner-created", "banner-deleted", "banner-updated", "project-created",
        "project-archived", "project-deleted", "segment-created", "segment-deleted",
        "segment-updated", "service-account-created", "service-account-token-created",
        "service-account-token-deleted", "service-account-deleted", "service-account-updated",
        "user-created", "user-deleted", "user-updated", "release-plan-added",
        "release-plan-removed", "release-plan-milestone-started",
        "release-plan-progressions-paused", "release-plan-progressions-resumed",
        "user-access-request-registered", "user-access-request-approved",
        "user-access-request-rejected",
    ]
}

/// (SQL text of an events row's values, expected preview SQLSTATE for every subscription).
/// Columns: id, created_at, type, created_by, data, pre_data, tags, project, environment,
/// feature_name, created_by_user_id, group_type, group_id.
fn hx_odd_events() -> Vec<(String, &'static str)> {
    let row = |id: i64, rest: &str| format!("({id}, {rest})");
    let plain = "'feature-created', 'u'";
    vec![
        // created_at NULL: "createdAt":null, {{event.createdAt}} empty. (With an environment
        // Unleash's own stat trigger refuses such a row, so Unleash cannot write one.)
        (
            row(
                7100001,
                &format!("NULL, {plain}, '{{}}', NULL, '[]', 'p', NULL, 'f', 1, NULL, NULL"),
            ),
            "00000",
        ),
        // data NULL: "data":null.
        (
            row(
                7100002,
                &format!("now(), {plain}, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL"),
            ),
            "00000",
        ),
        // JSON scalars where Unleash writes objects.
        (
            row(
                7100003,
                &format!(
                    "now(), {plain}, '\"just a string\"', '\"pre\"', '\"tag\"', NULL, NULL, NULL, NULL, NULL, NULL"
                ),
            ),
            "00000",
        ),
        (
            row(
                7100004,
                &format!("now(), {plain}, '123', '456', '0', NULL, NULL, NULL, NULL, NULL, NULL"),
            ),
            "00000",
        ),
        (
            row(
                7100005,
                &format!(
                    "now(), {plain}, 'null', 'null', 'null', NULL, NULL, NULL, NULL, NULL, NULL"
                ),
            ),
            "00000",
        ),
        (
            row(
                7100006,
                &format!(
                    "now(), {plain}, 'false', 'true', 'false', NULL, NULL, NULL, NULL, NULL, NULL"
                ),
            ),
            "00000",
        ),
        (
            row(
                7100007,
                &format!(
                    "now(), {plain}, '[]', '{{}}', '{{}}', NULL, NULL, NULL, NULL, NULL, NULL"
                ),
            ),
            "00000",
        ),
        // 10 MB of data.
        (
            row(
                7100008,
                &format!(
                    "now(), {plain}, json_build_object('big', repeat('x', 10485760)), NULL, '[]', NULL, NULL, NULL, NULL, NULL, NULL"
                ),
            ),
            "00000",
        ),
        // 5,000-level nested arrays: json accepts them; our parser stops at 200 levels, so
        // the body cannot be built: a clean 22023 with a hint.
        (
            row(
                7100009,
                &format!(
                    "now(), {plain}, (repeat('[', 5000) || repeat(']', 5000))::json, NULL, '[]', NULL, NULL, NULL, NULL, NULL, NULL"
                ),
            ),
            "22023",
        ),
        (
            row(
                7100010,
                &format!(
                    "now(), {plain}, '{{}}', (repeat('[', 300) || repeat(']', 300))::jsonb, '[]', NULL, NULL, NULL, NULL, NULL, NULL"
                ),
            ),
            "22023",
        ),
        (
            row(
                7100011,
                &format!(
                    "now(), {plain}, '{{}}', NULL, (repeat('{{\"a\":', 250) || '1' || repeat('}}', 250))::json, NULL, NULL, NULL, NULL, NULL, NULL"
                ),
            ),
            "22023",
        ),
        // 199 levels inside data (200 counting the event object): still fine.
        (
            row(
                7100012,
                &format!(
                    "now(), {plain}, (repeat('[', 199) || repeat(']', 199))::json, NULL, '[]', NULL, NULL, NULL, NULL, NULL, NULL"
                ),
            ),
            "00000",
        ),
        // Lone and reversed surrogates (json accepts them; they become U+FFFD).
        (
            row(
                7100013,
                &format!(
                    "now(), {plain}, '{{\"a\":\"\\ud800\"}}', NULL, '[\"\\udfff\"]', NULL, NULL, NULL, NULL, NULL, NULL"
                ),
            ),
            "00000",
        ),
        (
            row(
                7100014,
                &format!(
                    "now(), {plain}, '{{\"\\udc00\\ud800\":\"\\udc00\\ud800\"}}', NULL, '[]', NULL, NULL, NULL, NULL, NULL, NULL"
                ),
            ),
            "00000",
        ),
        // Huge and tiny numbers: 1e400 is Infinity in JavaScript, printed null.
        (
            row(
                7100015,
                &format!(
                    "now(), {plain}, '1e400', NULL, '[-1e400, 1e-400, 123456789012345678901234567890]', NULL, NULL, NULL, NULL, NULL, NULL"
                ),
            ),
            "00000",
        ),
        (
            row(
                7100016,
                &format!(
                    "now(), {plain}, ('{{\"n\": 1' || repeat('0', 100000) || '}}')::json, NULL, '[]', NULL, NULL, NULL, NULL, NULL, NULL"
                ),
            ),
            "00000",
        ),
        // Control characters, escaped as json requires; \u0000 is legal json text.
        (
            row(
                7100017,
                &format!(
                    "now(), {plain}, '{{\"a\":\"\\u0001\\u001f\\u007f\\b\\f\\u2028\\u0000\"}}', NULL, '[]', NULL, NULL, NULL, NULL, NULL, NULL"
                ),
            ),
            "00000",
        ),
        // created_at at the ends of what JavaScript's Date holds, and beyond.
        (
            row(
                7100018,
                &format!(
                    "'200000-01-01', {plain}, NULL, NULL, '[]', NULL, NULL, NULL, NULL, NULL, NULL"
                ),
            ),
            "00000",
        ),
        (
            row(
                7100019,
                &format!(
                    "'4713-01-01 BC', {plain}, NULL, NULL, '[]', NULL, NULL, NULL, NULL, NULL, NULL"
                ),
            ),
            "00000",
        ),
        (
            row(
                7100020,
                &format!(
                    "'275760-09-13 00:00:00.001+00', {plain}, NULL, NULL, '[]', NULL, NULL, NULL, NULL, NULL, NULL"
                ),
            ),
            "00000",
        ),
        // Odd strings everywhere: markup, mustache, quotes, CR/LF, 255-character fields.
        (
            row(
                7100021,
                "now(), 'feature-created', '<script>{{event.type}}</script>', '{\"name\": \"{{{eventJson}}}\", \"__proto__\": {\"x\": 1}, \"constructor\": 1}', '{\"b\": \"x\"}', '[{\"type\": \"simple\", \"value\": \"\\r\\n\"}]', E'p\\r\\n', E'e\\\"', '\"; DROP TABLE x; --', -2147483648, '', 'g'",
            ),
            "00000",
        ),
        (
            row(
                7100022,
                "now(), repeat('t', 255), repeat('u', 255), '{}', NULL, '[]', repeat('p', 100000), repeat('e', 100000), repeat('f', 100000), 2147483647, repeat('g', 1000), repeat('h', 1000)",
            ),
            "00000",
        ),
        // 100k-element array, and a data string that is the eventMarkdown placeholder.
        (
            row(
                7100023,
                &format!(
                    "now(), {plain}, (SELECT json_agg(i) FROM generate_series(1, 100000) i), NULL, '[]', NULL, NULL, NULL, NULL, NULL, NULL"
                ),
            ),
            "00000",
        ),
        (
            row(
                7100024,
                &format!(
                    "now(), {plain}, '{{\"a\": \"\\u0000UNLEASH_EVENT_MARKDOWN\\u0000\"}}', NULL, '[]', NULL, NULL, NULL, NULL, NULL, NULL"
                ),
            ),
            "00000",
        ),
        // preData whose toString is not a function: String(preData) throws in V8 ("Cannot
        // convert object to primitive value") and in ours, so hx-ev-tpl's {{{event.preData}}}
        // is refused cleanly (22023, see HX_TPL_THROWS); the other subscriptions render it.
        (
            row(
                7100025,
                &format!(
                    "now(), {plain}, '{{}}', '{{\"toString\": \"x\"}}', '[]', NULL, NULL, NULL, NULL, NULL, NULL"
                ),
            ),
            "00000",
        ),
    ]
}

/// The odd event on which hx-ev-tpl's template throws, as mustache.js would.
const HX_TPL_THROWS: &str = "7100025";

#[pg_test]
fn hx_odd_events_through_capture_and_preview() {
    unleash_schema("hx_ev");
    let subs = [
        ("hx-ev-json", "NULL"),
        // Everything a template can reach, plus a partial that must stay empty.
        (
            "hx-ev-tpl",
            "'{{{eventJson}}}|{{event.createdAt}}|{{eventMarkdown}}|{{> /etc/passwd}}|{{#event.data}}<{{.}}>{{/event.data}}|{{event.data.a}}|{{{event.preData}}}|{{#event.tags}}{{type}}{{/event.tags}}|{{event.data.constructor}}{{event.toString}}{{event.data.length}}'",
        ),
        (
            "hx-ev-md",
            "'{\"text\": \"{{eventMarkdown}}\", \"raw\": {{{eventMarkdown}}}}'",
        ),
    ];
    for (name, template) in subs {
        Spi::run(&format!(
            "SELECT unleash_webhook.create_subscription('{name}', {HX_URL}, ARRAY(SELECT unleash_webhook.event_types() UNION SELECT repeat('t', 255)), body_template => {template})"
        ))
        .unwrap();
    }
    let events = hx_odd_events();
    for (values, _) in &events {
        Spi::run(&format!(
            "INSERT INTO hx_ev.events (id, created_at, type, created_by, data, pre_data, tags, project, environment, feature_name, created_by_user_id, group_type, group_id) VALUES {values}"
        ))
        .unwrap();
    }
    // The capture trigger queued every odd row for every subscription.
    assert_eq!(
        count("SELECT count(*) FROM unleash_webhook.deliveries WHERE subscription LIKE 'hx-ev-%'"),
        i64::try_from(events.len() * subs.len()).unwrap()
    );
    let mut rows: Vec<(String, &str)> = Vec::new();
    for (values, want) in &events {
        let id: String = values[1..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        for (name, _) in subs {
            let want = if name == "hx-ev-tpl" && id == HX_TPL_THROWS {
                "22023"
            } else {
                want
            };
            rows.push((
                format!("SELECT length(body) FROM unleash_webhook.preview('{name}', {id})"),
                want,
            ));
        }
    }
    hx_check_table("hx_odd_events_through_capture_and_preview", &rows);
    let body = |name: &str, id: i64| {
        Spi::get_one::<String>(&format!(
            "SELECT body FROM unleash_webhook.preview('{name}', {id})"
        ))
        .unwrap()
        .unwrap()
    };
    assert!(body("hx-ev-json", 7100001).contains("\"createdAt\":null"));
    assert!(
        body("hx-ev-json", 7100003)
            .contains("\"data\":\"just a string\",\"preData\":\"pre\",\"tags\":\"tag\"")
    );
    assert!(body("hx-ev-json", 7100004).contains("\"data\":123,\"preData\":456,\"tags\":[]"));
    assert!(body("hx-ev-json", 7100015).contains("\"data\":null"));
    assert!(body("hx-ev-json", 7100013).contains("\"data\":{\"a\":\"\u{fffd}\"}"));
    assert!(body("hx-ev-json", 7100017).contains("\\u0001\\u001f\u{7f}\\b\\f\u{2028}\\u0000"));
    assert!(body("hx-ev-json", 7100018).contains("\"createdAt\":\"+200000-01-01T00:00:00.000Z\""));
    // Beyond Date's range (8.64e15 ms): an invalid Date, printed null.
    assert!(body("hx-ev-json", 7100020).contains("\"createdAt\":null"));
    assert!(
        count("SELECT length(body)::int8 FROM unleash_webhook.preview('hx-ev-json', 7100008)")
            > 10_485_760
    );
    let tpl = body("hx-ev-tpl", 7100021);
    assert!(!tpl.contains("root:"), "{tpl}");
    // data is never rendered as a template: its mustache text comes out literally.
    assert!(tpl.contains("{{{eventJson}}}"), "{tpl}");
    // The markdown line escapes markup only as Unleash does, and never breaks the JSON.
    let md = body("hx-ev-md", 7100021);
    assert!(md.starts_with("{\"text\": \""), "{md}");
}

#[pg_test]
fn hx_markdown_for_every_known_type_and_odd_data() {
    unleash_schema("hx_md");
    let types = hx_markdown_types();
    assert!(types.len() > 60, "{}", types.len());
    let list = types
        .iter()
        .map(|t| format!("'{t}'"))
        .collect::<Vec<_>>()
        .join(", ");
    Spi::run(&format!(
        "SELECT unleash_webhook.create_subscription('hx-md-1', {HX_URL}, ARRAY[{list}], body_template => '{{{{eventMarkdown}}}}')"
    ))
    .unwrap();
    // Every known type with data and preData the formatter does not expect.
    Spi::run(&format!(
        "INSERT INTO hx_md.events (type, created_by, data, pre_data, feature_name, project, environment)
         SELECT t, 'u', d::json, d::jsonb, f, p, e
           FROM unnest(ARRAY[{list}]) t,
                unnest(ARRAY[NULL, '\"s\"', '123', '[]', '{{}}', 'null',
                             '{{\"strategyName\": 5, \"constraints\": 7, \"parameters\": [], \"name\": {{}}, \"variants\": \"v\", \"segments\": [null]}}',
                             '{{\"constraints\": [{{\"contextName\": null, \"operator\": \"NOPE\", \"values\": 3}}], \"parameters\": {{\"rollout\": null}}}}']) d,
                (VALUES (NULL, NULL, NULL), ('f', 'p', 'production')) o(f, p, e)"
    ))
    .unwrap();
    let ids: Vec<i64> = Spi::connect(|client| {
        let rows = client.select("SELECT id::int8 FROM hx_md.events ORDER BY id", None, &[])?;
        let mut out = Vec::new();
        for r in rows {
            out.push(r.get::<i64>(1)?.unwrap());
        }
        Ok::<_, pgrx::spi::Error>(out)
    })
    .unwrap();
    assert_eq!(ids.len(), types.len() * 8 * 2);
    // One statement over all of them: any failure aborts it with its SQLSTATE.
    let got = sqlstate_of(
        "SELECT count(*) FROM hx_md.events e, unleash_webhook.preview('hx-md-1', e.id) p WHERE p.body <> ''",
    );
    assert_eq!(got, "00000|");
    assert_eq!(
        count(
            "SELECT count(*) FROM hx_md.events e, unleash_webhook.preview('hx-md-1', e.id) p WHERE p.body <> ''"
        ),
        i64::try_from(ids.len()).unwrap()
    );
    // Each listed type has its own message: none falls back to Unleash's text for a type the
    // formatter does not know ("*<user>* triggered *<type>*").
    assert_eq!(
        count(
            "SELECT count(*) FROM hx_md.events e, unleash_webhook.preview('hx-md-1', e.id) p
              WHERE p.body = '*u* triggered *' || e.type || '*'"
        ),
        0
    );
}

#[pg_test]
fn hx_render_limits_and_partials_via_preview() {
    unleash_schema("hx_l");
    Spi::run(
        "INSERT INTO hx_l.events (id, type, created_by, data) VALUES
            (7300001, 'feature-created', 'u', '[0,1,2,3,4,5,6,7,8,9]'),
            (7300002, 'feature-created', 'u', json_build_object('big', repeat('x', 10485760))),
            (7300003, 'feature-created', 'u', '{\"a\": 1}')",
    )
    .unwrap();
    let tpl = |name: &str, template: &str| {
        Spi::run(&format!(
            "SELECT unleash_webhook.create_subscription('{name}', {HX_URL}, ARRAY['feature-created'], body_template => {template})"
        ))
        .unwrap();
    };
    // 10^12 iterations: stopped by the step limit.
    tpl(
        "hx-l-work",
        "repeat('{{#event.data}}', 12) || 'x' || repeat('{{/event.data}}', 12)",
    );
    // 8 copies of a 10 MB eventJson: stopped by the 64 MiB output limit.
    tpl("hx-l-big", "repeat('{{{eventJson}}}', 8)");
    tpl(
        "hx-l-part",
        "'[{{> /etc/passwd}}][{{>../../../../etc/passwd}}][{{>.}}][{{> event}}]'",
    );
    tpl(
        "hx-l-delim",
        "'{{=<% %>=}}<%event.type%>|<%={{ }}=%>{{event.id}}'",
    );
    // A Date method on something that is not a Date: mustache.js throws a TypeError.
    tpl(
        "hx-l-type",
        "'{{event.data.a.getTime}}{{#event.type}}{{getFullYear}}{{/event.type}}'",
    );
    let rows: Vec<(String, &str)> = vec![
        (
            "SELECT length(body) FROM unleash_webhook.preview('hx-l-work', 7300001)".into(),
            "22023",
        ),
        (
            "SELECT length(body) FROM unleash_webhook.preview('hx-l-big', 7300002)".into(),
            "22023",
        ),
        (
            "SELECT length(body) FROM unleash_webhook.preview('hx-l-big', 7300003)".into(),
            "00000",
        ),
        (
            "SELECT length(body) FROM unleash_webhook.preview('hx-l-part', 7300003)".into(),
            "00000",
        ),
        (
            "SELECT length(body) FROM unleash_webhook.preview('hx-l-delim', 7300003)".into(),
            "00000",
        ),
        (
            "SELECT length(body) FROM unleash_webhook.preview('hx-l-type', 7300003)".into(),
            "00000",
        ),
    ];
    hx_check_table("hx_render_limits_and_partials_via_preview", &rows);
    let body = |name: &str, id: i64| {
        Spi::get_one::<String>(&format!(
            "SELECT body FROM unleash_webhook.preview('{name}', {id})"
        ))
        .unwrap()
        .unwrap()
    };
    assert_eq!(body("hx-l-part", 7300003), "[][][][]");
    assert_eq!(body("hx-l-delim", 7300003), "feature-created|7300003");
}

// ---------------------------------------------------------------------------------------------
// Defects found by the tests above. Each asserts the correct behaviour and fails today.
// ---------------------------------------------------------------------------------------------

#[pg_test]
fn hx_fixed_created_at_out_of_int8_range() {
    unleash_schema("hx_bi");
    Spi::run(&format!(
        "SELECT unleash_webhook.create_subscription('hx-bi-1', {HX_URL}, ARRAY['feature-created']);
         INSERT INTO hx_bi.events (id, created_at, type, created_by) VALUES
            (7400001, 'infinity', 'feature-created', 'u'),
            (7400002, '-infinity', 'feature-created', 'u'),
            (7400003, '294276-01-01 00:00:00+00', 'feature-created', 'u')"
    ))
    .unwrap();
    for id in [7400001, 7400002, 7400003] {
        // Outside JavaScript's Date range: createdAt is null, as event_json documents.
        let stmt = format!("SELECT body FROM unleash_webhook.preview('hx-bi-1', {id})");
        assert_eq!(sqlstate_of(&stmt), "00000|", "event {id}");
        let body = Spi::get_one::<String>(&stmt).unwrap().unwrap();
        assert!(body.contains("\"createdAt\":null"), "{body}");
    }
}

#[pg_test]
fn hx_fixed_managed_header_names_are_accepted() {
    Spi::run(&format!(
        "SELECT unleash_webhook.create_subscription('hx-bh-1', {HX_URL}, ARRAY['x'])"
    ))
    .unwrap();
    for name in ["Host", "content-length", "Transfer-Encoding", "CONNECTION"] {
        assert_refused(
            &format!(
                "SELECT unleash_webhook.create_subscription('hx-bh-2', {HX_URL}, ARRAY['x'], headers => '{{\"{name}\": \"0\"}}')"
            ),
            "22023",
        );
        assert_refused(
            &format!(
                "SELECT unleash_webhook.alter_subscription('hx-bh-1', headers => '{{\"{name}\": \"0\"}}')"
            ),
            "22023",
        );
    }
}

#[pg_test]
fn hx_fixed_empty_authorization_is_sent() {
    unleash_schema("hx_ba");
    Spi::run(&format!(
        "SELECT unleash_webhook.create_subscription('hx-ba-1', {HX_URL}, ARRAY['feature-created'], \"authorization\" => '');
         INSERT INTO hx_ba.events (id, type, created_by) VALUES (7500001, 'feature-created', 'u')"
    ))
    .unwrap();
    assert!(hx_exists(
        "SELECT NOT has_authorization FROM unleash_webhook.subscriptions WHERE name = 'hx-ba-1'"
    ));
    assert!(hx_exists(
        "SELECT NOT (headers ? 'Authorization') FROM unleash_webhook.preview('hx-ba-1', 7500001)"
    ));
}

#[pg_test]
fn hx_fixed_purge_failed_huge_interval() {
    // Out of the documented range (0 to 1000 years): refused as invalid, with a hint.
    assert_refused(
        "SELECT unleash_webhook.purge_failed(NULL, interval '1000000 years')",
        "22023",
    );
    assert_refused(
        "SELECT unleash_webhook.purge_failed(NULL, interval '-1 second')",
        "22023",
    );
}

#[pg_test]
fn hx_fixed_import_from_a_table_that_is_not_addons() {
    Spi::run("CREATE SCHEMA hx_bimp; CREATE TABLE hx_bimp.t (x int)").unwrap();
    assert_refused(
        "SELECT * FROM unleash_webhook.import_unleash_addons('hx_bimp.t')",
        "42703",
    );
}

#[pg_test]
fn hx_fixed_attach_a_view() {
    unleash_schema("hx_bv");
    Spi::run(
        "CREATE VIEW hx_bv.v AS SELECT * FROM hx_bv.events;
         CREATE MATERIALIZED VIEW hx_bv.mv AS SELECT * FROM hx_bv.events",
    )
    .unwrap();
    assert_refused("SELECT unleash_webhook.attach('hx_bv.v')", "42809");
    assert_refused("SELECT unleash_webhook.attach('hx_bv.mv')", "42809");
}

#[pg_test]
fn hx_fixed_attach_checks_no_column_types() {
    Spi::run(
        "CREATE SCHEMA hx_bt;
         CREATE TABLE hx_bt.events (id uuid DEFAULT gen_random_uuid(), type text, created_by text,
             created_at timestamptz, data json, pre_data jsonb, tags json, project text,
             environment text, feature_name text, created_by_user_id int, group_type text,
             group_id text)",
    )
    .unwrap();
    // The README promises 42804 (datatype_mismatch) for an events column of the wrong type.
    assert_refused("SELECT unleash_webhook.attach('hx_bt.events')", "42804");
}

#[pg_test]
fn hx_fixed_multidimensional_arrays() {
    for args in [
        "ARRAY[['a','b'],['c','d']]",
        "ARRAY['x'], projects => ARRAY[['a'],['b']]",
        "ARRAY['x'], environments => ARRAY[['a'],['b']]",
    ] {
        assert_refused(
            &format!("SELECT unleash_webhook.create_subscription('hx-bm-1', {HX_URL}, {args})"),
            "22023",
        );
    }
}

#[pg_test]
fn hx_fixed_preview_truncates_body_at_nul() {
    unleash_schema("hx_bn");
    Spi::run(&format!(
        "SELECT unleash_webhook.create_subscription('hx-bn-1', {HX_URL}, ARRAY['feature-created'], body_template => '[{{{{{{event.data.a}}}}}}]');
         INSERT INTO hx_bn.events (id, type, created_by, data) VALUES (7600001, 'feature-created', 'u', '{{\"a\":\"x\\u0000y\"}}')"
    ))
    .unwrap();
    // PostgreSQL text cannot hold U+0000: the body carries U+FFFD instead, in the request,
    // in preview and in request_body alike.
    let body = Spi::get_one::<String>("SELECT body FROM unleash_webhook.preview('hx-bn-1', 7600001)")
        .unwrap()
        .unwrap();
    assert_eq!(body, "[x\u{FFFD}y]");
}
