/* The master daemon: options, start-up and shutdown. */
#include "master.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "master.pb-c.h"

const struct ember_option master_options[] = {
    {"listen", "EMBER_MASTER_LISTEN", "127.0.0.1:7077", "address of the Master gRPC service"},
    {"max-failures", "EMBER_TASK_MAX_FAILURES", "4",
     "attempts of one task before its job fails (spark.task.maxFailures)"},
    {"heartbeat-timeout-ms", "EMBER_HEARTBEAT_TIMEOUT_MS", "10000",
     "a worker or block manager silent this long is declared dead"},
    {"journal", "EMBER_MASTER_JOURNAL", NULL,
     "file of applications, jobs and stages kept across restarts (the UI's history)"},
    {"locality-wait-ms", "EMBER_LOCALITY_WAIT_MS", "1000",
     "how long a task waits for a slot where its cached input is (spark.locality.wait)"},
    {"launch-report-wait-ms", "EMBER_LAUNCH_REPORT_WAIT_MS", "5",
     "how long a worker may hold its answer to a launch made by SubmitJobAndWait for the "
     "report of a task it started at once (saves the task's ReportTask call; 0: off)"},
    {"driver-log-bytes", "EMBER_DRIVER_LOG_BYTES", "4194304",
     "bytes of each cluster-mode driver's stdout and stderr kept (the last ones)"},
    {"retained-drivers", "EMBER_RETAINED_DRIVERS", "100",
     "finished cluster-mode drivers kept (with their output); older ones are forgotten "
     "(spark.deploy.retainedDrivers)"},
    {0},
};

void ptr_array_push(struct ptr_array *a, void *item)
{
    if (a->n == a->cap) {
        a->cap = a->cap ? a->cap * 2 : 8;
        a->items = ember_xrealloc(a->items, a->cap * sizeof(*a->items));
    }
    a->items[a->n++] = item;
}

static int read_options(struct master *m)
{
    if (ember_daemon_opt_int(m->daemon, "max-failures", &m->max_failures) != 0
        || m->max_failures < 1) {
        ember_log_error("--max-failures must be a whole number of at least 1");
        return EMBER_EINVAL;
    }
    if (ember_daemon_opt_int(m->daemon, "heartbeat-timeout-ms", &m->heartbeat_timeout_ms) != 0
        || m->heartbeat_timeout_ms < 100) {
        ember_log_error("--heartbeat-timeout-ms must be at least 100");
        return EMBER_EINVAL;
    }
    if (ember_daemon_opt_int(m->daemon, "locality-wait-ms", &m->locality_wait_ms) != 0
        || m->locality_wait_ms < 0) {
        ember_log_error("--locality-wait-ms must be a whole number of at least 0");
        return EMBER_EINVAL;
    }
    if (ember_daemon_opt_int(m->daemon, "launch-report-wait-ms", &m->launch_report_wait_ms) != 0
        || m->launch_report_wait_ms < 0 || m->launch_report_wait_ms > 100) {
        ember_log_error("--launch-report-wait-ms must be a whole number from 0 to 100");
        return EMBER_EINVAL;
    }
    if (ember_daemon_opt_int(m->daemon, "driver-log-bytes", &m->driver_log_bytes) != 0
        || m->driver_log_bytes < 1024) {
        ember_log_error("--driver-log-bytes must be a whole number of at least 1024");
        return EMBER_EINVAL;
    }
    if (ember_daemon_opt_int(m->daemon, "retained-drivers", &m->retained_drivers) != 0
        || m->retained_drivers < 1) {
        ember_log_error("--retained-drivers must be a whole number of at least 1");
        return EMBER_EINVAL;
    }
    return 0;
}

