"""The bench suite's floor2 system (bench/suite/floor_workloads.py): the KMeans user code in
2 worker processes with no engine. Run at a small size through the suite's own runner (a
fresh process per run, real files), its result must pass the same check as one-process
Python's, and the check must catch a floor that computed something else.

No timing is asserted: performance lives in bench/ and is run by hand.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

BENCH_DIR = Path(__file__).resolve().parents[2] / "bench"
if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))

import bench_suite  # noqa: E402  (needs the sys.path above)
from suite import floor_workloads, gen, report  # noqa: E402

POINTS = 8_000
DIMS = 4


@pytest.fixture(scope="module")
def kmeans_spec(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("bench-data")
    spec, _ = bench_suite.make_spec("kmeans", {"points": POINTS, "dims": DIMS},
                                    str(data_dir), seed=7)
    return spec, data_dir


def _run(system: str, spec: dict, data_dir: Path) -> dict:
    return bench_suite.run_one(system, "kmeans", spec, str(data_dir / "runs" / system), 300)


def test_floor_covers_every_file_once_round_robin(kmeans_spec):
    spec, _ = kmeans_spec
    split = floor_workloads._split_files(spec["input"], 2)
    files = gen.data_files(spec["input"])
    assert len(files) == gen.POINT_FILES
    assert split == [files[0::2], files[1::2]]


def test_floor_matches_python_and_reports_every_iteration(kmeans_spec):
    spec, data_dir = kmeans_spec
    rows = {}
    for system in ("python", "floor2"):
        run = _run(system, spec, data_dir)
        rows[system] = dict(report.summarize("kmeans", run, spec), check=run["check"])
    floor = rows["floor2"]
    assert len(floor["iterations_s"]) == spec["iterations"]
    assert floor["cluster_start_s"] > 0
    # Both workers worked in every iteration (CPU time of their own process).
    assert len(floor["worker_cpu_s"]) == spec["iterations"]
    assert all(len(cpus) == 2 and min(cpus) > 0 for cpus in floor["worker_cpu_s"])
    # Every system reports its process tree's CPU per iteration; the floor's tree holds
    # both workers, so it is at least what they report.
    for row in rows.values():
        assert len(row["iterations_cpu_s"]) == spec["iterations"]
        assert all(cpu >= 0 for cpu in row["iterations_cpu_s"])
    assert floor["first_iteration_cpu_s"] >= sum(floor["worker_cpu_s"][0]) - 0.05
    verification = report.verify("kmeans", rows)
    assert verification["floor2"] == {"reference": "python", "ok": True, "difference": ""}
    assert len(floor["check"]["centers"]) == gen.KMEANS_K


def test_floor_that_computes_otherwise_fails_the_check(kmeans_spec):
    spec, data_dir = kmeans_spec
    python = _run("python", spec, data_dir)
    wrong = dict(spec, iterations=1)  # stops after one step of Lloyd's algorithm
    floor = _run("floor2", wrong, data_dir)
    verification = report.verify("kmeans", {"python": {"check": python["check"]},
                                            "floor2": {"check": floor["check"]}})
    assert not verification["floor2"]["ok"]
    assert verification["floor2"]["difference"].startswith("centers differ")


def test_targets_show_the_floor_ratio_to_each_peer():
    rows = {"ember": {"later_iterations_median_s": 0.5, "first_iteration_s": 3.5},
            "dask": {"later_iterations_median_s": 0.8, "first_iteration_s": 4.0},
            "python": {"later_iterations_median_s": 1.0, "first_iteration_s": 6.0},
            "floor2": {"later_iterations_median_s": 0.56, "first_iteration_s": 2.4}}
    by_text = {t["target"]: t for t in report.targets({"kmeans": {"rows": rows}})}
    later_dask = by_text["KMeans later iterations <= 0.6x Dask's"]
    assert later_dask["floor_ratio"] == pytest.approx(0.7)
    assert later_dask["floor_text"] == ("floor2/dask = 0.70x: above 0.6x, in this run the "
                                        "user's code alone took longer than the target allows")
    later_python = by_text["KMeans later iterations <= 0.6x one-process Python's"]
    assert later_python["floor_text"] == "floor2/python = 0.56x"
    first_dask = by_text["KMeans first iteration <= 0.8x Dask's"]
    assert first_dask["floor_text"] == "floor2/dask = 0.60x"
    assert "floor_text" not in by_text["PageRank later iterations <= 0.6x Dask's"]
    text = report.markdown({"machine": {"nproc": 2, "ram_gib": 1.0, "cpu": "x", "loadavg": "0"},
                            "versions": {}, "size": "small", "seed": 1, "repeat": 1,
                            "started_utc": "now", "workloads": {},
                            "targets": list(by_text.values())})
    assert "| floor2 (no engine) |" in text
    assert "floor2/dask = 0.70x: above 0.6x" in text
