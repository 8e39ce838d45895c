/* One task attempt on its own thread: send the functions and input to a
 * pyexec, collect its output frames into blocks, store them in the paired
 * block manager and report the outcome to the master. */
#define _GNU_SOURCE
#include "worker.h"

#include <assert.h>
#include <arpa/inet.h>
#include <jansson.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "log.h"
#include "master.pb-c.h"

/* A LaunchTasks reply held for the report of the task run on the call's
 * thread (worker_task_reply): the master that asked for it waits anyway. */
struct launch_reply {
    ember_rpc_ctx *ctx;
    uint64_t deadline_ms;        /* ember_monotonic_ms() after which it goes without */
    int sent;
};

struct task_run {
    struct task_run *next;       /* in the worker's queue of tasks waiting for a runner */
    struct worker *w;
    struct launch_reply *reply;  /* borrowed: the reply waiting for this task's report, or NULL */
    uint64_t *partition_lengths; /* map tasks: bytes of each reduce partition */
    Ember__TaskSpec *spec;
    struct pyexec_slot *slot;
    struct task_input_result input;
    struct ember_buf *buckets;   /* one per reduce partition, or one result block */
    size_t n_buckets;
    struct ember_buf *caches;    /* one per spec->cache_writes entry */
    struct worker_memfd *cache_fds; /* the same blocks when read into a memfd instead */
    Ember__CachedBlock *cached;  /* what store_caches stored, for the report */
    size_t n_cached;
    char *error;                 /* why the task failed; NULL on success */
    int worker_fault;            /* the failure was ours (storing output), not the task's */
    int result_inline;           /* the result goes in the report, not to the block manager */
    int pyexec_lost;             /* died or out of protocol step: replace it */
    uint64_t records_in, records_out, python_ms, output_bytes;
    struct object_plan objects;  /* cached inputs the pyexec has as objects (worker_objects.c) */
    json_t *reported_objects;    /* what it said it keeps after the task */
    uint8_t *stored;             /* per cache write: stored in our block manager */
    uint64_t object_inputs;      /* inputs it was served from its objects */
    uint8_t *accumulators;       /* pickled updates from the metrics frame */
    size_t accumulators_len;
    size_t header_bytes;         /* written to the pyexec by send_header */
    struct ember_buf held;       /* frames for the pyexec not written yet (write_held) */
};

/* A header up to this size is held and written with the inputs in one go. */
#define HELD_HEADER_MAX (64 * 1024)

static int hold_frame(struct ember_buf *held, const void *p, size_t n)
{
    uint32_t be = htonl((uint32_t)n);
    int rc = ember_buf_append(held, &be, 4);

    return rc == 0 ? ember_buf_append(held, p, n) : rc;
}

static int send_header(struct task_run *t, const struct broadcast_load *loads, size_t n_loads)
{
    const Ember__TaskSpec *s = t->spec;
    struct ember_buf header;
    const char *text;
    size_t text_len;
    int rc;

    if (!worker_header_valid(s))
        return EMBER_EINVAL;           /* the master sends valid JSON: a bug, not user input */
    worker_objects_plan(t->w, t->slot, s, &t->objects);
    t->input.from_objects = t->objects.from_objects;
    ember_buf_init(&header, 0);
    rc = worker_header_json(s, loads, n_loads, &t->objects,
                            worker_memory_soft_share(t->w->memory, t->w->cores), &header);
    if (rc != 0) {
        ember_buf_free(&header);
        return rc;
    }
    text = (const char *)header.data;
    text_len = header.len;
    t->header_bytes = 4 + text_len + 4 * (s->n_funcs + 1 + n_loads) + s->partitioner.len;
    for (size_t i = 0; i < s->n_funcs; i++)
        t->header_bytes += s->funcs[i].len;
    for (size_t i = 0; i < n_loads; i++)
        t->header_bytes += loads[i].value.len;
    if (t->header_bytes <= HELD_HEADER_MAX) {
        /* Small: held, to go with the inputs in one write (see execute). */
        rc = hold_frame(&t->held, text, text_len);
        for (size_t i = 0; rc == 0 && i < s->n_funcs; i++)
            rc = hold_frame(&t->held, s->funcs[i].data, s->funcs[i].len);
        if (rc == 0 && s->num_reduce > 0)
            rc = hold_frame(&t->held, s->partitioner.data, s->partitioner.len);
        for (size_t i = 0; rc == 0 && i < n_loads; i++)
            rc = hold_frame(&t->held, loads[i].value.data, loads[i].value.len);
        ember_buf_free(&header);
        return rc;
    }
    rc = ember_frame_write(t->slot->to_child, text, text_len);
    ember_buf_free(&header);
    for (size_t i = 0; rc == 0 && i < s->n_funcs; i++)
        rc = ember_frame_write(t->slot->to_child, s->funcs[i].data, s->funcs[i].len);
    if (rc == 0 && s->num_reduce > 0)
        rc = ember_frame_write(t->slot->to_child, s->partitioner.data, s->partitioner.len);
    for (size_t i = 0; rc == 0 && i < n_loads; i++)
        rc = ember_frame_write(t->slot->to_child, loads[i].value.data, loads[i].value.len);
    return rc;
}

