//! Overlay policies behind [`OverlayPolicy`](hive_core::overlay::OverlayPolicy).
//!
//! | policy | neighbours | source of a fragment | prefetch |
//! |---|---|---|---|
//! | [`NoPeer`] | none | always the origin (a pure CDN: the baseline) | never |
//! | [`RandomMesh`] | random candidates | a random holder, else wait a random part of the slack, then the origin | never |

mod baseline;

pub use baseline::{NoPeer, RandomMesh};
