/* A quicker json_loads for the job descriptions the master parses per job
 * (~2 KB, most of it base64 in long strings, which jansson reads a byte at a
 * time). It takes the common subset only: objects, arrays, strings whose
 * escapes are the one-character ones, integers of at most 18 digits, true,
 * false, null. On anything else (a \u escape, a real number, bad input) it
 * gives up and jansson parses the text, so every verdict and error message is
 * jansson's own; tests/unit/test_master_json_parse.c holds the trees it builds
 * against jansson's. */
#define _GNU_SOURCE
#include "master.h"

#include <string.h>

#include "json_plain.h"

#define MAX_DEPTH 64                   /* deeper: jansson's turn (its limit is 2048) */

struct parser {
    const unsigned char *p;
    const unsigned char *end;          /* the text's terminating NUL */
    char *scratch;                     /* unescaped strings */
    size_t cap;
};

static void skip_space(struct parser *ps)
{
    while (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r')
        ps->p++;
}

static void scratch_add(struct parser *ps, size_t *len, const void *s, size_t n)
{
    if (*len + n + 1 > ps->cap) {
        ps->cap = (*len + n + 1) * 2;
        ps->scratch = ember_xrealloc(ps->scratch, ps->cap);
    }
    memcpy(ps->scratch + *len, s, n);
    *len += n;
}

/* A string after its opening quote, into ps->scratch; its length, or -1. */
static long parse_string(struct parser *ps)
{
    static const char unescaped[256] = {['"'] = '"', ['\\'] = '\\', ['/'] = '/', ['b'] = '\b',
                                        ['f'] = '\f', ['n'] = '\n', ['r'] = '\r', ['t'] = '\t'};
    size_t len = 0;

    for (;;) {
        const unsigned char *run = ps->p;
        ps->p += ember_json_plain_run(ps->p, ps->end);
        if (ps->p > run)
            scratch_add(ps, &len, run, (size_t)(ps->p - run));
        if (*ps->p == '"') {
            ps->p++;
            scratch_add(ps, &len, "", 0);
            ps->scratch[len] = '\0';
            return (long)len;
        }
        if (*ps->p == '\\') {
            char c = unescaped[ps->p[1]];
            if (!c)
                return -1;             /* \u or a bad escape */
            scratch_add(ps, &len, &c, 1);
            ps->p += 2;
            continue;
        }
        size_t n = *ps->p >= 0x80 ? ember_utf8_len(ps->p) : 0;
        if (!n)
            return -1;                 /* a control character, the end, bad UTF-8 */
        scratch_add(ps, &len, ps->p, n);
        ps->p += n;
    }
}

/* -?(0|[1-9][0-9]{0,17}) not followed by '.', 'e' or 'E' (a real: jansson's). */
static json_t *parse_integer(struct parser *ps)
{
    int negative = *ps->p == '-';
    long long v = 0;
    int digits = 0;

    ps->p += negative;
    if (*ps->p == '0' && ps->p[1] >= '0' && ps->p[1] <= '9')
        return NULL;
    /* At most 18 digits fit a long long whatever they are: a 19th is jansson's. */
    while (*ps->p >= '0' && *ps->p <= '9' && digits < 18) {
        v = v * 10 + (*ps->p++ - '0');
        digits++;
    }
    if (digits == 0 || (*ps->p >= '0' && *ps->p <= '9') || *ps->p == '.' || *ps->p == 'e'
        || *ps->p == 'E')
        return NULL;
    return json_integer(negative ? -v : v);
}

static json_t *parse_value(struct parser *ps, int depth);

static json_t *parse_object(struct parser *ps, int depth)
{
    json_t *o = json_object();

    skip_space(ps);
    if (*ps->p == '}') {
        ps->p++;
        return o;
    }
    for (;;) {
        char short_key[128], *key;
        json_t *v;
        long n;
        int ok;
        if (*ps->p != '"')
            break;
        ps->p++;
        n = parse_string(ps);
        if (n < 0)
            break;
        /* the value's strings reuse the scratch buffer: keep the key aside */
        key = (size_t)n < sizeof(short_key) ? memcpy(short_key, ps->scratch, (size_t)n + 1)
                                            : ember_xstrdup(ps->scratch);
        skip_space(ps);
        v = NULL;
        if (*ps->p == ':') {
            ps->p++;
            skip_space(ps);
            v = parse_value(ps, depth + 1);
        }
        ok = v && json_object_set_new_nocheck(o, key, v) == 0;
        if (key != short_key)
            free(key);
        if (!ok)
            break;
        skip_space(ps);
        if (*ps->p == '}') {
            ps->p++;
            return o;
        }
        if (*ps->p != ',')
            break;
        ps->p++;
        skip_space(ps);
    }
    json_decref(o);
    return NULL;
}

static json_t *parse_array(struct parser *ps, int depth)
{
    json_t *a = json_array();

    skip_space(ps);
    if (*ps->p == ']') {
        ps->p++;
        return a;
    }
    for (;;) {
        json_t *v = parse_value(ps, depth + 1);
        if (!v || json_array_append_new(a, v) != 0)
            break;
        skip_space(ps);
        if (*ps->p == ']') {
            ps->p++;
            return a;
        }
        if (*ps->p != ',')
            break;
        ps->p++;
        skip_space(ps);
    }
    json_decref(a);
    return NULL;
}

static json_t *parse_word(struct parser *ps, const char *word, json_t *value)
{
    size_t n = strlen(word);

    if (strncmp((const char *)ps->p, word, n) != 0)
        return NULL;
    ps->p += n;
    return value;
}

static json_t *parse_value(struct parser *ps, int depth)
{
    long n;

    if (depth > MAX_DEPTH)
        return NULL;
    switch (*ps->p) {
    case '{':
        ps->p++;
        return parse_object(ps, depth);
    case '[':
        ps->p++;
        return parse_array(ps, depth);
    case '"':
        ps->p++;
        n = parse_string(ps);
        return n < 0 ? NULL : json_stringn_nocheck(ps->scratch, (size_t)n);
    case 't':
        return parse_word(ps, "true", json_true());
    case 'f':
        return parse_word(ps, "false", json_false());
    case 'n':
        return parse_word(ps, "null", json_null());
    default:
        return *ps->p == '-' || (*ps->p >= '0' && *ps->p <= '9') ? parse_integer(ps) : NULL;
    }
}

json_t *master_json_loads_quick(const char *text)
{
    struct parser ps = {.p = (const unsigned char *)text,
                        .end = (const unsigned char *)text + strlen(text)};
    json_t *v = NULL;

    skip_space(&ps);
    if (*ps.p == '{' || *ps.p == '[')
        v = parse_value(&ps, 1);
    if (v) {
        skip_space(&ps);
        if (*ps.p) {
            json_decref(v);
            v = NULL;
        }
    }
    free(ps.scratch);
    return v;
}

json_t *master_json_loads(const char *text, json_error_t *error)
{
    json_t *v = master_json_loads_quick(text);

    return v ? v : json_loads(text, 0, error);
}
