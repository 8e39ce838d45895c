/* The HTTP side of the gateway: one MHD daemon (epoll, a fixed thread pool),
 * the route table, request bodies under --max-body-bytes, and responses.
 * Handlers block on gRPC calls with short deadlines; a blocked handler stalls
 * only the connections of its own MHD thread. */
#define _GNU_SOURCE
#include "gw.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "security.h"

#define MAX_SEGMENTS 8                 /* the longest route has 8 path segments */
#define MAX_APP_ID 128
#define JSON_TYPE "application/json"

/* Route flags. Every route needs the shared secret (when one is set) unless
 * it is OPEN: open routes show nothing of the cluster's work. */
#define OPEN 1u       /* the UI's shell and login, liveness */
#define UPLOAD 2u     /* a large body: counts against --max-uploads */

struct gw_route {
    const char *method;
    const char *pattern;  /* {app}, {job}, {stage}, {rdd} and {partition} are parameters */
    gw_handler fn;
    const char *what;     /* Query kind for gw_api_query */
    unsigned flags;
};

static const struct gw_route routes[] = {
    {"GET", "/", gw_ui_index, NULL, OPEN},
    {"GET", "/index.html", gw_ui_index, NULL, OPEN},
    {"POST", "/login", gw_auth_login, NULL, OPEN},
    {"POST", "/logout", gw_auth_logout, NULL, OPEN},
    {"GET", "/jobs", gw_ui_jobs, NULL},
    {"GET", "/health", gw_api_health, NULL, OPEN},
    {"POST", "/api/v1/applications", gw_api_create_app, NULL},
    {"GET", "/api/v1/applications", gw_api_query, "applications"},
    {"DELETE", "/api/v1/applications/{app}", gw_api_end_app, NULL},
    {"POST", "/api/v1/applications/{app}/jobs", gw_api_submit_job, NULL, UPLOAD},
    {"GET", "/api/v1/applications/{app}/jobs", gw_api_query, "jobs"},
    {"GET", "/api/v1/applications/{app}/jobs/{job}", gw_api_get_job, NULL},
    {"POST", "/api/v1/applications/{app}/jobs/{job}/cancel", gw_api_cancel_job, NULL},
    {"GET", "/api/v1/applications/{app}/jobs/{job}/results", gw_results_get_all, NULL},
    {"GET", "/api/v1/applications/{app}/jobs/{job}/results/{partition}", gw_results_get, NULL},
    {"GET", "/api/v1/applications/{app}/stages", gw_api_query, "stages"},
    {"GET", "/api/v1/applications/{app}/stages/{stage}", gw_api_query, "stage"},
    {"GET", "/api/v1/jobs", gw_api_query, "jobs"},
    {"GET", "/api/v1/stages", gw_api_query, "stages"},
    {"GET", "/api/v1/executors", gw_api_query, "executors"},
    {"GET", "/api/v1/applications/{app}/storage/rdd", gw_api_query, "storage"},
    {"DELETE", "/api/v1/applications/{app}/rdds/{rdd}", gw_api_unpersist, NULL},
    {"GET", "/api/v1/storage/rdd", gw_api_query, "storage"},
    {"PUT", "/api/v1/applications/{app}/broadcasts/{broadcast}", gw_broadcast_put, NULL, UPLOAD},
    {"DELETE", "/api/v1/applications/{app}/broadcasts/{broadcast}", gw_broadcast_delete, NULL},
    {"GET", "/api/v1/blockmanagers", gw_api_query, "blockmanagers"},
    {"GET", "/api/v1/applications/{app}/executors", gw_api_query, "executors"},
    {"GET", "/api/v1/applications/{app}/environment", gw_api_environment, NULL},
    {"GET", "/api/v1/environment", gw_api_environment, NULL},
    {"GET", "/metrics", gw_api_metrics, NULL},
    {"POST", "/api/v1/drivers", gw_drivers_submit, NULL, UPLOAD},
    {"GET", "/api/v1/drivers", gw_api_query, "drivers"},
    {"GET", "/api/v1/drivers/{driver}", gw_drivers_status, NULL},
    {"POST", "/api/v1/drivers/{driver}/kill", gw_drivers_kill, NULL},
    {"GET", "/api/v1/drivers/{driver}/stdout", gw_drivers_log, NULL},
    {"GET", "/api/v1/drivers/{driver}/stderr", gw_drivers_log, NULL},
};
#define N_ROUTES (sizeof(routes) / sizeof(routes[0]))

