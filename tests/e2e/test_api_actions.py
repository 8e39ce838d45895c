"""Actions: results, orders and errors as PySpark's (docstrings of pyspark/rdd.py)."""

from __future__ import annotations

import math
from operator import add

import pytest

from conftest import last_job
from ember import StatCounter


def test_collect_count_first_take(sc):
    assert sc.range(5).collect() == [0, 1, 2, 3, 4]
    assert sc.parallelize(["x", "y", "z"]).collect() == ["x", "y", "z"]
    assert sc.parallelize([2, 3, 4]).count() == 3
    assert sc.parallelize([2, 3, 4]).first() == 2
    with pytest.raises(ValueError, match="RDD is empty"):
        sc.parallelize([]).first()
    assert sc.parallelize([2, 3, 4, 5, 6]).take(2) == [2, 3]
    assert sc.parallelize([2, 3, 4, 5, 6]).take(10) == [2, 3, 4, 5, 6]
    assert sc.parallelize(range(100), 100).filter(lambda x: x > 90).take(3) == [91, 92, 93]
    assert sc.parallelize([1, 2]).take(0) == []


def test_take_scans_few_partitions(sc, gateway):
    sc.parallelize(range(100), 10).take(3)
    job = last_job(gateway, sc.applicationId)
    assert job["numTasks"] == 1, job


def test_is_empty(sc):
    assert sc.parallelize([]).isEmpty()
    assert not sc.parallelize([1]).isEmpty()
    assert sc.emptyRDD().isEmpty()
    assert sc.parallelize(range(10), 5).filter(lambda x: x > 100).isEmpty()


def test_reduce_fold_aggregate(sc):
    assert sc.parallelize([1, 2, 3, 4, 5]).reduce(add) == 15
    assert sc.parallelize((2 for _ in range(10))).map(lambda x: 1).cache().reduce(add) == 10
    with pytest.raises(ValueError, match="Can not reduce\\(\\) empty RDD"):
        sc.parallelize([]).reduce(add)
    assert sc.parallelize([1, 2, 3, 4, 5]).fold(0, add) == 15
    assert sc.parallelize([], 3).fold(0, add) == 0
    seq_op = (lambda x, y: (x[0] + y, x[1] + 1))
    comb_op = (lambda x, y: (x[0] + y[0], x[1] + y[1]))
    assert sc.parallelize([1, 2, 3, 4]).aggregate((0, 0), seq_op, comb_op) == (10, 4)
    assert sc.parallelize([]).aggregate((0, 0), seq_op, comb_op) == (0, 0)
    # zeroValue is applied once per partition and once more at the end
    assert sc.parallelize([1, 2, 3], 3).fold(10, add) == 46


def test_tree_reduce_and_tree_aggregate(sc):
    rdd = sc.parallelize([-5, -4, -3, -2, -1, 1, 2, 3, 4], 10)
    for depth in (1, 2, 5, 10):
        assert rdd.treeReduce(add, depth) == -5
        assert rdd.treeAggregate(0, add, add, depth) == -5
    assert rdd.treeReduce(add) == -5
    big = sc.parallelize(range(1000), 64)
    assert big.treeAggregate(0, add, add, 2) == sum(range(1000))
    assert big.treeReduce(max, 3) == 999
    with pytest.raises(ValueError, match="Depth cannot be smaller than 1"):
        rdd.treeReduce(add, 0)
    with pytest.raises(ValueError, match="Cannot reduce empty RDD"):
        sc.parallelize([], 4).treeReduce(add)
    assert sc.emptyRDD().treeAggregate(7, add, add) == 7


def test_tree_aggregate_adds_a_level_for_many_partitions(sc, gateway):
    sc.parallelize(range(1000), 64).treeAggregate(0, add, add, 2)
    job = last_job(gateway, sc.applicationId)
    assert job["numStages"] == 2, job                    # 64 -> 8 partitions, then reduce


