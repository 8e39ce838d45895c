/* Every gRPC method of every Ember service refuses a call without the cluster's
 * shared secret or with a wrong one (UNAUTHENTICATED), and serves it with the
 * right one. The methods come from the protobuf-c service descriptors, and the
 * services are checked against the `service` declarations of the .proto files, so
 * a method or a service added later is covered without touching this file.
 *
 * Usage: test_auth_rpc BIN_DIR PROTO_DIR (ember-master, ember-blockd and
 * ember-worker run with a secret on free loopback ports). */
#define _GNU_SOURCE
#include <dirent.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../unit/test.h"
#include "blockd.pb-c.h"
#include "master.pb-c.h"
#include "rpc.h"
#include "security.h"
#include "util.h"
#include "worker.pb-c.h"

#define SECRET "test-secret-0123456789abcdef"
#define WRONG_SECRET "test-secret-0123456789abcdeX"
#define CALL_TIMEOUT_MS 5000

extern char **environ;

struct daemon_proc {
    const char *name;
    pid_t pid;
    char ready[128];
    char address[128];
};

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int read_ready(struct daemon_proc *p)
{
    FILE *fp = fopen(p->ready, "r");
    int ok;

    if (!fp)
        return -1;
    ok = fgets(p->address, sizeof(p->address), fp) != NULL;
    fclose(fp);
    p->address[strcspn(p->address, "\n")] = '\0';
    return ok && p->address[0] ? 0 : -1;
}

/* Starts BIN_DIR/name with args, EMBER_AUTH_SECRET=SECRET; waits for its ready file. */
static int start(const char *bin_dir, const char *dir, struct daemon_proc *p,
                 const char *const *args)
{
    const char *argv[16];
    char *path = ember_xasprintf("%s/%s", bin_dir, p->name);
    int n = 0, status;

    snprintf(p->ready, sizeof(p->ready), "%s/%s.ready", dir, p->name);
    argv[n++] = path;
    argv[n++] = "--listen=127.0.0.1:0";
    argv[n++] = "--ready-file";
    argv[n++] = p->ready;
    while (*args && n < 15)
        argv[n++] = *args++;
    argv[n] = NULL;
    setenv("EMBER_AUTH_SECRET", SECRET, 1);
    if (posix_spawn(&p->pid, path, NULL, NULL, (char *const *)argv, environ) != 0) {
        fprintf(stderr, "cannot start %s\n", path);
        p->pid = 0;
    }
    unsetenv("EMBER_AUTH_SECRET");
    free(path);
    for (int waited = 0; p->pid && waited < 20000; waited += 50) {
        if (read_ready(p) == 0)
            return 0;
        if (waitpid(p->pid, &status, WNOHANG) == p->pid) {
            fprintf(stderr, "%s exited at start (status 0x%x)\n", p->name, status);
            p->pid = 0;
            return -1;
        }
        sleep_ms(50);
    }
    fprintf(stderr, "%s did not become ready\n", p->name);
    return -1;
}

static void stop(struct daemon_proc *p)
{
    if (!p->pid)
        return;
    kill(p->pid, SIGTERM);
    for (int waited = 0; waitpid(p->pid, NULL, WNOHANG) == 0; waited += 20) {
        if (waited > 10000) {
            kill(p->pid, SIGKILL);
            waitpid(p->pid, NULL, 0);
            break;
        }
        sleep_ms(20);
    }
    unlink(p->ready);
    p->pid = 0;
}

/* The test's own settings: no secret (secret NULL), or the given one. */
static void use_secret(const char *secret)
{
    struct ember_security_sources none = {0};

    if (secret)
        setenv("EMBER_AUTH_SECRET", secret, 1);
    if (ember_security_load("test_auth_rpc", &none) != 0)
        abort();
}

static int count_messages(const ProtobufCMessage *msg, void *user)
{
    (void)msg;
    (*(int *)user)++;
    return 0;
}

