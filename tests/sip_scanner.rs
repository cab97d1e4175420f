//! Scenario tests for the SIP scanner and SDP reader: a real multi-part
//! message (SIP over SCTP with SDP + ISUP), TCP-style framing, a cross-check
//! against a full SIP parser (ezk-sip-types) on generated messages, and
//! no-panic properties on arbitrary bytes.

use std::net::{IpAddr, Ipv4Addr};

use proptest::prelude::*;
use taprec::sip::message::{looks_like_sip, CSeq, Message, Method, SipError, StartLine};
use taprec::sip::sdp::{MediaProtocol, SessionDescription};

/// The INVITE of /work/shared/pcaps/external/sip-over-sctp-sll-isup.pcap
/// (reassembled from its SCTP chunks): multipart/mixed with SDP and binary ISUP.
const SCTP_MULTIPART_INVITE: &[u8] = b"INVITE sip:9275890000@VMSSM;user=phone SIP/2.0\r\n\
Content-Length:657\r\n\
From:<sip:9171969136@astrakhan.megafonvolga.ru;user=phone>;tag=9Ub.i1YV7Yag2._5\r\n\
To:<sip:9275890000@VMSSM;user=phone>\r\n\
Via:SIP/2.0/SCTP 10.249.30.11:5060;branch=z9hG4bKXfVD0C87Be5AV626;yop=00.00.08D69D07.0000.7008\r\n\
Call-ID:717B2539AD2002C9152DC497@0870ffffffff\r\n\
CSeq:1 INVITE\r\n\
Max-Forwards:70\r\n\
Route:<sip:VMSSM:5060;transport=SCTP;lr>\r\n\
Record-Route:<sip:AAQACCENwAAArAAAAEQAAfB4K@10.249.30.11:5060;yop=00.00.08D69D07.0000.7008;transport=SCTP;lr>\r\n\
Request-Disposition:no-fork\r\n\
P-Asserted-Identity:<sip:9171969136@astrakhan.megafonvolga.ru;user=phone>,<tel:9171969136;phone-context=+7>\r\n\
Session-Expires:1800;refresher=uac\r\n\
Contact:<sip:7008@10.249.30.11:5060;transport=SCTP;yop=00.00.08D69D07.0000.7008>\r\n\
Supported:100rel,timer\r\n\
Allow:ACK,BYE,CANCEL,INFO,INVITE,NOTIFY,OPTIONS,PRACK,UPDATE\r\n\
P-Charging-Vector:icid-value=l3IAkHDw~~~~~~~~~~~~~0OHYPQA;icid-generated-at=10.249.30.11;orig-ioi=astrakhan.megafonvolga.ru\r\n\
P-Early-Media:supported\r\n\
Content-Type:multipart/mixed;boundary=8AF759A68474B6758999EB624E30C5271AF8251E\r\n\
MIME-Version:1.0\r\n\
\r\n\
--8AF759A68474B6758999EB624E30C5271AF8251E\r\n\
Content-Type:application/sdp\r\n\
Content-Disposition:session;handling=required\r\n\
\r\n\
v=0\r\n\
o=- 0 0 IN IP4 10.249.30.2\r\n\
s=-\r\n\
c=IN IP4 10.249.30.145\r\n\
t=0 0\r\n\
m=audio 38060 RTP/AVP 8 13 96\r\n\
b=AS:80\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:13 CN/8000\r\n\
a=rtpmap:96 telephone-event/8000\r\n\
a=ptime:20\r\n\
a=maxptime:20\r\n\
a=3gOoBTC\r\n\
\r\n\
--8AF759A68474B6758999EB624E30C5271AF8251E\r\n\
Content-Type:application/ISUP;base=itu-t92+;version=itu-t92+\r\n\
Content-Disposition:signal;handling=required\r\n\
Content-Transfer-Encoding:binary\r\n\
\r\n\
\x01\x00 \x01\n\
\x00\x02\n\
\x08\x83\x10)W\x98\x00\x00\x0f\n\
\x07\x03\x13\x19\x17i\x19c\x0b\x07\x03\x14)W\x86\x15\"\x13\x02\x03\x11(\x07\x03\x14)W\x86\x15\"\x1d\x03\x80\x90\xa31\x02\x00Zo\x08\x84\x14\x97r\x85\x09\x00\x009\x041\xd0o\xc0\x00\r\n\
--8AF759A68474B6758999EB624E30C5271AF8251E--";

