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
//! ## Key update (RFC 9001 §6)
//!
//! A key may protect only so many packets: RFC 9001 §6.6, "For AEAD_AES_128_GCM and
//! AEAD_AES_256_GCM, the confidentiality limit is 2^23 encrypted packets" (its integrity limit,
//! failed decryptions across all keys, is 2^52). Past [`crate::Config::key_update_interval`]
//! packets under one key a sender moves both directions to the next generation, as QUIC's
//! "quic ku":
//!
//! ```text
//! secret_0   = HKDF-Expand(prk, "hive/2 ku secret", 32)
//! secret_n+1 = HKDF-Expand(PRK = secret_n, "hive/2 ku", 32)
//! key_n, iv_n (n >= 1) = HKDF-Expand(PRK = secret_n, "hive/2 short key" / "hive/2 short iv")
//! ```
//!
//! (generation 0 keeps version 2's key and IV, so peers that never update interoperate). The
//! short header's key phase bit (type `0x06` / `0x07`) is generation mod 2 and is authenticated.
//! A receiver that sees the other phase on a packet numbered above the first of the current
//! phase tries the next generation's key (precomputed: no timing signal); if it opens, it updates
//! its own keys too. A packet of the previous phase (numbered below the first of the current
//! one) opens with the previous key, kept for three PTOs after the first packet under the new
//! key arrives (RFC 9001 §6.5: "An endpoint SHOULD retain old read keys for no more than three
//! times the current PTO"); later, it is dropped. An endpoint starts an update only once a packet
//! of the current phase was acknowledged (§6.1), and only with a peer that said in its handshake
//! parameters it performs them.
//!
//! Packet numbers never repeat in a direction, so neither do nonces. AES-GCM runs on
//! `aws-lc-rs` (AES-NI / VAES + carry-less multiply assembly), several times faster than the
//! portable ChaCha20-Poly1305 on the x86 machines agents run on; the split keys themselves are
//! never used with any other cipher.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, Tag, UnboundKey};
use aws_lc_rs::hkdf::{HKDF_SHA256, KeyType, Prk, Salt};
use hive_core::time::Instant;
use snow::HandshakeState;

const KEY_LABEL: &[u8] = b"hive/2 short key";
const IV_LABEL: &[u8] = b"hive/2 short iv";
const SECRET_LABEL: &[u8] = b"hive/2 ku secret";
const KU_LABEL: &[u8] = b"hive/2 ku";

type Secret = [u8; 32];

fn expand(prk: &Prk, label: &[u8], out: &mut [u8]) -> Option<()> {
    prk.expand(&[label], Len(out.len())).ok()?.fill(out).ok()
}

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
    /// Generation 0 from the Noise split key, and its update secret.
    fn derive(split: &[u8], hash: &[u8]) -> Option<(Self, Secret)> {
        let prk = Salt::new(HKDF_SHA256, hash).extract(split);
        let mut secret = [0u8; 32];
        expand(&prk, SECRET_LABEL, &mut secret)?;
        Some((Self::from_prk(&prk)?, secret))
    }

    /// The next generation after `secret`: its key and its secret.
    fn next(secret: &Secret) -> Option<(Self, Secret)> {
        let mut next = [0u8; 32];
        expand(
            &Prk::new_less_safe(HKDF_SHA256, secret),
            KU_LABEL,
            &mut next,
        )?;
        let key = Self::from_prk(&Prk::new_less_safe(HKDF_SHA256, &next))?;
        Some((key, next))
    }

    fn from_prk(prk: &Prk) -> Option<Self> {
        let mut key = [0u8; 32];
        expand(prk, KEY_LABEL, &mut key)?;
        let mut iv = [0u8; NONCE_LEN];
        expand(prk, IV_LABEL, &mut iv)?;
        let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &key).ok()?);
        Some(DirectionKey { key, iv })
    }

    fn open(&self, pn: u64, header: &[u8], in_out: &mut [u8]) -> Option<usize> {
        self.key
            .open_in_place(self.nonce(pn), Aad::from(header), in_out)
            .ok()
            .map(|p| p.len())
    }

    fn nonce(&self, pn: u64) -> Nonce {
        let mut n = self.iv;
        for (b, p) in n[NONCE_LEN - 8..].iter_mut().zip(pn.to_be_bytes()) {
            *b ^= p;
        }
        Nonce::assume_unique_for_key(n)
    }
}

/// Why a packet did not open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OpenError {
    /// It did not authenticate (counts towards the integrity limit).
    Auth,
    /// It is of the previous key phase, whose key was discarded.
    OldKey,
}

