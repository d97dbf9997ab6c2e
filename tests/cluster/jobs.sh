#!/usr/bin/env bash
# Whole training jobs across hosts (network namespaces on one bridge, each
# with its own address and hostname: tests/cluster/cluster.sh), one CASE per
# ctest test. Each trains one model over at least 3 hosts and checks with
# job_check.py that one world of the expected size formed from distinct
# hosts, every step was committed once and every sample seen once per epoch.
#
#   standalone       `herd coord` on its own host, workers started by hand on
#                    three others, exactly as the README's recipe says; its
#                    accuracy is the fault-free baseline of the fault cases
#   mpirun_hosts     `herd run -H node1:1,node2:1,node3:1` from a head host:
#                    the coordinator listens on the head's cluster address,
#                    mpirun reaches the hosts through rsh-agent (ssh's stand-in)
#   k8s              the Kubernetes layout: `herd coord` as the Deployment on
#                    host herd-coord, one pod per host with exactly the
#                    environment k8s/base gives (ConfigMap, Secret, index)
#   k8s_wrong_world  a pod whose backend cannot form the launcher's world
#                    (mpi without mpirun) exits 2 with what to set
#   host_death       (fault) standalone layout, a host with two workers dies
#                    (kill -9 of everything in it): the others go on within
#                    1 s, exactly once, accuracy within 0.5 points
#   k8s_host_death   (fault) the same in the Kubernetes layout; the pod is
#                    restarted (as Kubernetes would) and rejoins as a newcomer
#   mpirun_collectives  test_comm's every dtype, op, count and mode under
#                    mpirun -H node1:2,node2:2: the mpi backend's
#                    hierarchical all-reduce (host shared memory, then
#                    between the hosts) gives what MPI_Allreduce would
#   mpirun_host_death (fault) under mpirun a node dies for good: Open MPI
#                    ends the job, herd run relaunches it on the remaining
#                    hosts from the newest checkpoint and says so
#   link_cut         (fault) a worker host's cable out for 3 s: its workers
#                    are failed, rejoin as newcomers, no split brain
#   coord_cut_short  (fault) the coordinator's host out for 0.3 s: nothing
#   coord_cut_long   (fault) out for 5 s: nobody failed, workers train on,
#                    buffer and re-register, every step logged once
#   straggler        one host capped at a tenth of the others' bandwidth:
#                    named as the straggler, never failed
#
# Usage: jobs.sh BIN_DIR DATA_FILE CASE. Runs as root (namespaces); fails,
# never skips, when it cannot build the cluster. Every wait is bounded; the
# cluster is removed on exit, also after a failure.
set -euo pipefail
bin=$(cd "$1" && pwd) data=$(readlink -f "$2") case=$3
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../fault/run_helpers.sh"
. "$here/cluster.sh"
fault_setup "cluster-$case"
chmod 755 "$tmp" # the run dir is shared by every host (one file system)

# One cluster ID per case, so cases never share names or addresses.
declare -A ids=([standalone]=11 [mpirun_hosts]=12 [k8s]=13 [k8s_wrong_world]=14
                [host_death]=15 [k8s_host_death]=16 [mpirun_host_death]=17
                [link_cut]=18 [coord_cut_short]=19 [coord_cut_long]=20 [straggler]=21
                [mpirun_collectives]=22)
id=${ids[$case]:-}
[ -n "$id" ] || { echo "unknown case '$case'" >&2; exit 2; }
trap 'cluster_down "$id"; fault_cleanup' EXIT

token=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
# The README's recipe keeps the token in a file (never in an argv).
token_file=$tmp/token
(umask 077; printf '%s\n' "$token" > "$token_file")
train_args=(--data "$data" --epochs 2 --seed 7 --ckpt-every 50)
baseline_file="$(dirname "$data")/cluster-baseline.txt"
check=("$py" "$here/job_check.py" "$tmp/run")

# on HOST LOG CMD...: a process on a cluster host, killed at exit.
on() { cluster_spawn "$id" "$@"; pids+=("$CLUSTER_PID"); }

