/* Tests of common/json_plain.h: the word-at-a-time run of plain string bytes
 * against a byte-at-a-time loop, for every byte value at every position of a
 * word and for random texts at every alignment and length. */
#include <stdlib.h>

#include "json_plain.h"
#include "test.h"

static size_t slow_run(const unsigned char *p, const unsigned char *end)
{
    const unsigned char *start = p;

    while (p < end && *p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\')
        p++;
    return (size_t)(p - start);
}

/* One byte value at one position of an otherwise plain text, every length. */
static void test_every_byte_everywhere(void)
{
    unsigned char buf[40];

    for (int b = 0; b < 256; b++)
        for (size_t at = 0; at < 24; at++)
            for (size_t len = 0; len <= 32; len++) {
                memset(buf, 'A', sizeof buf);
                buf[at] = (unsigned char)b;
                size_t got = ember_json_plain_run(buf, buf + len);
                size_t want = slow_run(buf, buf + len);
                CHECK(got == want, "byte 0x%02x at %zu, length %zu: got %zu want %zu", b, at,
                      len, got, want);
            }
}

/* Texts of base64 with a few stops, as job descriptions are, and texts
 * where every byte is near a boundary of the tests (0x1f/0x20, 0x7f/0x80,
 * the bytes next to '"' and '\\'). */
static void test_random_texts(void)
{
    static const unsigned char edges[] = {0x00, 0x01, 0x1f, 0x20, 0x21, '"' - 1, '"', '"' + 1,
                                          '\\' - 1, '\\', '\\' + 1, 0x7e, 0x7f, 0x80, 0x81,
                                          0xa2, 0xdc, 0xfe, 0xff};
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=";
    unsigned char buf[96];

    srand(12345);
    for (int round = 0; round < 200000; round++) {
        int edgy = round % 2;
        for (size_t i = 0; i < sizeof buf; i++) {
            if (edgy || rand() % 40 == 0)
                buf[i] = edges[rand() % (int)sizeof edges];
            else
                buf[i] = (unsigned char)b64[rand() % 65];
            if (edgy && rand() % 3)
                buf[i] = (unsigned char)b64[rand() % 65];
        }
        size_t from = (size_t)(rand() % 16), len = (size_t)(rand() % 80);
        size_t got = ember_json_plain_run(buf + from, buf + from + len);
        size_t want = slow_run(buf + from, buf + from + len);
        CHECK(got == want, "round %d (from %zu, length %zu): got %zu want %zu", round, from, len,
              got, want);
        if (got != want)
            return;
    }
}

int main(void)
{
    test_every_byte_everywhere();
    test_random_texts();
    return TEST_EXIT();
}
