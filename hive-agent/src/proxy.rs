//! The player-facing HTTP proxy.
//!
//! A request is mapped to an origin URL — `/<path>` under the configured origin (reverse-proxy
//! mode), `/http://host/path` or `/https://host/path` (the player asks for the full origin
//! URL), or `/.hive/o/<scheme>/<host>/<path>` (absolute URLs rewritten inside manifests) — then:
//! - a fragment a known manifest lists goes to the swarm engine (peer or origin), and is
//!   answered with verified bytes only;
//! - anything else is fetched from the origin and passed through; manifests are parsed on the
//!   way (so the swarm learns the fragments) and rewritten only when they hold absolute URLs.
//!
//! Every origin URL must pass the agent's [`crate::OriginAllowlist`] (a refusal is a 403 that
//! names the host and the `--allow-origin` that would allow it), and web pages get the CORS
//! grants the origin gives them, no more: its `Access-Control-*` headers are mirrored, and an
//! `OPTIONS` preflight is forwarded to it.
//!
//! `/metrics` (Prometheus) and `/status` (JSON) are the agent's own, with no CORS header: web
//! pages cannot read them.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use bytes::Bytes;
use hive_core::ByteRange;
use hive_manifest::parse_range_header;
use hive_manifest::rewrite::Rewriter;
use tokio::sync::oneshot;

use crate::Shared;
use crate::cors;
use crate::engine::Cmd;
use crate::error::FetchError;

/// Path prefix of origin URLs rewritten inside manifests.
pub const REWRITE_PREFIX: &str = "/.hive/o";

/// Request header a player may set: milliseconds until it needs the fragment.
pub const DEADLINE_HEADER: &str = "x-hive-deadline-ms";

pub(crate) fn router(shared: Arc<Shared>) -> axum::Router {
    axum::Router::new().fallback(handle).with_state(shared)
}

/// The origin URL a request path stands for.
pub(crate) fn origin_url(base: Option<&str>, path_and_query: &str) -> Option<String> {
    let p = path_and_query;
    if let Some(rest) = p.strip_prefix('/')
        && (rest.starts_with("http://") || rest.starts_with("https://"))
    {
        return Some(rest.to_string());
    }
    if let Some(u) = Rewriter::new(REWRITE_PREFIX).to_origin(p) {
        return Some(u);
    }
    base.map(|b| format!("{}{}", b.trim_end_matches('/'), p))
}

/// Whether a `Host` header names this agent: an IP address, `localhost` (or a name under
/// `.localhost`), or one of `names`; any port.
fn host_allowed(host: &[u8], names: &[String]) -> bool {
    let Ok(host) = std::str::from_utf8(host) else {
        return false;
    };
    let name = if let Some(rest) = host.strip_prefix('[') {
        // [v6]:port
        return rest
            .split(']')
            .next()
            .is_some_and(|a| a.parse::<std::net::Ipv6Addr>().is_ok());
    } else {
        host.rsplit_once(':')
            .filter(|(_, p)| p.bytes().all(|b| b.is_ascii_digit()))
            .map_or(host, |(h, _)| h)
    };
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    name.parse::<std::net::Ipv4Addr>().is_ok()
        || name == "localhost"
        || name.ends_with(".localhost")
        || names.iter().any(|n| n.eq_ignore_ascii_case(&name))
}