# coord_up HOST MIN [ARGS...]: `herd coord` on HOST's cluster address.
coord_up() {
  local host=$1 min=$2; shift 2
  on "$host" "$tmp/coord.log" "$bin/herd" coord --bind "$(cluster_addr "$id" "$host")" \
    --port 29400 --min "$min" --token-file "$token_file" --run-dir "$tmp/run" "$@"
  coord_pid=$CLUSTER_PID
  wait_for "$tmp/coord.log" "listening" 10
  # Beyond loopback it runs CURVE: the public key it printed (the same
  # after a restart: RUN_DIR/coord.key) is what the workers need.
  wait_for "$tmp/coord.log" "HERD_COORD_KEY=" 10
  coord_key=$(sed -n 's/^HERD_COORD_KEY=//p' "$tmp/coord.log" | tail -1)
}

# worker HOST RANK WORLD [ENV...]: herd-train started by hand on HOST.
worker() {
  local host=$1 rank=$2 world=$3; shift 3
  on "$host" "$tmp/w$rank.log" env HERD_COORD=tcp://coord:29400 HERD_TOKEN_FILE="$token_file" \
    HERD_COORD_KEY="$coord_key" \
    HERD_RANK="$rank" HERD_WORLD_SIZE="$world" "$@" \
    "$bin/herd-train" "${train_args[@]}" --ckpt-dir "$tmp/run/ckpt"
}

# wait_pid PID SECONDS [WHAT]: bounded wait; the exit status must be 0.
wait_pid() {
  for _ in $(seq 1 $(($2 * 10))); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$1" 2>/dev/null && fail "${3:-pid $1} still running after $2 s"
  wait "$1" || fail "${3:-pid $1} exited with status $?"
}

need_baseline() {
  [ -s "$baseline_file" ] || fail "no baseline: run the 'standalone' case first"
}

standalone() {
  cluster_up "$id" coord node1 node2 node3
  coord_up coord 3
  for r in 0 1 2; do worker "node$((r + 1))" "$r" 3; done
  wait_pid "$coord_pid" 180 "herd coord"
  "${check[@]}" --world 3 --hosts 3 --epochs 2 --write-baseline "$baseline_file" ||
    fail "job check"
}

# four_workers MIN: herd coord (--min MIN --max 4) on host coord, workers on
# node1, node2 and two on node3; returns once 150 steps are committed.
four_workers() {
  need_baseline
  cluster_up "$id" coord node1 node2 node3
  coord_up coord "$1" --max 4
  worker node1 0 4; worker node2 1 4; worker node3 2 4; worker node3 3 4
  wait_steps "$tmp/run" 150
}

host_death() {
  four_workers 2
  fault_ts=$(date +%s.%N)
  cluster_kill_host "$id" node3
  wait_pid "$coord_pid" 180 "herd coord"
  "${check[@]}" --world 4 --hosts 3 --epochs 2 --min-generations 2 \
    --baseline "$baseline_file" --fault-ts "$fault_ts" || fail "job check"
  grep -q '"member_failed".*"host":"node3"' "$tmp/run/events.jsonl" ||
    fail "no member_failed naming host node3"
}

