/* Cluster deploy mode over HTTP: ember-submit POSTs the script and its files
 * (base64 in JSON), the master starts the driver on a worker; status, kill and
 * the driver's stdout/stderr (kept by the master) are read back here. */
#define _GNU_SOURCE
#include "gw.h"

#include <stdlib.h>
#include <string.h>

#include "master.pb-c.h"
#include "log.h"

#define JSON_TYPE "application/json"

/* A JSON array of strings into a new vector (*n entries); on failure *error is new. */
static int string_list(const json_t *o, const char *key, char ***out, size_t *n, char **error)
{
    const json_t *list = json_object_get(o, key), *item;
    size_t i;

    *out = NULL;
    *n = 0;
    if (!list || json_is_null(list))
        return 0;
    if (!json_is_array(list)) {
        *error = ember_xasprintf("\"%s\" must be an array of strings", key);
        return EMBER_EINVAL;
    }
    *out = ember_xcalloc(json_array_size(list) + 1, sizeof(char *));
    json_array_foreach(list, i, item)
    {
        if (!json_is_string(item)) {
            *error = ember_xasprintf("\"%s\" must be an array of strings; item %zu is not", key, i);
            return EMBER_EINVAL;
        }
        (*out)[(*n)++] = (char *)json_string_value(item);
    }
    return 0;
}

/* "uploads": [{"path": str, "data": base64}] into s->files. */
static int uploads(const json_t *o, Ember__DriverSubmission *s, char **error)
{
    const json_t *list = json_object_get(o, "uploads"), *item;
    size_t i;

    if (!json_is_array(list)) {
        *error = ember_xstrdup("\"uploads\" must be an array of {\"path\", \"data\" (base64)}");
        return EMBER_EINVAL;
    }
    s->files = ember_xcalloc(json_array_size(list) + 1, sizeof(*s->files));
    json_array_foreach(list, i, item)
    {
        const char *path = json_string_value(json_object_get(item, "path"));
        const char *data = json_string_value(json_object_get(item, "data"));
        Ember__DriverFile *f;
        if (!path || !data) {
            *error = ember_xasprintf("upload %zu needs \"path\" and \"data\" strings", i);
            return EMBER_EINVAL;
        }
        f = ember_xcalloc(1, sizeof(*f));
        ember__driver_file__init(f);
        s->files[s->n_files++] = f;
        f->path = (char *)path;
        if (ember_base64_decode(data, strlen(data), &f->data.data, &f->data.len) != 0) {
            *error = ember_xasprintf("upload '%.200s': \"data\" is not base64", path);
            return EMBER_EINVAL;
        }
    }
    return 0;
}

/* "conf": {"key": "value"} as key=value lines (new string). */
static int conf_lines(const json_t *o, char **out, char **error)
{
    const json_t *conf = json_object_get(o, "conf"), *value;
    const char *key;
    char *lines = ember_xstrdup("");

    if (conf && !json_is_null(conf) && !json_is_object(conf)) {
        *error = ember_xstrdup("\"conf\" must be an object of string values");
        free(lines);
        return EMBER_EINVAL;
    }
    json_object_foreach((json_t *)conf, key, value)
    {
        char *next;
        if (!json_is_string(value) || strchr(key, '\n') || strchr(json_string_value(value), '\n')) {
            *error = ember_xasprintf("conf \"%.100s\" must be a one-line string", key);
            free(lines);
            return EMBER_EINVAL;
        }
        next = ember_xasprintf("%s%s%s=%s", lines, *lines ? "\n" : "", key,
                               json_string_value(value));
        free(lines);
        lines = next;
    }
    *out = lines;
    return 0;
}

static const char *opt_string(const json_t *o, const char *key)
{
    const char *v = json_string_value(json_object_get(o, key));
    return v ? v : "";
}

static void submission_free(Ember__DriverSubmission *s)
{
    for (size_t i = 0; i < s->n_files; i++) {
        free(s->files[i]->data.data);
        free(s->files[i]);
    }
    free(s->files);
    free(s->args);
    free(s->py_files);
    free(s->data_files);
    if (s->conf != protobuf_c_empty_string)   /* the INIT value until conf_lines ran */
        free(s->conf);
}

/* Builds s from the request body (strings borrowed from o); *error new on failure. */
static int parse_submission(const json_t *o, Ember__DriverSubmission *s, char **error)
{
    s->name = (char *)opt_string(o, "name");
    s->main = (char *)opt_string(o, "mainResource");
    s->properties_file = (char *)opt_string(o, "propertiesFile");
    if (!*s->main) {
        *error = ember_xstrdup("\"mainResource\" must name the script among the uploads");
        return EMBER_EINVAL;
    }
    if (string_list(o, "appArgs", &s->args, &s->n_args, error) != 0
        || string_list(o, "pyFiles", &s->py_files, &s->n_py_files, error) != 0
        || string_list(o, "files", &s->data_files, &s->n_data_files, error) != 0
        || conf_lines(o, &s->conf, error) != 0)
        return EMBER_EINVAL;
    return uploads(o, s, error);
}

