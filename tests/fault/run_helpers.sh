# Shared by the fault scripts that watch a running job through its
# events.jsonl. Sourced; needs $py and a fail() function.

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
