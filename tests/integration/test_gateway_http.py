"""ember-gateway on its own: the HTTP layer with no master behind it.

Every route that needs the master must answer 503 naming the master address;
everything the gateway decides by itself (routing, 404/405/413, JSON and id
validation, /health, the UI) is checked here.

Run with ``/usr/bin/python3 -m pytest -q tests/integration/test_gateway_http.py``;
``EMBER_BIN_DIR`` names the folder holding ``ember-gateway`` (default
``/work/main/build/bin``).
"""

import http.client
import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

BIN_DIR = os.environ.get("EMBER_BIN_DIR", "/work/main/build/bin")
GATEWAY = os.path.join(BIN_DIR, "ember-gateway")
NO_MASTER = "127.0.0.1:1"  # nothing listens there: connection refused at once
MAX_BODY = 4096
APP = "app-20240101-0001"


class Gateway:
    """A running ember-gateway; ``url(path)`` builds request URLs."""

    def __init__(self, proc, address, tmp_path):
        self.proc = proc
        self.address = address
        self.tmp_path = tmp_path

    def url(self, path):
        return "http://%s%s" % (self.address, path)

    def stop(self, sig=signal.SIGTERM, timeout=10):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout=timeout)


def start_gateway(tmp_path, *extra, master=NO_MASTER):
    """Starts the gateway on a free port and waits for its ready file."""
    if not os.access(GATEWAY, os.X_OK):
        pytest.fail("%s is not built (cmake --build build --target ember-gateway)" % GATEWAY)
    ready = tmp_path / ("ready-%d" % time.monotonic_ns())
    log = open(tmp_path / "gateway.log", "ab")
    proc = subprocess.Popen(
        [GATEWAY, "--listen", "127.0.0.1:0", "--master", master, "--ready-file", str(ready),
         "--max-body-bytes", str(MAX_BODY), *extra],
        stdout=log, stderr=subprocess.STDOUT)
    log.close()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if ready.exists() and ready.read_text().strip():
            return Gateway(proc, ready.read_text().strip(), tmp_path)
        if proc.poll() is not None:
            pytest.fail("ember-gateway exited with %d:\n%s"
                        % (proc.returncode, (tmp_path / "gateway.log").read_text()))
        time.sleep(0.02)
    proc.kill()
    proc.wait()
    pytest.fail("ember-gateway wrote no ready file within 10 s")


@pytest.fixture
def gateway(tmp_path):
    gw = start_gateway(tmp_path)
    yield gw
    if gw.proc.poll() is None:
        gw.proc.kill()
    gw.proc.wait()


def call(gw, method, path, body=None, headers=None):
    """Returns (status, headers, body bytes); HTTP errors are answers too."""
    if isinstance(body, (dict, list)):
        body = json.dumps(body).encode()
    elif isinstance(body, str):
        body = body.encode()
    req = urllib.request.Request(gw.url(path), data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=15) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as err:
        with err:
            return err.code, err.headers, err.read()


def error_of(status_headers_body):
    """The "error" sentence of a JSON error answer."""
    _, headers, body = status_headers_body
    assert headers["Content-Type"].startswith("application/json")
    doc = json.loads(body)
    assert set(doc) == {"error"}, doc
    assert isinstance(doc["error"], str) and doc["error"]
    return doc["error"]


# ---- process ----------------------------------------------------------------

def test_help_lists_every_option_with_its_variable():
    out = subprocess.run([GATEWAY, "--help"], capture_output=True, text=True, timeout=10)
    assert out.returncode == 0
    for flag, env, default in [("--listen", "EMBER_GATEWAY_LISTEN", "127.0.0.1:8080"),
                               ("--master", "EMBER_MASTER_ADDRESS", "127.0.0.1:7077"),
                               ("--max-body-bytes", "EMBER_GATEWAY_MAX_BODY", "268435456"),
                               ("--threads", "EMBER_GATEWAY_THREADS", "4")]:
        assert flag in out.stdout and env in out.stdout and default in out.stdout


