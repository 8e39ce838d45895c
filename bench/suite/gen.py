"""Deterministic, seeded input data, cached under a data dir keyed by kind, size and seed.

Each generator writes into a temporary folder and renames it into place when complete, so an
interrupted run never leaves a half-written data set that a later run would trust.
"""

from __future__ import annotations

import json
import os
import shutil
import time

import numpy as np

TEXT_FILES = 8
GRAPH_FILES = 8
POINT_FILES = 8
KMEANS_K = 10
BLOB_SCALE = 2.0


def _cached(data_dir: str, name: str, build) -> str:
    """The folder data_dir/name, built by build(tmp_folder) when it is not there yet."""
    final = os.path.join(data_dir, name)
    if os.path.exists(os.path.join(final, "meta.json")):
        return final
    tmp = final + f".tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    started = time.perf_counter()
    meta = build(tmp)
    meta["generated_in_s"] = round(time.perf_counter() - started, 2)
    with open(os.path.join(tmp, "meta.json"), "w") as fh:
        json.dump(meta, fh, indent=1)
    shutil.rmtree(final, ignore_errors=True)
    os.rename(tmp, final)
    print(f"gen: {name} generated in {meta['generated_in_s']} s", flush=True)
    return final


def data_files(folder: str) -> list[str]:
    """The data files of a generated folder, in order (meta.json excluded)."""
    return sorted(os.path.join(folder, f) for f in os.listdir(folder) if f.startswith("part-"))


def _vocabulary(rng: np.random.Generator, words: int) -> list[bytes]:
    """Distinct lowercase words: a random prefix of 1-3 letters and the rank in base 26
    (so no two collide), shuffled so word length does not follow frequency."""
    letters = np.frombuffer(b"abcdefghijklmnopqrstuvwxyz", dtype=np.uint8)
    prefix_len = rng.integers(1, 4, size=words)
    prefix_chars = letters[rng.integers(0, 26, size=int(prefix_len.sum()))].tobytes()
    vocab = []
    pos = 0
    for i in range(words):
        n = int(prefix_len[i])
        suffix = b""
        j = i
        while True:
            suffix += letters[j % 26:j % 26 + 1].tobytes()
            j //= 26
            if not j:
                break
        vocab.append(prefix_chars[pos:pos + n] + suffix)
        pos += n
    order = rng.permutation(words)
    return [vocab[i] for i in order]


def text_corpus(data_dir: str, size_bytes: int, seed: int, vocab_size: int = 500_000,
                zipf_s: float = 1.05) -> str:
    """About size_bytes of text in TEXT_FILES files: words drawn from a Zipf law
    (P(rank r) ~ 1/r^s over vocab_size words), 12 words per line."""
    def build(tmp: str) -> dict:
        rng = np.random.default_rng([seed, 1])
        vocab = _vocabulary(rng, vocab_size)
        with_space = np.array([w + b" " for w in vocab], dtype=object)
        with_newline = np.array([w + b"\n" for w in vocab], dtype=object)
        weights = 1.0 / np.arange(1, vocab_size + 1, dtype=np.float64) ** zipf_s
        cdf = np.cumsum(weights)
        cdf /= cdf[-1]
        mean_len = float(np.dot(weights / weights.sum(), [len(w) + 1 for w in vocab]))
        per_file = size_bytes // TEXT_FILES
        chunk_words = 1_200_000
        total_words = 0
        for f in range(TEXT_FILES):
            written = 0
            with open(os.path.join(tmp, f"part-{f:05d}.txt"), "wb") as fh:
                while written < per_file:
                    n = max(12, min(chunk_words, int((per_file - written) / mean_len) // 12 * 12 + 12))
                    idx = np.searchsorted(cdf, rng.random(n), side="right")
                    newline = (np.arange(n) % 12) == 11
                    words = np.where(newline, with_newline[idx], with_space[idx])
                    words[-1] = vocab[idx[-1]] + b"\n"
                    blob = b"".join(words.tolist())
                    fh.write(blob)
                    written += len(blob)
                    total_words += n
        return {"kind": "text", "bytes": size_bytes, "seed": seed, "files": TEXT_FILES,
                "vocab_size": vocab_size, "zipf_s": zipf_s, "words": total_words}
    return _cached(data_dir, f"text-{size_bytes}-s{seed}", build)


def power_law_graph(data_dir: str, edges: int, seed: int) -> str:
    """edges "src dst" lines over edges // 5 pages in GRAPH_FILES files: sources uniform,
    destinations log-uniform, so in-degrees follow a power law (a few pages are linked
    from everywhere) and nearly every edge is distinct."""
    pages = max(10, edges // 5)

    def build(tmp: str) -> dict:
        rng = np.random.default_rng([seed, 2])
        per_file = -(-edges // GRAPH_FILES)
        for f in range(GRAPH_FILES):
            n = min(per_file, edges - f * per_file)
            src = rng.integers(0, pages, size=n)
            dst = (pages ** rng.random(n)).astype(np.int64) - 1
            lines = "\n".join(f"{a} {b}" for a, b in zip(src.tolist(), dst.tolist()))
            with open(os.path.join(tmp, f"part-{f:05d}.txt"), "w") as fh:
                fh.write(lines + "\n")
        return {"kind": "graph", "edges": edges, "pages": pages, "seed": seed,
                "files": GRAPH_FILES}
    return _cached(data_dir, f"graph-{edges}-s{seed}", build)


def gaussian_blobs(data_dir: str, points: int, dims: int, seed: int) -> str:
    """points lines of dims floats in POINT_FILES files: KMEANS_K Gaussian blobs with
    centers uniform in [-10, 10]^dims and standard deviation BLOB_SCALE."""
    def build(tmp: str) -> dict:
        rng = np.random.default_rng([seed, 3])
        centers = rng.uniform(-10, 10, size=(KMEANS_K, dims))
        per_file = -(-points // POINT_FILES)
        fmt = " ".join(["%.6f"] * dims)
        for f in range(POINT_FILES):
            n = min(per_file, points - f * per_file)
            labels = rng.integers(0, KMEANS_K, size=n)
            block = centers[labels] + rng.normal(scale=BLOB_SCALE, size=(n, dims))
            with open(os.path.join(tmp, f"part-{f:05d}.txt"), "w") as fh:
                fh.write("\n".join(fmt % tuple(row) for row in block.tolist()) + "\n")
        return {"kind": "points", "points": points, "dims": dims, "seed": seed,
                "files": POINT_FILES, "k": KMEANS_K}
    return _cached(data_dir, f"points-{points}x{dims}-s{seed}", build)


def initial_centers(folder: str, k: int) -> np.ndarray:
    """The first k points of the first file: every system starts Lloyd's algorithm here."""
    rows = []
    with open(data_files(folder)[0]) as fh:
        for line in fh:
            rows.append([float(x) for x in line.split()])
            if len(rows) == k:
                break
    return np.array(rows)
