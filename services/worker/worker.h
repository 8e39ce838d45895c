/* ember-worker internals. The worker owns a gRPC server (Worker service), a
 * pool of ember-pyexec subprocesses (worker_pool.c), the threads running tasks
 * (worker_task.c, worker_input.c) and gRPC channels to the master and block
 * managers (worker_blocks.c). Task failures are reported to the master, never
 * fatal to the worker. */
#ifndef EMBER_WORKER_H
#define EMBER_WORKER_H

#include <pthread.h>
#include <stdint.h>
#include <sys/types.h>

#include "blockd.pb-c.h"
#include <jansson.h>

#include "common.pb-c.h"
#include "daemon.h"
#include "rpc.h"
#include "util.h"

extern const struct ember_option worker_options[];

struct worker_pool;

struct worker {
    struct ember_daemon *daemon;
    char *id;
    char *address;        /* advertised host:port of our Worker service */
    char *host;
    char *block_addr;     /* our paired block manager */
    char *master_addr;
    int cores;
    grpc_channel *master;
    ember_rpc_server *server;
    struct worker_pool *pool;
    struct worker_memory *memory;  /* the pyexecs' memory budget, or NULL */
    pthread_t heartbeat_thread;
    int heartbeat_started;
    pthread_mutex_t broadcast_lock;  /* one broadcast fetch at a time */
    pthread_mutex_t lock;  /* guards the fields below and the channel cache */
    pthread_cond_t idle;
    int running_tasks;
    struct channel_entry *channels;
    struct driver_proc *drivers;     /* cluster-mode drivers started here */
    char *work_dir;                  /* their folders: <work_dir>/<driver id>/ */
    char *python_path;               /* the `ember` package folders, for drivers */
    pthread_mutex_t report_lock;     /* worker_report.c: reports waiting to be sent */
    struct pending_report *report_queue;
    int64_t report_oldest_us;        /* when the first of them was posted */
    int report_sending;              /* a report call is on its way */
    int report_owed;                 /* its sender must send the queue after it */
    pthread_mutex_t queue_lock;      /* worker_task.c: tasks waiting for a runner */
    struct task_run *queue_head, *queue_tail;
    int runners;                     /* threads running tasks, at most one per core */
    int inline_runners;              /* of them, server threads after a LaunchTask call */
    int local_puts_refused;          /* worker_blocks.c: our block manager cannot read our
                                      * memfds (another host): blocks go in chunks (atomic) */
};

/* Threads of the Worker gRPC server; at most WORKER_INLINE_RUNNERS of them run
 * tasks (after the LaunchTask call that brought them), so that launches and
 * kills are always served. */
#define WORKER_SERVER_THREADS 4
#define WORKER_INLINE_RUNNERS (WORKER_SERVER_THREADS - 2)

int worker_create(struct ember_daemon *d, struct worker **out) EMBER_MUST_CHECK;
void worker_destroy(struct worker *w);

/* ---- worker_pool.c: one ember-pyexec per core, reused across tasks ---- */
struct pyexec_slot {
    int index;
    pid_t pid;
    int to_child;         /* we write task frames here */
    int from_child;       /* and read output frames here */
    uint64_t *broadcasts; /* ids of the broadcast values this process has loaded */
    size_t n_broadcasts;
    json_t *objects;      /* cached blocks it said it keeps as Python objects (array of ids) */
    struct held_object *held;  /* those of them we know the block of (worker_objects.c) */
    size_t n_held;
    struct stderr_tail *err;  /* its stderr, forwarded and remembered */
    int pipe_capacity;    /* of to_child, bytes (F_GETPIPE_SZ), or -1 */
    uint8_t *rbuf;        /* worker_pipe.c: bytes read from from_child, not yet taken */
    size_t rbuf_start, rbuf_end;
    int splice_refused;   /* worker_pipe_splice met EINVAL/ENOSYS/EPERM: read instead */
};
int worker_pool_create(const char *pyexec_path, int size, struct worker_pool **out) EMBER_MUST_CHECK;
/* Waits for an idle, running subprocess and marks it busy with task_id; among
 * idle ones, the one with the highest prefer(slot, arg) (when given). */
struct pyexec_slot *worker_pool_acquire(struct worker_pool *p, uint64_t task_id,
                                        int (*prefer)(const struct pyexec_slot *, void *),
                                        void *arg);
/* Keeps task_id a place in the queue for slots now, so tasks get slots in the
 * order they were launched whatever order their threads run in. */
