//! The `taprec` command line: parse arguments, load the config, run a loop.

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use taprec::capture::read_ahead::{ReadAhead, ReadEvent};
use taprec::config::Config;
use taprec::recorder::{Outcome, Recorder, RecorderStats};
use taprec::spool::Spool;
use taprec::write_behind::WriteBehind;

/// Passive SIP/RTP call recorder: one stereo WAV per call (local party left,
/// remote party right) plus metadata, from a tap or from capture files.
#[derive(Debug, Parser)]
#[command(name = "taprec", version, about)]
struct Cli {
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Log filter (e.g. `info`, `taprec=debug`); RUST_LOG also works.
    #[arg(long, global = true, default_value = "info")]
    log_level: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Capture live from an interface, record and upload until stopped
    /// (SIGTERM/SIGINT finalize active calls; SIGHUP reloads the config).
    Run(Box<taprec::service::RunArgs>),
    /// Record the calls in pcap/pcapng files into the spool.
    Replay(Box<ReplayArgs>),
    /// Write a synthetic capture of SIP calls whose parties send distinct tones.
    Synth(taprec::synth::SynthArgs),
    /// Upload the recordings queued in the spool, then exit (non-zero if any
    /// is left or was refused).
    Upload(UploadArgs),
    /// Run a local server implementing the recording API strictly (for tests
    /// and demos), with fault injection.
    MockApi(taprec::mock_api::MockArgs),
}

/// `taprec upload`: drain the spool once.
#[derive(Debug, clap::Args)]
struct UploadArgs {
    /// Configuration file (TOML); see config/taprec.toml.
    #[arg(short, long)]
    config: Option<PathBuf>,
    /// Spool directory (`spool.dir`).
    #[arg(long)]
    spool: Option<PathBuf>,
    /// The recording API endpoint (`upload.url`).
    #[arg(long, value_name = "URL")]
    upload_url: Option<String>,
    /// Seconds to keep retrying before giving up (`upload.wait_secs`).
    #[arg(long, value_name = "SECS")]
    wait_secs: Option<u64>,
    /// Uploads in flight at once (`upload.concurrency`).
    #[arg(long, value_name = "N")]
    concurrency: Option<usize>,
    /// Seconds without progress before an attempt is abandoned (`upload.idle_timeout_secs`).
    #[arg(long, value_name = "SECS")]
    idle_timeout: Option<u64>,
    /// First retry delay in milliseconds (`upload.retry_initial_ms`).
    #[arg(long, value_name = "MS")]
    retry_initial_ms: Option<u64>,
    /// Longest retry delay in seconds (`upload.retry_max_secs`).
    #[arg(long, value_name = "SECS")]
    retry_max_secs: Option<u64>,
    /// Split recordings larger than this (`upload.max_file_bytes`).
    #[arg(long, value_name = "BYTES")]
    max_file_bytes: Option<u64>,
    /// Also write the report as JSON to this file.
    #[arg(long, value_name = "FILE")]
    summary_json: Option<PathBuf>,
}

/// Upload overrides shared by `upload` and `replay`.
#[derive(Debug, Default, clap::Args)]
struct UploadOverrides {
    /// Upload the recordings to this recording API endpoint (`upload.url`)
    /// and wait for them to be delivered.
    #[arg(long, value_name = "URL")]
    upload_url: Option<String>,
    /// Seconds to wait for the uploads (`upload.wait_secs`).
    #[arg(long, value_name = "SECS")]
    wait_secs: Option<u64>,
}

/// `taprec replay`: every config key can be overridden here.
#[derive(Debug, clap::Args)]
struct ReplayArgs {
    /// Configuration file (TOML); see config/taprec.toml.
    #[arg(short, long)]
    config: Option<PathBuf>,
    /// Recording settings (local networks, spool, format, timeouts, users).
    #[command(flatten)]
    recording: taprec::cli::RecordingOverrides,
    /// Largest SIP message accepted (`limits.max_sip_message_bytes`).
    #[arg(long, value_name = "BYTES")]
    max_sip_message_bytes: Option<usize>,
    /// Fragmented datagrams reassembled at once (`limits.max_fragmented_datagrams`).
    #[arg(long, value_name = "N")]
    max_fragmented_datagrams: Option<usize>,
    /// Seconds a partial fragmented datagram is kept (`limits.fragment_timeout_secs`).
    #[arg(long, value_name = "SECS")]
    fragment_timeout: Option<u64>,
    /// Only record into the spool; do not upload even if `upload.url` is set.
    #[arg(long)]
    no_upload: bool,
    #[command(flatten)]
    upload: UploadOverrides,
    /// Also write the summary as JSON to this file.
    #[arg(long, value_name = "FILE")]
    summary_json: Option<PathBuf>,
    /// Capture files, replayed in order as one stream.
    #[arg(required = true, value_name = "PCAP")]
    pcaps: Vec<PathBuf>,
}

