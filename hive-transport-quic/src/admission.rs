//! Admission tokens in the TLS handshake: each side's token rides in its self-signed certificate,
//! and each side checks the other's before a connection exists.
//!
//! The same contract as hive-transport-udp's `Admission` (its Noise handshake carries the token
//! where this transport's TLS handshake carries a certificate):
//!
//! - this side's token (at most [`MAX_ADMISSION_TOKEN`] bytes; a longer one is not sent at all)
//!   is a non-critical X.509 extension ([`TOKEN_EXTENSION_OID`]) of the certificate the transport
//!   presents: `extnValue` holds the DER `OCTET STRING` of the token. No token, no extension.
//! - the remote's token is read from the certificate it presents, inside the TLS handshake, by
//!   both verifiers — the dialler's (the server's certificate, after the dialled id matched) and
//!   the acceptor's (the client's certificate) — and handed with the id of the certificate's key
//!   to [`Admission::check`]; no extension reads as an empty token. A refusal, or an extension
//!   that does not parse (wrong DER, longer than [`MAX_ADMISSION_TOKEN`], twice), fails the TLS
//!   handshake, so `dial` returns an error and `accept` never yields the connection. Refusals
//!   are counted ([`crate::QuicTransport::admission_refused`]).
//! - rustls asks the verifier about a certificate before it checks the `CertificateVerify`
//!   signature made with that certificate's key: the check may see a copied certificate (with
//!   its owner's token), but such a peer cannot sign, so its handshake fails right after; what
//!   the check admits still needs the key, as every connection does.
//! - The dialler presents its certificate only after it verified the server's (TLS 1.3 client
//!   authentication): a refused server never sees the dialler's certificate, id or token. The
//!   server's certificate, token included, goes (encrypted) to any client that knows its
//!   address, before the client is authenticated — as the UDP transport's responder token does.
//! - The token can change while the transport runs ([`crate::QuicTransport::set_admission_token`]):
//!   the certificate is made again for the same key with the new token, and handshakes that start
//!   afterwards present it. The check runs once, in the handshake.

use std::sync::atomic::{AtomicU64, Ordering};

use hive_core::PeerId;
use rustls::pki_types::CertificateDer;

pub use hive_core::transport::{Admission, AdmissionCheck, MAX_ADMISSION_TOKEN};

/// The OID of the certificate extension carrying the token: an unregistered number under the
/// private-enterprise arc, read only by Hive peers. The extension is non-critical, so other X.509
/// readers (webpki's own parsing included) ignore it.
pub const TOKEN_EXTENSION_OID: &[u64] = &[1, 3, 6, 1, 4, 1, 57264, 17, 5];

/// [`TOKEN_EXTENSION_OID`] in DER (the content octets of its `OBJECT IDENTIFIER`).
const TOKEN_EXTENSION_OID_DER: &[u8] =
    &[0x2b, 0x06, 0x01, 0x04, 0x01, 0x83, 0xbf, 0x30, 0x11, 0x05];

/// The token to put in a certificate (empty, i.e. no extension, when over the maximum).
pub(crate) fn sendable(token: &[u8]) -> &[u8] {
    hive_core::transport::sendable_token(token)
}

/// The content of the token extension's `extnValue`: the DER `OCTET STRING` of `token`, which
/// must be at most [`MAX_ADMISSION_TOKEN`] bytes (so its length takes at most two octets).
pub(crate) fn extension_content(token: &[u8]) -> Vec<u8> {
    let mut b = Vec::with_capacity(token.len() + 4);
    b.push(0x04);
    der_length(&mut b, token.len());
    b.extend_from_slice(token);
    b
}

fn der_length(b: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        b.push(len as u8);
    } else if len <= 0xff {
        b.extend_from_slice(&[0x81, len as u8]);
    } else {
        b.extend_from_slice(&[0x82, (len >> 8) as u8, len as u8]);
    }
}

/// Why a certificate's token extension was not read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// The certificate's DER is not what an X.509 certificate looks like.
    #[error("the certificate does not parse")]
    Certificate,
    /// The token extension does not hold one DER `OCTET STRING`.
    #[error("malformed admission token extension")]
    Malformed,
    /// The token is longer than [`MAX_ADMISSION_TOKEN`].
    #[error("admission token too long")]
    TooLong,
    /// The certificate has the token extension more than once.
    #[error("admission token extension repeated")]
    Repeated,
}

