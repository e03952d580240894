//! The packet format: long-header handshake packets, short-header protected packets, and the
//! frames inside them. Decoding never panics and every length read off the wire is bounded.
//!
//! ```text
//! INITIAL   0x01 | version u32 | src_cid u64 | cookie_len u8 (<= 48) | cookie | noise_len u16 | noise | zero padding to 1200
//! RETRY     0x02 | version u32 | dst_cid u64 | cookie_len u8 | cookie
//! VERSION   0x03 | 0 u32       | dst_cid u64 | n u8 | n x version u32
//! RESPONSE  0x04 | version u32 | dst_cid u64 | src_cid u64 | noise_len u16 | noise
//! FINISH    0x05 | version u32 | dst_cid u64 | noise_len u16 | noise
//! SHORT     0x06 | phase | dst_cid u64 | pn u64 | AES-256-GCM(key, nonce = iv XOR pn, aad = header, plaintext) | tag 16
//! plaintext = send_time_us u64 | frame*
//! ```
//!
//! The SHORT type byte carries the key phase in its low bit (`0x06` or `0x07`, see
//! `protection.rs`); `0x07` goes only to peers that announced key updates in the handshake.
//! All integers are big-endian. The packet keys and IVs (one per direction) come from the Noise
//! split through HKDF-SHA256 (see `protection.rs`). The whole 17-byte short header is the AEAD's
//! associated data and `pn` is in the nonce: changing either makes decryption fail.
//!
//! Version 2 (`0x4869_0002`) replaced version 1's packet protection (snow's ChaCha20-Poly1305
//! transport state, nonce = pn, header not authenticated); the handshake is unchanged.

use std::ops::Range;

/// The protocol version this crate speaks.
pub const VERSION: u32 = 0x4869_0002;
/// The versions this crate accepts (for version negotiation).
pub const SUPPORTED_VERSIONS: &[u32] = &[VERSION];
/// Minimum size of an INITIAL datagram: a server's reply is always smaller than 3x this.
pub const MIN_INITIAL_SIZE: usize = 1200;
/// Largest cookie accepted.
pub const MAX_COOKIE: usize = 48;
/// Bytes of the short header.
pub const SHORT_HEADER_LEN: usize = 1 + 8 + 8;
/// The AEAD tag length (AES-256-GCM).
pub const TAG_LEN: usize = 16;
/// Most ACK ranges in one frame.
pub const MAX_ACK_RANGES: usize = 32;

pub(crate) const T_INITIAL: u8 = 0x01;
pub(crate) const T_RETRY: u8 = 0x02;
pub(crate) const T_VERSION: u8 = 0x03;
pub(crate) const T_RESPONSE: u8 = 0x04;
pub(crate) const T_FINISH: u8 = 0x05;
pub(crate) const T_SHORT: u8 = 0x06;

/// A malformed packet or frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("malformed packet: {0}")]
pub struct Malformed(pub &'static str);

/// A bounds-checked reader.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }
    pub(crate) fn remaining(&self) -> usize {
        self.buf.len()
    }
    pub(crate) fn bytes(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], Malformed> {
        if n > self.buf.len() {
            return Err(Malformed(what));
        }
        let (a, b) = self.buf.split_at(n);
        self.buf = b;
        Ok(a)
    }
    pub(crate) fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.buf)
    }
    pub(crate) fn u8(&mut self, what: &'static str) -> Result<u8, Malformed> {
        Ok(self.bytes(1, what)?[0])
    }
    pub(crate) fn u16(&mut self, what: &'static str) -> Result<u16, Malformed> {
        let b = self.bytes(2, what)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    pub(crate) fn u32(&mut self, what: &'static str) -> Result<u32, Malformed> {
        let mut a = [0u8; 4];
        a.copy_from_slice(self.bytes(4, what)?);
        Ok(u32::from_be_bytes(a))
    }
    pub(crate) fn u64(&mut self, what: &'static str) -> Result<u64, Malformed> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.bytes(8, what)?);
        Ok(u64::from_be_bytes(a))
    }
}

/// A decoded long-header (handshake) packet, borrowing the datagram.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Long<'a> {
    Initial {
        version: u32,
        src_cid: u64,
        cookie: &'a [u8],
        noise: &'a [u8],
    },
    Retry {
        dst_cid: u64,
        cookie: &'a [u8],
    },
    Version {
        dst_cid: u64,
        versions: Vec<u32>,
    },
    Response {
        dst_cid: u64,
        src_cid: u64,
        noise: &'a [u8],
    },
    Finish {
        dst_cid: u64,
        noise: &'a [u8],
    },
}

