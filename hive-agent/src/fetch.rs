//! Origin requests: one pooled HTTP client (keep-alive, rustls), time-outs, retries with
//! exponential backoff, bounded bodies — and the one choke point every upstream request
//! passes: the [`OriginAllowlist`] checks each URL before it is sent, each redirect hop before
//! it is followed, and each resolved address before the client connects to it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use hive_core::ByteRange;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::HeaderMap;

use crate::allow::OriginAllowlist;
use crate::error::FetchError;

/// Redirect hops followed before a request fails.
pub const MAX_REDIRECTS: usize = 10;

/// An origin response.
#[derive(Clone, Debug)]
pub struct Fetched {
    /// HTTP status (2xx here; errors are [`FetchError::Status`]).
    pub status: u16,
    /// `Content-Type`, if any.
    pub content_type: Option<String>,
    /// The URL after redirects.
    pub final_url: String,
    /// The response's headers (the proxy mirrors the origin's CORS headers from them).
    pub headers: HeaderMap,
    /// The body.
    pub body: Bytes,
}

/// An origin's answer to a CORS preflight (`OPTIONS`), whatever its status.
#[derive(Clone, Debug)]
pub struct Preflight {
    /// HTTP status.
    pub status: u16,
    /// The response's headers.
    pub headers: HeaderMap,
}

/// The agent's HTTP client towards origins.
#[derive(Debug)]
pub struct OriginFetcher {
    client: reqwest::Client,
    allow: Arc<OriginAllowlist>,
    timeout: Duration,
    retries: u32,
    max_body: u64,
    bytes: AtomicU64,
    requests: AtomicU64,
    failures: AtomicU64,
}

/// The system resolver (or a configured override of a name), with the addresses `allow`
/// refuses taken out.
struct CheckedResolver {
    allow: Arc<OriginAllowlist>,
    overrides: Arc<Vec<(String, std::net::IpAddr)>>,
}

impl Resolve for CheckedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let name = name.as_str().to_string();
        let allow = self.allow.clone();
        let fixed: Vec<std::net::SocketAddr> = self
            .overrides
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(&name))
            .map(|(_, ip)| std::net::SocketAddr::new(*ip, 0))
            .collect();
        Box::pin(async move {
            let addrs: Vec<_> = if fixed.is_empty() {
                tokio::net::lookup_host((name.as_str(), 0)).await?.collect()
            } else {
                fixed
            };
            let kept = allow.filter_resolved(&name, addrs)?;
            let addrs: Addrs = Box::new(kept.into_iter());
            Ok(addrs)
        })
    }
}

/// The typed error behind a reqwest error: a refusal from the redirect policy or the resolver
/// travels as the error's source.
fn from_reqwest(url: &str, e: &reqwest::Error) -> FetchError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if let Some(f) = s.downcast_ref::<FetchError>() {
            return f.clone();
        }
        source = s.source();
    }
    FetchError::Io {
        url: url.to_string(),
        reason: e.to_string(),
    }
}

impl OriginFetcher {
    /// A client with the given per-request time-out, retries and body bound, that fetches
    /// only what `allow` lets through.
    pub fn new(
        timeout: Duration,
        retries: u32,
        max_body: u64,
        allow: OriginAllowlist,
    ) -> Result<Self, FetchError> {
        Self::with_resolve(timeout, retries, max_body, allow, Vec::new())
    }

