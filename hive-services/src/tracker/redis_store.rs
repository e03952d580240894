//! The Redis store: the way past one tracker machine.
//!
//! Key design (compatible with Redis Cluster: every key of a swarm carries the hash tag
//! `{<content hex>}`, so all of a swarm lives in one slot and one script touches one slot):
//!
//! | key | type | holds |
//! |---|---|---|
//! | `hive:{c}:all` | sorted set | peer id → expiry (unix ms) |
//! | `hive:{c}:info` | hash | peer id → the peer's JSON ([`PeerJson`]) |
//! | `hive:{c}:site:<site>` | sorted set | the site's peer ids → expiry |
//! | `hive:{c}:asn:<asn>` | sorted set | the AS's peer ids → expiry |
//!
//! An announce is **one round trip**: one `EVALSHA` of a Lua script (`announce.lua`, beside this
//! file) that forgets the swarm's expired entries (`ZRANGEBYSCORE` + `HDEL`/`ZREM`, at most 8000 a
//! call; `ZREMRANGEBYSCORE` on the announcer's site and AS sets),
//! upserts the peer, refreshes every key's lifetime (`PEXPIRE` 2 × TTL, so an abandoned swarm
//! vanishes by itself) and samples the tiers with `ZRANDMEMBER` + `HMGET`. Requests from all
//! handlers share one multiplexed, auto-reconnecting connection, so concurrent announces are
//! pipelined on the wire. Needs Redis ≥ 6.2 (`ZRANDMEMBER`).
//!
//! A leave removes the peer from `all` and `info`; its site and AS index entries stay until they
//! expire and are skipped meanwhile (their `info` entry is gone).

use std::sync::Arc;

use async_trait::async_trait;
use hive_core::{ContentId, Locality, PeerId};
use redis::aio::ConnectionManager;

use super::store::{StoreError, StoredPeer, TrackerStore};

const SCRIPT: &str = include_str!("announce.lua");
const NAME: &str = "redis";

/// The Redis [`TrackerStore`]; see the [module docs](self) for the key design.
#[derive(Clone)]
pub struct RedisStore {
    con: ConnectionManager,
    script: Arc<redis::Script>,
    /// Lifetime of a swarm's keys after its last announce, ms.
    key_lifetime_ms: u64,
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

impl RedisStore {
    /// Connects to `url` (`redis://host:port/db`), checking the server answers.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let client = redis::Client::open(url).map_err(backend)?;
        let mut con = client.get_connection_manager().await.map_err(backend)?;
        let _: String = redis::cmd("PING")
            .query_async(&mut con)
            .await
            .map_err(backend)?;
        Ok(RedisStore {
            con,
            script: Arc::new(redis::Script::new(SCRIPT)),
            key_lifetime_ms: 120_000,
        })
    }

    /// Sets how long a swarm's keys outlive its last announce (the tracker uses 2 × TTL).
    pub fn with_key_lifetime(mut self, lifetime: std::time::Duration) -> Self {
        self.key_lifetime_ms = (lifetime.as_millis() as u64).max(1000);
        self
    }

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
        let (id, blob) = match peer {
            Some(p) => (p.id.to_string(), p.json().to_owned()),
            None => (String::new(), String::new()),
        };
        let mut inv = self.script.prepare_invoke();
        inv.key(all)
            .key(info)
            .key(site)
            .key(asn)
            .arg(now_ms)
            .arg(if peer.is_some() { expires_ms.max(1) } else { 0 })
            .arg(id)
            .arg(blob)
            .arg(per_tier)
            .arg(if near.site.is_some() { "1" } else { "0" })
            .arg(if near.asn.is_some() { "1" } else { "0" })
            .arg(self.key_lifetime_ms);
        let mut con = self.con.clone();
        let blobs: Vec<Vec<u8>> = inv.invoke_async(&mut con).await.map_err(backend)?;
        blobs
            .iter()
            .map(|b| {
                std::str::from_utf8(b)
                    .map_err(|e| e.to_string())
                    .and_then(StoredPeer::from_json)
                    .map(Arc::new)
                    .map_err(|message| StoreError::Corrupt {
                        store: NAME,
                        message,
                    })
            })
            .collect()
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

    async fn remove(
        &self,
        content: ContentId,
        peer: PeerId,
        now_ms: u64,
    ) -> Result<bool, StoreError> {
        let [all, info, _, _] = keys(&content, &Locality::default());
        let id = peer.to_string();
        let mut con = self.con.clone();
        let (score, _, _): (Option<f64>, i64, i64) = redis::pipe()
            .cmd("ZSCORE")
            .arg(&all)
            .arg(&id)
            .cmd("ZREM")
            .arg(&all)
            .arg(&id)
            .cmd("HDEL")
            .arg(&info)
            .arg(&id)
            .query_async(&mut con)
            .await
            .map_err(backend)?;
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

    /// Counts by `SCAN`ning the swarms' `all` keys (at most 100 000 swarms) and `ZCOUNT`ing their
    /// live entries: fine for a metrics scrape, not for a hot path.
    async fn peer_count(&self, now_ms: u64) -> Result<u64, StoreError> {
        let mut con = self.con.clone();
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
