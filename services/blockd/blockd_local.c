/* blockd_local.c - see blockd_local.h. */
#define _GNU_SOURCE
#include "blockd_local.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

#define NEEDED_SEALS (F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW)

/* Only "/proc/<pid>/fd/<fd>" with plain decimal numbers: the call names a
 * descriptor of its own process, never a file. */
static int proc_fd_path(const char *path)
{
    unsigned pid, fd;
    int end = 0;
    char again[64];

    if (strlen(path) >= sizeof(again) || sscanf(path, "/proc/%u/fd/%u%n", &pid, &fd, &end) != 2
        || path[end] != '\0')
        return 0;
    snprintf(again, sizeof(again), "/proc/%u/fd/%u", pid, fd);
    return strcmp(again, path) == 0;
}

/* The token is what the writer put after "ember-block-": letters and digits. */
static int valid_token(const char *token)
{
    size_t n = strlen(token);

    if (n < 16 || n > 64)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((token[i] >= '0' && token[i] <= '9') || (token[i] >= 'a' && token[i] <= 'z')))
            return 0;
    return 1;
}

static int refuse(char **why, const char *path, const char *what, int err)
{
    *why = err ? ember_xasprintf("%s: %s: %s", path, what, strerror(err))
               : ember_xasprintf("%s: %s", path, what);
    return BLOCKD_LOCAL_REFUSED;
}

/* Out of descriptors, memory or mappings for now: the next block may do. */
static int transient(int err)
{
    return err == EMFILE || err == ENFILE || err == ENOMEM || err == EAGAIN;
}

static int failed(char **why, const char *path, const char *what, int err)
{
    refuse(why, path, what, err);
    return transient(err) ? BLOCKD_LOCAL_TRY_LATER : BLOCKD_LOCAL_REFUSED;
}

int blockd_local_map(const char *path, const char *token, uint64_t size, const uint8_t **data,
                     char **why)
{
    char pinned[64], link[256], expected[128];
    struct stat st;
    ssize_t n;
    int at, fd, seals;
    void *p;

    if (!proc_fd_path(path))
        return refuse(why, path, "not a /proc/<pid>/fd/<fd> path", 0);
    if (!valid_token(token))
        return refuse(why, path, "its token is not 16 to 64 lower-case letters and digits", 0);
    /* O_PATH opens nothing (no device or FIFO side effects) but pins the file the
     * descriptor names now, so every check below is of that one file even if the
     * caller's descriptor number is closed and reused meanwhile. */
    at = open(path, O_PATH | O_CLOEXEC);
    if (at < 0)
        return failed(why, path, "cannot open it", errno);
    snprintf(pinned, sizeof(pinned), "/proc/self/fd/%d", at);
    /* Another host's or another pid namespace's descriptor of that number is
     * some other file (or none): only the memfd with the caller's random name
     * is the block. */
    n = readlink(pinned, link, sizeof(link) - 1);
    if (n < 0) {
        int err = errno;
        close(at);
        return failed(why, path, "cannot read the link", err);
    }
    link[n] = '\0';
    snprintf(expected, sizeof(expected), "/memfd:ember-block-%s (deleted)", token);
    if (strcmp(link, expected) != 0 || fstat(at, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(at);
        return refuse(why, path, "not the memfd the call names", 0);
    }
    fd = open(pinned, O_RDONLY | O_CLOEXEC | O_NOCTTY);   /* the same file, readable */
    close(at);
    if (fd < 0)
        return failed(why, path, "cannot open it for reading", errno);
    seals = fcntl(fd, F_GET_SEALS);
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || seals < 0
        || (seals & NEEDED_SEALS) != NEEDED_SEALS) {
        close(fd);
        return refuse(why, path, "not a memfd sealed against writing and resizing", 0);
    }
    if ((uint64_t)st.st_size != size) {
        close(fd);
        return refuse(why, path, "its size is not the one the call names", 0);
    }
    if (size == 0) {
        close(fd);
        *data = NULL;
        return 0;
    }
    if (size > SIZE_MAX) {
        close(fd);
        return refuse(why, path, "too large to map", 0);
    }
    p = mmap(NULL, (size_t)size, PROT_READ, MAP_SHARED, fd, 0);
    int err = errno;
    close(fd);                          /* the mapping keeps the memfd */
    if (p == MAP_FAILED)
        return failed(why, path, "cannot map it", err);
    *data = p;
    return 0;
}

void blockd_local_unmap(const uint8_t *data, uint64_t size)
{
    if (data && size)
        munmap((void *)data, (size_t)size);
}
