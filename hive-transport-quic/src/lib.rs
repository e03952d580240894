//! # hive-transport-quic
//!
//! The Hive Transport contract on s2n-quic, with Hive's congestion controllers inside.
//!
//! **Status:** the `Transport` implementation is tracked by issue #8. What exists today is
//! [`baseline`]: a plain s2n-quic bulk transfer with s2n-quic's default configuration, the QUIC
//! column of `hive bench transport` (issue #4). The contracts this crate will implement live in
//! [`hive_core`].
//!
//! ```
//! # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
//! let endpoints = hive_transport_quic::baseline::start()?; // client and server on 127.0.0.1
//! let pair = endpoints.connect().await?; // one handshake
//! assert_eq!(pair.transfer(256 << 10, 64 << 10).await?, 256 << 10);
//! # Ok::<(), hive_transport_quic::baseline::BaselineError>(())
//! # }).unwrap();
//! ```

#![forbid(unsafe_code)]

pub mod baseline;
