//! `Trace`: a trace file parsed and validated into a compact list of events.

use super::codec::{
    Cursor, EventBuf, FAILED, OP_ALLOC, OP_END, OP_FREE, OP_RESIZE, RESERVED, VarintError,
    alloc_head, resize_head,
};
use super::{Header, MAGIC, MAX_LABEL, TraceError, VERSION};
use lmem_backend::Tag;
use std::io::{self, Read, Write};

/// What an [`Event`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    /// A new block for an object of this type.
    Alloc(Tag),
    /// A block resized.
    Resize,
    /// A block freed.
    Free,
}

/// One recorded call, as held in memory (16 bytes).
///
/// Old sizes are not kept: the reader checked each one against the block's size, which is the
/// `size` of the previous successful event on the same id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Event {
    /// For an alloc and a resize the size asked for (`nsize`); for a free the block's size.
    pub size: u64,
    /// The block: an index below [`Trace::block_ids`]. [`Event::NO_ID`] for a failed alloc.
    pub id: u32,
    /// The operation.
    pub op: Op,
    /// The call returned NULL (an alloc made no block; a resize left its block as it was).
    pub failed: bool,
}

impl Event {
    /// The id of a failed allocation, which made no block.
    pub const NO_ID: u32 = u32::MAX;
}

/// A validated trace: its header and events.
///
/// A `Trace` can only be made by reading one, and the reader checks every id, size and count,
/// so anything that walks the events may rely on: ids are below [`Trace::block_ids`]; a resize
/// or free names a live block; an alloc's id is free; sizes are not 0.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Trace {
    header: Header,
    events: Vec<Event>,
    block_ids: u32,
}

/// A field name and what a truncation there means, for the error.
fn varint_field(c: &mut Cursor<'_>, field: &'static str, events: u64) -> Result<u64, TraceError> {
    let offset = c.offset();
    c.varint().map_err(|e| match e {
        VarintError::Eof => TraceError::Truncated {
            offset: c.offset(),
            events,
            expected: field,
        },
        VarintError::Overflow => TraceError::VarintOverflow { offset, field },
    })
}

/// The reader's picture of the blocks: each id's size (0 when not live) and the stack of freed
/// ids, exactly as the format defines id assignment.
#[derive(Default)]
struct Blocks {
    sizes: Vec<u64>,
    free_ids: Vec<u32>,
}

impl Blocks {
    /// The id the next successful allocation gets, per the format's rule (top of the freed
    /// stack, else the next new id); `None` when the ids would run out of `u32`.
    fn assign(&mut self, size: u64) -> Option<u32> {
        if let Some(id) = self.free_ids.pop() {
            self.sizes[id as usize] = size;
            return Some(id);
        }
        let id = u32::try_from(self.sizes.len())
            .ok()
            .filter(|&id| id != Event::NO_ID)?;
        self.sizes.push(size);
        Some(id)
    }

    /// Checks that `id` names a live block of size `osize` and returns it as an index.
    fn check(
        &self,
        id: u64,
        osize: u64,
        op: &'static str,
        offset: u64,
        event: u64,
    ) -> Result<u32, TraceError> {
        let size = usize::try_from(id)
            .ok()
            .and_then(|i| self.sizes.get(i))
            .ok_or(TraceError::IdOutOfRange {
                offset,
                event,
                id,
                assigned: self.sizes.len() as u64,
            })?;
        if *size == 0 {
            return Err(TraceError::NotLive {
                offset,
                event,
                id,
                op,
            });
        }
        if *size != osize {
            return Err(TraceError::SizeMismatch {
                offset,
                event,
                id,
                recorded: *size,
                given: osize,
                op,
            });
        }
        // `id` indexes `sizes`, whose length fits `u32` (see `assign`).
        Ok(id as u32)
    }
}

impl Trace {
    /// Reads a whole trace from `r` and validates it.
    ///
    /// The input is read to its end first (a trace is a few bytes per call) and then parsed
    /// from memory, so that the parser is one bounds-checked pass that cannot block or panic.
    pub fn read(mut r: impl Read) -> Result<Trace, TraceError> {
        let mut bytes = Vec::new();
        r.read_to_end(&mut bytes)?;
        Self::from_bytes(&bytes)
    }

