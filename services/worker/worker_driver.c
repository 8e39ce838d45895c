/* Cluster deploy mode on the worker: LaunchDriver writes the uploaded files
 * into <work-dir>/<driver id>/ and runs `python3 script args` there, with the
 * `ember` package and the py-files on PYTHONPATH and EMBER_MASTER naming the
 * gateway. One supervisor thread per driver forks it (PR_SET_PDEATHSIG ties
 * the driver to that thread, so it dies with the worker), copies its stdout
 * and stderr to files in its folder and, every half second, to the master
 * (Master.ReportDriver), then reports how it ended. */
#define _GNU_SOURCE
#include "worker.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "security.h"
#include "master.pb-c.h"
#include "worker.pb-c.h"

#define REPORT_EVERY_MS 500
#define REPORT_TIMEOUT_MS 3000
#define REPORT_IDLE_EVERY_MS 5000       /* a report without output: "still running" */
#define FINAL_RETRY_MAX_MS 5000         /* the end is retried until the master has it */
#define EXIT_POLL_MS 50                 /* waiting for a driver whose pipes are closed */
#define DRAIN_AFTER_EXIT_MS 2000        /* output of children still holding the pipes */
#define KILL_GRACE_MS 5000              /* SIGTERM, then SIGKILL */

extern char **environ;

struct driver_proc {
    struct driver_proc *next;
    struct worker *w;
    char *id, *dir;
    char **argv, **env;                 /* built before fork: the child only execs */
    pid_t pid;                          /* 0 until started */
    uint64_t kill_deadline_ms;          /* SIGKILL the group then; 0: not killed */
    int kill_requested, finished;
    size_t log_bytes;                   /* the most output held for the master (0: no cap) */
    uint64_t log_dropped;               /* bytes dropped while the master did not answer */
    pthread_t thread;
};

static void free_strv(char **v)
{
    for (size_t i = 0; v && v[i]; i++)
        free(v[i]);
    free(v);
}

static void proc_free(struct driver_proc *p)
{
    free(p->id);
    free(p->dir);
    free_strv(p->argv);
    free_strv(p->env);
    free(p);
}

/* ---- the folder and its files ---- */

static int valid_driver_id(const char *id)
{
    size_t n = strlen(id);

    return n > 0 && n <= 128 && strspn(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                           "0123456789-_") == n;
}

static int relative_path_ok(const char *p)
{
    if (!*p || *p == '/' || strstr(p, "//") || p[strlen(p) - 1] == '/')
        return 0;
    for (const char *part = p; part; part = strchr(part, '/') ? strchr(part, '/') + 1 : NULL) {
        size_t n = strcspn(part, "/");
        if ((n == 1 && part[0] == '.') || (n == 2 && strncmp(part, "..", 2) == 0))
            return 0;
    }
    return 1;
}

/* mkdir -p of the folders above path (inside dir). */
static int make_parents(const char *dir, const char *path)
{
    char *full = ember_xasprintf("%s/%s", dir, path);
    int rc = 0;

    for (char *slash = strchr(full + strlen(dir) + 1, '/'); slash; slash = strchr(slash + 1, '/')) {
        *slash = '\0';
        if (mkdir(full, 0700) != 0 && errno != EEXIST) {
            ember_log_error_errno("cannot create %s", full);
            rc = EMBER_EIO;
        }
        *slash = '/';
        if (rc != 0)
            break;
    }
    free(full);
    return rc;
}

static int write_file(const char *dir, const Ember__DriverFile *f, char **error)
{
    char *path = ember_xasprintf("%s/%s", dir, f->path);
    int fd = -1, rc = EMBER_EIO;

    if (make_parents(dir, f->path) == 0)
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd >= 0) {
        size_t done = 0;
        while (done < f->data.len) {
            ssize_t n = write(fd, f->data.data + done, f->data.len - done);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                break;
            done += (size_t)n;
        }
        if (done == f->data.len && close(fd) == 0)
            rc = 0;
        else if (done != f->data.len)
            close(fd);
    }
    if (rc != 0)
        *error = ember_xasprintf("cannot write %s on worker: %s", path, strerror(errno));
    free(path);
    return rc;
}

