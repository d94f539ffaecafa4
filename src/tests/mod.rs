//! Test suites that span modules (the unit tests sit beside what they test; the #[pg_test]
//! suites `sql_api.rs` and `hostile.rs` are included by lib.rs's `tests` module, which pgrx's
//! harness needs inline).

mod boundary;
mod mustache_crate;
mod mustache_js;
mod properties;
