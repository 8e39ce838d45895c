/* Tests of common/security.c: where the secret comes from, its checks, the
 * constant-time comparison and the TLS file rules. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "security.h"
#include "test.h"

#define GOOD "0123456789abcdef-good"

static const struct {
    const char *name, *a, *b;
    int equal;
} equal_cases[] = {
    {"same", "abcdef", "abcdef", 1},
    {"last byte differs", "abcdef", "abcdeX", 0},
    {"first byte differs", "Xbcdef", "abcdef", 0},
    {"prefix", "abc", "abcdef", 0},
    {"empty both", "", "", 1},
    {"empty one", "", "a", 0},
};

static void test_equal(void)
{
    for (size_t i = 0; i < sizeof(equal_cases) / sizeof(equal_cases[0]); i++) {
        int got = ember_security_equal(equal_cases[i].a, strlen(equal_cases[i].a),
                                       equal_cases[i].b, strlen(equal_cases[i].b));
        CHECK(got == equal_cases[i].equal, "%s: got %d want %d", equal_cases[i].name, got,
              equal_cases[i].equal);
    }
}

static const struct {
    const char *secret;
    int ok;
} shape_cases[] = {
    {GOOD, 1}, {"0123456789abcde", 0}, {"0123456789 abcdef", 0}, {"0123456789abcdef\x01", 0},
    {"0123456789abcdef\xc3\xa9", 0}, {"!\"#$%&'()*+,-./:;<=>?@[]^_`{|}~", 1},
};

static void test_shape(void)
{
    for (size_t i = 0; i < sizeof(shape_cases) / sizeof(shape_cases[0]); i++) {
        const char *problem = ember_security_secret_problem(shape_cases[i].secret);
        CHECK((problem == NULL) == shape_cases[i].ok, "case %zu: got %s", i,
              problem ? problem : "fine");
    }
}

static void test_sources(void)
{
    struct ember_security_sources none = {0}, file = {.secret_file = "/tmp/test_security.secret"};
    FILE *fp = fopen(file.secret_file, "w");

    fprintf(fp, "%s\nsecond line ignored\n", GOOD);
    fclose(fp);

    CHECK(ember_security_load("test", &none) == 0, "no secret must load");
    CHECK(ember_security_get()->secret == NULL, "no secret: got one");
    CHECK(ember_security_bearer_ok(NULL, 0), "no secret: every call passes");

    setenv("EMBER_AUTH_SECRET", GOOD, 1);
    CHECK(ember_security_load("test", &none) == 0, "the variable must load");
    CHECK(getenv("EMBER_AUTH_SECRET") == NULL, "the variable must leave the environment");
    CHECK(strcmp(ember_security_get()->bearer, "Bearer " GOOD) == 0, "got bearer %s",
          ember_security_get()->bearer);
    CHECK(ember_security_bearer_ok("Bearer " GOOD, strlen("Bearer " GOOD)), "right bearer");
    CHECK(!ember_security_bearer_ok("Bearer " GOOD "x", strlen(GOOD) + 8), "longer bearer");
    CHECK(!ember_security_bearer_ok(GOOD, strlen(GOOD)), "no Bearer prefix");
    CHECK(!ember_security_bearer_ok(NULL, 0), "missing header");

    CHECK(ember_security_load("test", &file) == 0, "the file must load");
    CHECK(strcmp(ember_security_get()->secret, GOOD) == 0, "file: got %s",
          ember_security_get()->secret);

    setenv("EMBER_AUTH_SECRET", GOOD, 1);
    CHECK(ember_security_load("test", &file) != 0, "both the variable and a file: an error");
    unsetenv("EMBER_AUTH_SECRET");

    struct ember_security_sources half = {.tls_cert_file = file.secret_file};
    CHECK(ember_security_load("test", &half) != 0, "a certificate without a key: an error");
    struct ember_security_sources missing = {.secret_file = "/nonexistent/secret"};
    CHECK(ember_security_load("test", &missing) != 0, "a missing file: an error");
    struct ember_security_sources pair = {.tls_cert_file = file.secret_file,
                                          .tls_key_file = file.secret_file};
    CHECK(ember_security_load("test", &pair) == 0, "cert and key load");
    CHECK(ember_security_get()->tls_ca_pem != NULL, "the CA defaults to the certificate");
    unlink(file.secret_file);
}

int main(void)
{
    test_equal();
    test_shape();
    test_sources();
    return TEST_EXIT();
}
