//! Swarm engines wired together on a virtual clock (a deterministic n-node harness, in the
//! manner of quinn's `Pair`): messages take a fixed latency, the origin a latency plus size over
//! rate. Faults can be injected per node. The harness is a driver: it forwards everything as
//! one [`Input`] (`Swarm::handle_input`).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::sync::Arc;

use bytes::Bytes;
use hive_core::cache::LiveWindowCache;
use hive_core::time::{Duration, Instant};
use hive_core::wire::Message;
use hive_core::{
    ContentHash, ContentId, FragmentId, KeyKind, PeerAddr, PeerId, PeerInfo, Role, TrackId,
};
use hive_overlay::{FragmentInfo, Input, NoPeer, Output, RandomMesh, Swarm, SwarmConfig, Verify};

const LATENCY: Duration = Duration::from_millis(10);
const ORIGIN_LATENCY: Duration = Duration::from_millis(50);
const FRAGMENT: usize = 250_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    None,
    /// Flips a byte of every Data chunk it sends.
    Corrupt,
    /// Never answers requests.
    Mute,
    /// Serves other bytes than the origin's, with their own hash (a consistent liar: a
    /// compromised agent, or one whose origin was made to resolve to a liar).
    Lie,
}

#[derive(Debug)]
enum Ev {
    Msg {
        to: usize,
        from: PeerId,
        msg: Message,
    },
    Origin {
        node: usize,
        id: FragmentId,
    },
    Request {
        node: usize,
        seq: u64,
    },
    Connected {
        a: usize,
        b: usize,
    },
    /// A trusted hash reaches a node (a signed list fetched late).
    Hash {
        node: usize,
        seq: u64,
    },
}

struct Net {
    now: Instant,
    nodes: Vec<Swarm>,
    faults: Vec<Fault>,
    ids: BTreeMap<PeerId, usize>,
    events: BinaryHeap<Reverse<(Instant, u64)>>,
    payloads: BTreeMap<u64, Ev>,
    seq: u64,
    delivered: Vec<Vec<(FragmentId, Bytes, Instant)>>,
    content: ContentId,
    origin_fetches: usize,
    /// Data handed to the "transport", reported back with `handle_sent` after draining.
    sent: Vec<(usize, PeerId, u64, Instant)>,
    /// Whether players' requests carry the fragment's trusted hash (as a signed list known
    /// before the player asks gives it).
    trusted: bool,
    /// Nodes that received a `BadPeer` output, and whom it named.
    bad_peers: Vec<(usize, PeerId)>,
}

fn info(content: ContentId, seq: u64) -> FragmentInfo {
    FragmentInfo {
        id: FragmentId::new(content, TrackId(0), seq),
        url: format!("http://origin/{seq}.ts"),
        media_time: Duration::from_secs(2 * seq),
        duration: Duration::from_secs(2),
        size_estimate: FRAGMENT as u64,
        hash: Some(ContentHash::of(&origin_bytes(seq))),
    }
}

/// What a liar serves instead of fragment `seq`.
fn lie_bytes(seq: u64) -> Bytes {
    Bytes::from(
        origin_bytes(seq)
            .iter()
            .map(|b| b ^ 0x55)
            .collect::<Vec<u8>>(),
    )
}

fn origin_bytes(seq: u64) -> Bytes {
    Bytes::from(
        (0..FRAGMENT)
            .map(|i| (i as u64 ^ seq) as u8)
            .collect::<Vec<u8>>(),
    )
}

impl Net {
    fn new(
        n: usize,
        policy: impl Fn(usize) -> Box<dyn hive_core::overlay::OverlayPolicy>,
        cfg: impl Fn(usize) -> SwarmConfig,
    ) -> Net {
        let content = ContentId::derive("test/live");
        let now = Instant::from_secs(1);
        let mut nodes = Vec::new();
        let mut ids = BTreeMap::new();
        for i in 0..n {
            let id = PeerId::from_public_key(KeyKind::X25519, &[i as u8; 32]);
            ids.insert(id, i);
            let me = PeerInfo::new(id, PeerAddr::Memory(i as u64));
            nodes.push(Swarm::new(
                now,
                me,
                content,
                cfg(i),
                policy(i),
                Arc::new(LiveWindowCache::default()),
            ));
        }
        Net {
            now,
            nodes,
            faults: vec![Fault::None; n],
            ids,
            events: BinaryHeap::new(),
            payloads: BTreeMap::new(),
            seq: 0,
            delivered: vec![Vec::new(); n],
            content,
            origin_fetches: 0,
            sent: Vec::new(),
            trusted: true,
            bad_peers: Vec::new(),
        }
    }

