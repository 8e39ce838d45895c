#define _GNU_SOURCE
#include "fuzz_daemon.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void fuzz_daemon_init(struct ember_daemon *d, const char *name,
                      const struct ember_option *options, const char *const *args)
{
    char *argv[32];
    int argc = 0;

    argv[argc++] = (char *)name;
    argv[argc++] = "--log-level";
    argv[argc++] = getenv("FUZZ_LOG_LEVEL") ? getenv("FUZZ_LOG_LEVEL") : "error";
    for (; *args && argc < 31; args++)
        argv[argc++] = (char *)*args;
    argv[argc] = NULL;
    if (ember_daemon_init(d, name, "fuzzed in-process", options, argc, argv) != 0) {
        fprintf(stderr, "fuzz: cannot initialise %s\n", name);
        abort();
    }
    /* ember_daemon_init blocked them for ember_daemon_run's sigwait; the
     * fuzzer must still stop on Ctrl-C or SIGTERM (libFuzzer's handlers). */
    pthread_sigmask(SIG_UNBLOCK, &d->signals, NULL);
}

char *fuzz_ready_file(const char *name)
{
    char *path = NULL;

    if (asprintf(&path, "/tmp/ember-fuzz-%s-%d.ready", name, (int)getpid()) < 0)
        abort();
    return path;
}

int fuzz_ready_port(const char *ready_file)
{
    FILE *fp = fopen(ready_file, "r");
    char line[128];
    char *colon;

    if (!fp || !fgets(line, sizeof(line), fp))
        abort();
    fclose(fp);
    unlink(ready_file);
    colon = strrchr(line, ':');
    if (!colon)
        abort();
    return atoi(colon + 1);
}

void fuzz_daemon_stop(struct ember_daemon *d)
{
    pthread_mutex_lock(&d->lock);
    d->stopping = 1;
    pthread_cond_broadcast(&d->wake);
    pthread_mutex_unlock(&d->lock);
}

void fuzz_replace_string(ProtobufCMessage *msg, const char *name, const char *placeholder,
                         const char *value)
{
    const ProtobufCFieldDescriptor *f =
        protobuf_c_message_descriptor_get_field_by_name(msg->descriptor, name);
    char **field;

    if (!f || f->type != PROTOBUF_C_TYPE_STRING || f->label == PROTOBUF_C_LABEL_REPEATED)
        return;
    field = (char **)((char *)msg + f->offset);
    if (!*field || strcmp(*field, placeholder) != 0)
        return;
    free(*field);                      /* not the shared default: it held the placeholder */
    *field = strdup(value);
}

static void check_outcome(const char *method, grpc_status_code st, const char *details)
{
    if (st == GRPC_STATUS_OK)
        return;
    if (!details || !*details) {
        fprintf(stderr, "fuzz: %s failed with status %d and no message\n", method, (int)st);
        abort();
    }
}

size_t fuzz_rpc_input(ember_rpc_server *s, const ProtobufCServiceDescriptor *svc,
                      const uint8_t *data, size_t size, fuzz_fix_fn fix, void *user)
{
    size_t index = size ? data[0] % ember_rpc_server_n_methods(s) : 0;
    const char *name = ember_rpc_server_method_name(s, index);
    const ProtobufCMethodDescriptor *md = protobuf_c_service_descriptor_get_method_by_name(svc, name);
    ProtobufCMessage *req = NULL;
    uint8_t *packed = NULL;
    size_t len = size ? size - 1 : 0;
    const uint8_t *bytes = size ? data + 1 : data;
    char *details = NULL;
    grpc_status_code st;

    if (fix && md)
        req = protobuf_c_message_unpack(md->input, NULL, len, bytes);
    if (req) {                         /* well-formed: rewrite, then send it re-packed */
        fix(req, user);
        len = protobuf_c_message_get_packed_size(req);
        packed = malloc(len ? len : 1);
        protobuf_c_message_pack(req, packed);
        bytes = packed;
        protobuf_c_message_free_unpacked(req, NULL);
    }
    st = ember_rpc_server_invoke(s, index, bytes, len, &details);
    check_outcome(name, st, details);
    free(details);
    free(packed);
    return index;
}
