/* rpc.h - a tiny table-driven RPC layer: gRPC C core + protobuf-c.
 *
 * Method paths ("/pkg.Service/Method") and (un)packing come from the
 * ProtobufCServiceDescriptor that protoc-c generates. protobuf-c does NOT
 * record whether a method streams, so the server's method table says so. */
#ifndef EMBER_RPC_H
#define EMBER_RPC_H

#include <stddef.h>
#include <stdint.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <protobuf-c/protobuf-c.h>

/* Largest message a server or a channel made with max_recv_bytes=-1 takes. */
#define EMBER_RPC_MAX_MESSAGE (512 << 20)

/* ---- buffers ---------------------------------------------------------- */
/* Pack straight into a refcounted slice; caller destroys the byte buffer. */
grpc_byte_buffer *ember_rpc_pack(const ProtobufCMessage *msg);
/* Unpack; free with protobuf_c_message_free_unpacked(m, NULL). NULL on error. */
ProtobufCMessage *ember_rpc_unpack(const ProtobufCMessageDescriptor *d,
                             grpc_byte_buffer *bb);
gpr_timespec ember_rpc_deadline_after_ms(int64_t ms);

/* ---- server ----------------------------------------------------------- */
typedef struct ember_rpc_server ember_rpc_server;
typedef struct ember_rpc_ctx ember_rpc_ctx; /* one in-flight server call */

typedef enum { EMBER_RPC_UNARY, EMBER_RPC_SERVER_STREAM } ember_rpc_kind;

/* Send replies with ember_rpc_send() (exactly once for EMBER_RPC_UNARY), then return
 * the status. Runs on one of the server's threads; may block, unless its method
 * is marked EMBER_RPC_QUICK (see there). A unary reply
 * leaves with the status, once the handler returned (one batch, one write). */
typedef grpc_status_code (*ember_rpc_handler)(ember_rpc_ctx *ctx,
                                        const ProtobufCMessage *req,
                                        void *user);
typedef struct {
  const char *method; /* short name as in the .proto, e.g. "Echo" */
  ember_rpc_kind kind;
  ember_rpc_handler fn;
  int quick;          /* EMBER_RPC_QUICK (unary methods only), or 0 */
} ember_rpc_method_impl;

/* Threads of a server take turns: one at a time listens on its completion
 * queue, the others wait for their turn. A call of a method marked
 * EMBER_RPC_QUICK is served by the thread that took it, which listens again
 * afterwards: no other thread is woken. Any other call hands the listening to
 * a waiting thread first (what gRPC's own poller hand-off did for every event,
 * a thread woken per call and per reply).
 * Code that runs with the listening must not wait for other calls to be
 * served. That is a quick handler, its ember_rpc_after_reply function, and
 * the done function of every ember_rpc_unary_many_async, whichever handler
 * started the calls (it runs on the thread that took the last call's end,
 * the listening one). It may wait for a lock and make calls of its own
 * (ember_rpc_call and ember_rpc_unary_many hand the listening over first),
 * but before any other wait (a condition variable, a sleep, a pipe) it calls
 * ember_rpc_release_listener(). Sending a reply with the listening (at the
 * handler's return, ember_rpc_reply_now, ember_rpc_deferred_finish) waits
 * about a millisecond for the send, then hands the listening over and waits
 * for as long as the client takes to read: a small reply keeps the listening,
 * a large one or one to a client that stopped reading does not.
 * ember_rpc_server_add_service refuses EMBER_RPC_QUICK on a streaming method. */
#define EMBER_RPC_QUICK 1
/* Hands this thread's listening, if it has it, to a waiting server thread:
 * called before a wait in a quick handler. Does nothing on other threads. */
void ember_rpc_release_listener(void);

ember_rpc_server *ember_rpc_server_create(const char *addr, int *bound_port,
                              const grpc_channel_args *args);
int ember_rpc_server_add_service(ember_rpc_server *s, const ProtobufCServiceDescriptor *svc,
                           const ember_rpc_method_impl *impls, size_t n, void *user);
void ember_rpc_server_start(ember_rpc_server *s, int nthreads);
void ember_rpc_server_shutdown(ember_rpc_server *s); /* cancels calls, joins, frees */

/* Runs method `index` (in registration order) on a serialized request exactly
 * as a call would (unpack, handler, checks), without gRPC: replies are packed
 * and dropped. For fuzzers and tests; *details (may be NULL) gets a new copy
 * of the status message or NULL. */
size_t ember_rpc_server_n_methods(const ember_rpc_server *s);
const char *ember_rpc_server_method_name(const ember_rpc_server *s, size_t index);
grpc_status_code ember_rpc_server_invoke(ember_rpc_server *s, size_t index, const uint8_t *data,
                                         size_t len, char **details);

/* The request the handler was given, which it now owns (free it, or the
 * parts it keeps, with protobuf-c's free_unpacked): the server does not free
 * it when the handler returns. Spares a handler that keeps the request past
 * its return a copy. Call it before ember_rpc_defer; NULL the second time. */
ProtobufCMessage *ember_rpc_take_request(ember_rpc_ctx *ctx);
/* 0 ok, -1 dead. A unary reply is only packed here: it goes out with the
 * status, in one batch, when the handler returns (one write, one wait). */
