/* Monitoring: /api/v1/environment (the master's options and an application's
 * properties, joined with the gateway's own options and the versions it runs
 * with) and /metrics (the master's counts as Prometheus text). Both ask the
 * master one Query; a master that cannot answer is a 503 like everywhere. */
#define _GNU_SOURCE
#include "gw.h"

#include <grpc/grpc.h>
#include <protobuf-c/protobuf-c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define METRICS_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* Set by CMakeLists.txt: the client's __version__ and the Python pyexec embeds. */
#ifndef EMBER_VERSION
#error "EMBER_VERSION must be defined by the build"
#endif
#ifndef EMBER_PYTHON_VERSION
#error "EMBER_PYTHON_VERSION must be defined by the build"
#endif

/* Asks the master `what` and parses its answer. On failure the reply is
 * queued (*ret) and NULL returned; on success the object is new. */
static json_t *query_object(struct gw_request *rq, const char *what, enum MHD_Result *ret)
{
    char *json = NULL, *details = NULL;
    grpc_status_code code = gw_master_query(rq->gw, what, rq->app, -1, &json, &details);
    json_t *o;

    if (code != GRPC_STATUS_OK) {
        *ret = gw_reply_master_error(rq, code, details);
        return NULL;
    }
    o = json_loads(json, 0, NULL);
    free(json);
    if (!json_is_object(o)) {
        json_decref(o);
        *ret = gw_reply_error(rq, MHD_HTTP_BAD_GATEWAY,
                              "the master answered the %s query with something other than a "
                              "JSON object", what);
        return NULL;
    }
    return o;
}

/* ---- /api/v1/environment ---- */

static json_t *runtime(void)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "emberVersion", EMBER_VERSION,
                     "pythonVersion", EMBER_PYTHON_VERSION, "grpcVersion", grpc_version_string(),
                     "microhttpdVersion", MHD_get_version(), "janssonVersion",
                     jansson_version_str(), "protobufCVersion", protobuf_c_version());
}

/* [["--flag", value or null], ...] as the gateway runs. */
static json_t *options(const struct ember_daemon *d)
{
    json_t *list = json_array();

    for (int i = 0; i < d->n_options; i++) {
        char *flag = ember_xasprintf("--%s", d->options[i]->name);
        json_array_append_new(list, json_pack("[s, s?]", flag,
                                              ember_shown_value(d->options[i]->name,
                                                                d->values[i])));
        free(flag);
    }
    return list;
}

enum MHD_Result gw_api_environment(struct gw_request *rq)
{
    enum MHD_Result ret = MHD_NO;
    json_t *env = query_object(rq, "environment", &ret);

    if (!env)
        return ret;
    json_object_set_new(env, "runtime", runtime());
    json_object_set_new(env, "gatewayOptions", options(rq->gw->daemon));
    return gw_reply_json(rq, MHD_HTTP_OK, env);
}

/* ---- /metrics ---- */

