//! Identifiers: peers, swarms (content), tracks, fragments, and where a peer sits in the network.

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;

use crate::error::IdError;

/// Length in bytes of a [`PeerId`] and of a [`ContentId`].
pub const ID_LEN: usize = 32;

/// The kind of public key a [`PeerId`] was derived from.
///
/// The kind is hashed together with the key so that the same bytes under two key types never give
/// the same id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeyKind {
    /// An X25519 static key (Noise handshakes of the UDP transport).
    X25519,
    /// An Ed25519 verifying key (certificates, registrar tokens).
    Ed25519,
    /// A DER-encoded SubjectPublicKeyInfo of any other algorithm (e.g. the ECDSA key of a DTLS
    /// certificate).
    Spki,
}

impl KeyKind {
    fn tag(self) -> &'static [u8] {
        match self {
            KeyKind::X25519 => b"x25519",
            KeyKind::Ed25519 => b"ed25519",
            KeyKind::Spki => b"spki",
        }
    }
}

/// The identity of an agent: the BLAKE3 hash of its public key.
///
/// Because the id is derived from the key, a transport's handshake that proves possession of the
/// key also authenticates the id: no directory is needed to bind them.
///
/// ```
/// use hive_core::{KeyKind, PeerId};
/// let id = PeerId::from_public_key(KeyKind::Ed25519, &[7u8; 32]);
/// assert_eq!(id.short().len(), 12);
/// let parsed: PeerId = id.to_string().parse().unwrap();
/// assert_eq!(parsed, id);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PeerId([u8; ID_LEN]);

/// Ids are ordered byte by byte, as arrays are. Engines keep neighbours and fragments in sorted
/// maps and look them up on every message: equal ids (every fragment of a swarm has the same
/// content id) are settled by one wide equality test, different ones (hashes) nearly always by
/// the first of four big-endian words.
#[inline]
fn cmp_ids(a: &[u8; ID_LEN], b: &[u8; ID_LEN]) -> std::cmp::Ordering {
    if a == b {
        return std::cmp::Ordering::Equal;
    }
    let word = |x: &[u8; ID_LEN], i: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&x[i * 8..i * 8 + 8]);
        u64::from_be_bytes(w)
    };
    (0..ID_LEN / 8)
        .map(|i| word(a, i).cmp(&word(b, i)))
        .find(|o| o.is_ne())
        .unwrap_or(std::cmp::Ordering::Equal)
}

/// `Ord` and `PartialOrd` of an id type through [`cmp_ids`].
macro_rules! ordered_by_bytes {
    ($($id:ty),*) => {$(
        impl Ord for $id {
            #[inline]
            fn cmp(&self, other: &Self) -> std::cmp::Ordering {
                cmp_ids(&self.0, &other.0)
            }
        }

        impl PartialOrd for $id {
            fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
                Some(self.cmp(other))
            }
        }
    )*};
}

ordered_by_bytes!(PeerId, ContentId);

impl PeerId {
    /// Derives the id of the holder of `public_key`.
    pub fn from_public_key(kind: KeyKind, public_key: &[u8]) -> Self {
        let mut h = blake3::Hasher::new_derive_key("hive peer-id v1");
        h.update(kind.tag());
        h.update(&[0]);
        h.update(public_key);
        PeerId(*h.finalize().as_bytes())
    }

    /// Wraps raw id bytes (as read off the wire). No key is checked: only a transport handshake
    /// authenticates an id.
    pub const fn from_bytes(bytes: [u8; ID_LEN]) -> Self {
        PeerId(bytes)
    }

    /// The raw bytes.
    pub const fn as_bytes(&self) -> &[u8; ID_LEN] {
        &self.0
    }

    /// The first eight bytes, big-endian: ids order as their heads do unless the heads are
    /// equal, and ids (hashes) nearly always differ in them. A compact key for sorting and
    /// searching many ids.
    ///
    /// ```
    /// use hive_core::{KeyKind, PeerId};
    /// let a = PeerId::from_public_key(KeyKind::X25519, &[1; 32]);
    /// let b = PeerId::from_public_key(KeyKind::X25519, &[2; 32]);
    /// assert_eq!(a.head().cmp(&b.head()), a.cmp(&b));
    /// ```
    #[inline]
    pub const fn head(&self) -> u64 {
        let b = &self.0;
        u64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
    }

