//! The tokio driver: one task owns the UDP socket and runs the sans-IO [`Endpoint`]; handles
//! ([`UdpTransport`], [`UdpConnection`]) lock the endpoint, act, and wake the task.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use bytes::Bytes;
use hive_core::TransportError;
use hive_core::ids::{PeerAddr, PeerId};
use hive_core::time::{Clock, Duration, Instant, MonotonicClock};
use hive_core::transport::{Class, ConnectionStats, DialTarget, Transport};
use parking_lot::Mutex;
use rand::TryRngCore;
use tokio::net::UdpSocket;
use tokio::sync::{Notify, mpsc};

use crate::config::Config;
use crate::connection::RecvPoll;
use crate::endpoint::{Endpoint, EndpointStats, Event};
use crate::handshake::{Admission, Keypair};

/// The default clock of a transport: hive-core's production clock on tokio's time, so a test
/// that pauses tokio's time runs the transport on virtual time.
pub(crate) fn tokio_clock() -> Arc<dyn Clock> {
    Arc::new(MonotonicClock::with_source(|| {
        tokio::time::Instant::now().into_std()
    }))
}

/// Sleeps until `clock` reads `t` (for ever for [`Instant::MAX`], "never").
pub(crate) async fn sleep_until(clock: &dyn Clock, t: Instant) {
    if t == Instant::MAX {
        std::future::pending::<()>().await;
    }
    tokio::time::sleep_until(tokio::time::Instant::from_std(clock.to_std(t))).await;
}

struct Shared {
    /// The endpoint's time: every `now` it is given, and the driver's wake-ups.
    clock: Arc<dyn Clock>,
    ep: Mutex<Endpoint>,
    wake: Notify,
    /// Notified once, when `shutdown` starts.
    stopped: Notify,
    signals: Mutex<HashMap<u64, Arc<Notify>>>,
    halted: AtomicBool,
    shut: AtomicBool,
}

impl Shared {
    fn now(&self) -> Instant {
        self.clock.now()
    }

    fn signal(&self, cid: u64) -> Arc<Notify> {
        self.signals.lock().entry(cid).or_default().clone()
    }
}

/// Hive's UDP transport: one socket, many connections.
pub struct UdpTransport {
    shared: Arc<Shared>,
    local_id: PeerId,
    local_addr: SocketAddr,
    config: Config,
    accept_rx: tokio::sync::Mutex<mpsc::UnboundedReceiver<Arc<UdpConnection>>>,
}

impl fmt::Debug for UdpTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UdpTransport")
            .field("id", &self.local_id)
            .field("addr", &self.local_addr)
            .finish()
    }
}

/// Binds a [`UdpTransport`] with any of its options: settings, identity, admission, clock.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use std::sync::Arc;
/// use hive_core::time::{Clock, MonotonicClock};
/// use hive_transport_udp::{Config, UdpTransport};
///
/// // One clock for the transport and whatever drives the engines above it.
/// let clock: Arc<dyn Clock> =
///     Arc::new(MonotonicClock::with_source(|| tokio::time::Instant::now().into_std()));
/// let t = UdpTransport::builder()
///     .config(Config::default())
///     .clock(clock.clone())
///     .bind("127.0.0.1:0".parse().unwrap())
///     .await?;
/// # Ok::<(), hive_core::TransportError>(())
/// # }).unwrap();
/// ```
#[derive(Debug, Default)]
pub struct UdpTransportBuilder {
    config: Config,
    key: Option<Keypair>,
    admission: Admission,
    clock: Option<Arc<dyn Clock>>,
}

impl UdpTransportBuilder {
    /// The settings (default [`Config::default`]).
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// The identity (default: a fresh random key pair).
    pub fn key(mut self, key: Keypair) -> Self {
        self.key = Some(key);
        self
    }

