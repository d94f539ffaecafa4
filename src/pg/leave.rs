//! The worker leaves its database when asked, as autovacuum does.
//!
//! `DROP DATABASE`, `ALTER DATABASE ... RENAME` or `SET TABLESPACE`, and `CREATE DATABASE ...
//! TEMPLATE` all refuse to run while another session is connected to the database they name,
//! and the worker is connected to its database for life. So every backend runs these
//! statements through a `ProcessUtility` hook: when one names the worker's database, the
//! backend asks the worker to leave (shared memory, see `wake::ask_worker_to_leave`), waits for
//! it to go, runs the statement, and lets it come back. The worker exits; the postmaster starts
//! it again two seconds later, and it waits until the statement is over before it connects
//! (to a database that may no longer exist, which it then waits for as at any start).

use crate::pg::{gucs, wake};
use pgrx::pg_sys;
use pgrx::prelude::*;
use std::ffi::CStr;
use std::time::Duration;

static mut PREV_PROCESS_UTILITY: pg_sys::ProcessUtility_hook_type = None;

/// How long a statement waits for the worker to go: it finishes the attempts in flight for up
/// to two seconds before it exits.
const LEAVE_WAIT: Duration = Duration::from_secs(10);

/// Installs the hook. `_PG_init`, preload branch only.
pub fn init() {
    // SAFETY: _PG_init runs once per process, before any query; hooks are chained as Postgres
    // expects (the previous one is called from ours).
    unsafe {
        PREV_PROCESS_UTILITY = pg_sys::ProcessUtility_hook;
        pg_sys::ProcessUtility_hook = Some(process_utility);
    }
}

#[pg_guard]
#[allow(clippy::too_many_arguments)]
unsafe extern "C-unwind" fn process_utility(
    pstmt: *mut pg_sys::PlannedStmt,
    query: *const std::ffi::c_char,
    read_only_tree: bool,
    context: pg_sys::ProcessUtilityContext::Type,
    params: pg_sys::ParamListInfo,
    query_env: *mut pg_sys::QueryEnvironment,
    dest: *mut pg_sys::DestReceiver,
    qc: *mut pg_sys::QueryCompletion,
) {
    // SAFETY: the hook's contract: the same arguments go on to the next hook or the standard
    // implementation, whichever way our check ends.
    unsafe {
        let next = || match PREV_PROCESS_UTILITY {
            Some(prev) => prev(
                pstmt,
                query,
                read_only_tree,
                context,
                params,
                query_env,
                dest,
                qc,
            ),
            None => pg_sys::standard_ProcessUtility(
                pstmt,
                query,
                read_only_tree,
                context,
                params,
                query_env,
                dest,
                qc,
            ),
        };
        let Some(what) = names_our_database((*pstmt).utilityStmt) else {
            next();
            return;
        };
        if !wake::ask_worker_to_leave(LEAVE_WAIT) {
            warning!(
                "unleash_webhook: the delivery worker did not leave database \"{}\" within {} s for {what}",
                gucs::database_name(),
                LEAVE_WAIT.as_secs()
            );
        }
        PgTryBuilder::new(next)
            .finally(wake::worker_may_return)
            .execute();
    }
}

/// What the statement does to the worker's database, if it needs the worker gone from it.
unsafe fn names_our_database(node: *mut pg_sys::Node) -> Option<&'static str> {
    if node.is_null() {
        return None;
    }
    let ours = gucs::database_name();
    let is_ours = |name: *const std::ffi::c_char| {
        // SAFETY: a NUL-terminated string of the parse tree, or NULL.
        !name.is_null() && unsafe { CStr::from_ptr(name) }.to_bytes() == ours.as_bytes()
    };
    // SAFETY: the node's tag says which struct it is.
    unsafe {
        match (*node).type_ {
            pg_sys::NodeTag::T_DropdbStmt => {
                is_ours((*node.cast::<pg_sys::DropdbStmt>()).dbname).then_some("DROP DATABASE")
            }
            pg_sys::NodeTag::T_RenameStmt => {
                let stmt = node.cast::<pg_sys::RenameStmt>();
                ((*stmt).renameType == pg_sys::ObjectType::OBJECT_DATABASE
                    && is_ours((*stmt).subname))
                .then_some("ALTER DATABASE ... RENAME")
            }
            pg_sys::NodeTag::T_AlterDatabaseStmt => {
                let stmt = node.cast::<pg_sys::AlterDatabaseStmt>();
                (is_ours((*stmt).dbname) && has_option((*stmt).options, c"tablespace", None))
                    .then_some("ALTER DATABASE ... SET TABLESPACE")
            }
            pg_sys::NodeTag::T_CreatedbStmt => {
                let stmt = node.cast::<pg_sys::CreatedbStmt>();
                has_option((*stmt).options, c"template", Some(&ours))
                    .then_some("CREATE DATABASE ... TEMPLATE")
            }
            _ => None,
        }
    }
}

/// Whether the DefElem list has option `name` (with the string value `value`, when given).
unsafe fn has_option(options: *mut pg_sys::List, name: &CStr, value: Option<&str>) -> bool {
    if options.is_null() {
        return false;
    }
    // SAFETY: a List of DefElem, as the grammar makes it for these statements.
    unsafe {
        (0..(*options).length as usize).any(|i| {
            let def = (*(*options).elements.add(i))
                .ptr_value
                .cast::<pg_sys::DefElem>();
            if def.is_null() || CStr::from_ptr((*def).defname) != name {
                return false;
            }
            match value {
                None => true,
                Some(want) => {
                    !(*def).arg.is_null()
                        && CStr::from_ptr(pg_sys::defGetString(def)).to_bytes() == want.as_bytes()
                }
            }
        })
    }
}
