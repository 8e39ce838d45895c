#define _GNU_SOURCE
#include "daemon.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "log.h"
#include "security.h"
#include "util.h"

static const struct ember_option common_options[] = {
    {"log-level", "EMBER_LOG_LEVEL", "warn", "error, warn, info or debug"},
    {"ready-file", "EMBER_READY_FILE", NULL,
     "write the address this daemon serves on to this file once it is ready"},
    {"auth-secret-file", "EMBER_AUTH_SECRET_FILE", NULL,
     "file holding the cluster's shared secret (or set EMBER_AUTH_SECRET itself); when set, "
     "every call in and out carries it and calls without it are refused"},
    {"tls-cert", "EMBER_TLS_CERT", NULL,
     "PEM certificate: serve gRPC (and the gateway's HTTP) over TLS; needs --tls-key"},
    {"tls-key", "EMBER_TLS_KEY", NULL, "PEM private key of --tls-cert"},
    {"tls-ca", "EMBER_TLS_CA", NULL,
     "PEM CA certificate(s) to trust when calling other daemons over TLS "
     "(default: --tls-cert itself, for a self-signed certificate)"},
    {0},
};

static void add_options(struct ember_daemon *d, const struct ember_option *table)
{
    for (; table && table->name; table++) {
        if (d->n_options == EMBER_MAX_OPTIONS) {
            fprintf(stderr, "%s: too many options\n", d->name);
            abort();
        }
        d->options[d->n_options] = table;
        d->values[d->n_options] = table->def;
        d->n_options++;
    }
}

static void print_help(const struct ember_daemon *d)
{
    printf("Usage: %s [options]\n%s\n\nOptions (flag, environment variable, default):\n", d->name,
           d->description);
    for (int i = 0; i < d->n_options; i++) {
        const struct ember_option *o = d->options[i];
        printf("  --%-18s %s\n  %20s %s (default: %s)\n", o->name, o->help, "", o->env,
               o->def ? o->def : "none");
    }
    printf("  -v, --verbose        log at debug level\n  -h, --help           show this help\n");
}

static int find_option(const struct ember_daemon *d, const char *name)
{
    for (int i = 0; i < d->n_options; i++)
        if (strcmp(d->options[i]->name, name) == 0)
            return i;
    return -1;
}

static int parse_argv(struct ember_daemon *d, int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
            print_help(d);
            exit(0);
        }
        if (strcmp(arg, "-v") == 0 || strcmp(arg, "--verbose") == 0) {
            d->values[find_option(d, "log-level")] = "debug";
            continue;
        }
        if (strncmp(arg, "--", 2) != 0) {
            fprintf(stderr, "%s: unexpected argument '%s' (see --help)\n", d->name, arg);
            return EMBER_EINVAL;
        }
        const char *eq = strchr(arg + 2, '=');
        char name[64];
        size_t len = eq ? (size_t)(eq - arg - 2) : strlen(arg + 2);
        snprintf(name, sizeof(name), "%.*s", (int)len, arg + 2);
        int idx = find_option(d, name);
        if (idx < 0) {
            fprintf(stderr, "%s: unknown option '--%s' (see --help)\n", d->name, name);
            return EMBER_EINVAL;
        }
        if (eq) {
            d->values[idx] = eq + 1;
        } else if (i + 1 < argc) {
            d->values[idx] = argv[++i];
        } else {
            fprintf(stderr, "%s: option '--%s' needs a value\n", d->name, name);
            return EMBER_EINVAL;
        }
    }
    return 0;
}

static void apply_environment(struct ember_daemon *d)
{
    for (int i = 0; i < d->n_options; i++) {
        const char *v = d->options[i]->env ? getenv(d->options[i]->env) : NULL;
        if (v && *v)
            d->values[i] = v;
    }
}

/* A local cluster started by a driver script must not outlive it, even when
 * the script is SIGKILLed: the parent names itself in EMBER_PARENT_PID. */
static int follow_parent(void)
{
    const char *pp = getenv("EMBER_PARENT_PID");
    if (!pp || !*pp)
        return 0;
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != (pid_t)atoi(pp))
        return EMBER_EDEAD;
    return 0;
}

static int load_security(const struct ember_daemon *d)
{
    struct ember_security_sources src = {
        .secret_file = ember_daemon_opt(d, "auth-secret-file"),
        .tls_cert_file = ember_daemon_opt(d, "tls-cert"),
        .tls_key_file = ember_daemon_opt(d, "tls-key"),
        .tls_ca_file = ember_daemon_opt(d, "tls-ca"),
    };

    return ember_security_load(d->name, &src);
}

