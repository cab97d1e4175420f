//! Clear errors for bad input, end to end through the binary: configs with
//! an unknown key, a wrong type, an invalid CIDR or URL, an unusable spool;
//! truncated and unreadable capture files; a full spool.

mod common;

use std::path::Path;

fn replay_with_config(dir: &Path, toml: &str, pcap: &str) -> (bool, String, String) {
    let config = dir.join("taprec.toml");
    std::fs::write(&config, toml).unwrap();
    let out = common::run(&[
        "replay",
        "--no-upload",
        "-c",
        config.to_str().unwrap(),
        pcap,
    ]);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn pcap(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("pcaps")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

#[test]
fn bad_configs_name_the_key_and_the_value() {
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool");
    let spool = spool.to_str().unwrap();
    let cases: &[(&str, &[&str])] = &[
        ("[recording]\nformt = \"pcm16\"\n", &["formt"]),
        ("[limits]\nmax_calls = \"many\"\n", &["max_calls", "many"]),
        (
            "local_networks = [\"10.0.0.0/33\"]\n",
            &["local_networks", "10.0.0.0/33"],
        ),
        (
            "[upload]\nurl = \"ftp://example.invalid/x\"\n",
            &["upload.url", "ftp://example.invalid/x"],
        ),
        (
            "[limits]\nmax_sip_headers = 0\n",
            &["limits.max_sip_headers", "0"],
        ),
        (
            "[limits]\nmax_sdp_media_lines = 0\n",
            &["limits.max_sdp_media_lines", "0"],
        ),
        (
            "[limits]\nmax_sdp_media_lines = 5000\n",
            &["limits.max_sdp_media_lines", "5000"],
        ),
        (
            "[recording]\nrtp_timeout_secs = -5\n",
            &["rtp_timeout_secs", "-5"],
        ),
    ];
    for (body, wanted) in cases {
        let toml = format!("[spool]\ndir = \"{spool}\"\n{body}");
        let (ok, _, stderr) = replay_with_config(dir.path(), &toml, &pcap("sipp-pcmu.pcap"));
        assert!(!ok, "{body}: accepted");
        for w in *wanted {
            assert!(
                stderr.contains(w),
                "{body}: stderr does not name {w:?}: {stderr}"
            );
        }
    }
    // A spool directory that cannot be created (under a regular file).
    let file = dir.path().join("plain-file");
    std::fs::write(&file, b"x").unwrap();
    let bad_spool = file.join("spool");
    let toml = format!("[spool]\ndir = \"{}\"\n", bad_spool.display());
    let (ok, _, stderr) = replay_with_config(dir.path(), &toml, &pcap("sipp-pcmu.pcap"));
    assert!(!ok);
    assert!(stderr.contains("spool.dir"), "{stderr}");
    assert!(
        stderr.contains(&bad_spool.display().to_string()),
        "{stderr}"
    );
}

#[test]
fn truncated_capture_is_processed_up_to_where_it_stops() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(pcap("sipp-pcmu-20calls.pcap")).unwrap();
    let cut = dir.path().join("cut.pcap");
    std::fs::write(&cut, &bytes[..bytes.len() * 2 / 3 + 7]).unwrap();
    let toml = format!(
        "[spool]\ndir = \"{}\"\n",
        dir.path().join("spool").display()
    );
    let (_, stdout, _) = replay_with_config(dir.path(), &toml, cut.to_str().unwrap());
    assert!(stdout.contains("capture error"), "{stdout}");
    assert!(
        stdout.contains("at byte"),
        "says where it stopped: {stdout}"
    );
    let recorded = common::ready_recordings(&dir.path().join("spool"));
    assert!(
        !recorded.is_empty(),
        "what was readable was recorded: {stdout}"
    );
    // Not a capture at all, and a missing file.
    let junk = dir.path().join("junk.pcap");
    std::fs::write(&junk, b"this is not a capture file").unwrap();
    let (ok, _, stderr) = replay_with_config(dir.path(), &toml, junk.to_str().unwrap());
    assert!(!ok);
    assert!(
        stderr.contains("junk.pcap") && stderr.contains("not a pcap"),
        "{stderr}"
    );
    let missing = dir.path().join("missing.pcap");
    let (ok, _, stderr) = replay_with_config(dir.path(), &toml, missing.to_str().unwrap());
    assert!(!ok);
    assert!(stderr.contains("missing.pcap"), "{stderr}");
}

#[test]
fn full_spool_stops_new_recordings_and_keeps_the_queued_ones() {
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool");
    // Three captures one after another: the first call fills the spool.
    let toml = format!("[spool]\ndir = \"{}\"\nmax_bytes = 1000\n", spool.display());
    let config = dir.path().join("taprec.toml");
    std::fs::write(&config, toml).unwrap();
    let out = common::run(&[
        "replay",
        "--no-upload",
        "-c",
        config.to_str().unwrap(),
        &pcap("sipp-pcmu.pcap"),
        &pcap("sipp-pcma.pcap"),
        &pcap("demo.pcap"),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "lost recordings make replay fail: {stdout}"
    );
    assert!(
        stdout.contains("spool quota (spool.max_bytes) was reached: 3"),
        "reported: {stdout}"
    );
    assert!(stderr.contains("SPOOL FULL"), "logged: {stderr}");
    let kept = common::ready_recordings(&spool);
    assert_eq!(
        kept.len(),
        1,
        "the recording made before the spool filled is kept: {stdout}"
    );
    for (wav, _) in &kept {
        let stereo = common::read_wav(wav);
        assert!(
            stereo.seconds() > 1.0,
            "{} is a whole recording",
            wav.display()
        );
    }
}

/// Runs one INVITE whose SDP has `m_lines` audio sections through a
/// `Recorder` with `max_sdp_media_lines` and returns the dropped count.
fn sdp_media_dropped(m_lines: u16, max_sdp_media_lines: Option<usize>) -> u64 {
    use taprec::capture::{Frame, LinkType};
    use taprec::synth::wire::{build_udp_frame, Endpoint, IpFields};

    let mut config = taprec::config::Config::default();
    if let Some(max) = max_sdp_media_lines {
        config.limits.max_sdp_media_lines = max;
    }
    config.validate().unwrap();
    let mut sdp =
        String::from("v=0\r\no=- 1 1 IN IP4 10.1.0.5\r\ns=-\r\nc=IN IP4 10.1.0.5\r\nt=0 0\r\n");
    for i in 0..m_lines {
        sdp.push_str(&format!(
            "m=audio {} RTP/AVP 0\r\na=sendrecv\r\n",
            4000 + 2 * i
        ));
    }
    let invite = format!(
        "INVITE sip:2002@10.1.0.6 SIP/2.0\r\nVia: SIP/2.0/UDP 10.1.0.5:5060;branch=z9hG4bK1\r\n\
From: <sip:1001@10.1.0.5>;tag=a\r\nTo: <sip:2002@10.1.0.6>\r\nCall-ID: sdp-cap@x\r\n\
CSeq: 1 INVITE\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    );
    let end = |ip: &str| Endpoint {
        mac: [2, 0, 0, 0, 0, 1],
        ip: ip.parse().unwrap(),
        port: 5060,
    };
    let mut buf = Vec::new();
    assert!(build_udp_frame(
        &mut buf,
        &[],
        &end("10.1.0.5"),
        &end("10.1.0.6"),
        IpFields { id: 1, ttl: 64 },
        |b| b.extend_from_slice(invite.as_bytes()),
    ));
    let mut recorder =
        taprec::recorder::Recorder::new(&config, taprec::memory_store::MemoryStore::new());
    recorder.handle_frame(&Frame {
        ts: taprec::Timestamp(1_767_225_600_000_000_000),
        link: LinkType::Ethernet,
        data: &buf,
        original_len: buf.len() as u32,
    });
    let stats = recorder.stats();
    assert_eq!(stats.calls_seen, 1, "the INVITE was not taken as a call");
    stats.sdp_media_dropped
}

#[test]
fn sdp_media_lines_over_the_limit_are_dropped_and_counted() {
    // Default (16): the 17th m= line is dropped and counted.
    assert_eq!(sdp_media_dropped(16, None), 0);
    assert_eq!(sdp_media_dropped(17, None), 1);
    // limits.max_sdp_media_lines = 2: the third is dropped.
    assert_eq!(sdp_media_dropped(2, Some(2)), 0);
    assert_eq!(sdp_media_dropped(3, Some(2)), 1);
}
