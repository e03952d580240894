//! How an agent finds peers and gets admitted: the [`Discovery`] and [`Admission`] plug-ins
//! (a tracker and a registrar over HTTP in [`crate::services`], or your own), and the
//! per-stream task that announces periodically.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use hive_core::{ContentId, Locality, PeerId, PeerInfo};
use tokio::sync::mpsc;

use crate::engine::Cmd;

/// What an announce returned.
#[derive(Clone, Debug, Default)]
pub struct Announced {
    /// Peers to consider, best first.
    pub peers: Vec<PeerInfo>,
    /// When to announce again.
    pub interval: Duration,
    /// Where the service placed this agent, if it knows better than the agent.
    pub locality: Option<Locality>,
}

/// Finds peers for a stream (a tracker, a DHT, a static list).
#[async_trait]
pub trait Discovery: Send + Sync + std::fmt::Debug {
    /// Tells the service this agent watches `content`, and asks for peers.
    async fn announce(
        &self,
        content: ContentId,
        me: &PeerInfo,
        token: Option<&Bytes>,
    ) -> Result<Announced, String>;

    /// Tells the service this agent left `content`.
    async fn leave(&self, content: ContentId, me: PeerId);
}

/// Obtains admission tokens (a registrar).
#[async_trait]
pub trait Admission: Send + Sync + std::fmt::Debug {
    /// A token binding `me` to `content`, and its expiry (Unix seconds).
    async fn token(&self, content: ContentId, me: PeerId) -> Result<(Bytes, u64), String>;
}

/// Checks a peer's admission token: `(token, peer, content) -> valid`.
pub type TokenCheck = Arc<dyn Fn(&[u8], PeerId, ContentId) -> bool + Send + Sync>;

/// The per-stream task: fetch a token (if admission is configured), then announce at the
/// interval the service asks for, backing off on errors.
pub(crate) async fn announce_loop(
    content: ContentId,
    me: PeerInfo,
    discovery: Option<Arc<dyn Discovery>>,
    admission: Option<Arc<dyn Admission>>,
    engine: mpsc::UnboundedSender<Cmd>,
) {
    let mut token: Option<Bytes> = None;
    let mut token_expiry = 0u64;
    let mut backoff = Duration::from_secs(1);
    loop {
        let unix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        if let Some(a) = &admission
            && (token.is_none() || token_expiry <= unix + 60)
        {
            match a.token(content, me.id).await {
                Ok((t, exp)) => {
                    token = Some(t.clone());
                    token_expiry = exp;
                    if engine.send(Cmd::Token { content, token: t }).is_err() {
                        return;
                    }
                }
                Err(e) => tracing::warn!(error = %e, "registrar: no admission token"),
            }
        }
        let Some(d) = &discovery else {
            // Only admission: renew before expiry.
            tokio::time::sleep(Duration::from_secs(
                token_expiry
                    .saturating_sub(unix)
                    .saturating_sub(60)
                    .clamp(5, 3600),
            ))
            .await;
            continue;
        };
        let wait = match d.announce(content, &me, token.as_ref()).await {
            Ok(a) => {
                backoff = Duration::from_secs(1);
                if let Some(l) = a.locality
                    && engine.send(Cmd::Locality(l)).is_err()
                {
                    return;
                }
                if engine
                    .send(Cmd::Candidates {
                        content: Some(content),
                        peers: a.peers,
                    })
                    .is_err()
                {
                    return;
                }
                a.interval
                    .clamp(Duration::from_secs(1), Duration::from_secs(300))
            }
            Err(e) => {
                tracing::warn!(error = %e, "tracker announce failed");
                backoff = (backoff * 2).min(Duration::from_secs(60));
                backoff
            }
        };
        tokio::time::sleep(wait).await;
    }
}
