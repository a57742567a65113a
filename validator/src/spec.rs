//! `btvalidator spec`: what a run spec asks of its miners.

use std::fmt::Write;
use std::path::Path;

use anyhow::{Context, Result};
use sliver_common::{RunSpec, Stage};
use tch::Device;

/// Loads and validates the spec at `path` and describes it.
///
/// # Errors
/// When the file cannot be read or the spec is invalid.
pub fn describe(path: &Path) -> Result<String> {
    let spec = RunSpec::load(path).with_context(|| format!("checking {}", path.display()))?;
    summary(&spec)
}

/// A human-readable summary: stages with their layers and parameters, and
/// the bytes each boundary carries per token.
///
/// # Errors
/// When a stage cannot be built (its parameters cannot be counted).
pub fn summary(spec: &RunSpec) -> Result<String> {
    let m = &spec.model;
    let b = &spec.boundary;
    let mut s = String::new();
    let _ = writeln!(s, "run spec {:?} is valid", spec.name);
    let _ = writeln!(
        s,
        "model: d_model {} x {} layers, {} heads ({} kv), ffn {}, seq {}, vocab {}",
        m.d_model, m.n_layers, m.n_heads, m.n_kv_heads, m.ffn_hidden, m.seq_len, m.vocab_size
    );
    let mut total = 0;
    for i in 0..spec.stages.len() {
        // Building a stage is the one way to count exactly what it owns.
        let params = Stage::new(spec, i, Device::Cpu)
            .map(|st| st.parameter_count())
            .with_context(|| format!("building stage {i} to count its parameters"))?;
        total += params;
        let [a, z] = spec.stages[i].layers;
        let _ = writeln!(s, "stage {i}: layers {a}..{z}, {params} parameters");
    }
    let _ = writeln!(s, "total: {total} parameters");
    if spec.stages.len() > 1 {
        let tokens = (spec.optimizer.batch_size * m.seq_len) as f64;
        let dims = spec.wire_dims();
        let act = spec.activation_codec().encoded_len(&dims) as f64 / tokens;
        let grad = spec.gradient_codec().encoded_len(&dims) as f64 / tokens;
        let fp32 = spec.fp32_boundary_bytes_per_token() as f64;
        let _ = writeln!(
            s,
            "boundary: bottleneck {} ({}), activations {} {:.2} B/token ({:.1}x), gradients {} {:.2} B/token ({:.1}x)",
            b.bottleneck,
            if b.bottleneck == 0 { "off" } else { "learned" },
            b.codec,
            act,
            fp32 / act,
            b.grad_codec(),
            grad,
            fp32 / grad
        );
    }
    if b.token_embedding {
        let _ = writeln!(
            s,
            "token embedding: every stage after the first adds its own (tokens are read by sample id, not sent)"
        );
    }
    if b.context_only {
        let _ = writeln!(
            s,
            "context only: each stage subtracts its token embedding before sending, so the boundary carries what its layers computed"
        );
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_the_shipped_local_spec() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../specs/local.toml");
        let text = describe(&path).unwrap();
        assert!(text.contains("stage 2: layers 4..6"), "{text}");
        assert!(text.contains("activations int4log"), "{text}");
        assert!(text.contains("token embedding: every stage"), "{text}");
    }

    #[test]
    fn names_the_bad_field() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.toml");
        let good = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../specs/local.toml"),
        )
        .unwrap();
        std::fs::write(&path, good.replace("n_kv_heads = 2", "n_kv_heads = 3")).unwrap();
        let err = format!("{:#}", describe(&path).unwrap_err());
        assert!(
            err.contains("bad.toml") && err.contains("model.n_kv_heads"),
            "{err}"
        );
    }
}
