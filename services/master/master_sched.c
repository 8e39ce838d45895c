/* The scheduler: turns runnable stages into task launches, applies task
 * outcomes, retries failures and reacts to lost workers and block managers. */
#define _GNU_SOURCE
#include "master.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "worker.pb-c.h"

#define SCHEDULER_TICK_MS 200
/* A stage most of whose tasks take less than this (once a few finished) is
 * launched ahead: a worker holding fewer than AHEAD_LOW tasks per core is
 * filled up to AHEAD_HIGH per core in one pass (one LaunchTasks call), the
 * extra ones waiting there for a slot, so a slot never idles for the round
 * trip of a report and the next launch, and launches go several to a call.
 * Longer tasks are not: a task queued behind a long one could have started
 * elsewhere sooner. */
#define SHORT_TASK_MS 20
#define AHEAD_LOW 3
#define AHEAD_HIGH 5

struct kill_request {
    grpc_channel *channel;       /* borrowed: worker channels live until exit */
    uint64_t task_id;
};

struct launch {
    grpc_channel *channel;
    uint64_t task_id;
    char *worker_id;
    uint8_t *spec;                     /* the packed TaskSpec */
    size_t spec_len;
};

static int partition_done(const struct stage *s, uint32_t index)
{
    if (s->out_shuffle)
        return s->out_shuffle->outputs[s->partitions[index]].done;
    return s->job->results[index].done;
}

/* A worker without its block manager cannot keep any output: skip it. */
static int usable(struct master *m, const struct worker_info *w, uint64_t now)
{
    return w->alive && now >= w->launch_backoff_until_ms && master_blockd_alive(m, w->block_addr);
}

static int has_free_slot(struct master *m, const struct worker_info *w, int ahead, uint64_t now)
{
    uint32_t limit = w->cores;

    if (ahead)
        limit *= w->filled_in_pass == m->sched_pass ? AHEAD_HIGH : AHEAD_LOW;
    return w->active < limit && usable(m, w, now);
}

/* Most of its tasks so far were short (a slow first task, as a Python
 * subprocess starts, does not count against the rest). */
static int short_tasks(const struct stage *s)
{
    return s->num_short >= 4 && 4 * s->num_short >= 3 * s->num_complete;
}

/* The least loaded worker with a free slot; with a preferred block manager,
 * its worker if free, else nobody until the locality wait is over. */
static struct worker_info *pick_worker(struct master *m, const char *preferred, int waited_enough,
                                       int ahead, uint64_t now)
{
    struct worker_info *best = NULL;

    for (size_t i = 0; preferred && i < m->workers.n; i++) {
        struct worker_info *w = m->workers.items[i];
        if (has_free_slot(m, w, ahead, now) && strcmp(w->block_addr, preferred) == 0)
            return w;
    }
    if (preferred && !waited_enough) {
        for (size_t i = 0; i < m->workers.n; i++) {
            struct worker_info *w = m->workers.items[i];
            if (usable(m, w, now) && strcmp(w->block_addr, preferred) == 0)
                return NULL;           /* its host is busy: wait a little for it */
        }
    }
    for (size_t i = 0; i < m->workers.n; i++) {
        struct worker_info *w = m->workers.items[i];
        if (!has_free_slot(m, w, ahead, now))
            continue;
        if (!best || w->active * best->cores < best->active * w->cores)
            best = w;
    }
    return best;
}

static int any_free_slot(struct master *m, int ahead, uint64_t now)
{
    for (size_t i = 0; i < m->workers.n; i++)
        if (has_free_slot(m, m->workers.items[i], ahead, now))
            return 1;
    return 0;
}

/* Whether partition index i can run now; when a shuffle it reads is missing
 * (never run, or lost with a block manager), its map stage is (re)started. */
