"""Word count, as a PySpark user writes it.

    build/bin/ember-submit --master local[2] examples/wordcount.py INPUT OUTPUT
"""

import sys
from operator import add

from pyspark import SparkContext


def main(argv):
    if len(argv) != 3:
        print("usage: wordcount.py INPUT OUTPUT", file=sys.stderr)
        return 2
    source, output = argv[1], argv[2]
    sc = SparkContext(appName="wordcount")
    counts = (sc.textFile(source, minPartitions=8)
                .flatMap(lambda line: line.split(" "))
                .filter(lambda word: word)
                .map(lambda word: (word, 1))
                .reduceByKey(add, numPartitions=4))
    counts.saveAsTextFile(output)
    for word, count in counts.takeOrdered(20, key=lambda wc: (-wc[1], wc[0])):
        print(f"{count:>9}  {word}")
    print(f"counts written to {output}")
    sc.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
