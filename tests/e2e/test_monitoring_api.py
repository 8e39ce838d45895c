"""The monitoring API against jobs this module ran: job and stage fields, the
stage DAG (parent stages, RDD operations), task quantiles, executors, storage,
the environment, and /metrics agreeing with the JSON lists."""

from __future__ import annotations

import inspect
import re
import sys
import urllib.request
from typing import Any

import pytest

import ember
from conftest import Gateway, last_job, wait_until

MARKER = ("ember.test.marker", "monitoring-42")


def run(sc, gateway: Gateway, action) -> dict:
    """Runs action(); returns the job it ran (the application's newest)."""
    action()
    return last_job(gateway, sc.applicationId)


@pytest.fixture(scope="module")
def ran(sc, gateway: Gateway) -> dict[str, Any]:
    """A shuffle job, a second action reusing its shuffle, a failing job, a cached RDD."""
    pairs = sc.parallelize(range(1000), 4).map(lambda x: (x % 10, x))
    sums = pairs.reduceByKey(lambda a, b: a + b, numPartitions=3)
    out: dict[str, Any] = {}

    sc.setJobDescription("sum by key")
    out["shuffle"] = run(sc, gateway, sums.collect)
    sc.setJobDescription(None)

    out["reuse_site"] = f"test_monitoring_api.py:{inspect.currentframe().f_lineno + 1}"
    out["reuse"] = run(sc, gateway, lambda: sums.count())

    def fail():
        with pytest.raises(Exception, match="ZeroDivisionError"):
            sc.parallelize(range(4), 2).map(lambda x: x / 0).collect()
    out["failed"] = run(sc, gateway, fail)

    cached = sc.parallelize(range(300), 3).map(lambda x: x * 2).cache()
    out["cached_rdd"] = cached.id()
    sc.setLocalProperty(*MARKER)       # the newest job's properties are the application's
    out["cache"] = run(sc, gateway, cached.count)
    sc.setLocalProperty(MARKER[0], None)
    # every task has reported: no RUNNING attempt left behind the failed job
    assert wait_until(lambda: all(t["status"] != "RUNNING" for t in all_tasks(gateway, sc)), 10)
    return out


def stage(gateway: Gateway, app: str, stage_id: int) -> dict:
    return gateway.api(f"/applications/{app}/stages/{stage_id}")


def stages_of(gateway: Gateway, app: str, job: dict) -> dict[int, dict]:
    return {s: stage(gateway, app, s) for s in job["stageIds"]}


def all_tasks(gateway: Gateway, sc) -> list[dict]:
    app = sc.applicationId
    return [t for s in gateway.api(f"/applications/{app}/stages")
            for t in stage(gateway, app, s["stageId"])["tasks"]]


def nearest_rank(values: list[int], q: float) -> int:
    values = sorted(values)
    return values[int(q * (len(values) - 1) + 0.5)]


# ---- jobs ------------------------------------------------------------------------

def test_job_fields_match_what_ran(sc, gateway, ran):
    job = ran["shuffle"]
    assert job["description"] == "sum by key"
    assert job["callSite"].startswith("test_monitoring_api.py:")
    assert job["appId"] == sc.applicationId
    assert job["status"] == "SUCCEEDED"
    assert job["numStages"] == 2 and job["numCompletedStages"] == 2
    assert job["numSkippedStages"] == 0
    assert job["numTasks"] == 4 + 3 == job["numCompletedTasks"]
    assert job["numActiveTasks"] == 0 and job["numFailedTasks"] == 0
    assert job["durationMs"] >= 0 and "completionTime" in job
    listed = {j["jobId"]: j for j in gateway.api(f"/applications/{sc.applicationId}/jobs")}
    assert listed[job["jobId"]]["stageIds"] == job["stageIds"]


def test_second_action_skips_the_shuffle_it_reuses(sc, gateway, ran):
    job = ran["reuse"]
    assert job["description"] == f"count at {ran['reuse_site']}"
    assert job["numStages"] == 2 and job["numSkippedStages"] == 1, job
    assert job["numTasks"] == 3, "skipped stages have no tasks to count"
    statuses = sorted(s["status"] for s in stages_of(gateway, sc.applicationId, job).values())
    assert statuses == ["COMPLETE", "SKIPPED"]


