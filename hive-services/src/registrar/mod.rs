//! The registrar: signs admission tokens that bind a [`PeerId`], a [`ContentId`] and an expiry.
//!
//! Agents fetch a token before joining a swarm and present it in their Hello and in tracker
//! announces; peers and the tracker check it offline with [`TokenVerifier`] and the registrar's
//! public key (see [`token`] for the format). Who may enroll is the registrar's
//! [`EnrollPolicy`]: anyone ([`EnrollPolicy::Open`], for labs), only a client that presents
//! the operator's shared enrollment secret in the `x-hive-enroll` header
//! ([`EnrollPolicy::Secret`]), only clients whose address is in the operator's ranges
//! ([`EnrollPolicy::Ranges`]: the corporate network), or several of these at once
//! ([`EnrollPolicy::All`]). Agents must know the registrar's public key beforehand (pinned
//! in their configuration): fetched over plain HTTP, anyone on the path could substitute theirs.
//! For anything finer (a login, a customer API), put the registrar behind the operator's own
//! authentication.
//!
//! # HTTP/JSON API
//!
//! | request | body | reply |
//! |---|---|---|
//! | `POST /v1/token` | `{"peer": hex, "content": hex}` | `{"token": base64url, "expires_unix_s": n}` |
//! | `GET /v1/key` | | `{"public_key": hex}` (the Ed25519 verifying key, 32 bytes) |
//! | `GET /metrics` | | Prometheus text: tokens issued, bad requests |
//! | `GET /healthz` | | `ok` |
//!
//! Ids are 64 hex digits. Bad input gets a 400 with `{"error": "..."}`; bodies over 16 KiB a 413.
//!
//! ```
//! use hive_core::{ContentId, PeerId};
//! use hive_services::registrar::{Registrar, TokenVerifier};
//!
//! let registrar = Registrar::generate();
//! let (peer, content) = (PeerId::from_bytes([1; 32]), ContentId::derive("live/1"));
//! let token = registrar.issue(peer, content, 2_000_000_000);
//! let verifier = TokenVerifier::new(registrar.verifying_key());
//! assert!(verifier.verify(&token, peer, content, 1_700_000_000).is_ok());
//! ```

mod client;
pub mod token;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use bytes::Bytes;
use ed25519_dalek::{SigningKey, VerifyingKey};
use hive_core::{ContentId, PeerId};
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;

pub use client::{RegistrarClient, RegistrarError};
pub use token::{TOKEN_LEN, TOKEN_VERSION, TokenClaims, TokenError, TokenVerifier};

use crate::http::{ApiError, MAX_BODY, Observed, b64_encode, now_unix_ms, parse_json};

/// Who may obtain a token.
#[derive(Clone, Default)]
pub enum EnrollPolicy {
    /// Anyone who asks (labs, or a registrar behind the operator's own authentication).
    #[default]
    Open,
    /// Only requests carrying this shared secret in the [`ENROLL_HEADER`] header (compared in
    /// constant time).
    Secret(String),
    /// Only clients whose address (as the registrar's TCP connection sees it, IPv4-mapped IPv6
    /// read as IPv4) is in one of these ranges. Behind a reverse proxy every client has the
    /// proxy's address: use the proxy's own access rules there instead. A request whose address
    /// is unknown (the router mounted without `ConnectInfo`) is refused.
    Ranges(Vec<ipnet::IpNet>),
    /// Every one of these policies (an empty list admits everyone).
    All(Vec<EnrollPolicy>),
}

impl std::fmt::Debug for EnrollPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret.
        match self {
            EnrollPolicy::Open => write!(f, "Open"),
            EnrollPolicy::Secret(_) => write!(f, "Secret(..)"),
            EnrollPolicy::Ranges(r) => f.debug_tuple("Ranges").field(r).finish(),
            EnrollPolicy::All(p) => f.debug_tuple("All").field(p).finish(),
        }
    }
}

