/* The worker as a client of block managers: cached channels, chunked puts,
 * streamed fetches. */
#define _GNU_SOURCE
#include "worker.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <unistd.h>

#include "blockd.pb-c.h"
#include "frame.h"
#include "log.h"

#define CHUNK_BYTES (1 << 20)
/* Blocks of at least this size go to our own block manager through a memfd
 * (put_local); a smaller one is a single PutBlock chunk anyway. */
#define LOCAL_PUT_MIN_BYTES CHUNK_BYTES
#define PUT_IN_CHUNKS 1     /* put_local: not done, send the chunks */
#define BLOCK_DEADLINE_MS 60000
/* A local put is one call for the whole block (which the block manager may
 * still write to its disk in chunks): its deadline grows with the size. */
#define LOCAL_PUT_MS_PER_MIB 100
#ifndef MFD_NOEXEC_SEAL
#define MFD_NOEXEC_SEAL 0x0008U
#endif

/* Retired channels stay in the list (other tasks may still use them) until
 * the worker exits; lookups skip them. */
struct channel_entry {
    char *address;
    grpc_channel *channel;
    int retired;
    struct channel_entry *next;
};

grpc_channel *worker_channel(struct worker *w, const char *address)
{
    struct channel_entry *e;
    grpc_channel *ch;

    pthread_mutex_lock(&w->lock);
    for (e = w->channels; e; e = e->next)
        if (!e->retired && strcmp(e->address, address) == 0)
            break;
    if (!e) {
        e = ember_xcalloc(1, sizeof(*e));
        e->address = ember_xstrdup(address);
        e->channel = ember_rpc_channel_create(address, -1);
        e->next = w->channels;
        w->channels = e;
    }
    ch = e->channel;
    pthread_mutex_unlock(&w->lock);
    return ch;
}

/* After a failed fetch: the peer may be a new process at a new IP under the
 * same name (a restarted container), so the next call starts a new connection. */
static void retire_channel(struct worker *w, const char *address)
{
    pthread_mutex_lock(&w->lock);
    for (struct channel_entry *e = w->channels; e; e = e->next)
        if (!e->retired && strcmp(e->address, address) == 0)
            e->retired = 1;
    pthread_mutex_unlock(&w->lock);
}

void worker_channels_free(struct worker *w)
{
    struct channel_entry *e = w->channels, *next;

    for (; e; e = next) {
        next = e->next;
        grpc_channel_destroy(e->channel);
        free(e->address);
        free(e);
    }
    w->channels = NULL;
}

static int put_chunk(grpc_channel *ch, const char *address, const char *block_id,
                     Ember__BlockStorage storage, uint64_t offset, const uint8_t *data, size_t n,
                     int last, char **error)
{
    Ember__PutChunk chunk = EMBER__PUT_CHUNK__INIT;
    ProtobufCMessage *reply = NULL;
    char *details = NULL;
    grpc_status_code st;

    chunk.block_id = (char *)block_id;
    chunk.offset = offset;
    chunk.data.data = (uint8_t *)data;
    chunk.data.len = n;
    chunk.last = last;
    chunk.storage = storage;
    st = ember_rpc_call(ch, &ember__block_manager__descriptor, "PutBlock", &chunk.base, &reply,
                        NULL, NULL, BLOCK_DEADLINE_MS, &details);
    if (reply)
        protobuf_c_message_free_unpacked(reply, NULL);
    if (st != GRPC_STATUS_OK)
        *error = ember_xasprintf("cannot store block %s in block manager %s: %s", block_id,
                                 address, details && *details ? details : "unreachable");
    free(details);
    return st == GRPC_STATUS_OK ? 0 : EMBER_ERPC;
}

int worker_memfd_open(struct worker_memfd *m)
{
    uint64_t r[2];
    char name[64];

    m->fd = -1;
    m->len = 0;
    m->sealed = 0;
    if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r))
        return EMBER_EIO;
    snprintf(m->token, sizeof(m->token), "%016llx%016llx", (unsigned long long)r[0],
             (unsigned long long)r[1]);
    snprintf(name, sizeof(name), "ember-block-%s", m->token);
    /* Not executable (and sealed so), which vm.memfd_noexec may require; kernels
     * before 6.3 know no such flag and refuse it. */
    m->fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_NOEXEC_SEAL);
    if (m->fd < 0 && errno == EINVAL)
        m->fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
    return m->fd < 0 ? EMBER_EIO : 0;
}