def test_failed_job_carries_its_error(sc, gateway, ran):
    job = ran["failed"]
    assert job["status"] == "FAILED"
    assert "ZeroDivisionError" in job["errorMessage"]
    assert job["numFailedTasks"] >= 1
    failed = stage(gateway, sc.applicationId, job["failedStage"])
    assert failed["status"] == "FAILED"
    assert "ZeroDivisionError" in failed["failureReason"]
    errors = [t for t in failed["tasks"] if t["status"] == "FAILED"]
    assert errors and all("ZeroDivisionError" in t["errorMessage"] for t in errors)


# ---- stages: the DAG and task quantiles ---------------------------------------------

def test_stage_dag_names_parents_and_rdd_operations(sc, gateway, ran):
    stages = stages_of(gateway, sc.applicationId, ran["shuffle"])
    reduce_stage = next(s for s in stages.values() if s["parentIds"])
    map_stage = stages[reduce_stage["parentIds"][0]]
    assert map_stage["parentIds"] == []
    assert map_stage["jobIds"] == reduce_stage["jobIds"] == [ran["shuffle"]["jobId"]]
    for s in (map_stage, reduce_stage):
        assert s["rddIds"] == [r["id"] for r in s["rdds"]]
        for r in s["rdds"]:
            assert set(r) >= {"id", "name", "kind", "numPartitions", "parentIds", "persisted"}
    assert [r["kind"] for r in map_stage["rdds"]] == ["data", "map"]
    assert map_stage["rdds"][1]["parentIds"] == [map_stage["rdds"][0]["id"]]
    # the reduce stage starts at the shuffle, which reads the map stage's last RDD
    shuffle = reduce_stage["rdds"][0]
    assert shuffle["kind"] == "shuffle" and shuffle["numPartitions"] == 3
    assert shuffle["parentIds"] == [map_stage["rdds"][-1]["id"]]
    assert reduce_stage["name"] == reduce_stage["rdds"][-1]["name"]
    # the same fields in the stage list
    listed = {s["stageId"]: s for s in gateway.api("/stages")}
    assert listed[reduce_stage["stageId"]]["parentIds"] == [map_stage["stageId"]]
    assert listed[reduce_stage["stageId"]]["rdds"] == reduce_stage["rdds"]


def test_stage_metrics_add_up_over_tasks(sc, gateway, ran):
    stages = stages_of(gateway, sc.applicationId, ran["shuffle"])
    reduce_stage = next(s for s in stages.values() if s["parentIds"])
    map_stage = stages[reduce_stage["parentIds"][0]]
    for s in stages.values():
        ok = [t for t in s["tasks"] if t["status"] == "SUCCESS"]
        assert sorted(t["index"] for t in ok) == list(range(s["numTasks"]))
        assert sum(t["recordsOut"] for t in ok) == s["outputRecords"]
        assert sum(t["shuffleWriteBytes"] for t in ok) == s["shuffleWriteBytes"]
        assert sum(t["shuffleReadBytes"] for t in ok) == s["shuffleReadBytes"]
        for t in s["tasks"]:
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}GMT", t["launchTime"])
            assert t["executorId"].startswith("worker-") and t["host"]
    assert map_stage["outputRecords"] == 4 * 10      # combined map side: 10 keys per partition
    assert reduce_stage["outputRecords"] == 10
    assert map_stage["shuffleWriteBytes"] > 0
    # every map output partition is read once
    assert reduce_stage["shuffleReadBytes"] == map_stage["shuffleWriteBytes"]


def test_task_summary_is_nearest_rank_quantiles_of_successful_tasks(sc, gateway, ran):
    fields = ("durationMs", "recordsIn", "recordsOut", "shuffleReadBytes", "shuffleWriteBytes")
    for s in stages_of(gateway, sc.applicationId, ran["shuffle"]).values():
        summary = s["taskSummary"]
        ok = [t for t in s["tasks"] if t["status"] == "SUCCESS"]
        assert summary["quantiles"] == [0.0, 0.25, 0.5, 0.75, 1.0]
        assert summary["numTasks"] == len(ok)
        for field in fields:
            want = [nearest_rank([t[field] for t in ok], q) for q in summary["quantiles"]]
            assert summary[field] == want, (field, summary[field], want)


