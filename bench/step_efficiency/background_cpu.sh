#!/usr/bin/env bash
# CPU taken beside the training step (issue 18): herd run -n 2 trains the
# default model for 4000 steps; over 4 s in the middle this reads each
# thread's CPU time from /proc (utime + stime) and prints, per process and
# thread name, the percent of one core, and the steps per second (from
# events.jsonl). herd/* is the coordinator herd run embeds; herd-train/*
# the workers (their link thread shares the main thread's name).
# Usage: background_cpu.sh [BUILD_DIR]   (default: build)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$root/build}
py=/usr/bin/python3
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
tmp=$(mktemp -d /tmp/herd-bgcpu.XXXXXX)
job=""
trap '[ -n "$job" ] && kill "$job" 2>/dev/null; rm -rf "$tmp"' EXIT
"$build/bin/herd" run -n 2 --run-dir "$tmp/run" --ckpt-every 0 --http off -- \
  "$build/bin/herd-train" --data "$root/build/test-data/fashion-mnist.h5" --batch 256 \
  --max-steps 4000 --optimizer sgd --momentum 0.9 --seed 42 > "$tmp/log" 2>&1 &
job=$!
snap() { # lines: PROCESS/THREAD TID TICKS
  for p in $(pgrep -x herd) $(pgrep -x herd-train); do
    for t in /proc/"$p"/task/*; do
      read -r -a f < <(cut -d')' -f2 "$t/stat" 2>/dev/null) || continue
      echo "$(cat /proc/"$p"/comm)/$(cat "$t/comm" 2>/dev/null) ${t##*/} $((f[11] + f[12]))"
    done
  done
}
steps() { grep -c '"event":"step"' "$tmp/run/events.jsonl" 2>/dev/null || echo 0; }
sleep 3
snap > "$tmp/a"; s0=$(steps); sleep 4; snap > "$tmp/b"; s1=$(steps)
wait "$job" || { tail "$tmp/log"; exit 1; }
job=""
"$py" - "$tmp/a" "$tmp/b" "$s0" "$s1" "$(getconf CLK_TCK)" <<'PY'
import collections, sys
def read(path):
    return {(l.split()[0], l.split()[1]): int(l.split()[2]) for l in open(path)}
a, b = read(sys.argv[1]), read(sys.argv[2])
hz = int(sys.argv[5])
per = collections.Counter()
for k, v in b.items():
    if k in a:
        per[k[0]] += v - a[k]
print("steps/s %.0f" % ((int(sys.argv[4]) - int(sys.argv[3])) / 4))
for name, ticks in sorted(per.items()):
    if ticks:
        print("%-28s %5.1f %% of a core" % (name, 100.0 * ticks / hz / 4))
PY
