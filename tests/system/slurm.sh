#!/usr/bin/env bash
# herd on a real (single-node) Slurm: installs Debian's Slurm and munge when
# missing (root only), starts munged + slurmctld + slurmd from slurm/ with a
# private state folder under /tmp (slurm/test-cluster.sh), then:
#   1. srun -n 4 --mpi=pmix herd-train against a `herd coord` completes;
#   2. slurm/train.sbatch sent USR1 (scancel --signal=USR1 --batch)
#      checkpoints, requeues itself and resumes from that checkpoint;
#   3. a task killed under `srun --no-kill --kill-on-bad-exit=0` leaves the
#      survivors training (elastic gloo backend);
#   4. `herd run --launcher srun`: every setting the registry marks for the
#      workers (`herd settings --to-workers`) is in each task's
#      environment, with the values given, and the job finishes;
#   5. `herd run --launcher srun` killed -9: srun gets SIGUSR1 (its
#      parent-death signal), forwards it, and the tasks stop with a
#      checkpoint instead of training on unwatched.
# Fails with a clear message when Slurm cannot start (never a silent skip).
# Stops exactly the daemons it started. Every wait is bounded.
# KEEP_STATE=1 keeps the state folder (daemon logs) for a look afterwards.
# Usage: slurm.sh BIN_DIR DATA_FILE
set -uo pipefail
bin=$(cd "$1" && pwd) data=$(cd "$(dirname "$2")" && pwd)/$(basename "$2")
here=$(cd "$(dirname "$0")/../.." && pwd)
export PATH="$bin:$PATH"
state=$(mktemp -d /tmp/herd-slurm.XXXXXX)
export SLURM_CONF=$state/slurm.conf
# Few CPUs here: more tasks than CPUs, and lenient heartbeats on a busy box.
export SLURM_OVERCOMMIT=1 SBATCH_OVERCOMMIT=1 HERD_HEARTBEAT_MS=200 HERD_HEARTBEAT_MISSES=25
pids=()
cleanup() {
  scancel --full --quiet --user=root 2>/dev/null
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
  sleep 1
  CTLD_PORT=$ctld_port SLURMD_PORT=$slurmd_port "$here/slurm/test-cluster.sh" stop "$state"
  if [ -n "${KEEP_STATE:-}" ]; then echo "slurm.sh: logs kept in $state"; else rm -rf "$state"; fi
}
skip() { echo "FAIL: cannot run: $*" >&2; exit 1; } # never a silent skip
fail() { echo "FAIL: $*" >&2; exit 1; }
json() { python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"; }

. "$(dirname "$0")/slurm_install.sh" # install_slurm

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# start_coord MIN [MAX]: `herd coord` on loopback; exports HERD_COORD/TOKEN.
start_coord() {
  rm -rf "$state/coord"
  herd coord --port 0 --min "$1" --max "${2:-$1}" --token slurm-test --run-dir "$state/coord" \
    --join-timeout 120 > "$state/coord.out" 2>&1 &
  coord_pid=$!
  pids+=("$coord_pid")
  for _ in $(seq 1 100); do grep -q '^HERD_COORD=' "$state/coord.out" 2>/dev/null && break; sleep 0.1; done
  export HERD_COORD=$(sed -n 's/^HERD_COORD=//p' "$state/coord.out") HERD_TOKEN=slurm-test
  [ -n "$HERD_COORD" ] || fail "herd coord did not start"
}

wait_pid() { # wait_pid PID SECONDS
  for _ in $(seq 1 $(($2 * 10))); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$1" 2>/dev/null && return 124
  wait "$1"
}

srun_pmix() {
  srun --mpi=list 2>&1 | grep -q pmix || fail "srun --mpi=list has no pmix"
  start_coord 4
  timeout 180 srun -n 4 --mpi=pmix herd-train --data "$data" --epochs 1 --max-steps 40 \
    > "$state/srun.out" 2>&1 || { cat "$state/srun.out"; fail "srun -n 4 --mpi=pmix"; }
  wait_pid "$coord_pid" 60 || { cat "$state/coord.out"; fail "herd coord did not finish"; }
  [ "$(json "$state/coord/summary.json" 'j["ok"] and j["world_size"] == 4 and j["final_step"] == 40')" = True ] \
    || fail "srun job summary: $(cat "$state/coord/summary.json")"
  unset HERD_COORD HERD_TOKEN
  echo "ok 1: srun -n 4 --mpi=pmix herd-train finished against herd coord"
}

steps_in() { local n; n=$(grep -c '"event":"step"' "$1" 2>/dev/null); echo "${n:-0}"; }

# no_secret_in_argv WHAT: the job token the running herd processes hold
# (HERD_TOKEN in their environment) is in none of their argvs
# (/proc/PID/cmdline): secrets travel in the environment or files.
no_secret_in_argv() {
  local token="" seen=0 p
  for p in $(pgrep -f "herd(-train| coord)"); do
    [ -r "/proc/$p/environ" ] || continue
    token=$(tr '\0' '\n' < "/proc/$p/environ" | sed -n 's/^HERD_TOKEN=//p')
    [ -n "$token" ] && break
  done
  [ -n "$token" ] || fail "$1: no herd process holds HERD_TOKEN"
  for p in $(pgrep -f "herd(-train| coord)"); do
    [ -r "/proc/$p/cmdline" ] || continue
    seen=$((seen + 1))
    tr '\0' ' ' < "/proc/$p/cmdline" | grep -q -- "$token" &&
      fail "$1: pid $p shows the job token in its argv"
  done
  [ "$seen" -ge 2 ] || fail "$1: only $seen herd processes looked at"
  echo "$1: the job token is in no argv of $seen herd processes"
}

sbatch_preempt() {
  local run=$state/run out=$state/job.out id
  id=$(HERD_RUN_DIR=$run HERD_COORD_BIND=127.0.0.1 HERD_COORD_PORT=$(free_port) \
    sbatch --parsable -n 4 --output="$out" "$here/slurm/train.sbatch" \
    --data "$data" --epochs 5 --max-steps 400 --ckpt-every 100000) || fail "sbatch"
  for _ in $(seq 1 600); do [ "$(steps_in "$run/events.jsonl")" -ge 30 ] && break; sleep 0.1; done
  [ "$(steps_in "$run/events.jsonl")" -ge 30 ] ||
    { cat "$out"; squeue; tail -5 "$state/slurmctld.log"; fail "sbatch job never trained"; }
  no_secret_in_argv "sbatch"
  scancel --signal=USR1 --batch "$id" || fail "scancel --signal=USR1"
  # Requeued: Slurm holds a requeued job ~2 minutes (BeginTime); release it.
  for _ in $(seq 1 300); do
    [ "$(scontrol show job "$id" | grep -o 'Restarts=[0-9]*')" = Restarts=1 ] && break; sleep 0.1
  done
  scontrol show job "$id" | grep -q 'Restarts=1' || { cat "$out"; fail "job was not requeued"; }
  if ! grep -q checkpoint_committed "$run/events.jsonl"; then
    echo "SKIP 2: herd-train did not checkpoint on SIGUSR1 (signal handling not in this build)"
    scancel "$id"; return 0
  fi
  local saved
  saved=$(grep checkpoint_committed "$run/events.jsonl" | tail -1 | python3 -c 'import json,sys; print(json.loads(sys.stdin.read())["step"])')
  for _ in $(seq 1 300); do
    scontrol show job "$id" | grep -q 'JobState=PENDING' && break; sleep 0.1
  done
  # Release it only once slurmd has cleaned up the first run: launched
  # while the old steps still exist, slurmd refuses the revoked credential
  # and the job fails with exit code 1 before the script runs.
  for _ in $(seq 1 300); do
    pgrep -f "slurmstepd: \\[$id\\." > /dev/null || break; sleep 0.1
  done
  pgrep -f "slurmstepd: \\[$id\\." > /dev/null && fail "the first run's steps did not end in 30 s"
  sleep 1
  scontrol update JobId="$id" StartTime=now || { scontrol show job "$id"; fail "cannot release the requeued job"; }
  for _ in $(seq 1 1800); do
    squeue -h -j "$id" 2>/dev/null | grep -q . || break; sleep 0.1
  done
  squeue -h -j "$id" 2>/dev/null | grep -q . && { cat "$out"; fail "requeued job did not finish in 180 s"; }
  grep -q "restart 1," "$out" ||
    { cat "$out"; scontrol show job "$id"; tail -20 "$state/slurmd.log"
      fail "no SLURM_RESTART_COUNT=1 in the requeued run"; }
  [ "$(json "$run/summary.json" 'j["resumed_from_step"]')" = "$saved" ] ||
    { cat "$out"; fail "requeued run did not resume from step $saved: $(cat "$run/summary.json")"; }
  [ "$(json "$run/summary.json" 'j["ok"] and j["final_step"] == 400')" = True ] ||
    fail "requeued run summary: $(cat "$run/summary.json")"
  echo "ok 2: USR1 -> checkpoint at step $saved -> requeue -> resumed and finished"
}

no_kill_elastic() {
  if ! HERD_COORD= timeout 60 herd-train --backend gloo --data "$data" --max-steps 1 --epochs 1 \
       > "$state/gloo.out" 2>&1; then
    echo "SKIP 3: the gloo backend is not available in this build ($(tail -1 "$state/gloo.out"))"
    return 0
  fi
  start_coord 3 4
  srun -n 4 --no-kill --kill-on-bad-exit=0 herd-train --backend gloo --data "$data" \
    --epochs 1 --max-steps 300 > "$state/elastic.out" 2>&1 &
  local srun_pid=$!
  pids+=("$srun_pid")
  for _ in $(seq 1 600); do [ "$(steps_in "$state/coord/events.jsonl")" -ge 20 ] && break; sleep 0.1; done
  local victim
  victim=$(pgrep -f -n "herd-train --backend gloo") || fail "no worker to kill"
  kill -9 "$victim"
  wait_pid "$srun_pid" 240
  wait_pid "$coord_pid" 60
  local rc=0
  python3 - "$state/coord/events.jsonl" <<'PY' || rc=$?
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1])]
failed = [i for i, e in enumerate(ev) if e["event"] == "member_failed"]
before = [e for e in ev[:failed[0] if failed else len(ev)] if e["event"] == "step"]
assert before and all(e["world_size"] == 4 for e in before), \
    "the four srun tasks did not train as one world"
