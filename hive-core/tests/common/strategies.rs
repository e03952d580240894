//! proptest strategies for every wire message.

#![allow(dead_code)] // each test binary uses a different part

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use bytes::Bytes;
use hive_core::wire::{
    Bye, ByeReason, Cancel, Data, Have, HaveKind, HaveTracks, Hello, Message, PeerExchange, Ping,
    Pong, Reject, RejectReason, Request, TrackHave,
};
use hive_core::{
    ByteRange, ContentHash, ContentId, FragmentId, Locality, PeerAddr, PeerId, PeerInfo, Role,
    SeqSet, TrackId,
};
use proptest::collection::{btree_map, btree_set, vec};
use proptest::option;
use proptest::prelude::*;

pub(crate) fn role() -> impl Strategy<Value = Role> {
    prop_oneof![
        Just(Role::Peer),
        Just(Role::Supernode),
        Just(Role::ConsumeOnly),
        Just(Role::Seeder)
    ]
}

pub(crate) fn locality() -> impl Strategy<Value = Locality> {
    (
        option::of(any::<u32>()),
        option::of("\\PC{0,24}"),
        option::of(any::<[u8; 2]>()),
    )
        .prop_map(|(asn, site, country)| Locality { asn, site, country })
}

pub(crate) fn fragment() -> impl Strategy<Value = FragmentId> {
    (
        any::<[u8; 32]>(),
        any::<u16>(),
        prop_oneof![0u64..100_000, any::<u64>()],
        option::of((any::<u64>(), any::<u64>())),
    )
        .prop_map(|(c, t, seq, range)| FragmentId {
            content: ContentId::from_bytes(c),
            track: TrackId(t),
            sequence: seq,
            range: range.map(|(start, len)| ByteRange { start, len }),
        })
}

/// Sets shaped like what peers hold: live windows, holey windows, scattered and extreme values.
pub(crate) fn seq_set() -> impl Strategy<Value = SeqSet> {
    prop_oneof![
        // Runs and gaps from a base: live windows with holes.
        (
            prop_oneof![0u64..10_000, any::<u64>()],
            vec((0u64..40, 0u64..20), 0..30)
        )
            .prop_map(|(base, steps)| {
                let mut s = SeqSet::new();
                let mut at = base;
                for (gap, len) in steps {
                    at = at.saturating_add(gap);
                    s.insert_range(at..=at.saturating_add(len));
                    at = at.saturating_add(len).saturating_add(1);
                }
                s
            }),
        // Dense random subsets: bitmaps.
        (0u64..1_000_000, btree_set(0u64..700, 0..300))
            .prop_map(|(base, xs)| xs.into_iter().map(|x| base + x).collect()),
        // Sparse random values, extremes included.
        btree_set(
            prop_oneof![
                any::<u64>(),
                Just(0),
                Just(u64::MAX),
                u64::MAX - 600..=u64::MAX
            ],
            0..20
        )
        .prop_map(|xs| xs.into_iter().collect()),
        // Huge ranges.
        (any::<u64>(), any::<u64>()).prop_map(|(a, b)| {
            let mut s = SeqSet::new();
            s.insert_range(a.min(b)..=a.max(b));
            s
        }),
    ]
}

pub(crate) fn have() -> impl Strategy<Value = Have> {
    (
        prop_oneof![Just(HaveKind::Snapshot), Just(HaveKind::Add)],
        btree_map(
            any::<u16>(),
            (
                prop_oneof![Just(0u64), 0u64..10_000, any::<u64>()],
                seq_set(),
            ),
            0..5,
        ),
    )
        .prop_map(|(kind, tracks)| Have {
            kind,
            tracks: tracks
                .into_iter()
                .map(|(t, (floor, seqs))| (TrackId(t), TrackHave { floor, seqs }))
                .collect::<HaveTracks>(),
        })
}

pub(crate) fn hello() -> impl Strategy<Value = Hello> {
    (
        vec(any::<u8>(), 1..16),
        any::<[u8; 32]>(),
        any::<[u8; 32]>(),
        role(),
        any::<u32>(),
        locality(),
        vec(any::<u8>(), 0..200),
    )
        .prop_map(
            |(versions, p, c, role, upload_kbps, locality, token)| Hello {
                versions,
                peer: PeerId::from_bytes(p),
                content: ContentId::from_bytes(c),
                role,
                upload_kbps,
                locality,
                token: Bytes::from(token),
            },
        )
}

pub(crate) fn request() -> impl Strategy<Value = Request> {
    (
        any::<u64>(),
        fragment(),
        any::<u32>(),
        any::<u8>(),
        any::<u64>(),
    )
        .prop_map(
            |(request_id, fragment, deadline_ms, priority, resume_offset)| Request {
                request_id,
                fragment,
                deadline_ms,
                priority,
                resume_offset,
            },
        )
}

pub(crate) fn data() -> impl Strategy<Value = Data> {
    (
        any::<u64>(),
        fragment(),
        0u64..(1 << 20),
        0u64..(1 << 20),
        any::<[u8; 32]>(),
        vec(any::<u8>(), 0..3000),
    )
        .prop_map(
            |(request_id, fragment, offset, extra, hash, payload)| Data {
                request_id,
                fragment,
                total_len: offset + payload.len() as u64 + extra,
                offset,
                hash: ContentHash(hash),
                payload: Bytes::from(payload),
            },
        )
}

pub(crate) fn socket_addr() -> impl Strategy<Value = SocketAddr> {
    prop_oneof![
        (any::<[u8; 4]>(), any::<u16>())
            .prop_map(|(ip, port)| SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::from(ip), port))),
        (any::<[u8; 16]>(), any::<u16>()).prop_map(|(ip, port)| SocketAddr::V6(SocketAddrV6::new(
            Ipv6Addr::from(ip),
            port,
            0,
            0
        ))),
    ]
}

pub(crate) fn peer_info() -> impl Strategy<Value = PeerInfo> {
    (
        any::<[u8; 32]>(),
        vec(socket_addr(), 0..4),
        locality(),
        role(),
        any::<u32>(),
    )
        .prop_map(|(id, addrs, locality, role, upload_kbps)| PeerInfo {
            id: PeerId::from_bytes(id),
            addrs: addrs.into_iter().map(PeerAddr::Socket).collect(),
            locality,
            role,
            upload_kbps,
        })
}

/// Any message, within the default limits.
pub(crate) fn message() -> impl Strategy<Value = Message> {
    prop_oneof![
        hello().prop_map(Message::Hello),
        have().prop_map(Message::Have),
        request().prop_map(Message::Request),
        data().prop_map(Message::Data),
        any::<u64>().prop_map(|request_id| Message::Cancel(Cancel { request_id })),
        (any::<u64>(), any::<u8>()).prop_map(|(request_id, code)| Message::Reject(Reject {
            request_id,
            reason: RejectReason::from_code(code),
        })),
        Just(Message::Choke),
        Just(Message::Unchoke),
        vec(peer_info(), 0..6).prop_map(|peers| Message::PeerExchange(PeerExchange { peers })),
        (any::<u8>(), "\\PC{0,40}").prop_map(|(code, detail)| Message::Bye(Bye {
            reason: ByeReason::from_code(code),
            detail,
        })),
        any::<u64>().prop_map(|nonce| Message::Ping(Ping { nonce })),
        any::<u64>().prop_map(|nonce| Message::Pong(Pong { nonce })),
    ]
}
