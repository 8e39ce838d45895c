"""The co-partitioned hash join (ember.join._hash_join) against a plain grouping join,
in memory and when the left side passes the memory limit (the spilling fallback)."""

import os
import random
import sys
from collections import defaultdict

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from ember import join  # noqa: E402
from ember.lineage import SIDE_BOUNDARY  # noqa: E402
from ember.resultiterable import ResultIterable  # noqa: E402


def _reference(left, right, outer_left, outer_right):
    lv, rv = defaultdict(list), defaultdict(list)
    for k, v in left:
        lv[k].append(v)
    for k, w in right:
        rv[k].append(w)
    out = []
    for k in set(lv) | set(rv):
        vs = lv.get(k) or ([None] if outer_right else [])
        ws = rv.get(k) or ([None] if outer_left else [])
        out += [(k, (v, w)) for v in vs for w in ws]
    return sorted(out, key=repr)


def _dispatch(outer_left, outer_right):
    def dispatch(values: ResultIterable):
        vbuf, wbuf = join._split(values)
        return join._pairs(vbuf if len(vbuf) or not outer_right else [None],
                           wbuf if len(wbuf) or not outer_left else [None])
    return dispatch


@pytest.mark.parametrize("limit", [512 << 20, 2 << 10])
@pytest.mark.parametrize("outer_left, outer_right", [(False, False), (True, False),
                                                     (False, True), (True, True)])
def test_hash_join_equals_a_grouping_join(monkeypatch, limit, outer_left, outer_right):
    monkeypatch.setattr(join, "task_memory_limit", lambda: limit)
    rng = random.Random(limit + 2 * outer_left + outer_right)
    for _ in range(30):
        left = [(rng.randint(0, 40), rng.random()) for _ in range(rng.randint(0, 300))]
        right = [(rng.randint(0, 40), rng.random()) for _ in range(rng.randint(0, 300))]
        records = iter(left + [SIDE_BOUNDARY] + right)
        got = list(join._hash_join(records, _dispatch(outer_left, outer_right),
                                   outer_left, outer_right))
        assert sorted(got, key=repr) == _reference(left, right, outer_left, outer_right)


@pytest.mark.parametrize("outer_left,outer_right", [(False, False), (True, False),
                                                    (False, True), (True, True)])
def test_index_of_a_cached_left_side_gives_the_same_records_in_the_same_order(
        outer_left, outer_right):
    """_left_index + _probe (the left side kept as objects, indexed once) against
    _hash_join over the same records: equal lists, order included."""
    rng = random.Random(11)
    left = [(rng.randrange(40), [i]) for i in range(300)] + [(None, "none"), ((1, 2), "tuple")]
    right = [(rng.randrange(60), i * 0.5) for i in range(200)] + [((1, 2), "t"), ("x", 0)]
    streamed = list(join._hash_join(iter(left + [SIDE_BOUNDARY] + right), None, outer_left,
                                    outer_right))
    index, size = join._left_index(left)
    assert size > 0
    for _ in range(2):                 # the index is reused by later tasks as it is
        assert list(join._probe(index, iter(right), outer_left, outer_right)) == streamed
    assert sorted(streamed, key=repr) == _reference(left, right, outer_left, outer_right)
