/* Persisted RDDs: their storage level, where their cached partitions are,
 * and forgetting locations that were dropped, lost or unpersisted. */
#define _GNU_SOURCE
#include "master.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blockd.pb-c.h"
#include "log.h"

/* PySpark's StorageLevel flags to a block storage and a replica count. */
int master_set_storage(struct rdd_node *n, json_t *level, char **error)
{
    int use_disk = 0, use_memory = 0, off_heap = 0;
    json_int_t replication = 1;

    if (json_unpack(level, "{s:b, s:b, s?b, s?I}", "useDisk", &use_disk, "useMemory", &use_memory,
                    "useOffHeap", &off_heap, "replication", &replication)
            != 0
        || replication < 1 || replication > 3) {
        *error = ember_xasprintf("node %lld: storage level needs useDisk, useMemory and a "
                                 "replication of 1 to 3", (long long)n->id);
        return EMBER_EINVAL;
    }
    n->persisted = use_disk || use_memory || off_heap;
    if (use_disk && (use_memory || off_heap))
        n->storage = EMBER__BLOCK_STORAGE__MEMORY_AND_DISK;
    else if (use_disk)
        n->storage = EMBER__BLOCK_STORAGE__DISK_ONLY;
    else
        n->storage = EMBER__BLOCK_STORAGE__MEMORY_ONLY;   /* OFF_HEAP is kept as memory */
    n->replication = (uint32_t)replication;
    if (n->persisted && !n->cache)
        n->cache = ember_xcalloc(n->num_partitions + 1, sizeof(*n->cache));
    return 0;
}

const char *master_cached_location(struct master *m, const struct rdd_node *n, uint32_t p)
{
    if (!n->cache || p >= n->num_partitions)
        return NULL;
    for (size_t i = 0; i < n->cache[p].locations.n; i++)
        if (master_blockd_alive(m, n->cache[p].locations.items[i]))
            return n->cache[p].locations.items[i];
    return NULL;
}

int master_fully_cached(struct master *m, const struct rdd_node *n)
{
    for (uint32_t p = 0; n->persisted && p < n->num_partitions; p++)
        if (!master_cached_location(m, n, p))
            return 0;
    return n->persisted;
}

/* A block manager other than the task's own, spread over partitions. */
char *master_replica_for(struct master *m, const char *local_blockd, uint32_t p)
{
    struct ptr_array others = {0};
    char *pick = NULL;

    for (size_t i = 0; i < m->blockds.n; i++) {
        struct blockd_info *b = m->blockds.items[i];
        if (b->alive && (!local_blockd || strcmp(b->address, local_blockd) != 0))
            ptr_array_push(&others, b->address);
    }
    if (others.n)
        pick = ember_xstrdup(others.items[p % others.n]);
    free(others.items);
    return pick;
}

static void clear_entry(struct cache_entry *e)
{
    for (size_t i = 0; i < e->locations.n; i++)
        free(e->locations.items[i]);
    e->locations.n = 0;
    e->size = 0;
}

void master_cache_free(struct rdd_node *n)
{
    for (uint32_t p = 0; n->cache && p < n->num_partitions; p++) {
        clear_entry(&n->cache[p]);
        free(n->cache[p].locations.items);
    }
    free(n->cache);
    n->cache = NULL;
}

/* "rdd_<gid>_<p>" to its node and partition. */
static struct rdd_node *block_node(struct master *m, const char *block_id, uint32_t *p)
{
    unsigned gid, part;
    char tail;

    if (sscanf(block_id, "rdd_%u_%u%c", &gid, &part, &tail) != 2 || gid <= m->gid_base
        || gid - m->gid_base > m->nodes_by_gid.n)
        return NULL;
    struct rdd_node *n = m->nodes_by_gid.items[gid - m->gid_base - 1];
    if (!n || !n->cache || part >= n->num_partitions)
        return NULL;
    *p = part;
    return n;
}

