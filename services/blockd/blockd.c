/* blockd.c - see blockd.h. The gRPC handlers run on the rpc layer's threads
 * and share the store; the heartbeat thread alone talks to the master. */
#define _GNU_SOURCE
#include "blockd.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>

#include "blockd.pb-c.h"
#include "blockd_local.h"
#include "blockd_store.h"
#include "common.pb-c.h"
#include "log.h"
#include "master.pb-c.h"
#include "rpc.h"
#include "util.h"

#define CHUNK_BYTES ((size_t)1 << 20)
#define SERVER_THREADS 16  /* each GetBlock stream holds one for its duration */
#define HEARTBEAT_MS 1000
#define MASTER_TIMEOUT_MS 2000

const struct ember_option blockd_options[] = {
    {"listen", "EMBER_BLOCKD_LISTEN", "127.0.0.1:7079",
     "host:port to serve the BlockManager gRPC service on (port 0: any free port)"},
    {"master", "EMBER_MASTER_ADDRESS", "127.0.0.1:7077", "gRPC address of ember-master"},
    {"id", "EMBER_BLOCKD_ID", NULL,
     "id to register with the master (default blockd-<host>-<port>)"},
    {"host", "EMBER_HOST", NULL,
     "host name peers reach this block manager by (default: the listen host)"},
    {"memory", "EMBER_BLOCKD_MEMORY", "1073741824",
     "bytes of memory for blocks; past it, least recently used blocks are spilled to --dir "
     "or dropped, by storage level"},
    {"dir", "EMBER_BLOCKD_DIR", NULL,
     "spill directory, created at start and removed at exit (default /tmp/ember-blockd-<id>)"},
    {"local-puts", "EMBER_BLOCKD_LOCAL_PUTS", "1",
     "1: take blocks a worker on this host hands over in memory (PutBlockLocal); 0: refuse "
     "them, so that they come in chunks"},
    {0},
};

struct blockd {
    struct ember_daemon *d;       /* borrowed */
    struct blockd_store *store;
    ember_rpc_server *server;
    grpc_channel *master;
    const char *master_address;   /* borrowed from the options */
    char *id, *address, *host;
    char *dir;                    /* the spill directory */
    uint64_t memory;
    int local_puts;               /* --local-puts: PutBlockLocal is served */
    pthread_t heartbeat;
    int grpc_started, heartbeat_started;
    int master_down;              /* heartbeat thread only: the outage was logged */
};

/* ---- the BlockManager service ----------------------------------------- */

