"""PageRank on a generated power-law graph, with and without cache() on the
links (partitioned with partitionBy, so the join never reshuffles them).

    /usr/bin/python3 bench/pagerank_cache.py [--edges 1000000] [--iterations 10] [--workers 2]

Prints each iteration's time, the ratio of the first iteration to the median
of the later ones, and cached-vs-uncached later iterations, all from one run.
Also times the same algorithm in one plain Python process for scale. Each
iteration's CPU time of the whole process tree (driver and local cluster) is
printed too: on a shared machine it moves less than wall time.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from operator import add

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "suite"))
from memory import tree_cpu_seconds  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python-client"))

from ember import SparkContext  # noqa: E402


def write_graph(path: str, edges: int, pages: int, seed: int = 3) -> None:
    """Sources uniform, destinations log-uniform: in-degrees follow a power law
    (a few pages are linked from everywhere), and nearly every edge is distinct."""
    rng = random.Random(seed)
    with open(path, "w") as fh:
        for _ in range(edges):
            src = rng.randrange(pages)
            dst = int(pages ** rng.random()) - 1
            fh.write(f"{src} {dst}\n")


def contributions(urls, rank):
    urls = list(urls)
    for url in urls:
        yield url, rank / len(urls)


def ember_pagerank(path: str, iterations: int, workers: int, cache: bool,
                   cpu: list[float]) -> list[float]:
    """Wall seconds per iteration; cpu gets the process tree's CPU seconds."""
    times = []
    with SparkContext(f"local[{workers}]", f"bench-pagerank-{'cache' if cache else 'nocache'}") as sc:
        parts = 2 * workers
        links = (sc.textFile(path, parts).map(lambda l: tuple(l.split()))
                   .distinct(parts).groupByKey(parts))
        if cache:
            links = links.cache()
        ranks = links.mapValues(lambda _: 1.0)
        for _ in range(iterations):
            started = time.perf_counter()
            cpu_started = tree_cpu_seconds(os.getpid())
            contribs = links.join(ranks).flatMap(lambda kv: contributions(kv[1][0], kv[1][1]))
            ranks = contribs.reduceByKey(add, parts).mapValues(lambda r: 0.15 + 0.85 * r)
            ranks.count()
            times.append(time.perf_counter() - started)
            cpu.append(tree_cpu_seconds(os.getpid()) - cpu_started)
    return times


def python_pagerank(path: str, iterations: int) -> list[float]:
    links = defaultdict(set)
    with open(path) as fh:
        for line in fh:
            src, dst = line.split()
            links[src].add(dst)
    ranks = {url: 1.0 for url in links}
    times = []
    for _ in range(iterations):
        started = time.perf_counter()
        sums: dict[str, float] = defaultdict(float)
        for url, targets in links.items():
            rank = ranks.get(url)
            if rank is None:
                continue
            share = rank / len(targets)
            for t in targets:
                sums[t] += share
        ranks = {url: 0.15 + 0.85 * s for url, s in sums.items()}
        times.append(time.perf_counter() - started)
    return times


def report(name: str, times: list[float], cpu: list[float] | None = None) -> tuple[float, float]:
    later = statistics.median(times[1:]) if len(times) > 1 else times[0]
    print(f"{name}: " + " ".join(f"{t:.2f}" for t in times) + " s")
    print(f"  first / median of later iterations: {times[0] / later:.1f}x "
          f"(median later {later:.3f} s)")
    if not cpu:
        return later, later
    later_cpu = statistics.median(cpu[1:]) if len(cpu) > 1 else cpu[0]
    print("  CPU of the process tree: " + " ".join(f"{t:.2f}" for t in cpu)
          + f" s (median later {later_cpu:.3f} s)")
    return later, later_cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--edges", type=int, default=1_000_000)
    parser.add_argument("--pages", type=int, default=200_000)
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "edges.txt")
        write_graph(path, args.edges, args.pages)
        print(f"graph: {args.edges} edges over {args.pages} pages (power law), "
              f"{args.iterations} iterations, {args.workers} workers")
        cpu_cached: list[float] = []
        cpu_uncached: list[float] = []
        cached, cached_cpu = report("ember, links cached", ember_pagerank(
            path, args.iterations, args.workers, True, cpu_cached), cpu_cached)
        uncached, uncached_cpu = report("ember, links not cached", ember_pagerank(
            path, args.iterations, args.workers, False, cpu_uncached), cpu_uncached)
        plain, _ = report("one Python process", python_pagerank(path, args.iterations))
    print(f"later iterations, uncached / cached: {uncached / cached:.1f}x "
          f"(CPU time: {uncached_cpu / cached_cpu:.1f}x)")
    print(f"later iterations, one Python process / ember cached: {plain / cached:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
