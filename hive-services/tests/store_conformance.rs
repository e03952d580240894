//! The TrackerStore conformance suite against both stores.

use hive_services::testkit::store_conformance;
use hive_services::tracker::MemoryStore;

#[tokio::test]
async fn memory_store_conforms() {
    store_conformance(&MemoryStore::new()).await;
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
