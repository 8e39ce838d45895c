"""A job submitted with SubmitJobAndWait (what collect, sum... do) has its
launches ask each worker to hold its answer a few ms (--launch-report-wait-ms)
for the report of the task it starts at once: a short task is then reported in
the LaunchTasks reply, with no ReportTask call. A task longer than the wait, or
one that calls another daemon (a shuffle write), reports the usual way. Results,
failures with their remote traceback, accumulators and cancels must be exactly
those of the old path (--launch-report-wait-ms 0), which these tests run too.

The master logs each report it found in a launch reply at debug level
("task=N reported in its launch reply"): that is what the tests read.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import ember
from conftest import Gateway, job_stages, start_sc, wait_until

# Long enough that a trivial task always makes it on a loaded test machine.
WAIT_MS = "100"
REPLY_LINE = r"task=(\d+) reported in its launch reply"


@pytest.fixture(scope="module")
def sc(request: pytest.FixtureRequest):
    return start_sc(request, "e2e-launch-reply", EMBER_LAUNCH_REPORT_WAIT_MS=WAIT_MS,
                    EMBER_CONF_spark_ember_logLevel="debug")


def reported_in_reply(sc) -> list[int]:
    """Task ids the master found in launch replies, in order, repeats kept."""
    with open(os.path.join(sc._cluster.log_dir, "master.log"), errors="replace") as fh:
        return [int(m.group(1)) for m in re.finditer(REPLY_LINE, fh.read())]


def last_job_tasks(sc) -> list[dict]:
    gw = Gateway.of(sc)
    job = max(j["jobId"] for j in gw.api(f"/applications/{sc.applicationId}/jobs"))
    tasks = []
    for stage in job_stages(gw, sc.applicationId, job):
        tasks += gw.api(f"/applications/{sc.applicationId}/stages/{stage['stageId']}")["tasks"]
    return tasks


# Jobs whose outcome both paths must agree on, run in a process of their own
# (one SparkContext per process) against a cluster with the given wait.
MIX = r"""
import json, os, re, sys
import ember
from ember import SparkContext
sc = SparkContext("local[2]", "launch-reply-mix")
acc = sc.accumulator(0)

def counted(x):
    acc.add(x)
    return x * 10

def boom(x):
    raise ValueError(f"boom {x} from the task")

out = {
    "collect": sc.parallelize([1, 2], 2).map(lambda x: x + 1).collect(),
    "collect_again": sc.parallelize([1, 2], 2).map(lambda x: x + 1).collect(),
    "sum": sc.parallelize(range(100), 4).map(lambda x: x * x).sum(),
    "count": sc.parallelize(range(1000), 2).filter(lambda x: x % 3).count(),
    "shuffle": sorted(sc.parallelize([("a", 1), ("b", 2), ("a", 3)], 2)
                      .reduceByKey(lambda a, b: a + b).collect()),
    "big_result": len(sc.parallelize(range(2), 2).map(lambda x: b"x" * 200_000).collect()),
    "accumulated": sc.parallelize(range(10), 2).map(counted).collect(),
}
out["accumulator"] = acc.value
try:
    sc.parallelize([1, 2], 2).map(boom).collect()
except ember.JobFailedError as err:
    text = str(err)
    out["failure"] = [("Traceback (most recent call last)" in text),
                      bool(re.search(r"ValueError: boom [12] from the task", text)),
                      "failed 4 times" in text]
with open(os.path.join(sc._cluster.log_dir, "master.log"), errors="replace") as fh:
    out["in_reply"] = len(re.findall(sys.argv[1], fh.read()))