    fn at(&mut self, t: Instant, ev: Ev) {
        self.seq += 1;
        self.events.push(Reverse((t, self.seq)));
        self.payloads.insert(self.seq, ev);
    }

    /// Tells every node about every other one.
    fn introduce_all(&mut self) {
        let all: Vec<PeerInfo> = self.nodes.iter().map(|n| n.me().clone()).collect();
        for i in 0..self.nodes.len() {
            let now = self.now;
            self.nodes[i].handle_input(now, Input::Candidates(all.clone()));
            self.drain(i);
        }
    }

    fn drain(&mut self, i: usize) {
        loop {
            self.drain_once(i);
            let sent = std::mem::take(&mut self.sent);
            if sent.is_empty() {
                break;
            }
            for (node, to, len, now) in sent {
                self.nodes[node].handle_input(
                    now,
                    Input::Sent {
                        peer: to,
                        bytes: len,
                    },
                );
            }
        }
    }

    fn drain_once(&mut self, i: usize) {
        while let Some(out) = self.nodes[i].poll_output() {
            let from = self.nodes[i].me().id;
            match out {
                Output::Send {
                    to, mut message, ..
                } => {
                    let Some(&j) = self.ids.get(&to) else {
                        continue;
                    };
                    match (self.faults[i], &mut message) {
                        (Fault::Mute, Message::Data(_)) => continue,
                        (Fault::Corrupt, Message::Data(d)) => {
                            let mut v = d.payload.to_vec();
                            v[0] ^= 0xff;
                            d.payload = Bytes::from(v);
                        }
                        (Fault::Lie, Message::Data(d)) => {
                            let lie = lie_bytes(d.fragment.sequence);
                            let at = d.offset as usize;
                            d.payload = lie.slice(at..at + d.payload.len());
                            d.hash = ContentHash::of(&lie);
                        }
                        _ => {}
                    }
                    self.at(
                        self.now + LATENCY,
                        Ev::Msg {
                            to: j,
                            from,
                            msg: message,
                        },
                    );
                }
                Output::FetchOrigin { fragment, .. } => {
                    self.origin_fetches += 1;
                    self.at(
                        self.now + ORIGIN_LATENCY,
                        Ev::Origin {
                            node: i,
                            id: fragment.id,
                        },
                    );
                }
                Output::Deliver { fragment, data } => {
                    self.delivered[i].push((fragment, data, self.now))
                }
                Output::Failed { fragment } => panic!("node {i}: {fragment} failed"),
                Output::BadPeer { peer, .. } => self.bad_peers.push((i, peer)),
                Output::NeedHash { .. } => {}
                Output::Connect(peer) => {
                    if let Some(&j) = self.ids.get(&peer.id) {
                        self.at(self.now + LATENCY * 2, Ev::Connected { a: i, b: j });
                    }
                }
                // The harness's links have no congestion controller to set.
                Output::CcPriority { .. } => {}
                Output::Disconnect { peer, .. } => {
                    if let Some(&j) = self.ids.get(&peer) {
                        let now = self.now;
                        self.nodes[j].handle_input(now, Input::PeerDisconnected(from));
                    }
                }
            }
        }
    }

    fn request(&mut self, node: usize, seq: u64, at: Instant) {
        self.at(at, Ev::Request { node, seq });
    }

    /// Two connected nodes: node 0's player asks for `seq` at 2 s (the origin), node 1's at 4 s
    /// (from node 0, faults permitting); runs until 8 s.
    fn second_asks_the_first(&mut self, seq: u64) {
        self.introduce_all();
        self.run_until(Instant::from_secs(2));
        self.request(0, seq, Instant::from_secs(2));
        self.request(1, seq, Instant::from_secs(4));
        self.run_until(Instant::from_secs(8));
    }

