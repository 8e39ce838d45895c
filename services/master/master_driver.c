/* Cluster deploy mode: driver programs the master starts on a worker
 * (SubmitDriver), follows (ReportDriver from the worker, a dead worker fails
 * them), stops (KillDriver) and keeps the output of (DriverLog): the last
 * --driver-log-bytes of each stream live here, so they outlive the worker. */
#define _GNU_SOURCE
#include "master.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "master.pb-c.h"
#include "worker.pb-c.h"

#define LAUNCH_TIMEOUT_MS 8000   /* under the gateway's 10 s: the worker writes the files, then answers */
#define KILL_TIMEOUT_MS 5000

enum driver_state { DRIVER_SUBMITTED, DRIVER_RUNNING, DRIVER_FINISHED, DRIVER_FAILED,
                    DRIVER_KILLED };
static const char *const driver_state_names[] = {"SUBMITTED", "RUNNING", "FINISHED", "FAILED",
                                                 "KILLED"};

/* The tail of one output stream: bytes [dropped, dropped + buf.len) of it. */
struct driver_log {
    struct ember_buf buf;
    uint64_t dropped;
};

struct driver {
    char *id, *name, *main, *worker_id, *message;
    enum driver_state state;
    int exit_code, has_exit_code, kill_requested;
    /* Failed because its worker stopped heartbeating; that worker process may be
     * merely partitioned and still run it, so its reports and a kill still count. */
    int lost_with_worker;
    /* A kill was asked for but its worker has not acknowledged it: the worker's next
     * report that says the driver still runs sends it again. */
    int kill_unsent;
    uint64_t submitted_ms, ended_ms;
    struct driver_log out, err;
};

static int terminal(enum driver_state s)
{
    return s == DRIVER_FINISHED || s == DRIVER_FAILED || s == DRIVER_KILLED;
}

static struct driver *find_driver(struct master *m, const char *id)
{
    for (size_t i = 0; i < m->drivers.n; i++) {
        struct driver *d = m->drivers.items[i];
        if (strcmp(d->id, id) == 0)
            return d;
    }
    return NULL;
}

void master_driver_free(struct driver *d)
{
    if (!d)
        return;
    free(d->id);
    free(d->name);
    free(d->main);
    free(d->worker_id);
    free(d->message);
    ember_buf_free(&d->out.buf);
    ember_buf_free(&d->err.buf);
    free(d);
}

/* Appends to a stream, dropping its oldest bytes beyond max. */
static void log_append(struct driver_log *log, const uint8_t *p, size_t n, size_t max)
{
    if (n >= max) {
        log->dropped += log->buf.len + (n - max);
        log->buf.len = 0;
        p += n - max;
        n = max;
    } else if (log->buf.len + n > max) {
        size_t drop = log->buf.len + n - max;
        memmove(log->buf.data, log->buf.data + drop, log->buf.len - drop);
        log->buf.len -= drop;
        log->dropped += drop;
    }
    if (ember_buf_append(&log->buf, p, n) != 0)
        ember_log_error("driver output buffer refused %zu bytes", n);
}

static void end_driver(struct driver *d, enum driver_state state, const char *message)
{
    d->state = state;
    d->ended_ms = ember_now_ms();
    if (message && *message) {
        free(d->message);
        d->message = ember_xstrdup(message);
    }
    ember_log_info("driver=%s worker=%s %s%s%s", d->id, d->worker_id ? d->worker_id : "-",
                   driver_state_names[state], d->message ? ": " : "",
                   d->message ? d->message : "");
}

/* Drops the drivers that finished first beyond --retained-drivers (each holds
 * up to 2 x --driver-log-bytes); lock held. One lost with its worker counts
 * too: a worker may never come back, and a report for a forgotten driver is
 * answered NOT_FOUND, which the worker takes as the end. */
