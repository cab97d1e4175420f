//! Who a party is and who it was before: asserted identities
//! (P-Asserted-Identity, Remote-Party-ID), forwarding (Diversion,
//! History-Info) and transfers (REFER's Refer-To, INVITE's Replaces).
//!
//! Decisions (see also [`crate::call::dialog`]):
//! - A party's number is its asserted identity when the signalling carries
//!   one (P-Asserted-Identity first, else Remote-Party-ID), else the user
//!   part of From (caller) or To (callee). The callee's asserted identity in
//!   the 2xx names who answered, which after forwarding is not the dialled
//!   number; the forwarding itself (Diversion/History-Info) goes to notes.
//! - An asserted identity in a re-INVITE or UPDATE (or their 2xx) that
//!   differs from the party's number means the party changed (transfer,
//!   pickup, PBX call park): the number follows it and the change is noted.
//! - REFER is noted with its target (attended when Refer-To carries
//!   `Replaces`); an INVITE with a `Replaces` header notes the call it
//!   replaces. Each dialog stays its own recording.

use crate::sip::message::Message;

/// Longest user part kept from a header.
const MAX_USER: usize = 64;
/// At most this many History-Info entries are listed in a note.
const MAX_HISTORY: usize = 6;

/// The user part of the first sip:, sips: or tel: URI in a header value.
pub fn uri_user(value: &str) -> Option<&str> {
    let lower = value.as_bytes();
    let find = |scheme: &[u8]| {
        lower
            .windows(scheme.len())
            .position(|w| w.eq_ignore_ascii_case(scheme))
            .map(|at| at + scheme.len())
    };
    let (start, tel) = match (find(b"sip:"), find(b"sips:"), find(b"tel:")) {
        (Some(a), _, _) | (None, Some(a), _) => (a, false),
        (None, None, Some(a)) => (a, true),
        (None, None, None) => return None,
    };
    let rest = value.get(start..)?;
    let end = rest
        .find(|c: char| matches!(c, ';' | '>' | '?' | ',' | '"') || c.is_whitespace())
        .unwrap_or(rest.len());
    let uri = &rest[..end];
    let user = if tel {
        uri
    } else {
        let at = uri.find('@')?;
        let user = &uri[..at];
        user.split(':').next().unwrap_or(user)
    };
    (!user.is_empty() && user.len() <= MAX_USER).then_some(user)
}

/// The asserted number of the message's sender: P-Asserted-Identity, else
/// Remote-Party-ID.
pub fn asserted_user(msg: &Message<'_>) -> Option<String> {
    if let Some(user) = msg.p_asserted_identity().and_then(|p| p.user) {
        if !user.is_empty() && user.len() <= MAX_USER {
            return Some(user.to_string());
        }
    }
    let rpid = msg.header("Remote-Party-ID")?;
    uri_user(&rpid).map(str::to_string)
}

/// A note on forwarding (Diversion, History-Info) in an initial INVITE.
pub fn forwarding_note(msg: &Message<'_>) -> Option<String> {
    if let Some(diversion) = msg.header("Diversion") {
        let from = uri_user(&diversion).unwrap_or("unknown");
        let reason = diversion
            .split(';')
            .skip(1)
            .find_map(|p| {
                let (k, v) = p.split_once('=')?;
                k.trim()
                    .eq_ignore_ascii_case("reason")
                    .then(|| v.trim().trim_matches('"'))
            })
            .filter(|r| !r.is_empty() && r.len() <= 32);
        return Some(match reason {
            Some(r) => format!("forwarded from {from} (Diversion, reason {r})"),
            None => format!("forwarded from {from} (Diversion)"),
        });
    }
    let mut chain: Vec<&str> = Vec::new();
    let values: Vec<_> = msg.headers("History-Info").collect();
    for value in &values {
        for entry in value.split(',') {
            if let Some(user) = uri_user(entry) {
                if chain.last() != Some(&user) && chain.len() < MAX_HISTORY {
                    chain.push(user);
                }
            }
        }
    }
    (chain.len() >= 2).then(|| format!("forwarded: {} (History-Info)", chain.join(" -> ")))
}

