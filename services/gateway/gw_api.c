/* The JSON routes: validate what the gateway can (well-formed JSON of the
 * right types), forward to the master, pass its JSON through unchanged. */
#define _GNU_SOURCE
#include "gw.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#define JSON_TYPE "application/json"

static const char *type_name(const json_t *j)
{
    switch (json_typeof(j)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    default: return "null";
    }
}

/* Parses rq's body as a JSON object describing `what`. On success *out is a new
 * reference; on failure *error is a new sentence for a 400. */
static int parse_object(const struct gw_request *rq, const char *what, json_t **out,
                        char **error)
{
    json_error_t err;
    json_t *j;

    if (rq->body.len == 0) {
        *error = ember_xasprintf("the request body is empty: send %s as a JSON object", what);
        return EMBER_EINVAL;
    }
    j = json_loadb((const char *)rq->body.data, rq->body.len, JSON_DECODE_ANY, &err);
    if (!j) {
        *error = ember_xasprintf("the request body is not valid JSON: %s at line %d, column %d",
                                 err.text, err.line, err.column);
        return EMBER_EINVAL;
    }
    if (!json_is_object(j)) {
        *error = ember_xasprintf("the request body must be a JSON object (%s), not %s", what,
                                 type_name(j));
        json_decref(j);
        return EMBER_EINVAL;
    }
    *out = j;
    return 0;
}

/* Takes ownership of json (a master reply) and sends it as the 200 body. */
static enum MHD_Result reply_passed_through(struct gw_request *rq, char *json)
{
    return gw_reply_buffer(rq, MHD_HTTP_OK, JSON_TYPE, json, strlen(json));
}

enum MHD_Result gw_api_health(struct gw_request *rq)
{
    return gw_reply_json(rq, MHD_HTTP_OK, json_pack("{s:s}", "status", "ok"));
}

/* "properties", when there: an object of strings. */
static int check_properties(const json_t *props, char **error)
{
    const char *key;
    json_t *value;

    if (!props || json_is_null(props))
        return 0;
    if (!json_is_object(props)) {
        *error = ember_xasprintf("\"properties\" must be an object of strings, not %s",
                                 type_name(props));
        return EMBER_EINVAL;
    }
    json_object_foreach((json_t *)props, key, value)
        if (!json_is_string(value)) {
            *error = ember_xasprintf("property \"%.100s\" must be a string, not %s", key,
                                     type_name(value));
            return EMBER_EINVAL;
        }
    return 0;
}

/* Checks {"name": str, "user"?: str, "properties"?: {str: str}}; on failure
 * *error is new. */
static int check_app_request(const json_t *o, char **error)
{
    const json_t *name = json_object_get(o, "name"), *user = json_object_get(o, "user");

    if (!json_is_string(name) || json_string_length(name) == 0) {
        *error = ember_xasprintf("\"name\" must be a non-empty string (the application name), "
                                 "not %s", name ? type_name(name) : "missing");
        return EMBER_EINVAL;
    }
    if (user && !json_is_null(user) && !json_is_string(user)) {
        *error = ember_xasprintf("\"user\" must be a string, not %s", type_name(user));
        return EMBER_EINVAL;
    }
    return check_properties(json_object_get(o, "properties"), error);
}

enum MHD_Result gw_api_create_app(struct gw_request *rq)
{
    json_t *o = NULL, *props;
    char *error = NULL, *details = NULL, *app_id = NULL, *props_json;
    grpc_status_code code;
    enum MHD_Result ret;

    if (parse_object(rq, "{\"name\": ..., \"user\": ...}", &o, &error) != 0
        || check_app_request(o, &error) != 0) {
        ret = gw_reply_error(rq, MHD_HTTP_BAD_REQUEST, "%s", error);
        goto out;
    }
    props = json_object_get(o, "properties");
    props_json = json_is_object(props) ? json_dumps(props, JSON_COMPACT) : NULL;
    code = gw_master_create_app(rq->gw, json_string_value(json_object_get(o, "name")),
                                json_string_value(json_object_get(o, "user")), props_json,
                                &app_id, &details);
    free(props_json);
    if (code != GRPC_STATUS_OK) {
        ret = gw_reply_master_error(rq, code, details);
        goto out;
    }
    ember_log_info("app=%s created", app_id);
    ret = gw_reply_json(rq, MHD_HTTP_CREATED, json_pack("{s:s}", "id", app_id));
out:
    json_decref(o);
    free(error);
    free(app_id);
    return ret;
}

enum MHD_Result gw_api_end_app(struct gw_request *rq)
{
    char *details = NULL;
    grpc_status_code code = gw_master_end_app(rq->gw, rq->app, &details);

