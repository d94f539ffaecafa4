//! The queue as the worker sees it: the inbox, the delivery log, the events. All SPI.
//!
//! Every function runs inside a transaction the worker opened (`worker::txn`, or a
//! subtransaction of it: [`isolated`]) and returns `Err` with Postgres's message rather than
//! raising, so that one bad statement or row costs that statement or row, never the worker.
//!
//! Every statement names its objects with their schema, and the worker runs with
//! `search_path = pg_catalog, pg_temp`: nothing that the owner of Unleash's tables creates can
//! stand in for what these statements call.

use crate::core::event_json::EventRow;
use crate::pg::capture::PAIRS_PER_ROW;
use pgrx::datum::TimestampWithTimeZone;
use pgrx::prelude::*;
use pgrx::spi::{OwnedPreparedStatement, SpiClient, SpiResult};
use pgrx::{PgBuiltInOids, PgOid};
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::panic::AssertUnwindSafe;

/// An inbox row: a statement's captured events and its (event, subscription) pairs.
pub struct InboxRow {
    pub id: i64,
    pub event_table: pg_sys::Oid,
    /// (event id, event type), indexed by the pairs.
    pub events: Vec<(i64, String)>,
    /// (index into `events`, subscription id), the pair's position is its delivery's number.
    pub pairs: Vec<(usize, i64)>,
    pub queued_at: TimestampWithTimeZone,
    /// Delivery ids of this row that already have a `_deliveries` row (recorded before a
    /// restart): they are not sent again.
    pub done: Vec<i64>,
}

impl InboxRow {
    /// The delivery id of pair `i` (0-based).
    pub fn delivery_id(&self, i: usize) -> i64 {
        self.id * PAIRS_PER_ROW as i64 + i as i64
    }
}

/// A subscription's stored settings, with the version (the row's xmin: any UPDATE changes it)
/// the worker compares with what it has parsed.
pub struct SubscriptionRow {
    pub id: i64,
    pub version: i64,
    pub enabled: bool,
    pub dropped: bool,
    pub url: String,
    pub content_type: String,
    pub authorization: Option<String>,
    pub headers_json: String,
    pub body_template: Option<String>,
    pub signing_secrets: Vec<String>,
}

/// A delivery taken from `_deliveries` (a retry, a redelivery, one put aside).
pub struct Claimed {
    pub delivery_id: i64,
    pub subscription_id: i64,
    pub event_table: pg_sys::Oid,
    pub event_id: i64,
    pub event_type: String,
    pub created_at: TimestampWithTimeZone,
    pub attempt: i32,
    pub round_attempt: i32,
    pub has_body: bool,
}

/// What happened to one delivery, ready to be written: an attempt's outcome, or (without an
/// attempt) a delivery cancelled or put aside as pending.
pub struct Outcome {
    pub delivery_id: i64,
    /// Whether the delivery has a `_deliveries` row already (claimed from there), else it is
    /// an inbox pair and this writes its row.
    pub has_row: bool,
    pub subscription_id: i64,
    pub event_table: pg_sys::Oid,
    pub event_id: i64,
    pub event_type: String,
    pub created_at: TimestampWithTimeZone,
    /// The attempt, if one was made.
    pub attempt: Option<AttemptRecord>,
    /// 'delivered', 'failed', 'pending' (a retry, or put aside) or 'cancelled'.
    pub new_status: &'static str,
    pub retry_in_ms: f64,
    pub last_error: Option<String>,
}

impl Outcome {
    /// The same outcome without anything that could keep it from being written (body,
    /// excerpt, error text): its status and `reason` only.
    pub fn stripped(&self, reason: String) -> Outcome {
        Outcome {
            delivery_id: self.delivery_id,
            has_row: self.has_row,
            subscription_id: self.subscription_id,
            event_table: self.event_table,
            event_id: self.event_id,
            event_type: String::new(),
            created_at: self.created_at,
            attempt: self.attempt.as_ref().map(|a| AttemptRecord {
                number: a.number,
                started_epoch: a.started_epoch,
                duration_ms: a.duration_ms,
                status_code: a.status_code,
                error_class: Some("internal".to_string()),
                excerpt: None,
                body: None,
                content_hash: a.content_hash,
            }),
            new_status: if self.new_status == "delivered" {
                "delivered"
            } else {
                "failed"
            },
            retry_in_ms: 0.0,
            last_error: Some(reason.chars().take(300).collect()),
        }
    }
}

