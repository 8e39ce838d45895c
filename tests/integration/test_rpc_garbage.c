/* Malformed protobuf bytes to every gRPC method of a real ember-master,
 * ember-blockd and ember-worker (argv[1..3]): each call must end with
 * INVALID_ARGUMENT naming the problem, not a crash; afterwards every daemon
 * still answers a well-formed call and exits 0 on SIGTERM. Methods come from
 * the service descriptors, so a new method is covered without editing this. */
#define _GNU_SOURCE
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <grpc/byte_buffer.h>
#include <grpc/support/alloc.h>

#include "blockd.pb-c.h"
#include "master.pb-c.h"
#include "rpc.h"
#include "util.h"
#include "worker.pb-c.h"
#include "../unit/test.h"

extern char **environ;

#define CALL_TIMEOUT_MS 10000

/* Bytes no protobuf parser may accept, whatever the message type. */
static const struct {
    const char *name;
    const char *bytes;
    size_t len;
} garbage[] = {
    {"length past the end", "\x0a\x05" "ab", 4},
    {"tag without a value", "\x08", 1},
    {"varint of 11 bytes", "\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 12},
    {"wire type 7", "\x0f\x01", 2},
    {"field number 0", "\x00\x01", 2},
    {"length of 2 GB", "\x0a\xff\xff\xff\xff\x07" "x", 7},
};

struct daemon_proc {
    const char *name;
    pid_t pid;
    char ready[64];
    char address[64];
};

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

/* Starts bin with --listen on a free port plus extra; 0 once its ready file names it. */
static int start(struct daemon_proc *p, const char *bin, const char *const *extra)
{
    const char *argv[16];
    int n = 0;

    snprintf(p->ready, sizeof(p->ready), "/tmp/test_rpc_garbage.%d.%s", (int)getpid(), p->name);
    unlink(p->ready);
    argv[n++] = bin;
    argv[n++] = "--listen=127.0.0.1:0";
    argv[n++] = "--ready-file";
    argv[n++] = p->ready;
    while (*extra && n < 15)
        argv[n++] = *extra++;
    argv[n] = NULL;
    if (posix_spawn(&p->pid, bin, NULL, NULL, (char *const *)argv, environ) != 0)
        return -1;
    for (int waited = 0; waited < 20000; waited += 50) {
        FILE *fp = fopen(p->ready, "r");
        if (fp) {
            int ok = fgets(p->address, sizeof(p->address), fp) != NULL;
            fclose(fp);
            p->address[strcspn(p->address, "\n")] = '\0';
            if (ok && p->address[0]) {
                unlink(p->ready);
                return 0;
            }
        }
        sleep_ms(50);
    }
    fprintf(stderr, "%s did not start\n", bin);
    return -1;
}

/* SIGTERM; the exit status (-1 when it had to be killed). */
static int stop(struct daemon_proc *p)
{
    int status = 0;

    kill(p->pid, SIGTERM);
    for (int waited = 0; waited < 20000; waited += 50) {
        if (waitpid(p->pid, &status, WNOHANG) == p->pid)
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        sleep_ms(50);
    }
    kill(p->pid, SIGKILL);
    waitpid(p->pid, NULL, 0);
    return -1;
}

/* One unary or server-streaming call carrying raw bytes; *details is new. */
static grpc_status_code call_raw(grpc_channel *ch, const char *path, const char *bytes,
                                 size_t len, char **details)
{
    grpc_completion_queue *cq = grpc_completion_queue_create_for_pluck(NULL);
    grpc_slice method = grpc_slice_from_copied_string(path);
    grpc_call *call = grpc_channel_create_call(ch, NULL, GRPC_PROPAGATE_DEFAULTS, cq, method,
                                               NULL, ember_rpc_deadline_after_ms(CALL_TIMEOUT_MS),
                                               NULL);
    grpc_slice payload = grpc_slice_from_copied_buffer(bytes, len);
    grpc_byte_buffer *send = grpc_raw_byte_buffer_create(&payload, 1), *recv = NULL;
    grpc_metadata_array initial, trailing;
    grpc_status_code status = GRPC_STATUS_UNKNOWN;
    grpc_slice status_details = grpc_empty_slice();
    grpc_op ops[6];

    grpc_metadata_array_init(&initial);
    grpc_metadata_array_init(&trailing);
    memset(ops, 0, sizeof(ops));
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = send;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &initial;
    ops[4].op = GRPC_OP_RECV_MESSAGE;
    ops[4].data.recv_message.recv_message = &recv;
    ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[5].data.recv_status_on_client.trailing_metadata = &trailing;
    ops[5].data.recv_status_on_client.status = &status;
    ops[5].data.recv_status_on_client.status_details = &status_details;
    if (grpc_call_start_batch(call, ops, 6, ops, NULL) == GRPC_CALL_OK)
        grpc_completion_queue_pluck(cq, ops, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    *details = strndup((const char *)GRPC_SLICE_START_PTR(status_details),
                       GRPC_SLICE_LENGTH(status_details));
    if (recv)
        grpc_byte_buffer_destroy(recv);
    grpc_byte_buffer_destroy(send);
    grpc_slice_unref(payload);
    grpc_slice_unref(method);
    grpc_slice_unref(status_details);
    grpc_metadata_array_destroy(&initial);
    grpc_metadata_array_destroy(&trailing);
    grpc_call_unref(call);
    grpc_completion_queue_shutdown(cq);
    while (grpc_completion_queue_pluck(cq, NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type
           != GRPC_QUEUE_SHUTDOWN) {}
    grpc_completion_queue_destroy(cq);
    return status;
}

static void send_garbage(const char *address, const ProtobufCServiceDescriptor *svc)
{
    grpc_channel *ch = ember_rpc_channel_create(address, 0);

    for (unsigned m = 0; m < svc->n_methods; m++) {
        char path[256];
        snprintf(path, sizeof(path), "/%s/%s", svc->name, svc->methods[m].name);
        for (size_t g = 0; g < sizeof(garbage) / sizeof(garbage[0]); g++) {
            char *details = NULL;
            grpc_status_code st = call_raw(ch, path, garbage[g].bytes, garbage[g].len, &details);
            CHECK(st == GRPC_STATUS_INVALID_ARGUMENT && strstr(details, "cannot parse"),
                  "%s with %s: got status %d (%s), want %d (cannot parse request)", path,
                  garbage[g].name, (int)st, details, (int)GRPC_STATUS_INVALID_ARGUMENT);
            free(details);
        }
    }
    grpc_channel_destroy(ch);
}

/* A well-formed call each daemon must still answer. */
static void check_alive(const char *address, const ProtobufCServiceDescriptor *svc,
                        const char *method, const ProtobufCMessage *req)
{
    grpc_channel *ch = ember_rpc_channel_create(address, -1);
    ProtobufCMessage *reply = NULL;
    char *details = NULL;
    grpc_status_code st = ember_rpc_call(ch, svc, method, req, &reply, NULL, NULL,
                                         CALL_TIMEOUT_MS, &details);

    CHECK(st == GRPC_STATUS_OK, "%s %s after the garbage: status %d (%s)", address, method,
          (int)st, details ? details : "");
    if (reply)
        protobuf_c_message_free_unpacked(reply, NULL);
    free(details);
    grpc_channel_destroy(ch);
}

int main(int argc, char **argv)
{
    struct daemon_proc master = {.name = "master"}, blockd = {.name = "blockd"},
                       worker = {.name = "worker"};
    char master_flag[96], blockd_flag[96];
    Ember__QueryRequest query = EMBER__QUERY_REQUEST__INIT;
    Ember__Empty empty = EMBER__EMPTY__INIT;
    Ember__TaskRef task = EMBER__TASK_REF__INIT;

    if (argc != 4) {
        fprintf(stderr, "usage: %s EMBER-MASTER EMBER-BLOCKD EMBER-WORKER\n", argv[0]);
        return 2;
    }
    grpc_init();
    if (start(&master, argv[1], (const char *const[]){NULL}) != 0)
        return 1;
    snprintf(master_flag, sizeof(master_flag), "--master=%s", master.address);
    if (start(&blockd, argv[2], (const char *const[]){master_flag, NULL}) != 0)
        return 1;
    snprintf(blockd_flag, sizeof(blockd_flag), "--blockd=%s", blockd.address);
    if (start(&worker, argv[3], (const char *const[]){master_flag, blockd_flag, "--cores=1", NULL})
        != 0)
        return 1;

    send_garbage(master.address, &ember__master__descriptor);
    send_garbage(blockd.address, &ember__block_manager__descriptor);
    send_garbage(worker.address, &ember__worker__descriptor);

    query.what = "applications";
    check_alive(master.address, &ember__master__descriptor, "Query", &query.base);
    check_alive(blockd.address, &ember__block_manager__descriptor, "Stats", &empty.base);
    check_alive(worker.address, &ember__worker__descriptor, "KillTask", &task.base);

    CHECK(stop(&worker) == 0, "ember-worker did not exit 0 on SIGTERM");
    CHECK(stop(&blockd) == 0, "ember-blockd did not exit 0 on SIGTERM");
    CHECK(stop(&master) == 0, "ember-master did not exit 0 on SIGTERM");
    grpc_shutdown();
    return TEST_EXIT();
}
