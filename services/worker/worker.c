/* The worker daemon: options, its Worker gRPC service, registration and
 * heartbeats to the master. */
#define _GNU_SOURCE
#include "worker.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "master.pb-c.h"
#include "worker.pb-c.h"

const struct ember_option worker_options[] = {
    {"listen", "EMBER_WORKER_LISTEN", "127.0.0.1:7078", "address of the Worker gRPC service"},
    {"master", "EMBER_MASTER_ADDRESS", "127.0.0.1:7077", "gRPC address of ember-master"},
    {"blockd", "EMBER_BLOCKD_ADDRESS", "127.0.0.1:7079", "gRPC address of the paired ember-blockd"},
    {"cores", "EMBER_WORKER_CORES", "2", "task slots, one ember-pyexec each"},
    {"id", "EMBER_WORKER_ID", NULL, "worker id (default worker-<host>-<port>)"},
    {"host", "EMBER_HOST", NULL, "host name to advertise (default: the listen host)"},
    {"pyexec", "EMBER_PYEXEC", NULL, "path of ember-pyexec (default: next to this program)"},
    {"work-dir", "EMBER_WORKER_DIR", NULL,
     "folder of cluster-mode drivers' files and output (default /tmp/ember-worker-<id>)"},
    {"python-memory-soft", "EMBER_WORKER_PYTHON_MEMORY_SOFT", NULL,
     "resident memory of all ember-pyexec above which idle ones are recycled (bytes or 512m; "
     "default half the machine's RAM; 0: off)"},
    {"python-memory-hard", "EMBER_WORKER_PYTHON_MEMORY_HARD", NULL,
     "resident memory of all ember-pyexec above which the largest one's task fails (default "
     "three quarters of the machine's RAM; 0: off)"},
    {0},
};

#define MASTER_DEADLINE_MS 3000
#define HEARTBEAT_MS 1000

static int register_with_master(struct worker *w)
{
    Ember__RegisterWorkerRequest req = EMBER__REGISTER_WORKER_REQUEST__INIT;
    ProtobufCMessage *reply = NULL;
    char *details = NULL;
    grpc_status_code st;

    req.worker_id = w->id;
    req.address = w->address;
    req.host = w->host;
    req.cores = (uint32_t)w->cores;
    req.block_addr = w->block_addr;
    req.python_processes = (uint32_t)w->cores;
    req.incarnation = ember_incarnation();
    st = ember_rpc_call(w->master, &ember__master__descriptor, "RegisterWorker", &req.base,
                        &reply, NULL, NULL, MASTER_DEADLINE_MS, &details);
    if (reply)
        protobuf_c_message_free_unpacked(reply, NULL);
    if (st == GRPC_STATUS_OK)
        ember_log_info("worker=%s registered with master %s", w->id, w->master_addr);
    free(details);
    return st == GRPC_STATUS_OK ? 0 : EMBER_ERPC;
}

/* Returns 1 when the master knows us, 0 when it asks us to register, -1 when
 * it cannot be reached. */
static int send_heartbeat(struct worker *w)
{
    Ember__HeartbeatRequest req = EMBER__HEARTBEAT_REQUEST__INIT;
    Ember__HeartbeatReply *reply = NULL;
    grpc_status_code st;
    int known;

    req.id = w->id;
    pthread_mutex_lock(&w->lock);
    req.running_tasks = (uint32_t)w->running_tasks;
    pthread_mutex_unlock(&w->lock);
    st = ember_rpc_call(w->master, &ember__master__descriptor, "Heartbeat", &req.base,
                        (ProtobufCMessage **)&reply, NULL, NULL, MASTER_DEADLINE_MS, NULL);
    if (st != GRPC_STATUS_OK)
        return -1;
    known = reply->known;
    protobuf_c_message_free_unpacked(&reply->base, NULL);
    return known;
}

static void *heartbeat_loop(void *arg)
{
    struct worker *w = arg;
    int registered = 0, warned = 0;

    do {
        if (!registered) {
            registered = register_with_master(w) == 0;
            if (!registered && !warned++)
                ember_log_warn("worker=%s master %s unreachable, retrying", w->id,
                               w->master_addr);
            continue;
        }
        int known = send_heartbeat(w);
        if (known == 0) {
            ember_log_info("worker=%s master asked to register again", w->id);
            registered = 0;
        } else if (known < 0 && !warned++) {
            ember_log_warn("worker=%s heartbeat to master %s failed", w->id, w->master_addr);
        } else if (known > 0) {
            warned = 0;
        }
    } while (!ember_daemon_sleep(w->daemon, registered ? HEARTBEAT_MS : 500));
    return NULL;
}

#define MAX_REDUCE_PARTITIONS 100000

/* Whether the worker takes tasks now and this one is acceptable; if not, the
 * call's status with its details set. */