static int inputs_ready(struct master *m, struct stage *s, uint32_t i)
{
    struct ptr_array shuffles = {0};
    int ready = 1;

    master_partition_shuffles(m, s->rdd, s->partitions[i], &shuffles);
    for (size_t k = 0; k < shuffles.n; k++) {
        struct rdd_node *node = shuffles.items[k];
        if (master_shuffle_complete(node->shuffle))
            continue;
        ready = 0;
        struct stage *parent = master_map_stage_for(m, s->job, node);
        if (parent->status == STAGE_COMPLETE || parent->status == STAGE_SKIPPED)
            parent->status = STAGE_PENDING;
    }
    free(shuffles.items);
    return ready;
}

static struct task *new_task(struct master *m, struct stage *s, uint32_t index,
                             struct worker_info *w)
{
    struct task *t = ember_xcalloc(1, sizeof(*t));

    t->id = m->task_base + m->tasks.n + 1;
    t->stage = s;
    t->index = index;
    t->attempt = (uint32_t)s->parts[index].failures;
    t->worker_id = ember_xstrdup(w->id);
    t->host = ember_xstrdup(w->host);
    t->state = TASK_RUNNING;
    t->launch_ms = ember_now_ms();
    ember__task_metrics__init(&t->metrics);
    ptr_array_push(&m->tasks, t);
    ptr_array_push(&s->tasks, t);
    s->parts[index].running = 1;
    w->active++;
    return t;
}

static void launch(struct master *m, struct stage *s, uint32_t i, struct worker_info *w,
                   struct ptr_array *launches)
{
    struct task *t = new_task(m, s, i, w);
    struct launch *l = ember_xcalloc(1, sizeof(*l));

    w->filled_in_pass = m->sched_pass;
    l->channel = w->channel;
    l->task_id = t->id;
    l->worker_id = ember_xstrdup(w->id);
    l->spec = master_task_spec(m, t, w->block_addr, &l->spec_len);
    ptr_array_push(launches, l);
}

/* Assigns pending partitions of one stage to free worker slots. Only a
 * launch takes a slot, so the slots are counted again only after one: a
 * stage of 10,000 partitions is walked without asking each worker each time. */
static void schedule_stage(struct master *m, struct stage *s, struct ptr_array *launches)
{
    uint64_t now = ember_monotonic_ms();
    int ahead = short_tasks(s);
    int free_slots = any_free_slot(m, ahead, now);

    int in_prefix = 1;                 /* all partitions before i running or done */

    if (s->schedule_epoch != m->undo_epoch) {
        s->schedule_epoch = m->undo_epoch;
        s->schedule_from = 0;
    }
    for (uint32_t i = s->schedule_from; i < s->n_parts && free_slots; i++) {
        struct part_state *ps = &s->parts[i];
        if (ps->running || partition_done(s, i)) {
            if (in_prefix)
                s->schedule_from = i + 1;
            continue;
        }
        if (!inputs_ready(m, s, i)) {
            in_prefix = 0;
            continue;
        }
        if (s->status == STAGE_PENDING) {
            s->status = STAGE_ACTIVE;
            if (!s->submitted_ms)
                s->submitted_ms = ember_now_ms();
        }
        if (!ps->pending_since_ms)
            ps->pending_since_ms = now;
        const char *preferred = master_partition_cached_at(m, s->rdd, s->partitions[i]);
        struct worker_info *w = pick_worker(
            m, preferred, now - ps->pending_since_ms >= (uint64_t)m->locality_wait_ms, ahead, now);
        if (w) {
            ps->pending_since_ms = 0;
            launch(m, s, i, w, launches);
            free_slots = any_free_slot(m, ahead, now);
            if (in_prefix)
                s->schedule_from = i + 1;
        } else {
            in_prefix = 0;
        }
    }
}

/* Whether a stage of the job still has partitions neither running nor done
 * after this pass (each stage's cursor says so: partitions below it were
 * running or done, and none can be pending again without an undo_epoch bump,
 * which restarts the cursor). */