/// One HTTP attempt (or a failure to make one: render error, event gone).
pub struct AttemptRecord {
    /// The attempt's number over the delivery's life (1-based).
    pub number: i32,
    pub started_epoch: f64,
    pub duration_ms: f64,
    pub status_code: Option<i32>,
    pub error_class: Option<String>,
    pub excerpt: Option<String>,
    /// The body, stored with the first attempt only.
    pub body: Option<String>,
    pub content_hash: Option<i64>,
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// The worker's hot statements, planned once and kept across transactions (SPI_keepplan):
/// planning them cost more than running them. Dropped after any error, since a DROP or ALTER
/// EXTENSION can invalidate them.
#[derive(Default)]
pub struct Plans {
    inbox: Option<OwnedPreparedStatement>,
    subscriptions: Option<OwnedPreparedStatement>,
    insert: Option<OwnedPreparedStatement>,
    update: Option<OwnedPreparedStatement>,
    delete_inbox: Option<OwnedPreparedStatement>,
    claim: Option<OwnedPreparedStatement>,
    /// The events SELECT, per events table.
    events: HashMap<pg_sys::Oid, OwnedPreparedStatement>,
}

impl Plans {
    /// Forgets the kept plans; they are prepared again on next use.
    pub fn reset(&mut self) {
        *self = Plans::default();
    }

    /// Forgets the events statement of one table (after it failed: the table changed).
    pub fn forget_events(&mut self, table: pg_sys::Oid) {
        self.events.remove(&table);
    }
}

/// The statement kept in `slot`, prepared and kept there first if it is empty.
fn kept<'a>(
    slot: &'a mut Option<OwnedPreparedStatement>,
    client: &SpiClient<'_>,
    sql: &str,
    types: &[PgBuiltInOids],
) -> SpiResult<&'a OwnedPreparedStatement> {
    let stmt = match slot.take() {
        Some(stmt) => stmt,
        None => client.prepare_mut(sql, &oids(types))?.keep(),
    };
    Ok(slot.insert(stmt))
}

fn oids(types: &[PgBuiltInOids]) -> Vec<PgOid> {
    types.iter().map(|t| PgOid::BuiltIn(*t)).collect()
}

/// Runs `f` in a subtransaction: an error (a Postgres ERROR or an `Err`) rolls back only what
/// `f` did and comes back as `Err(message)`; the enclosing transaction goes on.
pub fn isolated<R>(f: impl FnOnce() -> Result<R, String>) -> Result<R, String> {
    // SAFETY: the same calls plpgsql makes around an EXCEPTION block, in the worker's open
    // transaction; memory context and resource owner are restored whichever way it ends.
    unsafe {
        let context = pg_sys::CurrentMemoryContext;
        let owner = pg_sys::CurrentResourceOwner;
        pg_sys::BeginInternalSubTransaction(std::ptr::null());
        pg_sys::MemoryContextSwitchTo(context);
        let result = PgTryBuilder::new(AssertUnwindSafe(f))
            .catch_others(|e| Err(error_message(&e)))
            .execute();
        match result {
            Ok(_) => pg_sys::ReleaseCurrentSubTransaction(),
            Err(_) => pg_sys::RollbackAndReleaseCurrentSubTransaction(),
        }
        pg_sys::MemoryContextSwitchTo(context);
        pg_sys::CurrentResourceOwner = owner;
        result
    }
}

/// A caught error as one line: Postgres's message (with its SQLSTATE for a Postgres error).
pub fn error_message(e: &pg_sys::panic::CaughtError) -> String {
    match e {
        pg_sys::panic::CaughtError::PostgresError(r)
        | pg_sys::panic::CaughtError::ErrorReport(r) => {
            format!(
                "{} (SQLSTATE {})",
                r.message(),
                sqlstate(r.sql_error_code() as u32)
            )
        }
        pg_sys::panic::CaughtError::RustPanic { ereport, .. } => ereport.message().to_string(),
    }
}

/// The five characters of a SQLSTATE from its packed form (MAKE_SQLSTATE: 6 bits a character,
/// first character lowest).
pub fn sqlstate(code: u32) -> String {
    (0..5)
        .map(|i| char::from(((code >> (6 * i)) & 0x3F) as u8 + b'0'))
        .collect()
}

/// The extension's version in this database, None when it is not installed (it may be created,
/// dropped or updated while the worker runs).
pub fn extension_version() -> Result<Option<String>, String> {
    // a scalar subquery: one row, NULL when not installed
    Spi::get_one::<String>(
        "SELECT (SELECT x.extversion FROM pg_catalog.pg_extension x
                  WHERE x.extname = 'unleash_webhook')",
    )
    .map_err(err)
}

/// The installation id that prefixes every webhook-id.
pub fn installation_id() -> Result<String, String> {
    Spi::get_one::<String>("SELECT unleash_webhook._installation_id()")
        .map_err(err)?
        .ok_or_else(|| "unleash_webhook._installation is empty".to_string())
}

