#!/bin/bash
# The command of docker-compose.yml's `worker` service: one ember-blockd and
# the ember-worker that stores its blocks there, in one container. When either
# exits the other is stopped and the container exits non-zero, so the restart
# policy brings the pair back together.
#   ember-worker-node           run both (until SIGTERM or one of them dies)
#   ember-worker-node health    exit 0 when both serve (the health check)
# Peers dial this container by its host name (EMBER_HOST, default `hostname`):
# on a compose network that name resolves to the container, whatever the scale.
set -u

host=${EMBER_HOST:-$(hostname)}
worker_port=${EMBER_WORKER_LISTEN##*:}
blockd_port=${EMBER_BLOCKD_LISTEN##*:}
export EMBER_HOST=$host
# The worker registers this address as its block manager's, so it must be
# the one the block manager advertises.
export EMBER_BLOCKD_ADDRESS=$host:$blockd_port
run=/tmp/ember-worker-node

health() {
    ember-health blockd "127.0.0.1:$blockd_port" && ember-health worker "$host:$worker_port"
}

stop() {
    kill -TERM "$blockd_pid" "$worker_pid" 2>/dev/null
    wait
    exit "$1"
}

# start_blockd: returns once the block manager serves, so the worker's first
# heartbeat already finds it alive.
start_blockd() {
    rm -f "$run/blockd.ready"
    EMBER_READY_FILE=$run/blockd.ready ember-blockd &
    blockd_pid=$!
    until [ -s "$run/blockd.ready" ]; do
        kill -0 "$blockd_pid" 2>/dev/null || { wait "$blockd_pid"; exit 1; }
        sleep 0.1
    done
}

main() {
    mkdir -p "$run"
    worker_pid=
    trap 'stop 0' TERM INT
    start_blockd
    ember-worker &
    worker_pid=$!
    wait -n "$blockd_pid" "$worker_pid"
    echo "ember-worker-node: $( kill -0 "$blockd_pid" 2>/dev/null && echo ember-worker || echo ember-blockd) exited; stopping the other" >&2
    stop 1
}

case "${1:-run}" in
    run) main ;;
    health) health ;;
    *) echo "usage: $0 [run|health]" >&2; exit 2 ;;
esac
