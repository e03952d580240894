//! The Redis tracker store; see [`RedisStore`].

use std::collections::HashSet;

/// Sets of ids with a fast hasher (ids come from our own store; SipHash showed in profiles).
type FoldSet<T> = HashSet<T, foldhash::fast::RandomState>;
use std::sync::Arc;

use async_trait::async_trait;
use hive_core::{ContentId, Locality, PeerId};
use redis::aio::ConnectionManager;

use super::memory::{DEFAULT_MAX_PEERS_PER_SWARM, DEFAULT_MAX_SWARMS};
use super::store::{SiteCount, StoreError, StoredPeer, TrackerStore};

const NAME: &str = "redis";
/// The swarm registry: a sorted set of content ids (hex) → when the swarm's keys expire (unix
/// ms), for the bound on swarms. The one key outside the swarms' hash tags.
const SWARMS: &str = "hive:swarms";
/// Connections per store.
const CONNECTIONS: usize = 4;
/// Expired entries forgotten per call, at most.
const DEAD_BATCH: usize = 1000;

/// The Redis store: the way past one tracker machine.
///
/// Key design (compatible with Redis Cluster: every key of a swarm carries the hash tag
/// `{<content hex>}`, so all of a swarm lives in one slot and each pipeline touches one slot):
///
/// | key | type | holds |
/// |---|---|---|
/// | `hive:{c}:all` | sorted set | peer id → expiry (unix ms) |
/// | `hive:{c}:info` | hash | peer id → the peer's ranking fields and JSON ([`PeerJson`](super::api::PeerJson)) (a short text head, then the JSON) |
/// | `hive:{c}:site:<site>` | sorted set | the site's peer ids → expiry |
/// | `hive:{c}:asn:<asn>` | sorted set | the AS's peer ids → expiry |
/// | `hive:{c}:sn:<site>` | sorted set | the site's supernodes' ids → expiry (for [`TrackerStore::site_count`]) |
///
/// An announce is **two pipelined round trips** of plain commands:
/// 1. `ZRANGEBYSCORE all -inf now LIMIT 0 1000` (the swarm's expired ids), `ZREMRANGEBYSCORE` on
///    the announcer's site and AS sets, the upsert (`ZADD` ×3, `HSET`, `PEXPIRE` 2 × TTL on every
///    key, so an abandoned swarm vanishes by itself), and `ZRANDMEMBER` draws of ids per tier;
/// 2. `HMGET info` of the chosen ids (the expired ones left out), `HDEL`/`ZREM` of the expired.
///
/// Draws carry no scores (formatting doubles as text dominated Redis' time): the expired ids
/// of round 1 are excluded instead, and when more than 1000 expired at once, round 2 checks the
/// chosen ids' scores (`ZMSCORE`). A first version ran all of this in one Lua script (one round
/// trip), but Redis then spent ~200 µs a call copying the sampled JSON through Lua strings: the
/// plain pipeline is several times cheaper for the server. Requests share a few multiplexed,
/// auto-reconnecting connections (`TCP_NODELAY`), so concurrent announces are pipelined on the
/// wire. Needs Redis ≥ 6.2 (`ZRANDMEMBER`, `ZMSCORE`).
///
/// A leave removes the peer from `all` and `info`; its site and AS index entries stay until they
/// expire and are skipped meanwhile (their `info` entry is gone). A leave that empties `all`
/// also takes the swarm out of the registry (below), in a second round trip.
///
/// ## Bounds
///
/// As [`MemoryStore`](super::MemoryStore): at most [`max_swarms`](Self::with_limits) swarms and
/// [`max_peers_per_swarm`](Self::with_limits) live peers in each (defaults
/// [`DEFAULT_MAX_SWARMS`], [`DEFAULT_MAX_PEERS_PER_SWARM`]); an announce of a new peer beyond
/// either is refused with [`StoreError::Full`] (the tracker's 429), expired peers not counting.
/// A peer already in the swarm re-announcing is never refused. Swarms are counted in one more
/// key, `hive:swarms`, a sorted set of content ids scored by when the swarm's keys expire (the
/// last announce + the key lifetime).
///
/// The check rides in round 1 of the announce, so an announce stays two round trips: `ZADD all`
/// (its reply says whether the peer is new to the swarm), `ZCOUNT all` of the live peers after
/// it, and on the registry `ZREMRANGEBYSCORE` of the expired swarms, `ZADD GT` (its reply says
/// whether the swarm is new) and `ZCARD`. The insert is optimistic: when it passed a bound (a
/// new swarm, i.e. new to the registry with no other live peer, beyond `max_swarms`; or a new
/// peer making more than `max_peers_per_swarm` live ones), round 2 undoes it instead (`ZREM`
/// and `HDEL` of the peer from every key it went into, `ZREM` of the swarm from the registry if
/// this announce added it) and forgets the expired ids as usual. Plain commands rather than a
/// small Lua script (`redis::Script`), though a script would make check and insert atomic: one
/// script cannot touch `hive:swarms` and a swarm's keys on Redis Cluster (different slots; a
/// plain pipeline may span slots), so the swarm bound would stay racy anyway, with two
/// mechanisms for one rule; and the upsert would move into Lua (the per-call cost that made the
/// first, scripted version slow, plus `NOSCRIPT` retries after a restart). The cost is four
/// cheap commands per announce (O(log n) each, plus the expired swarms forgotten; `hive:swarms`
/// is one hot key, on one node of a cluster) and, since the check and the undo are not atomic, a brief race between concurrent
/// announces (of one or several trackers):
/// - the refused insert is visible until its undo (one round trip): a concurrent announce may
///   draw the refused peer, or count it and be refused too when the swarm is one below its
///   bound (then neither gets the last place, where the memory store would admit one). An
///   admitted new peer always counted itself and every insert before it, so the bound is never
///   passed by two admissions racing (up to clock skew between trackers, which moves "live");
/// - a leave emptying a swarm while a new peer joins it can leave a swarm with peers out of the
///   registry until its next announce puts it back (not refused: it has live peers), so the
///   registry may briefly count a swarm too few; a tracker dying between insert and undo leaves
///   one peer over the bound until it expires.
///
/// Expired peers stay in `all` until an announce or sample forgets them (up to 1000 each), and
/// an abandoned swarm counts against `max_swarms` until its keys expire (2 × TTL after its last
/// announce; in memory, until the first sweep after its last peer expired).
#[derive(Clone)]
pub struct RedisStore {
    /// A few multiplexed connections, used in turn: one connection's single reader task (reply
    /// parsing) capped throughput well below what the server can do.
    cons: Arc<[ConnectionManager]>,
    next: Arc<std::sync::atomic::AtomicUsize>,
    /// Lifetime of a swarm's keys after its last announce, ms.
    key_lifetime_ms: u64,
    /// Bound on swarms (the registry's live entries).
    max_swarms: usize,
    /// Bound on live peers per swarm.
    max_peers: usize,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore").finish_non_exhaustive()
    }
}

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend {
        store: NAME,
        message: e.to_string(),
    }
}

