//! The durable spool of finished recordings. This doc is its on-disk format.
//!
//! ```text
//! <dir>/tmp/<id>.wav.part      a recording being written (WAV header sizes
//!                              are zero until it is finished)
//! <dir>/tmp/<id>.meta.json     metadata as known at the answer (duration 0),
//!                              for recovering a recording cut by a crash
//! <dir>/tmp/<id>.json.part     its final metadata, being written at finish
//! <dir>/ready/<id>.wav         a finished recording: complete WAV, fsynced
//! <dir>/ready/<id>.json        its metadata: exactly the object to upload
//! <dir>/ready/<id>.progress    parts of a split recording already accepted
//!                              by the server (JSON: {"parts": [[k, "id"]..]})
//! <dir>/sent/<id>.receipt.json what the server answered (its ids), written
//!                              first; then <id>.json and <id>.wav move here
//! <dir>/failed/<id>.error.json why the server (or the agent) refused it for
//!                              good: status, reason, message; written first,
//!                              then <id>.json and <id>.wav move here
//! <dir>/.lock                  held (flock) by the one process using the spool
//! ```
//!
//! Invariants:
//! - A file appears in `ready/` only complete: it is written under `tmp/`,
//!   fsynced, then renamed (rename is atomic within one filesystem).
//! - The WAV is renamed into `ready/` before its JSON, and the directory is
//!   fsynced after each rename; so a `ready/<id>.json` always has its WAV
//!   beside it, and a reader (the uploader) takes a recording by its JSON.
//! - `<id>` is unique and safe as a file name: `YYYYMMDDTHHMMSS.mmmZ-<hash>`
//!   of the answer time and a hash of the Call-ID, To-tag and answer time.
//! - Leaving `ready/` goes the other way: the receipt (or error) file is
//!   written and fsynced in `sent/` (or `failed/`) first, then the JSON is
//!   moved (the recording leaves the queue), then the WAV. [`Spool::recover`]
//!   finishes any move a crash interrupted.
//!
//! Delivery is *at least once*: a crash (or a lost answer) between the
//! server's 201 and the receipt being on disk leaves the recording in
//! `ready/`, and it is uploaded again: the server may get one duplicate,
//! never a loss. A recording is only ever deleted from `sent/` (after the
//! retention) or by an operator from `failed/`.
//!
//! Recovery at start-up ([`Spool::recover`], before anything else uses the
//! spool): a `tmp/<id>.wav.part` left by a process that died while recording
//! gets its WAV header fixed to the whole frames present
//! ([`wav::repair`](crate::media::wav::repair)), its metadata from
//! `tmp/<id>.meta.json` with the duration of the audio present and a
//! "truncated" note, and is committed to `ready/` like any recording. One
//! whose final metadata (`tmp/<id>.json.part`) was complete and whose WAV was
//! finished is committed as it was. One without a usable header or metadata
//! goes to `failed/` with the reason, never deleted.
//!
//! Quota: with a quota set ([`Spool::with_quota`]), [`Store::create`] refuses
//! new recordings while the files under the spool take that many bytes or
//! more (logged as an error and counted in [`Spool::refused`]); nothing
//! already queued is ever deleted to make room. What the files take is not
//! scanned at each new call (that would cost the packet thread time in
//! proportion to the spool: `sent/` keeps a week of recordings by default)
//! but estimated: the last scan, made every [`USAGE_RESCAN`] on a thread of
//! its own, plus what this process's recordings have grown by since.
//!
//! A full filesystem (ENOSPC, or EDQUOT) is handled the same way, as the
//! writes fail: a recording that cannot be created is refused and leaves no
//! file behind; one whose writes fail part-way stays in `tmp/` (its WAV and
//! provisional metadata) and is repaired and queued, flagged truncated, by
//! the next [`Spool::recover`] with room to do it. A recovery that runs out
//! of space leaves what it could not finish in `tmp/` for the next one
//! ([`Recovery::deferred`]) instead of failing. Every such error is logged
//! with `SPOOL DISK FULL`, the recording's id and the OS error; nothing
//! queued in `ready/` is touched.

use crate::call::metadata::format_duration;
use crate::call::Metadata;
use crate::media::wav;
use crate::recorder::Store;
use serde::{Deserialize, Serialize};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// A spool directory.
#[derive(Debug, Clone)]
pub struct Spool {
    dir: PathBuf,
    tmp: PathBuf,
    ready: PathBuf,
    sent: PathBuf,
    failed: PathBuf,
    /// Refuse new recordings while the spool holds this many bytes (0: no quota).
    quota_bytes: u64,
    /// Recordings refused because of the quota (shared by clones).
    refused: Arc<AtomicU64>,
    /// The lock file, while this process holds the spool.
    lock: Option<Arc<File>>,
    /// What the recordings share: permits to keep their file open (see
    /// [`SpoolWav`]) and how much they have grown.
    files: Arc<OpenFiles>,
    /// What the files take, as the quota sees it (with a quota only).
    usage: Option<Arc<UsageEstimate>>,
}

/// What the spool's recordings share, by their clones too: the permits to
/// keep a file open (see [`SpoolWav`]) and the bytes they have grown by.
#[derive(Debug)]
struct OpenFiles {
    permits: AtomicUsize,
    /// Bytes appended to recordings' WAVs by this process (only grows).
    grown: AtomicU64,
}

/// How often the spool's files are rescanned for the quota.
pub const USAGE_RESCAN: std::time::Duration = std::time::Duration::from_secs(5);

/// The bytes the spool's files take, as the quota sees it, shared by clones:
/// the last scan plus what recordings' WAVs have grown by since it began
/// (a file deleted since is still counted until the next scan; what the
/// scan saw of a write made during it is counted twice until the next).
#[derive(Debug, Default)]
struct UsageEstimate {
    /// The last scan's total, and [`OpenFiles::grown`] when it began.
    scanned: std::sync::Mutex<(u64, u64)>,
}

impl UsageEstimate {
    fn bytes(&self, spool: &Spool) -> u64 {
        let (scanned, grown_then) = *self.scanned.lock().unwrap_or_else(|p| p.into_inner());
        let grown = spool.files.grown.load(Ordering::Relaxed);
        scanned.saturating_add(grown.saturating_sub(grown_then))
    }

