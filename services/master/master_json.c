/* JSON views of the master's state for the gateway, with Spark's field
 * names where the meaning is the same. Called with the lock held. */
#define _GNU_SOURCE
#include "master.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const job_status_names[] = {"RUNNING", "SUCCEEDED", "FAILED"};
static const char *const stage_status_names[] = {"PENDING", "ACTIVE", "COMPLETE", "FAILED",
                                                 "SKIPPED"};
static const char *const task_state_names[] = {"RUNNING", "SUCCESS", "FAILED", "KILLED"};

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

json_t *master_json_job(struct master *m, const struct job *job, int with_results)
{
    json_t *o = json_object(), *stage_ids = json_array();
    int completed = 0, skipped = 0, tasks = 0, done = 0, active = 0, failed = 0;

    for (size_t i = 0; i < job->stages.n; i++) {
        const struct stage *s = job->stages.items[i];
        json_array_append_new(stage_ids, json_integer(s->id));
        completed += s->status == STAGE_COMPLETE;
        skipped += s->status == STAGE_SKIPPED;
        if (s->status == STAGE_SKIPPED)
            continue;
        tasks += (int)s->n_parts;
        done += (int)s->num_complete;
        failed += (int)s->num_failed;
        for (uint32_t p = 0; p < s->n_parts; p++)
            active += s->parts[p].running;
    }
    json_object_set_new(o, "jobId", json_integer(job->id));
    json_object_set_new(o, "appId", json_string(job->app->id));
    json_object_set_new(o, "name", json_string(job->description));
    json_object_set_new(o, "description", json_string(job->description));
    json_object_set_new(o, "callSite", json_string(job->call_site));
    set_times(o, job->submitted_ms, job->completed_ms);
    json_object_set_new(o, "status", json_string(job_status_names[job->status]));
    json_object_set_new(o, "stageIds", stage_ids);
    json_object_set_new(o, "numStages", json_integer((json_int_t)job->stages.n));
    json_object_set_new(o, "numCompletedStages", json_integer(completed));
    json_object_set_new(o, "numSkippedStages", json_integer(skipped));
    json_object_set_new(o, "numTasks", json_integer(tasks));
    json_object_set_new(o, "numCompletedTasks", json_integer(done));
    json_object_set_new(o, "numActiveTasks", json_integer(active));
    json_object_set_new(o, "numFailedTasks", json_integer(failed));
    if (job->error) {
        json_object_set_new(o, "errorMessage", json_string(job->error));
        json_object_set_new(o, "failedStage", json_integer(job->failed_stage));
        json_object_set_new(o, "failedPartition", json_integer(job->failed_partition));
    }
    if (with_results && job->status != JOB_RUNNING)
        json_object_set(o, "accumulatorUpdates", job->accumulator_updates);
    if (with_results && job->status == JOB_SUCCEEDED) {
        json_t *results = json_array();
        const struct stage *rs = job->result_stage;
        for (uint32_t i = 0; i < rs->n_parts; i++) {
            const struct result_location *r = &job->results[i];
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
        "executorId", t->worker_id, "host", t->host, "status", task_state_names[t->state],
        "launchTime", iso_time(t->launch_ms), "durationMs",
        (json_int_t)(t->state == TASK_RUNNING ? ember_now_ms() - t->launch_ms : t->duration_ms),
        "recordsIn", (json_int_t)mt->records_in, "recordsOut", (json_int_t)mt->records_out,
        "shuffleReadBytes",
        (json_int_t)(mt->shuffle_read_local_bytes + mt->shuffle_read_remote_bytes),
        "shuffleRemoteBytesRead", (json_int_t)mt->shuffle_read_remote_bytes, "shuffleWriteBytes",
        (json_int_t)mt->shuffle_write_bytes);
    if (t->error)
        json_object_set_new(o, "errorMessage", json_string(t->error));
    return o;
}

static json_t *json_stage(const struct stage *s, int with_tasks)
{
    const Ember__TaskMetrics *m = &s->totals;
    int active = 0;
    json_t *o;

    for (uint32_t p = 0; p < s->n_parts; p++)
        active += s->parts[p].running;
    o = json_pack("{s:i, s:i, s:s, s:[i], s:s, s:s, s:s, s:i, s:i, s:i, s:i}", "stageId",
                  (int)s->id, "attemptId", 0, "appId", s->job->app->id, "jobIds", (int)s->job->id,
                  "name", s->rdd->name, "description", s->job->description, "status",
                  stage_status_names[s->status], "numTasks", (int)s->n_parts, "numCompleteTasks",
                  (int)s->num_complete, "numActiveTasks", active, "numFailedTasks",
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
    if (s->failure)
        json_object_set_new(o, "failureReason", json_string(s->failure));
    if (with_tasks) {
        json_t *tasks = json_array();
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

json_t *master_json_query(struct master *m, const char *what, const char *app_id, int64_t id,
                          char **error)
{
    json_t *list = json_array();

    if (app_id && *app_id && !master_find_app(m, app_id)) {
        json_decref(list);
        *error = ember_xasprintf("no application %s", app_id);
        return NULL;
    }
    if (strcmp(what, "applications") == 0) {
        for (size_t i = m->apps.n; i-- > 0;)
            json_array_append_new(list, json_app(m->apps.items[i]));
    } else if (strcmp(what, "jobs") == 0) {
        for (size_t i = m->jobs.n; i-- > 0;) {
            const struct job *j = m->jobs.items[i];
            if (app_matches(j->app, app_id))
                json_array_append_new(list, master_json_job(m, j, 0));
        }
    } else if (strcmp(what, "stages") == 0) {
        for (size_t i = m->stages.n; i-- > 0;) {
            const struct stage *s = m->stages.items[i];
            if (app_matches(s->job->app, app_id))
                json_array_append_new(list, json_stage(s, 0));
        }
    } else if (strcmp(what, "stage") == 0) {
        json_decref(list);
        if (id < 1 || (size_t)id > m->stages.n
            || !app_matches(((struct stage *)m->stages.items[id - 1])->job->app, app_id)) {
            *error = ember_xasprintf("no stage %lld", (long long)id);
            return NULL;
        }
        return json_stage(m->stages.items[id - 1], 1);
    } else if (strcmp(what, "storage") == 0) {
        json_decref(list);
        list = json_array();
        for (size_t i = 0; i < m->apps.n; i++) {
            if (!app_matches(m->apps.items[i], app_id))
                continue;
            json_t *rdds = master_json_storage(m, m->apps.items[i]);
            json_array_extend(list, rdds);
            json_decref(rdds);
        }
    } else if (strcmp(what, "blockmanagers") == 0) {
        for (size_t i = 0; i < m->blockds.n; i++)
            json_array_append_new(list, json_blockd(m->blockds.items[i]));
    } else if (strcmp(what, "executors") == 0) {
        for (size_t i = 0; i < m->workers.n; i++)
            json_array_append_new(list, json_executor(m->workers.items[i]));
    } else {
        json_decref(list);
        *error = ember_xasprintf("unknown query \"%s\"", what);
        return NULL;
    }
    return list;
}
