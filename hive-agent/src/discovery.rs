//! How an agent finds peers and gets admitted: the [`Discovery`] and [`Admission`] plug-ins
//! (contracts of hive-core; a tracker and a registrar over HTTP in [`crate::services`], or your
//! own), and the per-stream task that announces periodically.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use hive_core::{ContentId, PeerId, PeerInfo};
use tokio::sync::mpsc;

use crate::engine::Cmd;

pub use hive_core::discovery::{Admission, Announced, Discovery, ServiceError, TokenCheck};

/// The per-stream task: fetch a token (if admission is configured), then announce at the
/// interval the service asks for, backing off on errors.
pub(crate) async fn announce_loop(
    content: ContentId,
    mut me: PeerInfo,
    discovery: Option<Arc<dyn Discovery>>,
    admission: Option<Arc<dyn Admission>>,
    engine: mpsc::Sender<Cmd>,
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
                    if engine
                        .send(Cmd::Swarm {
                            content,
                            input: hive_overlay::Input::Token(t),
                        })
                        .await
                        .is_err()
                    {
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
                    && engine.send(Cmd::Locality(l)).await.is_err()
                {
                    return;
                }
                if let Some(role) = a.role
                    && me.role.takes(role)
                {
                    // Announce with it from now on, so the service counts it.
                    me.role = role;
                    if engine
                        .send(Cmd::Swarm {
                            content,
                            input: hive_overlay::Input::Role(role),
                        })
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
                if engine
                    .send(Cmd::Candidates {
                        content: Some(content),
                        peers: a.peers,
                    })
                    .await
                    .is_err()
                {
                    return;
                }
                a.interval
                    .clamp(Duration::from_secs(1), Duration::from_secs(300))
            }
            Err(e) => {
                tracing::warn!(error = %e, "tracker announce failed");
                // Unreachable or busy: back off; refused or misconfigured: asking again soon
                // changes nothing, so wait the longest.
                backoff = if e.is_transient() {
                    (backoff * 2).min(Duration::from_secs(60))
                } else {
                    Duration::from_secs(60)
                };
                backoff
            }
        };
        tokio::time::sleep(wait).await;
    }
}

/// An in-process registry of peers: every agent of one process that shares it finds the
/// others (tests, `hive demo` without a tracker, an application embedding several agents).
/// Same-site peers come first, then same-AS, then the rest, each tier rotated per call so
/// that not everyone gets the same few.
#[derive(Debug, Default)]
pub struct MemoryDiscovery {
    peers: parking_lot::Mutex<std::collections::HashMap<ContentId, Vec<PeerInfo>>>,
    calls: std::sync::atomic::AtomicUsize,
    /// Most peers returned per announce (0: 30).
    pub want: usize,
    /// Announce interval told to agents (zero: 5 s).
    pub interval: Duration,
}

#[async_trait]
impl Discovery for MemoryDiscovery {
    async fn announce(
        &self,
        content: ContentId,
        me: &PeerInfo,
        _token: Option<&Bytes>,
    ) -> Result<Announced, ServiceError> {
        let want = if self.want == 0 { 30 } else { self.want };
        let turn = self
            .calls
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut map = self.peers.lock();
        let list = map.entry(content).or_default();
        match list.iter_mut().find(|p| p.id == me.id) {
            Some(p) => *p = me.clone(),
            None => list.push(me.clone()),
        }
        let mut tiers: [Vec<PeerInfo>; 3] = Default::default();
        for p in list.iter().filter(|p| p.id != me.id) {
            let d = me.locality.distance(&p.locality).min(2) as usize;
            tiers[d].push(p.clone());
        }
        let mut peers = Vec::with_capacity(want);
        for mut t in tiers {
            if !t.is_empty() {
                let k = turn % t.len();
                t.rotate_left(k);
            }
            peers.extend(t.into_iter().take(want - peers.len()));
        }
        Ok(Announced {
            peers,
            interval: if self.interval.is_zero() {
                Duration::from_secs(5)
            } else {
                self.interval
            },
            locality: None,
            role: None,
        })
    }

    async fn leave(&self, content: ContentId, me: PeerId) {
        if let Some(l) = self.peers.lock().get_mut(&content) {
            l.retain(|p| p.id != me);
        }
    }
}