/// After a restart, whatever a previous worker had claimed from `_deliveries` is due again
/// (at-least-once). Inbox pairs need nothing: they are in the inbox until recorded.
pub fn recover_claimed() -> Result<u64, String> {
    Spi::connect_mut(|client| {
        let t = client.update(
            "UPDATE unleash_webhook._deliveries SET status = 'pending', lease_until = NULL,
                    next_attempt_at = pg_catalog.now()
              WHERE status = 'sending'",
            None,
            &[],
        )?;
        Ok::<u64, pgrx::spi::Error>(t.len() as u64)
    })
    .map_err(err)
}

/// The rows held are left out through a hashed subplan (`NOT IN (SELECT unnest(...))`): each
/// inbox row is one probe. `NOT (id = ANY ($1))` compared every row with every id held, and a
/// backlog of single-row INSERTs (thousands of inbox rows, as many held) then cost seconds of
/// CPU per read (2026-12-08: 2.1 s against 12 ms for 30,000 rows and 20,000 held).
pub(crate) const INBOX_SQL: &str =
    "SELECT i.id, i.event_table::pg_catalog.oid, i.event_ids, i.event_types,
                i.pair_events, i.pair_subs, i.queued_at,
                ARRAY(SELECT d.id FROM unleash_webhook._deliveries d
                       WHERE d.id >= i.id * 1000 AND d.id < i.id * 1000 + 1000) AS done
           FROM unleash_webhook._inbox i
          WHERE i.id NOT IN (SELECT pg_catalog.unnest($1::pg_catalog.int8[]))
          ORDER BY i.id
          LIMIT $2";

/// Inbox rows not among `loaded` (those the worker holds already), oldest first, at most
/// `limit`.
pub fn load_inbox(plans: &mut Plans, loaded: &[i64], limit: i64) -> Result<Vec<InboxRow>, String> {
    Spi::connect_mut(|client| {
        let stmt = kept(
            &mut plans.inbox,
            client,
            INBOX_SQL,
            &[PgBuiltInOids::INT8ARRAYOID, PgBuiltInOids::INT8OID],
        )?;
        let rows = client.update(stmt, None, &[loaded.to_vec().into(), limit.into()])?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let ids = row.get::<Vec<i64>>(3)?.unwrap_or_default();
            let types = row.get::<Vec<String>>(4)?.unwrap_or_default();
            let pair_events = row.get::<Vec<i32>>(5)?.unwrap_or_default();
            let pair_subs = row.get::<Vec<i64>>(6)?.unwrap_or_default();
            let events: Vec<(i64, String)> = ids.into_iter().zip(types).collect();
            let pairs = pair_events
                .into_iter()
                .zip(pair_subs)
                // 1-based in SQL; a pair that names no event is skipped (cannot happen: the
                // trigger writes them)
                .filter_map(|(e, s)| {
                    let i = usize::try_from(e).ok()?.checked_sub(1)?;
                    (i < events.len()).then_some((i, s))
                })
                .collect();
            let Some(queued_at) = row.get::<TimestampWithTimeZone>(7)? else {
                continue;
            };
            out.push(InboxRow {
                id: row.get::<i64>(1)?.unwrap_or_default(),
                event_table: row.get::<pg_sys::Oid>(2)?.unwrap_or(pg_sys::InvalidOid),
                events,
                pairs,
                queued_at,
                done: row.get::<Vec<i64>>(8)?.unwrap_or_default(),
            });
        }
        Ok::<_, pgrx::spi::Error>(out)
    })
    .map_err(err)
}

/// Every subscription, live or dropped, with its version. A few rows: cheaper than finding out
/// which changed.
pub fn subscriptions(plans: &mut Plans) -> Result<Vec<SubscriptionRow>, String> {
    Spi::connect_mut(|client| {
        let stmt = kept(
            &mut plans.subscriptions,
            client,
            "SELECT s.id, s.xmin::pg_catalog.text::pg_catalog.int8, s.enabled,
                    s.dropped_at IS NOT NULL, s.url, s.content_type, s.\"authorization\",
                    s.headers::pg_catalog.text, s.body_template, s.signing_secrets
               FROM unleash_webhook._subscriptions s",
            &[],
        )?;
        let rows = client.update(stmt, None, &[])?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            out.push(SubscriptionRow {
                id: row.get::<i64>(1)?.unwrap_or_default(),
                version: row.get::<i64>(2)?.unwrap_or_default(),
                enabled: row.get::<bool>(3)?.unwrap_or(false),
                dropped: row.get::<bool>(4)?.unwrap_or(true),
                url: row.get::<String>(5)?.unwrap_or_default(),
                content_type: row.get::<String>(6)?.unwrap_or_default(),
                authorization: row.get::<String>(7)?,
                headers_json: row.get::<String>(8)?.unwrap_or_else(|| "{}".into()),
                body_template: row.get::<String>(9)?,
                signing_secrets: row.get::<Vec<String>>(10)?.unwrap_or_default(),
            });
        }
        Ok::<_, pgrx::spi::Error>(out)
    })
    .map_err(err)
}