void gw_http_print_routes(FILE *out)
{
    for (size_t i = 0; i < N_ROUTES; i++)
        fprintf(out, "%s %s %s\n", routes[i].method, routes[i].pattern,
                routes[i].flags & OPEN ? "open" : "secret");
}

/* ---- responses ---- */

enum MHD_Result gw_reply_response(struct gw_request *rq, unsigned status, struct MHD_Response *r,
                                  const char *type)
{
    enum MHD_Result ret;

    if (!r)
        return MHD_NO;                 /* out of memory in MHD: drop the connection */
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    rq->status = status;
    if (rq->hold) {                    /* sent by the last call, see begin_request */
        rq->held = r;
        return MHD_YES;
    }
    ret = MHD_queue_response(rq->conn, status, r);
    MHD_destroy_response(r);
    return ret;
}

/* Takes ownership of j. */
static struct MHD_Response *json_response(json_t *j)
{
    size_t n = json_dumpb(j, NULL, 0, JSON_COMPACT);
    char *buf = ember_xmalloc(n + 1);

    json_dumpb(j, buf, n, JSON_COMPACT);
    buf[n] = '\n';                     /* friendlier to curl and shells */
    json_decref(j);
    return MHD_create_response_from_buffer(n + 1, buf, MHD_RESPMEM_MUST_FREE);
}

/* Messages may quote user input or a peer's details, so they may not be UTF-8;
 * JSON strings must be. */
static json_t *message_string(const char *message)
{
    json_t *s = json_string(message);
    char *copy;

    if (s)
        return s;
    copy = ember_xstrdup(message);
    for (char *p = copy; *p; p++)
        if ((unsigned char)*p >= 0x80)
            *p = '?';
    s = json_string(copy);
    free(copy);
    return s;
}

static struct MHD_Response *error_response(const char *message)
{
    json_t *j = json_object();

    json_object_set_new(j, "error", message_string(message));
    return json_response(j);
}

enum MHD_Result gw_reply_json(struct gw_request *rq, unsigned status, json_t *body)
{
    if (!body)
        return gw_reply_response(rq, MHD_HTTP_INTERNAL_SERVER_ERROR,
                     error_response("the gateway could not build its answer"), JSON_TYPE);
    return gw_reply_response(rq, status, json_response(body), JSON_TYPE);
}

enum MHD_Result gw_reply_json_headers(struct gw_request *rq, unsigned status, json_t *body,
                                      const char *const *headers)
{
    struct MHD_Response *r;

    if (!body)
        return gw_reply_json(rq, status, NULL);
    r = json_response(body);
    for (; r && headers && headers[0]; headers += 2)
        MHD_add_response_header(r, headers[0], headers[1]);
    return gw_reply_response(rq, status, r, JSON_TYPE);
}

static enum MHD_Result reply_error_v(struct gw_request *rq, unsigned status,
                                     const char *const *headers, const char *fmt, va_list ap)
{
    char *message = NULL;
    struct MHD_Response *r;

    if (vasprintf(&message, fmt, ap) < 0)
        message = NULL;
    r = error_response(message ? message : "unknown error");
    free(message);
    for (; r && headers && headers[0]; headers += 2)
        MHD_add_response_header(r, headers[0], headers[1]);
    return gw_reply_response(rq, status, r, JSON_TYPE);
}

