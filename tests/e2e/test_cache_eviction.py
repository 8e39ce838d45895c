"""Block managers with a small memory limit: MEMORY_ONLY partitions are
evicted and recomputed, MEMORY_AND_DISK ones spill and are read back from
disk; results stay correct either way."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from conftest import Gateway, start_sc, wait_until
from ember import SparkContext
from ember.storagelevel import StorageLevel
from test_cache import computations, tracked

LIMIT = 2 << 20        # bytes of memory per block manager


@pytest.fixture(scope="module")
def sc(request: pytest.FixtureRequest):
    yield start_sc(request, "e2e-cache-eviction", EMBER_BLOCKD_MEMORY=str(LIMIT))


def blob_rdd(sc: SparkContext, marks: Path):
    # 12 partitions of about 1 MiB each: three times the cluster's memory.
    return (sc.parallelize(range(12), 12).mapPartitionsWithIndex(tracked(marks))
              .map(lambda i: (i, os.urandom(1 << 20))))


def totals(gw: Gateway) -> dict:
    managers = gw.api("/blockmanagers")
    return {key: sum(b[key] for b in managers) for key in ("evictions", "diskUsed", "memoryUsed")}


def test_memory_only_partitions_are_evicted_and_recomputed(sc: SparkContext,
                                                           tmp_path: Path) -> None:
    gw = Gateway.of(sc)
    rdd = blob_rdd(sc, tmp_path).map(lambda kv: (kv[0], len(kv[1]))).persist(
        StorageLevel.MEMORY_ONLY)
    assert sorted(rdd.collect()) == [(i, 1 << 20) for i in range(12)]
    # Small cached values: all fit. Now cache the blobs themselves.
    blobs = blob_rdd(sc, tmp_path).persist(StorageLevel.MEMORY_ONLY)
    first = computations(tmp_path)
    assert blobs.map(lambda kv: len(kv[1])).sum() == 12 << 20
    assert wait_until(lambda: totals(gw)["evictions"] > 0, timeout=5), totals(gw)
    assert blobs.map(lambda kv: kv[0]).collect() == list(range(12))
    assert computations(tmp_path) > first + 12, "evicted partitions should have been recomputed"
    blobs.unpersist()


def test_memory_and_disk_partitions_spill_and_are_reused(sc: SparkContext, tmp_path: Path) -> None:
    gw = Gateway.of(sc)
    blobs = blob_rdd(sc, tmp_path).persist(StorageLevel.MEMORY_AND_DISK)
    assert blobs.map(lambda kv: len(kv[1])).sum() == 12 << 20
    assert computations(tmp_path) == 12
    assert wait_until(lambda: totals(gw)["diskUsed"] > 0, timeout=5), totals(gw)
    assert blobs.map(lambda kv: kv[0]).collect() == list(range(12))
    assert computations(tmp_path) == 12, "spilled partitions must be read back, not recomputed"
    assert totals(gw)["memoryUsed"] <= 2 * LIMIT
    blobs.unpersist()
