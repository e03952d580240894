//! `hive origin`: a synthetic live origin serving HLS and DASH in real time, or the files of a
//! folder (real media made by ffmpeg), with byte counters so a demo or a test can measure what
//! the origin really served.
//!
//! | path | what |
//! |---|---|
//! | `/live/master.m3u8` | HLS master playlist, one variant per rendition |
//! | `/live/<track>/index.m3u8` | HLS live media playlist (sliding window) |
//! | `/live/<track>/<seq>.ts` | a fragment (404 before it is published or after retention) |
//! | `/live/manifest.mpd` | dynamic DASH MPD (`SegmentTemplate`, `$Number$`) |
//! | `…/index.m3u8.hive-integrity`, `/live/manifest.mpd.hive-integrity` | with a signing key: the signed list of the fragments' hashes beside each manifest ([`hive_core::integrity`]) |
//! | `/live/<track>/init.mp4`, `/live/<track>/<seq>.m4s` | DASH initialisation and media segments |
//! | `/media/<path>` | files of the `--folder` (static, `Range` supported: a range is read and streamed from disk, nothing else; no path leaves the folder) |
//! | `/metrics` | Prometheus counters |
//!
//! ```no_run
//! # async fn run() -> std::io::Result<()> {
//! use std::sync::Arc;
//! use hive_services::origin::{Origin, OriginConfig, serve};
//! let origin = Arc::new(Origin::new(OriginConfig::default()));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! println!("http://{}/live/master.m3u8", listener.local_addr()?);
//! serve(listener, origin, std::future::pending()).await
//! # }
//! ```

mod folder;
mod live;
mod testcard;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use hive_core::ContentHash;
use hive_core::integrity::{LIST_SUFFIX, ListEntry, PublisherKey, SignedList};
use parking_lot::Mutex;

pub use live::{LiveConfig, LiveStream, Media, Rendition, Span};

/// Settings of an origin.
#[derive(Debug, Default)]
pub struct OriginConfig {
    /// The synthetic live stream.
    pub live: LiveConfig,
    /// A folder served under `/media/` (e.g. an HLS ladder made by ffmpeg).
    pub folder: Option<PathBuf>,
    /// The publisher's key: with one, the live stream's manifests have their signed integrity
    /// lists beside them, as `hive sign` writes them for a real packager.
    pub sign_key: Option<PublisherKey>,
}

/// What the origin served so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OriginStats {
    /// Requests answered (any status).
    pub requests: u64,
    /// Body bytes of fragments and segments served.
    pub fragment_bytes: u64,
    /// Body bytes of playlists and manifests served.
    pub manifest_bytes: u64,
    /// Fragments served.
    pub fragments: u64,
    /// Requests answered 404.
    pub not_found: u64,
    /// Bytes read from the `--folder`'s files (a range reads only its own bytes).
    pub disk_bytes: u64,
}

