/* Cluster deploy mode from the submitting side: uploads the script, its
 * --py-files (package folders file by file), --files and the defaults file to
 * the gateway (POST /api/v1/drivers, base64 in JSON), then follows the driver:
 * its stdout and stderr are copied here as they grow and its exit code becomes
 * ours. --status and --kill ask the gateway about a driver by id. */
#define _GNU_SOURCE
#include "submit.h"

#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

#define POLL_MS 500
#define REQUEST_TIMEOUT_S 120
#define MAX_UNREACHABLE 60             /* polls in a row before giving up (30 s) */

static struct submit_gateway gateway;  /* set by each entry point (start_http) */

struct http_reply {
    long status;
    struct ember_buf body;
    unsigned long long log_offset, log_total;
};

/* ---- HTTP ---- */

static size_t on_body(char *p, size_t size, size_t n, void *user)
{
    struct http_reply *r = user;
    return ember_buf_append(&r->body, p, size * n) == 0 ? size * n : 0;
}

static size_t on_header(char *p, size_t size, size_t n, void *user)
{
    struct http_reply *r = user;
    size_t len = size * n;

    if (len > 20 && strncasecmp(p, "X-Ember-Log-Offset:", 19) == 0)
        r->log_offset = strtoull(p + 19, NULL, 10);
    else if (len > 19 && strncasecmp(p, "X-Ember-Log-Total:", 18) == 0)
        r->log_total = strtoull(p + 18, NULL, 10);
    return len;
}

/* One request to the gateway; body (may be NULL) is JSON. 0 when an answer
 * came (any status), else EMBER_EIO with the reason printed. */
static int http(const char *method, const char *url, const char *body, struct http_reply *r,
                int quiet)
{
    CURL *curl = curl_easy_init();
    struct curl_slist *headers = NULL;
    CURLcode rc;

    memset(r, 0, sizeof(*r));
    ember_buf_init(&r->body, 0);
    if (body)
        headers = curl_slist_append(headers, "Content-Type: application/json");
    if (gateway.auth_header)
        headers = curl_slist_append(headers, gateway.auth_header);
    if (gateway.ca_file)
        curl_easy_setopt(curl, CURLOPT_CAINFO, gateway.ca_file);
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, (long)REQUEST_TIMEOUT_S);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    if (body) {
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
    }
    rc = curl_easy_perform(curl);
    if (rc == CURLE_OK)
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &r->status);
    else if (!quiet)
        fprintf(stderr, "ember-submit: %s %s failed: %s\n", method, url, curl_easy_strerror(rc));
    curl_slist_free_all(headers);
    curl_easy_cleanup(curl);
    return rc == CURLE_OK ? 0 : EMBER_EIO;
}

/* The JSON body of a reply, or NULL (new reference). */
static json_t *reply_json(const struct http_reply *r)
{
    return json_loadb((const char *)r->body.data, r->body.len, 0, NULL);
}

/* Prints the gateway's {"error"} sentence for a failed request. */
static void print_error(const char *what, const struct http_reply *r)
{
    json_t *j = reply_json(r);
    const char *msg = json_string_value(json_object_get(j, "error"));

    fprintf(stderr, "ember-submit: %s: %s (HTTP %ld)\n", what, msg ? msg : "no explanation",
            r->status);
    json_decref(j);
}

static char *api_url(const struct submit_args *args, const char *path)
{
    return ember_xasprintf("%s://%s/api/v1%s", gateway.scheme, args->master + strlen("ember://"),
                           path);
}

/* Every entry point starts with this and ends with stop_http. */
static int start_http(const struct submit_args *args)
{
    if (submit_gateway_init(args, &gateway) != 0)
        return EMBER_EIO;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    return 0;
}

static void stop_http(void)
{
    curl_global_cleanup();
    submit_gateway_free(&gateway);
}

/* ---- the upload ---- */

static int read_whole(const char *path, uint8_t **data, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    struct ember_buf b;
    char chunk[65536];
    size_t n;

    if (!fp) {
        fprintf(stderr, "ember-submit: cannot read %s: %s\n", path, strerror(errno));
        return EMBER_EIO;
    }
    ember_buf_init(&b, 0);
    while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0)
        if (ember_buf_append(&b, chunk, n) != 0)
            break;
    fclose(fp);
    *data = ember_buf_steal(&b, len);
    return 0;
}

