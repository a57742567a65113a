//! Sizing a run without building it: what each stage holds (parameters, memory), what one miner's
//! merge moves, and the merge window and epoch that a link speed needs.
//!
//! Everything here is arithmetic on the spec, so `btvalidator spec` can size a 3B model on a
//! laptop and a simulator can size a swarm without libtorch allocating a weight. The counts follow
//! the code they describe: [`stage_parameters`] the tensors [`Stage::new`](crate::Stage::new)
//! creates (a test builds small stages and compares), [`MergeTraffic::of`] the objects the
//! butterfly merge puts and reads (`miner/src/merge.rs`, through [`crate::merge`]), and
//! [`windows_needed`] the phases of [`crate::schedule`].
//!
//! # The formula
//!
//! A miner's merge runs in two timed phases of the merge window `M` (the first `M/4` blocks drain
//! the pipeline), each its own deadline of [`Timeline`](crate::schedule::Timeline):
//!
//! - **A, scatter and reduce** (`drain_end` to `reduce_end`, `3M/4 − M/4` blocks): put this
//!   miner's copy of every shard, read the peers' copies of the shards it reduces;
//! - **B, reductions and assembly** (`reduce_end` to `assemble_end`, `M/4 + M/4` blocks): put its
//!   reductions, read both reductions of every shard.
//!
//! Each phase takes, on a link of `up` and `down` bytes a second with round-trip time `rtt`,
//!
//! ```text
//! t = bytes up / up + bytes down / down + requests × rtt
//! ```
//!
//! (serial: uploads, downloads and requests do not overlap, which over-estimates), and the merge
//! window is the smallest `M` whose phases hold `safety × t` seconds of blocks each. The epoch is
//! then `E = ⌈M / share⌉`: the merge window takes at most `share` of the run's time.

use crate::merge::{reduced_by, reducers};
use crate::schedule::{Epoch, Schedule};
use crate::spec::{ModelSpec, RunSpec, SwarmSpec};

/// Bytes of one weight in a merge shard: shards travel as lossless fp32 (`sliver_subnet`'s
/// `fetch::shard_codec`), since merged weights must be bit-identical everywhere.
pub const SHARD_BYTES_PER_WEIGHT: u64 = 4;

/// Bytes of one weight: the stages train in fp32.
pub const WEIGHT_BYTES: u64 = 4;

/// Bytes of one weight's gradient (fp32).
pub const GRADIENT_BYTES: u64 = 4;

/// Bytes of AdamW's state per weight: its two fp32 moments (`amsgrad` off, as
/// [`crate::train::adamw`] builds it).
pub const ADAMW_BYTES: u64 = 8;

/// Bytes of one activation value kept for the backward: the stages compute in fp32.
pub const ACTIVATION_BYTES: u64 = 4;

fn mul(a: usize, b: usize) -> u64 {
    (a as u64).saturating_mul(b as u64)
}

/// The trainable parameters of one stage, by part, as [`Stage::new`](crate::Stage::new) creates
/// them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StageParameters {
    /// The token embedding: stage 0's, or a later stage's own with `boundary.token_embedding`.
    pub embedding: u64,
    /// The bottleneck's receiving half (decoder), on every stage after the first.
    pub boundary_in: u64,
    /// The transformer blocks.
    pub layers: u64,
    /// The bottleneck's sending half (encoder), on every stage before the last.
    pub boundary_out: u64,
    /// The final norm and LM head, on the last stage.
    pub head: u64,
}

impl StageParameters {
    /// Every parameter of the stage.
    pub fn total(&self) -> u64 {
        [
            self.embedding,
            self.boundary_in,
            self.layers,
            self.boundary_out,
            self.head,
        ]
        .into_iter()
        .fold(0, u64::saturating_add)
    }
}

/// Parameters of one Llama block: grouped-query attention (`wq`, `wk`, `wv`, `wo`), the SwiGLU
/// feed-forward (`w1`, `w3`, `w2`) and the two RMSNorm gains.
pub fn layer_parameters(m: &ModelSpec) -> u64 {
    let d = m.d_model;
    let q = m.n_heads * m.head_dim();
    let kv = m.n_kv_heads * m.head_dim();
    let attention = mul(d, q)
        .saturating_add(mul(d, kv).saturating_mul(2))
        .saturating_add(mul(q, d));
    let ffn = mul(d, m.ffn_hidden).saturating_mul(3);
    attention.saturating_add(ffn).saturating_add(mul(2, d))
}

