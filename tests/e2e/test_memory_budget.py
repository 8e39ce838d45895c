"""One memory budget per worker for its Python subprocesses' resident memory
(--python-memory-soft/-hard, here through EMBER_WORKER_PYTHON_MEMORY_*): a task
whose subprocess grows over the hard budget fails with a reason that says so
(after spark.task.maxFailures attempts the job fails), the worker stays up; an
idle subprocess holding memory over the soft budget is recycled."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from conftest import Gateway, is_alive, pyexec_pids, start_sc, wait_until
from ember import JobFailedError, SparkContext

SOFT_MIB, HARD_MIB = 150, 300

pytestmark = pytest.mark.skipif(
    bool(os.environ.get("EMBER_SANITIZED")),
    reason="AddressSanitizer's shadow memory and quarantine inflate every pyexec's resident "
           "memory: budgets sized for plain builds say nothing there")


@pytest.fixture(scope="module")
def budget_sc(request: pytest.FixtureRequest) -> SparkContext:
    return start_sc(request, "e2e-memory-budget",
                    EMBER_WORKER_PYTHON_MEMORY_SOFT=f"{SOFT_MIB}m",
                    EMBER_WORKER_PYTHON_MEMORY_HARD=f"{HARD_MIB}m")


def grow(mib: int, then_sleep: float):
    """A task that touches mib MiB in 16 MiB steps, then holds them."""
    def run(x):
        import time as t
        held = [b"\x01" * (16 << 20) for _ in range(mib // 16)]
        t.sleep(then_sleep)
        return x + len(held)
    return run


def test_a_task_over_the_hard_budget_fails_with_that_reason(budget_sc: SparkContext) -> None:
    sc = budget_sc
    daemons = sorted(sc._cluster.pids())
    with pytest.raises(JobFailedError) as failure:
        sc.parallelize([0], 1).map(grow(HARD_MIB + 200, 30)).collect()
    message = str(failure.value)
    assert re.search(rf"Python worker used \d+ MiB, over the worker's memory budget of "
                     rf"{HARD_MIB} MiB \(--python-memory-hard\)", message), message
    assert "failed 4 times" in message, message
    gw = Gateway.of(sc)
    stage = gw.api(f"/applications/{sc.applicationId}/stages/{failure.value.stage}")
    attempts = [t for t in stage["tasks"] if t["index"] == 0]
    assert len(attempts) == 4, attempts
    assert all(t["status"] == "FAILED" and "over the worker's memory budget" in t["errorMessage"]
               for t in attempts), attempts
    # The workers stayed up and run the next job.
    assert sorted(sc._cluster.pids()) == daemons
    assert sc.parallelize(range(10), 2).map(lambda x: x + 1).sum() == 55


def test_an_idle_subprocess_over_the_soft_budget_is_recycled(budget_sc: SparkContext,
                                                             tmp_path: Path) -> None:
    sc = budget_sc
    pid_file = tmp_path / "pid"

    def hold(x):
        import builtins
        import os as o
        # Kept after the task: this pyexec stays big while idle.
        builtins._ember_test_ballast = b"\x02" * ((SOFT_MIB + 40) << 20)
        with open(str(pid_file), "w") as fh:
            fh.write(f"{o.getpid()} {o.getppid()}")
        return x
    assert sc.parallelize([7], 1).map(hold).collect() == [7]
    pid, worker = map(int, pid_file.read_text().split())     # it may be recycled already
    assert wait_until(lambda: not is_alive(pid), 10), f"ember-pyexec {pid} was not recycled"
    assert wait_until(lambda: [p for p in pyexec_pids(sc)[worker] if p != pid], 10), \
        "no new ember-pyexec took its place"
    tag = next(p.args[p.args.index("--id") + 1] for p in sc._cluster.processes if p.pid == worker)
    log = Path(sc._cluster.log_dir, f"{tag}.log").read_text(errors="replace")
    assert re.search(rf"pyexec={pid} recycled: it used \d+ MiB while idle.*soft memory budget "
                     rf"of {SOFT_MIB} MiB", log), log[-2000:]
    assert sc.parallelize(range(10), 2).sum() == 45


def test_a_soft_budget_above_the_hard_one_is_refused(tmp_path: Path) -> None:
    import subprocess
    from conftest import BIN_DIR
    done = subprocess.run(
        [str(BIN_DIR / "ember-worker"), "--listen", "127.0.0.1:0", "--master", "127.0.0.1:9",
         "--python-memory-soft", "2g", "--python-memory-hard", "1g"],
        capture_output=True, text=True, timeout=30,
        env=dict(os.environ, EMBER_PARENT_PID=str(os.getpid())))
    assert done.returncode != 0
    assert "--python-memory-soft (2048 MiB) must not be above --python-memory-hard (1024 MiB)" \
        in done.stderr, done.stderr
    bad = subprocess.run(
        [str(BIN_DIR / "ember-worker"), "--listen", "127.0.0.1:0", "--python-memory-hard", "lots"],
        capture_output=True, text=True, timeout=30)
    assert bad.returncode != 0 and "option --python-memory-hard: 'lots' is not a size" \
        in bad.stderr, bad.stderr