    /// [`OriginFetcher::new`], with names resolved to fixed addresses instead of by the system
    /// resolver (as `curl --resolve`; see [`crate::AgentConfig::resolve`]). The allowlist
    /// checks those addresses as any others.
    pub fn with_resolve(
        timeout: Duration,
        retries: u32,
        max_body: u64,
        allow: OriginAllowlist,
        resolve: Vec<(String, std::net::IpAddr)>,
    ) -> Result<Self, FetchError> {
        let allow = Arc::new(allow);
        let hops = allow.clone();
        let redirect = reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() >= MAX_REDIRECTS {
                let url = attempt.url().to_string();
                return attempt.error(FetchError::Io {
                    url,
                    reason: format!("more than {MAX_REDIRECTS} redirects"),
                });
            }
            match hops.check(attempt.url()) {
                Ok(()) => attempt.follow(),
                Err(e) => attempt.error(e),
            }
        });
        let client = reqwest::Client::builder()
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(16)
            .user_agent(concat!("hive-agent/", env!("CARGO_PKG_VERSION")))
            .no_proxy()
            .redirect(redirect)
            .dns_resolver(Arc::new(CheckedResolver {
                allow: allow.clone(),
                overrides: Arc::new(resolve),
            }))
            .build()
            .map_err(|e| FetchError::Io {
                url: String::new(),
                reason: format!("client: {e}"),
            })?;
        Ok(OriginFetcher {
            client,
            allow,
            timeout,
            retries,
            max_body,
            bytes: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            failures: AtomicU64::new(0),
        })
    }

    /// The origins this fetcher may fetch from.
    pub fn allowlist(&self) -> &OriginAllowlist {
        &self.allow
    }

    /// Parses `url` and checks it against the allowlist, without fetching.
    pub fn check(&self, url: &str) -> Result<reqwest::Url, FetchError> {
        self.allow.check_str(url)
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
        self.get_once_with(url, range, &HeaderMap::new(), timeout)
            .await
    }

    /// One attempt, sending `headers` too (e.g. the player's `Origin`).
    pub async fn get_once_with(
        &self,
        url: &str,
        range: Option<ByteRange>,
        headers: &HeaderMap,
        timeout: Duration,
    ) -> Result<Fetched, FetchError> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let r = tokio::time::timeout(timeout, self.attempt(url, range, headers)).await;
        let r = r.unwrap_or_else(|_| Err(FetchError::Timeout(url.to_string())));
        if r.is_err() {
            self.failures.fetch_add(1, Ordering::Relaxed);
        }
        r
    }

    /// GET with retries (exponential backoff from 100 ms) on retryable errors.
    pub async fn get(&self, url: &str, range: Option<ByteRange>) -> Result<Fetched, FetchError> {
        self.get_with(url, range, &HeaderMap::new()).await
    }

    /// GET with retries, sending `headers` too.
    pub async fn get_with(
        &self,
        url: &str,
        range: Option<ByteRange>,
        headers: &HeaderMap,
    ) -> Result<Fetched, FetchError> {
        let mut attempt = 0;
        loop {
            match self.get_once_with(url, range, headers, self.timeout).await {
                Err(e) if e.retryable() && attempt < self.retries => {
                    tracing::debug!(%url, error = %e, attempt, "origin request failed; retrying");
                    tokio::time::sleep(Duration::from_millis(100 << attempt.min(6))).await;
                    attempt += 1;
                }
                r => return r,
            }
        }
    }

    /// A CORS preflight: `OPTIONS url` with `headers` (the player's `Origin` and
    /// `Access-Control-Request-*`), once; the origin's status and headers, whatever the status.
    pub async fn preflight(&self, url: &str, headers: &HeaderMap) -> Result<Preflight, FetchError> {
        let parsed = self.allow.check_str(url)?;
        self.requests.fetch_add(1, Ordering::Relaxed);
        let send = self
            .client
            .request(reqwest::Method::OPTIONS, parsed)
            .headers(headers.clone())
            .send();
        let r = match tokio::time::timeout(self.timeout, send).await {
            Ok(Ok(resp)) => Ok(Preflight {
                status: resp.status().as_u16(),
                headers: resp.headers().clone(),
            }),
            Ok(Err(e)) => Err(from_reqwest(url, &e)),
            Err(_) => Err(FetchError::Timeout(url.to_string())),
        };
        if r.is_err() {
            self.failures.fetch_add(1, Ordering::Relaxed);
        }
        r
    }

    async fn attempt(
        &self,
        url: &str,
        range: Option<ByteRange>,
        headers: &HeaderMap,
    ) -> Result<Fetched, FetchError> {
        let parsed = self.allow.check_str(url)?;
        let io = |e: reqwest::Error| from_reqwest(url, &e);
        let mut req = self.client.get(parsed).headers(headers.clone());
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
        let headers = resp.headers().clone();
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
            headers,
            body: body.freeze(),
        })
    }
}
