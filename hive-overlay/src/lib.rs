//! # hive-overlay
//!
//! The sans-IO Hive swarm engine and its overlay policies (public mesh, private-network hierarchy).
//!
//! **Status:** this crate is part of the workspace layout so that the facade's features and the
//! dependency graph are fixed from the start; its implementation is tracked by issue #6 and
//! it exports nothing yet. The contracts it implements live in [`hive_core`].

#![forbid(unsafe_code)]
