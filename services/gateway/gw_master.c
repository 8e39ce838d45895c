/* Calls from the gateway to ember.Master, one function per method used. */
#define _GNU_SOURCE
#include "gw.h"

#include <stdlib.h>
#include <string.h>

#include "master.pb-c.h"

char *gw_master_peer(const struct gw *g)
{
    return ember_xasprintf("master at %s", g->master_addr);
}

enum MHD_Result gw_reply_master_error(struct gw_request *rq, grpc_status_code code,
                                      char *details)
{
    char *peer = gw_master_peer(rq->gw);
    enum MHD_Result ret = gw_reply_rpc_error(rq, code, details, peer);

    free(peer);
    free(details);
    return ret;
}

/* A unary Master call; on success *reply is new, *details stays NULL. */
static grpc_status_code call(struct gw *g, const char *method, const ProtobufCMessage *req,
                             ProtobufCMessage **reply, char **details)
{
    char *text = NULL;
    grpc_status_code code;

    code = ember_rpc_call(g->master, &ember__master__descriptor, method, req, reply, NULL, NULL,
                          GW_MASTER_TIMEOUT_MS, &text);
    if (code == GRPC_STATUS_OK) {
        free(text);
        return code;
    }
    *details = text ? text : ember_xstrdup("");
    return code;
}

/* Calls a method answering a JsonReply; on success *json is new. */
static grpc_status_code call_json(struct gw *g, const char *method, const ProtobufCMessage *req,
                                  char **json, char **details)
{
    ProtobufCMessage *reply = NULL;
    grpc_status_code code = call(g, method, req, &reply, details);

    if (code != GRPC_STATUS_OK)
        return code;
    *json = ember_xstrdup(((Ember__JsonReply *)reply)->json);
    protobuf_c_message_free_unpacked(reply, NULL);
    return code;
}

grpc_status_code gw_master_create_app(struct gw *g, const char *name, const char *user,
                                      const char *properties_json, char **app_id,
                                      char **details)
{
    Ember__CreateApplicationRequest req = EMBER__CREATE_APPLICATION_REQUEST__INIT;
    ProtobufCMessage *reply = NULL;
    grpc_status_code code;

    req.name = (char *)name;
    req.user = (char *)(user ? user : "");
    req.properties_json = (char *)(properties_json ? properties_json : "");
    code = call(g, "CreateApplication", &req.base, &reply, details);
    if (code != GRPC_STATUS_OK)
        return code;
    *app_id = ember_xstrdup(((Ember__CreateApplicationReply *)reply)->app_id);
    protobuf_c_message_free_unpacked(reply, NULL);
    return code;
}

grpc_status_code gw_master_end_app(struct gw *g, const char *app_id, char **details)
{
    Ember__AppRef req = EMBER__APP_REF__INIT;
    ProtobufCMessage *reply = NULL;
    grpc_status_code code;

    req.app_id = (char *)app_id;
    code = call(g, "EndApplication", &req.base, &reply, details);
    if (code == GRPC_STATUS_OK)
        protobuf_c_message_free_unpacked(reply, NULL);
    return code;
}

grpc_status_code gw_master_submit_job(struct gw *g, const char *app_id, const char *job_json,
                                      uint32_t *job_id, char **details)
{
    Ember__SubmitJobRequest req = EMBER__SUBMIT_JOB_REQUEST__INIT;
    ProtobufCMessage *reply = NULL;
    grpc_status_code code;

    req.app_id = (char *)app_id;
    req.job_json = (char *)job_json;
    code = call(g, "SubmitJob", &req.base, &reply, details);
    if (code != GRPC_STATUS_OK)
        return code;
    *job_id = ((Ember__SubmitJobReply *)reply)->job_id;
    protobuf_c_message_free_unpacked(reply, NULL);
    return code;
}

grpc_status_code gw_master_submit_job_and_wait(struct gw *g, const char *app_id,
                                               const char *job_json, int inline_results,
                                               uint32_t wait_ms, char **json, char **details)
{
    Ember__SubmitJobRequest req = EMBER__SUBMIT_JOB_REQUEST__INIT;

    req.app_id = (char *)app_id;
    req.job_json = (char *)job_json;
    req.wait_ms = wait_ms;
    req.inline_results = inline_results != 0;
    return call_json(g, "SubmitJobAndWait", &req.base, json, details);
}

