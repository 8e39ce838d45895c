/* The Master service's handlers: membership, applications, job requests. */
#define _GNU_SOURCE
#include "master.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "blockd.pb-c.h"
#include "log.h"
#include "master.pb-c.h"

struct app *master_find_app(struct master *m, const char *id)
{
    for (size_t i = 0; i < m->apps.n; i++) {
        struct app *a = m->apps.items[i];
        if (strcmp(a->id, id) == 0)
            return a;
    }
    return NULL;
}

struct worker_info *master_find_worker(struct master *m, const char *id)
{
    for (size_t i = 0; i < m->workers.n; i++) {
        struct worker_info *w = m->workers.items[i];
        if (strcmp(w->id, id) == 0)
            return w;
    }
    return NULL;
}

int master_blockd_alive(struct master *m, const char *address)
{
    for (size_t i = 0; i < m->blockds.n; i++) {
        struct blockd_info *b = m->blockds.items[i];
        if (b->alive && strcmp(b->address, address) == 0)
            return 1;
    }
    return 0;
}

static struct blockd_info *find_blockd(struct master *m, const char *id)
{
    for (size_t i = 0; i < m->blockds.n; i++) {
        struct blockd_info *b = m->blockds.items[i];
        if (strcmp(b->id, id) == 0)
            return b;
    }
    return NULL;
}

static grpc_status_code reply_ack(ember_rpc_ctx *ctx)
{
    Ember__Ack ack = EMBER__ACK__INIT;
    ember_rpc_send(ctx, &ack.base);
    return GRPC_STATUS_OK;
}

grpc_status_code master_rpc_fail(ember_rpc_ctx *ctx, grpc_status_code st, const char *why)
{
    ember_rpc_set_details(ctx, why);
    return st;
}

static grpc_status_code fail_app(ember_rpc_ctx *ctx, const char *app_id, int ended)
{
    char *why = ember_xasprintf(ended ? "application %.100s has ended" : "no application %.100s",
                                app_id);
    ember_rpc_set_details(ctx, why);
    free(why);
    return GRPC_STATUS_NOT_FOUND;
}

static void replace_str(char **field, const char *value)
{
    free(*field);
    *field = ember_xstrdup(value);
}

static grpc_status_code handle_register_worker(ember_rpc_ctx *ctx, const ProtobufCMessage *msg,
                                               void *user)
{
    const Ember__RegisterWorkerRequest *req = (const Ember__RegisterWorkerRequest *)msg;
    struct master *m = user;
    struct worker_info *w;

    if (!*req->worker_id || !*req->address || req->cores == 0)
        return master_rpc_fail(ctx, GRPC_STATUS_INVALID_ARGUMENT, "worker_id, address and cores are required");
    pthread_mutex_lock(&m->lock);
    w = master_find_worker(m, req->worker_id);
    if (!w) {
        w = ember_xcalloc(1, sizeof(*w));
        w->id = ember_xstrdup(req->worker_id);
        ptr_array_push(&m->workers, w);
    } else if (w->channel) {
        /* A worker registering again may be a new process at a new address
         * (a restarted container): start a fresh connection. Launches being
         * sent may still hold the old channel, so it is only retired. */
        ptr_array_push(&m->retired_channels, w->channel);
        w->channel = NULL;
        /* A new worker process runs none of the old one's drivers; the same
         * one (back from a partition, or re-registering) still runs them. */
        if (w->incarnation != req->incarnation)
            master_drivers_worker_lost(m, w->id, "restarted", 1);
        else
            master_drivers_worker_back(m, w->id);
    }
    if (w->alive && w->incarnation != req->incarnation) {
        ember_log_warn("worker=%s restarted before it was declared dead: its running tasks are "
                       "lost", req->worker_id);
        master_worker_tasks_lost(m, w, "the worker restarted");
    }
    w->incarnation = req->incarnation;
    replace_str(&w->address, req->address);
    replace_str(&w->host, req->host);
    replace_str(&w->block_addr, req->block_addr);
    if (!w->channel)
        /* Launches and kills are small: no BDP probe pings on this channel. */
        w->channel = ember_rpc_channel_create_ex(w->address, -1, EMBER_RPC_NO_READ_AHEAD);
    w->cores = req->cores;
    w->alive = 1;
    w->last_heartbeat_ms = ember_monotonic_ms();
    pthread_cond_broadcast(&m->work);
    pthread_mutex_unlock(&m->lock);
    ember_log_info("worker=%s address=%s cores=%u blockd=%s registered", req->worker_id,
                   req->address, req->cores, req->block_addr);
    return reply_ack(ctx);
}

