//! Command-line overrides shared by `taprec replay` and `taprec run`: every
//! recording key of the config can be given as a flag.

use crate::config::{Config, OutputFormat};
use ipnet::IpNet;
use std::path::PathBuf;

/// Flags that override the recording part of the config.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct RecordingOverrides {
    /// Local network (CIDR), repeatable; replaces `local_networks`.
    #[arg(long = "local-net", value_name = "CIDR")]
    pub local_nets: Vec<IpNet>,
    /// Spool directory (`spool.dir`).
    #[arg(long)]
    pub spool: Option<PathBuf>,
    /// WAV sample format (`recording.format`).
    #[arg(long, value_enum)]
    pub format: Option<OutputFormat>,
    /// Seconds without RTP or SIP that end a call (`recording.rtp_timeout_secs`).
    #[arg(long, value_name = "SECS")]
    pub rtp_timeout: Option<u64>,
    /// Maximum call length in seconds (`recording.max_duration_secs`).
    #[arg(long, value_name = "SECS")]
    pub max_duration: Option<u64>,
    /// Seconds an unanswered INVITE is kept (`recording.unanswered_timeout_secs`).
    #[arg(long, value_name = "SECS")]
    pub unanswered_timeout: Option<u64>,
    /// Mark recordings as preserved (`recording.preserved`).
    #[arg(long)]
    pub preserved: bool,
    /// Keep a silent recording of answered calls none of whose RTP was seen
    /// (`recording.keep_calls_without_media`).
    #[arg(long)]
    pub keep_calls_without_media: bool,
    /// Local number to username, repeatable: `--user 1001=mario_rossi` (`[users]`).
    #[arg(long = "user", value_name = "NUMBER=NAME", value_parser = parse_user)]
    pub users: Vec<(String, String)>,
    /// Dialogs tracked at once (`limits.max_calls`).
    #[arg(long, value_name = "N")]
    pub max_calls: Option<usize>,
}

impl RecordingOverrides {
    /// Applies the flags that were given to `config`.
    pub fn apply(&self, config: &mut Config) {
        if !self.local_nets.is_empty() {
            config.local_networks = self.local_nets.clone();
        }
        if let Some(dir) = &self.spool {
            config.spool.dir = dir.clone();
        }
        let recording = &mut config.recording;
        if let Some(format) = self.format {
            recording.format = format;
        }
        if let Some(v) = self.rtp_timeout {
            recording.rtp_timeout_secs = v;
        }
        if let Some(v) = self.max_duration {
            recording.max_duration_secs = v;
        }
        if let Some(v) = self.unanswered_timeout {
            recording.unanswered_timeout_secs = v;
        }
        recording.preserved |= self.preserved;
        recording.keep_calls_without_media |= self.keep_calls_without_media;
        for (number, name) in &self.users {
            config.users.insert(number.clone(), name.clone());
        }
        if let Some(v) = self.max_calls {
            config.limits.max_calls = v;
        }
    }
}

/// Parses `NUMBER=NAME` for `--user`.
pub fn parse_user(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((n, u)) if !n.is_empty() && !u.is_empty() => Ok((n.to_string(), u.to_string())),
        _ => Err(format!("expected NUMBER=NAME, got {s:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_given_flags_change_the_config() {
        let mut config = Config::default();
        let before = format!("{config:?}");
        RecordingOverrides::default().apply(&mut config);
        assert_eq!(format!("{config:?}"), before);
        let flags = RecordingOverrides {
            local_nets: vec!["10.0.0.0/8".parse().unwrap()],
            rtp_timeout: Some(5),
            keep_calls_without_media: true,
            users: vec![parse_user("1001=anna").unwrap()],
            ..RecordingOverrides::default()
        };
        flags.apply(&mut config);
        assert_eq!(config.recording.rtp_timeout_secs, 5);
        assert!(config.recording.keep_calls_without_media);
        assert_eq!(config.users["1001"], "anna");
        assert!(config.is_local("10.1.2.3".parse().unwrap()));
        assert!(parse_user("1001").is_err() && parse_user("=x").is_err());
    }
}
