//! Which origins the agent may fetch from.
//!
//! The agent serves its player, and only its player's origins: without this list, a proxy on
//! loopback that fetches any URL it is handed lets every web page the user visits read the
//! intranet and the machine's own services (`/http://127.0.0.1:7171/metrics`). Every upstream
//! request — a manifest, a pass-through, a fragment the swarm engine fetches, a preflight,
//! each hop of a redirect — passes [`OriginAllowlist::check`] inside
//! [`crate::OriginFetcher`]; the names it resolves pass the same list
//! ([`OriginAllowlist::filter_resolved`], installed as reqwest's DNS resolver).
//!
//! The rule, for a URL:
//! - the scheme is `http` or `https`, and the URL carries no user info (`user:pw@host`);
//! - an IP-literal host (in any spelling the `url` crate reads: `2130706433`, `0x7f.1`,
//!   `0177.0.0.1`, `[::ffff:127.0.0.1]`, all normalised before the check) whose address is
//!   loopback, link-local, private (RFC 1918, ULA `fc00::/7`), shared (CGNAT `100.64/10`),
//!   `0.0.0.0/8`, unspecified, multicast or reserved — or an IPv4-mapped, -compatible or NAT64
//!   IPv6 address of one — is refused unless that exact host is listed;
//! - `host:port` is listed: an entry `HOST:PORT` matches that port under either scheme, an
//!   entry `HOST` matches the scheme's default port (80 for http, 443 for https);
//! - a host name is resolved by the agent's own resolver, which drops the non-public addresses
//!   of any name not listed exactly (and refuses the name when nothing is left). With exact
//!   entries only, a name reaches the resolver only when listed: this is the second gate,
//!   kept so that the address rule holds whatever path a request takes.
//!
//! Hosts compare case-insensitively: the `url` crate lowercases host names (and entries are read
//! through it too), so `HTTP://Origin.Example/` and `origin.example` are the same host. A
//! trailing dot is kept: `origin.example.` is a different (unlisted) host.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use url::{Host, Url};

use crate::error::FetchError;

/// One `HOST[:PORT]` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Entry {
    host: Host<String>,
    /// `None`: the scheme's default port.
    port: Option<u16>,
}

impl Entry {
    fn matches(&self, host: &Host<String>, port: u16, scheme: &str) -> bool {
        &self.host == host
            && match self.port {
                Some(p) => p == port,
                None => Some(port) == default_port(scheme),
            }
    }
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

/// The origins an agent may fetch from: the `--origin` base's `host:port` and every
/// `--allow-origin HOST[:PORT]` entry. An empty list refuses every URL.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OriginAllowlist {
    entries: Vec<Entry>,
}

impl OriginAllowlist {
    /// The list implied by `origin` (the reverse-proxy base URL, if any) and the `allow`
    /// entries (`HOST` or `HOST:PORT`; IPv6 in brackets, `[::1]:8080`). Fails on an entry that
    /// is not a host and port.
    pub fn new(origin: Option<&str>, allow: &[String]) -> Result<Self, String> {
        let mut entries = Vec::new();
        if let Some(o) = origin {
            let u = Url::parse(o).map_err(|e| format!("origin {o}: {e}"))?;
            if default_port(u.scheme()).is_none() {
                return Err(format!("origin {o}: not an http or https URL"));
            }
            let host = u
                .host()
                .ok_or_else(|| format!("origin {o}: no host"))?
                .to_owned();
            entries.push(Entry {
                host,
                port: u.port_or_known_default(),
            });
        }
        for a in allow {
            entries.push(parse_entry(a)?);
        }
        Ok(OriginAllowlist { entries })
    }

    /// Whether no origin at all is allowed.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether some entry names exactly this host (at any port).
    fn lists_host(&self, host: &Host<String>) -> bool {
        self.entries.iter().any(|e| &e.host == host)
    }

    /// Parses `url` and checks it: the URL, or why the agent refuses it
    /// ([`FetchError::NotAllowed`]; [`FetchError::BadUrl`] when it is not a URL).
    pub fn check_str(&self, url: &str) -> Result<Url, FetchError> {
        let u = Url::parse(url).map_err(|_| FetchError::BadUrl(url.to_string()))?;
        self.check(&u)?;
        Ok(u)
    }

