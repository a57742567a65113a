//! The run spec: everything that defines a training run, read from TOML.
//!
//! Every participant derives what it does from the run spec, the block height
//! and the metagraph, so the spec must be unambiguous and validated up front:
//! [`RunSpec::from_toml`] rejects unknown fields and [`RunSpec::validate`]
//! checks the relations between fields (stage ranges tile the layers, heads
//! divide evenly, ...), naming the offending field in the error.
//!
//! ```
//! let spec = sliver_common::RunSpec::from_toml(r#"
//!     name = "tiny"
//!     seed = 7
//!     [model]
//!     vocab_size = 256
//!     d_model = 64
//!     n_layers = 2
//!     n_heads = 4
//!     n_kv_heads = 2
//!     ffn_hidden = 128
//!     seq_len = 32
//!     [[stages]]
//!     layers = [0, 1]
//!     [[stages]]
//!     layers = [1, 2]
//!     [boundary]
//!     bottleneck = 8
//!     codec = "int8"
//!     [data]
//!     sources = ["texts/"]
//! "#).unwrap();
//! assert_eq!(spec.stages.len(), 2);
//! assert_eq!(spec.boundary.wire_dim(spec.model.d_model), 8);
//! ```

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::codec::{CodecKind, WireCodec};
use crate::data::DataSpec;

/// A run spec could not be read or is inconsistent.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SpecError {
    /// The file could not be read.
    #[error("reading run spec {path}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The TOML is malformed, has an unknown field or a value of the wrong type.
    #[error("parsing run spec{}: {source}", path.as_deref().map(|p| format!(" {p}")).unwrap_or_default())]
    Parse {
        /// The file, when read from one.
        path: Option<String>,
        /// The parser's error, which names the line and key.
        #[source]
        source: toml::de::Error,
    },
    /// A field holds a value that is not allowed on its own or next to others.
    #[error("invalid run spec: {field} {reason}")]
    Invalid {
        /// Dotted path of the offending field, e.g. `model.n_kv_heads`.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
}

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> SpecError {
    SpecError::Invalid {
        field: field.into(),
        reason: reason.into(),
    }
}

/// A whole training run: model, stages, boundary compression, optimizer and data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunSpec {
    /// Run identifier; part of every storage key and of the sample seed.
    pub name: String,
    /// Seed for weight initialisation and sample draws.
    #[serde(default)]
    pub seed: u64,
    /// Model dimensions.
    pub model: ModelSpec,
    /// Pipeline stages in order; their layer ranges must tile `0..model.n_layers`.
    pub stages: Vec<StageSpec>,
    /// What crosses each stage boundary.
    #[serde(default)]
    pub boundary: BoundarySpec,
    /// The per-stage optimizer.
    #[serde(default)]
    pub optimizer: OptimizerSpec,
    /// Where the training text comes from.
    pub data: DataSpec,
    /// How the swarm keeps time and merges (ignored by the single-process trainer).
    #[serde(default)]
    pub swarm: SwarmSpec,
    /// How validators spot-check miners.
    #[serde(default)]
    pub validation: ValidationSpec,
}

/// Spot checks: how many artifacts a validator recomputes per miner and epoch, and how close a
/// recomputation must come to what the miner uploaded.
///
/// An honest recomputation differs from the miner's only by floating-point order (thread counts,
/// kernels) and by the rare rounding step of the wire codec that such a difference tips over;
/// the defaults leave two orders of magnitude over what was measured between CPUs on the local
/// subnet (bench/results/incentives.md) for CPU against CUDA, and stay far inside the smallest
/// cheat played (outputs x 1.1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValidationSpec {
    /// Artifacts recomputed per miner and epoch (0 turns spot checks off).
    #[serde(default = "default_spot_checks")]
    pub spot_checks: usize,
    /// Least cosine similarity between the uploaded and the recomputed tensor.
    #[serde(default = "default_min_cosine")]
    pub min_cosine: f64,
    /// Largest |norm(uploaded) / norm(recomputed) - 1|.
    #[serde(default = "default_max_norm_error")]
    pub max_norm_error: f64,
    /// Largest |claimed loss - recomputed loss| / recomputed loss (the last stage's gradients).
    #[serde(default = "default_max_loss_error")]
    pub max_loss_error: f64,
    /// How far claimed weights may lie from the epoch's starting (merged) weights, as a multiple
    /// of the most AdamW can move one weight in the optimizer steps the miner's artifacts allow
    /// ([`OptimizerSpec::max_step_change`] per step): weights no epoch of local steps reaches
    /// are not the miner's.
    #[serde(default = "default_weight_drift_margin")]
    pub weight_drift_margin: f64,
    /// Artifacts of each kind a validator's audit reads in full per miner and epoch. A miner
    /// that lists more is counted from its listing: each artifact not read counts as the share
    /// of the read ones that verified, so the audit's reads grow with miners, not with
    /// artifacts, and garbage listed among real work gains nothing in expectation (the reads
    /// are chosen from the validator's randomness after the artifacts were uploaded).
    #[serde(default = "default_audit_reads")]
    pub audit_reads: usize,
}