@pytest.mark.parametrize("args", [["--no-such-flag"], ["--threads", "many"],
                                  ["--threads", "0"], ["--max-body-bytes", "-5"],
                                  ["--listen", "127.0.0.1"], ["--listen", "127.0.0.1:99999"]])
def test_bad_options_fail_fast(args):
    out = subprocess.run([GATEWAY, "--master", NO_MASTER, *args], capture_output=True,
                         text=True, timeout=10)
    assert out.returncode != 0
    assert out.stderr.strip(), "a usage error must say what is wrong"


def test_sigterm_exits_cleanly(tmp_path):
    gw = start_gateway(tmp_path)
    assert call(gw, "GET", "/health")[0] == 200
    started = time.monotonic()
    assert gw.stop(signal.SIGTERM) == 0
    assert time.monotonic() - started < 5


def test_sigint_exits_cleanly(tmp_path):
    gw = start_gateway(tmp_path)
    assert gw.stop(signal.SIGINT) == 0


def test_port_in_use_is_an_error(tmp_path, gateway):
    out = subprocess.run([GATEWAY, "--listen", gateway.address, "--master", NO_MASTER],
                         capture_output=True, text=True, timeout=10)
    assert out.returncode == 1
    assert "cannot serve HTTP" in out.stderr


def test_environment_variables_configure(tmp_path):
    ready = tmp_path / "ready"
    env = dict(os.environ, EMBER_GATEWAY_LISTEN="127.0.0.1:0", EMBER_MASTER_ADDRESS=NO_MASTER,
               EMBER_READY_FILE=str(ready), EMBER_GATEWAY_MAX_BODY="10")
    proc = subprocess.Popen([GATEWAY], env=env, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not (ready.exists() and ready.read_text().strip()) and time.monotonic() < deadline:
            time.sleep(0.02)
        gw = Gateway(proc, ready.read_text().strip(), tmp_path)
        status, _, _ = call(gw, "POST", "/api/v1/applications", {"name": "more than ten"})
        assert status == 413
    finally:
        proc.kill()
        proc.wait()


# ---- routes the gateway answers alone ----------------------------------------

def test_health(gateway):
    status, headers, body = call(gateway, "GET", "/health")
    assert status == 200
    assert headers["Content-Type"].startswith("application/json")
    assert json.loads(body) == {"status": "ok"}


def test_ui_is_embedded_html(gateway):
    status, headers, body = call(gateway, "GET", "/")
    assert status == 200
    assert headers["Content-Type"].startswith("text/html")
    page = body.decode()
    assert "Ember" in page
    assert 'href="/jobs"' in page                      # the no-JavaScript job list
    for path in ("/api/v1/jobs", "/api/v1/stages", "/api/v1/executors"):
        assert path in page
    assert ".innerHTML =" not in page and ".innerHTML=" not in page
    assert "textContent" in page


@pytest.mark.parametrize("path", ["/nope", "/api", "/api/v1", "/api/v2/jobs",
                                  "/api/v1/jobs/1/extra", "/api/v1/applications/%s/whatever" % APP,
                                  "/api/v1/applications/%s/jobs/1/results/0/x/y/z" % APP])
def test_unknown_route_is_404_json(gateway, path):
    answer = call(gateway, "GET", path)
    assert answer[0] == 404
    assert "no route" in error_of(answer)


@pytest.mark.parametrize("method, path, allowed", [
    ("PUT", "/api/v1/jobs", {"GET"}),
    ("POST", "/health", {"GET"}),
    ("DELETE", "/api/v1/applications", {"GET", "POST"}),
    ("GET", "/api/v1/applications/%s" % APP, {"DELETE"}),
    ("DELETE", "/api/v1/applications/%s/jobs" % APP, {"GET", "POST"}),
    ("GET", "/api/v1/applications/%s/jobs/3/cancel" % APP, {"POST"}),
    ("POST", "/api/v1/applications/%s/jobs/3/results/0" % APP, {"GET"}),
])
def test_wrong_method_is_405_with_allow(gateway, method, path, allowed):
    answer = call(gateway, method, path, body=b"" if method in ("POST", "PUT") else None)
    assert answer[0] == 405
    assert {m.strip() for m in answer[1]["Allow"].split(",")} == allowed
    assert "not allowed" in error_of(answer)


def test_body_over_limit_by_content_length_is_413(gateway):
    answer = call(gateway, "POST", "/api/v1/applications/%s/jobs" % APP,
                  body=b"x" * (MAX_BODY + 1), headers={"Content-Type": "application/json"})
    assert answer[0] == 413
    assert str(MAX_BODY) in error_of(answer)


def test_chunked_body_over_limit_is_413(gateway):
    chunks = iter([b"[" + b"1," * 1000] * 5)          # no length: urllib sends it chunked
    answer = call(gateway, "POST", "/api/v1/applications/%s/jobs" % APP, body=chunks)
    assert answer[0] == 413
    assert "--max-body-bytes" in error_of(answer)


def test_chunked_body_under_limit_is_read(gateway):
    answer = call(gateway, "POST", "/api/v1/applications", body=iter([b'{"name":', b' 5}']))
    assert answer[0] == 400                            # read whole, then found wrong
    assert '"name"' in error_of(answer)


def test_body_at_limit_is_accepted(gateway):
    body = b'{"name": "%s"}' % (b"a" * (MAX_BODY - 12))
    assert len(body) == MAX_BODY
    assert call(gateway, "POST", "/api/v1/applications", body=body)[0] == 503


# ---- request validation (400) ----------------------------------------------

def test_malformed_job_json_names_line_and_column(gateway):
    answer = call(gateway, "POST", "/api/v1/applications/%s/jobs" % APP,
                  body='{"rdd": 1,\n "nodes": [}')
    assert answer[0] == 400
    message = error_of(answer)
    assert "not valid JSON" in message
    assert "line 2" in message and "column" in message


@pytest.mark.parametrize("body, word", [
    ("", "empty"),
    ("[1, 2]", "JSON object"),
    ('"job"', "JSON object"),
    ('{"nodes": []}', '"rdd"'),
    ('{"rdd": "4", "nodes": []}', '"rdd"'),
    ('{"rdd": 4.5, "nodes": []}', '"rdd"'),
    ('{"rdd": 4}', '"nodes"'),
    ('{"rdd": 4, "nodes": {}}', '"nodes"'),
    ('{"rdd": 4, "nodes": []} trailing', "not valid JSON"),
])
def test_job_with_wrong_shape_is_400(gateway, body, word):
    answer = call(gateway, "POST", "/api/v1/applications/%s/jobs" % APP, body=body)
    assert answer[0] == 400
    assert word in error_of(answer)


@pytest.mark.parametrize("body, word", [
    ("", "empty"),
    ("{", "not valid JSON"),
    ("[]", "JSON object"),
    ("{}", '"name"'),
    ('{"name": 7}', '"name"'),
    ('{"name": ""}', '"name"'),
    ('{"name": "x", "user": 3}', '"user"'),
])
def test_application_with_wrong_shape_is_400(gateway, body, word):
    answer = call(gateway, "POST", "/api/v1/applications", body=body)
    assert answer[0] == 400
    assert word in error_of(answer)


@pytest.mark.parametrize("path", [
    "/api/v1/applications/foo/jobs",
    "/api/v1/applications/app-/jobs",
    "/api/v1/applications/APP-1/stages",
    "/api/v1/applications/%s/jobs/abc" % APP,
    "/api/v1/applications/%s/jobs/-1" % APP,
    "/api/v1/applications/%s/jobs/1e3" % APP,
    "/api/v1/applications/%s/jobs/99999999999" % APP,
    "/api/v1/applications/%s/jobs/1/results/x" % APP,
    "/api/v1/applications/%s/stages/1.5" % APP,
])
def test_malformed_ids_are_404(gateway, path):
    answer = call(gateway, "GET", path)
    assert answer[0] == 404
    assert "ids" in error_of(answer)


# ---- everything else needs the master -----------------------------------------

@pytest.mark.parametrize("method, path, body", [
    ("GET", "/api/v1/jobs", None),
    ("GET", "/api/v1/stages", None),
    ("GET", "/api/v1/executors", None),
    ("GET", "/api/v1/applications", None),
    ("POST", "/api/v1/applications", {"name": "wordcount", "user": "me"}),
    ("DELETE", "/api/v1/applications/%s" % APP, None),
    ("POST", "/api/v1/applications/%s/jobs" % APP, {"rdd": 2, "nodes": []}),
    ("GET", "/api/v1/applications/%s/jobs" % APP, None),
    ("GET", "/api/v1/applications/%s/jobs/0" % APP, None),
    ("POST", "/api/v1/applications/%s/jobs/0/cancel" % APP, None),
    ("GET", "/api/v1/applications/%s/jobs/0/results/0" % APP, None),
    ("GET", "/api/v1/applications/%s/stages" % APP, None),
    ("GET", "/api/v1/applications/%s/stages/0" % APP, None),
])
def test_master_unreachable_is_503(gateway, method, path, body):
    answer = call(gateway, method, path, body=body if body is not None
                  else (b"" if method == "POST" else None))
    assert answer[0] == 503
    assert "master at %s is unreachable" % NO_MASTER in error_of(answer)


def test_server_rendered_jobs_page_reports_unreachable_master(gateway):
    status, headers, body = call(gateway, "GET", "/jobs")
    assert status == 503
    assert headers["Content-Type"].startswith("text/html")
    assert "master at %s is unreachable" % NO_MASTER in body.decode()


def test_keeps_serving_after_errors(gateway):
    for _ in range(3):
        call(gateway, "GET", "/nope")
        call(gateway, "POST", "/api/v1/applications", body="{")
        call(gateway, "GET", "/api/v1/jobs")
    assert call(gateway, "GET", "/health")[0] == 200
    assert gateway.proc.poll() is None


# ---- what reaches files, and how many uploads at once ------------------------

TRAVERSALS = [
    "/../../../../etc/passwd",
    "/%2e%2e/%2e%2e/etc/passwd",
    "/%2E%2E%2F%2E%2E%2Fetc%2Fpasswd",
    "/..%2f..%2f..%2fetc%2fpasswd",
    "/%252e%252e/%252e%252e/etc/passwd",           # double-encoded
    "/..\\..\\..\\etc\\passwd",
    "/%5c..%5c..%5cetc%5cpasswd",
    "/index.html/../../etc/passwd",
    "/api/v1/../../../etc/passwd",
    "/./index.html",
    "/static/..%c0%af..%c0%afetc/passwd",           # overlong UTF-8 '/'
]


@pytest.mark.parametrize("path", TRAVERSALS)
def test_path_traversal_is_404(gateway, path):
    # http.client sends the path byte for byte (urllib would not touch it either,
    # but this makes it plain that nothing is normalised on the way).
    host, port = gateway.address.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=15)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        body = resp.read()
    finally:
        conn.close()
    assert b"root:" not in body
    try:
        urllib.parse.unquote_to_bytes(path).decode("utf-8")
    except UnicodeDecodeError:             # an overlong '/': refused as not UTF-8
        assert resp.status == 400, (path, resp.status, body[:200])
        assert "not valid UTF-8" in json.loads(body)["error"]
        return
    assert resp.status == 404, (path, resp.status, body[:200])
    assert json.loads(body)["error"].startswith("no route")


