//! Live capture from a network interface through libpcap (the `pcap` crate).
//!
//! On Linux libpcap uses a memory-mapped TPACKET_V3 ring: the kernel writes
//! frames into blocks shared with the process, so reading costs no system
//! call per packet. The BPF filter runs in the kernel. The handle is
//! non-blocking and [`LiveCapture::poll`] waits on its descriptor with a
//! timeout, so a quiet link never blocks the caller (a blocking read with a
//! timeout can wait forever when traffic stops). Nanosecond timestamps are
//! requested. The kernel's counters (received, dropped because the ring was
//! full) come from [`LiveCapture::stats`].

use super::{Frame, LinkType};
use crate::config::CaptureConfig;
use crate::Timestamp;
use std::os::fd::AsRawFd;
use std::time::Duration;

/// Why live capture could not start or continue.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    /// libpcap refused (no such interface, no permission, bad filter...).
    #[error("{what}: {source}")]
    Pcap {
        /// What was being done.
        what: String,
        /// libpcap's error.
        source: pcap::Error,
    },
    /// The interface's link type is not one taprec decodes.
    #[error("interface {interface}: link type {linktype} is not supported")]
    LinkType {
        /// The interface.
        interface: String,
        /// The DLT value.
        linktype: i32,
    },
    /// Waiting on the capture descriptor failed.
    #[error("poll on the capture descriptor: {0}")]
    Poll(std::io::Error),
}

/// The kernel's capture counters since the capture was opened, made
/// monotonic (libpcap's are 32-bit and wrap).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KernelStats {
    /// Packets that passed the filter.
    pub received: u64,
    /// Packets dropped because the ring was full.
    pub dropped: u64,
    /// Packets dropped by the interface or driver.
    pub interface_dropped: u64,
}

/// An open live capture; see the module doc.
pub struct LiveCapture {
    cap: pcap::Capture<pcap::Active>,
    link: LinkType,
    interface: String,
    last_raw: (u32, u32, u32),
    totals: KernelStats,
}

impl LiveCapture {
    /// Opens `config.interface` with the configured ring size, snap length,
    /// promiscuous mode and BPF filter.
    pub fn open(config: &CaptureConfig) -> Result<LiveCapture, LiveError> {
        let interface = config.interface.clone();
        let err = |what: &str| {
            let what = format!("{what} on {interface}");
            move |source| LiveError::Pcap { what, source }
        };
        let buffer = i32::try_from(u64::from(config.buffer_mib) * 1024 * 1024).unwrap_or(i32::MAX);
        let inactive = pcap::Capture::from_device(interface.as_str())
            .map_err(err("cannot find the interface"))?
            .promisc(config.promiscuous)
            .snaplen(i32::try_from(config.snaplen).unwrap_or(65_535))
            .buffer_size(buffer)
            .immediate_mode(false)
            // With TPACKET_V3 a block is handed over when full or after this
            // many milliseconds.
            .timeout(50)
            .precision(pcap::Precision::Nano);
        let mut cap = inactive
            .open()
            .map_err(err("cannot open a capture (needs CAP_NET_RAW)"))?
            .setnonblock()
            .map_err(err("cannot make the capture non-blocking"))?;
        let linktype = cap.get_datalink().0;
        let link = LinkType::from_linktype(linktype).ok_or_else(|| LiveError::LinkType {
            interface: interface.clone(),
            linktype,
        })?;
        if !config.filter.trim().is_empty() {
            cap.filter(&config.filter, true)
                .map_err(err("bad capture.filter"))?;
        }
        Ok(LiveCapture {
            cap,
            link,
            interface,
            last_raw: (0, 0, 0),
            totals: KernelStats::default(),
        })
    }

    /// The interface captured.
    pub fn interface(&self) -> &str {
        &self.interface
    }

    /// The link type of the frames.
    pub fn link(&self) -> LinkType {
        self.link
    }

    /// Waits at most `timeout` until frames are ready (true) or not (false).
    /// Interrupted waits (signals) return false.
    pub fn poll(&self, timeout: Duration) -> Result<bool, LiveError> {
        let mut fds = libc::pollfd {
            fd: self.cap.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
        // SAFETY: one valid pollfd, the count says one.
        let n = unsafe { libc::poll(&mut fds, 1, ms) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                return Ok(false);
            }
            return Err(LiveError::Poll(e));
        }
        Ok(n > 0)
    }

