//! [`Stage`]: the slice of the model one miner owns.
//!
//! Stage 0 owns the token embedding; the last stage owns the final norm, LM
//! head and loss. A stage that is neither reads the previous stage's
//! boundary tensor and writes its own. Forward takes its input explicitly and
//! backward starts from an explicit output gradient and returns the input
//! gradient: exactly the tensors a miner downloads and uploads.

use tch::{Device, Kind, Tensor, nn};

use super::ModelError;
use super::bottleneck::{Decoder, Encoder};
use super::init::{Component, Init};
use super::llama::{Block, INIT_STD, RmsNorm, Rotary, weight};
use crate::spec::RunSpec;

/// One micro-batch of samples: inputs and the targets shifted by one token.
#[derive(Debug)]
pub struct Batch {
    /// Token ids `[batch, seq]`, int64.
    pub inputs: Tensor,
    /// Next-token ids `[batch, seq]`, int64.
    pub targets: Tensor,
}

impl Batch {
    /// Splits `batch` rows of `seq_len + 1` tokens (row-major) into inputs and targets.
    ///
    /// # Errors
    /// [`ModelError::Shape`] when `tokens` does not hold `batch * (seq_len + 1)` ids.
    pub fn from_tokens(
        tokens: &[i64],
        batch: usize,
        seq_len: usize,
        device: Device,
    ) -> Result<Self, ModelError> {
        let (b, t) = (batch as i64, seq_len as i64);
        if tokens.len() != batch * (seq_len + 1) {
            return Err(ModelError::Shape {
                stage: 0,
                what: "batch",
                expected: vec![b, t + 1],
                got: vec![tokens.len() as i64],
            });
        }
        let all = Tensor::from_slice(tokens)
            .view([b, t + 1])
            .to_device(device);
        Ok(Self {
            inputs: all.narrow(1, 0, t),
            targets: all.narrow(1, 1, t),
        })
    }

    /// `[batch, seq]`.
    pub fn shape(&self) -> (i64, i64) {
        let s = self.inputs.size();
        (s[0], s[1])
    }
}

/// The result of [`Stage::forward`], kept for [`Stage::backward`].
#[derive(Debug)]
pub struct Forward {
    input: Option<Tensor>,
    output: Tensor,
}

impl Forward {
    /// The stage's output: the boundary tensor `[batch, seq, wire_dim]`, or the
    /// scalar mean cross-entropy for the last stage.
    pub fn output(&self) -> &Tensor {
        &self.output
    }
}

/// The layers one miner owns, with their weights.
pub struct Stage {
    index: usize,
    last: bool,
    vocab: usize,
    wire_dim: i64,
    /// Subtract this stage's token embedding before sending ([`BoundarySpec::context_only`]).
    ///
    /// [`BoundarySpec::context_only`]: crate::spec::BoundarySpec::context_only
    context_only: bool,
    vs: nn::VarStore,
    embedding: Option<Tensor>,
    decoder: Option<Decoder>,
    blocks: Vec<Block>,
    encoder: Option<Encoder>,
    head: Option<(RmsNorm, Tensor)>,
    rotary: Rotary,
}

impl std::fmt::Debug for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stage")
            .field("index", &self.index)
            .field("last", &self.last)
            .field("blocks", &self.blocks.len())
            .field("parameters", &self.parameter_count())
            .finish()
    }
}

impl Stage {
    /// Builds stage `index` of `spec` on `device`, initialised from the run seed.
    ///
    /// # Errors
    /// [`ModelError::NoSuchStage`] when `index` is out of range.
    pub fn new(spec: &RunSpec, index: usize, device: Device) -> Result<Self, ModelError> {
        let layers = spec
            .stages
            .get(index)
            .ok_or(ModelError::NoSuchStage {
                index,
                stages: spec.stages.len(),
            })?
            .range();
        Ok(Self::build(
            spec,
            index,
            index + 1 == spec.stages.len(),
            layers,
            device,
        ))
    }

    /// The whole model as one stage, with no boundaries: the monolithic baseline.
    pub fn monolithic(spec: &RunSpec, device: Device) -> Self {
        Self::build(spec, 0, true, 0..spec.model.n_layers, device)
    }

