//! The transport conformance suite run against the in-memory reference transport.
#![cfg(feature = "testkit")]

use hive_core::testkit::memory::MemoryHarness;
use hive_core::testkit::transport;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_transport_passes_the_suite() {
    transport::run_all(&MemoryHarness::default()).await;
}

// The suite must also catch broken transports: wrap the memory transport in faults and check the
// right check fails.
mod broken {
    use std::net::SocketAddr;
    use std::sync::Arc;

    use async_trait::async_trait;
    use bytes::Bytes;
    use hive_core::testkit::memory::MemoryHarness;
    use hive_core::testkit::transport::{self, TransportHarness};
    use hive_core::time::Duration;
    use hive_core::transport::{Class, Connection, ConnectionStats, DialTarget, Transport};
    use hive_core::{PeerAddr, PeerId, TransportError};

    #[derive(Clone, Copy, Debug)]
    enum Fault {
        /// Every message goes in the data class: no priority.
        NoPriority,
        /// `kill` does nothing: the peer never learns.
        DeafToDeath,
    }

    struct Harness {
        inner: MemoryHarness,
        fault: Fault,
        /// Every connection, kept alive so that dropping one in the suite stays silent.
        held: Held,
    }

    type Held = Arc<parking_lot::Mutex<Vec<Arc<dyn Connection>>>>;

    #[derive(Debug)]
    struct T(Arc<dyn Transport>, Fault, Held);
    #[derive(Debug)]
    struct C(Arc<dyn Connection>, Fault);

    #[async_trait]
    impl TransportHarness for Harness {
        async fn endpoint(&self) -> Arc<dyn Transport> {
            Arc::new(T(
                self.inner.endpoint().await,
                self.fault,
                self.held.clone(),
            ))
        }
        async fn kill(&self, _e: &Arc<dyn Transport>) {
            match self.fault {
                Fault::DeafToDeath => {}
                Fault::NoPriority => unreachable!("not used by this test"),
            }
        }
        fn slack(&self) -> Duration {
            Duration::from_millis(500)
        }
    }

    #[async_trait]
    impl Transport for T {
        fn name(&self) -> &'static str {
            "broken"
        }
        fn local_peer_id(&self) -> PeerId {
            self.0.local_peer_id()
        }
        fn local_addrs(&self) -> Vec<PeerAddr> {
            self.0.local_addrs()
        }
        async fn dial(&self, t: &DialTarget) -> Result<Arc<dyn Connection>, TransportError> {
            let c = self.0.dial(t).await?;
            self.2.lock().push(c.clone());
            Ok(Arc::new(C(c, self.1)))
        }
        async fn accept(&self) -> Result<Arc<dyn Connection>, TransportError> {
            let c = self.0.accept().await?;
            self.2.lock().push(c.clone());
            Ok(Arc::new(C(c, self.1)))
        }
        fn dead_peer_timeout(&self) -> Duration {
            Duration::from_millis(200)
        }
        async fn shutdown(&self) {
            self.0.shutdown().await
        }
    }

    #[async_trait]
    impl Connection for C {
        fn remote_peer_id(&self) -> PeerId {
            self.0.remote_peer_id()
        }
        fn remote_addr(&self) -> Option<SocketAddr> {
            None
        }
        fn max_message_size(&self) -> usize {
            self.0.max_message_size()
        }
        async fn send(&self, m: Bytes, class: Class) -> Result<(), TransportError> {
            let class = match self.1 {
                Fault::NoPriority => Class::Data,
                Fault::DeafToDeath => class,
            };
            self.0.send(m, class).await
        }
        async fn recv(&self) -> Result<Option<Bytes>, TransportError> {
            self.0.recv().await
        }
        fn stats(&self) -> ConnectionStats {
            self.0.stats()
        }
        async fn close(&self) {
            self.0.close().await
        }
        fn abort(&self) {
            self.0.abort()
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[should_panic(expected = "did not overtake queued data")]
    async fn suite_catches_missing_priority() {
        let h = Harness {
            inner: MemoryHarness::default(),
            fault: Fault::NoPriority,
            held: Held::default(),
        };
        transport::control_overtakes_queued_data(&h).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[should_panic(expected = "dead-peer detection did not finish")]
    async fn suite_catches_undetected_dead_peer() {
        let h = Harness {
            inner: MemoryHarness::default(),
            fault: Fault::DeafToDeath,
            held: Held::default(),
        };
        transport::dead_peer_is_reported(&h).await;
    }
}