/* Writes what send_header and hold_inline_inputs held, in one write(): each
 * write wakes the pyexec, which used to read a one-element task's header,
 * function, input and END a few bytes at a time. */
static int write_held(struct task_run *t)
{
    int rc = 0;

    if (t->held.len)
        rc = ember_write_full(t->slot->to_child, t->held.data, t->held.len);
    ember_buf_free(&t->held);
    ember_buf_init(&t->held, 0);
    return rc;
}

/* worker_feed_input for inputs that all came in the spec, appended to what is held. */
static int hold_inline_inputs(struct task_run *t)
{
    const Ember__TaskSpec *s = t->spec;
    int rc = 0;

    for (size_t i = 0; rc == 0 && i < s->n_inputs; i++) {
        if (!t->objects.from_objects || !t->objects.from_objects[i]) {
            t->input.input_bytes += s->inputs[i]->data.len;
            rc = hold_frame(&t->held, s->inputs[i]->data.data, s->inputs[i]->data.len);
        }
        if (rc == 0) {
            uint32_t end = htonl((uint32_t)EMBER_FRAME_END);
            rc = ember_buf_append(&t->held, &end, 4);
        }
    }
    return rc;
}

/* Whether the task's inputs all came in its spec and fit in the pipe with the
 * header before them: then writing them cannot block, whatever the pyexec
 * does, and needs no feeder thread (a one-element task's input is a few bytes). */
static int inputs_fit_pipe(const struct task_run *t)
{
    const Ember__TaskSpec *s = t->spec;
    int capacity = t->slot->pipe_capacity;
    size_t bytes = t->header_bytes;

    for (size_t i = 0; i < s->n_inputs; i++) {
        if (s->inputs[i]->kind != EMBER__TASK_INPUT__KIND__DATA)
            return 0;
        bytes += 8 + s->inputs[i]->data.len;   /* its frame and END */
    }
    return capacity > 0 && bytes + 256 <= (size_t)capacity;
}

static void *feeder_main(void *arg)
{
    struct task_run *t = arg;
    worker_feed_input(t->w, t->spec, t->slot, &t->input);
    return NULL;
}

/* Appends a frame (length + payload) to a block. */
static int append_frame(struct ember_buf *block, const uint8_t *p, size_t n)
{
    uint32_t be = htonl((uint32_t)n);
    int rc = ember_buf_append(block, &be, 4);
    return rc == 0 ? ember_buf_append(block, p, n) : rc;
}

static int route_data_frame(struct task_run *t, const struct ember_buf *frame)
{
    uint32_t be, reduce;

    if (t->spec->num_reduce == 0)
        return append_frame(&t->buckets[0], frame->data, frame->len);
    if (frame->len < 4)
        return EMBER_EINVAL;
    memcpy(&be, frame->data, 4);
    reduce = ntohl(be);
    if (reduce >= t->spec->num_reduce)
        return EMBER_EINVAL;
    return append_frame(&t->buckets[reduce], frame->data + 4, frame->len - 4);
}

/* A frame after the CACHE marker: 4-byte slot, then a batch for that cache block.
 * The first batch of a block (often its only one: a partition kept as one numpy
 * array is a single 20 MB pickle) becomes the block without a copy: its slot
 * number is overwritten with the batch's length, and the read buffer handed over. */
