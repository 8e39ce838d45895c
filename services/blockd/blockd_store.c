/* blockd_store.c - see blockd_store.h. One mutex guards a chained hash table
 * of entries (one per block id), an LRU list of the complete blocks held in
 * memory (eviction takes the oldest), the counters and the dropped list.
 * Disk writes run without the lock: a write appending to its file is marked
 * busy, a block being spilled is marked spilling, and the thread doing the I/O
 * checks on relocking whether the block was removed or replaced meanwhile. */
#define _GNU_SOURCE
#include "blockd_store.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <string.h>
#include <unistd.h>

#include "blockd_disk.h"
#include "log.h"
#include "util.h"

#define INITIAL_BUCKETS 64
#define STUCK_RETRY_MS 10000 /* how long PINNED blocks that failed to spill are left alone */

struct blockd_block {
    atomic_uint refs;
    uint64_t size;
    uint64_t generation; /* of the complete block it shows (see blockd_block_generation) */
    uint8_t *data; /* in memory, or NULL for a view of a file */
    int mapped;    /* data is a mapping (blockd_store_put_mapped), unmapped at the end */
    int fd;        /* a view of a file: open for reading (it may be unlinked) */
    char *path;    /* that file, for error messages */
};

enum write_mode {
    W_MEMORY,  /* bytes buffered in memory */
    W_FILE,    /* bytes appended to a temporary file */
    W_DISCARD, /* bytes counted and thrown away: the block is dropped when complete */
};

/* A write in progress. While busy, one thread appends to its file without the
 * lock and alone touches buf, fd and flushed; a write dropped meanwhile is
 * only marked detached, and that thread frees it. The file exists while fd >= 0. */
struct write {
    enum blockd_storage storage;
    enum write_mode mode;
    uint64_t len;         /* bytes received */
    struct ember_buf buf; /* W_MEMORY: the bytes; W_FILE: those not yet in the file */
    uint64_t mem_counted; /* bytes of buf counted in pending_mem */
    uint64_t flushed;     /* W_FILE: bytes in the file */
    int fd;
    char *tmp;            /* W_FILE: the file */
    int evicted;          /* left memory because it alone exceeds the limit */
    int disk_failed;      /* do not try the disk again for this write */
    int busy, detached;
    uint8_t *mapped;      /* the whole block, a mapping taken over (blockd_store_put_mapped) */
};

/* One block id: a complete block (in memory or on disk), a write in progress,
 * or both while a block is being replaced. An entry with neither is removed. */
struct entry {
    char *id;
    uint64_t hash;
    struct entry *next;          /* hash chain */
    struct entry *newer, *older; /* in lru (or stuck) while mem != NULL and not spilling */
    enum blockd_storage storage; /* of the complete block */
    struct blockd_block *mem;    /* the complete block in memory, or NULL */
    int spilling;                /* mem is being written to disk */
    int stuck;                   /* PINNED, failed to spill: in the stuck list */
    int on_disk;                 /* the complete block is <dir>/<id>.blk */
    uint64_t disk_size;
    uint64_t generation;         /* of the complete block: new for every completed write */
    struct write *w;             /* the write in progress, or NULL */
};

/* An eviction to disk: prepared under the lock, written without it. */
struct spill {
    char *id, *tmp;
    struct blockd_block *blk; /* a reference: the bytes stay while written */
    struct spill *next;
};

struct lru {
    struct entry *newest, *oldest;
};

struct blockd_store {
    pthread_mutex_t lock;
    struct entry **buckets;
    size_t nbuckets, nentries;
    struct lru lru;            /* complete blocks in memory that may be evicted */
    struct lru stuck;          /* PINNED blocks whose spill failed, back in lru at: */
    uint64_t stuck_until;      /* ember_monotonic_ms() */
    uint64_t memory_limit;
    char *dir;
    uint64_t seq;            /* makes temporary file names unique */
    uint64_t generation;     /* the last one given to a completed block */
    uint64_t pending_mem;    /* bytes of writes buffered in memory */
    uint64_t spilling_bytes; /* bytes of blocks being spilled (still in memory) */
    char **dropped;
    size_t ndropped, dropped_alloc;
    struct blockd_store_stats stats;
};