fn default_spot_checks() -> usize {
    2
}
fn default_min_cosine() -> f64 {
    0.999
}
fn default_max_norm_error() -> f64 {
    0.01
}
fn default_max_loss_error() -> f64 {
    0.001
}
fn default_weight_drift_margin() -> f64 {
    2.0
}
fn default_audit_reads() -> usize {
    1024
}

impl Default for ValidationSpec {
    fn default() -> Self {
        Self {
            spot_checks: default_spot_checks(),
            min_cosine: default_min_cosine(),
            max_norm_error: default_max_norm_error(),
            max_loss_error: default_max_loss_error(),
            weight_drift_margin: default_weight_drift_margin(),
            audit_reads: default_audit_reads(),
        }
    }
}

/// Time, flow control and merging of a run trained by many miners.
///
/// The chain is the clock: epoch `e` spans blocks `[e * epoch_blocks, (e + 1) * epoch_blocks)`.
/// Its last `merge_blocks` blocks are the merge window: no new samples start, in-flight ones
/// drain, and every stage's miners average their weights (butterfly all-reduce through storage).
/// Every deadline derived from these two lengths is in [`crate::schedule`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SwarmSpec {
    /// Blocks per epoch.
    #[serde(default = "default_epoch_blocks")]
    pub epoch_blocks: u64,
    /// Blocks at the end of each epoch reserved for draining and the merge.
    #[serde(default = "default_merge_blocks")]
    pub merge_blocks: u64,
    /// Samples a stage-0 miner keeps in flight (forwarded, gradient not yet back).
    #[serde(default = "default_window")]
    pub window: usize,
    /// Rounds of `window` samples a stage-0 miner keeps in flight: 2 forwards the next round
    /// while the last one's gradients come back (busier miners, gradients up to a step late);
    /// 1 waits for them (no delay, idle while the pipeline drains).
    #[serde(default = "default_rounds")]
    pub rounds: usize,
    /// Seconds after which a sample whose gradient has not come back is dropped.
    #[serde(default = "default_sample_timeout")]
    pub sample_timeout_secs: u64,
    /// Relative tolerance between the two reductions of a merge shard (max |a-b| / max |a|).
    #[serde(default = "default_twin_tolerance")]
    pub twin_tolerance: f64,
    /// How far a miner's share of its stage's samples may follow its declared work rate from
    /// its stage's typical (median) miner, each way: a miner this many times slower still gets
    /// this fraction of a typical share, and a paid one at most this many times it
    /// (`assignment::weights`).
    #[serde(default = "default_max_rate_ratio")]
    pub max_rate_ratio: f64,
}

fn default_epoch_blocks() -> u64 {
    240
}
fn default_merge_blocks() -> u64 {
    40
}
fn default_window() -> usize {
    4
}
fn default_rounds() -> usize {
    2
}
fn default_sample_timeout() -> u64 {
    30
}
fn default_twin_tolerance() -> f64 {
    1e-6
}
fn default_max_rate_ratio() -> f64 {
    8.0
}

impl Default for SwarmSpec {
    fn default() -> Self {
        Self {
            epoch_blocks: default_epoch_blocks(),
            merge_blocks: default_merge_blocks(),
            window: default_window(),
            rounds: default_rounds(),
            sample_timeout_secs: default_sample_timeout(),
            twin_tolerance: default_twin_tolerance(),
            max_rate_ratio: default_max_rate_ratio(),
        }
    }
}

/// Dimensions of the Llama-style decoder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    /// Vocabulary size; must cover the tokenizer's.
    pub vocab_size: usize,
    /// Width of the residual stream.
    pub d_model: usize,
    /// Number of transformer blocks.
    pub n_layers: usize,
    /// Attention (query) heads.
    pub n_heads: usize,
    /// Key/value heads (grouped-query attention); must divide `n_heads`.
    pub n_kv_heads: usize,
    /// Hidden width of the SwiGLU feed-forward.
    pub ffn_hidden: usize,
    /// Tokens per sample.
    pub seq_len: usize,
    /// Rotary base frequency.
    #[serde(default = "default_rope_theta")]
    pub rope_theta: f64,
    /// RMSNorm epsilon.
    #[serde(default = "default_norm_eps")]
    pub norm_eps: f64,
}

fn default_rope_theta() -> f64 {
    10_000.0
}
fn default_norm_eps() -> f64 {
    1e-5
}

impl ModelSpec {
    /// Width of one attention head.
    pub fn head_dim(&self) -> usize {
        self.d_model / self.n_heads.max(1)
    }
}

/// One pipeline stage: the half-open range of layers one miner owns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageSpec {
    /// `[start, end)` layer indices.
    pub layers: [usize; 2],
}

impl StageSpec {
    /// The layer indices of this stage.
    pub fn range(&self) -> std::ops::Range<usize> {
        self.layers[0]..self.layers[1]
    }
}

