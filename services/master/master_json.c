/* JSON views of the master's state for the gateway, with Spark's field
 * names where the meaning is the same. Called with the lock held. */
#define _GNU_SOURCE
#include "master.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

const char *const master_job_status_names[] = {"RUNNING", "SUCCEEDED", "FAILED"};
const char *const master_stage_status_names[] = {"PENDING", "ACTIVE", "COMPLETE", "FAILED",
                                                 "SKIPPED"};
const char *const master_task_state_names[] = {"RUNNING", "SUCCESS", "FAILED", "KILLED"};

static json_t *iso_time(uint64_t ms)
{
    char buf[40], out[48];
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;

    gmtime_r(&secs, &tm);
    strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, sizeof(out), "%s.%03uGMT", buf, (unsigned)(ms % 1000));
    return json_string(out);
}

static void set_times(json_t *o, uint64_t submitted, uint64_t completed)
{
    uint64_t end = completed ? completed : ember_now_ms();

    if (submitted)
        json_object_set_new(o, "submissionTime", iso_time(submitted));
    if (completed)
        json_object_set_new(o, "completionTime", iso_time(completed));
    json_object_set_new(o, "durationMs", json_integer(submitted ? (json_int_t)(end - submitted) : 0));
}

int master_stage_active_tasks(const struct stage *s)
{
    int active = 0;

    for (uint32_t p = 0; p < s->n_parts; p++)
        active += s->parts[p].running;
    return active;
}

/* The stage's task counts, for the driver's console progress bar. */
static json_t *json_stage_progress(const struct stage *s)
{
    return json_pack("{s:i, s:s, s:i, s:i, s:i, s:i}", "stageId", (int)s->id, "status",
                     master_stage_status_names[s->status], "numTasks", (int)s->n_parts,
                     "numCompleteTasks", (int)s->num_complete, "numActiveTasks",
                     master_stage_active_tasks(s), "numFailedTasks", (int)s->num_failed);
}

struct job_totals master_job_totals(const struct job *job)
{
    struct job_totals n = {0};

    for (size_t i = 0; i < job->stages.n; i++) {
        const struct stage *s = job->stages.items[i];
        n.completed_stages += s->status == STAGE_COMPLETE;
        n.skipped_stages += s->status == STAGE_SKIPPED;
        if (s->status == STAGE_SKIPPED)
            continue;
        n.tasks += (int)s->n_parts;
        n.completed_tasks += (int)s->num_complete;
        n.failed_tasks += (int)s->num_failed;
        n.active_tasks += master_stage_active_tasks(s);
    }
    return n;
}

json_t *master_json_job(struct master *m, const struct job *job, int with_results)
{
    json_t *o = json_object(), *stage_ids = json_array(), *progress = json_array();
    const struct job_totals n = master_job_totals(job);

    for (size_t i = 0; i < job->stages.n; i++) {
        const struct stage *s = job->stages.items[i];
        json_array_append_new(stage_ids, json_integer(s->id));
        json_array_append_new(progress, json_stage_progress(s));
    }
    json_object_set_new(o, "jobId", json_integer(job->id));
    json_object_set_new(o, "appId", json_string(job->app->id));
    json_object_set_new(o, "name", json_string(job->description));
    json_object_set_new(o, "description", json_string(job->description));
    json_object_set_new(o, "callSite", json_string(job->call_site));
    set_times(o, job->submitted_ms, job->completed_ms);
    json_object_set_new(o, "status", json_string(master_job_status_names[job->status]));
    json_object_set_new(o, "stageIds", stage_ids);
    json_object_set_new(o, "numStages", json_integer((json_int_t)job->stages.n));
    json_object_set_new(o, "numCompletedStages", json_integer(n.completed_stages));
    json_object_set_new(o, "numSkippedStages", json_integer(n.skipped_stages));
    json_object_set_new(o, "numTasks", json_integer(n.tasks));
    json_object_set_new(o, "numCompletedTasks", json_integer(n.completed_tasks));
    json_object_set_new(o, "numActiveTasks", json_integer(n.active_tasks));
    json_object_set_new(o, "numFailedTasks", json_integer(n.failed_tasks));
    if (job->error) {
        json_object_set_new(o, "errorMessage", json_string(job->error));
        json_object_set_new(o, "failedStage", json_integer(job->failed_stage));
        json_object_set_new(o, "failedPartition", json_integer(job->failed_partition));
    }
    if (job->cancelled)
        json_object_set_new(o, "cancelled", json_true());
    if (with_results)
        json_object_set(o, "stages", progress);
    json_decref(progress);
    if (with_results && job->status != JOB_RUNNING)
        json_object_set(o, "accumulatorUpdates", job->accumulator_updates);
    if (with_results && job->status == JOB_SUCCEEDED) {
        json_t *results = json_array();
        const struct stage *rs = job->result_stage;
        for (uint32_t i = 0; i < rs->n_parts; i++) {
            const struct result_location *r = &job->results[i];
            if (r->is_inline) {
                /* held here: "inline" says whether the bytes still are */
                json_t *e = json_pack("{s:i, s:I, s:b}", "partition", (int)rs->partitions[i],
                                      "size", (json_int_t)r->size, "inline",
                                      r->inline_data != NULL);
                if (with_results == 2 && r->inline_data) {
                    char *b64 = ember_base64_encode(r->inline_data, r->size);
                    json_object_set_new(e, "data", json_string(b64));
                    free(b64);
                }
                json_array_append_new(results, e);
                continue;
            }
            char *id = ember_xasprintf("result_%u_%u", job->id, rs->partitions[i]);
            json_array_append_new(
                results, json_pack("{s:i, s:s, s:s, s:I}", "partition", (int)rs->partitions[i],
                                   "blockManager", r->block_addr ? r->block_addr : "", "blockId",
                                   id, "size", (json_int_t)r->size));
            free(id);
        }
        json_object_set_new(o, "results", results);
    }
    return o;
}

