/* A minimal table-driven test harness: CHECK prints what it got and wanted. */
#ifndef EMBER_TEST_H
#define EMBER_TEST_H

#include <stdio.h>
#include <string.h>

static int test_failures;

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            test_failures++;                                                                       \
            fprintf(stderr, "%s:%d: FAIL %s: ", __FILE__, __LINE__, #cond);                        \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fprintf(stderr, "\n");                                                                 \
        }                                                                                          \
    } while (0)

#define TEST_EXIT()                                                                                \
    (test_failures ? (fprintf(stderr, "%d check(s) failed\n", test_failures), 1)                   \
                   : (printf("ok\n"), 0))

#endif
