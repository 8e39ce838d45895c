"""Where a trivial job's time goes, per process: CPU and voluntary context
switches (thread wakeups) per 2-task job of a local[2] cluster, and the median
round trip. Run by hand; alternate two builds and compare the same columns
(a shared machine's spread in wall time is larger than most changes).

    /usr/bin/python3 bench/trivial_probe.py [JOBS]        (default 2000)
    EMBER_PY=/other/python-client EMBER_BIN_DIR=/other/build/bin /usr/bin/python3 bench/trivial_probe.py

CPU comes from /proc (utime + stime of each daemon, the driver's own times):
with 2000 jobs a clock tick is 0.005 ms per job. A wakeup costs a context
switch in and out and is where a process waits for the one before it on the
job's path; the minimum is one per hop (the master's request and its two
launch replies, the worker's launch and its pyexec's answer)."""

from __future__ import annotations

import collections
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.environ.get("EMBER_PY", os.path.join(HERE, "..", "python-client")))

from ember import SparkContext  # noqa: E402

HZ = os.sysconf("SC_CLK_TCK")


def _descendants() -> dict[int, str]:
    """pid -> name of every process below this one."""
    parents: dict[int, tuple[str, int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                stat = fh.read()
        except OSError:
            continue
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        parents[int(entry)] = (name, int(stat[stat.rindex(")") + 2:].split()[1]))
    found: dict[int, str] = {}
    todo = [os.getpid()]
    while todo:
        pid = todo.pop()
        for child, (name, parent) in parents.items():
            if parent == pid and child not in found:
                found[child] = name
                todo.append(child)
    return found


def _sample(pids: dict[int, str]) -> tuple[collections.Counter, collections.Counter]:
    """(CPU ticks, voluntary context switches) by process name; the driver's own too."""
    cpu: collections.Counter = collections.Counter()
    switches: collections.Counter = collections.Counter()
    for pid, name in pids.items():
        try:
            with open(f"/proc/{pid}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            cpu[name] += int(fields[11]) + int(fields[12])
            for tid in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{tid}/status") as fh:
                    for line in fh:
                        if line.startswith("voluntary_ctxt_switches"):
                            switches[name] += int(line.split()[1])
        except OSError:
            continue
    times = os.times()
    cpu["driver"] = round((times.user + times.system) * HZ)
    for tid in os.listdir("/proc/self/task"):
        with open(f"/proc/self/task/{tid}/status") as fh:
            for line in fh:
                if line.startswith("voluntary_ctxt_switches"):
                    switches["driver"] += int(line.split()[1])
    return cpu, switches


def main() -> None:
    jobs = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    sc = SparkContext("local[2]", "trivial-probe")
    tiny = lambda x: x  # noqa: E731
    try:
        for _ in range(200):                        # warm up: pools, caches, connections
            sc.parallelize([1, 2], 2).map(tiny).collect()
        pids = _descendants()
        cpu_before, sw_before = _sample(pids)
        started = time.perf_counter()
        for _ in range(jobs):
            sc.parallelize([1, 2], 2).map(tiny).collect()
        wall = time.perf_counter() - started
        cpu_after, sw_after = _sample(pids)
        rounds = []
        for _ in range(501):
            began = time.perf_counter()
            sc.parallelize([1, 2], 2).map(tiny).collect()
            rounds.append(time.perf_counter() - began)
    finally:
        sc.stop()
    rounds.sort()
    names = sorted(n for n in cpu_after if n != "ember-blockd")
    cpu = {n: (cpu_after[n] - cpu_before.get(n, 0)) * 1000.0 / HZ / jobs for n in names}
    sw = {n: (sw_after[n] - sw_before.get(n, 0)) / jobs for n in names}
    print(f"{jobs} trivial jobs: mean {wall / jobs * 1000:.3f} ms, then median of 501 "
          f"{rounds[250] * 1000:.3f} ms")
    print(f"{'process':16} {'CPU ms/job':>10} {'wakeups/job':>12}   (workers and pyexecs: both summed)")
    for n in names:
        print(f"{n:16} {cpu[n]:10.3f} {sw[n]:12.2f}")
    print(f"{'total':16} {sum(cpu.values()):10.3f} {sum(sw.values()):12.2f}")


if __name__ == "__main__":
    main()
