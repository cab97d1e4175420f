//! End-to-end replays of the third-party captures in `shared/pcaps/external`
//! (see its MANIFEST.md for what each file holds; times below are seconds from
//! the first packet). One test per file. Each asserts what the core pipeline
//! must already do; where a later issue adds the feature a file needs (SIP over
//! TCP/WebSocket/SCTP, tunnels, SRTP detection, multi-hop dedup) the full
//! expectation is written in a `// LATER(issue 5):` comment for it to tighten.
//!
//! The `--local-net` chosen for each file is documented at its test. Every test
//! skips with a message when the folder is absent, and fails when `CI` is set.

mod common;

use common::{external_pcap, read_wav, rms, run_ok, tone_ratio, Stereo};
use serde_json::Value;
use std::path::PathBuf;

struct Replay {
    _dir: tempfile::TempDir,
    summary: Value,
    recordings: Vec<(PathBuf, Value)>,
}

impl Replay {
    fn calls_seen(&self) -> u64 {
        self.summary["calls_seen"].as_u64().expect("calls_seen")
    }
    fn recorded(&self) -> u64 {
        self.summary["recorded"].as_u64().expect("recorded")
    }
    fn frames(&self) -> u64 {
        self.summary["frames"].as_u64().expect("frames")
    }
    fn skipped(&self) -> Vec<(String, String)> {
        self.summary["skipped"]
            .as_array()
            .expect("skipped")
            .iter()
            .map(|s| {
                (
                    s["call_id"].as_str().expect("call_id").to_string(),
                    s["reason"].as_str().expect("reason").to_string(),
                )
            })
            .collect()
    }
    /// The one recording with this pbxCallId.
    fn by_call_id(&self, call_id: &str) -> (Stereo, &Value) {
        let found: Vec<_> = self
            .recordings
            .iter()
            .filter(|(_, m)| m["pbxCallId"] == call_id)
            .collect();
        assert_eq!(
            found.len(),
            1,
            "one recording for {call_id}; summary {}",
            self.summary
        );
        (read_wav(&found[0].0), &found[0].1)
    }
}

/// Replays one external capture (exit status 0 required), or None when the
/// corpus is absent (and CI is not set).
fn replay(name: &str, local_net: &str, extra: &[&str]) -> Option<Replay> {
    let pcap = external_pcap(name)?;
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool");
    let summary_path = dir.path().join("summary.json");
    let mut args = vec![
        "replay",
        "--local-net",
        local_net,
        "--spool",
        spool.to_str().unwrap(),
        "--no-upload",
        "--summary-json",
        summary_path.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    args.push(pcap.to_str().unwrap());
    run_ok(&args);
    let bytes = std::fs::read(&summary_path)
        .unwrap_or_else(|e| panic!("taprec wrote no summary {}: {e}", summary_path.display()));
    let summary: Value = serde_json::from_slice(&bytes).expect("summary JSON");
    let recordings = common::ready_recordings(&spool);
    assert_eq!(
        summary["recorded"].as_u64(),
        Some(recordings.len() as u64),
        "summary counts the recordings in the spool: {summary}"
    );
    assert!(
        summary["decode_errors"].is_u64(),
        "decode_errors: {summary}"
    );
    Some(Replay {
        _dir: dir,
        summary,
        recordings,
    })
}

/// Parses an ISO 8601 duration such as "PT5.02S", "PT1M30S" or "PT1H2M3.5S".
fn duration_secs(meta: &Value) -> f64 {
    let s = meta["duration"].as_str().expect("duration");
    let rest = s
        .strip_prefix("PT")
        .unwrap_or_else(|| panic!("duration {s}"));
    let (mut total, mut num) = (0.0, String::new());
    for ch in rest.chars() {
        match ch {
            '0'..='9' | '.' => num.push(ch),
            'H' | 'M' | 'S' => {
                let v: f64 = num.parse().unwrap_or_else(|_| panic!("duration {s}"));
                total += v * [3600.0, 60.0, 1.0]["HMS".find(ch).unwrap()];
                num.clear();
            }
            _ => panic!("duration {s}"),
        }
    }
    total
}

fn assert_near(what: &str, got: f64, want: f64, tol: f64) {
    assert!(
        (got - want).abs() <= tol,
        "{what}: {got:.3}, expected {want} ± {tol}"
    );
}

/// Seconds `a..b` of a channel (clamped to its length).
fn span(samples: &[i16], a: f64, b: f64) -> &[i16] {
    let a = ((a * 8000.0) as usize).min(samples.len());
    let b = ((b * 8000.0) as usize).clamp(a, samples.len());
    &samples[a..b]
}

/// Both channels hold only silence (G.711 idle codes decode to +-8).
fn silent(w: &Stereo) -> bool {
    rms(&w.left) < 16.0 && rms(&w.right) < 16.0
}

/// Largest RMS of any 100 ms block.
fn peak_block_rms(samples: &[i16]) -> f64 {
    samples.chunks(800).map(rms).fold(0.0, f64::max)
}

/// Smallest RMS of any full 1 s window (step 100 ms).
fn quietest_second(samples: &[i16]) -> f64 {
    let mut best = f64::MAX;
    let mut i = 0;
    while i + 8000 <= samples.len() {
        best = best.min(rms(&samples[i..i + 8000]));
        i += 800;
    }
    best
}

fn correlation(a: &[i16], b: &[i16]) -> f64 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let ma = a.iter().map(|&x| x as f64).sum::<f64>() / n as f64;
    let mb = b.iter().map(|&x| x as f64).sum::<f64>() / n as f64;
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (&x, &y) in a.iter().zip(b) {
        let (x, y) = (x as f64 - ma, y as f64 - mb);
        sab += x * y;
        saa += x * x;
        sbb += y * y;
    }
    sab / (saa * sbb).sqrt()
}

