/* The pool of ember-pyexec subprocesses. Every spawn happens on one
 * long-lived launcher thread: a child's PR_SET_PDEATHSIG fires when the
 * spawning *thread* exits, so short-lived task threads must never spawn. */
#define _GNU_SOURCE
#include "worker.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"

extern char **environ;

/* REAPING: its process is being killed and waited for; nothing else may signal it. */
enum slot_state { SLOT_NEEDS_SPAWN, SLOT_SPAWNING, SLOT_READY, SLOT_REAPING, SLOT_FAILED };

struct slot_entry {
    struct pyexec_slot pub;
    enum slot_state state;
    int busy;
    uint64_t task_id;
    uint32_t tasks_done;  /* by this process: a fresh one is never recycled */
    pid_t task_pid;       /* the process the current task started on */
    char *kill_reason;    /* why the memory monitor killed it, for the task's error */
    int in_python;        /* the task is exchanging frames with it (execute): only then
                           * may a cancel or the memory budget kill it, so its thread sees
                           * the death and reports it */
    int signalled;        /* we SIGKILLed it for the current task: it must not serve another */
};

struct worker_pool {
    char *pyexec_path;
    int size;
    struct slot_entry *slots;
    pthread_mutex_t lock;
    pthread_cond_t changed;        /* a slot was freed or became ready: tasks wait on it */
    pthread_cond_t spawn_wanted;   /* a slot needs a process: only the launcher waits on it */
    pthread_t launcher;
    int stopping;
    /* Kills of tasks not running Python: a task launched ahead, still waiting
     * for a slot, must not start afterwards. The newest few are enough. */
    uint64_t early_kills[64];
    unsigned n_early_kills;
    /* Tasks waiting for a slot, in arrival order: slots go first come, first
     * served, so a task launched ahead never waits behind a later one. */
    struct slot_waiter *waiters;
};

struct slot_waiter {
    struct slot_waiter *next;
    uint64_t task_id;
    int claimed;                       /* its task's thread is waiting on it */
    /* Only the queue's head waits on the pool's `changed`; the others wait here
     * until they become head (or are killed, or the pool stops): with tasks
     * launched ahead, every slot release used to wake them all to find they
     * were not first. */
    pthread_cond_t turn;
};

/* Lock held. Appends a place for task_id at the end of the queue. */
static struct slot_waiter *join_queue(struct worker_pool *p, uint64_t task_id)
{
    struct slot_waiter *me = ember_xcalloc(1, sizeof(*me)), **tail;

    me->task_id = task_id;
    pthread_cond_init(&me->turn, NULL);
    for (tail = &p->waiters; *tail; tail = &(*tail)->next)
        ;
    *tail = me;
    return me;
}

/* Lock held. The place worker_pool_enqueue kept for task_id, or a new one.
 * Each place serves one thread: a task id sent twice has two. */
static struct slot_waiter *queue_place(struct worker_pool *p, uint64_t task_id)
{
    struct slot_waiter *place = NULL;

    for (struct slot_waiter *w = p->waiters; w && task_id && !place; w = w->next)
        if (w->task_id == task_id && !w->claimed)
            place = w;
    if (!place)
        place = join_queue(p, task_id);
    place->claimed = 1;
    return place;
}

void worker_pool_enqueue(struct worker_pool *p, uint64_t task_id)
{
    if (task_id == 0)                  /* not a real task: it would hold the queue's head */
        return;
    pthread_mutex_lock(&p->lock);
    join_queue(p, task_id);
    pthread_mutex_unlock(&p->lock);
}

static void leave_queue(struct worker_pool *p, struct slot_waiter *me)
{
    struct slot_waiter **at = &p->waiters;

    while (*at && *at != me)
        at = &(*at)->next;
    if (*at)
        *at = me->next;
    pthread_cond_destroy(&me->turn);
    free(me);
    if (p->waiters)                        /* the next one may be first now */
        pthread_cond_signal(&p->waiters->turn);
    pthread_cond_broadcast(&p->changed);
}

/* Lock held. Wakes every waiter wherever it waits (a kill, the pool stopping). */
static void wake_all_waiters(struct worker_pool *p)
{
    for (struct slot_waiter *w = p->waiters; w; w = w->next)
        pthread_cond_signal(&w->turn);
    pthread_cond_broadcast(&p->changed);
}

