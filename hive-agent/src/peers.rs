//! One reader and one writer task per peer connection; they talk to the engine by messages.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hive_core::transport::{Class, Connection, DialTarget, Transport};
use hive_core::wire::{Decoded, Hello, Message, WireLimits, decode_frame};
use hive_core::{ContentId, PeerInfo};
use tokio::sync::mpsc;

use crate::engine::Cmd;
use hive_overlay::Input;

/// Messages queued for one connection's writer, at most.
pub(crate) const WRITER_QUEUE: usize = 1024;

/// What the engine asks of a connection's writer.
#[derive(Debug)]
pub(crate) enum WriterCmd {
    /// Send a message.
    Send(Message, Class),
    /// Deliver what is queued, then close.
    Close,
}

/// A new connection's id (unique in the process).
pub(crate) fn next_conn_id() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// Starts the reader and writer of a connection the engine adopted; returns the writer's queue.
pub(crate) fn spawn_io(
    conn_id: u64,
    conn: Arc<dyn Connection>,
    engine: mpsc::Sender<Cmd>,
    limits: WireLimits,
) -> mpsc::Sender<WriterCmd> {
    // Bounded: Data is already limited by the engine's send window; a peer that does not
    // read its control messages either is closed by the engine when this queue is full.
    let (wtx, mut wrx) = mpsc::channel::<WriterCmd>(WRITER_QUEUE);
    let reader_conn = conn.clone();
    let reader_engine = engine.clone();
    tokio::spawn(async move {
        loop {
            match reader_conn.recv().await {
                Ok(Some(frame)) => match decode_frame(&frame, &limits) {
                    Ok(Decoded::Message(message)) => {
                        if reader_engine
                            .send(Cmd::Message { conn_id, message })
                            .await
                            .is_err()
                        {
                            break;
                        }
                    }
                    Ok(Decoded::Unknown { .. }) => {}
                    Err(e) => {
                        tracing::debug!(conn_id, error = %e, "undecodable frame; dropping the peer");
                        let _ = reader_engine.send(Cmd::ProtocolError { conn_id }).await;
                        break;
                    }
                },
                Ok(None) | Err(_) => {
                    let _ = reader_engine.send(Cmd::Closed { conn_id }).await;
                    break;
                }
            }
        }
    });
    tokio::spawn(async move {
        while let Some(cmd) = wrx.recv().await {
            match cmd {
                WriterCmd::Send(message, class) => {
                    let data_len = match &message {
                        Message::Data(d) => d.payload.len() as u64,
                        _ => 0,
                    };
                    let frame: Bytes = message.to_bytes();
                    if let Err(e) = conn.send(frame, class).await {
                        tracing::debug!(conn_id, error = %e, "send failed");
                        let _ = engine.send(Cmd::Closed { conn_id }).await;
                        return;
                    }
                    if data_len > 0 {
                        let _ = engine
                            .send(Cmd::Sent {
                                conn_id,
                                bytes: data_len,
                            })
                            .await;
                    }
                }
                WriterCmd::Close => break,
            }
        }
        conn.close().await;
    });
    wtx
}

/// Dials a peer for a swarm and reports the outcome to the engine.
pub(crate) fn spawn_dial(
    transport: Arc<dyn Transport>,
    content: ContentId,
    info: PeerInfo,
    engine: mpsc::Sender<Cmd>,
    timeout: Duration,
) {
    tokio::spawn(async move {
        let target = DialTarget::new(info.id, info.addrs.clone());
        let r = tokio::time::timeout(timeout, transport.dial(&target)).await;
        let cmd = match r {
            Ok(Ok(conn)) => Cmd::Dialled {
                content,
                info,
                conn,
            },
            Ok(Err(e)) => {
                tracing::debug!(peer = %info.id.short(), error = %e, "dial failed");
                Cmd::Swarm {
                    content,
                    input: Input::ConnectFailed(info.id),
                }
            }
            Err(_) => Cmd::Swarm {
                content,
                input: Input::ConnectFailed(info.id),
            },
        };
        let _ = engine.send(cmd).await;
    });
}

/// Accepts connections; each must open with a `Hello` within `hello_timeout`.
pub(crate) fn spawn_accept(
    transport: Arc<dyn Transport>,
    engine: mpsc::Sender<Cmd>,
    limits: WireLimits,
    hello_timeout: Duration,
) {
    tokio::spawn(async move {
        loop {
            let conn = match transport.accept().await {
                Ok(c) => c,
                Err(e) => {
                    tracing::debug!(error = %e, "accept loop ends");
                    return;
                }
            };
            let engine = engine.clone();
            let limits = limits.clone();
            tokio::spawn(async move {
                match tokio::time::timeout(hello_timeout, first_hello(&*conn, &limits)).await {
                    Ok(Some(hello)) if hello.peer == conn.remote_peer_id() => {
                        let _ = engine.send(Cmd::Inbound { conn, hello }).await;
                    }
                    _ => {
                        tracing::debug!(peer = %conn.remote_peer_id().short(), "no valid Hello; closing");
                        conn.abort();
                    }
                }
            });
        }
    });
}

async fn first_hello(conn: &dyn Connection, limits: &WireLimits) -> Option<Hello> {
    let frame = conn.recv().await.ok()??;
    match decode_frame(&frame, limits).ok()? {
        Decoded::Message(Message::Hello(h)) => Some(h),
        _ => None,
    }
}
