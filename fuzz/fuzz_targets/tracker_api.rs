//! The tracker's HTTP API, end to end: sequences of announces, leaves, reports and peer queries
//! (raw bodies the fuzzer writes, and templated requests with valid, foreign, expired or
//! garbage registrar tokens and right or wrong leave keys) sent through the real axum router to
//! a fresh tracker that requires tokens, over a small bounded memory store.
//!
//! Asserts, besides "no panic":
//! - no 500 (the memory store cannot fail; every bad input is a 4xx);
//! - an announce is accepted only with a token that verifies, independently of the tracker, for
//!   that peer and content;
//! - every peer in a reply was admitted with a valid token;
//! - a leave or an announce naming a listed peer without its leave key is refused (403);
//! - a swarm never lists more than the store's bound.
#![no_main]

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Method, Request, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hive_core::{ContentId, PeerId};
use hive_services::registrar::{Registrar, TokenVerifier};
use hive_services::tracker::{MemoryStore, Tracker, TrackerConfig};
use libfuzzer_sys::fuzz_target;
use tower_service::Service;

const PEERS: u8 = 12;
const MAX_PEERS: usize = 6;

fn registrar() -> &'static Registrar {
    static R: OnceLock<Registrar> = OnceLock::new();
    R.get_or_init(|| Registrar::from_secret([7; 32]))
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime")
    })
}

fn peer(i: u8) -> PeerId {
    PeerId::from_bytes([i % PEERS + 1; 32])
}

fn content(i: u8) -> ContentId {
    ContentId::from_bytes([0xc0 + (i % 2); 32])
}

fn now_s() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A token of the kind `k` for `p` on `c`: valid, another peer's, another content's, expired,
/// garbage, or none. Signed once per process (signing dominated the run time otherwise).
fn token(k: u8, p: PeerId, c: ContentId) -> Option<String> {
    type Table = HashMap<(u8, PeerId, ContentId), String>;
    static TOKENS: OnceLock<Table> = OnceLock::new();
    let table = TOKENS.get_or_init(|| {
        let r = registrar();
        let later = now_s() + 86_400;
        let mut t = HashMap::new();
        for i in 0..PEERS {
            for j in 0..2 {
                let (p, c) = (peer(i), content(j));
                for (kind, tok) in [
                    (0, r.issue(p, c, later)),
                    (1, r.issue(PeerId::from_bytes([0xee; 32]), c, later)),
                    (2, r.issue(p, ContentId::from_bytes([0xdd; 32]), later)),
                    (3, r.issue(p, c, now_s().saturating_sub(5))),
                    (4, bytes::Bytes::from_static(b"not a token at all")),
                ] {
                    t.insert((kind, p, c), URL_SAFE_NO_PAD.encode(&tok));
                }
            }
        }
        t
    });
    table.get(&(k % 6, p, c)).cloned()
}

fn token_valid(v: &TokenVerifier, t: Option<&str>, p: PeerId, c: ContentId) -> bool {
    let Some(t) = t else { return false };
    let Ok(bytes) = URL_SAFE_NO_PAD.decode(t) else {
        return false;
    };
    // A little slack on "now": the tracker read the clock a moment before.
    v.verify(&bytes, p, c, now_s().saturating_sub(2)).is_ok()
}

struct World {
    router: axum::Router,
    verifier: TokenVerifier,
    /// Admitted (peer, content) pairs: accepted with a token that verified.
    admitted: HashSet<(PeerId, ContentId)>,
    /// The leave keys the tracker handed out, per (peer, content).
    keys: HashMap<(PeerId, ContentId), String>,
}

impl World {
    fn new() -> Self {
        let cfg = TrackerConfig {
            verifier: Some(registrar().verifier()),
            rate_per_addr: 1e9,
            rate_burst: u32::MAX,
            max_reply: 8,
            ..TrackerConfig::default()
        };
        let store = Arc::new(MemoryStore::new().with_limits(2, MAX_PEERS));
        World {
            router: Arc::new(Tracker::new(cfg, store)).router(),
            verifier: registrar().verifier(),
            admitted: HashSet::new(),
            keys: HashMap::new(),
        }
    }

