/* Tests of common/daemon.c: size options ("512m") parse to bytes or are refused. */
#include <stdint.h>
#include <stdlib.h>

#include "daemon.h"
#include "test.h"
#include "util.h"

static const struct ember_option options[] = {
    {"budget", "EMBER_TEST_BUDGET", NULL, "a size"},
    {0},
};

static const struct {
    const char *text;
    int ok;
    uint64_t want;
} size_cases[] = {
    {"0", 1, 0},
    {"4096", 1, 4096},
    {"64k", 1, 64ull << 10},
    {"512m", 1, 512ull << 20},
    {"512M", 1, 512ull << 20},
    {"2G", 1, 2ull << 30},
    {"2GiB", 1, 2ull << 30},
    {"3gb", 1, 3ull << 30},
    {"1t", 1, 1ull << 40},
    {"", 0, 0},
    {"lots", 0, 0},
    {"-1m", 0, 0},
    {"12x", 0, 0},
    {"1m5", 0, 0},
    {"99999999999t", 0, 0},
};

static void test_sizes(void)
{
    for (size_t i = 0; i < sizeof(size_cases) / sizeof(size_cases[0]); i++) {
        char *argv[] = {"test_daemon", "--budget", (char *)size_cases[i].text, NULL};
        struct ember_daemon d;
        uint64_t got = 12345;
        CHECK(ember_daemon_init(&d, "test_daemon", "", options, 3, argv) == 0, "init for '%s'",
              size_cases[i].text);
        int rc = ember_daemon_opt_size(&d, "budget", &got);
        if (size_cases[i].ok)
            CHECK(rc == 0 && got == size_cases[i].want, "'%s': rc %d, got %llu want %llu",
                  size_cases[i].text, rc, (unsigned long long)got,
                  (unsigned long long)size_cases[i].want);
        else
            CHECK(rc == EMBER_EINVAL && got == 12345, "'%s' should be refused (rc %d, got %llu)",
                  size_cases[i].text, rc, (unsigned long long)got);
        ember_daemon_fini(&d);
    }
}

int main(void)
{
    unsetenv("EMBER_PARENT_PID");
    unsetenv("EMBER_TEST_BUDGET");
    test_sizes();
    return TEST_EXIT();
}
