"""The worker gives each pyexec 1 MiB pipes (worker_pool.c pyexec_pipe_bytes): a task's
text input and a cached partition cross them by the tens of MB, and a task whose data
input no longer fits in the pipe still gets it whole."""

from __future__ import annotations

from ember import SparkContext

F_GETPIPE_SZ = 1032          # Linux fcntl


def test_the_pipes_to_and_from_a_pyexec_hold_one_mib(sc: SparkContext) -> None:
    def pipe_sizes(_):
        import fcntl
        import os
        sizes = {}
        for fd in map(int, os.listdir("/proc/self/fd")):
            try:
                if os.readlink(f"/proc/self/fd/{fd}").startswith("pipe:"):
                    sizes[fd] = fcntl.fcntl(fd, F_GETPIPE_SZ)
            except OSError:
                pass
        return sizes
    for sizes in sc.parallelize(range(2), 2).map(pipe_sizes).collect():
        assert sizes[0] == 1 << 20, sizes                              # from the worker
        assert sorted(sizes.values()).count(1 << 20) >= 2, sizes        # and back to it


def test_inputs_around_the_pipe_size_arrive_whole(sc: SparkContext) -> None:
    for n in (1 << 20) - 300, (1 << 20) + 300, 3 << 20:
        data = [bytes([i % 251]) * (n // 4) for i in range(4)]
        assert sc.parallelize(data, 1).map(len).collect() == [n // 4] * 4