static int route_cache_frame(struct task_run *t, struct ember_buf *frame)
{
    uint32_t be, slot;

    if (frame->len < 4)
        return EMBER_EINVAL;
    memcpy(&be, frame->data, 4);
    slot = ntohl(be);
    if (slot >= t->spec->n_cache_writes)
        return EMBER_EINVAL;
    struct ember_buf *cache = &t->caches[slot];
    /* Only a buffer mostly filled by this frame: one grown by an earlier large
     * frame would be held, mostly empty, until the block is stored. */
    if (cache->len == 0 && cache->cap == 0 && frame->cap == 0 &&
        frame->alloc <= 2 * frame->len) {
        struct ember_buf empty = *cache;

        be = htonl((uint32_t)(frame->len - 4));
        memcpy(frame->data, &be, 4);
        *cache = *frame;
        *frame = empty;
        return 0;
    }
    return append_frame(cache, frame->data + 4, frame->len - 4);
}

/* A block's first cache frame of at least this size goes into a memfd. */
#define MEMFD_CACHE_MIN_BYTES (1 << 20)

/* A cache frame (4-byte slot, then a batch) that starts its block with a batch
 * of 1 MiB or more, and every later one of that block, goes from the pipe
 * straight into a memfd (worker_pipe_splice), laid out as route_cache_frame
 * lays out the buffer: each batch after its 4-byte length. The block manager
 * then takes that memfd itself (worker_store_memfd). Before, a KMeans
 * partition's 20 MB pickle was read into a fresh buffer (5,000 page faults)
 * and copied again into a memfd. *handled 0: the frame was not taken. */
static int splice_cache_frame(struct task_run *t, const struct worker_pipe_wait *wait,
                              int *handled)
{
    uint32_t head[2], be;
    struct worker_memfd *m;
    int32_t len;
    uint32_t slot;
    int rc;

    *handled = 0;
    if (worker_pipe_peek(t->slot, head, sizeof(head), wait) != 0)
        return 0;                      /* the usual read meets the same end */
    len = (int32_t)ntohl(head[0]);
    slot = ntohl(head[1]);
    if (len < 4 || len > EMBER_FRAME_MAX || slot >= t->spec->n_cache_writes)
        return 0;
    m = &t->cache_fds[slot];
    if (m->fd < 0) {
        if ((size_t)len - 4 < MEMFD_CACHE_MIN_BYTES || t->caches[slot].len != 0
            || !worker_memfd_wanted(t->w, t->spec->cache_writes[slot]->storage)
            || worker_memfd_open(m) != 0)
            return 0;
    }
    worker_pipe_skip(t->slot, sizeof(head));
    *handled = 1;
    be = htonl((uint32_t)(len - 4));
    rc = ember_write_full(m->fd, &be, 4);
    if (rc == 0)
        rc = worker_pipe_splice(t->slot, m->fd, (size_t)len - 4, wait);
    if (rc != 0)
        return EMBER_EIO;
    m->len += (size_t)len;
    return 0;
}

static void parse_metrics(struct task_run *t, const struct ember_buf *frame)
{
    struct worker_metrics m;

    if (!worker_metrics_parse((const char *)frame->data, frame->len, &m))
        return;
    if (m.objects) {
        json_decref(t->reported_objects);
        t->reported_objects = m.objects;
        m.objects = NULL;
    }
    t->object_inputs = m.object_inputs;
    t->records_in = m.records_in;
    t->records_out = m.records_out;
    t->python_ms = m.python_ms;
    if (m.accumulators && ember_base64_decode(m.accumulators, strlen(m.accumulators),
                                              &t->accumulators, &t->accumulators_len) != 0)
        ember_log_warn("task=%llu accumulator updates are not valid base64",
                       (unsigned long long)t->spec->task_id);
    worker_metrics_free(&m);
}

/* Sends the held launch reply, with rep (borrowed) or no report. 1 when the
 * master has it; then rep must not be sent again. */
