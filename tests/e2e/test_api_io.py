"""Reading and writing files: textFile, wholeTextFiles, binaryFiles, binaryRecords,
saveAsTextFile, saveAsPickleFile and pickleFile, with PySpark's results."""

from __future__ import annotations

import gzip
import json
import os
import pickle
import random
import struct

import numpy as np
import pytest

import ember
from conftest import job_stages, last_job
from ember.files import InputPathError


def _write(folder, name, content, mode="w"):
    path = folder / name
    with open(path, mode) as fh:
        fh.write(content)
    return str(path)


def test_text_file_sources_and_partitions(sc, tmp_path):
    for i in range(3):
        _write(tmp_path, f"part{i}.txt", "".join(f"{i}-{j}\n" for j in range(100)))
    _write(tmp_path, "other.log", "log line\r\nsecond\r\n")
    _write(tmp_path, "_SUCCESS", "")
    everything = sc.textFile(str(tmp_path))
    assert everything.count() == 302
    assert everything.getNumPartitions() >= 2                 # defaultMinPartitions
    assert sc.textFile(str(tmp_path / "part*.txt")).count() == 300
    both = sc.textFile(f"{tmp_path}/part0.txt,{tmp_path}/other.log")
    assert both.collect()[-2:] == ["log line", "second"]
    assert sc.textFile(str(tmp_path / "part1.txt"), minPartitions=5).getNumPartitions() >= 5
    assert sc.textFile(str(tmp_path / "part1.txt"), 5).collect() == [f"1-{j}" for j in range(100)]


def test_text_file_unicode_and_bytes(sc, tmp_path):
    path = _write(tmp_path, "u.txt", "héllo wörld\nσ ✓\n", mode="w")
    assert sc.textFile(path).collect() == ["héllo wörld", "σ ✓"]
    raw = sc.textFile(path, use_unicode=False).collect()
    assert raw == ["héllo wörld".encode(), "σ ✓".encode()]
    assert all(isinstance(line, bytes) for line in raw)


def test_missing_input_paths_fail_naming_the_path(sc, tmp_path):
    for reader in (sc.textFile, sc.wholeTextFiles, sc.binaryFiles, sc.pickleFile):
        with pytest.raises(InputPathError, match="nope"):
            reader(str(tmp_path / "nope"))
    with pytest.raises(FileNotFoundError):
        sc.binaryRecords(str(tmp_path / "nope"), 4)


def test_whole_text_files(sc, tmp_path):
    d = tmp_path / "whole"
    d.mkdir()
    p1, p2 = _write(d, "1.txt", "1"), _write(d, "2.txt", "2")
    result = sc.wholeTextFiles(str(d)).collect()
    result.sort()
    assert result == [("file:" + p1, "1"), ("file:" + p2, "2")]
    assert sc.wholeTextFiles(str(d), use_unicode=False).collect() == \
        [(b"file:" + p1.encode(), b"1"), (b"file:" + p2.encode(), b"2")]
    multi = sc.wholeTextFiles(p1 + "," + p2).values().collect()
    assert multi == ["1", "2"]


def test_whole_text_files_partitions_and_sizes(sc, tmp_path):
    d = tmp_path / "four"
    d.mkdir()
    for name in "abcd":
        _write(d, f"{name}.txt", name * 10)
    files = sc.wholeTextFiles(str(d))
    assert files.getNumPartitions() == 2                      # defaultMinPartitions
    assert files.glom().map(lambda p: [os.path.basename(k) for k, _ in p]).collect() == \
        [["a.txt", "b.txt"], ["c.txt", "d.txt"]]
    assert sc.wholeTextFiles(str(d), 4).getNumPartitions() == 4
    assert sc.wholeTextFiles(str(d), 3).glom().map(len).collect() == [2, 2]   # 14-byte splits
    big = d / "big.txt"
    big.write_text("x" * 5_000_000)
    sizes = dict(sc.wholeTextFiles(str(d), 2).mapValues(len).collect())
    assert sizes["file:" + str(big)] == 5_000_000
    # only file names travel with the job: each task reads its files
    names = sc.wholeTextFiles(str(d), 2)
    assert len(json.dumps(names.prev._node())) < 2000
    empty = tmp_path / "empty"
    empty.mkdir()
    assert sc.wholeTextFiles(str(empty)).getNumPartitions() == 0


