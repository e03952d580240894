//! The packet-level event loop of the arena.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

use hive_core::cc::{AckEvent, CongestionController, LossEvent};
use hive_core::time::{Duration, Instant};

use super::report::{FlowReport, LinkReport, Report, jain};
use super::{PACKET, Scenario};
use crate::link::Bottleneck;

/// RFC 9002 §6.1.1: "kPacketThreshold [...] RECOMMENDED initial value [...] is 3".
const PACKET_THRESHOLD: u64 = 3;
/// RFC 6298 §2.4: "the RTO SHOULD be rounded up to 1 second"; we use QUIC's gentler 200 ms floor.
const MIN_RTO: Duration = Duration::from_millis(200);

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Event {
    Start(usize),
    Stop(usize),
    Priority(usize, u64),
    Ack { flow: usize, pkt: u64, owd_us: u64 },
    Rto(usize),
}

struct Flow {
    cc: Box<dyn CongestionController>,
    active: bool,
    next_pkt: u64,
    /// pkt -> (sent time, size, app-limited)
    outstanding: BTreeMap<u64, (Instant, u64)>,
    in_flight: u64,
    largest_acked: Option<u64>,
    srtt: Option<Duration>,
    rttvar: Duration,
    min_rtt: Option<Duration>,
    rto_at: Option<Instant>,
    rto_backoff: u32,
    sent: u64,
    lost: u64,
    delivered_bytes: u64,
    bins: Vec<u64>,
    cwnd_series: Vec<(f64, f64)>,
}

impl Flow {
    fn rto(&self) -> Duration {
        let base = match self.srtt {
            Some(s) => s + (self.rttvar * 4).max(Duration::from_millis(1)),
            None => Duration::from_secs(1),
        };
        base.max(MIN_RTO) * 2u32.saturating_pow(self.rto_backoff.min(6))
    }
}

struct Sim<'a> {
    s: &'a Scenario,
    link: Bottleneck,
    flows: Vec<Flow>,
    events: BinaryHeap<Reverse<(Instant, u64, Event)>>,
    seq: u64,
    qdelay_us: Vec<u64>,
    qbins: Vec<(u64, u64)>,
}

/// Runs a scenario to its end and reports.
pub fn run(s: &Scenario) -> Report {
    let wall = std::time::Instant::now();
    let end = Instant::ZERO + s.duration;
    let bin_us = s.bin.as_micros().max(1);
    let nbins = (s.duration.as_micros().div_ceil(bin_us) as usize).max(1);
    let mut sim = Sim {
        s,
        link: Bottleneck::new(s.link),
        flows: s
            .flows
            .iter()
            .map(|f| Flow {
                cc: f.build(),
                active: false,
                next_pkt: 0,
                outstanding: BTreeMap::new(),
                in_flight: 0,
                largest_acked: None,
                srtt: None,
                rttvar: Duration::ZERO,
                min_rtt: None,
                rto_at: None,
                rto_backoff: 0,
                sent: 0,
                lost: 0,
                delivered_bytes: 0,
                bins: vec![0; nbins],
                cwnd_series: Vec::new(),
            })
            .collect(),
        events: BinaryHeap::new(),
        seq: 0,
        qdelay_us: Vec::new(),
        qbins: vec![(0, 0); nbins],
    };
    for (i, f) in s.flows.iter().enumerate() {
        sim.push(f.start, Event::Start(i));
        if let Some(stop) = f.stop {
            sim.push(stop, Event::Stop(i));
        }
        for (k, &(t, _)) in f.priority_changes.iter().enumerate() {
            sim.push(t, Event::Priority(i, k as u64));
        }
    }
    while let Some(Reverse((now, _, ev))) = sim.events.pop() {
        if now > end {
            break;
        }
        sim.handle(now, ev);
    }
    sim.report(wall.elapsed())
}

