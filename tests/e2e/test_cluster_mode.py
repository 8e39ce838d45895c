"""ember-submit --deploy-mode cluster: the master runs the driver on a worker;
its output is kept and downloadable, --status and --kill follow it, a dead
worker fails it. Plus the defaults file's place in the configuration order and
secrets masked in the Environment API."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import textwrap
import zipfile
from pathlib import Path

import pytest

from conftest import (BIN_DIR, Gateway, children, export_secret, is_alive, start_sc,
                      wait_until)
from ember import SparkContext


def submit(args: list[str], timeout: float = 120, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN_DIR / "ember-submit"), *args], capture_output=True,
                          text=True, timeout=timeout, **kw)


def driver_id_of(done: subprocess.CompletedProcess) -> str:
    found = re.search(r"driver (driver-[\w-]+) submitted", done.stderr)
    assert found, done.stderr
    return found.group(1)


@pytest.fixture(scope="module")
def cluster(request: pytest.FixtureRequest) -> SparkContext:
    """A local[2] cluster whose master declares a silent worker dead quickly. While
    the module runs, EMBER_AUTH_SECRET holds its secret, so every ember-submit
    started here (and the env= copies of os.environ) carries it."""
    sc = start_sc(request, "e2e-cluster-mode", EMBER_HEARTBEAT_TIMEOUT_MS="1500")
    export_secret(request, sc)
    return sc


@pytest.fixture(scope="module")
def gw(cluster: SparkContext) -> Gateway:
    return Gateway.of(cluster)


@pytest.fixture(scope="module")
def master_url(cluster: SparkContext) -> str:
    return "ember://" + cluster._client.address


def write_user_code(folder: Path) -> dict[str, Path]:
    (folder / "helpers.py").write_text("def double(x):\n    return 2 * x\n")
    package = folder / "mypkg"
    package.mkdir()
    (package / "__init__.py").write_text("from .inner import triple\n")
    (package / "inner.py").write_text("def triple(x):\n    return 3 * x\n")
    with zipfile.ZipFile(folder / "zipped.zip", "w") as zf:
        zf.writestr("zipmod.py", "def plus_one(x):\n    return x + 1\n")
    (folder / "lookup.txt").write_text("a=1\nb=2\n")
    return {"py": folder / "helpers.py", "pkg": package, "zip": folder / "zipped.zip",
            "data": folder / "lookup.txt"}


def test_cluster_mode_runs_the_script_keeps_its_output_and_returns_its_exit_code(
        cluster: SparkContext, gw: Gateway, master_url: str, tmp_path: Path) -> None:
    code = write_user_code(tmp_path)
    script = tmp_path / "job.py"
    script.write_text(textwrap.dedent("""
        import os, sys
        from pyspark import SparkContext, SparkFiles
        import helpers, mypkg, zipmod
        sc = SparkContext()
        def lookup(key):
            with open(SparkFiles.get("lookup.txt")) as fh:
                return dict(line.strip().split("=") for line in fh)[key]
        print("RESULT", sc.parallelize([1, 2, 3], 3)
              .map(lambda x: zipmod.plus_one(mypkg.triple(helpers.double(x)))).collect())
        print("FILES", sc.parallelize(["a", "b"], 2).map(lookup).collect())
        print("ARGS", sys.argv[1:], "MODE", sc.getConf().get("spark.submit.deployMode"))
        print("NAME", sc.appName, "PID", os.getpid())
        print("an error line", file=sys.stderr)
        sc.stop()
        sys.exit(3)
    """))
    py_files = ",".join(str(code[k]) for k in ("py", "pkg", "zip"))
    done = submit(["--master", master_url, "--deploy-mode", "cluster", "--name", "clustered",
                   "--py-files", py_files, "--files", str(code["data"]), str(script),
                   "one", "two words"])
    assert done.returncode == 3, done.stderr
    assert "RESULT [7, 13, 19]" in done.stdout
    assert "FILES ['1', '2']" in done.stdout
    assert "ARGS ['one', 'two words'] MODE cluster" in done.stdout
    assert "NAME clustered" in done.stdout
    assert "an error line" in done.stderr
    driver = driver_id_of(done)
    # the driver ran on a worker, not here, and its output stays downloadable
    assert f"PID {os.getpid()}" not in done.stdout
    status, out = gw.get(f"/api/v1/drivers/{driver}/stdout")
    assert status == 200 and "RESULT [7, 13, 19]" in out
    status, err = gw.get(f"/api/v1/drivers/{driver}/stderr")
    assert status == 200 and "an error line" in err
    listed = {d["id"]: d for d in gw.api("/drivers")}
    assert listed[driver]["state"] == "FAILED" and listed[driver]["exitCode"] == 3
    assert listed[driver]["workerId"] in ("worker-0", "worker-1")
    kept = Path(cluster._cluster.run_dir) / f"{listed[driver]['workerId']}-work" / driver
    assert "RESULT [7, 13, 19]" in (kept / "stdout").read_text()


def test_cluster_mode_exit_code_zero_and_offsets(gw: Gateway, master_url: str,
                                                 tmp_path: Path) -> None:
    script = tmp_path / "ok.py"
    script.write_text("print('x' * 10)\n")
    done = submit(["--master", master_url, "--deploy-mode", "cluster", str(script)])
    assert done.returncode == 0, done.stderr
    assert done.stdout == "x" * 10 + "\n"
    driver = driver_id_of(done)
    status, tail = gw.get(f"/api/v1/drivers/{driver}/stdout?offset=7")
    assert status == 200 and tail == "xxx\n"
    assert gw.get(f"/api/v1/drivers/{driver}/stdout?offset=-1")[0] == 400
    assert gw.get(f"/api/v1/drivers/{driver}")[1]["state"] == "FINISHED"


LONG_RUNNING = """
import signal, sys, time
from pyspark import SparkContext
if "--ignore-term" in sys.argv:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
sc = SparkContext()
print("STARTED", sc.parallelize(range(4), 2).sum(), flush=True)
while True:
    time.sleep(0.2)
