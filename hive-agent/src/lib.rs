//! # hive-agent
//!
//! The tokio driver of the Hive swarm engine: the process (or library) that sits between a
//! video player and the origin. The player talks plain HTTP to the agent's proxy on loopback;
//! the agent fetches manifests from the origin, learns the fragments they list, and gets each
//! fragment from a peer when one has it in time, from the origin otherwise. Every byte from a
//! peer is checked against its BLAKE3 hash before it is cached, served or played.
//!
//! ```no_run
//! # async fn run() -> Result<(), hive_agent::AgentError> {
//! use hive_agent::{Agent, AgentConfig};
//!
//! let agent = Agent::builder()
//!     .config(AgentConfig {
//!         origin: Some("https://cdn.example".into()),
//!         tracker: Some("http://tracker.example:7070".into()),
//!         ..AgentConfig::default()
//!     })
//!     .build()
//!     .await?;
//! // Point the player at the agent instead of the CDN:
//! println!("{}/live/master.m3u8", agent.proxy_url());
//! # agent.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! The agent fetches only from its origins ([`OriginAllowlist`]): the `origin` base's
//! `host:port` and [`AgentConfig::allow_origins`]. Every upstream request (manifests, the
//! fragments they list, the swarm's origin fetches, redirects, preflights) passes that list in
//! [`OriginFetcher`]; a refusal is [`FetchError::NotAllowed`], answered 403. Web pages get the
//! CORS grants the origin gives them, never more.
//!
//! The builder takes the plug-ins as trait objects, each with a default that just works:
//!
//! | plug-in | default | set with |
//! |---|---|---|
//! | `Transport` | Hive's UDP transport on `AgentConfig::udp_listen` (QUIC with [`AgentConfig::transport`] and the `quic` feature; controller [`AgentConfig::cc`]) | [`AgentBuilder::transport`] |
//! | `OverlayPolicy` | from [`AgentConfig::policy`] | [`AgentBuilder::policy`] |
//! | `FragmentCache` | a live-window cache and a byte-bounded VoD cache | [`AgentBuilder::cache`] |
//! | `ManifestFormat` | HLS, DASH, Smooth, HDS (hive-manifest) | [`AgentBuilder::manifest_format`] (tried first) |
//! | [`Discovery`] | the tracker at `AgentConfig::tracker` | [`AgentBuilder::discovery`] |
//! | [`Admission`] | the registrar at `AgentConfig::registrar` | [`AgentBuilder::admission`] |
//! | [`Clock`] | hive-core's [`MonotonicClock`] on tokio's time | [`AgentBuilder::clock`] |
//!
//! Inside, one task owns every swarm engine and follows the sans-IO rule of `hive-overlay`:
//! after every input (a player request, a peer message, an origin answer, a timer) it drains
//! `poll_output` and sleeps until the earliest `poll_timeout`. Its time is the agent's
//! [`Clock`] (shared with the default transport): tokio's, so a test that pauses tokio's time
//! (`#[tokio::test(start_paused = true)]`) runs the agent on virtual time — see
//! `tests/virtual_time.rs`.

#![forbid(unsafe_code)]

mod allow;
mod config;
mod content;
mod cors;
mod discovery;
mod engine;
mod error;
mod fetch;
mod integrity;
mod metrics;
mod peers;
pub mod proxy;
pub mod services;
mod tokens;

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use hive_core::cache::FragmentCache;
use hive_core::manifest::ManifestFormat;
use hive_core::overlay::OverlayPolicy;
use hive_core::time::{Clock, Instant, MonotonicClock};
use hive_core::transport::Transport;
use hive_core::wire::WireLimits;
use hive_core::{ContentId, PeerAddr, PeerId, PeerInfo};
use parking_lot::Mutex;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

pub use allow::{OriginAllowlist, address_class};
pub use config::{AgentConfig, PriorityMode, TransportKind};
pub use discovery::{Admission, Announced, Discovery, MemoryDiscovery, ServiceError, TokenCheck};
pub use error::{AgentError, FetchError};
pub use fetch::{Fetched, MAX_REDIRECTS, OriginFetcher, Preflight};
pub use hive_overlay::PolicyKind;
pub use metrics::AgentStats;
pub use tokens::{handshake_token_list, parse_handshake_token_list};

use engine::{Cmd, Engine};

/// Makes the overlay policy of a new swarm.
pub type PolicyFactory = Arc<dyn Fn(ContentId, PeerId) -> Box<dyn OverlayPolicy> + Send + Sync>;

