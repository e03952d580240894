//! The tracker: introduces agents to each other, nearest first.
//!
//! Agents announce themselves per swarm (content) every [`AnnounceReply::interval`]; the tracker
//! stores them with a TTL in a [`TrackerStore`] ([`MemoryStore`] embedded, [`RedisStore`] to
//! scale out) and answers with a sample of the swarm: same site first, then same AS, then the
//! rest; within a tier a random order weighted towards upload capacity and supernodes, so that
//! not every agent gets the same peers. The site and AS of an agent come from the operator's
//! [`LocalityTable`] matched on the address the tracker sees, else from the agent's own
//! configuration. With a [`TokenVerifier`] configured, announces
//! (and leaves) without a valid registrar token are refused. With a [`SupernodePlan`], the
//! tracker promotes ordinary peers to supernodes, a few per site (the reply's `role` says so,
//! and the agent adopts it). An agent alone in its swarm is told to come back within
//! [`LONELY_INTERVAL`].
//!
//! A role that draws traffic and trust to its holder (`supernode`, `seeder`) is not believed
//! because an agent announces it: the tracker lists it only for agents it promoted itself or
//! the operator named ([`TrackerConfig::trusted_roles`]); anyone else announcing it is listed,
//! and told, as an ordinary peer (and may be promoted as one). Agents in turn believe a
//! neighbour's supernode role only when the tracker lists it so.
//!
//! # HTTP/JSON API
//!
//! | request | body / query | reply |
//! |---|---|---|
//! | `POST /v1/announce` | [`AnnounceRequest`](api::AnnounceRequest) | [`AnnounceResponse`](api::AnnounceResponse) |
//! | `POST /v1/leave` | [`LeaveRequest`](api::LeaveRequest) | `{"removed": bool}` |
//! | `GET /v1/peers?content=hex&limit=N[&peer=hex&token=b64]` | | [`PeersResponse`](api::PeersResponse) (at most `max_reply`; with tokens required, only for a valid token of that content) |
//! | `GET /metrics` | | Prometheus text: announces, leaves, promotions, rejects, peers stored, store errors |
//! | `GET /healthz` | | `ok` |
//!
//! ```text
//! POST /v1/announce
//! {"content": "<64 hex>", "peer": "<64 hex>", "addrs": ["0.0.0.0:4000"], "site": "paris",
//!  "asn": 64500, "country": "FR", "role": "peer", "upload_kbps": 5000,
//!  "token": "<base64url>", "want": 30}
//! -> {"peers": [{"peer": "<hex>", "addrs": ["10.1.2.3:4000"], "site": "paris", "asn": 64500,
//!                "country": "FR", "role": "supernode", "upload_kbps": 20000}, ...],
//!     "interval_s": 20.0, "observed_addr": "10.1.2.9:51234", "site": "paris", "asn": 64500,
//!     "country": "FR", "role": "peer", "leave_key": "<base64url>"}
//! ```
//!
//! **Leave keys.** A peer's first announce in a swarm (while it is not listed) is answered with
//! a random `leave_key`; the tracker stores its BLAKE3 hash with the entry. While the entry is
//! live, an announce or a leave of that peer id must carry the key (compared in constant time),
//! else 403: nobody can move a listed peer to other addresses or remove it. Once it left or
//! expired, the next announce of the id gets a new key. [`TrackerClient`] keeps and presents
//! the keys by itself.
//!
//! **Limits.** Requests per source address ([`TrackerConfig::rate_per_addr`], a token bucket in
//! a bounded table) and the store's bounds (swarms, peers per swarm: [`MemoryStore::with_limits`],
//! `RedisStore::with_limits`) answer 429 with a message; the HTTP server's bounds are [`TrackerConfig::http`].
//!
//! `role` is `peer` (default), `supernode`, `consume-only` or `seeder`; in the reply, the role
//! the tracker lists the announcer with (`supernode` when it promoted it). An address
//! `0.0.0.0:port` (or `[::]:port`) is stored with the ip the tracker saw. `want` is capped at `max_reply`
//! (absent or 0 means `max_reply`). Bounds: 16 KiB bodies (413 beyond), ≤ 8 addresses, strings
//! ≤ 64 bytes, tokens and leave keys ≤ 512; anything malformed gets a 400 with
//! `{"error": "..."}`, a missing or invalid token or leave key a 403, a limit a 429, a store
//! failure a 503.

pub mod api;
mod client;
mod handlers;
pub mod locality;
mod memory;
mod rate;
#[cfg(feature = "redis")]
mod redis_store;
mod reports;
mod sample;
mod store;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hive_core::{ContentId, Locality, PeerInfo};
use tokio::net::TcpListener;

