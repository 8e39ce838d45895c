"""The pyexec keeps glibc's freed heap memory for reuse (services/pyexec/pyexec_heap.c,
EMBER_PYEXEC_HEAP_KEEP): a task whose large temporaries (under 32 MiB each) are freed
leaves them in the heap, so the next round of them faults no page in; results are those
of glibc's own behaviour, and the memory goes back to the kernel when the process
passes its memory budget."""

from __future__ import annotations

import os
import subprocess

import pytest

from conftest import BIN_DIR, start_sc

MiB = 1 << 20
# AddressSanitizer brings its own allocator: glibc's heap is not the one in use.
glibc_heap = pytest.mark.skipif(bool(os.environ.get("EMBER_SANITIZED")),
                                reason="AddressSanitizer has its own allocator")


def churn(rounds: int, blocks: int, size: int):
    """A partition function: makes `blocks` buffers of `size` bytes at once (each its
    own malloc, above glibc's default mmap threshold) and frees them, rounds times;
    yields a digest of what it made, the page faults of the rounds after the first,
    and the heap before and after."""
    def run(split, records):
        import resource
        import zlib
        import _ember_io                       # only inside a pyexec
        before = _ember_io.heap()
        digest = 0
        faults = 0
        for r in range(rounds):
            start = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            made = [bytes([split, r, i]) * (size // 3) for i in range(blocks)]
            digest = zlib.crc32(b"".join(m[:4096] + m[-4096:] for m in made), digest)
            del made
            if r:
                faults += resource.getrusage(resource.RUSAGE_SELF).ru_minflt - start
        yield {"digest": digest, "faults": faults, "pid": os.getpid(), "before": before,
               "after": _ember_io.heap()}
    return run


def run_on_cluster(request: pytest.FixtureRequest, name: str, job, **env: str):
    """job(sc) on a private local[2] cluster whose daemons see env, stopped after it."""
    sc = start_sc(request, name, **env)
    try:
        return job(sc)
    finally:
        sc.stop()


@glibc_heap
def test_freed_heap_memory_is_reused_and_results_match_glibcs_own(
        request: pytest.FixtureRequest) -> None:
    # Six 8 MiB buffers freed together are 48 MiB at the heap's top: glibc by default
    # gives back what passes twice the largest buffer freed, so each round faults them in.
    job = lambda sc: sc.parallelize(range(2), 2).mapPartitionsWithIndex(
        churn(3, 6, 8 * MiB)).collect()
    kept = run_on_cluster(request, "e2e-heap-kept", job)
    default = run_on_cluster(request, "e2e-heap-default", job, EMBER_PYEXEC_HEAP_KEEP="0")
    assert [r["digest"] for r in kept] == [r["digest"] for r in default]
    pages = 2 * 6 * 8 * MiB // os.sysconf("SC_PAGE_SIZE")      # two later rounds
    for r in kept:
        assert r["faults"] < pages // 10, r
        assert r["after"]["limit"] == 512 * MiB
        assert r["after"]["free"] >= 6 * 8 * MiB, r
    for r in default:
        assert r["faults"] > pages // 2, r
        assert r["after"]["limit"] == 0, r


@glibc_heap
def test_only_the_configured_size_is_kept_at_the_top(request: pytest.FixtureRequest) -> None:
    sc = start_sc(request, "e2e-heap-small", EMBER_PYEXEC_HEAP_KEEP="16m")
    (r,) = sc.parallelize([0], 1).mapPartitionsWithIndex(churn(2, 6, 8 * MiB)).collect()
    assert r["after"]["limit"] == 16 * MiB
    assert r["after"]["free"] < 24 * MiB, r


@glibc_heap
def test_the_heap_is_released_when_the_process_passes_its_memory_budget(
        request: pytest.FixtureRequest) -> None:
    # The soft budget (one core per worker: all of it per subprocess) is under what the
    # first task leaves free in the heap: the runtime gives it back before it reports, so
    # the worker never sees the idle process over its budget (it would recycle it).
    sc = start_sc(request, "e2e-heap-budget", EMBER_WORKER_PYTHON_MEMORY_SOFT="150m",
                  EMBER_WORKER_PYTHON_MEMORY_HARD="2g")
    (big,) = sc.parallelize([0], 1).mapPartitionsWithIndex(churn(1, 10, 20 * MiB)).collect()
    assert big["after"]["free"] > 150 * MiB, big        # what the task left in the heap
    (nxt,) = sc.parallelize([0], 1).mapPartitionsWithIndex(churn(1, 1, 3)).collect()
    if nxt["pid"] == big["pid"]:
        assert nxt["before"]["free"] < 32 * MiB, nxt
    else:   # the other worker's subprocess ran it: ask the same one again
        seen = sc.parallelize(range(8), 8).mapPartitionsWithIndex(churn(1, 1, 3)).collect()
        same = [r for r in seen if r["pid"] == big["pid"]]
        assert same, f"ember-pyexec {big['pid']} was recycled: {seen}"
        assert same[0]["before"]["free"] < 32 * MiB, same


def test_a_malformed_keep_size_is_refused_with_its_name() -> None:
    env = dict(os.environ, EMBER_PYEXEC_HEAP_KEEP="lots")
    env.pop("EMBER_PARENT_PID", None)
    done = subprocess.run([os.path.join(BIN_DIR, "ember-pyexec")], env=env,
                          stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
    assert done.returncode == 2
    assert b"EMBER_PYEXEC_HEAP_KEEP=lots is not a size in bytes" in done.stderr