/// The parameters of stage `index` of `spec`, counted from its dimensions; `None` when there is
/// no such stage. Equal to what [`Stage::parameter_count`](crate::Stage::parameter_count) counts
/// on the built stage.
pub fn stage_parameters(spec: &RunSpec, index: usize) -> Option<StageParameters> {
    let layers = spec.stages.get(index)?.range();
    let m = &spec.model;
    let (d, v, k) = (m.d_model, m.vocab_size, spec.boundary.bottleneck);
    let last = index + 1 == spec.stages.len();
    let has_embedding = index == 0 || spec.boundary.token_embedding;
    Some(StageParameters {
        embedding: if has_embedding { mul(v, d) } else { 0 },
        // Decoder: identity Pᵀ [d, k], V₁ [d, k], V₂ [d, d].
        boundary_in: if index > 0 && k > 0 {
            mul(d, k).saturating_mul(2).saturating_add(mul(d, d))
        } else {
            0
        },
        layers: layer_parameters(m).saturating_mul(layers.len() as u64),
        // Encoder: norm gain [d], identity P [k, d], W₁ [d, d], W₂ [k, d].
        boundary_out: if !last && k > 0 {
            mul(k, d)
                .saturating_mul(2)
                .saturating_add(mul(d, d))
                .saturating_add(d as u64)
        } else {
            0
        },
        // Final norm gain [d] and LM head [v, d].
        head: if last {
            mul(v, d).saturating_add(d as u64)
        } else {
            0
        },
    })
}

/// The work one sample costs stage `index` of `spec`, in giga parameter-tokens: the parameters
/// a token passes through (every one but the embedding, which is a lookup) times the sample's
/// tokens. Compute goes as this times a constant (about 8 FLOPs with the forward recomputed for
/// the backward), so a miner's work over its compute seconds is a rate that compares miners of
/// any stage: what it declares ([`crate::assignment::Declared`]). `None` when there is no such
/// stage.
pub fn work_per_sample(spec: &RunSpec, index: usize) -> Option<f64> {
    let p = stage_parameters(spec, index)?;
    let tokens = mul(spec.optimizer.batch_size, spec.model.seq_len);
    Some(p.total().saturating_sub(p.embedding) as f64 * tokens as f64 / 1e9)
}

/// fp32 values one Llama block keeps for its backward, per token, with no activation
/// checkpointing and attention by `scaled_dot_product_attention` (no `seq²` score matrix):
/// `9·d_model + 2·kv_dim + 4·ffn_hidden`.
///
/// Attention: the block's input, the norm's two products, rotated queries, rotated keys and
/// values (`kv_dim` each), the attention output and its contiguous copy (`6·d + 2·kv`); the
/// feed-forward: its input and the norm's two products, then `w1 x`, `silu(w1 x)`, `w3 x` and
/// their product (`3·d + 4·ffn`). The backward's transient buffers come on top.
pub fn layer_activation_values(m: &ModelSpec) -> u64 {
    let kv = m.n_kv_heads * m.head_dim();
    mul(9, m.d_model)
        .saturating_add(mul(2, kv))
        .saturating_add(mul(4, m.ffn_hidden))
}

/// fp32 values stage `index` keeps per token for its backward ([`layer_activation_values`] per
/// layer, plus the embedding's output (`d`), the decoder (`4·d + k`), the encoder (`4·d + 3·k`),
/// and on the last stage the final norm (`2·d`) and the logits and log-probabilities the loss
/// keeps (`2·vocab`)); `None` when there is no such stage.
pub fn activation_values_per_token(spec: &RunSpec, index: usize) -> Option<u64> {
    let layers = spec.stages.get(index)?.range();
    let m = &spec.model;
    let (d, k) = (m.d_model as u64, spec.boundary.bottleneck as u64);
    let last = index + 1 == spec.stages.len();
    let mut values = layer_activation_values(m).saturating_mul(layers.len() as u64);
    if index == 0 || spec.boundary.token_embedding {
        values = values.saturating_add(d);
    }
    if index > 0 && k > 0 {
        values = values.saturating_add(4 * d + k);
    }
    if !last && k > 0 {
        values = values.saturating_add(4 * d + 3 * k);
    }
    if last {
        values = values.saturating_add(mul(2, m.vocab_size).saturating_add(2 * d));
    }
    Some(values)
}

