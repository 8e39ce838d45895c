"""The same workloads for Dask distributed: Dask bag where Dask has the operation (word
count's frequencies, groupby), futures kept on the workers where the algorithm is iterative
(links and points stay in worker memory between iterations, as Ember's cache() keeps them).

Each takes a distributed.Client and the spec and returns what spark_workloads returns.
Partitioning by hash(str) needs the same PYTHONHASHSEED in every worker: the runner sets it.
"""

from __future__ import annotations

import operator
import os
import pickle
import time
from collections import defaultdict

from suite import common, memory


def word_count(client, spec: dict) -> dict:
    import dask.bag as db
    started = time.perf_counter()
    counts = db.read_text(os.path.join(spec["input"], "part-*")).str.split().flatten().frequencies()
    os.makedirs(spec["output"], exist_ok=True)
    counts.map(lambda kv: f"{kv[0]}\t{kv[1]}").to_textfiles(
        os.path.join(spec["output"], "part-*.txt"))
    wall = time.perf_counter() - started
    return {"wall_s": wall, "check": common.word_count_check(common.read_count_files(spec["output"]))}


def _edges_by_source(path: str, parts: int) -> list[dict]:
    buckets = [defaultdict(set) for _ in range(parts)]
    with open(path) as fh:
        for line in fh:
            src, dst = line.split()
            buckets[hash(src) % parts][src].add(dst)
    return buckets


def _merge_links(*pieces) -> dict:
    merged: dict = defaultdict(set)
    for piece in pieces:
        for src, targets in piece.items():
            merged[src] |= targets
    return {src: list(targets) for src, targets in merged.items()}


def _initial_ranks(links: dict) -> dict:
    return {url: 1.0 for url in links}


def _contributions(links: dict, ranks: dict, parts: int) -> list[dict]:
    buckets = [defaultdict(float) for _ in range(parts)]
    for url, targets in links.items():
        rank = ranks.get(url)
        if rank is None:
            continue
        share = rank / len(targets)
        for target in targets:
            buckets[hash(target) % parts][target] += share
    return buckets


def _new_ranks(*pieces) -> dict:
    sums: dict = defaultdict(float)
    for piece in pieces:
        for url, share in piece.items():
            sums[url] += share
    return {url: 0.15 + 0.85 * s for url, s in sums.items()}


def _pickled_buckets(produce, *args) -> list[bytes]:
    """produce(*args)'s buckets, each pickled: distributed 2022.12 moves a list of many
    Python objects between workers element by element (a 1M-record exchange took 20 s as
    lists, under 1 s as pickled bytes), so every exchange here sends bytes."""
    return [pickle.dumps(bucket, pickle.HIGHEST_PROTOCOL) for bucket in produce(*args)]


def _unpickled_combine(combine, *pieces):
    return combine(*[pickle.loads(piece) for piece in pieces])


def _exchange(client, produce, args_per_producer: list, parts: int, combine) -> list:
    """All-to-all: producer i returns produce(*args_per_producer[i]), a list of parts buckets;
    returns parts futures, the k-th combining bucket k of every producer (Dask's task
    shuffle, written out)."""
    produced = [client.submit(_pickled_buckets, produce, *args, pure=False)
                for args in args_per_producer]
    pieces = [[client.submit(operator.getitem, p, k, pure=False) for k in range(parts)]
              for p in produced]
    return [client.submit(_unpickled_combine, combine, *[pieces[i][k] for i in range(len(produced))],
                          pure=False)
            for k in range(parts)]


def pagerank(client, spec: dict) -> dict:
    from distributed import wait
    parts = spec["parts"]
    files = common_files(spec["input"])
    started = time.perf_counter()
    links = _exchange(client, _edges_by_source, [(f, parts) for f in files], parts, _merge_links)
    ranks = [client.submit(_initial_ranks, l, pure=False) for l in links]
    times = []
    for _ in range(spec["iterations"]):
        began = time.perf_counter()
        ranks = _exchange(client, _contributions, [(l, r, parts) for l, r in zip(links, ranks)],
                          parts, _new_ranks)
        wait(ranks)
        times.append(time.perf_counter() - began)
    wall = time.perf_counter() - started
    merged: dict = {}
    for part in client.gather(ranks):
        merged.update(part)
    return {"wall_s": wall, "iterations": times, "check": common.pagerank_check(merged)}


def _load_points(path: str):
    with open(path) as fh:
        return common.parse_points_text(fh.read())


