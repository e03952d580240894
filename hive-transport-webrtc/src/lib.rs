//! # hive-transport-webrtc
//!
//! The Hive Transport contract on WebRTC data channels (browser-compatible peers).
//!
//! **Status:** this crate is part of the workspace layout so that the facade's features and the
//! dependency graph are fixed from the start; its implementation is not yet scheduled by an issue, and
//! it exports nothing yet. The contracts it implements live in [`hive_core`].

#![forbid(unsafe_code)]