/// What one stage needs in memory to train: weights, gradients, AdamW's moments and the
/// activations of one micro-batch (`optimizer.batch_size` samples of `model.seq_len` tokens).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StageMemory {
    /// fp32 weights.
    pub weights: u64,
    /// fp32 gradients.
    pub gradients: u64,
    /// AdamW's two moments.
    pub optimizer: u64,
    /// Activations kept for one micro-batch's backward ([`activation_values_per_token`]).
    pub activations: u64,
}

impl StageMemory {
    /// Stage `index` of `spec`; `None` when there is no such stage.
    pub fn of(spec: &RunSpec, index: usize) -> Option<Self> {
        let params = stage_parameters(spec, index)?.total();
        let tokens = mul(spec.optimizer.batch_size, spec.model.seq_len);
        Some(Self {
            weights: params.saturating_mul(WEIGHT_BYTES),
            gradients: params.saturating_mul(GRADIENT_BYTES),
            optimizer: params.saturating_mul(ADAMW_BYTES),
            activations: activation_values_per_token(spec, index)?
                .saturating_mul(tokens)
                .saturating_mul(ACTIVATION_BYTES),
        })
    }

    /// Weights, gradients and optimizer state.
    pub fn state(&self) -> u64 {
        self.weights
            .saturating_add(self.gradients)
            .saturating_add(self.optimizer)
    }

    /// Everything.
    pub fn total(&self) -> u64 {
        self.state().saturating_add(self.activations)
    }
}

/// What one miner's merge moves in one epoch, for a stage of `params` weights shared by `miners`
/// miners, phase by phase (see the [module docs](self)). Shards are sized by the largest
/// ([`crate::merge::shard_range`] sizes differ by one); object headers (a few hundred bytes each)
/// are not counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MergeTraffic {
    /// Miners in the stage.
    pub miners: usize,
    /// Bytes of the largest shard.
    pub shard_bytes: u64,
    /// Shards this miner reduces ([`crate::merge::reduced_by`]).
    pub reduces: usize,
    /// Phase A, up: this miner's copy of every shard, its own included.
    pub scatter_up: u64,
    /// Phase A, down: every peer's copy of each shard this miner reduces.
    pub reduce_down: u64,
    /// Phase A: requests (puts of copies, reads of peers' copies).
    pub requests_a: u64,
    /// Phase B, up: this miner's reductions.
    pub reduce_up: u64,
    /// Phase B, down: every reduction of every shard (first reducer and twin; this miner's own
    /// too, read back from its store like the others).
    pub assemble_down: u64,
    /// Phase B: requests (puts of reductions, reads of reductions).
    pub requests_b: u64,
}

impl MergeTraffic {
    /// The merge of a stage of `params` weights among `miners` miners (at least one).
    pub fn of(params: u64, miners: usize) -> Self {
        let n = miners.max(1);
        let shard_bytes = params
            .div_ceil(n as u64)
            .saturating_mul(SHARD_BYTES_PER_WEIGHT);
        let reduces = reduced_by(0, n).len();
        let peers = (n - 1) as u64;
        let copies_read = (reduces as u64).saturating_mul(peers);
        let reductions_read: u64 = (0..n)
            .map(|i| {
                let [a, b] = reducers(i, n);
                if a == b { 1 } else { 2 }
            })
            .sum();
        Self {
            miners: n,
            shard_bytes,
            reduces,
            scatter_up: shard_bytes.saturating_mul(n as u64),
            reduce_down: shard_bytes.saturating_mul(copies_read),
            requests_a: (n as u64).saturating_add(copies_read),
            reduce_up: shard_bytes.saturating_mul(reduces as u64),
            assemble_down: shard_bytes.saturating_mul(reductions_read),
            requests_b: (reduces as u64).saturating_add(reductions_read),
        }
    }

    /// Bytes this miner uploads in the merge.
    pub fn up(&self) -> u64 {
        self.scatter_up.saturating_add(self.reduce_up)
    }

    /// Bytes this miner downloads in the merge.
    pub fn down(&self) -> u64 {
        self.reduce_down.saturating_add(self.assemble_down)
    }
}

