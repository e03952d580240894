//! The sans-IO connection state machine: handshake, streams, acknowledgements, loss recovery,
//! congestion control, keep-alives and close. Time is passed in; it never reads a clock.
//!
//! The endpoint ([`crate::Endpoint`]) routes datagrams to it; after every input, drain
//! [`Connection::poll_transmit`] until it says `false`, then sleep until
//! [`Connection::poll_timeout`] and call [`Connection::handle_timeout`].

use std::net::SocketAddr;

use bytes::Bytes;
use hive_core::TransportError;
use hive_core::cc::CongestionController;
use hive_core::ids::PeerId;
use hive_core::time::{Duration, Instant};
use hive_core::transport::{Class, ConnectionStats};
use snow::HandshakeState;

use crate::config::Config;
use crate::handshake::{self, Admission, FLAG_KEY_UPDATE, MAX_NOISE_MESSAGE, Params};
use crate::protection::PacketKeys;
use crate::ranges::RangeSet;
use crate::recovery::{Pacer, Rtt, SentMap};
use crate::stream::{RecvStream, SendStream};
use crate::wire;

/// Handshake progress.
pub(crate) enum Phase {
    /// Dialler waiting for RESPONSE.
    ClientHello {
        hs: Box<HandshakeState>,
        msg1: Vec<u8>,
        cookie: Vec<u8>,
        next_send: Instant,
        sends: u32,
    },
    /// Acceptor waiting for FINISH.
    ServerWait {
        hs: Box<HandshakeState>,
        response: Vec<u8>,
        resend: bool,
    },
    /// Keys established.
    Open,
}

/// Why a connection ended.
#[derive(Clone, Debug, PartialEq)]
pub enum Ended {
    /// Closed or aborted by this side.
    Local,
    /// The peer closed gracefully.
    PeerClosed,
    /// The peer aborted, or broke the protocol.
    Reset(String),
    /// The peer was silent past the dead-peer bound.
    Gone(Duration),
    /// The handshake failed.
    Handshake(String),
    /// The peer proved another id than the one dialled.
    WrongPeer {
        /// Dialled.
        expected: PeerId,
        /// Proved.
        actual: PeerId,
    },
    /// The handshake did not finish in time.
    Timeout(Duration),
}

/// What [`Connection::recv`] found.
#[derive(Debug)]
pub enum RecvPoll {
    /// A whole message.
    Message(Bytes),
    /// The peer closed gracefully and everything was delivered.
    End,
    /// Nothing yet.
    Pending,
}

/// Counters.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Counters {
    pub(crate) bytes_sent: u64,
    pub(crate) bytes_acked: u64,
    pub(crate) bytes_received: u64,
    pub(crate) messages_sent: u64,
    pub(crate) messages_received: u64,
    pub(crate) packets_sent: u64,
    pub(crate) packets_lost: u64,
    /// Datagrams dropped: undecryptable, replayed, too old.
    pub(crate) dropped: u64,
    /// Packets that failed authentication (towards the integrity limit).
    pub(crate) auth_failures: u64,
    /// Packets of the previous key phase that came after its key was discarded.
    pub(crate) old_key_dropped: u64,
}

