//! Protected packets of an open connection: building them (`poll_transmit`) and taking them
//! apart (`handle_short`), with acknowledgements, loss detection (RFC 9002 §6) and congestion
//! control.

use std::ops::Range;

use hive_core::cc::{AckEvent, LossEvent};
use hive_core::time::{Duration, Instant};

use crate::connection::{Connection, Ended, Phase};
use crate::protection::OpenError;
use crate::recovery::{MAX_ACK_DELAY, PACKET_THRESHOLD, SentFrame, SentPacket};
use crate::wire::{self, Frame, Reader};

/// Packet-number ranges remembered for acknowledgements and replay protection; anything older
/// than the oldest remembered range is dropped as a possible replay.
const RANGES_KEPT: usize = 64;
/// The receiver acknowledges at the latest this long after an ack-eliciting packet.
const ACK_DELAY: Duration = Duration::from_millis(5);

impl Connection {
    /// Writes the next datagram to send into `out`; `false` when there is nothing to send now.
    pub fn poll_transmit(&mut self, now: Instant, out: &mut Vec<u8>) -> bool {
        out.clear();
        match &mut self.phase {
            Phase::ClientHello {
                msg1,
                cookie,
                next_send,
                sends,
                ..
            } => {
                if self.ended.is_some() || now < *next_send {
                    return false;
                }
                out.extend(wire::initial(wire::VERSION, self.local_cid, cookie, msg1));
                *sends += 1;
                // Handshake retransmission backs off from the initial RTT estimate.
                *next_send = now + self.config.initial_rtt * 2 * (1 << (*sends).min(6));
                return true;
            }
            Phase::ServerWait {
                response, resend, ..
            } => {
                if !*resend || self.ended.is_some() {
                    return false;
                }
                *resend = false;
                out.extend_from_slice(response);
                return true;
            }
            Phase::Open => {}
        }
        if self.ended.is_none()
            && let Some(f) = &self.finish
            && now >= self.finish_at
        {
            out.extend_from_slice(f);
            self.finish_at = now + self.rtt.pto();
            return true;
        }
        self.build_short(now, out)
    }

    fn ack_due(&self, now: Instant) -> bool {
        self.ack_pending > 0
            && (self.ack_immediate
                || self.ack_pending >= 2
                || self.ack_deadline.is_some_and(|d| now >= d))
    }

