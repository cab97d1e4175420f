//! Mutation test: the project's captures with seeded random corruption (bit
//! flips, truncation, duplicated, dropped and reordered packets, garbage
//! payloads, absurd lengths and counts in headers), each replayed in-process
//! through `FileReader` and `Recorder` with an in-memory store.
//!
//! Checks: no panic; every call ends exactly once; what the store holds stays
//! under a bound and the process's peak RSS stays under a bound; and when only
//! one call's packets are corrupted, every other call of the capture is
//! recorded exactly as from the clean capture.

use std::collections::{BTreeMap, HashSet};
use std::io::Cursor;
use std::path::Path;
use taprec::capture::file::FileReader;
use taprec::config::Config;
use taprec::memory_store::MemoryStore;
use taprec::recorder::{Outcome, Recorder};

/// splitmix64: small, seeded, reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

/// A classic pcap file split into its header and records.
#[derive(Clone)]
struct Pcap {
    header: Vec<u8>,
    /// (record header of 16 bytes, frame bytes)
    records: Vec<([u8; 16], Vec<u8>)>,
}

impl Pcap {
    fn parse(bytes: &[u8]) -> Pcap {
        assert_eq!(
            &bytes[..4],
            b"\xd4\xc3\xb2\xa1",
            "little-endian microsecond pcap"
        );
        let mut records = Vec::new();
        let mut off = 24;
        while off + 16 <= bytes.len() {
            let head: [u8; 16] = bytes[off..off + 16].try_into().unwrap();
            let incl = u32::from_le_bytes(head[8..12].try_into().unwrap()) as usize;
            let data = bytes[off + 16..(off + 16 + incl).min(bytes.len())].to_vec();
            records.push((head, data));
            off += 16 + incl;
        }
        Pcap {
            header: bytes[..24].to_vec(),
            records,
        }
    }

    /// Makes record `i`'s header lengths match its (changed) frame.
    fn fix_len(&mut self, i: usize) {
        let (head, data) = &mut self.records[i];
        let len = data.len() as u32;
        head[8..12].copy_from_slice(&len.to_le_bytes());
        head[12..16].copy_from_slice(&len.to_le_bytes());
    }

    fn write(&self) -> Vec<u8> {
        let mut out = self.header.clone();
        for (head, data) in &self.records {
            out.extend_from_slice(head);
            out.extend_from_slice(data);
        }
        out
    }
}

/// Ethernet + IPv4 + UDP header length of a frame, when it is one.
fn udp_offset(frame: &[u8]) -> Option<usize> {
    if frame.len() < 42 || frame[12..14] != [0x08, 0x00] || frame[23] != 17 {
        return None;
    }
    Some(14 + usize::from(frame[14] & 15) * 4 + 8)
}

/// (source, destination) IPv4 address and UDP port of a frame.
fn udp_endpoints(frame: &[u8]) -> Option<([u8; 4], u16, [u8; 4], u16)> {
    let off = udp_offset(frame)? - 8;
    let src: [u8; 4] = frame[26..30].try_into().ok()?;
    let dst: [u8; 4] = frame[30..34].try_into().ok()?;
    let sport = u16::from_be_bytes([frame[off], frame[off + 1]]);
    let dport = u16::from_be_bytes([frame[off + 2], frame[off + 3]]);
    Some((src, sport, dst, dport))
}

fn call_id_of(frame: &[u8]) -> Option<String> {
    let payload = &frame[udp_offset(frame)?..];
    let text = std::str::from_utf8(payload).ok()?;
    text.lines()
        .find_map(|l| {
            l.strip_prefix("Call-ID: ")
                .or_else(|| l.strip_prefix("i: "))
        })
        .map(|s| s.trim().to_string())
}

/// The records that belong to `call_id`: its SIP messages, and the RTP to or
/// from the media ports its SDP announces.
fn call_records(pcap: &Pcap, call_id: &str) -> Vec<usize> {
    let mut media = HashSet::new();
    let mut sip = Vec::new();
    for (i, (_, frame)) in pcap.records.iter().enumerate() {
        if call_id_of(frame).as_deref() == Some(call_id) {
            sip.push(i);
            let text = String::from_utf8_lossy(&frame[udp_offset(frame).unwrap()..]).into_owned();
            let mut addr = None;
            for line in text.lines() {
                if let Some(rest) = line.strip_prefix("c=IN IP4 ") {
                    addr = rest
                        .trim()
                        .parse::<std::net::Ipv4Addr>()
                        .ok()
                        .map(|a| a.octets());
                }
                if let Some(rest) = line.strip_prefix("m=audio ") {
                    let port = rest.split(' ').next().and_then(|p| p.parse::<u16>().ok());
                    if let (Some(a), Some(p)) = (addr, port) {
                        media.insert((a, p));
                    }
                }
            }
        }
    }
    let mut all = sip;
    for (i, (_, frame)) in pcap.records.iter().enumerate() {
        if let Some((s, sp, d, dp)) = udp_endpoints(frame) {
            if media.contains(&(s, sp)) || media.contains(&(d, dp)) {
                all.push(i);
            }
        }
    }
    all.sort_unstable();
    all
}

