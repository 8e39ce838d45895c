/* Walking a partition's narrow dependencies down to its input: which
 * shuffles it reads, where its cached input lives, and the task spec that
 * computes it (funcs in order, the input, cache writes on the way). */
#define _GNU_SOURCE
#include "master.h"

#include <stdlib.h>
#include <string.h>

#include "blockd.pb-c.h"

struct walk {
    struct master *m;
    struct ptr_array *shuffles;   /* shuffle nodes read, when collecting them */
    const char *cached_at;        /* block manager of the cached input, if any */
    /* Building a spec (spec != NULL): */
    Ember__TaskSpec *spec;
    Ember__TaskInput *in;
    struct text_split *split;
    const char *frames_path;
    const char *local_blockd;     /* where the task's own outputs go */
    struct ptr_array cache_writes;
    struct ptr_array owned;       /* strings to free once the spec is packed */
};

static void push_unique(struct ptr_array *a, void *item)
{
    for (size_t i = 0; i < a->n; i++)
        if (a->items[i] == item)
            return;
    ptr_array_push(a, item);
}

/* Reduce partition p of a shuffle: its range in every map output block. */
static void add_shuffle_input(const struct shuffle *sh, uint32_t p, Ember__TaskInput *in)
{
    in->kind = EMBER__TASK_INPUT__KIND__SHUFFLE;
    in->shuffle_id = sh->id;
    in->reduce_partition = p;
    in->n_map_locations = in->n_map_offsets = in->n_map_lengths = sh->num_maps;
    in->map_locations = ember_xcalloc(sh->num_maps + 1, sizeof(char *));
    in->map_offsets = ember_xcalloc(sh->num_maps + 1, sizeof(uint64_t));
    in->map_lengths = ember_xcalloc(sh->num_maps + 1, sizeof(uint64_t));
    for (uint32_t m = 0; m < sh->num_maps; m++) {
        const struct map_output *o = &sh->outputs[m];
        in->map_locations[m] = o->block_addr ? o->block_addr : "";
        for (uint32_t r = 0; o->lengths && r < p; r++)
            in->map_offsets[m] += o->lengths[r];
        in->map_lengths[m] = o->lengths ? o->lengths[p] : 0;
    }
}

static void add_cache_write(struct walk *w, const struct rdd_node *n, uint32_t p)
{
    Ember__CacheWrite *cw = ember_xcalloc(1, sizeof(*cw));
    char *replica = n->replication > 1 ? master_replica_for(w->m, w->local_blockd, p) : NULL;

    ember__cache_write__init(cw);
    cw->after_funcs = (uint32_t)w->spec->n_funcs;
    cw->block_id = ember_xasprintf("rdd_%u_%u", n->gid, p);
    cw->storage = n->storage;
    cw->replica_addr = replica ? replica : "";
    ptr_array_push(&w->owned, cw->block_id);
    if (replica)
        ptr_array_push(&w->owned, replica);
    ptr_array_push(&w->cache_writes, cw);
}

static void walk_partition(struct walk *w, struct rdd_node *n, uint32_t p)
{
    const char *cached = n->persisted ? master_cached_location(w->m, n, p) : NULL;

    if (n->frames_files) {       /* a checkpoint: the lineage stops here */
        if (w->spec) {
            w->in->kind = EMBER__TASK_INPUT__KIND__FRAMES;
            w->frames_path = n->frames_files[p];
        }
        return;
    }
    if (cached) {
        w->cached_at = cached;
        if (w->spec) {
            w->in->kind = EMBER__TASK_INPUT__KIND__CACHED;
            w->in->block_id = ember_xasprintf("rdd_%u_%u", n->gid, p);
            w->in->block_addr = (char *)cached;
            ptr_array_push(&w->owned, w->in->block_id);
        }
        return;
    }
    switch (n->kind) {
    case NODE_MAP:
        walk_partition(w, n->parents[0], p);
        if (w->spec) {
            w->spec->funcs[w->spec->n_funcs].data = n->func.data;
            w->spec->funcs[w->spec->n_funcs++].len = n->func.len;
        }
        break;
    case NODE_UNION:
        for (size_t i = 0; i < n->n_parents; i++) {
            if (p < n->parents[i]->num_partitions) {
                walk_partition(w, n->parents[i], p);
                break;
            }
            p -= n->parents[i]->num_partitions;
        }
        break;
    case NODE_TEXT:
        if (w->spec) {
            w->in->kind = EMBER__TASK_INPUT__KIND__TEXT;
            w->split = &n->splits[p];
        }
        break;
    case NODE_FRAMES:             /* handled above: frames_files is set */
        break;
    case NODE_DATA:
        if (w->spec) {
            w->in->kind = EMBER__TASK_INPUT__KIND__DATA;
            w->in->data.data = n->slices[p].data;
            w->in->data.len = n->slices[p].len;
        }
        break;
    case NODE_SHUFFLE:
        if (w->shuffles)
            push_unique(w->shuffles, n);
        if (w->spec)
            add_shuffle_input(n->shuffle, p, w->in);
        break;
    }
    if (n->persisted && w->spec)
        add_cache_write(w, n, p);
}

void master_partition_shuffles(struct master *m, struct rdd_node *n, uint32_t p,
                               struct ptr_array *out)
{
    struct walk w = {.m = m, .shuffles = out};
    walk_partition(&w, n, p);
}