/// Near digital silence (A-law/u-law idle codes decode to at most ±8).
const SILENT_RMS: f64 = 30.0;

// 1 ------------------------------------------------------------------------
/// Local net 10.0.2.20/32: the SIPp caller is local, so both calls are
/// outgoing, the caller's (empty) direction is LEFT and FreeSWITCH's prompt RIGHT.
#[test]
fn freeswitch_pcmu_then_pcma_oneway_prompt() {
    let Some(r) = replay(
        "freeswitch-pcmu-then-pcma-oneway-prompt.pcap",
        "10.0.2.20/32",
        &[],
    ) else {
        return;
    };
    assert_eq!(r.frames(), 852);
    assert_eq!(r.calls_seen(), 2, "{}", r.summary);
    assert_eq!(r.recorded(), 2, "{}", r.summary);

    let (pcmu, m1) = r.by_call_id("1-1966@10.0.2.20");
    let (pcma, m2) = r.by_call_id("1-1968@10.0.2.20");
    assert_eq!(pcmu.format_tag, 7, "PCMU call is u-law");
    assert_eq!(pcma.format_tag, 6, "PCMA call is A-law");
    for m in [m1, m2] {
        assert_eq!(m["direction"], 2, "{m}");
        assert_eq!(m["localParty"]["phoneNumber"], "sipp", "{m}");
        assert_eq!(m["remoteParty"]["phoneNumber"], "test", "{m}");
    }
    // BYE at 8.50 s after the answer at ~0 s; the PCMA call (answered 8.62 s)
    // is cut by the end of the file at 16.90 s.
    assert_near("PCMU duration", duration_secs(m1), 8.5, 0.5);
    assert_near("PCMU WAV", pcmu.seconds(), 8.5, 0.5);
    assert_near("PCMA duration", duration_secs(m2), 8.28, 0.5);
    assert_near("PCMA WAV", pcma.seconds(), 8.28, 0.5);
    let notes = m2["notes"].as_str().unwrap_or_default().to_lowercase();
    assert!(
        ["end of input", "end of file", "end of capture", "eof"]
            .iter()
            .any(|k| notes.contains(k)),
        "PCMA call notes say it was cut by the end of input: {notes:?}"
    );
    for (name, w) in [("PCMU", &pcmu), ("PCMA", &pcma)] {
        assert!(
            rms(&w.left) < SILENT_RMS,
            "{name}: caller channel silent, rms {}",
            rms(&w.left)
        );
        assert!(
            rms(&w.right) > 300.0,
            "{name}: prompt on the right, rms {}",
            rms(&w.right)
        );
    }
    // The same prompt, decoded from u-law and from A-law, lines up within one
    // sample: both start 18.3 ms after their 200 OK (18.340 ms and 18.309 ms
    // by the capture clock, i.e. 146.7 and 146.5 samples).
    let (c, lag) = (-2i32..=2)
        .map(|lag| {
            let skip = lag.unsigned_abs() as usize;
            let c = if lag >= 0 {
                correlation(&pcmu.right[skip..], &pcma.right)
            } else {
                correlation(&pcmu.right, &pcma.right[skip..])
            };
            (c, lag)
        })
        .fold((f64::MIN, 0), |best, x| if x.0 > best.0 { x } else { best });
    assert!(
        c > 0.999,
        "PCMU and PCMA prompts correlate within one sample: {c:.4} at lag {lag}"
    );
    assert!(lag.abs() <= 1, "aligned within one sample, lag {lag}");
}

// 2 ------------------------------------------------------------------------
/// Local net 200.57.7.204/32: the answering UA is local, so the call is
/// incoming; LEFT = .204 -> relay (VAD gaps), RIGHT = relay .196 -> .204.
#[test]
fn pcma_two_way_relay_vad_no_bye() {
    let Some(r) = replay("pcma-two-way-relay-vad-no-bye.pcap", "200.57.7.204/32", &[]) else {
        return;
    };
    assert_eq!(r.frames(), 4269);
    assert_eq!(r.calls_seen(), 2, "{}", r.summary);
    assert_eq!(r.recorded(), 1, "{}", r.summary);
    let skipped = r.skipped();
    assert!(
        skipped
            .iter()
            .any(|(id, reason)| id == "12015624@200.57.7.195" && !reason.is_empty()),
        "the call still ringing at the end is skipped with a reason: {skipped:?}"
    );
    let (w, m) = r.by_call_id("12013223@200.57.7.195");
    assert_eq!(w.format_tag, 6);
    assert_eq!(m["direction"], 1, "{m}");
    assert_eq!(m["localParty"]["phoneNumber"], "francisco", "{m}");
    // Answered 8.48 s, no BYE, media until the end of the file at 34.91 s.
    assert_near("duration", duration_secs(m), 26.4, 1.5);
    assert_near("WAV", w.seconds(), 26.4, 1.5);
    assert!(peak_block_rms(&w.left) > 500.0, "speech on the left");
    assert!(peak_block_rms(&w.right) > 500.0, "speech on the right");
    assert!(
        rms(&w.left) > 100.0 && rms(&w.right) > 100.0,
        "both channels carry voice"
    );
    // Silence suppression gaps (up to 5.8 s) on the .204 side become silence.
    assert!(
        quietest_second(&w.left) < SILENT_RMS,
        "VAD gaps on the left are silent"
    );
    // The relay's second leg (.196:40378 <-> .199:4800, same SSRCs, no SDP)
    // is not attached: it would not add a third stream nor a second recording.
}

