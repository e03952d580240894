//! The tracker's HTTP client, as agents use it.

use std::borrow::Cow;
use std::time::Duration;

use bytes::Bytes;
use hive_core::{ContentId, Locality, PeerId, PeerInfo};
use thiserror::Error;

use serde::Deserialize;

use super::api::{
    AnnounceRequest, LeaveRequest, addr_text, country_text, parse_country, parse_role,
    peer_from_parts, role_name,
};
use super::{Announce, AnnounceReply};
use crate::http::{b64_encode, error_message};

/// Errors of [`TrackerClient`].
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum TrackerError {
    /// The base URL does not parse.
    #[error("invalid tracker URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The request failed (connect, timeout, I/O).
    #[error("tracker request failed: {0}")]
    Http(#[from] reqwest::Error),
    /// The tracker answered with an error status: 400 bad request, 403 token refused, 503 store
    /// down.
    #[error("tracker answered {status}: {message}")]
    Status {
        /// HTTP status code.
        status: u16,
        /// The `error` message of the reply.
        message: String,
    },
    /// The reply does not parse.
    #[error("bad tracker reply: {0}")]
    Decode(String),
}

impl TrackerError {
    /// Whether the tracker refused the request's token (HTTP 403).
    pub fn is_forbidden(&self) -> bool {
        matches!(self, TrackerError::Status { status: 403, .. })
    }
}

/// Leave keys a client keeps, at most (one per swarm and peer it announces).
const MAX_KEYS: usize = 4096;

/// Talks to a tracker over HTTP/JSON. Cheap to clone: clones share one keep-alive connection
/// pool, and the leave keys.
///
/// The tracker gives each peer, on its first announce in a swarm, a secret `leave_key` that its
/// later announces and its leave must carry (so nobody else can take over or remove a listed
/// peer); the client keeps it per (content, peer) and presents it by itself.
#[derive(Clone, Debug)]
pub struct TrackerClient {
    http: reqwest::Client,
    keys:
        std::sync::Arc<parking_lot::Mutex<std::collections::HashMap<(ContentId, PeerId), String>>>,
    announce_url: reqwest::Url,
    leave_url: reqwest::Url,
    report_url: reqwest::Url,
    peers_url: reqwest::Url,
}

impl TrackerClient {
    /// A client for the tracker at `base_url` (e.g. `http://127.0.0.1:7070`).
    pub fn new(base_url: &str) -> Result<Self, TrackerError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .pool_idle_timeout(Duration::from_secs(90))
            .tcp_nodelay(true)
            .build()?;
        Self::with_client(base_url, http)
    }

    /// A client sharing an existing `reqwest::Client` (its pool, timeouts and TLS settings).
    pub fn with_client(base_url: &str, http: reqwest::Client) -> Result<Self, TrackerError> {
        let url = |path: &str| {
            let full = format!("{}/{path}", base_url.trim_end_matches('/'));
            reqwest::Url::parse(&full).map_err(|e| TrackerError::InvalidUrl {
                url: base_url.to_owned(),
                reason: e.to_string(),
            })
        };
        Ok(TrackerClient {
            http,
            keys: Default::default(),
            announce_url: url("v1/announce")?,
            leave_url: url("v1/leave")?,
            report_url: url("v1/report")?,
            peers_url: url("v1/peers")?,
        })
    }

    /// Announces a peer in a swarm; the reply holds a nearest-first sample of the swarm.
    pub async fn announce(&self, a: &Announce) -> Result<AnnounceReply, TrackerError> {
        let loc = &a.peer.locality;
        let req = AnnounceRequest {
            content: a.content.to_string(),
            peer: a.peer.id.to_string(),
            addrs: a.peer.addrs.iter().map(addr_text).collect(),
            site: loc.site.clone(),
            asn: loc.asn,
            country: loc.country.map(country_text),
            role: Some(role_name(a.peer.role).to_owned()),
            upload_kbps: a.peer.upload_kbps,
            token: a.token.as_deref().map(b64_encode),
            want: (a.want > 0).then_some(a.want),
            leave_key: self.keys.lock().get(&(a.content, a.peer.id)).cloned(),
        };
        let resp = self
            .http
            .post(self.announce_url.clone())
            .json(&req)
            .send()
            .await?;
        let body = body_of(resp).await?;
        let r: AnnounceRef<'_> =
            serde_json::from_slice(&body).map_err(|e| TrackerError::Decode(e.to_string()))?;
        let observed_addr = r
            .observed_addr
            .as_deref()
            .map(|s| {
                s.parse()
                    .map_err(|_| TrackerError::Decode(format!("observed_addr {s:?}")))
            })
            .transpose()?;
        let country = r
            .country
            .as_deref()
            .map(parse_country)
            .transpose()
            .map_err(TrackerError::Decode)?;
        let role = r
            .role
            .as_deref()
            .map(parse_role)
            .transpose()
            .map_err(TrackerError::Decode)?;
        if let Some(k) = r.leave_key.as_deref() {
            if k.len() > super::api::MAX_SECRET_TEXT {
                return Err(TrackerError::Decode("leave_key too long".into()));
            }
            let mut keys = self.keys.lock();
            if keys.len() >= MAX_KEYS && !keys.contains_key(&(a.content, a.peer.id)) {
                if let Some(victim) = keys.keys().next().copied() {
                    keys.remove(&victim);
                }
            }
            keys.insert((a.content, a.peer.id), k.to_owned());
        }
        Ok(AnnounceReply {
            role,
            peers: peers_from_json(r.peers)?,
            interval: Duration::try_from_secs_f64(r.interval_s)
                .map_err(|e| TrackerError::Decode(format!("interval_s: {e}")))?,
            observed_addr,
            locality: Locality {
                asn: r.asn,
                site: r.site.map(Cow::into_owned),
                country,
            },
        })
    }

    /// Removes a peer from a swarm (before the TTL would). Sends no token: on a tracker that
    /// requires tokens use [`leave_with_token`](Self::leave_with_token).
    pub async fn leave(&self, content: ContentId, peer: PeerId) -> Result<(), TrackerError> {
        self.leave_with_token(content, peer, None).await
    }

    /// [`leave`](Self::leave) with the peer's registrar token. Presents the peer's leave key
    /// (from its announces through this client), and forgets it once the leave succeeded.
    pub async fn leave_with_token(
        &self,
        content: ContentId,
        peer: PeerId,
        token: Option<&Bytes>,
    ) -> Result<(), TrackerError> {
        let req = LeaveRequest {
            content: content.to_string(),
            peer: peer.to_string(),
            token: token.map(|t| b64_encode(t)),
            leave_key: self.keys.lock().get(&(content, peer)).cloned(),
        };
        let resp = self
            .http
            .post(self.leave_url.clone())
            .json(&req)
            .send()
            .await?;
        body_of(resp).await?;
        self.keys.lock().remove(&(content, peer));
        Ok(())
    }

    /// Reports that `bad` served `peer` bytes of `content` failing a signed hash. `peer` must
    /// have announced through this client (its leave key proves it is the reporter). Returns
    /// whether the tracker now refuses `bad` in that swarm.
    pub async fn report(
        &self,
        content: ContentId,
        peer: PeerId,
        token: Option<&Bytes>,
        bad: PeerId,
    ) -> Result<bool, TrackerError> {
        let req = crate::tracker::api::ReportRequest {
            content: content.to_string(),
            peer: peer.to_string(),
            token: token.map(|t| b64_encode(t)),
            leave_key: self.keys.lock().get(&(content, peer)).cloned(),
            bad: bad.to_string(),
        };
        let resp = self
            .http
            .post(self.report_url.clone())
            .json(&req)
            .send()
            .await?;
        let body = body_of(resp).await?;
        Ok(serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.get("refused").and_then(|r| r.as_bool()))
            .unwrap_or(false))
    }

    /// A sample of up to `limit` peers of a swarm (0 = the tracker's maximum), without announcing.
    /// A tracker that requires tokens refuses it (403): use
    /// [`peers_with_token`](Self::peers_with_token).
    pub async fn peers(
        &self,
        content: ContentId,
        limit: usize,
    ) -> Result<Vec<PeerInfo>, TrackerError> {
        self.peers_query(content, limit, None).await
    }

    /// [`peers`](Self::peers), as `peer` with its registrar token for `content`.
    pub async fn peers_with_token(
        &self,
        content: ContentId,
        limit: usize,
        peer: PeerId,
        token: &Bytes,
    ) -> Result<Vec<PeerInfo>, TrackerError> {
        self.peers_query(content, limit, Some((peer, token))).await
    }

    async fn peers_query(
        &self,
        content: ContentId,
        limit: usize,
        auth: Option<(PeerId, &Bytes)>,
    ) -> Result<Vec<PeerInfo>, TrackerError> {
        let mut url = self.peers_url.clone();
        url.query_pairs_mut()
            .append_pair("content", &content.to_string())
            .append_pair("limit", &limit.to_string());
        if let Some((peer, token)) = auth {
            url.query_pairs_mut()
                .append_pair("peer", &peer.to_string())
                .append_pair("token", &b64_encode(token));
        }
        let resp = self.http.get(url).send().await?;
        let body = body_of(resp).await?;
        let r: PeersRef<'_> =
            serde_json::from_slice(&body).map_err(|e| TrackerError::Decode(e.to_string()))?;
        peers_from_json(r.peers)
    }
}

