//! # hive-cc
//!
//! Congestion controllers for Hive (NewReno, Cubic, LEDBAT, LEDBAT++, DTL dynamic priority), a packet-level bottleneck-link model and the CC arena.
//!
//! **Status:** this crate is part of the workspace layout so that the facade's features and the
//! dependency graph are fixed from the start; its implementation is tracked by issue #3 and
//! it exports nothing yet. The contracts it implements live in [`hive_core`].

#![forbid(unsafe_code)]
