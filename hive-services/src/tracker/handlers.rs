//! The tracker's HTTP handlers and counters.

use std::fmt::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use hive_core::{ContentId, Locality, PeerId, Role};
use serde::Deserialize;

use super::api::{AnnounceRequest, LeaveRequest};
use super::sample::rank;
use super::{StoredPeer, Tracker};
use crate::http::{ApiError, MAX_BODY, Observed, b64_decode, now_unix_ms, parse_json};

/// Request and error counters for `/metrics`.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    announces: AtomicU64,
    leaves: AtomicU64,
    peer_queries: AtomicU64,
    peers_returned: AtomicU64,
    promotions: AtomicU64,
    rejected_bad_request: AtomicU64,
    rejected_forbidden: AtomicU64,
    rejected_store: AtomicU64,
    store_errors: AtomicU64,
}

/// Gateway-site supernodes added to the reply of a supernode of another site.
const UPLINK_CANDIDATES: usize = 10;

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

pub(crate) fn router(t: Arc<Tracker>) -> Router {
    Router::new()
        .route("/v1/announce", post(announce))
        .route("/v1/leave", post(leave))
        .route("/v1/peers", get(peers))
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok" }))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(t)
}

/// Counts a refusal by its kind, and passes it on.
fn count(t: &Tracker, e: ApiError) -> ApiError {
    use axum::http::StatusCode;
    match e.status {
        StatusCode::BAD_REQUEST => bump(&t.metrics.rejected_bad_request),
        StatusCode::FORBIDDEN => bump(&t.metrics.rejected_forbidden),
        _ => bump(&t.metrics.rejected_store),
    }
    e
}

fn store_error(t: &Tracker, e: super::StoreError) -> ApiError {
    bump(&t.metrics.store_errors);
    tracing::warn!("tracker store: {e}");
    ApiError::unavailable(format!("store unavailable: {e}"))
}

/// Checks the token when the tracker requires one.
fn admit(
    t: &Tracker,
    token: Option<&str>,
    peer: PeerId,
    content: ContentId,
) -> Result<(), ApiError> {
    let Some(v) = &t.cfg.verifier else {
        return Ok(());
    };
    let token =
        token.ok_or_else(|| ApiError::forbidden("this tracker requires a registrar token"))?;
    let bytes = b64_decode(token).map_err(|e| ApiError::forbidden(format!("token: {e}")))?;
    v.verify(&bytes, peer, content, now_unix_ms() / 1000)
        .map(drop)
        .map_err(|e| ApiError::forbidden(format!("token refused: {e}")))
}

async fn announce(State(t): State<Arc<Tracker>>, Observed(obs): Observed, body: Bytes) -> Response {
    match do_announce(&t, obs, &body).await {
        Ok(r) => json_response(r),
        Err(e) => count(&t, e).into_response(),
    }
}

async fn do_announce(
    t: &Tracker,
    obs: Option<std::net::SocketAddr>,
    body: &[u8],
) -> Result<String, ApiError> {
    let req: AnnounceRequest = parse_json(body)?;
    let ip = obs.map(|a| a.ip());
    let (content, mut info) = req.parse(ip).map_err(ApiError::bad_request)?;
    admit(t, req.token.as_deref(), info.id, content)?;
    info.locality = t.cfg.locality_table.assign(ip, &info.locality);
    let want = match req.want {
        None | Some(0) => t.cfg.max_reply,
        Some(w) => w.min(t.cfg.max_reply),
    };
    let now = now_unix_ms();
    if let (Some(plan), Some(site), Role::Peer) =
        (&t.cfg.supernodes, &info.locality.site, info.role)
    {
        let count = t
            .store
            .site_count(content, site, info.id, now)
            .await
            .map_err(|e| store_error(t, e))?;
        // The others, and the announcer.
        if count.supernodes < plan.wanted(site, count.peers + 1) {
            info.role = Role::Supernode;
            bump(&t.metrics.promotions);
        }
    }
    let expires = now.saturating_add(t.cfg.ttl.as_millis() as u64);
    // Twice the reply in candidates, so the weighting within a tier has something to choose from.
    let info = Arc::new(StoredPeer::new(info));
    let candidates = t
        .store
        .announce(content, &info, now, expires, want.saturating_mul(2))
        .await
        .map_err(|e| store_error(t, e))?;
    let mut peers = rank(candidates, Some(info.id), &info.locality, want);
    let mut interval = t.interval_for(peers.len());
    // A supernode away from the gateway site fetches through the gateway site's supernodes:
    // they are in its reply even when its own site fills the sample; while there are none
    // (it came before anyone at the gateway site), it is told to come back soon.
    if let (Some(plan), Some(site), Role::Supernode) =
        (&t.cfg.supernodes, &info.locality.site, info.role())
        && let Some(gateway) = plan.gateway_site.as_deref().filter(|g| *g != site.as_str())
    {
        let mut ups = t
            .store
            .site_supernodes(content, gateway, UPLINK_CANDIDATES.min(want), now)
            .await
            .map_err(|e| store_error(t, e))?;
        ups.retain(|u| u.id() != info.id() && !peers.iter().any(|p| p.id() == u.id()));
        let none = ups.is_empty()
            && !peers.iter().any(|p| {
                p.role() == Role::Supernode && p.locality().site.as_deref() == Some(gateway)
            });
        peers.truncate(want.saturating_sub(ups.len()));
        peers.extend(ups);
        if none {
            interval = interval.min(super::UPLINK_WAIT_INTERVAL);
        }
    }
    bump(&t.metrics.announces);
    t.metrics
        .peers_returned
        .fetch_add(peers.len() as u64, Ordering::Relaxed);
    let loc = &info.locality;
    // An AnnounceResponse, written by hand around the peers' stored JSON (the hot path).
    let tail = serde_json::json!({
        "interval_s": interval.as_secs_f64(),
        "role": super::api::role_name(info.role()),
        "observed_addr": obs.map(|a| a.to_string()),
        "site": loc.site,
        "asn": loc.asn,
        "country": loc.country.map(super::api::country_text),
    });
    Ok(peers_object(&peers, Some(&tail)))
}

