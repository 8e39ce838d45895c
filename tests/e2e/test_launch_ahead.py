"""Stages of short tasks are launched ahead: a worker holds up to twice its
cores of tasks, the extra ones waiting for a slot, and launches to one worker
go in one LaunchTasks call; reports that queue up go in one ReportTasks call.
The failure model must not notice: a worker dying with tasks waiting there,
a task failing once among its batch, and a cancelled job whose waiting tasks
would hang all end as they would without it.
"""

from __future__ import annotations

import calendar
import os
import threading
import time
from pathlib import Path

import pytest

import ember
from conftest import Gateway, job_stages, start_sc, wait_until

TASKS = 300


@pytest.fixture
def sc(request: pytest.FixtureRequest):
    """A private cluster per test: one of them restarts a worker."""
    return start_sc(request, f"e2e-ahead-{request.node.name}")


def stage_tasks(sc, job_id: int) -> list[dict]:
    gw = Gateway.of(sc)
    (stage,) = job_stages(gw, sc.applicationId, job_id)
    return gw.api(f"/applications/{sc.applicationId}/stages/{stage['stageId']}")["tasks"]


def last_job(sc) -> int:
    return max(j["jobId"] for j in Gateway.of(sc).api(f"/applications/{sc.applicationId}/jobs"))


def launched_ahead(tasks: list[dict]) -> int:
    """Successful tasks launched while an earlier one of their executor still
    ran: with one core per worker, only a task launched ahead can be."""
    def ms(t: dict) -> float:
        stamp = t["launchTime"]         # 2026-11-25T21:55:46.123GMT
        return calendar.timegm(time.strptime(stamp[:19], "%Y-%m-%dT%H:%M:%S")) * 1000 \
            + int(stamp[20:23])
    count = 0
    by_executor: dict[str, list[dict]] = {}
    for t in tasks:
        if t["status"] == "SUCCESS":
            by_executor.setdefault(t["executorId"], []).append(t)
    for runs in by_executor.values():
        runs.sort(key=ms)
        for before, after in zip(runs, runs[1:]):
            count += ms(after) < ms(before) + before["durationMs"]
    return count


def test_short_tasks_are_launched_ahead_and_counted_once(sc):
    acc = sc.accumulator(0)

    def bump(x):
        time.sleep(0.005)
        acc.add(1)
        return x * 2
    got = sc.parallelize(range(TASKS), TASKS).map(bump).collect()
    assert got == [x * 2 for x in range(TASKS)]
    assert acc.value == TASKS
    tasks = stage_tasks(sc, last_job(sc))
    assert len([t for t in tasks if t["status"] == "SUCCESS"]) == TASKS
    assert launched_ahead(tasks) > 0, "no task was launched ahead of a free slot"


def test_a_task_failing_once_among_launched_ahead_tasks(sc, tmp_path: Path):
    marker = str(tmp_path / "failed-once")
    acc = sc.accumulator(0)

    def flaky(x):
        acc.add(1)
        if x == TASKS // 2 and not os.path.exists(marker):
            open(marker, "w").close()
            raise ValueError("first attempt fails")
        return x
    assert sc.parallelize(range(TASKS), TASKS).map(flaky).sum() == sum(range(TASKS))
    assert acc.value == TASKS           # the failed attempt's update is not counted
    tasks = stage_tasks(sc, last_job(sc))
    failed = [t for t in tasks if t["status"] == "FAILED"]
    assert len(failed) == 1 and "first attempt fails" in failed[0]["errorMessage"]


def test_cancel_kills_tasks_waiting_for_a_slot(sc, tmp_path: Path):
    """Quick tasks first make the stage "short", so the hanging ones behind them
    are launched ahead; cancelling must stop those that never got a slot too,
    or they would start later and hold the slots forever."""
    def quick_then_hang(i):
        if i >= 40:
            time.sleep(10 ** 6)
        return i
    outcome: dict = {}

    def run() -> None:
        try:
            sc.parallelize(range(60), 60).map(quick_then_hang).collect()
        except BaseException as err:  # noqa: BLE001 - inspected below
            outcome["error"] = err
    thread = threading.Thread(target=run)
    thread.start()
    gw = Gateway.of(sc)
    app = sc.applicationId
    def newest() -> dict:
        jobs = gw.api(f"/applications/{app}/jobs")
        return jobs[0] if jobs else {"numCompletedTasks": 0, "numActiveTasks": 0}
    assert wait_until(lambda: newest()["numCompletedTasks"] >= 40
                      and newest()["numActiveTasks"] > 0, 60)
    job = newest()["jobId"]
    time.sleep(0.5)                     # the hanging tasks reach their slots or queue
    status, body = gw.post(f"/api/v1/applications/{app}/jobs/{job}/cancel")
    assert status == 200, body
    thread.join(30)
    assert isinstance(outcome.get("error"), ember.JobCancelledError), outcome
    # Every slot is free again: a job using all of them finishes.
    assert sc.parallelize(range(8), 8).map(lambda x: x + 1).sum() == 36
    executors = gw.api("/executors")
    assert wait_until(lambda: all(e["activeTasks"] == 0 for e in gw.api("/executors")), 10), \
        executors


def test_worker_death_with_tasks_launched_ahead(sc):
    """A worker restarted (a new incarnation: its tasks are lost at once) while
    it holds running and waiting tasks: they run again elsewhere, the result
    is complete and accumulators count each partition once."""
    from chaos import Chaos
    acc = sc.accumulator(0)
    n = 600

    def slowish(x):
        time.sleep(0.01)
        acc.add(1)
        return x
    outcome: dict = {}

    def run() -> None:
        outcome["sum"] = sc.parallelize(range(n), n).map(slowish).sum()
    job = threading.Thread(target=run, daemon=True)
    job.start()
    gw = Gateway.of(sc)
    def completed() -> int:
        jobs = gw.api(f"/applications/{sc.applicationId}/jobs")
        return jobs[0]["numCompletedTasks"] if jobs else 0
    assert wait_until(lambda: completed() >= 100, 60)
    worker = next(p for p in sc._cluster.processes if p.poll() is None
                  and "ember-worker" in p.args[0])
    Chaos(sc, seed=0, interval=(0, 0), max_kills=0)._restart(worker, "ember-worker", None)
    job.join(120)
    assert not job.is_alive(), "the job hung on the tasks of the restarted worker"
    assert outcome["sum"] == sum(range(n))
    assert acc.value == n
    tasks = stage_tasks(sc, last_job(sc))
    assert any(t["status"] == "FAILED" and "lost" in (t.get("errorMessage") or "")
               for t in tasks), "no task was lost with the worker: the test proved nothing"
