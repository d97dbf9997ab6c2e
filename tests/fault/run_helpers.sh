# Shared by the fault scripts that watch a running job through its
# events.jsonl. Sourced after $bin and $case are set; `fault_setup NAME`
# does the common prologue.

# fault_setup NAME: herd's binaries on PATH, Open MPI allowed as root, $py,
# a private $tmp (removed on exit with every pid in $pids killed), fail().
fault_setup() {
  export PATH="$bin:$PATH" OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
  py=/usr/bin/python3
  tmp=$(mktemp -d "/tmp/herd-$1.XXXXXX")
  pids=()
  trap fault_cleanup EXIT
}
fault_cleanup() {
  for p in "${pids[@]:-}"; do [ -n "$p" ] && kill -9 "$p" 2>/dev/null || true; done
  # HERD_KEEP_TMP=1 keeps the logs and run dir to look at.
  if [ "${HERD_KEEP_TMP:-0}" = 1 ]; then echo "kept $tmp" >&2; else rm -rf "$tmp"; fi
}
# fail MESSAGE: the message and the tail of every log in $tmp; exit 1.
fail() {
  echo "FAIL ($case): $*" >&2
  for f in "$tmp"/*.log; do [ -f "$f" ] && tail -20 "$f" >&2; done
  exit 1
}

# wait_for FILE PATTERN SECONDS
wait_for() {
  for _ in $(seq 1 $(($3 * 10))); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
  fail "no '$2' in $1 within $3 s"
}
# pid_of_rank RUN_DIR RANK: the pid of that rank in the first generation
# (the scripts kill members of generation 1).
pid_of_rank() {
  "$py" - "$1/events.jsonl" "$2" <<'PY'
import json, sys
members = {}
for line in open(sys.argv[1]):
    e = json.loads(line)
    if e["event"] == "member_joined":
        members.setdefault(e["rank"], e["pid"])
print(members.get(int(sys.argv[2]), ""))
PY
}
step_count() { grep -c '"event":"step"' "$1/events.jsonl" 2>/dev/null || true; }
wait_steps() { # RUN_DIR N: until N step events (at most 60 s)
  for _ in $(seq 1 600); do [ "$(step_count "$1")" -ge "$2" ] 2>/dev/null && return 0; sleep 0.1; done
  fail "fewer than $2 steps within 60 s"
}
