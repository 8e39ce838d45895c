/* rpc.c - see rpc.h. Server model: N threads run grpc_completion_queue_next()
 * on one server CQ that only receives "new call" events; each accepted call
 * is bound to its own pluck CQ and handled synchronously by that thread. */
#define _GNU_SOURCE
#include "rpc.h"
#include "log.h"
#include "security.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <grpc/byte_buffer_reader.h> /* full struct grpc_byte_buffer_reader */
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>

#define MAX_METHODS 64
#define INF gpr_inf_future(GPR_CLOCK_REALTIME)

/* ---- buffers ---------------------------------------------------------- */
grpc_byte_buffer *ember_rpc_pack(const ProtobufCMessage *msg) {
  size_t n = protobuf_c_message_get_packed_size(msg);
  grpc_slice s = grpc_slice_malloc(n);           /* refcount 1 */
  protobuf_c_message_pack(msg, GRPC_SLICE_START_PTR(s));
  grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&s, 1); /* +1 ref */
  grpc_slice_unref(s);                           /* bb now owns it */
  return bb;
}

ProtobufCMessage *ember_rpc_unpack(const ProtobufCMessageDescriptor *d,
                             grpc_byte_buffer *bb) {
  grpc_byte_buffer_reader r;
  grpc_slice *first;
  ProtobufCMessage *m;
  if (!grpc_byte_buffer_reader_init(&r, bb)) return NULL;
  if (bb->data.raw.compression == GRPC_COMPRESS_NONE &&
      grpc_byte_buffer_reader_peek(&r, &first) &&
      GRPC_SLICE_LENGTH(*first) == grpc_byte_buffer_length(bb)) {
    /* one contiguous slice: parse in place, no copy */
    m = protobuf_c_message_unpack(d, NULL, GRPC_SLICE_LENGTH(*first),
                                  GRPC_SLICE_START_PTR(*first));
  } else { /* several slices: protobuf-c needs one block -> one copy */
    grpc_byte_buffer_reader_destroy(&r);
    if (!grpc_byte_buffer_reader_init(&r, bb)) return NULL;
    grpc_slice all = grpc_byte_buffer_reader_readall(&r);
    m = protobuf_c_message_unpack(d, NULL, GRPC_SLICE_LENGTH(all),
                                  GRPC_SLICE_START_PTR(all));
    grpc_slice_unref(all);
  }
  grpc_byte_buffer_reader_destroy(&r);
  return m;
}

gpr_timespec ember_rpc_deadline_after_ms(int64_t ms) {
  return gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                      gpr_time_from_millis(ms, GPR_TIMESPAN));
}

/* The server whose completion queue this thread has the turn to listen on
 * (see EMBER_RPC_QUICK), or NULL. */
static __thread struct ember_rpc_server *listening_on;

/* How long a thread that has the listening waits for a batch of the call it
 * serves before it hands the listening over. A small reply is written to the
 * socket while the batch starts (complete at the first look, even if this
 * thread was descheduled meanwhile); a large one, or one to a client that
 * stopped reading, waits for the client's HTTP/2 window, which only the
 * client's reads open: with the listening held meanwhile nobody would take
 * the server's other calls (heartbeats, reports, kills). */
#define LISTENING_BATCH_WAIT_MS 1

/* start one batch on a pluck CQ and wait for exactly that batch */
static int run_batch(grpc_call *call, grpc_completion_queue *cq,
                     const grpc_op *ops, size_t n) {
  void *tag = (void *)ops; /* any unique address works as a tag */
  grpc_call_error e = grpc_call_start_batch(call, ops, n, tag, NULL);
  if (e != GRPC_CALL_OK) {
    ember_log_error("grpc start_batch: %s", grpc_call_error_to_string(e));
    return 0;
  }
  grpc_event ev;
  if (listening_on) {
    /* pluck polls once even when its deadline has passed: a completion
     * that is ready is never missed */
    ev = grpc_completion_queue_pluck(cq, tag, ember_rpc_deadline_after_ms(LISTENING_BATCH_WAIT_MS),
                                     NULL);
    if (ev.type == GRPC_QUEUE_TIMEOUT) {
      ember_rpc_release_listener();
      ev = grpc_completion_queue_pluck(cq, tag, INF, NULL);
    }
  } else {
    ev = grpc_completion_queue_pluck(cq, tag, INF, NULL);
  }
  return ev.type == GRPC_OP_COMPLETE && ev.success;
}

static void destroy_pluck_cq(grpc_completion_queue *cq) {
  grpc_completion_queue_shutdown(cq);
  while (grpc_completion_queue_pluck(cq, NULL, INF, NULL).type !=
         GRPC_QUEUE_SHUTDOWN) {}
  grpc_completion_queue_destroy(cq);
}

/* Debian builds abseil without NDEBUG, so every absl::Mutex lock in gRPC
 * updates a lock-order graph for deadlock detection (GraphCycles: a few % of
 * a daemon's CPU for small calls). It only diagnoses lock-order bugs inside
 * gRPC: turn it off (absl::OnDeadlockCycle::kIgnore == 0). Looked up at run
 * time, as the C++ name differs between abseil builds; absent: no change. */
static void quiet_absl_deadlock_detection(void) {
  static const char *const names[] = {
      "_ZN4absl7debian329SetMutexDeadlockDetectionModeENS0_15OnDeadlockCycleE",
      "_ZN4absl7debian229SetMutexDeadlockDetectionModeENS0_15OnDeadlockCycleE",
      "_ZN4absl7debian429SetMutexDeadlockDetectionModeENS0_15OnDeadlockCycleE",
      "_ZN4absl12lts_2022062329SetMutexDeadlockDetectionModeENS0_15OnDeadlockCycleE",
  };
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    void *sym = dlsym(RTLD_DEFAULT, names[i]);
    if (sym) {
      void (*set_mode)(int);
      memcpy(&set_mode, &sym, sizeof set_mode);
      set_mode(0);
      return;
    }
  }
}

