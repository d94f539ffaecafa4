//! The deliveries the worker holds in memory between reading the inbox and handing them to a
//! sender: per subscription, in turn, each within its share; and the ways they leave memory
//! for the log (a paused subscription, or a slow one when memory is full).

use super::*;

impl Worker {
    /// Takes an inbox row: its pairs wait in memory for a sender, except those of a dropped
    /// subscription (cancelled) or a paused one (written to the log as pending, where resume
    /// finds them), and those recorded before a restart. The row is deleted with the outcome
    /// of its last held pair (or now, with these outcomes, if none is held).
    pub(super) fn hold(&mut self, row: queue::InboxRow) {
        let now = Instant::now();
        let mut held = 0;
        for (i, &(event, sub)) in row.pairs.iter().enumerate() {
            let delivery_id = row.delivery_id(i);
            if row.done.contains(&delivery_id) {
                continue;
            }
            let state = self.subs.get(&sub).map(|s| (s.enabled, s.dropped));
            let (status, error) = match state {
                Some((true, false)) => {
                    let queue = self.held.entry(sub).or_default();
                    if queue.is_empty() {
                        self.turns.push_back(sub);
                    }
                    queue.push_back(Held {
                        delivery_id,
                        inbox_id: row.id,
                        event,
                        since: now,
                    });
                    self.held_total += 1;
                    held += 1;
                    continue;
                }
                Some((false, false)) => ("pending", None),
                // dropped, or deleted from the table by hand
                _ => ("cancelled", Some("subscription dropped".to_string())),
            };
            self.log_due |= status == "pending";
            self.outcomes.push(Outcome {
                delivery_id,
                has_row: false,
                subscription_id: sub,
                event_table: row.event_table,
                event_id: row.events[event].0,
                event_type: row.events[event].1.clone(),
                created_at: row.queued_at,
                attempt: None,
                new_status: status,
                retry_in_ms: 0.0,
                last_error: error,
            });
        }
        if held == 0 {
            self.finished_rows.push(row.id);
            return;
        }
        self.rows.insert(
            row.id,
            HeldRow {
                table: row.event_table,
                queued_at: row.queued_at,
                events: row.events,
                left: held,
            },
        );
    }

    /// One pair of an inbox row has its outcome: when it was the last, the row goes with it.
    pub(super) fn count_down(&mut self, inbox_id: i64) {
        if let Some(row) = self.rows.get_mut(&inbox_id) {
            row.left = row.left.saturating_sub(1);
            if row.left == 0 {
                self.rows.remove(&inbox_id);
                self.finished_rows.push(inbox_id);
            }
        }
    }

    /// Takes up to `free` held pairs, a subscription at a time in turn, each within its share
    /// of the senders.
    pub(super) fn take_held(&mut self, free: usize) -> Vec<Sending> {
        let per_sub = self.window_per_sub();
        let mut taken: HashMap<i64, i32> = HashMap::new();
        let mut out = Vec::new();
        let mut idle_rounds = 0;
        while out.len() < free && !self.turns.is_empty() && idle_rounds < self.turns.len() {
            let Some(sub) = self.turns.pop_front() else {
                break;
            };
            let busy = self.in_flight_per_sub.get(&sub).copied().unwrap_or(0)
                + taken.get(&sub).copied().unwrap_or(0);
            let queue = self.held.get_mut(&sub);
            match queue {
                Some(queue) if busy < per_sub => {
                    if let Some(h) = queue.pop_front() {
                        self.held_total -= 1;
                        *taken.entry(sub).or_insert(0) += 1;
                        idle_rounds = 0;
                        if let Some(row) = self.rows.get(&h.inbox_id) {
                            let (event_id, event_type) = row.events[h.event].clone();
                            out.push(Sending {
                                delivery_id: h.delivery_id,
                                subscription_id: sub,
                                origin: Origin::Inbox {
                                    inbox_id: h.inbox_id,
                                },
                                table: row.table,
                                event_id,
                                event_type,
                                created_at: row.queued_at,
                                attempt: 1,
                                round_attempt: 1,
                                body: None,
                                content_hash: None,
                            });
                        }
                    }
                    if queue.is_empty() {
                        self.held.remove(&sub);
                    } else {
                        self.turns.push_back(sub);
                    }
                }
                Some(_) => {
                    // its share is taken: its turn comes again
                    idle_rounds += 1;
                    self.turns.push_back(sub);
                }
                None => {}
            }
        }
        out
    }

    /// A delivery whose events table is locked now waits for a later turn: an inbox pair goes
    /// back to its queue, a claimed log row (claimed, under its lease) to the deferred ones.
    pub(super) fn defer(&mut self, s: Sending) {
        match s.origin {
            Origin::Inbox { .. } => self.unhold(s),
            Origin::Log { .. } => self.deferred.push(s),
        }
    }

    /// Puts a taken pair back at the head of its subscription's queue.
    pub(super) fn unhold(&mut self, s: Sending) {
        let Origin::Inbox { inbox_id } = s.origin else {
            // a claimed log row stays claimed; its lease brings it back
            return;
        };
        let Some(row) = self.rows.get(&inbox_id) else {
            return;
        };
        let event = row
            .events
            .iter()
            .position(|(id, _)| *id == s.event_id)
            .unwrap_or(0);
        let queue = self.held.entry(s.subscription_id).or_default();
        if queue.is_empty() {
            self.turns.push_front(s.subscription_id);
        }
        queue.push_front(Held {
            delivery_id: s.delivery_id,
            inbox_id,
            event,
            since: Instant::now(),
        });
        self.held_total += 1;
    }

    /// When the held pairs fill memory: the largest holder, if it has waited PUT_ASIDE_AFTER,
    /// goes to the log (see PUT_ASIDE_AFTER).
    pub(super) fn put_aside_slow(&mut self) {
        if self.held_total < MAX_HELD {
            return;
        }
        let largest = self
            .held
            .iter()
            .max_by_key(|(_, q)| q.len())
            .filter(|(_, q)| {
                q.front()
                    .is_some_and(|h| h.since.elapsed() >= PUT_ASIDE_AFTER)
            })
            .map(|(sub, _)| *sub);
        self.put_aside(largest.into_iter().collect());
    }

    /// What is held for a subscription paused since: the log keeps it for resume.
    pub(super) fn put_aside_paused(&mut self) {
        let paused: Vec<i64> = self
            .held
            .keys()
            .filter(|sub| self.subs.get(sub).is_some_and(|s| !s.enabled))
            .copied()
            .collect();
        self.put_aside(paused);
    }

    pub(super) fn put_aside(&mut self, subs: Vec<i64>) {
        for sub in subs {
            let Some(queue) = self.held.remove(&sub) else {
                continue;
            };
            self.turns.retain(|s| *s != sub);
            self.held_total -= queue.len();
            for h in queue {
                let Some(row) = self.rows.get(&h.inbox_id) else {
                    continue;
                };
                let (event_id, event_type) = row.events[h.event].clone();
                self.outcomes.push(Outcome {
                    delivery_id: h.delivery_id,
                    has_row: false,
                    subscription_id: sub,
                    event_table: row.table,
                    event_id,
                    event_type,
                    created_at: row.queued_at,
                    attempt: None,
                    new_status: "pending",
                    retry_in_ms: 0.0,
                    last_error: None,
                });
                self.count_down(h.inbox_id);
            }
            self.log_due = true;
        }
    }
}