static grpc_status_code handle_register_blockd(ember_rpc_ctx *ctx, const ProtobufCMessage *msg,
                                               void *user)
{
    const Ember__RegisterBlockManagerRequest *req = (const Ember__RegisterBlockManagerRequest *)msg;
    struct master *m = user;
    struct blockd_info *b;

    if (!*req->blockd_id || !*req->address)
        return master_rpc_fail(ctx, GRPC_STATUS_INVALID_ARGUMENT, "blockd_id and address are required");
    pthread_mutex_lock(&m->lock);
    b = find_blockd(m, req->blockd_id);
    if (!b) {
        b = ember_xcalloc(1, sizeof(*b));
        b->id = ember_xstrdup(req->blockd_id);
        ptr_array_push(&m->blockds, b);
    } else if (b->alive && b->incarnation != req->incarnation) {
        ember_log_warn("blockd=%s restarted before it was declared dead: its blocks are lost",
                       req->blockd_id);
        master_blockd_lost(m, b->address);
    }
    b->incarnation = req->incarnation;
    replace_str(&b->address, req->address);
    replace_str(&b->host, req->host);
    b->memory = req->memory_bytes;
    b->alive = 1;
    b->last_heartbeat_ms = ember_monotonic_ms();
    pthread_mutex_unlock(&m->lock);
    ember_log_info("blockd=%s address=%s registered", req->blockd_id, req->address);
    return reply_ack(ctx);
}

static grpc_status_code handle_heartbeat(ember_rpc_ctx *ctx, const ProtobufCMessage *msg,
                                         void *user)
{
    const Ember__HeartbeatRequest *req = (const Ember__HeartbeatRequest *)msg;
    Ember__HeartbeatReply reply = EMBER__HEARTBEAT_REPLY__INIT;
    struct master *m = user;

    pthread_mutex_lock(&m->lock);
    if (req->is_blockd) {
        struct blockd_info *b = find_blockd(m, req->id);
        if (b && b->alive) {
            b->last_heartbeat_ms = ember_monotonic_ms();
            b->blocks = req->blocks;
            b->bytes_in_memory = req->bytes_in_memory;
            b->bytes_on_disk = req->bytes_on_disk;
            b->evictions = req->evictions;
            for (size_t i = 0; i < req->n_dropped_blocks; i++)
                master_cache_forget(m, req->dropped_blocks[i], b->address);
            reply.known = 1;
        }
    } else {
        struct worker_info *w = master_find_worker(m, req->id);
        if (w && w->alive) {
            w->last_heartbeat_ms = ember_monotonic_ms();
            reply.known = 1;
        }
    }
    pthread_mutex_unlock(&m->lock);
    ember_rpc_send(ctx, &reply.base);
    return GRPC_STATUS_OK;
}

static grpc_status_code handle_report(ember_rpc_ctx *ctx, const ProtobufCMessage *msg, void *user)
{
    master_task_report(user, (const Ember__TaskReport *)msg);
    return reply_ack(ctx);
}

static grpc_status_code handle_reports(ember_rpc_ctx *ctx, const ProtobufCMessage *msg,
                                       void *user)
{
    const Ember__TaskReports *batch = (const Ember__TaskReports *)msg;

    for (size_t i = 0; i < batch->n_reports; i++)
        master_task_report(user, batch->reports[i]);
    return reply_ack(ctx);
}

