//! G.711 u-law and A-law (ITU-T G.711), all by lookup tables built at compile
//! time with `const fn`.
//!
//! Linear samples are 16-bit, as in ITU-T G.191 (the reference software): the
//! u-law codec works on the top 14 bits, the A-law codec on the top 13 bits,
//! so decoding yields multiples of 4 (u-law, range ±32124) or 8 (A-law, range
//! ±32256). Negative inputs are folded to a magnitude by one's complement
//! (as G.191 does), so e.g. `-1` encodes to the negative-zero code.
//!
//! Tables: 256 entries per decoder, 16384 (u-law, indexed by the top 14 bits)
//! and 8192 (A-law, top 13 bits) entries per encoder, 256 per transcoder:
//! about 25 KiB of read-only data in total. The hot path (placing RTP
//! payloads) uses only the 256-entry decode and transcode tables through the
//! `*_into` slice functions.

use super::Law;

/// Decodes one u-law byte by computation (used to build the table).
const fn ulaw_decode_calc(byte: u8) -> i16 {
    let u = !byte;
    let exponent = (u >> 4) & 0x07;
    let mantissa = (u & 0x0F) as i32;
    // Bias 0x84 (33 in 14-bit units, shifted left by 2).
    let magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84;
    if u & 0x80 != 0 {
        -magnitude as i16
    } else {
        magnitude as i16
    }
}

/// Decodes one A-law byte by computation (used to build the table).
const fn alaw_decode_calc(byte: u8) -> i16 {
    let a = byte ^ 0x55;
    let segment = (a >> 4) & 0x07;
    let mantissa = (a & 0x0F) as i32;
    let magnitude = match segment {
        0 => (mantissa << 4) + 8,
        _ => ((mantissa << 4) + 0x108) << (segment - 1),
    };
    // In A-law the sign bit set means positive.
    if a & 0x80 != 0 {
        magnitude as i16
    } else {
        -magnitude as i16
    }
}

/// Encodes one sample to u-law by computation (used to build the table).
const fn ulaw_encode_calc(sample: i16) -> u8 {
    let shifted = sample >> 2; // 14-bit
    let (magnitude, sign) = if sample < 0 {
        (!shifted as i32, 0x80u8)
    } else {
        (shifted as i32, 0x00u8)
    };
    let biased = magnitude + 33; // 33..=8224
    let code = if biased >= 8192 {
        0x7F
    } else {
        // Segment = position of the leading one above bit 5 (0..=7).
        let segment = (26 - (biased as u32).leading_zeros()) as i32; // 31 - lz - 5
        let segment = if segment < 0 { 0 } else { segment };
        ((segment << 4) | ((biased >> (segment + 1)) & 0x0F)) as u8
    };
    (sign | code) ^ 0xFF
}

/// Encodes one sample to A-law by computation (used to build the table).
const fn alaw_encode_calc(sample: i16) -> u8 {
    let shifted = sample >> 3; // 13-bit
    let (magnitude, sign) = if sample < 0 {
        (!shifted as i32, 0x00u8)
    } else {
        (shifted as i32, 0x80u8)
    };
    let code = if magnitude >= 4096 {
        0x7F
    } else if magnitude < 32 {
        (magnitude >> 1) & 0x0F
    } else {
        // Segment 1 covers 32..=63, segment 7 covers 2048..=4095.
        let segment = (27 - (magnitude as u32).leading_zeros()) as i32; // 31 - lz - 4
        (segment << 4) | ((magnitude >> segment) & 0x0F)
    };
    (sign | code as u8) ^ 0x55
}

const fn build_ulaw_decode() -> [i16; 256] {
    let mut table = [0i16; 256];
    // Slice patterns instead of indexing: const fns cannot call `get_mut`.
    let mut rest: &mut [i16] = &mut table;
    let mut i = 0;
    while let [slot, tail @ ..] = rest {
        *slot = ulaw_decode_calc(i as u8);
        i += 1;
        rest = tail;
    }
    table
}

const fn build_alaw_decode() -> [i16; 256] {
    let mut table = [0i16; 256];
    let mut rest: &mut [i16] = &mut table;
    let mut i = 0;
    while let [slot, tail @ ..] = rest {
        *slot = alaw_decode_calc(i as u8);
        i += 1;
        rest = tail;
    }
    table
}