/* ---- the hash table and the LRU list ---------------------------------- */

/* FNV-1a: short ids with long common prefixes hash well enough. */
static uint64_t hash_id(const char *id)
{
    uint64_t h = 14695981039346656037ull;

    for (; *id; id++)
        h = (h ^ (uint8_t)*id) * 1099511628211ull;
    return h;
}

static struct entry **bucket_of(struct blockd_store *s, uint64_t hash)
{
    return &s->buckets[hash & (s->nbuckets - 1)];
}

static struct entry *find(struct blockd_store *s, const char *id)
{
    uint64_t h = hash_id(id);

    for (struct entry *e = *bucket_of(s, h); e; e = e->next)
        if (e->hash == h && strcmp(e->id, id) == 0)
            return e;
    return NULL;
}

static void grow(struct blockd_store *s)
{
    struct entry **old = s->buckets;
    size_t n = s->nbuckets;

    s->nbuckets = n * 2;
    s->buckets = ember_xcalloc(s->nbuckets, sizeof(*s->buckets));
    for (size_t i = 0; i < n; i++) {
        while (old[i]) {
            struct entry *e = old[i];
            struct entry **b = bucket_of(s, e->hash);
            old[i] = e->next;
            e->next = *b;
            *b = e;
        }
    }
    free(old);
}

static struct entry *insert(struct blockd_store *s, const char *id)
{
    struct entry *e = ember_xcalloc(1, sizeof(*e));
    struct entry **b;

    if (s->nentries >= s->nbuckets)
        grow(s);
    e->id = ember_xstrdup(id);
    e->hash = hash_id(id);
    b = bucket_of(s, e->hash);
    e->next = *b;
    *b = e;
    s->nentries++;
    return e;
}

/* Unlinks and frees `e`, which must hold neither a block nor a write. */
static void remove_entry(struct blockd_store *s, struct entry *e)
{
    struct entry **p = bucket_of(s, e->hash);

    while (*p != e)
        p = &(*p)->next;
    *p = e->next;
    s->nentries--;
    free(e->id);
    free(e);
}

static void remove_if_empty(struct blockd_store *s, struct entry *e)
{
    if (!e->mem && !e->on_disk && !e->w)
        remove_entry(s, e);
}

static void lru_unlink(struct lru *l, struct entry *e)
{
    if (e->newer)
        e->newer->older = e->older;
    else
        l->newest = e->older;
    if (e->older)
        e->older->newer = e->newer;
    else
        l->oldest = e->newer;
    e->newer = e->older = NULL;
}

static void lru_push_newest(struct lru *l, struct entry *e)
{
    e->older = l->newest;
    e->newer = NULL;
    if (l->newest)
        l->newest->newer = e;
    else
        l->oldest = e;
    l->newest = e;
}

static void lru_push_oldest(struct lru *l, struct entry *e)
{
    e->newer = l->oldest;
    e->older = NULL;
    if (l->oldest)
        l->oldest->older = e;
    else
        l->newest = e;
    l->oldest = e;
}

/* The list a block in memory (not spilling) is on. */
static struct lru *list_of(struct blockd_store *s, struct entry *e)
{
    return e->stuck ? &s->stuck : &s->lru;
}

/* Once their time is up, stuck blocks become the least recently used ones:
 * the disk may have room again. */
static void unstick(struct blockd_store *s)
{
    if (!s->stuck.oldest || ember_monotonic_ms() < s->stuck_until)
        return;
    while (s->stuck.newest) {
        struct entry *e = s->stuck.newest;
        lru_unlink(&s->stuck, e);
        e->stuck = 0;
        lru_push_oldest(&s->lru, e);
    }
}

