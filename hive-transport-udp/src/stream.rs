//! The two reliable, ordered byte streams of a connection (one per [`Class`]), carrying
//! length-prefixed messages (`u32` big-endian length, then the bytes), with receiver-window flow
//! control (the receiver grants `MAX_DATA` offsets as the application takes messages).
//!
//! [`Class`]: hive_core::transport::Class

use std::collections::{BTreeMap, VecDeque};
use std::ops::Range;

use bytes::Bytes;

use crate::ranges::RangeSet;

/// Send-buffer capacity a stream keeps when it drains (see `SendStream::shrink`).
const RETAINED: usize = 16 * 1024;

/// Sending half: bytes from `base` (lowest unacknowledged) to `end`.
#[derive(Debug)]
pub(crate) struct SendStream {
    buf: VecDeque<u8>,
    base: u64,
    next_new: u64,
    acked: RangeSet,
    retransmit: RangeSet,
    /// The peer's credit: bytes below this offset may be sent.
    pub(crate) max_data: u64,
    cap: usize,
}

impl SendStream {
    pub(crate) fn new(cap: usize, initial_credit: u64) -> Self {
        SendStream {
            buf: VecDeque::new(),
            base: 0,
            next_new: 0,
            acked: RangeSet::default(),
            retransmit: RangeSet::default(),
            max_data: initial_credit,
            cap,
        }
    }

    fn end(&self) -> u64 {
        self.base + self.buf.len() as u64
    }

    /// Whether a message of `len` bytes fits the send buffer now (anything fits an empty one).
    pub(crate) fn can_accept(&self, len: usize) -> bool {
        self.buf.is_empty() || self.buf.len() + len + 4 <= self.cap
    }

    pub(crate) fn debug(&self) -> (u64, u64, u64, u64, usize) {
        (
            self.base,
            self.next_new,
            self.end(),
            self.max_data,
            self.retransmit.len(),
        )
    }

    /// Appends one length-prefixed message.
    pub(crate) fn write(&mut self, msg: &[u8]) {
        self.buf.extend((msg.len() as u32).to_be_bytes());
        self.buf.extend(msg);
    }

    /// Whether every byte written was acknowledged.
    pub(crate) fn all_acked(&self) -> bool {
        self.buf.is_empty()
    }

    /// Whether something can be sent now (retransmissions, or new bytes within credit).
    pub(crate) fn has_sendable(&self) -> bool {
        !self.retransmit.is_empty() || (self.next_new < self.end() && self.next_new < self.max_data)
    }

    /// The next range to send, at most `max_len` bytes: retransmissions first.
    pub(crate) fn next_range(&mut self, max_len: usize) -> Option<Range<u64>> {
        let max_len = max_len as u64;
        while let Some(r) = self.retransmit.pop_front(max_len) {
            let start = r.start.max(self.base);
            if start < r.end {
                return Some(start..r.end);
            }
        }
        let end = self.end().min(self.max_data).min(self.next_new + max_len);
        if self.next_new < end {
            let r = self.next_new..end;
            self.next_new = end;
            return Some(r);
        }
        None
    }

    /// Copies the bytes of `r` (which must lie within the buffer) to `out`.
    pub(crate) fn copy(&self, r: Range<u64>, out: &mut Vec<u8>) {
        let (a, b) = self.buf.as_slices();
        let start = r.start.saturating_sub(self.base) as usize;
        let end = (r.end.saturating_sub(self.base) as usize).min(self.buf.len());
        if start >= end {
            return;
        }
        if start < a.len() {
            out.extend_from_slice(&a[start..end.min(a.len())]);
        }
        if end > a.len() {
            out.extend_from_slice(&b[start.max(a.len()) - a.len()..end - a.len()]);
        }
    }

