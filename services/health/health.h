/* ember-health's two steps: read the command line, then ask one daemon over
 * gRPC whether it serves. For container health checks: the answer is the exit
 * status, the reason a line on stderr. */
#ifndef EMBER_HEALTH_H
#define EMBER_HEALTH_H

#include <stdint.h>

#include "error.h"

enum health_kind { HEALTH_MASTER, HEALTH_BLOCKD, HEALTH_WORKER };

struct health_args {
    enum health_kind kind;
    const char *address;   /* host:port of the daemon asked about (borrowed from argv) */
    const char *master;    /* --master, else EMBER_MASTER_ADDRESS: where a worker is looked up */
    int64_t timeout_ms;
};

int health_parse_args(int argc, char **argv, struct health_args *out) EMBER_MUST_CHECK;
/* 0 when the daemon answered as a healthy one does; otherwise EMBER_ERPC or
 * EMBER_ENOENT, with the reason already printed. */
int health_check(const struct health_args *args) EMBER_MUST_CHECK;

#endif