    fn send(
        &mut self,
        method: Method,
        uri: &str,
        body: Vec<u8>,
        obs: u8,
    ) -> Option<(StatusCode, Vec<u8>)> {
        let mut req = Request::builder()
            .method(method)
            .uri(uri)
            .header("content-type", "application/json")
            .body(Body::from(body))
            .ok()?;
        if obs % 4 != 0 {
            let addr = SocketAddr::from(([127, 0, 0, obs], 40_000));
            req.extensions_mut().insert(ConnectInfo(addr));
        }
        let router = &mut self.router;
        runtime().block_on(async move {
            let resp = router.call(req).await.ok()?;
            let status = resp.status();
            let body = axum::body::to_bytes(resp.into_body(), 1 << 20).await.ok()?;
            Some((status, body.to_vec()))
        })
    }

    /// Checks the peers of a reply: each admitted; at most the store's bound.
    fn check_peers(&self, c: Option<ContentId>, body: &[u8]) {
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else {
            panic!(
                "a 200 reply that is not JSON: {:?}",
                String::from_utf8_lossy(body)
            );
        };
        let Some(peers) = v.get("peers").and_then(|p| p.as_array()) else {
            return;
        };
        assert!(peers.len() <= MAX_PEERS, "{} peers listed", peers.len());
        for p in peers {
            let id: PeerId = p
                .get("peer")
                .and_then(|x| x.as_str())
                .and_then(|s| s.parse().ok())
                .expect("a listed peer has an id");
            if let Some(c) = c {
                assert!(
                    self.admitted.contains(&(id, c)),
                    "peer {id} listed without admission"
                );
            } else {
                assert!(
                    self.admitted.iter().any(|(p, _)| *p == id),
                    "peer {id} listed without admission"
                );
            }
        }
    }

