"""Narrow and set transformations: results, orders and partition layouts as PySpark's.

Expected values are PySpark 3.x's documented ones (docstrings of pyspark/rdd.py),
worked out for a local[2] cluster (defaultParallelism 2). Small int keys hash to
themselves, so a hash-partitioned int lands in partition ``key % n``.
"""

from __future__ import annotations

import os
import warnings

import pytest

import ember
from conftest import job_stages, last_job


def test_map_flatmap_filter_keep_order(sc):
    rdd = sc.parallelize([2, 3, 4], 2)
    assert rdd.map(lambda x: x * 10).collect() == [20, 30, 40]
    assert sorted(rdd.flatMap(lambda x: range(1, x)).collect()) == [1, 1, 1, 2, 2, 3]
    assert rdd.flatMap(lambda x: [(x, x), (x, x)]).glom().collect() == \
        [[(2, 2), (2, 2)], [(3, 3), (3, 3), (4, 4), (4, 4)]]
    assert sc.parallelize([1, 2, 3, 4, 5]).filter(lambda x: x % 2 == 0).collect() == [2, 4]
    assert sorted(sc.parallelize(["b", "a", "c"]).map(lambda x: (x, 1)).collect()) == \
        [("a", 1), ("b", 1), ("c", 1)]


def test_map_partitions_family(sc):
    rdd = sc.parallelize([1, 2, 3, 4], 2)

    def f(iterator):
        yield sum(iterator)
    assert rdd.mapPartitions(f).collect() == [3, 7]
    assert sc.parallelize([1, 2, 3, 4], 4).mapPartitionsWithIndex(lambda i, it: [i]).sum() == 6
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert rdd.mapPartitionsWithSplit(lambda i, it: [(i, list(it))]).collect() == \
            [(0, [1, 2]), (1, [3, 4])]
    assert any(issubclass(w.category, FutureWarning) for w in caught)
    assert rdd.glom().collect() == [[1, 2], [3, 4]]
    assert sc.parallelize([], 3).glom().collect() == [[], [], []]


def test_key_by_keys_values_group_by(sc):
    assert sc.parallelize(range(3)).keyBy(lambda x: x * x).collect() == [(0, 0), (1, 1), (4, 2)]
    assert sc.parallelize([(1, 2), (3, 4)]).keys().collect() == [1, 3]
    assert sc.parallelize([(1, 2), (3, 4)]).values().collect() == [2, 4]
    grouped = sc.parallelize([1, 1, 2, 3, 5, 8]).groupBy(lambda x: x % 2)
    assert grouped.getNumPartitions() == 2
    assert sorted((k, sorted(v)) for k, v in grouped.collect()) == [(0, [2, 8]), (1, [1, 1, 3, 5])]
    # key k lands in partition hash(k) % n
    assert [[k for k, _ in part] for part in grouped.glom().collect()] == [[0], [1]]


def test_distinct(sc):
    assert sorted(sc.parallelize([1, 1, 2, 3]).distinct().collect()) == [1, 2, 3]
    d = sc.parallelize([3, 1, 3, 2, 1, 4], 3).distinct(2)
    assert d.getNumPartitions() == 2
    assert [sorted(p) for p in d.glom().collect()] == [[2, 4], [1, 3]]


def test_union_keeps_order_and_partitions(sc):
    rdd = sc.parallelize([1, 1, 2, 3])
    assert rdd.union(rdd).collect() == [1, 1, 2, 3, 1, 1, 2, 3]
    assert (rdd + rdd).getNumPartitions() == 4
    with pytest.raises(TypeError):
        rdd + [1]
    # functions under a union see their own partition index
    a = sc.parallelize([1, 2, 3, 4], 2)
    b = sc.parallelize([5, 6, 7, 8], 2).mapPartitionsWithIndex(lambda i, it: [(i, list(it))])
    assert a.union(b).collect() == [1, 2, 3, 4, (0, [5, 6]), (1, [7, 8])]
    assert a.union(b).mapPartitionsWithIndex(lambda i, it: [i]).collect() == [0, 1, 2, 3]


