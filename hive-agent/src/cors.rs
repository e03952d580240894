//! CORS: the agent grants a web page what the origin grants it, and nothing more.
//!
//! - A pass-through response carries the origin's own `Access-Control-*` and `Vary` headers.
//! - A fragment served by the swarm (from the cache or a peer: no origin response at hand)
//!   carries what the origin last granted for that stream's manifest: remembered per origin
//!   `host:port` (`Access-Control-Allow-Origin`, `-Expose-Headers`, `-Allow-Credentials`). When
//!   the origin echoed the request's `Origin`, the agent echoes only the page origins the
//!   origin itself echoed.
//! - A preflight (`OPTIONS`) is forwarded to the origin and its answer mirrored (see the proxy).
//! - The agent's own pages (`/metrics`, `/status`) carry no CORS header at all.

use std::collections::HashMap;

use axum::http::header::{
    ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_EXPOSE_HEADERS,
    ORIGIN, VARY,
};
use axum::http::{HeaderMap, HeaderValue};
use hive_core::ContentId;

/// Origins (and streams) remembered at most; the memory starts over past it.
const MAX_ENTRIES: usize = 1024;
/// Page origins remembered per origin that echoes.
const MAX_ECHOED: usize = 16;

/// Whether `name` is a header the origin's CORS answer consists of.
fn is_cors(name: &str) -> bool {
    name.starts_with("access-control-") || name == VARY.as_str()
}

/// Copies the origin's `Access-Control-*` and `Vary` headers onto a response.
pub(crate) fn mirror(from: &HeaderMap, to: &mut HeaderMap) {
    for (k, v) in from {
        if is_cors(k.as_str()) {
            to.append(k.clone(), v.clone());
        }
    }
}

/// The request headers forwarded to the origin so it can answer as it would answer the page:
/// `Origin`, and for a preflight `Access-Control-Request-*`.
pub(crate) fn forwarded(request: &HeaderMap) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in request {
        if k == ORIGIN || k.as_str().starts_with("access-control-request-") {
            h.append(k.clone(), v.clone());
        }
    }
    h
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Allow {
    /// `*`.
    Any,
    /// The origin echoed the page's `Origin`: these (and only these) it echoed.
    Echo(Vec<HeaderValue>),
    /// A fixed value, whatever the page.
    Fixed(HeaderValue),
}

/// What an origin granted.
#[derive(Clone, Debug, Default)]
struct Grant {
    allow: Option<Allow>,
    expose: Option<HeaderValue>,
    credentials: Option<HeaderValue>,
}

/// What each origin last granted, and which origin serves each stream's manifest.
#[derive(Debug, Default)]
pub(crate) struct CorsMemory {
    by_host: HashMap<String, Grant>,
    by_content: HashMap<ContentId, String>,
}

impl CorsMemory {
    /// Learns from the origin's `answer` to a request from a page at `asked` (its `Origin`
    /// header; `None` for a request that is not cross-origin).
    pub(crate) fn remember(&mut self, host: &str, asked: Option<&HeaderValue>, answer: &HeaderMap) {
        let acao = answer.get(ACCESS_CONTROL_ALLOW_ORIGIN);
        // Many origins answer CORS only to requests that carry an Origin: an answer without
        // one to a request without one says nothing.
        if acao.is_none() && asked.is_none() {
            return;
        }
        if self.by_host.len() >= MAX_ENTRIES && !self.by_host.contains_key(host) {
            self.by_host.clear();
        }
        let g = self.by_host.entry(host.to_string()).or_default();
        let previous = g.allow.take();
        g.allow = match (acao, asked) {
            (None, Some(o)) => match previous {
                // The origin refuses this page (perhaps only this one).
                Some(Allow::Echo(mut v)) => {
                    v.retain(|x| x != o);
                    (!v.is_empty()).then_some(Allow::Echo(v))
                }
                _ => None,
            },
            (None, None) => None,
            (Some(a), _) if a.as_bytes() == b"*" => Some(Allow::Any),
            (Some(a), Some(o)) if a == o => {
                let mut v = match previous {
                    Some(Allow::Echo(v)) => v,
                    _ => Vec::new(),
                };
                if !v.contains(o) {
                    if v.len() >= MAX_ECHOED {
                        v.remove(0);
                    }
                    v.push(o.clone());
                }
                Some(Allow::Echo(v))
            }
            (Some(a), _) => Some(Allow::Fixed(a.clone())),
        };
        g.expose = answer.get(ACCESS_CONTROL_EXPOSE_HEADERS).cloned();
        g.credentials = answer.get(ACCESS_CONTROL_ALLOW_CREDENTIALS).cloned();
    }

    /// `content`'s manifest came from `host`.
    pub(crate) fn manifest(&mut self, content: ContentId, host: &str) {
        if self.by_content.len() >= MAX_ENTRIES && !self.by_content.contains_key(&content) {
            self.by_content.clear();
        }
        self.by_content.insert(content, host.to_string());
    }

