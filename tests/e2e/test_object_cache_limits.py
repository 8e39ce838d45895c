"""The pyexec object cache (test_object_cache.py) against its limits, each
on a cluster of its own: block managers too small to keep a partition, a
worker memory budget smaller than any pyexec, and a worker of two pyexecs
that can keep one partition each."""

from __future__ import annotations

import os
import random

import pytest

from conftest import Gateway, start_sc, wait_until
from ember import SparkContext
from ember.local_cluster import LocalCluster
from test_object_cache import OBJECT_CACHE, served


def test_an_evicted_block_is_recomputed_not_served_from_objects(
        request: pytest.FixtureRequest) -> None:
    # Block managers of 2 MiB: caching 12 MiB of blobs evicts the small partitions.
    small = start_sc(request, "e2e-object-cache-eviction", EMBER_BLOCKD_MEMORY=str(2 << 20))
    gw = Gateway.of(small)
    rdd = small.parallelize(range(200), 2).map(lambda x: (x, random.random())).cache()
    first = rdd.collect()
    assert rdd.collect() == first and served(gw, small) == 2
    blobs = small.parallelize(range(12), 12).map(lambda i: (i, os.urandom(1 << 20))).cache()
    assert blobs.map(lambda kv: len(kv[1])).sum() == 12 << 20

    def cached_partitions() -> int:
        for entry in gw.api(f"/applications/{small.applicationId}/storage/rdd"):
            if entry["id"] == rdd.id():
                return entry["numCachedPartitions"]
        return 0
    # Each block manager got 6 MiB of blobs after its small partition: both go.
    assert wait_until(lambda: cached_partitions() == 0, timeout=10), cached_partitions()
    again = rdd.collect()
    # Computed again (new random values), not taken from the objects the
    # pyexecs kept of the old blocks.
    assert all(v != w for (_, v), (_, w) in zip(first, again))
    assert served(gw, small) == 0
    assert rdd.collect() == again


def test_a_pyexec_over_its_share_of_the_soft_memory_budget_keeps_nothing(
        request: pytest.FixtureRequest) -> None:
    # 2 workers of one pyexec each; 16 MiB is less than any pyexec's resident memory
    # (the pyexec drops its objects after the task; the worker may also recycle it).
    small = start_sc(request, "e2e-object-cache-memory", EMBER_WORKER_PYTHON_MEMORY_SOFT="16m")
    gw = Gateway.of(small)
    rdd = small.parallelize(range(1000), 2).map(lambda x: (x, random.random())).cache()
    expected = rdd.collect()
    for _ in range(2):
        assert rdd.collect() == expected
        assert served(gw, small) == 0


def test_a_worker_with_two_pyexecs_runs_each_task_where_its_partition_is_kept(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Each pyexec can keep one partition only (the budget); the worker must
    pick for each task the pyexec holding its partition, or they would evict
    each other's at every job."""
    monkeypatch.delenv("EMBER_AUTH_SECRET", raising=False)
    cluster = LocalCluster(1, cores_per_worker=2).start()
    try:
        monkeypatch.setenv("EMBER_AUTH_SECRET", cluster.secret)
        with SparkContext(f"ember://{cluster.gateway_address}", "two-pyexecs") as sc:
            gw = Gateway(cluster.gateway_address, cluster.secret)
            sc.setLocalProperty(OBJECT_CACHE, "150k")   # one partition of ~100 KB pickled
            rdd = sc.parallelize([("%06d" % i) * 16 for i in range(2000)], 2).cache()
            expected = rdd.collect()
            hits = []
            for _ in range(6):
                assert rdd.map(len).sum() == 96 * 2000
                hits.append(served(gw, sc))
            assert rdd.collect() == expected
            assert hits == [2] * 6, hits
    finally:
        cluster.stop()
