"""Unit tests of the client's pure parts: no cluster needed."""

import io
import json
import os
import pickle
import struct
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from ember import files  # noqa: E402
from ember.callsite import call_site  # noqa: E402
from ember.conf import SparkConf  # noqa: E402
from ember.serializers import UnpicklableClosureError, dumps_function, iter_frames  # noqa: E402
from ember.shuffle import Partitioner, portable_hash  # noqa: E402


def test_text_splits_follow_hadoop_sizes(tmp_path):
    (tmp_path / "a.txt").write_text("x" * 1000)
    (tmp_path / "b.txt").write_text("y" * 10)
    (tmp_path / "_SUCCESS").write_text("")
    splits = files.text_splits(str(tmp_path), 4)
    # goal size 252: a.txt gives 252, 252, 252 and a 244-byte tail (under the 1.1 slop)
    assert [(os.path.basename(s["path"]), s["start"], s["length"]) for s in splits] == [
        ("a.txt", 0, 252), ("a.txt", 252, 252), ("a.txt", 504, 252), ("a.txt", 756, 244),
        ("b.txt", 0, 10)]


def test_text_splits_globs_and_lists(tmp_path):
    for name in ("one.log", "two.log", "three.txt"):
        (tmp_path / name).write_text("line\n")
    pattern = f"{tmp_path}/*.log,{tmp_path}/three.txt"
    paths = [os.path.basename(p) for p in files.expand_paths(pattern)]
    assert paths == ["one.log", "two.log", "three.txt"]


def test_missing_input_names_the_path(tmp_path):
    missing = tmp_path / "nope.txt"
    with pytest.raises(files.InputPathError, match="nope.txt"):
        files.text_splits(str(missing), 2)


def test_portable_hash_is_stable_for_none_and_tuples():
    assert portable_hash(None) == 0
    assert portable_hash((1, 2)) == portable_hash((1, 2))
    assert portable_hash((1, 2)) != portable_hash((2, 1))


def test_partitioner_equality_decides_reshuffles():
    assert Partitioner(4, portable_hash) == Partitioner(4, portable_hash)
    assert Partitioner(4, portable_hash) != Partitioner(3, portable_hash)


def test_iter_frames_reads_every_batch():
    block = b""
    for batch in ([1, 2], [], ["x"]):
        data = pickle.dumps(batch)
        block += struct.pack(">i", len(data)) + data
    assert list(iter_frames(block)) == [1, 2, "x"]


def test_unpicklable_closure_names_the_variable():
    import threading
    guard = threading.Lock()

    def uses_lock(x):
        with guard:
            return x

    with pytest.raises(UnpicklableClosureError, match="'guard' of type _thread.lock"):
        dumps_function(uses_lock)


def test_call_site_points_at_the_caller():
    description, site = call_site()
    assert site.startswith("test_client_units.py:")


def test_spark_conf_round_trip():
    conf = SparkConf().setMaster("local[2]").setAppName("x").setAll([("a", 1)])
    assert conf.get("spark.master") == "local[2]"
    assert conf.get("a") == "1"
    assert conf.get("missing", "d") == "d"


def test_defaults_file_lines_environment_and_lookup(tmp_path):
    from ember.conf import (defaults_file_path, environment_settings, parse_defaults_line,
                            read_defaults_file)
    assert parse_defaults_line("spark.x=a=b") == ("spark.x", "a=b")
    assert parse_defaults_line("  spark.y \t two words ") == ("spark.y", "two words")
    assert parse_defaults_line("#spark.z 1") is None
    (tmp_path / "ember-defaults.conf").write_text("# c\nspark.a 1\n\nspark.b = 2\n")
    found = defaults_file_path({"EMBER_CONF_DIR": str(tmp_path)})
    assert found == str(tmp_path / "ember-defaults.conf")
    assert read_defaults_file(found) == [("spark.a", "1"), ("spark.b", "2")]
    explicit = tmp_path / "other.conf"
    explicit.write_text("spark.c 3\n")
    assert defaults_file_path({"EMBER_PROPERTIES_FILE": str(explicit),
                               "EMBER_CONF_DIR": str(tmp_path)}) == str(explicit)
    with pytest.raises(FileNotFoundError, match="nope.conf"):
        defaults_file_path({"EMBER_PROPERTIES_FILE": str(tmp_path / "nope.conf")})
    assert environment_settings({"EMBER_CONF_spark_a": "1", "EMBER_MASTER": "local[2]",
                                 "EMBER_CONFX": "no", "EMBER_CONF_DIR": "/x"}) == [("spark.a", "1"),
                                                           ("spark.master", "local[2]")]


