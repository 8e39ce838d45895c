#define _GNU_SOURCE
#include "util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>

const char *ember_strerror(int rc)
{
    switch (rc) {
    case EMBER_OK: return "success";
    case EMBER_EINVAL: return "invalid argument";
    case EMBER_EIO: return "input/output error";
    case EMBER_ENOENT: return "not found";
    case EMBER_EEOF: return "end of stream";
    case EMBER_ERPC: return "remote call failed";
    case EMBER_ETOOBIG: return "over the size limit";
    case EMBER_EDEAD: return "peer process died";
    default: return "unknown error";
    }
}

static void out_of_memory(size_t n)
{
    fprintf(stderr, "fatal: out of memory allocating %zu bytes\n", n);
    abort();
}

void *ember_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        out_of_memory(n);
    return p;
}

void *ember_xcalloc(size_t count, size_t n)
{
    void *p = calloc(count ? count : 1, n ? n : 1);
    if (!p)
        out_of_memory(count * n);
    return p;
}

void *ember_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        out_of_memory(n);
    return q;
}

char *ember_xstrdup(const char *s)
{
    char *p = strdup(s ? s : "");
    if (!p)
        out_of_memory(strlen(s));
    return p;
}

char *ember_xasprintf(const char *fmt, ...)
{
    va_list ap;
    char *s = NULL;
    int n;

    va_start(ap, fmt);
    n = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (n < 0)
        out_of_memory(0);
    return s;
}

void ember_buf_init(struct ember_buf *b, size_t cap)
{
    memset(b, 0, sizeof(*b));
    b->cap = cap;
}

int ember_buf_append(struct ember_buf *b, const void *p, size_t n)
{
    size_t want = b->len + n;

    if (b->cap && want > b->cap)
        return EMBER_ETOOBIG;
    if (want > b->alloc) {
        size_t alloc = b->alloc ? b->alloc : 256;
        while (alloc < want)
            alloc *= 2;
        if (b->cap && alloc > b->cap)
            alloc = b->cap;
        b->data = ember_xrealloc(b->data, alloc);
        b->alloc = alloc;
    }
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len = want;
    return 0;
}

uint8_t *ember_buf_steal(struct ember_buf *b, size_t *len)
{
    uint8_t *p = b->data;

    *len = b->len;
    b->data = NULL;
    b->len = b->alloc = 0;
    return p;
}

void ember_buf_free(struct ember_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->alloc = 0;
}

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *ember_base64_encode(const uint8_t *p, size_t n)
{
    char *out = ember_xmalloc(4 * ((n + 2) / 3) + 1);
    size_t i, o = 0;

    for (i = 0; i + 2 < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        out[o++] = b64_alphabet[v >> 18];
        out[o++] = b64_alphabet[(v >> 12) & 63];
        out[o++] = b64_alphabet[(v >> 6) & 63];
        out[o++] = b64_alphabet[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0);
        out[o++] = b64_alphabet[v >> 18];
        out[o++] = b64_alphabet[(v >> 12) & 63];
        out[o++] = i + 1 < n ? b64_alphabet[(v >> 6) & 63] : '=';
        out[o++] = '=';
    }
    out[o] = '\0';
    return out;
}

/* 1 + the value of each base64 character, 0 for every other byte: a lookup
 * per character (decoding is on the master's path for every job's functions
 * and data). */
