//! Where a fragment's *trusted* hash comes from.
//!
//! A peer's bytes are only ever checked against a hash that did not come from that peer: the
//! hash a `Data` message carries is the sender's own claim, and a consistent liar recomputes
//! it. Trusted hashes come from one of these sources ([`IntegritySource`]):
//!
//! - **publisher-signed lists** ([`SignedList`]): the packaging side (`hive sign`) writes, beside
//!   each playlist or MPD, a small list of its fragments' BLAKE3 hashes signed with the
//!   publisher's Ed25519 key; agents configured with the publisher's public key fetch it through
//!   the origin, next to the manifest ([`list_url`]);
//! - **a hash service**: for origins that cannot be changed, a service fetches each fragment
//!   once from the origin, hashes it and publishes the same signed lists (one extra origin copy
//!   per fragment and bitrate), which agents pull from the tracker;
//! - **none**: an explicit opt-out for closed labs, where every peer is trusted; bytes are then
//!   checked against the sender's hash, which catches corruption in transit but not lies.
//!
//! The swarm engine takes trusted hashes as input (sans-IO); drivers fetch and verify the lists
//! with the types here. With a trusted source configured and no trusted hash known for a
//! fragment in time, the fragment comes from the origin: a player never receives unverified
//! peer bytes.
//!
//! # The signed list format
//!
//! Text, one item per line, so that it is easy to produce from a shell and to read from
//! TypeScript:
//!
//! ```text
//! #HIVE-INTEGRITY:1
//! #KEY:<64 hex digits: the signer's Ed25519 public key>
//! #SEQ:<decimal u64: grows with each list written for this manifest>
//! <64 hex digits: BLAKE3 of the fragment> <URI, relative to the list's own URL>[ <start>-<end>]
//! ...
//! #SIG:<128 hex digits: Ed25519 signature of every byte before this line>
//! ```
//!
//! The optional `<start>-<end>` is an inclusive byte range (as in HTTP `Range`), for formats
//! that address fragments as ranges of one file. Decoding is bounded ([`MAX_LIST_BYTES`],
//! [`MAX_ENTRIES`]), never panics, and verifies the signature before anything is returned.
//!
//! ```
//! use hive_core::integrity::{SignedList, ListEntry, PublisherKey};
//! use hive_core::{ContentHash, ByteRange};
//!
//! let key = PublisherKey::from_seed([7; 32]);
//! let list = SignedList {
//!     seq: 3,
//!     entries: vec![ListEntry {
//!         uri: "seg-41.ts".into(),
//!         range: None,
//!         hash: ContentHash::of(b"fragment bytes"),
//!     }],
//! };
//! let text = list.sign(&key);
//! let back = SignedList::verify(&text, &key.public()).unwrap();
//! assert_eq!(back, list);
//! // A flipped byte anywhere fails.
//! let mut bad = text.clone();
//! bad[40] ^= 1;
//! assert!(SignedList::verify(&bad, &key.public()).is_err());
//! ```

use std::fmt;

use ed25519_dalek::{Signer, Verifier};

use crate::{ByteRange, ContentHash};

/// Largest list accepted (bytes): a three-hour title at 2 s fragments and eight bitrates is
/// about 4 MB.
pub const MAX_LIST_BYTES: usize = 16 << 20;
/// Most entries accepted in one list.
pub const MAX_ENTRIES: usize = 200_000;
/// Longest URI accepted in an entry.
pub const MAX_URI: usize = 4096;
/// What a list's URL ends with, after the manifest's path (see [`list_url`]).
pub const LIST_SUFFIX: &str = ".hive-integrity";

const MAGIC: &str = "#HIVE-INTEGRITY:1";

/// Which source of trusted hashes an agent uses.
///
/// The default is [`IntegritySource::Signed`] with no key: peers' bytes need a trusted hash and
/// none can come, so every fragment comes from the origin until a key is configured. Only
/// [`IntegritySource::None`] turns the requirement off.
// A configuration value, built once per agent: the keys stay inline rather than boxed.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IntegritySource {
    /// Lists signed by the publisher (fetched beside each manifest through the origin) and/or
    /// by a hash service (pulled from the tracker). A fragment is trusted when a list signed by
    /// either key names it.
    Signed {
        /// The publisher's key: lists are fetched beside manifests ([`list_url`]).
        publisher: Option<PublicKey>,
        /// The hash service's key: lists are pulled from the tracker.
        service: Option<PublicKey>,
    },
    /// No trusted source: every peer is trusted (closed labs only). Peer bytes are checked
    /// against the sender's own hash, which catches corruption but not lies.
    None,
}

