//! `taprec run`: the live service.
//!
//! ```text
//! capture thread   poll + read the mmap ring -> batches of frames (copied once)
//!        | bounded queue (capture.queue_packets; full: dropped and counted)
//! recorder thread  Recorder::handle_batch / handle_timeout
//!        | bounded queue of file operations (create, write, commit)
//! spool thread     creates and writes the WAV and metadata files
//!        | bounded queue of commit jobs
//! commit thread    fsync + rename into spool ready/
//!        | wake
//! tokio runtime    uploader loop (upload::continuous), /metrics + /health,
//!                  signals: SIGTERM/SIGINT stop, SIGHUP reload
//! ```
//!
//! Neither thread of the packet path touches the disk or waits for the
//! network: the recorder thread hands its WAV bytes (each call's flushes) to
//! the spool thread, which creates and writes the files; every fsync and
//! rename runs on the commit thread. Only when the spool thread is 4,096
//! operations behind does the recorder wait. The capture thread keeps emptying the ring
//! into the queue whatever the recorder does. Timers run on the capture clock; when no packet arrives
//! the recorder's clock moves on with the monotonic clock from the last
//! packet's timestamp, so inactive calls still end.
//!
//! Stop (SIGTERM/SIGINT): the capture stops, every active call is finalized
//! (its notes say "truncated by shutdown") and committed to the spool, the
//! uploader gets `service.shutdown_upload_secs` to deliver what is ready,
//! and the process exits 0. What was not delivered stays in the spool.
//!
//! Reload (SIGHUP): the config file is read again (with the command-line
//! overrides) and applied to `users`, `local_networks`, `[recording]`,
//! `limits.max_calls`, `limits.max_sip_message_bytes` and `[upload]`.
//! `[capture]`, `spool.dir`, `[service]` and the fragment limits need a
//! restart; a reload that changes them says so in the log.

use crate::call::metadata::Metadata;
use crate::capture::batch::FrameBatch;
use crate::capture::live::LiveCapture;
use crate::config::Config;
use crate::metrics::{Metrics, RecorderSnapshot};
use crate::recorder::{Recorder, Store};
use crate::spool::{Spool, SpoolWav};
use crate::upload::continuous::{self, Control};
use crate::upload::Uploader;
use crate::Timestamp;
use anyhow::{Context, Result};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{watch, Notify};

/// `taprec run`: every config key it uses can be overridden here.
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// Configuration file (TOML); see config/taprec.toml. SIGHUP reloads it.
    #[arg(short, long)]
    pub config: Option<PathBuf>,
    /// Interface to capture from (`capture.interface`).
    #[arg(short, long, value_name = "IF")]
    pub interface: Option<String>,
    /// BPF filter (`capture.filter`); "" captures everything.
    #[arg(long, value_name = "BPF")]
    pub filter: Option<String>,
    /// Capture ring size in MiB (`capture.buffer_mib`).
    #[arg(long, value_name = "MIB")]
    pub buffer_mib: Option<u32>,
    /// Bytes kept per frame (`capture.snaplen`).
    #[arg(long, value_name = "BYTES")]
    pub snaplen: Option<u32>,
    /// Do not put the interface in promiscuous mode (`capture.promiscuous = false`).
    #[arg(long)]
    pub no_promiscuous: bool,
    /// Packets queued for the recorder thread (`capture.queue_packets`).
    #[arg(long, value_name = "N")]
    pub queue_packets: Option<usize>,
    /// Metrics and health endpoint, `host:port` or "" (`service.metrics_listen`).
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<String>,
    /// Seconds to keep uploading at shutdown (`service.shutdown_upload_secs`).
    #[arg(long, value_name = "SECS")]
    pub shutdown_upload_secs: Option<u64>,
    /// Recording settings (local networks, spool, format, timeouts, users).
    #[command(flatten)]
    pub recording: crate::cli::RecordingOverrides,
    /// The recording API endpoint (`upload.url`).
    #[arg(long, value_name = "URL")]
    pub upload_url: Option<String>,
    /// Only record into the spool; do not upload even if `upload.url` is set.
    #[arg(long)]
    pub no_upload: bool,
}

