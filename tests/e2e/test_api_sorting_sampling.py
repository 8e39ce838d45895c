"""Sorting and sampling: PySpark's range partitioning, seeded samplers and takeSample.

The reference sampler below is PySpark's (pyspark/rddsampler.py): partition i
draws from ``random.Random(seed ^ i)`` after ten mixing draws, so a seeded
sample is the same on every run and equals PySpark's for the same partitions.
"""

from __future__ import annotations

import random

import pytest

import ember
from conftest import last_job

TMP = [("a", 1), ("b", 2), ("1", 3), ("d", 4), ("2", 5)]
TMP2 = [("Mary", 1), ("had", 2), ("a", 3), ("little", 4), ("lamb", 5),
        ("whose", 6), ("fleece", 7), ("was", 8), ("white", 9)]


def _reference_sample(partitions, fraction, seed):
    out = []
    for split, part in enumerate(partitions):
        rng = random.Random(seed ^ split)
        for _ in range(10):
            rng.randint(0, 1)
        out += [x for x in part if rng.random() < fraction]
    return out


def test_sort_by_key_docstring_examples(sc):
    assert sc.parallelize(TMP).sortByKey().first() == ("1", 3)
    expected = [("1", 3), ("2", 5), ("a", 1), ("b", 2), ("d", 4)]
    assert sc.parallelize(TMP).sortByKey(True, 1).collect() == expected
    assert sc.parallelize(TMP).sortByKey(True, 2).collect() == expected
    assert sc.parallelize(TMP2).sortByKey(True, 3, keyfunc=lambda k: k.lower()).collect() == [
        ("a", 3), ("fleece", 7), ("had", 2), ("lamb", 5), ("little", 4), ("Mary", 1),
        ("was", 8), ("white", 9), ("whose", 6)]
    assert sc.parallelize(TMP).sortByKey(False).collect() == expected[::-1]


def test_sort_by_key_is_globally_sorted_across_partitions(sc):
    rng = random.Random(5)
    keys = [rng.randrange(1_000_000) for _ in range(20_000)]
    rdd = sc.parallelize([(k, i) for i, k in enumerate(keys)], 5)
    for ascending in (True, False):
        parts = rdd.sortByKey(ascending, 4).glom().collect()
        assert len(parts) == 4 and all(len(p) > 2000 for p in parts), [len(p) for p in parts]
        flat = [k for p in parts for k, _ in p]
        assert flat == sorted(keys, reverse=not ascending)
    assert rdd.sortByKey().getNumPartitions() == 5                 # the parent's count
    by_str = rdd.sortByKey(True, 3, keyfunc=str).keys().collect()
    assert by_str == sorted(keys, key=str)


def test_sort_by_key_samples_in_jobs_of_its_own(sc, gateway):
    rdd = sc.parallelize([(k, k) for k in range(100, 0, -1)], 4)
    before = last_job(gateway, sc.applicationId)["jobId"]
    sorted_rdd = rdd.sortByKey(numPartitions=3)     # counts and samples the keys at once
    assert last_job(gateway, sc.applicationId)["jobId"] == before + 1
    # PySpark's bounds (from its count job, then its sample job): a sample (fraction
    # 3 * 20 / 100, seed 1) of the keys, sorted, cut at len/3 and 2*len/3
    samples = sorted(_reference_sample([[k for k, _ in p] for p in rdd.glom().collect()],
                                       0.6, 1))
    bounds = [samples[int(len(samples) * (i + 1) / 3)] for i in range(2)]
    assert sorted_rdd.glom().map(lambda p: (p[0][0], p[-1][0])).collect() == \
        [(1, bounds[0]), (bounds[0] + 1, bounds[1]), (bounds[1] + 1, 100)]
    one = rdd.sortByKey(numPartitions=1)
    assert one.getNumPartitions() == 1 and one.keys().collect() == list(range(1, 101))
    empty = sc.parallelize([], 2)
    assert empty.sortByKey() is empty


