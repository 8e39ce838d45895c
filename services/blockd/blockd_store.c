/* blockd_store.c - see blockd_store.h. One mutex guards a chained hash table
 * of entries (one per block id) and an LRU list of the complete blocks, so that
 * eviction can take the least recently used block from the tail. */
#include "blockd_store.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define INITIAL_BUCKETS 64

struct blockd_block {
    atomic_uint refs;
    size_t size;
    uint8_t *data;
};

/* One block id: a complete block, a write in progress, or both while a block
 * is being replaced. An entry with neither is removed at once. */
struct entry {
    char *id;
    uint64_t hash;
    struct entry *next;           /* hash chain */
    struct entry *newer, *older;  /* LRU list, only while block != NULL */
    struct blockd_block *block;   /* the visible block, or NULL */
    struct ember_buf pending;     /* the write in progress when writing */
    int writing;
};

struct blockd_store {
    pthread_mutex_t lock;
    struct entry **buckets;
    size_t nbuckets, nentries;
    struct entry *newest, *oldest; /* LRU of complete blocks */
    uint64_t memory_limit;
    struct blockd_store_stats stats;
};

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

static void lru_unlink(struct blockd_store *s, struct entry *e)
{
    if (e->newer)
        e->newer->older = e->older;
    else
        s->newest = e->older;
    if (e->older)
        e->older->newer = e->newer;
    else
        s->oldest = e->newer;
    e->newer = e->older = NULL;
}

static void lru_push_newest(struct blockd_store *s, struct entry *e)
{
    e->older = s->newest;
    e->newer = NULL;
    if (s->newest)
        s->newest->newer = e;
    else
        s->oldest = e;
    s->newest = e;
}

static void drop_block(struct blockd_store *s, struct entry *e)
{
    lru_unlink(s, e);
    s->stats.blocks--;
    s->stats.bytes_in_memory -= e->block->size;
    blockd_block_release(e->block);
    e->block = NULL;
}

static void drop_write(struct blockd_store *s, struct entry *e)
{
    s->stats.writes--;
    s->stats.write_bytes -= e->pending.len;
    ember_buf_free(&e->pending);
    e->writing = 0;
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

/* Turns the finished write of `e` into its visible block. */
static void complete(struct blockd_store *s, struct entry *e)
{
    struct blockd_block *b = ember_xcalloc(1, sizeof(*b));
    size_t n;

    s->stats.writes--;
    s->stats.write_bytes -= e->pending.len;
    e->writing = 0;
    b->data = ember_buf_steal(&e->pending, &n);
    /* Give back the slack of the doubling buffer; an empty block gets a real
     * (one-byte) allocation so readers never see a NULL pointer. */
    b->data = ember_xrealloc(b->data, n);
    b->size = n;
    atomic_init(&b->refs, 1);
    if (e->block)
        drop_block(s, e);
    e->block = b;
    lru_push_newest(s, e);
    s->stats.blocks++;
    s->stats.bytes_in_memory += n;
    s->stats.puts++;
}

struct blockd_store *blockd_store_new(uint64_t memory_limit)
{
    struct blockd_store *s = ember_xcalloc(1, sizeof(*s));

    pthread_mutex_init(&s->lock, NULL);
    s->nbuckets = INITIAL_BUCKETS;
    s->buckets = ember_xcalloc(s->nbuckets, sizeof(*s->buckets));
    s->memory_limit = memory_limit;
    return s;
}

void blockd_store_free(struct blockd_store *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->nbuckets; i++) {
        while (s->buckets[i]) {
            struct entry *e = s->buckets[i];
            if (e->block)
                drop_block(s, e);
            if (e->writing)
                drop_write(s, e);
            remove_entry(s, e);
        }
    }
    free(s->buckets);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

/* Appends to the write of `e`, which is in order; called with the lock held. */
static int append(struct blockd_store *s, struct entry *e, const void *data, size_t len)
{
    int rc;

    if (!e->writing) {
        ember_buf_init(&e->pending, (size_t)s->memory_limit);
        e->writing = 1;
        s->stats.writes++;
    }
    rc = ember_buf_append(&e->pending, data, len);
    if (rc != 0) {
        drop_write(s, e);
        return rc;
    }
    s->stats.write_bytes += len;
    return 0;
}

int blockd_store_put_chunk(struct blockd_store *s, const char *id, uint64_t offset,
                           const void *data, size_t len, int last)
{
    struct entry *e;
    int rc = 0;

    pthread_mutex_lock(&s->lock);
    e = find(s, id);
    if (e && e->writing && offset == 0)
        drop_write(s, e); /* a writer starting over, e.g. a retried task */
    if (offset != (e && e->writing ? e->pending.len : 0)) {
        rc = EMBER_EINVAL;
        goto out;
    }
    if (!e)
        e = insert(s, id);
    rc = append(s, e, data, len);
    if (rc == 0 && last)
        complete(s, e);
    if (!e->block && !e->writing)
        remove_entry(s, e);
out:
    pthread_mutex_unlock(&s->lock);
    return rc;
}

int blockd_store_get(struct blockd_store *s, const char *id, struct blockd_block **out)
{
    struct entry *e;
    int rc = EMBER_ENOENT;

    pthread_mutex_lock(&s->lock);
    e = find(s, id);
    if (e && e->block) {
        atomic_fetch_add(&e->block->refs, 1);
        lru_unlink(s, e);
        lru_push_newest(s, e);
        s->stats.gets++;
        *out = e->block;
        rc = 0;
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}

const uint8_t *blockd_block_data(const struct blockd_block *b)
{
    return b->data;
}

size_t blockd_block_size(const struct blockd_block *b)
{
    return b->size;
}

void blockd_block_release(struct blockd_block *b)
{
    if (!b || atomic_fetch_sub(&b->refs, 1) != 1)
        return;
    free(b->data);
    free(b);
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
                removed += e->block != NULL;
                if (e->block)
                    drop_block(s, e);
                if (e->writing)
                    drop_write(s, e);
                remove_entry(s, e);
            }
            e = next;
        }
    }
    pthread_mutex_unlock(&s->lock);
    return removed;
}

void blockd_store_stats(struct blockd_store *s, struct blockd_store_stats *out)
{
    pthread_mutex_lock(&s->lock);
    *out = s->stats;
    pthread_mutex_unlock(&s->lock);
}
