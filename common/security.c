/* security.c - see security.h. */
#define _GNU_SOURCE
#include "security.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define MAX_FILE_BYTES (1 << 20)

static struct ember_security settings;

/* Strings of settings replaced by a later load (tests): gRPC may still point at
 * an old bearer string (a static slice), so they are kept, reachable, not freed. */
#define MAX_RETIRED 64
static const char *retired[MAX_RETIRED * 6];
static size_t n_retired;

static void retire_settings(void)
{
    const char *strings[] = {settings.secret, settings.bearer, settings.tls_cert_pem,
                             settings.tls_key_pem, settings.tls_ca_pem, settings.tls_ca_file};

    for (size_t i = 0; i < sizeof(strings) / sizeof(strings[0]); i++)
        if (strings[i] && n_retired < sizeof(retired) / sizeof(retired[0]))
            retired[n_retired++] = strings[i];
    memset(&settings, 0, sizeof(settings));
}

const struct ember_security *ember_security_get(void)
{
    return &settings;
}

int ember_security_equal(const char *a, size_t alen, const char *b, size_t blen)
{
    unsigned char diff = alen != blen;
    size_t n = alen < blen ? alen : blen;

    for (size_t i = 0; i < n; i++)
        diff |= (unsigned char)(a[i] ^ b[i]);
    return diff == 0;
}

int ember_security_bearer_ok(const char *value, size_t len)
{
    if (!settings.bearer)
        return 1;
    return value && ember_security_equal(value, len, settings.bearer, strlen(settings.bearer));
}

const char *ember_security_secret_problem(const char *secret)
{
    if (strlen(secret) < EMBER_SECRET_MIN_LEN)
        return "the shared secret is shorter than 16 characters";
    for (const char *p = secret; *p; p++)
        if (*p <= ' ' || *p > '~')
            return "the shared secret may hold only printable ASCII characters without spaces";
    return NULL;
}

/* A whole small file as a new string; NULL (message printed) on failure. */
static char *read_small_file(const char *who, const char *what, const char *path)
{
    FILE *fp = fopen(path, "rb");
    char *buf;
    size_t n;

    if (!fp) {
        fprintf(stderr, "%s: cannot read the %s %s: %s\n", who, what, path, strerror(errno));
        return NULL;
    }
    buf = ember_xmalloc(MAX_FILE_BYTES + 1);
    n = fread(buf, 1, MAX_FILE_BYTES + 1, fp);
    fclose(fp);
    if (n > MAX_FILE_BYTES || n == 0) {
        fprintf(stderr, "%s: the %s %s is %s\n", who, what, path,
                n ? "over 1 MiB" : "empty");
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    return ember_xrealloc(buf, n + 1);
}

static int load_secret(const char *who, const char *file)
{
    const char *env = getenv("EMBER_AUTH_SECRET");
    const char *problem;
    char *secret;

    if (env && *env && file && *file) {
        fprintf(stderr, "%s: both EMBER_AUTH_SECRET and a secret file (%s) are set; "
                "use one of them\n", who, file);
        return EMBER_EINVAL;
    }
    if (env && *env) {
        secret = ember_xstrdup(env);
    } else if (file && *file) {
        secret = read_small_file(who, "secret file", file);
        if (!secret)
            return EMBER_EIO;
        secret[strcspn(secret, "\r\n")] = '\0';  /* `echo secret > file` adds a newline */
    } else {
        return 0;
    }
    unsetenv("EMBER_AUTH_SECRET");
    problem = ember_security_secret_problem(secret);
    if (problem) {
        fprintf(stderr, "%s: %s (from %s)\n", who, problem,
                env && *env ? "EMBER_AUTH_SECRET" : file);
        free(secret);
        return EMBER_EINVAL;
    }
    settings.secret = secret;
    settings.bearer = ember_xasprintf("Bearer %s", secret);
    return 0;
}

static int load_tls(const char *who, const struct ember_security_sources *src)
{
    int has_cert = src->tls_cert_file && *src->tls_cert_file;
    int has_key = src->tls_key_file && *src->tls_key_file;
    const char *ca = src->tls_ca_file && *src->tls_ca_file ? src->tls_ca_file
                     : has_cert ? src->tls_cert_file : NULL;

    if (has_cert != has_key) {
        fprintf(stderr, "%s: TLS needs both a certificate (--tls-cert) and its key "
                "(--tls-key); only the %s is given\n", who, has_cert ? "certificate" : "key");
        return EMBER_EINVAL;
    }
    if (has_cert) {
        settings.tls_cert_pem = read_small_file(who, "TLS certificate", src->tls_cert_file);
        settings.tls_key_pem = read_small_file(who, "TLS key", src->tls_key_file);
        if (!settings.tls_cert_pem || !settings.tls_key_pem)
            return EMBER_EIO;
    }
    if (ca) {
        settings.tls_ca_pem = read_small_file(who, "TLS CA file", ca);
        if (!settings.tls_ca_pem)
            return EMBER_EIO;
        settings.tls_ca_file = ember_xstrdup(ca);
    }
    return 0;
}

int ember_security_load(const char *who, const struct ember_security_sources *src)
{
    int rc;

    retire_settings();
    rc = load_secret(who, src->secret_file);

    if (rc == 0)
        rc = load_tls(who, src);
    return rc;
}