static int send_reply(struct task_run *t, const Ember__TaskReport *rep)
{
    Ember__TaskReports reports = EMBER__TASK_REPORTS__INIT;
    Ember__TaskReport *only = (Ember__TaskReport *)rep;
    ember_rpc_ctx *ctx = t->reply->ctx;

    if (rep) {
        reports.reports = &only;
        reports.n_reports = 1;
    }
    t->reply->sent = 1;
    t->reply = NULL;
    ember_rpc_send(ctx, &reports.base);
    return ember_rpc_reply_now(ctx);
}

/* The task will not be reported in its launch reply (out of time, or it is
 * about to call another daemon, which may take any time): the reply goes
 * now, and the task reports the usual way. */
static void reply_without_report(struct task_run *t)
{
    ember_rpc_release_listener();      /* the task goes on: others serve calls */
    if (t->reply)
        (void)send_reply(t, NULL);
}

/* Before the task thread blocks reading its pyexec: reports of earlier tasks
 * that wait for company are sent once due, while the pyexec works. */
static void report_when_due(struct worker *w, int fd)
{
    int ms = worker_report_due_in_ms(w);
    struct pollfd readable = {.fd = fd, .events = POLLIN};

    if (ms < 0)
        return;
    if (ms > 0 && poll(&readable, 1, ms) != 0)
        return;                        /* output first: the reports wait for the next read */
    worker_report_flush(w, 0);
}

/* Before a read that may block: a held launch reply waits for the pyexec's
 * output until its deadline, then goes without the report. */
static void before_read(void *arg, int fd)
{
    struct task_run *t = arg;

    if (t->reply) {
        uint64_t now = ember_monotonic_ms();
        struct pollfd readable = {.fd = fd, .events = POLLIN};
        if (now < t->reply->deadline_ms
            && poll(&readable, 1, (int)(t->reply->deadline_ms - now)) > 0)
            return;                    /* output (or the end) is there: the reply waits */
        reply_without_report(t);
    }
    report_when_due(t->w, fd);
}

/* Reads output frames until END or ERROR and the one frame after it. */
static void collect_output(struct task_run *t)
{
    const struct worker_pipe_wait wait = {before_read, t};
    struct ember_buf frame;
    int32_t marker = 0, trailer_marker = 0;
    struct pyexec_slot *slot = t->slot;
    int rc;

    ember_buf_init(&frame, 0);
    do {
        rc = worker_pipe_read_frame(slot, &frame, &marker, &wait);
        if (rc == 0 && marker == EMBER_FRAME_CACHE) {
            int spliced;
            rc = splice_cache_frame(t, &wait, &spliced);
            if (spliced) {
                marker = 0;
                continue;
            }
            rc = worker_pipe_read_frame(slot, &frame, &marker, &wait);
            if (rc == 0)
                rc = marker == 0 ? route_cache_frame(t, &frame) : EMBER_EIO;
            continue;
        }
        if (rc == 0 && marker == 0)
            rc = route_data_frame(t, &frame);
    } while (rc == 0 && marker == 0);
    /* END is followed by the metrics frame, ERROR by the traceback. */
    if (rc == 0)
        rc = worker_pipe_read_frame(slot, &frame, &trailer_marker, &wait);
    if (rc != 0 || trailer_marker != 0)
        t->pyexec_lost = 1;
    else if (marker == EMBER_FRAME_END)
        parse_metrics(t, &frame);
    else
        t->error = ember_xasprintf("%.*s", (int)frame.len, (const char *)frame.data);
    ember_buf_free(&frame);
}

/* Storing more than this may take a while: reports waiting for company go first. */
#define LONG_STORE_BYTES (1 << 20)

/* A map task's buckets go out as one block, reduce partitions one after
 * another (their lengths travel in the report); a result task's as one. */