static char *new_app_id(struct master *m)
{
    char stamp[32];
    time_t now = time(NULL);
    struct tm tm;

    gmtime_r(&now, &tm);
    strftime(stamp, sizeof(stamp), "%Y%m%d%H%M%S", &tm);
    return ember_xasprintf("app-%s-%04llu", stamp, (unsigned long long)++m->app_counter);
}

static grpc_status_code handle_create_app(ember_rpc_ctx *ctx, const ProtobufCMessage *msg,
                                          void *user)
{
    const Ember__CreateApplicationRequest *req = (const Ember__CreateApplicationRequest *)msg;
    Ember__CreateApplicationReply reply = EMBER__CREATE_APPLICATION_REPLY__INIT;
    struct master *m = user;
    struct app *a = ember_xcalloc(1, sizeof(*a));

    a->name = ember_xstrdup(*req->name ? req->name : "ember-app");
    a->user = ember_xstrdup(req->user);
    a->start_ms = ember_now_ms();
    a->properties = *req->properties_json ? json_loads(req->properties_json, 0, NULL) : NULL;
    if (!json_is_object(a->properties)) {
        json_decref(a->properties);
        a->properties = json_object();
    }
    pthread_mutex_lock(&m->lock);
    a->id = new_app_id(m);
    ptr_array_push(&m->apps, a);
    reply.app_id = ember_xstrdup(a->id);
    master_journal_app_state(m, a->id);
    pthread_mutex_unlock(&m->lock);
    ember_log_info("app=%s name=%.100s created", reply.app_id, a->name);
    ember_rpc_send(ctx, &reply.base);
    free(reply.app_id);
    return GRPC_STATUS_OK;
}

/* Collects the block id prefixes of an application's shuffles and results. */
static void app_block_prefixes(const struct app *a, struct ptr_array *prefixes)
{
    for (size_t i = 0; i < a->nodes.n; i++) {
        const struct rdd_node *n = a->nodes.items[i];
        if (n->shuffle)
            ptr_array_push(prefixes, ember_xasprintf("shuffle_%u_", n->shuffle->id));
        if (n->cache)
            ptr_array_push(prefixes, ember_xasprintf("rdd_%u_", n->gid));
    }
    for (size_t i = 0; i < a->broadcasts.n; i++)
        ptr_array_push(prefixes,
                       ember_xstrdup(((const struct broadcast_info *)a->broadcasts.items[i])->block_id));
    for (size_t i = 0; i < a->jobs.n; i++)
        ptr_array_push(prefixes,
                       ember_xasprintf("result_%u_", ((const struct job *)a->jobs.items[i])->id));
}

static void alive_blockd_addresses(struct master *m, struct ptr_array *out)
{
    for (size_t i = 0; i < m->blockds.n; i++) {
        struct blockd_info *b = m->blockds.items[i];
        if (b->alive)
            ptr_array_push(out, ember_xstrdup(b->address));
    }
}

static void remove_blocks(struct master *m, struct ptr_array *addresses, struct ptr_array *prefixes)
{
    for (size_t i = 0; i < addresses->n; i++) {
        grpc_channel *ch = ember_rpc_channel_create(addresses->items[i], 0);
        for (size_t j = 0; j < prefixes->n; j++) {
            Ember__RemoveBlocksRequest req = EMBER__REMOVE_BLOCKS_REQUEST__INIT;
            ProtobufCMessage *reply = NULL;
            req.prefix = prefixes->items[j];
            ember_rpc_call(ch, &ember__block_manager__descriptor, "RemoveBlocks", &req.base,
                           &reply, NULL, NULL, 2000, NULL);
            if (reply)
                protobuf_c_message_free_unpacked(reply, NULL);
        }
        grpc_channel_destroy(ch);
        free(addresses->items[i]);
    }
    for (size_t j = 0; j < prefixes->n; j++)
        free(prefixes->items[j]);
    free(addresses->items);
    free(prefixes->items);
}