static int schedule_job(struct master *m, struct job *job, struct ptr_array *launches)
{
    int pending = 0;

    /* Parents were added after their children: run the deepest first. The
     * list may grow while we go (a lost shuffle's map stage comes back). */
    for (size_t i = job->stages.n; i-- > 0;) {
        struct stage *s = job->stages.items[i];
        if (s->status == STAGE_COMPLETE || s->status == STAGE_SKIPPED || s->status == STAGE_FAILED)
            continue;
        schedule_stage(m, s, launches);
        if (s->schedule_epoch != m->undo_epoch || s->schedule_from < s->n_parts)
            pending = 1;
    }
    return pending;
}

/* One pass over the running jobs (lock held). Jobs never run again once
 * ended, so those before the first running one are not looked at again. */
static void schedule_pass(struct master *m, struct ptr_array *launches)
{
    int pending = 0;

    m->sched_pass++;
    while (m->sched_first_job < m->jobs.n
           && ((struct job *)m->jobs.items[m->sched_first_job])->status != JOB_RUNNING)
        m->sched_first_job++;
    for (size_t i = m->sched_first_job; i < m->jobs.n; i++) {
        struct job *job = m->jobs.items[i];
        if (job->status == JOB_RUNNING && schedule_job(m, job, launches))
            pending = 1;
    }
    m->sched_pending = pending;
}

static void task_not_launched(struct master *m, uint64_t task_id, const char *why)
{
    struct task *t = master_task_by_id(m, task_id);
    struct worker_info *w = t ? master_find_worker(m, t->worker_id) : NULL;

    if (!t || t->state != TASK_RUNNING)
        return;
    t->state = TASK_FAILED;
    t->error = ember_xstrdup(why);
    t->stage->parts[t->index].running = 0;
    m->undo_epoch++;
    if (w && w->active > 0)
        w->active--;
    if (w)                             /* unreachable: don't retry it in a tight loop */
        w->launch_backoff_until_ms = ember_monotonic_ms() + 1000;
}

/* Appends a field's tag and a varint (a length or a value). */
static void append_varint_field(struct ember_buf *out, uint8_t tag, uint64_t value)
{
    uint8_t head[11];
    size_t n = 0;

    head[n++] = tag;
    do {
        head[n++] = (uint8_t)((value & 0x7f) | (value >= 0x80 ? 0x80 : 0));
        value >>= 7;
    } while (value);
    if (ember_buf_append(out, head, n) != 0)
        abort();                       /* no cap: cannot fail */
}

/* Appends `TaskSpecs.tasks` (field 1, length-delimited) holding one packed spec. */
static void append_spec_field(struct ember_buf *out, const struct launch *l)
{
    append_varint_field(out, (1 << 3) | 2, l->spec_len);
    if (ember_buf_append(out, l->spec, l->spec_len) != 0)
        abort();
}

/* Reports a worker sent in its LaunchTasks reply, applied as ReportTasks' are. */
static void launch_reply_reports(struct master *m, const ProtobufCMessage *reply)
{
    const Ember__TaskReports *reports = (const Ember__TaskReports *)reply;

    for (size_t i = 0; reply && i < reports->n_reports; i++) {
        ember_log_debug("task=%llu reported in its launch reply",
                        (unsigned long long)reports->reports[i]->task_id);
        master_task_report(m, reports->reports[i]);
    }
}

/* The calls of one pass's launches: one per worker, LaunchTask for a lone
 * task, LaunchTasks for several (a refusal fails every task of the batch).
 * With report_wait_ms (a caller that waits for the job anyway, never the
 * scheduler thread), every call is a LaunchTasks asking the worker to hold
 * its reply that long for the report of the task it starts at once: a short
 * task then needs no ReportTask call. */
struct launch_calls {
    struct launch **order;             /* grouped by worker, in launch order */
    size_t *first_of, *count_of;       /* call c's launches in order */
    struct ember_buf *specs;
    ember_rpc_unary *calls;
    size_t n_calls;
    struct master *m;                  /* master_send_launches_async's */
    void (*done)(void *);
    void *arg;
};

static struct launch_calls *prepare_launches(struct ptr_array *launches, uint32_t report_wait_ms)
{
    struct launch_calls *b = ember_xcalloc(1, sizeof(*b));