    /// `r` was acknowledged: frees the acknowledged prefix. Returns the newly freed bytes.
    pub(crate) fn on_ack(&mut self, r: Range<u64>) -> u64 {
        self.acked.insert(r);
        let mut freed = 0;
        let first = self.acked.iter().next();
        if let Some(first) = first
            && first.start <= self.base
            && first.end > self.base
        {
            let n = (first.end - self.base).min(self.buf.len() as u64);
            self.buf.drain(..n as usize);
            self.base += n;
            freed = n;
            self.acked.remove_below(self.base);
            self.shrink();
        }
        freed
    }

    /// Gives back buffer memory a burst left: a drained buffer keeps at most
    /// [`RETAINED`], one mostly drained a quarter of its capacity. An idle connection then holds
    /// kilobytes, not the megabyte its busiest moment needed (agents keep a dozen connections).
    fn shrink(&mut self) {
        let cap = self.buf.capacity();
        if cap > RETAINED && self.buf.len() < cap / 4 {
            self.buf.shrink_to((self.buf.len() * 2).max(RETAINED));
        }
    }

    /// `r` was lost: it goes back in the retransmission queue.
    pub(crate) fn on_lost(&mut self, r: Range<u64>) {
        let start = r.start.max(self.base);
        if start < r.end {
            self.retransmit.insert(start..r.end);
        }
    }
}

/// A flow-control violation or a message over the maximum: the peer broke the protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct StreamError(pub(crate) &'static str);

/// What one out-of-order segment costs beyond its bytes (map node, vector header), charged
/// against the window so that many tiny segments cannot hold more memory than a few big ones.
const SEGMENT_OVERHEAD: u64 = 64;

/// Receiving half: reassembles by offset, cuts messages, and grants credit.
///
/// Out-of-order segments never overlap (a retransmission that covers bytes already held keeps
/// only its new bytes), so what is held is counted in bytes, not offsets: their bytes plus
/// [`SEGMENT_OVERHEAD`] each stay within the receive window; a segment past that is dropped
/// (the sender retransmits it once the gap before it is filled). Together with flow control
/// (nothing beyond the advertised offset, or the peer is closed), a class never holds more than
/// its window of out-of-order bytes, plus its window of whole messages waiting for the
/// application.
#[derive(Debug)]
pub(crate) struct RecvStream {
    segments: BTreeMap<u64, Vec<u8>>,
    /// Bytes held in `segments`, and the same plus the per-segment overhead.
    buffered: u64,
    charged: u64,
    /// Out-of-order segments dropped for want of room.
    pub(crate) dropped: u64,
    next: u64,
    header: Vec<u8>,
    want: Option<usize>,
    partial: Vec<u8>,
    ready: VecDeque<Bytes>,
    consumed: u64,
    window: u64,
    /// The largest offset granted to the peer.
    pub(crate) advertised: u64,
    max_message: usize,
}

impl RecvStream {
    pub(crate) fn new(window: u64, max_message: usize) -> Self {
        RecvStream {
            segments: BTreeMap::new(),
            buffered: 0,
            charged: 0,
            dropped: 0,
            next: 0,
            header: Vec::with_capacity(4),
            want: None,
            partial: Vec::new(),
            ready: VecDeque::new(),
            consumed: 0,
            window,
            advertised: window,
            max_message,
        }
    }

    /// Bytes received at `offset`.
    pub(crate) fn on_data(&mut self, offset: u64, data: &[u8]) -> Result<(), StreamError> {
        let end = offset + data.len() as u64;
        if end > self.advertised {
            return Err(StreamError("flow control exceeded"));
        }
        if end <= self.next {
            return Ok(());
        }
        if offset > self.next {
            self.hold(offset, data);
            return Ok(());
        }
        let skip = (self.next - offset) as usize;
        self.feed(&data[skip..])?;
        while let Some((&off, _)) = self.segments.iter().next() {
            if off > self.next {
                break;
            }
            let seg = self.segments.remove(&off).unwrap_or_default();
            self.buffered -= seg.len() as u64;
            self.charged -= seg.len() as u64 + SEGMENT_OVERHEAD;
            let seg_end = off + seg.len() as u64;
            if seg_end > self.next {
                let skip = (self.next - off) as usize;
                self.feed(&seg[skip..])?;
            }
        }
        Ok(())
    }