static grpc_status_code handle_end_app(ember_rpc_ctx *ctx, const ProtobufCMessage *msg, void *user)
{
    const Ember__AppRef *req = (const Ember__AppRef *)msg;
    struct master *m = user;
    struct ptr_array addresses = {0}, prefixes = {0};
    struct app *a;

    pthread_mutex_lock(&m->lock);
    a = master_find_app(m, req->app_id);
    if (!a) {
        pthread_mutex_unlock(&m->lock);
        return fail_app(ctx, req->app_id, 0);
    }
    if (!a->ended) {
        a->ended = 1;
        a->end_ms = ember_now_ms();
        master_journal_app_state(m, a->id);
        for (size_t i = 0; i < a->jobs.n; i++) {
            struct job *j = a->jobs.items[i];
            if (j->status == JOB_RUNNING)
                master_fail_job(m, j, NULL, -1, "the application ended while the job ran");
            master_results_release(m, j);
        }
        app_block_prefixes(a, &prefixes);
        alive_blockd_addresses(m, &addresses);
    }
    pthread_mutex_unlock(&m->lock);
    remove_blocks(m, &addresses, &prefixes);
    ember_log_info("app=%s ended", req->app_id);
    return reply_ack(ctx);
}

static grpc_status_code handle_submit(ember_rpc_ctx *ctx, const ProtobufCMessage *msg, void *user)
{
    const Ember__SubmitJobRequest *req = (const Ember__SubmitJobRequest *)msg;
    Ember__SubmitJobReply reply = EMBER__SUBMIT_JOB_REPLY__INIT;
    struct master *m = user;
    struct ptr_array launches = {0};
    struct app *a;
    char *error = NULL;
    int rc;

    pthread_mutex_lock(&m->lock);
    a = master_find_app(m, req->app_id);
    if (!a || a->ended) {
        pthread_mutex_unlock(&m->lock);
        return fail_app(ctx, req->app_id, a != NULL);
    }
    rc = master_submit_job(m, a, req->job_json, &reply.job_id, &error);
    if (rc == 0)
        master_schedule_soon(m, &launches);
    pthread_mutex_unlock(&m->lock);
    master_send_launches(m, &launches, 0);   /* the driver waits for this answer */
    if (rc != 0) {
        ember_rpc_set_details(ctx, error);
        free(error);
        return GRPC_STATUS_INVALID_ARGUMENT;
    }
    ember_log_info("app=%s job=%u submitted", req->app_id, reply.job_id);
    ember_rpc_send(ctx, &reply.base);
    return GRPC_STATUS_OK;
}

static grpc_status_code handle_unpersist(ember_rpc_ctx *ctx, const ProtobufCMessage *msg,
                                         void *user)
{
    const Ember__RddRef *req = (const Ember__RddRef *)msg;
    struct master *m = user;
    struct ptr_array addresses = {0}, prefixes = {0};
    struct rdd_node *n = NULL;
    struct app *a;

    pthread_mutex_lock(&m->lock);
    a = master_find_app(m, req->app_id);
    for (size_t i = 0; a && i < a->nodes.n && !n; i++)
        if (((struct rdd_node *)a->nodes.items[i])->id == req->rdd_id)
            n = a->nodes.items[i];
    if (n && n->cache) {
        n->persisted = 0;
        master_cache_free(n);
        ptr_array_push(&prefixes, ember_xasprintf("rdd_%u_", n->gid));
        alive_blockd_addresses(m, &addresses);
    }
    pthread_mutex_unlock(&m->lock);
    if (!a)
        return fail_app(ctx, req->app_id, 0);
    remove_blocks(m, &addresses, &prefixes);
    return reply_ack(ctx);
}

