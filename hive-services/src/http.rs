//! The bounded HTTP server every Hive service runs on ([`serve_bounded`] with [`HttpLimits`]),
//! and, inside the crate, what the servers and clients share: JSON error replies, body parsing
//! with 400s instead of panics, base64url and wall-clock helpers.
//!
//! # The bounded server
//!
//! [`serve_bounded`] serves an axum [`Router`] over HTTP/1.1 (keep-alive) on a
//! [`TcpListener`], with every resource a client can hold bounded ([`HttpLimits`]):
//!
//! - **time to send a request head**: [`header_read_timeout`](HttpLimits::header_read_timeout)
//!   (hyper's timer, started when the connection is ready for a request: on accept and after each
//!   response — so it is also the keep-alive idle timeout). A slowloris client that dribbles a
//!   header byte every few seconds is closed when it runs out;
//! - **time and size of a request body**: bodies are read in full before the handler runs, up
//!   to [`max_body`](HttpLimits::max_body) bytes (413 beyond, at once when `Content-Length` says
//!   so) within [`body_read_timeout`](HttpLimits::body_read_timeout) (408 beyond);
//! - **header bytes**: [`max_header_bytes`](HttpLimits::max_header_bytes) (431 beyond);
//! - **stalled connections**: one that moves no byte either way for
//!   [`stall_timeout`](HttpLimits::stall_timeout) while no handler runs (a client that stopped
//!   reading a response) is closed; a handler that waits (a long-poll) is not a stall;
//! - **concurrent connections**: [`max_connections`](HttpLimits::max_connections). At the cap,
//!   a new connection evicts the oldest connection that is waiting for a request head (a
//!   slowloris connection, an idle keep-alive; not one whose request is being handled or whose
//!   response is being sent), so that a fresh client such as a health check is still served
//!   while an attacker holds the table; when every connection is busy, the new one is closed at
//!   once. Should the process run out of file descriptors, an
//!   idle connection is evicted the same way to make room.
//!
//! Handlers see the client's address as axum's `ConnectInfo<SocketAddr>`. When `shutdown`
//! completes, the server stops accepting, lets in-flight requests finish and closes idle
//! connections, then returns.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use parking_lot::Mutex;
use serde::de::DeserializeOwned;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};

/// Largest request body either server reads (announces are well under 2 KiB).
pub(crate) const MAX_BODY: usize = 16 * 1024;

/// An HTTP error with a JSON body `{"error": "..."}`.
#[derive(Debug)]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) message: String,
}

impl ApiError {
    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }

    pub(crate) fn forbidden(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::FORBIDDEN,
            message: message.into(),
        }
    }

    pub(crate) fn too_many(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::TOO_MANY_REQUESTS,
            message: message.into(),
        }
    }

    pub(crate) fn unavailable(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": self.message });
        (self.status, axum::Json(body)).into_response()
    }
}

/// Parses a JSON request body; any syntax or shape error is a 400 that says what is wrong. The
/// content type is not checked: clients that forget it still get served.
pub(crate) fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("bad JSON body: {e}")))
}

/// The address the request came from, when the server was started with connection info (as
/// [`serve_bounded`] does); `None` under a server that does not provide it.
pub(crate) struct Observed(pub(crate) Option<SocketAddr>);

impl<S: Send + Sync> FromRequestParts<S> for Observed {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Observed(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0),
        ))
    }
}

