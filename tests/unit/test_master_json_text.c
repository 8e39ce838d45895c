/* master_json_text.c against master_json.c: for hand-built jobs, stages and
 * tasks, the text writers give exactly the bytes json_dumps(JSON_COMPACT)
 * gives for the trees (job views at each level, stage views with tasks), and
 * the job-end journal line is the line the tree-built journal wrote and the
 * journal reader restores it. */
#define _GNU_SOURCE
#include <stdlib.h>
#include <sys/stat.h>
#include <string.h>

#include "master.h"
#include "test.h"

#define T0 1764118923004ULL            /* 2025-11-26T01:02:03.004 */

static struct ptr_array nodes;         /* every node made, freed at the end */

static struct rdd_node *node(int64_t id, const char *name, enum node_kind kind,
                             struct rdd_node *parent)
{
    struct rdd_node *n = ember_xcalloc(1, sizeof(*n));

    n->id = id;
    n->name = ember_xstrdup(name);
    n->kind = kind;
    n->num_partitions = 3;
    ptr_array_push(&nodes, n);
    if (parent) {
        n->parents = ember_xcalloc(1, sizeof(*n->parents));
        n->parents[0] = parent;
        n->n_parents = 1;
    }
    return n;
}

static struct stage *stage(struct master *m, struct job *job, struct rdd_node *rdd,
                           uint32_t n_parts, enum stage_status status)
{
    struct stage *s = ember_xcalloc(1, sizeof(*s));

    s->id = (uint32_t)m->stages.n + 1;
    s->job = job;
    s->rdd = rdd;
    s->n_parts = n_parts;
    s->partitions = ember_xcalloc(n_parts + 1, sizeof(uint32_t));
    s->parts = ember_xcalloc(n_parts + 1, sizeof(struct part_state));
    for (uint32_t i = 0; i < n_parts; i++)
        s->partitions[i] = i * 2;
    s->status = status;
    s->submitted_ms = T0;
    s->completed_ms = T0 + 1234;
    s->totals.input_bytes = 5;
    s->totals.records_in = 7;
    s->totals.shuffle_read_local_bytes = 11;
    s->totals.shuffle_read_remote_bytes = 13;
    s->totals.duration_ms = 99;
    ptr_array_push(&m->stages, s);
    ptr_array_push(&job->stages, s);
    return s;
}

static void task(struct master *m, struct stage *s, uint32_t index, enum task_state state,
                 const char *error)
{
    struct task *t = ember_xcalloc(1, sizeof(*t));
    Ember__TaskMetrics init = EMBER__TASK_METRICS__INIT;

    t->id = 1764118923000000ULL + m->tasks.n;
    t->stage = s;
    t->index = index;
    t->attempt = state == TASK_FAILED ? 0 : 1;
    t->worker_id = ember_xstrdup("worker-127.0.0.1-7078");
    t->host = ember_xstrdup("127.0.0.1");
    t->state = state;
    t->launch_ms = T0 + 999 * index;
    t->duration_ms = 40 + 17 * index;
    t->metrics = init;
    t->metrics.records_in = 100 - index;
    t->metrics.records_out = index * 3;
    t->metrics.shuffle_write_bytes = 1ULL << 40;
    t->metrics.object_cache_inputs = index;
    t->error = error ? ember_xstrdup(error) : NULL;
    if (state == TASK_SUCCEEDED)
        s->num_complete++;
    if (state == TASK_FAILED)
        s->num_failed++;
    ptr_array_push(&m->tasks, t);
    ptr_array_push(&s->tasks, t);
}

static struct job *job_new(struct master *m, struct app *a, const char *description)
{
    struct job *j = ember_xcalloc(1, sizeof(*j));

    j->id = (uint32_t)m->jobs.n + 1;
    j->app = a;
    j->description = ember_xstrdup(description);
    j->call_site = ember_xstrdup("collect at <stdin>:1");
    j->submitted_ms = T0;
    j->completed_ms = T0 + 2000;
    j->accumulator_updates = json_array();
    ptr_array_push(&m->jobs, j);
    ptr_array_push(&a->jobs, j);
    return j;
}

