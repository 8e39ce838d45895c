"""End to end: a word count over a generated 20+ MB corpus on two workers.

The counts written by saveAsTextFile must equal collections.Counter over the
same files, word for word, and the reduce tasks must have fetched shuffle
blocks from the other worker's block manager.
"""

from __future__ import annotations

import ast
import os
from collections import Counter
from pathlib import Path

import pytest

from conftest import count_words, generate_corpus, job_stages

CORPUS_BYTES = 22_000_000
CORPUS_FILES = 4
MIN_PARTITIONS = 8
REDUCE_PARTITIONS = 4


@pytest.fixture(scope="session")
def big_corpus(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    paths = generate_corpus(tmp_path_factory.mktemp("corpus"), CORPUS_BYTES, CORPUS_FILES,
                            seed=20240601)
    assert len(paths) >= 4
    assert sum(p.stat().st_size for p in paths) >= 20 * 1024 * 1024
    return paths


@pytest.fixture(scope="module")
def wordcount(sc, gateway, big_corpus, tmp_path_factory):
    """Runs the word count once; returns what the tests below inspect."""
    folder = big_corpus[0].parent
    out = tmp_path_factory.mktemp("wordcount-out") / "counts"
    lines = sc.textFile(str(folder), minPartitions=MIN_PARTITIONS)
    counts = (lines.flatMap(lambda line: line.split())
              .map(lambda word: (word, 1))
              .reduceByKey(lambda a, b: a + b, numPartitions=REDUCE_PARTITIONS))
    before = {j["jobId"] for j in gateway.api(f"/applications/{sc.applicationId}/jobs")}
    counts.saveAsTextFile(str(out))
    jobs = [j for j in gateway.api(f"/applications/{sc.applicationId}/jobs")
            if j["jobId"] not in before]
    return {"out": out, "lines": lines, "counts": counts, "jobs": jobs}


def test_at_least_8_map_partitions(wordcount):
    assert wordcount["lines"].getNumPartitions() >= MIN_PARTITIONS
    assert wordcount["counts"].getNumPartitions() == REDUCE_PARTITIONS


def test_output_layout(wordcount):
    out: Path = wordcount["out"]
    names = sorted(os.listdir(out))
    parts = [n for n in names if n.startswith("part-")]
    assert parts == [f"part-{i:05d}" for i in range(REDUCE_PARTITIONS)], names
    assert (out / "_SUCCESS").is_file()
    assert not (out / "_temporary").exists(), names
    assert set(names) == set(parts) | {"_SUCCESS"}, f"unexpected files in the output: {names}"


def test_counts_equal_python_counter(wordcount, big_corpus):
    out: Path = wordcount["out"]
    written: Counter[str] = Counter()
    duplicates = []
    for part in sorted(out.glob("part-*")):
        with open(part, encoding="utf-8") as fh:
            for line in fh:
                word, n = ast.literal_eval(line)
                if word in written:
                    duplicates.append(word)
                written[word] = n
    assert not duplicates, f"words written more than once: {duplicates[:10]}"
    expected = count_words(big_corpus)
    assert len(expected) > 1000 and sum(expected.values()) > 2_000_000
    missing = set(expected) - set(written)
    extra = set(written) - set(expected)
    wrong = {w: (written[w], expected[w]) for w in set(expected) & set(written)
             if written[w] != expected[w]}
    assert not missing, f"{len(missing)} words missing, e.g. {sorted(missing)[:10]}"
    assert not extra, f"{len(extra)} unexpected words, e.g. {sorted(extra)[:10]}"
    assert not wrong, f"{len(wrong)} wrong counts (written, expected), e.g. " \
                      f"{dict(list(wrong.items())[:10])}"
    assert written == expected


def test_save_again_to_same_directory_fails(sc, wordcount):
    out: Path = wordcount["out"]
    before = sorted(os.listdir(out))
    with pytest.raises(Exception) as info:
        wordcount["counts"].saveAsTextFile(str(out))
    assert str(out) in str(info.value)
    assert sorted(os.listdir(out)) == before, "the existing output was modified"


def test_reduce_tasks_read_blocks_from_the_other_block_manager(sc, gateway, wordcount):
    app = sc.applicationId
    assert len(wordcount["jobs"]) == 1, wordcount["jobs"]
    job = wordcount["jobs"][0]
    assert job["status"] == "SUCCEEDED", job
    stages = job_stages(gateway, app, job["jobId"])
    assert len(stages) == 2, stages
    map_stages = [s for s in stages if s["shuffleWriteBytes"] > 0]
    reduce_stages = [s for s in stages if s["shuffleRemoteBytesRead"] > 0]
    assert len(map_stages) == 1, f"no single map stage with shuffleWriteBytes > 0: {stages}"
    assert len(reduce_stages) == 1, f"no stage with shuffleRemoteBytesRead > 0: {stages}"
    map_stage, reduce_stage = map_stages[0], reduce_stages[0]
    assert map_stage["stageId"] != reduce_stage["stageId"]
    assert map_stage["numTasks"] >= MIN_PARTITIONS
    assert reduce_stage["numTasks"] == REDUCE_PARTITIONS
    # every shuffled byte written is read once, partly local, partly remote
    assert reduce_stage["shuffleReadBytes"] == map_stage["shuffleWriteBytes"], stages
    assert (reduce_stage["shuffleLocalBytesRead"] + reduce_stage["shuffleRemoteBytesRead"]
            == reduce_stage["shuffleReadBytes"]), reduce_stage

    for stage in (map_stage, reduce_stage):
        detail = gateway.api(f"/applications/{app}/stages/{stage['stageId']}")
        assert detail["stageId"] == stage["stageId"]
        ok = [t for t in detail["tasks"] if t["status"] == "SUCCESS"]
        assert len(ok) == stage["numTasks"], detail["tasks"]
        executors = {t["executorId"] for t in ok}
        assert executors == {"worker-0", "worker-1"}, \
            f"stage {stage['stageId']} ran only on {executors}"
    reduce_tasks = gateway.api(f"/applications/{app}/stages/{reduce_stage['stageId']}")["tasks"]
    assert any(t["shuffleRemoteBytesRead"] > 0 for t in reduce_tasks), reduce_tasks


@pytest.mark.parametrize("sep", [None, " "])
def test_counting_from_frames_writes_what_the_record_loop_writes(sc, gateway, big_corpus,
                                                                 tmp_path, sep):
    """flatMap(split) -> (w, 1) -> reduceByKey(add) is counted from the text frames in C
    (ember.fused_text); the same job with a split the driver does not recognise runs the
    record loops. Both write the same lines and their map stages read the same lines and
    write the same shuffle bytes (the same records in the same order)."""
    folder = str(big_corpus[0].parent)
    app = sc.applicationId

    def run(name, split):
        out = tmp_path / name
        before = {j["jobId"] for j in gateway.api(f"/applications/{app}/jobs")}
        (sc.textFile(folder, minPartitions=MIN_PARTITIONS).flatMap(split)
         .map(lambda word: (word, 1)).reduceByKey(lambda a, b: a + b, REDUCE_PARTITIONS)
         .saveAsTextFile(str(out)))
        job = [j for j in gateway.api(f"/applications/{app}/jobs") if j["jobId"] not in before]
        stages = job_stages(gateway, app, job[0]["jobId"])
        map_stage = [s for s in stages if s["shuffleWriteBytes"] > 0][0]
        lines = sorted(line for part in out.glob("part-*") for line in part.read_text().splitlines())
        return lines, {k: map_stage[k] for k in ("inputRecords", "outputRecords",
                                                   "shuffleWriteBytes")}

    if sep is None:
        fused = run("fused", lambda line: line.split())
        loops = run("loops", lambda line: line.split() + [])
    else:
        fused = run("fused", lambda line: line.split(" "))
        loops = run("loops", lambda line: line.split(" ") + [])
    assert len(fused[0]) > 1000
    assert fused == loops
