"""The master walks a stage's partitions from a cursor, not from 0 at each
report (master_sched.c). A partition the cursor has passed that becomes
pending again (its task failed, or the map output it made was lost) must still
run again: these jobs would hang or give a wrong result otherwise.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

TASKS = 200


def test_early_partition_failing_after_the_cursor_passed_it(sc, tmp_path: Path):
    """Partition 1 fails slowly, once: meanwhile the later partitions are
    launched and the cursor moves past it; its retry must still be launched."""
    marker = str(tmp_path / "failed-once")

    def slow_flaky(x):
        if x == 1 and not os.path.exists(marker):
            time.sleep(0.5)
            open(marker, "w").close()
            raise ValueError("first attempt fails")
        return x * 3
    got = sc.parallelize(range(TASKS), TASKS).map(slow_flaky).collect()
    assert got == [x * 3 for x in range(TASKS)]
    assert os.path.exists(marker)


def test_map_stage_with_an_early_failure_then_reduce(sc, tmp_path: Path):
    """The same in a map stage: the reduce stage starts only once every map
    output, the retried early one included, is there."""
    marker = str(tmp_path / "map-failed-once")

    def slow_flaky_pair(x):
        if x == 0 and not os.path.exists(marker):
            time.sleep(0.5)
            open(marker, "w").close()
            raise ValueError("first map attempt fails")
        return (x % 7, 1)
    counts = dict(sc.parallelize(range(TASKS), TASKS).map(slow_flaky_pair)
                  .reduceByKey(lambda a, b: a + b, 3).collect())
    assert counts == {k: len([x for x in range(TASKS) if x % 7 == k]) for k in range(7)}


def test_nodes_known_out_of_id_order_are_found(sc):
    """The master finds an application's nodes by binary search while they came
    in increasing id order; a node sent after one with a higher id must still
    be found (the search falls back to a scan), by later jobs naming it only."""
    from conftest import Gateway
    gw = Gateway.of(sc)
    app = sc.applicationId
    older = sc.parallelize([1, 2, 3], 1)
    newer = sc.parallelize([4, 5], 1)
    assert older.id < newer.id
    for rdd in (newer, older):         # the lower id arrives second
        status, body = gw.post(f"/api/v1/applications/{app}/jobs",
                               {"rdd": rdd.id, "nodes": [rdd._node()]})
        assert status == 201, body
    for rdd in (older, newer):
        status, body = gw.post(f"/api/v1/applications/{app}/jobs",
                               {"rdd": rdd.id, "nodes": []})
        assert status == 201, body
    status, body = gw.post(f"/api/v1/applications/{app}/jobs", {"rdd": 10 ** 6, "nodes": []})
    assert status == 400 and "not among the application's nodes" in str(body), (status, body)
