//! The operator's table of address ranges: CIDR → site, AS, country, matched by longest prefix
//! on the address the tracker sees (in the manner of an enterprise's subnet groups).
//!
//! Text form, one range a line, `#` starts a comment:
//!
//! ```text
//! # range          attributes
//! 10.1.0.0/16      site=paris asn=64500 country=FR
//! 10.1.42.0/24     site=paris-lab
//! 2001:db8::/32    asn=64501
//! ```
//!
//! JSON form: `[{"cidr": "10.1.0.0/16", "site": "paris", "asn": 64500, "country": "FR"}, ...]`.
//!
//! A more specific range wins; attributes it leaves out fall back to the agent's own
//! configuration, not to a wider range. IPv4-mapped IPv6 addresses match IPv4 ranges.

use std::collections::HashMap;
use std::net::IpAddr;

use hive_core::Locality;
use serde::Deserialize;
use thiserror::Error;

use super::api::{check_site, parse_country};

/// A table line that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("locality table line {line}: {reason}")]
pub struct LocalityTableError {
    /// 1-based line (or JSON entry) number.
    pub line: usize,
    /// What is wrong.
    pub reason: String,
}

/// Maps address ranges to localities; see the [module docs](self).
#[derive(Clone, Debug, Default)]
pub struct LocalityTable {
    /// Prefix length → (masked network → locality), longest prefixes first.
    v4: Vec<(u8, HashMap<u32, Locality>)>,
    v6: Vec<(u8, HashMap<u128, Locality>)>,
    len: usize,
}

#[derive(Deserialize)]
struct JsonEntry {
    cidr: String,
    #[serde(default)]
    site: Option<String>,
    #[serde(default)]
    asn: Option<u32>,
    #[serde(default)]
    country: Option<String>,
}

fn mask4(len: u8) -> u32 {
    if len == 0 { 0 } else { u32::MAX << (32 - len) }
}

fn mask6(len: u8) -> u128 {
    if len == 0 {
        0
    } else {
        u128::MAX << (128 - len)
    }
}

impl LocalityTable {
    /// An empty table (every agent keeps its own locality).
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of ranges.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the table has no range.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Adds (or replaces) a range. `cidr` is `ip/len` or a bare ip (a host range).
    pub fn insert(&mut self, cidr: &str, locality: Locality) -> Result<(), String> {
        let (ip, len) = match cidr.split_once('/') {
            Some((ip, len)) => (ip, Some(len)),
            None => (cidr, None),
        };
        let ip: IpAddr = ip
            .trim()
            .parse()
            .map_err(|_| format!("{cidr:?} is not a CIDR range"))?;
        let max = if ip.is_ipv4() { 32 } else { 128 };
        let len: u8 = match len {
            Some(l) => l
                .trim()
                .parse()
                .ok()
                .filter(|l| *l <= max)
                .ok_or_else(|| format!("bad prefix length in {cidr:?}"))?,
            None => max,
        };
        match ip {
            IpAddr::V4(a) => {
                let net = u32::from(a) & mask4(len);
                insert_level(&mut self.v4, len, net, locality);
            }
            IpAddr::V6(a) => {
                let net = u128::from(a) & mask6(len);
                insert_level(&mut self.v6, len, net, locality);
            }
        }
        self.len = self.v4.iter().map(|l| l.1.len()).sum::<usize>()
            + self.v6.iter().map(|l| l.1.len()).sum::<usize>();
        Ok(())
    }

