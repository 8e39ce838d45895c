"""Chaos: word-count and groupBy jobs in a row while a random worker, block
manager or Python subprocess of the cluster is SIGKILLed every few seconds
(killed daemons are restarted, as a supervisor would). Every result is checked
against the same computation done locally; all must be right.

About 45 s for the 20 jobs on two cores; EMBER_CHAOS_JOBS and EMBER_CHAOS_SEED
change the count and the random choices. The figures (jobs, kills by kind,
failed task attempts and retries from the master's API, time) are printed and
written to build/test-artifacts/chaos.json (chaos-<jobs>.json for another count).
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any, Callable

import pytest

from chaos import Chaos
from conftest import REPO, Gateway, count_words, start_sc
from ember import SparkContext

JOBS = int(os.environ.get("EMBER_CHAOS_JOBS", "20"))
SEED = int(os.environ.get("EMBER_CHAOS_SEED", "5"))
KILL_INTERVAL = (1.5, 3.5)
MAX_KILLS = 3 * JOBS


def slowly(per_record: float) -> Callable:
    """A mapPartitions function that takes its time, so kills land mid-task."""
    def run(it):
        import time as t
        for i, x in enumerate(it):
            if i % 50 == 0:
                t.sleep(per_record * 50)
            yield x
    return run


def word_count(sc: SparkContext, corpus: list[Path], i: int) -> tuple[Any, Any]:
    lines = sc.textFile(",".join(map(str, corpus)), minPartitions=4 + i % 3)
    counts = (lines.mapPartitions(slowly(0.0004)).flatMap(str.split)
              .map(lambda w: (w, 1)).reduceByKey(lambda a, b: a + b, 2 + i % 4))
    return dict(counts.collect()), dict(count_words(corpus))


def group_numbers(sc: SparkContext, _corpus: list[Path], i: int) -> tuple[Any, Any]:
    n, m = 6000 + 500 * i, 7 + i
    groups = (sc.parallelize(range(n), 6).mapPartitions(slowly(0.0003))
              .map(lambda x: (x % m, x)).groupByKey(3 + i % 3).mapValues(sorted))
    want: dict[int, list[int]] = defaultdict(list)
    for x in range(n):
        want[x % m].append(x)
    return dict(groups.collect()), dict(want)


def group_words_by_letter(sc: SparkContext, corpus: list[Path], i: int) -> tuple[Any, Any]:
    words = sc.textFile(",".join(map(str, corpus)), minPartitions=5).flatMap(str.split)
    groups = (words.mapPartitions(slowly(0.00005)).groupBy(lambda w: w[0], 2 + i % 3)
              .mapValues(lambda ws: len(set(ws))))
    want: dict[str, set] = defaultdict(set)
    for w in count_words(corpus):
        want[w[0]].add(w)
    return dict(groups.collect()), {k: len(v) for k, v in want.items()}


def words_by_frequency(sc: SparkContext, corpus: list[Path], i: int) -> tuple[Any, Any]:
    """Two shuffles: count the words, then group the words by their count."""
    counts = (sc.textFile(",".join(map(str, corpus)), minPartitions=4)
              .mapPartitions(slowly(0.0004)).flatMap(str.split)
              .map(lambda w: (w, 1)).reduceByKey(lambda a, b: a + b, 3))
    by_count = counts.map(lambda wc: (wc[1], wc[0])).groupByKey(2 + i % 2) \
        .mapValues(lambda ws: sorted(ws))
    want: dict[int, list[str]] = defaultdict(list)
    for w, c in count_words(corpus).items():
        want[c].append(w)
    return dict(by_count.collect()), {c: sorted(ws) for c, ws in want.items()}


JOB_KINDS = (word_count, group_numbers, group_words_by_letter, words_by_frequency)


@pytest.fixture
def chaos_sc(request: pytest.FixtureRequest) -> SparkContext:
    return start_sc(request, "e2e-chaos", EMBER_HEARTBEAT_TIMEOUT_MS="2000")


def master_figures(gw: Gateway, app: str) -> dict[str, int]:
    """What the master's API says happened: task attempts that failed, tasks
    run again (attempt > 0, which includes map outputs recomputed after a
    block manager was lost), jobs that succeeded."""
    jobs = gw.api(f"/applications/{app}/jobs")
    tasks = [t for s in gw.api(f"/applications/{app}/stages")
             for t in gw.api(f"/applications/{app}/stages/{s['stageId']}")["tasks"]]
    return {
        "failedTaskAttempts": sum(j["numFailedTasks"] for j in jobs),
        "taskRetries": sum(1 for t in tasks if t["attempt"] > 0),
        "taskAttempts": len(tasks),
        "jobsSucceeded": sum(j["status"] == "SUCCEEDED" for j in jobs),
    }


def test_jobs_stay_correct_while_daemons_die(chaos_sc: SparkContext,
                                             small_corpus: list[Path]) -> None:
    sc = chaos_sc
    gw = Gateway.of(sc)
    chaos = Chaos(sc, seed=SEED, interval=KILL_INTERVAL, max_kills=MAX_KILLS)
    outcomes: list[dict] = []
    started = time.monotonic()
    chaos.start()
    try:
        for i in range(JOBS):
            kind = JOB_KINDS[i % len(JOB_KINDS)]
            job_started = time.monotonic()
            got, want = kind(sc, small_corpus, i)
            outcomes.append({"job": i, "kind": kind.__name__, "correct": got == want,
                             "seconds": round(time.monotonic() - job_started, 2)})
            assert got == want, f"job {i} ({kind.__name__}) gave a wrong result"
    finally:
        chaos.stop()
    assert chaos.error is None, f"the chaos thread failed:\n{chaos.error}"
    figures = {
        "jobs": JOBS,
        "jobsCorrect": sum(o["correct"] for o in outcomes),
        "kills": dict(Counter(chaos.kills)),
        "killsTotal": sum(chaos.kills.values()),
        "daemonRestarts": chaos.restarts,
        **master_figures(gw, sc.applicationId),
        "totalSeconds": round(time.monotonic() - started, 1),
        "perJob": outcomes,
    }
    artifacts = REPO / "build" / "test-artifacts"
    artifacts.mkdir(parents=True, exist_ok=True)
    name = "chaos.json" if JOBS == 20 else f"chaos-{JOBS}.json"
    (artifacts / name).write_text(json.dumps(figures, indent=2) + "\n")
    print("\nchaos figures:", json.dumps({k: v for k, v in figures.items() if k != "perJob"}))
    assert figures["jobsCorrect"] == JOBS
    assert figures["killsTotal"] > 0, "nothing was killed: the test proved nothing"
    # The cluster is whole again: the next job runs on every worker.
    assert sc.parallelize(range(100), 4).sum() == 4950
