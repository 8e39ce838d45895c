/* The task header the worker writes directly (worker_header.c) against the
 * Jansson-built header it replaces (kept here as old_header): for each spec,
 * both are refused, or both parse to equal JSON. The cases aim at strings:
 * escapes, control characters, valid and invalid UTF-8 (which Jansson drops
 * from properties and cache blocks and refuses as the application id). */
#include <stdlib.h>

#include "test.h"
#include "worker.h"

/* The header as worker_task.c built it before worker_header.c. */
static json_t *old_header(const Ember__TaskSpec *s, const struct broadcast_load *loads,
                          size_t n_loads, const struct object_plan *objects, uint64_t limit)
{
    json_t *plan = json_loads(s->plan, 0, NULL);
    json_t *props, *broadcasts, *ids, *h;

    if (!plan)
        return NULL;
    props = json_object();
    for (size_t i = 0; i < s->n_properties; i++)
        json_object_set_new(props, s->properties[i]->key, json_string(s->properties[i]->value));
    h = json_pack("{s:I, s:i, s:i, s:i, s:i, s:s, s:o, s:i, s:i, s:i, s:o}", "taskId",
                  (json_int_t)s->task_id, "stageId", (int)s->stage_id, "partition",
                  (int)s->partition, "attempt", (int)s->attempt, "jobId", (int)s->job_id, "appId",
                  s->app_id, "plan", plan, "numInputs", (int)s->n_inputs, "numFuncs",
                  (int)s->n_funcs, "numReduce", (int)s->num_reduce, "properties", props);
    if (!h)
        return NULL;
    broadcasts = json_array();
    for (size_t i = 0; i < n_loads; i++)
        json_array_append_new(broadcasts, json_integer((json_int_t)loads[i].id));
    json_object_set_new(h, "broadcasts", broadcasts);
    json_object_set_new(h, "objectInputs", json_incref(objects->object_inputs));
    json_object_set_new(h, "keepInputs", json_incref(objects->keep_inputs));
    json_object_set_new(h, "dropObjects", json_incref(objects->drop));
    json_object_set_new(h, "objectMemoryLimit", json_integer((json_int_t)limit));
    ids = json_array();
    for (size_t i = 0; i < s->n_cache_writes; i++)
        json_array_append_new(ids, json_string(s->cache_writes[i]->block_id));
    json_object_set_new(h, "cacheBlocks", ids);
    return h;
}

struct header_case {
    const char *name;
    const char *app_id;
    const char *plan;
    const char *keys[4];
    const char *values[4];
    const char *cache_blocks[3];
    int with_objects;
};

static const struct header_case cases[] = {
    {"plain", "app-1", "{\"funcs\":[0],\"input\":\"pickle\",\"split\":3}",
     {"spark.job.description", "spark.ember.driver.python"}, {"collect at x.py:7", "3.11.2"},
     {NULL}, 0},
    {"escapes and control characters", "app-\"2\"\\", "[1, 2.5, \"x\"]",
     {"quote\"key", "tab\tkey", "nl"}, {"back\\slash", "bell\a\x1f end", "line\nbreak\r"},
     {"rdd_1_0", "rdd_1_1"}, 1},
    {"UTF-8 of every length", "app-\xc3\xa9", "{\"s\":\"\\u00e9\"}",
     {"k\xc3\xa9", "emoji", "max", "del"},
     {"\xe2\x82\xac", "\xf0\x9f\x98\x80", "\xf4\x8f\xbf\xbf", "\x7f"}, {"rdd_\xc3\xa9_0"}, 0},
    {"invalid UTF-8 is left out", "app-3", "{}",
     {"bad\xff", "overlong", "surrogate", "too big"},
     {"v", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80"}, {"rdd_\xff", "rdd_2_0", "\xe2\x82"},
     1},
    {"truncated sequences", "app-4", "{}", {"cut2", "cut3", "cut4"},
     {"a\xc3", "a\xe2\x82", "a\xf0\x9f\x98"}, {NULL}, 0},
    {"application id not UTF-8", "app-\xfe", "{}", {NULL}, {NULL}, {NULL}, 0},
    {"plan not JSON", "app-5", "{\"funcs\": [", {NULL}, {NULL}, {NULL}, 0},
    {"plan a bare number", "app-6", "7", {NULL}, {NULL}, {NULL}, 0},
};

static void run_case(const struct header_case *c)
{
    Ember__TaskSpec spec = EMBER__TASK_SPEC__INIT;
    Ember__TaskSpec__PropertiesEntry props[4], *prop_ptrs[4];
    Ember__CacheWrite writes[3], *write_ptrs[3];
    struct broadcast_load loads[2] = {{.id = 7}, {.id = 18446744073709551ull}};
    struct object_plan objects = {0};
    struct ember_buf got;

    spec.task_id = 1882880496109119ull;
    spec.stage_id = 3;
    spec.partition = 41;
    spec.attempt = 2;
    spec.job_id = 9;
    spec.num_reduce = 4;
    spec.app_id = (char *)c->app_id;
    spec.plan = (char *)c->plan;
    for (size_t i = 0; i < 4 && c->keys[i]; i++) {
        ember__task_spec__properties_entry__init(&props[i]);
        props[i].key = (char *)c->keys[i];
        props[i].value = (char *)c->values[i];
        prop_ptrs[i] = &props[i];
        spec.n_properties++;
    }
    spec.properties = prop_ptrs;
    for (size_t i = 0; i < 3 && c->cache_blocks[i]; i++) {
        ember__cache_write__init(&writes[i]);
        writes[i].block_id = (char *)c->cache_blocks[i];
        write_ptrs[i] = &writes[i];
        spec.n_cache_writes++;
    }
    spec.cache_writes = write_ptrs;
    objects.object_inputs = json_object();
    objects.keep_inputs = json_object();
    objects.drop = json_array();
    if (c->with_objects) {
        json_object_set_new(objects.object_inputs, "0", json_string("rdd_4_1"));
        json_object_set_new(objects.keep_inputs, "1", json_string("rdd_5_\"1"));
        json_array_append_new(objects.drop, json_string("rdd_6_2"));
    }

    json_t *want = old_header(&spec, loads, 2, &objects, 123456789);
    int valid = worker_header_valid(&spec);
    CHECK(valid == (want != NULL), "%s: valid %d, the old header %s", c->name, valid,
          want ? "was built" : "was refused");
    if (valid && want) {
        ember_buf_init(&got, 0);
        CHECK(worker_header_json(&spec, loads, 2, &objects, 123456789, &got) == 0, "%s: write",
              c->name);
        json_error_t err;
        json_t *parsed = json_loadb((const char *)got.data, got.len, 0, &err);
        CHECK(parsed != NULL, "%s: not JSON (%s): %.*s", c->name, err.text, (int)got.len,
              (const char *)got.data);
        if (parsed) {
            char *a = json_dumps(parsed, JSON_SORT_KEYS | JSON_COMPACT);
            char *b = json_dumps(want, JSON_SORT_KEYS | JSON_COMPACT);
            CHECK(json_equal(parsed, want), "%s:\n got  %s\n want %s", c->name, a, b);
            free(a);
            free(b);
        }
        json_decref(parsed);
        ember_buf_free(&got);
    }
    json_decref(want);
    json_decref(objects.object_inputs);
    json_decref(objects.keep_inputs);
    json_decref(objects.drop);
}

int main(void)
{
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        run_case(&cases[i]);
    return TEST_EXIT();
}
