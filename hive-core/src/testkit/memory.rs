//! An in-process reference [`Transport`]: endpoints on a [`MemoryNetwork`] exchange messages through
//! bounded in-memory queues, one per priority class and direction.
//!
//! It is the executable specification of the transport contract (it passes
//! [`testkit::transport::run_all`](crate::testkit::transport::run_all)), and a fast transport for
//! tests of code above the transport (the agent, the tracker).
//!
//! Identity: each endpoint gets a fresh pseudo key, and its [`PeerId`] is derived from it; dialling
//! an address whose endpoint has another id fails with [`TransportError::WrongPeer`], as a real
//! handshake would.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use async_trait::async_trait;
use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::{Notify, mpsc};

use crate::error::TransportError;
use crate::ids::{KeyKind, PeerAddr, PeerId};
use crate::time::Duration;
use crate::transport::{Class, Connection, ConnectionStats, DialTarget, Transport};

/// Settings of a memory endpoint.
#[derive(Clone, Copy, Debug)]
pub struct MemoryConfig {
    /// Largest message accepted.
    pub max_message_size: usize,
    /// Bytes each class may have queued per direction before `send` waits.
    pub send_buffer: usize,
    /// The reported dead-peer bound (a vanished memory peer is reported at once, well within it).
    pub dead_peer_timeout: Duration,
}

impl Default for MemoryConfig {
    fn default() -> Self {
        MemoryConfig {
            max_message_size: 4 << 20,
            send_buffer: 1 << 20,
            dead_peer_timeout: Duration::from_secs(1),
        }
    }
}

/// A process-local network that memory endpoints attach to.
#[derive(Clone, Debug, Default)]
pub struct MemoryNetwork {
    inner: Arc<Mutex<NetInner>>,
}

#[derive(Debug, Default)]
struct NetInner {
    next_addr: u64,
    endpoints: HashMap<u64, (PeerId, usize, mpsc::UnboundedSender<Arc<MemoryConnection>>)>,
}

impl MemoryNetwork {
    /// An empty network.
    pub fn new() -> Self {
        MemoryNetwork::default()
    }

    /// A new endpoint with default settings.
    pub fn endpoint(&self) -> Arc<MemoryTransport> {
        self.endpoint_with(MemoryConfig::default())
    }

    /// A new endpoint.
    pub fn endpoint_with(&self, config: MemoryConfig) -> Arc<MemoryTransport> {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut inner = self.inner.lock();
        inner.next_addr += 1;
        let addr = inner.next_addr;
        let id = PeerId::from_public_key(KeyKind::Ed25519, format!("memory-key-{addr}").as_bytes());
        inner
            .endpoints
            .insert(addr, (id, config.max_message_size, tx));
        Arc::new(MemoryTransport {
            id,
            addr,
            config,
            net: self.clone(),
            accept_rx: tokio::sync::Mutex::new(rx),
            conns: Mutex::new(Vec::new()),
            shut: AtomicBool::new(false),
        })
    }
}

/// An endpoint of a [`MemoryNetwork`].
pub struct MemoryTransport {
    id: PeerId,
    addr: u64,
    config: MemoryConfig,
    net: MemoryNetwork,
    accept_rx: tokio::sync::Mutex<mpsc::UnboundedReceiver<Arc<MemoryConnection>>>,
    conns: Mutex<Vec<Weak<MemoryConnection>>>,
    shut: AtomicBool,
}

impl fmt::Debug for MemoryTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryTransport")
            .field("id", &self.id)
            .field("addr", &self.addr)
            .finish()
    }
}

impl MemoryTransport {
    /// Makes this endpoint vanish without a word, as a crashed process or a pulled cable would:
    /// its peers see [`TransportError::PeerGone`].
    pub fn kill(&self) {
        self.net.inner.lock().endpoints.remove(&self.addr);
        self.shut.store(true, Ordering::SeqCst);
        for c in self.live_conns() {
            c.end_both(End::Gone);
        }
    }

    fn live_conns(&self) -> Vec<Arc<MemoryConnection>> {
        let mut conns = self.conns.lock();
        conns.retain(|w| w.strong_count() > 0);
        conns.iter().filter_map(Weak::upgrade).collect()
    }
}

