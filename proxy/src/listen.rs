//! Listening sockets in the host namespace: bound here, or inherited from
//! the parent (`-use-listen-fd`).

use crate::mapping::Proto;
use crate::sock::{self, cvt};
use crate::udp;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, OwnedFd};

/// A listening socket.
pub enum Listener {
    Tcp(mio::net::TcpListener),
    /// With whether datagrams carry their destination address (wildcard).
    Udp(mio::net::UdpSocket, bool),
}

const BACKLOG: libc::c_int = 4096;

/// Binds `addr` for `proto`. IPv6 sockets are IPv6-only, so `0.0.0.0` and
/// `[::]` can be mapped separately, as Docker does.
pub fn bind(proto: Proto, addr: SocketAddr) -> io::Result<Listener> {
    let ty = match proto {
        Proto::Tcp => libc::SOCK_STREAM,
        Proto::Udp => libc::SOCK_DGRAM,
    };
    let fd = sock::socket(sock::domain(&addr), ty)?;
    let raw = fd.as_raw_fd();
    if addr.is_ipv6() {
        sock::setsockopt(raw, libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, 1 as libc::c_int)?;
    }
    if proto == Proto::Tcp {
        sock::setsockopt(raw, libc::SOL_SOCKET, libc::SO_REUSEADDR, 1 as libc::c_int)?;
    }
    sock::bind(&fd, &addr)?;
    wrap(proto, fd, addr)
}

fn wrap(proto: Proto, fd: OwnedFd, addr: SocketAddr) -> io::Result<Listener> {
    let raw = fd.as_raw_fd();
    Ok(match proto {
        Proto::Tcp => {
            // SAFETY: plain syscall on our fd.
            cvt(unsafe { libc::listen(raw, BACKLOG) })?;
            Listener::Tcp(mio::net::TcpListener::from_std(std::net::TcpListener::from(fd)))
        }
        Proto::Udp => {
            let wildcard = addr.ip().is_unspecified();
            if wildcard {
                udp::enable_pktinfo(raw, addr.is_ipv6())?;
            }
            Listener::Udp(mio::net::UdpSocket::from_std(std::net::UdpSocket::from(fd)), wildcard)
        }
    })
}

/// Uses an inherited, already bound socket; returns it with its address.
pub fn adopt(proto: Proto, fd: OwnedFd) -> io::Result<(Listener, SocketAddr)> {
    let raw = fd.as_raw_fd();
    let ty = sock::getsockopt_int(raw, libc::SOL_SOCKET, libc::SO_TYPE)?;
    let want = match proto {
        Proto::Tcp => libc::SOCK_STREAM,
        Proto::Udp => libc::SOCK_DGRAM,
    };
    if ty != want {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("not a {proto} socket")));
    }
    let addr = sock::local_addr(raw)?;
    Ok((wrap(proto, fd, addr)?, addr))
}
