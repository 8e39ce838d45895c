/* Tests of services/blockd/blockd_store.c: chunked writes, visibility, replacement,
 * removal by prefix, the memory limit (LRU eviction by storage level, spill files,
 * the dropped list, blocks bigger than the limit, an unwritable directory),
 * counters, views that outlive removal and eviction, and threads. */
#define _GNU_SOURCE
#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "blockd_store.h"
#include "test.h"

enum op { PUT, PUT_LAST, GET, REMOVE, DROPPED, ON_DISK };

/* Storage levels, short for the table. */
#define PIN BLOCKD_PINNED
#define MO BLOCKD_MEMORY_ONLY
#define MAD BLOCKD_MEMORY_AND_DISK
#define DO BLOCKD_DISK_ONLY

struct step {
    enum op op;
    const char *id;   /* block id; the prefix for REMOVE */
    uint64_t offset;
    const char *data; /* PUT: bytes written; GET: the content wanted; DROPPED: "a,b" wanted */
    int want;         /* return code wanted; REMOVE: the count; ON_DISK: 1 if a file is wanted */
    enum blockd_storage storage; /* PUT */
};

#define MAX_STEPS 12

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
    {"ids that cannot name a file are refused", 0,
     {{PUT_LAST, "../x", 0, "x", EMBER_EINVAL},
      {PUT_LAST, "a.blk", 0, "x", EMBER_EINVAL},
      {PUT_LAST, "", 0, "x", EMBER_EINVAL},
      {PUT_LAST, "a-b", 0, "x", EMBER_EINVAL},
      {PUT_LAST, "Az09_", 0, "x", 0}},
     {.blocks = 1, .bytes_in_memory = 1}},
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
    /* ---- the memory limit ---- */
    {"LRU order", 8,
     {{PUT_LAST, "a", 0, "1111", 0, MO},
      {PUT_LAST, "b", 0, "2222", 0, MO},
      {PUT_LAST, "c", 0, "3333", 0, MO},
      {GET, "a", 0, NULL, EMBER_ENOENT},
      {GET, "b", 0, "2222", 0},
      {PUT_LAST, "d", 0, "4444", 0, MO},
      {GET, "c", 0, NULL, EMBER_ENOENT},
      {GET, "b", 0, "2222", 0},
      {GET, "d", 0, "4444", 0}},
     {.blocks = 2, .bytes_in_memory = 8, .evictions = 2}},
    {"reads refresh recency", 8,
     {{PUT_LAST, "a", 0, "1111", 0, MO},
      {PUT_LAST, "b", 0, "2222", 0, MO},
      {GET, "a", 0, "1111", 0},
      {PUT_LAST, "c", 0, "3333", 0, MO},
      {GET, "b", 0, NULL, EMBER_ENOENT},
      {GET, "a", 0, "1111", 0},
      {GET, "c", 0, "3333", 0}},
     {.blocks = 2, .bytes_in_memory = 8, .evictions = 1}},
    {"MEMORY_ONLY dropped and listed", 8,
     {{PUT_LAST, "a", 0, "1111", 0, MO},
      {PUT_LAST, "b", 0, "2222", 0, MO},
      {PUT_LAST, "c", 0, "3333", 0, MO},
      {PUT_LAST, "d", 0, "4444", 0, MO},
      {DROPPED, NULL, 0, "a,b"},
      {ON_DISK, "a", 0, NULL, 0},
      {PUT_LAST, "a", 0, "5555", 0, MO},
      {DROPPED, NULL, 0, "b,c"},
      {GET, "a", 0, "5555", 0}},
     {.blocks = 2, .bytes_in_memory = 8, .evictions = 3}},
    {"MEMORY_AND_DISK spilled and readable byte-exact", 8,
     {{PUT_LAST, "a", 0, "\x01\xff\n\x7f", 0, MAD},
      {PUT_LAST, "b", 0, "2222", 0, MAD},
      {PUT_LAST, "c", 0, "3333", 0, MAD},
      {ON_DISK, "a", 0, NULL, 1},
      {ON_DISK, "b", 0, NULL, 0},
      {GET, "a", 0, "\x01\xff\n\x7f", 0},
      {GET, "c", 0, "3333", 0},
      {DROPPED, NULL, 0, ""}},
     {.blocks = 3, .bytes_in_memory = 8, .bytes_on_disk = 4, .evictions = 1}},
    {"PINNED spilled not dropped", 8,
     {{PUT_LAST, "a", 0, "1111", 0, PIN},
      {PUT_LAST, "b", 0, "2222", 0, MO},
      {PUT_LAST, "c", 0, "3333", 0, PIN},
      {PUT_LAST, "d", 0, "4444", 0, PIN},
      {ON_DISK, "a", 0, NULL, 1},
      {DROPPED, NULL, 0, "b"},
      {GET, "a", 0, "1111", 0},
      {GET, "b", 0, NULL, EMBER_ENOENT}},
     {.blocks = 3, .bytes_in_memory = 8, .bytes_on_disk = 4, .evictions = 2}},
    {"the block just written is not evicted", 8,
     {{PUT_LAST, "a", 0, "1111", 0, MO},
      {PUT_LAST, "b", 0, "22222222", 0, MO},
      {GET, "a", 0, NULL, EMBER_ENOENT},
      {GET, "b", 0, "22222222", 0}},
     {.blocks = 1, .bytes_in_memory = 8, .evictions = 1}},
    {"writes in progress count toward memory", 8,
     {{PUT_LAST, "a", 0, "1111", 0, MO},
      {PUT, "b", 0, "22222", 0, MO},
      {PUT_LAST, "c", 0, "33", 0, MO},
      {GET, "a", 0, NULL, EMBER_ENOENT},
      {GET, "c", 0, "33", 0}},
     {.blocks = 1, .bytes_in_memory = 2, .evictions = 1, .writes = 1, .write_bytes = 5}},
    {"a PINNED block bigger than the limit goes to disk", 4,
     {{PUT, "a", 0, "abc", 0},
      {PUT, "a", 3, "de", 0},
      {GET, "a", 0, NULL, EMBER_ENOENT},
      {PUT, "a", 3, "d", EMBER_EINVAL},
      {PUT_LAST, "a", 5, "f", 0},
      {GET, "a", 0, "abcdef", 0},
      {ON_DISK, "a", 0, NULL, 1}},
     {.blocks = 1, .bytes_on_disk = 6, .evictions = 1}},
    {"a MEMORY_AND_DISK block bigger than the limit goes to disk", 4,
     {{PUT_LAST, "k", 0, "1", 0, MAD},
      {PUT_LAST, "a", 0, "abcdef", 0, MAD},
      {GET, "a", 0, "abcdef", 0},
      {GET, "k", 0, "1", 0},
      {ON_DISK, "a", 0, NULL, 1}},
     {.blocks = 2, .bytes_in_memory = 1, .bytes_on_disk = 6, .evictions = 1}},
    {"a MEMORY_ONLY block bigger than the limit is dropped", 4,
     {{PUT_LAST, "k", 0, "1", 0, MO},
      {PUT, "a", 0, "abc", 0, MO},
      {PUT_LAST, "a", 3, "def", 0, MO},
      {GET, "a", 0, NULL, EMBER_ENOENT},
      {DROPPED, NULL, 0, "a"},
      {GET, "k", 0, "1", 0},
      {ON_DISK, "a", 0, NULL, 0}},
     {.blocks = 1, .bytes_in_memory = 1, .evictions = 1}},
    {"a replacement bigger than the limit replaces on completion", 4,
     {{PUT_LAST, "a", 0, "ab", 0},
      {PUT, "a", 0, "abcde", 0},
      {GET, "a", 0, "ab", 0},
      {PUT_LAST, "a", 5, "f", 0},
      {GET, "a", 0, "abcdef", 0}},
     {.blocks = 1, .bytes_on_disk = 6, .evictions = 1}},
    {"DISK_ONLY never in memory", 0,
     {{PUT, "a", 0, "ab", 0, DO},
      {PUT, "a", 2, "cd", 0, DO},
      {GET, "a", 0, NULL, EMBER_ENOENT},
      {PUT_LAST, "a", 4, "e", 0, DO},
      {PUT_LAST, "z", 0, "", 0, DO},
      {ON_DISK, "a", 0, NULL, 1},
      {GET, "a", 0, "abcde", 0},
      {GET, "z", 0, "", 0}},
     {.blocks = 2, .bytes_on_disk = 5}},
    {"a spilled block replaced in memory", 4,
     {{PUT_LAST, "a", 0, "aaaa", 0},
      {PUT_LAST, "b", 0, "bbbb", 0},
      {ON_DISK, "a", 0, NULL, 1},
      {PUT_LAST, "a", 0, "xy", 0},
      {ON_DISK, "a", 0, NULL, 0},
      {ON_DISK, "b", 0, NULL, 1},
      {GET, "a", 0, "xy", 0},
      {GET, "b", 0, "bbbb", 0}},
     {.blocks = 2, .bytes_in_memory = 2, .bytes_on_disk = 4, .evictions = 2}},
    {"removal deletes files", 4,
     {{PUT_LAST, "s_1", 0, "aaaa", 0},
      {PUT_LAST, "s_2", 0, "bbbb", 0, MAD},
      {PUT_LAST, "t_1", 0, "cc", 0, DO},
      {ON_DISK, "s_1", 0, NULL, 1},
      {REMOVE, "s_", 0, NULL, 2},
      {ON_DISK, "s_1", 0, NULL, 0},
      {GET, "s_1", 0, NULL, EMBER_ENOENT},
      {GET, "t_1", 0, "cc", 0}},
     {.blocks = 1, .bytes_on_disk = 2, .evictions = 1}},
};

