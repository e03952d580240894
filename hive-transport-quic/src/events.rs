//! What s2n-quic tells us about each connection, through its event subscriber: the peer's
//! certificate (hence its [`PeerId`]), recovery metrics and packet counters for
//! [`ConnectionStats`](hive_core::transport::ConnectionStats), and the link between a connection and
//! the hive-cc controller of its path (for `set_cc_priority`).
//!
//! s2n-quic creates a connection's event context and then, in the same call on the endpoint's
//! task, the congestion controller of its first path (`endpoint/initial.rs` and
//! `endpoint/mod.rs` in s2n-quic-transport 0.91). [`Subscriber::create_connection_context`]
//! leaves the new connection's [`Knob`] in a slot shared with the controller endpoint
//! ([`crate::cc::HiveCcEndpoint`]), which takes it for the controller it builds next.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use hive_core::PeerId;
use parking_lot::Mutex;
use s2n_quic::provider::event::{ConnectionInfo, ConnectionMeta, events};

use crate::identity::peer_id_of_certificate;

/// A run-time priority shared between a connection and its path's congestion controller.
#[derive(Debug)]
pub struct Knob {
    /// Whether the controller has a priority (set by the controller when it takes the knob).
    supported: AtomicBool,
    /// The requested priority (`f64` bits) and a generation bumped on every request.
    requested: AtomicU64,
    generation: AtomicU64,
    /// The controller's current priority (`f64` bits), NaN when it has none.
    current: AtomicU64,
}

impl Default for Knob {
    fn default() -> Self {
        Knob {
            supported: AtomicBool::new(false),
            requested: AtomicU64::new(f64::NAN.to_bits()),
            generation: AtomicU64::new(0),
            current: AtomicU64::new(f64::NAN.to_bits()),
        }
    }
}

impl Knob {
    /// Called by the controller: whether it has a priority and its value.
    pub fn attach(&self, priority: Option<f64>) {
        self.supported.store(priority.is_some(), Ordering::Release);
        self.report(priority);
    }

    /// Whether a controller with a priority is attached.
    pub fn supported(&self) -> bool {
        self.supported.load(Ordering::Acquire)
    }

    /// Asks the controller to change its priority from its next event on.
    pub fn request(&self, priority: f64) {
        self.requested.store(priority.to_bits(), Ordering::Release);
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// The request newer than `seen`, if any, with its generation.
    pub fn pending(&self, seen: u64) -> Option<(u64, f64)> {
        let g = self.generation.load(Ordering::Acquire);
        (g != seen).then(|| (g, f64::from_bits(self.requested.load(Ordering::Acquire))))
    }

    /// The controller reports its current priority.
    pub fn report(&self, priority: Option<f64>) {
        self.current
            .store(priority.unwrap_or(f64::NAN).to_bits(), Ordering::Release);
    }

    /// The controller's current priority.
    pub fn current(&self) -> Option<f64> {
        let p = f64::from_bits(self.current.load(Ordering::Acquire));
        (!p.is_nan()).then_some(p)
    }
}

/// Where a new connection's knob waits for its controller.
pub(crate) type KnobSlot = Arc<Mutex<Option<Arc<Knob>>>>;

/// Per-connection state the event subscriber fills in.
#[derive(Debug, Default)]
pub(crate) struct ConnShared {
    /// The id derived from the peer's certificate, once the handshake completed.
    pub(crate) peer: Mutex<Option<PeerId>>,
    pub(crate) knob: Arc<Knob>,
    pub(crate) smoothed_rtt_us: AtomicU64,
    pub(crate) min_rtt_us: AtomicU64,
    pub(crate) cwnd: AtomicU64,
    pub(crate) bytes_in_flight: AtomicU64,
    pub(crate) packets_sent: AtomicU64,
    pub(crate) packets_lost: AtomicU64,
    /// Whether recovery metrics arrived at least once.
    pub(crate) have_metrics: AtomicBool,
}

impl ConnShared {
    pub(crate) fn rtt(&self) -> Option<(Duration, Duration)> {
        self.have_metrics.load(Ordering::Acquire).then(|| {
            (
                Duration::from_micros(self.smoothed_rtt_us.load(Ordering::Relaxed)),
                Duration::from_micros(self.min_rtt_us.load(Ordering::Relaxed)),
            )
        })
    }
}

/// The connection context type: shared with the [`QuicConnection`](crate::QuicConnection).
pub(crate) type Context = Arc<ConnShared>;

/// The event subscriber of one endpoint.
#[derive(Debug)]
pub(crate) struct Subscriber {
    pub(crate) slot: KnobSlot,
}

impl s2n_quic::provider::event::Subscriber for Subscriber {
    type ConnectionContext = Context;