fn keys(content: &ContentId, loc: &Locality) -> [String; 4] {
    let tag = format!("hive:{{{content}}}");
    [
        format!("{tag}:all"),
        format!("{tag}:info"),
        format!("{tag}:site:{}", loc.site.as_deref().unwrap_or("")),
        format!("{tag}:asn:{}", loc.asn.unwrap_or(0)),
    ]
}

/// The sorted set of a site's supernodes.
fn supernodes_key(content: &ContentId, site: &str) -> String {
    format!("hive:{{{content}}}:sn:{site}")
}

/// Of `ids` (from a supernode set), those still listed in `info` as supernodes, in order: one
/// that left is gone from `info` at once, one re-listed as an ordinary peer has that role there.
async fn listed_supernodes(
    con: &mut ConnectionManager,
    info: &str,
    ids: &[String],
) -> Result<Vec<StoredPeer>, StoreError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let blobs = bulk_array(
        redis::cmd("HMGET")
            .arg(info)
            .arg(ids)
            .query_async(con)
            .await
            .map_err(backend)?,
    )?;
    let mut out = Vec::new();
    for (id, blob) in ids.iter().zip(blobs) {
        let Some(b) = blob else { continue };
        let peer = decode(id.as_bytes(), b).map_err(|message| StoreError::Corrupt {
            store: NAME,
            message,
        })?;
        if peer.role() == hive_core::Role::Supernode {
            out.push(peer);
        }
    }
    Ok(out)
}

