/* Slow clients: a connection must deliver a request's line and headers within
 * --request-timeout-s of opening (or of its previous request ending). MHD's own
 * timeout counts idle time only, so a client trickling one byte at a time would
 * keep its connection forever; the watchdog thread here shuts such a socket
 * down, and MHD, reading the end of the stream, closes the connection itself.
 * The socket is never closed here: MHD owns it. */
#define _GNU_SOURCE
#include "gw.h"

#include <pthread.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "log.h"

#define CHECK_EVERY_MS 250

struct watched {
    struct watched *prev, *next;
    int fd;
    uint64_t since_ms;             /* connection opened or previous request ended */
    int waiting;                   /* 1 until the request head has arrived */
    int dropped;
};

struct gw_slow {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    pthread_t thread;
    int stopping;
    uint64_t limit_ms;
    struct watched *head;          /* every open connection */
};

static void drop_slow(struct gw_slow *s)
{
    uint64_t now = ember_monotonic_ms();

    for (struct watched *w = s->head; w; w = w->next) {
        if (!w->waiting || w->dropped || now - w->since_ms < s->limit_ms)
            continue;
        /* Under the lock, so MHD cannot have closed fd yet (its CLOSED
         * notification, which takes the lock, comes before its close). */
        shutdown(w->fd, SHUT_RDWR);
        w->dropped = 1;
        ember_log_info("http: connection dropped: no complete request head in %llu s",
                       (unsigned long long)(s->limit_ms / 1000));
    }
}

static void *watchdog_main(void *arg)
{
    struct gw_slow *s = arg;

    pthread_mutex_lock(&s->lock);
    while (!s->stopping) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += CHECK_EVERY_MS * 1000000L;
        until.tv_sec += until.tv_nsec / 1000000000L;
        until.tv_nsec %= 1000000000L;
        pthread_cond_timedwait(&s->wake, &s->lock, &until);
        drop_slow(s);
    }
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

int gw_slow_start(unsigned limit_s, struct gw_slow **out)
{
    struct gw_slow *s = ember_xcalloc(1, sizeof(*s));

    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->wake, NULL);
    s->limit_ms = (uint64_t)limit_s * 1000;
    if (pthread_create(&s->thread, NULL, watchdog_main, s) != 0) {
        ember_log_error("cannot start the slow-client watchdog thread");
        pthread_mutex_destroy(&s->lock);
        pthread_cond_destroy(&s->wake);
        free(s);
        return EMBER_EIO;
    }
    *out = s;
    return 0;
}

void gw_slow_stop(struct gw_slow *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->lock);
    s->stopping = 1;
    pthread_cond_signal(&s->wake);
    pthread_mutex_unlock(&s->lock);
    pthread_join(s->thread, NULL);
    while (s->head) {                  /* MHD stopped first: nothing else holds these */
        struct watched *w = s->head;
        s->head = w->next;
        free(w);
    }
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->wake);
    free(s);
}

void gw_slow_notify(void *cls, struct MHD_Connection *c, void **socket_context,
                    enum MHD_ConnectionNotificationCode code)
{
    struct gw_slow *s = cls;
    struct watched *w = *socket_context;
    const union MHD_ConnectionInfo *info;

    pthread_mutex_lock(&s->lock);
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        info = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        w = ember_xcalloc(1, sizeof(*w));
        w->fd = info ? info->connect_fd : -1;
        w->since_ms = ember_monotonic_ms();
        w->waiting = w->fd >= 0;
        w->next = s->head;
        if (s->head)
            s->head->prev = w;
        s->head = w;
        *socket_context = w;
    } else if (w) {                    /* MHD_CONNECTION_NOTIFY_CLOSED */
        if (w->prev)
            w->prev->next = w->next;
        else
            s->head = w->next;
        if (w->next)
            w->next->prev = w->prev;
        free(w);
        *socket_context = NULL;
    }
    pthread_mutex_unlock(&s->lock);
}

static void set_waiting(struct gw_slow *s, struct MHD_Connection *c, int waiting)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    struct watched *w = info ? info->socket_context : NULL;

    if (!w)
        return;
    pthread_mutex_lock(&s->lock);
    w->waiting = waiting && w->fd >= 0;
    w->since_ms = ember_monotonic_ms();
    pthread_mutex_unlock(&s->lock);
}

void gw_slow_head_arrived(struct gw_slow *s, struct MHD_Connection *c)
{
    set_waiting(s, c, 0);
}

void gw_slow_request_ended(struct gw_slow *s, struct MHD_Connection *c)
{
    set_waiting(s, c, 1);
}
