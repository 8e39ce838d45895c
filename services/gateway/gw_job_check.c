/* A quick check of a job description (POST .../jobs), instead of a jansson
 * parse whose tree is thrown away: per trivial job that parse cost the
 * gateway about a tenth of its CPU (2 KB, most of it base64 in long strings,
 * which jansson reads a byte at a time). It only says "certainly fine": a
 * JSON object, within the common subset (objects, arrays, ASCII strings with
 * one-character escapes, integers of at most 18 digits, true, false, null),
 * with exactly one "rdd", an integer, and exactly one "nodes", an array. On
 * anything else (a \u escape, a real number, a non-ASCII byte, a duplicate
 * key, bad input) it answers "unsure" and jansson parses the body, so every
 * verdict and error message is jansson's and check_job's own.
 * tests/unit/test_gw_job_check.c holds its verdicts against jansson's. */
#include "gw.h"

#include <string.h>

#include "json_plain.h"

#define MAX_DEPTH 64                   /* deeper: jansson's turn (its limit is 2048) */

enum found { FOUND_OTHER, FOUND_INTEGER, FOUND_ARRAY };

struct scan {
    const unsigned char *p, *end;
};

static void skip_space(struct scan *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
        s->p++;
}

/* A string after its opening quote; *key_rdd and *key_nodes say whether it was
 * exactly "rdd" / "nodes" (both NULL: not a key). 0, or -1 when unsure. */
static int scan_string(struct scan *s, int *key_rdd, int *key_nodes)
{
    const unsigned char *start = s->p;
    int escaped = 0;

    for (;;) {
        s->p += ember_json_plain_run(s->p, s->end);
        if (s->p >= s->end)
            return -1;
        unsigned char c = *s->p;
        if (c == '"')
            break;
        if (c < 0x20 || c >= 0x80)
            return -1;                 /* control bytes, UTF-8: jansson checks them */
        if (c == '\\') {
            if (s->p + 1 >= s->end)
                return -1;
            switch (s->p[1]) {
            case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
                break;
            default:
                return -1;             /* \u or a bad escape */
            }
            escaped = 1;
            s->p += 2;
            continue;
        }
        s->p++;
    }
    if (key_rdd) {
        size_t n = (size_t)(s->p - start);
        *key_rdd = !escaped && n == 3 && memcmp(start, "rdd", 3) == 0;
        *key_nodes = !escaped && n == 5 && memcmp(start, "nodes", 5) == 0;
    }
    s->p++;                            /* the closing quote */
    return 0;
}

/* -?(0|[1-9][0-9]{0,17}) not followed by a fraction or an exponent. */
static int scan_integer(struct scan *s)
{
    const unsigned char *digits;

    if (*s->p == '-')
        s->p++;
    digits = s->p;
    while (s->p < s->end && *s->p >= '0' && *s->p <= '9')
        s->p++;
    if (s->p == digits || s->p - digits > 18 || (*digits == '0' && s->p - digits > 1))
        return -1;
    if (s->p < s->end && (*s->p == '.' || *s->p == 'e' || *s->p == 'E'))
        return -1;                     /* a real: jansson's turn */
    return 0;
}

static int scan_literal(struct scan *s, const char *word, size_t n)
{
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n) != 0)
        return -1;
    s->p += n;
    return 0;
}

static int scan_value(struct scan *s, int depth, enum found *found);

/* An object after its '{'; at depth 1 it notes "rdd" and "nodes". */
static int scan_object(struct scan *s, int depth, int *rdd_ok, int *nodes_ok)
{
    int n_rdd = 0, n_nodes = 0;

    skip_space(s);
    if (s->p < s->end && *s->p == '}') {
        s->p++;
        goto out;
    }
    for (;;) {
        int is_rdd = 0, is_nodes = 0;
        enum found found;

        if (s->p >= s->end || *s->p != '"')
            return -1;
        s->p++;
        if (scan_string(s, &is_rdd, &is_nodes) != 0)
            return -1;
        skip_space(s);
        if (s->p >= s->end || *s->p != ':')
            return -1;
        s->p++;
        if (scan_value(s, depth, &found) != 0)
            return -1;
        if (depth == 1 && is_rdd) {
            n_rdd++;
            *rdd_ok = found == FOUND_INTEGER;
        } else if (depth == 1 && is_nodes) {
            n_nodes++;
            *nodes_ok = found == FOUND_ARRAY;
        }
        skip_space(s);
        if (s->p >= s->end)
            return -1;
        if (*s->p == '}') {
            s->p++;
            break;
        }
        if (*s->p != ',')
            return -1;
        s->p++;
        skip_space(s);
    }
out:
    if (depth == 1 && (n_rdd != 1 || n_nodes != 1))
        return -1;                     /* missing or repeated: jansson's words */
    return 0;
}

static int scan_array(struct scan *s, int depth)
{
    enum found found;

    skip_space(s);
    if (s->p < s->end && *s->p == ']') {
        s->p++;
        return 0;
    }
    for (;;) {
        if (scan_value(s, depth, &found) != 0)
            return -1;
        skip_space(s);
        if (s->p >= s->end)
            return -1;
        if (*s->p == ']') {
            s->p++;
            return 0;
        }
        if (*s->p != ',')
            return -1;
        s->p++;
    }
}

/* One value at nesting depth `depth` (its container's). */
static int scan_value(struct scan *s, int depth, enum found *found)
{
    int unused_rdd, unused_nodes;

    *found = FOUND_OTHER;
    skip_space(s);
    if (s->p >= s->end)
        return -1;
    switch (*s->p) {
    case '{':
        if (depth + 1 > MAX_DEPTH)
            return -1;
        s->p++;
        return scan_object(s, depth + 1, &unused_rdd, &unused_nodes);
    case '[':
        if (depth + 1 > MAX_DEPTH)
            return -1;
        s->p++;
        *found = FOUND_ARRAY;
        return scan_array(s, depth + 1);
    case '"':
        s->p++;
        return scan_string(s, NULL, NULL);
    case 't':
        return scan_literal(s, "true", 4);
    case 'f':
        return scan_literal(s, "false", 5);
    case 'n':
        return scan_literal(s, "null", 4);
    default:
        if (*s->p == '-' || (*s->p >= '0' && *s->p <= '9')) {
            *found = FOUND_INTEGER;
            return scan_integer(s);
        }
        return -1;
    }
}

int gw_job_quick_check(const char *text, size_t len)
{
    struct scan s = {(const unsigned char *)text, (const unsigned char *)text + (text ? len : 0)};
    int rdd_ok = 0, nodes_ok = 0;

    if (!text)
        return 0;
    skip_space(&s);
    if (s.p >= s.end || *s.p != '{')
        return 0;
    s.p++;
    if (scan_object(&s, 1, &rdd_ok, &nodes_ok) != 0 || !rdd_ok || !nodes_ok)
        return 0;
    skip_space(&s);
    return s.p == s.end;
}
