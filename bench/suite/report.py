"""Summaries, cross-system checks, ratios, the issue's targets, and the markdown report."""

from __future__ import annotations

import math
import statistics

REFERENCE_ORDER = ["python", "counter", "dask", "pool2", "ember", "floor2"]
# The user's code alone over 2 worker processes, no engine (suite/floor_workloads.py): each
# peer target also shows the floor's ratio to the peer, the least any engine could reach.
FLOOR_SYSTEM = "floor2"
RANK_RTOL = 1e-6
CENTER_TOL = 1e-6

THROUGHPUT_UNITS = {
    "wordcount": "MiB/s", "pagerank": "edges/s", "kmeans": "points/s",
    "shuffle_group": "records/s", "shuffle_sort": "records/s", "trivial": "jobs/s",
    "tiny_tasks": "tasks/s", "startup": "",
}


def summarize(workload: str, run: dict, spec: dict) -> dict:
    """The row figures of one run."""
    wall = run["wall_s"]
    row = {"wall_s": wall, "peak_rss_mib": run.get("peak_rss_mib"),
           "processes": run.get("peak_processes"), "loadavg_1m_after": run.get("loadavg_1m_after")}
    if "startup_s" in run:
        row["cluster_start_s"] = run["startup_s"]
    iters = run.get("iterations")
    if iters:
        row["first_iteration_s"] = iters[0]
        row["later_iterations_median_s"] = statistics.median(iters[1:]) if len(iters) > 1 else iters[0]
        row["later_iterations_min_s"] = min(iters[1:]) if len(iters) > 1 else iters[0]
        row["iterations_s"] = iters
    cpu = run.get("iterations_cpu_s")
    if cpu:
        # CPU of the run's whole process tree (driver, daemons or scheduler, workers): less
        # sensitive than wall time to other programs on a shared machine.
        row["first_iteration_cpu_s"] = cpu[0]
        row["later_iterations_cpu_median_s"] = statistics.median(cpu[1:]) if len(cpu) > 1 else cpu[0]
        row["iterations_cpu_s"] = cpu
    if run.get("worker_cpu_s"):
        row["worker_cpu_s"] = run["worker_cpu_s"]
    if workload == "trivial":
        row["job_median_ms"] = statistics.median(run["jobs"]) * 1000
        row["job_p90_ms"] = sorted(run["jobs"])[int(0.9 * (len(run["jobs"]) - 1))] * 1000
    if workload == "startup":
        row["ready_s"] = run["ready_s"]
        row["first_job_s"] = run["first_job_s"]
        row["first_job_median_s"] = statistics.median(run["first_job_s"])
    amount = {
        "wordcount": spec.get("bytes", 0) / 2**20,
        "pagerank": spec.get("edges", 0) * spec.get("iterations", 1),
        "kmeans": spec.get("points", 0) * spec.get("iterations", 1),
        "shuffle_group": spec.get("records", 0), "shuffle_sort": spec.get("records", 0),
        "trivial": spec.get("repeat", 0), "tiny_tasks": spec.get("tasks", 0),
    }.get(workload)
    if amount and wall > 0:
        row["throughput"] = amount / wall
        row["throughput_unit"] = THROUGHPUT_UNITS[workload]
    return row


def _close(a: float, b: float, rtol: float) -> bool:
    return math.isclose(a, b, rel_tol=rtol, abs_tol=rtol)


def compare_checks(workload: str, reference: dict, other: dict) -> str:
    """'' when other agrees with reference, else what differs."""
    if workload == "pagerank":
        if reference["pages"] != other["pages"]:
            return f"pages {other['pages']} != {reference['pages']}"
        if not _close(reference["sum"], other["sum"], RANK_RTOL):
            return f"rank sum {other['sum']} != {reference['sum']}"
        if set(reference["sample"]) != set(other["sample"]):
            return "different sampled pages"
        bad = [k for k, v in reference["sample"].items()
               if not _close(v, other["sample"][k], RANK_RTOL)]
        if bad:
            return f"{len(bad)} sampled ranks differ, e.g. {bad[0]}: " \
                   f"{other['sample'][bad[0]]} != {reference['sample'][bad[0]]}"
        for (k1, v1), (k2, v2) in zip(reference["top"], other["top"]):
            if not _close(v1, v2, RANK_RTOL):
                return f"top ranks differ: {k2}={v2} vs {k1}={v1}"
        return ""
    if workload == "kmeans":
        worst = max(abs(a - b) for ra, rb in zip(reference["centers"], other["centers"])
                    for a, b in zip(ra, rb))
        scale = max(1.0, max(abs(a) for r in reference["centers"] for a in r))
        return "" if worst <= CENTER_TOL * scale else f"centers differ by up to {worst:.3g}"
    if workload == "startup":
        return ""
    return "" if reference == other else f"{other} != {reference}"