/// Fragment hashes by (sequence, track, file extension; the audio is track `usize::MAX`).
type HashCache = std::collections::BTreeMap<(u64, usize, &'static str), ContentHash>;

/// The origin server's state.
#[derive(Debug)]
pub struct Origin {
    live: LiveStream,
    folder: Option<PathBuf>,
    requests: AtomicU64,
    fragment_bytes: AtomicU64,
    manifest_bytes: AtomicU64,
    fragments: AtomicU64,
    not_found: AtomicU64,
    disk_bytes: Arc<AtomicU64>,
    sign_key: Option<PublisherKey>,
    /// Hashes of the live fragments listed past the on-demand title; the oldest leave as the
    /// window moves.
    hashes: Mutex<HashCache>,
    /// The on-demand title's hashes, kept whole.
    title_hashes: Mutex<HashCache>,
    lists: AtomicU64,
}

impl Origin {
    /// An origin whose live stream starts now.
    pub fn new(cfg: OriginConfig) -> Self {
        Origin {
            live: LiveStream::new(cfg.live, SystemTime::now()),
            folder: cfg.folder,
            requests: AtomicU64::new(0),
            fragment_bytes: AtomicU64::new(0),
            manifest_bytes: AtomicU64::new(0),
            fragments: AtomicU64::new(0),
            not_found: AtomicU64::new(0),
            disk_bytes: Arc::new(AtomicU64::new(0)),
            sign_key: cfg.sign_key,
            hashes: Mutex::new(Default::default()),
            title_hashes: Mutex::new(Default::default()),
            lists: AtomicU64::new(0),
        }
    }

    /// Integrity lists served.
    pub fn lists_served(&self) -> u64 {
        self.lists.load(Ordering::Relaxed)
    }

    /// The hash of a fragment (`kind`: its file's extension, `ts` or `m4s`; the test card's
    /// audio is track `usize::MAX`), computed once.
    fn hash_of(&self, track: usize, seq: u64, kind: &'static str) -> ContentHash {
        // The on-demand title's fragments (the live stream's first ones too) are hashed once and
        // kept: at most `vod_fragments` per track and packaging, so no request can make the
        // origin hash the title again. Of the rest, about two live windows of every track in
        // both packagings and of the audio, the oldest dropped first.
        let cfg = self.live.config();
        let cache = if seq < cfg.vod_fragments {
            &self.title_hashes
        } else {
            &self.hashes
        };
        if let Some(h) = cache.lock().get(&(seq, track, kind)) {
            return *h;
        }
        let bytes = match (kind, track) {
            ("m4s", usize::MAX) => self.live.audio_fragment(seq).unwrap_or_default(),
            ("m4s", _) => self.live.fmp4_fragment(track, seq),
            _ => self.live.fragment(track, seq),
        };
        let h = ContentHash::of(&bytes);
        let mut m = cache.lock();
        m.insert((seq, track, kind), h);
        if seq >= cfg.vod_fragments {
            let kinds = cfg.ladder.len() * 2 + 1;
            let keep =
                (cfg.window.saturating_add(cfg.retention) as usize).saturating_mul(kinds * 2);
            while m.len() > keep {
                m.pop_first();
            }
        }
        h
    }

    /// The signed list beside a manifest (`rest` is the path under `/live/` or `/vod/`
    /// without the suffix) listing the fragments of `span`, or `None` when there is no such
    /// manifest or no key.
    fn integrity_list(&self, rest: &str, span: Span) -> Option<String> {
        let key = self.sign_key.as_ref()?;
        let range = self.live.range(span);
        let mut entries = Vec::new();
        // One fragmented-MP4 track: its init segment, then its fragments, under `dir`.
        let fmp4 = |entries: &mut Vec<ListEntry>, dir: &str, track: usize, init: Bytes| {
            entries.push(ListEntry {
                uri: format!("{dir}init.mp4"),
                range: None,
                hash: ContentHash::of(&init),
            });
            for seq in range.clone() {
                entries.push(ListEntry {
                    uri: format!("{dir}{seq}.m4s"),
                    range: None,
                    hash: self.hash_of(track, seq, "m4s"),
                });
            }
        };
        if rest == "manifest.mpd" {
            for track in 0..self.live.config().ladder.len() {
                fmp4(
                    &mut entries,
                    &format!("{track}/"),
                    track,
                    self.live.init_segment(track),
                );
            }
            if let Some(init) = self.live.audio_init() {
                fmp4(&mut entries, "audio/", usize::MAX, init);
            }
        } else if let Some(track) = rest.strip_suffix("/index-fmp4.m3u8") {
            // The fragmented-MP4 playlists: the init segment and the fragments, as DASH's.
            let (track, init) = match track {
                "audio" => (usize::MAX, self.live.audio_init()?),
                t => {
                    let t = t.parse::<usize>().ok()?;
                    if t >= self.live.config().ladder.len() {
                        return None;
                    }
                    (t, self.live.init_segment(t))
                }
            };
            fmp4(&mut entries, "", track, init);
        } else {
            let track = rest.strip_suffix("/index.m3u8")?.parse::<usize>().ok()?;
            if track >= self.live.config().ladder.len() {
                return None;
            }
            for seq in range.clone() {
                entries.push(ListEntry {
                    uri: format!("{seq}.ts"),
                    range: None,
                    hash: self.hash_of(track, seq, "ts"),
                });
            }
        }
        // A live list is numbered by its newest fragment; an on-demand one never changes.
        let list = SignedList {
            seq: range.end.saturating_sub(1),
            entries,
        };
        self.lists.fetch_add(1, Ordering::Relaxed);
        String::from_utf8(list.sign(key)).ok()
    }

    /// The live stream (its clock, its fragments' bytes).
    pub fn live(&self) -> &LiveStream {
        &self.live
    }

    /// The counters.
    pub fn stats(&self) -> OriginStats {
        OriginStats {
            requests: self.requests.load(Ordering::Relaxed),
            fragment_bytes: self.fragment_bytes.load(Ordering::Relaxed),
            manifest_bytes: self.manifest_bytes.load(Ordering::Relaxed),
            fragments: self.fragments.load(Ordering::Relaxed),
            not_found: self.not_found.load(Ordering::Relaxed),
            disk_bytes: self.disk_bytes.load(Ordering::Relaxed),
        }
    }

    /// The HTTP routes.
    pub fn router(self: Arc<Self>) -> Router {
        Router::new().fallback(handle).with_state(self)
    }

    fn metrics(&self) -> String {
        let s = self.stats();
        format!(
            "# HELP hive_origin_requests_total Requests answered.\n# TYPE hive_origin_requests_total counter\nhive_origin_requests_total {}\n\
# HELP hive_origin_bytes_total Body bytes served, by kind.\n# TYPE hive_origin_bytes_total counter\nhive_origin_bytes_total{{kind=\"fragment\"}} {}\nhive_origin_bytes_total{{kind=\"manifest\"}} {}\n\
# HELP hive_origin_fragments_total Fragments served.\n# TYPE hive_origin_fragments_total counter\nhive_origin_fragments_total {}\n\
# HELP hive_origin_not_found_total Requests answered 404.\n# TYPE hive_origin_not_found_total counter\nhive_origin_not_found_total {}\n",
            s.requests, s.fragment_bytes, s.manifest_bytes, s.fragments, s.not_found
        )
    }

    async fn answer(&self, path: &str, headers: &HeaderMap) -> Reply {
        if let Some(rest) = path.strip_prefix("/media/") {
            return match &self.folder {
                Some(dir) => folder::serve(dir, rest, headers, &self.disk_bytes).await,
                None => Reply::not_found(),
            };
        }
        self.answer_live(path)
    }

    fn answer_live(&self, path: &str) -> Reply {
        if path == "/metrics" {
            return Reply::text(self.metrics(), "text/plain; version=0.0.4");
        }
        if path == "/healthz" {
            return Reply::text("ok\n".into(), "text/plain");
        }
        let (rest, span) = if let Some(rest) = path.strip_prefix("/live/") {
            (rest, Span::Live(SystemTime::now()))
        } else if let Some(rest) = path.strip_prefix("/vod/") {
            (rest, Span::Vod)
        } else {
            return Reply::not_found();
        };
        if let Some(manifest) = rest.strip_suffix(LIST_SUFFIX) {
            return match self.integrity_list(manifest, span) {
                Some(l) => Reply::manifest(l, "text/plain; charset=utf-8"),
                None => Reply::not_found(),
            };
        }
        match rest {
            "master.m3u8" => {
                return Reply::manifest(self.live.hls_master(), "application/vnd.apple.mpegurl");
            }
            "manifest.mpd" => {
                return Reply::manifest(self.live.dash_mpd_in(span), "application/dash+xml");
            }
            "master-fmp4.m3u8" => {
                return Reply::manifest(
                    self.live.hls_master_fmp4(),
                    "application/vnd.apple.mpegurl",
                );
            }
            _ => {}
        }
        let Some((track, file)) = rest.split_once('/') else {
            return Reply::not_found();
        };
        if track == "audio" {
            if file == "index-fmp4.m3u8" {
                return match self.live.hls_media_fmp4_in(None, span) {
                    Some(p) => Reply::manifest(p, "application/vnd.apple.mpegurl"),
                    None => Reply::not_found(),
                };
            }
            let bytes = match file.strip_suffix(".m4s").map(str::parse::<u64>) {
                _ if file == "init.mp4" => self.live.audio_init(),
                Some(Ok(seq)) if self.live.available_in(seq, span) => self.live.audio_fragment(seq),
                _ => None,
            };
            return match bytes {
                Some(b) => Reply::fragment(b, "video/mp4"),
                None => Reply::not_found(),
            };
        }
        let Ok(track) = track.parse::<usize>() else {
            return Reply::not_found();
        };
        if track >= self.live.config().ladder.len() {
            return Reply::not_found();
        }
        if file == "index.m3u8" {
            return match self.live.hls_media_in(track, span) {
                Some(p) => Reply::manifest(p, "application/vnd.apple.mpegurl"),
                None => Reply::not_found(),
            };
        }
        if file == "index-fmp4.m3u8" {
            return match self.live.hls_media_fmp4_in(Some(track), span) {
                Some(p) => Reply::manifest(p, "application/vnd.apple.mpegurl"),
                None => Reply::not_found(),
            };
        }
        if file == "init.mp4" {
            return Reply::fragment(self.live.init_segment(track), "video/mp4");
        }
        let (seq, kind) = match file.rsplit_once('.') {
            Some((n, "ts")) => (n, "video/mp2t"),
            Some((n, "m4s")) => (n, "video/iso.segment"),
            _ => return Reply::not_found(),
        };
        match seq.parse::<u64>() {
            Ok(seq) if self.live.available_in(seq, span) && kind == "video/mp2t" => {
                Reply::fragment(self.live.fragment(track, seq), kind)
            }
            Ok(seq) if self.live.available_in(seq, span) => {
                Reply::fragment(self.live.fmp4_fragment(track, seq), kind)
            }
            _ => Reply::not_found(),
        }
    }

    fn count(&self, reply: &Reply) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let n = reply.len();
        match reply.kind {
            Kind::Fragment => {
                self.fragments.fetch_add(1, Ordering::Relaxed);
                self.fragment_bytes.fetch_add(n, Ordering::Relaxed);
            }
            Kind::Manifest => {
                self.manifest_bytes.fetch_add(n, Ordering::Relaxed);
            }
            Kind::Other if reply.status == StatusCode::NOT_FOUND => {
                self.not_found.fetch_add(1, Ordering::Relaxed);
            }
            Kind::Other => {}
        }
    }
}

