"""SparkContext and SparkConf: PySpark's surface, with PySpark's answers.

Expected values follow PySpark 3.x's documented behaviour (docstrings of
pyspark/context.py and pyspark/rdd.py) on a local[2] cluster, so
defaultParallelism is 2.
"""

from __future__ import annotations

import threading
import time

import pytest

import ember
from conftest import last_job, wait_until
from ember import InheritableThread, SparkConf, SparkContext, TaskContext


def test_context_manager_and_get_or_create_start_and_stop_a_context():
    # First in the module: the module's `sc` fixture does not exist yet.
    with SparkContext("local[1]", "ctx-manager") as sc1:
        assert SparkContext.getOrCreate() is sc1
        assert sc1.defaultParallelism == 1 and sc1.defaultMinPartitions == 1
        assert sc1.parallelize([1, 2, 3]).sum() == 6
    with pytest.raises(ember.EmberError, match="stopped"):
        sc1.parallelize([1]).collect()
    sc2 = SparkContext.getOrCreate(SparkConf().setMaster("local[1]").setAppName("goc"))
    try:
        assert sc2.appName == "goc" and sc2.master == "local[1]"
    finally:
        sc2.stop()


def test_defaults_and_identity(sc):
    assert sc.defaultParallelism == 2
    assert sc.defaultMinPartitions == 2
    assert sc.version == "3.5.0"
    assert sc.applicationId.startswith("app-")
    assert sc.uiWebUrl.startswith("http://127.0.0.1:")
    assert SparkContext.getOrCreate() is sc
    assert isinstance(sc.sparkUser(), str)
    assert abs(sc.startTime / 1000 - time.time()) < 3600
    conf = sc.getConf()
    assert conf.get("spark.master") == "local[2]"
    conf.set("spark.master", "changed")             # a copy, as in PySpark
    assert sc.getConf().get("spark.master") == "local[2]"


def test_spark_conf_methods():
    conf = (SparkConf().setMaster("local[2]").setAppName("wc")
            .setAll([("a", 1), ("b", "two")]).setIfMissing("a", 9)
            .setExecutorEnv("PATH", "/bin").setSparkHome("/opt/spark"))
    assert conf.get("spark.master") == "local[2]"
    assert conf.get("spark.app.name") == "wc"
    assert conf.get("a") == "1" and conf.get("b") == "two"
    assert conf.get("missing") is None and conf.get("missing", "d") == "d"
    assert conf.contains("spark.executorEnv.PATH") and not conf.contains("nope")
    assert ("b", "two") in conf.getAll()
    assert "a=1\n" in conf.toDebugString()


def test_parallelize_slices_like_pyspark(sc):
    # pyspark/rdd.py docstrings
    assert sc.parallelize([1, 2, 3, 4], 2).glom().collect() == [[1, 2], [3, 4]]
    assert sc.parallelize([1, 2, 3, 4, 5], 3).glom().collect() == [[1], [2, 3], [4, 5]]
    assert sc.parallelize([1, 2, 3, 4, 5, 6, 7], 4).glom().collect() == \
        [[1], [2, 3], [4, 5], [6, 7]]
    # a list goes in batches of len // numSlices elements; the batches are sliced
    assert sc.parallelize(list(range(10)), 4).glom().collect() == \
        [[0, 1], [2, 3], [4, 5], [6, 7, 8, 9]]
    assert sc.parallelize(list(range(5000)), 2).glom().map(len).collect() == [2048, 2952]
    # a range is sliced by position, without building the list
    assert sc.parallelize(range(10), 4).glom().collect() == \
        [[0, 1], [2, 3, 4], [5, 6], [7, 8, 9]]
    assert sc.parallelize(x for x in "abc").collect() == ["a", "b", "c"]
    assert sc.parallelize([1, 2]).getNumPartitions() == 2          # defaultParallelism
    assert sc.parallelize([], 3).glom().collect() == [[], [], []]
    with pytest.raises(ValueError):
        sc.parallelize([1], 0)


def test_range(sc):
    assert sc.range(5).collect() == [0, 1, 2, 3, 4]
    assert sc.range(1, 7, 2).collect() == [1, 3, 5]
    assert sc.range(10, 0, -3).collect() == [10, 7, 4, 1]
    assert sc.range(0).collect() == []
    assert sc.range(10 ** 12, 10 ** 12 + 6, numSlices=3).glom().collect() == \
        [[10 ** 12, 10 ** 12 + 1], [10 ** 12 + 2, 10 ** 12 + 3], [10 ** 12 + 4, 10 ** 12 + 5]]
    huge = sc.range(10 ** 12)                        # never materialized
    assert huge.getNumPartitions() == 2 and huge.take(3) == [0, 1, 2]
    assert sc.range(3_000_000, numSlices=3).map(lambda x: 1).sum() == 3_000_000


