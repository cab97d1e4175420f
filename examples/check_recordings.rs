//! Spot-checks the recordings of a `taprec replay` of a `taprec synth`
//! capture (used by `scripts/bench.sh`): every call of the manifest must
//! have been recorded, and for a sample of them the duration must match the
//! manifest, the WAV must hold that many frames, and each channel must carry
//! its party's tone (left: the local caller, right: the remote callee, as
//! with `--local-net 10.0.0.0/8`).
//!
//! Usage: `check_recordings MANIFEST.json SPOOL_DIR [SAMPLES]` (default 50).
//! Exits non-zero and says why on the first failure.

use serde_json::Value;
use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::process::ExitCode;
use taprec::media::wav::read_info;
use taprec::media::{g711, SampleFormat};

/// Duration tolerance against the manifest, seconds.
const DURATION_TOLERANCE: f64 = 0.1;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 2 {
        eprintln!("usage: check_recordings MANIFEST.json SPOOL_DIR [SAMPLES]");
        return ExitCode::from(2);
    }
    let samples = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(50usize);
    match check(Path::new(&args[0]), Path::new(&args[1]), samples) {
        Ok(summary) => {
            println!("{summary}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("check_recordings: FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}

fn check(manifest: &Path, spool: &Path, samples: usize) -> Result<String, String> {
    let text = std::fs::read(manifest).map_err(|e| format!("{}: {e}", manifest.display()))?;
    let manifest: Value = serde_json::from_slice(&text).map_err(|e| e.to_string())?;
    let calls: HashMap<&str, &Value> = manifest["calls"]
        .as_array()
        .ok_or("manifest has no calls")?
        .iter()
        .filter_map(|c| Some((c["call_id"].as_str()?, c)))
        .collect();
    let ready = spool.join("ready");
    let mut jsons: Vec<_> = std::fs::read_dir(&ready)
        .map_err(|e| format!("{}: {e}", ready.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    jsons.sort();
    if jsons.len() != calls.len() {
        return Err(format!(
            "{} recordings for {} calls in the manifest",
            jsons.len(),
            calls.len()
        ));
    }
    let step = (jsons.len() / samples.max(1)).max(1);
    let mut checked = 0;
    let mut worst_duration: f64 = 0.0;
    let mut worst_tone: f64 = 1.0;
    for json in jsons.iter().step_by(step).take(samples) {
        let meta: Value = serde_json::from_slice(&std::fs::read(json).map_err(|e| e.to_string())?)
            .map_err(|e| format!("{}: {e}", json.display()))?;
        let call_id = meta["pbxCallId"].as_str().unwrap_or_default();
        let call = calls.get(call_id).ok_or_else(|| {
            format!(
                "{}: call {call_id:?} is not in the manifest",
                json.display()
            )
        })?;
        let expected = secs(&call["end_time"]) - secs(&call["answer_time"]);
        let duration = meta["duration"]
            .as_str()
            .and_then(|d| d.strip_prefix("PT")?.strip_suffix('S')?.parse::<f64>().ok())
            .ok_or_else(|| format!("{call_id}: bad duration {}", meta["duration"]))?;
        let (left, right) = read_stereo(&json.with_extension("wav"))?;
        let frames_secs = left.len() as f64 / 8000.0;
        for (what, got) in [("metadata duration", duration), ("WAV length", frames_secs)] {
            let off = (got - expected).abs();
            worst_duration = worst_duration.max(off);
            if off > DURATION_TOLERANCE {
                return Err(format!(
                    "{call_id}: {what} {got:.3} s, the call lasted {expected:.3} s"
                ));
            }
        }
        // The middle second: both parties talk throughout a synth call.
        let mid = left.len() / 2;
        let window = mid.saturating_sub(4000)..(mid + 4000).min(left.len());
        for (side, party, channel) in [("left", "caller", &left), ("right", "callee", &right)] {
            let freq = secs(&call[party]["tone_hz"]);
            let ratio = tone_ratio(&channel[window.clone()], freq);
            worst_tone = worst_tone.min(ratio);
            if ratio < 0.8 {
                return Err(format!(
                    "{call_id}: {side} channel is not the {party}'s {freq} Hz tone (ratio {ratio:.2})"
                ));
            }
        }
        checked += 1;
    }
    Ok(format!(
        "recordings OK: {} recorded for {} calls; {checked} checked: durations within {worst_duration:.3} s, tone purity >= {worst_tone:.2}",
        jsons.len(),
        calls.len()
    ))
}

fn secs(v: &Value) -> f64 {
    v.as_f64().unwrap_or(f64::NAN)
}

/// Both channels of a stereo G.711 or PCM-16 WAV, as linear samples.
fn read_stereo(path: &Path) -> Result<(Vec<i16>, Vec<i16>), String> {
    let fail = |e: std::io::Error| format!("{}: {e}", path.display());
    let mut file = File::open(path).map_err(fail)?;
    let info = read_info(&mut file).map_err(fail)?;
    if info.channels != 2 {
        return Err(format!("{}: {} channels", path.display(), info.channels));
    }
    file.seek(SeekFrom::Start(info.data_offset)).map_err(fail)?;
    let mut data = Vec::new();
    file.take(info.data_len)
        .read_to_end(&mut data)
        .map_err(fail)?;
    let samples: Vec<i16> = match info.format {
        SampleFormat::G711(law) => data.iter().map(|&b| g711::decode(law, b)).collect(),
        SampleFormat::Pcm16 => data
            .chunks_exact(2)
            .map(|b| i16::from_le_bytes([b[0], b[1]]))
            .collect(),
    };
    let left = samples.iter().step_by(2).copied().collect();
    let right = samples.iter().skip(1).step_by(2).copied().collect();
    Ok((left, right))
}

/// Power of `freq` Hz in `samples` (Goertzel) over the total energy: near 1
/// for a pure tone at `freq`, near 0 otherwise.
fn tone_ratio(samples: &[i16], freq: f64) -> f64 {
    let n = samples.len() as f64;
    let coeff = 2.0 * (2.0 * std::f64::consts::PI * freq / 8000.0).cos();
    let (mut s1, mut s2, mut energy) = (0.0f64, 0.0f64, 0.0f64);
    for &x in samples {
        let x = f64::from(x);
        energy += x * x;
        let s0 = x + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    if energy == 0.0 {
        return 0.0;
    }
    let power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
    (power / (energy * n / 2.0)).min(1.0)
}
