//! The train/eval split and sample windows. The token stream is cut into blocks (whole documents
//! where they fit, at most `MAX_BLOCK` tokens); a keyed hash of each block's position picks the
//! held-out blocks, so the split depends on the corpus alone, never on a training seed. Adjacent
//! blocks of one split merge into spans, and a sample is a window inside one span: it never
//! crosses from train into eval. Windows are drawn by a keyed hash of (seed, split, index), a
//! counter-based draw with no state.

use std::fmt;
use std::ops::Range;
use std::sync::{Arc, Mutex, PoisonError};

use serde::{Deserialize, Serialize};

/// Largest block, in tokens.
const MAX_BLOCK: usize = 8192;
/// Smallest block, in tokens, for small corpora.
const MIN_BLOCK: usize = 16;
/// Small corpora get blocks of `tokens / TARGET_BLOCKS` so both splits have several blocks.
const TARGET_BLOCKS: usize = 64;
/// blake3 `derive_key` contexts; changing one changes every split or every sample.
const SPLIT_CONTEXT: &str = "sliver data split v1: eval block rank";
const SAMPLE_CONTEXT: &str = "sliver data split v1: sample window";

/// A part of the corpus: training data or held-out evaluation data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    /// The data trained on.
    Train,
    /// The held-out data, never trained on.
    Eval,
}

impl fmt::Display for Split {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Split::Train => "train",
            Split::Eval => "eval",
        })
    }
}

/// Where each split lies in the token stream.
///
/// It holds two spans per run of held-out blocks (the spans alternate between the splits), and
/// per split and window length a table of cumulative start counts so that a window is found by
/// binary search: memory grows with the number of spans (about `2 · eval_fraction` of the
/// blocks), not with the tokens.
#[derive(Debug)]
pub(crate) struct Layout {
    train: Vec<Range<usize>>,
    eval: Vec<Range<usize>>,
    blocks: usize,
    eval_blocks: usize,
    /// Per split, the cumulative start counts of the last window length asked for.
    starts: [Mutex<Option<Starts>>; 2],
}

/// A window length and the cumulative start counts of each span for it.
type Starts = (usize, Arc<[u64]>);

impl Layout {
    /// Splits a stream whose documents end at `doc_ends` (increasing; the last is the stream
    /// length). `None` when the stream is too short for two blocks.
    pub(crate) fn new(doc_ends: &[usize], eval_fraction: f64) -> Option<Layout> {
        let total = *doc_ends.last()?;
        let mut cutter = BlockCutter::new(block_len(total));
        let mut blocks = Vec::new();
        for &end in doc_ends {
            cutter.push(end, &mut blocks);
        }
        cutter.finish(&mut blocks);
        Layout::from_blocks(&blocks, eval_fraction)
    }

    /// The layout of consecutive blocks (tiling the stream from 0), split by the same rule as
    /// [`Layout::new`]. `None` with fewer than two blocks.
    pub(crate) fn from_blocks(blocks: &[Range<usize>], eval_fraction: f64) -> Option<Layout> {
        if blocks.len() < 2 {
            return None;
        }
        let eval = eval_blocks(blocks.len(), eval_fraction);
        let mut layout = Layout::empty(blocks.len());
        for (i, block) in blocks.iter().enumerate() {
            let split = if eval[i] { Split::Eval } else { Split::Train };
            if split == Split::Eval {
                layout.eval_blocks += 1;
            }
            let spans = layout.spans_mut(split);
            match spans.last_mut() {
                Some(last) if last.end == block.start => last.end = block.end,
                _ => spans.push(block.clone()),
            }
        }
        Some(layout)
    }

    fn empty(blocks: usize) -> Layout {
        Layout {
            train: Vec::new(),
            eval: Vec::new(),
            blocks,
            eval_blocks: 0,
            starts: [Mutex::new(None), Mutex::new(None)],
        }
    }

    /// The layout as the split of its first span and the lengths of all spans in stream order
    /// (they alternate between the splits): what a shard manifest stores.
    pub(crate) fn span_lengths(&self) -> (Split, Vec<u64>) {
        let mut all: Vec<(Range<usize>, Split)> = self
            .train
            .iter()
            .map(|s| (s.clone(), Split::Train))
            .chain(self.eval.iter().map(|s| (s.clone(), Split::Eval)))
            .collect();
        all.sort_unstable_by_key(|(s, _)| s.start);
        let first = all.first().map_or(Split::Train, |(_, split)| *split);
        (first, all.iter().map(|(s, _)| s.len() as u64).collect())
    }

