//! Registrar tokens in the transport handshake, and again as they expire: a peer without a
//! token valid for its own identity and the agent's stream never gets a transport connection;
//! a neighbour whose token expires without a renewed one (a re-sent Hello) is dropped, and one
//! that renews stays. Each test runs over the UDP transport and, with the `quic` feature, over
//! the QUIC transport (tokens in the certificates, checked by the TLS verifiers).

mod common;
use common::{get, newest, within};

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use hive_agent::services::{RegistrarAdmission, token_check};
use hive_agent::{
    Admission, Agent, AgentConfig, MemoryDiscovery, PolicyKind, ServiceError, TransportKind,
    handshake_token_list,
};
use hive_core::TransportError;
use hive_core::transport::{Class, Connection, Transport};
use hive_core::wire::{Hello, Message, SUPPORTED_VERSIONS};
use hive_core::{ContentId, PeerAddr, PeerId, Role};
use hive_services::origin::{Origin, OriginConfig};
use hive_services::registrar::{Registrar, serve_registrar};
use hive_transport_udp::{Config, Keypair, UdpTransport};

async fn listen() -> (tokio::net::TcpListener, String) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", l.local_addr().expect("addr"));
    (l, url)
}

/// The test publisher's key: the origin signs its integrity lists with it.
fn publisher() -> hive_core::integrity::PublisherKey {
    hive_core::integrity::PublisherKey::from_seed([9; 32])
}

/// What every agent here trusts: lists signed by the test publisher.
fn signed() -> hive_core::integrity::IntegritySource {
    hive_core::integrity::IntegritySource::Signed {
        publisher: Some(publisher().public()),
        service: None,
    }
}

/// A synthetic live origin on loopback, and its URL.
async fn start_origin() -> (Arc<Origin>, String) {
    let origin = Arc::new(Origin::new(OriginConfig {
        sign_key: Some(publisher()),
        ..OriginConfig::default()
    }));
    let (l, url) = listen().await;
    tokio::spawn(hive_services::origin::serve(
        l,
        origin.clone(),
        std::future::pending(),
    ));
    (origin, url)
}

