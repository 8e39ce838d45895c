#include "frame.h"

#include <arpa/inet.h>
#include <errno.h>
#include <unistd.h>

#define FRAME_STEP (1 << 20)           /* bytes read before the buffer grows again */

int ember_write_full(int fd, const void *p, size_t n)
{
    const uint8_t *q = p;

    while (n > 0) {
        ssize_t w = write(fd, q, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return EMBER_EIO;
        q += w;
        n -= (size_t)w;
    }
    return 0;
}

int ember_read_full(int fd, void *p, size_t n)
{
    uint8_t *q = p;
    size_t got = 0;

    while (got < n) {
        ssize_t r = read(fd, q + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return (r == 0 && got == 0) ? EMBER_EEOF : EMBER_EIO;
        got += (size_t)r;
    }
    return 0;
}

int ember_frame_write(int fd, const void *payload, size_t len)
{
    uint32_t be = htonl((uint32_t)len);
    int rc;

    if (len > EMBER_FRAME_MAX)
        return EMBER_ETOOBIG;
    rc = ember_write_full(fd, &be, 4);
    if (rc == 0)
        rc = ember_write_full(fd, payload, len);
    return rc;
}

int ember_frame_write_marker(int fd, int32_t marker)
{
    uint32_t be = htonl((uint32_t)marker);
    return ember_write_full(fd, &be, 4);
}

/* Reads len bytes into buf, growing it as they arrive: a header that promises
 * a gigabyte costs memory only once the bytes come. */
static int read_payload(ember_read_fn read_full, void *src, struct ember_buf *buf, size_t len)
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
        if (read_full(src, buf->data + got, step) != 0)
            return EMBER_EIO;
        got += step;
    }
    return 0;
}

int ember_frame_read_from(ember_read_fn read_full, void *src, struct ember_buf *buf,
                          int32_t *marker)
{
    uint32_t be;
    int32_t len;
    int rc;

    rc = read_full(src, &be, 4);
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
    rc = read_payload(read_full, src, buf, (size_t)len);
    if (rc != 0)
        return rc;
    buf->len = (size_t)len;
    *marker = 0;
    return 0;
}

static int read_fd(void *src, void *p, size_t n)
{
    return ember_read_full(*(int *)src, p, n);
}

int ember_frame_read(int fd, struct ember_buf *buf, int32_t *marker)
{
    return ember_frame_read_from(read_fd, &fd, buf, marker);
}