#[test]
fn sctp_multipart_invite() {
    assert!(looks_like_sip(SCTP_MULTIPART_INVITE));
    let (msg, consumed) = Message::parse(SCTP_MULTIPART_INVITE).unwrap();
    assert_eq!(consumed, SCTP_MULTIPART_INVITE.len());
    assert_eq!(msg.body().len(), 657);
    assert_eq!(
        msg.start_line(),
        StartLine::Request {
            method: Method::Invite,
            uri: "sip:9275890000@VMSSM;user=phone"
        }
    );
    assert_eq!(msg.call_id(), Some("717B2539AD2002C9152DC497@0870ffffffff"));
    assert_eq!(
        msg.cseq(),
        Some(CSeq {
            number: 1,
            method: Method::Invite
        })
    );
    let from = msg.from().unwrap();
    assert_eq!(from.user, Some("9171969136"));
    assert_eq!(from.host, Some("astrakhan.megafonvolga.ru"));
    assert_eq!(from.tag, Some("9Ub.i1YV7Yag2._5"));
    let to = msg.to().unwrap();
    assert_eq!(to.user, Some("9275890000"));
    assert_eq!(to.tag, None);
    assert_eq!(msg.via_branch(), Some("z9hG4bKXfVD0C87Be5AV626"));
    let pai = msg.p_asserted_identity().unwrap();
    assert_eq!(
        pai.uri,
        "sip:9171969136@astrakhan.megafonvolga.ru;user=phone"
    );
    assert_eq!(msg.contact().unwrap().user, Some("7008"));
    assert_eq!(msg.content_type(), Some("multipart/mixed"));
    assert_eq!(msg.header("d").as_deref(), Some("no-fork"));
    assert_eq!(msg.header("x").as_deref(), Some("1800;refresher=uac"));

    let sdp = msg.sdp_body().unwrap();
    assert!(sdp.starts_with(b"v=0\r\n"));
    // The CRLF before the next delimiter belongs to the delimiter (RFC 2046).
    assert!(sdp.ends_with(b"a=maxptime:20\r\na=3gOoBTC\r\n"));
    assert!(!sdp.ends_with(b"\r\n\r\n"));
    let sd = SessionDescription::parse(sdp);
    assert_eq!(
        sd.connection,
        Some(IpAddr::V4(Ipv4Addr::new(10, 249, 30, 145)))
    );
    let audio = sd.audio().unwrap();
    assert_eq!(audio.port, 38060);
    assert_eq!(audio.protocol, MediaProtocol::Rtp);
    assert_eq!(audio.payload_types, [8, 13, 96]);
    assert_eq!(audio.encoding(96), Some("telephone-event"));
    assert_eq!(audio.ptime, Some(20));
}

/// Modelled on sip-over-tcp-pcma-cn-two-way.pcap: several messages on one TCP
/// connection, arriving in arbitrary segments.
#[test]
fn tcp_stream_framing() {
    let invite: &[u8] = b"INVITE sip:6050@10.33.6.101 SIP/2.0\r\n\
Via: SIP/2.0/TCP 10.33.6.100:64802;branch=z9hG4bKac1\r\n\
From: <sip:6000@10.33.6.100>;tag=1c1\r\n\
To: <sip:6050@10.33.6.101>\r\n\
Call-ID: 11@10.33.6.100\r\n\
CSeq: 1 INVITE\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 87\r\n\
\r\n\
v=0\r\n\
o=- 1 1 IN IP4 10.33.6.100\r\n\
s=-\r\n\
c=IN IP4 10.33.6.100\r\n\
m=audio 6000 RTP/AVP 8 13\r\n";
    let ack: &[u8] = b"ACK sip:6050@10.33.6.101 SIP/2.0\r\n\
Via: SIP/2.0/TCP 10.33.6.100:64802;branch=z9hG4bKac2\r\n\
Call-ID: 11@10.33.6.100\r\n\
CSeq: 1 ACK\r\n\
Content-Length: 0\r\n\
\r\n";
    let stream = [invite, ack].concat();
    // Feed the stream in every possible 2-segment split; the reader keeps
    // unconsumed bytes and parses again when more arrive.
    for split in 0..stream.len() {
        let mut buf = Vec::new();
        let mut seen = Vec::new();
        for segment in [&stream[..split], &stream[split..]] {
            buf.extend_from_slice(segment);
            loop {
                match Message::parse(&buf) {
                    Ok((msg, used)) => {
                        seen.push((
                            msg.method().map(|m| m.as_str().to_owned()),
                            msg.sdp_body().map(<[u8]>::len),
                        ));
                        buf.drain(..used);
                    }
                    Err(SipError::Truncated) => break,
                    Err(e) => panic!("split {split}: {e}"),
                }
            }
        }
        assert!(buf.is_empty(), "split {split}");
        assert_eq!(
            seen,
            [
                (Some("INVITE".to_owned()), Some(87)),
                (Some("ACK".to_owned()), None)
            ],
            "split {split}"
        );
    }
}

