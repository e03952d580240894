//! Decoding frame bodies into messages.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use super::encode::{FAMILY_V4, FAMILY_V6, LOC_ASN, LOC_COUNTRY, LOC_SITE};
use super::error::WireError;
use super::have::Have;
use super::limits::WireLimits;
use super::message::{
    Bye, ByeReason, Cancel, Data, Hello, Message, MessageKind, PeerExchange, Ping, Pong, Reject,
    RejectReason, Request,
};
use super::reader::Reader;
use crate::hash::ContentHash;
use crate::ids::{
    ByteRange, ContentId, FragmentId, Locality, PeerAddr, PeerId, PeerInfo, Role, TrackId,
};

/// The fewest bytes one `PeerExchange` entry takes: id, role, capacity, locality flags,
/// address count.
const MIN_PEER_LEN: usize = 32 + 1 + 1 + 1 + 1;
/// The fewest bytes one address takes (IPv4).
const MIN_ADDR_LEN: usize = 1 + 4 + 2;

/// Decodes the body of a frame of a known kind; the whole body must be consumed.
pub(crate) fn decode_body(
    kind: MessageKind,
    r: &mut Reader<'_>,
    limits: &WireLimits,
) -> Result<Message, WireError> {
    let msg = match kind {
        MessageKind::Hello => Message::Hello(decode_hello(r, limits)?),
        MessageKind::Have => Message::Have(Have::decode_body(r, limits)?),
        MessageKind::Request => Message::Request(decode_request(r)?),
        MessageKind::Data => Message::Data(decode_data(r, limits)?),
        MessageKind::Cancel => Message::Cancel(Cancel {
            request_id: r.varint("request id")?,
        }),
        MessageKind::Reject => Message::Reject(Reject {
            request_id: r.varint("request id")?,
            reason: RejectReason::from_code(r.u8("Reject reason")?),
        }),
        MessageKind::Choke => Message::Choke,
        MessageKind::Unchoke => Message::Unchoke,
        MessageKind::PeerExchange => Message::PeerExchange(decode_pex(r, limits)?),
        MessageKind::Bye => Message::Bye(Bye {
            reason: ByeReason::from_code(r.u8("Bye reason")?),
            detail: string(r, "Bye detail", limits)?,
        }),
        MessageKind::Ping => Message::Ping(Ping {
            nonce: r.u64_be("Ping nonce")?,
        }),
        MessageKind::Pong => Message::Pong(Pong {
            nonce: r.u64_be("Pong nonce")?,
        }),
    };
    r.finish(kind.name())?;
    Ok(msg)
}

fn decode_hello(r: &mut Reader<'_>, limits: &WireLimits) -> Result<Hello, WireError> {
    let n = r.count("Hello versions", limits.max_versions, 1)?;
    if n == 0 {
        return Err(WireError::Malformed {
            field: "Hello versions",
            reason: "no version listed",
        });
    }
    let versions = r.take(n, "Hello versions")?.to_vec();
    let peer = PeerId::from_bytes(r.array("Hello peer id")?);
    let content = ContentId::from_bytes(r.array("Hello content id")?);
    let role = role(r)?;
    let upload_kbps = r.varint_u32("upload capacity")?;
    let locality = locality(r, limits)?;
    let token_len = r.bounded("Hello token", limits.max_token_len)?;
    let token = r.bytes(token_len, "Hello token")?;
    Ok(Hello {
        versions,
        peer,
        content,
        role,
        upload_kbps,
        locality,
        token,
    })
}

fn decode_request(r: &mut Reader<'_>) -> Result<Request, WireError> {
    Ok(Request {
        request_id: r.varint("request id")?,
        fragment: fragment(r)?,
        deadline_ms: r.varint_u32("Request deadline")?,
        priority: r.u8("Request priority")?,
        resume_offset: r.varint("Request resume offset")?,
    })
}

fn decode_data(r: &mut Reader<'_>, limits: &WireLimits) -> Result<Data, WireError> {
    let request_id = r.varint("request id")?;
    let fragment = fragment(r)?;
    let total_len = r.varint("Data total length")?;
    if total_len > limits.max_fragment_len {
        return Err(WireError::LimitExceeded {
            what: "Data total length",
            len: total_len,
            limit: limits.max_fragment_len,
        });
    }
    let offset = r.varint("Data offset")?;
    let hash = ContentHash(r.array("Data hash")?);
    let len = r.bounded("Data chunk", limits.max_chunk_len)?;
    if offset
        .checked_add(len as u64)
        .is_none_or(|end| end > total_len)
    {
        return Err(WireError::Malformed {
            field: "Data chunk",
            reason: "extends beyond the fragment's total length",
        });
    }
    let payload = r.bytes(len, "Data chunk")?;
    Ok(Data {
        request_id,
        fragment,
        total_len,
        offset,
        hash,
        payload,
    })
}