/* A new empty directory for a store; the caller frees the path. */
static char *temp_dir(void)
{
    char *dir = strdup("/tmp/test_blockd_store.XXXXXX");

    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        exit(1);
    }
    return dir;
}

static struct blockd_store *new_store(uint64_t memory, const char *dir)
{
    struct blockd_store *s = NULL;

    if (blockd_store_new(memory, dir, &s) != 0) {
        fprintf(stderr, "cannot make a store in %s\n", dir);
        exit(1);
    }
    return s;
}

static int exists(const char *path)
{
    struct stat st;

    return stat(path, &st) == 0;
}

static int on_disk(const char *dir, const char *id)
{
    char path[256];

    snprintf(path, sizeof(path), "%s/%s.blk", dir, id);
    return exists(path);
}

/* The dropped list joined with commas, in `out`. */
static void dropped_ids(struct blockd_store *s, char *out, size_t cap)
{
    char **ids = NULL;
    size_t n = blockd_store_dropped(s, &ids);

    out[0] = '\0';
    for (size_t i = 0; i < n; i++)
        snprintf(out + strlen(out), cap - strlen(out), "%s%s", i ? "," : "", ids[i]);
    blockd_store_free_ids(ids, n);
}

/* Reads the whole block through blockd_block_read (memory or file) and
 * compares it with `want`: 0 when equal, 1 when not, or the get's error. */
