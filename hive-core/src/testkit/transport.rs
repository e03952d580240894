//! The conformance suite every [`Transport`] must pass, written once and run against every
//! implementation (as rust-libp2p does for its muxers).
//!
//! An implementation provides a [`TransportHarness`] — how to make an endpoint and how to make one
//! vanish — and calls [`run_all`] from a `#[tokio::test]`, or the checks one by one:
//!
//! ```
//! # tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap().block_on(async {
//! use hive_core::testkit::memory::MemoryHarness;
//! use hive_core::testkit::transport::run_all;
//! run_all(&MemoryHarness::default()).await;
//! # });
//! ```
//!
//! The checks panic with a message saying what broke; every wait is bounded so a broken transport
//! fails instead of hanging.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use crate::error::TransportError;
use crate::transport::{Class, Connection, DialTarget, Transport};

/// How the suite makes endpoints of the transport under test.
#[async_trait]
pub trait TransportHarness: Send + Sync {
    /// A fresh endpoint, ready to dial and accept.
    async fn endpoint(&self) -> Arc<dyn Transport>;

    /// Makes `endpoint` vanish without a word — no close, no reset, as a crashed process or a
    /// pulled cable: its peers must notice by themselves, within
    /// [`Transport::dead_peer_timeout`].
    async fn kill(&self, endpoint: &Arc<dyn Transport>);

    /// The largest message size to test (defaults to what the connection reports, capped at
    /// 4 MiB to keep the suite fast).
    fn max_test_message(&self, conn: &dyn Connection) -> usize {
        conn.max_message_size().min(4 << 20)
    }

    /// Slack added to every bound (slow CI machines, emulated links).
    fn slack(&self) -> Duration {
        Duration::from_secs(5)
    }
}

/// Runs every check.
pub async fn run_all(h: &dyn TransportHarness) {
    mutual_identity(h).await;
    wrong_identity_is_refused(h).await;
    ordered_delivery_of_all_sizes(h).await;
    oversized_message_is_refused(h).await;
    control_overtakes_queued_data(h).await;
    many_concurrent_flows(h).await;
    close_delivers_then_ends(h).await;
    abort_ends_the_peer(h).await;
    dead_peer_is_reported(h).await;
    shutdown_stops_accepting(h).await;
}

async fn bounded<T>(
    h: &dyn TransportHarness,
    what: &str,
    limit: Duration,
    f: impl Future<Output = T>,
) -> T {
    match tokio::time::timeout(limit + h.slack(), f).await {
        Ok(v) => v,
        Err(_) => panic!(
            "transport conformance: {what} did not finish within {:?}",
            limit + h.slack()
        ),
    }
}

/// Two endpoints and a connection between them (dialler side, acceptor side).
pub async fn connected_pair(
    h: &dyn TransportHarness,
) -> (
    Arc<dyn Transport>,
    Arc<dyn Transport>,
    Arc<dyn Connection>,
    Arc<dyn Connection>,
) {
    let a = h.endpoint().await;
    let b = h.endpoint().await;
    let (ab, ba) = connect(h, &a, &b).await;
    (a, b, ab, ba)
}

/// Connects `a` to `b`; returns (a's side, b's side).
pub async fn connect(
    h: &dyn TransportHarness,
    a: &Arc<dyn Transport>,
    b: &Arc<dyn Transport>,
) -> (Arc<dyn Connection>, Arc<dyn Connection>) {
    let target = DialTarget::new(b.local_peer_id(), b.local_addrs());
    let (ab, ba) = bounded(h, "dial + accept", Duration::from_secs(5), async {
        tokio::join!(a.dial(&target), b.accept())
    })
    .await;
    let ab = ab.unwrap_or_else(|e| panic!("transport conformance: dial failed: {e}"));
    let ba = ba.unwrap_or_else(|e| panic!("transport conformance: accept failed: {e}"));
    (ab, ba)
}

fn pattern(len: usize, seed: u64) -> Bytes {
    // A cheap deterministic pattern, different per message, so misordering or corruption shows.
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut v = Vec::with_capacity(len);
    while v.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let take = (len - v.len()).min(8);
        v.extend_from_slice(&x.to_le_bytes()[..take]);
    }
    Bytes::from(v)
}

async fn recv_one(h: &dyn TransportHarness, conn: &Arc<dyn Connection>, what: &str) -> Bytes {
    match bounded(h, what, Duration::from_secs(10), conn.recv()).await {
        Ok(Some(m)) => m,
        Ok(None) => panic!("transport conformance: {what}: connection ended early"),
        Err(e) => panic!("transport conformance: {what}: recv failed: {e}"),
    }
}

