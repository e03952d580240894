//! Peer identity on QUIC: a self-signed certificate per agent whose key *is* its [`PeerId`].
//!
//! There is no CA. Each agent makes an Ed25519 key and a self-signed certificate for it
//! ([`Identity::generate`]); its id is [`PeerId::from_public_key`]`(Ed25519, key)` — the same
//! derivation hive-core uses everywhere, so the id names the key. TLS 1.3 makes each side sign
//! the handshake transcript with the key of the certificate it presents (`CertificateVerify`),
//! so a peer that completes the handshake holds the key, hence owns the id derived from its
//! certificate. Both sides present a certificate (the server requires client authentication):
//!
//! - the **dialler** checks, inside the handshake, that the server's certificate key yields the
//!   id it dialled (`ServerVerifier`); a mismatch fails the handshake, so the acceptor never
//!   yields the connection, and `dial` reports [`WrongPeer`](hive_core::TransportError::WrongPeer)
//!   with the id the server proved;
//! - the **acceptor** derives the client's id from the client's certificate after the handshake
//!   (read back from the TLS session, see `events.rs`);
//! - both verifiers also read the admission token the peer's certificate carries and run the
//!   transport's check on it, with the id of the certificate's key ([`crate::admission`]); the
//!   certificate each side presents comes from a resolver holding the current one, so a new
//!   token applies from the next handshake. Session resumption is off, so every handshake
//!   presents and verifies certificates.
//!
//! The expected id travels to the dialler's verifier in the TLS server name (`<32 hex>.<32 hex>.
//! d<n>.hive`, the `n` matching a failed dial to the id the server proved). SNI is **not sent**
//! (`enable_sni = false`), so the id is not visible on the wire. Certificate validity dates,
//! names and chains are ignored: the only thing a certificate says is its key.
//!
//! Non-Ed25519 certificate keys are accepted too: their id is derived from the DER
//! SubjectPublicKeyInfo ([`KeyKind::Spki`]), as hive-core documents for DTLS certificates.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use hive_core::{KeyKind, PeerId};
use parking_lot::{Mutex, RwLock};
use rustls::client::ResolvesClientCert;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms, aws_lc_rs};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::{CertifiedKey, SigningKey};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};

use crate::admission::{self, Gate};

/// The ALPN protocol id of this transport's wire format.
pub const ALPN: &[u8] = b"hive-quic/1";

/// The DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410 §4): SEQUENCE { SEQUENCE { OID
/// 1.3.101.112 }, BIT STRING (0 unused bits) } followed by the 32-byte key.
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// Errors of making or loading an identity, or of the TLS configuration built from it.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// Key generation, key parsing or certificate signing failed.
    #[error("certificate: {0}")]
    Certificate(#[from] rcgen::Error),
    /// The certificate could not be parsed back.
    #[error("the certificate does not parse: {0}")]
    Parse(String),
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
}

/// An agent's key and its self-signed certificate.
#[derive(Clone)]
pub struct Identity {
    cert: CertificateDer<'static>,
    key_pkcs8: Vec<u8>,
    peer_id: PeerId,
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("peer_id", &self.peer_id)
            .finish_non_exhaustive()
    }
}

impl Identity {
    /// A fresh Ed25519 key and a self-signed certificate for it.
    pub fn generate() -> Result<Self, IdentityError> {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519)?;
        Self::from_key(key)
    }

    /// The identity of a stored key (PKCS#8 DER, as [`Identity::key_pkcs8_der`] gives it), so an
    /// agent keeps its id across restarts. A new certificate is made for it.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, IdentityError> {
        let key = rcgen::KeyPair::try_from(der)?;
        Self::from_key(key)
    }

    fn from_key(key: rcgen::KeyPair) -> Result<Self, IdentityError> {
        let cert = self_signed(&key, &[])?;
        let peer_id = peer_id_of_certificate(&cert)?;
        Ok(Identity {
            cert,
            key_pkcs8: key.serialize_der(),
            peer_id,
        })
    }

    /// A new self-signed certificate for this identity's key carrying an admission token (see
    /// [`crate::admission`]): same key, hence same id. An empty token, or one longer than
    /// [`MAX_ADMISSION_TOKEN`](crate::admission::MAX_ADMISSION_TOKEN), gives a certificate
    /// without the extension.
    pub fn certificate_with_token(
        &self,
        token: &[u8],
    ) -> Result<CertificateDer<'static>, IdentityError> {
        let key = rcgen::KeyPair::try_from(&self.key_pkcs8[..])?;
        self_signed(&key, admission::sendable(token))
    }

    /// The id this identity proves.
    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    /// The private key, PKCS#8 DER (keep it secret).
    pub fn key_pkcs8_der(&self) -> &[u8] {
        &self.key_pkcs8
    }

    /// The certificate without an admission token, DER (a transport presents
    /// [`Identity::certificate_with_token`] of its current token:
    /// [`QuicTransport::certificate`](crate::QuicTransport::certificate)).
    pub fn certificate_der(&self) -> &[u8] {
        &self.cert
    }

    fn key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_pkcs8.clone()))
    }
}

