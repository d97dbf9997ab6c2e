#!/usr/bin/env bash
# Black-box tests of `herd run` + herd-train: real coordinator, real MPI
# workers, real HDF5 files. Usage: run_tests.sh BIN_DIR DATA_FILE CASE
# Every wait is bounded; each case cleans up its temp dir.
set -euo pipefail
bin=$1 data=$2 case=$3
export PATH="$bin:$PATH"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
py=/usr/bin/python3
tmp=$(mktemp -d /tmp/herd-test.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }

# json FILE EXPR: evaluates a Python expression over the parsed file `j`.
json() { "$py" -c 'import json,sys; j=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"; }

# Checks events.jsonl: every line is JSON with ts and event; step events are
# 1..N in order with consistent sample ranges.
check_events() {
  "$py" - "$1" "$2" <<'PY'
import json, sys
path, final = sys.argv[1], int(sys.argv[2])
events = [json.loads(l) for l in open(path)]
assert all(isinstance(e["ts"], float) and "event" in e for e in events)
kinds = [e["event"] for e in events]
for k in ("member_joined", "generation", "step", "checkpoint_committed", "epoch_end", "done"):
    assert k in kinds, f"no {k} event"
steps = [e for e in events if e["event"] == "step"]
nums = [e["step"] for e in steps]
assert nums == list(range(nums[0], final + 1)), f"steps not consecutive: {nums[:5]}..{nums[-5:]}"
for e in steps:
    for f in ("epoch", "generation", "world_size", "loss", "samples_per_second", "sample_begin", "sample_end"):
        assert f in e, f"step event lacks {f}"
    assert e["sample_end"] > e["sample_begin"]
joined = [e for e in events if e["event"] == "member_joined"]
assert all({"rank", "pid", "host"} <= set(e) for e in joined)
assert events[-1]["event"] == "done" and events[-1]["ok"] is True
print("events ok:", len(events), "lines")
PY
}

run_short() {
  herd run -n 2 --run-dir "$tmp/run" --ckpt-every 25 -- herd-train --data "$data" \
    --epochs 1 --max-steps 60 > "$tmp/out" 2>&1 || { cat "$tmp/out"; fail "herd run failed"; }
  s="$tmp/run/summary.json"
  [ "$(json "$s" 'j["final_step"]')" = 60 ] || fail "final_step"
  [ "$(json "$s" 'j["world_size"]')" = 2 ] || fail "world_size"
  [ "$(json "$s" 'j["resumed_from_step"]')" = None ] || fail "fresh run has resumed_from_step"
  [ "$(json "$s" 'j["test_accuracy"] > 0.6')" = True ] || fail "accuracy after 60 steps: $(json "$s" 'j["test_accuracy"]')"
  [ "$(json "$s" 'len(j["checkpoints"]) >= 3')" = True ] || fail "checkpoints"
  [ "$(json "$s" 'j["samples_per_second"] > 0')" = True ] || fail "samples_per_second"
  json "$s" 'j["epochs"]' >/dev/null
  check_events "$tmp/run/events.jsonl" 60
  herd ckpt verify "$tmp/run/ckpt" >/dev/null || fail "checkpoints do not verify"
  grep -q '^herd: done' "$tmp/out" || fail "no final line"
}

run_resume() {
  herd run -n 2 --run-dir "$tmp/run" -- herd-train --data "$data" --max-steps 40 >/dev/null 2>&1 || fail "first run"
  herd run -n 2 --run-dir "$tmp/run" -- herd-train --data "$data" --max-steps 70 > "$tmp/out" 2>&1 \
    || { cat "$tmp/out"; fail "resumed run failed"; }
  [ "$(json "$tmp/run/summary.json" 'j["resumed_from_step"]')" = 40 ] || fail "did not resume from 40"
  [ "$(json "$tmp/run/summary.json" 'j["final_step"]')" = 70 ] || fail "final_step after resume"
  herd run -n 2 --run-dir "$tmp/run" --resume never -- herd-train --data "$data" --max-steps 30 >/dev/null 2>&1 || fail "never run"
  [ "$(json "$tmp/run/summary.json" 'j["resumed_from_step"]')" = None ] || fail "--resume never resumed"
  [ "$(json "$tmp/run/summary.json" 'j["final_step"]')" = 30 ] || fail "--resume never final_step"
  # An explicit checkpoint file.
  ck=$(ls "$tmp"/run/ckpt/ckpt-*.h5 | head -1)
  herd run -n 1 --run-dir "$tmp/run2" --resume "$ck" -- herd-train --data "$data" --max-steps 50 >/dev/null 2>&1 || fail "resume PATH"
  [ "$(json "$tmp/run2/summary.json" 'j["resumed_from_step"] is not None')" = True ] || fail "resume PATH not used"
}

run_sigint() {
  herd run -n 2 --run-dir "$tmp/run" --ckpt-every 20 -- herd-train --data "$data" --epochs 50 \
    > "$tmp/out" 2>&1 &
  pid=$!
  for _ in $(seq 1 600); do
    grep -q checkpoint_committed "$tmp/run/events.jsonl" 2>/dev/null && break
    sleep 0.1
  done
  grep -q checkpoint_committed "$tmp/run/events.jsonl" || { kill -9 $pid; fail "no checkpoint within 60 s"; }
  kill -INT $pid
  rc=0
  for _ in $(seq 1 300); do kill -0 $pid 2>/dev/null || break; sleep 0.1; done
  kill -0 $pid 2>/dev/null && { kill -9 $pid; fail "herd run did not stop within 30 s of SIGINT"; }
  wait $pid || rc=$?
  [ $rc = 130 ] || { cat "$tmp/out"; fail "exit status $rc after SIGINT, want 130"; }
  [ "$(json "$tmp/run/summary.json" 'j["ok"]')" = False ] || fail "interrupted run marked ok"
  # herd run turned SIGINT into SIGUSR1: the workers agreed on a stop step,
  # saved it, committed it and exited 0; the next run resumes exactly there.
  stop=$(sed -n 's/^herd-train: stop requested by signal: saving step \([0-9]*\) .*/\1/p' "$tmp/out")
  [ -n "$stop" ] || { cat "$tmp/out"; fail "workers did not stop gracefully"; }
  grep -q "exited with status\|killed by signal" "$tmp/out" && { cat "$tmp/out"; fail "a worker did not exit 0"; }
  last=$(ls "$tmp"/run/ckpt/ckpt-*.h5 | tail -1 | sed 's/.*ckpt-0*\([0-9]*\).h5/\1/')
  [ "$last" = "$stop" ] || fail "newest checkpoint is step $last, stop step was $stop"
  herd ckpt verify "$tmp/run/ckpt" >/dev/null || fail "checkpoints do not verify after SIGINT"
  herd run -n 2 --run-dir "$tmp/run" -- herd-train --data "$data" --epochs 50 --max-steps $((stop + 10)) \
    >/dev/null 2>&1 || fail "resume after SIGINT"
  [ "$(json "$tmp/run/summary.json" 'j["resumed_from_step"]')" = "$stop" ] || fail "did not resume from $stop"
}

# expect_error EXPECTED_STATUS PATTERN CMD...: bounded, one clear line, no crash.
expect_error() {
  local want=$1 pattern=$2; shift 2
  rc=0
  timeout 120 "$@" > "$tmp/out" 2> "$tmp/err" || rc=$?
  [ $rc != 124 ] || fail "hang: $*"
  [ $rc -lt 128 ] || fail "crash (status $rc): $*"
  [ "$want" = any ] && [ $rc != 0 ] || [ $rc = "$want" ] || fail "status $rc, want $want: $*"
  grep -q -- "$pattern" "$tmp/err" || { cat "$tmp/err"; fail "no '$pattern' in stderr of: $*"; }
}

bad_input() {
  expect_error 2 "nproc" herd run -n 0 -- herd-train
  expect_error 2 "not found" herd run -n 1 --run-dir "$tmp/r" -- no-such-command-herd
  touch "$tmp/file"
  expect_error 2 "run dir" herd run -n 1 --run-dir "$tmp/file/sub" -- herd-train
  expect_error any "missing.h5" herd run -n 2 --run-dir "$tmp/r" -- herd-train --data "$tmp/missing.h5"
  [ "$(grep -c 'herd-train: error' "$tmp/err")" = 1 ] || { cat "$tmp/err"; fail "missing data: want one worker error line"; }
  expect_error 2 "unknown option" herd run --bogus -- herd-train
  expect_error 2 "epochs" herd-train --epochs zero
  # A corrupt IDX file: import fails, names the file, leaves no output.
  mkdir "$tmp/idx"
  for f in train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do
    cp "/usr/share/datasets/fashion-mnist/$f.gz" "$tmp/idx/"
  done
  head -c 100000 /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz > "$tmp/idx/train-images-idx3-ubyte.gz"
  expect_error any "train-images-idx3-ubyte.gz" herd data import fashion-mnist --src "$tmp/idx" --out "$tmp/o.h5"
  [ ! -e "$tmp/o.h5" ] && [ ! -e "$tmp/o.h5.tmp" ] || fail "partial import output left"
  expect_error any "nonexistent-dir" herd data import fashion-mnist --src /nonexistent-dir --out "$tmp/o.h5"
  # --help anywhere prints usage, exits 0 and does nothing else.
  for cmd in "" "run" "coord" "data" "data import" "data import fashion-mnist" \
             "ckpt" "ckpt ls" "ckpt verify" "ckpt inspect" "ckpt prune" "status" "top"; do
    (cd "$tmp" && timeout 20 herd $cmd --help > "$tmp/help" 2>&1) || fail "herd $cmd --help: status $?"
    grep -q "^usage: herd" "$tmp/help" || { cat "$tmp/help"; fail "herd $cmd --help: no usage"; }
  done
  [ ! -e "$tmp/data" ] || fail "herd data import --help imported"
  timeout 20 herd-train --help | grep -q "^usage: herd-train" || fail "herd-train --help"
}

# h5attr FILE NAME: one attribute of an HDF5 file.
h5attr() { "$py" -c 'import h5py,sys; print(h5py.File(sys.argv[1], "r").attrs[sys.argv[2]])' "$1" "$2"; }

# Issue 15: a checkpoint resumes only with the settings that keep its data
# cursor and model meaning what they meant; the rest may change.
resume_checks() {
  local r="$tmp/run" train=(herd-train --data "$data" --virtual-shards 8)
  herd run -n 2 --run-dir "$r" -- "${train[@]}" --max-steps 20 >/dev/null 2>&1 || fail "first run"
  [ "$(h5attr "$r/ckpt/ckpt-0000000020.h5" virtual_shards)" = 8 ] || fail "virtual_shards attribute is not the run's 8"
  for change in "--batch 64:--batch 128" "--seed 7:--seed 42" "--virtual-shards 4:--virtual-shards 8" \
                "--hidden 64:--hidden 256,128"; do
    local new=${change%%:*} old=${change#*:}
    expect_error 2 "saved with $old, this run has $new" \
      herd run -n 2 --run-dir "$r" -- "${train[@]}" --max-steps 30 $new
    grep -q -- "--resume never" "$tmp/err" || fail "$new: no way to start over named"
  done
  expect_error 2 "past --max-steps 10" herd run -n 2 --run-dir "$r" -- "${train[@]}" --max-steps 10
  # A different width spelling is the same model; lr and epochs may change.
  herd run -n 2 --run-dir "$r" -- "${train[@]}" --hidden "256, 128" --max-steps 30 --lr 0.002 --epochs 16 \
    > "$tmp/out" 2>&1 || { cat "$tmp/out"; fail "resume with safe changes"; }
  grep -q "changed settings: --epochs 15 -> 16, --lr 0.001 -> 0.002" "$tmp/out" || { cat "$tmp/out"; fail "changes not listed"; }
  [ "$(json "$r/summary.json" 'j["resumed_from_step"]')" = 20 ] || fail "did not resume from 20"
  # Starting over is what the message says it is.
  herd run -n 2 --run-dir "$r" --resume never -- "${train[@]}" --batch 64 --max-steps 5 >/dev/null 2>&1 \
    || fail "--resume never with another batch"
}

# Issue 15: a diverging step (NaN loss) stops the job with exit 1 before
# the update; no checkpoint of that step or later exists, the newest one
# holds finite parameters and every one verifies. Both step paths.
nonfinite() {
  for mode in "" --deterministic; do
    rm -rf "$tmp/run"
    expect_error 1 "not finite" herd run -n 2 --run-dir "$tmp/run" --ckpt-every 1 -- herd-train \
      --data "$data" --max-steps 40 --lr 100 --optimizer sgd --warmup-steps 0 $mode
    [ "$(grep -c 'not finite' "$tmp/err")" = 1 ] || { cat "$tmp/err"; fail "want one error line"; }
    bad=$(sed -n 's/^herd-train: error (rank 0): step \([0-9]*\): .*/\1/p' "$tmp/err")
    [ -n "$bad" ] || { cat "$tmp/err"; fail "the error names no step"; }
    [ "$(json "$tmp/run/summary.json" 'j["ok"]')" = False ] || fail "summary ok after a NaN step"
    last=$(ls "$tmp"/run/ckpt/ckpt-*.h5 | tail -1 | sed 's/.*ckpt-0*\([0-9]*\).h5/\1/')
    [ "$last" -lt "$bad" ] || fail "checkpoint $last committed at or after bad step $bad"
    herd ckpt verify "$tmp/run/ckpt" >/dev/null || fail "checkpoints do not verify"
    "$py" -c 'import h5py,sys,numpy as np; assert np.isfinite(h5py.File(sys.argv[1],"r")["params"][:]).all()' \
      "$tmp/run/ckpt/ckpt-$(printf %010d "$last").h5" || fail "non-finite parameters in checkpoint $last"
  done
}

# Issue 15: images the model cannot take are refused before training, by
# every rank, with exit 2; `herd data inspect` shows what a file holds.
data_shape() {
  "$py" - "$tmp/wide.h5" "$tmp/labels.h5" <<'PY'
import sys, h5py, numpy as np
rng = np.random.default_rng(0)
for path, side, classes in ((sys.argv[1], 32, 10), (sys.argv[2], 28, 13)):
    with h5py.File(path, "w") as f:
        for split, n in (("train", 64), ("test", 16)):
            f[f"{split}/images"] = rng.integers(0, 256, (n, side, side), dtype=np.uint8)
            f[f"{split}/labels"] = (np.arange(n) % classes).astype(np.uint8)
PY
  herd data inspect "$tmp/wide.h5" > "$tmp/out" || fail "inspect wide.h5"
  grep -q "train 64 samples, images 32x32 (1024 inputs), labels 0..9" "$tmp/out" || { cat "$tmp/out"; fail "inspect train"; }
  grep -q "test  16 samples, images 32x32" "$tmp/out" || { cat "$tmp/out"; fail "inspect test"; }
  herd data inspect "$data" | grep -q "train 60000 samples, images 28x28 (784 inputs), labels 0..9" || fail "inspect real data"
  expect_error 1 "label 10 at index 10" herd data inspect "$tmp/labels.h5"
  expect_error 2 "expected one FILE" herd data inspect
  expect_error 2 "32x32 (1024 inputs), but the model takes 784" herd-train --data "$tmp/wide.h5"
  expect_error 2 "32x32 (1024 inputs), but the model takes 784" \
    herd run -n 2 --run-dir "$tmp/r" -- herd-train --data "$tmp/wide.h5"
  [ "$(grep -c 'herd-train: error' "$tmp/err")" = 1 ] || { cat "$tmp/err"; fail "want one worker error line"; }
}

# Issue 15: a closed stdout (| head) does not stop herd run or the job.
sigpipe() {
  for launcher in mpirun local; do
    rm -rf "$tmp/run"
    timeout 120 herd run -n 2 --launcher $launcher --run-dir "$tmp/run" --progress-interval 0.2 -- \
      herd-train --data "$data" --max-steps 100 2> "$tmp/err" | head -3 > "$tmp/out"
    status=("${PIPESTATUS[@]}")
    [ "${status[0]}" = 0 ] || { cat "$tmp/err"; fail "$launcher: herd run exited ${status[0]} behind a closed pipe"; }
    [ "$(wc -l < "$tmp/out")" = 3 ] || fail "$launcher: head saw no output"
    [ "$(json "$tmp/run/summary.json" 'j["ok"]')" = True ] || fail "$launcher: job not ok"
    [ "$(json "$tmp/run/summary.json" 'j["final_step"]')" = 100 ] || fail "$launcher: job did not finish"
  done
}

# Issue 15: --join-timeout reaches the workers (HERD_JOIN_TIMEOUT) under
# every launcher; mpirun and srun are stand-ins that print their argv.
# Issues 15 and 16: every setting the registry marks for the workers
# (`herd settings --to-workers`) reaches them, for real, under --launcher
# local and mpirun (srun: system_slurm runs herd run under a real Slurm;
# here a stand-in srun checks its argv), with the value herd run was given;
# and the heartbeat interval arrives in the Roster (the coordinator that
# judges liveness decides it).
options_reach_workers() {
  local opts=(--ckpt-every 7 --resume never --backend gloo --iface lo
              --join-timeout 33 --heartbeat-ms 150 --heartbeat-misses 15 --curve on)
  local names
  names=$(herd settings --to-workers)
  # Settings herd run passes on only when given: give them.
  (umask 077; head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$tmp/ckpt.key")
  export HERD_CKPT_KEY_FILE=$tmp/ckpt.key
  [ "$(echo "$names" | wc -l)" -ge 12 ] || fail "herd settings --to-workers: $names"
  for launcher in local mpirun; do
    local out="$tmp/$launcher"
    mkdir -p "$out"
    HERD_LOG_LEVEL=info HERD_LOG_SUBSYS=worker,train herd run -n 2 --launcher $launcher \
      --run-dir "$out/run" "${opts[@]}" \
      -- sh -c 'env > "$1/env.$$"; shift; exec "$@"' sh "$out" \
      herd-train --data "$data" --max-steps 5 > "$out/log" 2>&1 \
      || { tail -30 "$out/log"; fail "$launcher: herd run failed"; }
    local envs=("$out"/env.*)
    [ ${#envs[@]} = 2 ] || fail "$launcher: ${#envs[@]} workers started, want 2"
    for f in "${envs[@]}"; do
      for name in $names; do
        grep -q "^$name=." "$f" || fail "$launcher: $name did not reach a worker"
      done
      for want in HERD_CKPT_EVERY=7 HERD_RESUME=never HERD_BACKEND=gloo HERD_IFACE=lo \
          HERD_JOIN_TIMEOUT=33 "HERD_RUN_DIR=$out/run" "HERD_CKPT_DIR=$out/run/ckpt" \
          HERD_LOG_LEVEL=info HERD_LOG_SUBSYS=worker,train HERD_JOB_ID=herd; do
        grep -qx -- "$want" "$f" || fail "$launcher: $want did not reach a worker"
      done
      grep -q '^HERD_COORD=tcp://' "$f" || fail "$launcher: no HERD_COORD"
    done
    [ "$(grep -c 'roster: generation 1 rank ./2, heartbeat every 150 ms' "$out/log")" = 2 ] \
      || { grep roster "$out/log"; fail "$launcher: --heartbeat-ms 150 did not reach both workers"; }
    [ "$(json "$out/run/summary.json" 'j["final_step"]')" = 5 ] || fail "$launcher: the job did not finish"
    echo "$launcher: every option arrived"
  done
  mkdir "$tmp/bin"
  printf '#!/bin/sh\nprintf "%%s\\n" "$@" > "%s/srun.args"\nenv > "%s/srun.env"\n' \
    "$tmp" "$tmp" > "$tmp/bin/srun"
  chmod +x "$tmp/bin/srun"
  HERD_LOG_LEVEL=info HERD_LOG_SUBSYS=worker PATH="$tmp/bin:$PATH" \
    herd run -n 2 --launcher srun "${opts[@]}" --run-dir "$tmp/r" -- herd-train >/dev/null 2>&1 || true
  for name in $names; do
    grep -q "^$name=" "$tmp/srun.env" || fail "srun: $name not set"
    grep -q -- "--export=ALL,.*$name" "$tmp/srun.args" || fail "srun: $name not exported"
  done
}

# Issue 15: `herd run` killed -9 never leaves its workers training
# unwatched: local workers notice the re-parenting; mpirun gets SIGUSR1 (its
# parent-death signal) and forwards it to the ranks. Either way they agree
# on a stop step, save it and exit. parent_killed LAUNCHER [MESSAGE]:
# MESSAGE is what the workers must say about it.
parent_killed() {
  local launcher=$1 message=${2:-}
  herd run -n 2 --launcher "$launcher" --run-dir "$tmp/run" --ckpt-every 100000 \
    -- herd-train --data "$data" --epochs 50 > "$tmp/out" 2>&1 &
  pid=$!
  for _ in $(seq 1 600); do
    [ "$(cat "$tmp/run/events.jsonl" 2>/dev/null | grep -c '"step"')" -ge 50 ] && break
    sleep 0.1
  done
  workers=$("$py" -c 'import json,sys; print(" ".join(str(e["pid"]) for e in map(json.loads, open(sys.argv[1])) if e["event"] == "member_joined"))' \
    "$tmp/run/events.jsonl")
  [ -n "$workers" ] || { kill -9 $pid; fail "no workers joined within 60 s"; }
  [ "$launcher" = local ] || workers="$workers $(pgrep -P $pid -x "$launcher")"
  kill -9 $pid
  for _ in $(seq 1 300); do kill -0 $workers 2>/dev/null || break; sleep 0.1; done
  for w in $workers; do
    kill -0 "$w" 2>/dev/null && { kill -9 $workers 2>/dev/null; fail "process $w still running 30 s after herd run died"; }
  done
  [ -z "$message" ] || grep -q "$message" "$tmp/out" ||
    { cat "$tmp/out"; fail "workers did not say why they stopped"; }
  stop=$(sed -n 's/^herd-train: stop requested by signal: saving step \([0-9]*\) .*/\1/p' "$tmp/out" | head -1)
  [ -n "$stop" ] || { cat "$tmp/out"; fail "no stop step"; }
  last=$(ls "$tmp"/run/ckpt/ckpt-*.h5 | tail -1 | sed 's/.*ckpt-0*\([0-9]*\).h5/\1/')
  [ "$last" = "$stop" ] || fail "newest checkpoint is step $last, stop step was $stop"
  herd ckpt verify "$tmp/run/ckpt" > /dev/null || fail "checkpoint does not verify"
  echo "$launcher: workers stopped at step $stop with a checkpoint after herd run was killed"
}
parent_death() { parent_killed local "launcher (pid [0-9]*) is gone: stopping with a checkpoint"; }
parent_death_mpirun() { parent_killed mpirun; }

"$case"
echo "PASS: $case"
