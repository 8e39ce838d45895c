/* Every BlockManager gRPC method against a real ember-blockd (8 MiB of block
 * memory, spilling to a private folder, master at a closed port). Its blocks
 * are removed every CLEAR_EVERY inputs so the store stays small. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blockd.h"
#include "blockd.pb-c.h"
#include "fuzz_daemon.h"

#define CLEAR_EVERY 1000

static struct ember_daemon daemon_;
static struct blockd *blockd_;
static unsigned inputs_;
static char dir_[64];

static void stop(void)
{
    fuzz_daemon_stop(&daemon_);
    blockd_destroy(blockd_);           /* removes its folder */
    ember_daemon_fini(&daemon_);
}

/* RemoveBlocks for every prefix a block id can start with. */
static void clear(void)
{
    ember_rpc_server *s = blockd_rpc_server(blockd_);
    const char *chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_";
    size_t remove = 0;

    for (size_t i = 0; i < ember_rpc_server_n_methods(s); i++)
        if (strcmp(ember_rpc_server_method_name(s, i), "RemoveBlocks") == 0)
            remove = i;
    for (const char *c = chars; *c; c++) {
        Ember__RemoveBlocksRequest req = EMBER__REMOVE_BLOCKS_REQUEST__INIT;
        char prefix[2] = {*c, 0};
        uint8_t buf[16];
        req.prefix = prefix;
        (void)ember_rpc_server_invoke(s, remove, buf, protobuf_c_message_pack(&req.base, buf),
                                      NULL);
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    static const char *args[] = {"--listen", "127.0.0.1:0", "--master", FUZZ_CLOSED_PEER,
                                 "--memory", "8388608", "--dir", dir_, NULL};

    snprintf(dir_, sizeof(dir_), "/tmp/ember-fuzz-blockd-%d", (int)getpid());
    fuzz_daemon_init(&daemon_, "ember-blockd", blockd_options, args);
    if (blockd_create(&daemon_, &blockd_) != 0)
        abort();
    atexit(stop);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (++inputs_ % CLEAR_EVERY == 0)
        clear();
    fuzz_rpc_input(blockd_rpc_server(blockd_), &ember__block_manager__descriptor, data, size,
                   NULL, NULL);
    return 0;
}