static void store_outputs(struct task_run *t)
{
    const Ember__TaskSpec *s = t->spec;
    char *id = s->num_reduce ? ember_xasprintf("shuffle_%u_%u", s->shuffle_id, s->partition)
                             : ember_xasprintf("result_%u_%u", s->job_id, s->partition);

    if (s->num_reduce)
        t->partition_lengths = ember_xcalloc(t->n_buckets, sizeof(uint64_t));
    for (size_t i = 0; i < t->n_buckets; i++) {
        if (t->partition_lengths)
            t->partition_lengths[i] = t->buckets[i].len;
        t->output_bytes += t->buckets[i].len;
    }
    /* A small result rides in the report: no PutBlock now, no GetBlock later. */
    if (!s->num_reduce && s->inline_result_limit && t->output_bytes <= s->inline_result_limit) {
        t->result_inline = 1;
        free(id);
        return;
    }
    /* Earlier tasks' reports do not wait for a long store; a short one sends them when due. */
    reply_without_report(t);
    worker_report_flush(t->w, t->output_bytes > LONG_STORE_BYTES);
    if (worker_store_block(t->w, t->w->block_addr, id, EMBER__BLOCK_STORAGE__PINNED, t->buckets,
                           t->n_buckets, &t->error) != 0) {
        t->worker_fault = 1;
        ember_log_error("task=%llu %s", (unsigned long long)s->task_id, t->error);
    }
    free(id);
}

/* Stores cache write i's block (from its memfd or its buffer) at address. */
static int store_cache(struct task_run *t, size_t i, const char *address, char **error)
{
    const Ember__CacheWrite *cw = t->spec->cache_writes[i];

    if (t->cache_fds[i].fd >= 0) {
        /* splice_cache_frame opens the memfd only for a block's first frame. */
        assert(t->caches[i].len == 0);
        return worker_store_memfd(t->w, address, cw->block_id, cw->storage, &t->cache_fds[i],
                                  error);
    }
    return worker_store_block(t->w, address, cw->block_id, cw->storage, &t->caches[i], 1, error);
}

/* Stores each cached partition locally, and a copy where the master asked. */
static void store_caches(struct task_run *t)
{
    const Ember__TaskSpec *s = t->spec;

    t->cached = ember_xcalloc(s->n_cache_writes + 1, sizeof(*t->cached));
    t->stored = ember_xcalloc(s->n_cache_writes + 1, 1);
    uint64_t bytes = 0;
    for (size_t i = 0; i < s->n_cache_writes; i++)
        bytes += t->caches[i].len + t->cache_fds[i].len;
    if (s->n_cache_writes) {
        reply_without_report(t);
        worker_report_flush(t->w, bytes > LONG_STORE_BYTES);
    }
    for (size_t i = 0; i < s->n_cache_writes && !t->error; i++) {
        const Ember__CacheWrite *cw = s->cache_writes[i];
        Ember__CachedBlock *cb = &t->cached[t->n_cached];
        ember__cached_block__init(cb);
        cb->block_id = cw->block_id;
        cb->size = t->caches[i].len + t->cache_fds[i].len;
        cb->locations = ember_xcalloc(2, sizeof(char *));
        /* A cache that cannot be stored costs a recomputation later, not the task. */
        char *error = NULL;
        if (store_cache(t, i, t->w->block_addr, &error) == 0) {
            cb->locations[cb->n_locations++] = t->w->block_addr;
            t->stored[i] = 1;
        }
        if (*cw->replica_addr && store_cache(t, i, cw->replica_addr, &error) == 0)
            cb->locations[cb->n_locations++] = cw->replica_addr;
        if (error)
            ember_log_warn("task=%llu %s", (unsigned long long)s->task_id, error);
        free(error);
        t->n_cached++;
    }
}

