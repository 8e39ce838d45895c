"""Cache writes spliced into a memfd (test_cache_splice), each test on a cluster of
its own: what the worker's heap or its block manager's answer hold depends on the jobs
before, so each starts from fresh daemons."""

from __future__ import annotations

import glob
import os

import pytest

from conftest import start_sc
from ember import StorageLevel
from test_cache_store import blobs, read_back

MIB = 1 << 20


def minor_faults(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as fh:
        stat = fh.read()
    return int(stat[stat.rindex(")") + 2:].split()[7])


def test_the_worker_faults_no_buffer_in_for_a_big_cache_write(
        request: pytest.FixtureRequest) -> None:
    # Its own cluster: a worker whose heap earlier tests left 16 MiB free would
    # fault no page in for a buffer either.
    sc = start_sc(request, "e2e-splice-faults")
    # A pyexec is its worker's child.
    workers = set(sc.parallelize(range(8), 8).map(lambda _: os.getppid()).collect())
    before = {pid: minor_faults(pid) for pid in workers}
    cached = sc.parallelize(range(4), 4).mapPartitionsWithIndex(blobs([16 * MIB] * 4)).cache()
    assert cached.count() == 4
    faults = sum(minor_faults(pid) - before[pid] for pid in workers)
    pages = 4 * 16 * MIB // os.sysconf("SC_PAGE_SIZE")
    # Read into a buffer, each block would fault in every page of it.
    assert faults < pages // 4, (faults, pages)
    assert [len(b) for b in read_back(sc, cached)] == [16 * MIB] * 4
    cached.unpersist()


def test_a_block_manager_that_refuses_the_memfd_gets_the_spliced_block_in_chunks(
        request: pytest.FixtureRequest) -> None:
    # The cluster's first job is the cache write: no earlier block told the worker
    # that its block manager refuses memfds, so the first batch goes into one.
    sc = start_sc(request, "e2e-splice-refused", EMBER_BLOCKD_LOCAL_PUTS="0",
                  EMBER_CONF_spark_ember_logLevel="info")
    sizes = [3 * MIB + 5, 2 * MIB, 3 * MIB, MIB + 1]
    lineage = sc.parallelize(range(4), 4).mapPartitionsWithIndex(blobs(sizes))
    acc = sc.accumulator(0)

    def counted(b):
        acc.add(1)
        return b
    cached = lineage.map(counted).persist(StorageLevel.MEMORY_ONLY_2)
    assert cached.count() == 4
    assert acc.value == 4
    said = 0
    for path in glob.glob(os.path.join(sc._cluster.log_dir, "worker-*.log")):
        with open(path, errors="replace") as fh:
            said += fh.read().count("does not take blocks from this worker's memory")
    assert said >= 1, "no block went to the block manager from a memfd"
    assert read_back(sc, cached) == lineage.collect()
    assert acc.value == 4, "the cached partitions were computed again"


REFUSING_SPLICE = r"""
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
/* splice refused as a seccomp filter refuses it; each call noted, one file per process. */
ssize_t splice(int in, off64_t *in_off, int out, off64_t *out_off, size_t len, unsigned flags)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/calls.%d", getenv("SPLICE_CALLS_DIR"), (int)getpid());
    FILE *f = fopen(path, "a");
    if (f) {
        fprintf(f, "%zu\n", len);
        fclose(f);
    }
    errno = EPERM;
    return -1;
}
"""


@pytest.mark.skipif(bool(os.environ.get("EMBER_SANITIZED")),
                    reason="AddressSanitizer's runtime must come first in LD_PRELOAD")
def test_a_refused_splice_goes_through_the_buffer_and_is_not_tried_again(
        request: pytest.FixtureRequest, tmp_path) -> None:
    import shutil
    import subprocess
    if not shutil.which("gcc"):
        pytest.skip("no gcc to build the splice shim")
    shim = tmp_path / "refuse_splice.so"
    source = tmp_path / "refuse_splice.c"
    source.write_text(REFUSING_SPLICE)
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(shim), str(source)], check=True)
    calls = tmp_path / "calls"
    calls.mkdir()
    sc = start_sc(request, "e2e-splice-eperm", LD_PRELOAD=str(shim), SPLICE_CALLS_DIR=str(calls))
    sizes = [3 * MIB + 5, 2 * MIB, 3 * MIB, MIB + 1, 5 * MIB, 2 * MIB + 7]
    lineage = sc.parallelize(range(6), 6).mapPartitionsWithIndex(blobs(sizes))
    cached = lineage.persist(StorageLevel.MEMORY_ONLY)
    assert cached.count() == 6
    assert read_back(sc, cached) == lineage.collect()
    tried = {p.name: len(p.read_text().split()) for p in calls.iterdir()}
    assert tried, "no cache write was spliced"
    # Once per pyexec slot of a worker (one core each), not once per 64 KiB.
    assert all(n == 1 for n in tried.values()), tried
