/* blockd_disk.c - see blockd_disk.h. Plain POSIX file calls; the store decides
 * when to call them (never with its lock held for long writes). */
#define _GNU_SOURCE
#include "blockd_disk.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

#define MAX_ID_LEN 200

int blockd_disk_valid_id(const char *id)
{
    size_t n = strspn(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_");

    return n > 0 && n <= MAX_ID_LEN && id[n] == '\0';
}

/* "<id>.blk" or "<id>.<digits>.tmp": the only names this module creates. */
static int is_block_file(const char *name)
{
    const char *dot = strchr(name, '.');
    char *id;
    int ok;

    if (!dot)
        return 0;
    id = ember_xasprintf("%.*s", (int)(dot - name), name);
    ok = blockd_disk_valid_id(id);
    free(id);
    if (!ok)
        return 0;
    if (strcmp(dot, ".blk") == 0)
        return 1;
    dot++;
    size_t digits = strspn(dot, "0123456789");
    return digits > 0 && strcmp(dot + digits, ".tmp") == 0;
}

/* mkdir -p: every missing component is created with mode 0700. */
static int make_dirs(const char *dir)
{
    char *path = ember_xstrdup(dir);
    int rc = 0;

    for (char *p = path + 1; rc == 0; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char c = *p;
        *p = '\0';
        if (mkdir(path, 0700) != 0 && errno != EEXIST) {
            ember_log_error_errno("cannot create spill directory %s", path);
            rc = EMBER_EIO;
        }
        *p = c;
        if (c == '\0')
            break;
    }
    free(path);
    return rc;
}

/* Removes the block files in `dir`; returns how many other entries it holds. */
static int remove_block_files(const char *dir, DIR *d)
{
    struct dirent *de;
    int others = 0;

    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (!is_block_file(de->d_name)) {
            others++;
            continue;
        }
        char *path = ember_xasprintf("%s/%s", dir, de->d_name);
        blockd_disk_unlink(path);
        free(path);
    }
    return others;
}

int blockd_disk_open_dir(const char *dir)
{
    struct stat st;
    DIR *d;
    int rc;

    rc = make_dirs(dir);
    if (rc != 0)
        return rc;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        ember_log_error("spill directory %s is not a directory", dir);
        return EMBER_EIO;
    }
    d = opendir(dir);
    if (!d) {
        ember_log_error_errno("cannot read spill directory %s", dir);
        return EMBER_EIO;
    }
    remove_block_files(dir, d);
    closedir(d);
    return 0;
}

void blockd_disk_remove_dir(const char *dir)
{
    DIR *d = opendir(dir);
    int others;

    if (!d) {
        if (errno != ENOENT)
            ember_log_warn_errno("cannot read spill directory %s to remove it", dir);
        return;
    }
    others = remove_block_files(dir, d);
    closedir(d);
    if (others > 0)
        ember_log_info("spill directory %s kept: it holds %d files that are not blocks", dir,
                       others);
    else if (rmdir(dir) != 0)
        ember_log_warn_errno("cannot remove spill directory %s", dir);
}

char *blockd_disk_block_path(const char *dir, const char *id)
{
    return ember_xasprintf("%s/%s.blk", dir, id);
}

char *blockd_disk_tmp_path(const char *dir, const char *id, uint64_t seq)
{
    return ember_xasprintf("%s/%s.%" PRIu64 ".tmp", dir, id, seq);
}

int blockd_disk_create(const char *path, int *fd)
{
    int f = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);

    if (f < 0) {
        ember_log_error_errno("cannot create block file %s", path);
        return EMBER_EIO;
    }
    *fd = f;
    return 0;
}

int blockd_disk_open(const char *path, int *fd)
{
    int f = open(path, O_RDONLY | O_CLOEXEC);

    if (f < 0) {
        ember_log_error_errno("cannot open block file %s", path);
        return EMBER_EIO;
    }
    *fd = f;
    return 0;
}

int blockd_disk_write(int fd, const char *path, const void *p, size_t n)
{
    const uint8_t *q = p;

    while (n > 0) {
        ssize_t w = write(fd, q, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            if (w == 0)
                errno = ENOSPC;
            ember_log_error_errno("cannot write %zu bytes to block file %s", n, path);
            return EMBER_EIO;
        }
        q += w;
        n -= (size_t)w;
    }
    return 0;
}

int blockd_disk_read(int fd, const char *path, uint64_t offset, void *p, size_t n)
{
    uint8_t *q = p;

    while (n > 0) {
        ssize_t r = pread(fd, q, n, (off_t)offset);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            if (r == 0)
                errno = ENODATA; /* shorter than it was written: truncated by someone */
            ember_log_error_errno("cannot read %zu bytes at offset %" PRIu64
                                  " of block file %s", n, offset, path);
            return EMBER_EIO;
        }
        q += r;
        n -= (size_t)r;
        offset += (uint64_t)r;
    }
    return 0;
}

int blockd_disk_write_file(const char *path, const void *p, size_t n)
{
    int fd, rc;

    rc = blockd_disk_create(path, &fd);
    if (rc != 0)
        return rc;
    rc = blockd_disk_write(fd, path, p, n);
    if (close(fd) != 0 && rc == 0) {
        ember_log_error_errno("cannot write block file %s", path);
        rc = EMBER_EIO;
    }
    if (rc != 0)
        blockd_disk_unlink(path);
    return rc;
}

int blockd_disk_rename(const char *from, const char *to)
{
    if (rename(from, to) == 0)
        return 0;
    ember_log_error_errno("cannot rename block file %s to %s", from, to);
    blockd_disk_unlink(from);
    return EMBER_EIO;
}

void blockd_disk_unlink(const char *path)
{
    if (unlink(path) != 0 && errno != ENOENT)
        ember_log_warn_errno("cannot remove block file %s", path);
}
