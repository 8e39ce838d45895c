"""What the cluster keeps of cluster-mode drivers is bounded: the master
forgets the oldest finished drivers beyond --retained-drivers, and a worker
holds at most --driver-log-bytes of a driver's output for a master that does
not answer (the driver's own files keep everything)."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

from conftest import BIN_DIR, Gateway, export_secret, start_sc, wait_until
from ember import SparkContext

LOG_BYTES = 1024


def submit(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN_DIR / "ember-submit"), *args], capture_output=True,
                          text=True, timeout=120)


@pytest.fixture(scope="module")
def cluster(request: pytest.FixtureRequest) -> SparkContext:
    sc = start_sc(request, "e2e-cluster-limits", EMBER_RETAINED_DRIVERS="2",
                  EMBER_DRIVER_LOG_BYTES=str(LOG_BYTES))
    export_secret(request, sc)
    return sc


@pytest.fixture(scope="module")
def gw(cluster: SparkContext) -> Gateway:
    return Gateway.of(cluster)


@pytest.fixture(scope="module")
def master_url(cluster: SparkContext) -> str:
    return "ember://" + cluster._client.address


def no_wait(master_url: str, script: Path, *args: str) -> str:
    done = submit(["--master", master_url, "--deploy-mode", "cluster", "--no-wait",
                   str(script), *args])
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_the_oldest_finished_drivers_are_forgotten(gw: Gateway, master_url: str,
                                                   tmp_path: Path) -> None:
    script = tmp_path / "quick.py"
    script.write_text("print('done')\n")
    ids = []
    for _ in range(3):
        ids.append(no_wait(master_url, script))
        assert wait_until(lambda: gw.api(f"/drivers/{ids[-1]}")["state"] == "FINISHED", 60)
    assert gw.get(f"/api/v1/drivers/{ids[0]}")[0] == 404
    kept = {d["id"] for d in gw.api("/drivers")}
    assert set(ids[1:]) <= kept and ids[0] not in kept
    assert gw.get(f"/api/v1/drivers/{ids[2]}/stdout") == (200, "done\n")


WAITS_THEN_PRINTS = """
import os, sys, time
while not os.path.exists(sys.argv[1]):
    time.sleep(0.05)
for i in range(40):
    print(f"{i:04d}" + "x" * 95)
"""


def test_a_worker_keeps_only_the_last_log_bytes_for_an_unreachable_master(
        cluster: SparkContext, gw: Gateway, master_url: str, tmp_path: Path) -> None:
    script = tmp_path / "prints.py"
    script.write_text(WAITS_THEN_PRINTS)
    go = tmp_path / "go"
    driver = no_wait(master_url, script, str(go))
    assert wait_until(lambda: gw.api(f"/drivers/{driver}")["state"] == "RUNNING", 30)
    worker = gw.api(f"/drivers/{driver}")["workerId"]
    worker_log = Path(cluster._cluster.log_dir) / f"{worker}.log"
    master_pid = cluster._cluster.pids("ember-master")[0]
    os.kill(master_pid, signal.SIGSTOP)
    try:
        go.write_text("")
        assert wait_until(lambda: f"driver={driver} the master does not take its output"
                          in worker_log.read_text(errors="replace"), 30)
    finally:
        os.kill(master_pid, signal.SIGCONT)
    assert wait_until(lambda: gw.api(f"/drivers/{driver}")["state"] == "FINISHED", 60)
    lines = [f"{i:04d}" + "x" * 95 + "\n" for i in range(40)]
    status, kept = gw.get(f"/api/v1/drivers/{driver}/stdout")
    assert status == 200 and kept == "".join(lines)[-LOG_BYTES:]
    work = Path(cluster._cluster.run_dir) / f"{worker}-work" / driver
    assert (work / "stdout").read_text() == "".join(lines)
