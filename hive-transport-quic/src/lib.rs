//! # hive-transport-quic
//!
//! The Hive Transport contract on s2n-quic, with Hive's congestion controllers inside.
//!
//! **Status:** this crate is part of the workspace layout so that the facade's features and the
//! dependency graph are fixed from the start; its implementation is tracked by issue #8 and
//! it exports nothing yet. The contracts it implements live in [`hive_core`].

#![forbid(unsafe_code)]