/// An array reply's bulk strings as bytes (`None` for nils), without the `String` conversions of
/// `from_redis_value`.
fn bulk_array(v: redis::Value) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
    use redis::Value;
    let items = match v {
        Value::Array(items) | Value::Set(items) => items,
        Value::Nil => return Ok(Vec::new()),
        Value::ServerError(e) => return Err(backend(format!("{e:?}"))),
        other => return Err(backend(format!("expected an array reply, got {other:?}"))),
    };
    items
        .into_iter()
        .map(|item| match item {
            Value::BulkString(b) => Ok(Some(b)),
            Value::SimpleString(s) => Ok(Some(s.into_bytes())),
            Value::Nil => Ok(None),
            other => Err(backend(format!("expected a bulk string, got {other:?}"))),
        })
        .collect()
}

/// What round 1 of an upsert tells about the bounds.
struct Bounds {
    /// The peer was not in the swarm (`ZADD`'s reply).
    peer_added: bool,
    /// Live peers of the swarm, with it.
    live: i64,
    /// The swarm was not in the registry.
    swarm_added: bool,
    /// Swarms in the registry, with it.
    swarms: i64,
}

/// An integer reply.
fn int(v: redis::Value) -> Result<i64, StoreError> {
    match v {
        redis::Value::Int(n) => Ok(n),
        redis::Value::ServerError(e) => Err(backend(format!("{e:?}"))),
        other => Err(backend(format!("expected an integer reply, got {other:?}"))),
    }
}

/// Marks an `info` value in the stored form of [`encode`] (a bare JSON object is the oldest
/// form, `#1 ` without the key hash the next).
const HEAD: &str = "#2 ";
/// The form before leave keys.
const HEAD_V1: &str = "#1 ";

/// A peer's `info` value: the ranking fields in a short text head, then its JSON as replies carry
/// it, `#2 <leave key hash hex|-> <role> <kbps> <asn|-> <country|-> <site bytes>:<site><json>`,
/// so that reading it back
/// ([`decode`]) parses no JSON: the reply splices the JSON as stored.
fn encode(peer: &StoredPeer) -> String {
    use std::fmt::Write;
    let loc = peer.locality();
    let site = loc.site.as_deref().unwrap_or("");
    let mut s = String::with_capacity(40 + site.len() + peer.json().len());
    s.push_str(HEAD);
    match peer.key_hash() {
        Some(h) => s.push_str(&crate::registrar::hex(h)),
        None => s.push('-'),
    }
    s.push(' ');
    s.push_str(super::api::role_name(peer.role()));
    let _ = write!(s, " {} ", peer.upload_kbps());
    match loc.asn {
        Some(a) => {
            let _ = write!(s, "{a} ");
        }
        None => s.push_str("- "),
    }
    match loc.country {
        Some(c) => s.push_str(&super::api::country_text(c)),
        None => s.push('-'),
    }
    let _ = write!(s, " {}:{site}", site.len());
    s.push_str(peer.json());
    s
}

/// Reads back an `info` value of peer `id` (hex): [`encode`]'s form, or a bare JSON object (the
/// form before it), fully parsed.
fn decode(id: &[u8], value: Vec<u8>) -> Result<StoredPeer, String> {
    use super::api::{check_site, parse_country, parse_role};
    let value = String::from_utf8(value).map_err(|e| e.to_string())?;
    let bad = || format!("bad stored head {:?}", value.get(..80).unwrap_or(&value));
    let (key_hash, rest) = if let Some(rest) = value.strip_prefix(HEAD) {
        let (key, rest) = rest.split_once(' ').ok_or_else(bad)?;
        let key = match key {
            "-" => None,
            k => Some(crate::registrar::parse_hex32(k).map_err(|_| bad())?),
        };
        (key, rest)
    } else if let Some(rest) = value.strip_prefix(HEAD_V1) {
        (None, rest)
    } else {
        return StoredPeer::from_json_string(value);
    };
    let mut fields = rest.splitn(5, ' ');
    let mut next = || fields.next().ok_or_else(bad);
    let role = parse_role(next()?)?;
    let upload_kbps: u32 = next()?.parse().map_err(|_| bad())?;
    let asn = match next()? {
        "-" => None,
        a => Some(a.parse::<u32>().map_err(|_| bad())?),
    };
    let country = match next()? {
        "-" => None,
        c => Some(parse_country(c)?),
    };
    let tail = next()?;
    let (len, tail) = tail.split_once(':').ok_or_else(bad)?;
    let len: usize = len.parse().map_err(|_| bad())?;
    let (site, json) = (
        tail.get(..len).ok_or_else(bad)?,
        tail.get(len..).ok_or_else(bad)?,
    );
    let site = match site {
        "" => None,
        s => {
            check_site(s)?;
            Some(s.to_owned())
        }
    };
    // The JSON is spliced into replies as it is: it must at least be an object.
    if !(json.starts_with('{') && json.ends_with('}')) {
        return Err(bad());
    }
    let id: PeerId = std::str::from_utf8(id)
        .map_err(|e| e.to_string())?
        .parse()
        .map_err(|e| format!("peer: {e}"))?;
    let locality = Locality { asn, site, country };
    Ok(
        StoredPeer::from_parts(id, locality, role, upload_kbps, json.into())
            .with_key_hash(key_hash),
    )
}

