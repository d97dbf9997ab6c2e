#!/usr/bin/env bash
# herd-train --device cuda end to end (label gpu): STEPS (200) steps under
# `herd run -n 1`, then the same run on the CPU. The GPU run must reach
# MIN_ACC (0.80; the CPU run gets 0.83) test accuracy and agree with the
# CPU run within 2 points; both runs' samples/s (summary.json) are printed.
# Where --device cuda cannot run (no GPU, or a build without CUDA) it checks
# the failure instead: exactly one line on stderr naming the cause, a
# non-zero exit that is not a crash (signal); then skips (exit 77).
# Then the elastic path on the GPU: 2 ranks with the gloo backend (they may
# share one GPU), rank 1 killed -9 mid-run and restarted by herd run: the
# state sync must hand every rank the newest GPU state (not a stale host
# copy), so the job finishes with the accuracy of the plain run.
# Usage: train_cuda.sh BIN_DIR DATA_FILE
set -uo pipefail
bin=$1 data=$2
steps=${HERD_GPU_TEST_STEPS:-200} min_acc=${HERD_GPU_TEST_MIN_ACC:-0.80}
export PATH="$bin:$PATH" OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
unset HERD_COORD HERD_TOKEN HERD_CKPT_DIR HERD_RESUME HERD_BACKEND HERD_DEVICE
tmp=$(mktemp -d /tmp/herd-cuda.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

herd-train --device cuda --data "$data" --max-steps 1 --resume never \
  > "$tmp/probe.out" 2> "$tmp/probe.err"
rc=$?
if grep -qE 'no CUDA device found|built without CUDA' "$tmp/probe.err"; then
  lines=$(wc -l < "$tmp/probe.err")
  if [ "$rc" -eq 0 ] || [ "$rc" -ge 128 ] || [ "$lines" -ne 1 ]; then
    echo "FAIL: --device cuda without a GPU: exit $rc, $lines lines on stderr:"
    cat "$tmp/probe.err"
    exit 1
  fi
  echo "SKIP: --device cuda fails cleanly here (exit $rc): $(cat "$tmp/probe.err")"
  exit 77
fi
if [ "$rc" -ne 0 ]; then
  echo "FAIL: herd-train --device cuda --max-steps 1: exit $rc"
  cat "$tmp/probe.out" "$tmp/probe.err"
  exit 1
fi

for device in cuda cpu; do
  timeout 600 herd run -n 1 --run-dir "$tmp/$device" --progress-interval 30 \
    -- herd-train --device "$device" --data "$data" --max-steps "$steps" \
    > "$tmp/$device.out" 2>&1 \
    || { echo "FAIL: --device $device run"; cat "$tmp/$device.out"; exit 1; }
  grep 'test accuracy' "$tmp/$device.out" | tail -1
done
/usr/bin/python3 - "$tmp" "$min_acc" <<'PY'
import json, sys
tmp, min_acc = sys.argv[1], float(sys.argv[2])
s = {d: json.load(open(f"{tmp}/{d}/summary.json")) for d in ("cuda", "cpu")}
for d in ("cuda", "cpu"):
    print(f"{d}: test accuracy {s[d]['test_accuracy']:.4f}, "
          f"{s[d]['samples_per_second']:.0f} samples/s, step {s[d]['final_step']}")
assert s["cuda"]["final_step"] == s["cpu"]["final_step"], "step counts differ"
assert s["cuda"]["test_accuracy"] >= min_acc, f"cuda accuracy below {min_acc}"
gap = abs(s["cuda"]["test_accuracy"] - s["cpu"]["test_accuracy"])
assert gap <= 0.02, f"cuda and cpu accuracy differ by {gap:.4f}"
PY
[ $? = 0 ] || exit 1

# Elastic on the GPU (gloo): kill rank 1, herd run restarts it, it rejoins.
herd run -n 2 --launcher local --backend gloo --min 1 --max 2 --max-restarts 1 \
  --run-dir "$tmp/elastic" --progress-interval 30 \
  -- herd-train --device cuda --data "$data" --max-steps "$((steps * 2))" \
  > "$tmp/elastic.out" 2>&1 &
run_pid=$!
for _ in $(seq 1 600); do
  [ "$(cat "$tmp/elastic/events.jsonl" 2>/dev/null | grep -c '"event":"step"')" -ge 50 ] && break
  sleep 0.1
done
victim=$(/usr/bin/python3 -c 'import json,sys; print(next(e["pid"] for e in map(json.loads, open(sys.argv[1])) if e["event"] == "member_joined" and e.get("rank") == 1))' \
  "$tmp/elastic/events.jsonl" 2>/dev/null)
[ -n "$victim" ] && kill -9 "$victim"
for _ in $(seq 1 6000); do kill -0 "$run_pid" 2>/dev/null || break; sleep 0.1; done
wait "$run_pid" || { echo "FAIL: elastic --device cuda run"; tail -30 "$tmp/elastic.out"; exit 1; }
/usr/bin/python3 - "$tmp" "$min_acc" <<'PY'
import json, sys
tmp, min_acc = sys.argv[1], float(sys.argv[2])
s = json.load(open(f"{tmp}/elastic/summary.json"))
ev = [json.loads(l) for l in open(f"{tmp}/elastic/events.jsonl")]
assert any(e["event"] == "member_failed" for e in ev), "rank 1 was not killed"
assert s["ok"] and s["test_accuracy"] >= min_acc, s
print(f"elastic cuda+gloo: test accuracy {s['test_accuracy']:.4f} after a kill")
print("PASS")
PY