/* Calls one method with an empty request. Every method is read as a server
 * stream: on the wire a unary reply is a stream of one message. */
static grpc_status_code call_empty(grpc_channel *ch, const ProtobufCServiceDescriptor *svc,
                                   const ProtobufCMethodDescriptor *md, char **details)
{
    ProtobufCMessage *req = ember_xcalloc(1, md->input->sizeof_message);
    char path[256];
    int messages = 0;
    grpc_status_code st;

    md->input->message_init(req);
    snprintf(path, sizeof(path), "/%s/%s", svc->name, md->name);
    st = ember_rpc_call_path(ch, path, md->output, req, NULL, count_messages, &messages,
                             CALL_TIMEOUT_MS, details);
    free(req);
    return st;
}

struct service_case {
    const ProtobufCServiceDescriptor *svc;
    const struct daemon_proc *served_by;
};

static int check_service(const struct service_case *c)
{
    static const struct {
        const char *label, *secret;
        int authorized;
    } attempts[] = {
        {"no secret", NULL, 0},
        {"a wrong secret", WRONG_SECRET, 0},
        {"the right secret", SECRET, 1},
    };
    int calls = 0;

    for (size_t a = 0; a < sizeof(attempts) / sizeof(attempts[0]); a++) {
        use_secret(attempts[a].secret);
        grpc_channel *ch = ember_rpc_channel_create(c->served_by->address, -1);
        for (unsigned i = 0; i < c->svc->n_methods; i++) {
            const ProtobufCMethodDescriptor *md = &c->svc->methods[i];
            char *details = NULL;
            grpc_status_code st = call_empty(ch, c->svc, md, &details);
            if (attempts[a].authorized)
                CHECK(st != GRPC_STATUS_UNAUTHENTICATED && st != GRPC_STATUS_UNIMPLEMENTED,
                      "%s.%s with %s: got status %d (%s), want it served", c->svc->name,
                      md->name, attempts[a].label, (int)st, details ? details : "");
            else
                CHECK(st == GRPC_STATUS_UNAUTHENTICATED,
                      "%s.%s with %s: got status %d (%s), want UNAUTHENTICATED (16)",
                      c->svc->name, md->name, attempts[a].label, (int)st,
                      details ? details : "");
            printf("%-20s %-22s %-17s -> %d\n", c->svc->name, md->name, attempts[a].label,
                   (int)st);
            free(details);
            calls++;
        }
        grpc_channel_destroy(ch);
    }
    return calls;
}

/* ember_rpc_unary_many (the master's concurrent launches): each call gets its
 * own answer, carries the secret, and an unreachable peer fails only its own. */
