//! [`Input`]: everything that can happen to an engine, as one value, so that a driver forwards
//! what it learns ([`Swarm::handle_input`]) instead of re-listing the engine's inputs in an enum
//! of its own (as str0m's `Rtc::handle_input`).

use bytes::Bytes;
use hive_core::time::Instant;
use hive_core::wire::Message;
use hive_core::{ContentHash, FragmentId, Locality, PeerId, PeerInfo, Role};

use super::{FragmentInfo, Swarm};

/// One input of a [`Swarm`]; [`Swarm::handle_input`] takes it with the time it happened.
/// Each variant is one of the engine's `handle_*` methods, whose docs say more.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Input {
    /// The player asks for a fragment ([`Swarm::handle_player_request`]); no deadline: the
    /// configured default.
    PlayerRequest {
        /// The fragment, as the manifest lists it.
        info: FragmentInfo,
        /// When the player needs it.
        deadline: Option<Instant>,
    },
    /// The player no longer needs a fragment ([`Swarm::handle_player_cancel`]).
    PlayerCancel(FragmentId),
    /// The manifest lists new fragments ([`Swarm::handle_fragments_published`]).
    FragmentsPublished(Vec<FragmentInfo>),
    /// Trusted hashes from a signed list or a hash service ([`Swarm::handle_trusted_hashes`]).
    TrustedHashes(Vec<(FragmentId, ContentHash)>),
    /// The answer to an `Output::FetchOrigin` ([`Swarm::handle_origin_result`]); with `hash`,
    /// the bytes' hash the driver already has ([`Swarm::handle_origin_bytes`]).
    Origin {
        /// The fragment fetched.
        fragment: FragmentId,
        /// Its bytes, or what went wrong.
        result: Result<Bytes, String>,
        /// The bytes' hash, when the driver knows it.
        hash: Option<ContentHash>,
    },
    /// Peers to consider, from a tracker or by hand ([`Swarm::handle_candidates`]).
    Candidates(Vec<PeerInfo>),
    /// A connection to a peer is up, with its Hello ([`Swarm::handle_peer_connected`]).
    PeerConnected(PeerInfo),
    /// A dial the engine asked for failed ([`Swarm::handle_connect_failed`]).
    ConnectFailed(PeerId),
    /// A connection ended ([`Swarm::handle_peer_disconnected`]).
    PeerDisconnected(PeerId),
    /// A message from a neighbour ([`Swarm::handle_message`]).
    Message {
        /// Who sent it (the transport's authenticated identity).
        from: PeerId,
        /// What it said.
        message: Message,
    },
    /// The transport accepted `bytes` of Data for `peer` ([`Swarm::handle_sent`]).
    Sent {
        /// To whom.
        peer: PeerId,
        /// How many bytes of Data.
        bytes: u64,
    },
    /// A service assigned this agent a role, e.g. a tracker's promotion ([`Swarm::set_role`]).
    Role(Role),
    /// Where this agent sits, e.g. as the tracker placed it ([`Swarm::set_locality`]).
    Locality(Locality),
    /// A renewed admission token for later Hellos ([`Swarm::set_token`]).
    Token(Bytes),
    /// Time passed ([`Swarm::handle_timeout`]).
    Timeout,
}

impl Swarm {
    /// Handles one input that happened at `now`. Drain [`Swarm::poll_output`] afterwards.
    pub fn handle_input(&mut self, now: Instant, input: Input) {
        match input {
            Input::PlayerRequest { info, deadline } => {
                self.handle_player_request(now, info, deadline);
            }
            Input::PlayerCancel(f) => self.handle_player_cancel(now, f),
            Input::FragmentsPublished(list) => self.handle_fragments_published(now, list),
            Input::TrustedHashes(hashes) => self.handle_trusted_hashes(now, hashes),
            Input::Origin {
                fragment,
                result,
                hash,
            } => match (result, hash) {
                (Ok(data), Some(hash)) => self.handle_origin_bytes(now, fragment, data, hash),
                (result, _) => self.handle_origin_result(now, fragment, result),
            },
            Input::Candidates(peers) => self.handle_candidates(now, peers),
            Input::PeerConnected(info) => self.handle_peer_connected(now, info),
            Input::ConnectFailed(peer) => self.handle_connect_failed(now, peer),
            Input::PeerDisconnected(peer) => self.handle_peer_disconnected(now, peer),
            Input::Message { from, message } => self.handle_message(now, from, message),
            Input::Sent { peer, bytes } => self.handle_sent(now, peer, bytes),
            Input::Role(role) => self.set_role(now, role),
            Input::Locality(locality) => self.set_locality(locality),
            Input::Token(token) => self.set_token(token),
            Input::Timeout => self.handle_timeout(now),
        }
    }
}
