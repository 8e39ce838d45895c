/* Job descriptions (JSON from the driver) into RDD nodes and stages, and
 * stage partitions into task specs. See docs/ARCHITECTURE.md. */
#define _GNU_SOURCE
#include "master.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#define MAX_PARTITIONS 100000

void master_node_free(struct rdd_node *n)
{
    if (!n)
        return;
    free(n->parents);
    free(n->func.data);
    free(n->partitioner.data);
    for (uint32_t i = 0; n->splits && i < n->num_partitions; i++)
        free(n->splits[i].path);
    free(n->splits);
    for (uint32_t i = 0; n->slices && i < n->num_partitions; i++)
        free(n->slices[i].data);
    free(n->slices);
    free(n->name);
    master_cache_free(n);
    for (uint32_t i = 0; n->frames_files && i < n->num_partitions; i++)
        free(n->frames_files[i]);
    free(n->frames_files);
    for (uint32_t i = 0; n->groups && i < n->num_partitions; i++) {
        free(n->groups[i].parent);
        free(n->groups[i].partition);
    }
    free(n->groups);
    if (n->shuffle) {
        for (uint32_t i = 0; i < n->shuffle->num_maps; i++) {
            free(n->shuffle->outputs[i].block_addr);
            free(n->shuffle->outputs[i].lengths);
        }
        free(n->shuffle->outputs);
        free(n->shuffle);
    }
    free(n);
}

static int set_error(char **error, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int set_error(char **error, const char *fmt, ...)
{
    va_list ap;

    free(*error);
    va_start(ap, fmt);
    if (vasprintf(error, fmt, ap) < 0)
        *error = NULL;
    va_end(ap);
    return EMBER_EINVAL;
}

/* Drivers number nodes in increasing order, so the nodes are usually sorted
 * by id: then a binary search (a long application holds thousands). */
static struct rdd_node *find_node(struct app *a, int64_t id)
{
    if (!a->nodes_unsorted) {
        size_t lo = 0, hi = a->nodes.n;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            struct rdd_node *n = a->nodes.items[mid];
            if (n->id == id)
                return n;
            if (n->id < id)
                lo = mid + 1;
            else
                hi = mid;
        }
        return NULL;
    }
    for (size_t i = 0; i < a->nodes.n; i++) {
        struct rdd_node *n = a->nodes.items[i];
        if (n->id == id)
            return n;
    }
    return NULL;
}

static int decode_blob(json_t *value, const char *what, int64_t id, struct blob *out, char **error)
{
    const char *text = json_string_value(value);

    if (!text)
        return set_error(error, "node %lld: \"%s\" must be a base64 string", (long long)id, what);
    if (ember_base64_decode(text, strlen(text), &out->data, &out->len) != 0)
        return set_error(error, "node %lld: \"%s\" is not valid base64", (long long)id, what);
    return 0;
}

static int parse_splits(struct rdd_node *n, json_t *splits, char **error)
{
    if (!json_is_array(splits) || json_array_size(splits) != n->num_partitions)
        return set_error(error, "node %lld: \"splits\" must be an array of numPartitions entries",
                         (long long)n->id);
    n->splits = ember_xcalloc(n->num_partitions, sizeof(*n->splits));
    for (uint32_t i = 0; i < n->num_partitions; i++) {
        const char *path;
        json_int_t start, length;
        if (json_unpack(json_array_get(splits, i), "{s:s, s:I, s:I}", "path", &path, "start",
                        &start, "length", &length)
                != 0
            || start < 0 || length < 0)
            return set_error(error, "node %lld: split %u needs \"path\", \"start\" >= 0 and "
                             "\"length\" >= 0", (long long)n->id, i);
        n->splits[i].path = ember_xstrdup(path);
        n->splits[i].start = (uint64_t)start;
        n->splits[i].length = (uint64_t)length;
    }
    return 0;
}

static int parse_slices(struct rdd_node *n, json_t *slices, char **error)
{
    if (!json_is_array(slices) || json_array_size(slices) != n->num_partitions)
        return set_error(error, "node %lld: \"slices\" must be an array of numPartitions entries",
                         (long long)n->id);
    n->slices = ember_xcalloc(n->num_partitions, sizeof(*n->slices));
    for (uint32_t i = 0; i < n->num_partitions; i++)
        if (decode_blob(json_array_get(slices, i), "slices", n->id, &n->slices[i], error) != 0)
            return EMBER_EINVAL;
    return 0;
}