def test_a_result_body_closed_short_of_its_length_is_an_error():
    """http.client's read(n) gives b"" on an early close even short of the
    Content-Length: between two frames that must not look like the end."""
    import http.server
    import threading
    from ember.errors import GatewayError
    from ember.gateway_client import GatewayClient
    frame = pickle.dumps([1, 2, 3])
    body = struct.pack(">i", len(frame)) + frame

    class ShortAnswer(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", str(len(body) + 100))   # promises more
            self.end_headers()
            self.wfile.write(body)
            self.close_connection = True

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), ShortAnswer)
    thread = threading.Thread(target=server.handle_request, daemon=True)
    thread.start()
    try:
        client = GatewayClient(f"127.0.0.1:{server.server_address[1]}")
        got = []
        with pytest.raises(GatewayError, match="broke off 100 bytes short"):
            for record in client.stream_frames("/results"):
                got.append(record)
        assert got == [1, 2, 3]
    finally:
        thread.join(10)
        server.server_close()


class _ScriptedGateway:
    """A loopback server that answers the n-th request with answers[n] (raw
    bytes; None closes the connection without answering) and records each
    request's head, body and connection number."""

    def __init__(self, answers):
        import socket
        import threading
        self.answers = list(answers)
        self.requests = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.address = f"127.0.0.1:{self.listener.getsockname()[1]}"
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        connection = 0
        while self.answers:
            sock, _ = self.listener.accept()
            connection += 1
            with sock, sock.makefile("rb") as rfile:
                while self.answers:
                    head = b""
                    while not head.endswith(b"\r\n\r\n"):
                        line = rfile.readline()
                        if not line:
                            break
                        head += line
                    if not head:
                        break
                    fields = dict(line.split(": ", 1) for line in
                                  head.decode().split("\r\n")[1:] if ": " in line)
                    body = rfile.read(int(fields.get("Content-Length", "0")))
                    self.requests.append((head.decode(), body, connection))
                    answer = self.answers.pop(0)
                    if answer is None:
                        break
                    sock.sendall(answer)
                    if b"Connection: close" in answer:
                        break

    def close(self):
        self.listener.close()
        self.thread.join(10)


def test_client_reads_length_and_chunked_answers_on_one_kept_alive_connection():
    from ember.gateway_client import GatewayClient
    server = _ScriptedGateway([
        b'HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n'
        b'{"jobId":7}',
        b'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n'
        b'4\r\n{"a"\r\n5;x=1\r\n: [1,\r\n3\r\n 2]\r\n1\r\n}\r\n0\r\nTrailer: t\r\n\r\n',
        b'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nnull',
    ])
    try:
        client = GatewayClient(server.address, secret="s3")
        assert client.request("POST", "/apps/x/jobs?waitMs=1", {"rdd": 1}) == {"jobId": 7}
        assert client.request("GET", "/apps/x") == {"a": [1, 2]}
        assert client.request("DELETE", "/apps/x", retry=False) is None
    finally:
        server.close()
    (head, body, conn), second, third = server.requests
    assert head.startswith("POST /api/v1/apps/x/jobs?waitMs=1 HTTP/1.1\r\n"), head
    assert f"Host: {server.address}\r\n" in head and "Authorization: Bearer s3\r\n" in head
    assert "Content-Type: application/json\r\n" in head and "Content-Length: 10\r\n" in head
    assert json.loads(body) == {"rdd": 1}
    assert second[0].startswith("GET /api/v1/apps/x HTTP/1.1") and second[1] == b""
    assert [conn, second[2], third[2]] == [1, 1, 1]      # one connection for all three


