//! Drives one `Swarm` engine with an arbitrary sequence of inputs: messages decoded from the
//! fuzzer's bytes as if sent by one of four neighbours (most of them wire frames, so the
//! fuzzer reaches every message kind), player requests, origin answers, trusted hashes,
//! disconnects and time steps. After every input the outputs are drained. Invariants: nothing
//! panics; the engine never delivers bytes that do not match the fragment's trusted hash; it
//! never sends to a peer that is not its neighbour; its queues stay bounded.

#![no_main]

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use hive_core::cache::LiveWindowCache;
use hive_core::time::{Duration, Instant};
use hive_core::wire::{Decoded, Hello, Message, WireLimits, decode_frame};
use hive_core::{ContentHash, ContentId, FragmentId, KeyKind, PeerAddr, PeerId, PeerInfo, TrackId};
use hive_overlay::{FragmentInfo, Output, PublicMesh, Swarm, SwarmConfig};
use libfuzzer_sys::fuzz_target;

const PEERS: u8 = 4;

fn peer(n: u8) -> PeerInfo {
    PeerInfo::new(
        PeerId::from_public_key(KeyKind::X25519, &[n; 32]),
        PeerAddr::Memory(u64::from(n)),
    )
}

fn content() -> ContentId {
    ContentId::derive("fuzz/live")
}

/// The origin's bytes of fragment `seq` (small, so the fuzzer can also send them whole).
fn origin_bytes(seq: u64) -> Bytes {
    Bytes::from(vec![seq as u8; 64 + (seq % 7) as usize])
}

fn info(seq: u64, trusted: bool) -> FragmentInfo {
    FragmentInfo {
        id: FragmentId::new(content(), TrackId(0), seq),
        url: format!("http://origin/{seq}.ts"),
        media_time: Duration::from_secs(2 * seq),
        duration: Duration::from_secs(2),
        size_estimate: 71,
        hash: trusted.then(|| ContentHash::of(&origin_bytes(seq))),
    }
}

fuzz_target!(|data: &[u8]| {
    let limits = WireLimits::default();
    let mut now = Instant::from_secs(1);
    let cache = Arc::new(LiveWindowCache::default());
    let mut s = Swarm::new(
        now,
        peer(0),
        content(),
        SwarmConfig::default(),
        Box::new(PublicMesh::new(1)),
        cache,
    );
    let mut connected: BTreeMap<PeerId, bool> = BTreeMap::new();
    for n in 1..=PEERS {
        s.handle_peer_connected(now, peer(n));
        connected.insert(peer(n).id, true);
    }
    // Its greetings go out before anything else happens (a driver drains after every input).
    while s.poll_output().is_some() {}
    let mut rest = data;
    let mut steps = 0;
    while let Some((&op, tail)) = rest.split_first() {
        steps += 1;
        if steps > 512 {
            break;
        }
        rest = tail;
        let from = peer(1 + op % PEERS);
        match op >> 4 {
            // A frame from a neighbour: a length byte, then that many bytes.
            0..=7 => {
                let Some((&len, tail)) = rest.split_first() else {
                    break;
                };
                let take = (len as usize).min(tail.len());
                let (frame, tail) = tail.split_at(take);
                rest = tail;
                let mut framed = Vec::with_capacity(frame.len() + 4);
                framed.extend_from_slice(&(frame.len() as u32).to_be_bytes());
                framed.extend_from_slice(frame);
                if let Ok(Decoded::Message(m)) = decode_frame(&Bytes::from(framed), &limits) {
                    s.handle_message(now, from.id, m);
                }
            }
            // A neighbour's Hello.
            8 => s.handle_message(
                now,
                from.id,
                Message::Hello(Hello {
                    versions: hive_core::wire::SUPPORTED_VERSIONS.to_vec(),
                    peer: from.id,
                    content: content(),
                    role: from.role,
                    upload_kbps: u32::from(op) * 1000,
                    locality: from.locality.clone(),
                    token: Bytes::new(),
                }),
            ),
            // A player request, with or without a trusted hash.
            9 => s.handle_player_request(now, info(u64::from(op % 8), op & 1 == 0), None),
            // The manifest lists fragments.
            10 => s.handle_fragments_published(now, (0..8).map(|q| info(q, op & 1 == 0)).collect()),
            // A trusted hash arrives late.
            11 => {
                let q = u64::from(op % 8);
                s.handle_trusted_hashes(
                    now,
                    [(info(q, true).id, ContentHash::of(&origin_bytes(q)))],
                );
            }
            // Time passes.
            12 => {
                now += Duration::from_millis(u64::from(op & 0xf) * 97);
                s.handle_timeout(now);
            }
            // A neighbour leaves, or comes back.
            13 => {
                let up = connected.entry(from.id).or_insert(false);
                if *up {
                    s.handle_peer_disconnected(now, from.id);
                } else {
                    s.handle_peer_connected(now, from.clone());
                }
                *up = !*up;
            }
            // Candidates.
            14 => s.handle_candidates(now, (5..9).map(peer).collect()),
            // Bytes reported sent.
            _ => s.handle_sent(now, from.id, u64::from(op) * 1000),
        }
        // Drain, answering origin fetches with the origin's bytes.
        let mut outputs = 0;
        while let Some(out) = s.poll_output() {
            outputs += 1;
            assert!(outputs < 100_000, "outputs without end");
            match out {
                Output::FetchOrigin { fragment, .. } => {
                    let q = fragment.id.sequence;
                    s.handle_origin_result(now, fragment.id, Ok(origin_bytes(q)));
                }
                Output::Deliver { fragment, data } => {
                    // A player never gets bytes unlike the origin's.
                    assert_eq!(
                        data,
                        origin_bytes(fragment.sequence),
                        "delivered wrong bytes"
                    );
                }
                Output::Send { to, .. } => {
                    assert!(
                        s.neighbours().iter().any(|v| v.info.id == to)
                            || connected.get(&to) == Some(&true),
                        "sent to a stranger"
                    );
                }
                _ => {}
            }
        }
        assert!(s.neighbours().len() <= PEERS as usize);
        assert!(s.candidates().len() <= SwarmConfig::default().max_candidates);
    }
});
