/* Feeds a task's input to its pyexec: a line-aligned text split, a data
 * slice shipped with the task, or every map output block of one reduce
 * partition. Runs on its own thread while the task thread reads output. */
#define _GNU_SOURCE
#include "worker.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "frame.h"
#include "log.h"

#define READ_BYTES (256 << 10)

/* Reads a local file from split->start into l until l is done or the file ends. */
static int feed_file(const Ember__TextSplit *split, struct worker_lines *l, char **error)
{
    int fd = open(split->path, O_RDONLY | O_CLOEXEC);
    uint8_t *buf;
    ssize_t n;
    int rc = 0;

    if (fd < 0) {
        *error = ember_xasprintf("cannot read input file %s: %s", split->path, strerror(errno));
        return EMBER_ENOENT;
    }
    if (lseek(fd, (off_t)split->start, SEEK_SET) < 0) {
        *error = ember_xasprintf("cannot seek in input file %s: %s", split->path,
                                 strerror(errno));
        close(fd);
        return EMBER_EIO;
    }
    buf = ember_xmalloc(READ_BYTES);
    while (rc == 0 && !worker_lines_done(l)) {
        n = read(fd, buf, READ_BYTES);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            *error = ember_xasprintf("cannot read input file %s: %s", split->path,
                                     strerror(errno));
            rc = EMBER_EIO;
        }
        if (n <= 0)
            break;
        rc = worker_lines_push(l, buf, (size_t)n, error);
    }
    free(buf);
    close(fd);
    return rc;
}

/* A text split from a local file or an http(s) URL, as whole lines. */
static int feed_text(const Ember__TextSplit *split, int fd, struct task_input_result *res)
{
    struct worker_lines *l = worker_lines_new(split, fd);
    int rc;

    if (worker_http_is_url(split->path))
        rc = worker_http_feed(split, l, &res->error);
    else
        rc = feed_file(split, l, &res->error);
    if (rc == 0)
        rc = worker_lines_finish(l, &res->error);
    res->input_bytes = worker_lines_offset(l) - split->start;
    worker_lines_free(l);
    return rc;
}

/* A checkpoint part: already frames, sent as it is. */
static int feed_frames_file(const char *path, int fd, struct task_input_result *res)
{
    FILE *fp = fopen(path, "rb");
    char *chunk;
    size_t n;
    int rc = 0;

    if (!fp) {
        res->error = ember_xasprintf("cannot read checkpoint file %s: %s", path, strerror(errno));
        return EMBER_ENOENT;
    }
    chunk = ember_xmalloc(1 << 20);
    while (rc == 0 && (n = fread(chunk, 1, 1 << 20, fp)) > 0) {
        rc = ember_write_full(fd, chunk, n);
        res->input_bytes += n;
    }
    if (rc == 0 && ferror(fp)) {
        res->error = ember_xasprintf("cannot read checkpoint file %s", path);
        rc = EMBER_EIO;
    }
    free(chunk);
    fclose(fp);
    return rc;
}

/* The ranges of map outputs held at `address`, in map order. */
static size_t ranges_at(const Ember__TaskInput *in, const char *address, int *taken,
                        Ember__BlockRange *storage, Ember__BlockRange **ranges, uint32_t *first_map)
{
    size_t n = 0;

    for (size_t m = 0; m < in->n_map_locations; m++) {
        if (taken[m] || strcmp(in->map_locations[m], address) != 0)
            continue;
        taken[m] = 1;
        if (in->map_lengths[m] == 0)
            continue;                  /* that map task had nothing for us */
        if (n == 0)
            *first_map = (uint32_t)m;
        ember__block_range__init(&storage[n]);
        storage[n].block_id = ember_xasprintf("shuffle_%u_%zu", in->shuffle_id, m);
        storage[n].offset = in->map_offsets[m];
        storage[n].length = in->map_lengths[m];
        ranges[n] = &storage[n];
        n++;
    }
    return n;
}

/* Fetches this reduce partition's range of every map output block, with one
 * call per block manager. */
