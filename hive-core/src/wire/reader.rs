//! A bounds-checked cursor over one frame's body.

use bytes::Bytes;

use super::error::WireError;
use super::varint::{VarintRead, read_varint};

/// Reads fields from `src[pos..end]`. Every read checks the bytes left first and fails with a
/// typed error instead of panicking; [`bytes`](Reader::bytes) slices `src` without copying.
pub(crate) struct Reader<'a> {
    src: &'a Bytes,
    pos: usize,
    end: usize,
}

impl<'a> Reader<'a> {
    /// A reader over `src[start..end]` (clamped to `src`).
    pub(crate) fn new(src: &'a Bytes, start: usize, end: usize) -> Self {
        let end = end.min(src.len());
        Reader {
            src,
            pos: start.min(end),
            end,
        }
    }

    /// Bytes left.
    pub(crate) fn remaining(&self) -> usize {
        self.end - self.pos
    }

    fn rest(&self) -> &'a [u8] {
        self.src.get(self.pos..self.end).unwrap_or(&[])
    }

    fn need(&self, n: usize, context: &'static str) -> Result<(), WireError> {
        if n > self.remaining() {
            Err(WireError::Truncated {
                needed: n,
                have: self.remaining(),
                context,
            })
        } else {
            Ok(())
        }
    }

    /// `n` bytes, borrowed.
    pub(crate) fn take(&mut self, n: usize, context: &'static str) -> Result<&'a [u8], WireError> {
        self.need(n, context)?;
        let out = self.src.get(self.pos..self.pos + n).unwrap_or(&[]);
        self.pos += n;
        Ok(out)
    }

    /// `n` bytes as a zero-copy slice of the input.
    pub(crate) fn bytes(&mut self, n: usize, context: &'static str) -> Result<Bytes, WireError> {
        self.need(n, context)?;
        let out = self.src.slice(self.pos..self.pos + n);
        self.pos += n;
        Ok(out)
    }

    /// A fixed-size array.
    pub(crate) fn array<const N: usize>(
        &mut self,
        context: &'static str,
    ) -> Result<[u8; N], WireError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, context)?);
        Ok(out)
    }

    /// One byte.
    pub(crate) fn u8(&mut self, context: &'static str) -> Result<u8, WireError> {
        let [b] = self.array::<1>(context)?;
        Ok(b)
    }

    /// A big-endian `u64`.
    pub(crate) fn u64_be(&mut self, context: &'static str) -> Result<u64, WireError> {
        Ok(u64::from_be_bytes(self.array::<8>(context)?))
    }

    /// A varint.
    pub(crate) fn varint(&mut self, field: &'static str) -> Result<u64, WireError> {
        let rest = self.rest();
        match read_varint(rest) {
            VarintRead::Value(v, n) => {
                self.pos += n;
                Ok(v)
            }
            VarintRead::Incomplete => Err(WireError::Truncated {
                needed: rest.len() + 1,
                have: rest.len(),
                context: field,
            }),
            VarintRead::Overflow => Err(WireError::Malformed {
                field,
                reason: "varint exceeds 64 bits",
            }),
            VarintRead::Overlong => Err(WireError::Malformed {
                field,
                reason: "overlong varint",
            }),
        }
    }

    /// A varint that must fit in a `u32`.
    pub(crate) fn varint_u32(&mut self, field: &'static str) -> Result<u32, WireError> {
        u32::try_from(self.varint(field)?).map_err(|_| WireError::Malformed {
            field,
            reason: "value exceeds 32 bits",
        })
    }

    /// A varint that must fit in a `u16`.
    pub(crate) fn varint_u16(&mut self, field: &'static str) -> Result<u16, WireError> {
        u16::try_from(self.varint(field)?).map_err(|_| WireError::Malformed {
            field,
            reason: "value exceeds 16 bits",
        })
    }

    /// A varint length or count, checked against `limit` before the caller allocates for it.
    pub(crate) fn bounded(&mut self, what: &'static str, limit: u32) -> Result<usize, WireError> {
        let len = self.varint(what)?;
        if len > u64::from(limit) {
            return Err(WireError::LimitExceeded {
                what,
                len,
                limit: u64::from(limit),
            });
        }
        // `limit` is a u32, so this cannot truncate on 32- or 64-bit targets.
        Ok(len as usize)
    }

    /// A list count bounded by `limit` and by the bytes left (each item takes at least
    /// `min_item_len` bytes), so a count can never justify more capacity than the input backs.
    pub(crate) fn count(
        &mut self,
        what: &'static str,
        limit: u32,
        min_item_len: usize,
    ) -> Result<usize, WireError> {
        let n = self.bounded(what, limit)?;
        let needed = n.saturating_mul(min_item_len);
        self.need(needed, what)?;
        Ok(n)
    }

    /// Fails if bytes are left.
    pub(crate) fn finish(&self, context: &'static str) -> Result<(), WireError> {
        match self.remaining() {
            0 => Ok(()),
            extra => Err(WireError::TrailingBytes { context, extra }),
        }
    }
}
