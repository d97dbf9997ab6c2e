#!/usr/bin/env bash
# bench/recovery (issue 5): the time from kill -9 of a worker to the next
# completed step, herd's elastic gloo job vs the torchrun peer, on this
# machine, one after the other (never both at once).
#
#  herd:  herd run -n 4 --min 3 --max 4 --max-restarts 10 --backend gloo
#         --launcher local -- herd-train (defaults otherwise); a random
#         non-zero rank of the current members (from the coordinator's
#         /status, checked to be a child of herd run) is killed every 2-4 s
#         of training; herd run restarts it and the newcomer rejoins.
#  torch: python3 -m torch.distributed.run --nnodes 1:1 --nproc_per_node 4
#         --max_restarts 12 --rdzv_backend c10d (127.0.0.1, free port)
#         bench/recovery/torch_peer.py: the same MLP, DDP over gloo,
#         checkpoint every 100 steps; a random worker (a child of the
#         torchrun agent) is killed every 2-4 s of training.
#
# Usage: bench/recovery/run.sh [--quick] [--build DIR] [--data FILE]
#          [--kills N] [--out-dir DIR] [--seed S] [--ckpt-every N]
#   full:    10 kills per side -> bench/results/recovery.{json,md}; installs
#            python3-torch with apt-get when missing (large: ~220 packages).
#   --quick: herd side only, 3 kills, under a minute (ctest, label bench);
#            never installs anything.
# Exit status: 0 measured; 1 a side failed (no step after a kill, a job
# ended early); 2 bad usage or no build.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
py=/usr/bin/python3
command="bench/recovery/run.sh${*:+ $*}"
quick=0 build=$root/build data="" kills="" out_dir="" seed="" ckpt_every=100
while [ $# -gt 0 ]; do
  case $1 in
    --quick) quick=1 ;;
    --build) build=$2; shift ;;
    --data) data=$2; shift ;;
    --kills) kills=$2; shift ;;
    --out-dir) out_dir=$2; shift ;;
    --seed) seed=$2; shift ;;
    --ckpt-every) ckpt_every=$2; shift ;;
    -h|--help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "run.sh: unknown option '$1'" >&2; exit 2 ;;
  esac
  shift
done
[ -x "$build/bin/herd" ] && [ -x "$build/bin/herd-train" ] ||
  { echo "run.sh: no herd build in $build (cmake -S . -B build -DHERD_CUDA=OFF && cmake --build build -j2)" >&2; exit 2; }
data=${data:-$build/test-data/fashion-mnist.h5}
if [ ! -f "$data" ]; then
  mkdir -p "$(dirname "$data")"
  timeout 120 "$build/bin/herd" data import fashion-mnist --out "$data" >&2 ||
    { echo "run.sh: no data file $data" >&2; exit 2; }
fi
if [ "$quick" = 1 ]; then
  kills=${kills:-3} out_dir=${out_dir:-$build/bench-results-recovery}
  deadline=50  # the herd side's own bound; ctest's TIMEOUT is the outer one
else
  kills=${kills:-10} out_dir=${out_dir:-$root/bench/results}
  deadline=400
fi
mkdir -p "$out_dir"
tmp=$(mktemp -d /tmp/herd-recovery-bench.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
driver=("$py" "$here/recovery.py")
common=(--data "$data" --kills "$kills" --deadline "$deadline")
[ -n "$seed" ] && common+=(--seed "$seed")

echo "== herd side: $kills kills"
herd_rc=0
# Each kill costs herd run one restart (the newcomer): --max-restarts 10
# covers 10 kills; torchrun's 12 leave two for failures of its own.
herd_restarts=$(( kills > 10 ? kills : 10 )) torch_restarts=$(( kills + 2 > 12 ? kills + 2 : 12 ))
"${driver[@]}" herd --bin "$build/bin" "${common[@]}" --max-restarts "$herd_restarts" \
  --out "$tmp/herd.json" || herd_rc=$?

torch_rc=0 skipped=""
have_torch() { "$py" -c 'import torch, h5py' 2>/dev/null; }
if [ "$quick" = 1 ]; then
  if have_torch; then skipped="quick mode: herd side only (python3-torch is installed; run without --quick for the torchrun peer)"
  else skipped="quick mode: herd side only; python3-torch is not installed (never installed in quick mode; the full run installs it)"; fi
else
  if ! have_torch; then
    echo "== installing python3-torch and python3-h5py (apt-get; large)"
    export DEBIAN_FRONTEND=noninteractive
    timeout 1800 apt-get install -y --no-install-recommends python3-torch python3-h5py \
      > "$tmp/apt.log" 2>&1 ||
      { timeout 600 apt-get update > /dev/null 2>&1 &&
        timeout 1800 apt-get install -y --no-install-recommends python3-torch python3-h5py \
          > "$tmp/apt.log" 2>&1; } || tail -5 "$tmp/apt.log" >&2
  fi
  if have_torch; then
    echo "== torch side: $kills kills"
    "${driver[@]}" torch "${common[@]}" --max-restarts "$torch_restarts" --ckpt-every "$ckpt_every" \
      --out "$tmp/torch.json" || torch_rc=$?
  else
    skipped="python3-torch could not be installed (see apt-get output above)"
    torch_rc=1
  fi
fi
[ -n "$skipped" ] && echo "== torch side skipped: $skipped"

report=("${driver[@]}" report --herd "$tmp/herd.json" --json "$out_dir/recovery.json"
        --md "$out_dir/recovery.md" --command "$command" --torch-skipped "$skipped")
[ -f "$tmp/torch.json" ] && report+=(--torch "$tmp/torch.json")
"${report[@]}" || { echo "run.sh: report failed" >&2; exit 1; }
echo "== wrote $out_dir/recovery.json and $out_dir/recovery.md"
[ "$herd_rc" = 0 ] && [ "$torch_rc" = 0 ] || { echo "run.sh: a side failed (herd $herd_rc, torch $torch_rc)" >&2; exit 1; }
