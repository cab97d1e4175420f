//! Parties: the real SIPp call of `pcaps/sipp-pcmu.pcap` with its INVITE
//! given a Remote-Party-ID (the caller asserted as 01001) and a Diversion
//! header (forwarded from 5550000), replayed with `[numbers]` prefix
//! rewriting; and the plain call as an internal call (both parties local)
//! under the three `numbers.internal_calls` settings.

mod common;
mod scenario_util;

use common::{ready_recordings, run_ok};
use scenario_util::{read_pcap, repo_pcap, write_pcap};
use serde_json::Value;
use std::path::{Path, PathBuf};

fn replay(pcap: &Path, local_net: &str, config: &str) -> (Value, Vec<(PathBuf, Value)>) {
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool");
    let summary_path = dir.path().join("summary.json");
    let config_path = dir.path().join("taprec.toml");
    std::fs::write(&config_path, config).unwrap();
    run_ok(&[
        "replay",
        "--config",
        config_path.to_str().unwrap(),
        "--local-net",
        local_net,
        "--spool",
        spool.to_str().unwrap(),
        "--no-upload",
        "--summary-json",
        summary_path.to_str().unwrap(),
        pcap.to_str().unwrap(),
    ]);
    let summary: Value = serde_json::from_slice(&std::fs::read(&summary_path).unwrap()).unwrap();
    let recordings = ready_recordings(&spool);
    (summary, recordings)
}

#[test]
fn remote_party_id_diversion_and_number_rewrite() {
    let src = repo_pcap("sipp-pcmu.pcap");
    if !src.exists() {
        return;
    }
    let mut pcap = read_pcap(&src);
    for f in pcap.frames.iter_mut().filter(|f| f.is_sip()) {
        if f.payload().starts_with(b"INVITE ") {
            f.add_header("Diversion: <sip:5550000@127.0.2.20>;reason=unconditional;counter=1");
            f.add_header("Remote-Party-ID: \"Alice\" <sip:01001@127.0.1.10>;party=calling");
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("parties.pcap");
    write_pcap(&path, &pcap.header, &pcap.frames);
    let (summary, recs) = replay(
        &path,
        "127.0.1.0/24",
        "[numbers]\nrewrite = [[\"00\", \"+\"], [\"0\", \"+39\"], [\"555\", \"+1555\"]]\n",
    );
    assert_eq!(recs.len(), 1, "{summary}");
    let meta = &recs[0].1;
    assert_eq!(
        meta["localParty"]["phoneNumber"], "+391001",
        "RPID, rewritten: {meta}"
    );
    assert_eq!(meta["remoteParty"]["phoneNumber"], "+15551234", "{meta}");
    let notes = meta["notes"].as_str().unwrap();
    assert!(
        notes.contains("forwarded from 5550000 (Diversion, reason unconditional)"),
        "{notes}"
    );
}

#[test]
fn internal_calls_are_unknown_outgoing_or_skipped_as_configured() {
    let src = repo_pcap("sipp-pcmu.pcap");
    if !src.exists() {
        return;
    }
    let both = "127.0.0.0/8";
    let (_, recs) = replay(&src, both, "");
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0].1["direction"], 0, "default: direction unknown");
    let (_, recs) = replay(&src, both, "[numbers]\ninternal_calls = \"outgoing\"\n");
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0].1["direction"], 2);
    assert_eq!(recs[0].1["localParty"]["phoneNumber"], "1001");
    let (summary, recs) = replay(&src, both, "[numbers]\ninternal_calls = \"skip\"\n");
    assert!(recs.is_empty(), "{summary}");
    let skipped = summary["skipped"].as_array().unwrap();
    assert!(
        skipped[0]["reason"]
            .as_str()
            .unwrap()
            .contains("internal call"),
        "{skipped:?}"
    );
}