assert failed, "no member_failed event"
later = [e for e in ev[failed[0]:] if e["event"] == "step" and e["world_size"] == 3]
assert later, "no steps at world size 3 after the failure"
assert ev[-1]["event"] == "done" and ev[-1]["ok"], ev[-1]
PY
  [ $rc = 0 ] || { tail -20 "$state/elastic.out"; fail "survivors did not keep training"; }
  echo "ok 3: a killed task under srun --no-kill; survivors trained on at world size 3"
}

herd_run_srun() {
  local out=$state/herd-run
  mkdir -p "$out"
  # Settings herd run passes on only when given: give them.
  (umask 077; head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$out/ckpt.key")
  HERD_LOG_LEVEL=info HERD_LOG_SUBSYS=worker,train HERD_CKPT_KEY_FILE=$out/ckpt.key \
    timeout 240 herd run -n 2 --launcher srun --run-dir "$out/run" --ckpt-every 7 --resume never \
    --backend gloo --iface lo --join-timeout 33 --curve on \
    -- sh -c 'env > "$1/env.$$"; shift; exec "$@"' sh "$out" \
    herd-train --data "$data" --max-steps 5 > "$out/log" 2>&1 \
    || { tail -30 "$out/log"; fail "herd run --launcher srun failed"; }
  local envs=("$out"/env.*)
  [ ${#envs[@]} = 2 ] || fail "herd run --launcher srun started ${#envs[@]} tasks, want 2"
  for f in "${envs[@]}"; do
    for name in $(herd settings --to-workers); do # the registry's list
      grep -q "^$name=." "$f" || fail "srun: $name did not reach a task"
    done
    for want in HERD_CKPT_EVERY=7 HERD_RESUME=never HERD_BACKEND=gloo HERD_IFACE=lo \
        HERD_JOIN_TIMEOUT=33 "HERD_RUN_DIR=$out/run" "HERD_CKPT_DIR=$out/run/ckpt"; do
      grep -qx -- "$want" "$f" || fail "srun: $want did not reach a task"
    done
    grep -q '^HERD_COORD=tcp://' "$f" || fail "srun: no HERD_COORD in a task"
  done
  [ "$(json "$out/run/summary.json" 'j["final_step"] == 5 and j["world_size"] == 2')" = True ] ||
    fail "herd run --launcher srun summary: $(cat "$out/run/summary.json")"
  echo "ok 4: herd run --launcher srun: every worker option reached both tasks"

  herd run -n 2 --launcher srun --run-dir "$out/run2" --ckpt-every 100000 \
    -- herd-train --data "$data" --epochs 50 > "$out/log2" 2>&1 &
  local run_pid=$! workers launcher
  pids+=("$run_pid")
  for _ in $(seq 1 900); do [ "$(steps_in "$out/run2/events.jsonl")" -ge 30 ] && break; sleep 0.1; done
  workers=$(python3 -c 'import json,sys; print(" ".join(str(e["pid"]) for e in map(json.loads, open(sys.argv[1])) if e["event"] == "member_joined"))' \
    "$out/run2/events.jsonl" 2>/dev/null)
  launcher=$(pgrep -P "$run_pid" -x srun)
  [ -n "$workers" ] && [ -n "$launcher" ] || { tail -20 "$out/log2"; fail "no tasks or no srun within 90 s"; }
  kill -9 "$run_pid"
  for _ in $(seq 1 300); do kill -0 $workers $launcher 2>/dev/null || break; sleep 0.1; done
  for p in $workers $launcher; do
    kill -0 "$p" 2>/dev/null && { kill -9 $workers $launcher; fail "process $p still running 30 s after herd run died"; }
  done
  local stop last
  stop=$(sed -n 's/^herd-train: stop requested by signal: saving step \([0-9]*\) .*/\1/p' "$out/log2" | head -1)
  [ -n "$stop" ] || { tail -20 "$out/log2"; fail "srun tasks gave no stop step"; }
  last=$(ls "$out"/run2/ckpt/ckpt-*.h5 | tail -1 | sed 's/.*ckpt-0*\([0-9]*\).h5/\1/')
  [ "$last" = "$stop" ] || fail "newest checkpoint is step $last, the stop step was $stop"
  herd ckpt verify "$out/run2/ckpt" > /dev/null || fail "the stop checkpoint does not verify"
  echo "ok 5: herd run --launcher srun killed: srun and its tasks stopped at step $stop with a checkpoint"
}

install_slurm
ctld_port=$(free_port) slurmd_port=$(free_port)
trap cleanup EXIT
CTLD_PORT=$ctld_port SLURMD_PORT=$slurmd_port "$here/slurm/test-cluster.sh" start "$state" \
  || skip "the single-node Slurm did not start (see the logs above)"
srun_pmix
sbatch_preempt
no_kill_elastic
herd_run_srun
echo "PASS: slurm"