static struct broadcast_info *find_broadcast(struct app *a, uint64_t id)
{
    for (size_t i = 0; i < a->broadcasts.n; i++) {
        struct broadcast_info *b = a->broadcasts.items[i];
        if (b->id == id)
            return b;
    }
    return NULL;
}

static grpc_status_code handle_add_broadcast(ember_rpc_ctx *ctx, const ProtobufCMessage *msg,
                                             void *user)
{
    const Ember__AddBroadcastRequest *req = (const Ember__AddBroadcastRequest *)msg;
    struct master *m = user;
    struct broadcast_info *b;
    struct app *a;

    pthread_mutex_lock(&m->lock);
    a = master_find_app(m, req->app_id);
    if (a && !a->ended) {
        b = find_broadcast(a, req->broadcast_id);
        if (!b) {
            b = ember_xcalloc(1, sizeof(*b));
            b->id = req->broadcast_id;
            ptr_array_push(&a->broadcasts, b);
        }
        replace_str(&b->block_id, req->block_id);
        replace_str(&b->location, req->location);
        b->size = req->size;
        b->destroyed = 0;
    }
    pthread_mutex_unlock(&m->lock);
    if (!a || a->ended)
        return fail_app(ctx, req->app_id, a != NULL);
    ember_log_info("app=%s broadcast=%llu block=%s size=%llu stored", req->app_id,
                   (unsigned long long)req->broadcast_id, req->block_id,
                   (unsigned long long)req->size);
    return reply_ack(ctx);
}

static grpc_status_code handle_remove_broadcast(ember_rpc_ctx *ctx, const ProtobufCMessage *msg,
                                                void *user)
{
    const Ember__RemoveBroadcastRequest *req = (const Ember__RemoveBroadcastRequest *)msg;
    struct master *m = user;
    struct ptr_array addresses = {0}, prefixes = {0};
    struct broadcast_info *b = NULL;
    struct app *a;

    pthread_mutex_lock(&m->lock);
    a = master_find_app(m, req->app_id);
    b = a ? find_broadcast(a, req->broadcast_id) : NULL;
    if (b && !b->destroyed) {
        b->destroyed = !req->keep_source;
        ptr_array_push(&prefixes, ember_xstrdup(b->block_id));
        for (size_t i = 0; i < m->blockds.n; i++) {
            struct blockd_info *bd = m->blockds.items[i];
            if (bd->alive && !(req->keep_source && strcmp(bd->address, b->location) == 0))
                ptr_array_push(&addresses, ember_xstrdup(bd->address));
        }
    }
    pthread_mutex_unlock(&m->lock);
    if (!a)
        return fail_app(ctx, req->app_id, 0);
    if (!b)
        return master_rpc_fail(ctx, GRPC_STATUS_NOT_FOUND, "no such broadcast in this application");
    remove_blocks(m, &addresses, &prefixes);
    return reply_ack(ctx);
}

static struct job *find_job(struct master *m, const char *app_id, uint32_t job_id)
{
    struct job *j;

    j = master_job_by_id(m, job_id);
    if (!j)
        return NULL;
    return strcmp(j->app->id, app_id) == 0 ? j : NULL;
}

grpc_status_code master_send_json(ember_rpc_ctx *ctx, json_t *value)
{
    Ember__JsonReply reply = EMBER__JSON_REPLY__INIT;

    reply.json = json_dumps(value, JSON_COMPACT);
    json_decref(value);
    ember_rpc_send(ctx, &reply.base);
    free(reply.json);
    return GRPC_STATUS_OK;
}

grpc_status_code master_send_text(ember_rpc_ctx *ctx, struct master_text *text)
{
    Ember__JsonReply reply = EMBER__JSON_REPLY__INIT;

    reply.json = text->buf;
    ember_rpc_send(ctx, &reply.base);
    master_text_free(text);
    return GRPC_STATUS_OK;
}

static grpc_status_code fail_job(ember_rpc_ctx *ctx, const Ember__JobRef *req, const char *hint)
{
    char *why = ember_xasprintf("no such job: job %u is not in application %.100s%s", req->job_id,
                                req->app_id, hint);
    ember_rpc_set_details(ctx, why);
    free(why);
    return GRPC_STATUS_NOT_FOUND;
}

