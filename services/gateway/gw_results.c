/* Result downloads: find a job's result block with GetJob, then stream it from
 * the block manager that holds it. The block is collected in memory before it
 * is sent (blocks are at most a few hundred MB, the cap is MAX_RESULT_BYTES); a
 * later version can hand chunks to MHD as they arrive. */
#define _GNU_SOURCE
#include "gw.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "blockd.pb-c.h"

#define MAX_RESULT_BYTES ((size_t)1 << 30)
#define BLOCK_TIMEOUT_MS 120000
#define MAX_CHUNK_MESSAGE (4 << 20)    /* a Chunk holds at most 1 MiB of data */

/* One channel per block manager address, kept for the life of the gateway: a
 * cluster has few block managers and their addresses are stable. */
struct block_channel {
    char *address;
    grpc_channel *ch;
};

struct gw_blocks {
    pthread_mutex_t lock;
    struct block_channel *v;
    size_t n, alloc;
};

struct gw_blocks *gw_blocks_new(void)
{
    struct gw_blocks *b = ember_xcalloc(1, sizeof(*b));

    pthread_mutex_init(&b->lock, NULL);
    return b;
}

void gw_blocks_free(struct gw_blocks *b)
{
    if (!b)
        return;
    for (size_t i = 0; i < b->n; i++) {
        grpc_channel_destroy(b->v[i].ch);
        free(b->v[i].address);
    }
    free(b->v);
    pthread_mutex_destroy(&b->lock);
    free(b);
}

/* Borrowed: the channel lives as long as b. */
static grpc_channel *block_channel(struct gw_blocks *b, const char *address)
{
    grpc_channel *ch = NULL;

    pthread_mutex_lock(&b->lock);
    for (size_t i = 0; i < b->n && !ch; i++)
        if (strcmp(b->v[i].address, address) == 0)
            ch = b->v[i].ch;
    if (!ch) {
        if (b->n == b->alloc) {
            b->alloc = b->alloc ? 2 * b->alloc : 8;
            b->v = ember_xrealloc(b->v, b->alloc * sizeof(*b->v));
        }
        ch = ember_rpc_channel_create(address, MAX_CHUNK_MESSAGE);
        b->v[b->n].address = ember_xstrdup(address);
        b->v[b->n].ch = ch;
        b->n++;
    }
    pthread_mutex_unlock(&b->lock);
    return ch;
}

struct fetch {
    struct ember_buf buf;
    char *error;                       /* new sentence when the stream went wrong */
    int last;
    uint64_t total_size;
};

static int on_chunk(const ProtobufCMessage *msg, void *user)
{
    const Ember__Chunk *c = (const Ember__Chunk *)msg;
    struct fetch *f = user;

    if (c->offset != f->buf.len) {
        f->error = ember_xasprintf("the block manager sent a chunk at offset %llu after %zu bytes",
                                   (unsigned long long)c->offset, f->buf.len);
        return 1;
    }
    if (ember_buf_append(&f->buf, c->data.data, c->data.len) != 0) {
        f->error = ember_xasprintf("the block is larger than the gateway's limit of %zu bytes",
                                   MAX_RESULT_BYTES);
        return 1;
    }
    if (c->last) {
        f->last = 1;
        f->total_size = c->total_size;
    }
    return 0;
}

static enum MHD_Result reply_fetch_error(struct gw_request *rq, grpc_status_code code,
                                         const char *details, const char *address,
                                         const char *block_id)
{
    char *peer = ember_xasprintf("block manager at %s", address);
    enum MHD_Result ret;

    if (code == GRPC_STATUS_NOT_FOUND)
        ret = gw_reply_error(rq, MHD_HTTP_NOT_FOUND, "block %s is no longer on the %s", block_id,
                             peer);
    else
        ret = gw_reply_rpc_error(rq, code, details, peer);
    free(peer);
    return ret;
}

static enum MHD_Result reply_block(struct gw_request *rq, struct ember_buf *buf)
{
    size_t len = 0;
    uint8_t *data = ember_buf_steal(buf, &len);

    return gw_reply_buffer(rq, MHD_HTTP_OK, "application/octet-stream", data, len);
}