fn config() -> Config {
    let mut config = Config {
        local_networks: vec![
            "10.0.0.0/8".parse().unwrap(),
            "127.0.0.0/8".parse().unwrap(),
        ],
        ..Config::default()
    };
    config.recording.max_duration_secs = 600;
    config
}

struct Replay {
    outcomes: Vec<Outcome>,
    store: MemoryStore,
    calls_seen: u64,
    capture_error: bool,
}

fn replay(bytes: Vec<u8>, keep_audio: bool, via_file: Option<&Path>) -> Replay {
    let store = if keep_audio {
        MemoryStore::new()
    } else {
        MemoryStore::metadata_only()
    };
    let mut recorder = Recorder::new(&config(), store);
    let reader = match via_file {
        Some(path) => {
            std::fs::write(path, &bytes).unwrap();
            FileReader::open(path)
        }
        None => FileReader::from_reader("mutated", Cursor::new(bytes)),
    };
    let mut capture_error = false;
    let mut outcomes = Vec::new();
    match reader {
        Ok(mut reader) => loop {
            match reader.next_frame() {
                Ok(Some(frame)) => recorder.handle_frame(&frame),
                Ok(None) => break,
                Err(_) => {
                    capture_error = true;
                    break;
                }
            }
            outcomes.extend(recorder.take_outcomes());
        },
        Err(_) => capture_error = true,
    }
    recorder.finish();
    outcomes.extend(recorder.take_outcomes());
    assert_eq!(recorder.active_calls(), 0);
    let stats = recorder.stats();
    assert_eq!(
        outcomes.len() as u64,
        stats.calls_seen,
        "every call ends once"
    );
    assert_eq!(stats.recorded + stats.skipped, stats.calls_seen);
    let calls_seen = stats.calls_seen;
    let store = recorder_store(recorder);
    Replay {
        outcomes,
        store,
        calls_seen,
        capture_error,
    }
}

fn recorder_store(recorder: Recorder<MemoryStore>) -> MemoryStore {
    // The recorder hands out only a reference; rebuild an owned copy.
    let s = recorder.store();
    let mut copy = MemoryStore::new();
    copy.recordings = s.recordings.clone();
    copy
}