/* At most this many GetJob calls wait at once, so that they never hold all
 * the server's threads (8) and reports still get through. */
#define MAX_JOB_WAITERS 4
#define MAX_JOB_WAIT_MS 1000

/* Waits (lock held) until j is no longer running or wait_ms passed. Jobs are
 * never freed while the master runs, so j stays valid. */
static void wait_for_end(struct master *m, struct job *j, uint32_t wait_ms)
{
    struct timespec until;

    if (wait_ms > MAX_JOB_WAIT_MS)
        wait_ms = MAX_JOB_WAIT_MS;
    until = ember_realtime_after_ms(wait_ms);
    ember_rpc_release_listener();      /* reports must get through meanwhile */
    m->job_waiters++;
    while (j->status == JOB_RUNNING && !ember_daemon_is_stopping(m->daemon)
           && pthread_cond_timedwait(&m->job_ended, &m->lock, &until) == 0)
        ;
    m->job_waiters--;
}

/* GetJob's answer: a live job's view written into text (returns 1) after
 * waiting up to wait_ms for its end, else the recorded view (*view, NULL when
 * the job is found nowhere; returns 0). */
static int job_answer(struct master *m, const char *app_id, uint32_t job_id, uint32_t wait_ms,
                      int inline_results, struct master_text *text, json_t **view)
{
    struct job *j;

    pthread_mutex_lock(&m->lock);
    j = find_job(m, app_id, job_id);
    if (j && j->status == JOB_RUNNING && wait_ms && m->job_waiters < MAX_JOB_WAITERS)
        wait_for_end(m, j, wait_ms);
    if (j)
        master_text_job(text, j, inline_results ? 2 : 1);
    else
        *view = master_history_find(m, "job", app_id, job_id);
    pthread_mutex_unlock(&m->lock);
    return j != NULL;
}

static grpc_status_code handle_get_job(ember_rpc_ctx *ctx, const ProtobufCMessage *msg, void *user)
{
    const Ember__JobRef *req = (const Ember__JobRef *)msg;
    struct master *m = user;
    struct master_text text = {0};
    json_t *view = NULL;

    if (job_answer(m, req->app_id, req->job_id, req->wait_ms, req->inline_results, &text, &view))
        return master_send_text(ctx, &text);
    if (!view)
        return fail_job(ctx, req,
                        " (check the job id; a job that was running when the master restarted "
                        "is lost)");
    return master_send_json(ctx, view);
}

static void release_journal(void *arg)
{
    struct master *m = arg;

    pthread_mutex_lock(&m->lock);
    master_journal_release(m);
    pthread_mutex_unlock(&m->lock);
}

/* A SubmitJobAndWait whose launches are on their way. */
struct submitted {
    struct master *m;
    ember_rpc_ctx *ctx;                /* deferred, or the handler's own */
    char *app_id;
    uint32_t job_id, wait_ms;
    int inline_results;
};

/* The answer once the launches were sent: GetJob's JSON after waiting (or
 * {"jobId"} alone should the job be found nowhere, as the gateway answered
 * when its GetJob after SubmitJob failed). */
static grpc_status_code answer_submitted(struct submitted *sub)
{
    struct master_text text = {0};
    json_t *view = NULL;
    int live = job_answer(sub->m, sub->app_id, sub->job_id, sub->wait_ms, sub->inline_results,
                          &text, &view);

    ember_log_info("app=%s job=%u submitted", sub->app_id, sub->job_id);
    if (live)
        return master_send_text(sub->ctx, &text);
    if (!view)
        view = json_pack("{s:I}", "jobId", (json_int_t)sub->job_id);
    return master_send_json(sub->ctx, view);
}

