/* The table-driven gRPC server of common/rpc.c, in process: a unary reply
 * leaves with the call's status (one batch), so what a client sees must stay
 * what it saw when the reply was sent first: the reply with OK, no reply with
 * an error status (also after a reply was sent), INTERNAL for a handler that
 * replies twice; a reply sent early (ember_rpc_reply_now) arrives while its
 * handler still runs; streams still stream. Many sequential and concurrent calls
 * exercise the reuse of the calls' completion queues; the server then shuts
 * down cleanly (run under ASan by make test-asan). */
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

/* GetJob: echoes the reference as JSON text. */
static grpc_status_code echo_job(ember_rpc_ctx *ctx, const ProtobufCMessage *msg, void *user)
{
    const Ember__JobRef *req = (const Ember__JobRef *)msg;
    Ember__JsonReply reply = EMBER__JSON_REPLY__INIT;
    (void)user;
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

static const ember_rpc_method_impl master_impls[] = {
    {"GetJob", EMBER_RPC_UNARY, echo_job},
    {"Query", EMBER_RPC_UNARY, reply_twice},
    {"CancelJob", EMBER_RPC_UNARY, not_found},
    {"KillDriver", EMBER_RPC_UNARY, reply_then_fail},
    {"DriverStatus", EMBER_RPC_UNARY, reply_early},
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

    /* The server still answers after all of the above. */
    CHECK(echo_call(ch, "last", 7) == 0, "a call after the errors");

    grpc_channel_destroy(ch);
    ember_rpc_server_shutdown(server);
    grpc_shutdown();
    return TEST_EXIT();
}