    /// Scans the folders of `spool` and takes the result.
    fn rescan(&self, spool: &Spool) -> io::Result<()> {
        let grown_then = spool.files.grown.load(Ordering::Relaxed);
        let scanned = spool.usage()?;
        *self.scanned.lock().unwrap_or_else(|p| p.into_inner()) = (scanned, grown_then);
        Ok(())
    }
}

/// What the server said when it accepted a recording, kept in
/// `sent/<id>.receipt.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Receipt {
    /// The server's id of each part uploaded (one unless the recording was split).
    pub server_ids: Vec<String>,
    /// When the last part was accepted (UTC, RFC 3339).
    pub sent_at: String,
}

/// Why a recording was refused for good, kept in `failed/<id>.error.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FailureRecord {
    /// The HTTP status the server answered, or 0 when the agent itself
    /// refused the recording (unreadable WAV, no metadata).
    pub status: u16,
    /// The API's `reason` (400 only), when the server gave one.
    pub reason: Option<i64>,
    /// The server's `message` (or the agent's explanation).
    pub message: String,
    /// Server ids of the parts accepted before the failure (split recordings).
    #[serde(default)]
    pub server_ids: Vec<String>,
    /// When it was moved to `failed/` (UTC, RFC 3339).
    pub failed_at: String,
}

/// Parts of a split recording already accepted, kept in `ready/<id>.progress`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    /// `(part index from 1, server id)` of every part accepted so far.
    pub parts: Vec<(u32, String)>,
}

/// What [`Spool::recover`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Recordings cut by a crash, repaired and queued (flagged truncated).
    pub repaired: Vec<String>,
    /// Recordings whose commit a crash interrupted, committed as they were.
    pub committed: Vec<String>,
    /// Moves to `sent/` or `failed/` a crash interrupted, completed.
    pub moves_completed: usize,
    /// Half-written recordings that could not be used, moved to `failed/`.
    pub unusable: Vec<String>,
    /// Stray temporary files removed.
    pub strays_removed: usize,
    /// Recordings cut by a crash (or a full disk) that could not be
    /// recovered now because the filesystem is full: left in `tmp/` as they
    /// were, for the next recovery.
    pub deferred: Vec<String>,
}

/// Where a recording is in the spool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Folder {
    /// Queued for upload.
    Ready,
    /// Accepted by the server.
    Sent,
    /// Refused for good.
    Failed,
}

impl Spool {
    /// Opens (creating if needed) a spool directory and checks it is writable.
    pub fn open(dir: &Path) -> io::Result<Spool> {
        let tmp = dir.join("tmp");
        let ready = dir.join("ready");
        let sent = dir.join("sent");
        let failed = dir.join("failed");
        for sub in [&tmp, &ready, &sent, &failed] {
            fs::create_dir_all(sub).map_err(|e| annotate(e, sub))?;
        }
        let probe = tmp.join(".write-test");
        File::create(&probe).map_err(|e| annotate(e, &tmp))?;
        fs::remove_file(&probe)?;
        Ok(Spool {
            dir: dir.to_owned(),
            tmp,
            ready,
            sent,
            failed,
            quota_bytes: 0,
            refused: Arc::new(AtomicU64::new(0)),
            lock: None,
            files: Arc::new(OpenFiles {
                permits: AtomicUsize::new(open_file_budget()),
                grown: AtomicU64::new(0),
            }),
            usage: None,
        })
    }

    /// Sets the quota: [`Store::create`] refuses new recordings while the
    /// spool holds `bytes` or more (0: no quota). Scans the spool's files
    /// once now, then every [`USAGE_RESCAN`] on a thread of its own
    /// (`taprec-spool-usage`, gone once the spool and its clones are).
    pub fn with_quota(mut self, bytes: u64) -> Spool {
        self.quota_bytes = bytes;
        if bytes == 0 || self.usage.is_some() {
            return self;
        }
        let estimate = Arc::new(UsageEstimate::default());
        if let Err(e) = estimate.rescan(&self) {
            tracing::warn!(spool = %self.dir.display(), error = %e, "cannot measure the spool for its quota");
        }
        let weak = Arc::downgrade(&estimate);
        let scanner = Spool {
            usage: None,
            lock: None,
            ..self.clone()
        };
        let spawned = std::thread::Builder::new()
            .name("taprec-spool-usage".into())
            .spawn(move || loop {
                std::thread::sleep(USAGE_RESCAN);
                let Some(estimate) = weak.upgrade() else {
                    return;
                };
                if let Err(e) = estimate.rescan(&scanner) {
                    tracing::warn!(error = %e, "cannot measure the spool for its quota");
                }
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "cannot start the spool usage thread: the quota counts deletions only as of now");
        }
        self.usage = Some(estimate);
        self
    }

    /// The bytes the spool's files take as the quota sees them: the last
    /// scan plus what recordings have grown by since ([`usage`](Self::usage)
    /// without a quota).
    pub fn quota_usage(&self) -> io::Result<u64> {
        match &self.usage {
            Some(estimate) => Ok(estimate.bytes(self)),
            None => self.usage(),
        }
    }

