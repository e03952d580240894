//! The hive-core transport conformance suite, unchanged, against the QUIC transport on loopback:
//! once with the default controller (hive-cc DTL inside s2n-quic) and once with s2n-quic's Cubic.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use hive_core::testkit::transport::{self, TransportHarness};
use hive_core::transport::Transport;
use hive_transport_quic::{Config, Congestion, QuicTransport};
use parking_lot::Mutex;

/// Endpoints on 127.0.0.1 with a 2 s dead-peer bound (to keep the suite quick).
struct QuicHarness {
    congestion: Congestion,
    endpoints: Mutex<Vec<Arc<QuicTransport>>>,
}

impl QuicHarness {
    fn new(congestion: Congestion) -> Self {
        QuicHarness {
            congestion,
            endpoints: Mutex::new(Vec::new()),
        }
    }
}

#[async_trait]
impl TransportHarness for QuicHarness {
    async fn endpoint(&self) -> Arc<dyn Transport> {
        let config = Config {
            congestion: self.congestion,
            dead_peer_timeout: Duration::from_secs(2),
            handshake_timeout: Duration::from_secs(3),
            close_timeout: Duration::from_secs(3),
            ..Config::default()
        };
        let loopback = "127.0.0.1:0".parse().expect("addr");
        let e = QuicTransport::bind(loopback, config).await.expect("bind");
        self.endpoints.lock().push(e.clone());
        e
    }

    async fn kill(&self, endpoint: &Arc<dyn Transport>) {
        let id = endpoint.local_peer_id();
        let found = self
            .endpoints
            .lock()
            .iter()
            .find(|e| e.local_peer_id() == id)
            .cloned();
        match found {
            Some(e) => e.halt(),
            None => panic!("QuicHarness::kill: not an endpoint of this harness"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quic_transport_with_hive_dtl_passes_the_suite() {
    let h = QuicHarness::new(Congestion::Hive(hive_cc::Algorithm::Dtl(1.0)));
    transport::run_all(&h).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quic_transport_with_s2n_cubic_passes_the_suite() {
    let h = QuicHarness::new(Congestion::S2nCubic);
    transport::run_all(&h).await;
}
