//! Bounds on every length and count a decoder accepts.

/// The bounds a decoder enforces on every length and count it reads.
///
/// Each bound is checked against the declared value *before* anything is allocated for it or
/// awaited, so a peer cannot make the decoder allocate more than these limits allow, however
/// it crafts its bytes. Senders can check a message against the same bounds with
/// [`Message::check`](super::Message::check).
///
/// The struct is `#[non_exhaustive]`: start from [`WireLimits::default`] and change fields.
///
/// ```
/// use hive_core::wire::WireLimits;
/// let mut limits = WireLimits::default();
/// limits.max_chunk_len = 64 * 1024;
/// assert!(limits.max_frame_len > limits.max_chunk_len);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct WireLimits {
    /// Largest frame, its 4-byte length prefix included. Default 1 MiB + 4 KiB.
    pub max_frame_len: u32,
    /// Largest payload chunk of one `Data` message. Default 256 KiB.
    pub max_chunk_len: u32,
    /// Largest total fragment length a `Data` message may announce (a receiver reassembles
    /// that many bytes). Default 256 MiB.
    pub max_fragment_len: u64,
    /// Longest registrar token in a `Hello`. Default 4 KiB.
    pub max_token_len: u32,
    /// Longest UTF-8 string (locality site, `Bye` detail). Default 256 bytes.
    pub max_string_len: u32,
    /// Most protocol versions a `Hello` may list. Default 16.
    pub max_versions: u32,
    /// Most tracks in one `Have`. Default 64.
    pub max_have_tracks: u32,
    /// Most blocks (runs or bitmaps) for one track of a `Have`. Default 4096.
    pub max_have_blocks: u32,
    /// Largest bitmap block of a `Have`, in bytes. Default 4096.
    pub max_have_bitmap_len: u32,
    /// Most disjoint ranges a decoded `Have` may hold over all its tracks (each costs memory in
    /// the decoded [`SeqSet`](crate::SeqSet)). Default 16384.
    pub max_have_ranges: u32,
    /// Most peers in one `PeerExchange`. Default 64.
    pub max_peers: u32,
    /// Most addresses per peer in a `PeerExchange`. Default 8.
    pub max_peer_addrs: u32,
}

impl WireLimits {
    /// The defaults documented on each field.
    pub const DEFAULT: WireLimits = WireLimits {
        max_frame_len: 1024 * 1024 + 4096,
        max_chunk_len: 256 * 1024,
        max_fragment_len: 256 * 1024 * 1024,
        max_token_len: 4096,
        max_string_len: 256,
        max_versions: 16,
        max_have_tracks: 64,
        max_have_blocks: 4096,
        max_have_bitmap_len: 4096,
        max_have_ranges: 16_384,
        max_peers: 64,
        max_peer_addrs: 8,
    };
}

impl Default for WireLimits {
    fn default() -> Self {
        WireLimits::DEFAULT
    }
}