    b->order = ember_xcalloc(launches->n + 1, sizeof(*b->order));
    b->first_of = ember_xcalloc(launches->n + 1, sizeof(*b->first_of));
    b->count_of = ember_xcalloc(launches->n + 1, sizeof(*b->count_of));
    b->specs = ember_xcalloc(launches->n + 1, sizeof(*b->specs));
    b->calls = ember_xcalloc(launches->n + 1, sizeof(*b->calls));
    size_t n_calls = 0, n_order = 0;

    /* Group by worker, keeping launch order within a worker. */
    for (size_t i = 0; i < launches->n; i++) {
        struct launch *first = launches->items[i];
        if (!first)
            continue;                  /* grouped with an earlier one */
        b->first_of[n_calls] = n_order;
        for (size_t k = i; k < launches->n; k++) {
            struct launch *l = launches->items[k];
            if (l && l->channel == first->channel) {
                b->order[n_order++] = l;
                launches->items[k] = NULL;
            }
        }
        b->count_of[n_calls] = n_order - b->first_of[n_calls];
        int batch = b->count_of[n_calls] > 1 || report_wait_ms;
        ember_buf_init(&b->specs[n_calls], 0);
        if (batch)
            for (size_t k = 0; k < b->count_of[n_calls]; k++)
                append_spec_field(&b->specs[n_calls], b->order[b->first_of[n_calls] + k]);
        if (report_wait_ms)           /* TaskSpecs.report_wait_ms, field 2 */
            append_varint_field(&b->specs[n_calls], 2 << 3, report_wait_ms);
        b->calls[n_calls].ch = first->channel;
        b->calls[n_calls].svc = &ember__worker__descriptor;
        b->calls[n_calls].method = batch ? "LaunchTasks" : "LaunchTask";
        b->calls[n_calls].raw = batch ? b->specs[n_calls].data : first->spec;
        b->calls[n_calls].raw_len = batch ? b->specs[n_calls].len : first->spec_len;
        n_calls++;
    }
    b->n_calls = n_calls;
    launches->n = 0;
    return b;
}

/* Once the calls ended: reports in the replies applied, the tasks of failed
 * calls retried by the scheduler; frees b. */
static void apply_launches(struct master *m, struct launch_calls *b)
{
    for (size_t c = 0; c < b->n_calls; c++) {
        const char *details = b->calls[c].details;
        if (b->calls[c].status == GRPC_STATUS_OK && strcmp(b->calls[c].method, "LaunchTasks") == 0)
            launch_reply_reports(m, b->calls[c].reply);
        if (b->calls[c].reply)
            protobuf_c_message_free_unpacked(b->calls[c].reply, NULL);
        ember_buf_free(&b->specs[c]);
        for (size_t k = 0; k < b->count_of[c]; k++) {
            struct launch *l = b->order[b->first_of[c] + k];
            if (b->calls[c].status != GRPC_STATUS_OK) {
                char *why = ember_xasprintf("could not launch on worker %s: %s", l->worker_id,
                                            details && *details ? details : "unreachable");
                ember_log_warn("task=%llu %s", (unsigned long long)l->task_id, why);
                pthread_mutex_lock(&m->lock);
                task_not_launched(m, l->task_id, why);
                pthread_cond_broadcast(&m->work);   /* retried by the scheduler */
                pthread_mutex_unlock(&m->lock);
                free(why);
            }
            free(l->worker_id);
            free(l->spec);
            free(l);
        }
        free(b->calls[c].details);
    }
    free(b->calls);
    free(b->specs);
    free(b->count_of);
    free(b->first_of);
    free(b->order);
    free(b);
}

/* The calls to different workers are made at once: a two-task job on two
 * workers used to wait for the first worker's answer before the second was
 * asked. */
static void send_launches(struct master *m, struct ptr_array *launches, uint32_t report_wait_ms)
{
    struct launch_calls *b = prepare_launches(launches, report_wait_ms);

    ember_rpc_unary_many(b->calls, b->n_calls, 5000);
    apply_launches(m, b);
}

