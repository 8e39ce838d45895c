/* The metrics frame read directly (worker_metrics.c) against Jansson alone
 * (worker_metrics_parse_jansson, the worker's only way before): for every
 * frame both agree on whether it is read and on every figure. The frames
 * pyexec writes for a plain task must take the direct way; every near miss
 * (spaces, order, signs, leading zeros, reals, long numbers, extra text)
 * must leave it and be Jansson's. */
#include <stdlib.h>

#include "test.h"
#include "worker.h"

struct frame_case {
    const char *text;
    int quick;                         /* the direct way reads it */
};

static const struct frame_case cases[] = {
    {"{\"recordsIn\":1,\"recordsOut\":1,\"pythonMs\":0,\"objectInputs\":0,"
     "\"functionCacheHits\":1,\"objects\":[]}", 1},
    {"{\"recordsIn\":0,\"recordsOut\":0,\"pythonMs\":0,\"objectInputs\":0,"
     "\"functionCacheHits\":0,\"objects\":[]}", 1},
    {"{\"recordsIn\":123456789012345678,\"recordsOut\":987654321,\"pythonMs\":1500,"
     "\"objectInputs\":3,\"functionCacheHits\":42,\"objects\":[]}", 1},
    /* 19 digits: Jansson's (it still fits a json_int_t) */
    {"{\"recordsIn\":1234567890123456789,\"recordsOut\":1,\"pythonMs\":0,\"objectInputs\":0,"
     "\"functionCacheHits\":1,\"objects\":[]}", 0},
    /* too large for a json_int_t: Jansson refuses it */
    {"{\"recordsIn\":99999999999999999999,\"recordsOut\":1,\"pythonMs\":0,\"objectInputs\":0,"
     "\"functionCacheHits\":1,\"objects\":[]}", 0},
    {"{\"recordsIn\":01,\"recordsOut\":1,\"pythonMs\":0,\"objectInputs\":0,"
     "\"functionCacheHits\":1,\"objects\":[]}", 0},
    {"{\"recordsIn\":-1,\"recordsOut\":1,\"pythonMs\":0,\"objectInputs\":0,"
     "\"functionCacheHits\":1,\"objects\":[]}", 0},
    {"{\"recordsIn\":1.0,\"recordsOut\":1,\"pythonMs\":0,\"objectInputs\":0,"
     "\"functionCacheHits\":1,\"objects\":[]}", 0},
    {"{\"recordsIn\":1e3,\"recordsOut\":1,\"pythonMs\":0,\"objectInputs\":0,"
     "\"functionCacheHits\":1,\"objects\":[]}", 0},
    {"{\"recordsIn\":1,\"recordsOut\":1,\"pythonMs\":0,\"objectInputs\":0,"
     "\"functionCacheHits\":1,\"objects\":[]} ", 0},
    {"{\"recordsIn\":1,\"recordsOut\":1,\"pythonMs\":0,\"objectInputs\":0,"
     "\"functionCacheHits\":1,\"objects\":[]}x", 0},
    {"{\"recordsIn\": 1,\"recordsOut\":1,\"pythonMs\":0,\"objectInputs\":0,"
     "\"functionCacheHits\":1,\"objects\":[]}", 0},
    {"{\"recordsIn\":1,\"recordsOut\":1,\"pythonMs\":0,\"objectInputs\":0,"
     "\"functionCacheHits\":1,\"objects\":[]", 0},
    {"{\"recordsIn\":1,\"recordsOut\":1,\"pythonMs\":0,\"objectInputs\":0,"
     "\"functionCacheHits\":1,\"objects\":[],\"accumulators\":\"gAR9lC4=\"}", 0},
    {"{\"recordsIn\":1,\"recordsOut\":1,\"pythonMs\":0,\"objectInputs\":0,"
     "\"functionCacheHits\":1,\"objects\":[[\"rdd_1_0\",10]]}", 0},
    {"{\"recordsIn\":1,\"recordsOut\":1,\"pythonMs\":0,\"objectInputs\":0,"
     "\"functionCacheHits\":1,\"objects\":{}}", 0},
    {"{\"recordsOut\":1,\"recordsIn\":2,\"pythonMs\":0,\"objectInputs\":0,"
     "\"functionCacheHits\":1,\"objects\":[]}", 0},
    {"{\"recordsIn\":1,\"recordsOut\":1,\"pythonMs\":0}", 0},
    {"{\"recordsIn\":1,\"recordsOut\":1}", 0},
    {"{\"recordsIn\":1,\"recordsOut\":1,\"pythonMs\":0,\"objectInputs\":\"0\"}", 0},
    {"{\"recordsIn\":1,\"recordsOut\":1,\"pythonMs\":0,\"accumulators\":5}", 0},
    {"{\"recordsIn\":1,\"recordsOut\":1,\"pythonMs\":0,\"accumulators\":\"not base64!\"}", 0},
    {"{\"recordsIn\":1,\"recordsIn\":7,\"recordsOut\":1,\"pythonMs\":0}", 0},
    {"[1,2,3]", 0},
    {"", 0},
    {"{", 0},
    {"{\"recordsIn\":", 0},
};

static void same(const char *text, const struct worker_metrics *a, const struct worker_metrics *b)
{
    CHECK(a->records_in == b->records_in, "%s: recordsIn", text);
    CHECK(a->records_out == b->records_out, "%s: recordsOut", text);
    CHECK(a->python_ms == b->python_ms, "%s: pythonMs", text);
    CHECK(a->object_inputs == b->object_inputs, "%s: objectInputs", text);
    CHECK((a->objects == NULL) == (b->objects == NULL)
              && (!a->objects || json_equal(a->objects, b->objects)),
          "%s: objects", text);
    CHECK((a->accumulators == NULL) == (b->accumulators == NULL)
              && (!a->accumulators || strcmp(a->accumulators, b->accumulators) == 0),
          "%s: accumulators", text);
}

static void run_case(const struct frame_case *c)
{
    size_t len = strlen(c->text);
    struct worker_metrics got = {0}, want = {0}, quick = {0};
    /* a copy without its terminating NUL, so reading past len shows under ASan */
    char *exact = malloc(len ? len : 1);
    int got_ok, want_ok;

    memcpy(exact, c->text, len);
    CHECK(worker_metrics_parse_quick(exact, len, &quick) == c->quick, "%s: direct way",
          c->text);
    got_ok = worker_metrics_parse(exact, len, &got);
    want_ok = worker_metrics_parse_jansson(exact, len, &want);
    CHECK(got_ok == want_ok, "%s: read %d, Jansson %d", c->text, got_ok, want_ok);
    if (got_ok && want_ok)
        same(c->text, &got, &want);
    if (c->quick)
        same(c->text, &quick, &want);
    worker_metrics_free(&got);
    worker_metrics_free(&want);
    worker_metrics_free(&quick);
    free(exact);
}

/* A frame that is not read leaves *out as it was. */
static void untouched_on_refusal(void)
{
    struct worker_metrics m = {.records_in = 7};

    CHECK(!worker_metrics_parse("{\"recordsIn\":1}", 15, &m) && m.records_in == 7
              && !m.objects && !m.accumulators,
          "a refused frame changed the figures");
}

int main(void)
{
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        run_case(&cases[i]);
    untouched_on_refusal();
    return TEST_EXIT();
}
