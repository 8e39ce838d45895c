#define _GNU_SOURCE
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "error.h"

enum ember_log_level ember_log_threshold = EMBER_LOG_WARN;
static const char *log_daemon = "ember";

static const char *const level_names[] = {"ERROR", "WARN", "INFO", "DEBUG"};

void ember_log_init(const char *daemon_name, enum ember_log_level level)
{
    log_daemon = daemon_name;
    ember_log_threshold = level;
}

int ember_log_parse_level(const char *s, enum ember_log_level *out)
{
    static const char *const names[] = {"error", "warn", "info", "debug"};

    for (int i = 0; i < 4; i++) {
        if (strcasecmp(s, names[i]) == 0) {
            *out = (enum ember_log_level)i;
            return 0;
        }
    }
    return EMBER_EINVAL;
}

void ember_log_write(enum ember_log_level level, int with_errno, const char *fmt, ...)
{
    int saved_errno = errno;
    char line[2048];
    char when[32];
    struct timespec ts;
    struct tm tm;
    size_t n;
    va_list ap;

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
    n = (size_t)snprintf(line, sizeof(line), "%s.%03ldZ %s %s ", when, ts.tv_nsec / 1000000,
                         level_names[level], log_daemon);
    va_start(ap, fmt);
    if (n < sizeof(line))
        n += (size_t)vsnprintf(line + n, sizeof(line) - n, fmt, ap);
    va_end(ap);
    if (with_errno && n < sizeof(line))
        n += (size_t)snprintf(line + n, sizeof(line) - n, ": %s", strerror(saved_errno));
    if (n >= sizeof(line) - 1)
        n = sizeof(line) - 2;
    /* Messages may quote user text: keep the one-line-per-event promise. */
    for (size_t i = 0; i < n; i++)
        if (line[i] == '\n' || line[i] == '\r')
            line[i] = ' ';
    line[n++] = '\n';
    fwrite(line, 1, n, stderr);
    errno = saved_errno;
}
