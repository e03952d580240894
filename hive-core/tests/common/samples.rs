//! One fixed sample of each wire message, shared by the golden-vector and bad-input tests.

#![allow(dead_code)] // each test binary uses a different part

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use bytes::Bytes;
use hive_core::wire::{
    Bye, ByeReason, Cancel, Data, Have, Hello, Message, PeerExchange, Ping, Pong, Reject,
    RejectReason, Request,
};
use hive_core::{
    ByteRange, ContentHash, ContentId, FragmentId, Locality, PeerAddr, PeerId, PeerInfo, Role,
    SeqSet, TrackId,
};

pub(crate) fn content() -> ContentId {
    ContentId::from_bytes([0x22; 32])
}

pub(crate) fn hello() -> Message {
    Message::Hello(Hello {
        versions: vec![1],
        peer: PeerId::from_bytes([0x11; 32]),
        content: content(),
        role: Role::Supernode,
        upload_kbps: 25_000,
        locality: Locality {
            asn: Some(3215),
            site: Some("paris-hq".into()),
            country: Some(*b"FR"),
        },
        token: Bytes::from_static(b"tok"),
    })
}

pub(crate) fn have() -> Message {
    let mut have = Have::snapshot();
    // A full live window on track 0, every other fragment on track 1.
    have.insert(TrackId(0), 100, (100..115).collect());
    have.insert(TrackId(1), 100, (100..115).step_by(2).collect::<SeqSet>());
    Message::Have(have)
}

pub(crate) fn request() -> Message {
    Message::Request(Request {
        request_id: 7,
        fragment: FragmentId::new(content(), TrackId(2), 1041),
        deadline_ms: 1500,
        priority: 1,
        resume_offset: 0,
    })
}

pub(crate) fn data() -> Message {
    Message::Data(Data {
        request_id: 7,
        fragment: FragmentId::new(content(), TrackId(2), 1041).with_range(ByteRange {
            start: 4096,
            len: 12,
        }),
        total_len: 12,
        offset: 6,
        hash: ContentHash::of(b"hello world!"),
        payload: Bytes::from_static(b"world!"),
    })
}

pub(crate) fn cancel() -> Message {
    Message::Cancel(Cancel { request_id: 7 })
}

pub(crate) fn reject() -> Message {
    Message::Reject(Reject {
        request_id: 7,
        reason: RejectReason::NotFound,
    })
}

pub(crate) fn reject_unknown_reason() -> Message {
    Message::Reject(Reject {
        request_id: 7,
        reason: RejectReason::Unknown(200),
    })
}

pub(crate) fn peer_exchange() -> Message {
    let v4 = PeerInfo::new(
        PeerId::from_bytes([0x33; 32]),
        PeerAddr::Socket(SocketAddr::V4(SocketAddrV4::new(
            Ipv4Addr::new(192, 0, 2, 1),
            4433,
        ))),
    );
    let v6 = PeerInfo {
        id: PeerId::from_bytes([0x44; 32]),
        addrs: vec![PeerAddr::Socket(SocketAddr::V6(SocketAddrV6::new(
            Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1),
            443,
            0,
            0,
        )))],
        locality: Locality {
            asn: Some(64_500),
            site: None,
            country: None,
        },
        role: Role::Seeder,
        upload_kbps: 100_000,
    };
    Message::PeerExchange(PeerExchange {
        peers: vec![v4, v6],
    })
}

pub(crate) fn bye() -> Message {
    Message::Bye(Bye {
        reason: ByeReason::Leaving,
        detail: "bye".into(),
    })
}

pub(crate) fn ping() -> Message {
    Message::Ping(Ping {
        nonce: 0x0102_0304_0506_0708,
    })
}

pub(crate) fn pong() -> Message {
    Message::Pong(Pong {
        nonce: 0x0102_0304_0506_0708,
    })
}

/// Every sample, named.
pub(crate) fn all() -> Vec<(&'static str, Message)> {
    vec![
        ("hello", hello()),
        ("have", have()),
        ("request", request()),
        ("data", data()),
        ("cancel", cancel()),
        ("reject", reject()),
        ("reject_unknown_reason", reject_unknown_reason()),
        ("choke", Message::Choke),
        ("unchoke", Message::Unchoke),
        ("peer_exchange", peer_exchange()),
        ("bye", bye()),
        ("ping", ping()),
        ("pong", pong()),
    ]
}

/// Lower-case hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Bytes of a hex string; whitespace is ignored so vectors can be laid out by field.
pub(crate) fn unhex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    assert!(digits.len() % 2 == 0, "odd number of hex digits");
    digits
        .chunks(2)
        .map(|p| {
            let p = std::str::from_utf8(p).unwrap_or_else(|e| panic!("{e}"));
            u8::from_str_radix(p, 16).unwrap_or_else(|e| panic!("{p}: {e}"))
        })
        .collect()
}