int ember_daemon_init(struct ember_daemon *d, const char *name, const char *description,
                      const struct ember_option *options, int argc, char **argv)
{
    enum ember_log_level level;

    memset(d, 0, sizeof(*d));
    d->name = name;
    d->description = description;
    add_options(d, common_options);
    add_options(d, options);
    apply_environment(d);
    if (parse_argv(d, argc, argv) != 0)
        return EMBER_EINVAL;
    if (ember_log_parse_level(ember_daemon_opt(d, "log-level"), &level) != 0) {
        fprintf(stderr, "%s: --log-level must be error, warn, info or debug\n", name);
        return EMBER_EINVAL;
    }
    ember_log_init(name, level);
    if (load_security(d) != 0)
        return EMBER_EINVAL;
    if (follow_parent() != 0) {
        fprintf(stderr, "%s: parent process already gone\n", name);
        return EMBER_EDEAD;
    }
    sigemptyset(&d->signals);
    sigaddset(&d->signals, SIGINT);
    sigaddset(&d->signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &d->signals, NULL);
    signal(SIGPIPE, SIG_IGN);
    pthread_mutex_init(&d->lock, NULL);
    pthread_cond_init(&d->wake, NULL);
    return 0;
}

const char *ember_daemon_opt(const struct ember_daemon *d, const char *name)
{
    int idx = find_option(d, name);
    if (idx < 0) {
        fprintf(stderr, "%s: internal error: no option '%s'\n", d->name, name);
        abort();
    }
    return d->values[idx];
}

int ember_daemon_opt_int(const struct ember_daemon *d, const char *name, int64_t *out)
{
    const char *v = ember_daemon_opt(d, name);
    char *end = NULL;
    long long n;

    if (!v)
        return EMBER_EINVAL;
    errno = 0;
    n = strtoll(v, &end, 10);
    if (errno || end == v || *end) {
        ember_log_error("option --%s: '%s' is not a whole number", name, v);
        return EMBER_EINVAL;
    }
    *out = n;
    return 0;
}

int ember_daemon_opt_size(const struct ember_daemon *d, const char *name, uint64_t *out)
{
    static const char units[] = "kmgt";
    const char *v = ember_daemon_opt(d, name);
    const char *unit;
    char *end = NULL;
    unsigned long long n;
    int shift = 0;

    if (!v)
        return EMBER_EINVAL;
    errno = 0;
    n = strtoull(v, &end, 10);
    if (errno == 0 && end != v && *v != '-' && *end && (unit = strchr(units, tolower(*end)))) {
        shift = 10 * (int)(unit - units + 1);
        end++;
        if (strcasecmp(end, "ib") == 0 || strcasecmp(end, "b") == 0)
            end += strlen(end);
    }
    if (errno || end == v || *v == '-' || *end || (shift && n > (UINT64_MAX >> shift))) {
        ember_log_error("option --%s: '%s' is not a size (bytes, or a number with k, m, g or "
                        "t: '512m')", name, v);
        return EMBER_EINVAL;
    }
    *out = (uint64_t)n << shift;
    return 0;
}

void ember_daemon_ready(const struct ember_daemon *d, const char *address)
{
    const char *path = ember_daemon_opt(d, "ready-file");
    char *tmp;
    FILE *fp;

    ember_log_info("listening on %s", address);
    if (!path)
        return;
    tmp = ember_xasprintf("%s.tmp", path);
    fp = fopen(tmp, "w");
    if (!fp || fprintf(fp, "%s\n", address) < 0 || fclose(fp) != 0 || rename(tmp, path) != 0)
        ember_log_error_errno("cannot write ready file %s", path);
    free(tmp);
}

int ember_daemon_run(struct ember_daemon *d)
{
    int sig = 0;

    while (sigwait(&d->signals, &sig) != 0) {
    }
    ember_log_info("signal %d received, shutting down", sig);
    pthread_mutex_lock(&d->lock);
    d->stopping = 1;
    pthread_cond_broadcast(&d->wake);
    pthread_mutex_unlock(&d->lock);
    return 0;
}

int ember_daemon_sleep(struct ember_daemon *d, int64_t ms)
{
    struct timespec deadline = ember_realtime_after_ms(ms);
    int stopping;

    pthread_mutex_lock(&d->lock);
    while (!d->stopping && pthread_cond_timedwait(&d->wake, &d->lock, &deadline) == 0) {
    }
    stopping = d->stopping;
    pthread_mutex_unlock(&d->lock);
    return stopping;
}

int ember_daemon_is_stopping(struct ember_daemon *d)
{
    int stopping;

    pthread_mutex_lock(&d->lock);
    stopping = d->stopping;
    pthread_mutex_unlock(&d->lock);
    return stopping;
}

void ember_daemon_fini(struct ember_daemon *d)
{
    pthread_mutex_destroy(&d->lock);
    pthread_cond_destroy(&d->wake);
}

char *ember_advertised_address(const char *listen, int bound_port, const char *advertise_host)
{
    const char *colon = strrchr(listen, ':');
    size_t host_len = colon ? (size_t)(colon - listen) : strlen(listen);

    if (advertise_host && *advertise_host)
        return ember_xasprintf("%s:%d", advertise_host, bound_port);
    if (host_len == 0 || strncmp(listen, "0.0.0.0", host_len) == 0)
        return ember_xasprintf("127.0.0.1:%d", bound_port);
    return ember_xasprintf("%.*s:%d", (int)host_len, listen, bound_port);
}
