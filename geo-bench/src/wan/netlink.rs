//! A minimal NFQUEUE client over raw netlink (nfnetlink_queue, the kernel
//! side of iptables' `-j NFQUEUE`): bind a queue, receive the id and the
//! IPv4 addresses of each queued packet, and send verdicts, many per
//! system call. Written on `libc` rather than a crate because the delayer
//! needs the socket's fd to wait with a timeout (`ppoll`) for the next
//! packet or the next release, whichever comes first.
//!
//! Wire format: `linux/netlink.h`, `linux/netfilter/nfnetlink.h` and
//! `linux/netfilter/nfnetlink_queue.h`. Netlink headers are in host byte
//! order, nfqueue attribute values in network byte order.

use super::WanError;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

const NFNL_SUBSYS_QUEUE: u16 = 3;
const NFQNL_MSG_PACKET: u16 = NFNL_SUBSYS_QUEUE << 8;
const NFQNL_MSG_VERDICT: u16 = (NFNL_SUBSYS_QUEUE << 8) | 1;
const NFQNL_MSG_CONFIG: u16 = (NFNL_SUBSYS_QUEUE << 8) | 2;
const NLMSG_ERROR: u16 = 2;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_ACK: u16 = 4;
const NLMSG_HDRLEN: usize = 16;
const NFGENMSG_LEN: usize = 4;

const NFQA_CFG_CMD: u16 = 1;
const NFQA_CFG_PARAMS: u16 = 2;
const NFQA_CFG_QUEUE_MAXLEN: u16 = 3;
const NFQA_CFG_MASK: u16 = 4;
const NFQA_CFG_FLAGS: u16 = 5;
const NFQNL_CFG_CMD_BIND: u8 = 1;
const NFQNL_COPY_PACKET: u8 = 2;
/// Whole GSO packets, unsegmented: the delayer never changes payloads.
const NFQA_CFG_F_GSO: u32 = 1 << 2;

const NFQA_PACKET_HDR: u16 = 1;
const NFQA_VERDICT_HDR: u16 = 2;
const NFQA_PAYLOAD: u16 = 10;
const NLA_TYPE_MASK: u16 = 0x3fff;

/// Bytes of each packet copied to us: the IPv4 header's addresses.
const COPY_RANGE: u32 = 20;
/// Verdicts sent in one `sendto` at most.
pub const MAX_VERDICTS_PER_SEND: usize = 512;
const VERDICT_MSG_LEN: usize = NLMSG_HDRLEN + NFGENMSG_LEN + 12;

/// One queued packet: the id its verdict names, and its IPv4 addresses
/// (None for a packet too short or not IPv4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueuedPacket {
    pub id: u32,
    pub src: Option<Ipv4Addr>,
    pub dst: Option<Ipv4Addr>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Drop = 0,
    Accept = 1,
}

/// An open, bound NFQUEUE socket in the network namespace of the thread
/// that opened it.
pub struct NfQueue {
    fd: OwnedFd,
    queue_num: u16,
    seq: u32,
    recv_buf: Vec<u8>,
    verdicts: Vec<u8>,
    verdicts_pending: usize,
    /// Error messages the kernel sent back (e.g. a verdict for an id it
    /// no longer holds).
    pub errors: u64,
}