/// A miner's link and the margins [`windows_needed`] sizes with.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Link {
    /// Upload speed, megabits (10⁶ bits) a second.
    pub up_mbit: f64,
    /// Download speed, megabits a second.
    pub down_mbit: f64,
    /// Round-trip time of one storage request, seconds.
    pub rtt_secs: f64,
    /// Seconds per block (12 on finney).
    pub block_secs: f64,
    /// How much longer than the estimate each merge phase is given (a slower peer or store, TCP
    /// ramp-up, retries).
    pub safety: f64,
    /// The largest share of the run's time the merge window may take.
    pub merge_share: f64,
}

impl Default for Link {
    /// A home link on finney: 20 Mbit/s up, 100 down, 100 ms to the store; 12 s blocks; phases
    /// given 1.5 times the estimate; the merge window at most a sixth of the epoch (the default
    /// `[swarm]`'s 40 of 240 blocks).
    fn default() -> Self {
        Self {
            up_mbit: 20.0,
            down_mbit: 100.0,
            rtt_secs: 0.1,
            block_secs: 12.0,
            safety: 1.5,
            merge_share: 1.0 / 6.0,
        }
    }
}

impl Link {
    /// Checks that every number is usable: speeds, block time and safety positive, the round
    /// trip not negative, the share in (0, 1).
    ///
    /// # Errors
    /// Names the first bad field.
    pub fn check(&self) -> Result<(), String> {
        for (name, x) in [
            ("up speed", self.up_mbit),
            ("down speed", self.down_mbit),
            ("block time", self.block_secs),
            ("safety", self.safety),
        ] {
            if !(x.is_finite() && x > 0.0) {
                return Err(format!("{name} must be a positive number, got {x}"));
            }
        }
        if !(self.rtt_secs.is_finite() && self.rtt_secs >= 0.0) {
            return Err(format!(
                "round-trip time must not be negative, got {}",
                self.rtt_secs
            ));
        }
        if !(self.merge_share > 0.0 && self.merge_share < 1.0) {
            return Err(format!(
                "merge share must be in (0, 1), got {}",
                self.merge_share
            ));
        }
        Ok(())
    }

    fn up_bytes_per_sec(&self) -> f64 {
        self.up_mbit * 1e6 / 8.0
    }

    fn down_bytes_per_sec(&self) -> f64 {
        self.down_mbit * 1e6 / 8.0
    }
}

/// The merge window and epoch a merge needs ([`windows_needed`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Needs {
    /// Seconds phase A (scatter and reduce) takes, before the safety margin.
    pub phase_a_secs: f64,
    /// Seconds phase B (reductions and assembly) takes, before the safety margin.
    pub phase_b_secs: f64,
    /// The shortest `swarm.merge_blocks` whose phases hold `safety` times those.
    pub merge_blocks: u64,
    /// The shortest `swarm.epoch_blocks` in which that window is at most `merge_share`.
    pub epoch_blocks: u64,
}

/// **The sizing formula** (see the [module docs](self)): the merge window and epoch, in blocks, in
/// which one miner moves `traffic` over `link`.
///
/// ```text
/// t_A = scatter_up / up + reduce_down / down + requests_A × rtt
/// t_B = reduce_up / up + assemble_down / down + requests_B × rtt
/// M   = the least M with (reduce_end − drain_end) × block ≥ safety × t_A
///                   and (assemble_end − reduce_end) × block ≥ safety × t_B   (about 2·safety·t / block)
/// E   = max(⌈M / share⌉, M + 1)
/// ```
///
/// The phase lengths are read from [`Schedule::timeline`], the one place the window's fractions are
/// written. `None` when `link` fails [`Link::check`].
pub fn windows_needed(traffic: &MergeTraffic, link: &Link) -> Option<Needs> {
    link.check().ok()?;
    let (up, down) = (link.up_bytes_per_sec(), link.down_bytes_per_sec());
    let phase_a_secs = traffic.scatter_up as f64 / up
        + traffic.reduce_down as f64 / down
        + traffic.requests_a as f64 * link.rtt_secs;
    let phase_b_secs = traffic.reduce_up as f64 / up
        + traffic.assemble_down as f64 / down
        + traffic.requests_b as f64 * link.rtt_secs;
    let blocks_a = (link.safety * phase_a_secs / link.block_secs).ceil();
    let blocks_b = (link.safety * phase_b_secs / link.block_secs).ceil();
    let longest = blocks_a.max(blocks_b);
    if !(longest.is_finite() && longest < 1e15) {
        return None;
    }
    let (blocks_a, blocks_b) = (blocks_a as u64, blocks_b as u64);
    // Each phase is about M/2 (integer quarters): start a little below and walk up.
    let mut merge_blocks = (2 * blocks_a.max(blocks_b)).saturating_sub(4).max(1);
    loop {
        let t = Schedule::new(&SwarmSpec {
            epoch_blocks: merge_blocks + 1,
            merge_blocks,
            ..SwarmSpec::default()
        })
        .timeline(Epoch(1));
        if t.reduce_end - t.drain_end >= blocks_a && t.assemble_end - t.reduce_end >= blocks_b {
            break;
        }
        merge_blocks += 1;
    }
    let epoch_blocks = ((merge_blocks as f64 / link.merge_share).ceil() as u64)
        .max(merge_blocks + 1)
        .max(4);
    Some(Needs {
        phase_a_secs,
        phase_b_secs,
        merge_blocks,
        epoch_blocks,
    })
}