static void send_kills(struct ptr_array *kills)
{
    for (size_t i = 0; i < kills->n; i++) {
        struct kill_request *k = kills->items[i];
        Ember__TaskRef ref = EMBER__TASK_REF__INIT;
        ProtobufCMessage *reply = NULL;
        ref.task_id = k->task_id;
        ember_rpc_call(k->channel, &ember__worker__descriptor, "KillTask", &ref.base, &reply,
                       NULL, NULL, 2000, NULL);
        if (reply)
            protobuf_c_message_free_unpacked(reply, NULL);
        free(k);
    }
    free(kills->items);
}

void *master_scheduler_main(void *arg)
{
    struct master *m = arg;
    struct ptr_array launches = {0};
    uint64_t last_liveness = 0;

    while (!ember_daemon_is_stopping(m->daemon)) {
        struct ptr_array kills;
        pthread_mutex_lock(&m->lock);
        if (ember_monotonic_ms() - last_liveness >= 500) {
            master_check_liveness(m);
            last_liveness = ember_monotonic_ms();
        }
        schedule_pass(m, &launches);
        kills = m->kills;
        memset(&m->kills, 0, sizeof(m->kills));
        if (launches.n == 0 && kills.n == 0) {
            struct timespec until = ember_realtime_after_ms(SCHEDULER_TICK_MS);
            m->sched_idle = 1;
            pthread_cond_timedwait(&m->work, &m->lock, &until);
            m->sched_idle = 0;
        }
        pthread_mutex_unlock(&m->lock);
        send_launches(m, &launches, 0);  /* this thread never waits for reports */
        send_kills(&kills);
    }
    free(launches.items);
    return NULL;
}

void master_schedule_soon(struct master *m, struct ptr_array *launches)
{
    if (m->sched_idle && m->kills.n == 0)
        schedule_pass(m, launches);
    else
        pthread_cond_broadcast(&m->work);
}

void master_send_launches(struct master *m, struct ptr_array *launches, uint32_t report_wait_ms)
{
    if (launches->n)
        send_launches(m, launches, report_wait_ms);
    free(launches->items);
    memset(launches, 0, sizeof(*launches));
}

static void launched(void *arg)
{
    struct launch_calls *b = arg;
    void (*done)(void *) = b->done;
    void *done_arg = b->arg;

    apply_launches(b->m, b);
    done(done_arg);
}

void master_send_launches_async(struct master *m, struct ptr_array *launches,
                                uint32_t report_wait_ms, ember_rpc_ctx *deferred,
                                void (*done)(void *), void *arg)
{
    struct launch_calls *b = prepare_launches(launches, report_wait_ms);

    free(launches->items);
    memset(launches, 0, sizeof(*launches));
    b->m = m;
    b->done = done;
    b->arg = arg;
    ember_rpc_unary_many_async(deferred, b->calls, b->n_calls, 5000, launched, b);
}

static void add_metrics(Ember__TaskMetrics *sum, const Ember__TaskMetrics *m)
{
    sum->duration_ms += m->duration_ms;
    sum->records_in += m->records_in;
    sum->records_out += m->records_out;
    sum->input_bytes += m->input_bytes;
    sum->result_bytes += m->result_bytes;
    sum->shuffle_write_bytes += m->shuffle_write_bytes;
    sum->shuffle_read_local_bytes += m->shuffle_read_local_bytes;
    sum->shuffle_read_remote_bytes += m->shuffle_read_remote_bytes;
    sum->python_ms += m->python_ms;
    sum->object_cache_inputs += m->object_cache_inputs;
}

static void set_location(char **field, const char *addr)
{
    free(*field);
    *field = ember_xstrdup(addr);
}

