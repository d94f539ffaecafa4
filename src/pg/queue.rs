//! The queue as the worker sees it: claim, read events, record results, recover. All SPI.
//!
//! Every function here runs inside a transaction that the worker opened (`worker::txn`) and
//! returns `Err` with Postgres's message rather than raising, so that one bad statement costs
//! a batch, never the worker.

use crate::core::event_json::EventRow;
use pgrx::prelude::*;
use pgrx::spi::{OwnedPreparedStatement, SpiClient, SpiResult};
use pgrx::{PgBuiltInOids, PgOid};
use std::collections::HashMap;
use std::collections::hash_map::Entry;

/// A claimed delivery with what is needed to send it.
pub struct Claimed {
    pub delivery_id: i64,
    pub subscription_id: i64,
    pub event_table: pg_sys::Oid,
    pub event_id: i64,
    pub attempt: i32,
    pub round_attempt: i32,
    pub has_body: bool,
    pub sub_version: i64,
    pub sub: Option<SubscriptionColumns>,
}

/// The subscription's stored settings, returned by the claim only when the worker's cached
/// copy is older than `updated_at`.
pub struct SubscriptionColumns {
    pub url: String,
    pub content_type: String,
    pub authorization: Option<String>,
    pub headers_json: String,
    pub body_template: Option<String>,
    pub signing_secrets: Vec<String>,
}

/// How one attempt ended, ready to be written.
pub struct Outcome {
    pub delivery_id: i64,
    pub attempt: i32,
    pub started_epoch: f64,
    pub duration_ms: f64,
    pub status_code: Option<i32>,
    pub error_class: Option<String>,
    pub error: Option<String>,
    pub excerpt: Option<String>,
    /// 'delivered', 'failed' or 'pending' (a retry).
    pub new_status: &'static str,
    pub retry_in_ms: f64,
    pub body: Option<String>,
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// The worker's hot statements, planned once and kept across transactions (SPI_keepplan):
/// planning the claim cost more than running it. Dropped after any error, since a DROP or
/// ALTER EXTENSION can invalidate them.
#[derive(Default)]
pub struct Plans {
    claim: Option<OwnedPreparedStatement>,
    record: Option<OwnedPreparedStatement>,
    /// The events SELECT, per events table.
    events: HashMap<pg_sys::Oid, OwnedPreparedStatement>,
    flush: Option<OwnedPreparedStatement>,
}

impl Plans {
    /// Forgets the kept plans; they are prepared again on next use.
    pub fn reset(&mut self) {
        self.claim = None;
        self.record = None;
        self.events.clear();
        self.flush = None;
    }

    fn claim_statement(&mut self, client: &SpiClient<'_>) -> SpiResult<&OwnedPreparedStatement> {
        use pgrx::pg_sys::BuiltinOid::*;
        kept(
            &mut self.claim,
            client,
            CLAIM_SQL,
            &[
                INT8OID,
                INT4OID,
                INT8ARRAYOID,
                INT4ARRAYOID,
                FLOAT8OID,
                INT8ARRAYOID,
                INT8ARRAYOID,
            ],
        )
    }

