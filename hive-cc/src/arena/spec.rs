//! Textual descriptions of a link and of flows, for `hive cc-arena --link ... --flows ...`.
//!
//! - link: comma-separated `key=value`: `rate=10mbit` (`kbit`, `mbit`, `gbit`), `rtt=40ms`,
//!   `buffer=250ms` or `buffer=300kb` (`b`, `kb`, `mb`), `loss=0.01`, `seed=7`.
//! - flows: comma-separated `ALGO[/RTT][@START[-STOP]][!AT=P...]`, e.g.
//!   `newreno,ledbat@5s,dtl:0.5/80ms@0s-60s,dtl:0!30s=2!60s=1`.

use hive_core::time::{Duration, Instant};

use super::{DEFAULT_RTT, FlowSpec, Scenario, default_link};
use crate::Algorithm;
use crate::link::BufferLimit;

/// A malformed spec, with the offending part.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad {what} {part:?}: {why}")]
pub struct SpecError {
    /// "link" or "flow".
    pub what: &'static str,
    /// The part that failed.
    pub part: String,
    /// Why.
    pub why: String,
}

fn err(what: &'static str, part: &str, why: impl Into<String>) -> SpecError {
    SpecError {
        what,
        part: part.to_string(),
        why: why.into(),
    }
}

/// Parses a duration like `40ms`, `1.5s`, `250us`.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let (num, mult) = if let Some(n) = s.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = s.strip_suffix("us") {
        (n, 1e-6)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else {
        return None;
    };
    let v: f64 = num.parse().ok()?;
    (v.is_finite() && (0.0..1e7).contains(&v)).then(|| Duration::from_secs_f64(v * mult))
}

fn parse_rate(s: &str) -> Option<u64> {
    let s = s.trim().to_ascii_lowercase();
    let (num, mult) = if let Some(n) = s.strip_suffix("gbit") {
        (n.to_string(), 1e9)
    } else if let Some(n) = s.strip_suffix("mbit") {
        (n.to_string(), 1e6)
    } else if let Some(n) = s.strip_suffix("kbit") {
        (n.to_string(), 1e3)
    } else if let Some(n) = s.strip_suffix("bit") {
        (n.to_string(), 1.0)
    } else {
        return None;
    };
    let v: f64 = num.parse().ok()?;
    (v.is_finite() && v > 0.0 && v * mult < 1e12).then_some((v * mult) as u64)
}

fn parse_bytes(s: &str) -> Option<u64> {
    let s = s.trim().to_ascii_lowercase();
    let (num, mult) = if let Some(n) = s.strip_suffix("mb") {
        (n.to_string(), 1e6)
    } else if let Some(n) = s.strip_suffix("kb") {
        (n.to_string(), 1e3)
    } else if let Some(n) = s.strip_suffix('b') {
        (n.to_string(), 1.0)
    } else {
        return None;
    };
    let v: f64 = num.parse().ok()?;
    (v.is_finite() && v >= 0.0 && v * mult < 1e12).then_some((v * mult) as u64)
}

/// Applies a link spec to `s` (rtt applies to every flow).
pub fn apply_link(s: &mut Scenario, spec: &str) -> Result<(), SpecError> {
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (k, v) = part
            .split_once('=')
            .ok_or_else(|| err("link", part, "expected key=value"))?;
        match k.trim() {
            "rate" => {
                s.link.rate_bps =
                    parse_rate(v).ok_or_else(|| err("link", part, "rate like 10mbit"))?
            }
            "rtt" => {
                let rtt =
                    parse_duration(v).ok_or_else(|| err("link", part, "duration like 40ms"))?;
                s.flows.iter_mut().for_each(|f| f.rtt = rtt);
            }
            "buffer" => {
                s.link.buffer = if let Some(d) = parse_duration(v) {
                    BufferLimit::Time(d)
                } else {
                    BufferLimit::Bytes(
                        parse_bytes(v).ok_or_else(|| err("link", part, "250ms or 300kb"))?,
                    )
                }
            }
            "loss" => {
                let l: f64 = v
                    .trim()
                    .parse()
                    .map_err(|_| err("link", part, "a probability"))?;
                if !(0.0..1.0).contains(&l) {
                    return Err(err("link", part, "loss must be in [0, 1)"));
                }
                s.link.loss = l;
            }
            "seed" => {
                s.link.seed = v
                    .trim()
                    .parse()
                    .map_err(|_| err("link", part, "an integer"))?
            }
            other => {
                return Err(err(
                    "link",
                    other,
                    "unknown key (rate, rtt, buffer, loss, seed)",
                ));
            }
        }
    }
    Ok(())
}