static void report(struct task_run *t, uint64_t duration_ms)
{
    Ember__TaskReport rep = EMBER__TASK_REPORT__INIT;
    Ember__TaskMetrics m = EMBER__TASK_METRICS__INIT;
    const Ember__TaskSpec *s = t->spec;

    m.duration_ms = duration_ms;
    m.records_in = t->records_in;
    m.records_out = t->records_out;
    m.input_bytes = t->input.input_bytes;
    m.python_ms = t->python_ms;
    m.object_cache_inputs = t->object_inputs;
    m.shuffle_read_local_bytes = t->input.local_bytes;
    m.shuffle_read_remote_bytes = t->input.remote_bytes;
    if (s->num_reduce)
        m.shuffle_write_bytes = t->output_bytes;
    else
        m.result_bytes = t->output_bytes;
    rep.task_id = s->task_id;
    rep.worker_id = t->w->id;
    rep.ok = t->error == NULL;
    rep.error = t->error ? t->error : "";
    rep.metrics = &m;
    rep.block_addr = t->w->block_addr;
    rep.fetch_failed = t->input.fetch_failed;
    rep.failed_map_index = t->input.failed_map_index;
    if (!t->error && t->n_cached) {
        rep.cached = ember_xcalloc(t->n_cached, sizeof(*rep.cached));
        for (size_t i = 0; i < t->n_cached; i++)
            rep.cached[rep.n_cached++] = &t->cached[i];
    }
    rep.missing_block = t->input.missing_block ? t->input.missing_block : "";
    rep.worker_fault = t->worker_fault;
    rep.accumulator_updates.data = t->accumulators;
    rep.accumulator_updates.len = t->error ? 0 : t->accumulators_len;
    if (t->result_inline && !t->error) {
        rep.result_inline = 1;
        rep.result_data.data = t->buckets[0].data;
        rep.result_data.len = t->buckets[0].len;
    }
    if (t->partition_lengths && !t->error) {
        rep.partition_lengths = t->partition_lengths;
        rep.n_partition_lengths = t->n_buckets;
    }
    if (t->reply && send_reply(t, &rep))
        ember_log_debug("task=%llu reported in its launch reply", (unsigned long long)rep.task_id);
    else
        worker_report_post(t->w, &rep);   /* also when the reply may not have arrived: the
                                           * master ignores a report of a task it wrote off */
    free(rep.cached);
}

/* Runs the attempt in the slot; afterwards t->error says whether it failed. */
static void execute(struct task_run *t)
{
    struct broadcast_load *loads = NULL;
    size_t n_loads = 0;
    pthread_t feeder;
    int rc;

    if (worker_broadcasts_to_load(t->w, t->spec, t->slot, &loads, &n_loads, &t->error) != 0)
        return;
    rc = send_header(t, loads, n_loads);
    if (rc == 0)
        worker_broadcasts_loaded(t->slot, loads, n_loads);
    worker_broadcast_loads_free(loads, n_loads);
    if (rc == EMBER_EINVAL) {          /* nothing was written: the pyexec stays in step */
        t->error = ember_xstrdup("malformed task: its plan is not JSON or its application id "
                                 "is not UTF-8");
        return;
    }

    if (rc == 0 && inputs_fit_pipe(t)) {
        rc = hold_inline_inputs(t);
        if (rc == 0)
            rc = write_held(t);
        if (rc == 0)
            collect_output(t);
        else
            t->pyexec_lost = 1;
    } else if (rc == 0 && (rc = write_held(t)) == 0
               && pthread_create(&feeder, NULL, feeder_main, t) == 0) {
        collect_output(t);
        pthread_join(feeder, NULL);
    } else {
        t->pyexec_lost = 1;
    }
    if (t->pyexec_lost) {
        char *how = worker_pool_replace(t->w->pool, t->slot);
        free(t->error);
        /* An input failure killed the pyexec on purpose: its reason wins. */
        if (t->input.error) {
            t->error = t->input.error;
            t->input.error = NULL;
            free(how);
        } else {
            t->error = how;
        }
    }
}

/* Whether the task calls other daemons before its pyexec's output is read
 * (broadcasts, block inputs): then reports waiting for company go first. */
static int calls_out_first(const Ember__TaskSpec *s)
{
    if (s->n_broadcasts)
        return 1;
    for (size_t i = 0; i < s->n_inputs; i++)
        if (s->inputs[i]->kind != EMBER__TASK_INPUT__KIND__DATA)
            return 1;
    return 0;
}

static void task_free(struct task_run *t)
{
    for (size_t i = 0; i < t->n_buckets; i++)
        ember_buf_free(&t->buckets[i]);
    free(t->buckets);
    for (size_t i = 0; i < t->spec->n_cache_writes; i++) {
        ember_buf_free(&t->caches[i]);
        worker_memfd_close(&t->cache_fds[i]);
    }
    free(t->caches);
    free(t->cache_fds);
    for (size_t i = 0; i < t->n_cached; i++)
        free(t->cached[i].locations);
    free(t->cached);
    free(t->partition_lengths);
    free(t->accumulators);
    worker_object_plan_free(&t->objects);
    json_decref(t->reported_objects);
    free(t->stored);
    ember_buf_free(&t->held);
    free(t->error);
    free(t->input.error);
    free(t->input.missing_block);
    ember__task_spec__free_unpacked(t->spec, NULL);
    free(t);
}