def _merge_stats(*stats):
    total = stats[0]
    for s in stats[1:]:
        total = common.kmeans_merge(total, s)
    return total


def kmeans(client, spec: dict) -> dict:
    import numpy as np
    centers = np.array(spec["initial_centers"])
    started = time.perf_counter()
    blocks = [client.submit(_load_points, f, pure=False) for f in common_files(spec["input"])]
    times = []
    cpu = [memory.tree_cpu_seconds(os.getpid())]
    for _ in range(spec["iterations"]):
        began = time.perf_counter()
        partials = [client.submit(common.kmeans_partial, b, centers, pure=False) for b in blocks]
        stats = client.submit(_merge_stats, *partials, pure=False).result()
        centers = common.kmeans_new_centers(stats, centers)
        times.append(time.perf_counter() - began)
        cpu.append(memory.tree_cpu_seconds(os.getpid()))
    wall = time.perf_counter() - started
    return {"wall_s": wall, "iterations": times, "iterations_cpu_s": memory.deltas(cpu),
            "check": common.kmeans_check(centers)}


def _record_bag(spec: dict):
    import dask.bag as db
    parts, total, seed = spec["parts"], spec["records"], spec["seed"]
    return db.from_sequence(range(parts), npartitions=parts).map_partitions(
        lambda idx: [r for i in idx for r in common.shuffle_records(i, parts, total, seed)])


def shuffle_group(client, spec: dict) -> dict:
    started = time.perf_counter()
    grouped = _record_bag(spec).groupby(operator.itemgetter(0), npartitions=spec["parts"],
                                        shuffle="tasks")
    digests = grouped.map_partitions(lambda groups: [common.group_digest(
        (key, [v for _, v in kvs]) for key, kvs in groups)]).compute()
    wall = time.perf_counter() - started
    return {"wall_s": wall, "check": common.add_digests(digests)}


def _sample_keys(records: list, n: int) -> list:
    step = max(1, len(records) // n)
    return [records[i][0] for i in range(0, len(records), step)]


def _split_by_range(records: list, bounds: list, parts: int) -> list[list]:
    buckets: list[list] = [[] for _ in range(parts)]
    for record in records:
        buckets[common.range_partition(bounds, record[0])].append(record)
    return buckets


def _sort_pieces(*pieces) -> list:
    out = [r for piece in pieces for r in piece]
    out.sort(key=operator.itemgetter(0))
    return out


def shuffle_sort(client, spec: dict) -> dict:
    """Dask bag has no sort: range partitioning on futures, as sortByKey does (sample the
    keys, split each partition by the bounds, sort each range)."""
    parts, total, seed = spec["parts"], spec["records"], spec["seed"]
    started = time.perf_counter()
    records = [client.submit(common.shuffle_records, i, parts, total, seed, pure=False)
               for i in range(parts)]
    samples = client.gather([client.submit(_sample_keys, r, 20 * parts, pure=False)
                             for r in records])
    bounds = common.range_bounds([k for s in samples for k in s], parts)
    ranges = _exchange(client, _split_by_range, [(r, bounds, parts) for r in records], parts,
                       _sort_pieces)
    digests = client.gather([client.submit(common.sorted_digest, r, pure=False) for r in ranges])
    wall = time.perf_counter() - started
    return {"wall_s": wall, "check": common.sort_check(digests)}


def trivial_jobs(client, spec: dict) -> dict:
    times = []
    total = 0
    started = time.perf_counter()
    for _ in range(spec["repeat"]):
        began = time.perf_counter()
        total += sum(client.gather(client.map(common.tiny, [1, 2], pure=False)))
        times.append(time.perf_counter() - began)
    wall = time.perf_counter() - started
    return {"wall_s": wall, "jobs": times, "check": {"total": total}}


def tiny_tasks(client, spec: dict) -> dict:
    n = spec["tasks"]
    started = time.perf_counter()
    total = sum(client.gather(client.map(common.tiny, range(n), pure=False)))
    wall = time.perf_counter() - started
    return {"wall_s": wall, "check": {"total": total}}


def common_files(folder: str) -> list[str]:
    return sorted(os.path.join(folder, f) for f in os.listdir(folder) if f.startswith("part-"))


WORKLOADS = {
    "wordcount": word_count, "pagerank": pagerank, "kmeans": kmeans,
    "shuffle_group": shuffle_group, "shuffle_sort": shuffle_sort,
    "trivial": trivial_jobs, "tiny_tasks": tiny_tasks,
}
