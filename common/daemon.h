/* What every Ember daemon does the same way: its option table (flag, EMBER_*
 * variable, default, help), --help, logging setup, signal handling (SIGINT and
 * SIGTERM end ember_daemon_run), the ready file and dying with a parent.
 * Options: flag wins over the environment variable, which wins over the default. */
#ifndef EMBER_DAEMON_H
#define EMBER_DAEMON_H

#include <pthread.h>
#include <signal.h>
#include <stdint.h>

#include "error.h"

struct ember_option {
    const char *name;   /* long flag without dashes: "listen" for --listen */
    const char *env;    /* environment fallback, e.g. "EMBER_MASTER_LISTEN" */
    const char *def;    /* default value, NULL for none */
    const char *help;
};

#define EMBER_MAX_OPTIONS 32

struct ember_daemon {
    const char *name;
    const char *description;
    const struct ember_option *options[EMBER_MAX_OPTIONS];
    const char *values[EMBER_MAX_OPTIONS];  /* borrowed from argv/environ/defaults */
    int n_options;
    sigset_t signals;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    int stopping;
};

/* Parses argv against the common options plus `options` (ended by a zeroed
 * entry). Prints --help and exits 0; prints a usage error and returns
 * EMBER_EINVAL. Blocks SIGINT/SIGTERM in every thread created afterwards: call
 * it before grpc_init and before starting any thread. */
int ember_daemon_init(struct ember_daemon *d, const char *name, const char *description,
                      const struct ember_option *options, int argc, char **argv) EMBER_MUST_CHECK;
/* The value of option `name` (NULL when unset); aborts on a name not in the table. */
const char *ember_daemon_opt(const struct ember_daemon *d, const char *name);
/* Integer option; logs and returns EMBER_EINVAL on a non-number. */
int ember_daemon_opt_int(const struct ember_daemon *d, const char *name, int64_t *out) EMBER_MUST_CHECK;
/* Size option in bytes: a whole number with an optional binary suffix k, m, g
 * or t (any case, "512m", "2G", "64KiB"); logs and returns EMBER_EINVAL
 * otherwise. */
int ember_daemon_opt_size(const struct ember_daemon *d, const char *name, uint64_t *out)
    EMBER_MUST_CHECK;
/* Writes `address` to --ready-file (atomically) once the daemon serves. */
void ember_daemon_ready(const struct ember_daemon *d, const char *address);
/* Waits for SIGINT/SIGTERM, then wakes every ember_daemon_sleep. */
int ember_daemon_run(struct ember_daemon *d);
/* Sleeps up to ms; returns 1 early when the daemon is stopping. */
int ember_daemon_sleep(struct ember_daemon *d, int64_t ms);
int ember_daemon_is_stopping(struct ember_daemon *d);
void ember_daemon_fini(struct ember_daemon *d);

/* "host:port" of a listen address like "0.0.0.0:7077" as peers should dial it. */
char *ember_advertised_address(const char *listen, int bound_port, const char *advertise_host);

#endif
