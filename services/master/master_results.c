/* Small task results held by the master (see master.h): kept from the task's
 * report until the driver's application ends, the job fails, or room is
 * needed for newer results (finished jobs first, oldest first). */
#define _GNU_SOURCE
#include "master.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"

/* Frees r's inline bytes and takes them off the job's and the master's totals. */
static void free_inline(struct master *m, struct job *job, struct result_location *r)
{
    if (r->inline_data) {
        m->inline_bytes -= r->size;
        job->inline_bytes -= r->size;
        free(r->inline_data);
        r->inline_data = NULL;
    }
}

void master_result_clear(struct master *m, struct job *job, uint32_t index)
{
    struct result_location *r = &job->results[index];

    free_inline(m, job, r);
    r->is_inline = 0;
    free(r->block_addr);
    r->block_addr = NULL;
}

void master_results_release(struct master *m, struct job *job)
{
    /* is_inline stays: the entry says "dropped" */
    for (uint32_t i = 0; job->results && i < job->result_stage->n_parts; i++)
        free_inline(m, job, &job->results[i]);
}

/* Drops finished jobs' inline results, oldest job first, until the total is
 * under the budget or only running jobs hold any. */
static void make_room(struct master *m)
{
    for (size_t i = 0; i < m->jobs.n && m->inline_bytes > MASTER_INLINE_TOTAL_MAX; i++) {
        struct job *job = m->jobs.items[i];
        if (job->status == JOB_RUNNING || job->inline_bytes == 0)
            continue;
        ember_log_info("app=%s job=%u: dropping its %llu bytes of inline results (over %llu "
                       "held)", job->app->id, job->id, (unsigned long long)job->inline_bytes,
                       (unsigned long long)MASTER_INLINE_TOTAL_MAX);
        master_results_release(m, job);
    }
}

uint32_t master_inline_limit(struct master *m, struct job *job)
{
    if (job->no_inline_results || job->inline_bytes >= MASTER_INLINE_JOB_MAX)
        return 0;
    if (m->inline_bytes >= MASTER_INLINE_TOTAL_MAX)
        make_room(m);
    return m->inline_bytes < MASTER_INLINE_TOTAL_MAX ? MASTER_INLINE_TASK_MAX : 0;
}

int master_result_keep_inline(struct master *m, struct job *job, uint32_t index,
                              const uint8_t *data, size_t len)
{
    struct result_location *r = &job->results[index];

    if (len > MASTER_INLINE_TASK_MAX)
        return EMBER_EINVAL;
    master_result_clear(m, job, index);
    r->is_inline = 1;
    r->size = len;
    r->inline_data = ember_xmalloc(len ? len : 1);
    if (len)                           /* an empty partition's result: data may be NULL */
        memcpy(r->inline_data, data, len);
    m->inline_bytes += len;
    job->inline_bytes += len;
    if (m->inline_bytes > MASTER_INLINE_TOTAL_MAX)
        make_room(m);
    return 0;
}
