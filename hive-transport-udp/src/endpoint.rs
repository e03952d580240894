//! The sans-IO endpoint: one socket's worth of connections, demultiplexed by connection id.
//! Stateless replies (RETRY, VERSION) never exceed the datagram that caused them, and a server
//! never answers an INITIAL smaller than [`wire::MIN_INITIAL_SIZE`]: an unverified address
//! receives less than 3x what it sent.
//!
//! ## Bounded state before validation
//!
//! An INITIAL goes through these checks, cheapest first, before any handshake state (a Noise
//! responder and its two Diffie-Hellman operations) is allocated; each refusal is counted in
//! [`EndpointStats`] and costs no allocation:
//!
//! 1. smaller than 1200 bytes, or the endpoint not accepting: dropped;
//! 2. a retransmission of a handshake in progress: its RESPONSE again, within 3x the bytes that
//!    address sent (RFC 9000 §8.1: "an endpoint MUST limit the amount of data it sends to the
//!    unvalidated address to three times the amount of data received from that address");
//! 3. [`Config::max_connections`] reached: dropped (as quinn's `max_incoming`);
//! 4. a cookie that does not verify: dropped;
//! 5. no cookie while loaded ([`Config::retry_threshold`] handshakes half-open, or
//!    [`Config::require_retry`]): a stateless RETRY with a cookie (a keyed BLAKE3 MAC of the
//!    time, the source address and port and the client's cid), as QUIC Retry (RFC 9000 §8.1.2)
//!    and s2n-quic's limiter do past `max_inflight_handshake_limit`: a spoofed source never
//!    gets past this point, so a spoofed flood allocates nothing;
//! 6. [`Config::max_handshakes`] half-open; or three quarters of them, and
//!    [`Config::max_handshakes_per_prefix`] from the source's /24 (/64): dropped (the last
//!    quarter is kept for networks below their share, so a flood from a few networks leaves
//!    handshakes for everyone else);
//! 7. the source's address or /24 (/64) out of handshake tokens (a bounded LRU table of token
//!    buckets, see `limits.rs`): dropped;
//! 8. only then the handshake state.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet, VecDeque};
use std::net::SocketAddr;

use hive_core::ids::PeerId;
use hive_core::time::Instant;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::config::Config;
use crate::connection::{Connection, Phase};
use crate::handshake::{Admission, CookieKey, Keypair};
use crate::limits::RateLimiter;
use crate::wire::{self, Long, Packet};

/// Stateless replies (RETRY, VERSION) queued at most; more are dropped (and counted) until the
/// driver sends them.
const MAX_STATELESS_QUEUED: usize = 1024;

/// An endpoint's counters and table sizes: what floods cost it and what it refused.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct EndpointStats {
    /// Connections held now (inbound and outbound, handshaking, open and draining).
    pub connections: usize,
    /// Inbound handshakes in progress now (state allocated, not yet finished).
    pub handshakes: usize,
    /// Sources in the rate-limit table now (at most [`Config::rate_table_size`]).
    pub rate_table: usize,
    /// Stateless replies waiting to be sent now.
    pub stateless_queued: usize,
    /// INITIALs received (of a supported version, at least 1200 bytes).
    pub initials: u64,
    /// Inbound handshakes started (state allocated).
    pub handshakes_started: u64,
    /// Inbound connections accepted (handshake finished and admitted).
    pub accepted: u64,
    /// RETRYs sent.
    pub retries_sent: u64,
    /// INITIALs dropped: [`Config::max_connections`] reached.
    pub refused_connection_limit: u64,
    /// INITIALs dropped: [`Config::max_handshakes`] reached.
    pub refused_handshake_limit: u64,
    /// INITIALs dropped: three quarters of [`Config::max_handshakes`] were taken and their /24
    /// (/64) held [`Config::max_handshakes_per_prefix`].
    pub refused_prefix_limit: u64,
    /// INITIALs dropped: the source's address or prefix over its handshake rate.
    pub refused_rate_limit: u64,
    /// INITIALs dropped: their cookie did not verify (forged, expired, other address).
    pub refused_bad_cookie: u64,
    /// Replies withheld: they would have sent an unvalidated address more than 3x what it sent.
    pub amplification_limited: u64,
    /// Stateless replies dropped because too many were queued.
    pub stateless_dropped: u64,
    /// Handshakes aborted: the peer's admission token was refused (or missing).
    pub admission_refused: u64,
    /// Datagrams dropped before reaching a connection: malformed, unknown connection id.
    pub dropped_datagrams: u64,
    /// Sources the rate-limit table forgot to make room.
    pub rate_table_evictions: u64,
    /// Connections asked for a datagram to send: only those something happened to are asked,
    /// so idle and half-open connections (a handshake flood's) add nothing per datagram.
    pub connections_polled: u64,
}