enum MHD_Result gw_drivers_submit(struct gw_request *rq)
{
    Ember__DriverSubmission s = EMBER__DRIVER_SUBMISSION__INIT;
    json_error_t jerr;
    json_t *o = json_loadb((const char *)rq->body.data, rq->body.len, 0, &jerr);
    char *error = NULL, *details = NULL, *driver_id = NULL;
    grpc_status_code code;
    enum MHD_Result ret;

    if (!json_is_object(o)) {
        ret = gw_reply_error(rq, MHD_HTTP_BAD_REQUEST,
                             "the request body must be a JSON object describing the driver "
                             "(%s)", o ? "not an object" : jerr.text);
        goto out;
    }
    if (parse_submission(o, &s, &error) != 0) {
        ret = gw_reply_error(rq, MHD_HTTP_BAD_REQUEST, "%s", error);
        goto out;
    }
    s.gateway = rq->gw->advertised;
    code = gw_master_submit_driver(rq->gw, &s, &driver_id, &details);
    if (code != GRPC_STATUS_OK) {
        ret = gw_reply_master_error(rq, code, details);
        goto out;
    }
    ember_log_info("driver=%s submitted (%zu files, %zu bytes)", driver_id, s.n_files,
                   rq->body.len);
    ret = gw_reply_json(rq, MHD_HTTP_CREATED, json_pack("{s:s}", "id", driver_id));
out:
    submission_free(&s);
    json_decref(o);
    free(error);
    free(driver_id);
    return ret;
}

enum MHD_Result gw_drivers_status(struct gw_request *rq)
{
    char *json = NULL, *details = NULL;
    grpc_status_code code = gw_master_driver_json(rq->gw, "DriverStatus", rq->driver, &json,
                                                  &details);

    if (code != GRPC_STATUS_OK)
        return gw_reply_master_error(rq, code, details);
    return gw_reply_buffer(rq, MHD_HTTP_OK, JSON_TYPE, json, strlen(json));
}

enum MHD_Result gw_drivers_kill(struct gw_request *rq)
{
    char *json = NULL, *details = NULL;
    grpc_status_code code = gw_master_driver_json(rq->gw, "KillDriver", rq->driver, &json,
                                                  &details);

    if (code != GRPC_STATUS_OK)
        return gw_reply_master_error(rq, code, details);
    ember_log_info("driver=%s kill requested", rq->driver);
    return gw_reply_buffer(rq, MHD_HTTP_OK, JSON_TYPE, json, strlen(json));
}

/* GET .../stdout|stderr[?offset=N]: the bytes from N on (all the master
 * keeps by default); X-Ember-Log-Offset says where they start, X-Ember-Log-Total
 * how much the driver printed so far. */
enum MHD_Result gw_drivers_log(struct gw_request *rq)
{
    const char *stream = strstr(rq->path, "/stderr") ? "stderr" : "stdout";  /* the route matched one */
    const char *offset = MHD_lookup_connection_value(rq->conn, MHD_GET_ARGUMENT_KIND, "offset");
    char *details = NULL, *end = NULL, header[32];
    Ember__DriverLogReply *reply = NULL;
    unsigned long long from = 0;
    struct MHD_Response *r;
    grpc_status_code code;

    if (offset && *offset) {
        from = strtoull(offset, &end, 10);
        if (*end || *offset == '-')
            return gw_reply_error(rq, MHD_HTTP_BAD_REQUEST,
                                  "offset must be a non-negative integer, not '%.40s'", offset);
    }
    code = gw_master_driver_log(rq->gw, rq->driver, stream, from, &reply, &details);
    if (code != GRPC_STATUS_OK)
        return gw_reply_master_error(rq, code, details);
    r = MHD_create_response_from_buffer(reply->data.len, reply->data.data, MHD_RESPMEM_MUST_COPY);
    if (r) {
        snprintf(header, sizeof(header), "%llu", (unsigned long long)reply->offset);
        MHD_add_response_header(r, "X-Ember-Log-Offset", header);
        snprintf(header, sizeof(header), "%llu", (unsigned long long)reply->total);
        MHD_add_response_header(r, "X-Ember-Log-Total", header);
    }
    protobuf_c_message_free_unpacked(&reply->base, NULL);
    return gw_reply_response(rq, MHD_HTTP_OK, r, "text/plain; charset=utf-8");
}
