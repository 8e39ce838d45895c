"""The pyexec's garbage collector settings (worker_runtime.GC_THRESHOLDS): full collections
are rarer than Python's default, and cyclic garbage made inside a long task is still
collected while the task runs, so its memory stays bounded."""

from __future__ import annotations

import gc

from ember import SparkContext


def test_tasks_run_with_the_runtimes_collector_thresholds(sc: SparkContext) -> None:
    def thresholds(_):
        from ember import worker_runtime     # importable only inside a pyexec
        return gc.get_threshold(), worker_runtime.GC_THRESHOLDS

    seen = sc.parallelize(range(4), 4).map(thresholds).collect()
    assert all(current == configured for current, configured in seen)
    assert seen[0][0][2] > 10                 # rarer full collections than Python's default


def test_cyclic_garbage_of_a_long_task_is_collected_while_it_runs(sc: SparkContext) -> None:
    def most_alive_at_once(records):
        class Node:
            alive = 0
            most = 0

            def __init__(self) -> None:
                Node.alive += 1
                Node.most = max(Node.most, Node.alive)
                self.me = self            # a cycle: only the collector frees it
                self.payload = bytes(1024)

            def __del__(self) -> None:
                Node.alive -= 1

        kept = []                         # long-lived objects the full collections walk
        for i in records:
            Node()
            if i % 10 == 0:
                kept.append([i])
        yield Node.most

    most = sc.parallelize(range(300_000), 1).mapPartitions(most_alive_at_once).collect()
    # Without collections during the task, all 300,000 (300 MB) would be alive at the end.
    assert most[0] < 20_000