static int get_content(struct blockd_store *s, const char *id, const char *want)
{
    struct blockd_block *b = NULL;
    size_t n = strlen(want);
    char *got = malloc(n + 1);
    int rc = blockd_store_get(s, id, &b);

    if (rc == 0 && (blockd_block_size(b) != n || blockd_block_read(b, 0, got, n) != 0
                    || memcmp(got, want, n) != 0))
        rc = 1;
    blockd_block_release(b);
    free(got);
    return rc;
}

static void run_step(const struct store_case *c, int i, struct blockd_store *s, const char *dir)
{
    const struct step *st = &c->steps[i];
    char ids[256];
    int got = 0;

    switch (st->op) {
    case PUT:
    case PUT_LAST:
        got = blockd_store_put_chunk(s, st->id, st->offset, st->data, strlen(st->data),
                                     st->op == PUT_LAST, st->storage);
        break;
    case GET:
        got = get_content(s, st->id, st->data ? st->data : "");
        break;
    case REMOVE:
        got = (int)blockd_store_remove_prefix(s, st->id);
        break;
    case ON_DISK:
        got = on_disk(dir, st->id);
        break;
    case DROPPED:
        dropped_ids(s, ids, sizeof(ids));
        CHECK(strcmp(ids, st->data) == 0, "%s, step %d: dropped '%s' want '%s'", c->name, i + 1,
              ids, st->data);
        return;
    }
    CHECK(got == st->want, "%s, step %d (%s): got %d want %d", c->name, i + 1, st->id, got,
          st->want);
}

