//! The sans-IO endpoint: one socket's worth of connections, demultiplexed by connection id.
//! Stateless replies (RETRY, VERSION) never exceed the datagram that caused them, and a server
//! never answers an INITIAL smaller than [`wire::MIN_INITIAL_SIZE`]: an unverified address
//! receives less than 3x what it sent.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;

use hive_core::ids::PeerId;
use hive_core::time::Instant;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::config::Config;
use crate::connection::{Connection, Phase};
use crate::handshake::{CookieKey, Keypair};
use crate::wire::{self, Long, Packet};

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
    order: VecDeque<u64>,
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
        Endpoint {
            local_id: key.peer_id(),
            config,
            key,
            rng,
            cookie,
            conns: HashMap::new(),
            initials: HashMap::new(),
            order: VecDeque::new(),
            out: VecDeque::new(),
            events: VecDeque::new(),
            touched: HashSet::new(),
            removed: Vec::new(),
            accepting: true,
            buf: Vec::with_capacity(2048),
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
        self.order.push_back(cid);
        self.touched.insert(cid);
        cid
    }

    /// Starts dialling `addr`, expecting it to prove `expected`. Returns the connection's id.
    pub fn connect(
        &mut self,
        now: Instant,
        addr: SocketAddr,
        expected: PeerId,
    ) -> Result<u64, snow::Error> {
        let cid = self.new_cid();
        let conn = Connection::client(self.config, now, &self.key, cid, addr, expected)?;
        Ok(self.insert(conn))
    }

    /// A connection by id.
    pub fn connection(&self, cid: u64) -> Option<&Connection> {
        self.conns.get(&cid)
    }

    /// A connection by id, mutably.
    pub fn connection_mut(&mut self, cid: u64) -> Option<&mut Connection> {
        self.touched.insert(cid);
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
            return;
        };
        match packet {
            Packet::Short {
                dst_cid,
                pn,
                header,
                sealed,
            } => {
                if let Some(c) = self.conns.get_mut(&dst_cid) {
                    c.handle_short(now, pn, header, sealed);
                    self.touched.insert(dst_cid);
                }
            }
            Packet::UnknownVersion { ty, src_cid } => {
                if ty == wire::T_INITIAL
                    && data.len() >= wire::MIN_INITIAL_SIZE
                    && let Some(cid) = src_cid
                {
                    self.out.push_back(Transmit {
                        destination: from,
                        contents: wire::version_negotiation(cid),
                    });
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
            } => {
                if !self.accepting || len < wire::MIN_INITIAL_SIZE {
                    return;
                }
                if let Some(&cid) = self.initials.get(&(from, src_cid)) {
                    if let Some(c) = self.conns.get_mut(&cid) {
                        c.handle_initial_again();
                    }
                    return;
                }
                let secs = now.as_micros() / 1_000_000;
                let demand =
                    self.config.require_retry || self.initials.len() >= self.config.retry_threshold;
                if demand && !self.cookie.check(cookie, secs, from, src_cid) {
                    self.out.push_back(Transmit {
                        destination: from,
                        contents: wire::retry(src_cid, &self.cookie.make(secs, from, src_cid)),
                    });
                    return;
                }
                let cid = self.new_cid();
                if let Some(conn) =
                    Connection::server(self.config, now, &self.key, cid, src_cid, from, noise)
                {
                    self.initials.insert((from, src_cid), cid);
                    self.insert(conn);
                }
            }
            Long::Retry { dst_cid, cookie } => {
                if let Some(c) = self.conns.get_mut(&dst_cid) {
                    c.handle_retry(now, cookie);
                }
            }
            Long::Version { dst_cid, versions } => {
                if let Some(c) = self.conns.get_mut(&dst_cid) {
                    c.handle_version(now, &versions);
                    self.touched.insert(dst_cid);
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
                    c.handle_response(now, src_cid, noise);
                    self.touched.insert(dst_cid);
                }
            }
            Long::Finish { dst_cid, noise } => {
                if let Some(c) = self.conns.get_mut(&dst_cid)
                    && c.remote_addr == from
                    && c.handle_finish(now, noise)
                {
                    self.initials.retain(|_, v| *v != dst_cid);
                    self.events.push_back(Event::Accepted(dst_cid));
                    self.touched.insert(dst_cid);
                }
            }
        }
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
        for _ in 0..self.order.len() {
            let cid = self.order.pop_front()?;
            self.order.push_back(cid);
            let Some(c) = self.conns.get_mut(&cid) else {
                continue;
            };
            let mut buf = std::mem::take(&mut self.buf);
            c.defer_ack = more_input;
            let sent = c.poll_transmit(now, &mut buf);
            c.defer_ack = false;
            if sent {
                self.touched.insert(cid);
                out.extend_from_slice(&buf);
            }
            let to = c.remote_addr;
            self.buf = buf;
            if sent {
                return Some(to);
            }
        }
        None
    }

    /// The earliest time [`Endpoint::handle_timeout`] must run.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.conns
            .values()
            .filter_map(Connection::poll_timeout)
            .min()
    }

    /// Runs due timers and forgets drained connections.
    pub fn handle_timeout(&mut self, now: Instant) {
        let mut gone = Vec::new();
        for (&cid, c) in &mut self.conns {
            if c.poll_timeout().is_some_and(|t| now >= t) {
                c.handle_timeout(now);
                self.touched.insert(cid);
            }
            if c.is_drained(now)
                && !matches!(c.phase, Phase::ClientHello { .. } if c.ended.is_none())
            {
                gone.push(cid);
            }
        }
        for cid in gone {
            // Drained inbound half-open handshakes and abandoned connections go.
            let keep = self
                .conns
                .get(&cid)
                .is_some_and(|c| c.is_client && !c.abandoned);
            if keep {
                continue;
            }
            self.conns.remove(&cid);
            self.initials.retain(|_, v| *v != cid);
            self.order.retain(|c| *c != cid);
            self.removed.push(cid);
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
            self.touched.insert(cid);
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
