/* Result downloads: find a job's result block with GetJob, then stream it from
 * the block manager that holds it as the client reads (a small result the
 * master holds comes inline in GetJob's JSON and is sent from there). The first chunk gives
 * the block's size (Content-Length) before the response starts, so an error up
 * to then is a JSON answer; afterwards MHD pulls one chunk at a time through
 * read_block, so a download holds about one chunk (1 MiB) whatever the block's
 * size, and an error mid-way ends the connection short of Content-Length. */
#define _GNU_SOURCE
#include "gw.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "blockd.pb-c.h"
#include "gw_stream.h"
#include "log.h"

#define CHUNK_WAIT_MS 120000           /* for each chunk of the block manager */
/* The whole download. A client that stops reading is dropped by MHD's
 * connection timeout, which cancels the stream, so this only bounds the rest. */
#define STREAM_DEADLINE_MS (24LL * 3600 * 1000)
#define MAX_CHUNK_MESSAGE (4 << 20)    /* a Chunk holds at most 1 MiB of data */
#define READ_BLOCK_BYTES (256 << 10)   /* MHD's buffer per download */

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
        ch = ember_rpc_channel_create_ex(address, MAX_CHUNK_MESSAGE, EMBER_RPC_NO_READ_AHEAD);
        b->v[b->n].address = ember_xstrdup(address);
        b->v[b->n].ch = ch;
        b->n++;
    }
    pthread_mutex_unlock(&b->lock);
    return ch;
}

/* A result block to send: where it is and its size as the master knows it. */
struct result_block {
    char *address;
    char *block_id;
    uint64_t size;
    uint8_t *data;                     /* inline: the bytes (size of them), no block */
    int is_inline;
};

/* One download: the result blocks to send one after another, the GetBlock
 * stream of the current one and the chunk being sent. Driven only by the MHD
 * thread of the connection (handler, read_block, free_download). */
struct download {
    struct gw_blocks *channels;
    struct result_block *blocks;
    size_t n_blocks, current;          /* blocks[current] is being streamed */
    struct gw_stream *stream;
    char *block_id;                    /* of the current block (borrowed from blocks) */
    char *address;
    Ember__Chunk *chunk;               /* being sent, or NULL */
    size_t chunk_off;                  /* bytes of chunk already sent */
    uint64_t received;                 /* bytes of every chunk so far */
    uint64_t total;                    /* the block's size, from the first chunk */
    int sized;                         /* the first chunk came: total is known */
    size_t inline_off;                 /* an inline blocks[current]: bytes sent */
};

static void free_download(void *cls)
{
    struct download *d = cls;

    if (!d)
        return;
    gw_stream_close(d->stream);        /* cancels the call if it still runs */
    if (d->chunk)
        protobuf_c_message_free_unpacked(&d->chunk->base, NULL);
    for (size_t i = 0; i < d->n_blocks; i++) {
        free(d->blocks[i].address);
        free(d->blocks[i].block_id);
        free(d->blocks[i].data);
    }
    free(d->blocks);
    free(d);
}

static struct download *download_new(struct gw_blocks *channels)
{
    struct download *d = ember_xcalloc(1, sizeof(*d));

    d->channels = channels;
    return d;
}

static void download_add(struct download *d, const char *address, const char *block_id,
                         uint64_t size)
{
    d->blocks = ember_xrealloc(d->blocks, (d->n_blocks + 1) * sizeof(*d->blocks));
    d->blocks[d->n_blocks].address = ember_xstrdup(address);
    d->blocks[d->n_blocks].block_id = ember_xstrdup(block_id);
    d->blocks[d->n_blocks].size = size;
    d->blocks[d->n_blocks].data = NULL;
    d->blocks[d->n_blocks].is_inline = 0;
    d->n_blocks++;
}

/* An inline result: takes data (size bytes). */
static void download_add_inline(struct download *d, uint8_t *data, uint64_t size)
{
    download_add(d, "master", "inline result", size);
    d->blocks[d->n_blocks - 1].data = data;
    d->blocks[d->n_blocks - 1].is_inline = 1;
}

/* Why the stream ended before the block did: a new sentence; *code is the
 * call's status (OK when it ended early without an error). */
static char *stream_end_error(struct download *d, grpc_status_code *code)
{
    const char *details = NULL;

    *code = gw_stream_status(d->stream, &details);
    if (*code == GRPC_STATUS_OK)
        return ember_xasprintf("block %s ended after %llu of its %llu bytes", d->block_id,
                               (unsigned long long)d->received, (unsigned long long)d->total);
    return ember_xasprintf("block manager at %s failed the download of block %s "
                           "(gRPC status %d%s%s)", d->address, d->block_id, (int)*code,
                           details && *details ? ": " : "", details ? details : "");
}