static pthread_once_t absl_once = PTHREAD_ONCE_INIT;

/* ---- server ----------------------------------------------------------- */
typedef struct {
  const ProtobufCMethodDescriptor *md;
  ember_rpc_method_impl impl;
  void *user, *handle; /* handle from grpc_server_register_method */
  char path[256];
} method_t;

/* What a tag on the server's CQ is: the first member of each kind. */
enum tag_kind { TAG_SLOT = 1, TAG_ASYNC_CALL };

typedef struct { /* one outstanding grpc_server_request_*_call; the tag */
  enum tag_kind kind; /* TAG_SLOT */
  method_t *m;   /* NULL: the generic slot for unknown methods */
  grpc_call *call;
  grpc_completion_queue *call_cq;
  gpr_timespec deadline;
  grpc_metadata_array md;
  grpc_byte_buffer *payload;
  grpc_call_details details;
} slot_t;

struct ember_rpc_server {
  grpc_server *server;
  grpc_completion_queue *cq;
  method_t methods[MAX_METHODS];
  size_t nmethods, nslots;
  slot_t *slots;
  pthread_t *threads;
  int nthreads, shutting_down;
  pthread_mutex_t mu;
  char shutdown_tag;
  /* One thread at a time listens on cq (see EMBER_RPC_QUICK): gRPC's epoll
   * poller otherwise wakes another waiting thread on every event it takes,
   * only for that thread to poll again. */
  pthread_mutex_t listen_mu;
  pthread_cond_t listen_turn;
  int listener_taken;
  /* Pluck CQs of finished calls (every batch plucked, so none holds an
   * event), bound to the next calls armed: creating and shutting down one per
   * call cost more than the call's own handling for small requests. */
  grpc_completion_queue **idle_cqs;
  size_t n_idle_cqs, cap_idle_cqs;
};

struct ember_rpc_ctx {
  ember_rpc_server *server; /* NULL for ember_rpc_server_invoke */
  grpc_call *call;
  grpc_completion_queue *cq;
  gpr_timespec deadline;
  int sent_md, nsent, dead;
  char *details;
  /* A unary call's reply is held until the handler returns and goes out in
   * the batch that sends the status: one batch (one write, one wake-up of the
   * handling thread) per call instead of two. */
  int unary;
  grpc_byte_buffer *reply;
  void (*after)(void *);   /* ember_rpc_after_reply */
  void *after_arg;
  int finished;            /* ember_rpc_reply_now sent the reply and status */
  int deferred;            /* ember_rpc_defer moved the call to a copy on the heap */
  /* The unpacked request, freed once the handler returns unless it took it
   * (ember_rpc_take_request). */
  ProtobufCMessage *request;
};

/* TLS when this process has a certificate (security.h), else plain HTTP/2. */
static grpc_server_credentials *server_credentials(void) {
  const struct ember_security *sec = ember_security_get();
  if (!sec->tls_cert_pem) return grpc_insecure_server_credentials_create();
  grpc_ssl_pem_key_cert_pair pair = {sec->tls_key_pem, sec->tls_cert_pem};
  return grpc_ssl_server_credentials_create(NULL, &pair, 1, 0, NULL);
}

static grpc_channel_credentials *channel_credentials(void) {
  const struct ember_security *sec = ember_security_get();
  if (!sec->tls_ca_pem) return grpc_insecure_credentials_create();
  return grpc_ssl_credentials_create(sec->tls_ca_pem, NULL, NULL, NULL);
}

/* Does the call carry this process's shared secret (or is none required)? */
static int call_authorized(const grpc_metadata_array *md) {
  if (!ember_security_get()->secret) return 1;
  for (size_t i = 0; i < md->count; i++) {
    const grpc_metadata *m = &md->metadata[i];
    if (grpc_slice_str_cmp(m->key, EMBER_AUTH_HEADER) == 0)
      return ember_security_bearer_ok((const char *)GRPC_SLICE_START_PTR(m->value),
                                      GRPC_SLICE_LENGTH(m->value));
  }
  return 0;
}

static void log_refused(slot_t *c) {
  char *peer = grpc_call_get_peer(c->call);
  char *method = c->m ? NULL : grpc_slice_to_c_string(c->details.method);
  ember_log_warn("refused a call to %s from %s: missing or wrong shared secret",
                 c->m ? c->m->path : method, peer ? peer : "?");
  gpr_free(peer);
  gpr_free(method);
}

ember_rpc_server *ember_rpc_server_create(const char *addr, int *bound_port,
                              const grpc_channel_args *args) {
  ember_rpc_server *s = calloc(1, sizeof *s);
  pthread_once(&absl_once, quiet_absl_deadlock_detection);
  pthread_mutex_init(&s->mu, NULL);
  pthread_mutex_init(&s->listen_mu, NULL);
  pthread_cond_init(&s->listen_turn, NULL);
  /* Requests such as a job with its parallelized data can be large. */
  grpc_arg big = {.type = GRPC_ARG_INTEGER,
                  .key = (char *)GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH,
                  .value.integer = EMBER_RPC_MAX_MESSAGE};
  grpc_channel_args default_args = {1, &big};
  s->server = grpc_server_create(args ? args : &default_args, NULL);
  s->cq = grpc_completion_queue_create_for_next(NULL);
  grpc_server_register_completion_queue(s->server, s->cq, NULL);
  grpc_server_credentials *creds = server_credentials();
  int port = grpc_server_add_http2_port(s->server, addr, creds);
  grpc_server_credentials_release(creds);
  if (port == 0) { /* bind failed; server never started */
    grpc_server_destroy(s->server);
    grpc_completion_queue_shutdown(s->cq);
    while (grpc_completion_queue_next(s->cq, INF, NULL).type !=
           GRPC_QUEUE_SHUTDOWN) {}
    grpc_completion_queue_destroy(s->cq);
    pthread_mutex_destroy(&s->mu);
    pthread_mutex_destroy(&s->listen_mu);
    pthread_cond_destroy(&s->listen_turn);
    free(s);
    return NULL;
  }
  if (bound_port) *bound_port = port;
  return s;
}

