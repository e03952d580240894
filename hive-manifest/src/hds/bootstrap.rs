//! The HDS bootstrap box `abst` and its segment and fragment run tables `asrt`/`afrt`
//! (Adobe Flash Video File Format Specification 10.1, §F.3.1–F.3.3), read with bounds: every
//! count is checked against the bytes left before anything is allocated.

/// One fragment run: fragments numbered from `first` each last `duration` (timescale units).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FragmentRun {
    pub(crate) first: u32,
    pub(crate) timestamp: u64,
    pub(crate) duration: u32,
}

/// The parts of an `abst` box Hive uses.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Bootstrap {
    pub(crate) live: bool,
    pub(crate) timescale: u32,
    pub(crate) current_media_time: u64,
    /// (first segment, fragments per segment), from the first `asrt`.
    pub(crate) segment_runs: Vec<(u32, u32)>,
    pub(crate) timescale_afrt: u32,
    /// From the first `afrt`.
    pub(crate) fragment_runs: Vec<FragmentRun>,
}

struct R<'a>(&'a [u8]);

impl<'a> R<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Some(a)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from(self.u32()?) << 32 | u64::from(self.u32()?))
    }
    /// A NUL-terminated string, skipped.
    fn string(&mut self) -> Option<()> {
        let n = self.0.iter().position(|b| *b == 0)?;
        self.take(n + 1).map(|_| ())
    }
    /// A box header: (type, body).
    fn boxed(&mut self) -> Option<([u8; 4], R<'a>)> {
        let size = u64::from(self.u32()?);
        let kind: [u8; 4] = self.take(4)?.try_into().ok()?;
        let body_len = match size {
            1 => self.u64()?.checked_sub(16)?,
            0 => self.0.len() as u64,
            s => s.checked_sub(8)?,
        };
        let body = self.take(usize::try_from(body_len).ok()?)?;
        Some((kind, R(body)))
    }
}

/// Parses an `abst` box; `None` if malformed or truncated.
pub(crate) fn parse(bytes: &[u8], max_entries: usize) -> Option<Bootstrap> {
    let (kind, mut r) = R(bytes).boxed()?;
    if &kind != b"abst" {
        return None;
    }
    r.take(4)?; // version, flags
    r.u32()?; // BootstrapinfoVersion
    let flags = r.u8()?;
    let mut b = Bootstrap {
        live: (flags >> 5) & 1 == 1,
        timescale: r.u32()?,
        current_media_time: r.u64()?,
        ..Bootstrap::default()
    };
    r.u64()?; // SmpteTimeCodeOffset
    r.string()?; // MovieIdentifier
    for _ in 0..r.u8()? {
        r.string()?; // ServerEntryTable
    }
    for _ in 0..r.u8()? {
        r.string()?; // QualityEntryTable
    }
    r.string()?; // DrmData
    r.string()?; // MetaData
    let asrt_count = r.u8()?;
    for i in 0..asrt_count {
        let (kind, mut a) = r.boxed()?;
        if &kind != b"asrt" || i > 0 {
            continue;
        }
        a.take(4)?;
        for _ in 0..a.u8()? {
            a.string()?;
        }
        let n = a.u32()? as usize;
        if n > max_entries || n.saturating_mul(8) > a.0.len() {
            return None;
        }
        for _ in 0..n {
            b.segment_runs.push((a.u32()?, a.u32()?));
        }
    }
    let afrt_count = r.u8()?;
    for i in 0..afrt_count {
        let (kind, mut f) = r.boxed()?;
        if &kind != b"afrt" || i > 0 {
            continue;
        }
        f.take(4)?;
        b.timescale_afrt = f.u32()?;
        for _ in 0..f.u8()? {
            f.string()?;
        }
        let n = f.u32()? as usize;
        if n > max_entries || n.saturating_mul(16) > f.0.len() {
            return None;
        }
        for _ in 0..n {
            let run = FragmentRun {
                first: f.u32()?,
                timestamp: f.u64()?,
                duration: f.u32()?,
            };
            // §F.3.3: "DiscontinuityIndicator ... if FragmentDuration == 0".
            if run.duration == 0 {
                f.u8()?;
            }
            b.fragment_runs.push(run);
        }
    }
    Some(b)
}

/// Standard base64 (RFC 4648 §4), whitespace ignored; `None` on other bad input.
pub(crate) fn base64(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let mut acc = 0u32;
    let mut bits = 0;
    for c in text.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            c if c.is_ascii_whitespace() => continue,
            _ => return None,
        };
        acc = acc << 6 | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_decodes() {
        assert_eq!(base64("aGVsbG8=").as_deref(), Some(&b"hello"[..]));
        assert_eq!(base64("aGVs\nbG8"), Some(b"hello".to_vec()));
        assert_eq!(base64("a*b"), None);
    }
}