impl Default for IntegritySource {
    fn default() -> Self {
        IntegritySource::Signed {
            publisher: None,
            service: None,
        }
    }
}

impl IntegritySource {
    /// Whether peers' bytes need a trusted hash (everything but [`IntegritySource::None`]).
    pub fn requires_trusted_hash(&self) -> bool {
        !matches!(self, IntegritySource::None)
    }

    /// The publisher's key, if lists are fetched beside manifests.
    pub fn publisher(&self) -> Option<&PublicKey> {
        match self {
            IntegritySource::Signed { publisher, .. } => publisher.as_ref(),
            IntegritySource::None => None,
        }
    }

    /// The hash service's key, if lists are pulled from a hash service.
    pub fn service(&self) -> Option<&PublicKey> {
        match self {
            IntegritySource::Signed { service, .. } => service.as_ref(),
            IntegritySource::None => None,
        }
    }

    /// Whether trusted hashes can come at all: a key is configured, or none are needed.
    pub fn can_share(&self) -> bool {
        !self.requires_trusted_hash() || self.publisher().is_some() || self.service().is_some()
    }

    /// A short name for logs and metrics.
    pub fn name(&self) -> &'static str {
        match (self.publisher(), self.service()) {
            _ if !self.requires_trusted_hash() => "none",
            (Some(_), Some(_)) => "publisher+hash-service",
            (Some(_), None) => "publisher",
            (None, Some(_)) => "hash-service",
            (None, None) => "unconfigured",
        }
    }
}

/// An Ed25519 public key that signs lists.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PublicKey(ed25519_dalek::VerifyingKey);

impl PublicKey {
    /// From its 32 bytes; `None` when they are not a valid point.
    pub fn from_bytes(b: &[u8; 32]) -> Option<Self> {
        ed25519_dalek::VerifyingKey::from_bytes(b)
            .ok()
            .map(PublicKey)
    }

    /// From 64 hex digits (as `hive sign --print-key` writes it).
    pub fn from_hex(s: &str) -> Result<Self, ListError> {
        let b = hex32(s.trim()).ok_or(ListError::Malformed("key is not 64 hex digits"))?;
        Self::from_bytes(&b).ok_or(ListError::Malformed("key is not an Ed25519 public key"))
    }

    /// Its 32 bytes.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// 64 hex digits.
    pub fn to_hex(&self) -> String {
        hex(&self.to_bytes())
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", &self.to_hex()[..16])
    }
}

impl std::str::FromStr for PublicKey {
    type Err = ListError;
    fn from_str(s: &str) -> Result<Self, ListError> {
        PublicKey::from_hex(s)
    }
}

/// An Ed25519 signing key of a publisher or a hash service.
pub struct PublisherKey(ed25519_dalek::SigningKey);

impl PublisherKey {
    /// From a 32-byte secret seed.
    pub fn from_seed(seed: [u8; 32]) -> Self {
        PublisherKey(ed25519_dalek::SigningKey::from_bytes(&seed))
    }

    /// From 64 hex digits of seed (a key file's content).
    pub fn from_hex(s: &str) -> Result<Self, ListError> {
        hex32(s.trim())
            .map(Self::from_seed)
            .ok_or(ListError::Malformed("secret key is not 64 hex digits"))
    }

    /// The seed as 64 hex digits (what a key file holds).
    pub fn to_hex(&self) -> String {
        hex(&self.0.to_bytes())
    }

    /// The public half.
    pub fn public(&self) -> PublicKey {
        PublicKey(self.0.verifying_key())
    }
}

impl fmt::Debug for PublisherKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublisherKey(public {:?})", self.public())
    }
}

/// One fragment's trusted hash, by its URI as the manifest lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListEntry {
    /// The fragment's URI, relative to the list's URL (or absolute).
    pub uri: String,
    /// The byte range of the resource, for fragments addressed as ranges.
    pub range: Option<ByteRange>,
    /// BLAKE3 of the fragment's bytes.
    pub hash: ContentHash,
}

/// A list of fragments' hashes, as signed by a publisher or a hash service.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SignedList {
    /// Grows with each list written for one manifest (a live list rolls with the window).
    pub seq: u64,
    /// The fragments.
    pub entries: Vec<ListEntry>,
}

/// Why a list was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ListError {
    /// Larger than [`MAX_LIST_BYTES`] or with more than [`MAX_ENTRIES`] entries.
    #[error("integrity list too large")]
    TooLarge,
    /// Not in the format.
    #[error("malformed integrity list: {0}")]
    Malformed(&'static str),
    /// Signed by another key than the one configured.
    #[error("integrity list signed by another key")]
    WrongKey,
    /// The signature does not match the content.
    #[error("integrity list signature does not verify")]
    BadSignature,
}

