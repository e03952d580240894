//! The registrar's HTTP client, as agents use it.

use bytes::Bytes;
use ed25519_dalek::VerifyingKey;
use hive_core::{ContentId, PeerId};
use thiserror::Error;

use super::{KeyReply, TokenReply, TokenRequest, parse_verifying_key};
use crate::http::{b64_decode, error_message};

/// Errors of [`RegistrarClient`].
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum RegistrarError {
    /// The base URL does not parse.
    #[error("invalid registrar URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The request failed (connect, timeout, I/O).
    #[error("registrar request failed: {0}")]
    Http(#[from] reqwest::Error),
    /// The registrar answered with an error status.
    #[error("registrar answered {status}: {message}")]
    Status {
        /// HTTP status code.
        status: u16,
        /// The `error` message of the reply.
        message: String,
    },
    /// The reply does not parse.
    #[error("bad registrar reply: {0}")]
    Decode(String),
}

/// Asks a registrar for tokens and its public key. Cheap to clone (one connection pool).
#[derive(Clone, Debug)]
pub struct RegistrarClient {
    http: reqwest::Client,
    token_url: reqwest::Url,
    key_url: reqwest::Url,
    enroll_secret: Option<String>,
}

impl RegistrarClient {
    /// A client for the registrar at `base_url` (e.g. `http://127.0.0.1:7071`).
    pub fn new(base_url: &str) -> Result<Self, RegistrarError> {
        let url = |path: &str| {
            let full = format!("{}/{path}", base_url.trim_end_matches('/'));
            reqwest::Url::parse(&full).map_err(|e| RegistrarError::InvalidUrl {
                url: base_url.to_owned(),
                reason: e.to_string(),
            })
        };
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            .build()?;
        Ok(RegistrarClient {
            http,
            token_url: url("v1/token")?,
            key_url: url("v1/key")?,
            enroll_secret: None,
        })
    }

    /// Presents `secret` with each token request (a registrar with
    /// [`EnrollPolicy::Secret`](super::EnrollPolicy::Secret)).
    pub fn with_enroll_secret(mut self, secret: impl Into<String>) -> Self {
        self.enroll_secret = Some(secret.into());
        self
    }

    /// A token admitting `peer` to `content`, with its expiry (unix seconds).
    pub async fn token(
        &self,
        peer: PeerId,
        content: ContentId,
    ) -> Result<(Bytes, u64), RegistrarError> {
        let req = TokenRequest {
            peer: peer.to_string(),
            content: content.to_string(),
        };
        let mut post = self.http.post(self.token_url.clone()).json(&req);
        if let Some(s) = &self.enroll_secret {
            post = post.header(super::ENROLL_HEADER, s);
        }
        let resp = post.send().await?;
        let reply: TokenReply = decode(resp).await?;
        let token = b64_decode(&reply.token).map_err(RegistrarError::Decode)?;
        Ok((Bytes::from(token), reply.expires_unix_s))
    }

    /// The registrar's Ed25519 public key, as the registrar says it is. Only trust this over
    /// HTTPS: over plain HTTP anyone on the path can answer with their own key (agents pin the
    /// key in their configuration instead).
    pub async fn public_key(&self) -> Result<VerifyingKey, RegistrarError> {
        let resp = self.http.get(self.key_url.clone()).send().await?;
        let reply: KeyReply = decode(resp).await?;
        parse_verifying_key(&reply.public_key).map_err(RegistrarError::Decode)
    }
}

async fn decode<T: serde::de::DeserializeOwned>(
    resp: reqwest::Response,
) -> Result<T, RegistrarError> {
    let status = resp.status();
    let body = resp.bytes().await?;
    if !status.is_success() {
        return Err(RegistrarError::Status {
            status: status.as_u16(),
            message: error_message(&body),
        });
    }
    serde_json::from_slice(&body).map_err(|e| RegistrarError::Decode(e.to_string()))
}