    /// The admission: `admission.token` goes to every peer in the handshake, and
    /// `admission.check` decides, before `dial` returns or `accept` yields a connection,
    /// whether the remote's token is good (see [`crate::handshake`]). Default: no token,
    /// everyone admitted. A token known only later, or renewed, is set with
    /// [`UdpTransport::set_admission_token`]; a check that must follow changing state (the
    /// streams an agent watches) reads it from what its closure captures.
    ///
    /// (Admission is not a [`Config`] field because `Config` is `Copy` and callers rely on it.)
    pub fn admission(mut self, admission: Admission) -> Self {
        self.admission = admission;
        self
    }

    /// The clock the endpoint's time is read from and its timers wake up on (default:
    /// hive-core's [`MonotonicClock`] on tokio's time, made at `bind`). Give an agent's
    /// transport the agent's clock, so both speak of the same instants.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Binds `addr` and starts the driver task (on the current tokio runtime).
    pub async fn bind(self, addr: SocketAddr) -> Result<Arc<UdpTransport>, TransportError> {
        let key = match self.key {
            Some(k) => k,
            None => Keypair::generate().map_err(|e| TransportError::Handshake {
                addr: addr.to_string(),
                reason: format!("key generation: {e}"),
            })?,
        };
        let clock = self.clock.unwrap_or_else(tokio_clock);
        UdpTransport::start(addr, self.config, key, self.admission, clock).await
    }
}

impl UdpTransport {
    /// Starts building a transport with options beyond [`UdpTransport::bind`]'s.
    pub fn builder() -> UdpTransportBuilder {
        UdpTransportBuilder::default()
    }

    /// Binds `addr` with a fresh random identity.
    pub async fn bind(addr: SocketAddr, config: Config) -> Result<Arc<Self>, TransportError> {
        Self::builder().config(config).bind(addr).await
    }

    /// Binds `addr` with the given identity.
    pub async fn bind_with_key(
        addr: SocketAddr,
        config: Config,
        key: Keypair,
    ) -> Result<Arc<Self>, TransportError> {
        Self::builder().config(config).key(key).bind(addr).await
    }

    /// Binds `addr` with the given identity and admission (see
    /// [`UdpTransportBuilder::admission`]).
    pub async fn bind_with_admission(
        addr: SocketAddr,
        config: Config,
        key: Keypair,
        admission: Admission,
    ) -> Result<Arc<Self>, TransportError> {
        Self::builder()
            .config(config)
            .key(key)
            .admission(admission)
            .bind(addr)
            .await
    }

    async fn start(
        addr: SocketAddr,
        config: Config,
        key: Keypair,
        admission: Admission,
        clock: Arc<dyn Clock>,
    ) -> Result<Arc<Self>, TransportError> {
        let socket = UdpSocket::bind(addr)
            .await
            .map_err(|source| TransportError::Io {
                context: "bind",
                source,
            })?;
        // Bursts at high rates overflow the default 208 KiB receive buffer; ask for 4 MiB (the
        // kernel caps it at net.core.rmem_max). Best effort.
        let sock = socket2::SockRef::from(&socket);
        let _ = sock.set_recv_buffer_size(4 << 20);
        let _ = sock.set_send_buffer_size(4 << 20);
        let local_addr = socket.local_addr().map_err(|source| TransportError::Io {
            context: "local_addr",
            source,
        })?;
        let seed = rand::rngs::OsRng.try_next_u64().unwrap_or(0x5eed);
        let ep = Endpoint::with_admission(config, key, seed, admission);
        let local_id = ep.local_peer_id();
        let shared = Arc::new(Shared {
            clock,
            ep: Mutex::new(ep),
            wake: Notify::new(),
            stopped: Notify::new(),
            signals: Mutex::new(HashMap::new()),
            halted: AtomicBool::new(false),
            shut: AtomicBool::new(false),
        });
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(drive(shared.clone(), socket, tx));
        Ok(Arc::new(UdpTransport {
            shared,
            local_id,
            local_addr,
            config,
            accept_rx: tokio::sync::Mutex::new(rx),
        }))
    }

