//! Dialog and media scenarios driven through the library API: frames built
//! packet by packet (SIP text, RTP with tones) go into a `Recorder` with an
//! in-memory store, and the recordings are checked by content and metadata.

mod common;

use common::{parse_wav, rms, tone_ratio, Stereo};
use std::io::Cursor;
use taprec::call::Metadata;
use taprec::capture::{Frame, LinkType};
use taprec::config::Config;
use taprec::media::g711;
use taprec::recorder::{Outcome, Recorder, Store};
use taprec::synth::wire::{build_udp_frame, Endpoint, IpFields};
use taprec::Timestamp;

/// Keeps recordings in memory.
#[derive(Default)]
struct Memory {
    committed: Vec<(String, Vec<u8>, Metadata)>,
}

impl Store for Memory {
    type Output = Cursor<Vec<u8>>;
    fn create(&mut self, _id: &str, _provisional: &Metadata) -> std::io::Result<Self::Output> {
        Ok(Cursor::new(Vec::new()))
    }
    fn commit(&mut self, id: &str, wav: Self::Output, metadata: &Metadata) -> std::io::Result<()> {
        self.committed
            .push((id.to_string(), wav.into_inner(), metadata.clone()));
        Ok(())
    }
    fn discard(&mut self, _id: &str, _wav: Self::Output) {}
}

const CALLER: &str = "10.1.0.5";
const CALLEE: &str = "203.0.113.7";
const T0: i64 = 1_767_225_600_000_000_000;

/// Builds the frames of a call, in capture order.
struct Call {
    frames: Vec<(Timestamp, Vec<u8>)>,
    call_id: String,
}

fn endpoint(ip: &str, port: u16) -> Endpoint {
    Endpoint {
        mac: [2, 0, 0, 0, 0, 1],
        ip: ip.parse().unwrap(),
        port,
    }
}

fn at_ms(ms: i64) -> Timestamp {
    Timestamp(T0 + ms * 1_000_000)
}

fn sdp(ip: &str, port: u16, pts: &str, extra: &str) -> String {
    format!(
        "v=0\r\no=- 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\nm=audio {port} RTP/AVP {pts}\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:18 G729/8000\r\na=rtpmap:101 telephone-event/8000\r\n{extra}"
    )
}

impl Call {
    fn new(call_id: &str) -> Self {
        Call {
            frames: Vec::new(),
            call_id: call_id.to_string(),
        }
    }

    fn udp(&mut self, ms: i64, src: Endpoint, dst: Endpoint, payload: &[u8]) {
        let mut buf = Vec::new();
        assert!(build_udp_frame(
            &mut buf,
            &[],
            &src,
            &dst,
            IpFields { id: 1, ttl: 64 },
            |b| b.extend_from_slice(payload)
        ));
        self.frames.push((at_ms(ms), buf));
    }

    /// A SIP message from the caller (`from_caller`) or the callee.
    fn sip(
        &mut self,
        ms: i64,
        from_caller: bool,
        first_line: &str,
        cseq: &str,
        to_tag: bool,
        body: &str,
    ) {
        let ctype = if body.is_empty() {
            ""
        } else {
            "Content-Type: application/sdp\r\n"
        };
        let to_tag = if to_tag { ";tag=callee1" } else { "" };
        let caller = format!("\"Anna\" <sip:1001@{CALLER}>;tag=caller1");
        let callee = format!("<sip:+390255501@{CALLEE}>{to_tag}");
        // A request from the callee (in-dialog) has the callee in From.
        let (from, to) = if !from_caller && !first_line.starts_with("SIP/2.0") {
            (callee, caller)
        } else {
            (caller, callee)
        };
        let text = format!(
            "{first_line}\r\nVia: SIP/2.0/UDP {CALLER}:5060;branch=z9hG4bK{ms}\r\nFrom: {from}\r\nTo: {to}\r\nCall-ID: {}\r\nCSeq: {cseq}\r\n{ctype}Content-Length: {}\r\n\r\n{body}",
            self.call_id,
            body.len()
        );
        let (a, b) = (endpoint(CALLER, 5060), endpoint(CALLEE, 5060));
        if from_caller {
            self.udp(ms, a, b, text.as_bytes());
        } else {
            self.udp(ms, b, a, text.as_bytes());
        }
    }