// 3 ------------------------------------------------------------------------
/// Local net 192.168.105.110/32: the IP-DECT gateway that sends the INVITEs
/// is local (outgoing). Media flows between .172 (not in any SDP) and .110.
/// `--rtp-timeout 60` because RTP only starts 22.5 s after the answer.
#[test]
fn pcma_rfc2833_delayed_offer_ptime30() {
    let Some(r) = replay(
        "pcma-rfc2833-delayed-offer-ptime30.cap",
        "192.168.105.110/32",
        &["--rtp-timeout", "60"],
    ) else {
        return;
    };
    assert_eq!(r.frames(), 1360);
    assert_eq!(r.calls_seen(), 2, "{}", r.summary);
    assert_eq!(r.recorded(), 1, "{}", r.summary);
    let skipped = r.skipped();
    assert!(
        skipped
            .iter()
            .any(|(id, reason)| id == "5514@192.168.105.110" && !reason.is_empty()),
        "the 603-declined call is skipped with a reason: {skipped:?}"
    );
    let (w, m) = r.by_call_id("25672@192.168.105.110");
    assert_eq!(w.format_tag, 6);
    assert_eq!(m["direction"], 2, "{m}");
    assert_eq!(m["localParty"]["phoneNumber"], "2502", "{m}");
    assert_eq!(m["remoteParty"]["phoneNumber"], "2504", "{m}");
    // Answered at 54.3 s, no BYE, RTP 76.8 s to about 97 s, file ends at 100 s.
    let d = duration_secs(m);
    assert!((40.0..=47.0).contains(&d), "duration {d}");
    // Quiet but real audio (RMS 30-80) on both sides while RTP flows; the
    // telephone-events (PT 96) do not turn into loud noise.
    for (name, ch) in [("left", &w.left), ("right", &w.right)] {
        let talk = span(ch, 24.0, 40.0);
        assert!(
            rms(talk) > 15.0,
            "{name}: audio while RTP flows, rms {}",
            rms(talk)
        );
        assert!(
            rms(talk) < 2000.0,
            "{name}: no decoded-event noise, rms {}",
            rms(talk)
        );
        assert!(
            rms(span(ch, 1.0, 20.0)) < SILENT_RMS,
            "{name}: silent before RTP starts"
        );
    }
}

// 4 ------------------------------------------------------------------------
/// Local net 10.33.6.101/32: the phone sending the INVITE is local (outgoing).
#[test]
fn pcma_cn_prack_two_way() {
    let Some(r) = replay("pcma-cn-prack-two-way.pcap", "10.33.6.101/32", &[]) else {
        return;
    };
    assert_eq!(r.frames(), 259);
    assert_eq!(r.calls_seen(), 1, "{}", r.summary);
    assert_eq!(r.recorded(), 1, "{}", r.summary);
    let (w, m) = r.by_call_id("1907983263271201083544@10.33.6.101");
    assert_eq!(w.format_tag, 6);
    assert_eq!(m["direction"], 2, "{m}");
    assert_eq!(m["remoteParty"]["phoneNumber"], "101", "{m}");
    // 200 OK at 2.04 s, BYE at 6.92 s.
    assert_near("duration", duration_secs(m), 4.9, 0.4);
    assert_near("WAV", w.seconds(), 4.9, 0.5);
    assert!(peak_block_rms(&w.left) > 300.0, "left audible at times");
    assert!(peak_block_rms(&w.right) > 300.0, "right audible at times");
}

// 5 ------------------------------------------------------------------------
/// Local net 10.33.6.100/32 (the TCP client sending the INVITE).
#[test]
fn sip_over_tcp_pcma_cn_two_way() {
    let Some(r) = replay("sip-over-tcp-pcma-cn-two-way.pcap", "10.33.6.100/32", &[]) else {
        return;
    };
    assert_eq!(r.frames(), 84);
    // All SIP is over TCP (client ephemeral port -> 5060): 7 messages.
    let tcp = &r.summary["transport"]["tcp"];
    assert_eq!(tcp["messages"], 7, "{}", r.summary);
    assert_eq!(tcp["opened"], 2, "both directions tracked: {}", r.summary);
    assert_eq!(tcp["gaps"], 0, "{}", r.summary);
    assert_eq!(r.calls_seen(), 1, "{}", r.summary);
    assert_eq!(r.recorded(), 1, "{}", r.summary);
    let (w, m) = r.by_call_id("158936656982201062716@10.33.6.100");
    assert_eq!(w.format_tag, 6, "A-law");
    assert_eq!(m["direction"], 2, "{m}");
    assert_eq!(m["localParty"]["phoneNumber"], "101", "{m}");
    assert_eq!(m["remoteParty"]["phoneNumber"], "201", "{m}");
    // 200 OK at 4.35 s, BYE at 6.50 s.
    assert_near("duration", duration_secs(m), 2.2, 0.3);
    assert_near("WAV", w.seconds(), 2.2, 0.4);
    // 10.33.6.100:6000 -> .101:6050 20 PCMA + 4 CN (quiet: the decoded
    // payload peaks at 688, RMS 48); reverse 40 PCMA + 2 CN (loud).
    let peak = |s: &[i16]| s.iter().map(|x| x.unsigned_abs()).max().unwrap_or(0);
    assert!(
        peak(&w.left) > 400,
        "local (left) audible: peak {}",
        peak(&w.left)
    );
    assert!(rms(&w.left) > 10.0, "local (left) not silence");
    assert!(peak_block_rms(&w.right) > 1000.0, "remote (right) audible");
}