impl ReplayArgs {
    fn config(&self) -> Result<Config> {
        let mut config = match &self.config {
            Some(path) => Config::load(path)?,
            None => Config::default(),
        };
        self.recording.apply(&mut config);
        if let Some(v) = self.max_sip_message_bytes {
            config.limits.max_sip_message_bytes = v;
        }
        if let Some(v) = self.max_fragmented_datagrams {
            config.limits.max_fragmented_datagrams = v;
        }
        if let Some(v) = self.fragment_timeout {
            config.limits.fragment_timeout_secs = v;
        }
        if let Some(url) = &self.upload.upload_url {
            config.upload.url = url.clone();
        }
        if let Some(v) = self.upload.wait_secs {
            config.upload.wait_secs = v;
        }
        config.validate()?;
        Ok(config)
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format, &cli.log_level);
    let result = match &cli.command {
        Command::Run(args) => taprec::service::main(args).map(|()| ExitCode::SUCCESS),
        Command::Replay(args) => replay(args),
        Command::Synth(args) => taprec::synth::run(args).map(|()| ExitCode::SUCCESS),
        Command::Upload(args) => upload(args),
        Command::MockApi(args) => taprec::mock_api::run(args).map(|()| ExitCode::SUCCESS),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("taprec: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(format: LogFormat, level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Frames handed to the recorder at once by `replay`.
const REPLAY_BATCH_FRAMES: usize = 1024;

fn replay(args: &ReplayArgs) -> Result<ExitCode> {
    let config = args.config()?;
    let uploading = !args.no_upload && !config.upload.url.is_empty();
    let spool = if uploading {
        taprec::service::open_spool(&config)?
    } else {
        Spool::open(&config.spool.dir)
            .with_context(|| format!("spool.dir = {:?} is not usable", config.spool.dir))?
            .with_quota(config.spool.max_bytes)
    };
    // The audio is written on a writer thread, beside the packet path.
    let store = WriteBehind::new(spool.clone()).context("cannot start the writer thread")?;
    let mut recorder = Recorder::new(&config, store);
    let mut capture_errors = Vec::new();
    let mut frames = 0u64;
    // The files are read on a thread of their own, a few batches ahead; the
    // recorder gets the frames in batches, which lets it prefetch the state
    // of the calls a few frames ahead.
    let mut reader = ReadAhead::spawn(args.pcaps.clone(), REPLAY_BATCH_FRAMES)
        .context("cannot start the capture reader")?;
    while let Some(event) = reader.next_event() {
        match event {
            ReadEvent::Batch(batch) => {
                recorder.handle_batch(&batch);
                reader.recycle(batch);
            }
            ReadEvent::OpenFailed { path, error } => {
                anyhow::bail!("cannot replay {}: {error}", path.display());
            }
            ReadEvent::FileDone {
                frames: n, error, ..
            } => {
                frames += n;
                if let Some(e) = error {
                    tracing::warn!(error = %e, "capture file damaged; continuing with what was read");
                    capture_errors.push(e);
                }
            }
        }
    }
    recorder.finish();
    let outcomes = recorder.take_outcomes();
    let stats = recorder.stats();
    print_summary(&outcomes, &stats, &spool, frames, &capture_errors);
    if let Some(path) = &args.summary_json {
        let summary = summary_json(&outcomes, &stats, &spool, frames, &capture_errors);
        std::fs::write(path, serde_json::to_vec_pretty(&summary)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    if spool.refused() > 0 {
        println!(
            "recordings refused because the spool quota (spool.max_bytes) was reached: {}",
            spool.refused()
        );
    }
    let mut delivered = true;
    if uploading {
        let report = drain_spool(&config, &spool)?;
        delivered = report.all_sent();
    }
    Ok(if stats.store_errors > 0 || !delivered {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

impl UploadArgs {
    fn config(&self) -> Result<Config> {
        let mut config = match &self.config {
            Some(path) => Config::load(path)?,
            None => Config::default(),
        };
        if let Some(dir) = &self.spool {
            config.spool.dir = dir.clone();
        }
        let u = &mut config.upload;
        if let Some(url) = &self.upload_url {
            u.url = url.clone();
        }
        if let Some(v) = self.wait_secs {
            u.wait_secs = v;
        }
        if let Some(v) = self.concurrency {
            u.concurrency = v;
        }
        if let Some(v) = self.idle_timeout {
            u.idle_timeout_secs = v;
        }
        if let Some(v) = self.retry_initial_ms {
            u.retry_initial_ms = v;
        }
        if let Some(v) = self.retry_max_secs {
            u.retry_max_secs = v;
        }
        if let Some(v) = self.max_file_bytes {
            u.max_file_bytes = v;
        }
        config.validate()?;
        if config.upload.url.is_empty() {
            anyhow::bail!("no upload URL: set upload.url in the config or pass --upload-url");
        }
        Ok(config)
    }
}

fn drain_spool(config: &Config, spool: &Spool) -> Result<taprec::upload::DrainReport> {
    let uploader = taprec::upload::Uploader::new(&config.upload, spool.clone())?;
    let report =
        uploader.drain_blocking(std::time::Duration::from_secs(config.upload.wait_secs))?;
    report.print();
    Ok(report)
}

fn upload(args: &UploadArgs) -> Result<ExitCode> {
    let config = args.config()?;
    let spool = taprec::service::open_spool(&config)?;
    let report = drain_spool(&config, &spool)?;
    if let Some(path) = &args.summary_json {
        std::fs::write(path, serde_json::to_vec_pretty(&report)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(if report.all_sent() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn decode_errors(stats: &RecorderStats) -> u64 {
    stats.decode.truncated + stats.decode.malformed
}

fn print_summary(
    outcomes: &[Outcome],
    stats: &RecorderStats,
    spool: &Spool,
    frames: u64,
    capture_errors: &[String],
) {
    println!(
        "calls seen {}, recorded {}, not recorded {}",
        stats.calls_seen, stats.recorded, stats.skipped
    );
    for outcome in outcomes {
        match outcome {
            Outcome::Recorded {
                call_id,
                id,
                metadata,
            } => println!(
                "  recorded  {call_id}: {} ({}, direction {}, local {} remote {})",
                spool.ready_wav(id).display(),
                metadata.duration,
                metadata.direction,
                metadata.local_party.phone_number,
                metadata.remote_party.phone_number
            ),
            Outcome::Skipped { call_id, reason } => println!("  skipped   {call_id}: {reason}"),
        }
    }
    let d = &stats.decode;
    println!(
        "frames {frames}; SIP messages {} (unparsable {}); RTP packets {} (before answer {}, malformed {}), RTCP {}, unmatched UDP {}",
        stats.sip_messages, stats.sip_errors, stats.rtp_packets, stats.rtp_before_answer, stats.rtp_malformed, stats.rtcp, stats.unmatched
    );
    println!(
        "decode errors {} (truncated {}, malformed {}), unsupported protocols {}, fragments {} (reassembled {}, dropped {})",
        decode_errors(stats), d.truncated, d.malformed, d.unsupported, d.fragments, d.reassembled, d.fragments_dropped
    );
    println!(
        "duplicates: RTP copies {}, other-hop RTP {}, SIP on other hops {}, B2BUA legs linked {}; encrypted calls {} (ZRTP packets {}), T.38 calls {}",
        stats.rtp_copies, stats.rtp_other_hop, stats.sip_hop_copies, stats.legs_linked, stats.encrypted_calls, stats.zrtp_packets, stats.t38_calls
    );
    print_transport_summary(stats);
    if stats.tls_connections > 0 {
        println!(
            "SIP over TLS (encrypted, calls not visible): {} connections, {} segments",
            stats.tls_connections, stats.tls_segments
        );
    }
    if stats.calls_without_media > 0 {
        println!(
            "answered calls without any RTP seen (not recorded) {}",
            stats.calls_without_media
        );
    }
    if stats.calls_refused > 0 || stats.store_errors > 0 {
        println!(
            "calls refused (table full) {}, recordings lost to spool errors {}",
            stats.calls_refused, stats.store_errors
        );
    }
    let limited = [
        stats.calls_evicted,
        stats.calls_rate_limited,
        stats.sip_oversized,
        stats.media_addrs_dropped,
        d.fragments_dropped,
        stats.sdp_media_dropped,
    ];
    if limited.iter().any(|&n| n > 0) {
        println!(
            "limits hit: unanswered calls dropped (limits.max_calls) {}, calls over the per-source rate {}, SIP messages over size/header limits {}, media addresses dropped (limits.max_streams_per_call) {}, fragmented datagrams dropped {}, SDP m= lines dropped (limits.max_sdp_media_lines) {}",
            stats.calls_evicted, stats.calls_rate_limited, stats.sip_oversized, stats.media_addrs_dropped, d.fragments_dropped, stats.sdp_media_dropped
        );
    }
    for e in capture_errors {
        println!("capture error: {e}");
    }
}

/// Tunnels unwrapped and SIP stream (TCP/WebSocket) counters, when any.
fn print_transport_summary(stats: &RecorderStats) {
    let d = &stats.decode;
    if d.tunnelled() > 0 || d.encap_too_deep > 0 {
        println!(
            "tunnels: GRE {}, ERSPAN II {}, ERSPAN III {}, VXLAN {}, PPPoE {}, MPLS {}, IP-in-IP {}, too deep {}",
            d.gre, d.erspan_ii, d.erspan_iii, d.vxlan, d.pppoe, d.mpls, d.ip_in_ip, d.encap_too_deep
        );
    }
    let t = &stats.streams;
    if d.tcp_segments > 0 {
        println!(
            "TCP segments {} (SIP streams {}, not SIP {}); streams opened {} (WebSocket {}), closed {}, expired {}, evicted {}; SIP messages {}; out of order {}, retransmitted {}, gaps {}, overflows {}, resyncs {} ({} bytes skipped), WebSocket errors {}",
            d.tcp_segments, t.segments, t.not_sip, t.opened, t.websocket, t.closed, t.expired, t.evicted,
            t.messages, t.out_of_order, t.retransmitted, t.gaps, t.overflows, t.resyncs, t.bytes_skipped, t.websocket_errors
        );
    }
}

/// Tunnel and SIP stream counters for the JSON summary.
fn transport_json(stats: &RecorderStats) -> serde_json::Value {
    let d = &stats.decode;
    let t = &stats.streams;
    serde_json::json!({
        "tunnels": {
            "gre": d.gre, "erspan_ii": d.erspan_ii, "erspan_iii": d.erspan_iii,
            "vxlan": d.vxlan, "pppoe": d.pppoe, "mpls": d.mpls, "ip_in_ip": d.ip_in_ip,
            "too_deep": d.encap_too_deep,
        },
        "tcp": {
            "segments": d.tcp_segments, "stream_segments": t.segments, "not_sip": t.not_sip,
            "opened": t.opened, "websocket": t.websocket, "closed": t.closed,
            "expired": t.expired, "evicted": t.evicted, "messages": t.messages,
            "out_of_order": t.out_of_order, "retransmitted": t.retransmitted, "gaps": t.gaps,
            "overflows": t.overflows, "resyncs": t.resyncs, "bytes_skipped": t.bytes_skipped,
            "websocket_errors": t.websocket_errors,
        },
    })
}

fn summary_json(
    outcomes: &[Outcome],
    stats: &RecorderStats,
    spool: &Spool,
    frames: u64,
    capture_errors: &[String],
) -> serde_json::Value {
    let mut recordings = Vec::new();
    let mut skipped = Vec::new();
    for outcome in outcomes {
        match outcome {
            Outcome::Recorded {
                call_id,
                id,
                metadata,
            } => recordings.push(serde_json::json!({
                "id": id,
                "call_id": call_id,
                "wav": spool.ready_wav(id),
                "json": spool.ready_json(id),
                "metadata": metadata,
            })),
            Outcome::Skipped { call_id, reason } => {
                skipped.push(serde_json::json!({ "call_id": call_id, "reason": reason }))
            }
        }
    }
    serde_json::json!({
        "calls_seen": stats.calls_seen,
        "recorded": stats.recorded,
        "skipped": skipped,
        "recordings": recordings,
        "frames": frames,
        "decode_errors": decode_errors(stats),
        "sip_messages": stats.sip_messages,
        "sip_errors": stats.sip_errors,
        "rtp_packets": stats.rtp_packets,
        "calls_without_media": stats.calls_without_media,
        "tls_connections": stats.tls_connections,
        "unmatched": stats.unmatched,
        "calls_refused": stats.calls_refused,
        "calls_evicted": stats.calls_evicted,
        "calls_rate_limited": stats.calls_rate_limited,
        "sip_oversized": stats.sip_oversized,
        "media_addrs_dropped": stats.media_addrs_dropped,
        "sdp_media_dropped": stats.sdp_media_dropped,
        "fragments_dropped": stats.decode.fragments_dropped,
        "rtp_copies": stats.rtp_copies,
        "rtp_other_hop": stats.rtp_other_hop,
        "sip_hop_copies": stats.sip_hop_copies,
        "legs_linked": stats.legs_linked,
        "zrtp_packets": stats.zrtp_packets,
        "encrypted_calls": stats.encrypted_calls,
        "t38_calls": stats.t38_calls,
        "transport": transport_json(stats),
        "capture_errors": capture_errors,
    })
}

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