impl NfQueue {
    /// Opens a netlink socket, binds `queue_num` and sets the copy range,
    /// the kernel queue's length bound and unsegmented GSO packets.
    pub fn open(queue_num: u16, max_len: u32) -> Result<NfQueue, WanError> {
        // SAFETY: plain socket(2); the fd is owned right away.
        let raw = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::NETLINK_NETFILTER,
            )
        };
        if raw < 0 {
            return Err(os_err("socket(AF_NETLINK, NETLINK_NETFILTER)"));
        }
        // SAFETY: raw is a fresh fd that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: a zeroed sockaddr_nl is valid; pid 0 lets the kernel pick.
        let mut addr: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        addr.nl_family = libc::AF_NETLINK as u16;
        // SAFETY: addr is a valid sockaddr_nl of the given length.
        let rc = unsafe {
            libc::bind(
                raw,
                &addr as *const libc::sockaddr_nl as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_nl>() as u32,
            )
        };
        if rc != 0 {
            return Err(os_err("bind(netlink)"));
        }
        let mut q = NfQueue {
            fd,
            queue_num,
            seq: 0,
            recv_buf: vec![0; 65536],
            verdicts: Vec::with_capacity(MAX_VERDICTS_PER_SEND * VERDICT_MSG_LEN),
            verdicts_pending: 0,
            errors: 0,
        };
        // A large receive buffer rides out bursts while we send verdicts;
        // FORCE needs CAP_NET_ADMIN, which we have, else the plain one caps it.
        let rcvbuf: libc::c_int = 8 << 20;
        if q.setsockopt(libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, rcvbuf)
            .is_err()
        {
            q.setsockopt(libc::SOL_SOCKET, libc::SO_RCVBUF, rcvbuf)?;
        }
        // Acks come within microseconds; bound the wait anyway.
        let tv = libc::timeval {
            tv_sec: 2,
            tv_usec: 0,
        };
        // SAFETY: tv is a valid timeval of the given length.
        if unsafe {
            libc::setsockopt(
                raw,
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                &tv as *const libc::timeval as *const libc::c_void,
                std::mem::size_of::<libc::timeval>() as u32,
            )
        } != 0
        {
            return Err(os_err("setsockopt(SO_RCVTIMEO)"));
        }

        let mut cmd = [0u8; 4];
        cmd[0] = NFQNL_CFG_CMD_BIND;
        q.config(&[(NFQA_CFG_CMD, &cmd)], "bind the queue")?;
        let mut params = [0u8; 5];
        params[..4].copy_from_slice(&COPY_RANGE.to_be_bytes());
        params[4] = NFQNL_COPY_PACKET;
        q.config(&[(NFQA_CFG_PARAMS, &params)], "set the copy range")?;
        q.config(
            &[(NFQA_CFG_QUEUE_MAXLEN, &max_len.to_be_bytes())],
            "set the queue length",
        )?;
        q.config(
            &[
                (NFQA_CFG_FLAGS, &NFQA_CFG_F_GSO.to_be_bytes()),
                (NFQA_CFG_MASK, &NFQA_CFG_F_GSO.to_be_bytes()),
            ],
            "ask for unsegmented GSO packets",
        )?;
        // SAFETY: fcntl on our own fd.
        let flags = unsafe { libc::fcntl(raw, libc::F_GETFL) };
        if flags < 0 || unsafe { libc::fcntl(raw, libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0 {
            return Err(os_err("fcntl(O_NONBLOCK)"));
        }
        Ok(q)
    }

    fn setsockopt(&self, level: i32, name: i32, value: libc::c_int) -> Result<(), WanError> {
        // SAFETY: value is a valid c_int of the given length.
        let rc = unsafe {
            libc::setsockopt(
                self.fd.as_raw_fd(),
                level,
                name,
                &value as *const libc::c_int as *const libc::c_void,
                std::mem::size_of::<libc::c_int>() as u32,
            )
        };
        if rc != 0 {
            return Err(os_err("setsockopt"));
        }
        Ok(())
    }

    /// Sends one config message with an ack request and waits for the ack.
    fn config(&mut self, attrs: &[(u16, &[u8])], what: &str) -> Result<(), WanError> {
        self.seq += 1;
        let seq = self.seq;
        let mut msg = Vec::with_capacity(64);
        put_header(
            &mut msg,
            NFQNL_MSG_CONFIG,
            NLM_F_REQUEST | NLM_F_ACK,
            seq,
            self.queue_num,
        );
        for (kind, value) in attrs {
            put_attr(&mut msg, *kind, value);
        }
        finish_len(&mut msg, 0);
        self.send(&msg)
            .map_err(|e| WanError::Netlink(format!("{what}: {e}")))?;
        // Bounded: the socket has a receive timeout, and we read at most
        // a few messages before the ack (nothing else is queued yet).
        for _ in 0..16 {
            let n = self
                .recv_raw()
                .map_err(|e| WanError::Netlink(format!("{what}: {e}")))?;
            let mut at = 0;
            while let Some((kind, body, next)) = next_message(&self.recv_buf[..n], at) {
                at = next;
                if kind == NLMSG_ERROR && body.len() >= 4 {
                    let errno = -i32::from_ne_bytes(body[..4].try_into().expect("4 bytes"));
                    let acked_seq = body
                        .get(4 + 8..4 + 12)
                        .map(|b| u32::from_ne_bytes(b.try_into().expect("4 bytes")));
                    if acked_seq != Some(seq) {
                        continue;
                    }
                    if errno == 0 {
                        return Ok(());
                    }
                    return Err(WanError::Netlink(format!(
                        "{what}: {}",
                        std::io::Error::from_raw_os_error(errno)
                    )));
                }
            }
        }
        Err(WanError::Netlink(format!(
            "{what}: no acknowledgement from the kernel"
        )))
    }

    fn send(&self, bytes: &[u8]) -> std::io::Result<()> {
        // SAFETY: a zeroed sockaddr_nl addresses the kernel (pid 0).
        let mut kernel: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        kernel.nl_family = libc::AF_NETLINK as u16;
        // SAFETY: bytes and kernel are valid for the lengths given.
        let rc = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                bytes.as_ptr() as *const libc::c_void,
                bytes.len(),
                0,
                &kernel as *const libc::sockaddr_nl as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_nl>() as u32,
            )
        };
        if rc < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }

    fn recv_raw(&mut self) -> std::io::Result<usize> {
        // SAFETY: recv_buf is valid for its length.
        let n = unsafe {
            libc::recv(
                self.fd.as_raw_fd(),
                self.recv_buf.as_mut_ptr() as *mut libc::c_void,
                self.recv_buf.len(),
                0,
            )
        };
        if n < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(n as usize)
    }

    /// Waits until a packet may be read or `timeout` passes (ns precision).
    pub fn wait(&self, timeout: Duration) -> Result<(), WanError> {
        let mut pfd = libc::pollfd {
            fd: self.fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ts = libc::timespec {
            tv_sec: timeout.as_secs() as libc::time_t,
            tv_nsec: timeout.subsec_nanos() as libc::c_long,
        };
        // SAFETY: pfd and ts are valid; no signal mask change.
        let rc = unsafe { libc::ppoll(&mut pfd, 1, &ts, std::ptr::null()) };
        if rc < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::Interrupted {
                return Err(WanError::Netlink(format!("ppoll: {e}")));
            }
        }
        Ok(())
    }

    /// Reads what is queued without blocking, at most `max` packets, into
    /// `out`. Returns how many were read.
    pub fn recv_ready(
        &mut self,
        out: &mut Vec<QueuedPacket>,
        max: usize,
    ) -> Result<usize, WanError> {
        let start = out.len();
        // Bounded by `max` reads; each read holds one or more messages.
        for _ in 0..max {
            if out.len() - start >= max {
                break;
            }
            let n = match self.recv_raw() {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                // ENOBUFS: the kernel dropped messages (it counts those
                // packets as user-dropped); carry on.
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                    self.errors += 1;
                    continue;
                }
                Err(e) => return Err(WanError::Netlink(format!("recv: {e}"))),
            };
            let mut at = 0;
            while let Some((kind, body, next)) = next_message(&self.recv_buf[..n], at) {
                at = next;
                match kind {
                    NFQNL_MSG_PACKET => {
                        if let Some(p) = parse_packet(body) {
                            out.push(p);
                        }
                    }
                    NLMSG_ERROR => {
                        let errno = body
                            .get(..4)
                            .map(|b| i32::from_ne_bytes(b.try_into().expect("4")));
                        if errno.is_some_and(|e| e != 0) {
                            self.errors += 1;
                        }
                    }
                    _ => {}
                }
            }
        }
        Ok(out.len() - start)
    }

    /// Adds a verdict to the batch; sends the batch when it is full.
    pub fn verdict(&mut self, id: u32, verdict: Verdict) -> Result<(), WanError> {
        put_header(
            &mut self.verdicts,
            NFQNL_MSG_VERDICT,
            NLM_F_REQUEST,
            0,
            self.queue_num,
        );
        let start = self.verdicts.len() - NLMSG_HDRLEN - NFGENMSG_LEN;
        let mut hdr = [0u8; 8];
        hdr[..4].copy_from_slice(&(verdict as u32).to_be_bytes());
        hdr[4..].copy_from_slice(&id.to_be_bytes());
        put_attr(&mut self.verdicts, NFQA_VERDICT_HDR, &hdr);
        finish_len(&mut self.verdicts, start);
        self.verdicts_pending += 1;
        if self.verdicts_pending >= MAX_VERDICTS_PER_SEND {
            self.flush()?;
        }
        Ok(())
    }

    /// Sends the batched verdicts (one system call).
    pub fn flush(&mut self) -> Result<(), WanError> {
        if self.verdicts_pending == 0 {
            return Ok(());
        }
        let sent = self.send(&self.verdicts);
        self.verdicts.clear();
        self.verdicts_pending = 0;
        sent.map_err(|e| WanError::Netlink(format!("sending verdicts: {e}")))
    }
}

