"""Access control and TLS of a whole cluster.

* Every route of the gateway's own route table (``ember-gateway --list-routes``,
  so a route added later is checked too) refuses a request without the shared
  secret with 401, and lets it in with the secret; the open ones (UI shell,
  login, /health) need none. The web UI's login gives an HttpOnly,
  SameSite=Strict cookie that opens the API.
* A job run with a secret leaves it in no daemon log and no API or UI answer.

(Every gRPC method is checked by the C test tests/integration/test_auth_rpc.c;
drivers given the secret in SparkConf, and TLS: test_security_cluster.py.)
"""

from __future__ import annotations

import http.client
import json
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from conftest import BIN_DIR, Gateway, start_sc

PARAMS = {"{job}": "0", "{stage}": "0", "{rdd}": "1", "{partition}": "0", "{broadcast}": "1",
          "{driver}": "driver-20240101000000-0001"}


def gateway_routes() -> list[tuple[str, str, str]]:
    """(method, pattern, "open"|"secret") for every route the gateway serves."""
    out = subprocess.run([str(BIN_DIR / "ember-gateway"), "--list-routes"], capture_output=True,
                         text=True, timeout=10, check=True)
    routes = [tuple(line.split()) for line in out.stdout.splitlines()]
    assert len(routes) > 20 and all(len(r) == 3 for r in routes), out.stdout
    return routes


def concrete(pattern: str, app: str) -> str:
    path = pattern.replace("{app}", app)
    for name, value in PARAMS.items():
        path = path.replace(name, value)
    assert "{" not in path, f"a route parameter this test does not know: {pattern}"
    return path


@pytest.fixture(scope="module")
def sc(request):
    return start_sc(request, "security")


@pytest.fixture(scope="module")
def spare_app(sc) -> str:
    """An application the route checks may end, cancel and unpersist at will."""
    status, body = Gateway.of(sc).post("/api/v1/applications", {"name": "route-probe"})
    assert status == 201, body
    return body["id"]


def test_open_routes_are_only_the_ui_shell_login_and_health():
    open_routes = {(m, p) for m, p, access in gateway_routes() if access == "open"}
    assert open_routes == {("GET", "/"), ("GET", "/index.html"), ("POST", "/login"),
                           ("POST", "/logout"), ("GET", "/health")}


@pytest.mark.parametrize("method, pattern, access", gateway_routes())
def test_every_route_wants_the_secret(sc, spare_app, method, pattern, access):
    gw = Gateway.of(sc)
    path = concrete(pattern, spare_app)
    body = b"{}" if method in ("POST", "PUT") else None
    without = gw.request(method, path, data=body, auth=False)
    wrong = gw.request(method, path, data=body, auth=False,
                       headers={"Authorization": "Bearer " + "x" * len(gw.secret)})
    if access == "secret":
        for status, answer in (without, wrong):
            assert status == 401, f"{method} {path} without the secret -> {status}: {answer}"
            assert "shared secret" in answer["error"]
        with_secret = gw.request(method, path, data=body)
        assert with_secret[0] != 401, f"{method} {path} with the secret -> {with_secret}"
    elif pattern != "/login":          # /login itself answers 401 to a wrong secret
        assert without[0] != 401, f"open route {method} {path} -> {without}"


def test_401_carries_www_authenticate(sc):
    req = urllib.request.Request(f"http://{sc._client.address}/api/v1/jobs")
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(req, timeout=30)
    assert caught.value.code == 401
    assert caught.value.headers["WWW-Authenticate"].startswith("Bearer")
    assert caught.value.headers["Content-Type"].startswith("application/json")


def login(address: str, secret: str) -> http.client.HTTPResponse:
    host, port = address.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    conn.request("POST", "/login", body=urllib.parse.urlencode({"secret": secret}),
                 headers={"Content-Type": "application/x-www-form-urlencoded"})
    resp = conn.getresponse()
    resp.read()
    conn.close()
    return resp


def test_ui_login_gives_a_strict_httponly_cookie_that_opens_the_api(sc):
    assert login(sc._client.address, "not-the-secret-at-all-1234").status == 401
    resp = login(sc._client.address, sc._cluster.secret)
    assert resp.status == 303 and resp.headers["Location"] == "/"
    cookie = resp.headers["Set-Cookie"]
    attributes = {a.strip().split("=")[0].lower() for a in cookie.split(";")[1:]}
    assert {"httponly", "samesite", "path"} <= attributes and "SameSite=Strict" in cookie
    session = cookie.split(";")[0]
    assert sc._cluster.secret not in session, "the cookie must not be the secret itself"
    gw = Gateway.of(sc)
    assert gw.get("/api/v1/jobs", auth=False, headers={"Cookie": session})[0] == 200
    assert gw.get("/jobs", auth=False, headers={"Cookie": session})[0] == 200
    forged = session.split("=")[0] + "=" + "0" * len(session.split("=")[1])
    assert gw.get("/api/v1/jobs", auth=False, headers={"Cookie": forged})[0] == 401


def test_the_secret_is_in_no_log_and_no_answer(sc, tmp_path):
    secret = sc._cluster.secret
    data = tmp_path / "words.txt"
    data.write_text("a b a c\n" * 100)
    assert dict(sc.textFile(str(data)).flatMap(str.split).map(lambda w: (w, 1))
                .reduceByKey(lambda a, b: a + b).collect()) == {"a": 200, "b": 100, "c": 100}
    bv = sc.broadcast({"k": 1})
    assert sc.parallelize(range(4), 2).map(lambda x: bv.value["k"] + x).sum() == 10
    gw = Gateway.of(sc)
    answers = [gw.get(p) for p in ("/", "/jobs", "/metrics", "/api/v1/environment",
                                   f"/api/v1/applications/{sc.applicationId}/environment",
                                   "/api/v1/jobs", "/api/v1/stages", "/api/v1/executors",
                                   "/api/v1/applications", "/health")]
    for status, body in answers:
        assert status == 200
        assert secret not in json.dumps(body)
    logs = list(Path(sc._cluster.log_dir).glob("*.log"))
    assert len(logs) >= 6
    for log in logs:
        assert secret not in log.read_text(errors="replace"), f"{log.name} holds the secret"
