//! Conformance kits: checks written once and run against every implementation of a contract
//! (one harness, many implementations), plus [`memory`], the in-process reference transport.
//!
//! - [`cache`]: what every [`FragmentCache`](crate::cache::FragmentCache) must do.
//! - [`transport`]: what every [`Transport`](crate::transport::Transport) must do.
//! - [`memory`]: a `Transport` over in-memory queues; it passes the suite and serves tests of the
//!   layers above.
//!
//! Each kit is a module of public functions, one per property every implementation must have,
//! plus a `run_all` that runs them in turn. An implementer calls them from their own `#[test]`s:
//!
//! ```
//! use hive_core::cache::VodCache;
//! hive_core::testkit::cache::run_all(|| VodCache::new(1 << 20));
//! ```
//!
//! The checks panic (with the name of the check and what went wrong) on the first violation, as
//! `assert!` does. Enable them with the `testkit` feature, normally in `[dev-dependencies]`.

pub mod cache;
pub mod memory;
pub mod transport;
