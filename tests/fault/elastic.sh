#!/usr/bin/env bash
# Elastic training under faults (issue 5): real coordinator, real gloo
# workers on loopback, kill -9 (or SIGSTOP, or CPU hogs with the coordinator
# paused) at chosen moments. Each case checks that the
# job finishes, events.jsonl shows the generations, every sample of every
# epoch is used exactly once in committed steps, and the final accuracy is
# within 0.5 points of a fault-free run with the same seed.
# Usage: elastic.sh BIN_DIR DATA_FILE CASE. Every wait is bounded.
set -euo pipefail
bin=$1 data=$2 case=$3
. "$(dirname "$0")/run_helpers.sh"
fault_setup elastic

train_args=(--data "$data" --epochs 2 --seed 7 --ckpt-every 50)
# The fault-free accuracy with the same seed, measured once by the
# `baseline` case (a ctest fixture) and kept beside the data file.
baseline_file="$(dirname "$data")/elastic-baseline.txt"
baseline=$(cat "$baseline_file" 2>/dev/null || echo none)

# check RUN_DIR MIN_GENERATIONS: finished, generations, exactly-once, accuracy.
check() {
  "$py" - "$1" "$2" "$baseline" <<'PY' || fail "check failed"
import json, sys
from collections import Counter
run, min_gens, baseline = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
events = [json.loads(l) for l in open(f"{run}/events.jsonl")]
summary = json.load(open(f"{run}/summary.json"))
assert summary["ok"] is True, summary
gens = [e["generation"] for e in events if e["event"] == "generation"]
assert len(gens) >= min_gens, f"generations {gens}, want >= {min_gens}"
steps = {}
for e in events:
    if e["event"] == "step":
        steps[e["step"]] = e
final = summary["final_step"]
missing = sorted(set(range(1, final + 1)) - set(steps))
assert not missing, f"committed steps not 1..final: missing {missing[:20]} ({len(missing)})"
used = Counter()
for e in steps.values():
    for i in range(e["sample_begin"], e["sample_end"]):
        used[(e["epoch"], i)] += 1
epochs = {k[0] for k in used}
for ep in epochs:
    n = sum(1 for k in used if k[0] == ep)
    assert n == 60000, f"epoch {ep}: {n} distinct samples"
assert max(used.values()) == 1, "a sample was used twice"
acc = summary["test_accuracy"]
print(f"generations {gens}; {final} steps; exactly once; accuracy {acc} (baseline {baseline})")
assert abs(acc - baseline) <= 0.005, "accuracy differs from the fault-free run by > 0.5 points"
PY
}

# start_run N MIN MAX RESTARTS: herd run in the background (local launcher).
start_run() {
  herd run -n "$1" --min "$2" --max "$3" --max-restarts "$4" --backend gloo \
    --launcher local --run-dir "$tmp/run" --progress-interval 5 \
    -- herd-train "${train_args[@]}" > "$tmp/run.log" 2>&1 &
  run_pid=$!; pids+=("$run_pid")
}
finish_run() {
  for _ in $(seq 1 1200); do kill -0 "$run_pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$run_pid" 2>/dev/null && fail "job did not finish within 120 s"
  wait "$run_pid" || fail "herd run exited with status $?"
}

baseline_run() {
  herd run -n 4 --backend gloo --launcher local --run-dir "$tmp/run" \
    -- herd-train "${train_args[@]}" > "$tmp/run.log" 2>&1 || fail "fault-free run"
  "$py" -c "import json; print(json.load(open('$tmp/run/summary.json'))['test_accuracy'])" \
    > "$baseline_file"
  echo "baseline accuracy $(cat "$baseline_file")"
}

