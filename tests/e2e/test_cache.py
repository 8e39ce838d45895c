"""Persistence: cached partitions are reused by later jobs, read where they
live, and dropped by unpersist. Losing them: test_cache_faults.py."""

from __future__ import annotations

import os
import uuid
from pathlib import Path


from conftest import Gateway
from ember import SparkContext
from ember.storagelevel import StorageLevel

def tracked(marks: Path):
    """A partition function that leaves one file per computation of a partition."""
    folder = str(marks)

    def mark(split, iterator):
        open(os.path.join(folder, f"p{split}-{uuid.uuid4().hex}"), "w").close()
        return iterator
    return mark


def computations(marks: Path) -> int:
    return len(list(marks.iterdir()))


def storage(gw: Gateway, sc: SparkContext) -> list[dict]:
    return gw.api(f"/applications/{sc.applicationId}/storage/rdd")


def test_second_action_runs_no_task_of_parent_stages(sc: SparkContext, gateway: Gateway,
                                                      tmp_path: Path) -> None:
    words = sc.parallelize(["a b c a"] * 500, 4).mapPartitionsWithIndex(tracked(tmp_path))
    counts = words.flatMap(str.split).map(lambda w: (w, 1)).reduceByKey(lambda a, b: a + b, 2)
    cached = counts.mapValues(lambda v: v * 10).cache()
    assert cached.is_cached and cached.getStorageLevel() == StorageLevel.MEMORY_ONLY
    assert sorted(cached.collect()) == [("a", 10000), ("b", 5000), ("c", 5000)]
    assert computations(tmp_path) == 4

    assert cached.count() == 3
    job = max(gateway.api(f"/applications/{sc.applicationId}/jobs"), key=lambda j: j["jobId"])
    assert job["description"].startswith("count at test_cache.py:")
    assert job["numStages"] == 1 and job["numTasks"] == 2, job
    assert computations(tmp_path) == 4, "the map side ran again"
    [entry] = [r for r in storage(gateway, sc) if r["id"] == cached.id]
    assert entry["numCachedPartitions"] == 2 and entry["memoryUsed"] > 0


def test_tasks_run_where_their_cached_partitions_are(sc: SparkContext, gateway: Gateway) -> None:
    rdd = sc.parallelize(range(4000), 8).map(lambda x: x % 97).cache()
    assert rdd.sum() == sum(x % 97 for x in range(4000))
    where = {p["index"]: p["blockManagers"][0]
             for r in storage(gateway, sc) if r["id"] == rdd.id for p in r["partitions"]}
    assert len(where) == 8
    assert rdd.map(lambda x: x + 1).sum() == sum(x % 97 + 1 for x in range(4000))
    block_manager_of = {e["id"]: e["blockManager"] for e in gateway.api("/executors")}
    job = max(gateway.api(f"/applications/{sc.applicationId}/jobs"), key=lambda j: j["jobId"])
    [stage_id] = job["stageIds"]
    tasks = gateway.api(f"/applications/{sc.applicationId}/stages/{stage_id}")["tasks"]
    assert len(tasks) == 8
    for task in tasks:
        assert block_manager_of[task["executorId"]] == where[task["index"]], task


def test_unpersist_drops_the_blocks(sc: SparkContext, gateway: Gateway, tmp_path: Path) -> None:
    rdd = sc.parallelize(range(100), 2).mapPartitionsWithIndex(tracked(tmp_path)).cache()
    assert rdd.count() == 100 and rdd.count() == 100
    assert computations(tmp_path) == 2
    rdd.unpersist()
    assert not rdd.is_cached
    assert all(r["id"] != rdd.id for r in storage(gateway, sc))
    assert rdd.count() == 100
    assert computations(tmp_path) == 4


def test_unpersist_right_after_jobs_reaches_the_right_method(sc: SparkContext) -> None:
    """Regression: method paths built in stack buffers were passed to gRPC as
    static slices, and some calls reached another method ('cannot parse request')."""
    base = sc.parallelize(range(2000), 4).cache()
    for _ in range(12):
        counted = base.mapPartitions(lambda it: [sum(1 for _ in it)]).persist(
            StorageLevel.MEMORY_AND_DISK)
        assert counted.sum() == 2000
        counted.unpersist()
    base.unpersist()
