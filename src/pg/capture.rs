//! The capture trigger: `BEFORE INSERT ON events FOR EACH ROW`, and where it writes.
//!
//! It runs inside Unleash's INSERT, so every microsecond it takes is Unleash's. The first
//! version was plpgsql joining the new rows with the subscriptions and inserting one
//! `_deliveries` row (with three index entries) per event and subscription: with 10
//! subscriptions Unleash's INSERT rate fell to 0.45-0.68 of what it was without the trigger. This
//! one reads the row and `_subscriptions` directly (no SPI, no planner) and matches in Rust; what
//! matched is kept in backend memory until the statement's rows are all in, then written as ONE
//! `_inbox` row per statement, in a table without indexes, listing every (event, subscription)
//! pair. The worker turns inbox rows into deliveries (`_flush_inbox()`), in its own transaction,
//! a moment after the commit.
//!
//! Why BEFORE ROW, and why the write happens at `ExecutorFinish`: Unleash's own AFTER ROW
//! trigger on `events` upserts one counter row per (day, environment) in
//! `stat_environment_updates`, so every INSERT into `events` holds that row's lock from its
//! AFTER triggers to its COMMIT, and concurrent inserters queue behind it (perf: 25-34% idle CPU
//! with 4 clients, waiting in XactLockTableWait). Work done in an AFTER trigger runs in that
//! queue: as an AFTER statement trigger ours cost 12% of Unleash's INSERT rate. The rows are
//! matched before they are written, and the inbox row is written when the statement's rows are
//! in but before its AFTER triggers fire (`standard_ExecutorFinish` fires them), so all of it
//! runs beside the other inserters.
//!
//! Nothing is lost by keeping rows in memory for that moment: the inbox row is written in the
//! same (sub)transaction as its events, in a logged table, before anything can commit
//! (`ExecutorFinish`; and at the latest before a subtransaction or the transaction commits or
//! prepares, for inserts that do not finish through the executor, such as COPY). What an
//! aborted (sub)transaction captured is dropped with it. The worker deletes an inbox row in the
//! same transaction that inserts its deliveries.

use crate::core::matching::Filter;
use crate::pg::{compat, wake};
use pgrx::prelude::*;
use pgrx::{FromDatum, IntoDatum};
use std::cell::RefCell;
use std::ffi::CStr;
use std::rc::Rc;

#[pg_trigger]
fn _capture<'a>(
    trigger: &'a pgrx::PgTrigger<'a>,
) -> Result<Option<PgHeapTuple<'a, AllocatedByPostgres>>, PgHeapTupleError> {
    let td = trigger.trigger_data();
    let before_row_insert = pgrx::trigger_support::trigger_fired_before(td.tg_event)
        && pgrx::trigger_support::trigger_fired_for_row(td.tg_event)
        && pgrx::trigger_support::trigger_fired_by_insert(td.tg_event);
    if !before_row_insert {
        error!(
            "unleash_webhook._capture() must run BEFORE INSERT FOR EACH ROW; use unleash_webhook.attach()"
        );
    }
    // SAFETY: called by the trigger manager with a valid TriggerData for this row.
    unsafe { capture(td) };
    // The row goes in unchanged.
    Ok(trigger.new())
}

/// The columns of `_subscriptions` the filter needs.
struct Subscription {
    id: i64,
    filter: Filter,
}

static mut PREV_EXECUTOR_FINISH: pg_sys::ExecutorFinish_hook_type = None;

