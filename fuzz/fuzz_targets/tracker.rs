//! The whole recorder: arbitrary frame sequences with increasing capture
//! times through decode, SIP dialogs, the media index, timelines and WAV
//! output into an in-memory store, frame by frame or in batches.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use taprec::capture::batch::FrameBatch;
use taprec::config::Config;
use taprec::memory_store::MemoryStore;
use taprec::recorder::Recorder;

fuzz_target!(|data: &[u8]| {
    let mut config = Config::default();
    config.local_networks = vec![
        "10.0.0.0/8".parse().unwrap(),
        "192.168.0.0/16".parse().unwrap(),
    ];
    // Small limits, so that fuzzing reaches them; short timers.
    config.limits.max_calls = 8;
    config.limits.max_fragmented_datagrams = 4;
    config.limits.fragment_timeout_secs = 2;
    config.recording.rtp_timeout_secs = 5;
    config.recording.unanswered_timeout_secs = 4;
    config.recording.max_duration_secs = 60;
    let mut recorder = Recorder::new(&config, MemoryStore::metadata_only());
    let mut outcomes = 0usize;
    let mut frames = 0u64;
    // Half the inputs go through the batch path (with its look-ahead
    // prefetch) in batches of 1 to 32 frames, the rest frame by frame.
    let batched = data.first().is_some_and(|b| b & 0x80 != 0);
    let batch_len = data.get(1).map_or(1, |b| usize::from(b % 32) + 1);
    let mut batch = FrameBatch::with_capacity(batch_len, 4096);
    for (ts, link, bytes) in common::frames(data) {
        frames += 1;
        let frame = taprec::capture::Frame {
            ts,
            link,
            data: bytes,
            original_len: bytes.len() as u32,
        };
        if batched {
            batch.push(&frame);
            if batch.len() >= batch_len {
                recorder.handle_batch(&batch);
                batch.clear();
            }
        } else {
            recorder.handle_frame(&frame);
        }
        assert!(recorder.active_calls() <= config.limits.max_calls);
        outcomes += recorder.take_outcomes().len();
    }
    recorder.handle_batch(&batch);
    outcomes += recorder.take_outcomes().len();
    recorder.finish();
    assert_eq!(recorder.active_calls(), 0);
    let finished = recorder.take_outcomes();
    outcomes += finished.len();
    let stats = recorder.stats();
    assert_eq!(stats.decode.frames, frames);
    // Every call seen ends exactly once, recorded or skipped.
    assert_eq!(outcomes as u64, stats.calls_seen);
    assert_eq!(stats.recorded + stats.skipped, stats.calls_seen);
    let store = recorder.store();
    assert_eq!(store.recordings.len() as u64, stats.recorded);
    // A recording is at most max_duration of stereo G.711 plus its header.
    for rec in &store.recordings {
        assert!(rec.wav_len <= 64 + 2 * 8000 * (config.recording.max_duration_secs + 2));
    }
});