fn os_err(what: &str) -> WanError {
    WanError::Netlink(format!("{what}: {}", std::io::Error::last_os_error()))
}

/// Appends an nlmsghdr (length filled by [`finish_len`]) and an nfgenmsg.
fn put_header(buf: &mut Vec<u8>, kind: u16, flags: u16, seq: u32, queue_num: u16) {
    buf.extend_from_slice(&0u32.to_ne_bytes());
    buf.extend_from_slice(&kind.to_ne_bytes());
    buf.extend_from_slice(&flags.to_ne_bytes());
    buf.extend_from_slice(&seq.to_ne_bytes());
    buf.extend_from_slice(&0u32.to_ne_bytes());
    buf.push(libc::AF_UNSPEC as u8);
    buf.push(0); // NFNETLINK_V0
    buf.extend_from_slice(&queue_num.to_be_bytes());
}

fn put_attr(buf: &mut Vec<u8>, kind: u16, value: &[u8]) {
    buf.extend_from_slice(&((4 + value.len()) as u16).to_ne_bytes());
    buf.extend_from_slice(&kind.to_ne_bytes());
    buf.extend_from_slice(value);
    buf.resize(align4(buf.len()), 0);
}

fn finish_len(buf: &mut [u8], start: usize) {
    let len = (buf.len() - start) as u32;
    buf[start..start + 4].copy_from_slice(&len.to_ne_bytes());
}

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// The message at `at`: (type, body after the nlmsghdr, offset of the next).
fn next_message(buf: &[u8], at: usize) -> Option<(u16, &[u8], usize)> {
    let hdr = buf.get(at..at + NLMSG_HDRLEN)?;
    let len = u32::from_ne_bytes(hdr[..4].try_into().ok()?) as usize;
    let kind = u16::from_ne_bytes(hdr[4..6].try_into().ok()?);
    if len < NLMSG_HDRLEN {
        return None;
    }
    let body = buf.get(at + NLMSG_HDRLEN..at + len)?;
    Some((kind, body, at + align4(len)))
}