/// Compression at every stage boundary.
///
/// With `bottleneck = 0` the full residual stream crosses (no learned
/// compression); otherwise each stage ends with a down-projection to
/// `bottleneck` dimensions and the next one starts with the matching
/// up-projection, both keeping a low-rank identity path (ResBM). Whatever
/// crosses is then serialized with `codec` (activations) and `grad_codec`
/// (gradients, same shape).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BoundarySpec {
    /// Width of the learned bottleneck; 0 turns it off.
    #[serde(default)]
    pub bottleneck: usize,
    /// Wire codec for activations.
    #[serde(default = "default_codec")]
    pub codec: CodecKind,
    /// Wire codec for gradients; defaults to `codec`.
    #[serde(default)]
    pub grad_codec: Option<CodecKind>,
    /// Values per quantization scale for the int8/uint8/int4/int4log/int2/int2log/fp8 codecs; 0 means one
    /// scale per row of the last dimension, that is one per token. A row must not span
    /// tokens ([`RunSpec::validate`] refuses it): a shared scale depends on every value of
    /// its row, so a token's decoded activation would depend on the tokens after it, and
    /// the next stage could read the future it is trained to predict.
    #[serde(default)]
    pub codec_row: usize,
    /// Values per quantization scale for gradients; defaults to `codec_row`. Unlike
    /// activations, gradients may share a scale across tokens: they only reach the sending
    /// stage's weight updates, never a prediction, and each is already a function of every
    /// later token's loss. A shared scale costs fewer bytes (a one-byte scale for three
    /// tokens of a 7-wide boundary) and rounds a token's small gradients more coarsely.
    #[serde(default)]
    pub grad_codec_row: Option<usize>,
    /// Give every stage after the first its own token embedding, so the
    /// boundary only has to carry context. Tokens are not sent: every stage
    /// reads the sample by its id from the shared data set, as the last stage
    /// must anyway for its targets.
    #[serde(default)]
    pub token_embedding: bool,
    /// With `token_embedding`: each stage subtracts its own token embedding from
    /// the residual stream before its encoder, so the boundary carries only what
    /// the stage's layers computed. The next stage adds its own embedding back; the
    /// bottleneck's few values are not spent re-encoding the current token.
    #[serde(default)]
    pub context_only: bool,
}

fn default_codec() -> CodecKind {
    CodecKind::Fp32
}

impl Default for BoundarySpec {
    fn default() -> Self {
        Self {
            bottleneck: 0,
            codec: CodecKind::Fp32,
            grad_codec: None,
            codec_row: 0,
            grad_codec_row: None,
            token_embedding: false,
            context_only: false,
        }
    }
}

impl BoundarySpec {
    /// Width of what crosses a boundary for a model of width `d_model`.
    pub fn wire_dim(&self, d_model: usize) -> usize {
        if self.bottleneck == 0 {
            d_model
        } else {
            self.bottleneck
        }
    }

    /// The codec used for gradients.
    pub fn grad_codec(&self) -> CodecKind {
        self.grad_codec.unwrap_or(self.codec)
    }

    /// Values per quantization scale for gradients (see [`grad_codec_row`](Self::grad_codec_row)).
    pub fn grad_row(&self) -> usize {
        self.grad_codec_row.unwrap_or(self.codec_row)
    }

    /// Whether one activation scale would cover values of more than one token, for a
    /// model of width `d_model`: what [`RunSpec::validate`] refuses (see
    /// [`codec_row`](Self::codec_row)). Gradients' scales may span tokens.
    pub fn scales_span_tokens(&self, d_model: usize) -> bool {
        self.codec.has_scales()
            && self.codec_row != 0
            && !self.wire_dim(d_model).is_multiple_of(self.codec_row)
    }

    /// Whether the sending stage scales each token's wire vector to unit RMS before it is
    /// encoded: what a codec without scales needs ([`CodecKind::Int4Unit`]). The scaling is
    /// part of the model, so its gradient is exact.
    pub fn unit_rms(&self) -> bool {
        self.codec == CodecKind::Int4Unit
    }
}

/// AdamW with warm-up, cosine decay and gradient clipping, run by each stage on its own weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OptimizerSpec {
    /// Peak learning rate.
    #[serde(default = "default_lr")]
    pub lr: f64,
    /// Final learning rate as a fraction of `lr`.
    #[serde(default = "default_min_lr_ratio")]
    pub min_lr_ratio: f64,
    /// Linear warm-up steps.
    #[serde(default = "default_warmup")]
    pub warmup_steps: u64,
    /// Decoupled weight decay on matrices (not on norms or embeddings).
    #[serde(default = "default_wd")]
    pub weight_decay: f64,
    /// Adam β1.
    #[serde(default = "default_beta1")]
    pub beta1: f64,
    /// Adam β2.
    #[serde(default = "default_beta2")]
    pub beta2: f64,
    /// Clip each stage's gradient to this global L2 norm; 0 disables.
    #[serde(default = "default_clip")]
    pub grad_clip: f64,
    /// Samples per micro-batch.
    #[serde(default = "default_batch")]
    pub batch_size: usize,
    /// Backward passes accumulated per optimizer step.
    #[serde(default = "default_accumulate")]
    pub accumulate: usize,
}

