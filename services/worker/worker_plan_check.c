/* A quick check that a task's plan is JSON, before the worker writes it into
 * the pyexec's header, instead of a json_loads whose tree is thrown away (a
 * tenth of the worker's instructions per short task). It only says
 * "certainly fine": an object or an array within the common subset (ASCII
 * strings with one-character escapes, integers of at most 18 digits, true,
 * false, null, at most 64 deep). On anything else it answers "unsure" and
 * Jansson decides, as before. tests/unit/test_worker_plan_check.c holds its
 * verdicts against Jansson's. */
#include "worker.h"

#include <string.h>

#define MAX_DEPTH 64                   /* deeper: Jansson's turn (its limit is 2048) */

static void skip_space(const char **p)
{
    while (**p == ' ' || **p == '\t' || **p == '\n' || **p == '\r')
        (*p)++;
}

/* A string after its opening quote: 0, or -1 when unsure. */
static int scan_string(const char **p)
{
    for (const char *s = *p;; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"') {
            *p = s + 1;
            return 0;
        }
        if (c == '\\') {
            if (!strchr("\"\\/bfnrt", s[1]) || s[1] == '\0')
                return -1;             /* \u or a bad escape */
            s++;
        } else if (c < 0x20 || c >= 0x80) {
            return -1;                 /* a control character, the end, non-ASCII */
        }
    }
}

/* -?(0|[1-9][0-9]{0,17}) not followed by a fraction or an exponent. */
static int scan_integer(const char **p)
{
    const char *s = *p, *digits;

    if (*s == '-')
        s++;
    digits = s;
    while (*s >= '0' && *s <= '9')
        s++;
    if (s == digits || s - digits > 18 || (*digits == '0' && s - digits > 1) || *s == '.'
        || *s == 'e' || *s == 'E')
        return -1;
    *p = s;
    return 0;
}

static int scan_literal(const char **p, const char *word)
{
    size_t n = strlen(word);

    if (strncmp(*p, word, n) != 0)
        return -1;
    *p += n;
    return 0;
}

static int scan_value(const char **p, int depth);

/* The members of an object or the items of an array, after its bracket. */
static int scan_members(const char **p, int depth, char close)
{
    skip_space(p);
    if (**p == close) {
        (*p)++;
        return 0;
    }
    for (;;) {
        if (close == '}') {
            if (**p != '"')
                return -1;
            (*p)++;
            if (scan_string(p) != 0)
                return -1;
            skip_space(p);
            if (**p != ':')
                return -1;
            (*p)++;
        }
        if (scan_value(p, depth) != 0)
            return -1;
        skip_space(p);
        if (**p == close) {
            (*p)++;
            return 0;
        }
        if (**p != ',')
            return -1;
        (*p)++;
        skip_space(p);
    }
}

static int scan_value(const char **p, int depth)
{
    skip_space(p);
    switch (**p) {
    case '{':
    case '[': {
        char close = **p == '{' ? '}' : ']';
        if (depth >= MAX_DEPTH)
            return -1;
        (*p)++;
        return scan_members(p, depth + 1, close);
    }
    case '"':
        (*p)++;
        return scan_string(p);
    case 't':
        return scan_literal(p, "true");
    case 'f':
        return scan_literal(p, "false");
    case 'n':
        return scan_literal(p, "null");
    default:
        return scan_integer(p);
    }
}

int worker_plan_quick_check(const char *text)
{
    const char *p = text;

    skip_space(&p);
    if (*p != '{' && *p != '[')
        return 0;                      /* Jansson's: it refuses any other top level */
    if (scan_value(&p, 0) != 0)
        return 0;
    skip_space(&p);
    return *p == '\0';
}