int ember_rpc_server_add_service(ember_rpc_server *s, const ProtobufCServiceDescriptor *svc,
                           const ember_rpc_method_impl *impls, size_t n, void *user) {
  for (size_t i = 0; i < n; i++) {
    const ProtobufCMethodDescriptor *md =
        protobuf_c_service_descriptor_get_method_by_name(svc, impls[i].method);
    if (!md || s->nmethods == MAX_METHODS) return -1;
    if (impls[i].quick && impls[i].kind != EMBER_RPC_UNARY) {
      /* a stream's handler waits for its client between messages (the
       * client's window): it blocks, so it must not hold the listening */
      ember_log_error("%s/%s: only unary methods may be quick", svc->name, impls[i].method);
      return -1;
    }
    method_t *m = &s->methods[s->nmethods++];
    m->md = md;
    m->impl = impls[i];
    m->user = user;
    snprintf(m->path, sizeof m->path, "/%s/%s", svc->name, md->name);
    m->handle = grpc_server_register_method(
        s->server, m->path, NULL, GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER, 0);
    if (!m->handle) return -1;
  }
  return 0;
}

static void arm(ember_rpc_server *s, slot_t *sl) {
  pthread_mutex_lock(&s->mu);
  if (!s->shutting_down) { /* never post to the CQ once shutdown began */
    grpc_call_error e;
    sl->call = NULL;
    sl->payload = NULL;
    sl->call_cq = s->n_idle_cqs ? s->idle_cqs[--s->n_idle_cqs]
                                : grpc_completion_queue_create_for_pluck(NULL);
    grpc_metadata_array_init(&sl->md);
    if (sl->m) {
      e = grpc_server_request_registered_call(s->server, sl->m->handle,
          &sl->call, &sl->deadline, &sl->md, &sl->payload, sl->call_cq, s->cq, sl);
    } else {
      grpc_call_details_init(&sl->details);
      e = grpc_server_request_call(s->server, &sl->call, &sl->details, &sl->md,
                                   sl->call_cq, s->cq, sl);
    }
    if (e != GRPC_CALL_OK)
      ember_log_error("grpc request_call: %s", grpc_call_error_to_string(e));
  }
  pthread_mutex_unlock(&s->mu);
}

/* reuse: the call was handled (all its batches plucked): its CQ is kept for
 * a later call, unless the server is shutting down. */
static void recycle_call_cq(ember_rpc_server *s, grpc_completion_queue *cq, int reuse) {
  if (!cq) return;
  if (reuse) {
    pthread_mutex_lock(&s->mu);
    if (!s->shutting_down) {
      if (s->n_idle_cqs == s->cap_idle_cqs) {
        size_t cap = s->cap_idle_cqs ? 2 * s->cap_idle_cqs : 16;
        grpc_completion_queue **grown = realloc(s->idle_cqs, cap * sizeof *grown);
        if (grown) {
          s->idle_cqs = grown;
          s->cap_idle_cqs = cap;
        }
      }
      if (s->n_idle_cqs < s->cap_idle_cqs) {
        s->idle_cqs[s->n_idle_cqs++] = cq;
        cq = NULL;
      }
    }
    pthread_mutex_unlock(&s->mu);
  }
  if (cq) destroy_pluck_cq(cq);
}

static void release_slot_state(ember_rpc_server *s, slot_t *c, int reuse) {
  if (c->payload) grpc_byte_buffer_destroy(c->payload);
  grpc_metadata_array_destroy(&c->md);
  if (!c->m) grpc_call_details_destroy(&c->details);
  if (c->call) grpc_call_unref(c->call);
  recycle_call_cq(s, c->call_cq, reuse);
}

/* 1 when the reply and status went out and the peer did not cancel. */
static int finish(ember_rpc_ctx *ctx, grpc_status_code st) {
  grpc_op ops[4];
  size_t n = 0;
  int cancelled = 0, ok;
  grpc_slice details = grpc_slice_from_copied_string(ctx->details ? ctx->details : "");
  memset(ops, 0, sizeof ops);
  if (!ctx->sent_md) ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
  if (ctx->reply) {
    ops[n].op = GRPC_OP_SEND_MESSAGE;
    ops[n++].data.send_message.send_message = ctx->reply;
  }
  ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
  ops[n].data.send_status_from_server.status = st;
  ops[n++].data.send_status_from_server.status_details = &details;
  ops[n].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
  ops[n++].data.recv_close_on_server.cancelled = &cancelled;
  ok = run_batch(ctx->call, ctx->cq, ops, n);
  grpc_slice_unref(details);
  if (ctx->reply) grpc_byte_buffer_destroy(ctx->reply);
  ctx->reply = NULL;
  free(ctx->details);
  ctx->details = NULL;
  ctx->finished = 1;
  return ok && !cancelled;
}