fn default_lr() -> f64 {
    3e-3
}
fn default_min_lr_ratio() -> f64 {
    0.1
}
fn default_warmup() -> u64 {
    20
}
fn default_wd() -> f64 {
    0.1
}
fn default_beta1() -> f64 {
    0.9
}
fn default_beta2() -> f64 {
    0.95
}
fn default_clip() -> f64 {
    1.0
}
fn default_batch() -> usize {
    16
}
fn default_accumulate() -> usize {
    1
}

impl Default for OptimizerSpec {
    fn default() -> Self {
        Self {
            lr: default_lr(),
            min_lr_ratio: default_min_lr_ratio(),
            warmup_steps: default_warmup(),
            weight_decay: default_wd(),
            beta1: default_beta1(),
            beta2: default_beta2(),
            grad_clip: default_clip(),
            batch_size: default_batch(),
            accumulate: default_accumulate(),
        }
    }
}

impl OptimizerSpec {
    /// The most one AdamW step can change one weight whose magnitude is at most `w_max`: Adam's
    /// normalised update is bounded by `max(1, (1 - β1) / √(1 - β2))` learning rates (Kingma and
    /// Ba, section 2.1), and the decoupled decay adds `lr · weight_decay · |w|`.
    pub fn max_step_change(&self, w_max: f64) -> f64 {
        let adam = ((1.0 - self.beta1) / (1.0 - self.beta2).max(1e-12).sqrt()).max(1.0);
        self.lr * (adam + self.weight_decay * w_max.abs())
    }

    /// Learning rate at optimizer step `step` of `total` (warm-up, then cosine to `min_lr_ratio`).
    pub fn lr_at(&self, step: u64, total: u64) -> f64 {
        if step < self.warmup_steps {
            return self.lr * (step + 1) as f64 / self.warmup_steps as f64;
        }
        let span = total.saturating_sub(self.warmup_steps).max(1) as f64;
        let progress = ((step - self.warmup_steps) as f64 / span).min(1.0);
        let cosine = 0.5 * (1.0 + (std::f64::consts::PI * progress).cos());
        self.lr * (self.min_lr_ratio + (1.0 - self.min_lr_ratio) * cosine)
    }
}

impl RunSpec {
    /// The shape of every boundary tensor on the wire, activation or gradient:
    /// `[batch, seq, wire_dim]`.
    pub fn wire_dims(&self) -> [i64; 3] {
        [
            self.optimizer.batch_size as i64,
            self.model.seq_len as i64,
            self.boundary.wire_dim(self.model.d_model) as i64,
        ]
    }

    /// The codec of activations on the wire.
    pub fn activation_codec(&self) -> WireCodec {
        WireCodec::new(self.boundary.codec, self.boundary.codec_row)
    }

    /// The codec of gradients on the wire.
    pub fn gradient_codec(&self) -> WireCodec {
        WireCodec::new(self.boundary.grad_codec(), self.boundary.grad_row())
    }

    /// Parses and validates a run spec from TOML text.
    ///
    /// # Errors
    /// [`SpecError::Parse`] for malformed TOML, unknown fields or wrong types;
    /// [`SpecError::Invalid`] for inconsistent values.
    pub fn from_toml(text: &str) -> Result<Self, SpecError> {
        let spec: RunSpec =
            toml::from_str(text).map_err(|source| SpecError::Parse { path: None, source })?;
        spec.validate()?;
        Ok(spec)
    }

