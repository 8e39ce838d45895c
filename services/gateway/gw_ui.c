/* The web UI: the single-page UI embedded at build time (ui/index.html, which
 * fetches /api/v1 itself), and /jobs, a server-rendered job list for clients
 * without JavaScript. Every string from the master is HTML-escaped here. */
#define _GNU_SOURCE
#include "gw.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HTML_TYPE "text/html; charset=utf-8"
#define MAX_PAGE_BYTES ((size_t)64 << 20)

/* Generated from ui/index.html by embed.cmake. */
extern const unsigned char gw_ui_index_html[];
extern const size_t gw_ui_index_html_len;

enum MHD_Result gw_ui_index(struct gw_request *rq)
{
    return gw_reply_static(rq, MHD_HTTP_OK, HTML_TYPE, gw_ui_index_html, gw_ui_index_html_len);
}

/* An HTML page being built; `full` once it outgrew MAX_PAGE_BYTES. */
struct page {
    struct ember_buf b;
    int full;
};

static void put_n(struct page *p, const char *s, size_t n)
{
    if (!p->full && ember_buf_append(&p->b, s, n) != 0)
        p->full = 1;
}

static void put(struct page *p, const char *s)
{
    put_n(p, s, strlen(s));
}

/* For trusted text only (numbers, fixed strings): nothing is escaped. */
static void putf(struct page *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void putf(struct page *p, const char *fmt, ...)
{
    va_list ap;
    char *s = NULL;

    va_start(ap, fmt);
    if (vasprintf(&s, fmt, ap) < 0)
        s = NULL;
    va_end(ap);
    if (s)
        put(p, s);
    free(s);
}

static void put_escaped(struct page *p, const char *s)
{
    while (s && *s) {
        size_t n = strcspn(s, "&<>\"'");
        put_n(p, s, n);
        s += n;
        switch (*s) {
        case '&': put(p, "&amp;"); break;
        case '<': put(p, "&lt;"); break;
        case '>': put(p, "&gt;"); break;
        case '"': put(p, "&quot;"); break;
        case '\'': put(p, "&#39;"); break;
        default: return;               /* end of string */
        }
        s++;
    }
}

static const char *str_field(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

static long long int_field(const json_t *o, const char *key)
{
    return (long long)json_integer_value(json_object_get(o, key));
}

static void put_duration(struct page *p, const json_t *ms_value)
{
    long long ms = (long long)json_integer_value(ms_value);

    if (!json_is_integer(ms_value))
        put(p, "-");
    else if (ms < 1000)
        putf(p, "%lld ms", ms);
    else if (ms < 60000)
        putf(p, "%.1f s", ms / 1000.0);
    else if (ms < 3600000)
        putf(p, "%.1f min", ms / 60000.0);
    else
        putf(p, "%.1f h", ms / 3600000.0);
}

static void page_head(struct page *p, const char *title)
{
    put(p, "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
           "<meta http-equiv=\"refresh\" content=\"5\"><title>");
    put_escaped(p, title);
    put(p, "</title><style>body{font-family:sans-serif;margin:1.5em;color:#222}"
           "h1{color:#c2410c}table{border-collapse:collapse;width:100%}"
           "th,td{border:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top}"
           "th{background:#fff4ec}pre{white-space:pre-wrap;margin:0}</style></head><body>"
           "<h1>Ember</h1><p><a href=\"/\">Live UI</a> &middot; "
           "<a href=\"/api/v1/jobs\">/api/v1/jobs</a></p>\n");
}

static void job_row(struct page *p, const json_t *job)
{
    const char *description = str_field(job, "description");
    const char *error = str_field(job, "errorMessage");

    putf(p, "<tr><td>%lld</td><td>", int_field(job, "jobId"));
    put_escaped(p, str_field(job, "appId"));
    put(p, "</td><td>");
    put_escaped(p, *description ? description : str_field(job, "name"));
    put(p, "</td><td>");
    put_escaped(p, str_field(job, "submissionTime"));
    put(p, "</td><td>");
    put_duration(p, json_object_get(job, "durationMs"));
    putf(p, "</td><td>%lld/%lld</td><td>%lld/%lld</td><td>", int_field(job, "numCompletedStages"),
         int_field(job, "numStages"), int_field(job, "numCompletedTasks"),
         int_field(job, "numTasks"));
    put_escaped(p, str_field(job, "status"));
    if (*error) {
        put(p, "<details><summary>error</summary><pre>");
        put_escaped(p, error);
        put(p, "</pre></details>");
    }
    put(p, "</td></tr>\n");
}

static void jobs_table(struct page *p, const json_t *jobs)
{
    const json_t *job;
    size_t i;

    putf(p, "<h2>Jobs (%zu)</h2>\n<table><thead><tr><th>Job Id</th><th>Application</th>"
            "<th>Description</th><th>Submitted</th><th>Duration</th>"
            "<th>Stages: Succeeded/Total</th><th>Tasks: Succeeded/Total</th><th>Status</th>"
            "</tr></thead><tbody>\n",
         json_array_size(jobs));
    json_array_foreach(jobs, i, job)
        job_row(p, job);
    put(p, "</tbody></table>\n");
}

static enum MHD_Result send_page(struct gw_request *rq, unsigned status, struct page *p)
{
    size_t len = 0;
    uint8_t *data;

    put(p, "</body></html>\n");
    if (p->full) {
        ember_buf_free(&p->b);
        return gw_reply_error(rq, MHD_HTTP_INTERNAL_SERVER_ERROR,
                              "the job list is too long for one page; use /api/v1/jobs");
    }
    data = ember_buf_steal(&p->b, &len);
    return gw_reply_buffer(rq, status, HTML_TYPE, data, len);
}

static enum MHD_Result send_error_page(struct gw_request *rq, unsigned status,
                                       const char *message)
{
    struct page p = {.full = 0};

    ember_buf_init(&p.b, MAX_PAGE_BYTES);
    page_head(&p, "Ember jobs");
    put(&p, "<p><strong>Cannot list the jobs:</strong> ");
    put_escaped(&p, message);
    put(&p, "</p>\n");
    return send_page(rq, status, &p);
}

static enum MHD_Result send_jobs_page(struct gw_request *rq, const char *json)
{
    struct page p = {.full = 0};
    json_error_t err;
    json_t *jobs = json_loads(json, 0, &err);
    enum MHD_Result ret;

    if (!json_is_array(jobs)) {
        json_decref(jobs);
        return send_error_page(rq, MHD_HTTP_INTERNAL_SERVER_ERROR,
                               "the master's job list is not a JSON array");
    }
    ember_buf_init(&p.b, MAX_PAGE_BYTES);
    page_head(&p, "Ember jobs");
    jobs_table(&p, jobs);
    ret = send_page(rq, MHD_HTTP_OK, &p);
    json_decref(jobs);
    return ret;
}

enum MHD_Result gw_ui_jobs(struct gw_request *rq)
{
    char *json = NULL, *details = NULL, *peer = NULL, *message = NULL;
    grpc_status_code code = gw_master_query(rq->gw, "jobs", NULL, -1, &json, &details);
    enum MHD_Result ret;
    unsigned status;

    if (code == GRPC_STATUS_OK) {
        ret = send_jobs_page(rq, json);
    } else {
        peer = gw_master_peer(rq->gw);
        status = gw_rpc_http_status(code, details, peer, &message);
        ret = send_error_page(rq, status, message);
    }
    free(json);
    free(details);
    free(peer);
    free(message);
    return ret;
}
