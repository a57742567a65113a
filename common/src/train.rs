//! The trainer: stages run in order with real serialization between them.
//!
//! [`Trainer::pipeline`] is exactly the path miners take, in one process:
//! each stage's boundary tensor is encoded with the wire codec, the bytes are
//! counted, and the next stage decodes them; gradients come back the same
//! way. Each stage has its own AdamW and clips its own gradient, as separate
//! miners must. [`Trainer::monolithic`] is the same model as a single stage
//! with no boundary: the baseline compression is measured against.

use tch::nn::OptimizerConfig;
use tch::{Device, Kind, Tensor, nn};
use tracing::debug;

use crate::codec::{CodecError, WireCodec};
use crate::data::{Corpus, Split};
use crate::model::{Batch, ModelError, Stage};
use crate::spec::RunSpec;

/// A training or evaluation step failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrainError {
    /// A stage's forward or backward failed.
    #[error("stage {stage}")]
    Model {
        /// The stage.
        stage: usize,
        /// Why.
        #[source]
        source: ModelError,
    },
    /// A boundary tensor could not be encoded or decoded.
    #[error("{direction} at boundary {boundary}")]
    Wire {
        /// "activations" or "gradients".
        direction: &'static str,
        /// Boundary index (between stages `boundary` and `boundary + 1`).
        boundary: usize,
        /// Why.
        #[source]
        source: CodecError,
    },
    /// The loss is NaN or infinite: training diverged.
    #[error("loss is {loss} at step {step}: training diverged")]
    Diverged {
        /// Optimizer step.
        step: u64,
        /// The loss.
        loss: f64,
    },
    /// libtorch failed outside a stage (optimizer).
    #[error("optimizer: {0}")]
    Torch(#[from] tch::TchError),
    /// The training text could not be read (a sharded corpus's store or shard).
    #[error("reading the training text")]
    Data(#[from] crate::data::Error),
}

/// What one optimizer step did.
#[derive(Debug, Clone, PartialEq)]
pub struct StepReport {
    /// Optimizer step just taken (0-based).
    pub step: u64,
    /// Mean training loss over the step's micro-batches.
    pub loss: f64,
    /// Learning rate used.
    pub lr: f64,
    /// Tokens trained on.
    pub tokens: u64,
    /// Serialized bytes of activations that crossed boundaries.
    pub activation_bytes: u64,
    /// Serialized bytes of gradients that crossed boundaries.
    pub gradient_bytes: u64,
    /// Each stage's gradient norm before clipping.
    pub grad_norms: Vec<f64>,
    /// Whether clipping scaled any stage's gradient this step.
    pub clipped: bool,
    /// How much the gradient codec lost, averaged over the boundaries crossed: only
    /// when asked for ([`Trainer::measure_gradient_wire`]) and a boundary was crossed.
    pub gradient_wire: Option<WireLoss>,
}

/// What a codec's round trip did to the gradients that crossed a boundary: where a
/// boundary's cost comes from when it grows as training goes on.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct WireLoss {
    /// `‖decoded − sent‖ / ‖sent‖`.
    pub relative_error: f64,
    /// Share of the values sent that were nonzero and arrived as zero.
    pub zeroed: f64,
}

impl WireLoss {
    fn measure(sent: &Tensor, decoded: &Tensor) -> Self {
        let norm = sent.norm().double_value(&[]);
        let error = (decoded - sent).norm().double_value(&[]);
        let zeroed = decoded
            .eq(0.0)
            .logical_and(&sent.ne(0.0))
            .sum(Kind::Int64)
            .int64_value(&[]);
        Self {
            relative_error: if norm > 0.0 { error / norm } else { 0.0 },
            zeroed: zeroed as f64 / sent.numel().max(1) as f64,
        }
    }
}

/// Trains the stages of one run spec in this process.
pub struct Trainer {
    spec: RunSpec,
    stages: Vec<Stage>,
    optimizers: Vec<nn::Optimizer>,
    activations: WireCodec,
    gradients: WireCodec,
    device: Device,
    step: u64,
    total_steps: u64,
    joint_clipping: bool,
    measure_wire: bool,
}

