//! The simulator's queued events: the scenario's and the tracker's, handled between windows
//! ([`Ev`], their payloads in a [`Slab`]), and each agent's, handled within its windows
//! ([`Local`], ordered as [`Queued`]).

use std::cmp::Ordering;

use hive_core::TrackId;
use hive_core::time::Instant;
use hive_core::wire::Message;

/// The scenario's and the tracker's events: handled one at a time between windows, at the
/// first window edge at or after their time.
#[derive(Debug)]
pub(super) enum Ev {
    Join(usize),
    Leave {
        v: usize,
        crash: bool,
        /// Whether a newcomer replaces the viewer (churn) or not (on demand: it is done).
        replace: bool,
    },
    /// The viewer seeks to a random position (on demand).
    Seek(usize),
    /// Players whose buffer was full ask for more (on demand; live players are woken by each
    /// new fragment).
    Tick,
    Publish(u64),
    /// The agent re-announces to the tracker and gets a fresh sample.
    Announce(usize),
}

/// An event for one agent, handled within its window (in parallel with other agents').
#[derive(Debug)]
pub(super) enum Local {
    /// A message from a neighbour: control messages after their latency, Data after its
    /// transfer.
    Msg { from: usize, msg: Box<Message> },
    /// The agent's dial of `peer` ended: connected when `ok` and `peer` still runs, else failed.
    Dialled { peer: usize, ok: bool },
    /// `peer` dialled the agent and got through.
    Accepted { peer: usize },
    /// The connection to `peer` ended.
    Disconnected { peer: usize },
    /// A fragment of the run's content from the origin arrived (its id is not kept whole, so
    /// that queued events stay small).
    Origin { track: TrackId, seq: u64 },
    /// `len` bytes of Data to `peer` left (their transfer completed).
    Sent { peer: usize, len: u64 },
    /// A new fragment (all its bitrates) is listed, as the agent learns it: at its own refresh
    /// of the live playlists or its player's, whichever comes first.
    Published(u64),
    /// The player's own playlist refresh lists fragment k.
    PlayerSees(u64),
    /// The tracker's answer to an announce: the agents it names.
    Candidates(Vec<usize>),
}

/// A queued [`Local`], ordered by time, then by when it was queued: by epoch (see
/// [`Sim::epoch`](super::Sim::epoch)), then by arrival in the agent's inbox; the two packed in
/// `order`, the epoch above [`SEQ_BITS`] bits of arrival count.
#[derive(Debug)]
pub(super) struct Queued {
    pub(super) t: Instant,
    pub(super) order: u64,
    pub(super) ev: Local,
}

/// Bits of an agent's arrival count in [`Queued::order`] (68 billion events per agent); the
/// epoch keeps the other 28, fifteen days of simulated time (two epochs per window). Beyond, the
/// epoch stays at its largest: events at one instant are then ordered by arrival alone, still
/// the same on every run and thread count, though no longer the order one thread would give.
pub(super) const SEQ_BITS: u32 = 36;

impl PartialEq for Queued {
    fn eq(&self, other: &Self) -> bool {
        (self.t, self.order) == (other.t, other.order)
    }
}

impl Eq for Queued {}

impl PartialOrd for Queued {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Queued {
    /// Reversed: the earliest is the greatest (a max-heap pops it first).
    fn cmp(&self, other: &Self) -> Ordering {
        (other.t, other.order).cmp(&(self.t, self.order))
    }
}

/// Queued events' payloads, in slots reused as events are taken (the queue itself orders small
/// (time, sequence, slot) entries).
#[derive(Default)]
pub(super) struct Slab {
    slots: Vec<Option<Ev>>,
    free: Vec<usize>,
}

impl Slab {
    pub(super) fn put(&mut self, ev: Ev) -> usize {
        match self.free.pop() {
            Some(i) => {
                self.slots[i] = Some(ev);
                i
            }
            None => {
                self.slots.push(Some(ev));
                self.slots.len() - 1
            }
        }
    }

    pub(super) fn take(&mut self, i: usize) -> Option<Ev> {
        let ev = self.slots.get_mut(i)?.take();
        if ev.is_some() {
            self.free.push(i);
        }
        ev
    }
}
