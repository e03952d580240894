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
    /// Demand cookies once this many handshakes are half-open. Default 256.
    pub retry_threshold: usize,
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
            retry_threshold: 256,
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