def verify(workload: str, rows: dict) -> dict:
    """Checks every system's result against the first present of REFERENCE_ORDER."""
    present = [s for s in REFERENCE_ORDER if s in rows and "check" in rows[s]]
    if not present:
        return {}
    ref = present[0]
    out = {}
    for system, row in rows.items():
        if "check" not in row:
            continue
        diff = compare_checks(workload, rows[ref]["check"], row["check"])
        out[system] = {"reference": ref, "ok": not diff, "difference": diff}
    return out


RATIO_FIELDS = [("wall_s", "wall"), ("first_job_median_s", "first job"),
                ("first_iteration_s", "first iteration"),
                ("later_iterations_median_s", "later iterations"),
                ("later_iterations_min_s", "fastest later iteration"), ("job_median_ms", "job"),
                ("first_iteration_cpu_s", "first iteration CPU"),
                ("later_iterations_cpu_median_s", "later iterations CPU")]


def ratios(rows: dict) -> dict:
    """Ember's time divided by each peer's, per figure both have."""
    if "ember" not in rows:
        return {}
    out: dict = {}
    for peer, row in rows.items():
        if peer == "ember":
            continue
        for field, _ in RATIO_FIELDS:
            a, b = rows["ember"].get(field), row.get(field)
            if a is not None and b:
                out.setdefault(peer, {})[field] = a / b
    return out


# (workload, figure, peer or None, limit, description). A peer target is met when Ember's
# figure / the peer's is at most limit; an absolute one when Ember's figure meets limit.
TARGETS = [
    ("wordcount", "wall_s", "python", 0.55, "word count <= 0.55x the per-record pipeline in one process"),
    ("wordcount", "wall_s", "counter", 1.0, "word count no slower than the hand-optimized Counter script"),
    ("wordcount", "wall_s", "dask", 0.35, "word count <= 0.35x Dask's"),
    ("wordcount", "wall_s", "counter", 0.5, "stretch: word count <= 0.5x the Counter script"),
    ("pagerank", "later_iterations_median_s", "dask", 0.6, "PageRank later iterations <= 0.6x Dask's"),
    ("pagerank", "later_iterations_median_s", "python", 0.6, "PageRank later iterations <= 0.6x one-process Python's"),
    ("pagerank", "first_iteration_s", "dask", 0.8, "PageRank first iteration <= 0.8x Dask's"),
    ("pagerank", "first_iteration_s", "python", 0.8, "PageRank first iteration <= 0.8x one-process Python's"),
    ("kmeans", "later_iterations_median_s", "dask", 0.6, "KMeans later iterations <= 0.6x Dask's"),
    ("kmeans", "later_iterations_median_s", "python", 0.6, "KMeans later iterations <= 0.6x one-process Python's"),
    ("kmeans", "first_iteration_s", "dask", 0.8, "KMeans first iteration <= 0.8x Dask's"),
    ("kmeans", "first_iteration_s", "python", 0.8, "KMeans first iteration <= 0.8x one-process Python's"),
    ("trivial", "job_median_ms", None, 1.0, "trivial 2-task job round trip <= 1 ms (median)"),
    ("tiny_tasks", "throughput", None, -5000.0, "tiny tasks in one job > 5,000 tasks/s"),
    ("startup", "wall_s", None, 0.5, "SparkContext('local[2]') ready in < 0.5 s (median)"),
    ("startup", "first_job_median_s", None, 0.5,
     "(not in the issue) the first 2-task job after the start < 0.5 s (median)"),
    ("shuffle_group", "wall_s", "dask", 1.0, "groupByKey shuffle faster than Dask's"),
    ("shuffle_sort", "wall_s", "dask", 1.0, "sortByKey shuffle faster than Dask's"),
]