impl EnrollPolicy {
    /// Why a request with these headers, from `from`, may not enroll (`None`: it may).
    fn refusal(
        &self,
        headers: &axum::http::HeaderMap,
        from: Option<std::net::IpAddr>,
    ) -> Option<String> {
        match self {
            EnrollPolicy::Open => None,
            EnrollPolicy::Secret(secret) => {
                let ok = headers
                    .get(ENROLL_HEADER)
                    .is_some_and(|v| constant_time_eq(v.as_bytes(), secret.as_bytes()));
                (!ok).then(|| {
                    format!("this registrar enrolls only with its enrollment secret (header {ENROLL_HEADER})")
                })
            }
            EnrollPolicy::Ranges(ranges) => match from.map(|ip| ip.to_canonical()) {
                Some(ip) if ranges.iter().any(|r| r.contains(&ip)) => None,
                Some(ip) => Some(format!(
                    "this registrar enrolls only clients in its address ranges, not {ip}"
                )),
                None => Some("this registrar enrolls by address, and yours is unknown".into()),
            },
            EnrollPolicy::All(policies) => policies.iter().find_map(|p| p.refusal(headers, from)),
        }
    }
}

/// The header a client presents the enrollment secret in.
pub const ENROLL_HEADER: &str = "x-hive-enroll";

/// Holds the registrar's Ed25519 signing key and issues tokens.
pub struct Registrar {
    key: SigningKey,
    enroll: EnrollPolicy,
    issued: AtomicU64,
    bad_requests: AtomicU64,
    refused: AtomicU64,
}

impl std::fmt::Debug for Registrar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret.
        f.debug_struct("Registrar")
            .field("public_key", &hex(self.key.verifying_key().as_bytes()))
            .finish_non_exhaustive()
    }
}

impl Registrar {
    /// A registrar with a fresh key from the operating system's random source.
    ///
    /// # Panics
    /// If the OS random source fails (no key can be made safely without it).
    pub fn generate() -> Self {
        let mut secret = [0u8; 32];
        #[allow(clippy::expect_used)]
        getrandom::fill(&mut secret).expect("the OS random source failed");
        Self::from_secret(secret)
    }

    /// A registrar with a known 32-byte Ed25519 secret key (kept by the operator, e.g. in a file).
    pub fn from_secret(bytes: [u8; 32]) -> Self {
        Registrar {
            key: SigningKey::from_bytes(&bytes),
            enroll: EnrollPolicy::Open,
            issued: AtomicU64::new(0),
            bad_requests: AtomicU64::new(0),
            refused: AtomicU64::new(0),
        }
    }

    /// The same registrar, issuing tokens only as `policy` allows.
    pub fn with_enroll(mut self, policy: EnrollPolicy) -> Self {
        self.enroll = policy;
        self
    }

    /// Why a request with these headers, from `from`, may not enroll (`None`: it may).
    fn refusal(
        &self,
        headers: &axum::http::HeaderMap,
        from: Option<std::net::IpAddr>,
    ) -> Option<String> {
        self.enroll.refusal(headers, from)
    }

    /// The 32-byte secret key, to store it (e.g. `hive registrar --secret-file`).
    pub fn secret(&self) -> [u8; 32] {
        self.key.to_bytes()
    }

    /// The public key peers and trackers verify tokens with.
    pub fn verifying_key(&self) -> VerifyingKey {
        self.key.verifying_key()
    }

    /// A verifier for this registrar's tokens.
    pub fn verifier(&self) -> TokenVerifier {
        TokenVerifier::new(self.verifying_key())
    }

    /// Issues a token (version 1, [`TOKEN_LEN`] bytes) admitting `peer` to `content` until
    /// `expires_unix_s`.
    pub fn issue(&self, peer: PeerId, content: ContentId, expires_unix_s: u64) -> Bytes {
        let claims = TokenClaims {
            peer,
            content,
            expires_unix_s,
        };
        Bytes::copy_from_slice(&token::sign(&self.key, &claims))
    }

    /// The HTTP API (see the module docs); tokens are valid for `validity` from issue.
    pub fn router(self: Arc<Self>, validity: Duration) -> Router {
        Router::new()
            .route("/v1/token", post(issue_token))
            .route("/v1/key", get(public_key))
            .route("/metrics", get(metrics))
            .route("/healthz", get(|| async { "ok" }))
            .layer(DefaultBodyLimit::max(MAX_BODY))
            .with_state((self, validity))
    }
}

