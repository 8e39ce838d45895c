# Drives CMake. `make demo` and `make test` install missing Debian packages first.
BUILD_DIR ?= build
PYTHON := /usr/bin/python3
JOBS ?= $(shell nproc)

.PHONY: all build deps bench-deps demo stop test test-c test-py test-compose bench bench-suite clean test-asan

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

test: deps build test-c test-py

test-c:
	ctest --test-dir $(BUILD_DIR) --output-on-failure

test-py:
	EMBER_BIN_DIR=$(CURDIR)/$(BUILD_DIR)/bin $(PYTHON) -m pytest -q tests python-client/tests

# deploy/docker-compose.yml with a real Docker engine (as root; installs docker.io and
# docker-compose, starts dockerd when none answers): see deploy/test-compose.sh.
test-compose: deps build
	deploy/test-compose.sh

# Every test again with the daemons built under AddressSanitizer (the C tests
# with LeakSanitizer too; in the end-to-end runs the embedded interpreter's
# own allocations at exit would drown the daemons' reports).
ASAN_DIR ?= build-asan
test-asan: deps
	cmake -S . -B $(ASAN_DIR) -DEMBER_SANITIZE=address -DCMAKE_BUILD_TYPE=Debug >/dev/null
	cmake --build $(ASAN_DIR) -j $(JOBS)
	ASAN_OPTIONS=detect_leaks=1 ctest --test-dir $(ASAN_DIR) --output-on-failure
	ASAN_OPTIONS=detect_leaks=0:handle_segv=0 EMBER_SANITIZED=1 \
	  EMBER_BIN_DIR=$(CURDIR)/$(ASAN_DIR)/bin $(PYTHON) -m pytest -q tests python-client/tests

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