# (fault) node3's cable is pulled for 3 s: its two workers are failed after
# the heartbeat deadline, the others go on; the cut-off pair cannot commit a
# step alone (every all-reduce needs the others), notices it was dropped and
# rejoins as newcomers once the cable is back. job_check's "every step once,
# generations never go back" is the no-split-brain check.
link_cut() {
  four_workers 2
  fault_ts=$(date +%s.%N)
  cluster_link "$id" node3 down
  sleep 3
  cluster_link "$id" node3 up
  wait_pid "$coord_pid" 180 "herd coord"
  # No --fault-ts: a cut cable shows only as silence, so the survivors go on
  # once node3 is failed (the 2 s deadline), checked below from that moment;
  # from the cut itself only a step that slipped in before it was < 1 s.
  "${check[@]}" --world 4 --hosts 3 --epochs 2 --min-generations 3 \
    --baseline "$baseline_file" || fail "job check"
  "$py" - "$tmp/run" "$fault_ts" <<'PY' || fail "the cut-off workers did not rejoin"
import json, sys
events = [json.loads(l) for l in open(f"{sys.argv[1]}/events.jsonl")]
t = float(sys.argv[2])
failed = [e for e in events if e["event"] == "member_failed" and e["ts"] > t]
assert {e["host"] for e in failed} == {"node3"}, f"failed: {failed}"
assert len(failed) == 2, f"want node3's 2 workers failed, got {failed}"
assert all("heartbeat" in e["reason"] for e in failed), failed
detected = max(e["ts"] for e in failed)
went_on = min(e["ts"] for e in events if e["event"] == "step" and e["ts"] > detected)
assert went_on - detected <= 1.0, \
    f"next committed step {went_on - detected:.3f} s after node3 was failed, want <= 1 s"
back = [e for e in events if e["event"] == "member_joined" and e["ts"] > t
        and e["host"] == "node3"]
assert len(back) == 2, f"node3's workers rejoined {len(back)} times, want 2"
last = [e for e in events if e["event"] == "generation"][-1]
assert last["world_size"] == 4, f"last generation {last}"
print(f"link_cut: node3 failed after {detected - t:.2f} s, the others went on "
      f"{went_on - detected:.2f} s later, node3 rejoined after {back[-1]['ts'] - t:.2f} s")
PY
}

# (fault) the coordinator's host is cut off while four workers on three
# hosts train. Shorter than the failure deadline (500 ms): nobody notices.
# Longer (5 s, past the workers' 3 s ZMTP heartbeat timeout, so their
# connections die): the coordinator hears nobody, takes itself to be the
# one cut off and fails nobody; the workers go on training among themselves
# (the coordinator is not on the data path), buffer their reports and
# re-register when the link returns. Either way: one generation, every step
# in events.jsonl exactly once, none missing.
coord_cut() { # SECONDS
  four_workers 4
  cluster_link "$id" coord down
  cut_start=$(date +%s.%N)
  sleep "$1"
  cluster_link "$id" coord up
  wait_pid "$coord_pid" 180 "herd coord"
  "${check[@]}" --world 4 --hosts 3 --epochs 2 --baseline "$baseline_file" ||
    fail "job check"
  "$py" - "$tmp/run" "$cut_start" "$1" <<'PY' || fail "the cut was not survived in place"
import json, sys
events = [json.loads(l) for l in open(f"{sys.argv[1]}/events.jsonl")]
t0, cut = float(sys.argv[2]), float(sys.argv[3])
bad = [e for e in events if e["event"] in ("member_failed", "job_failed")]
assert not bad, f"failures: {bad}"
gens = [e for e in events if e["event"] == "generation"]
assert len(gens) == 1, f"want one generation, got {gens}"
# Training went on during the cut: the reports buffered on the workers
# arrive in one burst after it, at least half of what the pre-cut rate
# would have made in the cut.
steps = [e for e in events if e["event"] == "step"]
rate = sum(1 for e in steps if t0 - 3 < e["ts"] < t0) / 3
after = [e["ts"] for e in steps if e["ts"] > t0 + cut]
burst = sum(1 for ts in after if ts < after[0] + 0.5) if after else 0
assert burst >= rate * cut * 0.5, f"{burst} steps after the cut, rate {rate:.0f}/s"
print(f"coord_cut: {cut} s cut, nobody failed, one generation; {burst} "
      f"buffered steps arrived within 0.5 s of the link's return ({rate:.0f} steps/s before)")
PY
}
coord_cut_short() { coord_cut 0.3; }
coord_cut_long() { coord_cut 5; }

