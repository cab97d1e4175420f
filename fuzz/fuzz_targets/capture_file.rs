//! Capture file reading (pcap and pcapng) over arbitrary bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::io::Cursor;
use taprec::capture::file::FileReader;

fuzz_target!(|data: &[u8]| {
    let Ok(mut reader) = FileReader::from_reader("fuzz-input", Cursor::new(data.to_vec())) else {
        return;
    };
    let mut frames = 0u64;
    loop {
        match reader.next_frame() {
            Ok(Some(frame)) => {
                // A frame is a view into the file: never larger than it.
                assert!(frame.data.len() <= data.len());
                frames += 1;
                // Every frame consumes at least a block header: no endless loop.
                assert!(frames <= data.len() as u64);
            }
            Ok(None) => break,
            Err(_) => {
                // After an error the reader stays finished.
                assert!(matches!(reader.next_frame(), Ok(None)));
                break;
            }
        }
    }
    assert_eq!(reader.frames_read(), frames);
    assert!(reader.offset() <= data.len() as u64);
});