    /// Parses and validates a trace held in memory. Never panics, whatever `bytes` holds.
    ///
    /// Validation is done here, once, so that a replay can index its block table by id without
    /// checks and cannot misbehave on a corrupt file.
    pub fn from_bytes(bytes: &[u8]) -> Result<Trace, TraceError> {
        let mut c = Cursor::new(bytes);
        let header = read_header(&mut c)?;
        let mut events: Vec<Event> = Vec::new();
        let mut blocks = Blocks::default();
        loop {
            let n = events.len() as u64;
            let offset = c.offset();
            let Some(head) = c.byte() else {
                return Err(TraceError::Truncated {
                    offset,
                    events: n,
                    expected: "an event or the end marker",
                });
            };
            let bad_op = TraceError::BadOp {
                offset,
                event: n,
                byte: head,
            };
            if head & RESERVED != 0 {
                return Err(bad_op);
            }
            let failed = head & FAILED != 0;
            let tag_bits = (head >> 3) & 7;
            let event = match head & 3 {
                OP_ALLOC => {
                    let size = varint_field(&mut c, "the size of an alloc", n)?;
                    if size == 0 {
                        return Err(TraceError::ZeroSize { offset, event: n });
                    }
                    let id = if failed {
                        Event::NO_ID
                    } else {
                        blocks
                            .assign(size)
                            .ok_or(TraceError::TooManyBlocks { offset, event: n })?
                    };
                    Event {
                        size,
                        id,
                        op: Op::Alloc(Tag::ALL[tag_bits as usize]),
                        failed,
                    }
                }
                OP_RESIZE if tag_bits == 0 => {
                    let id = varint_field(&mut c, "the block id of a resize", n)?;
                    let osize = varint_field(&mut c, "the old size of a resize", n)?;
                    let size = varint_field(&mut c, "the new size of a resize", n)?;
                    let id = blocks.check(id, osize, "resize", offset, n)?;
                    if size == 0 {
                        return Err(TraceError::ZeroSize { offset, event: n });
                    }
                    if !failed {
                        blocks.sizes[id as usize] = size;
                    }
                    Event {
                        size,
                        id,
                        op: Op::Resize,
                        failed,
                    }
                }
                OP_FREE if head == OP_FREE => {
                    let id = varint_field(&mut c, "the block id of a free", n)?;
                    let osize = varint_field(&mut c, "the size of a free", n)?;
                    let id = blocks.check(id, osize, "free", offset, n)?;
                    blocks.sizes[id as usize] = 0;
                    blocks.free_ids.push(id);
                    Event {
                        size: osize,
                        id,
                        op: Op::Free,
                        failed: false,
                    }
                }
                OP_END if head == OP_END => {
                    let recorded = varint_field(&mut c, "the event count of the end marker", n)?;
                    if recorded != n {
                        return Err(TraceError::CountMismatch {
                            offset,
                            recorded,
                            read: n,
                        });
                    }
                    if c.remaining() > 0 {
                        return Err(TraceError::TrailingGarbage {
                            offset: c.offset(),
                            bytes: c.remaining() as u64,
                        });
                    }
                    break;
                }
                _ => return Err(bad_op),
            };
            events.push(event);
        }
        events.shrink_to_fit();
        Ok(Trace {
            header,
            events,
            block_ids: blocks.sizes.len() as u32,
        })
    }

    /// The header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The events, in call order.
    pub fn events(&self) -> &[Event] {
        &self.events
    }

    /// Number of events.
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// Whether the trace holds no event.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// Distinct block ids: the most blocks live at once. A replay's block table has this many
    /// slots.
    pub fn block_ids(&self) -> usize {
        self.block_ids as usize
    }

