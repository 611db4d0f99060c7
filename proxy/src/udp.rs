//! UDP forwarding: a flow per client address, each with its own socket
//! connected to the backend (so replies find their way back), forgotten after
//! an idle timeout. A wildcard listener learns which address each datagram
//! was sent to (IP_PKTINFO / IPV6_RECVPKTINFO) and replies from that address.

use crate::sock::{self, cvt};
use mio::net::UdpSocket;
use std::collections::HashMap;
use std::io;
use std::mem::{size_of, zeroed};
use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::time::Instant;

/// Largest datagram payload, plus one byte to tell truncation.
pub const DATAGRAM_MAX: usize = 65536;

/// The local address a datagram was sent to, to reply from it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Local {
    V4 { addr: [u8; 4] },
    V6 { addr: [u8; 16], ifindex: u32 },
}

/// A listening UDP socket and its flows.
pub struct UdpListen {
    pub sock: UdpSocket,
    pub backend: SocketAddr,
    /// The socket is a wildcard: datagrams carry their destination address.
    pub pktinfo: bool,
    /// Client address -> slot of its flow.
    pub flows: HashMap<SocketAddr, usize>,
}

/// One client's flow.
pub struct Flow {
    /// Connected to the backend.
    pub sock: UdpSocket,
    pub client: SocketAddr,
    pub local: Option<Local>,
    /// Slot of the listener.
    pub listener: usize,
    pub last: Instant,
}

/// Asks for the destination address of each datagram (wildcard sockets).
pub fn enable_pktinfo(fd: RawFd, v6: bool) -> io::Result<()> {
    if v6 {
        sock::setsockopt(fd, libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO, 1 as libc::c_int)
    } else {
        sock::setsockopt(fd, libc::IPPROTO_IP, libc::IP_PKTINFO, 1 as libc::c_int)
    }
}

/// Control buffer, aligned for `cmsghdr`.
#[repr(C, align(8))]
struct Control([u8; 128]);

/// Receives one datagram: (length, sender, destination when asked for).
pub fn recv_from(fd: RawFd, buf: &mut [u8]) -> io::Result<(usize, SocketAddr, Option<Local>)> {
    // SAFETY: all-zero is valid for these C structs.
    let mut name: libc::sockaddr_storage = unsafe { zeroed() };
    let mut control = Control([0; 128]);
    let mut iov = libc::iovec { iov_base: buf.as_mut_ptr() as *mut libc::c_void, iov_len: buf.len() };
    // SAFETY: as above.
    let mut msg: libc::msghdr = unsafe { zeroed() };
    msg.msg_name = &mut name as *mut _ as *mut libc::c_void;
    msg.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.0.as_mut_ptr() as *mut libc::c_void;
    msg.msg_controllen = control.0.len() as _;
    // SAFETY: every pointer in msg is valid for its length for the call.
    let n = unsafe { libc::recvmsg(fd, &mut msg, 0) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let from = sock::from_sockaddr(&name)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "datagram from a non-IP address"))?;
    let mut local = None;
    // SAFETY: msg was filled by the kernel; the CMSG macros stay within msg_controllen.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            let data = libc::CMSG_DATA(c);
            match ((*c).cmsg_level, (*c).cmsg_type) {
                (libc::IPPROTO_IP, libc::IP_PKTINFO) => {
                    let pi = std::ptr::read_unaligned(data as *const libc::in_pktinfo);
                    local = Some(Local::V4 { addr: pi.ipi_spec_dst.s_addr.to_ne_bytes() });
                }
                (libc::IPPROTO_IPV6, libc::IPV6_PKTINFO) => {
                    let pi = std::ptr::read_unaligned(data as *const libc::in6_pktinfo);
                    local = Some(Local::V6 { addr: pi.ipi6_addr.s6_addr, ifindex: pi.ipi6_ifindex });
                }
                _ => {}
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    Ok((n as usize, from, local))
}