/* Creates <work-dir>/<id>/ and writes every file. On failure *error is new. */
static int write_files(struct worker *w, const char *id, const Ember__DriverSubmission *s,
                       char **dir_out, char **error)
{
    char *dir = ember_xasprintf("%s/%s", w->work_dir, id);

    if (mkdir(w->work_dir, 0700) != 0 && errno != EEXIST) {
        *error = ember_xasprintf("cannot create the work folder %s: %s", w->work_dir,
                                 strerror(errno));
        free(dir);
        return EMBER_EIO;
    }
    if (mkdir(dir, 0700) != 0) {
        *error = ember_xasprintf("cannot create %s: %s", dir, strerror(errno));
        free(dir);
        return EMBER_EIO;
    }
    for (size_t i = 0; i < s->n_files; i++) {
        if (!relative_path_ok(s->files[i]->path)) {
            *error = ember_xasprintf("file path '%.200s' is not a plain relative path",
                                     s->files[i]->path);
            free(dir);
            return EMBER_EINVAL;
        }
        if (write_file(dir, s->files[i], error) != 0) {
            free(dir);
            return EMBER_EIO;
        }
    }
    *dir_out = dir;
    return 0;
}

/* ---- the command and its environment ---- */

static char *joined_paths(const char *dir, char **paths, size_t n, const char *sep)
{
    char *out = ember_xstrdup("");

    for (size_t i = 0; i < n; i++) {
        char *next = ember_xasprintf("%s%s%s/%s", out, i ? sep : "", dir, paths[i]);
        free(out);
        out = next;
    }
    return out;
}

/* Where a py-file makes modules importable from: a .py's folder, a .zip
 * itself, a package folder's parent. */
static char *import_roots(const char *dir, const Ember__DriverSubmission *s)
{
    char *out = ember_xstrdup("");

    for (size_t i = 0; i < s->n_py_files; i++) {
        const char *p = s->py_files[i];
        size_t n = strlen(p);
        char *root;
        if (n > 4 && (strcmp(p + n - 4, ".zip") == 0 || strcmp(p + n - 4, ".egg") == 0))
            root = ember_xasprintf("%s/%s", dir, p);
        else if (strrchr(p, '/'))
            root = ember_xasprintf("%s/%.*s", dir, (int)(strrchr(p, '/') - p), p);
        else
            root = ember_xstrdup(dir);
        char *next = ember_xasprintf("%s:%s", out, root);
        free(root);
        free(out);
        out = next;
    }
    return out;
}

static void env_push(char ***env, size_t *n, char *entry)
{
    *env = ember_xrealloc(*env, (*n + 2) * sizeof(**env));
    (*env)[(*n)++] = entry;
    (*env)[*n] = NULL;
}

static int overridden(const char *entry)
{
    static const char *const names[] = {"EMBER_PARENT_PID=", "PYTHONPATH=", "EMBER_MASTER=",
                                        "EMBER_APP_NAME=", "EMBER_CONF=", "EMBER_PY_FILES=",
                                        "EMBER_FILES=", "EMBER_PROPERTIES_FILE=",
                                        "EMBER_DRIVER_ID=", "PYTHONUNBUFFERED=",
                                        "EMBER_AUTH_SECRET=", "EMBER_AUTH_SECRET_FILE=",
                                        "EMBER_TLS_CA="};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strncmp(entry, names[i], strlen(names[i])) == 0)
            return 1;
    return 0;
}

/* The driver talks to the gateway as the worker talks to its peers: with the
 * worker's secret (which left the worker's own environment when it was read)
 * and, over TLS, trusting the worker's CA. */
static void push_security(char ***env, size_t *n)
{
    const struct ember_security *sec = ember_security_get();

    if (sec->secret)
        env_push(env, n, ember_xasprintf("EMBER_AUTH_SECRET=%s", sec->secret));
    if (sec->tls_ca_file)
        env_push(env, n, ember_xasprintf("EMBER_TLS_CA=%s", sec->tls_ca_file));
}

/* The submitted --conf lines without spark.master (new string): the driver
 * joins the cluster through the gateway address we give it, not through the
 * --master the submitter used, which may be its own loopback. */
static char *conf_without_master(const char *conf)
{
    char *kept = ember_xcalloc(strlen(conf) + 2, 1), *to = kept;
    const char *line = conf;

    while (*line) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        const char *key = line, *key_end;
        while (key < line + len && isspace((unsigned char)*key))
            key++;
        key_end = memchr(key, '=', len - (size_t)(key - line));
        if (!key_end)
            key_end = line + len;
        while (key_end > key && isspace((unsigned char)key_end[-1]))
            key_end--;
        if (!((size_t)(key_end - key) == strlen("spark.master")
              && strncmp(key, "spark.master", strlen("spark.master")) == 0)) {
            memcpy(to, line, len);
            to += len;
            *to++ = '\n';
        }
        line += len + (end ? 1 : 0);
    }
    *to = '\0';
    return kept;
}

