//! Arena reports: a fixed table for people, the JSON of DESIGN.md for scripts.

use std::fmt::Write;

use serde::Serialize;

/// The link as reported.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LinkReport {
    /// Rate, Mbit/s.
    pub rate_mbps: f64,
    /// Base RTT of the first flow, ms.
    pub rtt_ms: f64,
    /// Buffer, ms at the link rate.
    pub buffer_ms: f64,
    /// Random loss probability.
    pub loss: f64,
}

/// One flow's figures.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FlowReport {
    /// Algorithm name.
    pub algo: String,
    /// Final priority (DTL), else null.
    pub priority: Option<f64>,
    /// Mean goodput while active, Mbit/s.
    pub throughput_mbps: f64,
    /// Fraction of all delivered bytes.
    pub share: f64,
    /// Fraction of its packets lost.
    pub loss: f64,
    /// When it started, s.
    #[serde(skip)]
    pub start_s: f64,
    /// When it stopped, s.
    #[serde(skip)]
    pub stop_s: f64,
    /// Goodput per time bin, Mbit/s.
    #[serde(skip)]
    pub series_mbps: Vec<f64>,
    /// (time s, cwnd bytes) samples.
    #[serde(skip)]
    pub cwnd_series: Vec<(f64, f64)>,
}

/// The result of one arena run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    /// Scenario name.
    pub scenario: String,
    /// The link.
    pub link: LinkReport,
    /// The flows, in scenario order.
    pub flows: Vec<FlowReport>,
    /// Delivered bits / (rate × time with at least one active flow).
    pub utilization: f64,
    /// Median queuing delay of packets entering the bottleneck, ms.
    pub qdelay_ms_p50: f64,
    /// 95th percentile queuing delay, ms.
    pub qdelay_ms_p95: f64,
    /// Jain's fairness index over the flows' throughputs.
    pub jain: f64,
    /// Wall-clock time of the simulation, s.
    pub wall_s: f64,
    /// For scenarios whose flows start at different times: seconds from the last flow's start
    /// until Jain's index over 10 s windows reaches 0.9 and stays there to the end (null if
    /// never).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub converge_s: Option<Option<f64>>,
    /// Simulated duration, s.
    #[serde(skip)]
    pub duration_s: f64,
    /// Width of the time-series bins, s.
    #[serde(skip)]
    pub bin_s: f64,
    /// Mean queuing delay per bin, ms.
    #[serde(skip)]
    pub qdelay_series_ms: Vec<f64>,
}

/// Jain's fairness index: (Σx)² / (n Σx²); 1 when all equal, 1/n when one takes everything.
pub(crate) fn jain(xs: &[f64]) -> f64 {
    let sum: f64 = xs.iter().sum();
    let sq: f64 = xs.iter().map(|x| x * x).sum();
    if xs.is_empty() || sq == 0.0 {
        1.0
    } else {
        sum * sum / (xs.len() as f64 * sq)
    }
}

impl Report {
    /// Jain's index over `[from_s, to_s)` computed from the flows' series (flows active over the
    /// whole window only).
    pub fn jain_between(&self, from_s: f64, to_s: f64) -> f64 {
        let a = (from_s / self.bin_s).floor() as usize;
        let b = ((to_s / self.bin_s).ceil() as usize).max(a + 1);
        let xs: Vec<f64> = self
            .flows
            .iter()
            .filter(|f| f.start_s <= from_s && f.stop_s >= to_s)
            .map(|f| f.series_mbps.iter().skip(a).take(b - a).sum::<f64>())
            .collect();
        jain(&xs)
    }

    /// Seconds after `from_s` from which Jain's index over every following `window_s` window
    /// (sliding by one bin, to the end of the run) stays at or above `level`; None if never.
    pub fn time_to_fairness(&self, from_s: f64, window_s: f64, level: f64) -> Option<f64> {
        let mut starts = Vec::new();
        let mut t = from_s;
        while t + window_s <= self.duration_s + 1e-9 {
            starts.push(t);
            t += self.bin_s;
        }
        // Walk back from the end: the answer is the start of the last run of fair windows.
        let mut answer = None;
        for &t in starts.iter().rev() {
            if self.jain_between(t, t + window_s) >= level {
                answer = Some(t - from_s);
            } else {
                break;
            }
        }
        answer
    }

    /// Rows of the fixed table (no header).
    pub fn table_rows(&self) -> String {
        let mut out = String::new();
        for (i, f) in self.flows.iter().enumerate() {
            let prio = f.priority.map_or("-".to_string(), |p| format!("{p:.2}"));
            let (util, p50, p95, jain, conv) = if i == 0 {
                (
                    format!("{:.1}%", self.utilization * 100.0),
                    format!("{:.1}", self.qdelay_ms_p50),
                    format!("{:.1}", self.qdelay_ms_p95),
                    format!("{:.3}", self.jain),
                    match self.converge_s {
                        None => String::new(),
                        Some(None) => "never".to_string(),
                        Some(Some(s)) => format!("{s:.1}"),
                    },
                )
            } else {
                Default::default()
            };
            let name = if i == 0 { self.scenario.as_str() } else { "" };
            let _ = writeln!(
                out,
                "{name:<24} {:<9} {prio:>5} {:>9.3} {:>6.1}% {:>6.2}% | {util:>7} {p50:>7} {p95:>7} {jain:>6} {conv:>7}",
                f.algo,
                f.throughput_mbps,
                f.share * 100.0,
                f.loss * 100.0,
            );
        }
        out
    }

    /// The table header.
    pub fn table_header() -> String {
        format!(
            "{:<24} {:<9} {:>5} {:>9} {:>7} {:>7} | {:>7} {:>7} {:>7} {:>6} {:>7}\n",
            "scenario",
            "algo",
            "prio",
            "Mbit/s",
            "share",
            "loss",
            "util",
            "q p50",
            "q p95",
            "jain",
            "conv s"
        )
    }

    /// The whole table for this run.
    pub fn table(&self) -> String {
        Self::table_header() + &self.table_rows()
    }

    /// The JSON object of DESIGN.md.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }
}