static void stage_check_complete(struct master *m, struct stage *s)
{
    struct job *job = s->job;

    uint32_t i = s->check_from;

    while (i < s->n_parts && partition_done(s, i))
        i++;
    s->check_from = i;
    if (i < s->n_parts)
        return;
    /* A partition below the cursor may have been undone (output lost). */
    for (i = 0; i < s->n_parts; i++)
        if (!partition_done(s, i)) {
            s->check_from = i;
            return;
        }
    s->status = STAGE_COMPLETE;
    s->completed_ms = ember_now_ms();
    if (s == job->result_stage && job->status == JOB_RUNNING) {
        job->status = JOB_SUCCEEDED;
        job->completed_ms = s->completed_ms;
        pthread_cond_broadcast(&m->job_ended);
        master_journal_job_end(m, job);
        ember_log_info("app=%s job=%u succeeded in %llu ms", job->app->id, job->id,
                       (unsigned long long)(job->completed_ms - job->submitted_ms));
    }
}

static char *human_bytes(uint64_t n)
{
    return ember_xasprintf("%.1f MiB", (double)n / (1024.0 * 1024.0));
}

/* spark.driver.maxResultSize: the driver would have to hold all results. */
static int over_result_limit(struct master *m, struct job *job)
{
    char *got, *limit, *why;
    uint32_t done = 0;

    if (!job->max_result_bytes || job->result_bytes <= job->max_result_bytes)
        return 0;
    for (uint32_t i = 0; i < job->result_stage->n_parts; i++)
        done += (uint32_t)job->results[i].done;
    got = human_bytes(job->result_bytes);
    limit = human_bytes(job->max_result_bytes);
    why = ember_xasprintf("Job aborted due to stage failure: Total size of serialized results of "
                          "%u tasks (%s) is bigger than spark.driver.maxResultSize (%s)",
                          done, got, limit);
    master_fail_job(m, job, job->result_stage, -1, why);
    free(got);
    free(limit);
    free(why);
    return 1;
}

/* Why a successful report cannot be applied, or NULL: a map task must report
 * one length per reduce partition; only a result task may send its output
 * inline, and no more of it than a task may. */
static const char *invalid_report(const struct stage *s, const Ember__TaskReport *rep)
{
    if (s->out_shuffle && rep->n_partition_lengths != s->out_shuffle->num_reduce)
        return "map output has no partition lengths";
    if (rep->result_inline && s->out_shuffle)
        return "a map task sent its output inline";
    if (rep->result_inline && rep->result_data.len > MASTER_INLINE_TASK_MAX)
        return "the task's inline result is over the master's limit";
    return NULL;
}

static void task_succeeded(struct master *m, struct task *t, const Ember__TaskReport *rep)
{
    struct stage *s = t->stage;

    t->state = TASK_SUCCEEDED;
    s->num_complete++;
    if (rep->metrics && rep->metrics->duration_ms < SHORT_TASK_MS)
        s->num_short++;
    /* Only attempts that complete their partition get here: a report from an
     * attempt already written off (lost worker, killed job) was ignored. */
    if (rep->accumulator_updates.len) {
        char *b64 = ember_base64_encode(rep->accumulator_updates.data,
                                        rep->accumulator_updates.len);
        json_array_append_new(s->job->accumulator_updates, json_string(b64));
        free(b64);
    }
    for (size_t i = 0; i < rep->n_cached; i++)
        master_cache_record(m, rep->cached[i]);
    add_metrics(&s->totals, rep->metrics ? rep->metrics : &t->metrics);
    if (s->out_shuffle) {
        struct map_output *o = &s->out_shuffle->outputs[s->partitions[t->index]];
        o->done = 1;
        set_location(&o->block_addr, rep->block_addr);
        free(o->lengths);
        o->lengths = ember_xcalloc(s->out_shuffle->num_reduce, sizeof(uint64_t));
        memcpy(o->lengths, rep->partition_lengths,
               s->out_shuffle->num_reduce * sizeof(uint64_t));
    } else {
        struct result_location *r = &s->job->results[t->index];
        r->done = 1;
        if (rep->result_inline) {
            /* checked by valid_report: at most MASTER_INLINE_TASK_MAX bytes */
            (void)master_result_keep_inline(m, s->job, t->index, rep->result_data.data,
                                            rep->result_data.len);
        } else {
            master_result_clear(m, s->job, t->index);
            r->size = rep->metrics ? rep->metrics->result_bytes : 0;
            set_location(&r->block_addr, rep->block_addr);
        }
        s->job->result_bytes += r->size;
        if (over_result_limit(m, s->job))
            return;
    }
    stage_check_complete(m, s);
}

