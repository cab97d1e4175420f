//! SIP (RFC 3261) and SDP (RFC 4566) text of one synthetic call: INVITE with
//! an SDP offer, 100 Trying, 180 Ringing, 200 OK with the answer, ACK, BYE and
//! its 200 OK.

use std::fmt::{self, Write as _};
use std::net::IpAddr;

use crate::media::Law;

/// Payload type offered for RFC 4733 telephone-events.
pub const TELEPHONE_EVENT_PT: u8 = 101;

/// The User-Agent of every synthetic party.
const USER_AGENT: &str = concat!("taprec-synth/", env!("CARGO_PKG_VERSION"));

/// One party's identity and addresses as written into SIP and SDP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartyText {
    /// User part of the party's URI (e.g. `1000` or `+390212345678`).
    pub number: String,
    /// Display name, written quoted in From/To when present.
    pub display_name: Option<String>,
    /// Host address of the party's URI, Via and SDP.
    pub ip: IpAddr,
    /// SIP port.
    pub sip_port: u16,
    /// RTP port of the SDP.
    pub rtp_port: u16,
    /// Dialog tag.
    pub tag: u64,
}

/// Everything the messages of one call are made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallText {
    /// Call-ID header value.
    pub call_id: String,
    /// The party that sends the INVITE.
    pub caller: PartyText,
    /// The party that answers.
    pub callee: PartyText,
    /// Codec offered and answered.
    pub law: Law,
    /// Packetisation time, ms.
    pub ptime_ms: u32,
    /// Seed of the branch parameters and SDP session ids.
    pub nonce: u64,
}

/// The SIP messages of a call, in the order they are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Step {
    /// INVITE with SDP offer, caller to callee.
    Invite,
    /// 100 Trying, callee to caller.
    Trying,
    /// 180 Ringing, callee to caller.
    Ringing,
    /// 200 OK to the INVITE with SDP answer, callee to caller.
    Answer,
    /// ACK, caller to callee.
    Ack,
    /// BYE from the side that hangs up.
    Bye,
    /// 200 OK to the BYE, from the other side.
    ByeOk,
}

impl Step {
    /// The steps of a call that ends with a BYE.
    pub const WITH_BYE: [Step; 7] = [
        Step::Invite,
        Step::Trying,
        Step::Ringing,
        Step::Answer,
        Step::Ack,
        Step::Bye,
        Step::ByeOk,
    ];

    /// Whether the caller sends this message (otherwise the callee does);
    /// `caller_hangs_up` decides BYE and its response.
    pub fn from_caller(self, caller_hangs_up: bool) -> bool {
        match self {
            Step::Invite | Step::Ack => true,
            Step::Trying | Step::Ringing | Step::Answer => false,
            Step::Bye => caller_hangs_up,
            Step::ByeOk => !caller_hangs_up,
        }
    }
}

/// `host` as it appears in a SIP URI or Via: IPv6 in brackets.
struct Host(IpAddr);

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            IpAddr::V4(v4) => write!(f, "{v4}"),
            IpAddr::V6(v6) => write!(f, "[{v6}]"),
        }
    }
}

impl PartyText {
    /// Name-addr for From/To, without tag.
    fn name_addr(&self) -> String {
        match &self.display_name {
            Some(name) => format!("\"{name}\" <sip:{}@{}>", self.number, Host(self.ip)),
            None => format!("<sip:{}@{}>", self.number, Host(self.ip)),
        }
    }

    fn contact(&self) -> String {
        format!("<sip:{}@{}:{}>", self.number, Host(self.ip), self.sip_port)
    }

    fn request_uri(&self) -> String {
        format!("sip:{}@{}:{}", self.number, Host(self.ip), self.sip_port)
    }

    fn via(&self, branch: u64) -> String {
        format!(
            "SIP/2.0/UDP {}:{};rport;branch=z9hG4bK{branch:016x}",
            Host(self.ip),
            self.sip_port
        )
    }
}

impl CallText {
    /// Writes the message of `step` into `out` (cleared first).
    pub fn write(&self, step: Step, caller_hangs_up: bool, out: &mut String) {
        out.clear();
        // Writing into a String cannot fail.
        let _ = self.write_inner(step, caller_hangs_up, out);
    }