def put_held_open(gw, path, length):
    """Starts a PUT whose body never completes; returns the socket once the
    gateway accepted its headers (100 Continue)."""
    host, port = gw.address.rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=15)
    sock.sendall(("PUT %s HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n"
                  "Expect: 100-continue\r\n\r\n" % (path, gw.address, length)).encode())
    got = b""
    while b"\r\n\r\n" not in got:
        chunk = sock.recv(4096)
        assert chunk, "the gateway closed the connection"
        got += chunk
    assert got.startswith(b"HTTP/1.1 100"), got
    sock.sendall(b"x" * 10)
    return sock


def test_uploads_beyond_max_uploads_get_503_until_one_ends(tmp_path):
    gw = start_gateway(tmp_path, "--max-uploads", "1")
    path = "/api/v1/applications/%s/broadcasts/1" % APP
    try:
        first = put_held_open(gw, path, 100)
        busy = call(gw, "PUT", path, b"y" * 100)
        assert busy[0] == 503
        assert "--max-uploads" in error_of(busy)
        assert busy[1]["Retry-After"] == "1"
        # Other routes are not uploads and go on.
        assert call(gw, "GET", "/health")[0] == 200
        first.sendall(b"x" * 90)                # the first upload completes...
        assert first.recv(4096).startswith(b"HTTP/1.1 503")   # (no master behind)
        first.close()
        # ...and frees its place once the gateway has finished the request
        # (its completion runs just after the answer went out: allow a moment).
        deadline = time.monotonic() + 5
        later = call(gw, "PUT", path, b"y" * 100)
        while "--max-uploads" in error_of(later) and time.monotonic() < deadline:
            time.sleep(0.05)
            later = call(gw, "PUT", path, b"y" * 100)
        assert later[0] == 503 and "--max-uploads" not in error_of(later), later
    finally:
        gw.stop()