// 6 ------------------------------------------------------------------------
/// Local net 172.16.98.1/32: the Zoiper caller is local, so leg A (caller ->
/// Asterisk) is outgoing; direct media .145 -> .1 lands on its RIGHT channel.
#[test]
fn asterisk_directmedia_reinvite_pcmu() {
    let Some(r) = replay(
        "asterisk-directmedia-reinvite-pcmu.pcapng",
        "172.16.98.1/32",
        &[],
    ) else {
        return;
    };
    assert_eq!(r.frames(), 416);
    assert_eq!(r.calls_seen(), 2, "two legs: {}", r.summary);
    // B2BUA legs: leg B (Asterisk -> .145, neither party local) is the same
    // conversation (sent from leg A's callee with the same caller number
    // 2 ms after leg A's INVITE): recorded once, on leg A, which crosses the
    // local/remote boundary.
    assert_eq!(r.recorded(), 1, "{}", r.summary);
    assert_eq!(r.summary["legs_linked"], 1, "{}", r.summary);
    let skipped = r.skipped();
    assert!(
        skipped.iter().any(|(id, reason)| id
            == "37686afc57ce24ac655742b3644a7bb8@172.16.98.101:5060"
            && reason.contains("B2BUA leg of call M2Q0ZDc1")),
        "leg B skipped as a B2BUA leg: {skipped:?}"
    );
    let (w, m) = r.by_call_id("M2Q0ZDc1ZGM1NzIyMTlhZTA3NDU3NTgzMzA5YmJmZWQ.");
    assert_eq!(w.format_tag, 7);
    assert_eq!(m["direction"], 2, "{m}");
    assert_eq!(m["localParty"]["phoneNumber"], "telephone1", "{m}");
    assert_eq!(m["remoteParty"]["phoneNumber"], "2302", "{m}");
    // 200 OK at 19.11 s, BYE at 26.73 s; RTP .145 -> .1 19.59-26.71 s after
    // the re-INVITE moved the media; the caller sent a single packet.
    assert_near("duration", duration_secs(m), 7.6, 0.5);
    assert!(
        rms(span(&w.right, 0.6, 7.5)) > 100.0,
        "callee audio on the right"
    );
    assert!(
        rms(&w.left) < 100.0,
        "caller sent one packet only: left near silent"
    );
}

// 7 ------------------------------------------------------------------------
/// Local net 10.35.60.100/32: the gateway answering the 10.35.60.72 hop is
/// local (incoming); its media to 10.23.1.52 (the CED tone) is LEFT.
#[test]
fn fax_pcma_declined_t38_multihop() {
    let Some(r) = replay(
        "fax-pcma-declined-t38-multihop.pcap",
        "10.35.60.100/32",
        &[],
    ) else {
        return;
    };
    assert_eq!(r.frames(), 7217);
    assert_eq!(r.calls_seen(), 2, "two Call-IDs: {}", r.summary);
    // One conversation: the 00e9 Call-ID on three links is one dialog (the
    // other hops' SIP merged), and the SBC's SD4909701 leg (From tag
    // "SD4909701-00e9d478" derived from "00e9d478", same number dialled,
    // 5 ms later; no RTP of its own) is a B2BUA leg, not recorded.
    assert_eq!(r.recorded(), 1, "{}", r.summary);
    assert!(
        r.summary["sip_hop_copies"].as_u64().unwrap() > 0,
        "{}",
        r.summary
    );
    let skipped = r.skipped();
    assert!(
        skipped
            .iter()
            .any(|(id, reason)| id.starts_with("SD4909701-")
                && reason.contains("B2BUA leg of call 00e9d4a5")),
        "the SBC leg is skipped as a B2BUA leg: {skipped:?}"
    );
    let call_id = "00e9d4a500e9d48-0015-0001-0000-0000@10.35.40.25";
    let fax: Vec<_> = r
        .recordings
        .iter()
        .filter(|(_, m)| m["pbxCallId"] == call_id)
        .collect();
    assert!(!fax.is_empty(), "a recording for {call_id}");
    // The hop 10.35.60.72 -> 10.35.60.100 (where the local party is) carries
    // the ~77 s of PCMA (200 OK 27.86 s, BYE 104.75 s) through the declined T.38.
    let hop = fax
        .iter()
        .find(|(_, m)| m["direction"] == 1)
        .unwrap_or_else(|| panic!("an incoming recording for the .72 -> .100 hop: {fax:?}"));
    let w = read_wav(&hop.0);
    assert_eq!(w.format_tag, 6);
    assert_near("duration", duration_secs(&hop.1), 76.9, 1.5);
    assert_near("WAV", w.seconds(), 76.9, 1.5);
    // CED 2100 Hz from ~29.8 s to 33.8 s, i.e. ~2-6 s into the call, on .100 -> .52.
    // CED reverses its phase every 450 ms (V.25), so look at 100 ms blocks.
    let ced = span(&w.left, 2.5, 5.5);
    let blocks: Vec<f64> = ced.chunks(800).map(|b| tone_ratio(b, 2100.0)).collect();
    let toned = blocks.iter().filter(|&&r| r > 0.5).count();
    assert!(
        toned * 4 >= blocks.len() * 3,
        "2100 Hz CED on the left in most 100 ms blocks: {blocks:?}"
    );
    // The modem signal continues after the rejected T.38 offer (64.5 s -> ~36.6 s in).
    assert!(
        rms(span(&w.right, 40.0, 75.0)) > 1000.0,
        ".52 -> .100 fax data after the 488"
    );
    assert!(
        peak_block_rms(span(&w.left, 40.0, 75.0)) > 1000.0,
        "V.21 bursts after the 488"
    );
    assert_eq!(fax.len(), 1, "one recording for {call_id}");
    // .52 -> .100 mixes 10 ms and 20 ms packets (idle-coded until ~64.4 s) and
    // resets its RTP timestamp from 347200 to 0 at 64.75 s (36.9 s in) with
    // the same SSRC: the idle part stays digital silence (no overlap noise
    // from the mixed packet sizes) and the modem signal after the reset runs
    // without a hole or a doubled span for the 4.3 s until its next pause.
    assert!(
        rms(span(&w.right, 3.0, 36.0)) < SILENT_RMS,
        "idle 10/20 ms packets decode to silence: {}",
        rms(span(&w.right, 3.0, 36.0))
    );
    let after_reset: Vec<f64> = span(&w.right, 37.0, 41.3).chunks(800).map(rms).collect();
    assert!(
        after_reset.iter().all(|&r| r > 1000.0),
        "continuous modem signal after the timestamp reset: {after_reset:?}"
    );
    let notes = hop.1["notes"].as_str().unwrap_or_default();
    assert!(notes.contains("another hop"), "hop merge noted: {notes}");
    assert!(notes.contains("488"), "declined T.38 noted: {notes}");
}