    fn build(
        spec: &RunSpec,
        index: usize,
        last: bool,
        layers: std::ops::Range<usize>,
        device: Device,
    ) -> Self {
        let cfg = &spec.model;
        let (v, d) = (cfg.vocab_size as i64, cfg.d_model as i64);
        let seed = spec.seed;
        let k = spec.boundary.bottleneck;
        let vs = nn::VarStore::new(device);
        let root = vs.root();

        let embedding = if index == 0 {
            Some(embedding(
                &root,
                "embed",
                v,
                d,
                &mut Init::new(seed, Component::Embedding),
            ))
        } else if spec.boundary.token_embedding {
            Some(embedding(
                &root,
                "stage_embed",
                v,
                d,
                &mut Init::new(seed, Component::StageEmbedding(index)),
            ))
        } else {
            None
        };
        let decoder = (index > 0 && k > 0)
            .then(|| Decoder::new(&root / "boundary_in", cfg, k, seed, index - 1));
        let blocks = layers
            .map(|i| Block::new(&root / "layers" / i, cfg, seed, i))
            .collect();
        let encoder = (!last && k > 0).then(|| {
            Encoder::new(
                &root / "boundary_out",
                cfg,
                k,
                seed,
                index,
                spec.boundary.unit_rms(),
            )
        });
        let head = last.then(|| {
            let mut init = Init::new(seed, Component::Head);
            (
                RmsNorm::new(&root / "norm", d, cfg.norm_eps),
                weight(&root, "lm_head", v, d, INIT_STD, &mut init),
            )
        });
        Self {
            index,
            last,
            vocab: cfg.vocab_size,
            wire_dim: spec.boundary.wire_dim(cfg.d_model) as i64,
            context_only: spec.boundary.context_only,
            rotary: Rotary::new(cfg, device),
            vs,
            embedding,
            decoder,
            blocks,
            encoder,
            head,
        }
    }

    /// This stage's index in the pipeline.
    pub fn index(&self) -> usize {
        self.index
    }

    /// Whether this stage computes the loss.
    pub fn is_last(&self) -> bool {
        self.last
    }

    /// The stage's weights.
    pub fn var_store(&self) -> &nn::VarStore {
        &self.vs
    }

    /// The stage's weights, mutably (to load a checkpoint or build an optimizer).
    pub fn var_store_mut(&mut self) -> &mut nn::VarStore {
        &mut self.vs
    }

    /// Number of trainable scalars.
    pub fn parameter_count(&self) -> i64 {
        self.vs
            .trainable_variables()
            .iter()
            .map(|t| t.numel() as i64)
            .sum()
    }

    /// Width of the boundary tensor this stage reads (if not stage 0) and writes (if not last).
    pub fn wire_dim(&self) -> i64 {
        self.wire_dim
    }

