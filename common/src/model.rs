//! The staged model: a Llama-style decoder cut into pipeline stages.
//!
//! - [`llama`](self) blocks: RMSNorm, rotary positions, grouped-query
//!   attention and a SwiGLU feed-forward (Touvron et al. 2023, arXiv 2302.13971;
//!   GQA: Ainslie et al. 2023, arXiv 2305.13245).
//! - The boundary bottleneck between stages (ResBM, arXiv 2604.11947).
//! - [`Stage`]: the layers one miner owns, with forward on an explicit input
//!   tensor and backward from an explicit output gradient, so that everything
//!   crossing a boundary is a tensor that can be serialized.
//!
//! Weights are initialised from a counter-based generator keyed by the run
//! seed and the component (embedding, layer `i`, boundary `b`, head), not from
//! libtorch's global generator. So a layer starts with the same weights
//! whichever stage owns it and on whatever device, and building models on
//! several threads at once stays deterministic.

mod bottleneck;
pub(crate) mod init;
mod llama;
mod stage;

pub use stage::{Batch, Forward, Stage};

/// A model operation failed or was given input of the wrong shape.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ModelError {
    /// The stage index is not in the run spec.
    #[error("stage {index} does not exist (the run spec has {stages} stages)")]
    NoSuchStage {
        /// Requested stage.
        index: usize,
        /// Stages in the spec.
        stages: usize,
    },
    /// Stage 0 reads tokens; other stages read the previous stage's output.
    #[error("stage {stage} {reason}")]
    WrongInput {
        /// The stage.
        stage: usize,
        /// What was wrong.
        reason: &'static str,
    },
    /// An input activation or output gradient has the wrong shape.
    #[error("stage {stage}: {what} has shape {got:?}, expected {expected:?}")]
    Shape {
        /// The stage.
        stage: usize,
        /// "input activations", "output gradient", "batch" ...
        what: &'static str,
        /// Expected shape.
        expected: Vec<i64>,
        /// Actual shape.
        got: Vec<i64>,
    },
    /// A token id is outside the vocabulary.
    #[error("token id {token} is outside the vocabulary (size {vocab})")]
    Token {
        /// The offending id.
        token: i64,
        /// Vocabulary size.
        vocab: usize,
    },
    /// libtorch reported an error.
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
    /// A sample's tokens could not be read (a sharded corpus's store or shard).
    #[error("reading the sample's tokens")]
    Data(#[from] crate::data::Error),
}
