"""Input paths and splits for textFile, with Hadoop's rules.

An entry of a textFile argument is a local file, directory or glob (``file://``
optional), or an ``http://`` / ``https://`` URL. A URL names one object: its size
comes from a HEAD request, and it is split like a local file when the server
takes byte ranges (``Accept-Ranges: bytes``), else read as one split.
"""

from __future__ import annotations

import glob
import os
import urllib.error
import urllib.request
from typing import NamedTuple

from ember.errors import EmberError

# Hadoop's local file system block size and split slop.
BLOCK_SIZE = 32 * 1024 * 1024
SPLIT_SLOP = 1.1
HTTP_TIMEOUT_S = 30
_URL_SCHEMES = ("http://", "https://")


class InputPathError(EmberError, FileNotFoundError):
    """An input path matches no file, or an input URL names no object (HTTP 404/410)."""


class InputURLError(EmberError, OSError):
    """An input URL cannot be read: the server failed, refused, or gave no size."""


class _KeepHead(urllib.request.HTTPRedirectHandler):
    """Follows redirects of a HEAD request with HEAD (urllib would switch to GET)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[override]
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None and req.get_method() == "HEAD":
            new.method = "HEAD"
        return new


class _Input(NamedTuple):
    path: str
    size: int
    splittable: bool


def is_url(entry: str) -> bool:
    """True for an ``http://`` or ``https://`` entry (any letter case in the scheme)."""
    return entry[:8].lower().startswith(_URL_SCHEMES)


def expand_paths(name: str) -> list[str]:
    """Absolute file paths and URLs of a textFile argument, in sorted order per entry.

    Example
    -------
    >>> expand_paths("http://example.com/a.txt")
    ['http://example.com/a.txt']
    """
    found: list[str] = []
    for entry in name.split(","):
        entry = entry.strip()
        if is_url(entry):
            found.append(entry)
            continue
        if entry.startswith("file://"):
            entry = entry[len("file://"):]
        matches = sorted(glob.glob(entry)) if glob.has_magic(entry) else [entry]
        if not matches or not all(os.path.exists(m) for m in matches):
            raise InputPathError(f"Input path does not exist: {os.path.abspath(entry)}")
        for match in matches:
            found.extend(_files_under(os.path.abspath(match)))
    return found


def _files_under(path: str) -> list[str]:
    if not os.path.isdir(path):
        return [path]
    names = sorted(n for n in os.listdir(path) if not n.startswith(("_", ".")))
    return [os.path.join(path, n) for n in names if os.path.isfile(os.path.join(path, n))]


def url_size(url: str) -> tuple[int, bool]:
    """(size in bytes, whether the server takes byte ranges) of the object at url.

    Asks with HEAD (redirects followed). Raises InputPathError when there is no
    such object, InputURLError when the server fails or gives no Content-Length.
    """
    request = urllib.request.Request(url, method="HEAD",
                                     headers={"User-Agent": "ember-driver"})
    try:
        with urllib.request.build_opener(_KeepHead).open(request, timeout=HTTP_TIMEOUT_S) as resp:
            length = resp.headers.get("Content-Length")
            ranges = resp.headers.get("Accept-Ranges", "")
    except urllib.error.HTTPError as err:
        err.close()
        if err.code in (404, 410):
            raise InputPathError(
                f"Input URL does not exist: {url} (HTTP {err.code} {err.reason})") from None
        raise InputURLError(
            f"cannot read input URL {url}: the server answered HTTP {err.code} {err.reason}"
        ) from None
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise InputURLError(f"cannot read input URL {url}: {reason}") from None
    if length is None or not length.strip().isdigit():
        raise InputURLError(
            f"cannot read input URL {url}: the server gives no Content-Length, so the input "
            "cannot be split; download it and read the local file instead")
    return int(length), "bytes" in ranges.lower().replace(",", " ").split()


def _inputs(name: str) -> list[_Input]:
    inputs = []
    for path in expand_paths(name):
        if is_url(path):
            inputs.append(_Input(path, *url_size(path)))
        else:
            inputs.append(_Input(path, os.path.getsize(path), True))
    return inputs


def text_splits(name: str, min_partitions: int) -> list[dict]:
    """Splits as Hadoop's FileInputFormat computes them.

    Each split is ``{"path", "start", "length"}``; a URL whose server takes no
    byte ranges is one split however large it is.

    Example
    -------
    >>> import tempfile
    >>> with tempfile.NamedTemporaryFile("w", suffix=".txt") as fh:
    ...     _ = fh.write("x" * 100)
    ...     fh.flush()
    ...     [(s["start"], s["length"]) for s in text_splits(fh.name, 2)]
    [(0, 50), (50, 50)]
    """
    inputs = _inputs(name)
    goal = sum(i.size for i in inputs) // max(min_partitions, 1)
    split_size = max(1, min(goal, BLOCK_SIZE))
    splits = []
    for path, size, splittable in inputs:
        start = 0
        while splittable and size - start > split_size * SPLIT_SLOP:
            splits.append({"path": path, "start": start, "length": split_size})
            start += split_size
        if size - start > 0 or size == 0:
            splits.append({"path": path, "start": start, "length": size - start})
    return splits
