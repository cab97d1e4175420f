#!/usr/bin/env python3
"""Writes small fuzz seeds under fuzz/seeds/<target>/ from the project's captures
(pcaps/*.pcap) and the external corpus (referenced by path, never copied whole).

Frame sequences use the layout of fuzz/fuzz_targets/common.rs: flags (u8, low 3
bits = link type index), time step (u16 BE, 100 us units), length (u16 BE), bytes.
Run from the repository root: python3 fuzz/make_seeds.py
"""
import glob, hashlib, os, struct, sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "fuzz", "seeds")
EXTERNAL = "/work/shared/pcaps/external"
# common.rs link index by LINKTYPE_ value.
LINK_INDEX = {1: 0, 113: 1, 276: 2, 101: 3, 12: 3, 14: 3, 228: 4, 229: 5, 0: 6, 108: 6}
MAX_SEED = 8 * 1024
TRACKER_SEED = 24 * 1024


def read_capture(path):
    """Yields (linktype, seconds, frame bytes) from a classic pcap or pcapng file."""
    data = open(path, "rb").read()
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        nanos = magic == b"\x4d\x3c\xb2\xa1"
        link = struct.unpack_from("<I", data, 20)[0]
        off = 24
        while off + 16 <= len(data):
            sec, frac, incl, _ = struct.unpack_from("<IIII", data, off)
            off += 16
            yield link, sec + frac / (1e9 if nanos else 1e6), data[off:off + incl]
            off += incl
    elif magic == b"\x0a\x0d\x0d\x0a":
        off, links = 0, []
        while off + 12 <= len(data):
            btype, blen = struct.unpack_from("<II", data, off)
            if blen < 12:
                break
            body = data[off + 8:off + blen - 4]
            if btype == 0x0A0D0D0A:
                links = []
            elif btype == 1:
                links.append(struct.unpack_from("<H", body, 0)[0])
            elif btype == 6:
                ifid, hi, lo, incl = struct.unpack_from("<IIII", body, 0)
                if ifid < len(links):
                    yield links[ifid], ((hi << 32) | lo) / 1e6, body[20:20 + incl]
            off += blen


def udp_payload(link, frame):
    """The UDP payload of an Ethernet/SLL/raw IPv4/IPv6 frame, or None."""
    if link == 1:
        off, etype = 14, struct.unpack_from(">H", frame, 12)[0] if len(frame) >= 14 else 0
        while etype in (0x8100, 0x88A8) and len(frame) >= off + 4:
            etype = struct.unpack_from(">H", frame, off + 2)[0]
            off += 4
    elif link == 113:
        off, etype = 16, struct.unpack_from(">H", frame, 14)[0] if len(frame) >= 16 else 0
    elif link in (101, 12, 14):
        off, etype = 0, 0x0800 if frame[:1] and frame[0] >> 4 == 4 else 0x86DD
    else:
        return None
    ip = frame[off:]
    if etype == 0x0800 and len(ip) >= 20 and ip[9] == 17:
        frag = struct.unpack_from(">H", ip, 6)[0]
        if frag & 0x3FFF:
            return None
        ihl = (ip[0] & 15) * 4
        return ip[ihl + 8:]
    if etype == 0x86DD and len(ip) >= 40 and ip[6] == 17:
        return ip[48:]
    return None


def record(link, step_secs, frame):
    step = max(0, min(0xFFFF, int(round(step_secs * 10000))))
    return struct.pack(">BHH", LINK_INDEX.get(link, 0), step, len(frame)) + frame


def save(target, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    name = hashlib.sha1(data).hexdigest()[:16]
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def is_sip(p):
    return p[:8] in (b"SIP/2.0 ",) or any(p.startswith(m + b" ") for m in (
        b"INVITE", b"ACK", b"BYE", b"CANCEL", b"OPTIONS", b"REGISTER", b"PRACK",
        b"UPDATE", b"INFO", b"NOTIFY", b"SUBSCRIBE", b"REFER", b"MESSAGE", b"PUBLISH"))


def main():
    captures = sorted(glob.glob(os.path.join(ROOT, "pcaps", "*.pcap")))
    captures += sorted(glob.glob(os.path.join(EXTERNAL, "*.pcap*")) + glob.glob(os.path.join(EXTERNAL, "*.cap")))
    sip_seen, sdp_seen = set(), set()
    for path in captures:
        raw = open(path, "rb").read()
        # capture_file: the file's head (header and first blocks).
        save("capture_file", raw[:4096])
        frames = list(read_capture(path))
        if not frames:
            continue
        # decode: the first frames as a sequence.
        seq, last = b"", frames[0][1]
        for link, ts, frame in frames[:40]:
            seq += record(link, ts - last, frame)
            last = ts
        save("decode", seq[:MAX_SEED])
        # tracker: every SIP frame, RTP frames until the size budget.
        sip_bytes = 0
        for link, ts, frame in frames:
            p = udp_payload(link, frame)
            if p is not None and is_sip(p):
                sip_bytes += len(frame) + 5
        rtp_budget, rtp_used = max(0, TRACKER_SEED - sip_bytes), 0
        seq, last = b"", frames[0][1]
        for link, ts, frame in frames:
            p = udp_payload(link, frame)
            if p is None or not is_sip(p):
                if rtp_used + len(frame) + 5 > rtp_budget:
                    continue
                rtp_used += len(frame) + 5
            seq += record(link, ts - last, frame)
            last = ts
        save("tracker", seq[:TRACKER_SEED])
        # sip_message / sdp / rtp: payloads.
        rtp = b""
        for link, ts, frame in frames:
            p = udp_payload(link, frame)
            if p is None:
                continue
            if is_sip(p):
                key = p[:64]
                if key not in sip_seen and len(sip_seen) < 60:
                    sip_seen.add(key)
                    save("sip_message", p)
                body = p.split(b"\r\n\r\n", 1)
                if len(body) == 2 and body[1].startswith(b"v=0") and body[1] not in sdp_seen and len(sdp_seen) < 60:
                    sdp_seen.add(body[1])
                    save("sdp", body[1])
            elif p[:1] and p[0] & 0xC0 == 0x80 and len(rtp) < 4096:
                rtp += record(1 if len(rtp) % 2 else 0, 0.02, p)
        if rtp:
            save("rtp", rtp)


if __name__ == "__main__":
    sys.exit(main())