/* Runs the attempt on the calling thread, posts its report (not sent yet)
 * and frees t. 1 when it failed. */
static int run_task(struct task_run *t)
{
    Ember__TaskSpec *s = t->spec;
    uint64_t started;
    int killed = 0, failed;

    ember_log_debug("app=%s job=%u stage=%u task=%llu partition=%u attempt=%u starting", s->app_id,
                    s->job_id, s->stage_id, (unsigned long long)s->task_id, s->partition,
                    s->attempt);
    if (calls_out_first(s)) {
        reply_without_report(t);
        worker_report_flush(t->w, 1);
    }
    /* A task launched ahead waits here for its slot; its run time starts now. */
    t->slot = worker_pool_acquire_unless_killed(t->w->pool, s->task_id, worker_objects_score, s,
                                                &killed);
    started = ember_monotonic_ms();
    if (killed)
        t->error = ember_xstrdup("killed before it started (its job ended)");
    else if (!t->slot)
        t->error = ember_xstrdup("worker is shutting down");
    else {
        execute(t);
        worker_pool_python_done(t->w->pool, t->slot);
    }
    if (!t->error)
        store_outputs(t);
    if (!t->error)
        store_caches(t);
    if (t->slot && !t->pyexec_lost && t->objects.from_objects)
        worker_objects_after_task(t->w, t->slot, s, &t->objects,
                                  t->error ? NULL : t->reported_objects, t->stored);
    if (t->slot)
        worker_pool_release(t->w->pool, t->slot);
    if (t->error)
        ember_log_info("app=%s job=%u stage=%u task=%llu partition=%u failed: %.200s", s->app_id,
                       s->job_id, s->stage_id, (unsigned long long)s->task_id, s->partition,
                       t->error);
    report(t, ember_monotonic_ms() - started);
    failed = t->error != NULL;
    task_free(t);
    return failed;
}

/* Counted from worker_task_start until its report was posted and, for the
 * last task of a runner, sent: worker_wait_idle then finds no call on its way. */
static void task_finished(struct worker *w)
{
    pthread_mutex_lock(&w->lock);
    if (--w->running_tasks == 0)
        pthread_cond_broadcast(&w->idle);
    pthread_mutex_unlock(&w->lock);
}

/* The first task waiting for a runner, or NULL: then the caller stops being one. */
static struct task_run *next_queued(struct worker *w)
{
    struct task_run *t;

    pthread_mutex_lock(&w->queue_lock);
    t = w->queue_head;
    if (t) {
        w->queue_head = t->next;
        if (!w->queue_head)
            w->queue_tail = NULL;
    } else {
        w->runners--;
    }
    pthread_mutex_unlock(&w->queue_lock);
    return t;
}

/* A runner runs its task, then the queued ones in launch order, each right
 * after the one before on the slot it frees: a task launched ahead costs no
 * thread wakeup. A report waits for company while the next task runs (at
 * most about 1 ms), and goes at once when there is no next task or the task
 * failed. */
static void runner_main(void *arg)
{
    struct task_run *t = arg;
    struct worker *w = t->w;

    while (t) {
        int failed = run_task(t);
        struct task_run *next = next_queued(w);
        if (!next || failed)
            worker_report_flush(w, 1);
        task_finished(w);
        t = next;
    }
}

/* A runner on a server thread, after the LaunchTask call that started it. */
static void inline_runner_main(void *arg)
{
    struct worker *w = ((struct task_run *)arg)->w;

    ember_rpc_release_listener();      /* tasks take any time: others serve calls */
    runner_main(arg);
    pthread_mutex_lock(&w->queue_lock);
    w->inline_runners--;
    pthread_mutex_unlock(&w->queue_lock);
}

/* A task killed while queued: it ends at once ("killed before it started"). */
static void unqueued_main(void *arg)
{
    struct task_run *t = arg;
    struct worker *w = t->w;

    run_task(t);
    worker_report_flush(w, 1);
    task_finished(w);
}