def test_empty_rdd_and_union(sc):
    empty = sc.emptyRDD()
    assert empty.getNumPartitions() == 0
    assert empty.collect() == [] and empty.count() == 0 and empty.isEmpty()
    a, b = sc.parallelize([1, 2], 2), sc.parallelize([3], 1)
    both = sc.union([a, b, empty])
    assert both.getNumPartitions() == 3
    assert both.glom().collect() == [[1], [2], [3]]
    assert sc.union([empty, empty]).collect() == []
    with pytest.raises(ValueError):
        sc.union([])


def test_set_log_level(sc):
    for level in ("WARN", "info", "ERROR", "OFF", "ALL"):
        sc.setLogLevel(level)
    with pytest.raises(ValueError, match="did not match one of"):
        sc.setLogLevel("LOUD")
    sc.setLogLevel("WARN")


def test_task_context_inside_tasks_and_none_on_driver(sc):
    assert TaskContext.get() is None

    def info(split, iterator):
        tc = TaskContext.get()
        yield (split, tc.partitionId(), tc.stageId() > 0, tc.attemptNumber(),
               tc.taskAttemptId() > 0, sum(iterator))
    rows = sc.parallelize(range(8), 4).mapPartitionsWithIndex(info).collect()
    assert [r[:5] for r in rows] == [(i, i, True, 0, True) for i in range(4)]
    assert [r[5] for r in rows] == [1, 5, 9, 13]


def test_local_properties_reach_tasks_and_are_per_thread(sc):
    sc.setLocalProperty("answer", "42")
    try:
        assert sc.getLocalProperty("answer") == "42"
        got = sc.parallelize([0], 1).map(
            lambda _: TaskContext.get().getLocalProperty("answer")).collect()
        assert got == ["42"]

        seen = {}
        plain = threading.Thread(target=lambda: seen.update(plain=sc.getLocalProperty("answer")))
        plain.start()
        plain.join()
        inherited = InheritableThread(
            target=lambda: seen.update(inherited=sc.getLocalProperty("answer")))
        inherited.start()
        inherited.join()
        assert seen == {"plain": None, "inherited": "42"}
    finally:
        sc.setLocalProperty("answer", None)
    assert sc.getLocalProperty("answer") is None


def test_jobs_carry_worker_memory_and_max_result_size(sc):
    props = sc.parallelize([0], 1).map(
        lambda _: (TaskContext.get().getLocalProperty("spark.python.worker.memory"),
                   TaskContext.get().getLocalProperty("spark.driver.maxResultSize"))).collect()
    assert props == [("512m", str(1 << 30))]


def test_job_description_and_group_are_shown(sc, gateway):
    sc.setJobGroup("group-a", "counting for the UI test")
    try:
        sc.parallelize(range(4)).count()
    finally:
        sc.setLocalProperty("spark.jobGroup.id", None)
        sc.setLocalProperty("spark.job.description", None)
        sc.setLocalProperty("spark.job.interruptOnCancel", None)
    assert last_job(gateway, sc.applicationId)["description"] == "counting for the UI test"
    sc.setJobDescription("described")
    try:
        sc.parallelize(range(4)).count()
    finally:
        sc.setJobDescription(None)
    assert last_job(gateway, sc.applicationId)["description"] == "described"


def _slow_job_in_thread(sc, group, outcome):
    def run():
        if group:
            sc.setJobGroup(group, "slow")
        try:
            outcome["value"] = sc.parallelize(range(4), 2).map(
                lambda x: (time.sleep(30), x)[1]).collect()
        except BaseException as err:  # noqa: BLE001 - inspected by the test
            outcome["error"] = err
    thread = threading.Thread(target=run)
    thread.start()
    return thread


def _wait_running(gateway, app):
    def running():
        jobs = gateway.api(f"/applications/{app}/jobs")
        return any(j["status"] == "RUNNING" and j["numActiveTasks"] > 0 for j in jobs)
    assert wait_until(running, 20), "the slow job never started"


