//! The run's end: the agents still running are counted in, and the report is made, with the
//! copies of each bitrate that crossed each bottleneck link.

use crate::report::{LinkCopies, SimReport};

use super::Sim;

impl Sim<'_> {
    pub(super) fn report(mut self, wall: std::time::Duration) -> SimReport {
        let now = self.now;
        for v in 0..self.viewers.len() {
            if let Some(s) = self.agents[v].swarm.take() {
                self.agents[v].player.update(now);
                self.metrics.absorb(&s.stats(), &self.agents[v].player, now);
                let p = &self.agents[v].player;
                if p.started.is_some() && self.s.vod.is_none() {
                    let edge = now.saturating_duration_since(self.t0).as_secs_f64();
                    let media =
                        (p.playhead_seq + 1) as f64 * self.s.fragment.as_secs_f64() - p.buffer();
                    self.metrics.live_delays.push((edge - media).max(0.0));
                }
            }
        }
        let max_copies = self
            .copies
            .values()
            .flat_map(|c| {
                c.bytes.iter().map(|(t, b)| {
                    let distinct: u64 = c.distinct.get(t).map_or(0, |d| d.values().sum());
                    if distinct == 0 {
                        0.0
                    } else {
                        *b as f64 / distinct as f64
                    }
                })
            })
            .fold(0.0f64, f64::max);
        let mut report =
            SimReport::new(self.s, self.policy.name(), &self.metrics, max_copies, wall);
        report.link_copies = self
            .copies
            .iter()
            .flat_map(|(l, c)| c.bytes.iter().map(move |(t, b)| (*l, *t, *b)))
            .map(|(l, t, b)| {
                let d = self.copies[&l].distinct.get(&t);
                let distinct: u64 = d.map_or(0, |d| d.values().sum());
                LinkCopies {
                    link: self.net.links[l].name.clone(),
                    bitrate_kbps: self
                        .s
                        .ladder_bps
                        .get(usize::from(t.0))
                        .map_or(0, |b| b / 1000),
                    fragments: d.map_or(0, |d| d.len() as u64),
                    copies: if distinct == 0 {
                        0.0
                    } else {
                        b as f64 / distinct as f64
                    },
                }
            })
            .collect();
        report
            .link_copies
            .sort_by(|a, b| b.copies.total_cmp(&a.copies).then(a.link.cmp(&b.link)));
        report
    }
}