"""


def start_long_running(master_url: str, tmp_path: Path, *args: str) -> str:
    script = tmp_path / "forever.py"
    script.write_text(LONG_RUNNING)
    done = submit(["--master", master_url, "--deploy-mode", "cluster", "--no-wait",
                   str(script), *args])
    assert done.returncode == 0, done.stderr
    driver = done.stdout.strip()
    assert re.fullmatch(r"driver-[\w-]+", driver), done.stdout
    return driver


def driver_pid(cluster: SparkContext, driver: str) -> int:
    """The python3 process of a driver, a child of one of the cluster's workers."""
    for worker in cluster._cluster.pids("ember-worker"):
        for pid in children(worker):
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if driver.encode() in cmdline:
                return pid
    return 0


def test_status_and_kill_a_long_running_driver(cluster: SparkContext, gw: Gateway,
                                               master_url: str, tmp_path: Path) -> None:
    driver = start_long_running(master_url, tmp_path)
    assert wait_until(lambda: "STARTED 6" in gw.get(f"/api/v1/drivers/{driver}/stdout")[1], 60)
    status = submit(["--master", master_url, "--status", driver])
    assert status.returncode == 0, status.stderr
    assert re.search(r"^state\s+RUNNING$", status.stdout, re.M), status.stdout
    assert re.search(r"^exit code\s+-$", status.stdout, re.M), status.stdout
    pid = driver_pid(cluster, driver)
    assert pid

    killed = submit(["--master", master_url, "--kill", driver])
    assert killed.returncode == 0, killed.stderr
    assert wait_until(lambda: gw.api(f"/drivers/{driver}")["state"] == "KILLED", 30)
    assert wait_until(lambda: not is_alive(pid), 10)
    status = submit(["--master", master_url, "--status", driver])
    assert re.search(r"^state\s+KILLED$", status.stdout, re.M), status.stdout
    assert re.search(r"^exit code\s+143$", status.stdout, re.M), status.stdout   # SIGTERM


def test_kill_falls_back_to_sigkill(cluster: SparkContext, gw: Gateway, master_url: str,
                                    tmp_path: Path) -> None:
    driver = start_long_running(master_url, tmp_path, "--ignore-term")
    assert wait_until(lambda: "STARTED" in gw.get(f"/api/v1/drivers/{driver}/stdout")[1], 60)
    assert submit(["--master", master_url, "--kill", driver]).returncode == 0
    assert wait_until(lambda: gw.api(f"/drivers/{driver}")["state"] == "KILLED", 30)
    assert gw.api(f"/drivers/{driver}")["exitCode"] == 128 + signal.SIGKILL


CLOSES_ITS_OUTPUT = """
import os, signal, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
os.close(1)
os.close(2)
while True:
    time.sleep(0.2)
"""