    /// The bound socket address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Makes the endpoint vanish without a word, as a crashed process: the driver stops and the
    /// socket closes; nothing more is sent. Peers notice through their dead-peer bound.
    pub fn halt(&self) {
        self.shared.shut.store(true, Ordering::SeqCst);
        self.shared.halted.store(true, Ordering::SeqCst);
        self.shared.wake.notify_one();
    }

    /// Replaces the admission token this transport sends in its handshakes (see
    /// [`UdpTransportBuilder::admission`]): a token obtained after `bind`, or renewed before it
    /// expires. Dials and accepts that start from now on carry it; open connections are not
    /// affected (re-present a renewed token to them in the application's own protocol, as
    /// hive-agent does with a re-sent `Hello`).
    pub fn set_admission_token(&self, token: Bytes) {
        self.shared.ep.lock().set_admission_token(token);
    }

    /// The endpoint's counters and table sizes (connections, handshakes in progress, refusals).
    pub fn endpoint_stats(&self) -> EndpointStats {
        self.shared.ep.lock().stats()
    }

    /// A dump of every connection's recovery state, for debugging.
    #[doc(hidden)]
    pub fn debug_summary(&self) -> String {
        let ep = self.shared.ep.lock();
        let t = self.shared.now();
        let mut out = format!("now={t} timeout={:?}\n", ep.poll_timeout());
        for cid in ep.connection_ids() {
            if let Some(c) = ep.connection(cid) {
                out.push_str(&format!(
                    "  {cid}: {} pto_deadline={}\n",
                    c.debug_summary(),
                    c.pto_deadline()
                ));
            }
        }
        out
    }

    /// Dials a socket address directly.
    pub async fn dial_addr(
        &self,
        addr: SocketAddr,
        expected: PeerId,
    ) -> Result<Arc<UdpConnection>, TransportError> {
        if self.shared.shut.load(Ordering::SeqCst) {
            return Err(TransportError::Shutdown);
        }
        let cid = {
            let mut ep = self.shared.ep.lock();
            ep.connect(self.shared.now(), addr, expected).map_err(|e| {
                TransportError::Handshake {
                    addr: addr.to_string(),
                    reason: e.to_string(),
                }
            })?
        };
        let conn = Arc::new(UdpConnection::new(self.shared.clone(), cid, addr, expected));
        self.shared.wake.notify_one();
        let signal = self.shared.signal(cid);
        loop {
            let notified = signal.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let ep = self.shared.ep.lock();
                let Some(c) = ep.connection(cid) else {
                    return Err(TransportError::Shutdown);
                };
                if let Some(e) = c.error() {
                    return Err(e);
                }
                if c.is_open() {
                    return Ok(conn);
                }
            }
            notified.await;
        }
    }
}