    /// Takes the spool for this process (an exclusive lock on `<dir>/.lock`,
    /// held by this value and its clones). Fails, naming the file, when
    /// another process holds it: two processes must not recover or upload
    /// the same spool.
    pub fn lock(&mut self) -> io::Result<()> {
        if self.lock.is_some() {
            return Ok(());
        }
        let path = self.dir.join(".lock");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| annotate(e, &path))?;
        match file.try_lock() {
            Ok(()) => {
                self.lock = Some(Arc::new(file));
                Ok(())
            }
            Err(fs::TryLockError::WouldBlock) => Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                format!(
                    "{}: the spool is in use by another taprec process",
                    path.display()
                ),
            )),
            Err(fs::TryLockError::Error(e)) => Err(annotate(e, &path)),
        }
    }

    /// Recordings refused so far because the quota was reached.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// `<dir>/sent`.
    pub fn sent_dir(&self) -> &Path {
        &self.sent
    }

    /// `<dir>/failed`.
    pub fn failed_dir(&self) -> &Path {
        &self.failed
    }

    /// The WAV of recording `id` in `folder`.
    pub fn wav_in(&self, folder: Folder, id: &str) -> PathBuf {
        self.folder(folder).join(format!("{id}.wav"))
    }

    /// The metadata of recording `id` in `folder`.
    pub fn json_in(&self, folder: Folder, id: &str) -> PathBuf {
        self.folder(folder).join(format!("{id}.json"))
    }

    /// `sent/<id>.receipt.json`.
    pub fn receipt_path(&self, id: &str) -> PathBuf {
        self.sent.join(format!("{id}.receipt.json"))
    }

    /// `failed/<id>.error.json`.
    pub fn error_path(&self, id: &str) -> PathBuf {
        self.failed.join(format!("{id}.error.json"))
    }

    fn progress_path(&self, id: &str) -> PathBuf {
        self.ready.join(format!("{id}.progress"))
    }

    fn folder(&self, folder: Folder) -> &Path {
        match folder {
            Folder::Ready => &self.ready,
            Folder::Sent => &self.sent,
            Folder::Failed => &self.failed,
        }
    }

    /// Ids of the recordings in `folder` (those with metadata), sorted (oldest
    /// first, as ids start with the answer time).
    pub fn list(&self, folder: Folder) -> io::Result<Vec<String>> {
        let dir = self.folder(folder);
        let mut ids = Vec::new();
        for entry in fs::read_dir(dir).map_err(|e| annotate(e, dir))? {
            let name = entry?.file_name();
            let Some(name) = name.to_str() else { continue };
            let Some(id) = name.strip_suffix(".json") else {
                continue;
            };
            if id.ends_with(".receipt") || id.ends_with(".error") || id.is_empty() {
                continue;
            }
            ids.push(id.to_string());
        }
        ids.sort();
        Ok(ids)
    }

    /// Reads the metadata of recording `id` in `folder`.
    pub fn metadata(&self, folder: Folder, id: &str) -> io::Result<Metadata> {
        read_json(&self.json_in(folder, id))
    }

    /// Parts of a split recording already accepted (empty if none).
    pub fn progress(&self, id: &str) -> Progress {
        read_json(&self.progress_path(id)).unwrap_or_default()
    }

    /// Records that part `index` of `id` was accepted with `server_id`.
    pub fn add_progress(&self, id: &str, index: u32, server_id: &str) -> io::Result<()> {
        let mut progress = self.progress(id);
        progress.parts.retain(|(k, _)| *k != index);
        progress.parts.push((index, server_id.to_string()));
        write_durably(&self.ready, &self.progress_path(id), &progress)
    }

    /// Moves recording `id` from `ready/` to `sent/` with its receipt, or,
    /// with a retention of zero, deletes it (the receipt is logged by the
    /// caller). See the module doc for the order of operations.
    pub fn mark_sent(&self, id: &str, receipt: &Receipt, keep: bool) -> io::Result<()> {
        if keep {
            write_durably(&self.sent, &self.receipt_path(id), receipt)?;
            self.move_out(id, Folder::Sent)
        } else {
            remove_if_exists(&self.ready_json(id))?;
            sync_dir(&self.ready)?;
            remove_if_exists(&self.ready_wav(id))?;
            remove_if_exists(&self.progress_path(id))?;
            sync_dir(&self.ready)
        }
    }

    /// Moves recording `id` from `ready/` to `failed/` with why.
    pub fn mark_failed(&self, id: &str, failure: &FailureRecord) -> io::Result<()> {
        write_durably(&self.failed, &self.error_path(id), failure)?;
        self.move_out(id, Folder::Failed)
    }

    fn move_out(&self, id: &str, to: Folder) -> io::Result<()> {
        rename_if_exists(&self.ready_json(id), &self.json_in(to, id))?;
        sync_dir(&self.ready)?;
        rename_if_exists(&self.ready_wav(id), &self.wav_in(to, id))?;
        remove_if_exists(&self.progress_path(id))?;
        sync_dir(&self.ready)?;
        sync_dir(self.folder(to))
    }

    /// Deletes recordings in `sent/` whose receipt is older than `retention`.
    /// Returns how many were deleted.
    pub fn purge_sent(&self, retention: Duration) -> io::Result<usize> {
        let now = SystemTime::now();
        let mut purged = 0;
        for id in self.list(Folder::Sent)? {
            let receipt = self.receipt_path(&id);
            let Ok(modified) = fs::metadata(&receipt).and_then(|m| m.modified()) else {
                continue;
            };
            if now.duration_since(modified).unwrap_or_default() < retention {
                continue;
            }
            remove_if_exists(&self.wav_in(Folder::Sent, &id))?;
            remove_if_exists(&self.json_in(Folder::Sent, &id))?;
            remove_if_exists(&receipt)?;
            purged += 1;
        }
        Ok(purged)
    }

    /// Bytes taken by the files of the spool (all folders).
    pub fn usage(&self) -> io::Result<u64> {
        let mut total = 0u64;
        for dir in [&self.tmp, &self.ready, &self.sent, &self.failed] {
            for entry in fs::read_dir(dir)? {
                if let Ok(meta) = entry?.metadata() {
                    total = total.saturating_add(meta.len());
                }
            }
        }
        Ok(total)
    }

    /// Brings the spool back to its invariants after a crash; see the module
    /// doc. Call it once at start-up, with the spool [locked](Self::lock),
    /// before recording or uploading.
    pub fn recover(&self) -> io::Result<Recovery> {
        let mut report = Recovery::default();
        // 1. Moves out of ready/ that a crash interrupted.
        for (folder, marker) in [
            (Folder::Sent, ".receipt.json"),
            (Folder::Failed, ".error.json"),
        ] {
            for entry in fs::read_dir(self.folder(folder))? {
                let name = entry?.file_name();
                let Some(id) = name.to_str().and_then(|n| n.strip_suffix(marker)) else {
                    continue;
                };
                if self.ready_json(id).exists() || self.ready_wav(id).exists() {
                    self.move_out(id, folder)?;
                    report.moves_completed += 1;
                }
            }
        }
        // 2. A WAV in ready/ without its JSON: a commit cut between renames.
        for entry in fs::read_dir(&self.ready)? {
            let name = entry?.file_name();
            let Some(id) = name.to_str().and_then(|n| n.strip_suffix(".wav")) else {
                continue;
            };
            if self.ready_json(id).exists() {
                continue;
            }
            if let Ok(meta) = read_json::<Metadata>(&self.part_json(id)) {
                self.finish_commit(id, &meta)?;
                report.committed.push(id.to_string());
            } else if let Ok(meta) = read_json::<Metadata>(&self.provisional_json(id)) {
                self.finish_commit(id, &meta)?;
                report.committed.push(id.to_string());
            } else {
                let failure = local_failure("recovered WAV without any metadata");
                write_durably(&self.failed, &self.error_path(id), &failure)?;
                rename_if_exists(&self.ready_wav(id), &self.wav_in(Folder::Failed, id))?;
                report.unusable.push(id.to_string());
            }
        }
        // 3. Recordings being written when the process died.
        let mut parts = Vec::new();
        for entry in fs::read_dir(&self.tmp)? {
            let name = entry?.file_name();
            if let Some(id) = name.to_str().and_then(|n| n.strip_suffix(".wav.part")) {
                parts.push(id.to_string());
            }
        }
        parts.sort();
        for id in parts {
            match self.recover_part(&id, &mut report) {
                Err(e) if is_disk_full(&e) => {
                    tracing::error!(
                        id = %id,
                        error = %e,
                        "SPOOL DISK FULL: a cut recording cannot be recovered now; left in tmp/ for the next start"
                    );
                    report.deferred.push(id);
                }
                other => other?,
            }
        }
        // 4. Whatever is left in tmp/ belongs to no recording (except the
        // deferred ones).
        for entry in fs::read_dir(&self.tmp)? {
            let entry = entry?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if report.deferred.iter().any(|id| {
                name.strip_prefix(id.as_str())
                    .is_some_and(|r| r.starts_with('.'))
            }) {
                continue;
            }
            fs::remove_file(entry.path())?;
            report.strays_removed += 1;
        }
        sync_dir(&self.tmp)?;
        Ok(report)
    }

    fn recover_part(&self, id: &str, report: &mut Recovery) -> io::Result<()> {
        let path = self.part_wav(id);
        let provisional = read_json::<Metadata>(&self.provisional_json(id));
        let final_meta = read_json::<Metadata>(&self.part_json(id));
        let repaired = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .and_then(|mut f| {
                let r = wav::repair(&mut f)?;
                f.sync_all()?;
                Ok(r)
            });
        let (repaired, base) = match (repaired, final_meta, provisional) {
            (Ok(r), Ok(meta), _) if !r.changed => {
                // Finished, and its final metadata was written: only the
                // renames were missing.
                self.finish_commit(id, &meta)?;
                report.committed.push(id.to_string());
                return Ok(());
            }
            (Ok(r), _, Ok(meta)) => (r, meta),
            (Ok(r), Ok(meta), Err(_)) => (r, meta),
            (Err(e), _, meta) => {
                let failure = local_failure(&format!(
                    "recording cut by a crash before its WAV header was complete: {e}"
                ));
                self.fail_part(id, meta.ok().as_ref(), &failure)?;
                report.unusable.push(id.to_string());
                return Ok(());
            }
            (Ok(_), Err(_), Err(e)) => {
                let failure = local_failure(&format!(
                    "recording cut by a crash and its metadata is unreadable: {e}"
                ));
                self.fail_part(id, None, &failure)?;
                report.unusable.push(id.to_string());
                return Ok(());
            }
        };
        if repaired.frames == 0 {
            // Answered moments before the crash: no audio had reached the
            // disk yet (the recorder holds back the reorder delay and writes
            // about a second at a time). The server refuses an empty
            // track; keep what is known of the call in failed/, with why.
            let failure = local_failure(
                "the recorder stopped before any audio of this call reached the disk; \
                 its metadata is kept, there is no audio to upload",
            );
            self.fail_part(id, Some(&base), &failure)?;
            report.unusable.push(id.to_string());
            return Ok(());
        }
        let mut meta = base;
        let rate = u64::from(repaired.info.sample_rate.max(1));
        let nanos = repaired.frames.saturating_mul(1_000_000_000) / rate;
        meta.duration = format_duration(i64::try_from(nanos).unwrap_or(i64::MAX));
        let note = format!(
            "truncated: the recorder stopped during the call; recovered {} of audio",
            meta.duration
        );
        if meta.notes.is_empty() {
            meta.notes = note;
        } else {
            meta.notes = format!("{}; {note}", meta.notes);
        }
        self.finish_commit(id, &meta)?;
        report.repaired.push(id.to_string());
        Ok(())
    }

    fn fail_part(
        &self,
        id: &str,
        meta: Option<&Metadata>,
        failure: &FailureRecord,
    ) -> io::Result<()> {
        write_durably(&self.failed, &self.error_path(id), failure)?;
        if let Some(meta) = meta {
            write_durably(&self.failed, &self.json_in(Folder::Failed, id), meta)?;
        }
        rename_if_exists(&self.part_wav(id), &self.wav_in(Folder::Failed, id))?;
        sync_dir(&self.failed)
    }

    /// Writes the final metadata and renames WAV then JSON into `ready/`,
    /// exactly as [`Store::commit`] does, for a WAV already fsynced.
    fn finish_commit(&self, id: &str, metadata: &Metadata) -> io::Result<()> {
        let part_json = self.part_json(id);
        write_metadata(&part_json, metadata)?;
        rename_if_exists(&self.part_wav(id), &self.ready_wav(id))?;
        sync_dir(&self.ready)?;
        fs::rename(&part_json, self.ready_json(id))?;
        sync_dir(&self.ready)?;
        remove_if_exists(&self.provisional_json(id))?;
        sync_dir(&self.tmp)
    }

    /// The spool directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `<dir>/ready`.
    pub fn ready_dir(&self) -> &Path {
        &self.ready
    }

    /// Where a finished recording's WAV lives.
    pub fn ready_wav(&self, id: &str) -> PathBuf {
        self.ready.join(format!("{id}.wav"))
    }

    /// Where a finished recording's metadata lives.
    pub fn ready_json(&self, id: &str) -> PathBuf {
        self.ready.join(format!("{id}.json"))
    }

    fn part_wav(&self, id: &str) -> PathBuf {
        self.tmp.join(format!("{id}.wav.part"))
    }

    fn part_json(&self, id: &str) -> PathBuf {
        self.tmp.join(format!("{id}.json.part"))
    }

    fn provisional_json(&self, id: &str) -> PathBuf {
        self.tmp.join(format!("{id}.meta.json"))
    }
}

