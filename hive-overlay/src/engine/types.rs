//! What goes in and out of the swarm engine.

use bytes::Bytes;
use hive_core::time::{Duration, Instant};
use hive_core::transport::Class;
use hive_core::wire::{ByeReason, Message};
use hive_core::{ContentHash, FragmentId, PeerId, PeerInfo, Role};

/// What the engine knows of a fragment from the manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FragmentInfo {
    /// Its id.
    pub id: FragmentId,
    /// The origin URL (what `FetchOrigin` fetches).
    pub url: String,
    /// Media time of its start.
    pub media_time: Duration,
    /// Playback duration.
    pub duration: Duration,
    /// Expected size in bytes (bitrate × duration, or a previous fetch).
    pub size_estimate: u64,
    /// Its *trusted* hash, when the driver has one: from a source that is not the peer that
    /// sends the bytes (a publisher-signed list, a hash service; see
    /// [`hive_core::integrity`]). Hashes learnt later go in with
    /// [`Swarm::handle_trusted_hashes`](crate::Swarm::handle_trusted_hashes).
    pub hash: Option<ContentHash>,
}

/// Something the driver must do.
#[derive(Clone, Debug, PartialEq)]
pub enum Output {
    /// Send a message to a connected neighbour.
    Send {
        /// The neighbour.
        to: PeerId,
        /// The message.
        message: Message,
        /// Its priority class.
        class: Class,
    },
    /// Fetch a fragment from the origin; answer with [`Swarm::handle_origin_result`].
    ///
    /// [`Swarm::handle_origin_result`]: crate::Swarm::handle_origin_result
    FetchOrigin {
        /// What to fetch.
        fragment: FragmentInfo,
        /// When the player needs it (or the prefetch horizon).
        deadline: Instant,
    },
    /// Hand verified bytes to the player(s) waiting for this fragment.
    Deliver {
        /// The fragment.
        fragment: FragmentId,
        /// Its bytes, verified against its hash.
        data: Bytes,
    },
    /// The fragment could not be obtained (origin failed repeatedly): answer the player with an
    /// error.
    Failed {
        /// The fragment.
        fragment: FragmentId,
    },
    /// Open a connection to this peer; answer with [`Swarm::handle_peer_connected`] or
    /// [`Swarm::handle_connect_failed`].
    ///
    /// [`Swarm::handle_peer_connected`]: crate::Swarm::handle_peer_connected
    /// [`Swarm::handle_connect_failed`]: crate::Swarm::handle_connect_failed
    Connect(PeerInfo),
    /// A peer could serve this wanted fragment, but its trusted hash is not known yet (the
    /// driver has not seen the newest list: its own player has not asked for the newest
    /// manifest, say). The driver fetches the hash ([`Swarm::handle_trusted_hashes`]); the
    /// peer's transfer runs meanwhile, and its bytes are used only once the hash comes and
    /// matches (the origin serves at the fragment's last call if it does not). Once per want.
    ///
    /// [`Swarm::handle_trusted_hashes`]: crate::Swarm::handle_trusted_hashes
    NeedHash {
        /// The fragment.
        fragment: FragmentId,
    },
    /// A neighbour served bytes that failed verification against the trusted hash: it was
    /// dropped and is refused from now on. Drivers log it, count it, and may report it.
    BadPeer {
        /// The neighbour.
        peer: PeerId,
        /// The fragment it served wrongly.
        fragment: FragmentId,
    },
    /// Set the congestion-control priority of the connection to this neighbour
    /// ([`Connection::set_cc_priority`](hive_core::transport::Connection::set_cc_priority)):
    /// 1 while an upload to it is urgent, 0 (scavenger) while it is ahead of need
    /// ([`SwarmConfig::priority_follows_urgency`]). Transports without the knob ignore it.
    CcPriority {
        /// The neighbour.
        peer: PeerId,
        /// The priority, 0 (yield to everything) to 1 (TCP-fair).
        priority: f64,
    },
    /// Close the connection to this neighbour (a `Bye` was already queued when relevant).
    Disconnect {
        /// The neighbour.
        peer: PeerId,
        /// Why.
        reason: ByeReason,
    },
}

