//! Link, IP, fragment reassembly and UDP/TCP decode over a sequence of
//! frames, and the recorder's read-only UDP peek on each.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use taprec::decode::{Decoded, Decoder, FragmentLimits};

fuzz_target!(|data: &[u8]| {
    // Small limits, so that fuzzing reaches them.
    let limits = FragmentLimits {
        max_datagrams: 8,
        max_datagram_bytes: 65_535,
        max_total_bytes: 64 << 10,
        timeout_nanos: 2_000_000_000,
    };
    let mut decoder = Decoder::new(limits);
    let mut count = 0u64;
    for (ts, link, bytes) in common::frames(data) {
        count += 1;
        let before = decoder.stats().reassembled;
        // The recorder's look-ahead peek: where it accepts a frame, the
        // recorder handles the frame from it instead of decoding, so it must
        // be exactly what the decoder yields.
        let peeked = taprec::decode::peek_udp(link, bytes);
        let seen = match decoder.decode(ts, link, bytes) {
            Ok(Decoded::Datagram(d)) => {
                if let Some(p) = peeked {
                    assert_eq!((p.transport, p.src, p.dst), (d.transport, d.src, d.dst));
                    assert!(std::ptr::eq(p.payload.as_ptr(), d.payload.as_ptr()));
                    assert_eq!(p.payload.len(), d.payload.len());
                }
                assert!(d.payload.len() <= limits.max_datagram_bytes.max(bytes.len()));
                Some((common::within(bytes, d.payload), d.payload.len()))
            }
            _ => {
                assert!(peeked.is_none(), "peek accepted a frame the decoder did not yield");
                None
            }
        };
        if let Some((in_frame, len)) = seen {
            if decoder.stats().reassembled == before {
                // Unfragmented payloads are views into the frame, after at
                // least a UDP header.
                assert!(in_frame);
                assert!(len + 8 <= bytes.len());
            }
        }
        let r = decoder.reassembler();
        assert!(r.held_bytes() <= limits.max_total_bytes);
        assert!(r.in_progress() <= limits.max_datagrams);
    }
    let s = decoder.stats();
    assert_eq!(s.frames, count);
    assert!(s.truncated + s.malformed + s.unsupported <= s.frames);
    assert!(s.reassembled <= s.fragments);
});