/// Applies one random corruption to the capture.
fn mutate(rng: &mut Rng, pcap: &mut Pcap, only: Option<&[usize]>) -> &'static str {
    let pick = |rng: &mut Rng, pcap: &Pcap| -> Option<usize> {
        match only {
            Some(set) if !set.is_empty() => Some(set[rng.below(set.len())]),
            Some(_) => None,
            None if pcap.records.is_empty() => None,
            None => Some(rng.below(pcap.records.len())),
        }
    };
    // Targeted mutations keep the link/IP/UDP headers (and so the addresses)
    // intact: they corrupt what the call's packets say, not where they go.
    let floor = |frame: &[u8]| -> usize {
        if only.is_some() {
            udp_offset(frame).unwrap_or(frame.len())
        } else {
            0
        }
    };
    let kinds = if only.is_some() { 6 } else { 10 };
    let Some(i) = pick(rng, pcap) else {
        return "none";
    };
    match rng.below(kinds) {
        0 => {
            // bit flips in a few packets
            for _ in 0..1 + rng.below(8) {
                let Some(i) = pick(rng, pcap) else { break };
                let frame = &mut pcap.records[i].1;
                let lo = floor(frame);
                if frame.len() > lo {
                    let at = lo + rng.below(frame.len() - lo);
                    frame[at] ^= 1 << rng.below(8);
                }
            }
            "bit flips"
        }
        1 => {
            // garbage payload
            let frame = &mut pcap.records[i].1;
            let lo = floor(frame).min(frame.len());
            for b in &mut frame[lo..] {
                *b = rng.next() as u8;
            }
            "garbage payload"
        }
        2 => {
            // duplicate packets
            // (highest index first, so the chosen indices stay valid)
            let mut at: Vec<usize> = (0..1 + rng.below(20))
                .filter_map(|_| pick(rng, pcap))
                .collect();
            at.sort_unstable();
            for &i in at.iter().rev() {
                let copy = pcap.records[i].clone();
                pcap.records.insert(i + 1, copy);
            }
            "duplicates"
        }
        3 => {
            // reorder: swap payloads of a packet with its neighbour of the
            // same call (timestamps stay increasing)
            if let Some(set) = only {
                let k = rng.below(set.len().saturating_sub(1));
                if let (Some(&a), Some(&b)) = (set.get(k), set.get(k + 1)) {
                    let (x, y) = (pcap.records[a].1.clone(), pcap.records[b].1.clone());
                    pcap.records[a].1 = y;
                    pcap.records[b].1 = x;
                    pcap.fix_len(a);
                    pcap.fix_len(b);
                }
            } else {
                let j = (i + 1 + rng.below(50)).min(pcap.records.len() - 1);
                pcap.records.swap(i, j);
            }
            "reorder"
        }
        4 => {
            // absurd lengths and counts in SIP text
            let frame = &mut pcap.records[i].1;
            let lo = floor(frame).min(frame.len());
            let text = String::from_utf8_lossy(&frame[lo..]).into_owned();
            let absurd = ["4294967296", "99999999999999999999", "-1", "65536", "0"];
            let value = absurd[rng.below(absurd.len())];
            let mut out = String::new();
            for line in text.split_inclusive("\r\n") {
                if line.starts_with("Content-Length")
                    || line.starts_with("CSeq")
                    || line.starts_with("Max-Forwards")
                {
                    out.push_str(&format!(
                        "{}: {value}\r\n",
                        line.split(':').next().unwrap_or("")
                    ));
                } else if line.starts_with("m=audio") {
                    out.push_str(&format!("m=audio {value} RTP/AVP 0 8 101 {value}\r\n"));
                } else {
                    out.push_str(line);
                }
            }
            if rng.chance(30) {
                // many header fields
                let extra = "Via: SIP/2.0/UDP x\r\n".repeat(200 + rng.below(2000));
                out = out.replacen("\r\n", &format!("\r\n{extra}"), 1);
            }
            frame.truncate(lo);
            frame.extend_from_slice(out.as_bytes());
            pcap.fix_len(i);
            "absurd SIP lengths"
        }
        5 => {
            // drop packets
            let mut gone: Vec<usize> = (0..1 + rng.below(10))
                .filter_map(|_| pick(rng, pcap))
                .collect();
            gone.sort_unstable();
            gone.dedup();
            for &g in gone.iter().rev() {
                if only.is_some() {
                    // keep indices valid: blank the packet instead
                    let lo = floor(&pcap.records[g].1);
                    pcap.records[g].1.truncate(lo);
                    pcap.fix_len(g);
                } else {
                    pcap.records.remove(g);
                }
            }
            "dropped packets"
        }
        6 => {
            // truncate the file (in the last step)
            "truncate"
        }
        7 => {
            // absurd IP/UDP lengths, IHL, fragment offsets
            let frame = &mut pcap.records[i].1;
            if frame.len() >= 42 {
                match rng.below(4) {
                    0 => frame[16..18].copy_from_slice(&(rng.next() as u16).to_be_bytes()),
                    1 => frame[14] = 0x40 | (rng.next() as u8 & 15),
                    2 => frame[20..22].copy_from_slice(&(rng.next() as u16 | 0x2000).to_be_bytes()),
                    _ => frame[38..40].copy_from_slice(&(rng.next() as u16).to_be_bytes()),
                }
            }
            "absurd IP/UDP fields"
        }
        8 => {
            // absurd record lengths in the pcap record header
            let head = &mut pcap.records[i].0;
            let v = [0u32, 0xFFFF_FFFF, 0x7FFF_FFFF, 1 << 24, rng.next() as u32][rng.below(5)];
            let at = if rng.chance(50) { 8 } else { 12 };
            head[at..at + 4].copy_from_slice(&v.to_le_bytes());
            "absurd record length"
        }
        _ => {
            // timestamps: jumps back and far forward
            let head = &mut pcap.records[i].0;
            let secs = u32::from_le_bytes(head[0..4].try_into().unwrap());
            let v = [
                0,
                secs.wrapping_sub(3600),
                secs.wrapping_add(86_400 * 365),
                u32::MAX,
            ][rng.below(4)];
            head[0..4].copy_from_slice(&v.to_le_bytes());
            "timestamp jump"
        }
    }
}

fn vm_hwm_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn captures() -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("pcaps");
    let mut out: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "pcap"))
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    out.sort();
    assert!(out.len() >= 4, "project captures present");
    out
}

/// How many corrupted captures each test replays: the full count in
/// release builds (what CI runs), fewer in debug builds.
fn rounds(release: usize) -> usize {
    if cfg!(debug_assertions) {
        release / 10
    } else {
        release
    }
}