# (fault) every host link capped at 1 Gbit/s, node4's at 100 Mbit/s: the job
# runs at node4's pace, nobody is failed, and the metrics and `herd top` name
# node4 as the straggler (its TCP links, coord_links.c) while the job runs.
straggler() {
  cluster_up "$id" coord node1 node2 node3 node4
  for h in node1 node2 node3; do cluster_cap "$id" "$h" 1000; done
  cluster_cap "$id" node4 100
  coord_up coord 4 --max 4
  train_args=(--data "$data" --seed 7 --max-steps 300)
  for r in 0 1 2 3; do worker "node$((r + 1))" "$r" 4; done
  wait_for "$tmp/run/events.jsonl" '"event":"http"' 10
  url=$(sed -n 's/.*"event":"http","url":"\([^"]*\)".*/\1/p' "$tmp/run/events.jsonl" | head -1)
  local named=0
  for _ in $(seq 1 60); do # bounded: 30 s
    cluster_exec "$id" coord "$bin/herd" top --once --url "$url" >"$tmp/top.txt" 2>&1 || true
    if grep -q "^straggler: node4 " "$tmp/top.txt"; then named=1; break; fi
    kill -0 "$coord_pid" 2>/dev/null || break
    sleep 0.5
  done
  cat "$tmp/top.txt"
  [ "$named" = 1 ] || fail "herd top did not name node4 as the straggler"
  grep -E '^ +3 node4 .* NET$' "$tmp/top.txt" || fail "node4's row is not marked NET"
  grep -c ' NET$' "$tmp/top.txt" | grep -qx 1 || fail "more than one host named"
  cluster_exec "$id" coord curl -sf "${url}metrics" >"$tmp/metrics.txt" || fail "no /metrics"
  grep -qx 'herd_rank_straggler{rank="3"} 1' "$tmp/metrics.txt" ||
    fail "herd_rank_straggler does not name rank 3 (node4): $(grep straggler "$tmp/metrics.txt")"
  [ "$(grep -c '^herd_rank_straggler{.*} 1$' "$tmp/metrics.txt")" = 1 ] || fail "more than one straggler"
  wait_pid "$coord_pid" 180 "herd coord"
  "${check[@]}" --world 4 --hosts 4 || fail "job check"
  ! grep -q '"member_failed"' "$tmp/run/events.jsonl" || fail "a member was failed"
}

# ---- Kubernetes, simulated: one host per pod -------------------------------

# The ConfigMap's data as KEY=VALUE words (k8s/base/configmap.yaml has flat
# `KEY: "value"` entries), with the gpu overlay's on top when asked.
k8s_env() {
  "$py" - "$here/../../k8s" "$@" <<'PY'
import re, sys
root, overlays = sys.argv[1], sys.argv[2:]
env = {}
for path in [f"{root}/base/configmap.yaml"] + [f"{root}/overlays/{o}/{o}-config.yaml" for o in overlays]:
    data = False
    for line in open(path):
        if re.match(r"^data:\s*$", line):
            data = True
            continue
        m = re.match(r'^  ([A-Z_][A-Z0-9_]*):\s*"?([^"]*)"?\s*$', line) if data else None
        if m:
            env[m.group(1)] = m.group(2)
for k, v in env.items():
    print(f"{k}={v}")
PY
}

# The pod spec's env entries from the downward API that a pod gets (none
# other than what the Job sets: JOB_COMPLETION_INDEX, the hostname).
k8s_pod() { # HOST INDEX: one worker pod, environment as the manifests say
  local host=$1 index=$2
  mapfile -t cm < <(k8s_env)
  # The ConfigMap's paths are the pod's volume mounts; here the shared dir.
  # Root here (namespaces), user 1000 in the image: let a singleton MPI run.
  on "$host" "$tmp/pod$index.$RANDOM.log" env -i PATH="$bin:/usr/bin:/bin" \
    OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 \
    "${cm[@]}" HERD_TOKEN="$token" HERD_COORD_KEY="$coord_key" JOB_COMPLETION_INDEX="$index" \
    HERD_RUN_DIR="$tmp/run" HERD_CKPT_DIR="$tmp/run/ckpt" HERD_DATA="$data" \
    "${pod_env[@]}" "$bin/herd-train" --epochs 2 --seed 7 --ckpt-every 50
  pod_pid=$CLUSTER_PID
}

k8s_world_size() { k8s_env | sed -n 's/^HERD_WORLD_SIZE=//p'; }

