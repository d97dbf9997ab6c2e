#!/usr/bin/env bash
# herd-train reaches the same accuracy with --backend mpi and --backend gloo
# (same seed, same data, 4 workers under `herd run`: mpirun for mpi, the
# local launcher for gloo, whose ranks rendezvous through the coordinator's
# KV store), and within a point with the gradient sent as bfloat16
# (--grad-dtype bf16, in several buckets with the step's counts apart in
# f32). Usage: test_comm_train.sh BIN_DIR DATA.h5
set -euo pipefail
bin=$1 data=$2
export PATH="$bin:$PATH" OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
accuracy() { sed -n 's/.*test accuracy \([0-9.]*\),.*/\1/p' "$1" | tail -1; }
timeout 240 herd run -n 4 --backend mpi --run-dir "$tmp/mpi" -- \
  herd-train --data "$data" --epochs 1 --max-steps 150 > "$tmp/mpi.out" 2>&1 \
  || { cat "$tmp/mpi.out"; echo "FAIL: mpi run"; exit 1; }
timeout 240 herd run --launcher local -n 4 --backend gloo --run-dir "$tmp/gloo" -- \
  herd-train --data "$data" --epochs 1 --max-steps 150 > "$tmp/gloo.out" 2>&1 \
  || { cat "$tmp/gloo.out"; echo "FAIL: gloo run"; exit 1; }
timeout 240 herd run --launcher local -n 4 --backend gloo --run-dir "$tmp/bf16" -- \
  herd-train --data "$data" --epochs 1 --max-steps 150 --grad-dtype bf16 --bucket-mb 0.25 \
  > "$tmp/bf16.out" 2>&1 || { cat "$tmp/bf16.out"; echo "FAIL: gloo bf16 run"; exit 1; }
a=$(accuracy "$tmp/mpi.out") b=$(accuracy "$tmp/gloo.out") c=$(accuracy "$tmp/bf16.out")
echo "bf16 gradients: test accuracy $c"
# Every sample counted once: the step tail's sums are exact in f32.
grep -q "step 150" "$tmp/bf16.out" || { cat "$tmp/bf16.out"; echo "FAIL: bf16 run did not reach step 150"; exit 1; }
awk -v a="$b" -v b="$c" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(b != "" && d <= 0.01) }' \
  || { echo "FAIL: bf16 accuracy $c vs f32 $b"; exit 1; }
echo "final test accuracy: mpi $a, gloo $b"
[ -n "$a" ] && [ -n "$b" ] || { echo "FAIL: no accuracy line"; exit 1; }
# Same math in a different summation order: allow float rounding, no more.
awk -v a="$a" -v b="$b" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= 0.005) }' \
  || { echo "FAIL: accuracies differ"; exit 1; }
echo "ok"
