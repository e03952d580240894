//! The tracker's JSON shapes (see the [module docs](super) for the endpoints) and their checked
//! conversion to and from `hive-core` types. Every bound is enforced here, so handlers and stores
//! only ever see valid values.

use std::net::{IpAddr, SocketAddr};

use hive_core::{ContentId, Locality, PeerAddr, PeerId, PeerInfo, Role};
use serde::{Deserialize, Serialize};

/// At most this many addresses per peer.
pub const MAX_ADDRS: usize = 8;
/// At most this many bytes in a site name, an address or a role.
pub const MAX_STR: usize = 64;
/// At most this many bytes in a token's or a leave key's text.
pub const MAX_SECRET_TEXT: usize = 512;

/// `POST /v1/announce` body.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct AnnounceRequest {
    /// Content id, 64 hex digits.
    pub content: String,
    /// Peer id, 64 hex digits.
    pub peer: String,
    /// Where to dial the peer: `ip:port` (an unspecified ip such as `0.0.0.0:4000` is replaced by
    /// the address the tracker sees), `rendezvous`, or `memory:N`. At most [`MAX_ADDRS`].
    #[serde(default)]
    pub addrs: Vec<String>,
    /// The agent's own idea of its site (the tracker's locality table wins).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site: Option<String>,
    /// The agent's own idea of its AS number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asn: Option<u32>,
    /// ISO 3166-1 alpha-2 country code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    /// `peer` (default), `supernode`, `consume-only` or `seeder`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// Upload capacity offered, kbit/s.
    #[serde(default)]
    pub upload_kbps: u32,
    /// Registrar token, base64url.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// How many peers to return (capped at the tracker's `max_reply`; absent or 0 = `max_reply`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub want: Option<usize>,
    /// The `leave_key` the tracker returned to this peer's first announce in this swarm,
    /// base64url: required while the peer is listed (an announce without it, or with another,
    /// is refused with 403: nobody else may take over a listed peer id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leave_key: Option<String>,
}

/// A peer in replies (and, in the Redis store, as stored).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct PeerJson {
    /// Peer id, hex.
    pub peer: String,
    /// Addresses, as in [`AnnounceRequest::addrs`].
    pub addrs: Vec<String>,
    /// Site, if known.
    #[serde(default)]
    pub site: Option<String>,
    /// AS number, if known.
    #[serde(default)]
    pub asn: Option<u32>,
    /// Country, if known.
    #[serde(default)]
    pub country: Option<String>,
    /// Role, as in [`AnnounceRequest::role`].
    #[serde(default)]
    pub role: Option<String>,
    /// Upload capacity, kbit/s.
    #[serde(default)]
    pub upload_kbps: u32,
}

/// `POST /v1/announce` reply.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct AnnounceResponse {
    /// The sample, nearest first; never the announcer.
    pub peers: Vec<PeerJson>,
    /// Seconds until the next announce is due.
    pub interval_s: f64,
    /// The address the tracker saw the request come from.
    #[serde(default)]
    pub observed_addr: Option<String>,
    /// The site the tracker assigned.
    #[serde(default)]
    pub site: Option<String>,
    /// The AS the tracker assigned.
    #[serde(default)]
    pub asn: Option<u32>,
    /// The country the tracker assigned.
    #[serde(default)]
    pub country: Option<String>,
    /// The role the tracker lists the announcer with (`supernode` when it promoted it).
    #[serde(default)]
    pub role: Option<String>,
    /// On the peer's first announce in the swarm (while it is not listed): a random secret,
    /// base64url, that its later announces and its leave must carry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leave_key: Option<String>,
}

/// `POST /v1/leave` body.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct LeaveRequest {
    /// Content id, hex.
    pub content: String,
    /// Peer id, hex.
    pub peer: String,
    /// Registrar token, base64url (required when the tracker requires tokens).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// The `leave_key` of the peer's announce reply: a leave without it (or with another) is
    /// refused with 403 while the peer is listed with one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leave_key: Option<String>,
}

