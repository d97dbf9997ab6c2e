#!/usr/bin/env bash
# Builds the libFuzzer targets with clang into build-fuzz (everything they
# link instrumented with ASan + UBSan + fuzzer coverage), writes the seed
# corpus of valid messages, and runs each target for FUZZ_SECONDS (default
# 30) from it and from tests/fuzz/regress/<target>/ (inputs that once
# crashed: commit a new reproducer there with its fix). Any crash, leak or
# sanitizer report fails the script; the reproducer is left in
# build-fuzz/artifacts/. `make fuzz` and `make test`
# call this.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${BUILD_FUZZ:-build-fuzz}
SECONDS_EACH=${FUZZ_SECONDS:-30}
JOBS=${JOBS:-2}
CC_BIN=${FUZZ_CC:-clang}
CXX_BIN=${FUZZ_CXX:-clang++}
# FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION: the dataset loader's size caps
# shrink below the fuzzer's 2 GiB allocation limit (worker/data.c).
SAN="-fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer -DFUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION"

cmake -S . -B "$BUILD" -DHERD_FUZZ=ON -DHERD_CUDA=OFF \
  -DCMAKE_C_COMPILER="$CC_BIN" -DCMAKE_CXX_COMPILER="$CXX_BIN" \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_FLAGS="$SAN" >/dev/null
cmake --build "$BUILD" -j"$JOBS" --target fuzz_codec fuzz_coord fuzz_ckpt fuzz_data fuzz_seeds

corpus="$BUILD/corpus"
rm -rf "$corpus"
mkdir -p "$corpus/codec" "$corpus/coord" "$corpus/ckpt" "$corpus/data" "$BUILD/artifacts"
"$BUILD/bin/fuzz_seeds" "$corpus"

# The file targets write their inputs under TMPDIR.
export TMPDIR="$PWD/$BUILD/tmp"
rm -rf "$TMPDIR" && mkdir -p "$TMPDIR"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export LSAN_OPTIONS=suppressions=$PWD/tests/fuzz/lsan.supp
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
# libhdf5 sizes some allocations from the file (H5C_protect: 578 PB for a
# damaged header) and handles a NULL from malloc; so, as a production
# malloc under a memory limit would, the allocator returns NULL above 2 GiB
# instead of ASan ending the run (libFuzzer's own cap is set above it).
file_options=allocator_may_return_null=1:max_allocation_size_mb=2048
for target in codec coord ckpt data; do
  asan=$ASAN_OPTIONS
  case $target in ckpt | data) asan=$ASAN_OPTIONS:$file_options ;; esac
  work="$BUILD/work-$target"
  mkdir -p "$work"
  echo "fuzz: fuzz_$target for ${SECONDS_EACH}s"
  ASAN_OPTIONS=$asan "$BUILD/bin/fuzz_$target" -max_total_time="$SECONDS_EACH" \
    -max_len=70000 -rss_limit_mb=3072 -malloc_limit_mb=4096 -timeout=10 -print_final_stats=1 \
    -artifact_prefix="$BUILD/artifacts/$target-" "$work" "$corpus/$target" \
    "tests/fuzz/regress/$target" \
    2>"$BUILD/fuzz_$target.log" || {
      tail -50 "$BUILD/fuzz_$target.log"
      echo "fuzz: fuzz_$target FAILED (reproducer in $BUILD/artifacts/)" >&2
      exit 1
    }
  grep -E "stat::number_of_executed_units|stat::peak_rss_mb" \
    "$BUILD/fuzz_$target.log" | sed "s/^/fuzz_$target: /"
done
echo "fuzz: no crash, leak or sanitizer report"
