/* Drives a real ember-blockd (argv[1]) over gRPC: chunked puts and streamed
 * gets, out-of-order chunks, bad ids, unknown and empty blocks, removal by
 * prefix, stats, SIGTERM during a stream, registration with a master that
 * starts late and later forgets it (a fake master in this process), and a
 * 4 MiB memory limit with blocks of every storage level spilled to --dir,
 * dropped ones reported in heartbeats, and the directory removed at exit;
 * blocks handed over in a sealed memfd of this process (PutBlockLocal) are
 * the blocks their chunks make (the memory-limit case runs both ways), and
 * anything but that memfd is refused with FAILED_PRECONDITION.
 * EMBER_TEST_WRAPPER="valgrind --leak-check=full ..." runs the daemon under a
 * wrapper (timeouts are then tripled). */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "blockd.pb-c.h"
#include "common.pb-c.h"
#include "master.pb-c.h"
#include "rpc.h"
#include "../unit/test.h"
#include "util.h"

extern char **environ;

#define MIB (1 << 20)
#define RPC_TIMEOUT_MS 10000

static int timeout_scale = 1;
static int put_locally;   /* put_block_level hands blocks over in a memfd */

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

/* ---- the daemon under test ------------------------------------------- */

struct proc {
    pid_t pid;
    char dir[64];
    char ready[96];
    char address[128];
};

/* Reads the ready file once it exists; 0 when the address was read. */
static int read_ready(struct proc *p)
{
    FILE *fp = fopen(p->ready, "r");
    int ok;

    if (!fp)
        return -1;
    ok = fgets(p->address, sizeof(p->address), fp) != NULL;
    fclose(fp);
    p->address[strcspn(p->address, "\n")] = '\0';
    return ok && p->address[0] ? 0 : -1;
}

static int start_blockd(const char *bin, const char *const *extra, struct proc *p)
{
    const char *argv[32];
    int n = 0, status;
    const char *w = getenv("EMBER_TEST_WRAPPER");
    char *wrapper = w ? ember_xstrdup(w) : NULL;

    memset(p, 0, sizeof(*p));
    snprintf(p->dir, sizeof(p->dir), "/tmp/test_blockd.XXXXXX");
    if (!mkdtemp(p->dir))
        return -1;
    snprintf(p->ready, sizeof(p->ready), "%s/ready", p->dir);
    for (char *tok = wrapper ? strtok(wrapper, " ") : NULL; tok && n < 16; tok = strtok(NULL, " "))
        argv[n++] = tok;
    argv[n++] = bin;
    argv[n++] = "--listen=127.0.0.1:0";
    argv[n++] = "--ready-file";
    argv[n++] = p->ready;
    while (*extra && n < 30)
        argv[n++] = *extra++;
    argv[n] = NULL;
    if (posix_spawnp(&p->pid, argv[0], NULL, NULL, (char *const *)argv, environ) != 0) {
        fprintf(stderr, "cannot start %s\n", argv[0]);
        p->pid = 0;
    }
    free(wrapper);
    for (int waited = 0; p->pid && waited < 10000 * timeout_scale; waited += 50) {
        if (read_ready(p) == 0)
            return 0;
        if (waitpid(p->pid, &status, WNOHANG) == p->pid) {
            fprintf(stderr, "ember-blockd exited early (status 0x%x)\n", status);
            p->pid = 0;
            return -1;
        }
        sleep_ms(50);
    }
    fprintf(stderr, "ember-blockd did not write %s in time\n", p->ready);
    return -1;
}

/* SIGTERM, then the exit status within 10 s (SIGKILL after); -1 on timeout. */
static int stop_blockd(struct proc *p, int *ms)
{
    int status = -1;
    uint64_t t0 = ember_monotonic_ms();

    if (p->pid) {
        kill(p->pid, SIGTERM);
        while (waitpid(p->pid, &status, WNOHANG) == 0) {
            if (ember_monotonic_ms() - t0 > 10000u * (unsigned)timeout_scale) {
                kill(p->pid, SIGKILL);
                waitpid(p->pid, NULL, 0);
                status = -1;
                break;
            }
            sleep_ms(20);
        }
        p->pid = 0;
    }
    *ms = (int)(ember_monotonic_ms() - t0);
    unlink(p->ready);
    rmdir(p->dir);
    return status;
}

/* ---- client helpers --------------------------------------------------- */

static uint8_t pattern(size_t i)
{
    return (uint8_t)((i * 2654435761u) >> 13);
}

static grpc_status_code put_level(grpc_channel *ch, const char *id, uint64_t offset,
                                  const void *data, size_t len, int last,
                                  Ember__BlockStorage storage, char **details)
{
    Ember__PutChunk req = EMBER__PUT_CHUNK__INIT;
    ProtobufCMessage *rep = NULL;
    grpc_status_code st;

    req.block_id = (char *)id;
    req.offset = offset;
    req.data.data = (uint8_t *)data;
    req.data.len = len;
    req.last = last;
    req.storage = storage;
    st = ember_rpc_call(ch, &ember__block_manager__descriptor, "PutBlock", &req.base, &rep, NULL,
                        NULL, RPC_TIMEOUT_MS, details);
    if (rep)
        protobuf_c_message_free_unpacked(rep, NULL);
    return st;
}

static grpc_status_code put(grpc_channel *ch, const char *id, uint64_t offset, const void *data,
                            size_t len, int last, char **details)
{
    return put_level(ch, id, offset, data, len, last, EMBER__BLOCK_STORAGE__PINNED, details);
}