    if (code != GRPC_STATUS_OK)
        return gw_reply_master_error(rq, code, details);
    ember_log_info("app=%s ended", rq->app);
    return gw_reply_json(rq, MHD_HTTP_OK, json_pack("{s:s, s:b}", "id", rq->app, "ended", 1));
}

/* The gateway checks the outline only; the master validates the nodes. */
static int check_job(const json_t *o, char **error)
{
    const json_t *rdd = json_object_get(o, "rdd"), *nodes = json_object_get(o, "nodes");

    if (!json_is_integer(rdd)) {
        *error = ember_xasprintf("\"rdd\" must be an integer (the id of the RDD to compute), "
                                 "not %s", rdd ? type_name(rdd) : "missing");
        return EMBER_EINVAL;
    }
    if (!json_is_array(nodes)) {
        *error = ember_xasprintf("\"nodes\" must be an array of lineage nodes, not %s",
                                 nodes ? type_name(nodes) : "missing");
        return EMBER_EINVAL;
    }
    return 0;
}

/* A long poll holds this connection's MHD thread (and the other connections
 * it serves) for as long: keep it short, the driver asks again. */
#define MAX_JOB_WAIT_MS 50

/* ?waitMs=N (at most MAX_JOB_WAIT_MS); *given is 0 without it. */
static int parse_wait(struct gw_request *rq, int *given, uint32_t *wait_ms, char **error)
{
    const char *wait = MHD_lookup_connection_value(rq->conn, MHD_GET_ARGUMENT_KIND, "waitMs");
    char *end = NULL;
    unsigned long ms;

    *given = wait != NULL;
    *wait_ms = 0;
    if (!wait)
        return 0;
    errno = 0;
    ms = strtoul(wait, &end, 10);
    if (!*wait || *end || errno || *wait == '-') {
        *error = ember_xasprintf("waitMs must be a number of milliseconds, not \"%.40s\"", wait);
        return EMBER_EINVAL;
    }
    *wait_ms = (uint32_t)(ms > MAX_JOB_WAIT_MS ? MAX_JOB_WAIT_MS : ms);
    return 0;
}

static int inline_results_asked(struct gw_request *rq)
{
    const char *inl = MHD_lookup_connection_value(rq->conn, MHD_GET_ARGUMENT_KIND, "inlineResults");
    return inl && strcmp(inl, "1") == 0;
}

/* The job's id in a master's job JSON, for the info line (0 if absent). */
static unsigned long logged_job_id(const char *json)
{
    json_t *o = json_loads(json, 0, NULL);
    unsigned long id = (unsigned long)json_integer_value(json_object_get(o, "jobId"));

    json_decref(o);
    return id;
}

/* ?waitMs given: one SubmitJobAndWait call. A master without that method gets
 * SubmitJob then GetJob; only when that GetJob fails is the answer {"jobId"}. */
static enum MHD_Result submit_and_wait(struct gw_request *rq, uint32_t wait_ms)
{
    const char *job_json = (const char *)rq->body.data;
    int inline_results = inline_results_asked(rq);
    char *json = NULL, *details = NULL;
    uint32_t job_id = 0;
    grpc_status_code code;

    code = gw_master_submit_job_and_wait(rq->gw, rq->app, job_json, inline_results, wait_ms,
                                         &json, &details);
    if (code == GRPC_STATUS_OK) {
        /* the macro evaluates logged_job_id only when info lines are written */
        ember_log_info("app=%s job=%lu submitted (%zu bytes)", rq->app, logged_job_id(json),
                       rq->body.len);
        return gw_reply_buffer(rq, MHD_HTTP_CREATED, JSON_TYPE, json, strlen(json));
    }
    if (code != GRPC_STATUS_UNIMPLEMENTED)
        return gw_reply_master_error(rq, code, details);
    free(details);
    details = NULL;
    code = gw_master_submit_job(rq->gw, rq->app, job_json, &job_id, &details);
    if (code != GRPC_STATUS_OK)
        return gw_reply_master_error(rq, code, details);
    ember_log_info("app=%s job=%u submitted (%zu bytes)", rq->app, job_id, rq->body.len);
    if (gw_master_get_job(rq->gw, rq->app, job_id, inline_results, wait_ms, &json, &details)
        == GRPC_STATUS_OK)
        return gw_reply_buffer(rq, MHD_HTTP_CREATED, JSON_TYPE, json, strlen(json));
    free(details);
    return gw_reply_json(rq, MHD_HTTP_CREATED, json_pack("{s:I}", "jobId", (json_int_t)job_id));
}

