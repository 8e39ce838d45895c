"""The pyexec keeps freed pymalloc arenas for reuse (services/pyexec/pyexec_arenas.c,
EMBER_PYEXEC_ARENA_POOL): a task that makes and drops many small objects gets its later
arenas from that list instead of mmap, results are those of CPython's own allocator, the
list stays within its limit, and goes back to the kernel when the process passes its
memory budget."""

from __future__ import annotations

import os

import pytest

from conftest import run_pyexec_alone, start_sc

MiB = 1 << 20


def churn(rounds: int, strings: int):
    """A partition function: makes `strings` small str objects and drops them, rounds
    times; yields a digest of what it made and the arena pool before and after."""
    def run(split, records):
        import zlib
        import _ember_io                       # only inside a pyexec
        before = _ember_io.arena_pool()
        digest = 0
        for r in range(rounds):
            made = [f"{split}.{r}.{i}" for i in range(strings)]
            digest = zlib.crc32("\n".join(made).encode(), digest)
            del made
        yield {"digest": digest, "pid": os.getpid(), "before": before,
               "after": _ember_io.arena_pool()}
    return run


def run_on_cluster(request: pytest.FixtureRequest, name: str, job, **env: str):
    """job(sc) on a private local[2] cluster whose daemons see env, stopped after it
    (one SparkContext per process)."""
    sc = start_sc(request, name, **env)
    try:
        return job(sc)
    finally:
        sc.stop()


def test_freed_arenas_are_reused_and_results_match_cpythons_allocator(
        request: pytest.FixtureRequest) -> None:
    job = lambda sc: sc.parallelize(range(4), 4).mapPartitionsWithIndex(
        churn(3, 300_000)).collect()
    pooled = run_on_cluster(request, "e2e-arenas-pooled", job)
    unpooled = run_on_cluster(request, "e2e-arenas-unpooled", job, EMBER_PYEXEC_ARENA_POOL="0")
    assert [r["digest"] for r in pooled] == [r["digest"] for r in unpooled]
    for r in pooled:
        # 300,000 strings fill more than a dozen 1 MiB arenas; the second and third
        # rounds take the ones the first freed.
        assert r["after"]["reused"] - r["before"]["reused"] >= 10, r
        assert r["after"]["limit"] == 512 * MiB
        assert 0 < r["after"]["held"] <= r["after"]["limit"], r
    for r in unpooled:
        assert r["after"] == {"held": 0, "reused": 0, "limit": 0}, r


def test_the_pool_stays_within_its_limit(request: pytest.FixtureRequest) -> None:
    sc = start_sc(request, "e2e-arenas-small", EMBER_PYEXEC_ARENA_POOL="4m")
    (r,) = sc.parallelize([0], 1).mapPartitionsWithIndex(churn(2, 300_000)).collect()
    assert r["after"]["limit"] == 4 * MiB
    assert 0 < r["after"]["held"] <= 4 * MiB, r
    assert r["after"]["reused"] > 0, r


@pytest.mark.skipif(bool(os.environ.get("EMBER_SANITIZED")),
                    reason="AddressSanitizer inflates every pyexec's resident memory")
def test_the_pool_is_released_when_the_process_passes_its_memory_budget(
        request: pytest.FixtureRequest) -> None:
    # The soft budget (one core per worker: all of it per subprocess) is under what the
    # freed arenas of the first task hold: the runtime unmaps them before it reports, so
    # the worker never sees the idle process over its budget (it would recycle it).
    sc = start_sc(request, "e2e-arenas-budget", EMBER_WORKER_PYTHON_MEMORY_SOFT="150m",
                  EMBER_WORKER_PYTHON_MEMORY_HARD="2g")
    (big,) = sc.parallelize([0], 1).mapPartitionsWithIndex(churn(1, 3_000_000)).collect()
    assert big["after"]["held"] > 150 * MiB, big        # what the task left in the pool
    (nxt,) = sc.parallelize([0], 1).mapPartitionsWithIndex(churn(1, 10)).collect()
    if nxt["pid"] == big["pid"]:
        assert nxt["before"]["held"] == 0, nxt
    else:   # the other worker's subprocess ran it: ask the same one again
        seen = sc.parallelize(range(8), 8).mapPartitionsWithIndex(churn(1, 10)).collect()
        same = [r for r in seen if r["pid"] == big["pid"]]
        assert same, f"ember-pyexec {big['pid']} was recycled: {seen}"
        assert same[0]["before"]["held"] == 0, same


def test_a_malformed_pool_size_is_refused_with_its_name() -> None:
    done = run_pyexec_alone(EMBER_PYEXEC_ARENA_POOL="lots")
    assert done.returncode == 2
    assert b"EMBER_PYEXEC_ARENA_POOL=lots is not a size in bytes" in done.stderr
