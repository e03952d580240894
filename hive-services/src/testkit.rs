//! Test kits: a throw-away `redis-server`, and the conformance suite every
//! [`TrackerStore`] must pass (run against [`MemoryStore`](crate::tracker::MemoryStore) and
//! [`RedisStore`](crate::tracker::RedisStore) by this crate's tests; run it against yours).

use std::collections::HashSet;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hive_core::{ContentId, Locality, PeerAddr, PeerId, PeerInfo, Role};

use std::sync::Arc;

use crate::tracker::{StoredPeer, TrackerStore};

/// A `redis-server` on a free loopback port, without persistence, killed on drop.
#[derive(Debug)]
pub struct RedisServer {
    child: Child,
    port: u16,
}

impl RedisServer {
    /// Starts one; `Ok(None)` when `redis-server` is not installed (callers skip with a message).
    pub fn start() -> io::Result<Option<Self>> {
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
            .local_addr()?
            .port();
        let spawned = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .arg("--dir")
            .arg(std::env::temp_dir())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let child = match spawned {
            Ok(c) => c,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let mut server = RedisServer { child, port };
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            if let Some(status) = server.child.try_wait()? {
                return Err(io::Error::other(format!("redis-server exited: {status}")));
            }
            if Instant::now() > deadline {
                return Err(io::Error::other("redis-server did not listen within 10 s"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(Some(server))
    }

    /// Its URL, `redis://127.0.0.1:<port>/`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn peer(n: u32, site: Option<&str>, asn: Option<u32>) -> Arc<StoredPeer> {
    let mut id = [0u8; 32];
    id[..4].copy_from_slice(&n.to_be_bytes());
    id[31] = 0xaa;
    let mut p = PeerInfo::new(
        PeerId::from_bytes(id),
        PeerAddr::Socket(([10, 0, 0, 1], 4000).into()),
    );
    p.locality = Locality {
        asn,
        site: site.map(str::to_owned),
        country: None,
    };
    p.upload_kbps = n;
    Arc::new(StoredPeer::new(p))
}

fn ids(v: &[Arc<StoredPeer>]) -> HashSet<PeerId> {
    v.iter().map(|p| p.id).collect()
}

fn assert_distinct(v: &[Arc<StoredPeer>]) {
    assert_eq!(ids(v).len(), v.len(), "a sample holds a peer twice");
}

/// Runs the [`TrackerStore`] contract against `store`, which must be empty. Panics on the first
/// violation, with a message that says which.
pub async fn store_conformance(store: &dyn TrackerStore) {
    let t0 = 1_700_000_000_000u64;
    let ttl = 60_000;
    let c = ContentId::derive("conformance/one");

    // An upserted peer is sampled, with what was stored.
    let p = peer(1, Some("paris"), Some(64500));
    store.upsert(c, &p, t0, t0 + ttl).await.expect("upsert");
    let s = store
        .sample(c, &Locality::default(), 10, t0 + 1)
        .await
        .expect("sample");
    assert_eq!(s.len(), 1, "one peer stored, one sampled");
    assert_eq!(*s[0], *p, "a peer comes back as stored (info and JSON)");
    assert!(
        store
            .sample(
                ContentId::derive("conformance/none"),
                &Locality::default(),
                10,
                t0
            )
            .await
            .expect("sample")
            .is_empty(),
        "an unknown swarm is empty"
    );

    // Expiry: live while now < expires, never returned after (counts first: a store may forget
    // expired entries when it samples, and time only moves forward).
    assert_eq!(
        store.peer_count(t0 + ttl).await.expect("count"),
        0,
        "expired peers are not counted"
    );
    assert_eq!(
        store.peer_count(t0).await.expect("count"),
        1,
        "peer_count counts live peers"
    );
    assert!(
        store
            .sample(c, &Locality::default(), 10, t0 + ttl)
            .await
            .expect("sample")
            .is_empty(),
        "an expired peer is never returned"
    );

    // Refresh: a second upsert extends the expiry and moves the peer to its new locality.
    let mut moved_info = p.info().clone();
    moved_info.locality.site = Some("lyon".into());
    let moved = Arc::new(StoredPeer::new(moved_info));
    store
        .upsert(c, &moved, t0 + 10, t0 + 2 * ttl)
        .await
        .expect("upsert");
    let near_lyon = Locality {
        site: Some("lyon".into()),
        asn: Some(64500),
        country: None,
    };
    let s = store
        .sample(c, &near_lyon, 10, t0 + ttl + 5)
        .await
        .expect("sample");
    assert_eq!(
        s.iter().map(|p| p.info().clone()).collect::<Vec<_>>(),
        vec![moved.info().clone()],
        "a refreshed peer lives on with its new locality"
    );

    // Remove.
    assert!(
        store.remove(c, moved.id, t0 + 20).await.expect("remove"),
        "remove reports a live peer"
    );
    assert!(
        !store.remove(c, moved.id, t0 + 20).await.expect("remove"),
        "remove reports an absent peer"
    );
    assert!(
        store
            .sample(c, &near_lyon, 10, t0 + 30)
            .await
            .expect("sample")
            .is_empty(),
        "a removed peer is gone"
    );

    // Tiers in a big swarm: 5 in the site, 10 more in the AS, 300 elsewhere.
    let big = ContentId::derive("conformance/big");
    let now = t0 + 1000;
    let mut n = 100;
    let mut add = |site: Option<&'static str>, asn: Option<u32>, count: u32| {
        let v: Vec<Arc<StoredPeer>> = (0..count).map(|i| peer(n + i, site, asn)).collect();
        n += count;
        v
    };
    let site_peers = add(Some("paris"), Some(64500), 5);
    let as_peers = add(Some("lyon"), Some(64500), 10);
    let others = add(Some("berlin"), Some(3320), 300);
    for p in site_peers.iter().chain(&as_peers).chain(&others) {
        store.upsert(big, p, now, now + ttl).await.expect("upsert");
    }
    let near = Locality {
        site: Some("paris".into()),
        asn: Some(64500),
        country: None,
    };
    let s = store.sample(big, &near, 20, now + 1).await.expect("sample");
    assert_distinct(&s);
    let got = ids(&s);
    assert!(
        site_peers.iter().all(|p| got.contains(&p.id)),
        "every same-site peer is found in a big swarm"
    );
    assert!(
        as_peers.iter().all(|p| got.contains(&p.id)),
        "every same-AS peer is found when the site has fewer than per_tier"
    );
    assert!(
        s.len() >= 20 && s.len() <= 60,
        "tiers fill up to per_tier each: got {}",
        s.len()
    );
    // A site with more than per_tier peers fills the reply alone.
    let near_berlin = Locality {
        site: Some("berlin".into()),
        asn: Some(3320),
        country: None,
    };
    let s = store
        .sample(big, &near_berlin, 10, now + 1)
        .await
        .expect("sample");
    assert_distinct(&s);
    let far = hive_core::ranking::far_share(10);
    assert!(
        s.len() >= 10 && s.len() <= 10 + far,
        "per_tier peers from a large site, and a far share: {}",
        s.len()
    );
    assert!(
        s.iter()
            .filter(|p| p.locality.site.as_deref() == Some("berlin"))
            .count()
            >= 10,
        "a full site tier"
    );
    // No locality: a uniform sample of the whole swarm, different each time.
    let mut seen = HashSet::new();
    for _ in 0..20 {
        let s = store
            .sample(big, &Locality::default(), 5, now + 1)
            .await
            .expect("sample");
        assert_eq!(s.len(), 5);
        assert_distinct(&s);
        seen.extend(ids(&s));
    }
    assert!(
        seen.len() > 30,
        "samples are random: only {} distinct peers in 20 samples of 5",
        seen.len()
    );

    // Announce = upsert + sample around the announcer.
    let newcomer = peer(9999, Some("paris"), Some(64500));
    let s = store
        .announce(big, &newcomer, now + 2, now + ttl, 5)
        .await
        .expect("announce");
    assert_distinct(&s);
    assert!(
        s.iter()
            .filter(|p| p.locality.site.as_deref() == Some("paris"))
            .count()
            >= 5,
        "an announce samples the announcer's site first"
    );
    assert_eq!(
        store.peer_count(now + 3).await.expect("count"),
        316,
        "5 + 10 + 300 + the newcomer"
    );

    // Entries expiring at different times: only the live ones come back, and a sweep (or lazy
    // cleanup) leaves the live ones alone.
    let later = now + ttl - 1;
    let stayer = peer(50_000, Some("paris"), Some(64500));
    store
        .upsert(big, &stayer, later, later + ttl)
        .await
        .expect("upsert");
    let s = store
        .sample(big, &near, 50, now + ttl)
        .await
        .expect("sample");
    assert_eq!(
        ids(&s),
        HashSet::from([stayer.id]),
        "only the one live peer after the others expire"
    );
    store.sweep(now + ttl).await.expect("sweep");
    let s = store
        .announce(big, &peer(50_001, None, None), now + ttl, now + 2 * ttl, 50)
        .await
        .expect("announce");
    assert!(ids(&s).contains(&stayer.id), "cleanup keeps live peers");
    assert_eq!(store.peer_count(now + ttl).await.expect("count"), 2);

    // Site counts: live peers of the site other than the one asking, and which are supernodes
    // (a peer that re-announces as an ordinary peer is no longer one).
    let sites = ContentId::derive("conformance/sites");
    let supernode = |n: u32, site: &str| {
        let mut p = peer(n, Some(site), Some(1)).info().clone();
        p.role = Role::Supernode;
        Arc::new(StoredPeer::new(p))
    };
    let t = now;
    for p in [
        supernode(60_000, "lyon"),
        supernode(60_001, "lyon"),
        peer(60_002, Some("lyon"), Some(1)),
        peer(60_003, Some("lyon"), Some(1)),
        supernode(60_004, "nice"),
    ] {
        store.upsert(sites, &p, t, t + ttl).await.expect("upsert");
    }
    // One that expires early, one that leaves.
    let short = supernode(60_005, "lyon");
    store
        .upsert(sites, &short, t, t + 10)
        .await
        .expect("upsert");
    store
        .remove(sites, supernode(60_001, "lyon").id, t + 20)
        .await
        .expect("remove");
    let asker = peer(60_003, Some("lyon"), Some(1)).id;
    let count = store
        .site_count(sites, "lyon", asker, t + 20)
        .await
        .expect("site count");
    assert_eq!(
        count.supernodes, 1,
        "one live supernode in lyon (one expired, one left): {count:?}"
    );
    assert!(
        count.peers == 2 || count.peers == 3,
        "lyon: 60 000 and 60 002 live besides the asker (a store may count the one that left \
         until it expires): {count:?}"
    );
    let stranger = peer(99_999, None, None).id;
    let all = store
        .site_count(sites, "lyon", stranger, t + 20)
        .await
        .expect("site count");
    assert_eq!(
        all.peers,
        count.peers + 1,
        "the asker is left out, not another"
    );
    store
        .upsert(sites, &peer(60_000, Some("lyon"), Some(1)), t + 30, t + ttl)
        .await
        .expect("upsert");
    let after = store
        .site_count(sites, "lyon", stranger, t + 30)
        .await
        .expect("site count");
    assert_eq!(after.supernodes, 0, "re-announced as a peer: {after:?}");
    let none = store
        .site_count(sites, "marseille", stranger, t + 30)
        .await
        .expect("site count");
    assert_eq!(none, crate::tracker::SiteCount::default());

    // A site's live supernodes, at most as many as asked.
    let sn_ids = |v: Vec<Arc<StoredPeer>>| v.iter().map(|p| p.id).collect::<HashSet<_>>();
    let nice = store
        .site_supernodes(sites, "nice", 10, t + 30)
        .await
        .expect("site supernodes");
    assert_eq!(sn_ids(nice), HashSet::from([supernode(60_004, "nice").id]));
    let lyon = store
        .site_supernodes(sites, "lyon", 10, t + 30)
        .await
        .expect("site supernodes");
    assert!(
        lyon.is_empty(),
        "lyon's supernodes expired, left or were re-listed as peers"
    );
    for n in [60_006, 60_007] {
        store
            .upsert(sites, &supernode(n, "lyon"), t + 30, t + ttl)
            .await
            .expect("upsert");
    }
    let both = HashSet::from([supernode(60_006, "lyon").id, supernode(60_007, "lyon").id]);
    let lyon = store
        .site_supernodes(sites, "lyon", 10, t + 31)
        .await
        .expect("site supernodes");
    assert_eq!(sn_ids(lyon), both);
    let one = store
        .site_supernodes(sites, "lyon", 1, t + 31)
        .await
        .expect("site supernodes");
    assert_eq!(one.len(), 1);
    assert!(both.contains(&one[0].id));
}

/// A supernode of `site`, as [`peer`] makes them.
fn supernode(n: u32, site: &str) -> Arc<StoredPeer> {
    let mut info = peer(n, Some(site), Some(64500)).info().clone();
    info.role = Role::Supernode;
    Arc::new(StoredPeer::new(info))
}

/// Runs the bounds contract against `store`, which must be empty and bounded to **2 swarms of 3
/// peers** (`with_limits(2, 3)`): a new peer or a new swarm beyond is refused with
/// [`StoreError::Full`](crate::tracker::StoreError::Full) and leaves no trace, a listed peer is
/// never refused, expired peers and a swarm's last leave free their places, and concurrent new
/// peers racing for the last place never pass the bound. Panics on the first violation.
pub async fn store_bounds_conformance(store: &dyn TrackerStore) {
    use crate::tracker::StoreError;
    let t0 = 1_700_000_000_000u64;
    let ttl = 60_000;
    let full = |r: Result<Vec<Arc<StoredPeer>>, StoreError>, what: &str| match r {
        Err(StoreError::Full(m)) => assert!(m.contains(what), "{m}"),
        other => panic!("expected a refusal ({what}), got {other:?}"),
    };
    let paris = Locality {
        site: Some("paris".into()),
        asn: Some(64500),
        country: None,
    };
    let (a, b, c) = (
        ContentId::derive("bounds/a"),
        ContentId::derive("bounds/b"),
        ContentId::derive("bounds/c"),
    );
    for n in 1..=3 {
        store
            .announce(a, &peer(n, Some("paris"), Some(64500)), t0, t0 + ttl, 10)
            .await
            .expect("room in the swarm");
    }

    // A fourth peer is refused, by announce as by upsert, and leaves no trace in any tier.
    let p4 = supernode(4, "paris");
    full(
        store.announce(a, &p4, t0 + 1, t0 + 1 + ttl, 10).await,
        "3 peers",
    );
    full(
        store
            .upsert(a, &p4, t0 + 1, t0 + 1 + ttl)
            .await
            .map(|()| Vec::new()),
        "3 peers",
    );
    let t = t0 + 2;
    assert!(
        store.get(a, p4.id, t).await.expect("get").is_none(),
        "a refused peer is not listed"
    );
    let s = store.sample(a, &paris, 10, t).await.expect("sample");
    assert_eq!(
        ids(&s),
        (1..=3).map(|n| peer(n, None, None).id).collect(),
        "refused: not sampled"
    );
    let except = peer(1, None, None).id;
    let count = store
        .site_count(a, "paris", except, t)
        .await
        .expect("count");
    assert_eq!(count.peers, 2, "a refused peer is not counted in its site");
    assert!(
        store
            .site_supernodes(a, "paris", 10, t)
            .await
            .expect("supernodes")
            .is_empty(),
        "a refused supernode is not listed"
    );

    // A listed peer re-announces, even with another locality.
    store
        .announce(a, &peer(1, Some("lyon"), None), t0 + 3, t0 + 3 + ttl, 10)
        .await
        .expect("a listed peer is never refused");

    // Swarms: a second one is admitted, a third refused without a trace; the listed peers of a
    // full tracker's swarms still re-announce.
    store
        .announce(b, &peer(1, None, None), t0 + 4, t0 + 4 + ttl, 10)
        .await
        .expect("room for a second swarm");
    full(
        store
            .announce(c, &peer(1, None, None), t0 + 5, t0 + 5 + ttl, 10)
            .await,
        "2 swarms",
    );
    assert!(
        store
            .sample(c, &Locality::default(), 10, t0 + 6)
            .await
            .expect("sample")
            .is_empty(),
        "a refused swarm holds nobody"
    );
    store
        .announce(b, &peer(1, None, None), t0 + 6, t0 + 6 + ttl, 10)
        .await
        .expect("a listed peer is never refused");
    // The last peer of b leaves: room for c at once.
    assert!(
        store
            .remove(b, peer(1, None, None).id, t0 + 7)
            .await
            .expect("remove")
    );
    store
        .announce(c, &peer(1, None, None), t0 + 8, t0 + 8 + ttl, 10)
        .await
        .expect("room once a swarm's last peer left");

    // Expired peers free their places: 2 and 3 expired, 1 is live (re-announced at t0 + 3).
    let t = t0 + ttl + 1;
    for n in [5, 6] {
        store
            .announce(a, &peer(n, None, None), t, t + ttl, 10)
            .await
            .expect("room once peers expired");
    }
    full(
        store
            .announce(a, &peer(7, None, None), t, t + ttl, 10)
            .await,
        "3 peers",
    );
    let live = store
        .sample(a, &Locality::default(), 10, t)
        .await
        .expect("sample");
    assert_eq!(live.len(), 3, "{live:?}");

    // Peers racing for the last place: at most one gets it, and a refused one leaves no trace
    // (a place left free is taken by the next one).
    assert!(
        store
            .remove(a, peer(6, None, None).id, t)
            .await
            .expect("remove")
    );
    let racers: Vec<_> = (100..116).map(|n| peer(n, None, None)).collect();
    let tries = racers.iter().map(|p| store.announce(a, p, t, t + ttl, 10));
    let admitted = join_all(tries.collect())
        .await
        .into_iter()
        .filter(|r| match r {
            Ok(_) => true,
            Err(StoreError::Full(_)) => false,
            Err(e) => panic!("{e}"),
        })
        .count();
    assert!(admitted <= 1, "{admitted} admitted to the last place");
    let next = store
        .announce(a, &peer(200, None, None), t, t + ttl, 10)
        .await;
    assert_eq!(next.is_ok(), admitted == 0, "{next:?}");
    let live = store
        .sample(a, &Locality::default(), 20, t)
        .await
        .expect("sample");
    assert_eq!(live.len(), 3, "{live:?}");

    // Swarms whose peers all expired (and that the store forgot) free their places.
    let later = t + 100 * ttl;
    store.sweep(later).await.expect("sweep");
    for (i, name) in ["bounds/d", "bounds/e"].into_iter().enumerate() {
        store
            .announce(
                ContentId::derive(name),
                &peer(300 + i as u32, None, None),
                later,
                later + ttl,
                10,
            )
            .await
            .expect("room once swarms expired");
    }
    full(
        store
            .announce(
                ContentId::derive("bounds/f"),
                &peer(302, None, None),
                later,
                later + ttl,
                10,
            )
            .await,
        "2 swarms",
    );
}

/// Runs `futs` concurrently on this task; their outputs in order.
async fn join_all<F: std::future::Future + Unpin>(mut futs: Vec<F>) -> Vec<F::Output> {
    use std::task::Poll;
    let mut out: Vec<Option<F::Output>> = futs.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (f, o) in futs.iter_mut().zip(out.iter_mut()) {
            if o.is_none() {
                match std::pin::Pin::new(f).poll(cx) {
                    Poll::Ready(v) => *o = Some(v),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    out.into_iter().flatten().collect()
}
