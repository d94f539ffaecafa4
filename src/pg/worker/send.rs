//! Sending and recording: each held or claimed delivery rendered and handed to a sender, each
//! finished attempt turned into an outcome, and the outcomes written together with the inbox
//! rows they finish.

use super::*;

impl Worker {
    /// Renders each delivery of the batch and hands it to a sender; one that cannot be
    /// rendered (or whose event is gone, or unreadable) fails at once, without HTTP.
    /// Returns how many it handed to senders.
    pub(super) fn dispatch(&mut self, batch: Batch) -> usize {
        let Batch { sending, events } = batch;
        let mut submitted = 0;
        let mut blocked_by = 0;
        for s in sending {
            let Some(state) = self.subs.get(&s.subscription_id) else {
                self.finish_without_http(s, "cancelled", None, Some("subscription dropped"));
                continue;
            };
            if state.dropped {
                self.finish_without_http(s, "cancelled", None, Some("subscription dropped"));
                continue;
            }
            let sub = Arc::clone(&state.sub);
            let prefix = format!("msg_{}_{}", self.installation, s.delivery_id);
            let ctx = Context {
                webhook_id_prefix: &prefix,
                timestamp: unix_seconds(SystemTime::now()),
                unleash_url: &self.settings.unleash_url,
            };
            let max = self.settings.max_body_size;
            let built = match events.get(&(s.table, s.event_id)) {
                // The default body holds all of data, pre_data and tags: an event bigger than
                // the limit is not rendered at all (once per subscription, it could take the
                // worker's memory).
                Some(Read::Locked(holder)) => {
                    blocked_by = *holder;
                    self.defer(s);
                    continue;
                }
                Some(Read::Row(row)) if event_size(row) > max => Err((
                    "too_large",
                    format!(
                        "the event is {} bytes, more than unleash_webhook.max_body_size ({max} bytes)",
                        event_size(row)
                    ),
                )),
                // A panic while rendering (a defect) costs this delivery, not the worker.
                Some(Read::Row(row)) => {
                    std::panic::catch_unwind(AssertUnwindSafe(|| request::build(&sub, row, &ctx)))
                        .unwrap_or_else(|panic| {
                            Err(request::RenderFailure(format!(
                                "internal error while rendering: {}",
                                pool::panic_message(&panic)
                            )))
                        })
                        .map_err(|e| ("render", e.0))
                }
                Some(Read::Failed(e)) => Err(("event_unreadable", e.clone())),
                None => Err((
                    "event_missing",
                    format!("event {} no longer exists in its events table", s.event_id),
                )),
            };
            let built = match built {
                Ok(b) if b.request.body.len() > max => Err((
                    "too_large",
                    format!(
                        "the body is {} bytes, more than unleash_webhook.max_body_size ({max} bytes)",
                        b.request.body.len()
                    ),
                )),
                other => other,
            };
            let built = match built {
                Ok(b) => b,
                Err((class, message)) => {
                    self.finish_without_http(s, "failed", Some(class), Some(&message));
                    continue;
                }
            };
            let mut s = s;
            let store_body = match s.origin {
                Origin::Inbox { .. } => true,
                Origin::Log { has_body } => !has_body,
            };
            s.body = store_body.then(|| String::from_utf8_lossy(&built.request.body).into_owned());
            s.content_hash = Some(built.content_hash);
            let key = self.next_key;
            self.next_key += 1;
            let job = Job {
                key,
                group: s.subscription_id,
                limit: self.settings.max_concurrency_per_subscription,
                request: built.request,
                client: self.client.clone(),
            };
            let sub_id = s.subscription_id;
            self.in_flight.insert(key, s);
            match self.pool.submit(job, self.settings.max_concurrency) {
                Ok(()) => {
                    submitted += 1;
                    *self.in_flight_per_sub.entry(sub_id).or_insert(0) += 1;
                }
                Err(e) => {
                    log!("{NAME}: cannot hand a delivery to a sender: {e}");
                    if let Some(s) = self.in_flight.remove(&key) {
                        self.unhold(s);
                    }
                }
            }
        }
        self.pool.hand_over();
        if let Some(stats) = wake::stats() {
            stats.blocked_by.store(blocked_by, Ordering::Relaxed);
        }
        if blocked_by != 0 {
            self.note_error(format!(
                "an events table is locked by pid {blocked_by} (an ALTER, DROP or migration in an open transaction): its deliveries wait, the others go on"
            ));
        }
        submitted
    }

