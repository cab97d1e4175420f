//! The recording metadata: exactly the `jsondata` object of the recording
//! API (see the vendor documentation in the project's shared seeds).

use crate::Timestamp;
use serde::{Deserialize, Serialize};

/// The metadata uploaded with (and spooled beside) a recording.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Metadata {
    /// Recording start (the answer), UTC, e.g. `2018-09-25T13:00:00.000000Z`.
    pub start_date_time: String,
    /// Recording duration, ISO 8601, e.g. `PT1M30S`.
    pub duration: String,
    /// 0 unknown, 1 incoming, 2 outgoing.
    pub direction: u8,
    /// The local party.
    pub local_party: LocalParty,
    /// The remote party.
    pub remote_party: RemoteParty,
    /// The SIP Call-ID.
    pub pbx_call_id: String,
    /// Codec, loss, why the call ended, truncation.
    pub notes: String,
    /// Whether the recording must be preserved.
    pub preserved: bool,
}

/// `localParty` of the metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LocalParty {
    /// Username on the recording server.
    pub username: String,
    /// Phone number.
    pub phone_number: String,
}

/// `remoteParty` of the metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RemoteParty {
    /// Phone number.
    pub phone_number: String,
}

/// Formats a start time as the API's example does: UTC, microseconds, `Z`.
pub fn format_start(ts: Timestamp) -> String {
    ts.to_utc().format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// Formats a duration as ISO 8601 `PT#H#M#S`, seconds with up to three
/// decimals (e.g. `PT1M30S`, `PT4.52S`, `PT1H0M2.5S`, `PT0S`).
pub fn format_duration(nanos: i64) -> String {
    let millis = (nanos.max(0) + 500_000) / 1_000_000;
    let hours = millis / 3_600_000;
    let minutes = (millis / 60_000) % 60;
    let secs = (millis / 1000) % 60;
    let frac = millis % 1000;
    let mut out = String::from("PT");
    if hours > 0 {
        out.push_str(&format!("{hours}H"));
    }
    if hours > 0 || minutes > 0 {
        out.push_str(&format!("{minutes}M"));
    }
    if frac == 0 {
        out.push_str(&format!("{secs}S"));
    } else {
        let text = format!("{secs}.{frac:03}");
        out.push_str(text.trim_end_matches('0'));
        out.push('S');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_follow_iso_8601() {
        assert_eq!(format_duration(90_000_000_000), "PT1M30S");
        assert_eq!(format_duration(4_520_000_000), "PT4.52S");
        assert_eq!(format_duration(0), "PT0S");
        assert_eq!(format_duration(3_602_500_000_000), "PT1H0M2.5S");
        assert_eq!(format_duration(-5), "PT0S");
        assert_eq!(format_duration(59_999_600_000), "PT1M0S");
    }

    #[test]
    fn start_has_microseconds_and_z() {
        let ts = Timestamp::from_parts(1_537_880_400, 0);
        assert_eq!(format_start(ts), "2018-09-25T13:00:00.000000Z");
    }

    #[test]
    fn field_names_match_the_api() {
        let meta = Metadata {
            start_date_time: "2018-09-25T13:00:00.000000Z".into(),
            duration: "PT1M30S".into(),
            direction: 2,
            local_party: LocalParty {
                username: "giuliano".into(),
                phone_number: "376".into(),
            },
            remote_party: RemoteParty {
                phone_number: "123456".into(),
            },
            pbx_call_id: "1".into(),
            notes: "n".into(),
            preserved: true,
        };
        let json = serde_json::to_value(&meta).unwrap();
        for key in [
            "startDateTime",
            "duration",
            "direction",
            "localParty",
            "remoteParty",
            "pbxCallId",
            "notes",
            "preserved",
        ] {
            assert!(json.get(key).is_some(), "{key}");
        }
        assert_eq!(json["localParty"]["phoneNumber"], "376");
        assert_eq!(json["remoteParty"]["phoneNumber"], "123456");
    }
}
