#!/usr/bin/env bash
# Checkpoint acceptance tests (ctest label `fault`), black box: real
# herd run + herd-train, real HDF5 files. Usage: ckpt_tests.sh BIN DATA CASE
# Cases: kill9 corrupt enospc h5py resume_equiv reshard. Every wait is
# bounded; each case removes its temp dir. Exit 77 = skipped.
set -euo pipefail
bin=$1 data=$2 case=$3
export PATH="$bin:$PATH"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
py=/usr/bin/python3
tmp=$(mktemp -d /tmp/herd-fault.XXXXXX)
cleanup() { mountpoint -q "$tmp/small" 2>/dev/null && umount "$tmp/small"; rm -rf "$tmp"; }
trap cleanup EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }
json() { "$py" -c 'import json,sys; j=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"; }
# train RUN_DIR NPROC ARGS...: one bounded herd run, output in $tmp/out.
train() {
  local dir=$1 n=$2; shift 2
  timeout 240 herd run -n "$n" --run-dir "$dir" -- herd-train --data "$data" "$@" \
    > "$tmp/out" 2>&1 || { cat "$tmp/out"; fail "herd run -n $n $*"; }
}

kill9() { ckpt_fault kill "$tmp/ckpt" 400; }
corrupt() { ckpt_fault corrupt "$tmp/ckpt" "$bin/herd" 1000; }

# A checkpoint dir on a 4 MiB tmpfs: the first save (~2.8 MB) fits, the next
# ones do not. They must fail with ENOSPC while training goes on, and the
# first checkpoint must stay intact and be what a resume picks.
enospc() {
  mkdir "$tmp/small"
  mount -t tmpfs -o size=4m tmpfs "$tmp/small" 2>/dev/null \
    || { echo "SKIP: cannot mount a tmpfs here (needs root)"; exit 77; }
  train "$tmp/run" 1 --ckpt-dir "$tmp/small" --ckpt-every 10 --max-steps 35
  grep -q "checkpoint at step 20 failed (HERD_ENOSPC).*No space left" "$tmp/out" || { cat "$tmp/out"; fail "no ENOSPC report"; }
  check_small 35
  train "$tmp/run" 1 --ckpt-dir "$tmp/small" --max-steps 36
  [ "$(json "$tmp/run/summary.json" 'j["resumed_from_step"]')" = 10 ] || fail "resume did not use step 10"
}
check_small() {
  [ "$(json "$tmp/run/summary.json" 'j["final_step"]')" = "$1" ] || fail "training did not go on"
  herd ckpt verify "$tmp/small/ckpt-0000000010.h5" >/dev/null || fail "previous checkpoint damaged"
  ls "$tmp/small" | grep -q '\.tmp$' && fail "temp file left behind"
  [ "$(ls "$tmp/small" | grep -c '^ckpt-')" = 1 ] || fail "unexpected files: $(ls "$tmp/small")"
}

# h5py reads the parameters of herd's checkpoint; they equal herd-train's.
h5py() {
  train "$tmp/run" 2 --max-steps 30 --dump-params "$tmp/params.f32"
  "$py" - "$tmp/run/ckpt/ckpt-0000000030.h5" "$tmp/params.f32" <<'PY'
import sys, h5py, numpy as np
f = h5py.File(sys.argv[1], "r")
held = np.fromfile(sys.argv[2], dtype="<f4")
params = f["params"][:]
assert params.dtype == np.float32 and params.shape == held.shape, (params.shape, held.shape)
assert (params.view(np.uint32) == held.view(np.uint32)).all(), "params differ"
a = f.attrs
assert a["format_version"] == 2 and a["step"] == 30 and a["world_size"] == 2, dict(a)
assert a["virtual_shards"] == 16
assert {"exp_avg", "exp_avg_sq", "optim/step"} <= {n.decode() for n in a["tensor_names"]}
assert f["optim/step"][0] == 30
print("h5py ok:", params.size, "params")
PY
}

# Stopped at step 20 and resumed == uninterrupted, bit for bit (params and
# optimizer state), at the same world size.
resume_equiv() {
  train "$tmp/a" 2 --max-steps 50 --dump-params "$tmp/a.f32"
  train "$tmp/b" 2 --max-steps 20
  train "$tmp/b" 2 --max-steps 50 --dump-params "$tmp/b.f32"
  [ "$(json "$tmp/b/summary.json" 'j["resumed_from_step"]')" = 20 ] || fail "b did not resume from 20"
  cmp "$tmp/a.f32" "$tmp/b.f32" || fail "parameters differ after resume"
  "$py" - "$tmp/a/ckpt/ckpt-0000000050.h5" "$tmp/b/ckpt/ckpt-0000000050.h5" <<'PY'
import sys, h5py, numpy as np
a, b = (h5py.File(p, "r") for p in sys.argv[1:3])
for name in ("params", "exp_avg", "exp_avg_sq", "optim/step"):
    assert np.array_equal(a[name][:].view(np.uint8), b[name][:].view(np.uint8)), name
for k in ("step", "epoch", "step_in_epoch", "rng_state"):
    assert np.array_equal(a.attrs[k], b.attrs[k]), k
print("resume equivalence ok")
PY
}

# Saved at world size 2, resumed at 1 and at 4.
reshard() {
  train "$tmp/run" 2 --max-steps 20
  train "$tmp/run" 1 --max-steps 30
  grep -q "resharding: saved at world size 2, resuming at 1" "$tmp/out" || fail "no reshard 2->1"
  [ "$(json "$tmp/run/summary.json" 'j["resumed_from_step"]')" = 20 ] || fail "-n 1 did not resume"
  [ "$(json "$tmp/run/summary.json" 'j["final_step"]')" = 30 ] || fail "-n 1 final_step"
  train "$tmp/run" 4 --max-steps 40
  grep -q "resharding: saved at world size 1, resuming at 4" "$tmp/out" || fail "no reshard 1->4"
  [ "$(json "$tmp/run/summary.json" 'j["resumed_from_step"]')" = 30 ] || fail "-n 4 did not resume"
  [ "$(json "$tmp/run/summary.json" 'j["world_size"]')" = 4 ] || fail "-n 4 world_size"
  [ "$(json "$tmp/run/summary.json" 'j["test_accuracy"] > 0.6')" = True ] || fail "accuracy after reshards"
}

"$case"
echo "PASS: $case"
