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
    pthread_t heartbeat_thread;
    int heartbeat_started;
    pthread_mutex_t lock;  /* guards the fields below and the channel cache */
    pthread_cond_t idle;
    int running_tasks;
    struct channel_entry *channels;
};

int worker_create(struct ember_daemon *d, struct worker **out) EMBER_MUST_CHECK;
void worker_destroy(struct worker *w);

/* ---- worker_pool.c: one ember-pyexec per core, reused across tasks ---- */
struct pyexec_slot {
    int index;
    pid_t pid;
    int to_child;         /* we write task frames here */
    int from_child;       /* and read output frames here */
};
int worker_pool_create(const char *pyexec_path, int size, struct worker_pool **out) EMBER_MUST_CHECK;
/* Waits for an idle, running subprocess and marks it busy with task_id. */
struct pyexec_slot *worker_pool_acquire(struct worker_pool *p, uint64_t task_id);
void worker_pool_release(struct worker_pool *p, struct pyexec_slot *s);
/* The slot's process died or lost protocol sync: reap it, start a new one.
 * Returns a new description of how the old one ended (caller frees). */
char *worker_pool_replace(struct worker_pool *p, struct pyexec_slot *s);
/* SIGKILLs the subprocess running task_id; 0 if found. */
int worker_pool_kill_task(struct worker_pool *p, uint64_t task_id);
void worker_pool_destroy(struct worker_pool *p);

/* ---- worker_task.c ---- */
/* Starts a thread running the task; takes ownership of spec. */
void worker_task_start(struct worker *w, Ember__TaskSpec *spec);
void worker_wait_idle(struct worker *w);

/* ---- worker_input.c: feeds a task's input to its pyexec ---- */
struct task_input_result {
    uint64_t input_bytes;
    uint64_t local_bytes, remote_bytes;   /* shuffle reads */
    int fetch_failed;
    uint32_t failed_map_index;
    char *error;                          /* new string or NULL */
};
/* Writes every input frame then END to the slot's pyexec. */
void worker_feed_input(struct worker *w, const Ember__TaskSpec *spec, struct pyexec_slot *slot,
                       struct task_input_result *res);

/* ---- worker_blocks.c: block manager client ---- */
/* A cached channel to address, owned by the worker. */
grpc_channel *worker_channel(struct worker *w, const char *address);
void worker_channels_free(struct worker *w);
int worker_put_block(struct worker *w, const char *block_id, const uint8_t *data, size_t len,
                     char **error) EMBER_MUST_CHECK;
/* Streams block_id from address into fd (raw bytes). */
int worker_fetch_block_to_fd(struct worker *w, const char *address, const char *block_id, int fd,
                             uint64_t *bytes, char **error) EMBER_MUST_CHECK;

#endif
