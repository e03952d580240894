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

/// Now, as a duration since the Unix epoch (tokens' expiries are Unix seconds).
fn unix_now() -> Duration {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
}

/// When a token obtained at `now` (since the Unix epoch) and expiring at `expiry` (Unix
/// seconds) is renewed: a third of its life before it expires, at most a minute before.
/// Neighbours check tokens again as they expire, so the renewed one must reach them first.
pub(crate) fn renew_at(now: Duration, expiry: u64) -> Duration {
    let expiry = Duration::from_secs(expiry);
    let margin = (expiry.saturating_sub(now) / 3).min(Duration::from_secs(60));
    expiry.saturating_sub(margin)
}

/// The per-stream task: fetch a token (if admission is configured) and renew it before it
/// expires, and announce at the interval the service asks for, backing off on errors.
pub(crate) async fn announce_loop(
    content: ContentId,
    mut me: PeerInfo,
    discovery: Option<Arc<dyn Discovery>>,
    admission: Option<Arc<dyn Admission>>,
    engine: mpsc::Sender<Cmd>,
) {
    let mut token: Option<Bytes> = None;
    // When the token is next asked for (since the Unix epoch).
    let mut renew = Duration::ZERO;
    let mut token_backoff = Duration::from_secs(1);
    let mut backoff = Duration::from_secs(1);
    // When the next announce is due (tokio's time, as the sleeps).
    let mut announce_at = tokio::time::Instant::now();
    loop {
        let now = unix_now();
        if let Some(a) = &admission
            && now >= renew
        {
            match a.token(content, me.id).await {
                Ok((t, exp)) => {
                    token = Some(t.clone());
                    token_backoff = Duration::from_secs(1);
                    renew = renew_at(unix_now(), exp);
                    // The engine presents it: in the transport's later handshakes, and in a
                    // Hello re-sent to every neighbour.
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
                Err(e) => {
                    tracing::warn!(error = %e, "registrar: no admission token");
                    renew = unix_now() + token_backoff;
                    token_backoff = (token_backoff * 2).min(Duration::from_secs(60));
                }
            }
        }
        // Asleep no longer than until the token's renewal.
        let until_renew = || {
            if admission.is_some() {
                renew
                    .saturating_sub(unix_now())
                    .max(Duration::from_millis(100))
            } else {
                Duration::MAX
            }
        };
        let Some(d) = &discovery else {
            // Only admission: renew before expiry.
            tokio::time::sleep(until_renew().min(Duration::from_secs(3600))).await;
            continue;
        };
        if tokio::time::Instant::now() < announce_at {
            // Woken to renew the token only.
            let wait = announce_at.saturating_duration_since(tokio::time::Instant::now());
            tokio::time::sleep(wait.min(until_renew())).await;
            continue;
        }
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
        announce_at = tokio::time::Instant::now() + wait;
        tokio::time::sleep(wait.min(until_renew())).await;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_renewed_a_third_of_their_life_before_expiry_at_most_a_minute() {
        let now = Duration::from_secs(1_000);
        // An hour's token: a minute before.
        assert_eq!(renew_at(now, 4_600), Duration::from_secs(4_540));
        // Three seconds: one second before.
        assert_eq!(renew_at(now, 1_003), Duration::from_secs(1_002));
        // Already expired: at once.
        assert_eq!(renew_at(now, 900), Duration::from_secs(900));
        assert!(renew_at(now, 900) <= now);
    }
}