impl SignedList {
    /// The list as text, signed with `key`.
    pub fn sign(&self, key: &PublisherKey) -> Vec<u8> {
        let mut s = String::with_capacity(64 + self.entries.len() * 96);
        s.push_str(MAGIC);
        s.push('\n');
        s.push_str("#KEY:");
        s.push_str(&key.public().to_hex());
        s.push('\n');
        s.push_str(&format!("#SEQ:{}\n", self.seq));
        for e in &self.entries {
            s.push_str(&hex(&e.hash.0));
            s.push(' ');
            // A URI never holds whitespace in a playlist; escape what would break the line.
            for c in e.uri.chars() {
                match c {
                    ' ' => s.push_str("%20"),
                    '\n' => s.push_str("%0A"),
                    '\r' => s.push_str("%0D"),
                    '\t' => s.push_str("%09"),
                    c => s.push(c),
                }
            }
            if let Some(r) = e.range {
                s.push_str(&format!(" {}-{}", r.start, r.end().saturating_sub(1)));
            }
            s.push('\n');
        }
        let sig = key.0.sign(s.as_bytes());
        s.push_str("#SIG:");
        s.push_str(&hex(&sig.to_bytes()));
        s.push('\n');
        s.into_bytes()
    }

    /// Parses `bytes` and checks that `key` signed them; nothing is returned otherwise.
    pub fn verify(bytes: &[u8], key: &PublicKey) -> Result<SignedList, ListError> {
        if bytes.len() > MAX_LIST_BYTES {
            return Err(ListError::TooLarge);
        }
        // The signature line is the last one; everything before it is signed.
        let body_end = find_sig(bytes).ok_or(ListError::Malformed("no #SIG line"))?;
        let (body, sig_line) = bytes.split_at(body_end);
        let sig_hex = std::str::from_utf8(sig_line)
            .map_err(|_| ListError::Malformed("signature is not text"))?
            .trim_end()
            .strip_prefix("#SIG:")
            .ok_or(ListError::Malformed("no #SIG line"))?;
        let sig = hex64(sig_hex).ok_or(ListError::Malformed("signature is not 128 hex digits"))?;
        let text =
            std::str::from_utf8(body).map_err(|_| ListError::Malformed("list is not UTF-8"))?;
        let mut lines = text.lines();
        if lines.next() != Some(MAGIC) {
            return Err(ListError::Malformed("not a #HIVE-INTEGRITY:1 list"));
        }
        let signer = lines
            .next()
            .and_then(|l| l.strip_prefix("#KEY:"))
            .ok_or(ListError::Malformed("no #KEY line"))?;
        if hex32(signer) != Some(key.to_bytes()) {
            return Err(ListError::WrongKey);
        }
        key.0
            .verify(body, &ed25519_dalek::Signature::from_bytes(&sig))
            .map_err(|_| ListError::BadSignature)?;
        let seq = lines
            .next()
            .and_then(|l| l.strip_prefix("#SEQ:"))
            .and_then(|v| v.parse::<u64>().ok())
            .ok_or(ListError::Malformed("no #SEQ line"))?;
        let mut entries = Vec::new();
        for line in lines {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if entries.len() >= MAX_ENTRIES {
                return Err(ListError::TooLarge);
            }
            entries.push(parse_entry(line)?);
        }
        Ok(SignedList { seq, entries })
    }
}

fn parse_entry(line: &str) -> Result<ListEntry, ListError> {
    let mut parts = line.split(' ');
    let hash = parts
        .next()
        .and_then(hex32)
        .ok_or(ListError::Malformed("entry hash is not 64 hex digits"))?;
    let uri = parts
        .next()
        .filter(|u| !u.is_empty() && u.len() <= MAX_URI)
        .ok_or(ListError::Malformed("entry has no URI, or one too long"))?;
    let range = match parts.next() {
        None => None,
        Some(r) => {
            let (a, b) = r
                .split_once('-')
                .ok_or(ListError::Malformed("entry range is not START-END"))?;
            let (a, b) = (
                a.parse::<u64>()
                    .map_err(|_| ListError::Malformed("entry range start"))?,
                b.parse::<u64>()
                    .map_err(|_| ListError::Malformed("entry range end"))?,
            );
            if b < a || b == u64::MAX {
                return Err(ListError::Malformed("entry range ends before it starts"));
            }
            Some(ByteRange {
                start: a,
                len: b - a + 1,
            })
        }
    };
    if parts.next().is_some() {
        return Err(ListError::Malformed("entry has extra fields"));
    }
    let uri = uri
        .replace("%20", " ")
        .replace("%0A", "\n")
        .replace("%0D", "\r")
        .replace("%09", "\t");
    Ok(ListEntry {
        uri,
        range,
        hash: ContentHash(hash),
    })
}

