/* Small helpers every daemon uses: allocation that aborts on OOM, growable
 * byte buffers with a cap, base64, clocks. Nothing here fails except
 * ember_buf_append past its cap (EMBER_ETOOBIG). */
#ifndef EMBER_UTIL_H
#define EMBER_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "error.h"

void *ember_xmalloc(size_t n);
void *ember_xcalloc(size_t count, size_t n);
void *ember_xrealloc(void *p, size_t n);
char *ember_xstrdup(const char *s);
/* Returns a new string formatted as printf would; the caller frees it. */
char *ember_xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A growable byte buffer. cap is the most it may ever hold (0: no cap). */
struct ember_buf {
    uint8_t *data;
    size_t len;
    size_t alloc;
    size_t cap;
};
void ember_buf_init(struct ember_buf *b, size_t cap);
int ember_buf_append(struct ember_buf *b, const void *p, size_t n) EMBER_MUST_CHECK;
/* Hands the bytes to the caller (who frees them) and empties the buffer. */
uint8_t *ember_buf_steal(struct ember_buf *b, size_t *len);
void ember_buf_free(struct ember_buf *b);

/* base64 (RFC 4648, with padding). Decode returns EMBER_EINVAL on bad input;
 * on success *out is new (caller frees), *out_len its length. */
char *ember_base64_encode(const uint8_t *p, size_t n);
int ember_base64_decode(const char *s, size_t n, uint8_t **out, size_t *out_len) EMBER_MUST_CHECK;

/* Length (1 to 4) of the UTF-8 sequence at s, or 0 when it is not one
 * (RFC 3629: no overlong forms, surrogates or code points over U+10FFFF; the
 * sequences jansson's json_string accepts). An ASCII byte, NUL included, is 1. */
size_t ember_utf8_len(const unsigned char *s);
/* Whether the NUL-terminated s is well-formed UTF-8 throughout (ember_utf8_len). */
int ember_is_utf8(const char *s);

/* The host part of "host:port" as a new string. */
char *ember_address_host(const char *address);

/* Settings whose values are never shown (UI, API, logs): a key containing
 * secret, password, token or credential, in any case. */
#define EMBER_REDACTED "*********(redacted)"
int ember_is_secret_key(const char *key);
/* value, or EMBER_REDACTED when key is a secret's (borrowed either way). */
const char *ember_shown_value(const char *key, const char *value);

uint64_t ember_now_ms(void);        /* wall clock, ms since the epoch */
uint64_t ember_monotonic_ms(void);  /* for durations and timeouts */
/* The CLOCK_REALTIME time ms from now: pthread_cond_timedwait's deadline. */
struct timespec ember_realtime_after_ms(int64_t ms);
/* This process's start time in microseconds mixed with its pid, fixed at the
 * first call: tells a restarted daemon from the one before it. */
uint64_t ember_incarnation(void);

#endif
