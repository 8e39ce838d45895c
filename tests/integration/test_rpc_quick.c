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
 * - a quick handler's large reply to a client that stopped reading (a child
 *   process of this test, SIGSTOPped before the reply) does not keep the
 *   listening: other quick calls are answered meanwhile, whether the reply
 *   leaves when the handler returns, from ember_rpc_reply_now, or from a
 *   deferred answer (made on the listening thread);
 * - a streaming method cannot be marked quick;
 * - the server shuts down with threads waiting for their turn (ASan in
 *   make test-asan). */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/wait.h>

#include "master.pb-c.h"
#include "rpc.h"
#include "util.h"
#include "../unit/test.h"

#define CALL_TIMEOUT_MS 10000
#define SERVER_THREADS 3
/* A reply far larger than any HTTP/2 window a client grants before it reads. */
#define BIG_REPLY_BYTES (8u << 20)
/* The stalled client's deadline: the server's send ends only then, or when
 * the test kills it. */
#define STALLED_CALL_TIMEOUT_MS 30000
/* Other quick calls during the stall: answered in milliseconds once the
 * listening is handed over; with it held they would wait for the stalled
 * client's deadline. */
#define DURING_STALL_TIMEOUT_MS 3000

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

/* A handler about to send a big reply waits (holding the listening: nothing
 * else needs serving meanwhile) until the test stopped its client. */
static int stall_entered, client_stopped;
static char *big_reply;