sc.stop()
print(json.dumps(out))
"""


def run_mix(wait_ms: str) -> dict:
    env = dict(os.environ, EMBER_LAUNCH_REPORT_WAIT_MS=wait_ms,
               EMBER_CONF_spark_ember_logLevel="debug",
               PYTHONPATH=str(Path(__file__).resolve().parents[2] / "python-client"))
    done = subprocess.run([sys.executable, "-c", MIX, REPLY_LINE], env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_trivial_jobs_are_reported_in_the_launch_reply(sc):
    sc.parallelize([1, 2], 2).map(lambda x: x).collect()     # pyexecs warm, functions kept
    for i in range(5):
        assert sc.parallelize([1, 2], 2).map(lambda x, i=i: x + i).collect() == [1 + i, 2 + i]
        tasks = last_job_tasks(sc)
        assert [t["status"] for t in tasks] == ["SUCCESS", "SUCCESS"], tasks
        ids = {t["taskId"] for t in tasks}
        seen = wait_until(lambda: ids <= set(reported_in_reply(sc)), 5)
        assert seen, f"tasks {ids} were not reported in their launch replies"
    counts = {}
    for task in reported_in_reply(sc):
        counts[task] = counts.get(task, 0) + 1
    assert max(counts.values()) == 1, "a task was reported twice"


def test_a_task_longer_than_the_wait_reports_the_usual_way(sc):
    def slow(x):
        time.sleep(0.4)
        return -x
    assert sc.parallelize([1, 2], 2).map(slow).collect() == [-1, -2]
    tasks = last_job_tasks(sc)
    assert [t["status"] for t in tasks] == ["SUCCESS", "SUCCESS"]
    assert all(t["durationMs"] >= 400 for t in tasks)
    assert not {t["taskId"] for t in tasks} & set(reported_in_reply(sc))
    # the next short job is reported in its replies again
    assert sc.parallelize([3, 4], 2).map(lambda x: x).collect() == [3, 4]
    ids = {t["taskId"] for t in last_job_tasks(sc)}
    assert wait_until(lambda: ids <= set(reported_in_reply(sc)), 5)


def test_a_failure_comes_back_with_its_traceback_through_the_reply(sc):
    def boom(x):
        raise ValueError(f"boom {x} from the task")

    with pytest.raises(ember.JobFailedError) as failed:
        sc.parallelize([1, 2], 2).map(boom).collect()
    message = str(failed.value)
    assert "Traceback (most recent call last)" in message
    assert re.search(r"ValueError: boom [12] from the task", message)
    assert "failed 4 times" in message
    first_attempts = {t["taskId"] for t in last_job_tasks(sc) if t["attempt"] == 0}
    assert len(first_attempts) == 2
    assert wait_until(lambda: first_attempts <= set(reported_in_reply(sc)), 5), \
        "the failed first attempts were not reported in their launch replies"
    # retries are launched by the scheduler thread, which never waits for a report
    retries = {t["taskId"] for t in last_job_tasks(sc) if t["attempt"] > 0}
    assert retries and not retries & set(reported_in_reply(sc))


def test_results_are_those_of_the_old_path():
    got, want = run_mix(WAIT_MS), run_mix("0")
    assert got.pop("in_reply") > 0, "no task was reported in its launch reply"
    assert want.pop("in_reply") == 0, "the old path must not ask for reports"
    assert got == want
    assert want["accumulator"] == sum(range(10))
    assert want["failure"] == [True, True, True]


def test_a_job_cancelled_while_its_reply_may_be_held(sc, tmp_path: Path):
    """The task hangs; the job is cancelled as soon as the task started (most
    likely while the worker still holds its launch reply)."""
    pid_file = tmp_path / "pid"
    outcome: dict = {}

    def hang(x):
        with open(pid_file, "w") as fh:
            fh.write(str(os.getpid()))
        time.sleep(10 ** 6)

    def run() -> None:
        try:
            outcome["value"] = sc.parallelize([1], 1).map(hang).collect()
        except BaseException as err:  # noqa: BLE001 - checked below
            outcome["error"] = err

    gw = Gateway.of(sc)
    before = max(j["jobId"] for j in gw.api(f"/applications/{sc.applicationId}/jobs"))
    thread = threading.Thread(target=run)
    thread.start()
    assert wait_until(lambda: pid_file.exists() and pid_file.read_text(), 30)
    job = max(j["jobId"] for j in gw.api(f"/applications/{sc.applicationId}/jobs"))
    assert job > before
    status, _ = gw.post(f"/api/v1/applications/{sc.applicationId}/jobs/{job}/cancel")
    assert status == 200
    thread.join(30)
    assert not thread.is_alive()
    assert isinstance(outcome.get("error"), ember.JobCancelledError), outcome
    assert sc.parallelize([5, 6], 2).map(lambda x: x).collect() == [5, 6]