    fn run_until(&mut self, end: Instant) {
        loop {
            let next_timer = (0..self.nodes.len())
                .filter_map(|i| self.nodes[i].poll_timeout().map(|t| (t, i)))
                .min();
            let next_ev = self.events.peek().map(|Reverse((t, _))| *t);
            let t = match (next_timer, next_ev) {
                (Some((tt, _)), Some(te)) => tt.min(te),
                (Some((tt, _)), None) => tt,
                (None, Some(te)) => te,
                (None, None) => break,
            };
            if t > end {
                break;
            }
            self.now = self.now.max(t);
            if next_ev == Some(t) {
                let Some(Reverse((_, k))) = self.events.pop() else {
                    break;
                };
                let Some(ev) = self.payloads.remove(&k) else {
                    continue;
                };
                let now = self.now;
                match ev {
                    Ev::Msg { to, from, msg } => {
                        self.nodes[to].handle_input(now, Input::Message { from, message: msg });
                        self.drain(to);
                    }
                    Ev::Origin { node, id } => {
                        let input = Input::Origin {
                            fragment: id,
                            result: Ok(origin_bytes(id.sequence)),
                            hash: None,
                        };
                        self.nodes[node].handle_input(now, input);
                        self.drain(node);
                    }
                    Ev::Request { node, seq } => {
                        let mut inf = info(self.content, seq);
                        if !self.trusted {
                            inf.hash = None;
                        }
                        self.nodes[node].handle_input(
                            now,
                            Input::PlayerRequest {
                                info: inf,
                                deadline: None,
                            },
                        );
                        self.drain(node);
                    }
                    Ev::Hash { node, seq } => {
                        let id = FragmentId::new(self.content, TrackId(0), seq);
                        let h = ContentHash::of(&origin_bytes(seq));
                        self.nodes[node].handle_input(now, Input::TrustedHashes(vec![(id, h)]));
                        self.drain(node);
                    }
                    Ev::Connected { a, b } => {
                        let (ia, ib) = (self.nodes[a].me().clone(), self.nodes[b].me().clone());
                        self.nodes[a].handle_input(now, Input::PeerConnected(ib));
                        self.nodes[b].handle_input(now, Input::PeerConnected(ia));
                        self.drain(a);
                        self.drain(b);
                    }
                }
            } else if let Some((_, i)) = next_timer {
                let now = self.now;
                self.nodes[i].handle_input(now, Input::Timeout);
                self.drain(i);
            }
        }
        self.now = end;
    }
}

fn random_mesh(n: usize) -> Net {
    Net::new(
        n,
        |i| Box::new(RandomMesh::new(i as u64)),
        |_| SwarmConfig::default(),
    )
}

#[test]
fn second_viewer_gets_the_fragment_from_the_first() {
    let mut net = random_mesh(2);
    net.introduce_all();
    net.run_until(Instant::from_secs(2));
    assert_eq!(
        net.nodes[0].neighbours().len(),
        1,
        "the two engines connected"
    );
    net.request(0, 5, Instant::from_secs(2));
    net.request(1, 5, Instant::from_secs(4));
    net.run_until(Instant::from_secs(8));
    assert_eq!(net.origin_fetches, 1, "one origin fetch for two viewers");
    for i in 0..2 {
        assert_eq!(net.delivered[i].len(), 1);
        assert!(
            net.delivered[i][0].1 == origin_bytes(5),
            "node {i} got the right bytes"
        );
    }
    let s1 = net.nodes[1].stats();
    assert_eq!(s1.peer_bytes, FRAGMENT as u64);
    assert_eq!(s1.origin_bytes, 0);
    assert_eq!(net.nodes[0].stats().uploaded_bytes, FRAGMENT as u64);
    assert_eq!(s1.deadline_misses, 0);
}

#[test]
fn simultaneous_viewers_share_one_origin_fetch_mostly() {
    let mut net = random_mesh(10);
    net.introduce_all();
    net.run_until(Instant::from_secs(3));
    for seq in 0..5u64 {
        for node in 0..10 {
            // Players ask within 100 ms of each other, as live players polling a playlist do.
            net.request(
                node,
                seq,
                Instant::from_secs(3 + 2 * seq) + Duration::from_millis(10 * node as u64),
            );
        }
    }
    net.run_until(Instant::from_secs(20));
    let origin: u64 = net.nodes.iter().map(|n| n.stats().origin_bytes).sum();
    let player: u64 = net.nodes.iter().map(|n| n.stats().player_bytes).sum();
    let misses: u64 = net.nodes.iter().map(|n| n.stats().deadline_misses).sum();
    assert_eq!(player, 50 * FRAGMENT as u64, "every request delivered");
    assert_eq!(misses, 0, "every request in time");
    let offload = 1.0 - origin as f64 / player as f64;
    assert!(offload >= 0.5, "random mesh offload {offload:.2}");
}