def test_kill_reaches_sigkill_when_the_driver_closed_its_output(
        cluster: SparkContext, gw: Gateway, master_url: str, tmp_path: Path) -> None:
    """The worker stops reading a driver's output when its pipes close; a kill
    must still escalate to SIGKILL when the driver ignores SIGTERM."""
    script = tmp_path / "closes.py"
    script.write_text(CLOSES_ITS_OUTPUT)
    done = submit(["--master", master_url, "--deploy-mode", "cluster", "--no-wait",
                   str(script)])
    assert done.returncode == 0, done.stderr
    driver = done.stdout.strip()
    assert wait_until(lambda: driver_pid(cluster, driver) != 0, 30)
    pid = driver_pid(cluster, driver)
    assert wait_until(lambda: not os.path.exists(f"/proc/{pid}/fd/2"), 30)
    assert submit(["--master", master_url, "--kill", driver]).returncode == 0
    assert wait_until(lambda: gw.api(f"/drivers/{driver}")["state"] == "KILLED", 30)
    assert gw.api(f"/drivers/{driver}")["exitCode"] == 128 + signal.SIGKILL
    assert wait_until(lambda: not is_alive(pid), 10)


def start_long_running_and_stop_its_worker(cluster: SparkContext, gw: Gateway, master_url: str,
                                           tmp_path: Path) -> tuple[str, int, int]:
    """A long-running driver once it printed, its pid, and the pid of its worker, which is
    then stopped (SIGSTOP: a partitioned worker that will come back)."""
    driver = start_long_running(master_url, tmp_path)
    assert wait_until(lambda: "STARTED" in gw.get(f"/api/v1/drivers/{driver}/stdout")[1], 60)
    pid = driver_pid(cluster, driver)
    worker_pid = [w for w in cluster._cluster.pids("ember-worker") if pid in children(w)][0]
    os.kill(worker_pid, signal.SIGSTOP)
    return driver, pid, worker_pid


def test_a_driver_of_a_partitioned_worker_can_be_followed_and_killed_after_it_returns(
        cluster: SparkContext, gw: Gateway, master_url: str, tmp_path: Path) -> None:
    """A worker that misses heartbeats (here: stopped) is declared dead and its
    driver FAILED, but the same worker process comes back still running it: the
    driver is RUNNING again and --kill stops it."""
    driver, pid, worker_pid = start_long_running_and_stop_its_worker(cluster, gw, master_url,
                                                                     tmp_path)
    try:
        assert wait_until(lambda: gw.api(f"/drivers/{driver}")["state"] == "FAILED", 30)
        assert "no heartbeat" in gw.api(f"/drivers/{driver}")["message"]
    finally:
        os.kill(worker_pid, signal.SIGCONT)
    assert wait_until(lambda: gw.api(f"/drivers/{driver}")["state"] == "RUNNING", 30)
    assert is_alive(pid)
    assert submit(["--master", master_url, "--kill", driver]).returncode == 0
    assert wait_until(lambda: gw.api(f"/drivers/{driver}")["state"] == "KILLED", 30)
    assert gw.api(f"/drivers/{driver}")["exitCode"] == 128 + signal.SIGTERM
    assert wait_until(lambda: not is_alive(pid), 10)


def test_a_driver_killed_while_its_worker_is_partitioned_is_killed_when_it_returns(
        cluster: SparkContext, gw: Gateway, master_url: str, tmp_path: Path) -> None:
    """A kill its worker cannot hear is kept: the worker's first report after it
    comes back, whether before or after its next heartbeat, gets the kill, and the
    driver ends KILLED with the exit code of SIGTERM."""
    driver, pid, worker_pid = start_long_running_and_stop_its_worker(cluster, gw, master_url,
                                                                     tmp_path)
    try:
        assert wait_until(lambda: gw.api(f"/drivers/{driver}")["state"] == "FAILED", 30)
        assert submit(["--master", master_url, "--kill", driver]).returncode == 0
        assert is_alive(pid)
    finally:
        os.kill(worker_pid, signal.SIGCONT)
    assert wait_until(lambda: not is_alive(pid), 30)
    assert wait_until(lambda: gw.api(f"/drivers/{driver}")["exitCode"] is not None, 30)
    view = gw.api(f"/drivers/{driver}")
    assert (view["state"], view["exitCode"]) == ("KILLED", 128 + signal.SIGTERM), view


