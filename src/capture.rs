//! The capture trigger: `BEFORE INSERT ON events FOR EACH ROW`.
//!
//! It runs inside Unleash's INSERT, so every microsecond it takes is Unleash's. The first
//! version was plpgsql joining the new rows with the subscriptions and inserting one
//! `_deliveries` row (with three index entries) per event and subscription: with 10
//! subscriptions Unleash's INSERT rate fell to 0.45-0.68 of what it was without the trigger. This
//! one reads the row and `_subscriptions` directly (no SPI, no planner), matches in Rust, and
//! writes ONE `_inbox` row per matching event, in a table without indexes, listing the
//! subscriptions. The worker turns inbox rows into deliveries (`_flush_inbox()`), in its own
//! transaction, a moment after the commit.
//!
//! Nothing is lost by the extra step: the inbox row is written in the event's transaction, in a
//! logged table, and the worker deletes it in the same transaction that inserts the deliveries.
//! A row that never lands (its INSERT fails, or its subtransaction rolls back) takes its inbox
//! row with it.

use crate::matching::Filter;
use crate::wake;
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

/// Queues the row being inserted for every enabled subscription it matches.
///
/// Why BEFORE ROW: Unleash's own AFTER ROW trigger on `events` upserts one counter row per
/// (day, environment) in `stat_environment_updates`, so every INSERT into `events` holds that
/// row's lock from its AFTER triggers to its COMMIT, and concurrent inserters queue behind it.
/// Any work done in an AFTER trigger (ours was a statement trigger with a transition table)
/// runs inside that serialized stretch, and cost 10% of Unleash's INSERT rate with 4 clients.
/// Done before the row is written, the same work runs in parallel with the other inserters.
unsafe fn capture(td: &pg_sys::TriggerData) {
    unsafe {
        let schema = pg_sys::get_namespace_oid(c"unleash_webhook".as_ptr(), false);
        let subscriptions = enabled_subscriptions(schema);
        if subscriptions.is_empty() {
            return;
        }
        let rel = td.tg_relation;
        let desc = (*rel).rd_att;
        let col = |name: &CStr| attnum(desc, name);
        let (id_col, type_col, project_col, env_col) = (
            col(c"id"),
            col(c"type"),
            col(c"project"),
            col(c"environment"),
        );
        let (Some(id_col), Some(type_col)) = (id_col, type_col) else {
            error!("unleash_webhook: the events table has no id or type column");
        };
        let slot = td.tg_trigslot;
        let last = [Some(id_col), Some(type_col), project_col, env_col]
            .into_iter()
            .flatten()
            .max()
            .unwrap_or(1);
        pg_sys::slot_getsomeattrs_int(slot, last);
        let Some(id) = int_at(slot, desc, id_col) else {
            return;
        };
        let event_type = text_at(slot, type_col);
        let project = project_col.and_then(|c| text_at(slot, c));
        let environment = env_col.and_then(|c| text_at(slot, c));
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
        insert_inbox(
            schema,
            (*rel).rd_id,
            id,
            event_type.unwrap_or_default(),
            subs,
        );
    }
    wake::queued_in_transaction();
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
        let attrs = (*desc).attrs.as_slice((*desc).natts as usize);
        attrs
            .iter()
            .position(|a| !a.attisdropped && CStr::from_ptr(a.attname.data.as_ptr()) == name)
            .map(|i| i as i32 + 1)
    }
}

/// The id column: attach() allows int2, int4 and int8.
unsafe fn int_at(
    slot: *mut pg_sys::TupleTableSlot,
    desc: pg_sys::TupleDesc,
    col: i32,
) -> Option<i64> {
    unsafe {
        let i = (col - 1) as usize;
        if *(*slot).tts_isnull.add(i) {
            return None;
        }
        let datum = *(*slot).tts_values.add(i);
        let typ = (*desc).attrs.as_slice((*desc).natts as usize)[i].atttypid;
        Some(match typ {
            pg_sys::INT2OID => i64::from(i16::from_datum(datum, false)?),
            pg_sys::INT4OID => i64::from(i32::from_datum(datum, false)?),
            _ => i64::from_datum(datum, false)?,
        })
    }
}

/// A text or varchar column (the same representation).
unsafe fn text_at(slot: *mut pg_sys::TupleTableSlot, col: i32) -> Option<String> {
    unsafe {
        let i = (col - 1) as usize;
        let null = *(*slot).tts_isnull.add(i);
        String::from_datum(*(*slot).tts_values.add(i), null)
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

thread_local! {
    /// The parsed subscriptions of the last scan and the row versions they came from. Turning
    /// each statement's rows into Rust values again was most of the trigger's own work.
    static CACHE: RefCell<(Vec<RowVersion>, Rc<Vec<Subscription>>)> = RefCell::default();
}

/// The enabled subscriptions, as the statement's snapshot sees them. A plain heap scan: the
/// table has a handful of rows, and a scan costs less than planning a query. The visible row
/// versions are compared with the last scan's; only when they differ are the rows parsed again.
unsafe fn enabled_subscriptions(schema: pg_sys::Oid) -> Rc<Vec<Subscription>> {
    unsafe {
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

/// Writes the event and the subscriptions it matched as one `_inbox` row. A direct heap insert:
/// the table has no index, trigger or constraint beyond NOT NULL, all filled here.
unsafe fn insert_inbox(
    schema: pg_sys::Oid,
    events_table: pg_sys::Oid,
    event_id: i64,
    event_type: String,
    subs: Vec<i64>,
) {
    unsafe {
        let oid = our_table(schema, c"_inbox");
        let rel = pg_sys::table_open(oid, pg_sys::RowExclusiveLock as pg_sys::LOCKMODE);
        let desc = (*rel).rd_att;
        let expected = [
            c"event_table",
            c"event_id",
            c"event_type",
            c"subs",
            c"queued_at",
        ];
        if (*desc).natts as usize != expected.len()
            || expected
                .iter()
                .enumerate()
                .any(|(i, name)| attnum(desc, name) != Some(i as i32 + 1))
        {
            error!("unleash_webhook: _inbox does not have the expected columns");
        }
        let mut values = [
            events_table.into_datum(),
            event_id.into_datum(),
            event_type.into_datum(),
            subs.into_datum(),
            Some(pg_sys::Datum::from(
                pg_sys::GetCurrentTransactionStartTimestamp(),
            )),
        ]
        .map(|d| d.unwrap_or(pg_sys::Datum::from(0usize)));
        let mut nulls = [false; 5];
        let tuple = pg_sys::heap_form_tuple(desc, values.as_mut_ptr(), nulls.as_mut_ptr());
        pg_sys::simple_heap_insert(rel, tuple);
        // The lock is kept to the end of the transaction, as the executor would.
        pg_sys::table_close(rel, pg_sys::NoLock as pg_sys::LOCKMODE);
    }
}
