//! What agents do beyond themselves in a window: messages, dials and disconnects, routed from
//! chunk to chunk of agents into their receivers' inboxes ([`Routed`], [`Mail`]); and effects
//! on the network and the scenario, applied in the sequential step after the window
//! ([`Effect`]).

use hive_core::FragmentId;
use hive_core::time::Instant;
use hive_core::wire::Message;

use super::Agent;
use super::queue::Local;

/// What an agent did within a window that goes through the network or the scenario, applied
/// in time order after the window. (Messages, dials and disconnects go straight to their
/// receivers' inboxes: [`Routed`].)
#[derive(Debug)]
pub(super) enum Effect {
    /// Data to `to`: queued on the pair's connection and sent through the network.
    Data { to: usize, msg: Box<Message> },
    /// A fetch from the origin.
    FetchOrigin { id: FragmentId },
    /// On demand: the viewer leaves at `at` (it has played the title).
    Leave { at: Instant },
}

/// Agents are run, and their mail sorted, in chunks of this many.
pub(super) const CHUNK: usize = 128;

/// An event on its way to agent `to`'s inbox.
#[derive(Debug)]
pub(super) struct Routed {
    pub(super) to: usize,
    pub(super) at: Instant,
    pub(super) ev: Local,
}

/// A window's mail between chunks of agents: `out[s][c]` holds what the agents of chunk `s`
/// sent to those of chunk `c`, in the order sent (filled in parallel, one chunk per task);
/// `into[c][s]` is the same, handed over to the receiving chunk (emptied in parallel).
#[derive(Default)]
pub(super) struct Mail {
    pub(super) out: Vec<Vec<Vec<Routed>>>,
    pub(super) into: Vec<Vec<Vec<Routed>>>,
    /// The epoch of the mail in `into` (None: there is none).
    pub(super) pending: Option<u64>,
    /// Per chunk, its agents left with effects for the sequential step, in order.
    pub(super) effects: Vec<Vec<usize>>,
}

impl Mail {
    /// Room for `n` chunks.
    pub(super) fn fit(&mut self, n: usize) {
        self.effects.resize_with(n, Vec::new);
        for m in [&mut self.out, &mut self.into] {
            m.resize_with(n, Vec::new);
            for row in m.iter_mut() {
                row.resize_with(n, Vec::new);
            }
        }
    }

    /// Hands every chunk's mail to its receiving chunks (the buffers are swapped, not
    /// copied), to be queued in `epoch`.
    pub(super) fn hand_over(&mut self, epoch: u64) {
        let mut any = false;
        for (s, row) in self.out.iter_mut().enumerate() {
            for (c, cell) in row.iter_mut().enumerate() {
                if !cell.is_empty() {
                    std::mem::swap(cell, &mut self.into[c][s]);
                    any = true;
                }
            }
        }
        self.pending = any.then_some(epoch);
    }
}

/// Sorts agent `a`'s mail into its chunk's (`row`, by receiving chunk), in the order made,
/// arriving at the earliest at the window's `end`.
pub(super) fn post(a: &mut Agent, row: &mut [Vec<Routed>], end: Instant) {
    for mut r in a.mail.drain(..) {
        r.at = r.at.max(end);
        if let Some(cell) = row.get_mut(r.to / CHUNK) {
            cell.push(r);
        }
    }
}
