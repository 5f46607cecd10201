//! The heap's accounting: what Lua's `totalbytes`/`GCdebt` count, and what a host wants to see.

use lmem_backend::Tag;
use std::fmt;

/// Allocations made for one Lua type.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TagStats {
    /// New blocks made for this type.
    pub count: u64,
    /// Bytes asked for by those new blocks.
    pub bytes: u64,
}

/// Number of buckets in [`Histogram`]: `≤16 B`, `≤32 B`, … `≤1 MiB`, then larger.
pub const HISTOGRAM_BUCKETS: usize = 18;

/// Sizes of new blocks, in power-of-two buckets: bucket 0 holds 1–16 B, bucket `i` holds
/// `2^(i+3) + 1 ..= 2^(i+4)`, the last bucket everything above 1 MiB.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Histogram {
    /// Counts per bucket.
    pub buckets: [u64; HISTOGRAM_BUCKETS],
}

impl Histogram {
    /// The bucket a block of `size` bytes is counted in.
    #[inline]
    pub fn bucket(size: usize) -> usize {
        Self::bucket_of_zeros(Self::zeros(size))
    }

    /// The leading zeros of `(size - 1) | 15`: one instruction, and enough to find the bucket
    /// later (`ceil(log2(size))` for sizes above 16, and 4 for the rest).
    #[inline]
    fn zeros(size: usize) -> usize {
        (size.wrapping_sub(1) | 15).leading_zeros() as usize
    }

    #[inline]
    fn bucket_of_zeros(zeros: usize) -> usize {
        (usize::BITS as usize - 4 - zeros).min(HISTOGRAM_BUCKETS - 1)
    }

    /// Upper bound of bucket `i` in bytes (`None` for the last, open bucket).
    pub fn upper(i: usize) -> Option<usize> {
        (i < HISTOGRAM_BUCKETS - 1).then(|| 16usize << i)
    }

    #[inline]
    pub(crate) fn add(&mut self, size: usize) {
        self.buckets[Self::bucket(size)] += 1;
    }

    /// Three coarse classes, the split a memory monitor reports: `[≤ 64 B, ≤ 1 KiB, larger]`.
    pub fn coarse(&self) -> [u64; 3] {
        let small = self.buckets[..3].iter().sum();
        let medium = self.buckets[3..7].iter().sum();
        let large = self.buckets[7..].iter().sum();
        [small, medium, large]
    }

    /// Total count.
    pub fn total(&self) -> u64 {
        self.buckets.iter().sum()
    }
}

/// The histogram as the hot path keeps it: counts by the leading zeros of `(size - 1) | 15`,
/// folded into [`Histogram`] buckets only when read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct RawHistogram([u64; usize::BITS as usize - 3]);

impl Default for RawHistogram {
    fn default() -> Self {
        RawHistogram([0; usize::BITS as usize - 3])
    }
}

impl RawHistogram {
    #[inline]
    fn add(&mut self, size: usize) {
        self.0[Histogram::zeros(size)] += 1;
    }

    fn fold(&self) -> Histogram {
        let mut h = Histogram::default();
        for (zeros, &n) in self.0.iter().enumerate() {
            h.buckets[Histogram::bucket_of_zeros(zeros)] += n;
        }
        h
    }
}

/// What a heap counts beyond its live bytes, chosen by type: [`Detailed`] (the default) or
/// [`Basic`]. Each method runs after a request has succeeded.
pub trait Accounting: Default {
    /// A new block of `size` bytes for a `tag`; `live` is the heap's live bytes after it.
    fn allocated(&mut self, size: usize, tag: Tag, live: usize);
    /// A block resized from `osize` to `nsize`; `live` is the heap's live bytes after it.
    fn resized(&mut self, osize: usize, nsize: usize, live: usize);
    /// A block of `osize` bytes freed.
    fn freed(&mut self, osize: usize);
    /// Writes what it counted into `stats`.
    fn report(&self, stats: &mut Stats);

