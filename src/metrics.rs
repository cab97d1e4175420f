//! Service metrics in the Prometheus text exposition format, and the HTTP
//! endpoint serving them (`/metrics`) with a health check (`/health`).
//!
//! The packet path never takes a lock per packet: the capture thread bumps
//! atomics once per batch, and the recorder thread publishes a snapshot of
//! its counters a few times a second. Spool figures are read from the disk
//! when scraped.

use crate::recorder::RecorderStats;
use crate::spool::{Folder, Spool};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Upper bounds (percent, inclusive) of the per-call packet loss histogram
/// buckets; a last `+Inf` bucket is implied.
pub const LOSS_BUCKETS: [f64; 8] = [0.0, 0.1, 0.5, 1.0, 2.0, 5.0, 10.0, 25.0];

/// A histogram of per-call packet loss in percent (fixed buckets, so it never
/// grows).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LossHistogram {
    /// Calls per bucket (not cumulative); index `LOSS_BUCKETS.len()` is `+Inf`.
    pub buckets: [u64; LOSS_BUCKETS.len() + 1],
    /// Calls observed.
    pub count: u64,
    /// Sum of the observed percentages.
    pub sum: f64,
}

impl LossHistogram {
    /// Counts one call with `percent` packet loss.
    pub fn observe(&mut self, percent: f64) {
        let percent = if percent.is_finite() { percent } else { 100.0 };
        let index = LOSS_BUCKETS
            .iter()
            .position(|&bound| percent <= bound)
            .unwrap_or(LOSS_BUCKETS.len());
        if let Some(bucket) = self.buckets.get_mut(index) {
            *bucket += 1;
        }
        self.count += 1;
        self.sum += percent;
    }
}

/// What the recorder thread publishes about itself.
#[derive(Debug, Clone, Default)]
pub struct RecorderSnapshot {
    /// The recorder's counters.
    pub stats: RecorderStats,
    /// Calls tracked now.
    pub active_calls: usize,
}

/// The service's counters, shared between its threads.
#[derive(Debug)]
pub struct Metrics {
    started: Instant,
    /// Frames read from the capture ring.
    pub packets: AtomicU64,
    /// Bytes of those frames (as on the wire).
    pub bytes: AtomicU64,
    /// Packets the kernel saw (libpcap `ps_recv`, made monotonic).
    pub kernel_received: AtomicU64,
    /// Packets the kernel dropped because the ring was full (`ps_drop`).
    pub kernel_dropped: AtomicU64,
    /// Packets the interface or driver dropped (`ps_ifdrop`).
    pub interface_dropped: AtomicU64,
    /// Packets dropped because the recorder thread's queue was full.
    pub queue_dropped: AtomicU64,
    /// Capture read errors.
    pub capture_errors: AtomicU64,
    /// Recordings lost because the spool could not commit them (fsync, rename).
    pub commit_errors: AtomicU64,
    /// Recordings accepted by the server.
    pub uploads_sent: AtomicU64,
    /// Recordings refused for good (moved to `failed/`).
    pub uploads_failed: AtomicU64,
    /// Upload attempts that failed and will be retried.
    pub upload_retries: AtomicU64,
    /// Recordings whose upload is being retried now.
    pub uploads_retrying: AtomicU64,
    /// Config reloads (SIGHUP) applied.
    pub reloads: AtomicU64,
    capture_beat: AtomicU64,
    recorder_beat: AtomicU64,
    recorder: Mutex<RecorderSnapshot>,
}

