#!/usr/bin/env bash
# gpu_nccl: tests/gpu/test_nccl.c under mpirun, one rank per GPU. A sum over
# one rank proves little, so 2 or more ranks run wherever 2 GPUs exist; on a
# machine with one GPU the test runs on 1 rank and says so (NCCL refuses
# two ranks on one GPU: "Duplicate GPU detected"). No GPU: skip (77).
#   nccl.sh TEST_NCCL
set -uo pipefail
test_nccl=$1
gpus=0
if command -v nvidia-smi >/dev/null 2>&1; then
  gpus=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU' || true)
fi
if [ "$gpus" -eq 0 ]; then
  echo "SKIP: no CUDA GPU on this machine (nvidia-smi lists none); the nccl" \
       "backend was compiled but not run"
  exit 77
fi
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
mpirun --oversubscribe --bind-to none -np "$gpus" "$test_nccl"
rc=$?
if [ "$gpus" -eq 1 ]; then
  echo "NOTE: one GPU here, so the collectives ran on 1 rank only: the sums" \
       "and the abort of a stuck collective were not checked across ranks"
fi
exit $rc
