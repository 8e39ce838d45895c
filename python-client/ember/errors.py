"""Exceptions raised by the Ember client. Every one derives from EmberError."""

from __future__ import annotations

from typing import Optional


class EmberError(Exception):
    """Base class of every error the Ember client raises."""


class GatewayError(EmberError):
    """The gateway refused a request or could not be reached.

    Attributes
    ----------
    status : int or None
        The HTTP status, or None when the gateway did not answer.
    retried : bool
        The request was sent more than once: an earlier attempt may have
        reached the gateway (and the master) before this answer.
    """

    def __init__(self, message: str, status: Optional[int] = None, retried: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.retried = retried


class JobFailedError(EmberError):
    """A job failed on the cluster.

    The message carries the remote traceback of the last failed task attempt.

    Attributes
    ----------
    remote_traceback : str
        The formatted Python traceback from the worker, or the failure text.
    stage : int or None
        The stage whose task failed.
    partition : int or None
        The partition that failed.
    """

    def __init__(self, message: str, remote_traceback: str = "", stage: Optional[int] = None,
                 partition: Optional[int] = None) -> None:
        super().__init__(message)
        self.remote_traceback = remote_traceback
        self.stage = stage
        self.partition = partition


class ClusterStartError(EmberError):
    """A private local cluster (``local[N]``) could not be started."""


class JobCancelledError(JobFailedError):
    """A job was cancelled (cancelJobGroup, cancelAllJobs, Ctrl-C in the driver, or
    the job's cancel route of the REST API, which the web UI's kill button uses)."""


class OutputPathExistsError(EmberError, FileExistsError):
    """saveAsTextFile or saveAsPickleFile was given a directory that already exists."""
