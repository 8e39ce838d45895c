/* What the daemon fuzzers share: starting a real daemon inside the fuzzer
 * process (loopback, free port, quiet logs, peers at a closed port) and
 * feeding one fuzzed request to one of its gRPC methods through the server's
 * own method table (ember_rpc_server_invoke), so a method added to a daemon is
 * fuzzed without touching the fuzzers. Any failure to set up aborts. */
#ifndef EMBER_FUZZ_DAEMON_H
#define EMBER_FUZZ_DAEMON_H

#include <stddef.h>
#include <stdint.h>

#include "daemon.h"
#include "rpc.h"

/* A port nothing listens on: peers there refuse at once. */
#define FUZZ_CLOSED_PEER "127.0.0.1:1"

/* ember_daemon_init with argv {name, args..., NULL}, logging errors only
 * (FUZZ_LOG_LEVEL=debug says more). */
void fuzz_daemon_init(struct ember_daemon *d, const char *name,
                      const struct ember_option *options, const char *const *args);
/* A ready file for a daemon of this process (new string); fuzz_ready_port
 * reads the port the daemon wrote there and removes the file. */
char *fuzz_ready_file(const char *name);
int fuzz_ready_port(const char *ready_file);
/* Makes ember_daemon_is_stopping true, as SIGTERM would, so its threads end. */
void fuzz_daemon_stop(struct ember_daemon *d);

/* Rewrites a request before it is sent (e.g. a placeholder id into a real one). */
typedef void (*fuzz_fix_fn)(ProtobufCMessage *req, void *user);

/* Input: one byte choosing the method (modulo the server's methods), then the
 * serialized request. Runs the handler and checks the outcome: a failed call
 * must name its problem (non-empty details). Returns the method index run. */
size_t fuzz_rpc_input(ember_rpc_server *s, const ProtobufCServiceDescriptor *svc,
                      const uint8_t *data, size_t size, fuzz_fix_fn fix, void *user);

/* Sets the string field `name` of msg to value when it holds `placeholder`. */
void fuzz_replace_string(ProtobufCMessage *msg, const char *name, const char *placeholder,
                         const char *value);

#endif