impl Trainer {
    /// Every stage of `spec`, with the boundary codecs between them.
    ///
    /// # Errors
    /// When libtorch cannot build an optimizer.
    pub fn pipeline(spec: &RunSpec, device: Device, total_steps: u64) -> Result<Self, TrainError> {
        let stages = (0..spec.stages.len())
            .map(|i| {
                Stage::new(spec, i, device).map_err(|source| TrainError::Model { stage: i, source })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Self::with_stages(spec, stages, device, total_steps)
    }

    /// The same model as one stage, without boundaries or compression.
    ///
    /// # Errors
    /// When libtorch cannot build an optimizer.
    pub fn monolithic(
        spec: &RunSpec,
        device: Device,
        total_steps: u64,
    ) -> Result<Self, TrainError> {
        Self::with_stages(
            spec,
            vec![Stage::monolithic(spec, device)],
            device,
            total_steps,
        )
    }

    fn with_stages(
        spec: &RunSpec,
        stages: Vec<Stage>,
        device: Device,
        total_steps: u64,
    ) -> Result<Self, TrainError> {
        let optimizers = stages
            .iter()
            .map(|s| adamw(&spec.optimizer, s.var_store()))
            .collect::<Result<Vec<_>, tch::TchError>>()?;
        Ok(Self {
            spec: spec.clone(),
            stages,
            optimizers,
            activations: spec.activation_codec(),
            gradients: spec.gradient_codec(),
            device,
            step: 0,
            total_steps,
            joint_clipping: false,
            measure_wire: false,
        })
    }

    /// Clip every stage's gradients by their joint norm, as the monolithic model
    /// does, instead of each stage by its own norm (the default). A pipeline in one
    /// process can; the swarm's miners would have to exchange their norms every
    /// step. The compression benchmark uses it to measure what per-stage clipping
    /// costs.
    pub fn clip_jointly(&mut self, joint: bool) {
        self.joint_clipping = joint;
    }

    /// Measure what the gradient codec loses at every crossing
    /// ([`StepReport::gradient_wire`]). Off by default: it costs three reductions
    /// per crossing, each of which waits for the device.
    pub fn measure_gradient_wire(&mut self, measure: bool) {
        self.measure_wire = measure;
    }

    /// The stages, in pipeline order.
    pub fn stages(&self) -> &[Stage] {
        &self.stages
    }

    /// Stage `index`, mutably (to load its weights).
    ///
    /// # Panics
    /// When `index` is not a stage of this trainer.
    pub fn stage_mut(&mut self, index: usize) -> &mut Stage {
        &mut self.stages[index]
    }

    /// Optimizer steps taken so far.
    pub fn steps_done(&self) -> u64 {
        self.step
    }

    /// Sets how many optimizer steps have been taken (after loading a checkpoint).
    pub fn set_steps_done(&mut self, step: u64) {
        self.step = step;
    }

    /// Total parameters across stages.
    pub fn parameter_count(&self) -> i64 {
        self.stages.iter().map(Stage::parameter_count).sum()
    }

    /// The micro-batch with sample index `index` of `split`, as every
    /// participant would draw it.
    pub fn batch(&self, corpus: &Corpus, split: Split, index: u64) -> Result<Batch, TrainError> {
        let o = &self.spec.optimizer;
        let seq = self.spec.model.seq_len;
        let tokens = corpus.batch(split, self.spec.seed, index, o.batch_size, seq)?;
        Batch::from_tokens(&tokens, o.batch_size, seq, self.device)
            .map_err(|source| TrainError::Model { stage: 0, source })
    }

    /// Forwards `batch` through every stage, crossing each boundary as bytes.
    /// Returns each stage's [`Forward`](crate::model::Forward) and the activation bytes sent.
    fn forward_all(&self, batch: &Batch) -> Result<(Vec<crate::model::Forward>, u64), TrainError> {
        let mut fwds = Vec::with_capacity(self.stages.len());
        let mut input: Option<Tensor> = None;
        let mut bytes = 0u64;
        for stage in &self.stages {
            let i = stage.index();
            let fwd = stage
                .forward(input.as_ref(), batch)
                .map_err(|source| TrainError::Model { stage: i, source })?;
            if !stage.is_last() {
                let wire = |source| TrainError::Wire {
                    direction: "activations",
                    boundary: i,
                    source,
                };
                let msg = self.activations.encode(fwd.output()).map_err(wire)?;
                bytes += msg.len() as u64;
                input = Some(self.activations.decode(&msg, self.device).map_err(wire)?);
            }
            fwds.push(fwd);
        }
        Ok((fwds, bytes))
    }

    /// One optimizer step over `micro_batches` (usually `optimizer.accumulate` of them).
    ///
    /// # Errors
    /// A stage or codec failure, or a non-finite loss.
    pub fn step(&mut self, micro_batches: &[Batch]) -> Result<StepReport, TrainError> {
        let n = micro_batches.len().max(1) as f64;
        let weight = Tensor::from(1.0 / n).to_device(self.device);
        let (mut loss_sum, mut act_bytes, mut grad_bytes, mut tokens) = (0.0, 0u64, 0u64, 0u64);
        let (mut wire_loss, mut crossings) = (WireLoss::default(), 0u32);
        for batch in micro_batches {
            let (fwds, bytes) = self.forward_all(batch)?;
            act_bytes += bytes;
            let (b, t) = batch.shape();
            tokens += (b * t) as u64;
            let loss = fwds
                .last()
                .map(|f| f.output().double_value(&[]))
                .unwrap_or(f64::NAN);
            if !loss.is_finite() {
                return Err(TrainError::Diverged {
                    step: self.step,
                    loss,
                });
            }
            loss_sum += loss;
            // Backward from the last stage to the first, gradients crossing as bytes.
            let mut grad = Some(weight.shallow_clone());
            for (stage, fwd) in self.stages.iter().zip(fwds).rev() {
                let i = stage.index();
                let g_in = stage
                    .backward(fwd, grad.as_ref())
                    .map_err(|source| TrainError::Model { stage: i, source })?;
                grad = match g_in {
                    Some(g) => {
                        let wire = |source| TrainError::Wire {
                            direction: "gradients",
                            boundary: i - 1,
                            source,
                        };
                        let msg = self.gradients.encode(&g).map_err(wire)?;
                        grad_bytes += msg.len() as u64;
                        let decoded = self.gradients.decode(&msg, self.device).map_err(wire)?;
                        if self.measure_wire {
                            let loss = WireLoss::measure(&g, &decoded);
                            wire_loss.relative_error += loss.relative_error;
                            wire_loss.zeroed += loss.zeroed;
                            crossings += 1;
                        }
                        Some(decoded)
                    }
                    None => None,
                };
            }
        }

        let lr = self.spec.optimizer.lr_at(self.step, self.total_steps);
        let clip = self.spec.optimizer.grad_clip;
        let clipping = clip > 0.0;
        let (grad_norms, clipped): (Vec<f64>, bool) = if self.joint_clipping {
            let norms: Vec<f64> = self
                .stages
                .iter()
                .map(|s| clip_grad_norm(s.var_store(), 0.0))
                .collect();
            let joint = norms.iter().map(|n| n * n).sum::<f64>().sqrt();
            let clipped = clipping && joint > clip;
            if clipped {
                for stage in &self.stages {
                    scale_grads(stage.var_store(), clip / (joint + 1e-6));
                }
            }
            (norms, clipped)
        } else {
            let norms: Vec<f64> = self
                .stages
                .iter()
                .map(|s| clip_grad_norm(s.var_store(), clip))
                .collect();
            let clipped = clipping && norms.iter().any(|&n| n > clip);
            (norms, clipped)
        };
        for opt in &mut self.optimizers {
            opt.set_lr(lr);
            opt.step();
            opt.zero_grad();
        }
        let report = StepReport {
            step: self.step,
            loss: loss_sum / n,
            lr,
            tokens,
            activation_bytes: act_bytes,
            gradient_bytes: grad_bytes,
            grad_norms,
            clipped,
            gradient_wire: (crossings > 0).then(|| WireLoss {
                relative_error: wire_loss.relative_error / f64::from(crossings),
                zeroed: wire_loss.zeroed / f64::from(crossings),
            }),
        };
        debug!(step = report.step, loss = report.loss, lr, "step");
        self.step += 1;
        Ok(report)
    }

    /// Mean loss over `batches` held-out micro-batches (sample indices `0..batches`
    /// of the eval split), through the same wire codecs, without gradients.
    ///
    /// # Errors
    /// A stage or codec failure.
    pub fn eval(&self, corpus: &Corpus, batches: u64) -> Result<f64, TrainError> {
        tch::no_grad(|| {
            let mut total = 0.0;
            for index in 0..batches {
                let batch = self.batch(corpus, Split::Eval, index)?;
                let (fwds, _) = self.forward_all(&batch)?;
                total += fwds
                    .last()
                    .map(|f| f.output().double_value(&[]))
                    .unwrap_or(f64::NAN);
            }
            Ok(total / batches.max(1) as f64)
        })
    }
}

/// The AdamW of one stage, as `optimizer` configures it: every trainer and miner builds it here.
///
/// # Errors
/// When libtorch cannot build the optimizer.
pub fn adamw(
    optimizer: &crate::spec::OptimizerSpec,
    vs: &nn::VarStore,
) -> Result<nn::Optimizer, tch::TchError> {
    let o = optimizer;
    let mut opt = nn::AdamW {
        beta1: o.beta1,
        beta2: o.beta2,
        wd: o.weight_decay,
        eps: 1e-8,
        amsgrad: false,
    }
    .build(vs, o.lr)?;
    // Group 0 holds norms, embeddings and identity paths: no decay.
    opt.set_weight_decay_group(0, 0.0);
    Ok(opt)
}

/// Clips the global L2 norm of a stage's gradients to `max` (0: no clipping); returns the norm before clipping.
pub fn clip_grad_norm(vs: &nn::VarStore, max: f64) -> f64 {
    tch::no_grad(|| {
        let grads: Vec<Tensor> = vs
            .trainable_variables()
            .iter()
            .map(Tensor::grad)
            .filter(Tensor::defined)
            .collect();
        if grads.is_empty() {
            return 0.0;
        }
        let norms: Vec<Tensor> = grads
            .iter()
            .map(|g| g.norm().to_kind(Kind::Double))
            .collect();
        let total = Tensor::stack(&norms, 0).norm().double_value(&[]);
        if max > 0.0 && total > max {
            scale_grads(vs, max / (total + 1e-6));
        }
        total
    })
}

/// Multiplies every gradient of `vs` by `coef`, in place.
fn scale_grads(vs: &nn::VarStore, coef: f64) {
    tch::no_grad(|| {
        for mut g in vs
            .trainable_variables()
            .iter()
            .map(Tensor::grad)
            .filter(Tensor::defined)
        {
            let _ = g.g_mul_scalar_(coef);
        }
    });
}