/// A self-signed certificate for `key`, with `token` (at most `MAX_ADMISSION_TOKEN` bytes) in
/// the token extension unless it is empty.
fn self_signed(
    key: &rcgen::KeyPair,
    token: &[u8],
) -> Result<CertificateDer<'static>, IdentityError> {
    let mut params = rcgen::CertificateParams::new(vec!["hive".to_string()])?;
    if !token.is_empty() {
        params
            .custom_extensions
            .push(rcgen::CustomExtension::from_oid_content(
                admission::TOKEN_EXTENSION_OID,
                admission::extension_content(token),
            ));
    }
    let cert = params.self_signed(key)?;
    Ok(CertificateDer::from(cert.der().to_vec()))
}

/// The id a certificate's key yields: Ed25519 keys as [`KeyKind::Ed25519`] over the raw 32 bytes,
/// any other key as [`KeyKind::Spki`] over its DER SubjectPublicKeyInfo.
pub fn peer_id_of_certificate(cert: &CertificateDer<'_>) -> Result<PeerId, IdentityError> {
    let parsed =
        webpki::EndEntityCert::try_from(cert).map_err(|e| IdentityError::Parse(e.to_string()))?;
    let spki = parsed.subject_public_key_info();
    let spki: &[u8] = spki.as_ref();
    Ok(match spki.strip_prefix(&ED25519_SPKI_PREFIX[..]) {
        Some(raw) if raw.len() == 32 => PeerId::from_public_key(KeyKind::Ed25519, raw),
        _ => PeerId::from_public_key(KeyKind::Spki, spki),
    })
}

fn provider() -> CryptoProvider {
    let base = aws_lc_rs::default_provider();
    // QUIC requires TLS 1.3 (RFC 9001 §4.2); these are the suites s2n-quic-rustls implements.
    CryptoProvider {
        cipher_suites: vec![
            aws_lc_rs::cipher_suite::TLS13_AES_128_GCM_SHA256,
            aws_lc_rs::cipher_suite::TLS13_AES_256_GCM_SHA384,
            aws_lc_rs::cipher_suite::TLS13_CHACHA20_POLY1305_SHA256,
        ],
        ..base
    }
}

/// The server name a dial to `peer` uses (never sent: SNI is off); `attempt` ties a failed
/// handshake to the id the server proved.
pub(crate) fn server_name_for(peer: PeerId, attempt: u64) -> String {
    let hex = peer.to_string();
    let (a, b) = hex.split_at(32);
    format!("{a}.{b}.d{attempt}.hive")
}

/// Parses [`server_name_for`]'s output.
fn parse_server_name(name: &str) -> Option<(PeerId, u64)> {
    let mut parts = name.split('.');
    let (a, b, d, tld) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if tld != "hive" || parts.next().is_some() || a.len() != 32 || b.len() != 32 {
        return None;
    }
    let peer = format!("{a}{b}").parse().ok()?;
    let attempt = d.strip_prefix('d')?.parse().ok()?;
    Some((peer, attempt))
}

/// The most failed attempts remembered for `dial` to report (older ones are forgotten).
const MAX_REFUSALS: usize = 256;

/// Why the dialler's verifier failed a handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The server's certificate key yields another id than the dialled one.
    WrongPeer(PeerId),
    /// The server is the dialled one, but its admission token was refused.
    Admission,
}