#[test]
fn corrupt_peer_is_dropped_and_the_player_gets_good_bytes() {
    let mut net = random_mesh(2);
    net.faults[0] = Fault::Corrupt;
    net.second_asks_the_first(9);
    let s1 = net.nodes[1].stats();
    assert_eq!(s1.bad_fragments, 1);
    assert!(
        net.nodes[1].neighbours().is_empty(),
        "the corrupting peer was dropped"
    );
    assert!(
        net.delivered[1][0].1 == origin_bytes(9),
        "the player never sees corrupt bytes"
    );
    assert_eq!(s1.origin_bytes, FRAGMENT as u64, "fallback to the origin");
    assert_eq!(s1.deadline_misses, 0);
}

#[test]
fn a_fragment_sent_as_one_chunk_arrives_whole_and_is_still_checked() {
    // Chunks larger than the fragment: the receiver keeps the one chunk as it is (no copy),
    // and still checks it against its hash.
    let big = |_| SwarmConfig {
        chunk_size: 4 * FRAGMENT,
        ..SwarmConfig::default()
    };
    let mut net = Net::new(2, |i| Box::new(RandomMesh::new(i as u64)), big);
    net.second_asks_the_first(5);
    assert!(net.delivered[1][0].1 == origin_bytes(5));
    assert_eq!(net.nodes[1].stats().peer_bytes, FRAGMENT as u64);

    let mut net = Net::new(2, |i| Box::new(RandomMesh::new(i as u64)), big);
    net.faults[0] = Fault::Corrupt;
    net.second_asks_the_first(9);
    assert_eq!(net.nodes[1].stats().bad_fragments, 1);
    assert!(net.delivered[1][0].1 == origin_bytes(9));
}

#[test]
fn trusting_declared_hashes_skips_hashing_the_bytes() {
    // Only a simulator, whose network cannot alter bytes, compares declared hashes without
    // hashing: bytes altered under a correct declared hash pass (which no real network may
    // be trusted with), a wrong declared hash does not.
    let declared = |_| SwarmConfig {
        verify: Verify::TrustedDeclared,
        ..SwarmConfig::default()
    };
    let mut net = Net::new(2, |i| Box::new(RandomMesh::new(i as u64)), declared);
    net.faults[0] = Fault::Corrupt;
    net.second_asks_the_first(9);
    assert_eq!(net.nodes[1].stats().bad_fragments, 0);
    assert_eq!(net.nodes[1].stats().peer_bytes, FRAGMENT as u64);

    let mut net = Net::new(2, |i| Box::new(RandomMesh::new(i as u64)), declared);
    net.faults[0] = Fault::Lie;
    net.second_asks_the_first(9);
    assert_eq!(net.nodes[1].stats().bad_fragments, 1);
    assert!(net.delivered[1][0].1 == origin_bytes(9));
}

#[test]
fn a_consistent_liar_is_refused_at_its_first_chunk_and_banned() {
    let mut net = random_mesh(2);
    net.faults[0] = Fault::Lie;
    net.second_asks_the_first(9);
    let s1 = net.nodes[1].stats();
    assert_eq!(s1.bad_fragments, 1);
    assert_eq!(s1.bad_peers, 1);
    assert_eq!(s1.peer_bytes, 0, "not one byte of the lie was taken");
    assert!(
        net.delivered[1][0].1 == origin_bytes(9),
        "the player got the origin's bytes"
    );
    assert_eq!(s1.deadline_misses, 0);
    let liar = net.nodes[0].me().id;
    assert_eq!(net.bad_peers, vec![(1, liar)]);
    assert!(net.nodes[1].is_banned(&liar));
    // It is never connected again: not as a candidate, not when it dials in.
    net.introduce_all();
    net.run_until(Instant::from_secs(12));
    assert!(net.nodes[1].neighbours().is_empty());
    assert!(net.nodes[1].candidates().iter().all(|c| c.id != liar));
    let now = net.now;
    let liar_info = net.nodes[0].me().clone();
    net.nodes[1].handle_peer_connected(now, liar_info);
    assert!(net.nodes[1].neighbours().is_empty(), "its dial is refused");
}