static void task_failed(struct master *m, struct task *t, const Ember__TaskReport *rep)
{
    struct stage *s = t->stage;
    struct part_state *ps = &s->parts[t->index];

    t->state = TASK_FAILED;
    t->error = ember_xstrdup(rep->error);
    s->num_failed++;
    if (rep->fetch_failed && *rep->missing_block) {
        /* Evicted or lost: the next attempt computes it from lineage. */
        master_cache_forget(m, rep->missing_block, NULL);
        return;
    }
    if (rep->fetch_failed) {
        /* Not the task's fault: the map output is gone. Recompute it. */
        for (size_t i = 0; i < s->parents.n; i++) {
            struct stage *p = s->parents.items[i];
            for (uint32_t k = 0; k < p->out_shuffle->num_maps; k++)
                if (p->out_shuffle->outputs[k].block_addr
                    && strstr(rep->error, p->out_shuffle->outputs[k].block_addr))
                    p->out_shuffle->outputs[k].done = 0;
        }
        m->undo_epoch++;
        ember_log_warn("task=%llu fetch failed, map outputs will be recomputed: %.200s",
                       (unsigned long long)t->id, rep->error);
        return;
    }
    if (rep->worker_fault) {
        ember_log_warn("task=%llu failed on worker %s, not counted: %.200s",
                       (unsigned long long)t->id, t->worker_id, rep->error);
        return;
    }
    if (++ps->failures >= m->max_failures) {
        char *why = ember_xasprintf(
            "Job aborted due to stage failure: Task %u in stage %u failed %d times, most recent "
            "failure: Lost task %u.%u in stage %u (TID %llu, %s): %s",
            s->partitions[t->index], s->id, ps->failures, s->partitions[t->index], t->attempt,
            s->id, (unsigned long long)t->id, t->host, rep->error);
        master_fail_job(m, s->job, s, (int)s->partitions[t->index], why);
        free(why);
    }
}

void master_task_report(struct master *m, const Ember__TaskReport *rep)
{
    struct task *t;
    struct worker_info *w;

    pthread_mutex_lock(&m->lock);
    t = master_task_by_id(m, rep->task_id);
    if (!t) {                          /* a task of an earlier master, or nonsense */
        pthread_mutex_unlock(&m->lock);
        return;
    }
    w = master_find_worker(m, t->worker_id);
    if (t->state == TASK_RUNNING) {
        enum stage_status status_before = t->stage->status;
        int short_before = short_tasks(t->stage);
        if (w && w->active > 0)
            w->active--;
        t->stage->parts[t->index].running = 0;
        if (rep->metrics) {
            t->metrics = *rep->metrics;
            t->metrics.base.unknown_fields = NULL;
            t->metrics.base.n_unknown_fields = 0;
        }
        t->duration_ms = t->metrics.duration_ms;
        if (w) {
            w->total_ms += t->duration_ms;
            if (rep->ok)
                w->completed++;
            else
                w->failed++;
        }
        const char *invalid = rep->ok ? invalid_report(t->stage, rep) : NULL;
        if (t->stage->job->status != JOB_RUNNING)
            t->state = rep->ok ? TASK_SUCCEEDED : TASK_KILLED;
        else if (invalid)
            task_failed(m, t, &(Ember__TaskReport){.error = (char *)invalid});
        else if (rep->ok)
            task_succeeded(m, t, rep);
        else
            task_failed(m, t, rep);
        /* The scheduler is woken only when the report can make a launch
         * possible: the partition is pending again; or some partition was
         * left waiting (for a slot, an input or locality) at the last pass
         * and this report freed a slot that a pass could fill (outside a
         * filling pass no worker takes more than AHEAD_LOW per core), ended
         * the stage (its children's inputs are ready) or made the stage's
         * tasks short (launching ahead begins). Anything else that makes
         * work wakes it itself. */
        if (!partition_done(t->stage, t->index)) {
            m->undo_epoch++;           /* pending again: schedule cursors restart */
            pthread_cond_broadcast(&m->work);
        } else if (m->sched_pending
                   && (!w || w->active < w->cores * AHEAD_LOW || t->stage->status != status_before
                       || short_tasks(t->stage) != short_before)) {
            pthread_cond_broadcast(&m->work);
        }
    }
    pthread_mutex_unlock(&m->lock);
}

