"""Ember's benchmark suite (issue #10): word count, PageRank, KMeans, groupByKey and
sortByKey shuffles, trivial jobs, tiny tasks and cluster startup, on Ember (local[2]), Dask
distributed (LocalCluster of 2 one-thread worker processes), plain one-process Python and,
for KMeans, floor2 (the user's code in 2 worker processes with no engine: the floor), from
the same seeded data; checks that all systems agree, then writes a markdown table and
a JSON file under bench/results/.

    /usr/bin/python3 bench/bench_suite.py [--size small|full] [--workloads a,b] [--systems a,b]
        [--repeat N] [--reuse-peers RESULTS.json] [--data-dir DIR] [--results-dir DIR]

``make bench-suite SIZE=full`` runs it at the issue's sizes. Every (system, workload) runs
in a fresh process whose whole process tree is memory-sampled every 100 ms.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_DIR = os.path.dirname(BENCH_DIR)
sys.path.insert(0, BENCH_DIR)

from suite import gen, report  # noqa: E402
from suite.memory import TreeSampler  # noqa: E402

SIZES = {
    "small": {"text_bytes": 8 << 20, "edges": 200_000, "points": 200_000, "dims": 10,
              "records": 1_000_000, "trivial_repeat": 200, "tiny_tasks": 2_000},
    "full": {"text_bytes": 512 << 20, "edges": 10_000_000, "points": 2_000_000, "dims": 10,
             "records": 10_000_000, "trivial_repeat": 200, "tiny_tasks": 10_000},
}
ITERATIONS = 10
ITERATIVE_PARTS = 4
SHUFFLE_PARTS = 8

WORKLOADS = ["startup", "trivial", "tiny_tasks", "wordcount", "pagerank", "kmeans",
             "shuffle_group", "shuffle_sort"]
SYSTEMS = ["ember", "dask", "python", "counter", "pool2", "floor2"]
SUPPORTED = {
    "startup": {"ember", "dask"}, "trivial": {"ember", "dask"}, "tiny_tasks": {"ember", "dask"},
    "wordcount": {"ember", "dask", "python", "counter", "pool2"},
    "pagerank": {"ember", "dask", "python"}, "kmeans": {"ember", "dask", "python", "floor2"},
    "shuffle_group": {"ember", "dask", "python"}, "shuffle_sort": {"ember", "dask", "python"},
}


def _csv(value: str, allowed: list[str], what: str) -> list[str]:
    if value in ("", "all"):
        return list(allowed)
    chosen = [v.strip() for v in value.split(",") if v.strip()]
    unknown = [v for v in chosen if v not in allowed]
    if unknown:
        raise SystemExit(f"bench_suite: unknown {what} {', '.join(unknown)} "
                         f"(choose from {', '.join(allowed)})")
    return chosen


def make_spec(workload: str, size: dict, data_dir: str, seed: int) -> tuple[dict, str]:
    """The spec every system gets for workload, and a one-line description of the input."""
    if workload == "wordcount":
        folder = gen.text_corpus(data_dir, size["text_bytes"], seed)
        return ({"input": folder, "bytes": sum(os.path.getsize(f) for f in gen.data_files(folder))},
                f"Zipf text corpus, {size['text_bytes'] / 2**20:.0f} MiB in {gen.TEXT_FILES} files "
                f"(s=1.05 over 500,000 words); counts written as text files.")
    if workload == "pagerank":
        folder = gen.power_law_graph(data_dir, size["edges"], seed)
        return ({"input": folder, "edges": size["edges"], "iterations": ITERATIONS,
                 "parts": ITERATIVE_PARTS},
                f"Power-law graph, {size['edges']:,} edges over {max(10, size['edges'] // 5):,} "
                f"pages; {ITERATIONS} iterations, links cached.")
    if workload == "kmeans":
        folder = gen.gaussian_blobs(data_dir, size["points"], size["dims"], seed)
        return ({"input": folder, "points": size["points"], "iterations": ITERATIONS,
                 "parts": ITERATIVE_PARTS,
                 "initial_centers": gen.initial_centers(folder, gen.KMEANS_K).tolist()},
                f"{size['points']:,} points x {size['dims']} dims, {gen.KMEANS_K} Gaussian blobs; "
                f"k={gen.KMEANS_K}, {ITERATIONS} iterations of Lloyd's algorithm, points cached, "
                f"same initial centers everywhere.")
    if workload in ("shuffle_group", "shuffle_sort"):
        op = "groupByKey" if workload == "shuffle_group" else "sortByKey"
        return ({"records": size["records"], "parts": SHUFFLE_PARTS, "seed": seed},
                f"{op} of {size['records']:,} (int, int) records generated in "
                f"{SHUFFLE_PARTS} map tasks, ~10 values per key, {SHUFFLE_PARTS} reduce partitions.")
    if workload == "trivial":
        return ({"repeat": size["trivial_repeat"]},
                f"A 2-task job (parallelize [1, 2] and map) {size['trivial_repeat']} times.")
    if workload == "tiny_tasks":
        return ({"tasks": size["tiny_tasks"]},
                f"{size['tiny_tasks']:,} one-element tasks in one job.")
    return ({}, "Cluster start until ready for the first job (median of 3 starts), imports excluded.")


def runner_env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [BENCH_DIR, os.path.join(REPO_DIR, "python-client")]
        + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    env["PYTHONHASHSEED"] = "0"  # Dask partitions by hash(str) across worker processes
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = "1"  # one core per worker everywhere: no hidden BLAS threads
    return env


def run_one(system: str, workload: str, spec: dict, work_dir: str, timeout: float) -> dict:
    """Runs one (system, workload) in a fresh process; its result plus the tree's peak RSS."""
    os.makedirs(work_dir, exist_ok=True)
    spec = dict(spec)
    if workload == "wordcount":
        spec["output"] = os.path.join(work_dir, "counts")
        shutil.rmtree(spec["output"], ignore_errors=True)
    spec_path = os.path.join(work_dir, "spec.json")
    out_path = os.path.join(work_dir, "result.json")
    with open(spec_path, "w") as fh:
        json.dump(spec, fh)
    if os.path.exists(out_path):
        os.remove(out_path)
    log_path = os.path.join(work_dir, "runner.log")
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "suite.runner", system, workload,
                                 spec_path, out_path], cwd=BENCH_DIR, env=runner_env(),
                                stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                start_new_session=True)
    sampler = TreeSampler(proc.pid).start()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise RuntimeError(f"timed out after {timeout:.0f} s")
    finally:
        sampler.stop()
    if proc.returncode != 0 or not os.path.exists(out_path):
        with open(log_path, errors="replace") as fh:
            tail = fh.read()[-3000:]
        raise RuntimeError(f"runner exited with code {proc.returncode}: {tail}")
    with open(out_path) as fh:
        result = json.load(fh)
    result["loadavg_1m_after"] = os.getloadavg()[0]  # the machine is shared: how busy was it
    result["peak_rss_mib"] = sampler.peak_bytes / 2**20
    result["peak_processes"] = sampler.peak_processes
    if workload == "wordcount":
        shutil.rmtree(spec["output"], ignore_errors=True)
    return result


