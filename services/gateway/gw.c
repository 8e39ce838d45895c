/* The gateway's options and lifetime: parse, start gRPC and HTTP, tear down. */
#define _GNU_SOURCE
#include "gw.h"

#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "log.h"

#define MAX_THREADS 256

const struct ember_option gw_options[] = {
    {"listen", "EMBER_GATEWAY_LISTEN", "127.0.0.1:8080",
     "host:port to serve HTTP on (port 0 picks a free one; 0.0.0.0 for every interface)"},
    {"master", "EMBER_MASTER_ADDRESS", "127.0.0.1:7077", "host:port of ember-master"},
    {"max-body-bytes", "EMBER_GATEWAY_MAX_BODY", "268435456",
     "largest request body accepted (bigger ones get 413)"},
    {"threads", "EMBER_GATEWAY_THREADS", "4", "HTTP threads (each serves many connections)"},
    {"advertise", "EMBER_GATEWAY_ADVERTISE", NULL,
     "host:port cluster-mode drivers on workers use to reach this gateway (default: the "
     "listen address)"},
    {"max-uploads", "EMBER_GATEWAY_MAX_UPLOADS", "16",
     "job submissions and broadcast uploads received at once (more get 503)"},
    {"idle-timeout-s", "EMBER_GATEWAY_IDLE_TIMEOUT", "30",
     "a connection that sends nothing for this long is closed (idle clients)"},
    {"request-timeout-s", "EMBER_GATEWAY_REQUEST_TIMEOUT", "30",
     "a request's line and headers must arrive within this long (slow clients are dropped)"},
    {0},
};

/* "host:port" -> an IPv4 socket address; an empty host means every interface. */
static int parse_listen(const char *listen, struct sockaddr_in *out)
{
    const char *colon = strrchr(listen, ':');
    struct addrinfo hints = {.ai_family = AF_INET, .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    size_t digits = colon ? strlen(colon + 1) : 0;
    char *host;
    int rc;

    if (digits == 0 || digits > 5 || strspn(colon + 1, "0123456789") != digits
        || atoi(colon + 1) > 65535) {
        ember_log_error("--listen %s: expected host:port, e.g. 127.0.0.1:8080", listen);
        return EMBER_EINVAL;
    }
    host = ember_xasprintf("%.*s", (int)(colon - listen), listen);
    rc = getaddrinfo(*host ? host : NULL, colon + 1, &hints, &res);
    if (rc != 0 || !res) {
        ember_log_error("--listen %s: cannot resolve %s: %s", listen, host, gai_strerror(rc));
        free(host);
        return EMBER_EINVAL;
    }
    memcpy(out, res->ai_addr, sizeof(*out));
    freeaddrinfo(res);
    free(host);
    return 0;
}

static int read_limits(struct ember_daemon *d, struct gw *g, unsigned *threads)
{
    int64_t body, n, uploads, idle, head;

    if (ember_daemon_opt_int(d, "max-body-bytes", &body) != 0
        || ember_daemon_opt_int(d, "threads", &n) != 0
        || ember_daemon_opt_int(d, "max-uploads", &uploads) != 0
        || ember_daemon_opt_int(d, "idle-timeout-s", &idle) != 0
        || ember_daemon_opt_int(d, "request-timeout-s", &head) != 0)
        return EMBER_EINVAL;
    if (idle < 1 || idle > 86400 || head < 1 || head > 86400) {
        ember_log_error("--idle-timeout-s and --request-timeout-s must be between 1 and 86400, "
                        "not %lld and %lld", (long long)idle, (long long)head);
        return EMBER_EINVAL;
    }
    if (uploads < 1 || uploads > 100000) {
        ember_log_error("--max-uploads must be between 1 and 100000, not %lld",
                        (long long)uploads);
        return EMBER_EINVAL;
    }
    if (body <= 0) {
        ember_log_error("--max-body-bytes must be positive, not %lld", (long long)body);
        return EMBER_EINVAL;
    }
    if (n < 1 || n > MAX_THREADS) {
        ember_log_error("--threads must be between 1 and %d, not %lld", MAX_THREADS,
                        (long long)n);
        return EMBER_EINVAL;
    }
    g->max_body = (size_t)body;
    g->max_uploads = (unsigned)uploads;
    g->idle_timeout_s = (unsigned)idle;
    g->request_timeout_s = (unsigned)head;
    *threads = (unsigned)n;
    return 0;
}

static int start_serving(struct gw *g, const char *listen, unsigned threads)
{
    struct sockaddr_in addr;
    char *advertised;
    int port = 0;
    int rc;

    rc = parse_listen(listen, &addr);
    if (rc != 0)
        return rc;
    rc = gw_http_start(g, &addr, threads, &port);
    if (rc != 0)
        return rc;
    advertised = ember_advertised_address(listen, port, NULL);
    ember_daemon_ready(g->daemon, advertised);
    if (ember_daemon_opt(g->daemon, "advertise") && *ember_daemon_opt(g->daemon, "advertise"))
        g->advertised = ember_xstrdup(ember_daemon_opt(g->daemon, "advertise"));
    else
        g->advertised = advertised;
    if (g->advertised != advertised)
        free(advertised);
    return 0;
}

int gw_create(struct ember_daemon *d, struct gw **out)
{
    struct gw *g = ember_xcalloc(1, sizeof(*g));
    const char *master = ember_daemon_opt(d, "master");
    unsigned threads = 0;
    int rc;

    g->daemon = d;
    pthread_mutex_init(&g->uploads_lock, NULL);
    rc = read_limits(d, g, &threads);
    if (rc == 0)
        rc = gw_auth_init(g);
    if (rc != 0)
        goto out;
    if (!master || !*master) {
        ember_log_error("--master is empty: give the host:port of ember-master");
        rc = EMBER_EINVAL;
        goto out;
    }
    grpc_init();
    g->grpc_started = 1;
    g->master_addr = ember_xstrdup(master);
    g->master = ember_rpc_channel_create(master, -1);    /* job lists can be long */
    g->blocks = gw_blocks_new();
    rc = gw_slow_start(g->request_timeout_s, &g->slow);
    if (rc != 0)
        goto out;
    rc = start_serving(g, ember_daemon_opt(d, "listen"), threads);
    if (rc != 0)
        goto out;
    *out = g;
    g = NULL;                          /* ownership moved to the caller */
out:
    gw_destroy(g);
    return rc;
}

void gw_destroy(struct gw *g)
{
    if (!g)
        return;
    gw_http_stop(g);                   /* no handler runs after this */
    gw_slow_stop(g->slow);
    gw_blocks_free(g->blocks);
    if (g->master)
        grpc_channel_destroy(g->master);
    if (g->grpc_started)
        grpc_shutdown();
    pthread_mutex_destroy(&g->uploads_lock);
    free(g->master_addr);
    free(g->advertised);
    free(g);
}
