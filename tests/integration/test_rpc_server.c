/* The table-driven gRPC server of common/rpc.c, in process: a unary reply
 * leaves with the call's status (one batch), so what a client sees must stay
 * what it saw when the reply was sent first: the reply with OK, no reply with
 * an error status (also after a reply was sent), INTERNAL for a handler that
 * replies twice; a reply sent early (ember_rpc_reply_now) arrives while its
 * handler still runs; streams still stream. Many sequential and concurrent calls
 * exercise the reuse of the calls' completion queues. A handler may defer its
 * answer (ember_rpc_defer) while calls of its own go out without a thread
 * waiting for them (ember_rpc_unary_many_async): its thread serves other
 * calls meanwhile, and the answer, sent from the thread that took the last
 * reply, carries their replies and failures. The server then shuts down
 * cleanly (run under ASan by make test-asan). */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "blockd.pb-c.h"
#include "master.pb-c.h"
#include "rpc.h"
#include "util.h"
#include "../unit/test.h"

#define CALL_TIMEOUT_MS 10000
#define STREAM_CHUNKS 3

/* GetJob of application "slow" waits (at most 10 s) for the test to let it go. */
static pthread_mutex_t slow_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t slow_changed = PTHREAD_COND_INITIALIZER;
static int slow_started, slow_released, slow_timed_out;

static void wait_until_released(void)
{
    struct timespec until;

    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 10;
    pthread_mutex_lock(&slow_lock);
    slow_started = 1;
    pthread_cond_broadcast(&slow_changed);
    while (!slow_released)
        if (pthread_cond_timedwait(&slow_changed, &slow_lock, &until) != 0) {
            slow_timed_out = 1;
            break;
        }
    pthread_mutex_unlock(&slow_lock);
}

/* GetJob: echoes the reference as JSON text. */
static grpc_status_code echo_job(ember_rpc_ctx *ctx, const ProtobufCMessage *msg, void *user)
{
    const Ember__JobRef *req = (const Ember__JobRef *)msg;
    Ember__JsonReply reply = EMBER__JSON_REPLY__INIT;
    (void)user;
    if (strcmp(req->app_id, "slow") == 0)
        wait_until_released();
    reply.json = ember_xasprintf("{\"app\":\"%s\",\"job\":%u}", req->app_id, req->job_id);
    ember_rpc_send(ctx, &reply.base);
    free(reply.json);
    return GRPC_STATUS_OK;
}

/* Query: two replies to a unary call. */
static grpc_status_code reply_twice(ember_rpc_ctx *ctx, const ProtobufCMessage *msg, void *user)
{
    Ember__JsonReply reply = EMBER__JSON_REPLY__INIT;
    (void)msg;
    (void)user;
    reply.json = "[]";
    ember_rpc_send(ctx, &reply.base);
    ember_rpc_send(ctx, &reply.base);
    return GRPC_STATUS_OK;
}

/* CancelJob: an error without a reply. */
static grpc_status_code not_found(ember_rpc_ctx *ctx, const ProtobufCMessage *msg, void *user)
{
    (void)msg;
    (void)user;
    ember_rpc_set_details(ctx, "no such job here");
    return GRPC_STATUS_NOT_FOUND;
}

/* KillDriver: a reply, then an error status. */
static grpc_status_code reply_then_fail(ember_rpc_ctx *ctx, const ProtobufCMessage *msg,
                                        void *user)
{
    Ember__JsonReply reply = EMBER__JSON_REPLY__INIT;
    (void)msg;
    (void)user;
    reply.json = "{}";
    ember_rpc_send(ctx, &reply.base);
    ember_rpc_set_details(ctx, "changed its mind");
    return GRPC_STATUS_FAILED_PRECONDITION;
}

/* DriverStatus: replies at once with ember_rpc_reply_now, then goes on until
 * the client says it has the reply (at most 10 s): the reply must leave before
 * the handler returns. */
static pthread_mutex_t early_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t early_changed = PTHREAD_COND_INITIALIZER;
static int early_received, early_sent_ok = -1, early_handler_returned;

