/* The job and stage views of master_json.c written straight as compact JSON
 * text: the bytes json_dumps(view, JSON_COMPACT) gives (keys in insertion
 * order, strings escaped as jansson does), without the tree's allocations.
 * The job-end journal line and the job reply are built per job, under the
 * lock; tests/unit/test_master_json_text.c holds them against the trees. */
#define _GNU_SOURCE
#include "master.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

void master_text_reset(struct master_text *t)
{
    t->len = 0;
}

void master_text_free(struct master_text *t)
{
    free(t->buf);
    t->buf = NULL;
    t->len = t->cap = 0;
}

static void reserve(struct master_text *t, size_t n)
{
    if (t->len + n + 1 <= t->cap)
        return;
    t->cap = t->cap ? t->cap : 1024;
    while (t->len + n + 1 > t->cap)
        t->cap *= 2;
    t->buf = ember_xrealloc(t->buf, t->cap);
}

void master_text_raw(struct master_text *t, const char *s, size_t n)
{
    reserve(t, n);
    memcpy(t->buf + t->len, s, n);
    t->len += n;
    t->buf[t->len] = '\0';
}

#define RAW MASTER_TEXT_LIT

void master_text_int(struct master_text *t, long long v)
{
    char digits[24];
    int n = 0;
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;

    do {
        digits[sizeof(digits) - 1 - n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        digits[sizeof(digits) - 1 - n++] = '-';
    master_text_raw(t, digits + sizeof(digits) - n, (size_t)n);
}

/* A JSON string as jansson writes it: '"' and '\\' escaped, control
 * characters as \b \f \n \r \t or \u00XX, everything else as is. A byte that
 * is not UTF-8 (only from a peer's protobuf strings; the tree would drop the
 * value) becomes U+FFFD so the line stays JSON. */
static void text_str(struct master_text *t, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    const unsigned char *p = (const unsigned char *)s;

    reserve(t, strlen(s) + 2);
    t->buf[t->len++] = '"';
    while (*p) {
        const unsigned char *run = p;
        size_t n;
        while (*p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\')
            p++;
        master_text_raw(t, (const char *)run, (size_t)(p - run));
        if (!*p)
            break;
        if (*p >= 0x80) {
            n = ember_utf8_len(p);
            if (n)
                master_text_raw(t, (const char *)p, n);
            else
                RAW(t, "\\uFFFD");
            p += n ? n : 1;
            continue;
        }
        switch (*p) {
        case '"': RAW(t, "\\\""); break;
        case '\\': RAW(t, "\\\\"); break;
        case '\b': RAW(t, "\\b"); break;
        case '\f': RAW(t, "\\f"); break;
        case '\n': RAW(t, "\\n"); break;
        case '\r': RAW(t, "\\r"); break;
        case '\t': RAW(t, "\\t"); break;
        default: {
            char seq[6] = {'\\', 'u', '0', '0', hex[*p >> 4], hex[*p & 15]};
            master_text_raw(t, seq, sizeof(seq));
        }
        }
        p++;
    }
    RAW(t, "\"");
}

/* ,"key": (the comma unless first). Keys are literals without escapes. */
static void key(struct master_text *t, const char *k, int first)
{
    size_t n = strlen(k);

    reserve(t, n + 4);
    if (!first)
        t->buf[t->len++] = ',';
    t->buf[t->len++] = '"';
    memcpy(t->buf + t->len, k, n);
    t->len += n;
    t->buf[t->len++] = '"';
    t->buf[t->len++] = ':';
    t->buf[t->len] = '\0';
}

/* Opens the i-th object of an array. */
static void item(struct master_text *t, size_t i)
{
    if (i)
        RAW(t, ",{");
    else
        RAW(t, "{");
}

static void kv_int(struct master_text *t, const char *k, long long v)
{
    key(t, k, 0);
    master_text_int(t, v);
}

static void kv_str(struct master_text *t, const char *k, const char *v)
{
    key(t, k, 0);
    text_str(t, v);
}

static void kv_bool(struct master_text *t, const char *k, int v)
{
    key(t, k, 0);
    if (v)
        RAW(t, "true");
    else
        RAW(t, "false");
}

static void two_digits(char *p, unsigned v)
{
    p[0] = (char)('0' + v / 10 % 10);
    p[1] = (char)('0' + v % 10);
}

/* master_json.c's iso_time: 2026-11-26T01:02:03.004GMT. */
static void kv_time(struct master_text *t, const char *k, uint64_t ms)
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    char out[64];

    gmtime_r(&secs, &tm);
    key(t, k, 0);
    if (tm.tm_year + 1900 < 1000 || tm.tm_year + 1900 > 9999) {
        char date[40];
        strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm);
        snprintf(out, sizeof(out), "\"%s.%03uGMT\"", date, (unsigned)(ms % 1000));
        master_text_raw(t, out, strlen(out));
        return;
    }
    memcpy(out, "\"YYYY-MM-DDTHH:MM:SS.mmmGMT\"", 28);
    two_digits(out + 1, (unsigned)(tm.tm_year + 1900) / 100);
    two_digits(out + 3, (unsigned)(tm.tm_year + 1900) % 100);
    two_digits(out + 6, (unsigned)tm.tm_mon + 1);
    two_digits(out + 9, (unsigned)tm.tm_mday);
    two_digits(out + 12, (unsigned)tm.tm_hour);
    two_digits(out + 15, (unsigned)tm.tm_min);
    two_digits(out + 18, (unsigned)tm.tm_sec);
    out[21] = (char)('0' + ms % 1000 / 100);
    two_digits(out + 22, (unsigned)(ms % 100));
    master_text_raw(t, out, 28);
}

/* master_json.c's set_times. */
static void kv_times(struct master_text *t, uint64_t submitted, uint64_t completed)
{
    uint64_t end = completed ? completed : ember_now_ms();

    if (submitted)
        kv_time(t, "submissionTime", submitted);
    if (completed)
        kv_time(t, "completionTime", completed);
    kv_int(t, "durationMs", submitted ? (json_int_t)(end - submitted) : 0);
}

/* Any other value (the accumulator updates): jansson's own text. */
static void text_json(struct master_text *t, const json_t *v)
{
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);

    if (s)
        master_text_raw(t, s, strlen(s));
    free(s);
}

