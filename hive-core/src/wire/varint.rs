//! LEB128 variable-length unsigned integers (7 bits per byte, least significant group first,
//! high bit set on every byte but the last), and zig-zag mapping of signed deltas.
//!
//! Decoding is strict: at most 10 bytes, no bits beyond 64, and no overlong forms (a final
//! `0x00` byte after the first), so every value has exactly one encoding.

use bytes::{BufMut, BytesMut};

/// The largest encoding of a `u64`.
pub(crate) const MAX_VARINT_LEN: usize = 10;

/// Appends `v`.
#[inline]
pub(crate) fn put_varint(buf: &mut BytesMut, mut v: u64) {
    while v >= 0x80 {
        buf.put_u8((v as u8) | 0x80);
        v >>= 7;
    }
    buf.put_u8(v as u8);
}

/// The encoded length of `v`, 1 to 10 bytes.
#[inline]
pub(crate) const fn varint_len(v: u64) -> usize {
    let bits = 64 - (v | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

/// The outcome of reading a varint from a slice.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum VarintRead {
    /// The value and the bytes it took.
    Value(u64, usize),
    /// The slice ends inside the varint.
    Incomplete,
    /// Bits beyond 64.
    Overflow,
    /// A longer form than needed.
    Overlong,
}

/// Reads a varint at the start of `bytes`.
#[inline]
pub(crate) fn read_varint(bytes: &[u8]) -> VarintRead {
    if let Some(&b) = bytes.first() {
        if b < 0x80 {
            return VarintRead::Value(u64::from(b), 1);
        }
    }
    let mut value = 0u64;
    for (i, &b) in bytes.iter().take(MAX_VARINT_LEN).enumerate() {
        if i == MAX_VARINT_LEN - 1 && b > 1 {
            return VarintRead::Overflow;
        }
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            if b == 0 && i > 0 {
                return VarintRead::Overlong;
            }
            return VarintRead::Value(value, i + 1);
        }
    }
    VarintRead::Incomplete
}

/// Maps a signed delta to an unsigned value with small magnitudes first (0, -1, 1, -2, ...).
#[inline]
pub(crate) const fn zigzag(d: i64) -> u64 {
    ((d << 1) ^ (d >> 63)) as u64
}

/// The inverse of [`zigzag`].
#[inline]
pub(crate) const fn unzigzag(z: u64) -> i64 {
    ((z >> 1) as i64) ^ -((z & 1) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn enc(v: u64) -> Vec<u8> {
        let mut b = BytesMut::new();
        put_varint(&mut b, v);
        b.to_vec()
    }

    #[test]
    fn known_encodings() {
        assert_eq!(enc(0), [0x00]);
        assert_eq!(enc(127), [0x7f]);
        assert_eq!(enc(128), [0x80, 0x01]);
        assert_eq!(enc(300), [0xac, 0x02]);
        assert_eq!(enc(u64::MAX).len(), 10);
        assert_eq!(*enc(u64::MAX).last().unwrap(), 0x01);
    }

    #[test]
    fn strict_decoding() {
        assert_eq!(read_varint(&[]), VarintRead::Incomplete);
        assert_eq!(read_varint(&[0x80]), VarintRead::Incomplete);
        assert_eq!(read_varint(&[0x80, 0x00]), VarintRead::Overlong);
        assert_eq!(read_varint(&[0xff; 9]), VarintRead::Incomplete);
        let mut too_big = vec![0xff; 9];
        too_big.push(0x02);
        assert_eq!(read_varint(&too_big), VarintRead::Overflow);
        assert_eq!(read_varint(&[0xff; 12]), VarintRead::Overflow);
        assert_eq!(read_varint(&[0x05, 0xff]), VarintRead::Value(5, 1));
    }

    proptest! {
        #[test]
        fn round_trip(v: u64) {
            let e = enc(v);
            prop_assert_eq!(e.len(), varint_len(v));
            prop_assert_eq!(read_varint(&e), VarintRead::Value(v, e.len()));
        }

        #[test]
        fn zigzag_is_a_bijection(d: i64) {
            prop_assert_eq!(unzigzag(zigzag(d)), d);
        }
    }

    #[test]
    fn zigzag_orders_by_magnitude() {
        assert_eq!(zigzag(0), 0);
        assert_eq!(zigzag(-1), 1);
        assert_eq!(zigzag(1), 2);
        assert_eq!(zigzag(i64::MIN), u64::MAX);
    }
}