/* ---- the dropped list -------------------------------------------------- */

static void note_dropped(struct blockd_store *s, const char *id)
{
    for (size_t i = 0; i < s->ndropped; i++)
        if (strcmp(s->dropped[i], id) == 0)
            return;
    if (s->ndropped == s->dropped_alloc) {
        s->dropped_alloc = s->dropped_alloc ? 2 * s->dropped_alloc : 16;
        s->dropped = ember_xrealloc(s->dropped, s->dropped_alloc * sizeof(*s->dropped));
    }
    s->dropped[s->ndropped++] = ember_xstrdup(id);
}

static void unlist_dropped(struct blockd_store *s, const char *id)
{
    for (size_t i = 0; i < s->ndropped; i++) {
        if (strcmp(s->dropped[i], id) == 0) {
            free(s->dropped[i]);
            s->ndropped--;
            memmove(&s->dropped[i], &s->dropped[i + 1], (s->ndropped - i) * sizeof(char *));
            return;
        }
    }
}

/* ---- complete blocks --------------------------------------------------- */

static struct blockd_block *new_view(uint64_t size, uint8_t *data, int fd, char *path)
{
    struct blockd_block *b = ember_xcalloc(1, sizeof(*b));

    atomic_init(&b->refs, 1);
    b->size = size;
    b->data = data;
    b->fd = fd;
    b->path = path;
    return b;
}

/* Forgets the complete block of `e`, if any, and removes its file unless
 * keep_file (a new file was already renamed over it). */
static void drop_block(struct blockd_store *s, struct entry *e, int keep_file)
{
    if (e->mem) {
        if (e->spilling)
            s->spilling_bytes -= e->mem->size; /* the spiller will find it gone */
        else
            lru_unlink(list_of(s, e), e);
        e->spilling = 0;
        e->stuck = 0;
        s->stats.bytes_in_memory -= e->mem->size;
        s->stats.blocks--;
        blockd_block_release(e->mem);
        e->mem = NULL;
    }
    if (e->on_disk) {
        if (!keep_file) {
            char *path = blockd_disk_block_path(s->dir, e->id);
            blockd_disk_unlink(path);
            free(path);
        }
        s->stats.bytes_on_disk -= e->disk_size;
        s->stats.blocks--;
        e->on_disk = 0;
    }
}

/* Drops an evicted block whose bytes cannot be kept, and lists it. */
static void drop_evicted(struct blockd_store *s, struct entry *e)
{
    drop_block(s, e, 0);
    s->stats.evictions++;
    note_dropped(s, e->id);
    ember_log_debug("block=%s dropped from memory", e->id);
    remove_if_empty(s, e);
}

static void start_spill(struct blockd_store *s, struct entry *e, struct spill ***tail)
{
    struct spill *sp = ember_xcalloc(1, sizeof(*sp));

    lru_unlink(&s->lru, e);
    e->spilling = 1;
    s->spilling_bytes += e->mem->size;
    sp->id = ember_xstrdup(e->id);
    sp->tmp = blockd_disk_tmp_path(s->dir, e->id, s->seq++);
    sp->blk = e->mem;
    atomic_fetch_add(&sp->blk->refs, 1);
    **tail = sp;
    *tail = &sp->next;
}

static uint64_t memory_in_use(const struct blockd_store *s)
{
    return s->stats.bytes_in_memory + s->pending_mem - s->spilling_bytes;
}

/* Evicts least recently used blocks, except `just` (the newest), while the
 * memory in use is over the limit: MEMORY_ONLY ones are dropped at once, the
 * others returned as spills to run without the lock. */
static struct spill *relieve_pressure(struct blockd_store *s, struct entry *just)
{
    struct spill *spills = NULL, **tail = &spills;

