/*
 * apps/gateways/heartbeat_rpc.h - the cluster's heartbeats as RPCs: a
 * heartbeat manager's message (fling/heartbeat.h) sent as the gateways'
 * Heartbeat message, and a Heartbeat call answered by passing it to the
 * manager. Every gateway method named Heartbeat* uses these two.
 */
#ifndef FLING_APPS_HEARTBEAT_RPC_H
#define FLING_APPS_HEARTBEAT_RPC_H

#include <stdbool.h>

#include <fling/cluster.h>

#include "cluster_types.pb-c.h"

/*
 * fg_heartbeat_send calls method (an index of gw's service, a method that
 * takes a Heartbeat) with msg's origin, target, payload and timing.
 * Returns the call's future (the caller owns it; the heartbeat manager
 * takes it from a send callback), or NULL when the call could not be made
 * (fl_rpc_last_message() says why). Main thread of the caller's endpoint;
 * never blocks.
 */
fl_future_t *fg_heartbeat_send(fl_rpc_gateway_t *gw, unsigned method,
                               const fl_heartbeat_msg_t *msg);

/*
 * fg_heartbeat_answer hands the Heartbeat req to hb, as a request from a
 * sender (request true: the receiver side) or as the answer of a target
 * (false: the sender side), then acknowledges the call. A pair of timings
 * that cannot work fails the call with FL_EINVAL and the manager's reason.
 * Main thread of the endpoint that owns hb (a gateway method); never
 * blocks.
 */
void fg_heartbeat_answer(fl_heartbeat_manager_t *hb, bool request,
                         const Fling__Cluster__Heartbeat *req,
                         Fling__Cluster__Ack_Closure closure, void *call);

#endif
