/* The metrics frame a pyexec writes at the end of a task (worker_runtime.py's
 * _metrics_json), read into the task's figures. Jansson's json_loadb and
 * json_unpack cost a sixth of the worker's instructions per short task for
 * these ~110 bytes, so the exact text pyexec writes for a task without
 * accumulator updates or kept objects is read directly; any other text
 * (updates, objects, spaces, another order, a number Jansson might read
 * otherwise) goes to Jansson, which decides as before.
 * tests/unit/test_worker_metrics.c holds both against Jansson alone. */
#include "worker.h"

#include <string.h>

/* Steps over lit at *p; 0 when the text differs. */
static int match(const char **p, const char *end, const char *lit)
{
    size_t n = strlen(lit);

    if ((size_t)(end - *p) < n || memcmp(*p, lit, n) != 0)
        return 0;
    *p += n;
    return 1;
}

/* An integer exactly as JSON writes it, 0 or [1-9][0-9]{0,17} (at most 18
 * digits fit any json_int_t); 0 for anything else, Jansson's case. */
static int read_count(const char **p, const char *end, uint64_t *out)
{
    const char *s = *p;
    uint64_t v = 0;
    int digits = 0;

    if (s < end && *s == '0') {
        *out = 0;
        *p = s + 1;
        return 1;
    }
    while (s < end && *s >= '0' && *s <= '9' && digits < 18) {
        v = v * 10 + (uint64_t)(*s++ - '0');
        digits++;
    }
    if (digits == 0 || (s < end && *s >= '0' && *s <= '9'))
        return 0;
    *out = v;
    *p = s;
    return 1;
}

int worker_metrics_parse_quick(const char *data, size_t len, struct worker_metrics *out)
{
    const char *p = data, *end = data + len;
    struct worker_metrics m = {0};
    uint64_t cache_hits;

    if (!match(&p, end, "{\"recordsIn\":") || !read_count(&p, end, &m.records_in)
        || !match(&p, end, ",\"recordsOut\":") || !read_count(&p, end, &m.records_out)
        || !match(&p, end, ",\"pythonMs\":") || !read_count(&p, end, &m.python_ms)
        || !match(&p, end, ",\"objectInputs\":") || !read_count(&p, end, &m.object_inputs)
        || !match(&p, end, ",\"functionCacheHits\":") || !read_count(&p, end, &cache_hits)
        || !match(&p, end, ",\"objects\":[]}") || p != end)
        return 0;
    m.objects = json_array();
    *out = m;
    return 1;
}

int worker_metrics_parse_jansson(const char *data, size_t len, struct worker_metrics *out)
{
    json_t *m = json_loadb(data, len, 0, NULL);
    json_int_t in = 0, records_out = 0, py = 0, served = 0;
    const char *acc = NULL;
    json_t *objects = NULL;
    int ok;

    ok = m && json_unpack(m, "{s:I, s:I, s:I, s?s, s?o, s?I}", "recordsIn", &in, "recordsOut",
                          &records_out, "pythonMs", &py, "accumulators", &acc, "objects",
                          &objects, "objectInputs", &served) == 0;
    if (ok) {
        memset(out, 0, sizeof(*out));
        out->records_in = (uint64_t)in;
        out->records_out = (uint64_t)records_out;
        out->python_ms = (uint64_t)py;
        out->object_inputs = (uint64_t)served;
        if (json_is_array(objects))
            out->objects = json_incref(objects);
        if (acc)
            out->accumulators = ember_xstrdup(acc);
    }
    json_decref(m);
    return ok;
}

int worker_metrics_parse(const char *data, size_t len, struct worker_metrics *out)
{
    return worker_metrics_parse_quick(data, len, out)
        || worker_metrics_parse_jansson(data, len, out);
}

void worker_metrics_free(struct worker_metrics *m)
{
    json_decref(m->objects);
    free(m->accumulators);
    m->objects = NULL;
    m->accumulators = NULL;
}
