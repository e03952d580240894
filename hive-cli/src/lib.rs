//! # hive-cli
//!
//! The `hive` command-line tool (the binary of this package; `cargo run --release -- demo` from
//! the repository root) and, as a library, the harness of `hive demo`: a synthetic live origin,
//! a tracker and N agents with real-time players on loopback ([`demo`]), which the end-to-end
//! tests drive too (`tests/live.rs`).
//!
//! Integrators depend on the `hive` facade crate (or the Hive crates), not on this one.

#![forbid(unsafe_code)]

pub mod demo;
#[cfg(target_os = "linux")]
pub mod lab;
