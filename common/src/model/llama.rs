//! Llama-style decoder blocks: RMSNorm, rotary positions, grouped-query
//! attention, SwiGLU. Shapes: activations are `[batch, seq, d_model]`;
//! attention works on `[batch, heads, seq, head_dim]`.
//!
//! Weights are addressed by path (`layers.{i}.attn.wq`, ...) and created
//! from [`Init`] streams; see the [`model`](super) docs for why.

use tch::{Device, Kind, Tensor, nn};

use super::init::{Component, Init};
use crate::spec::ModelSpec;

/// Standard deviation of initial weights (GPT-2's choice); residual output
/// projections are scaled down by `1/sqrt(2 * n_layers)`.
pub(crate) const INIT_STD: f64 = 0.02;

/// Creates a trainable `[out, in]` weight, decayed by the optimizer (group 1).
pub(crate) fn weight(
    p: &nn::Path,
    name: &str,
    out: i64,
    inp: i64,
    std: f64,
    init: &mut Init,
) -> Tensor {
    let w = init.normal(&[out, inp], std);
    p.set_group(1).var_copy(name, &w)
}

/// `x · wᵀ` for a `[out, in]` weight.
pub(crate) fn linear(x: &Tensor, w: &Tensor) -> Tensor {
    x.matmul(&w.tr())
}

/// Root-mean-square normalisation with a learned gain (Zhang & Sennrich 2019).
pub(crate) struct RmsNorm {
    gain: Tensor,
    eps: f64,
}

impl RmsNorm {
    pub(crate) fn new(p: nn::Path, dim: i64, eps: f64) -> Self {
        // Gains are not weight-decayed: group 0.
        let gain = p
            .set_group(0)
            .var_copy("gain", &Tensor::ones([dim], (Kind::Float, Device::Cpu)));
        Self { gain, eps }
    }

    pub(crate) fn forward(&self, x: &Tensor) -> Tensor {
        let ms = x
            .pow_tensor_scalar(2)
            .mean_dim([-1].as_slice(), true, Kind::Float);
        x * (ms + self.eps).rsqrt() * &self.gain
    }
}

/// Rotary position embedding tables (Su et al. 2021, arXiv 2104.09864),
/// rotating the two halves of each head.
pub(crate) struct Rotary {
    cos: Tensor,
    sin: Tensor,
}

impl Rotary {
    pub(crate) fn new(cfg: &ModelSpec, device: Device) -> Self {
        let half = cfg.head_dim() as i64 / 2;
        let inv_freq = Tensor::arange(half, (Kind::Double, Device::Cpu))
            .multiply_scalar(-2.0 / cfg.head_dim() as f64 * cfg.rope_theta.ln())
            .exp();
        let pos = Tensor::arange(cfg.seq_len as i64, (Kind::Double, Device::Cpu));
        let angles = pos.unsqueeze(1) * inv_freq.unsqueeze(0); // [seq, half]
        Self {
            cos: angles.cos().to_kind(Kind::Float).to_device(device),
            sin: angles.sin().to_kind(Kind::Float).to_device(device),
        }
    }

    /// Rotates `x` of shape `[batch, heads, seq, head_dim]`.
    pub(crate) fn apply(&self, x: &Tensor) -> Tensor {
        let seq = x.size()[2];
        let half = x.size()[3] / 2;
        let cos = self.cos.narrow(0, 0, seq);
        let sin = self.sin.narrow(0, 0, seq);
        let x1 = x.narrow(-1, 0, half);
        let x2 = x.narrow(-1, half, half);
        Tensor::cat(&[&x1 * &cos - &x2 * &sin, &x1 * &sin + &x2 * &cos], -1)
    }
}

/// Causal self-attention with `n_kv_heads` key/value heads shared by groups of query heads.
struct Attention {
    wq: Tensor,
    wk: Tensor,
    wv: Tensor,
    wo: Tensor,
    n_heads: i64,
    n_kv_heads: i64,
    head_dim: i64,
}

impl Attention {
    fn new(p: nn::Path, cfg: &ModelSpec, init: &mut Init) -> Self {
        let d = cfg.d_model as i64;
        let hd = cfg.head_dim() as i64;
        let (h, kv) = (cfg.n_heads as i64, cfg.n_kv_heads as i64);
        let out_std = INIT_STD / (2.0 * cfg.n_layers as f64).sqrt();
        Self {
            wq: weight(&p, "wq", h * hd, d, INIT_STD, init),
            wk: weight(&p, "wk", kv * hd, d, INIT_STD, init),
            wv: weight(&p, "wv", kv * hd, d, INIT_STD, init),
            wo: weight(&p, "wo", d, h * hd, out_std, init),
            n_heads: h,
            n_kv_heads: kv,
            head_dim: hd,
        }
    }

    #[allow(
        clippy::expect_used,
        reason = "the stage only ever passes [batch, seq, d_model] activations here"
    )]
    fn forward(&self, x: &Tensor, rotary: &Rotary) -> Tensor {
        let (b, t, _) = x.size3().expect("attention input is [batch, seq, d_model]");
        let heads =
            |w: &Tensor, n: i64| linear(x, w).view([b, t, n, self.head_dim]).transpose(1, 2);
        let q = rotary.apply(&heads(&self.wq, self.n_heads));
        let k = rotary.apply(&heads(&self.wk, self.n_kv_heads));
        let v = heads(&self.wv, self.n_kv_heads);
        let enable_gqa = self.n_kv_heads != self.n_heads;
        let y = Tensor::scaled_dot_product_attention(
            &q,
            &k,
            &v,
            None::<Tensor>,
            0.0,
            true,
            None,
            enable_gqa,
        );
        linear(
            &y.transpose(1, 2)
                .contiguous()
                .view([b, t, self.n_heads * self.head_dim]),
            &self.wo,
        )
    }
}

