/* Frames from a pyexec's stdout through a buffer: a short task's output,
 * END and metrics (the pyexec writes them together) come in one read()
 * instead of two per frame (length, then payload). Same frames and errors as
 * ember_frame_read; the buffer belongs to the slot and is emptied whenever its
 * process is replaced, so no byte of a dead process reaches the next task. */
#define _GNU_SOURCE
#include "worker.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "frame.h"

#define PIPE_BUFFER (64 * 1024)
#define FRAME_STEP (1 << 20)           /* bytes read before the frame's buffer grows again */

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

/* The payload: what the buffer holds first, then the rest, growing buf as the
 * bytes arrive (a header that promises a gigabyte costs memory only then). */
static int take_payload(struct pyexec_slot *s, struct ember_buf *buf, size_t len,
                        const struct worker_pipe_wait *wait)
{
    size_t got = 0;

    while (got < len) {
        size_t step = len - got < FRAME_STEP ? len - got : FRAME_STEP;
        if (got + step > buf->alloc) {
            size_t want = buf->alloc * 2 > got + step ? buf->alloc * 2 : got + step;
            want = want < len ? want : len;
            buf->data = ember_xrealloc(buf->data, want);
            buf->alloc = want;
        }
        if (take(s, buf->data + got, step, wait) != 0)
            return EMBER_EIO;
        got += step;
    }
    return 0;
}

int worker_pipe_read_frame(struct pyexec_slot *s, struct ember_buf *buf, int32_t *marker,
                           const struct worker_pipe_wait *wait)
{
    uint32_t be;
    int32_t len;
    int rc = take(s, (uint8_t *)&be, 4, wait);

    if (rc != 0)
        return rc;
    len = (int32_t)ntohl(be);
    if (len < 0) {
        if (len != EMBER_FRAME_END && len != EMBER_FRAME_ERROR && len != EMBER_FRAME_CACHE)
            return EMBER_EIO;
        *marker = len;
        return 0;
    }
    if (len > EMBER_FRAME_MAX)
        return EMBER_EIO;
    buf->len = 0;
    if (buf->cap && (size_t)len > buf->cap)
        return EMBER_ETOOBIG;
    rc = take_payload(s, buf, (size_t)len, wait);
    if (rc != 0)
        return rc;
    buf->len = (size_t)len;
    *marker = 0;
    return 0;
}
