//! Registrar tokens in the transport handshake.
//!
//! With tokens required, an agent's default transport carries the agent's own tokens in its
//! handshake and checks the remote's before a connection exists — UDP inside its encrypted Noise
//! handshake ([`hive_transport_udp::Admission`]), QUIC in each side's certificate, checked by the
//! TLS verifiers (`hive_transport_quic::Admission`, feature `quic`): a peer without a token valid
//! for its authenticated [`PeerId`] and for a stream this agent has a swarm for never gets a
//! connection — `accept` never sees it, and a dial to it fails before this agent reveals its own
//! key.
//!
//! Tokens are per (peer, stream), the handshake is per transport: the handshake payload is a
//! list of this agent's tokens (newest first, as many as fit in
//! [`hive_transport_udp::handshake::MAX_ADMISSION_TOKEN`] bytes: 7 registrar tokens), each as
//! `len u16 (big-endian) | token`. A remote is admitted when one of its tokens passes the
//! agent's [`TokenCheck`] for one of the agent's streams. The list is sent again with every
//! token the registrar issues (the first, after `bind`; renewals, before expiry) through
//! [`hive_transport_udp::UdpTransport::set_admission_token`] (QUIC:
//! `hive_transport_quic::QuicTransport::set_admission_token`, a new certificate for the same
//! key). Both transports bound the payload at 1024 bytes.
//!
//! The responder's list travels before the dialler is authenticated: anyone who knows an
//! agent's address and peer id can learn which streams it holds tokens for (as a tracker's
//! `/v1/peers` would tell a token holder).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::{BufMut, Bytes, BytesMut};
use hive_core::{ContentId, PeerId};
use hive_transport_udp::handshake::MAX_ADMISSION_TOKEN;
use parking_lot::{Mutex, RwLock};

use crate::discovery::TokenCheck;

/// Most tokens read from one handshake payload.
const MAX_TOKENS: usize = 16;

/// Encodes `tokens` as a handshake payload (`len u16 | token`, each), stopping before the
/// first that would take it past the handshake's limit of
/// [`MAX_ADMISSION_TOKEN`](hive_transport_udp::handshake::MAX_ADMISSION_TOKEN) bytes.
pub fn handshake_token_list<'a>(tokens: impl IntoIterator<Item = &'a [u8]>) -> Bytes {
    let mut b = BytesMut::new();
    for t in tokens {
        let Ok(len) = u16::try_from(t.len()) else {
            continue;
        };
        if b.len() + 2 + t.len() > MAX_ADMISSION_TOKEN {
            break;
        }
        b.put_u16(len);
        b.put_slice(t);
    }
    b.freeze()
}

/// The tokens of a handshake payload (see [`handshake_token_list`]); a malformed tail is
/// ignored, and at most 16 are read.
pub fn parse_handshake_token_list(payload: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = payload;
    while out.len() < MAX_TOKENS {
        let Some((len, tail)) = rest.split_first_chunk::<2>() else {
            break;
        };
        let n = u16::from_be_bytes(*len) as usize;
        let Some((t, tail)) = tail.split_at_checked(n) else {
            break;
        };
        out.push(t);
        rest = tail;
    }
    out
}

/// Sets the token list a transport sends in its handshakes.
pub(crate) type TokenSink = Arc<dyn Fn(Bytes) + Send + Sync>;

/// This agent's side of handshake admission: its own tokens (sent), the streams it has a
/// swarm for (what a remote's token must name), and the refusals.
#[derive(Default)]
pub(crate) struct HandshakeTokens {
    /// This agent's token per stream, with when it was set (newest first when they do not
    /// all fit).
    own: Mutex<HashMap<ContentId, (Bytes, u64)>>,
    next: AtomicU64,
    /// The streams this agent has a swarm for.
    streams: RwLock<HashSet<ContentId>>,
    /// Where the list goes: the UDP or QUIC transport the agent bound (none with a transport
    /// given to the builder, which carries admission itself, or not at all).
    sink: Mutex<Option<TokenSink>>,
    /// Handshakes refused for want of a valid token (the agent's metrics read it).
    pub(crate) refused: Arc<AtomicU64>,
}

impl std::fmt::Debug for HandshakeTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HandshakeTokens")
            .field("own", &self.own.lock().len())
            .field("streams", &self.streams.read().len())
            .finish_non_exhaustive()
    }
}

impl HandshakeTokens {
    /// The transport's admission: no token yet (the registrar has not answered), and `check`
    /// on the remote's list when tokens are required. The QUIC transport's `Admission` has the
    /// same fields and check type: the agent moves them over.
    pub(crate) fn admission(
        self: &Arc<Self>,
        check: Option<TokenCheck>,
    ) -> hive_transport_udp::Admission {
        let check = check.map(|check| {
            let me = Arc::downgrade(self);
            let f: hive_transport_udp::AdmissionCheck =
                Arc::new(move |peer: &PeerId, payload: &[u8]| {
                    let Some(me) = me.upgrade() else {
                        return false;
                    };
                    let ok = me.admits(&check, *peer, payload);
                    if !ok {
                        me.refused.fetch_add(1, Ordering::Relaxed);
                        tracing::debug!(peer = %peer.short(), "handshake without a valid token; refused");
                    }
                    ok
                });
            f
        });
        hive_transport_udp::Admission {
            token: Bytes::new(),
            check,
        }
    }

