/* Walking a partition's narrow dependencies down to its inputs: which
 * shuffles it reads, where its cached input lives, and the task spec that
 * computes it. A spec carries a plan (JSON): a tree whose leaves each read one
 * of the spec's inputs, in order, and apply funcs; inner nodes combine their
 * children (concat, zip, cartesian) and apply funcs to the result. Cache
 * writes tee a node's records after some of its funcs; a persisted partition
 * the plan reaches again is a "repeat" leaf of that cache write's records
 * (computed once per task, as Spark's getOrElseUpdate). */
#define _GNU_SOURCE
#include "master.h"

#include <stdlib.h>
#include <string.h>

#include "blockd.pb-c.h"

struct walk {
    struct master *m;
    struct ptr_array *shuffles;   /* shuffle nodes read, when collecting them */
    const char *cached_at;        /* block manager of the first cached input, if any */
    /* Building a spec (spec != NULL): */
    Ember__TaskSpec *spec;
    struct ptr_array inputs;      /* Ember__TaskInput *, leaves in order */
    const char *local_blockd;     /* where the task's own outputs go */
    struct ptr_array cache_writes;
    struct ptr_array owned;       /* memory to free once the spec is packed */
};

static const char *const combine_names[] = {"concat", "zip", "cartesian", "sides"};

struct int_list {
    int *v;
    size_t n, cap;
};

/* A node of the plan while it is built (funcs and cache writes are added on
 * the way up), then written as JSON text: a leaf reads one input ("text" or
 * "pickle"), an inner node combines its children. */
struct plan {
    const char *input, *combine;
    struct ptr_array children;   /* struct plan * */
    struct int_list funcs;       /* indexes into the spec's funcs */
    struct int_list cache_at;    /* pairs: funcs applied, index of the cache write */
    int64_t split;               /* the partition its funcs see; -1: the task's own */
    int repeat_of;               /* a "repeat" leaf: the records of this cache write */
};

static void int_push(struct int_list *l, int v)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 4;
        l->v = ember_xrealloc(l->v, l->cap * sizeof(*l->v));
    }
    l->v[l->n++] = v;
}

static struct plan *plan_new(const char *input, const char *combine)
{
    struct plan *p = ember_xcalloc(1, sizeof(*p));

    p->input = input;
    p->combine = combine;
    p->split = -1;
    return p;
}

static void plan_free(struct plan *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->children.n; i++)
        plan_free(p->children.items[i]);
    free(p->children.items);
    free(p->funcs.v);
    free(p->cache_at.v);
    free(p);
}

static void write_ints(struct master_text *t, const struct int_list *l, int pairs)
{
    MASTER_TEXT_LIT(t, "[");
    for (size_t i = 0; i < l->n; i++) {
        if (i)
            MASTER_TEXT_LIT(t, ",");
        if (pairs && i % 2 == 0)
            MASTER_TEXT_LIT(t, "[");
        master_text_int(t, l->v[i]);
        if (pairs && i % 2 == 1)
            MASTER_TEXT_LIT(t, "]");
    }
    MASTER_TEXT_LIT(t, "]");
}

/* The compact JSON the plan's jansson tree used to give, keys in its order:
 * {"input"|"combine","children"?,"funcs","cacheAt","split"?}. The names are
 * identifiers: nothing to escape. */
static void plan_write(struct master_text *t, const struct plan *p)
{
    if (p->input) {
        MASTER_TEXT_LIT(t, "{\"input\":\"");
        master_text_raw(t, p->input, strlen(p->input));
        MASTER_TEXT_LIT(t, "\"");
        if (strcmp(p->input, "repeat") == 0) {
            MASTER_TEXT_LIT(t, ",\"of\":");
            master_text_int(t, p->repeat_of);
        }
    } else {
        MASTER_TEXT_LIT(t, "{\"combine\":\"");
        master_text_raw(t, p->combine, strlen(p->combine));
        MASTER_TEXT_LIT(t, "\",\"children\":[");
        for (size_t i = 0; i < p->children.n; i++) {
            if (i)
                MASTER_TEXT_LIT(t, ",");
            plan_write(t, p->children.items[i]);
        }
        MASTER_TEXT_LIT(t, "]");
    }
    MASTER_TEXT_LIT(t, ",\"funcs\":");
    write_ints(t, &p->funcs, 0);
    MASTER_TEXT_LIT(t, ",\"cacheAt\":");
    write_ints(t, &p->cache_at, 1);
    if (p->split >= 0) {
        MASTER_TEXT_LIT(t, ",\"split\":");
        master_text_int(t, p->split);
    }
    MASTER_TEXT_LIT(t, "}");
}