void worker_pool_enqueue(struct worker_pool *p, uint64_t task_id);
/* The same as worker_pool_acquire, but NULL with *killed set when
 * worker_pool_kill_task named the task before it got a slot (a task launched
 * ahead of a free slot). */
struct pyexec_slot *worker_pool_acquire_unless_killed(struct worker_pool *p, uint64_t task_id,
                                                      int (*prefer)(const struct pyexec_slot *,
                                                                    void *),
                                                      void *arg, int *killed);
/* The task is done with the process (its Python work ended): from here on no
 * cancel or memory limit signals it. */
void worker_pool_python_done(struct worker_pool *p, struct pyexec_slot *s);
/* Frees the slot; a process signalled during the task is replaced first. */
void worker_pool_release(struct worker_pool *p, struct pyexec_slot *s);
/* The slot's process died or lost protocol sync: reap it, start a new one.
 * Returns a new description of how the old one ended (caller frees). */
char *worker_pool_replace(struct worker_pool *p, struct pyexec_slot *s);
/* SIGKILLs the subprocess running task_id's Python code; 0 if found. */
int worker_pool_kill_task(struct worker_pool *p, uint64_t task_id);
void worker_pool_destroy(struct worker_pool *p);
/* A running subprocess, as the memory monitor sees it. */
struct pool_member {
    int index;
    pid_t pid;
    int busy;
    int in_python;        /* busy and still running the task's Python code */
    uint64_t task_id;     /* when busy */
    uint32_t tasks_done;  /* by this process so far */
};
/* Fills out with up to max running subprocesses; returns how many. */
size_t worker_pool_members(struct worker_pool *p, struct pool_member *out, size_t max);
/* SIGKILLs m's process if it still runs m's task; the task fails with reason
 * instead of "killed by signal 9". 0, or EMBER_ENOENT when things moved on. */
int worker_pool_fail_task(struct worker_pool *p, const struct pool_member *m, const char *reason)
    EMBER_MUST_CHECK;
/* Kills m's process if it is still idle; a new one is started in its place.
 * 0, or EMBER_ENOENT when it was taken meanwhile. */
int worker_pool_recycle(struct worker_pool *p, const struct pool_member *m) EMBER_MUST_CHECK;

/* ---- worker_memory.c: one memory budget for the pyexecs' resident memory ---- */
struct worker_memory;
/* The soft budget (bytes, 0: none) shared by the pool's n subprocesses, per subprocess. */
uint64_t worker_memory_soft_share(const struct worker_memory *m, int n);
/* Starts the monitor when a budget is set (--python-memory-soft/-hard);
 * *out is NULL when both are off. Borrows w. */
int worker_memory_start(struct worker *w, struct worker_memory **out) EMBER_MUST_CHECK;
void worker_memory_stop(struct worker_memory *m);   /* NULL-safe; joins the thread */

/* ---- worker_report.c: task reports, sent by the task threads, batched ---- */
/* Queues rep (borrowed: packed at once) for the next worker_report_flush. */
void worker_report_post(struct worker *w, const Ember__TaskReport *rep);
/* Sends the queued reports in one call (retried for a few seconds; a report
 * the master never got is logged), unless another thread's call is on its
 * way: then that thread sends them after it. all=0: only when the oldest has
 * waited its linger (about 1 ms) for company. */
void worker_report_flush(struct worker *w, int all);
/* Milliseconds until queued reports are due (0: now), -1 when none is queued
 * or a call is on its way (whose sender then sends them right after it). */
int worker_report_due_in_ms(struct worker *w);

/* ---- worker_pipe.c: frames from a pyexec's stdout, through a buffer ---- */
/* Called before each read that may block (e.g. to send reports meanwhile). */
struct worker_pipe_wait {
    void (*fn)(void *arg, int fd);
    void *arg;
};
/* As ember_frame_read on slot->from_child; wait may be NULL. */
int worker_pipe_read_frame(struct pyexec_slot *s, struct ember_buf *buf, int32_t *marker,
                           const struct worker_pipe_wait *wait) EMBER_MUST_CHECK;
/* Copies the next n (at most 16) bytes of the stream to p without taking them. */
int worker_pipe_peek(struct pyexec_slot *s, void *p, size_t n,
                     const struct worker_pipe_wait *wait) EMBER_MUST_CHECK;
/* Takes the next n bytes of the stream (at most what the last peek saw). */
void worker_pipe_skip(struct pyexec_slot *s, size_t n);
/* Moves the next n bytes of the stream to fd's end: the buffered ones written,
 * the rest spliced from the pipe (one copy, no buffer of ours). */
