//! Call tracking: SIP dialogs ([`dialog`]), the media index that maps RTP
//! addresses to call legs ([`media_index`]), who is local and what the
//! recording's metadata says ([`parties`], [`metadata`]).
//!
//! Nothing here does I/O; time is always the capture time passed in.

pub mod dedup;
pub mod dialog;
pub mod identity;
pub mod legs;
pub mod media_index;
pub mod metadata;
pub mod parties;
pub mod settings;

pub use dialog::{Dialog, DialogEvent, EndReason, Role};
pub use media_index::MediaIndex;
pub use metadata::Metadata;
