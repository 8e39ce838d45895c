/* master_json_loads against json_loads(text, 0): for a job description like a
 * driver's, hand-written edge cases and many random mutations of both, the
 * same verdict, the same tree (same compact text, keys in the same order) or
 * the same error text and position. */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "master.h"
#include "json_mutate.h"
#include "test.h"

static const char job[] =
    "{\"rdd\": 2, \"description\": \"collect at <stdin>:5\", \"callSite\": \"collect at "
    "<stdin>:5\", \"properties\": {\"spark.python.worker.memory\": \"512m\", "
    "\"spark.job.description\": \"\xc3\xa9t\xc3\xa9 \\/ \\t\", \"spark.app.name\": \"cpu \\\"x\\\"\\n\"}, "
    "\"nodes\": [{\"id\": 1, \"kind\": \"data\", \"name\": \"parallelize at <stdin>:5\", "
    "\"numPartitions\": 2, \"slices\": [\"gASVCQAAAAAAAABdlEsBYS4=\", "
    "\"gASVCQAAAAAAAABdlEsCYS4=\"]}, {\"id\": 2, \"kind\": \"map\", \"parents\": [1], "
    "\"name\": \"map at <stdin>:5\", \"numPartitions\": 2, \"persisted\": false, "
    "\"func\": \"gASVxQEAAAAAAACMF2Nsb3VkcGlja2xlLmNsb3VkcGlja2xllIwOX21ha2VfZnVuY3Rpb26Uk5Qo\","
    " \"weight\": -0, \"none\": null, \"yes\": true}], \"broadcasts\": [], "
    "\"partitions\": [0, 1], \"storage\": {}, \"checkpoints\": [], "
    "\"submissionId\": \"0f1e2d3c4b5a69788796a5b4c3d2e1f0\"}";

static const char *const cases[] = {
    "{}", "[]", " \t\r\n{ } \n", "[1,2,3]", "[-0, 0, 7, -123456789012345678]",
    "[1234567890123456789]", "[12345678901234567890123]", "[01]", "[-]", "[-01]", "[1.5]",
    "[1e5]", "[1E-5]", "[0.0]", "[1.]", "[.5]", "[+1]", "[1x]", "{\"a\":1,\"a\":2,\"b\":3}",
    "{\"b\":1,\"a\":2}", "{\"a\" : [ true , false , null ] }", "[tru]", "[nul]", "[falsey]",
    "\"top\"", "7", "true", "", "   ", "{", "[", "{\"a\"}", "{\"a\":}", "{\"a\":1,}", "[1,]",
    "{,}", "[,1]", "{\"a\":1}x", "{\"a\":1} {}", "[\"\\u0000\"]", "[\"\\ud83d\\ude00\"]",
    "[\"\\ud83d\"]", "[\"\\/\\b\\f\\n\\r\\t\\\\\\\"\"]", "[\"\\x\"]", "[\"\\\"]", "[\"a\tb\"]",
    "[\"\x7f\"]", "[\"\xc3\xa9\"]", "[\"\xc3\"]", "[\"\xff\"]", "[\"\xed\xa0\x80\"]",
    "[\"\xf0\x9f\x98\x80\"]", "[\"\xf4\x90\x80\x80\"]", "[\"\xe0\x80\xaf\"]", "[\"\xc0\xaf\"]",
    "{\"\xc3\xa9\":\"\"}", "{\"\\n\":1}", "{1:2}", "[\"unterminated", "[[[[[[[[[[]]]]]]]]]]",
    "{\"a\":{\"b\":{\"c\":[{},[],\"\"]}}}",
};

static int same(const char *text)
{
    json_error_t want_err, got_err;
    json_t *want = json_loads(text, 0, &want_err);
    json_t *got = master_json_loads(text, &got_err);
    int ok;

    if (!want || !got) {
        ok = !want && !got && strcmp(want_err.text, got_err.text) == 0
             && want_err.line == got_err.line && want_err.column == got_err.column;
        CHECK(ok, "[%s]: jansson %s, master_json_loads %s", text,
              want ? "parses it" : want_err.text, got ? "parses it" : got_err.text);
    } else {
        char *w = json_dumps(want, JSON_COMPACT), *g = json_dumps(got, JSON_COMPACT);
        ok = json_equal(want, got) && strcmp(w, g) == 0;
        CHECK(ok, "[%s]: got %s want %s", text, g, w);
        free(w);
        free(g);
    }
    json_decref(want);
    json_decref(got);
    return ok;
}

/* Deep nesting: jansson's own limit and error still apply. */
static void check_deep(void)
{
    size_t n = 3000;
    char *text = ember_xmalloc(2 * n + 1);

    memset(text, '[', n);
    memset(text + n, ']', n);
    text[2 * n] = '\0';
    same(text);
    text[100] = '\0';
    same(text);
    memset(text, '[', 50);
    memset(text + 50, ']', 50);
    same(text);
    free(text);
}

/* Random mutations (tests/unit/json_mutate.h; a fixed seed, so a failure repeats). */
static void check_mutations(const char *base, unsigned rounds)
{
    size_t n = strlen(base);
    char *text = ember_xmalloc(n + 16);
    unsigned seed = 12345;

    for (unsigned r = 0; r < rounds && !test_failures; r++) {
        json_mutate(text, base, n, &seed);
        same(text);
    }
    free(text);
}

int main(void)
{
    json_t *quick = master_json_loads_quick(job);

    CHECK(quick != NULL, "a driver's job must take the quick path");
    json_decref(quick);
    same(job);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        same(cases[i]);
    check_deep();
    check_mutations(job, 20000);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        check_mutations(cases[i], 300);
    return TEST_EXIT();
}
