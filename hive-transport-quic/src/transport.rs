//! [`QuicTransport`]: hive-core's `Transport` on s2n-quic.
//!
//! Each transport runs two s2n-quic endpoints on loopback or any interface: a **server** bound to
//! the address it advertises (accepting) and a **client** on an ephemeral port (dialling) —
//! s2n-quic endpoints are one or the other. Both use the agent's one [`Identity`], and present the
//! same certificate, which carries the transport's admission token ([`crate::admission`]).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use hive_core::transport::{Class, DialTarget};
use hive_core::{PeerAddr, PeerId, TransportError};
use parking_lot::Mutex;
use s2n_quic::client::Connect;
use s2n_quic::provider::limits::Limits;
use s2n_quic::{Client, Server};
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;

use crate::admission::{Admission, Gate};
use crate::cc::{Congestion, HiveCcEndpoint};
use crate::connection::{Incoming, Parts, QuicConnection, code, read_header};
use crate::events::{Context, Halt, KnobSlot, Subscriber};
use crate::identity::{
    CertStore, Identity, IdentityError, Refusal, ServerVerifier, server_name_for, tls_configs,
};
use crate::wire::Header;

/// Settings of a [`QuicTransport`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Config {
    /// The largest message this side accepts (and sends, unless the peer accepts less).
    pub max_message_size: usize,
    /// The congestion controller of every connection: a hive-cc one (default DTL at p = 1, so
    /// `set_cc_priority` works) or s2n-quic's own Cubic.
    pub congestion: Congestion,
    /// A connection whose peer is silent this long ends (QUIC idle timeout; keep-alive pings
    /// every quarter of it keep a quiet but live connection open).
    pub dead_peer_timeout: Duration,
    /// Bound on dial / accept: QUIC handshake plus the stream headers.
    pub handshake_timeout: Duration,
    /// Bound on a graceful close.
    pub close_timeout: Duration,
    /// Flow-control window of each incoming stream, bytes. The connection's window is twice
    /// this, so a stalled data stream never starves the control stream.
    pub stream_window: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_message_size: 4 << 20,
            congestion: Congestion::Hive(hive_cc::Algorithm::Dtl(1.0)),
            dead_peer_timeout: Duration::from_secs(10),
            handshake_timeout: Duration::from_secs(5),
            close_timeout: Duration::from_secs(5),
            stream_window: 8 << 20,
        }
    }
}

impl Config {
    fn limits(&self) -> Result<Limits, TransportError> {
        let bad = |e: s2n_quic_core::connection::limits::ValidationError| {
            setup_error("QUIC limits from the Config")(e.to_string())
        };
        let window = self.stream_window.max(64 << 10);
        Limits::new()
            .with_max_idle_timeout(self.dead_peer_timeout)
            .map_err(bad)?
            .with_max_keep_alive_period(self.dead_peer_timeout / 4)
            .map_err(bad)?
            .with_max_handshake_duration(self.handshake_timeout)
            .map_err(bad)?
            .with_unidirectional_data_window(window)
            .map_err(bad)?
            .with_data_window(window.saturating_mul(2))
            .map_err(bad)?
            .with_max_open_remote_unidirectional_streams(2)
            .map_err(bad)?
            .with_max_open_remote_bidirectional_streams(0)
            .map_err(bad)
    }
}

fn setup_error(context: &'static str) -> impl Fn(String) -> TransportError {
    move |reason| TransportError::Io {
        context,
        source: std::io::Error::other(reason),
    }
}

/// Binds a [`QuicTransport`] with any of its options: settings, identity, admission.
///
/// ```
/// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
/// use std::sync::Arc;
/// use bytes::Bytes;
/// use hive_transport_quic::{Admission, Config, QuicTransport};
///
/// let t = QuicTransport::builder()
///     .config(Config::default())
///     .admission(Admission {
///         token: Bytes::from_static(b"my registrar token"),
///         check: Some(Arc::new(|_peer: &hive_core::PeerId, token: &[u8]| {
///             token == b"my registrar token"
///         })),
///     })
///     .bind("127.0.0.1:0".parse().unwrap())
///     .await?;
/// # Ok::<(), hive_core::TransportError>(())
/// # }).unwrap();
/// ```
#[derive(Debug, Default)]
pub struct QuicTransportBuilder {
    config: Config,
    identity: Option<Identity>,
    admission: Admission,
}

