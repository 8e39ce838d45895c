/* The plan (JSON text) of task specs from master_task_spec for lineages with
 * every node kind: maps, a union, a concat group, a zip, a cached and
 * replicated node, a shuffle read, a checkpoint. The wanted texts are what
 * the plan writer of jansson trees gave before the plans were written
 * straight as text. */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "master.h"
#include "test.h"

static struct ptr_array made;          /* freed at the end */

static void *keep(void *p)
{
    ptr_array_push(&made, p);
    return p;
}

static struct rdd_node *node(int64_t id, enum node_kind kind, uint32_t parts, size_t n_parents,
                             struct rdd_node **parents)
{
    struct rdd_node *n = keep(ember_xcalloc(1, sizeof(*n)));

    n->id = id;
    n->kind = kind;
    n->num_partitions = parts;
    n->name = "n";
    n->parents = keep(ember_xcalloc(n_parents + 1, sizeof(*n->parents)));
    for (size_t i = 0; i < n_parents; i++)
        n->parents[i] = parents[i];
    n->n_parents = n_parents;
    n->func.data = (uint8_t *)"f";
    n->func.len = 1;
    if (kind == NODE_DATA) {
        n->slices = keep(ember_xcalloc(parts, sizeof(*n->slices)));
        for (uint32_t p = 0; p < parts; p++)
            n->slices[p] = (struct blob){(uint8_t *)"d", 1};
    }
    if (kind == NODE_TEXT) {
        n->splits = keep(ember_xcalloc(parts, sizeof(*n->splits)));
        for (uint32_t p = 0; p < parts; p++)
            n->splits[p] = (struct text_split){"in.txt", p * 10, 10};
    }
    return n;
}

/* One concat group per partition: partition p reads parent (p + i) % n_parents,
 * partition 2p + i, for i < 2. */
static void groups(struct rdd_node *n)
{
    n->groups = keep(ember_xcalloc(n->num_partitions, sizeof(*n->groups)));
    for (uint32_t p = 0; p < n->num_partitions; p++) {
        struct concat_group *g = &n->groups[p];
        g->n = 2;
        g->parent = keep(ember_xcalloc(2, sizeof(uint32_t)));
        g->partition = keep(ember_xcalloc(2, sizeof(uint32_t)));
        for (uint32_t i = 0; i < 2; i++) {
            g->parent[i] = (p + i) % (uint32_t)n->n_parents;
            g->partition[i] = 2 * p + i;
        }
    }
}

static char *plan_of(struct master *m, struct rdd_node *target, uint32_t partition)
{
    struct app a = {.id = "app-1"};
    struct job j = {.id = 1, .app = &a, .properties = json_object()};
    struct shuffle out = {.id = 9, .node = target};
    uint32_t partitions[] = {partition};
    struct stage s = {.id = 1, .job = &j, .rdd = target, .out_shuffle = &out, .n_parts = 1,
                      .partitions = partitions};
    struct task t = {.id = 77, .stage = &s};
    Ember__TaskSpec *spec;
    size_t len;
    uint8_t *packed = master_task_spec(m, &t, "127.0.0.1:7079", &len);
    char *plan;

    spec = ember__task_spec__unpack(NULL, len, packed);
    plan = ember_xstrdup(spec ? spec->plan : "(no spec)");
    ember__task_spec__free_unpacked(spec, NULL);
    free(packed);
    json_decref(j.properties);
    return plan;
}

