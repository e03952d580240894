//! One engine serving its neighbours, driven message by message: upload slots and the queue
//! behind them, and what its `Have` announcements carry and to whom.

use std::sync::Arc;

use bytes::Bytes;
use hive_core::cache::{CachedFragment, FragmentCache, LiveWindowCache};
use hive_core::time::{Duration, Instant};
use hive_core::wire::{Have, Message, RejectReason, Request};
use hive_core::{ContentId, FragmentId, KeyKind, PeerAddr, PeerId, PeerInfo, SeqSet, TrackId};
use hive_overlay::{NoPeer, Output, RandomMesh, Swarm, SwarmConfig};

const FRAGMENT: usize = 125_000; // 1 Mbit

fn peer(n: u8) -> PeerInfo {
    PeerInfo::new(
        PeerId::from_public_key(KeyKind::X25519, &[n; 32]),
        PeerAddr::Memory(u64::from(n)),
    )
}

fn content() -> ContentId {
    ContentId::derive("test/serving")
}

/// `info` connects to `s` and greets it (nothing else counts before its Hello).
fn connect(s: &mut Swarm, now: Instant, info: PeerInfo) {
    let hello = hive_core::wire::Hello {
        versions: hive_core::wire::SUPPORTED_VERSIONS.to_vec(),
        peer: info.id,
        content: content(),
        role: info.role,
        upload_kbps: info.upload_kbps,
        locality: info.locality.clone(),
        token: Bytes::new(),
    };
    let id = info.id;
    s.handle_peer_connected(now, info);
    s.handle_message(now, id, Message::Hello(hello));
}

fn frag(seq: u64) -> FragmentId {
    FragmentId::new(content(), TrackId(0), seq)
}

/// An engine (node 0) uploading at `upload_kbps` with one upload slot, holding fragments
/// `held`, connected to nodes 1..=`neighbours`.
fn server(upload_kbps: u32, queue: bool, held: &[u64], neighbours: u8) -> Swarm {
    with_policy(
        upload_kbps,
        queue,
        held,
        neighbours,
        Box::new(RandomMesh::new(1)),
    )
}

fn with_policy(
    upload_kbps: u32,
    queue: bool,
    held: &[u64],
    neighbours: u8,
    policy: Box<dyn hive_core::overlay::OverlayPolicy>,
) -> Swarm {
    let mut me = peer(0);
    me.upload_kbps = upload_kbps;
    let cache = Arc::new(LiveWindowCache::default());
    for &seq in held {
        let data = Bytes::from(vec![seq as u8; FRAGMENT]);
        cache.insert(
            Instant::from_secs(1),
            CachedFragment::new(
                frag(seq),
                data,
                Duration::from_secs(2 * seq),
                Duration::from_secs(2),
            ),
        );
    }
    let cfg = SwarmConfig {
        upload_slots: 1,
        queue_for_slots: queue,
        ..SwarmConfig::default()
    };
    let now = Instant::from_secs(1);
    let mut s = Swarm::new(now, me, content(), cfg, policy, cache);
    for n in 1..=neighbours {
        connect(&mut s, now, peer(n));
    }
    while s.poll_output().is_some() {}
    s
}

/// The engine's player asks for fragment `seq` (2 s of media), due in 2 s.
fn player_asks(s: &mut Swarm, now: Instant, seq: u64) {
    let info = hive_overlay::FragmentInfo {
        id: frag(seq),
        url: format!("http://origin/{seq}.ts"),
        media_time: Duration::from_secs(2 * seq),
        duration: Duration::from_secs(2),
        size_estimate: FRAGMENT as u64,
        hash: None,
    };
    s.handle_player_request(now, info, Some(now + Duration::from_secs(2)));
}

fn request(id: u64, seq: u64, deadline_ms: u32) -> Message {
    Message::Request(Request {
        request_id: id,
        fragment: frag(seq),
        deadline_ms,
        priority: 0,
        resume_offset: 0,
    })
}

/// What the engine answered, per neighbour: Data (request id, whole chunks) or Reject.
#[derive(Debug, PartialEq)]
enum Answer {
    Data(u64),
    Reject(u64, RejectReason),
}

fn answers(s: &mut Swarm) -> Vec<(PeerId, Answer)> {
    let mut out = Vec::new();
    while let Some(o) = s.poll_output() {
        if let Output::Send { to, message, .. } = o {
            match message {
                Message::Data(d) if d.offset == 0 => out.push((to, Answer::Data(d.request_id))),
                Message::Reject(r) => out.push((to, Answer::Reject(r.request_id, r.reason))),
                _ => {}
            }
        }
    }
    out
}

#[test]
fn a_request_waits_for_a_slot_when_the_uplink_can_make_its_deadline() {
    // 10 Mbit/s: a 1 Mbit fragment takes 0.1 s, so a second one is done 0.2 s after the first
    // starts — well inside a 2 s deadline.
    let mut s = server(10_000, true, &[5, 6], 2);
    let now = Instant::from_secs(2);
    s.handle_message(now, peer(1).id, request(1, 5, 2000));
    s.handle_message(now, peer(2).id, request(2, 6, 2000));
    assert_eq!(
        answers(&mut s),
        vec![(peer(1).id, Answer::Data(1))],
        "one slot: the second request waits, neither refused nor served"
    );
    // The first transfer leaves the transport: the slot frees, the queued request is served.
    s.handle_sent(
        now + Duration::from_millis(100),
        peer(1).id,
        FRAGMENT as u64,
    );
    assert_eq!(answers(&mut s), vec![(peer(2).id, Answer::Data(2))]);
}

