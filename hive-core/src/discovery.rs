//! How an agent finds peers and gets admitted: the [`Discovery`] and [`Admission`] plug-ins
//! (hive-agent's tracker and registrar clients over HTTP, an in-memory list for tests, or your
//! own: a DHT, a static list, an enterprise directory), beside the other plug-in contracts.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use thiserror::Error;

use crate::ids::{ContentId, Locality, PeerId, PeerInfo, Role};

/// What an announce returned.
#[derive(Clone, Debug, Default)]
pub struct Announced {
    /// Peers to consider, best first.
    pub peers: Vec<PeerInfo>,
    /// When to announce again.
    pub interval: Duration,
    /// Where the service placed this agent, if it knows better than the agent.
    pub locality: Option<Locality>,
    /// The role the service lists this agent with, if it assigns roles (a tracker with a
    /// supernode plan promotes ordinary peers to [`Role::Supernode`]). The agent adopts a
    /// promotion for this stream; it never becomes or stops being consume-only this way.
    pub role: Option<Role>,
}

/// Why a discovery or admission service did not answer as asked. The agent retries
/// [`ServiceError::Unreachable`] and [`ServiceError::Busy`] with back-off, and logs the others.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ServiceError {
    /// The service could not be reached (connection refused, time-out, I/O).
    #[error("service unreachable: {0}")]
    Unreachable(String),
    /// The service refused this agent (HTTP 401/403: no or bad token, not enrolled, reported).
    #[error("refused by the service: {0}")]
    Refused(String),
    /// The service is overloaded or rate-limits this agent (HTTP 429/503): try later.
    #[error("service busy: {0}")]
    Busy(String),
    /// The request was malformed for this service (HTTP 4xx other than the above), or the
    /// service's configuration is wrong.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// The reply could not be understood.
    #[error("bad reply from the service: {0}")]
    BadReply(String),
}

impl ServiceError {
    /// The error for an HTTP error status and the service's message.
    pub fn from_status(status: u16, message: impl Into<String>) -> Self {
        let m = format!("{status}: {}", message.into());
        match status {
            401 | 403 => ServiceError::Refused(m),
            429 | 502..=504 => ServiceError::Busy(m),
            400..=499 => ServiceError::BadRequest(m),
            _ => ServiceError::Unreachable(m),
        }
    }

    /// Whether asking again later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, ServiceError::Unreachable(_) | ServiceError::Busy(_))
    }
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
    ) -> Result<Announced, ServiceError>;

    /// Tells the service this agent left `content`.
    async fn leave(&self, content: ContentId, me: PeerId);

    /// Tells the service that `peer` served bytes of `content` that failed their trusted
    /// (signed) hash, so that it can stop introducing it. The default tells nobody.
    async fn report_bad_peer(&self, content: ContentId, me: PeerId, peer: PeerId) {
        let _ = (content, me, peer);
    }
}

/// Obtains admission tokens (a registrar).
#[async_trait]
pub trait Admission: Send + Sync + std::fmt::Debug {
    /// A token binding `me` to `content`, and its expiry (Unix seconds).
    async fn token(&self, content: ContentId, me: PeerId) -> Result<(Bytes, u64), ServiceError>;
}

/// Checks a peer's admission token: `(token, peer, content) -> valid`.
pub type TokenCheck = Arc<dyn Fn(&[u8], PeerId, ContentId) -> bool + Send + Sync>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_what_the_agent_does_next() {
        assert!(matches!(
            ServiceError::from_status(403, "token"),
            ServiceError::Refused(_)
        ));
        assert!(ServiceError::from_status(429, "slow down").is_transient());
        assert!(ServiceError::from_status(503, "store down").is_transient());
        assert!(!ServiceError::from_status(400, "bad").is_transient());
        assert!(ServiceError::from_status(500, "bug").is_transient());
        assert_eq!(
            ServiceError::from_status(404, "no").to_string(),
            "bad request: 404: no"
        );
    }
}