int worker_pipe_splice(struct pyexec_slot *s, int fd, size_t n,
                       const struct worker_pipe_wait *wait) EMBER_MUST_CHECK;
/* Forgets buffered bytes (the process is replaced); _free also the buffer. */
void worker_pipe_reset(struct pyexec_slot *s);
void worker_pipe_free(struct pyexec_slot *s);

/* ---- worker_objects.c: cached partitions a pyexec keeps as Python objects ----
 * A pyexec keeps the cached partitions it computed or read as objects (its
 * LRU, ember/worker_runtime.py); the worker sends no bytes for such an input
 * while the block manager still holds the very block they came from: same id,
 * same address, same generation (blockd gives every completed write a new one). */
struct held_object {
    char *block_id;
    char *addr;           /* the block manager the objects' block is in */
    uint64_t generation;
};
struct object_plan {
    size_t n_inputs;
    uint8_t *from_objects;     /* per input: 1 when the pyexec has it as objects */
    uint64_t *generations;     /* per cached input: its block's generation, 0 unknown */
    json_t *object_inputs;     /* header "objectInputs": {"<index>": block id} */
    json_t *keep_inputs;       /* header "keepInputs": the other cached inputs */
    json_t *drop;              /* header "dropObjects": ids it keeps that we cannot vouch for */
};
/* How many of spec's cached inputs the slot's pyexec keeps (for worker_pool_acquire). */
int worker_objects_score(const struct pyexec_slot *slot, void *spec);
/* Decides which cached inputs of spec the slot's pyexec is served from its
 * objects (one generation check per cached input with its block manager). */
void worker_objects_plan(struct worker *w, const struct pyexec_slot *slot,
                         const Ember__TaskSpec *spec, struct object_plan *plan);
/* After the task: the pyexec said it keeps `reported` (NULL when the task
 * failed: then nothing is vouched for). stored[i] is 1 when cache write i was
 * stored in our block manager. */
void worker_objects_after_task(struct worker *w, struct pyexec_slot *slot,
                               const Ember__TaskSpec *spec, const struct object_plan *plan,
                               json_t *reported, const uint8_t *stored);
void worker_object_plan_free(struct object_plan *plan);

/* ---- worker_metrics.c: the metrics frame that ends a pyexec's task ---- */
struct worker_metrics {
    uint64_t records_in, records_out, python_ms, object_inputs;
    json_t *objects;             /* new reference: the objects it keeps (an array), or NULL */
    char *accumulators;          /* new: base64 of its accumulator updates, or NULL */
};
/* Reads a metrics frame into *out: 1 when it is a JSON object with the
 * figures (Jansson's json_unpack "{s:I, s:I, s:I, s?s, s?o, s?I}" of
 * recordsIn, recordsOut, pythonMs, accumulators, objects, objectInputs),
 * else 0 with *out untouched. Free with worker_metrics_free. */
int worker_metrics_parse(const char *data, size_t len, struct worker_metrics *out);
/* Its two ways, for tests: the text pyexec writes for a plain task only (0
 * for any other), and Jansson for any text. */
int worker_metrics_parse_quick(const char *data, size_t len, struct worker_metrics *out);
int worker_metrics_parse_jansson(const char *data, size_t len, struct worker_metrics *out);
void worker_metrics_free(struct worker_metrics *m);

/* ---- worker_plan_check.c ---- */
/* 1 when text is certainly JSON that json_loads(text, 0) accepts; 0 when
 * unsure (Jansson then decides). */
int worker_plan_quick_check(const char *text);

/* ---- worker_header.c: a task's JSON header for its pyexec ---- */
struct broadcast_load;
/* 1 when the header of s can be written: its plan is JSON (an object or an
 * array) and its application id UTF-8. */
int worker_header_valid(const Ember__TaskSpec *s);
/* Appends the header of a valid s to out (0, or the error of a full buffer). */
int worker_header_json(const Ember__TaskSpec *s, const struct broadcast_load *loads,
                       size_t n_loads, const struct object_plan *objects,
                       uint64_t object_memory_limit, struct ember_buf *out) EMBER_MUST_CHECK;

