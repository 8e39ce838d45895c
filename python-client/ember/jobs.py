"""Submits jobs to the gateway, waits for them and streams their results.

A JobRunner is shared by every thread of the driver: submissions are
serialized (so the lineage each job sends is consistent with what the master
already has), waiting and downloading are not, and jobs can be cancelled from
another thread by job group or all at once.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import json
import os
import pickle
import struct
import threading
import uuid
import time
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Optional

from ember import accumulators, checkpoint, compat, progress, pyfiles
from ember.callsite import call_site
from ember.conf import parse_size
from ember.errors import GatewayError, JobCancelledError, JobFailedError

if TYPE_CHECKING:
    from ember.context import SparkContext
    from ember.rdd import RDD

DEFAULT_MAX_RESULT_SIZE = "1g"


def _lineage(rdd: "RDD", known: set[int]) -> list["RDD"]:
    """RDDs the master has not seen yet, parents before children."""
    order: list["RDD"] = []
    seen: set[int] = set()
    stack: list[tuple["RDD", bool]] = [(rdd, False)]
    while stack:
        node, expanded = stack.pop()
        node_id = node._id              # not .id: that builds an _RddId each time
        if node_id in known or (node_id in seen and not expanded):
            continue
        if expanded:
            order.append(node)
            continue
        seen.add(node_id)
        stack.append((node, True))
        for parent in node._lineage_parents():
            stack.append((parent, False))
    return order


def _walk(rdd: "RDD") -> list["RDD"]:
    """Every RDD of rdd's lineage (up to checkpoints), each once."""
    found: list["RDD"] = []
    seen: set[int] = set()
    stack = [rdd]
    while stack:
        node = stack.pop()
        if node._id not in seen:
            seen.add(node._id)
            found.append(node)
            stack.extend(node._lineage_parents())
    return found


def _lineage_needs(rdd: "RDD") -> dict[str, Any]:
    """What the master must know about rdd's lineage besides its nodes: storage
    levels of persisted RDDs, checkpoint files, broadcasts the functions use."""
    storage: dict[str, dict] = {}
    checkpoints: dict[str, dict] = {}
    broadcasts: set[int] = set()
    for node in _walk(rdd):
        if node.is_cached:
            storage[str(node._id)] = node.getStorageLevel()._to_json()
        if node._checkpoint_files is not None:
            checkpoints[str(node._id)] = {"files": node._checkpoint_files}
        broadcasts |= node._broadcast_ids
    return {"storage": storage, "checkpoints": checkpoints, "broadcasts": sorted(broadcasts)}


_RESULT_ATTEMPTS = 3


# How long one status request may wait for the job to end (the gateway's limit).
_POLL_WAIT_MS = 50
# A job submitted to be waited for at once is submitted with ?waitMs: a short
# job's final status (with its inline results) comes in the POST's answer, one
# request instead of two. Short, since the submit lock is held meanwhile and the
# job is only cancellable by group/tag/all through _cancel_in_flight.
_SUBMIT_WAIT_MS = 10


def _frames(data: bytes) -> Iterator[Any]:
    """Records of a result block's bytes: frames of a 4-byte big-endian length
    and a pickled list, as the gateway would stream them."""
    pos = 0
    while pos < len(data):
        if pos + 4 > len(data):
            raise GatewayError(f"an inline result breaks off inside a frame header at {pos}")
        (length,) = struct.unpack_from(">i", data, pos)
        pos += 4
        if length < 0 or pos + length > len(data):
            raise GatewayError(f"an inline result's frame at {pos - 4} runs past its end")
        yield from pickle.loads(data[pos:pos + length])
        pos += length