static grpc_status_code reply_early(ember_rpc_ctx *ctx, const ProtobufCMessage *msg, void *user)
{
    Ember__JsonReply reply = EMBER__JSON_REPLY__INIT;
    struct timespec until;
    int ok;
    (void)msg;
    (void)user;
    reply.json = "{\"early\":true}";
    ember_rpc_send(ctx, &reply.base);
    ok = ember_rpc_reply_now(ctx);
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 10;
    pthread_mutex_lock(&early_lock);
    early_sent_ok = ok;
    while (!early_received && pthread_cond_timedwait(&early_changed, &early_lock, &until) == 0)
        ;
    early_handler_returned = 1;
    pthread_cond_broadcast(&early_changed);
    pthread_mutex_unlock(&early_lock);
    return GRPC_STATUS_OK;
}

/* GetBlock: STREAM_CHUNKS chunks, in order. */
static grpc_status_code stream_chunks(ember_rpc_ctx *ctx, const ProtobufCMessage *msg, void *user)
{
    (void)msg;
    (void)user;
    for (uint64_t i = 0; i < STREAM_CHUNKS; i++) {
        Ember__Chunk c = EMBER__CHUNK__INIT;
        c.offset = i;
        c.last = i + 1 == STREAM_CHUNKS;
        if (ember_rpc_send(ctx, &c.base) != 0)
            return GRPC_STATUS_CANCELLED;
    }
    return GRPC_STATUS_OK;
}

/* SubmitJobAndWait defers its answer and makes calls of its own, by its
 * app_id: "echo" three GetJob calls to this server, "slow" one to the GetJob
 * that waits for the test, "nowhere" one to a port nobody listens on, "none"
 * one to a method the descriptor lacks (none starts: the answer is sent
 * before the handler returns). The answer lists each call's status and reply. */
static grpc_channel *self_channel, *nowhere_channel;
static int deferred_after_runs;
static __thread int starting_calls;    /* inside ember_rpc_unary_many_async */

struct deferred {
    ember_rpc_ctx *ctx;
    Ember__JobRef refs[3];
    ember_rpc_unary calls[3];
    size_t n;
};

static void count_after(void *arg)
{
    (void)arg;
    __atomic_add_fetch(&deferred_after_runs, 1, __ATOMIC_SEQ_CST);
}

static void answer_deferred(void *arg)
{
    struct deferred *d = arg;
    Ember__JsonReply reply = EMBER__JSON_REPLY__INIT;
    char *text = ember_xstrdup(starting_calls ? "inline" : "later");

    for (size_t i = 0; i < d->n; i++) {
        const char *json = d->calls[i].reply ? ((Ember__JsonReply *)d->calls[i].reply)->json : "-";
        char *more = ember_xasprintf("%s|%d:%s", text, (int)d->calls[i].status, json);
        free(text);
        text = more;
        if (d->calls[i].reply)
            protobuf_c_message_free_unpacked(d->calls[i].reply, NULL);
        free(d->calls[i].details);
    }
    reply.json = text;
    ember_rpc_send(d->ctx, &reply.base);
    ember_rpc_deferred_finish(d->ctx, GRPC_STATUS_OK);
    free(text);
    free(d);
}

static grpc_status_code defer_and_call(ember_rpc_ctx *ctx, const ProtobufCMessage *msg,
                                       void *user)
{
    const Ember__SubmitJobRequest *req = (const Ember__SubmitJobRequest *)msg;
    struct deferred *d = ember_xcalloc(1, sizeof(*d));
    const char *scenario = req->app_id;
    (void)user;

    d->n = strcmp(scenario, "echo") == 0 ? 3 : 1;
    for (size_t i = 0; i < d->n; i++) {
        ember__job_ref__init(&d->refs[i]);
        d->refs[i].app_id = strcmp(scenario, "slow") == 0 ? "slow" : "deferred";
        d->refs[i].job_id = (uint32_t)(i + 1);
        d->calls[i].ch = strcmp(scenario, "nowhere") == 0 ? nowhere_channel : self_channel;
        d->calls[i].svc = &ember__master__descriptor;
        d->calls[i].method = strcmp(scenario, "none") == 0 ? "Nope" : "GetJob";
        d->calls[i].req = &d->refs[i].base;
    }
    ember_rpc_after_reply(ctx, count_after, NULL);
    d->ctx = ember_rpc_defer(ctx);
    if (!d->ctx) {
        free(d);
        ember_rpc_set_details(ctx, "could not defer");
        return GRPC_STATUS_INTERNAL;
    }
    starting_calls = 1;
    ember_rpc_unary_many_async(d->ctx, d->calls, d->n, CALL_TIMEOUT_MS, answer_deferred, d);
    starting_calls = 0;
    return GRPC_STATUS_OK;
}

