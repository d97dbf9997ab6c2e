# Thin wrapper over CMake. The README's two commands:
#   make demo   install what is missing, build, train Fashion-MNIST on 4 workers
#   make test   install what is missing, build, run the whole test suite
#               (and the unit + integration tests again under ASan + UBSan)
BUILD      ?= build
BUILD_ASAN ?= build-asan
JOBS       ?= $(shell nproc)
DATA       ?= data/fashion-mnist.h5
NPROC      ?= 4
RUN_DIR    ?= runs/demo
CMAKE_ARGS ?=
# Root in containers: allow Open MPI to run (herd run does this too).
export OMPI_ALLOW_RUN_AS_ROOT = 1
export OMPI_ALLOW_RUN_AS_ROOT_CONFIRM = 1

.PHONY: all deps build demo data test test-asan fuzz clean

all: build

deps:
	@scripts/install-deps.sh

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) $(CMAKE_ARGS)

build: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j$(JOBS)

$(DATA): | build
	$(BUILD)/bin/herd data import fashion-mnist --out $(DATA)

data: build $(DATA)

demo: build $(DATA)
	PATH="$(CURDIR)/$(BUILD)/bin:$$PATH" herd run -n $(NPROC) --run-dir $(RUN_DIR) \
	  -- herd-train --data $(DATA)

# Each ctest run ends with a table of passed/failed/skipped per label and
# every skip's reason (tests/ci_summary.py); ctest's status is the verdict.
CTEST_SUMMARY = ; rc=$$?; /usr/bin/python3 $(CURDIR)/tests/ci_summary.py junit.xml .; exit $$rc

test: build
	cd $(BUILD) && ctest --output-on-failure --timeout 900 --output-junit junit.xml $(CTEST_SUMMARY)
	$(MAKE) test-asan
	$(MAKE) fuzz

# Unit and integration tests under AddressSanitizer + UBSan.
test-asan: deps
	cmake -S . -B $(BUILD_ASAN) -DHERD_SANITIZE=ON -DHERD_CUDA=OFF $(CMAKE_ARGS)
	cmake --build $(BUILD_ASAN) -j$(JOBS)
	cd $(BUILD_ASAN) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp:fast_unwind_on_malloc=0 \
	  OMPI_MCA_mca_base_component_disable_dlclose=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --output-on-failure -L 'unit|integration' --timeout 900 \
	    --output-junit junit.xml $(CTEST_SUMMARY)

# libFuzzer targets (clang, ASan + UBSan) for the wire decoder and the
# coordinator's message handling, each run FUZZ_SECONDS (30) from a seed
# corpus of valid messages; builds into build-fuzz.
fuzz: deps
	JOBS=$(JOBS) tests/fuzz/run.sh

clean:
	rm -rf $(BUILD) $(BUILD_ASAN) build-fuzz
