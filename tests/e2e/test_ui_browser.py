"""The web UI in a real browser: Debian's headless Chromium driven by
chromedriver through python3-selenium, against this module's local cluster.

Every page must load without console errors and show the jobs this module ran;
a running job's progress bar advances without a reload; the DAG and the event
timeline are SVG with one box per stage and one bar per task; a job description
holding a script tag stays text. A screenshot of each page is saved in
build/test-artifacts/.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
import time
from typing import Any, Callable

import pytest

import ember
from conftest import BIN_DIR, REPO, Gateway, count_words, last_job

webdriver = pytest.importorskip(
    "selenium.webdriver",
    reason="python3-selenium is not installed (deploy/install-deps.sh installs it)")
from selenium.common.exceptions import NoAlertPresentException  # noqa: E402
from selenium.webdriver.chrome.options import Options  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
ARTIFACTS = REPO / "build" / "test-artifacts"
EVIL = "<script>alert(1)</script>"
# Headless as root on a machine without outside network: no sandbox, no GPU,
# none of the background connections Chromium would try to make.
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                  "--window-size=1400,1000")

if not (os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)):
    pytest.skip(f"Debian's chromium and chromium-driver are not installed ({CHROMIUM}, "
                f"{CHROMEDRIVER}); deploy/install-deps.sh installs them",
                allow_module_level=True)


# ---- the jobs the pages must show ---------------------------------------------------------

@pytest.fixture(scope="module")
def ran(sc, gateway: Gateway, small_corpus) -> dict[str, Any]:
    """A word count (2 stages), a 3-stage job, the XSS probe, a failing job, a cached RDD."""
    app = sc.applicationId
    jobs: dict[str, Any] = {}
    counts = (sc.textFile(",".join(str(p) for p in small_corpus), minPartitions=4)
              .flatMap(lambda line: line.split()).map(lambda w: (w, 1))
              .reduceByKey(lambda a, b: a + b, numPartitions=2))
    assert dict(counts.collect()) == count_words(small_corpus)
    jobs["wordcount"] = last_job(gateway, app)

    by_length = (sc.parallelize(range(600), 3).map(lambda x: (x % 30, 1))
                 .reduceByKey(lambda a, b: a + b, 2).map(lambda kv: (kv[1] % 4, kv[0]))
                 .groupByKey(2).mapValues(len))
    assert dict(by_length.collect()) == {0: 30}
    jobs["three_stages"] = last_job(gateway, app)

    sc.setJobDescription(EVIL)
    try:
        assert sc.parallelize(range(4), 2).count() == 4
    finally:
        sc.setJobDescription(None)
    jobs["xss"] = last_job(gateway, app)

    with pytest.raises(Exception, match="ZeroDivisionError"):
        sc.parallelize(range(2), 2).map(lambda x: x / 0).collect()
    jobs["failed"] = last_job(gateway, app)

    cached = sc.parallelize(range(300), 3).map(lambda x: x * 2).cache()
    assert cached.count() == 300
    jobs["cached_rdd"] = cached.id()
    for key in ("wordcount", "three_stages", "xss", "failed"):
        jobs[key]["stages"] = [gateway.api(f"/applications/{app}/stages/{s}")
                               for s in jobs[key]["stageIds"]]
    return jobs


# ---- the browser ------------------------------------------------------------------------------

class Browser:
    """One headless Chromium; page(route) opens a view and checks the console and
    that the page fits the window's width (wide graphs scroll inside their box)."""

    def __init__(self, base: str, profile: str) -> None:
        options = Options()
        options.binary_location = CHROMIUM
        for flag in CHROMIUM_FLAGS:
            options.add_argument(flag)
        options.add_argument(f"--user-data-dir={profile}")
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        self.driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
        self.base = base.rstrip("/")

    def page(self, route: str, title: str, screenshot: str) -> None:
        """Opens #route, waits for the view titled `title`, saves a screenshot and
        fails on any console error so far."""
        self.driver.get(f"{self.base}/{route}")
        self.wait(lambda d: d.title == f"{title} \u00b7 Ember"
                  and d.find_element("id", "updated").text.startswith("updated"),
                  f"the page {route} never showed {title!r} (title {self.driver.title!r})")
        self.driver.save_screenshot(str(ARTIFACTS / f"{screenshot}.png"))
        self.assert_no_console_errors()
        overflow = self.js("const e = document.documentElement; return e.scrollWidth - e.clientWidth")
        assert overflow <= 0, f"{route} is {overflow} px wider than the window"

    def login(self, secret: str) -> None:
        """Logs in through the UI's form: a wrong secret is refused, the right one
        gives an HttpOnly cookie (invisible to scripts) and the views load."""
        self.driver.get(self.base + "/")
        self.wait(lambda d: d.find_element("id", "login").is_displayed(),
                  "the UI of a cluster with a secret showed no login form")
        field = self.driver.find_element("id", "login-secret")
        field.send_keys("not-the-secret-0123456789")
        self.driver.find_element("css selector", "#login button").click()
        self.wait(lambda d: d.find_element("id", "login-error").text == "Wrong secret.",
                  "a wrong secret was not refused")
        self.driver.save_screenshot(str(ARTIFACTS / "login.png"))
        field.clear()
        field.send_keys(secret)
        self.driver.find_element("css selector", "#login button").click()
        self.wait(lambda d: not d.find_element("id", "login").is_displayed()
                  and d.find_element("id", "updated").text.startswith("updated"),
                  "the right secret did not open the UI")
        assert self.js("return document.cookie") == "", "the session cookie is readable by scripts"
        self.driver.get_log("browser")     # the refused calls above logged console errors

    def wait(self, predicate: Callable[[Any], Any], message: str, timeout: float = 15) -> Any:
        return WebDriverWait(self.driver, timeout, poll_frequency=0.1).until(predicate, message)

    def js(self, script: str, *args: Any) -> Any:
        """Runs script in the page (one turn of its event loop, so a refresh cannot
        replace the elements half-way through reading them)."""
        return self.driver.execute_script(script, *args)

    def assert_no_console_errors(self) -> None:
        errors = [e for e in self.driver.get_log("browser") if e["level"] == "SEVERE"]
        assert not errors, f"console errors: {errors}"

    def quit(self) -> None:
        self.driver.quit()


