//! With compression off, the staged model computes exactly what the monolithic one does.

use std::collections::HashMap;

use sliver_common::data::Split;
use sliver_common::{Batch, CodecKind, Stage, Trainer, WireCodec};
use tch::{Device, Tensor};

use crate::support::{small_corpus, tiny_spec};

fn grads(stage: &Stage) -> HashMap<String, Tensor> {
    stage
        .var_store()
        .variables()
        .into_iter()
        .map(|(name, t)| (name, t.grad()))
        .collect()
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
    (a - b).abs().max().double_value(&[])
}

#[test]
fn staged_forward_and_backward_equal_monolithic() {
    let spec = tiny_spec(&[[0, 1], [1, 3], [3, 4]], 0, CodecKind::Fp32, false);
    let corpus = small_corpus(&spec);
    let tokens = corpus
        .batch(Split::Train, spec.seed, 0, 4, spec.model.seq_len)
        .unwrap();
    let batch = Batch::from_tokens(&tokens, 4, spec.model.seq_len, Device::Cpu).unwrap();

    // Monolithic.
    let mono = Stage::monolithic(&spec, Device::Cpu);
    let fwd = mono.forward(None, &batch).unwrap();
    let mono_loss = fwd.output().double_value(&[]);
    mono.backward(fwd, None).unwrap();
    let mono_grads = grads(&mono);
    let mono_weights = mono.var_store().variables();

    // Staged, each boundary crossing as fp32 bytes.
    let stages: Vec<Stage> = (0..3)
        .map(|i| Stage::new(&spec, i, Device::Cpu).unwrap())
        .collect();
    let wire = WireCodec::new(CodecKind::Fp32, 0);
    let mut input = None;
    let mut fwds = vec![];
    for stage in &stages {
        let fwd = stage.forward(input.as_ref(), &batch).unwrap();
        if !stage.is_last() {
            input = Some(
                wire.decode(&wire.encode(fwd.output()).unwrap(), Device::Cpu)
                    .unwrap(),
            );
        }
        fwds.push(fwd);
    }
    let staged_loss = fwds.last().unwrap().output().double_value(&[]);
    let mut grad = None;
    for (stage, fwd) in stages.iter().zip(fwds).rev() {
        grad = stage
            .backward(fwd, grad.as_ref())
            .unwrap()
            .map(|g| wire.decode(&wire.encode(&g).unwrap(), Device::Cpu).unwrap());
    }
    assert!(grad.is_none(), "stage 0 has no input gradient");

    assert!(
        (mono_loss - staged_loss).abs() < 1e-5,
        "loss {mono_loss} vs {staged_loss}"
    );
    let mut seen = 0;
    for stage in &stages {
        for (name, w) in stage.var_store().variables() {
            let mw = mono_weights
                .get(&name)
                .unwrap_or_else(|| panic!("{name} missing from the monolithic model"));
            assert_eq!(max_abs_diff(mw, &w), 0.0, "initial weight {name} differs");
            let g = w.grad();
            assert!(g.defined(), "no gradient for {name}");
            let diff = max_abs_diff(&mono_grads[&name], &g);
            assert!(diff < 1e-5, "gradient of {name} differs by {diff}");
            seen += 1;
        }
    }
    assert_eq!(
        seen,
        mono_weights.len(),
        "stages together hold exactly the monolithic weights"
    );
}

#[test]
fn stages_reject_inputs_that_do_not_fit() {
    let spec = tiny_spec(&[[0, 2], [2, 4]], 8, CodecKind::Int8, false);
    let corpus = small_corpus(&spec);
    let tokens = corpus
        .batch(Split::Train, spec.seed, 0, 4, spec.model.seq_len)
        .unwrap();
    let batch = Batch::from_tokens(&tokens, 4, spec.model.seq_len, Device::Cpu).unwrap();
    let s1 = Stage::new(&spec, 1, Device::Cpu).unwrap();
    let wrong = Tensor::zeros([4, 32, 64], (tch::Kind::Float, Device::Cpu));
    let err = s1.forward(Some(&wrong), &batch).unwrap_err().to_string();
    assert!(
        err.contains("input activations has shape [4, 32, 64], expected [4, 32, 8]"),
        "{err}"
    );
    let err = s1.forward(None, &batch).unwrap_err().to_string();
    assert!(err.contains("needs the previous stage's output"), "{err}");
    let err = Stage::new(&spec, 2, Device::Cpu).unwrap_err().to_string();
    assert!(err.contains("stage 2 does not exist"), "{err}");
    let bad = vec![300i64; 4 * 33];
    let bad_batch = Batch::from_tokens(&bad, 4, 32, Device::Cpu).unwrap();
    let s0 = Stage::new(&spec, 0, Device::Cpu).unwrap();
    let err = s0.forward(None, &bad_batch).unwrap_err().to_string();
    assert!(
        err.contains("token id 300 is outside the vocabulary"),
        "{err}"
    );
}