    /// Adds to `to` the CORS headers the origin of `content` (its manifest's host, else
    /// `host`) would send a page at `asked`: none when it granted nothing.
    pub(crate) fn apply(
        &self,
        content: Option<ContentId>,
        host: &str,
        asked: Option<&HeaderValue>,
        to: &mut HeaderMap,
    ) {
        let host = content
            .and_then(|c| self.by_content.get(&c))
            .map_or(host, String::as_str);
        let Some(g) = self.by_host.get(host) else {
            return;
        };
        let granted = match &g.allow {
            None => None,
            Some(Allow::Any) => Some(HeaderValue::from_static("*")),
            Some(Allow::Fixed(v)) => Some(v.clone()),
            Some(Allow::Echo(v)) => {
                to.append(VARY, HeaderValue::from_static("origin"));
                asked.filter(|o| v.contains(o)).cloned()
            }
        };
        let Some(granted) = granted else {
            return;
        };
        to.insert(ACCESS_CONTROL_ALLOW_ORIGIN, granted);
        if let Some(v) = &g.expose {
            to.insert(ACCESS_CONTROL_EXPOSE_HEADERS, v.clone());
        }
        if let Some(v) = &g.credentials {
            to.insert(ACCESS_CONTROL_ALLOW_CREDENTIALS, v.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    fn granted(m: &CorsMemory, asked: Option<&'static str>) -> Option<String> {
        let mut to = HeaderMap::new();
        let asked = asked.map(HeaderValue::from_static);
        m.apply(None, "o:80", asked.as_ref(), &mut to);
        to.get(ACCESS_CONTROL_ALLOW_ORIGIN)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }

    #[test]
    fn nothing_granted_nothing_added() {
        let mut m = CorsMemory::default();
        assert_eq!(granted(&m, Some("https://a.example")), None);
        let page = HeaderValue::from_static("https://a.example");
        m.remember("o:80", Some(&page), &HeaderMap::new());
        assert_eq!(granted(&m, Some("https://a.example")), None);
    }

    #[test]
    fn star_and_fixed_values_are_repeated() {
        let mut m = CorsMemory::default();
        m.remember(
            "o:80",
            None,
            &headers(&[
                ("access-control-allow-origin", "*"),
                ("access-control-expose-headers", "content-length"),
            ]),
        );
        assert_eq!(granted(&m, Some("https://x.example")).as_deref(), Some("*"));
        let mut to = HeaderMap::new();
        m.apply(None, "o:80", None, &mut to);
        assert_eq!(
            to.get(ACCESS_CONTROL_EXPOSE_HEADERS),
            Some(&HeaderValue::from_static("content-length"))
        );
        m.remember(
            "o:80",
            None,
            &headers(&[("access-control-allow-origin", "https://player.example")]),
        );
        assert_eq!(
            granted(&m, Some("https://x.example")).as_deref(),
            Some("https://player.example")
        );
    }

    #[test]
    fn an_echo_is_repeated_only_to_pages_the_origin_echoed() {
        let mut m = CorsMemory::default();
        let a = HeaderValue::from_static("https://a.example");
        let b = HeaderValue::from_static("https://b.example");
        m.remember(
            "o:80",
            Some(&a),
            &headers(&[
                ("access-control-allow-origin", "https://a.example"),
                ("access-control-allow-credentials", "true"),
            ]),
        );
        assert_eq!(
            granted(&m, Some("https://a.example")).as_deref(),
            Some("https://a.example")
        );
        assert_eq!(granted(&m, Some("https://b.example")), None);
        assert_eq!(granted(&m, None), None);
        // The origin refuses b: a stays granted.
        m.remember("o:80", Some(&b), &HeaderMap::new());
        assert_eq!(
            granted(&m, Some("https://a.example")).as_deref(),
            Some("https://a.example")
        );
        // A request without an Origin answered without CORS changes nothing.
        m.remember("o:80", None, &HeaderMap::new());
        assert!(granted(&m, Some("https://a.example")).is_some());
    }

    #[test]
    fn a_stream_uses_its_manifest_origin() {
        let mut m = CorsMemory::default();
        m.remember(
            "manifests:443",
            None,
            &headers(&[("access-control-allow-origin", "*")]),
        );
        let c = ContentId::derive("stream");
        m.manifest(c, "manifests:443");
        let mut to = HeaderMap::new();
        m.apply(Some(c), "segments:443", None, &mut to);
        assert!(to.contains_key(ACCESS_CONTROL_ALLOW_ORIGIN));
        let mut to = HeaderMap::new();
        m.apply(None, "segments:443", None, &mut to);
        assert!(!to.contains_key(ACCESS_CONTROL_ALLOW_ORIGIN));
    }
}
