//! Conformance kits (feature `testkit`): test suites written once and run against every
//! implementation of a contract, plus [`memory`], the in-process reference transport.
//!
//! - [`transport`]: what every [`Transport`](crate::transport::Transport) must do.
//! - [`memory`]: a `Transport` over in-memory queues; it passes the suite and serves tests of the
//!   layers above.

pub mod memory;
pub mod transport;
