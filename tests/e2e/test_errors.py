"""Errors reach the driver with what is needed to fix them; the context stays usable."""

from __future__ import annotations

import threading

import pytest

import ember
from conftest import last_job, pyexec_pids, wait_until


def test_python_exception_fails_the_job_with_the_remote_traceback(sc, gateway):
    def check(x):
        if x == 5:
            raise ValueError("boom 42")
        return x * 2

    rdd = sc.parallelize(range(8), 4).map(check)   # 5 is in partition 2
    with pytest.raises(ember.JobFailedError) as info:
        rdd.collect()
    err = info.value
    message = str(err)
    assert "boom 42" in message
    assert "Traceback" in message
    assert "ValueError" in message
    assert "boom 42" in err.remote_traceback
    assert isinstance(err.stage, int), err.stage
    assert err.partition == 2

    job = last_job(gateway, sc.applicationId)
    assert job["status"] == "FAILED", job
    assert "boom 42" in job.get("errorMessage", ""), job
    stage = gateway.api(f"/applications/{sc.applicationId}/stages/{err.stage}")
    assert stage["status"] == "FAILED", stage
    assert "boom 42" in (stage.get("failureReason") or ""), stage

    # the next job on the same context succeeds
    assert sc.parallelize(range(8), 4).map(lambda x: x * 2).collect() == [x * 2 for x in range(8)]


def test_exception_in_reduce_stage_names_the_reduce_partition(sc, gateway):
    def check(kv):
        if kv[0] == 4:
            raise ValueError("boom in reduce")
        return kv

    pairs = sc.parallelize([(k, 1) for k in range(6)] * 3, 2)
    rdd = pairs.reduceByKey(lambda a, b: a + b, numPartitions=3).map(check)
    with pytest.raises(ember.JobFailedError) as info:
        rdd.collect()
    assert "boom in reduce" in str(info.value)
    assert info.value.partition == 4 % 3           # int keys: hash(k) == k
    stages = {s["stageId"]: s for s in gateway.api(f"/applications/{sc.applicationId}/stages")}
    failed = stages[info.value.stage]
    assert failed["status"] == "FAILED" and failed["numTasks"] == 3, failed
    # the context is still usable for a shuffle job
    assert sorted(pairs.reduceByKey(lambda a, b: a + b, 3).collect()) == \
        [(k, 3) for k in range(6)]


def test_python_exception_does_not_cost_the_python_worker(sc):
    """pyexec reads the rest of the input after an error and is reused (ARCHITECTURE.md)."""
    def fail(x):
        raise ValueError("boom again")

    assert sc.parallelize(range(4), 2).collect() == [0, 1, 2, 3]
    before = wait_until(lambda: (lambda d: d if all(d.values()) else None)(pyexec_pids(sc)), 10)
    assert before, pyexec_pids(sc)
    # one partition, so no sibling task gets killed when the job fails
    with pytest.raises(ember.JobFailedError, match="boom again"):
        sc.parallelize(range(1000), 1).map(fail).collect()
    assert pyexec_pids(sc) == before, "a pyexec was replaced after a Python exception"
    assert sc.parallelize(range(4), 2).collect() == [0, 1, 2, 3]


def test_missing_input_path_fails_at_textfile(sc, tmp_path):
    missing = tmp_path / "no" / "such-file.txt"
    with pytest.raises(Exception) as info:
        sc.textFile(str(missing))
    assert str(missing) in str(info.value)
    assert isinstance(info.value, FileNotFoundError) or isinstance(info.value, ember.EmberError)

    pattern = tmp_path / "nothing-*.txt"
    with pytest.raises(Exception) as info:
        sc.textFile(str(pattern))
    assert str(pattern) in str(info.value)


def test_unpicklable_closure_fails_at_submission_naming_the_variable(sc, gateway):
    held_lock = threading.Lock()
    jobs_before = len(gateway.api(f"/applications/{sc.applicationId}/jobs"))

    rdd = sc.parallelize(range(4), 2).map(lambda x: (x, held_lock.locked()))
    with pytest.raises(Exception) as info:
        rdd.collect()
    assert "held_lock" in str(info.value)
    assert not isinstance(info.value, ember.JobFailedError), "it must fail before submission"
    assert len(gateway.api(f"/applications/{sc.applicationId}/jobs")) == jobs_before, \
        "a job was submitted"

    # the context is still fine
    assert sc.parallelize(range(4), 2).map(lambda x: x + 1).collect() == [1, 2, 3, 4]
