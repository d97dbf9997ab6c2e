#!/usr/bin/env bash
# Step-time overhead of --deterministic over the default mode (issue 9),
# for the default model and a ~25M-parameter one, measured in the same
# script on the same machine, alternating runs. Prints a table and writes
# bench/results/determinism.json.
# Usage: bench/determinism/run.sh BIN_DIR DATA [--quick]
set -euo pipefail
bin=$1 data=$2 quick=${3:-}
export PATH="$bin:$PATH" OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
out=${OUT_DIR:-$(cd "$(dirname "$0")/.." && pwd)/results}
mkdir -p "$out"
tmp=$(mktemp -d /tmp/herd-determ-bench.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
n=${NPROC:-2} pairs=${PAIRS:-3}
[ "$quick" = --quick ] && pairs=1
declare -A models=([default]="256,128" [25m]="4096,4096,1024")
declare -A steps=([default]=400 [25m]=12)
[ "$quick" = --quick ] && steps=([default]=100 [25m]=3)
results=()
for model in default 25m; do
  for pair in $(seq 1 "$pairs"); do
    for mode in default deterministic; do
      flag=(); [ $mode = deterministic ] && flag=(--deterministic)
      dir="$tmp/$model-$mode-$pair"
      timeout 900 herd run -n "$n" --run-dir "$dir" --progress-interval 600 -- herd-train \
        --data "$data" --hidden "${models[$model]}" --epochs 1 \
        --max-steps "${steps[$model]}" --ckpt-every 0 --resume never "${flag[@]}" \
        > "$dir.log" 2>&1 || { tail "$dir.log"; exit 1; }
      results+=("$model $mode $(/usr/bin/python3 - "$dir/events.jsonl" <<'PY'
import json, sys
ts = [json.loads(l)["ts"] for l in open(sys.argv[1]) if '"event":"step"' in l]
# Steady-state step time: median gap between consecutive step events,
# skipping the first steps (warm-up).
gaps = sorted(b - a for a, b in zip(ts[1:], ts[2:]))
print(gaps[len(gaps) // 2])
PY
)")
    done
  done
done
printf '%s\n' "${results[@]}" | /usr/bin/python3 -c '
import json, statistics, sys
rows = [l.split() for l in sys.stdin if l.strip()]
table = {}
for model, mode, t in rows:
    table.setdefault(model, {}).setdefault(mode, []).append(float(t))
report = {}
print("| model | default step (ms) | deterministic step (ms) | overhead |")
print("|---|---|---|---|")
for model, modes in table.items():
    d = statistics.median(modes["default"]); x = statistics.median(modes["deterministic"])
    report[model] = {"default_step_s": d, "deterministic_step_s": x, "overhead": x / d - 1}
    print(f"| {model} | {d*1e3:.2f} | {x*1e3:.2f} | {100*(x/d-1):+.1f}% |")
json.dump(report, open(sys.argv[1], "w"), indent=2)
' "$out/determinism.json"
