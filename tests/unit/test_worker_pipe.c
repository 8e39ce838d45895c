/* The worker's buffered frame reader (worker_pipe.c) against ember_frame_read,
 * the reader it replaces: the same byte streams, written into a pipe in
 * uneven pieces for the one and read from a file by the other, must give the
 * same frames, markers and errors, in the same order. */
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include <arpa/inet.h>

#include "frame.h"
#include "test.h"
#include "worker.h"

struct stream {
    uint8_t *data;
    size_t len;
};

static void put(struct stream *s, const void *p, size_t n)
{
    s->data = realloc(s->data, s->len + n);
    memcpy(s->data + s->len, p, n);
    s->len += n;
}

static void put_header(struct stream *s, int32_t len)
{
    uint32_t be = htonl((uint32_t)len);
    put(s, &be, 4);
}

static void put_frame(struct stream *s, size_t n, unsigned seed)
{
    uint8_t *p = malloc(n ? n : 1);
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(seed * 31 + i * 7);
    put_header(s, (int32_t)n);
    put(s, p, n);
    free(p);
}

struct writer {
    int fd;
    const struct stream *s;
};

/* Writes the stream in pieces of 1 to about 9000 bytes, then closes. */
static void *write_unevenly(void *arg)
{
    struct writer *w = arg;
    size_t off = 0, step = 1;

    while (off < w->s->len) {
        size_t n = step < w->s->len - off ? step : w->s->len - off;
        if (ember_write_full(w->fd, w->s->data + off, n) != 0)
            break;
        off += n;
        step = (step * 7 + 3) % 9001;
    }
    close(w->fd);
    return NULL;
}

static int waits;

static void count_wait(void *arg, int fd)
{
    (void)arg;
    (void)fd;
    waits++;
}

/* Reads the whole stream both ways, frame by frame, until either fails. */
static void compare(const char *name, const struct stream *s)
{
    char path[] = "/tmp/test_worker_pipe_XXXXXX";
    int file = mkstemp(path);
    int fds[2];
    struct pyexec_slot slot = {.from_child = -1};
    struct worker_pipe_wait wait = {count_wait, NULL};
    struct writer w;
    pthread_t thread;
    int frames = 0;

    CHECK(file >= 0 && ember_write_full(file, s->data, s->len) == 0, "%s: temp file", name);
    lseek(file, 0, SEEK_SET);
    unlink(path);
    CHECK(pipe(fds) == 0, "%s: pipe", name);
    slot.from_child = fds[0];
    w.fd = fds[1];
    w.s = s;
    pthread_create(&thread, NULL, write_unevenly, &w);
    waits = 0;
    for (;;) {
        struct ember_buf want, got;
        int32_t want_marker = 7, got_marker = 7;
        ember_buf_init(&want, 0);
        ember_buf_init(&got, 0);
        int want_rc = ember_frame_read(file, &want, &want_marker);
        int got_rc = worker_pipe_read_frame(&slot, &got, &got_marker, &wait);
        CHECK(want_rc == got_rc, "%s frame %d: rc %d, want %d", name, frames, got_rc, want_rc);
        if (want_rc == 0 && got_rc == 0) {
            CHECK(want_marker == got_marker, "%s frame %d: marker %d, want %d", name, frames,
                  (int)got_marker, (int)want_marker);
            if (want_marker == 0)
                CHECK(want.len == got.len
                          && (want.len == 0 || memcmp(want.data, got.data, want.len) == 0),
                      "%s frame %d: %zu bytes differ from the %zu wanted", name, frames,
                      got.len, want.len);
        }
        ember_buf_free(&want);
        ember_buf_free(&got);
        frames++;
        if (want_rc != 0 || got_rc != 0)
            break;
    }
    CHECK(waits > 0, "%s: the wait hook was never called", name);
    pthread_join(thread, NULL);
    close(file);
    close(fds[0]);
    worker_pipe_free(&slot);
}

int main(void)
{
    struct stream whole = {0}, cut_header = {0}, cut_payload = {0}, bad_marker = {0},
                  too_long = {0};
    size_t sizes[] = {0, 1, 17, 4096, 65535, 65536, 65537, 200000, (3 << 20) + 5};

    for (unsigned i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        put_frame(&whole, sizes[i], i);
        put_header(&whole, EMBER_FRAME_CACHE);
        put_frame(&whole, sizes[i] / 3, i + 100);
    }
    put_header(&whole, EMBER_FRAME_END);
    put_frame(&whole, 82, 9);
    put_header(&whole, EMBER_FRAME_ERROR);
    put_frame(&whole, 300, 10);
    compare("whole stream, clean EOF", &whole);

    put(&cut_header, whole.data, whole.len);
    put(&cut_header, "\0\0", 2);
    compare("EOF inside a length", &cut_header);

    put_frame(&cut_payload, 10, 1);
    put_header(&cut_payload, 100000);
    put(&cut_payload, whole.data, 70000);
    compare("EOF inside a payload", &cut_payload);

    put_frame(&bad_marker, 5, 2);
    put_header(&bad_marker, -7);
    compare("an unknown marker", &bad_marker);

    put_header(&too_long, EMBER_FRAME_MAX + 1);
    compare("a length over the limit", &too_long);

    /* A replaced process's unread bytes never reach the next reader. */
    struct pyexec_slot slot = {.from_child = -1};
    int fds[2];
    struct ember_buf frame;
    int32_t marker = 7;
    struct stream two = {0};
    put_frame(&two, 3, 1);
    put_frame(&two, 4, 2);
    CHECK(pipe(fds) == 0, "pipe");
    slot.from_child = fds[0];
    CHECK(ember_write_full(fds[1], two.data, two.len) == 0, "write");
    ember_buf_init(&frame, 0);
    CHECK(worker_pipe_read_frame(&slot, &frame, &marker, NULL) == 0 && frame.len == 3,
          "first frame: %zu bytes", frame.len);
    worker_pipe_reset(&slot);
    close(fds[1]);
    CHECK(worker_pipe_read_frame(&slot, &frame, &marker, NULL) == EMBER_EEOF,
          "the second frame was still buffered after the reset");
    close(fds[0]);
    ember_buf_free(&frame);
    worker_pipe_free(&slot);

    free(whole.data);
    free(cut_header.data);
    free(cut_payload.data);
    free(bad_marker.data);
    free(too_long.data);
    free(two.data);
    return TEST_EXIT();
}