/* Adds {"path": name, "data": base64} unless name is already uploaded. */
static int add_upload(json_t *uploads, const char *local, const char *name)
{
    uint8_t *data = NULL;
    size_t len = 0, i;
    json_t *item;
    char *b64;

    json_array_foreach(uploads, i, item)
        if (strcmp(json_string_value(json_object_get(item, "path")), name) == 0) {
            fprintf(stderr, "ember-submit: two files would be uploaded as %s; rename one\n",
                    name);
            return EMBER_EINVAL;
        }
    if (read_whole(local, &data, &len) != 0)
        return EMBER_EIO;
    b64 = ember_base64_encode(data, len);
    json_array_append_new(uploads, json_pack("{s:s, s:s}", "path", name, "data", b64));
    free(b64);
    free(data);
    return 0;
}

/* A package folder, file by file, under its own name (no __pycache__). */
static int add_folder(json_t *uploads, const char *local, const char *name)
{
    DIR *dir = opendir(local);
    struct dirent *e;
    int rc = 0;

    if (!dir) {
        fprintf(stderr, "ember-submit: cannot read folder %s: %s\n", local, strerror(errno));
        return EMBER_EIO;
    }
    while (rc == 0 && (e = readdir(dir)) != NULL) {
        size_t n = strlen(e->d_name);
        struct stat st;
        if (e->d_name[0] == '.' || strcmp(e->d_name, "__pycache__") == 0
            || (n > 4 && strcmp(e->d_name + n - 4, ".pyc") == 0))
            continue;
        char *path = ember_xasprintf("%s/%s", local, e->d_name);
        char *inside = ember_xasprintf("%s/%s", name, e->d_name);
        if (stat(path, &st) != 0) {
            /* a dangling symlink or a file removed while we list: the package would
             * arrive incomplete, so say which file and stop */
            fprintf(stderr, "ember-submit: cannot read %s: %s\n", path, strerror(errno));
            rc = EMBER_EIO;
        } else if (S_ISDIR(st.st_mode))
            rc = add_folder(uploads, path, inside);
        else if (S_ISREG(st.st_mode))
            rc = add_upload(uploads, path, inside);
        free(path);
        free(inside);
    }
    closedir(dir);
    return rc;
}

/* The last part of a path ("pkg/" -> "pkg"), as a new string. */
static char *base_name(const char *path)
{
    char *copy = ember_xstrdup(path), *slash;

    while (strlen(copy) > 1 && copy[strlen(copy) - 1] == '/')
        copy[strlen(copy) - 1] = '\0';
    slash = strrchr(copy, '/');
    if (slash) {
        char *name = ember_xstrdup(slash + 1);
        free(copy);
        return name;
    }
    return copy;
}

/* Uploads each of a comma-separated list and names it in list_key. */
static int add_list(json_t *o, json_t *uploads, const char *list, const char *list_key,
                    int folders_ok)
{
    json_t *names = json_array();
    char *copy = ember_xstrdup(list ? list : ""), *save = NULL;
    int rc = 0;

    for (char *p = strtok_r(copy, ",", &save); p && rc == 0; p = strtok_r(NULL, ",", &save)) {
        struct stat st;
        char *name = base_name(p);
        if (stat(p, &st) != 0) {
            fprintf(stderr, "ember-submit: %s does not exist\n", p);
            rc = EMBER_ENOENT;
        } else if (S_ISDIR(st.st_mode) && !folders_ok) {
            fprintf(stderr, "ember-submit: --files takes files, and %s is a folder\n", p);
            rc = EMBER_EINVAL;
        } else {
            rc = S_ISDIR(st.st_mode) ? add_folder(uploads, p, name) : add_upload(uploads, p, name);
            json_array_append_new(names, json_string(name));
        }
        free(name);
    }
    free(copy);
    json_object_set_new(o, list_key, names);
    return rc;
}

/* --conf lines as {"key": "value"}, but for spark.master: --master names the
 * gateway as seen from here (maybe this host's loopback); the worker tells the
 * driver how to reach it from there. */