/// What a reply counts as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Fragment,
    Manifest,
    Other,
}

/// A reply before it becomes an HTTP response.
#[derive(Debug)]
struct Reply {
    status: StatusCode,
    kind: Kind,
    content_type: &'static str,
    body: Bytes,
    /// Instead of `body`: this many bytes streamed from a reader (a file, seeked).
    stream: Option<(folder::FileRange, u64)>,
    headers: Vec<(header::HeaderName, HeaderValue)>,
}

impl Reply {
    fn new(status: StatusCode, kind: Kind, content_type: &'static str, body: Bytes) -> Self {
        Reply {
            status,
            kind,
            content_type,
            body,
            stream: None,
            headers: Vec::new(),
        }
    }

    /// The body's length.
    fn len(&self) -> u64 {
        match &self.stream {
            Some((_, n)) => *n,
            None => self.body.len() as u64,
        }
    }

    fn text(body: String, content_type: &'static str) -> Self {
        Reply::new(StatusCode::OK, Kind::Other, content_type, body.into())
    }

    fn manifest(body: String, content_type: &'static str) -> Self {
        let mut r = Reply::new(StatusCode::OK, Kind::Manifest, content_type, body.into());
        r.headers
            .push((header::CACHE_CONTROL, HeaderValue::from_static("no-cache")));
        r
    }