/// Both sides see the other's proved id, and the transports report their own.
pub async fn mutual_identity(h: &dyn TransportHarness) {
    let (a, b, ab, ba) = connected_pair(h).await;
    assert_ne!(
        a.local_peer_id(),
        b.local_peer_id(),
        "two endpoints share an id"
    );
    assert_eq!(
        ab.remote_peer_id(),
        b.local_peer_id(),
        "dialler sees the wrong remote id"
    );
    assert_eq!(
        ba.remote_peer_id(),
        a.local_peer_id(),
        "acceptor sees the wrong remote id"
    );
    ab.close().await;
    ba.close().await;
}

/// Dialling an address with the wrong expected id fails, and the acceptor yields no connection.
pub async fn wrong_identity_is_refused(h: &dyn TransportHarness) {
    let a = h.endpoint().await;
    let b = h.endpoint().await;
    let c = h.endpoint().await;
    // b's address, c's id.
    let target = DialTarget::new(c.local_peer_id(), b.local_addrs());
    let r = bounded(
        h,
        "dial with wrong id",
        Duration::from_secs(5),
        a.dial(&target),
    )
    .await;
    match r {
        Err(TransportError::WrongPeer { expected, actual }) => {
            assert_eq!(expected, c.local_peer_id());
            assert_eq!(actual, b.local_peer_id());
        }
        Err(TransportError::Handshake { .. }) => {}
        Err(e) => panic!("transport conformance: dial with wrong id gave an unexpected error: {e}"),
        Ok(_) => panic!("transport conformance: dial with the wrong expected id succeeded"),
    }
}

/// Messages of every size from 1 byte to the maximum arrive whole, byte-exact and in order, in
/// both classes and both directions.
pub async fn ordered_delivery_of_all_sizes(h: &dyn TransportHarness) {
    let (_a, _b, ab, ba) = connected_pair(h).await;
    let max = h.max_test_message(ab.as_ref());
    let mut sizes = vec![
        1usize,
        2,
        3,
        100,
        1199,
        1200,
        1201,
        4096,
        16 << 10,
        (64 << 10) - 1,
        64 << 10,
        100_000,
        1 << 20,
    ];
    sizes.retain(|&s| s < max);
    sizes.push(max);
    for (dir, (tx, rx)) in [(&ab, &ba), (&ba, &ab)].into_iter().enumerate() {
        for class in [Class::Control, Class::Data] {
            let msgs: Vec<Bytes> = sizes
                .iter()
                .enumerate()
                .map(|(i, &s)| pattern(s, (dir * 1000 + i) as u64))
                .collect();
            let sender = {
                let tx = tx.clone();
                let msgs = msgs.clone();
                tokio::spawn(async move {
                    for m in msgs {
                        tx.send(m, class).await?;
                    }
                    Ok::<(), TransportError>(())
                })
            };
            for (i, want) in msgs.iter().enumerate() {
                let got = recv_one(h, rx, "ordered delivery").await;
                assert_eq!(
                    got.len(),
                    want.len(),
                    "message {i} ({class:?}) has the wrong length"
                );
                assert!(
                    got == *want,
                    "message {i} of {} bytes ({class:?}) arrived corrupted or out of order",
                    want.len()
                );
            }
            match bounded(h, "sender task", Duration::from_secs(5), sender).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => panic!("transport conformance: send failed: {e}"),
                Err(e) => panic!("transport conformance: sender task panicked: {e}"),
            }
        }
    }
    let st = ab.stats();
    assert!(
        st.messages_sent >= 2 * sizes.len() as u64,
        "stats.messages_sent not counted: {st:?}"
    );
    assert!(
        st.messages_received >= 2 * sizes.len() as u64,
        "stats.messages_received not counted: {st:?}"
    );
    ab.close().await;
}

/// A message one byte over the maximum is refused with `MessageTooLarge` and the connection
/// still works.
pub async fn oversized_message_is_refused(h: &dyn TransportHarness) {
    let (_a, _b, ab, ba) = connected_pair(h).await;
    let max = ab.max_message_size();
    if max >= (64 << 20) {
        // Not worth allocating; such transports are bounded by memory, not by protocol.
        return;
    }
    match ab.send(Bytes::from(vec![0u8; max + 1]), Class::Data).await {
        Err(TransportError::MessageTooLarge { len, max: m }) => {
            assert_eq!(len, max + 1);
            assert_eq!(m, max);
        }
        other => panic!("transport conformance: oversized send gave {other:?}"),
    }
    ab.send(Bytes::from_static(b"still alive"), Class::Control)
        .await
        .unwrap_or_else(|e| panic!("send after refusal: {e}"));
    assert_eq!(
        recv_one(h, &ba, "after oversized").await,
        Bytes::from_static(b"still alive")
    );
}