#[test]
fn with_sender_hashes_only_a_liar_is_believed() {
    // `--integrity none`: what a closed lab gets, and why it is never the default.
    let sender = |_| SwarmConfig {
        verify: Verify::SenderHash,
        ..SwarmConfig::default()
    };
    let mut net = Net::new(2, |i| Box::new(RandomMesh::new(i as u64)), sender);
    net.faults[0] = Fault::Lie;
    net.second_asks_the_first(9);
    assert!(net.delivered[1][0].1 == lie_bytes(9));
    // It still catches corruption in transit.
    let mut net = Net::new(2, |i| Box::new(RandomMesh::new(i as u64)), sender);
    net.faults[0] = Fault::Corrupt;
    net.second_asks_the_first(9);
    assert_eq!(net.nodes[1].stats().bad_fragments, 1);
    assert!(net.delivered[1][0].1 == origin_bytes(9));
}

#[test]
fn without_a_trusted_hash_in_time_the_origin_serves() {
    let mut net = random_mesh(2);
    net.trusted = false;
    net.second_asks_the_first(9);
    let s1 = net.nodes[1].stats();
    assert_eq!(s1.peer_bytes, 0, "no peer bytes without a trusted hash");
    assert_eq!(s1.origin_bytes, FRAGMENT as u64);
    assert!(s1.no_trusted_hash >= 1);
    // The peer's transfer ran while the hash was awaited; its bytes were held, then dropped.
    assert_eq!(s1.held_for_hash, 1);
    assert_eq!(s1.held_dropped, 1);
    assert_eq!(s1.verified_late, 0);
    assert_eq!(s1.deadline_misses, 0);
    assert_eq!(net.delivered[1].len(), 1, "delivered once, from the origin");
    assert!(net.delivered[1][0].1 == origin_bytes(9));
}

#[test]
fn a_trusted_hash_arriving_late_releases_the_peer_fetch() {
    let mut net = random_mesh(2);
    net.trusted = false;
    net.introduce_all();
    net.run_until(Instant::from_secs(2));
    net.request(0, 9, Instant::from_secs(2));
    net.request(1, 9, Instant::from_secs(4));
    // Node 1's hash comes 200 ms after its player asked (well before the last call).
    net.at(Instant::from_millis(4200), Ev::Hash { node: 1, seq: 9 });
    net.run_until(Instant::from_secs(8));
    let s1 = net.nodes[1].stats();
    assert_eq!(
        s1.peer_bytes, FRAGMENT as u64,
        "fetched from the peer once trusted"
    );
    assert_eq!(s1.origin_bytes, 0);
    assert!(net.delivered[1][0].1 == origin_bytes(9));
    // The transfer did not wait for the hash: the bytes were in and held when it came, and
    // were used at that instant, not before.
    assert_eq!((s1.held_for_hash, s1.verified_late), (1, 1));
    assert_eq!(net.delivered[1][0].2, Instant::from_millis(4200));
}

#[test]
fn a_liar_whose_bytes_wait_for_the_trusted_hash_is_banned_when_it_comes() {
    // The liar's bytes are consistent with the hash it declares, so they are taken and held;
    // the trusted hash, when it comes, names other bytes: none of the lie is used.
    let mut net = random_mesh(2);
    net.trusted = false;
    net.faults[0] = Fault::Lie;
    net.introduce_all();
    net.run_until(Instant::from_secs(2));
    net.request(0, 9, Instant::from_secs(2));
    net.request(1, 9, Instant::from_secs(4));
    net.at(Instant::from_millis(4200), Ev::Hash { node: 1, seq: 9 });
    net.run_until(Instant::from_secs(8));
    let s1 = net.nodes[1].stats();
    assert_eq!(s1.held_for_hash, 1, "the lie was held");
    assert_eq!(s1.verified_late, 0);
    assert_eq!((s1.bad_fragments, s1.bad_peers), (1, 1));
    assert_eq!(s1.peer_bytes, 0, "not one byte of the lie was used");
    assert_eq!(s1.origin_bytes, FRAGMENT as u64);
    assert_eq!(net.delivered[1].len(), 1);
    assert!(
        net.delivered[1][0].1 == origin_bytes(9),
        "the player got the origin's bytes"
    );
    assert!(net.delivered[1][0].2 > Instant::from_millis(4200));
    let liar = net.nodes[0].me().id;
    assert_eq!(net.bad_peers, vec![(1, liar)]);
    assert!(net.nodes[1].is_banned(&liar));
    assert_eq!(s1.deadline_misses, 0);
}

