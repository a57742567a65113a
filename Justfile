# Thin wrappers over the scripts the README names; `just` is optional
# (pip install rust-just).

# The local subnet: chain, store, validator and six miners as processes (the main job).
demo *ARGS:
    scripts/demo {{ARGS}}

# Run every test.
test *ARGS:
    scripts/test {{ARGS}}

# Compression benchmark -> bench/results/compression.{json,md}.
bench-compression *ARGS:
    scripts/bench-compression {{ARGS}}

# Swarm benchmark -> bench/results/swarm.{json,md}.
bench-swarm *ARGS:
    scripts/bench-swarm {{ARGS}}

# Scale benchmark -> bench/results/scale.{json,md}.
bench-scale *ARGS:
    scripts/bench-scale {{ARGS}}

# Incentives benchmark -> bench/results/incentives.{json,md}.
bench-incentives *ARGS:
    scripts/bench-incentives {{ARGS}}

# Formatting, lints, tests and docs: what a change should pass.
check:
    cargo fmt --all --check
    bash -c 'source scripts/setup.sh && cargo clippy --workspace --all-targets -- -D warnings'
    scripts/test
    bash -c 'source scripts/setup.sh && RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps'

# Refresh metadata/finney.scale from a live node (network access and `cargo install subxt-cli`).
metadata-finney URL:
    subxt metadata --url {{URL}} --version 16 --format bytes > metadata/finney.scale.partial
    mv metadata/finney.scale.partial metadata/finney.scale
    sha256sum metadata/finney.scale
