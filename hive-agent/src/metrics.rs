//! The agent's counters: Prometheus text at `/metrics`, JSON at `/status`.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use hive_core::cache::CacheStats;
use hive_core::{ContentId, PeerId};
use hive_overlay::SwarmStats;
use parking_lot::Mutex;
use serde_json::{Value, json};

/// One swarm as last seen by the engine.
#[derive(Clone, Debug)]
pub(crate) struct ContentSnapshot {
    pub(crate) content: ContentId,
    pub(crate) live: bool,
    pub(crate) policy: &'static str,
    /// This agent's role in the stream's swarm.
    pub(crate) role: hive_core::Role,
    pub(crate) stats: SwarmStats,
    /// The neighbours, as the engine sees them.
    pub(crate) neighbours: Vec<NeighbourSnapshot>,
}

/// One neighbour in `/status`.
#[derive(Debug, Clone)]
pub(crate) struct NeighbourSnapshot {
    pub(crate) peer: PeerId,
    /// The role this agent believes it has.
    pub(crate) role: hive_core::Role,
    pub(crate) bytes_from: u64,
    pub(crate) bytes_to: u64,
    /// Throughput measured on its transfers to this agent (bit/s), if any.
    pub(crate) throughput_bps: Option<u64>,
    /// The upload capacity it declared (kbit/s).
    pub(crate) upload_kbps: u32,
    /// Requests to it in progress.
    pub(crate) inflight_requests: u32,
}

#[derive(Debug, Default)]
struct Snapshot {
    contents: Vec<ContentSnapshot>,
    live_cache: CacheStats,
    vod_cache: CacheStats,
    connections: usize,
}

/// Counters an embedding application can read ([`crate::Agent::stats`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AgentStats {
    /// Swarm engine counters summed over streams (fragment bytes from the origin and from
    /// peers, uploads, deadline misses, ...).
    pub swarm: SwarmStats,
    /// Bytes passed through from the origin untouched (manifests, unknown URLs).
    pub passthrough_bytes: u64,
    /// Bytes of live manifests the agent fetched by itself ([`crate::AgentConfig::refresh_live`]).
    pub refresh_bytes: u64,
    /// Player requests answered.
    pub player_requests: u64,
    /// Player requests that failed (502/504).
    pub player_errors: u64,
    /// Connected neighbours over all swarms.
    pub neighbours: usize,
    /// Integrity lists fetched and verified.
    pub integrity_lists: u64,
    /// Integrity lists that could not be fetched or did not verify.
    pub integrity_list_failures: u64,
    /// Streams restarted after a panic in the engine (a bug reached by some input).
    pub engine_restarts: u64,
    /// Connections' congestion-control priority set to 1 (an urgent upload) so far.
    pub priority_urgent: u64,
    /// Connections' congestion-control priority set to 0 (scavenger: ahead of need) so far.
    pub priority_scavenger: u64,
    /// Transport handshakes refused because the remote presented no token valid for its
    /// identity and one of this agent's streams (with tokens required; the UDP endpoint's
    /// `admission_refused`, both as dialler and as acceptor).
    pub admission_refused: u64,
    /// Neighbours dropped because their token expired and no renewed one came in a `Hello`.
    pub tokens_expired: u64,
}

/// The agent's metrics.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    snapshot: Mutex<Snapshot>,
    pub(crate) passthrough_bytes: AtomicU64,
    pub(crate) refresh_bytes: AtomicU64,
    pub(crate) player_requests: AtomicU64,
    pub(crate) player_errors: AtomicU64,
    pub(crate) integrity_lists: AtomicU64,
    pub(crate) integrity_list_failures: AtomicU64,
    pub(crate) engine_restarts: AtomicU64,
    /// Shared with the transport's admission check.
    pub(crate) admission_refused: std::sync::Arc<AtomicU64>,
    pub(crate) tokens_expired: AtomicU64,
    priority_urgent: AtomicU64,
    priority_scavenger: AtomicU64,
    /// Who sets the congestion-control priority now (for `/status`).
    priority_mode: Mutex<crate::PriorityMode>,
}