/* The worker's environment, plus what makes `SparkContext()` in the script
 * join this cluster with the submitted settings. */
static char **driver_env(struct worker *w, const char *id, const char *dir,
                         const Ember__DriverSubmission *s)
{
    char **env = NULL, *roots = import_roots(dir, s);
    size_t n = 0;
    const char *old = getenv("PYTHONPATH");

    for (size_t i = 0; environ[i]; i++)
        if (!overridden(environ[i]))
            env_push(&env, &n, ember_xstrdup(environ[i]));
    env_push(&env, &n, ember_xasprintf("PYTHONPATH=%s%s%s%s", w->python_path, roots,
                                       old && *old ? ":" : "", old ? old : ""));
    env_push(&env, &n, ember_xasprintf("EMBER_MASTER=ember://%s", s->gateway));
    env_push(&env, &n, ember_xasprintf("EMBER_DRIVER_ID=%s", id));
    env_push(&env, &n, ember_xstrdup("PYTHONUNBUFFERED=1"));   /* output reaches us at once */
    push_security(&env, &n);
    char *conf = conf_without_master(s->conf);
    env_push(&env, &n, ember_xasprintf("EMBER_CONF=%sspark.master=ember://%s\n"
                                       "spark.submit.deployMode=cluster\n"
                                       "spark.ember.driver.id=%s", conf, s->gateway, id));
    free(conf);
    if (*s->name)
        env_push(&env, &n, ember_xasprintf("EMBER_APP_NAME=%s", s->name));
    if (*s->properties_file)
        env_push(&env, &n, ember_xasprintf("EMBER_PROPERTIES_FILE=%s/%s", dir,
                                           s->properties_file));
    if (s->n_py_files) {
        char *list = joined_paths(dir, s->py_files, s->n_py_files, ",");
        env_push(&env, &n, ember_xasprintf("EMBER_PY_FILES=%s", list));
        free(list);
    }
    if (s->n_data_files) {
        char *list = joined_paths(dir, s->data_files, s->n_data_files, ",");
        env_push(&env, &n, ember_xasprintf("EMBER_FILES=%s", list));
        free(list);
    }
    free(roots);
    return env;
}

static char **driver_argv(const char *dir, const Ember__DriverSubmission *s)
{
    char **argv = ember_xcalloc(s->n_args + 3, sizeof(*argv));

    argv[0] = ember_xstrdup(EMBER_PYTHON_EXE);
    argv[1] = ember_xasprintf("%s/%s", dir, s->main);
    for (size_t i = 0; i < s->n_args; i++)
        argv[i + 2] = ember_xstrdup(s->args[i]);
    return argv;
}

/* ---- reports to the master ---- */

struct pending {
    struct ember_buf out, err;
};

static int send_report(struct driver_proc *p, const char *state, int exit_code,
                       const char *message, struct pending *pend)
{
    Ember__DriverReport r = EMBER__DRIVER_REPORT__INIT;
    ProtobufCMessage *ack = NULL;
    grpc_status_code st;

    r.driver_id = p->id;
    r.worker_id = p->w->id;
    r.state = (char *)state;
    r.exit_code = exit_code;
    r.message = (char *)(message ? message : "");
    r.stdout_data.data = pend->out.data;
    r.stdout_data.len = pend->out.len;
    r.stderr_data.data = pend->err.data;
    r.stderr_data.len = pend->err.len;
    st = ember_rpc_call(p->w->master, &ember__master__descriptor, "ReportDriver", &r.base, &ack,
                        NULL, NULL, REPORT_TIMEOUT_MS, NULL);
    if (ack)
        protobuf_c_message_free_unpacked(ack, NULL);
    if (st != GRPC_STATUS_OK && st != GRPC_STATUS_NOT_FOUND)
        return EMBER_ERPC;          /* keep the output for the next report */
    pend->out.len = pend->err.len = 0;
    return 0;
}

/* ---- the supervisor thread ---- */