/* Unpacks the request, runs the handler and checks its replies. */
static grpc_status_code run_method(ember_rpc_ctx *ctx, const method_t *m, const uint8_t *data,
                                   size_t len) {
  ProtobufCMessage *req = protobuf_c_message_unpack(m->md->input, NULL, len, data);
  grpc_status_code st;
  if (!req) {
    ember_rpc_set_details(ctx, "cannot parse request");
    return GRPC_STATUS_INVALID_ARGUMENT;
  }
  ctx->request = req;
  st = m->impl.fn(ctx, req, m->user);
  if (ctx->request) protobuf_c_message_free_unpacked(ctx->request, NULL);
  ctx->request = NULL;
  if (ctx->deferred) return GRPC_STATUS_OK; /* ember_rpc_deferred_finish checks */
  if (st == GRPC_STATUS_OK && m->impl.kind == EMBER_RPC_UNARY && ctx->nsent != 1) {
    ember_rpc_set_details(ctx, "unary handler must send exactly one reply");
    st = GRPC_STATUS_INTERNAL;
  }
  return st;
}

/* The payload as one block (protobuf-c needs one) in *out: a new reference to
 * its only slice when it has one, else a copy. -1 when it cannot be read
 * (a compressed message that does not decompress). */
static int payload_slice(grpc_byte_buffer *bb, grpc_slice *out) {
  grpc_byte_buffer_reader r;
  grpc_slice *first;
  if (!grpc_byte_buffer_reader_init(&r, bb)) return -1;
  if (bb->data.raw.compression == GRPC_COMPRESS_NONE && grpc_byte_buffer_reader_peek(&r, &first) &&
      GRPC_SLICE_LENGTH(*first) == grpc_byte_buffer_length(bb)) {
    *out = grpc_slice_ref(*first);
  } else {
    grpc_byte_buffer_reader_destroy(&r);
    if (!grpc_byte_buffer_reader_init(&r, bb)) return -1;
    *out = grpc_byte_buffer_reader_readall(&r);
  }
  grpc_byte_buffer_reader_destroy(&r);
  return 0;
}

/* Serves the call; *after is what ember_rpc_after_reply asked to run once
 * the call's resources are released. */
static void handle(ember_rpc_server *s, slot_t *c, void (**after)(void *), void **after_arg) {
  ember_rpc_ctx ctx = {.server = s, .call = c->call, .cq = c->call_cq, .deadline = c->deadline,
                       .unary = c->m && c->m->impl.kind == EMBER_RPC_UNARY};
  grpc_status_code st;
  if (!call_authorized(&c->md)) {
    log_refused(c);
    ember_rpc_set_details(&ctx, "the call lacks the cluster's shared secret or has a wrong "
                          "one (set EMBER_AUTH_SECRET or --auth-secret-file as on the "
                          "daemons)");
    st = GRPC_STATUS_UNAUTHENTICATED;
  } else if (!c->m) {
    char *p = grpc_slice_to_c_string(c->details.method);
    char msg[300];
    snprintf(msg, sizeof msg, "unknown method %s", p);
    gpr_free(p);
    ember_rpc_set_details(&ctx, msg);
    st = GRPC_STATUS_UNIMPLEMENTED;
  } else if (!c->payload) {
    ember_rpc_set_details(&ctx, "no request message");
    st = GRPC_STATUS_INVALID_ARGUMENT;
  } else {
    grpc_slice all;
    if (payload_slice(c->payload, &all) != 0) {
      ember_rpc_set_details(&ctx, "cannot parse request");
      st = GRPC_STATUS_INVALID_ARGUMENT;
    } else {
      st = run_method(&ctx, c->m, GRPC_SLICE_START_PTR(all), GRPC_SLICE_LENGTH(all));
      grpc_slice_unref(all);
    }
  }
  if (ctx.deferred) {          /* the heap copy owns the call and its CQ now */
    free(ctx.details);
    c->call = NULL;
    c->call_cq = NULL;
    *after = NULL;
    *after_arg = NULL;
    return;
  }
  if (!ctx.finished)
    finish(&ctx, st);
  else if (st != GRPC_STATUS_OK)
    ember_log_error("%s: the handler failed after it replied", c->m->path);
  *after = ctx.after;
  *after_arg = ctx.after_arg;
}

size_t ember_rpc_server_n_methods(const ember_rpc_server *s) { return s->nmethods; }

const char *ember_rpc_server_method_name(const ember_rpc_server *s, size_t index) {
  return index < s->nmethods ? s->methods[index].md->name : NULL;
}

grpc_status_code ember_rpc_server_invoke(ember_rpc_server *s, size_t index, const uint8_t *data,
                                         size_t len, char **details) {
  /* No call: ember_rpc_send packs and counts; the deadline never comes. */
  ember_rpc_ctx ctx = {.deadline = gpr_inf_future(GPR_CLOCK_MONOTONIC)};
  grpc_status_code st;
  if (index >= s->nmethods) return GRPC_STATUS_UNIMPLEMENTED;
  st = run_method(&ctx, &s->methods[index], data, len);
  if (ctx.after) ctx.after(ctx.after_arg);
  if (details)
    *details = ctx.details;
  else
    free(ctx.details);
  return st;
}

static void async_call_ended(void *tag);

static void take_listening(ember_rpc_server *s) {
  if (listening_on == s) return;
  pthread_mutex_lock(&s->listen_mu);
  while (s->listener_taken) pthread_cond_wait(&s->listen_turn, &s->listen_mu);
  s->listener_taken = 1;
  pthread_mutex_unlock(&s->listen_mu);
  listening_on = s;
}