@pytest.fixture(scope="module")
def browser(sc, ran) -> Browser:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="ember-chromium-") as profile:
        b = Browser(sc.uiWebUrl, profile)
        try:
            b.login(sc._cluster.secret)
            yield b
        finally:
            b.quit()


JOB_ROWS = """
return [...document.querySelectorAll('tr.job-row')].map((r) => ({
  id: Number(r.dataset.jobId), status: r.dataset.status, table: r.closest('table').id,
  description: r.children[1].querySelector('a').textContent, stages: r.children[4].textContent,
  done: Number(r.querySelector('.bar').dataset.done), total: Number(r.querySelector('.bar').dataset.total),
  statusText: r.querySelector('.status').textContent}));
"""


def job_rows(browser: Browser) -> dict[int, dict]:
    return {row["id"]: row for row in browser.js(JOB_ROWS)}


# ---- the pages ------------------------------------------------------------------------------------

def test_jobs_page_lists_the_jobs_that_ran(browser, ran):
    browser.page("#/jobs", "Jobs", "jobs")
    rows = job_rows(browser)
    for key in ("wordcount", "three_stages", "xss"):
        job, row = ran[key], rows[ran[key]["jobId"]]
        assert row["description"] == job["description"], row
        assert row["table"] == "completed-jobs" and row["statusText"] == "SUCCEEDED", row
        assert row["stages"] == f"{job['numStages']}/{job['numStages']}", row
        assert row["done"] == row["total"] == job["numTasks"] > 0, row
    assert rows[ran["wordcount"]["jobId"]]["description"].startswith("collect at test_ui_browser.py:")
    failed = rows[ran["failed"]["jobId"]]
    assert failed["table"] == "failed-jobs" and failed["statusText"] == "FAILED", failed
    summary = browser.js("return document.querySelector('details summary').textContent")
    assert "ZeroDivisionError" in summary


def test_running_job_is_listed_first_and_its_progress_bar_advances(sc, gateway, browser, ran):
    def slow():
        sc.parallelize(range(8), 8).map(lambda x: time.sleep(0.6) or x).collect()

    browser.page("#/jobs", "Jobs", "jobs")
    browser.js("window.emberNotReloaded = true;")
    worker = threading.Thread(target=slow)
    worker.start()
    try:
        first = browser.wait(lambda _: next((r for r in browser.js(JOB_ROWS)
                                             if r["status"] == "RUNNING"), None),
                             "the running job never showed up")
        assert first["table"] == "active-jobs" and first["statusText"] == "RUNNING"
        assert browser.js(JOB_ROWS)[0]["id"] == first["id"], "the running job is not first"
        assert first["total"] == 8
        browser.driver.save_screenshot(str(ARTIFACTS / "jobs-running.png"))
        seen = {first["done"]}
        browser.wait(lambda _: seen.add(job_rows(browser)[first["id"]]["done"]) or max(seen) > first["done"],
                     "the progress bar never advanced")
        finished = browser.wait(lambda _: job_rows(browser)[first["id"]]["status"] == "SUCCEEDED"
                                and job_rows(browser)[first["id"]], "the job never finished")
    finally:
        worker.join()
    assert finished["table"] == "completed-jobs" and finished["done"] == 8
    assert browser.js("return window.emberNotReloaded === true"), "the page reloaded"
    browser.assert_no_console_errors()