/// Counters of one swarm engine.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SwarmStats {
    /// Bytes fetched from the origin.
    pub origin_bytes: u64,
    /// Bytes received from peers (verified).
    pub peer_bytes: u64,
    /// Bytes handed to the player.
    pub player_bytes: u64,
    /// Bytes uploaded to peers.
    pub uploaded_bytes: u64,
    /// Player requests answered after their deadline.
    pub deadline_misses: u64,
    /// Player requests answered in time.
    pub delivered_in_time: u64,
    /// Fragments whose bytes did not match their hash.
    pub bad_fragments: u64,
    /// Requests to peers that were abandoned (timeout, reject, disconnect).
    pub peer_fallbacks: u64,
    /// Fragments fetched ahead of the player (first tier).
    pub prefetches: u64,
    /// Origin fetches the policy chose.
    pub origin_by_policy: u64,
    /// Origin fetches forced by the time budget: a player's fragment past its last call.
    pub origin_last_call: u64,
    /// Origin fetches because the peer the policy named was not connected or had failed us.
    pub origin_peer_unusable: u64,
    /// Player requests withdrawn before delivery ([`Swarm::handle_player_cancel`]).
    ///
    /// [`Swarm::handle_player_cancel`]: crate::Swarm::handle_player_cancel
    pub player_cancels: u64,
    /// Peer fetches started while the fragment's trusted hash was not known yet (the driver
    /// was asked for it; the bytes are held until it comes).
    pub no_trusted_hash: u64,
    /// Peers' fragments that came in whole before their trusted hash and were held for it.
    pub held_for_hash: u64,
    /// Held fragments used once their trusted hash came and matched.
    pub verified_late: u64,
    /// Held fragments dropped unused because no trusted hash came in time (the origin served).
    pub held_dropped: u64,
    /// Origin fetches whose bytes did not match the trusted hash: delivered to the player (they
    /// are the origin's), but neither cached nor served to peers.
    pub origin_hash_mismatches: u64,
    /// Neighbours dropped and refused for serving bytes that failed verification.
    pub bad_peers: u64,
    /// Congestion-control priority changes asked of the driver ([`Output::CcPriority`]).
    pub priority_changes: u64,
}

/// Sums counters (an agent's streams, a simulation's agents). Every field is named, so a new
/// counter cannot be left out of the sum.
impl std::ops::AddAssign for SwarmStats {
    fn add_assign(&mut self, other: SwarmStats) {
        let SwarmStats {
            origin_bytes,
            peer_bytes,
            player_bytes,
            uploaded_bytes,
            deadline_misses,
            delivered_in_time,
            bad_fragments,
            peer_fallbacks,
            prefetches,
            origin_by_policy,
            origin_last_call,
            origin_peer_unusable,
            player_cancels,
            no_trusted_hash,
            held_for_hash,
            verified_late,
            held_dropped,
            origin_hash_mismatches,
            bad_peers,
            priority_changes,
        } = other;
        self.origin_bytes += origin_bytes;
        self.peer_bytes += peer_bytes;
        self.player_bytes += player_bytes;
        self.uploaded_bytes += uploaded_bytes;
        self.deadline_misses += deadline_misses;
        self.delivered_in_time += delivered_in_time;
        self.bad_fragments += bad_fragments;
        self.peer_fallbacks += peer_fallbacks;
        self.prefetches += prefetches;
        self.origin_by_policy += origin_by_policy;
        self.origin_last_call += origin_last_call;
        self.origin_peer_unusable += origin_peer_unusable;
        self.player_cancels += player_cancels;
        self.no_trusted_hash += no_trusted_hash;
        self.held_for_hash += held_for_hash;
        self.verified_late += verified_late;
        self.held_dropped += held_dropped;
        self.origin_hash_mismatches += origin_hash_mismatches;
        self.bad_peers += bad_peers;
        self.priority_changes += priority_changes;
    }
}

/// How peers' bytes are checked.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Verify {
    /// Against the fragment's trusted hash ([`FragmentInfo::hash`], never the sender's): the
    /// bytes are hashed and compared when they are all in, and used only once they match a
    /// trusted hash. A peer may be asked before the trusted hash is known (the driver is asked
    /// for it, [`Output::NeedHash`]): its bytes are then held, unused, until the hash comes,
    /// and dropped at the last call if it does not (the origin serves). A `Data` whose
    /// declared hash differs from the trusted one is refused at its first chunk, or when the
    /// trusted hash comes.
    #[default]
    Trusted,
    /// Trusted hashes are required as with [`Verify::Trusted`], but the sender's declared hash
    /// is compared with the trusted one instead of hashing the bytes. Only for a simulator,
    /// whose network cannot alter bytes (hashing every copy of every fragment would cost more
    /// than the rest of the simulation): the availability of trusted hashes, and so every
    /// decision, is the same as an agent's.
    TrustedDeclared,
    /// No trusted source (`--integrity none`, closed labs): the bytes are checked against the
    /// hash the sender declares. This catches corruption, not a peer that lies.
    SenderHash,
}

impl Verify {
    /// Whether peers are asked only for fragments with a trusted hash.
    pub fn needs_trusted_hash(self) -> bool {
        !matches!(self, Verify::SenderHash)
    }
}

