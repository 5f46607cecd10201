//! `Recorder`: a wrapper backend that writes every call it forwards as a trace event.

use super::Header;
use super::codec::{EventBuf, OP_END, OP_FREE, alloc_head, resize_head};
use super::reader::write_header;
use lmem_backend::{Backend, BackendStats, ExactOwnership, Ownership, ResetUnsupported, Tag};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::io::{self, BufWriter, Write};
use std::ptr::NonNull;

/// A hasher for block addresses: one multiply and a fold. Addresses are already unique, so
/// SipHash's protection against chosen keys buys nothing on the recording path.
#[derive(Default)]
struct AddrHasher(u64);

impl Hasher for AddrHasher {
    fn write(&mut self, bytes: &[u8]) {
        // Only `usize` keys are hashed; this is the general fallback.
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    #[inline]
    fn write_usize(&mut self, n: usize) {
        self.0 = (n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }

    #[inline]
    fn finish(&self) -> u64 {
        // Fold the well-mixed high half into the low bits the table indexes by (addresses are
        // 16-aligned, so the product's low bits alone would all be zero).
        self.0 ^ (self.0 >> 29)
    }
}

/// What the recorder knows of a live block.
#[derive(Clone, Copy)]
struct Block {
    id: u64,
    size: usize,
}

/// Records every call to `B` into `W` in the trace format (see the [module docs](super)).
///
/// Each call is forwarded first and then written, with the pointer mapped to its block id and
/// the result (NULL or not) as the failed flag. Output is buffered. Writing never panics and
/// never fails a call: the first I/O error is kept, writing stops, and [`Recorder::finish`]
/// reports it. A call that breaks the contract in a way the trace cannot express (a free or
/// resize of a block the recorder never saw, or with the wrong `osize`) is forwarded all the
/// same and reported the same way, as [`io::ErrorKind::InvalidData`].
///
/// The end marker is written by `finish`; a recorder dropped without it leaves a file that
/// readers reject as truncated, which is the truth.
pub struct Recorder<B, W: Write> {
    inner: B,
    out: BufWriter<W>,
    blocks: HashMap<usize, Block, BuildHasherDefault<AddrHasher>>,
    free_ids: Vec<u64>,
    next_id: u64,
    events: u64,
    error: Option<io::Error>,
    /// The end marker is written ([`Recorder::finish_in_place`]): calls pass straight through.
    finished: bool,
    name: String,
}

impl<B: Backend, W: Write> Recorder<B, W> {
    /// Wraps `inner`, writing the trace to `out` and starting with `header`. The header goes to
    /// the buffer at once; an error writing it is reported by `finish`, like any other.
    pub fn new(inner: B, out: W, header: &Header) -> Self {
        let name = format!("recorder({})", inner.name());
        let mut out = BufWriter::with_capacity(64 * 1024, out);
        let error = write_header(&mut out, header).err();
        Recorder {
            inner,
            out,
            blocks: HashMap::default(),
            free_ids: Vec::new(),
            next_id: 0,
            events: 0,
            error,
            finished: false,
            name,
        }
    }

    /// The wrapped backend.
    pub fn inner(&self) -> &B {
        &self.inner
    }

    /// The wrapped backend, mutably (to configure it; its live blocks stay recorded).
    pub fn inner_mut(&mut self) -> &mut B {
        &mut self.inner
    }

    /// Whether calls are still written.
    #[inline]
    fn recording(&self) -> bool {
        self.error.is_none() && !self.finished
    }

    /// Writes the end marker and flushes, keeping the recorder in place: later calls pass
    /// straight through to the backend, unrecorded (a state that is closed, but whose memory is
    /// still owned by the chain). Returns the events written, or the first error met. Calling it
    /// again changes nothing.
    pub fn finish_in_place(&mut self) -> io::Result<u64> {
        if !self.finished && self.error.is_none() {
            let end = EventBuf::new(OP_END).varint(self.events);
            self.error = self
                .out
                .write_all(end.as_slice())
                .and_then(|()| self.out.flush())
                .err();
        }
        self.finished = true;
        match &self.error {
            Some(e) => Err(io::Error::new(e.kind(), e.to_string())),
            None => Ok(self.events),
        }
    }

    /// Events written so far.
    pub fn events(&self) -> u64 {
        self.events
    }

    /// The error that stopped recording, if any.
    pub fn error(&self) -> Option<&io::Error> {
        self.error.as_ref()
    }

    /// Writes the end marker and flushes, and gives the backend back with the number of events
    /// written, or the first error met while recording.
    pub fn finish(self) -> io::Result<(B, u64)> {
        let (inner, written) = self.finish_into_parts();
        written.map(|(_, events)| (inner, events))
    }

    /// [`Recorder::finish`] that also gives the writer back (a `Vec<u8>` to read the trace
    /// from), and gives the backend back even on error, since blocks may still live in it.
    pub fn finish_into_parts(mut self) -> (B, io::Result<(W, u64)>) {
        if self.recording() {
            let end = EventBuf::new(OP_END).varint(self.events);
            self.error = self
                .out
                .write_all(end.as_slice())
                .and_then(|()| self.out.flush())
                .err();
        }
        let Recorder {
            inner,
            out,
            events,
            error,
            ..
        } = self;
        if let Some(e) = error {
            return (inner, Err(e));
        }
        match out.into_inner() {
            Ok(w) => (inner, Ok((w, events))),
            Err(e) => (inner, Err(e.into_error())),
        }
    }

    /// Appends one encoded event unless recording has stopped.
    #[inline]
    fn emit(&mut self, buf: EventBuf) {
        if !self.recording() {
            return;
        }
        match self.out.write_all(buf.as_slice()) {
            Ok(()) => self.events += 1,
            Err(e) => self.error = Some(e),
        }
    }

    /// Stops recording because the calls cannot be expressed as a valid trace.
    #[cold]
    fn broken(&mut self, what: String) {
        if self.error.is_none() {
            self.error = Some(io::Error::new(io::ErrorKind::InvalidData, what));
        }
    }

    /// The id of a new block, by the format's rule: the most recently freed id, else a new one.
    #[inline]
    fn assign(&mut self, p: NonNull<u8>, size: usize) {
        let id = self.free_ids.pop().unwrap_or_else(|| {
            self.next_id += 1;
            self.next_id - 1
        });
        self.blocks.insert(p.as_ptr() as usize, Block { id, size });
    }

    /// Looks up the block a free or resize names, checking its size; `None` (and recording
    /// stopped) when the trace cannot say it.
    #[inline]
    fn lookup(&mut self, p: NonNull<u8>, osize: usize, op: &str) -> Option<Block> {
        match self.blocks.get(&(p.as_ptr() as usize)) {
            Some(&b) if b.size == osize => Some(b),
            Some(b) => {
                let size = b.size;
                self.broken(format!(
                    "trace recorder: {op} of {p:p} with osize {osize}, but its size is {size}"
                ));
                None
            }
            None => {
                self.broken(format!(
                    "trace recorder: {op} of {p:p}, which is not a live block it recorded"
                ));
                None
            }
        }
    }
}

// SAFETY: every call is forwarded unchanged to `B`, which upholds the contract, and its answer
// is returned unchanged; the wrapper only writes events to its own buffer.
unsafe impl<B: Backend, W: Write> Backend for Recorder<B, W> {
    fn name(&self) -> &str {
        &self.name
    }

    fn allocate(&mut self, size: usize, tag: Tag) -> Option<NonNull<u8>> {
        let p = self.inner.allocate(size, tag);
        if self.recording() {
            if let Some(p) = p {
                self.assign(p, size);
            }
            self.emit(EventBuf::new(alloc_head(tag, p.is_none())).varint(size as u64));
        }
        p
    }

    unsafe fn deallocate(&mut self, ptr: NonNull<u8>, size: usize) {
        // SAFETY: forwarded caller contract.
        unsafe { self.inner.deallocate(ptr, size) };
        if self.recording()
            && let Some(b) = self.lookup(ptr, size, "free")
        {
            self.blocks.remove(&(ptr.as_ptr() as usize));
            self.free_ids.push(b.id);
            self.emit(EventBuf::new(OP_FREE).varint(b.id).varint(size as u64));
        }
    }

    unsafe fn resize(&mut self, ptr: NonNull<u8>, old: usize, new: usize) -> Option<NonNull<u8>> {
        // SAFETY: forwarded caller contract.
        let q = unsafe { self.inner.resize(ptr, old, new) };
        if self.recording()
            && let Some(b) = self.lookup(ptr, old, "resize")
        {
            if let Some(q) = q {
                self.blocks.remove(&(ptr.as_ptr() as usize));
                self.blocks.insert(
                    q.as_ptr() as usize,
                    Block {
                        id: b.id,
                        size: new,
                    },
                );
            }
            self.emit(
                EventBuf::new(resize_head(q.is_none()))
                    .varint(b.id)
                    .varint(old as u64)
                    .varint(new as u64),
            );
        }
        q
    }

    fn owns(&self, ptr: NonNull<u8>) -> Ownership {
        self.inner.owns(ptr)
    }

    unsafe fn usable_size(&self, ptr: NonNull<u8>, size: usize) -> usize {
        // SAFETY: forwarded caller contract.
        unsafe { self.inner.usable_size(ptr, size) }
    }

    /// A reset releases every block at once; the format has no such event, so it is written as
    /// a free of each live block, in id order (deterministic whatever the addresses were).
    unsafe fn reset(&mut self) -> Result<(), ResetUnsupported> {
        // SAFETY: forwarded caller contract.
        unsafe { self.inner.reset() }?;
        let mut live: Vec<Block> = self.blocks.drain().map(|(_, b)| b).collect();
        live.sort_unstable_by_key(|b| b.id);
        for b in live {
            self.free_ids.push(b.id);
            self.emit(EventBuf::new(OP_FREE).varint(b.id).varint(b.size as u64));
        }
        Ok(())
    }

    fn stats(&self) -> BackendStats {
        self.inner.stats()
    }

    fn trim(&mut self) {
        self.inner.trim()
    }
}

// SAFETY: `owns` is forwarded unchanged to `B`, which answers exactly.
unsafe impl<B: ExactOwnership, W: Write> ExactOwnership for Recorder<B, W> {}