fn annotate(e: io::Error, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Syncs `dir` once for the steps whose result is still `Ok` (it makes them
/// durable); if that fails, each of them fails with its error. Does nothing
/// when none is `Ok`.
fn sync_dir_for<'a>(dir: &Path, results: impl Iterator<Item = &'a mut io::Result<()>>) {
    let mut waiting: Vec<&mut io::Result<()>> = results.filter(|r| r.is_ok()).collect();
    if waiting.is_empty() {
        return;
    }
    if let Err(e) = sync_dir(dir) {
        let e = annotate(e, dir);
        for result in waiting.iter_mut() {
            **result = Err(io::Error::new(e.kind(), e.to_string()));
        }
    }
}

/// Logs the creations among `ids` that [`Store::sync_creations`] could not
/// make durable (`results`, one per id); one removed meanwhile (discarded)
/// is not worth a warning.
pub fn warn_unsynced_creations(ids: &[String], results: Vec<io::Result<()>>) {
    for (id, synced) in ids.iter().zip(results) {
        match synced {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(id = %id, error = %e, "cannot sync a new recording's metadata")
            }
            Ok(()) => {}
        }
    }
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> io::Result<T> {
    let bytes = fs::read(path)?;
    serde_json::from_slice(&bytes).map_err(|e| annotate(e.into(), path))
}

/// Whether `e` says the filesystem (or the user's disk quota) is full.
pub fn is_disk_full(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
    )
}