    /// Whether the agent may fetch `url` (the rule of the module documentation).
    pub fn check(&self, url: &Url) -> Result<(), FetchError> {
        let refuse = |host: String, reason: String| Err(FetchError::NotAllowed { host, reason });
        let scheme = url.scheme();
        let (Some(port), Some(host)) = (
            default_port(scheme).and(url.port_or_known_default()),
            url.host(),
        ) else {
            return refuse(
                url.host_str().unwrap_or(url.as_str()).to_string(),
                format!("the agent fetches http and https URLs only, not {scheme}:"),
            );
        };
        let host = host.to_owned();
        let authority = format!("{host}:{port}");
        if !url.username().is_empty() || url.password().is_some() {
            return refuse(
                authority,
                "URLs carrying user info (user@host) are refused".into(),
            );
        }
        if self.entries.is_empty() {
            return refuse(
                authority.clone(),
                format!(
                    "the agent has no origin; start it with --origin URL or --allow-origin {authority}"
                ),
            );
        }
        if let Some(ip) = ip_of(&host)
            && let Some(class) = address_class(ip)
            && !self.lists_host(&host)
        {
            return refuse(
                authority.clone(),
                format!(
                    "a {class} address the agent may not fetch from; start it with --allow-origin {authority} to allow it"
                ),
            );
        }
        if !self.entries.iter().any(|e| e.matches(&host, port, scheme)) {
            return refuse(
                authority.clone(),
                format!(
                    "not in the agent's origin list; start it with --allow-origin {authority} to allow it"
                ),
            );
        }
        Ok(())
    }

    /// The addresses the agent may connect to for the host name `name`: all of them when the
    /// name is listed, its public ones otherwise (refused when none is left).
    pub fn filter_resolved(
        &self,
        name: &str,
        addrs: Vec<SocketAddr>,
    ) -> Result<Vec<SocketAddr>, FetchError> {
        let host = match name.parse::<IpAddr>() {
            Ok(IpAddr::V4(a)) => Host::Ipv4(a),
            Ok(IpAddr::V6(a)) => Host::Ipv6(a),
            Err(_) => Host::Domain(name.to_ascii_lowercase()),
        };
        if self.lists_host(&host) {
            return Ok(addrs);
        }
        let first = addrs.first().map(SocketAddr::ip);
        let kept: Vec<SocketAddr> = addrs
            .into_iter()
            .filter(|a| address_class(a.ip()).is_none())
            .collect();
        match (kept.is_empty(), first) {
            (false, _) => Ok(kept),
            (true, Some(ip)) => Err(FetchError::NotAllowed {
                host: name.to_string(),
                reason: format!(
                    "it resolves to a {} address ({ip}); list it with --allow-origin {name}:PORT to allow it",
                    address_class(ip).unwrap_or("non-public")
                ),
            }),
            (true, None) => Err(FetchError::Io {
                url: name.to_string(),
                reason: "the name resolves to no address".into(),
            }),
        }
    }
}

/// `host:port` of a URL (port explicit, default by scheme), the key the agent remembers an
/// origin's answers under.
pub(crate) fn authority(url: &Url) -> String {
    match (url.host(), url.port_or_known_default()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_string(),
        (None, _) => String::new(),
    }
}

fn ip_of(host: &Host<String>) -> Option<IpAddr> {
    match host {
        Host::Ipv4(a) => Some(IpAddr::V4(*a)),
        Host::Ipv6(a) => Some(IpAddr::V6(*a)),
        Host::Domain(_) => None,
    }
}

/// Reads one `HOST[:PORT]` entry; the host goes through the `url` crate, as URLs do, so both
/// compare in the same normal form.
fn parse_entry(entry: &str) -> Result<Entry, String> {
    let bad = |why: &str| format!("--allow-origin {entry}: {why} (expected HOST or HOST:PORT)");
    let s = entry.trim();
    if s.is_empty() || s.contains(['/', '@', '?', '#', '\\', ' ']) {
        return Err(bad("not a host"));
    }
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (v6, after) = rest.split_once(']').ok_or_else(|| bad("unclosed ["))?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':').ok_or_else(|| bad("junk after ]"))?),
        };
        (format!("[{v6}]"), port)
    } else if s.matches(':').count() > 1 {
        // A bare IPv6 address.
        (format!("[{s}]"), None)
    } else {
        match s.split_once(':') {
            Some((h, p)) => (h.to_string(), Some(p)),
            None => (s.to_string(), None),
        }
    };
    let port = match port {
        None => None,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 => Some(n),
            _ => return Err(bad("bad port")),
        },
    };
    let u = Url::parse(&format!("http://{host}/")).map_err(|e| bad(&e.to_string()))?;
    let host = u.host().ok_or_else(|| bad("no host"))?.to_owned();
    Ok(Entry { host, port })
}