/* In the child, between fork and exec: async-signal-safe calls only. */
static void exec_driver(struct driver_proc *p, pid_t parent, int out, int err, int status_fd)
{
    int null = open("/dev/null", O_RDONLY);
    sigset_t none;
    int e;

    /* The worker blocks SIGTERM and SIGINT to wait for them; a blocked mask
     * survives exec, and the driver must die of KillDriver's SIGTERM. */
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGPIPE, SIG_DFL);
    setpgid(0, 0);                     /* KillDriver signals the whole group */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(127);
    if (null < 0 || dup2(null, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0
        || chdir(p->dir) != 0)
        goto failed;
    execve(p->argv[0], p->argv, p->env);
failed:
    e = errno;
    if (write(status_fd, &e, sizeof(e)) < 0)
        _exit(126);
    _exit(127);
}

/* Forks the driver; its stdout and stderr pipes' read ends go to fds[0..1].
 * On failure *error is new. */
static int start_child(struct driver_proc *p, int fds[2], char **error)
{
    int out[2], err[2], status[2], e = 0;
    pid_t parent = getpid(), pid;

    if (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0
        || pipe2(status, O_CLOEXEC) != 0) {
        *error = ember_xasprintf("cannot make pipes: %s", strerror(errno));
        return EMBER_EIO;
    }
    pid = fork();
    if (pid == 0)
        exec_driver(p, parent, out[1], err[1], status[1]);
    close(out[1]);
    close(err[1]);
    close(status[1]);
    if (pid < 0 || read(status[0], &e, sizeof(e)) > 0) {
        *error = ember_xasprintf("cannot run %s: %s", p->argv[0], strerror(pid < 0 ? errno : e));
        close(status[0]);
        close(out[0]);
        close(err[0]);
        if (pid > 0)
            waitpid(pid, NULL, 0);
        return EMBER_EIO;
    }
    close(status[0]);
    pthread_mutex_lock(&p->w->lock);
    p->pid = pid;
    pthread_mutex_unlock(&p->w->lock);
    fds[0] = out[0];
    fds[1] = err[0];
    return 0;
}

