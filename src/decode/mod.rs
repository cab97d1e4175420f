//! Decoding captured frames down to transport payloads: link layer (Ethernet,
//! 802.1Q/QinQ, Linux SLL/SLL2, raw IP, BSD loopback), IPv4/IPv6 (extension
//! headers skipped), IP fragment reassembly (bounded), UDP, TCP segments.
//! RTP/RTCP views live in [`rtp`].
//!
//! Mirror traffic often arrives tunnelled: GRE (IP, transparent Ethernet
//! bridging, PPP, MPLS), ERSPAN type I/II/III, VXLAN (UDP 4789), PPPoE, MPLS
//! label stacks and IP-in-IP are unwrapped (see [`tunnel`]), the outer
//! headers skipped and the inner packet decoded fully, fragments included.
//! Each layer is counted in [`DecodeStats`]; nesting is bounded by
//! [`MAX_ENCAP_DEPTH`].
//!
//! Decoding never panics on any input: malformed frames become a small
//! [`DecodeError`] that the caller counts and drops.

pub mod fragment;
mod ip;
mod link;
pub mod rtp;
pub mod tcp;
mod tunnel;

use crate::capture::LinkType;
use crate::Timestamp;
use fragment::{FragmentKey, Push, Reassembler};
use ip::{protocol, IpPacket};
use link::{Network, Next};
use std::net::{IpAddr, SocketAddr};
pub use tcp::{Segment, TcpFlags};

/// Encapsulations unwrapped in one frame at most; deeper nesting is
/// malformed (counted in [`DecodeStats::encap_too_deep`]).
pub const MAX_ENCAP_DEPTH: usize = 8;

/// UDP port of VXLAN (RFC 7348).
pub const VXLAN_PORT: u16 = 4789;

/// A kind of encapsulation the decoder unwraps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encap {
    /// GRE carrying IP, Ethernet (0x6558), PPP or MPLS.
    Gre,
    /// ERSPAN type I or II (GRE protocol 0x88BE).
    ErspanII,
    /// ERSPAN type III (GRE protocol 0x22EB).
    ErspanIII,
    /// VXLAN (UDP 4789).
    Vxlan,
    /// PPPoE session.
    Pppoe,
    /// MPLS label stack.
    Mpls,
    /// IPv4 or IPv6 directly in IP (protocols 4 and 41).
    IpInIp,
}

/// Why a frame could not be decoded. Counted and dropped, never fatal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum DecodeError {
    /// The frame ends before a header it announces.
    #[error("truncated")]
    Truncated,
    /// A header field has an impossible value.
    #[error("malformed")]
    Malformed,
    /// A protocol taprec does not decode (e.g. an unknown ethertype).
    #[error("unsupported")]
    Unsupported,
}

/// The transport protocol of a [`Datagram`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// UDP.
    Udp,
    /// TCP (a single segment; stream reassembly happens above decode).
    Tcp,
    /// SCTP: the payload is the packet's chunks (after the common header);
    /// `sip::sctp` reassembles user messages from its DATA chunks.
    Sctp,
}

/// A transport payload with its endpoints, borrowed from the frame or from the
/// fragment reassembler.
#[derive(Debug, Clone, Copy)]
pub struct Datagram<'a> {
    /// UDP or TCP.
    pub transport: Transport,
    /// Sender.
    pub src: SocketAddr,
    /// Receiver.
    pub dst: SocketAddr,
    /// The transport payload.
    pub payload: &'a [u8],
}