// 8 ------------------------------------------------------------------------
/// Local net 127.0.0.1/32: both ends are local, so the direction is unknown
/// (0) and the caller (UDP 5061, RTP 6001 -> 6000) is on the LEFT.
#[test]
fn loopback_pcmu_oneway_10s() {
    let Some(r) = replay("loopback-pcmu-oneway-10s.pcap", "127.0.0.1/32", &[]) else {
        return;
    };
    assert_eq!(r.frames(), 507);
    assert_eq!(r.calls_seen(), 1, "{}", r.summary);
    assert_eq!(r.recorded(), 1, "{}", r.summary);
    let (w, m) = r.by_call_id("1-7879@127.0.0.1");
    assert_eq!(w.format_tag, 7);
    assert_eq!(m["direction"], 0, "{m}");
    assert_eq!(m["localParty"]["phoneNumber"], "sipp", "{m}");
    assert_eq!(m["remoteParty"]["phoneNumber"], "service", "{m}");
    assert_near("duration", duration_secs(m), 10.0, 0.3);
    assert_near("WAV", w.seconds(), 10.0, 0.3);
    assert!(
        rms(span(&w.left, 0.0, 4.0)) > 300.0,
        "speech on the left in the first 4 s"
    );
    assert!(
        rms(&w.right) < SILENT_RMS,
        "no reverse stream: right silent"
    );
}

// 9 ------------------------------------------------------------------------
/// Local net 192.168.10.41/32 (X-Lite, which sends the INVITE).
#[test]
fn zrtp_srtp_pt0_encrypted() {
    let Some(r) = replay("zrtp-srtp-pt0-encrypted.pcap", "192.168.10.41/32", &[]) else {
        return;
    };
    assert_eq!(r.frames(), 1042);
    assert_eq!(
        r.calls_seen(),
        1,
        "one dialog (401 then 200): {}",
        r.summary
    );
    // After the ZRTP handshake (16.54-16.76 s) 778 of 790 packets from .40 are
    // SRTP under PT 0 (payload 4 bytes longer, encrypted). The ZRTP packets
    // (magic cookie "ZRTP") mark the call's media as encrypted: no recording
    // (it would be noise), skipped with a reason naming encrypted media.
    assert_eq!(r.recorded(), 0, "{}", r.summary);
    assert!(r.recordings.is_empty());
    assert!(
        r.summary["zrtp_packets"].as_u64().unwrap() > 0,
        "{}",
        r.summary
    );
    assert_eq!(r.summary["encrypted_calls"], 1, "{}", r.summary);
    let skipped = r.skipped();
    assert!(
        skipped.iter().any(
            |(id, reason)| id == "ZDYzOWVlNjEwM2NjZTBjNzliNmM1ZTNiOGZjNWFhN2E."
                && reason.contains("encrypted")
                && reason.contains("ZRTP")
        ),
        "skipped as encrypted: {skipped:?}"
    );
}