/// Writes `bytes` to a new file at `path` and fsyncs it; on failure removes
/// the file (a half-written file is of no use and may hold space on a full
/// disk) and names it in the error.
fn write_new_file(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let written = File::create(path).and_then(|mut file| {
        file.write_all(bytes)?;
        file.sync_all()
    });
    written.map_err(|e| {
        let _ = fs::remove_file(path);
        annotate(e, path)
    })
}

fn write_metadata(path: &Path, metadata: &Metadata) -> io::Result<()> {
    write_new_file(path, &json_bytes(metadata)?)
}

/// Writes `value` as JSON to `path` in `dir` atomically: temp name, fsync,
/// rename, fsync of the directory.
fn write_durably<T: Serialize>(dir: &Path, path: &Path, value: &T) -> io::Result<()> {
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(".tmp");
    let tmp = PathBuf::from(tmp_name);
    write_new_file(&tmp, &json_bytes(value)?)?;
    fs::rename(&tmp, path).map_err(|e| annotate(e, path))?;
    sync_dir(dir)
}

/// `value` as pretty JSON plus a newline, serialised in memory so that it
/// reaches the file in one write (an unbuffered `File` would take a system
/// call per token).
fn json_bytes<T: Serialize>(value: &T) -> io::Result<Vec<u8>> {
    let mut bytes = serde_json::to_vec_pretty(value)?;
    bytes.push(b'\n');
    Ok(bytes)
}

fn rename_if_exists(from: &Path, to: &Path) -> io::Result<()> {
    match fs::rename(from, to) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other.map_err(|e| annotate(e, from)),
    }
}

fn remove_if_exists(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other.map_err(|e| annotate(e, path)),
    }
}

/// The time now as RFC 3339 UTC (for receipts and error records).
pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn local_failure(message: &str) -> FailureRecord {
    FailureRecord {
        status: 0,
        reason: None,
        message: message.to_string(),
        server_ids: Vec::new(),
        failed_at: now_rfc3339(),
    }
}

impl Store for Spool {
    type Output = SpoolWav;

    fn create(&mut self, id: &str, provisional: &Metadata) -> io::Result<SpoolWav> {
        let wav = self.create_unsynced(id, provisional)?;
        let synced = self.sync_created(&[id.to_string()]).pop();
        synced.unwrap_or_else(|| Err(io::Error::other("creation not synced")))?;
        Ok(wav)
    }

    /// The recording's files, without their fsyncs: the caller runs
    /// [`Spool::sync_created`] later (the live service's committer and the
    /// write-behind writer do, off the packet path). Until then a crash may
    /// lose the provisional metadata.
    fn create_unsynced(&mut self, id: &str, provisional: &Metadata) -> io::Result<SpoolWav> {
        if self.quota_bytes > 0 {
            let usage = self.quota_usage()?;
            if usage >= self.quota_bytes {
                let refused = self.refused.fetch_add(1, Ordering::Relaxed) + 1;
                tracing::error!(
                    id,
                    usage,
                    quota = self.quota_bytes,
                    refused,
                    "SPOOL FULL: recording refused; free space or raise spool.max_bytes"
                );
                return Err(io::Error::other(format!(
                    "spool quota reached ({usage} of {} bytes): recording {id} refused",
                    self.quota_bytes
                )));
            }
        }
        let path = self.part_wav(id);
        let wav = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| annotate(e, &path))?;
        let wav = SpoolWav::new(path, wav, &self.files);
        let meta_path = self.provisional_json(id);
        let written = File::create(&meta_path)
            .and_then(|mut meta| meta.write_all(&json_bytes(provisional)?))
            .map_err(|e| annotate(e, &meta_path));
        if let Err(e) = written {
            // Nothing of this recording is worth keeping: leave no file.
            self.discard_recording(id, wav);
            if is_disk_full(&e) {
                tracing::error!(
                    id,
                    error = %e,
                    "SPOOL DISK FULL: recording refused; queued recordings are kept; free space in the spool"
                );
            }
            return Err(e);
        }
        Ok(wav)
    }

    fn sync_creations(&mut self, ids: &[String]) -> Vec<io::Result<()>> {
        self.sync_created(ids)
    }

    fn commit(&mut self, id: &str, wav: SpoolWav, metadata: &Metadata) -> io::Result<()> {
        self.commit_recording(id, wav, metadata)
    }

    fn commit_all(
        &mut self,
        recordings: Vec<(String, SpoolWav, Metadata)>,
    ) -> Vec<(String, io::Result<()>)> {
        self.commit_recordings(recordings)
    }

    fn discard(&mut self, id: &str, wav: SpoolWav) {
        self.discard_recording(id, wav)
    }
}