static void text_progress(struct master_text *t, const struct stage *s)
{
    key(t, "stageId", 1);
    master_text_int(t, (int)s->id);
    kv_str(t, "status", master_stage_status_names[s->status]);
    kv_int(t, "numTasks", (int)s->n_parts);
    kv_int(t, "numCompleteTasks", (int)s->num_complete);
    kv_int(t, "numActiveTasks", master_stage_active_tasks(s));
    kv_int(t, "numFailedTasks", (int)s->num_failed);
}

static void text_result(struct master_text *t, const struct job *job, uint32_t i,
                        int with_results)
{
    const struct result_location *r = &job->results[i];
    const struct stage *rs = job->result_stage;

    key(t, "partition", 1);
    master_text_int(t, (int)rs->partitions[i]);
    if (r->is_inline) {
        kv_int(t, "size", (json_int_t)r->size);
        kv_bool(t, "inline", r->inline_data != NULL);
        if (with_results == 2 && r->inline_data) {
            char *b64 = ember_base64_encode(r->inline_data, r->size);
            kv_str(t, "data", b64);
            free(b64);
        }
        return;
    }
    kv_str(t, "blockManager", r->block_addr ? r->block_addr : "");
    key(t, "blockId", 0);
    RAW(t, "\"result_");
    master_text_int(t, job->id);
    RAW(t, "_");
    master_text_int(t, rs->partitions[i]);
    RAW(t, "\"");
    kv_int(t, "size", (json_int_t)r->size);
}

static void text_job_results(struct master_text *t, const struct job *job, int with_results)
{
    key(t, "stages", 0);
    RAW(t, "[");
    for (size_t i = 0; i < job->stages.n; i++) {
        item(t, i);
        text_progress(t, job->stages.items[i]);
        RAW(t, "}");
    }
    RAW(t, "]");
    if (job->status != JOB_RUNNING && job->accumulator_updates) {
        key(t, "accumulatorUpdates", 0);
        text_json(t, job->accumulator_updates);
    }
    if (job->status != JOB_SUCCEEDED)
        return;
    key(t, "results", 0);
    RAW(t, "[");
    for (uint32_t i = 0; i < job->result_stage->n_parts; i++) {
        item(t, i);
        text_result(t, job, i, with_results);
        RAW(t, "}");
    }
    RAW(t, "]");
}