    /// Whether `peer`'s handshake list holds a token `check` accepts for one of our streams.
    fn admits(&self, check: &TokenCheck, peer: PeerId, payload: &[u8]) -> bool {
        let streams: Vec<ContentId> = self.streams.read().iter().copied().collect();
        parse_handshake_token_list(payload)
            .into_iter()
            .any(|t| streams.iter().any(|c| check(t, peer, *c)))
    }

    /// Where the token list goes from now on; it gets the current one at once.
    pub(crate) fn set_sink(&self, sink: TokenSink) {
        *self.sink.lock() = Some(sink);
        self.publish();
    }

    /// This agent's token for `content`, new or renewed.
    pub(crate) fn set_own(&self, content: ContentId, token: Bytes) {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        self.own.lock().insert(content, (token, n));
        self.publish();
    }

    /// The agent has a swarm for `content`.
    pub(crate) fn joined(&self, content: ContentId) {
        self.streams.write().insert(content);
    }

    /// The agent left `content`: its token is no longer sent, nor its stream's accepted.
    pub(crate) fn left(&self, content: ContentId) {
        self.streams.write().remove(&content);
        if self.own.lock().remove(&content).is_some() {
            self.publish();
        }
    }

    /// Hands the current list to the transport (outside every lock of ours: the transport
    /// runs the check, which takes `streams`, under its own lock).
    fn publish(&self) {
        let list = {
            let own = self.own.lock();
            let mut v: Vec<&(Bytes, u64)> = own.values().collect();
            v.sort_by_key(|e| std::cmp::Reverse(e.1));
            handshake_token_list(v.into_iter().map(|(t, _)| &t[..]))
        };
        let sink = self.sink.lock().clone();
        if let Some(s) = sink {
            s(list);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_round_trip_and_stop_at_the_handshake_limit() {
        let a = [1u8; 137];
        let b = [2u8; 5];
        let list = handshake_token_list([&a[..], &b[..]]);
        assert_eq!(parse_handshake_token_list(&list), vec![&a[..], &b[..]]);
        let many = vec![[7u8; 137]; 10];
        let list = handshake_token_list(many.iter().map(|t| &t[..]));
        assert!(list.len() <= MAX_ADMISSION_TOKEN);
        assert_eq!(parse_handshake_token_list(&list).len(), 7);
        // A truncated entry is ignored, not read past.
        assert_eq!(parse_handshake_token_list(&list[..140]).len(), 1);
        assert!(parse_handshake_token_list(&[0xff]).is_empty());
    }

    #[test]
    fn a_remote_needs_a_token_for_one_of_our_streams() {
        let me = Arc::new(HandshakeTokens::default());
        let ours = ContentId::from_bytes([1; 32]);
        let other = ContentId::from_bytes([2; 32]);
        let peer = PeerId::from_bytes([3; 32]);
        // A "token" is valid when it names the stream's first byte.
        let check: TokenCheck =
            Arc::new(|t: &[u8], _p: PeerId, c: ContentId| t == &c.as_bytes()[..1]);
        let adm = me.admission(Some(check));
        let f = adm.check.expect("a check");
        let list = |c: ContentId| handshake_token_list([&c.as_bytes()[..1]]);
        assert!(!f(&peer, &list(ours)), "no stream yet");
        me.joined(ours);
        assert!(f(&peer, &list(ours)));
        assert!(!f(&peer, &list(other)));
        assert!(!f(&peer, &[]));
        me.left(ours);
        assert!(!f(&peer, &list(ours)));
        assert_eq!(me.refused.load(Ordering::Relaxed), 4);
    }

    #[test]
    fn own_tokens_reach_the_sink_newest_first() {
        let me = HandshakeTokens::default();
        let seen = Arc::new(Mutex::new(Bytes::new()));
        let s = seen.clone();
        me.set_sink(Arc::new(move |b| *s.lock() = b));
        let (c1, c2) = (
            ContentId::from_bytes([1; 32]),
            ContentId::from_bytes([2; 32]),
        );
        me.set_own(c1, Bytes::from_static(b"one"));
        me.set_own(c2, Bytes::from_static(b"two"));
        assert_eq!(
            parse_handshake_token_list(&seen.lock()),
            vec![&b"two"[..], &b"one"[..]]
        );
        me.left(c2);
        assert_eq!(parse_handshake_token_list(&seen.lock()), vec![&b"one"[..]]);
    }
}