kill_random() {
  start_run 4 2 4 0; wait_steps "$tmp/run" 100
  victim=$(pid_of_rank "$tmp/run" $((RANDOM % 3 + 1))); kill -9 "$victim"
  finish_run; check "$tmp/run" 2
}
kill_rank0() {
  start_run 4 2 4 0; wait_steps "$tmp/run" 100
  kill -9 "$(pid_of_rank "$tmp/run" 0)"
  finish_run; check "$tmp/run" 2
}
kill_two() {
  start_run 4 2 4 0; wait_steps "$tmp/run" 100
  kill -9 "$(pid_of_rank "$tmp/run" 1)" "$(pid_of_rank "$tmp/run" 2)"
  finish_run; check "$tmp/run" 2
}
kill_in_reconfig() { # a second kill while the first generation change runs
  start_run 4 2 4 0; wait_steps "$tmp/run" 100
  a=$(pid_of_rank "$tmp/run" 1); b=$(pid_of_rank "$tmp/run" 3)
  kill -9 "$a"; wait_for "$tmp/run/events.jsonl" '"member_failed"' 10; kill -9 "$b"
  finish_run; check "$tmp/run" 2
}
kill_in_save() { # rank 1 dies while rank 0's checkpoint is being written
  start_run 4 2 4 0; wait_for "$tmp/run/events.jsonl" checkpoint_committed 60
  n=$(grep -c checkpoint_committed "$tmp/run/events.jsonl")
  for _ in $(seq 1 600); do
    [ "$(grep -c checkpoint_committed "$tmp/run/events.jsonl")" -gt "$n" ] && break
    ls "$tmp"/run/ckpt/*.tmp >/dev/null 2>&1 && break; sleep 0.01
  done
  kill -9 "$(pid_of_rank "$tmp/run" 1)"
  finish_run; check "$tmp/run" 2
  herd ckpt verify "$tmp/run/ckpt" > /dev/null || fail "checkpoints do not verify"
}
newcomer() { # a killed worker is restarted and admitted at the next generation
  start_run 4 2 4 1; wait_steps "$tmp/run" 100
  kill -9 "$(pid_of_rank "$tmp/run" 2)"
  finish_run; check "$tmp/run" 3
  grep -q "restarted worker" "$tmp/run.log" || fail "no restart"
}
kill_coord() { # the coordinator dies; workers keep stepping; a new one adopts them
  port=$(( (RANDOM % 20000) + 30000 )); token=t$RANDOM$RANDOM
  coord_args=(--port "$port" --token "$token" --run-dir "$tmp/run" --min 3)
  herd coord "${coord_args[@]}" > "$tmp/coord1.log" 2>&1 & c1=$!; pids+=("$c1")
  wait_for "$tmp/coord1.log" "listening" 10
  for r in 0 1 2; do
    HERD_COORD=tcp://127.0.0.1:$port HERD_TOKEN=$token HERD_RANK=$r HERD_WORLD_SIZE=3 \
      HERD_BACKEND=gloo herd-train "${train_args[@]}" --ckpt-dir "$tmp/run/ckpt" \
      > "$tmp/w$r.log" 2>&1 & pids+=($!)
  done
  wait_steps "$tmp/run" 100
  kill -9 "$c1"; before=$(grep -h -c "epoch" "$tmp"/w0.log || true)
  sleep 2
  herd coord "${coord_args[@]}" > "$tmp/coord2.log" 2>&1 & c2=$!; pids+=("$c2")
  for _ in $(seq 1 1200); do kill -0 "$c2" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$c2" 2>/dev/null && fail "restarted coordinator did not see the job finish"
  wait "$c2" || fail "restarted coordinator exited with status $?"
  grep -q '"adopted":true\|member_adopted' "$tmp/run/events.jsonl" || fail "workers were not adopted"
  check "$tmp/run" 1
}
below_min() { # two of three die with --min 2: the job pauses, then fails at
              # the join timeout with a clear message and a checkpoint
  export HERD_JOIN_TIMEOUT=4
  herd run -n 3 --min 2 --max 3 --backend gloo --launcher local --join-timeout 4 \
    --run-dir "$tmp/run" -- herd-train "${train_args[@]}" > "$tmp/run.log" 2>&1 &
  run_pid=$!; pids+=("$run_pid")
  wait_steps "$tmp/run" 100
  kill -9 "$(pid_of_rank "$tmp/run" 1)" "$(pid_of_rank "$tmp/run" 2)"
  rc=0; for _ in $(seq 1 600); do kill -0 "$run_pid" 2>/dev/null || break; sleep 0.1; done
  wait "$run_pid" || rc=$?
  [ "$rc" = 1 ] || fail "below --min: exit status $rc, want 1"
  grep -q "joined within\|too few workers" "$tmp/run.log" || fail "no clear below-min message"
  herd ckpt ls "$tmp/run/ckpt" | grep -q "resume would use: $tmp" || fail "no checkpoint to resume from"
}

# check_hung RUN T0 PID SIGNAL REASON BOUND_S READMIT_S: PID (hung at T0)
# is the one member failed, by SIGNAL with REASON in its reason, within
# BOUND_S; with READMIT_S > 0 it is not re-admitted sooner than that.
check_hung() {
  "$py" - "$@" <<'PY' || fail "not failed as hung in time"
import json, sys
run, t0, pid, signal, words = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
bound, readmit = float(sys.argv[6]), float(sys.argv[7])
events = [json.loads(l) for l in open(f"{run}/events.jsonl")]
failed = [e for e in events if e["event"] == "member_failed"]
assert len(failed) == 1 and failed[0]["pid"] == pid, failed
f = failed[0]
assert f["signal"] == signal and words in f["reason"], f
dt = f["ts"] - t0
assert dt <= bound, f"failed {dt:.2f} s after the hang began, bound {bound} s"
back = [e["ts"] - t0 for e in events
        if e["event"] == "member_joined" and e["pid"] == pid and e["ts"] > f["ts"]]
if readmit > 0:
    # Never back while it spins; and back once it stops, if the job still
    # runs then (a fast machine may finish the job first: then the rank is
    # told the job is done instead).
    assert all(b >= readmit for b in back), f"re-admitted {back} s after the hang began"
    done = [e["ts"] - t0 for e in events if e["event"] == "done"]
    if done and done[0] > readmit + 5:
        assert back, f"not re-admitted, though the job ran until {done[0]:.1f} s"
print(f"failed {dt:.2f} s after the hang began: {f['reason']}; "
      f"re-admitted {min(back) if back else float('nan'):.1f} s after")
PY
}
hung() { # a SIGSTOPped worker is failed as hung within 5 s (the documented
          # bound), by heartbeat silence; once continued it notices it was
          # dropped and rejoins as a newcomer
  start_run 4 2 4 0; wait_steps "$tmp/run" 100
  victim=$(pid_of_rank "$tmp/run" 2)
  stopped_at=$(date +%s.%N); kill -STOP "$victim"
  wait_for "$tmp/run/events.jsonl" '"member_failed"' 10
  kill -CONT "$victim"
  finish_run; check "$tmp/run" 2
  check_hung "$tmp/run" "$stopped_at" "$victim" heartbeat_silence hung 5.5 0
}
hung_compute() { # a rank spinning in its own computation (its link thread
                 # heartbeats on) is failed as hung by the progress watchdog
                 # within 5 s: all the others say they wait in the all-reduce.
                 # It is not re-admitted while it spins (12 s): a generation
                 # with it could not step.
  export HERD_TEST_HANG_ON_SIGUSR2=12 # spin 12 s, then carry on
  start_run 4 2 4 0; wait_steps "$tmp/run" 100
  victim=$(pid_of_rank "$tmp/run" 1)
  hung_at=$(date +%s.%N); kill -USR2 "$victim"
  wait_for "$tmp/run/events.jsonl" '"member_failed"' 15
  finish_run; check "$tmp/run" 2
  check_hung "$tmp/run" "$hung_at" "$victim" watchdog "hung at step" 5.0 11.9
}
no_false_alarm() { # CPU hogs on every core for the whole run and the
                   # coordinator (in herd run) paused 1.5 s: nobody failed
  # One process per hog (a bash subshell, bounded to 300 s), so the kill at
  # exit ends it and nothing keeps ctest's output pipe open.
  for _ in $(seq 1 "$(nproc)"); do
    (end=$((SECONDS + 300)); while ((SECONDS < end)); do :; done) \
      >/dev/null 2>&1 & pids+=($!)
  done
  start_run 4 2 4 0; wait_steps "$tmp/run" 100
  kill -STOP "$run_pid"; sleep 1.5; kill -CONT "$run_pid"
  finish_run; check "$tmp/run" 1
  ! grep '"member_failed"' "$tmp/run/events.jsonl" || fail "a live worker was failed"
  gens=$(grep -c '"event":"generation"' "$tmp/run/events.jsonl")
  [ "$gens" = 1 ] || fail "$gens generations, want 1"
}

mpirun_gloo() { # survivors keep running under mpirun too
  herd run -n 4 --min 2 --max 4 --backend gloo --launcher mpirun \
    --run-dir "$tmp/run" --progress-interval 5 -- herd-train "${train_args[@]}" \
    > "$tmp/run.log" 2>&1 &
  run_pid=$!; pids+=("$run_pid")
  wait_steps "$tmp/run" 100
  kill -9 "$(pid_of_rank "$tmp/run" 2)"
  finish_run; check "$tmp/run" 2
}
mpi_restart() { # a static world: a failure relaunches the job from checkpoint
  herd run -n 2 --backend mpi --launcher mpirun --max-restarts 1 \
    --ckpt-every 50 --run-dir "$tmp/run" --progress-interval 5 \
    -- herd-train "${train_args[@]}" > "$tmp/run.log" 2>&1 &
  run_pid=$!; pids+=("$run_pid")
  wait_for "$tmp/run/events.jsonl" checkpoint_committed 60
  wait_steps "$tmp/run" 150
  kill -9 "$(pid_of_rank "$tmp/run" 1)"
  finish_run
  grep -q '"job_restarted"' "$tmp/run/events.jsonl" || fail "no job_restarted event"
  [ "$("$py" -c "import json; print(json.load(open('$tmp/run/summary.json'))['resumed_from_step'] is not None)")" = True ] \
    || fail "the relaunched job did not resume from a checkpoint"
  check "$tmp/run" 2
}

if [ "$case" = baseline ]; then
  baseline_run
else
  [ "$baseline" != none ] || fail "no baseline: run the 'baseline' case first"
  "$case"
fi
echo "PASS: $case"
