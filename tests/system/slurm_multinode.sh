#!/usr/bin/env bash
# herd on a three-node Slurm that lives on this one machine: Debian's
# slurm-wlm is built with --enable-multiple-slurmd (`scontrol show config`:
# MULTIPLE_SLURMD = Yes), so `NODES=3 slurm/test-cluster.sh` runs one slurmd
# per node (`slurmd -N node1..3`, each on its own loopback port, spool and
# TmpFS). Installs Slurm and munge when missing (root only), then:
#   1. sinfo shows node1..node3 idle and `srun -N 3 --ntasks-per-node=1
#      --mpi=pmix` runs one task on each (SLURMD_NODENAME);
#   2. `srun -N 3 --ntasks-per-node=1 --mpi=pmix herd-train --backend gloo`
#      against a `herd coord --min 3 --max 3` finishes one epoch, and the run
#      folder's events.jsonl shows one generation of world size 3 whose three
#      members come from the three distinct Slurm nodes.
# herd-train reports gethostname() as its host, and all three nodes share
# this machine's hostname; each task therefore runs in its own UTS namespace
# (unshare --uts) with the hostname set to its SLURMD_NODENAME, so that the
# coordinator sees (and the events record) three hosts as on a real cluster.
# Everything else is real: slurmctld, three slurmds, slurmstepd, PMIx, and
# gloo between the workers (all on 127.0.0.1).
# Fails (never skips: a skipped multi-host test hides exactly the bugs it is
# for) with a clear message when Slurm cannot start, the gloo backend is not
# built, or unshare --uts is not allowed here; CI runs as root.
# Stops exactly the daemons it started (trap EXIT). Every wait is bounded.
# KEEP_STATE=1 keeps the state folder (daemon logs) for a look afterwards.
# Usage: slurm_multinode.sh BIN_DIR DATA_FILE
set -uo pipefail
bin=$(cd "$1" && pwd) data=$(cd "$(dirname "$2")" && pwd)/$(basename "$2")
here=$(cd "$(dirname "$0")/../.." && pwd)
nodes=3
export PATH="$bin:$PATH"
state=$(mktemp -d /tmp/herd-slurm-multi.XXXXXX)
export SLURM_CONF=$state/slurm.conf
# Few CPUs here: more tasks than CPUs, and lenient heartbeats on a busy box.
export SLURM_OVERCOMMIT=1 HERD_HEARTBEAT_MS=200 HERD_HEARTBEAT_MISSES=25
pids=()
ctld_port='' slurmd_port=''
cleanup() {
  scancel --full --quiet --user=root 2>/dev/null
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
  sleep 1
  if [ -n "$ctld_port" ]; then
    NODES=$nodes CTLD_PORT=$ctld_port SLURMD_PORT=$slurmd_port \
      "$here/slurm/test-cluster.sh" stop "$state"
  fi
  if [ -n "${KEEP_STATE:-}" ]; then echo "slurm_multinode.sh: logs kept in $state"; else rm -rf "$state"; fi
}
trap cleanup EXIT
trap 'exit 143' TERM INT
skip() { echo "FAIL: cannot run: $*" >&2; exit 1; } # never a silent skip
fail() { echo "FAIL: $*" >&2; exit 1; }

. "$(dirname "$0")/slurm_install.sh" # install_slurm

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# free_ports N: the first of N consecutive free loopback ports (bounded tries).
free_ports() {
  python3 - "$1" <<'PY'
import random, socket, sys
n = int(sys.argv[1])
for _ in range(200):
    base = random.randrange(20000, 40000)
    socks = []
    try:
        for p in range(base, base + n):
            s = socket.socket()
            s.bind(("127.0.0.1", p))
            socks.append(s)
    except OSError:
        continue
    finally:
        for s in socks:
            s.close()
    print(base)
    sys.exit(0)
sys.exit(1)
PY
}

wait_pid() { # wait_pid PID SECONDS
  for _ in $(seq 1 $(($2 * 10))); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$1" 2>/dev/null && return 124
  wait "$1"
}

preflight() {
  [ "$(id -u)" = 0 ] || skip "needs root (slurmd, unshare --uts)"
  unshare --uts sh -c 'hostname herd-uts-probe' 2>/dev/null ||
    skip "unshare --uts is not allowed here (needed to give each task its node's hostname)"
  if ! HERD_COORD='' timeout 60 herd-train --backend gloo --data "$data" --max-steps 1 --epochs 1 \
       > "$state/gloo.out" 2>&1; then
    skip "the gloo backend is not available in this build ($(tail -1 "$state/gloo.out"))"
  fi
}

