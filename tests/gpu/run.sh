#!/usr/bin/env bash
# GPU checks in one go, ready to run as-is on a GPU machine:
#   tests/gpu/run.sh [BUILD_DIR]      (default build-gpu)
# Builds herd with CUDA/NCCL (HERD_CUDA=ON), runs the tests labelled `gpu`
# (the nccl backend against a host reference, on 1 rank and on as many ranks
# as there are GPUs), and prints a summary. Without nvcc/NCCL or without a
# GPU it says so and exits 0: a skip, not a failure.
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$root/build-gpu}
cuda=${HERD_CUDA_ROOT:-/usr/local/cuda}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
summary() { echo "== tests/gpu/run.sh: $*"; }

if [ ! -f "$cuda/include/nccl.h" ] && [ ! -f /usr/include/nccl.h ]; then
  summary "SKIP: no CUDA toolkit with NCCL under $cuda"; exit 0
fi
gpus=0
if command -v nvidia-smi >/dev/null 2>&1; then
  gpus=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU' || true)
fi
echo "GPUs: $gpus"; [ "$gpus" -gt 0 ] && nvidia-smi -L
cmake -S "$root" -B "$build" -DHERD_CUDA=ON > "$build.cmake.log" 2>&1 \
  || { tail -30 "$build.cmake.log"; summary "FAIL: cmake configure"; exit 1; }
cmake --build "$build" -j"$(nproc)" > "$build.build.log" 2>&1 \
  || { grep -E 'error|Error' "$build.build.log" | head -30; summary "FAIL: build"; exit 1; }
echo "built with CUDA in $build"
if [ "$gpus" -eq 0 ]; then
  summary "SKIP: built with CUDA, but no GPU on this machine (nothing run)"; exit 0
fi
(cd "$build" && ctest --output-on-failure -L gpu --timeout 600) | tee "$build/gpu-ctest.log"
rc=${PIPESTATUS[0]}
# The nccl test on every GPU of this machine, one rank per GPU.
if [ "$gpus" -gt 1 ] && [ -x "$build/bin/test_nccl" ]; then
  mpirun --oversubscribe --bind-to none -np "$gpus" "$build/bin/test_nccl" || rc=1
fi
grep -E 'tests passed|SKIP|FAIL' "$build/gpu-ctest.log" | sed 's/^/  /'
[ "$rc" -eq 0 ] && summary "PASS" || summary "FAIL (rc $rc)"
exit "$rc"