/* The answer without where it was made: "later" (a server thread, after the
 * handler deferred) or "inline" (the handler's thread before
 * ember_rpc_unary_many_async returned: no call started, or all ended first). */
static const char *replies_of(const char *answer)
{
    const char *bar = answer ? strchr(answer, '|') : NULL;
    return bar ? bar : "(none)";
}

/* One SubmitJobAndWait call of a scenario: its answer's text, or NULL. */
static char *deferred_call(grpc_channel *ch, const char *scenario)
{
    Ember__SubmitJobRequest req = EMBER__SUBMIT_JOB_REQUEST__INIT;
    ProtobufCMessage *reply = NULL;
    char *text = NULL;
    grpc_status_code st;

    req.app_id = (char *)scenario;
    req.job_json = "{}";
    st = ember_rpc_call(ch, &ember__master__descriptor, "SubmitJobAndWait", &req.base, &reply,
                        NULL, NULL, CALL_TIMEOUT_MS, NULL);
    if (st == GRPC_STATUS_OK && reply)
        text = ember_xstrdup(((Ember__JsonReply *)reply)->json);
    else
        fprintf(stderr, "SubmitJobAndWait %s: status %d\n", scenario, (int)st);
    if (reply)
        protobuf_c_message_free_unpacked(reply, NULL);
    return text;
}

struct slow_caller {
    grpc_channel *ch;
    char *answer;
};

static void *call_slow(void *arg)
{
    struct slow_caller *c = arg;
    c->answer = deferred_call(c->ch, "slow");
    return NULL;
}

static const ember_rpc_method_impl master_impls[] = {
    {"GetJob", EMBER_RPC_UNARY, echo_job},
    {"Query", EMBER_RPC_UNARY, reply_twice},
    {"CancelJob", EMBER_RPC_UNARY, not_found},
    {"KillDriver", EMBER_RPC_UNARY, reply_then_fail},
    {"DriverStatus", EMBER_RPC_UNARY, reply_early},
    {"SubmitJobAndWait", EMBER_RPC_UNARY, defer_and_call},
};
static const ember_rpc_method_impl blockd_impls[] = {
    {"GetBlock", EMBER_RPC_SERVER_STREAM, stream_chunks},
};

/* One GetJob call; 0 when its reply echoes (app, job). */
static int echo_call(grpc_channel *ch, const char *app, uint32_t job)
{
    Ember__JobRef req = EMBER__JOB_REF__INIT;
    ProtobufCMessage *reply = NULL;
    char *want = ember_xasprintf("{\"app\":\"%s\",\"job\":%u}", app, job);
    grpc_status_code st;
    int ok;

    req.app_id = (char *)app;
    req.job_id = job;
    st = ember_rpc_call(ch, &ember__master__descriptor, "GetJob", &req.base, &reply, NULL, NULL,
                        CALL_TIMEOUT_MS, NULL);
    ok = st == GRPC_STATUS_OK && reply && strcmp(((Ember__JsonReply *)reply)->json, want) == 0;
    if (!ok)
        fprintf(stderr, "GetJob %s/%u: status %d, reply %s\n", app, job, (int)st,
                reply ? ((Ember__JsonReply *)reply)->json : "(none)");
    if (reply)
        protobuf_c_message_free_unpacked(reply, NULL);
    free(want);
    return ok ? 0 : -1;
}

struct caller {
    grpc_channel *ch;
    char app[32];
    int calls, failed;
};

static void *call_many(void *arg)
{
    struct caller *c = arg;
    for (int i = 0; i < c->calls; i++)
        if (echo_call(c->ch, c->app, (uint32_t)i) != 0)
            c->failed++;
    return NULL;
}

