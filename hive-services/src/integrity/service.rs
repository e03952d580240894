//! The hash service: signed lists for origins that cannot be changed.
//!
//! | route | what |
//! |---|---|
//! | `GET /v1/integrity?manifest=<url>&since=<seq>&wait=<seconds>` | the signed list of the manifest's fragments (200, `x-hive-seq`); with `since` at or past the current seq, waits up to `wait` (default 10 s, at most 30 s) for a newer one, else 304 |
//!
//! A manifest is watched from the first time it is asked for, when its `host:port` is in the
//! allowlist (403 otherwise), and dropped once nobody asked for it for
//! [`idle`](HashServiceConfig::idle). An HLS master playlist is answered with an empty list and
//! its media playlists are watched (agents ask for each by its own URL). Every
//! [`poll`](HashServiceConfig::poll) the service fetches each watched manifest; each fragment it
//! lists is fetched **once** — one extra origin copy per fragment per bitrate — hashed as it
//! streams in, and a new list is signed and published at once, so that a fragment's hash is
//! served about one poll interval after the origin lists it. Fragments are fetched only from
//! allowed origins too (a manifest on one host listing fragments on another needs both).
//!
//! Bounds: watched manifests ([`max_manifests`](HashServiceConfig::max_manifests), then 503),
//! manifest and fragment sizes, entries per list ([`MAX_ENTRIES`]) and list bytes
//! ([`MAX_LIST_BYTES`]), long-polls waiting at once ([`max_waiters`](HashServiceConfig::max_waiters),
//! then 503); the HTTP server's connections, header and body times ([`HashServiceConfig::http`]).

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use hive_core::integrity::{
    ListEntry, MAX_ENTRIES, MAX_LIST_BYTES, PublicKey, PublisherKey, SignedList,
};
use hive_core::{ByteRange, ContentHash};
use hive_manifest::Manifests;
use parking_lot::Mutex;
use reqwest::Url;
use tokio::sync::watch;

use super::fetch::{Allow, Fetcher};
use super::signer::{listed, parse, unix_ms};
use crate::http::ApiError;

/// The header that carries a list's `#SEQ`.
pub const SEQ_HEADER: &str = "x-hive-seq";

/// Settings of a [`HashService`].
#[derive(Clone, Debug)]
pub struct HashServiceConfig {
    /// Origins (`host:port`) whose manifests and fragments the service may fetch.
    pub allow_origins: Vec<String>,
    /// How often each watched manifest is fetched. Default 100 ms.
    pub poll: Duration,
    /// Most manifests watched at once. Default 256.
    pub max_manifests: usize,
    /// A manifest nobody asked for for this long is dropped. Default 60 s.
    pub idle: Duration,
    /// Largest fragment fetched (bytes). Default 64 MiB.
    pub max_fragment_bytes: u64,
    /// Largest manifest fetched (bytes). Default 4 MiB.
    pub max_manifest_bytes: usize,
    /// Most long-polls waiting at once. Default 4096.
    pub max_waiters: usize,
    /// How long a long-poll waits when the request does not say. Default 10 s.
    pub default_wait: Duration,
    /// The longest a long-poll waits. Default 30 s.
    pub max_wait: Duration,
    /// Timeout of one origin request. Default 20 s.
    pub fetch_timeout: Duration,
    /// The bounds of the HTTP server [`serve`] runs (its `stall_timeout` must stay above
    /// `max_wait`: a long-poll runs a handler, so it is not a stall anyway).
    pub http: crate::http::HttpLimits,
}

impl Default for HashServiceConfig {
    fn default() -> Self {
        HashServiceConfig {
            allow_origins: Vec::new(),
            poll: Duration::from_millis(100),
            max_manifests: 256,
            idle: Duration::from_secs(60),
            max_fragment_bytes: 64 << 20,
            max_manifest_bytes: 4 << 20,
            max_waiters: 4096,
            default_wait: Duration::from_secs(10),
            max_wait: Duration::from_secs(30),
            fetch_timeout: Duration::from_secs(20),
            http: crate::http::HttpLimits::default(),
        }
    }
}