#[test]
fn a_request_the_queue_would_make_late_is_refused_at_once() {
    // 1 Mbit/s: the transfer in progress and this one take 2 s together, more than 60% of a
    // 2 s deadline.
    let mut s = server(1000, true, &[5, 6], 2);
    let now = Instant::from_secs(2);
    s.handle_message(now, peer(1).id, request(1, 5, 2000));
    s.handle_message(now, peer(2).id, request(2, 6, 2000));
    assert_eq!(
        answers(&mut s),
        vec![
            (peer(1).id, Answer::Data(1)),
            (peer(2).id, Answer::Reject(2, RejectReason::Overloaded))
        ]
    );
}

#[test]
fn without_queueing_or_a_known_uplink_a_busy_agent_refuses() {
    for (kbps, queue) in [(10_000, false), (0, true)] {
        let mut s = server(kbps, queue, &[5, 6], 2);
        let now = Instant::from_secs(2);
        s.handle_message(now, peer(1).id, request(1, 5, 2000));
        s.handle_message(now, peer(2).id, request(2, 6, 2000));
        assert_eq!(
            answers(&mut s)[1],
            (peer(2).id, Answer::Reject(2, RejectReason::Overloaded)),
            "upload {kbps} kbit/s, queueing {queue}"
        );
    }
}

#[test]
fn a_queued_request_is_refused_when_its_deadline_passes_and_dropped_when_cancelled() {
    let mut s = server(10_000, true, &[5, 6, 7], 3);
    let now = Instant::from_secs(2);
    s.handle_message(now, peer(1).id, request(1, 5, 2000));
    s.handle_message(now, peer(2).id, request(2, 6, 2000));
    s.handle_message(now, peer(3).id, request(3, 7, 2000));
    assert_eq!(answers(&mut s).len(), 1);
    s.handle_message(
        now,
        peer(3).id,
        Message::Cancel(hive_core::wire::Cancel { request_id: 3 }),
    );
    // The first transfer never drains: the queued request expires at its deadline.
    let late = now + Duration::from_millis(2001);
    s.handle_timeout(late);
    assert_eq!(
        answers(&mut s),
        vec![(peer(2).id, Answer::Reject(2, RejectReason::TooLate))],
        "the cancelled one is gone without an answer"
    );
}

/// The `Have` messages an engine sent, per neighbour.
fn haves(s: &mut Swarm) -> Vec<(PeerId, Have)> {
    let mut out = Vec::new();
    while let Some(o) = s.poll_output() {
        if let Output::Send {
            to,
            message: Message::Have(h),
            ..
        } = o
        {
            out.push((to, h));
        }
    }
    out
}

#[test]
fn announcements_skip_neighbours_that_hold_them_and_carry_the_oldest_fragment_held() {
    // NoPeer: this agent fetches from the origin at once (it still serves and announces).
    let mut s = with_policy(10_000, true, &[3, 4], 2, Box::new(NoPeer));
    let now = Instant::from_secs(2);
    // This agent's player asks for fragment 5: the origin.
    player_asks(&mut s, now, 5);
    let asked =
        std::iter::from_fn(|| s.poll_output()).any(|o| matches!(o, Output::FetchOrigin { .. }));
    assert!(asked, "NoPeer: the origin");
    // Meanwhile neighbour 1 announces fragment 5; neighbour 2 announces nothing.
    let mut theirs = Have::add();
    let mut seqs = SeqSet::new();
    seqs.insert(5);
    theirs.insert(TrackId(0), 0, seqs);
    s.handle_message(now, peer(1).id, Message::Have(theirs));
    s.handle_origin_result(now, frag(5), Ok(Bytes::from(vec![5u8; FRAGMENT])));
    let _ = haves(&mut s);
    s.handle_timeout(now + Duration::from_secs(1));
    let sent = haves(&mut s);
    assert_eq!(sent.len(), 1, "only the neighbour without it: {sent:?}");
    let (to, h) = &sent[0];
    assert_eq!(*to, peer(2).id);
    let t = &h.tracks[&TrackId(0)];
    assert!(t.seqs.contains(5));
    assert_eq!(t.floor, 3, "the oldest fragment held");
}

#[test]
fn a_neighbour_announcing_scattered_fragments_keeps_a_bounded_view_of_its_newest() {
    let mut s = server(10_000, true, &[], 1);
    let now = Instant::from_secs(2);
    // Every other fragment, in three announcements of 1000 ranges each: 3000 ranges.
    for part in 0..3u64 {
        let mut seqs = SeqSet::new();
        for i in 0..1000 {
            seqs.insert(2 * (part * 1000 + i));
        }
        let mut have = Have::add();
        have.insert(TrackId(0), 0, seqs);
        s.handle_message(now, peer(1).id, Message::Have(have));
    }
    let view = &s.neighbours()[0];
    let set = view
        .have
        .get(&content(), TrackId(0))
        .expect("the neighbour's announcements are kept");
    assert!(
        set.range_count() <= 1024,
        "{} ranges kept",
        set.range_count()
    );
    assert!(set.range_count() >= 1000, "the newest are kept");
    assert_eq!(set.last(), Some(5998), "the newest fragment is kept");
    assert!(view.has(&frag(5000)) && !view.has(&frag(0)) && !view.has(&frag(5001)));
}

