/* Feeds a task's input to its pyexec: a line-aligned text split, a data
 * slice shipped with the task, or every map output block of one reduce
 * partition. Runs on its own thread while the task thread reads output. */
#define _GNU_SOURCE
#include "worker.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "log.h"

#define TEXT_FRAME_BYTES (512 << 10)

/* Hadoop's LineRecordReader rule: a split owns every line that starts at
 * an offset p with start < p <= end (and p = 0 for the first split), so a
 * line crossing a boundary is read once, by the split where it starts. */
static int feed_text(const Ember__TextSplit *split, int fd, struct task_input_result *res)
{
    FILE *fp = fopen(split->path, "rb");
    uint64_t end = split->start + split->length, pos = split->start;
    struct ember_buf frame;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int rc = 0;

    if (!fp) {
        res->error = ember_xasprintf("cannot read input file %s: %s", split->path, strerror(errno));
        return EMBER_ENOENT;
    }
    if (fseeko(fp, (off_t)split->start, SEEK_SET) != 0) {
        res->error = ember_xasprintf("cannot seek in input file %s: %s", split->path,
                                     strerror(errno));
        fclose(fp);
        return EMBER_EIO;
    }
    if (split->start != 0 && (n = getline(&line, &cap, fp)) > 0)
        pos += (uint64_t)n;            /* the partial first line belongs to the previous split */
    ember_buf_init(&frame, 0);
    while (rc == 0 && pos <= end && (n = getline(&line, &cap, fp)) > 0) {
        pos += (uint64_t)n;
        if (ember_buf_append(&frame, line, (size_t)n) != 0)
            rc = EMBER_ETOOBIG;
        if (line[n - 1] != '\n' && rc == 0)
            rc = ember_buf_append(&frame, "\n", 1);
        if (rc == 0 && frame.len >= TEXT_FRAME_BYTES) {
            rc = ember_frame_write(fd, frame.data, frame.len);
            frame.len = 0;
        }
    }
    if (rc == 0 && frame.len > 0)
        rc = ember_frame_write(fd, frame.data, frame.len);
    res->input_bytes = pos - split->start;
    ember_buf_free(&frame);
    free(line);
    fclose(fp);
    return rc;
}

static int feed_shuffle(struct worker *w, const Ember__TaskSpec *spec, int fd,
                        struct task_input_result *res)
{
    const Ember__TaskInput *in = spec->input;

    for (size_t m = 0; m < in->n_map_locations; m++) {
        char block_id[96];
        uint64_t bytes = 0;
        const char *addr = in->map_locations[m];
        int rc;

        snprintf(block_id, sizeof(block_id), "shuffle_%u_%zu_%u", in->shuffle_id, m,
                 in->reduce_partition);
        rc = worker_fetch_block_to_fd(w, addr, block_id, fd, &bytes, &res->error);
        if (strcmp(addr, w->block_addr) == 0)
            res->local_bytes += bytes;
        else
            res->remote_bytes += bytes;
        if (rc == EMBER_ERPC) {
            res->fetch_failed = 1;
            res->failed_map_index = (uint32_t)m;
        }
        if (rc != 0)
            return rc;
    }
    return 0;
}

void worker_feed_input(struct worker *w, const Ember__TaskSpec *spec, struct pyexec_slot *slot,
                       struct task_input_result *res)
{
    const Ember__TaskInput *in = spec->input;
    int fd = slot->to_child;
    int rc = 0;

    switch (in->kind) {
    case EMBER__TASK_INPUT__KIND__TEXT:
        rc = feed_text(in->split, fd, res);
        break;
    case EMBER__TASK_INPUT__KIND__DATA:
        res->input_bytes = in->data.len;
        rc = ember_frame_write(fd, in->data.data, in->data.len);
        break;
    case EMBER__TASK_INPUT__KIND__SHUFFLE:
        rc = feed_shuffle(w, spec, fd, res);
        break;
    default:
        res->error = ember_xasprintf("unknown input kind %d", (int)in->kind);
        rc = EMBER_EINVAL;
    }
    if (rc == 0)
        rc = ember_frame_write_marker(fd, EMBER_FRAME_END);
    /* Without an error text the pipe broke: the pyexec died and the task
     * thread reports how. With one, the input failed: the pipe may hold half
     * a frame and the pyexec waits for more, so it must go (and is replaced). */
    if (rc != 0 && res->error)
        kill(slot->pid, SIGKILL);
}
