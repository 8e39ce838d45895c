/* The master's journal: one JSON object a line, appended when an application
 * starts or ends and when a job ends (with its stages), so the UI's history
 * and the id counters survive a restart. Read once at start; a torn last line
 * (the master died while writing it) is skipped. */
#define _GNU_SOURCE
#include "master.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

static void raise_base(uint32_t *base, json_t *value)
{
    if (json_is_integer(value) && json_integer_value(value) > (json_int_t)*base)
        *base = (uint32_t)json_integer_value(value);
}

/* Keeps the newest record of each application, and every job and stage. */
static void restore_line(struct master *m, json_t *line)
{
    const char *type = json_string_value(json_object_get(line, "type"));
    json_t *item;
    size_t i;

    if (!type)
        return;
    if (strcmp(type, "app") == 0) {
        json_t *app = json_object_get(line, "app");
        const char *id = json_string_value(json_object_get(app, "id"));
        json_array_foreach(m->history_apps, i, item)
        {
            if (id && strcmp(json_string_value(json_object_get(item, "id")), id) == 0) {
                json_array_remove(m->history_apps, i);
                break;
            }
        }
        json_array_insert(m->history_apps, 0, app);
    } else if (strcmp(type, "job") == 0) {
        json_t *job = json_object_get(line, "job");
        json_array_insert(m->history_jobs, 0, job);
        raise_base(&m->job_base, json_object_get(job, "jobId"));
        json_array_foreach(json_object_get(line, "stages"), i, item)
        {
            json_array_insert(m->history_stages, 0, item);
            raise_base(&m->stage_base, json_object_get(item, "stageId"));
        }
        raise_base(&m->next_shuffle_id, json_object_get(line, "nextShuffle"));
        raise_base(&m->gid_base, json_object_get(line, "gids"));
    }
}

/* Applications that were running when the master stopped can never finish. */
static void mark_interrupted(struct master *m)
{
    json_t *app;
    size_t i;

    json_array_foreach(m->history_apps, i, app)
    {
        const char *state = json_string_value(json_object_get(app, "state"));
        if (state && strcmp(state, "RUNNING") == 0)
            json_object_set_new(app, "state", json_string("INTERRUPTED"));
    }
}

int master_journal_open(struct master *m, const char *path)
{
    FILE *fp = fopen(path, "a+");
    char *line = NULL;
    size_t cap = 0;
    int restored = 0;

    m->history_apps = json_array();
    m->history_jobs = json_array();
    m->history_stages = json_array();
    if (!fp) {
        ember_log_error_errno("cannot open journal %s", path);
        return EMBER_EIO;
    }
    rewind(fp);
    while (getline(&line, &cap, fp) > 0) {
        json_t *entry = json_loads(line, 0, NULL);
        if (!entry)
            continue;
        restore_line(m, entry);
        json_decref(entry);
        restored++;
    }
    free(line);
    mark_interrupted(m);
    m->journal = fp;
    if (restored)
        ember_log_info("journal %s: %d entries restored, jobs continue after %u", path, restored,
                       m->job_base);
    return 0;
}

/* The line of a job's end: the same bytes as
 * {"type":"job","job":job view,"stages":[stage views],"nextShuffle":n,"gids":n}
 * dumped by jansson, made as text (master_json_text.c), not as a tree. */
static void make_line(struct master *m, const struct journal_end *end)
{
    struct master_text *t = &m->journal_line;
    const struct job *job = end->job;

    MASTER_TEXT_LIT(t, "{\"type\":\"job\",\"job\":");
    master_text_job(t, job, 0);
    MASTER_TEXT_LIT(t, ",\"stages\":[");
    for (size_t i = 0; i < job->stages.n; i++) {
        if (i)
            MASTER_TEXT_LIT(t, ",");
        master_text_stage(t, job->stages.items[i]);
    }
    MASTER_TEXT_LIT(t, "],\"nextShuffle\":");
    master_text_int(t, (int)end->next_shuffle);
    MASTER_TEXT_LIT(t, ",\"gids\":");
    master_text_int(t, (int)end->gids);
    MASTER_TEXT_LIT(t, "}\n");
}

/* Makes the lines of the job ends that waited, in their order. */
static void make_waiting(struct master *m)
{
    for (size_t i = 0; i < m->n_journal_ends; i++)
        make_line(m, &m->journal_ends[i]);
    m->n_journal_ends = 0;
}

/* Writes the job-end lines that waited, making those not made yet (lock held). */
static void write_waiting(struct master *m)
{
    struct master_text *t = &m->journal_line;

    if (!m->journal)
        return;
    make_waiting(m);
    if (t->len == 0)
        return;
    if (fwrite(t->buf, 1, t->len, m->journal) != t->len || fflush(m->journal) != 0)
        ember_log_error_errno("cannot write the journal");
    master_text_reset(t);
    m->journal_waiting_since = 0;
}

/* A held line waits for the answer it follows, but not past this: with
 * SubmitJobAndWait calls overlapping, some hold is nearly always on. */
#define JOURNAL_HOLD_MAX_MS 50

static void write_unless_held(struct master *m)
{
    uint64_t now = ember_monotonic_ms();

    if (m->journal_holds && m->journal_waiting_since == 0)
        m->journal_waiting_since = now;
    if (!m->journal_holds || now - m->journal_waiting_since >= JOURNAL_HOLD_MAX_MS)
        write_waiting(m);
}

