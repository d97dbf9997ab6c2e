#!/usr/bin/env bash
# A/B of herd-train builds on the same machine, alternated round by round
# (this VM's speed drifts by minutes, so A and B must share each minute):
# herd run -n 2, default model, batch 256, 420 steps (the first 20 not
# counted), --timeline; per run samples/s and rank 0's phase means, and
# after each round the machine's limit (step_limit).
# Usage: ab.sh [--rounds N] BUILD_DIR... (each with bin/herd, bin/herd-train)
#   e.g. git worktree add /tmp/base HEAD~1 && cmake -S /tmp/base -B /tmp/base/build
#        && cmake --build /tmp/base/build --target herd-train herd_cli
#        && bench/step_efficiency/ab.sh /tmp/base/build build
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
rounds=4
if [ "${1:-}" = --rounds ]; then rounds=$2; shift 2; fi
[ $# -ge 1 ] || { echo "usage: ab.sh [--rounds N] BUILD_DIR..." >&2; exit 2; }
for b in "$@"; do
  [ -x "$b/bin/herd" ] && [ -x "$b/bin/herd-train" ] ||
    { echo "ab.sh: $b has no bin/herd and bin/herd-train" >&2; exit 2; }
done
py=/usr/bin/python3
data="$root/build/test-data/fashion-mnist.h5"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
tmp=$(mktemp -d /tmp/herd-ab.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
for r in $(seq 1 "$rounds"); do
  for b in "$@"; do
    rm -rf "$tmp/run"
    "$b/bin/herd" run -n 2 --run-dir "$tmp/run" --ckpt-every 0 --http off -- \
      "$b/bin/herd-train" --data "$data" --batch 256 --max-steps 420 \
      --optimizer sgd --momentum 0.9 --weight-decay 1e-4 --lr 0.05 \
      --schedule constant --warmup-steps 0 --seed 42 --timeline "$tmp/tl.json" \
      > "$tmp/log" 2>&1 || { tail "$tmp/log"; exit 1; }
    "$py" "$root/bench/multihost/timeline_stats.py" "$tmp/tl.json" --ranks 2 \
      --batch 256 --skip 20 | "$py" -c '
import json, sys
d = json.load(sys.stdin); p = d["per_rank"]["0"]
print("%-20s %7.0f samples/s  data %.3f  compute %.3f  all-reduce %.3f"
      " (waiting %.3f, after arrival %.3f)  optimizer %.3f ms"
      % (sys.argv[1][-20:], d["samples_per_second"], p["data_ms"], p["compute_ms"],
         p["allreduce_ms"], d["wait_for_peers_ms_per_step"],
         d["allreduce_after_arrival_ms_per_step"], p["optimizer_ms"]))' "$b"
  done
  "$root/build/bin/step_limit" 256,128 256 |
    "$py" -c 'import json, sys; print("limit %.1f GFLOP/s" % (json.load(sys.stdin)["limit_flops"] / 1e9))'
done