    /// A short printable form (the first 6 bytes in hex) for logs and tables.
    pub fn short(&self) -> String {
        hex_encode(&self.0[..6])
    }
}

impl fmt::Display for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex_encode(&self.0))
    }
}

impl fmt::Debug for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PeerId({})", self.short())
    }
}

impl FromStr for PeerId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        hex_decode_32(s).map(PeerId)
    }
}

/// Identifies a swarm: one stream (live channel or on-demand asset) as described by its manifest.
///
/// Derived from the manifest, never from player behaviour, and versioned: the derivation label
/// includes a version so a future change of derivation never mixes two swarms.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ContentId([u8; ID_LEN]);

impl ContentId {
    /// Derives a content id from a canonical stream key (for example the normalised manifest URL
    /// without per-viewer tokens, or an operator-assigned channel name).
    pub fn derive(canonical_key: &str) -> Self {
        let mut h = blake3::Hasher::new_derive_key("hive content-id v1");
        h.update(canonical_key.as_bytes());
        ContentId(*h.finalize().as_bytes())
    }

    /// Wraps raw id bytes.
    pub const fn from_bytes(bytes: [u8; ID_LEN]) -> Self {
        ContentId(bytes)
    }

    /// The raw bytes.
    pub const fn as_bytes(&self) -> &[u8; ID_LEN] {
        &self.0
    }

    /// A short printable form (the first 6 bytes in hex).
    pub fn short(&self) -> String {
        hex_encode(&self.0[..6])
    }
}

impl fmt::Display for ContentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex_encode(&self.0))
    }
}

impl fmt::Debug for ContentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ContentId({})", self.short())
    }
}

impl FromStr for ContentId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        hex_decode_32(s).map(ContentId)
    }
}

/// One track of a presentation: a bitrate of the video ladder, an audio or a subtitle rendition.
///
/// Track numbers are assigned by the manifest parser in manifest order and are stable for a given
/// manifest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TrackId(pub u16);

impl fmt::Display for TrackId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "t{}", self.0)
    }
}

/// A byte range `[start, start + len)` of a resource, for formats that address fragments by range
/// (HLS `EXT-X-BYTERANGE`, DASH `SegmentBase`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ByteRange {
    /// First byte.
    pub start: u64,
    /// Number of bytes.
    pub len: u64,
}

impl ByteRange {
    /// The exclusive end, saturating at `u64::MAX`.
    pub fn end(&self) -> u64 {
        self.start.saturating_add(self.len)
    }
}

/// A fragment (segment, chunk) of one track of one swarm.
///
/// ```
/// use hive_core::{ContentId, FragmentId, TrackId};
/// let f = FragmentId::new(ContentId::derive("live/channel-1"), TrackId(2), 1041);
/// assert_eq!(f.to_string().split('/').nth(1), Some("t2"));
/// ```
#[derive(Clone, Copy, Debug, Eq, PartialOrd, Ord)]
pub struct FragmentId {
    /// The swarm.
    pub content: ContentId,
    /// The track (bitrate or rendition).
    pub track: TrackId,
    /// The fragment's sequence number within the track (media sequence, `$Number$`, or an index
    /// derived from media time).
    pub sequence: u64,
    /// The byte range within the resource, where the format addresses fragments by range.
    pub range: Option<ByteRange>,
}

/// Equal when every field is; compared from the field most likely to differ (the sequence
/// number) to the one that never does within a swarm (the 32-byte content id): engines look
/// fragments up in short lists many times per event.
impl PartialEq for FragmentId {
    #[inline]
    fn eq(&self, other: &Self) -> bool {
        self.sequence == other.sequence
            && self.track == other.track
            && self.range == other.range
            && self.content == other.content
    }
}

/// The fields in declaration order, as `#[derive(Hash)]` would (equal ids hash equally).
impl std::hash::Hash for FragmentId {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.content.hash(state);
        self.track.hash(state);
        self.sequence.hash(state);
        self.range.hash(state);
    }
}

impl FragmentId {
    /// A fragment addressed by sequence number only.
    pub const fn new(content: ContentId, track: TrackId, sequence: u64) -> Self {
        FragmentId {
            content,
            track,
            sequence,
            range: None,
        }
    }