/* One file of frames per partition (a checkpoint, or pickle files). */
static int parse_files(struct rdd_node *n, json_t *files, char **error)
{
    if (!json_is_array(files) || json_array_size(files) != n->num_partitions)
        return set_error(error, "node %lld: \"files\" must be an array of numPartitions paths",
                         (long long)n->id);
    n->frames_files = ember_xcalloc(n->num_partitions + 1, sizeof(char *));
    for (uint32_t i = 0; i < n->num_partitions; i++) {
        const char *path = json_string_value(json_array_get(files, i));
        if (!path)
            return set_error(error, "node %lld: file %u is not a string", (long long)n->id, i);
        n->frames_files[i] = ember_xstrdup(path);
    }
    return 0;
}

static int link_parent(struct app *a, struct rdd_node *n, json_int_t parent_id, char **error)
{
    struct rdd_node *p = find_node(a, parent_id);

    if (!p)
        return set_error(error, "node %lld: parent %lld is unknown (send parents first)",
                         (long long)n->id, (long long)parent_id);
    n->parents = ember_xrealloc(n->parents, (n->n_parents + 1) * sizeof(*n->parents));
    n->parents[n->n_parents++] = p;
    return 0;
}

static int parse_parents(struct app *a, struct rdd_node *n, json_t *spec, char **error)
{
    json_t *parent = json_object_get(spec, "parent");
    json_t *parents = json_object_get(spec, "parents");
    size_t i;
    json_t *p;

    if (n->kind != NODE_UNION && n->kind != NODE_CONCAT) {
        if (!json_is_integer(parent))
            return set_error(error, "node %lld: \"parent\" must be an integer", (long long)n->id);
        return link_parent(a, n, json_integer_value(parent), error);
    }
    if (!json_is_array(parents) || json_array_size(parents) == 0)
        return set_error(error, "node %lld: \"parents\" must be a non-empty array",
                         (long long)n->id);
    if (n->kind == NODE_UNION)
        n->num_partitions = 0;
    json_array_foreach(parents, i, p)
    {
        if (!json_is_integer(p) || link_parent(a, n, json_integer_value(p), error) != 0)
            return *error ? EMBER_EINVAL
                          : set_error(error, "node %lld: parents must be integers",
                                      (long long)n->id);
        if (n->kind == NODE_UNION)
            n->num_partitions += n->parents[n->n_parents - 1]->num_partitions;
    }
    return 0;
}

static int parse_kind(const char *kind, enum node_kind *out)
{
    static const char *const names[] = {"text", "data", "map", "shuffle", "union", "frames",
                                        "concat"};

    for (int i = 0; i < 7; i++)
        if (strcmp(kind, names[i]) == 0) {
            *out = (enum node_kind)i;
            return 0;
        }
    return EMBER_EINVAL;
}

static int parse_combine(struct rdd_node *n, json_t *combine, char **error)
{
    /* "sides": concat with a boundary between the children (co-partitioned joins). */
    static const char *const names[] = {"concat", "zip", "cartesian", "sides"};
    const char *name = json_string_value(combine);

    for (int i = 0; name && i < 4; i++)
        if (strcmp(name, names[i]) == 0) {
            n->combine = (enum combine_mode)i;
            return 0;
        }
    return set_error(error, "node %lld: \"combine\" must be concat, zip, cartesian or sides",
                     (long long)n->id);
}