static void prune_finished(struct master *m)
{
    size_t finished = 0;

    for (size_t i = 0; i < m->drivers.n; i++) {
        struct driver *d = m->drivers.items[i];
        finished += terminal(d->state);
    }
    for (; finished > (size_t)m->retained_drivers; finished--) {
        size_t oldest = m->drivers.n;
        for (size_t i = 0; i < m->drivers.n; i++) {
            struct driver *d = m->drivers.items[i];
            if (terminal(d->state)
                && (oldest == m->drivers.n
                    || d->ended_ms < ((struct driver *)m->drivers.items[oldest])->ended_ms))
                oldest = i;
        }
        struct driver *gone = m->drivers.items[oldest];
        ember_log_info("driver=%s forgotten: over --retained-drivers %lld finished", gone->id,
                       (long long)m->retained_drivers);
        master_driver_free(gone);
        memmove(&m->drivers.items[oldest], &m->drivers.items[oldest + 1],
                (m->drivers.n - oldest - 1) * sizeof(m->drivers.items[0]));
        m->drivers.n--;
    }
}

void master_drivers_worker_lost(struct master *m, const char *worker_id, const char *why,
                                int process_gone)
{
    for (size_t i = 0; i < m->drivers.n; i++) {
        struct driver *d = m->drivers.items[i];
        if (!d->worker_id || strcmp(d->worker_id, worker_id) != 0)
            continue;
        if (terminal(d->state)) {
            if (process_gone)
                d->lost_with_worker = 0;   /* its process, and the driver with it, is gone */
            continue;
        }
        char *message = ember_xasprintf("worker %s %s while the driver ran", worker_id, why);
        end_driver(d, d->kill_requested ? DRIVER_KILLED : DRIVER_FAILED, message);
        d->lost_with_worker = !process_gone;
        free(message);
    }
    prune_finished(m);
}

void master_drivers_worker_back(struct master *m, const char *worker_id)
{
    for (size_t i = 0; i < m->drivers.n; i++) {
        struct driver *d = m->drivers.items[i];
        if (!d->lost_with_worker || !d->worker_id || strcmp(d->worker_id, worker_id) != 0)
            continue;
        /* The same worker process: it still runs the driver, or its final report
         * (retried until delivered) will say how it ended. */
        d->lost_with_worker = 0;
        d->state = DRIVER_RUNNING;
        d->ended_ms = 0;
        free(d->message);
        d->message = NULL;
        ember_log_info("driver=%s worker=%s RUNNING again: its worker is back", d->id, worker_id);
    }
}

/* ---- views ---- */

static json_t *json_time(uint64_t ms)
{
    char text[40];
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;

    gmtime_r(&secs, &tm);
    strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%S", &tm);
    return json_sprintf("%s.%03uZ", text, (unsigned)(ms % 1000));
}

static json_t *json_driver(const struct driver *d)
{
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:o, s:I, s:I}", "id", d->id, "name", d->name,
                          "mainResource", d->main, "state", driver_state_names[d->state],
                          "submissionTime", json_time(d->submitted_ms), "stdoutBytes",
                          (json_int_t)(d->out.dropped + d->out.buf.len), "stderrBytes",
                          (json_int_t)(d->err.dropped + d->err.buf.len));

    json_object_set_new(o, "workerId", d->worker_id ? json_string(d->worker_id) : json_null());
    json_object_set_new(o, "exitCode", d->has_exit_code ? json_integer(d->exit_code) : json_null());
    if (d->ended_ms) {
        json_object_set_new(o, "completionTime", json_time(d->ended_ms));
        json_object_set_new(o, "durationMs", json_integer((json_int_t)(d->ended_ms - d->submitted_ms)));
    }
    if (d->message)
        json_object_set_new(o, "message", json_string(d->message));
    return o;
}

json_t *master_json_drivers(struct master *m)
{
    json_t *list = json_array();

    for (size_t i = m->drivers.n; i-- > 0;)
        json_array_append_new(list, json_driver(m->drivers.items[i]));
    return list;
}

/* ---- checks ---- */

/* A path inside the driver's folder: relative, no "." or ".." parts, no
 * empty parts, printable. */
static int safe_relative_path(const char *p)
{
    const char *part = p;

    if (!*p || *p == '/' || strlen(p) > 1024)
        return 0;
    for (const char *c = p; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == '\\')
            return 0;
    while (*part) {
        size_t n = strcspn(part, "/");
        if (n == 0 || (n == 1 && part[0] == '.') || (n == 2 && strncmp(part, "..", 2) == 0))
            return 0;
        part += n;
        if (*part == '/')
            part++;
    }
    return p[strlen(p) - 1] != '/';
}