grpc_status_code gw_master_get_job(struct gw *g, const char *app_id, uint32_t job_id,
                                   int inline_results, uint32_t wait_ms, char **json,
                                   char **details)
{
    Ember__JobRef req = EMBER__JOB_REF__INIT;

    req.wait_ms = wait_ms;
    req.app_id = (char *)app_id;
    req.job_id = job_id;
    req.inline_results = inline_results != 0;
    return call_json(g, "GetJob", &req.base, json, details);
}

grpc_status_code gw_master_cancel_job(struct gw *g, const char *app_id, uint32_t job_id,
                                      char **details)
{
    Ember__JobRef req = EMBER__JOB_REF__INIT;
    ProtobufCMessage *reply = NULL;
    grpc_status_code code;

    req.app_id = (char *)app_id;
    req.job_id = job_id;
    code = call(g, "CancelJob", &req.base, &reply, details);
    if (code == GRPC_STATUS_OK)
        protobuf_c_message_free_unpacked(reply, NULL);
    return code;
}

grpc_status_code gw_master_unpersist(struct gw *g, const char *app_id, uint32_t rdd_id,
                                     char **details)
{
    Ember__RddRef req = EMBER__RDD_REF__INIT;
    ProtobufCMessage *reply = NULL;
    grpc_status_code code;

    req.app_id = (char *)app_id;
    req.rdd_id = rdd_id;
    code = call(g, "Unpersist", &req.base, &reply, details);
    if (code == GRPC_STATUS_OK)
        protobuf_c_message_free_unpacked(reply, NULL);
    return code;
}

grpc_status_code gw_master_query(struct gw *g, const char *what, const char *app_id,
                                 int64_t id, char **json, char **details)
{
    Ember__QueryRequest req = EMBER__QUERY_REQUEST__INIT;

    req.what = (char *)what;
    req.app_id = (char *)(app_id ? app_id : "");
    req.id = id;
    return call_json(g, "Query", &req.base, json, details);
}

grpc_status_code gw_master_add_broadcast(struct gw *g, const char *app_id, uint32_t id,
                                         const char *block_id, const char *location,
                                         uint64_t size, char **details)
{
    Ember__AddBroadcastRequest req = EMBER__ADD_BROADCAST_REQUEST__INIT;
    ProtobufCMessage *reply = NULL;
    grpc_status_code code;

    req.app_id = (char *)app_id;
    req.broadcast_id = id;
    req.block_id = (char *)block_id;
    req.location = (char *)location;
    req.size = size;
    code = call(g, "AddBroadcast", &req.base, &reply, details);
    if (code == GRPC_STATUS_OK)
        protobuf_c_message_free_unpacked(reply, NULL);
    return code;
}

grpc_status_code gw_master_remove_broadcast(struct gw *g, const char *app_id, uint32_t id,
                                            int keep_source, char **details)
{
    Ember__RemoveBroadcastRequest req = EMBER__REMOVE_BROADCAST_REQUEST__INIT;
    ProtobufCMessage *reply = NULL;
    grpc_status_code code;

    req.app_id = (char *)app_id;
    req.broadcast_id = id;
    req.keep_source = keep_source;
    code = call(g, "RemoveBroadcast", &req.base, &reply, details);
    if (code == GRPC_STATUS_OK)
        protobuf_c_message_free_unpacked(reply, NULL);
    return code;
}

grpc_status_code gw_master_submit_driver(struct gw *g, const Ember__DriverSubmission *s,
                                         char **driver_id, char **details)
{
    ProtobufCMessage *reply = NULL;
    grpc_status_code code = call(g, "SubmitDriver", &s->base, &reply, details);

    if (code != GRPC_STATUS_OK)
        return code;
    *driver_id = ember_xstrdup(((Ember__DriverRef *)reply)->driver_id);
    protobuf_c_message_free_unpacked(reply, NULL);
    return code;
}

grpc_status_code gw_master_driver_json(struct gw *g, const char *method, const char *driver_id,
                                       char **json, char **details)
{
    Ember__DriverRef req = EMBER__DRIVER_REF__INIT;

    req.driver_id = (char *)driver_id;
    return call_json(g, method, &req.base, json, details);
}

grpc_status_code gw_master_driver_log(struct gw *g, const char *driver_id, const char *stream,
                                      uint64_t offset, Ember__DriverLogReply **reply,
                                      char **details)
{
    Ember__DriverLogRequest req = EMBER__DRIVER_LOG_REQUEST__INIT;

    req.driver_id = (char *)driver_id;
    req.stream = (char *)stream;
    req.offset = offset;
    return call(g, "DriverLog", &req.base, (ProtobufCMessage **)reply, details);
}