    /// Reads up to `max` frames that are ready now, without waiting, and
    /// hands each to `f`. Returns how many were read (0: nothing ready).
    pub fn read_ready(
        &mut self,
        max: usize,
        mut f: impl FnMut(&Frame<'_>),
    ) -> Result<usize, LiveError> {
        let link = self.link;
        let mut n = 0;
        while n < max {
            match self.cap.next_packet() {
                Ok(packet) => {
                    let h = packet.header;
                    // Nanosecond precision: tv_usec holds nanoseconds.
                    let nanos = u32::try_from(h.ts.tv_usec).unwrap_or(0).min(999_999_999);
                    let frame = Frame {
                        ts: Timestamp::from_parts(h.ts.tv_sec, nanos),
                        link,
                        data: packet.data,
                        original_len: h.len,
                    };
                    f(&frame);
                    n += 1;
                }
                Err(pcap::Error::TimeoutExpired | pcap::Error::NoMorePackets) => break,
                Err(source) => {
                    if n > 0 {
                        break;
                    }
                    return Err(LiveError::Pcap {
                        what: format!("reading from {}", self.interface),
                        source,
                    });
                }
            }
        }
        Ok(n)
    }

    /// The kernel's counters since the capture was opened.
    pub fn stats(&mut self) -> Result<KernelStats, LiveError> {
        let s = self.cap.stats().map_err(|source| LiveError::Pcap {
            what: format!("reading the counters of {}", self.interface),
            source,
        })?;
        let (r, d, i) = self.last_raw;
        self.totals.received += u64::from(s.received.wrapping_sub(r));
        self.totals.dropped += u64::from(s.dropped.wrapping_sub(d));
        self.totals.interface_dropped += u64::from(s.if_dropped.wrapping_sub(i));
        self.last_raw = (s.received, s.dropped, s.if_dropped);
        Ok(self.totals)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_interface_is_a_clear_error() {
        let config = CaptureConfig {
            interface: "taprec-no-such0".into(),
            ..CaptureConfig::default()
        };
        let err = LiveCapture::open(&config).err().expect("no such interface");
        assert!(err.to_string().contains("taprec-no-such0"), "{err}");
    }

    #[test]
    fn default_filter_compiles() {
        // A dead handle compiles BPF without any privilege.
        let dead = pcap::Capture::dead(pcap::Linktype::ETHERNET).unwrap();
        dead.compile(crate::config::DEFAULT_CAPTURE_FILTER, true)
            .expect("default filter compiles");
    }

    #[test]
    fn loopback_capture_reads_and_never_hangs() {
        // Needs CAP_NET_RAW: skipped without it unless CI is set.
        let config = CaptureConfig {
            interface: "lo".into(),
            filter: "udp and dst port 47999".into(),
            buffer_mib: 2,
            ..CaptureConfig::default()
        };
        let mut cap = match LiveCapture::open(&config) {
            Ok(c) => c,
            Err(e) if std::env::var_os("CI").is_none() => {
                eprintln!("skipped: {e}");
                return;
            }
            Err(e) => panic!("live capture on lo: {e}"),
        };
        // Quiet link: poll returns within its timeout.
        let t = std::time::Instant::now();
        let _ = cap.poll(Duration::from_millis(100)).unwrap();
        assert!(t.elapsed() < Duration::from_secs(2));
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        for _ in 0..5 {
            sock.send_to(b"\x80\x00hello", "127.0.0.1:47999").unwrap();
        }
        let mut seen = 0;
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while seen < 5 && std::time::Instant::now() < deadline {
            cap.poll(Duration::from_millis(100)).unwrap();
            seen += cap
                .read_ready(64, |f| {
                    assert_eq!(f.link, LinkType::Ethernet);
                    assert!(f.data.ends_with(b"hello"));
                    assert!(f.ts.nanos() > 1_600_000_000_000_000_000);
                })
                .unwrap();
        }
        assert_eq!(seen, 5);
        let stats = cap.stats().unwrap();
        assert!(stats.received >= 5, "{stats:?}");
        assert_eq!(stats.dropped, 0);
    }
}