/// What the service did so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HashServiceStats {
    /// Manifests watched now.
    pub watched: usize,
    /// Fragments fetched from origins and hashed.
    pub fragments_hashed: u64,
    /// Their bytes.
    pub fragment_bytes: u64,
    /// Fragment fetches that failed (retried later, with a back-off).
    pub fetch_failures: u64,
    /// Lists signed and published.
    pub lists_published: u64,
}

/// A published list: `seq` 0 means none yet.
#[derive(Clone, Debug, Default)]
struct Published {
    seq: u64,
    body: Bytes,
}

/// One watched manifest.
#[derive(Debug)]
struct Watched {
    list: watch::Sender<Published>,
    /// When an agent last asked (Unix ms).
    asked: AtomicU64,
    /// Media playlists of a master playlist, watched with it.
    children: Mutex<Vec<String>>,
    task: Mutex<Option<tokio::task::AbortHandle>>,
}

impl Watched {
    fn touch(&self) {
        self.asked.store(unix_ms(), Ordering::Relaxed);
    }
}

/// The hash service (see the [module docs](crate::integrity)). Serve it with [`serve`], or mount
/// [`HashService::router`] beside the tracker's ([`crate::tracker::serve_with`]).
#[derive(Debug)]
pub struct HashService {
    cfg: HashServiceConfig,
    key: PublisherKey,
    fetcher: Fetcher,
    manifests: Manifests,
    watched: Mutex<HashMap<String, Arc<Watched>>>,
    waiters: AtomicUsize,
    fragments_hashed: AtomicU64,
    fragment_bytes: AtomicU64,
    fetch_failures: AtomicU64,
    lists_published: AtomicU64,
}

impl Drop for HashService {
    fn drop(&mut self) {
        for w in self.watched.get_mut().values() {
            if let Some(t) = w.task.lock().take() {
                t.abort();
            }
        }
    }
}

/// Why [`HashService::watch`] refused a manifest.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WatchError {
    /// Not an http(s) URL on an allowed origin.
    #[error("manifest origin {0} is not in the hash service's allowlist")]
    NotAllowed(String),
    /// The URL does not parse.
    #[error("bad manifest URL: {0}")]
    BadUrl(String),
    /// [`HashServiceConfig::max_manifests`] are watched already.
    #[error("the hash service watches {0} manifests already")]
    Full(usize),
}

impl HashService {
    /// A service signing with `key`. Must be created inside a tokio runtime (watchers are tasks).
    pub fn new(cfg: HashServiceConfig, key: PublisherKey) -> Result<Arc<Self>, reqwest::Error> {
        let fetcher = Fetcher::new(Allow::new(&cfg.allow_origins), cfg.fetch_timeout)?;
        Ok(Arc::new(HashService {
            cfg,
            key,
            fetcher,
            manifests: Manifests::default(),
            watched: Mutex::new(HashMap::new()),
            waiters: AtomicUsize::new(0),
            fragments_hashed: AtomicU64::new(0),
            fragment_bytes: AtomicU64::new(0),
            fetch_failures: AtomicU64::new(0),
            lists_published: AtomicU64::new(0),
        }))
    }

    /// The public key agents verify the service's lists with.
    pub fn public_key(&self) -> PublicKey {
        self.key.public()
    }

    /// The settings.
    pub fn config(&self) -> &HashServiceConfig {
        &self.cfg
    }

    /// The counters.
    pub fn stats(&self) -> HashServiceStats {
        HashServiceStats {
            watched: self.watched.lock().len(),
            fragments_hashed: self.fragments_hashed.load(Ordering::Relaxed),
            fragment_bytes: self.fragment_bytes.load(Ordering::Relaxed),
            fetch_failures: self.fetch_failures.load(Ordering::Relaxed),
            lists_published: self.lists_published.load(Ordering::Relaxed),
        }
    }

