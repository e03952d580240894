//! Encoding messages into frames.

use std::net::SocketAddr;

use bytes::{BufMut, Bytes, BytesMut};

use super::message::{Bye, Data, Hello, Message, PeerExchange, Request};
use super::varint::{put_varint, varint_len};
use super::{FRAME_HEADER_LEN, VERSION};
use crate::ids::{FragmentId, Locality, PeerAddr, PeerInfo};

/// Address family byte of an IPv4 socket address in `PeerExchange`.
pub(crate) const FAMILY_V4: u8 = 4;
/// Address family byte of an IPv6 socket address in `PeerExchange`.
pub(crate) const FAMILY_V6: u8 = 6;

/// Locality flag: an AS number follows.
pub(crate) const LOC_ASN: u8 = 0x01;
/// Locality flag: a site string follows.
pub(crate) const LOC_SITE: u8 = 0x02;
/// Locality flag: a country code follows.
pub(crate) const LOC_COUNTRY: u8 = 0x04;

impl Message {
    /// Appends this message as one frame (current [`VERSION`]) to `buf`.
    ///
    /// Encoding cannot fail. It does not check [`WireLimits`](super::WireLimits): a message
    /// past the receiver's limits is refused there, so check outgoing messages built from
    /// untrusted sizes with [`Message::check`]. A body past 4 GiB gets the length prefix
    /// `u32::MAX`, which every receiver refuses as too large.
    pub fn encode(&self, buf: &mut BytesMut) {
        let start = buf.len();
        buf.reserve(self.reserve_hint());
        buf.put_u32(0);
        buf.put_u8(VERSION);
        buf.put_u8(self.kind().code());
        self.encode_body(buf);
        let len = u32::try_from(buf.len() - start - 4).unwrap_or(u32::MAX);
        if let Some(prefix) = buf.get_mut(start..start + 4) {
            prefix.copy_from_slice(&len.to_be_bytes());
        }
    }

    /// This message as one frame in a new vector.
    pub fn encode_to_vec(&self) -> Vec<u8> {
        let mut buf = BytesMut::with_capacity(self.reserve_hint());
        self.encode(&mut buf);
        buf.to_vec()
    }

    /// This message as one frame, ready for a transport that carries whole messages.
    pub fn to_bytes(&self) -> Bytes {
        let mut buf = BytesMut::with_capacity(self.reserve_hint());
        self.encode(&mut buf);
        buf.freeze()
    }

    /// The length of this message's frame in bytes, its length prefix included.
    pub fn encoded_len(&self) -> usize {
        FRAME_HEADER_LEN + self.body_len()
    }

    fn reserve_hint(&self) -> usize {
        match self {
            Message::Data(d) => FRAME_HEADER_LEN + 128 + d.payload.len(),
            _ => 64,
        }
    }

    fn encode_body(&self, buf: &mut BytesMut) {
        match self {
            Message::Hello(h) => encode_hello(h, buf),
            Message::Have(h) => h.encode_body(buf),
            Message::Request(r) => encode_request(r, buf),
            Message::Data(d) => encode_data(d, buf),
            Message::Cancel(c) => put_varint(buf, c.request_id),
            Message::Reject(r) => {
                put_varint(buf, r.request_id);
                buf.put_u8(r.reason.code());
            }
            Message::Choke | Message::Unchoke => {}
            Message::PeerExchange(p) => encode_pex(p, buf),
            Message::Bye(b) => encode_bye(b, buf),
            Message::Ping(p) => buf.put_u64(p.nonce),
            Message::Pong(p) => buf.put_u64(p.nonce),
        }
    }

    fn body_len(&self) -> usize {
        match self {
            Message::Hello(h) => {
                varint_len(h.versions.len() as u64)
                    + h.versions.len()
                    + 32
                    + 32
                    + 1
                    + varint_len(u64::from(h.upload_kbps))
                    + locality_len(&h.locality)
                    + bytes_len(h.token.len())
            }
            Message::Have(h) => h.body_len(),
            Message::Request(r) => {
                varint_len(r.request_id)
                    + fragment_len(&r.fragment)
                    + varint_len(u64::from(r.deadline_ms))
                    + 1
                    + varint_len(r.resume_offset)
            }
            Message::Data(d) => {
                varint_len(d.request_id)
                    + fragment_len(&d.fragment)
                    + varint_len(d.total_len)
                    + varint_len(d.offset)
                    + 32
                    + bytes_len(d.payload.len())
            }
            Message::Cancel(c) => varint_len(c.request_id),
            Message::Reject(r) => varint_len(r.request_id) + 1,
            Message::Choke | Message::Unchoke => 0,
            Message::PeerExchange(p) => {
                varint_len(p.peers.len() as u64) + p.peers.iter().map(peer_len).sum::<usize>()
            }
            Message::Bye(b) => 1 + bytes_len(b.detail.len()),
            Message::Ping(_) | Message::Pong(_) => 8,
        }
    }
}

