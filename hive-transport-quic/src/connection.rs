//! One Hive connection on a QUIC connection: two unidirectional streams each way (control and
//! data), framed messages, a reader task per incoming stream, graceful close by stream FINs.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use hive_core::PeerId;
use hive_core::TransportError;
use hive_core::transport::{Class, ConnectionStats};
use parking_lot::Mutex;
use s2n_quic::connection::Handle;
use s2n_quic::stream::{ReceiveStream, SendStream};
use tokio::sync::{mpsc, watch};

use crate::events::ConnShared;
use crate::wire::{FrameReader, Header, WireError, frame_prefix};

/// Application error codes of QUIC CONNECTION_CLOSE frames.
pub(crate) mod code {
    /// Graceful: both directions finished.
    pub(crate) const CLOSE: u8 = 0;
    /// `abort` or a dropped connection.
    pub(crate) const ABORT: u8 = 1;
    /// The peer broke the wire format.
    pub(crate) const PROTOCOL: u8 = 2;
    /// The transport shut down or refused the connection.
    pub(crate) const REFUSED: u8 = 3;
}

/// Why a direction ended, kept so every later `recv` says the same.
#[derive(Clone, Debug)]
pub(crate) enum End {
    Closed,
    ClosedByPeer,
    PeerGone,
    Reset(String),
}

/// What the two sides of a connection share with its tasks.
#[derive(Debug)]
pub(crate) struct State {
    pub(crate) peer: PeerId,
    pub(crate) dead_peer_timeout: Duration,
    local_closed: AtomicBool,
    /// Both of the peer's streams ended with FIN: it closed gracefully.
    peer_finished: AtomicBool,
    bytes_sent: AtomicU64,
    bytes_received: AtomicU64,
    messages_sent: AtomicU64,
    messages_received: AtomicU64,
}

impl State {
    fn end_of(&self, e: &s2n_quic::connection::Error) -> End {
        use s2n_quic::connection::Error as E;
        match e {
            E::IdleTimerExpired { .. } => End::PeerGone,
            E::Closed { initiator, .. } if initiator.is_local() => End::Closed,
            E::Closed { .. } => End::ClosedByPeer,
            E::Application { initiator, .. } if initiator.is_local() => End::Closed,
            E::Application { error, .. } => match u64::from(*error) {
                c if c == u64::from(code::CLOSE) || c == u64::from(code::REFUSED) => {
                    End::ClosedByPeer
                }
                c if c == u64::from(code::ABORT) => End::Reset("aborted by the peer".into()),
                c if c == u64::from(code::PROTOCOL) => {
                    End::Reset("the peer saw a wire-format error".into())
                }
                c => End::Reset(format!("closed by the peer with application error {c}")),
            },
            other => End::Reset(other.to_string()),
        }
    }

    fn end_of_stream(&self, e: &s2n_quic::stream::Error) -> End {
        use s2n_quic::stream::Error as E;
        match e {
            E::ConnectionError { error, .. } => self.end_of(error),
            E::StreamReset { .. } => End::ClosedByPeer,
            E::SendAfterFinish { .. } => End::Closed,
            other => End::Reset(other.to_string()),
        }
    }

    fn error(&self, end: &End) -> TransportError {
        if self.local_closed.load(Ordering::Acquire) {
            return TransportError::Closed;
        }
        match end {
            End::Closed => TransportError::Closed,
            End::ClosedByPeer => TransportError::ClosedByPeer,
            End::PeerGone => TransportError::PeerGone {
                peer: self.peer,
                silent_for: self.dead_peer_timeout,
            },
            End::Reset(reason) => TransportError::Reset {
                reason: reason.clone(),
            },
        }
    }
}

type Item = Result<Bytes, End>;

/// The receiving half: one channel per class, fed by a reader task each.
#[derive(Debug)]
struct Inbox {
    control: mpsc::Receiver<Item>,
    data: mpsc::Receiver<Item>,
    control_done: bool,
    data_done: bool,
    ended: Option<End>,
}