    /// The inverse of [`Layout::span_lengths`], with the block counts it was cut into. `None`
    /// when the spans do not alternate, one is empty, or the counts are impossible.
    pub(crate) fn from_span_lengths(
        first: Split,
        lengths: &[u64],
        blocks: usize,
        eval_blocks: usize,
    ) -> Option<Layout> {
        if blocks < 2 || eval_blocks == 0 || eval_blocks >= blocks || lengths.len() > blocks {
            return None;
        }
        let mut layout = Layout::empty(blocks);
        layout.eval_blocks = eval_blocks;
        let (mut start, mut split) = (0usize, first);
        for &len in lengths {
            let len = usize::try_from(len).ok().filter(|&l| l > 0)?;
            let end = start.checked_add(len)?;
            layout.spans_mut(split).push(start..end);
            start = end;
            split = match split {
                Split::Train => Split::Eval,
                Split::Eval => Split::Train,
            };
        }
        (!layout.train.is_empty() && !layout.eval.is_empty()).then_some(layout)
    }

    fn spans_mut(&mut self, split: Split) -> &mut Vec<Range<usize>> {
        match split {
            Split::Train => &mut self.train,
            Split::Eval => &mut self.eval,
        }
    }

    /// The stretches of the stream that belong to `split`, in order, non-adjacent.
    pub(crate) fn spans(&self, split: Split) -> &[Range<usize>] {
        match split {
            Split::Train => &self.train,
            Split::Eval => &self.eval,
        }
    }

    /// Tokens in `split`.
    pub(crate) fn tokens(&self, split: Split) -> usize {
        self.spans(split).iter().map(|s| s.len()).sum()
    }

    /// The longest window `split` can hold.
    pub(crate) fn longest(&self, split: Split) -> usize {
        self.spans(split).iter().map(|s| s.len()).max().unwrap_or(0)
    }

    /// Number of blocks, and how many of them are held out.
    pub(crate) fn blocks(&self) -> (usize, usize) {
        (self.blocks, self.eval_blocks)
    }

    /// Cumulative counts of the start positions at which a window of `len` fits, span by span.
    fn starts(&self, split: Split, len: usize) -> Arc<[u64]> {
        let slot = &self.starts[split as usize];
        let mut cached = slot.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((l, table)) = cached.as_ref()
            && *l == len
        {
            return table.clone();
        }
        let mut sum = 0u64;
        let table: Arc<[u64]> = self
            .spans(split)
            .iter()
            .map(|s| {
                sum += (s.len() + 1).saturating_sub(len.max(1)) as u64;
                sum
            })
            .collect();
        *cached = Some((len, table.clone()));
        table
    }

    /// The window of `len` tokens for sample `index` of `split` under `seed`: uniform over every
    /// start position at which the window fits inside one span. `None` if none fits.
    pub(crate) fn window(
        &self,
        split: Split,
        seed: u64,
        index: u64,
        len: usize,
    ) -> Option<Range<usize>> {
        let starts = self.starts(split, len);
        let total = starts.last().copied().unwrap_or(0);
        if total == 0 {
            return None;
        }
        let pick = pick(split, seed, index, total);
        // The first span whose cumulative count exceeds the pick holds it.
        let i = starts.partition_point(|&c| c <= pick);
        let before = if i == 0 { 0 } else { starts[i - 1] };
        let start = self.spans(split)[i].start + (pick - before) as usize;
        Some(start..start + len)
    }
}

/// The block length for a stream of `total` tokens: `MAX_BLOCK`, or less for a small corpus so
/// that it still has about `TARGET_BLOCKS` blocks.
pub(crate) fn block_len(total: usize) -> usize {
    (total / TARGET_BLOCKS).clamp(MIN_BLOCK, MAX_BLOCK)
}

/// A stream at least this long has blocks of `MAX_BLOCK` tokens, whatever follows: a writer
/// that has seen this many tokens can cut blocks as it goes.
pub(crate) const FULL_BLOCKS_FROM: usize = TARGET_BLOCKS * MAX_BLOCK;

/// Cuts the stream into blocks of at most `block_len` tokens, at document ends where possible,
/// one document end at a time (so a writer needs no list of documents).
#[derive(Debug)]
pub(crate) struct BlockCutter {
    block_len: usize,
    start: usize,
    /// The last document end inside the open block, where it is best cut.
    last_end: Option<usize>,
    /// The stream's length so far.
    total: usize,
}

