/* ember-master internals. One lock (master.lock) guards all state below:
 * handlers and the scheduler thread take it briefly and never hold it across
 * a remote call. Applications, their RDD nodes, jobs, stages and tasks live
 * until the master exits (the UI lists them). */
#ifndef EMBER_MASTER_H
#define EMBER_MASTER_H

#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdint.h>

#include "common.pb-c.h"
#include "daemon.h"
#include "rpc.h"
#include "util.h"

extern const struct ember_option master_options[];

struct ptr_array {
    void **items;
    size_t n, cap;
};
void ptr_array_push(struct ptr_array *a, void *item);

/* A growing text buffer (master_json_text.c); buf stays NUL-terminated. */
struct master_text {
    char *buf;
    size_t len, cap;
};

enum node_kind { NODE_TEXT, NODE_DATA, NODE_MAP, NODE_SHUFFLE, NODE_UNION, NODE_FRAMES, NODE_CONCAT };
enum combine_mode { COMBINE_CONCAT, COMBINE_ZIP, COMBINE_CARTESIAN, COMBINE_SIDES };

/* CONCAT nodes: which parent partitions make up one partition. */
struct concat_group {
    size_t n;
    uint32_t *parent;           /* index into the node's parents */
    uint32_t *partition;        /* partition of that parent */
};

struct text_split {
    char *path;
    uint64_t start, length;
};

struct blob {
    uint8_t *data;
    size_t len;
};

struct map_output {
    int done;
    char *block_addr;
    uint64_t *lengths;           /* bytes of each reduce partition in its block */
};

struct shuffle {
    uint32_t id;                 /* cluster-wide */
    struct rdd_node *node;       /* the shuffle node owning this state */
    uint32_t num_maps;
    uint32_t num_reduce;
    struct map_output *outputs;  /* one per map partition */
};

struct cache_entry {
    struct ptr_array locations;  /* block manager addresses holding the partition */
    uint64_t size;
};

struct rdd_node {
    int64_t id;                  /* the driver's RDD id, unique in its application */
    uint32_t gid;                /* cluster-wide: cached blocks are rdd_<gid>_<partition> */
    int persisted;
    uint32_t storage;            /* a BlockStorage value, when persisted */
    uint32_t replication;
    struct cache_entry *cache;   /* one per partition, when persisted */
    char **frames_files;         /* FRAMES, or a checkpointed node: one file per partition */
    struct concat_group *groups; /* CONCAT: one per partition */
    enum combine_mode combine;
    enum node_kind kind;
    uint32_t num_partitions;
    struct rdd_node **parents;
    size_t n_parents;
    struct blob func;            /* MAP */
    struct blob partitioner;     /* SHUFFLE */
    struct text_split *splits;   /* TEXT */
    struct blob *slices;         /* DATA */
    char *name;
    struct shuffle *shuffle;     /* SHUFFLE */
};

enum task_state { TASK_RUNNING, TASK_SUCCEEDED, TASK_FAILED, TASK_KILLED };
enum stage_status { STAGE_PENDING, STAGE_ACTIVE, STAGE_COMPLETE, STAGE_FAILED, STAGE_SKIPPED };
enum job_status { JOB_RUNNING, JOB_SUCCEEDED, JOB_FAILED };

struct task {
    uint64_t id;
    struct stage *stage;
    uint32_t index;              /* position in stage->partitions */
    uint32_t attempt;
    char *worker_id;
    char *host;
    enum task_state state;
    uint64_t launch_ms, duration_ms;
    Ember__TaskMetrics metrics;
    char *error;
};

struct part_state {
    int running;
    int failures;
    uint64_t pending_since_ms;   /* for the locality wait */
};

