//! Configuration sections of call tracking: `[dedup]`, `[b2bua]` and
//! `[numbers]` (see `config/taprec.toml` for a documented example).

use serde::Deserialize;

/// `[dedup]`: one recording per conversation when packets or calls are seen
/// more than once (see [`crate::call::dedup`]).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DedupConfig {
    /// Drop RTP packets whose SSRC and sequence number were already recorded
    /// on the same channel (the same packet seen by two SPAN sources).
    pub drop_copies: bool,
    /// Record each channel from one network path only: the same call's
    /// media on a second hop is ignored while the first hop carries it.
    pub lock_hop: bool,
    /// Milliseconds a locked path must be silent before media on another
    /// path of the same channel is recorded instead.
    pub hop_idle_ms: u64,
}

impl Default for DedupConfig {
    fn default() -> Self {
        DedupConfig {
            drop_copies: true,
            lock_hop: true,
            hop_idle_ms: 1000,
        }
    }
}

/// How the legs of a call through a B2BUA (two dialogs, two Call-IDs) are
/// recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum LegMode {
    /// Once, on the leg that crosses the local/remote boundary (or the
    /// first leg when both or neither do).
    #[default]
    Boundary,
    /// Every leg is recorded; the notes name the other leg.
    EachLeg,
}

/// `[b2bua]`: recognising two dialogs as legs of one conversation.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct B2buaConfig {
    /// `boundary` (default) or `each-leg`.
    pub mode: LegMode,
    /// Correlate legs by what the signalling shows without any special
    /// header: a new INVITE that leaves the callee of a ringing call
    /// (B2BUA topology) with the same caller or callee number, or one whose
    /// From tag is derived from the ringing call's and that dials the same
    /// number, within `window_ms`.
    pub auto: bool,
    /// How soon after the first leg's INVITE the second leg's must follow.
    pub window_ms: u64,
    /// Headers whose value is the other leg's Call-ID (matched
    /// case-insensitively by name), e.g. `X-Call-ID`.
    pub correlation_headers: Vec<String>,
}

impl Default for B2buaConfig {
    fn default() -> Self {
        B2buaConfig {
            mode: LegMode::Boundary,
            auto: true,
            window_ms: 2000,
            correlation_headers: vec![
                "X-Call-ID".to_string(),
                "X-Orig-Call-ID".to_string(),
                "X-Original-Call-ID".to_string(),
            ],
        }
    }
}

/// What to do with a call whose parties are both local.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum InternalCalls {
    /// Record it with direction 0 (unknown), the caller on the left.
    #[default]
    Unknown,
    /// Record it from the caller's side as an outgoing call.
    Outgoing,
    /// Do not record it (logged as skipped).
    Skip,
}

/// `[numbers]`: how phone numbers are reported.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NumbersConfig {
    /// Prefix rewrites `[from, to]`, the first matching `from` wins: e.g.
    /// `[["00", "+"], ["0", "+39"]]` turns national and international
    /// dialling into international format; `[["9", ""]]` strips an outside
    /// line prefix. Applied to numbers made of digits (and a leading `+`).
    pub rewrite: Vec<(String, String)>,
    /// Calls between two local parties.
    pub internal_calls: InternalCalls,
}

impl NumbersConfig {
    /// The number as reported: the first matching rewrite applied.
    pub fn normalize(&self, number: &str) -> String {
        let digits = number.strip_prefix('+').unwrap_or(number);
        let dialable = !digits.is_empty()
            && digits
                .bytes()
                .all(|b| b.is_ascii_digit() || b == b'*' || b == b'#');
        if !dialable {
            return number.to_string();
        }
        for (from, to) in &self.rewrite {
            if let Some(rest) = number.strip_prefix(from.as_str()) {
                return format!("{to}{rest}");
            }
        }
        number.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrites_apply_first_match_to_dialable_numbers_only() {
        let n = NumbersConfig {
            rewrite: vec![
                ("00".into(), "+".into()),
                ("0".into(), "+39".into()),
                ("9".into(), String::new()),
            ],
            ..NumbersConfig::default()
        };
        assert_eq!(n.normalize("0041441234567"), "+41441234567");
        assert_eq!(n.normalize("0612345678"), "+39612345678");
        assert_eq!(n.normalize("95551234"), "5551234");
        assert_eq!(n.normalize("+41441234567"), "+41441234567");
        assert_eq!(n.normalize("alice"), "alice");
        assert_eq!(n.normalize("0alice"), "0alice");
    }

    #[test]
    fn sections_parse_from_toml() {
        #[derive(Deserialize)]
        struct T {
            b2bua: B2buaConfig,
            numbers: NumbersConfig,
            dedup: DedupConfig,
        }
        let t: T = toml::from_str(
            "[b2bua]\nmode = \"each-leg\"\ncorrelation_headers = [\"X-Leg\"]\n[numbers]\nrewrite = [[\"00\", \"+\"]]\ninternal_calls = \"skip\"\n[dedup]\nhop_idle_ms = 500\n",
        )
        .unwrap();
        assert_eq!(t.b2bua.mode, LegMode::EachLeg);
        assert!(t.b2bua.auto);
        assert_eq!(t.numbers.internal_calls, InternalCalls::Skip);
        assert_eq!(t.numbers.rewrite, vec![("00".to_string(), "+".to_string())]);
        assert_eq!(t.dedup.hop_idle_ms, 500);
        assert!(t.dedup.drop_copies);
        assert!(toml::from_str::<T>("[b2bua]\nmode = \"twice\"\n[numbers]\n[dedup]\n").is_err());
    }
}