fn bytes_len(n: usize) -> usize {
    varint_len(n as u64) + n
}

fn put_bytes(buf: &mut BytesMut, b: &[u8]) {
    put_varint(buf, b.len() as u64);
    buf.put_slice(b);
}

fn encode_hello(h: &Hello, buf: &mut BytesMut) {
    put_bytes(buf, &h.versions);
    buf.put_slice(h.peer.as_bytes());
    buf.put_slice(h.content.as_bytes());
    buf.put_u8(h.role.code());
    put_varint(buf, u64::from(h.upload_kbps));
    put_locality(buf, &h.locality);
    put_bytes(buf, &h.token);
}

fn encode_request(r: &Request, buf: &mut BytesMut) {
    put_varint(buf, r.request_id);
    put_fragment(buf, &r.fragment);
    put_varint(buf, u64::from(r.deadline_ms));
    buf.put_u8(r.priority);
    put_varint(buf, r.resume_offset);
}

fn encode_data(d: &Data, buf: &mut BytesMut) {
    put_varint(buf, d.request_id);
    put_fragment(buf, &d.fragment);
    put_varint(buf, d.total_len);
    put_varint(buf, d.offset);
    buf.put_slice(&d.hash.0);
    put_bytes(buf, &d.payload);
}

fn encode_pex(p: &PeerExchange, buf: &mut BytesMut) {
    put_varint(buf, p.peers.len() as u64);
    for peer in &p.peers {
        put_peer(buf, peer);
    }
}

fn encode_bye(b: &Bye, buf: &mut BytesMut) {
    buf.put_u8(b.reason.code());
    put_bytes(buf, b.detail.as_bytes());
}

pub(crate) fn put_fragment(buf: &mut BytesMut, f: &FragmentId) {
    buf.put_slice(f.content.as_bytes());
    put_varint(buf, u64::from(f.track.0));
    put_varint(buf, f.sequence);
    match f.range {
        None => buf.put_u8(0),
        Some(r) => {
            buf.put_u8(1);
            put_varint(buf, r.start);
            put_varint(buf, r.len);
        }
    }
}

pub(crate) fn fragment_len(f: &FragmentId) -> usize {
    32 + varint_len(u64::from(f.track.0))
        + varint_len(f.sequence)
        + 1
        + f.range
            .map_or(0, |r| varint_len(r.start) + varint_len(r.len))
}

pub(crate) fn locality_flags(l: &Locality) -> u8 {
    let mut flags = 0;
    if l.asn.is_some() {
        flags |= LOC_ASN;
    }
    if l.site.is_some() {
        flags |= LOC_SITE;
    }
    if l.country.is_some() {
        flags |= LOC_COUNTRY;
    }
    flags
}

fn put_locality(buf: &mut BytesMut, l: &Locality) {
    buf.put_u8(locality_flags(l));
    if let Some(asn) = l.asn {
        put_varint(buf, u64::from(asn));
    }
    if let Some(site) = &l.site {
        put_bytes(buf, site.as_bytes());
    }
    if let Some(country) = l.country {
        buf.put_slice(&country);
    }
}

fn locality_len(l: &Locality) -> usize {
    1 + l.asn.map_or(0, |a| varint_len(u64::from(a)))
        + l.site.as_ref().map_or(0, |s| bytes_len(s.len()))
        + l.country.map_or(0, |_| 2)
}

/// The addresses of `p` that travel on the wire.
pub(crate) fn socket_addrs(p: &PeerInfo) -> impl Iterator<Item = SocketAddr> + '_ {
    p.addrs.iter().filter_map(|a| match a {
        PeerAddr::Socket(s) => Some(*s),
        _ => None,
    })
}

fn put_peer(buf: &mut BytesMut, p: &PeerInfo) {
    buf.put_slice(p.id.as_bytes());
    buf.put_u8(p.role.code());
    put_varint(buf, u64::from(p.upload_kbps));
    put_locality(buf, &p.locality);
    put_varint(buf, socket_addrs(p).count() as u64);
    for addr in socket_addrs(p) {
        match addr {
            SocketAddr::V4(a) => {
                buf.put_u8(FAMILY_V4);
                buf.put_slice(&a.ip().octets());
                buf.put_u16(a.port());
            }
            SocketAddr::V6(a) => {
                buf.put_u8(FAMILY_V6);
                buf.put_slice(&a.ip().octets());
                buf.put_u16(a.port());
            }
        }
    }
}

fn peer_len(p: &PeerInfo) -> usize {
    let (count, addrs_len) = socket_addrs(p).fold((0usize, 0usize), |(n, len), a| {
        (
            n + 1,
            len + if a.is_ipv4() { 1 + 4 + 2 } else { 1 + 16 + 2 },
        )
    });
    32 + 1
        + varint_len(u64::from(p.upload_kbps))
        + locality_len(&p.locality)
        + varint_len(count as u64)
        + addrs_len
}