struct stage {
    uint32_t id;
    struct job *job;
    struct rdd_node *rdd;        /* what the stage computes */
    struct shuffle *out_shuffle; /* NULL for the job's result stage */
    uint32_t n_parts;
    uint32_t *partitions;        /* partitions of rdd computed by this stage */
    struct part_state *parts;
    enum stage_status status;
    uint64_t submitted_ms, completed_ms;
    struct ptr_array parents;    /* stages producing the shuffles we read */
    struct ptr_array tasks;
    char *failure;
    uint32_t num_complete, num_failed;
    uint32_t num_short;          /* successful tasks shorter than SHORT_TASK_MS */
    /* Cursors so that a stage of 10,000 partitions is not walked from 0 at
     * each report (quadratic). schedule_from: partitions below it were
     * running or done when last walked, valid while schedule_epoch equals the
     * master's undo_epoch. check_from: partitions below it were done; a hint
     * only, the stage is complete only after a full scan agrees. */
    uint32_t schedule_from, check_from;
    uint64_t schedule_epoch;
    Ember__TaskMetrics totals;
};

struct result_location {
    int done;
    char *block_addr;            /* NULL when the result came inline */
    uint64_t size;
    uint8_t *inline_data;        /* the result's bytes held here (master_results.c) */
    int is_inline;               /* came inline; inline_data NULL once dropped */
};

struct job {
    uint32_t id;
    struct app *app;
    char *description, *call_site;
    json_t *properties;
    uint64_t submitted_ms, completed_ms;
    enum job_status status;
    struct ptr_array stages;     /* result stage first */
    struct stage *result_stage;
    struct result_location *results;   /* one per result stage partition */
    char *error;
    int failed_stage, failed_partition;
    uint64_t max_result_bytes;   /* spark.driver.maxResultSize; 0: no limit */
    json_t *accumulator_updates; /* base64 strings, one per counted successful task */
    char *submission_id;         /* the driver's token: a retried submission finds its job */
    struct ptr_array broadcasts; /* borrowed struct broadcast_info, sent with every task */
    uint64_t result_bytes;
    uint64_t inline_bytes;       /* of its results held by the master */
    int no_inline_results;       /* spark.ember.inlineResults=false: every result a block */
    int cancelled;               /* failed by CancelJob (REST API, UI or the driver) */
};

struct broadcast_info {
    uint64_t id;                 /* the driver's broadcast id */
    char *block_id, *location;   /* the source copy */
    uint64_t size;
    int destroyed;
};

struct app {
    char *id, *name, *user;
    json_t *properties;          /* the driver's settings at start ({} when none) */
    struct ptr_array broadcasts; /* struct broadcast_info */
    uint64_t start_ms, end_ms;
    int ended;
    struct ptr_array nodes;
    int nodes_unsorted;          /* nodes not in increasing id order: find_node scans */
    struct ptr_array jobs;
    json_t *job_by_submission;   /* submissionId -> job id, so a submission is not
                                    compared with every earlier job of a long application */
};

struct worker_info {
    char *id, *address, *host, *block_addr;
    uint32_t cores;
    grpc_channel *channel;
    uint64_t last_heartbeat_ms;
    int alive;
    uint32_t active, completed, failed;
    uint64_t total_ms;
    uint64_t launch_backoff_until_ms;  /* after a failed launch, try others for a while */
    uint64_t filled_in_pass;     /* the scheduler pass that last launched here */
    uint64_t incarnation;              /* of the process that registered last */
};

struct blockd_info {
    char *id, *address, *host;
    uint64_t memory, blocks, bytes_in_memory, bytes_on_disk, evictions;
    uint64_t last_heartbeat_ms;
    uint64_t incarnation;
    int alive;
};

