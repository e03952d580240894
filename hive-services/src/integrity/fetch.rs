//! The hash service's origin fetches: only to allowed origins (redirects included), every body
//! bounded, fragments hashed as they stream in.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use hive_core::{ByteRange, ContentHash};
use reqwest::Url;

/// The origins (`host:port`) the service may fetch from.
#[derive(Clone, Debug, Default)]
pub(crate) struct Allow(Arc<Vec<String>>);

impl Allow {
    pub(crate) fn new(origins: &[String]) -> Self {
        Allow(Arc::new(
            origins
                .iter()
                .map(|o| o.trim().to_ascii_lowercase())
                .collect(),
        ))
    }

    /// Whether `url` is http(s) on an allowed `host:port` (the scheme's port when none is
    /// written).
    pub(crate) fn permits(&self, url: &Url) -> bool {
        if !matches!(url.scheme(), "http" | "https") {
            return false;
        }
        let (Some(host), Some(port)) = (url.host_str(), url.port_or_known_default()) else {
            return false;
        };
        let hp = format!("{}:{port}", host.to_ascii_lowercase());
        self.0.contains(&hp)
    }
}

/// Why a fetch failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FetchError {
    #[error("{0}")]
    Http(#[from] reqwest::Error),
    #[error("origin answered {0}")]
    Status(u16),
    #[error("larger than {0} bytes")]
    TooLarge(u64),
    #[error("shorter than its byte range")]
    Short,
    #[error("origin not allowed")]
    NotAllowed,
}

/// An HTTP client bound to the allowed origins.
#[derive(Clone, Debug)]
pub(crate) struct Fetcher {
    http: reqwest::Client,
    allow: Allow,
}

impl Fetcher {
    pub(crate) fn new(allow: Allow, timeout: Duration) -> Result<Self, reqwest::Error> {
        let a = allow.clone();
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .redirect(reqwest::redirect::Policy::custom(move |attempt| {
                if attempt.previous().len() >= 5 || !a.permits(attempt.url()) {
                    attempt.stop()
                } else {
                    attempt.follow()
                }
            }))
            .build()?;
        Ok(Fetcher { http, allow })
    }

    pub(crate) fn allow(&self) -> &Allow {
        &self.allow
    }

    async fn get(
        &self,
        url: &Url,
        range: Option<ByteRange>,
    ) -> Result<reqwest::Response, FetchError> {
        if !self.allow.permits(url) {
            return Err(FetchError::NotAllowed);
        }
        let mut req = self.http.get(url.clone());
        if let Some(r) = range {
            req = req.header(
                reqwest::header::RANGE,
                format!("bytes={}-{}", r.start, r.end().saturating_sub(1)),
            );
        }
        let resp = req.send().await?;
        if !resp.status().is_success() {
            return Err(FetchError::Status(resp.status().as_u16()));
        }
        Ok(resp)
    }

    /// The body at `url`, at most `cap` bytes.
    pub(crate) async fn bytes(&self, url: &Url, cap: usize) -> Result<Bytes, FetchError> {
        let mut resp = self.get(url, None).await?;
        if resp.content_length().is_some_and(|n| n > cap as u64) {
            return Err(FetchError::TooLarge(cap as u64));
        }
        let mut body = BytesMut::new();
        while let Some(chunk) = resp.chunk().await? {
            if body.len() + chunk.len() > cap {
                return Err(FetchError::TooLarge(cap as u64));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body.freeze())
    }

    /// BLAKE3 of the fragment at `url` (its `range` when it has one), hashed as it streams in;
    /// at most `cap` bytes. Returns the hash and the bytes read. An origin that ignores `Range`
    /// and sends the whole resource is read up to the range's end.
    pub(crate) async fn hash(
        &self,
        url: &Url,
        range: Option<ByteRange>,
        cap: u64,
    ) -> Result<(ContentHash, u64), FetchError> {
        if range.is_some_and(|r| r.len > cap) {
            return Err(FetchError::TooLarge(cap));
        }
        let mut resp = self.get(url, range).await?;
        let whole = resp.status() == reqwest::StatusCode::OK;
        // Bytes of the body to skip, then to hash.
        let (mut skip, mut take) = match range {
            Some(r) if whole => (r.start, r.len),
            Some(r) => (0, r.len),
            None => (0, cap.saturating_add(1)),
        };
        if range.is_none() && resp.content_length().is_some_and(|n| n > cap) {
            return Err(FetchError::TooLarge(cap));
        }
        let mut h = blake3::Hasher::new();
        let mut read = 0u64;
        while take > 0 {
            let Some(chunk) = resp.chunk().await? else {
                break;
            };
            let mut c = &chunk[..];
            if skip > 0 {
                let n = (c.len() as u64).min(skip) as usize;
                c = &c[n..];
                skip -= n as u64;
            }
            let n = (c.len() as u64).min(take) as usize;
            h.update(&c[..n]);
            take -= n as u64;
            read += n as u64;
            if range.is_none() && read > cap {
                return Err(FetchError::TooLarge(cap));
            }
        }
        if range.is_some() && take > 0 {
            return Err(FetchError::Short);
        }
        Ok((ContentHash(*h.finalize().as_bytes()), read))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_allowlist_is_by_host_and_port() {
        let a = Allow::new(&["Origin.example:8080".into(), "cdn.example:443".into()]);
        let ok = |u: &str| a.permits(&Url::parse(u).unwrap());
        assert!(ok("http://origin.example:8080/live/x.m3u8"));
        assert!(ok("https://cdn.example/a.ts"));
        assert!(!ok("http://origin.example/live/x.m3u8"));
        assert!(!ok("http://cdn.example/a.ts"));
        assert!(!ok("ftp://origin.example:8080/x"));
        assert!(!ok("file:///etc/passwd"));
    }
}
