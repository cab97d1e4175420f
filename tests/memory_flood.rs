//! Memory flatness under floods, measured on the real binary: 100,000
//! INVITEs that are never answered, and RTP to 100,000 unknown addresses.
//! `taprec replay` runs on generated captures while the test samples the
//! child's peak RSS (VmHWM in /proc/<pid>/status); it must stay under a bound,
//! and 2.5x more traffic must not cost much more memory.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

/// Peak RSS allowed for any run, KiB.
const BOUND_KIB: u64 = 200 * 1024;

/// A classic pcap writer of Ethernet/IPv4/UDP frames (checksums zero).
struct Pcap(std::io::BufWriter<std::fs::File>);

impl Pcap {
    fn create(path: &Path) -> Pcap {
        let mut w = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
        let mut head = 0xa1b2_c3d4u32.to_le_bytes().to_vec();
        head.extend_from_slice(&2u16.to_le_bytes());
        head.extend_from_slice(&4u16.to_le_bytes());
        head.extend_from_slice(&[0; 8]);
        head.extend_from_slice(&65_535u32.to_le_bytes());
        head.extend_from_slice(&1u32.to_le_bytes());
        w.write_all(&head).unwrap();
        Pcap(w)
    }

    fn udp(&mut self, micros: u64, src: ([u8; 4], u16), dst: ([u8; 4], u16), payload: &[u8]) {
        let mut f = Vec::with_capacity(42 + payload.len());
        f.extend_from_slice(&[2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 8, 0]);
        let total = (28 + payload.len()) as u16;
        f.extend_from_slice(&[0x45, 0]);
        f.extend_from_slice(&total.to_be_bytes());
        f.extend_from_slice(&[0, 0, 0x40, 0, 64, 17, 0, 0]);
        f.extend_from_slice(&src.0);
        f.extend_from_slice(&dst.0);
        f.extend_from_slice(&src.1.to_be_bytes());
        f.extend_from_slice(&dst.1.to_be_bytes());
        f.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
        f.extend_from_slice(&[0, 0]);
        f.extend_from_slice(payload);
        let secs = 1_700_000_000 + micros / 1_000_000;
        self.0.write_all(&(secs as u32).to_le_bytes()).unwrap();
        self.0
            .write_all(&((micros % 1_000_000) as u32).to_le_bytes())
            .unwrap();
        self.0.write_all(&(f.len() as u32).to_le_bytes()).unwrap();
        self.0.write_all(&(f.len() as u32).to_le_bytes()).unwrap();
        self.0.write_all(&f).unwrap();
    }
}

fn addr(i: u32) -> [u8; 4] {
    let [_, b, c, d] = i.to_be_bytes();
    [10, b, c, d.max(1)]
}

/// `n` INVITEs with SDP, one per millisecond, each from its own address
/// and Call-ID, never answered.
fn invite_flood(path: &Path, n: u32) {
    let mut pcap = Pcap::create(path);
    for i in 0..n {
        let src = addr(i + 1);
        let ip = format!("{}.{}.{}.{}", src[0], src[1], src[2], src[3]);
        let sdp = format!(
            "v=0\r\no=- {i} 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\nm=audio {} RTP/AVP 0 8\r\na=rtpmap:0 PCMU/8000\r\n",
            10_000 + (i % 50_000) * 2
        );
        let msg = format!(
            "INVITE sip:2000@192.0.2.1 SIP/2.0\r\nVia: SIP/2.0/UDP {ip}:5060;branch=z9hG4bK{i}\r\nFrom: <sip:{i}@{ip}>;tag={i}\r\nTo: <sip:2000@192.0.2.1>\r\nCall-ID: flood-{i}@{ip}\r\nCSeq: 1 INVITE\r\nContact: <sip:{i}@{ip}:5060>\r\nMax-Forwards: 70\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
            sdp.len()
        );
        pcap.udp(
            u64::from(i) * 1000,
            (src, 5060),
            ([192, 0, 2, 1], 5060),
            msg.as_bytes(),
        );
    }
    pcap.0.flush().unwrap();
}