    /// The HTTP routes (`/v1/integrity`); merge them into another axum router to share a port.
    pub fn router(self: Arc<Self>) -> Router {
        Router::new()
            .route("/v1/integrity", get(integrity))
            .with_state(self)
    }

    /// Watches the manifest at `url` (from now on, if not already): checks the allowlist and
    /// the bound; returns the canonical URL it is watched under.
    pub fn watch(self: &Arc<Self>, url: &str) -> Result<String, WatchError> {
        self.asked(url).map(|(k, _)| k)
    }

    /// [`watch`](Self::watch), marking the manifest (and a master's media playlists) as asked
    /// for now.
    fn asked(self: &Arc<Self>, url: &str) -> Result<(String, Arc<Watched>), WatchError> {
        let (key, w) = self.watched_entry(url)?;
        w.touch();
        let children = w.children.lock().clone();
        let map = self.watched.lock();
        for c in &children {
            if let Some(cw) = map.get(c) {
                cw.touch();
            }
        }
        Ok((key, w))
    }

    fn watched_entry(self: &Arc<Self>, url: &str) -> Result<(String, Arc<Watched>), WatchError> {
        if url.len() > hive_core::integrity::MAX_URI {
            return Err(WatchError::BadUrl("longer than 4096 bytes".into()));
        }
        let mut u = Url::parse(url).map_err(|e| WatchError::BadUrl(e.to_string()))?;
        u.set_fragment(None);
        if !self.fetcher.allow().permits(&u) {
            let origin = match (u.host_str(), u.port_or_known_default()) {
                (Some(h), Some(p)) => format!("{h}:{p}"),
                _ => u.scheme().to_string(),
            };
            return Err(WatchError::NotAllowed(origin));
        }
        let key = String::from(u);
        let mut map = self.watched.lock();
        if let Some(w) = map.get(&key) {
            return Ok((key, w.clone()));
        }
        if map.len() >= self.cfg.max_manifests {
            return Err(WatchError::Full(map.len()));
        }
        let w = Arc::new(Watched {
            list: watch::Sender::new(Published::default()),
            asked: AtomicU64::new(unix_ms()),
            children: Mutex::new(Vec::new()),
            task: Mutex::new(None),
        });
        map.insert(key.clone(), w.clone());
        drop(map);
        let task = tokio::spawn(watcher(Arc::downgrade(self), key.clone(), w.clone()));
        *w.task.lock() = Some(task.abort_handle());
        tracing::info!(manifest = %key, "hash service: watching");
        Ok((key, w))
    }

    fn publish(&self, w: &Watched, mut entries: Vec<ListEntry>) {
        let seq = w.list.borrow().seq.saturating_add(1).max(unix_ms());
        entries.truncate(MAX_ENTRIES);
        let mut body = SignedList { seq, entries }.sign(&self.key);
        // Long URIs: keep the newest entries that fit.
        while body.len() > MAX_LIST_BYTES {
            let Ok(mut l) = SignedList::verify(&body, &self.key.public()) else {
                return;
            };
            let cut = l.entries.len() / 2;
            l.entries.drain(..cut.max(1));
            body = l.sign(&self.key);
        }
        w.list.send_replace(Published {
            seq,
            body: body.into(),
        });
        self.lists_published.fetch_add(1, Ordering::Relaxed);
    }
}

/// Back-off of a fragment whose fetch failed.
#[derive(Debug)]
struct Failed {
    attempts: u32,
    next: tokio::time::Instant,
}

