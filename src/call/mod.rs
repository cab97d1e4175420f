//! Call tracking: SIP dialogs ([`dialog`]), the media index that maps RTP
//! addresses to call legs ([`media_index`]), who is local and what the
//! recording's metadata says ([`parties`], [`metadata`]).
//!
//! Nothing here does I/O; time is always the capture time passed in.

// Unchecked indexing is denied in every module: all of them see values from
// SIP, SDP or RTP.
#[cfg_attr(not(test), deny(clippy::indexing_slicing))]
pub mod dedup;
#[cfg_attr(not(test), deny(clippy::indexing_slicing))]
pub mod dialog;
#[cfg_attr(not(test), deny(clippy::indexing_slicing))]
pub mod identity;
#[cfg_attr(not(test), deny(clippy::indexing_slicing))]
pub mod legs;
#[cfg_attr(not(test), deny(clippy::indexing_slicing))]
pub mod media_index;
#[cfg_attr(not(test), deny(clippy::indexing_slicing))]
pub mod metadata;
#[cfg_attr(not(test), deny(clippy::indexing_slicing))]
pub mod parties;
#[cfg_attr(not(test), deny(clippy::indexing_slicing))]
pub mod settings;

pub use dialog::{Dialog, DialogEvent, EndReason, Role};
pub use media_index::MediaIndex;
pub use metadata::Metadata;