// `swept`: what a dropped subscription still had in the log. drop_subscription cancels its
// pending and sending rows, but an attempt in flight at that moment (a timeout, then a retry)
// is recorded after it, as pending, and no claim would ever take it: cancelled here instead.
const CLAIM_SQL: &str = "WITH swept AS (
                 UPDATE unleash_webhook._deliveries d
                    SET status = 'cancelled', finished_at = pg_catalog.now(),
                        next_attempt_at = NULL, lease_until = NULL,
                        last_error = 'subscription dropped'
                   FROM unleash_webhook._subscriptions s
                  WHERE s.dropped_at IS NOT NULL AND d.subscription_id = s.id
                    AND d.status IN ('pending', 'sending')
                    AND (d.status = 'pending' OR d.lease_until < pg_catalog.now())
             ), subs AS (
                 SELECT s.id, coalesce(r.room, $2) AS room
                   FROM unleash_webhook._subscriptions s
                   LEFT JOIN unnest($3::pg_catalog.int8[], $4::pg_catalog.int4[]) AS r(sub, room)
                          ON r.sub = s.id
                  WHERE s.enabled AND s.dropped_at IS NULL
             ), cand AS (
                 SELECT c.id
                   FROM subs
                  CROSS JOIN LATERAL (
                        SELECT d.id FROM unleash_webhook._deliveries d
                         WHERE d.subscription_id = subs.id
                           AND d.status IN ('pending', 'sending')
                           AND ((d.status = 'pending' AND d.next_attempt_at <= pg_catalog.now())
                                OR (d.status = 'sending' AND d.lease_until < pg_catalog.now()))
                         ORDER BY d.id
                         LIMIT greatest(subs.room, 0)
                           FOR UPDATE SKIP LOCKED) c
                  ORDER BY c.id
                  LIMIT $1
             )
             UPDATE unleash_webhook._deliveries d
                SET status = 'sending', attempts = d.attempts + 1,
                    round_attempts = d.round_attempts + 1,
                    lease_until = pg_catalog.now() + $5 * interval '1 millisecond'
               FROM cand
              WHERE d.id = cand.id
          RETURNING d.id, d.subscription_id, d.event_table::pg_catalog.oid, d.event_id,
                    d.event_type, d.created_at, d.attempts, d.round_attempts,
                    d.request_body IS NOT NULL";

/// Claims due deliveries from `_deliveries`: per subscription at most `room[sub]` (or
/// `default_room` for one not in the map), `limit` in all, skipping rows another transaction
/// holds (never waiting for them).
pub fn claim(
    plans: &mut Plans,
    limit: i64,
    default_room: i32,
    room: &HashMap<i64, i32>,
    lease_ms: f64,
) -> Result<Vec<Claimed>, String> {
    let (room_ids, room_vals): (Vec<i64>, Vec<i32>) = room.iter().map(|(k, v)| (*k, *v)).unzip();
    Spi::connect_mut(|client| {
        use pgrx::pg_sys::BuiltinOid::*;
        let stmt = kept(
            &mut plans.claim,
            client,
            CLAIM_SQL,
            &[INT8OID, INT4OID, INT8ARRAYOID, INT4ARRAYOID, FLOAT8OID],
        )?;
        let rows = client.update(
            stmt,
            None,
            &[
                limit.into(),
                default_room.into(),
                room_ids.into(),
                room_vals.into(),
                lease_ms.into(),
            ],
        )?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let Some(created_at) = row.get::<TimestampWithTimeZone>(6)? else {
                continue;
            };
            out.push(Claimed {
                delivery_id: row.get::<i64>(1)?.unwrap_or_default(),
                subscription_id: row.get::<i64>(2)?.unwrap_or_default(),
                event_table: row.get::<pg_sys::Oid>(3)?.unwrap_or(pg_sys::InvalidOid),
                event_id: row.get::<i64>(4)?.unwrap_or_default(),
                event_type: row.get::<String>(5)?.unwrap_or_default(),
                created_at,
                attempt: row.get::<i32>(7)?.unwrap_or_default(),
                round_attempt: row.get::<i32>(8)?.unwrap_or_default(),
                has_body: row.get::<bool>(9)?.unwrap_or(false),
            });
        }
        Ok::<_, pgrx::spi::Error>(out)
    })
    .map_err(err)
}

