#!/usr/bin/env bash
# Black-box tests of herd's monitoring: a real `herd run` job with real
# workers, and the real tools operators point at it (promtool, Prometheus,
# the Pushgateway, headless Chromium). Usage: monitor_tests.sh BIN DATA CASE
# Every wait is bounded; everything listens on 127.0.0.1 only; each case
# stops what it started (by pid) and removes its temp dir. Exit 77 = skipped
# (a tool is missing and cannot be installed here).
set -euo pipefail
bin=$1 data=$2 case=$3
here=$(cd "$(dirname "$0")" && pwd)
export PATH="$bin:$PATH"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
unset HERD_HTTP HERD_RUN_DIR
py=/usr/bin/python3
tmp=$(mktemp -d /tmp/herd-monitor.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do
    for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
  done
  rm -rf "$tmp"
}
trap cleanup EXIT

fail() { echo "FAIL: $*" >&2; [ -f "$tmp/out" ] && tail -20 "$tmp/out" >&2; exit 1; }
skip() { echo "SKIP: $*" >&2; exit 77; }

# need COMMAND PACKAGE: installs the Debian package when the command is
# missing (root only; otherwise the case is skipped).
need() {
  command -v "$1" >/dev/null && return 0
  [ "$(id -u)" = 0 ] || skip "$1 missing (apt-get install $2)"
  DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -q \
    --no-install-recommends "$2" >/dev/null 2>&1 ||
    { timeout 300 apt-get update -q >/dev/null 2>&1 &&
      DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -q \
        --no-install-recommends "$2" >/dev/null 2>&1; } || skip "cannot install $2"
}

