#!/usr/bin/env bash
# `make demo`: starts a local cluster, runs the word count and PageRank
# examples on generated data, prints the results and leaves the cluster up.
set -eu

here=$(cd "$(dirname "$0")/.." && pwd)
python=/usr/bin/python3
data=$here/demo-data
gateway=127.0.0.1:${EMBER_GATEWAY_PORT:-8080}
run=${EMBER_RUN_DIR:-$here/build/cluster}

[ -d "$data/corpus" ] || "$python" "$here/examples/gen_data.py" corpus "$data/corpus" --files 4 --mb 8
[ -f "$data/links.txt" ] || "$python" "$here/examples/gen_data.py" graph "$data/links.txt"

"$here/deploy/cluster.sh" stop >/dev/null 2>&1 || true
"$here/deploy/cluster.sh" start 2
# cluster.sh made a fresh shared secret unless one was given; drivers need it.
if [ -z "${EMBER_AUTH_SECRET:-}" ]; then
    export EMBER_AUTH_SECRET_FILE=${EMBER_AUTH_SECRET_FILE:-$run/secret}
fi

out=$data/wordcount-$(date +%Y%m%d-%H%M%S)
echo
echo "== Word count over $data/corpus (20 most frequent words) =="
"$here/build/bin/ember-submit" --master "ember://$gateway" "$here/examples/wordcount.py" \
    "$data/corpus" "$out"
echo
echo "== PageRank over $data/links.txt (10 iterations, top 10 pages) =="
"$here/build/bin/ember-submit" --master "ember://$gateway" "$here/examples/pagerank.py" \
    "$data/links.txt" 10
echo
echo "Word counts:  $out"
echo "Web UI:       http://$gateway/"
if [ -n "${EMBER_AUTH_SECRET_FILE:-}" ]; then
    echo "Secret:       $EMBER_AUTH_SECRET_FILE (the web UI asks for it; drivers:" \
        "export EMBER_AUTH_SECRET_FILE=$EMBER_AUTH_SECRET_FILE)"
fi
echo "The cluster keeps running; stop it with: make stop"