impl RunArgs {
    /// The config file (or defaults) with the command-line overrides, checked.
    pub fn load_config(&self) -> Result<Config> {
        let mut c = match &self.config {
            Some(path) => Config::load(path)?,
            None => Config::default(),
        };
        let cap = &mut c.capture;
        if let Some(v) = &self.interface {
            cap.interface = v.clone();
        }
        if let Some(v) = &self.filter {
            cap.filter = v.clone();
        }
        if let Some(v) = self.buffer_mib {
            cap.buffer_mib = v;
        }
        if let Some(v) = self.snaplen {
            cap.snaplen = v;
        }
        if self.no_promiscuous {
            cap.promiscuous = false;
        }
        if let Some(v) = self.queue_packets {
            cap.queue_packets = v;
        }
        if let Some(v) = &self.metrics_listen {
            c.service.metrics_listen = v.clone();
        }
        if let Some(v) = self.shutdown_upload_secs {
            c.service.shutdown_upload_secs = v;
        }
        self.recording.apply(&mut c);
        if let Some(v) = &self.upload_url {
            c.upload.url = v.clone();
        }
        if self.no_upload {
            c.upload.url.clear();
        }
        c.validate()?;
        if c.capture.interface.is_empty() {
            anyhow::bail!("no interface: set capture.interface in the config or pass --interface");
        }
        Ok(c)
    }
}

/// Runs `taprec run` until SIGTERM/SIGINT; see the module doc.
pub fn main(args: &RunArgs) -> Result<()> {
    let config = args.load_config()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("taprec-io")
        .enable_all()
        .build()?;
    let args = args.clone();
    runtime.block_on(run(config, move || args.load_config()))
}

/// Packets per batch handed from the capture thread to the recorder thread.
const BATCH: usize = 512;

/// A new batch: frames copied out of the ring, handed over in one queue slot.
fn new_batch() -> FrameBatch {
    FrameBatch::with_capacity(BATCH, BATCH * 256)
}

