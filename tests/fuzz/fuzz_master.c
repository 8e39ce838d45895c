/* Every Master gRPC method against a real ember-master state (its scheduler
 * running, one worker and block manager registered at a closed port). A
 * request whose app_id is "app" is sent to the application the fuzzer made;
 * task ids below 2^20 are offset to this master's task ids. The master is
 * replaced every RESET_EVERY inputs so its history stays small. */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "fuzz_daemon.h"
#include "master.h"
#include "master.pb-c.h"

#define RESET_EVERY 2000

static struct ember_daemon daemon_;
static struct master *master_;
static char *app_id_;
static unsigned inputs_;

static void call(const char *method, const ProtobufCMessage *req)
{
    size_t n = protobuf_c_message_get_packed_size(req);
    uint8_t *buf = malloc(n + 1);
    char *details = NULL;

    for (size_t i = 0; i < ember_rpc_server_n_methods(master_->server); i++)
        if (strcmp(ember_rpc_server_method_name(master_->server, i), method) == 0)
            buf[0] = (uint8_t)i;
    protobuf_c_message_pack(req, buf + 1);
    if (ember_rpc_server_invoke(master_->server, buf[0], buf + 1, n, &details) != GRPC_STATUS_OK)
        abort();
    free(details);
    free(buf);
}

static void start(void)
{
    static const char *const args[] = {"--listen", "127.0.0.1:0", NULL};
    Ember__CreateApplicationRequest app = EMBER__CREATE_APPLICATION_REQUEST__INIT;
    Ember__RegisterWorkerRequest worker = EMBER__REGISTER_WORKER_REQUEST__INIT;
    Ember__RegisterBlockManagerRequest blockd = EMBER__REGISTER_BLOCK_MANAGER_REQUEST__INIT;

    fuzz_daemon_init(&daemon_, "ember-master", master_options, args);
    if (master_create(&daemon_, &master_) != 0)
        abort();
    app.name = "fuzz";
    call("CreateApplication", &app.base);
    pthread_mutex_lock(&master_->lock);
    app_id_ = strdup(((struct app *)master_->apps.items[0])->id);
    pthread_mutex_unlock(&master_->lock);
    worker.worker_id = "w1";
    worker.address = worker.block_addr = FUZZ_CLOSED_PEER;
    worker.host = "127.0.0.1";
    worker.cores = 2;
    call("RegisterWorker", &worker.base);
    blockd.blockd_id = "b1";
    blockd.address = FUZZ_CLOSED_PEER;
    blockd.host = "127.0.0.1";
    call("RegisterBlockManager", &blockd.base);
}

static void stop(void)
{
    fuzz_daemon_stop(&daemon_);
    master_destroy(master_);
    ember_daemon_fini(&daemon_);
    free(app_id_);
    master_ = NULL;
    app_id_ = NULL;
}

static void fix(ProtobufCMessage *req, void *user)
{
    const ProtobufCFieldDescriptor *f =
        protobuf_c_message_descriptor_get_field_by_name(req->descriptor, "task_id");

    fuzz_replace_string(req, "app_id", "app", app_id_);
    if (f && f->type == PROTOBUF_C_TYPE_UINT64 && f->label != PROTOBUF_C_LABEL_REPEATED) {
        uint64_t *id = (uint64_t *)((char *)req + f->offset);
        if (*id < (1u << 20))
            *id += master_->task_base;
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    start();
    atexit(stop);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (++inputs_ % RESET_EVERY == 0) {
        stop();
        start();
    }
    fuzz_rpc_input(master_->server, &ember__master__descriptor, data, size, fix, NULL);
    return 0;
}