def test_job_page_draws_the_stage_dag(sc, browser, ran):
    job = ran["three_stages"]
    browser.page(f"#/jobs/{sc.applicationId}/{job['jobId']}", f"Job {job['jobId']}", "job-dag")
    drawn = browser.js("""
      const svg = document.querySelector('svg.dag');
      return {stages: [...svg.querySelectorAll('g.dag-stage')].map((g) => ({
                id: Number(g.dataset.stageId),
                rdds: [...g.querySelectorAll('g.dag-rdd-node')].map((n) => Number(n.dataset.rddId))})),
              edges: [...svg.querySelectorAll('path.dag-edge')].map((p) => [Number(p.dataset.from), Number(p.dataset.to)])};
    """)
    stages = {s["stageId"]: s for s in job["stages"]}
    assert len(drawn["stages"]) == len(stages) == 3
    for box in drawn["stages"]:
        assert box["rdds"] == stages[box["id"]]["rddIds"], box
    want = sorted([p, s["stageId"]] for s in stages.values() for p in s["parentIds"])
    assert sorted(drawn["edges"]) == want and len(want) == 2, drawn["edges"]


def test_job_page_timeline_has_a_bar_per_task(sc, browser, ran):
    job = ran["wordcount"]
    browser.page(f"#/jobs/{sc.applicationId}/{job['jobId']}", f"Job {job['jobId']}", "job-timeline")
    drawn = browser.js("""
      const svg = document.querySelector('svg.timeline');
      return {tasks: [...svg.querySelectorAll('rect.tl-task')].map((r) => Number(r.dataset.taskId)),
              executors: [...svg.querySelectorAll('g.tl-executor')].map((g) => g.dataset.executorId)};
    """)
    tasks = [t for s in job["stages"] for t in s["tasks"]]
    assert sorted(drawn["tasks"]) == sorted(t["taskId"] for t in tasks)
    assert sorted(drawn["executors"]) == sorted({t["executorId"] for t in tasks})
    rows = browser.js("return [...document.querySelectorAll('tr.stage-row')].map((r) => Number(r.dataset.stageId))")
    assert sorted(rows) == sorted(job["stageIds"])


def test_stages_page_and_stage_detail(sc, browser, ran):
    job = ran["wordcount"]
    browser.page("#/stages", "Stages", "stages")
    rows = browser.js("""return [...document.querySelectorAll('tr.stage-row')].map((r) => ({
        id: Number(r.dataset.stageId), status: r.dataset.status, table: r.closest('table').id}))""")
    listed = {r["id"]: r for r in rows}
    for s in job["stages"]:
        assert listed[s["stageId"]]["status"] == "COMPLETE"
        assert listed[s["stageId"]]["table"] == "complete-stages"
    failed = ran["failed"]["failedStage"]
    assert listed[failed]["table"] == "failed-stages"

    stage = max(job["stages"], key=lambda s: s["stageId"])     # the reduce stage
    browser.page(f"#/stages/{sc.applicationId}/{stage['stageId']}", f"Stage {stage['stageId']}",
                 "stage")
    shown = browser.js("""return {
        quantiles: [...document.querySelectorAll('table.quantiles tr.quantile-row')].map((r) =>
            [r.dataset.metric, r.children.length]),
        tasks: [...document.querySelectorAll('tr.task-row')].map((r) => Number(r.dataset.taskId)),
        bars: document.querySelectorAll('svg.timeline rect.tl-task').length}""")
    assert [m for m, _ in shown["quantiles"]] == ["durationMs", "recordsIn", "recordsOut",
                                                  "shuffleReadBytes", "shuffleWriteBytes"]
    assert all(cells == 6 for _, cells in shown["quantiles"]), shown["quantiles"]
    assert sorted(shown["tasks"]) == sorted(t["taskId"] for t in stage["tasks"])
    assert shown["bars"] == len(stage["tasks"])


def test_storage_page_shows_the_cached_rdd_and_block_managers(sc, browser, ran):
    browser.page("#/storage", "Storage", "storage")
    rdd = browser.wait(lambda _: browser.js(
        "const r = document.querySelector('tr.rdd-row[data-rdd-id=\"' + arguments[0] + '\"]');"
        "return r && [...r.children].map((c) => c.textContent);", ran["cached_rdd"]),
        "the cached RDD is not listed")
    assert rdd[2] == "Memory Deserialized 1x Replicated" and rdd[3] == "3 / 3", rdd
    assert browser.js("return document.querySelectorAll('tr.bm-row').length") == 2