int ember_rpc_send(ember_rpc_ctx *ctx, const ProtobufCMessage *msg);
/* A unary handler that has given its reply to ember_rpc_send may have it
 * sent now, with an OK status, and go on working (the call has ended; the
 * handler must then return GRPC_STATUS_OK and send nothing more). 1 when the
 * reply went out and the peer did not cancel the call (a cancelled or broken
 * call may or may not have delivered it), else 0. */
int ember_rpc_reply_now(ember_rpc_ctx *ctx);
/* fn(arg) runs on the server thread once the call has ended (its status
 * sent), whatever the handler returned: work the caller need not wait for,
 * without waking another thread. The thread serves no call meanwhile. */
void ember_rpc_after_reply(ember_rpc_ctx *ctx, void (*fn)(void *), void *arg);
/* A unary handler that must wait for calls of its own (ember_rpc_unary_many_async)
 * may defer its answer: it returns at once (its status is ignored; the server
 * thread serves other calls meanwhile) and the call stays open until
 * ember_rpc_deferred_finish(d, status), from any thread, which sends the reply
 * given to ember_rpc_send(d, ...) with the status, then runs d's after-reply
 * work and frees d. The handler must not use ctx after deferring. NULL when
 * the call cannot be deferred (ember_rpc_server_invoke, a streaming call, a
 * reply already sent): answer as usual then. */
ember_rpc_ctx *ember_rpc_defer(ember_rpc_ctx *ctx);
void ember_rpc_deferred_finish(ember_rpc_ctx *d, grpc_status_code st);
void ember_rpc_set_details(ember_rpc_ctx *ctx, const char *details);
gpr_timespec ember_rpc_ctx_deadline(const ember_rpc_ctx *ctx); /* GPR_CLOCK_MONOTONIC */

/* ---- client ----------------------------------------------------------- */
/* A channel that reconnects within about a second after its peer comes back.
 * max_recv_bytes: 0 = library default (4 MiB), -1 = unlimited. */
grpc_channel *ember_rpc_channel_create(const char *target, int max_recv_bytes);
/* EMBER_RPC_NO_READ_AHEAD: server streams are not read far ahead of the
 * consumer (memory stays at about one message per stream). */
#define EMBER_RPC_NO_READ_AHEAD 1
grpc_channel *ember_rpc_channel_create_ex(const char *target, int max_recv_bytes, int flags);

/* Adds the process's shared secret (security.h), if any, to a
 * GRPC_OP_SEND_INITIAL_METADATA op, for calls made without ember_rpc_call.
 * `storage` must stay valid until the batch completes. */
void ember_rpc_add_auth(grpc_op *send_initial_metadata, grpc_metadata *storage);

/* Return non-zero to cancel the stream. Do not keep msg. */
typedef int (*ember_rpc_on_message)(const ProtobufCMessage *msg, void *user);

/* Unary when reply != NULL (*reply must be freed by the caller with
 * protobuf_c_message_free_unpacked), server-streaming when on_msg != NULL.
 * *details (may be NULL) gets a malloc'd status message. */
grpc_status_code ember_rpc_call(grpc_channel *ch, const ProtobufCServiceDescriptor *svc,
                          const char *method, const ProtobufCMessage *req,
                          ProtobufCMessage **reply, ember_rpc_on_message on_msg,
                          void *user, int64_t timeout_ms, char **details);
/* One unary call of ember_rpc_unary_many: fill in the first four fields. */
typedef struct {
  grpc_channel *ch;
  const ProtobufCServiceDescriptor *svc;
  const char *method;
  const ProtobufCMessage *req;  /* or NULL: raw_len bytes at raw, already packed */
  const uint8_t *raw;
  size_t raw_len;
  ProtobufCMessage *reply;   /* out: free with protobuf_c_message_free_unpacked */
  grpc_status_code status;   /* out */
  char *details;             /* out: malloc'd status message */
} ember_rpc_unary;
/* Makes n unary calls at once (e.g. to different peers) and returns when all
 * have ended: the calls' round trips overlap instead of adding up. */
void ember_rpc_unary_many(ember_rpc_unary *calls, size_t n, int64_t timeout_ms);
/* The same without waiting, for a deferred call d (ember_rpc_defer): the calls
 * go out on d's server's completion queue and done(arg) runs, once all have
 * ended, on the server thread that took the last one's completion (the
 * thread that read the reply: no other thread is woken for it), or on this
 * thread before returning when none could start or all ended meanwhile.
 * calls must stay valid until then. */
void ember_rpc_unary_many_async(ember_rpc_ctx *d, ember_rpc_unary *calls, size_t n,
                                int64_t timeout_ms, void (*done)(void *), void *arg);
/* Same, with an explicit path (used to show UNIMPLEMENTED). */
grpc_status_code ember_rpc_call_path(grpc_channel *ch, const char *path,
                               const ProtobufCMessageDescriptor *out,
                               const ProtobufCMessage *req,
                               ProtobufCMessage **reply, ember_rpc_on_message on_msg,
                               void *user, int64_t timeout_ms, char **details);
#endif