const char *master_partition_cached_at(struct master *m, struct rdd_node *n, uint32_t p)
{
    struct walk w = {.m = m};
    walk_partition(&w, n, p);
    return w.cached_at;
}

static size_t chain_length(const struct rdd_node *n)
{
    size_t longest = 0;

    if (n->kind == NODE_SHUFFLE || n->kind == NODE_TEXT || n->kind == NODE_DATA
        || n->kind == NODE_FRAMES)
        return 0;
    for (size_t i = 0; i < n->n_parents; i++) {
        size_t len = chain_length(n->parents[i]);
        if (len > longest)
            longest = len;
    }
    return longest + (n->kind == NODE_MAP);
}

static void add_properties(Ember__TaskSpec *spec, json_t *props)
{
    const char *key;
    json_t *value;

    spec->properties = ember_xcalloc(json_object_size(props) + 1, sizeof(*spec->properties));
    json_object_foreach(props, key, value)
    {
        Ember__TaskSpec__PropertiesEntry *e = ember_xcalloc(1, sizeof(*e));
        ember__task_spec__properties_entry__init(e);
        e->key = (char *)key;
        e->value = (char *)(json_is_string(value) ? json_string_value(value) : "");
        spec->properties[spec->n_properties++] = e;
    }
}

static void add_output(Ember__TaskSpec *spec, const struct stage *s)
{
    const struct rdd_node *owner;

    if (!s->out_shuffle)
        return;
    owner = s->out_shuffle->node;
    spec->shuffle_id = s->out_shuffle->id;
    spec->num_reduce = owner->num_partitions;
    spec->partitioner.data = owner->partitioner.data;
    spec->partitioner.len = owner->partitioner.len;
}

/* Packs the borrowed spec into an owned copy, so it can leave the lock. */
static Ember__TaskSpec *owned_copy(const Ember__TaskSpec *spec)
{
    size_t len = protobuf_c_message_get_packed_size(&spec->base);
    uint8_t *packed = ember_xmalloc(len);
    Ember__TaskSpec *copy;

    protobuf_c_message_pack(&spec->base, packed);
    copy = ember__task_spec__unpack(NULL, len, packed);
    free(packed);
    return copy;
}

static void add_broadcasts(Ember__TaskSpec *spec, const struct job *job)
{
    spec->broadcasts = ember_xcalloc(job->broadcasts.n + 1, sizeof(*spec->broadcasts));
    for (size_t i = 0; i < job->broadcasts.n; i++) {
        const struct broadcast_info *b = job->broadcasts.items[i];
        Ember__BroadcastRef *ref = ember_xcalloc(1, sizeof(*ref));
        ember__broadcast_ref__init(ref);
        ref->id = b->id;
        ref->block_id = b->block_id;
        ref->location = b->location;
        ref->size = b->size;
        spec->broadcasts[spec->n_broadcasts++] = ref;
    }
}

static void free_walk(struct walk *w, Ember__TaskSpec *spec)
{
    for (size_t i = 0; i < spec->n_broadcasts; i++)
        free(spec->broadcasts[i]);
    free(spec->broadcasts);
    for (size_t i = 0; i < spec->n_properties; i++)
        free(spec->properties[i]);
    free(spec->properties);
    free(spec->funcs);
    for (size_t i = 0; i < w->cache_writes.n; i++)
        free(w->cache_writes.items[i]);
    free(w->cache_writes.items);
    for (size_t i = 0; i < w->owned.n; i++)
        free(w->owned.items[i]);
    free(w->owned.items);
    free(w->in->map_locations);
    free(w->in->map_offsets);
    free(w->in->map_lengths);
}

Ember__TaskSpec *master_task_spec(struct master *m, struct task *t, const char *local_blockd)
{
    struct stage *s = t->stage;
    Ember__TaskSpec spec = EMBER__TASK_SPEC__INIT;
    Ember__TaskInput in = EMBER__TASK_INPUT__INIT;
    Ember__TextSplit split_msg = EMBER__TEXT_SPLIT__INIT;
    struct walk w = {.m = m, .spec = &spec, .in = &in, .local_blockd = local_blockd};
    Ember__TaskSpec *copy;

    spec.app_id = s->job->app->id;
    spec.job_id = s->job->id;
    spec.stage_id = s->id;
    spec.task_id = t->id;
    spec.partition = s->partitions[t->index];
    spec.attempt = t->attempt;
    spec.funcs = ember_xcalloc(chain_length(s->rdd) + 1, sizeof(*spec.funcs));
    walk_partition(&w, s->rdd, spec.partition);
    if (w.split) {
        split_msg.path = w.split->path;
        split_msg.start = w.split->start;
        split_msg.length = w.split->length;
        in.split = &split_msg;
    } else if (w.frames_path) {
        split_msg.path = (char *)w.frames_path;
        in.split = &split_msg;
    }
    spec.input = &in;
    spec.cache_writes = (Ember__CacheWrite **)w.cache_writes.items;
    spec.n_cache_writes = w.cache_writes.n;
    add_output(&spec, s);
    add_properties(&spec, s->job->properties);
    add_broadcasts(&spec, s->job);
    copy = owned_copy(&spec);
    free_walk(&w, &spec);
    return copy;
}