const fn build_ulaw_encode() -> [u8; 1 << 14] {
    let mut table = [0u8; 1 << 14];
    let mut rest: &mut [u8] = &mut table;
    let mut i: usize = 0;
    while let [slot, tail @ ..] = rest {
        // Index i holds the top 14 bits of the sample (as unsigned).
        *slot = ulaw_encode_calc((i << 2) as u16 as i16);
        i += 1;
        rest = tail;
    }
    table
}

const fn build_alaw_encode() -> [u8; 1 << 13] {
    let mut table = [0u8; 1 << 13];
    let mut rest: &mut [u8] = &mut table;
    let mut i: usize = 0;
    while let [slot, tail @ ..] = rest {
        *slot = alaw_encode_calc((i << 3) as u16 as i16);
        i += 1;
        rest = tail;
    }
    table
}

const fn build_ulaw_to_alaw() -> [u8; 256] {
    let mut table = [0u8; 256];
    let mut rest: &mut [u8] = &mut table;
    let mut i = 0;
    while let [slot, tail @ ..] = rest {
        *slot = alaw_encode_calc(ulaw_decode_calc(i as u8));
        i += 1;
        rest = tail;
    }
    table
}

const fn build_alaw_to_ulaw() -> [u8; 256] {
    let mut table = [0u8; 256];
    let mut rest: &mut [u8] = &mut table;
    let mut i = 0;
    while let [slot, tail @ ..] = rest {
        *slot = ulaw_encode_calc(alaw_decode_calc(i as u8));
        i += 1;
        rest = tail;
    }
    table
}

/// u-law byte -> linear sample.
pub static ULAW_TO_LINEAR: [i16; 256] = build_ulaw_decode();
/// A-law byte -> linear sample.
pub static ALAW_TO_LINEAR: [i16; 256] = build_alaw_decode();
/// u-law byte -> A-law byte (via linear: decode, then encode).
pub static ULAW_TO_ALAW: [u8; 256] = build_ulaw_to_alaw();
/// A-law byte -> u-law byte (via linear: decode, then encode).
pub static ALAW_TO_ULAW: [u8; 256] = build_alaw_to_ulaw();
/// Top 14 bits of a sample (as `u16 >> 2`) -> u-law byte.
static LINEAR_TO_ULAW: [u8; 1 << 14] = build_ulaw_encode();
/// Top 13 bits of a sample (as `u16 >> 3`) -> A-law byte.
static LINEAR_TO_ALAW: [u8; 1 << 13] = build_alaw_encode();

/// Looks `byte` up in a 256-entry table. A `u8` is always below 256, so
/// `fallback` is never returned (the check compiles away); it only keeps the
/// lookup free of a panicking index.
#[inline(always)]
fn lookup<T: Copy>(table: &[T; 256], byte: u8, fallback: T) -> T {
    table.get(usize::from(byte)).copied().unwrap_or(fallback)
}

/// Decodes a u-law byte to linear 16-bit PCM.
#[inline]
pub fn ulaw_to_linear(byte: u8) -> i16 {
    lookup(&ULAW_TO_LINEAR, byte, 0)
}

/// Decodes an A-law byte to linear 16-bit PCM.
#[inline]
pub fn alaw_to_linear(byte: u8) -> i16 {
    lookup(&ALAW_TO_LINEAR, byte, 0)
}

/// Encodes linear 16-bit PCM to u-law.
#[inline]
pub fn linear_to_ulaw(sample: i16) -> u8 {
    // The index is at most 0x3FFF: always in bounds (the fallback compiles away).
    LINEAR_TO_ULAW
        .get(usize::from((sample as u16) >> 2))
        .copied()
        .unwrap_or(Law::Ulaw.silence())
}

/// Encodes linear 16-bit PCM to A-law.
#[inline]
pub fn linear_to_alaw(sample: i16) -> u8 {
    // The index is at most 0x1FFF: always in bounds (the fallback compiles away).
    LINEAR_TO_ALAW
        .get(usize::from((sample as u16) >> 3))
        .copied()
        .unwrap_or(Law::Alaw.silence())
}