struct master {
    struct ember_daemon *daemon;
    pthread_mutex_t lock;
    pthread_cond_t work;         /* something for the scheduler to look at */
    pthread_cond_t job_ended;    /* a job succeeded or failed (GetJob's waiters) */
    int job_waiters;             /* GetJob calls waiting on it */
    ember_rpc_server *server;
    pthread_t scheduler;
    int scheduler_started;
    struct ptr_array apps, jobs, stages, tasks, workers, blockds;
    struct ptr_array kills;      /* struct kill_request: sent by the scheduler */
    struct ptr_array nodes_by_gid;
    struct ptr_array retired_channels;   /* replaced worker channels, destroyed at exit */
    int64_t locality_wait_ms;
    int64_t launch_report_wait_ms;   /* --launch-report-wait-ms: SubmitJobAndWait's launches */
    /* Ids continue after what the journal recorded; task ids start from the
     * clock so a report from a task of an earlier master matches nothing. */
    uint32_t job_base, stage_base, gid_base;
    uint64_t task_base;
    FILE *journal;               /* NULL without --journal */
    /* Job ends whose lines are not written yet: they wait while
     * journal_holds > 0 (master_journal_hold), else are written at once; never
     * longer than JOURNAL_HOLD_MAX_MS after the first of them ended, since
     * the holds of overlapping calls could otherwise keep them back for good.
     * A succeeded job's line is made when written, any other one at its
     * job's end (master_journal_job_end), in journal_line (a reused buffer). */
    struct journal_end {
        const struct job *job;
        uint32_t next_shuffle, gids;   /* the master's ids when the job ended */
    } *journal_ends;
    size_t n_journal_ends, cap_journal_ends;
    struct master_text journal_line;
    int journal_holds;
    uint64_t journal_waiting_since;   /* monotonic ms; 0: none waiting */
    json_t *history_apps, *history_jobs, *history_stages;
    uint32_t next_shuffle_id;
    uint64_t app_counter;
    int64_t max_failures, heartbeat_timeout_ms;
    struct ptr_array drivers;    /* struct driver (master_driver.c), oldest first */
    uint64_t driver_counter;
    int64_t driver_log_bytes;    /* of each driver output stream kept here */
    int64_t retained_drivers;    /* finished drivers kept, the newest */
    uint64_t inline_bytes;       /* results held inline, all jobs (master_results.c) */
    uint64_t sched_pass;         /* scheduler passes so far (master_sched.c) */
    size_t sched_first_job;      /* jobs before it have all ended (master_sched.c) */
    int sched_pending;           /* the last pass left a partition neither running nor done */
    int sched_idle;              /* the scheduler thread waits for work */
    uint64_t undo_epoch;         /* bumped when a partition may have become pending again
                                    (task failed or lost, output lost): stages' schedule
                                    cursors restart from 0 (master_sched.c) */
};

int master_create(struct ember_daemon *d, struct master **out) EMBER_MUST_CHECK;
void master_destroy(struct master *m);

/* master_cluster.c: membership, applications and their handlers */
extern const ember_rpc_method_impl master_methods[];
extern const size_t master_n_methods;
struct app *master_find_app(struct master *m, const char *id);
struct worker_info *master_find_worker(struct master *m, const char *id);
int master_blockd_alive(struct master *m, const char *address);
void master_check_liveness(struct master *m);
/* Handler helpers: a status with its details sentence; a JSON reply (takes value). */
grpc_status_code master_rpc_fail(ember_rpc_ctx *ctx, grpc_status_code st, const char *why);
grpc_status_code master_send_json(ember_rpc_ctx *ctx, json_t *value);
/* The same for JSON already written as text (master_json_text.c); takes
 * ownership of text->buf. */
grpc_status_code master_send_text(ember_rpc_ctx *ctx, struct master_text *text);

/* master_driver.c: cluster deploy mode, drivers run on workers */
struct driver;
extern const ember_rpc_method_impl master_driver_methods[];
extern const size_t master_n_driver_methods;
void master_driver_free(struct driver *d);   /* NULL-safe */
/* Fails the drivers running on a worker that died or restarted (`why`: "died").
 * process_gone: the worker process is known gone (a new incarnation), not just
 * silent; a silent one's drivers stay revivable by its reports or its return. */
void master_drivers_worker_lost(struct master *m, const char *worker_id, const char *why,
                                int process_gone);
/* The same worker process registered again after it was declared dead: the
 * drivers failed with it run again (or its final reports will say otherwise). */
void master_drivers_worker_back(struct master *m, const char *worker_id);
json_t *master_json_drivers(struct master *m);   /* newest first */

/* master_job.c: job descriptions, stages, task specs */
void master_node_free(struct rdd_node *n);   /* NULL-safe */
/* Parses a job description for app; on failure *error names the problem. */
int master_submit_job(struct master *m, struct app *app, const char *json_text, uint32_t *job_id,
                      char **error) EMBER_MUST_CHECK;
int master_shuffle_complete(const struct shuffle *sh);
struct stage *master_map_stage_for(struct master *m, struct job *job, struct rdd_node *shuffle_node);

