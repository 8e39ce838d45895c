"""Losing a daemon in the middle of a job costs time, never a wrong result:
a SIGKILLed worker's tasks run elsewhere, a SIGKILLed block manager's map
outputs are recomputed after the reduce tasks report fetch failures."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections import Counter

import pytest

from conftest import Gateway, start_sc, wait_until
from ember import JobFailedError, SparkContext

TIMEOUT_MS = 2000


@pytest.fixture
def fresh_sc(request: pytest.FixtureRequest) -> SparkContext:
    return start_sc(request, f"e2e-faults-{request.node.name}",
                    EMBER_HEARTBEAT_TIMEOUT_MS=str(TIMEOUT_MS))


def daemon(sc: SparkContext, tag: str):
    return next(p for p in sc._cluster.processes if f"--id {tag}" in " ".join(p.args)
                or tag in " ".join(p.args))


def kill_later(proc, delay: float) -> threading.Thread:
    def run() -> None:
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def slow_words(sc: SparkContext):
    lines = [f"w{i % 37} w{i % 11} w{i % 5}" for i in range(4000)]

    def slow(it):
        for line in it:
            time.sleep(0.0004)
            yield line
    return sc.parallelize(lines, 8).mapPartitions(slow), lines


def expected_counts(lines: list[str]) -> dict[str, int]:
    return dict(Counter(w for line in lines for w in line.split()))


def test_worker_killed_mid_job(fresh_sc: SparkContext) -> None:
    words, lines = slow_words(fresh_sc)
    worker = daemon(fresh_sc, "worker-1")
    killer = kill_later(worker, 0.5)
    counts = dict(words.flatMap(str.split).map(lambda w: (w, 1))
                  .reduceByKey(lambda a, b: a + b, 4).collect())
    killer.join()
    assert worker.poll() is not None, "the worker was not killed during the job"
    assert counts == expected_counts(lines)
    gw = Gateway.of(fresh_sc)
    assert wait_until(lambda: {e["id"]: e["state"] for e in gw.api("/executors")}
                      .get("worker-1") == "dead", timeout=10)


def test_block_manager_killed_after_map_stage(fresh_sc: SparkContext) -> None:
    words, lines = slow_words(fresh_sc)
    pairs = words.flatMap(str.split).map(lambda w: (w, 1)).reduceByKey(lambda a, b: a + b, 4)
    assert dict(pairs.collect()) == expected_counts(lines)
    # The map outputs on blockd-1 are gone; a job reading them again recomputes them.
    blockd = daemon(fresh_sc, "blockd-1")
    blockd.send_signal(signal.SIGKILL)
    blockd.wait()
    again = pairs.mapValues(lambda v: v * 2)
    assert dict(again.collect()) == {w: 2 * c for w, c in expected_counts(lines).items()}


def test_block_manager_killed_mid_job(fresh_sc: SparkContext) -> None:
    words, lines = slow_words(fresh_sc)
    blockd = daemon(fresh_sc, "blockd-0")
    killer = kill_later(blockd, 0.6)
    counts = dict(words.flatMap(str.split).map(lambda w: (w, 1))
                  .reduceByKey(lambda a, b: a + b, 4).collect())
    killer.join()
    assert blockd.poll() is not None
    assert counts == expected_counts(lines)


def restart_gateway(sc: SparkContext, after: float, down_for: float) -> None:
    """SIGKILLs the gateway after a while, waits, and starts it again on the same port."""
    time.sleep(after)
    cluster = sc._cluster
    old = daemon(sc, "ember-gateway")
    old.send_signal(signal.SIGKILL)
    old.wait()
    cluster.processes.remove(old)
    time.sleep(down_for)
    cluster._spawn("ember-gateway", "gateway-again",
                   ["--listen", cluster.gateway_address, "--master", cluster.master_address])


def test_driver_rides_out_a_gateway_restart(fresh_sc: SparkContext) -> None:
    words, lines = slow_words(fresh_sc)
    counts_rdd = words.flatMap(str.split).map(lambda w: (w, 1)).reduceByKey(lambda a, b: a + b, 4)
    # The job is submitted at once; the gateway dies while the driver polls it.
    restarter = threading.Thread(target=restart_gateway, args=(fresh_sc, 0.3, 1.0), daemon=True)
    restarter.start()
    counts = dict(counts_rdd.collect())
    restarter.join()
    assert counts == expected_counts(lines)
    assert fresh_sc.parallelize(range(10), 2).sum() == 45


def test_a_killed_driver_leaves_no_daemon_behind(tmp_path) -> None:
    from conftest import CLIENT_DIR, is_alive
    script = tmp_path / "driver.py"
    script.write_text(
        "import sys, time\n"
        f"sys.path.insert(0, {str(CLIENT_DIR)!r})\n"
        "from ember import JobFailedError, SparkContext\n"
        "sc = SparkContext('local[2]', 'killed-driver')\n"
        "print(' '.join(map(str, sc._cluster.pids())), flush=True)\n"
        "time.sleep(120)\n")
    driver = subprocess.Popen(["/usr/bin/python3", str(script)], stdout=subprocess.PIPE,
                              text=True, env=dict(os.environ))
    try:
        pids = [int(p) for p in driver.stdout.readline().split()]
        assert len(pids) == 6
    finally:
        driver.kill()
        driver.wait()
    assert wait_until(lambda: not any(is_alive(p) for p in pids), timeout=15), \
        [p for p in pids if is_alive(p)]


def restart_master(sc: SparkContext, when_running: bool = False) -> None:
    """SIGKILLs the master (once a job runs, if asked) and starts it again on
    its port with its journal."""
    cluster = sc._cluster
    if when_running:
        gw = Gateway.of(sc)
        wait_until(lambda: any(j["status"] == "RUNNING" for j in gw.api("/jobs")), timeout=30)
    old = daemon(sc, "ember-master")
    old.send_signal(signal.SIGKILL)
    old.wait()
    cluster.processes.remove(old)
    cluster._spawn("ember-master", "master-again",
                   ["--listen", cluster.master_address, "--journal",
                    os.path.join(cluster.run_dir, "journal")])


def test_master_restart_keeps_history_and_the_driver_goes_on(fresh_sc: SparkContext) -> None:
    gw = Gateway.of(fresh_sc)
    assert fresh_sc.parallelize(range(100), 4).map(lambda x: (x % 3, x)) \
        .reduceByKey(lambda a, b: a + b).count() == 3
    before = gw.api("/jobs")
    first_app = fresh_sc.applicationId

    # A job running when the master dies fails with a clear error.
    words, lines = slow_words(fresh_sc)
    killer = threading.Thread(target=restart_master, args=(fresh_sc, True), daemon=True)
    killer.start()
    with pytest.raises(JobFailedError, match="master restarted"):
        words.map(lambda w: (w, 1)).reduceByKey(lambda a, b: a + b, 4).collect()
    killer.join()

    # Workers and block managers register again by themselves.
    assert wait_until(lambda: sum(e["state"] == "alive" for e in gw.api("/executors")) == 2,
                      timeout=15), gw.api("/executors")
    # The finished job and the first application are back in the UI's lists.
    jobs = gw.api("/jobs")
    assert before[0]["jobId"] in [j["jobId"] for j in jobs]
    assert any(a["id"] == first_app for a in gw.api("/applications"))
    # The next job of the same driver runs (under a new application), ids go on.
    assert fresh_sc.parallelize(range(10), 2).sum() == 45
    assert fresh_sc.applicationId != first_app
    assert max(j["jobId"] for j in gw.api("/jobs")) > before[0]["jobId"]


def test_a_dying_python_worker_is_explained(fresh_sc: SparkContext) -> None:
    sc = fresh_sc
    def crash(it):
        import ctypes
        import sys
        sys.stderr.write("about to crash on purpose\n")
        sys.stderr.flush()
        ctypes.string_at(0)            # SIGSEGV in the Python subprocess
        return it
    with pytest.raises(JobFailedError) as failure:
        sc.parallelize([1], 1).mapPartitions(crash).collect()
    message = str(failure.value)
    assert "signal 11" in message and "peak memory" in message, message
    assert "about to crash on purpose" in message, message
    assert "failed 4 times" in message and "stage" in message
    assert sc.parallelize(range(4), 2).sum() == 6


def test_a_driver_with_another_cloudpickle_gets_a_clear_error(fresh_sc: SparkContext,
                                                             monkeypatch) -> None:
    from ember import compat
    monkeypatch.setattr(compat, "driver_versions",
                        lambda: {compat.PYTHON_PROPERTY: "3.99",
                                 compat.CLOUDPICKLE_PROPERTY: "0.0.1"})
    with pytest.raises(JobFailedError, match="driver runs Python 3.99 with cloudpickle 0.0.1"):
        fresh_sc.parallelize([1, 2], 2).map(lambda x: x).collect()
    monkeypatch.undo()
    assert fresh_sc.parallelize([1, 2], 2).map(lambda x: x + 1).collect() == [2, 3]


def test_a_frozen_worker_is_written_off_and_its_late_reports_change_nothing(
        fresh_sc: SparkContext) -> None:
    words, lines = slow_words(fresh_sc)
    worker = daemon(fresh_sc, "worker-1")
    gw = Gateway.of(fresh_sc)

    def freeze_then_thaw() -> None:
        time.sleep(0.4)
        worker.send_signal(signal.SIGSTOP)        # cut off: no heartbeats, no reports
        wait_until(lambda: {e["id"]: e["state"] for e in gw.api("/executors")}
                   .get("worker-1") == "dead", timeout=15)
        time.sleep(1.0)
        worker.send_signal(signal.SIGCONT)        # back, with stale task reports
    thread = threading.Thread(target=freeze_then_thaw, daemon=True)
    thread.start()
    try:
        counts = dict(words.flatMap(str.split).map(lambda w: (w, 1))
                      .reduceByKey(lambda a, b: a + b, 4).collect())
    finally:
        thread.join()
        worker.send_signal(signal.SIGCONT)
    assert counts == expected_counts(lines)
    assert wait_until(lambda: {e["id"]: e["state"] for e in gw.api("/executors")}
                      .get("worker-1") == "alive", timeout=15)
    again = dict(words.flatMap(str.split).map(lambda w: (w, 1))
                 .reduceByKey(lambda a, b: a + b, 4).collect())
    assert again == expected_counts(lines)


def test_a_submission_is_retried_across_a_gateway_restart_and_runs_once(
        fresh_sc: SparkContext) -> None:
    words, lines = slow_words(fresh_sc)
    counts_rdd = words.flatMap(str.split).map(lambda w: (w, 1)).reduceByKey(lambda a, b: a + b, 4)
    # The gateway is down when the job is submitted: the POST is retried.
    restarter = threading.Thread(target=restart_gateway, args=(fresh_sc, 0.0, 1.0), daemon=True)
    restarter.start()
    time.sleep(0.05)
    assert dict(counts_rdd.collect()) == expected_counts(lines)
    restarter.join()
    gw = Gateway.of(fresh_sc)
    jobs = gw.api(f"/applications/{fresh_sc.applicationId}/jobs")
    assert len(jobs) == 1, jobs


def test_the_same_submission_token_names_the_same_job(fresh_sc: SparkContext) -> None:
    gw = Gateway.of(fresh_sc)
    app = fresh_sc.applicationId
    rdd = fresh_sc.parallelize([1, 2, 3], 1)
    body = {"rdd": rdd.id, "nodes": [rdd._node()], "submissionId": "token-1"}
    first = gw.post(f"/api/v1/applications/{app}/jobs", body)
    again = gw.post(f"/api/v1/applications/{app}/jobs", body)
    assert first[0] == again[0] == 201 and first[1]["jobId"] == again[1]["jobId"], (first, again)


def test_a_worker_restarted_at_once_has_its_tasks_run_again(request) -> None:
    """The heartbeat timeout is long: only the new process's registration (a
    new incarnation under the same id) tells the master the old tasks are gone."""
    from chaos import Chaos
    sc = start_sc(request, "e2e-faults-restart-at-once", EMBER_HEARTBEAT_TIMEOUT_MS="600000")
    words, lines = slow_words(sc)
    worker = daemon(sc, "worker-1")
    outcome: dict = {}

    def run() -> None:
        outcome["counts"] = dict(words.flatMap(str.split).map(lambda w: (w, 1))
                                 .reduceByKey(lambda a, b: a + b, 4).collect())
    job = threading.Thread(target=run, daemon=True)
    job.start()
    time.sleep(0.5)
    Chaos(sc, seed=0, interval=(0, 0), max_kills=0)._restart(worker, "ember-worker", None)
    job.join(60)
    assert not job.is_alive(), "the job hung on the tasks of the killed worker"
    assert outcome["counts"] == expected_counts(lines)


@pytest.mark.parametrize("later", [False, True], ids=["first-block", "later-block"])
def test_a_result_lost_before_its_download_is_computed_again(fresh_sc: SparkContext,
                                                             monkeypatch, later: bool) -> None:
    """The block manager holding a result dies (and comes back empty) between
    the job's success and the driver's download (the first block: the answer
    is 404; a later one of another block manager: the download breaks off):
    the driver runs the job again."""
    from chaos import Chaos
    runner = fresh_sc._jobs
    real_wait = runner.wait
    lost: list[str] = []

    def wait_then_lose_a_result(job_id: int) -> dict:
        status = real_wait(job_id)
        if not lost:
            holders = [r["blockManager"] for r in status["results"]]
            address = holders[0]
            if later:
                others = [a for a in holders if a != holders[0]]
                if not others:
                    pytest.skip("every result block landed in one block manager")
                address = others[0]
            proc = next(p for p in fresh_sc._cluster.processes if p.poll() is None
                        and "ember-blockd" in p.args[0]
                        and p.args[p.args.index("--id") + 1] == next(
                            b["id"] for b in Gateway.of(fresh_sc).api("/blockmanagers")
                            if b["address"] == address))
            Chaos(fresh_sc, seed=0, interval=(0, 0), max_kills=0)._restart(
                proc, "ember-blockd", address)
            lost.append(address)
        return status
    monkeypatch.setattr(runner, "wait", wait_then_lose_a_result)
    # Small results would come inline from the master: this test is about blocks.
    fresh_sc.setLocalProperty("spark.ember.inlineResults", "false")
    words, lines = slow_words(fresh_sc)
    counts = dict(words.flatMap(str.split).map(lambda w: (w, 1))
                  .reduceByKey(lambda a, b: a + b, 4).collect())
    assert lost, "no result block was lost: the test proved nothing"
    assert counts == expected_counts(lines)
    jobs = Gateway.of(fresh_sc).api(f"/applications/{fresh_sc.applicationId}/jobs")
    assert len(jobs) == 2 and all(j["status"] == "SUCCEEDED" for j in jobs), jobs


def test_a_job_submitted_to_a_dead_worker_not_yet_written_off_runs_elsewhere(
        fresh_sc: SparkContext) -> None:
    """The master launches a submitted job's tasks from the submission's own
    handler when its scheduler is idle: a launch refused there (the worker is
    gone but not yet declared dead) must still be retried on the other worker."""
    assert fresh_sc.parallelize([1, 2], 2).map(lambda x: x * 10).collect() == [10, 20]
    worker = daemon(fresh_sc, "worker-1")
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    assert fresh_sc.parallelize([1, 2], 2).map(lambda x: x + 1).collect() == [2, 3]
    gw = Gateway.of(fresh_sc)
    app = fresh_sc.applicationId
    job = max(j["jobId"] for j in gw.api(f"/applications/{app}/jobs"))
    (stage_id,) = gw.api(f"/applications/{app}/jobs/{job}")["stageIds"]
    tasks = gw.api(f"/applications/{app}/stages/{stage_id}")["tasks"]
    assert sorted(t["index"] for t in tasks if t["status"] == "SUCCESS") == [0, 1]
    assert all(t["executorId"] == "worker-0" for t in tasks if t["status"] == "SUCCESS"), tasks
    refused = [t for t in tasks if t["status"] == "FAILED"]
    assert refused and all("could not launch on worker worker-1" in t["errorMessage"]
                           for t in refused), tasks
