/* Server threads of common/rpc.c take turns listening (EMBER_RPC_QUICK in
 * rpc.h), in process, on a server of 3 threads:
 * - quick calls one after another are all served by one thread (the one
 *   listening: no other thread is woken), and a call of another method is
 *   served by whichever thread took it;
 * - a call of a method that is not quick and blocks, and one of a quick
 *   method that blocks after ember_rpc_release_listener(), leave the others
 *   to serve: quick calls get through meanwhile;
 * - a quick handler may call its own server (ember_rpc_call hands the
 *   listening over first), and a quick handler's deferred answer, made on the
 *   listening thread by the done function of ember_rpc_unary_many_async, arrives;
 * - the server shuts down with threads waiting for their turn (ASan in
 *   make test-asan). */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "master.pb-c.h"
#include "rpc.h"
#include "util.h"
#include "../unit/test.h"

#define CALL_TIMEOUT_MS 10000
#define SERVER_THREADS 3

static grpc_channel *self_channel;

/* Blocked handlers wait here until the test lets them go (at most 10 s). */
static pthread_mutex_t gate_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_changed = PTHREAD_COND_INITIALIZER;
static int gate_waiting, gate_open, gate_timed_out;

static void wait_at_gate(void)
{
    struct timespec until;

    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 10;
    pthread_mutex_lock(&gate_lock);
    gate_waiting++;
    pthread_cond_broadcast(&gate_changed);
    while (!gate_open)
        if (pthread_cond_timedwait(&gate_changed, &gate_lock, &until) != 0) {
            gate_timed_out = 1;
            break;
        }
    gate_waiting--;
    pthread_mutex_unlock(&gate_lock);
}

static void wait_for_waiters(int n)
{
    pthread_mutex_lock(&gate_lock);
    while (gate_waiting < n && !gate_timed_out)
        pthread_cond_wait(&gate_changed, &gate_lock);   /* at most the handlers' 10 s */
    pthread_mutex_unlock(&gate_lock);
}

/* The thread that served each call, by the call's job id (< 256). */
static pthread_t served_by[256];

static void reply_json(ember_rpc_ctx *ctx, const char *json)
{
    Ember__JsonReply reply = EMBER__JSON_REPLY__INIT;
    reply.json = (char *)json;
    ember_rpc_send(ctx, &reply.base);
}

static grpc_status_code get_job(ember_rpc_ctx *ctx, const ProtobufCMessage *msg, void *user);

/* One GetJob call of this server; its status, and the reply's text in *json. */
static grpc_status_code call_get_job(grpc_channel *ch, const char *app, uint32_t job,
                                     char **json)
{
    Ember__JobRef req = EMBER__JOB_REF__INIT;
    ProtobufCMessage *reply = NULL;
    grpc_status_code st;

    req.app_id = (char *)app;
    req.job_id = job;
    st = ember_rpc_call(ch, &ember__master__descriptor, "GetJob", &req.base, &reply, NULL, NULL,
                        CALL_TIMEOUT_MS, NULL);
    *json = reply ? ember_xstrdup(((Ember__JsonReply *)reply)->json) : NULL;
    if (reply)
        protobuf_c_message_free_unpacked(reply, NULL);
    return st;
}

/* GetJob (quick), by app_id: "wait" releases the listening and waits at the
 * gate; "self" calls GetJob "plain" on its own server and answers its reply;
 * anything else answers "ok" at once. Records its thread by job id. */
static grpc_status_code get_job(ember_rpc_ctx *ctx, const ProtobufCMessage *msg, void *user)
{
    const Ember__JobRef *req = (const Ember__JobRef *)msg;
    (void)user;
    served_by[req->job_id & 255] = pthread_self();
    if (strcmp(req->app_id, "wait") == 0) {
        ember_rpc_release_listener();
        wait_at_gate();
    } else if (strcmp(req->app_id, "self") == 0) {
        char *inner = NULL;
        grpc_status_code st = call_get_job(self_channel, "plain", 200, &inner);
        if (st != GRPC_STATUS_OK || !inner) {
            free(inner);
            ember_rpc_set_details(ctx, "the call to its own server failed");
            return GRPC_STATUS_INTERNAL;
        }
        reply_json(ctx, inner);
        free(inner);
        return GRPC_STATUS_OK;
    }
    reply_json(ctx, "ok");
    return GRPC_STATUS_OK;
}