/// Where the `#SIG:` line starts: the last line of the text.
fn find_sig(bytes: &[u8]) -> Option<usize> {
    let trimmed = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    let start = trimmed
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    trimmed[start..].starts_with(b"#SIG:").then_some(start)
}

/// The URL of the list for the manifest at `manifest_url`: its path with [`LIST_SUFFIX`]
/// appended, the query kept (`/live/index.m3u8?t=1` → `/live/index.m3u8.hive-integrity?t=1`).
pub fn list_url(manifest_url: &str) -> String {
    let cut = manifest_url.find(['?', '#']).unwrap_or(manifest_url.len());
    let (path, rest) = manifest_url.split_at(cut);
    let rest = rest.split('#').next().unwrap_or("");
    format!("{path}{LIST_SUFFIX}{rest}")
}

fn hex(b: &[u8]) -> String {
    const D: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        s.push(D[(x >> 4) as usize] as char);
        s.push(D[(x & 15) as usize] as char);
    }
    s
}

fn hex_into(s: &str, out: &mut [u8]) -> Option<()> {
    let b = s.as_bytes();
    if b.len() != out.len() * 2 {
        return None;
    }
    let nib = |c: u8| -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    };
    for (i, o) in out.iter_mut().enumerate() {
        *o = (nib(b[2 * i])? << 4) | nib(b[2 * i + 1])?;
    }
    Some(())
}

fn hex32(s: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    hex_into(s, &mut out).map(|_| out)
}

fn hex64(s: &str) -> Option<[u8; 64]> {
    let mut out = [0u8; 64];
    hex_into(s, &mut out).map(|_| out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> SignedList {
        SignedList {
            seq: 9,
            entries: vec![
                ListEntry {
                    uri: "a b.ts".into(),
                    range: None,
                    hash: ContentHash::of(b"a"),
                },
                ListEntry {
                    uri: "https://cdn.example/v.mp4".into(),
                    range: Some(ByteRange {
                        start: 100,
                        len: 50,
                    }),
                    hash: ContentHash::of(b"b"),
                },
            ],
        }
    }

    #[test]
    fn round_trip_and_refusals() {
        let k = PublisherKey::from_seed([1; 32]);
        let text = sample().sign(&k);
        assert_eq!(SignedList::verify(&text, &k.public()), Ok(sample()));
        let other = PublisherKey::from_seed([2; 32]);
        assert_eq!(
            SignedList::verify(&text, &other.public()),
            Err(ListError::WrongKey)
        );
        // Every single-byte change before the signature is refused.
        for i in 0..text.len() - 140 {
            let mut bad = text.clone();
            bad[i] ^= 0x20;
            assert!(SignedList::verify(&bad, &k.public()).is_err(), "byte {i}");
        }
        // An entry appended after signing is refused.
        let mut longer = text.clone();
        let sig_at = find_sig(&text).unwrap();
        longer.splice(sig_at..sig_at, b"00 x.ts\n".iter().copied());
        assert!(SignedList::verify(&longer, &k.public()).is_err());
        assert_eq!(
            SignedList::verify(b"", &k.public()),
            Err(ListError::Malformed("no #SIG line"))
        );
        assert_eq!(
            SignedList::verify(&vec![b'a'; MAX_LIST_BYTES + 1], &k.public()),
            Err(ListError::TooLarge)
        );
    }

    #[test]
    fn keys_round_trip_as_hex() {
        let k = PublisherKey::from_seed([3; 32]);
        let back = PublisherKey::from_hex(&k.to_hex()).unwrap();
        assert_eq!(back.public(), k.public());
        assert_eq!(PublicKey::from_hex(&k.public().to_hex()), Ok(k.public()));
        assert!(PublicKey::from_hex("zz").is_err());
    }

    #[test]
    fn list_urls_keep_the_query() {
        assert_eq!(
            list_url("http://o/live/index.m3u8?t=1#x"),
            "http://o/live/index.m3u8.hive-integrity?t=1"
        );
        assert_eq!(list_url("http://o/a.mpd"), "http://o/a.mpd.hive-integrity");
    }

    #[test]
    fn garbage_never_panics() {
        let k = PublisherKey::from_seed([4; 32]);
        for s in [
            &b"#SIG:"[..],
            b"\n#SIG:00",
            b"#HIVE-INTEGRITY:1\n#SIG:zz\n",
            b"\xff\xfe\n#SIG:",
        ] {
            assert!(SignedList::verify(s, &k.public()).is_err());
        }
    }
}
