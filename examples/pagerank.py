"""PageRank over an edge list ("src dst" per line), as in Spark's example.

    build/bin/ember-submit --master local[2] examples/pagerank.py EDGES ITERATIONS
"""

import sys
from operator import add

from pyspark import SparkContext


def contributions(urls, rank):
    urls = list(urls)
    for url in urls:
        yield url, rank / len(urls)


def main(argv):
    if len(argv) != 3:
        print("usage: pagerank.py EDGES ITERATIONS", file=sys.stderr)
        return 2
    sc = SparkContext(appName="pagerank")
    lines = sc.textFile(argv[1], minPartitions=4)
    links = lines.map(lambda line: tuple(line.split()[:2])).distinct().groupByKey()
    ranks = links.map(lambda url_neighbors: (url_neighbors[0], 1.0))
    for _ in range(int(argv[2])):
        contribs = links.join(ranks).flatMap(
            lambda url_urls_rank: contributions(url_urls_rank[1][0], url_urls_rank[1][1]))
        ranks = contribs.reduceByKey(add).mapValues(lambda rank: rank * 0.85 + 0.15)
    for url, rank in ranks.takeOrdered(10, key=lambda ur: -ur[1]):
        print(f"{url} has rank: {rank:.4f}")
    sc.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