static json_t *json_task(const struct task *t)
{
    const Ember__TaskMetrics *mt = &t->metrics;
    json_t *o = json_pack(
        "{s:I, s:i, s:i, s:s, s:s, s:s, s:o, s:I, s:I, s:I, s:I, s:I, s:I}", "taskId",
        (json_int_t)t->id, "index", (int)t->stage->partitions[t->index], "attempt", (int)t->attempt,
        "executorId", t->worker_id, "host", t->host, "status", master_task_state_names[t->state],
        "launchTime", iso_time(t->launch_ms), "durationMs",
        (json_int_t)(t->state == TASK_RUNNING ? ember_now_ms() - t->launch_ms : t->duration_ms),
        "recordsIn", (json_int_t)mt->records_in, "recordsOut", (json_int_t)mt->records_out,
        "shuffleReadBytes",
        (json_int_t)(mt->shuffle_read_local_bytes + mt->shuffle_read_remote_bytes),
        "shuffleRemoteBytesRead", (json_int_t)mt->shuffle_read_remote_bytes, "shuffleWriteBytes",
        (json_int_t)mt->shuffle_write_bytes);
    json_object_set_new(o, "objectCacheInputs", json_integer((json_int_t)mt->object_cache_inputs));
    if (t->error)
        json_object_set_new(o, "errorMessage", json_string(t->error));
    return o;
}

const char *const master_node_kind_names[] = {"text", "data", "map", "shuffle", "union",
                                               "frames", "concat"};

#define MAX_CHAIN MASTER_MAX_CHAIN     /* RDDs listed per stage; a UI cannot draw more */

/* Adds n and, parents first, the narrow dependencies the stage computes with it:
 * the walk stops at a shuffle (the stage reads it) and at a checkpoint. */
void master_stage_chain(struct ptr_array *chain, struct rdd_node *n)
{
    for (size_t i = 0; i < chain->n; i++)
        if (chain->items[i] == n)
            return;
    if (n->kind != NODE_SHUFFLE && !n->frames_files)
        for (size_t i = 0; i < n->n_parents && chain->n < MAX_CHAIN; i++)
            master_stage_chain(chain, n->parents[i]);
    if (chain->n < MAX_CHAIN)
        ptr_array_push(chain, n);
}

static json_t *json_rdd(const struct rdd_node *n)
{
    json_t *parents = json_array();

    for (size_t i = 0; i < n->n_parents; i++)
        json_array_append_new(parents, json_integer(n->parents[i]->id));
    return json_pack("{s:I, s:s, s:s, s:i, s:o, s:b, s:b}", "id", (json_int_t)n->id, "name",
                     n->name, "kind", master_node_kind_names[n->kind], "numPartitions",
                     (int)n->num_partitions, "parentIds", parents, "persisted", n->persisted,
                     "checkpointed", n->frames_files && n->kind != NODE_FRAMES);
}

/* "parentIds" (stages whose shuffles it reads), "rddIds" and "rdds": the RDD
 * operations the stage runs, inputs first, as the DAG view draws them. */
