//! Which requests are "the same fragment": URL canonicalisation and the query-string policy.
//!
//! Viewers of one stream often fetch it with per-viewer query parameters (CDN tokens, session
//! ids). To let them join the same swarm, the canonical form of a URL drops those parameters;
//! what counts as a per-viewer token and what identifies content is the operator's call, hence a
//! policy. The [`ContentId`] of a presentation derives from the canonical manifest URL, with a
//! version label so a future change of derivation never mixes two swarms.

use hive_core::ContentId;
use url::{Position, Url};

/// Query parameter names treated as per-viewer tokens by [`QueryPolicy::default`] (compared
/// ASCII case-insensitively; a trailing `*` matches a prefix).
pub const DEFAULT_TOKEN_PARAMS: &[&str] = &[
    "token",
    "hdnts",
    "hdnea",
    "__token__",
    "policy",
    "signature",
    "key-pair-id",
    "expires",
    "sig",
    "st",
    "e",
    "session",
    "sessionid",
    "sid",
    "auth",
    "x-amz-*",
    "cmcd",
];

/// How query parameters take part in fragment identity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum QueryPolicy {
    /// Keep every parameter except the listed per-viewer tokens.
    DropTokens(Vec<String>),
    /// Keep only the listed identity parameters; drop all others.
    KeepOnly(Vec<String>),
    /// Keep the whole query: viewers with different query strings never share fragments.
    KeepAll,
}

impl Default for QueryPolicy {
    fn default() -> Self {
        QueryPolicy::DropTokens(DEFAULT_TOKEN_PARAMS.iter().map(|s| s.to_string()).collect())
    }
}

fn name_matches(patterns: &[String], name: &str) -> bool {
    patterns.iter().any(|p| match p.strip_suffix('*') {
        Some(prefix) => {
            name.len() >= prefix.len() && name[..prefix.len()].eq_ignore_ascii_case(prefix)
        }
        None => p.eq_ignore_ascii_case(name),
    })
}

/// The operator's identity policy: how request URLs are canonicalised.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UrlPolicy {
    /// How query parameters are treated.
    pub query: QueryPolicy,
}

impl UrlPolicy {
    /// A policy that keeps every query parameter (no swarm joining across tokens).
    pub fn strict() -> Self {
        UrlPolicy {
            query: QueryPolicy::KeepAll,
        }
    }

    /// Whether the query parameter `name` is part of a fragment's identity.
    pub fn is_identity(&self, name: &str) -> bool {
        match &self.query {
            QueryPolicy::DropTokens(tokens) => !name_matches(tokens, name),
            QueryPolicy::KeepOnly(keep) => name_matches(keep, name),
            QueryPolicy::KeepAll => true,
        }
    }

    /// The canonical form of an absolute URL: scheme, host and path as the URL standard
    /// normalises them, identity query parameters sorted, no `#fragment`. `None` if `url` is not
    /// an absolute URL.
    pub fn canonical(&self, url: &str) -> Option<String> {
        let parsed = Url::parse(url).ok()?;
        let mut out = self.canonical_url(&parsed);
        if matches!(parsed.scheme(), "http" | "https") {
            return Some(out);
        }
        // Other schemes' serialisations are not always stable under the URL standard
        // (`file:z:\n.//` → `file:///z:/.//` → `file:///z://`, found by the
        // `manifest_classify` fuzzer): parse again until the form holds, a few times at most.
        for _ in 0..3 {
            let again = Url::parse(&out).ok().map(|u| self.canonical_url(&u))?;
            if again == out {
                break;
            }
            out = again;
        }
        Some(out)
    }

    /// [`canonical`](Self::canonical) for an already parsed URL.
    pub fn canonical_url(&self, url: &Url) -> String {
        let mut out = String::with_capacity(url.as_str().len());
        out.push_str(&url[..Position::AfterPath]);
        if let Some(q) = url.query() {
            if matches!(self.query, QueryPolicy::KeepAll) {
                out.push('?');
                out.push_str(q);
            } else {
                let mut kept: Vec<&str> = q
                    .split('&')
                    .filter(|kv| !kv.is_empty())
                    .filter(|kv| self.is_identity(kv.split('=').next().unwrap_or(kv)))
                    .collect();
                if !kept.is_empty() {
                    kept.sort_unstable();
                    out.push('?');
                    out.push_str(&kept.join("&"));
                }
            }
        }
        // An opaque path (`mailto:a `, `r:x%00 #y`) keeps its trailing spaces only while a query
        // or fragment follows; the URL standard strips them once those are gone. Strip them too,
        // so the canonical form is canonical again (found by the `manifest_classify` fuzzer).
        if url.cannot_be_a_base() && !out.contains('?') {
            out.truncate(out.trim_end_matches(' ').len());
        }
        out
    }

    /// The swarm identity of a manifest: the format name and its canonical URL, versioned.
    pub fn content_id(&self, format: &str, manifest_url: &str) -> ContentId {
        let canonical = self
            .canonical(manifest_url)
            .unwrap_or_else(|| manifest_url.to_string());
        ContentId::derive(&format!("hive-manifest/v1 {format} {canonical}"))
    }
}

/// Resolves `reference` against `base` (RFC 3986 §5), as absolute URL text.
pub fn resolve(base: &Url, reference: &str) -> Option<Url> {
    base.join(reference.trim()).ok()
}