impl Spool {
    /// Makes what [`Store::create_unsynced`] wrote for each of `ids`
    /// durable: each provisional metadata file, then the `tmp/` directory
    /// (the new files' names) once for all of them. One result per id, in
    /// order; a failed directory sync fails every one.
    pub fn sync_created(&self, ids: &[String]) -> Vec<io::Result<()>> {
        let mut results: Vec<io::Result<()>> = ids
            .iter()
            .map(|id| {
                let path = self.provisional_json(id);
                File::open(&path)
                    .and_then(|f| f.sync_all())
                    .map_err(|e| annotate(e, &path))
            })
            .collect();
        sync_dir_for(&self.tmp, results.iter_mut());
        results
    }

    /// [`Store::commit`] (fsync, rename into `ready/`), callable from any
    /// thread holding a clone of the spool.
    pub fn commit_recording(&self, id: &str, wav: SpoolWav, metadata: &Metadata) -> io::Result<()> {
        self.commit_recordings(vec![(id.to_string(), wav, metadata.clone())])
            .pop()
            .map_or_else(
                || Err(io::Error::other("recording not committed")),
                |(_, r)| r,
            )
    }

    /// [`Store::commit_all`]: [`commit_recording`](Self::commit_recording)
    /// of each recording, step by step for all of them, so that each
    /// directory sync serves them all (three for the group instead of three
    /// a recording). Every recording goes through the same durable states in
    /// the same order as when committed alone (its WAV in `ready/` before
    /// its metadata, its metadata before the provisional one is removed),
    /// so recovery after a crash finds each one as it would have. A step
    /// that fails for a recording leaves it where it stopped, with that
    /// error; a directory sync that fails fails every recording waiting on
    /// it.
    pub fn commit_recordings(
        &self,
        recordings: Vec<(String, SpoolWav, Metadata)>,
    ) -> Vec<(String, io::Result<()>)> {
        let mut results: Vec<(String, io::Result<()>)> = Vec::with_capacity(recordings.len());
        for (id, mut wav, metadata) in recordings {
            let synced = wav.sync_all().map_err(|e| annotate(e, &self.part_wav(&id)));
            drop(wav);
            let written = synced.and_then(|()| write_metadata(&self.part_json(&id), &metadata));
            if let Err(e) = &written {
                if is_disk_full(e) {
                    tracing::error!(
                        id,
                        error = %e,
                        "SPOOL DISK FULL: recording cannot be finished; left in tmp/ and queued, flagged truncated, by the next start with free space"
                    );
                }
            }
            results.push((id, written));
        }
        // Each step for every recording still on its way, then the sync
        // that makes the step durable for all of them.
        let step = |results: &mut Vec<(String, io::Result<()>)>,
                    act: &dyn Fn(&str) -> io::Result<()>,
                    dir: &Path| {
            for (id, result) in results.iter_mut() {
                if result.is_ok() {
                    *result = act(id);
                }
            }
            sync_dir_for(dir, results.iter_mut().map(|(_, r)| r));
        };
        step(
            &mut results,
            &|id| fs::rename(self.part_wav(id), self.ready_wav(id)),
            &self.ready,
        );
        step(
            &mut results,
            &|id| fs::rename(self.part_json(id), self.ready_json(id)),
            &self.ready,
        );
        step(
            &mut results,
            &|id| fs::remove_file(self.provisional_json(id)),
            &self.tmp,
        );
        results
    }

    /// [`Store::discard`].
    pub fn discard_recording(&self, id: &str, wav: SpoolWav) {
        drop(wav);
        // Nothing else refers to the partial file; failing to remove it only
        // leaves a stray file in tmp/.
        let _ = fs::remove_file(self.part_wav(id));
        let _ = fs::remove_file(self.provisional_json(id));
    }
}

/// Open files the spool's recordings may hold at once: the process's soft
/// limit on open files (from `/proc/self/limits`; 1024 when unknown) less
/// 256 for everything else.
fn open_file_budget() -> usize {
    let soft = fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|limits| {
            let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
            let soft = line
                .trim_start_matches("Max open files")
                .split_whitespace()
                .next()?;
            match soft {
                "unlimited" => Some(1 << 20),
                n => n.parse::<usize>().ok(),
            }
        })
        .unwrap_or(1024);
    soft.saturating_sub(256).max(16)
}

/// A recording's WAV file in `tmp/`, as the recorder writes it.
///
/// The number of open files is bounded: a recording keeps its file open only
/// while the spool has a permit for it (up to the process's open-file limit
/// less a reserve, shared by all recordings). Beyond that, each write opens
/// the file, writes at the recording's position and closes it again, so tens
/// of thousands of concurrent calls never exhaust file descriptors. Give it a
/// buffer (`BufWriter`) so that such writes are large and rare.
#[derive(Debug)]
pub struct SpoolWav {
    path: PathBuf,
    /// The open file, while this recording holds a permit.
    file: Option<File>,
    files: Arc<OpenFiles>,
    /// Where the next write goes.
    pos: u64,
    /// Length of the file (largest end written).
    len: u64,
    /// A write failed because the disk is full (logged once).
    disk_full: bool,
}

impl SpoolWav {
    /// Wraps a freshly created (empty) file; closes it at once when no permit
    /// is left.
    fn new(path: PathBuf, file: File, files: &Arc<OpenFiles>) -> SpoolWav {
        let taken = files
            .permits
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
            .is_ok();
        SpoolWav {
            path,
            file: taken.then_some(file),
            files: Arc::clone(files),
            pos: 0,
            len: 0,
            disk_full: false,
        }
    }

    /// Runs `f` on the file, opening it for this call only if it is closed.
    fn with_file<T>(&mut self, f: impl FnOnce(&File) -> io::Result<T>) -> io::Result<T> {
        match &self.file {
            Some(file) => f(file),
            None => {
                let file = OpenOptions::new()
                    .write(true)
                    .open(&self.path)
                    .map_err(|e| annotate(e, &self.path))?;
                f(&file)
            }
        }
    }