void ember_rpc_release_listener(void) {
  ember_rpc_server *s = listening_on;
  if (!s) return;
  listening_on = NULL;
  pthread_mutex_lock(&s->listen_mu);
  s->listener_taken = 0;
  pthread_cond_signal(&s->listen_turn);
  pthread_mutex_unlock(&s->listen_mu);
}

static void *serve(void *arg) {
  ember_rpc_server *s = arg;
  for (;;) {
    take_listening(s);
    grpc_event ev = grpc_completion_queue_next(s->cq, INF, NULL);
    if (ev.type == GRPC_QUEUE_SHUTDOWN) {            /* drained: exit, and */
      ember_rpc_release_listener();                  /* let the next see it */
      break;
    }
    if (ev.tag == &s->shutdown_tag) {                /* all calls done */
      grpc_completion_queue_shutdown(s->cq);
      continue;
    }
    if (*(enum tag_kind *)ev.tag == TAG_ASYNC_CALL) { /* ember_rpc_unary_many_async */
      async_call_ended(ev.tag);  /* its done function runs here, holding the turn: rpc.h */
      continue;
    }
    slot_t *sl = ev.tag, c = *sl;                    /* take the call out */
    if (!ev.success) { release_slot_state(s, &c, 0); continue; } /* shutting down */
    arm(s, sl);                                      /* accept the next one */
    if (!c.m || !c.m->impl.quick) ember_rpc_release_listener(); /* may block */
    void (*after)(void *) = NULL;
    void *after_arg = NULL;
    handle(s, &c, &after, &after_arg);
    release_slot_state(s, &c, 1);
    if (after) after(after_arg);
  }
  return NULL;
}

void ember_rpc_server_start(ember_rpc_server *s, int nthreads) {
  grpc_server_start(s->server);
  s->nslots = s->nmethods * (size_t)nthreads + 1; /* +1: generic slot */
  s->slots = calloc(s->nslots, sizeof *s->slots);
  for (size_t i = 0; i < s->nslots; i++) s->slots[i].kind = TAG_SLOT;
  for (size_t i = 0; i + 1 < s->nslots; i++) s->slots[i].m = &s->methods[i % s->nmethods];
  for (size_t i = 0; i < s->nslots; i++) arm(s, &s->slots[i]);
  s->nthreads = nthreads;
  s->threads = calloc((size_t)nthreads, sizeof *s->threads);
  for (int i = 0; i < nthreads; i++) pthread_create(&s->threads[i], NULL, serve, s);
}

void ember_rpc_server_shutdown(ember_rpc_server *s) {
  pthread_mutex_lock(&s->mu);
  s->shutting_down = 1;
  pthread_mutex_unlock(&s->mu);
  grpc_server_shutdown_and_notify(s->server, s->cq, &s->shutdown_tag);
  grpc_server_cancel_all_calls(s->server); /* don't wait for slow streams */
  for (int i = 0; i < s->nthreads; i++) pthread_join(s->threads[i], NULL);
  grpc_server_destroy(s->server);
  grpc_completion_queue_destroy(s->cq);
  for (size_t i = 0; i < s->n_idle_cqs; i++) destroy_pluck_cq(s->idle_cqs[i]);
  free(s->idle_cqs);
  pthread_mutex_destroy(&s->mu);
  pthread_mutex_destroy(&s->listen_mu);
  pthread_cond_destroy(&s->listen_turn);
  free(s->threads);
  free(s->slots);
  free(s);
}

int ember_rpc_send(ember_rpc_ctx *ctx, const ProtobufCMessage *msg) {
  grpc_op ops[2];
  size_t n = 0;
  if (ctx->dead) return -1;
  if (!ctx->call) { /* ember_rpc_server_invoke: no peer, but the reply must pack */
    grpc_byte_buffer_destroy(ember_rpc_pack(msg));
    ctx->nsent++;
    return 0;
  }
  if (ctx->unary) { /* sent with the status by finish() */
    if (!ctx->reply) ctx->reply = ember_rpc_pack(msg);
    ctx->nsent++;          /* a second reply is an error: run_method says so */
    return 0;
  }
  memset(ops, 0, sizeof ops);
  if (!ctx->sent_md) ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
  grpc_byte_buffer *bb = ember_rpc_pack(msg);
  ops[n].op = GRPC_OP_SEND_MESSAGE;
  ops[n++].data.send_message.send_message = bb;
  int ok = run_batch(ctx->call, ctx->cq, ops, n); /* one message in flight */
  grpc_byte_buffer_destroy(bb);
  ctx->sent_md = 1;
  if (!ok) { ctx->dead = 1; return -1; } /* cancelled, deadline, peer gone */
  ctx->nsent++;
  return 0;
}

ProtobufCMessage *ember_rpc_take_request(ember_rpc_ctx *ctx) {
  ProtobufCMessage *req = ctx->request;
  ctx->request = NULL;
  return req;
}

int ember_rpc_reply_now(ember_rpc_ctx *ctx) {
  if (ctx->finished || ctx->nsent != 1) return 0;
  if (!ctx->call) { /* ember_rpc_server_invoke: nothing to send */
    ctx->finished = 1;
    return 1;
  }
  if (!ctx->unary) return 0;
  return finish(ctx, GRPC_STATUS_OK);
}

void ember_rpc_after_reply(ember_rpc_ctx *ctx, void (*fn)(void *), void *arg) {
  ctx->after = fn;
  ctx->after_arg = arg;
}

ember_rpc_ctx *ember_rpc_defer(ember_rpc_ctx *ctx) {
  if (!ctx->call || !ctx->server || !ctx->unary || ctx->finished || ctx->deferred) return NULL;
  ember_rpc_ctx *d = malloc(sizeof *d);
  if (!d) abort();
  *d = *ctx;                   /* the reply, details and after-reply work go along */
  d->request = NULL;           /* freed with ctx: take it before deferring */
  ctx->deferred = 1;
  ctx->details = NULL;
  ctx->reply = NULL;
  ctx->after = NULL;
  return d;
}