/* Whether path names an uploaded file, or (for a package folder) a folder of them. */
static int among_files(const Ember__DriverSubmission *s, const char *path, int folder_ok)
{
    size_t n = strlen(path);

    for (size_t i = 0; i < s->n_files; i++) {
        const char *f = s->files[i]->path;
        if (strcmp(f, path) == 0 || (folder_ok && strncmp(f, path, n) == 0 && f[n] == '/'))
            return 1;
    }
    return 0;
}

/* On failure *error is a new sentence. */
static int check_submission(const Ember__DriverSubmission *s, char **error)
{
    for (size_t i = 0; i < s->n_files; i++)
        if (!safe_relative_path(s->files[i]->path)) {
            *error = ember_xasprintf("file path '%.200s' is not a plain relative path (no "
                                     "leading /, no . or .. parts)", s->files[i]->path);
            return EMBER_EINVAL;
        }
    if (!*s->main || !among_files(s, s->main, 0)) {
        *error = ember_xasprintf("the script '%.200s' is not among the uploaded files", s->main);
        return EMBER_EINVAL;
    }
    for (size_t i = 0; i < s->n_py_files; i++)
        if (!among_files(s, s->py_files[i], 1)) {
            *error = ember_xasprintf("py-file '%.200s' is not among the uploaded files",
                                     s->py_files[i]);
            return EMBER_EINVAL;
        }
    for (size_t i = 0; i < s->n_data_files; i++)
        if (!among_files(s, s->data_files[i], 0)) {
            *error = ember_xasprintf("file '%.200s' is not among the uploaded files",
                                     s->data_files[i]);
            return EMBER_EINVAL;
        }
    if (*s->properties_file && !among_files(s, s->properties_file, 0)) {
        *error = ember_xasprintf("properties file '%.200s' is not among the uploaded files",
                                 s->properties_file);
        return EMBER_EINVAL;
    }
    if (!*s->gateway) {
        *error = ember_xstrdup("the gateway address the driver connects to is missing");
        return EMBER_EINVAL;
    }
    return 0;
}

/* ---- handlers ---- */

static int drivers_on(struct master *m, const char *worker_id)
{
    int n = 0;

    for (size_t i = 0; i < m->drivers.n; i++) {
        struct driver *d = m->drivers.items[i];
        n += !terminal(d->state) && d->worker_id && strcmp(d->worker_id, worker_id) == 0;
    }
    return n;
}

/* The alive worker running the fewest drivers (the first of them, in
 * registration order, after the one chosen last: spreads equal loads). */
static struct worker_info *pick_worker(struct master *m)
{
    struct worker_info *best = NULL;
    int best_load = 0;
    size_t n = m->workers.n;

    for (size_t k = 0; k < n; k++) {
        struct worker_info *w = m->workers.items[(m->driver_counter + k) % n];
        int load = drivers_on(m, w->id);
        if (w->alive && (!best || load < best_load)) {
            best = w;
            best_load = load;
        }
    }
    return best;
}

static char *new_driver_id(struct master *m)
{
    char stamp[32];
    time_t now = time(NULL);
    struct tm tm;

    gmtime_r(&now, &tm);
    strftime(stamp, sizeof(stamp), "%Y%m%d%H%M%S", &tm);
    return ember_xasprintf("driver-%s-%04llu", stamp, (unsigned long long)++m->driver_counter);
}

/* Registers a new driver placed on a worker; lock held. *channel is borrowed
 * (a replaced channel is retired, never destroyed, while the master runs). */
static struct driver *place_driver(struct master *m, const Ember__DriverSubmission *s,
                                   grpc_channel **channel)
{
    struct worker_info *w = pick_worker(m);
    struct driver *d;

    if (!w)
        return NULL;
    d = ember_xcalloc(1, sizeof(*d));
    d->id = new_driver_id(m);
    d->name = ember_xstrdup(*s->name ? s->name : s->main);
    d->main = ember_xstrdup(s->main);
    d->worker_id = ember_xstrdup(w->id);
    d->state = DRIVER_RUNNING;
    d->submitted_ms = ember_now_ms();
    ember_buf_init(&d->out.buf, 0);
    ember_buf_init(&d->err.buf, 0);
    ptr_array_push(&m->drivers, d);
    *channel = w->channel;
    return d;
}