/// A datagram to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// Where.
    pub destination: SocketAddr,
    /// What.
    pub contents: Vec<u8>,
}

/// Something the driver must act on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// An inbound connection finished its handshake.
    Accepted(u64),
}

/// A set of connections sharing one socket.
pub struct Endpoint {
    config: Config,
    key: Keypair,
    local_id: PeerId,
    rng: ChaCha8Rng,
    cookie: CookieKey,
    conns: HashMap<u64, Connection>,
    /// Half-open inbound handshakes by (address, client cid).
    initials: HashMap<(SocketAddr, u64), u64>,
    /// The same, by local cid (to forget them in O(1)).
    half_open: HashMap<u64, (SocketAddr, u64)>,
    /// Half-open handshakes per source /24 (/64).
    half_open_by_prefix: HashMap<([u8; 8], bool), usize>,
    limiter: RateLimiter,
    admission: Admission,
    stats: EndpointStats,
    /// Connections that may have something to send, in turn; `queued` holds the same ids. A
    /// connection joins when something happens to it (a datagram, a due timer, the
    /// application) and leaves when it has nothing to send, so sending costs nothing per idle
    /// or half-open connection (a handshake flood once made every datagram visit them all).
    ready: VecDeque<u64>,
    queued: HashSet<u64>,
    /// Timers: each connection's deadline as last computed (`armed`), in a heap that may also
    /// hold superseded entries (skipped when popped). `stale`: connections changed since, whose
    /// deadline is recomputed at the next [`Endpoint::handle_timeout`]. Timers cost
    /// O(log n) per change instead of a visit to every connection per wake-up.
    timers: BinaryHeap<Reverse<(Instant, u64)>>,
    armed: HashMap<u64, Instant>,
    stale: HashSet<u64>,
    out: VecDeque<Transmit>,
    events: VecDeque<Event>,
    touched: HashSet<u64>,
    removed: Vec<u64>,
    accepting: bool,
    buf: Vec<u8>,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("local_id", &self.local_id)
            .field("connections", &self.conns.len())
            .finish_non_exhaustive()
    }
}

impl Endpoint {
    /// An endpoint with the given identity; `seed` drives connection ids and the cookie secret
    /// (use a random seed outside tests).
    pub fn new(config: Config, key: Keypair, seed: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let cookie = CookieKey::new(rng.random());
        let limiter = RateLimiter::new(
            config.handshake_rate_per_addr,
            config.handshake_burst_per_addr,
            config.handshake_rate_per_prefix,
            config.handshake_burst_per_prefix,
            config.rate_table_size,
        );
        Endpoint {
            local_id: key.peer_id(),
            config,
            key,
            rng,
            cookie,
            conns: HashMap::new(),
            initials: HashMap::new(),
            half_open: HashMap::new(),
            half_open_by_prefix: HashMap::new(),
            limiter,
            admission: Admission::default(),
            stats: EndpointStats::default(),
            ready: VecDeque::new(),
            queued: HashSet::new(),
            timers: BinaryHeap::new(),
            armed: HashMap::new(),
            stale: HashSet::new(),
            out: VecDeque::new(),
            events: VecDeque::new(),
            touched: HashSet::new(),
            removed: Vec::new(),
            accepting: true,
            buf: Vec::with_capacity(2048),
        }
    }

    /// As [`Endpoint::new`], with an admission token and check carried in the handshake (see
    /// [`Admission`]).
    pub fn with_admission(config: Config, key: Keypair, seed: u64, admission: Admission) -> Self {
        let mut e = Endpoint::new(config, key, seed);
        e.admission = admission;
        e
    }

    /// Replaces this side's admission token (e.g. a renewed registrar token): handshakes that
    /// start from now on carry it; connections already open, or mid-handshake, keep theirs.
    /// The check of the remote's token is unchanged.
    pub fn set_admission_token(&mut self, token: bytes::Bytes) {
        self.admission.token = token;
    }

    /// The counters and table sizes.
    pub fn stats(&self) -> EndpointStats {
        EndpointStats {
            connections: self.conns.len(),
            handshakes: self.initials.len(),
            rate_table: self.limiter.len(),
            stateless_queued: self.out.len(),
            rate_table_evictions: self.limiter.evicted(),
            ..self.stats
        }
    }