def test_client_replaces_a_connection_the_gateway_closed_while_idle():
    from ember.gateway_client import GatewayClient
    ok = b'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}'
    server = _ScriptedGateway([ok, None, ok, ok])
    try:
        client = GatewayClient(server.address)
        assert client.request("GET", "/a") == {}
        # The server drops the kept-alive connection unanswered: a non-retried
        # request is sent once more on a new connection, never a third time.
        assert client.request("POST", "/b", {"x": 1}, retry=False) == {}
        assert client.request("GET", "/c") == {}
    finally:
        server.close()
    assert [(r[0].split(" ")[1], r[2]) for r in server.requests] == \
        [("/api/v1/a", 1), ("/api/v1/b", 1), ("/api/v1/b", 2), ("/api/v1/c", 2)]


def test_client_errors_on_short_bodies_error_statuses_and_garbage():
    from ember.errors import GatewayError
    from ember.gateway_client import GatewayClient
    server = _ScriptedGateway([
        b'HTTP/1.1 200 OK\r\nContent-Length: 50\r\nConnection: close\r\n\r\n{"short"',
        b'HTTP/1.1 400 Bad Request\r\nContent-Length: 20\r\n\r\n{"error": "bad job"}',
        b'SSH-2.0-OpenSSH\r\n\r\n',
    ])
    try:
        client = GatewayClient(server.address)
        with pytest.raises(GatewayError, match="broke off after 8 of 50 bytes"):
            client.request("POST", "/a", {}, retry=False)
        with pytest.raises(GatewayError, match="bad job") as err:
            client.request("POST", "/b", {}, retry=False)
        assert err.value.status == 400
        with pytest.raises(GatewayError, match="unreachable"):
            client.request("POST", "/c", {}, retry=False)
    finally:
        server.close()


def test_an_error_after_a_retry_says_an_earlier_attempt_may_have_arrived():
    # The driver tells "the master forgot this application before the job came"
    # (start again) from "the job may have reached the master that died" (the
    # job fails as lost) by whether the POST had to be sent again.
    from ember.errors import GatewayError
    from ember.gateway_client import GatewayClient
    unavailable = (b'HTTP/1.1 503 Service Unavailable\r\nContent-Length: 28\r\n\r\n'
                   b'{"error": "master is down"}\n')
    unknown = (b'HTTP/1.1 404 Not Found\r\nContent-Length: 35\r\n\r\n'
               b'{"error": "unknown application a"}\n')
    server = _ScriptedGateway([unknown, unavailable, unknown])
    try:
        client = GatewayClient(server.address)
        with pytest.raises(GatewayError, match="unknown application") as first:
            client.request("POST", "/applications/a/jobs", {}, retry=True)
        assert first.value.status == 404 and not first.value.retried
        with pytest.raises(GatewayError, match="unknown application") as second:
            client.request("POST", "/applications/a/jobs", {}, retry=True)
        assert second.value.status == 404 and second.value.retried
    finally:
        server.close()
    assert len(server.requests) == 3


class _Dribble(io.RawIOBase):
    """A socket's raw reads: at most `step` bytes each, then end of stream."""

    def __init__(self, data: bytes, step: int) -> None:
        self.data, self.step = data, step

    def readable(self) -> bool:
        return True

    def readinto(self, buf) -> int:
        part = self.data[:min(self.step, len(buf))]
        self.data = self.data[len(part):]
        buf[:len(part)] = part
        return len(part)


