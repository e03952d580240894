//! The agent proxy's URL and Range mapping: what a player's request line and headers become.
//!
//! Input: `path-and-query \n Range-header-value \n Host-header-value \n fragment bytes`.
//! - The request path goes through the proxy's `origin_url` (reverse-proxy, `/http://`,
//!   `/https://` and `/.hive/o/` forms) and the agent's [`OriginAllowlist`]; whatever passes
//!   must, by an independent reading with the `url` crate, be http(s), carry no user info and
//!   name a listed `host:port` (the origin `origin.test:8080`, `cdn.test` on its scheme's
//!   default port, or the listed private address `10.0.0.7:9000`).
//! - A manifest URL rewritten to the agent's form maps back to itself.
//! - The Range header goes through `parse_range_header` and the fragment answer: the status is
//!   200, 206 or 416, and a 206's body and `Content-Range` agree with the bytes asked for.
//! - The Host check (DNS rebinding) admits only an IP address, `localhost` (or a name under
//!   it), or a listed name.
#![no_main]

use std::sync::OnceLock;

use axum::http::{StatusCode, header};
use bytes::Bytes;
use hive_agent::OriginAllowlist;
use hive_agent::proxy::REWRITE_PREFIX;
use hive_agent::proxy::fuzzing::{fragment_response, host_allowed, origin_url};
use hive_core::ByteRange;
use hive_manifest::parse_range_header;
use hive_manifest::rewrite::Rewriter;
use libfuzzer_sys::fuzz_target;

const ORIGIN: &str = "http://origin.test:8080/live";

fn allowlist() -> &'static OriginAllowlist {
    static A: OnceLock<OriginAllowlist> = OnceLock::new();
    A.get_or_init(|| {
        OriginAllowlist::new(Some(ORIGIN), &["cdn.test".into(), "10.0.0.7:9000".into()])
            .expect("a valid list")
    })
}

fn listed(u: &url::Url) -> bool {
    let Some(host) = u.host_str() else {
        return false;
    };
    let Some(port) = u.port_or_known_default() else {
        return false;
    };
    let default = match u.scheme() {
        "http" => 80,
        "https" => 443,
        _ => return false,
    };
    (host == "origin.test" && port == 8080)
        || (host == "cdn.test" && port == default)
        || (host == "10.0.0.7" && port == 9000)
}

fn check_url(pq: &str) {
    for base in [Some(ORIGIN), None] {
        let Some(u) = origin_url(base, pq) else {
            assert!(base.is_none(), "reverse-proxy mode maps every path");
            continue;
        };
        if let Ok(checked) = allowlist().check_str(&u) {
            let again = url::Url::parse(&u).expect("an allowed URL parses");
            assert_eq!(again, checked);
            assert!(matches!(again.scheme(), "http" | "https"), "{u}");
            assert!(
                again.username().is_empty() && again.password().is_none(),
                "{u}"
            );
            assert!(listed(&again), "{pq:?} reached unlisted {again}");
        }
    }
    // Manifest rewriting round trip.
    let rw = Rewriter::new(REWRITE_PREFIX);
    let abs = pq.trim_start_matches('/');
    if let Some(agent) = rw.to_agent(abs) {
        let back = rw.to_origin(&agent).expect("a rewritten URL maps back");
        let (scheme, rest) = abs
            .split_once("://")
            .expect("to_agent took an absolute URL");
        assert_eq!(back, format!("{}://{rest}", scheme.to_ascii_lowercase()));
    }
}

fn check_range(range: &str, data: &[u8], frag_range: Option<ByteRange>) {
    let asked = parse_range_header(range);
    if let Some(a) = asked {
        assert!(
            a.len > 0 && a.start.checked_add(a.len).is_some(),
            "{range:?} -> {a:?}"
        );
    }
    let data = Bytes::copy_from_slice(data);
    let total = data.len() as u64;
    let r = fragment_response(data, asked, frag_range);
    let status = r.status();
    let body_len = {
        use axum::body::HttpBody;
        r.body().size_hint().exact()
    };
    let content_range = r
        .headers()
        .get(header::CONTENT_RANGE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    match (asked, status) {
        (None, StatusCode::OK) => assert_eq!(body_len, Some(total)),
        (Some(a), StatusCode::PARTIAL_CONTENT) if Some(a) == frag_range => {
            assert_eq!(body_len, Some(total));
            let want = format!("bytes {}-{}/*", a.start, a.end() - 1);
            assert_eq!(content_range.as_deref(), Some(want.as_str()));
        }
        (Some(a), StatusCode::PARTIAL_CONTENT) => {
            assert!(a.start < total);
            let end = a.end().min(total);
            assert_eq!(body_len, Some(end - a.start));
            let want = format!("bytes {}-{}/{total}", a.start, end - 1);
            assert_eq!(content_range.as_deref(), Some(want.as_str()));
        }
        (Some(a), StatusCode::RANGE_NOT_SATISFIABLE) => {
            assert!(a.start >= total);
            let want = format!("bytes */{total}");
            assert_eq!(content_range.as_deref(), Some(want.as_str()));
        }
        (a, s) => panic!("range {a:?} of {total} bytes answered {s}"),
    }
}

fn check_host(host: &[u8]) {
    let names = ["agent.example".to_string()];
    if host_allowed(host, &names) {
        let text = std::str::from_utf8(host).expect("an allowed Host is text");
        let name = if let Some(rest) = text.strip_prefix('[') {
            let v6 = rest.split(']').next().unwrap_or("");
            assert!(v6.parse::<std::net::Ipv6Addr>().is_ok(), "{text:?}");
            return;
        } else {
            match text.rsplit_once(':') {
                Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) => h,
                _ => text,
            }
        };
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        assert!(
            name.parse::<std::net::Ipv4Addr>().is_ok()
                || name == "localhost"
                || name.ends_with(".localhost")
                || name == "agent.example",
            "{text:?} admitted as this agent"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(4, |b| *b == b'\n');
    let pq = parts.next().unwrap_or_default();
    let range = parts.next().unwrap_or_default();
    let host = parts.next().unwrap_or_default();
    let body = parts.next().unwrap_or_default();
    if let Ok(pq) = std::str::from_utf8(pq) {
        // A request's path always starts with '/'.
        check_url(&format!("/{}", pq.trim_start_matches('/')));
        check_url(pq);
    }
    check_host(host);
    if let Ok(range) = std::str::from_utf8(range) {
        // The fragment's own range: none (whole resource), or the range asked for.
        check_range(range, body, None);
        if let Some(r) = parse_range_header(range) {
            check_range(range, body, Some(r));
        }
    }
});