#[cfg(test)]
mod tests {
    use tch::Device;

    use super::*;
    use crate::Stage;

    const LOCAL: &str = include_str!("../../specs/local.toml");

    fn variant(from: &str, to: &str) -> RunSpec {
        assert!(LOCAL.contains(from), "{from}");
        RunSpec::from_toml(&LOCAL.replace(from, to)).unwrap()
    }

    #[test]
    fn counted_parameters_are_the_built_stages() {
        let specs = [
            RunSpec::from_toml(LOCAL).unwrap(),
            // Multi-head attention (as many kv heads as heads).
            variant("n_kv_heads = 2", "n_kv_heads = 4"),
            // One kv head, no bottleneck.
            edit(variant("n_kv_heads = 2", "n_kv_heads = 1"), |s| {
                s.boundary.bottleneck = 0;
            }),
            // Bottleneck on, no token embedding on later stages.
            variant("token_embedding = true", "token_embedding = false"),
            // Neither.
            edit(variant("bottleneck = 7\n", ""), |s| {
                s.boundary.token_embedding = false;
            }),
            // One stage: embedding, layers and head, no boundary.
            variant(
                "[[stages]]\nlayers = [0, 2]\n[[stages]]\nlayers = [2, 4]\n[[stages]]\nlayers = [4, 6]",
                "[[stages]]\nlayers = [0, 6]",
            ),
        ];
        for spec in &specs {
            spec.validate().unwrap();
            for i in 0..spec.stages.len() {
                let built = Stage::new(spec, i, Device::Cpu).unwrap().parameter_count();
                let counted = stage_parameters(spec, i).unwrap().total();
                assert_eq!(counted, built as u64, "stage {i} of {:?}", spec.boundary);
            }
            assert!(stage_parameters(spec, spec.stages.len()).is_none());
        }
    }

    fn edit(mut spec: RunSpec, f: impl FnOnce(&mut RunSpec)) -> RunSpec {
        f(&mut spec);
        spec
    }

    #[test]
    fn memory_is_state_per_parameter_plus_one_micro_batch() {
        let spec = RunSpec::from_toml(LOCAL).unwrap();
        let m = StageMemory::of(&spec, 1).unwrap();
        let p = stage_parameters(&spec, 1).unwrap().total();
        assert_eq!(m.state(), 16 * p);
        // d 256, kv 2·64, ffn 704: 9·256 + 2·128 + 4·704 = 5376 values a layer; two layers, the
        // token embedding (256), the decoder (4·256 + 7) and the encoder (4·256 + 21).
        let per_token = 2 * 5376 + 256 + (1024 + 7) + (1024 + 21);
        assert_eq!(activation_values_per_token(&spec, 1), Some(per_token));
        assert_eq!(m.activations, per_token * 128 * 4);
        // The last stage keeps the logits and log-probabilities: 2·256 values, and its norm.
        let last = 2 * 5376 + 256 + (1024 + 7) + 2 * 256 + 2 * 256;
        assert_eq!(activation_values_per_token(&spec, 2), Some(last));
    }