/* Streams block_id from address and sends it as the response. */
static enum MHD_Result send_block(struct gw_request *rq, const char *address,
                                  const char *block_id)
{
    Ember__GetBlockRequest req = EMBER__GET_BLOCK_REQUEST__INIT;
    struct fetch f = {.error = NULL};
    grpc_channel *ch = block_channel(rq->gw->blocks, address);
    char *details = NULL;
    grpc_status_code code;
    enum MHD_Result ret;

    ember_buf_init(&f.buf, MAX_RESULT_BYTES);
    req.block_id = (char *)block_id;
    code = ember_rpc_call(ch, &ember__block_manager__descriptor, "GetBlock", &req.base, NULL,
                          on_chunk, &f, BLOCK_TIMEOUT_MS, &details);
    if (f.error)
        ret = gw_reply_error(rq, MHD_HTTP_INTERNAL_SERVER_ERROR, "cannot fetch block %s: %s",
                             block_id, f.error);
    else if (code != GRPC_STATUS_OK)
        ret = reply_fetch_error(rq, code, details, address, block_id);
    else if (f.last && f.total_size && f.total_size != f.buf.len)
        ret = gw_reply_error(rq, MHD_HTTP_INTERNAL_SERVER_ERROR,
                             "block %s ended after %zu of its %llu bytes", block_id, f.buf.len,
                             (unsigned long long)f.total_size);
    else
        ret = reply_block(rq, &f.buf);
    ember_buf_free(&f.buf);
    free(f.error);
    free(details);
    return ret;
}

/* The "results" entry of the partition, or NULL (borrowed from job). */
static const json_t *find_result(const json_t *job, uint32_t partition)
{
    const json_t *results = json_object_get(job, "results");
    const json_t *entry;
    size_t i;

    json_array_foreach(results, i, entry) {
        const json_t *p = json_object_get(entry, "partition");
        if (json_is_integer(p) && json_integer_value(p) == (json_int_t)partition)
            return entry;
    }
    return NULL;
}

/* Decides from the GetJob JSON whether and where the result can be fetched. */
static enum MHD_Result send_result(struct gw_request *rq, const json_t *job)
{
    const char *status = json_string_value(json_object_get(job, "status"));
    const json_t *entry;
    const char *address, *block_id;

    if (status && strcmp(status, "RUNNING") == 0)
        return gw_reply_error(rq, MHD_HTTP_CONFLICT,
                              "job %u is still RUNNING; fetch its results once it SUCCEEDED",
                              rq->job);
    if (!status || strcmp(status, "SUCCEEDED") != 0)
        return gw_reply_error(rq, MHD_HTTP_NOT_FOUND, "job %u is %s, so it has no results",
                              rq->job, status ? status : "in an unknown state");
    entry = find_result(job, rq->partition);
    if (!entry)
        return gw_reply_error(rq, MHD_HTTP_NOT_FOUND, "job %u has no result for partition %u",
                              rq->job, rq->partition);
    address = json_string_value(json_object_get(entry, "blockManager"));
    block_id = json_string_value(json_object_get(entry, "blockId"));
    if (!address || !block_id)
        return gw_reply_error(rq, MHD_HTTP_INTERNAL_SERVER_ERROR,
                              "the master named no block for job %u partition %u", rq->job,
                              rq->partition);
    return send_block(rq, address, block_id);
}

enum MHD_Result gw_results_get(struct gw_request *rq)
{
    char *json = NULL, *details = NULL, *peer = NULL;
    grpc_status_code code = gw_master_get_job(rq->gw, rq->app, rq->job, &json, &details);
    json_error_t err;
    json_t *job;
    enum MHD_Result ret;

    if (code != GRPC_STATUS_OK) {
        peer = gw_master_peer(rq->gw);
        ret = gw_reply_rpc_error(rq, code, details, peer);
        goto out;
    }
    job = json_loads(json, 0, &err);
    if (!job) {
        ret = gw_reply_error(rq, MHD_HTTP_INTERNAL_SERVER_ERROR,
                             "the master's job JSON does not parse: %s", err.text);
        goto out;
    }
    ret = send_result(rq, job);
    json_decref(job);
out:
    free(json);
    free(details);
    free(peer);
    return ret;
}
