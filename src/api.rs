//! The Rust half of the SQL API: checks the plpgsql functions in `sql/finalize.sql` call, and
//! small read-only functions. Subscription management itself is plpgsql, where the SQLSTATEs
//! and hints are easiest to read.

use crate::template::Template;
use pgrx::prelude::*;

/// NULL when `template` compiles (or is NULL), else mustache.js's message for it.
#[pg_extern(immutable, parallel_safe)]
fn _template_error(template: Option<&str>) -> Option<String> {
    Template::compile(template?).err().map(|e| e.to_string())
}

/// NULL when `url` is an absolute http(s) URL with a host, else what is wrong with it.
#[pg_extern(immutable, parallel_safe)]
fn _url_error(url: Option<&str>) -> Option<String> {
    match url {
        None => Some("url must not be NULL".to_string()),
        Some(u) => crate::http::check_url(u).err(),
    }
}

/// The delivery worker's pid, or NULL when none runs (library not preloaded, or restarting).
#[pg_extern(volatile, parallel_safe)]
fn worker_pid() -> Option<i32> {
    crate::wake::worker_pid()
}