/// The result of decoding one frame.
#[derive(Debug, Clone, Copy)]
pub enum Decoded<'a> {
    /// A complete UDP payload.
    Datagram(Datagram<'a>),
    /// A TCP segment (stream reassembly happens above decode, see
    /// [`crate::sip::stream`]).
    Segment(Segment<'a>),
    /// An IP fragment was taken by the reassembler and the datagram is not
    /// complete yet (or it was dropped by a limit, counted in
    /// [`DecodeStats::fragments_dropped`]).
    FragmentHeld,
    /// A valid frame that carries nothing taprec uses (ARP, ICMP, ...).
    Ignored,
}

/// Limits on the fragment reassembler's memory and time.
#[derive(Debug, Clone, Copy)]
pub struct FragmentLimits {
    /// Datagrams being reassembled at once; the oldest is dropped beyond this.
    pub max_datagrams: usize,
    /// Largest reassembled datagram, bytes.
    pub max_datagram_bytes: usize,
    /// Total bytes held by all partial datagrams.
    pub max_total_bytes: usize,
    /// A partial datagram older than this (capture time) is dropped.
    pub timeout_nanos: i64,
}

impl Default for FragmentLimits {
    fn default() -> Self {
        FragmentLimits {
            max_datagrams: 1024,
            max_datagram_bytes: 65_535,
            max_total_bytes: 16 << 20,
            timeout_nanos: 30_000_000_000,
        }
    }
}

/// Counters kept by the decoder.
#[derive(Debug, Clone, Default)]
pub struct DecodeStats {
    /// Frames handed to [`Decoder::decode`].
    pub frames: u64,
    /// Frames that failed with [`DecodeError::Truncated`].
    pub truncated: u64,
    /// Frames that failed with [`DecodeError::Malformed`].
    pub malformed: u64,
    /// Frames that failed with [`DecodeError::Unsupported`].
    pub unsupported: u64,
    /// IP fragments received.
    pub fragments: u64,
    /// Datagrams completed by reassembly.
    pub reassembled: u64,
    /// Partial datagrams dropped (timeout or limits).
    pub fragments_dropped: u64,
    /// TCP segments decoded.
    pub tcp_segments: u64,
    /// GRE layers unwrapped (IP, Ethernet, PPP or MPLS inside).
    pub gre: u64,
    /// ERSPAN type I/II layers unwrapped.
    pub erspan_ii: u64,
    /// ERSPAN type III layers unwrapped.
    pub erspan_iii: u64,
    /// VXLAN layers unwrapped.
    pub vxlan: u64,
    /// PPPoE session layers unwrapped.
    pub pppoe: u64,
    /// MPLS label stacks unwrapped.
    pub mpls: u64,
    /// IP-in-IP layers unwrapped.
    pub ip_in_ip: u64,
    /// Frames dropped for nesting more than [`MAX_ENCAP_DEPTH`]
    /// encapsulations (also counted as malformed).
    pub encap_too_deep: u64,
}

impl DecodeStats {
    /// Counts one unwrapped layer of `kind`.
    fn count(&mut self, kind: Encap) {
        let counter = match kind {
            Encap::Gre => &mut self.gre,
            Encap::ErspanII => &mut self.erspan_ii,
            Encap::ErspanIII => &mut self.erspan_iii,
            Encap::Vxlan => &mut self.vxlan,
            Encap::Pppoe => &mut self.pppoe,
            Encap::Mpls => &mut self.mpls,
            Encap::IpInIp => &mut self.ip_in_ip,
        };
        *counter += 1;
    }

    /// Encapsulation layers unwrapped, all kinds together.
    pub fn tunnelled(&self) -> u64 {
        self.gre
            + self.erspan_ii
            + self.erspan_iii
            + self.vxlan
            + self.pppoe
            + self.mpls
            + self.ip_in_ip
    }
}

/// Stateful frame decoder (state = the fragment reassembler).
///
/// The non-fragment path borrows everything from the frame and allocates
/// nothing; only fragments are copied (into the bounded reassembler).
pub struct Decoder {
    reassembler: Reassembler,
    stats: DecodeStats,
}

impl Decoder {
    /// A decoder with the given fragment limits.
    pub fn new(limits: FragmentLimits) -> Self {
        Decoder {
            reassembler: Reassembler::new(limits),
            stats: DecodeStats::default(),
        }
    }

    /// Decodes one frame captured at `ts`. Errors are also counted in
    /// [`Decoder::stats`].
    ///
    /// A reassembled datagram's payload borrows the decoder until the next
    /// call; every other payload borrows `data`.
    pub fn decode<'a>(
        &'a mut self,
        ts: Timestamp,
        link: LinkType,
        data: &'a [u8],
    ) -> Result<Decoded<'a>, DecodeError> {
        self.stats.frames += 1;
        let result = decode_frame(&mut self.reassembler, &mut self.stats, ts, link, data);
        match result {
            Err(DecodeError::Truncated) => self.stats.truncated += 1,
            Err(DecodeError::Malformed) => self.stats.malformed += 1,
            Err(DecodeError::Unsupported) => self.stats.unsupported += 1,
            Ok(_) => {}
        }
        result
    }

    /// Accounts for a frame captured at `ts` that [`peek_udp`] accepted and
    /// the caller handles from the peek: what [`Decoder::decode`] would have
    /// done besides yielding the same datagram (the frame counted, expired
    /// fragments dropped).
    pub fn note_peeked(&mut self, ts: Timestamp) {
        self.stats.frames += 1;
        expire_fragments(&mut self.reassembler, &mut self.stats, ts);
    }

    /// Counters so far.
    pub fn stats(&self) -> &DecodeStats {
        &self.stats
    }

    /// The fragment reassembler (for its gauges: bytes held, datagrams in
    /// progress).
    pub fn reassembler(&self) -> &Reassembler {
        &self.reassembler
    }
}

/// What one IP packet's transport layer yields.
enum Step<'a> {
    /// Decoding is finished.
    Done(Decoded<'a>),
    /// The payload is an encapsulation to unwrap.
    Encap(Encap, Next, &'a [u8]),
}

/// Drops fragments that waited too long as of `ts` (every frame, decoded
/// or peeked, moves the reassembler's clock).
fn expire_fragments(reassembler: &mut Reassembler, stats: &mut DecodeStats, ts: Timestamp) {
    if reassembler.in_progress() > 0 {
        reassembler.expire(ts);
        stats.fragments_dropped = reassembler.dropped();
    }
}

/// Link layer, IP, reassembly, transport, and again for each encapsulation.
/// Split from [`Decoder::decode`] so the result may borrow the reassembler
/// while the stats are updated.
fn decode_frame<'a>(
    reassembler: &'a mut Reassembler,
    stats: &mut DecodeStats,
    ts: Timestamp,
    link: LinkType,
    data: &'a [u8],
) -> Result<Decoded<'a>, DecodeError> {
    expire_fragments(reassembler, stats, ts);
    // Taken by the first fragment: a reassembled datagram borrows it, so a
    // fragment nested inside a reassembled datagram cannot be reassembled.
    let mut reassembler = Some(reassembler);
    let mut next = Next::Link(link);
    let mut data = data;
    let mut depth = 0;
    loop {
        let step = match link::next(next, data)? {
            Network::Ipv4(bytes) => ip_packet(&mut reassembler, stats, ts, ip::ipv4(bytes)?)?,
            Network::Ipv6(bytes) => ip_packet(&mut reassembler, stats, ts, ip::ipv6(bytes)?)?,
            Network::Other => return Ok(Decoded::Ignored),
            Network::Encap(kind, inner, bytes) => Step::Encap(kind, inner, bytes),
        };
        match step {
            Step::Done(decoded) => {
                if let Decoded::Segment(_) = decoded {
                    stats.tcp_segments += 1;
                }
                return Ok(decoded);
            }
            Step::Encap(kind, inner, bytes) => {
                depth += 1;
                if depth > MAX_ENCAP_DEPTH {
                    stats.encap_too_deep += 1;
                    return Err(DecodeError::Malformed);
                }
                stats.count(kind);
                next = inner;
                data = bytes;
            }
        }
    }
}

