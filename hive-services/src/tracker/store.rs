//! Where the tracker keeps its swarms: the [`TrackerStore`] contract.

use std::borrow::Cow;
use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use hive_core::{ContentId, Locality, PeerId, PeerInfo, Role};
use serde::Deserialize;

use super::api::{PeerJson, check_site, parse_country, parse_role};
use thiserror::Error;

/// A store's failure.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The backend failed (connection lost, timeout, server error).
    #[error("{store} store: {message}")]
    Backend {
        /// The store's [`TrackerStore::name`].
        store: &'static str,
        /// What went wrong.
        message: String,
    },
    /// A bound of the store would be passed (swarms, peers per swarm): the tracker answers 429.
    #[error("{0}")]
    Full(String),
    /// An entry read back from the backend does not parse.
    #[error("{store} store holds a corrupt entry: {message}")]
    Corrupt {
        /// The store's [`TrackerStore::name`].
        store: &'static str,
        /// What is wrong with it.
        message: String,
    },
}

/// A peer as stores hold it: its JSON form as replies carry it (serialised once per announce
/// rather than once per reply that lists it), the few fields ranking needs (id, locality, role,
/// capacity), and its full info.
///
/// A peer read back from a store ([`from_json`](Self::from_json)) parses only the ranking fields
/// of its JSON; the full [`PeerInfo`] (addresses) is parsed on first use of
/// [`info`](Self::info), which the tracker's reply path never needs: it splices the JSON.
#[derive(Clone, Debug)]
pub struct StoredPeer {
    id: PeerId,
    locality: Locality,
    role: Role,
    upload_kbps: u32,
    json: Box<str>,
    info: OnceLock<PeerInfo>,
    key_hash: Option<[u8; 32]>,
}

impl PartialEq for StoredPeer {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
            && self.locality == other.locality
            && self.role == other.role
            && self.upload_kbps == other.upload_kbps
            && self.json == other.json
            && self.key_hash == other.key_hash
    }
}

impl Eq for StoredPeer {}

/// The ranking fields of a [`PeerJson`], borrowed; the addresses are only checked to be JSON.
#[derive(Deserialize)]
struct PeerHead<'a> {
    #[serde(borrow)]
    peer: Cow<'a, str>,
    #[allow(dead_code)]
    addrs: serde::de::IgnoredAny,
    #[serde(default, borrow)]
    site: Option<Cow<'a, str>>,
    #[serde(default)]
    asn: Option<u32>,
    #[serde(default, borrow)]
    country: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    role: Option<Cow<'a, str>>,
    #[serde(default)]
    upload_kbps: u32,
}

impl StoredPeer {
    /// Wraps `info`, making its JSON form ([`PeerJson`]).
    pub fn new(info: PeerInfo) -> Self {
        let json = serde_json::to_string(&PeerJson::from_info(&info))
            .unwrap_or_else(|_| String::from("{}"))
            .into_boxed_str();
        StoredPeer {
            id: info.id,
            locality: info.locality.clone(),
            role: info.role,
            upload_kbps: info.upload_kbps,
            json,
            info: OnceLock::from(info),
            key_hash: None,
        }
    }

    /// This peer with the hash of its leave key (see the tracker's `leave_key`): stored beside
    /// it, never in its JSON.
    pub fn with_key_hash(mut self, hash: Option<[u8; 32]>) -> Self {
        self.key_hash = hash;
        self
    }

    /// The BLAKE3 hash of the secret the announcer must present to re-announce or leave, if any.
    pub fn key_hash(&self) -> Option<&[u8; 32]> {
        self.key_hash.as_ref()
    }

    /// Reads a stored JSON form: checks it is a JSON object and parses (and checks) the fields
    /// ranking needs; the addresses wait until [`info`](Self::info) asks for them.
    pub fn from_json(json: &str) -> Result<Self, String> {
        Self::from_json_string(json.to_owned())
    }