def test_intersection_and_subtract(sc):
    rdd1 = sc.parallelize([1, 10, 2, 3, 4, 5])
    rdd2 = sc.parallelize([1, 6, 2, 3, 7, 8])
    inter = rdd1.intersection(rdd2)
    assert inter.getNumPartitions() == 4                 # cogroup of 2 + 2 partitions
    assert inter.collect() == [1, 2, 3]                  # k in partition k % 4
    assert sorted(sc.parallelize([1, 1, 2]).intersection(sc.parallelize([1, 1])).collect()) == [1]
    pairs1 = sc.parallelize([("a", 1), ("b", 4), ("b", 5), ("a", 3)])
    pairs2 = sc.parallelize([("a", 3), ("c", None)])
    assert sorted(pairs1.subtract(pairs2).collect()) == [("a", 1), ("b", 4), ("b", 5)]
    assert sorted(sc.parallelize([1, 2, 2, 3]).subtract(sc.parallelize([2]), 3).collect()) == \
        [1, 3]
    assert sc.parallelize([1, 2, 2, 3]).subtract(sc.parallelize([2]), 3).getNumPartitions() == 3


def test_cartesian_layout(sc):
    rdd = sc.parallelize([1, 2])
    assert sorted(rdd.cartesian(rdd).collect()) == [(1, 1), (1, 2), (2, 1), (2, 2)]
    left = sc.parallelize(["a", "b", "c"], 2)           # [a], [b, c]
    right = sc.parallelize([1, 2, 3], 3)                 # [1], [2], [3]
    product = left.cartesian(right)
    assert product.getNumPartitions() == 6
    assert product.glom().collect() == [
        [("a", 1)], [("a", 2)], [("a", 3)],
        [("b", 1), ("c", 1)], [("b", 2), ("c", 2)], [("b", 3), ("c", 3)]]
    assert left.cartesian(sc.emptyRDD()).collect() == []


def test_cartesian_does_not_shuffle(sc, gateway):
    sc.parallelize(range(4), 2).cartesian(sc.parallelize(range(3), 3)).count()
    stages = job_stages(gateway, sc.applicationId, last_job(gateway, sc.applicationId)["jobId"])
    assert len(stages) == 1, stages


def test_zip(sc):
    rdd1 = sc.parallelize(range(0, 5))
    rdd2 = sc.parallelize(range(1000, 1005))
    assert rdd1.zip(rdd2).collect() == [(0, 1000), (1, 1001), (2, 1002), (3, 1003), (4, 1004)]
    zipped = rdd1.zip(rdd1.map(str))
    assert zipped.getNumPartitions() == 2
    assert zipped.glom().collect() == [[(0, "0"), (1, "1")], [(2, "2"), (3, "3"), (4, "4")]]
    with pytest.raises(ValueError, match="same number of partitions"):
        rdd1.zip(sc.parallelize(range(5), 3))
    with pytest.raises(ember.JobFailedError, match="same number of elements"):
        rdd1.zip(rdd1.filter(lambda x: x != 3)).collect()


def test_zip_with_index_and_unique_id(sc):
    assert sc.parallelize(["a", "b", "c", "d"], 3).zipWithIndex().collect() == \
        [("a", 0), ("b", 1), ("c", 2), ("d", 3)]
    assert sc.parallelize(["a", "b", "c", "d", "e"], 3).zipWithUniqueId().collect() == \
        [("a", 0), ("b", 1), ("c", 4), ("d", 2), ("e", 5)]
    assert sc.parallelize([], 3).zipWithIndex().collect() == []
    indexed = sc.parallelize(range(100, 120), 4).filter(lambda x: x % 3).zipWithIndex()
    assert [i for _, i in indexed.collect()] == list(range(14))


