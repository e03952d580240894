//! Admission tokens: the compact binary format, signing and offline verification.
//!
//! A token binds a [`PeerId`], a [`ContentId`] and an expiry, signed by the registrar's Ed25519 key.
//! Layout (137 bytes, all integers big-endian):
//!
//! ```text
//! offset  len  field
//!      0    1  version (= 1)
//!      1   32  peer id
//!     33   32  content id
//!     65    8  expires, unix seconds
//!     73   64  Ed25519 signature over "hive registrar token v1\0" || bytes 0..73
//! ```
//!
//! The signed message is domain-separated so a registrar key never signs anything that could be
//! mistaken for a token, and a token is never valid as any other signed object. The version byte is
//! signed too: a future format gets a new version and a new domain string.

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use hive_core::{ContentId, PeerId};
use thiserror::Error;

/// The current token format version.
pub const TOKEN_VERSION: u8 = 1;
/// Length in bytes of a version-1 token.
pub const TOKEN_LEN: usize = 1 + 32 + 32 + 8 + 64;
const SIGNED_LEN: usize = TOKEN_LEN - 64;
const DOMAIN: &[u8] = b"hive registrar token v1\0";

/// What a valid token asserts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TokenClaims {
    /// The peer admitted.
    pub peer: PeerId,
    /// The swarm it is admitted to.
    pub content: ContentId,
    /// Unix time (seconds) after which the token is no longer valid.
    pub expires_unix_s: u64,
}

/// Why a token was refused.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum TokenError {
    /// The token is not [`TOKEN_LEN`] bytes long.
    #[error("token must be {TOKEN_LEN} bytes, found {0}")]
    Length(usize),
    /// The token's version byte is not one this build knows.
    #[error("unknown token version {0}")]
    Version(u8),
    /// The signature does not verify under the registrar's key (forged or altered token).
    #[error("token signature does not verify")]
    Signature,
    /// The token expired.
    #[error("token expired at {expires_unix_s} (now {now_unix_s})")]
    Expired {
        /// The token's expiry.
        expires_unix_s: u64,
        /// The time it was checked at.
        now_unix_s: u64,
    },
    /// The token was issued to another peer.
    #[error("token was issued to peer {issued_to:?}, presented by {presented_by:?}")]
    WrongPeer {
        /// The peer in the token.
        issued_to: PeerId,
        /// The peer that presented it.
        presented_by: PeerId,
    },
    /// The token was issued for another swarm.
    #[error("token was issued for content {issued_for:?}, presented for {presented_for:?}")]
    WrongContent {
        /// The content in the token.
        issued_for: ContentId,
        /// The content it was presented for.
        presented_for: ContentId,
    },
}

fn signed_message(body: &[u8; SIGNED_LEN]) -> [u8; DOMAIN.len() + SIGNED_LEN] {
    let mut m = [0u8; DOMAIN.len() + SIGNED_LEN];
    m[..DOMAIN.len()].copy_from_slice(DOMAIN);
    m[DOMAIN.len()..].copy_from_slice(body);
    m
}

/// Builds and signs a version-1 token.
pub(crate) fn sign(key: &SigningKey, claims: &TokenClaims) -> [u8; TOKEN_LEN] {
    let mut body = [0u8; SIGNED_LEN];
    body[0] = TOKEN_VERSION;
    body[1..33].copy_from_slice(claims.peer.as_bytes());
    body[33..65].copy_from_slice(claims.content.as_bytes());
    body[65..73].copy_from_slice(&claims.expires_unix_s.to_be_bytes());
    let sig = key.sign(&signed_message(&body));
    let mut token = [0u8; TOKEN_LEN];
    token[..SIGNED_LEN].copy_from_slice(&body);
    token[SIGNED_LEN..].copy_from_slice(&sig.to_bytes());
    token
}

/// Checks tokens offline against a registrar's public key: what peers do with the token in a
/// Hello, and what the tracker does with the token in an announce.
#[derive(Clone, Debug)]
pub struct TokenVerifier {
    key: VerifyingKey,
}

impl TokenVerifier {
    /// A verifier for tokens signed by the holder of `key`.
    pub fn new(key: VerifyingKey) -> Self {
        TokenVerifier { key }
    }

    /// The registrar key this verifier trusts.
    pub fn key(&self) -> &VerifyingKey {
        &self.key
    }

    /// Decodes and verifies the signature only, without checking peer, content or expiry.
    pub fn decode(&self, token: &[u8]) -> Result<TokenClaims, TokenError> {
        if token.len() != TOKEN_LEN {
            return Err(TokenError::Length(token.len()));
        }
        if token[0] != TOKEN_VERSION {
            return Err(TokenError::Version(token[0]));
        }
        let mut body = [0u8; SIGNED_LEN];
        body.copy_from_slice(&token[..SIGNED_LEN]);
        let mut sig = [0u8; 64];
        sig.copy_from_slice(&token[SIGNED_LEN..]);
        let sig = Signature::from_bytes(&sig);
        // verify_strict: rejects small-order keys and non-canonical signatures (no malleability).
        self.key
            .verify_strict(&signed_message(&body), &sig)
            .map_err(|_| TokenError::Signature)?;
        let mut peer = [0u8; 32];
        peer.copy_from_slice(&body[1..33]);
        let mut content = [0u8; 32];
        content.copy_from_slice(&body[33..65]);
        let mut exp = [0u8; 8];
        exp.copy_from_slice(&body[65..73]);
        Ok(TokenClaims {
            peer: PeerId::from_bytes(peer),
            content: ContentId::from_bytes(content),
            expires_unix_s: u64::from_be_bytes(exp),
        })
    }