def test_sort_by_key_of_many_partitions_counts_before_sampling(sc, gateway):
    # 60 input partitions x a sample of 100 * 20 keys could send 120,000 keys to the
    # driver in one job: it counts, then samples at the known fraction (PySpark's jobs).
    rdd = sc.parallelize([(k * 7919 % 5000, k) for k in range(5000)], 60)
    before = last_job(gateway, sc.applicationId)["jobId"]
    sorted_rdd = rdd.sortByKey(numPartitions=100)
    assert last_job(gateway, sc.applicationId)["jobId"] == before + 2
    samples = sorted(_reference_sample([[k for k, _ in p] for p in rdd.glom().collect()],
                                       min(100 * 20 / 5000, 1.0), 1))
    bounds = [samples[int(len(samples) * (i + 1) / 100)] for i in range(99)]
    parts = sorted_rdd.glom().collect()
    assert [r for p in parts for r in p] == sorted(rdd.collect())
    assert [p[-1][0] for p in parts[:-1]] == bounds      # keys are unique: each bound ends a part


@pytest.mark.parametrize("memory", [None, "1m"])
def test_sort_by_key_is_a_stable_sort_in_memory_and_spilling(sc, memory):
    # A reduce task reads the map outputs a block manager at a time, so equal keys
    # come in the order of their map partition, whichever block manager holds it
    # first: from one map partition, the output is exactly Python's stable sort;
    # from several, each map partition's records of a key keep their order. Int
    # keys beyond 64 bits take list.sort instead of the radix sort.
    rng = random.Random(8)
    records = [(rng.randrange(300), i) for i in range(60_000)]
    records[::1000] = [(rng.choice([2**64, -(2**70), 2**63 - 1]), -i) for i in range(60)]

    def spills(iterator):
        from ember.shuffle import task_spill_metrics
        return [(list(iterator), task_spill_metrics()["spills"])]
    if memory:
        sc._conf.set("spark.python.worker.memory", memory)
    try:
        for ascending in (True, False):
            expected = sorted(records, key=lambda r: r[0], reverse=not ascending)
            parts = sc.parallelize(records, 1).sortByKey(ascending, 4).mapPartitions(
                spills).collect()
            assert [r for part, _ in parts for r in part] == expected
            assert all(len(part) > 5000 for part, _ in parts)
            assert (sum(n for _, n in parts) > 0) == bool(memory)

            rdd = sc.parallelize(records, 6)
            source = {r: i for i, part in enumerate(rdd.glom().collect()) for r in part}
            got = rdd.sortByKey(ascending, 4).collect()
            assert [k for k, _ in got] == [k for k, _ in expected]
            for part in range(6):
                assert [r for r in got if source[r] == part] == \
                    [r for r in expected if source[r] == part]
    finally:
        sc._conf._settings.pop("spark.python.worker.memory", None)


def test_sort_by_key_raises_the_sample_jobs_error_for_a_record_without_a_key(sc):
    rdd = sc.parallelize([(3, "a"), 7, (1, "b")], 2)      # few records: all are sampled
    with pytest.raises(ember.JobFailedError, match="'int' object is not subscriptable"):
        rdd.sortByKey(numPartitions=2)


def test_sort_by(sc):
    assert sc.parallelize(TMP).sortBy(lambda x: x[0]).collect() == \
        [("1", 3), ("2", 5), ("a", 1), ("b", 2), ("d", 4)]
    assert sc.parallelize(TMP).sortBy(lambda x: x[1]).collect() == \
        [("a", 1), ("b", 2), ("1", 3), ("d", 4), ("2", 5)]
    words = sc.parallelize("the quick brown fox jumps over the lazy dog".split(), 3)
    assert words.sortBy(len, ascending=False, numPartitions=2).collect()[:3] == \
        ["quick", "brown", "jumps"]


def test_repartition_and_sort_within_partitions(sc):
    rdd = sc.parallelize([(0, 5), (3, 8), (2, 6), (0, 8), (3, 8), (1, 3)])
    rdd2 = rdd.repartitionAndSortWithinPartitions(2, lambda x: x % 2, True)
    parts = rdd2.glom().collect()
    assert [[k for k, _ in p] for p in parts] == [[0, 0, 2], [1, 3, 3]]
    assert sorted(parts[0]) == [(0, 5), (0, 8), (2, 6)]
    desc = rdd.repartitionAndSortWithinPartitions(2, lambda x: x % 2, False)
    assert [[k for k, _ in p] for p in desc.glom().collect()] == [[2, 0, 0], [3, 3, 1]]


