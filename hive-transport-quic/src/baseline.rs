//! The s2n-quic baseline of `hive bench transport` (issue #4): one bulk transfer between a client
//! and a server endpoint in this process, with s2n-quic's **default configuration** (its default
//! TLS provider — s2n-tls on aws-lc — default limits and its default Cubic congestion controller).
//!
//! [`start`] makes a self-signed certificate for `localhost` (with `rcgen`) and starts both
//! endpoints on loopback; [`Endpoints::connect`] completes one handshake; [`Pair::transfer`] then
//! moves `bytes` on one unidirectional stream (client → server) and returns what the server
//! counted. The steps are separate so a caller can time the handshake alone, and the transfer
//! alone (wall and CPU).
//!
//! Run inside a tokio runtime (s2n-quic's endpoints are tokio tasks):
//!
//! ```
//! # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
//! let pair = hive_transport_quic::baseline::start()?.connect().await?;
//! let received = pair.transfer(1 << 20, 64 << 10).await?;
//! assert_eq!(received, 1 << 20);
//! # Ok::<(), hive_transport_quic::baseline::BaselineError>(())
//! # }).unwrap();
//! ```

use std::net::SocketAddr;

use bytes::Bytes;
use s2n_quic::client::Connect;
use s2n_quic::{Client, Connection, Server};

/// What went wrong in the baseline.
#[derive(Debug, thiserror::Error)]
pub enum BaselineError {
    /// Making the self-signed certificate failed.
    #[error("certificate: {0}")]
    Certificate(#[from] rcgen::Error),
    /// Building or starting an s2n-quic endpoint failed.
    #[error("starting the {side} endpoint: {reason}")]
    Setup {
        /// `client` or `server`.
        side: &'static str,
        /// The s2n-quic error, as text (its builder errors have several types).
        reason: String,
    },
    /// The handshake or the connection failed.
    #[error("connection: {0}")]
    Connection(#[from] s2n_quic::connection::Error),
    /// A stream operation failed.
    #[error("stream: {0}")]
    Stream(#[from] s2n_quic::stream::Error),
    /// The server endpoint stopped before a connection or stream arrived.
    #[error("the server closed before {0}")]
    ServerGone(&'static str),
    /// The sending task panicked or was cancelled.
    #[error("sender task: {0}")]
    Task(#[from] tokio::task::JoinError),
}

fn setup(side: &'static str) -> impl Fn(String) -> BaselineError {
    move |reason| BaselineError::Setup { side, reason }
}

/// Two connected endpoints: the client's connection and the server's side of it.
#[derive(Debug)]
pub struct Pair {
    // The endpoints must outlive the connections.
    _client: Client,
    _server: Server,
    client_conn: Connection,
    server_conn: Connection,
}

/// A started server and client, not yet connected.
#[derive(Debug)]
pub struct Endpoints {
    client: Client,
    server: Server,
    addr: SocketAddr,
}

/// Starts a server and a client on `127.0.0.1` with s2n-quic's defaults and a fresh self-signed
/// certificate for `localhost`, which the client trusts. Needs a tokio runtime.
pub fn start() -> Result<Endpoints, BaselineError> {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string()])?;
    let cert_pem = certified.cert.pem();
    let key_pem = certified.signing_key.serialize_pem();
    let server = Server::builder()
        .with_tls((cert_pem.as_str(), key_pem.as_str()))
        .map_err(|e| setup("server")(e.to_string()))?
        .with_io("127.0.0.1:0")
        .map_err(|e| setup("server")(e.to_string()))?
        .start()
        .map_err(|e| setup("server")(e.to_string()))?;
    let addr: SocketAddr = server
        .local_addr()
        .map_err(|e| setup("server")(e.to_string()))?;
    let client = Client::builder()
        .with_tls(cert_pem.as_str())
        .map_err(|e| setup("client")(e.to_string()))?
        .with_io("127.0.0.1:0")
        .map_err(|e| setup("client")(e.to_string()))?
        .start()
        .map_err(|e| setup("client")(e.to_string()))?;
    Ok(Endpoints {
        client,
        server,
        addr,
    })
}

impl Endpoints {
    /// Completes one handshake; returns once both sides hold the connection.
    pub async fn connect(self) -> Result<Pair, BaselineError> {
        let Endpoints {
            client,
            mut server,
            addr,
        } = self;
        let attempt = client.connect(Connect::new(addr).with_server_name("localhost"));
        let (client_conn, server_conn) = tokio::join!(attempt, server.accept());
        let mut client_conn = client_conn?;
        let server_conn = server_conn.ok_or(BaselineError::ServerGone("a connection arrived"))?;
        client_conn.keep_alive(true)?;
        Ok(Pair {
            _client: client,
            _server: server,
            client_conn,
            server_conn,
        })
    }
}

impl Pair {
    /// Sends `bytes` bytes from the client to the server on one unidirectional stream, as
    /// `chunk`-byte [`Bytes`] handed to `SendStream::send`, and returns the number of bytes the
    /// server read before the stream's end. Returns once the server has read everything.
    pub async fn transfer(self, bytes: u64, chunk: usize) -> Result<u64, BaselineError> {
        let Pair {
            _client,
            _server,
            mut client_conn,
            mut server_conn,
        } = self;
        let chunk = Bytes::from(vec![0x5a; chunk.max(1)]);
        let mut send = client_conn.open_send_stream().await?;
        let sender = tokio::spawn(async move {
            let mut left = bytes;
            while left > 0 {
                let n = left.min(chunk.len() as u64) as usize;
                send.send(chunk.slice(..n)).await?;
                left -= n as u64;
            }
            send.close().await?;
            Ok::<_, BaselineError>(client_conn)
        });
        let mut recv = server_conn
            .accept_receive_stream()
            .await?
            .ok_or(BaselineError::ServerGone("the stream opened"))?;
        let mut received = 0u64;
        while let Some(data) = recv.receive().await? {
            received += data.len() as u64;
        }
        let client_conn = sender.await??;
        client_conn.close(0u8.into());
        server_conn.close(0u8.into());
        Ok(received)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_byte_arrives_in_odd_chunks() -> Result<(), BaselineError> {
        let pair = start()?.connect().await?;
        let n = (3 << 20) + 17;
        assert_eq!(pair.transfer(n, 100_000).await?, n);
        Ok(())
    }
}