/// Messages a reader task may hold ready per class before it stops reading (the stream's flow
/// control window then holds the sender back).
const CONTROL_QUEUE: usize = 64;
const DATA_QUEUE: usize = 4;

/// An incoming stream whose header was read.
pub(crate) struct Incoming {
    pub(crate) stream: ReceiveStream,
    pub(crate) reader: FrameReader,
    pub(crate) header: Header,
}

/// Reads a stream's header (the bytes after it stay in the reader).
pub(crate) async fn read_header(
    mut stream: ReceiveStream,
    max_message_size: usize,
) -> Result<Incoming, TransportError> {
    let mut reader = FrameReader::new(max_message_size);
    loop {
        if let Some(header) = reader.header().map_err(protocol)? {
            return Ok(Incoming {
                stream,
                reader,
                header,
            });
        }
        match stream.receive().await {
            Ok(Some(chunk)) => reader.push(&chunk),
            Ok(None) => return Err(protocol(WireError::Truncated)),
            Err(e) => {
                return Err(TransportError::Handshake {
                    addr: "peer".into(),
                    reason: format!("reading the stream header: {e}"),
                });
            }
        }
    }
}

fn protocol(e: WireError) -> TransportError {
    TransportError::Handshake {
        addr: "peer".into(),
        reason: e.to_string(),
    }
}

/// A Hive connection over s2n-quic. Shared as `Arc<dyn Connection>`.
#[derive(Debug)]
pub struct QuicConnection {
    state: Arc<State>,
    remote_addr: Option<SocketAddr>,
    max_send: usize,
    handle: Handle,
    control: tokio::sync::Mutex<SendStream>,
    data: tokio::sync::Mutex<SendStream>,
    inbox: tokio::sync::Mutex<Inbox>,
    shared: Arc<ConnShared>,
    close_timeout: Duration,
    /// Counts reader tasks that ended (2 = the connection carries nothing more in).
    readers: watch::Receiver<u8>,
    /// Kept so the peer's streams stay accepted for the connection's life.
    _acceptor: Mutex<s2n_quic::connection::StreamAcceptor>,
}

/// What [`QuicConnection::new`] needs.
pub(crate) struct Parts {
    pub(crate) peer: PeerId,
    pub(crate) remote_addr: Option<SocketAddr>,
    pub(crate) max_send: usize,
    pub(crate) handle: Handle,
    pub(crate) acceptor: s2n_quic::connection::StreamAcceptor,
    pub(crate) control: SendStream,
    pub(crate) data: SendStream,
    pub(crate) incoming_control: Incoming,
    pub(crate) incoming_data: Incoming,
    pub(crate) shared: Arc<ConnShared>,
    pub(crate) dead_peer_timeout: Duration,
    pub(crate) close_timeout: Duration,
}

impl QuicConnection {
    /// Starts the reader tasks of an established connection.
    pub(crate) fn new(p: Parts) -> Arc<Self> {
        let state = Arc::new(State {
            peer: p.peer,
            dead_peer_timeout: p.dead_peer_timeout,
            local_closed: AtomicBool::new(false),
            peer_finished: AtomicBool::new(false),
            bytes_sent: AtomicU64::new(0),
            bytes_received: AtomicU64::new(0),
            messages_sent: AtomicU64::new(0),
            messages_received: AtomicU64::new(0),
        });
        let (ctl_tx, ctl_rx) = mpsc::channel(CONTROL_QUEUE);
        let (data_tx, data_rx) = mpsc::channel(DATA_QUEUE);
        let (readers_tx, readers) = watch::channel(0u8);
        let readers_tx = Arc::new(readers_tx);
        let fins = Arc::new(AtomicU64::new(0));
        for (incoming, tx) in [(p.incoming_control, ctl_tx), (p.incoming_data, data_tx)] {
            tokio::spawn(read_stream(
                incoming,
                tx,
                state.clone(),
                p.handle.clone(),
                fins.clone(),
                readers_tx.clone(),
            ));
        }
        Arc::new(QuicConnection {
            state,
            remote_addr: p.remote_addr,
            max_send: p.max_send,
            handle: p.handle,
            control: tokio::sync::Mutex::new(p.control),
            data: tokio::sync::Mutex::new(p.data),
            inbox: tokio::sync::Mutex::new(Inbox {
                control: ctl_rx,
                data: data_rx,
                control_done: false,
                data_done: false,
                ended: None,
            }),
            shared: p.shared,
            close_timeout: p.close_timeout,
            readers,
            _acceptor: Mutex::new(p.acceptor),
        })
    }