/// One IP packet: through the reassembler when it is a fragment, then its
/// transport layer.
fn ip_packet<'a>(
    reassembler: &mut Option<&'a mut Reassembler>,
    stats: &mut DecodeStats,
    ts: Timestamp,
    packet: IpPacket<'a>,
) -> Result<Step<'a>, DecodeError> {
    let Some(fragment) = packet.fragment else {
        return transport(packet.src, packet.dst, packet.protocol, packet.payload);
    };
    stats.fragments += 1;
    let Some(reassembler) = reassembler.take() else {
        // A fragment inside a datagram that was itself reassembled.
        return Err(DecodeError::Unsupported);
    };
    let key = FragmentKey {
        src: packet.src,
        dst: packet.dst,
        protocol: packet.protocol,
        id: fragment.id,
    };
    let pushed = reassembler.push(ts, key, fragment.offset, fragment.more, packet.payload);
    stats.fragments_dropped = reassembler.dropped();
    match pushed? {
        Push::Held | Push::Dropped => Ok(Step::Done(Decoded::FragmentHeld)),
        Push::Complete => {
            stats.reassembled += 1;
            let reassembler: &'a Reassembler = reassembler;
            reassembled(packet, reassembler.completed())
        }
    }
}

/// Decodes a reassembled datagram. For IPv6 the payload starts with the
/// fragment header's next header, which may be another extension header.
fn reassembled<'a>(packet: IpPacket<'_>, payload: &'a [u8]) -> Result<Step<'a>, DecodeError> {
    let (protocol, payload) = if packet.src.is_ipv6() {
        let (protocol, payload, _) = ip::extensions(packet.protocol, payload, false)?;
        (protocol, payload)
    } else {
        (packet.protocol, payload)
    };
    transport(packet.src, packet.dst, protocol, payload)
}

/// The transport layer of a complete datagram.
fn transport(
    src: IpAddr,
    dst: IpAddr,
    protocol: u8,
    payload: &[u8],
) -> Result<Step<'_>, DecodeError> {
    match protocol {
        protocol::UDP => {
            let (src_port, dst_port, payload) = udp(payload)?;
            // The only extra work on the UDP path: one comparison.
            if dst_port == VXLAN_PORT {
                if let Some(inner) = tunnel::vxlan(payload) {
                    return Ok(Step::Encap(
                        Encap::Vxlan,
                        Next::Link(LinkType::Ethernet),
                        inner,
                    ));
                }
            }
            Ok(Step::Done(Decoded::Datagram(Datagram {
                transport: Transport::Udp,
                src: SocketAddr::new(src, src_port),
                dst: SocketAddr::new(dst, dst_port),
                payload,
            })))
        }
        protocol::TCP => Ok(Step::Done(Decoded::Segment(tcp::segment(
            src, dst, payload,
        )?))),
        protocol::GRE => Ok(match tunnel::gre(payload)? {
            Some((kind, next, inner)) => Step::Encap(kind, next, inner),
            None => Step::Done(Decoded::Ignored),
        }),
        protocol::IPIP => Ok(Step::Encap(
            Encap::IpInIp,
            Next::Link(LinkType::Ipv4),
            payload,
        )),
        protocol::IPV6_IN_IP => Ok(Step::Encap(
            Encap::IpInIp,
            Next::Link(LinkType::Ipv6),
            payload,
        )),
        // IPv4 may carry AH before the transport header too.
        protocol::AUTH => {
            // The walk skips every AH, so this recurses at most once.
            let (protocol, payload, _) = ip::extensions(protocol::AUTH, payload, false)?;
            transport(src, dst, protocol, payload)
        }
        protocol::SCTP => {
            let (src_port, dst_port, chunks) = sctp_data(payload)?;
            Ok(Step::Done(Decoded::Datagram(Datagram {
                transport: Transport::Sctp,
                src: SocketAddr::new(src, src_port),
                dst: SocketAddr::new(dst, dst_port),
                payload: chunks,
            })))
        }
        // ICMP, ESP, no next header, ...
        _ => Ok(Step::Done(Decoded::Ignored)),
    }
}

/// SCTP (RFC 9260): the ports and the chunks after the common header.
fn sctp_data(data: &[u8]) -> Result<(u16, u16, &[u8]), DecodeError> {
    let src_port = link::be16(data, 0)?;
    let dst_port = link::be16(data, 2)?;
    let chunks = data.get(12..).ok_or(DecodeError::Truncated)?;
    Ok((src_port, dst_port, chunks))
}