    unstick(s);
    while (s->memory_limit && memory_in_use(s) > s->memory_limit) {
        struct entry *v = s->lru.oldest;
        if (!v || v == just)
            break; /* what is left is being written or was just written */
        if (v->storage == BLOCKD_MEMORY_ONLY)
            drop_evicted(s, v);
        else
            start_spill(s, v, &tail);
    }
    return spills;
}

/* Called with the lock held once the spill's file was written (rc == 0) or not. */
static void finish_spill(struct blockd_store *s, struct spill *sp, int rc)
{
    struct entry *e = find(s, sp->id);
    char *path;

    if (!e || e->mem != sp->blk || !e->spilling) { /* removed or replaced meanwhile */
        if (rc == 0)
            blockd_disk_unlink(sp->tmp);
        return;
    }
    e->spilling = 0;
    s->spilling_bytes -= sp->blk->size;
    path = blockd_disk_block_path(s->dir, e->id);
    if (rc == 0)
        rc = blockd_disk_rename(sp->tmp, path);
    free(path);
    if (rc == 0) {
        s->stats.bytes_in_memory -= sp->blk->size;
        s->stats.bytes_on_disk += sp->blk->size;
        s->stats.evictions++;
        e->on_disk = 1;
        e->disk_size = sp->blk->size;
        blockd_block_release(e->mem);
        e->mem = NULL;
        ember_log_debug("block=%s spilled to disk", e->id);
    } else if (e->storage == BLOCKD_PINNED) {
        e->stuck = 1;
        lru_push_newest(&s->stuck, e);
        s->stuck_until = ember_monotonic_ms() + STUCK_RETRY_MS;
        ember_log_warn("block=%s kept in memory over the limit: it cannot be spilled (tried "
                       "again in %d s)", e->id, STUCK_RETRY_MS / 1000);
    } else {
        drop_evicted(s, e);
    }
}

static void run_spills(struct blockd_store *s, struct spill *sp)
{
    while (sp) {
        struct spill *next = sp->next;
        int rc = blockd_disk_write_file(sp->tmp, sp->blk->data, sp->blk->size);
        pthread_mutex_lock(&s->lock);
        finish_spill(s, sp, rc);
        pthread_mutex_unlock(&s->lock);
        blockd_block_release(sp->blk);
        free(sp->id);
        free(sp->tmp);
        free(sp);
        sp = next;
    }
}

/* ---- writes ------------------------------------------------------------ */

static void to_file(struct blockd_store *s, struct write *w, const char *id)
{
    w->mode = W_FILE;
    w->tmp = blockd_disk_tmp_path(s->dir, id, s->seq++);
}

static struct write *new_write(struct blockd_store *s, const char *id,
                               enum blockd_storage storage)
{
    struct write *w = ember_xcalloc(1, sizeof(*w));

    w->storage = storage;
    w->mode = W_MEMORY;
    w->fd = -1;
    ember_buf_init(&w->buf, 0);
    if (storage == BLOCKD_DISK_ONLY)
        to_file(s, w, id);
    s->stats.writes++;
    return w;
}

/* Frees a write no entry holds, with its file. */
static void free_write(struct write *w)
{
    if (w->fd >= 0) {
        close(w->fd);
        blockd_disk_unlink(w->tmp);
    }
    free(w->tmp);
    ember_buf_free(&w->buf);
    if (w->mapped)
        munmap(w->mapped, (size_t)w->len);
    free(w);
}

/* Takes the write off `e` and out of the counters. */
static void drop_write(struct blockd_store *s, struct entry *e)
{
    struct write *w = e->w;

    s->stats.writes--;
    s->stats.write_bytes -= w->len;
    s->pending_mem -= w->mem_counted;
    e->w = NULL;
    if (w->busy)
        w->detached = 1; /* its thread frees it */
    else
        free_write(w);
}

/* A write that alone no longer fits in memory goes to a file, or for
 * MEMORY_ONLY is thrown away. */