/* ---- worker_task.c ---- */
/* A LaunchTask(s) call bringing tasks, as worker_task_start sees it. */
struct launch_call {
    ember_rpc_ctx *ctx;          /* NULL: none (the task has no call's thread to run on) */
    uint32_t report_wait_ms;     /* TaskSpecs.report_wait_ms, at most WORKER_MAX_REPORT_WAIT_MS */
    int thread_taken;            /* a runner was given the call's thread (one per call) */
    struct task_run *first;      /* with a wait: that runner's task, run by worker_task_reply */
};
/* The longest a LaunchTasks reply is held for a report, whatever the master asks. */
#define WORKER_MAX_REPORT_WAIT_MS 100
/* Runs the task (takes ownership of spec): on a new runner when fewer than
 * one per core run, else after the tasks launched before it, on the first
 * runner that is done with its task (no thread handoff per task). A new
 * runner is the server thread of call (when that is allowed: one per call),
 * once the call ended, or, when the call asked for a report wait, from
 * worker_task_reply; else a thread of its own. */
void worker_task_start(struct worker *w, Ember__TaskSpec *spec, struct launch_call *call);
/* Ends a LaunchTasks call (the handler then returns OK): with call->first,
 * runs that task on this thread and sends the reply with its report when it
 * ended within call->report_wait_ms, else, at the deadline or before the task
 * calls another daemon, without it (the task then goes on and reports as any
 * other); the runner carries on after the reply. Without, replies at once
 * with no report. */
void worker_task_reply(struct worker *w, struct launch_call *call);
/* A task still waiting for a runner leaves the queue and ends on a thread of
 * its own; call after worker_pool_kill_task recorded its kill. */
void worker_task_unqueue(struct worker *w, uint64_t task_id);
/* Runs fn(arg) on a detached thread of its own, reusing one idle after an earlier task. */
void worker_thread_run(void (*fn)(void *), void *arg);
void worker_wait_idle(struct worker *w);

/* ---- worker_driver.c: cluster deploy mode, drivers run here ---- */
struct driver_proc;
extern const ember_rpc_method_impl worker_driver_methods[];
extern const size_t worker_n_driver_methods;
/* SIGKILLs every driver and waits for their supervisors (after the server stopped). */
void worker_drivers_stop(struct worker *w);
char *worker_driver_python_path(void);   /* new string */

/* ---- worker_stderr.c: a pyexec's stderr, logged, its last lines kept ---- */
struct stderr_tail;
/* Takes ownership of fd (the read end of the pyexec's stderr pipe). */
struct stderr_tail *worker_stderr_start(int fd, pid_t pid);
/* The last lines it printed, as a new string; frees t (NULL-safe). */
char *worker_stderr_finish(struct stderr_tail *t);

/* ---- worker_broadcast.c: broadcast values, once per host and per pyexec ---- */
struct broadcast_load {
    uint64_t id;
    struct ember_buf value;   /* the pickled value */
};
/* The broadcasts of spec that the slot's pyexec has not loaded yet, with
 * their bytes (fetched into our block manager first if it lacks them). On
 * failure *error is new. */
int worker_broadcasts_to_load(struct worker *w, const Ember__TaskSpec *spec,
                              const struct pyexec_slot *slot, struct broadcast_load **out,
                              size_t *n, char **error) EMBER_MUST_CHECK;
void worker_broadcasts_loaded(struct pyexec_slot *slot, const struct broadcast_load *loads,
                              size_t n);
void worker_broadcast_loads_free(struct broadcast_load *loads, size_t n);

/* ---- worker_input.c: feeds a task's input to its pyexec ---- */
struct task_input_result {
    const uint8_t *from_objects;          /* per input: 1 when pyexec has it as objects */
    uint64_t input_bytes;
    uint64_t local_bytes, remote_bytes;   /* shuffle reads */
    int fetch_failed;
    uint32_t failed_map_index;
    char *missing_block;                  /* a cached block that could not be read */
    char *error;                          /* new string or NULL */
};
/* Writes every input frame then END to the slot's pyexec. */
void worker_feed_input(struct worker *w, const Ember__TaskSpec *spec, struct pyexec_slot *slot,
                       struct task_input_result *res);

/* ---- worker_blocks.c: block manager client ---- */
/* A cached channel to address, owned by the worker. */
grpc_channel *worker_channel(struct worker *w, const char *address);
void worker_channels_free(struct worker *w);
/* Stores the concatenation of parts as block_id in the block manager at address. */
int worker_store_block(struct worker *w, const char *address, const char *block_id,
                       Ember__BlockStorage storage, const struct ember_buf *parts, size_t n_parts,
                       char **error) EMBER_MUST_CHECK;
