"""Generates the demo inputs: a text corpus and a link graph, deterministically.

    /usr/bin/python3 examples/gen_data.py corpus DIR [--files 4] [--mb 8]
    /usr/bin/python3 examples/gen_data.py graph FILE [--pages 2000] [--links 20000]
    /usr/bin/python3 examples/gen_data.py points FILE [--points 100000]
"""

import argparse
import os
import random


def vocabulary(rng, size=5000):
    letters = "abcdefghijklmnopqrstuvwxyz"
    words = set()
    while len(words) < size:
        words.add("".join(rng.choice(letters) for _ in range(rng.randint(2, 9))))
    return sorted(words)


def write_corpus(folder, files, megabytes, seed=7):
    rng = random.Random(seed)
    words = vocabulary(rng)
    weights = [1.0 / (rank + 1) for rank in range(len(words))]   # Zipf-like
    os.makedirs(folder, exist_ok=True)
    per_file = megabytes * 1024 * 1024 // files
    for i in range(files):
        with open(os.path.join(folder, f"part-{i:02d}.txt"), "w") as fh:
            written = 0
            while written < per_file:
                batch = rng.choices(words, weights, k=10000)
                lines = []
                pos = 0
                while pos < len(batch):
                    n = rng.randint(5, 15)
                    lines.append(" ".join(batch[pos:pos + n]))
                    pos += n
                text = "\n".join(lines) + "\n"
                fh.write(text)
                written += len(text)


def write_graph(path, pages, links, seed=11):
    rng = random.Random(seed)
    with open(path, "w") as fh:
        for _ in range(links):
            src = rng.randrange(pages)
            dst = int(rng.paretovariate(1.2)) % pages   # a few popular pages
            fh.write(f"page{src} page{dst}\n")


def write_points(path, count, k=4, dims=2, seed=5):
    """Points around k well-separated centers (blobs)."""
    rng = random.Random(seed)
    centers = [[rng.uniform(-50, 50) for _ in range(dims)] for _ in range(k)]
    with open(path, "w") as fh:
        for i in range(count):
            c = centers[i % k]
            fh.write(" ".join(f"{rng.gauss(x, 1.0):.4f}" for x in c) + "\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("kind", choices=["corpus", "graph", "points"])
    parser.add_argument("path")
    parser.add_argument("--files", type=int, default=4)
    parser.add_argument("--mb", type=int, default=8)
    parser.add_argument("--pages", type=int, default=2000)
    parser.add_argument("--links", type=int, default=20000)
    parser.add_argument("--points", type=int, default=100000)
    args = parser.parse_args()
    if args.kind == "corpus":
        write_corpus(args.path, args.files, args.mb)
    elif args.kind == "graph":
        write_graph(args.path, args.pages, args.links)
    else:
        write_points(args.path, args.points)


if __name__ == "__main__":
    main()