#[test]
fn corrupted_captures_never_panic_and_stay_bounded() {
    let captures = captures();
    let tmp = tempfile::tempdir().unwrap();
    let mut rng = Rng(0x7461_7072_6563_0001);
    let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
    let (mut errors, mut recorded) = (0, 0);
    let n = rounds(3000);
    let started = std::time::Instant::now();
    for round in 0..n {
        let (name, bytes) = &captures[round % captures.len()];
        let mut pcap = Pcap::parse(bytes);
        let mut truncate = false;
        for _ in 0..1 + rng.below(4) {
            let kind = mutate(&mut rng, &mut pcap, None);
            truncate |= kind == "truncate";
            *kinds.entry(kind).or_default() += 1;
        }
        let mut out = pcap.write();
        if truncate {
            out.truncate(rng.below(out.len() + 1));
        }
        if rng.chance(3) {
            // the file header itself
            let at = rng.below(24.min(out.len()).max(1));
            if let Some(b) = out.get_mut(at) {
                *b ^= 1 << rng.below(8);
            }
        }
        let via_file = (round % 50 == 0).then(|| tmp.path().join("mutated.pcap"));
        let r = replay(out, false, via_file.as_deref());
        errors += usize::from(r.capture_error);
        recorded += r.store.recordings.len();
        // Bounded output: no recording beyond the maximum duration.
        let max_wav = 64 + 2 * 8000 * (config().recording.max_duration_secs + 2);
        for rec in &r.store.recordings {
            assert!(
                rec.wav_len <= max_wav,
                "{name} round {round}: {} bytes",
                rec.wav_len
            );
        }
        assert!(r.calls_seen <= 1000, "{name} round {round}");
    }
    let hwm = vm_hwm_kib();
    eprintln!(
        "mutation: {n} corrupted captures in {:.1} s, {errors} with capture errors, {recorded} recordings, peak RSS {} MiB; corruptions {kinds:?}",
        started.elapsed().as_secs_f64(),
        hwm / 1024
    );
    assert!(hwm < 1024 * 1024, "peak RSS {hwm} KiB");
}

#[test]
fn clean_calls_survive_one_corrupted_call() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("pcaps/sipp-pcmu-20calls.pcap");
    let bytes = std::fs::read(path).unwrap();
    let clean = Pcap::parse(&bytes);
    let baseline = replay(bytes.clone(), true, None);
    let wavs: BTreeMap<String, Vec<u8>> = baseline
        .outcomes
        .iter()
        .filter_map(|o| match o {
            Outcome::Recorded { call_id, id, .. } => {
                let rec = baseline.store.recordings.iter().find(|r| &r.id == id)?;
                Some((call_id.clone(), rec.wav.clone()))
            }
            Outcome::Skipped { .. } => None,
        })
        .collect();
    assert_eq!(wavs.len(), 20, "baseline records all 20 calls");
    let call_ids: Vec<String> = wavs.keys().cloned().collect();
    let mut rng = Rng(0x7461_7072_6563_0002);
    let n = rounds(300);
    for round in 0..n {
        let victim = &call_ids[rng.below(call_ids.len())];
        let mut pcap = clean.clone();
        let set = call_records(&pcap, victim);
        assert!(set.len() > 10, "{victim}: {} packets", set.len());
        let mut applied = Vec::new();
        for _ in 0..1 + rng.below(4) {
            let set = call_records(&pcap, victim);
            let chosen: Vec<usize> = set.iter().copied().filter(|_| rng.chance(60)).collect();
            let chosen = if chosen.is_empty() { set } else { chosen };
            applied.push(mutate(&mut rng, &mut pcap, Some(&chosen)));
        }
        let r = replay(pcap.write(), true, None);
        for (call_id, wav) in &wavs {
            if call_id == victim {
                continue;
            }
            let got = r.outcomes.iter().find_map(|o| match o {
                Outcome::Recorded { call_id: c, id, .. } if c == call_id => {
                    r.store.recordings.iter().find(|rec| &rec.id == id)
                }
                _ => None,
            });
            let got = got.unwrap_or_else(|| {
                panic!("round {round} ({applied:?} on {victim}): {call_id} not recorded")
            });
            let first_diff = got.wav.iter().zip(wav.iter()).position(|(a, b)| a != b);
            assert!(
                &got.wav == wav,
                "round {round} ({applied:?} on {victim}): {call_id} audio differs: {} vs {} bytes, first difference at {first_diff:?}; {:?}",
                got.wav.len(),
                wav.len(),
                got.metadata.notes
            );
        }
    }
}