/* master_walk.c: a partition's narrow dependencies down to its input */
/* A new spec for task t run on the worker whose block manager is local_blockd
 * (free with ember__task_spec__free_unpacked). */
/* The task's TaskSpec, packed (malloc'd, *len bytes). */
uint8_t *master_task_spec(struct master *m, struct task *t, const char *local_blockd,
                          size_t *len);
/* Adds the shuffle nodes partition p of n reads (none below a cached partition). */
void master_partition_shuffles(struct master *m, struct rdd_node *n, uint32_t p,
                               struct ptr_array *out);
/* The block manager holding the cached input of partition p of n, or NULL. */
const char *master_partition_cached_at(struct master *m, struct rdd_node *n, uint32_t p);

/* master_cache.c: persisted RDDs and their cached partitions */
int master_set_storage(struct rdd_node *n, json_t *level, char **error) EMBER_MUST_CHECK;
const char *master_cached_location(struct master *m, const struct rdd_node *n, uint32_t p);
int master_fully_cached(struct master *m, const struct rdd_node *n);
char *master_replica_for(struct master *m, const char *local_blockd, uint32_t p);
void master_cache_record(struct master *m, const Ember__CachedBlock *cb);
/* Forgets block_id at address (NULL: everywhere). */
void master_cache_forget(struct master *m, const char *block_id, const char *address);
void master_cache_forget_address(struct master *m, const char *address);
void master_cache_free(struct rdd_node *n);
json_t *master_json_storage(struct master *m, const struct app *a);

/* master_sched.c: the scheduler thread and task outcomes */
void *master_scheduler_main(void *arg);
/* After a submission (lock held): runs a scheduling pass in the calling thread
 * when the scheduler thread is idle (saves waking it), adding the launches to
 * send; else wakes the scheduler. Send them with master_send_launches once the
 * lock is released (it frees the array, empty or not). */
void master_schedule_soon(struct master *m, struct ptr_array *launches);
/* report_wait_ms > 0 (only a caller that waits for the job anyway: the
 * scheduler thread must never wait) asks each worker to hold its reply that
 * long for the report of a task it starts at once (TaskSpecs.report_wait_ms);
 * reports in replies are applied with master_task_report. */
void master_send_launches(struct master *m, struct ptr_array *launches, uint32_t report_wait_ms);
/* The same for a handler that deferred its answer (ember_rpc_defer): returns
 * at once; the replies are applied, then done(arg) runs, on the server thread
 * that read the last reply (no thread waits for them). launches must not be
 * empty; the array is freed. */
void master_send_launches_async(struct master *m, struct ptr_array *launches,
                                uint32_t report_wait_ms, ember_rpc_ctx *deferred,
                                void (*done)(void *), void *arg);
void master_task_report(struct master *m, const Ember__TaskReport *rep);
/* A worker stopped heartbeating: its running tasks go back to pending. */
void master_worker_lost(struct master *m, struct worker_info *w);
/* A worker process was replaced by a new one (it registered again with a new
 * incarnation before it was declared dead): the old one's tasks are lost. */
void master_worker_tasks_lost(struct master *m, struct worker_info *w, const char *why);
/* A block manager is gone: forget the map outputs and results it held. */
void master_blockd_lost(struct master *m, const char *address);
/* Fails a running job and kills its running tasks. Called with the lock held. */
void master_fail_job(struct master *m, struct job *job, struct stage *stage, int partition,
                     const char *why);

/* Lookups by the ids users see; NULL when not a live object of this master. */
struct job *master_job_by_id(struct master *m, uint32_t id);
struct stage *master_stage_by_id(struct master *m, int64_t id);
struct task *master_task_by_id(struct master *m, uint64_t id);

/* master_journal.c: history that survives a restart */
int master_journal_open(struct master *m, const char *path) EMBER_MUST_CHECK;
/* Takes ownership of app. */
void master_journal_app(struct master *m, json_t *app);
/* Record the application's current state / a job that just ended (lock held). */
void master_journal_app_state(struct master *m, const char *app_id);
void master_journal_job_end(struct master *m, const struct job *job);
/* Lock held. While held, job-end lines wait (in order) instead of being
 * written: a handler that answers a job's end holds the journal so the
 * line's write (a syscall) comes after its answer, and releases it then
 * (master_journal_release writes what waited). Other lines still go in order. */
