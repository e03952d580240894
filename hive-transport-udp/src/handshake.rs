//! The Noise handshake and the stateless retry cookie.
//!
//! Pattern `Noise_XX_25519_ChaChaPoly_BLAKE2s` (via `snow`): the dialler knows only the
//! responder's [`PeerId`] — a hash of its X25519 static key, which `IK` would need in full — so
//! both static keys travel encrypted inside the handshake, and the dialler checks the one it
//! receives against the id it dialled before sending its own. Ephemeral-ephemeral DH gives
//! forward secrecy; the static-ephemeral DHs (`es`, `se`) prove each side holds its key.
//!
//! ```text
//! INITIAL  -> e                      (padded to 1200 bytes)
//! RESPONSE <- e, ee, s, es + params  (dialler checks PeerId(s) == dialled id)
//! FINISH   -> s, se + params         (dialler may send data right after: 1 RTT)
//! ```
//! With a cookie demanded: INITIAL -> RETRY(cookie) -> INITIAL(cookie) -> ...: 2 RTT.
//!
//! The handshake's `Split()` keys then protect SHORT packets through HKDF and AES-256-GCM (see
//! `protection.rs`); snow's own transport state is not used.

use std::net::SocketAddr;

use hive_core::ids::{KeyKind, PeerId};
use snow::{Builder, HandshakeState};

use crate::wire::VERSION;

/// The Noise protocol name.
pub const NOISE_PARAMS: &str = "Noise_XX_25519_ChaChaPoly_BLAKE2s";

/// An X25519 static key pair: the agent's identity on this transport.
#[derive(Clone)]
pub struct Keypair {
    private: Vec<u8>,
    public: Vec<u8>,
}

impl std::fmt::Debug for Keypair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keypair")
            .field("peer_id", &self.peer_id())
            .finish_non_exhaustive()
    }
}

impl Keypair {
    /// A fresh random key pair (from the operating system's generator).
    pub fn generate() -> Result<Self, snow::Error> {
        let kp = builder()?.generate_keypair()?;
        Ok(Keypair {
            private: kp.private,
            public: kp.public,
        })
    }

    /// The public key.
    pub fn public(&self) -> &[u8] {
        &self.public
    }

    /// The [`PeerId`] this key proves.
    pub fn peer_id(&self) -> PeerId {
        peer_id(&self.public)
    }
}

/// The [`PeerId`] of an X25519 public key.
pub fn peer_id(public: &[u8]) -> PeerId {
    PeerId::from_public_key(KeyKind::X25519, public)
}

fn builder() -> Result<Builder<'static>, snow::Error> {
    let params = NOISE_PARAMS.parse()?;
    Ok(Builder::new(params))
}

fn prologue() -> [u8; 8] {
    let mut p = *b"hive\0\0\0\0";
    p[4..].copy_from_slice(&VERSION.to_be_bytes());
    p
}

/// A handshake state for the dialler.
pub(crate) fn initiator(key: &Keypair) -> Result<HandshakeState, snow::Error> {
    let prologue = prologue();
    builder()?
        .local_private_key(&key.private)?
        .prologue(&prologue)?
        .build_initiator()
}

/// A handshake state for the acceptor.
pub(crate) fn responder(key: &Keypair) -> Result<HandshakeState, snow::Error> {
    let prologue = prologue();
    builder()?
        .local_private_key(&key.private)?
        .prologue(&prologue)?
        .build_responder()
}

/// Transport parameters carried (encrypted) in RESPONSE and FINISH.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Params {
    pub(crate) max_message: u32,
    pub(crate) recv_window: u64,
}

impl Params {
    pub(crate) fn encode(&self) -> [u8; 12] {
        let mut b = [0u8; 12];
        b[..4].copy_from_slice(&self.max_message.to_be_bytes());
        b[4..].copy_from_slice(&self.recv_window.to_be_bytes());
        b
    }
    pub(crate) fn decode(b: &[u8]) -> Option<Params> {
        let a: [u8; 4] = b.get(..4)?.try_into().ok()?;
        let w: [u8; 8] = b.get(4..12)?.try_into().ok()?;
        Some(Params {
            max_message: u32::from_be_bytes(a),
            recv_window: u64::from_be_bytes(w),
        })
    }
}