/// A control message sent while data is queued arrives before data that was queued before it.
pub async fn control_overtakes_queued_data(h: &dyn TransportHarness) {
    let (_a, _b, ab, ba) = connected_pair(h).await;
    let chunk = h.max_test_message(ab.as_ref()).min(64 << 10);
    let total_data = 400u64; // 25 MiB at 64 KiB: far more than any send buffer.
    let queued = Arc::new(AtomicU64::new(0));
    let sender = {
        let ab = ab.clone();
        let queued = queued.clone();
        tokio::spawn(async move {
            for i in 0..total_data {
                let mut m = pattern(chunk, i).to_vec();
                m[0] = 0xDA;
                ab.send(Bytes::from(m), Class::Data).await?;
                queued.store(i + 1, Ordering::SeqCst);
            }
            Ok::<(), TransportError>(())
        })
    };
    // Let the data queue fill (the receiver is not reading yet).
    bounded(h, "queueing data", Duration::from_secs(5), async {
        while queued.load(Ordering::SeqCst) < 16 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    // Every data message whose `send` returned before the control `send` starts was queued before
    // the control message: overtaking means the control message arrives before the last of them.
    let queued_before = queued.load(Ordering::SeqCst);
    let mut control = {
        let ab = ab.clone();
        tokio::spawn(async move {
            ab.send(Bytes::from_static(b"\xC0control"), Class::Control)
                .await
        })
    };
    // Give the control send time to be queued before the receiver starts; a transport without
    // priorities blocks it behind the full data buffer, which is the failure this check finds.
    let early = tokio::time::timeout(Duration::from_millis(500), &mut control)
        .await
        .ok();
    let mut data_before_control = None;
    let mut data_seen = 0u64;
    while data_seen < total_data || data_before_control.is_none() {
        let m = recv_one(h, &ba, "overtaking").await;
        if m.first() == Some(&0xC0) {
            data_before_control = Some(data_seen);
        } else {
            data_seen += 1;
        }
    }
    let control = match early {
        Some(r) => r,
        None => control.await,
    };
    match control {
        Ok(Ok(())) => {}
        other => panic!("transport conformance: control send failed: {other:?}"),
    }
    let Some(pos) = data_before_control else {
        panic!("transport conformance: control message never arrived")
    };
    assert!(
        pos < queued_before,
        "control message did not overtake queued data: {queued_before} data messages were queued before it, {pos} arrived first"
    );
    match sender.await {
        Ok(Ok(())) => {}
        other => panic!("transport conformance: data sender failed: {other:?}"),
    }
}

/// Many tasks sending at once on one connection, and several connections at once: nothing lost,
/// each task's messages in order.
pub async fn many_concurrent_flows(h: &dyn TransportHarness) {
    let hub = h.endpoint().await;
    let mut pairs = Vec::new();
    for _ in 0..4 {
        let spoke = h.endpoint().await;
        let (s, hb) = connect(h, &spoke, &hub).await;
        pairs.push((spoke, s, hb));
    }
    let tasks = 8u64;
    let per_task = 50u64;
    let mut senders = Vec::new();
    for (p, (_, s, _)) in pairs.iter().enumerate() {
        for t in 0..tasks {
            let s = s.clone();
            let class = if t % 2 == 0 {
                Class::Control
            } else {
                Class::Data
            };
            senders.push(tokio::spawn(async move {
                for i in 0..per_task {
                    let mut m = pattern(
                        200 + (i as usize * 37) % 3000,
                        p as u64 * 10_000 + t * 100 + i,
                    )
                    .to_vec();
                    m[..8].copy_from_slice(&(t << 32 | i).to_be_bytes());
                    s.send(Bytes::from(m), class).await?;
                }
                Ok::<(), TransportError>(())
            }));
        }
    }
    let mut receivers = Vec::new();
    for (p, (_, _, hb)) in pairs.iter().enumerate() {
        let hb = hb.clone();
        receivers.push(tokio::spawn(async move {
            let mut next = vec![0u64; tasks as usize];
            for _ in 0..tasks * per_task {
                let m = match hb.recv().await {
                    Ok(Some(m)) => m,
                    other => return Err(format!("connection {p}: recv gave {other:?}")),
                };
                let tag =
                    u64::from_be_bytes(m[..8].try_into().map_err(|_| "short message".to_string())?);
                let (t, i) = ((tag >> 32) as usize, tag & 0xFFFF_FFFF);
                if t >= next.len() || next[t] != i {
                    return Err(format!("connection {p}: task {t} message {i} out of order"));
                }
                next[t] += 1;
            }
            Ok(())
        }));
    }
    for s in senders {
        match bounded(h, "concurrent senders", Duration::from_secs(20), s).await {
            Ok(Ok(())) => {}
            other => panic!("transport conformance: concurrent sender failed: {other:?}"),
        }
    }
    for r in receivers {
        match bounded(h, "concurrent receivers", Duration::from_secs(20), r).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => panic!("transport conformance: {e}"),
            Err(e) => panic!("transport conformance: receiver panicked: {e}"),
        }
    }
}

/// `close` delivers what was queued, then the peer's `recv` gives `Ok(None)` (and keeps giving
/// it); the closer's `send` fails with `Closed`, and the peer's with `ClosedByPeer` or an error.
pub async fn close_delivers_then_ends(h: &dyn TransportHarness) {
    let (_a, _b, ab, ba) = connected_pair(h).await;
    let n = 20u64;
    for i in 0..n {
        let class = if i % 3 == 0 {
            Class::Control
        } else {
            Class::Data
        };
        ab.send(pattern(10_000, i), class)
            .await
            .unwrap_or_else(|e| panic!("send before close: {e}"));
    }
    bounded(h, "close", Duration::from_secs(5), ab.close()).await;
    for _ in 0..n {
        recv_one(h, &ba, "messages queued before close").await;
    }
    for _ in 0..2 {
        match bounded(
            h,
            "recv after peer close",
            Duration::from_secs(5),
            ba.recv(),
        )
        .await
        {
            Ok(None) => {}
            other => {
                panic!("transport conformance: recv after peer close gave {other:?}, want Ok(None)")
            }
        }
    }
    match ab.send(Bytes::from_static(b"late"), Class::Control).await {
        Err(TransportError::Closed) => {}
        other => panic!("transport conformance: send after close gave {other:?}, want Err(Closed)"),
    }
    // The peer learns it can no longer send (possibly after one accepted send).
    let peer_send = bounded(h, "peer send after close", Duration::from_secs(5), async {
        for _ in 0..100 {
            if ba
                .send(Bytes::from_static(b"x"), Class::Control)
                .await
                .is_err()
            {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        false
    })
    .await;
    assert!(
        peer_send,
        "transport conformance: the peer could still send 2 s after the connection was closed"
    );
}

/// `abort` ends the connection at once: the peer's `recv` returns (an error or `None`) promptly.
pub async fn abort_ends_the_peer(h: &dyn TransportHarness) {
    let (_a, _b, ab, ba) = connected_pair(h).await;
    ab.abort();
    let r = bounded(
        h,
        "recv after peer abort",
        Duration::from_secs(2),
        ba.recv(),
    )
    .await;
    if let Ok(Some(m)) = r {
        panic!(
            "transport conformance: got a message ({} bytes) after abort",
            m.len()
        );
    }
}

/// A peer that vanishes is reported by `recv` within the transport's dead-peer bound.
pub async fn dead_peer_is_reported(h: &dyn TransportHarness) {
    let (a, b, ab, ba) = connected_pair(h).await;
    let bound = a.dead_peer_timeout();
    h.kill(&b).await;
    drop(ba);
    let started = std::time::Instant::now();
    match bounded(h, "dead-peer detection", bound, ab.recv()).await {
        Err(_) => {}
        Ok(other) => panic!(
            "transport conformance: recv from a vanished peer gave Ok({other:?}), want an error"
        ),
    }
    let took = started.elapsed();
    assert!(
        took <= bound + h.slack(),
        "dead peer reported after {took:?}, bound {bound:?}"
    );
}

/// After `shutdown`, `accept` fails with `Shutdown` and dialling the endpoint fails; a task
/// already waiting in `accept` (an agent's accept loop) ends with `Shutdown` too, and does not
/// hold `shutdown` up.
pub async fn shutdown_stops_accepting(h: &dyn TransportHarness) {
    let a = h.endpoint().await;
    let b = h.endpoint().await;
    let parked = {
        let b = b.clone();
        tokio::spawn(async move { b.accept().await.map(|_| ()) })
    };
    // Let the accept loop park.
    tokio::time::sleep(Duration::from_millis(50)).await;
    bounded(
        h,
        "shutdown with a task waiting in accept",
        Duration::from_secs(5),
        b.shutdown(),
    )
    .await;
    match bounded(h, "the parked accept", Duration::from_secs(2), parked).await {
        Ok(Err(TransportError::Shutdown)) => {}
        other => panic!(
            "transport conformance: an accept parked before shutdown gave {:?}",
            other.map(|r| r.map(|_| ()))
        ),
    }
    match bounded(
        h,
        "accept after shutdown",
        Duration::from_secs(2),
        b.accept(),
    )
    .await
    {
        Err(TransportError::Shutdown) => {}
        other => panic!(
            "transport conformance: accept after shutdown gave {:?}",
            other.map(|_| ())
        ),
    }
    let target = DialTarget::new(b.local_peer_id(), b.local_addrs());
    let r = bounded(
        h,
        "dial a shut-down endpoint",
        Duration::from_secs(10),
        a.dial(&target),
    )
    .await;
    assert!(
        r.is_err(),
        "transport conformance: dialling a shut-down endpoint succeeded"
    );
}
