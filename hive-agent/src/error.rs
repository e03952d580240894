//! Errors of the agent.

use hive_core::TransportError;

/// What can go wrong running an agent.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AgentError {
    /// The proxy could not listen.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: std::net::SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// A setting is unusable.
    #[error("bad configuration: {0}")]
    Config(String),
    /// The transport failed.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// The HTTP client could not be built.
    #[error("HTTP client: {0}")]
    Http(String),
}

/// Why an origin request failed.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum FetchError {
    /// The URL is not http(s) or not a URL.
    #[error("bad origin URL {0}")]
    BadUrl(String),
    /// Connecting, sending or reading failed.
    #[error("origin request to {url} failed: {reason}")]
    Io {
        /// The URL.
        url: String,
        /// What happened.
        reason: String,
    },
    /// The origin answered with an error status.
    #[error("origin answered {status} for {url}")]
    Status {
        /// The URL.
        url: String,
        /// The status code.
        status: u16,
    },
    /// The body is larger than the configured bound.
    #[error("body of {url} exceeds {limit} bytes")]
    TooLarge {
        /// The URL.
        url: String,
        /// The bound.
        limit: u64,
    },
    /// No answer in time.
    #[error("origin request to {0} timed out")]
    Timeout(String),
    /// The agent may not fetch from this origin (see [`crate::OriginAllowlist`]): the proxy
    /// answers 403 with this message.
    #[error("origin {host} is not allowed: {reason}")]
    NotAllowed {
        /// The host (`host:port` where known).
        host: String,
        /// Why, and how to allow it.
        reason: String,
    },
}

impl FetchError {
    /// Whether trying again may help (network trouble, 5xx, 429, time-outs).
    pub fn retryable(&self) -> bool {
        match self {
            FetchError::Io { .. } | FetchError::Timeout(_) => true,
            FetchError::Status { status, .. } => *status >= 500 || *status == 429,
            _ => false,
        }
    }
}