/// Sends one datagram to `to`, from the address in `local` when given.
pub fn send_to(fd: RawFd, data: &[u8], to: &SocketAddr, local: Option<Local>) -> io::Result<usize> {
    let (mut name, namelen) = sock::to_sockaddr(to);
    let mut control = Control([0; 128]);
    let mut iov = libc::iovec { iov_base: data.as_ptr() as *mut libc::c_void, iov_len: data.len() };
    // SAFETY: all-zero is valid for msghdr.
    let mut msg: libc::msghdr = unsafe { zeroed() };
    msg.msg_name = &mut name as *mut _ as *mut libc::c_void;
    msg.msg_namelen = namelen;
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    if let Some(local) = local {
        msg.msg_control = control.0.as_mut_ptr() as *mut libc::c_void;
        // SAFETY: the control buffer is large enough for one pktinfo of
        // either family; the CMSG macros stay within it.
        unsafe {
            let (level, ty, len) = match local {
                Local::V4 { .. } => (libc::IPPROTO_IP, libc::IP_PKTINFO, size_of::<libc::in_pktinfo>()),
                Local::V6 { .. } => (libc::IPPROTO_IPV6, libc::IPV6_PKTINFO, size_of::<libc::in6_pktinfo>()),
            };
            msg.msg_controllen = libc::CMSG_SPACE(len as u32) as _;
            let c = libc::CMSG_FIRSTHDR(&msg);
            (*c).cmsg_level = level;
            (*c).cmsg_type = ty;
            (*c).cmsg_len = libc::CMSG_LEN(len as u32) as _;
            let data = libc::CMSG_DATA(c);
            match local {
                Local::V4 { addr } => {
                    let pi = libc::in_pktinfo {
                        ipi_ifindex: 0,
                        ipi_spec_dst: libc::in_addr { s_addr: u32::from_ne_bytes(addr) },
                        ipi_addr: libc::in_addr { s_addr: 0 },
                    };
                    std::ptr::write_unaligned(data as *mut libc::in_pktinfo, pi);
                }
                Local::V6 { addr, ifindex } => {
                    // A multicast destination cannot be a source: let the kernel pick.
                    let addr = if addr[0] == 0xff { [0; 16] } else { addr };
                    let pi = libc::in6_pktinfo { ipi6_addr: libc::in6_addr { s6_addr: addr }, ipi6_ifindex: ifindex };
                    std::ptr::write_unaligned(data as *mut libc::in6_pktinfo, pi);
                }
            }
        }
    }
    // SAFETY: every pointer in msg is valid for its length for the call.
    let n = unsafe { libc::sendmsg(fd, &msg, libc::MSG_NOSIGNAL) };
    cvt(if n < 0 { -1 } else { 0 })?;
    Ok(n as usize)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;
    use std::time::Duration;

    #[test]
    fn wildcard_socket_learns_and_replies_from_the_targeted_address() {
        let s = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
        enable_pktinfo(s.as_raw_fd(), false).unwrap();
        let port = s.local_addr().unwrap().port();
        let c = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        c.connect(("127.0.0.3", port)).unwrap();
        c.send(b"hi").unwrap();
        let mut buf = [0u8; 16];
        let (n, from, local) = recv_from(s.as_raw_fd(), &mut buf).unwrap();
        assert_eq!((&buf[..n], from), (&b"hi"[..], c.local_addr().unwrap()));
        assert_eq!(local, Some(Local::V4 { addr: [127, 0, 0, 3] }));
        // The connected client only takes it from 127.0.0.3.
        send_to(s.as_raw_fd(), b"back", &from, local).unwrap();
        let n = c.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"back");
    }

    #[test]
    fn ipv6_pktinfo() {
        let s = std::net::UdpSocket::bind("[::]:0").unwrap();
        enable_pktinfo(s.as_raw_fd(), true).unwrap();
        let port = s.local_addr().unwrap().port();
        let c = std::net::UdpSocket::bind("[::1]:0").unwrap();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        c.connect(("::1", port)).unwrap();
        c.send(b"six").unwrap();
        let mut buf = [0u8; 16];
        let (n, from, local) = recv_from(s.as_raw_fd(), &mut buf).unwrap();
        assert_eq!(&buf[..n], b"six");
        let Some(Local::V6 { addr, .. }) = local else { panic!("no IPv6 pktinfo: {local:?}") };
        assert_eq!(std::net::Ipv6Addr::from(addr), std::net::Ipv6Addr::LOCALHOST);
        send_to(s.as_raw_fd(), b"back", &from, local).unwrap();
        let n = c.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"back");
    }
}
