//! `btvalidator spec`: what a run spec asks of its miners, sized without building the model.
//!
//! Every number is arithmetic on the spec ([`sliver_common::sizing`]): parameters counted from
//! the model's dimensions (equal to what the built stages count, which `sizing`'s tests check),
//! memory per stage, bytes per token on the wire, what one miner's merge moves, and the merge
//! window and epoch that merge needs at a stated link speed. Building the stages instead would
//! allocate every weight: 16 GB of fp32 for a 4B-parameter spec, to print a count.

use std::fmt::Write;
use std::path::Path;

use anyhow::{Context, Result, bail};
use sliver_common::RunSpec;
use sliver_common::sizing::{
    ADAMW_BYTES, GRADIENT_BYTES, MergeTraffic, StageMemory, WEIGHT_BYTES, layer_activation_values,
    stage_parameters, windows_needed,
};

/// What `btvalidator spec` sizes a run's merge for (`sliver_common::sizing::windows_needed`).
#[derive(Debug, Clone, clap::Args)]
pub struct SizingArgs {
    /// Miners sharing each stage (the default: 128 uids over 7 stages).
    #[arg(long = "miners-per-stage", default_value_t = 18, value_parser = clap::value_parser!(u64).range(1..))]
    pub miners_per_stage: u64,
    /// A miner's upload speed, Mbit/s.
    #[arg(long = "up-mbit", default_value_t = 20.0)]
    pub up_mbit: f64,
    /// A miner's download speed, Mbit/s.
    #[arg(long = "down-mbit", default_value_t = 100.0)]
    pub down_mbit: f64,
    /// Round-trip time of one storage request, milliseconds.
    #[arg(long = "rtt-ms", default_value_t = 100.0)]
    pub rtt_ms: f64,
    /// Seconds per block (finney: 12; the local chain: 0.25).
    #[arg(long = "block-secs", default_value_t = 12.0)]
    pub block_secs: f64,
    /// How many times its estimated length each merge phase is given.
    #[arg(long = "safety", default_value_t = 1.5)]
    pub safety: f64,
    /// The largest share of each epoch the merge window may take.
    #[arg(long = "merge-share", default_value_t = 1.0 / 6.0)]
    pub merge_share: f64,
}

impl Default for SizingArgs {
    fn default() -> Self {
        let link = sliver_common::sizing::Link::default();
        Self {
            miners_per_stage: 18,
            up_mbit: link.up_mbit,
            down_mbit: link.down_mbit,
            rtt_ms: link.rtt_secs * 1000.0,
            block_secs: link.block_secs,
            safety: link.safety,
            merge_share: link.merge_share,
        }
    }
}

impl SizingArgs {
    /// The link these flags describe.
    pub fn link(&self) -> sliver_common::sizing::Link {
        sliver_common::sizing::Link {
            up_mbit: self.up_mbit,
            down_mbit: self.down_mbit,
            rtt_secs: self.rtt_ms / 1000.0,
            block_secs: self.block_secs,
            safety: self.safety,
            merge_share: self.merge_share,
        }
    }
}

/// Loads and validates the spec at `path` and describes it, sized for the default link
/// ([`SizingArgs::default`]).
///
/// # Errors
/// When the file cannot be read or the spec is invalid.
pub fn describe(path: &Path) -> Result<String> {
    describe_sized(path, &SizingArgs::default())
}

/// Loads and validates the spec at `path` and describes it, its merge sized by `sizing`.
///
/// # Errors
/// When the file cannot be read, the spec is invalid, or `sizing` holds an unusable number.
pub fn describe_sized(path: &Path, sizing: &SizingArgs) -> Result<String> {
    let spec = RunSpec::load(path).with_context(|| format!("checking {}", path.display()))?;
    summary(&spec, sizing)
}

/// Thousands separated by commas: `4172808192` → `4,172,808,192`.
fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Bytes in decimal units, three significant figures or so: `2.27 GB`, `412 MB`.
fn bytes(n: u64) -> String {
    let x = n as f64;
    let (v, unit) = if x >= 1e12 {
        (x / 1e12, "TB")
    } else if x >= 1e9 {
        (x / 1e9, "GB")
    } else if x >= 1e6 {
        (x / 1e6, "MB")
    } else if x >= 1e3 {
        (x / 1e3, "kB")
    } else {
        return format!("{n} B");
    };
    if v >= 100.0 {
        format!("{v:.0} {unit}")
    } else if v >= 10.0 {
        format!("{v:.1} {unit}")
    } else {
        format!("{v:.2} {unit}")
    }
}

