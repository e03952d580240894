//! The agent serves its player, and only its player's origins (issue #17): every URL form of
//! the proxy refuses a host that is not listed, with a 403 that says how to allow it, and web
//! pages get the CORS grants the origin gives them, no more.
//!
//! Two servers on loopback: the origin the agent is started with (a one-stream HLS origin
//! whose CORS behaviour each test picks) and a "secret" local service on another port that no
//! request may ever reach.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::http::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
    CONTENT_TYPE, LOCATION, ORIGIN, VARY,
};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::IntoResponse;
use hive_agent::{Agent, AgentConfig};

/// The web page the tests' requests come from.
const PAGE: &str = "https://page.example";
const SEGMENT: &[u8] = b"fragment zero, as the origin serves it";

/// What the test origin answers web pages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cors {
    /// No CORS header at all.
    Off,
    /// `Access-Control-Allow-Origin: *`.
    Star,
    /// Echoes `PAGE` (only that page), and grants private-network access when asked.
    Echo,
}

async fn bind() -> (tokio::net::TcpListener, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("addr").to_string();
    (listener, addr)
}

/// A local service the agent must never reach; counts the requests it gets.
async fn secret() -> (String, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    let handler = move || {
        let h = h.clone();
        async move {
            h.fetch_add(1, Ordering::SeqCst);
            "secret\n"
        }
    };
    let (listener, addr) = bind().await;
    let app = axum::Router::new().fallback(handler);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (addr, hits)
}

