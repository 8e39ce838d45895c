"""SparkContext: the entry point of an Ember program, as in PySpark."""

from __future__ import annotations

import atexit
import getpass
import itertools
import logging
import math
import os
import re
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, Iterable, Optional

from ember import files, lineage, readers
from ember.conf import (SparkConf, defaults_file_path, environment_settings,
                        read_defaults_file, redacted)
from ember.errors import EmberError
from ember.gateway_client import GatewayClient, ca_from_environment, secret_from_environment
from ember.jobs import JobRunner
from ember.local_cluster import LocalCluster

if TYPE_CHECKING:
    from ember.accumulators import Accumulator
    from ember.broadcast import Broadcast
    from ember.rdd import RDD
    from ember.status import StatusTracker

__version__ = "0.1.0"
SPARK_API_VERSION = "3.5.0"
"""The PySpark version whose RDD API Ember implements (``SparkContext.version``)."""

_LOCAL_RE = re.compile(r"^local(?:\[(\*|\d+)\])?$")
_LOG_LEVELS = ("ALL", "DEBUG", "ERROR", "FATAL", "INFO", "OFF", "TRACE", "WARN")
_PY_LOG_LEVELS = {"ALL": logging.NOTSET, "TRACE": logging.DEBUG, "DEBUG": logging.DEBUG,
                  "INFO": logging.INFO, "WARN": logging.WARNING, "ERROR": logging.ERROR,
                  "FATAL": logging.CRITICAL, "OFF": logging.CRITICAL + 10}
_BATCH_CAP = 1024   # PySpark's default batch size when slicing a local collection