static void check_stats(const char *name, const struct blockd_store_stats *got,
                        const struct blockd_store_stats *want)
{
    CHECK(got->blocks == want->blocks && got->bytes_in_memory == want->bytes_in_memory
              && got->bytes_on_disk == want->bytes_on_disk && got->evictions == want->evictions,
          "%s: got %llu blocks, %llu bytes in memory, %llu on disk, %llu evictions; want %llu, "
          "%llu, %llu, %llu",
          name, (unsigned long long)got->blocks, (unsigned long long)got->bytes_in_memory,
          (unsigned long long)got->bytes_on_disk, (unsigned long long)got->evictions,
          (unsigned long long)want->blocks, (unsigned long long)want->bytes_in_memory,
          (unsigned long long)want->bytes_on_disk, (unsigned long long)want->evictions);
    CHECK(got->writes == want->writes && got->write_bytes == want->write_bytes,
          "%s: got %llu writes of %llu bytes; want %llu, %llu", name,
          (unsigned long long)got->writes, (unsigned long long)got->write_bytes,
          (unsigned long long)want->writes, (unsigned long long)want->write_bytes);
}

static void test_cases(void)
{
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct store_case *c = &cases[i];
        char *dir = temp_dir();
        struct blockd_store *s = new_store(c->memory, dir);
        struct blockd_store_stats got;

        for (int j = 0; j < MAX_STEPS && (c->steps[j].id || c->steps[j].op == DROPPED); j++)
            run_step(c, j, s, dir);
        blockd_store_stats(s, &got);
        check_stats(c->name, &got, &c->want);
        blockd_store_free(s);
        CHECK(!exists(dir), "%s: the store's directory %s is still there", c->name, dir);
        free(dir);
    }
}

/* A reader's view keeps its bytes through a replacement, a removal, an
 * eviction to disk and the end of the store itself (run under valgrind or
 * EMBER_SANITIZE to see it); a view of a spilled block keeps its file. */
static void test_view_outlives_store(void)
{
    char *dir = temp_dir();
    struct blockd_store *s = new_store(8, dir);
    struct blockd_block *old = NULL, *newer = NULL, *evicted = NULL, *spilled = NULL;
    uint8_t buf[8];

    CHECK(blockd_store_put_chunk(s, "v", 0, "first", 5, 1, PIN) == 0, "put first");
    CHECK(blockd_store_get(s, "v", &old) == 0, "get first");
    CHECK(blockd_store_put_chunk(s, "v", 0, "second", 6, 1, PIN) == 0, "put second");
    CHECK(blockd_store_get(s, "v", &newer) == 0, "get second");
    CHECK(blockd_store_put_chunk(s, "m", 0, "memory", 6, 1, MO) == 0, "put m");
    CHECK(blockd_store_get(s, "m", &evicted) == 0, "get m");
    CHECK(blockd_store_put_chunk(s, "w", 0, "12345678", 8, 1, PIN) == 0, "put w");
    CHECK(blockd_store_get(s, "m", &spilled) == EMBER_ENOENT, "m was dropped");
    CHECK(blockd_store_get(s, "v", &spilled) == 0 && blockd_block_data(spilled) == NULL,
          "v was spilled and is read from its file");
    CHECK(blockd_store_remove_prefix(s, "v") == 1, "remove v");
    blockd_store_free(s);
    CHECK(!exists(dir), "the store's directory %s is removed", dir);
    if (old && newer && evicted && spilled) {
        CHECK(blockd_block_size(old) == 5 && memcmp(blockd_block_data(old), "first", 5) == 0,
              "the old view still reads 'first' (%llu bytes)",
              (unsigned long long)blockd_block_size(old));
        CHECK(blockd_block_size(newer) == 6 && memcmp(blockd_block_data(newer), "second", 6) == 0,
              "the new view still reads 'second' (%llu bytes)",
              (unsigned long long)blockd_block_size(newer));
        CHECK(blockd_block_read(evicted, 0, buf, 6) == 0 && memcmp(buf, "memory", 6) == 0,
              "a dropped block's view still reads 'memory'");
        CHECK(blockd_block_size(spilled) == 6 && blockd_block_read(spilled, 0, buf, 6) == 0
                  && memcmp(buf, "second", 6) == 0,
              "a removed spilled block's view still reads 'second' from its unlinked file");
    }
    blockd_block_release(old);
    blockd_block_release(newer);
    blockd_block_release(evicted);
    blockd_block_release(spilled);
    blockd_block_release(NULL);
    free(dir);
}

