//! taprec: a passive SIP/RTP call recorder.
//!
//! The crate is laid out as the pipeline it implements. Everything from `decode`
//! to `media` is sans-IO: it takes bytes and a capture timestamp in, and never
//! touches sockets, files or the system clock, so replaying a pcap and capturing
//! live run the same code, faster than real time, and tests are deterministic.
//!
//! ```text
//! capture (pcap/pcapng file)          capture::file
//!   -> decode (link, IP, fragments, UDP, RTP)   decode
//!   -> SIP messages and SDP bodies              sip
//!   -> call table, dialogs, media index         call
//!   -> per-call timeline, G.711, WAV            media
//!   -> Recorder: ties the above together        recorder
//!   -> spool (ready/<id>.wav + ready/<id>.json) spool
//! ```
//!
//! The run loop, as `taprec replay` drives it:
//!
//! ```no_run
//! use taprec::{capture::file::FileReader, config::Config, recorder::Recorder, spool::Spool};
//! # fn main() -> anyhow::Result<()> {
//! let config = Config::default();
//! let spool = Spool::open(&config.spool.dir)?;
//! let mut recorder = Recorder::new(&config, spool);
//! let mut reader = FileReader::open("pcaps/demo.pcap")?;
//! while let Some(frame) = reader.next_frame()? {
//!     recorder.handle_frame(&frame);
//! }
//! recorder.finish();
//! # Ok(()) }
//! ```

// Code that reads outside bytes (captures, frames, SIP, SDP, RTP) may not
// unwrap, expect or index unchecked: it must never panic on input. Denied
// here for capture, decode, sip and the recorder, and per module in media
// (g711, timeline, wav) and call (every module).
pub mod call;
#[cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)
)]
pub mod capture;
pub mod cli;
pub mod config;
#[cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)
)]
pub mod decode;
#[cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]
pub mod media;
pub mod memory_store;
pub mod metrics;
pub mod mock_api;
pub mod prefetch;
pub mod ratelimit;
#[cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)
)]
pub mod recorder;
pub mod service;
#[cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)
)]
pub mod sip;
pub mod spool;
pub mod synth;
pub mod time;
pub mod upload;
pub mod write_behind;

pub use time::Timestamp;
