/* ember-gateway internals. The gateway keeps no cluster state: it owns an MHD
 * daemon (gw_http.c routes each request to a handler in gw_api.c, gw_results.c,
 * gw_monitor.c or gw_ui.c), one gRPC channel to the master (gw_master.c) and a cache of
 * channels to block managers (gw_results.c). Every failure becomes an HTTP
 * error answered to the client; none is fatal to the daemon. */
#ifndef EMBER_GW_H
#define EMBER_GW_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>

#include "daemon.h"
#include "master.pb-c.h"
#include "rpc.h"
#include "util.h"

extern const struct ember_option gw_options[];

struct gw_blocks;
struct gw_slow;

struct gw {
    struct ember_daemon *daemon;
    char *master_addr;
    char *advertised;              /* host:port cluster-mode drivers connect to */
    grpc_channel *master;          /* thread-safe, shared by every MHD thread */
    struct gw_blocks *blocks;
    struct MHD_Daemon *mhd;
    size_t max_body;
    unsigned max_uploads;          /* request bodies received at once (uploads) */
    unsigned uploads;              /* now; guarded by uploads_lock */
    pthread_mutex_t uploads_lock;
    char session[65];              /* the web UI's login cookie (gw_auth.c) */
    unsigned idle_timeout_s;       /* a connection silent this long is closed */
    unsigned request_timeout_s;    /* a request head must arrive within this */
    struct gw_slow *slow;
    int grpc_started;
};

/* Reads the options, connects nothing yet (channels connect lazily), starts
 * serving HTTP and writes the ready file. On failure nothing is left behind. */
int gw_create(struct ember_daemon *d, struct gw **out) EMBER_MUST_CHECK;
void gw_destroy(struct gw *g);  /* NULL-safe; stops HTTP first */

/* ---- gw_http.c: the MHD daemon, routing, responses ---- */

/* One HTTP request, from its headers to the completion callback. */
struct gw_request {
    struct gw *gw;
    struct MHD_Connection *conn;
    const struct gw_route *route;
    const char *what;              /* Query kind of the route, or NULL */
    char *method;
    char *path;
    char *segments;                /* path split in place; parameters point here */
    const char *app;               /* {app} of the path, or NULL */
    const char *driver;            /* {driver} of the path, or NULL */
    uint32_t job, stage, partition, rdd, broadcast;
    struct ember_buf body;         /* NUL-terminated when the handler runs */
    int too_big;
    int counted_upload;            /* holds one of gw->max_uploads */
    int hold;                      /* keep the response for the last call */
    struct MHD_Response *held;
    unsigned status;               /* of the queued response; 0 before one */
    uint64_t start_ms;
};

typedef enum MHD_Result (*gw_handler)(struct gw_request *rq);

/* Binds `addr` and serves with `threads` epoll threads. *bound_port is the real
 * port (useful when addr asked for port 0). */
int gw_http_start(struct gw *g, const struct sockaddr_in *addr, unsigned threads,
                  int *bound_port) EMBER_MUST_CHECK;
void gw_http_stop(struct gw *g);
/* One line per route: "METHOD /pattern open|secret" (for tests and --list-routes). */
void gw_http_print_routes(FILE *out);

/* Every gw_reply_* queues the one response of rq and returns MHD's verdict. */
/* Takes ownership of `body` (may be NULL: then a 500). */
enum MHD_Result gw_reply_json(struct gw_request *rq, unsigned status, json_t *body);
/* Takes ownership of `body`; headers: name, value, ..., NULL. */
enum MHD_Result gw_reply_json_headers(struct gw_request *rq, unsigned status, json_t *body,
                                      const char *const *headers);