# ---- the shared secret -------------------------------------------------------

SECRET = "integration-secret-0123456789"


def test_secret_file_guards_the_api_not_health(tmp_path):
    secret_file = tmp_path / "secret"
    secret_file.write_text(SECRET + "\n")
    gw = start_gateway(tmp_path, "--auth-secret-file", str(secret_file))
    try:
        assert call(gw, "GET", "/health")[0] == 200
        refused = call(gw, "GET", "/api/v1/jobs")
        assert refused[0] == 401
        assert refused[1]["WWW-Authenticate"].startswith("Bearer")
        assert "shared secret" in error_of(refused)
        wrong = call(gw, "GET", "/api/v1/jobs", headers={"Authorization": "Bearer " + SECRET[:-1]})
        assert wrong[0] == 401
        right = call(gw, "GET", "/api/v1/jobs", headers={"Authorization": "Bearer " + SECRET})
        assert right[0] == 503                   # let in; no master behind it
        assert SECRET not in (tmp_path / "gateway.log").read_text()
    finally:
        gw.stop()


@pytest.mark.parametrize("secret, word", [("tiny-Q7x", "shorter than 16"),
                                          ("has a space in it 0123", "printable ASCII")])
def test_bad_secret_is_a_usage_error(secret, word):
    out = subprocess.run([GATEWAY, "--master", NO_MASTER], capture_output=True, text=True,
                         timeout=10, env=dict(os.environ, EMBER_AUTH_SECRET=secret))
    assert out.returncode != 0
    assert word in out.stderr and secret not in out.stderr


