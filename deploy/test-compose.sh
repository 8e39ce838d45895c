#!/usr/bin/env bash
# `make test-compose`: deploy/docker-compose.yml tested with a real Docker
# engine. Installs docker.io and docker-compose from Debian when missing,
# starts dockerd when no engine answers (and stops it at the end), creates
# debian:bookworm-slim with debootstrap when it cannot be pulled, builds the
# image, brings up a master, a gateway and 3 workers, runs the word count from
# the host through the published gateway port, kills a worker container in the
# middle of a second word count, checks both results against a plain Python
# count, and removes every container, network and volume it made. Run as root.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
python=/usr/bin/python3
workers=3
project=ember-test-$$
work=$(mktemp -d /tmp/ember-compose-test.XXXXXX)
compose=()
build_flags=()
dockerd_pid=
docker0_existed=1
dangling_before=
cluster_up=0

export EMBER_IMAGE=ember-compose-test:$$
# The shared folder: bind-mounted at this same path in every container, so the
# driver on the host and the workers name the same files.
export EMBER_DATA_DIR=$work/data
# A fresh shared secret: every container reads this file as a compose secret,
# and the drivers on the host (ember-submit) read it too.
export EMBER_AUTH_SECRET_FILE=$work/secret
(umask 077 && od -An -tx1 -N24 /dev/urandom | tr -d ' \n' >"$EMBER_AUTH_SECRET_FILE" \
    && printf 'Authorization: Bearer %s\n' "$(cat "$EMBER_AUTH_SECRET_FILE")" >"$work/auth-header")

# ---- phases and their timings ----------------------------------------------
phase_names=()
phase_ms=()
phase_name=
phase_start=0

phase() {
    phase_end
    phase_name=$1
    phase_start=$(date +%s%3N)
    echo "== $phase_name"
}

phase_end() {
    [ -n "$phase_name" ] || return 0
    phase_names+=("$phase_name")
    phase_ms+=($(($(date +%s%3N) - phase_start)))
    phase_name=
}

seconds() {
    printf '%d.%d' $(($1 / 1000)) $(($1 % 1000 / 100))
}

print_timings() {
    local i total=0
    echo "== timings"
    for i in "${!phase_names[@]}"; do
        printf '  %-56s %7s s\n' "${phase_names[$i]}" "$(seconds "${phase_ms[$i]}")"
        total=$((total + phase_ms[i]))
    done
    printf '  %-56s %7s s\n' "total" "$(seconds "$total")"
}

fail() {
    echo "test-compose: FAILED: $*" >&2
    exit 1
}

# ---- cleanup: everything this run made, and the engine if it started it -----
dump_logs() {
    [ "$cluster_up" = 1 ] || return 0
    echo "---- container states" >&2
    docker ps -a --filter "label=com.docker.compose.project=$project" \
        --format '{{.Names}} {{.Status}}' >&2 || true
    echo "---- last lines of the cluster's logs" >&2
    "${compose[@]}" logs --no-color --tail 30 >&2 || true
}

remove_new_dangling_images() {
    local id
    for id in $(docker images -q --filter dangling=true); do
        case " $dangling_before " in
            *" $id "*) ;;
            *) docker rmi "$id" >/dev/null 2>&1 || true ;;
        esac
    done
}

