"""The floor of a workload over 2 cores: the user's own per-partition functions run by two
persistent worker processes with no engine at all (system ``floor2``, KMeans only).

It answers "how fast could any engine be here?": an engine on the same 2 cores must run
the same user code (common.parse_points_text, kmeans_partial, kmeans_merge) on the same
partitions, so its iteration cannot take less than this. A target asking for less than
the floor's time is below what the user's code alone needs.

KMeans is partitioned as Ember partitions it: textFile splits of the input (one per file
for the benchmark's 8 files of 24 MB, see spark_workloads.kmeans and ember.files), dealt
round-robin to the 2 workers, which is an even split. First iteration: each worker reads
its files, parses each (parse_points_text, without the engine's line splitting and
joining) and runs kmeans_partial on each block. Later iterations: kmeans_partial on the
blocks each worker already holds. The driver sends the centers down a pipe per iteration,
merges the per-block partial sums with kmeans_merge (as reduce does) and computes the new
centers. Worker start-up (a spawned interpreter importing numpy) is not timed, as Ember's
and Dask's cluster start is not.
"""

from __future__ import annotations

import multiprocessing
import os
import time

from suite import common, memory

FLOOR_WORKERS = 2


def _split_files(folder: str, workers: int) -> list[list[str]]:
    """The data files of folder dealt round-robin to workers (file i to worker i % workers)."""
    files = sorted(os.path.join(folder, f) for f in os.listdir(folder) if f.startswith("part-"))
    return [files[w::workers] for w in range(workers)]


def _kmeans_worker(conn, paths: list[str]) -> None:
    """Serves iterations until it receives None: centers in, one partial per block out.

    The first request also reads and parses the worker's files; the blocks then stay in
    this process's memory (the cache an engine would keep)."""
    import numpy as np  # noqa: F401 - imported before "ready", as a warm engine worker has it
    conn.send("ready")
    blocks = None
    while True:
        centers = conn.recv()
        if centers is None:
            break
        cpu = time.process_time()
        if blocks is None:
            blocks = []
            for path in paths:
                with open(path) as fh:
                    blocks.append(common.parse_points_text(fh.read()))
        partials = [common.kmeans_partial(block, centers) for block in blocks]
        conn.send((partials, time.process_time() - cpu))
    conn.close()


def kmeans(_, spec: dict) -> dict:
    import numpy as np
    centers = np.array(spec["initial_centers"])
    ctx = multiprocessing.get_context("spawn")
    began_start = time.perf_counter()
    conns, procs = [], []
    try:
        for paths in _split_files(spec["input"], FLOOR_WORKERS):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=_kmeans_worker, args=(child, paths), daemon=True)
            proc.start()
            child.close()
            conns.append(parent)
            procs.append(proc)
        for conn in conns:
            if conn.recv() != "ready":
                raise RuntimeError("floor worker did not start")
        startup = time.perf_counter() - began_start
        started = time.perf_counter()
        times, worker_cpu = [], []
        tree_cpu = [memory.tree_cpu_seconds(os.getpid())]
        for _ in range(spec["iterations"]):
            began = time.perf_counter()
            for conn in conns:
                conn.send(centers)
            stats = None
            cpus = []
            for conn in conns:
                partials, cpu = conn.recv()
                cpus.append(cpu)
                for partial in partials:
                    stats = partial if stats is None else common.kmeans_merge(stats, partial)
            centers = common.kmeans_new_centers(stats, centers)
            times.append(time.perf_counter() - began)
            worker_cpu.append(cpus)
            tree_cpu.append(memory.tree_cpu_seconds(os.getpid()))
        wall = time.perf_counter() - started
        for conn in conns:
            conn.send(None)
        for proc in procs:
            proc.join(30)
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.kill()
                proc.join()
    return {"wall_s": wall, "iterations": times, "startup_s": startup,
            "iterations_cpu_s": memory.deltas(tree_cpu), "worker_cpu_s": worker_cpu, "check": common.kmeans_check(centers)}


WORKLOADS = {"kmeans": kmeans}