    /// Writes the trace back in the file format, byte for byte what the recorder would have
    /// written (minimal varints), so a trace can be copied, trimmed into a fixture or compared.
    pub fn write_to(&self, w: impl Write) -> io::Result<()> {
        let mut w = io::BufWriter::new(w);
        write_header(&mut w, &self.header)?;
        // Old sizes are not stored: follow each block's size as the reader did.
        let mut sizes = vec![0u64; self.block_ids()];
        for e in &self.events {
            let buf = match e.op {
                Op::Alloc(tag) => {
                    if !e.failed {
                        sizes[e.id as usize] = e.size;
                    }
                    EventBuf::new(alloc_head(tag, e.failed)).varint(e.size)
                }
                Op::Resize => {
                    let old = sizes[e.id as usize];
                    if !e.failed {
                        sizes[e.id as usize] = e.size;
                    }
                    EventBuf::new(resize_head(e.failed))
                        .varint(e.id.into())
                        .varint(old)
                        .varint(e.size)
                }
                Op::Free => EventBuf::new(OP_FREE).varint(e.id.into()).varint(e.size),
            };
            w.write_all(buf.as_slice())?;
        }
        w.write_all(
            EventBuf::new(OP_END)
                .varint(self.events.len() as u64)
                .as_slice(),
        )?;
        w.flush()
    }
}

/// Writes the header (magic, version, Lua version, label), shared by the recorder and
/// [`Trace::write_to`] so that both write the same bytes.
pub(super) fn write_header(w: &mut impl Write, h: &Header) -> io::Result<()> {
    w.write_all(&MAGIC)?;
    let label = h.label.as_bytes();
    let label = &label[..label.len().min(MAX_LABEL)];
    let fields = EventBuf::new(0)
        .varint(VERSION)
        .varint(h.lua_version.into())
        .varint(label.len() as u64);
    // `EventBuf` always starts with a head byte; a header has none.
    w.write_all(&fields.as_slice()[1..])?;
    w.write_all(label)
}

/// Reads and checks the header. A file shorter than the magic that matches it so far is
/// truncated rather than foreign, so that cutting a trace anywhere says "truncated".
fn read_header(c: &mut Cursor<'_>) -> Result<Header, TraceError> {
    let truncated = |c: &Cursor<'_>, expected| TraceError::Truncated {
        offset: c.offset(),
        events: 0,
        expected,
    };
    let n = c.remaining().min(MAGIC.len());
    let Some(start) = c.take(n) else {
        return Err(truncated(c, "the magic"));
    };
    if start != &MAGIC[..n] {
        return Err(TraceError::BadMagic {
            found: start.to_vec(),
        });
    }
    if n < MAGIC.len() {
        return Err(truncated(c, "the magic"));
    }
    let version = varint_field(c, "the format version", 0)?;
    if version != VERSION {
        return Err(TraceError::UnsupportedVersion { version });
    }
    let at = c.offset();
    let lua_version = u32::try_from(varint_field(c, "the Lua version", 0)?).map_err(|_| {
        TraceError::BadHeader {
            offset: at,
            reason: "Lua version above u32::MAX",
        }
    })?;
    let at = c.offset();
    let len = varint_field(c, "the label length", 0)?;
    let len = usize::try_from(len)
        .ok()
        .filter(|&l| l <= MAX_LABEL)
        .ok_or(TraceError::BadHeader {
            offset: at,
            reason: "label longer than 4096 bytes",
        })?;
    let at = c.offset();
    let label = c.take(len).ok_or(TraceError::Truncated {
        offset: c.offset() + c.remaining() as u64,
        events: 0,
        expected: "the label",
    })?;
    let label = std::str::from_utf8(label).map_err(|_| TraceError::BadHeader {
        offset: at,
        reason: "label is not UTF-8",
    })?;
    Ok(Header {
        lua_version,
        label: label.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_stay_compact() {
        assert_eq!(size_of::<Event>(), 16);
    }

    #[test]
    fn header_labels_are_cut_at_a_character_boundary() {
        // One ASCII byte first, so that byte 4096 falls inside a two-byte 'é'.
        let long = format!("a{}", "é".repeat(MAX_LABEL));
        let h = Header::new(501, &long);
        assert_eq!(h.label.len(), MAX_LABEL - 1);
        let mut bytes = Vec::new();
        write_header(&mut bytes, &h).unwrap();
        bytes.extend([OP_END, 0]);
        assert_eq!(Trace::from_bytes(&bytes).unwrap().header(), &h);
    }
}