/// A VoD HLS origin: `/live.m3u8` lists `seg0.ts` and the `extra` fragment URLs;
/// `/redirect-away` redirects to `away`, `/redirect-home` to `/seg0.ts`.
async fn origin(cors: Cors, extra: &[String], away: String) -> String {
    let mut playlist = String::from(
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n\
         #EXTINF:2.0,\nseg0.ts\n",
    );
    for u in extra {
        playlist.push_str(&format!("#EXTINF:2.0,\n{u}\n"));
    }
    playlist.push_str("#EXT-X-ENDLIST\n");
    let handler = move |method: Method, uri: Uri, req: HeaderMap| {
        let playlist = playlist.clone();
        let away = away.clone();
        async move {
            let mut h = HeaderMap::new();
            let page = req.get(ORIGIN).filter(|o| o.as_bytes() == PAGE.as_bytes());
            match (cors, page) {
                (Cors::Star, _) => {
                    h.insert(ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
                }
                (Cors::Echo, Some(p)) => {
                    h.insert(ACCESS_CONTROL_ALLOW_ORIGIN, p.clone());
                    h.insert(VARY, HeaderValue::from_static("origin"));
                }
                _ => {}
            }
            if method == Method::OPTIONS {
                if h.contains_key(ACCESS_CONTROL_ALLOW_ORIGIN) {
                    h.insert(
                        ACCESS_CONTROL_ALLOW_METHODS,
                        HeaderValue::from_static("GET, HEAD"),
                    );
                    h.insert(
                        ACCESS_CONTROL_ALLOW_HEADERS,
                        HeaderValue::from_static("range"),
                    );
                    if cors == Cors::Echo
                        && req.contains_key("access-control-request-private-network")
                    {
                        h.insert(
                            "access-control-allow-private-network",
                            HeaderValue::from_static("true"),
                        );
                    }
                }
                return (StatusCode::NO_CONTENT, h).into_response();
            }
            match uri.path() {
                "/live.m3u8" => {
                    h.insert(
                        CONTENT_TYPE,
                        HeaderValue::from_static("application/vnd.apple.mpegurl"),
                    );
                    (StatusCode::OK, h, playlist).into_response()
                }
                "/seg0.ts" => (StatusCode::OK, h, SEGMENT).into_response(),
                "/redirect-away" => {
                    if let Ok(v) = HeaderValue::from_str(&away) {
                        h.insert(LOCATION, v);
                    }
                    (StatusCode::FOUND, h).into_response()
                }
                "/redirect-home" => {
                    h.insert(LOCATION, HeaderValue::from_static("/seg0.ts"));
                    (StatusCode::FOUND, h).into_response()
                }
                _ => (StatusCode::NOT_FOUND, h).into_response(),
            }
        }
    };
    let (listener, addr) = bind().await;
    let app = axum::Router::new().fallback(handler);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    addr
}

async fn agent(origin: Option<&str>, allow: &[&str]) -> Agent {
    Agent::builder()
        .config(AgentConfig {
            origin: origin.map(|o| format!("http://{o}")),
            allow_origins: allow.iter().map(|s| s.to_string()).collect(),
            ..AgentConfig::default()
        })
        .build()
        .await
        .expect("agent starts")
}

struct Got {
    status: u16,
    headers: HeaderMap,
    body: String,
}

async fn request(method: Method, url: &str, headers: &[(&'static str, &'static str)]) -> Got {
    let client = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let mut req = client.request(method, url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let r = req.send().await.expect("request");
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let body = r.text().await.expect("body");
    Got {
        status,
        headers,
        body,
    }
}

async fn get(url: &str) -> Got {
    request(Method::GET, url, &[]).await
}

async fn get_from_page(url: &str) -> Got {
    request(Method::GET, url, &[("origin", PAGE)]).await
}

fn acao(g: &Got) -> Option<&str> {
    g.headers
        .get(ACCESS_CONTROL_ALLOW_ORIGIN)
        .and_then(|v| v.to_str().ok())
}

/// A 403 whose one-line message names `host` and the flag that allows it.
#[track_caller]
fn assert_refused(g: &Got, what: &str, host: &str) {
    assert_eq!(g.status, 403, "{what}: {}", g.body);
    assert!(
        g.body.contains("not allowed") && g.body.contains(host),
        "{what}: the message names {host}: {}",
        g.body
    );
    assert_eq!(g.body.trim_end().lines().count(), 1, "{what}: one line");
    assert_eq!(acao(g), None, "{what}: no CORS grant on a refusal");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_url_form_refuses_a_host_that_is_not_listed() {
    let (secret, hits) = secret().await;
    let sport = secret.rsplit(':').next().expect("port").to_string();
    let o = origin(
        Cors::Off,
        &[
            format!("http://{secret}/x.ts"),
            "http://unlisted.example/y.ts".to_string(),
        ],
        format!("http://{secret}/secret"),
    )
    .await;
    let oport = o.rsplit(':').next().expect("port").to_string();
    let a = agent(Some(&o), &[]).await;
    let p = a.proxy_url();

    // Allowed forms still work.
    assert_eq!(get(&format!("{p}/live.m3u8")).await.status, 200);
    assert_eq!(get(&format!("{p}/http://{o}/live.m3u8")).await.status, 200);
    let seg = get(&format!("{p}/.hive/o/http/{o}/seg0.ts")).await;
    assert_eq!((seg.status, seg.body.as_bytes()), (200, SEGMENT));
    let seg = get(&format!("{p}/seg0.ts")).await;
    assert_eq!((seg.status, seg.body.as_bytes()), (200, SEGMENT));
    let seg = get(&format!("{p}/http://2130706433:{oport}/seg0.ts")).await;
    assert_eq!(seg.status, 200, "127.0.0.1 spelt in decimal is the origin");
    let seg = get(&format!("{p}/redirect-home")).await;
    assert_eq!(
        (seg.status, seg.body.as_bytes()),
        (200, SEGMENT),
        "a redirect within the origin is followed"
    );

    let secret_host = format!("127.0.0.1:{sport}");
    for (what, path, host) in [
        (
            "full URL",
            format!("/http://{secret}/secret"),
            &*secret_host,
        ),
        (
            "full https URL",
            format!("/https://{secret}/secret"),
            &secret_host,
        ),
        (
            "rewritten form",
            format!("/.hive/o/http/{secret}/secret"),
            &secret_host,
        ),
        (
            "rewritten https form",
            format!("/.hive/o/https/{secret}/secret"),
            &secret_host,
        ),
        (
            "user info",
            format!("/http://{o}@{secret}/secret"),
            &secret_host,
        ),
        (
            "user info, rewritten",
            format!("/.hive/o/http/{o}@{secret}/secret"),
            &secret_host,
        ),
        (
            "decimal IPv4",
            format!("/http://2130706433:{sport}/secret"),
            &secret_host,
        ),
        (
            "hex IPv4",
            format!("/http://0x7f000001:{sport}/secret"),
            &secret_host,
        ),
        (
            "dotted hex IPv4",
            format!("/http://0x7f.0.0.1:{sport}/secret"),
            &secret_host,
        ),
        (
            "octal IPv4",
            format!("/http://0177.0.0.1:{sport}/secret"),
            &secret_host,
        ),
        (
            "short IPv4",
            format!("/http://127.1:{sport}/secret"),
            &secret_host,
        ),
        (
            "IPv6 loopback",
            format!("/http://[::1]:{oport}/live.m3u8"),
            "[::1]",
        ),
        (
            "v4-mapped IPv6",
            format!("/http://[::ffff:127.0.0.1]:{sport}/secret"),
            "[::ffff:7f00:1]",
        ),
        (
            "v4-mapped IPv6 of the origin",
            format!("/http://[::ffff:127.0.0.1]:{oport}/live.m3u8"),
            "[::ffff:7f00:1]",
        ),
        (
            "localhost",
            format!("/http://localhost:{sport}/secret"),
            "localhost",
        ),
        (
            "localhost at the origin's port",
            format!("/http://localhost:{oport}/live.m3u8"),
            "localhost",
        ),
        (
            "case-mixed host",
            format!("/http://LocalHost:{sport}/secret"),
            "localhost",
        ),
        (
            "unlisted name",
            "/http://unlisted.example/".to_string(),
            "unlisted.example:80",
        ),
        (
            "redirect to an unlisted host",
            "/redirect-away".to_string(),
            &secret_host,
        ),
        (
            "redirect, full URL",
            format!("/http://{o}/redirect-away"),
            &secret_host,
        ),
    ] {
        let g = get(&format!("{p}{path}")).await;
        assert_refused(&g, what, host);
    }
    let g = get(&format!("{p}/http://{secret}/secret")).await;
    assert!(
        g.body.contains(&format!("--allow-origin {secret_host}")),
        "says how to allow it: {}",
        g.body
    );

    // A manifest that lists fragments elsewhere: the player's requests for them are refused.
    let listed = get(&format!("{p}/live.m3u8")).await.body;
    let rewritten: Vec<&str> = listed
        .lines()
        .filter(|l| l.starts_with("/.hive/o/"))
        .collect();
    assert_eq!(rewritten.len(), 2, "absolute URLs rewritten: {listed}");
    for path in rewritten {
        let g = get(&format!("{p}{path}")).await;
        assert_eq!(g.status, 403, "{path}: {}", g.body);
    }
    // Give the engine time to try a prefetch of the listed fragments, if it would.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "the secret service was never reached"
    );
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_origin_and_no_allowlist_refuses_everything() {
    let o = origin(Cors::Off, &[], String::new()).await;
    let a = agent(None, &[]).await;
    let g = get(&format!("{}/http://{o}/live.m3u8", a.proxy_url())).await;
    assert_refused(&g, "no origin", &o);
    assert!(g.body.contains("--origin"), "{}", g.body);
    let g = get(&format!("{}/.hive/o/http/{o}/live.m3u8", a.proxy_url())).await;
    assert_refused(&g, "no origin, rewritten form", &o);
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allow_origin_lets_a_listed_loopback_port_through() {
    let (secret, hits) = secret().await;
    let sport = secret.rsplit(':').next().expect("port").to_string();
    let o = origin(Cors::Off, &[], format!("http://{secret}/secret")).await;
    let oport = o.rsplit(':').next().expect("port").to_string();
    let listed = format!("LocalHost:{oport}");
    let a = agent(Some(&o), &[&secret, &listed]).await;
    let p = a.proxy_url();
    let g = get(&format!("{p}/http://{secret}/secret")).await;
    assert_eq!((g.status, g.body.as_str()), (200, "secret\n"));
    let g = get(&format!("{p}/redirect-away")).await;
    assert_eq!(g.status, 200, "a redirect to a listed host: {}", g.body);
    // A listed name compares case-insensitively and may resolve to loopback.
    let g = get(&format!("{p}/http://LOCALHOST:{oport}/live.m3u8")).await;
    assert_eq!(g.status, 200, "{}", g.body);
    // Another port of the same host is still refused.
    let g = get(&format!("{p}/http://localhost:{sport}/secret")).await;
    assert_refused(&g, "localhost at an unlisted port", "localhost");
    assert_eq!(hits.load(Ordering::SeqCst), 2);
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_allow_origin_entries_are_a_configuration_error() {
    let r = Agent::builder()
        .config(AgentConfig {
            allow_origins: vec!["http://cdn.example/".into()],
            ..AgentConfig::default()
        })
        .build()
        .await;
    let e = r.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(e.contains("--allow-origin"), "{e}");
}

/// The agent's answers to `PAGE` for the playlist (pass-through) and for the fragment (served
/// by the swarm engine, from the origin or its cache): their `Access-Control-Allow-Origin`.
async fn grants(p: &str) -> (Option<String>, Option<String>) {
    let playlist = get_from_page(&format!("{p}/live.m3u8")).await;
    assert_eq!(playlist.status, 200);
    let seg = get_from_page(&format!("{p}/seg0.ts")).await;
    assert_eq!((seg.status, seg.body.as_bytes()), (200, SEGMENT));
    (
        acao(&playlist).map(str::to_string),
        acao(&seg).map(str::to_string),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_origin_without_cors_gets_none_from_the_agent() {
    let o = origin(Cors::Off, &[], String::new()).await;
    let a = agent(Some(&o), &[]).await;
    assert_eq!(grants(&a.proxy_url()).await, (None, None));
    // Twice: the second fragment answer comes from the cache.
    assert_eq!(grants(&a.proxy_url()).await, (None, None));
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_origin_granting_star_gets_star() {
    let o = origin(Cors::Star, &[], String::new()).await;
    let a = agent(Some(&o), &[]).await;
    let star = Some("*".to_string());
    assert_eq!(grants(&a.proxy_url()).await, (star.clone(), star.clone()));
    assert_eq!(grants(&a.proxy_url()).await, (star.clone(), star));
    // The fragment came through the swarm engine (one origin fetch, then its cache).
    let mut engine_bytes = 0;
    for _ in 0..40 {
        engine_bytes = a.stats().swarm.origin_bytes;
        if engine_bytes > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(engine_bytes, SEGMENT.len() as u64);
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_origin_that_echoes_is_echoed_only_for_pages_it_echoed() {
    let o = origin(Cors::Echo, &[], String::new()).await;
    let a = agent(Some(&o), &[]).await;
    let p = a.proxy_url();
    let page = Some(PAGE.to_string());
    assert_eq!(grants(&p).await, (page.clone(), page));
    let seg = get_from_page(&format!("{p}/seg0.ts")).await;
    assert!(
        seg.headers
            .get_all(VARY)
            .iter()
            .any(|v| v.to_str().is_ok_and(|s| s.eq_ignore_ascii_case("origin"))),
        "Vary: Origin on an echoed grant: {:?}",
        seg.headers
    );
    // Another page: the origin would not echo it, nor does the agent.
    let other = [("origin", "https://other.example")];
    let playlist = request(Method::GET, &format!("{p}/live.m3u8"), &other).await;
    assert_eq!(acao(&playlist), None);
    let seg = request(Method::GET, &format!("{p}/seg0.ts"), &other).await;
    assert_eq!((seg.status, acao(&seg)), (200, None));
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preflights_are_the_origins_answer() {
    let preflight = [
        ("origin", PAGE),
        ("access-control-request-method", "GET"),
        ("access-control-request-headers", "range"),
        ("access-control-request-private-network", "true"),
    ];
    let pna = "access-control-allow-private-network";
    for (cors, want_acao, want_pna) in [
        (Cors::Off, None, false),
        (Cors::Star, Some("*"), false),
        (Cors::Echo, Some(PAGE), true),
    ] {
        let (secret, hits) = secret().await;
        let o = origin(cors, &[], String::new()).await;
        let a = agent(Some(&o), &[]).await;
        let p = a.proxy_url();
        let g = request(Method::OPTIONS, &format!("{p}/live.m3u8"), &preflight).await;
        assert_eq!(g.status, 204, "{cors:?}: the origin's status");
        assert_eq!(acao(&g), want_acao, "{cors:?}");
        assert_eq!(
            g.headers.contains_key(pna),
            want_pna,
            "{cors:?}: {:?}",
            g.headers
        );
        assert_eq!(
            g.headers.contains_key(ACCESS_CONTROL_ALLOW_METHODS),
            want_acao.is_some(),
            "{cors:?}"
        );
        // A preflight for a host that is not listed never leaves the agent.
        let g = request(
            Method::OPTIONS,
            &format!("{p}/http://{secret}/secret"),
            &preflight,
        )
        .await;
        assert_refused(&g, "preflight to an unlisted host", &secret);
        assert_eq!(hits.load(Ordering::SeqCst), 0);
        a.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agents_own_pages_carry_no_cors_header() {
    let o = origin(Cors::Star, &[], String::new()).await;
    let a = agent(Some(&o), &[]).await;
    let p = a.proxy_url();
    let _ = grants(&p).await;
    for path in ["/metrics", "/status"] {
        let g = get_from_page(&format!("{p}{path}")).await;
        assert_eq!(g.status, 200, "{path}");
        assert!(
            !g.headers
                .keys()
                .any(|k| k.as_str().starts_with("access-control-")),
            "{path}: {:?}",
            g.headers
        );
    }
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fetcher_itself_refuses_whatever_calls_it() {
    // The engine's origin fetches and prefetches use the fetcher directly, not the proxy.
    use hive_agent::{FetchError, OriginAllowlist, OriginFetcher};
    let (secret, hits) = secret().await;
    let o = origin(Cors::Off, &[], format!("http://{secret}/secret")).await;
    let allow = OriginAllowlist::new(Some(&format!("http://{o}")), &[]).expect("list");
    let f =
        OriginFetcher::new(std::time::Duration::from_secs(5), 0, 1 << 20, allow).expect("fetcher");
    let seg = format!("http://{o}/seg0.ts");
    let ok = f
        .get_once(&seg, None, std::time::Duration::from_secs(5))
        .await;
    assert_eq!(ok.map(|f| f.body.to_vec()), Ok(SEGMENT.to_vec()));
    for url in [
        format!("http://{secret}/secret"),
        format!("http://{o}/redirect-away"),
    ] {
        let r = f
            .get_once(&url, None, std::time::Duration::from_secs(5))
            .await;
        assert!(
            matches!(&r, Err(FetchError::NotAllowed { host, .. }) if host == &secret),
            "{url}: {r:?}"
        );
    }
    let r = f
        .preflight(&format!("http://{secret}/"), &HeaderMap::new())
        .await;
    assert!(matches!(r, Err(FetchError::NotAllowed { .. })), "{r:?}");
    assert_eq!(hits.load(Ordering::SeqCst), 0);
}