    /// Makes the written bytes durable.
    fn sync_all(&mut self) -> io::Result<()> {
        self.with_file(File::sync_all)
    }
}

impl Write for SpoolWav {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        use std::os::unix::fs::FileExt;
        let pos = self.pos;
        let written = match self.with_file(|file| file.write_at(buf, pos)) {
            Ok(n) => n,
            Err(e) => {
                if is_disk_full(&e) && !self.disk_full {
                    self.disk_full = true;
                    tracing::error!(
                        file = %self.path.display(),
                        error = %e,
                        "SPOOL DISK FULL: recording cut; it stays in tmp/ and is queued, flagged truncated, by the next start with free space"
                    );
                }
                // Name the file, unless `with_file` already did (reopening).
                return Err(if e.raw_os_error().is_some() {
                    annotate(e, &self.path)
                } else {
                    e
                });
            }
        };
        self.pos += written as u64;
        if self.pos > self.len {
            self.files
                .grown
                .fetch_add(self.pos - self.len, Ordering::Relaxed);
            self.len = self.pos;
        }
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl crate::media::wav::AudioSink for SpoolWav {}

impl std::io::Seek for SpoolWav {
    fn seek(&mut self, to: io::SeekFrom) -> io::Result<u64> {
        self.pos = seek_target(self.pos, self.len, to)?;
        Ok(self.pos)
    }
}

/// Where seeking `to` leads a sink that tracks its own position `pos` and
/// length `len` (the recording outputs that write at offsets).
pub(crate) fn seek_target(pos: u64, len: u64, to: io::SeekFrom) -> io::Result<u64> {
    let target = match to {
        io::SeekFrom::Start(n) => Some(n),
        io::SeekFrom::End(d) => len.checked_add_signed(d),
        io::SeekFrom::Current(d) => pos.checked_add_signed(d),
    };
    target.ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek before the start"))
}

impl Drop for SpoolWav {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            self.files.permits.fetch_add(1, Ordering::AcqRel);
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::call::metadata::{LocalParty, RemoteParty};

    /// Metadata for tests of stores.
    pub(crate) fn meta() -> Metadata {
        Metadata {
            start_date_time: "2026-01-01T00:00:00.000000Z".into(),
            duration: "PT1S".into(),
            direction: 1,
            local_party: LocalParty {
                username: "u".into(),
                phone_number: "1".into(),
            },
            remote_party: RemoteParty {
                phone_number: "2".into(),
            },
            pbx_call_id: "c".into(),
            notes: String::new(),
            preserved: false,
        }
    }

