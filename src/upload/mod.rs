//! Delivery of spooled recordings to the recording API.
//!
//! The spool is the source of truth (see [`crate::spool`]): the uploader
//! takes every recording in `ready/`, uploads it (split into parts when it
//! is over `upload.max_file_bytes`), and moves it to `sent/` with the
//! server's id, or to `failed/` with the server's refusal. It never deletes
//! anything unsent. What each answer means ([`retry::classify`]):
//!
//! | answer | outcome |
//! | --- | --- |
//! | 201 | sent: the returned id is kept in `sent/<id>.receipt.json` |
//! | 400 (reason 0, 1, 2), 403, 409 | `failed/` with status, reason and message; not retried |
//! | 401 | kept; an error tells what to fix; retried every `unauthorized_retry_secs` |
//! | 5xx, timeout, refused or dropped connection | kept; retried with capped exponential backoff and jitter, forever |
//!
//! At most `upload.concurrency` uploads are in flight. [`Uploader::drain`]
//! works until the queue is empty or a wait bound is reached; what is left
//! stays queued for the next run.

pub mod client;
pub mod continuous;
pub mod retry;
pub mod split;

use crate::config::UploadConfig;
use crate::media::wav;
use crate::spool::{now_rfc3339, FailureRecord, Folder, Receipt, Spool};
use anyhow::Result;
use client::ApiClient;
use retry::{Backoff, Verdict};
use serde::Serialize;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// What became of one recording in a drain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// Accepted by the server (every part of it).
    Sent {
        /// The server's ids, one per part.
        server_ids: Vec<String>,
    },
    /// Refused for good; now in `failed/`.
    Failed {
        /// HTTP status (0: refused by the agent before upload).
        status: u16,
        /// The API's reason code, if given.
        reason: Option<i64>,
        /// The server's message.
        message: String,
    },
    /// Still in `ready/` (the wait ran out while retrying).
    Pending {
        /// The last error.
        last_error: String,
    },
}

/// One recording's delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Delivery {
    /// The spool id.
    pub id: String,
    /// HTTP attempts made in this drain.
    pub attempts: u32,
    /// What became of it.
    #[serde(flatten)]
    pub outcome: Outcome,
}

/// The result of [`Uploader::drain`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DrainReport {
    /// Every recording that was in `ready/`, sorted by id.
    pub deliveries: Vec<Delivery>,
}

impl DrainReport {
    /// Recordings sent.
    pub fn sent(&self) -> usize {
        self.count(|o| matches!(o, Outcome::Sent { .. }))
    }

    /// Recordings refused for good.
    pub fn failed(&self) -> usize {
        self.count(|o| matches!(o, Outcome::Failed { .. }))
    }

    /// Recordings still queued.
    pub fn pending(&self) -> usize {
        self.count(|o| matches!(o, Outcome::Pending { .. }))
    }

    /// True when everything was sent.
    pub fn all_sent(&self) -> bool {
        self.sent() == self.deliveries.len()
    }

    fn count(&self, f: impl Fn(&Outcome) -> bool) -> usize {
        self.deliveries.iter().filter(|d| f(&d.outcome)).count()
    }

    /// Prints the report for people: one line per recording, then totals.
    pub fn print(&self) {
        for d in &self.deliveries {
            match &d.outcome {
                Outcome::Sent { server_ids } => println!(
                    "  sent      {} (server id {}, {} attempt{})",
                    d.id,
                    server_ids.join(", "),
                    d.attempts,
                    if d.attempts == 1 { "" } else { "s" }
                ),
                Outcome::Failed {
                    status,
                    reason,
                    message,
                } => println!(
                    "  FAILED    {}: HTTP {status}{} {message}",
                    d.id,
                    reason.map(|r| format!(" reason {r}")).unwrap_or_default()
                ),
                Outcome::Pending { last_error } => println!(
                    "  PENDING   {} after {} attempts: {last_error}",
                    d.id, d.attempts
                ),
            }
        }
        println!(
            "upload: {} recordings: sent {}, failed {}, still queued {}",
            self.deliveries.len(),
            self.sent(),
            self.failed(),
            self.pending()
        );
    }
}

