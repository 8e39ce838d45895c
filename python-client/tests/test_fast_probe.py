"""The hash join's probe loop in C (_ember_fast.probe, used by ember.join._hash_join
and _probe inside ember-pyexec) against the Python loop it replaces: the same
records in the same order, of the same types, and the same errors after the same
records."""

import itertools
import random

import pytest

from fast_extension import _ember_fast

from ember import join, shuffle  # noqa: E402
from ember.lineage import SIDE_BOUNDARY  # noqa: E402

OUTER = [(False, False), (True, False), (False, True), (True, True)]


def _run(fast, make):
    """Lists the records of the generator make() returns, and the exception that ended it."""
    saved = shuffle._ember_fast
    shuffle._ember_fast = _ember_fast if fast else None
    out = []
    try:
        for record in make():
            out.append(record)
    except Exception as e:      # noqa: BLE001 - the error is part of what is compared
        return out, (type(e), str(e))
    finally:
        shuffle._ember_fast = saved
    return out, None


def _same(make):
    fast, slow = _run(True, make), _run(False, make)
    assert fast == slow
    assert [type(r) for r in fast[0]] == [type(r) for r in slow[0]]
    assert all(type(r[1]) is tuple for r in fast[0])
    return fast


def _hash_join(left, right, outer_left, outer_right):
    # No dispatch: the left side stays under the memory limit.
    return lambda: join._hash_join(iter(list(left) + [SIDE_BOUNDARY] + list(right)),
                                   None, outer_left, outer_right)


def _probe(left, right, outer_left, outer_right):
    index, _ = join._left_index(list(left))
    return lambda: join._probe(index, iter(list(right)), outer_left, outer_right)


def _pairs(rng, n, keys):
    return [(rng.choice(keys), rng.choice([None, rng.random(), "s", (1, 2), [3]]))
            for _ in range(n)]


@pytest.mark.parametrize("outer_left, outer_right", OUTER)
@pytest.mark.parametrize("path", [_hash_join, _probe])
def test_probe_gives_the_python_records_in_order(path, outer_left, outer_right):
    rng = random.Random(11 + 2 * outer_left + outer_right)
    keys = [None, 0, 1, 2.5, "a", "b", (1, "x"), b"z", True, 10**30] + list(range(3, 60))
    for n in [0, 1, 63, 64, 65, 129, 700]:
        left = _pairs(rng, rng.randint(0, n), keys)
        right = _pairs(rng, n, keys)
        out, error = _same(path(left, right, outer_left, outer_right))
        assert error is None
        assert len(out) >= sum(1 for k, _ in right if k in dict(left))


def _failing(records, error, at):
    for i, record in enumerate(records):
        if i == at:
            raise error
        yield record


@pytest.mark.parametrize("outer_left, outer_right", OUTER)
@pytest.mark.parametrize("path", [_hash_join, _probe])
@pytest.mark.parametrize("bad", [("k", 1, 2), ("k",), 5, (["unhashable"], 1), None])
def test_a_bad_right_record_raises_after_the_same_records(path, outer_left, outer_right, bad):
    left = [(i % 50, i) for i in range(120)]
    right = [(i % 70, -i) for i in range(100)]
    right.insert(90, bad)
    out, error = _same(path(left, right, outer_left, outer_right))
    assert error is not None and len(out) > 64


@pytest.mark.parametrize("path", [_hash_join, _probe])
def test_an_error_of_the_right_iterator_comes_after_the_records_before_it(path):
    left = [(i % 50, i) for i in range(120)]
    right = [(i % 70, -i) for i in range(200)]
    out, error = _same(lambda: _with_right(path, left, right))
    assert error == (KeyError, "'boom'") and len(out) > 64


def _with_right(path, left, right):
    failing = _failing(iter(right), KeyError("boom"), 130)
    if path is _probe:
        index, _ = join._left_index(list(left))
        return join._probe(index, failing, False, True)
    return join._hash_join(itertools.chain(left, [SIDE_BOUNDARY], failing), None, False, True)


def test_probe_rejects_what_it_cannot_read():
    with pytest.raises(TypeError, match="probe needs"):
        _ember_fast.probe({}, dict, iter([]), [], None, False, 64)
    with pytest.raises(TypeError, match="probe needs"):
        _ember_fast.probe({}, list, iter([]), [], [], False, 64)
