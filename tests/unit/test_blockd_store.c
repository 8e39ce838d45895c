/* Tests of services/blockd/blockd_store.c: chunked writes, visibility, replacement,
 * removal by prefix, limits, counters, views that outlive removal, and threads. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "blockd_store.h"
#include "test.h"

enum op { PUT, PUT_LAST, GET, REMOVE };

struct step {
    enum op op;
    const char *id;   /* block id; the prefix for REMOVE */
    uint64_t offset;
    const char *data; /* PUT: bytes written; GET: the content wanted */
    int want;         /* return code wanted; REMOVE: the count wanted */
};

#define MAX_STEPS 10

static const struct store_case {
    const char *name;
    uint64_t memory;
    struct step steps[MAX_STEPS];
    struct blockd_store_stats want; /* gets and puts are not compared */
} cases[] = {
    {"one chunk", 0,
     {{PUT_LAST, "a", 0, "hello", 0}, {GET, "a", 0, "hello", 0}},
     {.blocks = 1, .bytes_in_memory = 5}},
    {"invisible until the last chunk", 0,
     {{PUT, "a", 0, "he", 0},
      {GET, "a", 0, NULL, EMBER_ENOENT},
      {PUT, "a", 2, "l", 0},
      {PUT_LAST, "a", 3, "lo", 0},
      {GET, "a", 0, "hello", 0}},
     {.blocks = 1, .bytes_in_memory = 5}},
    {"empty block", 0,
     {{PUT_LAST, "e", 0, "", 0}, {GET, "e", 0, "", 0}},
     {.blocks = 1, .bytes_in_memory = 0}},
    {"first chunk not at offset 0", 0,
     {{PUT, "a", 3, "x", EMBER_EINVAL}, {GET, "a", 0, NULL, EMBER_ENOENT}},
     {.blocks = 0}},
    {"wrong offsets change nothing", 0,
     {{PUT, "a", 0, "ab", 0},
      {PUT, "a", 5, "c", EMBER_EINVAL},
      {PUT, "a", 1, "c", EMBER_EINVAL},
      {PUT_LAST, "a", 2, "c", 0},
      {GET, "a", 0, "abc", 0}},
     {.blocks = 1, .bytes_in_memory = 3}},
    {"offset 0 restarts an unfinished write", 0,
     {{PUT, "a", 0, "ab", 0}, {PUT_LAST, "a", 0, "xyz", 0}, {GET, "a", 0, "xyz", 0}},
     {.blocks = 1, .bytes_in_memory = 3}},
    {"re-put replaces only when complete", 0,
     {{PUT_LAST, "a", 0, "old", 0},
      {PUT, "a", 0, "new", 0},
      {GET, "a", 0, "old", 0},
      {PUT_LAST, "a", 3, "er", 0},
      {GET, "a", 0, "newer", 0}},
     {.blocks = 1, .bytes_in_memory = 5}},
    {"unfinished writes counted apart", 0,
     {{PUT_LAST, "a", 0, "abc", 0}, {PUT, "b", 0, "12", 0}},
     {.blocks = 1, .bytes_in_memory = 3, .writes = 1, .write_bytes = 2}},
    {"remove by prefix", 0,
     {{PUT_LAST, "s_1_0", 0, "a", 0},
      {PUT_LAST, "s_1_1", 0, "bb", 0},
      {PUT_LAST, "s_2_0", 0, "ccc", 0},
      {PUT, "s_1_2", 0, "dd", 0},
      {REMOVE, "s_1_", 0, NULL, 2},
      {GET, "s_1_0", 0, NULL, EMBER_ENOENT},
      {GET, "s_2_0", 0, "ccc", 0},
      {PUT, "s_1_2", 2, "x", EMBER_EINVAL}},
     {.blocks = 1, .bytes_in_memory = 3}},
    {"remove matching nothing", 0,
     {{PUT_LAST, "a", 0, "x", 0}, {REMOVE, "b", 0, NULL, 0}, {GET, "a", 0, "x", 0}},
     {.blocks = 1, .bytes_in_memory = 1}},
    {"block over the memory limit", 4,
     {{PUT, "a", 0, "abc", 0},
      {PUT, "a", 3, "de", EMBER_ETOOBIG},
      {GET, "a", 0, NULL, EMBER_ENOENT},
      {PUT, "a", 3, "d", EMBER_EINVAL},
      {PUT_LAST, "a", 0, "abcd", 0}},
     {.blocks = 1, .bytes_in_memory = 4}},
    {"too big a replacement keeps the old block", 4,
     {{PUT_LAST, "a", 0, "ab", 0},
      {PUT, "a", 0, "abcde", EMBER_ETOOBIG},
      {GET, "a", 0, "ab", 0}},
     {.blocks = 1, .bytes_in_memory = 2}},
};