/// State shared by the proxy, the engine task and the announce tasks: the agent's settings
/// and identity, and one part per concern.
pub(crate) struct Shared {
    pub(crate) cfg: AgentConfig,
    /// The engines' time: every `now` they are given, player deadlines, the engine task's
    /// wake-ups, when streams were last used.
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) peer_id: PeerId,
    pub(crate) transport: Arc<dyn Transport>,
    pub(crate) metrics: metrics::Metrics,
    /// The engine task's queue.
    pub(crate) tx: mpsc::Sender<Cmd>,
    /// What new swarms are built with.
    pub(crate) swarms: SwarmParts,
    /// The player-facing side.
    pub(crate) proxy: ProxyParts,
    /// Trackers and registrars.
    pub(crate) announce: AnnounceParts,
    /// Trusted hashes: lists fetched beside manifests, the hash service.
    pub(crate) integrity: IntegrityParts,
    /// Registrar tokens in the transport handshake: this agent's, sent; peers', checked.
    pub(crate) handshake: Arc<tokens::HandshakeTokens>,
}

/// What a new swarm is built with: its policy, its cache, who it admits, and the wire's limits.
pub(crate) struct SwarmParts {
    pub(crate) policy: PolicyFactory,
    pub(crate) cache: Option<Arc<dyn FragmentCache>>,
    pub(crate) token_check: Option<TokenCheck>,
    pub(crate) limits: WireLimits,
}

/// The player-facing proxy's state.
pub(crate) struct ProxyParts {
    pub(crate) fetcher: OriginFetcher,
    pub(crate) contents: Mutex<content::Contents>,
    /// What each origin granted web pages (CORS), mirrored on fragments served from the swarm.
    pub(crate) cors: Mutex<cors::CorsMemory>,
    addr: Mutex<Option<SocketAddr>>,
}

/// Announcing to trackers and fetching admission tokens, one task per stream.
pub(crate) struct AnnounceParts {
    pub(crate) discovery: Option<Arc<dyn Discovery>>,
    pub(crate) admission: Option<Arc<dyn Admission>>,
    tasks: Mutex<HashMap<ContentId, JoinHandle<()>>>,
}

/// Where trusted hashes come from besides the manifests.
pub(crate) struct IntegrityParts {
    /// Manifests whose integrity list is being fetched.
    pub(crate) inflight: Mutex<std::collections::HashSet<String>>,
    /// Manifests followed on the hash service.
    pub(crate) followed: Mutex<std::collections::HashSet<String>>,
    /// The hash service's client, when one is configured.
    pub(crate) service: Option<hive_services::integrity::HashServiceClient>,
}

impl Shared {
    /// Now, on the agent's clock.
    pub(crate) fn now(&self) -> Instant {
        self.clock.now()
    }

    pub(crate) fn proxy_url(&self) -> String {
        self.proxy
            .addr
            .lock()
            .map(|a| format!("http://{a}"))
            .unwrap_or_default()
    }

    pub(crate) fn me(&self) -> PeerInfo {
        let mut me = PeerInfo::new(self.peer_id, PeerAddr::Memory(0));
        me.addrs = self.transport.local_addrs();
        me.locality = self.cfg.locality.clone();
        me.role = self.cfg.role;
        me.upload_kbps = self.cfg.upload_kbps;
        me
    }

    /// The engine joined a swarm: admit its peers' handshakes, start announcing it.
    pub(crate) fn joined(&self, content: ContentId, tx: mpsc::Sender<Cmd>) {
        self.handshake.joined(content);
        if self.announce.discovery.is_none() && self.announce.admission.is_none() {
            return;
        }
        let task = tokio::spawn(discovery::announce_loop(
            content,
            self.me(),
            self.announce.discovery.clone(),
            self.announce.admission.clone(),
            tx,
        ));
        if let Some(old) = self.announce.tasks.lock().insert(content, task) {
            old.abort();
        }
    }

    /// The engine left a swarm: stop announcing, tell the tracker, stop presenting its token
    /// and admitting its peers' handshakes.
    pub(crate) fn left(&self, content: ContentId) {
        self.handshake.left(content);
        if let Some(t) = self.announce.tasks.lock().remove(&content) {
            t.abort();
        }
        if let Some(d) = self.announce.discovery.clone() {
            let me = self.peer_id;
            tokio::spawn(async move { d.leave(content, me).await });
        }
    }
}