    fn step(&mut self, op: &[u8]) {
        let Some((&b0, rest)) = op.split_first() else {
            return;
        };
        let obs = b0 >> 3;
        let b = |i: usize| rest.get(i).copied().unwrap_or(0);
        match b0 % 8 {
            // Raw bodies and queries, as the fuzzer writes them.
            0 => {
                let parsed: Option<hive_services::tracker::api::AnnounceRequest> =
                    serde_json::from_slice(rest).ok();
                let Some((status, body)) =
                    self.send(Method::POST, "/v1/announce", rest.to_vec(), obs)
                else {
                    return;
                };
                assert_ne!(status, StatusCode::INTERNAL_SERVER_ERROR);
                if status == StatusCode::OK {
                    let a = parsed.expect("an accepted announce parses");
                    let p: PeerId = a.peer.parse().expect("an accepted announce names a peer");
                    let c: ContentId = a
                        .content
                        .parse()
                        .expect("an accepted announce names a content");
                    assert!(
                        token_valid(&self.verifier, a.token.as_deref(), p, c),
                        "announce accepted without a valid token"
                    );
                    self.admitted.insert((p, c));
                    self.check_peers(Some(c), &body);
                }
            }
            1 | 2 => {
                let path = if b0 % 8 == 1 {
                    "/v1/leave"
                } else {
                    "/v1/report"
                };
                if let Some((status, _)) = self.send(Method::POST, path, rest.to_vec(), obs) {
                    assert_ne!(status, StatusCode::INTERNAL_SERVER_ERROR);
                }
            }
            3 => {
                let q = String::from_utf8_lossy(rest);
                let uri = format!("/v1/peers?{q}");
                if let Some((status, body)) = self.send(Method::GET, &uri, Vec::new(), obs) {
                    assert_ne!(status, StatusCode::INTERNAL_SERVER_ERROR);
                    if status == StatusCode::OK {
                        self.check_peers(None, &body);
                    }
                }
            }
            // Templated announce: peer, content, token kind, leave-key kind, site.
            4 => {
                let (p, c) = (peer(b(0)), content(b(1)));
                let tok = token(b(2), p, c);
                let key = self.leave_key(b(3), p, c);
                let site = String::from_utf8_lossy(rest.get(4..).unwrap_or(&[])).into_owned();
                let mut body = serde_json::json!({
                    "content": c.to_string(),
                    "peer": p.to_string(),
                    "addrs": ["0.0.0.0:4000", "10.1.2.3:5000"],
                    "upload_kbps": u32::from(b(5)) * 1000,
                });
                if let Some(t) = &tok {
                    body["token"] = t.clone().into();
                }
                if let Some(k) = &key {
                    body["leave_key"] = k.clone().into();
                }
                if !site.is_empty() {
                    body["site"] = site.into();
                }
                let listed_key = self.keys.get(&(p, c)).cloned();
                let Some((status, reply)) = self.send(
                    Method::POST,
                    "/v1/announce",
                    body.to_string().into_bytes(),
                    obs,
                ) else {
                    return;
                };
                assert_ne!(status, StatusCode::INTERNAL_SERVER_ERROR);
                if status == StatusCode::OK {
                    assert!(
                        token_valid(&self.verifier, tok.as_deref(), p, c),
                        "announce accepted with a bad token"
                    );
                    if let Some(k) = listed_key {
                        assert_eq!(
                            key.as_deref(),
                            Some(k.as_str()),
                            "a listed peer taken over without its leave key"
                        );
                    }
                    self.admitted.insert((p, c));
                    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&reply)
                        && let Some(k) = v.get("leave_key").and_then(|k| k.as_str())
                    {
                        self.keys.insert((p, c), k.to_string());
                    }
                    self.check_peers(Some(c), &reply);
                }
            }
            // Templated leave: peer, content, token kind, leave-key kind.
            5 => {
                let (p, c) = (peer(b(0)), content(b(1)));
                let tok = token(b(2), p, c);
                let key = self.leave_key(b(3), p, c);
                let mut body = serde_json::json!({"content": c.to_string(), "peer": p.to_string()});
                if let Some(t) = &tok {
                    body["token"] = t.clone().into();
                }
                if let Some(k) = &key {
                    body["leave_key"] = k.clone().into();
                }
                let listed_key = self.keys.get(&(p, c)).cloned();
                let Some((status, _)) = self.send(
                    Method::POST,
                    "/v1/leave",
                    body.to_string().into_bytes(),
                    obs,
                ) else {
                    return;
                };
                assert_ne!(status, StatusCode::INTERNAL_SERVER_ERROR);
                if status.is_success()
                    && let Some(k) = listed_key
                {
                    assert_eq!(
                        key.as_deref(),
                        Some(k.as_str()),
                        "a leave without the peer's leave key"
                    );
                    self.keys.remove(&(p, c));
                }
            }
            // Templated report: reporter, content, bad peer, token kind, leave-key kind.
            6 => {
                let (p, c, bad) = (peer(b(0)), content(b(1)), peer(b(2)));
                let tok = token(b(3), p, c);
                let key = self.leave_key(b(4), p, c);
                let mut body = serde_json::json!({
                    "content": c.to_string(), "peer": p.to_string(), "bad": bad.to_string()
                });
                if let Some(t) = &tok {
                    body["token"] = t.clone().into();
                }
                if let Some(k) = &key {
                    body["leave_key"] = k.clone().into();
                }
                if let Some((status, _)) = self.send(
                    Method::POST,
                    "/v1/report",
                    body.to_string().into_bytes(),
                    obs,
                ) {
                    assert_ne!(status, StatusCode::INTERNAL_SERVER_ERROR);
                    if status.is_success() {
                        // The accused may now be dropped from the swarm: its key is no longer
                        // what a leave must carry.
                        self.keys.remove(&(bad, c));
                    }
                }
            }
            // Templated peer query: peer, content, token kind, limit.
            _ => {
                let (p, c) = (peer(b(0)), content(b(1)));
                let mut uri = format!("/v1/peers?content={c}&peer={p}&limit={}", b(3));
                if let Some(t) = token(b(2), p, c) {
                    uri.push_str("&token=");
                    uri.push_str(&t);
                }
                if let Some((status, body)) = self.send(Method::GET, &uri, Vec::new(), obs) {
                    assert_ne!(status, StatusCode::INTERNAL_SERVER_ERROR);
                    if status == StatusCode::OK {
                        assert!(
                            token_valid(&self.verifier, token(b(2), p, c).as_deref(), p, c),
                            "peers listed to a query without a valid token"
                        );
                        self.check_peers(Some(c), &body);
                    }
                }
            }
        }
    }

    /// A leave key of the kind `k`: the one the tracker gave (if any), a wrong one, or none.
    fn leave_key(&self, k: u8, p: PeerId, c: ContentId) -> Option<String> {
        match k % 3 {
            0 => self.keys.get(&(p, c)).cloned(),
            1 => Some(URL_SAFE_NO_PAD.encode([k; 32])),
            _ => None,
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut w = World::new();
    for op in data.split(|b| *b == 0xff).take(32) {
        w.step(op);
    }
});