static json_t *conf_object(const char *conf)
{
    json_t *o = json_object();
    char *copy = ember_xstrdup(conf ? conf : ""), *save = NULL;

    for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *eq = strchr(line, '=');
        if (eq) {
            *eq = '\0';
            if (strcmp(line, "spark.master") != 0)
                json_object_set_new(o, line, json_string(eq + 1));
        }
    }
    free(copy);
    return o;
}

/* The request body of POST /api/v1/drivers, new; NULL after printing why. */
static char *submission_body(const struct submit_args *args)
{
    json_t *o = json_object(), *uploads = json_array(), *app_args = json_array();
    const char *script = args->script_argv[0];
    char *main_name = base_name(script), *body = NULL;
    int rc;

    for (int i = 1; i < args->script_argc; i++)
        json_array_append_new(app_args, json_string(args->script_argv[i]));
    json_object_set_new(o, "appArgs", app_args);
    json_object_set_new(o, "mainResource", json_string(main_name));
    json_object_set_new(o, "conf", conf_object(args->conf));
    if (args->name)
        json_object_set_new(o, "name", json_string(args->name));
    rc = add_upload(uploads, script, main_name);
    if (rc == 0)
        rc = add_list(o, uploads, args->py_files, "pyFiles", 1);
    if (rc == 0)
        rc = add_list(o, uploads, args->files, "files", 0);
    if (rc == 0 && args->defaults_file) {
        char *name = base_name(args->defaults_file);
        rc = add_upload(uploads, args->defaults_file, name);
        json_object_set_new(o, "propertiesFile", json_string(name));
        free(name);
    }
    json_object_set_new(o, "uploads", uploads);
    if (rc == 0)
        body = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    free(main_name);
    return body;
}

/* ---- following a driver ---- */

/* Copies the new bytes of one output stream to fd; *offset advances. */
static int copy_log(const struct submit_args *args, const char *id, const char *stream,
                    unsigned long long *offset, FILE *to)
{
    char *path = ember_xasprintf("/drivers/%s/%s?offset=%llu", id, stream, *offset);
    char *url = api_url(args, path);
    struct http_reply r;
    int rc = http("GET", url, NULL, &r, 1);

    if (rc == 0 && r.status == 200) {
        if (r.log_offset > *offset)
            fprintf(stderr, "[ember-submit: %llu bytes of the driver's %s were dropped "
                    "(the master keeps the last --driver-log-bytes)]\n",
                    r.log_offset - *offset, stream);
        if (r.body.len)                /* no new output: data may be NULL */
            fwrite(r.body.data, 1, r.body.len, to);
        fflush(to);
        *offset = r.log_offset + r.body.len;
    }
    ember_buf_free(&r.body);
    free(url);
    free(path);
    return rc == 0 && r.status == 200 ? 0 : EMBER_EIO;
}

/* The driver's JSON (new), or NULL when the gateway did not answer 200. */
static json_t *driver_status(const struct submit_args *args, const char *id, int quiet)
{
    char *path = ember_xasprintf("/drivers/%s", id);
    char *url = api_url(args, path);
    struct http_reply r;
    json_t *j = NULL;

    if (http("GET", url, NULL, &r, quiet) == 0) {
        if (r.status == 200)
            j = reply_json(&r);
        else if (!quiet)
            print_error(id, &r);
    }
    ember_buf_free(&r.body);
    free(url);
    free(path);
    return j;
}

static int is_terminal(const char *state)
{
    return state && (strcmp(state, "FINISHED") == 0 || strcmp(state, "FAILED") == 0
                     || strcmp(state, "KILLED") == 0);
}

/* Our exit code for a finished driver: its own, else 1. */
static int final_code(const struct submit_args *args, const char *id, json_t *st)
{
    const char *state = json_string_value(json_object_get(st, "state"));
    const char *message = json_string_value(json_object_get(st, "message"));
    json_t *code = json_object_get(st, "exitCode");
    char *url = api_url(args, "/drivers/");

    if (strcmp(state, "FINISHED") != 0)
        fprintf(stderr, "ember-submit: driver %s %s%s%s; its output: %s%s/stdout and "
                "%s%s/stderr\n", id, state, message ? ": " : "", message ? message : "", url, id,
                url, id);
    free(url);
    return json_is_integer(code) ? (int)json_integer_value(code) : 1;
}