def test_binary_files_and_records(sc, tmp_path):
    d = tmp_path / "bin"
    d.mkdir()
    path = _write(d, "r.bin", bytes(range(256)) * 4, mode="wb")
    assert sc.binaryFiles(str(d)).collect() == [("file:" + path, bytes(range(256)) * 4)]
    records = sc.binaryRecords(path, 16)
    assert records.count() == 64
    assert records.first() == bytes(range(16))
    assert [struct.unpack(">I", r[:4])[0] for r in records.take(2)] == \
        [0x00010203, 0x10111213]
    bad = _write(d, "bad.bin", b"x" * 10, mode="wb")
    with pytest.raises(ember.JobFailedError, match="partial record"):
        sc.binaryRecords(bad, 4).collect()


def test_save_as_text_file(sc, tmp_path):
    out = tmp_path / "text"
    sc.parallelize(range(10)).saveAsTextFile(str(out))
    assert sorted(os.listdir(out)) == ["_SUCCESS", "part-00000", "part-00001"]
    lines = "".join(sorted(open(out / p).read() for p in os.listdir(out) if p.startswith("part")))
    assert sorted(lines.split()) == [str(i) for i in range(10)]
    assert sc.textFile(str(out)).map(int).collect() == list(range(10))

    out2 = tmp_path / "text2"
    sc.parallelize(["", "foo", "", "bar", ""]).saveAsTextFile(str(out2))
    lines = [line for p in os.listdir(out2) if "part" in p
             for line in open(out2 / p).read().splitlines(keepends=True)]
    assert "".join(sorted(lines)) == "\n\n\nbar\nfoo\n"

    out3 = tmp_path / "mixed"
    sc.parallelize([b"raw bytes", "tête", (1, None), 2.5], 4).saveAsTextFile(str(out3))
    assert open(out3 / "part-00000", "rb").read() == b"raw bytes\n"
    assert open(out3 / "part-00001", "rb").read() == "tête\n".encode()
    assert open(out3 / "part-00002").read() == "(1, None)\n"

    with pytest.raises(ember.EmberError, match="already exists") as info:
        sc.parallelize([1]).saveAsTextFile(str(out))
    assert isinstance(info.value, FileExistsError)


def test_save_as_text_file_empty_partitions_and_compression(sc, tmp_path):
    out = tmp_path / "sparse"
    sc.parallelize([1, 2], 4).saveAsTextFile(str(out))
    parts = sorted(p for p in os.listdir(out) if p.startswith("part-"))
    assert parts == [f"part-{i:05d}" for i in range(4)]
    assert [os.path.getsize(out / p) for p in parts] == [0, 2, 0, 2]
    gz = tmp_path / "gz"
    sc.parallelize(["foo", "bar"]).saveAsTextFile(str(gz), "org.apache.hadoop.io.compress.GzipCodec")
    names = sorted(p for p in os.listdir(gz) if p.startswith("part-"))
    assert names == ["part-00000.gz", "part-00001.gz"]
    assert "".join(sorted(gzip.open(gz / n, "rt").read() for n in names)) == "bar\nfoo\n"
    with pytest.raises(ember.EmberError, match="not supported"):
        sc.parallelize([1]).saveAsTextFile(str(tmp_path / "x"), "com.example.Lz9Codec")


def test_pickle_file_round_trip(sc, tmp_path):
    path = tmp_path / "pickle_file"
    sc.parallelize(range(10)).saveAsPickleFile(str(path), 3)
    assert sorted(sc.pickleFile(str(path), 3).collect()) == list(range(10))
    assert sorted(os.listdir(path)) == ["_SUCCESS", "part-00000", "part-00001"]

    records = [None, (1, "un", 2.5), {"k": [1, 2, {3}]}, "ünïcödé", b"\x00\xff",
               np.arange(6).reshape(2, 3), [], (), 10 ** 30]
    out = tmp_path / "types"
    sc.parallelize(records, 4).saveAsPickleFile(str(out))
    back = sc.pickleFile(str(out))
    assert back.getNumPartitions() == 4                        # one partition per part file
    got = back.collect()
    assert len(got) == len(records)
    for want, have in zip(records, got):
        if isinstance(want, np.ndarray):
            assert (want == have).all() and have.dtype == want.dtype
        else:
            assert want == have

    # the format: frames of a 4-byte big-endian length and a pickled batch
    with open(path / "part-00000", "rb") as fh:
        (length,) = struct.unpack(">i", fh.read(4))
        assert pickle.loads(fh.read(length)) == [0, 1, 2]
    big = tmp_path / "batched"
    sc.parallelize(range(5000), 2).saveAsPickleFile(str(big), 0)
    assert sc.pickleFile(str(big)).collect() == list(range(5000))
    with pytest.raises(ember.EmberError, match="already exists"):
        sc.parallelize([1]).saveAsPickleFile(str(path))


