"""A private cluster of real Ember daemons on 127.0.0.1 for ``local[N]``.

Starts a master, a gateway and N one-core workers, each paired with its own
block manager (so a shuffle really crosses block managers). Every daemon gets
EMBER_PARENT_PID, so it dies with this process even when it is SIGKILLed, and a
shared secret (EMBER_AUTH_SECRET), so other users of the machine cannot run code
through its ports: the driver's own secret when it has one (EMBER_AUTH_SECRET or
EMBER_AUTH_SECRET_FILE: then its user can log in to the web UI), else a random one.
"""

from __future__ import annotations

import os
import queue
import secrets
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from typing import Optional

from ember.errors import ClusterStartError, GatewayError
from ember.gateway_client import GatewayClient, secret_from_environment

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
_START_TIMEOUT = 30.0
# Security settings of the driver's own environment are for a cluster it connects
# to; the daemons of a local cluster get this cluster's own.
_NOT_INHERITED = ("EMBER_AUTH_SECRET", "EMBER_AUTH_SECRET_FILE", "EMBER_TLS_CERT",
                  "EMBER_TLS_KEY", "EMBER_TLS_CA")


class _Launcher:
    """Starts the daemons from one thread that lives as long as the process.

    A daemon given EMBER_PARENT_PID asks the kernel to signal it when its
    parent goes (PR_SET_PDEATHSIG), and "parent" means the *thread* that forked
    it: a daemon started from a short-lived thread would stop with that thread.
    """

    def __init__(self) -> None:
        self._requests: "queue.Queue[tuple]" = queue.Queue()
        threading.Thread(target=self._serve, name="ember-launcher", daemon=True).start()

    def _serve(self) -> None:
        while True:
            args, kwargs, box, done = self._requests.get()
            try:
                box.append(subprocess.Popen(*args, **kwargs))
            except BaseException as err:  # noqa: BLE001 - handed to the caller
                box.append(err)
            done.set()

    def popen(self, *args, **kwargs) -> subprocess.Popen:
        box: list = []
        done = threading.Event()
        self._requests.put((args, kwargs, box, done))
        done.wait()
        if isinstance(box[0], BaseException):
            raise box[0]
        return box[0]


_launcher_lock = threading.Lock()
_launcher: "_Launcher | None" = None


def _launch(*args, **kwargs) -> subprocess.Popen:
    global _launcher
    with _launcher_lock:
        if _launcher is None:
            _launcher = _Launcher()
    return _launcher.popen(*args, **kwargs)


def find_bin_dir() -> str:
    """The folder holding ember-master and friends.

    ``EMBER_BIN_DIR`` wins; then ``build/bin`` of the checkout this package
    lives in; then ``/opt/ember/bin``.
    """
    candidates = [
        os.environ.get("EMBER_BIN_DIR", ""),
        os.path.join(_PACKAGE_DIR, "..", "..", "build", "bin"),
        "/opt/ember/bin",
    ]
    for folder in candidates:
        if folder and os.access(os.path.join(folder, "ember-master"), os.X_OK):
            return os.path.abspath(folder)
    raise ClusterStartError(
        "cannot find the Ember programs (ember-master, ...): build them with 'make' "
        "or set EMBER_BIN_DIR to the folder that holds them")