static void set_lineage(json_t *o, const struct stage *s)
{
    struct ptr_array chain = {0};
    json_t *parents = json_array(), *ids = json_array(), *rdds = json_array();

    for (size_t i = 0; i < s->parents.n; i++)
        json_array_append_new(parents, json_integer(((struct stage *)s->parents.items[i])->id));
    master_stage_chain(&chain, s->rdd);
    for (size_t i = 0; i < chain.n; i++) {
        json_array_append_new(ids, json_integer(((struct rdd_node *)chain.items[i])->id));
        json_array_append_new(rdds, json_rdd(chain.items[i]));
    }
    free(chain.items);
    json_object_set_new(o, "parentIds", parents);
    json_object_set_new(o, "rddIds", ids);
    json_object_set_new(o, "rdds", rdds);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static const double quantiles[] = {0.0, 0.25, 0.5, 0.75, 1.0};
#define N_QUANTILES (sizeof(quantiles) / sizeof(quantiles[0]))

/* Nearest rank: the value at index round(q * (n - 1)) of the sorted values.
 * Sorts v in place. */
static json_t *json_quantiles(uint64_t *v, size_t n)
{
    json_t *out = json_array();

    qsort(v, n, sizeof(*v), cmp_u64);
    for (size_t i = 0; n && i < N_QUANTILES; i++)
        json_array_append_new(out,
                              json_integer((json_int_t)v[(size_t)(quantiles[i] * (n - 1) + 0.5)]));
    return out;
}

enum { SUM_DURATION, SUM_RECORDS_IN, SUM_RECORDS_OUT, SUM_SHUFFLE_READ, SUM_SHUFFLE_WRITE, N_SUM };

/* Spark's taskSummary: quantiles of the metrics of the stage's successful tasks. */
static json_t *json_task_summary(const struct stage *s)
{
    static const char *const names[N_SUM] = {"durationMs", "recordsIn", "recordsOut",
                                             "shuffleReadBytes", "shuffleWriteBytes"};
    uint64_t *v[N_SUM];
    size_t n = 0;
    json_t *o = json_object(), *qs = json_array();

    for (int k = 0; k < N_SUM; k++)
        v[k] = ember_xcalloc(s->tasks.n + 1, sizeof(uint64_t));
    for (size_t i = 0; i < s->tasks.n; i++) {
        const struct task *t = s->tasks.items[i];
        if (t->state != TASK_SUCCEEDED)
            continue;
        v[SUM_DURATION][n] = t->duration_ms;
        v[SUM_RECORDS_IN][n] = t->metrics.records_in;
        v[SUM_RECORDS_OUT][n] = t->metrics.records_out;
        v[SUM_SHUFFLE_READ][n] =
            t->metrics.shuffle_read_local_bytes + t->metrics.shuffle_read_remote_bytes;
        v[SUM_SHUFFLE_WRITE][n] = t->metrics.shuffle_write_bytes;
        n++;
    }
    for (size_t i = 0; i < N_QUANTILES; i++)
        json_array_append_new(qs, json_real(quantiles[i]));
    json_object_set_new(o, "quantiles", qs);
    json_object_set_new(o, "numTasks", json_integer((json_int_t)n));
    for (int k = 0; k < N_SUM; k++) {
        json_object_set_new(o, names[k], json_quantiles(v[k], n));
        free(v[k]);
    }
    return o;
}

static json_t *json_stage(const struct stage *s, int with_tasks)
{
    const Ember__TaskMetrics *m = &s->totals;
    json_t *o;

    o = json_pack("{s:i, s:i, s:s, s:[i], s:s, s:s, s:s, s:i, s:i, s:i, s:i}", "stageId",
                  (int)s->id, "attemptId", 0, "appId", s->job->app->id, "jobIds", (int)s->job->id,
                  "name", s->rdd->name, "description", s->job->description, "status",
                  master_stage_status_names[s->status], "numTasks", (int)s->n_parts, "numCompleteTasks",
                  (int)s->num_complete, "numActiveTasks", master_stage_active_tasks(s), "numFailedTasks",
                  (int)s->num_failed);
    set_times(o, s->submitted_ms, s->completed_ms);
    json_object_set_new(o, "inputBytes", json_integer((json_int_t)m->input_bytes));
    json_object_set_new(o, "inputRecords", json_integer((json_int_t)m->records_in));
    json_object_set_new(o, "outputRecords", json_integer((json_int_t)m->records_out));
    json_object_set_new(o, "shuffleReadBytes", json_integer((json_int_t)(
        m->shuffle_read_local_bytes + m->shuffle_read_remote_bytes)));
    json_object_set_new(o, "shuffleLocalBytesRead",
                        json_integer((json_int_t)m->shuffle_read_local_bytes));
    json_object_set_new(o, "shuffleRemoteBytesRead",
                        json_integer((json_int_t)m->shuffle_read_remote_bytes));
    json_object_set_new(o, "shuffleWriteBytes", json_integer((json_int_t)m->shuffle_write_bytes));
    json_object_set_new(o, "executorRunTimeMs", json_integer((json_int_t)m->duration_ms));
    json_object_set_new(o, "objectCacheInputs", json_integer((json_int_t)m->object_cache_inputs));
    if (s->failure)
        json_object_set_new(o, "failureReason", json_string(s->failure));
    set_lineage(o, s);
    if (with_tasks) {
        json_t *tasks = json_array();
        json_object_set_new(o, "taskSummary", json_task_summary(s));
        for (size_t i = 0; i < s->tasks.n; i++)
            json_array_append_new(tasks, json_task(s->tasks.items[i]));
        json_object_set_new(o, "tasks", tasks);
    }
    return o;
}

static json_t *json_app(const struct app *a)
{
    json_t *o = json_pack("{s:s, s:s, s:s, s:o, s:s, s:i}", "id", a->id, "name", a->name, "user",
                          a->user, "startTime", iso_time(a->start_ms), "state",
                          a->ended ? "FINISHED" : "RUNNING", "numJobs", (int)a->jobs.n);
    if (a->ended)
        json_object_set_new(o, "endTime", iso_time(a->end_ms));
    return o;
}

static json_t *json_executor(const struct worker_info *w)
{
    return json_pack("{s:s, s:s, s:s, s:i, s:s, s:s, s:i, s:i, s:i, s:I, s:I}", "id", w->id,
                     "hostPort", w->address, "host", w->host, "cores", (int)w->cores,
                     "blockManager", w->block_addr, "state", w->alive ? "alive" : "dead",
                     "activeTasks", (int)w->active, "completedTasks", (int)w->completed,
                     "failedTasks", (int)w->failed, "totalDurationMs", (json_int_t)w->total_ms,
                     "lastHeartbeatAgeMs",
                     (json_int_t)(ember_monotonic_ms() - w->last_heartbeat_ms));
}

static json_t *json_blockd(const struct blockd_info *b)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:I}", "id", b->id, "address",
                     b->address, "host", b->host, "state", b->alive ? "alive" : "dead",
                     "maxMemory", (json_int_t)b->memory, "blocks", (json_int_t)b->blocks,
                     "memoryUsed", (json_int_t)b->bytes_in_memory, "diskUsed",
                     (json_int_t)b->bytes_on_disk, "evictions", (json_int_t)b->evictions);
}

