"""jobs._inline_records (a job's inline results decoded into one list) against
the generator path it short-cuts (_frames of each entry's base64 in turn): the
same records in the same order, the same errors, and None whenever an entry is
not inline (the results are then downloaded as before)."""

import base64
import os
import pickle
import struct
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from ember import jobs  # noqa: E402


def frame(records) -> bytes:
    data = pickle.dumps(records)
    return struct.pack(">i", len(data)) + data


def entry(raw: bytes, partition: int = 0) -> dict:
    return {"partition": partition, "size": len(raw), "inline": True,
            "data": base64.b64encode(raw).decode()}


def generator_path(results):
    out = []
    for item in results:
        out.extend(jobs._frames(base64.b64decode(item["data"])))
    return out


def outcome(fn, results):
    try:
        return ("ok", fn(results))
    except Exception as err:  # noqa: BLE001 - the error is what is compared
        return ("error", type(err), str(err))


CASES = [
    [],
    [entry(frame([1, 2]))],
    [entry(frame([1]), 0), entry(frame([2, 3]), 1)],
    [entry(frame(["a", (1, 2.5)]) + frame([None]) + frame([]))],
    [entry(b"")],
    [entry(frame((7, 8)))],                                  # a tuple, iterated alike
    [entry(frame({"k": 1}))],                                # a dict: its keys
    [entry(frame(5))],                                       # not iterable
    [entry(frame([1])[:3])],                                 # a header cut short
    [entry(frame([1])[:-1])],                                # a frame past its end
    [entry(struct.pack(">i", -1) + b"xx")],                  # a negative length
    [entry(frame([1])), entry(frame([2])[:-2])],             # the second one broken
    [{"partition": 0, "data": "gA\u00e9"}],                   # non-ASCII base64
    [{"partition": 0, "data": "A"}],                          # bad padding
    [{"partition": 0, "data": 5}],                            # not text
    [{"partition": 0, "data": b"\x00" * 3}],
]


@pytest.mark.parametrize("results", CASES)
def test_inline_records_give_what_the_generators_gave(results):
    new = outcome(jobs._inline_records, results)
    old = outcome(generator_path, results)
    assert new == old


def test_results_not_all_inline_are_left_to_the_download_path():
    assert jobs._inline_records([entry(frame([1])), {"partition": 1, "size": 3}]) is None
    assert jobs._inline_records([{"partition": 0, "inline": False}, 3]) is None