#[test]
fn a_freed_slot_goes_to_a_waiting_supernode_before_ordinary_agents_that_asked_first() {
    let mut s = server(10_000, true, &[5, 6, 7], 2);
    let now = Instant::from_secs(2);
    let mut supernode = peer(3);
    supernode.role = hive_core::Role::Supernode;
    // The tracker lists it as a supernode: its word is believed.
    s.handle_candidates(now, vec![supernode.clone()]);
    connect(&mut s, now, supernode.clone());
    while s.poll_output().is_some() {}
    s.handle_message(now, peer(1).id, request(1, 5, 2000));
    s.handle_message(now, peer(2).id, request(2, 6, 2000));
    s.handle_message(now, supernode.id, request(3, 7, 2000));
    assert_eq!(answers(&mut s), vec![(peer(1).id, Answer::Data(1))]);
    // The slot frees: the supernode, which passes the fragment on to its site, goes first.
    let t = now + Duration::from_millis(100);
    s.handle_sent(t, peer(1).id, FRAGMENT as u64);
    assert_eq!(answers(&mut s), vec![(supernode.id, Answer::Data(3))]);
    s.handle_sent(t, supernode.id, FRAGMENT as u64);
    assert_eq!(answers(&mut s), vec![(peer(2).id, Answer::Data(2))]);
}

#[test]
fn a_supernode_role_the_tracker_did_not_list_is_not_believed() {
    let mut s = server(10_000, true, &[5, 6, 7], 2);
    let now = Instant::from_secs(2);
    // It says so in its Hello, and a neighbour's peer exchange says so too.
    let mut liar = peer(3);
    liar.role = hive_core::Role::Supernode;
    s.handle_message(
        now,
        peer(1).id,
        Message::PeerExchange(hive_core::wire::PeerExchange {
            peers: vec![liar.clone()],
        }),
    );
    connect(&mut s, now, liar.clone());
    while s.poll_output().is_some() {}
    assert_eq!(
        s.believed_role(&liar.id, hive_core::Role::Supernode),
        hive_core::Role::Peer
    );
    s.handle_message(now, peer(1).id, request(1, 5, 2000));
    s.handle_message(now, peer(2).id, request(2, 6, 2000));
    s.handle_message(now, liar.id, request(3, 7, 2000));
    assert_eq!(answers(&mut s), vec![(peer(1).id, Answer::Data(1))]);
    // No priority: first come, first served.
    let t = now + Duration::from_millis(100);
    s.handle_sent(t, peer(1).id, FRAGMENT as u64);
    assert_eq!(answers(&mut s), vec![(peer(2).id, Answer::Data(2))]);
    s.handle_sent(t, peer(2).id, FRAGMENT as u64);
    assert_eq!(answers(&mut s), vec![(liar.id, Answer::Data(3))]);
    // Once the tracker lists it as one, it is one; a later listing as a peer takes it back.
    s.handle_candidates(t, vec![liar.clone()]);
    assert_eq!(
        s.believed_role(&liar.id, hive_core::Role::Supernode),
        hive_core::Role::Supernode
    );
    let mut demoted = liar.clone();
    demoted.role = hive_core::Role::Peer;
    s.handle_candidates(t, vec![demoted]);
    assert_eq!(
        s.believed_role(&liar.id, hive_core::Role::Supernode),
        hive_core::Role::Peer
    );
}

/// A supernode (it fetches what a neighbour asks for and does not hold) that was told of
/// fragments 0..100 of 2 s each.
fn supernode_told_of_100_fragments(cfg: SwarmConfig) -> Swarm {
    // One site (the policy keeps only neighbours of its own site).
    let site = |mut p: PeerInfo| {
        p.locality.site = Some("office".into());
        p
    };
    let mut me = site(peer(0));
    me.role = hive_core::Role::Supernode;
    let cfg = SwarmConfig {
        role: hive_core::Role::Supernode,
        ..cfg
    };
    let now = Instant::from_secs(1);
    let cache = Arc::new(LiveWindowCache::default());
    let policy = Box::new(hive_overlay::PrivateHierarchy::new(None));
    let mut s = Swarm::new(now, me, content(), cfg, policy, cache);
    connect(&mut s, now, site(peer(1)));
    let listed = (0..100)
        .map(|seq| hive_overlay::FragmentInfo {
            id: frag(seq),
            url: format!("http://origin/{seq}.ts"),
            media_time: Duration::from_secs(2 * seq),
            duration: Duration::from_secs(2),
            size_estimate: FRAGMENT as u64,
            hash: None,
        })
        .collect();
    s.handle_fragments_published(now, listed);
    while s.poll_output().is_some() {}
    s
}

/// Whether the engine fetches `seq` from the origin for a neighbour's request (at once or
/// within a second: the policy may first wait for the site's agents), or refuses it.
fn pulled_through(s: &mut Swarm, now: Instant, request_id: u64, seq: u64) -> bool {
    s.handle_message(now, peer(1).id, request(request_id, seq, 2000));
    let mut fetched = false;
    let mut outputs = Vec::new();
    while let Some(o) = s.poll_output() {
        outputs.push(o);
    }
    s.handle_timeout(now + Duration::from_secs(1));
    while let Some(o) = s.poll_output() {
        outputs.push(o);
    }
    for o in outputs {
        match o {
            Output::FetchOrigin { fragment, .. } if fragment.id == frag(seq) => fetched = true,
            Output::Send {
                message: Message::Reject(r),
                ..
            } if r.request_id == request_id => {
                assert_eq!(r.reason, RejectReason::NotFound);
            }
            _ => {}
        }
    }
    fetched
}

