//! The shared core of Sliver, used by both `btminer` and `btvalidator`.
//!
//! Sliver trains one language model across many untrusted machines: the
//! model is cut into pipeline stages, each miner runs one stage, and what
//! crosses a stage boundary is compressed and sent through object storage.
//! This crate holds everything both sides of that exchange must agree on:
//!
//! - [`spec`]: the run spec (TOML), validated up front.
//! - [`model`]: the Llama-style decoder cut into [`Stage`]s, with the learned
//!   boundary bottleneck.
//! - [`codec`]: how boundary tensors become bytes ([`WireCodec`]).
//! - [`data`]: text sources, tokenizers and deterministic sample draws.
//! - [`train`]: the [`Trainer`] that runs stages in order with real
//!   serialization between them (the pipeline) or as one piece (the
//!   monolithic baseline).
//! - [`artifact`]: signed headers around every stored object, checked before use.
//! - [`layout`]: every storage key, the bucket's map; [`gc`]: each owner deleting its expired
//!   objects from its own store.
//! - [`adversary`]: the ways of cheating the validator's tests and benchmarks play.
//! - [`assignment`] and [`routing`]: which miner runs which stage, and each sample's path.
//! - [`schedule`]: the epoch's timeline, every deadline derived from the spec.
//! - [`sizing`]: a run sized without building it: parameters and memory per stage, merge
//!   traffic, and the merge window and epoch a link speed needs (`btvalidator spec`).
//! - [`merge`]: the arithmetic of the butterfly all-reduce; [`flat`]: a stage's weights as one
//!   flat vector (the merge's layout and what weight hashes cover).
//! - [`spot_check`]: challenges, weight answers and the comparison of a recomputed artifact.
//! - [`storage`]: the object store (filesystem or S3) through which artifacts are
//!   exchanged, write-once and size-bounded.
//! - [`device`]: the `--neuron.device` flag; [`telemetry`]: the `--logging.*` flags.
//! - [`metrics`]: Prometheus counters and gauges, served with a `/health`
//!   endpoint over HTTP.
//! - [`shutdown`]: one shutdown path: a cancellation token, tracked tasks
//!   (a failing task stops the process), signals and a grace period.
//!
//! It sits below the miner and validator and knows nothing of the chain.
//!
//! # Features
//!
//! | feature | default | what it does |
//! |---------|---------|--------------|
//! | `cuda`  | no      | links libtorch's CUDA library so `--neuron.device cuda` works |
//! | `testing` | no    | the `testing` module: fixtures for other crates' tests |

pub mod adversary;
pub mod artifact;
pub mod assignment;
pub mod codec;
pub mod data;
pub mod device;
pub mod flat;
pub mod gc;
pub mod layout;
pub mod merge;
pub mod metrics;
pub mod model;
pub mod process;
pub mod routing;
pub mod schedule;
pub mod sizing;
pub use sliver_shutdown as shutdown;
pub mod spec;
pub mod spot_check;
pub mod storage;
pub mod telemetry;
#[cfg(feature = "testing")]
pub mod testing;
pub mod train;

pub use assignment::StageIndex;
pub use codec::{CodecKind, WireCodec};
pub use data::{Corpus, DataSpec};
pub use model::{Batch, Stage};
pub use schedule::Epoch;
pub use spec::RunSpec;
pub use train::Trainer;