def machine() -> dict:
    cpu = ""
    with open("/proc/cpuinfo") as fh:
        for line in fh:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as fh:
        ram_kib = int(fh.readline().split()[1])
    return {"nproc": os.cpu_count(), "ram_gib": ram_kib / 2**20, "cpu": cpu,
            "kernel": platform.release(), "loadavg": " ".join(f"{x:.2f}" for x in os.getloadavg())}


def versions() -> dict:
    out = {"python": platform.python_version()}
    for mod in ("dask", "distributed", "cloudpickle", "numpy"):
        try:
            out[mod] = __import__(mod).__version__
        except ImportError:
            out[mod] = "absent"
    try:
        commit = subprocess.run(["git", "-C", REPO_DIR, "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", REPO_DIR, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, check=True).stdout.strip()
        out["ember commit"] = commit + ("+changes" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        out["ember commit"] = "unknown"
    return out


def load_peers(path: str, size: str, seed: int) -> dict:
    with open(path) as fh:
        old = json.load(fh)
    if old.get("size") != size or old.get("seed") != seed:
        raise SystemExit(f"bench_suite: {path} was measured at size {old.get('size')} seed "
                         f"{old.get('seed')}, not size {size} seed {seed}")
    return old


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=sorted(SIZES), default="small")
    parser.add_argument("--workloads", default="all", help="comma-separated: " + ",".join(WORKLOADS))
    parser.add_argument("--systems", default="all", help="comma-separated: " + ",".join(SYSTEMS))
    parser.add_argument("--repeat", type=int, default=1, help="runs per system and workload")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--reuse-peers", default="",
                        help="results JSON of an earlier run at the same size: its rows of the "
                             "systems not run now join this report (and its checks)")
    parser.add_argument("--data-dir", default=os.environ.get(
        "EMBER_BENCH_DATA", os.path.join(BENCH_DIR, ".data")))
    parser.add_argument("--results-dir", default=os.path.join(BENCH_DIR, "results"))
    parser.add_argument("--name", default="", help="report file name (default suite-SIZE-TIME)")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds per run")
    args = parser.parse_args()
    workloads = _csv(args.workloads, WORKLOADS, "workload")
    systems = _csv(args.systems, SYSTEMS, "system")
    if args.repeat < 1:
        raise SystemExit("bench_suite: --repeat must be at least 1")
    size = SIZES[args.size]
    peers = load_peers(args.reuse_peers, args.size, args.seed) if args.reuse_peers else None
    os.makedirs(args.data_dir, exist_ok=True)
    os.makedirs(args.results_dir, exist_ok=True)
    started = datetime.datetime.now(datetime.timezone.utc)
    name = args.name or f"suite-{args.size}-{started.strftime('%Y%m%d-%H%M%S')}"
    out = {"size": args.size, "sizes": size, "seed": args.seed, "repeat": args.repeat,
           "started_utc": started.strftime("%Y-%m-%d %H:%M:%S"), "machine": machine(),
           "versions": versions(), "workloads": {}, "reused_peers": args.reuse_peers or None}
    print(f"bench-suite: size {args.size}, workloads {','.join(workloads)}, "
          f"systems {','.join(systems)}; data in {args.data_dir}", flush=True)
    for workload in workloads:
        spec, spec_summary = make_spec(workload, size, args.data_dir, args.seed)
        entry = {"spec_summary": spec_summary, "rows": {}, "errors": {}}
        for system in [s for s in SYSTEMS if s in systems and s in SUPPORTED[workload]]:
            runs = []
            try:
                for i in range(args.repeat):
                    runs.append(run_one(system, workload, spec,
                                        os.path.join(args.data_dir, "runs", f"{system}-{workload}"),
                                        args.timeout))
            except RuntimeError as err:
                entry["errors"][system] = str(err)
                print(f"  {workload:14s} {system:8s} FAILED: {str(err)[:2000]}", flush=True)
                continue
            runs.sort(key=lambda r: r["wall_s"])
            chosen = runs[len(runs) // 2]
            row = report.summarize(workload, chosen, spec)
            row["check"] = chosen["check"]
            if args.repeat > 1:
                row["wall_s_all_runs"] = [r["wall_s"] for r in runs]
            entry["rows"][system] = row
            extra = ""
            if "later_iterations_median_s" in row:
                extra = (f", first iter {row['first_iteration_s']:.3f} s, later median "
                         f"{row['later_iterations_median_s']:.3f} s")
            if "job_median_ms" in row:
                extra = f", job median {row['job_median_ms']:.2f} ms"
            print(f"  {workload:14s} {system:8s} {row['wall_s']:9.3f} s, peak RSS "
                  f"{row['peak_rss_mib']:7.0f} MiB{extra}", flush=True)
        if peers:
            for system, row in peers["workloads"].get(workload, {}).get("rows", {}).items():
                if system not in entry["rows"]:
                    row = dict(row, reused_from=peers["started_utc"])
                    # Figures added after a peers file was written, from its raw numbers.
                    if "first_job_s" in row:
                        row.setdefault("first_job_median_s", statistics.median(row["first_job_s"]))
                    if len(row.get("iterations_s") or []) > 1:
                        row.setdefault("later_iterations_min_s", min(row["iterations_s"][1:]))
                    entry["rows"][system] = row
        entry["verification"] = report.verify(workload, entry["rows"])
        entry["ratios"] = report.ratios(entry["rows"])
        for system, v in entry["verification"].items():
            if not v["ok"]:
                print(f"  {workload:14s} {system:8s} RESULT DIFFERS from {v['reference']}: "
                      f"{v['difference']}", flush=True)
        out["workloads"][workload] = entry
    out["targets"] = report.targets(out["workloads"])
    json_path = os.path.join(args.results_dir, name + ".json")
    md_path = os.path.join(args.results_dir, name + ".md")
    with open(json_path, "w") as fh:
        json.dump(out, fh, indent=1)
    with open(md_path, "w") as fh:
        fh.write(report.markdown(out))
    print(f"bench-suite: wrote {md_path} and {json_path}", flush=True)
    failed = [f"{w}/{s}" for w, e in out["workloads"].items() for s in e["errors"]]
    differs = [f"{w}/{s}" for w, e in out["workloads"].items()
               for s, v in e["verification"].items() if not v["ok"]]
    if failed or differs:
        print(f"bench-suite: FAILED runs: {', '.join(failed) or 'none'}; "
              f"results that differ: {', '.join(differs) or 'none'}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