static grpc_status_code handle_submit_driver(ember_rpc_ctx *ctx, const ProtobufCMessage *msg,
                                             void *user)
{
    const Ember__DriverSubmission *s = (const Ember__DriverSubmission *)msg;
    Ember__DriverLaunch launch = EMBER__DRIVER_LAUNCH__INIT;
    Ember__DriverRef reply = EMBER__DRIVER_REF__INIT;
    ProtobufCMessage *ack = NULL;
    struct master *m = user;
    grpc_channel *channel = NULL;
    char *error = NULL, *details = NULL, *id;
    grpc_status_code st;
    struct driver *d;

    if (check_submission(s, &error) != 0) {
        st = master_rpc_fail(ctx, GRPC_STATUS_INVALID_ARGUMENT, error);
        free(error);
        return st;
    }
    pthread_mutex_lock(&m->lock);
    d = place_driver(m, s, &channel);
    id = d ? ember_xstrdup(d->id) : NULL;
    pthread_mutex_unlock(&m->lock);
    if (!d)
        return master_rpc_fail(ctx, GRPC_STATUS_FAILED_PRECONDITION,
                    "no worker is alive to run the driver; start a worker and submit again");
    launch.driver_id = id;
    launch.submission = (Ember__DriverSubmission *)s;
    launch.log_bytes = m->driver_log_bytes;
    st = ember_rpc_call(channel, &ember__worker__descriptor, "LaunchDriver", &launch.base, &ack,
                        NULL, NULL, LAUNCH_TIMEOUT_MS, &details);
    if (ack)
        protobuf_c_message_free_unpacked(ack, NULL);
    if (st == GRPC_STATUS_DEADLINE_EXCEEDED) {
        /* The worker may have started it after all: make sure it does not run
         * unfollowed while we call it failed. */
        Ember__DriverRef ref = EMBER__DRIVER_REF__INIT;
        ProtobufCMessage *kill_ack = NULL;
        grpc_status_code kill_st;

        ref.driver_id = id;
        kill_st = ember_rpc_call(channel, &ember__worker__descriptor, "KillDriver", &ref.base,
                                 &kill_ack, NULL, NULL, KILL_TIMEOUT_MS, NULL);
        if (kill_ack)
            protobuf_c_message_free_unpacked(kill_ack, NULL);
        ember_log_warn("driver=%s launch timed out after %d ms; kill sent to the worker (%s)",
                       id, LAUNCH_TIMEOUT_MS, kill_st == GRPC_STATUS_OK ? "answered"
                                                                        : "no answer");
    }
    if (st != GRPC_STATUS_OK) {
        char *why = ember_xasprintf("the worker could not start it: %s",
                                    st == GRPC_STATUS_DEADLINE_EXCEEDED
                                        ? "it did not answer in time"
                                        : details && *details ? details : "unreachable");
        pthread_mutex_lock(&m->lock);
        d = find_driver(m, id);
        if (d && !terminal(d->state)) {
            if (st == GRPC_STATUS_DEADLINE_EXCEEDED)
                d->kill_requested = 1;   /* a late report from it ends it KILLED */
            end_driver(d, DRIVER_FAILED, why);
            d->lost_with_worker = st == GRPC_STATUS_DEADLINE_EXCEEDED;
            prune_finished(m);
        }
        pthread_mutex_unlock(&m->lock);
        free(why);
    } else {
        ember_log_info("driver=%s main=%.200s submitted", id, s->main);
    }
    free(details);
    reply.driver_id = id;
    ember_rpc_send(ctx, &reply.base);
    free(id);
    return GRPC_STATUS_OK;
}

/* The worker answered a kill: it signalled the driver (OK) or runs no such driver
 * (NOT_FOUND, its final report says how it ended). No report needs to carry it again. */
static void kill_delivered(struct master *m, const char *driver_id, grpc_status_code st)
{
    if (st != GRPC_STATUS_OK && st != GRPC_STATUS_NOT_FOUND)
        return;
    pthread_mutex_lock(&m->lock);
    struct driver *d = find_driver(m, driver_id);
    if (d)
        d->kill_unsent = 0;
    pthread_mutex_unlock(&m->lock);
}

