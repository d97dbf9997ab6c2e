#!/usr/bin/env bash
# bench/monitor_overhead: what watching a run costs the training step.
#
# Runs the same herd-train job PAIRS times with monitoring off (--http off,
# no timeline) and PAIRS times with everything on (HTTP server, /metrics and
# /status each polled every POLL seconds the way Prometheus and `herd top`
# would, and --timeline), alternating off/on so drift on a shared machine
# hits both sides alike. Throughput is measured from the coordinator's step
# events (steps WARMUP..last over their wall time, times the global batch),
# not from the workers' own one-second figure. Prints each run and the
# difference of the medians.
#
# Usage: bench/monitor_overhead.sh [BUILD_DIR] [DATA]
#   env: PAIRS (5) STEPS (3000) NPROC (2) POLL (0.5) WARMUP (200)
set -euo pipefail
build=${1:-build}
data=${2:-$build/test-data/fashion-mnist.h5}
pairs=${PAIRS:-5} steps=${STEPS:-3000} nproc=${NPROC:-2} poll=${POLL:-0.5}
warmup=${WARMUP:-200} batch=128
export PATH="$(cd "$build/bin" && pwd):$PATH"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
[ -f "$data" ] || { echo "no data file $data (herd data import fashion-mnist --out $data)" >&2; exit 2; }
tmp=$(mktemp -d /tmp/herd-monitor-bench.XXXXXX)
poller=""
trap '[ -n "$poller" ] && kill "$poller" 2>/dev/null; rm -rf "$tmp"' EXIT

# samples/s from events.jsonl: steps warmup..last over their timestamps.
throughput() {
  /usr/bin/python3 - "$1" "$warmup" "$batch" <<'PY'
import json, sys
steps = [json.loads(l) for l in open(sys.argv[1]) if '"event":"step"' in l]
w, batch = int(sys.argv[2]), int(sys.argv[3])
steps = [s for s in steps if s["step"] >= w]
dt = steps[-1]["ts"] - steps[0]["ts"]
print(f"{(len(steps) - 1) * batch / dt:.1f}")
PY
}

# poll URL: GETs /metrics and /status every $poll seconds until killed.
poll() {
  for _ in $(seq 1 100000); do
    curl -s -o /dev/null "${1}metrics"; curl -s -o /dev/null "${1}status"
    sleep "$poll"
  done
}

run_one() { # mode index
  local mode=$1 dir="$tmp/$1-$2" args=(--http off) train=()
  if [ "$mode" = on ]; then
    args=(--http 127.0.0.1:0); train=(--timeline "$dir/timeline.json")
  fi
  mkdir -p "$dir"
  herd run -n "$nproc" --run-dir "$dir/run" --ckpt-every 0 --resume never \
    "${args[@]}" -- herd-train --data "$data" --epochs 100 --max-steps "$steps" \
    "${train[@]}" > "$dir/out" 2>&1 &
  local job=$!
  if [ "$mode" = on ]; then
    local url=""
    for _ in $(seq 1 200); do
      url=$(grep -o 'monitoring http://[^ ]*' "$dir/out" 2>/dev/null | cut -d' ' -f2 || true)
      [ -n "$url" ] && break; sleep 0.05
    done
    poll "$url" & poller=$!
  fi
  wait "$job" || { cat "$dir/out" >&2; exit 1; }
  [ -n "$poller" ] && { kill "$poller" 2>/dev/null || true; wait "$poller" 2>/dev/null || true; poller=""; }
  throughput "$dir/run/events.jsonl"
}

off=() on=()
for i in $(seq 1 "$pairs"); do
  a=$(run_one off "$i"); off+=("$a")
  b=$(run_one on "$i"); on+=("$b")
  printf 'pair %d: off %9.1f samples/s   on %9.1f samples/s\n' "$i" "$a" "$b"
done
/usr/bin/python3 - "${off[*]}" "${on[*]}" <<'PY'
import statistics, sys
off = [float(x) for x in sys.argv[1].split()]
on = [float(x) for x in sys.argv[2].split()]
mo, mn = statistics.median(off), statistics.median(on)
ratios = [b / a - 1 for a, b in zip(off, on)]
print(f"per-pair on/off - 1: {' '.join(f'{r:+.1%}' for r in ratios)};"
      f" median {statistics.median(ratios):+.2%}")
print(f"median off {mo:.1f}  on {mn:.1f}  difference {(mn - mo) / mo:+.2%}"
      f"  (mean off {statistics.mean(off):.1f} on {statistics.mean(on):.1f};"
      f" run-to-run spread off {statistics.pstdev(off) / statistics.mean(off):.1%},"
      f" on {statistics.pstdev(on) / statistics.mean(on):.1%})")
PY