static int get_content(struct blockd_store *s, const char *id, const char *want)
{
    struct blockd_block *b = NULL;
    int rc = blockd_store_get(s, id, &b);

    if (rc != 0)
        return rc;
    if (blockd_block_size(b) != strlen(want) || memcmp(blockd_block_data(b), want, strlen(want)))
        rc = 1;
    blockd_block_release(b);
    return rc;
}

static void run_step(const struct store_case *c, int i, struct blockd_store *s)
{
    const struct step *st = &c->steps[i];
    int got = 0;

    switch (st->op) {
    case PUT:
    case PUT_LAST:
        got = blockd_store_put_chunk(s, st->id, st->offset, st->data, strlen(st->data),
                                     st->op == PUT_LAST);
        break;
    case GET:
        got = get_content(s, st->id, st->data ? st->data : "");
        break;
    case REMOVE:
        got = (int)blockd_store_remove_prefix(s, st->id);
        break;
    }
    CHECK(got == st->want, "%s, step %d (%s): got %d want %d", c->name, i + 1, st->id, got,
          st->want);
}

static void test_cases(void)
{
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct store_case *c = &cases[i];
        struct blockd_store *s = blockd_store_new(c->memory);
        struct blockd_store_stats got;

        for (int j = 0; j < MAX_STEPS && c->steps[j].id; j++)
            run_step(c, j, s);
        blockd_store_stats(s, &got);
        CHECK(got.blocks == c->want.blocks && got.bytes_in_memory == c->want.bytes_in_memory,
              "%s: got %llu blocks, %llu bytes; want %llu, %llu", c->name,
              (unsigned long long)got.blocks, (unsigned long long)got.bytes_in_memory,
              (unsigned long long)c->want.blocks, (unsigned long long)c->want.bytes_in_memory);
        CHECK(got.writes == c->want.writes && got.write_bytes == c->want.write_bytes,
              "%s: got %llu writes of %llu bytes; want %llu, %llu", c->name,
              (unsigned long long)got.writes, (unsigned long long)got.write_bytes,
              (unsigned long long)c->want.writes, (unsigned long long)c->want.write_bytes);
        blockd_store_free(s);
    }
}

/* A reader's view keeps its bytes through a replacement, a removal and the
 * end of the store itself (run under valgrind or EMBER_SANITIZE to see it). */
static void test_view_outlives_store(void)
{
    struct blockd_store *s = blockd_store_new(0);
    struct blockd_block *old = NULL, *newer = NULL;

    CHECK(blockd_store_put_chunk(s, "v", 0, "first", 5, 1) == 0, "put first");
    CHECK(blockd_store_get(s, "v", &old) == 0, "get first");
    CHECK(blockd_store_put_chunk(s, "v", 0, "second", 6, 1) == 0, "put second");
    CHECK(blockd_store_get(s, "v", &newer) == 0, "get second");
    CHECK(blockd_store_remove_prefix(s, "v") == 1, "remove v");
    blockd_store_free(s);
    if (old && newer) {
        CHECK(blockd_block_size(old) == 5 && memcmp(blockd_block_data(old), "first", 5) == 0,
              "the old view still reads 'first' (%zu bytes)", blockd_block_size(old));
        CHECK(blockd_block_size(newer) == 6 && memcmp(blockd_block_data(newer), "second", 6) == 0,
              "the new view still reads 'second' (%zu bytes)", blockd_block_size(newer));
    }
    blockd_block_release(old);
    blockd_block_release(newer);
    blockd_block_release(NULL);
}

