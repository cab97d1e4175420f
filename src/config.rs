//! Configuration: a TOML file (documented example in `config/taprec.toml`),
//! every key of which the CLI can override. Unknown keys are errors, and every
//! error names the key and the value.

use ipnet::IpNet;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// The whole configuration.
#[derive(Debug, Clone, Default, Deserialize)]
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
    /// Delivery of recordings to the recording API.
    #[serde(default)]
    pub upload: UploadConfig,
    /// Live capture (`taprec run`).
    #[serde(default)]
    pub capture: CaptureConfig,
    /// The long-running service (`taprec run`): metrics endpoint, shutdown.
    #[serde(default)]
    pub service: ServiceConfig,
    /// Duplicate packets and calls seen on several hops.
    pub dedup: crate::call::settings::DedupConfig,
    /// Calls crossing a B2BUA as several legs.
    pub b2bua: crate::call::settings::B2buaConfig,
    /// Phone number rewriting and calls between local parties.
    pub numbers: crate::call::settings::NumbersConfig,
}

/// The BPF filter used when `capture.filter` is not set: every UDP datagram
/// (SIP and RTP on any port, IPv4 fragments), IPv6 fragments, SIP over TCP
/// on the usual ports, and the same inside one VLAN tag.
pub const DEFAULT_CAPTURE_FILTER: &str = "udp or (ip6 and ip6[6] == 44) \
or (tcp and (port 5060 or port 5061 or port 5080)) \
or (vlan and (udp or (ip6 and ip6[6] == 44) or (tcp and (port 5060 or port 5061 or port 5080))))";

/// `[capture]`: live capture from a network interface (`taprec run`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CaptureConfig {
    /// The interface to capture from (a mirror/SPAN port), e.g. `eth1`.
    pub interface: String,
    /// BPF filter applied in the kernel; empty captures everything.
    pub filter: String,
    /// Put the interface in promiscuous mode (needed on a mirror port).
    pub promiscuous: bool,
    /// Size of the kernel's memory-mapped capture ring, MiB.
    pub buffer_mib: u32,
    /// Bytes kept of each frame.
    pub snaplen: u32,
    /// Packets queued between the capture thread and the recorder thread;
    /// beyond it packets are dropped and counted.
    pub queue_packets: usize,
}

impl Default for CaptureConfig {
    fn default() -> Self {
        CaptureConfig {
            interface: String::new(),
            filter: DEFAULT_CAPTURE_FILTER.to_string(),
            promiscuous: true,
            buffer_mib: 64,
            snaplen: 65_535,
            queue_packets: 262_144,
        }
    }
}

/// `[service]`: the running service.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServiceConfig {
    /// `host:port` of the HTTP endpoint serving `/metrics` (Prometheus text)
    /// and `/health`; empty disables it. Keep it on loopback.
    pub metrics_listen: String,
    /// On SIGTERM, seconds to keep uploading what is ready before exiting
    /// (what is left stays queued in the spool for the next start).
    pub shutdown_upload_secs: u64,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig {
            metrics_listen: "127.0.0.1:9187".to_string(),
            shutdown_upload_secs: 10,
        }
    }
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
    /// Keep (as silence) the recording of an answered call none of whose
    /// RTP was seen; by default such a call is reported, not recorded.
    pub keep_calls_without_media: bool,
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
    /// Quota in bytes: new recordings are refused (loudly, and counted)
    /// while the spool holds this much; 0 means no quota.
    pub max_bytes: u64,
}

/// `[upload]`: delivery of spooled recordings to the recording API.
///
/// Secrets (`password`, `bearer_token`) never appear in `Debug` output or logs.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UploadConfig {
    /// The API endpoint, e.g.
    /// `https://recorder.example/fw/Apps/Recorder/WebAPI/Recordings`;
    /// empty: recordings stay in the spool.
    pub url: String,
    /// Uploads in flight at once.
    pub concurrency: usize,
    /// Seconds to establish a connection (TCP and TLS).
    pub connect_timeout_secs: u64,
    /// Seconds without progress (sending the file, or waiting for the answer
    /// after it was sent) after which an attempt is abandoned and retried.
    pub idle_timeout_secs: u64,
    /// First retry delay after a server error, timeout or connection error,
    /// milliseconds; doubled at each failure, with jitter.
    pub retry_initial_ms: u64,
    /// Longest retry delay, seconds.
    pub retry_max_secs: u64,
    /// Delay between attempts while the server answers 401 (credentials), seconds.
    pub unauthorized_retry_secs: u64,
    /// Largest file the server accepts; longer recordings are split into
    /// consecutive parts no larger than this. The API's limit is 256 MiB.
    pub max_file_bytes: u64,
    /// Seconds a delivered recording is kept in `sent/`; 0 deletes it as soon
    /// as the server accepted it.
    pub sent_retention_secs: u64,
    /// How long `taprec upload` and `taprec replay` wait for the spool to
    /// drain before giving up (what is left stays queued), seconds.
    pub wait_secs: u64,
    /// HTTP basic auth user name (with `password` or `password_file`).
    pub username: String,
    /// HTTP basic auth password.
    pub password: String,
    /// File holding the basic auth password (trailing newline ignored).
    pub password_file: Option<PathBuf>,
    /// Bearer token sent as `Authorization: Bearer ...`.
    pub bearer_token: String,
    /// File holding the bearer token (trailing newline ignored).
    pub bearer_token_file: Option<PathBuf>,
    /// PEM file of the CA(s) to trust for https instead of the system's.
    pub ca_file: Option<PathBuf>,
    /// Accept any server certificate (self-signed): only for tests and labs.
    pub insecure_accept_invalid_certs: bool,
}