void ember_rpc_deferred_finish(ember_rpc_ctx *d, grpc_status_code st) {
  void (*after)(void *) = d->after;
  void *after_arg = d->after_arg;
  if (st == GRPC_STATUS_OK && d->nsent != 1) {
    ember_rpc_set_details(d, "unary handler must send exactly one reply");
    st = GRPC_STATUS_INTERNAL;
  }
  if (!d->finished) finish(d, st);
  grpc_call_unref(d->call);
  recycle_call_cq(d->server, d->cq, 1); /* finish plucked its batch */
  free(d->details);
  free(d);
  if (after) after(after_arg);
}

void ember_rpc_set_details(ember_rpc_ctx *ctx, const char *d) {
  free(ctx->details);
  ctx->details = strdup(d);
}

gpr_timespec ember_rpc_ctx_deadline(const ember_rpc_ctx *ctx) {
  return gpr_convert_clock_type(ctx->deadline, GPR_CLOCK_MONOTONIC);
}

/* ---- client ----------------------------------------------------------- */
grpc_channel *ember_rpc_channel_create(const char *target, int max_recv_bytes) {
  return ember_rpc_channel_create_ex(target, max_recv_bytes, 0);
}

grpc_channel *ember_rpc_channel_create_ex(const char *target, int max_recv_bytes, int flags) {
  pthread_once(&absl_once, quiet_absl_deadlock_detection);
  grpc_arg args[] = {
      {.type = GRPC_ARG_INTEGER,
       .key = (char *)GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH,
       .value.integer = max_recv_bytes ? max_recv_bytes : GRPC_DEFAULT_MAX_RECV_MESSAGE_LENGTH},
      /* gRPC's reconnect backoff grows to 120 s by default: a peer that
       * restarts would go unseen for minutes. */
      {.type = GRPC_ARG_INTEGER,
       .key = (char *)GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS,
       .value.integer = 100},
      {.type = GRPC_ARG_INTEGER,
       .key = (char *)GRPC_ARG_MAX_RECONNECT_BACKOFF_MS,
       .value.integer = 1000},
      /* Measured with gRPC 1.51: the backoff values alone change nothing; with
       * re-resolution allowed every 200 ms (default 30 s) a restarted peer is
       * reached within about a second. */
      {.type = GRPC_ARG_INTEGER,
       .key = (char *)GRPC_ARG_DNS_MIN_TIME_BETWEEN_RESOLUTIONS_MS,
       .value.integer = 200},
      /* No call of ours has a retry policy, yet gRPC runs every call through
       * its retry layer (which copies and holds each batch) unless told not to:
       * turning it off saves that work on every call. */
      {.type = GRPC_ARG_INTEGER, .key = (char *)GRPC_ARG_ENABLE_RETRIES, .value.integer = 0},
      /* Last, so it can be left out: with BDP probing gRPC grows a stream's
       * window to tens of MB on loopback and reads that far ahead of a slow
       * consumer; without it, about one message is buffered. */
      {.type = GRPC_ARG_INTEGER, .key = (char *)GRPC_ARG_HTTP2_BDP_PROBE, .value.integer = 0},
  };
  size_t n_args = sizeof(args) / sizeof(args[0]);
  grpc_channel_args channel_args = {(flags & EMBER_RPC_NO_READ_AHEAD) ? n_args : n_args - 1,
                                    args};
  grpc_channel_credentials *creds = channel_credentials();
  grpc_channel *ch = grpc_channel_create(target, creds, &channel_args);
  grpc_channel_credentials_release(creds); /* channel keeps its own ref */
  return ch;
}

void ember_rpc_add_auth(grpc_op *op, grpc_metadata *storage) {
  const char *bearer = ember_security_get()->bearer;
  if (!bearer) return;
  memset(storage, 0, sizeof *storage);
  /* the bearer string lives as long as the process: a static slice is safe */
  storage->key = grpc_slice_from_static_string(EMBER_AUTH_HEADER);
  storage->value = grpc_slice_from_static_string(bearer);
  op->data.send_initial_metadata.count = 1;
  op->data.send_initial_metadata.metadata = storage;
}

