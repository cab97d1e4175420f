//! Transfers: the real SIPp call of `pcaps/sipp-pcmu.pcap` (1001 at
//! 127.0.1.10, local, calls 5551234 at 127.0.2.20) with, added into it:
//! at 2.5 s a re-INVITE from the callee's side carrying a new
//! P-Asserted-Identity (5559999: the PBX connected the caller to someone
//! else, same media) answered 200, and at 3.0 s an attended REFER from the
//! caller (Refer-To 5557777 with Replaces) answered 202. One recording of
//! the whole conversation; its remote number is who was talked to last as
//! the signalling shows; both changes are in the notes.

mod common;
mod scenario_util;

use common::{read_wav, ready_recordings, run_ok, tone_ratio};
use scenario_util::{read_pcap, repo_pcap, sdp_of, sip_frame, sip_like, tag_of, write_pcap};
use serde_json::Value;

const CALL_ID: &str = "1-13069@127.0.1.10";

#[test]
fn reinvite_identity_and_refer_keep_one_recording_with_the_new_remote() {
    let src = repo_pcap("sipp-pcmu.pcap");
    if !src.exists() {
        return;
    }
    let pcap = read_pcap(&src);
    let invite = sip_frame(&pcap.frames, "INVITE sip:");
    let ok = sip_frame(&pcap.frames, "SIP/2.0 200 OK");
    let (caller_tag, callee_tag) = (tag_of(invite, "From:"), tag_of(ok, "To:"));
    let t0 = invite.us;
    let mut frames = pcap.frames.clone();
    let reinvite = format!(
        "INVITE sip:1001@127.0.1.10:5061 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.2.20:5060;branch=z9hG4bK-t1\r\nFrom: <sip:5551234@127.0.2.20>;tag={callee_tag}\r\nTo: \"Alice Caller\" <sip:1001@127.0.1.10>;tag={caller_tag}\r\nCall-ID: {CALL_ID}\r\nCSeq: 2 INVITE\r\nP-Asserted-Identity: \"Carol\" <sip:5559999@127.0.2.20>\r\n"
    );
    frames.push(sip_like(ok, t0 + 2_500_000, &reinvite, &sdp_of(ok)));
    let answer = format!(
        "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.2.20:5060;branch=z9hG4bK-t1\r\nFrom: <sip:5551234@127.0.2.20>;tag={callee_tag}\r\nTo: \"Alice Caller\" <sip:1001@127.0.1.10>;tag={caller_tag}\r\nCall-ID: {CALL_ID}\r\nCSeq: 2 INVITE\r\n"
    );
    frames.push(sip_like(invite, t0 + 2_501_000, &answer, &sdp_of(invite)));
    let refer = format!(
        "REFER sip:5551234@127.0.2.20:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.1.10:5061;branch=z9hG4bK-t2\r\nFrom: \"Alice Caller\" <sip:1001@127.0.1.10>;tag={caller_tag}\r\nTo: <sip:5551234@127.0.2.20>;tag={callee_tag}\r\nCall-ID: {CALL_ID}\r\nCSeq: 3 REFER\r\nRefer-To: <sip:5557777@127.0.2.20?Replaces=other%40host%3Bto-tag%3Da%3Bfrom-tag%3Db>\r\n"
    );
    frames.push(sip_like(invite, t0 + 3_000_000, &refer, ""));
    let accepted = format!(
        "SIP/2.0 202 Accepted\r\nVia: SIP/2.0/UDP 127.0.1.10:5061;branch=z9hG4bK-t2\r\nFrom: \"Alice Caller\" <sip:1001@127.0.1.10>;tag={caller_tag}\r\nTo: <sip:5551234@127.0.2.20>;tag={callee_tag}\r\nCall-ID: {CALL_ID}\r\nCSeq: 3 REFER\r\n"
    );
    frames.push(sip_like(ok, t0 + 3_001_000, &accepted, ""));

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("transfer.pcap");
    write_pcap(&path, &pcap.header, &frames);
    let spool = dir.path().join("spool");
    let summary_path = dir.path().join("summary.json");
    run_ok(&[
        "replay",
        "--local-net",
        "127.0.1.0/24",
        "--spool",
        spool.to_str().unwrap(),
        "--no-upload",
        "--summary-json",
        summary_path.to_str().unwrap(),
        path.to_str().unwrap(),
    ]);
    let summary: Value = serde_json::from_slice(&std::fs::read(&summary_path).unwrap()).unwrap();
    let recordings = ready_recordings(&spool);
    assert_eq!(recordings.len(), 1, "{summary}");
    let (wav, meta) = &recordings[0];
    assert_eq!(meta["pbxCallId"], CALL_ID);
    assert_eq!(meta["direction"], 2);
    assert_eq!(meta["localParty"]["phoneNumber"], "1001");
    assert_eq!(
        meta["remoteParty"]["phoneNumber"], "5559999",
        "the party talked to after the re-INVITE: {meta}"
    );
    let notes = meta["notes"].as_str().unwrap();
    assert!(
        notes.contains("callee changed from 5551234 to 5559999"),
        "{notes}"
    );
    assert!(
        notes.contains("caller transferred the call (attended REFER to 5557777, accepted)"),
        "{notes}"
    );
    // Still one conversation, audio unchanged on both sides of the changes.
    let w = read_wav(wav);
    assert!((w.seconds() - 5.0).abs() < 0.1);
    for (a, b) in [(8000, 16000), (28000, 36000)] {
        assert!(tone_ratio(&w.left[a..b], 500.0) > 0.9);
        assert!(tone_ratio(&w.right[a..b], 1200.0) > 0.9);
    }
}
