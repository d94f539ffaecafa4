//! The pure core: what Unleash would send, in plain Rust. Nothing here imports pgrx (checked by
//! `suites::boundary`), so all of it is tested with plain `#[test]`s and proptest.

pub mod event_json;
pub mod js;
pub mod markdown;
pub mod matching;
pub mod request;
pub mod signing;
pub mod template;