enum MHD_Result gw_reply_error(struct gw_request *rq, unsigned status, const char *fmt, ...)
{
    va_list ap;
    enum MHD_Result ret;

    va_start(ap, fmt);
    ret = reply_error_v(rq, status, NULL, fmt, ap);
    va_end(ap);
    return ret;
}

enum MHD_Result gw_reply_error_headers(struct gw_request *rq, unsigned status,
                                       const char *const *headers, const char *fmt, ...)
{
    va_list ap;
    enum MHD_Result ret;

    va_start(ap, fmt);
    ret = reply_error_v(rq, status, headers, fmt, ap);
    va_end(ap);
    return ret;
}

enum MHD_Result gw_reply_buffer(struct gw_request *rq, unsigned status, const char *type,
                                void *data, size_t len)
{
    if (!data)                         /* an empty body, e.g. an empty block */
        return gw_reply_static(rq, status, type, "", 0);
    return gw_reply_response(rq, status, MHD_create_response_from_buffer(len, data, MHD_RESPMEM_MUST_FREE),
                 type);
}

enum MHD_Result gw_reply_static(struct gw_request *rq, unsigned status, const char *type,
                                const void *data, size_t len)
{
    return gw_reply_response(rq, status,
                 MHD_create_response_from_buffer(len, (void *)data, MHD_RESPMEM_PERSISTENT),
                 type);
}

unsigned gw_rpc_http_status(grpc_status_code code, const char *details, const char *peer,
                            char **message)
{
    int has = details && *details;

    switch (code) {
    case GRPC_STATUS_INVALID_ARGUMENT:
        *message = ember_xasprintf("%s", has ? details : "the request is malformed");
        return MHD_HTTP_BAD_REQUEST;
    case GRPC_STATUS_NOT_FOUND:
        *message = ember_xasprintf("%s", has ? details : "not found");
        return MHD_HTTP_NOT_FOUND;
    case GRPC_STATUS_FAILED_PRECONDITION:
        *message = ember_xasprintf("%s", has ? details : "not possible in the current state");
        return MHD_HTTP_CONFLICT;
    case GRPC_STATUS_UNAVAILABLE:
    case GRPC_STATUS_DEADLINE_EXCEEDED:
        *message = ember_xasprintf("%s is unreachable (%s)", peer,
                                   code == GRPC_STATUS_DEADLINE_EXCEEDED ? "no answer in time"
                                   : has ? details : "unavailable");
        return MHD_HTTP_SERVICE_UNAVAILABLE;
    default:
        *message = ember_xasprintf("%s failed the request (gRPC status %d%s%s)", peer, (int)code,
                                   has ? ": " : "", has ? details : "");
        return MHD_HTTP_INTERNAL_SERVER_ERROR;
    }
}

enum MHD_Result gw_reply_rpc_error(struct gw_request *rq, grpc_status_code code,
                                   const char *details, const char *peer)
{
    char *message = NULL;
    unsigned status = gw_rpc_http_status(code, details, peer, &message);
    enum MHD_Result ret = gw_reply_error(rq, status, "%s", message);

    free(message);
    return ret;
}

static enum MHD_Result reply_not_allowed(struct gw_request *rq, const char *allow)
{
    char *message = ember_xasprintf("%s is not allowed on %s; use %s", rq->method, rq->path,
                                    allow);
    struct MHD_Response *r = error_response(message);

    free(message);
    if (r)
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow);
    return gw_reply_response(rq, MHD_HTTP_METHOD_NOT_ALLOWED, r, JSON_TYPE);
}

static enum MHD_Result reply_too_big(struct gw_request *rq)
{
    return gw_reply_error(rq, MHD_HTTP_CONTENT_TOO_LARGE,
                          "the request body is over the limit of %zu bytes (--max-body-bytes)",
                          rq->gw->max_body);
}

/* ---- routing ---- */

/* Splits path in place at '/', skipping empty segments. Returns how many there
 * are, which may exceed MAX_SEGMENTS (only the first MAX_SEGMENTS are stored). */