    fn build_short(&mut self, now: Instant, out: &mut Vec<u8>) -> bool {
        if self.crypto.is_none() {
            return false;
        }
        let dgram = self.config.datagram();
        let room = dgram - wire::SHORT_HEADER_LEN - wire::TAG_LEN;
        let mut p = std::mem::take(&mut self.plain);
        p.clear();
        p.extend_from_slice(&now.as_micros().to_be_bytes());
        let mut frames = Vec::new();
        let mut eliciting = false;
        let alone = self.close_pending.is_none()
            && !self.ping_pending
            && !self.max_data_pending.iter().any(|&m| m)
            && !self.tx.iter().any(|s| s.has_sendable());
        if self.ack_due(now) && !(self.defer_ack && alone && !self.ack_immediate) {
            let ranges: Vec<Range<u64>> = self
                .received
                .iter()
                .rev()
                .take(wire::MAX_ACK_RANGES)
                .collect();
            if let Some((_, t, owd)) = self.largest_recv {
                let delay = now
                    .saturating_duration_since(t)
                    .as_micros()
                    .min(u32::MAX as u128) as u32;
                wire::put_ack(&mut p, delay, owd, &ranges);
            }
            self.ack_pending = 0;
            self.ack_deadline = None;
            self.ack_immediate = false;
        }
        let live = self.ended.is_none();
        if let Some(code) = self.close_pending.take() {
            p.extend_from_slice(&[wire::F_CLOSE, code]);
            if live {
                frames.push(SentFrame::Close { code });
            }
            eliciting = true;
        }
        if live {
            for c in 0..2 {
                if self.max_data_pending[c] {
                    self.max_data_pending[c] = false;
                    wire::put_max_data(&mut p, c as u8, self.rx[c].advertised);
                    frames.push(SentFrame::MaxData { class: c as u8 });
                    eliciting = true;
                }
            }
            if self.ping_pending {
                self.ping_pending = false;
                p.push(wire::F_PING);
                eliciting = true;
            }
        }
        let mut app_limited = false;
        self.pacing_wakeup = None;
        let has_data = self.tx.iter().any(|s| s.has_sendable());
        if live && has_data {
            let cwnd_ok =
                self.bytes_in_flight + dgram as u64 <= self.cc.window() || self.probes > 0;
            // RFC 9002 §7.7 paces at N x cwnd / srtt with N > 1. N = 2, as Linux in slow start
            // (the window doubles every round trip), and also after: when the window halves,
            // the ACK clock still runs at the old rate for a round trip while the queue drains;
            // slower pacing (N = 1.25 was measured) falls behind it and the flight shrinks below
            // the window (which LEDBAT and DTL, capping the window at the flight size plus a
            // segment, took as a second cut until hive-cc limited that cap to growth). Pacing
            // only spreads packets: the window still bounds what is in flight.
            let gain = 2.0;
            let rate = self.cc.pacing_rate().map(|r| r as f64).or_else(|| {
                self.rtt
                    .smoothed
                    .map(|s| self.cc.window() as f64 * gain / s.as_secs_f64().max(1e-4))
            });
            let release = self.pacer.release_time(now, rate, dgram as u64);
            if cwnd_ok && release <= now {
                for c in 0..2 {
                    while p.len() + wire::STREAM_HEADER_LEN < room {
                        let max = room - p.len() - wire::STREAM_HEADER_LEN;
                        let Some(r) = self.tx[c].next_range(max) else {
                            break;
                        };
                        wire::put_stream_header(&mut p, c as u8, r.start, (r.end - r.start) as u16);
                        self.tx[c].copy(r.clone(), &mut p);
                        frames.push(SentFrame::Stream {
                            class: c as u8,
                            range: r,
                        });
                        eliciting = true;
                    }
                }
                app_limited = p.len() + wire::STREAM_HEADER_LEN < room
                    && !self.tx.iter().any(|s| s.has_sendable());
                self.probes = self.probes.saturating_sub(1);
            } else if cwnd_ok {
                self.pacing_wakeup = Some(release);
            }
        }
        if p.len() <= 8 {
            self.plain = p;
            return false;
        }
        let pn = self.next_pn;
        self.next_pn += 1;
        self.maybe_update_keys(now, pn);
        let Some(crypto) = self.crypto.as_mut() else {
            self.plain = p;
            return false;
        };
        let header = wire::short_header(self.remote_cid, pn, crypto.phase());
        out.extend_from_slice(&header);
        out.extend_from_slice(&p);
        self.plain = p;
        let Some(tag) = crypto.seal(pn, &header, &mut out[wire::SHORT_HEADER_LEN..]) else {
            out.clear();
            return false;
        };
        out.extend_from_slice(tag.as_ref());
        self.counters.packets_sent += 1;
        if eliciting && live {
            let size = out.len() as u64;
            self.bytes_in_flight += size;
            self.last_eliciting_sent = now;
            self.pacer.on_sent(size);
            self.cc.on_sent(now, size, self.bytes_in_flight);
            self.sent.insert(
                pn,
                SentPacket {
                    time: now,
                    size,
                    ack_eliciting: true,
                    app_limited,
                    frames,
                },
            );
        }
        true
    }