/// Wall-clock time in milliseconds since the Unix epoch (0 if the clock is before 1970).
pub(crate) fn now_unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// base64url without padding, the encoding of tokens in JSON.
pub(crate) fn b64_encode(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes base64url, with or without padding.
pub(crate) fn b64_decode(text: &str) -> Result<Vec<u8>, String> {
    URL_SAFE_NO_PAD
        .decode(text.trim_end_matches('='))
        .map_err(|e| format!("not base64url: {e}"))
}

/// The `error` field of a JSON error body, or the body itself (cut to 200 bytes) when it is not one.
pub(crate) fn error_message(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct E {
        error: String,
    }
    match serde_json::from_slice::<E>(body) {
        Ok(e) => e.error,
        Err(_) => String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
    }
}

/// The bounds of a [`serve_bounded`] server (see the [module docs](self)).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct HttpLimits {
    /// Longest time a client may take to send a request head, from the moment the connection
    /// is ready for one (accepted, or the previous response sent): hyper 1 starts the timer
    /// there, so this is also how long an idle keep-alive connection stays open. Default 5 s.
    pub header_read_timeout: Duration,
    /// Longest time a client may take to send a request body. Default 10 s.
    pub body_read_timeout: Duration,
    /// Largest request body, bytes (413 beyond). Default 16 KiB.
    pub max_body: usize,
    /// Largest request head, bytes (hyper's read buffer; at least 8 KiB). Default 16 KiB.
    pub max_header_bytes: usize,
    /// A connection that moves no byte either way for this long while no handler runs is
    /// closed (e.g. a client that stopped reading its response). Default 30 s.
    pub stall_timeout: Duration,
    /// Most connections open at once; at the cap the longest-idle one is evicted for a new one,
    /// or the new one is closed when all are busy. Default 4096.
    pub max_connections: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            header_read_timeout: Duration::from_secs(5),
            body_read_timeout: Duration::from_secs(10),
            max_body: MAX_BODY,
            max_header_bytes: 16 * 1024,
            stall_timeout: Duration::from_secs(30),
            max_connections: 4096,
        }
    }
}

impl HttpLimits {
    /// These limits with at most `n` connections open at once (at least 1).
    pub fn with_max_connections(mut self, n: usize) -> Self {
        self.max_connections = n.max(1);
        self
    }

    /// These limits with this header read (and keep-alive idle) timeout (at least 1 ms).
    pub fn with_header_read_timeout(mut self, t: Duration) -> Self {
        self.header_read_timeout = t.max(Duration::from_millis(1));
        self
    }

    /// These limits with this request body bound, bytes.
    pub fn with_max_body(mut self, bytes: usize) -> Self {
        self.max_body = bytes;
        self
    }

    /// These limits with this body read timeout (at least 1 ms).
    pub fn with_body_read_timeout(mut self, t: Duration) -> Self {
        self.body_read_timeout = t.max(Duration::from_millis(1));
        self
    }

    /// These limits with this stall timeout (at least 1 ms).
    pub fn with_stall_timeout(mut self, t: Duration) -> Self {
        self.stall_timeout = t.max(Duration::from_millis(1));
        self
    }
}

/// Connections looked at for an eviction, at most.
const EVICTION_TRIES: usize = 64;

/// One open connection, as the server's table and its I/O see it.
#[derive(Debug)]
struct ConnState {
    /// Handlers running on it now (not a stall).
    handling: AtomicUsize,
    /// Requests between their head and the end of their response body (not evictable).
    busy: AtomicUsize,
    /// When it last moved a byte, ms since the server's start.
    last_io_ms: AtomicU64,
    /// Closes the connection at once.
    evict: Notify,
}

/// The server's shared state.
#[derive(Debug)]
struct Table {
    start: Instant,
    open: AtomicUsize,
    /// Connections in accept order (weak: an ended one is skipped), for eviction.
    order: Mutex<VecDeque<Weak<ConnState>>>,
    limits: HttpLimits,
}

impl Table {
    fn now_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    /// Evicts the oldest connection that is waiting for a request head (a new one, an idle
    /// keep-alive, a slowloris); whether one was found.
    fn evict_one(&self) -> bool {
        let mut order = self.order.lock();
        for _ in 0..EVICTION_TRIES {
            let Some(w) = order.pop_front() else {
                return false;
            };
            let Some(c) = w.upgrade() else { continue };
            if c.busy.load(Ordering::Relaxed) == 0 {
                c.evict.notify_one();
                return true;
            }
            order.push_back(w);
        }
        false
    }

    fn register(&self, c: &Arc<ConnState>) {
        let mut order = self.order.lock();
        if order.len() >= self.limits.max_connections.saturating_mul(2).max(64) {
            order.retain(|w| w.strong_count() > 0);
        }
        order.push_back(Arc::downgrade(c));
    }
}

