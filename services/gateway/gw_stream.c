/* Pull-style server streaming on gRPC core: three batches on a pluck queue
 * (send the request, receive one message at a time, receive the status),
 * each plucked only by the thread driving the stream. */
#define _GNU_SOURCE
#include "gw_stream.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rpc.h"
#include "util.h"

#define INF gpr_inf_future(GPR_CLOCK_REALTIME)

struct gw_stream {
    grpc_completion_queue *cq;
    grpc_call *call;
    const ProtobufCMessageDescriptor *out;
    grpc_byte_buffer *send, *recv;
    grpc_metadata_array initial_md, trailing_md;
    grpc_metadata auth;            /* the shared secret, sent with the request */
    grpc_status_code status;
    grpc_slice status_details;
    char *details;             /* a copy of status_details once ended */
    int start_pending;         /* batches started and not plucked yet */
    int status_pending;
    int ended;
    char tag_start, tag_msg, tag_status;   /* their addresses are the batch tags */
};

static void pluck(struct gw_stream *s, void *tag)
{
    grpc_completion_queue_pluck(s->cq, tag, INF, NULL);
}

/* Collects the outstanding batches and the status. */
static void finish(struct gw_stream *s)
{
    if (s->start_pending)
        pluck(s, &s->tag_start);
    if (s->status_pending)
        pluck(s, &s->tag_status);
    s->start_pending = s->status_pending = 0;
    s->details = strndup((const char *)GRPC_SLICE_START_PTR(s->status_details),
                         GRPC_SLICE_LENGTH(s->status_details));
    s->ended = 1;
}

static int start(struct gw_stream *s, grpc_op *ops, size_t n, void *tag)
{
    return grpc_call_start_batch(s->call, ops, n, tag, NULL) == GRPC_CALL_OK;
}

/* The request batch and the status batch, started at once. */
static int start_call(struct gw_stream *s)
{
    grpc_op ops[4], st;

    memset(ops, 0, sizeof(ops));
    memset(&st, 0, sizeof(st));
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ember_rpc_add_auth(&ops[0], &s->auth);
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = s->send;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &s->initial_md;
    s->start_pending = start(s, ops, 4, &s->tag_start);
    st.op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    st.data.recv_status_on_client.trailing_metadata = &s->trailing_md;
    st.data.recv_status_on_client.status = &s->status;
    st.data.recv_status_on_client.status_details = &s->status_details;
    s->status_pending = start(s, &st, 1, &s->tag_status);
    return s->start_pending && s->status_pending;
}

struct gw_stream *gw_stream_open(grpc_channel *ch, const ProtobufCServiceDescriptor *svc,
                                 const char *method, const ProtobufCMessage *req,
                                 int64_t deadline_ms)
{
    struct gw_stream *s = ember_xcalloc(1, sizeof(*s));
    const ProtobufCMethodDescriptor *md =
        protobuf_c_service_descriptor_get_method_by_name(svc, method);
    char path[256];
    grpc_slice slice;

    grpc_metadata_array_init(&s->initial_md);
    grpc_metadata_array_init(&s->trailing_md);
    s->status = GRPC_STATUS_UNIMPLEMENTED;
    s->status_details = grpc_slice_from_static_string("method not in service descriptor");
    s->cq = grpc_completion_queue_create_for_pluck(NULL);
    if (!md) {
        finish(s);
        return s;
    }
    s->out = md->output;
    s->send = ember_rpc_pack(req);
    snprintf(path, sizeof(path), "/%s/%s", svc->name, md->name);
    slice = grpc_slice_from_copied_string(path);
    s->call = grpc_channel_create_call(ch, NULL, GRPC_PROPAGATE_DEFAULTS, s->cq, slice, NULL,
                                       ember_rpc_deadline_after_ms(deadline_ms), NULL);
    grpc_slice_unref(slice);
    grpc_slice_unref(s->status_details);
    s->status_details = grpc_empty_slice();
    s->status = GRPC_STATUS_INTERNAL;  /* until the status batch overwrites it */
    if (!start_call(s)) {
        grpc_call_cancel_with_status(s->call, GRPC_STATUS_INTERNAL, "cannot start the call", NULL);
        finish(s);
    }
    return s;
}

/* Waits for the message batch just started; past wait_ms the call is cancelled. */
static grpc_event wait_message(struct gw_stream *s, int64_t wait_ms)
{
    grpc_event ev = grpc_completion_queue_pluck(s->cq, &s->tag_msg,
                                                ember_rpc_deadline_after_ms(wait_ms), NULL);

    if (ev.type == GRPC_QUEUE_TIMEOUT) {
        grpc_call_cancel_with_status(s->call, GRPC_STATUS_DEADLINE_EXCEEDED,
                                     "the peer sent nothing in time", NULL);
        ev = grpc_completion_queue_pluck(s->cq, &s->tag_msg, INF, NULL);
    }
    return ev;
}

int gw_stream_next(struct gw_stream *s, int64_t wait_ms, ProtobufCMessage **msg)
{
    grpc_op op;
    grpc_event ev;
    ProtobufCMessage *m = NULL;

    if (s->ended)
        return 0;
    memset(&op, 0, sizeof(op));
    op.op = GRPC_OP_RECV_MESSAGE;
    op.data.recv_message.recv_message = &s->recv;
    if (!start(s, &op, 1, &s->tag_msg)) {
        grpc_call_cancel_with_status(s->call, GRPC_STATUS_INTERNAL, "cannot receive", NULL);
        finish(s);
        return 0;
    }
    ev = wait_message(s, wait_ms);
    if (ev.success && s->recv) {
        m = ember_rpc_unpack(s->out, s->recv);
        if (!m)
            grpc_call_cancel_with_status(s->call, GRPC_STATUS_INTERNAL,
                                         "the peer sent a message that does not parse", NULL);
    }
    if (s->recv)
        grpc_byte_buffer_destroy(s->recv);
    s->recv = NULL;
    if (m) {
        *msg = m;
        return 1;
    }
    finish(s);                         /* end of stream, or the call failed */
    return 0;
}

grpc_status_code gw_stream_status(const struct gw_stream *s, const char **details)
{
    if (details)
        *details = s->details;
    return s->status;
}

void gw_stream_close(struct gw_stream *s)
{
    if (!s)
        return;
    if (!s->ended) {
        grpc_call_cancel_with_status(s->call, GRPC_STATUS_CANCELLED, "the reader went away",
                                     NULL);
        finish(s);
    }
    if (s->call)
        grpc_call_unref(s->call);
    if (s->send)
        grpc_byte_buffer_destroy(s->send);
    grpc_slice_unref(s->status_details);
    grpc_metadata_array_destroy(&s->initial_md);
    grpc_metadata_array_destroy(&s->trailing_md);
    grpc_completion_queue_shutdown(s->cq);
    while (grpc_completion_queue_pluck(s->cq, NULL, INF, NULL).type != GRPC_QUEUE_SHUTDOWN)
        continue;
    grpc_completion_queue_destroy(s->cq);
    free(s->details);
    free(s);
}