// 10 -----------------------------------------------------------------------
/// Local net 127.0.0.1/32 (both UAs): direction 0, caller "alice" on the LEFT.
#[test]
fn generated_reinvite_pcmu_to_opus() {
    let Some(r) = replay("generated-reinvite-pcmu-to-opus.pcap", "127.0.0.1/32", &[]) else {
        return;
    };
    assert_eq!(r.frames(), 230);
    assert_eq!(r.calls_seen(), 1, "{}", r.summary);
    assert_eq!(r.recorded(), 1, "{}", r.summary);
    let (w, m) = r.by_call_id("1-3812687@127.0.0.1");
    assert_eq!(w.format_tag, 7);
    assert_eq!(m["direction"], 0, "{m}");
    assert_eq!(m["localParty"]["phoneNumber"], "alice", "{m}");
    assert_eq!(m["remoteParty"]["phoneNumber"], "bob", "{m}");
    // PCMU both ways 0.23-1.73 s, then Opus (PT 96) until the BYE at 2.34 s:
    // never written as noise, and the notes name the codec.
    let notes = m["notes"].as_str().unwrap_or_default().to_lowercase();
    assert!(
        notes.contains("opus"),
        "notes name the unsupported codec: {notes:?}"
    );
    let tail = |ch: &[i16]| rms(span(ch, 1.75, 2.05));
    assert!(tail(&w.left) < 200.0, "Opus not decoded as G.711 (left)");
    assert!(tail(&w.right) < 200.0, "Opus not decoded as G.711 (right)");
}

// 11 -----------------------------------------------------------------------
/// Local net fd17:625c:f037:2::/64 holds both IMS hops; no RTP was captured.
#[test]
fn ipv6_fragmented_invite_sll_prack() {
    let Some(r) = replay(
        "ipv6-fragmented-invite-sll-prack.pcap",
        "fd17:625c:f037:2::/64",
        &[],
    ) else {
        return;
    };
    assert_eq!(r.frames(), 34);
    // Linux SLL, IPv6 and IPv6 fragment reassembly are core: the INVITE is
    // only readable once its two fragments are joined.
    assert_eq!(
        r.calls_seen(),
        1,
        "one Call-ID over two hops: {}",
        r.summary
    );
    for (wav, _) in &r.recordings {
        let w = read_wav(wav);
        assert!(
            rms(&w.left) < SILENT_RMS && rms(&w.right) < SILENT_RMS,
            "no RTP: silence"
        );
    }
}

// 12 -----------------------------------------------------------------------
/// Local net 10.186.205.0/24 (the Avaya CM side).
#[test]
fn sip_tcp_port6060_segmented_many_dialogs() {
    let Some(r) = replay(
        "sip-tcp-port6060-segmented-many-dialogs.pcap",
        "10.186.205.0/24",
        &[],
    ) else {
        return;
    };
    assert_eq!(r.frames(), 1542);
    // SIP over TCP 6060, recognised by content; 234 frames need segment
    // reassembly. tshark (with -d tcp.port==6060,sip) finds 406 messages.
    let tcp = &r.summary["transport"]["tcp"];
    assert_eq!(tcp["messages"], 406, "{}", r.summary);
    assert_eq!(tcp["gaps"], 0, "{}", r.summary);
    assert_eq!(tcp["resyncs"], 0, "{}", r.summary);
    assert_eq!(r.summary["sip_errors"], 0, "{}", r.summary);
    // 37 new INVITE dialogs (32 answered, 1 CANCEL/487, 1 403, 3 without
    // final response); the 28 mid-dialog Call-IDs start no call.
    assert_eq!(r.calls_seen(), 37, "{}", r.summary);
    let skipped = r.skipped();
    assert_eq!(
        r.recorded() + skipped.len() as u64,
        37,
        "every dialog recorded or skipped: {}",
        r.summary
    );
    assert!(r.recorded() <= 32, "only answered calls: {}", r.summary);
    for (id, why) in [
        ("802220406592e81b8b15b37b77600", "487"),
        ("80f232536592e8138b25b37b77600", "403"),
        ("85b939c9-8f01-4f54-8042-a2338185f4cb", "final response"),
        ("80e81616592e819ab25b37b77600", "final response"),
        ("bef7ab40-12f0-4b7b-8b38-e0b729487c26", "final response"),
    ] {
        assert!(
            skipped
                .iter()
                .any(|(c, reason)| c == id && reason.contains(why)),
            "{id} skipped ({why}): {skipped:?}"
        );
    }
    // No RTP was captured: no recording holds audio.
    for (wav, _) in &r.recordings {
        let w = read_wav(wav);
        assert!(silent(&w), "{}", wav.display());
    }
}

// 13 -----------------------------------------------------------------------
/// Local net 10.243.0.0/16 (the WebRTC client, proxy and media server side).
#[test]
fn sip_websocket_webrtc_183() {
    let Some(r) = replay("sip-websocket-webrtc-183.pcap", "10.243.0.0/16", &[]) else {
        return;
    };
    assert_eq!(r.frames(), 61);
    // The WebRTC leg is SIP over WebSocket (TCP 8080, masked client frames):
    // both directions upgrade, 11 SIP messages ride in WebSocket frames.
    let tcp = &r.summary["transport"]["tcp"];
    assert_eq!(tcp["websocket"], 2, "{}", r.summary);
    assert_eq!(tcp["messages"], 11, "{}", r.summary);
    assert_eq!(tcp["websocket_errors"], 0, "{}", r.summary);
    // Two dialogs: the WebRTC leg (SAVPF/Opus, 200 at 13.40 s, BYE 16.73 s)
    // and the PSTN leg over UDP (PCMU, three 183s with SDP, 200 at 13.36 s).
    assert_eq!(r.calls_seen(), 2, "{}", r.summary);
    let skipped = r.skipped();
    assert!(
        skipped
            .iter()
            .any(|(c, reason)| c == "kovfhoptshgn59q712sr" && !reason.trim().is_empty()),
        "the WebRTC leg (DTLS-SRTP) is skipped with a reason: {skipped:?}"
    );
    // No RTP was captured on either leg: no recording holds audio.
    for (wav, _) in &r.recordings {
        let w = read_wav(wav);
        assert!(silent(&w), "{}", wav.display());
    }
}