# The Deployment's args, $(VAR) expanded from the ConfigMap as Kubernetes
# does (k8s/base/coordinator.yaml).
k8s_coord_args() {
  "$py" - "$here/../../k8s/base/coordinator.yaml" "$tmp/run" $(k8s_env) <<'PY'
import re, sys
path, run_dir, env = sys.argv[1], sys.argv[2], dict(a.split("=", 1) for a in sys.argv[3:])
text = open(path).read()
args = re.search(r"args:\n((?:\s+- .*\n|\s+#.*\n)+)", text).group(1)
for line in args.splitlines():
    m = re.match(r'\s+- "(.*)"', line)
    if m:
        arg = re.sub(r"\$\((\w+)\)", lambda v: env[v.group(1)], m.group(1))
        print(arg.replace("/ckpt/run", run_dir))
PY
}

# The Deployment runs `herd coord` with the ConfigMap and Secret; workers
# reach it through the Service name in HERD_COORD (tcp://herd-coord:29400).
k8s_cluster() {
  local world=$1
  local hosts=(herd-coord)
  for ((i = 0; i < world; i++)); do hosts+=("herd-workers-$i"); done
  cluster_up "$id" "${hosts[@]}"
  grep -q 'HERD_COORD=tcp://herd-coord:29400' <(k8s_env) ||
    fail "the ConfigMap's HERD_COORD is not tcp://herd-coord:29400"
  mapfile -t coord_args < <(k8s_coord_args)
  [ "${#coord_args[@]}" -ge 3 ] || fail "cannot read the Deployment's args"
  # The two Secrets as an operator makes them (k8s/base/secret.yaml): the
  # token and the CURVE public key for everyone, the secret key mounted in
  # the coordinator only (HERD_COORD_KEY_FILE, as the Deployment sets it).
  grep -q 'HERD_COORD_KEY_FILE' "$here/../../k8s/base/coordinator.yaml" ||
    fail "the Deployment does not give the coordinator its key file"
  coord_key=$("$bin/herd" keygen --out "$tmp/coord.key" | sed -n 's/^HERD_COORD_KEY=//p')
  [ -n "$coord_key" ] || fail "herd keygen"
  # The Deployment's argv holds no secret: the token and the key come from
  # the Secrets (environment, mounted file).
  printf '%s\n' "${coord_args[@]}" | grep -qi -- "token\|$token\|key" &&
    fail "the Deployment puts a secret in herd coord's argv: ${coord_args[*]}"
  on herd-coord "$tmp/coord.log" env -i PATH="$bin:/usr/bin:/bin" $(k8s_env) \
    HERD_TOKEN="$token" HERD_COORD_KEY_FILE="$tmp/coord.key" \
    "$bin/herd" coord "${coord_args[@]}"
  coord_pid=$CLUSTER_PID
  wait_for "$tmp/coord.log" "listening" 10
}

k8s() {
  local world; world=$(k8s_world_size); pod_env=()
  k8s_cluster "$world"
  for ((i = 0; i < world; i++)); do k8s_pod "herd-workers-$i" "$i"; done
  wait_pid "$coord_pid" 240 "herd coord"
  "${check[@]}" --world "$world" --hosts "$world" --epochs 2 || fail "job check"
}

k8s_wrong_world() {
  local world; world=$(k8s_world_size)
  k8s_cluster "$world"
  pod_env=(HERD_BACKEND=mpi)
  k8s_pod herd-workers-0 0
  rc=0; for _ in $(seq 1 300); do kill -0 "$pod_pid" 2>/dev/null || break; sleep 0.1; done
  wait "$pod_pid" || rc=$?
  [ "$rc" = 2 ] || fail "a pod with HERD_BACKEND=mpi exited $rc, want 2"
  grep -q "set HERD_BACKEND=gloo" "$tmp"/pod0.*.log || fail "no message saying what to set"
}