/* "groups": per partition, the [parent index, parent partition] pairs it joins. */
static int parse_groups(struct rdd_node *n, json_t *groups, char **error)
{
    if (!json_is_array(groups) || json_array_size(groups) != n->num_partitions)
        return set_error(error, "node %lld: \"groups\" must list numPartitions groups",
                         (long long)n->id);
    n->groups = ember_xcalloc(n->num_partitions + 1, sizeof(*n->groups));
    for (uint32_t i = 0; i < n->num_partitions; i++) {
        json_t *g = json_array_get(groups, i), *pair;
        struct concat_group *cg = &n->groups[i];
        size_t k;
        if (!json_is_array(g))
            return set_error(error, "node %lld: group %u is not an array", (long long)n->id, i);
        cg->parent = ember_xcalloc(json_array_size(g) + 1, sizeof(uint32_t));
        cg->partition = ember_xcalloc(json_array_size(g) + 1, sizeof(uint32_t));
        json_array_foreach(g, k, pair)
        {
            json_int_t parent = -1, part = -1;
            if (json_unpack(pair, "[I, I]", &parent, &part) != 0 || parent < 0
                || (size_t)parent >= n->n_parents || part < 0
                || part >= n->parents[parent]->num_partitions)
                return set_error(error, "node %lld: group %u names a parent partition that does "
                                 "not exist", (long long)n->id, i);
            cg->parent[cg->n] = (uint32_t)parent;
            cg->partition[cg->n++] = (uint32_t)part;
        }
    }
    return 0;
}

static int parse_kind_fields(struct master *m, struct app *a, struct rdd_node *n, json_t *spec,
                             char **error)
{
    switch (n->kind) {
    case NODE_TEXT:
        return parse_splits(n, json_object_get(spec, "splits"), error);
    case NODE_DATA:
        return parse_slices(n, json_object_get(spec, "slices"), error);
    case NODE_MAP:
        if (parse_parents(a, n, spec, error) != 0)
            return EMBER_EINVAL;
        n->num_partitions = n->parents[0]->num_partitions;
        return decode_blob(json_object_get(spec, "func"), "func", n->id, &n->func, error);
    case NODE_SHUFFLE:
        if (parse_parents(a, n, spec, error) != 0
            || decode_blob(json_object_get(spec, "partitioner"), "partitioner", n->id,
                           &n->partitioner, error)
                   != 0)
            return EMBER_EINVAL;
        n->shuffle = ember_xcalloc(1, sizeof(*n->shuffle));
        n->shuffle->id = m->next_shuffle_id++;
        n->shuffle->node = n;
        n->shuffle->num_reduce = n->num_partitions;
        n->shuffle->num_maps = n->parents[0]->num_partitions;
        n->shuffle->outputs = ember_xcalloc(n->shuffle->num_maps, sizeof(*n->shuffle->outputs));
        return 0;
    case NODE_UNION:
        return parse_parents(a, n, spec, error);
    case NODE_FRAMES:
        return parse_files(n, json_object_get(spec, "files"), error);
    case NODE_CONCAT:
        if (parse_parents(a, n, spec, error) != 0
            || parse_combine(n, json_object_get(spec, "combine"), error) != 0)
            return EMBER_EINVAL;
        return parse_groups(n, json_object_get(spec, "groups"), error);
    }
    return EMBER_EINVAL;
}

/* Parses one node; a node the application already has is skipped. */
static int parse_node(struct master *m, struct app *a, json_t *spec, char **error)
{
    json_int_t id, parts = 0;
    const char *kind, *name = "";
    struct rdd_node *n;
    json_error_t jerr;

    if (json_unpack_ex(spec, &jerr, 0, "{s:I, s:s, s?I, s?s}", "id", &id, "kind", &kind,
                       "numPartitions", &parts, "name", &name)
        != 0)
        return set_error(error, "a node is malformed: %s", jerr.text);
    n = find_node(a, id);
    if (n) {
        enum node_kind sent;
        /* Already known: the driver resends lineage; it must not change it. */
        if (parse_kind(kind, &sent) != 0 || sent != n->kind)
            return set_error(error, "node %lld already exists with another kind than \"%s\"",
                             (long long)id, kind);
        return 0;
    }
    n = ember_xcalloc(1, sizeof(*n));
    n->id = id;
    n->name = ember_xstrdup(name);
    if (parse_kind(kind, &n->kind) != 0) {
        master_node_free(n);
        return set_error(error, "node %lld: unknown kind \"%s\"", (long long)id, kind);
    }
    n->num_partitions = (uint32_t)parts;
    /* An empty input has no partitions; a shuffle needs at least one. */
    if ((n->kind == NODE_TEXT || n->kind == NODE_DATA || n->kind == NODE_SHUFFLE
         || n->kind == NODE_FRAMES || n->kind == NODE_CONCAT)
        && (parts < (n->kind == NODE_SHUFFLE) || parts > MAX_PARTITIONS)) {
        int min_parts = n->kind == NODE_SHUFFLE;
        master_node_free(n);
        return set_error(error, "node %lld: numPartitions must be between %d and %d",
                         (long long)id, min_parts, MAX_PARTITIONS);
    }
    if (parse_kind_fields(m, a, n, spec, error) != 0) {
        master_node_free(n);
        return EMBER_EINVAL;
    }
    if (a->nodes.n && ((struct rdd_node *)a->nodes.items[a->nodes.n - 1])->id > n->id)
        a->nodes_unsorted = 1;
    ptr_array_push(&a->nodes, n);
    ptr_array_push(&m->nodes_by_gid, n);
    n->gid = m->gid_base + (uint32_t)m->nodes_by_gid.n;
    return 0;
}

