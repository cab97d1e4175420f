//! Test tones: the frequency grid that keeps every party of up to
//! [`CALLS_PER_GRID`] calls on its own tone, and one G.711-encoded period
//! table per frequency.
//!
//! Every grid frequency is a multiple of 20 Hz, so at 8 kHz a whole number of
//! cycles fits in `8000 / gcd(f, 8000)` samples (at most 400): a sender keeps
//! a continuous phase across packets by indexing that table modulo its length,
//! and never evaluates `sin` on the hot path.

use crate::media::{g711, Law};

/// Lowest grid frequency, Hz.
pub const GRID_LOW_HZ: u32 = 300;
/// Spacing of the grid, Hz. 40 Hz keeps 39 calls (78 tones) distinct inside
/// the 300..3400 Hz telephone band; with 20 ms (160-sample) analysis blocks a
/// neighbour 40 Hz away still scores a tone ratio under 0.1.
pub const GRID_STEP_HZ: u32 = 40;
/// Number of calls whose caller and callee tones are all distinct; call
/// `i` uses the same tones as call `i % CALLS_PER_GRID`.
pub const CALLS_PER_GRID: u32 = 39;
/// Peak amplitude: -10 dBFS (32767 * 10^(-10/20)).
pub const AMPLITUDE: f64 = 10_362.0;

/// Caller and callee tone of call `index`, in Hz. Callers take the lower half
/// of the grid (300..1820 Hz), callees the upper half (1860..3380 Hz).
pub fn call_tones(index: u32) -> (u32, u32) {
    let slot = index % CALLS_PER_GRID;
    let caller = GRID_LOW_HZ + GRID_STEP_HZ * slot;
    let callee = GRID_LOW_HZ + GRID_STEP_HZ * (slot + CALLS_PER_GRID);
    (caller, callee)
}

/// One period of a sine encoded in G.711: sample `n` of the tone is
/// `bytes[n % bytes.len()]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToneTable {
    /// Frequency, Hz.
    pub freq_hz: u32,
    /// Encoded samples of a whole number of cycles.
    pub bytes: Vec<u8>,
}

impl ToneTable {
    /// Builds the table of `freq_hz` (any value up to 4000 Hz) for `law`.
    pub fn new(freq_hz: u32, law: Law) -> Self {
        let rate = crate::media::SAMPLE_RATE;
        let len = (rate / gcd(freq_hz, rate)) as usize;
        let bytes = (0..len)
            .map(|n| {
                let phase =
                    2.0 * std::f64::consts::PI * f64::from(freq_hz) * n as f64 / f64::from(rate);
                g711::encode(law, (AMPLITUDE * phase.sin()).round() as i16)
            })
            .collect();
        Self { freq_hz, bytes }
    }

    /// Appends `count` samples starting at sample index `start` to `out`.
    pub fn extend(&self, out: &mut Vec<u8>, start: u64, count: usize) {
        let len = self.bytes.len();
        if len == 0 {
            return;
        }
        let mut pos = (start % len as u64) as usize;
        let mut left = count;
        while left > 0 {
            let take = left.min(len - pos);
            out.extend_from_slice(&self.bytes[pos..pos + take]);
            left -= take;
            pos = 0;
        }
    }
}

/// Greatest common divisor; `gcd(0, n) == n`.
fn gcd(mut a: u32, mut b: u32) -> u32 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_is_distinct_and_in_band() {
        let mut all = Vec::new();
        for i in 0..CALLS_PER_GRID {
            let (a, b) = call_tones(i);
            all.push(a);
            all.push(b);
        }
        all.sort_unstable();
        assert!(all.windows(2).all(|w| w[1] - w[0] >= GRID_STEP_HZ));
        assert!(all[0] >= 300 && *all.last().unwrap() <= 3400);
        assert_eq!(call_tones(CALLS_PER_GRID), call_tones(0));
        assert_eq!(call_tones(0), (300, 1860));
    }

    #[test]
    fn table_lengths() {
        assert_eq!(gcd(300, 8000), 100);
        assert_eq!(ToneTable::new(300, Law::Ulaw).bytes.len(), 80);
        assert_eq!(ToneTable::new(1860, Law::Alaw).bytes.len(), 400);
        for i in 0..CALLS_PER_GRID {
            let (a, b) = call_tones(i);
            assert!(ToneTable::new(a, Law::Ulaw).bytes.len() <= 400);
            assert!(ToneTable::new(b, Law::Ulaw).bytes.len() <= 400);
        }
    }

    #[test]
    fn extend_wraps_with_continuous_phase() {
        let table = ToneTable {
            freq_hz: 0,
            bytes: vec![1, 2, 3],
        };
        let mut out = Vec::new();
        table.extend(&mut out, 2, 7);
        assert_eq!(out, [3, 1, 2, 3, 1, 2, 3]);
        let mut joined = Vec::new();
        table.extend(&mut joined, 0, 4);
        table.extend(&mut joined, 4, 4);
        let mut whole = Vec::new();
        table.extend(&mut whole, 0, 8);
        assert_eq!(joined, whole);
    }

    #[test]
    fn table_encodes_a_sine() {
        let table = ToneTable::new(1000, Law::Ulaw);
        assert_eq!(table.bytes.len(), 8);
        // Sample 0 is zero phase: u-law of 0 is 0xFF; sample 2 is the peak.
        assert_eq!(table.bytes[0], g711::linear_to_ulaw(0));
        assert_eq!(table.bytes[2], g711::linear_to_ulaw(AMPLITUDE as i16));
        assert_eq!(table.bytes[6], g711::linear_to_ulaw(-(AMPLITUDE as i16)));
    }
}