/* A block's bytes in a memfd named ember-block-<token>, made by the worker (a
 * cache write read from the pyexec's pipe straight into it: worker_task.c). */
struct worker_memfd {
    int fd;                 /* -1: none */
    size_t len;             /* bytes written */
    int sealed;
    char token[40];         /* 128 random bits in hex */
};
/* Creates an empty one: 0, or EMBER_EIO with m->fd == -1. */
int worker_memfd_open(struct worker_memfd *m) EMBER_MUST_CHECK;
void worker_memfd_close(struct worker_memfd *m);
/* Whether a block of that storage may go to our own block manager as a memfd
 * (not DISK_ONLY, and it has not refused one). */
int worker_memfd_wanted(struct worker *w, Ember__BlockStorage storage);
/* worker_store_block for m's bytes: to our own block manager m itself, sealed;
 * elsewhere (or when it refuses) in chunks from a read-only mapping of it. */
int worker_store_memfd(struct worker *w, const char *address, const char *block_id,
                       Ember__BlockStorage storage, struct worker_memfd *m,
                       char **error) EMBER_MUST_CHECK;
/* The generation of block_id at address (see blockd_block_generation): 0, or
 * EMBER_ENOENT when it is not there or the block manager did not answer. */
int worker_block_generation(struct worker *w, const char *address, const char *block_id,
                            uint64_t *generation) EMBER_MUST_CHECK;
/* Appends a whole block from the block manager at address to buf; errors as below. */
int worker_fetch_block_to_buf(struct worker *w, const char *address, const char *block_id,
                              struct ember_buf *buf, char **error) EMBER_MUST_CHECK;
/* Streams a whole block from the block manager at address into fd; errors as below. */
int worker_fetch_block_to_fd(struct worker *w, const char *address, const char *block_id, int fd,
                             uint64_t *bytes, char **error) EMBER_MUST_CHECK;
/* Streams the given block ranges from the block manager at address into fd,
 * back to back, as raw bytes. EMBER_ERPC when the block manager failed,
 * EMBER_EDEAD when fd broke (*error is then left NULL). */
int worker_fetch_ranges_to_fd(struct worker *w, const char *address, Ember__BlockRange **ranges,
                              size_t n, int fd, uint64_t *bytes, char **error) EMBER_MUST_CHECK;

/* ==== text input: Hadoop line splits from files and HTTP(S) ====
 * (worker_lines.c, worker_http.c; kept in one block apart from the above.) */

/* Cuts one text split into frames of whole lines ('\n'-terminated; a last
 * line without one gets one) of about 512 KiB, written to a pyexec's pipe. A
 * split owns the lines starting at offsets p with start < p <= end, plus p = 0
 * for the first split, so a line crossing a boundary is read once, by the split
 * where it starts. Sources push the bytes from split->start on, in order. */
struct worker_lines;
/* A new framer (free with worker_lines_free); borrows split and fd. */
struct worker_lines *worker_lines_new(const Ember__TextSplit *split, int fd);
void worker_lines_free(struct worker_lines *l);
/* Takes the next n bytes. EMBER_EIO when the pipe broke (the pyexec died),
 * EMBER_ETOOBIG with a new sentence in *error for a line over EMBER_FRAME_MAX.
 * Bytes past the end of the split are ignored. */
int worker_lines_push(struct worker_lines *l, const void *p, size_t n, char **error)
    EMBER_MUST_CHECK;
/* 1 once the split's last line is complete: the source may stop reading. */
int worker_lines_done(const struct worker_lines *l);
/* Offset in the input of the next byte wanted. */
uint64_t worker_lines_offset(const struct worker_lines *l);
/* No more bytes (end of input, or done): ends an unfinished last line and
 * sends what is left. Errors as worker_lines_push. */
int worker_lines_finish(struct worker_lines *l, char **error) EMBER_MUST_CHECK;

/* Initialises libcurl (curl_global_init); call once at worker start, before
 * other threads run. Idempotent. */
void worker_http_init(void);
void worker_http_cleanup(void);  /* at exit, after every task ended */
/* 1 for an http:// or https:// path. */
int worker_http_is_url(const char *path);
/* Reads split->path over HTTP(S) with byte-range requests into l until l is
 * done or the object ends. On failure *error is a new sentence naming the URL
 * and the HTTP status or curl error, except for a broken pipe (EMBER_EIO, no
 * text: the pyexec died). */
int worker_http_feed(const Ember__TextSplit *split, struct worker_lines *l, char **error)
    EMBER_MUST_CHECK;

#endif