    /// Runs the stage. Stage 0 reads `batch.inputs` and takes `input = None`;
    /// later stages take the previous stage's boundary tensor
    /// `[batch, seq, wire_dim]`. The last stage uses `batch.targets` for the loss.
    ///
    /// Gradients are tracked unless called under [`tch::no_grad`].
    ///
    /// # Errors
    /// [`ModelError::WrongInput`] or [`ModelError::Shape`] when the input does not
    /// fit this stage, [`ModelError::Token`] for out-of-vocabulary ids.
    pub fn forward(&self, input: Option<&Tensor>, batch: &Batch) -> Result<Forward, ModelError> {
        let (b, t) = batch.shape();
        let device = self.vs.device();
        let leaf = match (self.index, input) {
            (0, None) => None,
            (0, Some(_)) => {
                return Err(ModelError::WrongInput {
                    stage: 0,
                    reason: "reads tokens, not activations",
                });
            }
            (_, None) => {
                return Err(ModelError::WrongInput {
                    stage: self.index,
                    reason: "needs the previous stage's output",
                });
            }
            (stage, Some(x)) => {
                let expected = vec![b, t, self.wire_dim];
                if x.size() != expected {
                    return Err(ModelError::Shape {
                        stage,
                        what: "input activations",
                        expected,
                        got: x.size(),
                    });
                }
                Some(
                    x.f_to_device(device)?
                        .f_to_kind(Kind::Float)?
                        .f_detach()?
                        .set_requires_grad(true),
                )
            }
        };
        let mut h = match (&leaf, &self.decoder) {
            (Some(x), Some(dec)) => Some(dec.forward(x)),
            (Some(x), None) => Some(x.shallow_clone()),
            (None, _) => None,
        };
        let mut own_embedding = None;
        if let Some(emb) = &self.embedding {
            self.check_tokens(&batch.inputs)?;
            let e = Tensor::f_embedding(emb, &batch.inputs, -1, false, false)?;
            h = Some(match h {
                Some(h) => h + &e,
                None => e.shallow_clone(),
            });
            own_embedding = Some(e);
        }
        // Stage 0 always has its embedding; later stages always have an input.
        let Some(mut h) = h else {
            return Err(ModelError::WrongInput {
                stage: self.index,
                reason: "has neither input nor embedding",
            });
        };
        for block in &self.blocks {
            h = block.forward(&h, &self.rotary);
        }
        let output = if let Some((norm, lm_head)) = &self.head {
            self.check_tokens(&batch.targets)?;
            let logits = norm.forward(&h).matmul(&lm_head.tr());
            logits
                .view([b * t, self.vocab as i64])
                .f_cross_entropy_loss::<Tensor>(
                    &batch.targets.reshape([b * t]),
                    None,
                    tch::Reduction::Mean,
                    -100,
                    0.0,
                )?
        } else {
            // A context-only boundary sends what this stage's layers added to the
            // tokens' embedding: the next stage adds its own embedding back.
            let sent = match &own_embedding {
                Some(e) if self.context_only => h - e,
                _ => h,
            };
            match &self.encoder {
                Some(enc) => enc.forward(&sent),
                None => sent,
            }
        };
        Ok(Forward {
            input: leaf,
            output,
        })
    }

    /// Back-propagates from `grad_output` (the gradient of the loss with respect
    /// to this stage's output; for the last stage, the loss's weight, `None`
    /// meaning 1), accumulating into the stage's parameter gradients. Returns
    /// the gradient with respect to the input activations, or `None` for stage 0.
    ///
    /// # Errors
    /// [`ModelError::Shape`] when `grad_output` does not match the output.
    pub fn backward(
        &self,
        fwd: Forward,
        grad_output: Option<&Tensor>,
    ) -> Result<Option<Tensor>, ModelError> {
        let out = &fwd.output;
        let weighted = match grad_output {
            None if self.last => out.shallow_clone(),
            None => {
                return Err(ModelError::WrongInput {
                    stage: self.index,
                    reason: "needs a gradient for its output",
                });
            }
            Some(g) => {
                let g = g.f_to_device(out.device())?.f_to_kind(Kind::Float)?;
                if g.size() != out.size() {
                    return Err(ModelError::Shape {
                        stage: self.index,
                        what: "output gradient",
                        expected: out.size(),
                        got: g.size(),
                    });
                }
                // d/dθ Σ(out ⊙ g) = (∂out/∂θ)ᵀ g: one backward pass from an explicit gradient.
                (out * g.detach()).f_sum(Kind::Float)?
            }
        };
        weighted.f_backward()?;
        Ok(fwd.input.map(|x| x.grad().detach().copy()))
    }

    fn check_tokens(&self, ids: &Tensor) -> Result<(), ModelError> {
        let (lo, hi) = (ids.min().int64_value(&[]), ids.max().int64_value(&[]));
        for token in [lo, hi] {
            if token < 0 || token as usize >= self.vocab {
                return Err(ModelError::Token {
                    token,
                    vocab: self.vocab,
                });
            }
        }
        Ok(())
    }
}

fn embedding(p: &nn::Path, name: &str, v: i64, d: i64, init: &mut Init) -> Tensor {
    // Embeddings are not weight-decayed (group 0); std 1 keeps the residual
    // stream's scale independent of width, as RMSNorm expects.
    p.set_group(0).var_copy(name, &init.normal(&[v, d], 1.0))
}
