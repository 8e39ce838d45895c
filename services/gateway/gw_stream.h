/* A server-streaming gRPC call read one message at a time, when the caller
 * wants the next one: a slow reader holds one message and gRPC's flow control
 * holds back the sender (common/rpc.h's ember_rpc_call pushes every message
 * through a callback instead). One thread at a time drives a stream; a failed
 * call shows as the end of the stream with a non-OK status. */
#ifndef EMBER_GW_STREAM_H
#define EMBER_GW_STREAM_H

#include <stdint.h>
#include <grpc/grpc.h>
#include <protobuf-c/protobuf-c.h>

#include "error.h"

struct gw_stream;

/* Starts `method` of `svc` with req (borrowed; packed before returning). The
 * whole call must end within deadline_ms. Returns a new stream; close it with
 * gw_stream_close. */
struct gw_stream *gw_stream_open(grpc_channel *ch, const ProtobufCServiceDescriptor *svc,
                                 const char *method, const ProtobufCMessage *req,
                                 int64_t deadline_ms);
/* Waits up to wait_ms for the next message. 1: *msg is new (free it with
 * protobuf_c_message_free_unpacked). 0: the stream ended; see
 * gw_stream_status. Waiting longer than wait_ms ends the stream with
 * GRPC_STATUS_DEADLINE_EXCEEDED. */
int gw_stream_next(struct gw_stream *s, int64_t wait_ms, ProtobufCMessage **msg)
    EMBER_MUST_CHECK;
/* After gw_stream_next returned 0: the call's status; *details (may be NULL)
 * is borrowed from s, "" when the peer gave none. */
grpc_status_code gw_stream_status(const struct gw_stream *s, const char **details);
/* Cancels the call if it still runs and frees everything. NULL-safe. */
void gw_stream_close(struct gw_stream *s);

#endif
