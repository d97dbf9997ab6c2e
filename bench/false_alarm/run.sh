#!/usr/bin/env bash
# False alarms under load (issue 13, proof 1): a fault-free 4-worker job
# (the demo's model, 3 epochs, gloo, local launcher) run LOADED times with
# a CPU hog on every core for the whole run and the coordinator (inside
# `herd run`) paused once with SIGSTOP for 1.5 s, then COLD times from a
# cold page cache (echo 3 > /proc/sys/vm/drop_caches before each; root).
# Nothing is killed, so every member_failed is a false alarm. Prints one
# line per run and a total; exits 1 when any run had a member_failed, did
# not finish ok, or formed more than one generation.
# Usage: bench/false_alarm/run.sh BIN_DIR DATA_FILE [LOADED=20] [COLD=5]
# (tests/fault elastic.sh no_false_alarm is the one-run version in CI).
set -euo pipefail
bin=$(cd "$1" && pwd) data=$(readlink -f "$2") loaded=${3:-20} cold=${4:-5}
case=false_alarm
. "$(dirname "$0")/../../tests/fault/run_helpers.sh"
fault_setup false-alarm

# hogs_start: one busy loop per core, each bounded to 600 s.
hogs_start() {
  hogs=()
  for _ in $(seq 1 "$(nproc)"); do
    (end=$((SECONDS + 600)); while ((SECONDS < end)); do :; done) \
      >/dev/null 2>&1 & hogs+=($!); pids+=($!)
  done
}
hogs_stop() { kill "${hogs[@]}" 2>/dev/null || true; wait "${hogs[@]}" 2>/dev/null || true; }

# one_run KIND N: a job; the coordinator paused 1.5 s after 100 steps.
one_run() {
  local kind=$1 n=$2 run="$tmp/$1-$2" start rc=0
  start=$(date +%s.%N)
  herd run -n 4 --backend gloo --launcher local --run-dir "$run" \
    --progress-interval 30 -- herd-train --data "$data" --epochs 3 \
    > "$run.log" 2>&1 &
  run_pid=$!; pids+=("$run_pid")
  wait_steps "$run" 100
  kill -STOP "$run_pid"; sleep 1.5; kill -CONT "$run_pid"
  for _ in $(seq 1 3000); do kill -0 "$run_pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$run_pid" 2>/dev/null && fail "$kind run $n did not finish within 300 s"
  wait "$run_pid" || rc=$?
  "$py" - "$run" "$kind" "$n" "$rc" "$start" <<'PY'
import json, sys, time
run, kind, n, rc, start = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5])
events = [json.loads(l) for l in open(f"{run}/events.jsonl")]
failed = [e for e in events if e["event"] == "member_failed"]
suspect = sum(1 for e in events if e["event"] == "member_suspect")
gens = sum(1 for e in events if e["event"] == "generation")
ok = json.load(open(f"{run}/summary.json")).get("ok") is True and rc == 0
print(json.dumps({"kind": kind, "run": int(n), "ok": ok, "exit": rc,
                  "member_failed": len(failed), "member_suspect": suspect,
                  "generations": gens, "wall_s": round(time.time() - start, 1),
                  "reasons": [f["reason"] for f in failed]}))
PY
}

results="$tmp/results.jsonl"
for n in $(seq 1 "$loaded"); do
  hogs_start; one_run loaded "$n" | tee -a "$results"; hogs_stop
done
for n in $(seq 1 "$cold"); do
  sync; echo 3 > /proc/sys/vm/drop_caches || fail "cannot drop the page cache (root?)"
  one_run cold "$n" | tee -a "$results"
done
"$py" - "$results" <<'PY'
import json, sys
runs = [json.loads(l) for l in open(sys.argv[1])]
bad = [r for r in runs if not r["ok"] or r["member_failed"] or r["generations"] != 1]
for kind in ("loaded", "cold"):
    k = [r for r in runs if r["kind"] == kind]
    if k:
        print(f"{kind}: {len(k)} runs, {sum(r['ok'] for r in k)} ok, "
              f"member_failed {sum(r['member_failed'] for r in k)}, "
              f"member_suspect {sum(r['member_suspect'] for r in k)}, "
              f"wall {min(r['wall_s'] for r in k)}-{max(r['wall_s'] for r in k)} s")
print("PASS" if not bad else f"FAIL: {bad}")
sys.exit(1 if bad else 0)
PY
