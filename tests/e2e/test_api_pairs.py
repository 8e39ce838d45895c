"""Pair RDD operations, partitioners and lineage metadata, with PySpark's answers.

On local[2], parallelize gives 2 partitions, so a shuffle of one such RDD has 2
reduce partitions and a cogroup/join of two has 4 (PySpark groups their union).
"""

from __future__ import annotations

import random
import re
from operator import add

import pytest

import ember
from conftest import job_stages, last_job
from ember import ResultIterable
from ember.shuffle import Partitioner, portable_hash


def _stages_of_last_job(sc, gateway):
    job = last_job(gateway, sc.applicationId)
    return job, job_stages(gateway, sc.applicationId, job["jobId"])


def test_map_values_and_flat_map_values(sc):
    rdd = sc.parallelize([("a", ["apple", "banana", "lemon"]), ("b", ["grapes"])])
    assert rdd.mapValues(len).collect() == [("a", 3), ("b", 1)]
    rdd2 = sc.parallelize([("a", ["x", "y", "z"]), ("b", ["p", "r"])])
    assert rdd2.flatMapValues(lambda x: x).collect() == \
        [("a", "x"), ("a", "y"), ("a", "z"), ("b", "p"), ("b", "r")]


def test_reduce_fold_aggregate_combine_by_key(sc):
    rdd = sc.parallelize([("a", 1), ("b", 1), ("a", 1)])
    assert sorted(rdd.reduceByKey(add).collect()) == [("a", 2), ("b", 1)]
    assert sorted(rdd.foldByKey(0, add).collect()) == [("a", 2), ("b", 1)]
    rdd3 = sc.parallelize([("a", 1), ("b", 1), ("a", 2)])
    assert sorted(rdd3.aggregateByKey((0, 0), lambda x, y: (x[0] + y, x[1] + 1),
                                      lambda x, y: (x[0] + y[0], x[1] + y[1])).collect()) == \
        [("a", (3, 2)), ("b", (1, 1))]

    def append(a, b):
        a.append(b)
        return a

    def extend(a, b):
        a.extend(b)
        return a
    assert sorted(rdd3.combineByKey(lambda a: [a], append, extend).collect()) == \
        [("a", [1, 2]), ("b", [1])]
    # a mutable zero value is copied for every key
    lists = sc.parallelize([(k % 3, k) for k in range(12)], 3).aggregateByKey(
        [], lambda acc, v: acc + [v], lambda a, b: a + b)
    assert sorted((k, sorted(v)) for k, v in lists.collect()) == \
        [(0, [0, 3, 6, 9]), (1, [1, 4, 7, 10]), (2, [2, 5, 8, 11])]


def test_reduce_by_key_partitions(sc):
    pairs = sc.parallelize([(k % 5, 1) for k in range(50)], 3)
    counts = pairs.reduceByKey(add)
    assert counts.getNumPartitions() == 3                       # the parent's count
    assert counts.glom().map(sorted).collect() == [[(0, 10), (3, 10)], [(1, 10), (4, 10)],
                                                   [(2, 10)]]
    assert pairs.reduceByKey(add, 7).getNumPartitions() == 7
    odd_even = pairs.reduceByKey(add, 2, partitionFunc=lambda k: 0 if k < 2 else 1)
    assert odd_even.glom().map(sorted).collect() == [[(0, 10), (1, 10)],
                                                     [(2, 10), (3, 10), (4, 10)]]


def test_group_by_key_gives_result_iterables(sc):
    rdd = sc.parallelize([("a", 1), ("b", 1), ("a", 1)])
    grouped = rdd.groupByKey()
    assert sorted(grouped.mapValues(len).collect()) == [("a", 2), ("b", 1)]
    assert sorted(grouped.mapValues(list).collect()) == [("a", [1, 1]), ("b", [1])]
    values = dict(grouped.collect())["a"]
    assert isinstance(values, ResultIterable) and len(values) == 2 and list(values) == [1, 1]
    assert grouped.getNumPartitions() == 2
    assert rdd.groupByKey(5).getNumPartitions() == 5


