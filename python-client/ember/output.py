"""Writing an RDD as a directory of part files (saveAsTextFile, saveAsPickleFile).

Each task writes its part under ``<out>/_temporary/attempt_<id>/`` and renames
it into ``<out>`` when done, so a failed or retried attempt leaves no partial
or duplicate part. When writing fails (a full disk, a read-only file system)
the error names the file and the OS error, a failed attempt removes its own
temporary file at once (it may be what filled the disk), and when the job
fails the driver removes the output directory it created, so nothing partial
is left and the same call can simply be made again.
"""

from __future__ import annotations

import errno
import os
import shutil
import time
from typing import IO, TYPE_CHECKING, Any, Callable, Iterable, Optional

from ember.errors import JobFailedError, OutputPathExistsError
from ember.taskcontext import TaskContext

if TYPE_CHECKING:
    from ember.rdd import RDD


def _os_error(err: OSError, what: str, path: str) -> OSError:
    """err again, saying what could not be done to which path, with the errno's name."""
    code = errno.errorcode.get(err.errno or 0, "")
    reason = f"{err.strerror} ({code})" if code else str(err.strerror or err)
    return type(err)(err.errno, f"{reason}: {what}", path)


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _remove_tree(out: str) -> Optional[OSError]:
    """Removes out, again while attempts of the failed job that were still
    running put something back (they create no parent folders, so once the
    tree is gone nothing recreates it). Returns the error that made it give up
    (a read-only file system, say), or None."""
    deadline = time.monotonic() + 10
    while True:
        errors: list[OSError] = []
        shutil.rmtree(out, onerror=lambda _f, _p, info: errors.append(info[1]))
        lasting = [e for e in errors if isinstance(e, OSError)
                   and e.errno not in (errno.ENOENT, errno.ENOTEMPTY)]
        if not os.path.lexists(out):
            return None
        if lasting or time.monotonic() >= deadline:
            return lasting[0] if lasting else errors[-1] if errors else None
        time.sleep(0.05)


class _Recording:
    """A part file that remembers the OSErrors its writes raise (a write error
    names no file, like many a user's own OSError)."""

    def __init__(self, fh: IO[bytes], errors: list) -> None:
        self._fh = fh
        self._errors = errors

    def write(self, data: bytes) -> int:
        try:
            return self._fh.write(data)
        except OSError as err:
            self._errors.append(err)
            raise

    def __getattr__(self, name: str) -> Any:
        return getattr(self._fh, name)


def save_parts(rdd: "RDD", path: str, suffix: str, opener: Callable[[str], IO[bytes]],
               write: Callable[[IO[bytes], Iterable[Any]], None]) -> None:
    """Writes ``part-NNNNN<suffix>`` per partition of rdd into path, then ``_SUCCESS``."""
    out = os.path.abspath(path)
    if os.path.exists(out):
        raise OutputPathExistsError(f"Output directory file:{out} already exists")
    staging = os.path.join(out, "_temporary")
    try:
        os.makedirs(staging)
    except OSError as err:
        raise _os_error(err, "cannot create the output directory", out) from None

    def write_part(split: int, iterator: Iterable[Any]) -> Iterable[Any]:
        ours: list[OSError] = []          # what the part file itself raised
        attempt_dir = os.path.join(staging, f"attempt_{TaskContext.get().taskAttemptId()}")
        name = "part-%05d%s" % (split, suffix)
        temporary, final = os.path.join(attempt_dir, name), os.path.join(out, name)
        try:
            try:
                os.mkdir(attempt_dir)    # not makedirs: a removed output stays removed
            except FileExistsError:
                pass
            fh = opener(temporary)
            try:
                write(_Recording(fh, ours), iterator)
            finally:
                try:
                    fh.close()
                except OSError as err:
                    ours.append(err)
                    raise
            os.replace(temporary, final)
        except OSError as err:
            _remove(temporary)
            # An OSError of the user's own code (a map before the save, a
            # __str__) passes unchanged: only the part file's are rewritten.
            if not any(err is e for e in ours) and err.filename not in (attempt_dir, temporary,
                                                                         final):
                raise
            raise _os_error(err, "cannot write the output file", temporary) from None
        return []

    try:
        rdd.mapPartitionsWithIndex(write_part)._run()
    except JobFailedError as failure:
        left = _remove_tree(out)
        cleanup = (f"its partial output could not be removed ({left})" if left
                   else "its partial output was removed")
        raise type(failure)(f"writing {out} failed, {cleanup}: {failure}",
                            remote_traceback=failure.remote_traceback, stage=failure.stage,
                            partition=failure.partition) from None
    except BaseException:
        _remove_tree(out)
        raise
    shutil.rmtree(staging, ignore_errors=True)
    try:
        with open(os.path.join(out, "_SUCCESS"), "w"):
            pass
    except OSError as err:
        raise _os_error(err, "cannot write the _SUCCESS marker", os.path.join(out, "_SUCCESS")) \
            from None

