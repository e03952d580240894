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

use super::api::MAX_SECRET_TEXT;
use super::api::{AnnounceRequest, LeaveRequest};
use super::sample::rank;
use super::{StoredPeer, Tracker};
use crate::http::{ApiError, MAX_BODY, Observed, b64_decode, b64_encode, now_unix_ms, parse_json};

/// Request and error counters for `/metrics`.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    announces: AtomicU64,
    leaves: AtomicU64,
    peer_queries: AtomicU64,
    peers_returned: AtomicU64,
    promotions: AtomicU64,
    roles_refused: AtomicU64,
    rejected_bad_request: AtomicU64,
    rejected_forbidden: AtomicU64,
    rejected_limit: AtomicU64,
    rejected_store: AtomicU64,
    store_errors: AtomicU64,
    reports: AtomicU64,
    refusals: AtomicU64,
}

use hive_core::ranking::UPLINK_CANDIDATES;

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

pub(crate) fn router(t: Arc<Tracker>) -> Router {
    Router::new()
        .route("/v1/announce", post(announce))
        .route("/v1/leave", post(leave))
        .route("/v1/report", post(report))
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
        StatusCode::TOO_MANY_REQUESTS => bump(&t.metrics.rejected_limit),
        _ => bump(&t.metrics.rejected_store),
    }
    e
}

fn store_error(t: &Tracker, e: super::StoreError) -> ApiError {
    if let super::StoreError::Full(m) = e {
        return ApiError::too_many(m);
    }
    bump(&t.metrics.store_errors);
    tracing::warn!("tracker store: {e}");
    ApiError::unavailable(format!("store unavailable: {e}"))
}

/// Takes a token from the source address's bucket (429 when empty).
fn limit(t: &Tracker, obs: Option<std::net::SocketAddr>) -> Result<(), ApiError> {
    match obs {
        Some(a) if !t.rate.allow(a.ip(), std::time::Instant::now()) => {
            Err(ApiError::too_many(format!(
                "too many requests from {}: at most {} a second (bursts of {})",
                a.ip(),
                t.cfg.rate_per_addr,
                t.cfg.rate_burst
            )))
        }
        _ => Ok(()),
    }
}

/// Refuses a token or leave key text over [`MAX_SECRET_TEXT`].
fn bounded<'a>(what: &str, text: Option<&'a str>) -> Result<Option<&'a str>, ApiError> {
    match text {
        Some(s) if s.len() > MAX_SECRET_TEXT => Err(ApiError::bad_request(format!(
            "{what} longer than {MAX_SECRET_TEXT} bytes"
        ))),
        other => Ok(other),
    }
}

/// A fresh leave key (32 random bytes, base64url) and its hash.
fn new_leave_key() -> Result<(String, [u8; 32]), ApiError> {
    let mut k = [0u8; 32];
    getrandom::fill(&mut k)
        .map_err(|e| ApiError::unavailable(format!("no randomness for a leave key: {e}")))?;
    Ok((b64_encode(&k), *blake3::hash(&k).as_bytes()))
}