    /// Holds the bytes of `data` (at `offset`, past `next`) that no held segment covers yet, as
    /// long as they fit the window.
    fn hold(&mut self, offset: u64, data: &[u8]) {
        let end = offset + data.len() as u64;
        let mut pos = offset;
        if let Some((&s, seg)) = self.segments.range(..=pos).next_back() {
            pos = pos.max(s + seg.len() as u64);
        }
        while pos < end {
            let next = self
                .segments
                .range(pos..)
                .next()
                .map(|(&s, seg)| (s, s + seg.len() as u64));
            let piece_end = next.map_or(end, |(s, _)| s.min(end));
            if piece_end > pos {
                let len = piece_end - pos;
                if self.charged + len + SEGMENT_OVERHEAD > self.window {
                    self.dropped += 1;
                    return;
                }
                let from = (pos - offset) as usize;
                let to = (piece_end - offset) as usize;
                self.segments.insert(pos, data[from..to].to_vec());
                self.buffered += len;
                self.charged += len + SEGMENT_OVERHEAD;
            }
            match next {
                Some((s, e)) if s < end => pos = e,
                _ => break,
            }
        }
    }

    /// Out-of-order bytes held now.
    pub(crate) fn buffered(&self) -> u64 {
        self.buffered
    }

    fn feed(&mut self, mut data: &[u8]) -> Result<(), StreamError> {
        self.next += data.len() as u64;
        while !data.is_empty() {
            match self.want {
                None => {
                    let take = (4 - self.header.len()).min(data.len());
                    self.header.extend_from_slice(&data[..take]);
                    data = &data[take..];
                    if self.header.len() == 4 {
                        let n = u32::from_be_bytes([
                            self.header[0],
                            self.header[1],
                            self.header[2],
                            self.header[3],
                        ]) as usize;
                        if n > self.max_message {
                            return Err(StreamError("message over the maximum"));
                        }
                        self.header.clear();
                        if n == 0 {
                            self.ready.push_back(Bytes::new());
                        } else {
                            self.want = Some(n);
                            self.partial = Vec::with_capacity(n);
                        }
                    }
                }
                Some(n) => {
                    let take = (n - self.partial.len()).min(data.len());
                    self.partial.extend_from_slice(&data[..take]);
                    data = &data[take..];
                    if self.partial.len() == n {
                        self.ready
                            .push_back(Bytes::from(std::mem::take(&mut self.partial)));
                        self.want = None;
                    }
                }
            }
        }
        Ok(())
    }

    /// Whether a whole message waits.
    pub(crate) fn has_message(&self) -> bool {
        !self.ready.is_empty()
    }

    /// The next whole message.
    pub(crate) fn pop(&mut self) -> Option<Bytes> {
        let m = self.ready.pop_front()?;
        self.consumed += 4 + m.len() as u64;
        Some(m)
    }

    /// A new credit to announce, when it moved by a quarter window since the last one.
    pub(crate) fn credit_update(&mut self) -> Option<u64> {
        let target = self.consumed + self.window;
        if target >= self.advertised + self.window / 4 {
            self.advertised = target;
            Some(target)
        } else {
            None
        }
    }