static grpc_status_code check_launch(ember_rpc_ctx *ctx, struct worker *w,
                                     const Ember__TaskSpec *spec)
{
    if (ember_daemon_is_stopping(w->daemon)) {
        ember_rpc_set_details(ctx, "worker is shutting down");
        return GRPC_STATUS_UNAVAILABLE;
    }
    /* The master numbers tasks from the clock. A task without an id has no place
     * in the slot queue (worker_pool_enqueue): one launched on the call's thread
     * ahead of a queued task would wait behind it for good. */
    if (spec->task_id == 0) {
        ember_rpc_set_details(ctx, "a task needs a task id (task_id 0 is not one)");
        return GRPC_STATUS_INVALID_ARGUMENT;
    }
    /* The master never makes more (master_job.c's MAX_PARTITIONS); a task
     * that asks for more would have the worker allocate a bucket for each. */
    if (spec->num_reduce > MAX_REDUCE_PARTITIONS) {
        ember_rpc_set_details(ctx, "a task may write at most 100000 reduce partitions");
        return GRPC_STATUS_INVALID_ARGUMENT;
    }
    return GRPC_STATUS_OK;
}

static grpc_status_code handle_launch(ember_rpc_ctx *ctx, const ProtobufCMessage *msg, void *user)
{
    struct worker *w = user;
    Ember__Ack ack = EMBER__ACK__INIT;
    struct launch_call call = {.ctx = ctx};  /* a new runner may be this thread, after the call */
    grpc_status_code st = check_launch(ctx, w, (const Ember__TaskSpec *)msg);

    if (st != GRPC_STATUS_OK)
        return st;
    /* the task keeps the request (the call's own copy), which then outlives the call */
    worker_task_start(w, (Ember__TaskSpec *)ember_rpc_take_request(ctx), &call);
    ember_rpc_send(ctx, &ack.base);
    return GRPC_STATUS_OK;
}

/* Every task is checked before any starts: the master learns of a refusal
 * for the whole batch and fails each of its tasks. With report_wait_ms, the
 * task started on this thread may be reported in the reply (worker_task_reply). */
static grpc_status_code handle_launch_batch(ember_rpc_ctx *ctx, const ProtobufCMessage *msg,
                                            void *user)
{
    const Ember__TaskSpecs *batch = (const Ember__TaskSpecs *)msg;
    struct worker *w = user;
    struct launch_call call = {.ctx = ctx};

    call.report_wait_ms = batch->report_wait_ms < WORKER_MAX_REPORT_WAIT_MS
                              ? batch->report_wait_ms
                              : WORKER_MAX_REPORT_WAIT_MS;
    for (size_t i = 0; i < batch->n_tasks; i++) {
        grpc_status_code st = check_launch(ctx, w, batch->tasks[i]);
        if (st != GRPC_STATUS_OK)
            return st;
    }
    /* Each task keeps its spec from the request, which then outlives the
     * call: the batch is freed without them. */
    Ember__TaskSpecs *owned = (Ember__TaskSpecs *)ember_rpc_take_request(ctx);
    for (size_t i = 0; i < owned->n_tasks; i++) {
        worker_task_start(w, owned->tasks[i], &call);
        owned->tasks[i] = NULL;
    }
    owned->n_tasks = 0;
    ember__task_specs__free_unpacked(owned, NULL);
    worker_task_reply(w, &call);
    return GRPC_STATUS_OK;
}

static grpc_status_code handle_kill(ember_rpc_ctx *ctx, const ProtobufCMessage *msg, void *user)
{
    struct worker *w = user;
    const Ember__TaskRef *ref = (const Ember__TaskRef *)msg;
    Ember__Ack ack = EMBER__ACK__INIT;

    if (worker_pool_kill_task(w->pool, ref->task_id) == 0)
        ember_log_info("task=%llu killed on request", (unsigned long long)ref->task_id);
    else
        worker_task_unqueue(w, ref->task_id);  /* launched ahead: it ends without starting */
    ember_rpc_send(ctx, &ack.base);
    return GRPC_STATUS_OK;
}

static const ember_rpc_method_impl worker_methods[] = {
    {"LaunchTask", EMBER_RPC_UNARY, handle_launch},
    {"KillTask", EMBER_RPC_UNARY, handle_kill},
    {"LaunchTasks", EMBER_RPC_UNARY, handle_launch_batch, EMBER_RPC_QUICK},
};

static char *default_pyexec_path(void)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    char *slash;

    if (n <= 0)
        return ember_xstrdup("ember-pyexec");
    exe[n] = '\0';
    slash = strrchr(exe, '/');
    *slash = '\0';
    return ember_xasprintf("%s/ember-pyexec", exe);
}

static int read_options(struct worker *w)
{
    int64_t cores;

    if (ember_daemon_opt_int(w->daemon, "cores", &cores) != 0 || cores < 1 || cores > 256) {
        ember_log_error("--cores must be between 1 and 256");
        return EMBER_EINVAL;
    }
    w->cores = (int)cores;
    w->master_addr = ember_xstrdup(ember_daemon_opt(w->daemon, "master"));
    w->block_addr = ember_xstrdup(ember_daemon_opt(w->daemon, "blockd"));
    return 0;
}