fn reply(status: StatusCode, content_type: &str, body: Bytes) -> Response {
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = status;
    if let Ok(v) = HeaderValue::from_str(content_type) {
        r.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    r
}

fn error(status: StatusCode, msg: String) -> Response {
    reply(status, "text/plain; charset=utf-8", Bytes::from(msg + "\n"))
}

/// The answer to a failed origin request: the origin's status, 403 for a refused origin, 400
/// for a bad URL, 502 otherwise.
fn fetch_error(e: FetchError) -> Response {
    match e {
        FetchError::Status { status, .. } => {
            let s = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
            error(s, format!("origin answered {status}"))
        }
        e @ FetchError::NotAllowed { .. } => {
            tracing::info!(error = %e, "origin refused");
            error(StatusCode::FORBIDDEN, e.to_string())
        }
        e @ FetchError::BadUrl(_) => error(StatusCode::BAD_REQUEST, e.to_string()),
        e => error(StatusCode::BAD_GATEWAY, e.to_string()),
    }
}

/// The control endpoint of the congestion-control priority: `GET` says who sets it, `PUT`
/// (JSON `{"priority": "urgency"}` or `{"priority": 0.3}`) changes it at run time.
pub const PRIORITY_PATH: &str = "/hive/priority";

/// `PRIORITY_PATH`. Not for web pages: a request a browser marks as a page's (an `Origin`
/// header, or `Sec-Fetch-Site` other than `none`) is refused, so a site a viewer visits cannot
/// turn the agent's uploads up or down; a `PUT` must be JSON (a page could not send one to
/// another origin without a preflight, which this path never grants).
async fn priority(shared: &Shared, req: Request) -> Response {
    let h = req.headers();
    let from_page = h.contains_key(header::ORIGIN)
        || h.get("sec-fetch-site")
            .is_some_and(|v| v.as_bytes() != b"none");
    if from_page {
        return error(
            StatusCode::FORBIDDEN,
            "the priority endpoint is for the operator, not for web pages".into(),
        );
    }
    let current = || {
        let body = serde_json::json!({ "priority": shared.metrics.priority_mode().to_string() });
        reply(StatusCode::OK, "application/json", body.to_string().into())
    };
    match *req.method() {
        Method::GET | Method::HEAD => current(),
        Method::PUT | Method::POST => {
            let json = h
                .get(header::CONTENT_TYPE)
                .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
            if !json {
                return error(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "send JSON: {\"priority\": \"urgency\"} or {\"priority\": 0.3}".into(),
                );
            }
            let Ok(body) = axum::body::to_bytes(req.into_body(), 1024).await else {
                return error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "a body of at most 1 KiB".into(),
                );
            };
            let asked = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| match v.get("priority") {
                    Some(serde_json::Value::String(s)) => s.parse::<crate::PriorityMode>().ok(),
                    Some(serde_json::Value::Number(n)) => {
                        n.as_f64().and_then(|p| p.to_string().parse().ok())
                    }
                    _ => None,
                });
            let Some(mode) = asked else {
                return error(
                    StatusCode::BAD_REQUEST,
                    "priority: \"urgency\" or a number from 0 (scavenger) to 1 (TCP-fair)".into(),
                );
            };
            if shared.tx.send(Cmd::Priority(mode)).await.is_err() {
                return error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the engine has stopped".into(),
                );
            }
            // The engine applies it in turn; say what was asked.
            let body = serde_json::json!({ "priority": mode.to_string() });
            reply(StatusCode::OK, "application/json", body.to_string().into())
        }
        _ => error(
            StatusCode::METHOD_NOT_ALLOWED,
            "GET or PUT the priority".into(),
        ),
    }
}

async fn handle(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    let method = req.method().clone();
    let pq = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    // DNS rebinding: a page whose own name was made to resolve to this agent's address would
    // be same-origin with it, and could read everything. The player reaches the agent by an
    // address or `localhost`, or by a name the operator lists.
    if let Some(h) = req.headers().get(header::HOST)
        && !host_allowed(h.as_bytes(), &shared.cfg.proxy_names)
    {
        return error(
            StatusCode::MISDIRECTED_REQUEST,
            format!(
                "the agent answers requests for its address or localhost, not for {:?}; list the name with --proxy-name",
                String::from_utf8_lossy(h.as_bytes())
            ),
        );
    }
    match req.uri().path() {
        "/healthz" => {
            let mut r = Response::new(Body::from("ok\n"));
            r.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
            return r;
        }
        "/metrics" => {
            return reply(
                StatusCode::OK,
                "text/plain; version=0.0.4",
                shared.metrics.prometheus().into(),
            );
        }
        "/status" => {
            let body = shared
                .metrics
                .status(shared.peer_id, &shared.proxy_url())
                .to_string();
            return reply(StatusCode::OK, "application/json", body.into());
        }
        PRIORITY_PATH => return priority(&shared, req).await,
        _ => {}
    }
    if method != Method::GET && method != Method::HEAD && method != Method::OPTIONS {
        return error(
            StatusCode::METHOD_NOT_ALLOWED,
            "the agent proxies GET, HEAD and OPTIONS".into(),
        );
    }
    let Some(url) = origin_url(shared.cfg.origin.as_deref(), &pq) else {
        return error(
            StatusCode::NOT_FOUND,
            format!("no origin configured: ask for /http://host{pq}"),
        );
    };
    // The one gate every URL passes before anything else happens (the fetcher checks again
    // at each fetch, each redirect hop and each resolved address).
    let host = match shared.proxy.fetcher.check(&url) {
        Ok(u) => crate::allow::authority(&u),
        Err(e) => return fetch_error(e),
    };
    if method == Method::OPTIONS {
        return preflight(&shared, &url, req.headers()).await;
    }
    let range = req
        .headers()
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_range_header);
    let resp = answer(&shared, &url, &host, range, req.headers()).await;
    shared
        .metrics
        .player_requests
        .fetch_add(1, Ordering::Relaxed);
    if resp.status().is_server_error() {
        shared.metrics.player_errors.fetch_add(1, Ordering::Relaxed);
    }
    if method == Method::HEAD {
        let (parts, _) = resp.into_parts();
        return Response::from_parts(parts, Body::empty());
    }
    resp
}

