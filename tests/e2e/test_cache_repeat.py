"""A task whose plan computes a persisted partition twice (a join of a cached RDD
with a map of it, as PageRank's first iteration) computes it once: the second
read replays the cache tee's records ("repeat" leaves, docs/ARCHITECTURE.md
"Task plans"). Every way of replaying — the objects the tee keeps, its frames in
memory (object cache off), its frames spilled to a file (a tiny memory limit),
after a reader stopped early, under a second persisted RDD — gives what the
same lineage without persistence gives (which computes both reads), and leaves
a whole cache block behind."""

from __future__ import annotations

from fractions import Fraction
from itertools import islice

import pytest

from ember import SparkContext

from conftest import Gateway, job_stages, last_job

OBJECT_CACHE = "spark.ember.pyexec.objectCache"
WORKER_MEMORY = "spark.python.worker.memory"


def edges() -> list[tuple[str, str]]:
    return [(str(i % 97), str((i * 7919) % 1009)) for i in range(20_000)]


def links_of(sc: SparkContext):
    return sc.parallelize(edges(), 4).distinct(4).groupByKey(4)


def joined(links) -> list:
    ranks = links.mapValues(lambda _: Fraction(1))      # exact: sums in any order agree
    contribs = links.join(ranks).flatMap(
        lambda kv: [(url, kv[1][1] / len(kv[1][0])) for url in kv[1][0]])
    return sorted(contribs.reduceByKey(lambda a, b: a + b, 4).collect())


def reads_of_groups(gw: Gateway, sc: SparkContext) -> float:
    """How many times the newest job's join stage read the groupByKey's shuffle output."""
    stages = job_stages(gw, sc.applicationId, last_job(gw, sc.applicationId)["jobId"])
    (grouping,) = [s for s in stages if s["name"].startswith("groupByKey")]
    (reader,) = [s for s in stages if grouping["stageId"] in s["parentIds"]]
    return reader["shuffleReadBytes"] / grouping["shuffleWriteBytes"]


@pytest.mark.parametrize("props", [{}, {OBJECT_CACHE: "0"}, {OBJECT_CACHE: "0", WORKER_MEMORY: "8k"},
                                   {OBJECT_CACHE: "20k"}])
def test_join_with_a_map_of_itself_reads_the_groups_once(sc: SparkContext, props: dict) -> None:
    gw = Gateway.of(sc)
    for key, value in props.items():
        sc.setLocalProperty(key, value)
    try:
        expected = joined(links_of(sc))                   # not persisted: both sides computed
        assert reads_of_groups(gw, sc) == 2
        links = links_of(sc).cache()
        assert joined(links) == expected                  # one side replays the other
        assert reads_of_groups(gw, sc) == 1
        # The block written while replaying is whole: read back it gives the same.
        groups = sorted((k, sorted(v)) for k, v in links_of(sc).collect())
        assert sorted((k, sorted(v)) for k, v in links.collect()) == groups
        assert joined(links) == expected                  # later jobs read the block
        links.unpersist()
    finally:
        for key in props:
            sc.setLocalProperty(key, None)


def test_repeat_after_a_reader_stopped_early_finishes_both_caches(sc: SparkContext) -> None:
    """cartesian partition (i, i) reads partition i of `outer` (persisted, over the
    persisted `inner`) and stops after 300 of its 1333 records, then reads
    partition i of `inner` again: the replay first finishes outer's tee, then
    inner's, so both blocks hold every record."""
    pairs = [(i % 4000, i) for i in range(12_000)]
    groups = {}
    for k, v in pairs:
        groups.setdefault(k, []).append(v)
    expected = sorted([(300, k) for k in groups] * 3)
    for cache_size in (None, "0"):
        sc.setLocalProperty(OBJECT_CACHE, cache_size)
        try:
            inner = sc.parallelize(pairs, 3).groupByKey(3).mapValues(sorted).cache()
            outer = inner.mapValues(len).cache()
            got = outer.mapPartitions(lambda it: [sum(1 for _ in islice(it, 300))]).cartesian(
                inner.map(lambda kv: kv[0])).collect()
            assert sorted(got) == expected
            assert sorted(outer.collect()) == sorted((k, 3) for k in groups)
            assert sorted(inner.collect()) == sorted(groups.items())
            outer.unpersist()
            inner.unpersist()
        finally:
            sc.setLocalProperty(OBJECT_CACHE, None)


@pytest.mark.parametrize("cache_size", [None, "0"])
def test_a_child_read_partly_leaves_the_next_child_its_own_input(sc: SparkContext,
                                                                   cache_size) -> None:
    """cartesian's first child stops after 300 records of a cached partition (kept
    as objects, or read as bytes): the rest of its input, or its END alone, is
    skipped, not read as the second child's input (which came out empty)."""
    pairs = [(i % 4000, i) for i in range(12_000)]
    sc.setLocalProperty(OBJECT_CACHE, cache_size)
    try:
        other = sc.parallelize(pairs, 3).groupByKey(3).map(lambda kv: kv[0])
        sizes = other.glom().map(len).collect()
        inner = sc.parallelize(pairs, 3).groupByKey(3).mapValues(sorted).cache()
        assert inner.count() == 4000
        left = inner.mapValues(len).mapPartitions(lambda it: [sum(1 for _ in islice(it, 300))])
        got = left.cartesian(other.mapPartitions(lambda it: [len(list(it))])).collect()
        assert got == [(300, n) for _ in range(3) for n in sizes]
        inner.unpersist()
    finally:
        sc.setLocalProperty(OBJECT_CACHE, None)


@pytest.mark.parametrize("props", [{OBJECT_CACHE: "0"}, {OBJECT_CACHE: "0", WORKER_MEMORY: "8k"}])
def test_pickled_cache_batches_replay_as_written(sc: SparkContext, props: dict) -> None:
    """Records that record frames cannot hold (Fractions) go to the cache pickled, written
    with the 4-byte cache index from write_frame's own buffer: the replay (frames in memory
    or spilled to a file) must read the pickle alone, not the index in front of it."""
    def exact_links(persist: bool):
        links = sc.parallelize([(str(i % 97), Fraction(i, 7)) for i in range(5_000)],
                               4).groupByKey(4).mapValues(sorted)
        return links.cache() if persist else links

    def joined_exact(links) -> list:
        return sorted(links.join(links.mapValues(len)).mapValues(
            lambda pair: sum(pair[0]) / pair[1]).collect())

    for key, value in props.items():
        sc.setLocalProperty(key, value)
    try:
        expected = joined_exact(exact_links(False))
        links = exact_links(True)
        assert joined_exact(links) == expected
        assert joined_exact(links) == expected            # and from the block written meanwhile
        links.unpersist()
    finally:
        for key in props:
            sc.setLocalProperty(key, None)
