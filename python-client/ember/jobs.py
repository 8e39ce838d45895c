"""Submits jobs to the gateway, waits for them and downloads results."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Iterable, Optional

from ember import accumulators, checkpoint
from ember.callsite import call_site
from ember.errors import JobFailedError
from ember.serializers import iter_frames

if TYPE_CHECKING:
    from ember.context import SparkContext
    from ember.rdd import RDD


def _lineage(rdd: "RDD", known: set[int]) -> list["RDD"]:
    """RDDs the master has not seen yet, parents before children."""
    order: list["RDD"] = []
    seen: set[int] = set()
    stack: list[tuple["RDD", bool]] = [(rdd, False)]
    while stack:
        node, expanded = stack.pop()
        if node.id in known or (node.id in seen and not expanded):
            continue
        if expanded:
            order.append(node)
            continue
        seen.add(node.id)
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
        if node.id not in seen:
            seen.add(node.id)
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
            storage[str(node.id)] = node.getStorageLevel()._to_json()
        if node._checkpoint_files is not None:
            checkpoints[str(node.id)] = {"files": node._checkpoint_files}
        broadcasts |= node._broadcast_ids
    return {"storage": storage, "checkpoints": checkpoints, "broadcasts": sorted(broadcasts)}


class JobRunner:
    """Runs the jobs of one SparkContext."""

    def __init__(self, sc: "SparkContext") -> None:
        self.sc = sc
        self.client = sc._client
        self.app = sc.applicationId
        self.known: set[int] = set()

    def run(self, rdd: "RDD", partitions: Optional[Iterable[int]] = None) -> list[Any]:
        """Computes rdd (or some of its partitions); returns all records in order."""
        self.sc._check_running()
        description, site = call_site()
        new = _lineage(rdd, self.known)
        nodes = [node._node() for node in new]      # pickles functions: may add broadcasts
        props = dict(self.sc._local_properties)
        body: dict[str, Any] = {
            "rdd": rdd.id,
            "description": props.get("spark.job.description") or description,
            "callSite": site,
            "properties": props,
            "nodes": nodes,
            **_lineage_needs(rdd),
        }
        if partitions is not None:
            body["partitions"] = list(partitions)
        job = self.client.request("POST", f"/applications/{self.app}/jobs", body)
        self.known.update(node.id for node in new)
        try:
            status = self._wait(job["jobId"])
        except KeyboardInterrupt:
            self.client.request("POST", f"/applications/{self.app}/jobs/{job['jobId']}/cancel",
                                retry=False)
            raise
        results = self._results(job["jobId"], status)
        self._write_checkpoints(rdd)
        return results

    def _write_checkpoints(self, rdd: "RDD") -> None:
        """After a job: RDDs of its lineage marked with checkpoint() are written."""
        for node in _walk(rdd):
            if node._checkpoint_wanted and node._checkpoint_files is None:
                node._checkpoint_wanted = False
                node._checkpoint_files = checkpoint.write(node, self.sc._checkpoint_dir)

    def unpersist(self, rdd: "RDD") -> None:
        """Drops rdd's cached blocks (nothing to do if the cluster never saw it)."""
        if rdd.id in self.known:
            self.client.request("DELETE", f"/applications/{self.app}/rdds/{rdd.id}", retry=True)

    def _wait(self, job_id: int) -> dict:
        delay = 0.01
        while True:
            status = self.client.request("GET", f"/applications/{self.app}/jobs/{job_id}")
            if status["status"] != "RUNNING":
                accumulators.apply_updates(status.get("accumulatorUpdates", []))
            if status["status"] == "SUCCEEDED":
                return status
            if status["status"] == "FAILED":
                message = status.get("errorMessage", "job failed")
                raise JobFailedError(message, remote_traceback=message,
                                     stage=status.get("failedStage"),
                                     partition=status.get("failedPartition"))
            time.sleep(delay)
            delay = min(delay * 1.5, 0.2)

    def _results(self, job_id: int, status: dict) -> list[Any]:
        records: list[Any] = []
        for entry in status.get("results", []):
            block = self.client.request(
                "GET", f"/applications/{self.app}/jobs/{job_id}/results/{entry['partition']}",
                raw=True)
            records.extend(iter_frames(block))
        return records