int master_create(struct ember_daemon *d, struct master **out)
{
    struct master *m = ember_xcalloc(1, sizeof(*m));
    const char *listen = ember_daemon_opt(d, "listen");
    char *address;
    int port = 0;

    m->daemon = d;
    m->next_shuffle_id = 1;
    m->task_base = (uint64_t)time(NULL) << 20;
    pthread_mutex_init(&m->lock, NULL);
    pthread_cond_init(&m->work, NULL);
    pthread_cond_init(&m->job_ended, NULL);
    grpc_init();
    if (read_options(m) != 0) {
        master_destroy(m);
        return EMBER_EINVAL;
    }
    if (ember_daemon_opt(d, "journal")) {
        if (master_journal_open(m, ember_daemon_opt(d, "journal")) != 0) {
            master_destroy(m);
            return EMBER_EIO;
        }
        m->app_counter = json_array_size(m->history_apps);   /* keeps app ids unique */
    } else {
        m->history_apps = json_array();
        m->history_jobs = json_array();
        m->history_stages = json_array();
    }
    /* Requests are at most a job with its data (one large message: gRPC opens
     * the window for the message it reads), so BDP probing only costs PING
     * frames, their acks and wake-ups on every call. */
    grpc_arg server_args[] = {
        {.type = GRPC_ARG_INTEGER, .key = (char *)GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH,
         .value.integer = EMBER_RPC_MAX_MESSAGE},
        {.type = GRPC_ARG_INTEGER, .key = (char *)GRPC_ARG_HTTP2_BDP_PROBE, .value.integer = 0},
    };
    grpc_channel_args server_channel_args = {2, server_args};
    m->server = ember_rpc_server_create(listen, &port, &server_channel_args);
    if (!m->server) {
        ember_log_error("cannot listen on %s", listen);
        master_destroy(m);
        return EMBER_EIO;
    }
    if (ember_rpc_server_add_service(m->server, &ember__master__descriptor, master_methods,
                                     master_n_methods, m)
            != 0
        || ember_rpc_server_add_service(m->server, &ember__master__descriptor,
                                        master_driver_methods, master_n_driver_methods, m)
            != 0) {
        master_destroy(m);
        return EMBER_EINVAL;
    }
    ember_rpc_server_start(m->server, 8);
    pthread_create(&m->scheduler, NULL, master_scheduler_main, m);
    m->scheduler_started = 1;
    address = ember_advertised_address(listen, port, NULL);
    ember_daemon_ready(d, address);
    free(address);
    *out = m;
    return 0;
}

static void free_stage(struct stage *s)
{
    for (size_t i = 0; i < s->tasks.n; i++) {
        struct task *t = s->tasks.items[i];
        free(t->worker_id);
        free(t->host);
        free(t->error);
        free(t);
    }
    free(s->tasks.items);
    free(s->parents.items);
    free(s->partitions);
    free(s->parts);
    free(s->failure);
    free(s);
}

static void free_job(struct job *j)
{
    for (uint32_t i = 0; j->results && i < j->result_stage->n_parts; i++) {
        free(j->results[i].block_addr);
        free(j->results[i].inline_data);
    }
    free(j->results);
    for (size_t i = 0; i < j->stages.n; i++)
        free_stage(j->stages.items[i]);
    free(j->stages.items);
    free(j->description);
    free(j->call_site);
    free(j->error);
    json_decref(j->properties);
    json_decref(j->accumulator_updates);
    free(j->submission_id);
    free(j->broadcasts.items);
    free(j);
}

static void free_app(struct app *a)
{
    for (size_t i = 0; i < a->jobs.n; i++)
        free_job(a->jobs.items[i]);
    for (size_t i = 0; i < a->nodes.n; i++)
        master_node_free(a->nodes.items[i]);
    for (size_t i = 0; i < a->broadcasts.n; i++) {
        struct broadcast_info *b = a->broadcasts.items[i];
        free(b->block_id);
        free(b->location);
        free(b);
    }
    free(a->broadcasts.items);
    free(a->jobs.items);
    free(a->nodes.items);
    json_decref(a->job_by_submission);
    free(a->id);
    free(a->name);
    free(a->user);
    json_decref(a->properties);
    free(a);
}

void master_destroy(struct master *m)
{
    if (!m)
        return;
    if (m->scheduler_started) {
        pthread_mutex_lock(&m->lock);
        pthread_cond_broadcast(&m->work);
        pthread_cond_broadcast(&m->job_ended);
        pthread_mutex_unlock(&m->lock);
        pthread_join(m->scheduler, NULL);
    }
    if (m->server)
        ember_rpc_server_shutdown(m->server);
    master_journal_close(m);           /* lines still waiting are made from the jobs */
    for (size_t i = 0; i < m->apps.n; i++)
        free_app(m->apps.items[i]);
    for (size_t i = 0; i < m->workers.n; i++) {
        struct worker_info *w = m->workers.items[i];
        grpc_channel_destroy(w->channel);
        free(w->id);
        free(w->address);
        free(w->host);
        free(w->block_addr);
        free(w);
    }
    for (size_t i = 0; i < m->blockds.n; i++) {
        struct blockd_info *b = m->blockds.items[i];
        free(b->id);
        free(b->address);
        free(b->host);
        free(b);
    }
    for (size_t i = 0; i < m->drivers.n; i++)
        master_driver_free(m->drivers.items[i]);
    free(m->drivers.items);
    free(m->apps.items);
    free(m->jobs.items);
    free(m->stages.items);
    free(m->tasks.items);
    free(m->workers.items);
    free(m->blockds.items);
    free(m->nodes_by_gid.items);
    for (size_t i = 0; i < m->retired_channels.n; i++)
        grpc_channel_destroy(m->retired_channels.items[i]);
    free(m->retired_channels.items);
    for (size_t i = 0; i < m->kills.n; i++)
        free(m->kills.items[i]);
    free(m->kills.items);
    grpc_shutdown();
    pthread_mutex_destroy(&m->lock);
    pthread_cond_destroy(&m->work);
    pthread_cond_destroy(&m->job_ended);
    free(m);
}