/// A CORS preflight, forwarded to the origin; its status and `Access-Control-*` headers are
/// mirrored, so the agent grants nothing the origin does not (`-Allow-Private-Network`
/// included).
async fn preflight(shared: &Arc<Shared>, url: &str, headers: &HeaderMap) -> Response {
    match shared
        .proxy
        .fetcher
        .preflight(url, &cors::forwarded(headers))
        .await
    {
        Ok(p) => {
            let mut r = Response::new(Body::empty());
            *r.status_mut() = StatusCode::from_u16(p.status).unwrap_or(StatusCode::BAD_GATEWAY);
            cors::mirror(&p.headers, r.headers_mut());
            r
        }
        Err(e) => fetch_error(e),
    }
}

async fn answer(
    shared: &Arc<Shared>,
    url: &str,
    host: &str,
    range: Option<ByteRange>,
    headers: &HeaderMap,
) -> Response {
    let known = shared
        .proxy
        .contents
        .lock()
        .classify(url, range, shared.now());
    if let Some((info, live)) = known {
        let content = info.id.content;
        let mut r = fragment(shared, info, live, range, headers).await;
        shared.proxy.cors.lock().apply(
            Some(content),
            host,
            headers.get(header::ORIGIN),
            r.headers_mut(),
        );
        return r;
    }
    passthrough(shared, url, host, range, headers).await
}