#[test]
fn a_live_swarm_forgets_listed_fragments_two_minutes_behind_the_newest_and_on_demand_keeps_all() {
    // The newest fragment ends at 200 s: after the next expiry tick, fragments ending before
    // 80 s are forgotten (a neighbour's request for one is refused), newer ones are not.
    let mut live = supernode_told_of_100_fragments(SwarmConfig::default());
    let later = Instant::from_secs(3);
    live.handle_timeout(later);
    assert!(!pulled_through(&mut live, later, 1, 10), "forgotten");
    assert!(pulled_through(&mut live, later, 2, 90), "still listed");
    let mut vod = supernode_told_of_100_fragments(SwarmConfig {
        known_window: None,
        ..SwarmConfig::default()
    });
    vod.handle_timeout(later);
    assert!(
        pulled_through(&mut vod, later, 1, 10),
        "an on-demand title is kept whole"
    );
}

/// A request for the next fragment of a track, which this agent's manifest does not list yet
/// (its neighbour refreshed the manifest a little earlier), waits to be listed and is then
/// pulled through; one for a fragment that is not listed in time, or far ahead, is refused.
#[test]
fn a_request_for_the_next_fragment_waits_for_the_manifest_to_list_it() {
    let t = Instant::from_secs(3);
    let mut s = supernode_told_of_100_fragments(SwarmConfig::default());
    // 100 is the next one: not refused at once, not fetched yet (its URL is not known).
    s.handle_message(t, peer(1).id, request(1, 100, 4000));
    // 103 is beyond what a refresh can bring: refused at once.
    s.handle_message(t, peer(1).id, request(2, 103, 4000));
    let mut refused = Vec::new();
    let mut fetched = Vec::new();
    let drain = |s: &mut Swarm, refused: &mut Vec<u64>, fetched: &mut Vec<u64>| {
        while let Some(o) = s.poll_output() {
            match o {
                Output::Send {
                    message: Message::Reject(r),
                    ..
                } => {
                    assert_eq!(r.reason, RejectReason::NotFound);
                    refused.push(r.request_id);
                }
                Output::FetchOrigin { fragment, .. } => fetched.push(fragment.id.sequence),
                _ => {}
            }
        }
    };
    drain(&mut s, &mut refused, &mut fetched);
    assert_eq!(
        (refused.as_slice(), fetched.as_slice()),
        (&[2][..], &[][..])
    );
    // The manifest lists 100 half a second later: the waiting request is pulled through.
    let listed = hive_overlay::FragmentInfo {
        id: frag(100),
        url: "http://origin/100.ts".into(),
        media_time: Duration::from_secs(200),
        duration: Duration::from_secs(2),
        size_estimate: FRAGMENT as u64,
        hash: None,
    };
    let t1 = t + Duration::from_millis(500);
    s.handle_fragments_published(t1, vec![listed]);
    s.handle_timeout(t1 + Duration::from_secs(1));
    drain(&mut s, &mut refused, &mut fetched);
    assert_eq!(fetched, [100], "pulled through once listed");
    // 101 is asked for and never listed: refused when the wait ends, not before.
    let t2 = t1 + Duration::from_secs(2);
    s.handle_message(t2, peer(1).id, request(3, 101, 4000));
    s.handle_timeout(t2 + Duration::from_millis(1000));
    drain(&mut s, &mut refused, &mut fetched);
    assert_eq!(refused, [2], "still waiting after 1 s");
    s.handle_timeout(t2 + Duration::from_millis(1600));
    drain(&mut s, &mut refused, &mut fetched);
    assert_eq!(refused, [2, 3], "refused once the wait is over");
}

#[test]
fn among_waiting_agents_of_one_kind_the_earliest_deadline_is_served_first() {
    let mut s = server(10_000, true, &[5, 6, 7], 3);
    let now = Instant::from_secs(2);
    s.handle_message(now, peer(1).id, request(1, 5, 2000));
    // Peer 2 asked first but can wait 4 s; peer 3's player needs its fragment within 2.5 s.
    s.handle_message(now, peer(2).id, request(2, 6, 4000));
    s.handle_message(now, peer(3).id, request(3, 7, 2500));
    assert_eq!(answers(&mut s), vec![(peer(1).id, Answer::Data(1))]);
    let t = now + Duration::from_millis(100);
    s.handle_sent(t, peer(1).id, FRAGMENT as u64);
    assert_eq!(answers(&mut s), vec![(peer(3).id, Answer::Data(3))]);
    s.handle_sent(t, peer(3).id, FRAGMENT as u64);
    assert_eq!(answers(&mut s), vec![(peer(2).id, Answer::Data(2))]);
}

