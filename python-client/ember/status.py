"""StatusTracker: progress of the application's jobs and stages, as PySpark's.

The answers come from the gateway's monitoring API, so they are always current
(PySpark keeps a bounded history; Ember shows every job of the application).
"""

from __future__ import annotations

from collections import namedtuple
from typing import TYPE_CHECKING, Optional

from ember.errors import GatewayError

if TYPE_CHECKING:
    from ember.context import SparkContext

SparkJobInfo = namedtuple("SparkJobInfo", "jobId stageIds status")
SparkStageInfo = namedtuple("SparkStageInfo", "stageId currentAttemptId name numTasks "
                                              "numActiveTasks numCompletedTasks numFailedTasks")


class StatusTracker:
    """Low-level status of jobs and stages (``sc.statusTracker()``).

    Examples
    --------
    >>> tracker = sc.statusTracker()  # doctest: +SKIP
    >>> tracker.getJobInfo(tracker.getJobIdsForGroup()[0]).status  # doctest: +SKIP
    'SUCCEEDED'
    """

    def __init__(self, sc: "SparkContext") -> None:
        self._sc = sc

    def _get(self, what: str) -> list:
        return self._sc._client.request("GET", f"/applications/{self._sc.applicationId}/{what}")

    def getJobIdsForGroup(self, jobGroup: Optional[str] = None) -> list[int]:
        """Ids of the jobs of a job group (None: the jobs without a group), newest first."""
        groups = self._sc._jobs.groups
        return sorted((j for j, g in list(groups.items()) if g == jobGroup), reverse=True)

    def getActiveStageIds(self) -> list[int]:
        """Ids of the stages running now (in a running job)."""
        running = set(self.getActiveJobsIds())
        return sorted(s["stageId"] for s in self._get("stages")
                      if s["status"] == "ACTIVE" and running & set(s.get("jobIds", [])))

    def getActiveJobsIds(self) -> list[int]:
        """Ids of the jobs running now."""
        return sorted(j["jobId"] for j in self._get("jobs") if j["status"] == "RUNNING")

    def getJobInfo(self, jobId: int) -> Optional[SparkJobInfo]:
        """(jobId, stageIds, status) of a job; None when there is no such job."""
        try:
            job = self._get(f"jobs/{jobId}")
        except GatewayError as err:
            if err.status == 404:
                return None
            raise
        return SparkJobInfo(job["jobId"], list(job.get("stageIds", [])), job["status"])

    def getStageInfo(self, stageId: int) -> Optional[SparkStageInfo]:
        """Progress of a stage; None when there is no such stage."""
        try:
            stage = self._get(f"stages/{stageId}")
        except GatewayError as err:
            if err.status == 404:
                return None
            raise
        return SparkStageInfo(stage["stageId"], stage.get("attemptId", 0), stage.get("name", ""),
                              stage["numTasks"], stage["numActiveTasks"],
                              stage["numCompleteTasks"], stage["numFailedTasks"])