/* A two-stage job that succeeded: a shuffle map stage and a result stage with
 * inline results (one still held, one dropped) and a result block. */
static struct job *job_succeeded(struct master *m, struct app *a)
{
    static const uint8_t bytes[] = {0x80, 0x04, 0x95, 0x00, 'K', 0x01, '.'};
    struct rdd_node *data = node(1, "parallelize at x.py:3", NODE_DATA, NULL);
    struct rdd_node *map = node(2, "map \"quoted\" \\ back/slash", NODE_MAP, data);
    struct rdd_node *shuffle = node(3, "reduceByKey \xc3\xa9t\xc3\xa9 \xf0\x9f\x98\x80", NODE_SHUFFLE,
                                    map);
    struct job *j = job_new(m, a, "collect at x.py:7\tline\none \x01\x1f\x7f");
    struct stage *result, *parent;

    map->persisted = 1;
    shuffle->frames_files = ember_xcalloc(1, sizeof(char *));
    j->status = JOB_SUCCEEDED;
    result = stage(m, j, shuffle, 3, STAGE_COMPLETE);
    parent = stage(m, j, map, 2, STAGE_COMPLETE);
    ptr_array_push(&result->parents, parent);
    j->result_stage = result;
    task(m, parent, 0, TASK_SUCCEEDED, NULL);
    task(m, parent, 1, TASK_FAILED, "Traceback:\n  \"x\"\r\n\bboom\f");
    task(m, parent, 1, TASK_SUCCEEDED, NULL);
    task(m, result, 0, TASK_SUCCEEDED, NULL);
    task(m, result, 1, TASK_KILLED, NULL);
    task(m, result, 1, TASK_SUCCEEDED, NULL);
    task(m, result, 2, TASK_SUCCEEDED, NULL);
    j->results = ember_xcalloc(3, sizeof(*j->results));
    j->results[0] = (struct result_location){1, NULL, sizeof(bytes), NULL, 1};
    j->results[0].inline_data = ember_xmalloc(sizeof(bytes));
    memcpy(j->results[0].inline_data, bytes, sizeof(bytes));
    j->results[1] = (struct result_location){1, NULL, 123456789012ULL, NULL, 1};
    j->results[2] = (struct result_location){1, ember_xstrdup("127.0.0.1:7079"), 42, NULL, 0};
    json_array_append_new(j->accumulator_updates, json_string("gASVAAAA"));
    json_array_append_new(j->accumulator_updates, json_string("AQID"));
    return j;
}

/* A failed, cancelled job: one stage failed with a reason, one skipped, one
 * with no task at all. */
static struct job *job_failed(struct master *m, struct app *a)
{
    struct rdd_node *text = node(4, "textFile at y.py:1", NODE_TEXT, NULL);
    struct job *j = job_new(m, a, "");
    struct stage *s;

    j->status = JOB_FAILED;
    j->error = ember_xstrdup("Job aborted: task 0 \"failed\" 4 times");
    j->failed_stage = 5;
    j->failed_partition = -1;
    j->cancelled = 1;
    s = stage(m, j, text, 2, STAGE_FAILED);
    s->failure = ember_xstrdup("lost\u00e9");
    task(m, s, 0, TASK_FAILED, "x");
    task(m, s, 1, TASK_SUCCEEDED, NULL);
    j->result_stage = s;
    s = stage(m, j, text, 4, STAGE_SKIPPED);
    s->submitted_ms = 0;
    s->completed_ms = T0;
    stage(m, j, text, 0, STAGE_COMPLETE);
    j->completed_ms = T0 + 1;
    return j;
}

static char *tree_text(json_t *tree)
{
    char *s = json_dumps(tree, JSON_COMPACT);

    json_decref(tree);
    return s;
}

static void check_same(const char *what, char *want, const struct master_text *got)
{
    CHECK(want && strcmp(want, got->buf) == 0, "%s:\n got %s\nwant %s", what, got->buf,
          want ? want : "(null)");
    free(want);
}