static void wait_until_client_stopped(void)
{
    struct timespec until;

    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 10;
    pthread_mutex_lock(&gate_lock);
    stall_entered = 1;
    pthread_cond_broadcast(&gate_changed);
    while (!client_stopped)
        if (pthread_cond_timedwait(&gate_changed, &gate_lock, &until) != 0) {
            gate_timed_out = 1;
            break;
        }
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
static grpc_status_code call_get_job_within(grpc_channel *ch, const char *app, uint32_t job,
                                            int64_t timeout_ms, char **json)
{
    Ember__JobRef req = EMBER__JOB_REF__INIT;
    ProtobufCMessage *reply = NULL;
    grpc_status_code st;

    req.app_id = (char *)app;
    req.job_id = job;
    st = ember_rpc_call(ch, &ember__master__descriptor, "GetJob", &req.base, &reply, NULL, NULL,
                        timeout_ms, NULL);
    *json = reply ? ember_xstrdup(((Ember__JsonReply *)reply)->json) : NULL;
    if (reply)
        protobuf_c_message_free_unpacked(reply, NULL);
    return st;
}

static grpc_status_code call_get_job(grpc_channel *ch, const char *app, uint32_t job,
                                     char **json)
{
    return call_get_job_within(ch, app, job, CALL_TIMEOUT_MS, json);
}

/* GetJob (quick), by app_id: "wait" releases the listening and waits at the
 * gate; "self" calls GetJob "plain" on its own server and answers its reply;
 * "big" answers big_reply once its client is stopped, "big-now" the same
 * with ember_rpc_reply_now; anything else answers "ok" at once. Records its
 * thread by job id. */
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
    } else if (strncmp(req->app_id, "big", 3) == 0) {
        wait_until_client_stopped();
        reply_json(ctx, big_reply);
        if (strcmp(req->app_id, "big-now") == 0 && !ember_rpc_reply_now(ctx))
            fprintf(stderr, "big-now: the reply did not reach its client (killed: expected)\n");
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
 * server, answers with the replies from done on the thread that took the last
 * (with job_json "big": big_reply, once its client is stopped). */
struct deferred {
    ember_rpc_ctx *ctx;
    int big;
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
    if (d->big)
        wait_until_client_stopped();
    reply_json(d->ctx, d->big ? big_reply : text);
    ember_rpc_deferred_finish(d->ctx, GRPC_STATUS_OK);
    free(d);
}

static grpc_status_code submit_and_wait(ember_rpc_ctx *ctx, const ProtobufCMessage *msg,
                                        void *user)
{
    struct deferred *d = ember_xcalloc(1, sizeof(*d));
    (void)user;
    d->big = strcmp(((const Ember__SubmitJobRequest *)msg)->job_json, "big") == 0;
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

/* The child process of a stalled-client case: one call (method, app_id or
 * job_json "big...") that waits for its reply, on a channel of its own that
 * grants no window beyond what it reads. Stopped by the parent before the
 * reply, killed after. */
static int stalled_client(const char *address, const char *method, const char *what)
{
    grpc_init();
    grpc_channel *ch = ember_rpc_channel_create_ex(address, -1, EMBER_RPC_NO_READ_AHEAD);
    ProtobufCMessage *reply = NULL;
    grpc_status_code st;

    if (strcmp(method, "GetJob") == 0) {
        Ember__JobRef req = EMBER__JOB_REF__INIT;
        req.app_id = (char *)what;
        req.job_id = 250;
        st = ember_rpc_call(ch, &ember__master__descriptor, method, &req.base, &reply, NULL, NULL,
                            STALLED_CALL_TIMEOUT_MS, NULL);
    } else {
        Ember__SubmitJobRequest req = EMBER__SUBMIT_JOB_REQUEST__INIT;
        req.app_id = "a";
        req.job_json = (char *)what;
        st = ember_rpc_call(ch, &ember__master__descriptor, method, &req.base, &reply, NULL, NULL,
                            STALLED_CALL_TIMEOUT_MS, NULL);
    }
    fprintf(stderr, "stalled client %s %s: status %d\n", method, what, (int)st);
    _exit(0);
}

/* A quick handler's big reply to a client that stopped reading: the
 * listening is handed over while the reply waits for the client's window, so
 * other quick calls are answered. The client is this program, run again. */
static void check_stalled_client(const char *address, const char *method, const char *what,
                                 uint32_t first_job)
{
    char *args[] = {"/proc/self/exe", "--stalled-client", (char *)address, (char *)method,
                    (char *)what, NULL};
    extern char **environ;
    struct timespec until;
    pid_t child;
    int status, stopped = 0;

    pthread_mutex_lock(&gate_lock);
    stall_entered = client_stopped = 0;
    pthread_mutex_unlock(&gate_lock);
    if (posix_spawn(&child, args[0], NULL, NULL, args, environ) != 0) {
        CHECK(0, "cannot start the stalled client");
        return;
    }
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 10;
    pthread_mutex_lock(&gate_lock);
    while (!stall_entered)
        if (pthread_cond_timedwait(&gate_changed, &gate_lock, &until) != 0)
            break;
    CHECK(stall_entered, "%s %s: the call reached its handler", method, what);
    pthread_mutex_unlock(&gate_lock);
    if (kill(child, SIGSTOP) == 0 && waitpid(child, &status, WUNTRACED) == child)
        stopped = WIFSTOPPED(status);
    CHECK(stopped, "%s %s: the client was stopped before the reply", method, what);
    pthread_mutex_lock(&gate_lock);
    client_stopped = 1;
    pthread_cond_broadcast(&gate_changed);
    pthread_mutex_unlock(&gate_lock);

    for (uint32_t job = first_job; job < first_job + 2; job++) {
        char *json = NULL;
        grpc_status_code st = call_get_job_within(self_channel, "plain", job,
                                                  DURING_STALL_TIMEOUT_MS, &json);
        CHECK(st == GRPC_STATUS_OK && json && strcmp(json, "ok") == 0,
              "a quick call while %s %s's big reply waits for a stopped client: status %d, "
              "reply %s", method, what, (int)st, json ? json : "-");
        free(json);
    }
    kill(child, SIGKILL);
    waitpid(child, &status, 0);
}

int main(int argc, char **argv)
{
    int port = 0;
    char address[64];
    ember_rpc_server *server;
    grpc_channel *ch;

    if (argc == 5 && strcmp(argv[1], "--stalled-client") == 0)
        return stalled_client(argv[2], argv[3], argv[4]);
    big_reply = ember_xmalloc(BIG_REPLY_BYTES + 1);
    memset(big_reply, 'x', BIG_REPLY_BYTES);
    big_reply[BIG_REPLY_BYTES] = '\0';
    grpc_init();
    server = ember_rpc_server_create("127.0.0.1:0", &port, NULL);
    CHECK(server != NULL, "server on a free port");
    if (!server)
        return TEST_EXIT();
    CHECK(ember_rpc_server_add_service(server, &ember__master__descriptor, impls,
                                       sizeof(impls) / sizeof(impls[0]), NULL)
              == 0,
          "methods");
    {
        /* A stream's handler waits for its client between messages: never quick. */
        static const ember_rpc_method_impl quick_stream[] = {
            {"Query", EMBER_RPC_SERVER_STREAM, get_job, EMBER_RPC_QUICK},
        };
        CHECK(ember_rpc_server_add_service(server, &ember__master__descriptor, quick_stream, 1,
                                           NULL)
                  == -1,
              "a quick streaming method was accepted");
    }
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

    /* Big replies to clients that stopped reading hold no listening. */
    check_stalled_client(address, "GetJob", "big", 180);
    check_stalled_client(address, "GetJob", "big-now", 182);
    check_stalled_client(address, "SubmitJobAndWait", "big", 184);
    pthread_mutex_lock(&gate_lock);
    CHECK(!gate_timed_out, "a big reply's handler waited 10 s for its client to be stopped");
    pthread_mutex_unlock(&gate_lock);

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
    free(big_reply);
    return TEST_EXIT();
}
