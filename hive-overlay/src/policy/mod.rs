//! Overlay policies behind [`OverlayPolicy`](hive_core::overlay::OverlayPolicy).
//!
//! | policy | neighbours | source of a fragment | prefetch |
//! |---|---|---|---|
//! | [`NoPeer`] | none | always the origin (a pure CDN: the baseline) | never |
//! | [`RandomMesh`] | random candidates | a random holder, else wait a random part of the slack, then the origin | never |
//! | [`PrivateHierarchy`] | own site; supernodes also the gateway site's supernodes | a site holder, else the designated supernode (pull-through), which fetches from the origin or across the VPN | pull-through at supernodes |

mod baseline;
mod hierarchy;

pub use baseline::{NoPeer, RandomMesh};
pub use hierarchy::PrivateHierarchy;