    /// Detailed accounting that goes on from this one, `live` bytes being live now. The default
    /// starts counting afresh ([`Detailed::since`]); [`Detailed`] keeps its counts.
    fn into_detailed(self, live: usize) -> Detailed
    where
        Self: Sized,
    {
        Detailed::since(live)
    }
}

/// What Lua's own `lmem.c` keeps and nothing more: live bytes (the GC debt and the limit are
/// derived from them) and failures. The cheapest choice, for production hosts; [`Stats`] fields
/// other than `live`, `failures` and `emergencies` read 0.
#[derive(Clone, Copy, Debug, Default)]
pub struct Basic;

impl Accounting for Basic {
    #[inline]
    fn allocated(&mut self, _: usize, _: Tag, _: usize) {}
    #[inline]
    fn resized(&mut self, _: usize, _: usize, _: usize) {}
    #[inline]
    fn freed(&mut self, _: usize) {}
    fn report(&self, _: &mut Stats) {}
}

/// Everything [`Stats`] has: peak, counts, bytes per Lua type, the size histogram.
#[derive(Clone, Debug, Default)]
pub struct Detailed {
    /// Live bytes when counting began (0 when it began with the heap).
    since: usize,
    peak: usize,
    frees: u64,
    resizes: u64,
    grown: u64,
    by_tag: [TagStats; Tag::COUNT],
    histogram: RawHistogram,
}

impl Detailed {
    /// Counting that begins now, with `live` bytes already live and not seen by the counters:
    /// the peak starts at `live`, the counts at zero.
    pub fn since(live: usize) -> Self {
        Detailed {
            since: live,
            peak: live,
            ..Detailed::default()
        }
    }
}

impl Accounting for Detailed {
    #[inline]
    fn allocated(&mut self, size: usize, tag: Tag, live: usize) {
        self.peak = self.peak.max(live);
        let t = &mut self.by_tag[tag.index()];
        t.count += 1;
        t.bytes += size as u64;
        self.histogram.add(size);
    }

    #[inline]
    fn resized(&mut self, osize: usize, nsize: usize, live: usize) {
        self.peak = self.peak.max(live);
        self.resizes += 1;
        self.grown += nsize.saturating_sub(osize) as u64;
    }

    #[inline]
    fn freed(&mut self, _: usize) {
        self.frees += 1;
    }

    fn into_detailed(self, _live: usize) -> Detailed {
        self
    }

    fn report(&self, s: &mut Stats) {
        s.detailed = true;
        s.uncounted = self.since;
        s.peak = self.peak;
        s.frees = self.frees;
        s.resizes = self.resizes;
        s.grown = self.grown;
        s.by_tag = self.by_tag;
        s.histogram = self.histogram.fold();
    }
}

/// Everything the heap counts. Changed only after a request succeeds (failures are counted in
/// `failures` alone). With [`Basic`] accounting only `live`, `failures` and `emergencies` are
/// kept, and `detailed` is false.
///
/// `live` and `failures` are always exact. The detailed figures (`peak`, the counts, `by_tag`,
/// `histogram`) cover the requests made since detailed counting began: from the start when the
/// heap was made with [`Detailed`] accounting, else from when somebody first asked for them; then
/// `uncounted` is the live bytes of that moment, which the counts never saw.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Bytes in live blocks, as the caller sized them (Lua's `gettotalbytes`).
    pub live: usize,
    /// Whether the detailed figures are counted at all.
    pub detailed: bool,
    /// Bytes that were live when detailed counting began (0 when it began with the heap).
    pub uncounted: usize,
    /// Highest `live` seen since detailed counting began.
    pub peak: usize,
    /// Blocks freed.
    pub frees: u64,
    /// Blocks resized (grown or shrunk).
    pub resizes: u64,
    /// Requests that failed after every retry (the caller saw `not enough memory`).
    pub failures: u64,
    /// Emergency collections run because a request failed.
    pub emergencies: u64,
    /// Bytes added by growing resizes.
    pub grown: u64,
    /// New blocks per Lua type (their sum is [`Stats::allocations`]).
    pub by_tag: [TagStats; Tag::COUNT],
    /// Sizes of new blocks.
    pub histogram: Histogram,
}