static grpc_status_code fail(ember_rpc_ctx *ctx, grpc_status_code st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static grpc_status_code fail(ember_rpc_ctx *ctx, grpc_status_code st, const char *fmt, ...)
{
    va_list ap;
    char *details = NULL;

    va_start(ap, fmt);
    if (vasprintf(&details, fmt, ap) < 0)
        details = NULL;
    va_end(ap);
    ember_rpc_set_details(ctx, details ? details : "block manager error");
    free(details);
    return st;
}

static grpc_status_code reply(ember_rpc_ctx *ctx, const ProtobufCMessage *msg)
{
    return ember_rpc_send(ctx, msg) == 0 ? GRPC_STATUS_OK : GRPC_STATUS_CANCELLED;
}

/* The checks both puts make before storing anything; OK when they pass. */
static grpc_status_code check_put(ember_rpc_ctx *ctx, const char *id, int storage)
{
    if (!blockd_store_valid_id(id))
        return fail(ctx, GRPC_STATUS_INVALID_ARGUMENT,
                    "block id '%s' is invalid: a block id is 1 to 200 characters of A-Z, a-z, "
                    "0-9 and _", id);
    if (storage < BLOCKD_PINNED || storage > BLOCKD_DISK_ONLY)
        return fail(ctx, GRPC_STATUS_INVALID_ARGUMENT,
                    "block %s: storage level %d is unknown (PINNED, MEMORY_ONLY, "
                    "MEMORY_AND_DISK or DISK_ONLY)", id, storage);
    return GRPC_STATUS_OK;
}

/* Stores one chunk; a status other than OK has been set on ctx. */
static grpc_status_code put_chunk(ember_rpc_ctx *ctx, struct blockd *b, const char *id,
                                  uint64_t offset, const uint8_t *data, size_t len, int last,
                                  int storage)
{
    int rc = blockd_store_put_chunk(b->store, id, offset, data, len, last,
                                    (enum blockd_storage)storage);

    if (rc == EMBER_EINVAL)
        return fail(ctx, GRPC_STATUS_INVALID_ARGUMENT,
                    "block %s: chunk at offset %" PRIu64 " is out of order; chunks must be "
                    "appended in order starting at offset 0, each after the previous one "
                    "was acknowledged",
                    id, offset);
    if (rc != 0)
        return fail(ctx, GRPC_STATUS_INTERNAL,
                    "block %s cannot be stored: writing it to %s failed and it could not be "
                    "kept in memory", id, b->dir);
    if (last)
        ember_log_debug("block=%s stored, %" PRIu64 " bytes", id, offset + len);
    return GRPC_STATUS_OK;
}

static grpc_status_code put_block(ember_rpc_ctx *ctx, const ProtobufCMessage *in, void *user)
{
    const Ember__PutChunk *req = (const Ember__PutChunk *)in;
    struct blockd *b = user;
    Ember__Ack ack = EMBER__ACK__INIT;
    grpc_status_code st = check_put(ctx, req->block_id, (int)req->storage);

    if (st == GRPC_STATUS_OK)
        st = put_chunk(ctx, b, req->block_id, req->offset, req->data.data, req->data.len,
                       req->last, (int)req->storage);
    return st == GRPC_STATUS_OK ? reply(ctx, &ack.base) : st;
}

/* A whole block in a memfd of a process on this host: its mapping becomes the
 * block where the chunks of PutBlock would have stayed in memory (no copy);
 * elsewhere (DISK_ONLY, a block over the memory limit) it is stored as those
 * chunks would be (same sizes, same order), read from the memfd's pages
 * instead of from a socket. */
static grpc_status_code put_block_local(ember_rpc_ctx *ctx, const ProtobufCMessage *in,
                                        void *user)
{
    const Ember__PutLocalRequest *req = (const Ember__PutLocalRequest *)in;
    struct blockd *b = user;
    Ember__Ack ack = EMBER__ACK__INIT;
    grpc_status_code st = check_put(ctx, req->block_id, (int)req->storage);
    const uint8_t *data;
    char *why = NULL;
    uint64_t off = 0;
    int rc;

    if (st != GRPC_STATUS_OK)
        return st;
    if (!b->local_puts)
        return fail(ctx, GRPC_STATUS_FAILED_PRECONDITION,
                    "block %s: this block manager takes no blocks from memory (--local-puts 0); "
                    "send it in chunks", req->block_id);
    rc = blockd_local_map(req->path, req->token, req->size, &data, &why);
    if (rc != 0) {
        /* RESOURCE_EXHAUSTED: this block in chunks, the next one from memory again. */
        st = fail(ctx, rc == BLOCKD_LOCAL_TRY_LATER ? GRPC_STATUS_RESOURCE_EXHAUSTED
                                                    : GRPC_STATUS_FAILED_PRECONDITION,
                  "block %s cannot be read from this host's memory (%s); send it in chunks",
                  req->block_id, why);
        free(why);
        return st;
    }
    rc = blockd_store_put_mapped(b->store, req->block_id, (uint8_t *)data, (size_t)req->size,
                                 (enum blockd_storage)req->storage);
    if (rc == 0) {
        ember_log_debug("block=%s was read from this host's memory (%s), kept as mapped",
                        req->block_id, req->path);
        return reply(ctx, &ack.base);
    }
    do {
        size_t n = req->size - off < CHUNK_BYTES ? (size_t)(req->size - off) : CHUNK_BYTES;
        const uint8_t *at = data ? data + off : (const uint8_t *)"";  /* empty: not NULL */
        st = put_chunk(ctx, b, req->block_id, off, at, n, off + n == req->size,
                       (int)req->storage);
        off += n;
    } while (st == GRPC_STATUS_OK && off < req->size);
    blockd_local_unmap(data, req->size);
    if (st != GRPC_STATUS_OK)
        return st;
    ember_log_debug("block=%s was read from this host's memory (%s)", req->block_id, req->path);
    return reply(ctx, &ack.base);
}

static grpc_status_code read_failed(ember_rpc_ctx *ctx, struct blockd *b, const char *id)
{
    return fail(ctx, GRPC_STATUS_INTERNAL,
                "block %s cannot be read from the disk of block manager %s (see its log)", id,
                b->id);
}

/* Sends bytes [off, end) of `blk` as chunks of at most CHUNK_BYTES; an empty
 * range is one empty chunk, so the last one is always marked. A block in
 * memory is packed straight from its bytes, one on disk read a chunk at a time. */
static grpc_status_code stream_block(ember_rpc_ctx *ctx, struct blockd *b, const char *id,
                                     const struct blockd_block *blk, uint64_t off, uint64_t end)
{
    const uint8_t *data = blockd_block_data(blk);
    uint8_t *staging = data ? NULL : ember_xmalloc(CHUNK_BYTES);
    grpc_status_code st = GRPC_STATUS_OK;

    do {
        Ember__Chunk c = EMBER__CHUNK__INIT;
        size_t n = end - off < CHUNK_BYTES ? (size_t)(end - off) : CHUNK_BYTES;
        c.offset = off;
        c.data.data = data ? (uint8_t *)data + off : staging;
        c.data.len = n;
        c.total_size = blockd_block_size(blk);
        c.generation = blockd_block_generation(blk);
        c.last = off + n == end;
        if (!data && blockd_block_read(blk, off, staging, n) != 0) {
            st = read_failed(ctx, b, id);
            break;
        }
        if (ember_rpc_send(ctx, &c.base) != 0) {
            st = GRPC_STATUS_CANCELLED; /* client gone, deadline, or shutdown */
            break;
        }
        off += n;
    } while (off < end);
    free(staging);
    return st;
}

/* A reference to block `id`, or a failed status. */
static grpc_status_code get_ref(ember_rpc_ctx *ctx, struct blockd *b, const char *id,
                                struct blockd_block **out)
{
    int rc = blockd_store_get(b->store, id, out);

    if (rc == EMBER_ENOENT)
        return fail(ctx, GRPC_STATUS_NOT_FOUND, "block %s is not on block manager %s", id,
                    b->id);
    if (rc != 0)
        return read_failed(ctx, b, id);
    return GRPC_STATUS_OK;
}

static grpc_status_code get_block(ember_rpc_ctx *ctx, const ProtobufCMessage *in, void *user)
{
    const Ember__GetBlockRequest *req = (const Ember__GetBlockRequest *)in;
    struct blockd *b = user;
    struct blockd_block *blk = NULL;
    grpc_status_code st;

    st = get_ref(ctx, b, req->block_id, &blk);
    if (st != GRPC_STATUS_OK)
        return st;
    uint64_t size = blockd_block_size(blk);
    uint64_t off = req->has_range ? req->offset : 0;
    uint64_t end = req->has_range ? req->offset + req->length : size;
    if (req->has_range && (req->offset > size || req->length > size - req->offset)) {
        blockd_block_release(blk);
        return fail(ctx, GRPC_STATUS_OUT_OF_RANGE, "range %" PRIu64 "+%" PRIu64
                    " is outside block %s of %" PRIu64 " bytes", req->offset, req->length,
                    req->block_id, size);
    }
    ember_log_debug("block=%s get, %" PRIu64 " bytes", req->block_id, end - off);
    /* our reference keeps the bytes (or the file) if the block is removed or evicted */
    st = stream_block(ctx, b, req->block_id, blk, off, end);
    blockd_block_release(blk);
    return st;
}

/* Takes a reference on every block of req, checking each range first, so
 * nothing is sent unless all of it can be. */
static grpc_status_code pin_ranges(ember_rpc_ctx *ctx, struct blockd *b,
                                   const Ember__GetRangesRequest *req, struct blockd_block **pinned,
                                   uint64_t *total)
{
    for (size_t i = 0; i < req->n_ranges; i++) {
        const Ember__BlockRange *r = req->ranges[i];
        uint64_t size;
        grpc_status_code st = get_ref(ctx, b, r->block_id, &pinned[i]);
        if (st != GRPC_STATUS_OK)
            return st;
        size = blockd_block_size(pinned[i]);
        if (r->offset > size || r->length > size - r->offset)
            return fail(ctx, GRPC_STATUS_OUT_OF_RANGE,
                        "range %" PRIu64 "+%" PRIu64 " is outside block %s of %" PRIu64
                        " bytes", r->offset, r->length, r->block_id, size);
        *total += r->length;
    }
    return GRPC_STATUS_OK;
}

/* Streams the ranges back to back in full chunks (small ranges share one). */
static grpc_status_code stream_ranges(ember_rpc_ctx *ctx, struct blockd *b,
                                      const Ember__GetRangesRequest *req,
                                      struct blockd_block **pinned, uint64_t total)
{
    uint8_t *staging = ember_xmalloc(CHUNK_BYTES);
    uint64_t sent = 0, pos = 0;
    size_t fill = 0, i = 0;
    grpc_status_code st = GRPC_STATUS_OK;

    for (;;) {
        while (i < req->n_ranges && pos == req->ranges[i]->length) {
            i++;
            pos = 0;
        }
        if (i == req->n_ranges || fill == CHUNK_BYTES) {
            Ember__Chunk c = EMBER__CHUNK__INIT;
            c.offset = sent;
            c.data.data = staging;
            c.data.len = fill;
            c.total_size = total;
            c.last = i == req->n_ranges;
            if (ember_rpc_send(ctx, &c.base) != 0) {
                st = GRPC_STATUS_CANCELLED;
                break;
            }
            sent += fill;
            fill = 0;
            if (c.last)
                break;
            continue;
        }
        uint64_t left = req->ranges[i]->length - pos;
        size_t n = left < CHUNK_BYTES - fill ? (size_t)left : CHUNK_BYTES - fill;
        if (blockd_block_read(pinned[i], req->ranges[i]->offset + pos, staging + fill, n) != 0) {
            st = read_failed(ctx, b, req->ranges[i]->block_id);
            break;
        }
        fill += n;
        pos += n;
    }
    free(staging);
    return st;
}

static grpc_status_code get_ranges(ember_rpc_ctx *ctx, const ProtobufCMessage *in, void *user)
{
    const Ember__GetRangesRequest *req = (const Ember__GetRangesRequest *)in;
    struct blockd *b = user;
    struct blockd_block **pinned = ember_xcalloc(req->n_ranges + 1, sizeof(*pinned));
    uint64_t total = 0;
    grpc_status_code st = pin_ranges(ctx, b, req, pinned, &total);

    if (st == GRPC_STATUS_OK) {
        ember_log_debug("get %zu ranges, %" PRIu64 " bytes", req->n_ranges, total);
        st = stream_ranges(ctx, b, req, pinned, total);
    }
    for (size_t i = 0; i < req->n_ranges; i++)
        blockd_block_release(pinned[i]);
    free(pinned);
    return st;
}

static grpc_status_code remove_blocks(ember_rpc_ctx *ctx, const ProtobufCMessage *in, void *user)
{
    const Ember__RemoveBlocksRequest *req = (const Ember__RemoveBlocksRequest *)in;
    struct blockd *b = user;
    Ember__RemoveBlocksReply rep = EMBER__REMOVE_BLOCKS_REPLY__INIT;
    size_t n;

    if (!*req->prefix)
        return fail(ctx, GRPC_STATUS_INVALID_ARGUMENT,
                    "RemoveBlocks needs a prefix (an empty one would remove every block)");
    n = blockd_store_remove_prefix(b->store, req->prefix);
    ember_log_info("prefix=%s removed %zu blocks", req->prefix, n);
    rep.removed = n > UINT32_MAX ? UINT32_MAX : (uint32_t)n;
    return reply(ctx, &rep.base);
}

static grpc_status_code stats(ember_rpc_ctx *ctx, const ProtobufCMessage *in, void *user)
{
    struct blockd *b = user;
    struct blockd_store_stats s;
    Ember__BlockStats rep = EMBER__BLOCK_STATS__INIT;

    blockd_store_stats(b->store, &s);
    rep.blocks = s.blocks;
    rep.bytes_in_memory = s.bytes_in_memory;
    rep.bytes_on_disk = s.bytes_on_disk;
    rep.evictions = s.evictions;
    rep.gets = s.gets;
    rep.puts = s.puts;
    return reply(ctx, &rep.base);
}

static const ember_rpc_method_impl block_manager_methods[] = {
    {"PutBlock", EMBER_RPC_UNARY, put_block},
    {"GetBlock", EMBER_RPC_SERVER_STREAM, get_block},
    {"GetRanges", EMBER_RPC_SERVER_STREAM, get_ranges},
    {"RemoveBlocks", EMBER_RPC_UNARY, remove_blocks},
    {"Stats", EMBER_RPC_UNARY, stats},
    /* Last: the fuzzer's seeds name methods by their index here. */
    {"PutBlockLocal", EMBER_RPC_UNARY, put_block_local},
};

/* ---- membership: registration and heartbeats -------------------------- */

/* Logs once per outage: the master may start after us or restart. */
static void master_failed(struct blockd *b, const char *method, grpc_status_code st,
                          const char *details)
{
    if (b->master_down)
        return;
    b->master_down = 1;
    ember_log_warn("id=%s cannot reach master %s (%s: status %d, %s); serving anyway and "
                   "retrying every second",
                   b->id, b->master_address, method, (int)st, details ? details : "");
}

static int register_with_master(struct blockd *b)
{
    Ember__RegisterBlockManagerRequest req = EMBER__REGISTER_BLOCK_MANAGER_REQUEST__INIT;
    ProtobufCMessage *rep = NULL;
    char *details = NULL;
    grpc_status_code st;

    req.blockd_id = b->id;
    req.address = b->address;
    req.host = b->host;
    req.memory_bytes = b->memory;
    req.incarnation = ember_incarnation();
    st = ember_rpc_call(b->master, &ember__master__descriptor, "RegisterBlockManager", &req.base,
                        &rep, NULL, NULL, MASTER_TIMEOUT_MS, &details);
    if (st == GRPC_STATUS_OK) {
        ember_log_info("id=%s registered with master %s as %s", b->id, b->master_address,
                       b->address);
        b->master_down = 0;
    } else {
        master_failed(b, "RegisterBlockManager", st, details);
    }
    if (rep)
        protobuf_c_message_free_unpacked(rep, NULL);
    free(details);
    return st == GRPC_STATUS_OK;
}

/* Returns 1 while the master knows us, 0 when we must register again. The
 * blocks dropped since the last answered heartbeat go with it, and are
 * forgotten once the master answered. */
static int send_heartbeat(struct blockd *b)
{
    Ember__HeartbeatRequest req = EMBER__HEARTBEAT_REQUEST__INIT;
    ProtobufCMessage *rep = NULL;
    struct blockd_store_stats s;
    char *details = NULL, **dropped = NULL;
    grpc_status_code st;
    int known = 0;

    req.n_dropped_blocks = blockd_store_dropped(b->store, &dropped);
    req.dropped_blocks = dropped;
    blockd_store_stats(b->store, &s);
    req.id = b->id;
    req.is_blockd = 1;
    req.blocks = s.blocks;
    req.bytes_in_memory = s.bytes_in_memory;
    req.bytes_on_disk = s.bytes_on_disk;
    req.evictions = s.evictions;
    st = ember_rpc_call(b->master, &ember__master__descriptor, "Heartbeat", &req.base, &rep, NULL,
                        NULL, MASTER_TIMEOUT_MS, &details);
    if (st == GRPC_STATUS_OK) {
        blockd_store_forget_dropped(b->store, dropped, req.n_dropped_blocks);
        known = ((Ember__HeartbeatReply *)rep)->known;
        if (!known)
            ember_log_info("id=%s master %s does not know this block manager; registering again",
                           b->id, b->master_address);
    } else {
        master_failed(b, "Heartbeat", st, details);
    }
    if (rep)
        protobuf_c_message_free_unpacked(rep, NULL);
    free(details);
    blockd_store_free_ids(dropped, req.n_dropped_blocks);
    return known;
}

static void *heartbeat_main(void *arg)
{
    struct blockd *b = arg;
    int registered = 0;

    do {
        if (registered)
            registered = send_heartbeat(b);
        if (!registered)
            registered = register_with_master(b);
    } while (!ember_daemon_sleep(b->d, HEARTBEAT_MS));
    return NULL;
}

/* ---- lifecycle --------------------------------------------------------- */

static int read_options(struct blockd *b)
{
    int64_t memory;
    int rc;

    rc = ember_daemon_opt_int(b->d, "memory", &memory);
    if (rc != 0)
        return rc;
    if (memory <= 0) {
        ember_log_error("option --memory must be a positive number of bytes, not %" PRId64,
                        memory);
        return EMBER_EINVAL;
    }
    b->memory = (uint64_t)memory;
    b->master_address = ember_daemon_opt(b->d, "master");
    const char *local = ember_daemon_opt(b->d, "local-puts");
    if (strcmp(local, "0") != 0 && strcmp(local, "1") != 0) {
        ember_log_error("option --local-puts must be 0 or 1, not '%s'", local);
        return EMBER_EINVAL;
    }
    b->local_puts = strcmp(local, "1") == 0;
    return 0;
}

/* The advertised address, host and id, once the port is known. */
static void set_identity(struct blockd *b, int port)
{
    const char *host = ember_daemon_opt(b->d, "host");
    const char *id = ember_daemon_opt(b->d, "id");
    const char *colon;

    b->address = ember_advertised_address(ember_daemon_opt(b->d, "listen"), port, host);
    colon = strrchr(b->address, ':');
    b->host = ember_xasprintf("%.*s", (int)(colon - b->address), b->address);
    b->id = id && *id ? ember_xstrdup(id) : ember_xasprintf("blockd-%s-%d", b->host, port);
}

/* The spill directory: --dir, or one named after the id under /tmp. */
static int open_store(struct blockd *b)
{
    const char *dir = ember_daemon_opt(b->d, "dir");

    if (dir && *dir) {
        b->dir = ember_xstrdup(dir);
    } else {
        b->dir = ember_xasprintf("/tmp/ember-blockd-%s", b->id);
        for (char *p = b->dir + strlen("/tmp/"); *p; p++)
            if (*p == '/')
                *p = '_'; /* an id is not a path */
    }
    return blockd_store_new(b->memory, b->dir, &b->store);
}

/* Every stream of a block on disk holds a file open: allow as many as we may. */
static void raise_file_limit(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            ember_log_debug("cannot raise the open file limit to the hard limit");
    }
}