#define EARLY_KILLS (sizeof(((struct worker_pool *)0)->early_kills) / sizeof(uint64_t))

/* Whether task_id was killed before it got a slot (forgets it). Lock held. */
static int take_early_kill(struct worker_pool *p, uint64_t task_id)
{
    for (unsigned i = 0; i < EARLY_KILLS && i < p->n_early_kills; i++)
        if (p->early_kills[i] == task_id) {
            p->early_kills[i] = 0;
            return 1;
        }
    return 0;
}

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

/* The size asked for the pipes to and from a pyexec: 1 MiB (Linux's default
 * fs.pipe-max-size, the most an unprivileged process may ask), less on a
 * worker of many cores so that all its pipes stay within 16 MiB: an
 * unprivileged user whose pipes pass fs.pipe-user-pages-soft (64 MiB) gets
 * tiny pipes for every new one. */
static int pyexec_pipe_bytes(int slots)
{
    int bytes = 1 << 20;

    while (bytes > (64 << 10) && (long)bytes * 2 * slots > (16L << 20))
        bytes /= 2;
    return bytes;
}

/* Runs on the launcher thread only. */
static int spawn_pyexec(struct worker_pool *p, struct pyexec_slot *s)
{
    int in_pipe[2], out_pipe[2], err_pipe[2];
    posix_spawn_file_actions_t fa;
    char *argv[] = {p->pyexec_path, NULL};
    char parent_env[64];
    size_t n_env = 0, n_kept = 0;
    char **env;
    int rc;

    if (pipe2(in_pipe, O_CLOEXEC) != 0)
        return EMBER_EIO;
    if (pipe2(out_pipe, O_CLOEXEC) != 0) {
        close(in_pipe[0]);
        close(in_pipe[1]);
        return EMBER_EIO;
    }
    if (pipe2(err_pipe, O_CLOEXEC) != 0) {
        close(in_pipe[0]);
        close(in_pipe[1]);
        close(out_pipe[0]);
        close(out_pipe[1]);
        return EMBER_EIO;
    }
    while (environ[n_env])
        n_env++;
    env = ember_xcalloc(n_env + 2, sizeof(*env));
    snprintf(parent_env, sizeof(parent_env), "EMBER_PARENT_PID=%d", (int)getpid());
    for (size_t i = 0; i < n_env; i++)
        if (strncmp(environ[i], "EMBER_PARENT_PID=", 17) != 0)
            env[n_kept++] = environ[i];
    env[n_kept] = parent_env;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in_pipe[0], 0);
    posix_spawn_file_actions_adddup2(&fa, out_pipe[1], 1);
    posix_spawn_file_actions_adddup2(&fa, err_pipe[1], 2);
    rc = posix_spawn(&s->pid, p->pyexec_path, &fa, NULL, argv, env);
    posix_spawn_file_actions_destroy(&fa);
    free(env);
    close(in_pipe[0]);
    close(out_pipe[1]);
    close(err_pipe[1]);
    if (rc != 0) {
        close(err_pipe[0]);
        errno = rc;
        ember_log_error_errno("cannot start %s", p->pyexec_path);
        close(in_pipe[1]);
        close(out_pipe[0]);
        return EMBER_EIO;
    }
    s->to_child = in_pipe[1];
    s->from_child = out_pipe[0];
    /* A task's text input and a cached partition pass through these pipes
     * (tens of MB each): with the default 64 KiB the writer blocks and the
     * reader wakes every 64 KiB. Best effort: a refused size (beyond
     * fs.pipe-max-size, or the user's pipe pages spent) keeps the default. */
    fcntl(s->to_child, F_SETPIPE_SZ, pyexec_pipe_bytes(p->size));
    fcntl(s->from_child, F_SETPIPE_SZ, pyexec_pipe_bytes(p->size));
    s->pipe_capacity = fcntl(s->to_child, F_GETPIPE_SZ);
    worker_pipe_reset(s);
    s->err = worker_stderr_start(err_pipe[0], s->pid);
    ember_log_debug("pyexec=%d slot=%d started", (int)s->pid, s->index);
    return 0;
}

static struct slot_entry *slot_needing_spawn(struct worker_pool *p)
{
    for (int i = 0; i < p->size; i++)
        if (p->slots[i].state == SLOT_NEEDS_SPAWN)
            return &p->slots[i];
    return NULL;
}