/// What a datagram is, after the first byte and the routing fields.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Packet<'a> {
    Long(Long<'a>),
    /// A version this endpoint does not speak (answered with VERSION only when it is an INITIAL
    /// padded to the minimum size).
    UnknownVersion {
        ty: u8,
        src_cid: Option<u64>,
    },
    Short {
        dst_cid: u64,
        pn: u64,
        /// The key phase bit.
        phase: u8,
        header: &'a [u8],
        sealed: &'a [u8],
    },
}

/// Decodes the outer layer of a datagram.
pub(crate) fn decode(d: &[u8]) -> Result<Packet<'_>, Malformed> {
    let mut r = Reader::new(d);
    let ty = r.u8("type")?;
    if ty & !1 == T_SHORT {
        let dst_cid = r.u64("dst cid")?;
        let pn = r.u64("pn")?;
        let sealed = r.rest();
        if sealed.len() < TAG_LEN + 8 {
            return Err(Malformed("short packet body"));
        }
        return Ok(Packet::Short {
            dst_cid,
            pn,
            phase: ty & 1,
            header: &d[..SHORT_HEADER_LEN],
            sealed,
        });
    }
    let version = r.u32("version")?;
    if ty == T_VERSION {
        let dst_cid = r.u64("dst cid")?;
        let n = r.u8("version count")? as usize;
        let mut versions = Vec::with_capacity(n.min(16));
        for _ in 0..n.min(16) {
            versions.push(r.u32("version")?);
        }
        return Ok(Packet::Long(Long::Version { dst_cid, versions }));
    }
    if !SUPPORTED_VERSIONS.contains(&version) {
        let src_cid = if ty == T_INITIAL {
            r.u64("cid").ok()
        } else {
            None
        };
        return Ok(Packet::UnknownVersion { ty, src_cid });
    }
    Ok(Packet::Long(match ty {
        T_INITIAL => {
            let src_cid = r.u64("src cid")?;
            let cl = r.u8("cookie len")? as usize;
            if cl > MAX_COOKIE {
                return Err(Malformed("cookie too long"));
            }
            let cookie = r.bytes(cl, "cookie")?;
            let nl = r.u16("noise len")? as usize;
            let noise = r.bytes(nl, "noise")?;
            Long::Initial {
                version,
                src_cid,
                cookie,
                noise,
            }
        }
        T_RETRY => {
            let dst_cid = r.u64("dst cid")?;
            let cl = r.u8("cookie len")? as usize;
            if cl > MAX_COOKIE {
                return Err(Malformed("cookie too long"));
            }
            Long::Retry {
                dst_cid,
                cookie: r.bytes(cl, "cookie")?,
            }
        }
        T_RESPONSE => {
            let dst_cid = r.u64("dst cid")?;
            let src_cid = r.u64("src cid")?;
            let nl = r.u16("noise len")? as usize;
            Long::Response {
                dst_cid,
                src_cid,
                noise: r.bytes(nl, "noise")?,
            }
        }
        T_FINISH => {
            let dst_cid = r.u64("dst cid")?;
            let nl = r.u16("noise len")? as usize;
            Long::Finish {
                dst_cid,
                noise: r.bytes(nl, "noise")?,
            }
        }
        _ => return Err(Malformed("unknown packet type")),
    }))
}

fn put_noise(out: &mut Vec<u8>, noise: &[u8]) {
    out.extend_from_slice(&(noise.len().min(u16::MAX as usize) as u16).to_be_bytes());
    out.extend_from_slice(noise);
}

/// An INITIAL, padded to [`MIN_INITIAL_SIZE`].
pub(crate) fn initial(version: u32, src_cid: u64, cookie: &[u8], noise: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(MIN_INITIAL_SIZE);
    out.push(T_INITIAL);
    out.extend_from_slice(&version.to_be_bytes());
    out.extend_from_slice(&src_cid.to_be_bytes());
    let cookie = &cookie[..cookie.len().min(MAX_COOKIE)];
    out.push(cookie.len() as u8);
    out.extend_from_slice(cookie);
    put_noise(&mut out, noise);
    if out.len() < MIN_INITIAL_SIZE {
        out.resize(MIN_INITIAL_SIZE, 0);
    }
    out
}