    fn fragment(body: Bytes, content_type: &'static str) -> Self {
        let mut r = Reply::new(StatusCode::OK, Kind::Fragment, content_type, body);
        r.headers.push((
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=60"),
        ));
        r
    }

    fn not_found() -> Self {
        Reply::new(
            StatusCode::NOT_FOUND,
            Kind::Other,
            "text/plain",
            Bytes::from_static(b"not found\n"),
        )
    }

    fn into_response(self, head: bool) -> Response {
        let len = self.len();
        let mut resp = Response::new(match self.stream {
            _ if head => Body::empty(),
            Some((reader, _)) => Body::from_stream(tokio_util::io::ReaderStream::with_capacity(
                reader,
                folder::CHUNK,
            )),
            None => Body::from(self.body),
        });
        *resp.status_mut() = self.status;
        let h = resp.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(self.content_type),
        );
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
        h.insert(
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            HeaderValue::from_static("*"),
        );
        for (k, v) in self.headers {
            h.insert(k, v);
        }
        resp
    }
}

async fn handle(State(origin): State<Arc<Origin>>, req: Request) -> Response {
    let method = req.method().clone();
    if method != Method::GET && method != Method::HEAD {
        return (StatusCode::METHOD_NOT_ALLOWED, "GET or HEAD\n").into_response();
    }
    let reply = origin.answer(req.uri().path(), req.headers()).await;
    let head = method == Method::HEAD;
    if !head {
        origin.count(&reply);
    }
    reply.into_response(head)
}