def test_secret_in_both_places_is_a_usage_error(tmp_path):
    (tmp_path / "s").write_text(SECRET)
    out = subprocess.run([GATEWAY, "--master", NO_MASTER, "--auth-secret-file",
                          str(tmp_path / "s")], capture_output=True, text=True, timeout=10,
                         env=dict(os.environ, EMBER_AUTH_SECRET=SECRET))
    assert out.returncode != 0 and "use one of them" in out.stderr


@pytest.mark.parametrize("body", [{}, {"mainResource": "x.py"}, {"mainResource": 3},
                                  {"mainResource": "x.py", "appArgs": [1]}])
def test_malformed_driver_submissions_are_400_and_the_gateway_lives(gateway, body):
    # {} used to free the protobuf-c empty string: the gateway aborted.
    answer = call(gateway, "POST", "/api/v1/drivers", body)
    assert answer[0] == 400, answer
    assert call(gateway, "GET", "/health")[0] == 200


# ---- oversized and malicious requests -------------------------------------------

BIG_BODY = 16 << 20            # room for the 10 MB bodies below


def raw_exchange(gw, data, read_timeout=15):
    """Sends raw bytes on one connection and returns everything answered
    until the gateway closes it or read_timeout passes."""
    host, port = gw.address.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=read_timeout) as s:
        s.sendall(data)
        answer = b""
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                answer += chunk
        except socket.timeout:
            pass
    return answer


