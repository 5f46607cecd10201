//! The byte-level pieces of the format shared by the writer and the reader: varints, head
//! bytes, and a cursor that knows its offset.

use lmem_backend::Tag;

/// Operation bits of a head byte.
pub(super) const OP_ALLOC: u8 = 0;
pub(super) const OP_RESIZE: u8 = 1;
pub(super) const OP_FREE: u8 = 2;
pub(super) const OP_END: u8 = 3;
/// The failed bit of a head byte.
pub(super) const FAILED: u8 = 1 << 2;
/// Bits that must be zero in every head byte.
pub(super) const RESERVED: u8 = 0xC0;

/// Longest varint of a `u64`.
pub(super) const MAX_VARINT: usize = 10;

/// Longest encoded event: a head byte and three varints.
pub(super) const MAX_EVENT: usize = 1 + 3 * MAX_VARINT;

/// The head byte of an allocation.
#[inline]
pub(super) fn alloc_head(tag: Tag, failed: bool) -> u8 {
    OP_ALLOC | (tag.index() as u8) << 3 | if failed { FAILED } else { 0 }
}

/// The head byte of a resize.
#[inline]
pub(super) fn resize_head(failed: bool) -> u8 {
    OP_RESIZE | if failed { FAILED } else { 0 }
}

/// A small stack buffer that one event is encoded into, so that the writer makes one
/// `write_all` per event.
pub(super) struct EventBuf {
    bytes: [u8; MAX_EVENT],
    len: usize,
}

impl EventBuf {
    /// An event that starts with `head`: the head is always the first byte.
    #[inline]
    pub(super) fn new(head: u8) -> Self {
        let mut b = EventBuf {
            bytes: [0; MAX_EVENT],
            len: 1,
        };
        b.bytes[0] = head;
        b
    }

    /// Appends `v` as a minimal LEB128 varint. At most three varints follow a head, so the
    /// buffer cannot overflow (debug builds check).
    #[inline]
    pub(super) fn varint(mut self, mut v: u64) -> Self {
        debug_assert!(self.len + MAX_VARINT <= MAX_EVENT);
        loop {
            let low = (v & 0x7F) as u8;
            v >>= 7;
            if v == 0 {
                self.bytes[self.len] = low;
                self.len += 1;
                return self;
            }
            self.bytes[self.len] = low | 0x80;
            self.len += 1;
        }
    }

    /// The encoded bytes.
    #[inline]
    pub(super) fn as_slice(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

/// Why a varint could not be read.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum VarintError {
    /// The input ended inside it.
    Eof,
    /// It does not fit a `u64`.
    Overflow,
}

/// A position in a byte slice. Every read is bounds-checked, so no input can make the reader
/// index out of range.
pub(super) struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    pub(super) fn new(bytes: &'a [u8]) -> Self {
        Cursor { bytes, pos: 0 }
    }

    /// The offset of the next byte.
    #[inline]
    pub(super) fn offset(&self) -> u64 {
        self.pos as u64
    }

    /// Bytes not yet read.
    #[inline]
    pub(super) fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    /// The next byte, if any.
    #[inline]
    pub(super) fn byte(&mut self) -> Option<u8> {
        let b = *self.bytes.get(self.pos)?;
        self.pos += 1;
        Some(b)
    }

    /// The next `n` bytes, if there are that many; otherwise nothing is consumed.
    pub(super) fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len())?;
        let s = &self.bytes[self.pos..end];
        self.pos = end;
        Some(s)
    }

    /// The next LEB128 varint. Accepts non-minimal encodings up to 10 bytes; a tenth byte
    /// above 1 (bits beyond 64) or an eleventh byte is an overflow.
    #[inline]
    pub(super) fn varint(&mut self) -> Result<u64, VarintError> {
        let mut v = 0u64;
        for i in 0..MAX_VARINT {
            let b = self.byte().ok_or(VarintError::Eof)?;
            let low = u64::from(b & 0x7F);
            if i == MAX_VARINT - 1 && low > 1 {
                return Err(VarintError::Overflow);
            }
            v |= low << (7 * i);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(VarintError::Overflow)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(v: u64) -> Vec<u8> {
        EventBuf::new(0).varint(v).as_slice()[1..].to_vec()
    }

    #[test]
    fn varints_round_trip_at_every_width() {
        let mut values = vec![0, 1, 127, 128, 300, 16383, 16384, u64::MAX, u64::MAX - 1];
        values.extend((0..64).map(|s| 1u64 << s));
        values.extend((1..64).map(|s| (1u64 << s) - 1));
        for v in values {
            let bytes = encode(v);
            let expected_len = (64 - v.leading_zeros()).div_ceil(7).max(1) as usize;
            assert_eq!(bytes.len(), expected_len, "minimal length of {v}");
            let mut c = Cursor::new(&bytes);
            assert_eq!(c.varint(), Ok(v));
            assert_eq!(c.remaining(), 0);
        }
        assert_eq!(encode(300), [0xAC, 0x02]);
    }

    #[test]
    fn varint_errors() {
        assert_eq!(Cursor::new(&[]).varint(), Err(VarintError::Eof));
        assert_eq!(Cursor::new(&[0x80, 0x80]).varint(), Err(VarintError::Eof));
        // Ten bytes with a tenth group of 2: bit 64.
        let mut over = vec![0xFF; 9];
        over.push(0x02);
        assert_eq!(Cursor::new(&over).varint(), Err(VarintError::Overflow));
        // Eleven bytes.
        let mut long = vec![0x80; 10];
        long.push(0x00);
        assert_eq!(Cursor::new(&long).varint(), Err(VarintError::Overflow));
        // A non-minimal zero is accepted.
        assert_eq!(Cursor::new(&[0x80, 0x80, 0x00]).varint(), Ok(0));
    }

    #[test]
    fn head_bytes_match_the_documented_table() {
        assert_eq!(alloc_head(Tag::String, false), 0x00);
        assert_eq!(alloc_head(Tag::Table, false), 0x08);
        assert_eq!(alloc_head(Tag::Other, true), 0x3C);
        assert_eq!(resize_head(false), 0x01);
        assert_eq!(resize_head(true), 0x05);
        assert_eq!(OP_FREE, 0x02);
        assert_eq!(OP_END, 0x03);
    }
}