impl Default for UploadConfig {
    fn default() -> Self {
        UploadConfig {
            url: String::new(),
            concurrency: 4,
            connect_timeout_secs: 10,
            idle_timeout_secs: 60,
            retry_initial_ms: 1000,
            retry_max_secs: 300,
            unauthorized_retry_secs: 300,
            max_file_bytes: 256 * 1024 * 1024,
            sent_retention_secs: 7 * 86_400,
            wait_secs: 600,
            username: String::new(),
            password: String::new(),
            password_file: None,
            bearer_token: String::new(),
            bearer_token_file: None,
            ca_file: None,
            insecure_accept_invalid_certs: false,
        }
    }
}

impl std::fmt::Debug for UploadConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redact = |s: &str| if s.is_empty() { "" } else { "<redacted>" };
        f.debug_struct("UploadConfig")
            .field("url", &self.url)
            .field("concurrency", &self.concurrency)
            .field("connect_timeout_secs", &self.connect_timeout_secs)
            .field("idle_timeout_secs", &self.idle_timeout_secs)
            .field("retry_initial_ms", &self.retry_initial_ms)
            .field("retry_max_secs", &self.retry_max_secs)
            .field("unauthorized_retry_secs", &self.unauthorized_retry_secs)
            .field("max_file_bytes", &self.max_file_bytes)
            .field("sent_retention_secs", &self.sent_retention_secs)
            .field("wait_secs", &self.wait_secs)
            .field("username", &self.username)
            .field("password", &redact(&self.password))
            .field("password_file", &self.password_file)
            .field("bearer_token", &redact(&self.bearer_token))
            .field("bearer_token_file", &self.bearer_token_file)
            .field("ca_file", &self.ca_file)
            .field(
                "insecure_accept_invalid_certs",
                &self.insecure_accept_invalid_certs,
            )
            .finish()
    }
}

impl UploadConfig {
    /// Checks values that parse but make no sense.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let value = |key: &'static str, value: String, why: &'static str| {
            Err(ConfigError::Value { key, value, why })
        };
        let scheme_ok = self.url.starts_with("http://") || self.url.starts_with("https://");
        if !self.url.is_empty() && !scheme_ok {
            return value(
                "upload.url",
                self.url.clone(),
                "must start with http:// or https://",
            );
        }
        if self.concurrency == 0 {
            return value("upload.concurrency", "0".into(), "must be at least 1");
        }
        if self.idle_timeout_secs == 0 {
            return value("upload.idle_timeout_secs", "0".into(), "must be at least 1");
        }
        if self.connect_timeout_secs == 0 {
            return value(
                "upload.connect_timeout_secs",
                "0".into(),
                "must be at least 1",
            );
        }
        if self.max_file_bytes < 64 * 1024 {
            return value(
                "upload.max_file_bytes",
                self.max_file_bytes.to_string(),
                "must be at least 65536",
            );
        }
        let basic = !self.password.is_empty() || self.password_file.is_some();
        let bearer = !self.bearer_token.is_empty() || self.bearer_token_file.is_some();
        if !self.password.is_empty() && self.password_file.is_some() {
            return value(
                "upload.password_file",
                "(set)".into(),
                "give password or password_file, not both",
            );
        }
        if !self.bearer_token.is_empty() && self.bearer_token_file.is_some() {
            return value(
                "upload.bearer_token_file",
                "(set)".into(),
                "give bearer_token or bearer_token_file, not both",
            );
        }
        if basic && self.username.is_empty() {
            return value(
                "upload.username",
                String::new(),
                "basic auth needs a user name",
            );
        }
        if basic && bearer {
            return value(
                "upload.bearer_token",
                "(set)".into(),
                "use basic auth or a bearer token, not both",
            );
        }
        Ok(())
    }
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
    /// Most header fields in one SIP message; more and it is dropped.
    pub max_sip_headers: usize,
    /// Most `m=` sections kept from one SDP body (1..=1024); later ones are
    /// dropped and counted.
    pub max_sdp_media_lines: usize,
    /// Media (RTP) source and destination addresses tracked per call, SDP and
    /// learned (symmetric RTP); beyond it the oldest is forgotten.
    pub max_streams_per_call: usize,
    /// New calls per second one source IP address may start (token bucket;
    /// 0 = no limit). Calls over it are not tracked.
    pub new_calls_per_second_per_source: u32,
    /// Burst of new calls one source may start at once.
    pub new_call_burst_per_source: u32,
    /// Source addresses the new-call rate limiter remembers at once.
    pub max_rate_limited_sources: usize,
    // Pending (reordered) RTP is bounded by the timeline ring, not a key:
    // about 1.5 s of samples per channel per recording.
    /// SIP over TCP/WebSocket: bytes buffered per connection direction.
    pub tcp_max_stream_bytes: usize,
    /// SIP over TCP/WebSocket: connection directions tracked at once.
    pub tcp_max_streams: usize,
    /// SIP over TCP/WebSocket: bytes buffered by all connections together.
    pub tcp_max_total_bytes: usize,
    /// SIP over TCP/WebSocket: a connection without segments for this long
    /// (capture time) is forgotten.
    pub tcp_idle_timeout_secs: u64,
}