    /// The s2n-quic connection's handle (for statistics or tuning the application does itself).
    pub fn handle(&self) -> &Handle {
        &self.handle
    }
}

impl Drop for QuicConnection {
    fn drop(&mut self) {
        // A graceful close left a task holding its own handle until the peer finished; anything
        // else ends at once.
        if !self.state.local_closed.load(Ordering::Acquire) {
            self.handle.close(code::ABORT.into());
        }
    }
}

/// Reads one incoming stream's frames into its channel until FIN or an error.
async fn read_stream(
    incoming: Incoming,
    tx: mpsc::Sender<Item>,
    state: Arc<State>,
    handle: Handle,
    fins: Arc<AtomicU64>,
    readers: Arc<watch::Sender<u8>>,
) {
    let Incoming {
        mut stream,
        mut reader,
        ..
    } = incoming;
    let outcome: Result<(), End> = async {
        loop {
            loop {
                match reader.next_message() {
                    Ok(Some(m)) => {
                        if tx.send(Ok(m)).await.is_err() {
                            // The connection was dropped: nobody reads any more.
                            return Ok(());
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        handle.close(code::PROTOCOL.into());
                        return Err(End::Reset(format!("the peer broke the wire format: {e}")));
                    }
                }
            }
            match stream.receive().await {
                Ok(Some(chunk)) => reader.push(&chunk),
                Ok(None) if reader.is_mid_frame() => {
                    handle.close(code::PROTOCOL.into());
                    return Err(End::Reset(WireError::Truncated.to_string()));
                }
                Ok(None) => return Ok(()),
                Err(e) => return Err(state.end_of_stream(&e)),
            }
        }
    }
    .await;
    match outcome {
        Ok(()) => {
            // FIN: everything the peer sent on this stream is in the channel (or being handed
            // over). Once both streams finished, the peer closed gracefully: end the QUIC
            // connection (nothing more will come, and the peer must not send any more).
            if fins.fetch_add(1, Ordering::AcqRel) + 1 == 2 {
                state.peer_finished.store(true, Ordering::Release);
                handle.close(code::CLOSE.into());
            }
        }
        Err(end) => {
            let _ = tx.send(Err(end)).await;
        }
    }
    readers.send_modify(|n| *n += 1);
}

#[async_trait]
impl hive_core::transport::Connection for QuicConnection {
    fn remote_peer_id(&self) -> PeerId {
        self.state.peer
    }

    fn remote_addr(&self) -> Option<SocketAddr> {
        self.remote_addr
    }

    fn max_message_size(&self) -> usize {
        self.max_send
    }

    async fn send(&self, message: Bytes, class: Class) -> Result<(), TransportError> {
        if self.state.local_closed.load(Ordering::Acquire) {
            return Err(TransportError::Closed);
        }
        let len = message.len();
        if len > self.max_send {
            return Err(TransportError::MessageTooLarge {
                len,
                max: self.max_send,
            });
        }
        let stream = match class {
            Class::Control => &self.control,
            Class::Data => &self.data,
        };
        let mut stream = stream.lock().await;
        if self.state.local_closed.load(Ordering::Acquire) {
            return Err(TransportError::Closed);
        }
        let mut chunks = [frame_prefix(len), message];
        if let Err(e) = stream.send_vectored(&mut chunks).await {
            let end = if self.state.peer_finished.load(Ordering::Acquire) {
                End::ClosedByPeer
            } else {
                self.state.end_of_stream(&e)
            };
            return Err(self.state.error(&end));
        }
        self.state
            .bytes_sent
            .fetch_add(len as u64, Ordering::Relaxed);
        self.state.messages_sent.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    async fn recv(&self) -> Result<Option<Bytes>, TransportError> {
        if self.state.local_closed.load(Ordering::Acquire) {
            return Err(TransportError::Closed);
        }
        let mut inbox = self.inbox.lock().await;
        loop {
            if let Some(end) = &inbox.ended {
                return Err(self.state.error(end));
            }
            if inbox.control_done && inbox.data_done {
                return Ok(None);
            }
            let Inbox {
                control: ctl,
                data,
                control_done,
                data_done,
                ..
            } = &mut *inbox;
            let (item, control) = tokio::select! {
                biased;
                m = ctl.recv(), if !*control_done => (m, true),
                m = data.recv(), if !*data_done => (m, false),
            };
            match item {
                Some(Ok(m)) => {
                    self.state
                        .bytes_received
                        .fetch_add(m.len() as u64, Ordering::Relaxed);
                    self.state.messages_received.fetch_add(1, Ordering::Relaxed);
                    return Ok(Some(m));
                }
                Some(Err(end)) => inbox.ended = Some(end),
                None if control => inbox.control_done = true,
                None => inbox.data_done = true,
            }
        }
    }

    fn stats(&self) -> ConnectionStats {
        let s = &self.shared;
        let rtt = s.rtt();
        let has = rtt.is_some();
        ConnectionStats {
            rtt: rtt.map(|r| r.0),
            min_rtt: rtt.map(|r| r.1),
            cwnd: has.then(|| s.cwnd.load(Ordering::Relaxed)),
            bytes_in_flight: has.then(|| s.bytes_in_flight.load(Ordering::Relaxed)),
            bytes_sent: self.state.bytes_sent.load(Ordering::Relaxed),
            bytes_acked: None,
            bytes_received: self.state.bytes_received.load(Ordering::Relaxed),
            messages_sent: self.state.messages_sent.load(Ordering::Relaxed),
            messages_received: self.state.messages_received.load(Ordering::Relaxed),
            packets_lost: Some(s.packets_lost.load(Ordering::Relaxed)),
            packets_sent: Some(s.packets_sent.load(Ordering::Relaxed)),
            cc_priority: s.knob.current(),
        }
    }

    fn set_cc_priority(&self, priority: f64) -> Result<(), TransportError> {
        if !self.shared.knob.supported() {
            return Err(TransportError::Unsupported(
                "run-time congestion-control priority (this connection's controller has none)",
            ));
        }
        if !(hive_cc::MIN_PRIORITY..=hive_cc::MAX_PRIORITY).contains(&priority) {
            return Err(TransportError::Unsupported(
                "a congestion-control priority outside [0, 2]",
            ));
        }
        self.shared.knob.request(priority);
        Ok(())
    }

    async fn close(&self) {
        if self.state.local_closed.swap(true, Ordering::AcqRel) {
            return;
        }
        // FIN both streams and wait until the peer acknowledged everything queued.
        let finish = async {
            for stream in [&self.control, &self.data] {
                let mut s = stream.lock().await;
                let _ = s.close().await;
            }
        };
        let _ = tokio::time::timeout(self.close_timeout, finish).await;
        // The peer ends the QUIC connection once it read both FINs; until then (bounded by the
        // close timeout) a task keeps it open so the peer can read what is buffered.
        let handle = self.handle.clone();
        let mut readers = self.readers.clone();
        let linger = self.close_timeout;
        tokio::spawn(async move {
            let _ = tokio::time::timeout(linger, readers.wait_for(|n| *n >= 2)).await;
            handle.close(code::CLOSE.into());
        });
    }

    fn abort(&self) {
        self.state.local_closed.store(true, Ordering::Release);
        self.handle.close(code::ABORT.into());
    }
}
