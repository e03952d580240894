//! Checking an outgoing message against the limits a receiver enforces.

use super::encode::socket_addrs;
use super::error::WireError;
use super::limits::WireLimits;
use super::message::Message;
use crate::ids::Locality;

impl Message {
    /// Checks this message against `limits` as a receiver's decoder would: `Ok` exactly when a
    /// receiver with these limits decodes its frame.
    ///
    /// Use it before sending a message built from sizes you do not control (a token from
    /// the registrar, a peer list from the tracker, a chunk size from configuration).
    ///
    /// ```
    /// use hive_core::wire::{Bye, ByeReason, Message, WireError, WireLimits};
    /// let bye = Message::Bye(Bye { reason: ByeReason::Leaving, detail: "x".repeat(300) });
    /// assert!(matches!(bye.check(&WireLimits::default()), Err(WireError::LimitExceeded { .. })));
    /// ```
    pub fn check(&self, limits: &WireLimits) -> Result<(), WireError> {
        match self {
            Message::Hello(h) => {
                if h.versions.is_empty() {
                    return Err(WireError::Malformed {
                        field: "Hello versions",
                        reason: "no version listed",
                    });
                }
                bound(
                    "Hello versions",
                    h.versions.len() as u64,
                    limits.max_versions,
                )?;
                check_locality(&h.locality, limits)?;
                bound("Hello token", h.token.len() as u64, limits.max_token_len)?;
            }
            Message::Have(h) => h.check(limits)?,
            Message::Data(d) => {
                if d.total_len > limits.max_fragment_len {
                    return Err(WireError::LimitExceeded {
                        what: "Data total length",
                        len: d.total_len,
                        limit: limits.max_fragment_len,
                    });
                }
                bound("Data chunk", d.payload.len() as u64, limits.max_chunk_len)?;
                if d.offset
                    .checked_add(d.payload.len() as u64)
                    .is_none_or(|end| end > d.total_len)
                {
                    return Err(WireError::Malformed {
                        field: "Data chunk",
                        reason: "extends beyond the fragment's total length",
                    });
                }
            }
            Message::PeerExchange(p) => {
                bound("PeerExchange peers", p.peers.len() as u64, limits.max_peers)?;
                for peer in &p.peers {
                    check_locality(&peer.locality, limits)?;
                    let n = socket_addrs(peer).count() as u64;
                    bound("peer addresses", n, limits.max_peer_addrs)?;
                }
            }
            Message::Bye(b) => bound("Bye detail", b.detail.len() as u64, limits.max_string_len)?,
            Message::Request(_)
            | Message::Cancel(_)
            | Message::Reject(_)
            | Message::Choke
            | Message::Unchoke
            | Message::Ping(_)
            | Message::Pong(_) => {}
        }
        let len = self.encoded_len() as u64;
        if len > u64::from(limits.max_frame_len) {
            return Err(WireError::FrameTooLarge {
                len,
                limit: u64::from(limits.max_frame_len),
            });
        }
        Ok(())
    }
}

fn bound(what: &'static str, len: u64, limit: u32) -> Result<(), WireError> {
    if len > u64::from(limit) {
        Err(WireError::LimitExceeded {
            what,
            len,
            limit: u64::from(limit),
        })
    } else {
        Ok(())
    }
}

fn check_locality(l: &Locality, limits: &WireLimits) -> Result<(), WireError> {
    if let Some(site) = &l.site {
        bound("locality site", site.len() as u64, limits.max_string_len)?;
    }
    Ok(())
}
