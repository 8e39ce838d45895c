"""The web UI, fetched over HTTP, shows the jobs with their call sites and durations."""

from __future__ import annotations

import html
import inspect
import re
import urllib.request

import pytest

from conftest import authorized, count_words

DURATION = re.compile(r"<td>\s*(\d+ ms|\d+(\.\d+)? (s|min|h))\s*</td>")


def fetch(url: str, sc) -> tuple[int, str, str]:
    with urllib.request.urlopen(authorized(url, sc), timeout=30) as resp:
        return resp.status, resp.headers.get("Content-Type", ""), resp.read().decode("utf-8")


def rows_containing(page: str, text: str) -> list[str]:
    return [row for row in re.findall(r"<tr>.*?</tr>", page, re.S) if text in row]


@pytest.fixture(scope="module")
def wordcount_job(sc, small_corpus):
    """Runs a word count whose action is on a known line of this file."""
    counts = (sc.textFile(",".join(str(p) for p in small_corpus), minPartitions=4)
              .flatMap(lambda line: line.split())
              .map(lambda w: (w, 1))
              .reduceByKey(lambda a, b: a + b, numPartitions=2))
    line, result = inspect.currentframe().f_lineno, counts.collect()
    assert dict(result) == count_words(small_corpus)
    return {"line": line, "description": f"collect at test_ui.py:{line}",
            "callSite": f"test_ui.py:{line}"}


def test_jobs_page_lists_the_job_with_call_site_and_duration(sc, wordcount_job):
    status, ctype, page = fetch(sc.uiWebUrl + "jobs", sc)
    assert status == 200
    assert ctype.startswith("text/html"), ctype
    rows = rows_containing(page, wordcount_job["description"])
    assert len(rows) == 1, f"'{wordcount_job['description']}' not in one row of /jobs:\n{page}"
    assert DURATION.search(rows[0]), f"no duration in the row: {rows[0]}"
    assert "SUCCEEDED" in rows[0], rows[0]


def test_index_page_is_html(sc):
    status, ctype, page = fetch(sc.uiWebUrl, sc)
    assert status == 200
    assert ctype.startswith("text/html"), ctype
    assert re.match(r"\s*<!doctype html>", page, re.I), page[:200]
    assert "/api/v1" in page, "the live UI does not read the REST API"


def test_api_lists_the_job_with_duration_and_status(sc, gateway, wordcount_job):
    jobs = gateway.api("/jobs")
    mine = [j for j in jobs if j.get("description") == wordcount_job["description"]]
    assert len(mine) == 1, jobs
    job = mine[0]
    assert job["appId"] == sc.applicationId
    assert job["callSite"] == wordcount_job["callSite"]
    assert job["status"] == "SUCCEEDED"
    assert isinstance(job["durationMs"], int) and job["durationMs"] >= 0
    assert job["numStages"] == 2 and job["numCompletedStages"] == 2, job
    assert job["numTasks"] == job["numCompletedTasks"] > 0, job
    assert "completionTime" in job and "submissionTime" in job
    ids = [j["jobId"] for j in jobs]
    assert ids == sorted(ids, reverse=True), f"jobs are not newest first: {ids}"


def test_job_description_is_html_escaped(sc, gateway, wordcount_job):
    evil = "<script>alert(1)</script>"
    sc.setJobDescription(evil)
    try:
        assert sc.parallelize(range(4), 2).count() == 4
    finally:
        sc.setJobDescription(None)
    jobs = gateway.api(f"/applications/{sc.applicationId}/jobs")
    assert any(j.get("description") == evil for j in jobs), jobs

    status, _, page = fetch(sc.uiWebUrl + "jobs", sc)
    assert status == 200
    assert evil not in page
    assert "<script" not in page.lower(), "a script tag reached the page"
    assert html.escape(evil, quote=True) in page or html.escape(evil, quote=False) in page
    # the next job gets its call-site description again
    assert sc.parallelize([1], 1).collect() == [1]
    newest = max(gateway.api(f"/applications/{sc.applicationId}/jobs"), key=lambda j: j["jobId"])
    assert newest["description"].startswith("collect at test_ui.py:"), newest
