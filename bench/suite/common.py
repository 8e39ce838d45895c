"""Functions every system runs the same way: record generators, KMeans partial sums,
PageRank contributions, and the compact result checks each run hands back.

A check is small and JSON-able (it travels in the results file, so a later run can be
compared with peers measured earlier): exact digests where results must be equal, samples
of values where they must be close.
"""

from __future__ import annotations

import bisect
import os
import zlib

import numpy as np

WORD_COUNT_FIELD_SEP = "\t"
RANK_SAMPLES = 1000


# ---- word count -------------------------------------------------------------------------

def read_count_files(folder: str) -> dict[str, int]:
    """Every "word<TAB>count" line of every part file under folder."""
    counts: dict[str, int] = {}
    for name in sorted(os.listdir(folder)):
        if name.startswith((".", "_")):
            continue
        with open(os.path.join(folder, name)) as fh:
            for line in fh:
                word, _, count = line.rstrip("\n").rpartition(WORD_COUNT_FIELD_SEP)
                if word in counts:
                    raise ValueError(f"word {word!r} written twice in {folder}")
                counts[word] = int(count)
    return counts


def word_count_check(counts: dict[str, int]) -> dict:
    digest = 0
    for word, count in counts.items():
        digest = (digest + zlib.crc32(f"{word}\t{count}".encode())) & 0xFFFFFFFFFFFFFFFF
    return {"distinct": len(counts), "total": sum(counts.values()), "digest": digest}


# ---- PageRank ---------------------------------------------------------------------------

def contributions(urls, rank):
    urls = list(urls)
    for url in urls:
        yield url, rank / len(urls)


def pagerank_check(ranks: dict[str, float]) -> dict:
    """Count, sum, the 20 highest ranks and the ranks of about RANK_SAMPLES pages chosen by
    a hash of their name (the same pages whichever system computed them)."""
    step = max(1, len(ranks) // RANK_SAMPLES)
    sample = {k: v for k, v in ranks.items() if zlib.crc32(str(k).encode()) % step == 0}
    top = sorted(ranks.items(), key=lambda kv: (-kv[1], kv[0]))[:20]
    return {"pages": len(ranks), "sum": float(sum(ranks.values())),
            "top": [[str(k), float(v)] for k, v in top],
            "sample": {str(k): float(v) for k, v in sample.items()}}


# ---- KMeans -----------------------------------------------------------------------------

def parse_points(lines) -> np.ndarray:
    """One numpy block from lines of floats (the lines of one partition)."""
    return parse_points_text("\n".join(lines))


def parse_points_text(text: str) -> np.ndarray:
    """One numpy block from text holding lines of floats."""
    text = text.strip()
    if not text:
        return np.zeros((0, 0))
    first = text[:text.find("\n")] if "\n" in text else text
    dims = len(first.split())
    return np.array(text.split(), dtype=np.float64).reshape(-1, dims)


def kmeans_partial(block: np.ndarray, centers: np.ndarray):
    """Per-center sums and counts of the points of block nearest each center, and the cost."""
    k, d = centers.shape
    if block.size == 0:
        return np.zeros((k, d)), np.zeros(k, dtype=np.int64), 0.0
    dist = ((block * block).sum(1)[:, None] - 2.0 * (block @ centers.T)
            + (centers * centers).sum(1)[None, :])
    labels = dist.argmin(1)
    sums = np.zeros((k, d))
    for c in range(k):
        sums[c] = block[labels == c].sum(0)
    counts = np.bincount(labels, minlength=k)
    cost = float(np.maximum(dist[np.arange(len(labels)), labels], 0.0).sum())
    return sums, counts, cost


def kmeans_merge(a, b):
    return a[0] + b[0], a[1] + b[1], a[2] + b[2]


def kmeans_new_centers(stats, centers: np.ndarray) -> np.ndarray:
    sums, counts, _ = stats
    new = centers.copy()
    nonzero = counts > 0
    new[nonzero] = sums[nonzero] / counts[nonzero][:, None]
    return new


def kmeans_check(centers: np.ndarray) -> dict:
    return {"centers": sorted(map(list, centers.tolist()))}


# ---- shuffle ----------------------------------------------------------------------------

def shuffle_records(part: int, parts: int, total: int, seed: int) -> list[tuple[int, int]]:
    """Partition part of total (key, value) records: keys uniform over total // 10 values
    (about 10 values per key), values uniform 32-bit, seeded by (seed, part)."""
    n = total // parts + (1 if part < total % parts else 0)
    rng = np.random.default_rng([seed, 4, part])
    keys = rng.integers(0, max(1, total // 10), size=n).tolist()
    values = rng.integers(0, 1 << 32, size=n).tolist()
    return list(zip(keys, values))


def group_digest(groups) -> list[int]:
    """[keys, values, digest] of (key, iterable of values) groups; the digest is a sum of
    per-key CRCs of (key, sorted values), so it does not depend on partitioning."""
    keys = values = digest = 0
    for key, vals in groups:
        vals = sorted(vals)
        keys += 1
        values += len(vals)
        digest = (digest + zlib.crc32(repr((key, vals)).encode())) & 0xFFFFFFFFFFFFFFFF
    return [keys, values, digest]


def add_digests(parts) -> dict:
    keys = values = digest = 0
    for k, v, d in parts:
        keys += k
        values += v
        digest = (digest + d) & 0xFFFFFFFFFFFFFFFF
    return {"keys": keys, "values": values, "digest": digest}


def sorted_digest(records) -> list:
    """[count, first key, last key, sorted?, digest of the (key, value) multiset] of one
    partition of sortByKey's output."""
    count = digest = 0
    first = last = None
    in_order = True
    for key, value in records:
        if last is not None and key < last:
            in_order = False
        if first is None:
            first = key
        last = key
        count += 1
        digest = (digest + zlib.crc32(b"%d %d" % (key, value))) & 0xFFFFFFFFFFFFFFFF
    return [count, first, last, in_order, digest]


def sort_check(partitions: list) -> dict:
    """Combines the partitions' sorted_digest in output order: the whole output is sorted
    when each partition is and each ends at or before where the next begins."""
    count = digest = 0
    in_order = True
    previous_last = None
    for part_count, first, last, part_sorted, part_digest in partitions:
        count += part_count
        digest = (digest + part_digest) & 0xFFFFFFFFFFFFFFFF
        in_order &= bool(part_sorted)
        if part_count:
            if previous_last is not None and first < previous_last:
                in_order = False
            previous_last = last
    return {"records": count, "sorted": in_order, "digest": digest}


def range_bounds(sample_keys: list, parts: int) -> list:
    """parts - 1 bounds splitting the sampled keys into equal ranges."""
    sample_keys = sorted(sample_keys)
    if not sample_keys:
        return []
    return [sample_keys[int(len(sample_keys) * (i + 1) / parts)] for i in range(parts - 1)]


def range_partition(bounds: list, key) -> int:
    return bisect.bisect_left(bounds, key)


# ---- tiny tasks -------------------------------------------------------------------------

def tiny(x: int) -> int:
    return x * 2 + 1