def test_text_lines_split_into_tuples_in_c_are_the_lambdas_records(sc, gateway, tmp_path):
    """textFile(...).map(lambda line: tuple(line.split())) (and with a one-character
    separator) is split from the text frames in C (ember.fused_text.split_tuples):
    the same records, in the same order, of the same types as a lambda the driver does
    not recognise, and the map stage reads the same number of lines."""
    rng = random.Random(3)
    pieces = ["1 2", "a\tb", " x  y ", "", "p,q,,r", "\x1cz\x1f", "tail\r"]
    lines = [rng.choice(pieces) + f" {i}" * rng.randint(0, 12) for i in range(200_000)]
    lines[150_000:150_010] = ["über alles", "k\x85v,é"] * 5      # a non-ASCII frame or two
    path = _write(tmp_path, "edges.txt", "\n".join(lines) + "\n", mode="w")
    app = sc.applicationId

    def run(f):
        rdd = sc.textFile(path, 3).map(f)
        records = rdd.collect()
        count = rdd.count()
        stage = job_stages(gateway, app, last_job(gateway, app)["jobId"])[0]
        return records, count, stage["inputRecords"]

    fused = run(lambda line: tuple(line.split()))
    loops = run(lambda line: tuple(line.split() + []))
    assert [[(type(x), x) for x in r] for r in fused[0]] == \
        [[(type(x), x) for x in r] for r in loops[0]]
    assert fused[1:] == loops[1:] == (len(lines), len(lines))
    assert fused[0][:2] == [tuple(line.split()) for line in lines[:2]]
    comma = run(lambda line: tuple(line.split(",")))
    assert comma[0] == run(lambda line: tuple(line.split(",") + []))[0]
    assert ("p", "q", "", "r") in {r[:4] for r in comma[0]}


def test_distinct_of_split_lines_written_from_the_text_is_the_object_paths(sc, gateway, tmp_path):
    """textFile(...).map(lambda line: tuple(line.split())).distinct(n): once its map side
    stops combining (most records new), the frames after are written from the text in C
    (_ember_fast.SplitPairsWriter). Each partition holds the same records, in the same
    order, of the same types, as with a lambda the driver does not recognise, and both
    stages count the same records in and out (a non-ASCII frame goes the object way)."""
    rng = random.Random(8)
    edges = [f"{rng.randint(0, 400_000)} {rng.randint(0, 400_000)}" for _ in range(500_000)]
    edges[10:20] = edges[:10]                            # repeats the map side combines
    edges[300_000:300_050] = edges[1000:1050]            # and repeats only the reduce side sees
    edges[200_000:200_004] = ["über 1", "1 \u00e9", "a\tb c", ""]
    path = _write(tmp_path, "edges.txt", "\r\n".join(edges[:250_000]) + "\r\n"
                  + "\n".join(edges[250_000:]), mode="w")
    app = sc.applicationId

    def run(f):
        parts = sc.textFile(path, 2).map(f).distinct(3).glom().collect()
        stages = job_stages(gateway, app, last_job(gateway, app)["jobId"])
        counts = sorted((s["inputRecords"], s["outputRecords"]) for s in stages)
        return [[(type(x), x, [type(s) for s in x]) for x in part] for part in parts], counts

    fused = run(lambda line: tuple(line.split()))
    loops = run(lambda line: tuple(line.split() + []))
    assert fused == loops
    assert sum(map(len, fused[0])) == len(set(tuple(e.split()) for e in edges))
    assert fused[1][-1] == (len(edges), len(edges) - 10)