static uint8_t pattern(size_t block, size_t i)
{
    return (uint8_t)(((i + 1) * 2654435761u + block * 40503u) >> 13);
}

/* 1 MiB blocks of every level under a 4 MiB limit, read back byte-exact in
 * 64 KiB pieces (as a stream would): the levels end where they should. */
static void test_levels_byte_exact(void)
{
    enum { MIB = 1 << 20, N = 10, PIECE = 64 << 10, CHUNK = 256 << 10 };
    static const enum blockd_storage levels[] = {PIN, MO, MAD, DO};
    char *dir = temp_dir();
    struct blockd_store *s = new_store(4 * MIB, dir);
    uint8_t *data = malloc(MIB), *got = malloc(PIECE);
    struct blockd_store_stats st;
    int bad = 0, found = 0;
    char id[32];

    for (size_t b = 0; b < 4 * N; b++) {
        for (size_t i = 0; i < MIB; i++)
            data[i] = pattern(b, i);
        snprintf(id, sizeof(id), "rdd_%d_%zu", (int)levels[b / N], b);
        for (size_t off = 0; off < MIB; off += CHUNK)
            bad += blockd_store_put_chunk(s, id, off, data + off, CHUNK, off + CHUNK == MIB,
                                          levels[b / N]) != 0;
    }
    for (size_t b = 0; b < 4 * N; b++) {
        struct blockd_block *v = NULL;
        snprintf(id, sizeof(id), "rdd_%d_%zu", (int)levels[b / N], b);
        if (blockd_store_get(s, id, &v) != 0)
            continue;
        found++;
        for (size_t off = 0; off < MIB; off += PIECE) {
            bad += blockd_block_read(v, off, got, PIECE) != 0;
            for (size_t i = 0; i < PIECE; i++)
                bad += got[i] != pattern(b, off + i);
        }
        blockd_block_release(v);
    }
    blockd_store_stats(s, &st);
    CHECK(bad == 0, "%d puts, reads or bytes were wrong", bad);
    /* The MEMORY_AND_DISK puts push the last MEMORY_ONLY blocks out; all
     * PINNED, six MEMORY_AND_DISK and all DISK_ONLY blocks are on disk. */
    CHECK(found == 3 * N, "found %d blocks, want %d", found, 3 * N);
    CHECK(st.bytes_in_memory == 4 * MIB && st.bytes_on_disk == 26 * MIB && st.evictions == 26,
          "%llu bytes in memory, %llu on disk, %llu evictions; want 4 MiB, 26 MiB, 26",
          (unsigned long long)st.bytes_in_memory, (unsigned long long)st.bytes_on_disk,
          (unsigned long long)st.evictions);
    CHECK(on_disk(dir, "rdd_3_30") && on_disk(dir, "rdd_0_0") && !on_disk(dir, "rdd_1_10"),
          "DISK_ONLY and old PINNED blocks are files, MEMORY_ONLY ones never");
    blockd_store_free(s);
    free(data);
    free(got);
    free(dir);
}