    /// Reads, parses and validates a run spec file.
    ///
    /// # Errors
    /// As [`RunSpec::from_toml`], plus [`SpecError::Io`] when the file cannot be read.
    pub fn load(path: &Path) -> Result<Self, SpecError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| SpecError::Io {
            path: shown.clone(),
            source,
        })?;
        let spec: RunSpec = toml::from_str(&text).map_err(|source| SpecError::Parse {
            path: Some(shown),
            source,
        })?;
        spec.validate()?;
        Ok(spec)
    }

    /// Serializes the spec back to TOML.
    #[allow(
        clippy::expect_used,
        reason = "every field is a plain TOML value: serialisation cannot fail"
    )]
    pub fn to_toml(&self) -> String {
        // Every field is a plain TOML value; serialization cannot fail.
        toml::to_string(self).expect("a RunSpec always serializes to TOML")
    }

    /// BLAKE3 of the canonical TOML ([`RunSpec::to_toml`]): what the owner announces, what
    /// every artifact's header names, and what a checkpoint is tied to.
    pub fn hash(&self) -> [u8; 32] {
        *blake3::hash(self.to_toml().as_bytes()).as_bytes()
    }

    /// Checks the relations between fields.
    ///
    /// # Errors
    /// [`SpecError::Invalid`] naming the first offending field.
    pub fn validate(&self) -> Result<(), SpecError> {
        self.validate_name()?;
        self.validate_model()?;
        self.validate_stages()?;
        self.validate_boundary()?;
        self.validate_optimizer()?;
        self.validate_swarm()?;
        self.validate_validation()?;
        self.validate_data()
    }

    /// `name`: not empty, and only characters safe in file and object names.
    fn validate_name(&self) -> Result<(), SpecError> {
        if self.name.trim().is_empty() {
            return Err(invalid("name", "must not be empty"));
        }
        if !self
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            return Err(invalid(
                "name",
                format!(
                    "may hold only ASCII letters, digits, '-', '_' and '.', got {:?}",
                    self.name
                ),
            ));
        }
        Ok(())
    }

    /// `[model]`: every size at least 1, heads dividing the width and each other, an even head
    /// width, and sane rotary and norm constants.
    fn validate_model(&self) -> Result<(), SpecError> {
        let m = &self.model;
        for (field, value) in [
            ("model.vocab_size", m.vocab_size),
            ("model.d_model", m.d_model),
            ("model.n_layers", m.n_layers),
            ("model.n_heads", m.n_heads),
            ("model.n_kv_heads", m.n_kv_heads),
            ("model.ffn_hidden", m.ffn_hidden),
            ("model.seq_len", m.seq_len),
        ] {
            if value == 0 {
                return Err(invalid(field, "must be at least 1, got 0"));
            }
        }
        if !m.d_model.is_multiple_of(m.n_heads) {
            return Err(invalid(
                "model.n_heads",
                format!(
                    "must divide model.d_model ({}), got {}",
                    m.d_model, m.n_heads
                ),
            ));
        }
        if !m.n_heads.is_multiple_of(m.n_kv_heads) {
            return Err(invalid(
                "model.n_kv_heads",
                format!(
                    "must divide model.n_heads ({}), got {}",
                    m.n_heads, m.n_kv_heads
                ),
            ));
        }
        if !m.head_dim().is_multiple_of(2) {
            return Err(invalid(
                "model.n_heads",
                format!(
                    "must leave an even head width for rotary positions, got {}",
                    m.head_dim()
                ),
            ));
        }
        if m.rope_theta.is_nan() || m.rope_theta <= 1.0 {
            return Err(invalid(
                "model.rope_theta",
                format!("must be above 1, got {}", m.rope_theta),
            ));
        }
        if m.norm_eps.is_nan() || m.norm_eps <= 0.0 {
            return Err(invalid(
                "model.norm_eps",
                format!("must be positive, got {}", m.norm_eps),
            ));
        }
        Ok(())
    }

    /// `[[stages]]`: at least one, tiling `0..model.n_layers` without gap or overlap.
    fn validate_stages(&self) -> Result<(), SpecError> {
        let m = &self.model;
        if self.stages.is_empty() {
            return Err(invalid("stages", "must list at least one stage"));
        }
        let mut next = 0;
        for (i, stage) in self.stages.iter().enumerate() {
            let [start, end] = stage.layers;
            if start != next {
                return Err(invalid(
                    format!("stages[{i}].layers"),
                    format!(
                        "must start at layer {next} so the stages tile 0..{} without gap or overlap, got [{start}, {end}]",
                        m.n_layers
                    ),
                ));
            }
            if end <= start {
                return Err(invalid(
                    format!("stages[{i}].layers"),
                    format!("must hold at least one layer, got [{start}, {end}]"),
                ));
            }
            next = end;
        }
        if next != m.n_layers {
            return Err(invalid(
                format!("stages[{}].layers", self.stages.len() - 1),
                format!("must end at model.n_layers ({}), got {next}", m.n_layers),
            ));
        }
        Ok(())
    }

    /// `[boundary]`: the bottleneck no wider than the model; a context-only boundary
    /// only where the next stage has the tokens' embedding to add back.
    fn validate_boundary(&self) -> Result<(), SpecError> {
        let m = &self.model;
        let b = &self.boundary;
        if b.context_only && !b.token_embedding {
            return Err(invalid(
                "boundary.context_only",
                "needs boundary.token_embedding = true: without its own embedding the next stage would never see the current token",
            ));
        }
        if b.bottleneck > m.d_model {
            return Err(invalid(
                "boundary.bottleneck",
                format!(
                    "must not exceed model.d_model ({}), got {}",
                    m.d_model, b.bottleneck
                ),
            ));
        }
        if b.scales_span_tokens(m.d_model) {
            let width = b.wire_dim(m.d_model);
            return Err(invalid(
                "boundary.codec_row",
                format!(
                    "must divide the boundary's width ({width} values per token), or be 0 for one \
                     scale per token, got {}: a scale shared by several tokens makes each \
                     token's decoded activation depend on the tokens after it, which lets the \
                     next stage read the text it is trained to predict",
                    b.codec_row
                ),
            ));
        }
        if b.unit_rms() {
            let width = b.wire_dim(m.d_model);
            if b.bottleneck == 0 {
                return Err(invalid(
                    "boundary.codec",
                    "int4unit needs boundary.bottleneck > 0: the bottleneck's encoder scales \
                     each token to unit RMS, and the full residual stream cannot lose its norm",
                ));
            }
            if b.codec_row != 0 && b.codec_row != width {
                return Err(invalid(
                    "boundary.codec_row",
                    format!(
                        "int4unit's grid covers one token's unit-RMS vector: use 0 (or \
                         {width}), got {}",
                        b.codec_row
                    ),
                ));
            }
        }
        if b.grad_codec() == CodecKind::Int4Unit {
            return Err(invalid(
                "boundary.grad_codec",
                "int4unit has no scale and gradients are not scaled to unit RMS: use a codec \
                 with scales (int4log, int4, int8, ...)",
            ));
        }
        Ok(())
    }

    /// `[optimizer]`: learning rate, schedule, betas, decay, clipping and batch sizes in range.
    fn validate_optimizer(&self) -> Result<(), SpecError> {
        let o = &self.optimizer;
        if !(o.lr > 0.0 && o.lr.is_finite()) {
            return Err(invalid(
                "optimizer.lr",
                format!("must be positive, got {}", o.lr),
            ));
        }
        if !(0.0..=1.0).contains(&o.min_lr_ratio) {
            return Err(invalid(
                "optimizer.min_lr_ratio",
                format!("must be in [0, 1], got {}", o.min_lr_ratio),
            ));
        }
        for (field, beta) in [("optimizer.beta1", o.beta1), ("optimizer.beta2", o.beta2)] {
            if !(0.0..1.0).contains(&beta) {
                return Err(invalid(field, format!("must be in [0, 1), got {beta}")));
            }
        }
        if o.weight_decay.is_nan() || o.weight_decay < 0.0 {
            return Err(invalid(
                "optimizer.weight_decay",
                format!("must not be negative, got {}", o.weight_decay),
            ));
        }
        if o.grad_clip.is_nan() || o.grad_clip < 0.0 {
            return Err(invalid(
                "optimizer.grad_clip",
                format!("must not be negative, got {}", o.grad_clip),
            ));
        }
        if o.batch_size == 0 {
            return Err(invalid("optimizer.batch_size", "must be at least 1, got 0"));
        }
        if o.accumulate == 0 {
            return Err(invalid("optimizer.accumulate", "must be at least 1, got 0"));
        }
        Ok(())
    }

    /// `[swarm]`: epoch and merge windows, sample timeout and twin tolerance in range.
    fn validate_swarm(&self) -> Result<(), SpecError> {
        let w = &self.swarm;
        if w.epoch_blocks < 4 {
            return Err(invalid(
                "swarm.epoch_blocks",
                format!("must be at least 4, got {}", w.epoch_blocks),
            ));
        }
        if w.merge_blocks == 0 || w.merge_blocks >= w.epoch_blocks {
            return Err(invalid(
                "swarm.merge_blocks",
                format!(
                    "must be in 1..swarm.epoch_blocks ({}), got {}",
                    w.epoch_blocks, w.merge_blocks
                ),
            ));
        }
        if w.window == 0 {
            return Err(invalid("swarm.window", "must be at least 1, got 0"));
        }
        if !(1..=2).contains(&w.rounds) {
            return Err(invalid(
                "swarm.rounds",
                format!("must be 1 or 2, got {}", w.rounds),
            ));
        }
        if w.sample_timeout_secs == 0 {
            return Err(invalid(
                "swarm.sample_timeout_secs",
                "must be at least 1, got 0",
            ));
        }
        if !(w.twin_tolerance >= 0.0 && w.twin_tolerance.is_finite()) {
            return Err(invalid(
                "swarm.twin_tolerance",
                format!("must be a finite number >= 0, got {}", w.twin_tolerance),
            ));
        }
        if !(1.0..=1e6).contains(&w.max_rate_ratio) {
            return Err(invalid(
                "swarm.max_rate_ratio",
                format!("must be from 1 to 1000000, got {}", w.max_rate_ratio),
            ));
        }
        Ok(())
    }

    /// `[validation]`: tolerances that are numbers in range.
    fn validate_validation(&self) -> Result<(), SpecError> {
        let v = &self.validation;
        let in_range = |field: &str, x: f64, lo: f64, hi: f64| {
            if x.is_finite() && (lo..=hi).contains(&x) {
                Ok(())
            } else {
                Err(invalid(
                    format!("validation.{field}"),
                    format!("must be a number in {lo}..={hi}, got {x}"),
                ))
            }
        };
        in_range("min_cosine", v.min_cosine, -1.0, 1.0)?;
        in_range("max_norm_error", v.max_norm_error, 0.0, 1.0)?;
        in_range("max_loss_error", v.max_loss_error, 0.0, 1.0)?;
        in_range("weight_drift_margin", v.weight_drift_margin, 1.0, 1e6)?;
        if v.spot_checks > 64 {
            return Err(invalid(
                "validation.spot_checks",
                format!("must be at most 64, got {}", v.spot_checks),
            ));
        }
        if !(1..=1_000_000).contains(&v.audit_reads) {
            return Err(invalid(
                "validation.audit_reads",
                format!("must be in 1..=1000000, got {}", v.audit_reads),
            ));
        }
        Ok(())
    }

    /// `[data]`, through [`DataSpec::validate`](crate::data::DataSpec::validate), its error
    /// reported under the field `data`.
    fn validate_data(&self) -> Result<(), SpecError> {
        self.data
            .validate()
            .map_err(|reason| invalid("data", reason.to_string()))
    }

    /// Bytes per token of the uncompressed fp32 residual stream at a boundary:
    /// the reference that compression ratios are measured against.
    pub fn fp32_boundary_bytes_per_token(&self) -> usize {
        self.model.d_model * 4
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) const TINY: &str = r#"
        name = "tiny"
        seed = 7
        [model]
        vocab_size = 256
        d_model = 32
        n_layers = 4
        n_heads = 4
        n_kv_heads = 2
        ffn_hidden = 64
        seq_len = 16
        [[stages]]
        layers = [0, 2]
        [[stages]]
        layers = [2, 4]
        [data]
        sources = ["texts"]
    "#;

    fn err_of(toml: &str) -> String {
        RunSpec::from_toml(toml)
            .expect_err("spec should be rejected")
            .to_string()
    }

    #[test]
    fn accepts_a_good_spec() {
        let spec = RunSpec::from_toml(TINY).unwrap();
        assert_eq!(spec.model.head_dim(), 8);
        assert_eq!(spec.stages[1].range(), 2..4);
        assert_eq!(spec.boundary.codec, CodecKind::Fp32);
        // Round trip through TOML keeps every field.
        assert_eq!(RunSpec::from_toml(&spec.to_toml()).unwrap(), spec);
    }

    #[test]
    fn rounds_in_flight_are_one_or_two() {
        for (rounds, ok) in [(0, false), (1, true), (2, true), (3, false)] {
            let toml = format!("{TINY}\n[swarm]\nrounds = {rounds}\n");
            match RunSpec::from_toml(&toml) {
                Ok(spec) => assert!(ok && spec.swarm.rounds == rounds),
                Err(e) => assert!(!ok && e.to_string().contains("swarm.rounds"), "{e}"),
            }
        }
    }

    #[test]
    fn rejects_stages_that_do_not_tile_the_layers() {
        let gap = TINY.replace("layers = [2, 4]", "layers = [3, 4]");
        let msg = err_of(&gap);
        assert!(
            msg.contains("stages[1].layers") && msg.contains("must start at layer 2"),
            "{msg}"
        );

        let short = TINY.replace("layers = [2, 4]", "layers = [2, 3]");
        let msg = err_of(&short);
        assert!(
            msg.contains("stages[1].layers") && msg.contains("must end at model.n_layers (4)"),
            "{msg}"
        );

        let empty = TINY
            .replace("layers = [0, 2]", "layers = [0, 0]")
            .replace("layers = [2, 4]", "layers = [0, 4]");
        let msg = err_of(&empty);
        assert!(
            msg.contains("stages[0].layers") && msg.contains("at least one layer"),
            "{msg}"
        );
    }

    #[test]
    fn rejects_zero_heads() {
        let msg = err_of(&TINY.replace("n_heads = 4", "n_heads = 0"));
        assert!(
            msg.contains("model.n_heads") && msg.contains("at least 1"),
            "{msg}"
        );
    }

    #[test]
    fn rejects_kv_heads_that_do_not_divide_heads() {
        let msg = err_of(&TINY.replace("n_kv_heads = 2", "n_kv_heads = 3"));
        assert!(
            msg.contains("model.n_kv_heads")
                && msg.contains("must divide model.n_heads (4), got 3"),
            "{msg}"
        );
    }

    #[test]
    fn rejects_unknown_codec() {
        let msg = err_of(&format!("{TINY}\n[boundary]\ncodec = \"int3\"\n"));
        assert!(
            msg.contains("unknown variant `int3`") && msg.contains("codec"),
            "{msg}"
        );
    }

    #[test]
    fn rejects_scale_rows_that_span_tokens() {
        let boundary = |row: usize| {
            format!("{TINY}\n[boundary]\nbottleneck = 8\ncodec = \"int4\"\ncodec_row = {row}\n")
        };
        for row in [0, 1, 4, 8] {
            RunSpec::from_toml(&boundary(row)).unwrap();
        }
        for row in [3, 16, 256] {
            let msg = err_of(&boundary(row));
            assert!(
                msg.contains("boundary.codec_row")
                    && msg.contains("must divide the boundary's width (8"),
                "{msg}"
            );
        }
        // fp32 has no scales: its row length is free.
        let fp32 = format!("{TINY}\n[boundary]\nbottleneck = 8\ncodec_row = 256\n");
        RunSpec::from_toml(&fp32).unwrap();
        // Gradients may share scales across tokens.
        let grads = format!(
            "{TINY}\n[boundary]\nbottleneck = 8\ncodec = \"int4\"\ngrad_codec = \"int4log\"\ngrad_codec_row = 24\n"
        );
        let spec = RunSpec::from_toml(&grads).unwrap();
        assert_eq!(
            spec.gradient_codec(),
            WireCodec::new(CodecKind::Int4Log, 24)
        );
        assert_eq!(spec.activation_codec(), WireCodec::new(CodecKind::Int4, 0));
    }

    #[test]
    fn int4unit_is_for_a_bottleneck_s_activations_only() {
        let boundary = |extra: &str| {
            format!(
                "{TINY}\n[boundary]\nbottleneck = 8\ncodec = \"int4unit\"\ngrad_codec = \"int4log\"\n{extra}"
            )
        };
        let spec = RunSpec::from_toml(&boundary("")).unwrap();
        assert!(spec.boundary.unit_rms());
        RunSpec::from_toml(&boundary("codec_row = 8\n")).unwrap();
        let msg = err_of(&boundary("codec_row = 4\n"));
        assert!(
            msg.contains("boundary.codec_row") && msg.contains("int4unit"),
            "{msg}"
        );
        let msg = err_of(&boundary("").replace("bottleneck = 8\n", ""));
        assert!(
            msg.contains("boundary.codec") && msg.contains("bottleneck"),
            "{msg}"
        );
        let msg = err_of(&boundary("").replace("grad_codec = \"int4log\"\n", ""));
        assert!(
            msg.contains("boundary.grad_codec") && msg.contains("int4unit"),
            "{msg}"
        );
    }

    #[test]
    fn rejects_unknown_fields_and_oversized_bottleneck() {
        let msg = err_of(&TINY.replace("seq_len = 16", "seq_len = 16\nseq_length = 3"));
        assert!(msg.contains("seq_length"), "{msg}");
        let msg = err_of(&format!("{TINY}\n[boundary]\nbottleneck = 64\n"));
        assert!(
            msg.contains("boundary.bottleneck") && msg.contains("d_model (32)"),
            "{msg}"
        );
        let msg = err_of(&format!("{TINY}\n[boundary]\ncontext_only = true\n"));
        assert!(
            msg.contains("boundary.context_only") && msg.contains("token_embedding"),
            "{msg}"
        );
    }

    #[test]
    fn learning_rate_warms_up_then_decays() {
        let o = OptimizerSpec {
            warmup_steps: 10,
            ..Default::default()
        };
        assert!(o.lr_at(0, 100) < o.lr_at(9, 100));
        assert!((o.lr_at(9, 100) - o.lr).abs() < 1e-12);
        assert!(o.lr_at(50, 100) < o.lr);
        assert!((o.lr_at(100, 100) - o.lr * o.min_lr_ratio).abs() < 1e-12);
    }

    mod properties {
        use proptest::prelude::*;
        use proptest::sample::Index;

        use super::super::*;

        const BASE: &str = include_str!("../../specs/local.toml");

        /// `BASE` with its `which`-th integer replaced by `n`.
        fn with_number(which: usize, n: u64) -> String {
            let bytes = BASE.as_bytes();
            let mut runs = Vec::new();
            let mut i = 0;
            while i < bytes.len() {
                if bytes[i].is_ascii_digit() {
                    let start = i;
                    while i < bytes.len() && bytes[i].is_ascii_digit() {
                        i += 1;
                    }
                    runs.push(start..i);
                } else {
                    i += 1;
                }
            }
            let r = runs[which % runs.len()].clone();
            format!("{}{n}{}", &BASE[..r.start], &BASE[r.end..])
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

            /// Corrupted spec text never panics; what parses serializes back to the same spec.
            #[test]
            fn mutated_specs_never_panic(flips in proptest::collection::vec((any::<Index>(), any::<u8>()), 0..6)) {
                let mut bytes = BASE.as_bytes().to_vec();
                for (at, v) in flips {
                    let i = at.index(bytes.len());
                    bytes[i] = v;
                }
                if let Ok(text) = std::str::from_utf8(&bytes)
                    && let Ok(spec) = RunSpec::from_toml(text)
                {
                    prop_assert_eq!(RunSpec::from_toml(&spec.to_toml()).unwrap(), spec);
                }
            }

            /// Any number in any field (overflow, zero, huge) is accepted or refused, never a panic.
            #[test]
            fn any_number_anywhere_never_panics(which in 0usize..64, n in prop_oneof![0u64..4, any::<u64>(), Just(i64::MAX as u64)]) {
                if let Ok(spec) = RunSpec::from_toml(&with_number(which, n)) {
                    let _ = spec.swarm.schedule().timeline(crate::Epoch(u64::MAX / 2));
                    let _ = spec.optimizer.lr_at(u64::MAX, u64::MAX);
                    prop_assert_eq!(RunSpec::from_toml(&spec.to_toml()).unwrap(), spec);
                }
            }
        }
    }
}
