//! RTP/RTCP views, and RTP payloads placed on a timeline written as WAV.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use std::io::Cursor;
use taprec::decode::rtp::{is_rtcp, RtpPacket};
use taprec::media::timeline::{Timeline, TimelineLimits};
use taprec::media::wav::WavWriter;
use taprec::media::{Channel, Law, SampleFormat};
use taprec::Timestamp;

fuzz_target!(|data: &[u8]| {
    // The whole input as one packet.
    let _ = is_rtcp(data);
    if let Ok(rtp) = RtpPacket::parse(data) {
        assert!(common::within(data, rtp.payload));
        assert!(rtp.payload.len() + 12 <= data.len());
        assert!(rtp.payload_type < 128);
    }

    // The input as a packet sequence (link byte low bit = channel, bit 1 =
    // law), placed on a small timeline.
    let format = if data.first().is_some_and(|b| b & 1 == 1) {
        SampleFormat::Pcm16
    } else {
        SampleFormat::G711(Law::Ulaw)
    };
    let limits = TimelineLimits {
        window_samples: 1600,
        reorder_delay_samples: 800,
        jump_threshold_samples: 400,
        max_samples: 8000 * 120,
    };
    let start = Timestamp(common::START_NANOS);
    let mut timeline = Timeline::new(start, format, limits);
    let Ok(mut wav) = WavWriter::new(Cursor::new(Vec::new()), format, 2) else {
        return;
    };
    let memory = timeline.memory_bytes();
    let mut last = start;
    for (ts, link, bytes) in common::frames(data) {
        last = ts;
        let tag = link as u8;
        let Ok(rtp) = RtpPacket::parse(bytes) else {
            continue;
        };
        let channel = if tag & 1 == 0 {
            Channel::Left
        } else {
            Channel::Right
        };
        let law = if tag & 2 == 0 { Law::Ulaw } else { Law::Alaw };
        timeline
            .place(
                channel,
                ts,
                rtp.ssrc,
                rtp.sequence,
                rtp.timestamp,
                law,
                rtp.payload,
                &mut wav,
            )
            .expect("writing to memory cannot fail");
        // The ring never grows.
        assert_eq!(timeline.memory_bytes(), memory);
    }
    timeline.finish(last, &mut wav).expect("memory sink");
    assert!(timeline.flushed() <= limits.max_samples);
    let out = wav.finish().expect("memory sink").into_inner();
    assert!(out.len() as u64 <= 64 + limits.max_samples * 4);
});