/// Runs the service with `config` until SIGTERM/SIGINT; `reload` gives the
/// config to apply on SIGHUP. Must be called inside a tokio runtime.
pub async fn run(
    config: Config,
    reload: impl Fn() -> Result<Config> + Send + Sync + 'static,
) -> Result<()> {
    let spool = open_spool(&config)?;
    let mut capture = LiveCapture::open(&config.capture)?;
    tracing::info!(
        interface = %config.capture.interface,
        filter = %config.capture.filter,
        buffer_mib = config.capture.buffer_mib,
        promiscuous = config.capture.promiscuous,
        spool = %config.spool.dir.display(),
        upload = !config.upload.url.is_empty(),
        "capturing"
    );
    let metrics = Arc::new(Metrics::new());
    metrics.capture_alive();
    metrics.publish_recorder(RecorderSnapshot::default());
    if !config.service.metrics_listen.is_empty() {
        let listener = tokio::net::TcpListener::bind(&config.service.metrics_listen)
            .await
            .with_context(|| {
                format!(
                    "service.metrics_listen = {:?}: cannot listen",
                    config.service.metrics_listen
                )
            })?;
        tracing::info!(addr = %config.service.metrics_listen, "metrics at /metrics, health at /health");
        let (m, s) = (metrics.clone(), spool.clone());
        tokio::spawn(async move {
            if let Err(e) = crate::metrics::serve(listener, m, Some(s)).await {
                tracing::error!(error = %e, "metrics endpoint stopped");
            }
        });
    }

    // The packet path: two threads and a bounded queue.
    let stop = Arc::new(AtomicBool::new(false));
    let slots = (config.capture.queue_packets / BATCH).max(2);
    let (tx, rx) = mpsc::sync_channel::<FrameBatch>(slots);
    let (recycle_tx, recycle_rx) = mpsc::channel::<FrameBatch>();
    let (reload_tx, reload_rx) = mpsc::channel::<Config>();
    let wake = Arc::new(Notify::new());
    let capture_thread = {
        let (stop, metrics) = (stop.clone(), metrics.clone());
        std::thread::Builder::new()
            .name("taprec-capture".into())
            .spawn(move || capture_loop(&mut capture, &stop, &metrics, tx, recycle_rx))?
    };
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    // File work runs on two threads of its own, off the packet path: the
    // spool thread creates and writes files, the committer fsyncs and renames.
    let (jobs_tx, jobs_rx) = mpsc::sync_channel::<Job>(COMMIT_QUEUE);
    let committer_thread = {
        let (spool, metrics, wake) = (spool.clone(), metrics.clone(), wake.clone());
        std::thread::Builder::new()
            .name("taprec-commit".into())
            .spawn(move || committer(&spool, &metrics, &wake, jobs_rx))?
    };
    let (io_tx, io_rx) = mpsc::sync_channel::<Io>(IO_QUEUE);
    let spool_thread = {
        let (spool, metrics) = (spool.clone(), metrics.clone());
        std::thread::Builder::new()
            .name("taprec-spool".into())
            .spawn(move || spool_io(spool, &metrics, io_rx, jobs_tx))?
    };
    let recorder_thread = {
        let store = LiveStore {
            spool: spool.clone(),
            io: io_tx,
            quota: config.spool.max_bytes > 0,
            next: 0,
        };
        let recorder = Recorder::new(&config, store);
        let metrics = metrics.clone();
        std::thread::Builder::new()
            .name("taprec-recorder".into())
            .spawn(move || {
                recorder_loop(recorder, &metrics, rx, recycle_tx, reload_rx);
                let _ = done_tx.send(());
            })?
    };

    // Uploads.
    let (uploader_tx, uploader_rx) = watch::channel(make_uploader(&config, &spool));
    let (control_tx, control_rx) = watch::channel(Control::Run);
    let upload_task = tokio::spawn(continuous::run(
        uploader_rx,
        wake.clone(),
        metrics.clone(),
        control_rx,
    ));

    // Signals.
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    let mut current = config.clone();
    let mut done_rx = done_rx;
    let why = loop {
        tokio::select! {
            _ = term.recv() => break "SIGTERM",
            _ = int.recv() => break "SIGINT",
            _ = &mut done_rx => break "the packet path stopped",
            _ = hup.recv() => {
                match reload() {
                    Ok(new) => {
                        for key in restart_only_changes(&current, &new) {
                            tracing::warn!(key, "changed in the config, but needs a restart; keeping the running value");
                        }
                        if new.upload.url != current.upload.url
                            || format!("{:?}", new.upload) != format!("{:?}", current.upload)
                            || new.upload.password != current.upload.password
                            || new.upload.bearer_token != current.upload.bearer_token
                        {
                            let _ = uploader_tx.send(make_uploader(&new, &spool));
                        }
                        let _ = reload_tx.send(new.clone());
                        metrics.reloads.fetch_add(1, Ordering::Relaxed);
                        tracing::info!("configuration reloaded (users, local networks, recording, limits, upload)");
                        current = new;
                    }
                    Err(e) => tracing::error!(error = %format!("{e:#}"), "reload refused; keeping the running configuration"),
                }
            }
        }
    };
    tracing::info!(
        signal = why,
        "stopping: finalizing active calls and flushing the spool"
    );
    stop.store(true, Ordering::Relaxed);
    let joined = tokio::task::spawn_blocking(move || {
        let capture = capture_thread.join();
        let recorder = recorder_thread.join();
        // The recorder's end closed the spool thread's queue, whose end
        // closes the committer's: wait for their last work.
        let spool = spool_thread.join();
        let committer = committer_thread.join();
        capture.is_ok() && recorder.is_ok() && spool.is_ok() && committer.is_ok()
    })
    .await
    .unwrap_or(false);
    if !joined {
        anyhow::bail!("a packet thread panicked");
    }
    let grace = Duration::from_secs(current.service.shutdown_upload_secs);
    let _ = control_tx.send(Control::FinishBy(tokio::time::Instant::now() + grace));
    wake.notify_one();
    let _ = tokio::time::timeout(grace + Duration::from_secs(5), upload_task).await;
    let m = metrics.recorder();
    tracing::info!(
        packets = metrics.packets.load(Ordering::Relaxed),
        kernel_dropped = metrics.kernel_dropped.load(Ordering::Relaxed),
        queue_dropped = metrics.queue_dropped.load(Ordering::Relaxed),
        recorded = m.stats.recorded,
        uploads_sent = metrics.uploads_sent.load(Ordering::Relaxed),
        "stopped"
    );
    if why == "the packet path stopped" {
        anyhow::bail!("the capture stopped unexpectedly (see the log)");
    }
    Ok(())
}