static void check_job(struct master *m, const struct job *j)
{
    struct master_text t = {0};
    char *error = NULL;

    for (int level = 0; level <= 2; level++) {
        master_text_reset(&t);
        master_text_job(&t, j, level);
        check_same("job", tree_text(master_json_job(m, j, level)), &t);
    }
    for (size_t i = 0; i < j->stages.n; i++) {
        const struct stage *s = j->stages.items[i];
        master_text_reset(&t);
        master_text_stage(&t, s);
        check_same("stage", tree_text(master_json_query(m, "stage", j->app->id, s->id, &error)),
                   &t);
    }
    master_text_free(&t);
}

/* The line the journal wrote when it built a tree and dumped it. */
static char *tree_journal_line(struct master *m, const struct job *j)
{
    json_t *stages = json_array();
    char *error = NULL, *text, *line;

    for (size_t i = 0; i < j->stages.n; i++)
        json_array_append_new(stages, master_json_query(m, "stage", j->app->id,
                                                        ((struct stage *)j->stages.items[i])->id,
                                                        &error));
    text = tree_text(json_pack("{s:s, s:o, s:o, s:i, s:i}", "type", "job", "job",
                               master_json_job(m, j, 0), "stages", stages, "nextShuffle",
                               (int)m->next_shuffle_id, "gids",
                               (int)(m->gid_base + m->nodes_by_gid.n)));
    line = ember_xasprintf("%s\n", text);
    free(text);
    return line;
}

/* Closes the master's journal and reads back its first line (NULL: none). */
static char *close_and_read_line(struct master *m, const char *path)
{
    FILE *fp;
    char *line = NULL;
    size_t cap = 0;

    fclose(m->journal);
    m->journal = NULL;
    fp = fopen(path, "r");
    if (!fp || getline(&line, &cap, fp) <= 0) {
        free(line);
        line = NULL;
    }
    if (fp)
        fclose(fp);
    return line;
}

/* Frees what a journal check made and the master's journal buffers. */
static void forget_journal(struct master *m, const char *path, char *want, char *got)
{
    master_text_free(&m->journal_line);
    free(m->journal_ends);
    m->journal_ends = NULL;
    m->n_journal_ends = m->cap_journal_ends = 0;
    unlink(path);
    free(want);
    free(got);
}

static void check_journal(struct master *m, const struct job *j)
{
    char path[] = "/tmp/test_master_json_text_XXXXXX";
    int fd = mkstemp(path);
    char *want = tree_journal_line(m, j), *got;
    struct master restored = {0};

    m->journal = fdopen(fd, "a+");
    master_journal_job_end(m, j);
    got = close_and_read_line(m, path);
    CHECK(got && strcmp(got, want) == 0, "journal:\n got %s\nwant %s", got, want);
    CHECK(master_journal_open(&restored, path) == 0, "journal %s not read back", path);
    CHECK(json_array_size(restored.history_jobs) == 1
              && json_array_size(restored.history_stages) == j->stages.n
              && restored.job_base == j->id,
          "restored %zu jobs, %zu stages, job base %u", json_array_size(restored.history_jobs),
          json_array_size(restored.history_stages), restored.job_base);
    master_journal_close(&restored);
    forget_journal(m, path, want, got);
}

/* A line held for an answer (master_journal_hold) is written on release:
 * nothing before, the same bytes after, and the master's ids as they were when
 * the job ended. A failed job's line is the job as it ended: a task report
 * that arrives before the release (`late`) does not change it. */