/// A quick look at a frame for the common case of an unfragmented UDP
/// datagram in IPv4 (directly in the link layer, no tunnel, no VLAN tag):
/// the datagram [`Decoder::decode`] would yield for it. `None` for anything
/// else, including every frame the decoder would reject or count as an
/// error (lengths out of range) and VXLAN, which it unwraps.
///
/// Side-effect free and cheap. The recorder peeks a few frames ahead of
/// handling them, to prefetch the state they will touch; a frame the peek
/// accepts is then handled from the peek, with [`Decoder::note_peeked`]
/// instead of a second decode (the fuzz target `decode` checks that the
/// two agree).
pub fn peek_udp(link: LinkType, data: &[u8]) -> Option<Datagram<'_>> {
    let Ok(Network::Ipv4(ip)) = link::network(link, data) else {
        return None;
    };
    let head = ip.get(..20)?;
    let ihl = usize::from(head.first()? & 0x0F) * 4;
    let fragmented = link::be16(head, 6).ok()? & 0x3FFF != 0;
    if head.first()? >> 4 != 4 || ihl < 20 || fragmented || *head.get(9)? != protocol::UDP {
        return None;
    }
    // A zero length (segmentation offload) and lengths the decoder rejects
    // are left to it.
    let total = usize::from(link::be16(head, 2).ok()?);
    if total < ihl || total > ip.len() {
        return None;
    }
    let addr = |at: usize| -> Option<IpAddr> {
        let octets: [u8; 4] = head.get(at..at + 4)?.try_into().ok()?;
        Some(IpAddr::from(octets))
    };
    let (src, dst) = (addr(12)?, addr(16)?);
    let (src_port, dst_port, payload) = udp(ip.get(ihl..total)?).ok()?;
    if dst_port == VXLAN_PORT {
        return None;
    }
    Some(Datagram {
        transport: Transport::Udp,
        src: SocketAddr::new(src, src_port),
        dst: SocketAddr::new(dst, dst_port),
        payload,
    })
}