impl Metrics {
    /// Metrics whose `admission_refused` is the transport admission check's counter.
    pub(crate) fn with_admission_refused(c: std::sync::Arc<AtomicU64>) -> Self {
        Metrics {
            admission_refused: c,
            ..Metrics::default()
        }
    }

    /// Who sets the congestion-control priority now.
    pub(crate) fn priority_mode(&self) -> crate::PriorityMode {
        *self.priority_mode.lock()
    }

    /// Who sets the congestion-control priority from now on.
    pub(crate) fn set_priority_mode(&self, mode: crate::PriorityMode) {
        *self.priority_mode.lock() = mode;
    }

    /// A connection's congestion-control priority was set (priority follows urgency).
    pub(crate) fn note_priority(&self, priority: f64) {
        let c = if priority >= 0.5 {
            &self.priority_urgent
        } else {
            &self.priority_scavenger
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn publish(
        &self,
        contents: Vec<ContentSnapshot>,
        cache: (CacheStats, CacheStats),
        connections: usize,
    ) {
        let mut s = self.snapshot.lock();
        s.contents = contents;
        s.live_cache = cache.0;
        s.vod_cache = cache.1;
        s.connections = connections;
    }

    pub(crate) fn stats(&self) -> AgentStats {
        let s = self.snapshot.lock();
        let mut sw = SwarmStats::default();
        let mut neighbours = 0;
        for c in &s.contents {
            // Every counter (a field-by-field sum here left the origin-fetch causes and the
            // player cancels at zero).
            sw += c.stats;
            neighbours += c.neighbours.len();
        }
        AgentStats {
            swarm: sw,
            passthrough_bytes: self.passthrough_bytes.load(Ordering::Relaxed),
            refresh_bytes: self.refresh_bytes.load(Ordering::Relaxed),
            player_requests: self.player_requests.load(Ordering::Relaxed),
            player_errors: self.player_errors.load(Ordering::Relaxed),
            neighbours,
            integrity_lists: self.integrity_lists.load(Ordering::Relaxed),
            integrity_list_failures: self.integrity_list_failures.load(Ordering::Relaxed),
            engine_restarts: self.engine_restarts.load(Ordering::Relaxed),
            priority_urgent: self.priority_urgent.load(Ordering::Relaxed),
            priority_scavenger: self.priority_scavenger.load(Ordering::Relaxed),
            admission_refused: self.admission_refused.load(Ordering::Relaxed),
            tokens_expired: self.tokens_expired.load(Ordering::Relaxed),
        }
    }

    /// Prometheus text exposition (version 0.0.4).
    pub(crate) fn prometheus(&self) -> String {
        let a = self.stats();
        let s = self.snapshot.lock();
        let mut o = String::new();
        let mut counter = |name: &str, help: &str, v: u64| {
            let _ = write!(
                o,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}\n"
            );
        };
        counter(
            "hive_agent_origin_bytes_total",
            "Fragment bytes fetched from the origin by the swarm engine.",
            a.swarm.origin_bytes,
        );
        counter(
            "hive_agent_passthrough_bytes_total",
            "Bytes passed through from the origin (manifests, unknown URLs).",
            a.passthrough_bytes,
        );
        counter(
            "hive_agent_refresh_bytes_total",
            "Bytes of live manifests the agent fetched by itself (to learn new fragments).",
            a.refresh_bytes,
        );
        counter(
            "hive_agent_peer_bytes_total",
            "Fragment bytes received from peers (verified).",
            a.swarm.peer_bytes,
        );
        counter(
            "hive_agent_uploaded_bytes_total",
            "Fragment bytes uploaded to peers.",
            a.swarm.uploaded_bytes,
        );
        counter(
            "hive_agent_player_bytes_total",
            "Fragment bytes handed to players.",
            a.swarm.player_bytes,
        );
        counter(
            "hive_agent_deadline_misses_total",
            "Player fragment requests answered after their deadline.",
            a.swarm.deadline_misses,
        );
        counter(
            "hive_agent_bad_fragments_total",
            "Fragments from peers that failed their hash.",
            a.swarm.bad_fragments,
        );
        counter(
            "hive_agent_bad_peers_total",
            "Peers dropped and refused for serving bytes that failed their trusted hash.",
            a.swarm.bad_peers,
        );
        counter(
            "hive_agent_no_trusted_hash_total",
            "Peer fetches started before the fragment's trusted hash was known.",
            a.swarm.no_trusted_hash,
        );
        counter(
            "hive_agent_held_for_hash_total",
            "Peer fragments that arrived before their trusted hash and were held, unused, for it.",
            a.swarm.held_for_hash,
        );
        counter(
            "hive_agent_verified_late_total",
            "Held peer fragments used once their trusted hash came and matched.",
            a.swarm.verified_late,
        );
        counter(
            "hive_agent_held_dropped_total",
            "Held peer fragments dropped unused: no trusted hash came in time.",
            a.swarm.held_dropped,
        );
        counter(
            "hive_agent_origin_hash_mismatches_total",
            "Origin fragments whose bytes differ from the trusted hash (played, not shared).",
            a.swarm.origin_hash_mismatches,
        );
        counter(
            "hive_agent_integrity_lists_total",
            "Signed integrity lists fetched and verified.",
            a.integrity_lists,
        );
        counter(
            "hive_agent_integrity_list_failures_total",
            "Integrity lists not fetched, or refused (bad signature, wrong key, malformed).",
            a.integrity_list_failures,
        );
        counter(
            "hive_agent_admission_refused_total",
            "Transport handshakes refused: the remote had no valid registrar token.",
            a.admission_refused,
        );
        counter(
            "hive_agent_tokens_expired_total",
            "Neighbours dropped because their registrar token expired without renewal.",
            a.tokens_expired,
        );
        counter(
            "hive_agent_engine_restarts_total",
            "Streams restarted after a panic in the engine.",
            a.engine_restarts,
        );
        counter(
            "hive_agent_cc_priority_urgent_total",
            "Uploading connections set to congestion-control priority 1: an upload a player needs soon.",
            a.priority_urgent,
        );
        counter(
            "hive_agent_cc_priority_scavenger_total",
            "Uploading connections set to congestion-control priority 0 (scavenger): uploads ahead of need.",
            a.priority_scavenger,
        );
        counter(
            "hive_agent_peer_fallbacks_total",
            "Peer requests abandoned for another source.",
            a.swarm.peer_fallbacks,
        );
        counter(
            "hive_agent_player_cancels_total",
            "Player fragment requests withdrawn before delivery (the player's HTTP request closed).",
            a.swarm.player_cancels,
        );
        counter(
            "hive_agent_origin_fetches_by_policy_total",
            "Origin fetches the overlay policy chose.",
            a.swarm.origin_by_policy,
        );
        counter(
            "hive_agent_origin_fetches_last_call_total",
            "Origin fetches forced by a player's deadline (no peer delivered in time).",
            a.swarm.origin_last_call,
        );
        counter(
            "hive_agent_player_requests_total",
            "Player requests answered.",
            a.player_requests,
        );
        counter(
            "hive_agent_player_errors_total",
            "Player requests answered with an error.",
            a.player_errors,
        );
        counter(
            "hive_agent_cache_hits_total",
            "Cache lookups that found the fragment.",
            s.live_cache.hits + s.vod_cache.hits,
        );
        counter(
            "hive_agent_cache_misses_total",
            "Cache lookups that did not.",
            s.live_cache.misses + s.vod_cache.misses,
        );
        let _ = write!(
            o,
            "# HELP hive_agent_neighbours Connected neighbours.\n# TYPE hive_agent_neighbours gauge\nhive_agent_neighbours {}\n\
# HELP hive_agent_swarms Streams joined.\n# TYPE hive_agent_swarms gauge\nhive_agent_swarms {}\n\
# HELP hive_agent_cache_bytes Bytes held by the caches.\n# TYPE hive_agent_cache_bytes gauge\nhive_agent_cache_bytes{{cache=\"live\"}} {}\nhive_agent_cache_bytes{{cache=\"vod\"}} {}\n\
# HELP hive_agent_cache_entries Fragments held by the caches.\n# TYPE hive_agent_cache_entries gauge\nhive_agent_cache_entries{{cache=\"live\"}} {}\nhive_agent_cache_entries{{cache=\"vod\"}} {}\n",
            a.neighbours,
            s.contents.len(),
            s.live_cache.bytes,
            s.vod_cache.bytes,
            s.live_cache.entries,
            s.vod_cache.entries
        );
        o
    }

    /// The JSON status page.
    pub(crate) fn status(&self, peer: PeerId, proxy: &str) -> Value {
        let a = self.stats();
        let s = self.snapshot.lock();
        let contents: Vec<Value> = s
            .contents
            .iter()
            .map(|c| {
                json!({
                    "content": c.content.to_string(),
                    "live": c.live,
                    "policy": c.policy,
                    "role": hive_services::tracker::api::role_name(c.role),
                    "origin_bytes": c.stats.origin_bytes,
                    "peer_bytes": c.stats.peer_bytes,
                    "uploaded_bytes": c.stats.uploaded_bytes,
                    "player_bytes": c.stats.player_bytes,
                    "deadline_misses": c.stats.deadline_misses,
                    "neighbours": c.neighbours.iter().map(|n| json!({
                        "peer": n.peer.to_string(),
                        "role": hive_services::tracker::api::role_name(n.role),
                        "bytes_from": n.bytes_from, "bytes_to": n.bytes_to,
                        "throughput_bps": n.throughput_bps,
                        "upload_kbps": n.upload_kbps,
                        "inflight_requests": n.inflight_requests,
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        let total = a.swarm.origin_bytes + a.swarm.peer_bytes;
        json!({
            "peer": peer.to_string(),
            "proxy": proxy,
            "connections": s.connections,
            "offload": if total == 0 { 0.0 } else { a.swarm.peer_bytes as f64 / total as f64 },
            "origin_bytes": a.swarm.origin_bytes,
            "passthrough_bytes": a.passthrough_bytes,
            "refresh_bytes": a.refresh_bytes,
            "peer_bytes": a.swarm.peer_bytes,
            "uploaded_bytes": a.swarm.uploaded_bytes,
            "player_bytes": a.swarm.player_bytes,
            "deadline_misses": a.swarm.deadline_misses,
            "peer_fallbacks": a.swarm.peer_fallbacks,
            "origin_fetches": {
                "policy": a.swarm.origin_by_policy,
                "last_call": a.swarm.origin_last_call,
                "peer_unusable": a.swarm.origin_peer_unusable,
            },
            "no_trusted_hash": a.swarm.no_trusted_hash,
            "held_for_hash": a.swarm.held_for_hash,
            "verified_late": a.swarm.verified_late,
            "held_dropped": a.swarm.held_dropped,
            "prefetches": a.swarm.prefetches,
            "priority_changes": a.swarm.priority_changes,
            "bad_fragments": a.swarm.bad_fragments,
            "bad_peers": a.swarm.bad_peers,
            "player_requests": a.player_requests,
            "player_errors": a.player_errors,
            "admission_refused": a.admission_refused,
            "tokens_expired": a.tokens_expired,
            "priority": self.priority_mode.lock().to_string(),
            "cache": { "live_bytes": s.live_cache.bytes, "vod_bytes": s.vod_cache.bytes },
            "swarms": contents,
        })
    }
}