/// Uploads the recordings of a spool.
#[derive(Debug, Clone)]
pub struct Uploader {
    spool: Spool,
    client: ApiClient,
    config: UploadConfig,
}

impl Uploader {
    /// An uploader for `spool` configured by `[upload]` (`url` must be set).
    pub fn new(config: &UploadConfig, spool: Spool) -> Result<Uploader> {
        Ok(Uploader {
            spool,
            client: ApiClient::new(config)?,
            config: config.clone(),
        })
    }

    /// Uploads everything in `ready/` now, retrying as the module doc says
    /// until done or until `wait` has passed. Blocks on its own runtime.
    pub fn drain_blocking(&self, wait: Duration) -> Result<DrainReport> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        runtime.block_on(self.drain(wait))
    }

    /// Uploads everything in `ready/` now, retrying until done or until
    /// `wait` has passed; see [`Uploader::drain_blocking`].
    pub async fn drain(&self, wait: Duration) -> Result<DrainReport> {
        let deadline = Instant::now() + wait;
        if self.config.sent_retention_secs > 0 {
            let purged = self
                .spool
                .purge_sent(Duration::from_secs(self.config.sent_retention_secs))?;
            if purged > 0 {
                tracing::info!(purged, "deleted sent recordings past their retention");
            }
        }
        let ids = self.spool.list(Folder::Ready)?;
        tracing::info!(queued = ids.len(), url = %self.client.url(), "uploading the spool");
        let queue = Arc::new(Mutex::new(ids.into_iter().collect::<VecDeque<_>>()));
        let mut workers = Vec::new();
        for _ in 0..self.config.concurrency.max(1) {
            let queue = queue.clone();
            let this = self.clone();
            workers.push(tokio::spawn(async move {
                let mut done = Vec::new();
                loop {
                    let next = queue.lock().ok().and_then(|mut q| q.pop_front());
                    let Some(id) = next else { break };
                    done.push(this.deliver(id, deadline).await);
                }
                done
            }));
        }
        let mut deliveries = Vec::new();
        for worker in workers {
            deliveries.extend(worker.await?);
        }
        deliveries.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(DrainReport { deliveries })
    }

    /// Refuses a recording locally (it cannot be uploaded as it is).
    fn refuse(&self, id: String, message: String) -> Delivery {
        tracing::error!(id = %id, %message, "recording cannot be uploaded; moved to failed/");
        let record = FailureRecord {
            status: 0,
            reason: None,
            message: message.clone(),
            server_ids: Vec::new(),
            failed_at: now_rfc3339(),
        };
        if let Err(e) = self.spool.mark_failed(&id, &record) {
            return pending(
                id,
                0,
                format!("{message}; and moving it to failed/ failed: {e}"),
            );
        }
        Delivery {
            id,
            attempts: 0,
            outcome: Outcome::Failed {
                status: 0,
                reason: None,
                message,
            },
        }
    }

    async fn deliver(&self, id: String, deadline: Instant) -> Delivery {
        let metadata = match self.spool.metadata(Folder::Ready, &id) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return pending(id, 0, "left ready/ while queued".into())
            }
            Err(e) => return self.refuse(id, format!("metadata unreadable: {e}")),
        };
        let wav_path = self.spool.wav_in(Folder::Ready, &id);
        let header = std::fs::File::open(&wav_path).and_then(|mut f| {
            let len = f.metadata()?.len();
            Ok((wav::read_info(&mut f)?, len))
        });
        let (info, file_len) = match header {
            Ok(h) => h,
            Err(e) => return self.refuse(id, format!("WAV unreadable: {e}")),
        };
        let parts = match split::plan(&id, &info, file_len, &metadata, self.config.max_file_bytes) {
            Ok(parts) => parts,
            Err(e) => return self.refuse(id, e.to_string()),
        };
        let done = self.spool.progress(&id);
        let mut server_ids = Vec::new();
        let mut attempts = 0u32;
        let seed = id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        }) ^ u64::from(std::process::id());
        let mut backoff = Backoff::new(
            Duration::from_millis(self.config.retry_initial_ms),
            Duration::from_secs(self.config.retry_max_secs),
            seed,
        );
        for part in &parts {
            if let Some((_, sid)) = done.parts.iter().find(|(k, _)| *k == part.index) {
                server_ids.push(sid.clone());
                continue;
            }
            loop {
                attempts += 1;
                let verdict = match tokio::time::timeout_at(
                    deadline,
                    self.client.send(part, &wav_path),
                )
                .await
                {
                    Ok(v) => v,
                    Err(_) => {
                        return pending(id, attempts, "the wait ran out during an upload".into())
                    }
                };
                let delay = match verdict {
                    Verdict::Accepted { id: server_id } => {
                        tracing::info!(id = %id, server_id = %server_id, part = part.index, parts = part.count, "recording accepted");
                        if part.count > 1 {
                            if let Err(e) = self.spool.add_progress(&id, part.index, &server_id) {
                                tracing::error!(id = %id, error = %e, "cannot note the part as sent; it may be sent again");
                            }
                        }
                        server_ids.push(server_id);
                        backoff.reset();
                        break;
                    }
                    Verdict::Rejected {
                        status,
                        reason,
                        message,
                    } => {
                        tracing::error!(id = %id, status, reason, message = %message, "server refused the recording; moved to failed/, not retried");
                        let record = FailureRecord {
                            status,
                            reason,
                            message: message.clone(),
                            server_ids: server_ids.clone(),
                            failed_at: now_rfc3339(),
                        };
                        if let Err(e) = self.spool.mark_failed(&id, &record) {
                            tracing::error!(id = %id, error = %e, "cannot move the recording to failed/");
                            return pending(
                                id,
                                attempts,
                                format!("refused ({status}) but not moved: {e}"),
                            );
                        }
                        return Delivery {
                            id,
                            attempts,
                            outcome: Outcome::Failed {
                                status,
                                reason,
                                message,
                            },
                        };
                    }
                    Verdict::Unauthorized { message } => {
                        tracing::error!(id = %id, message = %message, "server answered 401 Unauthorized: check upload.username and upload.password (or password_file), or upload.bearer_token; the recording is kept and retried");
                        if deadline.saturating_duration_since(Instant::now())
                            < Duration::from_secs(self.config.unauthorized_retry_secs)
                        {
                            return pending(id, attempts, format!("401 Unauthorized: {message}"));
                        }
                        Duration::from_secs(self.config.unauthorized_retry_secs)
                    }
                    Verdict::Retry { why } => {
                        let delay = backoff.next_delay();
                        tracing::warn!(id = %id, attempt = attempts, error = %why, retry_in_ms = delay.as_millis() as u64, "upload failed; will retry");
                        if Instant::now() + delay >= deadline {
                            return pending(id, attempts, why);
                        }
                        delay
                    }
                };
                tokio::time::sleep(delay).await;
            }
        }
        let receipt = Receipt {
            server_ids: server_ids.clone(),
            sent_at: now_rfc3339(),
        };
        let keep = self.config.sent_retention_secs > 0;
        if let Err(e) = self.spool.mark_sent(&id, &receipt, keep) {
            // The server has it; left in ready/, it would be sent again.
            tracing::error!(id = %id, error = %e, "sent, but cannot move it out of ready/: it may be sent again");
        }
        Delivery {
            id,
            attempts,
            outcome: Outcome::Sent { server_ids },
        }
    }
}

fn pending(id: String, attempts: u32, last_error: String) -> Delivery {
    Delivery {
        id,
        attempts,
        outcome: Outcome::Pending { last_error },
    }
}