/* CancelJob (not quick): waits at the gate for job 1, records its thread. */
static grpc_status_code cancel_job(ember_rpc_ctx *ctx, const ProtobufCMessage *msg, void *user)
{
    const Ember__JobRef *req = (const Ember__JobRef *)msg;
    (void)user;
    served_by[req->job_id & 255] = pthread_self();
    if (req->job_id == 1)
        wait_at_gate();
    reply_json(ctx, "cancelled");
    return GRPC_STATUS_OK;
}

/* SubmitJobAndWait (quick): defers, calls GetJob "plain" twice on its own
 * server, answers with the replies from done on the thread that took the last. */
struct deferred {
    ember_rpc_ctx *ctx;
    Ember__JobRef refs[2];
    ember_rpc_unary calls[2];
};

static void answer_deferred(void *arg)
{
    struct deferred *d = arg;
    char text[256] = "";

    for (size_t i = 0; i < 2; i++) {
        const char *json = d->calls[i].reply ? ((Ember__JsonReply *)d->calls[i].reply)->json
                                             : "-";
        size_t used = strlen(text);
        snprintf(text + used, sizeof(text) - used, "%s%d:%s", i ? "|" : "",
                 (int)d->calls[i].status, json);
        if (d->calls[i].reply)
            protobuf_c_message_free_unpacked(d->calls[i].reply, NULL);
        free(d->calls[i].details);
    }
    reply_json(d->ctx, text);
    ember_rpc_deferred_finish(d->ctx, GRPC_STATUS_OK);
    free(d);
}

static grpc_status_code submit_and_wait(ember_rpc_ctx *ctx, const ProtobufCMessage *msg,
                                        void *user)
{
    struct deferred *d = ember_xcalloc(1, sizeof(*d));
    (void)msg;
    (void)user;
    for (size_t i = 0; i < 2; i++) {
        ember__job_ref__init(&d->refs[i]);
        d->refs[i].app_id = "plain";
        d->refs[i].job_id = (uint32_t)(210 + i);
        d->calls[i].ch = self_channel;
        d->calls[i].svc = &ember__master__descriptor;
        d->calls[i].method = "GetJob";
        d->calls[i].req = &d->refs[i].base;
    }
    d->ctx = ember_rpc_defer(ctx);
    if (!d->ctx) {
        free(d);
        ember_rpc_set_details(ctx, "could not defer");
        return GRPC_STATUS_INTERNAL;
    }
    ember_rpc_unary_many_async(d->ctx, d->calls, 2, CALL_TIMEOUT_MS, answer_deferred, d);
    return GRPC_STATUS_OK;
}

static const ember_rpc_method_impl impls[] = {
    {"GetJob", EMBER_RPC_UNARY, get_job, EMBER_RPC_QUICK},
    {"CancelJob", EMBER_RPC_UNARY, cancel_job, 0},
    {"SubmitJobAndWait", EMBER_RPC_UNARY, submit_and_wait, EMBER_RPC_QUICK},
};

struct background {
    grpc_channel *ch;
    const char *method, *app;
    uint32_t job;
    grpc_status_code status;
};

static void *call_in_background(void *arg)
{
    struct background *b = arg;
    Ember__JobRef req = EMBER__JOB_REF__INIT;
    ProtobufCMessage *reply = NULL;

    req.app_id = (char *)b->app;
    req.job_id = b->job;
    b->status = ember_rpc_call(b->ch, &ember__master__descriptor, b->method, &req.base, &reply,
                               NULL, NULL, CALL_TIMEOUT_MS, NULL);
    if (reply)
        protobuf_c_message_free_unpacked(reply, NULL);
    return NULL;
}

static int quick_call_ok(grpc_channel *ch, uint32_t job)
{
    char *json = NULL;
    grpc_status_code st = call_get_job(ch, "plain", job, &json);
    int ok = st == GRPC_STATUS_OK && json && strcmp(json, "ok") == 0;
    if (!ok)
        fprintf(stderr, "GetJob %u: status %d, reply %s\n", job, (int)st, json ? json : "-");
    free(json);
    return ok;
}

