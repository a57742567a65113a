//! Same seed, same loss trajectory; another seed, another one.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests: a failed setup step should stop the test with its message"
)]

use sliver_common::data::Split;
use sliver_common::{CodecKind, RunSpec, Trainer};
use tch::Device;

use crate::support::{small_corpus, tiny_spec};

fn trajectory(spec: &RunSpec, steps: u64) -> Vec<f64> {
    let corpus = small_corpus(spec);
    let mut trainer = Trainer::pipeline(spec, Device::Cpu, steps).unwrap();
    (0..steps)
        .map(|i| {
            let batch = trainer.batch(&corpus, Split::Train, i).unwrap();
            trainer.step(&[batch]).unwrap().loss
        })
        .collect()
}

#[test]
fn same_seed_same_losses() {
    let spec = tiny_spec(&[[0, 2], [2, 4]], 8, CodecKind::Int8, true);
    let a = trajectory(&spec, 6);
    let b = trajectory(&spec, 6);
    assert_eq!(a, b, "two runs with one seed must agree exactly");
    let mut other = spec.clone();
    other.seed += 1;
    let c = trajectory(&other, 6);
    assert_ne!(a, c, "another seed must give another trajectory");
}
