"""The same workloads in one plain Python process (the peer every parallel engine must
beat), and the word-count reference scripts the issue names: a hand-optimized
Counter.update(f.read().split()) and multiprocessing.Pool(2) with Counter.

Functions take (None, spec) so the runner drives them like the cluster systems.
"""

from __future__ import annotations

import multiprocessing
import operator
import os
import time
from collections import Counter, defaultdict

from suite import common, memory


def _files(folder: str) -> list[str]:
    return sorted(os.path.join(folder, f) for f in os.listdir(folder) if f.startswith("part-"))


def _write_counts(counts: dict, folder: str) -> None:
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "part-00000"), "w") as fh:
        fh.writelines(f"{w}\t{c}\n" for w, c in counts.items())


def _finish_word_count(started: float, spec: dict) -> dict:
    wall = time.perf_counter() - started
    return {"wall_s": wall, "check": common.word_count_check(common.read_count_files(spec["output"]))}


def word_count(_, spec: dict) -> dict:
    """The PySpark program's per-record pipeline in one process: a flatMap lambda, a map
    lambda, and a dict combine."""
    flat = lambda line: line.split()  # noqa: E731 - the same lambdas the RDD program has
    pair = lambda word: (word, 1)  # noqa: E731
    started = time.perf_counter()
    counts: dict[str, int] = {}
    for path in _files(spec["input"]):
        with open(path) as fh:
            for line in fh:
                for word in flat(line):
                    key, one = pair(word)
                    counts[key] = counts[key] + one if key in counts else one
    _write_counts(counts, spec["output"])
    return _finish_word_count(started, spec)


def _count_file(path: str) -> Counter:
    counts: Counter = Counter()
    with open(path) as fh:
        counts.update(fh.read().split())
    return counts


def word_count_counter(_, spec: dict) -> dict:
    """Hand-optimized: Counter.update(f.read().split()) per file."""
    started = time.perf_counter()
    counts: Counter = Counter()
    for path in _files(spec["input"]):
        with open(path) as fh:
            counts.update(fh.read().split())
    _write_counts(counts, spec["output"])
    return _finish_word_count(started, spec)


def word_count_pool(_, spec: dict) -> dict:
    """multiprocessing.Pool(2), a Counter per file, merged in the parent."""
    started = time.perf_counter()
    counts: Counter = Counter()
    with multiprocessing.Pool(2) as pool:
        for part in pool.imap_unordered(_count_file, _files(spec["input"])):
            counts.update(part)
    _write_counts(counts, spec["output"])
    return _finish_word_count(started, spec)


def pagerank(_, spec: dict) -> dict:
    started = time.perf_counter()
    times = []
    began = started
    links: dict = defaultdict(set)
    for path in _files(spec["input"]):
        with open(path) as fh:
            for line in fh:
                src, dst = line.split()
                links[src].add(dst)
    ranks = {url: 1.0 for url in links}
    for _ in range(spec["iterations"]):
        sums: dict = defaultdict(float)
        for url, targets in links.items():
            rank = ranks.get(url)
            if rank is None:
                continue
            share = rank / len(targets)
            for target in targets:
                sums[target] += share
        ranks = {url: 0.15 + 0.85 * s for url, s in sums.items()}
        now = time.perf_counter()
        times.append(now - began)
        began = now
    wall = time.perf_counter() - started
    return {"wall_s": wall, "iterations": times, "check": common.pagerank_check(ranks)}


def kmeans(_, spec: dict) -> dict:
    import numpy as np
    centers = np.array(spec["initial_centers"])
    cpu = [memory.tree_cpu_seconds(os.getpid())]
    started = time.perf_counter()
    began = started
    blocks = []
    for path in _files(spec["input"]):
        with open(path) as fh:
            blocks.append(common.parse_points_text(fh.read()))
    points = np.vstack(blocks)
    del blocks
    times = []
    for _ in range(spec["iterations"]):
        centers = common.kmeans_new_centers(common.kmeans_partial(points, centers), centers)
        times.append(time.perf_counter() - began)
        cpu.append(memory.tree_cpu_seconds(os.getpid()))  # between iterations, not timed
        began = time.perf_counter()
    wall = time.perf_counter() - started
    return {"wall_s": wall, "iterations": times, "iterations_cpu_s": memory.deltas(cpu),
            "check": common.kmeans_check(centers)}


def _all_records(spec: dict) -> list:
    parts = spec["parts"]
    out: list = []
    for i in range(parts):
        out.extend(common.shuffle_records(i, parts, spec["records"], spec["seed"]))
    return out


def shuffle_group(_, spec: dict) -> dict:
    started = time.perf_counter()
    groups: dict = defaultdict(list)
    for key, value in _all_records(spec):
        groups[key].append(value)
    digest = common.group_digest(groups.items())
    wall = time.perf_counter() - started
    return {"wall_s": wall, "check": common.add_digests([digest])}


def shuffle_sort(_, spec: dict) -> dict:
    started = time.perf_counter()
    records = _all_records(spec)
    records.sort(key=operator.itemgetter(0))
    digest = common.sorted_digest(records)
    wall = time.perf_counter() - started
    return {"wall_s": wall, "check": common.sort_check([digest])}


def trivial_jobs(_, spec: dict) -> dict:
    times = []
    total = 0
    started = time.perf_counter()
    for _ in range(spec["repeat"]):
        began = time.perf_counter()
        total += sum(map(common.tiny, [1, 2]))
        times.append(time.perf_counter() - began)
    wall = time.perf_counter() - started
    return {"wall_s": wall, "jobs": times, "check": {"total": total}}


def tiny_tasks(_, spec: dict) -> dict:
    started = time.perf_counter()
    total = sum(map(common.tiny, range(spec["tasks"])))
    wall = time.perf_counter() - started
    return {"wall_s": wall, "check": {"total": total}}


WORKLOADS = {
    "wordcount": word_count, "pagerank": pagerank, "kmeans": kmeans,
    "shuffle_group": shuffle_group, "shuffle_sort": shuffle_sort,
    "trivial": trivial_jobs, "tiny_tasks": tiny_tasks,
}
COUNTER_WORKLOADS = {"wordcount": word_count_counter}
POOL_WORKLOADS = {"wordcount": word_count_pool}
