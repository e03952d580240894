//! Content hashes of whole fragments.

use std::fmt;

/// The BLAKE3 hash of a whole fragment.
///
/// Data messages carry it; a receiver checks the bytes against it before caching, serving or
/// delivering them, and drops a peer that served bad bytes.
///
/// ```
/// use hive_core::ContentHash;
/// let h = ContentHash::of(b"fragment bytes");
/// assert!(h.verify(b"fragment bytes"));
/// assert!(!h.verify(b"fragment bytez"));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ContentHash(pub [u8; 32]);

impl ContentHash {
    /// Hashes `data`.
    pub fn of(data: &[u8]) -> Self {
        ContentHash(*blake3::hash(data).as_bytes())
    }

    /// Whether `data` hashes to `self` (constant-time comparison).
    pub fn verify(&self, data: &[u8]) -> bool {
        blake3::hash(data) == blake3::Hash::from_bytes(self.0)
    }
}

impl fmt::Debug for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ContentHash(")?;
        for b in &self.0[..6] {
            write!(f, "{b:02x}")?;
        }
        write!(f, "..)")
    }
}