/// The admission token a certificate carries: `Ok(None)` without the extension. The
/// certificate is parsed by `x509-parser` (bounded and panic-free on any input; a duplicated
/// extension fails the parse, RFC 5280 §4.2), the extension's value as one DER `OCTET STRING`.
pub fn token_of_certificate<'a>(
    cert: &'a CertificateDer<'_>,
) -> Result<Option<&'a [u8]>, TokenError> {
    let der: &'a [u8] = cert.as_ref();
    let (_, x509) =
        x509_parser::parse_x509_certificate(der).map_err(|_| TokenError::Certificate)?;
    let mut found = None;
    for ext in x509.extensions() {
        if ext.oid.as_bytes() != TOKEN_EXTENSION_OID_DER {
            continue;
        }
        if found.is_some() {
            return Err(TokenError::Repeated);
        }
        // extnValue holds the DER OCTET STRING of the token, and nothing after it.
        let value: &'a [u8] = ext.value;
        let (rest, obj) = x509_parser::der_parser::der::parse_der_octetstring(value)
            .map_err(|_| TokenError::Malformed)?;
        if !rest.is_empty() {
            return Err(TokenError::Malformed);
        }
        let token = obj.as_slice().map_err(|_| TokenError::Malformed)?;
        if token.len() > MAX_ADMISSION_TOKEN {
            return Err(TokenError::TooLong);
        }
        found = Some(token);
    }
    Ok(found)
}

/// The check both verifiers of a transport run, and its refusals.
#[derive(Default)]
pub(crate) struct Gate {
    check: Option<AdmissionCheck>,
    refused: AtomicU64,
}

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gate")
            .field("check", &self.check.is_some())
            .field("refused", &self.refused.load(Ordering::Relaxed))
            .finish()
    }
}

impl Gate {
    pub(crate) fn new(check: Option<AdmissionCheck>) -> Self {
        Gate {
            check,
            refused: AtomicU64::new(0),
        }
    }

    /// Whether `peer`, presenting `cert`, is admitted (a refusal is counted).
    pub(crate) fn admits(&self, peer: &PeerId, cert: &CertificateDer<'_>) -> bool {
        let ok = match token_of_certificate(cert) {
            Ok(token) => self
                .check
                .as_ref()
                .is_none_or(|c| c(peer, token.unwrap_or_default())),
            Err(e) => {
                tracing::debug!(peer = %peer.short(), "QUIC certificate refused: {e}");
                false
            }
        };
        if !ok {
            self.refused.fetch_add(1, Ordering::Relaxed);
        }
        ok
    }

    /// Handshakes refused so far.
    pub(crate) fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oid_der_matches_its_components() {
        // base-128 arcs after 40 * 1 + 3
        let mut der = vec![43u8];
        for &c in &TOKEN_EXTENSION_OID[2..] {
            let mut arc = vec![(c & 0x7f) as u8];
            let mut v = c >> 7;
            while v > 0 {
                arc.push(0x80 | (v & 0x7f) as u8);
                v >>= 7;
            }
            arc.reverse();
            der.extend(arc);
        }
        assert_eq!(der, TOKEN_EXTENSION_OID_DER);
    }

    #[test]
    fn extension_content_lengths() {
        for n in [0, 1, 127, 128, 255, 256, MAX_ADMISSION_TOKEN] {
            let token = vec![0xab; n];
            let c = extension_content(&token);
            let (rest, obj) =
                x509_parser::der_parser::der::parse_der_octetstring(&c).expect("an OCTET STRING");
            assert!(rest.is_empty(), "{n}");
            assert_eq!(obj.as_slice().ok(), Some(&token[..]), "{n}");
        }
        assert_eq!(
            sendable(&[1; MAX_ADMISSION_TOKEN]).len(),
            MAX_ADMISSION_TOKEN
        );
        assert!(sendable(&[1; MAX_ADMISSION_TOKEN + 1]).is_empty());
    }

    #[test]
    fn junk_is_refused_without_panic() -> Result<(), crate::identity::IdentityError> {
        // Every prefix, and every byte corrupted a few ways, of a real certificate with a token.
        let id = crate::identity::Identity::generate()?;
        let cert = id.certificate_with_token(b"a token")?;
        let der: &[u8] = cert.as_ref();
        assert_eq!(token_of_certificate(&cert), Ok(Some(&b"a token"[..])));
        for n in 0..der.len() {
            let c = CertificateDer::from(der[..n].to_vec());
            assert!(token_of_certificate(&c).is_err(), "{n}");
        }
        for i in 0..der.len() {
            for v in [0x00, 0x7f, 0x80, 0x84, 0xff] {
                let mut b = der.to_vec();
                b[i] = v;
                let _ = token_of_certificate(&CertificateDer::from(b));
            }
        }
        Ok(())
    }
}