#[async_trait]
impl Transport for MemoryTransport {
    fn name(&self) -> &'static str {
        "memory"
    }

    fn local_peer_id(&self) -> PeerId {
        self.id
    }

    fn local_addrs(&self) -> Vec<PeerAddr> {
        vec![PeerAddr::Memory(self.addr)]
    }

    async fn dial(&self, target: &DialTarget) -> Result<Arc<dyn Connection>, TransportError> {
        if self.shut.load(Ordering::SeqCst) {
            return Err(TransportError::Shutdown);
        }
        let addr = target
            .addrs
            .iter()
            .find_map(|a| match a {
                PeerAddr::Memory(a) => Some(*a),
                _ => None,
            })
            .ok_or_else(|| TransportError::Unreachable {
                peer: target.peer,
                reason: "no memory address".into(),
            })?;
        let (remote_id, remote_max, accept_tx) = {
            let inner = self.net.inner.lock();
            let (id, max, tx) =
                inner
                    .endpoints
                    .get(&addr)
                    .ok_or_else(|| TransportError::Unreachable {
                        peer: target.peer,
                        reason: format!("nobody listens at memory address {addr}"),
                    })?;
            (*id, *max, tx.clone())
        };
        if remote_id != target.peer {
            return Err(TransportError::WrongPeer {
                expected: target.peer,
                actual: remote_id,
            });
        }
        // Both sides must accept the message: the negotiated maximum is the smaller one.
        let max = self.config.max_message_size.min(remote_max);
        let a_to_b = Arc::new(Pipe::new(self.config.send_buffer));
        let b_to_a = Arc::new(Pipe::new(self.config.send_buffer));
        let local = Arc::new(MemoryConnection::new(
            self.id,
            remote_id,
            a_to_b.clone(),
            b_to_a.clone(),
            max,
        ));
        let remote = Arc::new(MemoryConnection::new(
            remote_id, self.id, b_to_a, a_to_b, max,
        ));
        accept_tx
            .send(remote)
            .map_err(|_| TransportError::Unreachable {
                peer: target.peer,
                reason: "endpoint shut down".into(),
            })?;
        self.conns.lock().push(Arc::downgrade(&local));
        Ok(local)
    }

    async fn accept(&self) -> Result<Arc<dyn Connection>, TransportError> {
        if self.shut.load(Ordering::SeqCst) {
            return Err(TransportError::Shutdown);
        }
        let conn = self
            .accept_rx
            .lock()
            .await
            .recv()
            .await
            .ok_or(TransportError::Shutdown)?;
        self.conns.lock().push(Arc::downgrade(&conn));
        Ok(conn)
    }

    fn dead_peer_timeout(&self) -> Duration {
        self.config.dead_peer_timeout
    }

    async fn shutdown(&self) {
        self.net.inner.lock().endpoints.remove(&self.addr);
        self.shut.store(true, Ordering::SeqCst);
        self.accept_rx.lock().await.close();
        for c in self.live_conns() {
            c.close().await;
        }
    }
}

/// How a direction of a connection ended abnormally.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum End {
    /// Aborted by one side.
    Reset,
    /// One side vanished.
    Gone,
}

#[derive(Debug, Default)]
struct PipeState {
    control: VecDeque<Bytes>,
    data: VecDeque<Bytes>,
    control_bytes: usize,
    data_bytes: usize,
    /// The writer closed gracefully after what is queued.
    fin: bool,
    /// The reader closed: writes fail.
    reader_closed: bool,
    end: Option<End>,
}

/// One direction of a connection.
#[derive(Debug)]
struct Pipe {
    state: Mutex<PipeState>,
    capacity: usize,
    readable: Notify,
    writable: Notify,
}

impl Pipe {
    fn new(capacity: usize) -> Self {
        Pipe {
            state: Mutex::new(PipeState::default()),
            capacity,
            readable: Notify::new(),
            writable: Notify::new(),
        }
    }

    fn wake_all(&self) {
        self.readable.notify_waiters();
        self.writable.notify_waiters();
    }
}

/// A connection between two memory endpoints.
pub struct MemoryConnection {
    local: PeerId,
    remote: PeerId,
    tx: Arc<Pipe>,
    rx: Arc<Pipe>,
    max: usize,
    closed: AtomicBool,
    bytes_sent: AtomicU64,
    bytes_received: AtomicU64,
    messages_sent: AtomicU64,
    messages_received: AtomicU64,
}

impl fmt::Debug for MemoryConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryConnection")
            .field("local", &self.local)
            .field("remote", &self.remote)
            .finish()
    }
}

impl MemoryConnection {
    fn new(local: PeerId, remote: PeerId, tx: Arc<Pipe>, rx: Arc<Pipe>, max: usize) -> Self {
        MemoryConnection {
            local,
            remote,
            tx,
            rx,
            max,
            closed: AtomicBool::new(false),
            bytes_sent: AtomicU64::new(0),
            bytes_received: AtomicU64::new(0),
            messages_sent: AtomicU64::new(0),
            messages_received: AtomicU64::new(0),
        }
    }

    fn end_both(&self, end: End) {
        for p in [&self.tx, &self.rx] {
            let mut s = p.state.lock();
            s.end.get_or_insert(end);
            drop(s);
            p.wake_all();
        }
    }