// Replies are read into borrowed views of the body (no String per field), then checked into
// PeerInfo by the same code that checks announces: the agent decodes a reply per announce.

/// A peer of a reply ([`PeerJson`](super::api::PeerJson)), borrowed from the body.
#[derive(Deserialize)]
struct PeerRef<'a> {
    #[serde(borrow)]
    peer: Cow<'a, str>,
    #[serde(borrow, default)]
    addrs: Vec<Cow<'a, str>>,
    #[serde(borrow, default)]
    site: Option<Cow<'a, str>>,
    #[serde(default)]
    asn: Option<u32>,
    #[serde(borrow, default)]
    country: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    role: Option<Cow<'a, str>>,
    #[serde(default)]
    upload_kbps: u32,
}

/// An [`AnnounceResponse`](super::api::AnnounceResponse), borrowed from the body.
#[derive(Deserialize)]
struct AnnounceRef<'a> {
    #[serde(borrow)]
    peers: Vec<PeerRef<'a>>,
    interval_s: f64,
    #[serde(borrow, default)]
    observed_addr: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    site: Option<Cow<'a, str>>,
    #[serde(default)]
    asn: Option<u32>,
    #[serde(borrow, default)]
    country: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    role: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    leave_key: Option<Cow<'a, str>>,
}

/// A [`PeersResponse`](super::api::PeersResponse), borrowed from the body.
#[derive(Deserialize)]
struct PeersRef<'a> {
    #[serde(borrow)]
    peers: Vec<PeerRef<'a>>,
}

fn peers_from_json(peers: Vec<PeerRef<'_>>) -> Result<Vec<PeerInfo>, TrackerError> {
    peers
        .iter()
        .map(|p| {
            peer_from_parts(
                &p.peer,
                &p.addrs,
                p.site.as_deref(),
                p.asn,
                p.country.as_deref(),
                p.role.as_deref(),
                p.upload_kbps,
                None,
            )
            .map_err(TrackerError::Decode)
        })
        .collect()
}

/// The body of a successful reply; an error status becomes [`TrackerError::Status`].
async fn body_of(resp: reqwest::Response) -> Result<bytes::Bytes, TrackerError> {
    let status = resp.status();
    let body = resp.bytes().await?;
    if !status.is_success() {
        return Err(TrackerError::Status {
            status: status.as_u16(),
            message: error_message(&body),
        });
    }
    Ok(body)
}
