/* Random byte mutations of JSON text for the unit tests that hold a quick
 * parser against jansson (test_master_json_parse, test_gw_job_check): each
 * call replaces, deletes or inserts 1-3 bytes drawn from JSON's special
 * characters, from a seed the caller keeps (so a failure repeats). */
#ifndef EMBER_TEST_JSON_MUTATE_H
#define EMBER_TEST_JSON_MUTATE_H

#include <stdlib.h>
#include <string.h>

static const char json_mutate_bytes[] = "{}[]\",:\\ \t\n0-1.eEtfnu\x01\x7f\xc3\xa9\xff";

/* Writes a mutation of base (n bytes) into text, which holds n + 16 bytes;
 * returns its length (text stays NUL-terminated). */
static inline size_t json_mutate(char *text, const char *base, size_t n, unsigned *seed)
{
    size_t len = n;

    memcpy(text, base, n + 1);
    for (int k = 0; k < 1 + (int)(rand_r(seed) % 3); k++) {
        size_t at = rand_r(seed) % (len ? len : 1);
        char c = json_mutate_bytes[rand_r(seed) % (sizeof(json_mutate_bytes) - 1)];
        switch (rand_r(seed) % 3) {
        case 0:
            if (len)
                text[at] = c;
            break;
        case 1:
            if (len) {
                memmove(text + at, text + at + 1, len - at);
                len--;
            }
            break;
        default:
            if (len < n + 8) {
                memmove(text + at + 1, text + at, len - at + 1);
                text[at] = c;
                len++;
            }
        }
    }
    return len;
}

#endif