    /// Seals a packet holding one STREAM frame with any `offset` and `data` (even past the
    /// peer's window) into `out`, outside flow control and recovery: lets tests act as a peer
    /// that breaks the rules. `false` when the connection has no keys.
    #[doc(hidden)]
    pub fn forge_stream_packet(
        &mut self,
        now: Instant,
        class: u8,
        offset: u64,
        data: &[u8],
        out: &mut Vec<u8>,
    ) -> bool {
        out.clear();
        let pn = self.next_pn;
        let Some(crypto) = self.crypto.as_mut() else {
            return false;
        };
        self.next_pn += 1;
        let header = wire::short_header(self.remote_cid, pn, crypto.phase());
        out.extend_from_slice(&header);
        out.extend_from_slice(&now.as_micros().to_be_bytes());
        let len = data.len().min(u16::MAX as usize);
        wire::put_stream_header(out, class & 1, offset, len as u16);
        out.extend_from_slice(&data[..len]);
        let Some(tag) = crypto.seal(pn, &header, &mut out[wire::SHORT_HEADER_LEN..]) else {
            out.clear();
            return false;
        };
        out.extend_from_slice(tag.as_ref());
        true
    }

    /// RFC 9001 §6.6: "Endpoints MUST initiate a key update before reaching the
    /// confidentiality limit" — here at [`crate::Config::key_update_interval`] packets under one
    /// key, once the peer announced key updates and a packet under the current key was
    /// acknowledged (§6.1, so it takes up to a flight more). A connection that still could not
    /// update by twice the interval (the peer cannot) is closed rather than exceed the limit.
    fn maybe_update_keys(&mut self, now: Instant, pn: u64) {
        let interval = self.config.key_update_interval.max(1);
        let grace = self.rtt.pto() * 3;
        let Some(k) = self.crypto.as_mut() else {
            return;
        };
        if k.sealed_under_key() < interval {
            return;
        }
        if self.peer_key_update && k.can_update() {
            if k.update(now, pn, None, grace).is_none() {
                self.crypto = None;
            }
        } else if k.sealed_under_key() >= interval.saturating_mul(2) && self.ended.is_none() {
            self.close_pending = Some(wire::CLOSE_AEAD_LIMIT);
            self.end(
                now,
                Ended::Reset("AEAD confidentiality limit reached without a key update".into()),
            );
        }
    }

    /// A protected packet for this connection.
    pub(crate) fn handle_short(
        &mut self,
        now: Instant,
        pn: u64,
        phase: u8,
        header: &[u8],
        sealed: &[u8],
    ) {
        if self.crypto.is_none() {
            self.counters.dropped += 1;
            return;
        }
        if pn < self.replay_floor || self.received.contains(pn) {
            self.counters.dropped += 1;
            return;
        }
        let mut plain = std::mem::take(&mut self.plain);
        plain.clear();
        plain.extend_from_slice(sealed);
        let grace = self.rtt.pto() * 3;
        let next_pn = self.next_pn;
        let opened = match self.crypto.as_mut() {
            Some(k) => k.open(now, pn, phase, header, &mut plain, next_pn, grace),
            None => Err(OpenError::Auth),
        };
        let n = match opened {
            Ok(n) => n,
            Err(e) => {
                self.counters.dropped += 1;
                self.plain = plain;
                if e == OpenError::OldKey {
                    self.counters.old_key_dropped += 1;
                    return;
                }
                self.counters.auth_failures += 1;
                // RFC 9001 §6.6: past the integrity limit, "the endpoint MUST immediately close
                // the connection".
                if self.counters.auth_failures >= self.config.aead_integrity_limit
                    && self.ended.is_none()
                {
                    self.close_pending = Some(wire::CLOSE_AEAD_LIMIT);
                    self.end(now, Ended::Reset("AEAD integrity limit reached".into()));
                }
                return;
            }
        };
        plain.truncate(n);
        self.received.insert(pn..pn + 1);
        if self.received.len() > RANGES_KEPT {
            self.received.keep_newest(RANGES_KEPT);
            self.replay_floor = self.received.min().unwrap_or(0);
        }
        self.last_recv = now;
        self.finish = None;
        let result = self.handle_frames(now, pn, &plain);
        self.plain = plain;
        if let Err(why) = result {
            tracing::debug!(cid = self.local_cid, why, "protocol violation");
            self.close_pending = Some(wire::CLOSE_PROTOCOL);
            self.end(now, Ended::Reset(format!("peer broke the protocol: {why}")));
        }
        self.progress_close(now);
    }