/// Checks a presented leave key against the stored hash, in constant time.
fn check_leave_key(presented: Option<&str>, hash: &[u8; 32], peer: PeerId) -> Result<(), ApiError> {
    let Some(text) = presented else {
        return Err(ApiError::forbidden(format!(
            "peer {} is listed in this swarm: only the announcer may announce or leave as it (its leave_key is missing)",
            peer.short()
        )));
    };
    let bytes = b64_decode(text).map_err(|e| ApiError::forbidden(format!("leave_key: {e}")))?;
    // blake3::Hash compares in constant time.
    if blake3::hash(&bytes) == blake3::Hash::from_bytes(*hash) {
        Ok(())
    } else {
        Err(ApiError::forbidden(format!(
            "peer {}: wrong leave_key",
            peer.short()
        )))
    }
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
    limit(t, obs)?;
    let req: AnnounceRequest = parse_json(body)?;
    let ip = obs.map(|a| a.ip());
    let (content, mut info) = req.parse(ip).map_err(ApiError::bad_request)?;
    let token = bounded("token", req.token.as_deref())?;
    let presented = bounded("leave_key", req.leave_key.as_deref())?;
    admit(t, token, info.id, content)?;
    if t.reports.is_refused(content, info.id, now_unix_ms()) {
        return Err(ApiError::forbidden(
            "this peer is refused in this swarm: reported for serving bytes that fail a signed hash",
        ));
    }
    info.locality = t.cfg.locality_table.assign(ip, &info.locality);
    let want = match req.want {
        None | Some(0) => t.cfg.max_reply,
        Some(w) => w.min(t.cfg.max_reply),
    };
    let now = now_unix_ms();
    // A listed peer id is its announcer's: a re-announce must carry the leave key its first
    // announce was given (a race of two first announces leaves the later key stored; the other
    // announcer's next announce is then refused).
    let listed = t
        .store
        .get(content, info.id, now)
        .await
        .map_err(|e| store_error(t, e))?;
    let (key_hash, new_key) = match listed.as_ref().and_then(|p| p.key_hash().copied()) {
        Some(h) => {
            check_leave_key(presented, &h, info.id)?;
            (h, None)
        }
        None => {
            let (k, h) = new_leave_key()?;
            (h, Some(k))
        }
    };
    // A supernode or seeder role is believed when the tracker gave it (the listed entry holds
    // it: stored roles are only those believed) or the operator trusts this agent's word.
    if matches!(info.role, Role::Supernode | Role::Seeder)
        && !t.cfg.trusted_roles.trusts(&info.id)
        && listed.as_ref().map(|p| p.role()) != Some(info.role)
    {
        info.role = Role::Peer;
        bump(&t.metrics.roles_refused);
    }
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
    let info = Arc::new(StoredPeer::new(info).with_key_hash(Some(key_hash)));
    let candidates = t
        .store
        .announce(content, &info, now, expires, want.saturating_mul(2))
        .await
        .map_err(|e| store_error(t, e))?;
    let mut peers = rank(candidates, Some(info.id), &info.locality, want);
    let mut interval = t.interval_for(peers.len());
    // With a supernode plan, every agent of a site meets its site's supernodes (the hierarchy
    // fetches through them), even in a site larger than the reply; and a supernode away from
    // the gateway site fetches through the gateway site's supernodes: they are in its reply
    // even when its own site fills the sample. While there are none (it came before anyone at
    // the gateway site), it is told to come back soon.
    if let (Some(plan), Some(site)) = (&t.cfg.supernodes, &info.locality.site) {
        let max = UPLINK_CANDIDATES.min(want);
        let mut ups = t
            .store
            .site_supernodes(content, site, max, now)
            .await
            .map_err(|e| store_error(t, e))?;
        if info.role() == Role::Supernode
            && let Some(gateway) = plan.gateway_site.as_deref().filter(|g| *g != site.as_str())
        {
            let gw = t
                .store
                .site_supernodes(content, gateway, max, now)
                .await
                .map_err(|e| store_error(t, e))?;
            let none = gw.iter().all(|u| u.id() == info.id())
                && !peers.iter().any(|p| {
                    p.role() == Role::Supernode && p.locality().site.as_deref() == Some(gateway)
                });
            if none {
                interval = interval.min(super::UPLINK_WAIT_INTERVAL);
            }
            // The gateway site's first: a branch supernode's own site has it.
            ups = gw.into_iter().chain(ups).collect();
        }
        ups.retain(|u| u.id() != info.id());
        peers = hive_core::ranking::with_uplinks(peers, ups, want, |a, b| a.id() == b.id());
    }
    bump(&t.metrics.announces);
    t.metrics
        .peers_returned
        .fetch_add(peers.len() as u64, Ordering::Relaxed);
    let loc = &info.locality;
    // An AnnounceResponse, written by hand around the peers' stored JSON (the hot path).
    let mut tail = serde_json::json!({
        "interval_s": interval.as_secs_f64(),
        "role": super::api::role_name(info.role()),
        "observed_addr": obs.map(|a| a.to_string()),
        "site": loc.site,
        "asn": loc.asn,
        "country": loc.country.map(super::api::country_text),
    });
    if let (Some(k), Some(obj)) = (new_key, tail.as_object_mut()) {
        obj.insert("leave_key".into(), k.into());
    }
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

/// `POST /v1/report`: a listed peer accuses another of bytes failing a signed hash.
async fn report(State(t): State<Arc<Tracker>>, Observed(obs): Observed, body: Bytes) -> Response {
    let r = async {
        limit(&t, obs)?;
        let req: crate::tracker::api::ReportRequest = parse_json(&body)?;
        let id = |what: &str, text: &str| -> Result<PeerId, ApiError> {
            text.parse()
                .map_err(|e| ApiError::bad_request(format!("{what}: {e}")))
        };
        let content: ContentId = req
            .content
            .parse()
            .map_err(|e| ApiError::bad_request(format!("content: {e}")))?;
        let reporter = id("peer", &req.peer)?;
        let bad = id("bad", &req.bad)?;
        if bad == reporter {
            return Err(ApiError::bad_request("a peer cannot report itself"));
        }
        let token = bounded("token", req.token.as_deref())?;
        let presented = bounded("leave_key", req.leave_key.as_deref())?;
        admit(&t, token, reporter, content)?;
        let now = now_unix_ms();
        // Only a listed peer of that swarm, proving it announced as itself, may report.
        let listed = t
            .store
            .get(content, reporter, now)
            .await
            .map_err(|e| store_error(&t, e))?
            .ok_or_else(|| ApiError::forbidden("only a peer listed in this swarm may report"))?;
        match listed.key_hash() {
            Some(h) => check_leave_key(presented, h, reporter)?,
            None => return Err(ApiError::forbidden("the reporter has no leave key")),
        }
        bump(&t.metrics.reports);
        let until = now.saturating_add(t.cfg.refuse_for.as_millis().min(u128::from(u64::MAX)) as u64);
        let refused = t
            .reports
            .report(content, reporter, bad, t.cfg.refuse_after_reports, until);
        if refused {
            bump(&t.metrics.refusals);
            tracing::warn!(content = %content.short(), peer = %bad.short(), "peer refused: reported for bytes failing a signed hash");
            let _ = t.store.remove(content, bad, now).await;
        }
        Ok::<_, ApiError>(serde_json::json!({ "refused": refused }))
    }
    .await;
    match r {
        Ok(v) => axum::Json(v).into_response(),
        Err(e) => count(&t, e).into_response(),
    }
}

async fn leave(State(t): State<Arc<Tracker>>, Observed(obs): Observed, body: Bytes) -> Response {
    let r = async {
        limit(&t, obs)?;
        let req: LeaveRequest = parse_json(&body)?;
        let content: ContentId = req
            .content
            .parse()
            .map_err(|e| ApiError::bad_request(format!("content: {e}")))?;
        let peer: PeerId = req
            .peer
            .parse()
            .map_err(|e| ApiError::bad_request(format!("peer: {e}")))?;
        let token = bounded("token", req.token.as_deref())?;
        let presented = bounded("leave_key", req.leave_key.as_deref())?;
        admit(&t, token, peer, content)?;
        let now = now_unix_ms();
        let listed = t
            .store
            .get(content, peer, now)
            .await
            .map_err(|e| store_error(&t, e))?;
        let Some(listed) = listed else {
            bump(&t.metrics.leaves);
            return Ok(serde_json::json!({ "removed": false }));
        };
        if let Some(h) = listed.key_hash() {
            check_leave_key(presented, h, peer)?;
        }
        let removed = t
            .store
            .remove(content, peer, now)
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
    /// The asking peer and its registrar token for the content: required when the tracker
    /// requires tokens.
    #[serde(default)]
    peer: Option<String>,
    #[serde(default)]
    token: Option<String>,
}

async fn peers(
    State(t): State<Arc<Tracker>>,
    Observed(obs): Observed,
    q: Result<Query<PeersQuery>, QueryRejection>,
) -> Response {
    let r = async {
        limit(&t, obs)?;
        let Query(q) = q.map_err(|e| ApiError::bad_request(e.body_text()))?;
        let content: ContentId = q
            .content
            .parse()
            .map_err(|e| ApiError::bad_request(format!("content: {e}")))?;
        if t.cfg.verifier.is_some() {
            let peer: PeerId = q
                .peer
                .as_deref()
                .ok_or_else(|| {
                    ApiError::forbidden(
                        "this tracker requires a registrar token: peer=<hex>&token=<base64url>",
                    )
                })?
                .parse()
                .map_err(|e| ApiError::bad_request(format!("peer: {e}")))?;
            admit(&t, bounded("token", q.token.as_deref())?, peer, content)?;
        }
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
        "hive_tracker_roles_refused_total",
        "Announced supernode or seeder roles not believed (listed as ordinary peers).",
        &[("", load(&m.roles_refused))],
    );
    counter(
        "hive_tracker_rejects_total",
        "Requests refused, by reason.",
        &[
            ("{reason=\"bad_request\"}", load(&m.rejected_bad_request)),
            ("{reason=\"forbidden\"}", load(&m.rejected_forbidden)),
            ("{reason=\"limit\"}", load(&m.rejected_limit)),
            ("{reason=\"store\"}", load(&m.rejected_store)),
        ],
    );
    counter(
        "hive_tracker_reports_total",
        "Reports of peers serving bytes that fail a signed hash, from listed peers.",
        &[("", load(&m.reports))],
    );
    counter(
        "hive_tracker_refusals_total",
        "Peers refused in a swarm after enough distinct reports.",
        &[("", load(&m.refusals))],
    );
    let label = format!("{{store=\"{store}\"}}");
    counter(
        "hive_tracker_store_errors_total",
        "Store operations that failed.",
        &[(&label, load(&m.store_errors))],
    );
    let _ = writeln!(
        s,
        "# HELP hive_tracker_refused_peers Peers refused now, all swarms.\n\
         # TYPE hive_tracker_refused_peers gauge\nhive_tracker_refused_peers {}",
        t.reports.refused_count()
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