// ---------------------------------------------------------------------------
// Generated well-formed messages, cross-checked against ezk-sip-types.

#[derive(Debug, Clone)]
struct Generated {
    text: Vec<u8>,
    call_id: String,
    cseq: u32,
    method: String,
    from_user: String,
    from_tag: String,
    to_user: String,
    to_tag: Option<String>,
}

fn token() -> impl Strategy<Value = String> {
    "[A-Za-z0-9][A-Za-z0-9.!_~+-]{0,15}"
}

fn host() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z][a-z0-9]{0,8}(\\.[a-z]{2,5}){0,2}",
        (any::<u8>(), any::<u8>(), any::<u8>(), 1u8..255)
            .prop_map(|(a, b, c, d)| format!("{a}.{b}.{c}.{d}")),
    ]
}

fn method() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("INVITE".to_owned()),
        Just("ACK".to_owned()),
        Just("BYE".to_owned()),
        Just("CANCEL".to_owned()),
        Just("OPTIONS".to_owned()),
        Just("UPDATE".to_owned()),
        "[A-Z]{3,10}",
    ]
}

fn display_name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        "[A-Za-z][A-Za-z0-9]{0,8}".prop_map(|n| format!("{n} ")),
        "[A-Za-z0-9 ,.]{0,12}".prop_map(|n| format!("\"{n}\" ")),
    ]
}

prop_compose! {
    fn generated()(
        call_id in "[A-Za-z0-9-]{1,24}(@[a-z0-9.]{1,15})?",
        cseq in any::<u32>(),
        method in method(),
        from_user in "[a-z0-9+][a-z0-9.-]{0,10}",
        from_host in host(),
        from_name in display_name(),
        from_tag in token(),
        to_user in "[a-z0-9+][a-z0-9.-]{0,10}",
        to_host in host(),
        to_name in display_name(),
        to_tag in proptest::option::of(token()),
        branch in "[A-Za-z0-9]{1,16}",
        compact in proptest::collection::vec(any::<bool>(), 6),
        lowercase in any::<bool>(),
        space_before_colon in any::<bool>(),
        fold_from in any::<bool>(),
        lf_only in any::<bool>(),
        order in Just((0..7usize).collect::<Vec<_>>()).prop_shuffle(),
        body in "[a-z=0-9 ]{0,40}",
        response in proptest::option::of(100u16..700),
    ) -> Generated {
        let eol = if lf_only { "\n" } else { "\r\n" };
        let name = |long: &str, short: &str, use_short: bool| {
            let n = if use_short { short.to_owned() } else { long.to_owned() };
            let n = if lowercase { n.to_lowercase() } else { n };
            if space_before_colon { format!("{n} :") } else { format!("{n}:") }
        };
        let fold = if fold_from { format!("{eol} ") } else { String::new() };
        let mut headers = [
            format!("{} SIP/2.0/UDP {from_host}:5060;branch=z9hG4bK{branch}", name("Via", "v", compact[0])),
            format!("{} {fold}{from_name}<sip:{from_user}@{from_host}>;tag={from_tag}", name("From", "f", compact[1])),
            match &to_tag {
                Some(t) => format!("{} {to_name}<sip:{to_user}@{to_host};user=phone>;tag={t}", name("To", "t", compact[2])),
                None => format!("{} {to_name}<sip:{to_user}@{to_host}>", name("To", "t", compact[2])),
            },
            format!("{} {call_id}", name("Call-ID", "i", compact[3])),
            format!("{} {cseq} {method}", name("CSeq", "CSeq", false)),
            format!("{} 70", name("Max-Forwards", "Max-Forwards", false)),
            format!("{} {}", name("Content-Length", "l", compact[4]), body.len()),
        ];
        let ordered: Vec<String> = order.iter().map(|&i| std::mem::take(&mut headers[i])).collect();
        let start = match response {
            Some(code) => format!("SIP/2.0 {code} Whatever"),
            None => format!("{method} sip:{to_user}@{to_host} SIP/2.0"),
        };
        let mut text = start;
        text.push_str(eol);
        for h in ordered {
            text.push_str(&h);
            text.push_str(eol);
        }
        text.push_str(eol);
        text.push_str(&body);
        Generated {
            text: text.into_bytes(),
            call_id,
            cseq,
            method,
            from_user,
            from_tag,
            to_user,
            to_tag,
        }
    }
}