/// SwiGLU feed-forward (Shazeer 2020, arXiv 2002.05202): `w2(silu(w1 x) * w3 x)`.
struct SwiGlu {
    w1: Tensor,
    w3: Tensor,
    w2: Tensor,
}

impl SwiGlu {
    fn new(p: nn::Path, cfg: &ModelSpec, init: &mut Init) -> Self {
        let (d, f) = (cfg.d_model as i64, cfg.ffn_hidden as i64);
        let out_std = INIT_STD / (2.0 * cfg.n_layers as f64).sqrt();
        Self {
            w1: weight(&p, "w1", f, d, INIT_STD, init),
            w3: weight(&p, "w3", f, d, INIT_STD, init),
            w2: weight(&p, "w2", d, f, out_std, init),
        }
    }

    fn forward(&self, x: &Tensor) -> Tensor {
        linear(
            &(linear(x, &self.w1).silu() * linear(x, &self.w3)),
            &self.w2,
        )
    }
}

/// One pre-norm transformer block.
pub(crate) struct Block {
    attn_norm: RmsNorm,
    attn: Attention,
    ffn_norm: RmsNorm,
    ffn: SwiGlu,
}

impl Block {
    /// Block `layer` (global index) under `p`, initialised from the run seed.
    pub(crate) fn new(p: nn::Path, cfg: &ModelSpec, seed: u64, layer: usize) -> Self {
        let mut init = Init::new(seed, Component::Layer(layer));
        let d = cfg.d_model as i64;
        Self {
            attn_norm: RmsNorm::new(&p / "attn_norm", d, cfg.norm_eps),
            attn: Attention::new(&p / "attn", cfg, &mut init),
            ffn_norm: RmsNorm::new(&p / "ffn_norm", d, cfg.norm_eps),
            ffn: SwiGlu::new(&p / "ffn", cfg, &mut init),
        }
    }

    pub(crate) fn forward(&self, x: &Tensor, rotary: &Rotary) -> Tensor {
        let x = x + self.attn.forward(&self.attn_norm.forward(x), rotary);
        &x + self.ffn.forward(&self.ffn_norm.forward(&x))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> ModelSpec {
        ModelSpec {
            vocab_size: 16,
            d_model: 16,
            n_layers: 1,
            n_heads: 4,
            n_kv_heads: 2,
            ffn_hidden: 32,
            seq_len: 8,
            rope_theta: 10_000.0,
            norm_eps: 1e-5,
        }
    }

    #[test]
    fn rms_norm_gives_unit_rms() {
        let vs = nn::VarStore::new(Device::Cpu);
        let n = RmsNorm::new(vs.root() / "n", 8, 1e-6);
        let x = Tensor::from_slice(&[3.0f32, -4.0, 1.0, 2.0, 0.5, -1.5, 7.0, 2.0]).reshape([1, 8]);
        let y = n.forward(&x);
        let rms = y
            .pow_tensor_scalar(2)
            .mean(Kind::Float)
            .sqrt()
            .double_value(&[]);
        assert!((rms - 1.0).abs() < 1e-5, "{rms}");
    }

    #[test]
    fn rotary_preserves_norms_and_encodes_relative_position() {
        let c = cfg();
        let r = Rotary::new(&c, Device::Cpu);
        let q = Tensor::ones([1, 1, 8, 4], (Kind::Float, Device::Cpu));
        let rq = r.apply(&q);
        let norms = rq
            .pow_tensor_scalar(2)
            .sum_dim_intlist([-1].as_slice(), false, Kind::Float);
        assert!((norms - 4.0).abs().max().double_value(&[]) < 1e-5);
        // <R(m) q, R(n) q> depends only on m - n.
        let dot = |m: i64, n: i64| {
            (rq.get(0).get(0).get(m) * rq.get(0).get(0).get(n))
                .sum(Kind::Float)
                .double_value(&[])
        };
        assert!((dot(3, 1) - dot(6, 4)).abs() < 1e-5);
    }

    #[test]
    fn attention_is_causal() {
        let c = cfg();
        let vs = nn::VarStore::new(Device::Cpu);
        let block = Block::new(vs.root() / "b", &c, 5, 0);
        let r = Rotary::new(&c, Device::Cpu);
        let mut init = Init::new(1, Component::Head);
        let x = init.normal(&[1, 8, 16], 1.0);
        let y = block.forward(&x, &r);
        // Changing the last position must not change earlier outputs.
        let x2 = x.copy();
        let _ = x2.get(0).get(7).fill_(5.0);
        let y2 = block.forward(&x2, &r);
        let early = (y.narrow(1, 0, 7) - y2.narrow(1, 0, 7))
            .abs()
            .max()
            .double_value(&[]);
        assert!(early < 1e-6, "{early}");
        assert!(
            (y.get(0).get(7) - y2.get(0).get(7))
                .abs()
                .max()
                .double_value(&[])
                > 1e-3
        );
    }
}