/* Checks a chunk against what came before (the first one sets the size). */
static char *check_chunk(struct download *d, const Ember__Chunk *c)
{
    if (!d->sized)
        d->total = c->total_size;
    d->sized = 1;
    if (c->offset != d->received)
        return ember_xasprintf("the block manager sent block %s's chunk at offset %llu after "
                               "%llu bytes", d->block_id, (unsigned long long)c->offset,
                               (unsigned long long)d->received);
    if (c->total_size != d->total || c->data.len > d->total - d->received)
        return ember_xasprintf("the block manager's chunks of block %s disagree about its "
                               "size (%llu, then %llu)", d->block_id,
                               (unsigned long long)d->total, (unsigned long long)c->total_size);
    return NULL;
}

/* Replaces d->chunk with the next non-empty chunk (or the first chunk, even
 * empty). On failure *error is new and *code the call's status. */
static int next_chunk(struct download *d, char **error, grpc_status_code *code)
{
    ProtobufCMessage *m = NULL;
    int first = !d->sized;

    *code = GRPC_STATUS_OK;
    do {
        if (d->chunk)
            protobuf_c_message_free_unpacked(&d->chunk->base, NULL);
        d->chunk = NULL;
        d->chunk_off = 0;
        if (gw_stream_next(d->stream, CHUNK_WAIT_MS, &m) == 0) {
            *error = stream_end_error(d, code);
            return EMBER_EIO;
        }
        d->chunk = (Ember__Chunk *)m;
        *error = check_chunk(d, d->chunk);
        if (*error)
            return EMBER_EIO;
        d->received += d->chunk->data.len;
    } while (d->chunk->data.len == 0 && !first);
    return 0;
}

/* Starts streaming blocks[index]: opens its GetBlock call and waits for the
 * first chunk. On failure *error is new and *code the call's status. */
static int open_block(struct download *d, size_t index, char **error, grpc_status_code *code)
{
    Ember__GetBlockRequest req = EMBER__GET_BLOCK_REQUEST__INIT;

    gw_stream_close(d->stream);
    d->stream = NULL;
    if (d->chunk)
        protobuf_c_message_free_unpacked(&d->chunk->base, NULL);
    d->chunk = NULL;
    d->chunk_off = 0;
    d->received = d->total = 0;
    d->sized = 0;
    d->current = index;
    d->block_id = d->blocks[index].block_id;
    d->address = d->blocks[index].address;
    if (d->blocks[index].is_inline) {  /* the bytes are here already */
        d->inline_off = 0;
        d->received = d->total = d->blocks[index].size;
        d->sized = 1;
        return 0;
    }
    req.block_id = d->block_id;
    d->stream = gw_stream_open(block_channel(d->channels, d->address),
                               &ember__block_manager__descriptor, "GetBlock", &req.base,
                               STREAM_DEADLINE_MS);
    if (next_chunk(d, error, code) != 0)
        return EMBER_EIO;
    if (d->n_blocks > 1 && d->total != d->blocks[index].size) {
        *code = GRPC_STATUS_OK;
        *error = ember_xasprintf("block %s holds %llu bytes, not the %llu the master listed",
                                 d->block_id, (unsigned long long)d->total,
                                 (unsigned long long)d->blocks[index].size);
        return EMBER_EIO;
    }
    return 0;
}

/* Makes d->chunk hold unsent bytes: the next chunk of this block, or the
 * first of the next block once this one is whole. */
static size_t unsent(const struct download *d)
{
    if (d->blocks[d->current].is_inline)
        return d->blocks[d->current].size - d->inline_off;
    return d->chunk->data.len - d->chunk_off;
}