/* Size of the one temporary file in dir, or -1. */
static long tmp_file_size(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    long size = -1;
    char path[512];
    struct stat st;

    while (d && (de = readdir(d)) != NULL) {
        if (!strstr(de->d_name, ".tmp"))
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        if (stat(path, &st) == 0)
            size = (long)st.st_size;
    }
    if (d)
        closedir(d);
    return size;
}

/* A DISK_ONLY write goes to its file chunk by chunk and is read from it. */
static void test_disk_only_streams(void)
{
    char *dir = temp_dir();
    struct blockd_store *s = new_store(0, dir);
    struct blockd_block *v = NULL;
    struct blockd_store_stats st;

    CHECK(blockd_store_put_chunk(s, "d", 0, "abc", 3, 0, DO) == 0, "put first chunk");
    CHECK(tmp_file_size(dir) == 3, "after 3 bytes the file holds %ld", tmp_file_size(dir));
    CHECK(blockd_store_put_chunk(s, "d", 3, "defg", 4, 0, DO) == 0, "put second chunk");
    CHECK(tmp_file_size(dir) == 7, "after 7 bytes the file holds %ld", tmp_file_size(dir));
    blockd_store_stats(s, &st);
    CHECK(st.bytes_in_memory == 0 && st.write_bytes == 7, "%llu bytes in memory, %llu written",
          (unsigned long long)st.bytes_in_memory, (unsigned long long)st.write_bytes);
    CHECK(blockd_store_put_chunk(s, "d", 7, "h", 1, 1, DO) == 0, "put last chunk");
    CHECK(tmp_file_size(dir) == -1 && on_disk(dir, "d"), "the file is renamed to d.blk");
    CHECK(blockd_store_get(s, "d", &v) == 0 && blockd_block_data(v) == NULL
              && blockd_block_size(v) == 8,
          "d is read from its file");
    blockd_block_release(v);
    CHECK(blockd_store_put_chunk(s, "d", 0, "x", 1, 0, DO) == 0, "start a replacement");
    CHECK(blockd_store_remove_prefix(s, "d") == 1 && tmp_file_size(dir) == -1 && !on_disk(dir, "d"),
          "removal deletes the block file and the unfinished write's file");
    blockd_store_free(s);
    free(dir);
}

/* Root ignores permissions, so the directory is removed from under the store:
 * every file creation fails. PINNED blocks stay in memory (over the limit if
 * need be; not tried again for a while), the others are dropped and listed. */
static void test_unwritable_dir(void)
{
    char *dir = temp_dir();
    struct blockd_store *s = new_store(8, dir);
    struct blockd_store_stats st;
    char ids[256];

    CHECK(rmdir(dir) == 0, "remove %s", dir);
    CHECK(blockd_store_put_chunk(s, "p1", 0, "1111", 4, 1, PIN) == 0, "put p1");
    CHECK(blockd_store_put_chunk(s, "p2", 0, "2222", 4, 1, PIN) == 0, "put p2");
    CHECK(blockd_store_put_chunk(s, "p3", 0, "3333", 4, 1, PIN) == 0, "put p3");
    CHECK(blockd_store_put_chunk(s, "big", 0, "abcdef", 6, 0, PIN) == 0, "put big, 6 bytes");
    CHECK(blockd_store_put_chunk(s, "big", 6, "ghijkl", 6, 1, PIN) == 0, "put big, 12 bytes");
    CHECK(get_content(s, "p1", "1111") == 0 && get_content(s, "big", "abcdefghijkl") == 0,
          "PINNED blocks are still readable from memory");
    CHECK(blockd_store_put_chunk(s, "m1", 0, "mmmm", 4, 1, MAD) == 0, "put m1");
    CHECK(blockd_store_put_chunk(s, "m3", 0, "nnnn", 4, 1, MAD) == 0, "put m3");
    CHECK(blockd_store_put_chunk(s, "m2", 0, "0123456789", 10, 1, MAD) == 0, "put m2, too big");
    CHECK(blockd_store_put_chunk(s, "d1", 0, "dd", 2, 1, DO) == 0, "put d1");
    CHECK(get_content(s, "m3", "nnnn") == 0, "m3, the newest, is in memory");
    blockd_store_stats(s, &st);
    CHECK(st.bytes_in_memory == 28 && st.bytes_on_disk == 0 && st.blocks == 5,
          "got %llu bytes in memory, %llu on disk, %llu blocks; want 28, 0, 5",
          (unsigned long long)st.bytes_in_memory, (unsigned long long)st.bytes_on_disk,
          (unsigned long long)st.blocks);
    dropped_ids(s, ids, sizeof(ids));
    CHECK(strcmp(ids, "m1,m2,d1") == 0, "dropped '%s' want 'm1,m2,d1'", ids);
    blockd_store_free(s);
    free(dir);
}