static int split_path(char *path, char **seg)
{
    char *save = NULL;
    int n = 0;

    for (char *s = strtok_r(path, "/", &save); s; s = strtok_r(NULL, "/", &save)) {
        if (n < MAX_SEGMENTS)
            seg[n] = s;
        n++;
    }
    return n;
}

/* Does the path split into seg[0..nseg) have the shape of `pattern`?
 * Parameters match any segment. */
static int shape_matches(const char *pattern, char **seg, int nseg)
{
    const char *p = pattern + strspn(pattern, "/");
    int i = 0;

    for (; *p; i++) {
        size_t n = strcspn(p, "/");
        if (i == nseg)
            return 0;
        if (p[0] != '{' && (strlen(seg[i]) != n || strncmp(p, seg[i], n) != 0))
            return 0;
        p += n;
        p += strspn(p, "/");
    }
    return i == nseg;
}

/* The route for method and path, or NULL: then allow lists the methods the
 * path takes ("" for an unknown path). HEAD is served as GET. */
static const struct gw_route *find_route(const char *method, char **seg, int nseg, char *allow,
                                         size_t allow_size)
{
    const char *want = strcmp(method, "HEAD") == 0 ? "GET" : method;

    allow[0] = '\0';
    for (size_t i = 0; i < N_ROUTES; i++) {
        const struct gw_route *r = &routes[i];
        if (!shape_matches(r->pattern, seg, nseg))
            continue;
        if (strcmp(r->method, want) == 0)
            return r;
        if (!strstr(allow, r->method)) {
            size_t used = strlen(allow);
            snprintf(allow + used, allow_size - used, "%s%s", used ? ", " : "", r->method);
        }
    }
    return NULL;
}

/* A uint32 id written as decimal digits only ("007" is fine, "-1", "1e3" are not). */
static int parse_id(const char *s, uint32_t *out)
{
    size_t n = strlen(s);
    unsigned long long v;

    if (n == 0 || n > 10 || strspn(s, "0123456789") != n)
        return EMBER_EINVAL;
    v = strtoull(s, NULL, 10);
    if (v > UINT32_MAX)
        return EMBER_EINVAL;
    *out = (uint32_t)v;
    return 0;
}

static int valid_app_id(const char *s)
{
    size_t n = strlen(s);
    const char *ok = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.";

    return n > 4 && n <= MAX_APP_ID && strncmp(s, "app-", 4) == 0 && strspn(s, ok) == n;
}

static int valid_driver_id(const char *s)
{
    size_t n = strlen(s);
    const char *ok = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_";

    return n > 7 && n <= MAX_APP_ID && strncmp(s, "driver-", 7) == 0 && strspn(s, ok) == n;
}

static int param_is(const char *name, size_t len, const char *want)
{
    return strlen(want) == len && strncmp(name, want, len) == 0;
}

/* Checks one path parameter and stores it in rq; on failure *error is new. */
static int bind_param(struct gw_request *rq, const char *name, size_t len, const char *value,
                      char **error)
{
    uint32_t *id = NULL;

    if (param_is(name, len, "app")) {
        if (!valid_app_id(value)) {
            *error = ember_xasprintf("no application '%.64s': application ids look like app-...",
                                     value);
            return EMBER_EINVAL;
        }
        rq->app = value;
        return 0;
    }
    if (param_is(name, len, "driver")) {
        if (!valid_driver_id(value)) {
            *error = ember_xasprintf("no driver '%.64s': driver ids look like driver-...",
                                     value);
            return EMBER_EINVAL;
        }
        rq->driver = value;
        return 0;
    }
    if (param_is(name, len, "job"))
        id = &rq->job;
    else if (param_is(name, len, "stage"))
        id = &rq->stage;
    else if (param_is(name, len, "rdd"))
        id = &rq->rdd;
    else if (param_is(name, len, "broadcast"))
        id = &rq->broadcast;
    else
        id = &rq->partition;
    if (parse_id(value, id) != 0) {
        *error = ember_xasprintf("no %.*s '%.64s': %.*s ids are non-negative integers", (int)len,
                                 name, value, (int)len, name);
        return EMBER_EINVAL;
    }
    return 0;
}