    fn stateless(&mut self, destination: SocketAddr, contents: Vec<u8>) {
        if self.out.len() >= MAX_STATELESS_QUEUED {
            self.stats.stateless_dropped += 1;
            return;
        }
        self.out.push_back(Transmit {
            destination,
            contents,
        });
    }

    fn forget_half_open(&mut self, cid: u64) {
        if let Some(k) = self.half_open.remove(&cid) {
            self.initials.remove(&k);
            let p = crate::limits::prefix_key(k.0.ip());
            if let Some(n) = self.half_open_by_prefix.get_mut(&p) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    self.half_open_by_prefix.remove(&p);
                }
            }
        }
    }

    /// This endpoint's id.
    pub fn local_peer_id(&self) -> PeerId {
        self.local_id
    }

    /// The settings.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Stops (or resumes) accepting new connections.
    pub fn set_accepting(&mut self, accepting: bool) {
        self.accepting = accepting;
    }

    fn new_cid(&mut self) -> u64 {
        loop {
            let cid: u64 = self.rng.random();
            if cid != 0 && !self.conns.contains_key(&cid) {
                return cid;
            }
        }
    }

    fn insert(&mut self, conn: Connection) -> u64 {
        let cid = conn.local_cid;
        self.conns.insert(cid, conn);
        self.mark(cid);
        cid
    }

    /// Something happened to connection `cid`: its waiters must look, and it may have
    /// something to send.
    fn mark(&mut self, cid: u64) {
        self.touched.insert(cid);
        self.stale.insert(cid);
        if self.queued.insert(cid) {
            self.ready.push_back(cid);
        }
    }

    /// Starts dialling `addr`, expecting it to prove `expected`. Returns the connection's id.
    pub fn connect(
        &mut self,
        now: Instant,
        addr: SocketAddr,
        expected: PeerId,
    ) -> Result<u64, snow::Error> {
        let cid = self.new_cid();
        let conn = Connection::client(
            self.config,
            now,
            &self.key,
            cid,
            addr,
            expected,
            self.admission.clone(),
        )?;
        Ok(self.insert(conn))
    }

    /// A connection by id.
    pub fn connection(&self, cid: u64) -> Option<&Connection> {
        self.conns.get(&cid)
    }

    /// A connection by id, mutably.
    pub fn connection_mut(&mut self, cid: u64) -> Option<&mut Connection> {
        if self.conns.contains_key(&cid) {
            self.mark(cid);
        }
        self.conns.get_mut(&cid)
    }

    /// Ids of every connection.
    pub fn connection_ids(&self) -> Vec<u64> {
        self.conns.keys().copied().collect()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Connections whose state may have changed since the last call (to wake their waiters).
    pub fn drain_touched(&mut self) -> Vec<u64> {
        self.touched.drain().collect()
    }

    /// One datagram from `from`. Anything malformed, forged or unexpected is dropped.
    pub fn handle_datagram(&mut self, now: Instant, from: SocketAddr, data: &[u8]) {
        let Ok(packet) = wire::decode(data) else {
            self.stats.dropped_datagrams += 1;
            return;
        };
        match packet {
            Packet::Short {
                dst_cid,
                pn,
                phase,
                header,
                sealed,
            } => {
                if let Some(c) = self.conns.get_mut(&dst_cid) {
                    c.handle_short(now, pn, phase, header, sealed);
                    self.mark(dst_cid);
                } else {
                    self.stats.dropped_datagrams += 1;
                }
            }
            Packet::UnknownVersion { ty, src_cid } => {
                if ty == wire::T_INITIAL
                    && data.len() >= wire::MIN_INITIAL_SIZE
                    && let Some(cid) = src_cid
                {
                    self.stateless(from, wire::version_negotiation(cid));
                } else {
                    self.stats.dropped_datagrams += 1;
                }
            }
            Packet::Long(l) => self.handle_long(now, from, data.len(), l),
        }
    }

    fn handle_long(&mut self, now: Instant, from: SocketAddr, len: usize, l: Long<'_>) {
        match l {
            Long::Initial {
                src_cid,
                cookie,
                noise,
                ..
            } => self.handle_initial(now, from, len, src_cid, cookie, noise),
            Long::Retry { dst_cid, cookie } => {
                if let Some(c) = self.conns.get_mut(&dst_cid) {
                    c.handle_retry(now, cookie);
                    self.mark(dst_cid);
                }
            }
            Long::Version { dst_cid, versions } => {
                if let Some(c) = self.conns.get_mut(&dst_cid) {
                    c.handle_version(now, &versions);
                    self.mark(dst_cid);
                }
            }
            Long::Response {
                dst_cid,
                src_cid,
                noise,
            } => {
                if let Some(c) = self.conns.get_mut(&dst_cid)
                    && c.remote_addr == from
                {
                    let before = c.admission_refused;
                    c.handle_response(now, src_cid, noise);
                    if c.admission_refused && !before {
                        self.stats.admission_refused += 1;
                    }
                    self.mark(dst_cid);
                }
            }
            Long::Finish { dst_cid, noise } => {
                let Some(c) = self.conns.get_mut(&dst_cid) else {
                    self.stats.dropped_datagrams += 1;
                    return;
                };
                if c.remote_addr != from {
                    return;
                }
                let opened = c.handle_finish(now, noise);
                let refused = c.admission_refused;
                self.mark(dst_cid);
                if opened || refused {
                    self.forget_half_open(dst_cid);
                }
                if refused {
                    self.stats.admission_refused += 1;
                }
                if opened {
                    self.stats.accepted += 1;
                    self.events.push_back(Event::Accepted(dst_cid));
                }
            }
        }
    }

    /// An INITIAL: see the module documentation for the order of the checks.
    fn handle_initial(
        &mut self,
        now: Instant,
        from: SocketAddr,
        len: usize,
        src_cid: u64,
        cookie: &[u8],
        noise: &[u8],
    ) {
        if !self.accepting || len < wire::MIN_INITIAL_SIZE {
            self.stats.dropped_datagrams += 1;
            return;
        }
        self.stats.initials += 1;
        if let Some(&cid) = self.initials.get(&(from, src_cid)) {
            if let Some(c) = self.conns.get_mut(&cid)
                && !c.handle_initial_again(len)
            {
                self.stats.amplification_limited += 1;
            }
            if self.conns.contains_key(&cid) {
                self.mark(cid);
            }
            return;
        }
        if self.conns.len() >= self.config.max_connections {
            self.stats.refused_connection_limit += 1;
            return;
        }
        let secs = now.as_micros() / 1_000_000;
        let validated = !cookie.is_empty();
        if validated && !self.cookie.check(cookie, secs, from, src_cid) {
            self.stats.refused_bad_cookie += 1;
            return;
        }
        let loaded =
            self.config.require_retry || self.initials.len() >= self.config.retry_threshold;
        if loaded && !validated {
            // RETRY is smaller than the INITIAL that caused it (no amplification).
            self.stats.retries_sent += 1;
            let retry = wire::retry(src_cid, &self.cookie.make(secs, from, src_cid));
            self.stateless(from, retry);
            return;
        }
        if self.initials.len() >= self.config.max_handshakes {
            self.stats.refused_handshake_limit += 1;
            return;
        }
        // The last quarter of the slots is kept for networks holding less than their share.
        let prefix = crate::limits::prefix_key(from.ip());
        let crowded =
            self.initials.len() >= self.config.max_handshakes - self.config.max_handshakes / 4;
        if crowded
            && self.half_open_by_prefix.get(&prefix).copied().unwrap_or(0)
                >= self.config.max_handshakes_per_prefix
        {
            self.stats.refused_prefix_limit += 1;
            return;
        }
        if !self.limiter.allow(now, from.ip()) {
            self.stats.refused_rate_limit += 1;
            return;
        }
        let cid = self.new_cid();
        let Some(conn) = Connection::server(
            self.config,
            now,
            &self.key,
            cid,
            src_cid,
            from,
            noise,
            len,
            validated,
            self.admission.clone(),
        ) else {
            self.stats.dropped_datagrams += 1;
            return;
        };
        self.stats.handshakes_started += 1;
        self.initials.insert((from, src_cid), cid);
        self.half_open.insert(cid, (from, src_cid));
        *self.half_open_by_prefix.entry(prefix).or_default() += 1;
        self.insert(conn);
    }

    /// The next datagram to send, if any: stateless replies first, then connections in turn.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Transmit> {
        let mut contents = Vec::new();
        let destination = self.poll_transmit_into(now, &mut contents, false)?;
        Some(Transmit {
            destination,
            contents,
        })
    }

    /// As [`Endpoint::poll_transmit`], but appends the datagram to `out` instead of allocating
    /// one: returns its destination; its bytes are what `out` grew by.
    ///
    /// `more_input`: the caller is about to hand in more received datagrams (the rest of a
    /// batch); an acknowledgement that would go out alone and is not urgent waits for them, so
    /// a batch is acknowledged once instead of every second datagram. Call with `false` after
    /// the batch.
    pub fn poll_transmit_into(
        &mut self,
        now: Instant,
        out: &mut Vec<u8>,
        more_input: bool,
    ) -> Option<SocketAddr> {
        if let Some(t) = self.out.pop_front() {
            out.extend_from_slice(&t.contents);
            return Some(t.destination);
        }
        // Each ready connection is asked once: one that sends goes to the back of the line
        // (it may have more), one with nothing to send leaves it until something happens to it
        // again — but while more input is coming it stays, holding a deferred acknowledgement.
        for _ in 0..self.ready.len() {
            let cid = self.ready.pop_front()?;
            let Some(c) = self.conns.get_mut(&cid) else {
                self.queued.remove(&cid);
                continue;
            };
            self.stats.connections_polled += 1;
            let mut buf = std::mem::take(&mut self.buf);
            c.defer_ack = more_input;
            let sent = c.poll_transmit(now, &mut buf);
            c.defer_ack = false;
            let to = c.remote_addr;
            // Sending moves its timers (probe timeout, pacing, acknowledgement).
            self.stale.insert(cid);
            if sent {
                out.extend_from_slice(&buf);
            }
            self.buf = buf;
            if sent || more_input {
                self.ready.push_back(cid);
            } else {
                self.queued.remove(&cid);
            }
            if sent {
                self.touched.insert(cid);
                return Some(to);
            }
        }
        None
    }

    /// The earliest time [`Endpoint::handle_timeout`] must run (possibly a little early: a
    /// superseded timer wakes the driver once for nothing).
    pub fn poll_timeout(&self) -> Option<Instant> {
        let armed = self.timers.peek().map(|Reverse((t, _))| *t);
        let changed = self
            .stale
            .iter()
            .filter_map(|cid| self.conns.get(cid))
            .filter_map(Connection::poll_timeout)
            .min();
        match (armed, changed) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Recomputes connection `cid`'s deadline.
    fn arm(&mut self, cid: u64) {
        let Some(t) = self.conns.get(&cid).and_then(Connection::poll_timeout) else {
            self.armed.remove(&cid);
            return;
        };
        if self.armed.insert(cid, t) != Some(t) {
            self.timers.push(Reverse((t, cid)));
        }
    }

    /// Runs due timers and forgets drained connections.
    pub fn handle_timeout(&mut self, now: Instant) {
        // Connections changed since the last call: forget the drained (input, a refused
        // admission or the application may have ended them), re-arm the others.
        let mut check: Vec<u64> = self.stale.drain().collect();
        // Due timers; a superseded entry (its connection re-armed or gone) is skipped.
        while let Some(&Reverse((t, cid))) = self.timers.peek() {
            if t > now {
                break;
            }
            self.timers.pop();
            if self.armed.get(&cid) != Some(&t) {
                continue;
            }
            self.armed.remove(&cid);
            if let Some(c) = self.conns.get_mut(&cid)
                && c.poll_timeout().is_some_and(|t| now >= t)
            {
                c.handle_timeout(now);
                self.mark(cid);
            }
            check.push(cid);
        }
        check.extend(self.stale.drain());
        let before = self.removed.len();
        for cid in check {
            let Some(c) = self.conns.get(&cid) else {
                self.armed.remove(&cid);
                continue;
            };
            let drained = c.is_drained(now)
                && !matches!(c.phase, Phase::ClientHello { .. } if c.ended.is_none());
            // Drained inbound half-open handshakes and abandoned connections go.
            if drained && (!c.is_client || c.abandoned) {
                self.conns.remove(&cid);
                self.armed.remove(&cid);
                self.forget_half_open(cid);
                self.removed.push(cid);
            } else {
                self.arm(cid);
            }
        }
        if self.removed.len() > before {
            let conns = &self.conns;
            self.ready.retain(|c| conns.contains_key(c));
            self.queued.retain(|c| conns.contains_key(c));
        }
        // Superseded entries are dropped when they come due; rebuild if they pile up first.
        if self.timers.len() > 4 * self.armed.len() + 64 {
            self.timers = self.armed.iter().map(|(&c, &t)| Reverse((t, c))).collect();
        }
    }

    /// Connections forgotten since the last call (to drop their waiters' state).
    pub fn drain_removed(&mut self) -> Vec<u64> {
        std::mem::take(&mut self.removed)
    }

    /// Marks a connection as having no handle left.
    pub fn abandon(&mut self, now: Instant, cid: u64) {
        if let Some(c) = self.conns.get_mut(&cid) {
            c.abandon(now);
            self.mark(cid);
        }
    }

    /// Number of connections held (including half-open and draining ones).
    pub fn len(&self) -> usize {
        self.conns.len()
    }

    /// Whether no connection is held.
    pub fn is_empty(&self) -> bool {
        self.conns.is_empty()
    }
}