#[test]
fn a_promoted_agent_greets_its_neighbours_again_with_its_new_role() {
    let mut s = server(10_000, true, &[], 2);
    while s.poll_output().is_some() {}
    let hellos = |s: &mut Swarm| {
        let mut to = Vec::new();
        while let Some(o) = s.poll_output() {
            if let Output::Send {
                to: peer,
                message: Message::Hello(h),
                ..
            } = o
            {
                to.push((peer, h.role));
            }
        }
        to.sort_by_key(|(p, _)| *p);
        to
    };
    let now = Instant::from_secs(5);
    s.set_role(now, hive_core::Role::Supernode);
    assert_eq!(s.me().role, hive_core::Role::Supernode);
    let mut want = vec![
        (peer(1).id, hive_core::Role::Supernode),
        (peer(2).id, hive_core::Role::Supernode),
    ];
    want.sort_by_key(|(p, _)| *p);
    assert_eq!(
        hellos(&mut s),
        want,
        "every neighbour hears of the new role"
    );
    s.set_role(now, hive_core::Role::Supernode);
    assert!(hellos(&mut s).is_empty(), "the same role again: nothing");
    // A consume-only agent never becomes an uploader this way, nor the reverse.
    s.set_role(now, hive_core::Role::ConsumeOnly);
    assert_eq!(s.me().role, hive_core::Role::Supernode);
    assert!(hellos(&mut s).is_empty());
}

#[test]
fn a_renewed_token_is_presented_to_every_neighbour_in_a_new_hello() {
    let mut s = server(10_000, true, &[], 2);
    while s.poll_output().is_some() {}
    let hellos = |s: &mut Swarm| {
        let mut to = Vec::new();
        while let Some(o) = s.poll_output() {
            if let Output::Send {
                to: peer,
                message: Message::Hello(h),
                ..
            } = o
            {
                to.push((peer, h.token));
            }
        }
        to.sort_by_key(|(p, _)| *p);
        to
    };
    let renewed = Bytes::from_static(b"renewed token");
    s.handle_input(
        Instant::from_secs(5),
        hive_overlay::Input::Token(renewed.clone()),
    );
    let mut want = vec![(peer(1).id, renewed.clone()), (peer(2).id, renewed.clone())];
    want.sort_by_key(|(p, _)| *p);
    assert_eq!(
        hellos(&mut s),
        want,
        "every neighbour sees the renewed token"
    );
    s.set_token(renewed);
    assert!(hellos(&mut s).is_empty(), "the same token again: nothing");
}

/// A promoted agent takes the supernode profile (the simulator's supernodes), and a demoted
/// one the viewer's again, its slots sized from its uplink for the bitrate already listed.
#[test]
fn a_role_change_applies_the_roles_profile() {
    use hive_core::Role;
    use hive_overlay::RoleProfile;
    let now = Instant::from_secs(1);
    let mut me = peer(0);
    me.upload_kbps = 3_000;
    let mut s = Swarm::new(
        now,
        me,
        content(),
        SwarmConfig::for_role(Role::Peer),
        Box::new(RandomMesh::new(1)),
        Arc::new(LiveWindowCache::default()),
    );
    // 700 kbit/s: a 3 Mbit/s uplink carries one upload at eight times the bitrate.
    s.handle_fragments_published(
        now,
        vec![hive_overlay::FragmentInfo {
            id: FragmentId::new(content(), TrackId(1), 1),
            url: "http://origin/1.ts".into(),
            media_time: Duration::from_secs(2),
            duration: Duration::from_secs(2),
            size_estimate: 175_000,
            hash: None,
        }],
    );
    assert_eq!(s.upload_slots(), 1);
    assert_eq!(
        s.config().max_neighbours,
        RoleProfile::VIEWER.max_neighbours
    );
    s.set_role(now, Role::Supernode);
    let sn = RoleProfile::SUPERNODE;
    assert_eq!(s.config().role, Role::Supernode);
    assert_eq!(
        s.upload_slots(),
        sn.upload_slots,
        "not sized from the uplink"
    );
    assert_eq!(s.config().max_neighbours, sn.max_neighbours);
    assert!(!s.config().queue_for_slots);
    s.set_role(now, Role::Peer);
    assert_eq!(s.upload_slots(), 1);
    assert_eq!(
        s.config().max_neighbours,
        RoleProfile::VIEWER.max_neighbours
    );
    assert!(s.config().queue_for_slots);
}

