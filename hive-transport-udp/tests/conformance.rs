//! The hive-core transport conformance suite, unchanged, against the UDP transport on loopback.

use std::sync::Arc;

use async_trait::async_trait;
use hive_core::testkit::transport::{self, TransportHarness};
use hive_core::time::Duration;
use hive_core::transport::Transport;
use hive_transport_udp::{Config, UdpTransport};
use parking_lot::Mutex;

/// Endpoints on 127.0.0.1 with a 2 s dead-peer bound (to keep the suite quick).
#[derive(Default)]
struct UdpHarness {
    endpoints: Mutex<Vec<Arc<UdpTransport>>>,
}

fn config() -> Config {
    Config {
        dead_peer_timeout: Duration::from_secs(2),
        handshake_timeout: Duration::from_secs(3),
        close_timeout: Duration::from_secs(3),
        ..Config::default()
    }
}

#[async_trait]
impl TransportHarness for UdpHarness {
    async fn endpoint(&self) -> Arc<dyn Transport> {
        let loopback = "127.0.0.1:0".parse().expect("addr");
        let e = UdpTransport::bind(loopback, config()).await.expect("bind");
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
            None => panic!("UdpHarness::kill: not an endpoint of this harness"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_transport_passes_the_suite() {
    transport::run_all(&UdpHarness::default()).await;
}
