"""The daemons' steady state under LeakSanitizer: 100 jobs, then a clean stop.

Starts a ``local[2]`` cluster (master, gateway, two workers each with its block
manager) from a build made with ``-DEMBER_SANITIZE=address,undefined``
(``EMBER_BIN_DIR``), runs 100 jobs through it (word count, groupBy, a count of
a cached RDD, a map using a fresh broadcast that is then destroyed), checking
every result, and stops the daemons with SIGTERM. Fails when a daemon exits
with anything but 0 or LeakSanitizer reports a leak in one of them. Reports
of ``ember-pyexec`` are ignored: the embedded CPython's own allocations at
exit are out of scope (they are the interpreter's, not Ember's).

Also prints each daemon's resident memory after job 20 and after job 100
(ASan's quarantine is capped at 16 MB so the figures mean something); the
figures are reported, not asserted.

Run with ``make test-leaks`` (or ``EMBER_BIN_DIR=build-asan/bin /usr/bin/python3
tests/leaks/steady_state.py``).
"""
import os
import sys
import tempfile
import time
from collections import Counter
from operator import add
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "python-client"))

JOBS = 100
EARLY = 20
DAEMONS = ("ember-master", "ember-gateway", "ember-worker", "ember-blockd")
WORDS = ["alpha", "beta", "gamma", "delta", "alpha", "beta", "alpha"]


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def memory(cluster) -> dict:
    return {(os.path.basename(p.args[0]), p.pid): rss_kib(p.pid)
            for p in cluster.processes if p.poll() is None}


def run_job(sc, i: int, text: str, cached) -> None:
    kind = i % 4
    if kind == 0:
        got = dict(sc.textFile(text, 2).flatMap(str.split).map(lambda w: (w, 1))
                   .reduceByKey(add).collect())
        want = dict(Counter(WORDS * 50))
    elif kind == 1:
        got = {k: sorted(v) for k, v in
               sc.parallelize(range(200), 3).groupBy(lambda x: x % 7).collect()}
        want = {k: [x for x in range(200) if x % 7 == k] for k in range(7)}
    elif kind == 2:
        got, want = cached.count(), 1000
    else:
        factor = sc.broadcast({"factor": i})
        got = sc.parallelize(range(10), 2).map(lambda x: x * factor.value["factor"]).sum()
        want = 45 * i
        factor.destroy()
    if got != want:
        raise AssertionError(f"job {i} (kind {kind}): got {got!r}, want {want!r}")


def sanitizer_reports(log_dir: str, pids: dict) -> tuple:
    """(reports written by a daemon, how many other processes (pyexecs) wrote one)."""
    found, others = [], 0
    for path in Path(log_dir).glob("sanitizer.*"):
        pid = int(path.suffix[1:])
        text = path.read_text(errors="replace")
        if pid not in pids:
            others += 1
        elif "ERROR:" in text or "runtime error" in text:
            found.append((pids[pid], path, text))
    return found, others


def main() -> int:
    log_dir = tempfile.mkdtemp(prefix="ember-leaks-")
    os.environ["ASAN_OPTIONS"] = (f"detect_leaks=1:log_path={log_dir}/sanitizer:"
                                  "quarantine_size_mb=16:handle_segv=0")
    os.environ["UBSAN_OPTIONS"] = f"print_stacktrace=1:log_path={log_dir}/sanitizer"
    from ember import SparkContext

    with tempfile.TemporaryDirectory() as data:
        text = os.path.join(data, "words.txt")
        with open(text, "w") as fh:
            fh.write("\n".join(" ".join(WORDS) for _ in range(50)) + "\n")
        sc = SparkContext("local[2]", "steady-state-leaks")
        cluster = sc._cluster
        procs = list(cluster.processes)
        pids = {p.pid: os.path.basename(p.args[0]) for p in procs}
        started = time.monotonic()
        cached = sc.parallelize(range(1000), 4).map(lambda x: x * 2).cache()
        early = {}
        try:
            for i in range(1, JOBS + 1):
                run_job(sc, i, text, cached)
                if i == EARLY:
                    early = memory(cluster)
            late = memory(cluster)
        finally:
            sc.stop()
    elapsed = time.monotonic() - started
    print(f"{JOBS} jobs in {elapsed:.0f} s; resident memory (KiB) after job {EARLY} -> job {JOBS}:")
    for key in sorted(early):
        name, pid = key
        before, after = early[key], late.get(key, 0)
        print(f"  {name:14} pid {pid:>7}: {before:>8} -> {after:>8} ({after - before:+d})")
    failures = [f"{pids[p.pid]} (pid {p.pid}) exited with {p.returncode}"
                for p in procs if p.returncode != 0]
    reports, ignored = sanitizer_reports(log_dir, pids)
    for name, path, text in reports:
        failures.append(f"{name}: sanitizer report {path}:\n{text[:4000]}")
    if failures:
        print("FAILED:\n" + "\n".join(failures))
        print(f"(reports kept in {log_dir})")
        return 1
    print(f"no leak reported by {', '.join(sorted(set(pids.values())))} "
          f"({ignored} reports of ember-pyexec processes ignored)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