impl QuicTransportBuilder {
    /// The settings (default [`Config::default`]).
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// The identity (default: a fresh Ed25519 key).
    pub fn identity(mut self, identity: Identity) -> Self {
        self.identity = Some(identity);
        self
    }

    /// The admission: `admission.token` goes to every peer in this transport's certificate, and
    /// `admission.check` decides, inside the TLS handshake (so before `dial` returns or `accept`
    /// yields a connection), whether the remote's token is good (see [`crate::admission`]).
    /// Default: no token, everyone admitted. A token known only later, or renewed, is set with
    /// [`QuicTransport::set_admission_token`]; a check that must follow changing state reads it
    /// from what its closure captures.
    ///
    /// (Admission is not a [`Config`] field because `Config` is `Copy` and callers rely on it.)
    pub fn admission(mut self, admission: Admission) -> Self {
        self.admission = admission;
        self
    }

    /// Binds `addr` and starts both endpoints (on the current tokio runtime).
    pub async fn bind(self, addr: SocketAddr) -> Result<Arc<QuicTransport>, TransportError> {
        let identity = match self.identity {
            Some(i) => i,
            None => Identity::generate().map_err(|e| setup_error("identity")(e.to_string()))?,
        };
        QuicTransport::start(addr, self.config, identity, self.admission).await
    }
}

/// hive-core's `Transport` on s2n-quic: see the crate docs for the message mapping.
#[derive(Debug)]
pub struct QuicTransport {
    identity: Identity,
    config: Config,
    local_addr: SocketAddr,
    client: Mutex<Option<Client>>,
    verifier: Arc<ServerVerifier>,
    certs: Arc<CertStore>,
    gate: Arc<Gate>,
    accept_rx: tokio::sync::Mutex<mpsc::Receiver<Arc<QuicConnection>>>,
    accept_task: Mutex<Option<JoinHandle<()>>>,
    inner: Arc<Inner>,
}

/// What the accept loop shares with the transport.
#[derive(Debug)]
struct Inner {
    shut: AtomicBool,
    halted: Arc<AtomicBool>,
    stopped: Notify,
    conns: Mutex<Vec<Weak<QuicConnection>>>,
}

impl Inner {
    fn register(&self, c: &Arc<QuicConnection>) {
        let mut conns = self.conns.lock();
        conns.retain(|w| w.strong_count() > 0);
        conns.push(Arc::downgrade(c));
    }
}

impl QuicTransport {
    /// Starts building a transport with options beyond [`QuicTransport::bind`]'s.
    pub fn builder() -> QuicTransportBuilder {
        QuicTransportBuilder::default()
    }

    /// Binds a transport with a fresh identity. Needs a tokio runtime.
    pub async fn bind(addr: SocketAddr, config: Config) -> Result<Arc<Self>, TransportError> {
        Self::builder().config(config).bind(addr).await
    }

    /// Binds a transport that proves `identity`.
    pub async fn bind_with_identity(
        addr: SocketAddr,
        config: Config,
        identity: Identity,
    ) -> Result<Arc<Self>, TransportError> {
        Self::builder()
            .config(config)
            .identity(identity)
            .bind(addr)
            .await
    }

    /// Binds a transport that proves `identity`, with an admission (see
    /// [`QuicTransportBuilder::admission`]).
    pub async fn bind_with_admission(
        addr: SocketAddr,
        config: Config,
        identity: Identity,
        admission: Admission,
    ) -> Result<Arc<Self>, TransportError> {
        Self::builder()
            .config(config)
            .identity(identity)
            .admission(admission)
            .bind(addr)
            .await
    }

