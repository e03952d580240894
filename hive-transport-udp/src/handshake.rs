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
//! RESPONSE <- e, ee, s, es + params  (dialler checks PeerId(s) == dialled id, and its token)
//! FINISH   -> s, se + params         (dialler may send data right after: 1 RTT)
//! params   = max_message u32 | recv_window u64 | flags u8 | token_len u16 | token
//! ```
//!
//! Version-2 peers before the admission token sent only the first 12 bytes of `params` (and read
//! only those): the rest is optional on the wire, absent = no flags, empty token.
//!
//! ## Admission
//!
//! Each side may carry an admission token (e.g. a registrar-signed token) in its encrypted
//! handshake payload and check the other's with [`Admission::check`] before the connection is
//! surfaced: the dialler checks the responder's token in RESPONSE before it sends FINISH (so a
//! refused responder never learns the dialler's static key), and the responder checks the
//! dialler's in FINISH before `accept` sees it; a refused peer's handshake is aborted and
//! counted ([`crate::EndpointStats::admission_refused`]). The responder's token travels in the
//! second message, encrypted but before the dialler is authenticated: any dialler that knows the
//! responder's address can read it, as it can read the responder's static key (Noise `XX`
//! identity hiding covers the dialler only).
//! The token can change while the endpoint runs (a token obtained after `bind`, or renewed
//! before it expires): [`crate::Endpoint::set_admission_token`],
//! [`crate::UdpTransport::set_admission_token`]; handshakes started afterwards carry the new one.
//! The check runs once, in the handshake: re-checking a long-lived connection's token (at its
//! expiry) is the application's part.
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

/// Largest admission token carried in a handshake message, bytes; the admission type is
/// hive-core's, shared with the QUIC transport.
pub use hive_core::transport::{Admission, AdmissionCheck, MAX_ADMISSION_TOKEN};

/// Room for one handshake message (ephemeral and static keys, tags, parameters, token).
pub(crate) const MAX_NOISE_MESSAGE: usize = 2048;

/// `flags` bit: this side accepts and performs key updates (SHORT key phase bit).
pub(crate) const FLAG_KEY_UPDATE: u8 = 1;

/// Transport parameters carried (encrypted) in RESPONSE and FINISH.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Params<'a> {
    pub(crate) max_message: u32,
    pub(crate) recv_window: u64,
    pub(crate) flags: u8,
    pub(crate) token: &'a [u8],
}

impl<'a> Params<'a> {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let token = &self.token[..self.token.len().min(MAX_ADMISSION_TOKEN)];
        let mut b = Vec::with_capacity(15 + token.len());
        b.extend_from_slice(&self.max_message.to_be_bytes());
        b.extend_from_slice(&self.recv_window.to_be_bytes());
        b.push(self.flags);
        b.extend_from_slice(&(token.len() as u16).to_be_bytes());
        b.extend_from_slice(token);
        b
    }

    /// Decodes parameters; the flags and the token are optional (older peers send 12 bytes).
    pub(crate) fn decode(b: &'a [u8]) -> Option<Params<'a>> {
        let a: [u8; 4] = b.get(..4)?.try_into().ok()?;
        let w: [u8; 8] = b.get(4..12)?.try_into().ok()?;
        let flags = b.get(12).copied().unwrap_or(0);
        let token = match b.get(13..15) {
            None => &[][..],
            Some(l) => {
                let n = u16::from_be_bytes([l[0], l[1]]) as usize;
                if n > MAX_ADMISSION_TOKEN {
                    return None;
                }
                b.get(15..15 + n)?
            }
        };
        Some(Params {
            max_message: u32::from_be_bytes(a),
            recv_window: u64::from_be_bytes(w),
            flags,
            token,
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
    fn params_round_trip_and_old_peers_parse() {
        let p = Params {
            max_message: 7,
            recv_window: 1 << 40,
            flags: FLAG_KEY_UPDATE,
            token: b"registrar-token",
        };
        let b = p.encode();
        assert_eq!(Params::decode(&b), Some(p.clone()));
        // A version-2 peer from before tokens sends 12 bytes.
        let old = Params::decode(&b[..12]).expect("old");
        assert_eq!((old.flags, old.token), (0, &[][..]));
        // Truncated token, over-long token: refused.
        assert_eq!(Params::decode(&b[..b.len() - 1]), None);
        let mut long = b[..13].to_vec();
        long.extend_from_slice(&2000u16.to_be_bytes());
        long.resize(long.len() + 2000, 0);
        assert_eq!(Params::decode(&long), None);
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
