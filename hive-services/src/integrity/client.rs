//! The agents' side of the hash service: long-polls `GET /v1/integrity`.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use hive_core::integrity::MAX_LIST_BYTES;
use thiserror::Error;

use crate::http::error_message;

/// Errors of [`HashServiceClient`].
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum HashServiceError {
    /// The base URL does not parse.
    #[error("invalid hash service URL {0:?}")]
    InvalidUrl(String),
    /// The request failed (connect, timeout, I/O).
    #[error("hash service request failed: {0}")]
    Http(#[from] reqwest::Error),
    /// The service answered with an error status: 400 bad request, 403 origin not allowed, 503
    /// full.
    #[error("hash service answered {status}: {message}")]
    Status {
        /// HTTP status code.
        status: u16,
        /// The `error` message of the reply.
        message: String,
    },
    /// The list is larger than [`MAX_LIST_BYTES`].
    #[error("hash service list larger than {MAX_LIST_BYTES} bytes")]
    TooLarge,
}

/// Polls a hash service for the signed list of a manifest. Cheap to clone: clones share one
/// keep-alive connection pool. The caller verifies each list with the service's public key
/// ([`hive_core::integrity::SignedList::verify`]).
#[derive(Clone, Debug)]
pub struct HashServiceClient {
    base_url: String,
    http: reqwest::Client,
    wait: Duration,
}

impl HashServiceClient {
    /// A client of the service at `base_url` (`http://tracker:7070`), long-polls waiting 10 s.
    pub fn new(base_url: &str) -> Result<Self, HashServiceError> {
        let base = reqwest::Url::parse(base_url)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .ok_or_else(|| HashServiceError::InvalidUrl(base_url.to_string()))?;
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .build()?;
        Ok(HashServiceClient {
            base_url: base.as_str().trim_end_matches('/').to_string(),
            http,
            wait: Duration::from_secs(10),
        })
    }

    /// Long-polls wait at most `wait` (the service caps it at its own maximum).
    pub fn with_wait(mut self, wait: Duration) -> Self {
        self.wait = wait;
        self
    }

    /// The service's base URL.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The signed list of `manifest_url` newer than `since` (any list without it): `Some(body)`
    /// on 200, `None` when none newer came within the wait (304).
    pub async fn poll(
        &self,
        manifest_url: &str,
        since: Option<u64>,
    ) -> Result<Option<Bytes>, HashServiceError> {
        let mut q = vec![
            ("manifest", manifest_url.to_string()),
            ("wait", format!("{:.3}", self.wait.as_secs_f64())),
        ];
        if let Some(s) = since {
            q.push(("since", s.to_string()));
        }
        let mut resp = self
            .http
            .get(format!("{}/v1/integrity", self.base_url))
            .query(&q)
            .timeout(self.wait + Duration::from_secs(5))
            .send()
            .await?;
        let status = resp.status();
        if status == reqwest::StatusCode::NOT_MODIFIED {
            return Ok(None);
        }
        if resp
            .content_length()
            .is_some_and(|n| n > MAX_LIST_BYTES as u64)
        {
            return Err(HashServiceError::TooLarge);
        }
        let mut body = BytesMut::new();
        while let Some(chunk) = resp.chunk().await? {
            if body.len() + chunk.len() > MAX_LIST_BYTES {
                return Err(HashServiceError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        if !status.is_success() {
            return Err(HashServiceError::Status {
                status: status.as_u16(),
                message: error_message(&body),
            });
        }
        Ok(Some(body.freeze()))
    }
}