/* ?waitMs=N on a submission: the answer is the job's status as GET .../jobs/{id}
 * would give it after waiting (with ?inlineResults=1, its inline results), so a
 * short job costs the driver one request instead of two. Without it the answer
 * is {"jobId"} and the driver polls. */
enum MHD_Result gw_api_submit_job(struct gw_request *rq)
{
    json_t *o = NULL;
    char *error = NULL, *details = NULL;
    uint32_t job_id = 0, wait_ms = 0;
    int wait_given = 0;
    grpc_status_code code;
    enum MHD_Result ret;

    if (parse_wait(rq, &wait_given, &wait_ms, &error) != 0) {
        ret = gw_reply_error(rq, MHD_HTTP_BAD_REQUEST, "%s", error);
        goto out;
    }
    /* The master gets the body as it came: a tree would only be thrown away,
     * so jansson parses it only when the quick check is unsure. */
    if (!gw_job_quick_check((const char *)rq->body.data, rq->body.len)
        && (parse_object(rq, "a job description", &o, &error) != 0
            || check_job(o, &error) != 0)) {
        ret = gw_reply_error(rq, MHD_HTTP_BAD_REQUEST, "%s", error);
        goto out;
    }
    json_decref(o);
    o = NULL;
    if (wait_given) {
        ret = submit_and_wait(rq, wait_ms);
        goto out;
    }
    code = gw_master_submit_job(rq->gw, rq->app, (const char *)rq->body.data, &job_id, &details);
    if (code != GRPC_STATUS_OK) {
        ret = gw_reply_master_error(rq, code, details);
        goto out;
    }
    ember_log_info("app=%s job=%u submitted (%zu bytes)", rq->app, job_id, rq->body.len);
    ret = gw_reply_json(rq, MHD_HTTP_CREATED, json_pack("{s:I}", "jobId", (json_int_t)job_id));
out:
    json_decref(o);
    free(error);
    return ret;
}

/* ?inlineResults=1: the bytes of results the master holds come in the JSON, so
 * a driver needs no download for them. ?waitMs=N: a running job's answer
 * waits until it ends, or N ms (at most MAX_JOB_WAIT_MS). */
enum MHD_Result gw_api_get_job(struct gw_request *rq)
{
    char *json = NULL, *details = NULL, *error = NULL;
    uint32_t wait_ms = 0;
    int wait_given;

    if (parse_wait(rq, &wait_given, &wait_ms, &error) != 0) {
        enum MHD_Result ret = gw_reply_error(rq, MHD_HTTP_BAD_REQUEST, "%s", error);
        free(error);
        return ret;
    }
    grpc_status_code code = gw_master_get_job(rq->gw, rq->app, rq->job, inline_results_asked(rq),
                                              wait_ms, &json, &details);

    if (code != GRPC_STATUS_OK)
        return gw_reply_master_error(rq, code, details);
    return reply_passed_through(rq, json);
}

enum MHD_Result gw_api_cancel_job(struct gw_request *rq)
{
    char *details = NULL;
    grpc_status_code code = gw_master_cancel_job(rq->gw, rq->app, rq->job, &details);

    if (code != GRPC_STATUS_OK)
        return gw_reply_master_error(rq, code, details);
    ember_log_info("app=%s job=%u cancel requested", rq->app, rq->job);
    return gw_reply_json(rq, MHD_HTTP_OK,
                         json_pack("{s:I, s:b}", "jobId", (json_int_t)rq->job, "cancelled", 1));
}

enum MHD_Result gw_api_unpersist(struct gw_request *rq)
{
    char *details = NULL;
    grpc_status_code code = gw_master_unpersist(rq->gw, rq->app, rq->rdd, &details);

    if (code != GRPC_STATUS_OK)
        return gw_reply_master_error(rq, code, details);
    return gw_reply_json(rq, MHD_HTTP_OK,
                         json_pack("{s:I, s:b}", "rddId", (json_int_t)rq->rdd, "unpersisted", 1));
}

enum MHD_Result gw_api_query(struct gw_request *rq)
{
    /* Listings send id -1: 0 is a valid job and stage id. */
    int64_t id = strcmp(rq->what, "stage") == 0 ? (int64_t)rq->stage : -1;
    char *json = NULL, *details = NULL;
    grpc_status_code code = gw_master_query(rq->gw, rq->what, rq->app, id, &json, &details);

    if (code != GRPC_STATUS_OK)
        return gw_reply_master_error(rq, code, details);
    return reply_passed_through(rq, json);
}