static void *launcher_loop(void *arg)
{
    struct worker_pool *p = arg;
    struct slot_entry *e;

    pthread_mutex_lock(&p->lock);
    while (!p->stopping) {
        e = slot_needing_spawn(p);
        if (!e) {
            pthread_cond_wait(&p->spawn_wanted, &p->lock);
            continue;
        }
        e->state = SLOT_SPAWNING;
        pthread_mutex_unlock(&p->lock);
        int rc = spawn_pyexec(p, &e->pub);
        pthread_mutex_lock(&p->lock);
        e->state = rc == 0 ? SLOT_READY : SLOT_FAILED;
        e->tasks_done = 0;
        pthread_cond_broadcast(&p->changed);
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

int worker_pool_create(const char *pyexec_path, int size, struct worker_pool **out)
{
    struct worker_pool *p = ember_xcalloc(1, sizeof(*p));

    if (access(pyexec_path, X_OK) != 0) {
        ember_log_error_errno("cannot run ember-pyexec at %s (set --pyexec)", pyexec_path);
        free(p);
        return EMBER_ENOENT;
    }
    p->pyexec_path = ember_xstrdup(pyexec_path);
    p->size = size;
    p->slots = ember_xcalloc((size_t)size, sizeof(*p->slots));
    for (int i = 0; i < size; i++) {
        p->slots[i].pub.index = i;
        p->slots[i].pub.to_child = p->slots[i].pub.from_child = -1;
        p->slots[i].state = SLOT_NEEDS_SPAWN;
    }
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->changed, NULL);
    pthread_cond_init(&p->spawn_wanted, NULL);
    pthread_create(&p->launcher, NULL, launcher_loop, p);
    *out = p;
    return 0;
}

struct pyexec_slot *worker_pool_acquire(struct worker_pool *p, uint64_t task_id,
                                        int (*prefer)(const struct pyexec_slot *, void *),
                                        void *arg)
{
    int killed;
    return worker_pool_acquire_unless_killed(p, task_id, prefer, arg, &killed);
}

struct pyexec_slot *worker_pool_acquire_unless_killed(struct worker_pool *p, uint64_t task_id,
                                                      int (*prefer)(const struct pyexec_slot *,
                                                                    void *),
                                                      void *arg, int *killed)
{
    struct slot_entry *found = NULL;
    struct slot_waiter *me;
    int best = -1;

    *killed = 0;
    pthread_mutex_lock(&p->lock);
    me = queue_place(p, task_id);
    while (!found && !p->stopping) {
        if (task_id && take_early_kill(p, task_id)) {
            *killed = 1;
            break;
        }
        /* Only the first task in the queue takes a slot: the best of the idle ones. */
        for (int i = 0; i < p->size && p->waiters == me; i++) {
            struct slot_entry *e = &p->slots[i];
            if (e->state == SLOT_FAILED) {
                e->state = SLOT_NEEDS_SPAWN;   /* try again, it may have been transient */
                pthread_cond_signal(&p->spawn_wanted);
            }
            if (e->state != SLOT_READY || e->busy)
                continue;
            /* An idle slot's fields are its last task's, written before its release. */
            int score = prefer ? prefer(&e->pub, arg) : 0;
            if (score > best) {
                found = e;
                best = score;
            }
        }
        if (!found) {
            ember_rpc_release_listener();  /* a launch's quick handler may wait here */
            pthread_cond_wait(p->waiters == me ? &p->changed : &me->turn, &p->lock);
        }
    }
    leave_queue(p, me);
    if (found) {
        found->busy = 1;
        found->in_python = 1;
        found->signalled = 0;
        found->task_id = task_id;
        found->task_pid = found->pub.pid;
    }
    pthread_mutex_unlock(&p->lock);
    return found ? &found->pub : NULL;
}

void worker_pool_python_done(struct worker_pool *p, struct pyexec_slot *s)
{
    struct slot_entry *e = (struct slot_entry *)s;

    pthread_mutex_lock(&p->lock);
    e->in_python = 0;
    pthread_mutex_unlock(&p->lock);
}

static char *reap(struct worker_pool *p, struct slot_entry *e);

/* The slot's process is gone, and the Python objects it kept with it. */
static void forget_objects(struct pyexec_slot *s)
{
    for (size_t i = 0; i < s->n_held; i++) {
        free(s->held[i].block_id);
        free(s->held[i].addr);
    }
    free(s->held);
    s->held = NULL;
    s->n_held = 0;
    json_decref(s->objects);
    s->objects = NULL;
}

void worker_pool_release(struct worker_pool *p, struct pyexec_slot *s)
{
    struct slot_entry *e = (struct slot_entry *)s;
    int stale;

    pthread_mutex_lock(&p->lock);
    e->in_python = 0;
    /* Killed after its task had read everything it needed (the signal and the
     * task's end crossed): the task stands, but the process is dead or dying
     * and must not take the next task with this one's kill reason. */
    stale = e->state == SLOT_READY && (e->signalled || e->kill_reason);
    pthread_mutex_unlock(&p->lock);
    if (stale) {
        char *how = reap(p, e);
        ember_log_warn("pyexec=%d slot=%d replaced after its task ended: %s", (int)s->pid,
                       s->index, how);
        free(how);
    }
    pthread_mutex_lock(&p->lock);
    e->busy = 0;
    e->task_id = 0;
    if (e->state == SLOT_READY && e->pub.pid == e->task_pid)
        e->tasks_done++;                /* not when a fresh process replaced it meanwhile */
    pthread_cond_broadcast(&p->changed);
    pthread_mutex_unlock(&p->lock);
}

/* How a pyexec ended: why we killed it (the memory budget) or its exit code
 * or signal, its peak memory and the last lines it printed. */
static char *describe_exit(pid_t pid, int status, long peak_kib, const char *last_lines,
                           const char *kill_reason)
{
    char *how = kill_reason ? NULL
                : WIFSIGNALED(status)
                    ? ember_xasprintf("killed by signal %d (%s)", WTERMSIG(status),
                                      strsignal(WTERMSIG(status)))
                    : ember_xasprintf("exited with code %d", WEXITSTATUS(status));
    char *text = kill_reason
                     ? ember_xasprintf("%s; peak memory %.1f MiB%s%s", kill_reason,
                                       (double)peak_kib / 1024.0,
                                       *last_lines ? "; its last output:\n" : "", last_lines)
                     : ember_xasprintf("Python worker (ember-pyexec pid %d) died: %s; peak "
                                       "memory %.1f MiB%s%s",
                                       (int)pid, how, (double)peak_kib / 1024.0,
                                       *last_lines ? "; its last output:\n" : "", last_lines);
    free(how);
    return text;
}

/* Kills and reaps the slot's process and forgets what it had loaded; the
 * caller holds the slot (busy). Afterwards the slot needs a new process.
 * Returns how the old one ended, as a new string. */
static char *reap(struct worker_pool *p, struct slot_entry *e)
{
    struct pyexec_slot *s = &e->pub;
    struct rusage usage;
    int status = 0;

    /* A launch's quick handler may get here; the wait for the process (one
     * in D state takes its time to die) and for its stderr must not hold the
     * listening. */
    ember_rpc_release_listener();
    pthread_mutex_lock(&p->lock);
    e->state = SLOT_REAPING;
    pthread_mutex_unlock(&p->lock);

    close_fd(&s->to_child);
    close_fd(&s->from_child);
    worker_pipe_reset(s);       /* its unread bytes are not the next process's */
    /* A process that lost protocol sync may still run: it must go. */
    kill(s->pid, SIGKILL);
    memset(&usage, 0, sizeof(usage));
    while (wait4(s->pid, &status, 0, &usage) < 0 && errno == EINTR) {
    }
    char *last_lines = worker_stderr_finish(s->err);
    s->err = NULL;
    char *how = describe_exit(s->pid, status, usage.ru_maxrss, last_lines, e->kill_reason);
    free(last_lines);
    free(s->broadcasts);         /* the new process has loaded none */
    s->broadcasts = NULL;
    s->n_broadcasts = 0;
    forget_objects(s);          /* the new process keeps no objects */
    pthread_mutex_lock(&p->lock);
    free(e->kill_reason);          /* under the lock: members() reads it */
    e->kill_reason = NULL;
    e->signalled = 0;
    e->state = SLOT_NEEDS_SPAWN;
    pthread_cond_signal(&p->spawn_wanted);
    pthread_cond_broadcast(&p->changed);
    pthread_mutex_unlock(&p->lock);
    return how;
}

char *worker_pool_replace(struct worker_pool *p, struct pyexec_slot *s)
{
    struct slot_entry *e = (struct slot_entry *)s;

    char *how = reap(p, e);

    ember_log_warn("pyexec=%d slot=%d replaced: %s", (int)s->pid, s->index, how);
    return how;
}

size_t worker_pool_members(struct worker_pool *p, struct pool_member *out, size_t max)
{
    size_t n = 0;

    pthread_mutex_lock(&p->lock);
    for (int i = 0; i < p->size && n < max; i++) {
        struct slot_entry *e = &p->slots[i];
        if (e->state != SLOT_READY || e->kill_reason)
            continue;
        out[n].index = i;
        out[n].pid = e->pub.pid;
        out[n].busy = e->busy;
        out[n].in_python = e->busy && e->in_python;
        out[n].task_id = e->task_id;
        out[n].tasks_done = e->tasks_done;
        n++;
    }
    pthread_mutex_unlock(&p->lock);
    return n;
}

int worker_pool_fail_task(struct worker_pool *p, const struct pool_member *m, const char *reason)
{
    struct slot_entry *e = &p->slots[m->index];
    int rc = EMBER_ENOENT;

    pthread_mutex_lock(&p->lock);
    if (e->state == SLOT_READY && e->busy && e->in_python && e->task_id == m->task_id
        && e->pub.pid == m->pid && !e->kill_reason) {
        e->kill_reason = ember_xstrdup(reason);
        e->signalled = 1;
        kill(e->pub.pid, SIGKILL);     /* the task's thread sees it die and reports the reason */
        rc = 0;
    }
    pthread_mutex_unlock(&p->lock);
    return rc;
}

int worker_pool_recycle(struct worker_pool *p, const struct pool_member *m)
{
    struct slot_entry *e = &p->slots[m->index];

    pthread_mutex_lock(&p->lock);
    if (e->state != SLOT_READY || e->busy || e->pub.pid != m->pid) {
        pthread_mutex_unlock(&p->lock);
        return EMBER_ENOENT;
    }
    e->busy = 1;                       /* no task may take it meanwhile */
    pthread_mutex_unlock(&p->lock);
    free(reap(p, e));
    pthread_mutex_lock(&p->lock);
    e->busy = 0;
    pthread_cond_broadcast(&p->changed);
    pthread_mutex_unlock(&p->lock);
    return 0;
}

int worker_pool_kill_task(struct worker_pool *p, uint64_t task_id)
{
    int found = EMBER_ENOENT;

    pthread_mutex_lock(&p->lock);
    for (int i = 0; i < p->size; i++) {
        struct slot_entry *e = &p->slots[i];
        if (e->busy && e->in_python && e->state == SLOT_READY
            && (task_id == 0 || e->task_id == task_id)) {
            kill(e->pub.pid, SIGKILL);
            e->signalled = 1;
            found = 0;
        }
    }
    if (found != 0 && task_id != 0) {  /* maybe waiting for a slot: stop it there */
        p->early_kills[p->n_early_kills++ % EARLY_KILLS] = task_id;
        wake_all_waiters(p);
    }
    pthread_mutex_unlock(&p->lock);
    return found;
}

void worker_pool_destroy(struct worker_pool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    p->stopping = 1;
    wake_all_waiters(p);
    pthread_cond_signal(&p->spawn_wanted);
    pthread_mutex_unlock(&p->lock);
    pthread_join(p->launcher, NULL);
    for (int i = 0; i < p->size; i++) {
        struct pyexec_slot *s = &p->slots[i].pub;
        if (p->slots[i].state != SLOT_READY)
            continue;
        close_fd(&s->to_child);     /* EOF on stdin: pyexec exits 0 */
        close_fd(&s->from_child);
        while (waitpid(s->pid, NULL, 0) < 0 && errno == EINTR) {
        }
        free(worker_stderr_finish(s->err));
    }
    for (int i = 0; i < p->size; i++) {
        free(p->slots[i].pub.broadcasts);
        forget_objects(&p->slots[i].pub);
        worker_pipe_free(&p->slots[i].pub);
        free(p->slots[i].kill_reason);
    }
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->changed);
    pthread_cond_destroy(&p->spawn_wanted);
    free(p->slots);
    free(p->pyexec_path);
    while (p->waiters) {               /* places of tasks that never asked */
        struct slot_waiter *next = p->waiters->next;
        free(p->waiters);
        p->waiters = next;
    }
    free(p);
}
