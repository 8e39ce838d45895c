/* glibc's heap kept across tasks for allocations under 32 MiB, instead of
 * mapped anew for each one and returned at its free.
 *
 * By default glibc maps an allocation of 128 KiB or more on its own (the
 * threshold then follows the largest one freed, up to 32 MiB) and gives the
 * top of its heap back to the kernel once more than twice that is free. A
 * task's large temporaries (KMeans: the 24 MB text of a partition joined and
 * stripped, its 20 MB numpy block, kmeans_partial's arrays of the same size,
 * the block's pickle) therefore came from pages faulted in and zeroed again in
 * every task: about 25,000 of a first iteration's 158,000 pyexec page
 * faults, many of them transparent huge pages that numpy asks for (zeroing
 * pages took 0.15-0.4 of its 5.5 CPU-s in profiles, partly for pages that
 * must be new anyway). Here every allocation
 * under 32 MiB comes from the heap, and freed memory stays there, up to a
 * configured size at its top, for the next task to reuse. Nothing else
 * changes: malloc never promised zeroed bytes, and calloc still clears what
 * it reuses.
 *
 * EMBER_PYEXEC_HEAP_KEEP (bytes, k/m/g suffix allowed; 0 keeps glibc's own
 * behaviour; default 512m) bounds the free memory kept at the heap's top. The
 * runtime gives all free heap memory back when the process passes its memory
 * budget (_ember_io.release_heap), as it does the arena pool's. */
#include "pyexec.h"

#include <limits.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>

#include "error.h"

#define HEAP_KEEP_DEFAULT ((size_t)512 << 20)
/* glibc's largest mmap threshold on 64-bit (DEFAULT_MMAP_THRESHOLD_MAX). */
#define HEAP_MMAP_THRESHOLD ((size_t)32 << 20)

static size_t keep_limit;

int pyexec_heap_install(void)
{
    const char *env = getenv("EMBER_PYEXEC_HEAP_KEEP");
    long long limit = HEAP_KEEP_DEFAULT;

    if (env && *env) {
        limit = pyexec_parse_bytes(env);
        if (limit < 0 || limit > INT_MAX) {
            fprintf(stderr, "ember-pyexec: EMBER_PYEXEC_HEAP_KEEP=%s is not a size in bytes "
                    "under 2g (like 512m; 0 keeps glibc's defaults)\n", env);
            return EMBER_EINVAL;
        }
    }
    if (limit == 0)
        return 0;
    if (!mallopt(M_MMAP_THRESHOLD, (int)HEAP_MMAP_THRESHOLD)
        || !mallopt(M_TRIM_THRESHOLD, (int)limit))
        return 0;                      /* not glibc's malloc: its own behaviour stays */
    keep_limit = (size_t)limit;
    return 0;
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
