//! Origin requests: one pooled HTTP client (keep-alive, rustls), time-outs, retries with
//! exponential backoff, bounded bodies.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use hive_core::ByteRange;

use crate::error::FetchError;

/// An origin response.
#[derive(Clone, Debug)]
pub struct Fetched {
    /// HTTP status (2xx here; errors are [`FetchError::Status`]).
    pub status: u16,
    /// `Content-Type`, if any.
    pub content_type: Option<String>,
    /// The URL after redirects.
    pub final_url: String,
    /// The body.
    pub body: Bytes,
}

/// The agent's HTTP client towards origins.
#[derive(Debug)]
pub struct OriginFetcher {
    client: reqwest::Client,
    timeout: Duration,
    retries: u32,
    max_body: u64,
    bytes: AtomicU64,
    requests: AtomicU64,
    failures: AtomicU64,
}

impl OriginFetcher {
    /// A client with the given per-request time-out, retries and body bound.
    pub fn new(timeout: Duration, retries: u32, max_body: u64) -> Result<Self, FetchError> {
        let client = reqwest::Client::builder()
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(16)
            .user_agent(concat!("hive-agent/", env!("CARGO_PKG_VERSION")))
            .no_proxy()
            .build()
            .map_err(|e| FetchError::Io {
                url: String::new(),
                reason: format!("client: {e}"),
            })?;
        Ok(OriginFetcher {
            client,
            timeout,
            retries,
            max_body,
            bytes: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            failures: AtomicU64::new(0),
        })
    }

    /// Body bytes received from origins so far.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Requests made (each attempt counts) and requests that failed.
    pub fn requests(&self) -> (u64, u64) {
        (
            self.requests.load(Ordering::Relaxed),
            self.failures.load(Ordering::Relaxed),
        )
    }

    /// One attempt: GET `url` (with `range`), within `timeout`.
    pub async fn get_once(
        &self,
        url: &str,
        range: Option<ByteRange>,
        timeout: Duration,
    ) -> Result<Fetched, FetchError> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let r = tokio::time::timeout(timeout, self.attempt(url, range)).await;
        let r = r.unwrap_or_else(|_| Err(FetchError::Timeout(url.to_string())));
        if r.is_err() {
            self.failures.fetch_add(1, Ordering::Relaxed);
        }
        r
    }

    /// GET with retries (exponential backoff from 100 ms) on retryable errors.
    pub async fn get(&self, url: &str, range: Option<ByteRange>) -> Result<Fetched, FetchError> {
        let mut attempt = 0;
        loop {
            match self.get_once(url, range, self.timeout).await {
                Err(e) if e.retryable() && attempt < self.retries => {
                    tracing::debug!(%url, error = %e, attempt, "origin request failed; retrying");
                    tokio::time::sleep(Duration::from_millis(100 << attempt.min(6))).await;
                    attempt += 1;
                }
                r => return r,
            }
        }
    }

    async fn attempt(&self, url: &str, range: Option<ByteRange>) -> Result<Fetched, FetchError> {
        let parsed = reqwest::Url::parse(url).map_err(|_| FetchError::BadUrl(url.to_string()))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(FetchError::BadUrl(url.to_string()));
        }
        let io = |e: reqwest::Error| FetchError::Io {
            url: url.to_string(),
            reason: e.to_string(),
        };
        let mut req = self.client.get(parsed);
        if let Some(r) = range {
            let last = r.end().saturating_sub(1);
            req = req.header(reqwest::header::RANGE, format!("bytes={}-{last}", r.start));
        }
        let mut resp = req.send().await.map_err(io)?;
        let status = resp.status().as_u16();
        if !resp.status().is_success() {
            return Err(FetchError::Status {
                url: url.to_string(),
                status,
            });
        }
        if resp.content_length().is_some_and(|n| n > self.max_body) {
            return Err(FetchError::TooLarge {
                url: url.to_string(),
                limit: self.max_body,
            });
        }
        let content_type = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let final_url = resp.url().to_string();
        let mut body = BytesMut::with_capacity(resp.content_length().unwrap_or(0) as usize);
        while let Some(chunk) = resp.chunk().await.map_err(io)? {
            if body.len() as u64 + chunk.len() as u64 > self.max_body {
                return Err(FetchError::TooLarge {
                    url: url.to_string(),
                    limit: self.max_body,
                });
            }
            body.extend_from_slice(&chunk);
        }
        self.bytes.fetch_add(body.len() as u64, Ordering::Relaxed);
        Ok(Fetched {
            status,
            content_type,
            final_url,
            body: body.freeze(),
        })
    }
}
