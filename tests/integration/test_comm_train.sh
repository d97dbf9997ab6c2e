#!/usr/bin/env bash
# herd-train reaches the same accuracy with --backend mpi and --backend gloo
# (same seed, same data, 4 workers under `herd run`: mpirun for mpi, the
# local launcher for gloo, whose ranks rendezvous through the coordinator's
# KV store). Usage: test_comm_train.sh BIN_DIR DATA.h5
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
a=$(accuracy "$tmp/mpi.out") b=$(accuracy "$tmp/gloo.out")
echo "final test accuracy: mpi $a, gloo $b"
[ -n "$a" ] && [ -n "$b" ] || { echo "FAIL: no accuracy line"; exit 1; }
# Same math in a different summation order: allow float rounding, no more.
awk -v a="$a" -v b="$b" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= 0.005) }' \
  || { echo "FAIL: accuracies differ"; exit 1; }
echo "ok"