#[test]
fn a_cancelled_player_request_is_withdrawn_from_the_peer_and_never_delivered() {
    let mut net = random_mesh(2);
    net.faults[0] = Fault::Mute; // node 0 accepts the request but never sends the bytes
    net.introduce_all();
    net.run_until(Instant::from_secs(2));
    net.request(0, 3, Instant::from_secs(2));
    net.request(1, 3, Instant::from_secs(4));
    net.run_until(Instant::from_secs(4) + Duration::from_millis(100));
    let id = FragmentId::new(net.content, TrackId(0), 3);
    let now = net.now;
    net.nodes[1].handle_player_cancel(now, id);
    let mut cancels = 0;
    while let Some(o) = net.nodes[1].poll_output() {
        if let Output::Send {
            message: Message::Cancel(_),
            ..
        } = o
        {
            cancels += 1;
        }
    }
    assert_eq!(cancels, 1, "the request to node 0 is cancelled");
    let origin_before = net.origin_fetches;
    net.run_until(Instant::from_secs(8));
    assert!(
        net.delivered[1].is_empty(),
        "nothing delivered after the cancel"
    );
    assert_eq!(net.origin_fetches, origin_before, "and no origin fallback");
    assert_eq!(net.nodes[1].stats().player_cancels, 1);
    assert_eq!(net.nodes[1].stats().deadline_misses, 0);
}

#[test]
fn mute_peer_falls_back_to_origin_in_time() {
    let mut net = random_mesh(2);
    net.faults[0] = Fault::Mute;
    net.second_asks_the_first(3);
    let s1 = net.nodes[1].stats();
    assert_eq!(s1.peer_fallbacks, 1);
    assert_eq!(
        s1.deadline_misses, 0,
        "the time budget kept room for the origin"
    );
    let (_, _, at) = &net.delivered[1][0];
    assert!(
        *at <= Instant::from_secs(6),
        "delivered by the 2 s deadline: {at}"
    );
}

#[test]
fn nopeer_never_connects_and_always_uses_the_origin() {
    let mut net = Net::new(3, |_| Box::new(NoPeer), |_| SwarmConfig::default());
    net.introduce_all();
    for node in 0..3 {
        net.request(node, 1, Instant::from_secs(2));
    }
    net.run_until(Instant::from_secs(6));
    assert_eq!(net.origin_fetches, 3);
    assert!(net.nodes.iter().all(|n| n.neighbours().is_empty()));
}

#[test]
fn consume_only_agents_never_upload() {
    let mut net = Net::new(
        2,
        |i| Box::new(RandomMesh::new(i as u64)),
        |i| SwarmConfig {
            role: if i == 0 {
                Role::ConsumeOnly
            } else {
                Role::Peer
            },
            ..SwarmConfig::default()
        },
    );
    net.second_asks_the_first(4);
    assert_eq!(net.nodes[0].stats().uploaded_bytes, 0);
    assert_eq!(net.nodes[1].stats().origin_bytes, FRAGMENT as u64);
}

#[test]
fn upload_cap_paces_chunks() {
    // 1 Mbit/s cap: 250 kB take about 2 s, so the second viewer must fall back in time
    // rather than wait; the uploader never exceeds its cap.
    let cap = 125_000u64; // bytes per second
    let mut net = Net::new(
        2,
        |i| Box::new(RandomMesh::new(i as u64)),
        |_| SwarmConfig {
            upload_cap_bps: Some(cap),
            ..SwarmConfig::default()
        },
    );
    net.introduce_all();
    net.run_until(Instant::from_secs(2));
    net.request(0, 2, Instant::from_secs(2));
    net.request(1, 2, Instant::from_secs(4));
    net.run_until(Instant::from_secs(5));
    let up = net.nodes[0].stats().uploaded_bytes;
    // At most the burst plus one second at the cap in the first second after the request.
    assert!(
        up <= cap + 2 * 60 * 1024 + 60 * 1024,
        "uploaded {up} bytes in ~1 s at a {cap} B/s cap"
    );
    net.run_until(Instant::from_secs(10));
    assert_eq!(net.nodes[1].stats().deadline_misses, 0);
    assert_eq!(net.delivered[1].len(), 1);
}

