//! The live benchmark's traffic generator: sends the frames of a capture
//! file onto an interface as fast as asked, for `benches/live-capture.sh`.
//!
//! tcpreplay sends one frame per system call through a socket that also
//! receives every frame it sends (ETH_P_ALL), which caps it near 450,000
//! packets/s on this machine before any capture runs. This sender loads the
//! file into memory, then writes frames in batches with `sendmmsg` on an
//! AF_PACKET socket that receives nothing (protocol 0) and bypasses the
//! qdisc. Pacing is per batch: batch k leaves no earlier than
//! `k * batch / pps` seconds after the start (0 pps: as fast as possible).
//!
//! Usage: `pcap_sender IFACE FILE [PPS] [BATCH]`; prints
//! `sent N seconds S packets/s P retries R` on stdout. The sending-side rate
//! is printed; the benchmark reads what arrived from the receiving
//! interface's counters.

use std::process::ExitCode;
use std::time::{Duration, Instant};
use taprec::capture::file::FileReader;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(iface), Some(path)) = (args.first(), args.get(1)) else {
        eprintln!("usage: pcap_sender IFACE FILE [PPS] [BATCH]");
        return ExitCode::from(2);
    };
    let pps: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(0);
    let batch: usize = args
        .get(3)
        .and_then(|s| s.parse().ok())
        .unwrap_or(64)
        .clamp(1, 1024);
    match run(iface, path, pps, batch) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pcap_sender: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(iface: &str, path: &str, pps: u64, batch: usize) -> Result<(), Box<dyn std::error::Error>> {
    // Load every frame: one buffer, (offset, length) per frame.
    let mut data = Vec::new();
    let mut frames: Vec<(usize, usize)> = Vec::new();
    let mut reader = FileReader::open(path)?;
    while let Some(frame) = reader.next_frame()? {
        frames.push((data.len(), frame.data.len()));
        data.extend_from_slice(frame.data);
    }
    let sock = PacketSocket::open(iface)?;
    let started = Instant::now();
    let mut sent = 0usize;
    let mut retries = 0u64;
    let mut iov: Vec<libc::iovec> = Vec::with_capacity(batch);
    let mut msgs: Vec<libc::mmsghdr> = Vec::with_capacity(batch);
    while sent < frames.len() {
        if pps > 0 {
            let due = Duration::from_secs_f64(sent as f64 / pps as f64);
            loop {
                let now = started.elapsed();
                if now >= due {
                    break;
                }
                let left = due - now;
                if left > Duration::from_micros(200) {
                    std::thread::sleep(left - Duration::from_micros(100));
                } else {
                    std::hint::spin_loop();
                }
            }
        }
        let end = (sent + batch).min(frames.len());
        iov.clear();
        msgs.clear();
        for &(off, len) in &frames[sent..end] {
            iov.push(libc::iovec {
                iov_base: data[off..off + len].as_ptr() as *mut libc::c_void,
                iov_len: len,
            });
        }
        for v in iov.iter_mut() {
            // SAFETY: mmsghdr is plain data; all-zero is a valid value.
            let mut m: libc::mmsghdr = unsafe { std::mem::zeroed() };
            m.msg_hdr.msg_iov = v;
            m.msg_hdr.msg_iovlen = 1;
            msgs.push(m);
        }
        let n = sock.send_batch(&mut msgs)?;
        if n == 0 {
            // Device queue full: let the receiver side run.
            retries += 1;
            std::thread::yield_now();
        }
        sent += n;
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "sent {sent} seconds {secs:.3} packets/s {:.0} retries {retries}",
        sent as f64 / secs
    );
    Ok(())
}

/// An AF_PACKET socket bound to one interface that only sends.
struct PacketSocket(libc::c_int);

impl PacketSocket {
    fn open(iface: &str) -> std::io::Result<PacketSocket> {
        let name = std::ffi::CString::new(iface)?;
        // SAFETY: a valid NUL-terminated name.
        let index = unsafe { libc::if_nametoindex(name.as_ptr()) };
        if index == 0 {
            return Err(std::io::Error::last_os_error());
        }
        // Protocol 0: the socket receives nothing, so sending does not
        // copy each frame back to it.
        // SAFETY: plain socket call.
        let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, 0) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let sock = PacketSocket(fd);
        let one: libc::c_int = 1;
        // SAFETY: an int option of the right size. Failure is harmless
        // (older kernels): frames then go through the qdisc.
        unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_PACKET,
                libc::PACKET_QDISC_BYPASS,
                &one as *const _ as *const libc::c_void,
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        let sndbuf: libc::c_int = 64 << 20;
        // SAFETY: as above.
        unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_SNDBUFFORCE,
                &sndbuf as *const _ as *const libc::c_void,
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        // SAFETY: sockaddr_ll is plain data.
        let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        addr.sll_family = libc::AF_PACKET as u16;
        addr.sll_protocol = 0;
        addr.sll_ifindex = index as i32;
        // SAFETY: a valid sockaddr_ll and its size.
        let r = unsafe {
            libc::bind(
                fd,
                &addr as *const _ as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if r < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(sock)
    }

    /// Sends what it can of `msgs`; 0 when the device is busy.
    fn send_batch(&self, msgs: &mut [libc::mmsghdr]) -> std::io::Result<usize> {
        // SAFETY: `msgs` point to iovecs and buffers alive for the call.
        let n = unsafe { libc::sendmmsg(self.0, msgs.as_mut_ptr(), msgs.len() as libc::c_uint, 0) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            return match e.raw_os_error() {
                Some(libc::ENOBUFS | libc::EAGAIN | libc::EINTR) => Ok(0),
                _ => Err(e),
            };
        }
        Ok(n as usize)
    }
}

impl Drop for PacketSocket {
    fn drop(&mut self) {
        // SAFETY: our own descriptor, closed once.
        unsafe { libc::close(self.0) };
    }
}