impl RedisStore {
    /// Connects to `url` (`redis://host:port/db`), checking the server answers.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        use redis::IntoConnectionInfo;
        // TCP_NODELAY: many announces share the connection; Nagle would hold each small write
        // back until the previous reply's ACK (the crate's default leaves it on).
        let info = url
            .into_connection_info()
            .map_err(backend)?
            .set_tcp_settings(redis::io::tcp::TcpSettings::default().set_nodelay(true));
        let client = redis::Client::open(info).map_err(backend)?;
        let mut cons = Vec::with_capacity(CONNECTIONS);
        for _ in 0..CONNECTIONS {
            let config = redis::aio::ConnectionManagerConfig::new().set_pipeline_buffer_size(1024);
            let mut con = client
                .get_connection_manager_with_config(config)
                .await
                .map_err(backend)?;
            let _: String = redis::cmd("PING")
                .query_async(&mut con)
                .await
                .map_err(backend)?;
            cons.push(con);
        }
        Ok(RedisStore {
            cons: cons.into(),
            next: Arc::default(),
            key_lifetime_ms: 120_000,
            max_swarms: DEFAULT_MAX_SWARMS,
            max_peers: DEFAULT_MAX_PEERS_PER_SWARM,
        })
    }

    /// The next connection in turn.
    fn con(&self) -> ConnectionManager {
        let i = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.cons[i % self.cons.len()].clone()
    }

    /// Sets how long a swarm's keys outlive its last announce (the tracker uses 2 × TTL).
    pub fn with_key_lifetime(mut self, lifetime: std::time::Duration) -> Self {
        self.key_lifetime_ms = (lifetime.as_millis() as u64).max(1000);
        self
    }

    /// This store with at most `max_swarms` swarms and `max_peers_per_swarm` live peers in each
    /// (each at least 1), as [`MemoryStore::with_limits`](super::MemoryStore::with_limits); the
    /// defaults are [`DEFAULT_MAX_SWARMS`] and [`DEFAULT_MAX_PEERS_PER_SWARM`]. Trackers sharing
    /// one Redis should be given the same bounds.
    pub fn with_limits(mut self, max_swarms: usize, max_peers_per_swarm: usize) -> Self {
        self.max_swarms = max_swarms.max(1);
        self.max_peers = max_peers_per_swarm.max(1);
        self
    }

    /// The bound an insert passed, if any (see the type's docs).
    fn refusal(&self, b: &Bounds) -> Option<StoreError> {
        if !b.peer_added {
            return None;
        }
        if b.swarm_added && b.live <= 1 && b.swarms > self.max_swarms as i64 {
            return Some(StoreError::Full(format!(
                "the tracker holds {} swarms, its maximum",
                self.max_swarms
            )));
        }
        if b.live > self.max_peers as i64 {
            return Some(StoreError::Full(format!(
                "this swarm holds {} peers, the tracker's maximum",
                self.max_peers
            )));
        }
        None
    }

    /// Cleanup, optional upsert and optional sample of one swarm: one pipelined round trip, plus
    /// a second for the sampled peers' JSON and the expired entries' removal.
    #[allow(clippy::too_many_arguments)]
    async fn run(
        &self,
        content: ContentId,
        near: &Locality,
        now_ms: u64,
        expires_ms: u64,
        peer: Option<&StoredPeer>,
        per_tier: usize,
    ) -> Result<Vec<Arc<StoredPeer>>, StoreError> {
        let [all, info, site, asn] = keys(&content, near);
        let (has_site, has_asn) = (near.site.is_some(), near.asn.is_some());
        let life = self.key_lifetime_ms;
        // Round 1, in order: the swarm's expired ids (bounded), trim of the sampled site and AS
        // sets, the upsert with key lifetimes, then random draws of ids per tier (without scores:
        // formatting them as text would dominate Redis' time).
        let mut p = redis::pipe();
        p.cmd("ZRANGEBYSCORE")
            .arg(&all)
            .arg("-inf")
            .arg(now_ms)
            .arg("LIMIT")
            .arg(0)
            .arg(DEAD_BATCH);
        for (has, key) in [(has_site, &site), (has_asn, &asn)] {
            if has {
                p.cmd("ZREMRANGEBYSCORE")
                    .arg(key)
                    .arg("-inf")
                    .arg(now_ms)
                    .ignore();
            }
        }
        let content_hex = content.to_string();
        if let Some(peer) = peer {
            let id = peer.id.to_string();
            // Its reply: 1 when the peer is new to the swarm (for the bounds, as ZCOUNT's below).
            p.cmd("ZADD").arg(&all).arg(expires_ms).arg(&id);
            p.cmd("HSET").arg(&info).arg(&id).arg(encode(peer)).ignore();
            p.cmd("PEXPIRE").arg(&all).arg(life).ignore();
            p.cmd("PEXPIRE").arg(&info).arg(life).ignore();
            for (has, key) in [(has_site, &site), (has_asn, &asn)] {
                if has {
                    p.cmd("ZADD").arg(key).arg(expires_ms).arg(&id).ignore();
                    p.cmd("PEXPIRE").arg(key).arg(life).ignore();
                }
            }
            if let Some(s) = &near.site {
                let sn = supernodes_key(&content, s);
                // Only supernodes touch the set (no extra command on an ordinary announce): one
                // re-listed as a peer lingers in it until it expires, and readers check the
                // role in `info`.
                if peer.role() == hive_core::Role::Supernode {
                    p.cmd("ZADD").arg(&sn).arg(expires_ms).arg(&id).ignore();
                    p.cmd("PEXPIRE").arg(&sn).arg(life).ignore();
                }
            }
            // The bounds (see the type's docs): live peers after the insert; the registry's
            // expired swarms forgotten, this one's entry added or extended (1 when new), and
            // the swarms counted.
            p.cmd("ZCOUNT")
                .arg(&all)
                .arg(format!("({now_ms}"))
                .arg("+inf");
            p.cmd("ZREMRANGEBYSCORE")
                .arg(SWARMS)
                .arg("-inf")
                .arg(now_ms)
                .ignore();
            p.cmd("ZADD")
                .arg(SWARMS)
                .arg("GT")
                .arg(now_ms.saturating_add(life))
                .arg(&content_hex);
            p.cmd("ZCARD").arg(SWARMS);
        }
        // per_tier distinct ids per tier are enough whatever the tiers above took (of k taken, at
        // most k are drawn again, and the tier needs per_tier - k). Below the site tier, a margin
        // of per_tier / 2 (not per_tier: every id drawn is a bulk string to parse) covers ids
        // that yield nothing: expired ones in the whole swarm (removed in round 2) and peers
        // that left (they linger in the AS set).
        let mut tiers = Vec::new();
        let draw = per_tier.saturating_add(per_tier.div_ceil(2));
        if per_tier > 0 {
            if has_site {
                p.cmd("ZRANDMEMBER").arg(&site).arg(per_tier);
                tiers.push(per_tier);
            }
            if has_asn {
                p.cmd("ZRANDMEMBER").arg(&asn).arg(draw);
                tiers.push(per_tier);
            }
            p.cmd("ZRANDMEMBER").arg(&all).arg(draw);
            tiers.push(per_tier);
        }
        let mut con = self.con();
        let replies: Vec<redis::Value> = p.query_async(&mut con).await.map_err(backend)?;
        let mut replies = replies.into_iter();
        let mut next = || {
            replies
                .next()
                .ok_or_else(|| backend("short pipeline reply"))
        };
        let dead = bulk_array(next()?)?;
        let refused = match peer {
            Some(peer) => {
                let bounds = Bounds {
                    peer_added: int(next()?)? > 0,
                    live: int(next()?)?,
                    swarm_added: int(next()?)? > 0,
                    swarms: int(next()?)?,
                };
                // A refused new swarm leaves the registry; a swarm with other peers stays.
                let unregister = bounds.swarm_added && bounds.live <= 1;
                self.refusal(&bounds).map(|e| (peer, unregister, e))
            }
            None => None,
        };
        if let Some((peer, unregister, e)) = refused {
            // Undo the insert, and forget the expired ids as round 2 would.
            let id = peer.id.to_string();
            let mut p = redis::pipe();
            p.cmd("ZREM").arg(&all).arg(&id).ignore();
            p.cmd("HDEL").arg(&info).arg(&id).ignore();
            for (has, key) in [(has_site, &site), (has_asn, &asn)] {
                if has {
                    p.cmd("ZREM").arg(key).arg(&id).ignore();
                }
            }
            if let (Some(s), hive_core::Role::Supernode) = (&near.site, peer.role()) {
                p.cmd("ZREM")
                    .arg(supernodes_key(&content, s))
                    .arg(&id)
                    .ignore();
            }
            if unregister {
                p.cmd("ZREM").arg(SWARMS).arg(&content_hex).ignore();
            }
            let dead: Vec<&[u8]> = dead.iter().filter_map(Option::as_deref).collect();
            if !dead.is_empty() {
                p.cmd("HDEL").arg(&info).arg(&dead).ignore();
                p.cmd("ZREM").arg(&all).arg(&dead).ignore();
            }
            let () = p.query_async(&mut con).await.map_err(backend)?;
            return Err(e);
        }
        let dead_set: FoldSet<&[u8]> = dead.iter().filter_map(Option::as_deref).collect();
        // Candidates tier by tier, as the memory store picks them (see TrackerStore::sample).
        let drawn: Vec<Vec<Option<Vec<u8>>>> = (0..tiers.len())
            .map(|_| next().and_then(bulk_array))
            .collect::<Result<_, _>>()?;
        let mut seen: FoldSet<&[u8]> = FoldSet::default();
        let mut chosen: Vec<&[u8]> = Vec::new();
        let last = drawn.len().saturating_sub(1);
        for (i, tier) in drawn.iter().enumerate() {
            // The whole swarm (the last tier) always adds a far share (see TrackerStore::sample).
            let target = if chosen.len() < per_tier {
                chosen.len() + per_tier
            } else if i == last {
                chosen.len() + hive_core::ranking::far_share(per_tier)
            } else {
                continue;
            };
            for id in tier.iter().filter_map(Option::as_deref) {
                if chosen.len() >= target {
                    break;
                }
                if (dead_set.is_empty() || !dead_set.contains(id)) && seen.insert(id) {
                    chosen.push(id);
                }
            }
        }
        let dead: Vec<&[u8]> = dead.iter().filter_map(Option::as_deref).collect();
        // Round 2: the chosen peers' JSON; forget the expired ids found above. When the dead
        // batch was full, more expired ids may hide among the draws: check their scores too.
        let dirty = dead.len() >= DEAD_BATCH;
        if chosen.is_empty() && dead.is_empty() {
            return Ok(Vec::new());
        }
        let mut p = redis::pipe();
        if !chosen.is_empty() {
            p.cmd("HMGET").arg(&info).arg(&chosen);
            if dirty {
                p.cmd("ZMSCORE").arg(&all).arg(&chosen);
            }
        }
        if !dead.is_empty() {
            p.cmd("HDEL").arg(&info).arg(&dead).ignore();
            p.cmd("ZREM").arg(&all).arg(&dead).ignore();
        }
        let replies: Vec<redis::Value> = p.query_async(&mut con).await.map_err(backend)?;
        let mut replies = replies.into_iter();
        let blobs = match replies.next() {
            Some(v) => bulk_array(v)?,
            None => Vec::new(),
        };
        let scores: Option<Vec<Option<f64>>> = match (dirty, replies.next()) {
            (true, Some(v)) => Some(redis::from_redis_value(v).map_err(backend)?),
            _ => None,
        };
        let mut out = Vec::with_capacity(blobs.len());
        for (i, blob) in blobs.into_iter().enumerate() {
            let live = match &scores {
                Some(s) => s
                    .get(i)
                    .copied()
                    .flatten()
                    .is_some_and(|s| s > now_ms as f64),
                None => true,
            };
            // No JSON: the peer left (its id lingers in a site or AS set until it expires).
            if let (Some(b), true) = (blob, live) {
                let id = chosen.get(i).copied().unwrap_or_default();
                let peer = decode(id, b).map_err(|message| StoreError::Corrupt {
                    store: NAME,
                    message,
                })?;
                out.push(Arc::new(peer));
            }
        }
        Ok(out)
    }
}