    async fn start(
        addr: SocketAddr,
        config: Config,
        identity: Identity,
        admission: Admission,
    ) -> Result<Arc<Self>, TransportError> {
        let tls =
            tls_configs(&identity, &admission).map_err(|e| setup_error("TLS")(e.to_string()))?;
        let limits = config.limits()?;
        let halted = Arc::new(AtomicBool::new(false));

        let server = start_server(addr, tls.server, limits, config.congestion, halted.clone())?;
        let local_addr = server.local_addr().map_err(|source| TransportError::Io {
            context: "reading the bound address",
            source,
        })?;
        let client_addr = SocketAddr::new(local_addr.ip(), 0);
        let client = start_client(
            client_addr,
            tls.client,
            limits,
            config.congestion,
            halted.clone(),
        )?;

        let inner = Arc::new(Inner {
            shut: AtomicBool::new(false),
            halted,
            stopped: Notify::new(),
            conns: Mutex::new(Vec::new()),
        });
        let (tx, rx) = mpsc::channel(64);
        let task = tokio::spawn(accept_loop(server, tx, inner.clone(), config));
        Ok(Arc::new(QuicTransport {
            identity,
            config,
            local_addr,
            client: Mutex::new(Some(client)),
            verifier: tls.verifier,
            certs: tls.certs,
            gate: tls.gate,
            accept_rx: tokio::sync::Mutex::new(rx),
            accept_task: Mutex::new(Some(task)),
            inner,
        }))
    }

    /// The address peers dial (the server endpoint's).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The identity this transport proves.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Replaces the admission token this transport presents (see
    /// [`QuicTransportBuilder::admission`]): a token obtained after `bind`, or renewed before it
    /// expires. A new certificate for the same key carries it; dials and accepts that start from
    /// now on present it, open connections are not affected (re-present a renewed token to them
    /// in the application's own protocol, as hive-agent does with a re-sent `Hello`). A token
    /// longer than [`MAX_ADMISSION_TOKEN`](crate::admission::MAX_ADMISSION_TOKEN) is not sent at
    /// all. Fails only when the certificate cannot be made; the previous one stays then.
    pub fn set_admission_token(&self, token: Bytes) -> Result<(), IdentityError> {
        self.certs.set_token(&token)
    }

    /// The certificate this transport presents now (DER), with its current admission token.
    pub fn certificate(&self) -> rustls::pki_types::CertificateDer<'static> {
        self.certs.current_der()
    }

    /// Handshakes this transport refused, dialling or accepting, because the remote's admission
    /// token was refused by the check (or its token extension was malformed).
    pub fn admission_refused(&self) -> u64 {
        self.gate.refused()
    }

    /// Dials `peer` at `addr`; the server's certificate must yield `peer`.
    pub async fn dial_addr(
        &self,
        addr: SocketAddr,
        peer: PeerId,
    ) -> Result<Arc<QuicConnection>, TransportError> {
        if self.inner.shut.load(Ordering::Acquire) {
            return Err(TransportError::Shutdown);
        }
        let client = self.client.lock().clone().ok_or(TransportError::Shutdown)?;
        let attempt = self.verifier.next_attempt();
        let name = server_name_for(peer, attempt);
        let connect = Connect::new(addr).with_server_name(name.as_str());
        let hs = self.config.handshake_timeout;
        let conn = match tokio::time::timeout(hs, client.connect(connect)).await {
            Err(_) => {
                return Err(TransportError::Timeout {
                    what: "QUIC handshake",
                    after: hs,
                });
            }
            Ok(Err(e)) => {
                return Err(match self.verifier.take_refusal(attempt) {
                    Some(Refusal::WrongPeer(actual)) => TransportError::WrongPeer {
                        expected: peer,
                        actual,
                    },
                    Some(Refusal::Admission) => TransportError::Handshake {
                        addr: addr.to_string(),
                        reason: "the server's admission token was refused".to_string(),
                    },
                    None => TransportError::Handshake {
                        addr: addr.to_string(),
                        reason: e.to_string(),
                    },
                });
            }
            Ok(Ok(conn)) => conn,
        };
        let conn = match tokio::time::timeout(hs, establish(conn, Some(peer), &self.config)).await {
            Ok(r) => r?,
            Err(_) => {
                return Err(TransportError::Timeout {
                    what: "Hive stream headers",
                    after: hs,
                });
            }
        };
        self.inner.register(&conn);
        Ok(conn)
    }

    /// Makes this endpoint vanish without a word (no close, no reset): every datagram in and out
    /// is dropped from now on, as if the process crashed. For tests of dead-peer detection.
    pub fn halt(&self) {
        self.inner.halted.store(true, Ordering::SeqCst);
        self.inner.shut.store(true, Ordering::SeqCst);
        self.inner.stopped.notify_waiters();
    }
}

