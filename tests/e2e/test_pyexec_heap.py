"""The pyexec keeps glibc's freed heap memory for reuse (services/pyexec/pyexec_heap.c,
EMBER_PYEXEC_HEAP_KEEP): a task whose large temporaries (under 32 MiB each) are freed
leaves them in the heap, so the next round of them faults no page in; results are those
of glibc's own behaviour, and what is kept stays under a quarter of the task's memory
budget, so a job that fits its budget without the keep fits it with it."""

from __future__ import annotations

import os

import pytest

from conftest import run_pyexec_alone, start_sc

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


def expected_digest(split: int, rounds: int, blocks: int, size: int) -> int:
    """The digest churn yields, computed here (no pyexec, no kept heap)."""
    import zlib
    digest = 0
    for r in range(rounds):
        made = [bytes([split, r, i]) * (size // 3) for i in range(blocks)]
        digest = zlib.crc32(b"".join(m[:4096] + m[-4096:] for m in made), digest)
    return digest


@glibc_heap
def test_freed_heap_memory_is_reused_and_results_match_glibcs_own(
        request: pytest.FixtureRequest) -> None:
    # Six 8 MiB buffers freed together are 48 MiB at the heap's top: glibc by default
    # gives back what passes twice the largest buffer freed, so each round faults them in.
    job = lambda sc: sc.parallelize(range(2), 2).mapPartitionsWithIndex(
        churn(3, 6, 8 * MiB)).collect()
    kept = run_on_cluster(request, "e2e-heap-kept", job)
    default = run_on_cluster(request, "e2e-heap-default", job, EMBER_PYEXEC_HEAP_KEEP="0")
    want = [expected_digest(split, 3, 6, 8 * MiB) for split in range(2)]
    assert [r["digest"] for r in kept] == want
    assert [r["digest"] for r in default] == want
    pages = 2 * 6 * 8 * MiB // os.sysconf("SC_PAGE_SIZE")      # two later rounds
    for r in kept:
        assert r["faults"] < pages // 10, r
        assert r["after"]["limit"] == 128 * MiB      # the budget (half the host) is far above
        assert r["after"]["free"] >= 6 * 8 * MiB, r
    for r in default:
        assert r["after"]["limit"] == 0, r
    # Relative, not in pages: where transparent huge pages are always on, a fault
    # brings in 2 MiB.
    assert sum(r["faults"] for r in kept) * 4 < sum(r["faults"] for r in default), (kept, default)


@glibc_heap
def test_the_top_is_cut_to_half_the_keep_once_it_reaches_the_keep(
        request: pytest.FixtureRequest) -> None:
    # keep 64m: buffers under 32 MiB come from the heap; ten 8 MiB ones freed reach
    # the keep, glibc cuts the top to 32 MiB, the last frees put it back under 64.
    # glibc's defaults would leave under 16 MiB (twice the largest block freed), an
    # unbounded keep all 80.
    sc = start_sc(request, "e2e-heap-small", EMBER_PYEXEC_HEAP_KEEP="64m")
    (r,) = sc.parallelize([0], 1).mapPartitionsWithIndex(churn(1, 10, 8 * MiB)).collect()
    assert r["after"]["limit"] == 64 * MiB
    assert 28 * MiB <= r["after"]["free"] < 72 * MiB, r


def freed_then_objects():
    """A partition function: twelve 20 MB temporaries freed, then 1.5 million small
    tuples (pymalloc arenas, not the heap) while the heap holds what it kept of them."""
    def run(split, records):
        import _ember_io                       # only inside a pyexec
        made = [bytes([i]) * (20 * MiB) for i in range(12)]
        del made
        kept = _ember_io.heap()
        objects = [(i, str(i)) for i in range(1_500_000)]
        yield {"kept": kept, "objects": len(objects)}
    return run


@glibc_heap
def test_a_job_within_its_budget_with_no_keep_passes_with_the_default_keep(
        request: pytest.FixtureRequest) -> None:
    # With glibc's defaults the task peaks near 280 MiB; a keep of 512 MiB held the
    # freed 240 MB through the objects' build and the worker's hard budget killed it
    # (435 MiB). The keep in force is a quarter of the 300 MiB soft budget.
    sc = start_sc(request, "e2e-heap-budget", EMBER_WORKER_PYTHON_MEMORY_SOFT="300m",
                  EMBER_WORKER_PYTHON_MEMORY_HARD="420m")
    (r,) = sc.parallelize([0], 1).mapPartitionsWithIndex(freed_then_objects()).collect()
    assert r["objects"] == 1_500_000
    assert r["kept"]["limit"] == 75 * MiB, r
    assert r["kept"]["free"] < 75 * MiB + 8 * MiB, r


def test_a_malformed_keep_size_is_refused_with_its_name() -> None:
    done = run_pyexec_alone(EMBER_PYEXEC_HEAP_KEEP="lots")
    assert done.returncode == 2
    assert b"EMBER_PYEXEC_HEAP_KEEP=lots is not a size in bytes" in done.stderr
