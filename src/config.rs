//! Configuration: a TOML file (documented example in `config/taprec.toml`),
//! every key of which the CLI can override. Unknown keys are errors, and every
//! error names the key and the value.

use ipnet::IpNet;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// The whole configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Networks (CIDRs) whose endpoints are the local party.
    pub local_networks: Vec<IpNet>,
    /// How recordings are made.
    pub recording: RecordingConfig,
    /// Where recordings are queued.
    pub spool: SpoolConfig,
    /// Phone number -> username of the local party, for metadata.
    pub users: BTreeMap<String, String>,
    /// Caps on state kept for hostile or broken traffic.
    pub limits: LimitsConfig,
}

/// `[recording]`: how calls are recorded.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RecordingConfig {
    /// `g711` (format tag 6/7, the call's law) or `pcm16`.
    pub format: OutputFormat,
    /// A call with no RTP and no SIP for this long (capture time) ends.
    pub rtp_timeout_secs: u64,
    /// A call is cut after this long.
    pub max_duration_secs: u64,
    /// The `preserved` flag sent with every recording.
    pub preserved: bool,
    /// How long an unanswered INVITE (or one that got a final error) is kept
    /// waiting for an answer or an authenticated retry before it is logged
    /// as unanswered.
    pub unanswered_timeout_secs: u64,
}

/// The WAV sample format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum OutputFormat {
    /// G.711 A-law or u-law, as the call used (format tag 6 or 7).
    #[default]
    G711,
    /// Linear 16-bit PCM (format tag 1).
    Pcm16,
}

/// `[spool]`: the durable queue of finished recordings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SpoolConfig {
    /// Spool directory (holds `tmp/`, `ready/`, ...).
    pub dir: PathBuf,
}

/// `[limits]`: bounds on memory that hostile traffic could otherwise grow.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Dialogs tracked at once; beyond it the oldest unanswered one is dropped.
    pub max_calls: usize,
    /// Largest SIP message accepted, bytes.
    pub max_sip_message_bytes: usize,
    /// IP datagrams being reassembled from fragments at once.
    pub max_fragmented_datagrams: usize,
    /// A partial fragmented datagram is dropped after this long (capture time).
    pub fragment_timeout_secs: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            local_networks: Vec::new(),
            recording: RecordingConfig::default(),
            spool: SpoolConfig::default(),
            users: BTreeMap::new(),
            limits: LimitsConfig::default(),
        }
    }
}

impl Default for RecordingConfig {
    fn default() -> Self {
        RecordingConfig {
            format: OutputFormat::G711,
            rtp_timeout_secs: 60,
            max_duration_secs: 4 * 3600,
            preserved: false,
            unanswered_timeout_secs: 32,
        }
    }
}

impl Default for SpoolConfig {
    fn default() -> Self {
        SpoolConfig {
            dir: PathBuf::from("spool"),
        }
    }
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_calls: 100_000,
            max_sip_message_bytes: 65_535,
            max_fragmented_datagrams: 1024,
            fragment_timeout_secs: 30,
        }
    }
}

/// A configuration file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("cannot read config {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The TOML is invalid, a key is unknown or a value has the wrong type.
    #[error("config {path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What the TOML reader said (names the key and the value).
        message: String,
    },
    /// A value is of the right type but unusable.
    #[error("config: {key} = {value:?}: {why}")]
    Value {
        /// The key, dotted.
        key: &'static str,
        /// The value given.
        value: String,
        /// Why it is unusable.
        why: &'static str,
    },
}

impl Config {
    /// Reads and checks a TOML file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let config: Config = toml::from_str(&text).map_err(|e| ConfigError::Invalid {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Checks values that parse but make no sense.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.recording.rtp_timeout_secs == 0 {
            return Err(ConfigError::Value {
                key: "recording.rtp_timeout_secs",
                value: "0".into(),
                why: "must be at least 1",
            });
        }
        if self.recording.max_duration_secs == 0 {
            return Err(ConfigError::Value {
                key: "recording.max_duration_secs",
                value: "0".into(),
                why: "must be at least 1",
            });
        }
        if self.limits.max_calls == 0 {
            return Err(ConfigError::Value {
                key: "limits.max_calls",
                value: "0".into(),
                why: "must be at least 1",
            });
        }
        if self.spool.dir.as_os_str().is_empty() {
            return Err(ConfigError::Value {
                key: "spool.dir",
                value: String::new(),
                why: "must name a directory",
            });
        }
        Ok(())
    }

    /// True when `addr` is inside one of the local networks.
    pub fn is_local(&self, addr: IpAddr) -> bool {
        self.local_networks.iter().any(|net| net.contains(&addr))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_config_parses() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/taprec.toml");
        let config = Config::load(&path).expect("example config");
        assert!(!config.local_networks.is_empty());
    }

    #[test]
    fn unknown_key_is_named() {
        let err = toml::from_str::<Config>("[recording]\nformt = \"pcm16\"\n").unwrap_err();
        assert!(err.to_string().contains("formt"), "{err}");
    }

    #[test]
    fn bad_cidr_is_named() {
        let err = toml::from_str::<Config>("local_networks = [\"10.0.0.0/33\"]\n").unwrap_err();
        assert!(err.to_string().contains("local_networks"), "{err}");
    }

    #[test]
    fn locality_by_cidr() {
        let config: Config =
            toml::from_str("local_networks = [\"10.1.0.0/16\", \"fd00::/8\"]\n").unwrap();
        assert!(config.is_local("10.1.2.3".parse().unwrap()));
        assert!(!config.is_local("10.2.0.1".parse().unwrap()));
        assert!(config.is_local("fd12::1".parse().unwrap()));
    }
}
