"""ember-submit and ember-shell, and shipping the user's own code and files."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

from conftest import BIN_DIR
from ember import SparkContext
from ember.pyfiles import SparkFiles


def write_module(folder: Path) -> None:
    (folder / "helpers.py").write_text("def double(x):\n    return 2 * x\n")
    package = folder / "mypkg"
    package.mkdir()
    (package / "__init__.py").write_text("from .inner import triple\n")
    (package / "inner.py").write_text("def triple(x):\n    return 3 * x\n")


def test_add_py_file_and_package_make_user_code_importable(sc: SparkContext,
                                                          tmp_path: Path) -> None:
    write_module(tmp_path)
    with zipfile.ZipFile(tmp_path / "zipped.zip", "w") as zf:
        zf.writestr("zipmod.py", "def plus_one(x):\n    return x + 1\n")
    sc.addPyFile(str(tmp_path / "helpers.py"))
    sc.addPyFile(str(tmp_path / "mypkg"))
    sc.addPyFile(str(tmp_path / "zipped.zip"))
    sys.path.insert(0, str(tmp_path))
    try:
        import helpers
        import mypkg
        got = sc.parallelize([1, 2, 3], 3).map(helpers.double).map(mypkg.triple).collect()
        # a lambda importing from the zip inside the task
        zipped = sc.parallelize([1, 2], 2).map(lambda x: __import__("zipmod").plus_one(x))
        assert zipped.collect() == [2, 3]
    finally:
        sys.path.remove(str(tmp_path))
    assert got == [6, 12, 18]


def test_add_file_reaches_tasks(sc: SparkContext, tmp_path: Path) -> None:
    data = tmp_path / "lookup.txt"
    data.write_text("a=1\nb=2\n")
    sc.addFile(str(data))

    def lookup(key: str) -> str:
        with open(SparkFiles.get("lookup.txt")) as fh:
            return dict(line.strip().split("=") for line in fh)[key]
    assert sc.parallelize(["a", "b"], 2).map(lookup).collect() == ["1", "2"]
    assert Path(SparkFiles.get("lookup.txt")).read_text() == "a=1\nb=2\n"


def run_submit(args: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN_DIR / "ember-submit"), *args], capture_output=True, text=True,
                          timeout=120, **kw)


def test_submit_ships_py_files_names_the_app_and_returns_the_exit_code(tmp_path: Path) -> None:
    write_module(tmp_path)
    script = tmp_path / "job.py"
    script.write_text(textwrap.dedent("""
        import json, sys, urllib.request
        from pyspark import SparkContext
        import helpers
        sc = SparkContext()
        print("RESULT", sc.parallelize([1, 2, 3], 3).map(helpers.double).collect())
        print("CONF", sc.getConf().get("spark.ember.test"))
        apps = json.load(urllib.request.urlopen(urllib.request.Request(
            sc.uiWebUrl + "api/v1/applications",
            headers={"Authorization": "Bearer " + sc._cluster.secret})))
        print("NAME", [a["name"] for a in apps if a["id"] == sc.applicationId][0])
        sc.stop()
        sys.exit(7)
    """))
    done = run_submit(["--master", "local[2]", "--name", "submitted", "--conf",
                       "spark.ember.test=yes", "--py-files", str(tmp_path / "helpers.py"),
                       str(script)], cwd=str(tmp_path))
    assert done.returncode == 7, done.stderr
    assert "RESULT [2, 4, 6]" in done.stdout
    assert "CONF yes" in done.stdout
    assert "NAME submitted" in done.stdout


def test_submit_version_and_usage_errors() -> None:
    assert run_submit(["--version"]).stdout.startswith("ember-submit ")
    bad = run_submit(["--master", "local[2]", "--deploy-mode", "cluster", "x.py"])
    assert bad.returncode == 2 and "needs --master ember://" in bad.stderr
    bad = run_submit(["--deploy-mode", "sideways", "x.py"])
    assert bad.returncode == 2 and "client or cluster" in bad.stderr
    bad = run_submit(["--conf", "novalue", "x.py"])
    assert bad.returncode == 2 and "KEY=VALUE" in bad.stderr
    assert run_submit([]).returncode == 2


def test_shell_has_sc_and_reports_stdin_call_sites() -> None:
    lines = ("print('SUM', sc.parallelize(range(10), 2).sum())\n"
             "import json, urllib.request\n"
             "req = urllib.request.Request(sc.uiWebUrl + 'api/v1/jobs', headers="
             "{'Authorization': 'Bearer ' + sc._cluster.secret})\n"
             "print('DESC', json.load(urllib.request.urlopen(req))[0]['description'])\n")
    done = subprocess.run([str(BIN_DIR / "ember-shell"), "--master", "local[2]"], input=lines,
                          capture_output=True, text=True, timeout=120)
    assert "SUM 45" in done.stdout, done.stderr
    assert "DESC sum at <stdin>:" in done.stdout