/// Builds and starts an s2n-quic endpoint (server or client: their builders are different types
/// with the same methods) with Hive's limits, event subscriber, halt switch and controller.
macro_rules! start_endpoint {
    ($builder:expr, $what:literal, $tls:expr, $addr:expr, $limits:expr, $congestion:expr, $halted:expr) => {{
        let err = setup_error($what);
        let slot = KnobSlot::default();
        let builder = $builder
            .with_tls($tls)
            .map_err(|e| err(e.to_string()))?
            .with_io($addr)
            .map_err(|e| err(e.to_string()))?
            .with_limits($limits)
            .map_err(|e| err(e.to_string()))?
            .with_event(Subscriber { slot: slot.clone() })
            .map_err(|e| err(e.to_string()))?
            .with_packet_interceptor(Halt($halted))
            .map_err(|e| err(e.to_string()))?;
        match $congestion {
            Congestion::S2nCubic => builder.start(),
            Congestion::Hive(a) => builder
                .with_congestion_controller(HiveCcEndpoint::new(a, slot))
                .map_err(|e| err(e.to_string()))?
                .start(),
        }
        .map_err(|e| err(e.to_string()))
    }};
}

fn start_server(
    addr: SocketAddr,
    tls: s2n_quic::provider::tls::rustls::Server,
    limits: Limits,
    congestion: Congestion,
    halted: Arc<AtomicBool>,
) -> Result<Server, TransportError> {
    start_endpoint!(
        Server::builder(),
        "starting the QUIC server endpoint",
        tls,
        addr,
        limits,
        congestion,
        halted
    )
}

fn start_client(
    addr: SocketAddr,
    tls: s2n_quic::provider::tls::rustls::Client,
    limits: Limits,
    congestion: Congestion,
    halted: Arc<AtomicBool>,
) -> Result<Client, TransportError> {
    start_endpoint!(
        Client::builder(),
        "starting the QUIC client endpoint",
        tls,
        addr,
        limits,
        congestion,
        halted
    )
}