#[async_trait]
impl Transport for UdpTransport {
    fn name(&self) -> &'static str {
        "udp"
    }

    fn local_peer_id(&self) -> PeerId {
        self.local_id
    }

    fn local_addrs(&self) -> Vec<PeerAddr> {
        vec![PeerAddr::Socket(self.local_addr)]
    }

    async fn dial(
        &self,
        target: &DialTarget,
    ) -> Result<Arc<dyn hive_core::transport::Connection>, TransportError> {
        let addr = target.socket_addr()?;
        Ok(self.dial_addr(addr, target.peer).await?)
    }

    async fn accept(&self) -> Result<Arc<dyn hive_core::transport::Connection>, TransportError> {
        // Registered before the flag is read, so a shutdown between the two still wakes us: a
        // task parked here must never hold up `shutdown` (which used to wait for this lock).
        let stopped = self.shared.stopped.notified();
        tokio::pin!(stopped);
        stopped.as_mut().enable();
        if self.shared.shut.load(Ordering::SeqCst) {
            return Err(TransportError::Shutdown);
        }
        let mut rx = tokio::select! {
            rx = self.accept_rx.lock() => rx,
            _ = &mut stopped => return Err(TransportError::Shutdown),
        };
        tokio::select! {
            c = rx.recv() => c.map(|c| c as Arc<dyn hive_core::transport::Connection>)
                .ok_or(TransportError::Shutdown),
            _ = &mut stopped => Err(TransportError::Shutdown),
        }
    }

    fn dead_peer_timeout(&self) -> Duration {
        self.config.dead_peer_timeout
    }

    async fn shutdown(&self) {
        if self.shared.shut.swap(true, Ordering::SeqCst) {
            return;
        }
        let t = self.shared.now();
        let ids = {
            let mut ep = self.shared.ep.lock();
            ep.set_accepting(false);
            let ids = ep.connection_ids();
            for &cid in &ids {
                if let Some(c) = ep.connection_mut(cid) {
                    c.close(t);
                }
            }
            ids
        };
        self.shared.wake.notify_one();
        // Wake every task parked in `accept`; connections not yet accepted are dropped (which
        // aborts them) when the transport is.
        self.shared.stopped.notify_waiters();
        if let Ok(mut rx) = self.accept_rx.try_lock() {
            rx.close();
        }
        let deadline = tokio::time::Instant::now() + self.config.close_timeout;
        for cid in ids {
            let signal = self.shared.signal(cid);
            loop {
                let notified = signal.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                let done = self
                    .shared
                    .ep
                    .lock()
                    .connection(cid)
                    .is_none_or(|c| c.ended().is_some());
                if done || tokio::time::timeout_at(deadline, notified).await.is_err() {
                    break;
                }
            }
        }
        // Let the last acknowledgements go out, then stop.
        tokio::time::sleep(Duration::from_millis(20)).await;
        self.shared.halted.store(true, Ordering::SeqCst);
        self.shared.wake.notify_one();
    }
}

impl Drop for UdpTransport {
    fn drop(&mut self) {
        self.shared.halted.store(true, Ordering::SeqCst);
        self.shared.wake.notify_one();
    }
}

/// Largest UDP payload of one GSO send (the kernel refuses more than 64 KiB per call).
const MAX_GSO_BYTES: usize = 65_000;
/// Datagrams queued before the driver stops polling the endpoint and sends.
const MAX_QUEUED: usize = 1024;
/// Receive buffer per `recvmmsg` slot: a whole GRO-coalesced train (at most 64 KiB).
const RECV_BUF: usize = 1 << 16;
/// Receive buffers per endpoint (see `RxBuffers::new`).
const RX_BATCH: usize = 8;

/// One send call's worth: consecutive datagrams to one address, all `segment` bytes long but
/// the last, which may be shorter (the rule of UDP GSO).
struct Run {
    to: SocketAddr,
    start: usize,
    end: usize,
    segment: usize,
    closed: bool,
}

/// Datagrams waiting to be sent, back to back in one buffer, grouped into [`Run`]s.
#[derive(Default)]
struct TxQueue {
    buf: Vec<u8>,
    runs: Vec<Run>,
    datagrams: usize,
}

impl TxQueue {
    /// Takes the endpoint's next datagram; `false` when it has none.
    fn pull(&mut self, ep: &mut Endpoint, now: Instant, max_segments: usize, more: bool) -> bool {
        let start = self.buf.len();
        let Some(to) = ep.poll_transmit_into(now, &mut self.buf, more) else {
            return false;
        };
        let n = self.buf.len() - start;
        if n == 0 {
            return true;
        }
        self.datagrams += 1;
        if let Some(r) = self.runs.last_mut()
            && !r.closed
            && r.to == to
            && r.end == start
            && n <= r.segment
            && (r.end - r.start) / r.segment < max_segments
            && r.end - r.start + n <= MAX_GSO_BYTES
        {
            r.end += n;
            r.closed = n < r.segment;
        } else {
            self.runs.push(Run {
                to,
                start,
                end: start + n,
                segment: n,
                closed: max_segments <= 1,
            });
        }
        true
    }