impl Sim<'_> {
    fn push(&mut self, at: Instant, ev: Event) {
        self.seq += 1;
        self.events.push(Reverse((at, self.seq, ev)));
    }

    fn bin(&self, t: Instant) -> usize {
        let b = (t.as_micros() as u128 / self.s.bin.as_micros().max(1)) as usize;
        b.min(self.qbins.len() - 1)
    }

    fn handle(&mut self, now: Instant, ev: Event) {
        match ev {
            Event::Start(f) => {
                self.flows[f].active = true;
                self.send(f, now);
            }
            Event::Stop(f) => self.flows[f].active = false,
            Event::Priority(f, k) => {
                if let Some(&(_, p)) = self.s.flows[f].priority_changes.get(k as usize) {
                    // Controllers without the knob ignore it; the report shows the algorithm.
                    let _ = self.flows[f].cc.set_priority(p);
                }
            }
            Event::Ack { flow, pkt, owd_us } => {
                self.on_ack(flow, pkt, Duration::from_micros(owd_us), now)
            }
            Event::Rto(f) => self.on_rto(f, now),
        }
    }

    fn send(&mut self, f: usize, now: Instant) {
        let rtt = self.s.flows[f].rtt;
        let mut sent_any = false;
        loop {
            let flow = &mut self.flows[f];
            if !flow.active || flow.in_flight + PACKET > flow.cc.window().max(PACKET) {
                break;
            }
            let pkt = flow.next_pkt;
            flow.next_pkt += 1;
            flow.in_flight += PACKET;
            flow.sent += 1;
            flow.outstanding.insert(pkt, (now, PACKET));
            let in_flight = flow.in_flight;
            flow.cc.on_sent(now, PACKET, in_flight);
            sent_any = true;
            if let Ok(d) = self.link.enqueue(now, PACKET) {
                let b = self.bin(now);
                let q = d.queuing.as_micros() as u64;
                self.qdelay_us.push(q);
                self.qbins[b].0 += q;
                self.qbins[b].1 += 1;
                // Propagation: half the base RTT each way; the receiver acks at once.
                let owd = d.departure.saturating_duration_since(now) + rtt / 2;
                let ack_at = d.departure + rtt;
                self.push(
                    ack_at,
                    Event::Ack {
                        flow: f,
                        pkt,
                        owd_us: owd.as_micros() as u64,
                    },
                );
            }
        }
        if sent_any && self.flows[f].rto_at.is_none() {
            self.arm_rto(f, now);
        }
    }

    fn arm_rto(&mut self, f: usize, now: Instant) {
        let at = now + self.flows[f].rto();
        self.flows[f].rto_at = Some(at);
        self.push(at, Event::Rto(f));
    }

    fn on_ack(&mut self, f: usize, pkt: u64, owd: Duration, now: Instant) {
        let b = self.bin(now);
        let flow = &mut self.flows[f];
        // The packet reached the receiver whatever the sender decided since: count goodput.
        flow.delivered_bytes += PACKET;
        flow.bins[b] += PACKET;
        let Some((sent_time, size)) = flow.outstanding.remove(&pkt) else {
            return; // already declared lost: a spurious loss; nothing more to do
        };
        flow.in_flight -= size;
        flow.rto_backoff = 0;
        let rtt = now.saturating_duration_since(sent_time);
        // RFC 6298 §2.3.
        match flow.srtt {
            None => {
                flow.srtt = Some(rtt);
                flow.rttvar = rtt / 2;
            }
            Some(s) => {
                let diff = s.abs_diff(rtt);
                flow.rttvar = (flow.rttvar * 3 + diff) / 4;
                flow.srtt = Some((s * 7 + rtt) / 8);
            }
        }
        let min_rtt = flow.min_rtt.map_or(rtt, |m| m.min(rtt));
        flow.min_rtt = Some(min_rtt);
        flow.largest_acked = Some(flow.largest_acked.map_or(pkt, |l| l.max(pkt)));
        let in_flight = flow.in_flight;
        flow.cc.on_ack(
            now,
            &AckEvent {
                bytes_acked: size,
                bytes_in_flight: in_flight,
                rtt,
                min_rtt,
                one_way_delay: Some(owd),
                sent_time,
                app_limited: false,
            },
        );
        // RFC 9002 §6.1: packet- and time-threshold loss detection.
        let largest = flow.largest_acked.unwrap_or(0);
        let srtt = flow.srtt.unwrap_or(rtt);
        let time_threshold = srtt.max(rtt) * 9 / 8;
        let mut lost_bytes = 0;
        let mut newest_lost: Option<Instant> = None;
        let lost: Vec<u64> = flow
            .outstanding
            .range(..largest)
            .filter(|(p, (t, _))| {
                **p + PACKET_THRESHOLD <= largest
                    || now.saturating_duration_since(*t) > time_threshold
            })
            .map(|(p, _)| *p)
            .collect();
        for p in lost {
            if let Some((t, s)) = flow.outstanding.remove(&p) {
                lost_bytes += s;
                flow.in_flight -= s;
                flow.lost += 1;
                newest_lost = Some(newest_lost.map_or(t, |n| n.max(t)));
            }
        }
        if let Some(sent_time) = newest_lost {
            let in_flight = flow.in_flight;
            flow.cc.on_loss(
                now,
                &LossEvent {
                    bytes_lost: lost_bytes,
                    bytes_in_flight: in_flight,
                    sent_time,
                    persistent: false,
                },
            );
        }
        let w = flow.cc.window();
        if flow
            .cwnd_series
            .last()
            .is_none_or(|(t, _)| now.as_secs_f64() - t >= 0.1)
        {
            flow.cwnd_series.push((now.as_secs_f64(), w as f64));
        }
        // Restart the RTO from this ack.
        flow.rto_at = None;
        if !flow.outstanding.is_empty() {
            self.arm_rto(f, now);
        }
        self.send(f, now);
    }

    fn on_rto(&mut self, f: usize, now: Instant) {
        let flow = &mut self.flows[f];
        if flow.rto_at != Some(now) {
            return; // re-armed since
        }
        flow.rto_at = None;
        if flow.outstanding.is_empty() {
            return;
        }
        // Every outstanding packet is declared lost; the controller restarts.
        flow.lost += flow.outstanding.len() as u64;
        flow.outstanding.clear();
        flow.in_flight = 0;
        flow.rto_backoff += 1;
        flow.cc.on_timeout(now);
        self.send(f, now);
        if self.flows[f].rto_at.is_none() && !self.flows[f].outstanding.is_empty() {
            self.arm_rto(f, now);
        }
    }

    fn report(mut self, wall: std::time::Duration) -> Report {
        let s = self.s;
        let secs = s.duration.as_secs_f64();
        let bin_s = s.bin.as_secs_f64();
        let total: u64 = self.flows.iter().map(|f| f.delivered_bytes).sum();
        // Utilization over the time at least one flow was active.
        let active_s = active_time(s).as_secs_f64().max(1e-9);
        let flows: Vec<FlowReport> = s
            .flows
            .iter()
            .zip(&self.flows)
            .map(|(spec, f)| {
                let start = spec.start.as_secs_f64().min(secs);
                let stop = spec.stop.map_or(secs, |t| t.as_secs_f64().min(secs));
                let dur = (stop - start).max(1e-9);
                FlowReport {
                    algo: spec.name().to_string(),
                    priority: f.cc.priority().or(if spec.custom.is_some() {
                        None
                    } else {
                        spec.algo.priority()
                    }),
                    start_s: start,
                    stop_s: stop,
                    throughput_mbps: f.delivered_bytes as f64 * 8.0 / dur / 1e6,
                    share: if total == 0 {
                        0.0
                    } else {
                        f.delivered_bytes as f64 / total as f64
                    },
                    loss: if f.sent == 0 {
                        0.0
                    } else {
                        f.lost as f64 / f.sent as f64
                    },
                    series_mbps: f
                        .bins
                        .iter()
                        .map(|b| *b as f64 * 8.0 / bin_s / 1e6)
                        .collect(),
                    cwnd_series: f.cwnd_series.clone(),
                }
            })
            .collect();
        self.qdelay_us.sort_unstable();
        let pct = |p: f64| -> f64 {
            if self.qdelay_us.is_empty() {
                return 0.0;
            }
            let i = ((self.qdelay_us.len() - 1) as f64 * p).round() as usize;
            self.qdelay_us[i] as f64 / 1000.0
        };
        let throughputs: Vec<f64> = flows.iter().map(|f| f.throughput_mbps).collect();
        let last_start = s
            .flows
            .iter()
            .map(|f| f.start)
            .max()
            .unwrap_or(Instant::ZERO);
        let staggered = s.flows.len() > 1 && s.flows.iter().any(|f| f.start != last_start);
        let mut report = Report {
            scenario: s.name.clone(),
            link: LinkReport {
                rate_mbps: s.link.rate_bps as f64 / 1e6,
                rtt_ms: s
                    .flows
                    .first()
                    .map_or(0.0, |f| f.rtt.as_secs_f64() * 1000.0),
                buffer_ms: s.link.buffer_bytes() as f64 * 8.0 / s.link.rate_bps.max(1) as f64
                    * 1000.0,
                loss: s.link.loss,
            },
            utilization: total as f64 * 8.0 / (s.link.rate_bps as f64 * active_s),
            qdelay_ms_p50: pct(0.50),
            qdelay_ms_p95: pct(0.95),
            jain: jain(&throughputs),
            wall_s: wall.as_secs_f64(),
            bin_s,
            qdelay_series_ms: self
                .qbins
                .iter()
                .map(|(sum, n)| {
                    if *n == 0 {
                        0.0
                    } else {
                        *sum as f64 / *n as f64 / 1000.0
                    }
                })
                .collect(),
            flows,
            duration_s: secs,
            converge_s: None,
        };
        if staggered {
            report.converge_s = Some(report.time_to_fairness(last_start.as_secs_f64(), 10.0, 0.9));
        }
        report
    }
}

/// The length of the union of the flows' active intervals.
fn active_time(s: &Scenario) -> Duration {
    let end = Instant::ZERO + s.duration;
    let mut iv: Vec<(Instant, Instant)> = s
        .flows
        .iter()
        .map(|f| (f.start.min(end), f.stop.unwrap_or(end).min(end)))
        .collect();
    iv.sort();
    let mut total = Duration::ZERO;
    let mut cur: Option<(Instant, Instant)> = None;
    for (a, b) in iv {
        match cur {
            Some((ca, cb)) if a <= cb => cur = Some((ca, cb.max(b))),
            Some((ca, cb)) => {
                total += cb - ca;
                cur = Some((a, b));
            }
            None => cur = Some((a, b)),
        }
    }
    if let Some((a, b)) = cur {
        total += b - a;
    }
    total
}
