# Drives CMake. `make demo` and `make test` install missing Debian packages first.
BUILD_DIR ?= build
PYTHON := /usr/bin/python3
JOBS ?= $(shell nproc)

.PHONY: all build deps demo stop test test-c test-py test-compose bench clean

all: build

deps:
	deploy/install-deps.sh

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

# Benchmarks are run by hand: the machines are shared and noisy.
bench: build
	$(PYTHON) bench/pagerank_cache.py
	$(PYTHON) bench/kmeans_mllib.py

clean:
	rm -rf $(BUILD_DIR)