void worker_memfd_close(struct worker_memfd *m)
{
    if (m->fd >= 0)
        close(m->fd);
    m->fd = -1;
    m->len = 0;
}

/* Seals m against writing, shrinking and growing, so that the block manager's
 * mapping of it can neither change nor shrink. */
static int seal(struct worker_memfd *m)
{
    if (!m->sealed
        && fcntl(m->fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) != 0)
        return EMBER_EIO;
    m->sealed = 1;
    return 0;
}

/* A sealed memfd holding the block's parts; EMBER_EIO when one cannot be made. */
static int sealed_memfd(const struct ember_buf *parts, size_t n_parts, struct worker_memfd *m)
{
    if (worker_memfd_open(m) != 0)
        return EMBER_EIO;
    for (size_t i = 0; i < n_parts; i++) {
        if (parts[i].len && ember_write_full(m->fd, parts[i].data, parts[i].len) != 0) {
            worker_memfd_close(m);
            return EMBER_EIO;
        }
        m->len += parts[i].len;
    }
    if (seal(m) != 0) {
        worker_memfd_close(m);
        return EMBER_EIO;
    }
    return 0;
}

static int local_put_deadline_ms(uint64_t size)
{
    uint64_t extra = (size >> 20) * LOCAL_PUT_MS_PER_MIB;

    return BLOCK_DEADLINE_MS + (int)(extra < INT_MAX / 2 ? extra : INT_MAX / 2);
}

/* Hands the whole block to our own block manager as a memfd it reads from
 * this host's memory (PutBlockLocal): no copy through a socket, no 1 MiB
 * calls. 0 stored; PUT_IN_CHUNKS when it cannot be done that way;
 * EMBER_ERPC with *error when the block manager refused the block. */
static int put_local(struct worker *w, grpc_channel *ch, const char *address,
                     const char *block_id, Ember__BlockStorage storage,
                     const struct worker_memfd *m, char **error)
{
    Ember__PutLocalRequest req = EMBER__PUT_LOCAL_REQUEST__INIT;
    ProtobufCMessage *reply = NULL;
    char path[64], *details = NULL;
    grpc_status_code st;

    snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int)getpid(), m->fd);
    req.block_id = (char *)block_id;
    req.storage = storage;
    req.path = path;
    req.token = (char *)m->token;
    req.size = m->len;
    st = ember_rpc_call(ch, &ember__block_manager__descriptor, "PutBlockLocal", &req.base,
                        &reply, NULL, NULL, local_put_deadline_ms(m->len), &details);
    if (reply)
        protobuf_c_message_free_unpacked(reply, NULL);
    if (st == GRPC_STATUS_RESOURCE_EXHAUSTED) {
        /* Out of descriptors or mappings there for now: only this block in chunks. */
        ember_log_debug("block=%s in chunks: %s", block_id, details ? details : "");
        free(details);
        return PUT_IN_CHUNKS;
    }
    if (st == GRPC_STATUS_FAILED_PRECONDITION || st == GRPC_STATUS_UNIMPLEMENTED) {
        /* Another host or pid namespace, or an older block manager: it will
         * not change while we run. */
        if (!__atomic_exchange_n(&w->local_puts_refused, 1, __ATOMIC_RELAXED))
            ember_log_info("block manager %s does not take blocks from this worker's memory "
                           "(%s); blocks go to it in chunks", address,
                           details && *details ? details : "unimplemented");
        free(details);
        return PUT_IN_CHUNKS;
    }
    if (st != GRPC_STATUS_OK)
        *error = ember_xasprintf("cannot store block %s in block manager %s: %s", block_id,
                                 address, details && *details ? details : "unreachable");
    free(details);
    return st == GRPC_STATUS_OK ? 0 : EMBER_ERPC;
}

/* Whether a block of size bytes for address goes to our own block manager
 * through a memfd. DISK_ONLY goes in chunks: a memfd would hold the whole block
 * in memory first, which is what the user chose that level to avoid. */
static int goes_local(struct worker *w, const char *address, Ember__BlockStorage storage,
                      uint64_t size)
{
    return size >= LOCAL_PUT_MIN_BYTES && worker_memfd_wanted(w, storage)
        && strcmp(address, w->block_addr) == 0;
}