static void touch(const char *dir, const char *name)
{
    char path[512];
    FILE *fp;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    fp = fopen(path, "w");
    if (fp)
        fclose(fp);
}

/* Removes dir/name, a file or an empty directory. */
static void remove_file(const char *dir, const char *name)
{
    char path[512];

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    if (unlink(path) != 0)
        rmdir(path);
}

static int has_file(const char *dir, const char *name)
{
    char path[512];

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    return exists(path);
}

/* A new store removes the block files a previous run left, and only those; a
 * directory holding other files is kept at the end. */
static void test_dir_cleanup(void)
{
    char *dir = temp_dir();
    char *sub = NULL;
    struct blockd_store *s;

    touch(dir, "old_1.blk");
    touch(dir, "old_2.17.tmp");
    touch(dir, "notes.txt");
    touch(dir, "a.b.blk");
    s = new_store(0, dir);
    CHECK(!has_file(dir, "old_1.blk") && !has_file(dir, "old_2.17.tmp"),
          "old block files are removed at start");
    CHECK(has_file(dir, "notes.txt") && has_file(dir, "a.b.blk"), "other files are kept");
    blockd_store_free(s);
    CHECK(has_file(dir, "notes.txt"), "a directory with other files is kept at the end");
    if (asprintf(&sub, "%s/x/y", dir) > 0) {
        s = new_store(0, sub);
        CHECK(exists(sub), "missing parents are created: %s", sub);
        blockd_store_free(s);
        CHECK(!exists(sub), "%s is removed at the end", sub);
        free(sub);
    }
    remove_file(dir, "notes.txt");
    remove_file(dir, "a.b.blk");
    remove_file(dir, "x");
    rmdir(dir);
    CHECK(!exists(dir), "cleaning up %s", dir);
    free(dir);
}

/* The heartbeat's protocol: ids stay listed until forgotten; ones dropped
 * meanwhile stay for the next heartbeat. */
static void test_forget_dropped(void)
{
    char *dir = temp_dir();
    struct blockd_store *s = new_store(4, dir);
    char **sent = NULL, ids[256];
    size_t n;

    CHECK(blockd_store_put_chunk(s, "a", 0, "aaaa", 4, 1, MO) == 0, "put a");
    CHECK(blockd_store_put_chunk(s, "b", 0, "bbbb", 4, 1, MO) == 0, "put b");
    n = blockd_store_dropped(s, &sent);
    CHECK(n == 1 && strcmp(sent[0], "a") == 0, "a is listed (%zu ids)", n);
    CHECK(blockd_store_put_chunk(s, "c", 0, "cccc", 4, 1, MO) == 0, "put c");
    blockd_store_forget_dropped(s, sent, n);
    blockd_store_free_ids(sent, n);
    dropped_ids(s, ids, sizeof(ids));
    CHECK(strcmp(ids, "b") == 0, "after forgetting a: '%s' want 'b'", ids);
    blockd_store_free(s);
    free(dir);
}