    /// Takes the endpoint's datagrams until it has none or the queue is full; `more`: more
    /// received datagrams of the same batch follow (see [`Endpoint::poll_transmit_into`]).
    fn drain_from(&mut self, ep: &mut Endpoint, t: Instant, max_segments: usize, more: bool) {
        while self.datagrams < MAX_QUEUED && self.pull(ep, t, max_segments, more) {}
    }

    fn is_full(&self) -> bool {
        self.datagrams >= MAX_QUEUED
    }

    /// Sends everything queued: one `sendmsg` per run (UDP GSO when it holds several datagrams).
    async fn flush(&mut self, socket: &UdpSocket, state: &quinn_udp::UdpSocketState) {
        for r in &self.runs {
            let contents = &self.buf[r.start..r.end];
            let t = quinn_udp::Transmit {
                destination: r.to,
                ecn: None,
                contents,
                segment_size: (contents.len() > r.segment).then_some(r.segment),
                src_ip: None,
            };
            if let Err(e) = send(socket, state, &t).await {
                tracing::debug!(to = %r.to, error = %e, segments = contents.len().div_ceil(r.segment), "send failed");
                if t.segment_size.is_some() {
                    // GSO refused (quinn-udp then stops offering it): one datagram at a time.
                    for d in contents.chunks(r.segment) {
                        let one = quinn_udp::Transmit {
                            contents: d,
                            segment_size: None,
                            ..t.clone()
                        };
                        if let Err(e) = send(socket, state, &one).await {
                            tracing::debug!(to = %r.to, error = %e, "send failed");
                        }
                    }
                }
            }
        }
        self.runs.clear();
        self.buf.clear();
        self.datagrams = 0;
    }
}

async fn send(
    socket: &UdpSocket,
    state: &quinn_udp::UdpSocketState,
    t: &quinn_udp::Transmit<'_>,
) -> std::io::Result<()> {
    socket
        .async_io(tokio::io::Interest::WRITABLE, || {
            state.try_send(quinn_udp::UdpSockRef::from(socket), t)
        })
        .await
}

/// Buffers for `recvmmsg`, each holding one datagram or one GRO train of equal-sized datagrams.
struct RxBuffers {
    bufs: Vec<Vec<u8>>,
    meta: Vec<quinn_udp::RecvMeta>,
}

impl RxBuffers {
    fn new() -> Self {
        // Eight GRO trains of up to 64 KiB (hundreds of datagrams) per call: 512 KiB per
        // endpoint, not quinn-udp's whole batch of 32 (2 MiB, most of an agent's fixed memory).
        let n = quinn_udp::BATCH_SIZE.clamp(1, RX_BATCH);
        RxBuffers {
            bufs: (0..n).map(|_| vec![0u8; RECV_BUF]).collect(),
            meta: vec![quinn_udp::RecvMeta::default(); n],
        }
    }

    /// Reads what is queued on the socket without waiting; the number of slots filled, 0 when
    /// nothing was there.
    fn try_recv(&mut self, socket: &UdpSocket, state: &quinn_udp::UdpSocketState) -> usize {
        let mut slices: Vec<std::io::IoSliceMut<'_>> = self
            .bufs
            .iter_mut()
            .map(|b| std::io::IoSliceMut::new(b))
            .collect();
        let meta = &mut self.meta;
        match socket.try_io(tokio::io::Interest::READABLE, || {
            state.recv(quinn_udp::UdpSockRef::from(socket), &mut slices, meta)
        }) {
            Ok(n) => n,
            Err(e) => {
                if e.kind() != std::io::ErrorKind::WouldBlock {
                    tracing::debug!(error = %e, "recv failed");
                }
                0
            }
        }
    }

    /// The datagrams of slot `i`: (source, bytes) for each, GRO trains split at their stride.
    fn datagrams(&self, i: usize) -> impl Iterator<Item = (SocketAddr, &[u8])> {
        let m = &self.meta[i];
        let data = self.bufs[i].get(..m.len).unwrap_or_default();
        let stride = if m.stride == 0 { data.len() } else { m.stride };
        data.chunks(stride.max(1)).map(move |d| (m.addr, d))
    }
}