/// Installs the `ExecutorFinish` hook that writes what a statement captured. `_PG_init`,
/// preload branch only.
pub fn init() {
    // SAFETY: _PG_init runs once per process, before any query; hooks are chained as Postgres
    // expects (the previous one is called from ours).
    unsafe {
        PREV_EXECUTOR_FINISH = pg_sys::ExecutorFinish_hook;
        pg_sys::ExecutorFinish_hook = Some(executor_finish);
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn executor_finish(query: *mut pg_sys::QueryDesc) {
    // The statement's rows are in; its AFTER triggers fire in standard_ExecutorFinish.
    if PENDING.with_borrow(|pending| !pending.is_empty()) {
        write_pending();
    }
    // SAFETY: the hook's contract: pass the same QueryDesc on.
    unsafe {
        match PREV_EXECUTOR_FINISH {
            Some(prev) => prev(query),
            None => pg_sys::standard_ExecutorFinish(query),
        }
    }
}

/// One captured event: the subscriptions it matched, and the subtransaction that inserted it.
struct Captured {
    subxact: pg_sys::SubTransactionId,
    table: pg_sys::Oid,
    event_id: i64,
    event_type: String,
    subs: Vec<i64>,
}

thread_local! {
    /// What the trigger matched and has not written yet, in capture order.
    static PENDING: RefCell<Vec<Captured>> = const { RefCell::new(Vec::new()) };
    static CALLBACKS_REGISTERED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Past this many pending events a statement's are written at once, so that a huge INSERT
/// ... SELECT does not hold them all in memory.
const MAX_PENDING: usize = 1_000;

/// Pairs per inbox row: a row's deliveries are numbered `id * PAIRS_PER_ROW + i` (the same
/// 1,000 as in sql/bootstrap.sql and the worker).
pub const PAIRS_PER_ROW: usize = 1_000;

/// Matches the row being inserted against the enabled subscriptions; what matched waits in
/// [`PENDING`] for [`write_pending`].
unsafe fn capture(td: &pg_sys::TriggerData) {
    unsafe {
        if !CALLBACKS_REGISTERED.replace(true) {
            // Once per backend, before anything is cached or pending; they live as long as the
            // process.
            pg_sys::RegisterXactCallback(Some(on_xact_event), std::ptr::null_mut());
            pg_sys::RegisterSubXactCallback(Some(on_subxact_event), std::ptr::null_mut());
        }
        let subscriptions = enabled_subscriptions();
        if subscriptions.is_empty() {
            return;
        }
        let rel = td.tg_relation;
        let desc = (*rel).rd_att;
        let col = |name: &CStr| attnum(desc, name);
        let (id_col, type_col, project_col, env_col, announced_col) = (
            col(c"id"),
            col(c"type"),
            col(c"project"),
            col(c"environment"),
            col(c"announced"),
        );
        let (Some(id_col), Some(type_col)) = (id_col, type_col) else {
            error!("unleash_webhook: the events table has no id or type column");
        };
        let slot = td.tg_trigslot;
        let last = [
            Some(id_col),
            Some(type_col),
            project_col,
            env_col,
            announced_col,
        ]
        .into_iter()
        .flatten()
        .max()
        .unwrap_or(1);
        pg_sys::slot_getsomeattrs_int(slot, last);
        // Unleash sends what its announcer finds unannounced; a row that arrives announced
        // already (a data-only restore of old events) was sent long ago, by Unleash or by us.
        if announced_col.is_some_and(|c| bool_at(slot, desc, c) == Some(true)) {
            return;
        }
        let Some(id) = int_at(slot, desc, id_col) else {
            return;
        };
        let event_type = text_at(slot, desc, type_col);
        let project = project_col.and_then(|c| text_at(slot, desc, c));
        let environment = env_col.and_then(|c| text_at(slot, desc, c));
        let subs: Vec<i64> = subscriptions
            .iter()
            .filter(|s| {
                s.filter.matches(
                    event_type.as_deref(),
                    project.as_deref(),
                    environment.as_deref(),
                )
            })
            .map(|s| s.id)
            .collect();
        if subs.is_empty() {
            return;
        }
        let subxact = pg_sys::GetCurrentSubTransactionId();
        let full = PENDING.with_borrow_mut(|pending| {
            pending.push(Captured {
                subxact,
                table: (*rel).rd_id,
                event_id: id,
                event_type: event_type.unwrap_or_default(),
                subs,
            });
            pending.len() >= MAX_PENDING
        });
        if full {
            write_pending();
        }
    }
}

/// Writes what the current subtransaction captured as one inbox row per events table. Entries of
/// enclosing subtransactions stay: written here, they would be lost if this one rolled back.
fn write_pending() {
    // SAFETY: a plain read of the transaction state.
    let current = unsafe { pg_sys::GetCurrentSubTransactionId() };
    let mine: Vec<Captured> = PENDING.with_borrow_mut(|pending| {
        if pending.last().is_none_or(|c| c.subxact != current) {
            return Vec::new();
        }
        let keep = pending.iter().take_while(|c| c.subxact != current).count();
        pending.split_off(keep)
    });
    if mine.is_empty() {
        return;
    }
    let mut tables: Vec<pg_sys::Oid> = mine.iter().map(|c| c.table).collect();
    // (COPY into one table, then another, then the first: all three may be pending at once)
    tables.sort_unstable_by_key(|t| t.to_u32());
    tables.dedup();
    // SAFETY: inside a transaction (the trigger or a pre-commit callback runs us).
    let inbox = unsafe { Inbox::open() };
    for table in tables {
        // The table's pairs, PAIRS_PER_ROW to an inbox row: each row lists its events once and
        // its pairs as (index into those, subscription).
        let mut row = InboxRow::default();
        for c in mine.iter().filter(|c| c.table == table) {
            for &sub in &c.subs {
                if row.pair_subs.len() == PAIRS_PER_ROW {
                    // SAFETY: as above.
                    unsafe { inbox.insert(table, std::mem::take(&mut row)) };
                }
                if row.event_ids.last() != Some(&c.event_id) {
                    row.event_ids.push(c.event_id);
                    row.types.push(c.event_type.clone());
                }
                // 1-based, as SQL arrays are
                row.pair_events.push(row.event_ids.len() as i32);
                row.pair_subs.push(sub);
            }
        }
        // SAFETY: as above.
        unsafe { inbox.insert(table, row) };
    }
    // SAFETY: as above.
    unsafe { inbox.close() };
    wake::queued_in_transaction();
}

#[pg_guard]
unsafe extern "C-unwind" fn on_xact_event(
    event: pg_sys::XactEvent::Type,
    _arg: *mut std::ffi::c_void,
) {
    match event {
        // Still inside the transaction: the write commits (or prepares) with the events.
        pg_sys::XactEvent::XACT_EVENT_PRE_COMMIT | pg_sys::XactEvent::XACT_EVENT_PRE_PREPARE => {
            write_pending()
        }
        pg_sys::XactEvent::XACT_EVENT_ABORT | pg_sys::XactEvent::XACT_EVENT_PARALLEL_ABORT => {
            PENDING.with_borrow_mut(Vec::clear);
            SCANNED_WITH.set(None);
        }
        _ => {}
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn on_subxact_event(
    event: pg_sys::SubXactEvent::Type,
    subxact: pg_sys::SubTransactionId,
    _parent: pg_sys::SubTransactionId,
    _arg: *mut std::ffi::c_void,
) {
    match event {
        // Written inside the subtransaction, before it becomes part of its parent.
        pg_sys::SubXactEvent::SUBXACT_EVENT_PRE_COMMIT_SUB => write_pending(),
        // Its events and those of its children (later ids) are gone.
        pg_sys::SubXactEvent::SUBXACT_EVENT_ABORT_SUB => {
            PENDING.with_borrow_mut(|pending| pending.retain(|c| c.subxact < subxact));
            SCANNED_WITH.set(None);
        }
        _ => {}
    }
}

/// Looks up a relation of our schema; an error if it is missing (the extension is broken).
unsafe fn our_table(schema: pg_sys::Oid, name: &CStr) -> pg_sys::Oid {
    let oid = unsafe { pg_sys::get_relname_relid(name.as_ptr(), schema) };
    if oid == pg_sys::InvalidOid {
        error!(
            "unleash_webhook: table {} is missing; ALTER EXTENSION unleash_webhook UPDATE",
            name.to_string_lossy()
        );
    }
    oid
}

/// The column's number (1-based) in `desc`, if it exists and is not dropped.
unsafe fn attnum(desc: pg_sys::TupleDesc, name: &CStr) -> Option<i32> {
    unsafe {
        compat::attributes(desc)
            .iter()
            .position(|a| !a.attisdropped && CStr::from_ptr(a.attname.data.as_ptr()) == name)
            .map(|i| i as i32 + 1)
    }
}

/// The type of column `col` (1-based) as it is now: Unleash's role may retype a column at any
/// time (ALTER TABLE), so every value is read as what the catalog says it is, never as what
/// attach() once checked.
unsafe fn type_of(desc: pg_sys::TupleDesc, col: i32) -> pg_sys::Oid {
    unsafe { compat::attributes(desc)[(col - 1) as usize].atttypid }
}

/// The datum of column `col` (1-based), None when NULL.
unsafe fn datum_at(slot: *mut pg_sys::TupleTableSlot, col: i32) -> Option<pg_sys::Datum> {
    unsafe {
        let i = (col - 1) as usize;
        (!*(*slot).tts_isnull.add(i)).then(|| *(*slot).tts_values.add(i))
    }
}

/// The id column, when it is an integer (attach() allows int2, int4 and int8). An id of any
/// other type (a retyped column) cannot be looked up by the worker: the row is not captured,
/// and a WARNING says why.
unsafe fn int_at(
    slot: *mut pg_sys::TupleTableSlot,
    desc: pg_sys::TupleDesc,
    col: i32,
) -> Option<i64> {
    unsafe {
        let datum = datum_at(slot, col)?;
        match type_of(desc, col) {
            pg_sys::INT2OID => Some(i64::from(i16::from_datum(datum, false)?)),
            pg_sys::INT4OID => Some(i64::from(i32::from_datum(datum, false)?)),
            pg_sys::INT8OID => i64::from_datum(datum, false),
            other => {
                let name = std::ffi::CStr::from_ptr(pg_sys::format_type_be(other));
                warning!(
                    "unleash_webhook: events.id is of type {} now, not an integer: this event is not delivered",
                    name.to_string_lossy()
                );
                None
            }
        }
    }
}

/// A boolean column, None when NULL or of another type.
unsafe fn bool_at(
    slot: *mut pg_sys::TupleTableSlot,
    desc: pg_sys::TupleDesc,
    col: i32,
) -> Option<bool> {
    unsafe {
        if type_of(desc, col) != pg_sys::BOOLOID {
            return None;
        }
        bool::from_datum(datum_at(slot, col)?, false)
    }
}

/// A column as text: text and varchar directly, any other type (a column retyped by an ALTER
/// TABLE, a domain) through its type's output function, as `::text` would print it.
unsafe fn text_at(
    slot: *mut pg_sys::TupleTableSlot,
    desc: pg_sys::TupleDesc,
    col: i32,
) -> Option<String> {
    unsafe {
        let datum = datum_at(slot, col)?;
        match type_of(desc, col) {
            pg_sys::TEXTOID | pg_sys::VARCHAROID => String::from_datum(datum, false),
            other => {
                let (mut output, mut varlena) = (pg_sys::InvalidOid, false);
                pg_sys::getTypeOutputInfo(other, &mut output, &mut varlena);
                let text = pg_sys::OidOutputFunctionCall(output, datum);
                let out = std::ffi::CStr::from_ptr(text)
                    .to_string_lossy()
                    .into_owned();
                pg_sys::pfree(text.cast());
                Some(out)
            }
        }
    }
}

/// Identifies one version of one `_subscriptions` row: a row version never changes (an UPDATE
/// writes a new one with a new xmin), so equal keys mean equal contents.
#[derive(Clone, Copy, PartialEq, Eq)]
struct RowVersion {
    table: u32,
    block: u32,
    offset: u16,
    xmin: u32,
}

/// What decides which row versions a snapshot sees, within one backend: the transaction, the
/// snapshot's bounds, its command id (this transaction's own changes), and how many transactions
/// had completed when it was taken (Postgres reuses a snapshot's contents while that count is
/// unchanged, for the same reason). Equal keys see the same `_subscriptions` rows, except
/// after a rollback of this transaction's own changes: the cache is cleared on every abort.
#[derive(Clone, Copy, PartialEq, Eq)]
struct SnapshotKey {
    lxid: u32,
    xmin: u32,
    xmax: u32,
    curcid: u32,
    completions: u64,
}

thread_local! {
    /// The parsed subscriptions of the last scan and the row versions they came from. Turning
    /// each statement's rows into Rust values again was most of the trigger's own work.
    static CACHE: RefCell<(Vec<RowVersion>, Rc<Vec<Subscription>>)> = RefCell::default();
    /// The snapshot the last scan was made with: the rows of one multi-row INSERT (or COPY)
    /// share it, so the scan is made once per statement rather than once per row.
    static SCANNED_WITH: std::cell::Cell<Option<SnapshotKey>> = const { std::cell::Cell::new(None) };
}

/// The key of the active snapshot.
unsafe fn snapshot_key() -> SnapshotKey {
    unsafe {
        let snap = pg_sys::GetActiveSnapshot();
        SnapshotKey {
            lxid: compat::local_transaction_id(),
            xmin: (*snap).xmin.into(),
            xmax: (*snap).xmax.into(),
            curcid: (*snap).curcid,
            completions: (*snap).snapXactCompletionCount,
        }
    }
}

/// The enabled subscriptions, as the statement's snapshot sees them. A plain heap scan: the
/// table has a handful of rows, and a scan costs less than planning a query. The visible row
/// versions are compared with the last scan's; only when they differ are the rows parsed again.
unsafe fn enabled_subscriptions() -> Rc<Vec<Subscription>> {
    unsafe {
        let key = snapshot_key();
        if SCANNED_WITH.get() == Some(key) {
            return CACHE.with_borrow(|(_, subs)| subs.clone());
        }
        let schema = pg_sys::get_namespace_oid(c"unleash_webhook".as_ptr(), false);
        let oid = our_table(schema, c"_subscriptions");
        let rel = pg_sys::table_open(oid, pg_sys::AccessShareLock as pg_sys::LOCKMODE);
        let flags = pg_sys::ScanOptions::SO_TYPE_SEQSCAN
            | pg_sys::ScanOptions::SO_ALLOW_STRAT
            | pg_sys::ScanOptions::SO_ALLOW_PAGEMODE;
        let scan = pg_sys::heap_beginscan(
            rel,
            pg_sys::GetActiveSnapshot(),
            0,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            flags,
        );
        let mut versions = Vec::new();
        loop {
            let tuple = pg_sys::heap_getnext(scan, pg_sys::ScanDirection::ForwardScanDirection);
            if tuple.is_null() {
                break;
            }
            let tid = (*tuple).t_self;
            versions.push(RowVersion {
                table: oid.to_u32(),
                block: (u32::from(tid.ip_blkid.bi_hi) << 16) | u32::from(tid.ip_blkid.bi_lo),
                offset: tid.ip_posid,
                xmin: (*(*tuple).t_data).t_choice.t_heap.t_xmin.into(),
            });
        }
        let cached = CACHE.with_borrow(|(seen, subs)| (*seen == versions).then(|| subs.clone()));
        let subs = match cached {
            Some(subs) => subs,
            None => {
                pg_sys::heap_rescan(scan, std::ptr::null_mut(), false, false, false, false);
                let subs = Rc::new(parse_subscriptions(rel, scan));
                CACHE.set((versions, subs.clone()));
                subs
            }
        };
        pg_sys::heap_endscan(scan);
        pg_sys::table_close(rel, pg_sys::AccessShareLock as pg_sys::LOCKMODE);
        SCANNED_WITH.set(Some(key));
        subs
    }
}

/// Reads the enabled subscriptions' filters from a (rescanned) scan of `_subscriptions`.
unsafe fn parse_subscriptions(
    rel: pg_sys::Relation,
    scan: pg_sys::TableScanDesc,
) -> Vec<Subscription> {
    let mut out = Vec::new();
    unsafe {
        let desc = (*rel).rd_att;
        let natts = (*desc).natts as usize;
        let cols = [
            c"id",
            c"enabled",
            c"event_types",
            c"projects",
            c"environments",
        ]
        .map(|name| attnum(desc, name).map(|n| (n - 1) as usize));
        let [
            Some(id),
            Some(enabled),
            Some(types),
            Some(projects),
            Some(envs),
        ] = cols
        else {
            error!("unleash_webhook: _subscriptions lacks a column the capture trigger reads");
        };
        let mut values = vec![pg_sys::Datum::from(0usize); natts];
        let mut nulls = vec![true; natts];
        loop {
            let tuple = pg_sys::heap_getnext(scan, pg_sys::ScanDirection::ForwardScanDirection);
            if tuple.is_null() {
                break;
            }
            pg_sys::heap_deform_tuple(tuple, desc, values.as_mut_ptr(), nulls.as_mut_ptr());
            if bool::from_datum(values[enabled], nulls[enabled]) != Some(true) {
                continue;
            }
            let Some(sub_id) = i64::from_datum(values[id], nulls[id]) else {
                continue;
            };
            let list = |c: usize| -> Vec<Option<String>> {
                Vec::<Option<String>>::from_datum(values[c], nulls[c]).unwrap_or_default()
            };
            out.push(Subscription {
                id: sub_id,
                filter: Filter {
                    event_types: list(types),
                    projects: list(projects),
                    environments: list(envs),
                },
            });
        }
    }
    out
}

unsafe extern "C-unwind" {
    /// commands/sequence.h, not in pgrx's bindings: nextval() without its privilege check.
    /// Called through pg_guard_ffi_boundary, which turns a Postgres ERROR into a Rust unwind.
    #[link_name = "nextval_internal"]
    fn nextval_internal_unguarded(relid: pg_sys::Oid, check_permissions: bool) -> i64;
}

unsafe fn nextval_internal(relid: pg_sys::Oid, check_permissions: bool) -> i64 {
    // SAFETY: a plain C call inside a transaction; errors are caught at the boundary.
    unsafe {
        pg_sys::ffi::pg_guard_ffi_boundary(|| nextval_internal_unguarded(relid, check_permissions))
    }
}

/// One inbox row's content.
#[derive(Default)]
struct InboxRow {
    event_ids: Vec<i64>,
    types: Vec<String>,
    pair_events: Vec<i32>,
    pair_subs: Vec<i64>,
}

/// `_inbox`, open for inserts: direct heap inserts, since the table has no index, trigger or
/// constraint beyond NOT NULL, all filled here.
struct Inbox {
    rel: pg_sys::Relation,
    /// `_inbox_seq`, or None for a 0.2.0 schema (a new library before ALTER EXTENSION UPDATE),
    /// whose inbox has no id column.
    seq: Option<pg_sys::Oid>,
}

impl Inbox {
    unsafe fn open() -> Inbox {
        unsafe {
            let schema = pg_sys::get_namespace_oid(c"unleash_webhook".as_ptr(), false);
            let rel = pg_sys::table_open(
                our_table(schema, c"_inbox"),
                pg_sys::RowExclusiveLock as pg_sys::LOCKMODE,
            );
            let desc = (*rel).rd_att;
            let with_id = attnum(desc, c"id") == Some(1);
            let expected = [
                c"event_table",
                c"event_ids",
                c"event_types",
                c"pair_events",
                c"pair_subs",
                c"queued_at",
            ];
            let first = i32::from(with_id) + 1;
            if (*desc).natts as usize != expected.len() + usize::from(with_id)
                || expected
                    .iter()
                    .enumerate()
                    .any(|(i, name)| attnum(desc, name) != Some(i as i32 + first))
            {
                error!("unleash_webhook: _inbox does not have the expected columns");
            }
            let seq = with_id.then(|| our_table(schema, c"_inbox_seq"));
            Inbox { rel, seq }
        }
    }

    /// Inserts `row` (nothing when it is empty).
    unsafe fn insert(&self, events_table: pg_sys::Oid, row: InboxRow) {
        if row.pair_subs.is_empty() {
            return;
        }
        unsafe {
            let desc = (*self.rel).rd_att;
            let mut values: Vec<pg_sys::Datum> = Vec::with_capacity(7);
            if let Some(seq) = self.seq {
                // The row's delivery ids are fixed here, in the event's transaction. Unleash's
                // role has no right on the sequence, and needs none: this is our trigger.
                values.push(pg_sys::Datum::from(nextval_internal(seq, false)));
            }
            values.extend(
                [
                    events_table.into_datum(),
                    row.event_ids.into_datum(),
                    row.types.into_datum(),
                    row.pair_events.into_datum(),
                    row.pair_subs.into_datum(),
                    Some(pg_sys::Datum::from(
                        pg_sys::GetCurrentTransactionStartTimestamp(),
                    )),
                ]
                .map(|d| d.unwrap_or(pg_sys::Datum::from(0usize))),
            );
            let mut nulls = vec![false; values.len()];
            let tuple = pg_sys::heap_form_tuple(desc, values.as_mut_ptr(), nulls.as_mut_ptr());
            pg_sys::simple_heap_insert(self.rel, tuple);
        }
    }

    unsafe fn close(self) {
        // The lock is kept to the end of the transaction, as the executor would.
        unsafe { pg_sys::table_close(self.rel, pg_sys::NoLock as pg_sys::LOCKMODE) };
    }
}
