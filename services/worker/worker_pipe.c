/* Frames from a pyexec's stdout through a buffer: a short task's output,
 * END and metrics (the pyexec writes them together) come in one read()
 * instead of two per frame (length, then payload). Same frames and errors as
 * ember_frame_read; the buffer belongs to the slot and is emptied whenever its
 * process is replaced, so no byte of a dead process reaches the next task. */
#define _GNU_SOURCE
#include "worker.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "frame.h"

#define PIPE_BUFFER (64 * 1024)

void worker_pipe_reset(struct pyexec_slot *s)
{
    s->rbuf_start = s->rbuf_end = 0;
}

void worker_pipe_free(struct pyexec_slot *s)
{
    free(s->rbuf);
    s->rbuf = NULL;
    worker_pipe_reset(s);
}

/* Refills the empty buffer with what the pipe holds (at least one byte). */
static int fill(struct pyexec_slot *s, const struct worker_pipe_wait *wait)
{
    ssize_t r;

    if (!s->rbuf)
        s->rbuf = ember_xmalloc(PIPE_BUFFER);
    s->rbuf_start = s->rbuf_end = 0;
    if (wait)
        wait->fn(wait->arg, s->from_child);
    do
        r = read(s->from_child, s->rbuf, PIPE_BUFFER);
    while (r < 0 && errno == EINTR);
    if (r == 0)
        return EMBER_EEOF;
    if (r < 0)
        return EMBER_EIO;
    s->rbuf_end = (size_t)r;
    return 0;
}

/* Copies n bytes out of the buffer, refilling it as needed. */
static int take(struct pyexec_slot *s, uint8_t *p, size_t n, const struct worker_pipe_wait *wait)
{
    size_t got = 0;

    while (got < n) {
        if (s->rbuf_start == s->rbuf_end && n - got >= PIPE_BUFFER) {
            /* A big payload goes straight to its place, not through the buffer. */
            if (wait)
                wait->fn(wait->arg, s->from_child);
            ssize_t r = read(s->from_child, p + got, n - got);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0)
                return (r == 0 && got == 0) ? EMBER_EEOF : EMBER_EIO;
            got += (size_t)r;
            continue;
        }
        if (s->rbuf_start == s->rbuf_end) {
            int rc = fill(s, wait);
            if (rc != 0)
                return (rc == EMBER_EEOF && got == 0) ? EMBER_EEOF : EMBER_EIO;
        }
        size_t k = s->rbuf_end - s->rbuf_start < n - got ? s->rbuf_end - s->rbuf_start : n - got;
        memcpy(p + got, s->rbuf + s->rbuf_start, k);
        s->rbuf_start += k;
        got += k;
    }
    return 0;
}

struct pipe_source {
    struct pyexec_slot *slot;
    const struct worker_pipe_wait *wait;
};

static int take_from(void *src, void *p, size_t n)
{
    struct pipe_source *from = src;
    return take(from->slot, p, n, from->wait);
}

int worker_pipe_read_frame(struct pyexec_slot *s, struct ember_buf *buf, int32_t *marker,
                           const struct worker_pipe_wait *wait)
{
    struct pipe_source from = {s, wait};
    return ember_frame_read_from(take_from, &from, buf, marker);
}

int worker_pipe_peek(struct pyexec_slot *s, void *p, size_t n, const struct worker_pipe_wait *wait)
{
    if (n > 16)
        return EMBER_EINVAL;
    if (!s->rbuf)
        s->rbuf = ember_xmalloc(PIPE_BUFFER);
    if (s->rbuf_end - s->rbuf_start < n) {
        /* Too few buffered: move them to the front and read behind them. */
        memmove(s->rbuf, s->rbuf + s->rbuf_start, s->rbuf_end - s->rbuf_start);
        s->rbuf_end -= s->rbuf_start;
        s->rbuf_start = 0;
    }
    while (s->rbuf_end - s->rbuf_start < n) {
        if (wait)
            wait->fn(wait->arg, s->from_child);
        ssize_t r = read(s->from_child, s->rbuf + s->rbuf_end, PIPE_BUFFER - s->rbuf_end);
        if (r < 0 && errno == EINTR)
            continue;
        if (r == 0)
            return EMBER_EEOF;
        if (r < 0)
            return EMBER_EIO;
        s->rbuf_end += (size_t)r;
    }
    memcpy(p, s->rbuf + s->rbuf_start, n);
    return 0;
}

void worker_pipe_skip(struct pyexec_slot *s, size_t n)
{
    size_t buffered = s->rbuf_end - s->rbuf_start;

    s->rbuf_start += n < buffered ? n : buffered;
}

int worker_pipe_splice(struct pyexec_slot *s, int fd, size_t n, const struct worker_pipe_wait *wait)
{
    size_t buffered = s->rbuf_end - s->rbuf_start;

    if (buffered > n)
        buffered = n;
    if (buffered && ember_write_full(fd, s->rbuf + s->rbuf_start, buffered) != 0)
        return EMBER_EIO;
    s->rbuf_start += buffered;
    n -= buffered;
    while (n > 0) {
        ssize_t r = -1;

        if (!s->splice_refused) {
            if (wait)
                wait->fn(wait->arg, s->from_child);
            r = splice(s->from_child, NULL, fd, NULL, n, SPLICE_F_MOVE);
            if (r < 0 && errno == EINTR)
                continue;
            /* No splice into that file here (EINVAL, ENOSYS; EPERM: a seccomp
             * filter): this process goes through the buffer from now on. */
            if (r < 0 && (errno == EINVAL || errno == ENOSYS || errno == EPERM))
                s->splice_refused = 1;
        }
        if (s->splice_refused) {
            int rc = fill(s, wait);    /* honours the wait hook as splice does */
            if (rc != 0)
                return EMBER_EIO;
            buffered = s->rbuf_end < n ? s->rbuf_end : n;
            if (ember_write_full(fd, s->rbuf, buffered) != 0)
                return EMBER_EIO;
            s->rbuf_start = buffered;
            n -= buffered;
            continue;
        }
        if (r <= 0)
            return EMBER_EIO;       /* the end mid-frame, or the memfd cannot grow */
        n -= (size_t)r;
    }
    return 0;
}