fn make_uploader(config: &Config, spool: &Spool) -> Option<Uploader> {
    if config.upload.url.is_empty() {
        return None;
    }
    match Uploader::new(&config.upload, spool.clone()) {
        Ok(u) => Some(u),
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "upload settings unusable; recordings stay in the spool");
            None
        }
    }
}

/// Keys that differ between `old` and `new` but only apply at start-up.
pub fn restart_only_changes(old: &Config, new: &Config) -> Vec<&'static str> {
    let mut keys = Vec::new();
    let (a, b) = (&old.capture, &new.capture);
    if a.interface != b.interface {
        keys.push("capture.interface");
    }
    if a.filter != b.filter {
        keys.push("capture.filter");
    }
    if a.promiscuous != b.promiscuous {
        keys.push("capture.promiscuous");
    }
    if a.buffer_mib != b.buffer_mib {
        keys.push("capture.buffer_mib");
    }
    if a.snaplen != b.snaplen {
        keys.push("capture.snaplen");
    }
    if a.queue_packets != b.queue_packets {
        keys.push("capture.queue_packets");
    }
    if old.spool.dir != new.spool.dir {
        keys.push("spool.dir");
    }
    if old.spool.max_bytes != new.spool.max_bytes {
        keys.push("spool.max_bytes");
    }
    if old.service.metrics_listen != new.service.metrics_listen {
        keys.push("service.metrics_listen");
    }
    if old.limits.max_fragmented_datagrams != new.limits.max_fragmented_datagrams {
        keys.push("limits.max_fragmented_datagrams");
    }
    if old.limits.fragment_timeout_secs != new.limits.fragment_timeout_secs {
        keys.push("limits.fragment_timeout_secs");
    }
    keys
}

/// Opens the spool for this process alone and recovers what a crash left.
pub fn open_spool(config: &Config) -> Result<Spool> {
    let mut spool = Spool::open(&config.spool.dir)
        .with_context(|| format!("spool.dir = {:?} is not usable", config.spool.dir))?
        .with_quota(config.spool.max_bytes);
    spool.lock()?;
    let recovery = spool
        .recover()
        .with_context(|| format!("cannot recover the spool {}", config.spool.dir.display()))?;
    for id in &recovery.repaired {
        tracing::warn!(id = %id, "recovered a recording cut by a crash; queued, flagged truncated");
    }
    for id in &recovery.unusable {
        tracing::error!(id = %id, "a recording cut by a crash could not be recovered; see failed/");
    }
    if recovery.moves_completed + recovery.committed.len() + recovery.strays_removed > 0 {
        tracing::info!(
            committed = recovery.committed.len(),
            moves = recovery.moves_completed,
            strays = recovery.strays_removed,
            "spool bookkeeping completed after a crash"
        );
    }
    Ok(spool)
}

