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