    /// Verifies `token` as presented by `peer` for `content` at `now_unix_s`: the signature, then
    /// that it names this peer and content, then that it has not expired (valid while
    /// `now_unix_s < expires_unix_s`).
    pub fn verify(
        &self,
        token: &[u8],
        peer: PeerId,
        content: ContentId,
        now_unix_s: u64,
    ) -> Result<TokenClaims, TokenError> {
        let claims = self.decode(token)?;
        if claims.peer != peer {
            return Err(TokenError::WrongPeer {
                issued_to: claims.peer,
                presented_by: peer,
            });
        }
        if claims.content != content {
            return Err(TokenError::WrongContent {
                issued_for: claims.content,
                presented_for: content,
            });
        }
        if now_unix_s >= claims.expires_unix_s {
            return Err(TokenError::Expired {
                expires_unix_s: claims.expires_unix_s,
                now_unix_s,
            });
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registrar::Registrar;
    use proptest::prelude::*;

    fn ids() -> (PeerId, ContentId) {
        (
            PeerId::from_bytes([1; 32]),
            ContentId::derive("live/channel-1"),
        )
    }

    #[test]
    fn issued_token_verifies_with_the_right_claims() {
        let r = Registrar::from_secret([9; 32]);
        let (p, c) = ids();
        let t = r.issue(p, c, 1_000);
        assert_eq!(t.len(), TOKEN_LEN);
        let v = TokenVerifier::new(r.verifying_key());
        let claims = v.verify(&t, p, c, 999).expect("valid");
        assert_eq!(claims.expires_unix_s, 1_000);
        assert_eq!(claims.peer, p);
    }

    #[test]
    fn expiry_wrong_peer_wrong_content_and_other_key_are_refused() {
        let r = Registrar::from_secret([9; 32]);
        let (p, c) = ids();
        let t = r.issue(p, c, 1_000);
        let v = TokenVerifier::new(r.verifying_key());
        assert!(matches!(
            v.verify(&t, p, c, 1_000),
            Err(TokenError::Expired { .. })
        ));
        let other = PeerId::from_bytes([2; 32]);
        assert!(matches!(
            v.verify(&t, other, c, 0),
            Err(TokenError::WrongPeer { .. })
        ));
        assert!(matches!(
            v.verify(&t, p, ContentId::derive("other"), 0),
            Err(TokenError::WrongContent { .. })
        ));
        let stranger = TokenVerifier::new(Registrar::from_secret([8; 32]).verifying_key());
        assert_eq!(stranger.verify(&t, p, c, 0), Err(TokenError::Signature));
    }

    #[test]
    fn malformed_tokens_are_typed_errors() {
        let r = Registrar::from_secret([9; 32]);
        let v = TokenVerifier::new(r.verifying_key());
        let (p, c) = ids();
        assert_eq!(v.verify(&[], p, c, 0), Err(TokenError::Length(0)));
        let mut t = r.issue(p, c, 10).to_vec();
        t[0] = 2;
        assert_eq!(v.verify(&t, p, c, 0), Err(TokenError::Version(2)));
        t.push(0);
        assert_eq!(
            v.verify(&t, p, c, 0),
            Err(TokenError::Length(TOKEN_LEN + 1))
        );
    }

    #[test]
    fn generated_keys_differ() {
        assert_ne!(
            Registrar::generate().verifying_key(),
            Registrar::generate().verifying_key()
        );
    }

    proptest! {
        #[test]
        fn a_flipped_bit_never_verifies(
            bit in 0usize..TOKEN_LEN * 8,
            peer in any::<[u8; 32]>(),
            content in any::<[u8; 32]>(),
            exp in 1u64..u64::MAX,
        ) {
            let r = Registrar::from_secret([3; 32]);
            let (p, c) = (PeerId::from_bytes(peer), ContentId::from_bytes(content));
            let mut t = r.issue(p, c, exp).to_vec();
            t[bit / 8] ^= 1 << (bit % 8);
            let v = TokenVerifier::new(r.verifying_key());
            prop_assert!(v.decode(&t).is_err());
            prop_assert!(v.verify(&t, p, c, 0).is_err());
        }

        #[test]
        fn arbitrary_bytes_never_verify_or_panic(t in proptest::collection::vec(any::<u8>(), 0..200)) {
            let v = TokenVerifier::new(Registrar::from_secret([3; 32]).verifying_key());
            prop_assert!(v.decode(&t).is_err());
        }
    }
}