static void append(struct master *m, json_t *entry)
{
    char *text;

    if (!m->journal) {
        json_decref(entry);
        return;
    }
    write_waiting(m);                  /* lines keep their order */
    text = json_dumps(entry, JSON_COMPACT);
    json_decref(entry);
    if (fprintf(m->journal, "%s\n", text) < 0 || fflush(m->journal) != 0)
        ember_log_error_errno("cannot write the journal");
    free(text);
}

void master_journal_app(struct master *m, json_t *app)
{
    append(m, json_pack("{s:s, s:o}", "type", "app", "app", app));
}

void master_journal_app_state(struct master *m, const char *app_id)
{
    char *error = NULL;
    json_t *apps;

    if (!m->journal)
        return;
    apps = master_json_query(m, "applications", app_id, -1, &error);
    free(error);
    if (apps && json_array_size(apps) > 0)
        master_journal_app(m, json_incref(json_array_get(apps, 0)));
    json_decref(apps);
}

/* Nothing a succeeded job's line records of its tasks and stages changes once
 * its last task is over. A failed job may still have tasks running, whose
 * reports would change the line after the job's end. */
static bool line_can_wait(const struct job *job)
{
    return job->status == JOB_SUCCEEDED && master_job_totals(job).active_tasks == 0;
}

/* At the end of every job, under the lock. A held line of a succeeded job (it
 * ended in a SubmitJobAndWait's launch replies) is made when it is written,
 * after the answer it follows: making it was a tenth of the master's work per
 * trivial job, on the way to that answer. What it records of the master (ids)
 * is taken now; its RDDs' persisted and checkpointed flags are as of the
 * write (at most JOURNAL_HOLD_MAX_MS later). Any other line is made now, with
 * those that waited before it. The job is never freed before the journal is
 * closed. */
void master_journal_job_end(struct master *m, const struct job *job)
{
    if (!m->journal)
        return;
    if (m->n_journal_ends == m->cap_journal_ends) {
        m->cap_journal_ends = m->cap_journal_ends ? 2 * m->cap_journal_ends : 8;
        m->journal_ends = ember_xrealloc(m->journal_ends,
                                         m->cap_journal_ends * sizeof(*m->journal_ends));
    }
    m->journal_ends[m->n_journal_ends++] = (struct journal_end){
        .job = job,
        .next_shuffle = m->next_shuffle_id,
        .gids = m->gid_base + (uint32_t)m->nodes_by_gid.n,
    };
    if (!line_can_wait(job))
        make_waiting(m);
    write_unless_held(m);
}

void master_journal_hold(struct master *m)
{
    m->journal_holds++;
}

void master_journal_release(struct master *m)
{
    if (m->journal_holds > 0)
        m->journal_holds--;
    if (m->n_journal_ends || m->journal_line.len)
        write_unless_held(m);
}

void master_journal_close(struct master *m)
{
    write_waiting(m);
    if (m->journal)
        fclose(m->journal);
    m->journal = NULL;
    master_text_free(&m->journal_line);
    free(m->journal_ends);
    m->journal_ends = NULL;
    m->n_journal_ends = m->cap_journal_ends = 0;
    json_decref(m->history_apps);
    json_decref(m->history_jobs);
    json_decref(m->history_stages);
}

struct job *master_job_by_id(struct master *m, uint32_t id)
{
    if (id <= m->job_base || id - m->job_base > m->jobs.n)
        return NULL;
    return m->jobs.items[id - m->job_base - 1];
}

struct stage *master_stage_by_id(struct master *m, int64_t id)
{
    if (id <= (int64_t)m->stage_base || (uint64_t)(id - m->stage_base) > m->stages.n)
        return NULL;
    return m->stages.items[id - m->stage_base - 1];
}

struct task *master_task_by_id(struct master *m, uint64_t id)
{
    if (id <= m->task_base || id - m->task_base > m->tasks.n)
        return NULL;
    return m->tasks.items[id - m->task_base - 1];
}

static int in_app(json_t *item, const char *app_id)
{
    const char *id = json_string_value(json_object_get(item, "appId"));
    return !app_id || !*app_id || (id && strcmp(id, app_id) == 0);
}

void master_history_extend(struct master *m, const char *what, const char *app_id, json_t *list)
{
    json_t *source = NULL, *item;
    size_t i;

    if (strcmp(what, "applications") == 0)
        source = m->history_apps;
    else if (strcmp(what, "jobs") == 0)
        source = m->history_jobs;
    else if (strcmp(what, "stages") == 0)
        source = m->history_stages;
    json_array_foreach(source, i, item)
    {
        if (source == m->history_apps || in_app(item, app_id))
            json_array_append(list, item);
    }
}

json_t *master_history_find(struct master *m, const char *what, const char *app_id, int64_t id)
{
    int job = strcmp(what, "job") == 0;
    json_t *source = job ? m->history_jobs : m->history_stages, *item;
    size_t i;

    json_array_foreach(source, i, item)
    {
        json_t *key = json_object_get(item, job ? "jobId" : "stageId");
        if (json_integer_value(key) == id && in_app(item, app_id))
            return json_deep_copy(item);
    }
    return NULL;
}

int master_history_find_app(struct master *m, const char *app_id)
{
    json_t *item;
    size_t i;

    json_array_foreach(m->history_apps, i, item)
    {
        const char *id = json_string_value(json_object_get(item, "id"));
        if (id && strcmp(id, app_id) == 0)
            return 1;
    }
    return 0;
}