impl Stats {
    /// New blocks made.
    pub fn allocations(&self) -> u64 {
        self.by_tag.iter().map(|t| t.count).sum()
    }

    /// Total bytes asked for: by new blocks, and by the growing part of resizes.
    pub fn bytes_allocated(&self) -> u64 {
        self.by_tag.iter().map(|t| t.bytes).sum::<u64>() + self.grown
    }

    /// Blocks alive now among those the counts saw (made minus freed; a block made before
    /// counting began and freed since is not subtracted twice).
    pub fn live_blocks(&self) -> u64 {
        self.allocations().saturating_sub(self.frees)
    }
}

fn human(bytes: u64) -> String {
    match bytes {
        b if b >= 10 << 20 => format!("{:.1} MiB", b as f64 / (1u64 << 20) as f64),
        b if b >= 10 << 10 => format!("{:.1} KiB", b as f64 / 1024.0),
        b => format!("{b} B"),
    }
}

impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.detailed {
            writeln!(f, "live        {}", human(self.live as u64))?;
            return writeln!(
                f,
                "failures    {}   (details not counted: ask for them at the start)",
                self.failures
            );
        }
        if self.uncounted > 0 {
            writeln!(
                f,
                "counting    since {} were live (details were switched on then)",
                human(self.uncounted as u64)
            )?;
        }
        writeln!(
            f,
            "live        {} ({} blocks)",
            human(self.live as u64),
            self.live_blocks()
        )?;
        writeln!(f, "peak        {}", human(self.peak as u64))?;
        writeln!(
            f,
            "allocated   {} in {} blocks",
            human(self.bytes_allocated()),
            self.allocations()
        )?;
        writeln!(
            f,
            "frees       {}   resizes {}   failures {}   emergency collections {}",
            self.frees, self.resizes, self.failures, self.emergencies
        )?;
        writeln!(
            f,
            "by type     {:>10} {:>12} {:>8}",
            "blocks", "bytes", "avg"
        )?;
        for tag in Tag::ALL {
            let t = self.by_tag[tag.index()];
            if t.count > 0 {
                let avg = t.bytes as f64 / t.count as f64;
                writeln!(
                    f,
                    "  {:<9} {:>10} {:>12} {:>8.1}",
                    tag.name(),
                    t.count,
                    t.bytes,
                    avg
                )?;
            }
        }
        let [s, m, l] = self.histogram.coarse();
        writeln!(f, "sizes       <=64 B: {s}   <=1 KiB: {m}   larger: {l}")?;
        for (i, &n) in self.histogram.buckets.iter().enumerate() {
            if n > 0 {
                let label = match Histogram::upper(i) {
                    Some(u) => format!("<= {}", human(u as u64)),
                    None => "> 1 MiB".to_string(),
                };
                writeln!(f, "  {label:<10} {n}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_powers_of_two() {
        assert_eq!(Histogram::bucket(1), 0);
        assert_eq!(Histogram::bucket(16), 0);
        assert_eq!(Histogram::bucket(17), 1);
        assert_eq!(Histogram::bucket(32), 1);
        assert_eq!(Histogram::bucket(33), 2);
        assert_eq!(Histogram::bucket(64), 2);
        assert_eq!(Histogram::bucket(65), 3);
        assert_eq!(Histogram::bucket(1024), 6);
        assert_eq!(Histogram::bucket(1025), 7);
        assert_eq!(Histogram::bucket(1 << 20), 16);
        assert_eq!(Histogram::bucket((1 << 20) + 1), 17);
        assert_eq!(Histogram::bucket(usize::MAX), 17);
        for i in 0..HISTOGRAM_BUCKETS - 1 {
            let u = Histogram::upper(i).unwrap();
            assert_eq!(Histogram::bucket(u), i);
            assert_eq!(Histogram::bucket(u + 1), i + 1);
        }
    }

    #[test]
    fn coarse_classes_split_at_64_b_and_1_kib() {
        let mut h = Histogram::default();
        for s in [1, 64, 65, 1024, 1025, 1 << 30] {
            h.add(s);
        }
        assert_eq!(h.coarse(), [2, 2, 2]);
    }
}