static int refill(struct download *d, char **error, grpc_status_code *code)
{
    while (unsent(d) == 0) {
        int rc;
        if (d->received == d->total && d->current + 1 < d->n_blocks)
            rc = open_block(d, d->current + 1, error, code);
        else if (d->blocks[d->current].is_inline) {
            *code = GRPC_STATUS_OK;    /* MHD asked past the Content-Length: a bug */
            *error = ember_xasprintf("no bytes left after inline result %zu", d->current);
            rc = EMBER_EIO;
        } else
            rc = next_chunk(d, error, code);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* MHD's content reader: at most max bytes at pos; blocks for the next chunk. */
static ssize_t read_block(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct download *d = cls;
    grpc_status_code code;
    char *error = NULL;
    size_t n;

    if (refill(d, &error, &code) != 0) {
        ember_log_warn("result download of block %s broke after %llu bytes of the answer: %s",
                       d->block_id, (unsigned long long)pos, error);
        free(error);
        return MHD_CONTENT_READER_END_WITH_ERROR;  /* MHD closes the connection */
    }
    n = unsent(d);
    if (n > max)
        n = max;
    if (d->blocks[d->current].is_inline) {
        if (n)                          /* an empty result's data may be NULL */
            memcpy(buf, d->blocks[d->current].data + d->inline_off, n);
        d->inline_off += n;
    } else {
        memcpy(buf, d->chunk->data.data + d->chunk_off, n);
        d->chunk_off += n;
    }
    return (ssize_t)n;
}

/* The JSON answer when the block could not be fetched at all. */
static enum MHD_Result reply_fetch_error(struct gw_request *rq, const struct download *d,
                                         grpc_status_code code, const char *error)
{
    char *peer = ember_xasprintf("block manager at %s", d->address);
    const char *details = NULL;
    enum MHD_Result ret;

    gw_stream_status(d->stream, &details);
    if (code == GRPC_STATUS_NOT_FOUND)
        ret = gw_reply_error(rq, MHD_HTTP_NOT_FOUND, "block %s is no longer on the %s",
                             d->block_id, peer);
    else if (code != GRPC_STATUS_OK)
        ret = gw_reply_rpc_error(rq, code, details, peer);
    else
        ret = gw_reply_error(rq, MHD_HTTP_INTERNAL_SERVER_ERROR, "cannot fetch block %s: %s",
                             d->block_id, error);
    free(peer);
    return ret;
}

/* Queues the streaming response; takes ownership of d. The route handler runs
 * once the request is complete, when no response is held (see gw_http.c), so
 * the response goes to MHD directly with the headers gw_http.c's replies have. */
static enum MHD_Result queue_download(struct gw_request *rq, struct download *d,
                                      uint64_t length)
{
    struct MHD_Response *r = MHD_create_response_from_callback(length, READ_BLOCK_BYTES,
                                                               read_block, d, free_download);
    enum MHD_Result ret;

    if (!r) {
        free_download(d);
        return MHD_NO;                 /* out of memory in MHD: drop the connection */
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/octet-stream");
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    rq->status = MHD_HTTP_OK;
    ret = MHD_queue_response(rq->conn, MHD_HTTP_OK, r);
    MHD_destroy_response(r);           /* MHD keeps its reference until the end */
    return ret;
}

/* Opens the first block of d, waits for its first chunk (its size, or the
 * error to answer) and starts the response of `length` bytes in all. */
static enum MHD_Result start_download(struct gw_request *rq, struct download *d,
                                      uint64_t length)
{
    grpc_status_code code;
    char *error = NULL;
    enum MHD_Result ret;

    if (d->n_blocks == 0) {
        free_download(d);
        return gw_reply_static(rq, MHD_HTTP_OK, "application/octet-stream", "", 0);
    }
    if (open_block(d, 0, &error, &code) != 0) {
        ret = reply_fetch_error(rq, d, code, error);
        free(error);
        free_download(d);
        return ret;
    }
    if (d->n_blocks == 1)
        length = d->total;             /* the block manager's word: it sends the bytes */
    if (length == 0) {                 /* an empty block: nothing to stream */
        free_download(d);
        return gw_reply_static(rq, MHD_HTTP_OK, "application/octet-stream", "", 0);
    }
    return queue_download(rq, d, length);
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
/* Whether the job has results to fetch; if not, *reply is the answer saying why. */
static int job_succeeded(struct gw_request *rq, const json_t *job, enum MHD_Result *reply)
{
    const char *status = json_string_value(json_object_get(job, "status"));

    if (status && strcmp(status, "SUCCEEDED") == 0)
        return 1;
    if (status && strcmp(status, "RUNNING") == 0)
        *reply = gw_reply_error(rq, MHD_HTTP_CONFLICT,
                                "job %u is still RUNNING; fetch its results once it SUCCEEDED",
                                rq->job);
    else
        *reply = gw_reply_error(rq, MHD_HTTP_NOT_FOUND, "job %u is %s, so it has no results",
                                rq->job, status ? status : "in an unknown state");
    return 0;
}

/* An entry the master holds inline: 1 and *data (new) when it still has the
 * bytes; 0 with *reply the answer when it dropped them or they do not decode;
 * -1 when the entry is a block. */
static int inline_entry(struct gw_request *rq, const json_t *entry, uint8_t **data, size_t *len,
                        enum MHD_Result *reply)
{
    const json_t *flag = json_object_get(entry, "inline");
    const char *b64 = json_string_value(json_object_get(entry, "data"));
    json_int_t partition = json_integer_value(json_object_get(entry, "partition"));

    if (!flag)
        return -1;
    if (!json_is_true(flag)) {         /* the driver reruns the job on this answer */
        *reply = gw_reply_error(rq, MHD_HTTP_NOT_FOUND,
                                "job %u's result of partition %lld is no longer on the master "
                                "(it dropped it to make room for newer results)",
                                rq->job, (long long)partition);
        return 0;
    }
    if (!b64 || ember_base64_decode(b64, strlen(b64), data, len) != 0) {
        *reply = gw_reply_error(rq, MHD_HTTP_INTERNAL_SERVER_ERROR,
                                "the master's inline result of job %u partition %lld does not "
                                "decode", rq->job, (long long)partition);
        return 0;
    }
    return 1;
}

static enum MHD_Result send_result(struct gw_request *rq, const json_t *job)
{
    const json_t *entry;
    const char *address, *block_id;
    enum MHD_Result reply;

    if (!job_succeeded(rq, job, &reply))
        return reply;
    entry = find_result(job, rq->partition);
    if (!entry)
        return gw_reply_error(rq, MHD_HTTP_NOT_FOUND, "job %u has no result for partition %u",
                              rq->job, rq->partition);
    uint8_t *data = NULL;
    size_t len = 0;
    switch (inline_entry(rq, entry, &data, &len, &reply)) {
    case 0:
        return reply;
    case 1:
        return gw_reply_buffer(rq, MHD_HTTP_OK, "application/octet-stream", data, len);
    }
    address = json_string_value(json_object_get(entry, "blockManager"));
    block_id = json_string_value(json_object_get(entry, "blockId"));
    if (!address || !block_id)
        return gw_reply_error(rq, MHD_HTTP_INTERNAL_SERVER_ERROR,
                              "the master named no block for job %u partition %u", rq->job,
                              rq->partition);
    struct download *d = download_new(rq->gw->blocks);
    download_add(d, address, block_id, 0);
    return start_download(rq, d, 0);
}

/* Every result block of the job, in the master's order, as one answer: a
 * job of many small partitions costs one GetJob and one request, not one of
 * each per partition. Empty blocks are skipped: the frames carry no more. */
static enum MHD_Result send_all_results(struct gw_request *rq, const json_t *job)
{
    const json_t *entry;
    uint64_t length = 0;
    enum MHD_Result reply;
    size_t i;

    if (!job_succeeded(rq, job, &reply))
        return reply;
    struct download *d = download_new(rq->gw->blocks);
    json_array_foreach(json_object_get(job, "results"), i, entry) {
        uint8_t *data = NULL;
        size_t len = 0;
        int held = inline_entry(rq, entry, &data, &len, &reply);
        if (held == 0) {
            free_download(d);
            return reply;
        }
        if (held == 1) {
            if (len)
                download_add_inline(d, data, len);
            else
                free(data);
            length += len;
            continue;
        }
        const char *address = json_string_value(json_object_get(entry, "blockManager"));
        const char *block_id = json_string_value(json_object_get(entry, "blockId"));
        json_int_t size = json_integer_value(json_object_get(entry, "size"));
        if (!address || !*address || !block_id || size < 0) {
            free_download(d);
            return gw_reply_error(rq, MHD_HTTP_INTERNAL_SERVER_ERROR,
                                  "the master named no block for a result of job %u", rq->job);
        }
        if (size == 0)
            continue;
        download_add(d, address, block_id, (uint64_t)size);
        length += (uint64_t)size;
    }
    return start_download(rq, d, length);
}

/* GetJob's JSON of rq's job, then `send` with it. */
static enum MHD_Result with_job(struct gw_request *rq,
                                enum MHD_Result (*send)(struct gw_request *, const json_t *))
{
    char *json = NULL, *details = NULL, *peer = NULL;
    grpc_status_code code = gw_master_get_job(rq->gw, rq->app, rq->job, 1, 0, &json, &details);
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
    ret = send(rq, job);
    json_decref(job);
out:
    free(json);
    free(details);
    free(peer);
    return ret;
}

enum MHD_Result gw_results_get(struct gw_request *rq)
{
    return with_job(rq, send_result);
}

enum MHD_Result gw_results_get_all(struct gw_request *rq)
{
    return with_job(rq, send_all_results);
}
