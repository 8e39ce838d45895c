/* Broadcast variables: the driver PUTs the pickled value; the gateway stores
 * it in one block manager and tells the master where it is. Workers fetch it
 * from there once per host. */
#define _GNU_SOURCE
#include "gw.h"

#include <stdlib.h>
#include <string.h>

#include "blockd.pb-c.h"
#include "log.h"

#define CHUNK_BYTES (1 << 20)

/* The address of a live block manager, from the master's list; new string. */
static grpc_status_code pick_block_manager(struct gw_request *rq, char **address, char **details)
{
    char *json = NULL;
    grpc_status_code code = gw_master_query(rq->gw, "blockmanagers", NULL, -1, &json, details);
    json_t *list, *b;
    size_t i;

    if (code != GRPC_STATUS_OK)
        return code;
    list = json_loads(json, 0, NULL);
    free(json);
    *address = NULL;
    json_array_foreach(list, i, b)
    {
        const char *state = json_string_value(json_object_get(b, "state"));
        const char *addr = json_string_value(json_object_get(b, "address"));
        if (!*address && state && addr && strcmp(state, "alive") == 0)
            *address = ember_xstrdup(addr);
    }
    json_decref(list);
    if (!*address) {
        *details = ember_xstrdup("no block manager is alive to hold the broadcast");
        return GRPC_STATUS_UNAVAILABLE;
    }
    return GRPC_STATUS_OK;
}

static grpc_status_code store(const char *address, const char *block_id, const uint8_t *data,
                              size_t len, char **details)
{
    grpc_channel *ch = ember_rpc_channel_create(address, 0);
    grpc_status_code code = GRPC_STATUS_OK;
    size_t off = 0;

    do {
        Ember__PutChunk chunk = EMBER__PUT_CHUNK__INIT;
        ProtobufCMessage *reply = NULL;
        size_t n = len - off < CHUNK_BYTES ? len - off : CHUNK_BYTES;
        chunk.block_id = (char *)block_id;
        chunk.offset = off;
        chunk.data.data = (uint8_t *)data + off;
        chunk.data.len = n;
        chunk.last = off + n == len;
        chunk.storage = EMBER__BLOCK_STORAGE__PINNED;
        code = ember_rpc_call(ch, &ember__block_manager__descriptor, "PutBlock", &chunk.base,
                              &reply, NULL, NULL, GW_MASTER_TIMEOUT_MS, details);
        if (reply)
            protobuf_c_message_free_unpacked(reply, NULL);
        off += n;
    } while (code == GRPC_STATUS_OK && off < len);
    grpc_channel_destroy(ch);
    return code;
}

/* Block ids allow [A-Za-z0-9_]: "broadcast_<id>_<app with - as _>_v". */
static char *broadcast_block_id(const char *app, uint32_t id)
{
    char *block = ember_xasprintf("broadcast_%u_%s_v", id, app);

    for (char *p = block; *p; p++)
        if (*p == '-' || *p == '.')
            *p = '_';
    return block;
}

enum MHD_Result gw_broadcast_put(struct gw_request *rq)
{
    char *address = NULL, *details = NULL;
    char *block_id = broadcast_block_id(rq->app, rq->broadcast);
    grpc_status_code code = pick_block_manager(rq, &address, &details);
    enum MHD_Result ret;

    if (code == GRPC_STATUS_OK) {
        free(details);
        details = NULL;
        code = store(address, block_id, rq->body.data, rq->body.len, &details);
    }
    if (code == GRPC_STATUS_OK) {
        free(details);
        details = NULL;
        code = gw_master_add_broadcast(rq->gw, rq->app, rq->broadcast, block_id, address,
                                       rq->body.len, &details);
    }
    if (code != GRPC_STATUS_OK) {
        char *peer = address ? ember_xasprintf("block manager at %s", address)
                             : gw_master_peer(rq->gw);
        ret = gw_reply_rpc_error(rq, code, details, peer);
        free(peer);
    } else {
        ret = gw_reply_json(rq, MHD_HTTP_CREATED,
                            json_pack("{s:I, s:s, s:s, s:I}", "id", (json_int_t)rq->broadcast,
                                      "blockId", block_id, "blockManager", address, "size",
                                      (json_int_t)rq->body.len));
    }
    free(details);
    free(address);
    free(block_id);
    return ret;
}

/* ?keepSource=1 (unpersist) drops only the copies workers made. */
enum MHD_Result gw_broadcast_delete(struct gw_request *rq)
{
    const char *keep = MHD_lookup_connection_value(rq->conn, MHD_GET_ARGUMENT_KIND, "keepSource");
    int keep_source = keep && strcmp(keep, "1") == 0;
    char *details = NULL;
    grpc_status_code code =
        gw_master_remove_broadcast(rq->gw, rq->app, rq->broadcast, keep_source, &details);
    enum MHD_Result ret;

    if (code != GRPC_STATUS_OK) {
        char *peer = gw_master_peer(rq->gw);
        ret = gw_reply_rpc_error(rq, code, details, peer);
        free(peer);
    } else {
        ret = gw_reply_json(rq, MHD_HTTP_OK, json_pack("{s:I, s:b}", "id",
                                                       (json_int_t)rq->broadcast, "removed", 1));
    }
    free(details);
    return ret;
}