/// A fragment a known manifest lists: from the swarm engine (cache, peer or origin).
async fn fragment(
    shared: &Arc<Shared>,
    info: hive_overlay::FragmentInfo,
    live: bool,
    range: Option<ByteRange>,
    headers: &HeaderMap,
) -> Response {
    let deadline = headers
        .get(DEADLINE_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .map(|ms| shared.now() + Duration::from_millis(ms.min(600_000)));
    let fragment_range = info.id.range;
    let (tx, rx) = oneshot::channel();
    if shared
        .tx
        .send(Cmd::Fetch {
            info,
            live,
            deadline,
            reply: tx,
        })
        .await
        .is_err()
    {
        return error(StatusCode::SERVICE_UNAVAILABLE, "agent stopped".into());
    }
    match tokio::time::timeout(shared.cfg.player_timeout, rx).await {
        Ok(Ok(Ok(data))) => fragment_response(data, range, fragment_range),
        Ok(Ok(Err(e))) => error(StatusCode::BAD_GATEWAY, e),
        Ok(Err(_)) => error(StatusCode::SERVICE_UNAVAILABLE, "agent stopped".into()),
        Err(_) => error(
            StatusCode::GATEWAY_TIMEOUT,
            "fragment not obtained in time".into(),
        ),
    }
}

/// A fragment's bytes as the player asked for them: whole, or the requested range of it.
fn fragment_response(
    data: Bytes,
    asked: Option<ByteRange>,
    fragment_range: Option<ByteRange>,
) -> Response {
    let ct = "application/octet-stream";
    match (asked, fragment_range) {
        (None, _) => reply(StatusCode::OK, ct, data),
        // The fragment is exactly the range asked for.
        (Some(a), Some(f)) if a == f => {
            let mut r = reply(StatusCode::PARTIAL_CONTENT, ct, data);
            if let Ok(v) = HeaderValue::from_str(&format!(
                "bytes {}-{}/*",
                a.start,
                a.end().saturating_sub(1)
            )) {
                r.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            r
        }
        // A range of a whole-resource fragment.
        (Some(a), _) => {
            let total = data.len() as u64;
            if a.start >= total {
                let mut r = error(StatusCode::RANGE_NOT_SATISFIABLE, "range".into());
                if let Ok(v) = HeaderValue::from_str(&format!("bytes */{total}")) {
                    r.headers_mut().insert(header::CONTENT_RANGE, v);
                }
                return r;
            }
            let end = a.end().min(total);
            let mut r = reply(
                StatusCode::PARTIAL_CONTENT,
                ct,
                data.slice(a.start as usize..end as usize),
            );
            if let Ok(v) = HeaderValue::from_str(&format!("bytes {}-{}/{total}", a.start, end - 1))
            {
                r.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            r
        }
    }
}

async fn passthrough(
    shared: &Arc<Shared>,
    url: &str,
    host: &str,
    range: Option<ByteRange>,
    headers: &HeaderMap,
) -> Response {
    let asked = headers.get(header::ORIGIN);
    let fetched = match shared
        .proxy
        .fetcher
        .get_with(url, range, &cors::forwarded(headers))
        .await
    {
        Ok(f) => f,
        Err(e) => {
            let refused = matches!(e, FetchError::NotAllowed { .. });
            let mut r = fetch_error(e);
            if !refused {
                // The page may read the origin's error status as it would without the agent.
                shared
                    .proxy
                    .cors
                    .lock()
                    .apply(None, host, asked, r.headers_mut());
            }
            return r;
        }
    };
    shared
        .proxy
        .cors
        .lock()
        .remember(host, asked, &fetched.headers);
    shared
        .metrics
        .passthrough_bytes
        .fetch_add(fetched.body.len() as u64, Ordering::Relaxed);
    let ct = fetched.content_type.clone();
    let mut body = fetched.body;
    if range.is_none() {
        // `learn` detects the format itself: anything else (a segment, a key) is `None`.
        let learned = shared
            .proxy
            .contents
            .lock()
            .learn(url, ct.as_deref(), &body, shared.now());
        if let Some(l) = learned {
            shared.proxy.cors.lock().manifest(l.content, host);
            publish(shared, url, l).await;
            let rw = Rewriter::new(REWRITE_PREFIX);
            let head = body.get(..64).unwrap_or(&body);
            let rewritten = if head.starts_with(b"#EXTM3U") {
                rw.hls(&body).into_owned()
            } else {
                rw.dash(&body).into_owned()
            };
            if rewritten != body {
                body = Bytes::from(rewritten);
            }
        }
    }
    let status = if range.is_some() {
        StatusCode::PARTIAL_CONTENT
    } else {
        StatusCode::OK
    };
    let mut r = reply(
        status,
        ct.as_deref().unwrap_or("application/octet-stream"),
        body,
    );
    if let Some(a) = range
        && let Ok(v) = HeaderValue::from_str(&format!(
            "bytes {}-{}/*",
            a.start,
            a.end().saturating_sub(1)
        ))
    {
        r.headers_mut().insert(header::CONTENT_RANGE, v);
    }
    cors::mirror(&fetched.headers, r.headers_mut());
    r
}

/// Hands what a manifest taught the agent to its engine: the fragments it lists on allowed
/// origins (the others are not the swarm's business: no prefetch, no Have; a player's request
/// for one is refused, 403, like any URL), after noting where their integrity list is.
pub(crate) async fn publish(shared: &Arc<Shared>, url: &str, mut l: crate::content::Learned) {
    let listed = l.fragments.len();
    l.fragments
        .retain(|f| shared.proxy.fetcher.allowlist().check_str(&f.url).is_ok());
    if l.fragments.len() < listed {
        tracing::warn!(
            %url,
            refused = listed - l.fragments.len(),
            "the manifest lists fragments on origins the agent may not fetch"
        );
    }
    crate::integrity::manifest_seen(
        shared,
        url,
        l.content,
        l.fragments.iter().map(|f| f.id).collect(),
    );
    let _ = shared
        .tx
        .send(Cmd::Publish {
            content: l.content,
            live: l.live,
            fragments: l.fragments,
        })
        .await;
}

/// How long after its player's last request a live stream's manifests are still refreshed.
const REFRESH_ACTIVE: std::time::Duration = std::time::Duration::from_secs(10);

/// The agent's own refresh of live manifests ([`crate::AgentConfig::refresh_live`]): on every
/// [`hive_overlay::LIVE_REFRESH_TICK`], the manifests [`crate::content::Contents::due_refreshes`] names are
/// fetched, one after another, and what they list is published as a player's fetch would.
pub(crate) async fn refresh_loop(shared: Arc<Shared>) {
    if !shared.cfg.refresh_live {
        return;
    }
    let mut tick = tokio::time::interval(hive_overlay::LIVE_REFRESH_TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tick.tick().await;
        let due = shared
            .proxy
            .contents
            .lock()
            .due_refreshes(shared.now(), REFRESH_ACTIVE);
        for url in due {
            let fetched = match shared
                .proxy
                .fetcher
                .get_with(&url, None, &HeaderMap::new())
                .await
            {
                Ok(f) => f,
                Err(e) => {
                    tracing::debug!(%url, error = %e, "live manifest refresh failed");
                    continue;
                }
            };
            shared
                .metrics
                .refresh_bytes
                .fetch_add(fetched.body.len() as u64, Ordering::Relaxed);
            let learned = shared.proxy.contents.lock().learn_refreshed(
                &url,
                fetched.content_type.as_deref(),
                &fetched.body,
                shared.now(),
            );
            if let Some(l) = learned {
                publish(&shared, &url, l).await;
            }
        }
    }
}

/// The proxy's pure mappings, for the fuzz targets in `fuzz/` (feature `fuzzing`); not an API.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing {
    use super::*;

    /// The proxy's `origin_url`: the origin URL a request path stands for.
    pub fn origin_url(base: Option<&str>, path_and_query: &str) -> Option<String> {
        super::origin_url(base, path_and_query)
    }

    /// `fragment_response`: a fragment's bytes as the player asked for them.
    pub fn fragment_response(
        data: Bytes,
        asked: Option<ByteRange>,
        fragment_range: Option<ByteRange>,
    ) -> Response {
        super::fragment_response(data, asked, fragment_range)
    }

    /// `host_allowed`: whether a `Host` header names this agent.
    pub fn host_allowed(host: &[u8], names: &[String]) -> bool {
        super::host_allowed(host, names)
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn only_addresses_localhost_and_listed_names_are_this_agent() {
        let names = vec!["agent.example".to_string()];
        for ok in [
            "127.0.0.1:8081",
            "127.0.0.1",
            "[::1]:8081",
            "localhost:8081",
            "LOCALHOST",
            "player.localhost:1",
            "agent.example:8081",
            "10.1.2.3:80",
        ] {
            assert!(host_allowed(ok.as_bytes(), &names), "{ok}");
        }
        for bad in [
            "evil.example:8081",
            "evil.example",
            "127.0.0.1.evil.example",
            "localhost.evil.example",
            "[evil]:80",
            "",
        ] {
            assert!(!host_allowed(bad.as_bytes(), &names), "{bad}");
        }
        assert!(!host_allowed(b"\xff", &names));
    }

    use super::*;

    #[test]
    fn request_paths_map_to_origin_urls() {
        let base = Some("http://o:8080/");
        assert_eq!(
            origin_url(base, "/live/master.m3u8?a=1").as_deref(),
            Some("http://o:8080/live/master.m3u8?a=1")
        );
        assert_eq!(
            origin_url(None, "/https://cdn.example/v/1.ts").as_deref(),
            Some("https://cdn.example/v/1.ts")
        );
        assert_eq!(
            origin_url(base, "/.hive/o/https/cdn.example/v/1.ts").as_deref(),
            Some("https://cdn.example/v/1.ts")
        );
        assert_eq!(origin_url(None, "/live/master.m3u8"), None);
    }

    #[test]
    fn ranges_of_whole_fragments_are_sliced() {
        let data = Bytes::from_static(b"0123456789");
        let r = fragment_response(data.clone(), Some(ByteRange { start: 2, len: 3 }), None);
        assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
        assert_eq!(
            r.headers().get(header::CONTENT_RANGE).map(|v| v.as_bytes()),
            Some(&b"bytes 2-4/10"[..])
        );
        let r = fragment_response(data, Some(ByteRange { start: 20, len: 3 }), None);
        assert_eq!(r.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    }
}
