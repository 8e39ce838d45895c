"""A task whose user code never finishes (it sleeps forever, or spins) is
stopped by cancelling its job through the gateway's REST API: the driver gets
JobCancelledError, the hung ember-pyexec is killed and replaced, the next job
runs. (The web UI's kill button, which uses the same route: test_ui_browser.py.)
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any, Callable

import pytest

import ember
from conftest import Gateway, is_alive, pyexec_pids, wait_until
from ember import SparkContext


def hang_sleeping(pid_file: str) -> Callable[[Any], Any]:
    def run(x: Any) -> Any:
        with open(pid_file, "w") as fh:
            fh.write(str(os.getpid()))
        time.sleep(10 ** 6)
        return x
    return run


def hang_spinning(pid_file: str) -> Callable[[Any], Any]:
    def run(x: Any) -> Any:
        with open(pid_file, "w") as fh:
            fh.write(str(os.getpid()))
        while True:
            x += 1
    return run


class HungJob:
    """A one-task job started in a thread whose user code never returns;
    ``pid`` is the ember-pyexec running it once it started."""

    def __init__(self, sc: SparkContext, tmp_path: Path, hang: Callable) -> None:
        self.sc = sc
        self.gw = Gateway.of(sc)
        self.pid_file = tmp_path / "hung-pid"
        self.outcome: dict = {}
        self.thread = threading.Thread(target=self._run, args=(hang(str(self.pid_file)),))
        self.thread.start()
        assert wait_until(lambda: self.pid_file.exists() and self.pid_file.read_text(), 30), \
            "the hanging task never started"
        self.pid = int(self.pid_file.read_text())
        self.job_id = max(j["jobId"] for j in self.gw.api(f"/applications/{sc.applicationId}/jobs"))
        self.worker = next(w for w, pids in pyexec_pids(sc).items() if self.pid in pids)

    def _run(self, func: Callable) -> None:
        try:
            self.outcome["value"] = self.sc.parallelize([1], 1).map(func).collect()
        except BaseException as err:  # noqa: BLE001 - inspected by the test
            self.outcome["error"] = err

    def assert_stopped_and_replaced(self) -> None:
        """The driver got JobCancelledError, the pyexec is gone, a new one serves
        the worker and the next job runs."""
        self.thread.join(30)
        assert not self.thread.is_alive(), "the driver still waits for the cancelled job"
        err = self.outcome.get("error")
        assert isinstance(err, ember.JobCancelledError), self.outcome
        assert f"Job {self.job_id} cancelled" in str(err), str(err)
        assert wait_until(lambda: not is_alive(self.pid), 10), \
            f"the hung ember-pyexec {self.pid} still runs"
        job = self.gw.api(f"/applications/{self.sc.applicationId}/jobs/{self.job_id}")
        assert job["status"] == "FAILED" and job.get("cancelled") is True, job
        replaced = wait_until(lambda: [p for p in pyexec_pids(self.sc).get(self.worker, [])
                                       if p != self.pid], 10)
        assert replaced, f"worker {self.worker} has no ember-pyexec after the kill"
        assert sorted(self.sc.parallelize(range(20), 4).map(lambda x: x * 2).collect()) == \
            list(range(0, 40, 2))


@pytest.mark.parametrize("hang", [hang_sleeping, hang_spinning], ids=["sleep", "busy-loop"])
def test_cancel_a_hung_task_through_the_rest_api(sc: SparkContext, gateway: Gateway,
                                                 tmp_path: Path, hang: Callable) -> None:
    hung = HungJob(sc, tmp_path, hang)
    status, reply = gateway.post(
        f"/api/v1/applications/{sc.applicationId}/jobs/{hung.job_id}/cancel")
    assert status == 200 and reply == {"jobId": hung.job_id, "cancelled": True}, (status, reply)
    hung.assert_stopped_and_replaced()
