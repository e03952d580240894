//! Network files: an operator describes their own network and event, and the simulator predicts
//! the offload and the load on each link before the event happens (`hive sim --network FILE`).
//!
//! The format is JSON (the project already speaks it) in which a line whose first non-blank
//! characters are `//` is a comment; comments take whole lines (not the end of a line) and JSON
//! allows no trailing commas. Capacities are in Mbit/s, bitrates in kbit/s, times in seconds.
//! `docs/sim/network-example.json` is a commented example; the fields:
//!
//! | field | meaning | default |
//! |---|---|---|
//! | `name` | the name in reports | `"network"` |
//! | `sites` | `[{ "name", "viewers", "vpn_mbps"?, "asn"? }]`: offices (or ASes on the public internet); `vpn_mbps` is a branch's VPN link to the gateway site, per direction | required |
//! | `gateway_mbps` | the internet gateway of the first site, which every branch reaches over its VPN link; absent: viewers are on the public internet | absent |
//! | `access` | `{ "down_mbps", "up_mbps": [..], "up_buffer_ms"? }`: each viewer's access link; uploads drawn uniformly from the list; `up_buffer_ms`, the uplink's drop-tail buffer as time at its rate (`hive lab` shapes it; the simulator delays what an unpaced viewer sends while its uploads fill its uplink: `hive_sim::scenario::saturated_uplink_queue`) | required (`up_buffer_ms`: 100) |
//! | `ladder_kbps` | the bitrate ladder, ascending | required |
//! | `fragment_s` | fragment duration | 2 |
//! | `join_over_s` | viewers join uniformly over this period | 120 |
//! | `duration_s` | simulated time | 600 |
//! | `nat` | `{ "fraction", "pair_success" }`: viewers behind NAT, and the chance two NATed viewers connect | `{0, 1}` |
//! | `churn_per_min` | fraction of viewers leaving (and replaced) per minute | 0 |
//! | `vod` | on demand: `{ "title_s", "start_at_zero", "seek_every_s", "watch_mean_s", "cache_mb" }` | absent: live |
//!
//! ```
//! let text = r#"{
//!   // One office of 40 behind a 20 Mbit/s gateway, a 1 Mbit/s stream.
//!   "sites": [{ "name": "office", "viewers": 40 }],
//!   "gateway_mbps": 20,
//!   "access": { "down_mbps": 1000, "up_mbps": [1000] },
//!   "ladder_kbps": [500, 1000]
//! }"#;
//! let s = hive_sim::network_file::parse(text, 1).unwrap();
//! assert_eq!((s.viewers(), s.gateway_bps), (40, Some(20_000_000)));
//! assert!(hive_sim::network_file::parse("{}", 1).is_err());
//! ```

use std::collections::BTreeSet;

use hive_core::time::Duration;
use serde::Deserialize;

use crate::scenario::{Access, Scenario, Site, Vod};

/// Why a network file was refused.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum NetworkError {
    /// Not JSON of the expected shape (with the line and column).
    #[error("{0}")]
    Syntax(String),
    /// A value out of bounds: the field and what is wrong.
    #[error("{field}: {problem}")]
    Invalid {
        /// Where, e.g. `sites[2].vpn_mbps`.
        field: String,
        /// What is wrong.
        problem: String,
    },
}