/* The launch replies were applied (on the server thread that read the last). */
static void answer_after_launches(void *arg)
{
    struct submitted *sub = arg;

    ember_rpc_deferred_finish(sub->ctx, answer_submitted(sub));
    free(sub->app_id);
    free(sub);
}

/* SubmitJob and GetJob in one call, for the gateway's POST .../jobs?waitMs=N:
 * errors are SubmitJob's, the answer is GetJob's after waiting. A job whose
 * first tasks it launches defers its answer until their replies came: the
 * server thread that reads the last reply answers (with the reports the
 * replies brought), no thread is woken to wait for them. */
static grpc_status_code handle_submit_and_wait(ember_rpc_ctx *ctx, const ProtobufCMessage *msg,
                                               void *user)
{
    const Ember__SubmitJobRequest *req = (const Ember__SubmitJobRequest *)msg;
    struct master *m = user;
    struct ptr_array launches = {0};
    struct submitted sub = {.m = m, .ctx = ctx, .wait_ms = req->wait_ms,
                            .inline_results = req->inline_results};
    uint32_t report_wait_ms = req->wait_ms ? (uint32_t)m->launch_report_wait_ms : 0;
    char *error = NULL;
    struct app *a;
    ember_rpc_ctx *deferred;
    grpc_status_code st;

    pthread_mutex_lock(&m->lock);
    a = master_find_app(m, req->app_id);
    if (!a || a->ended) {
        pthread_mutex_unlock(&m->lock);
        return fail_app(ctx, req->app_id, a != NULL);
    }
    if (master_submit_job(m, a, req->job_json, &sub.job_id, &error) != 0) {
        pthread_mutex_unlock(&m->lock);
        ember_rpc_set_details(ctx, error);
        free(error);
        return GRPC_STATUS_INVALID_ARGUMENT;
    }
    /* As handle_submit: launched from here when the scheduler is idle. This
     * call waits for the job next, so it may as well wait a little for the
     * launch replies to bring the reports of short tasks (no ReportTask call). */
    master_schedule_soon(m, &launches);
    if (launches.n) {
        /* The job may end with the reports in the launch replies: its
         * journal line is written once the answer has left. */
        master_journal_hold(m);
        ember_rpc_after_reply(ctx, release_journal, m);
    }
    pthread_mutex_unlock(&m->lock);
    sub.app_id = ember_xstrdup(req->app_id);
    if (launches.n && (deferred = ember_rpc_defer(ctx)) != NULL) {
        struct submitted *later = ember_xcalloc(1, sizeof(*later));
        *later = sub;
        later->ctx = deferred;
        master_send_launches_async(m, &launches, report_wait_ms, deferred, answer_after_launches,
                                   later);
        return GRPC_STATUS_OK;         /* answered by answer_after_launches */
    }
    master_send_launches(m, &launches, report_wait_ms);
    st = answer_submitted(&sub);
    free(sub.app_id);
    return st;
}

static grpc_status_code handle_cancel(ember_rpc_ctx *ctx, const ProtobufCMessage *msg, void *user)
{
    const Ember__JobRef *req = (const Ember__JobRef *)msg;
    struct master *m = user;
    struct job *j;

    pthread_mutex_lock(&m->lock);
    j = find_job(m, req->app_id, req->job_id);
    if (j && j->status == JOB_RUNNING) {
        char *why = ember_xasprintf("Job %u cancelled", j->id);
        j->cancelled = 1;
        master_fail_job(m, j, NULL, -1, why);   /* kills its running tasks */
        free(why);
    }
    pthread_mutex_unlock(&m->lock);
    if (!j)
        return fail_job(ctx, req, " (check the job id)");
    ember_log_info("app=%s job=%u cancel requested", req->app_id, req->job_id);
    return reply_ack(ctx);
}