static void leave_memory(struct blockd_store *s, struct write *w, const char *id)
{
    w->evicted = 1;
    if (w->storage != BLOCKD_MEMORY_ONLY) {
        to_file(s, w, id);
        return;
    }
    s->pending_mem -= w->mem_counted;
    w->mem_counted = 0;
    ember_buf_free(&w->buf);
    w->mode = W_DISCARD;
}

/* Without the lock: what the file of a PINNED write held, then the bytes not
 * yet in it, then the chunk, become its memory buffer again. */
static int back_to_memory(struct write *w, const void *data, size_t len)
{
    struct ember_buf mem;
    int rc = 0;

    ember_buf_init(&mem, 0);
    if (w->flushed) {
        mem.data = ember_xmalloc(w->flushed + w->buf.len + len);
        mem.alloc = w->flushed + w->buf.len + len;
        rc = blockd_disk_read(w->fd, w->tmp, 0, mem.data, w->flushed);
        mem.len = w->flushed;
    }
    if (rc == 0)
        rc = ember_buf_append(&mem, w->buf.data, w->buf.len);
    if (rc == 0)
        rc = ember_buf_append(&mem, data, len);
    if (rc != 0) {
        ember_buf_free(&mem);
        return EMBER_EIO;
    }
    ember_buf_free(&w->buf);
    w->buf = mem;
    w->mode = W_MEMORY;
    return 0;
}

/* Without the lock (or for a write no other thread can see): the file of `w`
 * failed, the chunk is not in it. A PINNED write goes back to memory, over the
 * limit if need be; any other is thrown away (the block will be dropped). */
static int file_failed(struct write *w, const char *id, const void *data, size_t len)
{
    int rc = 0;

    w->disk_failed = 1;
    if (w->storage == BLOCKD_PINNED) {
        w->evicted = 0;
        rc = back_to_memory(w, data, len);
        if (rc == 0)
            ember_log_warn("block=%s kept in memory over the limit: it cannot be written to "
                           "disk", id);
    } else {
        ember_buf_free(&w->buf);
        w->mode = W_DISCARD;
    }
    if (w->fd >= 0) {
        close(w->fd);
        blockd_disk_unlink(w->tmp);
        w->fd = -1;
    }
    w->flushed = 0;
    return rc;
}

/* Without the lock: creates the file if needed and appends what buf holds,
 * then the chunk. */
static int file_append(struct write *w, const void *data, size_t len)
{
    int rc = 0;

    if (w->fd < 0)
        rc = blockd_disk_create(w->tmp, &w->fd);
    if (rc == 0 && w->buf.len)
        rc = blockd_disk_write(w->fd, w->tmp, w->buf.data, w->buf.len);
    if (rc == 0)
        rc = blockd_disk_write(w->fd, w->tmp, data, len);
    if (rc == 0) {
        w->flushed += w->buf.len + len;
        ember_buf_free(&w->buf);
    }
    return rc;
}

/* Called with the lock held, which it drops for the I/O. The id is copied
 * because the entry may go away meanwhile (then w is detached). */
static int append_to_file(struct blockd_store *s, struct write *w, const char *id,
                          const void *data, size_t len)
{
    char *name = ember_xstrdup(id);
    int rc;

    w->busy = 1;
    pthread_mutex_unlock(&s->lock);
    rc = file_append(w, data, len);
    if (rc != 0)
        rc = file_failed(w, name, data, len);
    pthread_mutex_lock(&s->lock);
    w->busy = 0;
    if (!w->detached) {
        s->pending_mem = s->pending_mem - w->mem_counted + w->buf.len;
        w->mem_counted = w->buf.len;
    }
    free(name);
    return rc;
}

/* Adds a chunk that is in order to the write of `e`; the lock is held, but
 * dropped during file I/O. */
