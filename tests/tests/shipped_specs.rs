//! The run specs shipped in `specs/` are valid and the demo's spec trains.

use std::path::PathBuf;

use sliver_miner::cli::LocalArgs;

fn specs_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../specs")
}

#[test]
fn every_shipped_spec_is_valid() {
    let mut seen = 0;
    for entry in std::fs::read_dir(specs_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let summary = sliver_validator::spec::describe(&path)
                .unwrap_or_else(|e| panic!("{}: {e:#}", path.display()));
            assert!(
                summary.contains("is valid") && summary.contains("stage 0"),
                "{summary}"
            );
            seen += 1;
        }
    }
    assert!(
        seen >= 2,
        "expected the local and benchmark specs, found {seen}"
    );
}

#[test]
fn the_demo_spec_trains_and_resumes_through_the_miner() {
    let out = tempfile::tempdir().unwrap();
    let args = |steps| LocalArgs {
        spec: specs_dir().join("local.toml"),
        data: Some(sliver_common::testing::text_dir()),
        device: "cpu".parse().unwrap(),
        steps,
        eval_every: 0,
        eval_batches: 1,
        out: out.path().to_path_buf(),
        checkpoint_every: 0,
        fresh: false,
        threads: 0,
    };
    sliver_miner::local::run(&args(2)).unwrap();
    sliver_miner::local::run(&args(3)).unwrap();
    let log = std::fs::read_to_string(out.path().join("loss.csv")).unwrap();
    let steps: Vec<&str> = log
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap())
        .collect();
    assert_eq!(
        steps,
        ["1", "2", "3"],
        "the second run resumed at step 3:\n{log}"
    );
    // The last row carries a held-out loss and real boundary traffic.
    let last: Vec<&str> = log.lines().last().unwrap().split(',').collect();
    let eval: f64 = last[3].parse().unwrap();
    assert!(eval.is_finite() && eval > 0.0, "{log}");
    assert!(
        last[5].parse::<u64>().unwrap() > 0 && last[6].parse::<u64>().unwrap() > 0,
        "{log}"
    );
}