static void family(FILE *out, const char *name, const char *type, const char *help)
{
    fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A label value with \, " and newline escaped, as the text format asks. */
static void label_value(FILE *out, const char *s)
{
    for (; s && *s; s++) {
        if (*s == '\\' || *s == '"')
            fputc('\\', out);
        if (*s == '\n')
            fputs("\\n", out);
        else
            fputc(*s, out);
    }
}

static json_int_t int_of(const json_t *o, const char *key)
{
    return json_integer_value(json_object_get(o, key));
}

/* One sample per key of the object counts: name{label="KEY"} value. */
static void by_label(FILE *out, const json_t *metrics, const char *key, const char *name,
                     const char *label, const char *help)
{
    const json_t *counts = json_object_get(metrics, key);
    const char *k;
    json_t *v;

    family(out, name, "gauge", help);
    json_object_foreach((json_t *)counts, k, v)
    {
        fprintf(out, "%s{%s=\"", name, label);
        label_value(out, k);
        fprintf(out, "\"} %lld\n", (long long)json_integer_value(v));
    }
}

static void counter(FILE *out, const char *name, json_int_t value, const char *help)
{
    family(out, name, "counter", help);
    fprintf(out, "%s %lld\n", name, (long long)value);
}

static void gauge(FILE *out, const char *name, json_int_t value, const char *help)
{
    family(out, name, "gauge", help);
    fprintf(out, "%s %lld\n", name, (long long)value);
}

static void stage_totals(FILE *out, const json_t *m)
{
    counter(out, "ember_input_bytes_total", int_of(m, "inputBytes"),
            "Bytes read from input files by successful tasks.");
    counter(out, "ember_shuffle_read_bytes_total",
            int_of(m, "shuffleLocalBytesRead") + int_of(m, "shuffleRemoteBytesRead"),
            "Shuffle bytes read by successful tasks.");
    counter(out, "ember_shuffle_remote_read_bytes_total", int_of(m, "shuffleRemoteBytesRead"),
            "Shuffle bytes successful tasks fetched from another host's block manager.");
    counter(out, "ember_shuffle_write_bytes_total", int_of(m, "shuffleWriteBytes"),
            "Shuffle bytes written by successful tasks.");
    family(out, "ember_task_run_time_seconds_total", "counter",
           "Run time of successful tasks.");
    fprintf(out, "ember_task_run_time_seconds_total %.3f\n",
            (double)int_of(m, "executorRunTimeMs") / 1000.0);
}

static void workers(FILE *out, const json_t *m)
{
    const json_t *w = json_object_get(m, "executors");

    family(out, "ember_workers", "gauge", "Workers the master knows, by state.");
    fprintf(out, "ember_workers{state=\"alive\"} %lld\nember_workers{state=\"dead\"} %lld\n",
            (long long)int_of(w, "alive"), (long long)int_of(w, "dead"));
    gauge(out, "ember_cores", int_of(w, "cores"), "Task slots of the live workers.");
    gauge(out, "ember_active_tasks", int_of(w, "activeTasks"), "Tasks running on workers.");
}

/* One family per block manager field; a sample per block manager. */
static void block_managers(FILE *out, const json_t *m)
{
    static const struct {
        const char *field, *name, *type, *help;
    } fields[] = {
        {"maxMemory", "ember_blockmanager_memory_max_bytes", "gauge", "Memory limit (--memory)."},
        {"memoryUsed", "ember_blockmanager_memory_used_bytes", "gauge", "Bytes held in memory."},
        {"diskUsed", "ember_blockmanager_disk_used_bytes", "gauge", "Bytes spilled to disk."},
        {"blocks", "ember_blockmanager_blocks", "gauge", "Blocks stored."},
        {"evictions", "ember_blockmanager_evictions_total", "counter",
         "Blocks pushed out of memory (spilled or dropped)."},
        {"state", "ember_blockmanager_up", "gauge", "1 while the block manager heartbeats."},
    };
    const json_t *list = json_object_get(m, "blockManagers");
    size_t i;
    json_t *b;

    for (size_t f = 0; f < sizeof(fields) / sizeof(fields[0]); f++) {
        family(out, fields[f].name, fields[f].type, fields[f].help);
        json_array_foreach(list, i, b)
        {
            const char *state = json_string_value(json_object_get(b, "state"));
            fprintf(out, "%s{blockmanager=\"", fields[f].name);
            label_value(out, json_string_value(json_object_get(b, "id")));
            fputs("\",address=\"", out);
            label_value(out, json_string_value(json_object_get(b, "address")));
            fprintf(out, "\"} %lld\n",
                    strcmp(fields[f].field, "state") == 0
                        ? (long long)(state && strcmp(state, "alive") == 0)
                        : (long long)int_of(b, fields[f].field));
        }
    }
}

static void format_metrics(FILE *out, const json_t *m)
{
    by_label(out, m, "applications", "ember_applications", "state",
             "Applications the master knows, by state.");
    by_label(out, m, "jobs", "ember_jobs", "status", "Jobs the master knows, by status.");
    by_label(out, m, "stages", "ember_stages", "status", "Stages the master knows, by status.");
    by_label(out, m, "tasks", "ember_tasks", "state", "Task attempts, by state.");
    stage_totals(out, m);
    workers(out, m);
    block_managers(out, m);
}

enum MHD_Result gw_api_metrics(struct gw_request *rq)
{
    enum MHD_Result ret = MHD_NO;
    json_t *m = query_object(rq, "metrics", &ret);
    char *text = NULL;
    size_t len = 0;
    FILE *out;

    if (!m)
        return ret;
    out = open_memstream(&text, &len);
    if (!out) {
        json_decref(m);
        return gw_reply_error(rq, MHD_HTTP_INTERNAL_SERVER_ERROR,
                              "the gateway is out of memory for /metrics");
    }
    format_metrics(out, m);
    fclose(out);
    json_decref(m);
    return gw_reply_buffer(rq, MHD_HTTP_OK, METRICS_TYPE, text, len);
}
