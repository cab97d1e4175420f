//! G.711 u-law and A-law by 256-entry tables (ITU-T G.711), built at compile
//! time.

/// Decodes a u-law byte to linear 16-bit PCM.
pub fn ulaw_to_linear(byte: u8) -> i16 {
    let _ = byte;
    todo!()
}

/// Decodes an A-law byte to linear 16-bit PCM.
pub fn alaw_to_linear(byte: u8) -> i16 {
    let _ = byte;
    todo!()
}

/// Encodes linear 16-bit PCM to u-law.
pub fn linear_to_ulaw(sample: i16) -> u8 {
    let _ = sample;
    todo!()
}

/// Encodes linear 16-bit PCM to A-law.
pub fn linear_to_alaw(sample: i16) -> u8 {
    let _ = sample;
    todo!()
}

/// Transcodes u-law to A-law (G.711 Table 3, via linear).
pub fn ulaw_to_alaw(byte: u8) -> u8 {
    let _ = byte;
    todo!()
}

/// Transcodes A-law to u-law.
pub fn alaw_to_ulaw(byte: u8) -> u8 {
    let _ = byte;
    todo!()
}