/// One connection.
pub struct Connection {
    pub(crate) config: Config,
    pub(crate) is_client: bool,
    pub(crate) local_cid: u64,
    pub(crate) remote_cid: u64,
    pub(crate) remote_addr: SocketAddr,
    pub(crate) phase: Phase,
    pub(crate) hs_deadline: Instant,
    pub(crate) expected: Option<PeerId>,
    pub(crate) remote_id: Option<PeerId>,
    pub(crate) crypto: Option<PacketKeys>,
    pub(crate) finish: Option<Vec<u8>>,
    pub(crate) finish_at: Instant,
    pub(crate) max_message: usize,
    pub(crate) tx: [SendStream; 2],
    pub(crate) rx: [RecvStream; 2],
    pub(crate) max_data_pending: [bool; 2],
    // Packets sent.
    pub(crate) next_pn: u64,
    pub(crate) sent: SentMap,
    pub(crate) bytes_in_flight: u64,
    pub(crate) largest_acked: Option<u64>,
    pub(crate) last_eliciting_sent: Instant,
    pub(crate) loss_time: Option<Instant>,
    pub(crate) pto_count: u32,
    pub(crate) probes: u32,
    pub(crate) ping_pending: bool,
    pub(crate) rtt: Rtt,
    pub(crate) cc: Box<dyn CongestionController>,
    pub(crate) pacer: Pacer,
    pub(crate) pacing_wakeup: Option<Instant>,
    pub(crate) min_owd: Option<i64>,
    // Packets received.
    pub(crate) received: RangeSet,
    pub(crate) replay_floor: u64,
    pub(crate) largest_recv: Option<(u64, Instant, i64)>,
    pub(crate) ack_pending: u32,
    pub(crate) ack_deadline: Option<Instant>,
    pub(crate) ack_immediate: bool,
    pub(crate) last_recv: Instant,
    // Close.
    pub(crate) closing: bool,
    pub(crate) close_deadline: Instant,
    pub(crate) close_pending: Option<u8>,
    pub(crate) close_sent: bool,
    pub(crate) close_acked: bool,
    pub(crate) ended: Option<Ended>,
    pub(crate) ended_at: Instant,
    pub(crate) abandoned: bool,
    pub(crate) counters: Counters,
    pub(crate) plain: Vec<u8>,
    /// More received datagrams are about to be handled: hold back an ACK that would go out
    /// alone (not an immediate one), so a train of datagrams is acknowledged once.
    pub(crate) defer_ack: bool,
    /// This side's admission token and the check of the remote's.
    pub(crate) admission: Admission,
    /// The remote's admission token was refused: the handshake was aborted.
    pub(crate) admission_refused: bool,
    /// Anti-amplification (RFC 9000 §8.1), acceptor side: bytes received from and sent to the
    /// remote address while it is not validated (by a cookie or a FINISH that decrypts).
    pub(crate) amp_received: u64,
    pub(crate) amp_sent: u64,
    pub(crate) validated: bool,
    /// The remote performs key updates (it said so in its handshake parameters).
    pub(crate) peer_key_update: bool,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("local_cid", &self.local_cid)
            .field("remote", &self.remote_addr)
            .field("remote_id", &self.remote_id)
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}

impl Connection {
    fn new(
        config: Config,
        now: Instant,
        is_client: bool,
        local_cid: u64,
        remote_addr: SocketAddr,
        phase: Phase,
    ) -> Self {
        // Bytes in flight count whole datagrams, so the controller's segment is one datagram: a
        // smaller one would leave the window forever a fraction of a datagram short of growing
        // (controllers cap growth at what is in flight plus one segment).
        let mss = config.datagram() as u64;
        let window = config.effective_recv_window();
        Connection {
            config,
            is_client,
            local_cid,
            remote_cid: 0,
            remote_addr,
            phase,
            hs_deadline: now + config.handshake_timeout,
            expected: None,
            remote_id: None,
            crypto: None,
            finish: None,
            finish_at: now,
            max_message: config.max_message_size,
            tx: [
                SendStream::new(config.send_buffer, 0),
                SendStream::new(config.send_buffer, 0),
            ],
            rx: [
                RecvStream::new(window, config.max_message_size),
                RecvStream::new(window, config.max_message_size),
            ],
            max_data_pending: [false; 2],
            next_pn: 0,
            sent: SentMap::new(),
            bytes_in_flight: 0,
            largest_acked: None,
            last_eliciting_sent: now,
            loss_time: None,
            pto_count: 0,
            probes: 0,
            ping_pending: false,
            rtt: Rtt::new(config.initial_rtt),
            cc: config.cc.build(mss),
            pacer: Pacer::new(now),
            pacing_wakeup: None,
            min_owd: None,
            received: RangeSet::default(),
            replay_floor: 0,
            largest_recv: None,
            ack_pending: 0,
            ack_deadline: None,
            ack_immediate: false,
            last_recv: now,
            closing: false,
            close_deadline: Instant::MAX,
            close_pending: None,
            close_sent: false,
            close_acked: false,
            ended: None,
            ended_at: Instant::MAX,
            abandoned: false,
            counters: Counters::default(),
            plain: Vec::with_capacity(config.datagram()),
            defer_ack: false,
            admission: Admission::default(),
            admission_refused: false,
            amp_received: 0,
            amp_sent: 0,
            validated: is_client,
            peer_key_update: false,
        }
    }