/// What the reference parser sees in a message.
#[derive(Debug, PartialEq)]
struct Reference {
    call_id: String,
    cseq: u32,
    method: String,
    from_user: Option<String>,
    from_tag: Option<String>,
    to_user: Option<String>,
    to_tag: Option<String>,
}

fn ezk_user(uri: &ezk_sip_types::uri::SipUri) -> Option<String> {
    use ezk_sip_types::uri::SipUriUserPart;
    match &uri.user_part {
        SipUriUserPart::Empty => None,
        SipUriUserPart::User(u) => Some(u.to_string()),
        SipUriUserPart::UserPw(up) => Some(up.user.to_string()),
    }
}

/// Parses with ezk-sip-types: its pull parser for lines (with folding), its
/// header-line parser, and its typed headers.
fn ezk_parse(data: &[u8]) -> Result<Reference, String> {
    use ezk_sip_types::header::typed::{CSeq as ECSeq, CallID, FromTo};
    use ezk_sip_types::msg::{Line, PullParser};
    use ezk_sip_types::{Headers, Name};

    let src = bytes::Bytes::copy_from_slice(data);
    let mut lines = PullParser::new(&src, 0);
    lines
        .next()
        .ok_or("no start line")?
        .map_err(|_| "incomplete")?;
    let mut headers = Headers::new();
    for line in lines {
        let line = line.map_err(|_| "incomplete")?;
        let text = std::str::from_utf8(line).map_err(|e| e.to_string())?;
        let (_, parsed) = Line::parse(&src, text).map_err(|e| format!("{e:?}"))?;
        headers.extend([(parsed.name, parsed.value)]);
    }
    let call_id: CallID = headers.get_named().map_err(|e| format!("call-id {e:?}"))?;
    let cseq: ECSeq = headers.get_named().map_err(|e| format!("cseq {e:?}"))?;
    let from: FromTo = headers.get(Name::FROM).map_err(|e| format!("from {e:?}"))?;
    let to: FromTo = headers.get(Name::TO).map_err(|e| format!("to {e:?}"))?;
    Ok(Reference {
        call_id: call_id.0.to_string(),
        cseq: cseq.cseq,
        method: cseq.method.to_string(),
        from_user: ezk_user(&from.uri.uri),
        from_tag: from.tag.map(|t| t.to_string()),
        to_user: ezk_user(&to.uri.uri),
        to_tag: to.tag.map(|t| t.to_string()),
    })
}