static int count_chunk(const ProtobufCMessage *msg, void *user)
{
    const Ember__Chunk *c = (const Ember__Chunk *)msg;
    int *seen = user;
    if (c->offset == (uint64_t)*seen)
        (*seen)++;
    return 0;
}

/* A unary method's status and reply, as a client sees them. */
static grpc_status_code unary(grpc_channel *ch, const char *method, ProtobufCMessage **reply,
                              char **details)
{
    Ember__JobRef req = EMBER__JOB_REF__INIT;
    return ember_rpc_call(ch, &ember__master__descriptor, method, &req.base, reply, NULL, NULL,
                          CALL_TIMEOUT_MS, details);
}

int main(void)
{
    int port = 0;
    char address[64];
    ember_rpc_server *server;
    grpc_channel *ch;
    ProtobufCMessage *reply = NULL;
    char *details = NULL;
    grpc_status_code st;

    grpc_init();
    server = ember_rpc_server_create("127.0.0.1:0", &port, NULL);
    CHECK(server != NULL, "server on a free port");
    if (!server)
        return TEST_EXIT();
    CHECK(ember_rpc_server_add_service(server, &ember__master__descriptor, master_impls,
                                       sizeof(master_impls) / sizeof(master_impls[0]), NULL)
              == 0,
          "master methods");
    CHECK(ember_rpc_server_add_service(server, &ember__block_manager__descriptor, blockd_impls,
                                       1, NULL)
              == 0,
          "stream method");
    ember_rpc_server_start(server, 2);
    snprintf(address, sizeof(address), "127.0.0.1:%d", port);
    ch = ember_rpc_channel_create(address, -1);

    /* Many more calls than armed slots: completion queues are reused. */
    int failed = 0;
    for (uint32_t i = 0; i < 300; i++)
        failed += echo_call(ch, "seq", i) != 0;
    CHECK(failed == 0, "%d of 300 sequential calls got a wrong reply", failed);

    /* Concurrent callers on their own channels and on a shared one. */
    struct caller callers[4];
    pthread_t threads[4];
    for (int i = 0; i < 4; i++) {
        callers[i].ch = i < 2 ? ch : ember_rpc_channel_create(address, -1);
        snprintf(callers[i].app, sizeof(callers[i].app), "app-%d", i);
        callers[i].calls = 100;
        callers[i].failed = 0;
        pthread_create(&threads[i], NULL, call_many, &callers[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(threads[i], NULL);
        CHECK(callers[i].failed == 0, "caller %d: %d calls failed", i, callers[i].failed);
        if (callers[i].ch != ch)
            grpc_channel_destroy(callers[i].ch);
    }

    st = unary(ch, "Query", &reply, &details);
    CHECK(st == GRPC_STATUS_INTERNAL && !reply && details
              && strstr(details, "exactly one reply"),
          "two replies: status %d, details %s", (int)st, details ? details : "(none)");
    if (reply)
        protobuf_c_message_free_unpacked(reply, NULL);
    free(details);
    reply = NULL;
    details = NULL;

    st = unary(ch, "CancelJob", &reply, &details);
    CHECK(st == GRPC_STATUS_NOT_FOUND && !reply && details
              && strcmp(details, "no such job here") == 0,
          "error without reply: status %d, details %s", (int)st, details ? details : "(none)");
    if (reply)
        protobuf_c_message_free_unpacked(reply, NULL);
    free(details);
    reply = NULL;
    details = NULL;

    st = unary(ch, "KillDriver", &reply, &details);
    CHECK(st == GRPC_STATUS_FAILED_PRECONDITION && !reply && details
              && strcmp(details, "changed its mind") == 0,
          "reply then error: status %d, details %s", (int)st, details ? details : "(none)");
    if (reply)
        protobuf_c_message_free_unpacked(reply, NULL);
    free(details);
    reply = NULL;
    details = NULL;

    st = unary(ch, "DriverStatus", &reply, &details);
    pthread_mutex_lock(&early_lock);
    CHECK(st == GRPC_STATUS_OK && reply
              && strcmp(((Ember__JsonReply *)reply)->json, "{\"early\":true}") == 0,
          "early reply: status %d", (int)st);
    CHECK(!early_handler_returned, "the early reply came only when its handler returned");
    early_received = 1;
    pthread_cond_broadcast(&early_changed);
    while (!early_handler_returned)
        pthread_cond_wait(&early_changed, &early_lock);   /* at most the handler's 10 s */
    CHECK(early_sent_ok == 1, "ember_rpc_reply_now said %d", early_sent_ok);
    pthread_mutex_unlock(&early_lock);
    if (reply)
        protobuf_c_message_free_unpacked(reply, NULL);
    free(details);
    reply = NULL;
    details = NULL;

    for (int round = 0; round < 3; round++) {
        Ember__GetBlockRequest req = EMBER__GET_BLOCK_REQUEST__INIT;
        int seen = 0;
        req.block_id = "b";
        st = ember_rpc_call(ch, &ember__block_manager__descriptor, "GetBlock", &req.base, NULL,
                            count_chunk, &seen, CALL_TIMEOUT_MS, NULL);
        CHECK(st == GRPC_STATUS_OK && seen == STREAM_CHUNKS, "stream: status %d, %d chunks",
              (int)st, seen);
    }

    /* Deferred answers. */
    self_channel = ch;
    nowhere_channel = ember_rpc_channel_create("127.0.0.1:1", -1);
    char *answer = deferred_call(ch, "echo");
    CHECK(strcmp(replies_of(answer), "|0:{\"app\":\"deferred\",\"job\":1}|0:{\"app\":"
                                     "\"deferred\",\"job\":2}|0:{\"app\":\"deferred\",\"job\":3}")
              == 0,
          "deferred answer with three replies: %s", answer ? answer : "(none)");
    free(answer);
    answer = deferred_call(ch, "nowhere");
    CHECK(strcmp(replies_of(answer), "|14:-") == 0, "a call that cannot connect: %s",
          answer ? answer : "(none)");
    free(answer);
    answer = deferred_call(ch, "none");
    CHECK(answer && strcmp(answer, "inline|12:-") == 0, "no call started: %s",
          answer ? answer : "(none)");
    free(answer);
    for (int i = 0; i < 50; i++) {
        answer = deferred_call(ch, "echo");
        failed += strncmp(replies_of(answer), "|0:{", 4) != 0;
        free(answer);
    }
    CHECK(failed == 0, "%d of 50 deferred calls failed", failed);

    /* The deferring thread is free at once: with both server threads taken
     * (the slow GetJob holds one), a deferred call still leaves one to serve
     * another call while its own call waits. */
    struct slow_caller slow = {ch, NULL};
    pthread_t slow_thread;
    pthread_create(&slow_thread, NULL, call_slow, &slow);
    pthread_mutex_lock(&slow_lock);
    while (!slow_started)
        pthread_cond_wait(&slow_changed, &slow_lock);   /* at most the call's 10 s */
    pthread_mutex_unlock(&slow_lock);
    CHECK(echo_call(ch, "meanwhile", 1) == 0, "a call while the deferred one waits");
    pthread_mutex_lock(&slow_lock);
    CHECK(!slow_timed_out, "the other call was served only once the slow one gave up");
    slow_released = 1;
    pthread_cond_broadcast(&slow_changed);
    pthread_mutex_unlock(&slow_lock);
    pthread_join(slow_thread, NULL);
    CHECK(slow.answer && strcmp(slow.answer, "later|0:{\"app\":\"slow\",\"job\":1}") == 0,
          "the deferred answer after the slow call: %s", slow.answer ? slow.answer : "(none)");
    free(slow.answer);
    /* each runs once its answer has left: the last may still be on its way */
    for (int i = 0; i < 1000 && __atomic_load_n(&deferred_after_runs, __ATOMIC_SEQ_CST) < 54; i++)
        nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
    CHECK(__atomic_load_n(&deferred_after_runs, __ATOMIC_SEQ_CST) == 54,
          "after-reply work of deferred calls ran %d times", deferred_after_runs);
    grpc_channel_destroy(nowhere_channel);

    /* The server still answers after all of the above. */
    CHECK(echo_call(ch, "last", 7) == 0, "a call after the errors");

    grpc_channel_destroy(ch);
    ember_rpc_server_shutdown(server);
    grpc_shutdown();
    return TEST_EXIT();
}