int worker_memfd_wanted(struct worker *w, Ember__BlockStorage storage)
{
    return storage != EMBER__BLOCK_STORAGE__DISK_ONLY
        && !__atomic_load_n(&w->local_puts_refused, __ATOMIC_RELAXED);
}

/* The concatenation of parts in 1 MiB PutBlock calls. */
static int put_chunks(grpc_channel *ch, const char *address, const char *block_id,
                      Ember__BlockStorage storage, const struct ember_buf *parts, size_t n_parts,
                      char **error)
{
    uint8_t *staging = ember_xmalloc(CHUNK_BYTES);
    size_t fill = 0, part = 0, pos = 0;
    uint64_t offset = 0;
    int rc = 0;
    /* Chunks are cut across part boundaries, so every chunk but the last is full.
     * A chunk that lies within one part goes out from there, without the copy. */
    for (;;) {
        while (part < n_parts && pos == parts[part].len) {
            part++;
            pos = 0;
        }
        if (fill == 0 && part < n_parts) {
            size_t left = parts[part].len - pos;
            int last = left <= CHUNK_BYTES && part == n_parts - 1;
            if (left >= CHUNK_BYTES || last) {
                size_t n = left < CHUNK_BYTES ? left : CHUNK_BYTES;
                last = last && n == left;
                rc = put_chunk(ch, address, block_id, storage, offset, parts[part].data + pos, n,
                               last, error);
                offset += n;
                pos += n;
                if (rc != 0 || last)
                    break;
                continue;
            }
        }
        if (part == n_parts || fill == CHUNK_BYTES) {
            int last = part == n_parts;
            rc = put_chunk(ch, address, block_id, storage, offset, staging, fill, last, error);
            offset += fill;
            fill = 0;
            if (rc != 0 || last)
                break;
            continue;
        }
        size_t n = parts[part].len - pos;
        if (n > CHUNK_BYTES - fill)
            n = CHUNK_BYTES - fill;
        memcpy(staging + fill, parts[part].data + pos, n);
        fill += n;
        pos += n;
    }
    free(staging);
    return rc;
}

int worker_store_block(struct worker *w, const char *address, const char *block_id,
                       Ember__BlockStorage storage, const struct ember_buf *parts, size_t n_parts,
                       char **error)
{
    grpc_channel *ch = worker_channel(w, address);
    uint64_t size = 0;

    for (size_t i = 0; i < n_parts; i++)
        size += parts[i].len;
    if (goes_local(w, address, storage, size)) {
        struct worker_memfd m;
        if (sealed_memfd(parts, n_parts, &m) == 0) {
            int rc = put_local(w, ch, address, block_id, storage, &m, error);
            worker_memfd_close(&m);
            if (rc != PUT_IN_CHUNKS)
                return rc;
        }
    }
    return put_chunks(ch, address, block_id, storage, parts, n_parts, error);
}

int worker_store_memfd(struct worker *w, const char *address, const char *block_id,
                       Ember__BlockStorage storage, struct worker_memfd *m, char **error)
{
    grpc_channel *ch = worker_channel(w, address);
    int rc;

    if (goes_local(w, address, storage, m->len) && seal(m) == 0) {
        rc = put_local(w, ch, address, block_id, storage, m, error);
        if (rc != PUT_IN_CHUNKS)
            return rc;
    }
    if (m->len == 0)
        return put_chunks(ch, address, block_id, storage, NULL, 0, error);
    void *map = mmap(NULL, m->len, PROT_READ, MAP_SHARED, m->fd, 0);
    if (map == MAP_FAILED) {
        *error = ember_xasprintf("cannot store block %s in block manager %s: cannot map its "
                                 "%zu bytes: %s", block_id, address, m->len, strerror(errno));
        return EMBER_EIO;
    }
    struct ember_buf part = {.data = map, .len = m->len, .alloc = m->len};
    rc = put_chunks(ch, address, block_id, storage, &part, 1, error);
    munmap(map, m->len);
    return rc;
}

/* Where fetched bytes go: a pipe (fd >= 0) or a buffer. */
struct fetch_state {
    int fd;
    uint64_t bytes;
    int write_failed;
    struct ember_buf *buf;
};