static void test_counters(void)
{
    char *dir = temp_dir();
    struct blockd_store *s = new_store(0, dir);
    struct blockd_store_stats st;

    CHECK(blockd_store_put_chunk(s, "a", 0, "x", 1, 0, PIN) == 0, "put a, first chunk");
    CHECK(blockd_store_put_chunk(s, "a", 1, "y", 1, 1, PIN) == 0, "put a, last chunk");
    CHECK(blockd_store_put_chunk(s, "a", 0, "z", 1, 1, PIN) == 0, "replace a");
    CHECK(get_content(s, "a", "z") == 0, "get a");
    CHECK(get_content(s, "a", "z") == 0, "get a again");
    CHECK(get_content(s, "b", "") == EMBER_ENOENT, "get b");
    blockd_store_stats(s, &st);
    CHECK(st.puts == 2 && st.gets == 2, "got %llu puts, %llu gets; want 2, 2",
          (unsigned long long)st.puts, (unsigned long long)st.gets);
    blockd_store_free(s);
    free(dir);
}

/* Enough ids to grow the hash table several times, then half removed. */
static void test_many_blocks(void)
{
    char *dir = temp_dir();
    struct blockd_store *s = new_store(0, dir);
    struct blockd_store_stats st;
    char id[32];
    int n = 5000, bad = 0;

    for (int i = 0; i < n; i++) {
        snprintf(id, sizeof(id), "%s_%d", i % 2 ? "odd" : "even", i);
        bad += blockd_store_put_chunk(s, id, 0, id, strlen(id), 1, PIN) != 0;
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
    free(dir);
}

struct worker_arg {
    struct blockd_store *s;
    int index, wrong;
    enum blockd_storage storage;
};

/* Writes blocks in three chunks and reads them back while another thread
 * removes them and the memory limit evicts them: a block read must be whole;
 * a write may be cut short. */
static void *writer(void *p)
{
    struct worker_arg *a = p;
    char id[32];

    for (int i = 0; i < 2000; i++) {
        snprintf(id, sizeof(id), "t%d_%d", a->index, i);
        size_t n = strlen(id);
        if (blockd_store_put_chunk(a->s, id, 0, id, 2, 0, a->storage) != 0
            || blockd_store_put_chunk(a->s, id, 2, id + 2, n - 3, 0, a->storage) != 0
            || blockd_store_put_chunk(a->s, id, n - 1, id + n - 1, 1, 1, a->storage) != 0)
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

static void run_threads(uint64_t memory, const enum blockd_storage *levels)
{
    char *dir = temp_dir();
    struct blockd_store *s = new_store(memory, dir);
    struct worker_arg args[5];
    pthread_t th[5];
    struct blockd_store_stats st;

    for (int i = 0; i < 5; i++) {
        args[i] = (struct worker_arg){s, i, 0, levels[i % 4]};
        pthread_create(&th[i], NULL, i == 4 ? remover : writer, &args[i]);
    }
    for (int i = 0; i < 5; i++) {
        pthread_join(th[i], NULL);
        CHECK(args[i].wrong == 0, "thread %d read %d wrong blocks", i, args[i].wrong);
    }
    blockd_store_remove_prefix(s, "t");
    blockd_store_stats(s, &st);
    CHECK(st.blocks == 0 && st.bytes_in_memory == 0 && st.bytes_on_disk == 0 && st.writes == 0
              && st.write_bytes == 0,
          "after removing all: got %llu blocks, %llu bytes, %llu on disk, %llu writes, "
          "%llu write bytes",
          (unsigned long long)st.blocks, (unsigned long long)st.bytes_in_memory,
          (unsigned long long)st.bytes_on_disk, (unsigned long long)st.writes,
          (unsigned long long)st.write_bytes);
    blockd_store_free(s);
    CHECK(!exists(dir), "the directory %s is removed", dir);
    free(dir);
}

static void test_threads(void)
{
    static const enum blockd_storage pinned[] = {PIN, PIN, PIN, PIN};
    static const enum blockd_storage mixed[] = {PIN, MO, MAD, DO};

    run_threads(0, pinned);
    run_threads(40, mixed); /* a few blocks fit: most are evicted as they come */
}

int main(void)
{
    test_cases();
    test_view_outlives_store();
    test_levels_byte_exact();
    test_disk_only_streams();
    test_dir_cleanup();
    test_unwritable_dir();
    test_forget_dropped();
    test_counters();
    test_many_blocks();
    test_threads();
    return TEST_EXIT();
}