#[async_trait]
impl TrackerStore for RedisStore {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn upsert(
        &self,
        content: ContentId,
        peer: &Arc<StoredPeer>,
        now_ms: u64,
        expires_ms: u64,
    ) -> Result<(), StoreError> {
        self.run(
            content,
            &peer.locality,
            now_ms,
            expires_ms,
            Some(&**peer),
            0,
        )
        .await
        .map(drop)
    }

    async fn get(
        &self,
        content: ContentId,
        peer: PeerId,
        now_ms: u64,
    ) -> Result<Option<Arc<StoredPeer>>, StoreError> {
        let [all, info, _, _] = keys(&content, &Locality::default());
        let id = peer.to_string();
        let mut con = self.con();
        let (score, blob): (Option<f64>, Option<Vec<u8>>) = redis::pipe()
            .cmd("ZSCORE")
            .arg(&all)
            .arg(&id)
            .cmd("HGET")
            .arg(&info)
            .arg(&id)
            .query_async(&mut con)
            .await
            .map_err(backend)?;
        match (score, blob) {
            (Some(s), Some(b)) if s > now_ms as f64 => decode(id.as_bytes(), b)
                .map(|p| Some(Arc::new(p)))
                .map_err(|message| StoreError::Corrupt {
                    store: NAME,
                    message,
                }),
            _ => Ok(None),
        }
    }

