//! The two sources of trusted fragment hashes of [`hive_core::integrity`] (issue #17):
//!
//! - [`Signer`] (`hive sign`): the packaging side. Writes, beside every HLS media playlist and
//!   DASH MPD of a folder, `<playlist>.hive-integrity`: the BLAKE3 of each fragment it lists,
//!   read from disk and signed with the publisher's key. Run once for on-demand content, or
//!   with `--watch` beside a live packager (ffmpeg rewrites its playlist every segment);
//! - [`HashService`] (`hive hash-service`, or inside `hive tracker`): for origins that cannot
//!   be changed. It watches the manifests agents ask about, fetches each fragment **once** from
//!   the origin (one extra origin copy per fragment per bitrate), hashes it as it streams in and
//!   publishes the same signed lists under its own key at
//!   `GET /v1/integrity?manifest=<url>&since=<seq>` (long-poll); [`HashServiceClient`] is the
//!   agents' side.
//!
//! Both write the format of [`hive_core::integrity::SignedList`]; an agent verifies a list with
//! the publisher's or the service's public key and resolves each entry's URI against
//! [`list_url`](hive_core::integrity::list_url)`(manifest URL)` (the service's URIs are
//! absolute, which `Url::join` keeps).
//!
//! ```no_run
//! use hive_core::integrity::PublisherKey;
//! use hive_services::integrity::Signer;
//!
//! # fn run() -> Result<(), hive_services::integrity::SignError> {
//! let key = PublisherKey::from_seed([7; 32]);
//! let mut signer = Signer::new(key, std::path::Path::new("/srv/hls"))?;
//! let report = signer.pass()?;
//! eprintln!("{} lists written, {} fragments hashed", report.lists_written, report.fragments_hashed);
//! # Ok(()) }
//! ```

mod client;
mod fetch;
mod service;
mod signer;

use std::path::{Path, PathBuf};

pub use client::{HashServiceClient, HashServiceError};
pub use service::{
    HashService, HashServiceConfig, HashServiceStats, SEQ_HEADER, WatchError, serve,
};
pub use signer::{MAX_PLAYLISTS, PassReport, Signer, hash_file, list_path, watch};

/// Why signing failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SignError {
    /// A file or folder could not be read or written.
    #[error("{path}: {what}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// What was being done.
        what: &'static str,
        /// The error.
        source: std::io::Error,
    },
    /// The path given is not a folder.
    #[error("{0}: not a folder")]
    NotAFolder(PathBuf),
    /// A playlist is over the size bound.
    #[error("{0}: playlist too large")]
    TooLarge(PathBuf),
    /// A playlist does not parse.
    #[error("{0}: {1}")]
    Manifest(PathBuf, String),
}

impl SignError {
    fn io(path: &Path, what: &'static str, source: std::io::Error) -> Self {
        SignError::Io {
            path: path.to_path_buf(),
            what,
            source,
        }
    }
}

/// A fresh signing key from the operating system's random source (`hive sign --new-key`).
pub fn generate_key() -> Result<hive_core::integrity::PublisherKey, getrandom::Error> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed)?;
    Ok(hive_core::integrity::PublisherKey::from_seed(seed))
}