void master_text_job(struct master_text *t, const struct job *job, int with_results)
{
    const struct job_totals n = master_job_totals(job);

    RAW(t, "{\"jobId\":");
    master_text_int(t, job->id);
    kv_str(t, "appId", job->app->id);
    kv_str(t, "name", job->description);
    kv_str(t, "description", job->description);
    kv_str(t, "callSite", job->call_site);
    kv_times(t, job->submitted_ms, job->completed_ms);
    kv_str(t, "status", master_job_status_names[job->status]);
    key(t, "stageIds", 0);
    RAW(t, "[");
    for (size_t i = 0; i < job->stages.n; i++) {
        const struct stage *s = job->stages.items[i];
        if (i)
            RAW(t, ",");
        master_text_int(t, s->id);
    }
    RAW(t, "]");
    kv_int(t, "numStages", (json_int_t)job->stages.n);
    kv_int(t, "numCompletedStages", n.completed_stages);
    kv_int(t, "numSkippedStages", n.skipped_stages);
    kv_int(t, "numTasks", n.tasks);
    kv_int(t, "numCompletedTasks", n.completed_tasks);
    kv_int(t, "numActiveTasks", n.active_tasks);
    kv_int(t, "numFailedTasks", n.failed_tasks);
    if (job->error) {
        kv_str(t, "errorMessage", job->error);
        kv_int(t, "failedStage", job->failed_stage);
        kv_int(t, "failedPartition", job->failed_partition);
    }
    if (job->cancelled)
        kv_bool(t, "cancelled", 1);
    if (with_results)
        text_job_results(t, job, with_results);
    RAW(t, "}");
}

static void text_rdd(struct master_text *t, const struct rdd_node *n)
{
    key(t, "id", 1);
    master_text_int(t, (json_int_t)n->id);
    kv_str(t, "name", n->name);
    kv_str(t, "kind", master_node_kind_names[n->kind]);
    kv_int(t, "numPartitions", (int)n->num_partitions);
    key(t, "parentIds", 0);
    RAW(t, "[");
    for (size_t i = 0; i < n->n_parents; i++) {
        if (i)
            RAW(t, ",");
        master_text_int(t, n->parents[i]->id);
    }
    RAW(t, "]");
    kv_bool(t, "persisted", n->persisted);
    kv_bool(t, "checkpointed", n->frames_files && n->kind != NODE_FRAMES);
}