fn capture_loop(
    capture: &mut LiveCapture,
    stop: &AtomicBool,
    metrics: &Metrics,
    tx: SyncSender<FrameBatch>,
    recycle: Receiver<FrameBatch>,
) {
    let mut batch = new_batch();
    let mut next_stats = Instant::now();
    let mut read_error_logged = false;
    let publish_stats = |capture: &mut LiveCapture| match capture.stats() {
        Ok(k) => {
            metrics.kernel_received.store(k.received, Ordering::Relaxed);
            metrics.kernel_dropped.store(k.dropped, Ordering::Relaxed);
            metrics
                .interface_dropped
                .store(k.interface_dropped, Ordering::Relaxed);
        }
        Err(e) => tracing::warn!(error = %e, "cannot read the kernel's capture counters"),
    };
    loop {
        // After the stop, one last pass empties what the ring still holds.
        let stopping = stop.load(Ordering::Relaxed);
        if Instant::now() >= next_stats {
            next_stats = Instant::now() + Duration::from_millis(500);
            publish_stats(capture);
            metrics.capture_alive();
        }
        let wait = if stopping {
            Duration::ZERO
        } else {
            Duration::from_millis(100)
        };
        match capture.poll(wait) {
            Ok(_) => {}
            Err(e) => {
                tracing::error!(error = %e, "capture failed");
                metrics.capture_errors.fetch_add(1, Ordering::Relaxed);
                break;
            }
        }
        // Empty the ring in batches; the queue is never waited on. At the
        // stop, at most a ring's worth more is read.
        let mut rounds = 0u32;
        loop {
            rounds += 1;
            if stopping && rounds > 4096 {
                break;
            }
            let (mut packets, mut bytes) = (0u64, 0u64);
            let read = capture.read_ready(BATCH - batch.len(), |frame| {
                packets += 1;
                bytes += u64::from(frame.original_len);
                batch.push(frame);
            });
            metrics.packets.fetch_add(packets, Ordering::Relaxed);
            metrics.bytes.fetch_add(bytes, Ordering::Relaxed);
            let n = match read {
                Ok(n) => n,
                Err(e) => {
                    metrics.capture_errors.fetch_add(1, Ordering::Relaxed);
                    if !read_error_logged {
                        tracing::error!(error = %e, "capture read error");
                        read_error_logged = true;
                    }
                    0
                }
            };
            if batch.is_empty() {
                break;
            }
            if n == 0 || batch.len() >= BATCH {
                let full = std::mem::replace(
                    &mut batch,
                    recycle.try_recv().unwrap_or_else(|_| new_batch()),
                );
                match tx.try_send(full) {
                    Ok(()) => {}
                    Err(TrySendError::Full(mut b)) => {
                        metrics
                            .queue_dropped
                            .fetch_add(b.len() as u64, Ordering::Relaxed);
                        b.clear();
                        batch = b;
                    }
                    Err(TrySendError::Disconnected(_)) => return,
                }
            }
            if n == 0 {
                break;
            }
        }
        if stopping {
            break;
        }
    }
    publish_stats(capture);
    // Dropping `tx` tells the recorder thread to finish.
}

/// Commit jobs queued at most; beyond it the spool thread waits.
const COMMIT_QUEUE: usize = 65_536;

/// Disk work handed from the spool thread to the committer thread.
enum Job {
    /// Make a new recording's provisional metadata durable.
    Created(String),
    /// fsync a finished recording and move it into `ready/`.
    Commit(String, SpoolWav, Box<Metadata>),
}

/// File operations queued for the spool thread at most (a write is at most
/// about a second of one call's audio, 16 KiB of G.711 or 32 KiB of PCM-16,
/// so this bounds the memory at 64 or 128 MiB);
/// when full, the recorder thread waits: the disk's back-pressure then shows
/// as queue drops at the capture, counted.
const IO_QUEUE: usize = 4096;

/// File work handed from the recorder thread to the spool thread.
enum Io {
    /// Create recording `slot` (files in `tmp/`, provisional metadata).
    Create(u64, String, Box<Metadata>),
    /// A recording the recorder thread created itself (spool quota set).
    Adopt(u64, String, SpoolWav),
    /// Write bytes at an offset of a recording's WAV.
    Write(u64, u64, Vec<u8>),
    /// The recording is finished: commit it.
    Commit(u64, String, Box<Metadata>),
    /// The recording is abandoned.
    Discard(u64, String),
}

/// The spool as the live recorder sees it: every file operation (create,
/// write, fsync, rename) runs on the spool and committer threads, so a slow
/// disk or file system does not stall the packet path. (Creating a file on
/// an ext4 without a journal that recently deleted many files costs
/// milliseconds: measured, it took half the recorder thread's time while
/// 2,000 calls started.) With a spool quota, files are created on the
/// recorder thread so that a refusal reaches the recorder as it did.
struct LiveStore {
    spool: Spool,
    io: SyncSender<Io>,
    quota: bool,
    next: u64,
}

/// A recording's WAV as the recorder writes it: positions are tracked here,
/// the bytes go to the spool thread.
struct LiveWav {
    slot: u64,
    io: SyncSender<Io>,
    pos: u64,
    len: u64,
}

impl LiveWav {
    /// Sends `bytes` to the spool thread, to be written at the position.
    fn send(&mut self, bytes: Vec<u8>) -> std::io::Result<()> {
        let len = bytes.len() as u64;
        if len > 0 {
            self.io
                .send(Io::Write(self.slot, self.pos, bytes))
                .map_err(|_| std::io::Error::other("the spool thread stopped"))?;
        }
        self.pos += len;
        self.len = self.len.max(self.pos);
        Ok(())
    }
}