int master_shuffle_complete(const struct shuffle *sh)
{
    for (uint32_t i = 0; i < sh->num_maps; i++)
        if (!sh->outputs[i].done)
            return 0;
    return 1;
}

static struct stage *new_stage(struct master *m, struct job *job, struct rdd_node *rdd,
                               struct shuffle *out, const uint32_t *partitions, uint32_t n_parts)
{
    struct stage *s = ember_xcalloc(1, sizeof(*s));

    s->id = m->stage_base + (uint32_t)m->stages.n + 1;
    s->job = job;
    s->rdd = rdd;
    s->out_shuffle = out;
    s->n_parts = n_parts;
    s->partitions = ember_xcalloc(n_parts, sizeof(*s->partitions));
    s->parts = ember_xcalloc(n_parts, sizeof(*s->parts));
    for (uint32_t i = 0; i < n_parts; i++)
        s->partitions[i] = partitions ? partitions[i] : i;
    s->status = STAGE_PENDING;
    ptr_array_push(&m->stages, s);
    ptr_array_push(&job->stages, s);
    return s;
}


/* Map stages for the shuffles the stage's partitions read (none below a
 * partition that is cached). */
static void add_parent_stages(struct master *m, struct job *job, struct stage *s)
{
    struct ptr_array shuffles = {0};

    for (uint32_t i = 0; i < s->n_parts; i++)
        master_partition_shuffles(m, s->rdd, s->partitions[i], &shuffles);
    for (size_t i = 0; i < shuffles.n; i++)
        ptr_array_push(&s->parents, master_map_stage_for(m, job, shuffles.items[i]));
    free(shuffles.items);
}

/* One map stage per shuffle per job; skipped when its outputs all exist. */
struct stage *master_map_stage_for(struct master *m, struct job *job, struct rdd_node *shuffle_node)
{
    struct shuffle *sh = shuffle_node->shuffle;
    struct stage *s;

    for (size_t i = 0; i < job->stages.n; i++) {
        s = job->stages.items[i];
        if (s->out_shuffle == sh)
            return s;
    }
    s = new_stage(m, job, shuffle_node->parents[0], sh, NULL, sh->num_maps);
    if (master_shuffle_complete(sh))
        s->status = STAGE_SKIPPED;
    else
        add_parent_stages(m, job, s);
    return s;
}

static int parse_partitions(json_t *list, const struct rdd_node *rdd, uint32_t **out, uint32_t *n,
                            char **error)
{
    size_t i;
    json_t *v;

    if (!list) {
        *n = rdd->num_partitions;
        *out = NULL;
        return 0;
    }
    if (!json_is_array(list))
        return set_error(error, "\"partitions\" must be an array of partition numbers");
    *n = (uint32_t)json_array_size(list);
    *out = ember_xcalloc(*n ? *n : 1, sizeof(**out));
    json_array_foreach(list, i, v)
    {
        json_int_t p = json_integer_value(v);
        if (!json_is_integer(v) || p < 0 || p >= rdd->num_partitions) {
            free(*out);
            return set_error(error, "partition %lld does not exist (the RDD has %u)",
                             (long long)p, rdd->num_partitions);
        }
        (*out)[i] = (uint32_t)p;
    }
    return 0;
}