/// Transcodes u-law to A-law (via linear).
#[inline]
pub fn ulaw_to_alaw(byte: u8) -> u8 {
    lookup(&ULAW_TO_ALAW, byte, Law::Alaw.silence())
}

/// Transcodes A-law to u-law (via linear).
#[inline]
pub fn alaw_to_ulaw(byte: u8) -> u8 {
    lookup(&ALAW_TO_ULAW, byte, Law::Ulaw.silence())
}

/// Decodes one byte of `law` to linear.
#[inline]
pub fn decode(law: Law, byte: u8) -> i16 {
    match law {
        Law::Ulaw => ulaw_to_linear(byte),
        Law::Alaw => alaw_to_linear(byte),
    }
}

/// Encodes one linear sample to `law`.
#[inline]
pub fn encode(law: Law, sample: i16) -> u8 {
    match law {
        Law::Ulaw => linear_to_ulaw(sample),
        Law::Alaw => linear_to_alaw(sample),
    }
}

/// The 256-entry decode table of `law`.
#[inline]
pub fn decode_table(law: Law) -> &'static [i16; 256] {
    match law {
        Law::Ulaw => &ULAW_TO_LINEAR,
        Law::Alaw => &ALAW_TO_LINEAR,
    }
}

/// The 256-entry table that transcodes `from` into `to` (identity when equal).
#[inline]
pub fn transcode_table(from: Law, to: Law) -> &'static [u8; 256] {
    static IDENTITY: [u8; 256] = {
        let mut table = [0u8; 256];
        let mut rest: &mut [u8] = &mut table;
        let mut i = 0;
        while let [slot, tail @ ..] = rest {
            *slot = i as u8;
            i += 1;
            rest = tail;
        }
        table
    };
    match (from, to) {
        (Law::Ulaw, Law::Alaw) => &ULAW_TO_ALAW,
        (Law::Alaw, Law::Ulaw) => &ALAW_TO_ULAW,
        _ => &IDENTITY,
    }
}

// Slice functions. Each processes `min(src.len(), dst.len())` elements from
// the start of both slices and returns that count; they never panic and never
// allocate.

/// Decodes u-law bytes into linear samples; returns the count converted.
pub fn decode_ulaw_into(src: &[u8], dst: &mut [i16]) -> usize {
    decode_into(Law::Ulaw, src, dst)
}

/// Decodes A-law bytes into linear samples; returns the count converted.
pub fn decode_alaw_into(src: &[u8], dst: &mut [i16]) -> usize {
    decode_into(Law::Alaw, src, dst)
}

/// Decodes `law` bytes into linear samples; returns the count converted.
pub fn decode_into(law: Law, src: &[u8], dst: &mut [i16]) -> usize {
    let table = decode_table(law);
    let n = src.len().min(dst.len());
    for (d, &s) in dst.iter_mut().zip(src) {
        *d = lookup(table, s, 0);
    }
    n
}

/// Encodes linear samples into u-law bytes; returns the count converted.
pub fn encode_ulaw_into(src: &[i16], dst: &mut [u8]) -> usize {
    encode_into(Law::Ulaw, src, dst)
}

/// Encodes linear samples into A-law bytes; returns the count converted.
pub fn encode_alaw_into(src: &[i16], dst: &mut [u8]) -> usize {
    encode_into(Law::Alaw, src, dst)
}

/// Encodes linear samples into `law` bytes; returns the count converted.
pub fn encode_into(law: Law, src: &[i16], dst: &mut [u8]) -> usize {
    let n = src.len().min(dst.len());
    match law {
        Law::Ulaw => {
            for (d, &s) in dst.iter_mut().zip(src) {
                *d = linear_to_ulaw(s);
            }
        }
        Law::Alaw => {
            for (d, &s) in dst.iter_mut().zip(src) {
                *d = linear_to_alaw(s);
            }
        }
    }
    n
}

/// Transcodes u-law bytes into A-law bytes; returns the count converted.
pub fn transcode_ulaw_to_alaw_into(src: &[u8], dst: &mut [u8]) -> usize {
    transcode_into(Law::Ulaw, Law::Alaw, src, dst)
}