    async fn remove(
        &self,
        content: ContentId,
        peer: PeerId,
        now_ms: u64,
    ) -> Result<bool, StoreError> {
        let [all, info, _, _] = keys(&content, &Locality::default());
        let id = peer.to_string();
        let mut con = self.con();
        let (score, _, _, left): (Option<f64>, i64, i64, u64) = redis::pipe()
            .cmd("ZSCORE")
            .arg(&all)
            .arg(&id)
            .cmd("ZREM")
            .arg(&all)
            .arg(&id)
            .cmd("HDEL")
            .arg(&info)
            .arg(&id)
            .cmd("ZCARD")
            .arg(&all)
            .query_async(&mut con)
            .await
            .map_err(backend)?;
        // The swarm is gone: room for another at once, as in memory (one more round trip, only
        // for the last leave; a peer joining meanwhile puts the swarm back at its next announce).
        if score.is_some() && left == 0 {
            let _: i64 = redis::cmd("ZREM")
                .arg(SWARMS)
                .arg(content.to_string())
                .query_async(&mut con)
                .await
                .map_err(backend)?;
        }
        Ok(score.is_some_and(|s| s > now_ms as f64))
    }

    async fn sample(
        &self,
        content: ContentId,
        near: &Locality,
        per_tier: usize,
        now_ms: u64,
    ) -> Result<Vec<Arc<StoredPeer>>, StoreError> {
        if per_tier == 0 {
            return Ok(Vec::new());
        }
        self.run(content, near, now_ms, 0, None, per_tier).await
    }