/// A component that has not reported for this long is unhealthy.
const STALE: Duration = Duration::from_secs(5);

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Zeroed metrics; the threads' heartbeats start now.
    pub fn new() -> Metrics {
        Metrics {
            started: Instant::now(),
            packets: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            kernel_received: AtomicU64::new(0),
            kernel_dropped: AtomicU64::new(0),
            interface_dropped: AtomicU64::new(0),
            queue_dropped: AtomicU64::new(0),
            capture_errors: AtomicU64::new(0),
            commit_errors: AtomicU64::new(0),
            uploads_sent: AtomicU64::new(0),
            uploads_failed: AtomicU64::new(0),
            upload_retries: AtomicU64::new(0),
            uploads_retrying: AtomicU64::new(0),
            reloads: AtomicU64::new(0),
            capture_beat: AtomicU64::new(0),
            recorder_beat: AtomicU64::new(0),
            recorder: Mutex::new(RecorderSnapshot::default()),
        }
    }

    fn since_start_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// The capture thread is alive (called at least once a second).
    pub fn capture_alive(&self) {
        self.capture_beat
            .store(self.since_start_ms(), Ordering::Relaxed);
    }

    /// The recorder thread is alive; publishes its counters.
    pub fn publish_recorder(&self, snapshot: RecorderSnapshot) {
        self.recorder_beat
            .store(self.since_start_ms(), Ordering::Relaxed);
        if let Ok(mut guard) = self.recorder.lock() {
            *guard = snapshot;
        }
    }

    /// The latest recorder snapshot.
    pub fn recorder(&self) -> RecorderSnapshot {
        self.recorder.lock().map(|g| g.clone()).unwrap_or_default()
    }

    /// `None` when healthy, else what is wrong.
    pub fn unhealthy(&self) -> Option<String> {
        let now = self.since_start_ms();
        let stale = STALE.as_millis() as u64;
        let capture = now.saturating_sub(self.capture_beat.load(Ordering::Relaxed));
        let recorder = now.saturating_sub(self.recorder_beat.load(Ordering::Relaxed));
        if capture > stale {
            return Some(format!("capture thread silent for {capture} ms"));
        }
        if recorder > stale {
            return Some(format!("recorder thread silent for {recorder} ms"));
        }
        None
    }

    /// The metrics in the Prometheus text format; spool figures come from
    /// `spool` (read from disk now) when given.
    pub fn render(&self, spool: Option<&Spool>) -> String {
        let mut out = String::with_capacity(4096);
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let snap = self.recorder();
        let s = &snap.stats;
        let d = &s.decode;
        counter(
            &mut out,
            "taprec_captured_packets_total",
            "Frames read from the capture ring.",
            load(&self.packets),
        );
        counter(
            &mut out,
            "taprec_captured_bytes_total",
            "Bytes of the frames read (length on the wire).",
            load(&self.bytes),
        );
        counter(
            &mut out,
            "taprec_kernel_received_packets_total",
            "Packets the kernel passed the filter (libpcap ps_recv).",
            load(&self.kernel_received),
        );
        counter(
            &mut out,
            "taprec_kernel_dropped_packets_total",
            "Packets dropped by the kernel because the capture ring was full (ps_drop).",
            load(&self.kernel_dropped),
        );
        counter(
            &mut out,
            "taprec_interface_dropped_packets_total",
            "Packets dropped by the interface or driver (ps_ifdrop).",
            load(&self.interface_dropped),
        );
        counter(
            &mut out,
            "taprec_queue_dropped_packets_total",
            "Packets dropped because the recorder thread fell behind.",
            load(&self.queue_dropped),
        );
        counter(
            &mut out,
            "taprec_capture_errors_total",
            "Capture read errors.",
            load(&self.capture_errors),
        );
        counter(
            &mut out,
            "taprec_decoded_frames_total",
            "Frames handed to the decoder.",
            d.frames,
        );
        header(
            &mut out,
            "taprec_decode_errors_total",
            "Frames that could not be decoded, by kind.",
            "counter",
        );
        for (kind, value) in [
            ("truncated", d.truncated),
            ("malformed", d.malformed),
            ("unsupported", d.unsupported),
            ("fragments_dropped", d.fragments_dropped),
            ("sip_unparsable", s.sip_errors),
            ("rtp_malformed", s.rtp_malformed),
        ] {
            let _ = writeln!(out, "taprec_decode_errors_total{{kind=\"{kind}\"}} {value}");
        }
        counter(
            &mut out,
            "taprec_ip_fragments_total",
            "IP fragments received.",
            d.fragments,
        );
        counter(
            &mut out,
            "taprec_sip_messages_total",
            "SIP messages parsed.",
            s.sip_messages,
        );
        counter(
            &mut out,
            "taprec_rtp_packets_total",
            "RTP packets matched to an answered call.",
            s.rtp_packets,
        );
        counter(
            &mut out,
            "taprec_unmatched_datagrams_total",
            "UDP payloads that matched no call and were not SIP.",
            s.unmatched,
        );
        counter(
            &mut out,
            "taprec_calls_seen_total",
            "INVITE dialogs seen.",
            s.calls_seen,
        );
        counter(
            &mut out,
            "taprec_calls_refused_total",
            "Calls refused because the call table was full.",
            s.calls_refused,
        );
        header(
            &mut out,
            "taprec_limit_hits_total",
            "State dropped or refused because a [limits] bound was hit, by limit.",
            "counter",
        );
        for (limit, value) in [
            ("max_calls_evicted_unanswered", s.calls_evicted),
            ("new_calls_per_second_per_source", s.calls_rate_limited),
            ("max_sip_message_bytes_or_headers", s.sip_oversized),
            ("max_streams_per_call", s.media_addrs_dropped),
            ("max_sdp_media_lines", s.sdp_media_dropped),
            ("max_fragmented_datagrams", d.fragments_dropped),
        ] {
            let _ = writeln!(out, "taprec_limit_hits_total{{limit=\"{limit}\"}} {value}");
        }
        gauge(
            &mut out,
            "taprec_active_calls",
            "Calls being tracked now.",
            snap.active_calls as u64,
        );
        counter(
            &mut out,
            "taprec_recordings_written_total",
            "Recordings committed to the spool.",
            s.recorded,
        );
        counter(
            &mut out,
            "taprec_calls_not_recorded_total",
            "Calls that produced no recording.",
            s.skipped,
        );
        counter(
            &mut out,
            "taprec_recordings_lost_total",
            "Recordings lost to spool (disk) errors.",
            s.store_errors + load(&self.commit_errors),
        );
        counter(
            &mut out,
            "taprec_uploads_sent_total",
            "Recordings accepted by the server.",
            load(&self.uploads_sent),
        );
        counter(
            &mut out,
            "taprec_uploads_failed_total",
            "Recordings refused for good (moved to failed/).",
            load(&self.uploads_failed),
        );
        counter(
            &mut out,
            "taprec_upload_retries_total",
            "Upload rounds that ended without delivery and will be retried.",
            load(&self.upload_retries),
        );
        gauge(
            &mut out,
            "taprec_uploads_retrying",
            "Recordings whose upload is being retried.",
            load(&self.uploads_retrying),
        );
        counter(
            &mut out,
            "taprec_config_reloads_total",
            "Configuration reloads (SIGHUP) applied.",
            load(&self.reloads),
        );
        if let Some(spool) = spool {
            let ready = spool
                .list(Folder::Ready)
                .map(|v| v.len() as u64)
                .unwrap_or(0);
            let failed = spool
                .list(Folder::Failed)
                .map(|v| v.len() as u64)
                .unwrap_or(0);
            header(
                &mut out,
                "taprec_spool_files",
                "Recordings in the spool, by folder.",
                "gauge",
            );
            let _ = writeln!(out, "taprec_spool_files{{folder=\"ready\"}} {ready}");
            let _ = writeln!(out, "taprec_spool_files{{folder=\"failed\"}} {failed}");
            gauge(
                &mut out,
                "taprec_spool_bytes",
                "Bytes held by the spool (what the quota counts).",
                spool.quota_usage().unwrap_or(0),
            );
            counter(
                &mut out,
                "taprec_spool_refused_total",
                "Recordings refused because the spool quota was reached.",
                spool.refused(),
            );
        }
        let h = &s.call_loss;
        header(
            &mut out,
            "taprec_call_packet_loss_percent",
            "Packet loss of each recorded call, both sides, percent.",
            "histogram",
        );
        let mut cumulative = 0u64;
        for (i, bound) in LOSS_BUCKETS.iter().enumerate() {
            cumulative += h.buckets.get(i).copied().unwrap_or(0);
            let _ = writeln!(
                out,
                "taprec_call_packet_loss_percent_bucket{{le=\"{bound}\"}} {cumulative}"
            );
        }
        let _ = writeln!(
            out,
            "taprec_call_packet_loss_percent_bucket{{le=\"+Inf\"}} {}",
            h.count
        );
        let _ = writeln!(out, "taprec_call_packet_loss_percent_sum {}", h.sum);
        let _ = writeln!(out, "taprec_call_packet_loss_percent_count {}", h.count);
        gauge(
            &mut out,
            "taprec_uptime_seconds",
            "Seconds since the service started.",
            self.started.elapsed().as_secs(),
        );
        out
    }
}

