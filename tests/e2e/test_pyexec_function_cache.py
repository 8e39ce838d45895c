"""The pyexec's cache of unpickled task functions (ember.function_cache): held
against unpickling per task on a real cluster, and seen working on a real
ember-pyexec driven over its pipes."""

from __future__ import annotations

import json
import pickle
import struct
import subprocess
import threading
import time
from typing import Any, Callable

import cloudpickle

from conftest import BIN_DIR
from ember import SparkContext

OFF = "spark.ember.pyexec.functionCache"
PARTITIONS = 12      # over two one-core workers: several tasks share each pyexec


def per_task(sc: SparkContext, func: Callable[[int], Any], cache: bool = True) -> list[Any]:
    """func's result for each of PARTITIONS one-record tasks."""
    sc.setLocalProperty(OFF, None if cache else "false")
    try:
        return sc.parallelize(range(PARTITIONS), PARTITIONS).map(func).collect()
    finally:
        sc.setLocalProperty(OFF, None)


def _hits_probe() -> Callable[[Any], int]:
    def cache_hits(_: Any) -> int:
        """In a task: how many of its functions the pyexec took from its cache."""
        from ember import worker_runtime
        return worker_runtime._functions.hits
    return cache_hits


cache_hits = _hits_probe()     # made in a function: pickled by value, as tasks' closures are


def test_closures_with_state_see_a_fresh_copy_in_every_task(sc: SparkContext) -> None:
    seen: list[int] = []
    count = 0
    table: dict[int, int] = {}

    def appends(x: int) -> tuple[int, int]:
        seen.append(x)
        return len(seen), cache_hits(x)

    def bumps(x: int) -> tuple[int, int]:
        nonlocal count
        count += 1
        return count, cache_hits(x)

    def fills(x: int, acc: list = []) -> tuple[int, int]:    # noqa: B006 - the point
        acc.append(x)
        table[x] = len(acc)
        return len(table), cache_hits(x)

    for func in (appends, bumps, fills):
        for _ in range(2):                       # the second job ships the same bytes
            assert per_task(sc, func) == [(1, 0)] * PARTITIONS
        assert per_task(sc, func, cache=False) == [(1, 0)] * PARTITIONS
    assert (seen, count, table) == ([], 0, {})


def test_stateless_functions_are_reused_and_give_the_same_results(sc: SparkContext) -> None:
    offset, words = 7, ("a", "b")

    def stateless(x: int) -> tuple[int, str, int]:
        return x + offset, words[x % 2], cache_hits(x)

    uncached = per_task(sc, stateless, cache=False)
    assert [r[2] for r in uncached] == [0] * PARTITIONS
    for _ in range(6):       # kept once a pyexec has seen it twice: soon every task takes it
        cached = per_task(sc, stateless)
        assert [r[:2] for r in cached] == [r[:2] for r in uncached]
        if [r[2] for r in cached] == [1] * PARTITIONS:
            break
    else:
        raise AssertionError(f"the function was not reused in every task: {cached}")


def test_accumulators_in_closures_count_every_task(sc: SparkContext) -> None:
    acc = sc.accumulator(0)

    def add(x: int) -> int:
        acc.add(x)
        return cache_hits(x)

    for job in range(1, 4):
        assert per_task(sc, add) == [0] * PARTITIONS     # never kept: it holds an accumulator
        assert acc.value == job * sum(range(PARTITIONS))


def test_broadcasts_in_kept_functions(sc: SparkContext) -> None:
    first, second = sc.broadcast({"k": 1}), sc.broadcast({"k": 2})

    def reader(handle: Any) -> Callable[[int], tuple[int, int]]:
        return lambda x: (handle.value["k"] + x, cache_hits(x))

    for _ in range(2):
        one, two = per_task(sc, reader(first)), per_task(sc, reader(second))
        assert [r[0] for r in one] == [1 + x for x in range(PARTITIONS)]
        assert [r[0] for r in two] == [2 + x for x in range(PARTITIONS)]
    assert max(r[1] for r in one) == 1
    first.unpersist()                            # fetched again: the kept handle still reads it
    assert [r[0] for r in per_task(sc, reader(first))] == [1 + x for x in range(PARTITIONS)]


def test_shuffle_functions_are_kept_across_jobs(sc: SparkContext) -> None:
    pairs = [(i % 5, i) for i in range(100)]
    want = sorted((k, sum(v for kk, v in pairs if kk == k)) for k in range(5))
    for _ in range(3):
        got = sc.parallelize(pairs, 4).reduceByKey(lambda a, b: a + b, 3).collect()
        assert sorted(got) == want


# ---- one ember-pyexec over its pipes ------------------------------------------------

def frame(payload: bytes) -> bytes:
    return struct.pack(">i", len(payload)) + payload


END = struct.pack(">i", -1)


def task(func: bytes, records: list[Any], task_id: int, app: str = "app-1") -> bytes:
    header = {"taskId": task_id, "stageId": 1, "partition": 0, "attempt": 0, "jobId": 1,
              "appId": app, "plan": {"input": "pickle", "funcs": [0], "cacheAt": []},
              "numInputs": 1, "numFuncs": 1, "numReduce": 0, "properties": {}}
    return (frame(json.dumps(header).encode()) + frame(func) + frame(pickle.dumps(records, 5))
            + END)


def read_task_output(out: Any) -> tuple[list[Any], dict]:
    records: list[Any] = []
    while True:
        (length,) = struct.unpack(">i", out.read(4))
        if length == -2:
            (n,) = struct.unpack(">i", out.read(4))
            raise AssertionError(out.read(n).decode())
        if length == -1:
            (n,) = struct.unpack(">i", out.read(4))
            return records, json.loads(out.read(n))
        records.extend(pickle.loads(out.read(length)))


def map_records(func: Callable[[Any], Any]) -> bytes:
    return cloudpickle.dumps(lambda split, it: map(func, it), 5)


def test_pyexec_reports_kept_functions_and_reads_frames_split_anyhow() -> None:
    proc = subprocess.Popen([str(BIN_DIR / "ember-pyexec")], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE)
    seen: list[int] = []
    stateless = map_records(lambda x: x * 2)
    stateful = map_records(lambda x: seen.append(x) or len(seen))
    big = list(range(30_000))                    # frames larger than the read buffer
    tasks = [(stateless, [1, 2], [2, 4], 0), (stateless, [3], [6], 0),    # kept now
             (stateful, [1, 2], [1, 2], 0), (stateful, [5], [1], 0), (stateful, [6], [1], 0),
             (stateless, big, [2 * x for x in big], 1), (stateless, [7], [14], 1),
             (stateless, [4], [8], 0)]           # another application: forgotten
    stream = b"".join(task(func, records, i, "app-2" if i == len(tasks) - 1 else "app-1")
                      for i, (func, records, _, _) in enumerate(tasks))

    def feed() -> None:                          # odd-sized writes split lengths and payloads
        for at in range(0, len(stream), 7_001):
            proc.stdin.write(stream[at:at + 7_001])
            proc.stdin.flush()
            time.sleep(0.001)
        proc.stdin.close()

    feeder = threading.Thread(target=feed)
    feeder.start()
    try:
        for func, records, want, hits in tasks:
            got, metrics = read_task_output(proc.stdout)
            assert got == want
            assert metrics["functionCacheHits"] == hits
            assert metrics["recordsIn"] == len(records)
    finally:
        feeder.join()
        assert proc.wait(timeout=30) == 0        # a clean end of input ends the process
