//! A custom `CongestionController` raced through the CC arena: a deliberately naive AIMD
//! (add one segment per RTT, halve on loss, no slow start) against Cubic and LEDBAT on the
//! arena's default 10 Mbit/s, 40 ms, 250 ms-buffer link.
//!
//! Run with: `cargo run --release --example custom_cc`

use std::sync::Arc;
use std::time::Duration;

use hive::cc::Algorithm;
use hive::cc::arena::{DEFAULT_RTT, FlowSpec, Scenario, run};
use hive::core::cc::{AckEvent, CongestionController, CongestionControllerFactory, LossEvent};
use hive::core::time::Instant;

#[derive(Debug)]
struct NaiveAimd {
    mss: u64,
    cwnd: u64,
    acked: u64,
}

impl CongestionController for NaiveAimd {
    fn name(&self) -> &'static str {
        "naive-aimd"
    }
    fn on_sent(&mut self, _now: Instant, _bytes: u64, _in_flight: u64) {}
    fn on_ack(&mut self, _now: Instant, ack: &AckEvent) {
        // One segment per window's worth of acknowledged bytes.
        self.acked += ack.bytes_acked;
        if self.acked >= self.cwnd {
            self.acked -= self.cwnd;
            self.cwnd += self.mss;
        }
    }
    fn on_loss(&mut self, _now: Instant, _loss: &LossEvent) {
        self.cwnd = (self.cwnd / 2).max(2 * self.mss);
        self.acked = 0;
    }
    fn on_timeout(&mut self, _now: Instant) {
        self.cwnd = 2 * self.mss;
        self.acked = 0;
    }
    fn window(&self) -> u64 {
        self.cwnd
    }
    fn pacing_rate(&self) -> Option<u64> {
        None
    }
}

#[derive(Debug)]
struct NaiveAimdFactory;

impl CongestionControllerFactory for NaiveAimdFactory {
    fn name(&self) -> &'static str {
        "naive-aimd"
    }
    fn build(&self, _now: Instant, mss: u64) -> Box<dyn CongestionController> {
        Box::new(NaiveAimd {
            mss,
            cwnd: 4 * mss,
            acked: 0,
        })
    }
}

fn main() {
    let mut s = Scenario::new(
        "naive-aimd-vs-cubic-ledbat",
        &[Algorithm::Cubic, Algorithm::Ledbat],
    );
    s.duration = Duration::from_secs(60);
    s.flows
        .push(FlowSpec::custom(Arc::new(NaiveAimdFactory), DEFAULT_RTT));
    let report = run(&s);
    println!("{}", report.table());
}
