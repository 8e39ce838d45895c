"""groupByKey's reduce side on a real cluster, where str and bytes keys are grouped in
_ember_fast.PairGroups (services/pyexec/pyexec_groups.c) and other keys in the dict:
the groups Python's own grouping gives, values in record order (one map task, so the
reduce side reads them in that order), keys of the same types, in memory and spilling."""

from __future__ import annotations

import contextlib
import sys
from http import HTTPMethod     # a str subclass that pickles by reference: equal to "GET"

import cloudpickle

from conftest import Gateway, job_stages, last_job
from ember import SparkContext
from ember.shuffle import task_spill_metrics

# The tests' functions run on the workers, which cannot import this module.
cloudpickle.register_pickle_by_value(sys.modules[__name__])


@contextlib.contextmanager
def _worker_memory(sc: SparkContext, value: str):
    before = sc._conf.get("spark.python.worker.memory")
    sc._conf.set("spark.python.worker.memory", value)
    try:
        yield
    finally:
        if before is None:
            sc._conf._settings.pop("spark.python.worker.memory", None)
        else:
            sc._conf.set("spark.python.worker.memory", before)


def _expected(records):
    groups: dict = {}
    for k, v in records:
        groups.setdefault(k, []).append(v)
    return groups


def _grouped(sc: SparkContext, records, partitions: int):
    """{key: values} and [(key type, values)] sorted, and the reduce tasks' spills."""
    def subclassed(kv):
        return (HTTPMethod(kv[0]), kv[1]) if kv[1] == "subclass" else kv

    def report(iterator):
        rows = [(str(k) if isinstance(k, str) else k, type(k).__name__, list(vs))
                for k, vs in iterator]
        return [(rows, task_spill_metrics()["spills"])]
    parts = (sc.parallelize(records, 1).map(subclassed).groupByKey(partitions)
             .mapPartitions(report).collect())
    rows = [row for part, _ in parts for row in part]
    return rows, sum(spills for _, spills in parts)


def _check(rows, records):
    records = [(HTTPMethod(k), v) if v == "subclass" else (k, v) for k, v in records]
    expected = _expected(records)
    assert len(rows) == len(expected)
    for k, type_name, values in rows:
        assert values == expected[k]
        # the key object is the first record's: its type too
        first = next(key for key, _ in records if key == k and hash(key) == hash(k))
        assert type_name == type(first).__name__


def test_str_bytes_and_other_keys_group_as_in_python(sc: SparkContext) -> None:
    records = []
    for i in range(3000):
        records.append((str(i % 97), i))
        records.append((("GET", "POST", "PUT")[i % 3], i))
        records.append(("é" + str(i % 13), (i, "x")))
        records.append((str(i % 11).encode(), [i]))
        if i % 100 == 50:          # after a first stretch of str and bytes keys
            records.append((i % 7, None))
            records.append((("GET", "POST")[i % 2], "subclass"))   # an HTTPMethod key
    rows, spills = _grouped(sc, records, 3)
    _check(rows, records)
    assert spills == 0


def test_str_keys_group_as_in_python_while_spilling(sc: SparkContext) -> None:
    records = [(f"page{(i * 7919) % 10_000}", f"to{i}") for i in range(60_000)]
    with _worker_memory(sc, "2m"):
        rows, spills = _grouped(sc, records, 2)
    _check(rows, records)
    assert spills > 0


def _served_from_objects(gw: Gateway, sc: SparkContext) -> int:
    """Inputs of the last job served from a pyexec's kept objects."""
    job = last_job(gw, sc.applicationId)
    return sum(s.get("objectCacheInputs", 0)
               for s in job_stages(gw, sc.applicationId, job["jobId"]))


def test_equal_str_values_are_one_object_in_a_cached_partition(sc: SparkContext,
                                                               gateway: Gateway) -> None:
    # PageRank's links: a url per edge, each decoded from the shuffle as its own str.
    # The cached groups hold one object per equal exact str (so that a later dict of
    # them matches keys by identity); the values are Python's grouping's, exact strs.
    records = [(str(i % 50), str((i * 7919) % 400)) for i in range(20_000)]
    links = sc.parallelize(records, 2).groupByKey(2).cache()

    def identities(iterator):
        values = [v for _, vs in iterator for v in vs]
        strs = [v for v in values if type(v) is str]
        return [(len(values), len(strs), len({id(v) for v in strs}), len(set(strs)))]
    for served in (0, 2):                   # computed, then served from the kept objects
        counts = links.mapPartitions(identities).collect()
        # read back from the block's bytes, every value would be a fresh str again
        assert _served_from_objects(gateway, sc) == served
        assert sum(c[0] for c in counts) == sum(c[1] for c in counts) == len(records)
        assert all(ids == distinct for _, _, ids, distinct in counts)
    expected = _expected(records)
    got = dict(links.mapValues(list).collect())
    assert set(got) == set(expected)
    assert all(sorted(got[k]) == sorted(expected[k]) for k in expected)


def test_values_that_rarely_repeat_are_grouped_as_in_python(sc: SparkContext) -> None:
    # 4,000 values in equal pairs, then new ones: sharing stops after the first
    # 20,000 (too few repeats), the groups are Python's either way.
    records = [(str(i % 100), "v" + str(i // 2 if i < 4000 else i)) for i in range(60_000)]

    def identities(iterator):
        strs = [v for _, vs in iterator for v in vs]
        return [(len(strs), len({id(v) for v in strs}), len(set(strs)))]
    counts = sc.parallelize(records, 1).groupByKey(1).mapPartitions(identities).collect()
    assert counts == [(60_000, 58_000, 58_000)]    # the pairs before the stop are shared
    rows, spills = _grouped(sc, records, 2)
    _check(rows, records)
    assert spills == 0
