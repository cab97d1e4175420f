//! The benchmark's floor: reads every frame of capture files with the same
//! [`FileReader`] `taprec replay` uses, touches each frame's bytes and
//! discards them. `scripts/bench.sh` divides the replay's time by this one's.
//!
//! Usage: `read_floor FILE...`; prints `frames N bytes B seconds S packets/s P`.

use std::process::ExitCode;
use std::time::Instant;
use taprec::capture::file::FileReader;

fn main() -> ExitCode {
    let paths: Vec<String> = std::env::args().skip(1).collect();
    if paths.is_empty() {
        eprintln!("usage: read_floor FILE...");
        return ExitCode::from(2);
    }
    let started = Instant::now();
    let mut frames = 0u64;
    let mut bytes = 0u64;
    let mut check = 0u8;
    for path in &paths {
        let mut reader = match FileReader::open(path) {
            Ok(reader) => reader,
            Err(e) => {
                eprintln!("read_floor: {e}");
                return ExitCode::FAILURE;
            }
        };
        loop {
            match reader.next_frame() {
                Ok(Some(frame)) => {
                    frames += 1;
                    bytes += frame.data.len() as u64;
                    // Touch the frame so the read cannot be optimised away.
                    check ^= frame.data.first().copied().unwrap_or(0);
                }
                Ok(None) => break,
                Err(e) => {
                    eprintln!("read_floor: {e}");
                    return ExitCode::FAILURE;
                }
            }
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "frames {frames} bytes {bytes} seconds {secs:.3} packets/s {:.0} check {check}",
        frames as f64 / secs.max(1e-9)
    );
    ExitCode::SUCCESS
}
