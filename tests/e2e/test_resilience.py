"""The cluster survives dying Python workers and bad requests."""

from __future__ import annotations

import os
import re
import signal
import threading
import time

import pytest

import ember
from conftest import is_alive, last_job, pyexec_pids, wait_until


def _word_count(sc, n=3000):
    words = [f"w{i % 37}" for i in range(n)]
    return sorted(sc.parallelize(words, 6).map(lambda w: (w, 1))
                  .reduceByKey(lambda a, b: a + b, 4).collect())


def _expected_word_count(n=3000):
    counts = {}
    for i in range(n):
        counts[f"w{i % 37}"] = counts.get(f"w{i % 37}", 0) + 1
    return sorted(counts.items())


def _live_pyexecs(sc):
    """{worker pid: [pyexec pids]}, waiting until every worker has its pyexec."""
    pids = wait_until(lambda: (lambda d: d if all(d.values()) else None)(pyexec_pids(sc)), 10)
    assert pids, f"not every worker has an ember-pyexec: {pyexec_pids(sc)}"
    return pids


@pytest.mark.parametrize("victim", [0, 1])
def test_killing_a_pyexec_between_jobs_does_not_break_the_next_job(sc, victim):
    assert _word_count(sc) == _expected_word_count()
    workers = sorted(sc._cluster.pids("ember-worker"))
    assert len(workers) == 2
    before = _live_pyexecs(sc)
    worker = workers[victim]
    target = before[worker][0]
    os.kill(target, signal.SIGKILL)
    assert wait_until(lambda: not is_alive(target), 5), f"pyexec {target} survived SIGKILL"

    # the very next job is right
    assert _word_count(sc) == _expected_word_count()
    squares = sc.parallelize(range(100), 4).map(lambda x: x * x).sum()
    assert squares == sum(x * x for x in range(100))

    # the worker replaced the dead pyexec; the other worker's pyexec was not touched
    after = _live_pyexecs(sc)
    assert target not in after[worker]
    other = workers[1 - victim]
    assert after[other] == before[other]
    assert sorted(sc._cluster.pids("ember-worker")) == workers, "a worker died"


def test_killing_every_pyexec_between_jobs(sc):
    for pids in _live_pyexecs(sc).values():
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
    assert _word_count(sc) == _expected_word_count()


def _start_slow_job(sc) -> tuple[dict, threading.Thread]:
    """Starts a 4-task job of about 2 s in a thread; its result or error lands in the dict."""
    result: dict = {}

    def slow_job():
        try:
            result["value"] = sc.parallelize(range(4), 2).map(
                lambda x: (time.sleep(1.0), x * 10)[1]).collect()
        except BaseException as err:  # noqa: BLE001 - reported by the caller
            result["error"] = err

    thread = threading.Thread(target=slow_job)
    thread.start()
    return result, thread


def test_killing_a_pyexec_during_a_task_retries_the_task(sc, gateway):
    before = _live_pyexecs(sc)
    result, thread = _start_slow_job(sc)
    try:
        def running():
            jobs = gateway.api(f"/applications/{sc.applicationId}/jobs")
            return any(j["status"] == "RUNNING" and j["numActiveTasks"] > 0 for j in jobs)
        assert wait_until(running, 10), "the job never ran"
        time.sleep(0.3)
        victim = sorted(before)[0]
        os.kill(before[victim][0], signal.SIGKILL)
    finally:
        thread.join(60)
    assert "error" not in result, result.get("error")
    assert result["value"] == [0, 10, 20, 30]
    job = last_job(gateway, sc.applicationId)
    assert job["status"] == "SUCCEEDED" and job["numFailedTasks"] >= 1, job


def test_pyexec_exiting_in_a_task_fails_the_job_after_retries(sc, gateway):
    def maybe_exit(x):
        if x == 5:
            os._exit(3)
        return x

    with pytest.raises(ember.JobFailedError) as info:
        sc.parallelize(range(8), 4).map(maybe_exit).collect()
    message = str(info.value)
    assert re.search(r"Python worker.*died.*(exit code|exited with code) 3\b", message), message
    assert info.value.partition == 2
    job = last_job(gateway, sc.applicationId)
    assert job["status"] == "FAILED"
    stage = gateway.api(f"/applications/{sc.applicationId}/stages/{info.value.stage}")
    attempts = [t for t in stage["tasks"] if t["index"] == 2]
    assert len(attempts) > 1, f"the task was not retried: {attempts}"
    assert all(t["status"] == "FAILED" for t in attempts), attempts

    # the context (and both workers) still work
    assert sorted(sc.parallelize(range(8), 4).map(lambda x: x + 1).collect()) == list(range(1, 9))
    assert _word_count(sc) == _expected_word_count()


def _jobs_url(app):
    return f"/api/v1/applications/{app}/jobs"


@pytest.mark.parametrize("body,data,needle", [
    (None, b"{not json", "json"),
    (None, b"", "empty"),
    ([1, 2], None, "object"),
    ({"rdd": "x", "nodes": 5}, None, "rdd"),
    ({"rdd": 1, "nodes": 5}, None, "nodes"),
    ({"rdd": 99999, "nodes": []}, None, "99999"),
    ({"rdd": 99990, "nodes": [{"id": 99990, "kind": "no-such-kind"}]}, None, "no-such-kind"),
], ids=["invalid-json", "empty", "array", "wrong-type-rdd", "wrong-type-nodes",
        "unknown-rdd", "unknown-kind"])
def test_malformed_job_submission_gets_400(sc, gateway, body, data, needle):
    status, reply = gateway.request("POST", _jobs_url(sc.applicationId), body=body, data=data)
    assert status == 400, (status, reply)
    assert isinstance(reply, dict) and isinstance(reply.get("error"), str), reply
    assert needle in reply["error"].lower(), reply
    assert _word_count(sc) == _expected_word_count()


def test_job_submission_to_unknown_application_gets_404(sc, gateway):
    status, reply = gateway.post(_jobs_url("app-19700101000000-9999"), {"rdd": 1, "nodes": []})
    assert status == 404, (status, reply)
    assert isinstance(reply, dict) and "application" in reply.get("error", "").lower(), reply
    status, reply = gateway.get(_jobs_url(sc.applicationId) + "/987654")
    assert status == 404 and "job" in reply.get("error", "").lower(), (status, reply)
    assert _word_count(sc) == _expected_word_count()


def test_bad_requests_do_not_disturb_a_running_job(sc, gateway):
    result, thread = _start_slow_job(sc)
    try:
        assert wait_until(lambda: any(j["status"] == "RUNNING" for j in gateway.api(
            f"/applications/{sc.applicationId}/jobs")), 10), "the slow job never showed as RUNNING"
        for data in (b"{", b"null", b'{"rdd": [], "nodes": {}}', b"\xff\xfe"):
            status, reply = gateway.request("POST", _jobs_url(sc.applicationId), data=data)
            assert status == 400 and "error" in reply, (data, status, reply)
    finally:
        thread.join(60)
    assert not thread.is_alive()
    assert "error" not in result, result.get("error")
    assert result["value"] == [0, 10, 20, 30]