/// The dialler's verifier: the server's certificate key must yield the dialled id, and its
/// admission token pass the transport's check.
#[derive(Debug)]
pub(crate) struct ServerVerifier {
    algorithms: WebPkiSupportedAlgorithms,
    gate: Arc<Gate>,
    /// attempt number → why the handshake was failed.
    refusals: Mutex<HashMap<u64, Refusal>>,
    next_attempt: AtomicU64,
}

impl ServerVerifier {
    fn new(algorithms: WebPkiSupportedAlgorithms, gate: Arc<Gate>) -> Self {
        ServerVerifier {
            algorithms,
            gate,
            refusals: Mutex::new(HashMap::new()),
            next_attempt: AtomicU64::new(1),
        }
    }

    /// A fresh attempt number for a dial.
    pub(crate) fn next_attempt(&self) -> u64 {
        self.next_attempt.fetch_add(1, Ordering::Relaxed)
    }

    /// Why this verifier failed an attempt, if it did.
    pub(crate) fn take_refusal(&self, attempt: u64) -> Option<Refusal> {
        self.refusals.lock().remove(&attempt)
    }

    fn remember(&self, attempt: u64, why: Refusal) {
        let mut m = self.refusals.lock();
        if m.len() >= MAX_REFUSALS {
            m.clear();
        }
        m.insert(attempt, why);
    }
}

impl ServerCertVerifier for ServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let ServerName::DnsName(name) = server_name else {
            return Err(rustls::Error::General("not a Hive server name".into()));
        };
        let (expected, attempt) = parse_server_name(name.as_ref())
            .ok_or_else(|| rustls::Error::General("not a Hive server name".into()))?;
        let actual = peer_id_of_certificate(end_entity).map_err(|_| {
            rustls::Error::InvalidCertificate(rustls::CertificateError::BadEncoding)
        })?;
        let why = if actual != expected {
            Refusal::WrongPeer(actual)
        } else if !self.gate.admits(&actual, end_entity) {
            Refusal::Admission
        } else {
            return Ok(ServerCertVerified::assertion());
        };
        self.remember(attempt, why);
        Err(rustls::Error::InvalidCertificate(
            rustls::CertificateError::ApplicationVerificationFailure,
        ))
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::General("QUIC uses TLS 1.3 only".into()))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// The acceptor's verifier: a client certificate is required, must parse, and its admission
/// token pass the transport's check; the id is derived from it (again) after the handshake.
#[derive(Debug)]
struct ClientVerifier {
    algorithms: WebPkiSupportedAlgorithms,
    gate: Arc<Gate>,
}

impl ClientCertVerifier for ClientVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let peer = peer_id_of_certificate(end_entity).map_err(|_| {
            rustls::Error::InvalidCertificate(rustls::CertificateError::BadEncoding)
        })?;
        if !self.gate.admits(&peer, end_entity) {
            return Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            ));
        }
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::General("QUIC uses TLS 1.3 only".into()))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// The certificate both endpoints of a transport present: the identity's key with a certificate
/// carrying the current admission token, replaced when the token changes (each handshake reads
/// the current one when it starts).
pub(crate) struct CertStore {
    identity: Identity,
    key: Arc<dyn SigningKey>,
    current: RwLock<Arc<CertifiedKey>>,
}

impl fmt::Debug for CertStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertStore")
            .field("peer_id", &self.identity.peer_id)
            .finish_non_exhaustive()
    }
}

impl CertStore {
    fn new(
        identity: &Identity,
        provider: &CryptoProvider,
        token: &[u8],
    ) -> Result<Self, IdentityError> {
        let key = provider.key_provider.load_private_key(identity.key())?;
        let cert = identity.certificate_with_token(token)?;
        Ok(CertStore {
            identity: identity.clone(),
            current: RwLock::new(Arc::new(CertifiedKey::new(vec![cert], key.clone()))),
            key,
        })
    }

    /// Presents `token` from the next handshake on: a new certificate for the same key.
    pub(crate) fn set_token(&self, token: &[u8]) -> Result<(), IdentityError> {
        let cert = self.identity.certificate_with_token(token)?;
        *self.current.write() = Arc::new(CertifiedKey::new(vec![cert], self.key.clone()));
        Ok(())
    }

