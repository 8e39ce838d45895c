"""POST .../jobs?waitMs=N: the answer to a submission is the job's status
after waiting as GET .../jobs/{id}?waitMs=N would (the driver's run and collect
use it: one request instead of two for a short job). A job still running gets
a RUNNING status and is polled as before; a cancel by job group reaches a job
whose submission was in flight.
"""

from __future__ import annotations

import base64
import threading
import time

import pytest

import ember
from conftest import Gateway


def test_submission_answer_is_the_final_status_with_inline_results(sc):
    gw = Gateway.of(sc)
    app = sc.applicationId
    rdd = sc.parallelize([1, 2, 3], 1)
    assert rdd.count() == 3                  # Python workers started: the job is short
    for attempt in range(20):
        body = {"rdd": rdd.id, "nodes": [rdd._node()], "submissionId": f"wait-{attempt}"}
        status, answer = gw.post(f"/api/v1/applications/{app}/jobs?waitMs=50&inlineResults=1",
                                 body)
        assert status == 201, answer
        if answer["status"] != "RUNNING":
            break
    else:                                    # a loaded machine: never done in 50 ms
        pytest.skip("every job outlived the wait")
    job = answer["jobId"]
    assert answer["status"] == "SUCCEEDED", answer
    polled = gw.api(f"/applications/{app}/jobs/{job}?inlineResults=1")
    assert [r.get("data") for r in answer["results"]] == [r.get("data") for r in polled["results"]]
    assert all(base64.b64decode(r["data"]) for r in answer["results"])
    # The retried POST (same token) names the same job and does not run another.
    again = gw.post(f"/api/v1/applications/{app}/jobs?waitMs=0", body)
    assert again[0] == 201 and again[1]["jobId"] == job, again


def test_submission_of_a_running_job_answers_running(sc):
    gw = Gateway.of(sc)
    app = sc.applicationId
    rdd = sc.parallelize([1], 1).map(lambda x: time.sleep(1) or x)
    status, answer = gw.post(f"/api/v1/applications/{app}/jobs?waitMs=1",
                             {"rdd": rdd.id, "nodes": _lineage_nodes(rdd)})
    assert status == 201 and answer["status"] == "RUNNING", answer
    assert gw.api(f"/applications/{app}/jobs/{answer['jobId']}?waitMs=50")["jobId"] == \
        answer["jobId"]


def _lineage_nodes(rdd) -> list:
    from ember.jobs import _lineage
    return [n._node() for n in _lineage(rdd, set())]


def test_bad_wait_is_refused_before_submitting(sc):
    gw = Gateway.of(sc)
    app = sc.applicationId
    before = len(gw.api(f"/applications/{app}/jobs"))
    rdd = sc.parallelize([1], 1)
    status, answer = gw.post(f"/api/v1/applications/{app}/jobs?waitMs=soon",
                             {"rdd": rdd.id, "nodes": [rdd._node()]})
    assert status == 400 and "waitMs must be a number" in str(answer), (status, answer)
    assert len(gw.api(f"/applications/{app}/jobs")) == before


def test_cancel_group_reaches_a_job_whose_submission_waits(sc):
    """Cancelled while collect's POST waited: the job is cancelled once its id
    is known, not left running."""
    outcome: dict = {}

    def run() -> None:
        sc.setJobGroup("in-flight", "cancelled during its submission")
        try:
            sc.parallelize([1], 1).map(lambda x: time.sleep(30) or x).collect()
        except BaseException as err:  # noqa: BLE001 - inspected below
            outcome["error"] = err
    runner = sc._jobs
    original = runner._post

    def slow_post(*args, **kw):
        sc.cancelJobGroup("in-flight")     # while the submission is in flight
        return original(*args, **kw)
    runner._post = slow_post
    try:
        thread = threading.Thread(target=run)
        thread.start()
        thread.join(60)
    finally:
        runner._post = original
    assert not thread.is_alive(), "the job in flight was not cancelled"
    assert isinstance(outcome.get("error"), ember.JobCancelledError), outcome


def test_waiting_submission_errors_are_the_plain_submissions(sc):
    """POST ...?waitMs is one SubmitJobAndWait call to the master: what it
    refuses is refused with the status and sentence a plain POST gets, and
    nothing is submitted."""
    gw = Gateway.of(sc)
    app = sc.applicationId
    before = len(gw.api(f"/applications/{app}/jobs"))
    bad = {"rdd": 999999, "nodes": [{"id": 999999, "kind": "nonsense", "numPartitions": 1}]}
    plain = gw.post(f"/api/v1/applications/{app}/jobs", bad)
    waiting = gw.post(f"/api/v1/applications/{app}/jobs?waitMs=10&inlineResults=1", bad)
    assert plain[0] == 400 and "error" in plain[1], plain
    assert waiting == plain
    rdd = sc.parallelize([1], 1)
    body = {"rdd": rdd.id, "nodes": [rdd._node()]}
    missing = gw.post("/api/v1/applications/app-19990101000000-0001/jobs?waitMs=10", body)
    assert missing[0] == 404 and missing == gw.post(
        "/api/v1/applications/app-19990101000000-0001/jobs", body), missing
    assert len(gw.api(f"/applications/{app}/jobs")) == before


def test_waiting_submission_without_inline_results_lists_them(sc):
    gw = Gateway.of(sc)
    app = sc.applicationId
    rdd = sc.parallelize([5, 6], 2)
    assert rdd.count() == 2
    for attempt in range(20):
        body = {"rdd": rdd.id, "nodes": [rdd._node()], "submissionId": f"listed-{attempt}"}
        status, answer = gw.post(f"/api/v1/applications/{app}/jobs?waitMs=50", body)
        assert status == 201, answer
        if answer["status"] != "RUNNING":
            break
    else:
        pytest.skip("every job outlived the wait")
    assert answer["status"] == "SUCCEEDED"
    assert [r["partition"] for r in answer["results"]] == [0, 1]
    assert all("data" not in r for r in answer["results"]), answer
    assert answer == gw.api(f"/applications/{app}/jobs/{answer['jobId']}")