/// Each agent's player joins the stream: the master playlist, then the newest fragment.
async fn join_stream(agents: &[&Agent]) {
    for a in agents {
        assert_eq!(
            get(&format!("{}/live/master.m3u8", a.proxy_url())).await,
            200
        );
        let _ = newest(&a.proxy_url()).await;
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
}

/// The registrar over HTTP, remembering the stream it was asked a token for.
#[derive(Debug)]
struct Recorded {
    inner: RegistrarAdmission,
    asked: parking_lot::Mutex<Option<ContentId>>,
}

#[async_trait]
impl Admission for Recorded {
    async fn token(&self, content: ContentId, me: PeerId) -> Result<(Bytes, u64), ServiceError> {
        *self.asked.lock() = Some(content);
        self.inner.token(content, me).await
    }
}

/// Tokens signed in-process, valid `validity` seconds; after the first, only while `renews`.
#[derive(Debug)]
struct ShortLived {
    registrar: Arc<Registrar>,
    validity: u64,
    renews: bool,
    issued: AtomicUsize,
}

#[async_trait]
impl Admission for ShortLived {
    async fn token(&self, content: ContentId, me: PeerId) -> Result<(Bytes, u64), ServiceError> {
        if self.issued.fetch_add(1, Ordering::SeqCst) > 0 && !self.renews {
            return Err(ServiceError::Unreachable("the registrar is gone".into()));
        }
        let expires = unix_now() + self.validity;
        Ok((self.registrar.issue(me, content, expires), expires))
    }
}

/// A bare endpoint of the agent's transport, sending no token (until told) and checking none.
enum RawPeer {
    Udp(Arc<UdpTransport>),
    #[cfg(feature = "quic")]
    Quic(Arc<hive_transport_quic::QuicTransport>),
}

impl RawPeer {
    /// Binds one on loopback, without a token yet: the endpoint and its id.
    async fn bind(kind: TransportKind) -> (RawPeer, PeerId) {
        let addr = "127.0.0.1:0".parse().expect("addr");
        match kind {
            TransportKind::Udp => {
                let key = Keypair::generate().expect("key");
                let id = key.peer_id();
                let t = UdpTransport::bind_with_admission(
                    addr,
                    Config::default(),
                    key,
                    hive_transport_udp::Admission::default(),
                )
                .await
                .expect("bind");
                (RawPeer::Udp(t), id)
            }
            #[cfg(feature = "quic")]
            TransportKind::Quic => {
                let t = hive_transport_quic::QuicTransport::bind(
                    addr,
                    hive_transport_quic::Config::default(),
                )
                .await
                .expect("bind");
                let id = t.local_peer_id();
                (RawPeer::Quic(t), id)
            }
            #[cfg(not(feature = "quic"))]
            TransportKind::Quic => panic!("QUIC needs hive-agent's `quic` feature"),
        }
    }

    /// The token list its handshakes carry from now on.
    fn set_token_list(&self, list: Bytes) {
        match self {
            RawPeer::Udp(t) => t.set_admission_token(list),
            #[cfg(feature = "quic")]
            RawPeer::Quic(t) => t.set_admission_token(list).expect("a certificate"),
        }
    }

    async fn dial_addr(
        &self,
        addr: std::net::SocketAddr,
        peer: PeerId,
    ) -> Result<Arc<dyn Connection>, TransportError> {
        Ok(match self {
            RawPeer::Udp(t) => t.dial_addr(addr, peer).await?,
            #[cfg(feature = "quic")]
            RawPeer::Quic(t) => t.dial_addr(addr, peer).await?,
        })
    }

    async fn shutdown(&self) {
        match self {
            RawPeer::Udp(t) => t.shutdown().await,
            #[cfg(feature = "quic")]
            RawPeer::Quic(t) => t.shutdown().await,
        }
    }
}

/// Dials `agent` from `t`: the connection, if the handshake completed and it stayed open.
async fn dial(t: &RawPeer, agent: &Agent) -> Option<Arc<dyn Connection>> {
    let me = agent.me();
    let Some(PeerAddr::Socket(addr)) = me.addrs.first().cloned() else {
        panic!("the agent has no socket address: {me:?}");
    };
    let conn: Arc<dyn Connection> = match t.dial_addr(addr, me.id).await {
        Ok(c) => c,
        Err(_) => return None,
    };
    // The dialler speaks last in the handshake: a refused one may return before it hears so,
    // and then its connection ends at once.
    match tokio::time::timeout(Duration::from_millis(1500), conn.recv()).await {
        Err(_) => Some(conn),
        Ok(_) => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_without_a_valid_token_never_gets_a_transport_connection() {
    without_a_valid_token_no_connection(TransportKind::Udp).await;
}

#[cfg(feature = "quic")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_quic_a_peer_without_a_valid_token_never_gets_a_transport_connection() {
    without_a_valid_token_no_connection(TransportKind::Quic).await;
}

async fn without_a_valid_token_no_connection(transport: TransportKind) {
    let (_origin, origin_url) = start_origin().await;
    let registrar = Arc::new(Registrar::generate());
    let (l, registrar_url) = listen().await;
    tokio::spawn(serve_registrar(
        l,
        registrar.clone(),
        Duration::from_secs(3600),
        std::future::pending(),
    ));
    let admission = Arc::new(Recorded {
        inner: RegistrarAdmission::new(&registrar_url, None).expect("registrar client"),
        asked: parking_lot::Mutex::new(None),
    });
    let agent = Agent::builder()
        .config(AgentConfig {
            integrity: signed(),
            origin: Some(origin_url.clone()),
            policy: PolicyKind::RandomMesh,
            transport,
            ..AgentConfig::default()
        })
        .admission(admission.clone())
        .token_check(token_check(registrar.verifier()))
        .build()
        .await
        .expect("agent");
    join_stream(&[&agent]).await;
    assert!(within(50, || admission.asked.lock().is_some()).await);
    let content = admission.asked.lock().expect("asked");
    let refused = || agent.stats().admission_refused;

    // No token, another peer's token, a token for another stream, an expired one: refused in
    // the handshake, before the agent's accept ever sees a connection.
    let other = PeerId::from_bytes([7; 32]);
    let stolen = registrar.issue(other, content, unix_now() + 3600);
    let elsewhere = ContentId::derive("another/stream");
    for (what, token) in [
        ("no token", None),
        ("another peer's token", Some(stolen.clone())),
        ("another stream's token", Some(Bytes::new())),
        ("an expired token", Some(Bytes::new())),
    ] {
        let (t, id) = RawPeer::bind(transport).await;
        let token = match what {
            "another stream's token" => Some(registrar.issue(id, elsewhere, unix_now() + 3600)),
            "an expired token" => Some(registrar.issue(id, content, unix_now() - 1)),
            _ => token,
        };
        if token.is_some() {
            t.set_token_list(handshake_token_list(token.iter().map(|t| &t[..])));
        }
        let before = refused();
        assert!(dial(&t, &agent).await.is_none(), "{what}: connected");
        assert!(
            within(20, || refused() > before).await,
            "{what}: the agent's handshake refusals rose"
        );
        assert_eq!(agent.stats().neighbours, 0, "{what}");
        t.shutdown().await;
    }

    // With its own valid token (and the same Hello), a peer is connected and adopted.
    let (t, id) = RawPeer::bind(transport).await;
    let token = registrar.issue(id, content, unix_now() + 3600);
    t.set_token_list(handshake_token_list([&token[..]]));
    let before = refused();
    let conn = dial(&t, &agent).await.expect("a valid token connects");
    let hello = Message::Hello(Hello {
        versions: SUPPORTED_VERSIONS.to_vec(),
        peer: id,
        content,
        role: Role::Peer,
        upload_kbps: 0,
        locality: Default::default(),
        token,
    });
    conn.send(hello.to_bytes(), Class::Control)
        .await
        .expect("send Hello");
    assert!(
        within(30, || agent.stats().neighbours == 1).await,
        "adopted: {}",
        agent.status()
    );
    assert_eq!(refused(), before);
    conn.close().await;
    t.shutdown().await;
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_neighbour_whose_token_expires_without_renewal_is_dropped_and_one_that_renews_stays() {
    expiry_drops_and_renewal_keeps(TransportKind::Udp).await;
}

#[cfg(feature = "quic")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_quic_a_neighbour_whose_token_expires_without_renewal_is_dropped() {
    expiry_drops_and_renewal_keeps(TransportKind::Quic).await;
}

async fn expiry_drops_and_renewal_keeps(transport: TransportKind) {
    let (_origin, origin_url) = start_origin().await;
    let registrar = Arc::new(Registrar::generate());
    let mut discovery = MemoryDiscovery::default();
    discovery.interval = Duration::from_secs(1);
    let discovery = Arc::new(discovery);
    let make = |validity: u64, renews: bool| {
        let cfg = AgentConfig {
            integrity: signed(),
            origin: Some(origin_url.clone()),
            policy: PolicyKind::RandomMesh,
            transport,
            ..AgentConfig::default()
        };
        let admission = Arc::new(ShortLived {
            registrar: registrar.clone(),
            validity,
            renews,
            issued: AtomicUsize::new(0),
        });
        let check = token_check(registrar.verifier());
        let discovery = discovery.clone();
        async move {
            Agent::builder()
                .config(cfg)
                .discovery(discovery)
                .admission(admission)
                .token_check(check)
                .build()
                .await
                .expect("agent")
        }
    };
    // a and b renew their 3-second tokens (a third of their life before expiry); c gets one
    // 4-second token and no other.
    let a = make(3, true).await;
    let b = make(3, true).await;
    let c = make(4, false).await;
    join_stream(&[&a, &b, &c]).await;
    let status = || format!("{}\n{}\n{}", a.status(), b.status(), c.status());
    assert!(
        within(30, || a.stats().neighbours == 2
            && b.stats().neighbours == 2)
        .await,
        "all connected: {}",
        status()
    );
    // c's token expires: a and b drop it within a second of that.
    assert!(
        within(60, || a.stats().tokens_expired >= 1
            && b.stats().tokens_expired >= 1)
        .await,
        "c dropped at its token's expiry: {}",
        status()
    );
    // From then on c's handshakes are refused (its dials, and a's and b's of it), while a and
    // b, renewing, stay neighbours through several renewals.
    for _ in 0..30 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(a.stats().neighbours, 1, "a keeps b only: {}", status());
        assert_eq!(b.stats().neighbours, 1, "b keeps a only: {}", status());
    }
    assert_eq!(a.stats().tokens_expired, 1, "only c expired: {}", status());
    assert_eq!(b.stats().tokens_expired, 1, "only c expired: {}", status());
    assert!(
        a.stats().admission_refused + b.stats().admission_refused >= 1,
        "c was refused in the handshake: {}",
        status()
    );
    assert!(
        within(20, || c.stats().neighbours == 0).await,
        "{}",
        status()
    );
    for x in [a, b, c] {
        x.shutdown().await;
    }
}