def _inline_records(results: list) -> Optional[list[Any]]:
    """Every record of results, in order, when the master held them all inline
    (each entry has its "data"); None otherwise. What list(_frames(...)) of each
    entry in turn gives, and the same errors, without a generator per frame."""
    for entry in results:
        if "data" not in entry:
            return None
    records: list[Any] = []
    for entry in results:
        text = entry["data"]
        # b64decode of a str is a2b_base64 of it (non-ASCII: the same ValueError);
        # anything else goes through b64decode for its own error.
        data = binascii.a2b_base64(text) if type(text) is str else base64.b64decode(text)
        pos, end = 0, len(data)
        while pos < end:
            if pos + 4 > end:
                raise GatewayError(f"an inline result breaks off inside a frame header at {pos}")
            (length,) = _FRAME_HEADER.unpack_from(data, pos)
            pos += 4
            if length < 0 or pos + length > end:
                raise GatewayError(f"an inline result's frame at {pos - 4} runs past its end")
            records.extend(pickle.loads(data[pos:pos + length]))
            pos += length
    return records


_FRAME_HEADER = struct.Struct(">i")


def _result_lost(err: GatewayError) -> bool:
    """The gateway's answer when a result block's block manager lost it (or the
    master dropped a result it held): 404 before the download started, or a
    download of several blocks breaking off at the lost one."""
    return (err.status == 404 and ("is no longer on the block manager" in str(err)
                                   or "is no longer on the master" in str(err))) \
        or (err.status is None and "broke off" in str(err))


# SparkConf settings that workers or the master read from a job's properties
# (a thread's local property of the same name wins).
FORWARDED_CONF = ("spark.local.dir", "spark.ember.pyexec.objectCache",
                  "spark.ember.pyexec.functionCache", "spark.ember.inlineResults")


