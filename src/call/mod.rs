//! Call tracking: SIP dialogs, the media index that maps RTP addresses to call
//! legs, and who is local.
