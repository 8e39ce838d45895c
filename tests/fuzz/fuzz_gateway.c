/* The gateway's request handling: the input is the bytes a client sends on
 * one connection (request line, headers, body; possibly several requests),
 * served by a real ember-gateway on loopback whose master is a real
 * ember-master in the same process, so routing, ids, headers, body limits and
 * JSON checks all run, and job JSON reaches the master's parser: APP_PLACEHOLDER
 * in the input (the seeds use it in paths) becomes the id of an application
 * made at start, which has the same length. The answer is
 * read until the gateway closes the connection or stays silent (an incomplete
 * request); every CHECK_EVERY inputs a health check must be answered within
 * ANSWER_MS, or the gateway counts as hung. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fuzz_daemon.h"
#include "gw.h"
#include "master.h"
#include "master.pb-c.h"

#define ANSWER_MS 20000
#define APP_PLACEHOLDER "app-00000000000000-0000"
#define QUIET_MS 50                    /* silence that ends one input */
#define CHECK_EVERY 200                /* inputs between health checks */

static struct ember_daemon master_daemon_, gw_daemon_;
static struct master *master_;
static struct gw *gw_;
static int port_;
static char app_id_[64];

/* An application in the master, made through its CreateApplication handler. */
static void create_app(void)
{
    ember_rpc_server *server = master_->server;
    Ember__CreateApplicationRequest req = EMBER__CREATE_APPLICATION_REQUEST__INIT;
    uint8_t buf[64];

    req.name = "fuzz";
    for (size_t i = 0; i < ember_rpc_server_n_methods(server); i++)
        if (strcmp(ember_rpc_server_method_name(server, i), "CreateApplication") == 0
            && ember_rpc_server_invoke(server, i, buf, protobuf_c_message_pack(&req.base, buf),
                                       NULL) != GRPC_STATUS_OK)
            abort();
    pthread_mutex_lock(&master_->lock);
    snprintf(app_id_, sizeof(app_id_), "%s", ((struct app *)master_->apps.items[0])->id);
    pthread_mutex_unlock(&master_->lock);
    if (strlen(app_id_) != strlen(APP_PLACEHOLDER))
        abort();
}

static void stop(void)
{
    fuzz_daemon_stop(&gw_daemon_);
    gw_destroy(gw_);
    ember_daemon_fini(&gw_daemon_);
    fuzz_daemon_stop(&master_daemon_);
    master_destroy(master_);
    ember_daemon_fini(&master_daemon_);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    /* static or never freed: the daemons borrow their option values for life */
    static char master_addr[32];
    char *master_ready = fuzz_ready_file("master"), *gw_ready = fuzz_ready_file("gateway");
    const char *master_args[] = {"--listen", "127.0.0.1:0", "--ready-file", master_ready, NULL};
    const char *gw_args[] = {"--listen", "127.0.0.1:0", "--master", master_addr,
                             "--max-body-bytes", "1048576", "--threads", "2",
                             "--idle-timeout-s", "1", "--ready-file", gw_ready, NULL};

    fuzz_daemon_init(&master_daemon_, "ember-master", master_options, master_args);
    if (master_create(&master_daemon_, &master_) != 0)
        abort();
    snprintf(master_addr, sizeof(master_addr), "127.0.0.1:%d", fuzz_ready_port(master_ready));
    create_app();
    fuzz_daemon_init(&gw_daemon_, "ember-gateway", gw_options, gw_args);
    if (gw_create(&gw_daemon_, &gw_) != 0)
        abort();
    port_ = fuzz_ready_port(gw_ready);
    atexit(stop);
    return 0;
}

static int connect_gateway(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port_)};
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0)
        abort();
    return fd;
}

/* Reads what the gateway answers until it closes the connection or stays
 * silent for quiet_ms (a request it is still waiting to complete). Returns
 * the bytes read. */
static size_t drain(int fd, int quiet_ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    char answer[65536];
    size_t total = 0;
    ssize_t r;

    while (poll(&p, 1, quiet_ms) == 1 && (r = recv(fd, answer, sizeof(answer), 0)) > 0)
        total += (size_t)r;
    return total;
}

/* The gateway still serves: a health check answers within ANSWER_MS. */
static void check_alive(void)
{
    static const char probe[] = "GET /health HTTP/1.0\r\n\r\n";
    int fd = connect_gateway();

    if (send(fd, probe, sizeof(probe) - 1, MSG_NOSIGNAL) != (ssize_t)sizeof(probe) - 1
        || drain(fd, ANSWER_MS) == 0) {
        fprintf(stderr, "fuzz: the gateway did not answer a health check in %d ms\n", ANSWER_MS);
        abort();
    }
    close(fd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static unsigned inputs;
    int fd = connect_gateway();
    uint8_t *bytes = malloc(size ? size : 1);
    size_t sent = 0, n = strlen(APP_PLACEHOLDER);

    memcpy(bytes, data, size);
    for (uint8_t *p = bytes; (p = memmem(p, size - (size_t)(p - bytes), APP_PLACEHOLDER, n));
         p += n)
        memcpy(p, app_id_, n);
    while (sent < size) {
        ssize_t w = send(fd, bytes + sent, size - sent, MSG_NOSIGNAL);
        if (w <= 0)
            break;                     /* the gateway closed early: fine */
        sent += (size_t)w;
    }
    shutdown(fd, SHUT_WR);
    drain(fd, QUIET_MS);
    close(fd);
    free(bytes);
    if (++inputs % CHECK_EVERY == 0)
        check_alive();
    return 0;
}