void master_cache_record(struct master *m, const Ember__CachedBlock *cb)
{
    uint32_t p;
    struct rdd_node *n = block_node(m, cb->block_id, &p);

    if (!n || !n->persisted)
        return;
    clear_entry(&n->cache[p]);
    for (size_t i = 0; i < cb->n_locations; i++)
        ptr_array_push(&n->cache[p].locations, ember_xstrdup(cb->locations[i]));
    n->cache[p].size = cb->size;
}

void master_cache_forget(struct master *m, const char *block_id, const char *address)
{
    uint32_t p;
    struct rdd_node *n = block_node(m, block_id, &p);
    struct ptr_array *locs;

    if (!n)
        return;
    locs = &n->cache[p].locations;
    for (size_t i = 0; i < locs->n;) {
        if (!address || strcmp(locs->items[i], address) == 0) {
            free(locs->items[i]);
            locs->items[i] = locs->items[--locs->n];
        } else {
            i++;
        }
    }
    ember_log_info("block=%s forgotten at %s", block_id, address ? address : "every block manager");
}

void master_cache_forget_address(struct master *m, const char *address)
{
    for (size_t g = 0; g < m->nodes_by_gid.n; g++) {
        struct rdd_node *n = m->nodes_by_gid.items[g];
        for (uint32_t p = 0; n && n->cache && p < n->num_partitions; p++) {
            struct ptr_array *locs = &n->cache[p].locations;
            for (size_t i = 0; i < locs->n;) {
                if (strcmp(locs->items[i], address) == 0) {
                    free(locs->items[i]);
                    locs->items[i] = locs->items[--locs->n];
                } else {
                    i++;
                }
            }
        }
    }
}

static const char *storage_name(const struct rdd_node *n)
{
    static const char *const names[][2] = {
        {"Memory Deserialized 1x Replicated", "Memory Deserialized 2x Replicated"},
        {"Memory Deserialized 1x Replicated", "Memory Deserialized 2x Replicated"},
        {"Disk Memory Deserialized 1x Replicated", "Disk Memory Deserialized 2x Replicated"},
        {"Disk Serialized 1x Replicated", "Disk Serialized 2x Replicated"},
    };
    return names[n->storage & 3][n->replication > 1];
}

static json_t *json_partitions(const struct rdd_node *n)
{
    json_t *parts = json_array();

    for (uint32_t p = 0; p < n->num_partitions; p++) {
        json_t *where = json_array();
        for (size_t i = 0; i < n->cache[p].locations.n; i++)
            json_array_append_new(where, json_string(n->cache[p].locations.items[i]));
        char *name = ember_xasprintf("rdd_%u_%u", n->gid, p);
        json_array_append_new(parts, json_pack("{s:s, s:i, s:I, s:o}", "blockName", name,
                                               "index", (int)p, "size",
                                               (json_int_t)n->cache[p].size, "blockManagers",
                                               where));
        free(name);
    }
    return parts;
}

/* Spark's /storage/rdd shape for the persisted RDDs of an application. */
json_t *master_json_storage(struct master *m, const struct app *a)
{
    json_t *list = json_array();

    for (size_t i = 0; i < a->nodes.n; i++) {
        const struct rdd_node *n = a->nodes.items[i];
        uint64_t bytes = 0;
        int cached = 0;
        if (!n->persisted)
            continue;
        for (uint32_t p = 0; p < n->num_partitions; p++) {
            if (master_cached_location(m, n, p)) {
                cached++;
                bytes += n->cache[p].size * n->cache[p].locations.n;
            }
        }
        int on_disk = n->storage == EMBER__BLOCK_STORAGE__DISK_ONLY;
        json_array_append_new(
            list, json_pack("{s:I, s:s, s:s, s:s, s:i, s:i, s:I, s:I, s:o}", "id", (json_int_t)n->id,
                            "appId", a->id, "name", n->name, "storageLevel", storage_name(n),
                            "numPartitions", (int)n->num_partitions, "numCachedPartitions",
                            cached, "memoryUsed", (json_int_t)(on_disk ? 0 : bytes), "diskUsed",
                            (json_int_t)(on_disk ? bytes : 0), "partitions",
                            json_partitions(n)));
    }
    return list;
}