    /// 20 ms RTP packets of a tone from `src` to `dst`, from `from_ms` to `to_ms`.
    #[allow(clippy::too_many_arguments)]
    fn tone(
        &mut self,
        src: Endpoint,
        dst: Endpoint,
        pt: u8,
        ssrc: u32,
        hz: f64,
        from_ms: i64,
        to_ms: i64,
        ts0: u32,
    ) {
        let mut ms = from_ms;
        let mut seq = 1000u16;
        while ms < to_ms {
            let k0 = (ms - from_ms) * 8;
            let mut rtp = vec![0x80, pt, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
            rtp[2..4].copy_from_slice(&seq.to_be_bytes());
            rtp[4..8].copy_from_slice(&(ts0.wrapping_add(k0 as u32)).to_be_bytes());
            rtp[8..12].copy_from_slice(&ssrc.to_be_bytes());
            for k in k0..k0 + 160 {
                let x =
                    (8000.0 * (2.0 * std::f64::consts::PI * hz * k as f64 / 8000.0).sin()) as i16;
                rtp.push(if pt == 8 {
                    g711::linear_to_alaw(x)
                } else {
                    g711::linear_to_ulaw(x)
                });
            }
            self.udp(ms, src, dst, &rtp);
            seq = seq.wrapping_add(1);
            ms += 20;
        }
    }

    /// A recorder that has handled the frames, in time order, and finished.
    fn recorder(&self, config: &Config) -> Recorder<Memory> {
        let mut frames = self.frames.clone();
        frames.sort_by_key(|(t, _)| *t);
        let mut recorder = Recorder::new(config, Memory::default());
        for (ts, data) in &frames {
            recorder.handle_frame(&Frame {
                ts: *ts,
                link: LinkType::Ethernet,
                data,
                original_len: data.len() as u32,
            });
        }
        recorder.finish();
        recorder
    }

    fn replay(&self, config: &Config) -> (Vec<(Stereo, Metadata)>, Vec<Outcome>) {
        let mut recorder = self.recorder(config);
        let outcomes = recorder.take_outcomes();
        let recs = recorder
            .store()
            .committed
            .iter()
            .map(|(_, wav, meta)| (parse_wav(wav), meta.clone()))
            .collect();
        (recs, outcomes)
    }
}

fn config() -> Config {
    Config {
        local_networks: vec!["10.0.0.0/8".parse().unwrap()],
        ..Config::default()
    }
}

fn span(samples: &[i16], from_s: f64, to_s: f64) -> &[i16] {
    let a = ((from_s * 8000.0) as usize).min(samples.len());
    let b = ((to_s * 8000.0) as usize).min(samples.len());
    &samples[a..b]
}

fn has_tone(samples: &[i16], hz: f64) -> bool {
    let blocks: Vec<&[i16]> = samples.chunks_exact(800).collect();
    !blocks.is_empty()
        && blocks
            .iter()
            .all(|b| tone_ratio(b, hz) > 0.9 && rms(b) > 1000.0)
}

fn silent(samples: &[i16]) -> bool {
    rms(samples) < 30.0
}

const INVITE: &str = "INVITE sip:+390255501@203.0.113.7 SIP/2.0";

#[test]
fn early_media_is_not_recorded_and_the_timeline_starts_at_the_answer() {
    let mut c = Call::new("early@x");
    let (a, b) = (endpoint(CALLER, 4000), endpoint(CALLEE, 5000));
    c.sip(
        0,
        true,
        INVITE,
        "1 INVITE",
        false,
        &sdp(CALLER, 4000, "0 101", ""),
    );
    c.sip(
        100,
        false,
        "SIP/2.0 183 Session Progress",
        "1 INVITE",
        true,
        &sdp(CALLEE, 5000, "0 101", ""),
    );
    // Ringback (440 Hz) as early media, then the callee's voice (1000 Hz).
    c.tone(b, a, 0, 7, 440.0, 120, 2000, 0);
    c.sip(
        2000,
        false,
        "SIP/2.0 200 OK",
        "1 INVITE",
        true,
        &sdp(CALLEE, 5000, "0 101", ""),
    );
    c.sip(
        2010,
        true,
        "ACK sip:+390255501@203.0.113.7 SIP/2.0",
        "1 ACK",
        true,
        "",
    );
    c.tone(b, a, 0, 8, 1000.0, 2000, 6000, 50_000);
    c.tone(a, b, 0, 9, 600.0, 2000, 6000, 90_000);
    c.sip(
        6000,
        true,
        "BYE sip:+390255501@203.0.113.7 SIP/2.0",
        "2 BYE",
        true,
        "",
    );
    let (recs, _) = c.replay(&config());
    assert_eq!(recs.len(), 1);
    let (w, m) = &recs[0];
    assert!((w.seconds() - 4.0).abs() < 0.01, "{}", w.seconds());
    assert_eq!(m.start_date_time, "2026-01-01T00:00:02.000000Z");
    assert_eq!(m.duration, "PT4S");
    assert_eq!(m.direction, 2);
    assert_eq!(m.local_party.phone_number, "1001");
    assert_eq!(m.local_party.username, "Anna");
    assert_eq!(m.remote_party.phone_number, "+390255501");
    assert!(
        has_tone(span(&w.right, 0.1, 3.9), 1000.0),
        "no ringback in the recording"
    );
    assert!(has_tone(span(&w.left, 0.1, 3.9), 600.0));
    assert!(
        m.notes.contains("ended by BYE from the local party"),
        "{}",
        m.notes
    );
}

#[test]
fn hold_then_resume_on_a_new_port_and_a_codec_change() {
    let mut c = Call::new("hold@x");
    let (a, b) = (endpoint(CALLER, 4000), endpoint(CALLEE, 5000));
    let b2 = endpoint(CALLEE, 5002);
    c.sip(
        0,
        true,
        INVITE,
        "1 INVITE",
        false,
        &sdp(CALLER, 4000, "0 8 101", ""),
    );
    c.sip(
        500,
        false,
        "SIP/2.0 200 OK",
        "1 INVITE",
        true,
        &sdp(CALLEE, 5000, "0 101", ""),
    );
    c.tone(a, b, 0, 1, 600.0, 500, 3000, 0);
    c.tone(b, a, 0, 2, 1000.0, 500, 3000, 0);
    // The caller puts the call on hold (sendonly): no audio for 2 s.
    let reinvite = "INVITE sip:+390255501@203.0.113.7 SIP/2.0";
    c.sip(
        3000,
        true,
        reinvite,
        "2 INVITE",
        true,
        &sdp(CALLER, 4000, "0 101", "a=sendonly\r\n"),
    );
    c.sip(
        3010,
        false,
        "SIP/2.0 200 OK",
        "2 INVITE",
        true,
        &sdp(CALLEE, 5000, "0 101", "a=recvonly\r\n"),
    );
    // Resume: the callee now receives on a new port, and both switch to PCMA
    // (transcoded into the u-law recording).
    c.sip(
        5000,
        true,
        reinvite,
        "3 INVITE",
        true,
        &sdp(CALLER, 4000, "8 101", ""),
    );
    c.sip(
        5010,
        false,
        "SIP/2.0 200 OK",
        "3 INVITE",
        true,
        &sdp(CALLEE, 5002, "8 101", ""),
    );
    c.tone(a, b2, 8, 3, 700.0, 5020, 8000, 0);
    c.tone(b2, a, 8, 4, 1100.0, 5020, 8000, 0);
    c.sip(
        8000,
        false,
        "BYE sip:1001@10.1.0.5 SIP/2.0",
        "9 BYE",
        true,
        "",
    );
    let (recs, _) = c.replay(&config());
    let (w, m) = &recs[0];
    assert_eq!(w.format_tag, 7, "u-law, as the call started");
    assert!((w.seconds() - 7.5).abs() < 0.01);
    assert!(has_tone(span(&w.left, 0.1, 2.4), 600.0));
    assert!(has_tone(span(&w.right, 0.1, 2.4), 1000.0));
    assert!(
        silent(span(&w.left, 2.6, 4.4)) && silent(span(&w.right, 2.6, 4.4)),
        "hold is silence"
    );
    assert!(has_tone(span(&w.left, 4.7, 7.4), 700.0));
    assert!(
        has_tone(span(&w.right, 4.7, 7.4), 1100.0),
        "media on the new port is matched"
    );
    assert!(m.notes.contains("moved"), "{}", m.notes);
    assert!(
        m.notes.contains("sendonly") || m.notes.contains("recvonly"),
        "{}",
        m.notes
    );
    assert!(
        m.notes.contains("ended by BYE from the remote party"),
        "{}",
        m.notes
    );
}

#[test]
fn nat_symmetric_rtp_is_learned() {
    let mut c = Call::new("nat@x");
    // The callee announces a private address but sends from its public one;
    // the caller sends back to where the callee's packets came from.
    let a = endpoint(CALLER, 4000);
    let public = endpoint(CALLEE, 31000);
    c.sip(
        0,
        true,
        INVITE,
        "1 INVITE",
        false,
        &sdp(CALLER, 4000, "0", ""),
    );
    c.sip(
        300,
        false,
        "SIP/2.0 200 OK",
        "1 INVITE",
        true,
        &sdp("192.168.77.9", 5000, "0", ""),
    );
    c.tone(public, a, 0, 2, 1000.0, 300, 3300, 0);
    c.tone(a, public, 0, 1, 600.0, 320, 3300, 0);
    c.sip(
        3300,
        true,
        "BYE sip:+390255501@203.0.113.7 SIP/2.0",
        "2 BYE",
        true,
        "",
    );
    let (recs, _) = c.replay(&config());
    let (w, _) = &recs[0];
    assert!(
        has_tone(span(&w.left, 0.2, 2.9), 600.0),
        "caller's audio to the learned address"
    );
    assert!(has_tone(span(&w.right, 0.2, 2.9), 1000.0));
}

#[test]
fn unsupported_codec_is_skipped_with_the_reason() {
    let mut c = Call::new("g729@x");
    let (a, b) = (endpoint(CALLER, 4000), endpoint(CALLEE, 5000));
    c.sip(
        0,
        true,
        INVITE,
        "1 INVITE",
        false,
        &sdp(CALLER, 4000, "18 101", ""),
    );
    c.sip(
        300,
        false,
        "SIP/2.0 200 OK",
        "1 INVITE",
        true,
        &sdp(CALLEE, 5000, "18 101", ""),
    );
    c.tone(a, b, 18, 1, 600.0, 300, 2000, 0);
    c.sip(
        2000,
        true,
        "BYE sip:+390255501@203.0.113.7 SIP/2.0",
        "2 BYE",
        true,
        "",
    );
    let (recs, outcomes) = c.replay(&config());
    assert!(recs.is_empty(), "G.729 is never written as noise");
    match &outcomes[..] {
        [Outcome::Skipped { reason, .. }] => assert!(reason.contains("G729"), "{reason}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn cancelled_and_busy_calls_are_reported_unanswered() {
    let mut c = Call::new("cancel@x");
    c.sip(
        0,
        true,
        INVITE,
        "1 INVITE",
        false,
        &sdp(CALLER, 4000, "0", ""),
    );
    c.sip(50, false, "SIP/2.0 180 Ringing", "1 INVITE", true, "");
    c.sip(
        3000,
        true,
        "CANCEL sip:+390255501@203.0.113.7 SIP/2.0",
        "1 CANCEL",
        false,
        "",
    );
    c.sip(
        3010,
        false,
        "SIP/2.0 487 Request Terminated",
        "1 INVITE",
        true,
        "",
    );
    let (recs, outcomes) = c.replay(&config());
    assert!(recs.is_empty());
    match &outcomes[..] {
        [Outcome::Skipped { reason, .. }] => assert!(reason.contains("487"), "{reason}"),
        other => panic!("{other:?}"),
    }
    let mut c = Call::new("busy@x");
    c.sip(
        0,
        true,
        INVITE,
        "1 INVITE",
        false,
        &sdp(CALLER, 4000, "0", ""),
    );
    c.sip(50, false, "SIP/2.0 486 Busy Here", "1 INVITE", true, "");
    let (_, outcomes) = c.replay(&config());
    match &outcomes[..] {
        [Outcome::Skipped { reason, .. }] => assert!(reason.contains("486 Busy Here"), "{reason}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn dtmf_events_leave_silence_not_noise() {
    let mut c = Call::new("dtmf@x");
    let (a, b) = (endpoint(CALLER, 4000), endpoint(CALLEE, 5000));
    c.sip(
        0,
        true,
        INVITE,
        "1 INVITE",
        false,
        &sdp(CALLER, 4000, "0 101", ""),
    );
    c.sip(
        300,
        false,
        "SIP/2.0 200 OK",
        "1 INVITE",
        true,
        &sdp(CALLEE, 5000, "0 101", ""),
    );
    c.tone(a, b, 0, 1, 600.0, 300, 1300, 0);
    // One second of telephone-events (payload type 101) in the audio stream.
    c.tone(a, b, 101, 1, 600.0, 1300, 2300, 8000);
    c.tone(a, b, 0, 1, 600.0, 2300, 3300, 16000);
    c.sip(
        3300,
        true,
        "BYE sip:+390255501@203.0.113.7 SIP/2.0",
        "2 BYE",
        true,
        "",
    );
    let (recs, _) = c.replay(&config());
    let (w, m) = &recs[0];
    assert!(has_tone(span(&w.left, 0.1, 0.9), 600.0));
    assert!(
        silent(span(&w.left, 1.1, 1.9)),
        "events are not written as audio"
    );
    assert!(has_tone(span(&w.left, 2.1, 2.9), 600.0));
    assert!(m.notes.contains("DTMF"), "{}", m.notes);
}

#[test]
fn fragmented_invite_is_reassembled() {
    let mut c = Call::new("frag@x");
    let (a, b) = (endpoint(CALLER, 4000), endpoint(CALLEE, 5000));
    // An INVITE with a large SDP (padding attributes) split into two IPv4
    // fragments, the second captured first.
    let padding: String = (0..60)
        .map(|i| format!("a=x-pad{i}:{}\r\n", "p".repeat(20)))
        .collect();
    c.sip(
        0,
        true,
        INVITE,
        "1 INVITE",
        false,
        &sdp(CALLER, 4000, "0", &padding),
    );
    let (ts, frame) = c.frames.pop().unwrap();
    assert!(frame.len() > 2000);
    let ip = &frame[14..];
    let payload = &ip[20..];
    let cut = 1480;
    let mut first = frame[..14].to_vec();
    let mut header = ip[..20].to_vec();
    header[2..4].copy_from_slice(&((20 + cut) as u16).to_be_bytes());
    header[4..6].copy_from_slice(&0x4242u16.to_be_bytes());
    header[6..8].copy_from_slice(&0x2000u16.to_be_bytes()); // MF, offset 0
    first.extend_from_slice(&header);
    first.extend_from_slice(&payload[..cut]);
    let mut second = frame[..14].to_vec();
    header[2..4].copy_from_slice(&((20 + payload.len() - cut) as u16).to_be_bytes());
    header[6..8].copy_from_slice(&((cut / 8) as u16).to_be_bytes());
    second.extend_from_slice(&header);
    second.extend_from_slice(&payload[cut..]);
    c.frames.push((ts, second));
    c.frames.push((Timestamp(ts.0 + 1000), first));
    c.sip(
        300,
        false,
        "SIP/2.0 200 OK",
        "1 INVITE",
        true,
        &sdp(CALLEE, 5000, "0", ""),
    );
    c.tone(a, b, 0, 1, 600.0, 300, 2300, 0);
    c.sip(
        2300,
        true,
        "BYE sip:+390255501@203.0.113.7 SIP/2.0",
        "2 BYE",
        true,
        "",
    );
    let (recs, _) = c.replay(&config());
    assert_eq!(recs.len(), 1, "the reassembled INVITE started the call");
    assert!(has_tone(span(&recs[0].0.left, 0.1, 1.9), 600.0));
}

#[test]
fn answered_call_without_any_rtp_is_reported_not_recorded() {
    let mut c = Call::new("sip-only@x");
    c.sip(
        0,
        true,
        INVITE,
        "1 INVITE",
        false,
        &sdp(CALLER, 4000, "0", ""),
    );
    c.sip(
        300,
        false,
        "SIP/2.0 200 OK",
        "1 INVITE",
        true,
        &sdp(CALLEE, 5000, "0", ""),
    );
    c.sip(
        5300,
        true,
        "BYE sip:+390255501@203.0.113.7 SIP/2.0",
        "2 BYE",
        true,
        "",
    );
    let (recs, outcomes) = c.replay(&config());
    assert!(recs.is_empty(), "no silent file");
    match &outcomes[..] {
        [Outcome::Skipped { reason, .. }] => {
            assert!(reason.contains("none of its RTP"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    let mut keep = config();
    keep.recording.keep_calls_without_media = true;
    let (recs, _) = c.replay(&keep);
    assert_eq!(recs.len(), 1);
    assert!((recs[0].0.seconds() - 5.0).abs() < 0.01);
    assert!(silent(&recs[0].0.left) && silent(&recs[0].0.right));
    assert!(
        recs[0].1.notes.contains("no audio from the local party"),
        "{}",
        recs[0].1.notes
    );
}

#[test]
fn sip_over_tls_is_counted_and_reported_once_per_connection() {
    // Ethernet + IPv4 + TCP (port 5061) carrying TLS application data.
    let tcp_frame = |src_port: u16, dst_port: u16, seq: u32| {
        let tls = [23u8, 3, 3, 0, 32];
        let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00];
        let total = (20 + 20 + tls.len() + 32) as u16;
        f.extend_from_slice(&[0x45, 0]);
        f.extend_from_slice(&total.to_be_bytes());
        f.extend_from_slice(&[0, 1, 0x40, 0, 64, 6, 0, 0, 10, 1, 0, 5, 203, 0, 113, 7]);
        f.extend_from_slice(&src_port.to_be_bytes());
        f.extend_from_slice(&dst_port.to_be_bytes());
        f.extend_from_slice(&seq.to_be_bytes());
        f.extend_from_slice(&[0, 0, 0, 0, 0x50, 0x18, 0xff, 0xff, 0, 0, 0, 0]);
        f.extend_from_slice(&tls);
        f.extend_from_slice(&[0xAB; 32]);
        f
    };
    let mut recorder = Recorder::new(&config(), Memory::default());
    for (i, frame) in [
        tcp_frame(40000, 5061, 1),
        tcp_frame(40000, 5061, 70),
        tcp_frame(40001, 5061, 1),
    ]
    .iter()
    .enumerate()
    {
        recorder.handle_frame(&Frame {
            ts: at_ms(i as i64),
            link: LinkType::Ethernet,
            data: frame,
            original_len: frame.len() as u32,
        });
    }
    recorder.finish();
    let stats = recorder.stats();
    assert_eq!((stats.tls_segments, stats.tls_connections), (3, 2));
    assert_eq!(stats.sip_messages, 0);
}

/// A PBX's second leg is linked to the first by the caller number that the
/// first leg's authenticated retry asserted (P-Asserted-Identity), not the
/// one its first INVITE had: the candidates' numbers follow the retry.
#[test]
fn second_leg_links_by_the_caller_number_asserted_on_an_authenticated_retry() {
    let (phone, pbx, remote) = ("10.1.0.5", "10.1.0.1", "203.0.113.7");
    let text = |first_line: &str, from: &str, to: &str, call_id: &str, cseq: &str, extra: &str| {
        format!(
            "{first_line}\r\nVia: SIP/2.0/UDP 10.1.0.9:5060;branch=z9hG4bK{call_id}{cseq}\r\nFrom: {from}\r\nTo: {to}\r\nCall-ID: {call_id}\r\nCSeq: {cseq}\r\n{extra}Content-Length: 0\r\n\r\n"
        )
    };
    let mut c = Call::new("leg-a@x");
    let (from_a, to_a) = (
        format!("<sip:anonymous@{phone}>;tag=a1"),
        format!("<sip:2302@{pbx}>"),
    );
    let (sip_phone, sip_pbx) = (endpoint(phone, 5060), endpoint(pbx, 5060));
    let invite_a = format!("INVITE sip:2302@{pbx} SIP/2.0");
    c.udp(
        0,
        sip_phone,
        sip_pbx,
        text(&invite_a, &from_a, &to_a, "leg-a@x", "1 INVITE", "").as_bytes(),
    );
    c.udp(
        5,
        sip_pbx,
        sip_phone,
        text(
            "SIP/2.0 407 Proxy Authentication Required",
            &from_a,
            &format!("{to_a};tag=p1"),
            "leg-a@x",
            "1 INVITE",
            "",
        )
        .as_bytes(),
    );
    c.udp(
        20,
        sip_phone,
        sip_pbx,
        text(
            &invite_a,
            &from_a,
            &to_a,
            "leg-a@x",
            "2 INVITE",
            &format!("P-Asserted-Identity: <sip:1001@{phone}>\r\nProxy-Authorization: Digest username=\"1001\"\r\n"),
        )
        .as_bytes(),
    );
    // The PBX forwards the call to an outside number: caller 1001, another
    // callee number than the first leg's.
    c.udp(
        30,
        sip_pbx,
        endpoint(remote, 5060),
        text(
            &format!("INVITE sip:+390255501@{remote} SIP/2.0"),
            &format!("<sip:1001@{pbx}>;tag=b2"),
            &format!("<sip:+390255501@{remote}>"),
            "leg-b@x",
            "1 INVITE",
            "",
        )
        .as_bytes(),
    );
    let recorder = c.recorder(&config());
    assert_eq!(recorder.stats().legs_linked, 1, "the legs were not linked");
}