    fn local_params(&self) -> Vec<u8> {
        Params {
            max_message: self.config.max_message_size as u32,
            recv_window: self.config.effective_recv_window(),
            flags: FLAG_KEY_UPDATE,
            token: self.admission.sendable_token(),
        }
        .encode()
    }

    /// A dialling connection; its INITIAL goes out on the first `poll_transmit`.
    pub(crate) fn client(
        config: Config,
        now: Instant,
        key: &handshake::Keypair,
        local_cid: u64,
        remote_addr: SocketAddr,
        expected: PeerId,
        admission: Admission,
    ) -> Result<Self, snow::Error> {
        let mut hs = handshake::initiator(key)?;
        let mut buf = [0u8; 128];
        let n = hs.write_message(&[], &mut buf)?;
        let phase = Phase::ClientHello {
            hs: Box::new(hs),
            msg1: buf[..n].to_vec(),
            cookie: Vec::new(),
            next_send: now,
            sends: 0,
        };
        let mut c = Connection::new(config, now, true, local_cid, remote_addr, phase);
        c.expected = Some(expected);
        c.admission = admission;
        Ok(c)
    }

    /// An accepting connection from a valid INITIAL of `initial_len` bytes (`validated`: it
    /// carried a valid cookie); returns it with RESPONSE queued.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn server(
        config: Config,
        now: Instant,
        key: &handshake::Keypair,
        local_cid: u64,
        remote_cid: u64,
        remote_addr: SocketAddr,
        msg1: &[u8],
        initial_len: usize,
        validated: bool,
        admission: Admission,
    ) -> Option<Self> {
        let mut hs = handshake::responder(key).ok()?;
        let mut payload = [0u8; 128];
        hs.read_message(msg1, &mut payload).ok()?;
        let mut c = Connection::new(config, now, false, local_cid, remote_addr, Phase::Open);
        c.admission = admission;
        let mut out = vec![0u8; MAX_NOISE_MESSAGE];
        let n = hs.write_message(&c.local_params(), &mut out).ok()?;
        let response = wire::response(remote_cid, local_cid, &out[..n]);
        c.phase = Phase::ServerWait {
            hs: Box::new(hs),
            response,
            resend: true,
        };
        c.remote_cid = remote_cid;
        c.amp_received = initial_len as u64;
        c.validated = validated;
        Some(c)
    }

    fn apply_params(&mut self, p: &Params<'_>) {
        self.peer_key_update = p.flags & FLAG_KEY_UPDATE != 0;
        self.max_message = self.max_message.min(p.max_message as usize);
        for s in &mut self.tx {
            s.max_data = s.max_data.max(p.recv_window);
        }
    }

    /// RETRY received while dialling: resend INITIAL with the cookie at once.
    pub(crate) fn handle_retry(&mut self, now: Instant, c: &[u8]) {
        if let Phase::ClientHello {
            cookie, next_send, ..
        } = &mut self.phase
            && cookie.is_empty()
        {
            *cookie = c.to_vec();
            *next_send = now;
        }
    }

    /// VERSION received while dialling.
    pub(crate) fn handle_version(&mut self, now: Instant, versions: &[u32]) {
        if matches!(self.phase, Phase::ClientHello { .. })
            && !versions
                .iter()
                .any(|v| wire::SUPPORTED_VERSIONS.contains(v))
        {
            self.end(
                now,
                Ended::Handshake(format!("no common version (peer speaks {versions:x?})")),
            );
        }
    }

    /// RESPONSE received while dialling.
    pub(crate) fn handle_response(&mut self, now: Instant, src_cid: u64, noise: &[u8]) {
        let Phase::ClientHello { hs, .. } = &mut self.phase else {
            return;
        };
        let mut payload = vec![0u8; MAX_NOISE_MESSAGE];
        let n = match hs.read_message(noise, &mut payload) {
            Ok(n) => n,
            Err(e) => {
                self.end(now, Ended::Handshake(format!("bad RESPONSE: {e}")));
                return;
            }
        };
        let Some(actual) = hs.get_remote_static().map(handshake::peer_id) else {
            self.end(now, Ended::Handshake("no static key".into()));
            return;
        };
        if let Some(expected) = self.expected
            && expected != actual
        {
            self.end(now, Ended::WrongPeer { expected, actual });
            return;
        }
        let Some(params) = Params::decode(&payload[..n]) else {
            self.end(now, Ended::Handshake("bad transport parameters".into()));
            return;
        };
        if !self.admission.admits(&actual, params.token) {
            // Refused before FINISH: the responder never learns who dialled.
            self.admission_refused = true;
            self.end(now, Ended::Handshake("admission token refused".into()));
            return;
        }
        let ours = self.local_params();
        let Phase::ClientHello { hs, .. } = &mut self.phase else {
            return;
        };
        let mut out = vec![0u8; MAX_NOISE_MESSAGE];
        let written = hs.write_message(&ours, &mut out);
        let phase = std::mem::replace(&mut self.phase, Phase::Open);
        let (Ok(n), Phase::ClientHello { mut hs, .. }) = (written, phase) else {
            self.end(now, Ended::Handshake("cannot write FINISH".into()));
            return;
        };
        match PacketKeys::from_handshake(&mut hs, true) {
            Some(k) => self.crypto = Some(k),
            None => {
                self.end(now, Ended::Handshake("split: no packet keys".into()));
                return;
            }
        }
        self.remote_cid = src_cid;
        self.remote_id = Some(actual);
        self.finish = Some(wire::finish(src_cid, &out[..n]));
        self.finish_at = now;
        self.last_recv = now;
        self.apply_params(&params);
    }

    /// FINISH received while accepting. Returns whether the connection just opened.
    pub(crate) fn handle_finish(&mut self, now: Instant, noise: &[u8]) -> bool {
        let Phase::ServerWait { hs, .. } = &mut self.phase else {
            return false;
        };
        let mut payload = vec![0u8; MAX_NOISE_MESSAGE];
        let Ok(n) = hs.read_message(noise, &mut payload) else {
            self.end(now, Ended::Handshake("bad FINISH".into()));
            return false;
        };
        let (Some(id), Some(params)) = (
            hs.get_remote_static().map(handshake::peer_id),
            Params::decode(&payload[..n]),
        ) else {
            self.end(now, Ended::Handshake("bad FINISH payload".into()));
            return false;
        };
        let Phase::ServerWait { mut hs, .. } = std::mem::replace(&mut self.phase, Phase::Open)
        else {
            return false;
        };
        match PacketKeys::from_handshake(&mut hs, false) {
            Some(k) => self.crypto = Some(k),
            None => {
                self.end(now, Ended::Handshake("split: no packet keys".into()));
                return false;
            }
        }
        self.remote_id = Some(id);
        self.last_recv = now;
        // A FINISH that decrypts proves the address received our RESPONSE.
        self.validated = true;
        if !self.admission.admits(&id, params.token) {
            // Tell the dialler (its `dial` may have returned already: it spoke last) and forget
            // the connection; `accept` never sees it.
            self.admission_refused = true;
            self.abandoned = true;
            self.close_pending = Some(wire::CLOSE_REFUSED);
            self.end(now, Ended::Handshake("admission token refused".into()));
            return false;
        }
        self.apply_params(&params);
        true
    }

    /// A duplicate INITIAL of `len` bytes: the RESPONSE was probably lost. Returns `false` when
    /// the RESPONSE may not go again (it would exceed 3x what the unvalidated address sent).
    pub(crate) fn handle_initial_again(&mut self, len: usize) -> bool {
        self.amp_received = self.amp_received.saturating_add(len as u64);
        if let Phase::ServerWait {
            resend, response, ..
        } = &mut self.phase
        {
            if !self.validated && self.amp_sent + response.len() as u64 > 3 * self.amp_received {
                return false;
            }
            *resend = true;
        }
        true
    }

    pub(crate) fn end(&mut self, now: Instant, why: Ended) {
        if self.ended.is_none() {
            // After a graceful close by the peer, what it sent is still to be read.
            if why != Ended::PeerClosed {
                self.rx[0].discard();
                self.rx[1].discard();
            }
            self.ended = Some(why);
            self.ended_at = now;
        }
    }

    /// Whether the handshake is done.
    pub fn is_open(&self) -> bool {
        matches!(self.phase, Phase::Open) && self.crypto.is_some()
    }

    /// Why the connection ended, if it did.
    pub fn ended(&self) -> Option<&Ended> {
        self.ended.as_ref()
    }

    /// The remote's proved id (after the handshake).
    pub fn remote_peer_id(&self) -> Option<PeerId> {
        self.remote_id
    }

    /// The remote's address.
    pub fn remote_addr(&self) -> SocketAddr {
        self.remote_addr
    }

    /// The negotiated maximum message size.
    pub fn max_message_size(&self) -> usize {
        self.max_message
    }

    /// The error an operation on an ended connection gets.
    pub fn error(&self) -> Option<TransportError> {
        let peer = self
            .remote_id
            .or(self.expected)
            .unwrap_or(PeerId::from_bytes([0; 32]));
        Some(match self.ended.as_ref()? {
            Ended::Local => TransportError::Closed,
            Ended::PeerClosed => TransportError::ClosedByPeer,
            Ended::Reset(r) => TransportError::Reset { reason: r.clone() },
            Ended::Gone(d) => TransportError::PeerGone {
                peer,
                silent_for: *d,
            },
            Ended::Handshake(r) => TransportError::Handshake {
                addr: self.remote_addr.to_string(),
                reason: r.clone(),
            },
            Ended::WrongPeer { expected, actual } => TransportError::WrongPeer {
                expected: *expected,
                actual: *actual,
            },
            Ended::Timeout(d) => TransportError::Timeout {
                what: "handshake",
                after: *d,
            },
        })
    }

    /// Queues a message. `Ok(false)`: the class's send buffer is full, try again after progress.
    pub fn send(&mut self, msg: &[u8], class: Class) -> Result<bool, TransportError> {
        if msg.len() > self.max_message {
            return Err(TransportError::MessageTooLarge {
                len: msg.len(),
                max: self.max_message,
            });
        }
        if self.closing {
            return Err(TransportError::Closed);
        }
        if let Some(e) = self.error() {
            return Err(e);
        }
        let s = &mut self.tx[class_index(class)];
        if !s.can_accept(msg.len()) {
            return Ok(false);
        }
        s.write(msg);
        self.counters.bytes_sent += msg.len() as u64;
        self.counters.messages_sent += 1;
        Ok(true)
    }

    /// The next message (control first).
    pub fn recv(&mut self) -> Result<RecvPoll, TransportError> {
        if self.closing {
            return Err(TransportError::Closed);
        }
        match &self.ended {
            None | Some(Ended::PeerClosed) => {}
            Some(_) => return Err(self.error().unwrap_or(TransportError::Closed)),
        }
        for c in 0..2 {
            if let Some(m) = self.rx[c].pop() {
                if self.rx[c].credit_update().is_some() {
                    self.max_data_pending[c] = true;
                }
                self.counters.bytes_received += m.len() as u64;
                self.counters.messages_received += 1;
                return Ok(RecvPoll::Message(m));
            }
        }
        Ok(if self.ended.is_some() {
            RecvPoll::End
        } else {
            RecvPoll::Pending
        })
    }

    /// Whether a message waits for `recv`.
    pub fn has_message(&self) -> bool {
        self.rx.iter().any(RecvStream::has_message)
    }

    /// Starts a graceful close: queued messages are delivered (within the close timeout), then
    /// the peer is told.
    pub fn close(&mut self, now: Instant) {
        if self.closing || self.ended.is_some() {
            return;
        }
        self.closing = true;
        self.close_deadline = now + self.config.close_timeout;
        self.rx[0].discard();
        self.rx[1].discard();
        self.progress_close(now);
    }

    /// Ends the connection at once; the peer is told with one best-effort packet.
    pub fn abort(&mut self, now: Instant) {
        if self.ended.is_none() {
            if self.is_open() {
                self.close_pending = Some(wire::CLOSE_ABORT);
            }
            self.end(now, Ended::Local);
        }
    }

    /// Marks the connection as having no handle left; it is dropped once ended.
    pub(crate) fn abandon(&mut self, now: Instant) {
        self.abandoned = true;
        self.abort(now);
    }

    pub(crate) fn progress_close(&mut self, now: Instant) {
        if !self.closing || self.ended.is_some() {
            return;
        }
        if self.close_acked || !self.is_open() {
            self.end(now, Ended::Local);
        } else if !self.close_sent && self.tx.iter().all(SendStream::all_acked) {
            self.close_sent = true;
            self.close_pending = Some(wire::CLOSE_GRACEFUL);
        }
    }

    /// Whether the endpoint may forget the connection.
    pub(crate) fn is_drained(&self, now: Instant) -> bool {
        self.ended.is_some()
            && self.close_pending.is_none()
            && (!self.is_open() || now >= self.ended_at + self.rtt.pto() * 3)
            && (self.abandoned || !self.is_open())
    }

    /// Changes the congestion controller's run-time priority.
    pub fn set_cc_priority(&mut self, p: f64) -> Result<(), TransportError> {
        self.cc
            .set_priority(p)
            .map_err(|_| TransportError::Unsupported("run-time congestion-control priority"))
    }

    /// Current statistics.
    pub fn stats(&self) -> ConnectionStats {
        ConnectionStats {
            rtt: self.rtt.smoothed,
            min_rtt: self.rtt.min,
            cwnd: Some(self.cc.window()),
            bytes_in_flight: Some(self.bytes_in_flight),
            bytes_sent: self.counters.bytes_sent,
            bytes_acked: Some(self.counters.bytes_acked),
            bytes_received: self.counters.bytes_received,
            messages_sent: self.counters.messages_sent,
            messages_received: self.counters.messages_received,
            packets_lost: Some(self.counters.packets_lost),
            packets_sent: Some(self.counters.packets_sent),
            cc_priority: self.cc.priority(),
        }
    }

    /// A one-line dump of the recovery state, for debugging.
    #[doc(hidden)]
    pub fn debug_summary(&self) -> String {
        format!(
            "open={} ended={:?} closing={} pn={} sent={} inflight={} cwnd={} la={:?} loss_time={:?} pto_count={} probes={} ack_pending={} recv_ranges={} floor={} dropped={} tx0={:?} tx1={:?} srtt={:?} pacing={:?}",
            self.is_open(),
            self.ended,
            self.closing,
            self.next_pn,
            self.sent.len(),
            self.bytes_in_flight,
            self.cc.window(),
            self.largest_acked,
            self.loss_time,
            self.pto_count,
            self.probes,
            self.ack_pending,
            self.received.len(),
            self.replay_floor,
            self.counters.dropped,
            self.tx[0].debug(),
            self.tx[1].debug(),
            self.rtt.smoothed,
            self.pacing_wakeup,
        )
    }

    /// Datagrams dropped so far as undecryptable, replayed or too old.
    pub fn dropped_datagrams(&self) -> u64 {
        self.counters.dropped
    }

    /// Key updates so far (the current key generation; see `protection.rs`).
    pub fn key_updates(&self) -> u64 {
        self.crypto.as_ref().map_or(0, |k| k.generation())
    }

    /// Packets dropped because they came under the previous key after its grace period.
    pub fn old_key_dropped(&self) -> u64 {
        self.counters.old_key_dropped
    }

    /// Packets that failed authentication (the integrity limit counts these).
    pub fn auth_failures(&self) -> u64 {
        self.counters.auth_failures
    }

    /// Out-of-order bytes held for reassembly, per class (control, data): never more than the
    /// receive window each.
    pub fn reassembly_buffered(&self) -> [u64; 2] {
        [self.rx[0].buffered(), self.rx[1].buffered()]
    }

    /// Out-of-order segments dropped because the receive window's worth was already held.
    pub fn reassembly_dropped(&self) -> u64 {
        self.rx[0].dropped + self.rx[1].dropped
    }

    /// The next time [`Connection::handle_timeout`] must run.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut t = Instant::MAX;
        match &self.phase {
            // An ended dialler sends nothing more: its resend time must not keep waking us.
            Phase::ClientHello { next_send, .. } if self.ended.is_none() => t = t.min(*next_send),
            Phase::ClientHello { .. } => {}
            Phase::ServerWait { .. } => {}
            Phase::Open => {}
        }
        if !self.is_open() {
            if self.ended.is_none() {
                t = t.min(self.hs_deadline);
            }
            return Some(t);
        }
        if self.ack_pending > 0
            && let Some(d) = self.ack_deadline
        {
            t = t.min(d);
        }
        if self.ended.is_some() {
            if self.abandoned && self.close_pending.is_none() {
                // When `is_drained` will say yes, so the endpoint forgets it then.
                t = t.min(
                    self.ended_at
                        .checked_add(self.rtt.pto() * 3)
                        .unwrap_or(Instant::MAX),
                );
            }
            return (t != Instant::MAX).then_some(t);
        }
        if self.finish.is_some() {
            t = t.min(self.finish_at);
        }
        if let Some(l) = self.loss_time {
            t = t.min(l);
        } else if self.bytes_in_flight > 0 {
            t = t.min(self.pto_deadline());
        }
        if let Some(p) = self.pacing_wakeup {
            t = t.min(p);
        }
        t = t.min(self.last_recv + self.config.dead_peer_timeout);
        // As `handle_timeout`: only an idle connection sends keep-alives (with data in flight,
        // the probe timeout probes). Asking to be woken for it regardless woke the driver for
        // nothing until the probe timeout — a busy loop once its backoff outgrew the interval.
        if self.bytes_in_flight == 0 {
            t = t.min(self.last_eliciting_sent + self.config.keep_alive());
        }
        if self.closing {
            t = t.min(self.close_deadline);
        }
        Some(t)
    }

    #[doc(hidden)]
    pub fn pto_deadline(&self) -> Instant {
        let backoff = 1u32 << self.pto_count.min(10);
        self.last_eliciting_sent + self.rtt.pto() * backoff
    }

    /// Runs the timers that are due.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.ended.is_some() {
            return;
        }
        if !self.is_open() {
            if now >= self.hs_deadline {
                self.end(now, Ended::Timeout(self.config.handshake_timeout));
            }
            return;
        }
        let silent = now.saturating_duration_since(self.last_recv);
        if silent >= self.config.dead_peer_timeout {
            self.end(now, Ended::Gone(silent));
            return;
        }
        if self.closing && now >= self.close_deadline {
            self.end(now, Ended::Local);
            return;
        }
        if self.loss_time.is_some_and(|l| now >= l) {
            self.detect_lost(now);
        } else if self.bytes_in_flight > 0 && now >= self.pto_deadline() {
            // RFC 9002 §6.2.4: "When a PTO timer expires, a sender MUST send at least one
            // ack-eliciting packet ... as a probe".
            self.pto_count += 1;
            self.probes = 1;
            self.ping_pending = true;
            if self.pto_count == 3 {
                self.cc.on_timeout(now);
            }
        }
        if self.bytes_in_flight == 0 && now >= self.last_eliciting_sent + self.config.keep_alive() {
            self.ping_pending = true;
        }
        self.progress_close(now);
    }
}

pub(crate) fn class_index(c: Class) -> usize {
    match c {
        Class::Control => 0,
        Class::Data => 1,
    }
}
