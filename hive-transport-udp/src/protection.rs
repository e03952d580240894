//! Packet protection of SHORT packets: AES-256-GCM keyed from the Noise handshake.
//!
//! The Noise `XX` handshake (see [`crate::handshake`]) ends in `Split()`, which gives two
//! 32-byte keys, one per direction (initiator → responder first). Instead of snow's software
//! ChaCha20-Poly1305 transport state, each direction's key is expanded with HKDF-SHA256
//! (RFC 5869) — salt = the Noise handshake hash, IKM = the split key — into an AES-256-GCM key
//! and a 12-byte IV, the way TLS 1.3 and QUIC derive packet keys from a traffic secret:
//!
//! ```text
//! prk   = HKDF-Extract(salt = handshake_hash, ikm = split_key)
//! key   = HKDF-Expand(prk, "hive/2 short key", 32)
//! iv    = HKDF-Expand(prk, "hive/2 short iv", 12)
//! nonce = iv XOR (0u32 ‖ pn as u64 big-endian)
//! SHORT = header ‖ AES-256-GCM(key, nonce, aad = header, plaintext) (16-byte tag)
//! ```
//!
//! Packet numbers never repeat in a direction, so neither do nonces. AES-GCM runs on
//! `aws-lc-rs` (AES-NI / VAES + carry-less multiply assembly), several times faster than the
//! portable ChaCha20-Poly1305 on the x86 machines agents run on; the split keys themselves are
//! never used with any other cipher.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, Tag, UnboundKey};
use aws_lc_rs::hkdf::{HKDF_SHA256, KeyType, Salt};
use snow::HandshakeState;

const KEY_LABEL: &[u8] = b"hive/2 short key";
const IV_LABEL: &[u8] = b"hive/2 short iv";

/// The keys of one direction.
struct DirectionKey {
    key: LessSafeKey,
    iv: [u8; NONCE_LEN],
}

struct Len(usize);

impl KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

impl DirectionKey {
    fn derive(secret: &[u8], hash: &[u8]) -> Option<Self> {
        let prk = Salt::new(HKDF_SHA256, hash).extract(secret);
        let mut key = [0u8; 32];
        prk.expand(&[KEY_LABEL], Len(32))
            .ok()?
            .fill(&mut key)
            .ok()?;
        let mut iv = [0u8; NONCE_LEN];
        prk.expand(&[IV_LABEL], Len(NONCE_LEN))
            .ok()?
            .fill(&mut iv)
            .ok()?;
        let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &key).ok()?);
        Some(DirectionKey { key, iv })
    }

    fn nonce(&self, pn: u64) -> Nonce {
        let mut n = self.iv;
        for (b, p) in n[NONCE_LEN - 8..].iter_mut().zip(pn.to_be_bytes()) {
            *b ^= p;
        }
        Nonce::assume_unique_for_key(n)
    }
}

/// Both directions' packet keys of an open connection.
pub(crate) struct PacketKeys {
    seal: DirectionKey,
    open: DirectionKey,
}

impl PacketKeys {
    /// Keys from a finished handshake; `initiator` is whether this side dialled.
    pub(crate) fn from_handshake(hs: &mut HandshakeState, initiator: bool) -> Option<Self> {
        if !hs.is_handshake_finished() {
            return None;
        }
        let hash = hs.get_handshake_hash().to_vec();
        let (i2r, r2i) = hs.dangerously_get_raw_split();
        let (seal, open) = if initiator { (i2r, r2i) } else { (r2i, i2r) };
        Some(PacketKeys {
            seal: DirectionKey::derive(&seal, &hash)?,
            open: DirectionKey::derive(&open, &hash)?,
        })
    }

    /// Encrypts `in_out` in place for packet `pn` with `header` authenticated; returns the tag.
    pub(crate) fn seal(&self, pn: u64, header: &[u8], in_out: &mut [u8]) -> Option<Tag> {
        self.seal
            .key
            .seal_in_place_separate_tag(self.seal.nonce(pn), Aad::from(header), in_out)
            .ok()
    }

    /// Decrypts `in_out` (ciphertext ‖ tag) in place; returns the plaintext length, or `None`
    /// when it does not authenticate.
    pub(crate) fn open(&self, pn: u64, header: &[u8], in_out: &mut [u8]) -> Option<usize> {
        self.open
            .key
            .open_in_place(self.open.nonce(pn), Aad::from(header), in_out)
            .ok()
            .map(|p| p.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handshake::{Keypair, initiator, responder};

    fn pair() -> (PacketKeys, PacketKeys) {
        let (a, b) = (
            Keypair::generate().expect("key"),
            Keypair::generate().expect("key"),
        );
        let mut i = initiator(&a).expect("init");
        let mut r = responder(&b).expect("resp");
        let (mut m, mut p) = ([0u8; 1024], [0u8; 1024]);
        let n = i.write_message(&[], &mut m).expect("m1");
        r.read_message(&m[..n], &mut p).expect("r1");
        let n = r.write_message(&[], &mut m).expect("m2");
        i.read_message(&m[..n], &mut p).expect("r2");
        let n = i.write_message(&[], &mut m).expect("m3");
        r.read_message(&m[..n], &mut p).expect("r3");
        (
            PacketKeys::from_handshake(&mut i, true).expect("keys"),
            PacketKeys::from_handshake(&mut r, false).expect("keys"),
        )
    }

    #[test]
    fn each_direction_opens_what_the_other_seals_and_nothing_else() {
        let (i, r) = pair();
        let header = [6u8; 17];
        let mut buf = b"hello, responder".to_vec();
        let tag = i.seal(7, &header, &mut buf).expect("seal");
        assert_ne!(&buf[..], b"hello, responder");
        buf.extend_from_slice(tag.as_ref());
        let sealed = buf.clone();
        assert_eq!(r.open(7, &header, &mut buf), Some(16));
        assert_eq!(&buf[..16], b"hello, responder");
        // Wrong packet number, wrong header, wrong direction, flipped bit: rejected.
        assert_eq!(r.open(8, &header, &mut sealed.clone()), None);
        assert_eq!(r.open(7, &[7u8; 17], &mut sealed.clone()), None);
        assert_eq!(i.open(7, &header, &mut sealed.clone()), None);
        let mut bad = sealed.clone();
        bad[3] ^= 1;
        assert_eq!(r.open(7, &header, &mut bad), None);
        // And the other way.
        let mut back = b"hi".to_vec();
        let tag = r.seal(0, &header, &mut back).expect("seal");
        back.extend_from_slice(tag.as_ref());
        assert_eq!(i.open(0, &header, &mut back), Some(2));
    }

    #[test]
    fn an_unfinished_handshake_gives_no_keys() {
        let a = Keypair::generate().expect("key");
        let mut i = initiator(&a).expect("init");
        assert!(PacketKeys::from_handshake(&mut i, true).is_none());
    }
}