def test_task_summary_of_a_stage_without_successes_is_empty(sc, gateway, ran):
    failed = stage(gateway, sc.applicationId, ran["failed"]["failedStage"])
    assert failed["taskSummary"]["numTasks"] == 0
    assert failed["taskSummary"]["durationMs"] == []


# ---- executors, storage ---------------------------------------------------------------

def test_executors_count_the_tasks_that_ran(sc, gateway, ran):
    executors = gateway.api("/executors")
    assert sorted(e["id"] for e in executors) == ["worker-0", "worker-1"]
    assert all(e["state"] == "alive" and e["cores"] == 1 and e["activeTasks"] == 0
               for e in executors)
    tasks = all_tasks(gateway, sc)
    assert sum(e["completedTasks"] for e in executors) == \
        sum(t["status"] == "SUCCESS" for t in tasks)
    assert sum(e["failedTasks"] for e in executors) == \
        sum(t["status"] in ("FAILED", "KILLED") for t in tasks)
    per_app = gateway.api(f"/applications/{sc.applicationId}/executors")
    assert [e["id"] for e in per_app] == [e["id"] for e in executors]


def test_storage_lists_the_cached_rdd(sc, gateway, ran):
    rdds = gateway.api(f"/applications/{sc.applicationId}/storage/rdd")
    mine = [r for r in rdds if r["id"] == ran["cached_rdd"]]
    assert len(mine) == 1, rdds
    rdd = mine[0]
    assert rdd["numPartitions"] == rdd["numCachedPartitions"] == 3
    assert rdd["storageLevel"] == "Memory Deserialized 1x Replicated"
    assert rdd["memoryUsed"] == sum(p["size"] for p in rdd["partitions"]) > 0
    stage_rdds = stages_of(gateway, sc.applicationId, ran["cache"])
    persisted = [r for s in stage_rdds.values() for r in s["rdds"] if r["persisted"]]
    assert [r["id"] for r in persisted] == [ran["cached_rdd"]]


# ---- environment -------------------------------------------------------------------------

def as_dict(pairs: list[list]) -> dict:
    assert all(len(p) == 2 for p in pairs), pairs
    return {k: v for k, v in pairs}


def test_environment_reports_versions_and_options(sc, gateway):
    env = gateway.api("/environment")
    runtime = env["runtime"]
    assert runtime["emberVersion"] == ember.__version__
    assert runtime["pythonVersion"] == "%d.%d" % sys.version_info[:2]
    for key in ("grpcVersion", "microhttpdVersion", "janssonVersion", "protobufCVersion"):
        assert re.match(r"\d+\.\d+", runtime[key]), (key, runtime[key])
    master = as_dict(env["masterOptions"])
    assert master["--max-failures"] == "4" and master["--locality-wait-ms"] == "1000"
    gateway_options = as_dict(env["gatewayOptions"])
    assert gateway_options["--threads"] and gateway_options["--master"]
    assert "sparkProperties" not in env


def test_application_environment_has_the_job_properties(sc, gateway, ran):
    env = gateway.api(f"/applications/{sc.applicationId}/environment")
    assert env["application"]["id"] == sc.applicationId
    assert env["application"]["name"] == sc.appName
    newest = last_job(gateway, sc.applicationId)
    assert env["propertiesOfJob"] == newest["jobId"]
    props = as_dict(env["sparkProperties"])
    assert props["spark.app.id"] == sc.applicationId
    assert props["spark.app.name"] == sc.appName
    assert props["spark.driver.maxResultSize"] == str(1 << 30)
    assert props[MARKER[0]] == MARKER[1]
    assert "spark.job.description" not in props, "only an older job had a description"
    keys = [k for k, _ in env["sparkProperties"]]
    assert keys == sorted(keys)
    assert env["runtime"]["emberVersion"] == ember.__version__


def test_environment_of_an_unknown_application_is_404(gateway):
    status, body = gateway.get("/api/v1/applications/app-19700101000000-9999/environment")
    assert status == 404 and "no application" in body["error"]


# ---- /metrics ------------------------------------------------------------------------------

SAMPLE = re.compile(r'^([a-z_]+)(\{([a-z_]+="[^"]*"(,[a-z_]+="[^"]*")*)\})? (-?\d+(\.\d+)?)$')