/// After the QUIC handshake: checks the proved id, opens our two streams with their headers,
/// reads the peer's two headers. `expected` is the dialled id (None when accepting).
async fn establish(
    conn: s2n_quic::Connection,
    expected: Option<PeerId>,
    config: &Config,
) -> Result<Arc<QuicConnection>, TransportError> {
    let remote_addr = conn.remote_addr().ok();
    let addr = remote_addr.map_or_else(|| "?".to_string(), |a| a.to_string());
    let fail = |conn: &s2n_quic::connection::Handle, code: u8, reason: String| {
        conn.close(code.into());
        TransportError::Handshake {
            addr: addr.clone(),
            reason,
        }
    };
    let shared = conn.query_event_context(|c: &Context| c.clone());
    let (mut handle, mut acceptor) = conn.split();
    let shared = shared.map_err(|e| fail(&handle, code::REFUSED, format!("event context: {e}")))?;
    let proved = *shared.peer.lock();
    let peer = match (proved, expected) {
        (None, _) => {
            return Err(fail(
                &handle,
                code::REFUSED,
                "no certificate id".to_string(),
            ));
        }
        (Some(p), Some(e)) if p != e => {
            handle.close(code::REFUSED.into());
            return Err(TransportError::WrongPeer {
                expected: e,
                actual: p,
            });
        }
        (Some(p), _) => p,
    };
    let r: Result<_, TransportError> = async {
        handle
            .keep_alive(true)
            .map_err(|e| fail(&handle, code::REFUSED, e.to_string()))?;
        let mut ours = Vec::with_capacity(2);
        for class in [Class::Control, Class::Data] {
            let mut s = handle
                .open_send_stream()
                .await
                .map_err(|e| fail(&handle, code::REFUSED, e.to_string()))?;
            let header = Header {
                class,
                max_message_size: config.max_message_size,
            };
            s.send(bytes::Bytes::copy_from_slice(&header.encode()))
                .await
                .map_err(|e| fail(&handle, code::REFUSED, e.to_string()))?;
            ours.push(s);
        }
        let mut control: Option<Incoming> = None;
        let mut data: Option<Incoming> = None;
        for _ in 0..2 {
            let stream = acceptor
                .accept_receive_stream()
                .await
                .map_err(|e| fail(&handle, code::REFUSED, e.to_string()))?
                .ok_or_else(|| fail(&handle, code::REFUSED, "no stream".to_string()))?;
            let incoming = read_header(stream, config.max_message_size).await?;
            let slot = match incoming.header.class {
                Class::Control => &mut control,
                Class::Data => &mut data,
            };
            if slot.replace(incoming).is_some() {
                return Err(fail(
                    &handle,
                    code::PROTOCOL,
                    "two streams of one class".to_string(),
                ));
            }
        }
        let (Some(control), Some(data)) = (control, data) else {
            return Err(fail(&handle, code::PROTOCOL, "missing stream".to_string()));
        };
        Ok((ours, control, data))
    }
    .await;
    let (mut ours, incoming_control, incoming_data) = match r {
        Ok(v) => v,
        Err(e) => {
            handle.close(code::PROTOCOL.into());
            return Err(e);
        }
    };
    let peer_max = incoming_control
        .header
        .max_message_size
        .min(incoming_data.header.max_message_size);
    let (Some(data_stream), Some(control_stream)) = (ours.pop(), ours.pop()) else {
        return Err(fail(&handle, code::PROTOCOL, "streams".to_string()));
    };
    Ok(QuicConnection::new(Parts {
        peer,
        remote_addr,
        max_send: config.max_message_size.min(peer_max),
        handle,
        acceptor,
        control: control_stream,
        data: data_stream,
        incoming_control,
        incoming_data,
        shared,
        dead_peer_timeout: config.dead_peer_timeout,
        close_timeout: config.close_timeout,
    }))
}

async fn accept_loop(
    mut server: Server,
    tx: mpsc::Sender<Arc<QuicConnection>>,
    inner: Arc<Inner>,
    config: Config,
) {
    while let Some(conn) = server.accept().await {
        if inner.shut.load(Ordering::Acquire) {
            conn.close(code::REFUSED.into());
            continue;
        }
        let tx = tx.clone();
        let inner = inner.clone();
        tokio::spawn(async move {
            let hs = config.handshake_timeout;
            let handle = conn.handle();
            match tokio::time::timeout(hs, establish(conn, None, &config)).await {
                Ok(Ok(c)) => {
                    if inner.shut.load(Ordering::Acquire) {
                        c.handle().close(code::REFUSED.into());
                        return;
                    }
                    inner.register(&c);
                    // A full queue or a shut transport drops (and so aborts) the connection.
                    let _ = tx.send(c).await;
                }
                Ok(Err(e)) => tracing::debug!("QUIC accept failed: {e}"),
                Err(_) => {
                    handle.close(code::REFUSED.into());
                    tracing::debug!("QUIC accept timed out");
                }
            }
        });
    }
}

