/* security.h - the cluster's shared secret and TLS files, loaded once per
 * process before any thread starts and read-only afterwards. The rpc layer
 * uses them for every server and channel; the gateway for HTTP. Loading fails
 * with a sentence on stderr naming the variable or file at fault. */
#ifndef EMBER_SECURITY_H
#define EMBER_SECURITY_H

#include <stddef.h>

#include "error.h"

#define EMBER_SECRET_MIN_LEN 16
#define EMBER_AUTH_HEADER "authorization"   /* gRPC metadata key (lowercase) */

struct ember_security {
    const char *secret;        /* NULL: no access control */
    const char *bearer;        /* "Bearer <secret>", NULL without a secret */
    const char *tls_cert_pem;  /* this process serves TLS with cert + key ... */
    const char *tls_key_pem;
    const char *tls_ca_pem;    /* ... and trusts this CA as a client (the cert by default) */
    const char *tls_ca_file;   /* the file tls_ca_pem came from (for child processes) */
};

/* Where the settings come from; each may be NULL. The secret comes from the
 * EMBER_AUTH_SECRET variable or from secret_file (not both), is then removed
 * from the environment (children, such as user Python code, do not inherit it). */
struct ember_security_sources {
    const char *secret_file;
    const char *tls_cert_file, *tls_key_file, *tls_ca_file;
};

/* Loads and keeps the settings for this process. `who` prefixes messages.
 * Loading again replaces them (for tests; not while calls are made). */
int ember_security_load(const char *who, const struct ember_security_sources *src)
    EMBER_MUST_CHECK;
/* The settings in effect (all NULL before a load). Borrowed, lives forever. */
const struct ember_security *ember_security_get(void);

/* 1 when `value` (len bytes, not NUL-terminated) is "Bearer <secret>" of this
 * process, or when no secret is set. Constant time in the secret's content. */
int ember_security_bearer_ok(const char *value, size_t len);
/* Constant-time comparison of two byte strings (time depends on lengths only). */
int ember_security_equal(const char *a, size_t alen, const char *b, size_t blen);
/* A check of a secret's shape; NULL when fine, else a sentence (static). */
const char *ember_security_secret_problem(const char *secret);

#endif
