//! Allocation traces: record every call a heap makes to its backend, read the recording back
//! with every byte checked, and replay it on any backend to compare them on the same work.
//!
//! - [`Recorder`] is a wrapper backend that forwards each call and writes it as an event;
//! - [`Trace::read`] parses and validates a trace file into a compact list of [`Event`]s;
//! - [`replay`] performs a [`Trace`] through a [`Heap`](crate::Heap) and times it, and
//!   [`replay_function`] through a `lua_Alloc` function pair, exactly as Lua calls it;
//! - [`Trace::summary`] says what the trace holds (calls per operation and per Lua type, sizes,
//!   the peak live bytes the recording saw).
//!
//! A trace records what reached the backend: requests a heap refuses by itself (its memory
//! limit) never get there and are not in the trace, and an emergency collection's retry is a
//! second event.
//!
//! # File format, version 1
//!
//! Every integer is an unsigned LEB128 *varint*: seven bits per byte, least significant group
//! first, bit 7 set on every byte but the last. A varint holds a `u64` and takes at most 10
//! bytes; the tenth byte may only be `0x00` or `0x01`. Writers emit the shortest encoding;
//! readers also accept longer ones (trailing `0x80` groups) within the 10 bytes.
//!
//! ## Header
//!
//! | offset | bytes | field |
//! |---|---|---|
//! | 0 | 7 | magic: ASCII `LMEMTRC` (`4C 4D 45 4D 54 52 43`) |
//! | 7 | varint | format version: `1` (the single byte `01`) |
//! | … | varint | Lua version: `LUA_VERSION_NUM` of the VM recorded (`501`, `504`, `505`), `0` when unknown or not a Lua VM; at most `u32::MAX` |
//! | … | varint | label length `L`, at most [`MAX_LABEL`] |
//! | … | `L` | label: UTF-8, free-form (script, arguments, backend, date) |
//!
//! ## Events
//!
//! Events follow the header back to back, in call order. Each starts with a *head byte*:
//!
//! | bits | meaning |
//! |---|---|
//! | 0–1 | operation: `0` alloc, `1` resize, `2` free, `3` end marker |
//! | 2 | failed: the call returned NULL (alloc and resize only; `0` for free and end) |
//! | 3–5 | tag (alloc only, `0` otherwise): [`Tag::index`](lmem_backend::Tag::index) — `0` string, `1` table, `2` function, `3` userdata, `4` thread, `5` upvalue, `6` proto, `7` other |
//! | 6–7 | reserved, `0` |
//!
//! So an alloc is `tag << 3 | failed << 2` (`0x00`–`0x3C`), a resize `0x01` or `0x05` (failed),
//! a free `0x02`, the end marker `0x03`. Any other head byte is an error. Then:
//!
//! | operation | fields after the head byte |
//! |---|---|
//! | alloc | varint `nsize` |
//! | resize | varint `id`, varint `osize`, varint `nsize` |
//! | free | varint `id`, varint `osize` |
//! | end | varint `count`: the number of events before the marker; the file ends right after it |
//!
//! `nsize` is never 0 (the contract never asks a backend for 0 bytes). `osize` is the block's
//! size, the `nsize` of its last successful alloc or resize: a trace repeats it so that a reader
//! can check it, and a mismatch is an error. A failed alloc creates no block; a failed resize
//! leaves its block live at its old size. A trace without its end marker, or whose marker
//! counts differently, is truncated or corrupt; bytes after the marker are an error.
//!
//! ## Block ids
//!
//! A block is named by a dense id, assigned at its successful allocation and kept across its
//! resizes (even when the block moves). An allocation does not write its id: both sides derive
//! it. The recorder and every reader keep a stack of freed ids; a successful alloc takes the id
//! on top of the stack (the one freed most recently), or when the stack is empty the next id
//! never used (`0`, `1`, `2`, …); a free pushes its block's id.
//!
//! Ids are reused (rather than numbered once per allocation) so that they stay below the peak
//! number of live blocks, whatever the trace's length: a Lua program makes millions of short-
//! lived objects but holds far fewer at once, so ids stay one to three bytes long, and a replay's
//! table of blocks (indexed by id) is as small as the live set and stays in cache, instead of
//! growing with the trace and measuring the replay's own cache misses. Reuse costs a reader a
//! stack; an id names one block only between its alloc and its free.
//!
//! # Example
//!
//! ```
//! use lmem::{Heap, Tag, backends::System, trace::{Header, Recorder, Trace, replay}};
//!
//! let recorder = Recorder::new(System::new(), Vec::new(), &Header::new(504, "example"));
//! let mut heap = Heap::new(recorder);
//! let p = heap.try_malloc(40, Tag::Table).unwrap();
//! // SAFETY: `p` is a live block of 40 bytes of this heap.
//! let q = unsafe { heap.try_realloc(p, 40, 100) }.unwrap();
//! // SAFETY: `q` is a live block of 100 bytes.
//! unsafe { heap.free(q, 100) };
//! let (_system, written) = heap.into_backend().finish_into_parts();
//! let (file, events) = written.unwrap();
//! assert_eq!(events, 3);
//!
//! let trace = Trace::read(&file[..]).unwrap();
//! assert_eq!(trace.summary().peak_live_bytes, 100);
//! let result = replay(&trace, &mut Heap::new(System::new()));
//! assert_eq!((result.ops, result.failures), (3, 0));
//! ```

mod codec;
mod error;
mod reader;
mod recorder;
mod replay;
mod summary;

pub use error::TraceError;
pub use reader::{Event, Op, Trace};
pub use recorder::Recorder;
pub use replay::{ReplayResult, replay, replay_function};
pub use summary::Summary;

/// The seven bytes a trace file starts with.
pub const MAGIC: [u8; 7] = *b"LMEMTRC";

/// The format version this module writes and reads.
pub const VERSION: u64 = 1;

/// Longest label a header may carry, in bytes.
pub const MAX_LABEL: usize = 4096;

/// What a trace says about itself: which Lua made it, and a free-form label.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Header {
    /// `LUA_VERSION_NUM` of the VM recorded (`501`, `504`, `505`); 0 when unknown.
    pub lua_version: u32,
    /// Free-form: script, arguments, backend, date. At most [`MAX_LABEL`] bytes.
    pub label: String,
}

impl Header {
    /// A header, the label cut to [`MAX_LABEL`] bytes (at a character boundary) so that the
    /// file stays readable whatever the caller passes.
    pub fn new(lua_version: u32, label: &str) -> Self {
        let mut end = label.len().min(MAX_LABEL);
        while !label.is_char_boundary(end) {
            end -= 1;
        }
        Header {
            lua_version,
            label: label[..end].to_string(),
        }
    }
}
