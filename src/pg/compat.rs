//! What differs between the PostgreSQL versions we build for (14 to 18), in one place.
//!
//! Each function is one operation, spelled as that version's headers spell it; the rest of the
//! crate calls these and has no `#[cfg]` of its own for a PostgreSQL version. Found by building
//! and testing on each version (`tests/run.sh` runs every one):
//!
//! | what | 14-16 | 17 | 18 |
//! |---|---|---|---|
//! | this backend's local transaction id | `MyProc->lxid` | `MyProc->vxid.lxid` | same as 17 |
//! | this process's PGPROC number | `MyProc->pgprocno` | `MyProcNumber` | same as 17 |
//! | `CreateWaitEventSet` | takes a memory context | takes a resource owner | same as 17 |
//! | a tuple descriptor's attributes | `TupleDesc->attrs[]` | same | `TupleDescAttr()` only |
//! | installing a signal handler | `pqsignal` | same | `pqsignal_be` in the backend |
//! | `transaction_timeout` | does not exist | applies to background workers | same as 17 |
//!
//! One difference needs no code here: on 14 every role may create objects in `public` (from 15
//! only the database's owner). Our background processes pin their search_path to pg_catalog
//! on every version (`gucs::pin_session`), so nothing created there is ever called by them.

use pgrx::pg_sys;
use std::ffi::c_int;

#[cfg(feature = "pg13")]
compile_error!("unleash_webhook builds for PostgreSQL 14 to 18 (Unleash supports 14 and newer)");
#[cfg(not(any(
    feature = "pg13",
    feature = "pg14",
    feature = "pg15",
    feature = "pg16",
    feature = "pg17",
    feature = "pg18"
)))]
compile_error!("unleash_webhook builds for PostgreSQL 14 to 18: enable one of pg14 ... pg18");

/// This backend's local transaction id, the counter half of its virtual transaction id.
///
/// # Safety
/// A backend with its PGPROC set up (any backend or background worker after start-up).
pub unsafe fn local_transaction_id() -> u32 {
    // SAFETY: MyProc is this process's own PGPROC, valid for its whole life (the caller's
    // contract).
    unsafe {
        #[cfg(any(feature = "pg14", feature = "pg15", feature = "pg16"))]
        let lxid = (*pg_sys::MyProc).lxid;
        #[cfg(any(feature = "pg17", feature = "pg18"))]
        let lxid = (*pg_sys::MyProc).vxid.lxid;
        lxid
    }
}

/// This process's index in `ProcGlobal->allProcs`, where another process finds its latch.
///
/// # Safety
/// As [`local_transaction_id`].
pub unsafe fn my_proc_number() -> i32 {
    // SAFETY: as above; MyProcNumber (17+) is set together with MyProc.
    unsafe {
        #[cfg(any(feature = "pg14", feature = "pg15", feature = "pg16"))]
        let number = (*pg_sys::MyProc).pgprocno;
        #[cfg(any(feature = "pg17", feature = "pg18"))]
        let number = pg_sys::MyProcNumber;
        number
    }
}

/// A wait event set for `nevents` events that lives as long as the process.
///
/// # Safety
/// A backend or background worker, after its memory contexts exist.
pub unsafe fn create_wait_event_set(nevents: c_int) -> *mut pg_sys::WaitEventSet {
    // SAFETY: the caller's contract. From 17 the set is allocated in TopMemoryContext and
    // tracked by the given resource owner; none (NULL) makes it live as long as the process,
    // which is what TopMemoryContext gave before 17.
    unsafe {
        #[cfg(any(feature = "pg14", feature = "pg15", feature = "pg16"))]
        let set = pg_sys::CreateWaitEventSet(pg_sys::TopMemoryContext, nevents);
        #[cfg(any(feature = "pg17", feature = "pg18"))]
        let set = pg_sys::CreateWaitEventSet(std::ptr::null_mut(), nevents);
        set
    }
}

/// The attributes (columns, dropped ones included) of a tuple descriptor, in order.
///
/// # Safety
/// `desc` is a valid tuple descriptor that outlives the slice.
pub unsafe fn attributes<'a>(desc: pg_sys::TupleDesc) -> &'a [pg_sys::FormData_pg_attribute] {
    // SAFETY: the caller's contract; natts attributes follow each other in memory in every
    // version (18 puts them after the compact attributes, which only TupleDescAttr knows).
    unsafe {
        let natts = usize::try_from((*desc).natts).unwrap_or(0);
        #[cfg(not(feature = "pg18"))]
        let attrs = (*desc).attrs.as_slice(natts);
        #[cfg(feature = "pg18")]
        let attrs = if natts == 0 {
            &[]
        } else {
            std::slice::from_raw_parts(pg_sys::TupleDescAttr(desc, 0), natts)
        };
        attrs
    }
}

/// Installs `handler` for `signal`, as Postgres's backend code does.
///
/// # Safety
/// `handler` must be async-signal-safe (Postgres's own handlers are).
pub unsafe fn set_signal_handler(signal: c_int, handler: unsafe extern "C-unwind" fn(c_int)) {
    // SAFETY: the caller's contract. 18 names the backend's version pqsignal_be (pqsignal is a
    // macro for it there) and no longer returns the previous handler, which we never used.
    unsafe {
        #[cfg(not(feature = "pg18"))]
        pg_sys::pqsignal(signal, Some(handler));
        #[cfg(feature = "pg18")]
        pg_sys::pqsignal_be(signal, Some(handler));
    }
}

/// Turns off, for this process, the timeouts that exist only on some versions and would end
/// a background process of ours: from 17, `transaction_timeout` (in postgresql.conf, or set
/// for the database or role) ends a background worker's transaction with a FATAL, as it ends
/// a client's. The worker's transactions are short, but each exit costs a batch and a restart;
/// the vacuum helper's VACUUM of a busy queue takes seconds. Neither holds anything a client
/// waits for. The timeouts of every version are pinned with the other settings
/// (`gucs::pin_session`), after connecting.
///
/// Called before connecting to a database, as autovacuum does for its workers: connecting runs
/// transactions already, which a short timeout may end, and an override wins over the
/// database's and role's settings (and the session-level pins) and over reloads.
pub fn disable_timeouts_before_connecting() {
    // SAFETY: static C strings; SetConfigOption copies them. Before InitPostgres no transaction
    // is open, so the setting's assign hook has no timer to change.
    #[cfg(any(feature = "pg17", feature = "pg18"))]
    unsafe {
        pg_sys::SetConfigOption(
            c"transaction_timeout".as_ptr(),
            c"0".as_ptr(),
            pg_sys::GucContext::PGC_SUSET,
            pg_sys::GucSource::PGC_S_OVERRIDE,
        );
    }
}