static void check_journal_held(struct master *m, const struct job *j, struct task *late)
{
    char path[] = "/tmp/test_master_json_text_XXXXXX";
    int fd = mkstemp(path);
    char *want = tree_journal_line(m, j), *got;
    struct stat st;

    m->journal = fdopen(fd, "a+");
    master_journal_hold(m);
    master_journal_job_end(m, j);
    CHECK(fstat(fd, &st) == 0 && st.st_size == 0, "a held line was written before release");
    m->next_shuffle_id += 5;           /* later jobs do not change the line */
    if (late)
        late->metrics.records_in += 1000;
    master_journal_release(m);
    m->next_shuffle_id -= 5;
    if (late)
        late->metrics.records_in -= 1000;
    got = close_and_read_line(m, path);
    CHECK(got && strcmp(got, want) == 0, "held:\n got %s\nwant %s", got, want);
    forget_journal(m, path, want, got);
}

/* Text-only cases: escapes jansson's tree cannot hold (bytes that are not
 * UTF-8 become U+FFFD) and integers at the edges. */
static void check_text_edges(struct master *m, struct app *a)
{
    struct job *bad = job_new(m, a, "bad \xff\xc3 \xed\xa0\x80 ok \xc3\xa9");
    json_t *parsed;
    static const struct {
        long long v;
        const char *want;
    } ints[] = {{0, "0"}, {-1, "-1"}, {9223372036854775807LL, "9223372036854775807"},
                {-9223372036854775807LL - 1, "-9223372036854775808"}};
    struct master_text t = {0};

    for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++) {
        master_text_reset(&t);
        master_text_int(&t, ints[i].v);
        CHECK(strcmp(t.buf, ints[i].want) == 0, "int %lld: got %s want %s", ints[i].v, t.buf,
              ints[i].want);
    }
    master_text_reset(&t);
    master_text_job(&t, bad, 0);
    parsed = json_loads(t.buf, 0, NULL);
    CHECK(parsed && strstr(t.buf, "\"bad \\uFFFD\\uFFFD \\uFFFD\\uFFFD\\uFFFD ok \xc3\xa9\""),
          "not UTF-8: got %s", t.buf);
    json_decref(parsed);
    master_text_free(&t);
}

static void free_all(struct master *m, struct app *a)
{
    for (size_t i = 0; i < nodes.n; i++) {
        struct rdd_node *n = nodes.items[i];
        free(n->name);
        free(n->parents);
        free(n->frames_files);
        free(n);
    }
    for (size_t i = 0; i < m->tasks.n; i++) {
        struct task *t = m->tasks.items[i];
        free(t->worker_id);
        free(t->host);
        free(t->error);
        free(t);
    }
    for (size_t i = 0; i < m->jobs.n; i++) {
        struct job *j = m->jobs.items[i];
        for (uint32_t k = 0; j->results && k < j->result_stage->n_parts; k++) {
            free(j->results[k].inline_data);
            free(j->results[k].block_addr);
        }
        free(j->results);
        free(j->description);
        free(j->call_site);
        free(j->error);
        json_decref(j->accumulator_updates);
        free(j->stages.items);
        free(j);
    }
    for (size_t i = 0; i < m->stages.n; i++) {
        struct stage *s = m->stages.items[i];
        free(s->partitions);
        free(s->parts);
        free(s->tasks.items);
        free(s->parents.items);
        free(s->failure);
        free(s);
    }
    free(nodes.items);
    free(a->jobs.items);
    free(m->apps.items);
    free(m->jobs.items);
    free(m->stages.items);
    free(m->tasks.items);
}

int main(void)
{
    struct master m = {0};
    struct app a = {0};
    struct job *ok, *failed;

    a.id = "app-20251126010203-0001";
    a.name = "test";
    a.user = "me";
    ptr_array_push(&m.apps, &a);
    m.next_shuffle_id = 4;
    m.gid_base = 7;
    ok = job_succeeded(&m, &a);
    failed = job_failed(&m, &a);
    check_job(&m, ok);
    check_job(&m, failed);
    check_journal(&m, ok);
    check_journal(&m, failed);
    check_journal_held(&m, ok, NULL);
    check_journal_held(&m, failed,
                       ((struct stage *)failed->stages.items[0])->tasks.items[1]);
    check_text_edges(&m, &a);
    free_all(&m, &a);
    return TEST_EXIT();
}
