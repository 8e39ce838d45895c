/* Task reports to the master. A report that finds another on its way waits
 * in a queue; when the call in flight returns, one waiting thread sends every
 * queued report in one ReportTasks call. A worker finishing many short tasks
 * so makes fewer calls, and a lone report still goes at once: a report waits
 * for company (1 ms at most) only while other tasks are still here. */
#define _GNU_SOURCE
#include "worker.h"

#include <stdlib.h>
#include <time.h>

#include "log.h"
#include "master.pb-c.h"

#define REPORT_LINGER_MS 1

struct pending_report {
    const Ember__TaskReport *rep;
    int done, ok;
    struct pending_report *next;
};

/* One call for the batch, retried like a single report was (about 7 s in all). */
static int send_batch(struct worker *w, struct pending_report *batch)
{
    Ember__TaskReports many = EMBER__TASK_REPORTS__INIT;
    const ProtobufCMessage *req = &batch->rep->base;
    const char *method = "ReportTask";
    size_t n = 0;

    for (struct pending_report *p = batch; p; p = p->next)
        n++;
    if (n > 1) {
        many.reports = ember_xcalloc(n, sizeof(*many.reports));
        for (struct pending_report *p = batch; p; p = p->next)
            many.reports[many.n_reports++] = (Ember__TaskReport *)p->rep;
        req = &many.base;
        method = "ReportTasks";
    }
    int ok = 0;
    for (int attempt = 0; attempt < 5 && !ok; attempt++) {
        ProtobufCMessage *reply = NULL;
        grpc_status_code st = ember_rpc_call(w->master, &ember__master__descriptor, method, req,
                                             &reply, NULL, NULL, 3000, NULL);
        if (reply)
            protobuf_c_message_free_unpacked(reply, NULL);
        ok = st == GRPC_STATUS_OK || st == GRPC_STATUS_NOT_FOUND;
        if (!ok && ember_daemon_sleep(w->daemon, 500 << attempt))
            break;
    }
    free(many.reports);
    return ok;
}

static int tasks_here(struct worker *w)
{
    int n;

    pthread_mutex_lock(&w->lock);
    n = w->running_tasks;
    pthread_mutex_unlock(&w->lock);
    return n;
}

/* With other tasks still here (launched ahead, so their slots stay busy) the
 * master can wait a moment for this report: gather what ends meanwhile, up
 * to REPORT_LINGER_MS or until every task here has reported. Lock held. */
static void linger(struct worker *w, size_t queued)
{
    struct timespec until = ember_realtime_after_ms(REPORT_LINGER_MS);

    while (queued < (size_t)tasks_here(w)
           && pthread_cond_timedwait(&w->report_queued, &w->report_lock, &until) == 0) {
        queued = 0;
        for (struct pending_report *p = w->report_queue; p; p = p->next)
            queued++;
    }
}

int worker_report_send(struct worker *w, const Ember__TaskReport *rep)
{
    struct pending_report me = {.rep = rep};
    struct pending_report **tail;
    size_t queued = 1;

    pthread_mutex_lock(&w->report_lock);
    for (tail = &w->report_queue; *tail; tail = &(*tail)->next)
        queued++;
    *tail = &me;
    pthread_cond_signal(&w->report_queued);
    while (!me.done) {
        if (w->report_sending) {
            pthread_cond_wait(&w->report_sent, &w->report_lock);
            continue;
        }
        w->report_sending = 1;
        if (queued < (size_t)tasks_here(w))
            linger(w, queued);
        struct pending_report *batch = w->report_queue;
        w->report_queue = NULL;
        pthread_mutex_unlock(&w->report_lock);
        int ok = send_batch(w, batch);
        pthread_mutex_lock(&w->report_lock);
        /* The entries live on their waiting threads' stacks until done is set. */
        for (struct pending_report *p = batch, *next; p; p = next) {
            next = p->next;
            p->ok = ok;
            p->done = 1;
        }
        w->report_sending = 0;
        pthread_cond_broadcast(&w->report_sent);
    }
    pthread_mutex_unlock(&w->report_lock);
    return me.ok ? 0 : EMBER_EIO;
}
