"""The pyexec's C steps of groupByKey's values, mapValues, count and reduceByKey(add)
over floats (services/pyexec/pyexec_values.c, pyexec_fast.c) on a real cluster,
against the pure-Python code the driver runs: same values, types and errors."""

from __future__ import annotations

import operator
from collections.abc import Iterable

import pytest

from ember import SparkContext
from ember.resultiterable import ResultIterable

import cloudpickle
import sys

# The tests' functions run on the workers, which cannot import this module.
cloudpickle.register_pickle_by_value(sys.modules[__name__])

def _observed(pair):
    k, values = pair
    attributes = vars(values)
    return (k, type(values).__module__, type(values).__qualname__,
            isinstance(values, Iterable), sorted(attributes), attributes["index"],
            attributes["maxindex"], sorted(attributes["data"], key=str), len(values),
            bool(values), sorted(values, key=str), repr(values))


def test_group_values_on_workers_behave_as_the_drivers_class(sc: SparkContext) -> None:
    records = [(i % 7, i) for i in range(200)] + [("solo", None)]
    seen = sorted(sc.parallelize(records, 4).groupByKey(3).map(_observed).collect(), key=str)

    groups: dict = {}
    for k, v in records:
        groups.setdefault(k, []).append(v)
    expected = sorted((_observed((k, ResultIterable(vs))) for k, vs in groups.items()), key=str)
    assert seen == expected
    # the workers' class is the C-slotted one, the driver's the pure-Python one
    bases = sc.parallelize([1], 1).map(
        lambda _: [c.__name__ for c in ResultIterable.__mro__]).collect()[0]
    assert "ResultIterableBase" in bases


def test_group_values_come_back_to_the_driver_as_result_iterables(sc: SparkContext) -> None:
    got = dict(sc.parallelize([("a", 1), ("b", 2), ("a", 3)], 2).groupByKey(2).collect())
    assert type(got["a"]) is ResultIterable and sorted(got["a"]) == [1, 3]
    assert vars(got["b"]) == {"data": [2], "index": 0, "maxindex": 1}


def test_map_values_and_count_give_python_results_and_errors(sc: SparkContext) -> None:
    records = [("a", 1), ["b", 2], ("c", 3, "extra"), ("d", 4)]
    rdd = sc.parallelize(records, 2)
    assert rdd.mapValues(lambda v: v * 10).collect() == [
        (r[0], r[1] * 10) for r in records]
    assert rdd.mapValues(str).count() == 4
    assert sc.parallelize(range(12345), 3).count() == 12345
    assert sc.parallelize([], 2).count() == 0

    with pytest.raises(Exception) as info:
        sc.parallelize([("a", 1), ("b",)], 1).mapValues(str).collect()
    assert "IndexError" in str(info.value) and "tuple index out of range" in str(info.value)
    with pytest.raises(Exception) as info:
        sc.parallelize([("a", 1), ("b", 0)], 1).mapValues(lambda v: 1 / v).count()
    assert "ZeroDivisionError" in str(info.value)


def test_pagerank_steps_match_a_python_run(sc: SparkContext) -> None:
    """join -> contributions -> reduceByKey(add) -> mapValues -> count, as the
    benchmark runs it; dyadic ranks, so sums in any order are exact and the
    cluster's floats must equal the reference's bit for bit."""
    edges = [(f"p{i}", f"p{(i * 7 + j * 5 + 3) % 41}")     # out-degrees 1, 2, 4 and 8
             for i in range(37) for j in range(1 << (i % 4))]

    def contributions(urls, rank):
        urls = list(urls)
        for url in urls:
            yield url, rank / len(urls)

    def in_python(iterations):
        links: dict = {}
        for a, b in edges:
            links.setdefault(a, []).append(b)
        ranks = {k: 1.0 for k in links}
        for _ in range(iterations):
            sums: dict = {}
            for k, urls in links.items():
                if k in ranks:
                    for url, c in contributions(urls, ranks[k]):
                        sums[url] = sums.get(url, 0.0) + c
            ranks = {k: v / 2 for k, v in sums.items()}
        return ranks

    links = sc.parallelize(edges, 3).distinct(4).groupByKey(4).cache()
    ranks = links.mapValues(lambda _: 1.0)
    for _ in range(3):
        contribs = links.join(ranks).flatMap(lambda kv: contributions(kv[1][0], kv[1][1]))
        ranks = contribs.reduceByKey(operator.add, 4).mapValues(lambda r: r / 2)
        ranks.count()
    got = dict(ranks.collect())
    assert got == in_python(3)
    assert all(type(v) is float for v in got.values())


def test_reduce_by_key_add_read_as_frames_counts_and_sums_as_a_lambda(sc: SparkContext,
                                                                       gateway) -> None:
    """reduceByKey(add)'s reduce side reads its shuffle input as raw record frames
    (_ember_fast.merge_float_frame): the same sums, types and stage record counts as
    a merge function it does not recognise, with ints, non-ASCII keys and a cached
    input mixed in."""
    from conftest import job_stages, last_job
    pairs = [(f"k{i % 997}", i / 8) for i in range(20_000)]
    pairs += [("é", 1.5), ("k1", 2), ("", 0.25), ("k2", True)]
    cached = sc.parallelize(pairs, 3).cache()
    cached.count()
    app = sc.applicationId

    def run(merge):
        got = cached.reduceByKey(merge, 4).collect()
        stages = job_stages(gateway, app, last_job(gateway, app)["jobId"])
        counts = sorted((s["inputRecords"], s["outputRecords"]) for s in stages
                        if s["status"] == "COMPLETE")
        return sorted((k, type(v), v) for k, v in got), counts

    fast, slow = run(operator.add), run(lambda a, b: a + b)
    assert fast == slow
    assert len(fast[0]) == 999
    assert fast[1][-1][0] == len(pairs)