stop_engine() {
    [ -n "$dockerd_pid" ] || return 0
    echo "test-compose: stopping the dockerd it started (pid $dockerd_pid)"
    kill -TERM "$dockerd_pid" 2>/dev/null || true
    for _ in $(seq 1 300); do
        kill -0 "$dockerd_pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$dockerd_pid" 2>/dev/null || true
    wait "$dockerd_pid" 2>/dev/null || true
    if [ "$docker0_existed" = 0 ]; then
        ip link delete docker0 2>/dev/null || true
    fi
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    [ "$rc" = 0 ] || dump_logs
    if [ "${#compose[@]}" -gt 0 ] && docker info >/dev/null 2>&1; then
        "${compose[@]}" down --volumes --remove-orphans --timeout 5 >/dev/null 2>&1 || true
        docker rmi "$EMBER_IMAGE" >/dev/null 2>&1 || true
        remove_new_dangling_images
    fi
    if [ "$rc" != 0 ] && [ -n "$dockerd_pid" ]; then
        echo "---- end of the dockerd log" >&2
        tail -15 "$work/dockerd.log" >&2 || true
    fi
    stop_engine
    rm -rf "$work"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- steps -------------------------------------------------------------------
install_docker() {
    local missing="" cmd pkg
    for cmd in dockerd:docker.io docker-compose:docker-compose debootstrap:debootstrap; do
        pkg=${cmd#*:}
        command -v "${cmd%%:*}" >/dev/null || missing="$missing $pkg"
    done
    [ -n "$missing" ] || { echo "docker.io, docker-compose, debootstrap: present"; return 0; }
    echo "installing$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null
    # shellcheck disable=SC2086  # the list is meant to split into words
    apt-get install -y -q --no-install-recommends $missing >"$work/apt.log" 2>&1 \
        || { tail -20 "$work/apt.log"; fail "apt-get install$missing"; }
}

start_engine() {
    if docker info >/dev/null 2>&1; then
        echo "a Docker engine answers; using it"
        return 0
    fi
    ip link show docker0 >/dev/null 2>&1 || docker0_existed=0
    dockerd >"$work/dockerd.log" 2>&1 &
    dockerd_pid=$!
    for _ in $(seq 1 300); do
        docker info >/dev/null 2>&1 && { echo "started dockerd (pid $dockerd_pid)"; return 0; }
        kill -0 "$dockerd_pid" 2>/dev/null || break
        sleep 0.1
    done
    fail "dockerd did not answer within 30 s (its log is printed below)"
}

# The same image a registry would give, made from Debian's archive: minbase,
# the official image's apt sources, CMD bash.
bootstrap_base_image() {
    local root=$work/rootfs
    local mirror=${EMBER_DEBIAN_MIRROR:-http://deb.debian.org/debian}
    debootstrap --variant=minbase bookworm "$root" "$mirror" >"$work/debootstrap.log" 2>&1 \
        || { tail -20 "$work/debootstrap.log"; fail "debootstrap bookworm"; }
    rm -f "$root/etc/apt/sources.list"
    cat >"$root/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/tmp/*
    tar -C "$root" -c . | docker import --change 'CMD ["bash"]' - debian:bookworm-slim >/dev/null
    rm -rf "$root"
}

base_image() {
    if docker image inspect debian:bookworm-slim >/dev/null 2>&1; then
        echo "debian:bookworm-slim: present"
    elif timeout 60 docker pull -q debian:bookworm-slim >/dev/null 2>&1; then
        echo "debian:bookworm-slim: pulled"
    else
        echo "debian:bookworm-slim cannot be pulled: making it with debootstrap"
        bootstrap_base_image
    fi
}

pick_compose() {
    if docker compose version >/dev/null 2>&1; then
        compose=(docker compose)
    else
        compose=(docker-compose)
        # The classic builder keeps the container of a failed step otherwise.
        build_flags=(--force-rm)
    fi
    compose+=(-f "$here/deploy/docker-compose.yml" -p "$project")
    echo "using ${compose[*]}"
}

free_port() {
    "$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

gateway_get() {
    curl -fsS --max-time 5 -H "@$work/auth-header" "http://127.0.0.1:$EMBER_GATEWAY_PORT$1"
}

# alive_workers: how many executors the gateway lists as alive.
alive_workers() {
    gateway_get /api/v1/executors 2>/dev/null \
        | "$python" -c 'import json, sys; print(sum(e["state"] == "alive" for e in json.load(sys.stdin)))' \
        2>/dev/null || echo 0
}

unhealthy_containers() {
    local id n=0
    for id in $("${compose[@]}" ps -q); do
        [ "$(docker inspect -f '{{.State.Health.Status}}' "$id")" = healthy ] || n=$((n + 1))
    done
    echo "$n"
}

wait_healthy() {
    local want=$1 deadline=$((SECONDS + 120))
    until [ "$(unhealthy_containers)" = 0 ] && [ "$(alive_workers)" -ge "$want" ]; do
        [ "$SECONDS" -lt "$deadline" ] || fail "the cluster was not healthy within 120 s"
        sleep 1
    done
    echo "every container healthy, $want workers alive"
}

# check_counts INPUT OUTPUT: the part files of OUTPUT against a Counter of INPUT.
check_counts() {
    "$python" - "$1" "$2" <<'EOF'
import ast, collections, glob, os, sys

source, output = sys.argv[1], sys.argv[2]
want = collections.Counter()
for path in sorted(glob.glob(os.path.join(source, "*"))):
    with open(path, encoding="utf-8") as fh:
        for line in fh.read().split("\n"):
            want.update(word for word in line.split(" ") if word)
got = {}
parts = sorted(glob.glob(os.path.join(output, "part-*")))
for path in parts:
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            word, count = ast.literal_eval(line)
            if word in got:
                sys.exit(f"{word!r} appears twice in {output}")
            got[word] = count
if not os.path.exists(os.path.join(output, "_SUCCESS")):
    sys.exit(f"{output} has no _SUCCESS")
if got != want:
    wrong = sorted(w for w in set(got) | set(want) if got.get(w) != want.get(w))
    sys.exit(f"{len(wrong)} words counted wrong in {output}, e.g. "
             + ", ".join(f"{w!r}: got {got.get(w)} want {want.get(w)}" for w in wrong[:5]))
print(f"counts right: {len(got)} distinct words, {sum(got.values())} in all, "
      f"{len(parts)} part files")
EOF
}

submit() {
    "$here/build/bin/ember-submit" --master "ember://127.0.0.1:$EMBER_GATEWAY_PORT" "$@"
}

# running_job_worker: prints the host of a worker with running tasks while a
# job that already completed tasks is running, or nothing.
running_job_worker() {
    local jobs executors
    jobs=$(gateway_get /api/v1/jobs 2>/dev/null) || return 0
    executors=$(gateway_get /api/v1/executors 2>/dev/null) || return 0
    "$python" - "$jobs" "$executors" <<'EOF'
import json, sys
jobs, executors = json.loads(sys.argv[1]), json.loads(sys.argv[2])
if any(j["status"] == "RUNNING" and j["numCompletedTasks"] > 0 for j in jobs):
    busy = [e["host"] for e in executors if e["state"] == "alive" and e["activeTasks"] > 0]
    if busy:
        print(busy[0])
EOF
}

# kill_worker_mid_job: waits for the job to be under way, then kills the
# container of a worker that runs tasks of it (its host name is its id).
kill_worker_mid_job() {
    local submit_pid=$1 host deadline=$((SECONDS + 120))
    while :; do
        kill -0 "$submit_pid" 2>/dev/null || fail "the job ended before a worker could be killed"
        [ "$SECONDS" -lt "$deadline" ] || fail "no worker ran tasks of the second job in 120 s"
        host=$(running_job_worker)
        [ -n "$host" ] && break
        sleep 0.2
    done
    docker kill "$host" >/dev/null
    echo "killed worker container $host in the middle of the job"
}

# last_app_jobs: one line per job of the newest application.
last_app_jobs() {
    "$python" - "$(gateway_get /api/v1/jobs)" <<'EOF'
import json, sys
jobs = json.loads(sys.argv[1])
for j in reversed([j for j in jobs if j["appId"] == jobs[0]["appId"]]):
    print(f"  job {j['jobId']} {j['status']}: {j['numCompletedTasks']} tasks done, "
          f"{j['numFailedTasks']} failed, {j['durationMs'] / 1000:.1f} s")
EOF
}

# restart_after_crash: SIGKILLs the block manager of a running worker
# container; ember-worker-node then exits and the restart policy must bring
# the container back, healthy.
restart_after_crash() {
    local cid pid state last='' start=$SECONDS deadline=$((SECONDS + 90))
    cid=$(docker ps -q --filter "label=com.docker.compose.project=$project" \
        --filter "label=com.docker.compose.service=worker" --filter status=running | head -1)
    pid=$(docker top "$cid" -eo pid,comm | awk '$2 == "ember-blockd" { print $1 }')
    [ -n "$pid" ] || fail "no ember-blockd in worker container $cid"
    kill -KILL "$pid"
    echo "killed ember-blockd (pid $pid) in worker container $cid"
    while :; do
        state=$(docker inspect -f 'restarts={{.RestartCount}} {{.State.Status}} health={{.State.Health.Status}}' "$cid")
        [ "$state" = "$last" ] || echo "  after $((SECONDS - start)) s: $state"
        last=$state
        [ "$state" = "restarts=1 running health=healthy" ] && break
        [ "$SECONDS" -lt "$deadline" ] || fail "worker container $cid did not come back healthy in 90 s"
        sleep 0.5
    done
}

# ---- the test ------------------------------------------------------------
cd "$here"
phase "install docker.io, docker-compose, debootstrap"
install_docker
phase "start a Docker engine"
start_engine
dangling_before=$(docker images -q --filter dangling=true | tr '\n' ' ')
phase "debian:bookworm-slim"
base_image
pick_compose
EMBER_GATEWAY_PORT=$(free_port)
export EMBER_GATEWAY_PORT
mkdir -p "$EMBER_DATA_DIR"

phase "build the image"
"${compose[@]}" build "${build_flags[@]}" >"$work/build.log" 2>&1 || { tail -40 "$work/build.log"; fail "build"; }
docker image inspect -f 'image {{.RepoTags}}: {{.Size}} bytes' "$EMBER_IMAGE"
if docker run --rm "$EMBER_IMAGE" sh -c 'command -v gcc cc cmake' >/dev/null; then
    fail "the runtime image carries a compiler"
fi

phase "up with $workers workers, wait for health"
cluster_up=1
"${compose[@]}" up -d --scale "worker=$workers" >"$work/up.log" 2>&1 \
    || { cat "$work/up.log"; fail "up"; }
wait_healthy "$workers"
refused=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$EMBER_GATEWAY_PORT/api/v1/jobs")
[ "$refused" = 401 ] || fail "the API answered $refused without the shared secret, not 401"

phase "word count 1 (16 MB), checked"
"$python" examples/gen_data.py corpus "$EMBER_DATA_DIR/corpus1" --files 4 --mb 16
submit examples/wordcount.py "$EMBER_DATA_DIR/corpus1" "$EMBER_DATA_DIR/counts1" | tail -3
check_counts "$EMBER_DATA_DIR/corpus1" "$EMBER_DATA_DIR/counts1"

phase "word count 2 (96 MB), a worker killed, checked"
"$python" examples/gen_data.py corpus "$EMBER_DATA_DIR/corpus2" --files 12 --mb 96
submit examples/wordcount.py "$EMBER_DATA_DIR/corpus2" "$EMBER_DATA_DIR/counts2" \
    >"$work/job2.log" 2>&1 &
submit_pid=$!
kill_worker_mid_job "$submit_pid"
wait "$submit_pid" || { cat "$work/job2.log"; fail "the second word count failed"; }
tail -3 "$work/job2.log"
last_app_jobs
check_counts "$EMBER_DATA_DIR/corpus2" "$EMBER_DATA_DIR/counts2"
echo "workers alive now: $(alive_workers) of $workers"

phase "a worker's blockd crashes: restart, word count 1 again"
restart_after_crash
submit examples/wordcount.py "$EMBER_DATA_DIR/corpus1" "$EMBER_DATA_DIR/counts3" | tail -1
check_counts "$EMBER_DATA_DIR/corpus1" "$EMBER_DATA_DIR/counts3"

phase "tear down (containers, network, volumes)"
"${compose[@]}" down --volumes --remove-orphans --timeout 10 >/dev/null 2>&1
cluster_up=0
left=$(docker ps -aq --filter "label=com.docker.compose.project=$project"; \
       docker network ls -q --filter "label=com.docker.compose.project=$project"; \
       docker volume ls -q --filter "label=com.docker.compose.project=$project")
[ -z "$left" ] || fail "left behind after down: $left"
phase_end
print_timings
echo "test-compose: 1 passed, 0 failed"
