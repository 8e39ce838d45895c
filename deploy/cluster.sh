#!/usr/bin/env bash
# Starts or stops a local Ember cluster on 127.0.0.1: a master, a gateway and
# N workers, each with its own block manager. State (pids, logs) lives in
# $EMBER_RUN_DIR (default build/cluster).
#   deploy/cluster.sh start [N]     deploy/cluster.sh stop     deploy/cluster.sh status
# Every start makes a new shared secret in $EMBER_RUN_DIR/secret (mode 0600) that
# every daemon requires; drivers find it with EMBER_AUTH_SECRET_FILE=that file and
# the web UI asks for it. A secret of your own in EMBER_AUTH_SECRET or
# EMBER_AUTH_SECRET_FILE is used instead.
set -eu

here=$(cd "$(dirname "$0")/.." && pwd)
bin=${EMBER_BIN_DIR:-$here/build/bin}
run=${EMBER_RUN_DIR:-$here/build/cluster}
master_port=${EMBER_MASTER_PORT:-7077}
gateway_port=${EMBER_GATEWAY_PORT:-8080}

# start_daemon NAME TAG ARGS...: runs it in the background, waits for its ready file.
start_daemon() {
    local name=$1 tag=$2
    shift 2
    rm -f "$run/$tag.ready"
    "$bin/$name" "$@" --ready-file "$run/$tag.ready" >>"$run/$tag.log" 2>&1 &
    echo $! >"$run/$tag.pid"
    for _ in $(seq 1 100); do
        [ -s "$run/$tag.ready" ] && return 0
        if ! kill -0 "$(cat "$run/$tag.pid")" 2>/dev/null; then
            echo "cluster: $tag failed to start; its log ($run/$tag.log) ends with:" >&2
            tail -5 "$run/$tag.log" >&2
            return 1
        fi
        sleep 0.1
    done
    echo "cluster: $tag did not become ready in 10 s (log: $run/$tag.log)" >&2
    return 1
}

# The secret file the daemons read: EMBER_AUTH_SECRET_FILE, or a new one in $run.
# (EMBER_AUTH_SECRET itself reaches the daemons through their environment.)
make_secret() {
    if [ -n "${EMBER_AUTH_SECRET:-}" ]; then
        printf 'Authorization: Bearer %s\n' "$EMBER_AUTH_SECRET" >"$run/auth-header"
        return 0
    fi
    if [ -z "${EMBER_AUTH_SECRET_FILE:-}" ]; then
        EMBER_AUTH_SECRET_FILE=$run/secret
        (umask 077 && od -An -tx1 -N24 /dev/urandom | tr -d ' \n' >"$EMBER_AUTH_SECRET_FILE")
    fi
    export EMBER_AUTH_SECRET_FILE
    (umask 077 && printf 'Authorization: Bearer %s\n' "$(head -n1 "$EMBER_AUTH_SECRET_FILE")" \
        >"$run/auth-header")
}

start() {
    local workers=${1:-2}
    if [ -n "$(ls "$run"/*.pid 2>/dev/null)" ]; then
        echo "cluster: already running (pids in $run); run '$0 stop' first" >&2
        exit 1
    fi
    mkdir -p "$run"
    make_secret
    start_daemon ember-master master --listen "127.0.0.1:$master_port" --journal "$run/master.journal"
    start_daemon ember-gateway gateway --listen "127.0.0.1:$gateway_port" \
        --master "127.0.0.1:$master_port"
    for i in $(seq 0 $((workers - 1))); do
        local worker_port=$((7078 + 10 * i)) blockd_port=$((7079 + 10 * i))
        start_daemon ember-blockd "blockd-$i" --listen "127.0.0.1:$blockd_port" \
            --master "127.0.0.1:$master_port" --id "blockd-$i" --dir "$run/blockd-$i-spill"
        start_daemon ember-worker "worker-$i" --listen "127.0.0.1:$worker_port" \
            --master "127.0.0.1:$master_port" --blockd "127.0.0.1:$blockd_port" \
            --cores 1 --id "worker-$i" --work-dir "$run/worker-$i-work"
    done
    for _ in $(seq 1 100); do
        alive=$(curl -s -H "@$run/auth-header" "http://127.0.0.1:$gateway_port/api/v1/executors" \
            | grep -o '"alive"' | wc -l)
        [ "$alive" -ge "$workers" ] && break
        sleep 0.1
    done
    echo "cluster: master 127.0.0.1:$master_port, $workers workers, web UI http://127.0.0.1:$gateway_port/"
    if [ -n "${EMBER_AUTH_SECRET_FILE:-}" ]; then
        echo "cluster: shared secret in $EMBER_AUTH_SECRET_FILE (drivers: export" \
            "EMBER_AUTH_SECRET_FILE=$EMBER_AUTH_SECRET_FILE; the web UI asks for it)"
    fi
}

stop() {
    local pidfile pid
    for pidfile in "$run"/*.pid; do
        [ -e "$pidfile" ] || continue
        pid=$(cat "$pidfile")
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pidfile in "$run"/*.pid; do
        [ -e "$pidfile" ] || continue
        pid=$(cat "$pidfile")
        for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        rm -f "$pidfile"
    done
    rm -f "$run/auth-header"
    echo "cluster: stopped"
}

status() {
    local pidfile
    for pidfile in "$run"/*.pid; do
        [ -e "$pidfile" ] || { echo "cluster: not running"; return 0; }
        if kill -0 "$(cat "$pidfile")" 2>/dev/null; then state=running; else state=dead; fi
        echo "$(basename "$pidfile" .pid): $state"
    done
}

case "${1:-}" in
    start) start "${2:-2}" ;;
    stop) stop ;;
    status) status ;;
    *) echo "usage: $0 start [WORKERS] | stop | status" >&2; exit 2 ;;
esac