/// Takes a share lock on the events table without waiting (the read takes it anyway). When
/// someone holds a conflicting one (an ALTER or DROP in an open transaction, a migration),
/// returns the pid of whoever holds it: the worker reads the table's events later and serves
/// the rest meanwhile, instead of waiting in the lock queue.
pub fn try_lock_events_table(table: pg_sys::Oid) -> Result<(), i32> {
    // SAFETY: a lock request inside the worker's transaction; released at its end.
    let got = unsafe {
        pg_sys::ConditionalLockRelationOid(table, pg_sys::AccessShareLock as pg_sys::LOCKMODE)
    };
    if got {
        return Ok(());
    }
    let holder = Spi::get_one_with_args::<i32>(
        "SELECT l.pid FROM pg_catalog.pg_locks l
          WHERE l.locktype = 'relation' AND l.relation = $1 AND l.granted
            AND l.mode = 'AccessExclusiveLock'
          LIMIT 1",
        &[table.into()],
    );
    Err(holder.ok().flatten().unwrap_or(0))
}

/// The columns the worker reads, and the types it reads them as. A column of another type
/// (Unleash's role may retype it) is not read at all: its deliveries fail with the reason
/// rather than run a cast the table's owner defined, with our rights.
const EVENT_COLUMNS: [(&str, &[pg_sys::Oid]); 13] = [
    ("id", &[pg_sys::INT2OID, pg_sys::INT4OID, pg_sys::INT8OID]),
    (
        "created_at",
        &[pg_sys::TIMESTAMPTZOID, pg_sys::TIMESTAMPOID],
    ),
    ("type", &[pg_sys::TEXTOID, pg_sys::VARCHAROID]),
    ("created_by", &[pg_sys::TEXTOID, pg_sys::VARCHAROID]),
    ("data", &[pg_sys::JSONOID, pg_sys::JSONBOID]),
    ("pre_data", &[pg_sys::JSONOID, pg_sys::JSONBOID]),
    ("tags", &[pg_sys::JSONOID, pg_sys::JSONBOID]),
    ("project", &[pg_sys::TEXTOID, pg_sys::VARCHAROID]),
    ("environment", &[pg_sys::TEXTOID, pg_sys::VARCHAROID]),
    ("feature_name", &[pg_sys::TEXTOID, pg_sys::VARCHAROID]),
    (
        "created_by_user_id",
        &[pg_sys::INT2OID, pg_sys::INT4OID, pg_sys::INT8OID],
    ),
    ("group_type", &[pg_sys::TEXTOID, pg_sys::VARCHAROID]),
    ("group_id", &[pg_sys::TEXTOID, pg_sys::VARCHAROID]),
];

/// Why the events table cannot be read as Unleash's (a column missing or of another type), or
/// None when it can. From the catalog as it is now (syscache lookups, no query).
fn events_table_problem(table: pg_sys::Oid) -> Option<String> {
    let mut problems = Vec::new();
    for (name, allowed) in EVENT_COLUMNS {
        let Ok(cname) = std::ffi::CString::new(name) else {
            continue;
        };
        // SAFETY: syscache lookups by OID and name inside a transaction.
        let typ = unsafe {
            let attnum = pg_sys::get_attnum(table, cname.as_ptr());
            if attnum == pg_sys::InvalidAttrNumber as i16 {
                problems.push(format!("{name} is missing"));
                continue;
            }
            pg_sys::get_atttype(table, attnum)
        };
        if !allowed.contains(&typ) {
            // SAFETY: format_type_be returns a palloc'd string for any type OID.
            let shown = unsafe { std::ffi::CStr::from_ptr(pg_sys::format_type_be(typ)) };
            problems.push(format!("{name} is {}", shown.to_string_lossy()));
        }
    }
    (!problems.is_empty()).then(|| {
        format!(
            "the events table is not as Unleash defines it ({}): its events are not read",
            problems.join(", ")
        )
    })
}

fn events_sql(name: &str) -> String {
    format!(
        // A created_at outside JavaScript's Date range (infinity, year 275760+) is null in the
        // event, as Unleash would print it; computing it would fail the whole batch.
        "SELECT e.id::pg_catalog.int8,
                CASE WHEN pg_catalog.isfinite(e.created_at)
                          AND e.created_at < '275760-09-13 00:00:00+00'::pg_catalog.timestamptz
                     THEN (pg_catalog.date_part('epoch', e.created_at) * 1000000)::pg_catalog.int8
                END,
                e.type::pg_catalog.text, e.created_by::pg_catalog.text,
                e.data::pg_catalog.text, e.pre_data::pg_catalog.text, e.tags::pg_catalog.text,
                e.project::pg_catalog.text, e.environment::pg_catalog.text,
                e.feature_name::pg_catalog.text, e.created_by_user_id::pg_catalog.int8,
                e.group_type::pg_catalog.text, e.group_id::pg_catalog.text
           FROM {name} e WHERE e.id = ANY ($1::pg_catalog.int8[])"
    )
}

