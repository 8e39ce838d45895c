/* Cuts the bytes of one text split into frames of whole lines for a pyexec,
 * whatever their source (a local file, an HTTP range). Hadoop's
 * LineRecordReader rule decides which lines belong to the split. */
#define _GNU_SOURCE
#include "worker.h"

#include <stdlib.h>
#include <string.h>

#include "frame.h"

#define TEXT_FRAME_BYTES (512 << 10)

struct worker_lines {
    int fd;                  /* the pyexec's input pipe, borrowed */
    const char *path;        /* borrowed, for messages */
    uint64_t end;            /* the split owns lines starting at offsets <= end */
    uint64_t pos;            /* offset of the next byte to take */
    int skipping;            /* in the partial first line, owned by the previous split */
    int in_line;             /* frame ends in an unfinished line */
    int done;
    struct ember_buf frame;  /* whole lines, then at most one unfinished line */
    size_t whole;            /* bytes of whole lines at the head of frame */
};

struct worker_lines *worker_lines_new(const Ember__TextSplit *split, int fd)
{
    struct worker_lines *l = ember_xcalloc(1, sizeof(*l));

    l->fd = fd;
    l->path = split->path;
    l->end = split->start + split->length;
    l->pos = split->start;
    l->skipping = split->start != 0;
    ember_buf_init(&l->frame, EMBER_FRAME_MAX);
    return l;
}

void worker_lines_free(struct worker_lines *l)
{
    if (!l)
        return;
    ember_buf_free(&l->frame);
    free(l);
}

int worker_lines_done(const struct worker_lines *l)
{
    return l->done;
}

uint64_t worker_lines_offset(const struct worker_lines *l)
{
    return l->pos;
}

/* Sends the whole lines and keeps the unfinished one. */
static int flush(struct worker_lines *l)
{
    int rc = ember_frame_write(l->fd, l->frame.data, l->whole);

    memmove(l->frame.data, l->frame.data + l->whole, l->frame.len - l->whole);
    l->frame.len -= l->whole;
    l->whole = 0;
    return rc;
}

static int append(struct worker_lines *l, const void *p, size_t n, char **error)
{
    if (ember_buf_append(&l->frame, p, n) == 0)
        return 0;
    *error = ember_xasprintf("input %s has a line longer than %d bytes near offset %llu", l->path,
                             EMBER_FRAME_MAX, (unsigned long long)l->pos);
    return EMBER_ETOOBIG;
}

/* The split is complete once no line is open and the next one starts past it. */
static void check_done(struct worker_lines *l)
{
    if (!l->skipping && !l->in_line && l->pos > l->end)
        l->done = 1;
}

int worker_lines_push(struct worker_lines *l, const void *data, size_t n, char **error)
{
    const uint8_t *p = data;
    int rc = 0;

    check_done(l);
    while (rc == 0 && n > 0 && !l->done) {
        const uint8_t *nl = memchr(p, '\n', n);
        size_t take = nl ? (size_t)(nl - p) + 1 : n;

        if (l->skipping) {
            l->skipping = !nl;
        } else {
            rc = append(l, p, take, error);
            l->in_line = !nl;
            if (nl)
                l->whole = l->frame.len;
            if (rc == 0 && l->whole >= TEXT_FRAME_BYTES)
                rc = flush(l);
        }
        l->pos += take;
        p += take;
        n -= take;
        check_done(l);
    }
    return rc;
}

int worker_lines_finish(struct worker_lines *l, char **error)
{
    int rc = 0;

    if (l->in_line) {                  /* the input ends without a final newline */
        rc = append(l, "\n", 1, error);
        l->in_line = 0;
        l->whole = l->frame.len;
    }
    if (rc == 0 && l->whole > 0)
        rc = flush(l);
    l->done = 1;
    return rc;
}