impl std::io::Write for LiveWav {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.send(buf.to_vec())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl crate::media::wav::AudioSink for LiveWav {
    /// The samples are produced in the buffer that goes to the spool
    /// thread: no copy.
    fn write_with(
        &mut self,
        len: usize,
        fill: &mut dyn FnMut(&mut [u8]) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        let mut buf = vec![0; len];
        fill(&mut buf)?;
        self.send(buf)
    }
}

impl std::io::Seek for LiveWav {
    fn seek(&mut self, to: std::io::SeekFrom) -> std::io::Result<u64> {
        self.pos = crate::spool::seek_target(self.pos, self.len, to)?;
        Ok(self.pos)
    }
}

impl Store for LiveStore {
    type Output = LiveWav;

    fn create(&mut self, id: &str, provisional: &Metadata) -> std::io::Result<LiveWav> {
        self.next += 1;
        let slot = self.next;
        let op = if self.quota {
            Io::Adopt(
                slot,
                id.to_string(),
                self.spool.create_unsynced(id, provisional)?,
            )
        } else {
            Io::Create(slot, id.to_string(), Box::new(provisional.clone()))
        };
        self.io
            .send(op)
            .map_err(|_| std::io::Error::other("the spool thread stopped"))?;
        Ok(LiveWav {
            slot,
            io: self.io.clone(),
            pos: 0,
            len: 0,
        })
    }

    fn commit(&mut self, id: &str, wav: LiveWav, metadata: &Metadata) -> std::io::Result<()> {
        self.io
            .send(Io::Commit(
                wav.slot,
                id.to_string(),
                Box::new(metadata.clone()),
            ))
            .map_err(|_| std::io::Error::other("the spool thread stopped"))
    }