    /// The same fragment with a byte range.
    pub const fn with_range(mut self, range: ByteRange) -> Self {
        self.range = Some(range);
        self
    }
}

impl fmt::Display for FragmentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}/{}",
            self.content.short(),
            self.track,
            self.sequence
        )?;
        if let Some(r) = self.range {
            write!(f, "@{}+{}", r.start, r.len)?;
        }
        Ok(())
    }
}

/// Where a peer sits in the network; the tracker and the overlay policies group peers by it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Locality {
    /// Autonomous system number of the peer's ISP or enterprise network.
    pub asn: Option<u32>,
    /// Site or network segment (an office, a subnet group), as named by the operator.
    pub site: Option<String>,
    /// ISO 3166-1 alpha-2 country code, upper case.
    pub country: Option<[u8; 2]>,
}

impl Locality {
    /// A rough distance between two localities: 0 same site, 1 same AS, 2 same country, 3 else.
    pub fn distance(&self, other: &Locality) -> u8 {
        if self.site.is_some() && self.site == other.site && self.asn == other.asn {
            0
        } else if self.asn.is_some() && self.asn == other.asn {
            1
        } else if self.country.is_some() && self.country == other.country {
            2
        } else {
            3
        }
    }
}

/// The role an agent plays in a swarm.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Role {
    /// An ordinary viewer: downloads and uploads.
    #[default]
    Peer,
    /// A first-tier or supernode agent that prefetches new fragments from the origin.
    Supernode,
    /// A viewer that never uploads (battery, metered link, policy).
    ConsumeOnly,
    /// A seeder without a player (an edge box or a cache).
    Seeder,
}

impl Role {
    /// Whether an agent of this role takes `assigned` when a service assigns it (a tracker
    /// promoting it to supernode): a different role, and never to or from consume-only (such
    /// an agent does not upload, whatever it is told).
    pub fn takes(self, assigned: Role) -> bool {
        self != assigned && self != Role::ConsumeOnly && assigned != Role::ConsumeOnly
    }

    /// The role's code on the wire.
    pub const fn code(self) -> u8 {
        match self {
            Role::Peer => 0,
            Role::Supernode => 1,
            Role::ConsumeOnly => 2,
            Role::Seeder => 3,
        }
    }

    /// The role for a wire code, if known.
    pub const fn from_code(code: u8) -> Option<Role> {
        match code {
            0 => Some(Role::Peer),
            1 => Some(Role::Supernode),
            2 => Some(Role::ConsumeOnly),
            3 => Some(Role::Seeder),
            _ => None,
        }
    }
}

/// How to reach a peer. A transport uses the variants it understands and ignores the others.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PeerAddr {
    /// A UDP/IP socket address (the UDP and QUIC transports).
    Socket(SocketAddr),
    /// Reach the peer through a rendezvous (signalling) service by its id: WebRTC's offer/answer,
    /// or a relay. The transport was given the rendezvous when it was built.
    Rendezvous,
    /// A process-local address of the in-memory reference transport.
    Memory(u64),
}

/// What the tracker and peer exchange tell about a peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerInfo {
    /// Its id.
    pub id: PeerId,
    /// Addresses to dial it at.
    pub addrs: Vec<PeerAddr>,
    /// Where it sits.
    pub locality: Locality,
    /// Its role.
    pub role: Role,
    /// Upload capacity it offers, in kbit/s (0 for consume-only).
    pub upload_kbps: u32,
}

impl PeerInfo {
    /// A peer with one address and default role, locality and capacity.
    pub fn new(id: PeerId, addr: PeerAddr) -> Self {
        PeerInfo {
            id,
            addrs: vec![addr],
            locality: Locality::default(),
            role: Role::Peer,
            upload_kbps: 0,
        }
    }
}

fn hex_encode(bytes: &[u8]) -> String {
    use fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        // Writing to a String cannot fail.
        let _ = write!(s, "{b:02x}");
    }
    s
}