static grpc_status_code handle_report_driver(ember_rpc_ctx *ctx, const ProtobufCMessage *msg,
                                             void *user)
{
    const Ember__DriverReport *r = (const Ember__DriverReport *)msg;
    Ember__Ack ack = EMBER__ACK__INIT;
    struct master *m = user;
    grpc_channel *kill_channel = NULL;
    struct driver *d;

    pthread_mutex_lock(&m->lock);
    d = find_driver(m, r->driver_id);
    if (d && d->worker_id && strcmp(d->worker_id, r->worker_id) == 0) {
        size_t max = (size_t)m->driver_log_bytes;
        log_append(&d->out, r->stdout_data.data, r->stdout_data.len, max);
        log_append(&d->err, r->stderr_data.data, r->stderr_data.len, max);
        int running = strcmp(r->state, "RUNNING") == 0;
        if (d->lost_with_worker) {
            /* Its worker was declared dead but still runs it: it speaks for it again. */
            d->lost_with_worker = 0;
            d->state = DRIVER_RUNNING;
            d->ended_ms = 0;
            free(d->message);
            d->message = NULL;
            ember_log_info("driver=%s worker=%s reports again", d->id, d->worker_id);
        }
        if (running && d->kill_unsent) {
            struct worker_info *w = master_find_worker(m, d->worker_id);
            if (w && w->channel)
                kill_channel = w->channel;   /* asked while we could not reach it */
        }
        if (!terminal(d->state) && !running) {
            d->exit_code = r->exit_code;
            d->has_exit_code = 1;
            if (d->kill_requested)
                end_driver(d, DRIVER_KILLED, NULL);
            else
                end_driver(d, r->exit_code == 0 ? DRIVER_FINISHED : DRIVER_FAILED, r->message);
            prune_finished(m);
        }
    }
    pthread_mutex_unlock(&m->lock);
    if (!d)
        return master_rpc_fail(ctx, GRPC_STATUS_NOT_FOUND, "no such driver (the master restarted?)");
    if (kill_channel) {
        Ember__DriverRef ref = EMBER__DRIVER_REF__INIT;
        ProtobufCMessage *kill_ack = NULL;

        ref.driver_id = r->driver_id;
        grpc_status_code st = ember_rpc_call(kill_channel, &ember__worker__descriptor,
                                             "KillDriver", &ref.base, &kill_ack, NULL, NULL,
                                             KILL_TIMEOUT_MS, NULL);
        if (kill_ack)
            protobuf_c_message_free_unpacked(kill_ack, NULL);
        ember_log_info("driver=%s kill requested again", r->driver_id);
        kill_delivered(m, r->driver_id, st);
    }
    ember_rpc_send(ctx, &ack.base);
    return GRPC_STATUS_OK;
}

static grpc_status_code not_found(ember_rpc_ctx *ctx, const char *id)
{
    char *why = ember_xasprintf("no driver '%.100s' (ids look like driver-...; a driver of an "
                                "earlier master is forgotten)", id);
    grpc_status_code st = master_rpc_fail(ctx, GRPC_STATUS_NOT_FOUND, why);

    free(why);
    return st;
}

static grpc_status_code handle_driver_status(ember_rpc_ctx *ctx, const ProtobufCMessage *msg,
                                             void *user)
{
    const Ember__DriverRef *ref = (const Ember__DriverRef *)msg;
    struct master *m = user;
    json_t *view = NULL;
    struct driver *d;

    pthread_mutex_lock(&m->lock);
    d = find_driver(m, ref->driver_id);
    if (d)
        view = json_driver(d);
    pthread_mutex_unlock(&m->lock);
    if (!view)
        return not_found(ctx, ref->driver_id);
    return master_send_json(ctx, view);
}