k8s_host_death() {
  need_baseline
  local world; world=$(k8s_world_size); pod_env=()
  k8s_cluster "$world"
  for ((i = 0; i < world; i++)); do k8s_pod "herd-workers-$i" "$i"; done
  wait_steps "$tmp/run" 150
  fault_ts=$(date +%s.%N)
  cluster_kill_host "$id" herd-workers-1
  sleep 1 # the Job controller notices and starts a replacement pod
  k8s_pod herd-workers-1 1
  wait_pid "$coord_pid" 240 "herd coord"
  "${check[@]}" --world "$world" --hosts "$world" --epochs 2 --min-generations 3 \
    --baseline "$baseline_file" --fault-ts "$fault_ts" || fail "job check"
}

# ---- mpirun across hosts -----------------------------------------------------

# herd run on host `head`; mpirun reaches node1..3 through rsh-agent, the
# stand-in for ssh (OMPI_MCA_plm_rsh_agent, as a user would set it).
mpirun_job() { # BACKEND EXTRA_HERD_RUN_ARGS...
  local backend=$1; shift
  cluster_up "$id" head node1 node2 node3
  on head "$tmp/run.log" env OMPI_MCA_plm_rsh_agent="$here/rsh-agent" \
    PATH="$bin:$PATH" "$bin/herd" run -H node1:1,node2:1,node3:1 -n 3 \
    --backend "$backend" --run-dir "$tmp/run" --progress-interval 5 "$@" \
    -- herd-train "${train_args[@]}"
  run_pid=$CLUSTER_PID
}

mpirun_hosts() {
  mpirun_job mpi
  wait_pid "$run_pid" 240 "herd run"
  "${check[@]}" --world 3 --hosts 3 --epochs 2 || fail "job check"
  grep -q "coordinator tcp://$(cluster_addr "$id" head):" "$tmp/run.log" ||
    fail "the coordinator did not listen on the head's cluster address"
}

mpirun_collectives() {
  cluster_up "$id" head node1 node2
  local net
  net="$(cluster_addr "$id" head | cut -d. -f1-3).0/24"
  cluster_exec "$id" head timeout 300 mpirun --allow-run-as-root --oversubscribe \
    --bind-to none --mca plm_rsh_agent "$here/rsh-agent" --mca btl self,vader,tcp \
    --mca btl_tcp_if_include "$net" --mca oob_tcp_if_include "$net" \
    --mca btl_vader_single_copy_mechanism none --mca mpi_yield_when_idle 1 \
    -x HERD_LOG_LEVEL=debug -H node1:2,node2:2 -np 4 "$bin/test_comm" mpi 1000000 \
    > "$tmp/comm.log" 2>&1 || { tail -20 "$tmp/comm.log"; fail "test_comm across hosts"; }
  grep "checks" "$tmp/comm.log"
  # Every rank took the shared-memory path (else this tested MPI only).
  [ "$(grep -c "all-reduce through host shared memory" "$tmp/comm.log")" = 4 ] ||
    { cat "$tmp/comm.log"; fail "not every rank used host shared memory"; }
}

mpirun_host_death() {
  mpirun_job mpi --max-restarts 1
  wait_for "$tmp/run/events.jsonl" checkpoint_committed 60
  wait_steps "$tmp/run" 150
  cluster_link "$id" node3 down # gone for good: unreachable, processes dead
  cluster_kill_host "$id" node3
  wait_pid "$run_pid" 240 "herd run"
  grep -q '"job_restarted"' "$tmp/run/events.jsonl" || fail "no job_restarted event"
  grep -q "relaunching the job without node3" "$tmp/run.log" ||
    fail "herd run did not say it relaunches without node3"
  "$py" - "$tmp/run" <<'PY' || fail "job check after the relaunch"
import json, sys
run = sys.argv[1]
s = json.load(open(f"{run}/summary.json"))
assert s["ok"] is True, s
assert s["resumed_from_step"] is not None, "the relaunch did not resume"
gens = [e for e in map(json.loads, open(f"{run}/events.jsonl")) if e["event"] == "generation"]
assert gens[-1]["world_size"] == 2, f"last generation {gens[-1]}, want world 2"
print(f"job_check: relaunched on 2 hosts from step {s['resumed_from_step']}, "
      f"accuracy {s['test_accuracy']:.4f}")
PY
}

"$case"
echo "PASS: $case"