class SparkContext:
    """Connection to an Ember cluster; creates RDDs and runs jobs.

    Parameters
    ----------
    master : str, optional
        ``ember://HOST:PORT`` (a running cluster's gateway) or ``local``,
        ``local[N]``, ``local[*]`` (a private cluster of real daemons for this
        program, N one-core workers). Default: the ``EMBER_MASTER`` environment
        variable, else ``local[*]``.
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
    _active_spark_context: Optional["SparkContext"] = None
    _lock = threading.Lock()

    def __init__(self, master: Optional[str] = None, appName: Optional[str] = None,
                 sparkHome: Optional[str] = None, pyFiles: Any = None, environment: Any = None,
                 batchSize: int = 0, serializer: Any = None, conf: Optional[SparkConf] = None,
                 gateway: Any = None, jsc: Any = None, profiler_cls: Any = None) -> None:
        self._conf = conf or SparkConf()
        _apply_submit_environment(self._conf)
        self.master = master or self._conf.get("spark.master") or "local[*]"
        self.appName = appName or self._conf.get("spark.app.name") or "ember-app"
        self._conf.set("spark.master", self.master).set("spark.app.name", self.appName)
        self._cluster: Optional[LocalCluster] = None
        self._thread_properties = threading.local()
        self._main_properties: dict[str, str] = {}
        self._thread_properties.values = self._main_properties
        self._rdd_ids = itertools.count(1)
        self._stopped = False
        self._checkpoint_dir: Optional[str] = None
        # Set for good by the first RDD.checkpoint(): until then no job has
        # checkpoint files to write after it, and none walks its lineage for them.
        self._checkpoint_requested = False
        self.startTime = int(time.time() * 1000)
        with SparkContext._lock:
            if SparkContext._active is not None:
                raise EmberError("only one SparkContext may run in a process; call stop() on "
                                 "the existing one first")
            self._client = self._connect()
            try:
                app = self._client.request(
                    "POST", "/applications",
                    {"name": self.appName, "user": self.sparkUser(),
                     "properties": redacted(self._conf.getAll())}, retry=True)
            except BaseException:
                if self._cluster is not None:
                    self._cluster.stop()
                raise
            self.applicationId: str = app["id"]
            self._broadcasts: dict[int, Any] = {}     # live Broadcast objects by id
            self._jobs = JobRunner(self)
            self._py_files: list[dict] = []
            self._files: list[dict] = []
            SparkContext._active = SparkContext._active_spark_context = self
        atexit.register(self.stop)
        shipped = list(pyFiles or []) + [
            p for p in os.environ.get("EMBER_PY_FILES", "").split(",") if p]
        for path in shipped:
            self.addPyFile(path)
        for path in (p for p in os.environ.get("EMBER_FILES", "").split(",") if p):
            self.addFile(path)

    def _connect(self) -> GatewayClient:
        local = _LOCAL_RE.match(self.master)
        if local:
            count = local.group(1)
            if count is None:
                workers = 1
            elif count == "*":
                workers = max(2, os.cpu_count() or 1)
            else:
                workers = max(1, int(count))
            self._cluster = LocalCluster(workers, self._conf.get("spark.ember.logLevel", "warn"))
            self._cluster.start()
            self._default_parallelism = workers
            return self._cluster.client()
        if self.master.startswith("ember://"):
            self._default_parallelism = int(self._conf.get("spark.default.parallelism", "2"))
            return GatewayClient(self.master[len("ember://"):].rstrip("/"),
                                 secret_from_environment(self._conf),
                                 ca_from_environment(self._conf))
        raise EmberError(f"master URL '{self.master}' is not understood: use ember://HOST:PORT, "
                         "local, local[N] or local[*]")

    def __getnewargs__(self) -> Any:
        raise EmberError("It appears that you are attempting to reference SparkContext from a "
                         "broadcast variable, action, or transformation. SparkContext can only "
                         "be used on the driver, not in code that it run on workers.")

    def __repr__(self) -> str:
        return f"<SparkContext master={self.master} appName={self.appName}>"

    # ---- context manager and lifecycle -------------------------------------
    def __enter__(self) -> "SparkContext":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @classmethod
    def getOrCreate(cls, conf: Optional[SparkConf] = None) -> "SparkContext":
        """The running SparkContext, or a new one built from conf.

        Examples
        --------
        >>> SparkContext.getOrCreate() is sc  # doctest: +SKIP
        True
        """
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
                    SparkContext._active = SparkContext._active_spark_context = None

    def _check_running(self) -> None:
        if self._stopped:
            raise EmberError("this SparkContext was stopped; create a new one")

    def _new_rdd_id(self) -> int:
        return next(self._rdd_ids)

    # ---- properties ----------------------------------------------------------
    @property
    def version(self) -> str:
        """The PySpark version whose API Ember implements (``ember.__version__`` is Ember's).

        Examples
        --------
        >>> sc.version  # doctest: +SKIP
        '3.5.0'
        """
        return SPARK_API_VERSION

    @property
    def uiWebUrl(self) -> str:
        """Address of the web UI (the gateway)."""
        return f"{self._client.scheme}://{self._client.address}/"

    @property
    def defaultParallelism(self) -> int:
        """spark.default.parallelism, else the number of worker cores (2 for ember://)."""
        value = self._conf.get("spark.default.parallelism")
        return int(value) if value else self._default_parallelism

    @property
    def defaultMinPartitions(self) -> int:
        """``min(defaultParallelism, 2)``: the default minPartitions of textFile."""
        return min(self.defaultParallelism, 2)

    def sparkUser(self) -> str:
        """The user running the application (``SPARK_USER``, else the login name)."""
        try:
            return os.environ.get("SPARK_USER") or getpass.getuser()
        except (KeyError, OSError):
            return ""

    def getConf(self) -> SparkConf:
        """A copy of the configuration."""
        return SparkConf().setAll(self._conf.getAll())

    def setLogLevel(self, logLevel: str) -> None:
        """Sets the driver's log level (one of ALL, DEBUG, ERROR, FATAL, INFO, OFF, TRACE, WARN).

        The daemons of a local cluster keep the level they were started with.

        Examples
        --------
        >>> sc.setLogLevel("WARN")  # doctest: +SKIP
        """
        level = str(logLevel).upper()
        if level not in _LOG_LEVELS:
            raise ValueError(f"Supplied level {logLevel} did not match one of: "
                             f"{','.join(_LOG_LEVELS)}")
        logging.getLogger("ember").setLevel(_PY_LOG_LEVELS[level])
        self._conf.set("spark.ember.logLevel", level.lower())

    # ---- local properties, job groups, cancelling -------------------------------------
    @property
    def _local_properties(self) -> dict[str, str]:
        """This thread's local properties (PySpark's pinned-thread behaviour: a new
        thread starts with none unless it is an InheritableThread)."""
        values = getattr(self._thread_properties, "values", None)
        if values is None:
            values = self._thread_properties.values = {}
        return values

    def setLocalProperty(self, key: str, value: Optional[str]) -> None:
        """Sets a property of the jobs this thread submits (None removes it).

        Tasks read them with ``TaskContext.get().getLocalProperty(key)``.
        """
        if value is None:
            self._local_properties.pop(key, None)
        else:
            self._local_properties[key] = str(value)

    def getLocalProperty(self, key: str) -> Optional[str]:
        """A property set with setLocalProperty in this thread, or None."""
        return self._local_properties.get(key)

    def setJobDescription(self, value: str) -> None:
        """Description of this thread's next jobs, shown in the web UI."""
        self.setLocalProperty("spark.job.description", value)

    def setJobGroup(self, groupId: str, description: str, interruptOnCancel: bool = False) -> None:
        """Puts this thread's next jobs in a group, which cancelJobGroup cancels.

        Examples
        --------
        >>> sc.setJobGroup("nightly", "the nightly report")  # doctest: +SKIP
        """
        self.setLocalProperty("spark.jobGroup.id", groupId)
        self.setLocalProperty("spark.job.description", description)
        self.setLocalProperty("spark.job.interruptOnCancel", str(interruptOnCancel).lower())

    def setInterruptOnCancel(self, interruptOnCancel: bool) -> None:
        """Whether cancelling this thread's jobs interrupts their tasks (they are killed
        either way in Ember)."""
        self.setLocalProperty("spark.job.interruptOnCancel", str(interruptOnCancel).lower())

    def cancelJobGroup(self, groupId: str) -> None:
        """Cancels the running jobs of a group; their actions raise JobCancelledError.

        Safe to call from any thread.
        """
        self._jobs.cancel_group(groupId)

    def cancelAllJobs(self) -> None:
        """Cancels every running job of this context (from any thread)."""
        self._jobs.cancel_all()

    def addJobTag(self, tag: str) -> None:
        """Adds a tag to the jobs this thread submits next; cancelJobsWithTag cancels them."""
        if not tag or "," in tag:
            raise ValueError("Spark job tag cannot be empty or contain ','")
        self._set_tags(self.getJobTags() | {tag})

    def removeJobTag(self, tag: str) -> None:
        """Removes a tag added with addJobTag."""
        self._set_tags(self.getJobTags() - {tag})

    def getJobTags(self) -> set[str]:
        """The tags of this thread's next jobs."""
        return set(filter(None, (self.getLocalProperty("spark.job.tags") or "").split(",")))

    def clearJobTags(self) -> None:
        """Removes every tag of this thread's next jobs."""
        self._set_tags(set())

    def _set_tags(self, tags: set[str]) -> None:
        self.setLocalProperty("spark.job.tags", ",".join(sorted(tags)) if tags else None)

    def cancelJobsWithTag(self, tag: str) -> None:
        """Cancels the running jobs that carry tag (from any thread).

        Examples
        --------
        >>> sc.addJobTag("etl")  # doctest: +SKIP
        >>> sc.cancelJobsWithTag("etl")  # doctest: +SKIP
        """
        self._jobs.cancel_tag(tag)

    def statusTracker(self) -> "StatusTracker":
        """Progress of this application's jobs and stages."""
        from ember.status import StatusTracker
        return StatusTracker(self)

    @property
    def resources(self) -> dict[str, Any]:
        """Resources (GPUs, ...) allocated to the driver: none in Ember."""
        return {}

    @classmethod
    def setSystemProperty(cls, key: str, value: str) -> None:
        """A default for SparkConf objects created from now on (Java system properties in
        PySpark; only ``spark.*`` keys are read, as there)."""
        from ember.conf import set_system_property
        set_system_property(key, value)

    # ---- checkpoints -----------------------------------------------------------
    def _start_again(self) -> None:
        """The master forgot this application (it restarted): register a new one
        and store the broadcast values again; the lineage is sent again with the
        next job, and lost cached data is recomputed."""
        app = self._client.request(
            "POST", "/applications", {"name": self.appName, "user": self.sparkUser(),
                                      "properties": redacted(self._conf.getAll())},
            retry=True)
        self.applicationId = app["id"]
        for holder in list(self._broadcasts.values()):
            holder._upload()

    def addPyFile(self, path: str) -> None:
        """Makes a .py, a .zip/.egg or a package folder importable in every task.

        Examples
        --------
        >>> sc.addPyFile("helpers.py")  # doctest: +SKIP
        >>> sc.parallelize([1]).map(lambda x: __import__("helpers").double(x)).collect()
        ... # doctest: +SKIP
        [2]
        """
        from ember import pyfiles
        self._check_running()
        self._py_files.append(pyfiles.ship(self, path, as_code=True))

    def addFile(self, path: str, recursive: bool = False) -> None:
        """Copies a data file to every task's host; tasks find it with SparkFiles.get(name)."""
        from ember import pyfiles
        self._check_running()
        self._files.append(pyfiles.ship(self, path, as_code=False))
        pyfiles.SparkFiles._add_on_driver(path)

    def setCheckpointDir(self, dirName: str) -> None:
        """Where checkpoint() writes RDDs: a folder every worker can read and write."""
        from ember.checkpoint import new_directory
        self._checkpoint_dir = new_directory(dirName)

    def getCheckpointDir(self) -> Optional[str]:
        return self._checkpoint_dir

    def _checkpointFile(self, name: str) -> "RDD":
        """An RDD read back from a checkpoint folder (``rdd.getCheckpointFile()``),
        for example in a new context after a restart."""
        from ember.rdd import FramesFileRDD
        self._check_running()
        parts = sorted(p for p in os.listdir(name) if p.startswith("part-"))
        if not parts:
            raise EmberError(f"{name} holds no checkpoint part files")
        return FramesFileRDD(self, [os.path.join(os.path.abspath(name), p) for p in parts])

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

        A list is cut into batches of ``min(len // numSlices, 1024)`` elements
        (at least 1) and the batches are spread over numSlices partitions
        (``[i*n/numSlices, (i+1)*n/numSlices)`` of n batches). A ``range`` is
        not materialized: partition i computes its own slice.

        Examples
        --------
        >>> sc.parallelize([1, 2, 3, 4], 2).glom().collect()  # doctest: +SKIP
        [[1, 2], [3, 4]]
        >>> sc.parallelize(range(10), 4).glom().collect()  # doctest: +SKIP
        [[0, 1], [2, 3, 4], [5, 6], [7, 8, 9]]
        """
        from ember.rdd import DataRDD
        self._check_running()
        slices = int(numSlices) if numSlices is not None else self.defaultParallelism
        if slices < 1:
            raise ValueError(f"numSlices must be at least 1, got {slices}")
        if isinstance(c, range):
            return self._parallelize_range(c, slices)
        items = c if isinstance(c, list) else list(c)
        n = len(items)
        batch = max(1, min(n // slices, _BATCH_CAP))
        batches = math.ceil(n / batch)
        parts = [items[(i * batches) // slices * batch:((i + 1) * batches) // slices * batch]
                 for i in range(slices)]
        return DataRDD(self, parts)

    def _parallelize_range(self, c: range, slices: int) -> "RDD":
        from ember.rdd import DataRDD
        size = len(c)
        if size == 0:
            return DataRDD(self, [[] for _ in range(slices)])
        step = c[1] - c[0] if size > 1 else 1
        start0 = c[0]

        def get_start(split: int) -> int:
            return start0 + int((split * size / slices)) * step

        def f(split: int, iterator: Iterable[Any]) -> Iterable[int]:
            return range(get_start(split), get_start(split + 1), step)
        return DataRDD(self, [[] for _ in range(slices)]).mapPartitionsWithIndex(f)

    def range(self, start: int, end: Optional[int] = None, step: int = 1,
              numSlices: Optional[int] = None) -> "RDD":
        """The integers of ``range(start, end, step)`` (``range(start)`` with one argument).

        Examples
        --------
        >>> sc.range(1, 7, 2).collect()  # doctest: +SKIP
        [1, 3, 5]
        """
        if end is None:
            start, end = 0, start
        return self.parallelize(range(start, end, step), numSlices)

    def textFile(self, name: str, minPartitions: Optional[int] = None,
                 use_unicode: bool = True) -> "RDD":
        """Lines of text files: a file, a directory, a glob, a URL, or a comma-separated list.

        Splits follow Hadoop's FileInputFormat (about minPartitions of them,
        default defaultMinPartitions). With use_unicode=False the lines are
        UTF-8 bytes, as in PySpark 3.

        Examples
        --------
        >>> sc.textFile("corpus/", minPartitions=4).count()  # doctest: +SKIP
        """
        from ember.rdd import TextFileRDD
        self._check_running()
        min_parts = minPartitions or self.defaultMinPartitions
        rdd: RDD = TextFileRDD(self, files.text_splits(name, max(1, min_parts)))
        rdd.setName(name)
        if not use_unicode:
            rdd = rdd.map(_utf8)
        return rdd

    def wholeTextFiles(self, path: str, minPartitions: Optional[int] = None,
                       use_unicode: bool = True) -> "RDD":
        """One ``(path, content)`` record per file (``file:/abs/path`` for local files).

        Files are grouped into about minPartitions partitions as Spark's
        WholeTextFileInputFormat groups them; only the file names travel with
        the job, each task reads its files. With use_unicode=False paths and
        contents are UTF-8 bytes.

        Examples
        --------
        >>> sorted(sc.wholeTextFiles("dir/").collect())  # doctest: +SKIP
        [('file:/.../dir/1.txt', '1'), ('file:/.../dir/2.txt', '2')]
        """
        return self._whole_files(path, minPartitions, readers.whole_files(use_unicode, False),
                                 "WholeTextFileRDD")

    def binaryFiles(self, path: str, minPartitions: Optional[int] = None) -> "RDD":
        """One ``(path, bytes)`` record per file, partitioned as wholeTextFiles.

        Examples
        --------
        >>> sc.binaryFiles("dir/").keys().collect()  # doctest: +SKIP
        ['file:/.../dir/1.bin']
        """
        return self._whole_files(path, minPartitions, readers.whole_files(True, True),
                                 "BinaryFileRDD")

    def _whole_files(self, path: str, minPartitions: Optional[int],
                     read: Callable[[Iterable[str]], Iterable[Any]], kind: str) -> "RDD":
        from ember.rdd import DataRDD
        self._check_running()
        paths = files.expand_paths(path)
        groups = readers.combine_files(paths, [readers.input_size(p) for p in paths],
                                       minPartitions or self.defaultMinPartitions)
        names = DataRDD(self, groups)
        names._debug_class = kind
        return names.mapPartitions(read).setName(path)

    def binaryRecords(self, path: str, recordLength: int) -> "RDD":
        """Records of recordLength bytes from flat binary files.

        Examples
        --------
        >>> sc.binaryRecords("data.bin", 8).count()  # doctest: +SKIP
        """
        from ember.rdd import DataRDD
        self._check_running()
        if recordLength < 1:
            raise ValueError("recordLength must be positive")
        splits = readers.fixed_length_splits(files.expand_paths(path), recordLength)
        ranges = DataRDD(self, [[s] for s in splits])
        ranges._debug_class = "BinaryRecordsRDD"
        return ranges.mapPartitions(readers.fixed_length_records(recordLength)).setName(path)

    def pickleFile(self, name: str, minPartitions: Optional[int] = None) -> "RDD":
        """The elements saved with RDD.saveAsPickleFile: one partition per part file.

        Ember's format is its own (see saveAsPickleFile), not a Hadoop
        SequenceFile, so minPartitions does not change the partitioning.

        Examples
        --------
        >>> sorted(sc.pickleFile("/tmp/p").collect())  # doctest: +SKIP
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]
        """
        from ember.rdd import FramesFileRDD
        self._check_running()
        paths = files.expand_paths(name)
        if any(files.is_url(p) for p in paths):
            raise EmberError(f"pickleFile reads local files only, not {name}")
        parts = FramesFileRDD(self, paths)
        parts._debug_class = "ObjectFileRDD"
        return parts.setName(name)

    def emptyRDD(self) -> "RDD":
        """An RDD with no partitions and no elements."""
        from ember.rdd import DataRDD
        return DataRDD(self, [])

    def union(self, rdds: list["RDD"]) -> "RDD":
        """The elements of all rdds, partitions one after another.

        When every non-empty RDD has the same partitioner, partition i is
        partition i of each (as Spark's PartitionerAwareUnionRDD).

        Examples
        --------
        >>> sc.union([sc.parallelize([1]), sc.parallelize([2])]).collect()  # doctest: +SKIP
        [1, 2]
        """
        rdds = list(rdds)
        if not rdds:
            raise ValueError("union needs at least one RDD")
        return lineage.union(self, rdds)

    def runJob(self, rdd: "RDD", partitionFunc: Callable[[Iterable[Any]], Iterable[Any]],
               partitions: Optional[Iterable[int]] = None, allowLocal: bool = False) -> list[Any]:
        """Runs partitionFunc over some partitions (all by default); returns its output.

        Examples
        --------
        >>> sc.runJob(sc.parallelize(range(6), 3), lambda it: [x * x for x in it], [0, 2])
        ... # doctest: +SKIP
        [0, 1, 16, 25]
        """
        return self._jobs.run(rdd.mapPartitions(partitionFunc), partitions)


def _utf8(line: str) -> bytes:
    return line.encode("utf-8")


class InheritableThread(threading.Thread):
    """A thread that starts with the local properties of the thread that created it.

    Examples
    --------
    >>> InheritableThread(target=lambda: sc.range(3).count()).start()  # doctest: +SKIP
    """

    def __init__(self, target: Optional[Callable[..., Any]] = None, *args: Any,
                 **kwargs: Any) -> None:
        active = SparkContext._active
        inherited = dict(active._local_properties) if active is not None else {}

        def run_with_properties(*a: Any, **kw: Any) -> Any:
            if active is not None:
                active._thread_properties.values = dict(inherited)
            if target is not None:
                return target(*a, **kw)
            return None
        super().__init__(*args, target=run_with_properties, **kwargs)


def _apply_submit_environment(conf: SparkConf) -> None:
    """Fills in what the script did not set, in this order of precedence: what
    ember-submit passes on (--conf pairs in EMBER_CONF, one key=value a line,
    --master among them, and --name in EMBER_APP_NAME), then the environment
    (EMBER_MASTER, EMBER_CONF_*), then the defaults file."""
    for line in os.environ.get("EMBER_CONF", "").splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip():
            conf.setIfMissing(key.strip(), value.strip())
    if os.environ.get("EMBER_APP_NAME"):
        conf.setIfMissing("spark.app.name", os.environ["EMBER_APP_NAME"])
    for key, value in environment_settings():
        conf.setIfMissing(key, value)
    path = defaults_file_path()
    if path:
        for key, value in read_defaults_file(path):
            conf.setIfMissing(key, value)