static void test_counters(void)
{
    struct blockd_store *s = blockd_store_new(0);
    struct blockd_store_stats st;

    CHECK(blockd_store_put_chunk(s, "a", 0, "x", 1, 0) == 0, "put a, first chunk");
    CHECK(blockd_store_put_chunk(s, "a", 1, "y", 1, 1) == 0, "put a, last chunk");
    CHECK(blockd_store_put_chunk(s, "a", 0, "z", 1, 1) == 0, "replace a");
    CHECK(get_content(s, "a", "z") == 0, "get a");
    CHECK(get_content(s, "a", "z") == 0, "get a again");
    CHECK(get_content(s, "b", "") == EMBER_ENOENT, "get b");
    blockd_store_stats(s, &st);
    CHECK(st.puts == 2 && st.gets == 2, "got %llu puts, %llu gets; want 2, 2",
          (unsigned long long)st.puts, (unsigned long long)st.gets);
    blockd_store_free(s);
}

/* Enough ids to grow the hash table several times, then half removed. */
static void test_many_blocks(void)
{
    struct blockd_store *s = blockd_store_new(0);
    struct blockd_store_stats st;
    char id[32];
    int n = 5000, bad = 0;

    for (int i = 0; i < n; i++) {
        snprintf(id, sizeof(id), "%s_%d", i % 2 ? "odd" : "even", i);
        bad += blockd_store_put_chunk(s, id, 0, id, strlen(id), 1) != 0;
    }
    for (int i = 0; i < n; i++) {
        snprintf(id, sizeof(id), "%s_%d", i % 2 ? "odd" : "even", i);
        bad += get_content(s, id, id) != 0;
    }
    CHECK(bad == 0, "%d of %d puts and gets failed", bad, 2 * n);
    CHECK(blockd_store_remove_prefix(s, "odd_") == (size_t)n / 2, "remove odd_");
    blockd_store_stats(s, &st);
    CHECK(st.blocks == (uint64_t)n / 2, "got %llu blocks want %d", (unsigned long long)st.blocks,
          n / 2);
    CHECK(get_content(s, "even_4998", "even_4998") == 0, "even_4998 is still there");
    blockd_store_free(s);
}

struct worker_arg {
    struct blockd_store *s;
    int index, wrong;
};

/* Writes blocks in three chunks and reads them back while another thread
 * removes them: a block read must be whole; a write may be cut short. */
static void *writer(void *p)
{
    struct worker_arg *a = p;
    char id[32];

    for (int i = 0; i < 2000; i++) {
        snprintf(id, sizeof(id), "t%d_%d", a->index, i);
        size_t n = strlen(id);
        if (blockd_store_put_chunk(a->s, id, 0, id, 2, 0) != 0
            || blockd_store_put_chunk(a->s, id, 2, id + 2, n - 3, 0) != 0
            || blockd_store_put_chunk(a->s, id, n - 1, id + n - 1, 1, 1) != 0)
            continue; /* the remover dropped the unfinished write */
        int rc = get_content(a->s, id, id);
        a->wrong += rc != 0 && rc != EMBER_ENOENT;
    }
    return NULL;
}

static void *remover(void *p)
{
    struct worker_arg *a = p;

    for (int i = 0; i < 300; i++)
        blockd_store_remove_prefix(a->s, i % 2 ? "t1" : "t");
    return NULL;
}

static void test_threads(void)
{
    struct blockd_store *s = blockd_store_new(0);
    struct worker_arg args[4];
    pthread_t th[4];
    struct blockd_store_stats st;

    for (int i = 0; i < 4; i++) {
        args[i] = (struct worker_arg){s, i, 0};
        pthread_create(&th[i], NULL, i == 3 ? remover : writer, &args[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        CHECK(args[i].wrong == 0, "thread %d read %d wrong blocks", i, args[i].wrong);
    }
    blockd_store_remove_prefix(s, "t");
    blockd_store_stats(s, &st);
    CHECK(st.blocks == 0 && st.bytes_in_memory == 0 && st.writes == 0 && st.write_bytes == 0,
          "after removing all: got %llu blocks, %llu bytes, %llu writes, %llu write bytes",
          (unsigned long long)st.blocks, (unsigned long long)st.bytes_in_memory,
          (unsigned long long)st.writes, (unsigned long long)st.write_bytes);
    blockd_store_free(s);
}

int main(void)
{
    test_cases();
    test_view_outlives_store();
    test_counters();
    test_many_blocks();
    test_threads();
    return TEST_EXIT();
}