/// The events rows for `ids` from `table`. A dropped table gives an empty map (its events are
/// then missing, which the caller reports); a table whose columns Unleash's role changed gives
/// `Err` with the reason. `plans`: the statement is kept per table across turns (planning it on
/// every turn cost more than running it); None plans it once (preview).
pub fn read_events(
    plans: Option<&mut Plans>,
    table: pg_sys::Oid,
    ids: &[i64],
) -> Result<HashMap<i64, EventRow>, String> {
    // SAFETY: a syscache lookup by OID inside a transaction; NULL if dropped.
    if unsafe { pg_sys::get_rel_name(table) }.is_null() {
        if let Some(plans) = plans {
            plans.events.remove(&table);
        }
        return Ok(HashMap::new());
    }
    // Checked on every read, not once: an ALTER TABLE between two reads replans the kept
    // statement with the new types.
    if let Some(problem) = events_table_problem(table) {
        return Err(problem);
    }
    Spi::connect_mut(|client| {
        let name = || -> SpiResult<String> {
            // regclass prints the name qualified (our search_path holds only pg_catalog)
            Ok(client
                .select(
                    "SELECT $1::pg_catalog.regclass::pg_catalog.text",
                    None,
                    &[table.into()],
                )?
                .first()
                .get_one::<String>()?
                .unwrap_or_default())
        };
        let args = [ids.to_vec().into()];
        let rows = match plans {
            Some(plans) => {
                let stmt = match plans.events.entry(table) {
                    Entry::Occupied(kept) => kept.into_mut(),
                    Entry::Vacant(slot) => slot.insert(
                        client
                            .prepare_mut(
                                &events_sql(&name()?),
                                &oids(&[PgBuiltInOids::INT8ARRAYOID]),
                            )?
                            .keep(),
                    ),
                };
                client.update(&*stmt, None, &args)?
            }
            None => client.update(&events_sql(&name()?), None, &args)?,
        };
        event_rows(rows)
    })
    .map_err(err)
}

fn event_rows(rows: pgrx::spi::SpiTupleTable<'_>) -> SpiResult<HashMap<i64, EventRow>> {
    let mut out = HashMap::with_capacity(rows.len());
    for row in rows {
        let id = row.get::<i64>(1)?.unwrap_or_default();
        out.insert(
            id,
            EventRow {
                id,
                created_at_us: row.get::<i64>(2)?,
                event_type: row.get::<String>(3)?.unwrap_or_default(),
                created_by: row.get::<String>(4)?.unwrap_or_default(),
                data: row.get::<String>(5)?,
                pre_data: row.get::<String>(6)?,
                tags: row.get::<String>(7)?,
                project: row.get::<String>(8)?,
                environment: row.get::<String>(9)?,
                feature_name: row.get::<String>(10)?,
                created_by_user_id: row.get::<i64>(11)?,
                group_type: row.get::<String>(12)?,
                group_id: row.get::<String>(13)?,
            },
        );
    }
    Ok(out)
}

/// Columns of `outcomes` as SQL arrays, in the order of the INSERT and UPDATE statements below.
struct Columns {
    ids: Vec<i64>,
    subs: Vec<i64>,
    tables: Vec<pg_sys::Oid>,
    event_ids: Vec<i64>,
    types: Vec<String>,
    created: Vec<TimestampWithTimeZone>,
    statuses: Vec<String>,
    attempts: Vec<i32>,
    started: Vec<Option<f64>>,
    durations: Vec<Option<f64>>,
    codes: Vec<Option<i32>>,
    classes: Vec<Option<String>>,
    errors: Vec<Option<String>>,
    excerpts: Vec<Option<String>>,
    bodies: Vec<Option<String>>,
    hashes: Vec<Option<i64>>,
    retry: Vec<f64>,
}

impl Columns {
    fn of(outcomes: &[&Outcome]) -> Columns {
        fn a<T>(outcomes: &[&Outcome], f: impl Fn(&AttemptRecord) -> Option<T>) -> Vec<Option<T>> {
            outcomes
                .iter()
                .map(|o| o.attempt.as_ref().and_then(&f))
                .collect()
        }
        Columns {
            ids: outcomes.iter().map(|o| o.delivery_id).collect(),
            subs: outcomes.iter().map(|o| o.subscription_id).collect(),
            tables: outcomes.iter().map(|o| o.event_table).collect(),
            event_ids: outcomes.iter().map(|o| o.event_id).collect(),
            types: outcomes.iter().map(|o| o.event_type.clone()).collect(),
            created: outcomes.iter().map(|o| o.created_at).collect(),
            statuses: outcomes.iter().map(|o| o.new_status.to_string()).collect(),
            attempts: outcomes
                .iter()
                .map(|o| o.attempt.as_ref().map_or(0, |a| a.number))
                .collect(),
            started: a(outcomes, |a| Some(a.started_epoch)),
            durations: a(outcomes, |a| Some(a.duration_ms)),
            codes: a(outcomes, |a| a.status_code),
            classes: a(outcomes, |a| a.error_class.clone()),
            errors: outcomes.iter().map(|o| o.last_error.clone()).collect(),
            excerpts: a(outcomes, |a| a.excerpt.clone()),
            bodies: a(outcomes, |a| a.body.clone()),
            hashes: a(outcomes, |a| a.content_hash),
            retry: outcomes.iter().map(|o| o.retry_in_ms).collect(),
        }
    }