/* {"error": "<sentence>"} plus headers: name, value, ..., NULL. */
enum MHD_Result gw_reply_error_headers(struct gw_request *rq, unsigned status,
                                       const char *const *headers, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* {"error": "<sentence>"} */
enum MHD_Result gw_reply_error(struct gw_request *rq, unsigned status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Takes ownership of `data`, which must come from malloc. */
enum MHD_Result gw_reply_buffer(struct gw_request *rq, unsigned status, const char *type,
                                void *data, size_t len);
/* Borrows `data`, which must outlive the daemon (string literals, embedded files). */
enum MHD_Result gw_reply_static(struct gw_request *rq, unsigned status, const char *type,
                                const void *data, size_t len);
/* Takes ownership of r (NULL: out of memory, the connection is dropped). */
enum MHD_Result gw_reply_response(struct gw_request *rq, unsigned status, struct MHD_Response *r,
                                  const char *type);
/* The HTTP status for a failed gRPC call to `peer` ("master at host:port"); *message
 * is a new sentence for the client. */
unsigned gw_rpc_http_status(grpc_status_code code, const char *details, const char *peer,
                            char **message);
enum MHD_Result gw_reply_rpc_error(struct gw_request *rq, grpc_status_code code,
                                   const char *details, const char *peer);

/* ---- gw_auth.c: the shared secret on HTTP (bearer token or login cookie) ---- */
int gw_auth_init(struct gw *g) EMBER_MUST_CHECK;   /* makes the session token */
int gw_auth_required(void);                        /* is a secret configured? */
int gw_auth_request_ok(const struct gw_request *rq);
/* 401 with {"error": ...} and WWW-Authenticate. */
enum MHD_Result gw_auth_reply_unauthorized(struct gw_request *rq);
enum MHD_Result gw_auth_login(struct gw_request *rq);
enum MHD_Result gw_auth_logout(struct gw_request *rq);

/* ---- gw_slow.c: dropping clients whose request head trickles in ---- */
/* Starts the watchdog thread; on failure nothing is left behind. */
int gw_slow_start(unsigned limit_s, struct gw_slow **out) EMBER_MUST_CHECK;
void gw_slow_stop(struct gw_slow *s);   /* NULL-safe; after MHD stopped */
/* MHD_OPTION_NOTIFY_CONNECTION callback (cls: the gw_slow). */
void gw_slow_notify(void *cls, struct MHD_Connection *c, void **socket_context,
                    enum MHD_ConnectionNotificationCode code);
/* The connection's request head is complete / its request was answered. */
void gw_slow_head_arrived(struct gw_slow *s, struct MHD_Connection *c);
void gw_slow_request_ended(struct gw_slow *s, struct MHD_Connection *c);

/* ---- gw_master.c: calls to ember.Master (deadline GW_MASTER_TIMEOUT_MS) ---- */
/* Every call returns the gRPC status; on failure *details is a new message (may be
 * empty), on success it is NULL and the out-parameters are new strings. */
#define GW_MASTER_TIMEOUT_MS 10000

/* "master at host:port", a new string for error messages. */
char *gw_master_peer(const struct gw *g);
/* The answer to a failed master call (its status and details, which it frees). */
enum MHD_Result gw_reply_master_error(struct gw_request *rq, grpc_status_code code,
                                      char *details);
/* properties_json: the driver's settings, a JSON object (NULL: none). */
grpc_status_code gw_master_create_app(struct gw *g, const char *name, const char *user,
                                      const char *properties_json, char **app_id,
                                      char **details);
grpc_status_code gw_master_end_app(struct gw *g, const char *app_id, char **details);
/* job_json is passed to the master unchanged. */
grpc_status_code gw_master_submit_job(struct gw *g, const char *app_id, const char *job_json,
                                      uint32_t *job_id, char **details);
/* SubmitJob then GetJob(inline_results, wait_ms) in one call: *json is the
 * job's status (GRPC_STATUS_UNIMPLEMENTED from a master without the method). */
grpc_status_code gw_master_submit_job_and_wait(struct gw *g, const char *app_id,
                                               const char *job_json, int inline_results,
                                               uint32_t wait_ms, char **json, char **details);
/* inline_results: with the bytes of results the master holds (base64 "data");
 * wait_ms: the master answers once the job ended or after that long. */
grpc_status_code gw_master_get_job(struct gw *g, const char *app_id, uint32_t job_id,
                                   int inline_results, uint32_t wait_ms, char **json,
                                   char **details);
grpc_status_code gw_master_cancel_job(struct gw *g, const char *app_id, uint32_t job_id,
                                      char **details);
/* id < 0: no id (a listing). app_id NULL: every application. */
grpc_status_code gw_master_unpersist(struct gw *g, const char *app_id, uint32_t rdd_id,
                                     char **details);
grpc_status_code gw_master_add_broadcast(struct gw *g, const char *app_id, uint32_t id,
                                         const char *block_id, const char *location,
                                         uint64_t size, char **details);
grpc_status_code gw_master_remove_broadcast(struct gw *g, const char *app_id, uint32_t id,
                                            int keep_source, char **details);
grpc_status_code gw_master_query(struct gw *g, const char *what, const char *app_id,
                                 int64_t id, char **json, char **details);

/* Cluster deploy mode. s is borrowed; on success *driver_id is new. */
grpc_status_code gw_master_submit_driver(struct gw *g, const Ember__DriverSubmission *s,
                                         char **driver_id, char **details);
/* DriverStatus or KillDriver: the driver's JSON. */
grpc_status_code gw_master_driver_json(struct gw *g, const char *method, const char *driver_id,
                                       char **json, char **details);
/* *reply is new (free with protobuf_c_message_free_unpacked). */
grpc_status_code gw_master_driver_log(struct gw *g, const char *driver_id, const char *stream,
                                      uint64_t offset, Ember__DriverLogReply **reply,
                                      char **details);

/* ---- gw_drivers.c: cluster deploy mode (submit, status, kill, output) ---- */
enum MHD_Result gw_drivers_submit(struct gw_request *rq);
enum MHD_Result gw_drivers_status(struct gw_request *rq);
enum MHD_Result gw_drivers_kill(struct gw_request *rq);
enum MHD_Result gw_drivers_log(struct gw_request *rq);

/* ---- gw_api.c: the JSON routes under /api/v1 and /health ---- */
enum MHD_Result gw_api_health(struct gw_request *rq);
enum MHD_Result gw_api_create_app(struct gw_request *rq);
enum MHD_Result gw_api_end_app(struct gw_request *rq);
enum MHD_Result gw_api_submit_job(struct gw_request *rq);
enum MHD_Result gw_api_get_job(struct gw_request *rq);
enum MHD_Result gw_api_cancel_job(struct gw_request *rq);
enum MHD_Result gw_api_unpersist(struct gw_request *rq);

/* ---- gw_job_check.c: a job description certainly valid without jansson ---- */
/* 1 when text is a JSON object with one integer "rdd" and one array "nodes"
 * (as jansson would parse it); 0 when unsure: then parse it with jansson. */
int gw_job_quick_check(const char *text, size_t len);

/* ---- gw_broadcast.c: broadcast variables into a block manager ---- */
enum MHD_Result gw_broadcast_put(struct gw_request *rq);
enum MHD_Result gw_broadcast_delete(struct gw_request *rq);
/* Lists and one stage: Query with the route's `what`, passed through. */
enum MHD_Result gw_api_query(struct gw_request *rq);

/* ---- gw_monitor.c: the environment and Prometheus metrics ---- */
enum MHD_Result gw_api_environment(struct gw_request *rq);   /* rq->app may be NULL */
enum MHD_Result gw_api_metrics(struct gw_request *rq);

/* ---- gw_results.c: result blocks, fetched from their block manager ---- */
struct gw_blocks *gw_blocks_new(void);
void gw_blocks_free(struct gw_blocks *b);  /* NULL-safe */
enum MHD_Result gw_results_get(struct gw_request *rq);
/* All result blocks of a job in one answer, partition after partition. */
enum MHD_Result gw_results_get_all(struct gw_request *rq);

/* ---- gw_ui.c: the web UI and the server-rendered job list ---- */
enum MHD_Result gw_ui_index(struct gw_request *rq);
enum MHD_Result gw_ui_jobs(struct gw_request *rq);

#endif
