//! SIP message parsing: one datagram, or a stream of messages back to back.
#![no_main]

use libfuzzer_sys::fuzz_target;
use taprec::sip::message::{looks_like_sip, Limits, Message};

fn check(msg: &Message<'_>, input: &[u8], consumed: usize, limits: &Limits) {
    assert!(consumed <= input.len());
    assert!(consumed > 0);
    assert!(msg.raw().len() <= consumed);
    assert!(msg.raw().len() <= limits.max_message_size);
    assert!(msg.body().len() <= msg.raw().len());
    assert!(msg.fields().count() <= limits.max_headers);
    let _ = (
        msg.start_line(),
        msg.is_request(),
        msg.method(),
        msg.status(),
    );
    let _ = (
        msg.call_id(),
        msg.from(),
        msg.to(),
        msg.cseq(),
        msg.via_branch(),
    );
    let _ = (msg.contact(), msg.p_asserted_identity(), msg.content_type());
    let _ = msg.sdp_body();
    for (name, value) in msg.fields() {
        assert!(name.len() + value.len() <= msg.raw().len() + value.len());
        let _ = msg.header(name);
    }
}

fuzz_target!(|data: &[u8]| {
    let _ = looks_like_sip(data);
    let default = Limits::default();
    if let Ok((msg, consumed)) = Message::parse(data) {
        check(&msg, data, consumed, &default);
    }
    // Tight limits, and a stream of messages (as over TCP).
    let tight = Limits {
        max_message_size: 2048,
        max_headers: 16,
        max_line_len: 256,
    };
    let mut rest = data;
    let mut messages = 0;
    while let Ok((msg, consumed)) = Message::parse_with_limits(rest, &tight) {
        check(&msg, rest, consumed, &tight);
        rest = &rest[consumed..];
        messages += 1;
        assert!(messages <= data.len());
    }
});