    fn args(self) -> Vec<pgrx::datum::DatumWithOid<'static>> {
        vec![
            self.ids.into(),
            self.subs.into(),
            self.tables.into(),
            self.event_ids.into(),
            self.types.into(),
            self.created.into(),
            self.statuses.into(),
            self.attempts.into(),
            self.started.into(),
            self.durations.into(),
            self.codes.into(),
            self.classes.into(),
            self.errors.into(),
            self.excerpts.into(),
            self.bodies.into(),
            self.hashes.into(),
            self.retry.into(),
        ]
    }
}

const COLUMN_TYPES: [PgBuiltInOids; 17] = [
    PgBuiltInOids::INT8ARRAYOID,
    PgBuiltInOids::INT8ARRAYOID,
    PgBuiltInOids::OIDARRAYOID,
    PgBuiltInOids::INT8ARRAYOID,
    PgBuiltInOids::TEXTARRAYOID,
    PgBuiltInOids::TIMESTAMPTZARRAYOID,
    PgBuiltInOids::TEXTARRAYOID,
    PgBuiltInOids::INT4ARRAYOID,
    PgBuiltInOids::FLOAT8ARRAYOID,
    PgBuiltInOids::FLOAT8ARRAYOID,
    PgBuiltInOids::INT4ARRAYOID,
    PgBuiltInOids::TEXTARRAYOID,
    PgBuiltInOids::TEXTARRAYOID,
    PgBuiltInOids::TEXTARRAYOID,
    PgBuiltInOids::TEXTARRAYOID,
    PgBuiltInOids::INT8ARRAYOID,
    PgBuiltInOids::FLOAT8ARRAYOID,
];

const UNNEST: &str = "unnest($1::pg_catalog.int8[], $2::pg_catalog.int8[], $3::pg_catalog.oid[],
                     $4::pg_catalog.int8[], $5::pg_catalog.text[], $6::pg_catalog.timestamptz[],
                     $7::pg_catalog.text[], $8::pg_catalog.int4[], $9::pg_catalog.float8[],
                     $10::pg_catalog.float8[], $11::pg_catalog.int4[], $12::pg_catalog.text[],
                     $13::pg_catalog.text[], $14::pg_catalog.text[], $15::pg_catalog.text[],
                     $16::pg_catalog.int8[], $17::pg_catalog.float8[])
              AS r(id, sub, tbl, event_id, event_type, created, status, attempt, started,
                   duration, code, class, error, excerpt, body, hash, retry_ms)";

/// An inbox pair's first and only write: one row with its outcome and its one attempt.
fn insert_sql() -> String {
    format!(
        "INSERT INTO unleash_webhook._deliveries AS d
                (id, subscription_id, event_table, event_id, event_type, status, attempts,
                 round_attempts, next_attempt_at, created_at, delivered_at, finished_at,
                 last_status_code, last_error, request_body, last_attempt_at, last_duration_ms,
                 last_error_class, last_excerpt, content_hash)
         SELECT r.id, r.sub, r.tbl::pg_catalog.regclass, r.event_id, r.event_type, r.status,
                r.attempt, r.attempt,
                CASE WHEN r.status = 'pending'
                     THEN pg_catalog.now() + r.retry_ms * interval '1 millisecond' END,
                r.created,
                CASE WHEN r.status = 'delivered' THEN pg_catalog.clock_timestamp() END,
                CASE WHEN r.status <> 'pending' THEN pg_catalog.clock_timestamp() END,
                r.code, r.error, r.body, pg_catalog.to_timestamp(r.started), r.duration, r.class,
                r.excerpt, r.hash
           FROM {UNNEST}
             -- recorded before a restart: its attempt is not recorded twice
             ON CONFLICT (id) DO NOTHING"
    )
}