def test_sum_max_min_top_take_ordered(sc):
    assert sc.parallelize([1.0, 2.0, 3.0]).sum() == 6.0
    assert sc.emptyRDD().sum() == 0
    rdd = sc.parallelize([1.0, 5.0, 43.0, 10.0])
    assert rdd.max() == 43.0 and rdd.max(key=str) == 5.0
    rdd2 = sc.parallelize([2.0, 5.0, 43.0, 10.0])
    assert rdd2.min() == 2.0 and rdd2.min(key=str) == 10.0
    assert sc.parallelize([10, 4, 2, 12, 3]).top(1) == [12]
    assert sc.parallelize([2, 3, 4, 5, 6], 2).top(2) == [6, 5]
    assert sc.parallelize([10, 4, 2, 12, 3]).top(3, key=str) == [4, 3, 2]
    assert sc.parallelize([10, 1, 2, 9, 3, 4, 5, 6, 7]).takeOrdered(6) == [1, 2, 3, 4, 5, 6]
    assert sc.parallelize([10, 1, 2, 9, 3, 4, 5, 6, 7], 2).takeOrdered(6, key=lambda x: -x) == \
        [10, 9, 7, 6, 5, 4]
    assert sc.emptyRDD().takeOrdered(3) == []
    with pytest.raises(ValueError, match="top N cannot be negative"):
        rdd.takeOrdered(-1)


def test_statistics(sc):
    rdd = sc.parallelize([1, 2, 3])
    assert rdd.mean() == 2.0
    assert rdd.variance() == pytest.approx(2 / 3)
    assert rdd.stdev() == pytest.approx(math.sqrt(2 / 3))
    assert rdd.sampleStdev() == 1.0
    assert rdd.sampleVariance() == 1.0
    stats = sc.parallelize([1., 2., 3., 4.], 3).stats()
    assert isinstance(stats, StatCounter)
    assert (stats.count(), stats.mean(), stats.sum(), stats.min(), stats.max()) == \
        (4, 2.5, 10.0, 1.0, 4.0)
    assert stats.asDict() == pytest.approx({
        "count": 4, "max": 4.0, "mean": 2.5, "min": 1.0,
        "stdev": 1.2909944487358056, "sum": 10.0, "variance": 1.6666666666666667})
    assert stats.asDict(sample=True)["variance"] == pytest.approx(1.25)
    assert repr(sc.parallelize([1.0, 2.0, 3.0]).stats()) == \
        "(count: 3, mean: 2.0, stdev: 0.816496580927726, max: 3.0, min: 1.0)"
    values = [float(x * x % 17) for x in range(1000)]
    big = sc.parallelize(values, 7).stats()
    assert big.mean() == pytest.approx(sum(values) / 1000)
    assert big.sampleVariance() == pytest.approx(
        sum((v - big.mean()) ** 2 for v in values) / 999)
    empty = sc.parallelize([], 2).stats()
    assert empty.count() == 0 and math.isnan(empty.variance()) and empty.mean() == 0.0


def test_stat_counter_merging():
    left = StatCounter([1.0, 2.0])
    right = StatCounter([3.0, 4.0, 5.0])
    merged = left.copy().mergeStats(right)
    assert merged.count() == 5 and merged.mean() == 3.0 and merged.max() == 5.0
    assert StatCounter([1.0, 2.0, 3.0, 4.0, 5.0]).variance() == pytest.approx(merged.variance())
    assert left.merge(10.0).count() == 3
    doubled = StatCounter([1.0, 3.0])
    doubled.mergeStats(doubled)
    assert doubled.count() == 4 and doubled.mean() == 2.0
    with pytest.raises(TypeError):
        left.mergeStats([1.0])
    assert math.isnan(StatCounter([1.0]).sampleStdev())


