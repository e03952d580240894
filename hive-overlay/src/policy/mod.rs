//! Overlay policies behind [`OverlayPolicy`](hive_core::overlay::OverlayPolicy).
//!
//! | policy | neighbours | source of a fragment | prefetch |
//! |---|---|---|---|
//! | [`NoPeer`] | none | always the origin (a pure CDN: the baseline) | never |
//! | [`RandomMesh`] | random candidates | a random holder, else wait a random part of the slack, then the origin | never |
//! | [`PublicMesh`] | a few same-AS, a few high-capacity, the rest random; the slowest swapped for a much faster candidate | the holder expected to deliver soonest (same AS counts double), else wait for an announcement; a staggered second wave goes to the origin | a small, capacity-weighted first tier self-elected per fragment by hashing (the player's bitrate only) |
//! | [`PrivateHierarchy`] | own site; supernodes also the gateway site's supernodes | a site holder, else the designated supernode (pull-through), which fetches from the origin or across the VPN | pull-through at supernodes |

mod baseline;
mod hierarchy;
mod public;

use hive_core::FragmentId;

/// A well-mixed 64-bit hash of a fragment and a key (SplitMix64's finaliser): the stable,
/// per-(agent, fragment) randomness the policies need without shared state.
fn fragment_hash(key: u64, f: &FragmentId) -> u64 {
    let mut x = key ^ f.sequence.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (u64::from(f.track.0) << 56);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

pub use baseline::{NoPeer, RandomMesh};
pub use hierarchy::PrivateHierarchy;
pub use public::{FALLBACK_TIER_KBPS, PublicMesh, PublicMeshConfig};