#define TOKEN "0123456789abcdef0123456789abcdef"

/* A memfd named ember-block-<token> holding data, sealed as the worker seals it
 * when `seal`; -1 on failure. */
static int block_memfd(const char *token, const uint8_t *data, size_t len, int seal)
{
    char name[96];
    int fd;

    snprintf(name, sizeof(name), "ember-block-%s", token);
    fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0)
        return -1;
    if ((len && write(fd, data, len) != (ssize_t)len)
        || (seal && fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE) != 0)) {
        close(fd);
        return -1;
    }
    return fd;
}

static grpc_status_code put_local_path(grpc_channel *ch, const char *id,
                                       Ember__BlockStorage storage, const char *path,
                                       const char *token, uint64_t size, char **details)
{
    Ember__PutLocalRequest req = EMBER__PUT_LOCAL_REQUEST__INIT;
    ProtobufCMessage *rep = NULL;
    grpc_status_code st;

    req.block_id = (char *)id;
    req.storage = storage;
    req.path = (char *)path;
    req.token = (char *)token;
    req.size = size;
    st = ember_rpc_call(ch, &ember__block_manager__descriptor, "PutBlockLocal", &req.base, &rep,
                        NULL, NULL, RPC_TIMEOUT_MS, details);
    if (rep)
        protobuf_c_message_free_unpacked(rep, NULL);
    return st;
}

/* Puts a whole block from a sealed memfd of this process. */
static grpc_status_code put_local(grpc_channel *ch, const char *id, const uint8_t *data,
                                  size_t len, Ember__BlockStorage storage)
{
    char path[64];
    int fd = block_memfd(TOKEN, data, len, 1);
    grpc_status_code st;

    if (fd < 0)
        return GRPC_STATUS_UNKNOWN;
    snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int)getpid(), fd);
    st = put_local_path(ch, id, storage, path, TOKEN, len, NULL);
    close(fd);
    return st;
}

/* Puts a whole block in 1 MiB chunks (or from a memfd: put_locally). */
static grpc_status_code put_block_level(grpc_channel *ch, const char *id, const uint8_t *data,
                                        size_t len, Ember__BlockStorage storage)
{
    size_t off = 0;
    grpc_status_code st;

    if (put_locally)
        return put_local(ch, id, data, len, storage);
    do {
        size_t n = len - off < MIB ? len - off : MIB;
        st = put_level(ch, id, off, data + off, n, off + n == len, storage, NULL);
        off += n;
    } while (st == GRPC_STATUS_OK && off < len);
    return st;
}

static grpc_status_code put_block(grpc_channel *ch, const char *id, const uint8_t *data, size_t len)
{
    return put_block_level(ch, id, data, len, EMBER__BLOCK_STORAGE__PINNED);
}

struct fetch {
    struct ember_buf buf;
    int chunks, bad_offsets, oversize, after_last, saw_last;
    uint64_t total_size;
    int delay_ms;         /* per chunk: a slow reader */
    atomic_int got_first; /* set once a chunk arrived */
    atomic_int stop;      /* ask the reader to cancel */
};

static int on_chunk(const ProtobufCMessage *m, void *user)
{
    const Ember__Chunk *c = (const Ember__Chunk *)m;
    struct fetch *f = user;

    f->after_last += f->saw_last;
    f->bad_offsets += c->offset != f->buf.len;
    f->oversize += c->data.len > MIB;
    f->saw_last |= c->last;
    f->total_size = c->total_size;
    f->chunks++;
    if (ember_buf_append(&f->buf, c->data.data, c->data.len) != 0)
        return 1;
    atomic_store(&f->got_first, 1);
    if (f->delay_ms)
        sleep_ms(f->delay_ms);
    return atomic_load(&f->stop);
}

static grpc_status_code get(grpc_channel *ch, const char *id, struct fetch *f, char **details)
{
    Ember__GetBlockRequest req = EMBER__GET_BLOCK_REQUEST__INIT;

    req.block_id = (char *)id;
    return ember_rpc_call(ch, &ember__block_manager__descriptor, "GetBlock", &req.base, NULL,
                          on_chunk, f, RPC_TIMEOUT_MS, details);
}

static void fetch_init(struct fetch *f)
{
    memset(f, 0, sizeof(*f));
    ember_buf_init(&f->buf, 0);
}

/* ---- the cases, run in order against one daemon ------------------------ */

#define LARGE_SIZE (3 * MIB + MIB / 2)

static void test_large_block(grpc_channel *ch)
{
    uint8_t *data = ember_xmalloc(LARGE_SIZE);
    struct fetch f;
    grpc_status_code st;

    for (size_t i = 0; i < LARGE_SIZE; i++)
        data[i] = pattern(i);
    st = put_block(ch, "result_1_0", data, LARGE_SIZE);
    CHECK(st == GRPC_STATUS_OK, "put 3.5 MiB: status %d", st);
    fetch_init(&f);
    st = get(ch, "result_1_0", &f, NULL);
    CHECK(st == GRPC_STATUS_OK, "get 3.5 MiB: status %d", st);
    CHECK(f.buf.len == LARGE_SIZE && memcmp(f.buf.data, data, LARGE_SIZE) == 0,
          "get 3.5 MiB: got %zu bytes (or different ones) want %d", f.buf.len, LARGE_SIZE);
    CHECK(f.chunks == 4, "get 3.5 MiB: got %d chunks want 4", f.chunks);
    CHECK(f.bad_offsets == 0 && f.oversize == 0,
          "get 3.5 MiB: %d bad offsets, %d chunks over 1 MiB", f.bad_offsets, f.oversize);
    CHECK(f.saw_last && f.after_last == 0, "get 3.5 MiB: last=true only on the final chunk");
    CHECK(f.total_size == LARGE_SIZE, "get 3.5 MiB: total_size %llu",
          (unsigned long long)f.total_size);
    ember_buf_free(&f.buf);
    free(data);
}