    /// Processes `plaintext` (send timestamp then frames) as if it had arrived decrypted in
    /// packet `pn`: lets a fuzzer reach the frame and stream code behind the AEAD.
    #[cfg(feature = "fuzzing")]
    pub fn fuzz_plaintext(&mut self, now: Instant, pn: u64, plaintext: &[u8]) {
        if self.received.contains(pn) {
            return;
        }
        self.received.insert(pn..pn + 1);
        if self.received.len() > RANGES_KEPT {
            self.received.keep_newest(RANGES_KEPT);
            self.replay_floor = self.received.min().unwrap_or(0);
        }
        if let Err(why) = self.handle_frames(now, pn, plaintext) {
            self.close_pending = Some(wire::CLOSE_PROTOCOL);
            self.end(now, Ended::Reset(format!("peer broke the protocol: {why}")));
        }
        self.progress_close(now);
    }

    fn handle_frames(&mut self, now: Instant, pn: u64, plain: &[u8]) -> Result<(), &'static str> {
        let mut r = Reader::new(plain);
        let ts = r.u64("timestamp").map_err(|e| e.0)?;
        let owd = (now.as_micros() as i64).wrapping_sub(ts as i64);
        let mut eliciting = false;
        while let Some(f) = wire::next_frame(&mut r).map_err(|e| e.0)? {
            match f {
                Frame::Ping => eliciting = true,
                Frame::Ack {
                    ack_delay_us,
                    owd_us,
                    ranges,
                } => self.on_ack_frame(now, ack_delay_us, owd_us, &ranges),
                Frame::Stream {
                    class,
                    offset,
                    data,
                } => {
                    eliciting = true;
                    if self.ended.is_none() && !self.closing {
                        self.rx[class as usize]
                            .on_data(offset, data)
                            .map_err(|e| e.0)?;
                    }
                }
                Frame::MaxData { class, max } => {
                    eliciting = true;
                    let s = &mut self.tx[class as usize];
                    s.max_data = s.max_data.max(max);
                }
                Frame::Close { code } => {
                    eliciting = true;
                    self.ack_immediate = true;
                    let why = match code {
                        wire::CLOSE_GRACEFUL => Ended::PeerClosed,
                        wire::CLOSE_ABORT => Ended::Reset("aborted by the peer".into()),
                        wire::CLOSE_REFUSED => {
                            Ended::Handshake("the peer refused our admission token".into())
                        }
                        _ => Ended::Reset("the peer reported a protocol error".into()),
                    };
                    if self.closing {
                        self.end(now, Ended::Local);
                    }
                    self.end(now, why);
                }
            }
        }
        if self.largest_recv.is_none_or(|(l, _, _)| pn > l) {
            if self.largest_recv.is_some_and(|(l, _, _)| pn != l + 1) {
                self.ack_immediate = true;
            }
            self.largest_recv = Some((pn, now, owd));
        } else {
            // Reordered: tell the sender at once.
            self.ack_immediate = true;
        }
        if eliciting {
            self.ack_pending += 1;
            if self.ack_deadline.is_none() {
                self.ack_deadline = Some(now + ACK_DELAY.min(MAX_ACK_DELAY));
            }
        }
        Ok(())
    }

    fn on_ack_frame(
        &mut self,
        now: Instant,
        ack_delay_us: u32,
        owd_us: i64,
        ranges: &[Range<u64>],
    ) {
        let Some(largest) = ranges.iter().map(|r| r.end - 1).max() else {
            return;
        };
        if largest >= self.next_pn {
            return;
        }
        if let Some(k) = self.crypto.as_mut() {
            k.on_ack(largest);
        }
        let mut newly: Vec<(u64, SentPacket)> = Vec::new();
        for r in ranges {
            let pns: Vec<u64> = self.sent.range(r.clone()).map(|(k, _)| *k).collect();
            for pn in pns {
                if let Some(p) = self.sent.remove(&pn) {
                    newly.push((pn, p));
                }
            }
        }
        if newly.is_empty() {
            return;
        }
        self.largest_acked = Some(self.largest_acked.map_or(largest, |l| l.max(largest)));
        let Some((newest_pn, newest)) = newly
            .iter()
            .max_by_key(|(pn, _)| *pn)
            .map(|(pn, p)| (*pn, p.clone()))
        else {
            return;
        };
        if newest_pn == largest && newest.ack_eliciting {
            self.rtt.update(
                now.saturating_duration_since(newest.time),
                Duration::from_micros(ack_delay_us as u64),
            );
        }
        let mut acked_bytes = 0;
        for (_, p) in &newly {
            acked_bytes += p.size;
            for f in &p.frames {
                match f {
                    SentFrame::Stream { class, range } => {
                        self.counters.bytes_acked += self.tx[*class as usize].on_ack(range.clone());
                    }
                    SentFrame::Close { .. } => self.close_acked = true,
                    SentFrame::MaxData { .. } => {}
                }
            }
        }
        self.bytes_in_flight = self.bytes_in_flight.saturating_sub(acked_bytes);
        self.pto_count = 0;
        let min_rtt = self.rtt.min.unwrap_or(self.rtt.latest);
        let one_way_delay = (newest_pn == largest).then(|| {
            let base = self.min_owd.map_or(owd_us, |m| m.min(owd_us));
            self.min_owd = Some(base);
            Duration::from_micros(owd_us.saturating_sub(base).max(0) as u64) + min_rtt / 2
        });
        self.cc.on_ack(
            now,
            &AckEvent {
                bytes_acked: acked_bytes,
                bytes_in_flight: self.bytes_in_flight,
                rtt: self.rtt.latest,
                min_rtt,
                one_way_delay,
                sent_time: newest.time,
                app_limited: newest.app_limited,
            },
        );
        self.detect_lost(now);
    }

    /// RFC 9002 §6.1: a packet is lost when a later one was acknowledged and it is
    /// kPacketThreshold packets older, or was sent more than the loss delay ago.
    pub(crate) fn detect_lost(&mut self, now: Instant) {
        self.loss_time = None;
        let Some(la) = self.largest_acked else {
            return;
        };
        let delay = self.rtt.loss_delay();
        let cutoff = now.checked_sub(delay);
        let mut lost = Vec::new();
        for (&pn, p) in self.sent.range(..la) {
            if la - pn >= PACKET_THRESHOLD || cutoff.is_some_and(|c| p.time <= c) {
                lost.push(pn);
            } else {
                // Sent later than every lost one (numbers grow with time): the next deadline.
                self.loss_time = Some(p.time + delay);
                break;
            }
        }
        if lost.is_empty() {
            return;
        }
        let mut bytes = 0;
        let mut newest = Instant::ZERO;
        let mut oldest = Instant::MAX;
        for pn in lost {
            let Some(p) = self.sent.remove(&pn) else {
                continue;
            };
            bytes += p.size;
            newest = newest.max(p.time);
            oldest = oldest.min(p.time);
            self.counters.packets_lost += 1;
            for f in p.frames {
                match f {
                    SentFrame::Stream { class, range } => self.tx[class as usize].on_lost(range),
                    SentFrame::MaxData { class } => self.max_data_pending[class as usize] = true,
                    SentFrame::Close { code } => {
                        if self.ended.is_none() {
                            self.close_pending = Some(code);
                        }
                    }
                }
            }
        }
        self.bytes_in_flight = self.bytes_in_flight.saturating_sub(bytes);
        // RFC 9002 §7.6.1: persistent congestion when lost packets span more than
        // "(smoothed_rtt + max(4*rttvar, kGranularity) + max_ack_delay) *
        // kPersistentCongestionThreshold" (3), given an earlier RTT sample. Simplified: the
        // packets declared lost together are taken as consecutive in flight.
        let persistent = self.rtt.smoothed.is_some()
            && newest.saturating_duration_since(oldest) > self.rtt.pto() * 3;
        self.cc.on_loss(
            now,
            &LossEvent {
                bytes_lost: bytes,
                bytes_in_flight: self.bytes_in_flight,
                sent_time: newest,
                persistent,
            },
        );
    }
}
