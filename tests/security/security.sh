#!/usr/bin/env bash
# Security tests (label security): real herd processes, real files.
#   ckpt_hmac         checkpoints signed with a key (HERD_CKPT_KEY_FILE):
#                     one rewritten without the key (every checksum and the
#                     seal valid) or forged (another file's signature
#                     copied in) is refused as tampered by `herd ckpt
#                     verify` and by resume, which falls back to the
#                     previous good checkpoint
#   token_file        the job token from a file (--token-file,
#                     HERD_TOKEN_FILE) for herd coord, the workers and
#                     herd status; --token on the command line warns
#   no_secret_in_argv no process herd run starts (mpirun, local) and no
#                     herd coord given a token file shows the token in its
#                     argv (/proc/PID/cmdline)
#   curve_handshake   a CURVE coordinator: a client without its public key
#                     cannot complete the handshake (herd status gets no
#                     answer, a worker no roster); with the key but a wrong
#                     token it is refused; with both it is answered
#   curve_hijack      with a member's exact routing id and the public key,
#                     a second connection's KvSet, PeerFailed, Leave and
#                     Done are all refused and the job carries on untouched
#   curve_capture     the bytes between a worker and the coordinator (a TCP
#                     proxy records them) hold neither the token nor the job
#                     id under CURVE; the same capture in plain text does
#                     (the check can fail)
#   http_exposed      an HTTP server bound beyond loopback answers /status
#                     only with "Authorization: Bearer <token>"; /metrics
#                     stays readable and names no pids; on loopback
#                     /status needs nothing
# Usage: security.sh BIN_DIR DATA_FILE CASE. Every wait is bounded.
set -euo pipefail
bin=$1 data=$2 case=$3
export PATH="$bin:$PATH"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
py=/usr/bin/python3
tmp=$(mktemp -d /tmp/herd-security.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
json() { "$py" -c 'import json,sys; j=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"; }
secret_file() { # secret_file PATH: 32 random hex characters, mode 600
  (umask 077; head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$1")
}

ckpt_hmac() {
  secret_file "$tmp/key"
  secret_file "$tmp/other-key"
  export HERD_CKPT_KEY_FILE=$tmp/key
  herd run -n 2 --launcher local --run-dir "$tmp/run" --ckpt-every 20 \
    -- herd-train --data "$data" --max-steps 60 > "$tmp/out" 2>&1 || { cat "$tmp/out"; fail "signed run"; }
  local ckpt=$tmp/run/ckpt newest
  newest=$ckpt/ckpt-0000000060.h5
  herd ckpt verify "$ckpt" > /dev/null || fail "signed checkpoints do not verify with the key"
  # Rewritten without the key: valid checksums and seal, no signature.
  ckpt_tamper "$newest" "$tmp/unsigned.h5" unsigned
  if herd ckpt verify "$tmp/unsigned.h5" > "$tmp/v1" 2>&1; then fail "unsigned rewrite verified with a key set"; fi
  grep -q "not signed" "$tmp/v1" || { cat "$tmp/v1"; fail "unsigned: no clear message"; }
  HERD_CKPT_KEY_FILE= herd ckpt verify "$tmp/unsigned.h5" > /dev/null ||
    fail "without a key the rewrite should pass the checksums (the HMAC is what protects)"
  # Forged: the signed file's HMAC copied into the rewrite's seal.
  ckpt_tamper "$newest" "$tmp/forged.h5" forged
  if herd ckpt verify "$tmp/forged.h5" > "$tmp/v2" 2>&1; then fail "forged checkpoint verified"; fi
  grep -q "tampered" "$tmp/v2" || { cat "$tmp/v2"; fail "forged: no clear message"; }
  # Another key is not this key.
  if herd ckpt verify "$newest" --key-file "$tmp/other-key" > "$tmp/v3" 2>&1; then
    fail "verified with the wrong key"; fi
  # Resume with the newest replaced by the forgery: refused, and the job
  # resumes from the previous good checkpoint (step 40).
  cp "$tmp/forged.h5" "$newest"
  herd run -n 2 --launcher local --run-dir "$tmp/run" --ckpt-every 20 \
    -- herd-train --data "$data" --max-steps 80 > "$tmp/out2" 2>&1 || { cat "$tmp/out2"; fail "resumed run"; }
  [ "$(json "$tmp/run/summary.json" 'j["resumed_from_step"]')" = 40 ] ||
    { cat "$tmp/out2"; fail "resume did not fall back to step 40: $(json "$tmp/run/summary.json" 'j["resumed_from_step"]')"; }
  grep -q "tampered" "$tmp/out2" || { cat "$tmp/out2"; fail "resume did not say why it skipped step 60"; }
  echo "ckpt_hmac: unsigned and forged checkpoints refused; resume fell back to step 40"
}

# Starts herd coord with a token file; sets coord_pid and HERD_COORD.
start_coord() {
  herd coord --port 0 --min 2 --run-dir "$tmp/coord" --token-file "$tmp/token" \
    > "$tmp/coord.out" 2>&1 &
  coord_pid=$!
  pids+=("$coord_pid")
  for _ in $(seq 1 100); do grep -q '^HERD_COORD=' "$tmp/coord.out" 2>/dev/null && break; sleep 0.1; done
  HERD_COORD=$(sed -n 's/^HERD_COORD=//p' "$tmp/coord.out")
  [ -n "$HERD_COORD" ] || { cat "$tmp/coord.out"; fail "herd coord did not start"; }
  export HERD_COORD
}

token_file() {
  secret_file "$tmp/token"
  start_coord
  local token
  token=$(cat "$tmp/token")
  grep -q -- "$token" /proc/$coord_pid/cmdline && fail "herd coord shows the token in its argv"
  for rank in 0 1; do
    HERD_TOKEN_FILE=$tmp/token HERD_RANK=$rank HERD_WORLD_SIZE=2 HERD_BACKEND=gloo \
      herd-train --data "$data" --max-steps 30 > "$tmp/w$rank.out" 2>&1 &
    pids+=($!)
  done
  for _ in $(seq 1 300); do
    [ "$(cat "$tmp/coord/events.jsonl" 2>/dev/null | grep -c '"event":"step"')" -ge 5 ] && break; sleep 0.1
  done
  HERD_TOKEN_FILE=$tmp/token herd status --coord "$HERD_COORD" > "$tmp/status" 2>&1 ||
    { cat "$tmp/status"; fail "herd status with a token file"; }
  if HERD_TOKEN=wrong herd status --coord "$HERD_COORD" > "$tmp/bad" 2>&1; then
    fail "herd status with a wrong token was answered"; fi
  for _ in $(seq 1 600); do kill -0 "$coord_pid" 2>/dev/null || break; sleep 0.1; done
  [ "$(json "$tmp/coord/summary.json" 'j["ok"] and j["final_step"] == 30 and j["world_size"] == 2')" = True ] ||
    fail "job with a token file: $(cat "$tmp/coord/summary.json")"
  herd coord --token visible --port 0 --min 1 --run-dir "$tmp/c2" --join-timeout 1 > "$tmp/c2.out" 2>&1 || true
  grep -q "warning: --token puts the job token in every user's process list" "$tmp/c2.out" ||
    { cat "$tmp/c2.out"; fail "--token on the command line did not warn"; }
  echo "token_file: coordinator, workers and herd status took the token from a file"
}

# Every descendant of $1 (itself included), one pid a line.
tree() {
  echo "$1"
  for child in $(pgrep -P "$1" || true); do tree "$child"; done
}

no_secret_in_argv() {
  for launcher in local mpirun; do
    herd run -n 2 --launcher $launcher --run-dir "$tmp/$launcher" \
      -- herd-train --data "$data" --epochs 50 > "$tmp/$launcher.out" 2>&1 &
    local run_pid=$! token="" seen=0
    pids+=("$run_pid")
    for _ in $(seq 1 600); do
      [ "$(cat "$tmp/$launcher/events.jsonl" 2>/dev/null | grep -c '"event":"step"')" -ge 5 ] && break; sleep 0.1
    done
    for p in $(tree "$run_pid"); do
      [ -r /proc/$p/environ ] || continue
      local t
      t=$(tr '\0' '\n' < /proc/$p/environ | sed -n 's/^HERD_TOKEN=//p')
      [ -n "$t" ] && token=$t
    done
    [ -n "$token" ] || fail "$launcher: no worker holds HERD_TOKEN"
    for p in $(tree "$run_pid"); do
      [ -r /proc/$p/cmdline ] || continue
      seen=$((seen + 1))
      if tr '\0' ' ' < /proc/$p/cmdline | grep -q -- "$token"; then
        fail "$launcher: pid $p shows the token in its argv: $(tr '\0' ' ' < /proc/$p/cmdline)"
      fi
    done
    [ "$seen" -ge 3 ] || fail "$launcher: only $seen processes looked at"
    kill -INT "$run_pid"
    for _ in $(seq 1 300); do kill -0 "$run_pid" 2>/dev/null || break; sleep 0.1; done
    echo "$launcher: the token is in no argv of $seen processes"
  done
}

# curve_coord [ARGS...]: herd coord --curve on (loopback: the mechanism is
# the same) with a token file; sets coord_pid, HERD_COORD, coord_key.
curve_coord() {
  secret_file "$tmp/token"
  herd coord --curve on --port 0 --run-dir "$tmp/coord" --token-file "$tmp/token" "$@" \
    > "$tmp/coord.out" 2>&1 &
  coord_pid=$!
  pids+=("$coord_pid")
  for _ in $(seq 1 100); do grep -q '^HERD_COORD_KEY=' "$tmp/coord.out" 2>/dev/null && break; sleep 0.1; done
  HERD_COORD=$(sed -n 's/^HERD_COORD=//p' "$tmp/coord.out")
  coord_key=$(sed -n 's/^HERD_COORD_KEY=//p' "$tmp/coord.out")
  [ -n "$HERD_COORD" ] && [ ${#coord_key} = 40 ] || { cat "$tmp/coord.out"; fail "no CURVE coordinator"; }
  export HERD_COORD
}

# curve_workers N STEPS [ENV...]: N gloo workers of a CURVE job.
curve_workers() {
  local n=$1 steps=$2; shift 2
  for ((rank = 0; rank < n; rank++)); do
    env HERD_COORD_KEY="$coord_key" HERD_TOKEN_FILE="$tmp/token" HERD_RANK=$rank \
      HERD_WORLD_SIZE=$n HERD_BACKEND=gloo HERD_LOG_LEVEL=info "$@" \
      herd-train --data "$data" --max-steps "$steps" > "$tmp/w$rank.out" 2>&1 &
    pids+=($!)
  done
}

wait_job() { # wait_job SECONDS: the coordinator ends with the job
  for _ in $(seq 1 $(($1 * 10))); do kill -0 "$coord_pid" 2>/dev/null || return 0; sleep 0.1; done
  fail "the job did not end within $1 s"
}

curve_handshake() {
  curve_coord --min 1 --join-timeout 60
  if HERD_TOKEN_FILE=$tmp/token herd status --coord "$HERD_COORD" --timeout 2 > "$tmp/s1" 2>&1; then
    fail "answered a client without the public key"; fi
  grep -q "no answer" "$tmp/s1" || { cat "$tmp/s1"; fail "without the key: $(cat "$tmp/s1")"; }
  if HERD_COORD_KEY=$coord_key HERD_TOKEN=wrong herd status --coord "$HERD_COORD" --timeout 5 > "$tmp/s2" 2>&1; then
    fail "answered a wrong token"; fi
  HERD_COORD_KEY=$coord_key HERD_TOKEN_FILE=$tmp/token herd status --coord "$HERD_COORD" --timeout 5 > "$tmp/s3" 2>&1 ||
    { cat "$tmp/s3"; fail "refused the key and the token"; }
  # A worker without the key never gets a roster; with it, it trains.
  if HERD_JOIN_TIMEOUT=3 HERD_TOKEN_FILE=$tmp/token HERD_RANK=0 HERD_WORLD_SIZE=1 \
      herd-train --data "$data" --max-steps 5 > "$tmp/nokey" 2>&1; then
    fail "a worker without the key trained"; fi
  grep -q "HERD_COORD_KEY" "$tmp/nokey" || { cat "$tmp/nokey"; fail "the worker did not name HERD_COORD_KEY"; }
  curve_workers 1 20
  wait_job 120
  [ "$(json "$tmp/coord/summary.json" 'j["ok"] and j["final_step"] == 20')" = True ] ||
    fail "CURVE job: $(cat "$tmp/coord/summary.json")"
  echo "curve_handshake: no key, no handshake; key without token refused; key and token trained"
}

curve_hijack() {
  curve_coord --min 2 --join-timeout 120
  curve_workers 2 600
  for _ in $(seq 1 300); do
    [ "$(cat "$tmp/coord/events.jsonl" 2>/dev/null | grep -c '"event":"step"')" -ge 20 ] && break; sleep 0.1
  done
  local victim
  victim=$(sed -n 's/.*joining .* as \([^ ]*\) (CURVE).*/\1/p' "$tmp/w1.out" | head -1)
  [ -n "$victim" ] || { cat "$tmp/w1.out"; fail "no routing id in worker 1's log"; }
  curve_attack "$HERD_COORD" "$coord_key" "$victim" 1 1 > "$tmp/attack" ||
    fail "curve_attack: $(cat "$tmp/attack")"
  cat "$tmp/attack"
  # The attack got in (the public key is enough for a handshake), yet
  # nothing it sent may act for the member.
  grep -q "attempts 8, connected 8" "$tmp/attack" || fail "the attacker did not even connect"
  wait_job 240
  "$py" - "$tmp/coord/events.jsonl" <<'PY' || fail "the job was touched by the attack"
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1])]
done = [e for e in ev if e["event"] == "done"]
assert done and done[0]["ok"], "no successful done event"
steps = [e for e in ev if e["event"] == "step"]
# Workers leave as they finish; before the last step nobody failed or left.
last = max(i for i, e in enumerate(ev) if e["event"] == "step")
bad = [e for e in ev[:last] if e["event"] in ("member_failed", "member_left")]
assert not bad, bad
assert not [e for e in ev if e["event"] == "member_failed"]
assert steps and all(e["world_size"] == 2 and e["generation"] == 1 for e in steps), "world changed"
assert max(e["step"] for e in steps) == 600, "did not finish"
PY
  echo "curve_hijack: 8 forged messages (4 under the member's id), none acted on; the job finished untouched"
}

# A TCP proxy on loopback: listens on a free port, forwards to HOST:PORT and
# appends every byte it carries to FILE. Prints its port; runs until killed.
proxy() { # proxy HOST PORT FILE
  "$py" -u - "$@" <<'PY' &
import socket, sys, threading
host, port, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
out = open(path, "ab", buffering=0)
lock = threading.Lock()
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", 0))
server.listen(16)
print(server.getsockname()[1], flush=True)
def pump(a, b):
    try:
        while True:
            data = a.recv(65536)
            if not data:
                break
            with lock:
                out.write(data)
            b.sendall(data)
    except OSError:
        pass
    for s in (a, b):
        try: s.shutdown(socket.SHUT_RDWR)
        except OSError: pass
while True:
    client, _ = server.accept()
    upstream = socket.create_connection((host, port))
    threading.Thread(target=pump, args=(client, upstream), daemon=True).start()
    threading.Thread(target=pump, args=(upstream, client), daemon=True).start()
PY
  pids+=($!)
}

curve_capture() {
  for mode in on off; do
    rm -rf "$tmp/coord"
    secret_file "$tmp/token"
    cp "$tmp/token" "$tmp/token-$mode"
    herd coord --curve $mode --port 0 --min 1 --run-dir "$tmp/coord" --token-file "$tmp/token" \
      --job-id capturejobname > "$tmp/coord.out" 2>&1 &
    coord_pid=$!
    pids+=("$coord_pid")
    for _ in $(seq 1 100); do grep -q '^HERD_COORD=' "$tmp/coord.out" 2>/dev/null && break; sleep 0.1; done
    sleep 0.3
    local endpoint port key=""
    endpoint=$(sed -n 's/^HERD_COORD=//p' "$tmp/coord.out")
    key=$(sed -n 's/^HERD_COORD_KEY=//p' "$tmp/coord.out")
    port=${endpoint##*:}
    proxy 127.0.0.1 "$port" "$tmp/capture-$mode" > "$tmp/proxy-port"
    for _ in $(seq 1 50); do [ -s "$tmp/proxy-port" ] && break; sleep 0.1; done
    HERD_COORD=tcp://127.0.0.1:$(cat "$tmp/proxy-port") HERD_COORD_KEY=$key HERD_JOB_ID=capturejobname \
      HERD_TOKEN_FILE=$tmp/token HERD_RANK=0 HERD_WORLD_SIZE=1 HERD_BACKEND=gloo \
      herd-train --data "$data" --max-steps 30 > "$tmp/cap-$mode.out" 2>&1 ||
      { cat "$tmp/cap-$mode.out"; fail "$mode: the job through the proxy"; }
    wait_job 60
    [ -s "$tmp/capture-$mode" ] || fail "$mode: nothing captured"
  done
  # Plain text first: the same check must find both there, or it is blind.
  grep -qa -- "$(cat "$tmp/token-off")" "$tmp/capture-off" || fail "plain text: the token is not in the capture (the check is blind)"
  grep -qa -- capturejobname "$tmp/capture-off" || fail "plain text: the job id is not in the capture (the check is blind)"
  grep -qa -- "$(cat "$tmp/token-on")" "$tmp/capture-on" && fail "CURVE: the token is readable in the capture"
  grep -qa -- capturejobname "$tmp/capture-on" && fail "CURVE: the job id is readable in the capture"
  echo "curve_capture: $(stat -c %s "$tmp/capture-on") bytes under CURVE hold neither the token nor the job id; plain text holds both"
}

# http_get URL [TOKEN]: prints the HTTP status code; the body goes to
# $tmp/body.
http_get() {
  "$py" - "$tmp/body" "$@" <<'PY'
import sys, urllib.request, urllib.error
body_path, url = sys.argv[1], sys.argv[2]
req = urllib.request.Request(url)
if len(sys.argv) > 3:
    req.add_header("Authorization", "Bearer " + sys.argv[3])
try:
    with urllib.request.urlopen(req, timeout=10) as r:
        code, body = r.status, r.read()
except urllib.error.HTTPError as e:
    code, body = e.code, e.read()
open(body_path, "wb").write(body)
print(code)
PY
}

http_exposed() {
  secret_file "$tmp/token"
  local token
  token=$(cat "$tmp/token")
  for bind in 0.0.0.0 127.0.0.1; do
    herd coord --port 0 --min 1 --run-dir "$tmp/c-$bind" --token-file "$tmp/token" \
      --http "$bind:0" > "$tmp/c-$bind.out" 2>&1 &
    local pid=$! url="" port
    pids+=("$pid")
    for _ in $(seq 1 100); do grep -q '^HERD_HTTP=' "$tmp/c-$bind.out" 2>/dev/null && break; sleep 0.1; done
    url=$(sed -n 's/^HERD_HTTP=//p' "$tmp/c-$bind.out")
    [ -n "$url" ] || { cat "$tmp/c-$bind.out"; fail "no HTTP URL"; }
    if [ $bind = 0.0.0.0 ]; then
      # Reached on a non-loopback address of this host.
      local addr
      addr=$(ip -4 -o addr show scope global | awk '{split($4, a, "/"); print a[1]; exit}')
      [ -n "$addr" ] && url=${url/127.0.0.1/$addr}
      [ "$(http_get "${url}status")" = 401 ] || fail "exposed /status answered without a token"
      [ "$(http_get "${url}status" wrong-token)" = 401 ] || fail "exposed /status answered a wrong token"
      [ "$(http_get "${url}status" "$token")" = 200 ] || fail "exposed /status refused the token"
      grep -q '"members"' "$tmp/body" || fail "/status body: $(head -c 200 "$tmp/body")"
      [ "$(http_get "${url}metrics")" = 200 ] || fail "exposed /metrics needs no token"
      grep -qi 'pid' "$tmp/body" && fail "/metrics names pids"
      HERD_TOKEN_FILE=$tmp/token herd top --once --url "$url" > "$tmp/top" 2>&1 ||
        { cat "$tmp/top"; fail "herd top with the token file"; }
      if herd top --once --url "$url" > "$tmp/top2" 2>&1; then fail "herd top without a token was answered"; fi
    else
      [ "$(http_get "${url}status")" = 200 ] || fail "loopback /status needs no token"
    fi
    kill "$pid"
    wait "$pid" 2>/dev/null || true
  done
  echo "http_exposed: exposed /status needs the bearer token; /metrics is open and names no pids"
}

"$case"
echo "PASS: $case"