/// Why an address is not a public one (`"loopback"`, `"private"`, ...), or `None` for a public
/// address. IPv6 addresses that embed an IPv4 one (mapped `::ffff:0:0/96`, compatible
/// `::/96`, NAT64 `64:ff9b::/96`) are judged by it.
pub fn address_class(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(a) => v4_class(a),
        IpAddr::V6(a) => v6_class(a),
    }
}

fn v4_class(a: Ipv4Addr) -> Option<&'static str> {
    let [o0, o1, _, _] = a.octets();
    match (o0, o1) {
        (0, _) => Some("this-network (0.0.0.0/8)"),
        (127, _) => Some("loopback"),
        (10, _) | (192, 168) => Some("private"),
        (172, b) if (16..32).contains(&b) => Some("private"),
        (100, b) if (64..128).contains(&b) => Some("shared (CGNAT)"),
        (169, 254) => Some("link-local"),
        (224..=239, _) => Some("multicast"),
        (240..=255, _) => Some("reserved"),
        _ => None,
    }
}

fn v6_class(a: Ipv6Addr) -> Option<&'static str> {
    let s = a.segments();
    if a.is_unspecified() {
        return Some("unspecified");
    }
    if a.is_loopback() {
        return Some("loopback");
    }
    let embedded = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    match s {
        // IPv4-mapped, ::ffff:a.b.c.d.
        [0, 0, 0, 0, 0, 0xffff, hi, lo] => return v4_class(embedded(hi, lo)),
        // IPv4-compatible (deprecated), ::a.b.c.d.
        [0, 0, 0, 0, 0, 0, hi, lo] => {
            return v4_class(embedded(hi, lo)).or(Some("IPv4-compatible"));
        }
        // NAT64 well-known prefix, 64:ff9b::a.b.c.d.
        [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => return v4_class(embedded(hi, lo)),
        _ => {}
    }
    match s[0] {
        x if x & 0xff00 == 0xff00 => Some("multicast"),
        x if x & 0xffc0 == 0xfe80 => Some("link-local"),
        x if x & 0xffc0 == 0xfec0 => Some("site-local"),
        x if x & 0xfe00 == 0xfc00 => Some("private (ULA)"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(s: &str) -> Option<&'static str> {
        address_class(s.parse().expect("an address"))
    }

    #[test]
    fn addresses_are_classified() {
        for (a, want) in [
            ("127.0.0.1", Some("loopback")),
            ("127.255.0.9", Some("loopback")),
            ("10.1.2.3", Some("private")),
            ("172.16.0.1", Some("private")),
            ("172.31.255.255", Some("private")),
            ("192.168.1.1", Some("private")),
            ("100.64.0.1", Some("shared (CGNAT)")),
            ("100.127.255.255", Some("shared (CGNAT)")),
            ("169.254.169.254", Some("link-local")),
            ("0.0.0.0", Some("this-network (0.0.0.0/8)")),
            ("0.1.2.3", Some("this-network (0.0.0.0/8)")),
            ("224.0.0.1", Some("multicast")),
            ("255.255.255.255", Some("reserved")),
            ("::", Some("unspecified")),
            ("::1", Some("loopback")),
            ("fe80::1", Some("link-local")),
            ("fc00::1", Some("private (ULA)")),
            ("fd12:3456::1", Some("private (ULA)")),
            ("ff02::1", Some("multicast")),
            ("::ffff:127.0.0.1", Some("loopback")),
            ("::ffff:10.0.0.1", Some("private")),
            ("::127.0.0.1", Some("loopback")),
            ("64:ff9b::a9fe:a9fe", Some("link-local")),
        ] {
            assert_eq!(class(a), want, "{a}");
        }
        for a in [
            "8.8.8.8",
            "172.15.255.255",
            "172.32.0.1",
            "100.63.255.255",
            "100.128.0.1",
            "193.0.0.1",
            "2001:4860:4860::8888",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
        ] {
            assert_eq!(class(a), None, "{a} is public");
        }
    }

    fn list(origin: Option<&str>, allow: &[&str]) -> OriginAllowlist {
        let allow: Vec<String> = allow.iter().map(|s| s.to_string()).collect();
        OriginAllowlist::new(origin, &allow).expect("a valid list")
    }

    fn refused(l: &OriginAllowlist, url: &str) -> String {
        match l.check_str(url) {
            Err(e @ FetchError::NotAllowed { .. }) => e.to_string(),
            other => panic!("{url} should be refused, got {other:?}"),
        }
    }

    #[test]
    fn every_spelling_of_loopback_is_the_same_host() {
        let l = list(Some("http://127.0.0.1:8181"), &[]);
        for u in [
            "http://127.0.0.1:8181/a",
            "http://2130706433:8181/a",
            "http://0x7f000001:8181/a",
            "http://0x7f.0.0.1:8181/a",
            "http://0177.0.0.1:8181/a",
            "http://127.1:8181/a",
        ] {
            assert!(l.check_str(u).is_ok(), "{u} is the listed origin");
        }
        for u in [
            "http://127.0.0.1:7171/metrics",
            "http://2130706433:7171/",
            "http://0x7f000001:7171/",
            "http://0177.0.0.1:7171/",
            "http://[::1]:8181/",
            "http://[::ffff:127.0.0.1]:8181/",
            "http://[::ffff:7f00:1]:8181/",
            "http://localhost:8181/",
            "http://127.0.0.1:8181@evil.example/",
            "http://user:pw@127.0.0.1:8181/",
            "ftp://127.0.0.1:8181/",
            "file:///etc/passwd",
        ] {
            let msg = refused(&l, u);
            assert!(msg.contains("not allowed"), "{u}: {msg}");
        }
        let msg = refused(&l, "http://127.0.0.1:7171/metrics");
        assert!(
            msg.contains("127.0.0.1:7171") && msg.contains("--allow-origin 127.0.0.1:7171"),
            "{msg}"
        );
    }

    #[test]
    fn entries_match_host_and_port_case_insensitively() {
        let l = list(
            None,
            &[
                "CDN.Example",
                "edge.example:8443",
                "[::1]:9000",
                "10.0.0.5:80",
            ],
        );
        assert!(l.check_str("http://cdn.example/x").is_ok());
        assert!(l.check_str("https://Cdn.EXAMPLE/x").is_ok());
        assert!(l.check_str("https://cdn.example:443/x").is_ok());
        assert!(l.check_str("http://cdn.example:8080/x").is_err());
        assert!(l.check_str("https://edge.example:8443/x").is_ok());
        assert!(l.check_str("http://edge.example:8443/x").is_ok());
        assert!(l.check_str("https://edge.example/x").is_err());
        assert!(l.check_str("http://[::1]:9000/x").is_ok());
        assert!(l.check_str("http://[::1]:9001/x").is_err());
        assert!(l.check_str("http://10.0.0.5/x").is_ok());
        assert!(l.check_str("http://10.0.0.6/x").is_err());
        assert!(l.check_str("http://cdn.example./x").is_err());
        for bad in [
            "",
            "a/b",
            "u@h",
            "h:0",
            "h:99999",
            "h:x",
            "[::1",
            "h:1:2:3:zz",
        ] {
            assert!(
                OriginAllowlist::new(None, &[bad.to_string()]).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn an_empty_list_refuses_everything_and_says_how_to_allow() {
        let l = list(None, &[]);
        assert!(l.is_empty());
        let msg = refused(&l, "https://cdn.example/live.m3u8");
        assert!(msg.contains("--allow-origin cdn.example:443"), "{msg}");
        assert!(msg.contains("--origin"), "{msg}");
    }

    #[test]
    fn names_resolving_to_private_addresses_keep_only_public_ones_unless_listed() {
        let l = list(Some("http://localhost:8181"), &["cdn.example"]);
        let lo: SocketAddr = "127.0.0.1:0".parse().expect("addr");
        let public: SocketAddr = "93.184.216.34:0".parse().expect("addr");
        assert_eq!(l.filter_resolved("localhost", vec![lo]), Ok(vec![lo]));
        assert_eq!(
            l.filter_resolved("cdn.example", vec![lo, public]),
            Ok(vec![lo, public])
        );
        assert_eq!(
            l.filter_resolved("rebind.example", vec![lo, public]),
            Ok(vec![public])
        );
        let e = l.filter_resolved("rebind.example", vec![lo]);
        assert!(
            matches!(&e, Err(FetchError::NotAllowed { host, .. }) if host == "rebind.example"),
            "{e:?}"
        );
    }
}