async fn drive(
    shared: Arc<Shared>,
    socket: UdpSocket,
    accepted: mpsc::UnboundedSender<Arc<UdpConnection>>,
) {
    let state = match quinn_udp::UdpSocketState::new(quinn_udp::UdpSockRef::from(&socket)) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "UDP socket setup failed; the transport halts");
            shared.halted.store(true, Ordering::SeqCst);
            for n in shared.signals.lock().values() {
                n.notify_waiters();
            }
            return;
        }
    };
    let mut rx = RxBuffers::new();
    let mut tx = TxQueue::default();
    loop {
        if shared.halted.load(Ordering::SeqCst) {
            break;
        }
        let deadline = shared.ep.lock().poll_timeout();
        let sleep = async {
            match deadline {
                Some(t) => sleep_until(&*shared.clock, t).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            r = socket.readable() => {
                if shared.halted.load(Ordering::SeqCst) {
                    break;
                }
                if r.is_ok() {
                    let segments = state.max_gso_segments();
                    let mut ep = shared.ep.lock();
                    // Take what is queued, up to a bound, answering each datagram before
                    // handling the next: an ack frees window that must be used before the next
                    // ack is counted, or controllers that cap the window at what is in flight
                    // see a sender that looks idle.
                    for _ in 0..4 {
                        let n = rx.try_recv(&socket, &state);
                        // A GRO train (datagrams of one sender, coalesced by the kernel) is
                        // acknowledged once, after its last datagram.
                        for i in 0..n {
                            let mut train = rx.datagrams(i).peekable();
                            while let Some((from, d)) = train.next() {
                                let t = shared.now();
                                ep.handle_datagram(t, from, d);
                                tx.drain_from(&mut ep, t, segments, train.peek().is_some());
                            }
                        }
                        if n < rx.bufs.len() || tx.is_full() {
                            break;
                        }
                    }
                }
            }
            _ = shared.wake.notified() => {}
            _ = sleep => {}
        }
        if shared.halted.load(Ordering::SeqCst) {
            break;
        }
        loop {
            let segments = state.max_gso_segments();
            let (touched, new_conns) = {
                let mut ep = shared.ep.lock();
                let t = shared.now();
                ep.handle_timeout(t);
                tx.drain_from(&mut ep, t, segments, false);
                let mut new_conns = Vec::new();
                while let Some(Event::Accepted(cid)) = ep.poll_event() {
                    if let Some(c) = ep.connection(cid)
                        && let Some(id) = c.remote_peer_id()
                    {
                        new_conns.push((cid, c.remote_addr(), id));
                    }
                }
                let removed = ep.drain_removed();
                if !removed.is_empty() {
                    let mut signals = shared.signals.lock();
                    for cid in removed {
                        signals.remove(&cid);
                    }
                }
                (ep.drain_touched(), new_conns)
            };
            for (cid, addr, id) in new_conns {
                let conn = Arc::new(UdpConnection::new(shared.clone(), cid, addr, id));
                // A refused connection (transport shut down) is dropped, which aborts it.
                let _ = accepted.send(conn);
            }
            for cid in touched {
                shared.signal(cid).notify_waiters();
            }
            let full = tx.is_full();
            tx.flush(&socket, &state).await;
            if !full {
                break;
            }
        }
    }
    // Wake every waiter so they see the end.
    for n in shared.signals.lock().values() {
        n.notify_waiters();
    }
}

/// A connection of a [`UdpTransport`].
pub struct UdpConnection {
    shared: Arc<Shared>,
    cid: u64,
    addr: SocketAddr,
    remote: PeerId,
    signal: Arc<Notify>,
    max_message: usize,
}

impl fmt::Debug for UdpConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UdpConnection")
            .field("cid", &self.cid)
            .field("remote", &self.remote)
            .field("addr", &self.addr)
            .finish()
    }
}

