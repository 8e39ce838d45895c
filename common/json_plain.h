/* The run of "plain" bytes at the start of a JSON string's remaining text:
 * printable ASCII (0x20-0x7f) other than '"' and '\\', which a string takes
 * as they are. The job descriptions that the gateway checks
 * (gw_job_check.c) and the master parses (master_json_parse.c) per job are
 * mostly base64 in long strings, which a byte-at-a-time loop walked with
 * four tests per byte: this tests eight bytes per step (bit tricks on one
 * 64-bit word), and leaves the last few, and any word holding a stop, to
 * the byte loop. tests/unit/test_json_plain.c holds it against that loop. */
#ifndef EMBER_JSON_PLAIN_H
#define EMBER_JSON_PLAIN_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

static inline int ember_json_plain_byte(unsigned char c)
{
    return c >= 0x20 && c < 0x80 && c != '"' && c != '\\';
}

/* How many bytes from p (not past end) are plain. */
static inline size_t ember_json_plain_run(const unsigned char *p, const unsigned char *end)
{
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    const unsigned char *start = p;

    while (end - p >= 8) {
        uint64_t v, quote, slash;
        memcpy(&v, p, 8);              /* unaligned load, no aliasing question */
        quote = v ^ (ones * '"');
        slash = v ^ (ones * '\\');
        /* Nonzero exactly when some byte is >= 0x80 or < 0x20 (its high bit,
         * or that of byte - 0x20: a borrow from a lower byte only comes from
         * a byte below 0x20), '"' or '\\' (the standard exact "has a zero
         * byte" test of the xor). */
        if ((((v - ones * 0x20) | v) & highs) | ((quote - ones) & ~quote & highs)
            | ((slash - ones) & ~slash & highs))
            break;
        p += 8;
    }
    while (p < end && ember_json_plain_byte(*p))
        p++;
    return (size_t)(p - start);
}

#endif
