//! `TraceError`: everything that can be wrong with a trace file, each with where it is.

use std::fmt;
use std::io;

/// Why a trace file could not be read. Every variant says where (a byte offset from the start
/// of the file) and, past the header, which event (counted from 0).
#[derive(Debug)]
#[non_exhaustive]
pub enum TraceError {
    /// Reading the input failed.
    Io(io::Error),
    /// The file does not start with `LMEMTRC`: it is not a trace.
    BadMagic {
        /// The first bytes found (up to 7).
        found: Vec<u8>,
    },
    /// A format version this reader does not know.
    UnsupportedVersion {
        /// The version in the file.
        version: u64,
    },
    /// The header's Lua version or label is out of range or not UTF-8.
    BadHeader {
        /// Offset of the field.
        offset: u64,
        /// What is wrong.
        reason: &'static str,
    },
    /// The file ends before the end marker: the recording was cut short or the file was.
    Truncated {
        /// Where the file ends.
        offset: u64,
        /// Complete events read before it.
        events: u64,
        /// What was expected there.
        expected: &'static str,
    },
    /// A varint runs past 64 bits.
    VarintOverflow {
        /// Offset of the varint's first byte.
        offset: u64,
        /// The field it was read for.
        field: &'static str,
    },
    /// A head byte that is no operation: reserved bits set, a failed free, a tag on something
    /// other than an allocation, or flags on the end marker.
    BadOp {
        /// Offset of the byte.
        offset: u64,
        /// Index of the event.
        event: u64,
        /// The byte.
        byte: u8,
    },
    /// An allocation or resize to 0 bytes, which the contract never asks a backend for.
    ZeroSize {
        /// Offset of the event's head byte.
        offset: u64,
        /// Index of the event.
        event: u64,
    },
    /// A resize or free names an id no allocation has been given.
    IdOutOfRange {
        /// Offset of the event's head byte.
        offset: u64,
        /// Index of the event.
        event: u64,
        /// The id.
        id: u64,
        /// Ids assigned so far (valid ids are below it).
        assigned: u64,
    },
    /// A resize or free of a block that is not live (freed already): a double free or a
    /// corrupt id.
    NotLive {
        /// Offset of the event's head byte.
        offset: u64,
        /// Index of the event.
        event: u64,
        /// The id.
        id: u64,
        /// `resize` or `free`.
        op: &'static str,
    },
    /// A resize or free whose `osize` is not the block's size.
    SizeMismatch {
        /// Offset of the event's head byte.
        offset: u64,
        /// Index of the event.
        event: u64,
        /// The block's id.
        id: u64,
        /// The size the block has.
        recorded: u64,
        /// The `osize` in the event.
        given: u64,
        /// `resize` or `free`.
        op: &'static str,
    },
    /// More live blocks at once than this reader can index (`u32::MAX`).
    TooManyBlocks {
        /// Offset of the event's head byte.
        offset: u64,
        /// Index of the event.
        event: u64,
    },
    /// The end marker's count differs from the events read: events were lost or invented.
    CountMismatch {
        /// Offset of the end marker.
        offset: u64,
        /// The count in the marker.
        recorded: u64,
        /// The events actually read.
        read: u64,
    },
    /// Bytes after the end marker.
    TrailingGarbage {
        /// Offset of the first extra byte.
        offset: u64,
        /// How many extra bytes.
        bytes: u64,
    },
}

impl fmt::Display for TraceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use TraceError::*;
        match self {
            Io(e) => write!(f, "cannot read trace: {e}"),
            BadMagic { found } => write!(
                f,
                "not an lmem trace: expected magic \"LMEMTRC\" at byte 0, found {:?}",
                String::from_utf8_lossy(found)
            ),
            UnsupportedVersion { version } => write!(
                f,
                "unsupported trace format version {version} at byte 7 (this reader knows \
                 version {})",
                super::VERSION
            ),
            BadHeader { offset, reason } => {
                write!(f, "bad trace header at byte {offset}: {reason}")
            }
            Truncated {
                offset,
                events,
                expected,
            } => write!(
                f,
                "truncated trace: file ends at byte {offset} after {events} complete events, \
                 expected {expected}"
            ),
            VarintOverflow { offset, field } => write!(
                f,
                "corrupt trace: varint for {field} at byte {offset} does not fit 64 bits"
            ),
            BadOp {
                offset,
                event,
                byte,
            } => write!(
                f,
                "corrupt trace: bad operation byte {byte:#04x} at byte {offset} (event {event})"
            ),
            ZeroSize { offset, event } => write!(
                f,
                "corrupt trace: request for 0 bytes at byte {offset} (event {event})"
            ),
            IdOutOfRange {
                offset,
                event,
                id,
                assigned,
            } => write!(
                f,
                "corrupt trace: unknown block id {id} at byte {offset} (event {event}); only \
                 {assigned} ids assigned so far"
            ),
            NotLive {
                offset,
                event,
                id,
                op,
            } => write!(
                f,
                "corrupt trace: {op} of block {id}, which is not live, at byte {offset} \
                 (event {event})"
            ),
            SizeMismatch {
                offset,
                event,
                id,
                recorded,
                given,
                op,
            } => write!(
                f,
                "corrupt trace: {op} of block {id} with osize {given}, but its size is \
                 {recorded}, at byte {offset} (event {event})"
            ),
            TooManyBlocks { offset, event } => write!(
                f,
                "trace needs more than {} live blocks at byte {offset} (event {event})",
                u32::MAX
            ),
            CountMismatch {
                offset,
                recorded,
                read,
            } => write!(
                f,
                "corrupt trace: end marker at byte {offset} counts {recorded} events, but \
                 {read} were read"
            ),
            TrailingGarbage { offset, bytes } => write!(
                f,
                "corrupt trace: {bytes} bytes after the end marker, from byte {offset}"
            ),
        }
    }
}

impl std::error::Error for TraceError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TraceError::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for TraceError {
    fn from(e: io::Error) -> Self {
        TraceError::Io(e)
    }
}