def test_cancel_job_group_from_another_thread(sc, gateway):
    outcome: dict = {}
    thread = _slow_job_in_thread(sc, "nightly", outcome)
    _wait_running(gateway, sc.applicationId)
    sc.cancelJobGroup("other-group")                 # not ours: nothing happens
    time.sleep(0.3)
    assert thread.is_alive()
    started = time.monotonic()
    sc.cancelJobGroup("nightly")
    thread.join(20)
    assert not thread.is_alive() and time.monotonic() - started < 15
    err = outcome.get("error")
    assert isinstance(err, ember.JobCancelledError), outcome
    assert isinstance(err, ember.JobFailedError)
    assert "cancelled part of cancelled job group nightly" in str(err)
    assert last_job(gateway, sc.applicationId)["status"] == "FAILED"
    assert sc.parallelize([1, 2, 3]).sum() == 6      # the context is still usable


def test_cancel_all_jobs(sc, gateway):
    outcome: dict = {}
    thread = _slow_job_in_thread(sc, None, outcome)
    _wait_running(gateway, sc.applicationId)
    sc.cancelAllJobs()
    thread.join(20)
    assert not thread.is_alive()
    assert isinstance(outcome.get("error"), ember.JobCancelledError), outcome
    assert "cancellation of all jobs" in str(outcome["error"])
    assert sc.parallelize([1, 2, 3]).count() == 3


def test_run_job(sc):
    rdd = sc.parallelize(range(6), 3)
    assert sc.runJob(rdd, lambda it: [x * x for x in it]) == [0, 1, 4, 9, 16, 25]
    assert sc.runJob(rdd, lambda it: [x * x for x in it], [0, 2]) == [0, 1, 16, 25]
    assert sc.runJob(rdd, lambda it: [sum(it)], [1]) == [5]


def test_rdd_metadata(sc):
    rdd = sc.range(5)
    assert isinstance(rdd.id(), int) and rdd.id() != sc.range(5).id()
    assert rdd.context is sc and rdd.ctx is sc
    assert rdd.name() is None
    assert rdd.setName("I am an RDD") is rdd and rdd.name() == "I am an RDD"
    assert rdd.getNumPartitions() == 2
    assert repr(rdd).startswith("I am an RDD PythonRDD[")


def test_closures_capturing_the_context_or_an_rdd_fail_at_submission(sc):
    rdd = sc.parallelize(range(4), 2)
    with pytest.raises(Exception) as info:
        rdd.map(lambda x: sc.defaultParallelism + x).collect()
    assert "'sc'" in str(info.value) and "SparkContext" in str(info.value)
    assert not isinstance(info.value, ember.JobFailedError)
    other = sc.parallelize([1])
    with pytest.raises(Exception) as info:
        rdd.map(lambda x: other.count() + x).collect()
    assert "'other'" in str(info.value) and "RDD" in str(info.value)


PYSPARK_SCRIPT = r'''
import sys
from pyspark import SparkContext, SparkConf, StorageLevel
import pyspark
import pyspark.storagelevel, pyspark.rdd, pyspark.context, pyspark.conf
import pyspark.taskcontext, pyspark.statcounter, pyspark.resultiterable
from pyspark.rdd import RDD, portable_hash
from pyspark.taskcontext import TaskContext
from pyspark.statcounter import StatCounter
from pyspark.resultiterable import ResultIterable
assert pyspark.storagelevel.StorageLevel is StorageLevel
assert pyspark.context.SparkContext is SparkContext and pyspark.conf.SparkConf is SparkConf
conf = SparkConf().setAppName("alias")
with SparkContext(conf=conf) as sc:
    assert sc.master == "local[1]", sc.master
    rdd = sc.parallelize([("a", 1), ("b", 2), ("a", 3)]).persist(StorageLevel.MEMORY_ONLY)
    grouped = dict(rdd.groupByKey().collect())
    assert isinstance(grouped["a"], ResultIterable)
    print("ok", sorted(rdd.reduceByKey(lambda x, y: x + y).collect()),
          isinstance(rdd.map(lambda kv: kv[1]).stats(), StatCounter), pyspark.__file__)
'''


