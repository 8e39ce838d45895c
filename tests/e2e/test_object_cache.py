"""Cached partitions kept as Python objects by the pyexec that computed or read
them (the worker sends no bytes while its block manager holds the very block
they came from): results equal those read from the block manager, the stage
and task JSON count the inputs served that way, and unpersist, a block written
again, a small budget or a memory budget make the pyexec read the bytes again."""

from __future__ import annotations

import random
from fractions import Fraction
from operator import add

import pytest

from conftest import Gateway, job_stages, last_job, start_sc
from ember import SparkContext

OBJECT_CACHE = "spark.ember.pyexec.objectCache"


def served(gw: Gateway, sc: SparkContext) -> int:
    """Inputs of the last job served from a pyexec's objects (its stages' counter)."""
    job = last_job(gw, sc.applicationId)
    return sum(s.get("objectCacheInputs", 0) for s in job_stages(gw, sc.applicationId,
                                                                  job["jobId"]))


def pagerank(sc: SparkContext, iterations: int, gw: Gateway) -> tuple[dict, list[int]]:
    """Spark's PageRank example on a small power-law graph: links grouped,
    cached and joined with the ranks every iteration (a co-partitioned hash join)."""
    def contributions(urls, rank):
        urls = list(urls)
        for url in urls:
            yield url, rank / len(urls)
    # Exact fractions: sums do not depend on the order in which a reduce task
    # happens to fetch its map outputs (floats would, with or without objects).
    one, damping, base = Fraction(1), Fraction(85, 100), Fraction(15, 100)
    rng = random.Random(7)
    edges = [(str(rng.randrange(300)), str(int(300 ** rng.random()) - 1)) for _ in range(3000)]
    edges += [("hub", str(i)) for i in range(50)] + [("hub", "hub")]
    links = sc.parallelize(edges, 3).distinct(3).groupByKey(3).cache()
    ranks = links.mapValues(lambda _: one)
    hits = []
    for _ in range(iterations):
        contribs = links.join(ranks).flatMap(lambda kv: contributions(kv[1][0], kv[1][1]))
        ranks = contribs.reduceByKey(add, 3).mapValues(lambda r: base + damping * r)
        ranks.count()
        hits.append(served(gw, sc))
    result = dict(ranks.collect())
    links.unpersist()
    return result, hits


@pytest.fixture(scope="module")
def sc(request: pytest.FixtureRequest) -> SparkContext:
    return start_sc(request, "e2e-object-cache")


def test_pagerank_with_objects_equals_pagerank_reading_blocks(sc: SparkContext) -> None:
    gw = Gateway.of(sc)
    with_objects, hits = pagerank(sc, 5, gw)
    sc.setLocalProperty(OBJECT_CACHE, "0")
    try:
        from_blocks, no_hits = pagerank(sc, 5, gw)
    finally:
        sc.setLocalProperty(OBJECT_CACHE, None)
    assert with_objects == from_blocks
    assert len(with_objects) > 250
    assert no_hits == [0] * 5
    # Every later iteration read all 3 cached partitions from the pyexecs' objects.
    assert hits[1:] == [3] * 4, hits


@pytest.mark.parametrize("kind", ["join", "leftOuterJoin", "rightOuterJoin", "fullOuterJoin"])
def test_joins_of_a_cached_side_kept_as_objects(sc: SparkContext, kind: str) -> None:
    gw = Gateway.of(sc)
    # Keys with several values, keys on one side only, and unhashable-looking values.
    left = sc.parallelize([(k % 13, [k]) for k in range(60)] + [("only-left", None)], 4) \
             .partitionBy(4).cache()
    right = sc.parallelize([(k % 17, k * 1.5) for k in range(40)] + [("only-right", 0)], 3) \
              .partitionBy(4)
    def joined() -> list[str]:
        # Sorted: the order of the right side's records depends on where its
        # shuffle's map outputs were fetched from, with or without objects.
        return sorted(map(repr, getattr(left, kind)(right).collect()))
    expected = joined()                # computes and caches left
    assert expected
    for _ in range(2):
        assert joined() == expected
        assert served(gw, sc) == 4
    sc.setLocalProperty(OBJECT_CACHE, "0")
    try:
        assert joined() == expected
        assert served(gw, sc) == 0
    finally:
        sc.setLocalProperty(OBJECT_CACHE, None)
    left.unpersist()


def test_unpersist_then_recompute_never_serves_the_old_objects(sc: SparkContext) -> None:
    gw = Gateway.of(sc)
    rdd = sc.parallelize(range(200), 2).map(lambda x: (x, random.random())).cache()
    first = rdd.collect()
    assert rdd.collect() == first
    assert served(gw, sc) == 2
    rdd.unpersist()
    rdd.cache()
    recomputed = rdd.collect()          # new random values, written as new blocks
    assert served(gw, sc) == 0
    assert recomputed != first
    assert rdd.collect() == recomputed  # the new blocks' objects, not the old ones
    assert served(gw, sc) == 2
    rdd.unpersist()


def test_a_budget_smaller_than_a_partition_keeps_nothing(sc: SparkContext) -> None:
    gw = Gateway.of(sc)
    sc.setLocalProperty(OBJECT_CACHE, "1k")
    try:
        rdd = sc.parallelize([str(i) * 50 for i in range(2000)], 2).cache()
        expected = rdd.collect()
        for _ in range(2):
            assert rdd.collect() == expected
            assert served(gw, sc) == 0
    finally:
        sc.setLocalProperty(OBJECT_CACHE, None)
    rdd.unpersist()


def test_the_object_cache_is_turned_off_from_sparkconf_too(sc: SparkContext) -> None:
    gw = Gateway.of(sc)
    rdd = sc.parallelize(range(100), 2).cache()
    expected = rdd.collect()
    sc._conf.set(OBJECT_CACHE, "0")     # as SparkConf().set(...) before the context would
    try:
        assert rdd.collect() == expected
        assert served(gw, sc) == 0
    finally:
        sc._conf.set(OBJECT_CACHE, "128m")
    assert rdd.collect() == expected    # read as bytes again, and kept (off dropped them)
    assert rdd.collect() == expected
    assert served(gw, sc) == 2
    rdd.unpersist()
