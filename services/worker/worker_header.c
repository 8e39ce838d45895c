/* A task's JSON header for its pyexec (docs/ARCHITECTURE.md, "Worker <->
 * pyexec protocol"), written straight into a buffer: building it as Jansson
 * objects and dumping them cost about a tenth of the worker's time per short
 * task. Strings are checked as Jansson's json_string checks them (UTF-8), and
 * what Jansson left out is left out: a property or cache block that is not
 * UTF-8. The plan is checked as JSON and written as the master sent it. */
#define _GNU_SOURCE
#include "worker.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int put(struct ember_buf *b, const char *s)
{
    return ember_buf_append(b, s, strlen(s));
}

/* A JSON string; the caller checked that s is UTF-8. */
static int put_string(struct ember_buf *b, const char *s)
{
    const char *run = s;
    int rc = put(b, "\"");

    for (const char *p = s; rc == 0 && *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        char esc[8];
        if (c == '"' || c == '\\')
            snprintf(esc, sizeof(esc), "\\%c", c);
        else
            snprintf(esc, sizeof(esc), "\\u%04x", c);
        rc = ember_buf_append(b, run, (size_t)(p - run));
        if (rc == 0)
            rc = put(b, esc);
        run = p + 1;
    }
    if (rc == 0)
        rc = put(b, run);
    return rc == 0 ? put(b, "\"") : rc;
}

/* `"key":` then value as JSON (Jansson dump of a small object or array). */
static int put_json(struct ember_buf *b, const char *key, const json_t *value)
{
    int rc = put(b, key);

    if (rc == 0 && json_is_object(value) && json_object_size(value) == 0)
        return put(b, "{}");           /* the usual case, without a dump */
    if (rc == 0 && json_is_array(value) && json_array_size(value) == 0)
        return put(b, "[]");
    char *text = json_dumps(value, JSON_COMPACT);

    if (rc == 0)
        rc = put(b, text ? text : "null");
    free(text);
    return rc;
}

static int put_properties(struct ember_buf *b, const Ember__TaskSpec *s)
{
    int rc = put(b, ",\"properties\":{");
    int first = 1;

    for (size_t i = 0; rc == 0 && i < s->n_properties; i++) {
        const Ember__TaskSpec__PropertiesEntry *p = s->properties[i];
        if (!ember_is_utf8(p->key) || !ember_is_utf8(p->value))
            continue;
        if (!first)
            rc = put(b, ",");
        first = 0;
        if (rc == 0)
            rc = put_string(b, p->key);
        if (rc == 0)
            rc = put(b, ":");
        if (rc == 0)
            rc = put_string(b, p->value);
    }
    return rc == 0 ? put(b, "}") : rc;
}

static int put_lists(struct ember_buf *b, const Ember__TaskSpec *s,
                     const struct broadcast_load *loads, size_t n_loads)
{
    char num[32];
    int rc = put(b, ",\"broadcasts\":[");

    for (size_t i = 0; rc == 0 && i < n_loads; i++) {
        snprintf(num, sizeof(num), "%s%" PRIu64, i ? "," : "", loads[i].id);
        rc = put(b, num);
    }
    if (rc == 0)
        rc = put(b, "],\"cacheBlocks\":[");
    int first = 1;
    for (size_t i = 0; rc == 0 && i < s->n_cache_writes; i++) {
        if (!ember_is_utf8(s->cache_writes[i]->block_id))
            continue;
        if (!first)
            rc = put(b, ",");
        first = 0;
        if (rc == 0)
            rc = put_string(b, s->cache_writes[i]->block_id);
    }
    return rc == 0 ? put(b, "]") : rc;
}

int worker_header_valid(const Ember__TaskSpec *s)
{
    json_t *plan;
    int ok;

    if (!ember_is_utf8(s->app_id))
        return 0;
    if (worker_plan_quick_check(s->plan))
        return 1;
    plan = json_loads(s->plan, 0, NULL);
    ok = plan != NULL;
    json_decref(plan);
    return ok;
}

int worker_header_json(const Ember__TaskSpec *s, const struct broadcast_load *loads,
                       size_t n_loads, const struct object_plan *objects,
                       uint64_t object_memory_limit, struct ember_buf *out)
{
    char head[256];
    int rc;

    snprintf(head, sizeof(head),
             "{\"taskId\":%lld,\"stageId\":%d,\"partition\":%d,\"attempt\":%d,"
             "\"jobId\":%d,\"numInputs\":%d,\"numFuncs\":%d,\"numReduce\":%d,"
             "\"objectMemoryLimit\":%" PRIu64 ",\"appId\":",
             (long long)s->task_id, (int)s->stage_id, (int)s->partition, (int)s->attempt, (int)s->job_id,
             (int)s->n_inputs, (int)s->n_funcs, (int)s->num_reduce, object_memory_limit);
    rc = put(out, head);
    if (rc == 0)
        rc = put_string(out, s->app_id);
    if (rc == 0)
        rc = put(out, ",\"plan\":");
    if (rc == 0)
        rc = put(out, s->plan);
    if (rc == 0)
        rc = put_properties(out, s);
    if (rc == 0)
        rc = put_lists(out, s, loads, n_loads);
    if (rc == 0)
        rc = put_json(out, ",\"objectInputs\":", objects->object_inputs);
    if (rc == 0)
        rc = put_json(out, ",\"keepInputs\":", objects->keep_inputs);
    if (rc == 0)
        rc = put_json(out, ",\"dropObjects\":", objects->drop);
    return rc == 0 ? put(out, "}") : rc;
}