static int start_server(struct blockd *b)
{
    const char *listen = ember_daemon_opt(b->d, "listen");
    size_t n = sizeof(block_manager_methods) / sizeof(block_manager_methods[0]);
    int port = 0, rc;

    b->server = ember_rpc_server_create(listen, &port, NULL);
    if (!b->server) {
        ember_log_error("cannot listen on %s: address in use or not host:port", listen);
        return EMBER_EIO;
    }
    set_identity(b, port);
    rc = open_store(b);
    if (rc != 0) {
        ember_rpc_server_start(b->server, 1); /* shutdown needs it started */
        return rc; /* logged with the path */
    }
    rc = ember_rpc_server_add_service(b->server, &ember__block_manager__descriptor,
                                      block_manager_methods, n, b);
    ember_rpc_server_start(b->server, SERVER_THREADS); /* even on error: shutdown needs it */
    if (rc != 0) {
        ember_log_error("internal error: the method table does not match blockd.proto");
        return EMBER_EINVAL;
    }
    return 0;
}

int blockd_create(struct ember_daemon *d, struct blockd **out)
{
    struct blockd *b = ember_xcalloc(1, sizeof(*b));
    int rc;

    b->d = d;
    rc = read_options(b);
    if (rc != 0)
        goto out;
    raise_file_limit();
    grpc_init();
    b->grpc_started = 1;
    rc = start_server(b);
    if (rc != 0)
        goto out;
    b->master = ember_rpc_channel_create(b->master_address, 0);
    if (pthread_create(&b->heartbeat, NULL, heartbeat_main, b) != 0) {
        ember_log_error("cannot start the heartbeat thread");
        rc = EMBER_EIO;
        goto out;
    }
    b->heartbeat_started = 1;
    ember_log_info("id=%s serving %" PRIu64 " bytes of block memory, spilling to %s, master %s",
                   b->id, b->memory, b->dir, b->master_address);
    ember_daemon_ready(d, b->address);
    *out = b;
    b = NULL; /* ownership moved to the caller */
out:
    blockd_destroy(b);
    return rc;
}

void blockd_destroy(struct blockd *b)
{
    if (!b)
        return;
    if (b->server)
        ember_rpc_server_shutdown(b->server); /* cancels GetBlock streams in flight */
    if (b->heartbeat_started)
        pthread_join(b->heartbeat, NULL);
    if (b->master)
        grpc_channel_destroy(b->master);
    blockd_store_free(b->store);
    if (b->grpc_started)
        grpc_shutdown();
    free(b->id);
    free(b->address);
    free(b->host);
    free(b->dir);
    free(b);
}

ember_rpc_server *blockd_rpc_server(struct blockd *b)
{
    return b->server;
}