def test_pyspark_alias_under_ember_submit(tmp_path):
    import os
    import subprocess
    import sys
    from conftest import BIN_DIR, CLIENT_DIR
    script = tmp_path / "uses_pyspark.py"
    script.write_text(PYSPARK_SCRIPT)
    env = dict(os.environ, EMBER_PY_PATH=str(CLIENT_DIR))
    env.pop("PYTHONPATH", None)
    done = subprocess.run([str(BIN_DIR / "ember-submit"), "--master", "local[1]", str(script)],
                          capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "ok [('a', 4), ('b', 2)] True" in done.stdout, done.stdout
    assert str(CLIENT_DIR / "alias") in done.stdout
    # outside ember-submit nothing named pyspark comes from Ember
    plain = subprocess.run([sys.executable, "-c", "import pyspark; print(pyspark.__file__)"],
                           capture_output=True, text=True, env=env, cwd=str(tmp_path))
    assert str(CLIENT_DIR) not in plain.stdout


def test_job_tags_and_cancel_jobs_with_tag(sc, gateway):
    sc.addJobTag("etl")
    sc.addJobTag("nightly")
    try:
        assert sc.getJobTags() == {"etl", "nightly"}
        sc.removeJobTag("nightly")
        assert sc.getJobTags() == {"etl"}
        with pytest.raises(ValueError):
            sc.addJobTag("a,b")
    finally:
        sc.clearJobTags()
    assert sc.getJobTags() == set()

    outcome: dict = {}

    def run():
        sc.addJobTag("slow-one")
        try:
            outcome["value"] = sc.parallelize(range(2), 2).map(
                lambda x: (time.sleep(30), x)[1]).collect()
        except BaseException as err:  # noqa: BLE001 - inspected below
            outcome["error"] = err
    thread = threading.Thread(target=run)
    thread.start()
    _wait_running(gateway, sc.applicationId)
    sc.cancelJobsWithTag("other")
    time.sleep(0.3)
    assert thread.is_alive()
    sc.cancelJobsWithTag("slow-one")
    thread.join(20)
    assert isinstance(outcome.get("error"), ember.JobCancelledError), outcome
    assert "cancelled part of cancelled job tag slow-one" in str(outcome["error"])


def test_status_tracker(sc):
    sc.setJobGroup("tracked", "tracked jobs")
    try:
        sc.parallelize(range(10), 2).map(lambda x: (x % 2, x)).reduceByKey(lambda a, b: a + b) \
            .collect()
    finally:
        sc.setLocalProperty("spark.jobGroup.id", None)
        sc.setLocalProperty("spark.job.description", None)
    tracker = sc.statusTracker()
    [job_id] = tracker.getJobIdsForGroup("tracked")
    info = tracker.getJobInfo(job_id)
    assert info.jobId == job_id and info.status == "SUCCEEDED" and len(info.stageIds) == 2
    stage = tracker.getStageInfo(max(info.stageIds))
    assert stage.numTasks == 2 and stage.numCompletedTasks == 2 and stage.numActiveTasks == 0
    assert tracker.getJobInfo(10 ** 6) is None and tracker.getStageInfo(10 ** 6) is None
    assert tracker.getActiveJobsIds() == [] and tracker.getActiveStageIds() == []
    assert job_id not in tracker.getJobIdsForGroup()


RETAINED_JOBS_SCRIPT = r'''
from ember import SparkConf, SparkContext
conf = SparkConf().setMaster("local[1]").setAppName("retained").set("spark.ui.retainedJobs", "3")
with SparkContext(conf=conf) as sc:
    sc.setJobGroup("kept", "jobs of a group")
    for _ in range(5):
        assert sc.parallelize([1, 2], 1).sum() == 3
    ids = sc.statusTracker().getJobIdsForGroup("kept")
    assert len(ids) == 3 and ids == sorted(ids, reverse=True), ids
    assert len(sc._jobs.groups) == 3, sc._jobs.groups    # the driver's memory stays bounded
    assert sc.statusTracker().getJobInfo(max(ids)).status == "SUCCEEDED"
    print("ok", len(ids))
'''


def test_status_tracker_keeps_the_groups_of_the_newest_retained_jobs(tmp_path):
    # Its own process: a driver runs one SparkContext, and the module's is running.
    import os
    import subprocess
    import sys
    from conftest import CLIENT_DIR
    script = tmp_path / "retained.py"
    script.write_text(RETAINED_JOBS_SCRIPT)
    env = dict(os.environ, PYTHONPATH=str(CLIENT_DIR))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=120, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "ok 3" in done.stdout, done.stdout


def test_set_system_property_is_a_default_of_new_confs():
    SparkContext.setSystemProperty("spark.ember.testDefault", "yes")
    try:
        assert SparkConf().get("spark.ember.testDefault") == "yes"
        assert SparkConf(loadDefaults=False).get("spark.ember.testDefault") is None
    finally:
        from ember import conf
        conf._system_properties.pop("spark.ember.testDefault", None)