grpc_status_code ember_rpc_call_path(grpc_channel *ch, const char *path,
                               const ProtobufCMessageDescriptor *out,
                               const ProtobufCMessage *req,
                               ProtobufCMessage **reply, ember_rpc_on_message on_msg,
                               void *user, int64_t timeout_ms, char **details) {
  ember_rpc_release_listener(); /* the reply may be slow: let others serve */
  grpc_completion_queue *cq = grpc_completion_queue_create_for_pluck(NULL);
  /* A copied slice: callers pass paths built in stack buffers, and gRPC may
   * keep a static slice's pointer past this call (its HPACK encoder indexes
   * static slices by address, so a later path in the same buffer was sent as
   * the earlier one: calls reached the wrong method). */
  grpc_slice method = grpc_slice_from_copied_string(path);
  grpc_call *call = grpc_channel_create_call(
      ch, NULL, GRPC_PROPAGATE_DEFAULTS, cq, method,
      NULL, ember_rpc_deadline_after_ms(timeout_ms), NULL);
  grpc_slice_unref(method);
  grpc_metadata_array initial_md, trailing_md;
  grpc_byte_buffer *send = ember_rpc_pack(req), *recv = NULL;
  grpc_status_code status = GRPC_STATUS_UNKNOWN;
  grpc_slice status_details = grpc_empty_slice();
  grpc_op ops[6];
  size_t n = 0;
  grpc_metadata_array_init(&initial_md);
  grpc_metadata_array_init(&trailing_md);
  memset(ops, 0, sizeof ops);
  grpc_metadata auth;
  ops[n].op = GRPC_OP_SEND_INITIAL_METADATA;
  ember_rpc_add_auth(&ops[n++], &auth);
  ops[n].op = GRPC_OP_SEND_MESSAGE;
  ops[n++].data.send_message.send_message = send;
  ops[n++].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
  ops[n].op = GRPC_OP_RECV_INITIAL_METADATA;
  ops[n++].data.recv_initial_metadata.recv_initial_metadata = &initial_md;
  if (reply) { /* unary: everything in one batch, one wait */
    *reply = NULL;
    ops[n].op = GRPC_OP_RECV_MESSAGE;
    ops[n++].data.recv_message.recv_message = &recv;
    ops[n].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[n].data.recv_status_on_client.trailing_metadata = &trailing_md;
    ops[n].data.recv_status_on_client.status = &status;
    ops[n++].data.recv_status_on_client.status_details = &status_details;
    run_batch(call, cq, ops, n); /* "always succeeds": look at status */
    if (status == GRPC_STATUS_OK && (!recv || !(*reply = ember_rpc_unpack(out, recv)))) {
      status = GRPC_STATUS_INTERNAL;
      grpc_slice_unref(status_details);
      status_details = grpc_slice_from_static_string("missing or bad reply");
    }
    if (recv) grpc_byte_buffer_destroy(recv);
  } else { /* server streaming: RECV_MESSAGE until NULL, then status */
    run_batch(call, cq, ops, n);
    for (;;) {
      grpc_op rm = {0};
      rm.op = GRPC_OP_RECV_MESSAGE;
      rm.data.recv_message.recv_message = &recv;
      if (!run_batch(call, cq, &rm, 1) || !recv) break; /* end or error */
      ProtobufCMessage *m = ember_rpc_unpack(out, recv);
      grpc_byte_buffer_destroy(recv);
      recv = NULL;
      int stop = !m || on_msg(m, user);
      if (m) protobuf_c_message_free_unpacked(m, NULL);
      if (stop) {
        grpc_call_cancel_with_status(call, m ? GRPC_STATUS_CANCELLED : GRPC_STATUS_INTERNAL,
                                     m ? "cancelled by client" : "bad message", NULL);
        break;
      }
    }
    grpc_op st = {0};
    st.op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    st.data.recv_status_on_client.trailing_metadata = &trailing_md;
    st.data.recv_status_on_client.status = &status;
    st.data.recv_status_on_client.status_details = &status_details;
    run_batch(call, cq, &st, 1);
  }
  if (details) {
    *details = strndup((const char *)GRPC_SLICE_START_PTR(status_details),
                       GRPC_SLICE_LENGTH(status_details));
  }
  grpc_slice_unref(status_details);
  grpc_metadata_array_destroy(&initial_md);
  grpc_metadata_array_destroy(&trailing_md);
  grpc_byte_buffer_destroy(send);
  grpc_call_unref(call);
  destroy_pluck_cq(cq);
  return status;
}

grpc_status_code ember_rpc_call(grpc_channel *ch, const ProtobufCServiceDescriptor *svc,
                          const char *method, const ProtobufCMessage *req,
                          ProtobufCMessage **reply, ember_rpc_on_message on_msg,
                          void *user, int64_t timeout_ms, char **details) {
  const ProtobufCMethodDescriptor *md =
      protobuf_c_service_descriptor_get_method_by_name(svc, method);
  char path[256];
  if (!md) {
    if (details) *details = strdup("method not in service descriptor");
    return GRPC_STATUS_UNIMPLEMENTED;
  }
  snprintf(path, sizeof path, "/%s/%s", svc->name, md->name);
  return ember_rpc_call_path(ch, path, md->output, req, reply, on_msg, user,
                       timeout_ms, details);
}

/* ---- several unary calls at once -------------------------------------- */
struct async_group;

typedef struct {
  enum tag_kind kind;          /* TAG_ASYNC_CALL: the tag on a server's CQ */
  struct async_group *group;   /* ember_rpc_unary_many_async, else NULL */
  grpc_call *call;
  grpc_op ops[6];
  grpc_metadata auth;
  grpc_metadata_array initial_md, trailing_md;
  grpc_byte_buffer *send, *recv;
  grpc_slice status_details;
  const ProtobufCMessageDescriptor *out;
  int started;
} unary_state;

/* ember_rpc_unary_many_async's calls: done runs when pending reaches 0 (the
 * calls still on their way, plus one held while they are being started). */
struct async_group {
  ember_rpc_unary *calls;
  unary_state *st;
  atomic_size_t pending;
  void (*done)(void *);
  void *arg;
};

/* Creates the calls on cq and starts each as one batch. With a group, each
 * started call counts as pending before its batch starts (it may end on
 * another thread at once). */