def parse_metrics(text: str) -> dict[tuple[str, frozenset], float]:
    """{(name, frozenset of label pairs): value}; checks the text format on the way."""
    samples, typed = {}, set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            name, kind = line.split()[2:4]
            assert kind in ("gauge", "counter"), line
            typed.add(name)
            continue
        if line.startswith("# HELP ") or not line:
            continue
        m = SAMPLE.match(line)
        assert m, f"not a Prometheus sample: {line!r}"
        assert m.group(1) in typed, f"{m.group(1)} has no # TYPE line before it"
        labels = frozenset(re.findall(r'([a-z_]+)="([^"]*)"', m.group(3) or ""))
        samples[(m.group(1), labels)] = float(m.group(5))
    return samples


def metrics(gateway: Gateway) -> dict[tuple[str, frozenset], float]:
    req = urllib.request.Request(gateway.base + "/metrics",
                                 headers={"Authorization": f"Bearer {gateway.secret}"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        return parse_metrics(resp.read().decode())


def value(samples: dict, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


def test_metrics_count_jobs_stages_and_tasks_as_the_lists_do(sc, gateway, ran):
    samples = metrics(gateway)
    jobs, stages = gateway.api("/jobs"), gateway.api("/stages")
    for status in ("RUNNING", "SUCCEEDED", "FAILED"):
        assert value(samples, "ember_jobs", status=status) == \
            sum(j["status"] == status for j in jobs), status
    assert value(samples, "ember_jobs", status="FAILED") == 1
    for status in ("PENDING", "ACTIVE", "COMPLETE", "FAILED", "SKIPPED"):
        assert value(samples, "ember_stages", status=status) == \
            sum(s["status"] == status for s in stages), status
    tasks = all_tasks(gateway, sc)
    for state in ("RUNNING", "SUCCESS", "FAILED", "KILLED"):
        assert value(samples, "ember_tasks", state=state) == \
            sum(t["status"] == state for t in tasks), state
    assert value(samples, "ember_applications", state="RUNNING") == 1


def test_metrics_bytes_and_workers_agree_with_the_json(sc, gateway, ran):
    samples = metrics(gateway)
    stages = gateway.api("/stages")
    written = sum(s["shuffleWriteBytes"] for s in stages)
    assert written > 0
    assert value(samples, "ember_shuffle_write_bytes_total") == written
    assert value(samples, "ember_shuffle_read_bytes_total") == \
        sum(s["shuffleReadBytes"] for s in stages)
    assert value(samples, "ember_shuffle_remote_read_bytes_total") == \
        sum(s["shuffleRemoteBytesRead"] for s in stages)
    assert value(samples, "ember_input_bytes_total") == sum(s["inputBytes"] for s in stages)
    assert value(samples, "ember_workers", state="alive") == 2
    assert value(samples, "ember_workers", state="dead") == 0
    assert value(samples, "ember_cores") == 2
    assert value(samples, "ember_task_run_time_seconds_total") == pytest.approx(
        sum(s["executorRunTimeMs"] for s in stages) / 1000, abs=0.001)


def test_metrics_block_managers_match_their_list(gateway, ran):
    def consistent():
        # stats arrive with heartbeats (every second): the cached RDD shows up in
        # memory soon, and a heartbeat may land between the two requests
        before = gateway.api("/blockmanagers")
        samples = metrics(gateway)
        return sum(b["memoryUsed"] for b in before) > 0 \
            and before == gateway.api("/blockmanagers") and (before, samples)
    found = wait_until(consistent, timeout=10, interval=0.2)
    assert found, "block manager stats kept changing, or the cached RDD never counted"
    bms, samples = found
    assert len(bms) == 2
    for b in bms:
        labels = {"blockmanager": b["id"], "address": b["address"]}
        assert value(samples, "ember_blockmanager_up", **labels) == 1
        assert value(samples, "ember_blockmanager_memory_max_bytes", **labels) == b["maxMemory"]
        assert value(samples, "ember_blockmanager_memory_used_bytes", **labels) == b["memoryUsed"]
        assert value(samples, "ember_blockmanager_disk_used_bytes", **labels) == b["diskUsed"]
        assert value(samples, "ember_blockmanager_blocks", **labels) == b["blocks"]
        assert value(samples, "ember_blockmanager_evictions_total", **labels) == b["evictions"]