/// A REFER's target user and whether it is an attended transfer (Replaces).
pub fn refer_target(msg: &Message<'_>) -> Option<(String, bool)> {
    let refer_to = msg.header("Refer-To")?;
    let user = uri_user(&refer_to).unwrap_or("unknown").to_string();
    let attended = refer_to.to_ascii_lowercase().contains("replaces");
    Some((user, attended))
}

/// The Call-ID named by an INVITE's Replaces header.
pub fn replaces(msg: &Message<'_>) -> Option<String> {
    let value = msg.header("Replaces")?;
    let call_id = value.split(';').next()?.trim();
    (!call_id.is_empty() && call_id.len() <= 256).then(|| call_id.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(headers: &str) -> String {
        format!("INVITE sip:200@pbx SIP/2.0\r\nCall-ID: x\r\nFrom: <sip:100@pbx>;tag=1\r\nTo: <sip:200@pbx>\r\nCSeq: 1 INVITE\r\n{headers}Content-Length: 0\r\n\r\n")
    }

    #[test]
    fn uri_users() {
        assert_eq!(
            uri_user("\"Bob\" <sip:+4930123@gw;user=phone>;party=calling"),
            Some("+4930123")
        );
        assert_eq!(
            uri_user("<tel:+39061234;phone-context=x>"),
            Some("+39061234")
        );
        assert_eq!(uri_user("<sip:alice:secret@host>"), Some("alice"));
        assert_eq!(uri_user("<sip:host.only>"), None);
        assert_eq!(uri_user("nothing here"), None);
        assert_eq!(uri_user("<SIPS:555@x>"), Some("555"));
    }

    #[test]
    fn remote_party_id_when_no_pai() {
        let text = msg("Remote-Party-ID: \"Op\" <sip:0612345@gw>;party=calling;screen=yes\r\n");
        let (m, _) = Message::parse(text.as_bytes()).unwrap();
        assert_eq!(asserted_user(&m).as_deref(), Some("0612345"));
        let text = msg("P-Asserted-Identity: <sip:777@pbx>\r\nRemote-Party-ID: <sip:888@gw>\r\n");
        let (m, _) = Message::parse(text.as_bytes()).unwrap();
        assert_eq!(asserted_user(&m).as_deref(), Some("777"));
    }

    #[test]
    fn forwarding_notes() {
        let text = msg("Diversion: <sip:300@pbx>;reason=no-answer;counter=1\r\n");
        let (m, _) = Message::parse(text.as_bytes()).unwrap();
        assert_eq!(
            forwarding_note(&m).as_deref(),
            Some("forwarded from 300 (Diversion, reason no-answer)")
        );
        let text = msg("History-Info: <sip:300@pbx>;index=1, <sip:400@pbx?Reason=SIP%3Bcause%3D302>;index=1.1\r\n");
        let (m, _) = Message::parse(text.as_bytes()).unwrap();
        assert_eq!(
            forwarding_note(&m).as_deref(),
            Some("forwarded: 300 -> 400 (History-Info)")
        );
        let plain = msg("");
        let (m, _) = Message::parse(plain.as_bytes()).unwrap();
        assert_eq!(forwarding_note(&m), None);
    }

    #[test]
    fn refer_and_replaces() {
        let text = msg("Refer-To: <sip:500@pbx?Replaces=abc%40host%3Bto-tag%3D1%3Bfrom-tag%3D2>\r\nReplaces: abc@host;to-tag=1;from-tag=2\r\n");
        let (m, _) = Message::parse(text.as_bytes()).unwrap();
        assert_eq!(refer_target(&m), Some(("500".to_string(), true)));
        assert_eq!(replaces(&m).as_deref(), Some("abc@host"));
        let text = msg("Refer-To: sip:600@pbx\r\n");
        let (m, _) = Message::parse(text.as_bytes()).unwrap();
        assert_eq!(refer_target(&m), Some(("600".to_string(), false)));
    }
}