#[test]
fn a_transfer_in_progress_is_cancelled_when_the_trusted_hash_names_other_bytes() {
    // A 1 Mbit/s uploader takes ~2 s for the fragment; the trusted hash comes 300 ms in and
    // contradicts the hash the liar declared in its first chunk: the rest is not waited for.
    let mut net = Net::new(
        2,
        |i| Box::new(RandomMesh::new(i as u64)),
        |_| SwarmConfig {
            upload_cap_bps: Some(125_000),
            ..SwarmConfig::default()
        },
    );
    net.trusted = false;
    net.faults[0] = Fault::Lie;
    net.introduce_all();
    net.run_until(Instant::from_secs(2));
    net.request(0, 2, Instant::from_secs(2));
    net.request(1, 2, Instant::from_secs(4));
    net.at(Instant::from_millis(4300), Ev::Hash { node: 1, seq: 2 });
    net.run_until(Instant::from_millis(4301));
    let s1 = net.nodes[1].stats();
    assert_eq!(s1.held_for_hash, 0, "the lie was still arriving");
    assert_eq!((s1.bad_fragments, s1.bad_peers), (1, 1));
    let liar = net.nodes[0].me().id;
    assert!(net.nodes[1].is_banned(&liar));
    net.run_until(Instant::from_secs(10));
    let s1 = net.nodes[1].stats();
    assert_eq!(s1.peer_bytes, 0);
    assert_eq!(net.delivered[1].len(), 1);
    assert!(net.delivered[1][0].1 == origin_bytes(2));
    assert_eq!(s1.deadline_misses, 0);
}

/// A policy that prefetches everything and always waits far into the future.
#[derive(Debug)]
struct AlwaysWait;

impl hive_core::overlay::OverlayPolicy for AlwaysWait {
    fn name(&self) -> &'static str {
        "always-wait"
    }
    fn plan_neighbours(
        &mut self,
        _now: Instant,
        _view: &hive_core::overlay::LocalView<'_>,
    ) -> hive_core::overlay::NeighbourPlan {
        hive_core::overlay::NeighbourPlan::default()
    }
    fn fetch_source(
        &mut self,
        now: Instant,
        _view: &hive_core::overlay::LocalView<'_>,
        _need: &hive_core::overlay::FetchContext,
    ) -> hive_core::overlay::FetchDecision {
        hive_core::overlay::FetchDecision::WaitUntil(now + Duration::from_secs(60))
    }
    fn should_prefetch(
        &mut self,
        _now: Instant,
        _view: &hive_core::overlay::LocalView<'_>,
        _f: &FragmentId,
    ) -> bool {
        true
    }
}

#[test]
fn a_prefetch_nobody_waits_for_is_dropped_at_its_deadline_not_polled_every_millisecond() {
    let start = Instant::from_secs(1);
    let content = ContentId::derive("test/live");
    let me = PeerInfo::new(
        PeerId::from_public_key(KeyKind::X25519, &[1; 32]),
        PeerAddr::Memory(1),
    );
    let cfg = SwarmConfig::default();
    let deadline = start + cfg.default_deadline;
    let mut s = Swarm::new(
        start,
        me,
        content,
        cfg,
        Box::new(AlwaysWait),
        Arc::new(LiveWindowCache::default()),
    );
    s.handle_fragments_published(start, vec![info(content, 1)]);
    // Run the engine's own timers for 10 s, counting wake-ups.
    let mut now = start;
    let mut wakeups = 0;
    while let Some(t) = s.poll_timeout() {
        if t > start + Duration::from_secs(10) {
            break;
        }
        now = t.max(now);
        s.handle_timeout(now);
        while s.poll_output().is_some() {}
        wakeups += 1;
        assert!(wakeups < 1_000, "woken {wakeups} times by {now}");
    }
    // The want is gone: nothing wakes the engine for it after its deadline.
    assert!(s.poll_timeout().is_some_and(|t| t > deadline));
    assert_eq!(s.stats().origin_bytes, 0);
}
