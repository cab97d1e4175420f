//! The long-running uploader of `taprec run`: keeps draining the spool as
//! recordings arrive, with a per-recording backoff between rounds, and a
//! bounded final round at shutdown.
//!
//! Each recording is delivered by [`Uploader::deliver`] (which retries on
//! its own within [`ROUND`]); a recording still undelivered after a round is
//! tried again after a delay that doubles per round up to
//! `upload.retry_max_secs`. New recordings are picked up when the recorder
//! wakes the loop, else by a periodic scan of `ready/`.

use super::{Outcome, Uploader};
use crate::metrics::Metrics;
use crate::spool::Folder;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Notify};
use tokio::task::JoinSet;
use tokio::time::Instant;

/// How long one delivery round of a recording may retry before it is put
/// back for a later round.
pub const ROUND: Duration = Duration::from_secs(30);
/// `ready/` is scanned at least this often.
const SCAN: Duration = Duration::from_secs(2);
/// Sent recordings past their retention are purged this often.
const PURGE: Duration = Duration::from_secs(600);

/// How the loop is told to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Keep uploading.
    Run,
    /// Upload what is ready until this instant, then return.
    FinishBy(Instant),
}

struct Retry {
    at: Instant,
    rounds: u32,
}

/// Uploads the spool until told to stop. `uploader` carries the current
/// settings (`None`: no `upload.url`, nothing is uploaded); a new value (a
/// reload) applies to the next deliveries.
pub async fn run(
    uploader: watch::Receiver<Option<Uploader>>,
    wake: Arc<Notify>,
    metrics: Arc<Metrics>,
    mut control: watch::Receiver<Control>,
) {
    let mut retry: HashMap<String, Retry> = HashMap::new();
    let mut in_flight: HashSet<String> = HashSet::new();
    let mut final_done: HashSet<String> = HashSet::new();
    let mut tasks: JoinSet<(String, super::Delivery)> = JoinSet::new();
    let mut next_purge = Instant::now();
    loop {
        let mode = *control.borrow();
        let current = uploader.borrow().clone();
        let now = Instant::now();
        if let Control::FinishBy(by) = mode {
            if now >= by && tasks.is_empty() {
                break;
            }
        }
        if let Some(up) = &current {
            if now >= next_purge && up.config.sent_retention_secs > 0 {
                next_purge = now + PURGE;
                let spool = up.spool.clone();
                let keep = Duration::from_secs(up.config.sent_retention_secs);
                if let Ok(Ok(n)) = tokio::task::spawn_blocking(move || spool.purge_sent(keep)).await
                {
                    if n > 0 {
                        tracing::info!(purged = n, "deleted sent recordings past their retention");
                    }
                }
            }
            let ids = up.spool.list(Folder::Ready).unwrap_or_else(|e| {
                tracing::error!(error = %e, "cannot list the spool");
                Vec::new()
            });
            let listed: HashSet<&String> = ids.iter().collect();
            retry.retain(|id, _| listed.contains(id));
            let limit = up.config.concurrency.max(1);
            for id in &ids {
                if in_flight.len() >= limit {
                    break;
                }
                if in_flight.contains(id) {
                    continue;
                }
                let deadline = match mode {
                    Control::Run => {
                        if retry.get(id).is_some_and(|r| r.at > now) {
                            continue;
                        }
                        now + ROUND
                    }
                    Control::FinishBy(by) => {
                        if final_done.contains(id) || now >= by {
                            continue;
                        }
                        by
                    }
                };
                in_flight.insert(id.clone());
                let (this, id) = (up.clone(), id.clone());
                tasks.spawn(async move {
                    let delivery = this.deliver(id.clone(), deadline).await;
                    (id, delivery)
                });
            }
            if let Control::FinishBy(_) = mode {
                if tasks.is_empty() {
                    break;
                }
            }
        } else if let Control::FinishBy(_) = mode {
            break;
        }
        metrics
            .uploads_retrying
            .store(retry.len() as u64, Ordering::Relaxed);
        tokio::select! {
            Some(joined) = tasks.join_next(), if !tasks.is_empty() => {
                let Ok((id, delivery)) = joined else { continue };
                in_flight.remove(&id);
                if let Control::FinishBy(_) = *control.borrow() {
                    final_done.insert(id.clone());
                }
                match delivery.outcome {
                    Outcome::Sent { .. } => {
                        retry.remove(&id);
                        metrics.uploads_sent.fetch_add(1, Ordering::Relaxed);
                    }
                    Outcome::Failed { .. } => {
                        retry.remove(&id);
                        metrics.uploads_failed.fetch_add(1, Ordering::Relaxed);
                    }
                    Outcome::Pending { last_error } => {
                        metrics.upload_retries.fetch_add(1, Ordering::Relaxed);
                        let (initial, max) = current.as_ref().map_or(
                            (Duration::from_secs(1), Duration::from_secs(300)),
                            |u| (
                                Duration::from_millis(u.config.retry_initial_ms),
                                Duration::from_secs(u.config.retry_max_secs),
                            ),
                        );
                        let entry = retry.entry(id.clone()).or_insert(Retry { at: Instant::now(), rounds: 0 });
                        entry.rounds = entry.rounds.saturating_add(1);
                        let delay = initial
                            .saturating_mul(1u32 << entry.rounds.min(20))
                            .min(max);
                        entry.at = Instant::now() + delay;
                        tracing::warn!(id = %id, error = %last_error, retry_in_s = delay.as_secs(), "upload not done yet; will retry");
                    }
                }
            }
            _ = wake.notified() => {}
            _ = tokio::time::sleep(SCAN) => {}
            changed = control.changed() => {
                if changed.is_err() {
                    break;
                }
            }
        }
    }
    tasks.shutdown().await;
    metrics
        .uploads_retrying
        .store(retry.len() as u64, Ordering::Relaxed);
}
