"""Small task results travel inline: in the task's report to the master, which
keeps them and hands them out in GetJob (?inlineResults=1) and through the
gateway's result routes; larger ones are result blocks as before. Both must
give exactly what the block path gives (spark.ember.inlineResults=false).
"""

from __future__ import annotations

import contextlib
import urllib.request

import pytest

import ember
from conftest import Gateway, authorized
from ember.jobs import _frames

INLINE_MAX = 64 << 10                  # MASTER_INLINE_TASK_MAX


@contextlib.contextmanager
def blocks_only(sc):
    sc.setLocalProperty("spark.ember.inlineResults", "false")
    try:
        yield
    finally:
        sc.setLocalProperty("spark.ember.inlineResults", None)


def last_job(sc) -> int:
    return max(j["jobId"] for j in Gateway.of(sc).api(f"/applications/{sc.applicationId}/jobs"))


def download(sc, job: int, partition: int | None = None) -> list:
    """Records from the gateway's result route (all partitions, or one)."""
    url = f"http://{sc._client.address}/api/v1/applications/{sc.applicationId}/jobs/{job}/results"
    if partition is not None:
        url += f"/{partition}"
    with urllib.request.urlopen(authorized(url, sc)) as resp:
        return list(_frames(resp.read()))


def mixed(sc):
    """Partition 0's result is over the inline limit, the others are tiny."""
    return sc.parallelize(range(4), 4).map(
        lambda i: "x" * (3 * INLINE_MAX) if i == 0 else f"small {i}")


def test_small_results_come_inline_and_equal_the_block_path(sc):
    rdd = sc.parallelize(range(1000), 4).map(lambda x: (x, str(x) * 3))
    inline = rdd.collect()
    job = last_job(sc)
    with blocks_only(sc):
        blocks = rdd.collect()
    block_job = last_job(sc)
    assert inline == blocks == [(x, str(x) * 3) for x in range(1000)]

    gw = Gateway.of(sc)
    listed = gw.api(f"/applications/{sc.applicationId}/jobs/{job}")["results"]
    assert [r["inline"] for r in listed] == [True] * 4 and all("data" not in r for r in listed)
    assert all("blockManager" in r for r in
               gw.api(f"/applications/{sc.applicationId}/jobs/{block_job}")["results"])
    with_data = gw.api(f"/applications/{sc.applicationId}/jobs/{job}?inlineResults=1")["results"]
    assert all(r["inline"] and r["data"] for r in with_data)
    # The gateway's routes serve held results like blocks.
    assert download(sc, job) == download(sc, block_job) == blocks
    for p in range(4):
        assert download(sc, job, p) == download(sc, block_job, p)


def test_a_job_mixing_inline_results_and_blocks(sc):
    got = mixed(sc).collect()
    job = last_job(sc)
    with blocks_only(sc):
        assert mixed(sc).collect() == got
    assert got == ["x" * (3 * INLINE_MAX), "small 1", "small 2", "small 3"]
    results = Gateway.of(sc).api(f"/applications/{sc.applicationId}/jobs/{job}")["results"]
    assert "blockManager" in results[0] and "inline" not in results[0]
    assert all(r["inline"] for r in results[1:])
    assert download(sc, job) == got
    assert download(sc, job, 0) == got[:1] and download(sc, job, 2) == ["small 2"]


def test_empty_and_take_results_inline(sc):
    assert sc.parallelize(range(10), 5).filter(lambda x: x > 100).collect() == []
    assert sc.parallelize(range(10), 5).take(3) == [0, 1, 2]
    assert sc.parallelize(range(10), 5).count() == 10


def test_max_result_size_still_counts_inline_results(sc):
    before = sc._conf.get("spark.driver.maxResultSize")
    sc._conf.set("spark.driver.maxResultSize", "40k")
    try:
        rdd = sc.parallelize(range(4), 4).map(lambda i: b"y" * 30_000)   # inline-sized each
        with pytest.raises(ember.JobFailedError, match="spark.driver.maxResultSize"):
            rdd.collect()
        job = Gateway.of(sc).api(f"/applications/{sc.applicationId}/jobs/{last_job(sc)}")
        assert job["status"] == "FAILED"             # the master's check, not only the driver's
        assert "spark.driver.maxResultSize" in job["errorMessage"]
        assert "results" not in job
    finally:
        sc._conf.set("spark.driver.maxResultSize", before or "1g")
    assert len(sc.parallelize(range(4), 4).map(lambda i: b"y" * 30_000).collect()) == 4


def test_job_status_long_poll(sc):
    """?waitMs waits for a running job's end (at most 50 ms at the gateway) and
    answers RUNNING when it did not end; a waitMs that is not a number is 400."""
    import threading
    gw = Gateway.of(sc)
    app = sc.applicationId
    done: dict = {}
    thread = threading.Thread(target=lambda: done.update(
        r=sc.parallelize([1], 1).map(lambda x: __import__("time").sleep(1.5) or x).collect()))
    thread.start()
    from conftest import wait_until
    assert wait_until(lambda: gw.api(f"/applications/{app}/jobs")[0]["status"] == "RUNNING"
                      and gw.api(f"/applications/{app}/jobs")[0]["numActiveTasks"] == 1, 30)
    job = gw.api(f"/applications/{app}/jobs")[0]["jobId"]
    status, body = gw.get(f"/api/v1/applications/{app}/jobs/{job}?waitMs=100000")
    assert status == 200 and body["status"] == "RUNNING", body
    for bad in ["abc", "-1", "", "12x"]:
        status, body = gw.get(f"/api/v1/applications/{app}/jobs/{job}?waitMs={bad}")
        assert status == 400 and "waitMs" in body["error"], (bad, status, body)
    thread.join(30)
    assert done["r"] == [1]
    status, body = gw.get(f"/api/v1/applications/{app}/jobs/{job}?waitMs=50&inlineResults=1")
    assert status == 200 and body["status"] == "SUCCEEDED" and body["results"][0]["data"]
