"""Runs one workload on one system in this (fresh) process and writes its result as JSON.

    python3 -m suite.runner SYSTEM WORKLOAD SPEC.json OUT.json     (with bench/ on sys.path)

The orchestrator (bench/bench_suite.py) starts one runner per (system, workload) and samples
the memory of the runner's whole process tree: Ember's daemons and Python subprocesses, or
Dask's scheduler, nannies and workers, are all its descendants.
"""

from __future__ import annotations

import json
import logging
import os
import statistics
import sys
import time

BENCH_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPO_DIR = os.path.dirname(BENCH_DIR)
sys.path.insert(0, os.path.join(REPO_DIR, "python-client"))

CLUSTER_WORKERS = 2
STARTUP_REPEAT = 3


def start_ember():
    from ember import SparkContext
    began = time.perf_counter()
    sc = SparkContext(f"local[{CLUSTER_WORKERS}]", "ember-bench-suite")
    return sc, time.perf_counter() - began


def start_dask():
    from distributed import Client, LocalCluster
    began = time.perf_counter()
    cluster = LocalCluster(n_workers=CLUSTER_WORKERS, threads_per_worker=1, processes=True,
                           host="127.0.0.1", dashboard_address=None,
                           silence_logs=logging.ERROR)
    client = Client(cluster)
    return (cluster, client), time.perf_counter() - began


def stop_ember(sc) -> None:
    sc.stop()


def stop_dask(handle) -> None:
    cluster, client = handle
    client.close()
    cluster.close()


def startup(system: str) -> dict:
    """Cluster start until ready for the first job, and that first (2-task) job, repeated."""
    from suite import common
    ready, first = [], []
    for _ in range(STARTUP_REPEAT):
        if system == "ember":
            sc, took = start_ember()
            began = time.perf_counter()
            sc.parallelize([1, 2], 2).map(common.tiny).collect()
            first.append(time.perf_counter() - began)
            stop_ember(sc)
        else:
            handle, took = start_dask()
            began = time.perf_counter()
            handle[1].gather(handle[1].map(common.tiny, [1, 2], pure=False))
            first.append(time.perf_counter() - began)
            stop_dask(handle)
        ready.append(took)
    return {"wall_s": statistics.median(ready), "ready_s": ready, "first_job_s": first,
            "check": {}}


def run(system: str, workload: str, spec: dict) -> dict:
    import cloudpickle
    from suite import common, dask_workloads, floor_workloads, python_workloads, spark_workloads
    # Ship the suite's helpers by value: the Ember and Dask workers need not import them.
    cloudpickle.register_pickle_by_value(common)
    if workload == "startup":
        return startup(system)
    if system == "ember":
        fn = spark_workloads.WORKLOADS[workload]
        sc, took = start_ember()
        try:
            result = fn(sc, spec)
        finally:
            stop_ember(sc)
        result["startup_s"] = took
        return result
    if system == "dask":
        fn = dask_workloads.WORKLOADS[workload]
        handle, took = start_dask()
        try:
            result = fn(handle[1], spec)
        finally:
            stop_dask(handle)
        result["startup_s"] = took
        return result
    table = {"python": python_workloads.WORKLOADS, "counter": python_workloads.COUNTER_WORKLOADS,
             "pool2": python_workloads.POOL_WORKLOADS, "floor2": floor_workloads.WORKLOADS}[system]
    return table[workload](None, spec)


def main() -> int:
    system, workload, spec_path, out_path = sys.argv[1:5]
    with open(spec_path) as fh:
        spec = json.load(fh)
    result = run(system, workload, spec)
    with open(out_path, "w") as fh:
        json.dump(result, fh)
    return 0


if __name__ == "__main__":
    sys.exit(main())