/* Adds what the journal remembers of earlier masters to a query's answer. */
static json_t *with_history(struct master *m, const Ember__QueryRequest *req, json_t *view,
                            char **error)
{
    if (!view && strcmp(req->what, "stage") == 0)
        view = master_history_find(m, "stage", req->app_id, req->id);
    else if (!view && *req->app_id && master_history_find_app(m, req->app_id))
        view = json_array();           /* an application of an earlier master */
    if (view && json_is_array(view))
        master_history_extend(m, req->what, req->app_id, view);
    if (view) {
        free(*error);
        *error = NULL;
    }
    return view;
}

static grpc_status_code handle_query(ember_rpc_ctx *ctx, const ProtobufCMessage *msg, void *user)
{
    const Ember__QueryRequest *req = (const Ember__QueryRequest *)msg;
    struct master *m = user;
    char *error = NULL;
    json_t *view;

    pthread_mutex_lock(&m->lock);
    view = master_json_query(m, req->what, req->app_id, req->id, &error);
    view = with_history(m, req, view, &error);
    pthread_mutex_unlock(&m->lock);
    if (!view) {
        grpc_status_code st = strncmp(error, "unknown query", 13) == 0
                                  ? GRPC_STATUS_INVALID_ARGUMENT
                                  : GRPC_STATUS_NOT_FOUND;
        ember_rpc_set_details(ctx, error);
        free(error);
        return st;
    }
    return master_send_json(ctx, view);
}

void master_check_liveness(struct master *m)
{
    uint64_t now = ember_monotonic_ms();

    for (size_t i = 0; i < m->workers.n; i++) {
        struct worker_info *w = m->workers.items[i];
        if (w->alive && now - w->last_heartbeat_ms > (uint64_t)m->heartbeat_timeout_ms) {
            w->alive = 0;
            ember_log_warn("worker=%s no heartbeat for %lld ms: declared dead", w->id,
                           (long long)m->heartbeat_timeout_ms);
            master_worker_lost(m, w);
            master_drivers_worker_lost(m, w->id, "died (no heartbeat)", 0);
        }
    }
    for (size_t i = 0; i < m->blockds.n; i++) {
        struct blockd_info *b = m->blockds.items[i];
        if (b->alive && now - b->last_heartbeat_ms > (uint64_t)m->heartbeat_timeout_ms) {
            b->alive = 0;
            ember_log_warn("blockd=%s no heartbeat for %lld ms: declared dead", b->id,
                           (long long)m->heartbeat_timeout_ms);
            master_blockd_lost(m, b->address);
        }
    }
}

const ember_rpc_method_impl master_methods[] = {
    {"RegisterWorker", EMBER_RPC_UNARY, handle_register_worker},
    {"RegisterBlockManager", EMBER_RPC_UNARY, handle_register_blockd},
    {"Heartbeat", EMBER_RPC_UNARY, handle_heartbeat, EMBER_RPC_QUICK},
    {"ReportTask", EMBER_RPC_UNARY, handle_report, EMBER_RPC_QUICK},
    {"CreateApplication", EMBER_RPC_UNARY, handle_create_app},
    {"EndApplication", EMBER_RPC_UNARY, handle_end_app},
    {"SubmitJob", EMBER_RPC_UNARY, handle_submit, EMBER_RPC_QUICK},
    {"GetJob", EMBER_RPC_UNARY, handle_get_job, EMBER_RPC_QUICK},
    {"SubmitJobAndWait", EMBER_RPC_UNARY, handle_submit_and_wait, EMBER_RPC_QUICK},
    {"CancelJob", EMBER_RPC_UNARY, handle_cancel},
    {"Unpersist", EMBER_RPC_UNARY, handle_unpersist},
    {"AddBroadcast", EMBER_RPC_UNARY, handle_add_broadcast},
    {"RemoveBroadcast", EMBER_RPC_UNARY, handle_remove_broadcast},
    {"Query", EMBER_RPC_UNARY, handle_query},
    {"ReportTasks", EMBER_RPC_UNARY, handle_reports, EMBER_RPC_QUICK},
};
const size_t master_n_methods = sizeof(master_methods) / sizeof(master_methods[0]);
