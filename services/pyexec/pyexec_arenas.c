/* pymalloc's arenas kept across tasks instead of returned to the kernel.
 *
 * CPython carves every small object (a str, a float, a tuple) out of 1 MiB
 * arenas it gets from mmap and gives back with munmap as soon as one is
 * empty. A task that makes millions of small objects and drops them (split a
 * partition's text into 2.5 million float strings, as KMeans's parsing does)
 * therefore maps, faults in and zeroes hundreds of MiB anew in every task:
 * a quarter of that parsing's CPU time was page faults. Here freed arenas go
 * to a free list (linked through their first bytes) of at most a configured
 * size, and later allocations of that size take them back: pages already
 * resident, no system call. Nothing else changes: pymalloc initialises every
 * pool it carves, so an arena's old bytes are never read.
 *
 * EMBER_PYEXEC_ARENA_POOL (bytes, k/m/g suffix allowed; 0 turns it off;
 * default 512m) bounds the idle memory held. The runtime releases the list
 * when the process passes its memory budget (_ember_io.release_arenas). The
 * hooks run with the GIL held, as every pymalloc call does. */
#include "pyexec.h"

#include <stdlib.h>
#include <limits.h>
#include <sys/mman.h>

#include "error.h"

#define ARENA_POOL_DEFAULT ((size_t)512 << 20)

static size_t pool_limit;       /* bytes the list may hold */
static size_t pool_arena_size;  /* the size pymalloc asks for: the only one kept */
static size_t pool_bytes;
static void *pool_head;         /* each free arena's first word is the next */
static unsigned long long pool_reused;

static void *arena_alloc(void *ctx, size_t size)
{
    (void)ctx;
    if (pool_head && size == pool_arena_size) {
        void *arena = pool_head;

        pool_head = *(void **)arena;
        pool_bytes -= size;
        pool_reused++;
        return arena;
    }
    void *arena = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return arena == MAP_FAILED ? NULL : arena;
}

static void arena_free(void *ctx, void *arena, size_t size)
{
    (void)ctx;
    if (pool_arena_size == 0)
        pool_arena_size = size;
    if (size == pool_arena_size && pool_bytes + size <= pool_limit) {
        *(void **)arena = pool_head;
        pool_head = arena;
        pool_bytes += size;
        return;
    }
    munmap(arena, size);
}

long long pyexec_parse_bytes(const char *text)
{
    char *end;
    long long n = strtoll(text, &end, 10);

    if (end == text || n < 0)
        return -1;
    int shift = 0;
    switch (*end) {
    case 'k': case 'K': shift = 10; end++; break;
    case 'm': case 'M': shift = 20; end++; break;
    case 'g': case 'G': shift = 30; end++; break;
    default: break;
    }
    if (n > (LLONG_MAX >> shift))
        return -1;
    n <<= shift;
    return *end == '\0' ? n : -1;
}

int pyexec_arenas_install(void)
{
    const char *env = getenv("EMBER_PYEXEC_ARENA_POOL");
    long long limit = ARENA_POOL_DEFAULT;

    if (env && *env) {
        limit = pyexec_parse_bytes(env);
        if (limit < 0) {
            fprintf(stderr, "ember-pyexec: EMBER_PYEXEC_ARENA_POOL=%s is not a size in bytes "
                    "(like 512m; 0 turns the pool off)\n", env);
            return EMBER_EINVAL;
        }
    }
    if (limit == 0)
        return 0;                      /* CPython's own allocator: munmap at once */
    pool_limit = (size_t)limit;
    PyObjectArenaAllocator hooks = {NULL, arena_alloc, arena_free};
    PyObject_SetArenaAllocator(&hooks);
    return 0;
}

void pyexec_arenas_release(void)
{
    while (pool_head) {
        void *arena = pool_head;

        pool_head = *(void **)arena;
        munmap(arena, pool_arena_size);
    }
    pool_bytes = 0;
}

void pyexec_arenas_stats(size_t *held, unsigned long long *reused, size_t *limit)
{
    *held = pool_bytes;
    *reused = pool_reused;
    *limit = pool_limit;
}