impl BlockCutter {
    pub(crate) fn new(block_len: usize) -> Self {
        Self {
            block_len,
            start: 0,
            last_end: None,
            total: 0,
        }
    }

    /// A document ends at `end` (past every earlier end); closed blocks go to `out`.
    pub(crate) fn push(&mut self, end: usize, out: &mut Vec<Range<usize>>) {
        while end - self.start > self.block_len {
            let cut = self.last_end.take().unwrap_or(self.start + self.block_len);
            out.push(self.start..cut);
            self.start = cut;
        }
        if end > self.start {
            self.last_end = Some(end);
        }
        self.total = end;
    }

    /// Closes the last block.
    pub(crate) fn finish(self, out: &mut Vec<Range<usize>>) {
        if self.total > self.start {
            out.push(self.start..self.total);
        }
    }
}

/// Which of `n` blocks are held out: the `round(n * fraction)` blocks (at least one, and never
/// all) with the smallest keyed hash of their position.
fn eval_blocks(n: usize, fraction: f64) -> Vec<bool> {
    let k = ((n as f64 * fraction).round() as usize).clamp(1, n - 1);
    let mut ranked: Vec<(u64, usize)> = (0..n)
        .map(|i| {
            let mut hasher = blake3::Hasher::new_derive_key(SPLIT_CONTEXT);
            hasher.update(&(i as u64).to_le_bytes());
            (first_u64(hasher.finalize()), i)
        })
        .collect();
    ranked.sort_unstable();
    let mut eval = vec![false; n];
    for &(_, i) in &ranked[..k] {
        eval[i] = true;
    }
    eval
}

/// Which of `total` window starts of `split` sample `index` under `seed` takes: a keyed hash of
/// (seed, split, index), mapped onto `[0, total)` by multiply-shift (the bias is below
/// total / 2^64).
fn pick(split: Split, seed: u64, index: u64, total: u64) -> u64 {
    let mut hasher = blake3::Hasher::new_derive_key(SAMPLE_CONTEXT);
    hasher.update(&seed.to_le_bytes());
    hasher.update(&[split as u8]);
    hasher.update(&index.to_le_bytes());
    ((u128::from(first_u64(hasher.finalize())) * u128::from(total)) >> 64) as u64
}

