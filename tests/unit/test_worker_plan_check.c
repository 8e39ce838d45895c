/* The worker's quick check of a task's plan (worker_plan_check.c) against
 * Jansson's json_loads(text, 0), which the worker ran alone before: whenever
 * the check says "certainly fine", Jansson must accept the text. Plans as the
 * master writes them must pass the check (the fast path is taken); near misses
 * and random mutations of them (tests/unit/json_mutate.h, a fixed seed) must
 * never pass where Jansson refuses. */
#include <stdlib.h>

#include "json_mutate.h"
#include "test.h"
#include "worker.h"

static int jansson_accepts(const char *text)
{
    json_t *v = json_loads(text, 0, NULL);
    int ok = v != NULL;

    json_decref(v);
    return ok;
}

/* Plans the master writes (master_walk.c), which must take the quick path. */
static const char *const quick[] = {
    "{\"input\":\"pickle\",\"funcs\":[0],\"cacheAt\":[]}",
    "{\"combine\":\"concat\",\"children\":[{\"input\":\"text\",\"funcs\":[],\"cacheAt\":[]},"
    "{\"input\":\"shuffle\",\"shuffle\":3,\"reduce\":1,\"funcs\":[0,1],\"cacheAt\":[[2,0]]}]}",
    "{\"input\":\"pickle\",\"funcs\":[0,1],\"cacheAt\":[[2,0]],\"path\":\"\\/tmp\\/a\\\"b\\\\c\\n\"}",
    " [ 1 , -2 , 0 , true , false , null , \"\" , { } , [ ] ] \n",
    "{\"n\":123456789012345678,\"m\":-123456789012345678}",
};

/* Texts the quick check must leave to Jansson, whatever Jansson says. */
static const char *const unsure[] = {
    "", "   ", "1", "\"s\"", "true", "null",
    "{\"a\":1.5}", "{\"a\":1e3}", "{\"a\":1E3}", "{\"a\":01}", "{\"a\":-}", "{\"a\":1234567890123456789}",
    "{\"a\":\"\\u00e9\"}", "{\"a\":\"\\x\"}", "{\"a\":\"\xc3\xa9\"}", "{\"a\":\"\x01\"}",
    "{\"a\":1,}", "[1,]", "[1 2]", "{\"a\" 1}", "{a:1}", "{\"a\":tru}", "{\"a\":truex}",
    "{\"a\":1}}", "{\"a\":1} x", "[", "{", "{\"a\":[1,{\"b\":2]}}", "{\"a\":\"unterminated}",
    "[nul]", "[\"\\",
};

static void check_deep(void)
{
    char text[300];
    size_t n = 0;

    for (int i = 0; i < 65; i++)
        text[n++] = '[';
    for (int i = 0; i < 65; i++)
        text[n++] = ']';
    text[n] = '\0';
    CHECK(!worker_plan_quick_check(text), "65 deep: Jansson's turn");
    CHECK(jansson_accepts(text), "65 deep: Jansson accepts");
    n = 0;
    for (int i = 0; i < 64; i++)
        text[n++] = '[';
    for (int i = 0; i < 64; i++)
        text[n++] = ']';
    text[n] = '\0';
    CHECK(worker_plan_quick_check(text), "64 deep: quick");
}

static void check_mutations(const char *base, unsigned rounds)
{
    size_t n = strlen(base);
    char *text = malloc(n + 16);
    unsigned seed = 20261126;

    for (unsigned r = 0; r < rounds && !test_failures; r++) {
        json_mutate(text, base, n, &seed);
        CHECK(!worker_plan_quick_check(text) || jansson_accepts(text),
              "quick check passed text Jansson refuses: %s", text);
    }
    free(text);
}

int main(void)
{
    for (size_t i = 0; i < sizeof(quick) / sizeof(quick[0]); i++) {
        CHECK(worker_plan_quick_check(quick[i]), "not quick: %s", quick[i]);
        CHECK(jansson_accepts(quick[i]), "Jansson refuses: %s", quick[i]);
    }
    for (size_t i = 0; i < sizeof(unsure) / sizeof(unsure[0]); i++)
        CHECK(!worker_plan_quick_check(unsure[i]), "quick, should be Jansson's: %s", unsure[i]);
    check_deep();
    for (size_t i = 0; i < sizeof(quick) / sizeof(quick[0]); i++)
        check_mutations(quick[i], 20000);
    return TEST_EXIT();
}