static int add_chunk(struct blockd_store *s, struct entry *e, const void *data, size_t len)
{
    struct write *w = e->w;
    int rc = 0;

    if (w->mode == W_MEMORY && s->memory_limit && !w->disk_failed
        && w->buf.len + len > s->memory_limit)
        leave_memory(s, w, e->id);
    if (w->mode == W_MEMORY) {
        rc = ember_buf_append(&w->buf, data, len);
        if (rc == 0) {
            s->pending_mem += len;
            w->mem_counted += len;
        }
    } else if (w->mode == W_FILE) {
        rc = append_to_file(s, w, e->id, data, len);
    }
    if (rc == 0 && !w->detached) {
        w->len += len;
        s->stats.write_bytes += len;
    }
    return rc;
}

/* Renames the finished file of `w` to the block's name. On failure the write
 * goes back to memory or is thrown away as file_failed says. */
static int file_to_block(struct blockd_store *s, struct entry *e, struct write *w, int *renamed)
{
    char *path = blockd_disk_block_path(s->dir, e->id);
    int rc = w->fd >= 0 ? blockd_disk_rename(w->tmp, path) : EMBER_EIO;

    free(path);
    if (rc == 0) {
        close(w->fd);
        w->fd = -1;
        *renamed = 1;
        return 0;
    }
    return file_failed(w, e->id, NULL, 0);
}

static void place_in_memory(struct blockd_store *s, struct entry *e, struct write *w)
{
    size_t n;
    uint8_t *data;

    if (w->mapped) {                   /* taken over as it is */
        n = (size_t)w->len;
        e->mem = new_view(n, w->mapped, -1, NULL);
        e->mem->mapped = 1;
        w->mapped = NULL;
    } else {
        /* Give back the slack of the doubling buffer; an empty block gets a
         * real (one-byte) allocation so readers never see a NULL pointer. */
        data = ember_buf_steal(&w->buf, &n);
        e->mem = new_view(n, ember_xrealloc(data, n), -1, NULL);
    }
    e->mem->generation = e->generation;
    lru_push_newest(&s->lru, e);
    s->stats.blocks++;
    s->stats.bytes_in_memory += n;
}

/* Makes the finished write of `e` its complete block, replacing the old one;
 * *spills gets the evictions this calls for. EMBER_EIO leaves both as they were. */
static int complete(struct blockd_store *s, struct entry *e, struct spill **spills)
{
    struct write *w = e->w;
    int renamed = 0, rc;

    if (w->mode == W_FILE) {
        rc = file_to_block(s, e, w, &renamed);
        if (rc != 0)
            return rc;
    }
    e->w = NULL;
    s->stats.writes--;
    s->stats.write_bytes -= w->len;
    s->pending_mem -= w->mem_counted;
    s->stats.puts++;
    drop_block(s, e, renamed);
    e->storage = w->storage;
    e->generation = ++s->generation;
    if (w->mode == W_FILE) {
        e->on_disk = 1;
        e->disk_size = w->len;
        s->stats.blocks++;
        s->stats.bytes_on_disk += w->len;
    } else if (w->mode == W_MEMORY) {
        place_in_memory(s, e, w);
        *spills = relieve_pressure(s, e);
    } else {
        note_dropped(s, e->id);
        ember_log_debug("block=%s dropped: it does not fit in memory", e->id);
    }
    if (w->mode != W_DISCARD)
        unlist_dropped(s, e->id);
    s->stats.evictions += w->evicted;
    free_write(w);
    return 0;
}

/* Finds or makes the entry and write a chunk at `offset` goes to. */
static int start_chunk(struct blockd_store *s, const char *id, uint64_t offset,
                       enum blockd_storage storage, struct entry **out)
{
    struct entry *e = find(s, id);

    if (e && e->w && offset == 0)
        drop_write(s, e); /* a writer starting over, e.g. a retried task */
    if (e && e->w && e->w->busy)
        return EMBER_EINVAL; /* the chunk before is still being written */
    if (offset != (e && e->w ? e->w->len : 0))
        return EMBER_EINVAL;
    if (!e)
        e = insert(s, id);
    if (!e->w)
        e->w = new_write(s, e->id, storage);
    *out = e;
    return 0;
}