def targets(results: dict) -> list[dict]:
    out = []
    for workload, field, peer, limit, text in TARGETS:
        rows = results.get(workload, {}).get("rows", {})
        ember = rows.get("ember", {}).get(field)
        entry = {"target": text, "workload": workload}
        if ember is None or (peer and rows.get(peer, {}).get(field) is None):
            entry.update(status="not measured")
        elif peer:
            ratio = ember / rows[peer][field]
            met = ratio <= limit
            entry.update(value=ratio, limit=limit, status="met" if met else "missed",
                         detail=f"{ratio:.2f}x vs <= {limit}x" + (
                             "" if met else f": Ember needs {100 * (1 - limit / ratio):.0f}% less time"))
        elif limit < 0:  # at least -limit
            met = ember > -limit
            entry.update(value=ember, limit=-limit, status="met" if met else "missed",
                         detail=f"{ember:,.0f} vs > {-limit:,.0f}" + (
                             "" if met else f": {-limit / ember:.1f}x short"))
        else:
            met = ember <= limit
            entry.update(value=ember, limit=limit, status="met" if met else "missed",
                         detail=f"{ember:.3g} vs <= {limit}" + (
                             "" if met else f": {ember / limit:.1f}x over"))
        if peer:
            _add_floor(entry, rows, field, peer, limit)
        out.append(entry)
    return out


def _add_floor(entry: dict, rows: dict, field: str, peer: str, limit: float) -> None:
    """The floor's figure / the peer's: when above limit, no engine running the user's code
    on these 2 cores could meet the target."""
    floor = rows.get(FLOOR_SYSTEM, {}).get(field)
    theirs = rows.get(peer, {}).get(field)
    if floor is None or not theirs:
        return
    ratio = floor / theirs
    entry["floor_ratio"] = ratio
    entry["floor_text"] = f"{FLOOR_SYSTEM}/{peer} = {ratio:.2f}x" + (
        f": above {limit}x, in this run the user's code alone took longer than the target allows"
        if ratio > limit else "")


def _fmt(v, digits=3) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        if v >= 1000:
            return f"{v:,.0f}"
        return f"{v:.{digits}g}"
    return str(v)