def test_sample_matches_pysparks_sampler(sc):
    rdd = sc.parallelize(range(100), 4)
    parts = rdd.glom().collect()
    for fraction, seed in ((0.1, 81), (0.3, 7), (0.5, 123456789)):
        assert rdd.sample(False, fraction, seed).collect() == \
            _reference_sample(parts, fraction, seed)
    assert 6 <= rdd.sample(False, 0.1, 81).count() <= 14
    assert rdd.sample(False, 0.3, 7).collect() != rdd.sample(False, 0.3, 8).collect()
    assert rdd.sample(False, 0.0, 1).collect() == []
    assert rdd.sample(False, 1.0, 1).collect() == list(range(100))
    with_repl = rdd.sample(True, 2.0, 3).collect()
    assert with_repl == rdd.sample(True, 2.0, 3).collect()
    assert 120 < len(with_repl) < 280 and set(with_repl) <= set(range(100))
    assert len(rdd.sample(True, 25.0, 3).collect()) > 2000          # the log-domain branch
    unseeded = rdd.sample(False, 0.5)
    assert 20 < unseeded.count() < 80
    with pytest.raises(ValueError, match="nonnegative"):
        rdd.sample(False, -0.1)


def test_random_split(sc):
    rdd = sc.parallelize(range(500), 1)
    rdd1, rdd2 = rdd.randomSplit([2, 3], 17)
    a, b = rdd1.collect(), rdd2.collect()
    assert sorted(a + b) == list(range(500)) and not set(a) & set(b)
    assert 150 < len(a) < 250 and 250 < len(b) < 350
    assert [r.collect() for r in rdd.randomSplit([2, 3], 17)] == [a, b]
    rng = random.Random(17)
    for _ in range(10):
        rng.randint(0, 1)
    draws = [rng.random() for _ in range(500)]
    assert a == [x for x, d in zip(range(500), draws) if d < 0.4]
    parts = sc.parallelize(range(1000), 4).randomSplit([1, 1, 2])
    assert sorted(sum((p.collect() for p in parts), [])) == list(range(1000))
    with pytest.raises(ValueError):
        rdd.randomSplit([1, -1])
    with pytest.raises(ValueError):
        rdd.randomSplit([0, 0])


def test_take_sample(sc):
    rdd = sc.parallelize(range(0, 10))
    assert len(rdd.takeSample(True, 20, 1)) == 20
    assert len(rdd.takeSample(False, 5, 2)) == 5
    assert sorted(rdd.takeSample(False, 15, 3)) == list(range(10))
    assert rdd.takeSample(False, 5, 2) == rdd.takeSample(False, 5, 2)
    assert rdd.takeSample(True, 7, 11) == rdd.takeSample(True, 7, 11)
    assert len(set(rdd.takeSample(False, 10, 4))) == 10
    assert set(rdd.takeSample(True, 50, 7)) <= set(range(10))
    # without replacement and num >= count: the whole RDD shuffled with Random(seed)
    everything = list(range(10))
    random.Random(3).shuffle(everything)
    assert rdd.takeSample(False, 15, 3) == everything
    big = sc.parallelize(range(10_000), 4)
    picked = big.takeSample(False, 50, 9)
    assert len(set(picked)) == 50 and picked == big.takeSample(False, 50, 9)
    assert rdd.takeSample(False, 0) == [] and sc.emptyRDD().takeSample(True, 3) == []
    with pytest.raises(ValueError, match="negative"):
        rdd.takeSample(False, -1)
    with pytest.raises(ValueError, match="Sample size cannot be greater than"):
        sc.range(0, 10).takeSample(False, 2 ** 63 - 1)


def test_sample_by_key(sc):
    fractions = {"a": 0.2, "b": 0.1}
    rdd = sc.parallelize(fractions.keys()).cartesian(sc.parallelize(range(0, 1000)))
    sample = dict(rdd.sampleByKey(False, fractions, 2).groupByKey().collect())
    assert 100 < len(sample["a"]) < 300 and 50 < len(sample["b"]) < 150
    assert max(sample["a"]) <= 999 and min(sample["a"]) >= 0
    again = dict(rdd.sampleByKey(False, fractions, 2).groupByKey().mapValues(list).collect())
    assert again["a"] == list(sample["a"])
    with_replacement = rdd.sampleByKey(True, {"a": 2.0, "b": 0.0}, 5).countByKey()
    assert 1700 < with_replacement["a"] < 2300 and "b" not in with_replacement
