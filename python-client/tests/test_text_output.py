"""saveAsTextFile's line writer (ember.rdd._write_text_lines), which joins and
encodes batches of str at once, against the line-by-line loop it replaced."""

import io
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "python-client"))

from ember.rdd import _write_text_lines  # noqa: E402


def _line_by_line(fh, iterator):
    for x in iterator:
        if isinstance(x, bytes):
            fh.write(x)
        else:
            fh.write((x if isinstance(x, str) else str(x)).encode("utf-8"))
        fh.write(b"\n")


class Shouting(str):
    def encode(self, *args):          # a subclass's own encode is what the loop called
        return self.upper().encode(*args)


def _written(write, records):
    fh = io.BytesIO()
    write(fh, iter(records))
    return fh.getvalue()


@pytest.mark.parametrize("records", [
    [],
    [f"word{i}\t{i}" for i in range(20_000)],
    ["é", "", "a\nb", "x" * 3_000_000, "y"],
    ["a", b"raw\xff", 3, None, 1.5, ("t", 1), Shouting("quiet"), "z"] * 50,
])
def test_same_bytes_as_line_by_line(records):
    assert _written(_write_text_lines, records) == _written(_line_by_line, records)


def test_same_error_for_a_str_that_cannot_be_encoded():
    records = ["ok", "bad\ud800", "after"]
    with pytest.raises(UnicodeEncodeError) as fast:
        _written(_write_text_lines, records)
    with pytest.raises(UnicodeEncodeError) as slow:
        _written(_line_by_line, records)
    assert str(fast.value) == str(slow.value)