/// `POST /v1/report` body: the reporter (listed in the swarm, proving it with its leave key)
/// accuses `bad` of serving bytes that failed a signed hash.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportRequest {
    /// Content id, hex.
    pub content: String,
    /// The reporter's peer id, hex.
    pub peer: String,
    /// The reporter's registrar token, base64url (required when the tracker requires tokens).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// The reporter's `leave_key`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leave_key: Option<String>,
    /// The accused peer's id, hex.
    pub bad: String,
}

/// `GET /v1/peers` reply.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct PeersResponse {
    /// A sample of the swarm.
    pub peers: Vec<PeerJson>,
}

/// The role's name in JSON.
pub fn role_name(role: Role) -> &'static str {
    match role {
        Role::Supernode => "supernode",
        Role::ConsumeOnly => "consume-only",
        Role::Seeder => "seeder",
        _ => "peer",
    }
}

/// The role for a JSON name.
pub fn parse_role(name: &str) -> Result<Role, String> {
    match name {
        "peer" => Ok(Role::Peer),
        "supernode" => Ok(Role::Supernode),
        "consume-only" => Ok(Role::ConsumeOnly),
        "seeder" => Ok(Role::Seeder),
        other => Err(format!(
            "role {:?} is not one of peer, supernode, consume-only, seeder",
            truncate(other)
        )),
    }
}

/// An address's text form.
pub fn addr_text(addr: &PeerAddr) -> String {
    match addr {
        PeerAddr::Socket(s) => s.to_string(),
        PeerAddr::Memory(n) => format!("memory:{n}"),
        _ => "rendezvous".to_owned(),
    }
}

/// Parses an address's text form; an unspecified ip (`0.0.0.0`, `::`) takes `observed`'s ip.
pub fn parse_addr(text: &str, observed: Option<IpAddr>) -> Result<PeerAddr, String> {
    check_len("address", text)?;
    if text == "rendezvous" {
        return Ok(PeerAddr::Rendezvous);
    }
    if let Some(n) = text.strip_prefix("memory:") {
        return n
            .parse()
            .map(PeerAddr::Memory)
            .map_err(|_| format!("bad memory address {text:?}"));
    }
    let mut sa: SocketAddr = text
        .parse()
        .map_err(|_| format!("address {text:?} is not ip:port, rendezvous or memory:N"))?;
    if sa.ip().is_unspecified() {
        if let Some(ip) = observed {
            sa.set_ip(ip);
        }
    }
    Ok(PeerAddr::Socket(sa))
}