    fn write_inner(&self, step: Step, caller_hangs_up: bool, out: &mut String) -> fmt::Result {
        let (caller, callee) = (&self.caller, &self.callee);
        let from = format!("{};tag={:08x}", caller.name_addr(), caller.tag as u32);
        let to_untagged = callee.name_addr();
        let to = format!("{to_untagged};tag={:08x}", callee.tag as u32);
        let invite_via = caller.via(self.nonce);
        let body = match step {
            Step::Invite => self.sdp(caller, self.nonce >> 40),
            Step::Answer => self.sdp(callee, self.nonce >> 20 & 0xF_FFFF),
            _ => String::new(),
        };
        match step {
            Step::Invite => {
                writeln!(out, "INVITE {} SIP/2.0\r", callee.request_uri())?;
                writeln!(out, "Via: {invite_via}\r")?;
                writeln!(out, "Max-Forwards: 70\r")?;
                writeln!(out, "From: {from}\r")?;
                writeln!(out, "To: {to_untagged}\r")?;
                writeln!(out, "Call-ID: {}\r", self.call_id)?;
                writeln!(out, "CSeq: 1 INVITE\r")?;
                writeln!(out, "Contact: {}\r", caller.contact())?;
                writeln!(out, "Allow: INVITE, ACK, CANCEL, BYE, OPTIONS\r")?;
            }
            Step::Trying | Step::Ringing | Step::Answer => {
                let status = match step {
                    Step::Trying => "100 Trying",
                    Step::Ringing => "180 Ringing",
                    _ => "200 OK",
                };
                writeln!(out, "SIP/2.0 {status}\r")?;
                writeln!(out, "Via: {invite_via}\r")?;
                writeln!(out, "From: {from}\r")?;
                let to = if step == Step::Trying {
                    &to_untagged
                } else {
                    &to
                };
                writeln!(out, "To: {to}\r")?;
                writeln!(out, "Call-ID: {}\r", self.call_id)?;
                writeln!(out, "CSeq: 1 INVITE\r")?;
                if step != Step::Trying {
                    writeln!(out, "Contact: {}\r", callee.contact())?;
                }
            }
            Step::Ack => {
                writeln!(out, "ACK {} SIP/2.0\r", callee.request_uri())?;
                writeln!(out, "Via: {}\r", caller.via(self.nonce ^ 0xA))?;
                writeln!(out, "Max-Forwards: 70\r")?;
                writeln!(out, "From: {from}\r")?;
                writeln!(out, "To: {to}\r")?;
                writeln!(out, "Call-ID: {}\r", self.call_id)?;
                writeln!(out, "CSeq: 1 ACK\r")?;
            }
            Step::Bye | Step::ByeOk => {
                // The hanging-up side's view of the dialog: its own tag in From.
                let (sender, target, bye_from, bye_to, cseq) = if caller_hangs_up {
                    (caller, callee, &from, &to, 2)
                } else {
                    (callee, caller, &to, &from, 1)
                };
                let via = sender.via(self.nonce ^ 0xB);
                if step == Step::Bye {
                    writeln!(out, "BYE {} SIP/2.0\r", target.request_uri())?;
                    writeln!(out, "Via: {via}\r")?;
                    writeln!(out, "Max-Forwards: 70\r")?;
                } else {
                    writeln!(out, "SIP/2.0 200 OK\r")?;
                    writeln!(out, "Via: {via}\r")?;
                }
                writeln!(out, "From: {bye_from}\r")?;
                writeln!(out, "To: {bye_to}\r")?;
                writeln!(out, "Call-ID: {}\r", self.call_id)?;
                writeln!(out, "CSeq: {cseq} BYE\r")?;
            }
        }
        writeln!(out, "User-Agent: {USER_AGENT}\r")?;
        if !body.is_empty() {
            writeln!(out, "Content-Type: application/sdp\r")?;
        }
        writeln!(out, "Content-Length: {}\r", body.len())?;
        writeln!(out, "\r")?;
        out.push_str(&body);
        Ok(())
    }

