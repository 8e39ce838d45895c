"""Broadcast variables and accumulators."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from conftest import Gateway, pyexec_pids
from ember import JobFailedError, SparkContext
from ember.accumulators import AccumulatorParam
from ember.errors import EmberError


def test_broadcast_value_in_tasks(sc: SparkContext) -> None:
    table = sc.broadcast({"a": 1, "b": 2, "c": 3})
    words = sc.parallelize(["a", "b", "c", "a"], 4)
    assert words.map(lambda w: table.value[w]).collect() == [1, 2, 3, 1]
    assert table.value == {"a": 1, "b": 2, "c": 3}


def test_broadcast_of_100_mb_is_unpickled_once_per_process(sc: SparkContext,
                                                           tmp_path: Path) -> None:
    big = sc.broadcast(b"\x07" * (100 << 20))
    marks = str(tmp_path)

    def size_and_mark(i: int) -> int:
        # value is unpickled at most once per process: record which process did it
        from ember import broadcast as bmod
        if big.bid not in bmod._worker_values:
            open(os.path.join(marks, f"load-{os.getpid()}-{i}"), "w").close()
        return len(big.value)

    for _ in range(3):
        assert sc.parallelize(range(6), 6).map(size_and_mark).collect() == [100 << 20] * 6
    loads = [p.name for p in tmp_path.iterdir()]
    processes = {name.split("-")[1] for name in loads}
    assert len(loads) == len(processes), f"a process unpickled the value twice: {loads}"
    assert len(processes) <= sum(len(v) for v in pyexec_pids(sc).values())


def test_unpersisted_broadcast_is_fetched_again_and_destroyed_one_fails(sc: SparkContext) -> None:
    b = sc.broadcast([1, 2, 3])
    assert sc.parallelize([0, 1, 2], 3).map(lambda i: b.value[i]).sum() == 6
    b.unpersist()
    assert sc.parallelize([0, 1, 2], 3).map(lambda i: b.value[i] * 2).sum() == 12
    b.destroy()
    with pytest.raises(Exception, match="destroyed"):
        sc.parallelize([0], 1).map(lambda i: b.value[i]).collect()
    with pytest.raises(EmberError, match="destroyed"):
        _ = b.value


def test_large_closure_travels_as_a_broadcast(sc: SparkContext) -> None:
    lookup = {i: str(i) * 3 for i in range(200_000)}        # several MB pickled
    got = sc.parallelize(range(0, 200_000, 50_000), 4).map(lambda i: lookup[i]).collect()
    assert got == ["000", "500005000050000", "100000100000100000", "150000150000150000"]
    gw = Gateway.of(sc)
    job = max(gw.api(f"/applications/{sc.applicationId}/jobs"), key=lambda j: j["jobId"])
    assert job["status"] == "SUCCEEDED"


def test_accumulator_counts_each_task_once(sc: SparkContext, tmp_path: Path) -> None:
    total = sc.accumulator(0)
    sc.parallelize(range(100), 4).foreach(lambda x: total.add(x))
    assert total.value == sum(range(100))

    # A task that fails on its first attempt after adding: the retry counts once.
    flag = str(tmp_path / "failed-once")
    seen = sc.accumulator(0)

    def count_then_fail_once(it):
        for _ in it:
            seen.add(1)
        if not os.path.exists(flag):
            open(flag, "w").close()
            raise RuntimeError("first attempt fails")
        return []
    sc.parallelize(range(10), 1).mapPartitions(count_then_fail_once).collect()
    assert seen.value == 10


def test_accumulator_with_custom_param_and_inplace_add(sc: SparkContext) -> None:
    class SetParam(AccumulatorParam):
        def zero(self, value):
            return set()

        def addInPlace(self, a, b):
            a |= b if isinstance(b, set) else {b}
            return a

    letters = sc.accumulator(set(), SetParam())
    evens = sc.accumulator(0.0)

    def visit(x):
        letters.add(x[0])
        nonlocal_evens = evens
        if x[1] % 2 == 0:
            nonlocal_evens += 1.5
        return x
    sc.parallelize([("a", 1), ("b", 2), ("a", 4)], 2).map(visit).count()
    assert letters.value == {"a", "b"}
    assert evens.value == 3.0


def test_accumulator_value_is_driver_only(sc: SparkContext) -> None:
    acc = sc.accumulator(0)
    with pytest.raises(JobFailedError, match="cannot be accessed inside tasks"):
        sc.parallelize([1], 1).map(lambda x: acc.value).collect()
