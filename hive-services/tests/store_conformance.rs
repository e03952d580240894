//! The TrackerStore conformance suite against both stores.

use hive_services::testkit::{store_bounds_conformance, store_conformance};
use hive_services::tracker::MemoryStore;

#[tokio::test]
async fn memory_store_conforms() {
    store_conformance(&MemoryStore::new()).await;
}

#[tokio::test]
async fn memory_store_keeps_its_bounds() {
    store_bounds_conformance(&MemoryStore::new().with_limits(2, 3)).await;
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn redis_store_conforms() {
    use hive_services::testkit::RedisServer;
    use hive_services::tracker::RedisStore;
    let Some(server) = RedisServer::start().expect("start redis-server") else {
        eprintln!("SKIPPED: redis-server is not installed (scripts/test.sh installs it)");
        return;
    };
    let store = RedisStore::connect(&server.url()).await.expect("connect");
    store_conformance(&store).await;
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_store_keeps_its_bounds() {
    use hive_services::testkit::RedisServer;
    use hive_services::tracker::RedisStore;
    let Some(server) = RedisServer::start().expect("start redis-server") else {
        eprintln!("SKIPPED: redis-server is not installed (scripts/test.sh installs it)");
        return;
    };
    let store = RedisStore::connect(&server.url())
        .await
        .expect("connect")
        .with_limits(2, 3);
    store_bounds_conformance(&store).await;
}