/// How long a retry cookie stays valid.
pub(crate) const COOKIE_LIFETIME_SECS: u64 = 30;

/// The server's cookie secret: cookie = time ‖ BLAKE3-keyed-MAC(time ‖ address ‖ client cid).
/// Stateless: the server keeps nothing per unverified client.
#[derive(Clone)]
pub(crate) struct CookieKey([u8; 32]);

impl CookieKey {
    pub(crate) fn new(secret: [u8; 32]) -> Self {
        CookieKey(secret)
    }

    fn mac(&self, secs: u64, addr: SocketAddr, cid: u64) -> blake3::Hash {
        let mut h = blake3::Hasher::new_keyed(&self.0);
        h.update(&secs.to_be_bytes());
        match addr {
            SocketAddr::V4(a) => h.update(&a.ip().octets()),
            SocketAddr::V6(a) => h.update(&a.ip().octets()),
        };
        h.update(&addr.port().to_be_bytes());
        h.update(&cid.to_be_bytes());
        h.finalize()
    }

    pub(crate) fn make(&self, now_secs: u64, addr: SocketAddr, cid: u64) -> Vec<u8> {
        let mut c = now_secs.to_be_bytes().to_vec();
        c.extend_from_slice(self.mac(now_secs, addr, cid).as_bytes());
        c
    }

    /// Whether `cookie` was made by this key for `addr` and `cid` recently (constant-time MAC
    /// comparison).
    pub(crate) fn check(&self, cookie: &[u8], now_secs: u64, addr: SocketAddr, cid: u64) -> bool {
        if cookie.len() != 40 {
            return false;
        }
        let mut t = [0u8; 8];
        t.copy_from_slice(&cookie[..8]);
        let secs = u64::from_be_bytes(t);
        if secs > now_secs || now_secs - secs > COOKIE_LIFETIME_SECS {
            return false;
        }
        let mut m = [0u8; 32];
        m.copy_from_slice(&cookie[8..]);
        self.mac(secs, addr, cid) == blake3::Hash::from(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xx_proves_both_static_keys() {
        let (a, b) = (
            Keypair::generate().expect("key"),
            Keypair::generate().expect("key"),
        );
        let mut i = initiator(&a).expect("init");
        let mut r = responder(&b).expect("resp");
        let (mut m, mut p) = ([0u8; 1024], [0u8; 1024]);
        let n = i.write_message(&[], &mut m).expect("m1");
        r.read_message(&m[..n], &mut p).expect("r1");
        let n = r.write_message(b"pp", &mut m).expect("m2");
        i.read_message(&m[..n], &mut p).expect("r2");
        assert_eq!(i.get_remote_static().map(peer_id), Some(b.peer_id()));
        let n = i.write_message(b"qq", &mut m).expect("m3");
        r.read_message(&m[..n], &mut p).expect("r3");
        assert_eq!(r.get_remote_static().map(peer_id), Some(a.peer_id()));
    }

    #[test]
    fn cookie_binds_address_cid_and_time() {
        let k = CookieKey::new([7; 32]);
        let addr: SocketAddr = "127.0.0.1:4000".parse().expect("addr");
        let c = k.make(100, addr, 9);
        assert!(k.check(&c, 105, addr, 9));
        assert!(!k.check(&c, 105, addr, 10));
        assert!(!k.check(&c, 105, "127.0.0.1:4001".parse().expect("addr"), 9));
        assert!(!k.check(&c, 100 + COOKIE_LIFETIME_SECS + 1, addr, 9));
        let mut bad = c.clone();
        bad[20] ^= 1;
        assert!(!k.check(&bad, 105, addr, 9));
    }
}