static void check_unary_many(const struct daemon_proc *master, const struct daemon_proc *blockd)
{
    Ember__Empty empty = EMBER__EMPTY__INIT;
    Ember__QueryRequest query = EMBER__QUERY_REQUEST__INIT;
    const char *secrets[] = {SECRET, NULL};

    query.what = "applications";
    for (size_t a = 0; a < 2; a++) {
        use_secret(secrets[a]);
        grpc_channel *to_blockd = ember_rpc_channel_create(blockd->address, -1);
        grpc_channel *to_master = ember_rpc_channel_create(master->address, -1);
        grpc_channel *nowhere = ember_rpc_channel_create("127.0.0.1:1", -1);
        ember_rpc_unary calls[] = {
            {.ch = to_blockd, .svc = &ember__block_manager__descriptor, .method = "Stats",
             .req = &empty.base},
            {.ch = nowhere, .svc = &ember__block_manager__descriptor, .method = "Stats",
             .req = &empty.base},
            {.ch = to_master, .svc = &ember__master__descriptor, .method = "Query",
             .req = &query.base},
            {.ch = to_master, .svc = &ember__master__descriptor, .method = "NoSuchMethod",
             .req = &empty.base},
        };
        ember_rpc_unary_many(calls, 4, CALL_TIMEOUT_MS);
        grpc_status_code want = secrets[a] ? GRPC_STATUS_OK : GRPC_STATUS_UNAUTHENTICATED;
        CHECK(calls[0].status == want && (calls[0].reply != NULL) == !!secrets[a],
              "unary_many Stats: status %d (%s)", (int)calls[0].status, calls[0].details);
        CHECK(calls[1].status == GRPC_STATUS_UNAVAILABLE && !calls[1].reply,
              "unary_many to nowhere: status %d (%s)", (int)calls[1].status, calls[1].details);
        CHECK(calls[2].status == want && (calls[2].reply != NULL) == !!secrets[a],
              "unary_many Query: status %d (%s)", (int)calls[2].status, calls[2].details);
        CHECK(calls[3].status == GRPC_STATUS_UNIMPLEMENTED && !calls[3].reply,
              "unary_many unknown method: status %d", (int)calls[3].status);
        if (secrets[a] && calls[0].reply)
            CHECK(calls[0].reply->descriptor == &ember__block_stats__descriptor,
                  "unary_many Stats answered with %s", calls[0].reply->descriptor->name);
        for (size_t i = 0; i < 4; i++) {
            if (calls[i].reply)
                protobuf_c_message_free_unpacked(calls[i].reply, NULL);
            free(calls[i].details);
        }
        grpc_channel_destroy(to_blockd);
        grpc_channel_destroy(to_master);
        grpc_channel_destroy(nowhere);
    }
}

/* How many `service` blocks the .proto files of proto_dir declare. */
static int count_proto_services(const char *proto_dir)
{
    DIR *d = opendir(proto_dir);
    struct dirent *e;
    char line[512];
    int n = 0;

    if (!d)
        return -1;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (len < 7 || strcmp(e->d_name + len - 6, ".proto") != 0)
            continue;
        char *path = ember_xasprintf("%s/%s", proto_dir, e->d_name);
        FILE *fp = fopen(path, "r");
        free(path);
        while (fp && fgets(line, sizeof(line), fp))
            n += strncmp(line, "service ", 8) == 0;
        if (fp)
            fclose(fp);
    }
    closedir(d);
    return n;
}

int main(int argc, char **argv)
{
    struct daemon_proc master = {.name = "ember-master"}, blockd = {.name = "ember-blockd"},
                       worker = {.name = "ember-worker"};
    char dir[] = "/tmp/test_auth_rpc.XXXXXX";
    int calls = 0;

    if (argc != 3) {
        fprintf(stderr, "usage: %s BIN_DIR PROTO_DIR\n", argv[0]);
        return 2;
    }
    unsetenv("EMBER_AUTH_SECRET_FILE");
    if (!mkdtemp(dir))
        return 2;
    if (start(argv[1], dir, &master, (const char *const[]){NULL}) == 0
        && start(argv[1], dir, &blockd,
                 (const char *const[]){"--master", master.address, "--dir", dir, NULL}) == 0
        && start(argv[1], dir, &worker,
                 (const char *const[]){"--master", master.address, "--blockd", blockd.address,
                                       "--cores", "1", NULL}) == 0) {
        const struct service_case cases[] = {
            {&ember__master__descriptor, &master},
            {&ember__block_manager__descriptor, &blockd},
            {&ember__worker__descriptor, &worker},
        };
        size_t n = sizeof(cases) / sizeof(cases[0]);
        int declared = count_proto_services(argv[2]);

        CHECK(declared == (int)n, "proto/ declares %d services, this test checks %zu: add the "
              "new service's daemon to the cases", declared, n);
        grpc_init();
        for (size_t i = 0; i < n; i++)
            calls += check_service(&cases[i]);
        check_unary_many(&master, &blockd);
        grpc_shutdown();
        CHECK(calls >= 3 * (int)n, "only %d calls made", calls);
    } else {
        CHECK(0, "the daemons did not start");
    }
    stop(&worker);
    stop(&blockd);
    stop(&master);
    rmdir(dir);
    return TEST_EXIT();
}
