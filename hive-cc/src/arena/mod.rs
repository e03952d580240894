//! The CC arena: flows with their own controllers racing through one modelled bottleneck.
//!
//! A [`Scenario`] names a link and a set of flows (algorithm, base RTT, start and stop times,
//! priority changes); [`run`] simulates it packet by packet on virtual time and returns a
//! [`Report`] with the figures of DESIGN.md: per-flow throughput, share and loss, link
//! utilization, queuing delay percentiles, Jain's fairness index, and time series for plots.
//! Named scenarios are in [`scenarios`]; `hive cc-arena` prints them.

mod plot;
mod report;
pub mod scenarios;
mod sim;
pub mod spec;

use hive_core::time::{Duration, Instant};

use crate::Algorithm;
use crate::link::{BufferLimit, LinkConfig};

pub use plot::{COLOURS, Line, time_panel, write_svg};
pub use report::{FlowReport, LinkReport, Report};
pub use sim::run;

/// Packet size of the arena's flows, bytes.
pub const PACKET: u64 = 1500;

/// One flow of a scenario.
#[derive(Clone, Debug)]
pub struct FlowSpec {
    /// Its controller.
    pub algo: Algorithm,
    /// A controller of your own, raced instead of `algo` (see [`FlowSpec::custom`]).
    pub custom: Option<std::sync::Arc<dyn hive_core::cc::CongestionControllerFactory>>,
    /// Base (propagation) round-trip time.
    pub rtt: Duration,
    /// When it starts sending.
    pub start: Instant,
    /// When it stops (None: at the end).
    pub stop: Option<Instant>,
    /// Priority changes on the live flow (DTL): at time t, set priority p.
    pub priority_changes: Vec<(Instant, f64)>,
}

impl FlowSpec {
    /// A flow over the whole run.
    pub fn new(algo: Algorithm, rtt: Duration) -> Self {
        FlowSpec {
            algo,
            custom: None,
            rtt,
            start: Instant::ZERO,
            stop: None,
            priority_changes: Vec::new(),
        }
    }
}

impl FlowSpec {
    /// A flow of your own controller over the whole run: the arena builds it from `factory`
    /// and reports it under the factory's name.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use hive_cc::arena::{FlowSpec, Scenario, DEFAULT_RTT, run};
    /// use hive_cc::{Algorithm, Factory};
    ///
    /// let mut s = Scenario::new("mine-vs-cubic", &[Algorithm::Cubic]);
    /// s.duration = std::time::Duration::from_secs(5);
    /// // Any `CongestionControllerFactory`; here NewReno's, under its own name.
    /// s.flows.push(FlowSpec::custom(Arc::new(Factory(Algorithm::NewReno)), DEFAULT_RTT));
    /// let report = run(&s);
    /// assert_eq!(report.flows[1].algo, "newreno");
    /// ```
    pub fn custom(
        factory: std::sync::Arc<dyn hive_core::cc::CongestionControllerFactory>,
        rtt: Duration,
    ) -> Self {
        FlowSpec {
            custom: Some(factory),
            ..FlowSpec::new(Algorithm::NewReno, rtt)
        }
    }

    pub(crate) fn build(&self) -> Box<dyn hive_core::cc::CongestionController> {
        match &self.custom {
            Some(f) => f.build(Instant::ZERO, PACKET),
            None => self.algo.build(PACKET),
        }
    }

    pub(crate) fn name(&self) -> &'static str {
        match &self.custom {
            Some(f) => f.name(),
            None => self.algo.name(),
        }
    }
}

impl PartialEq for FlowSpec {
    fn eq(&self, other: &Self) -> bool {
        let custom = match (&self.custom, &other.custom) {
            (None, None) => true,
            (Some(a), Some(b)) => std::sync::Arc::ptr_eq(a, b),
            _ => false,
        };
        custom
            && self.algo == other.algo
            && self.rtt == other.rtt
            && self.start == other.start
            && self.stop == other.stop
            && self.priority_changes == other.priority_changes
    }
}

/// A link, flows and a duration.
#[derive(Clone, Debug, PartialEq)]
pub struct Scenario {
    /// Its name in reports.
    pub name: String,
    /// The bottleneck.
    pub link: LinkConfig,
    /// The flows.
    pub flows: Vec<FlowSpec>,
    /// Simulated time.
    pub duration: Duration,
    /// Width of the time-series bins.
    pub bin: Duration,
}

/// The default link of the arena: a home access link where background traffic matters.
pub fn default_link() -> LinkConfig {
    LinkConfig {
        rate_bps: 10_000_000,
        buffer: BufferLimit::Time(Duration::from_millis(250)),
        loss: 0.0,
        seed: 1,
    }
}

/// The default base RTT.
pub const DEFAULT_RTT: Duration = Duration::from_millis(40);

impl Scenario {
    /// A scenario on the default link, 120 s, with the given flows at the default RTT.
    pub fn new(name: &str, algos: &[Algorithm]) -> Self {
        Scenario {
            name: name.to_string(),
            link: default_link(),
            flows: algos
                .iter()
                .map(|&a| FlowSpec::new(a, DEFAULT_RTT))
                .collect(),
            duration: Duration::from_secs(120),
            bin: Duration::from_millis(500),
        }
    }

    /// Two flows, the first starting at 0 and the second 1 s later, on the default link.
    pub fn two(name: &str, first: Algorithm, second: Algorithm) -> Self {
        let mut s = Scenario::new(name, &[first, second]);
        s.flows[1].start = Instant::from_secs(1);
        s
    }
}