static void start_unary_calls(ember_rpc_unary *calls, unary_state *st, size_t n,
                              grpc_completion_queue *cq, int64_t timeout_ms,
                              struct async_group *g) {
  gpr_timespec deadline = ember_rpc_deadline_after_ms(timeout_ms);

  for (size_t i = 0; i < n; i++) {
    ember_rpc_unary *c = &calls[i];
    unary_state *u = &st[i];
    const ProtobufCMethodDescriptor *md =
        protobuf_c_service_descriptor_get_method_by_name(c->svc, c->method);
    char path[256];
    u->kind = TAG_ASYNC_CALL;
    u->group = g;
    c->reply = NULL;
    c->details = NULL;
    c->status = GRPC_STATUS_UNKNOWN;
    u->status_details = grpc_empty_slice();
    if (!md) {
      c->status = GRPC_STATUS_UNIMPLEMENTED;
      c->details = strdup("method not in service descriptor");
      continue;
    }
    u->out = md->output;
    snprintf(path, sizeof path, "/%s/%s", c->svc->name, md->name);
    grpc_slice method = grpc_slice_from_copied_string(path); /* see ember_rpc_call_path */
    u->call = grpc_channel_create_call(c->ch, NULL, GRPC_PROPAGATE_DEFAULTS, cq, method, NULL,
                                       deadline, NULL);
    grpc_slice_unref(method);
    grpc_metadata_array_init(&u->initial_md);
    grpc_metadata_array_init(&u->trailing_md);
    if (c->req) {
      u->send = ember_rpc_pack(c->req);
    } else {
      grpc_slice bytes = grpc_slice_from_copied_buffer((const char *)c->raw, c->raw_len);
      u->send = grpc_raw_byte_buffer_create(&bytes, 1);
      grpc_slice_unref(bytes);
    }
    size_t k = 0;
    u->ops[k].op = GRPC_OP_SEND_INITIAL_METADATA;
    ember_rpc_add_auth(&u->ops[k++], &u->auth);
    u->ops[k].op = GRPC_OP_SEND_MESSAGE;
    u->ops[k++].data.send_message.send_message = u->send;
    u->ops[k++].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    u->ops[k].op = GRPC_OP_RECV_INITIAL_METADATA;
    u->ops[k++].data.recv_initial_metadata.recv_initial_metadata = &u->initial_md;
    u->ops[k].op = GRPC_OP_RECV_MESSAGE;
    u->ops[k++].data.recv_message.recv_message = &u->recv;
    u->ops[k].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    u->ops[k].data.recv_status_on_client.trailing_metadata = &u->trailing_md;
    u->ops[k].data.recv_status_on_client.status = &c->status;
    u->ops[k++].data.recv_status_on_client.status_details = &u->status_details;
    if (g) atomic_fetch_add(&g->pending, 1);
    grpc_call_error e = grpc_call_start_batch(u->call, u->ops, k, u, NULL);
    if (e != GRPC_CALL_OK) {
      ember_log_error("grpc start_batch: %s", grpc_call_error_to_string(e));
      if (g) atomic_fetch_sub(&g->pending, 1);
    }
    u->started = e == GRPC_CALL_OK;
  }
}

/* Once call c has ended (or could not start): its reply and details into c;
 * frees what the call held. */
static void end_unary_call(ember_rpc_unary *c, unary_state *u) {
  if (!u->call) return;        /* no such method: status and details are set */
  if (c->status == GRPC_STATUS_OK &&
      (!u->recv || !(c->reply = ember_rpc_unpack(u->out, u->recv)))) {
    c->status = GRPC_STATUS_INTERNAL;
    grpc_slice_unref(u->status_details);
    u->status_details = grpc_slice_from_static_string("missing or bad reply");
  }
  c->details = strndup((const char *)GRPC_SLICE_START_PTR(u->status_details),
                       GRPC_SLICE_LENGTH(u->status_details));
  if (u->recv) grpc_byte_buffer_destroy(u->recv);
  grpc_slice_unref(u->status_details);
  grpc_metadata_array_destroy(&u->initial_md);
  grpc_metadata_array_destroy(&u->trailing_md);
  grpc_byte_buffer_destroy(u->send);
  grpc_call_unref(u->call);
  u->call = NULL;
}

void ember_rpc_unary_many(ember_rpc_unary *calls, size_t n, int64_t timeout_ms) {
  ember_rpc_release_listener(); /* the replies may be slow: let others serve */
  grpc_completion_queue *cq = grpc_completion_queue_create_for_pluck(NULL);
  unary_state *st = calloc(n ? n : 1, sizeof *st);

  if (!st) abort();
  start_unary_calls(calls, st, n, cq, timeout_ms, NULL);
  for (size_t i = 0; i < n; i++) {
    if (st[i].started) grpc_completion_queue_pluck(cq, &st[i], INF, NULL); /* "always succeeds" */
    end_unary_call(&calls[i], &st[i]);
  }
  free(st);
  destroy_pluck_cq(cq);
}

static void async_group_unref(struct async_group *g) {
  if (atomic_fetch_sub(&g->pending, 1) != 1) return;
  void (*done)(void *) = g->done;
  void *arg = g->arg;
  free(g->st);
  free(g);
  done(arg);
}

/* A call of an async group ended: on the server thread that took its event. */
static void async_call_ended(void *tag) {
  unary_state *u = tag;
  struct async_group *g = u->group;
  end_unary_call(&g->calls[u - g->st], u);
  async_group_unref(g);
}

void ember_rpc_unary_many_async(ember_rpc_ctx *d, ember_rpc_unary *calls, size_t n,
                                int64_t timeout_ms, void (*done)(void *), void *arg) {
  struct async_group *g = calloc(1, sizeof *g);
  unary_state *st = calloc(n ? n : 1, sizeof *st);

  if (!g || !st) abort();
  g->calls = calls;
  g->st = st;
  g->done = done;
  g->arg = arg;
  atomic_init(&g->pending, 1);     /* held while the calls start */
  start_unary_calls(calls, st, n, d->server->cq, timeout_ms, g);
  for (size_t i = 0; i < n; i++)   /* those that never started end here */
    if (!st[i].started) end_unary_call(&calls[i], &st[i]);
  async_group_unref(g);
}