static void push_unique(struct ptr_array *a, void *item)
{
    for (size_t i = 0; i < a->n; i++)
        if (a->items[i] == item)
            return;
    ptr_array_push(a, item);
}

/* Reduce partition p of a shuffle: its range in every map output block. */
static void add_shuffle_input(struct walk *w, const struct shuffle *sh, uint32_t p,
                              Ember__TaskInput *in)
{
    in->kind = EMBER__TASK_INPUT__KIND__SHUFFLE;
    in->shuffle_id = sh->id;
    in->reduce_partition = p;
    in->n_map_locations = in->n_map_offsets = in->n_map_lengths = sh->num_maps;
    in->map_locations = ember_xcalloc(sh->num_maps + 1, sizeof(char *));
    in->map_offsets = ember_xcalloc(sh->num_maps + 1, sizeof(uint64_t));
    in->map_lengths = ember_xcalloc(sh->num_maps + 1, sizeof(uint64_t));
    ptr_array_push(&w->owned, in->map_locations);
    ptr_array_push(&w->owned, in->map_offsets);
    ptr_array_push(&w->owned, in->map_lengths);
    for (uint32_t m = 0; m < sh->num_maps; m++) {
        const struct map_output *o = &sh->outputs[m];
        in->map_locations[m] = o->block_addr ? o->block_addr : "";
        for (uint32_t r = 0; o->lengths && r < p; r++)
            in->map_offsets[m] += o->lengths[r];
        in->map_lengths[m] = o->lengths ? o->lengths[p] : 0;
    }
}

static Ember__TaskInput *new_input(struct walk *w)
{
    Ember__TaskInput *in = ember_xcalloc(1, sizeof(*in));

    ember__task_input__init(in);
    ptr_array_push(&w->inputs, in);
    return in;
}

static void set_split(struct walk *w, Ember__TaskInput *in, const char *path, uint64_t start,
                      uint64_t length)
{
    Ember__TextSplit *split = ember_xcalloc(1, sizeof(*split));

    ember__text_split__init(split);
    split->path = (char *)path;
    split->start = start;
    split->length = length;
    in->split = split;
    ptr_array_push(&w->owned, split);
}

/* A leaf of the plan reading one input. */
static struct plan *leaf(struct walk *w, Ember__TaskInput *in)
{
    return plan_new(in->kind == EMBER__TASK_INPUT__KIND__TEXT ? "text" : "pickle", NULL);
}

/* The plan of a source partition (text, data, shuffle, checkpoint, cached). */
static struct plan *source_plan(struct walk *w, struct rdd_node *n, uint32_t p, const char *cached)
{
    Ember__TaskInput *in;

    if (cached)
        w->cached_at = w->cached_at ? w->cached_at : cached;
    if (n->kind == NODE_SHUFFLE && w->shuffles && !cached && !n->frames_files)
        push_unique(w->shuffles, n);
    if (!w->spec)
        return NULL;
    in = new_input(w);
    if (n->frames_files) {
        in->kind = EMBER__TASK_INPUT__KIND__FRAMES;
        set_split(w, in, n->frames_files[p], 0, 0);
    } else if (cached) {
        in->kind = EMBER__TASK_INPUT__KIND__CACHED;
        in->block_id = ember_xasprintf("rdd_%u_%u", n->gid, p);
        in->block_addr = (char *)cached;
        ptr_array_push(&w->owned, in->block_id);
    } else if (n->kind == NODE_TEXT) {
        in->kind = EMBER__TASK_INPUT__KIND__TEXT;
        set_split(w, in, n->splits[p].path, n->splits[p].start, n->splits[p].length);
    } else if (n->kind == NODE_DATA) {
        in->kind = EMBER__TASK_INPUT__KIND__DATA;
        in->data.data = n->slices[p].data;
        in->data.len = n->slices[p].len;
    } else {
        add_shuffle_input(w, n->shuffle, p, in);
    }
    return leaf(w, in);
}

