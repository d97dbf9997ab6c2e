#!/usr/bin/env bash
# Across hosts: herd-train vs PyTorch DDP over Gloo (issue 12).
#
# Four worker "hosts" and a coordinator host (Linux network namespaces on
# one bridge, tests/cluster/cluster.sh, cluster ID 30), every host's link
# capped at 1000 Mbit/s both ways. The same job twice, one after the other:
#
#   herd   `herd coord` on host coord, one herd-train per node host
#          (HERD_COORD/HERD_RANK/HERD_WORLD_SIZE, Gloo backend), with
#          --timeline; throughput, all-reduce and exposed communication
#          per step from the timeline files (timeline_stats.py)
#   ddp    one ddp_train.py per node host, DDP over Gloo (GLOO_SOCKET_IFNAME
#          eth0), MASTER_ADDR = node1
#
# Same model (784 -> H -> H -> 10 MLP, --hidden 1024,1024), same global batch
# (--batch, default 128: 32 per rank), SGD momentum 0.9, weight decay 1e-4, constant lr, one
# BLAS/OpenMP/torch thread per process, same number of steps; the first
# --skip steps are warm-up and not measured.
#
# --grad-dtype bf16 runs herd-train with its gradient on the wire as
# bfloat16 (half the bytes) and adds a third job: DDP with its float16
# compress hook (fp16_compress_hook; the bf16 hook needs CUDA in torch
# 1.13), i.e. the same bytes on the wire on both sides.
#
# Usage (as root): bench/multihost/run.sh BUILD_BIN_DIR DATA_FILE
#                    [--steps N] [--skip S] [--batch B] [--out FILE]
#                    [--grad-dtype f32|bf16]
# Writes bench/results/multihost.json (or --out) and prints it.
# HERD_KEEP_TMP=1 keeps the logs, run dir and timelines. Every wait is
# bounded; the cluster is removed on exit, also after a failure.
set -euo pipefail

usage() { echo "usage: $0 BUILD_BIN_DIR DATA_FILE [--steps N] [--skip S] [--batch B] [--out FILE] [--grad-dtype f32|bf16]" >&2; exit 2; }
[ $# -ge 2 ] || usage
bin=$(cd "$1" && pwd) data=$(readlink -f "$2")
shift 2
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
steps=300 skip=20 out="$root/bench/results/multihost.json" batch=128 grad_dtype=f32
while [ $# -gt 0 ]; do
  case $1 in
    --steps) steps=${2:?}; shift 2 ;;
    --skip) skip=${2:?}; shift 2 ;;
    --out) out=${2:?}; shift 2 ;;
    --batch) batch=${2:?}; shift 2 ;;
    --grad-dtype) grad_dtype=${2:?}; shift 2 ;;
    *) usage ;;
  esac
done
if ! [[ $steps =~ ^[0-9]+$ && $skip =~ ^[0-9]+$ ]] || (( steps <= skip + 1 )); then
  echo "--steps must exceed --skip + 1" >&2; exit 2
fi
case $grad_dtype in f32|bf16) ;; *) usage ;; esac
[ "$EUID" -eq 0 ] || { echo "run as root (network namespaces)" >&2; exit 2; }
if ! [ -x "$bin/herd" ] || ! [ -x "$bin/herd-train" ]; then
  echo "no herd/herd-train in $bin" >&2; exit 2
fi
[ -r "$data" ] || { echo "cannot read $data" >&2; exit 2; }

py=/usr/bin/python3
"$py" -c 'import torch, h5py' 2>/dev/null ||
  { echo "need torch and h5py for $py: apt-get install -y python3-torch python3-h5py" >&2; exit 2; }

. "$root/tests/cluster/cluster.sh"
id=30 world=4 hidden=1024,1024 mbit=1000
[[ $batch =~ ^[0-9]+$ ]] && (( batch >= world && batch % world == 0 )) ||
  { echo "--batch must be a multiple of $world" >&2; exit 2; }
lr=0.05 momentum=0.9 wd=1e-4 seed=42
hosts=(coord node1 node2 node3 node4)
run_timeout=$((120 + steps)) # seconds for either job

