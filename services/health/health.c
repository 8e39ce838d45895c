#define _GNU_SOURCE
#include "health.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blockd.pb-c.h"
#include "common.pb-c.h"
#include "master.pb-c.h"
#include "rpc.h"
#include "security.h"
#include "util.h"

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: ember-health [--master HOST:PORT] [--timeout-ms N] KIND HOST:PORT\n"
            "Exits 0 when the Ember daemon at HOST:PORT serves, 1 when not.\n\n"
            "  master  Master.Query(executors) answers\n"
            "  blockd  BlockManager.Stats answers\n"
            "  worker  the master lists a worker at HOST:PORT as alive (registered and\n"
            "          heartbeating)\n\n"
            "  --master HOST:PORT  the master asked about a worker\n"
            "                      (environment: EMBER_MASTER_ADDRESS; default 127.0.0.1:7077)\n"
            "  --timeout-ms N      how long to wait for the answer (default 2000)\n"
            "  --auth-secret-file F  the cluster's shared secret (environment:\n"
            "                      EMBER_AUTH_SECRET_FILE, or the secret in EMBER_AUTH_SECRET)\n"
            "  --tls-ca F          call over TLS trusting this CA (environment: EMBER_TLS_CA)\n"
            "  -h, --help          show this help\n");
}

static int parse_kind(const char *word, enum health_kind *out)
{
    static const struct {
        const char *name;
        enum health_kind kind;
    } kinds[] = {{"master", HEALTH_MASTER}, {"blockd", HEALTH_BLOCKD}, {"worker", HEALTH_WORKER}};

    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        if (strcmp(word, kinds[i].name) == 0) {
            *out = kinds[i].kind;
            return 0;
        }
    }
    return EMBER_EINVAL;
}

static int usage_error(const char *what, const char *arg)
{
    fprintf(stderr, "ember-health: %s '%s'\n", what, arg);
    usage(stderr);
    return EMBER_EINVAL;
}

int health_parse_args(int argc, char **argv, struct health_args *out)
{
    struct health_args a = {.master = getenv("EMBER_MASTER_ADDRESS"), .timeout_ms = 2000};
    struct ember_security_sources sec = {.secret_file = getenv("EMBER_AUTH_SECRET_FILE"),
                                         .tls_ca_file = getenv("EMBER_TLS_CA")};
    char *end;
    int i = 1;

    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            exit(0);
        } else if (strcmp(argv[i], "--master") == 0 && i + 1 < argc) {
            a.master = argv[++i];
        } else if (strcmp(argv[i], "--auth-secret-file") == 0 && i + 1 < argc) {
            sec.secret_file = argv[++i];
        } else if (strcmp(argv[i], "--tls-ca") == 0 && i + 1 < argc) {
            sec.tls_ca_file = argv[++i];
        } else if (strcmp(argv[i], "--timeout-ms") == 0 && i + 1 < argc) {
            a.timeout_ms = strtoll(argv[++i], &end, 10);
            if (*end || a.timeout_ms <= 0)
                return usage_error("--timeout-ms wants a positive number of ms, not", argv[i]);
        } else {
            return usage_error("unknown option", argv[i]);
        }
    }
    if (argc - i != 2)
        return usage_error("wants KIND HOST:PORT after the options; got", i < argc ? argv[i] : "");
    if (parse_kind(argv[i], &a.kind) != 0)
        return usage_error("KIND is master, blockd or worker, not", argv[i]);
    a.address = argv[i + 1];
    if (!a.master || !*a.master)
        a.master = "127.0.0.1:7077";
    if (ember_security_load("ember-health", &sec) != 0)
        return EMBER_EINVAL;
    *out = a;
    return 0;
}

/* One unary call; on success *reply is new (free with
 * protobuf_c_message_free_unpacked), otherwise the reason is printed. */
static int call(const struct health_args *a, const char *address,
                const ProtobufCServiceDescriptor *svc, const char *method,
                const ProtobufCMessage *req, ProtobufCMessage **reply)
{
    grpc_channel *ch = ember_rpc_channel_create(address, -1);
    char *details = NULL;
    grpc_status_code code;

    code = ember_rpc_call(ch, svc, method, req, reply, NULL, NULL, a->timeout_ms, &details);
    grpc_channel_destroy(ch);
    if (code != GRPC_STATUS_OK)
        fprintf(stderr, "ember-health: %s.%s at %s failed: %s (gRPC status %d)\n", svc->name,
                method, address, details && *details ? details : "no answer", (int)code);
    free(details);
    return code == GRPC_STATUS_OK ? 0 : EMBER_ERPC;
}

/* The master's executors listing as JSON; on success *out is new. */
static int query_executors(const struct health_args *a, const char *master, json_t **out)
{
    Ember__QueryRequest req = EMBER__QUERY_REQUEST__INIT;
    ProtobufCMessage *reply = NULL;
    json_error_t err;
    json_t *list;
    int rc;

    req.what = "executors";
    rc = call(a, master, &ember__master__descriptor, "Query", &req.base, &reply);
    if (rc != 0)
        return rc;
    list = json_loads(((Ember__JsonReply *)reply)->json, 0, &err);
    protobuf_c_message_free_unpacked(reply, NULL);
    if (!json_is_array(list)) {
        fprintf(stderr, "ember-health: the master at %s answered executors that are not a JSON "
                        "list: %s\n", master, err.text);
        json_decref(list);
        return EMBER_ERPC;
    }
    *out = list;
    return 0;
}

static int check_master(const struct health_args *a)
{
    json_t *executors = NULL;
    int rc = query_executors(a, a->address, &executors);

    if (rc == 0)
        printf("ember-health: master %s serves, %zu executors known\n", a->address,
               json_array_size(executors));
    json_decref(executors);
    return rc;
}

static int check_blockd(const struct health_args *a)
{
    Ember__Empty req = EMBER__EMPTY__INIT;
    ProtobufCMessage *reply = NULL;
    int rc = call(a, a->address, &ember__block_manager__descriptor, "Stats", &req.base, &reply);

    if (rc != 0)
        return rc;
    printf("ember-health: block manager %s serves, %llu blocks\n", a->address,
           (unsigned long long)((Ember__BlockStats *)reply)->blocks);
    protobuf_c_message_free_unpacked(reply, NULL);
    return 0;
}

/* A worker is healthy when the master hears its heartbeats: the master then
 * lists it alive at the address it registered. */
static int check_worker(const struct health_args *a)
{
    json_t *executors = NULL, *e;
    const char *state = NULL;
    size_t i;
    int rc = query_executors(a, a->master, &executors);

    if (rc != 0)
        return rc;
    json_array_foreach(executors, i, e) {
        const char *host_port = json_string_value(json_object_get(e, "hostPort"));
        if (host_port && strcmp(host_port, a->address) == 0)
            state = json_string_value(json_object_get(e, "state"));
    }
    if (state && strcmp(state, "alive") == 0) {
        printf("ember-health: worker %s is alive at the master %s\n", a->address, a->master);
    } else {
        fprintf(stderr, "ember-health: the master %s %s worker %s\n", a->master,
                state ? "lists as dead the" : "does not know the", a->address);
        rc = EMBER_ENOENT;
    }
    json_decref(executors);
    return rc;
}

int health_check(const struct health_args *args)
{
    int rc;

    grpc_init();
    switch (args->kind) {
    case HEALTH_MASTER:
        rc = check_master(args);
        break;
    case HEALTH_BLOCKD:
        rc = check_blockd(args);
        break;
    default:
        rc = check_worker(args);
        break;
    }
    grpc_shutdown();
    return rc;
}