    #[test]
    fn commit_moves_wav_then_json_into_ready() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path()).unwrap();
        let mut wav = spool.create("rec1", &meta()).unwrap();
        wav.write_all(b"RIFF....").unwrap();
        assert!(!spool.ready_wav("rec1").exists());
        spool.commit("rec1", wav, &meta()).unwrap();
        assert_eq!(fs::read(spool.ready_wav("rec1")).unwrap(), b"RIFF....");
        let json: Metadata =
            serde_json::from_slice(&fs::read(spool.ready_json("rec1")).unwrap()).unwrap();
        assert_eq!(json, meta());
        assert_eq!(fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);
    }

    #[test]
    fn creations_are_synced_together_each_with_its_own_result() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path()).unwrap();
        let mut wavs = Vec::new();
        for id in ["rec0", "rec1", "rec2"] {
            let wav = spool.create_unsynced(id, &meta()).unwrap();
            // What the crash recovery reads back is there before the sync.
            let json: Metadata =
                serde_json::from_slice(&fs::read(spool.provisional_json(id)).unwrap()).unwrap();
            assert_eq!(json, meta());
            wavs.push((id, wav));
        }
        let (id, discarded) = wavs.remove(1);
        spool.discard(id, discarded);
        let ids = ["rec0", "rec1", "rec2"].map(String::from);
        let results = spool.sync_creations(&ids);
        assert_eq!(results.len(), 3);
        assert!(results[0].is_ok() && results[2].is_ok());
        let gone = results[1].as_ref().unwrap_err();
        assert_eq!(gone.kind(), io::ErrorKind::NotFound);
        assert!(gone.to_string().contains("rec1"), "{gone}");
        assert!(spool.sync_creations(&[]).is_empty());
        for (id, wav) in wavs {
            spool.commit(id, wav, &meta()).unwrap();
            assert!(spool.ready_wav(id).exists() && !spool.provisional_json(id).exists());
        }
    }

    #[test]
    fn recordings_committed_together_land_as_committed_alone() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path()).unwrap();
        let mut batch = Vec::new();
        for i in 0..5 {
            let id = format!("rec{i}");
            let mut wav = spool.create(&id, &meta()).unwrap();
            wav.write_all(format!("RIFF{i}").as_bytes()).unwrap();
            let mut metadata = meta();
            metadata.pbx_call_id = format!("call-{i}");
            batch.push((id, wav, metadata));
        }
        // The metadata of rec2 cannot be written (a directory stands where
        // its file goes): it fails alone and stays in tmp/, for recovery.
        fs::create_dir(dir.path().join("tmp").join("rec2.json.part")).unwrap();
        let results = spool.commit_all(batch);
        let ids: Vec<_> = results.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(ids, ["rec0", "rec1", "rec2", "rec3", "rec4"]);
        for (i, (id, result)) in results.iter().enumerate() {
            if i == 2 {
                assert!(result.is_err());
                assert!(!spool.ready_wav(id).exists() && !spool.ready_json(id).exists());
                assert!(spool.part_wav(id).exists() && spool.provisional_json(id).exists());
                continue;
            }
            result.as_ref().unwrap();
            assert_eq!(
                fs::read(spool.ready_wav(id)).unwrap(),
                format!("RIFF{i}").as_bytes()
            );
            let json: Metadata =
                serde_json::from_slice(&fs::read(spool.ready_json(id)).unwrap()).unwrap();
            assert_eq!(json.pbx_call_id, format!("call-{i}"));
            assert!(!spool.provisional_json(id).exists());
        }
    }

    #[test]
    fn recordings_beyond_the_open_file_budget_write_through_closed_files() {
        use crate::media::wav::{read_info, WavWriter};
        use crate::media::{Law, SampleFormat};
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path()).unwrap();
        spool.files.permits.store(1, Ordering::Release);
        let format = SampleFormat::G711(Law::Ulaw);
        let mut writers = Vec::new();
        for id in ["open", "closed"] {
            let wav = spool.create(id, &meta()).unwrap();
            let buffered = std::io::BufWriter::with_capacity(64, wav);
            writers.push((id, WavWriter::new(buffered, format, 2).unwrap()));
        }
        assert!(writers[0].1.frames() == 0 && spool.files.permits.load(Ordering::Acquire) == 0);
        for (_, w) in &mut writers {
            for i in 0..100u8 {
                w.write_g711(&[i, 255 - i]).unwrap();
            }
        }
        for (id, w) in writers {
            let out = w.finish().unwrap().into_inner().unwrap();
            spool.commit(id, out, &meta()).unwrap();
            let bytes = fs::read(spool.ready_wav(id)).unwrap();
            let info = read_info(&mut std::io::Cursor::new(&bytes)).unwrap();
            assert_eq!(info.data_len, 200, "{id}");
            let data = &bytes[info.data_offset as usize..];
            assert_eq!(&data[..4], &[0, 255, 1, 254], "{id}");
            assert_eq!(&data[198..200], &[99, 156], "{id}");
        }
        // Both permits are back once the recordings are done.
        assert_eq!(spool.files.permits.load(Ordering::Acquire), 1);
    }

    #[test]
    fn discard_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path()).unwrap();
        let wav = spool.create("rec2", &meta()).unwrap();
        spool.discard("rec2", wav);
        assert_eq!(fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);
        assert_eq!(fs::read_dir(dir.path().join("ready")).unwrap().count(), 0);
    }

    #[test]
    fn quota_refuses_new_recordings_and_counts_them() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path()).unwrap().with_quota(100);
        let mut wav = spool.create("q1", &meta()).unwrap();
        wav.write_all(&[0u8; 200]).unwrap();
        spool.commit("q1", wav, &meta()).unwrap();
        let err = spool.create("q2", &meta()).unwrap_err();
        assert!(err.to_string().contains("quota"), "{err}");
        assert_eq!(spool.clone().refused(), 1);
        // Nothing queued was deleted.
        assert!(spool.ready_wav("q1").exists());
        assert_eq!(spool.list(Folder::Ready).unwrap(), ["q1"]);
    }

    #[test]
    fn the_quota_counts_growth_at_once_and_deletions_at_the_next_scan() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("sent")).unwrap();
        fs::write(dir.path().join("sent").join("old.wav"), [0u8; 1000]).unwrap();
        let mut spool = Spool::open(dir.path()).unwrap().with_quota(1 << 20);
        // The scan at start saw the old recording.
        assert_eq!(spool.quota_usage().unwrap(), 1000);
        let mut wav = spool.create("q1", &meta()).unwrap();
        wav.write_all(&[1u8; 300]).unwrap();
        // Rewriting bytes already there does not grow the file.
        io::Seek::seek(&mut wav, io::SeekFrom::Start(0)).unwrap();
        wav.write_all(&[2u8; 100]).unwrap();
        // Growth is counted at once, without a scan (the new metadata,
        // small, waits for the next scan).
        assert_eq!(spool.clone().quota_usage().unwrap(), 1300);
        spool.commit("q1", wav, &meta()).unwrap();
        fs::remove_file(dir.path().join("sent").join("old.wav")).unwrap();
        assert_eq!(spool.quota_usage().unwrap(), 1300);
        // The next scan sees the deletion and the metadata.
        spool.usage.as_ref().unwrap().rescan(&spool).unwrap();
        assert_eq!(spool.quota_usage().unwrap(), spool.usage().unwrap());
        assert!(spool.usage().unwrap() > 300 && spool.usage().unwrap() < 1300);
    }

    #[test]
    fn sent_and_failed_moves_and_their_recovery() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path()).unwrap();
        for id in ["a", "b", "c"] {
            let wav = spool.create(id, &meta()).unwrap();
            spool.commit(id, wav, &meta()).unwrap();
        }
        let receipt = Receipt {
            server_ids: vec!["s1".into()],
            sent_at: now_rfc3339(),
        };
        spool.mark_sent("a", &receipt, true).unwrap();
        assert!(spool.wav_in(Folder::Sent, "a").exists());
        assert_eq!(spool.list(Folder::Sent).unwrap(), ["a"]);
        // A crash after the receipt was written but before the moves.
        write_durably(&spool.sent, &spool.receipt_path("b"), &receipt).unwrap();
        let failure = local_failure("x");
        write_durably(&spool.failed, &spool.error_path("c"), &failure).unwrap();
        let report = spool.recover().unwrap();
        assert_eq!(report.moves_completed, 2);
        assert_eq!(spool.list(Folder::Ready).unwrap(), Vec::<String>::new());
        assert!(spool.wav_in(Folder::Sent, "b").exists());
        assert!(spool.json_in(Folder::Failed, "c").exists());
        assert_eq!(spool.purge_sent(Duration::ZERO).unwrap(), 2);
        assert!(spool.list(Folder::Sent).unwrap().is_empty());
    }

    #[test]
    fn a_commit_cut_between_its_renames_is_finished() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path()).unwrap();
        let wav = spool.create("d", &meta()).unwrap();
        drop(wav);
        write_metadata(&spool.tmp.join("d.json.part"), &meta()).unwrap();
        fs::rename(spool.part_wav("d"), spool.ready_wav("d")).unwrap();
        let report = spool.recover().unwrap();
        assert_eq!(report.committed, ["d"]);
        assert_eq!(spool.metadata(Folder::Ready, "d").unwrap(), meta());
        assert_eq!(fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);
    }

    #[test]
    fn ids_are_never_reused() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path()).unwrap();
        let _wav = spool.create("rec3", &meta()).unwrap();
        assert!(spool.create("rec3", &meta()).is_err());
    }
}