/// A running agent.
pub struct Agent {
    shared: Arc<Shared>,
    proxy: SocketAddr,
    stop_http: Option<oneshot::Sender<()>>,
    http: Option<JoinHandle<()>>,
    engine: Option<JoinHandle<()>>,
    janitor: JoinHandle<()>,
    refresher: JoinHandle<()>,
}

impl std::fmt::Debug for Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agent")
            .field("peer", &self.shared.peer_id)
            .field("proxy", &self.proxy)
            .finish()
    }
}

impl Agent {
    /// Starts building an agent.
    pub fn builder() -> AgentBuilder {
        AgentBuilder::default()
    }

    /// Where the player-facing proxy listens.
    pub fn proxy_addr(&self) -> SocketAddr {
        self.proxy
    }

    /// The proxy's base URL, e.g. `http://127.0.0.1:41234`.
    pub fn proxy_url(&self) -> String {
        format!("http://{}", self.proxy)
    }

    /// The agent's identity (its transport key).
    pub fn peer_id(&self) -> PeerId {
        self.shared.peer_id
    }

    /// The agent as peers see it (id, transport addresses, locality, role, capacity).
    pub fn me(&self) -> PeerInfo {
        self.shared.me()
    }

    /// The counters (at most 100 ms old).
    pub fn stats(&self) -> AgentStats {
        self.shared.metrics.stats()
    }

    /// The JSON status page (as served at `/status`).
    pub fn status(&self) -> serde_json::Value {
        self.shared
            .metrics
            .status(self.shared.peer_id, &self.proxy_url())
    }

    /// Prometheus text (as served at `/metrics`).
    pub fn metrics_text(&self) -> String {
        self.shared.metrics.prometheus()
    }

    /// From now on, `mode` sets the congestion-control priority of every peer connection (see
    /// [`PriorityMode`]); also `PUT /hive/priority` on the proxy port.
    pub async fn set_priority(&self, mode: PriorityMode) -> Result<(), AgentError> {
        self.shared
            .tx
            .send(Cmd::Priority(mode))
            .await
            .map_err(|_| AgentError::Config("the agent's engine has stopped".into()))
    }

    /// Peers to consider for `content` (or for every stream), beside those from discovery.
    ///
    /// Dropped, with a log line, when the engine's input queue is full.
    pub fn add_peers(&self, content: Option<ContentId>, peers: Vec<PeerInfo>) {
        if self
            .shared
            .tx
            .try_send(Cmd::Candidates { content, peers })
            .is_err()
        {
            tracing::warn!("engine queue full or stopped: peers not added");
        }
    }

    /// Stops: says Bye to every neighbour, leaves the tracker, stops the proxy and the
    /// transport.
    pub async fn shutdown(mut self) {
        self.stop().await;
    }

    async fn stop(&mut self) {
        let (done_tx, done_rx) = oneshot::channel();
        if self.shared.tx.send(Cmd::Shutdown(done_tx)).await.is_ok() {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(2), done_rx).await;
        }
        let contents: Vec<ContentId> = self.shared.announce.tasks.lock().keys().copied().collect();
        for c in contents {
            self.shared.left(c);
        }
        if let Some(s) = self.stop_http.take() {
            let _ = s.send(());
        }
        if let Some(h) = self.http.take() {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(2), h).await;
        }
        if let Some(e) = self.engine.take() {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(1), e).await;
        }
        self.janitor.abort();
        self.refresher.abort();
        self.shared.transport.shutdown().await;
    }

    /// Stops without goodbyes, as a crash would (for tests of peers that vanish).
    pub fn kill(mut self) {
        if let Some(h) = self.http.take() {
            h.abort();
        }
        if let Some(e) = self.engine.take() {
            e.abort();
        }
        self.janitor.abort();
        self.refresher.abort();
        for (_, t) in self.shared.announce.tasks.lock().drain() {
            t.abort();
        }
        let transport = self.shared.transport.clone();
        // Halting the transport without closing connections: peers see silence.
        tokio::spawn(async move { transport.shutdown().await });
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if let Some(e) = self.engine.take() {
            e.abort();
        }
        if let Some(h) = self.http.take() {
            h.abort();
        }
        self.janitor.abort();
        self.refresher.abort();
        for (_, t) in self.shared.announce.tasks.lock().drain() {
            t.abort();
        }
    }
}

type TransportFuture = Pin<Box<dyn Future<Output = Result<Arc<dyn Transport>, AgentError>> + Send>>;