def test_executors_page_lists_the_workers(browser, ran):
    browser.page("#/executors", "Executors", "executors")
    rows = browser.js("""return [...document.querySelectorAll('tr.executor-row')].map((r) =>
        [r.dataset.executorId, r.dataset.state])""")
    assert rows == [["worker-0", "alive"], ["worker-1", "alive"]]


def test_environment_page_shows_versions_and_properties(sc, browser, ran):
    browser.page(f"#/environment/{sc.applicationId}", "Environment", "environment")
    tables = browser.js("""const t = {};
        for (const id of ['env-runtime', 'env-properties', 'env-master', 'env-gateway'])
          t[id] = Object.fromEntries([...document.querySelectorAll('#' + id + ' tbody tr')]
                                     .map((r) => [r.children[0].textContent, r.children[1].textContent]));
        return t;""")
    assert tables["env-runtime"]["Ember"] == ember.__version__
    assert tables["env-properties"]["spark.app.id"] == sc.applicationId
    assert tables["env-master"]["--max-failures"] == "4"
    assert "--master" in tables["env-gateway"]


def test_drivers_page_lists_a_cluster_mode_driver(sc, browser, ran, tmp_path):
    script = tmp_path / "exit3.py"
    script.write_text("print('hello from the driver')\nraise SystemExit(3)\n")
    done = subprocess.run([str(BIN_DIR / "ember-submit"), "--master", "ember://" + sc._client.address,
                           "--deploy-mode", "cluster", "--name", EVIL, str(script)],
                          capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, EMBER_AUTH_SECRET=sc._cluster.secret))
    assert done.returncode == 3, done.stderr
    browser.page("#/drivers", "Drivers", "drivers")
    rows = browser.js("""return [...document.querySelectorAll('tr.driver-row')].map((r) => ({
        id: r.dataset.driverId, state: r.dataset.state, name: r.children[1].firstChild.textContent,
        exit: r.children[6].textContent, logs: [...r.querySelectorAll('a')].map((a) => a.getAttribute('href'))}))""")
    assert len(rows) == 1 and rows[0]["state"] == "FAILED" and rows[0]["exit"] == "3"
    assert rows[0]["name"] == EVIL
    driver = rows[0]["id"]
    assert rows[0]["logs"] == [f"/api/v1/drivers/{driver}/stdout", f"/api/v1/drivers/{driver}/stderr"]
    assert browser.js("return document.querySelectorAll('#view script').length") == 0
    status, text = Gateway.of(sc).get(rows[0]["logs"][0])
    assert status == 200 and text == "hello from the driver\n"


def test_xss_probe_stays_text(sc, browser, ran):
    job = ran["xss"]
    browser.page("#/jobs", "Jobs", "jobs-xss")
    assert job_rows(browser)[job["jobId"]]["description"] == EVIL
    browser.page(f"#/jobs/{sc.applicationId}/{job['jobId']}", f"Job {job['jobId']}", "job-xss")
    assert browser.js("return document.querySelector('h1').textContent") == \
        f"Job {job['jobId']}: {EVIL}"
    assert browser.js("return document.querySelectorAll('#view script').length") == 0
    assert browser.js("return document.scripts.length") == 1, "only the UI's own script"
    with pytest.raises(NoAlertPresentException):
        browser.driver.switch_to.alert.text


def test_kill_button_stops_a_hung_job(sc, browser, ran, tmp_path):
    from selenium.webdriver.support import expected_conditions
    from test_cancel_hung import HungJob, hang_spinning
    hung = HungJob(sc, tmp_path, hang_spinning)
    browser.page("#/jobs", "Jobs", "jobs-kill-button")
    browser.wait(lambda _: browser.js(
        f"return !!document.querySelector('tr.job-row[data-job-id=\"{hung.job_id}\"] button.kill')"),
        "the running job's row has no kill button")
    route = f"#/jobs/{sc.applicationId}/{hung.job_id}"
    browser.page(route, f"Job {hung.job_id}", "job-kill-button")
    # Clicked from a timer: the confirmation dialog must not block this call.
    browser.js("setTimeout(() => document.querySelector('button.kill').click(), 0)")
    alert = browser.wait(expected_conditions.alert_is_present(), "no confirmation was asked")
    assert alert.text == f"Kill job {hung.job_id}?"
    alert.accept()
    hung.assert_stopped_and_replaced()
    browser.wait(lambda _: browser.js(
        "return document.querySelector('dl.facts .status').textContent") == "FAILED",
        "the job page never showed the job FAILED")
    assert browser.js("return document.querySelectorAll('button.kill').length") == 0
    browser.assert_no_console_errors()
