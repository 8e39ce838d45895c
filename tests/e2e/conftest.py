"""Shared fixtures of Ember's end-to-end tests.

Every test module gets its own private ``local[2]`` cluster of the real daemons
(master, gateway, two one-core workers each with its own block manager), built
in ``build/bin`` of this checkout (``EMBER_BIN_DIR`` overrides). The client is
imported from ``python-client/`` of this checkout.

Run with Debian's interpreter: ``/usr/bin/python3 -m pytest -q tests/e2e``.
Set ``EMBER_KEEP_LOGS=1`` to keep the daemons' logs (their folder is printed
when a module's cluster stops).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Iterable, Optional

import pytest

REPO = Path(__file__).resolve().parents[2]
CLIENT_DIR = REPO / "python-client"
if str(CLIENT_DIR) not in sys.path:
    sys.path.insert(0, str(CLIENT_DIR))

BIN_DIR = Path(os.environ.get("EMBER_BIN_DIR") or REPO / "build" / "bin").resolve()
os.environ["EMBER_BIN_DIR"] = str(BIN_DIR)
DAEMONS = ("ember-master", "ember-gateway", "ember-worker", "ember-blockd", "ember-pyexec")

from ember import SparkContext  # noqa: E402  (needs the sys.path above)


def pytest_configure(config: pytest.Config) -> None:
    missing = [d for d in DAEMONS if not os.access(BIN_DIR / d, os.X_OK)]
    if missing:
        raise pytest.UsageError(
            f"the Ember programs {', '.join(missing)} are missing from {BIN_DIR}: build them "
            "('cd build && cmake .. && make') or set EMBER_BIN_DIR")


# ---- processes ------------------------------------------------------------------

def _read(path: str) -> Optional[bytes]:
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError:
        return None


def proc_stat(pid: int) -> Optional[tuple[str, str, int]]:
    """(comm, state, ppid) of a process, or None when it is gone."""
    raw = _read(f"/proc/{pid}/stat")
    if raw is None:
        return None
    text = raw.decode("utf-8", "replace")
    comm = text[text.index("(") + 1:text.rindex(")")]
    fields = text[text.rindex(")") + 2:].split()
    return comm, fields[0], int(fields[1])


def is_alive(pid: int) -> bool:
    """True while pid runs (a zombie counts as gone)."""
    stat = proc_stat(pid)
    return stat is not None and stat[1] not in ("Z", "X")


def children(pid: int, comm: Optional[str] = None) -> list[int]:
    """Live child processes of pid (optionally only those whose comm is ``comm``)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        stat = proc_stat(int(entry))
        if stat and stat[2] == pid and stat[1] not in ("Z", "X") \
                and (comm is None or stat[0] == comm[:15]):
            found.append(int(entry))
    return sorted(found)


def pyexec_pids(sc: SparkContext) -> dict[int, list[int]]:
    """{worker pid: [its ember-pyexec pids]} for the context's local cluster."""
    return {w: children(w, "ember-pyexec") for w in sc._cluster.pids("ember-worker")}


def run_pyexec_alone(**env: str) -> subprocess.CompletedProcess:
    """ember-pyexec started on its own (no worker, stdin empty) with env added to
    ours: how its start-up refuses a malformed setting."""
    full = dict(os.environ, **env)
    full.pop("EMBER_PARENT_PID", None)
    return subprocess.run([str(BIN_DIR / "ember-pyexec")], env=full,
                          stdin=subprocess.DEVNULL, capture_output=True, timeout=30)


def our_daemons() -> list[tuple[int, str]]:
    """Ember processes started on behalf of this test process (any depth)."""
    mine = f"EMBER_PARENT_PID={os.getpid()}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        stat = proc_stat(int(entry))
        if not stat or stat[1] in ("Z", "X") or not stat[0].startswith("ember-"):
            continue
        env = _read(f"/proc/{entry}/environ") or b""
        if mine in env.split(b"\0"):
            found.append((int(entry), stat[0]))
    return found


