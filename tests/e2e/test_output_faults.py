"""A full disk or an unwritable output directory fails the job with a message
naming the path and the OS error; no partial output is left, files already in
the directory survive, and no daemon dies (the next job runs). (A full spill
directory of a block manager: test_cache_faults.py.)

The small disks are tmpfs mounts (the tests run as root); where mounting is
not permitted the tests are skipped with the reason.
"""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path
from typing import Iterator

import pytest

from conftest import wait_until
from ember import JobFailedError, SparkContext


def mount_tmpfs(where: Path, options: str) -> None:
    where.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs at {where} (needs root and CAP_SYS_ADMIN): "
                    f"{done.stderr.strip()}")


def unmount(where: Path) -> None:
    if subprocess.run(["umount", str(where)], capture_output=True).returncode != 0:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB file system holding a file and an earlier output that must survive."""
    disk = tmp_path / "small-disk"
    mount_tmpfs(disk, "size=1m")
    try:
        (disk / "keep.txt").write_text("written before the job\n")
        (disk / "earlier").mkdir()
        (disk / "earlier" / "part-00000").write_text("an earlier job's output\n")
        yield disk
    finally:
        unmount(disk)


def files_under(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): p.read_text() for p in folder.rglob("*") if p.is_file()}


def assert_cluster_whole(sc: SparkContext, daemons_before: list[int]) -> None:
    assert sorted(sc._cluster.pids()) == sorted(daemons_before), "a daemon died"
    assert sc.parallelize(range(10), 2).sum() == 45


@pytest.mark.parametrize("save", ["saveAsTextFile", "saveAsPickleFile"])
def test_a_full_disk_fails_the_job_and_leaves_nothing_behind(sc: SparkContext, small_disk: Path,
                                                            save: str) -> None:
    before = files_under(small_disk)
    daemons = sc._cluster.pids()
    out = small_disk / "out"
    lines = sc.parallelize(range(24000), 4).map(lambda i: f"{i:08d} " + "x" * 100)
    with pytest.raises(JobFailedError) as failure:
        getattr(lines, save)(str(out))
    message = str(failure.value)
    assert "No space left on device (ENOSPC)" in message, message
    assert f"{out}/_temporary/attempt_" in message, message
    assert f"writing {out} failed, its partial output was removed" in message, message
    assert not out.exists(), f"partial output left: {list(out.rglob('*'))}"
    assert files_under(small_disk) == before
    assert_cluster_whole(sc, daemons)
    # The space is free again: the same call with less data succeeds.
    getattr(sc.parallelize(range(100), 2), save)(str(out))
    assert (out / "_SUCCESS").exists()


def test_a_read_only_output_directory(sc: SparkContext, small_disk: Path) -> None:
    before = files_under(small_disk)
    daemons = sc._cluster.pids()
    done = subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stderr
    out = small_disk / "out"
    with pytest.raises(OSError) as failure:
        sc.parallelize(range(10), 2).saveAsTextFile(str(out))
    message = str(failure.value)
    assert "Read-only file system (EROFS)" in message and str(out) in message, message
    assert files_under(small_disk) == before
    assert_cluster_whole(sc, daemons)


def test_output_directory_turning_read_only_mid_job(sc: SparkContext, small_disk: Path) -> None:
    """The driver could create the directory, the tasks cannot write: the
    file system went read-only while the job's map stage ran."""
    before = files_under(small_disk)
    daemons = sc._cluster.pids()
    out = small_disk / "out"
    pairs = sc.parallelize(range(8), 2).map(lambda x: (time.sleep(0.5), (x % 3, x))[1])
    outcome: dict = {}

    def save() -> None:
        try:
            pairs.groupByKey(2).mapValues(sorted).saveAsTextFile(str(out))
        except BaseException as err:  # noqa: BLE001 - inspected below
            outcome["error"] = err
    job = threading.Thread(target=save)
    job.start()
    try:
        assert wait_until(lambda: (out / "_temporary").exists(), 20), "the save never started"
        done = subprocess.run(["mount", "-o", "remount,ro", str(small_disk)],
                              capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
    finally:
        job.join(60)
    err = outcome.get("error")
    assert isinstance(err, JobFailedError), outcome
    message = str(err)
    assert "Read-only file system (EROFS)" in message and f"{out}/_temporary/attempt_" in message, \
        message
    assert f"writing {out} failed, its partial output could not be removed" in message, message
    subprocess.run(["mount", "-o", "remount,rw", str(small_disk)], check=True)
    assert files_under(small_disk) == before, "a file was written"
    assert_cluster_whole(sc, daemons)


def test_an_output_path_under_a_regular_file(sc: SparkContext, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory\n")
    with pytest.raises(OSError) as failure:
        sc.parallelize(range(10), 2).saveAsPickleFile(str(blocker / "out"))
    message = str(failure.value)
    assert "Not a directory (ENOTDIR)" in message and str(blocker / "out") in message, message
    assert blocker.read_text() == "not a directory\n"
    assert sc.parallelize(range(10), 2).sum() == 45


def test_the_users_own_os_error_is_not_called_an_output_error(sc: SparkContext,
                                                               tmp_path: Path) -> None:
    # An OSError without a file name from user code (here a map before the save)
    # must reach the driver as itself, not as "cannot write the output file".
    def flaky(x: int) -> int:
        if x == 7:
            raise ConnectionResetError("the user's upstream service went away")
        return x
    with pytest.raises(JobFailedError) as failure:
        sc.parallelize(range(10), 2).map(flaky).saveAsTextFile(str(tmp_path / "out"))
    text = str(failure.value)
    assert "ConnectionResetError: the user's upstream service went away" in text
    assert "cannot write the output file" not in text
    assert not (tmp_path / "out").exists()
