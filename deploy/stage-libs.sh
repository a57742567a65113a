#!/usr/bin/env bash
# Used by deploy/Dockerfile's build stage: copies the binaries given and the libtorch
# libraries they load into OUT, at the paths the runtime image keeps them (the binaries'
# rpath names libtorch's directory, so it stays where it was built).
#
#   deploy/stage-libs.sh OUT BINARY...
#
# Needs LIBTORCH (set by scripts/setup.sh). With SLIVER_CUDA=1 it copies libtorch's whole
# lib directory and the wheel's nvidia/ libraries, since libtorch loads much of CUDA with
# dlopen, which ldd cannot see; otherwise exactly the libraries ldd resolves under the
# libtorch install (libtorch_cpu, libc10, libgomp and the CUDA runtime stubs libtorch_cpu
# names), at their real paths.
set -euo pipefail

out="$1"
shift
: "${LIBTORCH:?source scripts/setup.sh first}"
root="$(dirname "$LIBTORCH")"

mkdir -p "$out/usr/local/bin"
cp "$@" "$out/usr/local/bin/"

if [ "${SLIVER_CUDA:-0}" = 1 ]; then
    mkdir -p "$out$LIBTORCH"
    cp -a "$LIBTORCH/lib" "$out$LIBTORCH/"
    if [ -d "$root/nvidia" ]; then
        cp -a "$root/nvidia" "$out$root/"
    fi
    rm -f "$out$LIBTORCH/lib/libtorch_python.so"
else
    ldd "$@" | awk -v root="$root/" 'index($3, root) == 1 { print $3 }' \
        | xargs -r realpath | sort -u \
        | while read -r lib; do
            mkdir -p "$out$(dirname "$lib")"
            cp -L "$lib" "$out$lib"
        done
fi
# Every library the binaries name must resolve (checked again in the runtime image).
if ldd "$@" | grep 'not found'; then
    echo "stage-libs: a library is missing" >&2
    exit 1
fi
