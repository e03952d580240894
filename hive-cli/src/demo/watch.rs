//! The demo's watch page: one viewer's picture, played by hls.js in the browser through the
//! first viewer's agent, beside live charts of the swarm (viewers, offload, origin egress,
//! stalls, renditions). Served on loopback; hls.js ships inside the binary
//! (`assets/hls.light.min.js`, hls.js 1.7.4, Apache-2.0, `assets/hls.js.LICENSE`).

use std::collections::VecDeque;
use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use parking_lot::Mutex;
use serde::Serialize;

use super::Progress;

/// Samples kept (at one every two seconds: half an hour).
const MAX_SAMPLES: usize = 900;

const PAGE: &str = include_str!("watch.html");
const HLS_JS: &[u8] = include_bytes!("../../assets/hls.light.min.js");

/// One point of the charts.
#[derive(Clone, Debug, Serialize)]
struct Sample {
    t: f64,
    viewers: usize,
    offload: f64,
    origin_bps: f64,
    stalled_players: usize,
    stall_s: f64,
    per_rendition: Vec<usize>,
}

#[derive(Debug, Default)]
struct State {
    /// The watched viewer's agent (its proxy's base URL), once it runs.
    viewer: Option<String>,
    /// The renditions' bitrates, lowest first.
    ladder_kbps: Vec<u64>,
    samples: VecDeque<Sample>,
    /// The origin's fragment bytes at the last sample, and when.
    last_origin: Option<(f64, u64)>,
}

/// What the watch page shows, filled by the demo as it runs.
#[derive(Debug, Default)]
pub struct Watch {
    state: Mutex<State>,
}

impl Watch {
    /// An empty page (no viewer yet, no samples).
    pub fn new() -> Arc<Self> {
        Arc::new(Watch::default())
    }

    /// The viewer whose picture the page plays: its agent's proxy base URL.
    pub(crate) fn set_viewer(&self, proxy_url: String, ladder_kbps: Vec<u64>) {
        let mut s = self.state.lock();
        s.viewer = Some(proxy_url);
        s.ladder_kbps = ladder_kbps;
    }

    /// Whether the page has its viewer.
    pub(crate) fn has_viewer(&self) -> bool {
        self.state.lock().viewer.is_some()
    }

    /// A progress sample, with the origin's fragment bytes so far (for its egress).
    pub(crate) fn sample(&self, p: &Progress, origin_bytes: u64) {
        let mut s = self.state.lock();
        let origin_bps = match s.last_origin {
            Some((t, b)) if p.elapsed_s > t => {
                origin_bytes.saturating_sub(b) as f64 * 8.0 / (p.elapsed_s - t)
            }
            _ => 0.0,
        };
        s.last_origin = Some((p.elapsed_s, origin_bytes));
        if s.samples.len() >= MAX_SAMPLES {
            s.samples.pop_front();
        }
        s.samples.push_back(Sample {
            t: p.elapsed_s,
            viewers: p.viewers,
            offload: p.offload,
            origin_bps,
            stalled_players: p.stalled_players,
            stall_s: p.stall_s,
            per_rendition: p.per_rendition.clone(),
        });
    }

    fn stats(&self) -> serde_json::Value {
        let s = self.state.lock();
        serde_json::json!({
            "viewer": s.viewer,
            "ladder_kbps": s.ladder_kbps,
            "samples": s.samples,
        })
    }

    /// The page's routes: `/` (the page), `/hls.min.js`, `/stats` (JSON), `/favicon.ico`.
    pub fn router(self: Arc<Self>) -> Router {
        let stats = self.clone();
        Router::new()
            .route(
                "/",
                get(|| async {
                    (
                        [
                            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                            (header::CACHE_CONTROL, "no-store"),
                        ],
                        PAGE,
                    )
                }),
            )
            .route(
                "/hls.min.js",
                get(|| async {
                    (
                        [
                            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
                            (header::CACHE_CONTROL, "max-age=3600"),
                        ],
                        HLS_JS,
                    )
                }),
            )
            // No icon: an empty answer, not a 404 in the browser's console.
            .route(
                "/favicon.ico",
                get(|| async { axum::http::StatusCode::NO_CONTENT }),
            )
            .route(
                "/stats",
                get(move || {
                    let w = stats.clone();
                    async move {
                        ([(header::CACHE_CONTROL, "no-store")], axum::Json(w.stats()))
                            .into_response()
                    }
                }),
            )
    }
}

/// Serves the page on `listener` until `stop` resolves, with the header, idle and body
/// timeouts and the connection cap of every Hive HTTP server.
pub async fn serve(
    listener: tokio::net::TcpListener,
    watch: Arc<Watch>,
    stop: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    hive_services::http::serve_bounded(
        listener,
        watch.router(),
        hive_services::http::HttpLimits::default(),
        stop,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn progress(t: f64, viewers: usize) -> Progress {
        Progress {
            elapsed_s: t,
            viewers,
            offload: 0.9,
            stalled_players: 1,
            stall_s: 0.5,
            per_rendition: vec![viewers, 0, 0],
        }
    }

    #[test]
    fn samples_carry_the_origins_egress_and_stay_bounded() {
        let w = Watch::new();
        w.sample(&progress(2.0, 3), 1_000_000);
        w.sample(&progress(4.0, 5), 1_500_000);
        let s = w.stats();
        assert_eq!(s["samples"][1]["origin_bps"], 2_000_000.0);
        assert_eq!(s["samples"][1]["viewers"], 5);
        assert!(s["viewer"].is_null());
        w.set_viewer("http://127.0.0.1:1".into(), vec![500, 1000]);
        assert_eq!(w.stats()["viewer"], "http://127.0.0.1:1");
        for i in 0..2 * MAX_SAMPLES {
            w.sample(&progress(6.0 + i as f64, 1), 0);
        }
        assert_eq!(
            w.stats()["samples"].as_array().map(Vec::len),
            Some(MAX_SAMPLES)
        );
    }

    #[test]
    fn the_page_loads_the_bundled_player_and_the_stats() {
        assert!(PAGE.contains("src=\"/hls.min.js\""));
        assert!(PAGE.contains("fetch(\"/stats\""));
        assert!(PAGE.contains("<video"));
        assert!(HLS_JS.len() > 100_000);
    }
}