/// `{"peers": [<stored JSON>, ...], <tail's fields>}`.
fn peers_object(peers: &[Arc<StoredPeer>], tail: Option<&serde_json::Value>) -> String {
    let mut s =
        String::with_capacity(160 + peers.iter().map(|p| p.json().len() + 1).sum::<usize>());
    s.push_str("{\"peers\":[");
    for (i, p) in peers.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(p.json());
    }
    s.push(']');
    match tail.map(|t| t.to_string()) {
        Some(t) if t.len() > 2 => {
            s.push(',');
            s.push_str(&t[1..]);
        }
        _ => s.push('}'),
    }
    s
}

fn json_response(body: String) -> Response {
    ([("content-type", "application/json")], body).into_response()
}

async fn leave(State(t): State<Arc<Tracker>>, body: Bytes) -> Response {
    let r = async {
        let req: LeaveRequest = parse_json(&body)?;
        let content: ContentId = req
            .content
            .parse()
            .map_err(|e| ApiError::bad_request(format!("content: {e}")))?;
        let peer: PeerId = req
            .peer
            .parse()
            .map_err(|e| ApiError::bad_request(format!("peer: {e}")))?;
        admit(&t, req.token.as_deref(), peer, content)?;
        let removed = t
            .store
            .remove(content, peer, now_unix_ms())
            .await
            .map_err(|e| store_error(&t, e))?;
        bump(&t.metrics.leaves);
        Ok::<_, ApiError>(serde_json::json!({ "removed": removed }))
    }
    .await;
    match r {
        Ok(v) => axum::Json(v).into_response(),
        Err(e) => count(&t, e).into_response(),
    }
}

/// `GET /v1/peers` query.
#[derive(Debug, Deserialize)]
struct PeersQuery {
    content: String,
    #[serde(default)]
    limit: Option<usize>,
}

async fn peers(
    State(t): State<Arc<Tracker>>,
    Observed(obs): Observed,
    q: Result<Query<PeersQuery>, QueryRejection>,
) -> Response {
    let r = async {
        let Query(q) = q.map_err(|e| ApiError::bad_request(e.body_text()))?;
        let content: ContentId = q
            .content
            .parse()
            .map_err(|e| ApiError::bad_request(format!("content: {e}")))?;
        let limit = match q.limit {
            None | Some(0) => t.cfg.max_reply,
            Some(l) => l.min(t.cfg.max_reply),
        };
        let near = t
            .cfg
            .locality_table
            .assign(obs.map(|a| a.ip()), &Locality::default());
        let candidates = t
            .store
            .sample(content, &near, limit.saturating_mul(2), now_unix_ms())
            .await
            .map_err(|e| store_error(&t, e))?;
        bump(&t.metrics.peer_queries);
        let peers = rank(candidates, None, &near, limit);
        Ok::<_, ApiError>(peers_object(&peers, None))
    }
    .await;
    match r {
        Ok(v) => json_response(v),
        Err(e) => count(&t, e).into_response(),
    }
}

async fn metrics(State(t): State<Arc<Tracker>>) -> Response {
    let m = &t.metrics;
    let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
    let stored = match t.store.peer_count(now_unix_ms()).await {
        Ok(n) => Some(n),
        Err(e) => {
            store_error(&t, e);
            None
        }
    };
    let store = t.store.name();
    let mut s = String::new();
    let mut counter = |name: &str, help: &str, samples: &[(&str, u64)]| {
        let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} counter");
        for (labels, v) in samples {
            let _ = writeln!(s, "{name}{labels} {v}");
        }
    };
    counter(
        "hive_tracker_announces_total",
        "Announces answered.",
        &[("", load(&m.announces))],
    );
    counter(
        "hive_tracker_leaves_total",
        "Leaves handled.",
        &[("", load(&m.leaves))],
    );
    counter(
        "hive_tracker_peer_queries_total",
        "GET /v1/peers answered.",
        &[("", load(&m.peer_queries))],
    );
    counter(
        "hive_tracker_peers_returned_total",
        "Peers handed out in announce replies.",
        &[("", load(&m.peers_returned))],
    );
    counter(
        "hive_tracker_promotions_total",
        "Announcing peers listed as supernodes by the tracker's supernode plan.",
        &[("", load(&m.promotions))],
    );
    counter(
        "hive_tracker_rejects_total",
        "Requests refused, by reason.",
        &[
            ("{reason=\"bad_request\"}", load(&m.rejected_bad_request)),
            ("{reason=\"forbidden\"}", load(&m.rejected_forbidden)),
            ("{reason=\"store\"}", load(&m.rejected_store)),
        ],
    );
    let label = format!("{{store=\"{store}\"}}");
    counter(
        "hive_tracker_store_errors_total",
        "Store operations that failed.",
        &[(&label, load(&m.store_errors))],
    );
    if let Some(n) = stored {
        let _ = writeln!(
            s,
            "# HELP hive_tracker_peers_stored Live peer entries in the store, all swarms.\n\
             # TYPE hive_tracker_peers_stored gauge\nhive_tracker_peers_stored{label} {n}"
        );
    }
    (
        [("content-type", "text/plain; version=0.0.4; charset=utf-8")],
        s,
    )
        .into_response()
}
