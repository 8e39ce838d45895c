/* Text splits over HTTP(S): one libcurl transfer per task asks for the bytes
 * from the split's start on (an open-ended range) and is stopped as soon as the
 * split's last line is complete. A connection that breaks after some progress
 * is resumed with a new range from where it stopped. */
#define _GNU_SOURCE
#include "worker.h"

#include <curl/curl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"

#define CONNECT_TIMEOUT_S 10L
/* A stall detector, not a speed floor: the transfer waits while the pyexec
 * works through earlier lines, so only a server silent for a minute fails. */
#define LOW_SPEED_BYTES 1L
#define LOW_SPEED_TIME_S 60L
#define MAX_REDIRECTS 10L
#define MAX_RESUMES 8

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static CURLcode init_code = CURLE_OK;

static void global_init(void)
{
    init_code = curl_global_init(CURL_GLOBAL_DEFAULT);
    if (init_code != CURLE_OK)
        ember_log_error("cannot initialise libcurl: %s", curl_easy_strerror(init_code));
}

void worker_http_init(void)
{
    pthread_once(&init_once, global_init);
}

void worker_http_cleanup(void)
{
    curl_global_cleanup();
}

int worker_http_is_url(const char *path)
{
    return strncasecmp(path, "http://", 7) == 0 || strncasecmp(path, "https://", 8) == 0;
}

/* One task's transfer state, shared with the write callback. */
struct transfer {
    CURL *curl;
    const char *url;
    struct worker_lines *lines;
    char **error;
    int rc;                    /* the framer's first failure */
    int answered;              /* the status of this attempt was checked */
    uint64_t skip;             /* leading bytes to drop (a 200 answer has them all) */
    uint64_t received;         /* bytes of this attempt */
    char curl_error[CURL_ERROR_SIZE];
};

/* Runs on the first bytes of an attempt: a 206 starts where we asked, a 200
 * (the server ignored the range) at offset 0. */
static int check_answer(struct transfer *t)
{
    long status = 0;

    t->answered = 1;
    curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &status);
    if (status == 206)
        return 0;
    if (status >= 200 && status < 300) {
        t->skip = worker_lines_offset(t->lines);
        return 0;
    }
    *t->error = ember_xasprintf("cannot read input %s: the server answered HTTP status %ld",
                                t->url, status);
    return EMBER_EIO;
}

/* Returning less than asked ends the transfer (CURLE_WRITE_ERROR): we do
 * that once the split is complete or the framer failed. */
static size_t on_data(char *p, size_t size, size_t nmemb, void *user)
{
    struct transfer *t = user;
    size_t n = size * nmemb, off = 0;

    if (!t->answered)
        t->rc = check_answer(t);
    if (t->rc != 0)
        return 0;
    t->received += n;
    if (t->skip > 0) {
        off = t->skip < n ? (size_t)t->skip : n;
        t->skip -= off;
    }
    if (off < n)
        t->rc = worker_lines_push(t->lines, p + off, n - off, t->error);
    if (t->rc != 0 || worker_lines_done(t->lines))
        return 0;
    return n;
}

static void set_options(struct transfer *t)
{
    CURL *c = t->curl;

    curl_easy_setopt(c, CURLOPT_URL, t->url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, MAX_REDIRECTS);
    curl_easy_setopt(c, CURLOPT_FAILONERROR, 1L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);   /* we have threads */
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, CONNECT_TIMEOUT_S);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, LOW_SPEED_BYTES);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, LOW_SPEED_TIME_S);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "ember-worker");
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, t->curl_error);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, t);
}

/* One request for the bytes from the framer's offset on. */
static CURLcode attempt(struct transfer *t, long *status)
{
    char range[32];
    CURLcode code;

    snprintf(range, sizeof(range), "%" PRIu64 "-", worker_lines_offset(t->lines));
    curl_easy_setopt(t->curl, CURLOPT_RANGE, range);
    t->answered = 0;
    t->skip = 0;
    t->received = 0;
    t->curl_error[0] = '\0';
    code = curl_easy_perform(t->curl);
    *status = 0;
    curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, status);
    return code;
}

/* A connection that broke mid-body is worth a new range request. */
static int resumable(CURLcode code)
{
    return code == CURLE_PARTIAL_FILE || code == CURLE_RECV_ERROR ||
           code == CURLE_OPERATION_TIMEDOUT || code == CURLE_GOT_NOTHING ||
           code == CURLE_HTTP2_STREAM;
}

static char *describe(const struct transfer *t, CURLcode code, long status)
{
    if (code == CURLE_HTTP_RETURNED_ERROR)
        return ember_xasprintf("cannot read input %s: the server answered HTTP status %ld", t->url,
                               status);
    return ember_xasprintf("cannot read input %s: %s (curl error %d)", t->url,
                           t->curl_error[0] ? t->curl_error : curl_easy_strerror(code), (int)code);
}

/* Runs attempts until the split is complete, the object ends or one fails. */
static int run(struct transfer *t)
{
    for (int resumes = 0;; resumes++) {
        long status;
        CURLcode code = attempt(t, &status);

        if (t->rc != 0)
            return t->rc;              /* the framer or check_answer said why */
        if (code == CURLE_OK || (code == CURLE_WRITE_ERROR && worker_lines_done(t->lines)))
            return 0;
        if (code == CURLE_HTTP_RETURNED_ERROR && status == 416)
            return 0;                  /* the range starts at or past the end: nothing left */
        if (resumable(code) && t->received > 0 && resumes < MAX_RESUMES) {
            ember_log_warn("input %s broke at offset %" PRIu64 " (%s); asking again from there",
                           t->url, worker_lines_offset(t->lines), curl_easy_strerror(code));
            continue;
        }
        *t->error = describe(t, code, status);
        return EMBER_EIO;
    }
}

int worker_http_feed(const Ember__TextSplit *split, struct worker_lines *l, char **error)
{
    struct transfer t = {.url = split->path, .lines = l, .error = error};
    int rc;

    worker_http_init();
    if (init_code != CURLE_OK) {
        *error = ember_xasprintf("cannot read input %s: libcurl did not initialise (%s)",
                                 split->path, curl_easy_strerror(init_code));
        return EMBER_EIO;
    }
    t.curl = curl_easy_init();
    if (!t.curl) {
        *error = ember_xasprintf("cannot read input %s: libcurl cannot start a transfer",
                                 split->path);
        return EMBER_EIO;
    }
    set_options(&t);
    rc = run(&t);
    curl_easy_cleanup(t.curl);         /* closes its connection */
    return rc;
}