pub(crate) fn retry(dst_cid: u64, cookie: &[u8]) -> Vec<u8> {
    let mut out = vec![T_RETRY];
    out.extend_from_slice(&VERSION.to_be_bytes());
    out.extend_from_slice(&dst_cid.to_be_bytes());
    out.push(cookie.len() as u8);
    out.extend_from_slice(cookie);
    out
}

pub(crate) fn version_negotiation(dst_cid: u64) -> Vec<u8> {
    let mut out = vec![T_VERSION];
    out.extend_from_slice(&0u32.to_be_bytes());
    out.extend_from_slice(&dst_cid.to_be_bytes());
    out.push(SUPPORTED_VERSIONS.len() as u8);
    for v in SUPPORTED_VERSIONS {
        out.extend_from_slice(&v.to_be_bytes());
    }
    out
}

pub(crate) fn response(dst_cid: u64, src_cid: u64, noise: &[u8]) -> Vec<u8> {
    let mut out = vec![T_RESPONSE];
    out.extend_from_slice(&VERSION.to_be_bytes());
    out.extend_from_slice(&dst_cid.to_be_bytes());
    out.extend_from_slice(&src_cid.to_be_bytes());
    put_noise(&mut out, noise);
    out
}

pub(crate) fn finish(dst_cid: u64, noise: &[u8]) -> Vec<u8> {
    let mut out = vec![T_FINISH];
    out.extend_from_slice(&VERSION.to_be_bytes());
    out.extend_from_slice(&dst_cid.to_be_bytes());
    put_noise(&mut out, noise);
    out
}

/// The short header, with key phase `phase` (0 or 1).
pub(crate) fn short_header(dst_cid: u64, pn: u64, phase: u8) -> [u8; SHORT_HEADER_LEN] {
    let mut h = [0u8; SHORT_HEADER_LEN];
    h[0] = T_SHORT | (phase & 1);
    h[1..9].copy_from_slice(&dst_cid.to_be_bytes());
    h[9..17].copy_from_slice(&pn.to_be_bytes());
    h
}

pub(crate) const F_PADDING: u8 = 0x00;
pub(crate) const F_PING: u8 = 0x01;
pub(crate) const F_ACK: u8 = 0x02;
pub(crate) const F_STREAM: u8 = 0x03;
pub(crate) const F_MAX_DATA: u8 = 0x04;
pub(crate) const F_CLOSE: u8 = 0x05;

/// Bytes of a STREAM frame header.
pub(crate) const STREAM_HEADER_LEN: usize = 1 + 1 + 8 + 2;

/// A frame inside a protected packet.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Frame<'a> {
    Ping,
    Ack {
        /// Microseconds the receiver held the largest packet before acking.
        ack_delay_us: u32,
        /// Receiver clock minus the largest packet's send time, microseconds (clocks differ:
        /// only changes of it mean anything).
        owd_us: i64,
        /// Acknowledged packet numbers, highest range first.
        ranges: Vec<Range<u64>>,
    },
    Stream {
        class: u8,
        offset: u64,
        data: &'a [u8],
    },
    MaxData {
        class: u8,
        max: u64,
    },
    Close {
        code: u8,
    },
}

/// Close codes.
pub(crate) const CLOSE_GRACEFUL: u8 = 0;
pub(crate) const CLOSE_ABORT: u8 = 1;
pub(crate) const CLOSE_PROTOCOL: u8 = 2;
/// The sender refused the receiver's admission token.
pub(crate) const CLOSE_REFUSED: u8 = 3;
/// Too many packets failed authentication (RFC 9001 §6.6 integrity limit).
pub(crate) const CLOSE_AEAD_LIMIT: u8 = 4;