static int on_chunk(const ProtobufCMessage *msg, void *user)
{
    const Ember__Chunk *chunk = (const Ember__Chunk *)msg;
    struct fetch_state *fs = user;
    int rc = fs->buf ? ember_buf_append(fs->buf, chunk->data.data, chunk->data.len)
                     : ember_write_full(fs->fd, chunk->data.data, chunk->data.len);

    if (rc != 0) {
        fs->write_failed = 1;
        return 1;                  /* the pyexec is gone: stop the stream */
    }
    fs->bytes += chunk->data.len;
    return 0;
}

/* Turns a finished fetch into the return code worker.h promises. */
static int fetch_outcome(struct worker *w, const struct fetch_state *fs, grpc_status_code st,
                         char *details, char *what, const char *address, char **error)
{
    int rc = 0;

    if (st == GRPC_STATUS_UNAVAILABLE || st == GRPC_STATUS_DEADLINE_EXCEEDED)
        retire_channel(w, address);
    if (fs->write_failed) {
        rc = EMBER_EDEAD;
    } else if (st != GRPC_STATUS_OK) {
        *error = ember_xasprintf("cannot fetch %s from block manager %s: %s", what, address,
                                 details && *details ? details : "unreachable");
        rc = EMBER_ERPC;
    }
    free(details);
    free(what);
    return rc;
}

static int fetch_block(struct worker *w, const char *address, const char *block_id,
                       struct fetch_state *fs, char **error)
{
    Ember__GetBlockRequest req = EMBER__GET_BLOCK_REQUEST__INIT;
    char *details = NULL;
    grpc_status_code st;

    req.block_id = (char *)block_id;
    st = ember_rpc_call(worker_channel(w, address), &ember__block_manager__descriptor, "GetBlock",
                        &req.base, NULL, on_chunk, fs, BLOCK_DEADLINE_MS, &details);
    return fetch_outcome(w, fs, st, details, ember_xasprintf("block %s", block_id), address,
                         error);
}

int worker_fetch_block_to_buf(struct worker *w, const char *address, const char *block_id,
                              struct ember_buf *buf, char **error)
{
    struct fetch_state fs = {-1, 0, 0, buf};
    return fetch_block(w, address, block_id, &fs, error);
}

int worker_fetch_block_to_fd(struct worker *w, const char *address, const char *block_id, int fd,
                             uint64_t *bytes, char **error)
{
    struct fetch_state fs = {fd, 0, 0, NULL};
    int rc = fetch_block(w, address, block_id, &fs, error);

    *bytes = fs.bytes;
    return rc;
}

int worker_fetch_ranges_to_fd(struct worker *w, const char *address, Ember__BlockRange **ranges,
                              size_t n, int fd, uint64_t *bytes, char **error)
{
    Ember__GetRangesRequest req = EMBER__GET_RANGES_REQUEST__INIT;
    struct fetch_state fs = {fd, 0, 0, NULL};
    char *details = NULL;
    grpc_status_code st;

    req.ranges = ranges;
    req.n_ranges = n;
    st = ember_rpc_call(worker_channel(w, address), &ember__block_manager__descriptor, "GetRanges",
                        &req.base, NULL, on_chunk, &fs, BLOCK_DEADLINE_MS, &details);
    *bytes = fs.bytes;
    return fetch_outcome(w, &fs, st, details,
                         ember_xasprintf("%zu shuffle blocks (first %s)", n, ranges[0]->block_id),
                         address, error);
}

static int on_generation(const ProtobufCMessage *msg, void *user)
{
    *(uint64_t *)user = ((const Ember__Chunk *)msg)->generation;
    return 0;
}

int worker_block_generation(struct worker *w, const char *address, const char *block_id,
                            uint64_t *generation)
{
    Ember__GetBlockRequest req = EMBER__GET_BLOCK_REQUEST__INIT;
    uint64_t got = 0;
    grpc_status_code st;

    req.block_id = (char *)block_id;
    req.has_range = 1;                 /* no bytes: one empty chunk with the block's facts */
    st = ember_rpc_call(worker_channel(w, address), &ember__block_manager__descriptor, "GetBlock",
                        &req.base, NULL, on_generation, &got, 5000, NULL);
    if (st != GRPC_STATUS_OK || got == 0)
        return EMBER_ENOENT;
    *generation = got;
    return 0;
}