    /// [`from_json`](Self::from_json), keeping `json`'s buffer.
    pub fn from_json_string(json: String) -> Result<Self, String> {
        let head: PeerHead<'_> = serde_json::from_str(&json).map_err(|e| e.to_string())?;
        let id: PeerId = head.peer.parse().map_err(|e| format!("peer: {e}"))?;
        if let Some(s) = &head.site {
            check_site(s)?;
        }
        let locality = Locality {
            asn: head.asn,
            site: head.site.as_deref().map(str::to_owned),
            country: head.country.as_deref().map(parse_country).transpose()?,
        };
        let role = match head.role.as_deref() {
            Some(r) => parse_role(r)?,
            None => Role::default(),
        };
        let upload_kbps = head.upload_kbps;
        drop(head);
        Ok(StoredPeer {
            id,
            locality,
            role,
            upload_kbps,
            json: json.into_boxed_str(),
            info: OnceLock::new(),
            key_hash: None,
        })
    }

    /// Assembles a peer read back from a store that keeps the ranking fields beside the JSON
    /// (which must be a [`PeerJson`] of the same peer; its addresses are parsed on first
    /// [`info`](Self::info)).
    #[cfg(feature = "redis")]
    pub(crate) fn from_parts(
        id: PeerId,
        locality: Locality,
        role: Role,
        upload_kbps: u32,
        json: Box<str>,
    ) -> Self {
        StoredPeer {
            id,
            locality,
            role,
            upload_kbps,
            json,
            info: OnceLock::new(),
            key_hash: None,
        }
    }

    /// Its id.
    pub fn id(&self) -> PeerId {
        self.id
    }

    /// Its locality.
    pub fn locality(&self) -> &Locality {
        &self.locality
    }

    /// Its role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Its upload capacity, kbit/s.
    pub fn upload_kbps(&self) -> u32 {
        self.upload_kbps
    }

    /// The peer. For a peer read back from a store, parsed from its JSON on first use; should its
    /// addresses not parse (a store written by someone else), it has none.
    pub fn info(&self) -> &PeerInfo {
        self.info.get_or_init(|| {
            let addrs = serde_json::from_str::<PeerJson>(&self.json)
                .map_err(|e| e.to_string())
                .and_then(|j| j.to_info())
                .map(|i| i.addrs)
                .unwrap_or_default();
            PeerInfo {
                id: self.id,
                addrs,
                locality: self.locality.clone(),
                role: self.role,
                upload_kbps: self.upload_kbps,
            }
        })
    }

    /// Its JSON form, a [`PeerJson`] object.
    pub fn json(&self) -> &str {
        &self.json
    }
}

impl std::ops::Deref for StoredPeer {
    type Target = PeerInfo;
    fn deref(&self) -> &PeerInfo {
        self.info()
    }
}

/// Live peers of one site of a swarm, and how many of them are listed as supernodes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SiteCount {
    /// Live peers of the site.
    pub peers: u64,
    /// Of those, the supernodes.
    pub supernodes: u64,
}

impl SiteCount {
    /// The count of peers with these roles.
    pub fn of_roles(roles: impl IntoIterator<Item = Role>) -> Self {
        roles
            .into_iter()
            .fold(SiteCount::default(), |c, role| SiteCount {
                peers: c.peers + 1,
                supernodes: c.supernodes + u64::from(role == Role::Supernode),
            })
    }
}