def markdown(report: dict) -> str:
    m = report["machine"]
    v = report["versions"]
    lines = [f"# Ember benchmark suite — size {report['size']}",
             "",
             f"Run {report['started_utc']} UTC, seed {report['seed']}, {report['repeat']} run(s) "
             f"per system and workload (median shown). Machine: {m['nproc']} cores, "
             f"{m['ram_gib']:.1f} GiB RAM, {m['cpu']}; load average at start {m['loadavg']}.",
             "Versions: " + ", ".join(f"{k} {val}" for k, val in v.items()) + ".",
             "",
             "Clusters: Ember `local[2]` (2 workers x 1 core), Dask LocalCluster(n_workers=2, "
             "threads_per_worker=1, processes=True) on 127.0.0.1; python = one process. "
             "Peak RSS sums every process of the system (driver/client, daemons/scheduler, "
             "workers, Python subprocesses), sampled every 100 ms. \"load after\" is the "
             "machine's 1-minute load average when the run ended: the machine is shared, and "
             "above 2 (its core count) other programs were competing for the cores.",
             ""]
    if any(FLOOR_SYSTEM in w["rows"] for w in report["workloads"].values()):
        lines += [f"{FLOOR_SYSTEM} = the user's functions alone in 2 persistent worker "
                  "processes, no engine (bench/suite/floor_workloads.py): about the least time "
                  "any system on these 2 cores needs; its \"Ember / this\" is Ember's time over "
                  "that floor (a floor for the user's code as plain Python processes run it: "
                  "Ember can come in a little under it, see bench/README.md).", ""]
    for name, w in report["workloads"].items():
        lines.append(f"## {name}")
        lines.append("")
        if w.get("spec_summary"):
            lines.append(w["spec_summary"])
            lines.append("")
        iterative = any("first_iteration_s" in r for r in w["rows"].values())
        header = ["system", "wall s", "throughput", "peak RSS MiB", "load after"]
        with_cpu = any("first_iteration_cpu_s" in r for r in w["rows"].values())
        if iterative:
            header += ["first iter s", "later iters median s", "later iters min s"]
        if with_cpu:
            header += ["first iter CPU s", "later iters CPU median s"]
        if name == "trivial":
            header += ["job median ms", "job p90 ms"]
        if name == "startup":
            header += ["first job after start, median s"]
        header += ["result", "Ember / this"]
        lines.append("| " + " | ".join(header) + " |")
        lines.append("|" + "---|" * len(header))
        for system, r in w["rows"].items():
            ver = w["verification"].get(system, {})
            result = "ok" if ver.get("ok") else (f"DIFFERS: {ver.get('difference')}" if ver else "")
            ratio = w["ratios"].get(system, {})
            ratio_text = ", ".join(f"{label} {ratio[f]:.2f}x" for f, label in RATIO_FIELDS
                                   if f in ratio)
            tp = f"{_fmt(r.get('throughput'))} {r.get('throughput_unit', '')}".strip()
            name_cell = system + (" (reused)" if r.get("reused_from") else "")
            cells = [name_cell, _fmt(r.get("wall_s")), tp, _fmt(r.get("peak_rss_mib"), 4),
                     _fmt(r.get("loadavg_1m_after"), 2)]
            if iterative:
                cells += [_fmt(r.get("first_iteration_s")), _fmt(r.get("later_iterations_median_s")),
                          _fmt(r.get("later_iterations_min_s"))]
            if with_cpu:
                cells += [_fmt(r.get("first_iteration_cpu_s")),
                          _fmt(r.get("later_iterations_cpu_median_s"))]
            if name == "trivial":
                cells += [_fmt(r.get("job_median_ms")), _fmt(r.get("job_p90_ms"))]
            if name == "startup":
                cells += [_fmt(r.get("first_job_median_s"))]
            cells += [result, ratio_text]
            lines.append("| " + " | ".join(cells) + " |")
        if name == "startup":
            for system, r in w["rows"].items():
                lines.append("")
                lines.append(f"{system}: ready " + ", ".join(f"{x:.3f}" for x in r["ready_s"])
                             + " s; first job " + ", ".join(f"{x * 1000:.1f}" for x in r["first_job_s"])
                             + " ms")
        for system, r in w["rows"].items():
            if r.get("iterations_s"):
                lines.append("")
                lines.append(f"{system} iterations (s): " + " ".join(f"{x:.3f}" for x in r["iterations_s"]))
            if r.get("iterations_cpu_s"):
                lines.append("")
                lines.append(f"{system} CPU of the process tree per iteration (s): "
                             + " ".join(f"{x:.2f}" for x in r["iterations_cpu_s"]))
            if r.get("worker_cpu_s"):
                lines.append("")
                lines.append(f"{system} CPU per worker per iteration (s): " + " ".join(
                    "/".join(f"{x:.3f}" for x in workers) for workers in r["worker_cpu_s"]))
        for system, err in w.get("errors", {}).items():
            lines.append("")
            lines.append(f"**{system} failed**: {err}")
        lines.append("")
    lines.append("## Targets (issue #10)")
    lines.append("")
    floors = any("floor_text" in t for t in report["targets"])
    lines.append("| target | status | detail |" + (f" {FLOOR_SYSTEM} (no engine) |" if floors else ""))
    lines.append("|---|---|---|" + ("---|" if floors else ""))
    for t in report["targets"]:
        lines.append(f"| {t['target']} | {t['status']} | {t.get('detail', '')} |"
                     + (f" {t.get('floor_text', '')} |" if floors else ""))
    lines.append("")
    if report.get("reused_peers"):
        lines.append(f"Peer rows marked (reused) come from {report['reused_peers']}.")
        lines.append("")
    return "\n".join(lines)
