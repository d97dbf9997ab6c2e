#!/usr/bin/env bash
# Acceptance for the main job: the default training (seed 42, global batch
# 128, 15 epochs) on 1, 2 and 4 workers reaches >= 0.88 test accuracy each,
# and the three final accuracies lie within 0.5 percentage points.
# Usage: world_sizes.sh BIN_DIR DATA_FILE
set -euo pipefail
bin=$1 data=$2
export PATH="$bin:$PATH" OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
tmp=$(mktemp -d /tmp/herd-sizes.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
for n in 1 2 4; do
  timeout 600 herd run -n $n --run-dir "$tmp/n$n" --progress-interval 30 \
    -- herd-train --data "$data" > "$tmp/out$n" 2>&1 || { cat "$tmp/out$n"; exit 1; }
done
/usr/bin/python3 - "$tmp" <<'PY'
import json, sys
acc = {n: json.load(open(f"{sys.argv[1]}/n{n}/summary.json"))["test_accuracy"] for n in (1, 2, 4)}
print("test accuracy by world size:", acc)
assert all(a >= 0.88 for a in acc.values()), "below the 0.88 baseline"
spread = max(acc.values()) - min(acc.values())
print(f"spread {100 * spread:.3f} percentage points")
assert spread <= 0.005, "world sizes disagree by more than 0.5 points"
PY