class LocalCluster:
    """Master, gateway and ``workers`` worker+blockd pairs on loopback.

    Parameters
    ----------
    workers : int
        Number of workers (each with one core and its own block manager).
    log_level : str
        Log level passed to every daemon (their logs go to ``log_dir``).
    tls : tuple of str, optional
        ``(certificate, key)`` PEM files: every daemon serves TLS with them and
        trusts the certificate (a self-signed one), the gateway speaks HTTPS.
    """

    def __init__(self, workers: int, log_level: str = "warn", cores_per_worker: int = 1,
                 tls: Optional[tuple[str, str]] = None) -> None:
        self.secret = secret_from_environment() or secrets.token_urlsafe(32)
        self.tls = tls
        self.workers = workers
        self.cores_per_worker = cores_per_worker
        self.log_level = log_level
        self.bin_dir = find_bin_dir()
        self.run_dir = tempfile.mkdtemp(prefix="ember-local-")
        self.log_dir = self.run_dir
        self.processes: list[subprocess.Popen] = []
        self.master_address = ""
        self.gateway_address = ""

    def _spawn(self, name: str, tag: str, args: list[str]) -> str:
        ready = os.path.join(self.run_dir, f"{tag}.ready")
        env = {k: v for k, v in os.environ.items() if k not in _NOT_INHERITED}
        env.update(EMBER_PARENT_PID=str(os.getpid()), EMBER_AUTH_SECRET=self.secret)
        if self.tls:
            env.update(EMBER_TLS_CERT=self.tls[0], EMBER_TLS_KEY=self.tls[1])
        log = open(os.path.join(self.log_dir, f"{tag}.log"), "ab")
        try:
            proc = _launch(
                [os.path.join(self.bin_dir, name), *args, "--ready-file", ready,
                 "--log-level", self.log_level],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env, close_fds=True)
        finally:
            log.close()
        self.processes.append(proc)
        return self._wait_ready(proc, ready, tag)

    def _wait_ready(self, proc: subprocess.Popen, ready: str, tag: str) -> str:
        deadline = time.monotonic() + _START_TIMEOUT
        while time.monotonic() < deadline:
            if os.path.exists(ready):
                with open(ready) as fh:
                    return fh.read().strip()
            if proc.poll() is not None:
                raise ClusterStartError(f"{tag} exited with code {proc.returncode} at start; "
                                        f"log: {self._tail(tag)}")
            time.sleep(0.02)
        raise ClusterStartError(f"{tag} did not become ready in {_START_TIMEOUT:.0f} s")

    def _tail(self, tag: str) -> str:
        try:
            with open(os.path.join(self.log_dir, f"{tag}.log"), errors="replace") as fh:
                return fh.read()[-2000:]
        except OSError:
            return "(no log)"

    def start(self) -> "LocalCluster":
        """Starts every daemon and waits until all workers registered."""
        try:
            self.master_address = self._spawn(
                "ember-master", "master",
                ["--listen", "127.0.0.1:0", "--journal", os.path.join(self.run_dir, "journal")])
            self.gateway_address = self._spawn(
                "ember-gateway", "gateway",
                ["--listen", "127.0.0.1:0", "--master", self.master_address])
            for i in range(self.workers):
                blockd = self._spawn("ember-blockd", f"blockd-{i}",
                                     ["--listen", "127.0.0.1:0", "--master", self.master_address,
                                      "--id", f"blockd-{i}",
                                      "--dir", os.path.join(self.run_dir, f"blockd-{i}-spill")])
                self._spawn("ember-worker", f"worker-{i}",
                            ["--listen", "127.0.0.1:0", "--master", self.master_address,
                             "--blockd", blockd, "--cores", str(self.cores_per_worker),
                             "--id", f"worker-{i}",
                             "--work-dir", os.path.join(self.run_dir, f"worker-{i}-work")])
            self._wait_registered()
        except BaseException:
            self.stop()
            raise
        return self

    def client(self) -> GatewayClient:
        """A client of this cluster's gateway that carries its secret."""
        return GatewayClient(self.gateway_address, self.secret,
                             self.tls[0] if self.tls else None)

    def _wait_registered(self) -> None:
        client = self.client()
        deadline = time.monotonic() + _START_TIMEOUT
        while time.monotonic() < deadline:
            try:
                executors = client.request("GET", "/executors", retry=False)
                alive = [e for e in executors if e.get("state") == "alive"]
                if len(alive) >= self.workers:
                    return
            except GatewayError:
                pass
            time.sleep(0.05)
        raise ClusterStartError(f"workers did not register in {_START_TIMEOUT:.0f} s")

    def stop(self) -> None:
        """Stops every daemon (SIGTERM, then SIGKILL after 10 s)."""
        for proc in reversed(self.processes):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 10
        for proc in reversed(self.processes):
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.processes.clear()
        if not os.environ.get("EMBER_KEEP_LOGS"):
            shutil.rmtree(self.run_dir, ignore_errors=True)

    def pids(self, name: Optional[str] = None) -> list[int]:
        """Process ids of the running daemons (for tests)."""
        return [p.pid for p in self.processes if p.poll() is None
                and (name is None or os.path.basename(p.args[0]) == name)]