/* "1g", "512m", "1048576": bytes; NULL or unparsable gives the default. */
static uint64_t parse_size(const char *text, uint64_t def)
{
    char *end = NULL;
    double n;

    if (!text || !*text)
        return def;
    n = strtod(text, &end);
    if (end == text || n < 0)
        return def;
    switch (*end | 0x20) {
    case 'k': n *= 1024.0; break;
    case 'm': n *= 1024.0 * 1024.0; break;
    case 'g': n *= 1024.0 * 1024.0 * 1024.0; break;
    case 't': n *= 1024.0 * 1024.0 * 1024.0 * 1024.0; break;
    default: break;
    }
    return (uint64_t)n;
}

static struct job *new_job(struct master *m, struct app *a, json_t *doc)
{
    struct job *job = ember_xcalloc(1, sizeof(*job));
    const char *desc = json_string_value(json_object_get(doc, "description"));
    const char *site = json_string_value(json_object_get(doc, "callSite"));
    json_t *props = json_object_get(doc, "properties");

    job->id = m->job_base + (uint32_t)m->jobs.n + 1;
    job->app = a;
    job->description = ember_xstrdup(desc ? desc : "");
    job->call_site = ember_xstrdup(site ? site : "");
    job->properties = json_is_object(props) ? json_incref(props) : json_object();
    job->submitted_ms = ember_now_ms();
    job->status = JOB_RUNNING;
    job->failed_stage = job->failed_partition = -1;
    if (json_is_string(json_object_get(doc, "submissionId"))) {
        job->submission_id = ember_xstrdup(json_string_value(json_object_get(doc, "submissionId")));
        if (!a->job_by_submission)
            a->job_by_submission = json_object();
        /* the first job of an id wins, as the scan it replaces found it first */
        if (!json_object_get(a->job_by_submission, job->submission_id))
            json_object_set_new(a->job_by_submission, job->submission_id,
                                json_integer(job->id));
    }
    job->accumulator_updates = json_array();
    job->max_result_bytes = parse_size(
        json_string_value(json_object_get(job->properties, "spark.driver.maxResultSize")),
        (uint64_t)1 << 30);
    const char *inl = json_string_value(json_object_get(job->properties, "spark.ember.inlineResults"));
    job->no_inline_results = inl && strcmp(inl, "false") == 0;
    ptr_array_push(&m->jobs, job);
    ptr_array_push(&a->jobs, job);
    return job;
}

static int parse_nodes(struct master *m, struct app *a, json_t *nodes, char **error)
{
    size_t i;
    json_t *spec;

    if (!json_is_array(nodes))
        return set_error(error, "\"nodes\" must be an array");
    json_array_foreach(nodes, i, spec)
    {
        if (!json_is_object(spec))
            return set_error(error, "node %zu is not an object", i);
        if (parse_node(m, a, spec, error) != 0)
            return EMBER_EINVAL;
    }
    return 0;
}

/* The node a JSON object key ("<rdd id>") names, or NULL. */
static struct rdd_node *node_by_key(struct app *a, const char *key)
{
    char *end = NULL;
    long long id = strtoll(key, &end, 10);

    return *key && !*end ? find_node(a, id) : NULL;
}

/* {"<rdd id>": {"useDisk": .., "useMemory": .., "replication": ..}}: the
 * storage level of every persisted RDD in the job's lineage. */
static int parse_storage(struct app *a, json_t *storage, char **error)
{
    const char *key;
    json_t *level;

    if (!storage)
        return 0;
    if (!json_is_object(storage))
        return set_error(error, "\"storage\" must be an object of rdd id to storage level");
    json_object_foreach(storage, key, level)
    {
        struct rdd_node *n = node_by_key(a, key);
        if (!n)
            return set_error(error, "storage names rdd %.40s, which is unknown", key);
        if (master_set_storage(n, level, error) != 0)
            return EMBER_EINVAL;
    }
    return 0;
}

/* "broadcasts": the ids of the broadcast variables the job's functions use. */
static int parse_broadcasts(struct app *a, json_t *ids, struct ptr_array *out, char **error)
{
    size_t i;
    json_t *v;

    if (!ids)
        return 0;
    if (!json_is_array(ids))
        return set_error(error, "\"broadcasts\" must be an array of broadcast ids");
    json_array_foreach(ids, i, v)
    {
        struct broadcast_info *found = NULL;
        for (size_t k = 0; k < a->broadcasts.n && !found; k++) {
            struct broadcast_info *b = a->broadcasts.items[k];
            if (json_is_integer(v) && b->id == (uint64_t)json_integer_value(v))
                found = b;
        }
        if (!found || found->destroyed)
            return set_error(error, "broadcast %lld %s", (long long)json_integer_value(v),
                             found ? "was destroyed" : "is unknown (upload it first)");
        ptr_array_push(out, found);
    }
    return 0;
}