/// Both directions' packet keys of an open connection, with their key-update state.
pub(crate) struct PacketKeys {
    seal: DirectionKey,
    seal_secret: Secret,
    open: DirectionKey,
    open_secret: Secret,
    /// The next generation's receive key, precomputed.
    open_next: (DirectionKey, Secret),
    /// The previous generation's receive key, and when it goes (set once a packet under the
    /// current key arrived).
    open_prev: Option<(DirectionKey, Option<Instant>)>,
    /// Key generation (the phase bit is its parity); the number of updates so far.
    generation: u64,
    /// Packets sealed under the current key.
    sealed: u64,
    /// The first packet number sealed under the current key.
    first_sealed: u64,
    /// The first packet number opened under the current key.
    first_opened: Option<u64>,
    /// A packet sealed under the current key was acknowledged.
    confirmed: bool,
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
        let (seal, seal_secret) = DirectionKey::derive(&seal, &hash)?;
        let (open, open_secret) = DirectionKey::derive(&open, &hash)?;
        Some(PacketKeys {
            open_next: DirectionKey::next(&open_secret)?,
            seal,
            seal_secret,
            open,
            open_secret,
            open_prev: None,
            generation: 0,
            sealed: 0,
            first_sealed: 0,
            first_opened: None,
            confirmed: false,
        })
    }

    /// The key phase bit of packets sealed now.
    pub(crate) fn phase(&self) -> u8 {
        (self.generation & 1) as u8
    }

    /// Key updates so far.
    pub(crate) fn generation(&self) -> u64 {
        self.generation
    }

    /// Packets sealed under the current key.
    pub(crate) fn sealed_under_key(&self) -> u64 {
        self.sealed
    }

    /// Whether a key update may start (a packet under the current key was acknowledged).
    pub(crate) fn can_update(&self) -> bool {
        self.confirmed
    }

    /// Packet `largest` was acknowledged.
    pub(crate) fn on_ack(&mut self, largest: u64) {
        if largest >= self.first_sealed {
            self.confirmed = true;
        }
    }

    /// Moves both directions to the next generation; `next_pn` is the first packet number to
    /// be sealed under it. `opened`: the packet (of the new phase) that made us update, if the
    /// peer started it.
    pub(crate) fn update(
        &mut self,
        now: Instant,
        next_pn: u64,
        opened: Option<u64>,
        grace: hive_core::time::Duration,
    ) -> Option<()> {
        let (seal, seal_secret) = DirectionKey::next(&self.seal_secret)?;
        let after = DirectionKey::next(&self.open_next.1)?;
        let (open, open_secret) = std::mem::replace(&mut self.open_next, after);
        let old = std::mem::replace(&mut self.open, open);
        self.open_secret = open_secret;
        self.open_prev = Some((old, opened.map(|_| now + grace)));
        self.seal = seal;
        self.seal_secret = seal_secret;
        self.generation += 1;
        self.sealed = 0;
        self.first_sealed = next_pn;
        self.first_opened = opened;
        self.confirmed = false;
        Some(())
    }

    /// Encrypts `in_out` in place for packet `pn` with `header` authenticated; returns the tag.
    pub(crate) fn seal(&mut self, pn: u64, header: &[u8], in_out: &mut [u8]) -> Option<Tag> {
        self.sealed += 1;
        self.seal
            .key
            .seal_in_place_separate_tag(self.seal.nonce(pn), Aad::from(header), in_out)
            .ok()
    }

    /// Decrypts `in_out` (ciphertext ‖ tag) of packet `pn` with key phase `phase` in place;
    /// returns the plaintext length. A packet of the next phase that opens updates the keys
    /// (`next_pn`: our next packet number; `grace`: how long the old receive key stays).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn open(
        &mut self,
        now: Instant,
        pn: u64,
        phase: u8,
        header: &[u8],
        in_out: &mut [u8],
        next_pn: u64,
        grace: hive_core::time::Duration,
    ) -> Result<usize, OpenError> {
        if let Some((_, Some(t))) = &self.open_prev
            && now >= *t
        {
            self.open_prev = None;
        }
        if phase == self.phase() {
            let n = self.open.open(pn, header, in_out).ok_or(OpenError::Auth)?;
            if self.first_opened.is_none_or(|f| pn < f) {
                self.first_opened = Some(pn);
            }
            if let Some((_, at @ None)) = &mut self.open_prev {
                *at = Some(now + grace);
            }
            return Ok(n);
        }
        let older = self.first_opened.is_none_or(|f| pn < f);
        if older && self.generation > 0 {
            let Some((prev, _)) = &self.open_prev else {
                return Err(OpenError::OldKey);
            };
            return prev.open(pn, header, in_out).ok_or(OpenError::Auth);
        }
        // The peer moved to the next generation.
        let n = self
            .open_next
            .0
            .open(pn, header, in_out)
            .ok_or(OpenError::Auth)?;
        self.update(now, next_pn, Some(pn), grace)
            .ok_or(OpenError::Auth)?;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handshake::{Keypair, initiator, responder};

    use hive_core::time::Duration;

    const G: Duration = Duration::from_millis(300);

    fn open(k: &mut PacketKeys, now: u64, pn: u64, header: &[u8], buf: &mut [u8]) -> Option<usize> {
        k.open(
            Instant::from_millis(now),
            pn,
            header[0] & 1,
            header,
            buf,
            0,
            G,
        )
        .ok()
    }

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
        let (mut i, mut r) = pair();
        let header = [6u8; 17];
        let mut buf = b"hello, responder".to_vec();
        let tag = i.seal(7, &header, &mut buf).expect("seal");
        assert_ne!(&buf[..], b"hello, responder");
        buf.extend_from_slice(tag.as_ref());
        let sealed = buf.clone();
        assert_eq!(open(&mut r, 0, 7, &header, &mut buf), Some(16));
        assert_eq!(&buf[..16], b"hello, responder");
        // Wrong packet number, wrong header, wrong direction, flipped bit: rejected.
        assert_eq!(open(&mut r, 0, 8, &header, &mut sealed.clone()), None);
        assert_eq!(open(&mut r, 0, 7, &[6u8; 16], &mut sealed.clone()), None);
        assert_eq!(open(&mut i, 0, 7, &header, &mut sealed.clone()), None);
        let mut bad = sealed.clone();
        bad[3] ^= 1;
        assert_eq!(open(&mut r, 0, 7, &header, &mut bad), None);
        // And the other way.
        let mut back = b"hi".to_vec();
        let tag = r.seal(0, &header, &mut back).expect("seal");
        back.extend_from_slice(tag.as_ref());
        assert_eq!(open(&mut i, 0, 0, &header, &mut back), Some(2));
    }

    fn sealed(k: &mut PacketKeys, pn: u64) -> ([u8; 17], Vec<u8>) {
        let mut header = [6u8; 17];
        header[0] = 6 | k.phase();
        header[9..].copy_from_slice(&pn.to_be_bytes());
        let mut buf = pn.to_be_bytes().to_vec();
        let tag = k.seal(pn, &header, &mut buf).expect("seal");
        buf.extend_from_slice(tag.as_ref());
        (header, buf)
    }

    #[test]
    fn a_key_update_is_followed_and_the_old_key_goes_after_the_grace_period() {
        let (mut i, mut r) = pair();
        let (h, mut b) = sealed(&mut i, 0);
        assert!(open(&mut r, 0, 0, &h, &mut b).is_some());
        let late = sealed(&mut i, 1);
        let later = sealed(&mut i, 2);
        i.on_ack(0);
        assert!(i.can_update());
        i.update(Instant::from_millis(1), 3, None, G)
            .expect("update");
        assert_eq!(i.phase(), 1);
        let (h, mut b) = sealed(&mut i, 3);
        // The responder follows on the first packet of the new phase, and updates its own keys.
        assert!(open(&mut r, 2, 3, &h, &mut b).is_some());
        assert_eq!((r.generation(), r.phase()), (1, 1));
        // A reordered packet of the old phase still opens within the grace period...
        let (h, mut b) = late;
        assert!(open(&mut r, 100, 1, &h, &mut b).is_some());
        // ... and is dropped after it.
        let (h, mut b) = later;
        let got = r.open(Instant::from_millis(400), 2, h[0] & 1, &h, &mut b, 0, G);
        assert_eq!(got, Err(OpenError::OldKey));
        // The dialler reads the responder's new-phase packets.
        let (h, mut b) = sealed(&mut r, 0);
        assert!(open(&mut i, 400, 0, &h, &mut b).is_some());
        // Two more generations.
        for g in 2..4 {
            r.on_ack(u64::MAX);
            r.update(Instant::from_millis(500), g * 10, None, G)
                .expect("update");
            let (h, mut b) = sealed(&mut r, g * 10);
            assert!(open(&mut i, 500, g * 10, &h, &mut b).is_some());
            assert_eq!(i.generation(), g);
        }
    }

    #[test]
    fn an_unfinished_handshake_gives_no_keys() {
        let a = Keypair::generate().expect("key");
        let mut i = initiator(&a).expect("init");
        assert!(PacketKeys::from_handshake(&mut i, true).is_none());
    }
}
