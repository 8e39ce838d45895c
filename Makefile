# Drives CMake. `make demo` and `make test` install missing Debian packages first.
BUILD_DIR ?= build
PYTHON := /usr/bin/python3
JOBS ?= $(shell nproc)

.PHONY: all build deps bench-deps demo stop test test-c test-py test-compose bench bench-suite clean \
	test-asan asan-build fuzz fuzz-build test-fuzz test-leaks

all: build

deps:
	deploy/install-deps.sh

bench-deps:
	deploy/install-deps.sh --bench

build:
	cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build $(BUILD_DIR) -j $(JOBS)

demo: deps build
	deploy/demo.sh

stop:
	deploy/cluster.sh stop

test: deps build test-c test-py test-fuzz

test-c:
	ctest --test-dir $(BUILD_DIR) --output-on-failure

test-py:
	EMBER_BIN_DIR=$(CURDIR)/$(BUILD_DIR)/bin $(PYTHON) -m pytest -q tests python-client/tests

# deploy/docker-compose.yml with a real Docker engine (as root; installs docker.io and
# docker-compose, starts dockerd when none answers): see deploy/test-compose.sh.
test-compose: deps build
	deploy/test-compose.sh

# Every test again with the daemons built under AddressSanitizer and
# UndefinedBehaviorSanitizer (undefined behaviour aborts), the C tests with
# LeakSanitizer too; in the end-to-end runs the embedded interpreter's own
# allocations at exit would drown the daemons' reports (see test-leaks).
ASAN_DIR ?= build-asan
asan-build: deps
	cmake -S . -B $(ASAN_DIR) -DEMBER_SANITIZE=address,undefined -DCMAKE_BUILD_TYPE=Debug >/dev/null
	cmake --build $(ASAN_DIR) -j $(JOBS)

test-asan: asan-build
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  ctest --test-dir $(ASAN_DIR) --output-on-failure
	ASAN_OPTIONS=detect_leaks=0:handle_segv=0 UBSAN_OPTIONS=print_stacktrace=1 EMBER_SANITIZED=1 \
	  EMBER_BIN_DIR=$(CURDIR)/$(ASAN_DIR)/bin $(PYTHON) -m pytest -q tests python-client/tests

# The daemons' steady state: 100 jobs through a cluster built with ASan, then
# SIGTERM; fails on any LeakSanitizer report of a daemon (tests/leaks/).
test-leaks: asan-build
	EMBER_BIN_DIR=$(CURDIR)/$(ASAN_DIR)/bin $(PYTHON) tests/leaks/steady_state.py

# libFuzzer targets (tests/fuzz): a clang build with ASan and UBSan. `make
# fuzz` runs each for FUZZ_SECONDS (FUZZERS="fuzz_gateway fuzz_master" picks
# some); `make test` runs each briefly from the committed seeds (tests/fuzz/corpus).
FUZZ_DIR ?= build-fuzz
FUZZ_SECONDS ?= 300
FUZZ_TEST_SECONDS ?= 12
fuzz-build: deps
	CC=clang cmake -S . -B $(FUZZ_DIR) -DEMBER_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build $(FUZZ_DIR) -j $(JOBS)

fuzz: fuzz-build
	tests/fuzz/run.sh $(FUZZ_DIR) $(FUZZ_SECONDS) $(FUZZERS)

test-fuzz: fuzz-build
	tests/fuzz/run.sh $(FUZZ_DIR) $(FUZZ_TEST_SECONDS)

# Benchmarks are run by hand: the machines are shared and noisy.
bench: build
	$(PYTHON) bench/pagerank_cache.py
	$(PYTHON) bench/kmeans_mllib.py

# The issue #10 suite: Ember vs Dask distributed vs one-process Python, results checked
# against each other, report under bench/results/. SIZE=small (a few minutes) or full (the
# issue's sizes); WORKLOADS / SYSTEMS select (comma-separated, default all); BENCH_ARGS passes
# more options, e.g. BENCH_ARGS="--reuse-peers bench/results/X.json --repeat 3".
SIZE ?= small
WORKLOADS ?= all
SYSTEMS ?= all
BENCH_ARGS ?=
bench-suite: bench-deps build
	$(PYTHON) bench/bench_suite.py --size $(SIZE) --workloads $(WORKLOADS) --systems $(SYSTEMS) $(BENCH_ARGS)

clean:
	rm -rf $(BUILD_DIR)