tmp=$(mktemp -d /tmp/herd-bench-multihost.XXXXXX)
chmod 755 "$tmp"
# Every process runs inside a cluster host: cluster_down kills them all.
cleanup() {
  cluster_down "$id" || true
  if [ "${HERD_KEEP_TMP:-0}" = 1 ]; then echo "kept $tmp" >&2; else rm -rf "$tmp"; fi
}
trap cleanup EXIT

fail() {
  echo "FAIL: $*" >&2
  for f in "$tmp"/*.log; do [ -f "$f" ] && { echo "== $f" >&2; tail -15 "$f" >&2; }; done
  exit 1
}
on() { cluster_spawn "$id" "$@" || fail "cannot start on $1"; }
wait_for() { # FILE PATTERN SECONDS
  for _ in $(seq 1 $(($3 * 10))); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
  fail "no '$2' in $1 within $3 s"
}
# wait_all SECONDS WHAT PID...: every PID exits 0 within SECONDS in total.
wait_all() {
  local limit=$1 what=$2 p deadline
  shift 2
  deadline=$((SECONDS + limit))
  for p in "$@"; do
    while kill -0 "$p" 2>/dev/null && (( SECONDS < deadline )); do sleep 0.2; done
    kill -0 "$p" 2>/dev/null && fail "$what: pid $p still running after $limit s"
    wait "$p" || fail "$what: pid $p exited with status $?"
  done
}
threads=(OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1)

echo "cluster $id: ${hosts[*]}, every link capped at $mbit Mbit/s" >&2
cluster_up "$id" "${hosts[@]}" || fail "cluster_up"
for h in "${hosts[@]}"; do cluster_cap "$id" "$h" "$mbit" || fail "cluster_cap $h"; done

# ---- herd -------------------------------------------------------------------
(umask 077; od -An -N16 -tx1 /dev/urandom | tr -d ' \n' > "$tmp/token")
echo "herd: $world workers, $steps steps" >&2
on coord "$tmp/coord.log" "$bin/herd" coord --bind "$(cluster_addr "$id" coord)" \
  --port 29400 --min "$world" --token-file "$tmp/token" --run-dir "$tmp/run"
coord_pid=$CLUSTER_PID
wait_for "$tmp/coord.log" listening 10
# Beyond loopback the control plane runs CURVE: the workers need its key.
wait_for "$tmp/coord.log" HERD_COORD_KEY= 10
coord_key=$(sed -n 's/^HERD_COORD_KEY=//p' "$tmp/coord.log")
workers=()
for r in $(seq 0 $((world - 1))); do
  on "node$((r + 1))" "$tmp/herd-w$r.log" env "${threads[@]}" \
    HERD_COORD=tcp://coord:29400 HERD_COORD_KEY="$coord_key" HERD_TOKEN_FILE="$tmp/token" \
    HERD_RANK="$r" HERD_WORLD_SIZE="$world" \
    "$bin/herd-train" --data "$data" --hidden "$hidden" --batch "$batch" \
    --max-steps "$steps" --optimizer sgd --momentum "$momentum" --weight-decay "$wd" \
    --lr "$lr" --schedule constant --warmup-steps 0 --seed "$seed" \
    --grad-dtype "$grad_dtype" --timeline "$tmp/herd-timeline.json"
  workers+=("$CLUSTER_PID")
done
wait_all "$run_timeout" "herd-train" "${workers[@]}"
wait_all 30 "herd coord" "$coord_pid"
"$py" "$here/timeline_stats.py" "$tmp/herd-timeline.json" --ranks "$world" \
  --batch "$batch" --skip "$skip" >"$tmp/herd-stats.json" || fail "timeline_stats"

# ---- DDP --------------------------------------------------------------------
ddp_job() { # COMPRESS OUT PORT
  echo "ddp: $world ranks, $steps steps, compress $1" >&2
  local master r
  master=$(cluster_addr "$id" node1)
  workers=()
  for r in $(seq 0 $((world - 1))); do
    on "node$((r + 1))" "$tmp/ddp-$1-w$r.log" env "${threads[@]}" GLOO_SOCKET_IFNAME=eth0 \
      MASTER_ADDR="$master" MASTER_PORT="$3" RANK="$r" WORLD_SIZE="$world" \
      "$py" "$here/ddp_train.py" --data "$data" --hidden "$hidden" --batch "$batch" \
      --steps "$steps" --skip "$skip" --lr "$lr" --momentum "$momentum" \
      --weight-decay "$wd" --seed "$seed" --compress "$1" --out "$2"
    workers+=("$CLUSTER_PID")
  done
  wait_all "$run_timeout" "ddp_train.py" "${workers[@]}"
}
ddp_job none "$tmp/ddp-stats.json" 29500
if [ "$grad_dtype" = bf16 ]; then ddp_job fp16 "$tmp/ddp-fp16-stats.json" 29501; fi

# ---- result -----------------------------------------------------------------
mkdir -p "$(dirname "$out")"
"$py" - "$tmp" "$out" "$steps" "$skip" "$mbit" "$root" "$grad_dtype" <<'PY' || fail "writing the result"
import json, os, platform, statistics, subprocess, sys
tmp, out, steps, skip, mbit, root, grad_dtype = sys.argv[1:]
herd = json.load(open(f"{tmp}/herd-stats.json"))
ddp = json.load(open(f"{tmp}/ddp-stats.json"))
ddp16 = (json.load(open(f"{tmp}/ddp-fp16-stats.json"))
         if os.path.exists(f"{tmp}/ddp-fp16-stats.json") else None)
events = [json.loads(l) for l in open(f"{tmp}/run/events.jsonl")]
st = [e for e in events if e["event"] == "step" and e["step"] > int(skip)]
coord_sps = [e["samples_per_second"] for e in st if e.get("samples_per_second")]
losses = [e["loss"] for e in events if e["event"] == "step" and "loss" in e]
try:
    commit = subprocess.run(["git", "-C", root, "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
except OSError:
    commit = ""
ratio = herd["samples_per_second"] / ddp["samples_per_second"]
exp_frac = herd["exposed_fraction"]
res = {
    "bench": "multihost: herd-train vs PyTorch DDP (gloo), issue 12",
    "setup": {"hosts": 4, "coordinator_host": True, "link_mbit": int(mbit),
              "model": "MLP 784-1024-1024-10 (ReLU)", "params": ddp["params"],
              "global_batch": ddp["global_batch"], "per_rank_batch": ddp["per_rank_batch"],
              "optimizer": "sgd momentum 0.9 wd 1e-4, constant lr 0.05",
              "threads_per_process": 1, "steps": int(steps), "skip": int(skip),
              "cpus": os.cpu_count(), "kernel": platform.release(),
              "torch": ddp["torch"], "herd_commit": commit},
    "herd": {"samples_per_second": herd["samples_per_second"],
             "grad_dtype": grad_dtype,
             "coordinator_samples_per_second_median":
                 round(statistics.median(coord_sps), 1) if coord_sps else None,
             "step_wall_ms": herd["step_wall_ms"],
             "allreduce_ms_per_step": herd["allreduce_ms_per_step"],
             "exposed_comm_ms_per_step": herd["exposed_comm_ms_per_step"],
             "exposed_fraction": exp_frac,
             "compute_ms_per_step": herd["compute_ms_per_step"],
             "timeline_phases": herd["phases"],
             "loss_first": losses[0] if losses else None,
             "loss_last": losses[-1] if losses else None,
             "per_rank": herd["per_rank"]},
    "ddp": ddp,
    "ddp_fp16_compress": ddp16,
    "ratio_herd_over_ddp": round(ratio, 3),
    "ratio_herd_over_ddp_fp16_compress":
        round(herd["samples_per_second"] / ddp16["samples_per_second"], 3) if ddp16 else None,
    "targets": {"throughput_ratio_min": 1.5, "throughput_met": ratio >= 1.5,
                "exposed_fraction_max": 0.5,
                "exposed_met": exp_frac is not None and exp_frac < 0.5},
}
with open(out, "w") as f:
    json.dump(res, f, indent=1)
    f.write("\n")
print(json.dumps(res, indent=1))
print(f"herd ({grad_dtype}) {herd['samples_per_second']} samples/s, ddp {ddp['samples_per_second']} "
      f"samples/s, ratio {ratio:.2f} (target >= 1.5)"
      + (f", ddp fp16 hook {ddp16['samples_per_second']} samples/s" if ddp16 else "")
      + f"; herd all-reduce "
      f"{herd['allreduce_ms_per_step']} ms/step, exposed {herd['exposed_comm_ms_per_step']} "
      f"ms/step ({exp_frac}; target < 0.5) -> {out}", file=sys.stderr)
PY