    #[test]
    fn merge_traffic_follows_the_butterfly() {
        // 1.8M weights among 18 miners: shards of 100,000 fp32 weights, 400 kB.
        let t = MergeTraffic::of(1_800_000, 18);
        assert_eq!(t.shard_bytes, 400_000);
        assert_eq!(t.reduces, 2);
        assert_eq!(t.scatter_up, 18 * 400_000);
        assert_eq!(t.reduce_down, 2 * 17 * 400_000);
        assert_eq!(t.requests_a, 18 + 34);
        assert_eq!(t.reduce_up, 2 * 400_000);
        assert_eq!(t.assemble_down, 36 * 400_000);
        assert_eq!(t.requests_b, 2 + 36);
        assert_eq!((t.up(), t.down()), (8_000_000, 28_000_000));
        // Alone: one shard, reduced and read back by its one reducer.
        let t = MergeTraffic::of(10, 1);
        assert_eq!(
            (t.scatter_up, t.reduce_down, t.reduce_up, t.assemble_down),
            (40, 0, 40, 40)
        );
        // Uneven shards are sized by the largest.
        assert_eq!(MergeTraffic::of(10, 3).shard_bytes, 16);
    }

    #[test]
    fn the_formula_by_hand() {
        let traffic = MergeTraffic::of(1_800_000, 18);
        // 1 MB/s up, 10 MB/s down, no round trips, 1 s blocks.
        let link = Link {
            up_mbit: 8.0,
            down_mbit: 80.0,
            rtt_secs: 0.0,
            block_secs: 1.0,
            safety: 1.5,
            merge_share: 1.0 / 6.0,
        };
        let n = windows_needed(&traffic, &link).unwrap();
        // A: 7.2 MB up at 1 MB/s + 13.6 MB down at 10 MB/s = 8.56 s; B: 0.8 + 1.44 = 2.24 s.
        assert!((n.phase_a_secs - 8.56).abs() < 1e-9, "{n:?}");
        assert!((n.phase_b_secs - 2.24).abs() < 1e-9, "{n:?}");
        // 1.5 × 8.56 = 12.84 s: 13 blocks from drain_end (M/4) to reduce_end (3M/4): M = 26
        // gives 19 − 6 = 13 (M = 25 gives 18 − 6 = 12). The epoch: 6 × 26.
        assert_eq!((n.merge_blocks, n.epoch_blocks), (26, 156));
        // Round trips: 52 requests of 0.1 s add 5.2 s to A: 1.5 × 13.76 = 20.64 s, 21 blocks,
        // M = 42 (31 − 10 = 21; 41 gives 30 − 10 = 20).
        let slow = Link {
            rtt_secs: 0.1,
            ..link
        };
        let n = windows_needed(&traffic, &slow).unwrap();
        assert!((n.phase_a_secs - 13.76).abs() < 1e-9, "{n:?}");
        assert_eq!((n.merge_blocks, n.epoch_blocks), (42, 252));
        // Twice the blocks' length, half the blocks.
        let n = windows_needed(
            &traffic,
            &Link {
                block_secs: 2.0,
                ..slow
            },
        )
        .unwrap();
        assert_eq!(n.merge_blocks, 22);
        // A tiny merge still needs a window the schedule can cut, and an epoch longer than it.
        let n = windows_needed(&MergeTraffic::of(1, 1), &link).unwrap();
        assert!(n.merge_blocks >= 1 && n.epoch_blocks > n.merge_blocks && n.epoch_blocks >= 4);
        // Unusable links are refused, not divided by.
        for bad in [
            Link {
                up_mbit: 0.0,
                ..link
            },
            Link {
                down_mbit: f64::NAN,
                ..link
            },
            Link {
                rtt_secs: -1.0,
                ..link
            },
            Link {
                merge_share: 1.0,
                ..link
            },
        ] {
            assert!(windows_needed(&traffic, &bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn every_window_found_is_the_least_that_fits() {
        let link = Link::default();
        for params in [0u64, 1, 1000, 10_000_000, 600_000_000] {
            for miners in [1, 2, 3, 18] {
                let traffic = MergeTraffic::of(params, miners);
                let n = windows_needed(&traffic, &link).unwrap();
                let fits = |m: u64| {
                    let t = Schedule::new(&SwarmSpec {
                        epoch_blocks: m + 1,
                        merge_blocks: m,
                        ..SwarmSpec::default()
                    })
                    .timeline(Epoch(1));
                    let secs = |blocks: u64| blocks as f64 * link.block_secs;
                    secs(t.reduce_end - t.drain_end) >= link.safety * n.phase_a_secs
                        && secs(t.assemble_end - t.reduce_end) >= link.safety * n.phase_b_secs
                };
                assert!(fits(n.merge_blocks), "{params} {miners}: {n:?}");
                assert!(
                    n.merge_blocks == 1 || !fits(n.merge_blocks - 1),
                    "{params} {miners}: {n:?}"
                );
            }
        }
    }
}