fn header(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn counter(out: &mut String, name: &str, help: &str, value: u64) {
    header(out, name, help, "counter");
    let _ = writeln!(out, "{name} {value}");
}

fn gauge(out: &mut String, name: &str, help: &str, value: u64) {
    header(out, name, help, "gauge");
    let _ = writeln!(out, "{name} {value}");
}

/// Serves `/metrics` and `/health` on `listener` until the process ends.
pub async fn serve(
    listener: tokio::net::TcpListener,
    metrics: Arc<Metrics>,
    spool: Option<Spool>,
) -> std::io::Result<()> {
    use axum::http::{header, StatusCode};
    use axum::response::IntoResponse;
    use axum::routing::get;
    let state = (metrics, spool);
    let app = axum::Router::new()
        .route(
            "/metrics",
            get(
                |axum::extract::State((m, s)): axum::extract::State<(
                    Arc<Metrics>,
                    Option<Spool>,
                )>| async move {
                    let text = tokio::task::spawn_blocking(move || m.render(s.as_ref()))
                        .await
                        .unwrap_or_default();
                    (
                        [(
                            header::CONTENT_TYPE,
                            "text/plain; version=0.0.4; charset=utf-8",
                        )],
                        text,
                    )
                },
            ),
        )
        .route(
            "/health",
            get(
                |axum::extract::State((m, _)): axum::extract::State<(
                    Arc<Metrics>,
                    Option<Spool>,
                )>| async move {
                    match m.unhealthy() {
                        None => (StatusCode::OK, "ok\n".to_string()).into_response(),
                        Some(why) => {
                            (StatusCode::SERVICE_UNAVAILABLE, format!("{why}\n")).into_response()
                        }
                    }
                },
            ),
        )
        .with_state(state);
    loop {
        let (stream, _) = listener.accept().await?;
        let app = app.clone();
        tokio::spawn(async move {
            let service = hyper_util::service::TowerToHyperService::new(app);
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
            let _ = tokio::time::timeout(Duration::from_secs(30), conn).await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loss_histogram_buckets() {
        let mut h = LossHistogram::default();
        for pct in [0.0, 0.05, 0.3, 3.0, 50.0, f64::NAN] {
            h.observe(pct);
        }
        assert_eq!(h.count, 6);
        assert_eq!(h.buckets[0], 1); // 0
        assert_eq!(h.buckets[1], 1); // 0.05 <= 0.1
        assert_eq!(h.buckets[2], 1); // 0.3 <= 0.5
        assert_eq!(h.buckets[5], 1); // 3 <= 5
        assert_eq!(h.buckets[8], 2); // 50 and NaN (counted as 100) -> +Inf
        assert!((h.sum - 153.35).abs() < 1e-9);
    }

    #[test]
    fn render_is_prometheus_text_and_moves() {
        let m = Metrics::new();
        m.packets.fetch_add(10, Ordering::Relaxed);
        let mut stats = RecorderStats {
            recorded: 2,
            ..RecorderStats::default()
        };
        stats.decode.truncated = 3;
        stats.call_loss.observe(1.5);
        m.publish_recorder(RecorderSnapshot {
            stats,
            active_calls: 4,
        });
        let text = m.render(None);
        assert!(
            text.contains("\ntaprec_captured_packets_total 10\n"),
            "{text}"
        );
        assert!(text.contains("taprec_active_calls 4\n"));
        assert!(text.contains("taprec_recordings_written_total 2\n"));
        assert!(text.contains("taprec_decode_errors_total{kind=\"truncated\"} 3\n"));
        assert!(text.contains("taprec_call_packet_loss_percent_bucket{le=\"1\"} 0\n"));
        assert!(text.contains("taprec_call_packet_loss_percent_bucket{le=\"2\"} 1\n"));
        assert!(text.contains("taprec_call_packet_loss_percent_bucket{le=\"+Inf\"} 1\n"));
        // Every sample line belongs to a declared metric.
        let mut declared = Vec::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                declared.push(rest.split(' ').next().unwrap().to_string());
            } else if !line.starts_with('#') {
                let name = line.split(['{', ' ']).next().unwrap();
                assert!(
                    declared.iter().any(|d| name.starts_with(d.as_str())),
                    "undeclared {name}"
                );
            }
        }
    }

    #[test]
    fn health_follows_heartbeats() {
        let m = Metrics::new();
        m.capture_alive();
        m.publish_recorder(RecorderSnapshot::default());
        assert_eq!(m.unhealthy(), None);
    }
}