// 14 -----------------------------------------------------------------------
/// Local net 192.168.1.0/24 (the B2BUA's inside addresses).
#[test]
fn gre_teb_sip_hold_refer() {
    let Some(r) = replay("gre-teb-sip-hold-refer.pcapng", "192.168.1.0/24", &[]) else {
        return;
    };
    // No RTP crossed this capture point: by default the two answered calls
    // are reported and not recorded as silence.
    assert_eq!(r.recorded(), 0, "{}", r.summary);
    assert_eq!(r.summary["calls_without_media"], 2, "{}", r.summary);
    // Kept as silent recordings on request, their metadata tells the story.
    let Some(r) = replay(
        "gre-teb-sip-hold-refer.pcapng",
        "192.168.1.0/24",
        &["--keep-calls-without-media"],
    ) else {
        return;
    };
    assert_eq!(r.frames(), 140);
    // Every frame is GRE (0x6558, transparent Ethernet bridging) carrying
    // one SIP message over UDP.
    assert_eq!(
        r.summary["transport"]["tunnels"]["gre"], 140,
        "{}",
        r.summary
    );
    assert_eq!(r.summary["sip_messages"], 140, "{}", r.summary);
    assert_eq!(r.summary["decode_errors"], 0, "{}", r.summary);
    assert_eq!(r.calls_seen(), 3, "3 INVITE dialogs: {}", r.summary);
    // Call level: every Call-ID is seen on both sides of the SBC (inside
    // 192.168.1.191 <-> .222, outside 101.231.48.19 <-> 180.173.83.248, each
    // side with its own tags): one dialog each, the other side merged. The
    // consultation call 20008909 -> 20008910 is two B2BUA legs (bf3880...,
    // and cdfef7... sent 0.1 s later from .191, where bf3880's INVITE was
    // delivered): recorded once. The first call (20008777 -> 20008909) is
    // held (c=0.0.0.0, sendonly) and its attended transfer (REFER with
    // Replaces) is refused after 407 with 488: noted, the call stays one
    // recording. No RTP: the recordings are silent.
    assert_eq!(r.recorded(), 2, "{}", r.summary);
    assert_eq!(r.summary["legs_linked"], 1, "{}", r.summary);
    let skipped = r.skipped();
    assert!(
        skipped.iter().any(
            |(id, reason)| id == "cdfef7c7647e97e4ff66fbf504c524e4@192.168.1.191"
                && reason.contains("B2BUA leg of call bf3880")
        ),
        "{skipped:?}"
    );
    let (_, first) = r.by_call_id("ddd141f1d982d8989fb73db754a8fbb7@192.168.1.191");
    assert_eq!(first["localParty"]["phoneNumber"], "20008777", "{first}");
    assert_eq!(first["remoteParty"]["phoneNumber"], "20008909", "{first}");
    let notes = first["notes"].as_str().unwrap_or_default();
    for want in [
        "another hop",
        "hold or one-way media",
        "attended REFER to 20008910), refused: 488",
    ] {
        assert!(notes.contains(want), "{want:?} in {notes}");
    }
    assert!(
        !notes.contains("second branch"),
        "hop tags are not forks: {notes}"
    );
    let (_, consult) = r.by_call_id("bf3880-0-16e4-5af571fa-38bc4ba4-5af571fa@101.231.48.19");
    assert_eq!(
        consult["localParty"]["phoneNumber"], "20008909",
        "{consult}"
    );
    assert_eq!(
        consult["remoteParty"]["phoneNumber"], "20008910",
        "{consult}"
    );
    for (wav, _) in &r.recordings {
        let w = read_wav(wav);
        assert!(silent(&w), "no RTP: {}", wav.display());
    }
}

// 15 -----------------------------------------------------------------------
/// Local net 10.0.0.0/8.
#[test]
fn vlan_gre_ppp_sip_cancel() {
    let Some(r) = replay("vlan-gre-ppp-sip-cancel.pcapng", "10.0.0.0/8", &[]) else {
        return;
    };
    assert_eq!(r.frames(), 36);
    // 35 frames VLAN -> IPv4 -> GRE -> PPP -> IPv4 -> UDP; one OPTIONS with
    // two VLAN tags -> PPPoE -> PPP -> IPv4 -> GRE -> PPP -> IPv4 -> UDP.
    let tunnels = &r.summary["transport"]["tunnels"];
    assert_eq!(tunnels["gre"], 36, "{}", r.summary);
    assert_eq!(tunnels["pppoe"], 1, "{}", r.summary);
    assert_eq!(r.summary["sip_messages"], 36, "{}", r.summary);
    assert_eq!(r.summary["decode_errors"], 0, "{}", r.summary);
    // 5 INVITE dialogs: 2 answered (BYE) and 3 CANCEL/487 skipped.
    assert_eq!(r.calls_seen(), 5, "{}", r.summary);
    let skipped = r.skipped();
    for id in [
        "AI4F610BFAF71F5BE0@192.168.10.210",
        "AI8435DD52A4ABA390@192.168.103.40",
        "AI27E8D88D54CE0A7B@192.168.10.210",
    ] {
        assert!(
            skipped
                .iter()
                .any(|(c, reason)| c == id && reason.contains("487")),
            "{id} skipped (487): {skipped:?}"
        );
    }
    for id in [
        "AI1737AB5491ADC392@192.168.103.40",
        "AI3B1F578CA7F5E2AA@192.168.103.40",
    ] {
        assert!(
            !skipped.iter().any(|(c, r)| c == id && r.contains("487")),
            "{id} was answered: {skipped:?}"
        );
    }
    // LATER(issue 5, call level): the answered calls last 36.4 s and 81.6 s
    // (200 OK to BYE) although no RTP was captured.
    // No RTP: no recording with audio, and the 9 h span makes no huge file.
    for (wav, _) in &r.recordings {
        let len = std::fs::metadata(wav).unwrap().len();
        assert!(len < 10 * 1024 * 1024, "{} is {len} bytes", wav.display());
        let w = read_wav(wav);
        assert!(silent(&w), "{}", wav.display());
    }
}

