#!/usr/bin/env bash
# Installs the Debian packages Ember needs to build, run and test, skipping the
# ones already present (--bench: also the benchmark suite's peers). Idempotent;
# needs root only when something is missing.
set -eu

BUILD_PACKAGES="gcc make cmake pkg-config libgrpc-dev protobuf-c-compiler libprotobuf-c-dev
  libmicrohttpd-dev libjansson-dev libpython3-dev libcurl4-openssl-dev"
RUNTIME_PACKAGES="python3 python3-cloudpickle python3-numpy python3-sklearn curl procps"
TEST_PACKAGES="python3-pytest chromium chromium-driver python3-selenium openssl
  clang libclang-rt-14-dev"
# Only with --bench (make bench-suite): the peers the benchmark suite measures Ember against.
BENCH_PACKAGES="python3-dask python3-distributed"

WANTED="$BUILD_PACKAGES $RUNTIME_PACKAGES $TEST_PACKAGES"
case "${1:-}" in
    --bench) WANTED="$WANTED $BENCH_PACKAGES" ;;
    "") ;;
    *) echo "install-deps: unknown option $1 (only --bench)" >&2; exit 2 ;;
esac

missing=""
for pkg in $WANTED; do
    status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
    case "$status" in
        *"install ok installed"*) ;;
        *) missing="$missing $pkg" ;;
    esac
done

if [ -z "$missing" ]; then
    echo "install-deps: all Debian packages present"
    exit 0
fi

if [ "$(id -u)" != 0 ]; then
    echo "install-deps: missing Debian packages:$missing" >&2
    echo "install-deps: run as root (or: sudo apt-get install$missing)" >&2
    exit 1
fi

echo "install-deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null
# shellcheck disable=SC2086  # the list is meant to split into words
apt-get install -y -q --no-install-recommends $missing