impl Default for RecordingConfig {
    fn default() -> Self {
        RecordingConfig {
            format: OutputFormat::G711,
            rtp_timeout_secs: 60,
            max_duration_secs: 4 * 3600,
            preserved: false,
            keep_calls_without_media: false,
            unanswered_timeout_secs: 32,
        }
    }
}

impl Default for SpoolConfig {
    fn default() -> Self {
        SpoolConfig {
            dir: PathBuf::from("spool"),
            max_bytes: 0,
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
            max_sip_headers: crate::sip::message::MAX_HEADERS,
            max_sdp_media_lines: crate::sip::sdp::MAX_MEDIA,
            max_streams_per_call: 16,
            new_calls_per_second_per_source: 200,
            new_call_burst_per_source: 400,
            max_rate_limited_sources: 65_536,
            tcp_max_stream_bytes: 256 * 1024,
            tcp_max_streams: 10_000,
            tcp_max_total_bytes: 64 << 20,
            tcp_idle_timeout_secs: 300,
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
        if !(1..=1024).contains(&self.limits.max_sdp_media_lines) {
            return Err(ConfigError::Value {
                key: "limits.max_sdp_media_lines",
                value: self.limits.max_sdp_media_lines.to_string(),
                why: "must be 1..=1024",
            });
        }
        for (key, value) in [
            (
                "limits.max_sip_message_bytes",
                self.limits.max_sip_message_bytes,
            ),
            ("limits.max_sip_headers", self.limits.max_sip_headers),
            (
                "limits.max_streams_per_call",
                self.limits.max_streams_per_call,
            ),
            (
                "limits.max_rate_limited_sources",
                self.limits.max_rate_limited_sources,
            ),
        ] {
            if value == 0 {
                return Err(ConfigError::Value {
                    key,
                    value: "0".into(),
                    why: "must be at least 1",
                });
            }
        }
        self.upload.validate()?;
        self.validate_live()?;
        if self.spool.dir.as_os_str().is_empty() {
            return Err(ConfigError::Value {
                key: "spool.dir",
                value: String::new(),
                why: "must name a directory",
            });
        }
        Ok(())
    }

    fn validate_live(&self) -> Result<(), ConfigError> {
        let c = &self.capture;
        if c.buffer_mib == 0 || c.buffer_mib > 4096 {
            return Err(ConfigError::Value {
                key: "capture.buffer_mib",
                value: c.buffer_mib.to_string(),
                why: "must be between 1 and 4096",
            });
        }
        if c.snaplen < 128 || c.snaplen > 262_144 {
            return Err(ConfigError::Value {
                key: "capture.snaplen",
                value: c.snaplen.to_string(),
                why: "must be between 128 and 262144",
            });
        }
        if c.queue_packets < 1024 {
            return Err(ConfigError::Value {
                key: "capture.queue_packets",
                value: c.queue_packets.to_string(),
                why: "must be at least 1024",
            });
        }
        let listen = &self.service.metrics_listen;
        if !listen.is_empty() && listen.parse::<std::net::SocketAddr>().is_err() {
            return Err(ConfigError::Value {
                key: "service.metrics_listen",
                value: listen.clone(),
                why: "must be an address and port such as 127.0.0.1:9187, or empty",
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
    fn upload_section_is_checked_and_secrets_are_redacted() {
        let config: Config = toml::from_str(
            "[upload]\nurl = \"http://127.0.0.1:1/x\"\nusername = \"u\"\npassword = \"s3cret\"\n",
        )
        .unwrap();
        config.validate().unwrap();
        assert!(!format!("{config:?}").contains("s3cret"));
        let err = toml::from_str::<Config>("[upload]\nconcurency = 2\n").unwrap_err();
        assert!(err.to_string().contains("concurency"), "{err}");
        let bad: Config = toml::from_str("[upload]\nurl = \"ftp://x\"\n").unwrap();
        assert!(bad
            .validate()
            .unwrap_err()
            .to_string()
            .contains("upload.url"));
        let no_user: Config = toml::from_str("[upload]\npassword = \"p\"\n").unwrap();
        assert!(no_user.validate().is_err());
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
