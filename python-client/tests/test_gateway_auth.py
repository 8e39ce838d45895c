"""Where a driver finds the cluster's shared secret and CA, and what its
gateway client sends: a throwaway HTTP server on loopback records the requests."""

import http.server
import json
import os
import sys
import threading

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from ember.conf import SparkConf  # noqa: E402
from ember.errors import GatewayError  # noqa: E402
from ember.gateway_client import (GatewayClient, ca_from_environment,  # noqa: E402
                                  secret_from_environment)

SECRET = "unit-secret-0123456789abcdef"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    for key in ("EMBER_AUTH_SECRET", "EMBER_AUTH_SECRET_FILE", "EMBER_TLS_CA"):
        monkeypatch.delenv(key, raising=False)


def test_secret_comes_from_the_variable_then_the_file_then_conf(tmp_path, monkeypatch):
    conf = SparkConf().set("spark.authenticate.secret", "from-conf-0123456789")
    assert secret_from_environment() is None
    assert secret_from_environment(conf) == "from-conf-0123456789"
    (tmp_path / "secret").write_text("from-file-0123456789\nignored\n")
    monkeypatch.setenv("EMBER_AUTH_SECRET_FILE", str(tmp_path / "secret"))
    assert secret_from_environment(conf) == "from-file-0123456789"
    monkeypatch.setenv("EMBER_AUTH_SECRET", "from-variable-0123456789")
    assert secret_from_environment(conf) == "from-variable-0123456789"


def test_unreadable_secret_file_names_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("EMBER_AUTH_SECRET_FILE", str(tmp_path / "missing"))
    with pytest.raises(GatewayError, match="missing.*EMBER_AUTH_SECRET_FILE"):
        secret_from_environment()


def test_ca_makes_the_client_speak_https(tmp_path, monkeypatch):
    assert ca_from_environment() is None
    assert GatewayClient("127.0.0.1:1").base == "http://127.0.0.1:1/api/v1"
    with pytest.raises(GatewayError, match="TLS CA file"):
        GatewayClient("127.0.0.1:1", ca_file=str(tmp_path / "no-such-ca.pem"))
    monkeypatch.setenv("EMBER_TLS_CA", "/x/ca.pem")
    assert ca_from_environment() == "/x/ca.pem"
    assert ca_from_environment(SparkConf().set("spark.ember.tls.ca", "/y.pem")) == "/x/ca.pem"


class _Recorder(http.server.BaseHTTPRequestHandler):
    seen: list = []

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        _Recorder.seen.append((self.command, self.path, self.headers.get("Authorization")))
        body = json.dumps({"ok": True}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_PUT = do_POST = do_DELETE = _answer

    def log_message(self, *args) -> None:
        pass


def test_every_request_carries_the_secret():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        client = GatewayClient(f"127.0.0.1:{server.server_port}", SECRET)
        client.request("GET", "/jobs")
        client.request("POST", "/applications", {"name": "x"})
        client.request("PUT", "/applications/app-1/broadcasts/1", raw_body=b"data")
        client.request("DELETE", "/applications/app-1")
        with client._open("/applications/app-1/jobs/0/results") as resp:
            resp.read()
    finally:
        server.shutdown()
        server.server_close()
    assert len(_Recorder.seen) == 5
    assert all(auth == f"Bearer {SECRET}" for _, _, auth in _Recorder.seen), _Recorder.seen