/// Fetches a watched manifest every poll interval and publishes its list until nobody asks.
async fn watcher(svc: Weak<HashService>, url: String, w: Arc<Watched>) {
    let Ok(parsed_url) = Url::parse(&url) else {
        return;
    };
    let (poll, idle) = match svc.upgrade() {
        Some(s) => (s.cfg.poll.max(Duration::from_millis(10)), s.cfg.idle),
        None => return,
    };
    let mut tick = tokio::time::interval(poll);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut hashes: HashMap<(String, Option<ByteRange>), ContentHash> = HashMap::new();
    let mut failed: HashMap<(String, Option<ByteRange>), Failed> = HashMap::new();
    let mut published: Option<Vec<ListEntry>> = None;
    loop {
        tick.tick().await;
        let Some(svc) = svc.upgrade() else {
            return;
        };
        let asked = w.asked.load(Ordering::Relaxed);
        if unix_ms().saturating_sub(asked) > idle.as_millis() as u64 {
            let mut map = svc.watched.lock();
            if map.get(&url).is_some_and(|x| Arc::ptr_eq(x, &w)) {
                map.remove(&url);
            }
            tracing::info!(manifest = %url, "hash service: no longer asked for, dropped");
            return;
        }
        let body = match svc
            .fetcher
            .bytes(&parsed_url, svc.cfg.max_manifest_bytes)
            .await
        {
            Ok(b) => b,
            Err(e) => {
                tracing::debug!(manifest = %url, error = %e, "manifest not fetched");
                continue;
            }
        };
        let p = match parse(&svc.manifests, &url, &body) {
            Ok(p) => p,
            Err(e) => {
                tracing::debug!(manifest = %url, error = %e, "manifest does not parse");
                continue;
            }
        };
        let fragments = listed(&p);
        if fragments.is_empty() && p.format == "hls" {
            // A master playlist: watch its media playlists; its own list is empty.
            let children: Vec<String> = p
                .tracks
                .iter()
                .filter_map(|t| t.playlist_url.clone())
                .collect();
            let mut known = Vec::new();
            for c in children {
                match svc.watched_entry(&c) {
                    Ok((k, _)) => known.push(k),
                    Err(e) => {
                        tracing::debug!(playlist = %c, error = %e, "media playlist not watched")
                    }
                }
            }
            *w.children.lock() = known;
            if published.is_none() {
                svc.publish(&w, Vec::new());
                published = Some(Vec::new());
            }
            continue;
        }
        // Known hashes first; the others are fetched, in the manifest's order.
        let mut entries: Vec<(usize, ListEntry)> = Vec::new();
        let mut missing = Vec::new();
        let now = tokio::time::Instant::now();
        for (i, f) in fragments.iter().enumerate().take(MAX_ENTRIES) {
            let k = (f.url.clone(), f.byte_range);
            match hashes.get(&k) {
                Some(h) => entries.push((i, entry(f, *h))),
                None if failed.get(&k).is_some_and(|x| x.next > now) => {}
                None => missing.push(i),
            }
        }
        let listed_now: HashSet<_> = fragments
            .iter()
            .map(|f| (f.url.clone(), f.byte_range))
            .collect();
        hashes.retain(|k, _| listed_now.contains(k));
        failed.retain(|k, _| listed_now.contains(k));
        let mut last_publish = tokio::time::Instant::now();
        let mut fresh = 0usize;
        for i in missing {
            let f = fragments[i];
            let k = (f.url.clone(), f.byte_range);
            let Ok(furl) = Url::parse(&f.url) else {
                continue;
            };
            match svc
                .fetcher
                .hash(&furl, f.byte_range, svc.cfg.max_fragment_bytes)
                .await
            {
                Ok((h, n)) => {
                    svc.fragments_hashed.fetch_add(1, Ordering::Relaxed);
                    svc.fragment_bytes.fetch_add(n, Ordering::Relaxed);
                    hashes.insert(k.clone(), h);
                    failed.remove(&k);
                    entries.push((i, entry(f, h)));
                    fresh += 1;
                }
                Err(e) => {
                    svc.fetch_failures.fetch_add(1, Ordering::Relaxed);
                    let fl = failed.entry(k).or_insert(Failed {
                        attempts: 0,
                        next: now,
                    });
                    fl.attempts = fl.attempts.saturating_add(1);
                    let back = poll.saturating_mul(1 << fl.attempts.min(6));
                    fl.next = tokio::time::Instant::now() + back.min(Duration::from_secs(5));
                    tracing::debug!(fragment = %f.url, error = %e, "fragment not fetched");
                }
            }
            // A long catch-up (a VoD title, a first look at a window) publishes as it goes.
            if fresh > 0 && last_publish.elapsed() >= poll {
                entries.sort_by_key(|(i, _)| *i);
                let list: Vec<ListEntry> = entries.iter().map(|(_, e)| e.clone()).collect();
                svc.publish(&w, list.clone());
                published = Some(list);
                last_publish = tokio::time::Instant::now();
                fresh = 0;
            }
        }
        entries.sort_by_key(|(i, _)| *i);
        let list: Vec<ListEntry> = entries.into_iter().map(|(_, e)| e).collect();
        if published.as_ref() != Some(&list) {
            svc.publish(&w, list.clone());
            published = Some(list);
        }
    }
}

