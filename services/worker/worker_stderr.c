/* A pyexec's stderr: forwarded line by line to the worker's log, and its last
 * lines kept, so a task failure can say what the process printed before it
 * died ("Python worker exited unexpectedly" with no cause helps nobody). */
#define _GNU_SOURCE
#include "worker.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

#define TAIL_BYTES 2048

struct stderr_tail {
    pthread_mutex_t lock;
    pthread_cond_t done_cond;
    int fd;
    pid_t pid;
    char tail[TAIL_BYTES];        /* the last bytes read, as a ring */
    size_t len, start;
    int done, refs;               /* refs: the reader thread and the owner */
};

static void keep(struct stderr_tail *t, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        size_t at = (t->start + t->len) % TAIL_BYTES;
        t->tail[at] = p[i];
        if (t->len < TAIL_BYTES)
            t->len++;
        else
            t->start = (t->start + 1) % TAIL_BYTES;
    }
}

static void release(struct stderr_tail *t)
{
    pthread_mutex_lock(&t->lock);
    int last = --t->refs == 0;
    pthread_mutex_unlock(&t->lock);
    if (!last)
        return;
    pthread_mutex_destroy(&t->lock);
    pthread_cond_destroy(&t->done_cond);
    free(t);
}

/* Forwards whole lines (user print() output lands here) at info level. */
static void forward(struct stderr_tail *t, char *line, size_t *used)
{
    char *nl;

    while ((nl = memchr(line, '\n', *used)) != NULL) {
        *nl = '\0';
        ember_log_info("pyexec=%d %s", (int)t->pid, line);
        size_t rest = *used - (size_t)(nl + 1 - line);
        memmove(line, nl + 1, rest);
        *used = rest;
    }
    if (*used >= 1024) {               /* a very long line: pass it on in pieces */
        line[*used] = '\0';
        ember_log_info("pyexec=%d %s", (int)t->pid, line);
        *used = 0;
    }
}

static void *reader_main(void *arg)
{
    struct stderr_tail *t = arg;
    char buf[4096], line[1025];
    size_t used = 0;
    ssize_t n;

    while ((n = read(t->fd, buf, sizeof(buf))) != 0) {
        if (n < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        pthread_mutex_lock(&t->lock);
        keep(t, buf, (size_t)n);
        pthread_mutex_unlock(&t->lock);
        for (ssize_t i = 0; i < n;) {
            size_t room = sizeof(line) - 1 - used;
            size_t take = (size_t)(n - i) < room ? (size_t)(n - i) : room;
            memcpy(line + used, buf + i, take);
            used += take;
            i += (ssize_t)take;
            forward(t, line, &used);
        }
    }
    close(t->fd);
    pthread_mutex_lock(&t->lock);
    t->done = 1;
    pthread_cond_broadcast(&t->done_cond);
    pthread_mutex_unlock(&t->lock);
    release(t);
    return NULL;
}

struct stderr_tail *worker_stderr_start(int fd, pid_t pid)
{
    struct stderr_tail *t = ember_xcalloc(1, sizeof(*t));
    pthread_attr_t attr;
    pthread_t thread;

    pthread_mutex_init(&t->lock, NULL);
    pthread_cond_init(&t->done_cond, NULL);
    t->fd = fd;
    t->pid = pid;
    t->refs = 2;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&thread, &attr, reader_main, t) != 0) {
        close(fd);
        t->done = 1;
        t->refs = 1;
    }
    pthread_attr_destroy(&attr);
    return t;
}

/* The last lines, after waiting a moment for the pipe's end (a grandchild
 * may keep it open: then what was read so far). New string; frees t. */
char *worker_stderr_finish(struct stderr_tail *t)
{
    struct timespec until;
    char *text;

    if (!t)
        return ember_xstrdup("");
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 1;
    ember_rpc_release_listener();      /* a launch's quick handler may wait here */
    pthread_mutex_lock(&t->lock);
    while (!t->done && pthread_cond_timedwait(&t->done_cond, &t->lock, &until) == 0) {
    }
    text = ember_xmalloc(t->len + 1);
    for (size_t i = 0; i < t->len; i++)
        text[i] = t->tail[(t->start + i) % TAIL_BYTES];
    text[t->len] = '\0';
    int cut = t->len == TAIL_BYTES;    /* the ring may have cut the first line */
    pthread_mutex_unlock(&t->lock);
    release(t);
    char *newline = cut ? strchr(text, '\n') : NULL;
    if (newline)
        memmove(text, newline + 1, strlen(newline + 1) + 1);
    return text;
}
