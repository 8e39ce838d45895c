/* Tests of common/util.c: buffers with caps, base64 both ways, UTF-8 sequences. */
#include <stdlib.h>

#include "test.h"
#include "util.h"

static const struct {
    const char *name, *plain, *encoded;
} base64_cases[] = {
    {"empty", "", ""},
    {"one byte", "f", "Zg=="},
    {"two bytes", "fo", "Zm8="},
    {"three bytes", "foo", "Zm9v"},
    {"six bytes", "foobar", "Zm9vYmFy"},
};

static void test_base64(void)
{
    for (size_t i = 0; i < sizeof(base64_cases) / sizeof(base64_cases[0]); i++) {
        char *enc = ember_base64_encode((const uint8_t *)base64_cases[i].plain,
                                        strlen(base64_cases[i].plain));
        uint8_t *dec = NULL;
        size_t n = 0;
        CHECK(strcmp(enc, base64_cases[i].encoded) == 0, "%s: got %s want %s",
              base64_cases[i].name, enc, base64_cases[i].encoded);
        CHECK(ember_base64_decode(enc, strlen(enc), &dec, &n) == 0, "%s: decode failed",
              base64_cases[i].name);
        CHECK(n == strlen(base64_cases[i].plain) && memcmp(dec, base64_cases[i].plain, n) == 0,
              "%s: round trip gave %zu bytes", base64_cases[i].name, n);
        free(enc);
        free(dec);
    }
    const char *bad[] = {"Zg=", "Z===", "Zm9v!A==", "Zg==Zg=="};
    for (size_t i = 0; i < 4; i++) {
        uint8_t *dec = NULL;
        size_t n;
        CHECK(ember_base64_decode(bad[i], strlen(bad[i]), &dec, &n) == EMBER_EINVAL,
              "'%s' should be rejected", bad[i]);
    }
}

/* Every byte in each position of a group: the alphabet's 64 decode to their
 * index, '\0' and every other byte are refused, as the alphabet defines. */
static void test_base64_every_byte(void)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

    for (int c = 0; c < 256; c++) {
        const char *at = c ? memchr(alphabet, c, 64) : NULL;
        for (int pos = 0; pos < 4; pos++) {
            char group[4] = {'A', 'A', 'A', 'A'};
            uint8_t *dec = NULL;
            size_t n = 0;
            group[pos] = (char)c;
            int rc = ember_base64_decode(group, 4, &dec, &n);
            if (c == '=' && pos >= 2) {
                CHECK(rc == (pos == 3 ? 0 : EMBER_EINVAL), "'=' at %d: rc %d", pos, rc);
            } else if (!at) {
                CHECK(rc == EMBER_EINVAL, "byte %d at %d should be refused", c, pos);
            } else {
                uint32_t v = (uint32_t)(at - alphabet) << (6 * (3 - pos));
                CHECK(rc == 0 && n == 3 && dec[0] == (uint8_t)(v >> 16)
                          && dec[1] == (uint8_t)(v >> 8) && dec[2] == (uint8_t)v,
                      "byte %d at %d: rc %d", c, pos, rc);
            }
            free(dec);
        }
    }
}

static void test_buf_cap(void)
{
    struct ember_buf b;
    size_t n;

    ember_buf_init(&b, 10);
    CHECK(ember_buf_append(&b, "0123456789", 10) == 0, "10 bytes fit a cap of 10");
    CHECK(ember_buf_append(&b, "x", 1) == EMBER_ETOOBIG, "the 11th byte must be refused");
    CHECK(b.len == 10, "len got %zu want 10", b.len);
    uint8_t *p = ember_buf_steal(&b, &n);
    CHECK(n == 10 && memcmp(p, "0123456789", 10) == 0, "steal gives the bytes");
    CHECK(b.len == 0 && b.data == NULL, "steal empties the buffer");
    free(p);
    ember_buf_free(&b);
}

static const struct {
    const char *key;
    int secret;
} secret_cases[] = {
    {"spark.authenticate.secret", 1}, {"spark.ssl.keyPassword", 1}, {"api.TOKEN", 1},
    {"aws.credentials.file", 1},      {"spark.app.name", 0},        {"--max-body-bytes", 0},
    {"", 0},
};

static void test_secret_keys(void)
{
    for (size_t i = 0; i < sizeof(secret_cases) / sizeof(secret_cases[0]); i++) {
        int got = ember_is_secret_key(secret_cases[i].key);
        CHECK(got == secret_cases[i].secret, "ember_is_secret_key(\"%s\") = %d, want %d",
              secret_cases[i].key, got, secret_cases[i].secret);
    }
    CHECK(strcmp(ember_shown_value("x.password", "hunter2"), EMBER_REDACTED) == 0,
          "a password is shown as %s", ember_shown_value("x.password", "hunter2"));
    CHECK(strcmp(ember_shown_value("x.name", "a"), "a") == 0, "a plain value is shown as is");
    CHECK(ember_shown_value("x.token", NULL) == NULL, "an unset secret stays unset");
}

/* The sequences jansson's json_string accepts: no overlong forms, surrogates
 * or code points past U+10FFFF. */
static const struct {
    const char *name, *bytes;
    size_t len;
} utf8_cases[] = {
    {"ascii", "a", 1},
    {"NUL", "", 1},
    {"e acute", "\xC3\xA9", 2},
    {"euro sign", "\xE2\x82\xAC", 3},
    {"U+1F525", "\xF0\x9F\x94\xA5", 4},
    {"overlong two bytes", "\xC0\xAF", 0},
    {"overlong three bytes", "\xE0\x80\xAF", 0},
    {"surrogate", "\xED\xA0\x80", 0},
    {"past U+10FFFF", "\xF4\x90\x80\x80", 0},
    {"cut short", "\xC3(", 0},
    {"lone continuation", "\xA9", 0},
};

static void test_utf8_len(void)
{
    for (size_t i = 0; i < sizeof(utf8_cases) / sizeof(utf8_cases[0]); i++) {
        size_t got = ember_utf8_len((const unsigned char *)utf8_cases[i].bytes);
        CHECK(got == utf8_cases[i].len, "ember_utf8_len(%s) = %zu, want %zu", utf8_cases[i].name,
              got, utf8_cases[i].len);
    }
}

int main(void)
{
    test_base64();
    test_base64_every_byte();
    test_secret_keys();
    test_buf_cap();
    test_utf8_len();
    return TEST_EXIT();
}