/// A span of blocks with its wall-clock length: `257 blocks (51.4 min)`.
fn blocks(n: u64, block_secs: f64) -> String {
    let secs = n as f64 * block_secs;
    let time = if secs >= 7200.0 {
        format!("{:.1} h", secs / 3600.0)
    } else if secs >= 120.0 {
        format!("{:.1} min", secs / 60.0)
    } else {
        format!("{secs:.1} s")
    };
    format!("{n} blocks ({time})")
}

/// A human-readable summary: stages with their layers and parameters, the bytes each boundary
/// carries per token, and a sizing table (memory, wire, merge) with the merge window and epoch
/// the merge needs on the link `sizing` describes, each compared with the spec's own. A spec
/// whose merge window or epoch is shorter than needed gets a `WARNING` line.
///
/// # Errors
/// When `sizing` holds an unusable number (a speed not positive, a share outside (0, 1), ...).
pub fn summary(spec: &RunSpec, sizing: &SizingArgs) -> Result<String> {
    let link = sizing.link();
    if let Err(e) = link.check() {
        bail!("sizing flags: {e}");
    }
    let m = &spec.model;
    let b = &spec.boundary;
    let n_stages = spec.stages.len();
    let mut s = String::new();
    let _ = writeln!(s, "run spec {:?} is valid", spec.name);
    let _ = writeln!(
        s,
        "model: d_model {} x {} layers, {} heads ({} kv), ffn {}, seq {}, vocab {}",
        m.d_model, m.n_layers, m.n_heads, m.n_kv_heads, m.ffn_hidden, m.seq_len, m.vocab_size
    );
    let params: Vec<_> = (0..n_stages)
        .filter_map(|i| stage_parameters(spec, i))
        .collect();
    for (i, p) in params.iter().enumerate() {
        let [a, z] = spec.stages[i].layers;
        let _ = writeln!(
            s,
            "stage {i}: layers {a}..{z}, {} parameters",
            grouped(p.total())
        );
    }
    let total: u64 = params.iter().map(|p| p.total()).sum();
    // The later stages' own token embeddings: parameters a monolithic model does not have.
    let own_embeddings: u64 = params.iter().skip(1).map(|p| p.embedding).sum();
    if own_embeddings > 0 {
        let _ = writeln!(
            s,
            "total: {} parameters ({} without the later stages' own token embeddings)",
            grouped(total),
            grouped(total - own_embeddings)
        );
    } else {
        let _ = writeln!(s, "total: {} parameters", grouped(total));
    }
    let tokens = (spec.optimizer.batch_size * m.seq_len) as f64;
    let dims = spec.wire_dims();
    let act = spec.activation_codec().encoded_len(&dims) as f64 / tokens;
    let grad = spec.gradient_codec().encoded_len(&dims) as f64 / tokens;
    if n_stages > 1 {
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

    // The sizing table.
    let miners = usize::try_from(sizing.miners_per_stage)
        .unwrap_or(usize::MAX)
        .max(1);
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "sizing: {miners} miners a stage, links {} Mbit/s up / {} Mbit/s down, {} ms a request, {} s blocks",
        sizing.up_mbit, sizing.down_mbit, sizing.rtt_ms, sizing.block_secs
    );
    let header = [
        "stage",
        "parameters",
        "weights+grads+AdamW",
        "activations",
        "memory",
        "wire sent",
        "merge up",
        "merge down",
        "merge needs",
    ];
    let mut rows: Vec<[String; 9]> = Vec::new();
    let mut worst: Option<(usize, sliver_common::sizing::Needs)> = None;
    for (i, p) in params.iter().enumerate() {
        let Some(mem) = StageMemory::of(spec, i) else {
            continue;
        };
        // What the stage sends per token of its samples: activations forward (all but the
        // last), gradients back (all but the first).
        let sent = if i + 1 < n_stages { act } else { 0.0 } + if i > 0 { grad } else { 0.0 };
        let traffic = MergeTraffic::of(p.total(), miners);
        let Some(needs) = windows_needed(&traffic, &link) else {
            bail!("sizing flags: the merge of stage {i} cannot be sized");
        };
        if worst.is_none_or(|(_, w)| needs.merge_blocks > w.merge_blocks) {
            worst = Some((i, needs));
        }
        rows.push([
            i.to_string(),
            grouped(p.total()),
            bytes(mem.state()),
            bytes(mem.activations),
            bytes(mem.total()),
            format!("{sent:.2} B/token"),
            bytes(traffic.up()),
            bytes(traffic.down()),
            format!("{} blocks", needs.merge_blocks),
        ]);
    }
    let widths: Vec<usize> = (0..header.len())
        .map(|c| {
            rows.iter()
                .map(|r| r[c].len())
                .chain([header[c].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |s: &mut String, cells: &[&str]| {
        let mut out = String::new();
        for (c, cell) in cells.iter().enumerate() {
            if c == 0 {
                let _ = write!(out, "{cell:<w$}", w = widths[c]);
            } else {
                let _ = write!(out, "  {cell:>w$}", w = widths[c]);
            }
        }
        let _ = writeln!(s, "{}", out.trim_end());
    };
    line(&mut s, &header);
    for r in &rows {
        let cells: Vec<&str> = r.iter().map(String::as_str).collect();
        line(&mut s, &cells);
    }

    let per_layer = layer_activation_values(m);
    let t = MergeTraffic::of(params.first().map_or(0, |p| p.total()), miners);
    let notes = [
        format!(
            "memory   fp32 weights {WEIGHT_BYTES} B + gradients {GRADIENT_BYTES} B + AdamW's two moments \
             {ADAMW_BYTES} B a parameter,"
        ),
        format!(
            "         + activations of one micro-batch ({} x {} tokens), no activation checkpointing:",
            spec.optimizer.batch_size, m.seq_len
        ),
        format!(
            "           9·d_model + 2·kv_dim + 4·ffn = {per_layer} fp32 values a token a layer ({:.1} x d_model),",
            per_layer as f64 / m.d_model.max(1) as f64
        ),
        "           the boundaries', and 2 x vocab a token for the last stage's logits".to_owned(),
        "         a miner holds more: flat copies of its weights (the epoch's start, the last step's"
            .to_owned(),
        "         change, stashed versions in flight, the merge's), 4 B a parameter each".to_owned(),
        "merge    a miner an epoch, fp32 shards: up = its copy of every shard (its stage's weights)"
            .to_owned(),
        format!(
            "         + its {} reductions; down = {} x {} peers' copies + every shard's reductions ({} reads)",
            t.reduces,
            t.reduces,
            t.miners - 1,
            t.assemble_down / t.shard_bytes.max(1),
        ),
        "formula  t = bytes up / up + bytes down / down + requests x RTT   (sliver_common::sizing)"
            .to_owned(),
        "         for phase A (scatter, reduce: drain_end..reduce_end, about M/2)".to_owned(),
        "         and phase B (reductions, assembly: reduce_end..assemble_end, about M/2);".to_owned(),
        format!(
            "         merge window M = the least whose phases both hold {} x t; epoch = max(M / {:.3}, M + 1)",
            sizing.safety, sizing.merge_share
        ),
    ];
    for n in notes {
        let _ = writeln!(s, "{n}");
    }
    if let Some((i, needs)) = worst {
        let w = &spec.swarm;
        let _ = writeln!(
            s,
            "needs    merge window {}, epoch {} (stage {i}: phases of {:.0} s and {:.0} s)",
            blocks(needs.merge_blocks, sizing.block_secs),
            blocks(needs.epoch_blocks, sizing.block_secs),
            needs.phase_a_secs,
            needs.phase_b_secs,
        );
        let _ = writeln!(
            s,
            "spec     merge window {}, epoch {}",
            blocks(w.merge_blocks, sizing.block_secs),
            blocks(w.epoch_blocks, sizing.block_secs),
        );
        if w.merge_blocks < needs.merge_blocks {
            let _ = writeln!(
                s,
                "WARNING: swarm.merge_blocks ({}) is shorter than the {} blocks the merge needs at these link speeds: \
                 miners will miss peers' shards and keep their own values",
                w.merge_blocks, needs.merge_blocks
            );
        }
        if w.epoch_blocks < needs.epoch_blocks {
            let _ = writeln!(
                s,
                "WARNING: swarm.epoch_blocks ({}) is shorter than the {} blocks that keep the merge window within {:.0}% of the epoch",
                w.epoch_blocks,
                needs.epoch_blocks,
                sizing.merge_share * 100.0
            );
        }
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shipped(name: &str) -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../specs")
            .join(name)
    }

    #[test]
    fn describes_the_shipped_local_spec() {
        let text = describe(&shipped("local.toml")).unwrap();
        assert!(text.contains("stage 2: layers 4..6"), "{text}");
        assert!(text.contains("activations int4log"), "{text}");
        assert!(text.contains("token embedding: every stage"), "{text}");
        assert!(text.contains("weights+grads+AdamW"), "{text}");
        assert!(text.contains("needs    merge window"), "{text}");
        // The demo's own window holds its tiny merge: 250 ms blocks, two miners a stage,
        // stores on the same machine.
        let local = SizingArgs {
            block_secs: 0.25,
            miners_per_stage: 2,
            up_mbit: 1000.0,
            down_mbit: 1000.0,
            rtt_ms: 5.0,
            ..SizingArgs::default()
        };
        let text = describe_sized(&shipped("local.toml"), &local).unwrap();
        assert!(!text.contains("WARNING: swarm.merge_blocks"), "{text}");
    }

    #[test]
    fn sizes_the_shipped_3b_spec_without_building_it() {
        let text = describe(&shipped("3b.toml")).unwrap();
        for i in 0..7 {
            let layers = format!("stage {i}: layers {}..{}", 4 * i, 4 * i + 4);
            assert!(text.contains(&layers), "{text}");
        }
        assert!(!text.contains("stage 7"), "{text}");
        // About 3.2B in the model proper (Llama-3.2-3B's trunk with a 50k vocabulary, untied
        // head, six bottlenecks), 0.93B more in the six later stages' own token embeddings.
        let total = text
            .lines()
            .find_map(|l| l.strip_prefix("total: "))
            .unwrap();
        let numbers: Vec<u64> = total
            .split(|c: char| !c.is_ascii_digit() && c != ',')
            .filter(|w| !w.is_empty() && *w != ",")
            .map(|w| w.replace(',', "").parse().unwrap())
            .collect();
        let (all, trunk) = (numbers[0], numbers[1]);
        assert!((3_150_000_000..3_300_000_000).contains(&trunk), "{text}");
        assert_eq!(all - trunk, 6 * 50_304 * 3072, "{text}");
        // The spec's windows are what the formula asks for on its stated links.
        assert!(!text.contains("WARNING"), "{text}");
        // A slower uplink needs a longer merge than the spec gives.
        let slow = SizingArgs {
            up_mbit: 5.0,
            ..SizingArgs::default()
        };
        let text = describe_sized(&shipped("3b.toml"), &slow).unwrap();
        assert!(text.contains("WARNING: swarm.merge_blocks"), "{text}");
    }

    #[test]
    fn refuses_unusable_sizing_flags() {
        let bad = SizingArgs {
            down_mbit: 0.0,
            ..SizingArgs::default()
        };
        let err = format!(
            "{:#}",
            describe_sized(&shipped("local.toml"), &bad).unwrap_err()
        );
        assert!(err.contains("down speed"), "{err}");
    }

    #[test]
    fn names_the_bad_field() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.toml");
        let good = std::fs::read_to_string(shipped("local.toml")).unwrap();
        std::fs::write(&path, good.replace("n_kv_heads = 2", "n_kv_heads = 3")).unwrap();
        let err = format!("{:#}", describe(&path).unwrap_err());
        assert!(
            err.contains("bad.toml") && err.contains("model.n_kv_heads"),
            "{err}"
        );
    }

    #[test]
    fn numbers_read_easily() {
        assert_eq!(grouped(4_172_808_192), "4,172,808,192");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1000), "1,000");
        assert_eq!(bytes(2_265_000_000), "2.27 GB");
        assert_eq!(bytes(412_000_000), "412 MB");
        assert_eq!(bytes(12), "12 B");
        assert_eq!(blocks(257, 12.0), "257 blocks (51.4 min)");
        assert_eq!(blocks(40, 0.25), "40 blocks (10.0 s)");
    }
}