static void add_cache_write(struct walk *w, const struct rdd_node *n, uint32_t p,
                            struct plan *plan)
{
    Ember__CacheWrite *cw = ember_xcalloc(1, sizeof(*cw));
    char *replica = n->replication > 1 ? master_replica_for(w->m, w->local_blockd, p) : NULL;

    ember__cache_write__init(cw);
    cw->block_id = ember_xasprintf("rdd_%u_%u", n->gid, p);
    cw->storage = n->storage;
    cw->replica_addr = replica ? replica : "";
    ptr_array_push(&w->owned, cw->block_id);
    if (replica)
        ptr_array_push(&w->owned, replica);
    int_push(&plan->cache_at, (int)plan->funcs.n);
    int_push(&plan->cache_at, (int)w->cache_writes.n);
    ptr_array_push(&w->cache_writes, cw);
}

static struct plan *walk_plan(struct walk *w, struct rdd_node *n, uint32_t p);

/* When this task's plan computes persisted partition p of n already (a join of
 * a cached RDD with an RDD derived from it, as PageRank's first iteration):
 * a leaf replaying the records that cache write tees, which reads no input.
 * NULL when it is the first time. */
static struct plan *repeat_plan(struct walk *w, const struct rdd_node *n, uint32_t p)
{
    char block_id[64];
    struct plan *plan;

    snprintf(block_id, sizeof(block_id), "rdd_%u_%u", n->gid, p);
    for (size_t i = 0; i < w->cache_writes.n; i++) {
        const Ember__CacheWrite *cw = w->cache_writes.items[i];
        if (strcmp(cw->block_id, block_id) == 0) {
            plan = plan_new("repeat", NULL);
            plan->repeat_of = (int)i;
            return plan;
        }
    }
    return NULL;
}

static struct plan *combine_plan(struct walk *w, struct rdd_node *n, uint32_t p)
{
    const struct concat_group *g = &n->groups[p];
    struct plan *plan = w->spec ? plan_new(NULL, combine_names[n->combine]) : NULL;

    for (size_t i = 0; i < g->n; i++) {
        struct plan *child = walk_plan(w, n->parents[g->parent[i]], g->partition[i]);
        if (plan && child) {
            /* funcs below see their own partition's index, as in PySpark */
            child->split = g->partition[i];
            ptr_array_push(&plan->children, child);
        }
    }
    return plan;
}

/* Partition q of a union's parent is partition p of the union: below, funcs
 * see q; above (the funcs of the returned node), p. */
static struct plan *union_plan(struct walk *w, struct plan *child, uint32_t q, uint32_t p)
{
    struct plan *plan;

    if (!child || q == p)
        return child;
    child->split = q;
    plan = plan_new(NULL, "concat");
    ptr_array_push(&plan->children, child);
    return plan;
}

static struct plan *walk_plan(struct walk *w, struct rdd_node *n, uint32_t p)
{
    const char *cached = n->persisted ? master_cached_location(w->m, n, p) : NULL;
    struct plan *plan = NULL;