    /// Presents a certificate for the same key whose token extensions hold `contents` as they
    /// are (one extension each): malformed ones, for the tests of the verifiers.
    #[cfg(test)]
    pub(crate) fn set_raw_extensions(&self, contents: &[Vec<u8>]) -> Result<(), IdentityError> {
        let key = rcgen::KeyPair::try_from(&self.identity.key_pkcs8[..])?;
        let mut params = rcgen::CertificateParams::new(vec!["hive".to_string()])?;
        for c in contents {
            params
                .custom_extensions
                .push(rcgen::CustomExtension::from_oid_content(
                    admission::TOKEN_EXTENSION_OID,
                    c.clone(),
                ));
        }
        let cert = CertificateDer::from(params.self_signed(&key)?.der().to_vec());
        *self.current.write() = Arc::new(CertifiedKey::new(vec![cert], self.key.clone()));
        Ok(())
    }

    /// The certificate presented now, DER.
    pub(crate) fn current_der(&self) -> CertificateDer<'static> {
        let current = self.current.read();
        current
            .cert
            .first()
            .cloned()
            .unwrap_or_else(|| self.identity.cert.clone())
    }
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.read().clone())
    }
}

impl ResolvesClientCert for CertStore {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        Some(self.current.read().clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// rustls configurations for both endpoints of a transport.
pub(crate) struct TlsConfigs {
    pub(crate) server: s2n_quic::provider::tls::rustls::Server,
    pub(crate) client: s2n_quic::provider::tls::rustls::Client,
    pub(crate) verifier: Arc<ServerVerifier>,
    pub(crate) certs: Arc<CertStore>,
    pub(crate) gate: Arc<Gate>,
}

/// Builds the server and client TLS providers of an identity, presenting `admission.token` and
/// checking the remote's with `admission.check`.
pub(crate) fn tls_configs(
    identity: &Identity,
    admission: &admission::Admission,
) -> Result<TlsConfigs, IdentityError> {
    let provider = Arc::new(provider());
    let algorithms = provider.signature_verification_algorithms;
    let versions = &[&rustls::version::TLS13];
    let certs = Arc::new(CertStore::new(identity, &provider, &admission.token)?);
    let gate = Arc::new(Gate::new(admission.check.clone()));

    let mut server = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)?
        .with_client_cert_verifier(Arc::new(ClientVerifier {
            algorithms,
            gate: gate.clone(),
        }))
        .with_cert_resolver(certs.clone());
    server.alpn_protocols = vec![ALPN.to_vec()];
    server.max_fragment_size = None;
    server.max_early_data_size = 0;
    // No session resumption: a resumed TLS 1.3 handshake presents no certificate, so neither
    // verifier (nor the admission check) would run. (Each dial's server name is new anyway.)
    server.send_tls13_tickets = 0;
    server.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});

    let verifier = Arc::new(ServerVerifier::new(algorithms, gate.clone()));
    let mut client = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)?
        .dangerous()
        .with_custom_certificate_verifier(verifier.clone())
        .with_client_cert_resolver(certs.clone());
    client.alpn_protocols = vec![ALPN.to_vec()];
    client.enable_sni = false;
    client.max_fragment_size = None;
    client.resumption = rustls::client::Resumption::disabled();

    Ok(TlsConfigs {
        server: server.into(),
        client: client.into(),
        verifier,
        certs,
        gate,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_certificate_key_yields_the_id() -> Result<(), IdentityError> {
        let id = Identity::generate()?;
        let key = rcgen::KeyPair::try_from(id.key_pkcs8_der())?;
        assert_eq!(
            id.peer_id(),
            PeerId::from_public_key(KeyKind::Ed25519, key.public_key_raw())
        );
        let again = Identity::from_pkcs8_der(id.key_pkcs8_der())?;
        assert_eq!(again.peer_id(), id.peer_id(), "a stored key keeps its id");
        assert_ne!(Identity::generate()?.peer_id(), id.peer_id());
        Ok(())
    }

    #[test]
    fn server_names_round_trip_and_reject_others() -> Result<(), IdentityError> {
        let id = Identity::generate()?.peer_id();
        let name = server_name_for(id, 42);
        assert_eq!(parse_server_name(&name), Some((id, 42)));
        assert!(ServerName::try_from(name.as_str()).is_ok(), "{name}");
        assert_eq!(parse_server_name("localhost"), None);
        assert_eq!(parse_server_name(&format!("{name}.x")), None);
        Ok(())
    }

    #[test]
    fn a_token_rides_in_a_certificate_of_the_same_key() -> Result<(), IdentityError> {
        let id = Identity::generate()?;
        let plain = CertificateDer::from(id.certificate_der().to_vec());
        assert_eq!(admission::token_of_certificate(&plain), Ok(None));
        for token in [
            &b"t"[..],
            &[7u8; 200][..],
            &[9u8; admission::MAX_ADMISSION_TOKEN][..],
        ] {
            let cert = id.certificate_with_token(token)?;
            assert_eq!(admission::token_of_certificate(&cert), Ok(Some(token)));
            assert_eq!(
                peer_id_of_certificate(&cert)?,
                id.peer_id(),
                "same key, same id"
            );
        }
        // Empty or too long: no extension.
        for token in [&[][..], &[1u8; admission::MAX_ADMISSION_TOKEN + 1][..]] {
            let cert = id.certificate_with_token(token)?;
            assert_eq!(admission::token_of_certificate(&cert), Ok(None));
        }
        Ok(())
    }

    /// Both verifiers, fed certificates with malformed token extensions, refuse them (counted)
    /// and do not panic; a well-formed one reaches the check with the certificate's id.
    #[test]
    fn verifiers_refuse_malformed_token_extensions() -> Result<(), IdentityError> {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        let check: admission::AdmissionCheck = Arc::new(move |p: &PeerId, t: &[u8]| {
            s.lock().push((*p, t.to_vec()));
            true
        });
        let gate = Arc::new(Gate::new(Some(check)));
        let algorithms = provider().signature_verification_algorithms;
        let client_side = ServerVerifier::new(algorithms, gate.clone());
        let server_side = ClientVerifier {
            algorithms,
            gate: gate.clone(),
        };
        let id = Identity::generate()?;
        let store = CertStore::new(&id, &provider(), b"")?;
        let name = |attempt| {
            ServerName::try_from(server_name_for(id.peer_id(), attempt))
                .map_err(|e| IdentityError::Parse(e.to_string()))
        };
        let mut long = vec![0x04, 0x82, 0x04, 0x01];
        long.extend([0u8; admission::MAX_ADMISSION_TOKEN + 1]);
        let cases: Vec<(&str, Vec<Vec<u8>>)> = vec![
            ("truncated", vec![vec![0x04, 0x05, 1, 2]]),
            ("not an octet string", vec![vec![0x30, 0x00]]),
            ("trailing bytes", vec![vec![0x04, 0x01, 1, 0x00]]),
            ("empty", vec![vec![]]),
            ("too long", vec![long]),
            ("twice", vec![vec![0x04, 0x01, 1], vec![0x04, 0x01, 2]]),
        ];
        for (i, (what, exts)) in cases.iter().enumerate() {
            store.set_raw_extensions(exts)?;
            let cert = store.current_der();
            let before = gate.refused();
            assert!(
                server_side
                    .verify_client_cert(&cert, &[], UnixTime::now())
                    .is_err(),
                "{what}: accepted as a client"
            );
            let attempt = 100 + i as u64;
            assert!(
                client_side
                    .verify_server_cert(&cert, &[], &name(attempt)?, &[], UnixTime::now())
                    .is_err(),
                "{what}: accepted as a server"
            );
            assert_eq!(client_side.take_refusal(attempt), Some(Refusal::Admission));
            assert_eq!(gate.refused(), before + 2, "{what}");
        }
        assert!(
            seen.lock().is_empty(),
            "the check never saw a malformed token"
        );
        store.set_token(b"fine")?;
        let cert = store.current_der();
        assert!(
            server_side
                .verify_client_cert(&cert, &[], UnixTime::now())
                .is_ok()
        );
        assert!(
            client_side
                .verify_server_cert(&cert, &[], &name(1)?, &[], UnixTime::now())
                .is_ok()
        );
        assert_eq!(
            *seen.lock(),
            vec![
                (id.peer_id(), b"fine".to_vec()),
                (id.peer_id(), b"fine".to_vec())
            ]
        );
        Ok(())
    }

    #[test]
    fn garbage_is_not_a_certificate() {
        let junk = CertificateDer::from(vec![0x30, 0x03, 0x02, 0x01, 0x00]);
        assert!(peer_id_of_certificate(&junk).is_err());
    }
}