fn invalid(field: impl Into<String>, problem: impl Into<String>) -> NetworkError {
    NetworkError::Invalid {
        field: field.into(),
        problem: problem.into(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    name: Option<String>,
    sites: Vec<SiteFile>,
    #[serde(default)]
    gateway_mbps: Option<f64>,
    access: AccessFile,
    ladder_kbps: Vec<f64>,
    #[serde(default)]
    fragment_s: Option<f64>,
    #[serde(default)]
    join_over_s: Option<f64>,
    #[serde(default)]
    duration_s: Option<f64>,
    #[serde(default)]
    nat: Option<NatFile>,
    #[serde(default)]
    churn_per_min: Option<f64>,
    #[serde(default)]
    vod: Option<VodFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SiteFile {
    name: String,
    viewers: u64,
    #[serde(default)]
    vpn_mbps: Option<f64>,
    #[serde(default)]
    asn: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AccessFile {
    down_mbps: f64,
    up_mbps: Vec<f64>,
    #[serde(default)]
    up_buffer_ms: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NatFile {
    fraction: f64,
    pair_success: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VodFile {
    title_s: f64,
    #[serde(default)]
    start_at_zero: Option<f64>,
    #[serde(default)]
    seek_every_s: Option<f64>,
    #[serde(default)]
    watch_mean_s: Option<f64>,
    #[serde(default)]
    cache_mb: Option<f64>,
}

/// At most this many viewers in a file.
pub const MAX_VIEWERS: u64 = 1_000_000;
/// Longest simulated time, fragment duration aside, in seconds: a day.
const MAX_SECONDS: f64 = 86_400.0;
/// Largest capacity accepted, Mbit/s (1 Tbit/s).
const MAX_MBPS: f64 = 1e6;

/// A positive, finite number no larger than `max`.
fn positive(field: &str, x: f64, max: f64, unit: &str) -> Result<f64, NetworkError> {
    if x.is_finite() && x > 0.0 && x <= max {
        Ok(x)
    } else {
        Err(invalid(
            field,
            format!("must be a positive number of {unit} up to {max}, got {x}"),
        ))
    }
}

/// A number in [0, max].
fn within(field: &str, x: f64, max: f64) -> Result<f64, NetworkError> {
    if x.is_finite() && (0.0..=max).contains(&x) {
        Ok(x)
    } else {
        Err(invalid(field, format!("must be in [0, {max}], got {x}")))
    }
}

fn bps(mbps: f64) -> u64 {
    (mbps * 1e6).round() as u64
}

/// The text with comment lines blanked (line numbers in errors stay right).
fn strip_comments(text: &str) -> String {
    text.lines()
        .map(|l| {
            if l.trim_start().starts_with("//") {
                ""
            } else {
                l
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Parses and checks a network file; `seed` seeds the run.
pub fn parse(text: &str, seed: u64) -> Result<Scenario, NetworkError> {
    let f: File = serde_json::from_str(&strip_comments(text))
        .map_err(|e| NetworkError::Syntax(e.to_string()))?;
    let enterprise = match f.gateway_mbps {
        Some(g) => Some(bps(positive("gateway_mbps", g, MAX_MBPS, "Mbit/s")?)),
        None => None,
    };
    if f.sites.is_empty() {
        return Err(invalid("sites", "at least one site is needed"));
    }
    if f.sites.len() > 100_000 {
        return Err(invalid("sites", "at most 100000 sites"));
    }
    let mut names = BTreeSet::new();
    let mut total = 0u64;
    let mut sites = Vec::with_capacity(f.sites.len());
    for (i, s) in f.sites.iter().enumerate() {
        let at = |k: &str| format!("sites[{i}].{k}");
        let name = s.name.trim();
        if name.is_empty() {
            return Err(invalid(at("name"), "must not be empty"));
        }
        if !names.insert(name.to_string()) {
            return Err(invalid(at("name"), format!("{name:?} appears twice")));
        }
        if s.viewers == 0 {
            return Err(invalid(at("viewers"), "at least 1 viewer"));
        }
        total = total.saturating_add(s.viewers);
        if total > MAX_VIEWERS {
            return Err(invalid(
                "sites",
                format!("at most {MAX_VIEWERS} viewers in all"),
            ));
        }
        let vpn_bps = match (s.vpn_mbps, enterprise.is_some(), i) {
            (None, _, _) => None,
            (Some(_), false, _) => {
                return Err(invalid(
                    at("vpn_mbps"),
                    "VPN links need a gateway site: set gateway_mbps (or drop vpn_mbps on the \
                     public internet)",
                ));
            }
            (Some(_), true, 0) => {
                return Err(invalid(
                    at("vpn_mbps"),
                    "the first site holds the gateway: it has no VPN link",
                ));
            }
            (Some(v), true, _) => Some(bps(positive(&at("vpn_mbps"), v, MAX_MBPS, "Mbit/s")?)),
        };
        let asn = s.asn.unwrap_or(if enterprise.is_some() {
            1
        } else {
            64_500 + i as u32
        });
        sites.push(Site {
            name: name.to_string(),
            // Bounded by MAX_VIEWERS above.
            viewers: usize::try_from(s.viewers).unwrap_or(usize::MAX),
            vpn_bps,
            asn,
        });
    }
    let down = positive("access.down_mbps", f.access.down_mbps, MAX_MBPS, "Mbit/s")?;
    if f.access.up_mbps.is_empty() {
        return Err(invalid("access.up_mbps", "at least one upload capacity"));
    }
    let mut up_bps = Vec::with_capacity(f.access.up_mbps.len());
    for (i, &u) in f.access.up_mbps.iter().enumerate() {
        up_bps.push(bps(positive(
            &format!("access.up_mbps[{i}]"),
            u,
            MAX_MBPS,
            "Mbit/s",
        )?));
    }
    let up_buffer = match f.access.up_buffer_ms {
        None => None,
        Some(ms) => Some(Duration::from_secs_f64(
            positive("access.up_buffer_ms", ms, 60_000.0, "ms")? / 1e3,
        )),
    };
    if f.ladder_kbps.is_empty() || f.ladder_kbps.len() > 32 {
        return Err(invalid("ladder_kbps", "between 1 and 32 bitrates"));
    }
    let mut ladder_bps: Vec<u64> = Vec::with_capacity(f.ladder_kbps.len());
    for (i, &k) in f.ladder_kbps.iter().enumerate() {
        let b = (positive(&format!("ladder_kbps[{i}]"), k, 1e6, "kbit/s")? * 1e3).round() as u64;
        if ladder_bps.last().is_some_and(|&prev| prev >= b) {
            return Err(invalid(
                format!("ladder_kbps[{i}]"),
                "the ladder must be strictly ascending (lowest bitrate first)",
            ));
        }
        ladder_bps.push(b);
    }
    let fragment = positive("fragment_s", f.fragment_s.unwrap_or(2.0), 60.0, "seconds")?;
    let duration = positive(
        "duration_s",
        f.duration_s.unwrap_or(600.0),
        MAX_SECONDS,
        "seconds",
    )?;
    let join_over = within("join_over_s", f.join_over_s.unwrap_or(120.0), MAX_SECONDS)?;
    let (nat_fraction, nat_pair_success) = match &f.nat {
        Some(n) => (
            within("nat.fraction", n.fraction, 1.0)?,
            within("nat.pair_success", n.pair_success, 1.0)?,
        ),
        None => (0.0, 1.0),
    };
    let churn_per_min = within("churn_per_min", f.churn_per_min.unwrap_or(0.0), 1.0)?;
    let vod = match &f.vod {
        None => None,
        Some(v) => {
            let title = positive("vod.title_s", v.title_s, MAX_SECONDS, "seconds")?;
            if title < fragment {
                return Err(invalid("vod.title_s", "shorter than one fragment"));
            }
            Some(Vod {
                title: Duration::from_secs_f64(title),
                start_at_zero: within("vod.start_at_zero", v.start_at_zero.unwrap_or(1.0), 1.0)?,
                seek_every: Duration::from_secs_f64(within(
                    "vod.seek_every_s",
                    v.seek_every_s.unwrap_or(0.0),
                    MAX_SECONDS,
                )?),
                watch_mean: Duration::from_secs_f64(positive(
                    "vod.watch_mean_s",
                    v.watch_mean_s.unwrap_or(title),
                    MAX_SECONDS,
                    "seconds",
                )?),
                cache_bytes: bps(positive(
                    "vod.cache_mb",
                    v.cache_mb.unwrap_or(256.0),
                    1e6,
                    "MB",
                )?),
            })
        }
    };
    let name = f.name.as_deref().map(str::trim).unwrap_or("network");
    if name.is_empty() {
        return Err(invalid("name", "must not be empty"));
    }
    Ok(Scenario {
        name: name.to_string(),
        sites,
        gateway_bps: enterprise,
        access: Access {
            down_bps: bps(down),
            up_bps,
            up_buffer,
        },
        ladder_bps,
        fragment: Duration::from_secs_f64(fragment),
        duration: Duration::from_secs_f64(duration),
        join_over: Duration::from_secs_f64(join_over),
        nat_fraction,
        nat_pair_success,
        churn_per_min,
        vod,
        seed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: &str = r#"{
  // a comment line
  "name": "event",
  "sites": [
    { "name": "hq", "viewers": 100 },
      // indented comment
    { "name": "lyon", "viewers": 20, "vpn_mbps": 30 }
  ],
  "gateway_mbps": 200,
  "access": { "down_mbps": 100, "up_mbps": [50, 100] },
  "ladder_kbps": [500, 1200],
  "fragment_s": 4,
  "duration_s": 300,
  "join_over_s": 60,
  "nat": { "fraction": 0.1, "pair_success": 0.9 },
  "churn_per_min": 0.01
}"#;

    #[test]
    fn a_file_becomes_a_scenario() {
        let s = parse(OK, 9).expect("valid");
        assert_eq!(s.name, "event");
        assert_eq!(s.viewers(), 120);
        assert_eq!(s.sites[1].vpn_bps, Some(30_000_000));
        assert_eq!(s.sites[0].vpn_bps, None);
        assert_eq!(s.gateway_bps, Some(200_000_000));
        assert_eq!(s.access.up_bps, vec![50_000_000, 100_000_000]);
        assert_eq!(s.ladder_bps, vec![500_000, 1_200_000]);
        assert_eq!(s.fragment, Duration::from_secs(4));
        assert_eq!(s.duration, Duration::from_secs(300));
        assert_eq!(s.join_over, Duration::from_secs(60));
        assert_eq!((s.nat_fraction, s.nat_pair_success), (0.1, 0.9));
        assert_eq!(s.churn_per_min, 0.01);
        assert_eq!((s.vod, s.seed), (None, 9));
    }

    fn error_of(from: &str, to: &str) -> String {
        assert!(OK.contains(from), "{from}");
        match parse(&OK.replace(from, to), 1) {
            Ok(_) => panic!("{to} accepted"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn bad_values_are_refused_with_the_field() {
        let cases = [
            (r#""vpn_mbps": 30"#, r#""vpn_mbps": 0"#, "sites[1].vpn_mbps"),
            (
                r#""vpn_mbps": 30"#,
                r#""vpn_mbps": -5"#,
                "sites[1].vpn_mbps",
            ),
            (r#""viewers": 20"#, r#""viewers": 0"#, "sites[1].viewers"),
            (r#""viewers": 20"#, r#""viewers": -2"#, "line 7"),
            (r#""name": "lyon""#, r#""name": "hq""#, "appears twice"),
            (
                r#""gateway_mbps": 200"#,
                r#""gateway_mbps": 0"#,
                "gateway_mbps",
            ),
            (r#"[500, 1200]"#, r#"[1200, 500]"#, "ascending"),
            (r#"[500, 1200]"#, r#"[]"#, "ladder_kbps"),
            (r#"[50, 100]"#, r#"[]"#, "access.up_mbps"),
            (r#""down_mbps": 100"#, r#""down_mbps": 1e400"#, "line"),
            (r#""fragment_s": 4"#, r#""fragment_s": 0"#, "fragment_s"),
            (r#""duration_s": 300"#, r#""duration_s": 1e9"#, "duration_s"),
            (r#""fraction": 0.1"#, r#""fraction": 1.5"#, "nat.fraction"),
            (
                r#""churn_per_min": 0.01"#,
                r#""churn_pr_min": 0.01"#,
                "unknown field",
            ),
            (r#""sites": ["#, r#""sites": [ ], "x": ["#, "unknown field"),
        ];
        for (from, to, want) in cases {
            let e = error_of(from, to);
            assert!(e.contains(want), "{to}: {e}");
        }
        // VPN links need the gateway; the gateway site has none.
        let e = error_of(r#""gateway_mbps": 200,"#, "");
        assert!(e.contains("sites[1].vpn_mbps"), "{e}");
        let e = error_of(
            r#"{ "name": "hq", "viewers": 100 }"#,
            r#"{ "name": "hq", "viewers": 100, "vpn_mbps": 10 }"#,
        );
        assert!(e.contains("first site"), "{e}");
        assert!(parse("not json", 1).is_err());
        assert!(parse("", 1).is_err());
    }

    #[test]
    fn on_demand_fields_and_defaults() {
        let text = r#"{
  "sites": [{ "name": "a", "viewers": 3 }, { "name": "b", "viewers": 2 }],
  "access": { "down_mbps": 20, "up_mbps": [1] },
  "ladder_kbps": [700],
  "vod": { "title_s": 600, "seek_every_s": 120 }
}"#;
        let s = parse(text, 1).expect("valid");
        assert_eq!(s.gateway_bps, None);
        assert_eq!((s.sites[0].asn, s.sites[1].asn), (64_500, 64_501));
        assert_eq!(s.fragment, Duration::from_secs(2));
        assert_eq!(s.vod_fragments(), Some(300));
        let v = s.vod.expect("vod");
        assert_eq!(v.seek_every, Duration::from_secs(120));
        assert_eq!(v.watch_mean, Duration::from_secs(600));
        assert_eq!(v.start_at_zero, 1.0);
        let short = text.replace(r#""title_s": 600"#, r#""title_s": 1"#);
        assert!(parse(&short, 1).is_err());
    }
}