    if (cached || n->frames_files)
        return source_plan(w, n, p, cached);
    if (n->persisted && w->spec) {
        plan = repeat_plan(w, n, p);
        if (plan)
            return plan;
    }
    switch (n->kind) {
    case NODE_MAP:
        plan = walk_plan(w, n->parents[0], p);
        if (plan) {
            int_push(&plan->funcs, (int)w->spec->n_funcs);
            /* Grown as needed: a concat group may read one mapped parent several times. */
            w->spec->funcs = ember_xrealloc(w->spec->funcs,
                                            (w->spec->n_funcs + 1) * sizeof(*w->spec->funcs));
            w->spec->funcs[w->spec->n_funcs].data = n->func.data;
            w->spec->funcs[w->spec->n_funcs++].len = n->func.len;
        }
        break;
    case NODE_UNION: {
        uint32_t q = p;
        for (size_t i = 0; i < n->n_parents && !plan; i++) {
            if (q < n->parents[i]->num_partitions) {
                plan = union_plan(w, walk_plan(w, n->parents[i], q), q, p);
                break;
            }
            q -= n->parents[i]->num_partitions;
        }
        break;
    }
    case NODE_CONCAT:
        plan = combine_plan(w, n, p);
        break;
    case NODE_TEXT:
    case NODE_DATA:
    case NODE_SHUFFLE:
    case NODE_FRAMES:
        plan = source_plan(w, n, p, NULL);
        break;
    }
    if (n->persisted && plan)
        add_cache_write(w, n, p, plan);
    return plan;
}

void master_partition_shuffles(struct master *m, struct rdd_node *n, uint32_t p,
                               struct ptr_array *out)
{
    struct walk w = {.m = m, .shuffles = out};
    walk_plan(&w, n, p);
}

const char *master_partition_cached_at(struct master *m, struct rdd_node *n, uint32_t p)
{
    struct walk w = {.m = m};
    walk_plan(&w, n, p);
    return w.cached_at;
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

/* Packs the borrowed spec, so it can leave the lock: the bytes are what
 * LaunchTask sends (unpacking them into a copy only to pack it again for the
 * call cost the master a spec's worth of allocations and copies per task). */
static uint8_t *packed_copy(const Ember__TaskSpec *spec, size_t *len)
{
    uint8_t *packed;

    *len = protobuf_c_message_get_packed_size(&spec->base);
    packed = ember_xmalloc(*len ? *len : 1);
    protobuf_c_message_pack(&spec->base, packed);
    return packed;
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
    free(spec->plan);
    for (size_t i = 0; i < w->inputs.n; i++)
        free(w->inputs.items[i]);
    free(w->inputs.items);
    for (size_t i = 0; i < w->cache_writes.n; i++)
        free(w->cache_writes.items[i]);
    free(w->cache_writes.items);
    for (size_t i = 0; i < w->owned.n; i++)
        free(w->owned.items[i]);
    free(w->owned.items);
}

uint8_t *master_task_spec(struct master *m, struct task *t, const char *local_blockd,
                          size_t *len)
{
    struct stage *s = t->stage;
    Ember__TaskSpec spec = EMBER__TASK_SPEC__INIT;
    struct walk w = {.m = m, .spec = &spec, .local_blockd = local_blockd};
    struct master_text plan_text = {0};
    struct plan *plan;
    uint8_t *copy;

    spec.app_id = s->job->app->id;
    spec.job_id = s->job->id;
    spec.stage_id = s->id;
    spec.task_id = t->id;
    spec.partition = s->partitions[t->index];
    spec.attempt = t->attempt;
    plan = walk_plan(&w, s->rdd, spec.partition);
    if (plan)
        plan_write(&plan_text, plan);
    plan_free(plan);
    spec.plan = plan_text.buf;         /* freed by free_walk */
    spec.inputs = (Ember__TaskInput **)w.inputs.items;
    spec.n_inputs = w.inputs.n;
    spec.cache_writes = (Ember__CacheWrite **)w.cache_writes.items;
    spec.n_cache_writes = w.cache_writes.n;
    add_output(&spec, s);
    if (!s->out_shuffle)
        spec.inline_result_limit = master_inline_limit(m, s->job);
    add_properties(&spec, s->job->properties);
    add_broadcasts(&spec, s->job);
    copy = packed_copy(&spec, len);
    free_walk(&w, &spec);
    return copy;
}