    fn record_statement(&mut self, client: &SpiClient<'_>) -> SpiResult<&OwnedPreparedStatement> {
        use pgrx::pg_sys::BuiltinOid::*;
        kept(
            &mut self.record,
            client,
            RECORD_SQL,
            &[
                INT8ARRAYOID,
                INT4ARRAYOID,
                FLOAT8ARRAYOID,
                FLOAT8ARRAYOID,
                INT4ARRAYOID,
                TEXTARRAYOID,
                TEXTARRAYOID,
                TEXTARRAYOID,
                TEXTARRAYOID,
                FLOAT8ARRAYOID,
                TEXTARRAYOID,
                TEXTOID,
            ],
        )
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

const CLAIM_SQL: &str = "WITH subs AS (
                 SELECT s.id, coalesce(r.room, $2) AS room,
                        (extract(epoch FROM s.updated_at) * 1000000)::int8 AS version
                   FROM unleash_webhook._subscriptions s
                   LEFT JOIN unnest($3::int8[], $4::int4[]) AS r(sub, room) ON r.sub = s.id
                  WHERE s.enabled AND s.dropped_at IS NULL
             ), cand AS (
                 SELECT c.id, subs.version
                   FROM subs
                  CROSS JOIN LATERAL (
                        SELECT d.id FROM unleash_webhook._deliveries d
                         WHERE d.subscription_id = subs.id
                           AND d.status IN ('pending', 'sending')
                           AND ((d.status = 'pending' AND d.next_attempt_at <= now())
                                OR (d.status = 'sending' AND d.lease_until < now()))
                         ORDER BY d.id
                         LIMIT greatest(subs.room, 0)
                           FOR UPDATE SKIP LOCKED) c
                  ORDER BY c.id
                  LIMIT $1
             ), upd AS (
                 UPDATE unleash_webhook._deliveries d
                    SET status = 'sending', attempts = d.attempts + 1,
                        round_attempts = d.round_attempts + 1,
                        lease_until = now() + $5 * interval '1 millisecond'
                   FROM cand
                  WHERE d.id = cand.id
              RETURNING d.id, d.subscription_id, d.event_table, d.event_id, d.attempts,
                        d.round_attempts, d.request_body IS NOT NULL AS has_body, cand.version
             )
             SELECT upd.*, s.url, s.content_type, s.\"authorization\", s.headers::text,
                    s.body_template, (k.version IS NOT DISTINCT FROM upd.version) AS cached,
                    s.signing_secrets
               FROM upd
               JOIN unleash_webhook._subscriptions s ON s.id = upd.subscription_id
               LEFT JOIN unnest($6::int8[], $7::int8[]) AS k(sub, version)
                      ON k.sub = upd.subscription_id
              ORDER BY upd.id";

const RECORD_SQL: &str = "WITH r AS (
                 SELECT * FROM unnest($1::int8[], $2::int4[], $3::float8[], $4::float8[],
                                      $5::int4[], $6::text[], $7::text[], $8::text[],
                                      $9::text[], $10::float8[], $11::text[])
                     AS r(delivery_id, attempt, started_epoch, duration_ms, status_code,
                          error_class, error, excerpt, new_status, retry_in_ms, body)
             ), logged AS (
                 INSERT INTO unleash_webhook._attempts
                        (delivery_id, attempt, started_at, duration_ms, status_code,
                         error_class, error, response_excerpt)
                 SELECT delivery_id, attempt, to_timestamp(started_epoch), duration_ms,
                        status_code, error_class, error, excerpt
                   FROM r
                 ON CONFLICT DO NOTHING
             )
             UPDATE unleash_webhook._deliveries d
                SET status = r.new_status,
                    next_attempt_at = CASE WHEN r.new_status = 'pending'
                                           THEN now() + r.retry_in_ms * interval '1 millisecond'
                                           ELSE d.next_attempt_at END,
                    delivered_at = CASE WHEN r.new_status = 'delivered' THEN clock_timestamp()
                                        ELSE d.delivered_at END,
                    finished_at = CASE WHEN r.new_status = 'pending' THEN NULL
                                       ELSE clock_timestamp() END,
                    lease_until = NULL,
                    last_status_code = r.status_code,
                    last_error = r.error,
                    request_body = coalesce(d.request_body, r.body)
               FROM r
              WHERE d.id = ANY ($1::int8[]) AND d.id = r.delivery_id
                -- $12 is 'sending'. As a constant it let the generic plan walk the whole partial
                -- due-index (measured 1.7 ms a call) instead of fetching the ids from the
                -- primary key; d.id = ANY ($1) names those ids where the plan can use them.
                AND d.status = $12";

/// Does the schema have the inbox (0.2.0 on)? A new library may serve an older schema between
/// the restart and ALTER EXTENSION ... UPDATE; the older capture trigger queues deliveries
/// directly, and there is nothing to flush.
pub fn has_inbox() -> Result<bool, String> {
    Spi::get_one::<bool>(
        "SELECT to_regprocedure('unleash_webhook._flush_inbox(integer)') IS NOT NULL",
    )
    .map(|v| v.unwrap_or(false))
    .map_err(err)
}

/// Turns up to `max_rows` inbox rows (events captured) into deliveries; returns how many
/// rows it took.
pub fn flush_inbox(plans: &mut Plans, max_rows: i32) -> Result<i64, String> {
    Spi::connect_mut(|client| {
        let stmt = kept(
            &mut plans.flush,
            client,
            "SELECT unleash_webhook._flush_inbox($1)",
            &[PgBuiltInOids::INT4OID],
        )?;
        let rows = client.update(stmt, None, &[max_rows.into()])?;
        rows.first().get_one::<i64>().map(Option::unwrap_or_default)
    })
    .map_err(err)
}

/// Makes the current transaction's commit wait for its WAL to be flushed (and replicated to a
/// synchronous standby), whatever the session's setting.
pub fn commit_durably() -> Result<(), String> {
    Spi::run("SET LOCAL synchronous_commit = on").map_err(err)
}

/// Does the extension exist in this database (it may be created after the worker starts)?
pub fn extension_installed() -> Result<bool, String> {
    Spi::get_one::<bool>(
        "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'unleash_webhook')",
    )
    .map(|v| v.unwrap_or(false))
    .map_err(err)
}

/// The installation id that prefixes every webhook-id.
pub fn installation_id() -> Result<String, String> {
    Spi::get_one::<String>("SELECT replace(id::text, '-', '') FROM unleash_webhook._installation")
        .map_err(err)?
        .ok_or_else(|| "unleash_webhook._installation is empty".to_string())
}

/// After a restart, whatever a previous worker had claimed is due again (at-least-once).
pub fn recover_claimed() -> Result<u64, String> {
    Spi::connect_mut(|client| {
        let t = client.update(
            "UPDATE unleash_webhook._deliveries SET status = 'pending', lease_until = NULL
              WHERE status = 'sending'",
            None,
            &[],
        )?;
        Ok::<u64, pgrx::spi::Error>(t.len() as u64)
    })
    .map_err(err)
}

/// Claims due deliveries: per subscription at most `room[sub]` (or `default_room` for one not
/// in the map), `limit` in all, skipping rows another transaction holds. `known` lists the
/// subscription versions (updated_at in microseconds) the caller has cached.
pub fn claim(
    plans: &mut Plans,
    limit: i64,
    default_room: i32,
    room: &HashMap<i64, i32>,
    lease_ms: f64,
    known: &HashMap<i64, i64>,
) -> Result<Vec<Claimed>, String> {
    let (room_ids, room_vals): (Vec<i64>, Vec<i32>) = room.iter().map(|(k, v)| (*k, *v)).unzip();
    let (known_ids, known_vers): (Vec<i64>, Vec<i64>) = known.iter().map(|(k, v)| (*k, *v)).unzip();
    Spi::connect_mut(|client| {
        let stmt = plans.claim_statement(client)?;
        let rows = client.update(
            stmt,
            None,
            &[
                limit.into(),
                default_room.into(),
                room_ids.into(),
                room_vals.into(),
                lease_ms.into(),
                known_ids.into(),
                known_vers.into(),
            ],
        )?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let cached = row.get::<bool>(14)?.unwrap_or(false);
            let sub = if cached {
                None
            } else {
                Some(SubscriptionColumns {
                    url: row.get::<String>(9)?.unwrap_or_default(),
                    content_type: row.get::<String>(10)?.unwrap_or_default(),
                    authorization: row.get::<String>(11)?,
                    headers_json: row.get::<String>(12)?.unwrap_or_else(|| "{}".into()),
                    body_template: row.get::<String>(13)?,
                    signing_secrets: row.get::<Vec<String>>(15)?.unwrap_or_default(),
                })
            };
            out.push(Claimed {
                delivery_id: row.get::<i64>(1)?.unwrap_or_default(),
                subscription_id: row.get::<i64>(2)?.unwrap_or_default(),
                event_table: row.get::<pg_sys::Oid>(3)?.unwrap_or(pg_sys::InvalidOid),
                event_id: row.get::<i64>(4)?.unwrap_or_default(),
                attempt: row.get::<i32>(5)?.unwrap_or_default(),
                round_attempt: row.get::<i32>(6)?.unwrap_or_default(),
                has_body: row.get::<bool>(7)?.unwrap_or(false),
                sub_version: row.get::<i64>(8)?.unwrap_or_default(),
                sub,
            });
        }
        Ok::<_, pgrx::spi::Error>(out)
    })
    .map_err(err)
}