def test_status_and_kill_of_unknown_drivers_say_so(master_url: str, gw: Gateway) -> None:
    done = submit(["--master", master_url, "--status", "driver-nope"])
    assert done.returncode == 1 and "no driver 'driver-nope'" in done.stderr
    done = submit(["--master", master_url, "--kill", "driver-nope"])
    assert done.returncode == 1 and "no driver" in done.stderr
    assert gw.get("/api/v1/drivers/not-a-driver")[0] == 404
    assert submit(["--master", "local[2]", "--status", "driver-x"]).returncode == 2


def test_submit_finds_the_secret_as_a_driver_does(cluster: SparkContext, master_url: str,
                                                 tmp_path: Path) -> None:
    """Cluster mode's own requests carry the secret from EMBER_AUTH_SECRET, the file
    in EMBER_AUTH_SECRET_FILE or --conf spark.authenticate.secret; none is a 401."""
    bare = dict(os.environ)
    bare.pop("EMBER_AUTH_SECRET")
    status = ["--master", master_url, "--status", "driver-nope"]
    refused = submit(status, env=bare)
    assert refused.returncode == 1 and "shared secret" in refused.stderr
    assert "HTTP 401" in refused.stderr and cluster._cluster.secret not in refused.stderr
    (tmp_path / "secret").write_text(cluster._cluster.secret + "\n")
    from_file = submit(status, env=dict(bare, EMBER_AUTH_SECRET_FILE=str(tmp_path / "secret")))
    from_conf = submit(["--conf", f"spark.authenticate.secret={cluster._cluster.secret}",
                        *status], env=bare)
    for done in (from_file, from_conf):
        assert done.returncode == 1 and "no driver 'driver-nope'" in done.stderr, done.stderr


def test_bad_submissions_are_refused_with_a_reason(gw: Gateway) -> None:
    def post(body: dict) -> tuple[int, dict]:
        return gw.post("/api/v1/drivers", body)
    status, body = post({"mainResource": "a.py", "uploads": [{"path": "../a.py", "data": ""}]})
    assert status == 400 and "not a plain relative path" in body["error"]
    status, body = post({"mainResource": "missing.py", "uploads": []})
    assert status == 400 and "not among the uploaded files" in body["error"]
    status, body = post({"mainResource": "a.py", "uploads": [{"path": "a.py", "data": "%%"}]})
    assert status == 400 and "base64" in body["error"]


def test_a_driver_whose_worker_dies_fails_with_that_reason(cluster: SparkContext, gw: Gateway,
                                                          master_url: str,
                                                          tmp_path: Path) -> None:
    driver = start_long_running(master_url, tmp_path)
    assert wait_until(lambda: "STARTED" in gw.get(f"/api/v1/drivers/{driver}/stdout")[1], 60)
    worker_id = gw.api(f"/drivers/{driver}")["workerId"]
    pid = driver_pid(cluster, driver)
    worker_pid = [w for w in cluster._cluster.pids("ember-worker")
                  if pid in children(w)][0]
    os.kill(worker_pid, signal.SIGKILL)
    assert wait_until(lambda: gw.api(f"/drivers/{driver}")["state"] == "FAILED", 30)
    info = gw.api(f"/drivers/{driver}")
    assert f"worker {worker_id} died" in info["message"]
    assert wait_until(lambda: not is_alive(pid), 10), "the driver outlived its worker"
    assert "STARTED" in gw.get(f"/api/v1/drivers/{driver}/stdout")[1]


def test_the_ui_lists_drivers(gw: Gateway) -> None:
    status, page = gw.get("/")
    assert status == 200 and "#/drivers" in page
    drivers = gw.api("/drivers")
    assert drivers and {"id", "state", "exitCode", "workerId", "submissionTime"} <= set(drivers[0])


# ---- configuration --------------------------------------------------------------------

PRINT_CONF = """
import json, sys, urllib.request
from pyspark import SparkConf, SparkContext
sc = SparkContext(conf=SparkConf().set("spark.t.program", "program"))
print("CONF", json.dumps({k: v for k, v in sc.getConf().getAll() if k.startswith("spark.t.")}))
print("APP", sc.applicationId, sc.appName)
"""


def conf_of(done: subprocess.CompletedProcess) -> dict:
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.split("CONF ", 1)[1].splitlines()[0])