static int bind_params(struct gw_request *rq, char **seg, char **error)
{
    const char *p = rq->route->pattern + strspn(rq->route->pattern, "/");

    for (int i = 0; *p; i++) {
        size_t n = strcspn(p, "/");
        if (p[0] == '{' && bind_param(rq, p + 1, n - 2, seg[i], error) != 0)
            return EMBER_EINVAL;
        p += n;
        p += strspn(p, "/");
    }
    return 0;
}

/* Path segments that could mean a file elsewhere ("..", ".", backslashes) match
 * no route; refusing them here says so whatever routes are added later. MHD
 * has already decoded %XX, so "%2e%2e" and "%2f" arrive as ".." and "/". */
static int suspicious_path(char **seg, int nseg)
{
    for (int i = 0; i < nseg && i < MAX_SEGMENTS; i++)
        if (strcmp(seg[i], ".") == 0 || strcmp(seg[i], "..") == 0 || strchr(seg[i], '\\'))
            return 1;
    return 0;
}

/* Takes one of --max-uploads for an UPLOAD route; 0 when all are taken. */
static int take_upload_slot(struct gw_request *rq)
{
    struct gw *g = rq->gw;
    int ok;

    pthread_mutex_lock(&g->uploads_lock);
    ok = g->uploads < g->max_uploads;
    if (ok)
        g->uploads++;
    pthread_mutex_unlock(&g->uploads_lock);
    rq->counted_upload = ok;
    return ok;
}

static void release_upload_slot(struct gw_request *rq)
{
    if (!rq->counted_upload)
        return;
    pthread_mutex_lock(&rq->gw->uploads_lock);
    rq->gw->uploads--;
    pthread_mutex_unlock(&rq->gw->uploads_lock);
    rq->counted_upload = 0;
}

static enum MHD_Result reply_busy(struct gw_request *rq)
{
    const char *headers[] = {MHD_HTTP_HEADER_RETRY_AFTER, "1", NULL};

    return gw_reply_error_headers(rq, MHD_HTTP_SERVICE_UNAVAILABLE, headers,
                                  "the gateway is receiving %u uploads already (--max-uploads); "
                                  "try again shortly", rq->gw->max_uploads);
}

/* ---- the request cycle ---- */

struct bad_text {
    const char *what;              /* "header" or "query parameter" */
    char *name;                    /* new: the first one that is not UTF-8 */
};

static enum MHD_Result find_bad_text(void *cls, enum MHD_ValueKind kind, const char *key,
                                     const char *value)
{
    struct bad_text *bad = cls;

    if (ember_is_utf8(key) && (!value || ember_is_utf8(value)))
        return MHD_YES;
    bad->what = kind == MHD_HEADER_KIND ? "header" : "query parameter";
    bad->name = ember_xstrdup(key);
    return MHD_NO;                     /* stop iterating */
}

/* The path, headers and query parameters must be UTF-8; on failure *error is
 * a new sentence naming the first part that is not. */
static int check_utf8(struct gw_request *rq, char **error)
{
    struct bad_text bad = {NULL, NULL};

    if (!ember_is_utf8(rq->path)) {
        *error = ember_xstrdup("the URL path is not valid UTF-8");
        return EMBER_EINVAL;
    }
    MHD_get_connection_values(rq->conn, MHD_HEADER_KIND | MHD_GET_ARGUMENT_KIND, find_bad_text,
                              &bad);
    if (!bad.name)
        return 0;
    *error = ember_xasprintf("the %s %.64s is not valid UTF-8", bad.what, bad.name);
    free(bad.name);
    return EMBER_EINVAL;
}