fn truncate(s: &str) -> &str {
    let mut end = s.len().min(MAX_STR);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn check_len(what: &str, s: &str) -> Result<(), String> {
    if s.len() > MAX_STR {
        Err(format!("{what} longer than {MAX_STR} bytes"))
    } else {
        Ok(())
    }
}

/// Checks a site name: 1..=64 bytes.
pub fn check_site(site: &str) -> Result<(), String> {
    check_len("site", site)?;
    if site.is_empty() {
        return Err("site is empty".into());
    }
    Ok(())
}

/// Parses a country code: two ASCII letters, any case.
pub fn parse_country(text: &str) -> Result<[u8; 2], String> {
    let b = text.as_bytes();
    if b.len() == 2 && b.iter().all(u8::is_ascii_alphabetic) {
        Ok([b[0].to_ascii_uppercase(), b[1].to_ascii_uppercase()])
    } else {
        Err(format!(
            "country {:?} is not a two-letter code",
            truncate(text)
        ))
    }
}

/// A country code's text.
pub fn country_text(c: [u8; 2]) -> String {
    String::from_utf8_lossy(&c).into_owned()
}

/// Parses the peer fields shared by announces and stored entries.
#[allow(clippy::too_many_arguments)]
pub(crate) fn peer_from_parts(
    peer: &str,
    addrs: &[impl AsRef<str>],
    site: Option<&str>,
    asn: Option<u32>,
    country: Option<&str>,
    role: Option<&str>,
    upload_kbps: u32,
    observed: Option<IpAddr>,
) -> Result<PeerInfo, String> {
    let id: PeerId = peer.parse().map_err(|e| format!("peer: {e}"))?;
    if addrs.len() > MAX_ADDRS {
        return Err(format!("more than {MAX_ADDRS} addresses"));
    }
    let addrs = addrs
        .iter()
        .map(|a| parse_addr(a.as_ref(), observed))
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(s) = site {
        check_site(s)?;
    }
    Ok(PeerInfo {
        id,
        addrs,
        locality: Locality {
            asn,
            site: site.map(str::to_owned),
            country: country.map(parse_country).transpose()?,
        },
        role: role.map(parse_role).transpose()?.unwrap_or_default(),
        upload_kbps,
    })
}

impl AnnounceRequest {
    /// Checks every field and converts: the content, and the peer as it describes itself.
    pub fn parse(&self, observed: Option<IpAddr>) -> Result<(ContentId, PeerInfo), String> {
        let content: ContentId = self.content.parse().map_err(|e| format!("content: {e}"))?;
        let info = peer_from_parts(
            &self.peer,
            &self.addrs,
            self.site.as_deref(),
            self.asn,
            self.country.as_deref(),
            self.role.as_deref(),
            self.upload_kbps,
            observed,
        )?;
        Ok((content, info))
    }
}

impl PeerJson {
    /// The JSON form of `info`.
    pub fn from_info(info: &PeerInfo) -> Self {
        PeerJson {
            peer: info.id.to_string(),
            addrs: info.addrs.iter().map(addr_text).collect(),
            site: info.locality.site.clone(),
            asn: info.locality.asn,
            country: info.locality.country.map(country_text),
            role: Some(role_name(info.role).to_owned()),
            upload_kbps: info.upload_kbps,
        }
    }

    /// Checks every field and converts.
    pub fn to_info(&self) -> Result<PeerInfo, String> {
        peer_from_parts(
            &self.peer,
            &self.addrs,
            self.site.as_deref(),
            self.asn,
            self.country.as_deref(),
            self.role.as_deref(),
            self.upload_kbps,
            None,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_round_trip_through_json() {
        let info = PeerInfo {
            id: PeerId::from_bytes([7; 32]),
            addrs: vec![
                PeerAddr::Socket("10.0.0.1:4000".parse().unwrap()),
                PeerAddr::Socket("[::1]:5".parse().unwrap()),
                PeerAddr::Rendezvous,
                PeerAddr::Memory(9),
            ],
            locality: Locality {
                asn: Some(64500),
                site: Some("paris".into()),
                country: Some(*b"FR"),
            },
            role: Role::Supernode,
            upload_kbps: 5000,
        };
        let json = serde_json::to_string(&PeerJson::from_info(&info)).unwrap();
        let back: PeerJson = serde_json::from_str(&json).unwrap();
        assert_eq!(back.to_info().unwrap(), info);
    }

    #[test]
    fn unspecified_addresses_take_the_observed_ip() {
        let a = parse_addr("0.0.0.0:4000", Some("192.0.2.7".parse().unwrap())).unwrap();
        assert_eq!(a, PeerAddr::Socket("192.0.2.7:4000".parse().unwrap()));
    }

    #[test]
    fn bounds_and_bad_values_are_refused() {
        let mut req = AnnounceRequest {
            content: ContentId::derive("c").to_string(),
            peer: PeerId::from_bytes([1; 32]).to_string(),
            ..Default::default()
        };
        assert!(req.parse(None).is_ok());
        req.addrs = vec!["127.0.0.1:1".into(); MAX_ADDRS + 1];
        assert!(req.parse(None).unwrap_err().contains("addresses"));
        req.addrs = vec!["nonsense".into()];
        assert!(req.parse(None).is_err());
        req.addrs.clear();
        req.site = Some("x".repeat(MAX_STR + 1));
        assert!(req.parse(None).unwrap_err().contains("site"));
        req.site = Some("é".repeat(40));
        assert!(req.parse(None).is_err());
        req.site = None;
        req.country = Some("FRA".into());
        assert!(req.parse(None).is_err());
        req.country = Some("fr".into());
        assert_eq!(req.parse(None).unwrap().1.locality.country, Some(*b"FR"));
        req.role = Some("boss".into());
        assert!(req.parse(None).is_err());
        req.role = None;
        req.peer = "00".into();
        assert!(req.parse(None).is_err());
    }
}