static int put_args_valid(const char *id, enum blockd_storage storage)
{
    return blockd_store_valid_id(id) && (int)storage >= BLOCKD_PINNED
           && (int)storage <= BLOCKD_DISK_ONLY;
}

int blockd_store_put_chunk(struct blockd_store *s, const char *id, uint64_t offset,
                           const void *data, size_t len, int last, enum blockd_storage storage)
{
    struct spill *spills = NULL;
    struct entry *e;
    struct write *w;
    int rc;

    if (!put_args_valid(id, storage))
        return EMBER_EINVAL;
    pthread_mutex_lock(&s->lock);
    rc = start_chunk(s, id, offset, storage, &e);
    if (rc != 0)
        goto out;
    w = e->w;
    rc = add_chunk(s, e, data, len);
    if (w->detached) { /* removed or restarted while written: e may be gone */
        free_write(w);
        rc = 0;
        goto out;
    }
    if (rc == 0 && last)
        rc = complete(s, e, &spills);
    if (rc != 0)
        drop_write(s, e);
    remove_if_empty(s, e);
out:
    pthread_mutex_unlock(&s->lock);
    run_spills(s, spills);
    return rc;
}

int blockd_store_put_mapped(struct blockd_store *s, const char *id, uint8_t *data, size_t len,
                            enum blockd_storage storage)
{
    struct spill *spills = NULL;
    struct entry *e;
    struct write *w;
    int rc;

    /* Where chunks of it would not have stayed in memory all along (DISK_ONLY,
     * a block that alone exceeds the limit), they are what the store gets. */
    if (!put_args_valid(id, storage))
        return EMBER_EINVAL;
    if (len == 0 || storage == BLOCKD_DISK_ONLY || (s->memory_limit && len > s->memory_limit))
        return EMBER_ENOENT;
    pthread_mutex_lock(&s->lock);
    rc = start_chunk(s, id, 0, storage, &e);
    if (rc == 0) {
        /* As add_chunk of the whole block, then complete, of a W_MEMORY write. */
        w = e->w;
        w->mapped = data;
        w->len = len;
        s->stats.write_bytes += len;
        s->pending_mem += len;
        w->mem_counted = len;
        rc = complete(s, e, &spills);
    }
    pthread_mutex_unlock(&s->lock);
    run_spills(s, spills);
    return rc;
}

/* ---- reads ------------------------------------------------------------- */

static int open_view(struct blockd_store *s, struct entry *e, struct blockd_block **out)
{
    char *path = blockd_disk_block_path(s->dir, e->id);
    int fd, rc;

    rc = blockd_disk_open(path, &fd);
    if (rc != 0) {
        free(path);
        return rc;
    }
    *out = new_view(e->disk_size, NULL, fd, path);
    (*out)->generation = e->generation;
    return 0;
}

int blockd_store_get(struct blockd_store *s, const char *id, struct blockd_block **out)
{
    struct entry *e;
    int rc = EMBER_ENOENT;

    pthread_mutex_lock(&s->lock);
    e = find(s, id);
    if (e && e->mem) {
        atomic_fetch_add(&e->mem->refs, 1);
        if (!e->spilling) {
            lru_unlink(list_of(s, e), e);
            lru_push_newest(list_of(s, e), e);
        }
        *out = e->mem;
        rc = 0;
    } else if (e && e->on_disk) {
        rc = open_view(s, e, out);
    }
    if (rc == 0)
        s->stats.gets++;
    pthread_mutex_unlock(&s->lock);
    return rc;
}

uint64_t blockd_block_size(const struct blockd_block *b)
{
    return b->size;
}

uint64_t blockd_block_generation(const struct blockd_block *b)
{
    return b->generation;
}

