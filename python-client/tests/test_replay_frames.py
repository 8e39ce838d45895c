"""ReplayFrames gives back every record of the frames it was handed, in order,
from memory or from its spill file, as often as asked."""

import doctest
import os
import pickle
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from ember import replay_frames  # noqa: E402
from ember.replay_frames import ReplayFrames  # noqa: E402


def test_doctests():
    assert doctest.testmod(replay_frames).failed == 0


@pytest.mark.parametrize("limit", [1 << 30, 100, 0])
def test_records_come_back_in_order_from_memory_or_the_file(tmp_path, limit):
    batches = [[(str(i), j) for j in range(i)] for i in range(40)]
    frames = ReplayFrames(limit, str(tmp_path), pickle.loads)
    for batch in batches:
        frames.add(b"\0\0\0\1" + pickle.dumps(batch), 4)
    want = [record for batch in batches for record in batch]
    assert list(frames.records()) == want
    assert list(frames.records()) == want          # read again
    frames.close()
    assert list(tmp_path.iterdir()) == []          # the spill file was unlinked