pub use client::{TrackerClient, TrackerError};
pub use hive_core::overlay::SupernodePlan;
pub use locality::{LocalityTable, LocalityTableError};
pub use memory::{DEFAULT_MAX_PEERS_PER_SWARM, DEFAULT_MAX_SWARMS, MemoryStore};
#[cfg(feature = "redis")]
pub use redis_store::RedisStore;
pub use store::{SiteCount, StoreError, StoredPeer, TrackerStore};

use crate::registrar::TokenVerifier;

/// The longest interval told to an agent that the tracker knows no other peer for.
pub const LONELY_INTERVAL: Duration = Duration::from_secs(2);

/// The longest interval told to a supernode away from the gateway site while the gateway site
/// has no supernode (see [`SupernodePlan`]): it fetches through the gateway on its own until it
/// learns of one. Agents take no interval under a second.
pub const UPLINK_WAIT_INTERVAL: Duration = Duration::from_secs(1);

/// One announce, as an agent makes it.
#[derive(Clone, Debug)]
pub struct Announce {
    /// The swarm.
    pub content: ContentId,
    /// The announcing peer: id, addresses, its own locality, role, capacity.
    pub peer: PeerInfo,
    /// Registrar token for this peer and content, if the agent has one.
    pub token: Option<Bytes>,
    /// How many peers to return (0 = the tracker's maximum).
    pub want: usize,
}

/// The tracker's answer to an [`Announce`].
#[derive(Clone, Debug)]
pub struct AnnounceReply {
    /// A locality-ordered sample of the swarm; never includes the announcer.
    pub peers: Vec<PeerInfo>,
    /// When to announce again.
    pub interval: Duration,
    /// The address the tracker saw the request come from.
    pub observed_addr: Option<SocketAddr>,
    /// The locality the tracker assigned (from its table, else the agent's own).
    pub locality: Locality,
    /// The role the tracker lists the agent with: the one it announced,
    /// [`Role::Supernode`](hive_core::Role::Supernode) when the tracker promoted it (see
    /// [`SupernodePlan`]), or [`Role::Peer`](hive_core::Role::Peer) for a supernode or seeder
    /// role the tracker does not believe (see [`TrackerConfig::trusted_roles`]). `None` from a
    /// tracker that does not say.
    pub role: Option<hive_core::Role>,
}

/// Tracker settings.
#[derive(Clone, Debug)]
pub struct TrackerConfig {
    /// How long an announce keeps a peer listed (agents re-announce every TTL/3).
    pub ttl: Duration,
    /// The most peers one reply holds.
    pub max_reply: usize,
    /// Address ranges → site and AS.
    pub locality_table: LocalityTable,
    /// `Some`: announces and leaves without a valid registrar token are refused (403).
    pub verifier: Option<TokenVerifier>,
    /// `Some`: the tracker promotes agents to supernodes, per site (what `PrivateHierarchy`
    /// needs); `None` (the default): agents keep the role they announce.
    ///
    /// An agent that announces itself as an ordinary peer, in a site (as its locality or the
    /// tracker's locality table gives it) with fewer live supernodes than the plan wants, is
    /// listed as a supernode and told so in the reply (`"role": "supernode"`); an agent adopts
    /// the role and announces with it from then on. Supernodes are never demoted; one that
    /// leaves is replaced by the next ordinary peer of its site to announce. Two agents
    /// announcing at the same instant may both be promoted: the count is a floor, not an exact
    /// figure.
    pub supernodes: Option<SupernodePlan>,
    /// Whose announced `supernode` or `seeder` role is believed (beyond the tracker's own
    /// promotions, always believed). Default: nobody's ([`RoleTrust::Listed`] of no one): an
    /// agent cannot make itself the supernode its site's agents fetch from by saying so.
    pub trusted_roles: RoleTrust,
    /// The bounds of the HTTP server [`serve`] runs: connections, header and body times, body
    /// size.
    pub http: crate::http::HttpLimits,
    /// Requests (announces, leaves, peer queries) a second from one source address (an IPv6
    /// address counts by its /64), sustained; beyond, 429. Agents announce every TTL/3, so
    /// this must allow for all the agents behind one NAT gateway. Default 200.
    pub rate_per_addr: f64,
    /// The burst above [`rate_per_addr`](Self::rate_per_addr). Default 1000.
    pub rate_burst: u32,
    /// Most source addresses the rate limiter tracks (idle ones are forgotten first). Default
    /// 65 536.
    pub rate_table: usize,
    /// Distinct listed reporters (`POST /v1/report`) after which a peer accused of serving
    /// bytes that fail a signed hash is dropped from that swarm and refused there. Default 2.
    pub refuse_after_reports: usize,
    /// How long such a peer stays refused in that swarm. Default 1 h.
    pub refuse_for: Duration,
}

