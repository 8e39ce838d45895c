"""Checkpoints: after the next action the RDD reads its files and its lineage
is cut there; the files are readable from a fresh context."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from conftest import Gateway
from ember import SparkContext
from ember.errors import EmberError
from test_cache import computations, tracked


def test_checkpoint_needs_a_directory(sc: SparkContext) -> None:
    if sc.getCheckpointDir() is None:
        with pytest.raises(EmberError, match="setCheckpointDir"):
            sc.parallelize([1]).checkpoint()


def test_checkpoint_cuts_the_lineage(sc: SparkContext, tmp_path: Path) -> None:
    sc.setCheckpointDir(str(tmp_path / "checkpoints"))
    marks = tmp_path / "marks"
    marks.mkdir()
    pairs = sc.parallelize(range(1000), 4).mapPartitionsWithIndex(tracked(marks))
    sums = pairs.map(lambda x: (x % 10, x)).reduceByKey(lambda a, b: a + b, 3)
    sums = sums.mapValues(lambda v: v + 1)
    sums.checkpoint()
    assert not sums.isCheckpointed()
    expected = sorted((k, sum(x for x in range(1000) if x % 10 == k) + 1) for k in range(10))
    assert sorted(sums.collect()) == expected
    assert sums.isCheckpointed()
    folder = sums.getCheckpointFile()
    assert sorted(os.listdir(folder)) == ["part-00000", "part-00001", "part-00002"]
    before = computations(marks)

    assert sorted(sums.map(lambda kv: kv).collect()) == expected
    assert computations(marks) == before, "the lineage above the checkpoint ran again"
    gw = Gateway.of(sc)
    job = max(gw.api(f"/applications/{sc.applicationId}/jobs"), key=lambda j: j["jobId"])
    assert job["numStages"] == 1 and job["numTasks"] == 3, job


def test_checkpoint_files_survive_a_new_context(sc: SparkContext, tmp_path: Path) -> None:
    sc.setCheckpointDir(str(tmp_path))
    rdd = sc.parallelize([("x", [1, None]), ("y", {"z": 2.5})], 2).map(lambda kv: kv)
    rdd.checkpoint()
    assert rdd.count() == 2
    folder = rdd.getCheckpointFile()
    sc.stop()
    fresh = SparkContext("local[2]", "e2e-checkpoint-reader")
    try:
        again = fresh._checkpointFile(folder)
        assert again.getNumPartitions() == 2
        assert again.collect() == [("x", [1, None]), ("y", {"z": 2.5})]
    finally:
        fresh.stop()