fn entry(f: &hive_core::manifest::Fragment, hash: ContentHash) -> ListEntry {
    ListEntry {
        uri: f.url.clone(),
        range: f.byte_range,
        hash,
    }
}

/// The query of `GET /v1/integrity`.
#[derive(Debug, serde::Deserialize)]
struct IntegrityQuery {
    manifest: String,
    since: Option<u64>,
    /// Seconds.
    wait: Option<f64>,
}

/// Counts a waiting long-poll while alive.
struct Waiter<'a>(&'a AtomicUsize);

impl Drop for Waiter<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

async fn integrity(
    State(svc): State<Arc<HashService>>,
    q: Result<Query<IntegrityQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(q)) = q else {
        return ApiError::bad_request(
            "query must have manifest=<url-encoded URL>, optionally since=<seq> and wait=<seconds>",
        )
        .into_response();
    };
    let w = match svc.asked(&q.manifest) {
        Ok((_, w)) => w,
        Err(e @ WatchError::NotAllowed(_)) => {
            return ApiError::forbidden(e.to_string()).into_response();
        }
        Err(e @ WatchError::BadUrl(_)) => {
            return ApiError::bad_request(e.to_string()).into_response();
        }
        Err(e @ WatchError::Full(_)) => {
            return ApiError::unavailable(e.to_string()).into_response();
        }
    };
    let since = q.since.unwrap_or(0);
    let mut rx = w.list.subscribe();
    let current = rx.borrow_and_update().clone();
    if current.seq > since {
        return list_reply(current);
    }
    let wait = q
        .wait
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .unwrap_or(svc.cfg.default_wait)
        .min(svc.cfg.max_wait);
    if svc.waiters.fetch_add(1, Ordering::Relaxed) >= svc.cfg.max_waiters {
        svc.waiters.fetch_sub(1, Ordering::Relaxed);
        return ApiError::unavailable("too many long-polls waiting; try again").into_response();
    }
    let _waiter = Waiter(&svc.waiters);
    match tokio::time::timeout(wait, rx.wait_for(|p| p.seq > since)).await {
        Ok(Ok(p)) => list_reply(p.clone()),
        _ => {
            let mut r = StatusCode::NOT_MODIFIED.into_response();
            if let Ok(v) = HeaderValue::from_str(&w.list.borrow().seq.to_string()) {
                r.headers_mut().insert(SEQ_HEADER, v);
            }
            r
        }
    }
}

fn list_reply(p: Published) -> Response {
    let mut r = (StatusCode::OK, p.body).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(v) = HeaderValue::from_str(&p.seq.to_string()) {
        h.insert(SEQ_HEADER, v);
    }
    r
}

/// Serves `service` on `listener` until `shutdown` completes, with `GET /healthz` (`ok`) beside
/// its routes, on [`serve_bounded`](crate::http::serve_bounded) with
/// [`HashServiceConfig::http`]'s limits.
pub async fn serve(
    listener: tokio::net::TcpListener,
    service: Arc<HashService>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limits = service.cfg.http.clone();
    let router = service.router().route("/healthz", get(|| async { "ok" }));
    crate::http::serve_bounded(listener, router, limits, shutdown).await
}
