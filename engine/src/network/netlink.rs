//! A synchronous rtnetlink client: the messages are built and parsed by
//! netlink-packet-route, sent and received on a blocking netlink-sys socket.
//! The socket belongs to the network namespace of the thread that opened it.

use crate::error::{Context, Error, Result};
use netlink_packet_core::{
    parse_string, parse_u32, DecodeError, Emitable, NetlinkDeserializable, NetlinkHeader, NetlinkMessage, NetlinkPayload, NetlinkSerializable,
    NlasIterator, NLA_TYPE_MASK, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL, NLM_F_REPLACE, NLM_F_REQUEST,
};
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{InfoData, InfoKind, InfoVeth, LinkAttribute, LinkFlags, LinkHeader, LinkInfo, LinkMessage};
use netlink_packet_route::route::{RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType};
use netlink_packet_route::AddressFamily;
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::RawFd;

const LINK_HEADER_LEN: usize = 16;
const RTM_NEWLINK: u16 = 16;
const RTM_DELLINK: u16 = 17;
const RTM_GETLINK: u16 = 18;
const RTM_SETLINK: u16 = 19;
const RTM_NEWADDR: u16 = 20;
const RTM_NEWROUTE: u16 = 24;

const IFLA_IFNAME: u16 = 3;
const IFLA_MASTER: u16 = 10;
const IFLA_LINKINFO: u16 = 18;
const IFLA_IFALIAS: u16 = 20;
const IFLA_INFO_KIND: u16 = 1;

/// The rtnetlink messages skiff sends (built with netlink-packet-route's
/// types) and reads. Narrower than the crate's `RouteNetlinkMessage` on
/// purpose, for size: replies are only ever links, and of them only the
/// header and four attributes are read, walked with netlink-packet-core's
/// NLA iterator. The crate's full `LinkMessage` parser (every link kind's
/// info data, stats, AF specs) would add ~150 KiB to the static binary.
enum Rtm {
    Link(u16, LinkMessage),
    Address(u16, AddressMessage),
    Route(u16, RouteMessage),
    Reply(Link),
    Other,
}

impl NetlinkSerializable for Rtm {
    fn message_type(&self) -> u16 {
        match self {
            Rtm::Link(t, _) | Rtm::Address(t, _) | Rtm::Route(t, _) => *t,
            Rtm::Reply(_) => RTM_NEWLINK,
            Rtm::Other => 0,
        }
    }

    fn buffer_len(&self) -> usize {
        match self {
            Rtm::Link(_, m) => m.buffer_len(),
            Rtm::Address(_, m) => m.buffer_len(),
            Rtm::Route(_, m) => m.buffer_len(),
            Rtm::Reply(_) | Rtm::Other => 0,
        }
    }

    fn serialize(&self, buf: &mut [u8]) {
        match self {
            Rtm::Link(_, m) => m.emit(buf),
            Rtm::Address(_, m) => m.emit(buf),
            Rtm::Route(_, m) => m.emit(buf),
            Rtm::Reply(_) | Rtm::Other => {}
        }
    }
}

impl NetlinkDeserializable for Rtm {
    type Error = DecodeError;

    fn deserialize(header: &NetlinkHeader, payload: &[u8]) -> std::result::Result<Rtm, DecodeError> {
        Ok(match header.message_type {
            RTM_NEWLINK => Rtm::Reply(parse_link(payload)?),
            _ => Rtm::Other,
        })
    }
}

fn parse_link(payload: &[u8]) -> std::result::Result<Link, DecodeError> {
    let h = LinkHeader::parse(payload)?;
    let mut l = Link { index: h.index, up: h.flags.contains(LinkFlags::Up), ..Default::default() };
    for nla in NlasIterator::new(payload.get(LINK_HEADER_LEN..).unwrap_or_default()) {
        let nla = nla?;
        match nla.kind() & NLA_TYPE_MASK {
            IFLA_IFNAME => l.name = parse_string(nla.value())?,
            IFLA_IFALIAS => l.alias = parse_string(nla.value())?,
            IFLA_MASTER => l.master = parse_u32(nla.value())?,
            IFLA_LINKINFO => {
                for info in NlasIterator::new(nla.value()) {
                    let info = info?;
                    if info.kind() & NLA_TYPE_MASK == IFLA_INFO_KIND {
                        l.kind = parse_string(info.value())?;
                    }
                }
            }
            _ => {}
        }
    }
    Ok(l)
}

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

/// A failed request: the errno (the kernel's NACK, or the socket's) and the
/// message naming what failed.
#[derive(Debug)]
pub struct Nack {
    pub errno: i32,
    pub err: Error,
}

impl From<Nack> for Error {
    fn from(n: Nack) -> Error {
        n.err
    }
}

pub type NlResult<T> = std::result::Result<T, Nack>;