static int declared_too_big(const struct gw_request *rq)
{
    const char *cl = MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND,
                                                 MHD_HTTP_HEADER_CONTENT_LENGTH);

    return cl && strtoull(cl, NULL, 10) > rq->gw->max_body;
}

/* First call, headers only. A body over the limit is refused at once (MHD then
 * closes the connection); other refusals are held until the body, if any, has
 * been drained, so that the connection stays usable (keep-alive). */
static enum MHD_Result begin_request(struct gw_request *rq)
{
    char *seg[MAX_SEGMENTS];
    char allow[64];
    char *error = NULL;
    int nseg = split_path(rq->segments, seg);
    enum MHD_Result ret;

    if (declared_too_big(rq))
        return reply_too_big(rq);
    rq->hold = 1;
    if (check_utf8(rq, &error) != 0) {
        ret = gw_reply_error(rq, MHD_HTTP_BAD_REQUEST, "%s", error);
        free(error);
        return ret;
    }
    if (suspicious_path(seg, nseg))
        return gw_reply_error(rq, MHD_HTTP_NOT_FOUND,
                              "no route %s %s: paths may not hold '.', '..' or '\\' segments",
                              rq->method, rq->path);
    rq->route = find_route(rq->method, seg, nseg, allow, sizeof(allow));
    if (!rq->route && allow[0])
        return reply_not_allowed(rq, allow);
    if (!rq->route)
        return gw_reply_error(rq, MHD_HTTP_NOT_FOUND,
                              "no route %s %s: the REST API lives under /api/v1", rq->method,
                              rq->path);
    rq->what = rq->route->what;
    if (!(rq->route->flags & OPEN) && !gw_auth_request_ok(rq))
        return gw_auth_reply_unauthorized(rq);
    if (bind_params(rq, seg, &error) != 0) {
        ret = gw_reply_error(rq, MHD_HTTP_NOT_FOUND, "%s", error);
        free(error);
        return ret;
    }
    if ((rq->route->flags & UPLOAD) && !take_upload_slot(rq))
        return reply_busy(rq);
    rq->hold = 0;
    return MHD_YES;
}

/* Middle calls: keep the body while under the limit; past it, drain and forget. */
static void take_body(struct gw_request *rq, const char *data, size_t n)
{
    if (rq->too_big || rq->status)
        return;
    if (rq->body.len + n > rq->gw->max_body || ember_buf_append(&rq->body, data, n) != 0) {
        rq->too_big = 1;
        ember_buf_free(&rq->body);
    }
}

/* Last call: the whole body is here. */
static enum MHD_Result finish_request(struct gw_request *rq)
{
    if (rq->too_big)
        return reply_too_big(rq);
    if (ember_buf_append(&rq->body, "", 1) != 0)   /* the cap keeps room for this */
        return reply_too_big(rq);
    rq->body.len--;
    return rq->route->fn(rq);
}

static enum MHD_Result send_held(struct gw_request *rq)
{
    enum MHD_Result ret = MHD_queue_response(rq->conn, rq->status, rq->held);

    MHD_destroy_response(rq->held);
    rq->held = NULL;
    return ret;
}