    fn create_connection_context(
        &mut self,
        _meta: &ConnectionMeta,
        _info: &ConnectionInfo<'_>,
    ) -> Self::ConnectionContext {
        let shared = Arc::new(ConnShared::default());
        *self.slot.lock() = Some(shared.knob.clone());
        shared
    }

    fn on_tls_exporter_ready(
        &mut self,
        context: &mut Self::ConnectionContext,
        _meta: &ConnectionMeta,
        event: &events::TlsExporterReady<'_>,
    ) {
        // The peer's verified chain; the end-entity certificate comes first. Our verifiers already
        // rejected certificates that do not parse, so a failure here leaves the id unknown and
        // the connection is refused by the transport.
        let Ok(chain) = event.session.peer_cert_chain_der() else {
            return;
        };
        let Some(cert) = chain.into_iter().next() else {
            return;
        };
        let cert = rustls::pki_types::CertificateDer::from(cert);
        if let Ok(id) = peer_id_of_certificate(&cert) {
            *context.peer.lock() = Some(id);
        }
    }

    fn on_recovery_metrics(
        &mut self,
        context: &mut Self::ConnectionContext,
        _meta: &ConnectionMeta,
        event: &events::RecoveryMetrics<'_>,
    ) {
        let us = |d: Duration| d.as_micros().min(u64::MAX as u128) as u64;
        context
            .smoothed_rtt_us
            .store(us(event.smoothed_rtt), Ordering::Relaxed);
        context
            .min_rtt_us
            .store(us(event.min_rtt), Ordering::Relaxed);
        context
            .cwnd
            .store(event.congestion_window.into(), Ordering::Relaxed);
        context
            .bytes_in_flight
            .store(event.bytes_in_flight.into(), Ordering::Relaxed);
        context.have_metrics.store(true, Ordering::Release);
    }

    fn on_packet_sent(
        &mut self,
        context: &mut Self::ConnectionContext,
        _meta: &ConnectionMeta,
        _event: &events::PacketSent,
    ) {
        context.packets_sent.fetch_add(1, Ordering::Relaxed);
    }

    fn on_packet_lost(
        &mut self,
        context: &mut Self::ConnectionContext,
        _meta: &ConnectionMeta,
        _event: &events::PacketLost<'_>,
    ) {
        context.packets_lost.fetch_add(1, Ordering::Relaxed);
    }
}

/// Drops every datagram in and out of an endpoint once halted — a crashed process as its peers
/// see it (the conformance suite's `kill`).
#[derive(Debug)]
pub(crate) struct Halt(pub(crate) Arc<AtomicBool>);

impl s2n_quic_core::packet::interceptor::Interceptor for Halt {
    fn intercept_rx_datagram<'a>(
        &mut self,
        _subject: &events::Subject,
        _datagram: &s2n_quic_core::packet::interceptor::Datagram<'_>,
        payload: s2n_quic_core::packet::interceptor::DecoderBufferMut<'a>,
    ) -> s2n_quic_core::packet::interceptor::DecoderBufferMut<'a> {
        if self.0.load(Ordering::Relaxed) {
            // An empty buffer decodes to no packet: the datagram is dropped.
            return s2n_quic_core::packet::interceptor::DecoderBufferMut::new(&mut []);
        }
        payload
    }

    fn intercept_tx_datagram(
        &mut self,
        _subject: &events::Subject,
        _datagram: &s2n_quic_core::packet::interceptor::Datagram<'_>,
        payload: &mut s2n_quic_core::packet::interceptor::EncoderBuffer<'_>,
    ) {
        if self.0.load(Ordering::Relaxed) {
            // s2n-quic skips a datagram whose buffer the interceptor cleared.
            payload.set_position(0);
        }
    }
}