#[test]
fn upload_slots_follow_the_uplink_and_the_highest_bitrate_listed_when_asked() {
    let listed = |seq: u64, bytes: u64| hive_overlay::FragmentInfo {
        id: FragmentId::new(content(), TrackId(seq as u16 % 3), seq),
        url: format!("http://origin/{seq}.ts"),
        media_time: Duration::from_secs(2 * seq),
        duration: Duration::from_secs(2),
        size_estimate: bytes,
        hash: None,
    };
    let engine = |kbps: u32, sized: bool| {
        let mut me = peer(0);
        me.upload_kbps = kbps;
        let cfg = SwarmConfig {
            slots_from_uplink: sized,
            ..SwarmConfig::default()
        };
        let cache = Arc::new(LiveWindowCache::default());
        Swarm::new(
            Instant::from_secs(1),
            me,
            content(),
            cfg,
            Box::new(RandomMesh::new(1)),
            cache,
        )
    };
    let now = Instant::from_secs(1);
    // 3 Mbit/s up; 350 kbit/s then 700 kbit/s fragments (87.5 and 175 kB per 2 s).
    let mut s = engine(3_000, true);
    assert_eq!(
        s.upload_slots(),
        8,
        "nothing listed yet: the configured maximum"
    );
    s.handle_fragments_published(now, vec![listed(0, 87_500)]);
    assert_eq!(s.upload_slots(), 1, "3 Mbit/s / (8 x 350 kbit/s)");
    s.handle_fragments_published(now, vec![listed(1, 175_000)]);
    assert_eq!(s.upload_slots(), 1, "never below one");
    let mut fast = engine(20_000, true);
    fast.handle_player_request(now, listed(2, 175_000), None);
    assert_eq!(fast.upload_slots(), 3, "20 Mbit/s / (8 x 700 kbit/s)");
    fast.handle_fragments_published(now, vec![listed(3, 87_500)]);
    assert_eq!(fast.upload_slots(), 3, "a lower bitrate changes nothing");
    let mut huge = engine(1_000_000, true);
    huge.handle_fragments_published(now, vec![listed(0, 175_000)]);
    assert_eq!(huge.upload_slots(), 8, "at most the configured number");
    let mut fixed = engine(3_000, false);
    fixed.handle_fragments_published(now, vec![listed(1, 175_000)]);
    assert_eq!(fixed.upload_slots(), 8, "off: as configured");
    // No slots configured: none, sized or not.
    let mut me = peer(0);
    me.upload_kbps = 20_000;
    let cfg = SwarmConfig {
        upload_slots: 0,
        slots_from_uplink: true,
        ..SwarmConfig::default()
    };
    let cache = Arc::new(LiveWindowCache::default());
    let mut none = Swarm::new(now, me, content(), cfg, Box::new(RandomMesh::new(1)), cache);
    assert_eq!(none.upload_slots(), 0);
    none.handle_fragments_published(now, vec![listed(0, 87_500)]);
    assert_eq!(none.upload_slots(), 0, "zero stays zero");
}

/// The hash an agent serves a fragment from the origin with: its own hash of the bytes, or the
/// one the driver gave with them (`handle_origin_bytes`), which the engine does not recompute.
#[test]
fn origin_bytes_are_served_with_their_hash_computed_or_given() {
    for given in [false, true] {
        let mut s = with_policy(10_000, true, &[], 1, Box::new(NoPeer));
        let now = Instant::from_secs(2);
        player_asks(&mut s, now, 5);
        while s.poll_output().is_some() {}
        let bytes = Bytes::from(vec![5u8; FRAGMENT]);
        // A stand-in the engine could not have computed: proof that it was taken as given.
        let label = hive_core::ContentHash::of(b"given by the driver");
        if given {
            s.handle_origin_bytes(now, frag(5), bytes.clone(), label);
        } else {
            s.handle_origin_result(now, frag(5), Ok(bytes.clone()));
        }
        let delivered = std::iter::from_fn(|| s.poll_output())
            .any(|o| matches!(o, Output::Deliver { fragment, data } if fragment == frag(5) && data == bytes));
        assert!(delivered, "the player gets the bytes");
        s.handle_message(now, peer(1).id, request(1, 5, 2000));
        let hash = std::iter::from_fn(|| s.poll_output()).find_map(|o| match o {
            Output::Send {
                message: Message::Data(d),
                ..
            } => Some(d.hash),
            _ => None,
        });
        let want = if given {
            label
        } else {
            hive_core::ContentHash::of(&bytes)
        };
        assert_eq!(hash, Some(want), "given: {given}");
    }
}

#[test]
fn nothing_but_a_hello_counts_before_the_neighbours_hello() {
    let mut s = server(10_000, true, &[5], 0);
    let now = Instant::from_secs(2);
    let stranger = peer(9);
    s.handle_peer_connected(now, stranger.clone());
    while s.poll_output().is_some() {}
    // A request and an exchange of peers before its Hello: neither is acted upon.
    s.handle_message(now, stranger.id, request(1, 5, 2_000));
    s.handle_message(
        now,
        stranger.id,
        Message::PeerExchange(hive_core::wire::PeerExchange {
            peers: vec![peer(10)],
        }),
    );
    assert!(s.poll_output().is_none(), "served before Hello");
    assert!(s.candidates().is_empty(), "took peers before Hello");
    // After it, the same request is served.
    connect(&mut s, now, stranger.clone());
    s.handle_message(now, stranger.id, request(2, 5, 2_000));
    let mut data = 0;
    while let Some(o) = s.poll_output() {
        if let Output::Send {
            message: Message::Data(_),
            ..
        } = o
        {
            data += 1;
        }
    }
    assert!(data > 0, "not served after Hello");
}

#[test]
fn data_never_asked_for_is_ignored() {
    let mut s = server(10_000, true, &[], 1);
    let now = Instant::from_secs(2);
    let from = peer(1).id;
    let payload = Bytes::from(vec![7u8; 1000]);
    s.handle_message(
        now,
        from,
        Message::Data(hive_core::wire::Data {
            request_id: 999,
            fragment: frag(3),
            offset: 0,
            total_len: 1000,
            hash: hive_core::ContentHash::of(&payload),
            payload,
        }),
    );
    let outputs: Vec<Output> = std::iter::from_fn(|| s.poll_output()).collect();
    assert!(
        outputs.iter().all(|o| !matches!(o, Output::Deliver { .. })),
        "{outputs:?}"
    );
    assert_eq!(s.stats().peer_bytes, 0);
    // Nothing was cached or announced: a request for it finds nothing to serve.
    s.handle_message(now, from, request(1, 3, 2_000));
    let answers: Vec<Output> = std::iter::from_fn(|| s.poll_output()).collect();
    assert!(
        answers.iter().all(|o| !matches!(
            o,
            Output::Send {
                message: Message::Data(_),
                ..
            }
        )),
        "{answers:?}"
    );
}