    /// Drops whatever waits (after a local close).
    pub(crate) fn discard(&mut self) {
        self.ready.clear();
        self.segments.clear();
        self.buffered = 0;
        self.charged = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_drained_send_buffer_gives_its_memory_back() {
        let mut tx = SendStream::new(1 << 20, 1 << 20);
        for _ in 0..16 {
            tx.write(&[7u8; 60 * 1024]);
        }
        assert!(tx.buf.capacity() >= 16 * 60 * 1024);
        while let Some(r) = tx.next_range(1400) {
            tx.on_ack(r);
        }
        assert!(tx.all_acked());
        assert!(
            tx.buf.capacity() <= RETAINED,
            "{} bytes kept",
            tx.buf.capacity()
        );
        // And it still carries messages.
        tx.write(b"again");
        assert_eq!(tx.next_range(1400), Some(tx.base..tx.base + 9));
    }

    #[test]
    fn messages_survive_reordering_duplication_and_loss() {
        let mut tx = SendStream::new(1 << 20, 1 << 20);
        let msgs: Vec<Vec<u8>> = (0..20u8).map(|i| vec![i; i as usize * 97]).collect();
        for m in &msgs {
            tx.write(m);
        }
        let mut chunks = Vec::new();
        while let Some(r) = tx.next_range(100) {
            chunks.push(r);
        }
        // Lose every third, deliver the rest backwards and twice.
        let mut rx = RecvStream::new(1 << 20, 1 << 20);
        for (i, r) in chunks.iter().enumerate().rev() {
            if i % 3 == 0 {
                tx.on_lost(r.clone());
                continue;
            }
            let mut b = Vec::new();
            tx.copy(r.clone(), &mut b);
            rx.on_data(r.start, &b).expect("within window");
            rx.on_data(r.start, &b).expect("dup");
            tx.on_ack(r.clone());
        }
        while let Some(r) = tx.next_range(100) {
            let mut b = Vec::new();
            tx.copy(r.clone(), &mut b);
            rx.on_data(r.start, &b).expect("within window");
            tx.on_ack(r);
        }
        assert!(tx.all_acked());
        for m in &msgs {
            assert_eq!(rx.pop().as_deref(), Some(&m[..]));
        }
        assert!(rx.pop().is_none());
    }

    #[test]
    fn overlapping_out_of_order_segments_hold_each_byte_once_within_the_window() {
        let window = 100_000u64;
        let mut rx = RecvStream::new(window, 1 << 20);
        // The ~9 GB attack: 1200-byte segments at every offset of the window.
        let data = vec![7u8; 1200];
        for off in (1..window - 1200).step_by(1) {
            rx.on_data(off, &data).expect("within window");
            assert!(rx.buffered() < window);
            assert!(rx.charged <= window);
        }
        assert!(rx.dropped > 0);
        // Tiny far segments: dropped once the overhead fills the window.
        let mut rx = RecvStream::new(window, 1 << 20);
        for off in (10..window).step_by(2) {
            rx.on_data(off, &[1]).expect("within window");
        }
        assert!(rx.charged <= window);
        assert!(rx.dropped > 0);
        // Filling the gap delivers what was held (a message of most of the window; the
        // per-segment charge leaves room for 1000-byte segments up to ~94% of it).
        let mut rx = RecvStream::new(window, 1 << 20);
        let len = (window * 9 / 10) as u32;
        let mut all = len.to_be_bytes().to_vec();
        all.extend((0..len).map(|i| i as u8));
        for (i, c) in all.chunks(1000).enumerate().skip(1).rev() {
            rx.on_data(i as u64 * 1000, c).expect("ok");
            rx.on_data(i as u64 * 1000 + 3, &c[3.min(c.len())..])
                .expect("ok");
        }
        rx.on_data(0, &all[..1000]).expect("ok");
        assert_eq!(rx.buffered(), 0);
        assert_eq!(rx.pop().as_deref(), Some(&all[4..]));
    }

    #[test]
    fn oversized_length_and_flow_violation_are_errors() {
        let mut rx = RecvStream::new(100, 10);
        assert!(rx.on_data(0, &[0, 0, 0, 11]).is_err());
        let mut rx = RecvStream::new(100, 10);
        assert!(rx.on_data(98, &[0, 0, 0]).is_err());
    }
}