def wait_until(predicate: Callable[[], Any], timeout: float, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


@pytest.fixture(scope="session", autouse=True)
def no_leftover_daemons():
    """After the whole run no daemon started by these tests may still run."""
    yield
    if wait_until(lambda: not our_daemons(), timeout=15):
        return
    left = our_daemons()
    if left:
        for pid, _ in left:   # clean up, then fail loudly
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        pytest.fail(f"daemons left running after the tests: {left}")


# ---- the SparkContext -------------------------------------------------------------

def _stop_and_check(sc: SparkContext) -> None:
    cluster = sc._cluster
    pids = list(cluster.pids()) if cluster else []
    if cluster:
        for w in cluster.pids("ember-worker"):
            pids += children(w)
    log_dir = cluster.log_dir if cluster else None
    sc.stop()
    if log_dir and os.environ.get("EMBER_KEEP_LOGS"):
        sys.stderr.write(f"\n[ember e2e] daemon logs kept in {log_dir}\n")
    left = [p for p in pids if wait_until(lambda p=p: not is_alive(p), 10) is False]
    assert not left, f"processes still running after sc.stop(): {left}"


def export_secret(request: pytest.FixtureRequest, sc: SparkContext) -> None:
    """Puts sc's cluster secret in EMBER_AUTH_SECRET until request ends, so every
    ember-submit started meanwhile (and the env= copies of os.environ) carries it."""
    saved = os.environ.get("EMBER_AUTH_SECRET")
    os.environ["EMBER_AUTH_SECRET"] = sc._cluster.secret

    def restore() -> None:
        if saved is None:
            os.environ.pop("EMBER_AUTH_SECRET", None)
        else:
            os.environ["EMBER_AUTH_SECRET"] = saved
    request.addfinalizer(restore)


def start_sc(request: pytest.FixtureRequest, name: str, **daemon_env: str) -> SparkContext:
    """A SparkContext on a private local[2] cluster whose daemons see daemon_env
    (e.g. EMBER_HEARTBEAT_TIMEOUT_MS), stopped and checked when request ends."""
    saved = {key: os.environ.get(key) for key in daemon_env}
    os.environ.update(daemon_env)      # the daemons inherit the driver's environment
    try:
        context = SparkContext("local[2]", name)
    finally:
        for key, value in saved.items():
            if value is None:
                del os.environ[key]
            else:
                os.environ[key] = value
    request.addfinalizer(lambda: _stop_and_check(context))
    return context


@pytest.fixture(scope="module")
def sc(request: pytest.FixtureRequest):
    """A SparkContext on a private local[2] cluster, stopped after the module."""
    yield start_sc(request, f"e2e-{request.module.__name__}")


# ---- raw HTTP against the gateway ---------------------------------------------------

class Gateway:
    """Raw HTTP calls to the gateway: ``gateway.get("/api/v1/jobs")`` -> (status, body).

    The body is the parsed JSON when the response is JSON (or parses as JSON),
    else the text. Requests carry the cluster's shared secret unless ``auth=False``.
    """

    def __init__(self, address: str, secret: Optional[str] = None) -> None:
        self.address = address
        self.secret = secret
        self.base = f"http://{address}"

    @classmethod
    def of(cls, sc: SparkContext) -> "Gateway":
        """The gateway of sc's local cluster, with that cluster's secret."""
        return cls(sc._client.address, sc._cluster.secret)

    def request(self, method: str, path: str, body: Any = None, data: Optional[bytes] = None,
                headers: Optional[dict] = None, timeout: float = 60,
                auth: bool = True) -> tuple[int, Any]:
        if body is not None:
            data = json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method)
        if auth and self.secret:
            req.add_header("Authorization", f"Bearer {self.secret}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        for key, value in (headers or {}).items():
            req.add_header(key, value)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                status, raw, ctype = resp.status, resp.read(), resp.headers.get("Content-Type", "")
        except urllib.error.HTTPError as err:
            status, raw, ctype = err.code, err.read(), err.headers.get("Content-Type", "")
        text = raw.decode("utf-8", "replace")
        if "json" in ctype or text[:1] in ("{", "["):
            try:
                return status, json.loads(text)
            except ValueError:
                pass
        return status, text

    def get(self, path: str, **kw: Any) -> tuple[int, Any]:
        return self.request("GET", path, **kw)

    def post(self, path: str, body: Any = None, **kw: Any) -> tuple[int, Any]:
        return self.request("POST", path, body=body, **kw)

    def api(self, path: str) -> Any:
        """GET /api/v1{path}; asserts 200 and returns the JSON."""
        status, body = self.get("/api/v1" + path)
        assert status == 200, f"GET /api/v1{path} -> {status}: {body}"
        return body


@pytest.fixture(scope="module")
def gateway(sc: SparkContext) -> Gateway:
    return Gateway.of(sc)


def authorized(url: str, sc: SparkContext) -> urllib.request.Request:
    """A GET of url carrying the local cluster's shared secret."""
    return urllib.request.Request(url, headers={"Authorization": f"Bearer {sc._cluster.secret}"})


def job_stages(gw: Gateway, app: str, job_id: int) -> list[dict]:
    return [s for s in gw.api(f"/applications/{app}/stages") if job_id in s.get("jobIds", [])]


def last_job(gw: Gateway, app: str) -> dict:
    jobs = gw.api(f"/applications/{app}/jobs")
    assert jobs, "the application has no jobs"
    return max(jobs, key=lambda j: j["jobId"])


# ---- a deterministic text corpus --------------------------------------------------------

_LETTERS = "abcdefghijklmnopqrstuvwxyz"
_ACCENTED = "éèàüöñçå"


def make_vocabulary(rng: random.Random, size: int = 4000) -> list[str]:
    """``size`` distinct lowercase words; about 2% hold a non-ASCII letter."""
    words: list[str] = []
    seen: set[str] = set()
    while len(words) < size:
        n = rng.choice((1, 2, 2, 3, 3, 3, 4, 4, 4, 5, 5, 6, 6, 7, 8, 9, 10, 12))
        w = "".join(rng.choice(_LETTERS) for _ in range(n))
        if rng.random() < 0.02:
            i = rng.randrange(len(w) + 1)
            w = w[:i] + rng.choice(_ACCENTED) + w[i:]
        if w not in seen:
            seen.add(w)
            words.append(w)
    return words


class Corpus:
    """Lines of 5-15 words drawn from a Zipf-like distribution (weight 1/rank^1.1)."""

    def __init__(self, seed: int, vocabulary_size: int = 4000) -> None:
        self.rng = random.Random(seed)
        self.words = make_vocabulary(self.rng, vocabulary_size)
        cum, total = [], 0.0
        for rank in range(1, len(self.words) + 1):
            total += 1.0 / rank ** 1.1
            cum.append(total)
        self.cum_weights = cum

    def lines(self, approx_bytes: int) -> Iterable[str]:
        """Yields lines (without newline) until about approx_bytes were produced."""
        rng, produced = self.rng, 0
        while produced < approx_bytes:
            lengths = [rng.randint(5, 15) for _ in range(2000)]
            pool = rng.choices(self.words, cum_weights=self.cum_weights, k=sum(lengths))
            pos = 0
            for n in lengths:
                line = " ".join(pool[pos:pos + n])
                pos += n
                produced += len(line) + 1
                yield line
                if produced >= approx_bytes:
                    return

    def write_file(self, path: Path, approx_bytes: int, trailing_newline: bool = True) -> int:
        """Writes one file in large chunks; returns its size in bytes."""
        with open(path, "w", encoding="utf-8", newline="\n") as fh:
            chunk: list[str] = []
            first = True
            for line in self.lines(approx_bytes):
                chunk.append(line)
                if len(chunk) >= 20000:
                    fh.write(("" if first else "\n") + "\n".join(chunk))
                    first, chunk = False, []
            if chunk:
                fh.write(("" if first else "\n") + "\n".join(chunk))
            if trailing_newline:
                fh.write("\n")
        return path.stat().st_size


def generate_corpus(folder: Path, total_bytes: int, files: int, seed: int = 1234) -> list[Path]:
    """Writes ``files`` files of about total_bytes/files bytes each, deterministically.

    The last file has no final newline (a real-world case the reader must handle).
    """
    folder.mkdir(parents=True, exist_ok=True)
    corpus = Corpus(seed)
    paths = []
    for i in range(files):
        path = folder / f"corpus-{i:02d}.txt"
        corpus.write_file(path, total_bytes // files, trailing_newline=(i != files - 1))
        paths.append(path)
    return paths


def count_words(paths: Iterable[Path]) -> Counter[str]:
    """The reference answer: collections.Counter of whitespace-separated words."""
    counts: Counter[str] = Counter()
    for path in paths:
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                counts.update(line.split())
    return counts


@pytest.fixture(scope="session")
def small_corpus(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """About 400 KB in 3 files, for tests that need a quick word count."""
    return generate_corpus(tmp_path_factory.mktemp("small-corpus"), 400_000, 3, seed=7)
