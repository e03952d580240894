//! Settings of an endpoint.

use hive_cc::Algorithm;
use hive_core::time::Duration;

/// Settings of a UDP endpoint and of its connections.
#[derive(Clone, Copy, Debug)]
pub struct Config {
    /// Largest message accepted by `send` (the connection's maximum is the smaller of both
    /// sides'). Default 4 MiB.
    pub max_message_size: usize,
    /// Bytes each class may hold unacknowledged before `send` waits. Default 4 MiB.
    pub send_buffer: usize,
    /// Receive window per class, bytes (raised to at least `max_message_size` + 4 + 64 KiB so a
    /// whole message always fits). Default 8 MiB.
    pub recv_window: u64,
    /// Congestion controller of new connections. Default DTL at priority 1 (TCP-fair).
    pub cc: Algorithm,
    /// A peer silent this long is reported gone ([`hive_core::TransportError::PeerGone`]);
    /// keep-alives go out every quarter of it. Default 10 s.
    pub dead_peer_timeout: Duration,
    /// A handshake not done by then fails. Default 5 s.
    pub handshake_timeout: Duration,
    /// `close` gives up delivering queued messages after this. Default 5 s.
    pub close_timeout: Duration,
    /// RTT assumed before the first sample. Default 100 ms.
    pub initial_rtt: Duration,
    /// Datagram size (UDP payload). Default 1200. Datagrams leave with the don't-fragment bit
    /// set (the driver's socket layer, quinn-udp, forbids IP fragmentation): a size above the
    /// path MTU is dropped at the sender, not fragmented.
    pub datagram_size: usize,
    /// Demand a retry cookie of every new client (2 RTT handshakes). Default false.
    pub require_retry: bool,
    /// Demand cookies once this many handshakes are half-open. Default 64.
    pub retry_threshold: usize,
    /// Most connections an endpoint holds (established, handshaking and draining, inbound and
    /// outbound); an INITIAL past it is dropped unanswered and counted, and `connect` fails.
    /// Default 1024 (quinn's `ServerConfig::max_incoming` bounds its half-open `Incoming`s the
    /// same way).
    pub max_connections: usize,
    /// Most inbound handshakes in progress (half-open, state allocated); past it an INITIAL is
    /// dropped and counted even with a valid cookie. Default 256.
    pub max_handshakes: usize,
    /// Once three quarters of `max_handshakes` are taken, an IPv4 /24 or IPv6 /64 holding this
    /// many gets no more: the last quarter is kept for other networks, so that a flood from a
    /// few networks leaves handshakes for everyone else (and a burst from one network below
    /// that is not slowed). Default 32 (an eighth of `max_handshakes`).
    pub max_handshakes_per_prefix: usize,
    /// Handshakes (state allocations) each source IP address may start per second, steady
    /// rate; `0.0` turns per-address limiting off. Default 50 (many agents may share one address
    /// behind a NAT).
    pub handshake_rate_per_addr: f64,
    /// Burst of handshakes one source IP address may start at once. Default 200.
    pub handshake_burst_per_addr: u32,
    /// As `handshake_rate_per_addr`, for a whole IPv4 /24 or IPv6 /64. Default 200.
    pub handshake_rate_per_prefix: f64,
    /// As `handshake_burst_per_addr`, for a whole IPv4 /24 or IPv6 /64. Default 400.
    pub handshake_burst_per_prefix: u32,
    /// Source addresses and prefixes whose rate the endpoint remembers (least recently used
    /// forgotten first). Default 4096.
    pub rate_table_size: usize,
    /// Packets protected under one key before a key update is started. The update completes
    /// once a packet under the current key is acknowledged (a round trip later); a connection
    /// that reaches twice this count under one key (its peer does not update keys) is closed.
    /// Default 2^22, so that twice it is RFC 9001 §6.6's confidentiality limit: "For
    /// AEAD_AES_128_GCM and AEAD_AES_256_GCM, the confidentiality limit is 2^23 encrypted
    /// packets".
    pub key_update_interval: u64,
    /// Packets that failed authentication a connection tolerates before closing (RFC 9001
    /// §6.6's integrity limit for AES-GCM is 2^52). Default 2^52.
    pub aead_integrity_limit: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_message_size: 4 << 20,
            send_buffer: 4 << 20,
            recv_window: 8 << 20,
            cc: Algorithm::Dtl(1.0),
            dead_peer_timeout: Duration::from_secs(10),
            handshake_timeout: Duration::from_secs(5),
            close_timeout: Duration::from_secs(5),
            initial_rtt: Duration::from_millis(100),
            datagram_size: 1200,
            require_retry: false,
            retry_threshold: 64,
            max_connections: 1024,
            max_handshakes: 256,
            max_handshakes_per_prefix: 32,
            handshake_rate_per_addr: 50.0,
            handshake_burst_per_addr: 200,
            handshake_rate_per_prefix: 200.0,
            handshake_burst_per_prefix: 400,
            rate_table_size: 4096,
            key_update_interval: 1 << 22,
            aead_integrity_limit: 1 << 52,
        }
    }
}

impl Config {
    pub(crate) fn effective_recv_window(&self) -> u64 {
        self.recv_window
            .max(self.max_message_size as u64 + 4 + (64 << 10))
    }

    pub(crate) fn keep_alive(&self) -> Duration {
        self.dead_peer_timeout / 4
    }

    pub(crate) fn datagram(&self) -> usize {
        self.datagram_size.clamp(256, 65_000)
    }
}