#[async_trait]
impl hive_core::transport::Transport for QuicTransport {
    fn name(&self) -> &'static str {
        "quic"
    }

    fn local_peer_id(&self) -> PeerId {
        self.identity.peer_id()
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
        let stopped = self.inner.stopped.notified();
        tokio::pin!(stopped);
        stopped.as_mut().enable();
        if self.inner.shut.load(Ordering::Acquire) {
            return Err(TransportError::Shutdown);
        }
        let mut rx = tokio::select! {
            rx = self.accept_rx.lock() => rx,
            _ = &mut stopped => return Err(TransportError::Shutdown),
        };
        let c = tokio::select! {
            c = rx.recv() => c.ok_or(TransportError::Shutdown)?,
            _ = &mut stopped => return Err(TransportError::Shutdown),
        };
        if self.inner.shut.load(Ordering::Acquire) {
            return Err(TransportError::Shutdown);
        }
        Ok(c)
    }

    fn dead_peer_timeout(&self) -> Duration {
        self.config.dead_peer_timeout
    }

    async fn shutdown(&self) {
        if self.inner.shut.swap(true, Ordering::AcqRel) {
            return;
        }
        self.inner.stopped.notify_waiters();
        // Dropping the server endpoint stops it listening.
        if let Some(task) = self.accept_task.lock().take() {
            task.abort();
        }
        self.client.lock().take();
        let live: Vec<_> = {
            let conns = self.inner.conns.lock();
            conns.iter().filter_map(Weak::upgrade).collect()
        };
        let mut closing = tokio::task::JoinSet::new();
        for c in live {
            closing.spawn(async move {
                hive_core::transport::Connection::close(c.as_ref()).await;
            });
        }
        while closing.join_next().await.is_some() {}
        if let Ok(mut rx) = self.accept_rx.try_lock() {
            rx.close();
        }
    }
}

impl Drop for QuicTransport {
    fn drop(&mut self) {
        if let Some(task) = self.accept_task.lock().take() {
            task.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hive_core::transport::Transport;

    /// A peer whose certificate carries a malformed or oversized token extension gets no
    /// connection, whichever side dials, even from a transport without a check, and nothing
    /// panics.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn malformed_token_extensions_fail_the_handshake() -> Result<(), TransportError> {
        let config = Config {
            handshake_timeout: Duration::from_secs(3),
            ..Config::default()
        };
        let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
        let honest = QuicTransport::bind(loopback, config).await?;
        let odd = QuicTransport::bind(loopback, config).await?;
        let mut oversized = vec![0x04, 0x82, 0x04, 0x01];
        oversized.extend([0u8; crate::admission::MAX_ADMISSION_TOKEN + 1]);
        let cases = [
            ("oversized", vec![oversized]),
            ("not an octet string", vec![vec![0x02, 0x01, 0x00]]),
            ("truncated", vec![vec![0x04, 0x7f, 1]]),
        ];
        for (i, (what, exts)) in cases.into_iter().enumerate() {
            odd.certs
                .set_raw_extensions(&exts)
                .map_err(|e| setup_error("cert")(e.to_string()))?;
            let to_honest = DialTarget::new(honest.local_peer_id(), honest.local_addrs());
            let (dialled, accepted) = tokio::join!(
                odd.dial(&to_honest),
                tokio::time::timeout(Duration::from_millis(1500), honest.accept())
            );
            assert!(dialled.is_err(), "{what}: the dial succeeded");
            assert!(accepted.is_err(), "{what}: accept yielded something");
            assert_eq!(honest.admission_refused(), 2 * i as u64 + 1, "{what}");

            let to_odd = DialTarget::new(odd.local_peer_id(), odd.local_addrs());
            let (dialled, accepted) = tokio::join!(
                honest.dial(&to_odd),
                tokio::time::timeout(Duration::from_millis(1500), odd.accept())
            );
            let err = dialled.err().map(|e| e.to_string()).unwrap_or_default();
            assert!(
                err.contains("admission token was refused"),
                "{what}: {err:?}"
            );
            assert!(accepted.is_err(), "{what}: accept yielded something");
            assert_eq!(honest.admission_refused(), 2 * i as u64 + 2, "{what}");
        }
        // With a well-formed certificate again, they connect.
        odd.set_admission_token(Bytes::new())
            .map_err(|e| setup_error("cert")(e.to_string()))?;
        let to_honest = DialTarget::new(honest.local_peer_id(), honest.local_addrs());
        let (dialled, accepted) = tokio::join!(odd.dial(&to_honest), honest.accept());
        assert_eq!(accepted?.remote_peer_id(), odd.local_peer_id());
        dialled?.close().await;
        odd.shutdown().await;
        honest.shutdown().await;
        Ok(())
    }
}