    async fn announce(
        &self,
        content: ContentId,
        peer: &Arc<StoredPeer>,
        now_ms: u64,
        expires_ms: u64,
        per_tier: usize,
    ) -> Result<Vec<Arc<StoredPeer>>, StoreError> {
        self.run(
            content,
            &peer.locality,
            now_ms,
            expires_ms,
            Some(&**peer),
            per_tier,
        )
        .await
    }

    /// `ZCOUNT` of the site's live ids, and the site's live supernodes (`ZRANGEBYSCORE` of its
    /// supernode set) that `info` still lists as supernodes (one that left is gone from there
    /// at once, while its index entries linger until they expire). Two round trips when the
    /// site has supernodes, one otherwise. The peer count may include peers that left within
    /// the TTL.
    async fn site_count(
        &self,
        content: ContentId,
        site: &str,
        except: PeerId,
        now_ms: u64,
    ) -> Result<SiteCount, StoreError> {
        let loc = Locality {
            site: Some(site.to_owned()),
            ..Locality::default()
        };
        let [_, info, site_key, _] = keys(&content, &loc);
        let live = format!("({now_ms}");
        let except = except.to_string();
        let mut con = self.con();
        let (peers, own, mut supernodes): (u64, Option<f64>, Vec<String>) = redis::pipe()
            .cmd("ZCOUNT")
            .arg(&site_key)
            .arg(&live)
            .arg("+inf")
            .cmd("ZSCORE")
            .arg(&site_key)
            .arg(&except)
            .cmd("ZRANGEBYSCORE")
            .arg(supernodes_key(&content, site))
            .arg(&live)
            .arg("+inf")
            .query_async(&mut con)
            .await
            .map_err(backend)?;
        let peers = peers - u64::from(own.is_some_and(|s| s > now_ms as f64) && peers > 0);
        supernodes.retain(|id| *id != except);
        if supernodes.is_empty() {
            return Ok(SiteCount {
                peers,
                supernodes: 0,
            });
        }
        let listed = listed_supernodes(&mut con, &info, &supernodes).await?;
        Ok(SiteCount {
            peers,
            supernodes: listed.len() as u64,
        })
    }

