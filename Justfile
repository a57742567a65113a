# Thin wrappers over the scripts the README names; `just` is optional
# (pip install rust-just).

# Train the staged model locally on real text (the main job).
demo *ARGS:
    scripts/demo {{ARGS}}

# Run every test.
test *ARGS:
    scripts/test {{ARGS}}

# Compression benchmark -> bench/results/compression.{json,md}.
bench-compression *ARGS:
    scripts/bench-compression {{ARGS}}

# Formatting, lints, tests and docs: what a change should pass.
check:
    cargo fmt --all --check
    bash -c 'source scripts/setup.sh && cargo clippy --workspace --all-targets --features sliver-chain/local-chain -- -D warnings'
    scripts/test
    bash -c 'source scripts/setup.sh && RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --features sliver-chain/local-chain'