void master_fail_job(struct master *m, struct job *job, struct stage *stage, int partition,
                     const char *why)
{
    job->status = JOB_FAILED;
    job->completed_ms = ember_now_ms();
    free(job->error);
    job->error = ember_xstrdup(why);
    job->failed_stage = stage ? (int)stage->id : -1;
    job->failed_partition = partition;
    master_results_release(m, job);    /* a failed job has no results to fetch */
    pthread_cond_broadcast(&m->job_ended);
    for (size_t i = 0; i < job->stages.n; i++) {
        struct stage *s = job->stages.items[i];
        /* The failing stage, and any other that was running (a cancel names none). */
        if (s == stage || s->status == STAGE_ACTIVE) {
            s->status = STAGE_FAILED;
            s->completed_ms = job->completed_ms;
            free(s->failure);
            s->failure = ember_xstrdup(why);
        }
        for (size_t k = 0; k < s->tasks.n; k++) {
            struct task *t = s->tasks.items[k];
            struct worker_info *w = master_find_worker(m, t->worker_id);
            if (t->state != TASK_RUNNING || !w)
                continue;
            struct kill_request *kr = ember_xcalloc(1, sizeof(*kr));
            kr->channel = w->channel;
            kr->task_id = t->id;
            ptr_array_push(&m->kills, kr);
        }
    }
    pthread_cond_broadcast(&m->work);
    master_journal_job_end(m, job);
    ember_log_info("app=%s job=%u failed: %.300s", job->app->id, job->id, why);
}

void master_worker_tasks_lost(struct master *m, struct worker_info *w, const char *why)
{
    for (size_t i = 0; i < m->tasks.n; i++) {
        struct task *t = m->tasks.items[i];
        if (t->state != TASK_RUNNING || strcmp(t->worker_id, w->id) != 0)
            continue;
        t->state = TASK_FAILED;
        t->error = ember_xasprintf("worker %s lost (%s)", w->id, why);
        t->stage->parts[t->index].running = 0;
        m->undo_epoch++;
    }
    w->active = 0;
    pthread_cond_broadcast(&m->work);
}

void master_worker_lost(struct master *m, struct worker_info *w)
{
    master_worker_tasks_lost(m, w, "no heartbeat");
    master_blockd_lost(m, w->block_addr);
}

void master_blockd_lost(struct master *m, const char *address)
{
    master_cache_forget_address(m, address);
    for (size_t i = 0; i < m->jobs.n; i++) {
        struct job *job = m->jobs.items[i];
        for (size_t k = 0; k < job->stages.n; k++) {
            struct stage *s = job->stages.items[k];
            struct shuffle *sh = s->out_shuffle;
            for (uint32_t p = 0; sh && p < sh->num_maps; p++)
                if (sh->outputs[p].block_addr && strcmp(sh->outputs[p].block_addr, address) == 0)
                    sh->outputs[p].done = 0;
        }
        if (job->status != JOB_RUNNING)
            continue;
        for (uint32_t p = 0; p < job->result_stage->n_parts; p++)
            if (job->results[p].block_addr && strcmp(job->results[p].block_addr, address) == 0)
                job->results[p].done = 0;
    }
    m->undo_epoch++;
    pthread_cond_broadcast(&m->work);
}