/// Engine settings.
#[derive(Clone, Debug)]
pub struct SwarmConfig {
    /// This agent's role (consume-only agents never upload nor announce).
    pub role: Role,
    /// Most neighbours kept.
    pub max_neighbours: usize,
    /// Data chunk size (must fit the transport's maximum message size with headroom).
    pub chunk_size: usize,
    /// Have announcements are batched for this long.
    pub have_batch: Duration,
    /// How often the policy reviews the neighbour set.
    pub neighbour_review: Duration,
    /// Deadline of a player request when the driver gives none.
    pub default_deadline: Duration,
    /// Time kept in reserve to fetch from the origin when a peer does not deliver.
    pub origin_margin: Duration,
    /// Assumed origin throughput (bit/s) until one is measured.
    pub assumed_origin_bps: u64,
    /// Most uploads served at once.
    pub upload_slots: usize,
    /// Size the upload slots from this agent's advertised uplink (`PeerInfo::upload_kbps`): as
    /// many as it carries at eight times the highest bitrate listed so far, between 1 and
    /// `upload_slots`, so that each upload crosses in an eighth of its media time rather than
    /// a slow uplink being split eight ways and every transfer arriving late. Real agents turn
    /// it on; the simulator sizes the slots itself (from the whole ladder).
    pub slots_from_uplink: bool,
    /// A neighbour that refused a request as overloaded is asked again for that fragment after
    /// this pause (others are asked meanwhile).
    pub busy_retry: Duration,
    /// Data bytes emitted to one peer before the driver reports them sent with
    /// [`Swarm::handle_sent`](crate::Swarm::handle_sent).
    pub send_window: u64,
    /// Inbound connections accepted beyond `max_neighbours`.
    pub inbound_slack: usize,
    /// Most neighbour requests waiting for a fragment on its way or for an upload slot.
    pub max_parked: usize,
    /// Whether a request that finds every upload slot taken waits for one when this agent's
    /// advertised upload capacity can still make its deadline (otherwise, and always when
    /// false, it is refused as overloaded and the requester asks elsewhere).
    pub queue_for_slots: bool,
    /// Upload cap in bytes per second (None: unlimited, or [`SwarmConfig::upload_pacing_permille`]).
    pub upload_cap_bps: Option<u64>,
    /// Without an [`upload_cap_bps`](SwarmConfig::upload_cap_bps): uploads paced at this share
    /// (per mille) of the agent's advertised uplink (`PeerInfo::upload_kbps`). A viewer's
    /// uplink then never fills, so its drop-tail buffer (100 ms to seconds on home modems)
    /// stays empty and what the viewer sends besides its uploads (its own requests, Haves,
    /// Rejects, acknowledgements of what it downloads) does not wait behind them. None:
    /// unpaced. Set by the role's [`RoleProfile`](crate::RoleProfile): 900 for a viewer.
    /// Applies only when [`uplink_known`](SwarmConfig::uplink_known).
    pub upload_pacing_permille: Option<u16>,
    /// Whether the advertised uplink is this agent's real one (configured or measured), not a
    /// default: only then are uploads paced by it. An agent on a path it does not know (on
    /// loopback, as `hive demo`'s, or with no `--upload-kbps`) would only slow its uploads
    /// down to a made-up figure. Not part of a role's profile.
    pub uplink_known: bool,
    /// Origin attempts before a fragment is declared failed.
    pub origin_attempts: u32,
    /// How a fragment from a peer is checked before it is cached, served or delivered (a
    /// fragment that fails is dropped, and so is the peer that sent it, for good). The
    /// default, [`Verify::Trusted`], is the only safe choice where a peer can be an outsider.
    pub verify: Verify,
    /// Largest fragment accepted from a peer.
    pub max_fragment_len: u64,
    /// Most candidates remembered.
    pub max_candidates: usize,
    /// Live swarms: what the manifest listed is forgotten once its media end is this far behind
    /// the newest fragment listed of its track (it can no longer be fetched for a neighbour, and
    /// a long event would otherwise grow the engine by every fragment it ever listed). `None`
    /// keeps everything, as an on-demand title needs.
    pub known_window: Option<Duration>,
    /// Whether the congestion-control priority of each uploading connection follows the
    /// urgency of what it carries ([`Output::CcPriority`]): a scavenger while an upload keeps
    /// pace with its player's deadline, or is a prefetch or a relay ahead of need, so that
    /// serving others never slows this agent's own fetches; TCP-fair once a player's fragment
    /// is at risk (its pace would not make the deadline) or within
    /// [`SwarmConfig::urgent_within`] of it.
    pub priority_follows_urgency: bool,
    /// How close to its player's deadline an upload becomes urgent whatever its pace.
    pub urgent_within: Duration,
    /// Admission token presented in this agent's `Hello` (a registrar's signature binding the
    /// agent's id and the content); empty when the swarm admits anyone.
    pub token: bytes::Bytes,
}

impl Default for SwarmConfig {
    fn default() -> Self {
        SwarmConfig {
            role: Role::Peer,
            max_neighbours: 12,
            chunk_size: 60 * 1024,
            have_batch: Duration::from_millis(50),
            neighbour_review: Duration::from_secs(2),
            default_deadline: Duration::from_secs(2),
            origin_margin: Duration::from_millis(300),
            assumed_origin_bps: 20_000_000,
            upload_slots: 8,
            slots_from_uplink: false,
            busy_retry: Duration::from_millis(150),
            send_window: 256 * 1024,
            inbound_slack: 4,
            max_parked: 256,
            queue_for_slots: true,
            upload_cap_bps: None,
            upload_pacing_permille: None,
            uplink_known: true,
            origin_attempts: 3,
            verify: Verify::Trusted,
            max_fragment_len: 64 << 20,
            max_candidates: 200,
            known_window: Some(Duration::from_secs(120)),
            priority_follows_urgency: true,
            urgent_within: Duration::from_secs(1),
            token: bytes::Bytes::new(),
        }
    }
}