class JobRunner:
    """Runs the jobs of one SparkContext."""

    def __init__(self, sc: "SparkContext") -> None:
        self.sc = sc
        self.client = sc._client
        self.app = sc.applicationId
        self.known: set[int] = set()
        self._submit_lock = threading.Lock()
        self._running_lock = threading.Lock()
        self._running: dict[int, Optional[str]] = {}     # job id -> job group
        self._tags: dict[int, set[str]] = {}              # running job id -> job tags
        # job id -> job group of the newest spark.ui.retainedJobs jobs (the
        # status tracker's getJobIdsForGroup, bounded as in Spark).
        self.groups: dict[int, Optional[str]] = {}
        self._retained_jobs = max(1, int(sc._conf.get("spark.ui.retainedJobs", "1000")))
        self._cancelled: dict[int, str] = {}             # job id -> why
        # Submissions whose POST waits (?waitMs): token -> (group, tags), and
        # token -> why for those a cancel_* call matched meanwhile.
        self._in_flight: dict[str, tuple[Optional[str], set[str]]] = {}
        self._cancel_in_flight: dict[str, str] = {}
        self._first_status: dict[int, dict] = {}         # job id -> final status from the POST
        self._parsed_max_result_size: Optional[tuple[Any, int]] = None
        # Submission tokens: unique per submission, made without a system call each.
        self._token_pid = os.getpid()
        self._token_prefix = uuid.uuid4().hex[:16]
        self._token_numbers = itertools.count()

    # ---- running ------------------------------------------------------------------
    def run(self, rdd: "RDD", partitions: Optional[Iterable[int]] = None) -> list[Any]:
        """Computes rdd (or some of its partitions); returns all records in order.

        A result block lost before it was downloaded (its block manager died
        just after the job succeeded) costs a rerun of the job, unless the job
        updated accumulators (they would count twice). Afterwards the RDDs of
        its lineage marked with checkpoint() are written.
        """
        for attempt in range(_RESULT_ATTEMPTS):
            job_id = self.submit(rdd, partitions, wait_first=True)
            status = self.wait(job_id)
            try:
                results = _inline_records(status.get("results", []))
                if results is None:
                    results = list(self._records(job_id, status))
                break
            except GatewayError as err:
                if not _result_lost(err) or attempt + 1 == _RESULT_ATTEMPTS \
                        or status.get("accumulatorUpdates"):
                    raise
        self._write_checkpoints(rdd)
        return results

    def _write_checkpoints(self, rdd: "RDD") -> None:
        if not self.sc._checkpoint_requested:
            return
        for node in _walk(rdd):
            if node._checkpoint_wanted and node._checkpoint_files is None:
                node._checkpoint_wanted = False
                node._checkpoint_files = checkpoint.write(node, self.sc._checkpoint_dir)

    def stream(self, rdd: "RDD", partitions: Optional[Iterable[int]] = None) -> Iterator[Any]:
        """Like run, but yields the records as their result blocks stream in."""
        job_id = self.submit(rdd, partitions, wait_first=True)
        status = self.wait(job_id)
        return self._records(job_id, status)

    def iterate(self, rdd: "RDD", prefetch: bool = False) -> Iterator[Any]:
        """Records of rdd, one partition (one job) at a time (toLocalIterator)."""
        total = rdd.getNumPartitions()
        pending = self.submit(rdd, [0]) if total else None
        for p in range(total):
            status = self.wait(pending)
            current = pending
            pending = self.submit(rdd, [p + 1]) if prefetch and p + 1 < total else None
            yield from self._records(current, status)
            if not prefetch and p + 1 < total:
                pending = self.submit(rdd, [p + 1])

    def submit(self, rdd: "RDD", partitions: Optional[Iterable[int]] = None,
               wait_first: bool = False) -> int:
        """Sends the job (with the lineage the master lacks); returns its id.
        wait_first: wait() follows at once, so the POST may wait for the job."""
        self.sc._check_running()
        description, site = call_site()
        props = self._properties()
        group = props.get("spark.jobGroup.id")
        tags = set(filter(None, props.get("spark.job.tags", "").split(",")))
        token = self._new_token()
        if wait_first:
            with self._running_lock:
                self._in_flight[token] = (group, tags)
        try:
            with self._submit_lock:
                try:
                    job = self._post(rdd, partitions, props, description, site, token, wait_first)
                except GatewayError as err:
                    if err.status != 404 or "application" not in str(err):
                        raise
                    if err.retried:
                        # An earlier attempt may have reached the master that died:
                        # the job may have started there, so it fails like a job
                        # that was running (the next one starts afresh).
                        raise JobFailedError(
                            "the job was lost: the master restarted while it was being "
                            "submitted (run the action again; the next job starts "
                            "afresh)") from None
                    # The master restarted and forgot us: start again, sending everything.
                    self.sc._start_again()
                    self.app = self.sc.applicationId
                    self.known.clear()
                    job = self._post(rdd, partitions, props, description, site,
                                     self._new_token(), wait=False)
        finally:
            with self._running_lock:
                self._in_flight.pop(token, None)
                why = self._cancel_in_flight.pop(token, None)
        job_id = job["jobId"]
        with self._running_lock:
            self._running[job_id] = group
            self._tags[job_id] = tags
            self.groups[job_id] = group
            while len(self.groups) > self._retained_jobs:
                del self.groups[next(iter(self.groups))]     # the oldest first
            if job.get("status") not in (None, "RUNNING"):
                self._first_status[job_id] = job
        if why is not None and job.get("status", "RUNNING") == "RUNNING":
            self._cancel(job_id, f"Job {job_id} {why}")
        return job_id

    def _new_token(self) -> str:
        """A submission token no other submission of this driver has (32 hex digits).
        A forked child draws its own prefix: it would otherwise repeat the parent's
        next tokens, and the master answers a repeated token with the first job."""
        if os.getpid() != self._token_pid:
            self._token_pid = os.getpid()
            self._token_prefix = uuid.uuid4().hex[:16]
        return f"{self._token_prefix}{next(self._token_numbers):016x}"

    def _post(self, rdd: "RDD", partitions: Optional[Iterable[int]], props: dict[str, str],
              description: str, site: str, token: str, wait: bool) -> dict:
        """POSTs the job with the lineage nodes the master lacks (lock held)."""
        new = _lineage(rdd, self.known)
        nodes = [node._node() for node in new]      # pickles functions: may add broadcasts
        body: dict[str, Any] = {
            "rdd": rdd._id,
            "description": props.get("spark.job.description") or description,
            "callSite": site,
            "properties": props,
            "nodes": nodes,
            **_lineage_needs(rdd),
        }
        # Shipped code and files travel as broadcasts with every job.
        shipped = {entry["id"] for entry in self.sc._py_files + self.sc._files}
        body["broadcasts"] = sorted(set(body["broadcasts"]) | shipped)
        if partitions is not None:
            body["partitions"] = list(partitions)
        # A token makes the POST safe to retry: a submission that reached the
        # master before the connection broke is not run twice.
        body["submissionId"] = token
        query = f"?inlineResults=1&waitMs={_SUBMIT_WAIT_MS}" if wait else ""
        job = self.client.request("POST", f"/applications/{self.app}/jobs{query}", body,
                                  retry=True)
        self.known.update(node._id for node in new)
        return job

    def _properties(self) -> dict[str, str]:
        """The thread's local properties plus what tasks and the master read from SparkConf."""
        conf = self.sc._conf
        props = dict(self.sc._local_properties)
        props.setdefault("spark.python.worker.memory",
                         conf.get("spark.python.worker.memory", "512m"))
        props["spark.driver.maxResultSize"] = str(self.max_result_size())
        for key in FORWARDED_CONF:
            if conf.contains(key):
                props.setdefault(key, conf.get(key))
        props.update(compat.driver_versions())
        if self.sc._py_files:
            props[pyfiles.PY_FILES_PROPERTY] = json.dumps(self.sc._py_files)
        if self.sc._files:
            props[pyfiles.FILES_PROPERTY] = json.dumps(self.sc._files)
        return props

    def max_result_size(self) -> int:
        """spark.driver.maxResultSize in bytes (0 means no limit)."""
        text = self.sc._conf.get("spark.driver.maxResultSize", DEFAULT_MAX_RESULT_SIZE)
        parsed = self._parsed_max_result_size     # (text, bytes): parsed twice per job
        if parsed is None or parsed[0] != text:
            parsed = self._parsed_max_result_size = (text, parse_size(text))
        return parsed[1]

    def wait(self, job_id: int) -> dict:
        """Waits for the job; returns its status, or raises JobFailedError."""
        bar = progress.for_job(self.sc._conf)
        try:
            return self._poll(job_id, bar.update)
        except KeyboardInterrupt:
            self._cancel(job_id, f"Job {job_id} cancelled because the driver was interrupted")
            raise
        finally:
            bar.close()
            with self._running_lock:
                self._running.pop(job_id, None)
                self._tags.pop(job_id, None)

    def _poll(self, job_id: int, on_status: Callable[[dict], None]) -> dict:
        delay = 0.001
        with self._running_lock:
            first = self._first_status.pop(job_id, None)
        while True:
            asked = time.monotonic()
            try:
                if first is not None:           # the POST's answer: the job had ended
                    status, first = first, None
                else:
                    # inlineResults: small results come in this answer (no download);
                    # waitMs: the gateway answers as soon as the job ends (long poll).
                    status = self.client.request(
                        "GET", f"/applications/{self.app}/jobs/{job_id}?inlineResults=1"
                        f"&waitMs={_POLL_WAIT_MS}")
            except GatewayError as err:
                if err.status != 404:
                    raise
                raise JobFailedError(f"job {job_id} was lost: the master restarted while it ran "
                                     "(run the action again; the next job starts afresh)") from None
            on_status(status)
            if status["status"] != "RUNNING":
                accumulators.apply_updates(status.get("accumulatorUpdates", []))
            if status["status"] == "SUCCEEDED":
                self._check_result_size(status)
                return status
            if status["status"] == "FAILED":
                self._raise_failure(job_id, status)
            if time.monotonic() - asked < _POLL_WAIT_MS / 2000:
                # The answer did not wait (a gateway without long polls, or the
                # master had enough waiters): poll often at first, then less.
                time.sleep(delay)
                delay = min(delay * 1.5, 0.05)

    def _raise_failure(self, job_id: int, status: dict) -> None:
        message = status.get("errorMessage", "job failed")
        with self._running_lock:
            why = self._cancelled.pop(job_id, None)
        if why is None and status.get("cancelled"):
            why = (f"Job {job_id} cancelled from outside this driver (through the gateway's "
                   "REST API or its web UI)")
        if why is not None:
            raise JobCancelledError(why, remote_traceback=message,
                                    stage=status.get("failedStage"),
                                    partition=status.get("failedPartition"))
        raise JobFailedError(message, remote_traceback=message,
                             stage=status.get("failedStage"),
                             partition=status.get("failedPartition"))

    def _check_result_size(self, status: dict) -> None:
        """The driver's own check of spark.driver.maxResultSize (the master checks too)."""
        limit = self.max_result_size()
        results = status.get("results", [])
        total = sum(int(entry.get("size", 0)) for entry in results)
        if limit and total > limit:
            raise JobFailedError(
                "Job aborted due to stage failure: Total size of serialized results of "
                f"{len(results)} tasks ({total / 1048576:.1f} MiB) is bigger than "
                f"spark.driver.maxResultSize ({limit / 1048576:.1f} MiB)")

    def _records(self, job_id: int, status: dict) -> Iterator[Any]:
        results = status.get("results", [])
        if all("data" in entry for entry in results):   # the master held them all
            for entry in results:
                yield from _frames(base64.b64decode(entry["data"]))
            return
        if len(results) > 1:      # one request streams every partition's block in turn
            yield from self.client.stream_frames(f"/applications/{self.app}/jobs/{job_id}/results")
            return
        for entry in results:
            yield from self.client.stream_frames(
                f"/applications/{self.app}/jobs/{job_id}/results/{entry['partition']}")

    # ---- cancelling ------------------------------------------------------------------
    def _cancel(self, job_id: int, why: str) -> None:
        with self._running_lock:
            self._cancelled[job_id] = why
        self.client.request("POST", f"/applications/{self.app}/jobs/{job_id}/cancel",
                            retry=False)

    def cancel_group(self, group: str) -> None:
        """Cancels the running jobs of a job group (from any thread)."""
        with self._running_lock:
            jobs = [j for j, g in self._running.items() if g == group]
            for token, (g, _) in self._in_flight.items():
                if g == group:
                    self._cancel_in_flight[token] = f"cancelled part of cancelled job group {group}"
        for job_id in jobs:
            self._cancel(job_id, f"Job {job_id} cancelled part of cancelled job group {group}")

    def cancel_tag(self, tag: str) -> None:
        """Cancels the running jobs that carry a job tag (from any thread)."""
        with self._running_lock:
            jobs = [j for j, tags in self._tags.items() if tag in tags]
            for token, (_, tags) in self._in_flight.items():
                if tag in tags:
                    self._cancel_in_flight[token] = f"cancelled part of cancelled job tag {tag}"
        for job_id in jobs:
            self._cancel(job_id, f"Job {job_id} cancelled part of cancelled job tag {tag}")

    def running_jobs(self) -> list[int]:
        """Ids of the jobs of this context that are running now."""
        with self._running_lock:
            return sorted(self._running)

    def cancel_all(self) -> None:
        """Cancels every running job of this context (from any thread)."""
        with self._running_lock:
            jobs = list(self._running)
            for token in self._in_flight:
                self._cancel_in_flight[token] = "cancelled as part of cancellation of all jobs"
        for job_id in jobs:
            self._cancel(job_id, f"Job {job_id} cancelled as part of cancellation of all jobs")

    # ---- storage ----------------------------------------------------------------------
    def unpersist(self, rdd: "RDD") -> None:
        """Drops rdd's cached blocks (nothing to do if the cluster never saw it)."""
        if rdd.id in self.known:
            self.client.request("DELETE", f"/applications/{self.app}/rdds/{rdd.id}", retry=True)