    fn discard(&mut self, id: &str, wav: LiveWav) {
        let _ = self.io.send(Io::Discard(wav.slot, id.to_string()));
    }
}

/// One recording on the spool thread: its file (none if it could not be
/// created) and the first error that spoils it.
type OpenWav = (Option<SpoolWav>, Option<String>);

/// The spool thread: creates and writes the recordings' files, hands
/// finished ones to the committer (fsync, rename) so a slow fsync does not
/// hold up writes.
fn spool_io(mut spool: Spool, metrics: &Metrics, io: Receiver<Io>, jobs: SyncSender<Job>) {
    use std::collections::HashMap;
    use std::io::{Seek, SeekFrom, Write};
    let mut open: HashMap<u64, OpenWav> = HashMap::new();
    for op in io {
        match op {
            Io::Create(slot, id, provisional) => {
                let entry = match spool.create_unsynced(&id, &provisional) {
                    Ok(wav) => {
                        let _ = jobs.send(Job::Created(id));
                        (Some(wav), None)
                    }
                    Err(e) => (None, Some(format!("cannot create it: {e}"))),
                };
                open.insert(slot, entry);
            }
            Io::Adopt(slot, id, wav) => {
                let _ = jobs.send(Job::Created(id));
                open.insert(slot, (Some(wav), None));
            }
            Io::Write(slot, pos, data) => {
                if let Some((Some(wav), error @ None)) = open.get_mut(&slot) {
                    if let Err(e) = wav
                        .seek(SeekFrom::Start(pos))
                        .and_then(|_| wav.write_all(&data))
                    {
                        *error = Some(format!("cannot write it: {e}"));
                    }
                }
            }
            Io::Commit(slot, id, metadata) => match open.remove(&slot) {
                Some((Some(wav), None)) => {
                    let _ = jobs.send(Job::Commit(id, wav, metadata));
                }
                Some((wav, error)) => {
                    metrics.commit_errors.fetch_add(1, Ordering::Relaxed);
                    let error = error.unwrap_or_default();
                    tracing::error!(id = %id, error = %error, "recording lost: its file in the spool is unusable");
                    if let Some(wav) = wav {
                        spool.discard_recording(&id, wav);
                    }
                }
                None => {}
            },
            Io::Discard(slot, id) => {
                if let Some((Some(wav), _)) = open.remove(&slot) {
                    spool.discard_recording(&id, wav);
                }
            }
        }
    }
}

/// Jobs the committer takes at once at most: the creations among them are
/// made durable together, then their commits done together (one sync of
/// each spool directory for all of them, not one per recording).
const COMMIT_BATCH: usize = 1024;

/// The committer thread: takes whatever jobs are queued (up to
/// [`COMMIT_BATCH`]), syncs their creations, then commits their recordings.
fn committer(spool: &Spool, metrics: &Metrics, wake: &Notify, jobs: Receiver<Job>) {
    while let Ok(first) = jobs.recv() {
        let (mut created, mut commits) = (Vec::new(), Vec::new());
        let mut next = Some(first);
        while let Some(job) = next.take() {
            match job {
                Job::Created(id) => created.push(id),
                Job::Commit(id, wav, metadata) => commits.push((id, wav, *metadata)),
            }
            if created.len() + commits.len() < COMMIT_BATCH {
                next = jobs.try_recv().ok();
            }
        }
        crate::spool::warn_unsynced_creations(&created, spool.sync_created(&created));
        for (id, committed) in spool.commit_recordings(commits) {
            match committed {
                Ok(()) => wake.notify_one(),
                Err(e) => {
                    metrics.commit_errors.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(id = %id, error = %e, "recording lost: cannot commit it to the spool");
                }
            }
        }
    }
}

fn recorder_loop(
    mut recorder: Recorder<LiveStore>,
    metrics: &Metrics,
    rx: Receiver<FrameBatch>,
    recycle: mpsc::Sender<FrameBatch>,
    reload: Receiver<Config>,
) {
    // The capture clock: the last packet's time, moved on by the monotonic
    // clock while no packet arrives.
    let mut last: Option<(Timestamp, Instant)> = None;
    let mut next_publish = Instant::now();
    let publish = |recorder: &mut Recorder<LiveStore>| {
        // Outcomes are logged by the recorder; taking them bounds memory.
        // The committer wakes the uploader once a recording is in ready/.
        drop(recorder.take_outcomes());
        metrics.publish_recorder(RecorderSnapshot {
            stats: recorder.stats(),
            active_calls: recorder.active_calls(),
        });
    };
    loop {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(mut batch) => {
                recorder.handle_batch(&batch);
                // One clock read per batch, not per packet.
                if let Some(ts) = batch.iter().map(|f| f.ts).max() {
                    if last.is_none_or(|(t, _)| ts > t) {
                        last = Some((ts, Instant::now()));
                    }
                }
                batch.clear();
                let _ = recycle.send(batch);
            }
            Err(RecvTimeoutError::Timeout) => {
                let now = match last {
                    Some((ts, at)) => {
                        ts.add_nanos(i64::try_from(at.elapsed().as_nanos()).unwrap_or(i64::MAX))
                    }
                    None => wall_clock(),
                };
                recorder.handle_timeout(now);
            }
            Err(RecvTimeoutError::Disconnected) => break,
        }
        while let Ok(config) = reload.try_recv() {
            recorder.reload_config(&config);
        }
        if Instant::now() >= next_publish {
            next_publish = Instant::now() + Duration::from_millis(250);
            publish(&mut recorder);
        }
    }
    let active = recorder.active_calls();
    recorder.shutdown();
    tracing::info!(
        active,
        "finalized the calls active at shutdown (flagged truncated by shutdown)"
    );
    publish(&mut recorder);
}

