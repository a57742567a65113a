//! The learned bottleneck at a stage boundary (after ResBM, arXiv 2604.11947).
//!
//! The sending stage ends with an encoder `d_model → k`; the receiving stage
//! starts with a decoder `k → d_model`. Each is an explicit low-rank identity
//! path plus a small non-linear correction:
//!
//! ```text
//! encoder:  z  = P·norm(h) + W₂ silu(W₁ norm(h))      P: [k, d], orthonormal rows at init
//! decoder:  h' = Pᵀ·z     + V₂ silu(V₁ z)             Pᵀ: [d, k], the same basis at init
//! ```
//!
//! At initialisation the corrections are zero (`W₂`, `V₂` start at 0), so
//! `h' = PᵀP·norm(h)`: an orthogonal projection of the residual stream onto
//! `k` directions, which passes gradients cleanly from the first step. Both
//! sides then train end to end. Encoder and decoder live on different miners,
//! so `P` is not shared: each side holds its own copy, initialised from the
//! same boundary key.
//!
//! For a wire codec without scales (`int4unit`) the encoder ends by scaling each
//! token's `z` to unit RMS, `z / √(mean(z²) + ε)`: every value then lies within
//! `±√k`, the codec's fixed grid. At initialisation `z` is already about unit RMS
//! (the projection of a normalised `h` onto `k` orthonormal directions).

use tch::{Device, Kind, Tensor, nn};

use super::init::{Component, Init};
use super::llama::{INIT_STD, RmsNorm, linear, weight};
use crate::spec::ModelSpec;

/// The sending half: residual stream `[b, t, d]` → wire `[b, t, k]`.
pub(crate) struct Encoder {
    norm: RmsNorm,
    /// Scale each token's output to unit RMS, with this ε ([`BoundarySpec::unit_rms`]).
    ///
    /// [`BoundarySpec::unit_rms`]: crate::spec::BoundarySpec::unit_rms
    unit_rms: Option<f64>,
    identity: Tensor,
    w1: Tensor,
    w2: Tensor,
}

impl Encoder {
    pub(crate) fn new(
        p: nn::Path,
        cfg: &ModelSpec,
        k: usize,
        seed: u64,
        boundary: usize,
        unit_rms: bool,
    ) -> Self {
        let mut init = Init::new(seed, Component::Boundary(boundary));
        let (d, k) = (cfg.d_model as i64, k as i64);
        let basis = init.orthonormal(d, k).tr(); // [k, d]
        let w1 = init.normal(&[d, d], INIT_STD);
        Self {
            norm: RmsNorm::new(&p / "norm", d, cfg.norm_eps),
            unit_rms: unit_rms.then_some(cfg.norm_eps),
            identity: p.set_group(0).var_copy("identity", &basis),
            w1: p.set_group(1).var_copy("w1", &w1),
            w2: weight(&p, "w2", k, d, 0.0, &mut init),
        }
    }

    pub(crate) fn forward(&self, h: &Tensor) -> Tensor {
        let n = self.norm.forward(h);
        let z = linear(&n, &self.identity) + linear(&linear(&n, &self.w1).silu(), &self.w2);
        match self.unit_rms {
            Some(eps) => {
                let rms = (z.square().mean_dim(-1, true, Kind::Float) + eps).sqrt();
                z / rms
            }
            None => z,
        }
    }
}

/// The receiving half: wire `[b, t, k]` → residual stream `[b, t, d]`.
pub(crate) struct Decoder {
    identity: Tensor,
    v1: Tensor,
    v2: Tensor,
}

impl Decoder {
    pub(crate) fn new(p: nn::Path, cfg: &ModelSpec, k: usize, seed: u64, boundary: usize) -> Self {
        let mut init = Init::new(seed, Component::Boundary(boundary));
        let (d, k) = (cfg.d_model as i64, k as i64);
        let basis = init.orthonormal(d, k); // [d, k], same draw as the encoder's
        let _encoder_w1 = init.normal(&[d, d], INIT_STD); // keep the streams aligned
        let v1 = init.normal(&[d, k], INIT_STD * (d as f64 / k as f64).sqrt());
        Self {
            identity: p.set_group(0).var_copy("identity", &basis),
            v1: p.set_group(1).var_copy("v1", &v1),
            v2: p
                .set_group(1)
                .var_copy("v2", &Tensor::zeros([d, d], (Kind::Float, Device::Cpu))),
        }
    }

    pub(crate) fn forward(&self, z: &Tensor) -> Tensor {
        linear(z, &self.identity) + linear(&linear(z, &self.v1).silu(), &self.v2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A model of width 32, for boundaries alone.
    fn tiny() -> ModelSpec {
        ModelSpec {
            vocab_size: 16,
            d_model: 32,
            n_layers: 2,
            n_heads: 4,
            n_kv_heads: 4,
            ffn_hidden: 32,
            seq_len: 4,
            rope_theta: 10_000.0,
            norm_eps: 1e-6,
        }
    }

    #[test]
    fn starts_as_an_orthogonal_projection() {
        let cfg = tiny();
        let vs = nn::VarStore::new(Device::Cpu);
        let enc = Encoder::new(vs.root() / "enc", &cfg, 8, 11, 0, false);
        let dec = Decoder::new(vs.root() / "dec", &cfg, 8, 11, 0);
        let h = Init::new(1, Component::Head).normal(&[2, 4, 32], 1.0);
        let z = enc.forward(&h);
        assert_eq!(z.size(), vec![2, 4, 8]);
        let back = dec.forward(&z);
        let max_abs = |t: Tensor| t.abs().max().double_value(&[]);
        // The decoder's basis is the encoder's, transposed, and its rows are orthonormal.
        let p = &enc.identity; // [k, d]
        assert_eq!(max_abs(&dec.identity - p.tr()), 0.0);
        assert!(max_abs(p.matmul(&p.tr()) - Tensor::eye(8, (Kind::Float, Device::Cpu))) < 1e-5);
        // So the round trip is PᵀP·norm(h), an orthogonal projection: applying it again to
        // the reconstruction changes nothing.
        let n = enc.norm.forward(&h);
        let projected = linear(&linear(&n, p), &dec.identity);
        assert!(max_abs(&back - &projected) < 1e-5);
        let again = linear(&linear(&back, p), &dec.identity);
        assert!(max_abs(&again - &back) < 1e-5);
    }

    #[test]
    fn a_unit_rms_encoder_fits_the_fixed_grid() {
        let cfg = tiny();
        let vs = nn::VarStore::new(Device::Cpu);
        let enc = Encoder::new(vs.root() / "enc", &cfg, 7, 11, 0, true);
        let h = Init::new(1, Component::Head).normal(&[2, 4, 32], 100.0);
        let z = enc.forward(&h);
        let rms = z.square().mean_dim(-1, false, Kind::Float).sqrt();
        let off = (rms - 1.0).abs().max().double_value(&[]);
        assert!(off < 1e-4, "every token's RMS is 1, off by {off}");
        assert!(z.abs().max().double_value(&[]) <= 7f64.sqrt() + 1e-5);
        // The scaling is differentiable: a gradient reaches the encoder's weights.
        z.sum(Kind::Float).backward();
        assert!(enc.identity.grad().abs().sum(Kind::Float).double_value(&[]) > 0.0);
    }
}