    /// The locality of the most specific range holding `ip`.
    pub fn lookup(&self, ip: IpAddr) -> Option<&Locality> {
        let ip = match ip {
            IpAddr::V6(a) => a.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        match ip {
            IpAddr::V4(a) => {
                let a = u32::from(a);
                self.v4
                    .iter()
                    .find_map(|(len, m)| m.get(&(a & mask4(*len))))
            }
            IpAddr::V6(a) => {
                let a = u128::from(a);
                self.v6
                    .iter()
                    .find_map(|(len, m)| m.get(&(a & mask6(*len))))
            }
        }
    }

    /// Parses the text form (see the [module docs](self)).
    pub fn parse_text(text: &str) -> Result<Self, LocalityTableError> {
        let mut t = LocalityTable::new();
        for (i, line) in text.lines().enumerate() {
            let err = |reason: String| LocalityTableError {
                line: i + 1,
                reason,
            };
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let mut words = line.split_whitespace();
            let cidr = words.next().unwrap_or("");
            let mut loc = Locality::default();
            for w in words {
                let (k, v) = w
                    .split_once('=')
                    .ok_or_else(|| err(format!("{w:?} is not key=value")))?;
                match k {
                    "site" => {
                        check_site(v).map_err(err)?;
                        loc.site = Some(v.to_owned());
                    }
                    "asn" | "as" => {
                        let v = v.strip_prefix("AS").unwrap_or(v);
                        loc.asn = Some(v.parse().map_err(|_| err(format!("bad asn {v:?}")))?);
                    }
                    "country" => loc.country = Some(parse_country(v).map_err(err)?),
                    other => return Err(err(format!("unknown attribute {other:?}"))),
                }
            }
            t.insert(cidr, loc).map_err(err)?;
        }
        Ok(t)
    }

    /// Parses the JSON form (see the [module docs](self)).
    pub fn parse_json(text: &str) -> Result<Self, LocalityTableError> {
        let entries: Vec<JsonEntry> =
            serde_json::from_str(text).map_err(|e| LocalityTableError {
                line: e.line(),
                reason: e.to_string(),
            })?;
        let mut t = LocalityTable::new();
        for (i, e) in entries.into_iter().enumerate() {
            let err = |reason: String| LocalityTableError {
                line: i + 1,
                reason,
            };
            if let Some(s) = &e.site {
                check_site(s).map_err(err)?;
            }
            let country = e
                .country
                .as_deref()
                .map(parse_country)
                .transpose()
                .map_err(err)?;
            let loc = Locality {
                asn: e.asn,
                site: e.site,
                country,
            };
            t.insert(&e.cidr, loc).map_err(err)?;
        }
        Ok(t)
    }

    /// Parses either form: JSON when the first non-blank character is `[`.
    pub fn parse(text: &str) -> Result<Self, LocalityTableError> {
        if text.trim_start().starts_with('[') {
            Self::parse_json(text)
        } else {
            Self::parse_text(text)
        }
    }

    /// The locality the tracker assigns a peer seen at `ip` that describes itself as `own`: each
    /// attribute from the matching range when it has one, else the peer's own.
    pub fn assign(&self, ip: Option<IpAddr>, own: &Locality) -> Locality {
        match ip.and_then(|ip| self.lookup(ip)) {
            Some(t) => Locality {
                asn: t.asn.or(own.asn),
                site: t.site.clone().or_else(|| own.site.clone()),
                country: t.country.or(own.country),
            },
            None => own.clone(),
        }
    }
}

fn insert_level<K: std::hash::Hash + Eq>(
    levels: &mut Vec<(u8, HashMap<K, Locality>)>,
    len: u8,
    net: K,
    loc: Locality,
) {
    match levels.iter_mut().find(|l| l.0 == len) {
        Some(l) => {
            l.1.insert(net, loc);
        }
        None => {
            levels.push((len, HashMap::from([(net, loc)])));
            levels.sort_by_key(|l| std::cmp::Reverse(l.0));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &str = "
        # offices
        10.1.0.0/16   site=paris asn=64500 country=fr
        10.1.42.0/24  site=paris-lab   # more specific
        0.0.0.0/0     asn=1
        2001:db8::/32 site=v6 asn=AS64501
        ::1           site=loop
    ";

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn longest_prefix_wins_v4_and_v6() {
        let t = LocalityTable::parse(TABLE).unwrap();
        assert_eq!(t.len(), 5);
        assert_eq!(
            t.lookup(ip("10.1.2.3")).unwrap().site.as_deref(),
            Some("paris")
        );
        let lab = t.lookup(ip("10.1.42.9")).unwrap();
        assert_eq!(lab.site.as_deref(), Some("paris-lab"));
        assert_eq!(lab.asn, None);
        assert_eq!(t.lookup(ip("192.0.2.1")).unwrap().asn, Some(1));
        assert_eq!(
            t.lookup(ip("::ffff:10.1.2.3")).unwrap().site.as_deref(),
            Some("paris")
        );
        assert_eq!(t.lookup(ip("2001:db8:1::5")).unwrap().asn, Some(64501));
        assert_eq!(t.lookup(ip("::1")).unwrap().site.as_deref(), Some("loop"));
        assert!(t.lookup(ip("2001:db9::1")).is_none());
    }

    #[test]
    fn missing_attributes_fall_back_to_the_agents_own() {
        let t = LocalityTable::parse(TABLE).unwrap();
        let own = Locality {
            asn: Some(7),
            site: Some("home".into()),
            country: Some(*b"DE"),
        };
        let a = t.assign(Some(ip("10.1.42.9")), &own);
        assert_eq!((a.site.as_deref(), a.asn), (Some("paris-lab"), Some(7)));
        assert_eq!(t.assign(None, &own), own);
        let p = t.assign(Some(ip("10.1.0.1")), &own);
        assert_eq!(p.country, Some(*b"FR"));
    }

    #[test]
    fn json_form_and_errors() {
        let t =
            LocalityTable::parse(r#"[{"cidr": "10.0.0.0/8", "site": "hq", "asn": 3}]"#).unwrap();
        assert_eq!(t.lookup(ip("10.9.9.9")).unwrap().asn, Some(3));
        assert_eq!(
            LocalityTable::parse("10.0.0.0/33 site=x").unwrap_err().line,
            1
        );
        assert_eq!(
            LocalityTable::parse("\n10.0.0.0/8 colour=red")
                .unwrap_err()
                .line,
            2
        );
        assert!(LocalityTable::parse("banana").is_err());
        assert!(LocalityTable::parse("10.0.0.0/8 asn=x").is_err());
        assert!(LocalityTable::parse(r#"[{"cidr": "x"}]"#).is_err());
    }
}
