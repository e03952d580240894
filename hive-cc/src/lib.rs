//! # hive-cc
//!
//! Congestion controllers for Hive, a bottleneck-link model, and the arena that races them.
//!
//! Hive's uploads must never hurt the network they live on: peer traffic yields to interactive
//! traffic (LEDBAT, less than best effort), yet a fragment close to its playback deadline must be
//! able to compete like TCP. [`Dtl`] does both with one run-time priority.
//!
//! | controller | spec | in one line |
//! |---|---|---|
//! | [`NewReno`] | RFC 5681, RFC 6582 | the loss-based reference |
//! | [`Cubic`] | RFC 9438 | today's default TCP |
//! | [`Ledbat`] | RFC 6817 | background: keeps queuing delay near a 100 ms target, yields to TCP |
//! | [`LedbatPlusPlus`] | draft-irtf-iccrg-ledbat-plus-plus | 60 ms target, periodic slowdowns, latecomer-fair |
//! | [`Dtl`] | this crate | priority p ∈ [0, 2]: LEDBAT at 0, TCP-fair at 1, MulTCP(2) at 2 |
//!
//! All are sans-IO and implement [`hive_core::cc::CongestionController`]; delay-based ones use
//! one-way delay when the transport measures it, else RTT − min RTT.
//!
//! ```
//! use hive_cc::Algorithm;
//! use hive_cc::arena::{run, Scenario};
//!
//! // Two flows through the default home link (10 Mbit/s, 40 ms, 250 ms buffer), 20 s.
//! let mut s = Scenario::new("ledbat-vs-newreno", &["ledbat".parse().unwrap(), Algorithm::NewReno]);
//! s.duration = hive_core::time::Duration::from_secs(20);
//! let report = run(&s);
//! let ledbat = &report.flows[0];
//! assert!(ledbat.share < 0.1, "LEDBAT yields: share {}", ledbat.share);
//! ```

#![forbid(unsafe_code)]

pub mod arena;
mod cubic;
pub mod delay;
mod dtl;
mod ledbat;
mod ledbatpp;
pub mod link;
mod newreno;

use std::fmt;
use std::str::FromStr;

use hive_core::cc::{CongestionController, CongestionControllerFactory};
use hive_core::time::Instant;

pub use cubic::Cubic;
pub use dtl::{Dtl, DtlConfig, MAX_PRIORITY, MIN_PRIORITY};
pub use ledbat::{Ledbat, LedbatConfig};
pub use ledbatpp::{LedbatPlusPlus, TARGET as LEDBATPP_TARGET};
pub use newreno::NewReno;

/// A controller by name, as the CLI and scenario specs write it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Algorithm {
    /// [`NewReno`].
    NewReno,
    /// [`Cubic`].
    Cubic,
    /// [`Ledbat`].
    Ledbat,
    /// [`LedbatPlusPlus`].
    LedbatPlusPlus,
    /// [`Dtl`] at the given priority.
    Dtl(f64),
}

impl Algorithm {
    /// Every algorithm, DTL at p = 1.
    pub const ALL: [Algorithm; 5] = [
        Algorithm::NewReno,
        Algorithm::Cubic,
        Algorithm::Ledbat,
        Algorithm::LedbatPlusPlus,
        Algorithm::Dtl(1.0),
    ];

    /// A fresh controller.
    pub fn build(self, mss: u64) -> Box<dyn CongestionController> {
        match self {
            Algorithm::NewReno => Box::new(NewReno::new(mss)),
            Algorithm::Cubic => Box::new(Cubic::new(mss)),
            Algorithm::Ledbat => Box::new(Ledbat::new(mss)),
            Algorithm::LedbatPlusPlus => Box::new(LedbatPlusPlus::new(mss)),
            Algorithm::Dtl(p) => Box::new(Dtl::new(mss, p)),
        }
    }

    /// The name without parameters.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::NewReno => "newreno",
            Algorithm::Cubic => "cubic",
            Algorithm::Ledbat => "ledbat",
            Algorithm::LedbatPlusPlus => "ledbat++",
            Algorithm::Dtl(_) => "dtl",
        }
    }

    /// The priority, for DTL.
    pub fn priority(self) -> Option<f64> {
        match self {
            Algorithm::Dtl(p) => Some(p),
            _ => None,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Algorithm::Dtl(p) => write!(f, "dtl:{p}"),
            a => f.write_str(a.name()),
        }
    }
}

/// An unknown algorithm name or a bad DTL priority.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown congestion controller {0:?}: use newreno, cubic, ledbat, ledbat++ or dtl:P with P in [0, 2]"
)]
pub struct UnknownAlgorithm(pub String);

impl FromStr for Algorithm {
    type Err = UnknownAlgorithm;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.trim().to_ascii_lowercase();
        Ok(match lower.as_str() {
            "newreno" | "reno" => Algorithm::NewReno,
            "cubic" => Algorithm::Cubic,
            "ledbat" => Algorithm::Ledbat,
            "ledbat++" | "ledbatpp" | "ledbat-plus-plus" => Algorithm::LedbatPlusPlus,
            "dtl" => Algorithm::Dtl(1.0),
            other => {
                let p = other
                    .strip_prefix("dtl:")
                    .and_then(|p| p.parse::<f64>().ok())
                    .filter(|p| (MIN_PRIORITY..=MAX_PRIORITY).contains(p))
                    .ok_or_else(|| UnknownAlgorithm(s.to_string()))?;
                Algorithm::Dtl(p)
            }
        })
    }
}

/// A [`CongestionControllerFactory`] for an [`Algorithm`], for transports.
#[derive(Clone, Copy, Debug)]
pub struct Factory(pub Algorithm);

impl CongestionControllerFactory for Factory {
    fn name(&self) -> &'static str {
        self.0.name()
    }
    fn build(&self, _now: Instant, mss: u64) -> Box<dyn CongestionController> {
        self.0.build(mss)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse() {
        assert_eq!("NewReno".parse::<Algorithm>(), Ok(Algorithm::NewReno));
        assert_eq!(
            "ledbatpp".parse::<Algorithm>(),
            Ok(Algorithm::LedbatPlusPlus)
        );
        assert_eq!("dtl:0.25".parse::<Algorithm>(), Ok(Algorithm::Dtl(0.25)));
        assert!("dtl:3".parse::<Algorithm>().is_err());
        assert!("vegas".parse::<Algorithm>().is_err());
        for a in Algorithm::ALL {
            assert_eq!(a.to_string().parse::<Algorithm>(), Ok(a));
            assert_eq!(a.build(1200).name(), a.name());
        }
    }
}