static int open_log(const char *dir, const char *name)
{
    char *path = ember_xasprintf("%s/%s", dir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

    if (fd < 0)
        ember_log_error_errno("cannot create %s", path);
    free(path);
    return fd;
}

/* Keeps the newest max bytes of what waits for the master (it keeps no more
 * either); returns how many were dropped. */
static size_t cap_pending(struct ember_buf *pending, size_t max)
{
    size_t drop;

    if (!max || pending->len <= max)
        return 0;
    drop = pending->len - max;
    memmove(pending->data, pending->data + drop, max);
    pending->len = max;
    return drop;
}

/* Reads what fd has; returns 0 at EOF. */
static int pump(struct driver_proc *p, int fd, int file, struct ember_buf *pending)
{
    char chunk[65536];
    ssize_t n = read(fd, chunk, sizeof(chunk));

    if (n < 0)
        return errno == EINTR || errno == EAGAIN;
    if (n == 0)
        return 0;
    if (file >= 0 && write(file, chunk, (size_t)n) != n)
        ember_log_warn_errno("driver output file write failed");
    if (ember_buf_append(pending, chunk, (size_t)n) != 0)
        ember_log_error("driver output buffer refused %zd bytes", n);
    size_t dropped = cap_pending(pending, p->log_bytes);
    if (dropped && !p->log_dropped)
        ember_log_warn("driver=%s the master does not take its output: keeping the last %zu "
                       "bytes of each stream for it (the files keep everything)", p->id,
                       p->log_bytes);
    p->log_dropped += dropped;
    return 1;
}

/* Signals the group when a kill is due; reaps the driver once it exited. */
static int check_child(struct driver_proc *p, int *status, int *exited)
{
    uint64_t deadline;

    pthread_mutex_lock(&p->w->lock);
    deadline = p->kill_deadline_ms;
    pthread_mutex_unlock(&p->w->lock);
    if (!*exited && deadline && ember_monotonic_ms() >= deadline)
        killpg(p->pid, SIGKILL);
    if (!*exited && waitpid(p->pid, status, WNOHANG) == p->pid)
        *exited = 1;
    return *exited;
}

/* Copies the driver's output until it exited and its pipes closed (or a
 * while after it exited); returns its wait status. */
static int follow_child(struct driver_proc *p, int fds[2], struct pending *pend)
{
    int files[2] = {open_log(p->dir, "stdout"), open_log(p->dir, "stderr")};
    struct ember_buf *bufs[2] = {&pend->out, &pend->err};
    uint64_t last_report = ember_monotonic_ms(), exited_at = 0;
    int open_fds = 2, status = 0, exited = 0;

    while (open_fds > 0 && !(exited && ember_monotonic_ms() - exited_at > DRAIN_AFTER_EXIT_MS)) {
        struct pollfd pfd[2] = {{fds[0], POLLIN, 0}, {fds[1], POLLIN, 0}};
        poll(pfd, 2, 100);
        for (int i = 0; i < 2; i++)
            if (fds[i] >= 0 && (pfd[i].revents & (POLLIN | POLLHUP | POLLERR))
                && !pump(p, fds[i], files[i], bufs[i])) {
                close(fds[i]);
                fds[i] = -1;
                open_fds--;
            }
        if (!exited && check_child(p, &status, &exited))
            exited_at = ember_monotonic_ms();
        uint64_t since = ember_monotonic_ms() - last_report;
        if ((since >= REPORT_EVERY_MS && (pend->out.len || pend->err.len))
            || since >= REPORT_IDLE_EVERY_MS) {
            /* also without output: a master that declared our worker dead (a
             * partition) learns from it that the driver still runs */
            if (send_report(p, "RUNNING", 0, NULL, pend) == 0)
                p->log_dropped = 0;
            last_report = ember_monotonic_ms();
        }
    }
    for (int i = 0; i < 2; i++) {
        if (fds[i] >= 0)
            close(fds[i]);
        if (files[i] >= 0)
            close(files[i]);
    }
    /* Its pipes are closed but it runs (it closed fds 1 and 2): a kill must
     * still reach SIGKILL when it ignores SIGTERM, so no blocking wait. */
    while (!exited && !check_child(p, &status, &exited)) {
        struct timespec pause = {0, EXIT_POLL_MS * 1000000L};
        nanosleep(&pause, NULL);
        if (ember_monotonic_ms() - last_report >= REPORT_IDLE_EVERY_MS) {
            send_report(p, "RUNNING", 0, NULL, pend);
            last_report = ember_monotonic_ms();
        }
    }
    return status;
}

static void report_end(struct driver_proc *p, int status, const char *start_error,
                       struct pending *pend)
{
    int code = start_error ? 127
               : WIFSIGNALED(status) ? 128 + WTERMSIG(status)
                                     : WEXITSTATUS(status);
    char *message = start_error ? ember_xstrdup(start_error)
                    : WIFSIGNALED(status)
                        ? ember_xasprintf("killed by signal %d (%s)", WTERMSIG(status),
                                          strsignal(WTERMSIG(status)))
                        : ember_xasprintf("exited with code %d", code);
    const char *state = code == 0 ? "FINISHED" : p->kill_requested ? "KILLED" : "FAILED";

    ember_log_info("driver=%s %s: %s", p->id, state, message);
    /* Until the master has it (it may be restarting, or cut off from us and
     * counting the driver as lost with this worker) or we stop. */
    for (uint64_t wait_ms = 1000;; wait_ms = wait_ms * 2 > FINAL_RETRY_MAX_MS
                                                 ? FINAL_RETRY_MAX_MS : wait_ms * 2) {
        if (send_report(p, state, code, message, pend) == 0
            || ember_daemon_is_stopping(p->w->daemon)
            || ember_daemon_sleep(p->w->daemon, wait_ms))
            break;
    }
    free(message);
}

static void *supervise(void *arg)
{
    struct driver_proc *p = arg;
    struct pending pend;
    char *error = NULL;
    int fds[2], status = 0;

    ember_buf_init(&pend.out, 0);
    ember_buf_init(&pend.err, 0);
    if (start_child(p, fds, &error) == 0) {
        ember_log_info("driver=%s pid=%d started in %s", p->id, (int)p->pid, p->dir);
        status = follow_child(p, fds, &pend);
    }
    report_end(p, status, error, &pend);
    free(error);
    ember_buf_free(&pend.out);
    ember_buf_free(&pend.err);
    pthread_mutex_lock(&p->w->lock);
    p->finished = 1;
    pthread_mutex_unlock(&p->w->lock);
    return NULL;
}

/* ---- the handlers ---- */

/* Joins and frees drivers that ended; lock held. */
static void reap_finished(struct worker *w)
{
    for (struct driver_proc **link = &w->drivers; *link;) {
        struct driver_proc *p = *link;
        if (!p->finished) {
            link = &p->next;
            continue;
        }
        *link = p->next;
        pthread_join(p->thread, NULL);
        proc_free(p);
    }
}

static grpc_status_code handle_launch_driver(ember_rpc_ctx *ctx, const ProtobufCMessage *msg,
                                             void *user)
{
    const Ember__DriverLaunch *req = (const Ember__DriverLaunch *)msg;
    Ember__Ack ack = EMBER__ACK__INIT;
    struct worker *w = user;
    struct driver_proc *p;
    char *error = NULL, *dir = NULL;

    if (!req->submission || !valid_driver_id(req->driver_id)) {
        ember_rpc_set_details(ctx, "a driver id of letters, digits, - and _ and a submission "
                                   "are required");
        return GRPC_STATUS_INVALID_ARGUMENT;
    }
    if (write_files(w, req->driver_id, req->submission, &dir, &error) != 0) {
        ember_log_error("driver=%s %s", req->driver_id, error);
        ember_rpc_set_details(ctx, error);
        free(error);
        return GRPC_STATUS_INTERNAL;
    }
    p = ember_xcalloc(1, sizeof(*p));
    p->w = w;
    p->id = ember_xstrdup(req->driver_id);
    p->dir = dir;
    p->log_bytes = req->log_bytes > 0 ? (size_t)req->log_bytes : 0;
    p->argv = driver_argv(dir, req->submission);
    p->env = driver_env(w, p->id, dir, req->submission);
    pthread_mutex_lock(&w->lock);
    reap_finished(w);
    p->next = w->drivers;
    w->drivers = p;
    pthread_create(&p->thread, NULL, supervise, p);
    pthread_mutex_unlock(&w->lock);
    ember_rpc_send(ctx, &ack.base);
    return GRPC_STATUS_OK;
}

/* SIGTERM to the driver's process group; the supervisor sends SIGKILL after
 * the grace period. Lock held. */
static void kill_driver(struct driver_proc *p, uint64_t grace_ms)
{
    p->kill_requested = 1;
    if (!p->kill_deadline_ms)
        p->kill_deadline_ms = ember_monotonic_ms() + grace_ms;
    if (p->pid > 0 && !p->finished)
        killpg(p->pid, grace_ms ? SIGTERM : SIGKILL);
}

static grpc_status_code handle_kill_driver(ember_rpc_ctx *ctx, const ProtobufCMessage *msg,
                                           void *user)
{
    const Ember__DriverRef *ref = (const Ember__DriverRef *)msg;
    Ember__Ack ack = EMBER__ACK__INIT;
    struct worker *w = user;
    int found = 0;

    pthread_mutex_lock(&w->lock);
    for (struct driver_proc *p = w->drivers; p; p = p->next)
        if (strcmp(p->id, ref->driver_id) == 0 && !p->finished) {
            kill_driver(p, KILL_GRACE_MS);
            found = 1;
        }
    pthread_mutex_unlock(&w->lock);
    if (!found) {
        ember_rpc_set_details(ctx, "no such driver running on this worker");
        return GRPC_STATUS_NOT_FOUND;
    }
    ember_log_info("driver=%s SIGTERM sent", ref->driver_id);
    ember_rpc_send(ctx, &ack.base);
    return GRPC_STATUS_OK;
}

const ember_rpc_method_impl worker_driver_methods[] = {
    {"LaunchDriver", EMBER_RPC_UNARY, handle_launch_driver},
    {"KillDriver", EMBER_RPC_UNARY, handle_kill_driver},
};
const size_t worker_n_driver_methods =
    sizeof(worker_driver_methods) / sizeof(worker_driver_methods[0]);

void worker_drivers_stop(struct worker *w)
{
    struct driver_proc *p;

    pthread_mutex_lock(&w->lock);
    for (p = w->drivers; p; p = p->next)
        kill_driver(p, 0);
    pthread_mutex_unlock(&w->lock);
    while ((p = w->drivers) != NULL) {   /* no handler runs any more: no lock needed */
        w->drivers = p->next;
        pthread_join(p->thread, NULL);
        proc_free(p);
    }
}

/* The `ember` package (and its pyspark alias) for drivers: EMBER_PY_PATH,
 * else the checkout's python-client/ next to build/bin/, else /opt/ember/python. */
char *worker_driver_python_path(void)
{
    const char *env = getenv("EMBER_PY_PATH");
    char exe[PATH_MAX], *base = NULL;
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

    if (env && *env)
        return ember_xstrdup(env);
    if (n > 0) {
        exe[n] = '\0';
        *strrchr(exe, '/') = '\0';
        char *checkout = ember_xasprintf("%s/../../python-client", exe);
        base = realpath(checkout, NULL);
        free(checkout);
    }
    if (!base)
        base = ember_xstrdup("/opt/ember/python");
    char *paths = ember_xasprintf("%s:%s/alias", base, base);
    free(base);
    return paths;
}