static int follow(const struct submit_args *args, const char *id)
{
    unsigned long long out = 0, err = 0;
    int unreachable = 0;

    for (;;) {
        json_t *st = driver_status(args, id, 1);
        const char *state = json_string_value(json_object_get(st, "state"));
        copy_log(args, id, "stdout", &out, stdout);
        copy_log(args, id, "stderr", &err, stderr);
        if (is_terminal(state)) {
            int code = final_code(args, id, st);
            json_decref(st);
            return code;
        }
        unreachable = st ? 0 : unreachable + 1;
        json_decref(st);
        if (unreachable == MAX_UNREACHABLE) {
            fprintf(stderr, "ember-submit: the gateway stopped answering about driver %s; "
                    "ask later with --status %s\n", id, id);
            return 1;
        }
        usleep(POLL_MS * 1000);
    }
}

int submit_cluster_run(const struct submit_args *args)
{
    char *body = submission_body(args), *url, *id = NULL;
    struct http_reply r;
    json_t *j = NULL;
    int code = 1;

    if (!body || start_http(args) != 0) {
        free(body);
        return 1;
    }
    url = api_url(args, "/drivers");
    if (http("POST", url, body, &r, 0) == 0) {
        j = reply_json(&r);
        if (r.status == 201 && json_string_value(json_object_get(j, "id")))
            id = ember_xstrdup(json_string_value(json_object_get(j, "id")));
        else
            print_error("the cluster refused the driver", &r);
    }
    ember_buf_free(&r.body);
    json_decref(j);
    free(url);
    free(body);
    if (id && args->no_wait) {
        printf("%s\n", id);
        fprintf(stderr, "ember-submit: driver %s submitted; follow it with --master %s "
                "--status %s\n", id, args->master, id);
        code = 0;
    } else if (id) {
        fprintf(stderr, "ember-submit: driver %s submitted; its output follows\n", id);
        code = follow(args, id);
    }
    free(id);
    stop_http();
    return code;
}

static void print_field(const char *label, json_t *value)
{
    char *text = json_is_string(value) ? ember_xstrdup(json_string_value(value))
                 : json_is_null(value) || !value ? ember_xstrdup("-")
                                                 : json_dumps(value, JSON_ENCODE_ANY);
    printf("%-10s %s\n", label, text);
    free(text);
}

int submit_cluster_status(const struct submit_args *args)
{
    json_t *st;
    char *url;

    if (start_http(args) != 0)
        return 1;
    st = driver_status(args, args->status_id, 0);
    if (st) {
        url = api_url(args, "/drivers/");
        print_field("driver", json_object_get(st, "id"));
        print_field("state", json_object_get(st, "state"));
        print_field("exit code", json_object_get(st, "exitCode"));
        print_field("worker", json_object_get(st, "workerId"));
        if (json_object_get(st, "message"))
            print_field("message", json_object_get(st, "message"));
        printf("%-10s %s%s/stdout\n%-10s %s%s/stderr\n", "stdout", url, args->status_id,
               "stderr", url, args->status_id);
        free(url);
    }
    json_decref(st);
    stop_http();
    return st ? 0 : 1;
}

int submit_cluster_kill(const struct submit_args *args)
{
    char *path, *url;
    struct http_reply r;
    int code = 1;

    if (start_http(args) != 0)
        return 1;
    path = ember_xasprintf("/drivers/%s/kill", args->kill_id);
    url = api_url(args, path);
    if (http("POST", url, "{}", &r, 0) == 0) {
        if (r.status == 200) {
            json_t *j = reply_json(&r);
            const char *state = json_string_value(json_object_get(j, "state"));
            printf("%s: %s\n", args->kill_id,
                   is_terminal(state) ? state : "kill requested (SIGTERM, then SIGKILL)");
            json_decref(j);
            code = 0;
        } else {
            print_error(args->kill_id, &r);
        }
    }
    ember_buf_free(&r.body);
    free(url);
    free(path);
    stop_http();
    return code;
}
