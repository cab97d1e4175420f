//! Capture time. The core never reads the system clock: "now" is always the
//! timestamp of the packet being handled.

use std::fmt;

/// A capture timestamp: nanoseconds since the Unix epoch (UTC).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// Builds a timestamp from seconds and nanoseconds since the epoch.
    pub const fn from_parts(secs: i64, nanos: u32) -> Self {
        Timestamp(
            secs.saturating_mul(1_000_000_000)
                .saturating_add(nanos as i64),
        )
    }

    /// Builds a timestamp from (fractional) seconds since the epoch.
    pub fn from_secs_f64(secs: f64) -> Self {
        Timestamp((secs * 1e9) as i64)
    }

    /// Nanoseconds since the epoch.
    pub const fn nanos(self) -> i64 {
        self.0
    }

    /// Signed nanoseconds from `earlier` to `self`.
    pub const fn nanos_since(self, earlier: Timestamp) -> i64 {
        self.0.saturating_sub(earlier.0)
    }

    /// Seconds from `earlier` to `self`, as a float.
    pub fn secs_since(self, earlier: Timestamp) -> f64 {
        self.nanos_since(earlier) as f64 / 1e9
    }

    /// This timestamp moved forward by `nanos` (backward if negative).
    pub const fn add_nanos(self, nanos: i64) -> Timestamp {
        Timestamp(self.0.saturating_add(nanos))
    }

    /// This timestamp moved forward by whole seconds.
    pub const fn add_secs(self, secs: i64) -> Timestamp {
        self.add_nanos(secs.saturating_mul(1_000_000_000))
    }

    /// UTC date and time, for metadata and file names.
    pub fn to_utc(self) -> chrono::DateTime<chrono::Utc> {
        let secs = self.0.div_euclid(1_000_000_000);
        let nanos = self.0.rem_euclid(1_000_000_000) as u32;
        chrono::DateTime::from_timestamp(secs, nanos).unwrap_or_default()
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_utc().format("%Y-%m-%dT%H:%M:%S%.6fZ"))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_formatting_handles_negative_and_fractional_times() {
        let t = Timestamp::from_parts(1_537_880_400, 123_456_000);
        assert_eq!(format!("{t}"), "2018-09-25T13:00:00.123456Z");
        assert_eq!(Timestamp(-1).to_utc().timestamp(), -1);
    }

    #[test]
    fn arithmetic_saturates() {
        assert_eq!(Timestamp(i64::MAX).add_nanos(5), Timestamp(i64::MAX));
        assert_eq!(Timestamp(10).nanos_since(Timestamp(4)), 6);
    }
}
