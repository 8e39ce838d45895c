/* glibc's heap kept across tasks for allocations under 32 MiB, up to a size
 * bounded by each task's memory budget, instead of mapped anew for each one
 * and returned at its free.
 *
 * glibc's own behaviour: an allocation of M_MMAP_THRESHOLD bytes or more
 * (128 KiB at first) is mapped on its own and unmapped at its free; the
 * threshold then follows the largest such block freed, up to 32 MiB, and
 * M_TRIM_THRESHOLD follows at twice that. A task's large temporaries (KMeans:
 * the 24 MB text of a partition joined and stripped, its 20 MB numpy block,
 * kmeans_partial's arrays of the same size, the block's pickle) therefore came
 * from pages faulted in and zeroed again in every task: about 25,000 of a
 * first iteration's 158,000 pyexec page faults, many of them transparent huge
 * pages that numpy asks for.
 *
 * What the options do (glibc 2.36, malloc.c): M_MMAP_THRESHOLD: allocations
 * of at least that size get their own mapping (never the heap). M_TRIM_THRESHOLD:
 * after a free of 64 KiB or more (once merged with its free neighbours), when
 * the free chunk at the top of the main heap is that size or more, the heap
 * is cut down until M_TOP_PAD bytes stay free at its top (systrim). So
 * the top holds less than the trim threshold after any such free, and M_TOP_PAD
 * after a trim; M_TOP_PAD is also added to each extension of the heap
 * (address space, not resident until touched). Nothing bounds free memory
 * below a live chunk (holes); other threads' arenas are cut by the same rule,
 * each at its own top. Setting any of them turns glibc's dynamic thresholds
 * off for the rest of the process.
 *
 * Here, with keep K (the configured size, at most a quarter of the task's
 * budget): M_MMAP_THRESHOLD = min(K/2, 32 MiB), M_TRIM_THRESHOLD = K,
 * M_TOP_PAD = K/2. Blocks under half the keep come from the heap; freed, they
 * stay at its top for the next task until the top reaches K, and K/2 of it
 * stays after a trim. The top's free memory raises a task's resident memory by
 * less than K: budgets enforced against it keep 3/4 for the task. Results do
 * not change (malloc never promised zeroed bytes; calloc clears what it
 * reuses, one memset where glibc's fresh mapping came zeroed).
 *
 * EMBER_PYEXEC_HEAP_KEEP (bytes, k/m/g suffix allowed; 0 keeps glibc's own
 * behaviour; default 128m) is K before the budget bounds it. The runtime gives
 * all free heap memory back when the process passes half its memory budget
 * (_ember_io.release_heap), as it does the arena pool's. */
#include "pyexec.h"

#include <limits.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>

#include "error.h"

#define HEAP_KEEP_DEFAULT ((size_t)128 << 20)
/* glibc's largest mmap threshold on 64-bit (DEFAULT_MMAP_THRESHOLD_MAX). */
#define HEAP_MMAP_THRESHOLD_MAX ((size_t)32 << 20)
/* Under this, the keep is not worth changing glibc's defaults (its first trim threshold). */
#define HEAP_KEEP_MIN ((size_t)256 << 10)

static size_t configured;     /* EMBER_PYEXEC_HEAP_KEEP; 0: glibc's defaults */
static size_t keep_limit;     /* the keep in force (trim threshold); 0: glibc's defaults */

/* Sets glibc's options for keep; 0 when glibc refused one (not glibc's malloc). */
static int apply(size_t keep)
{
    size_t mmap_threshold = keep / 2 < HEAP_MMAP_THRESHOLD_MAX ? keep / 2 : HEAP_MMAP_THRESHOLD_MAX;

    return mallopt(M_MMAP_THRESHOLD, (int)mmap_threshold)
        && mallopt(M_TOP_PAD, (int)(keep / 2))
        && mallopt(M_TRIM_THRESHOLD, (int)keep);
}

int pyexec_heap_install(void)
{
    const char *env = getenv("EMBER_PYEXEC_HEAP_KEEP");
    long long limit = HEAP_KEEP_DEFAULT;

    if (env && *env) {
        limit = pyexec_parse_bytes(env);
        if (limit < 0 || limit > INT_MAX) {
            fprintf(stderr, "ember-pyexec: EMBER_PYEXEC_HEAP_KEEP=%s is not a size in bytes "
                    "under 2g (like 128m; 0 keeps glibc's defaults)\n", env);
            return EMBER_EINVAL;
        }
    }
    if ((size_t)limit < HEAP_KEEP_MIN)
        return 0;
    if (!apply((size_t)limit)) {
        /* Not glibc's malloc, or an option refused: nothing said kept. */
        return 0;
    }
    configured = keep_limit = (size_t)limit;
    return 0;
}

size_t pyexec_heap_budget(size_t budget)
{
    size_t keep = configured;

    if (!configured)
        return 0;
    if (budget && budget / 4 < keep)
        keep = budget / 4;
    if (keep < HEAP_KEEP_MIN)
        keep = HEAP_KEEP_MIN;
    if (keep != keep_limit && apply(keep))
        keep_limit = keep;
    return keep_limit;
}

void pyexec_heap_release(void)
{
    if (keep_limit)
        malloc_trim(0);
}

void pyexec_heap_stats(size_t *free_bytes, size_t *limit)
{
    struct mallinfo2 info = mallinfo2();

    *free_bytes = info.fordblks;
    *limit = keep_limit;
}