/// Serves `origin` on `listener` until `shutdown` completes, on
/// [`serve_bounded`](crate::http::serve_bounded) with the default
/// [`HttpLimits`](crate::http::HttpLimits) (to choose others, serve [`Origin::router`] with
/// `serve_bounded` yourself).
pub async fn serve(
    listener: tokio::net::TcpListener,
    origin: Arc<Origin>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    crate::http::serve_bounded(
        listener,
        origin.router(),
        crate::http::HttpLimits::default(),
        shutdown,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_titles_hashes_stay_while_the_live_window_moves_on() {
        let o = Origin::new(OriginConfig::default());
        let title = o.live().config().vod_fragments;
        let h = o.hash_of(0, 5, "ts");
        // Far more live fragments than the live cache keeps.
        for seq in title..title + 2_000 {
            o.hash_of(0, seq, "ts");
        }
        assert_eq!(o.title_hashes.lock().get(&(5, 0, "ts")), Some(&h));
        let live = o.hashes.lock();
        let cfg = o.live().config();
        let keep = (cfg.window + cfg.retention) as usize * (cfg.ladder.len() * 2 + 1) * 2;
        assert_eq!(live.len(), keep);
        assert!(live.contains_key(&(title + 1_999, 0, "ts")));
        assert_eq!(h, ContentHash::of(&o.live().fragment(0, 5)));
    }

    #[test]
    fn signed_lists_cover_every_fmp4_playlist_and_the_mpd_init_first() {
        let key = PublisherKey::from_seed([3; 32]);
        let o = Origin::new(OriginConfig {
            sign_key: Some(PublisherKey::from_seed([3; 32])),
            ..OriginConfig::default()
        });
        let window = o.live().config().window as usize;
        let list = |rest: &str, span| {
            let body = o.integrity_list(rest, span).expect("a list");
            SignedList::verify(body.as_bytes(), &key.public()).expect("signed")
        };
        let now = Span::Live(SystemTime::now());
        for (rest, track) in [
            ("1/index-fmp4.m3u8", 1),
            ("audio/index-fmp4.m3u8", usize::MAX),
        ] {
            let l = list(rest, now);
            assert_eq!(l.entries.len(), window + 1, "{rest}");
            assert_eq!(l.entries[0].uri, "init.mp4");
            let last = &l.entries[window];
            let seq: u64 = last.uri.trim_end_matches(".m4s").parse().expect("seq");
            assert_eq!(last.hash, o.hash_of(track, seq, "m4s"));
        }
        // The MPD's: each of three renditions and the audio, init then fragments.
        let mpd = list("manifest.mpd", now);
        assert_eq!(mpd.entries.len(), 4 * (window + 1));
        assert_eq!(mpd.entries[window + 1].uri, "1/init.mp4");
        assert_eq!(mpd.entries[3 * (window + 1)].uri, "audio/init.mp4");
        // On demand: the whole title, fixed.
        let vod = list("0/index.m3u8", Span::Vod);
        assert_eq!(vod.entries.len(), o.live().config().vod_fragments as usize);
        assert!(o.integrity_list("9/index-fmp4.m3u8", now).is_none());
    }
}