static int app_matches(const struct app *a, const char *app_id)
{
    return !app_id || !*app_id || strcmp(a->id, app_id) == 0;
}

/* ---- environment: options in effect and an application's properties ---- */

/* [["--flag", value or null], ...] in the order of the option table. */
static json_t *json_options(const struct ember_daemon *d)
{
    json_t *list = json_array();

    for (int i = 0; i < d->n_options; i++) {
        char *flag = ember_xasprintf("--%s", d->options[i]->name);
        json_array_append_new(list, json_pack("[s, s?]", flag,
                                              ember_shown_value(d->options[i]->name,
                                                                d->values[i])));
        free(flag);
    }
    return list;
}

static int cmp_keys(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Spark's sparkProperties: [[key, value], ...] sorted by key: the properties
 * the driver had in effect when it started, those of its newest job (NULL: none
 * yet) over them, the application's id and name; secrets' values masked. */
static json_t *json_properties(const struct app *a, const struct job *newest)
{
    json_t *props = json_object(), *list = json_array(), *value;
    const char **keys;
    const char *key;
    size_t n = 0;

    if (a->properties)
        json_object_update(props, a->properties);
    if (newest)
        json_object_update(props, newest->properties);
    json_object_set_new(props, "spark.app.id", json_string(a->id));
    json_object_set_new(props, "spark.app.name", json_string(a->name));
    keys = ember_xcalloc(json_object_size(props), sizeof(*keys));
    json_object_foreach(props, key, value)
        keys[n++] = key;
    qsort(keys, n, sizeof(*keys), cmp_keys);
    for (size_t i = 0; i < n; i++) {
        value = json_object_get(props, keys[i]);
        char *text = json_is_string(value) ? NULL : json_dumps(value, JSON_ENCODE_ANY);
        json_array_append_new(list, json_pack("[s, s]", keys[i],
                                              ember_shown_value(keys[i], text ? text
                                                                : json_string_value(value))));
        free(text);
    }
    free(keys);
    json_decref(props);
    return list;
}

/* {"masterOptions": [...]}, plus for one application "application",
 * "sparkProperties" and "propertiesOfJob" (the job they come from). The gateway
 * adds its own options and the versions. */
static json_t *query_environment(struct master *m, const char *app_id, int64_t id, char **error)
{
    json_t *o = json_pack("{s:o}", "masterOptions", json_options(m->daemon));
    const struct app *a = app_id && *app_id ? master_find_app(m, app_id) : NULL;
    const struct job *newest = a && a->jobs.n ? a->jobs.items[a->jobs.n - 1] : NULL;

    if (a) {
        json_object_set_new(o, "application", json_app(a));
        json_object_set_new(o, "sparkProperties", json_properties(a, newest));
        if (newest)
            json_object_set_new(o, "propertiesOfJob", json_integer(newest->id));
    }
    return o;
}

/* ---- metrics: the counts /metrics exposes, from the same state as the lists ---- */

/* {"NAME": count, ...} with every name present, zeros included. */
static json_t *json_counts(const char *const *names, size_t n, const int *counts)
{
    json_t *o = json_object();

    for (size_t i = 0; i < n; i++)
        json_object_set_new(o, names[i], json_integer(counts[i]));
    return o;
}

#define COUNTS(names, counts) json_counts(names, sizeof(names) / sizeof(names[0]), counts)

static void add_stage_totals(json_t *o, const struct ptr_array *stages)
{
    Ember__TaskMetrics sum = EMBER__TASK_METRICS__INIT;

    for (size_t i = 0; i < stages->n; i++) {
        const Ember__TaskMetrics *t = &((const struct stage *)stages->items[i])->totals;
        sum.input_bytes += t->input_bytes;
        sum.records_in += t->records_in;
        sum.records_out += t->records_out;
        sum.shuffle_read_local_bytes += t->shuffle_read_local_bytes;
        sum.shuffle_read_remote_bytes += t->shuffle_read_remote_bytes;
        sum.shuffle_write_bytes += t->shuffle_write_bytes;
        sum.duration_ms += t->duration_ms;
    }
    json_object_set_new(o, "inputBytes", json_integer((json_int_t)sum.input_bytes));
    json_object_set_new(o, "inputRecords", json_integer((json_int_t)sum.records_in));
    json_object_set_new(o, "outputRecords", json_integer((json_int_t)sum.records_out));
    json_object_set_new(o, "shuffleLocalBytesRead",
                        json_integer((json_int_t)sum.shuffle_read_local_bytes));
    json_object_set_new(o, "shuffleRemoteBytesRead",
                        json_integer((json_int_t)sum.shuffle_read_remote_bytes));
    json_object_set_new(o, "shuffleWriteBytes", json_integer((json_int_t)sum.shuffle_write_bytes));
    json_object_set_new(o, "executorRunTimeMs", json_integer((json_int_t)sum.duration_ms));
}

static json_t *json_worker_counts(const struct ptr_array *workers)
{
    int alive = 0, dead = 0, cores = 0, active = 0;

    for (size_t i = 0; i < workers->n; i++) {
        const struct worker_info *w = workers->items[i];
        alive += w->alive;
        dead += !w->alive;
        cores += w->alive ? (int)w->cores : 0;
        active += (int)w->active;
    }
    return json_pack("{s:i, s:i, s:i, s:i}", "alive", alive, "dead", dead, "cores", cores,
                     "activeTasks", active);
}

/* Counts by status of applications, jobs, stages and tasks; stage totals of
 * bytes read and written (successful tasks, as in the stage list); workers;
 * the block managers as in their list. */
static json_t *query_metrics(struct master *m, const char *app_id, int64_t id, char **error)
{
    static const char *const app_states[] = {"RUNNING", "FINISHED"};
    int apps[2] = {0}, jobs[3] = {0}, stages[5] = {0}, tasks[4] = {0};
    json_t *o = json_object(), *bms = json_array();

    for (size_t i = 0; i < m->apps.n; i++)
        apps[((struct app *)m->apps.items[i])->ended != 0]++;
    for (size_t i = 0; i < m->jobs.n; i++)
        jobs[((struct job *)m->jobs.items[i])->status]++;
    for (size_t i = 0; i < m->stages.n; i++)
        stages[((struct stage *)m->stages.items[i])->status]++;
    for (size_t i = 0; i < m->tasks.n; i++)
        tasks[((struct task *)m->tasks.items[i])->state]++;
    for (size_t i = 0; i < m->blockds.n; i++)
        json_array_append_new(bms, json_blockd(m->blockds.items[i]));
    json_object_set_new(o, "applications", COUNTS(app_states, apps));
    json_object_set_new(o, "jobs", COUNTS(master_job_status_names, jobs));
    json_object_set_new(o, "stages", COUNTS(master_stage_status_names, stages));
    json_object_set_new(o, "tasks", COUNTS(master_task_state_names, tasks));
    add_stage_totals(o, &m->stages);
    json_object_set_new(o, "executors", json_worker_counts(&m->workers));
    json_object_set_new(o, "blockManagers", bms);
    return o;
}

/* ---- the lists ---- */

static json_t *query_applications(struct master *m, const char *app_id, int64_t id, char **error)
{
    json_t *list = json_array();

    for (size_t i = m->apps.n; i-- > 0;)
        json_array_append_new(list, json_app(m->apps.items[i]));
    return list;
}

static json_t *query_jobs(struct master *m, const char *app_id, int64_t id, char **error)
{
    json_t *list = json_array();

    for (size_t i = m->jobs.n; i-- > 0;) {
        const struct job *j = m->jobs.items[i];
        if (app_matches(j->app, app_id))
            json_array_append_new(list, master_json_job(m, j, 0));
    }
    return list;
}

static json_t *query_stages(struct master *m, const char *app_id, int64_t id, char **error)
{
    json_t *list = json_array();

    for (size_t i = m->stages.n; i-- > 0;) {
        const struct stage *s = m->stages.items[i];
        if (app_matches(s->job->app, app_id))
            json_array_append_new(list, json_stage(s, 0));
    }
    return list;
}

static json_t *query_stage(struct master *m, const char *app_id, int64_t id, char **error)
{
    struct stage *s = master_stage_by_id(m, id);

    if (!s || !app_matches(s->job->app, app_id)) {
        *error = ember_xasprintf("no stage %lld", (long long)id);
        return NULL;
    }
    return json_stage(s, 1);
}

static json_t *query_storage(struct master *m, const char *app_id, int64_t id, char **error)
{
    json_t *list = json_array();

    for (size_t i = 0; i < m->apps.n; i++) {
        if (!app_matches(m->apps.items[i], app_id))
            continue;
        json_t *rdds = master_json_storage(m, m->apps.items[i]);
        json_array_extend(list, rdds);
        json_decref(rdds);
    }
    return list;
}

static json_t *query_blockmanagers(struct master *m, const char *app_id, int64_t id,
                                   char **error)
{
    json_t *list = json_array();

    for (size_t i = 0; i < m->blockds.n; i++)
        json_array_append_new(list, json_blockd(m->blockds.items[i]));
    return list;
}

static json_t *query_executors(struct master *m, const char *app_id, int64_t id, char **error)
{
    json_t *list = json_array();

    for (size_t i = 0; i < m->workers.n; i++)
        json_array_append_new(list, json_executor(m->workers.items[i]));
    return list;
}

static json_t *query_drivers(struct master *m, const char *app_id, int64_t id, char **error)
{
    return master_json_drivers(m);
}

typedef json_t *(*query_fn)(struct master *m, const char *app_id, int64_t id, char **error);

static const struct {
    const char *what;
    query_fn fn;
} queries[] = {
    {"applications", query_applications}, {"jobs", query_jobs},
    {"stages", query_stages},             {"stage", query_stage},
    {"storage", query_storage},           {"blockmanagers", query_blockmanagers},
    {"executors", query_executors},       {"environment", query_environment},
    {"metrics", query_metrics},           {"drivers", query_drivers},
};

json_t *master_json_query(struct master *m, const char *what, const char *app_id, int64_t id,
                          char **error)
{
    if (app_id && *app_id && !master_find_app(m, app_id)) {
        *error = ember_xasprintf("no application %s", app_id);
        return NULL;
    }
    for (size_t i = 0; i < sizeof(queries) / sizeof(queries[0]); i++)
        if (strcmp(what, queries[i].what) == 0)
            return queries[i].fn(m, app_id, id, error);
    *error = ember_xasprintf("unknown query \"%s\"", what);
    return NULL;
}