def _parse(answer: bytes, step: int, method: str = "GET"):
    """What _Connection makes of answer arriving `step` bytes per read: its
    result and the bytes left unread, or the exception's type and text."""
    from ember.gateway_client import _Connection
    conn = object.__new__(_Connection)
    conn.rfile = io.BufferedReader(_Dribble(answer, step))
    try:
        got = conn._response(method)
    except Exception as err:   # noqa: BLE001 - the failure is what is compared
        return (type(err).__name__, str(err))   # the connection is dropped then
    return got, conn.rfile.read()


_ANSWERS = [
    b'HTTP/1.1 201 Created\r\nDate: x\r\nContent-Type: application/json\r\n'
    b'Content-Length: 11\r\n\r\n{"jobId":7}NEXT',
    b'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{"a"\r\n0\r\n\r\nNEXT',
    b'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nnullNEXT',
    b'HTTP/1.1 200 OK\nContent-Length: 2\nX-A: 1\nx-a: 2\nno colon here\n\n{}NEXT',
    b'HTTP/1.1 200 OK\r\n\r\n',
    b'HTTP/1.1 200 OK\r\n\nbody until close',
    b'HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n{}',
    b'HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 2\r\n\r\n{}',
    b'HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}',
    b'HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\nNEXT',
    b'HTTP/1.1 200 OK\r\nContent-Length: -3\r\n\r\n',
    b'HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n',
    b'HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nshort',
    b'HTTP/1.1 200\r\nContent-Length:   3  \r\n\r\nabc',
    b'SSH-2.0-OpenSSH\r\n\r\n',
    b'\r\n\r\n',
    b'',
    b'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n',
    b'HTTP/1.1 200 OK\r\n' + b'X: y\r\n' * 100 + b'\r\n',
    b'HTTP/1.1 200 OK\r\n' + b'X: y\r\n' * 101 + b'\r\n',
]


@pytest.mark.parametrize("answer", _ANSWERS)
def test_a_head_read_from_the_buffer_is_parsed_as_line_by_line(answer):
    # The whole answer in one read takes the buffered head; one byte per read
    # leaves it incomplete in the buffer, so it is read line by line.
    for method in ("GET", "HEAD"):
        whole, by_lines = _parse(answer, 1 << 16, method), _parse(answer, 1, method)
        assert whole == by_lines, (whole, by_lines)


def test_a_whole_head_in_the_buffer_is_not_read_line_by_line():
    from ember.gateway_client import _Connection
    conn = object.__new__(_Connection)
    conn.rfile = io.BufferedReader(_Dribble(_ANSWERS[0], 1 << 16))
    conn._line = None                      # any line-by-line read would fail
    assert conn._response("POST") == (201, "Created", b'{"jobId":7}', "11", False)


def test_submission_tokens_differ_within_a_driver_and_between_drivers():
    from types import SimpleNamespace
    from ember.jobs import JobRunner
    fake = SimpleNamespace(_client=None, applicationId="app-1", _conf=SparkConf())
    first, second = JobRunner(fake), JobRunner(fake)
    tokens = [first._new_token() for _ in range(1000)] + [second._new_token() for _ in range(1000)]
    assert len(set(tokens)) == len(tokens)
    assert all(len(t) == 32 and int(t, 16) >= 0 for t in tokens)


def test_a_forked_child_draws_submission_tokens_of_its_own():
    from types import SimpleNamespace
    from ember.jobs import JobRunner
    runner = JobRunner(SimpleNamespace(_client=None, applicationId="app-1", _conf=SparkConf()))
    runner._new_token()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:                                     # the child: its next token, then exit
        os.write(write_end, runner._new_token().encode())
        os._exit(0)
    os.close(write_end)
    child_token = os.read(read_end, 64).decode()
    os.close(read_end)
    os.waitpid(pid, 0)
    assert len(child_token) == 32 and child_token != runner._new_token()
