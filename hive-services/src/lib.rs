//! # hive-services
//!
//! The services a Hive deployment runs beside its agents:
//!
//! - [`tracker`]: introduces agents to each other over HTTP/JSON, nearest first (same site, then
//!   same AS, capacity-aware), with entries expiring by TTL; storage behind the
//!   [`TrackerStore`](tracker::TrackerStore) trait, in memory ([`MemoryStore`](tracker::MemoryStore))
//!   or in Redis ([`RedisStore`](tracker::RedisStore), Redis Cluster-compatible keys, one round
//!   trip per announce);
//! - [`registrar`]: signs admission tokens with Ed25519 that bind a peer, a swarm and an expiry;
//!   peers and the tracker verify them offline;
//! - [`origin`]: a synthetic live HLS/DASH origin in real time (or a folder of real media), with
//!   byte counters — what `hive origin`, `hive demo` and the end-to-end tests stream from;
//! - [`integrity`]: trusted fragment hashes — [`Signer`](integrity::Signer) writes signed lists
//!   beside a packager's playlists (`hive sign`), [`HashService`](integrity::HashService) fetches
//!   each fragment once from an origin that cannot be changed and publishes the same lists.
//!
//! Both come with an HTTP client ([`TrackerClient`](tracker::TrackerClient),
//! [`RegistrarClient`](registrar::RegistrarClient)) and a `serve` function; the `hive tracker` and
//! `hive registrar` commands run them.
//!
//! ```no_run
//! use std::sync::Arc;
//! use hive_core::{ContentId, PeerAddr, PeerId, PeerInfo};
//! use hive_services::tracker::{self, Announce, MemoryStore, Tracker, TrackerClient, TrackerConfig};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let url = format!("http://{}", listener.local_addr()?);
//! let t = Arc::new(Tracker::new(TrackerConfig::default(), Arc::new(MemoryStore::new())));
//! tokio::spawn(tracker::serve(listener, t, std::future::pending()));
//!
//! let client = TrackerClient::new(&url)?;
//! let me = PeerInfo::new(PeerId::from_bytes([1; 32]), PeerAddr::Socket("0.0.0.0:4000".parse()?));
//! let content = ContentId::derive("live/channel-1");
//! let reply = client.announce(&Announce { content, peer: me, token: None, want: 30 }).await?;
//! println!("{} peers, next announce in {:?}", reply.peers.len(), reply.interval);
//! # Ok(()) }
//! ```
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `redis` | yes | [`RedisStore`](tracker::RedisStore) (the `redis` crate, tokio) |
//! | `integrity` | yes | [`integrity`]: `hive sign`'s [`Signer`](integrity::Signer) and the [`HashService`](integrity::HashService) (hive-manifest) |

#![forbid(unsafe_code)]

pub mod http;
#[cfg(feature = "integrity")]
pub mod integrity;
pub mod origin;
pub mod registrar;
pub mod testkit;
pub mod tracker;