fn first_u64(hash: blake3::Hash) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&hash.as_bytes()[..8]);
    u64::from_le_bytes(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn overlaps(a: &Range<usize>, b: &Range<usize>) -> bool {
        a.start < b.end && b.start < a.end
    }

    fn cut_blocks(doc_ends: &[usize], block_len: usize) -> Vec<Range<usize>> {
        let mut cutter = BlockCutter::new(block_len);
        let mut blocks = Vec::new();
        for &end in doc_ends {
            cutter.push(end, &mut blocks);
        }
        cutter.finish(&mut blocks);
        blocks
    }

    /// The window rule written as a scan over the spans: what the binary search must equal.
    fn window_by_scan(
        layout: &Layout,
        split: Split,
        seed: u64,
        index: u64,
        len: usize,
    ) -> Option<Range<usize>> {
        let starts = |s: &Range<usize>| (s.len() + 1).saturating_sub(len.max(1));
        let spans = layout.spans(split);
        let total: u64 = spans.iter().map(|s| starts(s) as u64).sum();
        if total == 0 {
            return None;
        }
        let mut pick = pick(split, seed, index, total);
        for span in spans {
            let n = starts(span) as u64;
            if pick < n {
                return Some(span.start + pick as usize..span.start + pick as usize + len);
            }
            pick -= n;
        }
        unreachable!()
    }

    #[test]
    fn binary_search_matches_the_scan_and_span_lengths_round_trip() {
        // Documents of varied lengths, so spans differ in length and some are too short.
        let mut ends = Vec::new();
        let mut at = 0;
        for i in 0..3000usize {
            at += 5 + (i * 7919) % 300;
            ends.push(at);
        }
        let layout = Layout::new(&ends, 0.1).unwrap();
        let (first, lengths) = layout.span_lengths();
        let (blocks, eval_blocks) = layout.blocks();
        let again = Layout::from_span_lengths(first, &lengths, blocks, eval_blocks).unwrap();
        assert_eq!(again.spans(Split::Train), layout.spans(Split::Train));
        assert_eq!(again.spans(Split::Eval), layout.spans(Split::Eval));
        for split in [Split::Train, Split::Eval] {
            for len in [1, 17, 200, layout.longest(split)] {
                for index in 0..300 {
                    let expected = window_by_scan(&layout, split, 3, index, len);
                    assert_eq!(layout.window(split, 3, index, len), expected);
                    assert_eq!(again.window(split, 3, index, len), expected);
                }
            }
        }
        // Impossible lists are refused.
        assert!(Layout::from_span_lengths(first, &[10, 0, 10], 3, 1).is_none());
        assert!(Layout::from_span_lengths(first, &[10], 2, 1).is_none());
        assert!(Layout::from_span_lengths(first, &lengths, blocks, 0).is_none());
    }

    #[test]
    fn blocks_follow_documents_and_tile_the_stream() {
        // Small documents are kept whole; a long one is cut at the block length.
        let ends = [10, 20, 30, 100, 105];
        let blocks = cut_blocks(&ends, 25);
        assert_eq!(blocks, vec![0..20, 20..30, 30..55, 55..80, 80..105]);
        let ends: Vec<usize> = (1..=1000).map(|i| i * 7).collect();
        let blocks = cut_blocks(&ends, 50);
        assert_eq!(blocks[0].start, 0);
        assert_eq!(blocks.last().unwrap().end, 7000);
        for pair in blocks.windows(2) {
            assert_eq!(pair[0].end, pair[1].start);
        }
        // Every cut is a document end, since documents are shorter than blocks.
        assert!(blocks.iter().all(|b| b.end % 7 == 0 && b.len() <= 50));
    }

    #[test]
    fn eval_share_matches_fraction_and_ignores_nothing() {
        for (n, f) in [(2, 0.05), (64, 0.05), (1000, 0.05), (1000, 0.5), (37, 0.2)] {
            let eval = eval_blocks(n, f);
            let k = eval.iter().filter(|&&e| e).count();
            assert_eq!(
                k,
                ((n as f64 * f).round() as usize).clamp(1, n - 1),
                "n={n} f={f}"
            );
        }
        // Stable: the same positions every time.
        assert_eq!(eval_blocks(500, 0.1), eval_blocks(500, 0.1));
    }

    #[test]
    fn layout_separates_splits() {
        let ends: Vec<usize> = (1..=400).map(|i| i * 50).collect();
        let layout = Layout::new(&ends, 0.1).unwrap();
        let (blocks, eval_blocks) = layout.blocks();
        assert!(blocks >= 32, "{blocks}");
        assert_eq!(
            layout.tokens(Split::Train) + layout.tokens(Split::Eval),
            20_000
        );
        let share = layout.tokens(Split::Eval) as f64 / 20_000.0;
        assert!(
            (0.05..0.15).contains(&share),
            "{share} over {eval_blocks}/{blocks} blocks"
        );
        for t in layout.spans(Split::Train) {
            for e in layout.spans(Split::Eval) {
                assert!(!overlaps(t, e));
            }
        }
        for split in [Split::Train, Split::Eval] {
            for index in 0..2000 {
                let w = layout.window(split, 7, index, 40).unwrap();
                assert_eq!(w.len(), 40);
                assert!(
                    layout
                        .spans(split)
                        .iter()
                        .any(|s| s.start <= w.start && w.end <= s.end)
                );
            }
        }
        assert!(
            layout
                .window(Split::Eval, 0, 0, layout.longest(Split::Eval) + 1)
                .is_none()
        );
        assert!(
            layout
                .window(Split::Eval, 0, 0, layout.longest(Split::Eval))
                .is_some()
        );
    }

    #[test]
    fn too_short_for_two_blocks() {
        assert!(Layout::new(&[10], 0.05).is_none());
        assert!(Layout::new(&[], 0.05).is_none());
        assert!(Layout::new(&[20], 0.05).is_some());
    }

    #[test]
    fn windows_are_a_pure_function_of_seed_split_index() {
        let ends: Vec<usize> = (1..=100).map(|i| i * 100).collect();
        let layout = Layout::new(&ends, 0.05).unwrap();
        let w = |seed, index| layout.window(Split::Train, seed, index, 64).unwrap();
        assert_eq!(w(1, 5), w(1, 5));
        let distinct: std::collections::HashSet<_> = (0..100).map(|i| w(1, i).start).collect();
        assert!(distinct.len() > 90, "{}", distinct.len());
        assert_ne!(
            (0..10).map(|i| w(1, i)).collect::<Vec<_>>(),
            (0..10).map(|i| w(2, i)).collect::<Vec<_>>()
        );
    }
}
