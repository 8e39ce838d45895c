"""Result blocks stream from the block manager through the gateway to the driver.

The gateway answers GET .../results/{partition} with the block's size as
Content-Length and passes chunks on as the client reads them, so its memory
stays flat however large the block; a stream that breaks mid-way ends the
connection short of Content-Length, and the client raises.
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import threading
import time
import urllib.request

import pytest

import ember
from conftest import authorized
from ember.gateway_client import GatewayClient
MB = 1_000_000


def _status_kb(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError(f"no {field} for pid {pid}")


def vm_hwm_kb(pid: int) -> int:
    """Peak resident memory of a process (VmHWM), in kB."""
    return _status_kb(pid, "VmHWM")


def vm_rss_kb(pid: int) -> int:
    """Resident memory of a process now (VmRSS), in kB."""
    return _status_kb(pid, "VmRSS")


def big_rdd(sc, records: int = 100):
    """One partition of `records` records of 1 MB each."""
    return sc.parallelize([0], 1).flatMap(lambda _: (b"x" * MB for _ in range(records)))


def result_url(gateway_address: str, app: str, job: dict, partition: int = 0) -> str:
    return (f"http://{gateway_address}/api/v1/applications/{app}/jobs/{job['jobId']}"
            f"/results/{partition}")


@pytest.mark.skipif(bool(os.environ.get("EMBER_SANITIZED")),
                    reason="AddressSanitizer keeps freed memory in quarantine: RSS says nothing")
def test_100_mb_result_streams_through_a_flat_gateway(sc):
    gateway_pid = sc._cluster.pids("ember-gateway")[0]
    sc.parallelize(range(10), 2).collect()                 # warm up: channels, threads
    before = vm_hwm_kb(gateway_pid)
    got = big_rdd(sc).collect()
    growth_mb = (vm_hwm_kb(gateway_pid) - before) / 1000
    assert len(got) == 100 and all(r == b"x" * MB for r in got)
    print(f"gateway peak RSS grew {growth_mb:.1f} MB for a 100 MB result")
    # the whole block in memory would be at least 100 MB (about 4 MB measured)
    assert growth_mb < 25, f"gateway peak RSS grew {growth_mb:.1f} MB for a 100 MB result"


def test_gateway_does_not_read_ahead_of_a_paused_client(sc, gateway):
    assert len(big_rdd(sc).collect()) == 100
    job = _last_job(gateway, sc.applicationId)
    gateway_pid = sc._cluster.pids("ember-gateway")[0]
    before = vm_rss_kb(gateway_pid)
    with urllib.request.urlopen(
            authorized(result_url(gateway.address, sc.applicationId, job), sc)) as resp:
        first = resp.read(MB)
        time.sleep(1.5)                                    # the client pauses
        paused_growth_mb = (vm_rss_kb(gateway_pid) - before) / 1000
        rest = resp.read()
    assert len(first) + len(rest) == job["results"][0]["size"]
    assert paused_growth_mb < 20, f"gateway RSS grew {paused_growth_mb:.1f} MB while paused"


def test_result_download_has_the_block_size_as_content_length(sc, gateway):
    assert len(big_rdd(sc, 3).collect()) == 3
    job = _last_job(gateway, sc.applicationId)
    with urllib.request.urlopen(
            authorized(result_url(gateway.address, sc.applicationId, job), sc)) as resp:
        body = resp.read()
        assert resp.headers["Content-Type"] == "application/octet-stream"
        assert int(resp.headers["Content-Length"]) == len(body) == job["results"][0]["size"]


def test_empty_result_block_downloads_as_an_empty_body(sc, gateway):
    assert sc.parallelize([], 2).collect() == []
    assert sc.parallelize([1, 2, 3], 3).filter(lambda x: x > 2).collect() == [3]


def test_all_results_come_in_one_answer_in_partition_order(sc, gateway):
    # Many partitions, some empty: one GET streams the non-empty blocks in turn.
    data = list(range(300))
    assert sc.parallelize(data, 40).filter(lambda x: x % 7 != 3 or x > 150).collect() \
        == [x for x in data if x % 7 != 3 or x > 150]
    job = _last_job(gateway, sc.applicationId)
    url = result_url(gateway.address, sc.applicationId, job).rsplit("/", 1)[0]
    with urllib.request.urlopen(authorized(url, sc)) as resp:
        body = resp.read()
    sizes = [r["size"] for r in job["results"]]
    assert int(resp.headers["Content-Length"]) == len(body) == sum(sizes)
    single = b""
    for r in job["results"]:
        with urllib.request.urlopen(authorized(result_url(gateway.address, sc.applicationId,
                                                          job, r["partition"]), sc)) as part:
            single += part.read()
    assert body == single
    assert sc.parallelize([], 5).collect() == []          # only empty blocks: an empty body


def test_unknown_partition_is_a_json_404(sc, gateway):
    big_rdd(sc, 1).count()
    job = _last_job(gateway, sc.applicationId)
    status, body = gateway.get(f"/api/v1/applications/{sc.applicationId}/jobs/{job['jobId']}"
                               "/results/7")
    assert status == 404 and "partition 7" in body["error"]


def test_client_raises_on_a_short_body():
    """A body that ends before Content-Length (what the gateway sends when a
    stream breaks) is an error, not a short result."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        port = server.getsockname()[1]

        def serve() -> None:
            for _ in range(8):       # the client retries a few times
                try:
                    conn, _ = server.accept()
                except OSError:
                    return
                with conn:
                    conn.recv(65536)
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                                 b"Content-Length: 1000\r\n\r\n" + b"y" * 400)

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        client = GatewayClient(f"127.0.0.1:{port}")
        with pytest.raises(ember.EmberError, match="400 of 1000 bytes"):
            client.request("GET", "/x", raw=True)


def test_block_manager_dying_mid_stream_cuts_the_download_short(sc, gateway):
    """Last in the module: it kills a block manager."""
    assert len(big_rdd(sc).collect()) == 100              # a 100 MB result block
    job = _last_job(gateway, sc.applicationId)
    holder = job["results"][0]["blockManager"]
    url = result_url(gateway.address, sc.applicationId, job)
    resp = urllib.request.urlopen(authorized(url, sc), timeout=60)
    total = int(resp.headers["Content-Length"])
    first = resp.read(2 * MB)
    os.kill(_blockd_pid(sc, holder), signal.SIGKILL)
    with pytest.raises((http.client.IncompleteRead, ConnectionError)):
        rest = resp.read()
        assert len(first) + len(rest) < total          # (read() raises before this)
    resp.close()
    # before the first byte, the same failure is a JSON error
    status, body = gateway.get(url.split(gateway.address, 1)[1])
    assert status >= 400 and holder in body["error"]


def _last_job(gateway, app: str) -> dict:
    jobs = gateway.api(f"/applications/{app}/jobs")
    job_id = max(j["jobId"] for j in jobs)
    return gateway.api(f"/applications/{app}/jobs/{job_id}")


def _blockd_pid(sc, address: str) -> int:
    for proc in sc._cluster.processes:
        if os.path.basename(proc.args[0]) == "ember-blockd" and proc.poll() is None:
            ready = proc.args[proc.args.index("--ready-file") + 1]
            with open(ready) as fh:
                if fh.read().strip() == address:
                    return proc.pid
    raise AssertionError(f"no block manager at {address}")