impl UdpConnection {
    fn new(shared: Arc<Shared>, cid: u64, addr: SocketAddr, remote: PeerId) -> Self {
        let signal = shared.signal(cid);
        let max_message = shared
            .ep
            .lock()
            .connection(cid)
            .map_or(0, |c| c.max_message_size());
        UdpConnection {
            shared,
            cid,
            addr,
            remote,
            signal,
            max_message,
        }
    }

    /// Runs `f` on the sans-IO connection.
    fn with<T>(&self, f: impl FnOnce(&mut crate::Connection) -> T) -> Option<T> {
        let mut ep = self.shared.ep.lock();
        ep.connection_mut(self.cid).map(f)
    }

    /// A one-line dump of the connection's recovery state, for debugging.
    #[doc(hidden)]
    pub fn debug_summary(&self) -> String {
        self.with(|c| c.debug_summary()).unwrap_or_default()
    }

    fn halted_error(&self) -> TransportError {
        if self.shared.halted.load(Ordering::SeqCst) {
            TransportError::Shutdown
        } else {
            TransportError::Closed
        }
    }
}

impl Drop for UdpConnection {
    fn drop(&mut self) {
        let t = self.shared.now();
        self.shared.ep.lock().abandon(t, self.cid);
        self.shared.wake.notify_one();
    }
}

#[async_trait]
impl hive_core::transport::Connection for UdpConnection {
    fn remote_peer_id(&self) -> PeerId {
        self.remote
    }

    fn remote_addr(&self) -> Option<SocketAddr> {
        Some(self.addr)
    }

    fn max_message_size(&self) -> usize {
        self.max_message
    }

    async fn send(&self, message: Bytes, class: Class) -> Result<(), TransportError> {
        if message.len() > self.max_message {
            return Err(TransportError::MessageTooLarge {
                len: message.len(),
                max: self.max_message,
            });
        }
        loop {
            let notified = self.signal.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.shared.halted.load(Ordering::SeqCst) {
                return Err(self.halted_error());
            }
            match self.with(|c| c.send(&message, class)) {
                None => return Err(self.halted_error()),
                Some(Err(e)) => return Err(e),
                Some(Ok(true)) => {
                    self.shared.wake.notify_one();
                    return Ok(());
                }
                Some(Ok(false)) => {}
            }
            notified.await;
        }
    }

    async fn recv(&self) -> Result<Option<Bytes>, TransportError> {
        loop {
            let notified = self.signal.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            match self.with(|c| c.recv()) {
                None => return Err(self.halted_error()),
                Some(Err(e)) => return Err(e),
                Some(Ok(RecvPoll::Message(m))) => {
                    self.shared.wake.notify_one();
                    return Ok(Some(m));
                }
                Some(Ok(RecvPoll::End)) => return Ok(None),
                Some(Ok(RecvPoll::Pending)) => {}
            }
            if self.shared.halted.load(Ordering::SeqCst) {
                return Err(self.halted_error());
            }
            notified.await;
        }
    }

    fn stats(&self) -> ConnectionStats {
        self.with(|c| c.stats()).unwrap_or_default()
    }

    fn set_cc_priority(&self, priority: f64) -> Result<(), TransportError> {
        let r = self
            .with(|c| c.set_cc_priority(priority))
            .unwrap_or(Err(TransportError::Closed));
        self.shared.wake.notify_one();
        r
    }

    async fn close(&self) {
        let t = self.shared.now();
        if self.with(|c| c.close(t)).is_none() {
            return;
        }
        self.shared.wake.notify_one();
        loop {
            let notified = self.signal.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let done = self.with(|c| c.ended().is_some()).unwrap_or(true);
            if done || self.shared.halted.load(Ordering::SeqCst) {
                return;
            }
            notified.await;
        }
    }

    fn abort(&self) {
        let t = self.shared.now();
        self.with(|c| c.abort(t));
        self.shared.wake.notify_one();
    }
}