/// UDP header (RFC 768): ports and the payload, bounded by the length field.
fn udp(data: &[u8]) -> Result<(u16, u16, &[u8]), DecodeError> {
    let src_port = link::be16(data, 0)?;
    let dst_port = link::be16(data, 2)?;
    let length = usize::from(link::be16(data, 4)?);
    if length < 8 {
        return Err(DecodeError::Malformed);
    }
    let payload = data.get(8..length).ok_or(DecodeError::Truncated)?;
    Ok((src_port, dst_port, payload))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    const SRC4: [u8; 4] = [192, 0, 2, 10];
    const DST4: [u8; 4] = [198, 51, 100, 20];

    fn udp_segment(src_port: u16, dst_port: u16, payload: &[u8]) -> Vec<u8> {
        let mut s = src_port.to_be_bytes().to_vec();
        s.extend_from_slice(&dst_port.to_be_bytes());
        s.extend_from_slice(&(8 + payload.len() as u16).to_be_bytes());
        s.extend_from_slice(&[0, 0]);
        s.extend_from_slice(payload);
        s
    }

    fn ipv4(protocol: u8, id: u16, flags_offset: u16, body: &[u8]) -> Vec<u8> {
        let mut p = vec![0x45, 0];
        p.extend_from_slice(&(20 + body.len() as u16).to_be_bytes());
        p.extend_from_slice(&id.to_be_bytes());
        p.extend_from_slice(&flags_offset.to_be_bytes());
        p.extend_from_slice(&[64, protocol, 0, 0]);
        p.extend_from_slice(&SRC4);
        p.extend_from_slice(&DST4);
        p.extend_from_slice(body);
        p
    }

    fn ipv6(next: u8, body: &[u8]) -> Vec<u8> {
        let mut p = vec![0x60, 0, 0, 0];
        p.extend_from_slice(&(body.len() as u16).to_be_bytes());
        p.extend_from_slice(&[next, 64]);
        p.extend_from_slice(&Ipv6Addr::new(0xfd17, 0, 0, 2, 0, 0, 0, 1).octets());
        p.extend_from_slice(&Ipv6Addr::new(0xfd17, 0, 0, 2, 0, 0, 0, 2).octets());
        p.extend_from_slice(body);
        p
    }

    fn ethernet(ethertype: u16, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2];
        f.extend_from_slice(&ethertype.to_be_bytes());
        f.extend_from_slice(payload);
        while f.len() < 60 {
            f.push(0); // minimum frame size padding
        }
        f
    }

    fn datagram(decoded: Decoded<'_>) -> (SocketAddr, SocketAddr, Vec<u8>) {
        match decoded {
            Decoded::Datagram(d) => {
                assert_eq!(d.transport, Transport::Udp);
                (d.src, d.dst, d.payload.to_vec())
            }
            other => panic!("expected a datagram, got {other:?}"),
        }
    }

    /// The recorder handles a frame the peek accepts from the peek alone, so
    /// the peek must yield exactly the decoder's datagram, and decline
    /// whatever the decoder treats otherwise.
    #[test]
    fn peek_agrees_with_decode() {
        let rtp = [0x80u8, 0, 0, 1, 0, 0, 0, 160, 0, 0, 0, 7, 0xFF, 0xFF];
        let plain = ethernet(0x0800, &ipv4(17, 1, 0x4000, &udp_segment(4000, 5000, &rtp)));
        let mut zero_length = plain.clone();
        zero_length[16..18].copy_from_slice(&[0, 0]);
        let mut too_long = plain.clone();
        too_long[16..18].copy_from_slice(&1400u16.to_be_bytes());
        let mut too_short = plain.clone();
        too_short[16..18].copy_from_slice(&12u16.to_be_bytes());
        let mut options = ipv4(17, 1, 0, &[]);
        options[0] = 0x46;
        options.extend_from_slice(&[1, 1, 1, 0]);
        options.extend_from_slice(&udp_segment(4000, 5000, &rtp));
        let total = options.len() as u16;
        options[2..4].copy_from_slice(&total.to_be_bytes());
        let options = ethernet(0x0800, &options);
        let vxlan = ethernet(
            0x0800,
            &ipv4(17, 1, 0, &udp_segment(4000, VXLAN_PORT, &rtp)),
        );
        let fragment = ethernet(0x0800, &ipv4(17, 1, 0x2000, &udp_segment(4000, 5000, &rtp)));
        let tcp = ethernet(0x0800, &ipv4(6, 1, 0, &[0; 20]));
        let bad_udp_length = {
            let mut segment = udp_segment(4000, 5000, &rtp);
            segment[4..6].copy_from_slice(&4u16.to_be_bytes());
            ethernet(0x0800, &ipv4(17, 1, 0, &segment))
        };
        let cases: [(&str, &[u8], bool); 9] = [
            ("plain", &plain, true),
            ("options", &options, true),
            ("zero length", &zero_length, false),
            ("length past the frame", &too_long, false),
            ("length inside the header", &too_short, false),
            ("vxlan", &vxlan, false),
            ("fragment", &fragment, false),
            ("tcp", &tcp, false),
            ("udp length under 8", &bad_udp_length, false),
        ];
        for (name, frame, accepted) in cases {
            let peeked = peek_udp(LinkType::Ethernet, frame);
            assert_eq!(peeked.is_some(), accepted, "{name}");
            let mut d = Decoder::new(FragmentLimits::default());
            let decoded = d.decode(Timestamp(0), LinkType::Ethernet, frame);
            if let Some(p) = peeked {
                let Ok(Decoded::Datagram(d)) = decoded else {
                    panic!("{name}: decoded as {decoded:?}");
                };
                assert_eq!(
                    (p.transport, p.src, p.dst),
                    (d.transport, d.src, d.dst),
                    "{name}"
                );
                assert_eq!(p.payload, &rtp[..], "{name}");
                assert!(std::ptr::eq(p.payload, d.payload), "{name}");
            }
        }
        let mut d = Decoder::new(FragmentLimits::default());
        d.note_peeked(Timestamp(0));
        assert_eq!(d.stats().frames, 1);
    }

    #[test]
    fn ethernet_ipv4_udp_with_padding() {
        let frame = ethernet(
            0x0800,
            &ipv4(17, 1, 0x4000, &udp_segment(5060, 5062, b"OPTIONS")),
        );
        let mut d = Decoder::new(FragmentLimits::default());
        let (src, dst, payload) =
            datagram(d.decode(Timestamp(0), LinkType::Ethernet, &frame).unwrap());
        assert_eq!(src, SocketAddr::from((Ipv4Addr::from(SRC4), 5060)));
        assert_eq!(dst, SocketAddr::from((Ipv4Addr::from(DST4), 5062)));
        assert_eq!(payload, b"OPTIONS");
    }

    #[test]
    fn zero_length_udp_payload() {
        let frame = ethernet(0x0800, &ipv4(17, 1, 0, &udp_segment(1, 2, b"")));
        let mut d = Decoder::new(FragmentLimits::default());
        let (_, _, payload) = datagram(d.decode(Timestamp(0), LinkType::Ethernet, &frame).unwrap());
        assert!(payload.is_empty());
    }

    #[test]
    fn udp_length_errors_are_counted() {
        let mut d = Decoder::new(FragmentLimits::default());
        let mut bad = udp_segment(1, 2, b"abc");
        bad[5] = 4; // length < 8
        let frame = ipv4(17, 1, 0, &bad);
        assert_eq!(
            d.decode(Timestamp(0), LinkType::Ipv4, &frame).unwrap_err(),
            DecodeError::Malformed
        );
        let mut long = udp_segment(1, 2, b"abc");
        long[5] = 200;
        let frame = ipv4(17, 1, 0, &long);
        assert_eq!(
            d.decode(Timestamp(0), LinkType::Ipv4, &frame).unwrap_err(),
            DecodeError::Truncated
        );
        let frame = ethernet(0x88b5, &[0; 20]);
        assert_eq!(
            d.decode(Timestamp(0), LinkType::Ethernet, &frame)
                .unwrap_err(),
            DecodeError::Unsupported
        );
        let s = d.stats();
        assert_eq!(
            (s.frames, s.malformed, s.truncated, s.unsupported),
            (3, 1, 1, 1)
        );
    }

    #[test]
    fn icmp_and_arp_are_ignored() {
        let mut d = Decoder::new(FragmentLimits::default());
        for frame in [
            ethernet(0x0800, &ipv4(1, 1, 0, &[8, 0, 0, 0])),
            ethernet(0x0806, &[0; 28]),
        ] {
            assert!(matches!(
                d.decode(Timestamp(0), LinkType::Ethernet, &frame),
                Ok(Decoded::Ignored)
            ));
        }
    }

    #[test]
    fn ipv4_ah_is_skipped() {
        let mut body = vec![17, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        body.extend_from_slice(&udp_segment(7, 8, b"ah"));
        let frame = ipv4(51, 1, 0, &body);
        let mut d = Decoder::new(FragmentLimits::default());
        let (_, _, payload) = datagram(d.decode(Timestamp(0), LinkType::Ipv4, &frame).unwrap());
        assert_eq!(payload, b"ah");
    }

    /// Splits a UDP segment into IPv4 fragments of `size` bytes (multiple of 8).
    fn ipv4_fragments(segment: &[u8], size: usize, id: u16) -> Vec<Vec<u8>> {
        let chunks: Vec<&[u8]> = segment.chunks(size).collect();
        chunks
            .iter()
            .enumerate()
            .map(|(i, chunk)| {
                let more = if i + 1 < chunks.len() { 0x2000 } else { 0 };
                let flags_offset = more | (i * size / 8) as u16;
                ethernet(0x0800, &ipv4(17, id, flags_offset, chunk))
            })
            .collect()
    }

    #[test]
    fn ipv4_fragments_in_order_out_of_order_and_duplicated() {
        let sip: Vec<u8> = b"INVITE sip:bob@example.com SIP/2.0\r\n"
            .iter()
            .copied()
            .cycle()
            .take(3000)
            .collect();
        let segment = udp_segment(5060, 5060, &sip);
        let frames = ipv4_fragments(&segment, 1480, 42);
        assert_eq!(frames.len(), 3);
        for order in [[0, 1, 2], [2, 0, 1], [1, 2, 1]] {
            let mut d = Decoder::new(FragmentLimits::default());
            let mut done = None;
            for (n, &i) in order.iter().enumerate() {
                let r = d
                    .decode(Timestamp(n as i64), LinkType::Ethernet, &frames[i])
                    .unwrap();
                if let Decoded::Datagram(dg) = r {
                    done = Some(dg.payload.to_vec());
                } else {
                    assert!(matches!(r, Decoded::FragmentHeld));
                }
            }
            if order == [1, 2, 1] {
                assert!(done.is_none());
                // the missing first fragment completes it
                let (_, _, payload) = datagram(
                    d.decode(Timestamp(9), LinkType::Ethernet, &frames[0])
                        .unwrap(),
                );
                assert_eq!(payload, sip);
            } else {
                assert_eq!(done.as_deref(), Some(&sip[..]));
            }
            assert_eq!(d.stats().reassembled, 1);
            assert_eq!(d.reassembler().held_bytes(), 0);
        }
    }

    #[test]
    fn fragment_timeout_is_counted() {
        let segment = udp_segment(1, 2, &[7; 100]);
        let frames = ipv4_fragments(&segment, 48, 5);
        let limits = FragmentLimits {
            timeout_nanos: 1_000,
            ..FragmentLimits::default()
        };
        let mut d = Decoder::new(limits);
        d.decode(Timestamp(0), LinkType::Ethernet, &frames[0])
            .unwrap();
        // an unrelated packet much later expires the partial datagram
        let other = ethernet(0x0806, &[0; 28]);
        d.decode(Timestamp(10_000), LinkType::Ethernet, &other)
            .unwrap();
        assert_eq!(d.stats().fragments_dropped, 1);
        assert_eq!(d.reassembler().in_progress(), 0);
    }

    #[test]
    fn ipv6_fragments_with_extension_headers_reassemble() {
        let sip =
            b"INVITE sip:alice@[fd17::2] SIP/2.0\r\nVia: SIP/2.0/UDP [fd17::1]\r\n".repeat(30);
        // fragmentable part: destination options header, then UDP
        let mut fragmentable = vec![17, 0, 1, 4, 0, 0, 0, 0];
        fragmentable.extend_from_slice(&udp_segment(15060, 5062, &sip));
        let (first, second) = fragmentable.split_at(1232);
        let frag = |offset: usize, more: bool, data: &[u8]| {
            // hop-by-hop, then the fragment header (next header: dest options)
            let mut body = vec![44, 0, 1, 4, 0, 0, 0, 0];
            body.extend_from_slice(&[60, 0]);
            body.extend_from_slice(&(((offset / 8) as u16) << 3 | more as u16).to_be_bytes());
            body.extend_from_slice(&0xcafe_f00du32.to_be_bytes());
            body.extend_from_slice(data);
            let mut sll = vec![0, 4, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0, 0x86, 0xdd];
            sll.extend_from_slice(&ipv6(0, &body));
            sll
        };
        let f1 = frag(0, true, first);
        let f2 = frag(1232, false, second);
        let mut d = Decoder::new(FragmentLimits::default());
        assert!(matches!(
            d.decode(Timestamp(0), LinkType::LinuxSll, &f2),
            Ok(Decoded::FragmentHeld)
        ));
        let (src, dst, payload) =
            datagram(d.decode(Timestamp(1), LinkType::LinuxSll, &f1).unwrap());
        assert_eq!(payload, sip);
        assert_eq!(src.port(), 15060);
        assert_eq!(
            dst.ip(),
            IpAddr::V6(Ipv6Addr::new(0xfd17, 0, 0, 2, 0, 0, 0, 2))
        );
        let s = d.stats();
        assert_eq!((s.fragments, s.reassembled, s.fragments_dropped), (2, 1, 0));
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let mut d = Decoder::new(FragmentLimits::default());
        let mut state: u32 = 1;
        let seed = ethernet(0x0800, &ipv4(17, 3, 0x2000, &udp_segment(1, 2, &[0; 40])));
        for i in 0..20_000 {
            let mut frame = seed.clone();
            for _ in 0..4 {
                state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                let at = (state >> 8) as usize % frame.len();
                frame[at] = (state >> 24) as u8;
            }
            frame.truncate((state as usize >> 3) % (frame.len() + 1));
            for link in [
                LinkType::Ethernet,
                LinkType::RawIp,
                LinkType::Null,
                LinkType::LinuxSll2,
            ] {
                let _ = d.decode(Timestamp(i), link, &frame);
            }
        }
        assert_eq!(d.stats().frames, 80_000);
    }

    fn tcp_segment(src_port: u16, dst_port: u16, seq: u32, flags: u8, payload: &[u8]) -> Vec<u8> {
        let mut t = src_port.to_be_bytes().to_vec();
        t.extend_from_slice(&dst_port.to_be_bytes());
        t.extend_from_slice(&seq.to_be_bytes());
        t.extend_from_slice(&[0, 0, 0, 0, 5 << 4, flags, 0xff, 0xff, 0, 0, 0, 0]);
        t.extend_from_slice(payload);
        t
    }

    const SIP: &[u8] = b"OPTIONS sip:a SIP/2.0\r\n\r\n";

    /// The UDP datagram a tunnelled frame ends in, and the decoder's stats.
    fn inner_udp(link: LinkType, frame: &[u8]) -> (Vec<u8>, DecodeStats) {
        let mut d = Decoder::new(FragmentLimits::default());
        let (_, dst, payload) = datagram(d.decode(Timestamp(0), link, frame).unwrap());
        assert_eq!(dst.port(), 5062);
        (payload, d.stats().clone())
    }

    fn inner_ipv4_udp() -> Vec<u8> {
        ipv4(17, 9, 0, &udp_segment(5060, 5062, SIP))
    }

    fn gre(protocol: u16, payload: &[u8]) -> Vec<u8> {
        let mut g = vec![0, 0];
        g.extend_from_slice(&protocol.to_be_bytes());
        g.extend_from_slice(payload);
        g
    }

    #[test]
    fn tcp_segments_are_exposed() {
        let frame = ethernet(
            0x0800,
            &ipv4(6, 1, 0, &tcp_segment(40000, 6060, 77, 0x18, SIP)),
        );
        let mut d = Decoder::new(FragmentLimits::default());
        match d.decode(Timestamp(0), LinkType::Ethernet, &frame).unwrap() {
            Decoded::Segment(s) => {
                assert_eq!(s.src, SocketAddr::from((Ipv4Addr::from(SRC4), 40000)));
                assert_eq!(s.dst.port(), 6060);
                assert_eq!(s.seq, 77);
                assert_eq!(s.payload, SIP);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(d.stats().tcp_segments, 1);
        let bad = ethernet(0x0800, &ipv4(6, 1, 0, &[0; 20]));
        assert_eq!(
            d.decode(Timestamp(0), LinkType::Ethernet, &bad)
                .unwrap_err(),
            DecodeError::Malformed
        );
    }

    #[test]
    fn gre_transparent_ethernet_bridging_frame() {
        let inner = ethernet(0x0800, &inner_ipv4_udp());
        let frame = ethernet(0x0800, &ipv4(47, 1, 0, &gre(0x6558, &inner)));
        let (payload, stats) = inner_udp(LinkType::Ethernet, &frame);
        assert_eq!(payload, SIP);
        assert_eq!((stats.gre, stats.tunnelled()), (1, 1));
    }

    #[test]
    fn vlan_gre_ppp_ipv4() {
        // 802.1Q -> IPv4 -> GRE v1 (PPTP) -> PPP (FF 03 0021) -> IPv4 -> UDP
        let ip = inner_ipv4_udp();
        let mut ppp = vec![0xff, 0x03, 0x00, 0x21];
        ppp.extend_from_slice(&ip);
        let mut g = vec![0x30, 0x01, 0x88, 0x0b];
        g.extend_from_slice(&(ppp.len() as u16).to_be_bytes());
        g.extend_from_slice(&[0, 1, 0, 0, 0, 5]);
        g.extend_from_slice(&ppp);
        let mut tagged = vec![0x00, 0x8e, 0x08, 0x00];
        tagged.extend_from_slice(&ipv4(47, 1, 0, &g));
        let frame = ethernet(0x8100, &tagged);
        let (payload, stats) = inner_udp(LinkType::Ethernet, &frame);
        assert_eq!(payload, SIP);
        assert_eq!(stats.gre, 1);
    }

    #[test]
    fn pppoe_ppp_ipv4_is_counted() {
        let ip = inner_ipv4_udp();
        let mut pppoe = vec![0x11, 0x00, 0x00, 0x01];
        pppoe.extend_from_slice(&(ip.len() as u16 + 2).to_be_bytes());
        pppoe.extend_from_slice(&[0x00, 0x21]);
        pppoe.extend_from_slice(&ip);
        let (payload, stats) = inner_udp(LinkType::Ethernet, &ethernet(0x8864, &pppoe));
        assert_eq!(payload, SIP);
        assert_eq!(stats.pppoe, 1);
    }

    #[test]
    fn erspan_ii_and_iii_frames() {
        let inner = ethernet(0x0800, &inner_ipv4_udp());
        let mut g = vec![0x10, 0x00, 0x88, 0xbe, 0, 0, 0, 1];
        g.extend_from_slice(&[0x10, 0x05, 0x00, 0x03, 0, 0, 0, 1]);
        g.extend_from_slice(&inner);
        let frame = ethernet(0x0800, &ipv4(47, 1, 0, &g));
        let (payload, stats) = inner_udp(LinkType::Ethernet, &frame);
        assert_eq!(
            (payload.as_slice(), stats.erspan_ii, stats.gre),
            (SIP, 1, 0)
        );
        let mut g = vec![0x10, 0x00, 0x22, 0xeb, 0, 0, 0, 1];
        g.extend_from_slice(&[0x20, 0x05, 0x00, 0x03, 0, 0, 0, 9, 0, 0, 0, 0]);
        g.extend_from_slice(&inner);
        let frame = ethernet(0x0800, &ipv4(47, 1, 0, &g));
        let (payload, stats) = inner_udp(LinkType::Ethernet, &frame);
        assert_eq!((payload.as_slice(), stats.erspan_iii), (SIP, 1));
    }

    #[test]
    fn vxlan_frame_and_plain_udp_on_4789() {
        let inner = ethernet(0x0800, &inner_ipv4_udp());
        let mut v = vec![0x08, 0, 0, 0, 0, 0, 7, 0];
        v.extend_from_slice(&inner);
        let frame = ethernet(0x0800, &ipv4(17, 1, 0, &udp_segment(55555, VXLAN_PORT, &v)));
        let (payload, stats) = inner_udp(LinkType::Ethernet, &frame);
        assert_eq!((payload.as_slice(), stats.vxlan), (SIP, 1));
        // Without the I flag it is just UDP to port 4789.
        let frame = ethernet(
            0x0800,
            &ipv4(17, 1, 0, &udp_segment(1, VXLAN_PORT, &[0; 30])),
        );
        let mut d = Decoder::new(FragmentLimits::default());
        let (_, dst, _) = datagram(d.decode(Timestamp(0), LinkType::Ethernet, &frame).unwrap());
        assert_eq!((dst.port(), d.stats().vxlan), (VXLAN_PORT, 0));
    }

    #[test]
    fn mpls_stacks_over_ip_and_ethernet_pseudowire() {
        let ip = inner_ipv4_udp();
        let mut stack = vec![0, 1, 0x00, 64, 0, 2, 0x01, 64]; // two labels, S on the 2nd
        stack.extend_from_slice(&ip);
        let (payload, stats) = inner_udp(LinkType::Ethernet, &ethernet(0x8847, &stack));
        assert_eq!((payload.as_slice(), stats.mpls), (SIP, 1));
        // Pseudowire with control word, then Ethernet.
        let mut pw = vec![0, 3, 0x01, 64, 0, 0, 0, 0];
        pw.extend_from_slice(&ethernet(0x0800, &ip));
        let (payload, _) = inner_udp(LinkType::Ethernet, &ethernet(0x8847, &pw));
        assert_eq!(payload, SIP);
        // A stack that never ends.
        let mut d = Decoder::new(FragmentLimits::default());
        let endless = ethernet(0x8847, &[0, 1, 0, 64, 0, 1, 0, 64]);
        assert!(d
            .decode(Timestamp(0), LinkType::Ethernet, &endless)
            .is_err());
    }

    #[test]
    fn ip_in_ip_and_gre_over_ipv6() {
        let frame = ethernet(0x0800, &ipv4(4, 1, 0, &inner_ipv4_udp()));
        let (payload, stats) = inner_udp(LinkType::Ethernet, &frame);
        assert_eq!((payload.as_slice(), stats.ip_in_ip), (SIP, 1));
        let frame = ethernet(0x86dd, &ipv6(47, &gre(0x0800, &inner_ipv4_udp())));
        let (payload, stats) = inner_udp(LinkType::Ethernet, &frame);
        assert_eq!((payload.as_slice(), stats.gre), (SIP, 1));
    }

    #[test]
    fn nesting_is_bounded() {
        // IP-in-IP nested deeper than the limit.
        let mut packet = inner_ipv4_udp();
        for _ in 0..MAX_ENCAP_DEPTH {
            packet = ipv4(4, 1, 0, &packet);
        }
        let (payload, stats) = inner_udp(LinkType::Ipv4, &packet);
        assert_eq!(
            (payload.as_slice(), stats.ip_in_ip),
            (SIP, MAX_ENCAP_DEPTH as u64)
        );
        let packet = ipv4(4, 1, 0, &packet);
        let mut d = Decoder::new(FragmentLimits::default());
        assert_eq!(
            d.decode(Timestamp(0), LinkType::Ipv4, &packet).unwrap_err(),
            DecodeError::Malformed
        );
        assert_eq!((d.stats().encap_too_deep, d.stats().malformed), (1, 1));
    }

    #[test]
    fn fragmented_inner_packet_and_fragmented_outer_packet() {
        let sip: Vec<u8> = SIP.iter().copied().cycle().take(2000).collect();
        let segment = udp_segment(5060, 5062, &sip);
        // Inner fragments, each in its own GRE/TEB frame.
        let mut d = Decoder::new(FragmentLimits::default());
        let mut done = None;
        for (i, chunk) in segment.chunks(1480).enumerate() {
            let more = if (i + 1) * 1480 < segment.len() {
                0x2000
            } else {
                0
            };
            let inner = ethernet(0x0800, &ipv4(17, 77, more | (i * 185) as u16, chunk));
            let frame = ethernet(0x0800, &ipv4(47, i as u16, 0, &gre(0x6558, &inner)));
            if let Decoded::Datagram(dg) =
                d.decode(Timestamp(0), LinkType::Ethernet, &frame).unwrap()
            {
                done = Some(dg.payload.to_vec());
            }
        }
        assert_eq!(done.as_deref(), Some(sip.as_slice()));
        assert_eq!((d.stats().gre, d.stats().reassembled), (2, 1));
        // Outer fragments of a GRE packet carrying a whole inner packet.
        let inner = ethernet(0x0800, &ipv4(17, 5, 0, &segment));
        let outer = gre(0x6558, &inner);
        let mut d = Decoder::new(FragmentLimits::default());
        let mut done = None;
        for (i, chunk) in outer.chunks(1480).enumerate() {
            let more = if (i + 1) * 1480 < outer.len() {
                0x2000
            } else {
                0
            };
            let frame = ethernet(0x0800, &ipv4(47, 99, more | (i * 185) as u16, chunk));
            if let Decoded::Datagram(dg) =
                d.decode(Timestamp(0), LinkType::Ethernet, &frame).unwrap()
            {
                done = Some(dg.payload.to_vec());
            }
        }
        assert_eq!(done.as_deref(), Some(sip.as_slice()));
    }
}
