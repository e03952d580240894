//! The named scenarios of `hive cc-arena`. A name may expand into several runs (one per
//! controller, one per priority, ...).

use hive_core::time::{Duration, Instant};

use super::Scenario;
use crate::Algorithm;

/// The names `hive cc-arena --scenario` accepts, with a description.
pub const NAMES: &[(&str, &str)] = &[
    ("solo", "each controller alone on the link"),
    (
        "ledbat-vs-newreno",
        "LEDBAT and a NewReno flow, started together",
    ),
    (
        "ledbat-vs-cubic",
        "LEDBAT and a Cubic flow, started together",
    ),
    (
        "ledbatpp-vs-cubic",
        "LEDBAT++ and a Cubic flow, started together",
    ),
    (
        "ledbat-order",
        "LEDBAT/LEDBAT++/DTL(0) vs NewReno started 5 s apart, in both orders",
    ),
    (
        "dtl-sweep",
        "DTL at p = 0, 0.25, ..., 2 against one NewReno flow, started together",
    ),
    (
        "latecomer",
        "two LEDBAT (and two LEDBAT++) flows starting 30 s apart",
    ),
    (
        "fair4",
        "4 flows of one algorithm (NewReno, Cubic, DTL p=1, LEDBAT, LEDBAT++)",
    ),
    ("lossy", "each controller alone with 1% random loss"),
    (
        "dtl-switch",
        "DTL switched from p=0 to p=2 at 40 s and to p=1 at 80 s, against NewReno",
    ),
];

/// The runs of a named scenario, or None if the name is unknown.
pub fn named(name: &str) -> Option<Vec<Scenario>> {
    Some(match name {
        "solo" => Algorithm::ALL
            .iter()
            .map(|&a| Scenario::new(&format!("solo/{a}"), &[a]))
            .collect(),
        "ledbat-vs-newreno" => vec![Scenario::new(
            name,
            &[Algorithm::Ledbat, Algorithm::NewReno],
        )],
        "ledbat-vs-cubic" => vec![Scenario::new(name, &[Algorithm::Ledbat, Algorithm::Cubic])],
        "ledbatpp-vs-cubic" => vec![Scenario::new(
            name,
            &[Algorithm::LedbatPlusPlus, Algorithm::Cubic],
        )],
        "ledbat-order" => {
            let mut v = Vec::new();
            for a in [
                Algorithm::Ledbat,
                Algorithm::LedbatPlusPlus,
                Algorithm::Dtl(0.0),
            ] {
                let mut first =
                    Scenario::new(&format!("ledbat-order/{a}-first"), &[a, Algorithm::NewReno]);
                first.flows[1].start = Instant::from_secs(5);
                let mut late =
                    Scenario::new(&format!("ledbat-order/{a}-late"), &[a, Algorithm::NewReno]);
                late.flows[0].start = Instant::from_secs(5);
                v.extend([first, late]);
            }
            v
        }
        "dtl-sweep" => (0..=8)
            .map(|i| {
                let p = i as f64 * 0.25;
                Scenario::new(
                    &format!("dtl-sweep/p={p:.2}"),
                    &[Algorithm::Dtl(p), Algorithm::NewReno],
                )
            })
            .collect(),
        "latecomer" => [Algorithm::Ledbat, Algorithm::LedbatPlusPlus]
            .iter()
            .map(|&a| {
                let mut s = Scenario::new(&format!("latecomer/{a}"), &[a, a]);
                s.flows[1].start = Instant::from_secs(30);
                s
            })
            .collect(),
        "fair4" => [
            Algorithm::NewReno,
            Algorithm::Cubic,
            Algorithm::Dtl(1.0),
            Algorithm::Ledbat,
            Algorithm::LedbatPlusPlus,
        ]
        .iter()
        .map(|&a| {
            let mut s = Scenario::new(&format!("fair4/{a}"), &[a; 4]);
            for (i, f) in s.flows.iter_mut().enumerate() {
                f.start = Instant::from_secs(i as u64);
            }
            s
        })
        .collect(),
        "lossy" => Algorithm::ALL
            .iter()
            .map(|&a| {
                let mut s = Scenario::new(&format!("lossy/{a}"), &[a]);
                s.link.loss = 0.01;
                s
            })
            .collect(),
        "dtl-switch" => {
            let mut s = Scenario::new(name, &[Algorithm::Dtl(0.0), Algorithm::NewReno]);
            s.flows[0].priority_changes =
                vec![(Instant::from_secs(40), 2.0), (Instant::from_secs(80), 1.0)];
            vec![s]
        }
        _ => return None,
    })
}

/// Shortens every run to `d` (tests, quick looks), scaling start/stop times proportionally.
pub fn shorten(runs: &mut [Scenario], d: Duration) {
    for s in runs {
        let k = d.as_secs_f64() / s.duration.as_secs_f64();
        let scale = |t: Instant| Instant::from_micros((t.as_micros() as f64 * k) as u64);
        for f in &mut s.flows {
            f.start = scale(f.start);
            f.stop = f.stop.map(scale);
            for c in &mut f.priority_changes {
                c.0 = scale(c.0);
            }
        }
        s.duration = d;
    }
}
