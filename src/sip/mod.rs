//! SIP messages and SDP bodies: a tolerant, zero-copy scanner of the few
//! fields a passive recorder needs, and a line reader for SDP.

pub mod message;
pub mod sctp;
pub mod sdp;
pub mod stream;

pub use message::{looks_like_sip, CSeq, Limits, Message, Method, NameAddr, SipError, StartLine};
pub use sdp::{Direction, Media, MediaKind, MediaProtocol, Origin, RtpMap, SessionDescription};