static const uint8_t b64_value_plus1[256] = {
    ['A'] = 1, ['B'] = 2, ['C'] = 3, ['D'] = 4, ['E'] = 5, ['F'] = 6, ['G'] = 7, ['H'] = 8,
    ['I'] = 9, ['J'] = 10, ['K'] = 11, ['L'] = 12, ['M'] = 13, ['N'] = 14, ['O'] = 15, ['P'] = 16,
    ['Q'] = 17, ['R'] = 18, ['S'] = 19, ['T'] = 20, ['U'] = 21, ['V'] = 22, ['W'] = 23, ['X'] = 24,
    ['Y'] = 25, ['Z'] = 26, ['a'] = 27, ['b'] = 28, ['c'] = 29, ['d'] = 30, ['e'] = 31, ['f'] = 32,
    ['g'] = 33, ['h'] = 34, ['i'] = 35, ['j'] = 36, ['k'] = 37, ['l'] = 38, ['m'] = 39, ['n'] = 40,
    ['o'] = 41, ['p'] = 42, ['q'] = 43, ['r'] = 44, ['s'] = 45, ['t'] = 46, ['u'] = 47, ['v'] = 48,
    ['w'] = 49, ['x'] = 50, ['y'] = 51, ['z'] = 52, ['0'] = 53, ['1'] = 54, ['2'] = 55, ['3'] = 56,
    ['4'] = 57, ['5'] = 58, ['6'] = 59, ['7'] = 60, ['8'] = 61, ['9'] = 62, ['+'] = 63, ['/'] = 64
};

static int b64_value(char c)
{
    return (int)b64_value_plus1[(unsigned char)c] - 1;
}

size_t ember_utf8_len(const unsigned char *s)
{
    unsigned c = s[0], cp;
    size_t n;

    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        n = 2, cp = c & 0x1F;
    else if (c >= 0xE0 && c <= 0xEF)
        n = 3, cp = c & 0x0F;
    else if (c >= 0xF0 && c <= 0xF4)
        n = 4, cp = c & 0x07;
    else
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10FFFF))
        || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return n;
}

int ember_is_utf8(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;

    while (*p) {
        size_t n = ember_utf8_len(p);
        if (!n)
            return 0;
        p += n;
    }
    return 1;
}

int ember_base64_decode(const char *s, size_t n, uint8_t **out, size_t *out_len)
{
    uint8_t *buf;
    size_t i, o = 0;

    if (n % 4 != 0)
        return EMBER_EINVAL;
    buf = ember_xmalloc(n / 4 * 3 + 1);
    for (i = 0; i < n; i += 4) {
        int a = b64_value(s[i]), b = b64_value(s[i + 1]);
        int c = s[i + 2] == '=' ? 0 : b64_value(s[i + 2]);
        int d = s[i + 3] == '=' ? 0 : b64_value(s[i + 3]);
        int last = i + 4 == n;
        if (a < 0 || b < 0 || c < 0 || d < 0 || (!last && (s[i + 2] == '=' || s[i + 3] == '='))
            || (s[i + 2] == '=' && s[i + 3] != '=')) {
            free(buf);
            return EMBER_EINVAL;
        }
        uint32_t v = (uint32_t)a << 18 | (uint32_t)b << 12 | (uint32_t)c << 6 | (uint32_t)d;
        buf[o++] = (uint8_t)(v >> 16);
        if (s[i + 2] != '=')
            buf[o++] = (uint8_t)(v >> 8);
        if (s[i + 3] != '=')
            buf[o++] = (uint8_t)v;
    }
    *out = buf;
    *out_len = o;
    return 0;
}

uint64_t ember_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint64_t incarnation;
static pthread_once_t incarnation_once = PTHREAD_ONCE_INIT;

static void set_incarnation(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    incarnation = ((uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000) ^
                  ((uint64_t)getpid() << 44);
}

uint64_t ember_incarnation(void)
{
    pthread_once(&incarnation_once, set_incarnation);
    return incarnation;
}

struct timespec ember_realtime_after_ms(int64_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

uint64_t ember_monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

char *ember_address_host(const char *address)
{
    const char *colon = strrchr(address, ':');
    size_t n = colon ? (size_t)(colon - address) : strlen(address);
    char *host = ember_xmalloc(n + 1);

    memcpy(host, address, n);
    host[n] = '\0';
    return host;
}

int ember_is_secret_key(const char *key)
{
    static const char *const words[] = {"secret", "password", "token", "credential"};

    for (size_t i = 0; key && i < sizeof(words) / sizeof(words[0]); i++)
        if (strcasestr(key, words[i]))
            return 1;
    return 0;
}

const char *ember_shown_value(const char *key, const char *value)
{
    return value && ember_is_secret_key(key) ? EMBER_REDACTED : value;
}