/// Parses a flows spec.
pub fn parse_flows(spec: &str) -> Result<Vec<FlowSpec>, SpecError> {
    let mut flows = Vec::new();
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let mut pieces = part.split('!');
        let head = pieces.next().unwrap_or_default();
        let (head, window) = match head.split_once('@') {
            Some((h, w)) => (h, Some(w)),
            None => (head, None),
        };
        let (algo, rtt) = match head.split_once('/') {
            Some((a, r)) => (
                a,
                Some(parse_duration(r).ok_or_else(|| err("flow", part, "rtt like 40ms"))?),
            ),
            None => (head, None),
        };
        let algo: Algorithm = algo
            .parse()
            .map_err(|e: crate::UnknownAlgorithm| err("flow", part, e.to_string()))?;
        let mut f = FlowSpec::new(algo, rtt.unwrap_or(DEFAULT_RTT));
        if let Some(w) = window {
            let (a, b) = match w.split_once('-') {
                Some((a, b)) => (a, Some(b)),
                None => (w, None),
            };
            f.start = Instant::ZERO
                + parse_duration(a).ok_or_else(|| err("flow", part, "start like 5s"))?;
            if let Some(b) = b {
                f.stop = Some(
                    Instant::ZERO
                        + parse_duration(b).ok_or_else(|| err("flow", part, "stop like 60s"))?,
                );
            }
        }
        for change in pieces {
            let (t, p) = change
                .split_once('=')
                .ok_or_else(|| err("flow", part, "priority change like 30s=1.5"))?;
            let t = parse_duration(t).ok_or_else(|| err("flow", part, "time like 30s"))?;
            let p: f64 = p
                .parse()
                .map_err(|_| err("flow", part, "priority in [0, 2]"))?;
            if !(0.0..=2.0).contains(&p) {
                return Err(err("flow", part, "priority in [0, 2]"));
            }
            f.priority_changes.push((Instant::ZERO + t, p));
        }
        flows.push(f);
    }
    if flows.is_empty() {
        return Err(err("flow", spec, "no flows"));
    }
    Ok(flows)
}

/// A custom scenario from specs.
pub fn custom(link: Option<&str>, flows: &str, duration: Duration) -> Result<Scenario, SpecError> {
    let mut s = Scenario {
        name: "custom".into(),
        link: default_link(),
        flows: parse_flows(flows)?,
        duration,
        bin: Duration::from_millis(500),
    };
    let explicit_rtts: Vec<bool> = flows.split(',').map(|p| p.contains('/')).collect();
    if let Some(l) = link {
        let before: Vec<Duration> = s.flows.iter().map(|f| f.rtt).collect();
        apply_link(&mut s, l)?;
        // A flow's own /RTT wins over the link's rtt.
        for ((f, b), explicit) in s.flows.iter_mut().zip(before).zip(explicit_rtts) {
            if explicit {
                f.rtt = b;
            }
        }
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_flows_and_link() {
        let s = custom(
            Some("rate=20mbit,rtt=60ms,buffer=100kb,loss=0.001"),
            "newreno,dtl:0.5/80ms@5s-60s!30s=2",
            Duration::from_secs(60),
        )
        .unwrap();
        assert_eq!(s.link.rate_bps, 20_000_000);
        assert_eq!(s.link.buffer, BufferLimit::Bytes(100_000));
        assert_eq!(s.flows[0].rtt, Duration::from_millis(60));
        assert_eq!(s.flows[1].rtt, Duration::from_millis(80));
        assert_eq!(s.flows[1].algo, Algorithm::Dtl(0.5));
        assert_eq!(s.flows[1].start, Instant::from_secs(5));
        assert_eq!(s.flows[1].stop, Some(Instant::from_secs(60)));
        assert_eq!(
            s.flows[1].priority_changes,
            vec![(Instant::from_secs(30), 2.0)]
        );
    }

    #[test]
    fn bad_specs_say_what_is_wrong() {
        assert!(
            parse_flows("vegas")
                .unwrap_err()
                .why
                .contains("unknown congestion controller")
        );
        assert!(parse_flows("dtl!30s=5").is_err());
        assert!(parse_flows("").is_err());
        let mut s = Scenario::new("x", &[Algorithm::NewReno]);
        assert!(apply_link(&mut s, "rate=fast").is_err());
        assert!(apply_link(&mut s, "loss=2").is_err());
        assert!(apply_link(&mut s, "colour=red").is_err());
    }
}
