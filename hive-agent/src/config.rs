//! Settings of an agent.

use std::net::SocketAddr;
use std::time::Duration;

use hive_core::integrity::IntegritySource;
use hive_core::{Locality, Role};
use hive_overlay::{PolicyKind, SwarmConfig};

/// Who sets the congestion-control priority of an agent's peer connections (the knob DTL has;
/// other controllers ignore it).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum PriorityMode {
    /// The engine: 1 (TCP-fair) while an upload to that peer is urgent, 0 (scavenger) while it
    /// is ahead of need. The default.
    #[default]
    Urgency,
    /// This priority on every connection, from 0 (scavenger) to 1 (TCP-fair).
    Fixed(f64),
}

impl std::fmt::Display for PriorityMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PriorityMode::Urgency => f.write_str("urgency"),
            PriorityMode::Fixed(p) => write!(f, "{p}"),
        }
    }
}

impl std::str::FromStr for PriorityMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "urgency" {
            return Ok(PriorityMode::Urgency);
        }
        match s.parse::<f64>() {
            Ok(p) if (0.0..=1.0).contains(&p) => Ok(PriorityMode::Fixed(p)),
            _ => Err(format!(
                "priority {s:?}: use urgency, or a number from 0 (scavenger) to 1 (TCP-fair)"
            )),
        }
    }
}

/// The transport an agent shares over.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TransportKind {
    /// Hive's reliable encrypted UDP transport (Noise XX, AES-GCM).
    #[default]
    Udp,
    /// QUIC (s2n-quic) with a hive-cc controller; needs hive-agent's `quic` feature.
    Quic,
}

impl TransportKind {
    /// `udp` or `quic`.
    pub fn name(self) -> &'static str {
        match self {
            TransportKind::Udp => "udp",
            TransportKind::Quic => "quic",
        }
    }
}

impl std::fmt::Display for TransportKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for TransportKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "udp" => Ok(TransportKind::Udp),
            "quic" => Ok(TransportKind::Quic),
            _ => Err(format!("unknown transport {s:?}: use udp or quic")),
        }
    }
}