    /// The SDP offer or answer of `party`.
    fn sdp(&self, party: &PartyText, session: u64) -> String {
        let (net, addr) = match party.ip {
            IpAddr::V4(v4) => ("IP4", v4.to_string()),
            IpAddr::V6(v6) => ("IP6", v6.to_string()),
        };
        let pt = match self.law {
            Law::Ulaw => 0,
            Law::Alaw => 8,
        };
        let ev = TELEPHONE_EVENT_PT;
        format!(
            "v=0\r\n\
             o={} {session} {session} IN {net} {addr}\r\n\
             s=taprec-synth\r\n\
             c=IN {net} {addr}\r\n\
             t=0 0\r\n\
             m=audio {} RTP/AVP {pt} {ev}\r\n\
             a=rtpmap:{pt} {}/8000\r\n\
             a=rtpmap:{ev} telephone-event/8000\r\n\
             a=fmtp:{ev} 0-16\r\n\
             a=ptime:{}\r\n\
             a=sendrecv\r\n",
            party.number,
            party.rtp_port,
            self.law.name(),
            self.ptime_ms,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn call(v6: bool) -> CallText {
        let (a, b): (IpAddr, IpAddr) = if v6 {
            (
                Ipv6Addr::new(0xfd00, 1, 0, 0, 0, 0, 0, 1).into(),
                Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1).into(),
            )
        } else {
            (
                Ipv4Addr::new(10, 1, 0, 1).into(),
                Ipv4Addr::new(198, 51, 100, 1).into(),
            )
        };
        CallText {
            call_id: "abc@10.1.0.1".into(),
            caller: PartyText {
                number: "1000".into(),
                display_name: Some("Ext 1000".into()),
                ip: a,
                sip_port: 5060,
                rtp_port: 16384,
                tag: 0x1234_5678,
            },
            callee: PartyText {
                number: "+390212345678".into(),
                display_name: None,
                ip: b,
                sip_port: 5060,
                rtp_port: 20000,
                tag: 0x9abc_def0,
            },
            law: Law::Ulaw,
            ptime_ms: 20,
            nonce: 0x0123_4567_89ab_cdef,
        }
    }

    fn header<'a>(msg: &'a str, name: &str) -> Vec<&'a str> {
        let head = msg.split("\r\n\r\n").next().unwrap();
        head.split("\r\n")
            .filter_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(": ")))
            .collect()
    }

    #[test]
    fn invite_is_well_formed() {
        let mut out = String::new();
        call(false).write(Step::Invite, true, &mut out);
        assert!(out.starts_with("INVITE sip:+390212345678@198.51.100.1:5060 SIP/2.0\r\n"));
        assert_eq!(
            header(&out, "From"),
            ["\"Ext 1000\" <sip:1000@10.1.0.1>;tag=12345678"]
        );
        assert_eq!(header(&out, "To"), ["<sip:+390212345678@198.51.100.1>"]);
        assert_eq!(header(&out, "CSeq"), ["1 INVITE"]);
        assert_eq!(header(&out, "Content-Type"), ["application/sdp"]);
        let (_, body) = out.split_once("\r\n\r\n").unwrap();
        assert_eq!(
            header(&out, "Content-Length"),
            [body.len().to_string().as_str()]
        );
        assert!(body.contains("m=audio 16384 RTP/AVP 0 101\r\n"));
        assert!(body.contains("c=IN IP4 10.1.0.1\r\n"));
        assert!(body.contains("a=rtpmap:0 PCMU/8000\r\n"));
        assert!(body.contains("a=rtpmap:101 telephone-event/8000\r\n"));
        assert!(body.contains("a=ptime:20\r\n"));
        assert!(body.contains("a=sendrecv\r\n"));
    }

    #[test]
    fn answer_and_ack_carry_to_tag() {
        let mut out = String::new();
        let mut c = call(false);
        c.law = Law::Alaw;
        c.write(Step::Answer, true, &mut out);
        assert!(out.starts_with("SIP/2.0 200 OK\r\n"));
        assert_eq!(
            header(&out, "To"),
            ["<sip:+390212345678@198.51.100.1>;tag=9abcdef0"]
        );
        assert!(out.contains("m=audio 20000 RTP/AVP 8 101\r\n"));
        assert!(out.contains("a=rtpmap:8 PCMA/8000\r\n"));
        c.write(Step::Trying, true, &mut out);
        assert_eq!(header(&out, "To"), ["<sip:+390212345678@198.51.100.1>"]);
        assert_eq!(header(&out, "Content-Length"), ["0"]);
        c.write(Step::Ack, true, &mut out);
        assert!(out.starts_with("ACK sip:+390212345678@198.51.100.1:5060 SIP/2.0\r\n"));
        assert_eq!(header(&out, "CSeq"), ["1 ACK"]);
        assert!(out.ends_with("Content-Length: 0\r\n\r\n"));
    }

    #[test]
    fn bye_from_either_side() {
        let mut out = String::new();
        let c = call(false);
        c.write(Step::Bye, false, &mut out);
        assert!(out.starts_with("BYE sip:1000@10.1.0.1:5060 SIP/2.0\r\n"));
        assert_eq!(
            header(&out, "From"),
            ["<sip:+390212345678@198.51.100.1>;tag=9abcdef0"]
        );
        assert_eq!(header(&out, "CSeq"), ["1 BYE"]);
        assert!(header(&out, "Via")[0].starts_with("SIP/2.0/UDP 198.51.100.1:5060;"));
        c.write(Step::ByeOk, false, &mut out);
        assert!(out.starts_with("SIP/2.0 200 OK\r\n"));
        assert_eq!(header(&out, "CSeq"), ["1 BYE"]);
        c.write(Step::Bye, true, &mut out);
        assert!(out.starts_with("BYE sip:+390212345678@198.51.100.1:5060 SIP/2.0\r\n"));
        assert_eq!(header(&out, "CSeq"), ["2 BYE"]);
        assert!(Step::Bye.from_caller(true) && !Step::ByeOk.from_caller(true));
        assert!(!Step::Bye.from_caller(false) && Step::ByeOk.from_caller(false));
    }

    #[test]
    fn ipv6_hosts_in_brackets() {
        let mut out = String::new();
        call(true).write(Step::Invite, true, &mut out);
        assert!(out.starts_with("INVITE sip:+390212345678@[2001:db8::1]:5060 SIP/2.0\r\n"));
        assert!(out.contains("Via: SIP/2.0/UDP [fd00:1::1]:5060;rport;branch=z9hG4bK"));
        assert!(out.contains("c=IN IP6 fd00:1::1\r\n"));
    }
}