/// Decodes the next frame; `Ok(None)` at the end (padding ends the packet).
pub(crate) fn next_frame<'a>(r: &mut Reader<'a>) -> Result<Option<Frame<'a>>, Malformed> {
    if r.remaining() == 0 {
        return Ok(None);
    }
    Ok(Some(match r.u8("frame type")? {
        F_PADDING => {
            r.rest();
            return Ok(None);
        }
        F_PING => Frame::Ping,
        F_ACK => {
            let ack_delay_us = r.u32("ack delay")?;
            let owd_us = r.u64("owd")? as i64;
            let n = r.u8("ack ranges")? as usize;
            if n == 0 || n > MAX_ACK_RANGES {
                return Err(Malformed("ack range count"));
            }
            let mut ranges = Vec::with_capacity(n);
            for _ in 0..n {
                let start = r.u64("ack start")?;
                let end = r.u64("ack end")?;
                if start >= end {
                    return Err(Malformed("empty ack range"));
                }
                ranges.push(start..end);
            }
            Frame::Ack {
                ack_delay_us,
                owd_us,
                ranges,
            }
        }
        F_STREAM => {
            let class = r.u8("class")?;
            if class > 1 {
                return Err(Malformed("class"));
            }
            let offset = r.u64("offset")?;
            let len = r.u16("stream len")? as usize;
            let data = r.bytes(len, "stream data")?;
            if offset.checked_add(len as u64).is_none() {
                return Err(Malformed("stream offset overflow"));
            }
            Frame::Stream {
                class,
                offset,
                data,
            }
        }
        F_MAX_DATA => {
            let class = r.u8("class")?;
            if class > 1 {
                return Err(Malformed("class"));
            }
            Frame::MaxData {
                class,
                max: r.u64("max data")?,
            }
        }
        F_CLOSE => Frame::Close {
            code: r.u8("close code")?,
        },
        _ => return Err(Malformed("unknown frame")),
    }))
}

/// Encodes an ACK frame.
pub(crate) fn put_ack(out: &mut Vec<u8>, ack_delay_us: u32, owd_us: i64, ranges: &[Range<u64>]) {
    out.push(F_ACK);
    out.extend_from_slice(&ack_delay_us.to_be_bytes());
    out.extend_from_slice(&(owd_us as u64).to_be_bytes());
    let n = ranges.len().min(MAX_ACK_RANGES);
    out.push(n as u8);
    for r in &ranges[..n] {
        out.extend_from_slice(&r.start.to_be_bytes());
        out.extend_from_slice(&r.end.to_be_bytes());
    }
}

/// Encodes a STREAM frame header (the caller appends `len` data bytes).
pub(crate) fn put_stream_header(out: &mut Vec<u8>, class: u8, offset: u64, len: u16) {
    out.push(F_STREAM);
    out.push(class);
    out.extend_from_slice(&offset.to_be_bytes());
    out.extend_from_slice(&len.to_be_bytes());
}

/// Encodes a MAX_DATA frame.
pub(crate) fn put_max_data(out: &mut Vec<u8>, class: u8, max: u64) {
    out.push(F_MAX_DATA);
    out.push(class);
    out.extend_from_slice(&max.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip() {
        let mut b = 7u64.to_be_bytes().to_vec();
        put_ack(&mut b, 25, -3, &[10..12, 3..5]);
        put_stream_header(&mut b, 1, 99, 3);
        b.extend_from_slice(b"abc");
        put_max_data(&mut b, 0, 1 << 40);
        b.push(F_PING);
        b.extend_from_slice(&[F_CLOSE, CLOSE_ABORT, F_PADDING, 9, 9]);
        let mut r = Reader::new(&b);
        assert_eq!(r.u64("ts"), Ok(7));
        let mut frames = Vec::new();
        while let Some(f) = next_frame(&mut r).expect("valid") {
            frames.push(f);
        }
        assert_eq!(frames.len(), 5);
        assert_eq!(
            frames[0],
            Frame::Ack {
                ack_delay_us: 25,
                owd_us: -3,
                ranges: vec![10..12, 3..5]
            }
        );
        assert_eq!(
            frames[1],
            Frame::Stream {
                class: 1,
                offset: 99,
                data: b"abc"
            }
        );
    }

    #[test]
    fn truncations_are_errors_not_panics() {
        let i = initial(VERSION, 5, b"cookie", b"noise");
        assert_eq!(i.len(), MIN_INITIAL_SIZE);
        for n in 0..40 {
            let _ = decode(&i[..n]);
        }
        assert!(matches!(
            decode(&i),
            Ok(Packet::Long(Long::Initial { src_cid: 5, .. }))
        ));
        let mut b = vec![F_ACK, 0, 0];
        assert!(next_frame(&mut Reader::new(&b)).is_err());
        b = vec![F_STREAM, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 200, 1];
        assert!(next_frame(&mut Reader::new(&b)).is_err());
    }
}
