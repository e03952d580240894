//! Where the tracker keeps its swarms: the [`TrackerStore`] contract.

use std::sync::Arc;

use async_trait::async_trait;
use hive_core::{ContentId, Locality, PeerId, PeerInfo};

use super::api::PeerJson;
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
    /// An entry read back from the backend does not parse.
    #[error("{store} store holds a corrupt entry: {message}")]
    Corrupt {
        /// The store's [`TrackerStore::name`].
        store: &'static str,
        /// What is wrong with it.
        message: String,
    },
}

/// A peer as stores hold it: its info (with the locality the tracker assigned) and its JSON form
/// as replies carry it, serialised once per announce rather than once per reply that lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredPeer {
    info: PeerInfo,
    json: Box<str>,
}

impl StoredPeer {
    /// Wraps `info`, making its JSON form ([`PeerJson`]).
    pub fn new(info: PeerInfo) -> Self {
        let json = serde_json::to_string(&PeerJson::from_info(&info))
            .unwrap_or_else(|_| String::from("{}"))
            .into_boxed_str();
        StoredPeer { info, json }
    }

    /// Parses (and checks) a stored JSON form.
    pub fn from_json(json: &str) -> Result<Self, String> {
        let info = serde_json::from_str::<PeerJson>(json)
            .map_err(|e| e.to_string())?
            .to_info()?;
        Ok(StoredPeer {
            info,
            json: json.into(),
        })
    }

    /// The peer.
    pub fn info(&self) -> &PeerInfo {
        &self.info
    }

    /// Its JSON form, a [`PeerJson`] object.
    pub fn json(&self) -> &str {
        &self.json
    }
}

impl std::ops::Deref for StoredPeer {
    type Target = PeerInfo;
    fn deref(&self) -> &PeerInfo {
        &self.info
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
/// - then, while it still has fewer than `per_tier`, up to `per_tier` from the whole swarm,
///
/// each tier a uniform random choice among its live members, with no peer twice. The result may
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

    /// Live peers in all swarms (for `/metrics`; may be approximate or slow on big stores).
    async fn peer_count(&self, now_ms: u64) -> Result<u64, StoreError>;

    /// Forgets expired entries; how many. The default does nothing (for stores that expire by
    /// themselves).
    async fn sweep(&self, now_ms: u64) -> Result<u64, StoreError> {
        let _ = now_ms;
        Ok(0)
    }
}