/* master_json.c's set_lineage. */
static void text_lineage(struct master_text *t, const struct stage *s)
{
    struct ptr_array chain = {0};

    key(t, "parentIds", 0);
    RAW(t, "[");
    for (size_t i = 0; i < s->parents.n; i++) {
        if (i)
            RAW(t, ",");
        master_text_int(t, ((struct stage *)s->parents.items[i])->id);
    }
    master_stage_chain(&chain, s->rdd);
    RAW(t, "],\"rddIds\":[");
    for (size_t i = 0; i < chain.n; i++) {
        if (i)
            RAW(t, ",");
        master_text_int(t, ((struct rdd_node *)chain.items[i])->id);
    }
    RAW(t, "],\"rdds\":[");
    for (size_t i = 0; i < chain.n; i++) {
        item(t, i);
        text_rdd(t, chain.items[i]);
        RAW(t, "}");
    }
    RAW(t, "]");
    free(chain.items);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* One metric's quantiles as master_json.c's json_quantiles. Sorts v. */
static void text_quantiles(struct master_text *t, const char *k, uint64_t *v, size_t n)
{
    static const double quantiles[] = {0.0, 0.25, 0.5, 0.75, 1.0};

    key(t, k, 0);
    RAW(t, "[");
    qsort(v, n, sizeof(*v), cmp_u64);
    for (size_t i = 0; n && i < sizeof(quantiles) / sizeof(quantiles[0]); i++) {
        if (i)
            RAW(t, ",");
        master_text_int(t, (json_int_t)v[(size_t)(quantiles[i] * (n - 1) + 0.5)]);
    }
    RAW(t, "]");
}

/* master_json.c's json_task_summary. */
static void text_task_summary(struct master_text *t, const struct stage *s)
{
    static const char *const names[] = {"durationMs", "recordsIn", "recordsOut",
                                        "shuffleReadBytes", "shuffleWriteBytes"};
    uint64_t *v = ember_xcalloc(5 * (s->tasks.n + 1), sizeof(uint64_t));
    size_t stride = s->tasks.n + 1, n = 0;

    for (size_t i = 0; i < s->tasks.n; i++) {
        const struct task *k = s->tasks.items[i];
        if (k->state != TASK_SUCCEEDED)
            continue;
        v[n] = k->duration_ms;
        v[stride + n] = k->metrics.records_in;
        v[2 * stride + n] = k->metrics.records_out;
        v[3 * stride + n] =
            k->metrics.shuffle_read_local_bytes + k->metrics.shuffle_read_remote_bytes;
        v[4 * stride + n] = k->metrics.shuffle_write_bytes;
        n++;
    }
    key(t, "taskSummary", 0);
    RAW(t, "{\"quantiles\":[0.0,0.25,0.5,0.75,1.0]");
    kv_int(t, "numTasks", (json_int_t)n);
    for (int k = 0; k < 5; k++)
        text_quantiles(t, names[k], v + k * stride, n);
    RAW(t, "}");
    free(v);
}

static void text_task(struct master_text *t, const struct task *k)
{
    const Ember__TaskMetrics *mt = &k->metrics;

    key(t, "taskId", 1);
    master_text_int(t, (json_int_t)k->id);
    kv_int(t, "index", (int)k->stage->partitions[k->index]);
    kv_int(t, "attempt", (int)k->attempt);
    kv_str(t, "executorId", k->worker_id);
    kv_str(t, "host", k->host);
    kv_str(t, "status", master_task_state_names[k->state]);
    kv_time(t, "launchTime", k->launch_ms);
    kv_int(t, "durationMs",
           (json_int_t)(k->state == TASK_RUNNING ? ember_now_ms() - k->launch_ms : k->duration_ms));
    kv_int(t, "recordsIn", (json_int_t)mt->records_in);
    kv_int(t, "recordsOut", (json_int_t)mt->records_out);
    kv_int(t, "shuffleReadBytes",
           (json_int_t)(mt->shuffle_read_local_bytes + mt->shuffle_read_remote_bytes));
    kv_int(t, "shuffleRemoteBytesRead", (json_int_t)mt->shuffle_read_remote_bytes);
    kv_int(t, "shuffleWriteBytes", (json_int_t)mt->shuffle_write_bytes);
    kv_int(t, "objectCacheInputs", (json_int_t)mt->object_cache_inputs);
    if (k->error)
        kv_str(t, "errorMessage", k->error);
}

static void text_stage_totals(struct master_text *t, const Ember__TaskMetrics *m)
{
    kv_int(t, "inputBytes", (json_int_t)m->input_bytes);
    kv_int(t, "inputRecords", (json_int_t)m->records_in);
    kv_int(t, "outputRecords", (json_int_t)m->records_out);
    kv_int(t, "shuffleReadBytes",
           (json_int_t)(m->shuffle_read_local_bytes + m->shuffle_read_remote_bytes));
    kv_int(t, "shuffleLocalBytesRead", (json_int_t)m->shuffle_read_local_bytes);
    kv_int(t, "shuffleRemoteBytesRead", (json_int_t)m->shuffle_read_remote_bytes);
    kv_int(t, "shuffleWriteBytes", (json_int_t)m->shuffle_write_bytes);
    kv_int(t, "executorRunTimeMs", (json_int_t)m->duration_ms);
    kv_int(t, "objectCacheInputs", (json_int_t)m->object_cache_inputs);
}

void master_text_stage(struct master_text *t, const struct stage *s)
{
    RAW(t, "{\"stageId\":");
    master_text_int(t, (int)s->id);
    RAW(t, ",\"attemptId\":0");
    kv_str(t, "appId", s->job->app->id);
    key(t, "jobIds", 0);
    RAW(t, "[");
    master_text_int(t, (int)s->job->id);
    RAW(t, "]");
    kv_str(t, "name", s->rdd->name);
    kv_str(t, "description", s->job->description);
    kv_str(t, "status", master_stage_status_names[s->status]);
    kv_int(t, "numTasks", (int)s->n_parts);
    kv_int(t, "numCompleteTasks", (int)s->num_complete);
    kv_int(t, "numActiveTasks", master_stage_active_tasks(s));
    kv_int(t, "numFailedTasks", (int)s->num_failed);
    kv_times(t, s->submitted_ms, s->completed_ms);
    text_stage_totals(t, &s->totals);
    if (s->failure)
        kv_str(t, "failureReason", s->failure);
    text_lineage(t, s);
    text_task_summary(t, s);
    key(t, "tasks", 0);
    RAW(t, "[");
    for (size_t i = 0; i < s->tasks.n; i++) {
        item(t, i);
        text_task(t, s->tasks.items[i]);
        RAW(t, "}");
    }
    RAW(t, "]}");
}
