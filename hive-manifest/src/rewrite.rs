//! Rewriting manifests so the player's requests come back to the agent.
//!
//! When the agent is a proxy the player reaches by URL (not an HTTP proxy setting), absolute
//! URLs in a manifest would send the player straight to the origin. [`Rewriter`] maps each
//! absolute `http(s)://host/...` URL to an agent-relative `<prefix>/<scheme>/<host>/...` path and
//! back; relative URLs already resolve against the (rewritten) manifest URL and are left alone.
//! When nothing needs rewriting the manifest is returned byte for byte ([`Cow::Borrowed`]).

use std::borrow::Cow;

/// Maps absolute origin URLs to agent-relative paths and back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rewriter {
    /// The path prefix the agent serves origin resources under, e.g. `/hive/o`.
    pub prefix: String,
}

impl Rewriter {
    /// A rewriter serving origins under `prefix` (no trailing slash).
    pub fn new(prefix: &str) -> Self {
        Rewriter {
            prefix: prefix.trim_end_matches('/').to_string(),
        }
    }

    /// The agent-relative form of an absolute URL, or `None` if it is not `http(s)://`.
    pub fn to_agent(&self, url: &str) -> Option<String> {
        let (scheme, rest) = url.split_once("://")?;
        if !(scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https"))
            || rest.is_empty()
        {
            return None;
        }
        Some(format!(
            "{}/{}/{}",
            self.prefix,
            scheme.to_ascii_lowercase(),
            rest
        ))
    }

    /// The origin URL an agent-relative path stands for (the inverse of [`to_agent`](Self::to_agent)).
    pub fn to_origin(&self, path: &str) -> Option<String> {
        let rest = path.strip_prefix(&self.prefix)?.strip_prefix('/')?;
        let (scheme, rest) = rest.split_once('/')?;
        matches!(scheme, "http" | "https").then(|| format!("{scheme}://{rest}"))
    }

    /// Rewrites an HLS playlist: URI lines and `URI="..."` attributes (RFC 8216 §4.1: "Lines
    /// that do not start with # are URIs"; §4.2 quoted-string attributes). Key URIs are rewritten
    /// too: the agent passes them through uncached.
    pub fn hls<'a>(&self, body: &'a [u8]) -> Cow<'a, [u8]> {
        let Ok(text) = std::str::from_utf8(body) else {
            return Cow::Borrowed(body);
        };
        if !text.contains("://") {
            return Cow::Borrowed(body);
        }
        let mut out = String::with_capacity(text.len() + 256);
        for line in text.split_inclusive('\n') {
            let (content, eol) = split_eol(line);
            if content.starts_with('#') {
                out.push_str(&self.rewrite_quoted(content, "URI=\""));
            } else if let Some(u) = self.to_agent(content.trim()) {
                out.push_str(&u);
            } else {
                out.push_str(content);
            }
            out.push_str(eol);
        }
        if out.as_bytes() == body {
            Cow::Borrowed(body)
        } else {
            Cow::Owned(out.into_bytes())
        }
    }

    /// Rewrites a DASH MPD: the text of `BaseURL` elements and the `media`, `initialization`,
    /// `sourceURL` and `index` attributes (ISO/IEC 23009-1 §5.6, §5.3.9). Namespace and schema
    /// URLs are left alone.
    pub fn dash<'a>(&self, body: &'a [u8]) -> Cow<'a, [u8]> {
        let Ok(text) = std::str::from_utf8(body) else {
            return Cow::Borrowed(body);
        };
        let mut s = Cow::Borrowed(text);
        for attr in [
            " media=\"",
            " initialization=\"",
            " sourceURL=\"",
            " index=\"",
        ] {
            if s.contains(attr) {
                s = Cow::Owned(self.rewrite_quoted(&s, attr).into_owned());
            }
        }
        if s.contains("<BaseURL") {
            let mut out = String::with_capacity(s.len());
            let mut rest: &str = &s;
            while let Some(i) = rest.find("<BaseURL") {
                let Some(gt) = rest[i..].find('>') else { break };
                let open_end = i + gt + 1;
                out.push_str(&rest[..open_end]);
                rest = &rest[open_end..];
                let end = rest.find("</BaseURL>").unwrap_or(0);
                let inner = &rest[..end];
                out.push_str(
                    &self
                        .to_agent(inner.trim())
                        .unwrap_or_else(|| inner.to_string()),
                );
                rest = &rest[end..];
            }
            out.push_str(rest);
            s = Cow::Owned(out);
        }
        match s {
            Cow::Borrowed(_) => Cow::Borrowed(body),
            Cow::Owned(o) if o.as_bytes() == body => Cow::Borrowed(body),
            Cow::Owned(o) => Cow::Owned(o.into_bytes()),
        }
    }

    fn rewrite_quoted<'a>(&self, text: &'a str, opener: &str) -> Cow<'a, str> {
        if !text.contains(opener) {
            return Cow::Borrowed(text);
        }
        let mut out = String::with_capacity(text.len() + 64);
        let mut rest = text;
        while let Some(i) = rest.find(opener) {
            let start = i + opener.len();
            out.push_str(&rest[..start]);
            rest = &rest[start..];
            let end = rest.find('"').unwrap_or(rest.len());
            let value = &rest[..end];
            out.push_str(&self.to_agent(value).unwrap_or_else(|| value.to_string()));
            rest = &rest[end..];
        }
        out.push_str(rest);
        Cow::Owned(out)
    }
}

fn split_eol(line: &str) -> (&str, &str) {
    let content = line.trim_end_matches(['\n', '\r']);
    (content, &line[content.len()..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hls_absolute_urls_rewritten_relative_kept_byte_exact_otherwise() {
        let r = Rewriter::new("/hive/o/");
        let body = b"#EXTM3U\r\n#EXT-X-KEY:METHOD=AES-128,URI=\"https://k.example/key\"\r\n#EXTINF:4,\r\nhttps://cdn.example/a/s1.ts?t=1\r\n#EXTINF:4,\r\nrel.ts\r\n";
        let out = r.hls(body);
        let text = std::str::from_utf8(&out).unwrap();
        assert!(text.contains("URI=\"/hive/o/https/k.example/key\"\r\n"));
        assert!(text.contains("\r\n/hive/o/https/cdn.example/a/s1.ts?t=1\r\n"));
        assert!(text.ends_with("\r\nrel.ts\r\n"));
        assert_eq!(
            r.to_origin("/hive/o/https/cdn.example/a/s1.ts?t=1")
                .as_deref(),
            Some("https://cdn.example/a/s1.ts?t=1")
        );
        let plain = b"#EXTM3U\n#EXTINF:4,\nrel.ts\n";
        assert!(matches!(r.hls(plain), Cow::Borrowed(b) if b == plain));
    }

    #[test]
    fn dash_base_urls_and_template_attributes_only() {
        let r = Rewriter::new("/a");
        let body = br#"<MPD xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><BaseURL>https://cdn.example/v/</BaseURL><SegmentTemplate media="http://o.example/$Number$.m4s" initialization="init.mp4"/></MPD>"#;
        let out = r.dash(body);
        let text = std::str::from_utf8(&out).unwrap();
        assert!(text.contains("xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\""));
        assert!(text.contains("<BaseURL>/a/https/cdn.example/v/</BaseURL>"));
        assert!(text.contains("media=\"/a/http/o.example/$Number$.m4s\""));
        assert!(text.contains("initialization=\"init.mp4\""));
        let plain = br#"<MPD><BaseURL>v/</BaseURL></MPD>"#;
        assert!(matches!(r.dash(plain), Cow::Borrowed(_)));
    }
}