void worker_task_unqueue(struct worker *w, uint64_t task_id)
{
    struct task_run *found = NULL, *prev = NULL;

    if (task_id == 0)
        return;
    pthread_mutex_lock(&w->queue_lock);
    for (struct task_run *t = w->queue_head; t && !found; prev = t, t = t->next) {
        if (t->spec->task_id != task_id)
            continue;
        found = t;
        if (prev)
            prev->next = t->next;
        else
            w->queue_head = t->next;
        if (w->queue_tail == t)
            w->queue_tail = prev;
    }
    pthread_mutex_unlock(&w->queue_lock);
    if (found)
        worker_thread_run(unqueued_main, found);
}

void worker_task_start(struct worker *w, Ember__TaskSpec *spec, struct launch_call *call)
{
    struct task_run *t = ember_xcalloc(1, sizeof(*t));
    int new_runner = 0, on_call = 0;

    t->w = w;
    t->spec = spec;
    ember_buf_init(&t->held, 0);
    t->n_buckets = spec->num_reduce ? spec->num_reduce : 1;
    t->buckets = ember_xcalloc(t->n_buckets, sizeof(*t->buckets));
    for (size_t i = 0; i < t->n_buckets; i++)
        ember_buf_init(&t->buckets[i], 0);
    t->caches = ember_xcalloc(spec->n_cache_writes + 1, sizeof(*t->caches));
    t->cache_fds = ember_xcalloc(spec->n_cache_writes + 1, sizeof(*t->cache_fds));
    for (size_t i = 0; i < spec->n_cache_writes; i++) {
        ember_buf_init(&t->caches[i], 0);
        t->cache_fds[i].fd = -1;
    }
    pthread_mutex_lock(&w->lock);
    w->running_tasks++;
    pthread_mutex_unlock(&w->lock);
    worker_pool_enqueue(w->pool, spec->task_id);
    pthread_mutex_lock(&w->queue_lock);
    if (w->runners < w->cores) {
        w->runners++;
        new_runner = 1;
        on_call = call && call->ctx && !call->thread_taken
                  && w->inline_runners < WORKER_INLINE_RUNNERS;
        w->inline_runners += on_call;
    } else if (w->queue_tail) {
        w->queue_tail->next = t;
        w->queue_tail = t;
    } else {
        w->queue_head = w->queue_tail = t;
    }
    pthread_mutex_unlock(&w->queue_lock);
    if (on_call) {
        call->thread_taken = 1;
        if (call->report_wait_ms)
            call->first = t;           /* worker_task_reply runs it before the reply */
        else
            ember_rpc_after_reply(call->ctx, inline_runner_main, t);
    } else if (new_runner) {
        worker_thread_run(runner_main, t);
    }
}

void worker_task_reply(struct worker *w, struct launch_call *call)
{
    struct launch_reply reply = {call->ctx, ember_monotonic_ms() + call->report_wait_ms, 0};
    struct task_run *t = call->first, *next;
    int failed;

    if (!t) {
        Ember__TaskReports none = EMBER__TASK_REPORTS__INIT;
        ember_rpc_send(call->ctx, &none.base);
        return;
    }
    /* As runner_main's first turn, the reply sent in it (run_task frees t). */
    t->reply = &reply;
    failed = run_task(t);
    if (!reply.sent) {                 /* every path reports; this is a safety net */
        Ember__TaskReports none = EMBER__TASK_REPORTS__INIT;
        ember_rpc_send(call->ctx, &none.base);
        (void)ember_rpc_reply_now(call->ctx);
    }
    next = next_queued(w);
    if (!next || failed)
        worker_report_flush(w, 1);
    task_finished(w);
    if (next) {
        ember_rpc_after_reply(call->ctx, inline_runner_main, next);
    } else {
        pthread_mutex_lock(&w->queue_lock);
        w->inline_runners--;
        pthread_mutex_unlock(&w->queue_lock);
    }
}

void worker_wait_idle(struct worker *w)
{
    pthread_mutex_lock(&w->lock);
    while (w->running_tasks > 0)
        pthread_cond_wait(&w->idle, &w->lock);
    pthread_mutex_unlock(&w->lock);
}