fn decode_pex(r: &mut Reader<'_>, limits: &WireLimits) -> Result<PeerExchange, WireError> {
    let n = r.count("PeerExchange peers", limits.max_peers, MIN_PEER_LEN)?;
    let mut peers = Vec::with_capacity(n);
    for _ in 0..n {
        peers.push(peer(r, limits)?);
    }
    Ok(PeerExchange { peers })
}

fn peer(r: &mut Reader<'_>, limits: &WireLimits) -> Result<PeerInfo, WireError> {
    let id = PeerId::from_bytes(r.array("peer id")?);
    let role = role(r)?;
    let upload_kbps = r.varint_u32("upload capacity")?;
    let locality = locality(r, limits)?;
    let n = r.count("peer addresses", limits.max_peer_addrs, MIN_ADDR_LEN)?;
    let mut addrs = Vec::with_capacity(n);
    for _ in 0..n {
        addrs.push(PeerAddr::Socket(socket_addr(r)?));
    }
    Ok(PeerInfo {
        id,
        addrs,
        locality,
        role,
        upload_kbps,
    })
}

fn socket_addr(r: &mut Reader<'_>) -> Result<SocketAddr, WireError> {
    match r.u8("address family")? {
        FAMILY_V4 => {
            let ip = Ipv4Addr::from(r.array::<4>("IPv4 address")?);
            let port = u16::from_be_bytes(r.array("port")?);
            Ok(SocketAddr::V4(SocketAddrV4::new(ip, port)))
        }
        FAMILY_V6 => {
            let ip = Ipv6Addr::from(r.array::<16>("IPv6 address")?);
            let port = u16::from_be_bytes(r.array("port")?);
            Ok(SocketAddr::V6(SocketAddrV6::new(ip, port, 0, 0)))
        }
        code => Err(WireError::InvalidCode {
            field: "address family",
            code: u64::from(code),
        }),
    }
}

fn role(r: &mut Reader<'_>) -> Result<Role, WireError> {
    let code = r.u8("role")?;
    Role::from_code(code).ok_or(WireError::InvalidCode {
        field: "role",
        code: u64::from(code),
    })
}

fn locality(r: &mut Reader<'_>, limits: &WireLimits) -> Result<Locality, WireError> {
    let flags = r.u8("locality flags")?;
    if flags & !(LOC_ASN | LOC_SITE | LOC_COUNTRY) != 0 {
        return Err(WireError::InvalidCode {
            field: "locality flags",
            code: u64::from(flags),
        });
    }
    let asn = if flags & LOC_ASN != 0 {
        Some(r.varint_u32("locality AS number")?)
    } else {
        None
    };
    let site = if flags & LOC_SITE != 0 {
        Some(string(r, "locality site", limits)?)
    } else {
        None
    };
    let country = if flags & LOC_COUNTRY != 0 {
        Some(r.array("locality country")?)
    } else {
        None
    };
    Ok(Locality { asn, site, country })
}

/// A length-prefixed UTF-8 string of at most `max_string_len` bytes, validated before it is
/// copied.
fn string(
    r: &mut Reader<'_>,
    field: &'static str,
    limits: &WireLimits,
) -> Result<String, WireError> {
    let len = r.bounded(field, limits.max_string_len)?;
    let raw = r.take(len, field)?;
    std::str::from_utf8(raw)
        .map(str::to_owned)
        .map_err(|_| WireError::Malformed {
            field,
            reason: "not UTF-8",
        })
}

fn fragment(r: &mut Reader<'_>) -> Result<FragmentId, WireError> {
    let content = ContentId::from_bytes(r.array("fragment content id")?);
    let track = TrackId(r.varint_u16("fragment track")?);
    let sequence = r.varint("fragment sequence")?;
    let range = match r.u8("byte range flag")? {
        0 => None,
        1 => Some(ByteRange {
            start: r.varint("byte range start")?,
            len: r.varint("byte range length")?,
        }),
        code => {
            return Err(WireError::InvalidCode {
                field: "byte range flag",
                code: u64::from(code),
            });
        }
    };
    Ok(FragmentId {
        content,
        track,
        sequence,
        range,
    })
}