static int feed_shuffle(struct worker *w, const Ember__TaskInput *in, int fd,
                        struct task_input_result *res)
{
    size_t n_maps = in->n_map_locations;
    int *taken = ember_xcalloc(n_maps + 1, sizeof(int));
    Ember__BlockRange *storage = ember_xcalloc(n_maps + 1, sizeof(*storage));
    Ember__BlockRange **ranges = ember_xcalloc(n_maps + 1, sizeof(*ranges));
    int rc = 0;

    if (in->n_map_offsets != n_maps || in->n_map_lengths != n_maps) {
        res->error = ember_xstrdup("task spec has no offsets for its map outputs");
        rc = EMBER_EINVAL;
    }
    for (size_t m = 0; rc == 0 && m < n_maps; m++) {
        const char *addr = in->map_locations[m];
        uint32_t first_map = 0;
        uint64_t bytes = 0;
        size_t n;
        if (taken[m])
            continue;
        n = ranges_at(in, addr, taken, storage, ranges, &first_map);
        if (n > 0)
            rc = worker_fetch_ranges_to_fd(w, addr, ranges, n, fd, &bytes, &res->error);
        if (strcmp(addr, w->block_addr) == 0)
            res->local_bytes += bytes;
        else
            res->remote_bytes += bytes;
        if (rc == EMBER_ERPC) {
            res->fetch_failed = 1;
            res->failed_map_index = first_map;
        }
        for (size_t i = 0; i < n; i++)
            free(storage[i].block_id);
    }
    free(taken);
    free(storage);
    free(ranges);
    return rc;
}

static int feed_one(struct worker *w, const Ember__TaskInput *in, int fd,
                    struct task_input_result *res)
{
    int rc;

    if ((in->kind == EMBER__TASK_INPUT__KIND__TEXT || in->kind == EMBER__TASK_INPUT__KIND__FRAMES)
        && !in->split) {
        res->error = ember_xasprintf("a %s input came without its file split",
                                     in->kind == EMBER__TASK_INPUT__KIND__TEXT ? "text" : "frames");
        return EMBER_EINVAL;
    }
    switch (in->kind) {
    case EMBER__TASK_INPUT__KIND__TEXT:
        return feed_text(in->split, fd, res);
    case EMBER__TASK_INPUT__KIND__DATA:
        res->input_bytes += in->data.len;
        return ember_frame_write(fd, in->data.data, in->data.len);
    case EMBER__TASK_INPUT__KIND__SHUFFLE:
        return feed_shuffle(w, in, fd, res);
    case EMBER__TASK_INPUT__KIND__FRAMES:
        return feed_frames_file(in->split->path, fd, res);
    case EMBER__TASK_INPUT__KIND__CACHED: {
        uint64_t bytes = 0;
        rc = worker_fetch_block_to_fd(w, in->block_addr, in->block_id, fd, &bytes, &res->error);
        res->input_bytes += bytes;
        if (rc == EMBER_ERPC) {
            res->fetch_failed = 1;     /* evicted or lost: the master recomputes it */
            res->missing_block = ember_xstrdup(in->block_id);
        }
        return rc;
    }
    default:
        res->error = ember_xasprintf("unknown input kind %d", (int)in->kind);
        return EMBER_EINVAL;
    }
}

void worker_feed_input(struct worker *w, const Ember__TaskSpec *spec, struct pyexec_slot *slot,
                       struct task_input_result *res)
{
    int fd = slot->to_child;
    int rc = 0;

    /* Each input of the plan, in order, ends with its own END. */
    for (size_t i = 0; rc == 0 && i < spec->n_inputs; i++) {
        if (!res->from_objects || !res->from_objects[i])
            rc = feed_one(w, spec->inputs[i], fd, res);
        if (rc == 0)
            rc = ember_frame_write_marker(fd, EMBER_FRAME_END);
    }
    /* Without an error text the pipe broke: the pyexec died and the task
     * thread reports how. With one, the input failed: the pipe may hold half
     * a frame and the pyexec waits for more, so it must go (and is replaced). */
    if (rc != 0 && res->error)
        kill(slot->pid, SIGKILL);
}