static struct gw_request *request_new(struct gw *g, struct MHD_Connection *c, const char *url,
                                      const char *method)
{
    struct gw_request *rq = ember_xcalloc(1, sizeof(*rq));

    rq->gw = g;
    rq->conn = c;
    rq->method = ember_xstrdup(method);
    rq->path = ember_xstrdup(url);
    rq->segments = ember_xstrdup(url);
    rq->start_ms = ember_monotonic_ms();
    ember_buf_init(&rq->body, g->max_body + 1);
    return rq;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    struct gw_request *rq = *con_cls;

    if (!rq) {
        rq = request_new(cls, c, url, method);
        *con_cls = rq;
        gw_slow_head_arrived(rq->gw->slow, c);
        return begin_request(rq);
    }
    if (*upload_data_size) {
        take_body(rq, upload_data, *upload_data_size);
        *upload_data_size = 0;         /* consumed */
        return MHD_YES;
    }
    if (rq->held)
        return send_held(rq);
    if (rq->status)                    /* answered from the headers already */
        return MHD_YES;
    return finish_request(rq);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct gw_request *rq = *con_cls;

    if (!rq)
        return;
    gw_slow_request_ended(rq->gw->slow, c);
    ember_log_debug("%s %s -> %u in %llu ms%s", rq->method, rq->path, rq->status,
                    (unsigned long long)(ember_monotonic_ms() - rq->start_ms),
                    toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " (connection lost)");
    release_upload_slot(rq);
    if (rq->held)
        MHD_destroy_response(rq->held);
    ember_buf_free(&rq->body);
    free(rq->method);
    free(rq->path);
    free(rq->segments);
    free(rq);
    *con_cls = NULL;
}

static void log_mhd(void *cls, const char *fmt, va_list ap)
{
    char line[512];
    size_t n;

    vsnprintf(line, sizeof(line), fmt, ap);
    n = strlen(line);
    while (n > 0 && line[n - 1] == '\n')
        line[--n] = '\0';
    ember_log_warn("http: %s", line);
}

int gw_http_start(struct gw *g, const struct sockaddr_in *addr, unsigned threads,
                  int *bound_port)
{
    /* One thread is no pool: MHD warns about a pool size of 0 or 1, so leave it out. */
    struct MHD_OptionItem pool[] = {
        {threads > 1 ? MHD_OPTION_THREAD_POOL_SIZE : MHD_OPTION_END, threads, NULL},
        {MHD_OPTION_END, 0, NULL},
    };
    const struct ember_security *sec = ember_security_get();
    /* With a certificate the gateway speaks HTTPS only (GnuTLS inside MHD). */
    struct MHD_OptionItem tls[] = {
        {sec->tls_cert_pem ? MHD_OPTION_HTTPS_MEM_KEY : MHD_OPTION_END, 0,
         (void *)sec->tls_key_pem},
        {MHD_OPTION_HTTPS_MEM_CERT, 0, (void *)sec->tls_cert_pem},
        {MHD_OPTION_END, 0, NULL},
    };
    const union MHD_DaemonInfo *info;
    char host[INET_ADDRSTRLEN] = "?";

    if (sec->tls_cert_pem && MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
        ember_log_error("--tls-cert is set but this libmicrohttpd was built without TLS");
        return EMBER_EINVAL;
    }
    g->mhd = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG
            | (sec->tls_cert_pem ? MHD_USE_TLS : 0),
        0, NULL, NULL,
        on_request, g, MHD_OPTION_EXTERNAL_LOGGER, log_mhd, NULL, /* first, as MHD asks */
        MHD_OPTION_ARRAY, tls,
        MHD_OPTION_SOCK_ADDR, (const struct sockaddr *)addr, MHD_OPTION_ARRAY, pool,
        MHD_OPTION_CONNECTION_TIMEOUT, g->idle_timeout_s,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL, MHD_OPTION_NOTIFY_CONNECTION,
        gw_slow_notify, g->slow, MHD_OPTION_END);
    if (!g->mhd) {
        inet_ntop(AF_INET, &addr->sin_addr, host, sizeof(host));
        ember_log_error("cannot serve HTTP on %s:%u (see the message above)", host,
                        (unsigned)ntohs(addr->sin_port));
        return EMBER_EIO;
    }
    info = MHD_get_daemon_info(g->mhd, MHD_DAEMON_INFO_BIND_PORT);
    *bound_port = info ? info->port : ntohs(addr->sin_port);
    return 0;
}

void gw_http_stop(struct gw *g)
{
    if (!g->mhd)
        return;
    MHD_stop_daemon(g->mhd);           /* joins MHD's threads */
    g->mhd = NULL;
}