/// Counts an open connection while alive.
struct OpenGuard(Arc<Table>);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Counts a running handler while alive.
struct HandlingGuard(Arc<ConnState>, Arc<Table>);

impl Drop for HandlingGuard {
    fn drop(&mut self) {
        self.0.last_io_ms.store(self.1.now_ms(), Ordering::Relaxed);
        self.0.handling.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Counts a request from its head to the end of its response body while alive.
struct BusyGuard(Arc<ConnState>);

impl Drop for BusyGuard {
    fn drop(&mut self) {
        self.0.busy.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A response body that keeps its connection busy (not evictable) until it ends.
struct GuardedBody {
    inner: Body,
    guard: Option<BusyGuard>,
}

impl http_body::Body for GuardedBody {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let r = Pin::new(&mut self.inner).poll_frame(cx);
        if matches!(r, Poll::Ready(None) | Poll::Ready(Some(Err(_)))) {
            self.guard = None;
        }
        r
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// A socket that records when it last moved a byte.
struct Tracked<T> {
    io: T,
    conn: Arc<ConnState>,
    table: Arc<Table>,
}

impl<T> Tracked<T> {
    fn moved(&self) {
        self.conn
            .last_io_ms
            .store(self.table.now_ms(), Ordering::Relaxed);
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Tracked<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.io).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.moved();
        }
        r
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Tracked<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.io).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.moved();
        }
        r
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.moved();
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// Whether an accept error concerns one connection only (the listener is fine).
fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// Serves `router` on `listener` with every resource a client can hold bounded by `limits`
/// (see the [module docs](self)), each request carrying axum's `ConnectInfo<SocketAddr>`, until
/// `shutdown` completes; in-flight requests are finished first.
///
/// Every Hive service serves through this; an embedder can run its own axum routes on it:
///
/// ```no_run
/// use axum::{Router, routing::get};
/// use hive_services::http::{HttpLimits, serve_bounded};
///
/// # async fn run() -> std::io::Result<()> {
/// let app = Router::new().route("/healthz", get(|| async { "ok" }));
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
/// serve_bounded(listener, app, HttpLimits::default(), std::future::pending()).await
/// # }
/// ```
///
/// Returns only when `shutdown` completes: accept errors are logged and waited out (when they
/// are the process's file-descriptor limit, an idle connection is evicted to make room).
pub async fn serve_bounded(
    listener: TcpListener,
    router: Router,
    limits: HttpLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let table = Arc::new(Table {
        start: Instant::now(),
        open: AtomicUsize::new(0),
        order: Mutex::new(VecDeque::new()),
        limits,
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(table.limits.header_read_timeout)
        .max_buf_size(table.limits.max_header_bytes.max(8192))
        .keep_alive(true);
    // Dropped when the shutdown signal fires; connections watch for it.
    let (signal_tx, signal_rx) = watch::channel(());
    tokio::spawn(async move {
        shutdown.await;
        drop(signal_rx);
    });
    // Every connection task holds a receiver; when all are gone, the server is done.
    let (close_tx, close_rx) = watch::channel(());
    loop {
        let (stream, remote) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) if is_connection_error(&e) => continue,
                Err(e) => {
                    // EMFILE and the like: make room, and wait a little.
                    tracing::warn!("accept failed: {e}");
                    table.evict_one();
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
            _ = signal_tx.closed() => break,
        };
        if table.open.load(Ordering::Relaxed) >= table.limits.max_connections && !table.evict_one()
        {
            tracing::debug!(%remote, "connection cap reached, every connection busy: closed");
            drop(stream);
            continue;
        }
        let _ = stream.set_nodelay(true);
        table.open.fetch_add(1, Ordering::Relaxed);
        let conn = Arc::new(ConnState {
            handling: AtomicUsize::new(0),
            busy: AtomicUsize::new(0),
            last_io_ms: AtomicU64::new(table.now_ms()),
            evict: Notify::new(),
        });
        table.register(&conn);
        let io = hyper_util::rt::TokioIo::new(Tracked {
            io: stream,
            conn: conn.clone(),
            table: table.clone(),
        });
        let service = {
            let (router, conn, table) = (router.clone(), conn.clone(), table.clone());
            hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                let (router, conn, table) = (router.clone(), conn.clone(), table.clone());
                async move {
                    conn.busy.fetch_add(1, Ordering::Relaxed);
                    let busy = BusyGuard(conn.clone());
                    conn.handling.fetch_add(1, Ordering::Relaxed);
                    let handling = HandlingGuard(conn, table.clone());
                    let mut req = req.map(Body::new);
                    req.extensions_mut().insert(ConnectInfo(remote));
                    let resp = handle(router, req, &table.limits).await;
                    drop(handling);
                    Ok::<_, Infallible>(resp.map(|inner| GuardedBody {
                        inner,
                        guard: Some(busy),
                    }))
                }
            })
        };
        let connection = builder.serve_connection(io, service);
        let open = OpenGuard(table.clone());
        let stall = table.limits.stall_timeout;
        let (signal_tx, close_rx) = (signal_tx.clone(), close_rx.clone());
        let table = table.clone();
        tokio::spawn(async move {
            let _open = open;
            let _close = close_rx;
            let mut connection = std::pin::pin!(connection);
            let mut signalled = std::pin::pin!(signal_tx.closed());
            let mut shutting_down = false;
            loop {
                let last = conn.last_io_ms.load(Ordering::Relaxed);
                let since = Duration::from_millis(table.now_ms().saturating_sub(last));
                let check = stall.saturating_sub(since).max(Duration::from_millis(10));
                tokio::select! {
                    r = connection.as_mut() => {
                        if let Err(e) = r {
                            tracing::trace!(%remote, "connection ended: {e}");
                        }
                        break;
                    }
                    _ = &mut signalled, if !shutting_down => {
                        shutting_down = true;
                        connection.as_mut().graceful_shutdown();
                    }
                    _ = conn.evict.notified() => {
                        tracing::debug!(%remote, "idle connection evicted for a new one");
                        break;
                    }
                    _ = tokio::time::sleep(check) => {
                        let last = conn.last_io_ms.load(Ordering::Relaxed);
                        if conn.handling.load(Ordering::Relaxed) == 0
                            && table.now_ms().saturating_sub(last) >= stall.as_millis() as u64
                        {
                            tracing::debug!(%remote, "stalled connection closed");
                            break;
                        }
                    }
                }
            }
        });
    }
    drop(close_rx);
    drop(listener);
    close_tx.closed().await;
    Ok(())
}

/// Reads the request's body in full (bounded in size and time), then runs the router.
async fn handle(router: Router, req: Request, limits: &HttpLimits) -> Response {
    let (parts, body) = req.into_parts();
    let declared = parts
        .headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let chunked = parts
        .headers
        .contains_key(axum::http::header::TRANSFER_ENCODING);
    let body = match declared {
        Some(n) if n > limits.max_body as u64 => {
            return too_large(limits);
        }
        Some(0) => Body::empty(),
        None if !chunked => Body::empty(),
        _ => {
            match tokio::time::timeout(
                limits.body_read_timeout,
                axum::body::to_bytes(body, limits.max_body),
            )
            .await
            {
                Ok(Ok(bytes)) => Body::from(bytes),
                Ok(Err(_)) => return too_large(limits),
                Err(_) => {
                    return ApiError {
                        status: StatusCode::REQUEST_TIMEOUT,
                        message: format!(
                            "request body not received within {:?}",
                            limits.body_read_timeout
                        ),
                    }
                    .into_response();
                }
            }
        }
    };
    let req = Request::from_parts(parts, body);
    let mut router = router;
    match tower_service::Service::call(&mut router, req).await {
        Ok(r) => r,
        Err(e) => match e {},
    }
}

fn too_large(limits: &HttpLimits) -> Response {
    ApiError {
        status: StatusCode::PAYLOAD_TOO_LARGE,
        message: format!("request body over {} bytes (or cut short)", limits.max_body),
    }
    .into_response()
}