/// Reads the events rows for `ids` from the table `table`; a dropped table gives an empty map.
/// For a one-off read (preview); the worker uses [`read_events_kept`].
pub fn read_events(table: pg_sys::Oid, ids: &[i64]) -> Result<HashMap<i64, EventRow>, String> {
    Spi::connect_mut(|client| {
        let Some(name) = event_table_name(client, table)? else {
            return Ok(HashMap::new());
        };
        let rows = client.select(&events_sql(&name), None, &[ids.to_vec().into()])?;
        event_rows(rows)
    })
    .map_err(err)
}

/// [`read_events`] with the statement kept per table across turns: planning it (and looking up
/// the table's name) on every turn cost more than running it.
pub fn read_events_kept(
    plans: &mut Plans,
    table: pg_sys::Oid,
    ids: &[i64],
) -> Result<HashMap<i64, EventRow>, String> {
    Spi::connect_mut(|client| {
        // SAFETY: a syscache lookup by OID inside the worker's transaction; NULL if dropped.
        if unsafe { pg_sys::get_rel_name(table) }.is_null() {
            plans.events.remove(&table);
            return Ok(HashMap::new());
        }
        let stmt = match plans.events.entry(table) {
            Entry::Occupied(kept) => kept.into_mut(),
            Entry::Vacant(slot) => {
                let Some(name) = event_table_name(client, table)? else {
                    return Ok(HashMap::new());
                };
                let stmt = client
                    .prepare_mut(&events_sql(&name), &oids(&[PgBuiltInOids::INT8ARRAYOID]))?
                    .keep();
                slot.insert(stmt)
            }
        };
        let rows = client.update(&*stmt, None, &[ids.to_vec().into()])?;
        event_rows(rows)
    })
    .map_err(err)
}