/// Resolves many references against one base, as [`resolve`] does, without parsing each result.
///
/// Manifests list thousands of segments as plain relative paths (`seg_00042.ts`,
/// `v/hd/1800.m4s?x=1`). For those, RFC 3986 §5.2 reduces to "the base up to its last `/`, then
/// the reference", and the URL standard leaves such a reference's characters as they are. Only
/// references made of unreserved and sub-delimiter characters, `/`, `@` and one `?` query, with
/// no `.` or `..` segment, take this path; anything else (absolute URLs, `/path`, `%`, `:`,
/// characters the URL standard would percent-encode) goes through [`Url::join`].
#[derive(Clone, Debug)]
pub(crate) struct Joiner {
    base: Url,
    /// `base` up to and including the last `/` of its path, when the base is hierarchical.
    prefix: Option<String>,
}

impl Joiner {
    pub(crate) fn new(base: &Url) -> Self {
        let prefix = (!base.cannot_be_a_base()).then(|| {
            let path_end = &base[..Position::AfterPath];
            let cut = path_end.rfind('/').map_or(path_end.len(), |i| i + 1);
            path_end[..cut].to_string()
        });
        Joiner {
            base: base.clone(),
            prefix,
        }
    }

    /// The base references are resolved against.
    pub(crate) fn base(&self) -> &Url {
        &self.base
    }

    /// `reference` resolved against the base, as text; `None` if it does not resolve.
    pub(crate) fn join(&self, reference: &str) -> Option<String> {
        let reference = reference.trim();
        match &self.prefix {
            Some(prefix) if is_plain_relative(reference) => {
                let mut out = String::with_capacity(prefix.len() + reference.len());
                out.push_str(prefix);
                out.push_str(reference);
                Some(out)
            }
            _ => resolve(&self.base, reference).map(String::from),
        }
    }
}

/// Whether `r` is a relative-path reference that resolves by plain concatenation to its base's
/// directory, characters unchanged (see [`Joiner`]).
fn is_plain_relative(r: &str) -> bool {
    let bytes = r.as_bytes();
    let Some(&first) = bytes.first() else {
        return false;
    };
    if first == b'/' || first == b'?' {
        return false;
    }
    let mut in_query = false;
    for &b in bytes {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' => {}
            b'-' | b'.' | b'_' | b'~' | b'!' | b'$' | b'&' | b'(' | b')' | b'*' | b'+' | b','
            | b';' | b'=' | b'@' | b'/' => {}
            b'?' if !in_query => in_query = true,
            _ => return false,
        }
    }
    let path = r.split('?').next().unwrap_or(r);
    !path.split('/').any(|seg| seg == "." || seg == "..")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_dropped_identity_kept_and_sorted() {
        let p = UrlPolicy::default();
        assert_eq!(
            p.canonical("https://CDN.example.com/a/b.ts?token=abc&q=2&lang=en#x")
                .as_deref(),
            Some("https://cdn.example.com/a/b.ts?lang=en&q=2")
        );
        assert_eq!(
            p.canonical("http://o/s.ts?X-Amz-Signature=1").as_deref(),
            Some("http://o/s.ts")
        );
        let strict = UrlPolicy::strict();
        assert_eq!(
            strict.canonical("http://o/s.ts?token=1").as_deref(),
            Some("http://o/s.ts?token=1")
        );
        let only = UrlPolicy {
            query: QueryPolicy::KeepOnly(vec!["v".into()]),
        };
        assert_eq!(
            only.canonical("http://o:8080/s.ts?a=1&v=2").as_deref(),
            Some("http://o:8080/s.ts?v=2")
        );
        assert_eq!(p.canonical("not a url"), None);
    }

    #[test]
    fn joiner_agrees_with_url_join() {
        let bases = [
            "https://cdn.example.com/vod/movie/index.m3u8?token=1#f",
            "https://cdn.example.com/vod/movie/",
            "https://cdn.example.com",
            "http://h:8080/a/b/c.mpd",
            "file:///tmp/ladder/master.m3u8",
            "data:text/plain,hello",
        ];
        let refs = [
            "seg_00001.ts",
            "v/hd/1800.m4s?x=1&y=2",
            "chunk-stream0-00001.m4s",
            "a//b.ts",
            "./a.ts",
            "../a.ts",
            "a/../b.ts",
            "a/./b.ts",
            ".hidden.ts",
            "..a.ts",
            "/abs.ts",
            "?q=1",
            "//other.host/x.ts",
            "https://other/x.ts",
            "c:/x.ts",
            "a b.ts",
            "a%20b.ts",
            "é.ts",
            "a.ts#frag",
            "a.ts?x=1?y",
            "a'b.ts?x='1'",
            "a\\b.ts",
            "  padded.ts  ",
            "",
            "a{b}.ts",
            "a|b^c`d.ts",
        ];
        for b in bases {
            let base = Url::parse(b).unwrap();
            let j = Joiner::new(&base);
            for r in refs {
                assert_eq!(
                    j.join(r),
                    resolve(&base, r).map(String::from),
                    "{b} + {r:?}"
                );
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn joiner_agrees_with_url_join_on_any_reference(r in "[a-zA-Z0-9./?%:#@ _~'\\\\-]{0,12}") {
            for b in ["https://h/a/b/i.m3u8?t=1", "file:///tmp/x/m.mpd", "http://h"] {
                let base = Url::parse(b).unwrap();
                proptest::prop_assert_eq!(Joiner::new(&base).join(&r), resolve(&base, &r).map(String::from));
            }
        }
    }

    #[test]
    fn content_id_ignores_viewer_tokens() {
        let p = UrlPolicy::default();
        assert_eq!(
            p.content_id("hls", "https://o/live.m3u8?token=a"),
            p.content_id("hls", "https://o/live.m3u8?token=b")
        );
        assert_ne!(
            p.content_id("hls", "https://o/live.m3u8"),
            p.content_id("dash", "https://o/live.m3u8")
        );
    }
}