#[test]
fn cached_bytes_a_later_trusted_hash_does_not_name_are_not_served() {
    // Fragment 4 was cached (from the origin) before its trusted hash was known; the list then
    // names other bytes for it: the copy goes, and a neighbour's request finds nothing.
    let mut s = server(10_000, true, &[4], 1);
    let now = Instant::from_secs(2);
    s.handle_fragments_published(
        now,
        vec![hive_overlay::FragmentInfo {
            id: frag(4),
            url: "http://origin/4.ts".into(),
            media_time: Duration::from_secs(8),
            duration: Duration::from_secs(2),
            size_estimate: FRAGMENT as u64,
            hash: None,
        }],
    );
    while s.poll_output().is_some() {}
    s.handle_trusted_hashes(now, [(frag(4), hive_core::ContentHash::of(b"other bytes"))]);
    assert_eq!(s.stats().origin_hash_mismatches, 1);
    s.handle_message(now, peer(1).id, request(1, 4, 2_000));
    let answers: Vec<Output> = std::iter::from_fn(|| s.poll_output()).collect();
    assert!(
        answers.iter().all(|o| !matches!(
            o,
            Output::Send {
                message: Message::Data(_),
                ..
            }
        )),
        "{answers:?}"
    );
}

/// Priority follows urgency: the connection to a peer whose player needs the fragment soon
/// is TCP-fair (1), one that only prefetches is a scavenger (0), an upload with a far deadline
/// is a scavenger while it keeps pace, and turns urgent, on the engine's own timer, when its
/// pace would not make the deadline or when the deadline comes within `urgent_within`.
#[test]
fn the_congestion_priority_of_an_upload_follows_its_urgency() {
    let priorities = |s: &mut Swarm| -> Vec<(PeerId, f64)> {
        let mut out = Vec::new();
        while let Some(o) = s.poll_output() {
            if let Output::CcPriority { peer, priority } = o {
                out.push((peer, priority));
            }
        }
        out
    };
    let now = Instant::from_secs(1);
    let mut s = with_policy(20_000, true, &[1, 2, 3], 3, Box::new(RandomMesh::new(1)));
    // A player's request due in 1 s: urgent at once.
    s.handle_message(now, peer(1).id, request(1, 1, 1_000));
    assert_eq!(priorities(&mut s), vec![(peer(1).id, 1.0)]);
    // A prefetch (urgency 4): a scavenger.
    let prefetch = Message::Request(Request {
        priority: 4,
        ..match request(2, 2, 10_000) {
            Message::Request(r) => r,
            _ => unreachable!(),
        }
    });
    // (On an engine of its own: the first holds its one upload slot until its bytes leave.)
    let mut s = with_policy(20_000, true, &[1, 2, 3], 3, Box::new(RandomMesh::new(1)));
    s.handle_message(now, peer(2).id, prefetch);
    assert_eq!(priorities(&mut s), vec![(peer(2).id, 0.0)]);

    // A player's request due in 10 s on a connection that takes one chunk and no more: a
    // scavenger now, urgent once its pace (one chunk in seconds) cannot make the deadline.
    // An engine holding fragment `seq`, with `cfg`, connected to `to`.
    let holding = |seq: u64, cfg: SwarmConfig, to: PeerInfo| {
        let cache = Arc::new(LiveWindowCache::default());
        cache.insert(
            now,
            CachedFragment::new(
                frag(seq),
                Bytes::from(vec![seq as u8; FRAGMENT]),
                Duration::from_secs(2 * seq),
                Duration::from_secs(2),
            ),
        );
        let mut me = peer(0);
        me.upload_kbps = 20_000;
        let mut s = Swarm::new(now, me, content(), cfg, Box::new(RandomMesh::new(1)), cache);
        connect(&mut s, now, to);
        s
    };
    let cfg = SwarmConfig {
        send_window: 1,
        chunk_size: 10_000,
        ..SwarmConfig::default()
    };
    let mut s = holding(5, cfg.clone(), peer(3));
    while s.poll_output().is_some() {}
    s.handle_message(now, peer(3).id, request(9, 5, 10_000));
    assert_eq!(priorities(&mut s), vec![(peer(3).id, 0.0)]);
    let wake = s.poll_timeout().expect("a timer");
    assert!(wake <= now + Duration::from_secs(7), "{wake} {now}");
    s.handle_timeout(now + Duration::from_secs(7));
    assert_eq!(priorities(&mut s), vec![(peer(3).id, 1.0)]);
    assert_eq!(s.stats().priority_changes, 2);

    // The same upload on a connection that keeps pace (each chunk taken 50 ms after the last:
    // 125 kB in 0.6 s, against 10 s): a scavenger to its last byte (its pace judged at each
    // chunk taken, and on the engine's timer).
    let mut s = holding(5, cfg.clone(), peer(3));
    while s.poll_output().is_some() {}
    s.handle_message(now, peer(3).id, request(9, 5, 10_000));
    assert_eq!(priorities(&mut s), vec![(peer(3).id, 0.0)]);
    let mut t = now;
    let mut judged = 0;
    for _ in 0..FRAGMENT / 10_000 + 1 {
        let step = t + Duration::from_millis(50);
        while let Some(w) = s.poll_timeout().filter(|&w| w <= step) {
            s.handle_timeout(w);
            judged += 1;
        }
        t = step;
        s.handle_sent(t, peer(3).id, 10_000);
    }
    assert!(priorities(&mut s).is_empty(), "stayed a scavenger");
    assert!(judged >= 1, "the engine's timer judged its pace too");
    // Slowed to a crawl half-way through (the connection takes nothing more): at risk, so
    // urgent within a pace check, long before the last second.
    let mut s = holding(5, cfg, peer(3));
    while s.poll_output().is_some() {}
    s.handle_message(now, peer(3).id, request(9, 5, 10_000));
    let mut t = now;
    for _ in 0..6 {
        t += Duration::from_millis(50);
        s.handle_sent(t, peer(3).id, 10_000);
    }
    assert_eq!(priorities(&mut s), vec![(peer(3).id, 0.0)]);
    // 70 kB handed over in 0.3 s (six chunks taken and a seventh out), 55 kB left: at that
    // pace 0.24 s, far inside the time left. Then nothing for seconds: the pace falls until what
    // is left no longer fits.
    let mut urgent_at = None;
    while urgent_at.is_none() {
        let w = s.poll_timeout().expect("judged again");
        assert!(w < now + Duration::from_secs(9), "urgent before the floor");
        s.handle_timeout(w);
        if priorities(&mut s) == vec![(peer(3).id, 1.0)] {
            urgent_at = Some(w);
        }
    }
    let at = urgent_at.map(|w| w.saturating_duration_since(now).as_secs_f64());
    // 70 kB over d seconds, 55 kB left: at risk once 55/(70/d) > 0.75 (10 - d), d ≈ 4.88 s
    // (judged every 0.1 s).
    assert!(
        at.is_some_and(|d| (4.85..5.0).contains(&d)),
        "urgent at {at:?} s"
    );
    // Off: no priorities asked.
    let cfg = SwarmConfig {
        priority_follows_urgency: false,
        ..SwarmConfig::default()
    };
    let mut off = holding(1, cfg, peer(1));
    off.handle_message(now, peer(1).id, request(1, 1, 1_000));
    assert!(answers(&mut off).contains(&(peer(1).id, Answer::Data(1))));
    off.handle_timeout(now + Duration::from_secs(1));
    assert!(priorities(&mut off).is_empty());
    assert_eq!(off.stats().priority_changes, 0);
}