/* --work-dir, else /tmp/ember-worker-<id> with the id's odd characters as '_'. */
static char *default_work_dir(struct worker *w)
{
    const char *opt = ember_daemon_opt(w->daemon, "work-dir");
    char *dir;

    if (opt && *opt)
        return ember_xstrdup(opt);
    dir = ember_xasprintf("/tmp/ember-worker-%s", w->id);
    for (char *c = dir + strlen("/tmp/"); *c; c++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.", *c))
            *c = '_';
    return dir;
}

static int start_server(struct worker *w)
{
    const char *listen = ember_daemon_opt(w->daemon, "listen");
    const char *host_opt = ember_daemon_opt(w->daemon, "host");
    const char *id_opt = ember_daemon_opt(w->daemon, "id");
    int port = 0;

    /* Requests can be large (a task's data); BDP probing would ping back on
     * every few launches, a wakeup each on both sides for nothing. */
    grpc_arg args[] = {
        {.type = GRPC_ARG_INTEGER,
         .key = (char *)GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH,
         .value.integer = EMBER_RPC_MAX_MESSAGE},
        {.type = GRPC_ARG_INTEGER, .key = (char *)GRPC_ARG_HTTP2_BDP_PROBE, .value.integer = 0},
    };
    grpc_channel_args server_args = {sizeof(args) / sizeof(args[0]), args};

    w->server = ember_rpc_server_create(listen, &port, &server_args);
    if (!w->server) {
        ember_log_error("cannot listen on %s", listen);
        return EMBER_EIO;
    }
    if (ember_rpc_server_add_service(w->server, &ember__worker__descriptor, worker_methods,
                                     sizeof(worker_methods) / sizeof(worker_methods[0]), w)
            != 0
        || ember_rpc_server_add_service(w->server, &ember__worker__descriptor,
                                        worker_driver_methods, worker_n_driver_methods, w)
            != 0)
        return EMBER_EINVAL;
    w->address = ember_advertised_address(listen, port, host_opt);
    w->host = ember_address_host(w->address);
    w->id = id_opt ? ember_xstrdup(id_opt) : ember_xasprintf("worker-%s", w->address);
    w->work_dir = default_work_dir(w);
    ember_rpc_server_start(w->server, WORKER_SERVER_THREADS);
    return 0;
}

int worker_create(struct ember_daemon *d, struct worker **out)
{
    struct worker *w = ember_xcalloc(1, sizeof(*w));
    const char *pyexec_opt = ember_daemon_opt(d, "pyexec");
    char *pyexec = pyexec_opt ? ember_xstrdup(pyexec_opt) : default_pyexec_path();
    int rc;

    w->daemon = d;
    pthread_mutex_init(&w->lock, NULL);
    pthread_mutex_init(&w->broadcast_lock, NULL);
    pthread_cond_init(&w->idle, NULL);
    pthread_mutex_init(&w->report_lock, NULL);
    pthread_mutex_init(&w->queue_lock, NULL);
    worker_http_init();                /* curl wants this before any thread starts */
    grpc_init();
    w->python_path = worker_driver_python_path();
    rc = read_options(w);
    if (rc == 0)
        rc = worker_pool_create(pyexec, w->cores, &w->pool);
    free(pyexec);
    if (rc == 0)
        rc = start_server(w);
    if (rc == 0)
        rc = worker_memory_start(w, &w->memory);
    if (rc != 0) {
        worker_destroy(w);
        return rc;
    }
    /* Unary calls only: no read ahead to grow, so no BDP pings either. */
    w->master = ember_rpc_channel_create_ex(w->master_addr, -1, EMBER_RPC_NO_READ_AHEAD);
    pthread_create(&w->heartbeat_thread, NULL, heartbeat_loop, w);
    w->heartbeat_started = 1;
    ember_log_info("worker=%s cores=%d blockd=%s ready", w->id, w->cores, w->block_addr);
    ember_daemon_ready(d, w->address);
    *out = w;
    return 0;
}

void worker_destroy(struct worker *w)
{
    if (!w)
        return;
    if (w->heartbeat_started)
        pthread_join(w->heartbeat_thread, NULL);
    worker_memory_stop(w->memory);
    /* Server threads may be running tasks: the shutdown waits for them. */
    if (w->pool)
        worker_pool_kill_task(w->pool, 0);
    if (w->server)
        ember_rpc_server_shutdown(w->server);  /* no new tasks from here on */
    worker_drivers_stop(w);
    if (w->pool) {
        worker_pool_kill_task(w->pool, 0);     /* 0: every running task */
        worker_wait_idle(w);
        worker_pool_destroy(w->pool);
    }
    worker_channels_free(w);
    if (w->master)
        grpc_channel_destroy(w->master);
    grpc_shutdown();
    worker_http_cleanup();
    pthread_mutex_destroy(&w->lock);
    pthread_mutex_destroy(&w->broadcast_lock);
    pthread_cond_destroy(&w->idle);
    pthread_mutex_destroy(&w->report_lock);
    pthread_mutex_destroy(&w->queue_lock);
    free(w->id);
    free(w->address);
    free(w->host);
    free(w->block_addr);
    free(w->master_addr);
    free(w->work_dir);
    free(w->python_path);
    free(w);
}
