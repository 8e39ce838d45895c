/* gw_job_quick_check against the gateway's jansson check (json_loadb, an
 * object, "rdd" an integer, "nodes" an array): for a driver's job
 * description, hand-written edge cases and many random mutations of both,
 * "certainly fine" is never said of a body jansson's check refuses, and is
 * said of a driver's usual job. */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "gw.h"
#include "json_mutate.h"
#include "test.h"

/* As the driver sends it: json.dumps, so ASCII only. */
static const char job[] =
    "{\"rdd\": 2, \"description\": \"collect at <stdin>:5\", \"callSite\": \"collect at "
    "<stdin>:5\", \"properties\": {\"spark.python.worker.memory\": \"512m\", "
    "\"spark.job.description\": \"x \\/ \\t\", \"spark.app.name\": \"cpu \\\"x\\\"\\n\"}, "
    "\"nodes\": [{\"id\": 1, \"kind\": \"data\", \"name\": \"parallelize at <stdin>:5\", "
    "\"numPartitions\": 2, \"slices\": [\"gASVCQAAAAAAAABdlEsBYS4=\", "
    "\"gASVCQAAAAAAAABdlEsCYS4=\"]}, {\"id\": 2, \"kind\": \"map\", \"parents\": [1], "
    "\"name\": \"map at <stdin>:5\", \"numPartitions\": 2, \"persisted\": false, "
    "\"func\": \"gASVxQEAAAAAAACMF2Nsb3VkcGlja2xlLmNsb3VkcGlja2xllIwOX21ha2VfZnVuY3Rpb26Uk5Qo\","
    " \"weight\": -0, \"none\": null, \"yes\": true, \"rdd\": \"nested keys do not count\"}], "
    "\"broadcasts\": [], \"partitions\": [0, 1], \"storage\": {}, \"checkpoints\": {}, "
    "\"submissionId\": \"0f1e2d3c4b5a69788796a5b4c3d2e1f0\"}";

static const char *const cases[] = {
    "{\"rdd\":1,\"nodes\":[]}", " {\"nodes\" : [ ] , \"rdd\" : -0 } \r\n",
    "{\"rdd\":123456789012345678,\"nodes\":[1]}", "{\"rdd\":1234567890123456789,\"nodes\":[]}",
    "{\"rdd\":12345678901234567890123,\"nodes\":[]}", "{\"rdd\":01,\"nodes\":[]}",
    "{\"rdd\":-,\"nodes\":[]}", "{\"rdd\":1.0,\"nodes\":[]}", "{\"rdd\":1e3,\"nodes\":[]}",
    "{\"rdd\":\"1\",\"nodes\":[]}", "{\"rdd\":1,\"nodes\":{}}", "{\"rdd\":1,\"nodes\":null}",
    "{\"rdd\":1}", "{\"nodes\":[]}", "{}", "[]", "{\"rdd\":1,\"nodes\":[],\"rdd\":2}",
    "{\"rdd\":\"x\",\"nodes\":[],\"rdd\":2}", "{\"rdd\":1,\"nodes\":[],\"rdd\":\"x\"}",
    "{\"rdd\":1,\"nodes\":[],\"nodes\":[]}", "{\"r\\u0064d\":1,\"nodes\":[]}",
    "{\"rd\\/d\":1,\"nodes\":[]}", "{\"rdd\":1,\"nodes\":[]} x", "{\"rdd\":1,\"nodes\":[],}",
    "{\"rdd\":1,,\"nodes\":[]}", "{\"rdd\":1 \"nodes\":[]}", "{\"rdd\" 1,\"nodes\":[]}",
    "{\"rdd\":1,\"nodes\":[1,]}", "{\"rdd\":1,\"nodes\":[tru]}", "{\"rdd\":1,\"nodes\":[truex]}",
    "{\"rdd\":1,\"nodes\":[\"\\u0000\"]}", "{\"rdd\":1,\"nodes\":[\"\xc3\xa9\"]}",
    "{\"rdd\":1,\"nodes\":[\"\xff\"]}", "{\"rdd\":1,\"nodes\":[\"a\tb\"]}",
    "{\"rdd\":1,\"nodes\":[\"\x7f\"]}", "{\"rdd\":1,\"nodes\":[\"\\x\"]}",
    "{\"rdd\":1,\"nodes\":[\"unterminated]}", "{\"rdd\":1,\"nodes\":[[[[[[[[[[]]]]]]]]]]}",
    "{\"rdd\":1,\"nodes\":[{\"a\":{\"b\":[{},[],\"\",true,false,null,-7]}}]}",
    "{\"rdd\":true,\"nodes\":[]}", "{\"rdd\":null,\"nodes\":[]}", "{\"rdd\":+1,\"nodes\":[]}",
    "\xef\xbb\xbf{\"rdd\":1,\"nodes\":[]}", "{\"rdd\":1,\"nodes\":[]}\x01", "", "   ", "{",
};

/* The gateway's own check, as gw_api.c makes it without the quick one. */
static int jansson_accepts(const char *text, size_t len)
{
    json_t *o = json_loadb(text, len, JSON_DECODE_ANY, NULL);
    int ok = o && json_is_object(o) && json_is_integer(json_object_get(o, "rdd"))
             && json_is_array(json_object_get(o, "nodes"));

    json_decref(o);
    return ok;
}

static int n_quick;

static void same(const char *text, size_t len)
{
    int quick = gw_job_quick_check(text, len);

    n_quick += quick;
    CHECK(!quick || jansson_accepts(text, len), "[%.*s]: quick check accepts what jansson's refuses",
          (int)len, text);
}

static void check_deep(void)
{
    size_t n = 3000;
    char *text = ember_xmalloc(2 * n + 40);
    size_t len = (size_t)sprintf(text, "{\"rdd\":1,\"nodes\":[");

    memset(text + len, '[', n);
    memset(text + len + n, ']', n);
    strcpy(text + len + 2 * n, "]}");
    same(text, strlen(text));
    CHECK(!gw_job_quick_check(text, strlen(text)), "deeper than 64: jansson's turn");
    free(text);
}

/* Random mutations (tests/unit/json_mutate.h; a fixed seed, so a failure repeats). */
static void check_mutations(const char *base, unsigned rounds)
{
    size_t n = strlen(base);
    char *text = ember_xmalloc(n + 16);
    unsigned seed = 54321;

    for (unsigned r = 0; r < rounds && !test_failures; r++) {
        size_t len = json_mutate(text, base, n, &seed);
        same(text, len);
    }
    free(text);
}

int main(void)
{
    static const char nul[] = "{\"rdd\":1,\"nodes\":[\"a\0b\"]}";

    CHECK(gw_job_quick_check(job, strlen(job)), "a driver's job must take the quick path");
    CHECK(gw_job_quick_check(cases[0], strlen(cases[0])), "the smallest job too");
    CHECK(!gw_job_quick_check(job, strlen(job) - 1), "a body cut short is jansson's turn");
    CHECK(!gw_job_quick_check(NULL, 0), "no body");
    same(nul, sizeof(nul) - 1);
    same(job, strlen(job));
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        same(cases[i], strlen(cases[i]));
    check_deep();
    n_quick = 0;
    check_mutations(job, 20000);
    /* most mutations break it or leave it fine: both verdicts must occur */
    CHECK(n_quick > 100 && n_quick < 19900, "quick verdicts among mutations: %d", n_quick);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        check_mutations(cases[i], 300);
    return TEST_EXIT();
}
