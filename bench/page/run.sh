#!/usr/bin/env bash
# The run page's budget for a long, large run (issue 17): generates the
# events.jsonl of HOURS with WORKERS ranks (gen_events.py), then measures
#   the coordinator side: the timeline's memory, /timeline, /status and
#     /metrics for WORKERS members (page_budget);
#   herd report: its time and the HTML file's size;
#   the page in headless Chromium: time to the first full draw (the
#     report holds the same timeline the live page fetches), and that every
#     chart drew.
# Usage: run.sh [--hours 24] [--workers 1000] [--build DIR] [--out FILE.json]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
hours=24 workers=1000 build="$root/build" out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --hours) hours=$2; shift 2 ;;
    --workers) workers=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    *) echo "usage: run.sh [--hours H] [--workers N] [--build DIR] [--out FILE]" >&2; exit 2 ;;
  esac
done
py=/usr/bin/python3
tmp=$(mktemp -d /tmp/herd-page-budget.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
if ! command -v chromium >/dev/null; then
  [ "$(id -u)" = 0 ] || { echo "run.sh: needs chromium (apt-get install chromium)" >&2; exit 1; }
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium >/dev/null ||
    { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium >/dev/null; }
fi
echo "page budget: generating $hours h, $workers workers"
"$py" "$here/gen_events.py" "$tmp/run" --hours "$hours" --workers "$workers"
events_bytes=$(stat -c %s "$tmp/run/events.jsonl")
coord=$("$build/bin/page_budget" "$tmp/run/events.jsonl" "$workers")
t0=$(date +%s.%N)
"$build/bin/herd" report "$tmp/run" > "$tmp/report.out"
t1=$(date +%s.%N)
cat "$tmp/report.out"
timeout 180 chromium --headless --no-sandbox --disable-gpu --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --user-data-dir="$tmp/chrome" --window-size=1400,2600 --virtual-time-budget=10000 \
  --dump-dom "file://$tmp/run/report.html" > "$tmp/dom.html" 2> "$tmp/chrome.log"
"$py" "$root/tests/monitor/page_check.py" "$tmp/dom.html" --marker member_failed --summary-failures 1
render_ms=$(grep -o 'data-render-ms="[0-9]*"' "$tmp/dom.html" | grep -o '[0-9]*' || echo -1)
"$py" - "$coord" "$hours" "$workers" "$events_bytes" "$(echo "$t1 - $t0" | bc)" \
  "$(stat -c %s "$tmp/run/report.html")" "$render_ms" "$out" <<'PY'
import json, sys
r = json.loads(sys.argv[1])
r.update(hours=float(sys.argv[2]), workers=int(sys.argv[3]),
         events_jsonl_bytes=int(sys.argv[4]), report_seconds=float(sys.argv[5]),
         report_html_bytes=int(sys.argv[6]), page_first_draw_ms=int(sys.argv[7]))
print(json.dumps(r, indent=1))
if sys.argv[8]:
    json.dump(r, open(sys.argv[8], "w"), indent=1)
# The documented budget (bench/README.md): any run, any size.
budget = {"timeline_json_bytes": 4 << 20, "timeline_memory_bytes": 4 << 20,
          "report_html_bytes": 5 << 20, "status_bytes": 1 << 20,
          "timeline_render_ms": 100, "status_render_ms": 100,
          "page_first_draw_ms": 5000}
over = [f"{k} {r[k]} > {v}" for k, v in budget.items() if r[k] > v or r[k] < 0]
if over:
    print("over budget:", "; ".join(over))
    sys.exit(1)
print("within budget")
PY