free_port() { "$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# jq-like: json TEXT EXPR evaluates a Python expression over `j`.
json() { "$py" -c 'import json,sys; j=json.loads(sys.argv[1]); print(eval(sys.argv[2]))' "$1" "$2"; }

# start_job [herd run options...] -- [herd-train options]: a long job in the
# background; sets $url once the http event is there and steps are made.
start_job() {
  local run=() train=()
  while [ $# -gt 0 ] && [ "$1" != -- ]; do run+=("$1"); shift; done
  [ $# -gt 0 ] && shift
  train=("$@")
  herd run -n 2 --run-dir "$tmp/run" --ckpt-every 300 "${run[@]}" -- \
    herd-train --data "$data" --epochs 200 "${train[@]}" > "$tmp/out" 2>&1 &
  pids+=($!)
  job_pid=$!
  url=""
  for _ in $(seq 1 300); do
    url=$(grep -o 'monitoring http://[^ ]*' "$tmp/out" 2>/dev/null | head -1 | cut -d' ' -f2) || true
    [ -n "$url" ] && break
    kill -0 "$job_pid" 2>/dev/null || fail "herd run exited early"
    sleep 0.1
  done
  [ -n "$url" ] || fail "no monitoring URL printed"
  wait_steps 20
}

wait_steps() {
  for _ in $(seq 1 600); do
    s=$(curl -sf --max-time 2 "${url}status" || echo '{}')
    [ "$(json "$s" 'j.get("steps_total", 0) >= '"$1")" = True ] && return 0
    sleep 0.1
  done
  fail "job made no $1 steps"
}

stop_job() {
  kill -INT "$job_pid" 2>/dev/null || true
  for _ in $(seq 1 300); do kill -0 "$job_pid" 2>/dev/null || break; sleep 0.1; done
  wait "$job_pid" 2>/dev/null || true
}

# ---- cases ------------------------------------------------------------------

# /healthz, /status, /metrics, /, 405/404, HEAD, loopback bind, the http
# event, herd top --once, and the timeline files.
endpoints() {
  start_job -- --timeline "$tmp/tl.json"
  case "$url" in http://127.0.0.1:*/) ;; *) fail "not loopback: $url" ;; esac
  grep -q "\"event\":\"http\",\"url\":\"$url\"" "$tmp/run/events.jsonl" || fail "no http event"
  [ "$(curl -s "${url}healthz")" = ok ] || fail "/healthz"
  s=$(curl -sf "${url}status") || fail "/status"
  for k in job generation world_size step samples_per_second members last_checkpoint events eta_seconds; do
    [ "$(json "$s" "'$k' in j")" = True ] || fail "/status lacks $k"
  done
  [ "$(json "$s" 'sorted(m["rank"] for m in j["members"])')" = "[0, 1]" ] || fail "members"
  [ "$(json "$s" 'all({"rank","host","step","samples_per_second"} <= set(m) for m in j["members"])')" = True ] || fail "member fields"
  m=$(curl -sf "${url}metrics") || fail "/metrics"
  for name in herd_steps_total herd_samples_total herd_step_duration_seconds_bucket \
      herd_rank_step_phase_seconds_total herd_world_size herd_generation \
      herd_failures_total herd_restarts_total herd_checkpoint_duration_seconds_count \
      herd_checkpoint_written_bytes_total herd_checkpoint_last_commit_timestamp_seconds herd_build_info; do
    grep -q "^$name" <<<"$m" || fail "/metrics lacks $name"
  done
  grep -q 'herd_rank_step_phase_seconds_total{rank="1",phase="comm"}' <<<"$m" || fail "per-rank phases"
  # Whole responses first: `curl | grep -q` under pipefail fails when grep
  # stops reading early and curl gets SIGPIPE.
  page=$(curl -s "$url")
  grep -q 'id="c-sps"' <<<"$page" || fail "/ is not the run page"
  grep -q 'uPlot' <<<"$page" || fail "/ lacks the embedded uPlot"
  ! grep -qi 'src="http\|href="http' <<<"$page" || fail "/ loads something from the network"
  t=$(curl -sf "${url}timeline") || fail "/timeline"
  [ "$(json "$t" 'any(e["event"] == "step" and "text" in e for e in j)')" = True ] || fail "/timeline lacks steps"
  last=$(json "$t" 'j[-1]["seq"]')
  [ "$(json "$(curl -sf "${url}timeline?after=$last")" 'all(e["seq"] > '"$last"' for e in j)')" = True ] || fail "/timeline?after"
  [ "$(curl -s -o /dev/null -w '%{http_code}' -X POST -d x "${url}metrics")" = 405 ] || fail "POST not 405"
  [ "$(curl -s -o /dev/null -w '%{http_code}' -X DELETE "${url}status")" = 405 ] || fail "DELETE not 405"
  [ "$(curl -s -o /dev/null -w '%{http_code}' "${url}nope")" = 404 ] || fail "404"
  head=$(curl -sI "${url}metrics")
  grep -qi '^content-type: text/plain; version=0.0.4' <<<"$head" || fail "HEAD / content type"
  herd top --once --url "$url" > "$tmp/top1" || fail "herd top --url"
  HERD_HTTP="$url" herd top --once > /dev/null || fail "herd top with HERD_HTTP"
  herd top --once --run-dir "$tmp/run" > "$tmp/top" || fail "herd top --run-dir"
  cat "$tmp/top"
  grep -q '^herd top - herd/run' "$tmp/top" || fail "top job line"
  grep -Eq '^ +1 .* active ' "$tmp/top" || fail "top rank row"
  grep -q 'samples/s' "$tmp/top" || fail "top throughput"
  awk 'length > 80 { exit 1 }' "$tmp/top" || fail "top wider than 80 columns"
  stop_job
  for f in "$tmp/tl.json" "$tmp/tl.rank1.json"; do
    "$py" - "$f" <<'PY' || fail "timeline $f"
import json, sys
events = json.load(open(sys.argv[1]))
x = [e for e in events if e["ph"] == "X"]
assert x, "no complete events"
for e in x:
    assert {"name", "cat", "ph", "ts", "dur", "pid", "tid", "args"} <= set(e), e
    assert isinstance(e["ts"], (int, float)) and e["dur"] >= 0
    assert e["args"]["step"] >= 1
names = {e["name"] for e in x}
assert {"step", "data", "compute", "comm", "optimizer"} <= names, names
pids = {e["pid"] for e in events}
assert len(pids) == 1, pids
meta = [e for e in events if e["ph"] == "M"]
assert any(e["name"] == "thread_name" for e in meta)
print(sys.argv[1], len(x), "phase events, phases", sorted(names))
PY
  done
}

# Acceptance 1: promtool check metrics on a live /metrics.
promtool_check() {
  need promtool prometheus
  start_job
  wait_steps 50
  curl -sf "${url}metrics" > "$tmp/metrics.txt" || fail "/metrics"
  promtool check metrics < "$tmp/metrics.txt" || fail "promtool check metrics"
  echo "promtool: $(wc -l < "$tmp/metrics.txt") lines pass"
  # The Grafana dashboard's queries parse (as recording rules).
  "$py" - "$here/../../monitoring/grafana/herd.json" "$tmp/rules.yml" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
exprs = [t["expr"].replace("$job", ".*") for p in d["panels"] for t in p["targets"]]
with open(sys.argv[2], "w") as out:
    out.write("groups:\n- name: dashboard\n  rules:\n")
    for i, e in enumerate(exprs):
        out.write(f"  - record: herd:dashboard_{i}\n    expr: {json.dumps(e)}\n")
print(len(exprs), "dashboard queries")
PY
  promtool check rules "$tmp/rules.yml" || fail "dashboard queries do not parse"
}

# Acceptance 2: a real Prometheus scrapes the job every second; the rate it
# computes from herd_samples_total matches herd's own samples/s (the
# workers' figure in /status, averaged over the same window) within 10%.
prometheus_rate() {
  need prometheus prometheus
  start_job
  target=${url#http://}; target=${target%/}
  port=$(free_port)
  cat > "$tmp/prom.yml" <<EOF
global: {scrape_interval: 1s, evaluation_interval: 1s}
scrape_configs:
  - job_name: herd
    static_configs: [{targets: ['$target']}]
EOF
  prometheus --config.file="$tmp/prom.yml" --storage.tsdb.path="$tmp/prom-data" \
    --web.listen-address="127.0.0.1:$port" --log.level=warn > "$tmp/prom.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 300); do curl -sf "http://127.0.0.1:$port/-/ready" >/dev/null && break; sleep 0.1; done
  curl -sf "http://127.0.0.1:$port/-/ready" >/dev/null || { cat "$tmp/prom.log"; fail "prometheus not ready"; }
  sleep 4 # a few scrapes before the window starts
  "$py" - "$url" "$port" <<'PY' || fail "rate disagrees"
import json, sys, time, urllib.parse, urllib.request
url, port = sys.argv[1], sys.argv[2]
window, figures = 20, []
start = time.time()
while time.time() - start < window:
    s = json.load(urllib.request.urlopen(url + "status", timeout=2))
    figures.append(s["samples_per_second"])
    time.sleep(0.25)
end = time.time()
q = urllib.parse.urlencode({"query": f"rate(herd_samples_total[{window}s])", "time": f"{end:.3f}"})
for _ in range(20):
    r = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/query?{q}", timeout=5))
    if r["data"]["result"]:
        break
    time.sleep(0.5)
prom = float(r["data"]["result"][0]["value"][1])
herd = sum(figures) / len(figures)
diff = abs(prom - herd) / herd
print(f"prometheus rate {prom:.0f} samples/s, herd /status {herd:.0f} samples/s, difference {diff:.1%}")
sys.exit(0 if diff <= 0.10 else 1)
PY
}

# Acceptance 3a: periodic and final pushes to a real Pushgateway.
pushgateway() {
  need prometheus-pushgateway prometheus-pushgateway
  port=$(free_port)
  prometheus-pushgateway --web.listen-address="127.0.0.1:$port" > "$tmp/pgw.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 300); do curl -sf "http://127.0.0.1:$port/-/ready" >/dev/null && break; sleep 0.1; done
  start_job --push-gateway "http://127.0.0.1:$port/" --push-interval 0.5
  got=""
  for _ in $(seq 1 100); do
    got=$(curl -sf "http://127.0.0.1:$port/metrics" | grep '^herd_steps_total{' || true)
    [ -n "$got" ] && break
    sleep 0.1
  done
  [ -n "$got" ] || fail "no periodic push"
  grep -q 'job="herd"' <<<"$got" && grep -q 'run="run"' <<<"$got" || fail "grouping key: $got"
  stop_job
  final=$("$py" -c 'import json; print(json.load(open("'"$tmp/run/summary.json"'"))["final_step"])')
  pushed=$(curl -sf "http://127.0.0.1:$port/metrics" | grep '^herd_steps_total{' | awk '{print $2}')
  echo "final step $final, pushed herd_steps_total $pushed"
  [ "$pushed" = "$final" ] || fail "final push $pushed != final step $final"
  pushed_metrics=$(curl -sf "http://127.0.0.1:$port/metrics")
  grep -q '^herd_step_duration_seconds_bucket{' <<<"$pushed_metrics" || fail "histogram not pushed"
}

# Acceptance 3b: the webhook gets a member_failed alert when a worker is
# killed (and a job_failed one when the job then ends).
alert_webhook() {
  "$py" "$here/alert_receiver.py" "$tmp/port" "$tmp/alerts" &
  pids+=($!)
  for _ in $(seq 1 100); do [ -f "$tmp/port" ] && break; sleep 0.1; done
  start_job --alert-webhook "http://127.0.0.1:$(cat "$tmp/port")/hook"
  s=$(curl -sf "${url}status")
  victim=$(json "$s" '[m["pid"] for m in j["members"] if m["rank"] == 1][0]')
  kill -KILL "$victim"
  for _ in $(seq 1 200); do grep -q job_failed "$tmp/alerts" 2>/dev/null && break; sleep 0.1; done
  cat "$tmp/alerts" 2>/dev/null || true
  "$py" - "$tmp/alerts" "$victim" <<'PY' || fail "alert JSON"
import json, sys
alerts = [json.loads(l) for l in open(sys.argv[1])]
failed = [a for a in alerts if a["alert"] == "member_failed"]
assert failed, alerts
a = failed[0]
for k in ("source", "alert", "severity", "job", "run_id", "ts", "summary", "details"):
    assert k in a, k
assert a["source"] == "herd" and a["severity"] == "critical" and a["job"] == "herd"
assert a["run_id"] == "run", a
assert a["details"]["pid"] == int(sys.argv[2]) and a["details"]["rank"] == 1, a
assert any(x["alert"] == "job_failed" for x in alerts), [x["alert"] for x in alerts]
print("alerts ok:", [x["alert"] for x in alerts])
PY
}

# chrome NAME URL: a screenshot ($tmp/NAME.png) and the DOM as the page left
# it ($tmp/NAME.html), after 8 s of the page's own time (polls included).
chrome() {
  local flags=(--headless --no-sandbox --disable-gpu --disable-quic --no-first-run
         --disable-background-networking --disable-component-update --disable-sync
         --hide-scrollbars --window-size=1400,2600 --virtual-time-budget=8000)
  timeout 120 chromium "${flags[@]}" --user-data-dir="$tmp/chrome-$1-a" \
    --screenshot="$tmp/$1.png" "$2" > "$tmp/chrome.log" 2>&1 || { tail "$tmp/chrome.log"; fail "chromium screenshot of $2"; }
  timeout 120 chromium "${flags[@]}" --user-data-dir="$tmp/chrome-$1-b" \
    --dump-dom "$2" > "$tmp/$1.html" 2>> "$tmp/chrome.log" || fail "chromium dump-dom of $2"
  [ -s "$tmp/$1.png" ] || fail "empty screenshot of $2"
  [ -n "${HERD_PAGE_SCREENSHOTS:-}" ] && cp "$tmp/$1.png" "$HERD_PAGE_SCREENSHOTS/$1.png"
  return 0
}

# Acceptance (issue 17): the live page and the report in headless Chromium.
# An elastic 3-worker job loses rank 1 to kill -9 and re-forms; the live page
# must draw every chart with data and mark the failure (on the charts, with
# its row in the events table); after the job, `herd run`'s report must do
# the same from events.jsonl, list the failure in its summary, and an
# events.jsonl as an earlier herd wrote it (fields and kinds missing,
# damaged lines) must still give a report.
page() {
  need chromium chromium
  start_job -n 3 --min 2 --max 3 --max-restarts 2 --backend gloo -- --epochs 7
  wait_steps 150
  s=$(curl -sf "${url}status")
  victim=$(json "$s" '[m["pid"] for m in j["members"] if m["rank"] == 1][0]')
  kill -KILL "$victim"
  for _ in $(seq 1 300); do
    s=$(curl -sf --max-time 2 "${url}status" || echo '{}')
    [ "$(json "$s" 'j.get("failures", 0) >= 1 and j.get("generation", 0) >= 2')" = True ] && break
    sleep 0.1
  done
  [ "$(json "$s" 'j.get("failures", 0) >= 1')" = True ] || fail "the kill was not seen"
  before=$(grep -c '"event":"ranks"' "$tmp/run/events.jsonl")
  for _ in $(seq 1 100); do  # a per-rank report after the re-forming
    [ "$(grep -c '"event":"ranks"' "$tmp/run/events.jsonl")" -gt "$before" ] && break
    sleep 0.1
  done
  for _ in $(seq 1 300); do  # an accuracy point
    grep -q '"event":"epoch_end"' "$tmp/run/events.jsonl" && break
    sleep 0.1
  done
  chrome live "$url"
  "$py" "$here/page_check.py" "$tmp/live.html" --marker member_failed --marker generation \
    --min-members 2 || fail "live page"
  herd top --once --url "$url" > "$tmp/top.txt" 2>&1 || fail "herd top"
  grep -q "member_failed *rank 1 on .*(connection_closed\|member_failed *rank 1 on .*(child_exit\|member_failed *rank 1 on .*(peer_report" "$tmp/top.txt" ||
    { cat "$tmp/top.txt"; fail "herd top: no readable member_failed line"; }
  ! grep -q '{"' "$tmp/top.txt" || { cat "$tmp/top.txt"; fail "herd top shows raw JSON"; }
  for _ in $(seq 1 1200); do kill -0 "$job_pid" 2>/dev/null || break; sleep 0.1; done
  wait "$job_pid" 2>/dev/null || true
  grep -q "herd: report $tmp/run/report.html" "$tmp/out" || fail "herd run did not print the report"
  chrome report "file://$tmp/run/report.html"
  "$py" "$here/page_check.py" "$tmp/report.html" --marker member_failed --marker generation \
    --min-members 2 --summary-failures 1 || fail "report"
  herd report "$tmp/run" --out "$tmp/again.html" --png "$tmp/again.png" > "$tmp/png.out" 2>&1 ||
    { cat "$tmp/png.out"; fail "herd report --png"; }
  [ "$(head -c 8 "$tmp/again.png" | od -An -tx1 | tr -d ' ')" = 89504e470d0a1a0a ] || fail "--png wrote no PNG"
  # An events.jsonl as an earlier herd wrote it, with damage.
  mkdir -p "$tmp/old"
  "$py" - "$tmp/run/events.jsonl" "$tmp/old/events.jsonl" <<'PY'
import json, sys
out = open(sys.argv[2], "w")
for i, line in enumerate(open(sys.argv[1])):
    e = json.loads(line)
    if e["event"] in ("ranks", "coordinator_started"):
        continue                      # kinds an earlier herd did not write
    for k in ("signal", "generation", "world_size", "samples_per_second"):
        if i % 3 and k in e:
            del e[k]                  # fields it did not have
    if e["event"] == "step" and i % 7 == 0:
        e["loss"] = "n/a"             # a wrong type
    out.write(json.dumps(e) + "\n")
out.write("not json\n{\"ts\": 1}\n[1,2]\n" + "{" + "x" * (3 << 20) + "\n")
out.write('{"ts":1e999,"event":"step"}\n{"ts":5,"event":"step","step":-1}\n{"ts":')
PY
  herd report "$tmp/old" > "$tmp/old.out" 2>&1 || { cat "$tmp/old.out"; fail "herd report of an old events.jsonl"; }
  cat "$tmp/old.out"
  grep -q "4 unreadable\|5 unreadable\|6 unreadable" "$tmp/old.out" || fail "damaged lines not counted"
  chrome old "file://$tmp/old/report.html"
  "$py" "$here/page_check.py" "$tmp/old.html" --marker member_failed \
    --allow-empty c-rsps --allow-empty c-rstep --allow-empty c-split --summary-failures 1 || fail "old report"
  grep -q "missing in this run" "$tmp/old.html" || fail "old report: missing per-rank data not said"
  return 0
}

"$case"
echo "ok: $case"