fn wall_clock() -> Timestamp {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    Timestamp::from_parts(
        i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        d.subsec_nanos(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reload_names_restart_only_keys() {
        let old = Config::default();
        let mut new = old.clone();
        new.users.insert("1001".into(), "mario".into());
        new.local_networks = vec!["10.0.0.0/8".parse().unwrap()];
        assert!(restart_only_changes(&old, &new).is_empty());
        new.capture.interface = "eth9".into();
        new.spool.dir = "/elsewhere".into();
        assert_eq!(
            restart_only_changes(&old, &new),
            vec!["capture.interface", "spool.dir"]
        );
    }

    fn meta(notes: &str) -> Metadata {
        Metadata {
            start_date_time: "2026-01-01T00:00:00.000000Z".into(),
            duration: "PT1S".into(),
            direction: 1,
            local_party: crate::call::metadata::LocalParty {
                username: "u".into(),
                phone_number: "1".into(),
            },
            remote_party: crate::call::metadata::RemoteParty {
                phone_number: "2".into(),
            },
            pbx_call_id: "c".into(),
            notes: notes.into(),
            preserved: false,
        }
    }

    /// Runs a LiveStore against a spool in a temporary directory; returns
    /// the spool after the spool and commit threads have finished.
    fn with_live_store(quota: u64, f: impl FnOnce(&mut LiveStore)) -> (tempfile::TempDir, Spool) {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path()).unwrap().with_quota(quota);
        let metrics = Arc::new(Metrics::new());
        let wake = Arc::new(Notify::new());
        let (jobs_tx, jobs_rx) = mpsc::sync_channel(4);
        let (io_tx, io_rx) = mpsc::sync_channel(4);
        let committer = {
            let (spool, metrics, wake) = (spool.clone(), metrics.clone(), wake.clone());
            std::thread::spawn(move || committer(&spool, &metrics, &wake, jobs_rx))
        };
        let io = {
            let (spool, metrics) = (spool.clone(), metrics.clone());
            std::thread::spawn(move || spool_io(spool, &metrics, io_rx, jobs_tx))
        };
        let mut store = LiveStore {
            spool: spool.clone(),
            io: io_tx,
            quota: quota > 0,
            next: 0,
        };
        f(&mut store);
        drop(store);
        io.join().unwrap();
        committer.join().unwrap();
        (dir, spool)
    }

    #[test]
    fn live_store_writes_seeks_commits_and_discards_off_thread() {
        use std::io::{Seek, SeekFrom, Write};
        for quota in [0, 1 << 30] {
            let (_dir, spool) = with_live_store(quota, |store| {
                let mut a = store.create("rec-a", &meta("")).unwrap();
                let b = store.create("rec-b", &meta("")).unwrap();
                a.write_all(b"RIFF____WAVE").unwrap();
                a.write_all(b"-data").unwrap();
                // Patch the header as the WAV writer does at the end.
                assert_eq!(a.seek(SeekFrom::Start(4)).unwrap(), 4);
                a.write_all(b"1234").unwrap();
                assert_eq!(a.seek(SeekFrom::End(0)).unwrap(), 17);
                assert!(a.seek(SeekFrom::Current(-18)).is_err());
                store.commit("rec-a", a, &meta("done")).unwrap();
                store.discard("rec-b", b);
            });
            assert_eq!(
                std::fs::read(spool.ready_wav("rec-a")).unwrap(),
                b"RIFF1234WAVE-data",
                "quota {quota}"
            );
            let json: Metadata =
                serde_json::from_slice(&std::fs::read(spool.ready_json("rec-a")).unwrap()).unwrap();
            assert_eq!(json, meta("done"));
            assert!(!spool.ready_wav("rec-b").exists());
            // Nothing left behind in tmp/.
            assert_eq!(
                std::fs::read_dir(spool.dir().join("tmp")).unwrap().count(),
                0,
                "quota {quota}"
            );
        }
    }

    #[test]
    fn live_store_reports_a_stopped_spool_thread() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path()).unwrap();
        let (io_tx, io_rx) = mpsc::sync_channel(4);
        let mut store = LiveStore {
            spool,
            io: io_tx,
            quota: false,
            next: 0,
        };
        let mut wav = store.create("rec", &meta("")).unwrap();
        drop(io_rx);
        assert!(wav.write_all(b"x").is_err());
        assert!(store.create("rec2", &meta("")).is_err());
    }

    #[test]
    fn run_args_need_an_interface() {
        use clap::Parser;
        #[derive(Parser)]
        struct T {
            #[command(flatten)]
            run: RunArgs,
        }
        let t = T::parse_from(["t", "--spool", "/tmp/x"]);
        assert!(t
            .run
            .load_config()
            .unwrap_err()
            .to_string()
            .contains("interface"));
        let t = T::parse_from(["t", "-i", "eth1", "--user", "1001=mario", "--no-upload"]);
        let c = t.run.load_config().unwrap();
        assert_eq!(c.capture.interface, "eth1");
        assert_eq!(c.users["1001"], "mario");
    }
}