    /// The site's supernode set (`ZRANGEBYSCORE` of the live ones), then `HMGET` of their
    /// entries: those that left are gone from `info`, and one re-listed as an ordinary peer is
    /// skipped by its role. Shuffled, then cut to `max`.
    async fn site_supernodes(
        &self,
        content: ContentId,
        site: &str,
        max: usize,
        now_ms: u64,
    ) -> Result<Vec<Arc<StoredPeer>>, StoreError> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let [_, info, _, _] = keys(&content, &Locality::default());
        let mut con = self.con();
        let mut ids: Vec<String> = redis::cmd("ZRANGEBYSCORE")
            .arg(supernodes_key(&content, site))
            .arg(format!("({now_ms}"))
            .arg("+inf")
            .query_async(&mut con)
            .await
            .map_err(backend)?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        super::sample::with_rng(|rng| rand::seq::SliceRandom::shuffle(&mut ids[..], rng));
        let mut out = listed_supernodes(&mut con, &info, &ids).await?;
        out.truncate(max);
        Ok(out.into_iter().map(Arc::new).collect())
    }

    /// Counts by `SCAN`ning the swarms' `all` keys (at most 100 000 swarms) and `ZCOUNT`ing their
    /// live entries: fine for a metrics scrape, not for a hot path.
    async fn peer_count(&self, now_ms: u64) -> Result<u64, StoreError> {
        let mut con = self.con();
        let mut cursor = 0u64;
        let mut keys = Vec::new();
        loop {
            let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg("hive:{*}:all")
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut con)
                .await
                .map_err(backend)?;
            keys.extend(batch);
            cursor = next;
            if cursor == 0 || keys.len() >= 100_000 {
                break;
            }
        }
        let mut total = 0u64;
        for chunk in keys.chunks(1000) {
            let mut pipe = redis::pipe();
            for k in chunk {
                pipe.cmd("ZCOUNT")
                    .arg(k)
                    .arg(format!("({now_ms}"))
                    .arg("+inf");
            }
            let counts: Vec<u64> = pipe.query_async(&mut con).await.map_err(backend)?;
            total += counts.iter().sum::<u64>();
        }
        Ok(total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hive_core::{PeerAddr, PeerInfo, Role};

    fn peer(site: Option<&str>, asn: Option<u32>, country: Option<[u8; 2]>) -> StoredPeer {
        let mut info = PeerInfo::new(
            PeerId::from_bytes([3; 32]),
            PeerAddr::Socket("10.0.0.1:4000".parse().expect("addr")),
        );
        info.locality = Locality {
            asn,
            site: site.map(str::to_owned),
            country,
        };
        info.role = Role::Supernode;
        info.upload_kbps = 4000;
        StoredPeer::new(info)
    }

    #[test]
    fn stored_values_read_back_as_written_in_both_forms() {
        for p in [
            peer(Some("paris: left bank {x}"), Some(64500), Some(*b"FR")),
            peer(None, None, None),
            peer(Some("lyon"), None, None).with_key_hash(Some([0xab; 32])),
        ] {
            let id = p.id().to_string();
            let back = decode(id.as_bytes(), encode(&p).into_bytes()).expect("decode");
            assert_eq!(back, p);
            assert_eq!(back.info(), p.info(), "the addresses parse on demand");
            let legacy = decode(id.as_bytes(), p.json().as_bytes().to_vec()).expect("legacy");
            assert_eq!(legacy, p.clone().with_key_hash(None));
            let v1 = encode(&p).replacen(HEAD, HEAD_V1, 1);
            let v1 = match v1
                .split_once(' ')
                .and_then(|(h, r)| Some((h, r.split_once(' ')?.1)))
            {
                Some((h, r)) => format!("{h} {r}"),
                None => v1,
            };
            let back = decode(id.as_bytes(), v1.into_bytes()).expect("v1");
            assert_eq!(back, p.clone().with_key_hash(None));
        }
        let id = PeerId::from_bytes([3; 32]).to_string();
        for bad in [
            "#1 peer 5",
            "#1 peer x - - 0:{}",
            "#1 peer 1 - - 9:ab{}",
            "#1 peer 1 - - 0:[]",
        ] {
            assert!(
                decode(id.as_bytes(), bad.as_bytes().to_vec()).is_err(),
                "{bad}"
            );
        }
    }
}