// 16 -----------------------------------------------------------------------
/// Local net 192.168.1.2/32 (the home UA).
#[test]
fn sip_auth_cancel_183_480_stray_rtp() {
    let Some(r) = replay(
        "sip-auth-cancel-183-480-stray-rtp.pcap",
        "192.168.1.2/32",
        &[],
    ) else {
        return;
    };
    assert_eq!(r.frames(), 112);
    assert_eq!(r.calls_seen(), 4, "{}", r.summary);
    assert_eq!(r.recorded(), 0, "no call was answered: {}", r.summary);
    let skipped = r.skipped();
    assert_eq!(skipped.len(), 4, "{skipped:?}");
    for id in [
        "105090259-446faf7a@192.168.1.2",
        "11894297-4432a9f8@192.168.1.2",
        "24487391-449bf2a0@192.168.1.2",
        "85216695-42dcdb1d@192.168.1.2",
    ] {
        assert!(
            skipped
                .iter()
                .any(|(c, reason)| c == id && !reason.trim().is_empty()),
            "{id} skipped with a reason: {skipped:?}"
        );
    }
    // The 9 PCMA packets sent after the 480 create nothing.
    assert!(r.recordings.is_empty());
}

// 17 -----------------------------------------------------------------------
/// Local net 10.0.0.0/8.
#[test]
fn pppoe_sip_info_dtmf_multi_invite() {
    let Some(r) = replay("pppoe-sip-info-dtmf-multi-invite.pcap", "10.0.0.0/8", &[]) else {
        return;
    };
    assert_eq!(r.frames(), 32);
    // Every frame is a PPPoE session frame.
    assert_eq!(
        r.summary["transport"]["tunnels"]["pppoe"], 32,
        "{}",
        r.summary
    );
    // LATER(issue 5, call level): 1 Call-ID with three INVITE
    // transactions (CSeq 1-3, three 200 OKs with media ports 28510, 26792,
    // 26800, CANCELs crossing them), session-refresh re-INVITEs at 30.2 s and
    // 60.6 s keep one call; m=video rejected; no RTP; SIP INFO DTMF 1 3 4 2.
    assert!(r.calls_seen() <= 1, "{}", r.summary);
}

// 18 -----------------------------------------------------------------------
/// Local net 10.0.0.0/8.
#[test]
fn sip_over_sctp_sll_isup() {
    let Some(r) = replay("sip-over-sctp-sll-isup.pcap", "10.0.0.0/8", &[]) else {
        return;
    };
    assert_eq!(r.frames(), 5);
    assert_eq!(r.recorded(), 0, "{}", r.summary);
    // SIP over SCTP: the INVITE (a multipart/mixed SDP + ISUP body) comes in
    // two DATA chunks in two packets; then 100, 403, ACK.
    assert_eq!(r.summary["sip_messages"], 4, "{}", r.summary);
    assert_eq!(r.calls_seen(), 1, "{}", r.summary);
    let skipped = r.skipped();
    assert!(
        skipped
            .iter()
            .any(|(id, reason)| id == "717B2539AD2002C9152DC497@0870ffffffff"
                && reason.contains("403")),
        "{skipped:?}"
    );
}

// 19 -----------------------------------------------------------------------
/// Local net fe80::/10 (the link-local side).
#[test]
fn ipv6_sip_bogus_timestamps() {
    let Some(r) = replay("ipv6-sip-bogus-timestamps.pcap", "fe80::/10", &[]) else {
        return;
    };
    assert_eq!(r.frames(), 6);
    assert_eq!(r.calls_seen(), 1, "IPv6 SIP over UDP: {}", r.summary);
    // Timestamps jump by years between packets: no huge or endless WAV.
    for (wav, _) in &r.recordings {
        let len = std::fs::metadata(wav).unwrap().len();
        assert!(len < 10 * 1024 * 1024, "{} is {len} bytes", wav.display());
    }
}

#[test]
fn helper_duration_parser() {
    let d = |s: &str| duration_secs(&serde_json::json!({ "duration": s }));
    assert_near("PT5.02S", d("PT5.02S"), 5.02, 1e-9);
    assert_near("PT1M30S", d("PT1M30S"), 90.0, 1e-9);
    assert_near("PT1H0M2S", d("PT1H0M2S"), 3602.0, 1e-9);
    let a: Vec<i16> = (0..8000)
        .map(|i| ((i as f64 * 0.3).sin() * 8000.0) as i16)
        .collect();
    assert!(correlation(&a, &a) > 0.9999);
    assert!(quietest_second(&[0; 16000]) == 0.0);
}
