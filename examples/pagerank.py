"""PageRank over an edge list ("src dst" per line), as in Spark's example:
links grouped, partitioned and cached; 10 iterations of join + contributions
+ reduceByKey; rank = 0.15 + 0.85 * sum of contributions.

    build/bin/ember-submit --master local[2] examples/pagerank.py EDGES [ITERATIONS] [--no-cache]
"""

import sys
import time
from operator import add

from pyspark import SparkContext


def contributions(urls, rank):
    urls = list(urls)
    for url in urls:
        yield url, rank / len(urls)


def parse(line):
    src, dst = line.split()[:2]
    return src, dst


def main(argv):
    args = [a for a in argv[1:] if not a.startswith("--")]
    if not args:
        print("usage: pagerank.py EDGES [ITERATIONS] [--no-cache]", file=sys.stderr)
        return 2
    iterations = int(args[1]) if len(args) > 1 else 10
    sc = SparkContext(appName="pagerank")
    partitions = max(sc.defaultParallelism, 4)
    links = (sc.textFile(args[0], minPartitions=partitions)
               .map(parse).distinct().groupByKey(partitions))
    if "--no-cache" not in argv:
        links = links.cache()
    ranks = links.mapValues(lambda _: 1.0)
    for i in range(iterations):
        started = time.time()
        contribs = links.join(ranks).flatMap(
            lambda url_urls_rank: contributions(url_urls_rank[1][0], url_urls_rank[1][1]))
        ranks = contribs.reduceByKey(add, partitions).mapValues(lambda rank: rank * 0.85 + 0.15)
        ranks.count()          # run the iteration now, so its time can be printed
        print(f"iteration {i + 1}: {time.time() - started:.2f} s", flush=True)
    for url, rank in ranks.takeOrdered(10, key=lambda ur: -ur[1]):
        print(f"{url} has rank: {rank:.4f}")
    sc.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
