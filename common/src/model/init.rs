//! Deterministic weight initialisation independent of libtorch's global RNG.
//!
//! Each component draws from a ChaCha stream keyed by (run seed, component
//! id), so initial weights are a pure function of the spec.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tch::{Kind, Tensor};

/// Identifies a component whose weights are initialised together.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Component {
    /// Stage 0's token embedding.
    Embedding,
    /// A later stage's own token embedding (the boundary side channel).
    StageEmbedding(usize),
    /// Transformer block `i` (global layer index).
    Layer(usize),
    /// The bottleneck at boundary `b` (between stages `b` and `b + 1`);
    /// encoder and decoder share it so their identity paths start aligned.
    Boundary(usize),
    /// Final norm and LM head.
    Head,
}

impl Component {
    fn id(self) -> u64 {
        match self {
            Component::Embedding => 1,
            Component::Head => 2,
            Component::StageEmbedding(s) => (1 << 32) | s as u64,
            Component::Layer(i) => (2 << 32) | i as u64,
            Component::Boundary(b) => (3 << 32) | b as u64,
        }
    }
}

/// A stream of initial values for one component.
pub(crate) struct Init {
    rng: ChaCha8Rng,
}

impl Init {
    pub(crate) fn new(seed: u64, component: Component) -> Self {
        let mut key = [0u8; 32];
        key[..8].copy_from_slice(&seed.to_le_bytes());
        key[8..16].copy_from_slice(&component.id().to_le_bytes());
        key[16..24].copy_from_slice(b"sliver.i");
        Self {
            rng: ChaCha8Rng::from_seed(key),
        }
    }

    /// A CPU f32 tensor of normal values with standard deviation `std` (Box–Muller).
    pub(crate) fn normal(&mut self, dims: &[i64], std: f64) -> Tensor {
        let n: usize = dims.iter().map(|&d| d as usize).product();
        let mut v = Vec::with_capacity(n + 1);
        while v.len() < n {
            let u1: f64 = 1.0 - self.rng.random::<f64>();
            let u2: f64 = self.rng.random::<f64>();
            let r = (-2.0 * u1.ln()).sqrt() * std;
            let theta = std::f64::consts::TAU * u2;
            v.push((r * theta.cos()) as f32);
            v.push((r * theta.sin()) as f32);
        }
        v.truncate(n);
        Tensor::from_slice(&v).reshape(dims)
    }

    /// A `[rows, cols]` matrix with orthonormal columns (`rows >= cols`).
    pub(crate) fn orthonormal(&mut self, rows: i64, cols: i64) -> Tensor {
        let a = self.normal(&[rows, cols], 1.0).to_kind(Kind::Double);
        let (q, r) = Tensor::linalg_qr(&a, "reduced");
        // Fix signs so the result does not depend on the QR implementation's convention.
        let signs = r.diagonal(0, 0, 1).sign();
        (q * signs.unsqueeze(0)).to_kind(Kind::Float)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_keyed_by_seed_and_component() {
        let a = Init::new(1, Component::Layer(3)).normal(&[64], 1.0);
        let b = Init::new(1, Component::Layer(3)).normal(&[64], 1.0);
        let c = Init::new(1, Component::Layer(4)).normal(&[64], 1.0);
        let d = Init::new(2, Component::Layer(3)).normal(&[64], 1.0);
        assert!(a.equal(&b));
        assert!(!a.equal(&c) && !a.equal(&d));
        let big = Init::new(9, Component::Head).normal(&[100_000], 0.5);
        assert!((big.std(true).double_value(&[]) - 0.5).abs() < 0.01);
        assert!(big.mean(Kind::Float).double_value(&[]).abs() < 0.01);
    }

    #[test]
    fn orthonormal_columns() {
        let p = Init::new(3, Component::Boundary(0)).orthonormal(32, 6);
        let gram = p.transpose(0, 1).matmul(&p);
        let err = (gram - Tensor::eye(6, (Kind::Float, tch::Device::Cpu)))
            .abs()
            .max()
            .double_value(&[]);
        assert!(err < 1e-5, "{err}");
    }
}