/// The one difference training leaves between the staged model and the monolithic one is
/// clipping: each stage clips its own gradient norm (as a miner must), the monolithic model the
/// joint one. With joint clipping, a step that clips leaves the staged weights where the
/// monolithic step leaves them; with per-stage clipping it does not.
#[test]
fn joint_clipping_steps_like_the_monolithic_model() {
    let mut spec = tiny_spec(&[[0, 2], [2, 4]], 0, CodecKind::Fp32, false);
    // Small enough that every stage's norm, and so the joint one, is clipped.
    spec.optimizer.grad_clip = 1e-3;
    let corpus = small_corpus(&spec);
    let step = |trainer: &mut Trainer| {
        let batch = trainer.batch(&corpus, Split::Train, 0).unwrap();
        trainer.step(&[batch]).unwrap()
    };
    let mut mono = Trainer::monolithic(&spec, Device::Cpu, 10).unwrap();
    let clipped = step(&mut mono);
    assert!(clipped.grad_norms[0] > 1e-2, "{:?}", clipped.grad_norms);
    assert!(clipped.clipped, "the step reports that it clipped");
    assert_eq!(clipped.gradient_wire, None, "measured only when asked");
    let mono_weights = mono.stages()[0].var_store().variables();
    let largest_gap = |trainer: &Trainer| {
        trainer
            .stages()
            .iter()
            .flat_map(|s| s.var_store().variables())
            .map(|(name, w)| max_abs_diff(&mono_weights[&name], &w))
            .fold(0.0, f64::max)
    };

    let mut joint = Trainer::pipeline(&spec, Device::Cpu, 10).unwrap();
    joint.clip_jointly(true);
    step(&mut joint);
    let gap = largest_gap(&joint);
    assert!(gap < 1e-6, "joint clipping: weights differ by {gap}");

    let mut per_stage = Trainer::pipeline(&spec, Device::Cpu, 10).unwrap();
    step(&mut per_stage);
    let gap = largest_gap(&per_stage);
    assert!(
        gap > 1e-5,
        "per-stage clipping: weights differ by only {gap}"
    );
}

/// A context-only boundary sends the residual stream less the sending stage's token
/// embedding, and the next stage adds its own back. So when the next stage's embedding
/// equals the first's, the full-width fp32 pipeline is exactly the monolithic model.
#[test]
fn context_only_boundary_sends_what_the_layers_added() {
    let mut spec = tiny_spec(&[[0, 2], [2, 4]], 0, CodecKind::Fp32, true);
    spec.boundary.context_only = true;
    spec.validate().unwrap();
    let corpus = small_corpus(&spec);
    let tokens = corpus
        .batch(Split::Train, spec.seed, 0, 4, spec.model.seq_len)
        .unwrap();
    let batch = Batch::from_tokens(&tokens, 4, spec.model.seq_len, Device::Cpu).unwrap();
    let mono = Stage::monolithic(&spec, Device::Cpu);
    let mono_loss = mono
        .forward(None, &batch)
        .unwrap()
        .output()
        .double_value(&[]);

    // What stage 0 sends, and the loss at the end, with and without the subtraction.
    let run = |context_only: bool| {
        let mut spec = spec.clone();
        spec.boundary.context_only = context_only;
        let s0 = Stage::new(&spec, 0, Device::Cpu).unwrap();
        let s1 = Stage::new(&spec, 1, Device::Cpu).unwrap();
        let embed = &s0.var_store().variables()["embed"];
        // The variables are views of the stage's weights: copying into one sets the weight.
        let mut weights = s1.var_store().variables();
        let stage_embed = weights.get_mut("stage_embed").unwrap();
        tch::no_grad(|| stage_embed.copy_(embed));
        let sent = s0.forward(None, &batch).unwrap();
        let out = s1.forward(Some(sent.output()), &batch).unwrap();
        let embedded = Tensor::embedding(embed, &batch.inputs, -1, false, false);
        (
            sent.output().detach(),
            out.output().double_value(&[]),
            embedded,
        )
    };
    let (context, loss, embedded) = run(true);
    assert!(
        (mono_loss - loss).abs() < 1e-5,
        "loss {mono_loss} monolithic vs {loss} through a context-only boundary"
    );
    let (residual, _, _) = run(false);
    let diff = max_abs_diff(&(&residual - &context), &embedded.detach());
    assert!(diff < 1e-6, "sent = residual - embedding, off by {diff}");
    assert!(
        embedded.abs().max().double_value(&[]) > 1e-3,
        "the embedding is not negligible"
    );
}