fn ours(data: &[u8]) -> Result<Reference, String> {
    let (msg, consumed) = Message::parse(data).map_err(|e| e.to_string())?;
    if consumed != data.len() {
        return Err(format!("consumed {consumed} of {}", data.len()));
    }
    let cseq = msg.cseq().ok_or("no cseq")?;
    let from = msg.from().ok_or("no from")?;
    let to = msg.to().ok_or("no to")?;
    Ok(Reference {
        call_id: msg.call_id().ok_or("no call-id")?.to_owned(),
        cseq: cseq.number,
        method: cseq.method.as_str().to_owned(),
        from_user: from.user.map(str::to_owned),
        from_tag: from.tag.map(str::to_owned),
        to_user: to.user.map(str::to_owned),
        to_tag: to.tag.map(str::to_owned),
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn agrees_with_ezk_sip_types(g in generated()) {
        let mine = ours(&g.text);
        let mut reference = ezk_parse(&g.text);
        // ezk-sip-types reads a CSeq method that merely starts with a known
        // name ("BYEA") as that name ("BYE"): its limitation, not a
        // disagreement about the message. The generated value decides below.
        if let (Ok(m), Ok(r)) = (&mine, &mut reference) {
            if m.method != r.method && m.method.starts_with(r.method.as_str()) {
                r.method = m.method.clone();
            }
        }
        prop_assert_eq!(&mine, &reference, "{}", String::from_utf8_lossy(&g.text));
        // And both agree with what was generated.
        let mine = mine.unwrap();
        prop_assert_eq!(mine.call_id, g.call_id);
        prop_assert_eq!(mine.cseq, g.cseq);
        prop_assert_eq!(mine.method, g.method);
        prop_assert_eq!(mine.from_user, Some(g.from_user));
        prop_assert_eq!(mine.from_tag, Some(g.from_tag));
        prop_assert_eq!(mine.to_user, Some(g.to_user));
        prop_assert_eq!(mine.to_tag, g.to_tag);
        prop_assert!(looks_like_sip(&g.text));
    }

    /// Every proper prefix of a message with Content-Length is `Truncated`
    /// (a stream reader waits), and two messages back to back split exactly.
    #[test]
    fn prefixes_are_truncated_and_pairs_split(g in generated(), h in generated(), cut in any::<prop::sample::Index>()) {
        let at = cut.index(g.text.len());
        prop_assert_eq!(Message::parse(&g.text[..at]).unwrap_err(), SipError::Truncated);
        let both = [g.text.as_slice(), h.text.as_slice()].concat();
        let (_, used) = Message::parse(&both).unwrap();
        prop_assert_eq!(used, g.text.len());
        let (second, used2) = Message::parse(&both[used..]).unwrap();
        prop_assert_eq!(used2, h.text.len());
        prop_assert_eq!(second.call_id(), Some(h.call_id.as_str()));
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..1500)) {
        exercise(&data);
        let _ = SessionDescription::parse(&data);
    }

    /// Mutations of real messages reach deeper than random bytes.
    #[test]
    fn mutated_messages_never_panic(
        g in generated(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..8),
        base in 0usize..2,
    ) {
        let mut data = if base == 0 { g.text.clone() } else { SCTP_MULTIPART_INVITE.to_vec() };
        for (at, byte, op) in edits {
            let i = at.index(data.len().max(1));
            match op {
                0 if i < data.len() => data[i] = byte,
                1 => data.insert(i.min(data.len()), byte),
                _ if i < data.len() => { data.remove(i); }
                _ => {}
            }
        }
        exercise(&data);
    }

    #[test]
    fn sdp_like_lines_never_panic(lines in proptest::collection::vec(
        (prop::sample::select(vec!["v", "o", "c", "m", "a", "t", "b", "x", ""]),
         "[ -~]{0,60}"), 0..64)) {
        let mut body = String::new();
        for (kind, value) in lines {
            body.push_str(kind);
            body.push('=');
            body.push_str(&value);
            body.push_str("\r\n");
        }
        let sd = SessionDescription::parse(body.as_bytes());
        prop_assert!(sd.media.len() <= taprec::sip::sdp::MAX_MEDIA);
        for m in &sd.media {
            prop_assert!(m.payload_types.len() <= taprec::sip::sdp::MAX_FORMATS);
            prop_assert!(m.rtpmaps.len() <= taprec::sip::sdp::MAX_FORMATS);
            let _ = (m.address(&sd), m.effective_direction(&sd), m.encoding(0));
        }
    }
}

/// Calls every accessor; checks the framing invariants.
fn exercise(data: &[u8]) {
    let _ = looks_like_sip(data);
    if let Ok((msg, used)) = Message::parse(data) {
        assert!(used <= data.len());
        assert!(msg.raw().len() <= used);
        assert!(msg.body().len() <= msg.raw().len());
        let _ = (
            msg.start_line(),
            msg.method(),
            msg.status(),
            msg.is_request(),
        );
        let _ = (
            msg.call_id(),
            msg.from(),
            msg.to(),
            msg.cseq(),
            msg.via_branch(),
        );
        let _ = (msg.contact(), msg.p_asserted_identity(), msg.content_type());
        for (name, value) in msg.fields() {
            let _ = (name, value);
        }
        let _ = msg.headers("via").count();
        if let Some(sdp) = msg.sdp_body() {
            let _ = SessionDescription::parse(sdp);
        }
    }
}