int main(void)
{
    struct master m = {0};
    struct blockd_info b1 = {.address = "127.0.0.1:7079", .alive = 1};
    struct blockd_info b2 = {.address = "127.0.0.1:7089", .alive = 1};
    struct rdd_node *data = node(1, NODE_DATA, 4, 0, NULL);
    struct rdd_node *text = node(2, NODE_TEXT, 8, 0, NULL);
    struct rdd_node *map1 = node(3, NODE_MAP, 4, 1, &data);
    struct rdd_node *u = node(4, NODE_UNION, 12, 2, (struct rdd_node *[]){map1, text});
    struct rdd_node *map2 = node(5, NODE_MAP, 12, 1, &u);
    struct rdd_node *cat = node(6, NODE_CONCAT, 3, 2, (struct rdd_node *[]){map2, text});
    struct rdd_node *zip = node(7, NODE_CONCAT, 3, 2, (struct rdd_node *[]){map1, data});
    struct rdd_node *map3 = node(8, NODE_MAP, 3, 1, &cat);
    struct rdd_node *shuf = node(9, NODE_SHUFFLE, 2, 1, &map3);
    struct rdd_node *after = node(10, NODE_MAP, 2, 1, &shuf);
    struct rdd_node *ckpt = node(11, NODE_MAP, 4, 1, &map1);
    struct rdd_node *above = node(12, NODE_MAP, 4, 1, &ckpt);
    /* A join of a persisted RDD (map2) with a map of it, partition by partition:
     * the second side replays the first side's cache write. */
    struct rdd_node *derived = node(13, NODE_MAP, 12, 1, &map2);
    struct rdd_node *join = node(14, NODE_CONCAT, 12, 2, (struct rdd_node *[]){map2, derived});
    struct shuffle sh = {.id = 3, .node = shuf, .num_maps = 2, .num_reduce = 2};
    struct map_output outs[2] = {{1, "127.0.0.1:7079", (uint64_t[]){5, 6}},
                                 {1, "127.0.0.1:7089", (uint64_t[]){7, 8}}};
    static const struct {
        int which;
        uint32_t partition;
        const char *want;
    } cases[] = {
        {0, 0, "{\"input\":\"pickle\",\"funcs\":[0],\"cacheAt\":[]}"},
        {1, 5, "{\"combine\":\"concat\",\"children\":[{\"input\":\"text\",\"funcs\":[],"
               "\"cacheAt\":[],\"split\":1}],\"funcs\":[0],\"cacheAt\":[[1,0]]}"},
        {1, 2, "{\"input\":\"pickle\",\"funcs\":[0,1],\"cacheAt\":[[2,0]]}"},
        {1, 6, "{\"input\":\"pickle\",\"funcs\":[],\"cacheAt\":[]}"},
        {2, 1, "{\"combine\":\"concat\",\"children\":[{\"input\":\"text\",\"funcs\":[],\"cache"
               "At\":[],\"split\":2},{\"input\":\"pickle\",\"funcs\":[0,1],\"cacheAt\":[[2,0]]"
               ",\"split\":3}],\"funcs\":[],\"cacheAt\":[]}"},
        {2, 2, "{\"combine\":\"concat\",\"children\":[{\"combine\":\"concat\",\"children\":[{"
               "\"input\":\"text\",\"funcs\":[],\"cacheAt\":[],\"split\":0}],\"funcs\":[0],\"c"
               "acheAt\":[[1,0]],\"split\":4},{\"input\":\"text\",\"funcs\":[],\"cacheAt\":[],"
               "\"split\":5}],\"funcs\":[],\"cacheAt\":[]}"},
        {3, 1, "{\"combine\":\"zip\",\"children\":[{\"input\":\"pickle\",\"funcs\":[],\"cacheA"
               "t\":[],\"split\":2},{\"input\":\"pickle\",\"funcs\":[0],\"cacheAt\":[],\"split"
               "\":3}],\"funcs\":[],\"cacheAt\":[]}"},
        {4, 1, "{\"input\":\"pickle\",\"funcs\":[0],\"cacheAt\":[]}"},
        {5, 3, "{\"input\":\"pickle\",\"funcs\":[0],\"cacheAt\":[]}"},
        {6, 2, "{\"combine\":\"sides\",\"children\":[{\"input\":\"pickle\",\"funcs\":[0,1],"
               "\"cacheAt\":[[2,0]],\"split\":2},{\"input\":\"repeat\",\"of\":0,\"funcs\":[2],"
               "\"cacheAt\":[],\"split\":2}],\"funcs\":[],\"cacheAt\":[]}"},
        {6, 6, "{\"combine\":\"sides\",\"children\":[{\"input\":\"pickle\",\"funcs\":[],"
               "\"cacheAt\":[],\"split\":6},{\"input\":\"pickle\",\"funcs\":[0],\"cacheAt\":[],"
               "\"split\":6}],\"funcs\":[],\"cacheAt\":[]}"},
    };
    struct rdd_node *targets[] = {map1, map2, cat, zip, after, above, join};

    ptr_array_push(&m.blockds, &b1);
    ptr_array_push(&m.blockds, &b2);
    map2->persisted = 1;
    map2->replication = 2;
    map2->gid = 40;
    map2->cache = keep(ember_xcalloc(12, sizeof(*map2->cache)));
    ptr_array_push(&map2->cache[6].locations, "127.0.0.1:7089");
    keep(map2->cache[6].locations.items);
    groups(cat);
    groups(zip);
    join->combine = COMBINE_SIDES;
    join->groups = keep(ember_xcalloc(12, sizeof(*join->groups)));
    for (uint32_t p = 0; p < 12; p++) {
        join->groups[p].n = 2;
        join->groups[p].parent = keep(ember_xcalloc(2, sizeof(uint32_t)));
        join->groups[p].partition = keep(ember_xcalloc(2, sizeof(uint32_t)));
        join->groups[p].parent[1] = 1;
        join->groups[p].partition[0] = join->groups[p].partition[1] = p;
    }
    zip->combine = COMBINE_ZIP;
    shuf->shuffle = &sh;
    sh.outputs = outs;
    ckpt->frames_files = keep(ember_xcalloc(4, sizeof(char *)));
    for (int i = 0; i < 4; i++)
        ckpt->frames_files[i] = "ck/part";
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *got = plan_of(&m, targets[cases[i].which], cases[i].partition);
        CHECK(strcmp(got, cases[i].want) == 0, "case %zu: got %s\nwant %s", i, got,
              cases[i].want);
        free(got);
    }
    for (size_t i = 0; i < made.n; i++)
        free(made.items[i]);
    free(made.items);
    free(m.blockds.items);
    return TEST_EXIT();
}
