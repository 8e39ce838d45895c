"""The workloads written once against the PySpark RDD API (run here by Ember).

Each takes a ready SparkContext and the spec of its input, and returns a dict with
``wall_s``, optionally ``iterations`` (seconds each) and ``check`` (see common.py). Timing
starts at the first RDD call and stops when the output exists; building the check after
that is not timed.
"""

from __future__ import annotations

import os
import time
from operator import add

from suite import common, memory


def _parts(spec: dict) -> str:
    """The data files of the input folder (not its meta.json)."""
    return os.path.join(spec["input"], "part-*")


def word_count(sc, spec: dict) -> dict:
    started = time.perf_counter()
    counts = (sc.textFile(_parts(spec))
              .flatMap(lambda line: line.split())
              .map(lambda word: (word, 1))
              .reduceByKey(add))
    counts.map(lambda kv: f"{kv[0]}\t{kv[1]}").saveAsTextFile(spec["output"])
    wall = time.perf_counter() - started
    return {"wall_s": wall, "check": common.word_count_check(common.read_count_files(spec["output"]))}


def pagerank(sc, spec: dict) -> dict:
    """The classic Spark PageRank: links grouped (hash-partitioned) and cached, then per
    iteration join + contributions + reduceByKey; each iteration ends with an action."""
    parts = spec["parts"]
    started = time.perf_counter()
    links = (sc.textFile(_parts(spec), parts).map(lambda line: tuple(line.split()))
             .distinct(parts).groupByKey(parts).cache())
    ranks = links.mapValues(lambda _: 1.0)
    times = []
    for _ in range(spec["iterations"]):
        began = time.perf_counter()
        contribs = links.join(ranks).flatMap(
            lambda kv: common.contributions(kv[1][0], kv[1][1]))
        ranks = contribs.reduceByKey(add, parts).mapValues(lambda r: 0.15 + 0.85 * r)
        ranks.count()
        times.append(time.perf_counter() - began)
    wall = time.perf_counter() - started
    return {"wall_s": wall, "iterations": times,
            "check": common.pagerank_check(dict(ranks.collect()))}


def kmeans(sc, spec: dict) -> dict:
    """Lloyd's algorithm over points cached as one numpy block per partition; the centers
    travel in each iteration's closure."""
    import numpy as np
    centers = np.array(spec["initial_centers"])
    started = time.perf_counter()
    points = sc.textFile(_parts(spec), spec["parts"]).mapPartitions(
        lambda lines: [common.parse_points(lines)]).cache()
    times = []
    cpu = [memory.tree_cpu_seconds(os.getpid())]
    for _ in range(spec["iterations"]):
        began = time.perf_counter()
        current = centers
        stats = points.map(lambda block: common.kmeans_partial(block, current)).reduce(
            common.kmeans_merge)
        centers = common.kmeans_new_centers(stats, centers)
        times.append(time.perf_counter() - began)
        cpu.append(memory.tree_cpu_seconds(os.getpid()))
    wall = time.perf_counter() - started
    return {"wall_s": wall, "iterations": times, "iterations_cpu_s": memory.deltas(cpu),
            "check": common.kmeans_check(centers)}


def _records(sc, spec: dict):
    parts, total, seed = spec["parts"], spec["records"], spec["seed"]
    return sc.parallelize(range(parts), parts).flatMap(
        lambda i: common.shuffle_records(i, parts, total, seed))


def shuffle_group(sc, spec: dict) -> dict:
    started = time.perf_counter()
    digests = (_records(sc, spec).groupByKey(spec["parts"])
               .mapPartitions(lambda groups: [common.group_digest(groups)]).collect())
    wall = time.perf_counter() - started
    return {"wall_s": wall, "check": common.add_digests(digests)}


def shuffle_sort(sc, spec: dict) -> dict:
    started = time.perf_counter()
    digests = (_records(sc, spec).sortByKey(True, spec["parts"])
               .mapPartitions(lambda records: [common.sorted_digest(records)]).collect())
    wall = time.perf_counter() - started
    return {"wall_s": wall, "check": common.sort_check(digests)}


def trivial_jobs(sc, spec: dict) -> dict:
    """A 2-task job, spec["repeat"] times; reports each round trip."""
    times = []
    total = 0
    started = time.perf_counter()
    for _ in range(spec["repeat"]):
        began = time.perf_counter()
        total += sum(sc.parallelize([1, 2], 2).map(common.tiny).collect())
        times.append(time.perf_counter() - began)
    wall = time.perf_counter() - started
    return {"wall_s": wall, "jobs": times, "check": {"total": total}}


def tiny_tasks(sc, spec: dict) -> dict:
    """spec["tasks"] one-element tasks in one job."""
    n = spec["tasks"]
    started = time.perf_counter()
    total = sc.parallelize(range(n), n).map(common.tiny).sum()
    wall = time.perf_counter() - started
    return {"wall_s": wall, "check": {"total": total}}


WORKLOADS = {
    "wordcount": word_count, "pagerank": pagerank, "kmeans": kmeans,
    "shuffle_group": shuffle_group, "shuffle_sort": shuffle_sort,
    "trivial": trivial_jobs, "tiny_tasks": tiny_tasks,
}