/// Settings of an agent. `Default` gives an agent that proxies on an ephemeral loopback port,
/// shares over a PublicMesh overlay, and finds peers through no tracker (set one).
#[derive(Clone, Debug)]
pub struct AgentConfig {
    /// Where the player-facing HTTP proxy listens. Default `127.0.0.1:0`.
    pub listen: SocketAddr,
    /// Reverse-proxy mode: requests for `/<path>` go to this base URL. Without it, players ask
    /// for `/<full origin URL>` (e.g. `/https://cdn.example/live/master.m3u8`); both work at
    /// once when set.
    pub origin: Option<String>,
    /// Further origins the agent may fetch from, as `HOST` (the scheme's default port) or
    /// `HOST:PORT` (`[::1]:8080` for IPv6); the `origin` base's `host:port` is implied. Every
    /// upstream request — manifests, fragments they list, redirects — must go to a listed
    /// `host:port`, and loopback, private or link-local addresses only to a host listed
    /// exactly ([`crate::OriginAllowlist`]). Empty with no `origin`: every URL is refused.
    pub allow_origins: Vec<String>,
    /// Tracker base URL (e.g. `http://127.0.0.1:7070`). Without one, the agent shares only
    /// with peers it is given by hand ([`crate::Agent::add_peers`]).
    pub tracker: Option<String>,
    /// Registrar base URL: the agent fetches an admission token per content and presents it.
    pub registrar: Option<String>,
    /// With a registrar: refuse peers without a valid token from it — in the transport's
    /// handshake, UDP or QUIC (no connection at all), in their Hello, and once it expires
    /// unrenewed.
    /// Default true.
    pub require_tokens: bool,
    /// Where this agent sits (the tracker may override it from its address table).
    pub locality: Locality,
    /// Its role (consume-only agents never upload).
    pub role: Role,
    /// Upload capacity offered, kbit/s: told to the tracker and to peers; it sizes a viewer's
    /// upload slots. When it is the real uplink (`swarm.uplink_known`, which the default
    /// leaves off: 10 000 is a placeholder), a viewer paces its uploads at 90% of it
    /// ([`hive_overlay::RoleProfile::VIEWER`]).
    pub upload_kbps: u32,
    /// Overlay policy of new swarms.
    pub policy: PolicyKind,
    /// With [`PolicyKind::PrivateHierarchy`]: the site that holds the internet gateway, whose
    /// supernodes the other sites' supernodes fetch through.
    pub gateway_site: Option<String>,
    /// Swarm engine settings, for a viewer: the default is
    /// [`SwarmConfig::for_role`]`(Role::Peer)`, hive-overlay's viewer profile (upload slots
    /// sized from `upload_kbps`), as the simulator configures its viewers. Their `role` is
    /// replaced by [`AgentConfig::role`]; when the two differ, that role's
    /// [`RoleProfile`](hive_overlay::RoleProfile) applies, and a tracker's promotion applies
    /// the supernode profile.
    pub swarm: SwarmConfig,
    /// Media time kept per track by the live cache. Default 30 s.
    pub live_window: Duration,
    /// Byte budget of the on-demand cache. Default 512 MiB.
    pub vod_cache_bytes: u64,
    /// Time-out of one origin request. Default 10 s.
    pub origin_timeout: Duration,
    /// Retries of a failed pass-through origin request (manifests, unknown URLs). Default 2.
    pub origin_retries: u32,
    /// Time a player request may wait for a fragment before the proxy answers 504. Default 15 s.
    pub player_timeout: Duration,
    /// Largest body fetched from the origin. Default 64 MiB.
    pub max_body: u64,
    /// Peers asked of the tracker per announce. Default 30.
    pub tracker_want: usize,
    /// Seed of random choices (RandomMesh), mixed with the agent's and the stream's ids.
    pub seed: u64,
    /// The transport the agent shares over when none is given to the builder. Default UDP.
    pub transport: TransportKind,
    /// The congestion controller of every peer connection (either transport). Default DTL at
    /// priority 1: its priority then follows the urgency of each upload (scavenger ahead of
    /// need, TCP-fair when a player waits). `None` keeps the transport's own setting.
    pub cc: Option<hive_cc::Algorithm>,
    /// Who sets the controller's priority: the engine from each upload's urgency (default), or
    /// one fixed priority. Changed at run time with [`Agent::set_priority`](crate::Agent::set_priority)
    /// or `PUT /hive/priority`.
    pub priority: PriorityMode,
    /// Where the default transport binds (UDP for both). Default `127.0.0.1:0`; set
    /// `0.0.0.0:PORT` to share beyond this machine.
    pub udp_listen: SocketAddr,
    /// Settings of the default UDP transport.
    pub udp: hive_transport_udp::Config,
    /// A stream no player asked for this long is left. Default 2 minutes.
    pub content_idle: Duration,
    /// Whether the agent fetches the live manifests of the streams its player watches by
    /// itself, every half fragment duration, each rendition's (default true): it then knows
    /// each new fragment when it is published, as its neighbours, asking it for renditions its
    /// own player does not play, need. Without it the agent knows only what its player's
    /// playlist requests showed it, and a neighbour's request for a fragment it has not heard
    /// of is refused (the neighbour falls back to another source, often the origin).
    pub refresh_live: bool,
    /// Where trusted fragment hashes come from. A peer's bytes are used only after they match
    /// a hash from this source (never the sender's own claim); a fragment without one in time
    /// comes from the origin. The default requires trusted hashes and has no key, so peers
    /// serve nothing until a publisher or hash-service key is set;
    /// [`IntegritySource::None`] trusts every peer (closed labs only).
    pub integrity: IntegritySource,
    /// Host names resolved to fixed addresses instead of by the system resolver, as
    /// `curl --resolve` (pin an origin's addresses; tests give two agents one origin name on
    /// two servers). The origin allowlist checks these addresses like any others.
    pub resolve: Vec<(String, std::net::IpAddr)>,
    /// Where the hash service answers (`GET /v1/integrity`), when
    /// [`IntegritySource::Signed`] names a service key. Default: the tracker, which can host
    /// it.
    pub hash_service: Option<String>,
    /// Host names the proxy answers to, beside IP addresses and `localhost`: a request whose
    /// `Host` is another name is refused (421), so a web page cannot rebind its own name to
    /// the agent's address and read it as same-origin.
    pub proxy_names: Vec<String>,
    /// The registrar's Ed25519 public key (64 hex digits), pinned: peers' tokens are checked
    /// against it. Required with a plain-HTTP registrar and `require_tokens` (the key is not
    /// fetched in clear); over HTTPS it may be fetched from the registrar.
    pub registrar_key: Option<String>,
    /// The registrar's enrollment secret, presented with each token request.
    pub registrar_secret: Option<String>,
}

impl Default for AgentConfig {
    fn default() -> Self {
        AgentConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            origin: None,
            allow_origins: Vec::new(),
            tracker: None,
            registrar: None,
            require_tokens: true,
            locality: Locality::default(),
            role: Role::Peer,
            upload_kbps: 10_000,
            policy: PolicyKind::PublicMesh,
            gateway_site: None,
            // `upload_kbps` above is a placeholder, not this host's uplink: no pacing by it.
            swarm: SwarmConfig {
                uplink_known: false,
                ..SwarmConfig::for_role(Role::Peer)
            },
            live_window: Duration::from_secs(30),
            vod_cache_bytes: 512 << 20,
            origin_timeout: Duration::from_secs(10),
            origin_retries: 2,
            player_timeout: Duration::from_secs(15),
            max_body: 64 << 20,
            tracker_want: hive_core::ranking::DEFAULT_WANT,
            seed: 0,
            transport: TransportKind::Udp,
            cc: Some(hive_cc::Algorithm::Dtl(1.0)),
            priority: PriorityMode::Urgency,
            udp_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            udp: hive_transport_udp::Config {
                // Chunks wait in the engine (where a Cancel removes them), not in the transport.
                send_buffer: 1 << 20,
                ..hive_transport_udp::Config::default()
            },
            content_idle: Duration::from_secs(120),
            refresh_live: true,
            integrity: IntegritySource::default(),
            resolve: Vec::new(),
            hash_service: None,
            proxy_names: Vec::new(),
            registrar_key: None,
            registrar_secret: None,
        }
    }
}
