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