/// The table's name as regclass prints it (quoted and qualified as needed); None if dropped,
/// in which case its events are missing, which the caller reports.
fn event_table_name(client: &SpiClient<'_>, table: pg_sys::Oid) -> SpiResult<Option<String>> {
    let found = client.select(
        "SELECT c.oid::regclass::text FROM pg_catalog.pg_class c WHERE c.oid = $1",
        None,
        &[table.into()],
    )?;
    if found.is_empty() {
        return Ok(None);
    }
    found.first().get_one::<String>()
}

fn events_sql(name: &str) -> String {
    format!(
        // A created_at outside JavaScript's Date range (infinity, year 275760+) is null in the
        // event, as Unleash would print it; computing it would fail the whole batch.
        "SELECT e.id::int8,
                CASE WHEN isfinite(e.created_at) AND e.created_at < '275760-09-13 00:00:00+00'
                     THEN (extract(epoch FROM e.created_at) * 1000000)::int8 END,
                e.type::text,
                e.created_by::text, e.data::text, e.pre_data::text, e.tags::text,
                e.project::text, e.environment::text, e.feature_name::text,
                e.created_by_user_id::int8, e.group_type::text, e.group_id::text
           FROM {name} e WHERE e.id = ANY ($1::int8[])"
    )
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

/// Writes the attempts and the deliveries' new states in one statement. A delivery that is no
/// longer 'sending' (dropped subscription: 'cancelled') keeps its state; its attempt is logged.
pub fn record(plans: &mut Plans, outcomes: &[Outcome]) -> Result<(), String> {
    if outcomes.is_empty() {
        return Ok(());
    }
    let ids: Vec<i64> = outcomes.iter().map(|o| o.delivery_id).collect();
    let attempts: Vec<i32> = outcomes.iter().map(|o| o.attempt).collect();
    let started: Vec<f64> = outcomes.iter().map(|o| o.started_epoch).collect();
    let durations: Vec<f64> = outcomes.iter().map(|o| o.duration_ms).collect();
    let codes: Vec<Option<i32>> = outcomes.iter().map(|o| o.status_code).collect();
    let classes: Vec<Option<String>> = outcomes.iter().map(|o| o.error_class.clone()).collect();
    let errors: Vec<Option<String>> = outcomes.iter().map(|o| o.error.clone()).collect();
    let excerpts: Vec<Option<String>> = outcomes.iter().map(|o| o.excerpt.clone()).collect();
    let statuses: Vec<String> = outcomes.iter().map(|o| o.new_status.to_string()).collect();
    let retry: Vec<f64> = outcomes.iter().map(|o| o.retry_in_ms).collect();
    let bodies: Vec<Option<String>> = outcomes.iter().map(|o| o.body.clone()).collect();
    Spi::connect_mut(|client| {
        let stmt = plans.record_statement(client)?;
        client.update(
            stmt,
            None,
            &[
                ids.into(),
                attempts.into(),
                started.into(),
                durations.into(),
                codes.into(),
                classes.into(),
                errors.into(),
                excerpts.into(),
                statuses.into(),
                retry.into(),
                bodies.into(),
                "sending".into(),
            ],
        )?;
        Ok::<(), pgrx::spi::Error>(())
    })
    .map_err(err)
}

/// Deletes up to `batch` finished deliveries (and their attempts) older than `retention`;
/// returns how many. Small batches keep each transaction short.
pub fn purge_finished(retention_s: f64, batch: i64) -> Result<i64, String> {
    Spi::get_one_with_args::<i64>(
        "WITH gone AS (
             DELETE FROM unleash_webhook._deliveries d
              WHERE d.id IN (SELECT id FROM unleash_webhook._deliveries
                              WHERE status IN ('delivered', 'failed', 'cancelled')
                                AND finished_at < now() - $1 * interval '1 second'
                              LIMIT $2)
             RETURNING d.id
         ), logged AS (
             DELETE FROM unleash_webhook._attempts a USING gone WHERE a.delivery_id = gone.id
         )
         SELECT count(*) FROM gone",
        &[retention_s.into(), batch.into()],
    )
    .map(|n| n.unwrap_or(0))
    .map_err(err)
}