/* A memfd block reads back as its bytes; every other descriptor, path, token
 * or size is refused without storing anything. */
static void test_local_put(grpc_channel *ch)
{
    uint8_t *data = ember_xmalloc(LARGE_SIZE);
    char path[64], *details = NULL;
    struct fetch f;
    grpc_status_code st;
    int fd, pipe_fds[2];

    for (size_t i = 0; i < LARGE_SIZE; i++)
        data[i] = pattern(i * 7);
    st = put_local(ch, "rdd_9_0", data, LARGE_SIZE, EMBER__BLOCK_STORAGE__MEMORY_ONLY);
    CHECK(st == GRPC_STATUS_OK, "local put 3.5 MiB: status %d", st);
    fetch_init(&f);
    st = get(ch, "rdd_9_0", &f, NULL);
    CHECK(st == GRPC_STATUS_OK && f.buf.len == LARGE_SIZE
              && memcmp(f.buf.data, data, LARGE_SIZE) == 0 && f.chunks == 4,
          "local put 3.5 MiB: get status %d, %zu bytes in %d chunks (or different ones)", st,
          f.buf.len, f.chunks);
    ember_buf_free(&f.buf);

    /* Replaced by a smaller one from a memfd, then by chunks: each read sees the newest. */
    st = put_local(ch, "rdd_9_0", data + 5, 2 * MIB, EMBER__BLOCK_STORAGE__MEMORY_ONLY);
    fetch_init(&f);
    CHECK(st == GRPC_STATUS_OK && get(ch, "rdd_9_0", &f, NULL) == GRPC_STATUS_OK
              && f.buf.len == 2 * MIB && memcmp(f.buf.data, data + 5, 2 * MIB) == 0,
          "local put over a local put: status %d, %zu bytes back (or different ones)", st,
          f.buf.len);
    ember_buf_free(&f.buf);
    st = put_block(ch, "rdd_9_0", data + 9, MIB + 3);
    fetch_init(&f);
    CHECK(st == GRPC_STATUS_OK && get(ch, "rdd_9_0", &f, NULL) == GRPC_STATUS_OK
              && f.buf.len == MIB + 3 && memcmp(f.buf.data, data + 9, MIB + 3) == 0,
          "chunks over a local put: status %d, %zu bytes back (or different ones)", st,
          f.buf.len);
    ember_buf_free(&f.buf);

    st = put_local(ch, "rdd_9_1", data, 0, EMBER__BLOCK_STORAGE__MEMORY_ONLY);
    fetch_init(&f);
    CHECK(st == GRPC_STATUS_OK && get(ch, "rdd_9_1", &f, NULL) == GRPC_STATUS_OK
              && f.buf.len == 0,
          "local put of an empty block: status %d, %zu bytes back", st, f.buf.len);
    ember_buf_free(&f.buf);

    struct {
        const char *what;
        int seal;
        const char *token;
        int64_t size_delta;
        int pipe;
        const char *path;
    } bad[] = {
        {"a wrong token", 1, "fedcba9876543210fedcba9876543210", 0, 0, NULL},
        {"a short token", 1, "0123", 0, 0, NULL},
        {"an unsealed memfd", 0, TOKEN, 0, 0, NULL},
        {"a wrong size", 1, TOKEN, -1, 0, NULL},
        {"a pipe", 0, TOKEN, 0, 1, NULL},
        {"a file", 0, TOKEN, 0, 0, "/etc/hostname"},
        {"a path with more after the fd", 1, TOKEN, 0, 0, "+/x"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        fd = -1;
        pipe_fds[0] = pipe_fds[1] = -1;
        if (bad[i].pipe) {
            if (pipe(pipe_fds) != 0)
                continue;
            fd = pipe_fds[0];
        } else if (!bad[i].path || bad[i].path[0] == '+') {
            fd = block_memfd(TOKEN, data, MIB, bad[i].seal);
        }
        if (bad[i].path && bad[i].path[0] != '+')
            snprintf(path, sizeof(path), "%s", bad[i].path);
        else
            snprintf(path, sizeof(path), "/proc/%d/fd/%d%s", (int)getpid(), fd,
                     bad[i].path ? bad[i].path + 1 : "");
        st = put_local_path(ch, "rdd_9_2", EMBER__BLOCK_STORAGE__MEMORY_ONLY, path,
                            bad[i].token, (uint64_t)(MIB + bad[i].size_delta), &details);
        CHECK(st == GRPC_STATUS_FAILED_PRECONDITION && details
                  && strstr(details, "send it in chunks"),
              "local put from %s: status %d (%s), want FAILED_PRECONDITION", bad[i].what, st,
              details ? details : "");
        free(details);
        details = NULL;
        fetch_init(&f);
        st = get(ch, "rdd_9_2", &f, NULL);
        CHECK(st == GRPC_STATUS_NOT_FOUND, "after a refused local put from %s: get status %d",
              bad[i].what, st);
        ember_buf_free(&f.buf);
        if (fd >= 0 && !bad[i].pipe)
            close(fd);
        if (bad[i].pipe) {
            close(pipe_fds[0]);
            close(pipe_fds[1]);
        }
    }
    st = put_local_path(ch, "bad id!", EMBER__BLOCK_STORAGE__MEMORY_ONLY, "/proc/1/fd/0", TOKEN,
                        0, &details);
    CHECK(st == GRPC_STATUS_INVALID_ARGUMENT, "local put with a bad id: status %d", st);
    free(details);
    free(data);
}

static void test_wrong_offset(grpc_channel *ch)
{
    char buf[1000] = {0};
    char *details = NULL;
    struct fetch f;
    grpc_status_code st;

    CHECK(put(ch, "partial", 0, buf, sizeof(buf), 0, NULL) == GRPC_STATUS_OK, "put first chunk");
    st = put(ch, "partial", 10, buf, sizeof(buf), 1, &details);
    CHECK(st == GRPC_STATUS_INVALID_ARGUMENT, "offset 10 after 1000 bytes: status %d want 3", st);
    CHECK(details && strstr(details, "partial"), "details name the block: '%s'",
          details ? details : "(none)");
    free(details);
    st = put(ch, "fresh", 7, buf, 1, 1, NULL);
    CHECK(st == GRPC_STATUS_INVALID_ARGUMENT, "first chunk at offset 7: status %d want 3", st);
    fetch_init(&f);
    st = get(ch, "partial", &f, NULL);
    CHECK(st == GRPC_STATUS_NOT_FOUND, "an unfinished block is invisible: status %d", st);
    ember_buf_free(&f.buf);
}

static void test_bad_id(grpc_channel *ch)
{
    const char *bad[] = {"../etc/passwd", "a.blk", "rdd 1", "", NULL};
    char *details = NULL;
    grpc_status_code st;

    for (int i = 0; bad[i]; i++) {
        st = put(ch, bad[i], 0, "x", 1, 1, &details);
        CHECK(st == GRPC_STATUS_INVALID_ARGUMENT, "id '%s': status %d want 3", bad[i], st);
        CHECK(details && strstr(details, bad[i]) && strstr(details, "A-Z"),
              "details name the id and what is allowed: '%s'", details ? details : "(none)");
        free(details);
        details = NULL;
    }
}

static void test_unknown_block(grpc_channel *ch)
{
    char *details = NULL;
    struct fetch f;
    grpc_status_code st;

    fetch_init(&f);
    st = get(ch, "no_such_block", &f, &details);
    CHECK(st == GRPC_STATUS_NOT_FOUND, "unknown block: status %d want 5", st);
    CHECK(details && strstr(details, "no_such_block"), "details name the block: '%s'",
          details ? details : "(none)");
    CHECK(f.chunks == 0, "unknown block: got %d chunks", f.chunks);
    free(details);
    ember_buf_free(&f.buf);
}

static void test_empty_block(grpc_channel *ch)
{
    struct fetch f;
    grpc_status_code st;

    CHECK(put(ch, "result_1_1", 0, "", 0, 1, NULL) == GRPC_STATUS_OK, "put empty block");
    fetch_init(&f);
    st = get(ch, "result_1_1", &f, NULL);
    CHECK(st == GRPC_STATUS_OK && f.chunks == 1 && f.buf.len == 0 && f.saw_last
              && f.total_size == 0,
          "empty block: status %d, %d chunks, %zu bytes, last %d; want one empty last chunk", st,
          f.chunks, f.buf.len, f.saw_last);
    ember_buf_free(&f.buf);
}

static grpc_status_code remove_blocks(grpc_channel *ch, const char *prefix, uint32_t *removed)
{
    Ember__RemoveBlocksRequest req = EMBER__REMOVE_BLOCKS_REQUEST__INIT;
    ProtobufCMessage *rep = NULL;
    grpc_status_code st;

    req.prefix = (char *)prefix;
    st = ember_rpc_call(ch, &ember__block_manager__descriptor, "RemoveBlocks", &req.base, &rep,
                        NULL, NULL, RPC_TIMEOUT_MS, NULL);
    if (rep) {
        *removed = ((Ember__RemoveBlocksReply *)rep)->removed;
        protobuf_c_message_free_unpacked(rep, NULL);
    }
    return st;
}

static void test_remove(grpc_channel *ch)
{
    const char *ids[] = {"shuffle_7_0_0", "shuffle_7_0_1", "shuffle_7_1_0", "shuffle_8_0_0"};
    uint32_t removed = 99;
    struct fetch f;

    for (int i = 0; i < 4; i++)
        CHECK(put(ch, ids[i], 0, ids[i], strlen(ids[i]), 1, NULL) == GRPC_STATUS_OK, "put %s",
              ids[i]);
    CHECK(remove_blocks(ch, "shuffle_7_", &removed) == GRPC_STATUS_OK && removed == 3,
          "remove shuffle_7_: removed %u want 3", removed);
    fetch_init(&f);
    CHECK(get(ch, "shuffle_7_0_1", &f, NULL) == GRPC_STATUS_NOT_FOUND, "shuffle_7_0_1 is gone");
    CHECK(get(ch, "shuffle_8_0_0", &f, NULL) == GRPC_STATUS_OK && f.buf.len == 13,
          "shuffle_8_0_0 is still there (%zu bytes)", f.buf.len);
    ember_buf_free(&f.buf);
    CHECK(remove_blocks(ch, "", &removed) == GRPC_STATUS_INVALID_ARGUMENT,
          "an empty prefix is refused");
}

/* The Stats reply (free it), or NULL. */
static Ember__BlockStats *get_stats(grpc_channel *ch)
{
    Ember__Empty req = EMBER__EMPTY__INIT;
    ProtobufCMessage *rep = NULL;
    grpc_status_code st;

    st = ember_rpc_call(ch, &ember__block_manager__descriptor, "Stats", &req.base, &rep, NULL,
                        NULL, RPC_TIMEOUT_MS, NULL);
    CHECK(st == GRPC_STATUS_OK, "Stats: status %d", st);
    return (Ember__BlockStats *)rep;
}

/* What the cases above leave: result_1_0, result_1_1 and shuffle_8_0_0. */
static void test_stats(grpc_channel *ch)
{
    Ember__BlockStats *s = get_stats(ch);

    if (!s)
        return;
    CHECK(s->blocks == 3, "Stats: blocks %llu want 3", (unsigned long long)s->blocks);
    CHECK(s->bytes_in_memory == LARGE_SIZE + 13, "Stats: bytes_in_memory %llu want %d",
          (unsigned long long)s->bytes_in_memory, LARGE_SIZE + 13);
    CHECK(s->puts == 6, "Stats: puts %llu want 6", (unsigned long long)s->puts);
    CHECK(s->gets == 3, "Stats: gets %llu want 3", (unsigned long long)s->gets);
    CHECK(s->bytes_on_disk == 0 && s->evictions == 0, "Stats: %llu bytes on disk, %llu evictions",
          (unsigned long long)s->bytes_on_disk, (unsigned long long)s->evictions);
    protobuf_c_message_free_unpacked(&s->base, NULL);
}

struct stream_arg {
    grpc_channel *ch;
    struct fetch f;
    grpc_status_code st;
};

static void *slow_get(void *p)
{
    struct stream_arg *a = p;

    a->st = get(a->ch, "big", &a->f, NULL);
    atomic_store(&a->f.got_first, 1); /* in case it failed before any chunk */
    return NULL;
}

/* SIGTERM while a slow reader holds a 32 MiB stream open: exit 0, quickly. */
static void test_stop_during_stream(grpc_channel *ch, struct proc *p)
{
    size_t len = 32 * MIB;
    uint8_t *data = ember_xcalloc(1, len);
    struct stream_arg a = {.ch = ch};
    pthread_t th;
    int status, ms;

    CHECK(put_block(ch, "big", data, len) == GRPC_STATUS_OK, "put 32 MiB");
    free(data);
    fetch_init(&a.f);
    a.f.delay_ms = 100;
    pthread_create(&th, NULL, slow_get, &a);
    while (!atomic_load(&a.f.got_first))
        sleep_ms(10);
    status = stop_blockd(p, &ms);
    CHECK(status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
          "SIGTERM during a stream: status 0x%x after %d ms, want exit 0 within 10 s", status, ms);
    printf("ember-blockd stopped %d ms after SIGTERM, during a stream\n", ms);
    atomic_store(&a.f.stop, 1);
    pthread_join(th, NULL);
    CHECK(a.f.buf.len < len, "the stream was cut short (%zu of %zu bytes)", a.f.buf.len, len);
    ember_buf_free(&a.f.buf);
}

/* Without --dir, blockd spills to /tmp/ember-blockd-<id>, which it removes at exit. */
static void check_default_dir_removed(const struct proc *p)
{
    char dir[256];
    struct stat st;

    snprintf(dir, sizeof(dir), "/tmp/ember-blockd-blockd-127.0.0.1-%s",
             strrchr(p->address, ':') + 1);
    CHECK(stat(dir, &st) != 0, "the default spill directory %s is removed at exit", dir);
}

/* ---- a fake master ----------------------------------------------------- */

#define MAX_DROPPED 64

struct fake_master {
    ember_rpc_server *server;
    pthread_mutex_t lock;
    int registrations, heartbeats, known, is_blockd;
    char id[128], address[128], host[128];
    uint64_t memory, bytes_on_disk, evictions;
    char dropped[MAX_DROPPED][64]; /* every id reported dropped, once each */
    int ndropped;
};

static void record_dropped(struct fake_master *m, const Ember__HeartbeatRequest *req)
{
    for (size_t i = 0; i < req->n_dropped_blocks; i++) {
        int seen = 0;
        for (int j = 0; j < m->ndropped; j++)
            seen |= strcmp(m->dropped[j], req->dropped_blocks[i]) == 0;
        if (!seen && m->ndropped < MAX_DROPPED)
            snprintf(m->dropped[m->ndropped++], sizeof(m->dropped[0]), "%s",
                     req->dropped_blocks[i]);
    }
    m->bytes_on_disk = req->bytes_on_disk;
    m->evictions = req->evictions;
}

static grpc_status_code fm_register(ember_rpc_ctx *ctx, const ProtobufCMessage *in, void *user)
{
    const Ember__RegisterBlockManagerRequest *req = (const Ember__RegisterBlockManagerRequest *)in;
    struct fake_master *m = user;
    Ember__Ack ack = EMBER__ACK__INIT;

    pthread_mutex_lock(&m->lock);
    snprintf(m->id, sizeof(m->id), "%s", req->blockd_id);
    snprintf(m->address, sizeof(m->address), "%s", req->address);
    snprintf(m->host, sizeof(m->host), "%s", req->host);
    m->memory = req->memory_bytes;
    m->registrations++;
    m->known = 1;
    pthread_mutex_unlock(&m->lock);
    return ember_rpc_send(ctx, &ack.base) == 0 ? GRPC_STATUS_OK : GRPC_STATUS_CANCELLED;
}

static grpc_status_code fm_heartbeat(ember_rpc_ctx *ctx, const ProtobufCMessage *in, void *user)
{
    const Ember__HeartbeatRequest *req = (const Ember__HeartbeatRequest *)in;
    struct fake_master *m = user;
    Ember__HeartbeatReply rep = EMBER__HEARTBEAT_REPLY__INIT;

    pthread_mutex_lock(&m->lock);
    m->heartbeats++;
    m->is_blockd = req->is_blockd;
    record_dropped(m, req);
    rep.known = m->known && strcmp(req->id, m->id) == 0;
    pthread_mutex_unlock(&m->lock);
    return ember_rpc_send(ctx, &rep.base) == 0 ? GRPC_STATUS_OK : GRPC_STATUS_CANCELLED;
}

static const ember_rpc_method_impl fake_master_methods[] = {
    {"RegisterBlockManager", EMBER_RPC_UNARY, fm_register},
    {"Heartbeat", EMBER_RPC_UNARY, fm_heartbeat},
};

static int fake_master_start(struct fake_master *m, const char *addr, int *port)
{
    m->server = ember_rpc_server_create(addr, port, NULL);
    if (!m->server)
        return -1;
    if (ember_rpc_server_add_service(m->server, &ember__master__descriptor, fake_master_methods, 2,
                                     m)
        != 0)
        abort();
    ember_rpc_server_start(m->server, 2);
    return 0;
}

/* Waits until a heartbeat reported exactly these totals; 0 on success. */
static int wait_totals(struct fake_master *m, uint64_t evictions, uint64_t bytes_on_disk, int ms)
{
    for (int waited = 0; waited < ms * timeout_scale; waited += 50) {
        pthread_mutex_lock(&m->lock);
        int done = m->evictions == evictions && m->bytes_on_disk == bytes_on_disk;
        pthread_mutex_unlock(&m->lock);
        if (done)
            return 0;
        sleep_ms(50);
    }
    return -1;
}

/* Waits until *counter reaches want; 0 on success. */
static int wait_count(struct fake_master *m, const int *counter, int want, int ms)
{
    for (int waited = 0; waited < ms * timeout_scale; waited += 50) {
        pthread_mutex_lock(&m->lock);
        int n = *counter;
        pthread_mutex_unlock(&m->lock);
        if (n >= want)
            return 0;
        sleep_ms(50);
    }
    return -1;
}

/* The master comes up after blockd, then forgets it: blockd registers both times. */
static void test_registration(const char *bin)
{
    struct fake_master m = {.lock = PTHREAD_MUTEX_INITIALIZER};
    const char *extra[] = {"--master", NULL, "--id", "blockd-test", "--host", "testhost",
                           "--memory", "12345", "--log-level", "info", NULL};
    char master_addr[64], want_address[160];
    struct proc p;
    int port = 0, status, ms;

    if (fake_master_start(&m, "127.0.0.1:0", &port) != 0) {
        CHECK(0, "cannot start the fake master");
        return;
    }
    ember_rpc_server_shutdown(m.server); /* down until blockd has tried a while */
    snprintf(master_addr, sizeof(master_addr), "127.0.0.1:%d", port);
    extra[1] = master_addr;
    if (start_blockd(bin, extra, &p) != 0) {
        CHECK(0, "ember-blockd with a fake master did not start");
        stop_blockd(&p, &ms);
        return;
    }
    sleep_ms(2500);
    CHECK(fake_master_start(&m, master_addr, &port) == 0, "fake master back on %s", master_addr);
    CHECK(wait_count(&m, &m.registrations, 1, 5000) == 0,
          "blockd registered once the master came up");
    snprintf(want_address, sizeof(want_address), "testhost:%s", strrchr(p.address, ':') + 1);
    CHECK(strcmp(m.id, "blockd-test") == 0 && strcmp(m.host, "testhost") == 0
              && strcmp(m.address, want_address) == 0 && m.memory == 12345,
          "registration: id %s host %s address %s memory %llu", m.id, m.host, m.address,
          (unsigned long long)m.memory);
    CHECK(strcmp(p.address, want_address) == 0, "ready file: got %s want %s", p.address,
          want_address);
    CHECK(wait_count(&m, &m.heartbeats, 2, 5000) == 0 && m.is_blockd, "heartbeats with is_blockd");
    pthread_mutex_lock(&m.lock);
    m.known = 0; /* as a restarted master would */
    pthread_mutex_unlock(&m.lock);
    CHECK(wait_count(&m, &m.registrations, 2, 5000) == 0,
          "known=false makes blockd register again");
    status = stop_blockd(&p, &ms);
    CHECK(status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
          "stop with a master: status 0x%x after %d ms", status, ms);
    if (m.server)
        ember_rpc_server_shutdown(m.server);
}

/* ---- the memory limit ----------------------------------------------- */

#define LEVEL_BLOCKS 10

static const struct level {
    const char *prefix;
    Ember__BlockStorage storage;
} levels[] = {
    {"pinned", EMBER__BLOCK_STORAGE__PINNED},
    {"memonly", EMBER__BLOCK_STORAGE__MEMORY_ONLY},
    {"memdisk", EMBER__BLOCK_STORAGE__MEMORY_AND_DISK},
    {"diskonly", EMBER__BLOCK_STORAGE__DISK_ONLY},
};

static uint8_t block_byte(int level, int i, size_t pos)
{
    return pattern(pos + (size_t)(level * LEVEL_BLOCKS + i) * 1000003u);
}

static void fill_block(uint8_t *data, int level, int i)
{
    for (size_t pos = 0; pos < MIB; pos++)
        data[pos] = block_byte(level, i, pos);
}

/* Number of files in dir ending in ".blk"; -1 when it cannot be read. */
static int count_block_files(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    int n = 0;

    if (!d)
        return -1;
    while ((de = readdir(d)) != NULL) {
        size_t len = strlen(de->d_name);
        n += len > 4 && strcmp(de->d_name + len - 4, ".blk") == 0;
    }
    closedir(d);
    return n;
}

static int file_exists(const char *dir, const char *id)
{
    char path[256];
    struct stat st;

    snprintf(path, sizeof(path), "%s/%s.blk", dir, id);
    return stat(path, &st) == 0;
}

/* With 1 MiB blocks put in this order under a 4 MiB limit: pinned_0..5 and
 * memdisk_0..5 are spilled, every memonly block is dropped (the last four by
 * the memdisk puts), diskonly goes straight to disk; memdisk_6..9 stay. */
static int want_on_disk(int level, int i)
{
    return level == 0 || level == 3 || (level == 2 && i < 6);
}

static void put_all_levels(grpc_channel *ch)
{
    uint8_t *data = ember_xmalloc(MIB);
    char id[32];

    for (int l = 0; l < 4; l++) {
        for (int i = 0; i < LEVEL_BLOCKS; i++) {
            snprintf(id, sizeof(id), "%s_%d", levels[l].prefix, i);
            fill_block(data, l, i);
            grpc_status_code st = put_block_level(ch, id, data, MIB, levels[l].storage);
            CHECK(st == GRPC_STATUS_OK, "put %s: status %d", id, st);
        }
    }
    free(data);
}

static void read_all_levels(grpc_channel *ch, const char *dir)
{
    char id[32];

    for (int l = 0; l < 4; l++) {
        for (int i = 0; i < LEVEL_BLOCKS; i++) {
            struct fetch f;
            size_t bad = 0;
            snprintf(id, sizeof(id), "%s_%d", levels[l].prefix, i);
            fetch_init(&f);
            grpc_status_code st = get(ch, id, &f, NULL);
            grpc_status_code want = l == 1 ? GRPC_STATUS_NOT_FOUND : GRPC_STATUS_OK;
            CHECK(st == want, "get %s: status %d want %d", id, st, want);
            for (size_t pos = 0; st == GRPC_STATUS_OK && pos < f.buf.len; pos++)
                bad += f.buf.data[pos] != block_byte(l, i, pos);
            CHECK(st != GRPC_STATUS_OK || (f.buf.len == MIB && bad == 0 && f.oversize == 0),
                  "get %s: %zu bytes, %zu of them wrong; want 1 MiB exact", id, f.buf.len, bad);
            CHECK(file_exists(dir, id) == want_on_disk(l, i), "%s: file %s, want %s", id,
                  file_exists(dir, id) ? "exists" : "missing", want_on_disk(l, i) ? "one" : "none");
            ember_buf_free(&f.buf);
        }
    }
}

static void check_level_stats(grpc_channel *ch, uint64_t want_gets)
{
    Ember__BlockStats *s = get_stats(ch);

    if (!s)
        return;
    CHECK(s->blocks == 30 && s->bytes_in_memory == 4 * MIB && s->bytes_on_disk == 26 * MIB
              && s->evictions == 26 && s->gets == want_gets,
          "Stats: %llu blocks, %llu bytes in memory, %llu on disk, %llu evictions, %llu gets; "
          "want 30, 4 MiB, 26 MiB, 26, %llu",
          (unsigned long long)s->blocks, (unsigned long long)s->bytes_in_memory,
          (unsigned long long)s->bytes_on_disk, (unsigned long long)s->evictions,
          (unsigned long long)s->gets, (unsigned long long)want_gets);
    protobuf_c_message_free_unpacked(&s->base, NULL);
}

/* Ranges of a spilled, an in-memory and a DISK_ONLY block in one GetRanges. */
static void check_ranges(grpc_channel *ch)
{
    static const struct {
        int level, index;
        uint64_t offset, length;
    } want[] = {{0, 0, 1000, 700000}, {2, 9, 0, MIB}, {3, 3, 7, 300000}};
    Ember__BlockRange r[3], *rp[3];
    Ember__GetRangesRequest req = EMBER__GET_RANGES_REQUEST__INIT;
    char ids[3][32];
    struct fetch f;
    size_t pos = 0, bad = 0;

    for (int i = 0; i < 3; i++) {
        ember__block_range__init(&r[i]);
        snprintf(ids[i], sizeof(ids[i]), "%s_%d", levels[want[i].level].prefix, want[i].index);
        r[i].block_id = ids[i];
        r[i].offset = want[i].offset;
        r[i].length = want[i].length;
        rp[i] = &r[i];
    }
    req.n_ranges = 3;
    req.ranges = rp;
    fetch_init(&f);
    grpc_status_code st = ember_rpc_call(ch, &ember__block_manager__descriptor, "GetRanges",
                                         &req.base, NULL, on_chunk, &f, RPC_TIMEOUT_MS, NULL);
    CHECK(st == GRPC_STATUS_OK, "GetRanges: status %d", st);
    for (int i = 0; i < 3; i++)
        for (uint64_t k = 0; k < want[i].length && pos < f.buf.len; k++, pos++)
            bad += f.buf.data[pos] != block_byte(want[i].level, want[i].index, want[i].offset + k);
    CHECK(pos == f.buf.len && f.buf.len == 700000 + MIB + 300000 && bad == 0,
          "GetRanges: %zu bytes, %zu wrong", f.buf.len, bad);
    ember_buf_free(&f.buf);
}

/* A block manager with 4 MiB of memory and a spill directory that does not
 * exist yet: 10 blocks of 1 MiB of every storage level, read back byte-exact;
 * Stats and heartbeats count them; the directory is gone after SIGTERM. */
static void test_memory_limit(const char *bin)
{
    struct fake_master m = {.lock = PTHREAD_MUTEX_INITIALIZER};
    char root[] = "/tmp/test_blockd_spill.XXXXXX", dir[96], parent[64], master_addr[64];
    const char *extra[] = {"--memory", "4194304", "--dir", dir, "--master", master_addr, NULL};
    struct proc p;
    struct stat st;
    int port = 0, status, ms;

    if (!mkdtemp(root) || fake_master_start(&m, "127.0.0.1:0", &port) != 0) {
        CHECK(0, "cannot make %s or start the fake master", root);
        return;
    }
    snprintf(parent, sizeof(parent), "%s/spill", root);
    snprintf(dir, sizeof(dir), "%s/blocks", parent);
    snprintf(master_addr, sizeof(master_addr), "127.0.0.1:%d", port);
    if (start_blockd(bin, extra, &p) != 0) {
        CHECK(0, "ember-blockd --memory 4194304 --dir %s did not start", dir);
        stop_blockd(&p, &ms);
        ember_rpc_server_shutdown(m.server);
        return;
    }
    CHECK(stat(dir, &st) == 0 && S_ISDIR(st.st_mode) && (st.st_mode & 0777) == 0700,
          "--dir %s is created with mode 0700", dir);
    grpc_channel *ch = ember_rpc_channel_create(p.address, 0);
    put_all_levels(ch);
    check_level_stats(ch, 0);
    CHECK(count_block_files(dir) == 26, "%d block files in %s, want 26", count_block_files(dir),
          dir);
    read_all_levels(ch, dir);
    check_ranges(ch);
    check_level_stats(ch, 33);
    CHECK(wait_count(&m, &m.ndropped, LEVEL_BLOCKS, 5000) == 0,
          "heartbeats reported %d dropped blocks, want the %d memonly ones", m.ndropped,
          LEVEL_BLOCKS);
    /* The last drop may be reported a heartbeat before the spill that follows it
     * is counted: wait for a heartbeat with the final totals. */
    CHECK(wait_totals(&m, 26, 26 * MIB, 5000) == 0,
          "heartbeat: %llu evictions, %llu bytes on disk", (unsigned long long)m.evictions,
          (unsigned long long)m.bytes_on_disk);
    grpc_channel_destroy(ch);
    status = stop_blockd(&p, &ms);
    CHECK(status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
          "SIGTERM: status 0x%x after %d ms, want exit 0", status, ms);
    CHECK(stat(dir, &st) != 0, "%s is removed at exit", dir);
    printf("4 MiB of memory: 40 blocks of 1 MiB put, 26 spilled or written to disk, %d dropped "
           "and reported\n", m.ndropped);
    ember_rpc_server_shutdown(m.server);
    rmdir(parent);
    rmdir(root);
}

int main(int argc, char **argv)
{
    const char *no_master[] = {"--master", "127.0.0.1:1", NULL};
    struct proc p;
    grpc_channel *ch;
    int ms;

    if (argc != 2) {
        fprintf(stderr, "usage: %s path/to/ember-blockd\n", argv[0]);
        return 2;
    }
    if (getenv("EMBER_TEST_WRAPPER"))
        timeout_scale = 3;
    grpc_init();
    if (start_blockd(argv[1], no_master, &p) != 0) {
        stop_blockd(&p, &ms);
        return 1;
    }
    ch = ember_rpc_channel_create(p.address, 0);
    test_large_block(ch);
    test_wrong_offset(ch);
    test_bad_id(ch);
    test_unknown_block(ch);
    test_empty_block(ch);
    test_remove(ch);
    test_stats(ch);
    test_local_put(ch);            /* after test_stats, which counts every put and get */
    test_stop_during_stream(ch, &p);
    grpc_channel_destroy(ch);
    stop_blockd(&p, &ms); /* already stopped by the last case; removes the ready file */
    check_default_dir_removed(&p);
    test_registration(argv[1]);
    test_memory_limit(argv[1]);
    put_locally = 1;               /* the same blocks, handed over in memfds */
    test_memory_limit(argv[1]);
    grpc_shutdown();
    return TEST_EXIT();
}