/// Data bytes `s` sends from `from` until `until`, driven on its own timer (every 10 ms at
/// most), and when the last of them left.
fn drive_uploads(s: &mut Swarm, from: Instant, until: Instant) -> Vec<(Instant, usize)> {
    let mut sent = Vec::new();
    let mut now = from;
    while now <= until {
        s.handle_timeout(now);
        while let Some(o) = s.poll_output() {
            if let Output::Send {
                message: Message::Data(d),
                ..
            } = o
            {
                sent.push((now, d.payload.len()));
            }
        }
        let next = s
            .poll_timeout()
            .unwrap_or(until)
            .min(now + Duration::from_millis(10));
        now = next.max(now + Duration::from_millis(1));
    }
    sent
}

#[test]
fn a_viewer_paces_its_uploads_below_its_uplink_and_a_supernode_does_not() {
    // A viewer advertising 1 Mbit/s uploads at 90% of it (112 500 B/s): a 125 000-byte
    // fragment takes about 1.1 s; a supernode, unpaced, sends it at once.
    for (role, paced) in [
        (hive_core::Role::Peer, true),
        (hive_core::Role::Supernode, false),
    ] {
        let mut me = peer(0);
        me.upload_kbps = 1000;
        me.role = role;
        let cache = Arc::new(LiveWindowCache::default());
        let t0 = Instant::from_secs(1);
        cache.insert(
            t0,
            CachedFragment::new(
                frag(1),
                Bytes::from(vec![1u8; FRAGMENT]),
                Duration::from_secs(2),
                Duration::from_secs(2),
            ),
        );
        let cfg = SwarmConfig::for_role(role);
        assert_eq!(cfg.upload_pacing_permille.is_some(), paced);
        let mut s = Swarm::new(t0, me, content(), cfg, Box::new(RandomMesh::new(1)), cache);
        connect(&mut s, t0, peer(1));
        while s.poll_output().is_some() {}
        // Long before its deadline: nothing hurries it.
        s.handle_message(t0, peer(1).id, request(1, 1, 10_000));
        let sent = drive_uploads(&mut s, t0, t0 + Duration::from_secs(3));
        let total: usize = sent.iter().map(|(_, n)| n).sum();
        assert_eq!(total, FRAGMENT, "{role:?}: the whole fragment left");
        let last = sent.last().map_or(t0, |(t, _)| *t) - t0;
        let by_half: usize = sent
            .iter()
            .filter(|(t, _)| *t - t0 <= Duration::from_millis(500))
            .map(|(_, n)| n)
            .sum();
        if paced {
            // The burst (two chunks) plus half a second at the pace, at most.
            let chunk = SwarmConfig::default().chunk_size;
            assert!(
                by_half <= 2 * chunk + 56_250 + chunk,
                "{by_half} bytes by 0.5 s"
            );
            assert!(last >= Duration::from_millis(800), "done after {last:?}");
            assert!(last <= Duration::from_millis(1300), "done after {last:?}");
        } else {
            assert!(
                last <= Duration::from_millis(20),
                "unpaced: done after {last:?}"
            );
        }
    }
}
