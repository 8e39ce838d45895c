"""Shipping the user's code and data files to the workers' Python processes:
``sc.addPyFile`` (a .py, a .zip/.egg, or a package folder) and ``sc.addFile``
with ``SparkFiles.get``. Each file travels once as a broadcast; a Python
subprocess writes it into its own folder the first time a task needs it."""

from __future__ import annotations

import importlib
import io
import json
import os
import shutil
import sys
import tempfile
import zipfile
from typing import TYPE_CHECKING, Optional

from ember import broadcast

if TYPE_CHECKING:
    from ember.context import SparkContext

PY_FILES_PROPERTY = "spark.ember.pyFiles"
FILES_PROPERTY = "spark.ember.files"


def _package_zip(folder: str) -> bytes:
    """A package folder as a zip whose top level is the package."""
    buffer = io.BytesIO()
    parent = os.path.dirname(os.path.abspath(folder))
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for root, dirs, names in os.walk(folder):
            dirs[:] = [d for d in dirs if d != "__pycache__"]
            for name in names:
                if not name.endswith((".pyc", ".pyo")):
                    path = os.path.join(root, name)
                    zf.write(path, os.path.relpath(path, parent))
    return buffer.getvalue()


def ship(sc: "SparkContext", path: str, as_code: bool) -> dict:
    """Uploads a file (or a package folder, zipped) as a broadcast; returns its entry."""
    path = os.path.abspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path} does not exist")
    if os.path.isdir(path):
        if not as_code:
            raise IsADirectoryError(f"addFile takes files, and {path} is a folder")
        data, name = _package_zip(path), os.path.basename(path) + ".zip"
    else:
        with open(path, "rb") as fh:
            data = fh.read()
        name = os.path.basename(path)
    if as_code and not name.endswith((".py", ".zip", ".egg")):
        raise ValueError(f"addPyFile takes .py, .zip or .egg files or a package folder: {path}")
    holder = broadcast.Broadcast(sc, None, pickled=data)
    return {"id": holder.bid, "name": name}


# ---- inside the Python subprocesses ----------------------------------------------

_installed: dict[str, int] = {}     # file name -> broadcast id written
_root: Optional[str] = None


def _folder(kind: str) -> str:
    global _root
    if _root is None:
        _root = tempfile.mkdtemp(prefix="ember-userfiles-")
    folder = os.path.join(_root, kind)
    os.makedirs(folder, exist_ok=True)
    return folder


def install(properties: dict) -> None:
    """Writes the job's code and data files not written yet; puts code on sys.path."""
    wrote = False
    for prop, kind in ((PY_FILES_PROPERTY, "python"), (FILES_PROPERTY, "files")):
        text = properties.get(prop)
        if not text:               # most jobs ship no files: no JSON to parse per task
            continue
        entries = json.loads(text)
        for entry in entries:
            key = f"{kind}/{entry['name']}"
            if _installed.get(key) == entry["id"]:
                continue
            data = broadcast._worker_bytes.get(entry["id"])
            if data is None:
                raise RuntimeError(f"{entry['name']} was not shipped with this task")
            target = os.path.join(_folder(kind), entry["name"])
            with open(target + ".tmp", "wb") as fh:
                fh.write(data)
            os.replace(target + ".tmp", target)
            _installed[key] = entry["id"]
            wrote = True
            if kind == "python":
                entry_path = target if target.endswith((".zip", ".egg")) else _folder(kind)
                if entry_path not in sys.path:
                    sys.path.insert(0, entry_path)
    # Only after writing: the import system's directory caches are otherwise
    # still right, and clearing them for every task cost ~5% of a tiny task's Python.
    if wrote:
        importlib.invalidate_caches()


class SparkFiles:
    """Where files added with ``sc.addFile`` are, on the driver and in tasks."""

    _driver_root: Optional[str] = None

    @classmethod
    def getRootDirectory(cls) -> str:
        if cls._driver_root is not None:
            return cls._driver_root
        return _folder("files")

    @classmethod
    def get(cls, filename: str) -> str:
        return os.path.join(cls.getRootDirectory(), filename)

    @classmethod
    def _add_on_driver(cls, path: str) -> None:
        if cls._driver_root is None:
            cls._driver_root = tempfile.mkdtemp(prefix="ember-driverfiles-")
        shutil.copyfile(path, os.path.join(cls._driver_root, os.path.basename(path)))