/// Parses an NFQNL_MSG_PACKET body (nfgenmsg, then attributes).
fn parse_packet(body: &[u8]) -> Option<QueuedPacket> {
    let mut at = NFGENMSG_LEN;
    let mut id = None;
    let (mut src, mut dst) = (None, None);
    // Bounded by the body's length: each attribute advances at least 4.
    while let Some(hdr) = body.get(at..at + 4) {
        let len = u16::from_ne_bytes([hdr[0], hdr[1]]) as usize;
        let kind = u16::from_ne_bytes([hdr[2], hdr[3]]) & NLA_TYPE_MASK;
        if len < 4 {
            break;
        }
        let value = body.get(at + 4..at + len)?;
        match kind {
            NFQA_PACKET_HDR if value.len() >= 4 => {
                id = Some(u32::from_be_bytes(value[..4].try_into().ok()?));
            }
            NFQA_PAYLOAD if value.len() >= 20 && value[0] >> 4 == 4 => {
                src = Some(Ipv4Addr::new(value[12], value[13], value[14], value[15]));
                dst = Some(Ipv4Addr::new(value[16], value[17], value[18], value[19]));
            }
            _ => {}
        }
        at += align4(len);
    }
    Some(QueuedPacket { id: id?, src, dst })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A packet message as the kernel sends it (one message, two attrs).
    fn packet_message(id: u32, payload: &[u8]) -> Vec<u8> {
        let mut m = Vec::new();
        put_header(&mut m, NFQNL_MSG_PACKET, 0, 0, 0);
        let mut hdr = id.to_be_bytes().to_vec();
        hdr.extend_from_slice(&[0x08, 0x00, 0x00]); // hw_protocol, hook
        put_attr(&mut m, NFQA_PACKET_HDR, &hdr);
        put_attr(&mut m, NFQA_PAYLOAD, payload);
        finish_len(&mut m, 0);
        m
    }

    fn ipv4_header(src: [u8; 4], dst: [u8; 4]) -> Vec<u8> {
        let mut h = vec![0x45, 0, 0, 20, 0, 0, 0, 0, 64, 6, 0, 0];
        h.extend_from_slice(&src);
        h.extend_from_slice(&dst);
        h
    }

    #[test]
    fn packets_are_parsed_with_their_addresses() {
        let mut buf = packet_message(7, &ipv4_header([127, 0, 1, 1], [127, 0, 2, 1]));
        buf.extend(packet_message(0x0102_0304, &[0x60; 40])); // IPv6: no addresses
        let (kind, body, next) = next_message(&buf, 0).unwrap();
        assert_eq!(kind, NFQNL_MSG_PACKET);
        let p = parse_packet(body).unwrap();
        assert_eq!(p.id, 7);
        assert_eq!(p.src, Some(Ipv4Addr::new(127, 0, 1, 1)));
        assert_eq!(p.dst, Some(Ipv4Addr::new(127, 0, 2, 1)));
        let (_, body, next) = next_message(&buf, next).unwrap();
        assert_eq!(
            parse_packet(body).unwrap(),
            QueuedPacket {
                id: 0x0102_0304,
                src: None,
                dst: None
            }
        );
        assert!(next_message(&buf, next).is_none());
    }

    #[test]
    fn truncated_or_bad_messages_are_ignored() {
        let buf = packet_message(7, &ipv4_header([127, 0, 1, 1], [127, 0, 2, 1]));
        assert!(next_message(&buf[..buf.len() - 1], 0).is_none());
        let mut zero_len = buf.clone();
        zero_len[..4].copy_from_slice(&0u32.to_ne_bytes());
        assert!(next_message(&zero_len, 0).is_none());
        // A packet without its header attribute has no id: skipped.
        let mut m = Vec::new();
        put_header(&mut m, NFQNL_MSG_PACKET, 0, 0, 0);
        put_attr(&mut m, NFQA_PAYLOAD, &ipv4_header([1; 4], [2; 4]));
        finish_len(&mut m, 0);
        assert!(parse_packet(&m[NLMSG_HDRLEN..]).is_none());
        // An attribute claiming more bytes than there are ends the parse.
        let mut m = buf.clone();
        m[NLMSG_HDRLEN + NFGENMSG_LEN] = 0xff;
        assert!(parse_packet(&m[NLMSG_HDRLEN..]).is_none());
    }

    #[test]
    fn verdict_messages_have_the_kernel_layout() {
        let mut m = Vec::new();
        put_header(&mut m, NFQNL_MSG_VERDICT, NLM_F_REQUEST, 0, 3);
        let mut hdr = [0u8; 8];
        hdr[..4].copy_from_slice(&(Verdict::Accept as u32).to_be_bytes());
        hdr[4..].copy_from_slice(&9u32.to_be_bytes());
        put_attr(&mut m, NFQA_VERDICT_HDR, &hdr);
        finish_len(&mut m, 0);
        assert_eq!(m.len(), VERDICT_MSG_LEN);
        assert_eq!(u32::from_ne_bytes(m[..4].try_into().unwrap()), 32);
        assert_eq!(&m[18..20], &3u16.to_be_bytes()); // queue number, big-endian
        assert_eq!(
            &m[20..24],
            &12u16
                .to_ne_bytes()
                .iter()
                .chain(&NFQA_VERDICT_HDR.to_ne_bytes())
                .copied()
                .collect::<Vec<_>>()[..]
        );
        assert_eq!(&m[24..28], &[0, 0, 0, 1]);
        assert_eq!(&m[28..32], &[0, 0, 0, 9]);
    }
}
