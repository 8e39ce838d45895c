"""SparkContext: the entry point of an Ember program, as in PySpark."""

from __future__ import annotations

import atexit
import glob
import os
import re
import threading
from typing import Any, Iterable, Optional

from ember import files
from ember.conf import SparkConf
from ember.errors import EmberError
from ember.gateway_client import GatewayClient
from ember.jobs import JobRunner
from ember.local_cluster import LocalCluster

__version__ = "0.1.0"

_LOCAL_RE = re.compile(r"^local(?:\[(\*|\d+)\])?$")


class SparkContext:
    """Connection to an Ember cluster; creates RDDs and runs jobs.

    Parameters
    ----------
    master : str, optional
        ``ember://HOST:PORT`` (a running cluster's gateway) or ``local[N]`` /
        ``local[*]`` (a private cluster of real daemons for this program).
        Default: the ``EMBER_MASTER`` environment variable, else ``local[*]``.
    appName : str, optional
        Name shown in the web UI.
    conf : SparkConf, optional

    Examples
    --------
    >>> with SparkContext("local[2]", "demo") as sc:  # doctest: +SKIP
    ...     sc.parallelize(range(10)).sum()
    45
    """

    _active: Optional["SparkContext"] = None
    _lock = threading.Lock()

    def __init__(self, master: Optional[str] = None, appName: Optional[str] = None,
                 sparkHome: Optional[str] = None, pyFiles: Any = None, environment: Any = None,
                 batchSize: int = 0, serializer: Any = None, conf: Optional[SparkConf] = None,
                 gateway: Any = None, jsc: Any = None, profiler_cls: Any = None) -> None:
        self._conf = conf or SparkConf()
        self.master = (master or self._conf.get("spark.master")
                       or os.environ.get("EMBER_MASTER") or "local[*]")
        self.appName = appName or self._conf.get("spark.app.name") or "ember-app"
        self._conf.set("spark.master", self.master).set("spark.app.name", self.appName)
        self._cluster: Optional[LocalCluster] = None
        self._local_properties: dict[str, str] = {}
        self._next_rdd_id = 0
        self._stopped = False
        self._checkpoint_dir: Optional[str] = None
        with SparkContext._lock:
            if SparkContext._active is not None:
                raise EmberError("only one SparkContext may run in a process; call stop() on "
                                 "the existing one first")
            gateway_address = self._connect()
            try:
                self._client = GatewayClient(gateway_address)
                app = self._client.request(
                    "POST", "/applications",
                    {"name": self.appName, "user": os.environ.get("USER", "")}, retry=True)
            except BaseException:
                if self._cluster is not None:
                    self._cluster.stop()
                raise
            self.applicationId: str = app["id"]
            self._jobs = JobRunner(self)
            SparkContext._active = self
        atexit.register(self.stop)

    def _connect(self) -> str:
        local = _LOCAL_RE.match(self.master)
        if local:
            count = local.group(1)
            workers = os.cpu_count() or 1 if count in (None, "*") else int(count)
            workers = max(1, workers) if count != "*" else max(2, workers)
            self._cluster = LocalCluster(workers, self._conf.get("spark.ember.logLevel", "warn"))
            self._cluster.start()
            self._default_parallelism = workers
            return self._cluster.gateway_address
        if self.master.startswith("ember://"):
            self._default_parallelism = int(self._conf.get("spark.default.parallelism", "2"))
            return self.master[len("ember://"):].rstrip("/")
        raise EmberError(f"master URL '{self.master}' is not understood: use ember://HOST:PORT, "
                         "local, local[N] or local[*]")

    # ---- context manager and lifecycle -------------------------------------
    def __enter__(self) -> "SparkContext":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @classmethod
    def getOrCreate(cls, conf: Optional[SparkConf] = None) -> "SparkContext":
        with cls._lock:
            active = cls._active
        return active if active is not None else cls(conf=conf)

    def stop(self) -> None:
        """Ends the application and stops a private local cluster."""
        if self._stopped:
            return
        self._stopped = True
        try:
            self._client.request("DELETE", f"/applications/{self.applicationId}", retry=False)
        except EmberError:
            pass
        finally:
            if self._cluster is not None:
                self._cluster.stop()
            with SparkContext._lock:
                if SparkContext._active is self:
                    SparkContext._active = None

    # ---- properties ----------------------------------------------------------
    @property
    def version(self) -> str:
        return __version__

    @property
    def uiWebUrl(self) -> str:
        return f"http://{self._client.address}/"

    @property
    def defaultParallelism(self) -> int:
        value = self._conf.get("spark.default.parallelism")
        return int(value) if value else self._default_parallelism

    @property
    def defaultMinPartitions(self) -> int:
        return min(self.defaultParallelism, 2)

    def getConf(self) -> SparkConf:
        return self._conf

    def setLogLevel(self, logLevel: str) -> None:
        self._conf.set("spark.ember.logLevel", logLevel.lower())

    def setLocalProperty(self, key: str, value: Optional[str]) -> None:
        if value is None:
            self._local_properties.pop(key, None)
        else:
            self._local_properties[key] = str(value)

    def getLocalProperty(self, key: str) -> Optional[str]:
        return self._local_properties.get(key)

    def setJobDescription(self, value: str) -> None:
        self.setLocalProperty("spark.job.description", value)

    def setJobGroup(self, groupId: str, description: str, interruptOnCancel: bool = False) -> None:
        self.setLocalProperty("spark.jobGroup.id", groupId)
        self.setLocalProperty("spark.job.description", description)

    def setCheckpointDir(self, dirName: str) -> None:
        """Where checkpoint() writes RDDs: a folder every worker can read and write."""
        from ember.checkpoint import new_directory
        self._checkpoint_dir = new_directory(dirName)

    def getCheckpointDir(self) -> Optional[str]:
        return self._checkpoint_dir

    def _new_rdd_id(self) -> int:
        self._next_rdd_id += 1
        return self._next_rdd_id

    def _check_running(self) -> None:
        if self._stopped:
            raise EmberError("this SparkContext was stopped; create a new one")

    # ---- shared variables ----------------------------------------------------
    def accumulator(self, value: Any, accum_param: Any = None) -> "Accumulator":
        """A variable tasks add to; its ``value`` is read on the driver.

        Each successful task's updates count once, even when tasks are retried.
        """
        from ember.accumulators import new_accumulator
        return new_accumulator(value, accum_param)

    def broadcast(self, value: Any) -> "Broadcast":
        """Stores value in the cluster once; tasks read it with ``.value``."""
        from ember.broadcast import Broadcast
        self._check_running()
        return Broadcast(self, value)

    # ---- creating RDDs -------------------------------------------------------
    def parallelize(self, c: Iterable[Any], numSlices: Optional[int] = None) -> "RDD":
        """Distributes a local collection, sliced as PySpark slices it.

        Examples
        --------
        >>> sc.parallelize([1, 2, 3, 4], 2).glom().collect()  # doctest: +SKIP
        [[1, 2], [3, 4]]
        """
        from ember.rdd import DataRDD
        self._check_running()
        items = list(c)
        slices = numSlices if numSlices is not None else self.defaultParallelism
        if slices < 1:
            raise ValueError(f"numSlices must be at least 1, got {slices}")
        n = len(items)
        parts = [items[(i * n) // slices:((i + 1) * n) // slices] for i in range(slices)]
        return DataRDD(self, parts)

    def range(self, start: int, end: Optional[int] = None, step: int = 1,
              numSlices: Optional[int] = None) -> "RDD":
        if end is None:
            start, end = 0, start
        return self.parallelize(range(start, end, step), numSlices)

    def textFile(self, name: str, minPartitions: Optional[int] = None,
                 use_unicode: bool = True) -> "RDD":
        """Lines of text files: a file, a directory, a glob, or a comma-separated list."""
        from ember.rdd import TextFileRDD
        self._check_running()
        min_parts = minPartitions if minPartitions is not None else self.defaultMinPartitions
        splits = files.text_splits(name, max(1, min_parts))
        rdd = TextFileRDD(self, splits)
        rdd.setName(name)
        return rdd

    def _checkpointFile(self, name: str) -> "RDD":
        """An RDD read back from a checkpoint folder (``rdd.getCheckpointFile()``),
        for example in a new context after a restart."""
        from ember.rdd import FramesFileRDD
        self._check_running()
        parts = sorted(p for p in os.listdir(name) if p.startswith("part-"))
        if not parts:
            raise EmberError(f"{name} holds no checkpoint part files")
        return FramesFileRDD(self, [os.path.join(os.path.abspath(name), p) for p in parts])

    def emptyRDD(self) -> "RDD":
        from ember.rdd import DataRDD
        return DataRDD(self, [])

    def union(self, rdds: list["RDD"]) -> "RDD":
        from ember.rdd import union_of
        return union_of(self, list(rdds))