cluster_up() {
  ctld_port=$(free_port) slurmd_port=$(free_ports "$nodes") || fail "no free loopback ports"
  NODES=$nodes CTLD_PORT=$ctld_port SLURMD_PORT=$slurmd_port \
    "$here/slurm/test-cluster.sh" start "$state" ||
    skip "the $nodes-node Slurm did not start (see the logs above)"
  scontrol show config > "$state/config.txt" 2>&1
  grep -q 'MULTIPLE_SLURMD *= *Yes' "$state/config.txt" ||
    echo "note: scontrol show config does not say MULTIPLE_SLURMD = Yes"
  local idle
  idle=$(sinfo -h -N -o '%N %T' | sort | tr '\n' ' ')
  [ "$idle" = "node1 idle node2 idle node3 idle " ] || fail "sinfo: $idle"
  local names
  names=$(timeout 120 srun -N "$nodes" --ntasks-per-node=1 --mpi=pmix \
            sh -c 'echo "$SLURMD_NODENAME"' 2> "$state/srun-names.err" | sort | tr '\n' ' ')
  [ "$names" = "node1 node2 node3 " ] ||
    { cat "$state/srun-names.err"; tail -n 20 "$state"/slurmd-node*.log
      fail "srun -N $nodes --mpi=pmix ran on: '$names'"; }
  echo "ok 1: $nodes slurmds on one machine: sinfo $idle; srun -N $nodes --mpi=pmix ran on $names"
}

train() {
  herd coord --port 0 --min "$nodes" --max "$nodes" --token slurm-multi --run-dir "$state/coord" \
    --join-timeout 120 > "$state/coord.out" 2>&1 &
  local coord_pid=$!
  pids+=("$coord_pid")
  for _ in $(seq 1 100); do grep -q '^HERD_COORD=' "$state/coord.out" 2>/dev/null && break; sleep 0.1; done
  HERD_COORD=$(sed -n 's/^HERD_COORD=//p' "$state/coord.out")
  export HERD_COORD HERD_TOKEN=slurm-multi
  [ -n "$HERD_COORD" ] || { cat "$state/coord.out"; fail "herd coord did not start"; }
  # One task per node; each in its own UTS namespace named after its node.
  timeout 300 srun -N "$nodes" --ntasks-per-node=1 --mpi=pmix --kill-on-bad-exit=1 \
    unshare --uts sh -c 'hostname "$SLURMD_NODENAME" && exec "$@"' sh \
    herd-train --backend gloo --data "$data" --epochs 1 > "$state/srun.out" 2>&1 ||
    { tail -n 30 "$state/srun.out"; fail "srun -N $nodes --mpi=pmix herd-train"; }
  wait_pid "$coord_pid" 60 || { cat "$state/coord.out"; fail "herd coord did not finish"; }
  python3 - "$state/coord" "$nodes" <<'PY' || { tail -n 20 "$state/coord.out"; fail "events.jsonl / summary.json"; }
import json, sys
run, n = sys.argv[1], int(sys.argv[2])
ev = [json.loads(l) for l in open(run + "/events.jsonl")]
gens = [e for e in ev if e["event"] == "generation"]
assert len(gens) == 1 and gens[0]["world_size"] == n, f"generations: {gens}"
joined = [e for e in ev if e["event"] == "member_joined"]
hosts = sorted(e["host"] for e in joined)
want = [f"node{i}" for i in range(1, n + 1)]
assert hosts == want, f"member hosts {hosts}, want {want} (one member per Slurm node)"
assert sorted(e["rank"] for e in joined) == list(range(n)), joined
steps = [e for e in ev if e["event"] == "step"]
assert steps and all(e["world_size"] == n and e["generation"] == gens[0]["generation"]
                     for e in steps), "steps outside the one world-size-%d generation" % n
assert ev[-1]["event"] == "done" and ev[-1]["ok"], ev[-1]
s = json.load(open(run + "/summary.json"))
assert s["ok"] and s["world_size"] == n and s["generations"] == 1 and s["epochs"] == 1, s
print(f"{len(steps)} steps; members " +
      ", ".join(f"rank {e['rank']} on {e['host']}" for e in sorted(joined, key=lambda e: e["rank"])))
PY
  unset HERD_COORD HERD_TOKEN
  echo "ok 2: srun -N $nodes --mpi=pmix herd-train (gloo): one generation of world size $nodes across node1..node$nodes"
}

install_slurm
preflight
cluster_up
train
echo "PASS: slurm_multinode"