void master_journal_hold(struct master *m);
void master_journal_release(struct master *m);
void master_journal_close(struct master *m);
/* Appends the journal's history to a live listing (applications, jobs, stages). */
void master_history_extend(struct master *m, const char *what, const char *app_id, json_t *list);
/* Whether the journal knows an application of an earlier master. */
int master_history_find_app(struct master *m, const char *app_id);
/* A job or stage of an earlier master, as a new JSON value, or NULL. */
json_t *master_history_find(struct master *m, const char *what, const char *app_id, int64_t id);

/* master_results.c: small task results the master holds for the driver, so
 * neither a PutBlock nor a block manager download is needed for them. Memory
 * is bounded: per task, per job and in all (finished jobs' results are
 * dropped, oldest first, to make room; a driver that still wanted them sees
 * a lost result and reruns its job). All with the lock held. */
#define MASTER_INLINE_TASK_MAX (64u << 10)
#define MASTER_INLINE_JOB_MAX ((uint64_t)4 << 20)
#define MASTER_INLINE_TOTAL_MAX ((uint64_t)64 << 20)
/* TaskSpec.inline_result_limit for a task of job's result stage. */
uint32_t master_inline_limit(struct master *m, struct job *job);
/* Keeps a result task's inline bytes for partition index; 0, or EMBER_EINVAL
 * when they are over the per-task limit (the report is malformed). */
int master_result_keep_inline(struct master *m, struct job *job, uint32_t index,
                              const uint8_t *data, size_t len);
/* Frees whatever a job's results hold (a result rerun, a failed or dropped job). */
void master_result_clear(struct master *m, struct job *job, uint32_t index);
void master_results_release(struct master *m, struct job *job);

/* master_json.c: views for the gateway. with_results: 0 the job alone, 1 with
 * its progress and result list, 2 with inline results' bytes too (base64). */
json_t *master_json_job(struct master *m, const struct job *job, int with_results);
json_t *master_json_query(struct master *m, const char *what, const char *app_id, int64_t id,
                          char **error);
/* Shared with master_json_text.c, so both spell the views alike. */
extern const char *const master_job_status_names[], *const master_stage_status_names[],
    *const master_task_state_names[], *const master_node_kind_names[];
int master_stage_active_tasks(const struct stage *s);
/* A job's stage and task counts as its JSON views show them (skipped stages'
 * tasks not counted). */
struct job_totals {
    int completed_stages, skipped_stages, tasks, completed_tasks, active_tasks, failed_tasks;
};
struct job_totals master_job_totals(const struct job *job);
/* The RDDs a stage computes, parents first (the DAG view's "rdds"); at most
 * MASTER_MAX_CHAIN. Appends borrowed nodes to chain. */
#define MASTER_MAX_CHAIN 200
void master_stage_chain(struct ptr_array *chain, struct rdd_node *n);

/* master_json_parse.c: json_loads(text, 0, error), quicker for what drivers
 * send (jansson still parses, and words the errors of, anything unusual). */
json_t *master_json_loads(const char *text, json_error_t *error);
/* Its quick path alone: the subset it takes, or NULL (not an error: jansson
 * decides). For tests. */
json_t *master_json_loads_quick(const char *text);

/* master_json_text.c: the same views written straight as compact JSON text,
 * byte for byte what json_dumps(view, JSON_COMPACT) gives for the trees above,
 * without building a tree (the job-end journal line, the job reply). A buffer
 * that grows (ember_xrealloc aborts on OOM); reuse one across calls with
 * master_text_reset. */
void master_text_reset(struct master_text *t);
void master_text_free(struct master_text *t);
/* Appends the text of master_json_job(m, job, with_results). */
void master_text_job(struct master_text *t, const struct job *job, int with_results);
/* Appends the text of the "stage" query's view (with its tasks). */
void master_text_stage(struct master_text *t, const struct stage *s);
void master_text_raw(struct master_text *t, const char *s, size_t n);
#define MASTER_TEXT_LIT(t, lit) master_text_raw((t), (lit), sizeof(lit) - 1)
void master_text_int(struct master_text *t, long long v);

#endif
