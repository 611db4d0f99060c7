//! A synchronous rtnetlink client: the messages are built and parsed by
//! netlink-packet-route, sent and received on a blocking netlink-sys socket.
//! The socket belongs to the network namespace of the thread that opened it.

use crate::error::{Context, Error, Result};
use netlink_packet_core::{NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL, NLM_F_REPLACE, NLM_F_REQUEST};
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{InfoData, InfoKind, InfoVeth, LinkAttribute, LinkFlags, LinkInfo, LinkMessage};
use netlink_packet_route::route::{RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::RawFd;

/// A link as the kernel reports it (the attributes skiff looks at).
#[derive(Debug, Clone, Default)]
pub struct Link {
    pub index: u32,
    pub name: String,
    pub alias: String,
    pub kind: String,
    pub master: u32,
    pub up: bool,
}

/// An rtnetlink socket in the calling thread's network namespace.
pub struct Netlink {
    sock: Socket,
    seq: u32,
    buf: Vec<u8>,
}

/// The errno a failed request carried, if it failed that way.
pub fn errno(e: &Error) -> Option<i32> {
    e.0.rsplit_once("(os error ").and_then(|(_, n)| n.trim_end_matches(')').parse().ok())
}

impl Netlink {
    pub fn open() -> Result<Netlink> {
        let mut sock = Socket::new(NETLINK_ROUTE).ctx(|| "open a netlink socket")?;
        sock.bind_auto().ctx(|| "bind the netlink socket")?;
        sock.connect(&SocketAddr::new(0, 0)).ctx(|| "connect the netlink socket")?;
        Ok(Netlink { sock, seq: 0, buf: vec![0; 64 * 1024] })
    }

    /// Sends one request and collects the replies until its ACK (or, for a
    /// dump, its DONE). A NACK becomes an error carrying the errno.
    fn request(&mut self, msg: RouteNetlinkMessage, flags: u16, what: &dyn Fn() -> String) -> Result<Vec<RouteNetlinkMessage>> {
        self.seq = self.seq.wrapping_add(1);
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | NLM_F_ACK | flags;
        header.sequence_number = self.seq;
        let mut packet = NetlinkMessage::new(header, NetlinkPayload::from(msg));
        packet.finalize();
        let mut out = vec![0; packet.buffer_len()];
        packet.serialize(&mut out);
        self.sock.send(&out, 0).ctx(|| format!("{}: send", what()))?;
        let mut replies = Vec::new();
        loop {
            let n = self.sock.recv(&mut &mut self.buf[..], 0).ctx(|| format!("{}: receive", what()))?;
            let n = n.min(self.buf.len());
            let mut off = 0;
            while off + 16 <= n {
                let len = u32::from_ne_bytes([self.buf[off], self.buf[off + 1], self.buf[off + 2], self.buf[off + 3]]) as usize;
                let seq = u32::from_ne_bytes([self.buf[off + 8], self.buf[off + 9], self.buf[off + 10], self.buf[off + 11]]);
                if len < 16 || off + len > n {
                    break;
                }
                let chunk = &self.buf[off..off + len];
                off += (len + 3) & !3;
                if seq != self.seq {
                    continue;
                }
                // A message this crate cannot parse (a newer kernel's
                // attribute layout) is skipped rather than failing the dump.
                let Ok(m) = NetlinkMessage::<RouteNetlinkMessage>::deserialize(chunk) else { continue };
                match m.payload {
                    NetlinkPayload::Error(e) => {
                        return match e.code {
                            None => Ok(replies),
                            Some(c) => Err(std::io::Error::from_raw_os_error(-c.get())).ctx(what),
                        };
                    }
                    NetlinkPayload::Done(_) => return Ok(replies),
                    // A GET answers with the message, then the ACK.
                    NetlinkPayload::InnerMessage(r) => replies.push(r),
                    _ => {}
                }
            }
        }
    }

    fn to_link(m: &LinkMessage) -> Link {
        let mut l = Link { index: m.header.index, up: m.header.flags.contains(LinkFlags::Up), ..Default::default() };
        for a in &m.attributes {
            match a {
                LinkAttribute::IfName(n) => l.name = n.clone(),
                LinkAttribute::IfAlias(s) => l.alias = s.clone(),
                LinkAttribute::Controller(i) => l.master = *i,
                LinkAttribute::LinkInfo(infos) => {
                    for i in infos {
                        if let LinkInfo::Kind(k) = i {
                            l.kind = k.to_string();
                        }
                    }
                }
                _ => {}
            }
        }
        l
    }

    /// The link called `name`, if there is one.
    pub fn link(&mut self, name: &str) -> Result<Option<Link>> {
        let mut m = LinkMessage::default();
        m.attributes.push(LinkAttribute::IfName(name.to_string()));
        match self.request(RouteNetlinkMessage::GetLink(m), 0, &|| format!("look up link {name}")) {
            Ok(v) => Ok(v.iter().find_map(|r| match r {
                RouteNetlinkMessage::NewLink(l) => Some(Self::to_link(l)),
                _ => None,
            })),
            Err(e) if errno(&e) == Some(libc::ENODEV) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Every link of the namespace.
    pub fn links(&mut self) -> Result<Vec<Link>> {
        let v = self.request(RouteNetlinkMessage::GetLink(LinkMessage::default()), NLM_F_DUMP, &|| "list links".to_string())?;
        Ok(v.iter()
            .filter_map(|r| match r {
                RouteNetlinkMessage::NewLink(l) => Some(Self::to_link(l)),
                _ => None,
            })
            .collect())
    }

    /// Creates a bridge, up, with a fixed MAC (so the gateway's address
    /// does not change as ports come and go).
    pub fn add_bridge(&mut self, name: &str, mac: [u8; 6]) -> Result<()> {
        let mut m = LinkMessage::default();
        m.header.flags = LinkFlags::Up;
        m.header.change_mask = LinkFlags::Up;
        m.attributes.push(LinkAttribute::IfName(name.to_string()));
        m.attributes.push(LinkAttribute::Address(mac.to_vec()));
        m.attributes.push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(InfoKind::Bridge)]));
        self.request(RouteNetlinkMessage::NewLink(m), NLM_F_CREATE | NLM_F_EXCL, &|| format!("create bridge {name}")).map(drop)
    }

    /// Creates the veth pair `host` (up, enslaved to `master`, tagged with
    /// `alias`) <-> `peer` (created directly in the namespace `peer_ns`,
    /// with the MAC `peer_mac`).
    pub fn add_veth(&mut self, host: &str, alias: &str, master: u32, peer: &str, peer_ns: RawFd, peer_mac: [u8; 6]) -> Result<()> {
        let mut p = LinkMessage::default();
        p.attributes.push(LinkAttribute::IfName(peer.to_string()));
        p.attributes.push(LinkAttribute::Address(peer_mac.to_vec()));
        p.attributes.push(LinkAttribute::NetNsFd(peer_ns));
        let mut m = LinkMessage::default();
        m.header.flags = LinkFlags::Up;
        m.header.change_mask = LinkFlags::Up;
        m.attributes.push(LinkAttribute::IfName(host.to_string()));
        m.attributes.push(LinkAttribute::Controller(master));
        m.attributes.push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(InfoKind::Veth), LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(p)))]));
        self.request(RouteNetlinkMessage::NewLink(m), NLM_F_CREATE | NLM_F_EXCL, &|| format!("create veth pair {host} <-> {peer}"))?;
        // The alias (which container owns the veth) is applied by setlink.
        let index = self.link(host)?.map(|l| l.index).ok_or_else(|| Error(format!("veth {host} vanished after its creation")))?;
        let mut s = LinkMessage::default();
        s.header.index = index;
        s.attributes.push(LinkAttribute::IfAlias(alias.to_string()));
        self.request(RouteNetlinkMessage::SetLink(s), 0, &|| format!("set the alias of {host}")).map(drop)
    }

    /// Brings a link up.
    pub fn set_up(&mut self, index: u32) -> Result<()> {
        let mut m = LinkMessage::default();
        m.header.index = index;
        m.header.flags = LinkFlags::Up;
        m.header.change_mask = LinkFlags::Up;
        self.request(RouteNetlinkMessage::SetLink(m), 0, &|| format!("bring link {index} up")).map(drop)
    }

    /// Deletes a link by name; false when there was none.
    pub fn del_link(&mut self, name: &str) -> Result<bool> {
        let mut m = LinkMessage::default();
        m.attributes.push(LinkAttribute::IfName(name.to_string()));
        match self.request(RouteNetlinkMessage::DelLink(m), 0, &|| format!("delete link {name}")) {
            Ok(_) => Ok(true),
            Err(e) if errno(&e) == Some(libc::ENODEV) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Adds (or keeps) `ip/prefix` on a link.
    pub fn add_address(&mut self, index: u32, ip: Ipv4Addr, prefix: u8) -> Result<()> {
        let mut m = AddressMessage::default();
        m.header.family = AddressFamily::Inet;
        m.header.prefix_len = prefix;
        m.header.index = index;
        m.attributes.push(AddressAttribute::Local(IpAddr::V4(ip)));
        m.attributes.push(AddressAttribute::Address(IpAddr::V4(ip)));
        if prefix < 31 {
            let host_bits = u32::MAX.checked_shr(prefix as u32).unwrap_or(0);
            m.attributes.push(AddressAttribute::Broadcast(Ipv4Addr::from(u32::from(ip) | host_bits)));
        }
        self.request(RouteNetlinkMessage::NewAddress(m), NLM_F_CREATE | NLM_F_REPLACE, &|| format!("add address {ip}/{prefix} to link {index}"))
            .map(drop)
    }

    /// Adds the default route via `gateway`.
    pub fn add_default_route(&mut self, gateway: Ipv4Addr) -> Result<()> {
        let mut m = RouteMessage::default();
        m.header.address_family = AddressFamily::Inet;
        m.header.table = RouteHeader::RT_TABLE_MAIN;
        m.header.protocol = RouteProtocol::Boot;
        m.header.scope = RouteScope::Universe;
        m.header.kind = RouteType::Unicast;
        m.attributes.push(RouteAttribute::Gateway(RouteAddress::Inet(gateway)));
        self.request(RouteNetlinkMessage::NewRoute(m), NLM_F_CREATE | NLM_F_REPLACE, &|| format!("add the default route via {gateway}")).map(drop)
    }
}