const uint8_t *blockd_block_data(const struct blockd_block *b)
{
    return b->data;
}

int blockd_block_read(const struct blockd_block *b, uint64_t offset, void *buf, size_t n)
{
    if (b->data) {
        memcpy(buf, b->data + offset, n);
        return 0;
    }
    return blockd_disk_read(b->fd, b->path, offset, buf, n);
}

void blockd_block_release(struct blockd_block *b)
{
    if (!b || atomic_fetch_sub(&b->refs, 1) != 1)
        return;
    if (b->fd >= 0)
        close(b->fd);
    free(b->path);
    if (b->mapped)
        munmap(b->data, (size_t)b->size);
    else
        free(b->data);
    free(b);
}

/* ---- the store --------------------------------------------------------- */

int blockd_store_valid_id(const char *id)
{
    return blockd_disk_valid_id(id);
}

int blockd_store_new(uint64_t memory_limit, const char *dir, struct blockd_store **out)
{
    struct blockd_store *s;
    struct timespec now;
    int rc;

    rc = blockd_disk_open_dir(dir);
    if (rc != 0)
        return rc;
    s = ember_xcalloc(1, sizeof(*s));
    pthread_mutex_init(&s->lock, NULL);
    s->nbuckets = INITIAL_BUCKETS;
    s->buckets = ember_xcalloc(s->nbuckets, sizeof(*s->buckets));
    s->memory_limit = memory_limit;
    s->dir = ember_xstrdup(dir);
    /* From the clock, so that a restarted block manager at the same address
     * never gives a block a generation the one before it gave. */
    clock_gettime(CLOCK_REALTIME, &now);
    s->generation = (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
    *out = s;
    return 0;
}

void blockd_store_free(struct blockd_store *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->nbuckets; i++) {
        while (s->buckets[i]) {
            struct entry *e = s->buckets[i];
            drop_block(s, e, 0);
            if (e->w)
                drop_write(s, e);
            remove_entry(s, e);
        }
    }
    blockd_disk_remove_dir(s->dir);
    blockd_store_free_ids(s->dropped, s->ndropped);
    free(s->buckets);
    free(s->dir);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

size_t blockd_store_remove_prefix(struct blockd_store *s, const char *prefix)
{
    size_t plen = strlen(prefix), removed = 0;

    pthread_mutex_lock(&s->lock);
    for (size_t i = 0; i < s->nbuckets; i++) {
        struct entry *e = s->buckets[i];
        while (e) {
            struct entry *next = e->next;
            if (strncmp(e->id, prefix, plen) == 0) {
                removed += e->mem || e->on_disk;
                drop_block(s, e, 0);
                if (e->w)
                    drop_write(s, e);
                remove_entry(s, e);
            }
            e = next;
        }
    }
    pthread_mutex_unlock(&s->lock);
    return removed;
}

size_t blockd_store_dropped(struct blockd_store *s, char ***out)
{
    size_t n;

    pthread_mutex_lock(&s->lock);
    n = s->ndropped;
    *out = NULL;
    if (n) {
        *out = ember_xcalloc(n, sizeof(char *));
        for (size_t i = 0; i < n; i++)
            (*out)[i] = ember_xstrdup(s->dropped[i]);
    }
    pthread_mutex_unlock(&s->lock);
    return n;
}

void blockd_store_forget_dropped(struct blockd_store *s, char *const *ids, size_t n)
{
    pthread_mutex_lock(&s->lock);
    for (size_t i = 0; i < n; i++)
        unlist_dropped(s, ids[i]);
    pthread_mutex_unlock(&s->lock);
}

void blockd_store_free_ids(char **ids, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(ids[i]);
    free(ids);
}

void blockd_store_stats(struct blockd_store *s, struct blockd_store_stats *out)
{
    pthread_mutex_lock(&s->lock);
    *out = s->stats;
    pthread_mutex_unlock(&s->lock);
}
