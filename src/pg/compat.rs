//! What differs between the PostgreSQL versions the extension supports, in one place.

/// Session settings that exist only on some versions, pinned with the others
/// (`gucs::pin_session`): from 17 a transaction_timeout set for the database would end our
/// transactions too.
#[cfg(any(feature = "pg17", feature = "pg18"))]
pub const EXTRA_SESSION_SETTINGS: &[(&str, &str)] = &[("transaction_timeout", "0")];
#[cfg(not(any(feature = "pg17", feature = "pg18")))]
pub const EXTRA_SESSION_SETTINGS: &[(&str, &str)] = &[];
