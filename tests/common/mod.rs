//! Helpers shared by the end-to-end tests: run the binary, read WAVs, measure tones.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The taprec binary built for this test run.
pub fn taprec() -> Command {
    Command::new(env!("CARGO_BIN_EXE_taprec"))
}

/// Runs taprec with `args` (killed after 10 minutes so that a hang fails the
/// test instead of stalling the suite), returning its output.
pub fn run(args: &[&str]) -> Output {
    use std::io::Read;
    use std::process::Stdio;
    use std::time::{Duration, Instant};
    let mut child = taprec()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run taprec");
    let mut stdout = child.stdout.take().expect("stdout");
    let mut stderr = child.stderr.take().expect("stderr");
    let out_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stdout.read_to_end(&mut buf);
        buf
    });
    let err_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stderr.read_to_end(&mut buf);
        buf
    });
    let deadline = Instant::now() + Duration::from_secs(600);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for taprec") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("taprec {args:?} did not finish within 10 minutes");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: out_reader.join().expect("stdout reader"),
        stderr: err_reader.join().expect("stderr reader"),
    }
}

/// Runs taprec with `args` (see [`run`]), panicking with its output if it fails.
pub fn run_ok(args: &[&str]) -> Output {
    let out = run(args);
    assert!(
        out.status.success(),
        "taprec {:?} failed: {}\nstdout:\n{}\nstderr:\n{}",
        args,
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The shared external captures folder, or None (with a message) when it is
/// absent; fails when `CI` is set and the folder is missing.
pub fn external_pcap(name: &str) -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/pcaps/external");
    let path = dir.join(name);
    if path.exists() {
        return Some(path);
    }
    if std::env::var_os("CI").is_some() {
        panic!("external capture {} missing and CI is set", path.display());
    }
    eprintln!("skipping: external capture {} not present", path.display());
    None
}

/// A decoded stereo WAV: per-channel linear samples.
pub struct Stereo {
    pub left: Vec<i16>,
    pub right: Vec<i16>,
    pub format_tag: u16,
}

impl Stereo {
    /// Duration in seconds.
    pub fn seconds(&self) -> f64 {
        self.left.len() as f64 / 8000.0
    }
}

/// Reads a stereo 8 kHz WAV with format tag 1 (PCM-16), 6 (A-law) or 7 (u-law)
/// using an independent decoder (not taprec's), checking header sizes.
pub fn read_wav(path: &Path) -> Stereo {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    parse_wav(&bytes)
}

/// Parses WAV bytes as [`read_wav`] does.
pub fn parse_wav(bytes: &[u8]) -> Stereo {
    assert_eq!(&bytes[0..4], b"RIFF");
    assert_eq!(&bytes[8..12], b"WAVE");
    let riff_len = u32::from_le_bytes(bytes[4..8].try_into().unwrap()) as usize;
    assert_eq!(riff_len + 8, bytes.len(), "RIFF size must match the file");
    let mut pos = 12;
    let mut tag = 0u16;
    let mut channels = 0u16;
    let mut rate = 0u32;
    let mut data: Option<&[u8]> = None;
    while pos + 8 <= bytes.len() {
        let id = &bytes[pos..pos + 4];
        let len = u32::from_le_bytes(bytes[pos + 4..pos + 8].try_into().unwrap()) as usize;
        let body = &bytes[pos + 8..pos + 8 + len];
        match id {
            b"fmt " => {
                tag = u16::from_le_bytes([body[0], body[1]]);
                channels = u16::from_le_bytes([body[2], body[3]]);
                rate = u32::from_le_bytes(body[4..8].try_into().unwrap());
            }
            b"data" => data = Some(body),
            _ => {}
        }
        pos += 8 + len + (len & 1);
    }
    assert_eq!(channels, 2, "stereo");
    assert_eq!(rate, 8000, "8 kHz");
    let data = data.expect("data chunk");
    let mut left = Vec::new();
    let mut right = Vec::new();
    match tag {
        1 => {
            for frame in data.chunks_exact(4) {
                left.push(i16::from_le_bytes([frame[0], frame[1]]));
                right.push(i16::from_le_bytes([frame[2], frame[3]]));
            }
        }
        6 | 7 => {
            let dec = if tag == 6 { ref_alaw } else { ref_ulaw };
            for frame in data.chunks_exact(2) {
                left.push(dec(frame[0]));
                right.push(dec(frame[1]));
            }
        }
        other => panic!("unexpected format tag {other}"),
    }
    Stereo {
        left,
        right,
        format_tag: tag,
    }
}

/// Reference u-law decoder (ITU-T G.711), independent of taprec's tables.
pub fn ref_ulaw(byte: u8) -> i16 {
    let u = !byte;
    let sign = u & 0x80;
    let exponent = (u >> 4) & 0x07;
    let mantissa = u & 0x0F;
    let magnitude = (((mantissa as i32) << 3) + 0x84) << exponent;
    let value = magnitude - 0x84;
    if sign != 0 {
        -value as i16
    } else {
        value as i16
    }
}

/// Reference A-law decoder (ITU-T G.711), independent of taprec's tables.
pub fn ref_alaw(byte: u8) -> i16 {
    let a = byte ^ 0x55;
    let sign = a & 0x80;
    let exponent = (a >> 4) & 0x07;
    let mantissa = (a & 0x0F) as i32;
    let magnitude = if exponent == 0 {
        (mantissa << 4) + 8
    } else {
        ((mantissa << 4) + 0x108) << (exponent - 1)
    };
    if sign != 0 {
        magnitude as i16
    } else {
        -magnitude as i16
    }
}

/// Power of `freq` Hz in `samples` (Goertzel), normalised by the total energy:
/// close to 1.0 when the block is a pure tone at `freq`, near 0 otherwise.
pub fn tone_ratio(samples: &[i16], freq: f64) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    let n = samples.len() as f64;
    let w = 2.0 * std::f64::consts::PI * freq / 8000.0;
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    let mut energy = 0.0f64;
    for &x in samples {
        let x = x as f64;
        energy += x * x;
        let s0 = x + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    if energy == 0.0 {
        return 0.0;
    }
    let power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
    // A pure sinusoid of N samples gives power = energy * N / 2.
    (power / (energy * n / 2.0)).min(1.0)
}

/// Root mean square of `samples`.
pub fn rms(samples: &[i16]) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    (samples
        .iter()
        .map(|&x| (x as f64) * (x as f64))
        .sum::<f64>()
        / samples.len() as f64)
        .sqrt()
}

/// The first sample index at which `samples` holds a tone of `freq` Hz over a
/// 20 ms block (tone ratio above 0.5 and RMS above 100), scanning in 1 ms steps.
pub fn tone_onset(samples: &[i16], freq: f64) -> Option<usize> {
    let block = 160;
    let mut i = 0;
    while i + block <= samples.len() {
        let b = &samples[i..i + block];
        if rms(b) > 100.0 && tone_ratio(b, freq) > 0.5 {
            return Some(i);
        }
        i += 8;
    }
    None
}

/// Finished recordings in a spool: (wav, json) pairs of `<spool>/ready`, sorted.
pub fn ready_recordings(spool: &Path) -> Vec<(PathBuf, serde_json::Value)> {
    let ready = spool.join("ready");
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(&ready) else {
        return out;
    };
    let mut jsons: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    jsons.sort();
    for json in jsons {
        let wav = json.with_extension("wav");
        assert!(wav.exists(), "{} has no WAV beside it", json.display());
        let meta: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&json).unwrap()).expect("metadata JSON");
        out.push((wav, meta));
    }
    out
}
