/* ember-blockd: serves the BlockManager gRPC service over a blockd_store and
 * keeps itself registered with the master (heartbeat thread, which also reports
 * the blocks dropped under memory pressure). A blockd owns its server, store
 * (with its spill directory), master channel and thread. blockd_create fails on
 * bad options, when the listen address cannot be bound or the spill directory
 * cannot be made; the master may be down. */
#ifndef EMBER_BLOCKD_H
#define EMBER_BLOCKD_H

#include "daemon.h"
#include "rpc.h"

struct blockd;

/* The daemon's options, for ember_daemon_init. */
extern const struct ember_option blockd_options[];

/* Starts serving and registering; borrows `d`, which must outlive the blockd.
 * On success *out is new (stop and free it with blockd_destroy after
 * ember_daemon_run returned); on failure nothing is left to clean up. */
int blockd_create(struct ember_daemon *d, struct blockd **out) EMBER_MUST_CHECK;
/* Stops the heartbeat thread (the daemon must be stopping), cancels calls in
 * flight and frees everything. NULL is fine. */
void blockd_destroy(struct blockd *b);
/* The BlockManager server of b (borrowed): fuzzers call its handlers directly. */
ember_rpc_server *blockd_rpc_server(struct blockd *b);

#endif