int main(void)
{
    int port = 0;
    char address[64];
    ember_rpc_server *server;
    grpc_channel *ch;

    grpc_init();
    server = ember_rpc_server_create("127.0.0.1:0", &port, NULL);
    CHECK(server != NULL, "server on a free port");
    if (!server)
        return TEST_EXIT();
    CHECK(ember_rpc_server_add_service(server, &ember__master__descriptor, impls,
                                       sizeof(impls) / sizeof(impls[0]), NULL)
              == 0,
          "methods");
    ember_rpc_server_start(server, SERVER_THREADS);
    snprintf(address, sizeof(address), "127.0.0.1:%d", port);
    ch = ember_rpc_channel_create(address, -1);
    self_channel = ember_rpc_channel_create(address, -1);

    /* Quick calls one after another: one thread serves them all. */
    int failed = 0, other_threads = 0;
    for (uint32_t job = 10; job < 110; job++)
        failed += !quick_call_ok(ch, job);
    CHECK(failed == 0, "%d of 100 quick calls failed", failed);
    for (uint32_t job = 11; job < 110; job++)
        other_threads += !pthread_equal(served_by[job], served_by[10]);
    CHECK(other_threads == 0, "%d of 99 quick calls were served by another thread than the "
          "first (the listening was handed over)", other_threads);

    /* A call that is not quick blocks its thread: the listening was handed
     * over before it ran, so quick calls still get through. */
    struct background blocked = {ch, "CancelJob", "x", 1, GRPC_STATUS_UNKNOWN};
    pthread_t blocked_thread;
    pthread_create(&blocked_thread, NULL, call_in_background, &blocked);
    wait_for_waiters(1);
    CHECK(quick_call_ok(ch, 120), "a quick call while another method's call blocks");
    CHECK(!pthread_equal(served_by[120], served_by[1]),
          "the quick call was served by the blocked thread");

    /* A quick handler that released the listening blocks too: both blocked,
     * the third thread still serves. */
    struct background waiting = {ch, "GetJob", "wait", 2, GRPC_STATUS_UNKNOWN};
    pthread_t waiting_thread;
    pthread_create(&waiting_thread, NULL, call_in_background, &waiting);
    wait_for_waiters(2);
    CHECK(quick_call_ok(ch, 121), "a quick call while a quick one waits after releasing");
    pthread_mutex_lock(&gate_lock);
    CHECK(!gate_timed_out, "the quick calls were served only once the blocked ones gave up");
    gate_open = 1;
    pthread_cond_broadcast(&gate_changed);
    pthread_mutex_unlock(&gate_lock);
    pthread_join(blocked_thread, NULL);
    pthread_join(waiting_thread, NULL);
    CHECK(blocked.status == GRPC_STATUS_OK && waiting.status == GRPC_STATUS_OK,
          "the blocked calls: status %d and %d", (int)blocked.status, (int)waiting.status);

    /* A quick call of a method that is not quick never blocks: answered. */
    {
        struct background other = {ch, "CancelJob", "x", 3, GRPC_STATUS_UNKNOWN};
        call_in_background(&other);
        CHECK(other.status == GRPC_STATUS_OK, "another method's call: status %d",
              (int)other.status);
    }

    /* A quick handler calling its own server: the inner call is served. */
    for (uint32_t job = 130; job < 140; job++) {
        char *json = NULL;
        grpc_status_code st = call_get_job(ch, "self", job, &json);
        CHECK(st == GRPC_STATUS_OK && json && strcmp(json, "ok") == 0,
              "a quick handler's call to its own server: status %d, reply %s", (int)st,
              json ? json : "-");
        free(json);
    }

    /* A quick handler's deferred answer, made by done on the listening thread. */
    for (int round = 0; round < 20; round++) {
        Ember__SubmitJobRequest req = EMBER__SUBMIT_JOB_REQUEST__INIT;
        ProtobufCMessage *reply = NULL;
        grpc_status_code st;

        req.app_id = "a";
        req.job_json = "{}";
        st = ember_rpc_call(ch, &ember__master__descriptor, "SubmitJobAndWait", &req.base,
                            &reply, NULL, NULL, CALL_TIMEOUT_MS, NULL);
        CHECK(st == GRPC_STATUS_OK && reply
                  && strcmp(((Ember__JsonReply *)reply)->json, "0:ok|0:ok") == 0,
              "deferred answer, round %d: status %d, reply %s", round, (int)st,
              reply ? ((Ember__JsonReply *)reply)->json : "-");
        if (reply)
            protobuf_c_message_free_unpacked(reply, NULL);
    }

    /* Still one thread for quick calls after all of the above. */
    other_threads = 0;
    for (uint32_t job = 150; job < 170; job++)
        failed += !quick_call_ok(ch, job);
    for (uint32_t job = 151; job < 170; job++)
        other_threads += !pthread_equal(served_by[job], served_by[150]);
    CHECK(failed == 0 && other_threads == 0, "later quick calls: %d failed, %d on other threads",
          failed, other_threads);

    grpc_channel_destroy(self_channel);
    grpc_channel_destroy(ch);
    ember_rpc_server_shutdown(server);
    grpc_shutdown();
    return TEST_EXIT();
}
