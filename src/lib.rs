//! # hive
//!
//! Hive is a software CDN for adaptive HTTP video (HLS, DASH, Smooth Streaming, HDS). Every viewer
//! runs a Hive agent between the player and the origin; agents share fragments peer-to-peer and
//! fall back to the origin on a miss, building locality-aware overlays so that an office, a VPN
//! link or an ISP carries about one copy of each fragment instead of one per viewer.
//!
//! This facade crate re-exports the Hive crates; pick plug-ins with cargo features. The
//! default features are what an application embedding an agent needs: `agent`, `overlay`,
//! `udp` (with `cc`), `hls` and `dash`. The `hive` command-line tool is another package,
//! `hive-cli`.
//!
//! | feature    | crate                    | what it adds |
//! |------------|--------------------------|--------------|
//! | (always)   | [`core`]                 | ids, wire protocol, plug-in traits, caches |
//! | `cc`       | `hive-cc`                | congestion controllers and the CC arena |
//! | `udp`      | `hive-transport-udp`     | Hive's reliable encrypted UDP transport (implies `cc`) |
//! | `quic`     | `hive-transport-quic`    | the transport contract on s2n-quic (implies `cc`) |
//! | `webrtc`   | `hive-transport-webrtc`  | the transport contract on WebRTC data channels |
//! | `hls`, `dash` | `hive-manifest`       | manifest formats |
//! | `overlay`  | `hive-overlay`           | the swarm engine and overlay policies |
//! | `sim`      | `hive-sim`               | the deterministic simulator |
//! | `agent`    | `hive-agent`             | the tokio agent (implies `overlay` and `udp`) |
//! | `services` | `hive-services`          | tracker, registrar, origin, hash service, connectivity, statistics |
//! | `redis`    | `hive-services`          | the tracker's Redis store (implies `services`) |

#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub use hive_core as core;

#[cfg(feature = "agent")]
#[cfg_attr(docsrs, doc(cfg(feature = "agent")))]
pub use hive_agent as agent;
#[cfg(feature = "cc")]
#[cfg_attr(docsrs, doc(cfg(feature = "cc")))]
pub use hive_cc as cc;
#[cfg(any(feature = "hls", feature = "dash"))]
#[cfg_attr(docsrs, doc(cfg(any(feature = "hls", feature = "dash"))))]
pub use hive_manifest as manifest;
#[cfg(feature = "overlay")]
#[cfg_attr(docsrs, doc(cfg(feature = "overlay")))]
pub use hive_overlay as overlay;
#[cfg(feature = "services")]
#[cfg_attr(docsrs, doc(cfg(feature = "services")))]
pub use hive_services as services;
#[cfg(feature = "sim")]
#[cfg_attr(docsrs, doc(cfg(feature = "sim")))]
pub use hive_sim as sim;
#[cfg(feature = "quic")]
#[cfg_attr(docsrs, doc(cfg(feature = "quic")))]
pub use hive_transport_quic as transport_quic;
#[cfg(feature = "udp")]
#[cfg_attr(docsrs, doc(cfg(feature = "udp")))]
pub use hive_transport_udp as transport_udp;
#[cfg(feature = "webrtc")]
#[cfg_attr(docsrs, doc(cfg(feature = "webrtc")))]
pub use hive_transport_webrtc as transport_webrtc;