def test_group_by_key_unpacks_records_on_the_map_side_and_keeps_their_order(sc):
    """groupByKey sends (k, v) pairs without a map-side combine: records that are lists,
    strings or other iterables are unpacked as `for k, v in records` would, each key's
    values keep the order of its map partition, and a record that is not a pair fails
    the job with Python's own error."""
    records = [(i % 7, i) for i in range(30_000)] + [[1, "list"], "ab", range(3, 5)]
    grouped = dict(sc.parallelize(records, 1).groupByKey(3).mapValues(list).collect())
    expected: dict = {}
    for k, v in records:
        expected.setdefault(k, []).append(v)
    assert grouped == expected
    assert type(grouped["a"][0]) is str
    many = sc.parallelize([(i, str(i)) for i in range(50_000)], 4).groupByKey(3)
    assert sorted(many.mapValues(tuple).collect()) == [(i, (str(i),)) for i in range(50_000)]
    for bad, error in ((("k", 1, 2), "too many values to unpack"),
                       (5, "cannot unpack non-iterable int object")):
        with pytest.raises(ember.JobFailedError, match=re.escape(error)):
            sc.parallelize([("k", 0)] * 10 + [bad], 2).groupByKey(2).count()


def test_cogroup_and_group_with(sc):
    rdd1 = sc.parallelize([("a", 1), ("b", 4)])
    rdd2 = sc.parallelize([("a", 2)])
    assert [(x, tuple(map(list, y))) for x, y in sorted(rdd1.cogroup(rdd2).collect())] == \
        [("a", ([1], [2])), ("b", ([4], []))]
    w, x = sc.parallelize([("a", 5), ("b", 6)]), sc.parallelize([("a", 1), ("b", 4)])
    y, z = sc.parallelize([("a", 2)]), sc.parallelize([("b", 42)])
    assert [(k, tuple(map(list, v))) for k, v in sorted(list(w.groupWith(x, y, z).collect()))] \
        == [("a", ([5], [1], [2], [])), ("b", ([6], [4], [], [42]))]
    squares = sc.parallelize(range(0, 3)).keyBy(lambda v: v * v)
    identity = sc.parallelize(zip(range(0, 5), range(0, 5)))
    assert [(k, list(map(list, v))) for k, v in sorted(squares.cogroup(identity).collect())] == \
        [(0, [[0], [0]]), (1, [[1], [1]]), (2, [[], [2]]), (3, [[], [3]]), (4, [[2], [4]])]
    assert rdd1.cogroup(rdd2).getNumPartitions() == 4
    assert rdd1.cogroup(rdd2, 3).getNumPartitions() == 3


def test_joins(sc):
    rdd1 = sc.parallelize([("a", 1), ("b", 4)])
    assert sorted(rdd1.join(sc.parallelize([("a", 2), ("a", 3)])).collect()) == \
        [("a", (1, 2)), ("a", (1, 3))]
    assert sorted(rdd1.leftOuterJoin(sc.parallelize([("a", 2)])).collect()) == \
        [("a", (1, 2)), ("b", (4, None))]
    assert sorted(sc.parallelize([("a", 2)]).rightOuterJoin(rdd1).collect()) == \
        [("a", (2, 1)), ("b", (None, 4))]
    assert sorted(rdd1.fullOuterJoin(sc.parallelize([("a", 2), ("c", 8)])).collect()) == \
        [("a", (1, 2)), ("b", (4, None)), ("c", (None, 8))]
    many = sc.parallelize([(k % 4, k) for k in range(12)], 3)
    other = sc.parallelize([(k, str(k)) for k in range(2, 6)], 2)
    joined = many.join(other)
    assert joined.getNumPartitions() == 5                  # 3 + 2 partitions
    assert sorted(joined.collect()) == sorted((k % 4, (k, str(k % 4)))
                                              for k in range(12) if k % 4 in (2, 3))
    assert many.join(other, 2).getNumPartitions() == 2
    assert sc.parallelize([(None, 1)]).join(sc.parallelize([(None, 2)])).collect() == \
        [(None, (1, 2))]


def test_subtract_by_key(sc):
    rdd1 = sc.parallelize([("a", 1), ("b", 4), ("b", 5), ("a", 2)])
    rdd2 = sc.parallelize([("a", 3), ("c", None)])
    assert sorted(rdd1.subtractByKey(rdd2).collect()) == [("b", 4), ("b", 5)]


