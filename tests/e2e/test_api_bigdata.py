"""Volume and shape: spilling shuffles, large records, every picklable type, empty
partitions, hundreds of partitions, and spark.driver.maxResultSize."""

from __future__ import annotations

import contextlib
import random
import resource
import struct
from operator import add

import numpy as np
import pytest

import ember
from ember.shuffle import ExternalList, task_spill_metrics

MB = 1 << 20


@contextlib.contextmanager
def conf_value(sc, key, value):
    """Sets a SparkConf entry for the jobs submitted inside the block."""
    before = sc._conf.get(key)
    sc._conf.set(key, value)
    try:
        yield
    finally:
        if before is None:
            sc._conf._settings.pop(key, None)
        else:
            sc._conf.set(key, before)


def _reporter():
    """A partition function for the end of a reduce task: its records, the task's
    spills and peak RSS. (Nested, so cloudpickle ships it by value.)"""
    def report(iterator):
        rows = list(iterator)
        return [(rows, task_spill_metrics(),
                 resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)]
    return report


def test_group_by_key_spills_data_several_times_the_memory_limit(sc):
    keys, per_key, size = 25, 200, 10_000          # key 0 has six times more values
    data_bytes = (keys - 1 + 6) * per_key * size
    limit = "8m"

    def generate(k):
        for i in range(per_key * (6 if k == 0 else 1)):
            yield k, struct.pack(">II", k, i) * (size // 8)

    def summary(values):
        count = total = index_sum = 0
        for v in values:
            count += 1
            total += len(v)
            index_sum += struct.unpack(">II", v[:8])[1]
        return count, total, index_sum, isinstance(values.data, ExternalList)

    with conf_value(sc, "spark.python.worker.memory", limit):
        out = (sc.parallelize(range(keys), 5).flatMap(generate).groupByKey(2)
               .mapValues(summary).mapPartitions(_reporter()).collect())
    rows = dict(r for part, _, _ in out for r in part)
    spills = sum(m["spills"] for _, m, _ in out)
    spilled = sum(m["spilledBytes"] for _, m, _ in out)
    peak_rss_mb = max(rss for _, _, rss in out) // 1024
    note = (f"spark.python.worker.memory={limit}, groupByKey data {data_bytes / MB:.1f} MiB "
            f"({data_bytes / (8 * MB):.1f}x the limit): {spills} spills, "
            f"{spilled / MB:.1f} MiB spilled, reduce peak RSS {peak_rss_mb} MiB")
    print(note)
    expected = {k: (per_key * (6 if k == 0 else 1), per_key * (6 if k == 0 else 1) * size,
                    sum(range(per_key * (6 if k == 0 else 1)))) for k in range(keys)}
    assert {k: v[:3] for k, v in rows.items()} == expected, note
    assert data_bytes > 6 * 8 * MB, note
    assert spills > 0 and spilled > 8 * MB, note
    assert rows[0][3], "the 12 MB group of key 0 must stay on disk: " + note


def test_reduce_by_key_and_sort_by_key_spill_with_many_keys(sc):
    n = 300_000
    with conf_value(sc, "spark.python.worker.memory", "2m"):
        counts = (sc.parallelize(range(n), 4).map(lambda i: (i % 100_000, 1))
                  .reduceByKey(add, 3).mapPartitions(_reporter()).collect())
        merged = dict(r for part, _, _ in counts for r in part)
        assert len(merged) == 100_000 and set(merged.values()) == {3}
        assert sum(m["spills"] for _, m, _ in counts) > 0

        rng = random.Random(3)
        keys = [rng.random() for _ in range(200_000)]
        ordered = (sc.parallelize([(k, None) for k in keys], 4).sortByKey(numPartitions=2)
                   .keys().mapPartitions(_reporter()).collect())
        flat = [k for part, _, _ in ordered for k in part]
        assert flat == sorted(keys)
        assert sum(m["spills"] for _, m, _ in ordered) > 0


def test_join_with_a_group_larger_than_the_limit(sc):
    def left(k):
        count = 3000 if k == 0 else 10
        for i in range(count):
            yield k, b"%08d" % i + b"." * 4000
    with conf_value(sc, "spark.python.worker.memory", "4m"):
        lhs = sc.parallelize(range(6), 3).flatMap(left)
        rhs = sc.parallelize([(0, "x"), (0, "y"), (3, "z")], 2)
        joined = lhs.join(rhs).map(lambda kv: (kv[0], kv[1][1], int(kv[1][0][:8])))
        counts = joined.map(lambda t: ((t[0], t[1]), (1, t[2]))).reduceByKey(
            lambda a, b: (a[0] + b[0], a[1] + b[1])).collectAsMap()
    assert counts == {(0, "x"): (3000, sum(range(3000))), (0, "y"): (3000, sum(range(3000))),
                      (3, "z"): (10, sum(range(10)))}


def test_large_records_through_map_shuffle_and_collect(sc):
    size = 20 * MB
    big = sc.parallelize([0, 1, 2], 3).map(lambda i: (i % 2, bytes([65 + i]) * size))
    grouped = big.groupByKey(2).mapValues(lambda vs: sorted((v[:1], len(v)) for v in vs))
    assert sorted(grouped.collect()) == [(0, [(b"A", size), (b"C", size)]), (1, [(b"B", size)])]
    records = big.values().collect()
    assert [len(r) for r in records] == [size] * 3
    assert [r[:1] + r[-1:] for r in records] == [b"AA", b"BB", b"CC"]


def test_records_of_any_picklable_type(sc):
    values = [None, (1, (2, (3, None))), [1, [2, [3]]], {"a": {"b": [1, 2]}}, {1, 2, 3},
              "ünïcödé ✓ 漢字", b"\x00\xff\xfe", 1.5, 10 ** 40, complex(1, 2), True,
              np.arange(12, dtype=np.int32).reshape(3, 4), np.float64(2.5)]
    rdd = sc.parallelize(values, 4)
    got = rdd.collect()
    assert got[:-2] == values[:-2]
    assert (got[-2] == values[-2]).all() and got[-2].dtype == np.int32
    assert got[-1] == values[-1]
    keys = [None, (1, None), "ключ", ("a", ("b", 2)), 7, frozenset({1}), 2.5, b"k"]
    pairs = sc.parallelize([(k, np.full(3, i)) for i, k in enumerate(keys)] * 3, 3)
    summed = dict(pairs.reduceByKey(lambda a, b: a + b, 4).collect())
    assert set(summed) == set(keys)
    assert all((summed[k] == np.full(3, 3 * i)).all() for i, k in enumerate(keys))
    grouped = dict(pairs.groupByKey().mapValues(len).collect())
    assert grouped == {k: 3 for k in keys}
    assert sorted(sc.parallelize([(None, 1), (None, 2)]).join(
        sc.parallelize([(None, "x")])).collect()) == [(None, (1, "x")), (None, (2, "x"))]


def test_empty_partitions_everywhere(sc):
    empty5 = sc.parallelize([], 5)
    assert empty5.count() == 0 and empty5.getNumPartitions() == 5
    assert empty5.map(lambda x: (x, x)).reduceByKey(add).glom().collect() == [[]] * 5
    sparse = sc.parallelize(range(20), 10).filter(lambda x: x in (3, 17))
    assert sparse.glom().collect() == [[], [3], [], [], [], [], [], [], [17], []]
    assert sparse.sum() == 20 and sparse.max() == 17 and sparse.take(5) == [3, 17]
    assert sparse.sortBy(lambda x: -x, numPartitions=3).collect() == [17, 3]
    assert sparse.zip(sparse.map(str)).collect() == [(3, "3"), (17, "17")]
    assert sparse.coalesce(3).glom().collect() == [[3], [], [17]]
    assert sparse.map(lambda x: (x % 2, x)).groupByKey(4).mapValues(sorted).collect() == \
        [(1, [3, 17])]
    assert sparse.zipWithIndex().collect() == [(3, 0), (17, 1)]
    assert sparse.stats().count() == 2
    assert sparse.histogram([0, 10, 20]) == ([0, 10, 20], [1, 1])


def test_hundreds_of_partitions(sc):
    pairs = sc.parallelize([(i % 1000, 1) for i in range(30_000)], 300)
    assert pairs.getNumPartitions() == 300
    counts = pairs.reduceByKey(add, 200)
    assert counts.getNumPartitions() == 200
    result = counts.collect()
    assert len(result) == 1000 and all(c == 30 for _, c in result)
    assert counts.glom().map(len).collect() == [5] * 200            # key k in partition k % 200
    assert pairs.coalesce(7).getNumPartitions() == 7 and pairs.coalesce(7).count() == 30_000


def test_result_bigger_than_max_result_size_fails_naming_it(sc):
    rdd = sc.parallelize(range(3), 3).map(lambda i: b"x" * MB)
    with conf_value(sc, "spark.driver.maxResultSize", "2m"):
        with pytest.raises(ember.JobFailedError, match="spark.driver.maxResultSize"):
            rdd.collect()
        assert len(rdd.take(1)[0]) == MB                            # under the limit
    with conf_value(sc, "spark.driver.maxResultSize", "0"):           # 0: no limit
        assert len(rdd.collect()) == 3
    assert sum(len(r) for r in rdd.toLocalIterator()) == 3 * MB
