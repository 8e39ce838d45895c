/* Detached threads kept for reuse: a runner's thread (worker_task.c), once
 * no task is left for it, waits a while for the next runner to start instead
 * of exiting, so bursts of short tasks do not pay a clone and an exit (plus
 * the new stack's page faults) each. */
#include "worker.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "log.h"

#define IDLE_THREAD_SECONDS 2

struct work {
    void (*fn)(void *);
    void *arg;
    struct work *next;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER;
static struct work *head, *tail;
static size_t n_queued, n_idle;

static void *thread_main(void *arg)
{
    struct work *w = arg;

    for (;;) {
        struct timespec until;
        int rc = 0;

        w->fn(w->arg);
        free(w);
        pthread_mutex_lock(&lock);
        n_idle++;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += IDLE_THREAD_SECONDS;
        while (!head && rc != ETIMEDOUT)
            rc = pthread_cond_timedwait(&wake, &lock, &until);
        n_idle--;
        if (!head) {            /* idle too long: give the thread back */
            pthread_mutex_unlock(&lock);
            return NULL;
        }
        w = head;
        head = w->next;
        if (!head)
            tail = NULL;
        n_queued--;
        pthread_mutex_unlock(&lock);
    }
}

void worker_thread_run(void (*fn)(void *), void *arg)
{
    struct work *w = ember_xcalloc(1, sizeof(*w));
    pthread_attr_t attr;
    pthread_t thread;

    w->fn = fn;
    w->arg = arg;
    pthread_mutex_lock(&lock);
    if (n_idle > n_queued) {    /* an idle thread is free to take it */
        if (tail)
            tail->next = w;
        else
            head = w;
        tail = w;
        n_queued++;
        pthread_cond_signal(&wake);
        pthread_mutex_unlock(&lock);
        return;
    }
    pthread_mutex_unlock(&lock);
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&thread, &attr, thread_main, w) != 0) {
        /* Out of threads: run it here, late rather than never (its report is awaited). */
        ember_log_error("cannot start a task thread: running the task in the caller's");
        fn(arg);
        free(w);
    }
    pthread_attr_destroy(&attr);
}