def test_group_by_key_calls_a_users_partition_func_once_per_key_and_map_task(sc):
    """As after PySpark's map-side combine: a partition function that counts its calls,
    or is not pure, sees each key once per map task, so one key stays one group."""
    calls = sc.accumulator(0)

    def counted(key):
        calls.add(1)
        return portable_hash(key)
    grouped = sc.parallelize([("a", i) for i in range(1000)], 2).groupByKey(3, counted)
    assert grouped.mapValues(sorted).collect() == [("a", list(range(1000)))]
    assert calls.value == 2
    scattered = sc.parallelize([("k", i) for i in range(100)], 1).groupByKey(
        4, lambda k: random.randrange(4))
    assert scattered.mapValues(len).collect() == [("k", 100)]


def test_partition_by_places_keys_at_partition_func_mod_n(sc):
    pairs = sc.parallelize([1, 2, 3, 4, 2, 4, 1]).map(lambda x: (x, x))
    sets = pairs.partitionBy(2).glom().collect()
    assert len(set(sets[0]).intersection(set(sets[1]))) == 0
    assert [sorted(p) for p in sets] == [[(2, 2), (2, 2), (4, 4), (4, 4)],
                                         [(1, 1), (1, 1), (3, 3)]]
    custom = sc.parallelize([(k, None) for k in range(20)], 3).partitionBy(
        4, lambda k: k // 5)
    assert custom.glom().map(lambda p: sorted(k for k, _ in p)).collect() == \
        [list(range(0, 5)), list(range(5, 10)), list(range(10, 15)), list(range(15, 20))]
    words = sc.parallelize([(w, 1) for w in "the quick brown fox jumps over lazy dogs".split()])
    placed = words.partitionBy(3).mapPartitionsWithIndex(
        lambda i, it: [all(portable_hash(k) % 3 == i for k, _ in it)])
    assert placed.collect() == [True, True, True]
    tuples = sc.parallelize([((k, None), k) for k in range(30)], 2).partitionBy(4)
    assert tuples.mapPartitionsWithIndex(
        lambda i, it: [all(portable_hash(k) % 4 == i for k, _ in it)]).collect() == [True] * 4


def test_partitioner_is_kept_and_dropped_like_pyspark(sc):
    pairs = sc.parallelize([(k, k) for k in range(10)], 2)
    assert pairs.partitioner is None
    reduced = pairs.reduceByKey(add, 3)
    assert reduced.partitioner == Partitioner(3, portable_hash)
    assert reduced.mapValues(str).partitioner == reduced.partitioner
    assert reduced.flatMapValues(lambda v: [v]).partitioner == reduced.partitioner
    assert reduced.filter(lambda kv: kv[1] > 2).partitioner == reduced.partitioner
    assert reduced.map(lambda kv: kv).partitioner is None
    assert reduced.keys().partitioner is None
    assert reduced.map(lambda kv: kv, preservesPartitioning=True).partitioner == \
        reduced.partitioner
    assert reduced.partitionBy(3) is reduced                  # same partitioner: no-op
    assert reduced.partitionBy(4) is not reduced
    assert pairs.groupByKey(3).partitioner == Partitioner(3, portable_hash)
    assert pairs.sortByKey(numPartitions=2).partitioner is not None
    other = pairs.partitionBy(3)
    assert reduced.union(other).partitioner == reduced.partitioner
    assert reduced.union(other).getNumPartitions() == 3
    assert reduced.union(pairs).partitioner is None
    assert reduced.union(pairs).getNumPartitions() == 5


def test_union_of_co_partitioned_rdds_lines_up_partitions(sc):
    a = sc.parallelize([(k, "a") for k in range(6)], 2).partitionBy(3)
    b = sc.parallelize([(k, "b") for k in range(3, 9)], 3).partitionBy(3)
    united = a.union(b)
    assert united.getNumPartitions() == 3
    assert united.glom().map(sorted).collect() == [
        [(0, "a"), (3, "a"), (3, "b"), (6, "b")],
        [(1, "a"), (4, "a"), (4, "b"), (7, "b")],
        [(2, "a"), (5, "a"), (5, "b"), (8, "b")]]
    assert a.union(a).glom().map(len).collect() == [4, 4, 4]
    # sc.union builds the same partitions but, as PySpark, sets no Python partitioner
    assert sc.union([a, b]).getNumPartitions() == 3 and sc.union([a, b]).partitioner is None


def test_join_of_co_partitioned_rdds_does_not_shuffle_again(sc, gateway):
    a = sc.parallelize([(k, k) for k in range(100)], 3).partitionBy(4)
    b = sc.parallelize([(k, -k) for k in range(0, 100, 3)], 2).partitionBy(4)
    joined = a.join(b)
    assert joined.getNumPartitions() == 4 and joined.partitioner == a.partitioner
    assert sorted(joined.collect()) == [(k, (k, -k)) for k in range(0, 100, 3)]
    _, stages = _stages_of_last_job(sc, gateway)
    # the two partitionBy shuffles and the result stage; no shuffle of the join itself
    assert len(stages) == 3, [(s["stageId"], s["name"], s["status"]) for s in stages]

    a.count()
    b.count()
    assert sorted(a.leftOuterJoin(b).collect())[:2] == [(0, (0, 0)), (1, (1, None))]
    _, stages = _stages_of_last_job(sc, gateway)
    statuses = sorted(s["status"] for s in stages)
    assert statuses == ["COMPLETE", "SKIPPED", "SKIPPED"], statuses
    grouped = a.groupByKey()
    assert grouped.partitioner == a.partitioner
    assert grouped.mapValues(list).lookup(5) == [[5]]


def test_lookup(sc):
    pairs = sc.parallelize(zip(range(1000), range(1000)), 10)
    assert pairs.lookup(42) == [42]
    sorted_pairs = pairs.sortByKey()
    assert sorted_pairs.lookup(42) == [42]
    assert sorted_pairs.lookup(1024) == []
    grouped = sc.parallelize([(("a", "b"), "c")]).groupByKey()
    assert list(grouped.lookup(("a", "b"))[0]) == ["c"]
    words = sc.parallelize([("x", 1), ("y", 2), ("x", 3)]).partitionBy(3)
    assert sorted(words.lookup("x")) == [1, 3]


def test_count_by_key_collect_as_map_reduce_by_key_locally(sc):
    rdd = sc.parallelize([("a", 1), ("b", 1), ("a", 1)])
    assert sorted(rdd.countByKey().items()) == [("a", 2), ("b", 1)]
    assert sorted(rdd.reduceByKeyLocally(add).items()) == [("a", 2), ("b", 1)]
    m = sc.parallelize([(1, 2), (3, 4)]).collectAsMap()
    assert m[1] == 2 and m[3] == 4
    assert sc.parallelize([(1, "a"), (1, "b")], 2).collectAsMap() == {1: "b"}


def test_to_debug_string_shows_lineage_and_shuffles(sc):
    rdd = sc.parallelize([("a", 1)], 2).setName("pairs").reduceByKey(add)
    text = rdd.toDebugString()
    assert isinstance(text, bytes)
    lines = text.decode().splitlines()
    assert re.fullmatch(r"\(2\) PythonRDD\[\d+\] at reduceByKey at test_api_pairs\.py:\d+ \[\]",
                        lines[0]), lines
    assert re.fullmatch(r" \|  ShuffledRDD\[\d+\] at reduceByKey at .* \[\]", lines[1]), lines
    assert re.fullmatch(r" \+-\(2\) PythonRDD\[\d+\] at reduceByKey at .* \[\]", lines[2]), lines
    assert re.fullmatch(r"    \|  pairs ParallelCollectionRDD\[\d+\] at parallelize at "
                        r"test_api_pairs\.py:\d+ \[\]", lines[3]), lines
    assert len(lines) == 4
    cached = sc.parallelize([1]).map(str).cache()
    assert cached.toDebugString().decode().endswith("[]")
    assert "[Memory Serialized 1x Replicated]" in cached.toDebugString().decode()
    joined = sc.parallelize([(1, 2)]).join(sc.parallelize([(1, 3)], 3))
    text = joined.toDebugString().decode()
    assert text.startswith("(5) PythonRDD[") and text.count("+-(") == 1, text
    assert "UnionRDD" in text and text.count("ParallelCollectionRDD") == 2, text
