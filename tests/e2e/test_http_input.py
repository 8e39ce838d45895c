"""textFile over HTTP: byte-range splits read by the workers through libcurl.

A local HTTP server on 127.0.0.1 (Python's SimpleHTTPRequestHandler has no Range
support, so a small handler here implements it) serves a generated multi-MB text
file with a non-ASCII word, CRLF lines and a line far longer than a split.
"""

from __future__ import annotations

import os
import random
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

import ember
from ember import files
from conftest import Corpus

SIZE = 3_000_000


class RangeServer:
    """Serves `objects` ({url path: bytes}) with Range support; counts requests.

    Paths under /norange/ are served without Accept-Ranges and ignore Range;
    paths under /broken/ answer HEAD but fail GET with 500.
    """

    def __init__(self, objects: dict[str, bytes]) -> None:
        self.objects = objects
        self.lock = threading.Lock()
        self.range_starts: list[int] = []    # start of every Range request
        self.gets = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):    # quiet
                pass

            def handle(self):
                try:   # a worker that stopped reading may reset the connection
                    super().handle()
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def do_HEAD(self):
                self._answer(head=True)

            def do_GET(self):
                self._answer(head=False)

            def _answer(self, head: bool) -> None:
                name = self.path.split("?")[0]
                body = server.objects.get(re.sub(r"^/(norange|broken)/", "/", name))
                if body is None:
                    return self._plain(404, b"not found\n", head)
                if name.startswith("/broken/") and not head:
                    return self._plain(500, b"disk on fire\n", head)
                ranges = not name.startswith("/norange/")
                start, end, status = 0, len(body) - 1, 200
                spec = self.headers.get("Range") if ranges and not head else None
                if spec:
                    with server.lock:
                        server.gets += 1
                    m = re.fullmatch(r"bytes=(\d+)-(\d*)", spec)
                    start = int(m.group(1))
                    end = min(int(m.group(2)), end) if m.group(2) else end
                    with server.lock:
                        server.range_starts.append(start)
                    if start >= len(body):
                        return self._plain(416, b"", head, {"Content-Range": f"bytes */{len(body)}"})
                    status = 206
                elif not head:
                    with server.lock:
                        server.gets += 1
                self.send_response(status)
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("Content-Length", str(end - start + 1))
                if ranges:
                    self.send_header("Accept-Ranges", "bytes")
                if status == 206:
                    self.send_header("Content-Range", f"bytes {start}-{end}/{len(body)}")
                self.end_headers()
                if not head:
                    self._send(body[start:end + 1])

            def _plain(self, status, payload, head, headers=None):
                self.send_response(status)
                self.send_header("Content-Length", str(len(payload)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                if not head:
                    self._send(payload)

            def _send(self, data: bytes) -> None:
                try:   # the worker hangs up once its split is complete
                    for i in range(0, len(data), 65536):
                        self.wfile.write(data[i:i + 65536])
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def reset(self) -> None:
        with self.lock:
            self.range_starts.clear()
            self.gets = 0

    def __enter__(self) -> "RangeServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def make_text(size: int, seed: int = 99) -> bytes:
    """Lines of words with CRLF endings in places, a non-ASCII word, a very long
    line (longer than a split of the tests) and no final newline."""
    rng = random.Random(seed)
    corpus = Corpus(seed)
    out, total = [], 0
    for i, line in enumerate(corpus.lines(size)):
        if i == 10:
            line += " naïve façade Ωmega 東京"
        if i % 97 == 5:
            line += "\r"
        if i == 4000:
            line = "long " + "y" * 900_000
        if rng.random() < 0.01:
            line = ""
        out.append(line.encode("utf-8"))
        total += len(out[-1]) + 1
    return b"\n".join(out)          # no final newline


def hadoop_lines(data: bytes) -> list[str]:
    """Lines as Hadoop's LineRecordReader returns them (\\n or \\r\\n endings)."""
    lines = data.decode("utf-8").split("\n")
    if data.endswith(b"\n"):
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


@pytest.fixture(scope="module")
def text(tmp_path_factory) -> tuple[Path, bytes]:
    data = make_text(SIZE)
    path = tmp_path_factory.mktemp("http-input") / "data.txt"
    path.write_bytes(data)
    return path, data


@pytest.fixture(scope="module")
def server(text):
    _, data = text
    objects = {"/data.txt": data, "/small.txt": b"one\ntwo\r\nthree", "/empty.txt": b""}
    with RangeServer(objects) as srv:
        yield srv


def test_http_text_file_reads_the_same_lines_as_the_local_file(sc, text, server):
    path, data = text
    want = hadoop_lines(data)
    assert "naïve façade Ωmega 東京" in want[10] and any(len(w) > 800_000 for w in want)
    server.reset()
    rdd = sc.textFile(server.url("/data.txt"), minPartitions=4)
    splits = files.text_splits(server.url("/data.txt"), 4)
    assert rdd.getNumPartitions() == len(splits) >= 4
    got = rdd.collect()
    assert len(got) == len(want)
    assert got == want
    assert got == sc.textFile(str(path), minPartitions=4).collect()
    # one range request per split at least, each asking from the split's start
    assert server.gets >= len(splits)
    assert set(server.range_starts) >= {s["start"] for s in splits}
    assert rdd.count() == len(want)


@pytest.mark.parametrize("partitions", [1, 3, 7, 16])
def test_http_splits_agree_with_local_splits(sc, text, server, partitions):
    path, data = text
    got = sc.textFile(server.url("/data.txt"), minPartitions=partitions).glom().collect()
    local = sc.textFile(str(path), minPartitions=partitions).glom().collect()
    assert got == local
    assert [line for part in got for line in part] == hadoop_lines(data)


def test_comma_separated_list_mixes_files_and_urls(sc, text, server):
    path, data = text
    want = hadoop_lines(data)
    names = f"{server.url('/small.txt')},{path},{server.url('/empty.txt')},{server.url('/data.txt')}"
    got = sc.textFile(names, minPartitions=6).collect()
    assert got == ["one", "two", "three"] + want + want


def test_server_without_ranges_gives_one_split_for_the_object(sc, text, server):
    _, data = text
    url = server.url("/norange/data.txt")
    rdd = sc.textFile(url, minPartitions=4)
    assert rdd.getNumPartitions() == 1
    assert rdd.collect() == hadoop_lines(data)


def test_missing_url_fails_at_textfile_naming_it(sc, server):
    url = server.url("/no/such/file.txt")
    with pytest.raises(FileNotFoundError) as info:
        sc.textFile(url)
    assert isinstance(info.value, ember.EmberError)
    assert url in str(info.value) and "404" in str(info.value)


def test_unreachable_server_fails_at_textfile_naming_the_url(sc):
    import socket
    with socket.socket() as s:         # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/data.txt"
    with pytest.raises(ember.EmberError, match=re.escape(url)):
        sc.textFile(url)


def test_http_error_while_reading_fails_the_task_naming_url_and_status(sc, server):
    url = server.url("/broken/small.txt")
    rdd = sc.textFile(url)             # HEAD succeeds, GET answers 500
    with pytest.raises(ember.JobFailedError) as info:
        rdd.collect()
    assert url in str(info.value) and "500" in str(info.value)


def test_http_tasks_leave_no_open_files_in_the_worker(sc, server):
    def open_fds() -> int:
        return sum(len(os.listdir(f"/proc/{pid}/fd")) for pid in sc._cluster.pids("ember-worker"))

    url = server.url("/data.txt")
    sc.textFile(url, minPartitions=8).count()          # warm up: channels, pyexecs
    before = open_fds()
    for _ in range(5):
        assert sc.textFile(url, minPartitions=8).count() > 0
    assert open_fds() <= before + 2