def status_of(answer):
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.") else None


@pytest.mark.parametrize("opening", [b"[", b'{"a":'])
def test_ten_megabytes_of_nesting_is_400(tmp_path, opening):
    gw = start_gateway(tmp_path, "--max-body-bytes", str(BIG_BODY))
    try:
        body = opening * ((10 << 20) // len(opening))
        for path in ("/api/v1/applications", "/api/v1/applications/%s/jobs" % APP):
            answer = call(gw, "POST", path, body=body)
            assert answer[0] == 400
            assert "not valid JSON" in error_of(answer)
        assert call(gw, "GET", "/health")[0] == 200
        assert gw.proc.poll() is None
    finally:
        gw.stop()


def test_one_gigabyte_content_length_is_413_without_the_body(gateway):
    """Only the headers are sent: the answer must come without waiting for 1 GB."""
    answer = raw_exchange(gateway, (b"POST /api/v1/applications/%s/jobs HTTP/1.1\r\n"
                                    b"Host: x\r\nContent-Type: application/json\r\n"
                                    b"Content-Length: 1073741824\r\n\r\n" % APP.encode()))
    assert status_of(answer) == 413
    assert b"--max-body-bytes" in answer


def test_one_gigabyte_content_length_is_413_with_the_default_limit(tmp_path):
    gw = start_gateway(tmp_path, "--max-body-bytes", "268435456")
    try:
        answer = raw_exchange(gw, (b"PUT /api/v1/applications/%s/broadcasts/1 HTTP/1.1\r\n"
                                   b"Host: x\r\nContent-Length: 1073741824\r\n\r\n"
                                   % APP.encode()))
        assert status_of(answer) == 413
    finally:
        gw.stop()


def closed_by_peer(s):
    """True once the gateway has closed (or reset) the connection."""
    try:
        return s.recv(100, socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


def test_slow_and_idle_connections_are_dropped_and_others_still_served(tmp_path):
    """60 connections that never finish their request: half send nothing, half
    trickle a byte every 0.3 s (which resets an idle timer, not the request
    timer). Other clients are answered meanwhile; all 60 are closed."""
    gw = start_gateway(tmp_path, "--idle-timeout-s", "2", "--request-timeout-s", "3",
                       "--threads", "2")
    host, port = gw.address.rsplit(":", 1)
    idle, trickling = [], []
    try:
        for i in range(60):
            s = socket.create_connection((host, int(port)), timeout=15)
            s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")      # never finished
            (idle if i % 2 else trickling).append(s)
        deadline = time.monotonic() + 30
        open_ones = list(trickling)
        while open_ones and time.monotonic() < deadline:
            for s in list(open_ones):
                try:
                    s.sendall(b"X")
                except OSError:
                    open_ones.remove(s)
                    continue
                if closed_by_peer(s):
                    open_ones.remove(s)
            assert call(gw, "GET", "/health")[0] == 200
            assert call(gw, "POST", "/api/v1/applications", body="{")[0] == 400
            time.sleep(0.3)
        assert not open_ones, "%d trickling connections still open" % len(open_ones)
        for s in idle:
            s.settimeout(15)
            assert s.recv(100) == b""
        assert call(gw, "GET", "/health")[0] == 200
        assert gw.proc.poll() is None
    finally:
        for s in idle + trickling:
            s.close()
        gw.stop()


@pytest.mark.parametrize("body", [b'{"name": "\xff\xfe"}', b'{"name": "a\xc0\xafb"}',
                                  b'{"name": "\xed\xa0\x80"}', b'{"name": "x", "\xff": 1}'])
def test_invalid_utf8_in_json_is_400(gateway, body):
    answer = call(gateway, "POST", "/api/v1/applications", body=body)
    assert answer[0] == 400
    assert "not valid JSON" in error_of(answer)


@pytest.mark.parametrize("target", [b"/api/v1/applications/app-\xff\xfe/jobs",
                                    b"/api/v1/applications/app-%FF/jobs",
                                    b"/api/v1/jobs?x=%C0%AF",
                                    b"/health\xc3"])
def test_invalid_utf8_in_the_url_is_400(gateway, target):
    answer = raw_exchange(gateway, b"GET " + target + b" HTTP/1.1\r\nHost: x\r\n"
                                   b"Connection: close\r\n\r\n")
    assert status_of(answer) == 400
    assert b"UTF-8" in answer
    json.loads(answer.split(b"\r\n\r\n", 1)[1])        # still a JSON error body


def test_invalid_utf8_in_a_header_is_400(gateway):
    answer = raw_exchange(gateway, b"GET /health HTTP/1.1\r\nHost: x\r\nX-Name: \xff\xfe\r\n"
                                   b"Connection: close\r\n\r\n")
    assert status_of(answer) == 400
    assert b"header X-Name is not valid UTF-8" in answer


@pytest.mark.parametrize("body, word", [
    ("[]", "JSON object"),
    ("{", "JSON object"),
    ('{"mainResource": "m.py", "conf": []}', "conf"),
    ('{"mainResource": "m.py", "uploads": [{"path": "m.py", "data": "%%%"}]}', "base64"),
])
def test_driver_submission_not_an_object_or_with_bad_fields_is_400(gateway, body, word):
    """A body that is not an object freed protobuf-c's shared "" too (found by fuzz_gateway)."""
    answer = call(gateway, "POST", "/api/v1/drivers", body=body)
    assert answer[0] == 400
    assert word in error_of(answer)
    assert call(gateway, "GET", "/health")[0] == 200


# ---- ids that do not exist (a real master behind the gateway) ----------------------

MASTER = os.path.join(BIN_DIR, "ember-master")


@pytest.fixture
def gateway_with_master(tmp_path):
    ready = tmp_path / "master-ready"
    log = open(tmp_path / "master.log", "ab")
    master = subprocess.Popen([MASTER, "--listen", "127.0.0.1:0", "--ready-file", str(ready)],
                              stdout=log, stderr=subprocess.STDOUT)
    log.close()
    deadline = time.monotonic() + 10
    while not (ready.exists() and ready.read_text().strip()):
        assert master.poll() is None and time.monotonic() < deadline, "ember-master did not start"
        time.sleep(0.02)
    gw = start_gateway(tmp_path, master=ready.read_text().strip())
    yield gw
    gw.stop()
    master.send_signal(signal.SIGTERM)
    assert master.wait(timeout=10) == 0


def test_ids_that_do_not_exist_are_404_json(gateway_with_master):
    gw = gateway_with_master
    status, _, body = call(gw, "POST", "/api/v1/applications", {"name": "ids"})
    assert status == 201
    app = json.loads(body)["id"]
    missing_app = "app-20000101000000-9999"
    for method, path in [
            ("GET", "/api/v1/applications/%s/jobs" % missing_app),
            ("GET", "/api/v1/applications/%s/stages" % missing_app),
            ("DELETE", "/api/v1/applications/%s" % missing_app),
            ("POST", "/api/v1/applications/%s/jobs" % missing_app),
            ("GET", "/api/v1/applications/%s/jobs/12345" % app),
            ("POST", "/api/v1/applications/%s/jobs/12345/cancel" % app),
            ("GET", "/api/v1/applications/%s/jobs/12345/results/0" % app),
            ("GET", "/api/v1/applications/%s/stages/12345" % app),
            ("GET", "/api/v1/applications/%s/environment" % missing_app)]:
        body = {"rdd": 1, "nodes": []} if method == "POST" and path.endswith("/jobs") else None
        answer = call(gw, method, path, body=body if body else (b"" if method == "POST" else None))
        assert answer[0] == 404, (method, path, answer)
        message = error_of(answer)
        assert "12345" in message or missing_app in message, message
