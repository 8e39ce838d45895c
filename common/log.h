/* One line per event on stderr: time, level, daemon, then the message (which
 * starts with key=value ids by convention). The macros test the level before
 * formatting, so debug lines cost nothing when quiet. */
#ifndef EMBER_LOG_H
#define EMBER_LOG_H

enum ember_log_level { EMBER_LOG_ERROR, EMBER_LOG_WARN, EMBER_LOG_INFO, EMBER_LOG_DEBUG };

extern enum ember_log_level ember_log_threshold;

void ember_log_init(const char *daemon_name, enum ember_log_level level);
/* Parses "error", "warn", "info" or "debug"; EMBER_EINVAL otherwise. */
int ember_log_parse_level(const char *s, enum ember_log_level *out);
void ember_log_write(enum ember_log_level level, int with_errno, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define EMBER_LOG_AT(level, with_errno, ...)                                                       \
    do {                                                                                           \
        if ((level) <= ember_log_threshold)                                                        \
            ember_log_write((level), (with_errno), __VA_ARGS__);                                   \
    } while (0)

#define ember_log_error(...) EMBER_LOG_AT(EMBER_LOG_ERROR, 0, __VA_ARGS__)
#define ember_log_error_errno(...) EMBER_LOG_AT(EMBER_LOG_ERROR, 1, __VA_ARGS__)
#define ember_log_warn(...) EMBER_LOG_AT(EMBER_LOG_WARN, 0, __VA_ARGS__)
#define ember_log_warn_errno(...) EMBER_LOG_AT(EMBER_LOG_WARN, 1, __VA_ARGS__)
#define ember_log_info(...) EMBER_LOG_AT(EMBER_LOG_INFO, 0, __VA_ARGS__)
#define ember_log_debug(...) EMBER_LOG_AT(EMBER_LOG_DEBUG, 0, __VA_ARGS__)

#endif