    fn end_error(&self, end: End) -> TransportError {
        match end {
            End::Reset => TransportError::Reset {
                reason: "connection aborted".into(),
            },
            End::Gone => TransportError::PeerGone {
                peer: self.remote,
                silent_for: Duration::ZERO,
            },
        }
    }
}

impl Drop for MemoryConnection {
    fn drop(&mut self) {
        if !self.closed.load(Ordering::SeqCst) {
            self.end_both(End::Reset);
        }
    }
}

#[async_trait]
impl Connection for MemoryConnection {
    fn remote_peer_id(&self) -> PeerId {
        self.remote
    }

    fn remote_addr(&self) -> Option<SocketAddr> {
        None
    }

    fn max_message_size(&self) -> usize {
        self.max
    }

    async fn send(&self, message: Bytes, class: Class) -> Result<(), TransportError> {
        if message.len() > self.max {
            return Err(TransportError::MessageTooLarge {
                len: message.len(),
                max: self.max,
            });
        }
        let len = message.len();
        let mut message = Some(message);
        loop {
            let writable = self.tx.writable.notified();
            tokio::pin!(writable);
            writable.as_mut().enable();
            {
                if self.closed.load(Ordering::SeqCst) {
                    return Err(TransportError::Closed);
                }
                let mut s = self.tx.state.lock();
                if let Some(end) = s.end {
                    return Err(self.end_error(end));
                }
                if s.reader_closed {
                    return Err(TransportError::ClosedByPeer);
                }
                let queued = match class {
                    Class::Control => s.control_bytes,
                    Class::Data => s.data_bytes,
                };
                // A message larger than the buffer is accepted into an empty queue.
                if queued == 0 || queued + len <= self.tx.capacity {
                    if let Some(m) = message.take() {
                        match class {
                            Class::Control => {
                                s.control_bytes += len;
                                s.control.push_back(m);
                            }
                            Class::Data => {
                                s.data_bytes += len;
                                s.data.push_back(m);
                            }
                        }
                    }
                    drop(s);
                    self.tx.readable.notify_waiters();
                    self.bytes_sent.fetch_add(len as u64, Ordering::Relaxed);
                    self.messages_sent.fetch_add(1, Ordering::Relaxed);
                    return Ok(());
                }
            }
            writable.await;
        }
    }

    async fn recv(&self) -> Result<Option<Bytes>, TransportError> {
        loop {
            let readable = self.rx.readable.notified();
            tokio::pin!(readable);
            readable.as_mut().enable();
            {
                if self.closed.load(Ordering::SeqCst) {
                    return Err(TransportError::Closed);
                }
                let mut s = self.rx.state.lock();
                if let Some(end) = s.end {
                    return Err(self.end_error(end));
                }
                let msg = if let Some(m) = s.control.pop_front() {
                    s.control_bytes -= m.len();
                    Some(m)
                } else if let Some(m) = s.data.pop_front() {
                    s.data_bytes -= m.len();
                    Some(m)
                } else {
                    None
                };
                if let Some(m) = msg {
                    drop(s);
                    self.rx.writable.notify_waiters();
                    self.bytes_received
                        .fetch_add(m.len() as u64, Ordering::Relaxed);
                    self.messages_received.fetch_add(1, Ordering::Relaxed);
                    return Ok(Some(m));
                }
                if s.fin {
                    return Ok(None);
                }
            }
            readable.await;
        }
    }

    fn stats(&self) -> ConnectionStats {
        ConnectionStats {
            bytes_sent: self.bytes_sent.load(Ordering::Relaxed),
            bytes_received: self.bytes_received.load(Ordering::Relaxed),
            messages_sent: self.messages_sent.load(Ordering::Relaxed),
            messages_received: self.messages_received.load(Ordering::Relaxed),
            ..ConnectionStats::default()
        }
    }

    async fn close(&self) {
        if self.closed.swap(true, Ordering::SeqCst) {
            return;
        }
        self.tx.state.lock().fin = true;
        self.tx.wake_all();
        let mut r = self.rx.state.lock();
        r.reader_closed = true;
        r.control.clear();
        r.data.clear();
        r.control_bytes = 0;
        r.data_bytes = 0;
        drop(r);
        self.rx.wake_all();
    }

    fn abort(&self) {
        if !self.closed.swap(true, Ordering::SeqCst) {
            self.end_both(End::Reset);
        }
    }
}

/// The conformance harness of the memory transport: every endpoint on one network.
#[derive(Debug, Default)]
pub struct MemoryHarness {
    net: MemoryNetwork,
    endpoints: Mutex<Vec<Arc<MemoryTransport>>>,
}

#[async_trait]
impl crate::testkit::transport::TransportHarness for MemoryHarness {
    async fn endpoint(&self) -> Arc<dyn Transport> {
        let e = self.net.endpoint();
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
            Some(e) => e.kill(),
            None => panic!("MemoryHarness::kill: {id:?} is not an endpoint of this harness"),
        }
    }
}