    /// A delivery that ends before any HTTP: cancelled, or failed (render error, event gone).
    pub(super) fn finish_without_http(
        &mut self,
        s: Sending,
        status: &'static str,
        class: Option<&str>,
        error: Option<&str>,
    ) {
        if status == "failed"
            && let Some(stats) = wake::stats()
        {
            stats.attempts.fetch_add(1, Ordering::Relaxed);
            stats.failed.fetch_add(1, Ordering::Relaxed);
        }
        let attempt = (status == "failed").then(|| queue::AttemptRecord {
            number: s.attempt,
            started_epoch: epoch_seconds(SystemTime::now()),
            duration_ms: 0.0,
            status_code: None,
            error_class: class.map(str::to_string),
            excerpt: None,
            body: None,
            content_hash: None,
        });
        self.push_outcome(s, attempt, status, 0.0, error.map(str::to_string));
    }

    pub(super) fn push_outcome(
        &mut self,
        s: Sending,
        mut attempt: Option<queue::AttemptRecord>,
        status: &'static str,
        retry_in_ms: f64,
        mut error: Option<String>,
    ) {
        if let Origin::Inbox { inbox_id } = s.origin {
            self.count_down(inbox_id);
        }
        // room for a subscription whose last claim stopped at its share: claim again now
        // (whether the delivery ended with a response or without one: event gone, too large)
        if self.log_capped.contains(&s.subscription_id) {
            self.log_due = true;
        }
        // What an endpoint answers is stored and shown: never with our secrets in it.
        if let Some(state) = self.subs.get(&s.subscription_id) {
            let scrub = |t: &mut Option<String>| {
                if let Some(text) = t.as_mut() {
                    *text = http::scrub_secrets(text, &state.secrets);
                }
            };
            scrub(&mut error);
            if let Some(a) = attempt.as_mut() {
                scrub(&mut a.excerpt);
            }
        }
        self.outcomes.push(Outcome {
            delivery_id: s.delivery_id,
            has_row: matches!(s.origin, Origin::Log { .. }),
            subscription_id: s.subscription_id,
            event_table: s.table,
            event_id: s.event_id,
            event_type: s.event_type,
            created_at: s.created_at,
            attempt,
            new_status: status,
            retry_in_ms,
            last_error: error,
        });
    }

    /// Every finished attempt, turned into an outcome to write.
    pub(super) fn collect_results(&mut self) {
        for done in self.pool.collect() {
            // an attempt of an installation that is gone (forget_all) is not ours to record
            let Some(s) = self.in_flight.remove(&done.key) else {
                continue;
            };
            if let Some(n) = self.in_flight_per_sub.get_mut(&s.subscription_id) {
                *n -= 1;
                if *n <= 0 {
                    self.in_flight_per_sub.remove(&s.subscription_id);
                }
            }
            self.outcome_of(s, done);
        }
    }