/// `n` RTP packets (160-byte PCMU), each to its own address and port that
/// no call announced.
fn rtp_flood(path: &Path, n: u32) {
    let mut pcap = Pcap::create(path);
    let mut rtp = vec![0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    rtp.extend_from_slice(&[0xff; 160]);
    for i in 0..n {
        rtp[2..4].copy_from_slice(&(i as u16).to_be_bytes());
        rtp[4..8].copy_from_slice(&(i * 160).to_be_bytes());
        let dst = (addr(i + 1), 1024 + (i % 60_000) as u16);
        pcap.udp(u64::from(i) * 200, ([192, 0, 2, 9], 40_000), dst, &rtp);
    }
    pcap.0.flush().unwrap();
}

/// Runs `taprec replay` on `pcap` and returns its peak RSS in KiB.
fn replay_peak_rss(pcap: &Path, spool: &Path) -> u64 {
    let mut child = common::taprec()
        .args([
            "replay",
            "--no-upload",
            "--local-net",
            "192.0.2.0/24",
            "--spool",
        ])
        .arg(spool)
        .arg(pcap)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(spool.with_extension("stderr")).unwrap())
        .env("RUST_LOG", "warn")
        .spawn()
        .unwrap();
    let status_path = format!("/proc/{}/status", child.id());
    let mut peak = 0;
    loop {
        if let Ok(status) = std::fs::read_to_string(&status_path) {
            if let Some(kib) = status
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            {
                peak = peak.max(kib);
            }
        }
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let status = child.wait().unwrap();
    let stderr = std::fs::read_to_string(spool.with_extension("stderr")).unwrap_or_default();
    assert!(status.success(), "{stderr}");
    assert!(peak > 0, "no RSS sample");
    peak
}

fn check_flat(what: &str, make: fn(&Path, u32)) {
    let dir = tempfile::tempdir().unwrap();
    let mut peaks = Vec::new();
    for n in [40_000u32, 100_000] {
        let pcap = dir.path().join(format!("{what}-{n}.pcap"));
        make(&pcap, n);
        let spool = dir.path().join(format!("spool-{n}"));
        let peak = replay_peak_rss(&pcap, &spool);
        eprintln!(
            "{what}: {n} packets ({} bytes of capture): peak RSS {:.1} MiB",
            std::fs::metadata(&pcap).unwrap().len(),
            peak as f64 / 1024.0
        );
        assert!(peak < BOUND_KIB, "{what} x{n}: peak RSS {peak} KiB");
        // No recordings come out of a flood.
        let ready = spool.join("ready");
        let count = std::fs::read_dir(&ready).map_or(0, |d| d.count());
        assert_eq!(count, 0, "{what}: recordings in {}", ready.display());
        peaks.push(peak);
    }
    // 2.5x the traffic, the same steady state (unanswered INVITEs expire
    // after 32 s; one arrives per ms): at most 32 MiB more. The summary's
    // per-call outcome lines are all that grows (~15 MiB for 60,000 more);
    // the rest is the allocator: mimalloc's arenas sit on 2 MiB huge pages,
    // so the same run's peak varies by about 10 MiB from one run to the next.
    // Keeping each call's state (~3 KiB) would add over 170 MiB.
    assert!(
        peaks[1] < peaks[0] + 32 * 1024,
        "{what}: peak RSS grew from {} to {} KiB",
        peaks[0],
        peaks[1]
    );
}

#[test]
fn unanswered_invite_flood_keeps_memory_flat() {
    check_flat("unanswered INVITEs", invite_flood);
}

#[test]
fn rtp_to_unknown_ports_keeps_memory_flat() {
    check_flat("RTP to unknown ports", rtp_flood);
}