fn nack(errno: i32, what: &dyn Fn() -> String) -> Nack {
    let err = Err::<(), _>(std::io::Error::from_raw_os_error(errno)).ctx(what).unwrap_err();
    Nack { errno, err }
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
    fn request(&mut self, msg: Rtm, flags: u16, what: &dyn Fn() -> String) -> NlResult<Vec<Link>> {
        self.seq = self.seq.wrapping_add(1);
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | NLM_F_ACK | flags;
        header.sequence_number = self.seq;
        let mut packet = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(msg));
        packet.finalize();
        let mut out = vec![0; packet.buffer_len()];
        packet.serialize(&mut out);
        let os = |e: std::io::Error| nack(e.raw_os_error().unwrap_or(libc::EIO), what);
        self.sock.send(&out, 0).map_err(os)?;
        let mut replies = Vec::new();
        loop {
            let n = self.sock.recv(&mut &mut self.buf[..], 0).map_err(os)?;
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
                let Ok(m) = NetlinkMessage::<Rtm>::deserialize(chunk) else { continue };
                match m.payload {
                    NetlinkPayload::Error(e) => {
                        return match e.code {
                            None => Ok(replies),
                            Some(c) => Err(nack(-c.get(), what)),
                        };
                    }
                    NetlinkPayload::Done(_) => return Ok(replies),
                    // A GET answers with the message, then the ACK.
                    NetlinkPayload::InnerMessage(Rtm::Reply(l)) => replies.push(l),
                    _ => {}
                }
            }
        }
    }

    /// The link called `name`, if there is one.
    pub fn link(&mut self, name: &str) -> NlResult<Option<Link>> {
        let mut m = LinkMessage::default();
        m.attributes.push(LinkAttribute::IfName(name.to_string()));
        match self.request(Rtm::Link(RTM_GETLINK, m), 0, &|| format!("look up link {name}")) {
            Ok(v) => Ok(v.into_iter().next()),
            Err(e) if e.errno == libc::ENODEV => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Every link of the namespace.
    pub fn links(&mut self) -> NlResult<Vec<Link>> {
        let v = self.request(Rtm::Link(RTM_GETLINK, LinkMessage::default()), NLM_F_DUMP, &|| "list links".to_string())?;
        Ok(v)
    }

    /// Creates a bridge, up, with a fixed MAC (so the gateway's address
    /// does not change as ports come and go).
    pub fn add_bridge(&mut self, name: &str, mac: [u8; 6]) -> NlResult<()> {
        let mut m = LinkMessage::default();
        m.header.flags = LinkFlags::Up;
        m.header.change_mask = LinkFlags::Up;
        m.attributes.push(LinkAttribute::IfName(name.to_string()));
        m.attributes.push(LinkAttribute::Address(mac.to_vec()));
        m.attributes.push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(InfoKind::Bridge)]));
        self.request(Rtm::Link(RTM_NEWLINK, m), NLM_F_CREATE | NLM_F_EXCL, &|| format!("create bridge {name}")).map(drop)
    }

    /// Creates the veth pair `host` (up, enslaved to `master`, tagged with
    /// `alias`) <-> `peer` (created directly in the namespace `peer_ns`,
    /// with the MAC `peer_mac`).
    pub fn add_veth(&mut self, host: &str, alias: &str, master: u32, peer: &str, peer_ns: RawFd, peer_mac: [u8; 6]) -> NlResult<()> {
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
        self.request(Rtm::Link(RTM_NEWLINK, m), NLM_F_CREATE | NLM_F_EXCL, &|| format!("create veth pair {host} <-> {peer}"))?;
        // The alias (which container owns the veth) is applied by setlink.
        let index = self.link(host)?.map(|l| l.index).ok_or_else(|| nack(libc::ENODEV, &|| format!("find veth {host} after creating it")))?;
        let mut s = LinkMessage::default();
        s.header.index = index;
        s.attributes.push(LinkAttribute::IfAlias(alias.to_string()));
        self.request(Rtm::Link(RTM_SETLINK, s), 0, &|| format!("set the alias of {host}")).map(drop)
    }

    /// Brings a link up.
    pub fn set_up(&mut self, index: u32) -> NlResult<()> {
        let mut m = LinkMessage::default();
        m.header.index = index;
        m.header.flags = LinkFlags::Up;
        m.header.change_mask = LinkFlags::Up;
        self.request(Rtm::Link(RTM_SETLINK, m), 0, &|| format!("bring link {index} up")).map(drop)
    }

    /// Deletes a link by name; false when there was none.
    pub fn del_link(&mut self, name: &str) -> NlResult<bool> {
        let mut m = LinkMessage::default();
        m.attributes.push(LinkAttribute::IfName(name.to_string()));
        match self.request(Rtm::Link(RTM_DELLINK, m), 0, &|| format!("delete link {name}")) {
            Ok(_) => Ok(true),
            Err(e) if e.errno == libc::ENODEV => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Adds (or keeps) `ip/prefix` on a link.
    pub fn add_address(&mut self, index: u32, ip: Ipv4Addr, prefix: u8) -> NlResult<()> {
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
        self.request(Rtm::Address(RTM_NEWADDR, m), NLM_F_CREATE | NLM_F_REPLACE, &|| format!("add address {ip}/{prefix} to link {index}"))
            .map(drop)
    }

    /// Adds the default route via `gateway`.
    pub fn add_default_route(&mut self, gateway: Ipv4Addr) -> NlResult<()> {
        let mut m = RouteMessage::default();
        m.header.address_family = AddressFamily::Inet;
        m.header.table = RouteHeader::RT_TABLE_MAIN;
        m.header.protocol = RouteProtocol::Boot;
        m.header.scope = RouteScope::Universe;
        m.header.kind = RouteType::Unicast;
        m.attributes.push(RouteAttribute::Gateway(RouteAddress::Inet(gateway)));
        self.request(Rtm::Route(RTM_NEWROUTE, m), NLM_F_CREATE | NLM_F_REPLACE, &|| format!("add the default route via {gateway}")).map(drop)
    }
}
