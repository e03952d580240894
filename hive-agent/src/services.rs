//! Hive's own services as the agent's plug-ins: the tracker (`hive tracker`) as [`Discovery`],
//! the registrar (`hive registrar`) as [`Admission`], and a registrar's public key as the
//! [`TokenCheck`] peers' Hellos must pass.

use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;
use bytes::Bytes;
use hive_core::{ContentId, PeerId, PeerInfo};
use hive_services::registrar::{RegistrarClient, TokenVerifier};
use hive_services::tracker::{Announce, TrackerClient};

use crate::discovery::{Admission, Announced, Discovery, ServiceError, TokenCheck};
use crate::error::AgentError;

/// A tracker over HTTP.
#[derive(Debug, Clone)]
pub struct TrackerDiscovery {
    client: TrackerClient,
    want: usize,
    /// The token of each stream's last announce (a report presents it).
    tokens: Arc<parking_lot::Mutex<std::collections::HashMap<ContentId, Bytes>>>,
}

impl TrackerDiscovery {
    /// The tracker at `base_url` (e.g. `http://127.0.0.1:7070`), asked for `want` peers.
    pub fn new(base_url: &str, want: usize) -> Result<Self, AgentError> {
        let client = TrackerClient::new(base_url)
            .map_err(|e| AgentError::Config(format!("tracker URL {base_url}: {e}")))?;
        Ok(TrackerDiscovery {
            client,
            want,
            tokens: Default::default(),
        })
    }
}

#[async_trait]
impl Discovery for TrackerDiscovery {
    async fn announce(
        &self,
        content: ContentId,
        me: &PeerInfo,
        token: Option<&Bytes>,
    ) -> Result<Announced, ServiceError> {
        if let Some(t) = token {
            self.tokens.lock().insert(content, t.clone());
        }
        let reply = self
            .client
            .announce(&Announce {
                content,
                peer: me.clone(),
                token: token.cloned(),
                want: self.want,
            })
            .await
            .map_err(tracker_error)?;
        Ok(Announced {
            peers: reply.peers,
            interval: reply.interval,
            // The tracker's table of address ranges, else what the agent said: authoritative.
            locality: Some(reply.locality),
            role: reply.role,
        })
    }

    async fn report_bad_peer(&self, content: ContentId, me: PeerId, peer: PeerId) {
        let token = self.tokens.lock().get(&content).cloned();
        match self.client.report(content, me, token.as_ref(), peer).await {
            Ok(refused) => {
                tracing::info!(peer = %peer.short(), refused, "reported to the tracker");
            }
            Err(e) => tracing::debug!(error = %e, "report to the tracker failed"),
        }
    }

    async fn leave(&self, content: ContentId, me: PeerId) {
        self.tokens.lock().remove(&content);
        if let Err(e) = self.client.leave(content, me).await {
            tracing::debug!(error = %e, "tracker leave failed (the entry expires by TTL)");
        }
    }
}

/// A registrar over HTTP.
#[derive(Debug, Clone)]
pub struct RegistrarAdmission {
    client: RegistrarClient,
}

impl RegistrarAdmission {
    /// The registrar at `base_url`, presenting `enroll_secret` (if any) with each request.
    pub fn new(base_url: &str, enroll_secret: Option<String>) -> Result<Self, AgentError> {
        let mut client = RegistrarClient::new(base_url)
            .map_err(|e| AgentError::Config(format!("registrar URL {base_url}: {e}")))?;
        if let Some(s) = enroll_secret {
            client = client.with_enroll_secret(s);
        }
        Ok(RegistrarAdmission { client })
    }

    /// The registrar's public key as it gives it, as a [`TokenCheck`] for peers' Hellos. Only
    /// over HTTPS: over plain HTTP, pin the key instead ([`crate::AgentConfig::registrar_key`]).
    pub async fn token_check(&self) -> Result<TokenCheck, AgentError> {
        let key = self
            .client
            .public_key()
            .await
            .map_err(|e| AgentError::Config(format!("registrar key: {e}")))?;
        Ok(token_check(TokenVerifier::new(key)))
    }
}

#[async_trait]
impl Admission for RegistrarAdmission {
    async fn token(&self, content: ContentId, me: PeerId) -> Result<(Bytes, u64), ServiceError> {
        self.client
            .token(me, content)
            .await
            .map_err(registrar_error)
    }
}

fn tracker_error(e: hive_services::tracker::TrackerError) -> ServiceError {
    use hive_services::tracker::TrackerError as E;
    match e {
        E::Status { status, message } => ServiceError::from_status(status, message),
        E::Decode(m) => ServiceError::BadReply(m),
        E::Http(e) => ServiceError::Unreachable(e.to_string()),
        e => ServiceError::BadRequest(e.to_string()),
    }
}

fn registrar_error(e: hive_services::registrar::RegistrarError) -> ServiceError {
    use hive_services::registrar::RegistrarError as E;
    match e {
        E::Status { status, message } => ServiceError::from_status(status, message),
        E::Decode(m) => ServiceError::BadReply(m),
        E::Http(e) => ServiceError::Unreachable(e.to_string()),
        e => ServiceError::BadRequest(e.to_string()),
    }
}

/// Accept a peer only with a token `verifier` validates for that peer and content, now.
pub fn token_check(verifier: TokenVerifier) -> TokenCheck {
    let v = Arc::new(verifier);
    Arc::new(move |token: &[u8], peer: PeerId, content: ContentId| {
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        v.verify(token, peer, content, now).is_ok()
    })
}