def test_pipe(sc, tmp_path):
    assert sc.parallelize(["1", "2", "", "3"]).pipe("cat").collect() == ["1", "2", "", "3"]
    assert sc.parallelize([1, 2, 3, 4], 2).pipe("wc -l").map(str.strip).collect() == ["2", "2"]
    assert sc.parallelize(["x"], 1).pipe("sh -c 'echo $GREETING-$0'",
                                         env={"GREETING": "hi"}).collect() == ["hi-sh"]
    # env is the whole environment of the command, as in PySpark
    assert sc.parallelize(["x"], 1).pipe("sh -c 'echo ${HOME:-unset}'").collect() == ["unset"]
    failing = sc.parallelize([1], 1).pipe("sh -c 'cat; exit 3'", checkCode=True)
    with pytest.raises(ember.JobFailedError, match="exited with error code 3"):
        failing.collect()
    assert sc.parallelize([1], 1).pipe("sh -c 'cat; exit 3'").collect() == ["1"]
    assert sc.parallelize(["é ü"], 1).pipe("cat").collect() == ["é ü"]


def test_pipe_commands_that_ignore_their_input_or_are_cut_short(sc):
    rdd = sc.parallelize(range(20_000), 2)
    for _ in range(10):          # the command exits while its input is still being written
        assert rdd.pipe("echo done").collect() == ["done", "done"]
    tiny = sc.parallelize(["x"], 1)
    for _ in range(40):          # ... or before the task's input has ended
        assert tiny.pipe("echo done").collect() == ["done"]
    assert sc.parallelize(range(200_000), 1).pipe("cat").take(3) == ["0", "1", "2"]
    assert rdd.count() == 20_000                         # the Python workers are fine


def test_coalesce_groups_consecutive_partitions(sc, gateway):
    rdd = sc.parallelize([1, 2, 3, 4, 5], 3)
    assert rdd.glom().collect() == [[1], [2, 3], [4, 5]]
    assert rdd.coalesce(1).glom().collect() == [[1, 2, 3, 4, 5]]
    assert rdd.coalesce(2).glom().collect() == [[1], [2, 3, 4, 5]]
    assert rdd.coalesce(5).glom().collect() == [[1], [2, 3], [4, 5]]      # never more
    stages = job_stages(gateway, sc.applicationId, last_job(gateway, sc.applicationId)["jobId"])
    assert len(stages) == 1, "coalesce without shuffle must not shuffle"
    ten = sc.parallelize(range(20), 10).coalesce(4)
    assert ten.glom().map(len).collect() == [4, 6, 4, 6]
    assert ten.collect() == list(range(20))
    with pytest.raises(ValueError):
        rdd.coalesce(0)


def test_repartition_and_coalesce_with_shuffle(sc):
    rdd = sc.parallelize([1, 2, 3, 4, 5, 6, 7], 4)
    assert sorted(rdd.glom().collect()) == [[1], [2, 3], [4, 5], [6, 7]]
    assert len(rdd.repartition(2).glom().collect()) == 2
    assert len(rdd.repartition(10).glom().collect()) == 10
    big = sc.parallelize(range(1000), 3).repartition(5)
    sizes = big.glom().map(len).collect()
    assert len(sizes) == 5 and sum(sizes) == 1000 and min(sizes) > 100
    assert sorted(big.collect()) == list(range(1000))
    assert sorted(rdd.coalesce(3, shuffle=True).collect()) == [1, 2, 3, 4, 5, 6, 7]
    assert rdd.repartition(3).partitioner is None


def test_records_flow_unchanged_through_partitions_of_a_file(sc, tmp_path):
    path = tmp_path / "numbers.txt"
    path.write_text("".join(f"{i}\n" for i in range(1000)))
    lines = sc.textFile(str(path), 4)
    assert lines.getNumPartitions() == 4
    assert lines.map(int).collect() == list(range(1000))
    assert os.path.basename(lines.name()) == "numbers.txt"
