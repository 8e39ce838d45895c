/* Job descriptions (the JSON a driver POSTs, which the gateway passes through)
 * submitted with SubmitJob to a real ember-master, for its application. The
 * input is the JSON text. Replaced every RESET_EVERY inputs like fuzz_master. */
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
static size_t submit_;                 /* index of SubmitJob in the server's table */

static void start(void)
{
    static const char *const args[] = {"--listen", "127.0.0.1:0", NULL};
    Ember__CreateApplicationRequest app = EMBER__CREATE_APPLICATION_REQUEST__INIT;
    uint8_t buf[64];
    size_t create = 0;

    fuzz_daemon_init(&daemon_, "ember-master", master_options, args);
    if (master_create(&daemon_, &master_) != 0)
        abort();
    for (size_t i = 0; i < ember_rpc_server_n_methods(master_->server); i++) {
        const char *name = ember_rpc_server_method_name(master_->server, i);
        if (strcmp(name, "SubmitJob") == 0)
            submit_ = i;
        if (strcmp(name, "CreateApplication") == 0)
            create = i;
    }
    app.name = "fuzz";
    if (ember_rpc_server_invoke(master_->server, create, buf,
                                protobuf_c_message_pack(&app.base, buf), NULL)
        != GRPC_STATUS_OK)
        abort();
    app_id_ = strdup(((struct app *)master_->apps.items[0])->id);
}

static void stop(void)
{
    fuzz_daemon_stop(&daemon_);
    master_destroy(master_);
    ember_daemon_fini(&daemon_);
    free(app_id_);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    start();
    atexit(stop);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    Ember__SubmitJobRequest req = EMBER__SUBMIT_JOB_REQUEST__INIT;
    char *json = strndup((const char *)data, size);
    char *details = NULL;
    uint8_t *packed;
    size_t n;
    grpc_status_code st;

    if (++inputs_ % RESET_EVERY == 0) {
        stop();
        start();
    }
    req.app_id = app_id_;
    req.job_json = json;
    n = protobuf_c_message_get_packed_size(&req.base);
    packed = malloc(n);
    protobuf_c_message_pack(&req.base, packed);
    st = ember_rpc_server_invoke(master_->server, submit_, packed, n, &details);
    if (st != GRPC_STATUS_OK && (!details || !*details))
        abort();                       /* a refused job must say why */
    free(details);
    free(packed);
    free(json);
    return 0;
}