/// Storage of swarms behind the tracker: peers with an expiry, per content.
///
/// Times are milliseconds since the Unix epoch, passed in (the tracker reads the clock) so tests
/// control them. An entry is live while `now_ms < expires_ms`; a store never returns an entry
/// that is not live, and forgets expired entries lazily (the tracker also calls
/// [`sweep`](Self::sweep) every TTL).
///
/// [`sample`](Self::sample) feeds the tracker's locality ranking, so a store must find same-site
/// and same-AS peers even in a large swarm where a uniform sample would miss them: it returns
/// - up to `per_tier` live peers of `near`'s site (when `near` has one),
/// - then, while it has fewer than `per_tier` in all, up to `per_tier` of `near`'s AS,
/// - then up to `per_tier` from the whole swarm while it still has fewer than `per_tier`, and
///   otherwise up to [`far_share`](hive_core::ranking::far_share)`(per_tier)` (so that the
///   ranking can keep a quarter of a reply for peers beyond a big site or AS),
///
/// each tier a uniform random choice among its live members, with no peer twice. (The whole
/// swarm's draw skips nearer peers in the memory store; Redis draws from all ids, so a nearer
/// peer not drawn before may come from it.) The result may
/// hold the asking peer itself; the tracker removes it. The conformance suite in
/// [`testkit`](crate::testkit) checks all of this.
#[async_trait]
pub trait TrackerStore: Send + Sync + 'static {
    /// A short name for logs and metrics (`memory`, `redis`).
    fn name(&self) -> &'static str;

    /// Inserts or refreshes `peer` (with the locality the tracker assigned) in `content`'s swarm,
    /// live until `expires_ms`.
    async fn upsert(
        &self,
        content: ContentId,
        peer: &Arc<StoredPeer>,
        now_ms: u64,
        expires_ms: u64,
    ) -> Result<(), StoreError>;

    /// Removes `peer` from `content`'s swarm; whether it was there (and live).
    async fn remove(
        &self,
        content: ContentId,
        peer: PeerId,
        now_ms: u64,
    ) -> Result<bool, StoreError>;

    /// The live entry of `peer` in `content`'s swarm, if any (with its
    /// [`key_hash`](StoredPeer::key_hash)).
    async fn get(
        &self,
        content: ContentId,
        peer: PeerId,
        now_ms: u64,
    ) -> Result<Option<Arc<StoredPeer>>, StoreError>;

    /// Candidates near `near`, tier by tier (see the trait docs).
    async fn sample(
        &self,
        content: ContentId,
        near: &Locality,
        per_tier: usize,
        now_ms: u64,
    ) -> Result<Vec<Arc<StoredPeer>>, StoreError>;

    /// [`upsert`](Self::upsert) then [`sample`](Self::sample) around the peer's own locality: one
    /// announce. Stores override it to do both in one round trip.
    async fn announce(
        &self,
        content: ContentId,
        peer: &Arc<StoredPeer>,
        now_ms: u64,
        expires_ms: u64,
        per_tier: usize,
    ) -> Result<Vec<Arc<StoredPeer>>, StoreError> {
        self.upsert(content, peer, now_ms, expires_ms).await?;
        self.sample(content, &peer.locality, per_tier, now_ms).await
    }

    /// How many live peers of `content`'s swarm other than `except` are at `site`, and how many
    /// of them are supernodes (the tracker's [`SupernodePlan`](super::SupernodePlan) asks before
    /// each announce of an ordinary peer, `except` being the announcer). The default counts a
    /// [`sample`](Self::sample) of up to 1000 of the site's peers, so it is exact for sites up
    /// to that size; stores override it.
    async fn site_count(
        &self,
        content: ContentId,
        site: &str,
        except: PeerId,
        now_ms: u64,
    ) -> Result<SiteCount, StoreError> {
        let near = Locality {
            site: Some(site.to_owned()),
            ..Locality::default()
        };
        let peers = self.sample(content, &near, 1000, now_ms).await?;
        Ok(SiteCount::of_roles(
            peers
                .iter()
                .filter(|p| p.locality().site.as_deref() == Some(site) && p.id() != except)
                .map(|p| p.role()),
        ))
    }

    /// Up to `max` live supernodes of `content`'s swarm at `site`, in random order (the tracker
    /// adds the gateway site's to the replies of other sites' supernodes, which fetch through
    /// them). The default draws from a [`sample`](Self::sample) of up to 1000 of the site's
    /// peers; stores override it.
    async fn site_supernodes(
        &self,
        content: ContentId,
        site: &str,
        max: usize,
        now_ms: u64,
    ) -> Result<Vec<Arc<StoredPeer>>, StoreError> {
        let near = Locality {
            site: Some(site.to_owned()),
            ..Locality::default()
        };
        let mut peers = self.sample(content, &near, 1000, now_ms).await?;
        peers.retain(|p| p.locality().site.as_deref() == Some(site) && p.role() == Role::Supernode);
        peers.truncate(max);
        Ok(peers)
    }

    /// Live peers in all swarms (for `/metrics`; may be approximate or slow on big stores).
    async fn peer_count(&self, now_ms: u64) -> Result<u64, StoreError>;

    /// Forgets expired entries; how many. The default does nothing (for stores that expire by
    /// themselves).
    async fn sweep(&self, now_ms: u64) -> Result<u64, StoreError> {
        let _ = now_ms;
        Ok(0)
    }
}