/// Transcodes A-law bytes into u-law bytes; returns the count converted.
pub fn transcode_alaw_to_ulaw_into(src: &[u8], dst: &mut [u8]) -> usize {
    transcode_into(Law::Alaw, Law::Ulaw, src, dst)
}

/// Transcodes `from` bytes into `to` bytes (a plain copy when the laws are
/// equal); returns the count converted.
pub fn transcode_into(from: Law, to: Law, src: &[u8], dst: &mut [u8]) -> usize {
    let n = src.len().min(dst.len());
    if from == to {
        if let (Some(d), Some(s)) = (dst.get_mut(..n), src.get(..n)) {
            d.copy_from_slice(s);
        }
    } else {
        let table = transcode_table(from, to);
        let fallback = to.silence();
        for (d, &s) in dst.iter_mut().zip(src) {
            *d = lookup(table, s, fallback);
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Independent reference: a transcription of the classic segment-search
    /// encoder (CCITT/Sun style) with G.191's one's-complement handling of
    /// negative values, written with explicit segment end tables instead of
    /// bit tricks.
    mod reference {
        const SEG_UEND: [i32; 8] = [0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF];
        const SEG_AEND: [i32; 8] = [0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF];

        fn search(value: i32, table: &[i32; 8]) -> usize {
            table.iter().position(|&end| value <= end).unwrap_or(8)
        }

        pub fn ulaw(sample: i16) -> u8 {
            let mut v = i32::from(sample) >> 2;
            let mask = if v < 0 {
                v = -v - 1;
                0x7F
            } else {
                0xFF
            };
            v += 0x21;
            let seg = search(v, &SEG_UEND);
            if seg >= 8 {
                return 0x7F ^ mask;
            }
            (((seg as i32) << 4 | ((v >> (seg + 1)) & 0xF)) as u8) ^ mask
        }

        pub fn alaw(sample: i16) -> u8 {
            let mut v = i32::from(sample) >> 3;
            let mask = if v >= 0 {
                0xD5
            } else {
                v = -v - 1;
                0x55
            };
            let seg = search(v, &SEG_AEND);
            if seg >= 8 {
                return 0x7F ^ mask;
            }
            let mut aval = (seg as i32) << 4;
            aval |= if seg < 2 {
                (v >> 1) & 0xF
            } else {
                (v >> seg) & 0xF
            };
            (aval as u8) ^ mask
        }

        pub fn ulaw_decode(byte: u8) -> i16 {
            let u = !byte;
            let mut t = ((i32::from(u & 0x0F)) << 3) + 0x84;
            t <<= (u & 0x70) >> 4;
            (if u & 0x80 != 0 { 0x84 - t } else { t - 0x84 }) as i16
        }

        pub fn alaw_decode(byte: u8) -> i16 {
            let a = byte ^ 0x55;
            let mut t = i32::from(a & 0x0F) << 4;
            let seg = (a & 0x70) >> 4;
            match seg {
                0 => t += 8,
                1 => t += 0x108,
                _ => {
                    t += 0x108;
                    t <<= seg - 1;
                }
            }
            (if a & 0x80 != 0 { t } else { -t }) as i16
        }
    }

    #[test]
    fn decode_matches_reference_crate_and_independent_code() {
        for b in 0..=255u8 {
            assert_eq!(
                ulaw_to_linear(b),
                audio_codec_algorithms::decode_ulaw(b),
                "ulaw {b:#x}"
            );
            assert_eq!(
                alaw_to_linear(b),
                audio_codec_algorithms::decode_alaw(b),
                "alaw {b:#x}"
            );
            assert_eq!(ulaw_to_linear(b), reference::ulaw_decode(b), "ulaw {b:#x}");
            assert_eq!(alaw_to_linear(b), reference::alaw_decode(b), "alaw {b:#x}");
        }
    }

    #[test]
    fn encode_matches_reference_crate_and_independent_code_for_all_inputs() {
        for s in i16::MIN..=i16::MAX {
            assert_eq!(
                linear_to_ulaw(s),
                audio_codec_algorithms::encode_ulaw(s),
                "ulaw {s}"
            );
            assert_eq!(
                linear_to_alaw(s),
                audio_codec_algorithms::encode_alaw(s),
                "alaw {s}"
            );
            assert_eq!(linear_to_ulaw(s), reference::ulaw(s), "ulaw {s}");
            assert_eq!(linear_to_alaw(s), reference::alaw(s), "alaw {s}");
        }
    }

    #[test]
    fn known_values() {
        assert_eq!(ulaw_to_linear(0x00), -32124);
        assert_eq!(ulaw_to_linear(0x80), 32124);
        assert_eq!(ulaw_to_linear(0xFF), 0);
        assert_eq!(ulaw_to_linear(0x7F), 0);
        assert_eq!(alaw_to_linear(0xD5), 8);
        assert_eq!(alaw_to_linear(0x55), -8);
        assert_eq!(alaw_to_linear(0xAA), 32256);
        assert_eq!(alaw_to_linear(0x2A), -32256);
        assert_eq!(linear_to_ulaw(0), Law::Ulaw.silence());
        assert_eq!(linear_to_alaw(0), Law::Alaw.silence());
        assert_eq!(linear_to_ulaw(i16::MAX), 0x80);
        assert_eq!(linear_to_ulaw(i16::MIN), 0x00);
        assert_eq!(linear_to_alaw(i16::MAX), 0xAA);
        assert_eq!(linear_to_alaw(i16::MIN), 0x2A);
    }

    #[test]
    fn decode_then_encode_is_identity_except_negative_zero() {
        for b in 0..=255u8 {
            let back = linear_to_ulaw(ulaw_to_linear(b));
            // 0x7F (negative zero) decodes to 0, which encodes as 0xFF.
            let expected = if b == 0x7F { 0xFF } else { b };
            assert_eq!(back, expected, "ulaw {b:#x}");
            assert_eq!(linear_to_alaw(alaw_to_linear(b)), b, "alaw {b:#x}");
        }
    }

    #[test]
    fn transcode_tables_go_via_linear() {
        for b in 0..=255u8 {
            assert_eq!(ulaw_to_alaw(b), linear_to_alaw(ulaw_to_linear(b)));
            assert_eq!(alaw_to_ulaw(b), linear_to_ulaw(alaw_to_linear(b)));
        }
        assert_eq!(ulaw_to_alaw(0xFF), 0xD5);
        assert_eq!(transcode_table(Law::Ulaw, Law::Ulaw)[0x12], 0x12);
    }

    #[test]
    fn slice_functions_convert_the_common_prefix() {
        let src = [0x00, 0x80, 0xFF, 0x7F];
        let mut pcm = [1i16; 3];
        assert_eq!(decode_ulaw_into(&src, &mut pcm), 3);
        assert_eq!(pcm, [-32124, 32124, 0]);
        let mut pcm = [1i16; 5];
        assert_eq!(decode_alaw_into(&[0xD5, 0x55], &mut pcm), 2);
        assert_eq!(pcm, [8, -8, 1, 1, 1]);

        let mut enc = [0u8; 4];
        assert_eq!(encode_ulaw_into(&[0, -1, 32767, -32768], &mut enc), 4);
        assert_eq!(enc, [0xFF, 0x7F, 0x80, 0x00]);
        assert_eq!(encode_alaw_into(&[0, -1], &mut enc), 2);
        assert_eq!(&enc[..2], &[0xD5, 0x55]);

        let mut out = [0u8; 4];
        assert_eq!(transcode_ulaw_to_alaw_into(&src, &mut out), 4);
        assert_eq!(
            out,
            [
                ulaw_to_alaw(0x00),
                ulaw_to_alaw(0x80),
                0xD5,
                ulaw_to_alaw(0x7F)
            ]
        );
        assert_eq!(transcode_alaw_to_ulaw_into(&[0xD5], &mut out), 1);
        assert_eq!(out[0], alaw_to_ulaw(0xD5));
        assert_eq!(
            transcode_into(Law::Alaw, Law::Alaw, &[1, 2, 3], &mut out[..2]),
            2
        );
        assert_eq!(&out[..2], &[1, 2]);
    }
}
