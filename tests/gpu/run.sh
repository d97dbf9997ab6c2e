#!/usr/bin/env bash
# GPU checks in one go, ready to run as-is on a GPU machine:
#   tests/gpu/run.sh [BUILD_DIR]      (default build-gpu)
# Builds herd with CUDA/NCCL (HERD_CUDA=ON), runs the tests labelled `gpu`
# (the nccl backend against a host reference, one rank per GPU (gpu_nccl);
# the CUDA model and optimizer against the CPU ones;
# herd-train --device cuda for 200 steps against the CPU run), compares the
# throughput of herd-train --device cuda with the CPU path (one worker each,
# samples/s from each run's summary.json; and --device cuda on every GPU when
# there are several), and prints a summary. Without nvcc/NCCL or without a
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
mkdir -p "$build" # logs inside it, not beside it in the source tree
cmake -S "$root" -B "$build" -DHERD_CUDA=ON > "$build/gpu-cmake.log" 2>&1 \
  || { tail -30 "$build/gpu-cmake.log"; summary "FAIL: cmake configure"; exit 1; }
cmake --build "$build" -j"$(nproc)" > "$build/gpu-build.log" 2>&1 \
  || { grep -E 'error|Error' "$build/gpu-build.log" | head -30; summary "FAIL: build"; exit 1; }
echo "built with CUDA in $build"
if [ "$gpus" -eq 0 ]; then
  summary "SKIP: built with CUDA, but no GPU on this machine (nothing run)"; exit 0
fi
(cd "$build" && ctest --output-on-failure -L gpu --timeout 600) | tee "$build/gpu-ctest.log"
rc=${PIPESTATUS[0]}

# Throughput: herd-train on one CPU worker (one core: OpenBLAS runs one
# thread per worker) vs one GPU, at two global batch sizes. Each run is long
# enough for herd-train's one-second throughput window.
data="$build/test-data/fashion-mnist.h5"
[ -f "$data" ] || data="$root/data/fashion-mnist.h5"
bench="$build/gpu-bench"
rm -rf "$bench"; mkdir -p "$bench"
s_train() { # NAME WORKERS -- herd-train options...
  local name=$1 n=$2; shift 3
  PATH="$build/bin:$PATH" timeout 900 "$build/bin/herd" run -n "$n" \
    --run-dir "$bench/$name" --progress-interval 60 -- \
    "$build/bin/herd-train" --data "$data" "$@" > "$bench/$name.log" 2>&1 \
    || { echo "  $name failed:"; tail -5 "$bench/$name.log"; rc=1; }
}
if [ -f "$data" ]; then
  s_train cpu-b128 1 -- --device cpu --batch 128 --max-steps 600
  s_train cuda-b128 1 -- --device cuda --batch 128 --max-steps 6000
  s_train cpu-b1024 1 -- --device cpu --batch 1024 --max-steps 100
  s_train cuda-b1024 1 -- --device cuda --batch 1024 --max-steps 2000
  [ "$gpus" -gt 1 ] && s_train "cuda-b1024-n$gpus" "$gpus" -- --device cuda \
    --batch 1024 --max-steps 2000
  /usr/bin/python3 - "$bench" <<'PY' | tee "$bench/summary.txt"
import glob, json, os, sys
runs = {}
for path in sorted(glob.glob(f"{sys.argv[1]}/*/summary.json")):
    runs[os.path.basename(os.path.dirname(path))] = json.load(open(path))
print("  herd-train throughput (samples/s from summary.json):")
print(f"  {'run':<18} {'workers':>7} {'steps':>6} {'samples/s':>11} "
      f"{'ms/step':>8} {'accuracy':>8}")
for name, s in runs.items():
    batch = int(name.split("-b")[1].split("-")[0])
    sps = s["samples_per_second"] or float("nan")
    print(f"  {name:<18} {s['world_size']:>7} {s['final_step']:>6} "
          f"{sps:>11.0f} {1000 * batch / sps:>8.3f} {s['test_accuracy']:>8.4f}")
for batch in (128, 1024):
    cpu, gpu = runs.get(f"cpu-b{batch}"), runs.get(f"cuda-b{batch}")
    if cpu and gpu and cpu["samples_per_second"]:
        print(f"  batch {batch}: --device cuda is "
              f"{gpu['samples_per_second'] / cpu['samples_per_second']:.1f}x "
              f"the CPU worker")
PY
else
  echo "  no dataset at $data: throughput comparison skipped"
fi
grep -E 'tests passed|SKIP|FAIL' "$build/gpu-ctest.log" | sed 's/^/  /'
[ "$rc" -eq 0 ] && summary "PASS" || summary "FAIL (rc $rc)"
exit "$rc"