/// Builds an [`Agent`]; every plug-in has a default.
#[derive(Default)]
pub struct AgentBuilder {
    cfg: AgentConfig,
    transport: Option<Arc<dyn Transport>>,
    policy: Option<PolicyFactory>,
    cache: Option<Arc<dyn FragmentCache>>,
    formats: Vec<Arc<dyn ManifestFormat>>,
    discovery: Option<Arc<dyn Discovery>>,
    admission: Option<Arc<dyn Admission>>,
    token_check: Option<TokenCheck>,
    clock: Option<Arc<dyn Clock>>,
}

impl std::fmt::Debug for AgentBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentBuilder")
            .field("cfg", &self.cfg)
            .finish()
    }
}

impl AgentBuilder {
    /// The settings.
    pub fn config(mut self, cfg: AgentConfig) -> Self {
        self.cfg = cfg;
        self
    }

    /// The transport to peers (default: Hive's UDP transport). A transport given here gets no
    /// admission from the agent: its peers' tokens are checked in their `Hello` only (the
    /// default transports, UDP and QUIC, also carry and check them in their handshakes).
    pub fn transport(mut self, t: Arc<dyn Transport>) -> Self {
        self.transport = Some(t);
        self
    }

    /// The overlay policy of each new swarm (default: from [`AgentConfig::policy`]).
    pub fn policy(
        mut self,
        f: impl Fn(ContentId, PeerId) -> Box<dyn OverlayPolicy> + Send + Sync + 'static,
    ) -> Self {
        self.policy = Some(Arc::new(f));
        self
    }

    /// One cache for every stream (default: a live-window cache for live streams and a
    /// byte-bounded cache for on-demand ones).
    pub fn cache(mut self, c: Arc<dyn FragmentCache>) -> Self {
        self.cache = Some(c);
        self
    }

    /// A manifest format tried before the built-in four.
    pub fn manifest_format(mut self, f: Arc<dyn ManifestFormat>) -> Self {
        self.formats.push(f);
        self
    }

    /// How to find peers (default: the tracker at [`AgentConfig::tracker`], if set).
    pub fn discovery(mut self, d: Arc<dyn Discovery>) -> Self {
        self.discovery = Some(d);
        self
    }

    /// Where admission tokens come from (default: the registrar at
    /// [`AgentConfig::registrar`], if set).
    pub fn admission(mut self, a: Arc<dyn Admission>) -> Self {
        self.admission = Some(a);
        self
    }

    /// Refuse peers without a token this check accepts for their id and stream: in the
    /// default transport's handshake, UDP or QUIC (a token for any stream the agent has a swarm
    /// for), in their `Hello`, and again every second after, as tokens expire.
    pub fn token_check(mut self, check: TokenCheck) -> Self {
        self.token_check = Some(check);
        self
    }