fn hex_decode_32(s: &str) -> Result<[u8; ID_LEN], IdError> {
    let s = s.as_bytes();
    if s.len() != ID_LEN * 2 {
        return Err(IdError::Length {
            expected: ID_LEN * 2,
            found: s.len(),
        });
    }
    let mut out = [0u8; ID_LEN];
    for (i, pair) in s.chunks_exact(2).enumerate() {
        let hi = hex_val(pair[0]).ok_or(IdError::NotHex { at: i * 2 })?;
        let lo = hex_val(pair[1]).ok_or(IdError::NotHex { at: i * 2 + 1 })?;
        out[i] = hi << 4 | lo;
    }
    Ok(out)
}

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// Fragment ids' equality (written out, cheapest field first) agrees with their order
        /// and their hash, whichever field differs.
        #[test]
        fn fragment_id_equality_agrees_with_order_and_hash(
            a in (0u8..2, 0u16..2, 0u64..3, proptest::option::of((0u64..2, 0u64..2))),
            b in (0u8..2, 0u16..2, 0u64..3, proptest::option::of((0u64..2, 0u64..2))),
        ) {
            let id = |(c, t, s, r): (u8, u16, u64, Option<(u64, u64)>)| FragmentId {
                content: ContentId::derive(&c.to_string()),
                track: TrackId(t),
                sequence: s,
                range: r.map(|(start, len)| ByteRange { start, len }),
            };
            let (x, y) = (id(a), id(b));
            proptest::prop_assert_eq!(x == y, a == b);
            proptest::prop_assert_eq!(x == y, x.cmp(&y) == std::cmp::Ordering::Equal);
            let h = |f: &FragmentId| {
                use std::hash::{BuildHasher, BuildHasherDefault};
                BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default()
                    .hash_one(f)
            };
            if x == y {
                proptest::prop_assert_eq!(h(&x), h(&y));
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn ids_order_as_their_bytes(
            a in proptest::array::uniform32(0u8..4),
            b in proptest::array::uniform32(0u8..4),
        ) {
            // Few byte values, so that long shared prefixes are common.
            proptest::prop_assert_eq!(PeerId(a).cmp(&PeerId(b)), a.cmp(&b));
            proptest::prop_assert_eq!(ContentId(a).cmp(&ContentId(b)), a.cmp(&b));
        }
    }

    #[test]
    fn peer_id_depends_on_key_kind_and_key() {
        let a = PeerId::from_public_key(KeyKind::X25519, &[1; 32]);
        let b = PeerId::from_public_key(KeyKind::Ed25519, &[1; 32]);
        let c = PeerId::from_public_key(KeyKind::X25519, &[2; 32]);
        assert_ne!(a, b);
        assert_ne!(a, c);
        assert_eq!(a, PeerId::from_public_key(KeyKind::X25519, &[1; 32]));
    }

    #[test]
    fn ids_round_trip_through_text() {
        let p = PeerId::from_public_key(KeyKind::X25519, b"key");
        assert_eq!(p.to_string().parse::<PeerId>().unwrap(), p);
        assert_eq!(p.to_string().to_uppercase().parse::<PeerId>().unwrap(), p);
        let c = ContentId::derive("x");
        assert_eq!(c.to_string().parse::<ContentId>().unwrap(), c);
        assert!(p.to_string().starts_with(&p.short()));
    }

    #[test]
    fn bad_id_text_is_a_typed_error() {
        assert_eq!(
            "abc".parse::<PeerId>(),
            Err(IdError::Length {
                expected: 64,
                found: 3
            })
        );
        let mut s = "0".repeat(64);
        s.replace_range(5..6, "g");
        assert_eq!(s.parse::<PeerId>(), Err(IdError::NotHex { at: 5 }));
    }

    #[test]
    fn locality_distance_orders_site_as_country() {
        let site = |s: &str| Locality {
            asn: Some(1),
            site: Some(s.into()),
            country: Some(*b"FR"),
        };
        assert_eq!(site("a").distance(&site("a")), 0);
        assert_eq!(site("a").distance(&site("b")), 1);
        let other_as = Locality {
            asn: Some(2),
            site: None,
            country: Some(*b"FR"),
        };
        assert_eq!(site("a").distance(&other_as), 2);
        assert_eq!(site("a").distance(&Locality::default()), 3);
    }

    #[test]
    fn role_codes_round_trip() {
        for r in [Role::Peer, Role::Supernode, Role::ConsumeOnly, Role::Seeder] {
            assert_eq!(Role::from_code(r.code()), Some(r));
        }
        assert_eq!(Role::from_code(200), None);
    }
}