def test_histogram(sc):
    rdd = sc.parallelize(range(51))
    assert rdd.histogram(2) == ([0, 25, 50], [25, 26])
    assert rdd.histogram([0, 5, 25, 50]) == ([0, 5, 25, 50], [5, 20, 26])
    assert rdd.histogram([0, 15, 30, 45, 60]) == ([0, 15, 30, 45, 60], [15, 15, 15, 6])
    strings = sc.parallelize(["ab", "ac", "b", "bd", "ef"])
    assert strings.histogram(("a", "b", "c")) == (("a", "b", "c"), [2, 2])
    # edges: the last bucket is closed, values outside and None/NaN are skipped
    values = sc.parallelize([1, 10, 20, 50, 51, 0, None, float("nan")], 3)
    assert values.histogram([1, 10, 20, 50]) == ([1, 10, 20, 50], [1, 1, 2])
    assert sc.parallelize([1.0, 2.0, 2.5, 4.0]).histogram(3) == \
        ([1.0, 2.0, 3.0, 4.0], [1, 2, 1])
    assert sc.parallelize([7, 7, 7]).histogram(4) == ([7, 7], [3])
    assert sc.parallelize([1, 2, 3, 4]).histogram(1) == ([1, 4], [4])
    with pytest.raises(ValueError, match="buckets should be sorted"):
        rdd.histogram([5, 1, 10])
    with pytest.raises(ValueError, match="more than one value"):
        rdd.histogram([1])
    with pytest.raises(ValueError, match="duplicated"):
        rdd.histogram([1, 1, 2])
    with pytest.raises(ValueError, match=">= 1"):
        rdd.histogram(0)
    with pytest.raises(ValueError, match="empty RDD"):
        sc.parallelize([None], 1).histogram(2)
    with pytest.raises(ValueError, match="infinite"):
        sc.parallelize([0.0, float("inf")]).histogram(2)
    with pytest.raises(TypeError):
        rdd.histogram("ten")


def test_count_by_value(sc):
    assert sorted(sc.parallelize([1, 2, 1, 2, 2], 2).countByValue().items()) == \
        [(1, 2), (2, 3)]
    assert dict(sc.parallelize([], 2).countByValue()) == {}


def test_foreach_and_foreach_partition_run_on_the_cluster(sc, tmp_path):
    out = tmp_path / "seen"
    out.mkdir()

    def touch(x):
        (out / f"x{x}").write_text("")
    sc.parallelize(range(5), 2).foreach(touch)
    assert sorted(p.name for p in out.iterdir()) == [f"x{i}" for i in range(5)]

    def write_sum(it):
        total = sum(it)
        (out / f"sum{total}").write_text("")
    sc.parallelize([1, 2, 3, 4], 2).foreachPartition(write_sum)
    assert (out / "sum3").exists() and (out / "sum7").exists()

    def generator(it):        # PySpark also accepts a generator function
        for x in it:
            (out / f"g{x}").write_text("")
            yield x
    sc.parallelize([8, 9], 2).foreachPartition(generator)
    assert (out / "g8").exists() and (out / "g9").exists()


def test_to_local_iterator_fetches_partition_by_partition(sc, gateway):
    assert [x for x in sc.parallelize(range(10)).toLocalIterator()] == list(range(10))
    rdd = sc.parallelize(range(12), 4).map(lambda x: x * 2)
    app = sc.applicationId
    before = len(gateway.api(f"/applications/{app}/jobs"))
    it = rdd.toLocalIterator()
    assert len(gateway.api(f"/applications/{app}/jobs")) == before      # lazy
    assert next(it) == 0
    assert len(gateway.api(f"/applications/{app}/jobs")) == before + 1  # one partition only
    assert list(it) == list(range(2, 24, 2))
    jobs = gateway.api(f"/applications/{app}/jobs")
    assert len(jobs) == before + 4 and all(j["numTasks"] == 1 for j in jobs[:4])
    assert list(rdd.toLocalIterator(prefetchPartitions=True)) == list(range(0, 24, 2))
    assert list(sc.emptyRDD().toLocalIterator()) == []
    shuffled = sc.parallelize([(k % 3, k) for k in range(30)]).reduceByKey(add, 3)
    assert sorted(shuffled.toLocalIterator()) == sorted(shuffled.collect())


def test_approximate_actions_and_count_approx_distinct(sc):
    rdd = sc.parallelize(range(1000), 10)
    assert rdd.countApprox(1000, 1.0) == 1000
    r = sum(range(1000))
    assert abs(rdd.sumApprox(1000) - r) / r < 0.05
    assert abs(rdd.meanApprox(1000) - r / 1000.0) / (r / 1000.0) < 0.05
    bounded = rdd.sumApprox(1000)
    assert bounded.low <= bounded <= bounded.high
    n = sc.parallelize(range(1000)).map(str).countApproxDistinct()
    assert 900 < n < 1100
    n = sc.parallelize([i % 20 for i in range(1000)]).countApproxDistinct()
    assert 16 < n < 24
    with pytest.raises(ValueError):
        rdd.countApproxDistinct(0.000001)