    /// The clock of the agent's engines: the `now` of every input, player deadlines, the
    /// engine task's wake-ups (it sleeps until [`Clock::to_std`] of the engines' earliest
    /// `poll_timeout`), when a stream was last used. The default transport gets it too.
    ///
    /// Default: hive-core's [`MonotonicClock`] on tokio's time
    /// (`MonotonicClock::with_source(|| tokio::time::Instant::now().into_std())`), made at
    /// [`AgentBuilder::build`]: real time in production, virtual time in a test that pauses
    /// tokio's. A clock whose wake-ups tokio's timers do not reach (a
    /// [`ManualClock`](hive_core::time::ManualClock)) would leave the engine asleep.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    fn default_transport(
        cfg: &AgentConfig,
        clock: Arc<dyn Clock>,
        handshake: Arc<tokens::HandshakeTokens>,
        check: Option<TokenCheck>,
    ) -> TransportFuture {
        let addr = cfg.udp_listen;
        let mut udp = cfg.udp;
        let cc = cfg.cc;
        if let Some(a) = cc {
            udp.cc = a;
        }
        let kind = cfg.transport;
        Box::pin(async move {
            match kind {
                TransportKind::Udp => {
                    // This agent's tokens go in the handshake as the registrar issues them,
                    // and with tokens required a peer without one never gets a connection.
                    let t = hive_transport_udp::UdpTransport::builder()
                        .config(udp)
                        .clock(clock)
                        .admission(handshake.admission(check))
                        .bind(addr)
                        .await?;
                    // Weak: the transport's check holds the tokens, not the other way round.
                    let weak = Arc::downgrade(&t);
                    handshake.set_sink(Arc::new(move |list| {
                        if let Some(t) = weak.upgrade() {
                            t.set_admission_token(list);
                        }
                    }));
                    let t: Arc<dyn Transport> = t;
                    Ok(t)
                }
                #[cfg(feature = "quic")]
                TransportKind::Quic => {
                    // As with UDP: this agent's tokens go in its certificate as the registrar
                    // issues them, and with tokens required a peer without one fails the TLS
                    // handshake, so it never gets a connection.
                    let mut q = hive_transport_quic::Config::default();
                    if let Some(a) = cc {
                        q.congestion = hive_transport_quic::Congestion::Hive(a);
                    }
                    let admission = handshake.admission(check);
                    let t = hive_transport_quic::QuicTransport::builder()
                        .config(q)
                        .admission(hive_transport_quic::Admission {
                            token: admission.token,
                            check: admission.check,
                        })
                        .bind(addr)
                        .await?;
                    let weak = Arc::downgrade(&t);
                    handshake.set_sink(Arc::new(move |list| {
                        let Some(t) = weak.upgrade() else {
                            return;
                        };
                        if let Err(e) = t.set_admission_token(list) {
                            // The previous certificate (and token) stays; the next token
                            // the registrar issues tries again.
                            tracing::warn!("QUIC certificate with the new token: {e}");
                        }
                    }));
                    let t: Arc<dyn Transport> = t;
                    Ok(t)
                }
                #[cfg(not(feature = "quic"))]
                TransportKind::Quic => Err(AgentError::Config(
                    "the QUIC transport needs hive-agent's `quic` feature".into(),
                )),
            }
        })
    }

    /// Binds the proxy (and the default transport) and starts the agent.
    pub async fn build(self) -> Result<Agent, AgentError> {
        let cfg = self.cfg;
        let clock = self.clock.unwrap_or_else(tokio_clock);
        let discovery: Option<Arc<dyn Discovery>> = match (self.discovery, &cfg.tracker) {
            (Some(d), _) => Some(d),
            (None, Some(url)) => Some(Arc::new(services::TrackerDiscovery::new(
                url,
                cfg.tracker_want,
            )?)),
            (None, None) => None,
        };
        let mut token_check = self.token_check;
        let admission: Option<Arc<dyn Admission>> = match (self.admission, &cfg.registrar) {
            (Some(a), _) => Some(a),
            (None, Some(url)) => {
                let r = services::RegistrarAdmission::new(url, cfg.registrar_secret.clone())?;
                if token_check.is_none() && cfg.require_tokens {
                    token_check = Some(match (&cfg.registrar_key, url.starts_with("https://")) {
                        (Some(k), _) => {
                            services::token_check(hive_services::registrar::TokenVerifier::new(
                                hive_services::registrar::parse_verifying_key(k).map_err(|e| {
                                    AgentError::Config(format!("registrar key: {e}"))
                                })?,
                            ))
                        }
                        // Over TLS, the key the registrar gives is the registrar's.
                        (None, true) => r.token_check().await?,
                        (None, false) => {
                            return Err(AgentError::Config(format!(
                                "the registrar {url} is plain HTTP: pin its public key \
                                 (AgentConfig::registrar_key, --registrar-key), or anyone on \
                                 the path could hand out their own"
                            )));
                        }
                    });
                }
                Some(Arc::new(r))
            }
            (None, None) => None,
        };
        let handshake = Arc::new(tokens::HandshakeTokens::default());
        let transport = match self.transport {
            Some(t) => t,
            None => {
                Self::default_transport(&cfg, clock.clone(), handshake.clone(), token_check.clone())
                    .await?
            }
        };
        let policy = self.policy.unwrap_or_else(|| default_policy(&cfg));
        let allow = OriginAllowlist::new(cfg.origin.as_deref(), &cfg.allow_origins)
            .map_err(AgentError::Config)?;
        if allow.is_empty() {
            tracing::warn!("no --origin and no --allow-origin: the agent refuses every origin URL");
        }
        let fetcher = OriginFetcher::with_resolve(
            cfg.origin_timeout,
            cfg.origin_retries,
            cfg.max_body,
            allow,
            cfg.resolve.clone(),
        )
        .map_err(|e| AgentError::Http(e.to_string()))?;
        let listener = tokio::net::TcpListener::bind(cfg.listen)
            .await
            .map_err(|source| AgentError::Listen {
                addr: cfg.listen,
                source,
            })?;
        let proxy = listener.local_addr().map_err(|source| AgentError::Listen {
            addr: cfg.listen,
            source,
        })?;
        // Bounded: a flood of peer messages or player requests waits (back-pressure on the
        // sockets and the proxy) instead of growing the queue.
        let (tx, rx) = mpsc::channel(engine::QUEUE);
        // The hash service's lists come from `hash_service`, or from the tracker (which can
        // host the service).
        let hash_service = match (cfg.integrity.service(), &cfg.hash_service, &cfg.tracker) {
            (None, _, _) => None,
            (Some(_), Some(u), _) | (Some(_), None, Some(u)) => Some(
                hive_services::integrity::HashServiceClient::new(u)
                    .map_err(|e| AgentError::Config(format!("hash service: {e}")))?,
            ),
            (Some(_), None, None) => {
                return Err(AgentError::Config(
                    "a hash service key needs a hash service URL (or a tracker hosting it)".into(),
                ));
            }
        };
        if !cfg.integrity.can_share() {
            tracing::warn!(
                "no integrity source configured: peers' bytes cannot be verified, so every \
                 fragment comes from the origin; set a publisher key (hive sign) or a hash \
                 service key, or `--integrity none` for a closed lab"
            );
        }
        let shared = Arc::new(Shared {
            clock,
            peer_id: transport.local_peer_id(),
            transport: transport.clone(),
            metrics: metrics::Metrics::with_admission_refused(handshake.refused.clone()),
            tx: tx.clone(),
            swarms: SwarmParts {
                policy,
                cache: self.cache,
                token_check,
                limits: WireLimits::default(),
            },
            proxy: ProxyParts {
                fetcher,
                contents: Mutex::new(content::Contents::new(self.formats)),
                cors: Mutex::new(cors::CorsMemory::default()),
                addr: Mutex::new(Some(proxy)),
            },
            announce: AnnounceParts {
                discovery,
                admission,
                tasks: Mutex::new(HashMap::new()),
            },
            integrity: IntegrityParts {
                inflight: Mutex::new(Default::default()),
                followed: Mutex::new(Default::default()),
                service: hash_service,
            },
            handshake,
            cfg,
        });
        let engine = tokio::spawn(Engine::new(shared.clone(), tx.clone()).run(rx));
        peers::spawn_accept(
            transport,
            tx.clone(),
            shared.swarms.limits.clone(),
            std::time::Duration::from_secs(10),
        );
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let app = proxy::router(shared.clone());
        let http = tokio::spawn(async move {
            // Header, body and stall timeouts and a connection cap, as every Hive server: a
            // page opening thousands of idle connections cannot stop the player's.
            let r = hive_services::http::serve_bounded(
                listener,
                app,
                hive_services::http::HttpLimits::default(),
                async move {
                    let _ = stop_rx.await;
                },
            )
            .await;
            if let Err(e) = r {
                tracing::warn!(error = %e, "proxy stopped");
            }
        });
        let janitor_shared = shared.clone();
        let janitor = tokio::spawn(async move {
            let idle = janitor_shared.cfg.content_idle;
            loop {
                tokio::time::sleep(std::time::Duration::from_secs(10)).await;
                let now = janitor_shared.now();
                let gone = janitor_shared.proxy.contents.lock().expire(now, idle);
                if !gone.is_empty() {
                    let _ = janitor_shared.tx.send(Cmd::Forget(gone)).await;
                }
            }
        });
        let refresher = tokio::spawn(proxy::refresh_loop(shared.clone()));
        tracing::info!(peer = %shared.peer_id.short(), %proxy, "agent started");
        Ok(Agent {
            shared,
            proxy,
            stop_http: Some(stop_tx),
            http: Some(http),
            engine: Some(engine),
            janitor,
            refresher,
        })
    }
}

/// The default clock: hive-core's production clock on tokio's time (which a test may pause).
fn tokio_clock() -> Arc<dyn Clock> {
    Arc::new(MonotonicClock::with_source(|| {
        tokio::time::Instant::now().into_std()
    }))
}

fn default_policy(cfg: &AgentConfig) -> PolicyFactory {
    let kind = cfg.policy;
    let gateway_site = cfg.gateway_site.clone();
    let seed = cfg.seed;
    Arc::new(
        move |content: ContentId, me: PeerId| -> Box<dyn OverlayPolicy> {
            // Each agent draws differently: the seed mixes the agent's and the stream's ids.
            let h = blake3::Hasher::new()
                .update(&seed.to_le_bytes())
                .update(me.as_bytes())
                .update(content.as_bytes())
                .finalize();
            let mut b = [0u8; 8];
            b.copy_from_slice(&h.as_bytes()[..8]);
            kind.build(u64::from_le_bytes(b), gateway_site.clone())
        },
    )
}
