//! SDP parsing and every accessor the recorder uses.
#![no_main]

use libfuzzer_sys::fuzz_target;
use taprec::sip::sdp::{SessionDescription, MAX_FORMATS, MAX_MEDIA};

fuzz_target!(|data: &[u8]| {
    let sd = SessionDescription::parse(data);
    assert!(sd.media.len() <= MAX_MEDIA);
    let _ = sd.audio();
    for media in &sd.media {
        assert!(media.payload_types.len() <= MAX_FORMATS);
        assert!(media.rtpmaps.len() <= MAX_FORMATS);
        let _ = media.address(&sd);
        let _ = media.effective_direction(&sd);
        for pt in 0..=127u8 {
            let _ = media.encoding(pt);
            let _ = media.clock_rate(pt);
        }
    }
    // Parsing is deterministic.
    assert_eq!(SessionDescription::parse(data), sd);
});