def test_configuration_precedence(tmp_path: Path, master_url: str) -> None:
    defaults = tmp_path / "my.conf"
    defaults.write_text(textwrap.dedent("""
        # every key is set here; the layers above override some
        spark.t.program   file
        spark.t.conf=file
        spark.t.env = file
        spark.t.file      from the file
    """))
    script = tmp_path / "conf.py"
    script.write_text(PRINT_CONF)
    env = dict(os.environ, EMBER_CONF_spark_t_env="env", EMBER_CONF_spark_t_conf="env",
               EMBER_CONF_spark_t_program="env")
    args = ["--properties-file", str(defaults), "--conf", "spark.t.conf=conf", "--conf",
            "spark.t.program=conf", str(script)]
    want = {"spark.t.program": "program", "spark.t.conf": "conf", "spark.t.env": "env",
            "spark.t.file": "from the file"}
    assert conf_of(submit(["--master", master_url, *args], env=env)) == want
    # cluster mode uploads the defaults file; the submitter's environment stays here
    got = conf_of(submit(["--master", master_url, "--deploy-mode", "cluster", *args], env=env))
    assert got == dict(want, **{"spark.t.env": "file"})


def test_defaults_file_from_ember_conf_dir_and_its_master(tmp_path: Path,
                                                          master_url: str) -> None:
    (tmp_path / "ember-defaults.conf").write_text(
        f"spark.master {master_url}\nspark.app.name from-defaults\nspark.t.file yes\n")
    script = tmp_path / "conf.py"
    script.write_text(PRINT_CONF)
    env = dict(os.environ, EMBER_CONF_DIR=str(tmp_path))
    env.pop("EMBER_MASTER", None)
    done = submit([str(script)], env=env)
    assert conf_of(done) == {"spark.t.program": "program", "spark.t.file": "yes"}
    assert " from-defaults" in done.stdout     # and it ran on that cluster (no local[*])
    missing = submit(["--properties-file", str(tmp_path / "nope.conf"), str(script)], env=env)
    assert missing.returncode == 2 and "cannot be read" in missing.stderr


def test_secrets_are_masked_in_the_environment_api(tmp_path: Path, master_url: str,
                                                   gw: Gateway) -> None:
    script = tmp_path / "conf.py"
    script.write_text(PRINT_CONF)
    defaults = tmp_path / "secret.conf"
    defaults.write_text("spark.t.api.token tok-3141592\n")
    done = submit(["--master", master_url, "--deploy-mode", "cluster", "--properties-file",
                   str(defaults), "--conf", "spark.t.db.password=hunter2-secret",
                   "--conf", "spark.t.plain=visible", str(script)])
    assert done.returncode == 0, done.stderr
    app = done.stdout.split("APP ", 1)[1].split()[0]
    status, raw = gw.request("GET", f"/api/v1/applications/{app}/environment")
    assert status == 200
    props = dict(raw["sparkProperties"])
    assert props["spark.t.db.password"] == "*********(redacted)"
    assert props["spark.t.api.token"] == "*********(redacted)"
    assert props["spark.t.plain"] == "visible"
    text = json.dumps(raw)
    assert "hunter2" not in text and "3141592" not in text


def test_the_driver_joins_through_the_gateway_address_not_the_submitters_master(
        cluster: SparkContext, tmp_path: Path) -> None:
    """--master names the gateway as the submitter reaches it (here `localhost`,
    elsewhere maybe its own loopback); the driver on the worker must use the
    address the worker gives it, the gateway's advertised one."""
    port = cluster._client.address.rsplit(":", 1)[1]
    script = tmp_path / "master.py"
    script.write_text("from pyspark import SparkContext\n"
                      "sc = SparkContext()\n"
                      "print('MASTER', sc.master, sc.getConf().get('spark.master'))\n")
    done = submit(["--master", f"ember://localhost:{port}", "--deploy-mode", "cluster",
                   str(script)])
    assert done.returncode == 0, done.stderr
    advertised = "ember://" + cluster._client.address
    assert f"MASTER {advertised} {advertised}" in done.stdout, done.stdout


def test_a_py_files_folder_with_a_dangling_link_is_refused_naming_it(
        master_url: str, tmp_path: Path) -> None:
    package = tmp_path / "brokenpkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "gone.py").symlink_to(tmp_path / "does-not-exist.py")
    script = tmp_path / "job.py"
    script.write_text("print('ran')\n")
    done = submit(["--master", master_url, "--deploy-mode", "cluster", "--py-files",
                   str(package), str(script)])
    assert done.returncode != 0 and "ran" not in done.stdout
    assert f"cannot read {package / 'gone.py'}" in done.stderr, done.stderr