static grpc_status_code handle_kill_driver(ember_rpc_ctx *ctx, const ProtobufCMessage *msg,
                                           void *user)
{
    const Ember__DriverRef *ref = (const Ember__DriverRef *)msg;
    struct master *m = user;
    grpc_channel *channel = NULL;
    grpc_status_code st = GRPC_STATUS_UNAVAILABLE;
    struct worker_info *w;
    json_t *view = NULL;
    struct driver *d;

    pthread_mutex_lock(&m->lock);
    d = find_driver(m, ref->driver_id);
    if (d && (d->lost_with_worker || !terminal(d->state))) {
        /* Ask its worker even when that worker was declared dead: it may still run the
         * driver, and may already have said so in a report before its next heartbeat. */
        d->kill_requested = 1;
        d->kill_unsent = 1;
        w = master_find_worker(m, d->worker_id);
        if (w && w->channel)
            channel = w->channel;
    }
    pthread_mutex_unlock(&m->lock);
    if (!d)
        return not_found(ctx, ref->driver_id);
    if (channel) {
        ProtobufCMessage *ack = NULL;
        st = ember_rpc_call(channel, &ember__worker__descriptor, "KillDriver", &ref->base, &ack,
                            NULL, NULL, KILL_TIMEOUT_MS, NULL);
        if (ack)
            protobuf_c_message_free_unpacked(ack, NULL);
        ember_log_info("driver=%s kill requested (%s)", ref->driver_id,
                       st == GRPC_STATUS_OK          ? "its worker has it"
                       : st == GRPC_STATUS_NOT_FOUND ? "its worker does not run it"
                                                     : "its worker did not answer");
    }
    kill_delivered(m, ref->driver_id, st);
    pthread_mutex_lock(&m->lock);
    d = find_driver(m, ref->driver_id);
    int ended_here = 0;
    if (d && d->kill_unsent && !terminal(d->state)) {
        w = master_find_worker(m, d->worker_id);
        if (!w || !w->alive) {
            /* Nobody can stop it now, so it ends KILLED. If its worker comes back still
             * running it, that worker's next report gets the kill and its exit code. */
            end_driver(d, DRIVER_KILLED, "killed while its worker was unreachable");
            d->lost_with_worker = 1;
            ended_here = 1;
        }
    }
    if (d)
        view = json_driver(d);
    if (ended_here)
        prune_finished(m);
    pthread_mutex_unlock(&m->lock);
    if (!view)
        return not_found(ctx, ref->driver_id);
    return master_send_json(ctx, view);
}

static grpc_status_code handle_driver_log(ember_rpc_ctx *ctx, const ProtobufCMessage *msg,
                                          void *user)
{
    const Ember__DriverLogRequest *req = (const Ember__DriverLogRequest *)msg;
    Ember__DriverLogReply reply = EMBER__DRIVER_LOG_REPLY__INIT;
    struct master *m = user;
    const struct driver_log *log;
    struct driver *d;
    int is_out = strcmp(req->stream, "stdout") == 0;

    if (!is_out && strcmp(req->stream, "stderr") != 0)
        return master_rpc_fail(ctx, GRPC_STATUS_INVALID_ARGUMENT, "stream must be stdout or stderr");
    pthread_mutex_lock(&m->lock);
    d = find_driver(m, req->driver_id);
    if (d) {
        log = is_out ? &d->out : &d->err;
        reply.offset = req->offset > log->dropped ? req->offset : log->dropped;
        reply.total = log->dropped + log->buf.len;
        if (reply.offset > reply.total)
            reply.offset = reply.total;
        reply.data.len = reply.total - reply.offset;
        reply.data.data = reply.data.len ? ember_xmalloc(reply.data.len) : NULL;
        if (reply.data.len)
            memcpy(reply.data.data, log->buf.data + (reply.offset - log->dropped),
                   reply.data.len);
    }
    pthread_mutex_unlock(&m->lock);
    if (!d)
        return not_found(ctx, req->driver_id);
    ember_rpc_send(ctx, &reply.base);
    free(reply.data.data);
    return GRPC_STATUS_OK;
}

const ember_rpc_method_impl master_driver_methods[] = {
    {"SubmitDriver", EMBER_RPC_UNARY, handle_submit_driver},
    {"ReportDriver", EMBER_RPC_UNARY, handle_report_driver},
    {"DriverStatus", EMBER_RPC_UNARY, handle_driver_status},
    {"KillDriver", EMBER_RPC_UNARY, handle_kill_driver},
    {"DriverLog", EMBER_RPC_UNARY, handle_driver_log},
};
const size_t master_n_driver_methods =
    sizeof(master_driver_methods) / sizeof(master_driver_methods[0]);
