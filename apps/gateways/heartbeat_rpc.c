/*
 * apps/gateways/heartbeat_rpc.c - heartbeats as RPCs (heartbeat_rpc.h).
 */
#include "heartbeat_rpc.h"

fl_future_t *fg_heartbeat_send(fl_rpc_gateway_t *gw, unsigned method,
                               const fl_heartbeat_msg_t *msg)
{
    Fling__Cluster__Heartbeat req = FLING__CLUSTER__HEARTBEAT__INIT;
    Fling__Cluster__HeartbeatTiming tm = FLING__CLUSTER__HEARTBEAT_TIMING__INIT;
    req.origin = (char *)msg->origin;
    req.target = (char *)msg->target;
    req.payload.data = (uint8_t *)msg->payload;
    req.payload.len = msg->payload_len;
    if (msg->timing != NULL) {
        tm.interval_ms = msg->timing->interval_ms;
        tm.timeout_ms = msg->timing->timeout_ms;
        req.timing = &tm;
    }
    fl_future_t *f = NULL;
    if (fl_rpc_call(gw, method, &req.base, 0, &f) != FL_OK)
        return NULL;
    return f;
}

void fg_heartbeat_answer(fl_heartbeat_manager_t *hb, bool request,
                         const Fling__Cluster__Heartbeat *req,
                         Fling__Cluster__Ack_Closure closure, void *call)
{
    fl_heartbeat_timing_t tm;
    fl_heartbeat_msg_t msg = {
        .origin = req->origin,
        .target = req->target,
        .payload = req->payload.data,
        .payload_len = req->payload.len,
    };
    if (req->timing != NULL) {
        tm.interval_ms = req->timing->interval_ms;
        tm.timeout_ms = req->timing->timeout_ms;
        msg.timing = &tm;
    }
    char why[512];
    int rc = request ? fl_heartbeat_receive_request(hb, &msg, why, sizeof why)
                     : fl_heartbeat_receive_response(hb, &msg, why, sizeof why);
    if (rc == FL_EINVAL) {
        fl_rpc_fail(call, rc, "%s", why);
        return;
    }
    Fling__Cluster__Ack ack = FLING__CLUSTER__ACK__INIT;
    closure(&ack, call);
}