    pub(super) fn outcome_of(&mut self, mut s: Sending, done: Done) {
        let Done {
            started_at,
            attempt,
            ..
        } = done;
        let verdict = http::classify(&attempt);
        let retries_left =
            u32::try_from(s.round_attempt).unwrap_or(u32::MAX) <= self.settings.max_retries;
        let (status, retry_in) = match verdict {
            Verdict::Delivered => ("delivered", Duration::ZERO),
            Verdict::Retry if retries_left => {
                let delay = attempt
                    .retry_after
                    .map(|d| d.min(self.settings.retry_after_max))
                    .unwrap_or(self.settings.retry_delay);
                let at = Instant::now() + delay;
                self.next_retry = Some(self.next_retry.map_or(at, |t| t.min(at)));
                ("pending", delay)
            }
            Verdict::Retry | Verdict::Fail => ("failed", Duration::ZERO),
        };
        if let Some(stats) = wake::stats() {
            stats.attempts.fetch_add(1, Ordering::Relaxed);
            let counter = match status {
                "delivered" => &stats.delivered,
                "pending" => &stats.retries,
                _ => &stats.failed,
            };
            counter.fetch_add(1, Ordering::Relaxed);
        }
        debug1!(
            "{NAME}: delivery {} attempt {}: {} -> {status}",
            s.delivery_id,
            s.attempt,
            attempt.status.map_or_else(
                || attempt
                    .error_class
                    .map_or("error", |c| c.as_str())
                    .to_string(),
                |code| code.to_string()
            )
        );
        let record = queue::AttemptRecord {
            number: s.attempt,
            started_epoch: epoch_seconds(started_at),
            duration_ms: attempt.duration.as_secs_f64() * 1000.0,
            status_code: attempt.status.map(i32::from),
            error_class: attempt.error_class.map(|c| c.as_str().to_string()),
            excerpt: Some(attempt.response_excerpt).filter(|e| !e.is_empty()),
            body: s.body.take(),
            content_hash: s.content_hash,
        };
        self.push_outcome(
            s,
            Some(record),
            status,
            retry_in.as_secs_f64() * 1000.0,
            attempt.error,
        );
    }

    /// Writes the outcomes and deletes the inbox rows they finish, in one transaction. When
    /// that fails, each outcome is written on its own (in a subtransaction), so that one that
    /// cannot be written costs only itself: it is written once more stripped to its status and
    /// the reason, and if even that fails its inbox row stays (the delivery is sent again: at
    /// least once, never lost).
    pub(super) fn write_outcomes(&mut self) {
        let outcomes = std::mem::take(&mut self.outcomes);
        let rows = std::mem::take(&mut self.finished_rows);
        let mut plans = std::mem::take(&mut self.plans);
        let result = txn("unleash_webhook: recording results", || {
            for chunk in outcomes.chunks(RECORD_CHUNK) {
                queue::record(&mut plans, chunk, &[])?;
            }
            queue::record(&mut plans, &[], &rows)
        });
        self.plans = plans;
        let Err(e) = result else {
            return;
        };
        log!(
            "{NAME}: could not record {} results together ({e}); recording them one by one",
            outcomes.len()
        );
        let mut plans = queue::Plans::default();
        let result = txn("unleash_webhook: recording results one by one", || {
            let mut kept_rows = Vec::new();
            for o in &outcomes {
                let Err(e) =
                    queue::isolated(|| queue::record(&mut plans, std::slice::from_ref(o), &[]))
                else {
                    continue;
                };
                let bare = o.stripped(format!("the result could not be recorded: {e}"));
                if let Err(e2) =
                    queue::isolated(|| queue::record(&mut plans, std::slice::from_ref(&bare), &[]))
                {
                    warning!(
                        "{NAME}: the result of delivery {} cannot be recorded ({e2}); it will be sent again",
                        o.delivery_id
                    );
                    if !o.has_row {
                        kept_rows.push(o.delivery_id / capture::PAIRS_PER_ROW as i64);
                    }
                }
            }
            let rows: Vec<i64> = rows
                .iter()
                .copied()
                .filter(|r| !kept_rows.contains(r))
                .collect();
            queue::isolated(|| queue::record(&mut plans, &[], &rows))
        });
        self.plans = plans;
        if let Err(e) = result {
            self.failed("record results", e);
        }
    }
}

/// What of an event grows its body with it: its JSON columns.
fn event_size(row: &EventRow) -> usize {
    [&row.data, &row.pre_data, &row.tags]
        .iter()
        .map(|c| c.as_ref().map_or(0, String::len))
        .sum()
}