impl Default for TrackerConfig {
    fn default() -> Self {
        TrackerConfig {
            ttl: Duration::from_secs(60),
            max_reply: 50,
            locality_table: LocalityTable::default(),
            verifier: None,
            supernodes: None,
            trusted_roles: RoleTrust::default(),
            http: crate::http::HttpLimits::default(),
            rate_per_addr: 200.0,
            rate_burst: 1000,
            rate_table: 65_536,
            refuse_after_reports: 2,
            refuse_for: Duration::from_secs(3600),
        }
    }
}

/// Whose announced role a tracker believes, when it is one that draws traffic and trust
/// (`supernode`, `seeder`): `consume-only` and `peer` are always believed (they only limit
/// their holder), and so are the tracker's own promotions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RoleTrust {
    /// Only these agents' (the operator's own seeders and supernodes; `hive tracker
    /// --trust-role PEER_ID`). The default: none.
    Listed(std::collections::HashSet<hive_core::PeerId>),
    /// Everyone's (a closed lab where every agent is the operator's;
    /// `hive tracker --trust-declared-roles`).
    Everyone,
}

impl Default for RoleTrust {
    fn default() -> Self {
        RoleTrust::Listed(Default::default())
    }
}

impl RoleTrust {
    /// Whether `peer`'s announced role is believed.
    pub fn trusts(&self, peer: &hive_core::PeerId) -> bool {
        match self {
            RoleTrust::Listed(ids) => ids.contains(peer),
            RoleTrust::Everyone => true,
        }
    }
}

/// The tracker service: configuration, a store and counters. Serve it with [`serve`] or mount
/// [`Tracker::router`] in your own axum server.
pub struct Tracker {
    cfg: TrackerConfig,
    store: Arc<dyn TrackerStore>,
    metrics: handlers::Metrics,
    rate: rate::RateLimiter,
    reports: reports::Reports,
}

impl std::fmt::Debug for Tracker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tracker")
            .field("cfg", &self.cfg)
            .field("store", &self.store.name())
            .finish_non_exhaustive()
    }
}

impl Tracker {
    /// A tracker over `store`.
    pub fn new(cfg: TrackerConfig, store: Arc<dyn TrackerStore>) -> Self {
        Tracker {
            rate: rate::RateLimiter::new(cfg.rate_per_addr, cfg.rate_burst, cfg.rate_table),
            cfg,
            store,
            metrics: handlers::Metrics::default(),
            reports: reports::Reports::default(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &TrackerConfig {
        &self.cfg
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn TrackerStore> {
        &self.store
    }

    /// How often agents are told to re-announce: a third of the TTL, so two announces may be lost
    /// before an entry expires.
    pub fn interval(&self) -> Duration {
        self.cfg.ttl / 3
    }

    /// The interval told to an agent whose reply holds `peers` peers: an agent alone in its
    /// swarm (the first to join, or the first after a gap) comes back within
    /// [`LONELY_INTERVAL`], so that it learns of those who join next as soon as they do rather
    /// than a whole interval later; the others every [`interval`](Self::interval).
    pub fn interval_for(&self, peers: usize) -> Duration {
        if peers == 0 {
            self.interval().min(LONELY_INTERVAL)
        } else {
            self.interval()
        }
    }

    /// The HTTP API (see the [module docs](self)). Handlers see the client's address only under a
    /// server that provides `ConnectInfo<SocketAddr>`, as [`serve`] does.
    pub fn router(self: Arc<Self>) -> axum::Router {
        handlers::router(self)
    }
}

/// Serves `tracker` on `listener` until `shutdown` completes (in-flight requests finish), and
/// sweeps expired entries from the store every TTL meanwhile.
pub async fn serve(
    listener: TcpListener,
    tracker: Arc<Tracker>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(listener, tracker, axum::Router::new(), shutdown).await
}

/// [`serve`], with `extra` routes on the same port: e.g. the hash service's
/// (`HashService::router`), so agents pull trusted hashes from their tracker. `extra` must not
/// use the tracker's paths (`/v1/announce`, `/v1/leave`, `/v1/peers`, `/metrics`, `/healthz`).
pub async fn serve_with(
    listener: TcpListener,
    tracker: Arc<Tracker>,
    extra: axum::Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let sweeper = {
        let store = tracker.store.clone();
        let every = tracker.cfg.ttl.max(Duration::from_millis(100));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if let Err(e) = store.sweep(crate::http::now_unix_ms()).await {
                    tracing::warn!("tracker sweep: {e}");
                }
            }
        })
    };
    let limits = tracker.cfg.http.clone();
    let result =
        crate::http::serve_bounded(listener, tracker.router().merge(extra), limits, shutdown).await;
    sweeper.abort();
    result
}