/// Serves the registrar's HTTP API on `listener` until `shutdown` completes, on
/// [`serve_bounded`](crate::http::serve_bounded) with the default
/// [`HttpLimits`](crate::http::HttpLimits) (to choose others, serve
/// [`Registrar::router`] with `serve_bounded` yourself).
pub async fn serve_registrar(
    listener: TcpListener,
    registrar: Arc<Registrar>,
    validity: Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    crate::http::serve_bounded(
        listener,
        registrar.router(validity),
        crate::http::HttpLimits::default(),
        shutdown,
    )
    .await
}

type RegistrarState = State<(Arc<Registrar>, Duration)>;

/// `POST /v1/token` body.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct TokenRequest {
    pub(crate) peer: String,
    pub(crate) content: String,
}

/// `POST /v1/token` reply.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct TokenReply {
    pub(crate) token: String,
    pub(crate) expires_unix_s: u64,
}

/// `GET /v1/key` reply.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct KeyReply {
    pub(crate) public_key: String,
}

async fn issue_token(
    State((r, validity)): RegistrarState,
    Observed(from): Observed,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> Result<axum::Json<TokenReply>, ApiError> {
    if let Some(why) = r.refusal(&headers, from.map(|a| a.ip())) {
        r.refused.fetch_add(1, Ordering::Relaxed);
        return Err(ApiError::forbidden(why));
    }
    let parsed = parse_json::<TokenRequest>(&body).and_then(|req| {
        let peer: PeerId = req
            .peer
            .parse()
            .map_err(|e| ApiError::bad_request(format!("peer: {e}")))?;
        let content: ContentId = req
            .content
            .parse()
            .map_err(|e| ApiError::bad_request(format!("content: {e}")))?;
        Ok((peer, content))
    });
    let (peer, content) = parsed.inspect_err(|_| {
        r.bad_requests.fetch_add(1, Ordering::Relaxed);
    })?;
    let expires = (now_unix_ms() / 1000).saturating_add(validity.as_secs().max(1));
    let token = r.issue(peer, content, expires);
    r.issued.fetch_add(1, Ordering::Relaxed);
    tracing::debug!(peer = %peer.short(), content = %content.short(), expires, "token issued");
    Ok(axum::Json(TokenReply {
        token: b64_encode(&token),
        expires_unix_s: expires,
    }))
}

async fn public_key(State((r, _)): RegistrarState) -> axum::Json<KeyReply> {
    axum::Json(KeyReply {
        public_key: hex(r.verifying_key().as_bytes()),
    })
}

async fn metrics(State((r, _)): RegistrarState) -> impl IntoResponse {
    let body = format!(
        "# HELP hive_registrar_tokens_issued_total Tokens signed.\n\
         # TYPE hive_registrar_tokens_issued_total counter\n\
         hive_registrar_tokens_issued_total {}\n\
         # HELP hive_registrar_bad_requests_total Token requests refused as malformed.\n\
         # TYPE hive_registrar_bad_requests_total counter\n\
         hive_registrar_bad_requests_total {}\n\
         # HELP hive_registrar_refused_total Token requests refused by the enrollment policy.\n\
         # TYPE hive_registrar_refused_total counter\n\
         hive_registrar_refused_total {}\n",
        r.issued.load(Ordering::Relaxed),
        r.bad_requests.load(Ordering::Relaxed),
        r.refused.load(Ordering::Relaxed)
    );
    (
        [("content-type", "text/plain; version=0.0.4; charset=utf-8")],
        body,
    )
}

/// Lower-case hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Parses a 32-byte value from 64 hex digits (keys and secrets on the command line or in files).
pub fn parse_hex32(text: &str) -> Result<[u8; 32], String> {
    let text = text.trim();
    if text.len() != 64 || !text.is_ascii() {
        return Err(format!(
            "expected 64 hex digits, found {} characters",
            text.len()
        ));
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&text[i * 2..i * 2 + 2], 16)
            .map_err(|_| format!("not hex at position {}", i * 2))?;
    }
    Ok(out)
}

/// Parses an Ed25519 verifying key from 64 hex digits (as `GET /v1/key` and `hive tracker
/// --registrar-key` carry it).
pub fn parse_verifying_key(text: &str) -> Result<VerifyingKey, String> {
    let bytes = parse_hex32(text)?;
    VerifyingKey::from_bytes(&bytes).map_err(|e| format!("not an Ed25519 public key: {e}"))
}

/// Whether `a` and `b` are equal, in time that depends on their lengths only.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
