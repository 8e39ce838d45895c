/* Task reports to the master, sent by the task threads themselves (no
 * reporter thread to wake). A report is posted (packed, so it owns its bytes)
 * and sent by worker_report_flush: at once by a thread with nothing else to
 * do; by a thread about to run another task it waits, so that the reports of
 * a few short tasks go in one ReportTasks call, but never more than
 * REPORT_LINGER_MS (the thread sends it meanwhile, while its pyexec runs the
 * next task: see report_when_due in worker_task.c). One call is on its way at
 * a time; reports posted meanwhile go in the next call, made by the same
 * thread when it returns. */
#define _GNU_SOURCE
#include "worker.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "master.pb-c.h"

#define REPORT_LINGER_US 1000

struct pending_report {
    uint64_t task_id;
    uint8_t *packed;           /* a packed TaskReport */
    size_t len;
    struct pending_report *next;
};

static int64_t now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Appends field 1 (`repeated TaskReport reports`) holding one packed report:
 * the encoding of TaskReports is these fields one after another, so several
 * packed reports make a batch without unpacking them again. */
static size_t put_report_field(uint8_t *out, const struct pending_report *p)
{
    size_t n = 0;
    uint64_t len = p->len;

    out[n++] = 0x0a;                   /* field 1, length-delimited */
    do {
        out[n++] = (uint8_t)((len & 0x7f) | (len >= 0x80 ? 0x80 : 0));
        len >>= 7;
    } while (len);
    memcpy(out + n, p->packed, p->len);
    return n + p->len;
}

/* One call for the batch (ReportTask for one, ReportTasks for several),
 * retried for about 7 s in all. 1 once the master has it. */
static int send_batch(struct worker *w, const struct pending_report *batch)
{
    ember_rpc_unary call = {.ch = w->master, .svc = &ember__master__descriptor};
    uint8_t *many = NULL;
    size_t n = 0, bytes = 0;
    int ok = 0;

    for (const struct pending_report *p = batch; p; p = p->next) {
        n++;
        bytes += p->len + 11;          /* tag and a varint of at most 10 bytes */
    }
    if (n == 1) {
        call.method = "ReportTask";
        call.raw = batch->packed;
        call.raw_len = batch->len;
    } else {
        many = ember_xmalloc(bytes);
        for (const struct pending_report *p = batch; p; p = p->next)
            call.raw_len += put_report_field(many + call.raw_len, p);
        call.method = "ReportTasks";
        call.raw = many;
    }
    for (int attempt = 0; attempt < 5 && !ok; attempt++) {
        ember_rpc_unary_many(&call, 1, 3000);
        if (call.reply)
            protobuf_c_message_free_unpacked(call.reply, NULL);
        free(call.details);
        ok = call.status == GRPC_STATUS_OK || call.status == GRPC_STATUS_NOT_FOUND;
        if (!ok && ember_daemon_sleep(w->daemon, 500 << attempt))
            break;
    }
    free(many);
    return ok;
}

static void free_batch(struct worker *w, struct pending_report *batch, int ok)
{
    while (batch) {
        struct pending_report *next = batch->next;
        if (!ok)
            ember_log_warn("task=%llu could not report to master %s",
                           (unsigned long long)batch->task_id, w->master_addr);
        free(batch->packed);
        free(batch);
        batch = next;
    }
}

void worker_report_post(struct worker *w, const Ember__TaskReport *rep)
{
    struct pending_report *p = ember_xcalloc(1, sizeof(*p));
    struct pending_report **tail;

    p->task_id = rep->task_id;
    p->len = protobuf_c_message_get_packed_size(&rep->base);
    p->packed = ember_xmalloc(p->len ? p->len : 1);
    protobuf_c_message_pack(&rep->base, p->packed);
    pthread_mutex_lock(&w->report_lock);
    for (tail = &w->report_queue; *tail; tail = &(*tail)->next)
        ;
    if (!w->report_queue)
        w->report_oldest_us = now_us();
    *tail = p;
    pthread_mutex_unlock(&w->report_lock);
}

/* Lock held. */
static int due(const struct worker *w)
{
    return w->report_queue && now_us() - w->report_oldest_us >= REPORT_LINGER_US;
}

int worker_report_due_in_ms(struct worker *w)
{
    int ms = -1;

    pthread_mutex_lock(&w->report_lock);
    if (w->report_queue && w->report_sending) {
        /* The caller may block next (its pyexec runs a task that may never
         * write), and the sender of the call on its way stops once nothing
         * is due: that sender sends the waiting reports right after its call
         * (a task's report used to wait for the next task's output). */
        w->report_owed = 1;
    } else if (w->report_queue) {
        int64_t left = REPORT_LINGER_US - (now_us() - w->report_oldest_us);
        ms = left <= 0 ? 0 : (int)((left + 999) / 1000);
    }
    pthread_mutex_unlock(&w->report_lock);
    return ms;
}

void worker_report_flush(struct worker *w, int all)
{
    pthread_mutex_lock(&w->report_lock);
    if (all && w->report_sending)
        w->report_owed = 1;            /* the call on its way sends ours after it */
    while (!w->report_sending && (all || w->report_owed || due(w))) {
        struct pending_report *batch = w->report_queue;
        if (!batch)
            break;
        w->report_queue = NULL;
        w->report_owed = 0;
        w->report_sending = 1;
        pthread_mutex_unlock(&w->report_lock);
        int ok = send_batch(w, batch);
        free_batch(w, batch, ok);
        pthread_mutex_lock(&w->report_lock);
        w->report_sending = 0;
        all = 0;                       /* ours went; the loop goes on for those owed or due */
    }
    pthread_mutex_unlock(&w->report_lock);
}