/* {"<rdd id>": {"files": [...]}}: RDDs written to checkpoint files; their
 * lineage is cut there. */
static int parse_checkpoints(struct app *a, json_t *checkpoints, char **error)
{
    const char *key;
    json_t *spec;

    if (!checkpoints)
        return 0;
    if (!json_is_object(checkpoints))
        return set_error(error, "\"checkpoints\" must be an object of rdd id to files");
    json_object_foreach(checkpoints, key, spec)
    {
        struct rdd_node *n = node_by_key(a, key);
        if (!n)
            return set_error(error, "checkpoints name rdd %.40s, which is unknown", key);
        if (n->frames_files)
            continue;
        if (parse_files(n, json_object_get(spec, "files"), error) != 0) {
            for (uint32_t i = 0; n->frames_files && i < n->num_partitions; i++)
                free(n->frames_files[i]);
            free(n->frames_files);
            n->frames_files = NULL;
            return EMBER_EINVAL;
        }
    }
    return 0;
}

static struct job *submitted_before(struct master *m, struct app *a, const char *submission_id)
{
    json_t *id = submission_id && a->job_by_submission
                     ? json_object_get(a->job_by_submission, submission_id) : NULL;

    return id ? master_job_by_id(m, (uint32_t)json_integer_value(id)) : NULL;
}

int master_submit_job(struct master *m, struct app *a, const char *json_text, uint32_t *job_id,
                      char **error)
{
    json_error_t jerr;
    json_t *doc = master_json_loads(json_text, &jerr);
    struct rdd_node *target;
    uint32_t *parts = NULL, n_parts = 0;
    struct ptr_array broadcasts = {0};
    struct job *job;
    int rc = EMBER_EINVAL;

    *error = NULL;
    if (!doc)
        return set_error(error, "job is not valid JSON: %s (line %d, column %d)", jerr.text,
                         jerr.line, jerr.column);
    if (!json_is_object(doc) || !json_is_integer(json_object_get(doc, "rdd"))) {
        set_error(error, "job must be an object with an integer \"rdd\"");
        goto out;
    }
    job = submitted_before(m, a, json_string_value(json_object_get(doc, "submissionId")));
    if (job) {                         /* the driver retried: same job, not a second one */
        *job_id = job->id;
        rc = 0;
        goto out;
    }
    if (parse_nodes(m, a, json_object_get(doc, "nodes"), error) != 0
        || parse_storage(a, json_object_get(doc, "storage"), error) != 0
        || parse_checkpoints(a, json_object_get(doc, "checkpoints"), error) != 0)
        goto out;
    target = find_node(a, json_integer_value(json_object_get(doc, "rdd")));
    if (!target) {
        set_error(error, "rdd %lld is not among the application's nodes",
                  (long long)json_integer_value(json_object_get(doc, "rdd")));
        goto out;
    }
    if (parse_partitions(json_object_get(doc, "partitions"), target, &parts, &n_parts, error) != 0)
        goto out;
    if (parse_broadcasts(a, json_object_get(doc, "broadcasts"), &broadcasts, error) != 0) {
        free(parts);
        free(broadcasts.items);
        goto out;
    }
    job = new_job(m, a, doc);
    job->broadcasts = broadcasts;
    job->result_stage = new_stage(m, job, target, NULL, parts, n_parts);
    job->results = ember_xcalloc(n_parts ? n_parts : 1, sizeof(*job->results));
    add_parent_stages(m, job, job->result_stage);
    if (n_parts == 0) {
        job->status = JOB_SUCCEEDED;
        job->completed_ms = job->submitted_ms;
        job->result_stage->status = STAGE_COMPLETE;
    }
    *job_id = job->id;
    free(parts);
    rc = 0;
out:
    json_decref(doc);
    return rc;
}