/// A claimed delivery's new attempt: its previous last attempt moves to `_attempts`. A
/// delivery that is no longer 'sending' (dropped subscription: 'cancelled') keeps its state.
fn update_sql() -> String {
    format!(
        "WITH r AS (SELECT * FROM {UNNEST}),
         moved AS (
             INSERT INTO unleash_webhook._attempts
                    (delivery_id, attempt, started_at, duration_ms, status_code, error_class,
                     error, response_excerpt)
             SELECT d.id, d.attempts - 1, d.last_attempt_at, d.last_duration_ms,
                    d.last_status_code, d.last_error_class, d.last_error, d.last_excerpt
               FROM unleash_webhook._deliveries d JOIN r ON r.id = d.id
              WHERE d.id = ANY ($1::pg_catalog.int8[]) AND d.status = 'sending'
                AND d.last_attempt_at IS NOT NULL AND r.started IS NOT NULL
             ON CONFLICT DO NOTHING
         )
         UPDATE unleash_webhook._deliveries d
            SET status = r.status,
                next_attempt_at = CASE WHEN r.status = 'pending'
                                       THEN pg_catalog.now() + r.retry_ms * interval '1 millisecond'
                                  END,
                delivered_at = CASE WHEN r.status = 'delivered'
                                    THEN pg_catalog.clock_timestamp() ELSE d.delivered_at END,
                finished_at = CASE WHEN r.status = 'pending' THEN NULL
                                   ELSE pg_catalog.clock_timestamp() END,
                lease_until = NULL,
                last_status_code = r.code,
                last_error = r.error,
                request_body = coalesce(d.request_body, r.body),
                last_attempt_at = coalesce(pg_catalog.to_timestamp(r.started), d.last_attempt_at),
                last_duration_ms = coalesce(r.duration, d.last_duration_ms),
                last_error_class = r.class,
                last_excerpt = r.excerpt,
                content_hash = coalesce(r.hash, d.content_hash)
           FROM r
          WHERE d.id = ANY ($1::pg_catalog.int8[]) AND d.id = r.id AND d.status = 'sending'"
    )
}

/// Writes `outcomes` and deletes the inbox rows in `finished_rows` (every pair of them has its
/// `_deliveries` row once this commits), in the caller's transaction.
pub fn record(
    plans: &mut Plans,
    outcomes: &[Outcome],
    finished_rows: &[i64],
) -> Result<(), String> {
    let (new, claimed): (Vec<&Outcome>, Vec<&Outcome>) = outcomes.iter().partition(|o| !o.has_row);
    Spi::connect_mut(|client| {
        if !new.is_empty() {
            let stmt = kept(&mut plans.insert, client, &insert_sql(), &COLUMN_TYPES)?;
            client.update(stmt, None, &Columns::of(&new).args())?;
        }
        if !claimed.is_empty() {
            let stmt = kept(&mut plans.update, client, &update_sql(), &COLUMN_TYPES)?;
            client.update(stmt, None, &Columns::of(&claimed).args())?;
        }
        if !finished_rows.is_empty() {
            let stmt = kept(
                &mut plans.delete_inbox,
                client,
                "DELETE FROM unleash_webhook._inbox i WHERE i.id = ANY ($1::pg_catalog.int8[])",
                &[PgBuiltInOids::INT8ARRAYOID],
            )?;
            client.update(stmt, None, &[finished_rows.to_vec().into()])?;
        }
        Ok::<(), pgrx::spi::Error>(())
    })
    .map_err(err)
}

/// Deletes finished deliveries (and their earlier attempts) older than `retention`, scanning
/// the log in id order from `from`, at most `batch` rows. Ids grow with time, so the scan stops
/// at the first delivery created after the cutoff. Returns (deleted, where to go on from).
pub fn purge_finished(retention_s: f64, from: i64, batch: i64) -> Result<(i64, i64), String> {
    Spi::connect_mut(|client| {
        let row = client
            .update(
                "WITH scan AS (
                     SELECT d.id, d.finished_at, d.created_at FROM unleash_webhook._deliveries d
                      WHERE d.id >= $1 ORDER BY d.id LIMIT $2
                 ), cutoff AS (
                     SELECT pg_catalog.now() - $3 * interval '1 second' AS t
                 ), gone AS (
                     DELETE FROM unleash_webhook._deliveries d
                      USING scan, cutoff
                      WHERE d.id = scan.id AND scan.finished_at < cutoff.t
                        AND d.finished_at < cutoff.t
                     RETURNING d.id
                 ), logged AS (
                     DELETE FROM unleash_webhook._attempts a USING gone WHERE a.delivery_id = gone.id
                 )
                 SELECT (SELECT pg_catalog.count(*) FROM gone),
                        coalesce((SELECT pg_catalog.min(scan.id) FROM scan, cutoff
                                   WHERE scan.created_at >= cutoff.t),
                                 (SELECT pg_catalog.max(scan.id) + 1 FROM scan), $1)",
                None,
                &[from.into(), batch.into(), retention_s.into()],
            )?
            .first();
        Ok::<_, pgrx::spi::Error>((
            row.get::<i64>(1)?.unwrap_or(0),
            row.get::<i64>(2)?.unwrap_or(from),
        ))
    })
    .map_err(err)
}
