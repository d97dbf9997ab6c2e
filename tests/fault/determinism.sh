#!/usr/bin/env bash
# Bitwise reproducibility (issue 9): with --deterministic the final
# parameters' SHA-256 (summary.json param_sha256) is the same for -n 1..4,
# for the mpi and gloo backends, with two kill -9 and one join, for a
# run stopped and resumed at another world size, and for each of the
# arithmetic paths of trainer/det_gemm.c this CPU has (AVX-512, AVX2,
# portable: HERD_DET_GEMM).
# Usage: determinism.sh BIN_DIR DATA_FILE CASE. Every wait is bounded.
set -euo pipefail
bin=$1 data=$2 case=$3
. "$(dirname "$0")/run_helpers.sh"
fault_setup determ
args=(--data "$data" --deterministic --virtual-shards 12 --epochs 1 --max-steps 240 --seed 3)
sha() { "$py" -c "import json,sys; print(json.load(open(sys.argv[1]))['param_sha256'])" "$1/summary.json"; }
run() { # NAME N BACKEND [extra herd run args...]
  local name=$1 n=$2 backend=$3; shift 3
  timeout 300 herd run -n "$n" --backend "$backend" --run-dir "$tmp/$name" "$@" \
    -- herd-train "${args[@]}" > "$tmp/$name.log" 2>&1 || fail "run $name"
  sha "$tmp/$name"
}

world_sizes() {
  ref=$(run n1 1 mpi)
  for n in 2 3 4; do
    got=$(run "n$n" "$n" mpi)
    [ "$got" = "$ref" ] || fail "-n $n: $got != -n 1: $ref"
  done
  echo "param_sha256 $ref for -n 1, 2, 3, 4"
}
backends() {
  a=$(run mpi 3 mpi); b=$(run gloo 3 gloo --launcher local)
  [ "$a" = "$b" ] || fail "mpi $a != gloo $b"
  echo "param_sha256 $a for mpi and gloo"
}
faults() { # two kill -9 and one join vs a fault-free run
  ref=$(run clean 4 gloo --launcher local)
  herd run -n 4 --min 2 --max 4 --max-restarts 1 --backend gloo --launcher local \
    --run-dir "$tmp/faulty" -- herd-train "${args[@]}" > "$tmp/faulty.log" 2>&1 &
  run_pid=$!; pids+=("$run_pid")
  wait_steps "$tmp/faulty" 60
  kill -9 "$(pid_of_rank "$tmp/faulty" 1)"
  wait_steps "$tmp/faulty" 120
  kill -9 "$(pid_of_rank "$tmp/faulty" 3)"
  for _ in $(seq 1 1800); do kill -0 "$run_pid" 2>/dev/null || break; sleep 0.1; done
  wait "$run_pid" || fail "faulty run failed"
  gens=$(grep -c '"event":"generation"' "$tmp/faulty/events.jsonl")
  [ "$gens" -ge 3 ] || fail "expected >= 3 generations (two failures and a join), got $gens"
  got=$(sha "$tmp/faulty")
  [ "$got" = "$ref" ] || fail "with faults $got != fault-free $ref"
  echo "param_sha256 $ref with two kill -9 and a join ($gens generations)"
}
resume() { # stopped at step 100 on 2 workers, resumed on 3
  ref=$(run whole 2 mpi)
  timeout 300 herd run -n 2 --backend mpi --run-dir "$tmp/split" -- herd-train \
    "${args[@]/#240/100}" --max-steps 100 > "$tmp/split1.log" 2>&1 || fail "first half"
  got=$(run split 3 mpi)
  [ "$("$py" -c "import json; print(json.load(open('$tmp/split/summary.json'))['resumed_from_step'])")" = 100 ] \
    || fail "second half did not resume from step 100"
  [ "$got" = "$ref" ] || fail "resumed at another world size $got != $ref"
  echo "param_sha256 $ref stopped at 100 on 2 ranks and resumed on 3"
}
kernels() { # the same bits from every det_gemm path this CPU runs
  args=("${args[@]/#240/30}")
  ref=$(HERD_DET_GEMM=avx512 run avx512 2 mpi)
  for path in avx2 portable; do
    got=$(HERD_LOG_LEVEL=info HERD_DET_GEMM=$path run "$path" 2 mpi)
    grep -q -- "--deterministic: $path arithmetic" "$tmp/$path.log" ||
      { [ $path = avx2 ] && grep -q -- "--deterministic: portable arithmetic" "$tmp/$path.log"; } ||
      fail "the workers did not take HERD_DET_GEMM=$path"
    [ "$got" = "$ref" ] || fail "HERD_DET_GEMM=$path: $got != the widest path's $ref"
  done
  echo "param_sha256 $ref from the avx512 (where present), avx2 and portable paths"
}
"$case"
echo "PASS: $case"
