/* The block manager's spill directory: one file per block, named from the block
 * id ("<id>.blk", and "<id>.<n>.tmp" while written), created, read and removed.
 * Every failure is logged here with the path and errno and returned as EMBER_EIO. */
#ifndef EMBER_BLOCKD_DISK_H
#define EMBER_BLOCKD_DISK_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

/* 1 when `id` can name a block file: 1 to 200 characters of [A-Za-z0-9_]. */
int blockd_disk_valid_id(const char *id);

/* Creates `dir` and its parents (mode 0700) and removes the block files a
 * previous run may have left in it; other files are left alone. */
int blockd_disk_open_dir(const char *dir) EMBER_MUST_CHECK;
/* Removes every block file in `dir`, then `dir` itself if that left it empty. */
void blockd_disk_remove_dir(const char *dir);

/* New strings the caller frees: the path of a complete block, and of one
 * write in progress (`seq` makes it unique among writes of the same id). */
char *blockd_disk_block_path(const char *dir, const char *id);
char *blockd_disk_tmp_path(const char *dir, const char *id, uint64_t seq);

/* Creates `path` (which must not exist) for writing; *fd is set on success. */
int blockd_disk_create(const char *path, int *fd) EMBER_MUST_CHECK;
/* Opens `path` for reading; *fd is set on success. */
int blockd_disk_open(const char *path, int *fd) EMBER_MUST_CHECK;
/* Appends all n bytes to fd (the file at `path`, named in errors). */
int blockd_disk_write(int fd, const char *path, const void *p, size_t n) EMBER_MUST_CHECK;
/* Reads exactly n bytes at `offset`; a file shorter than that is an error. */
int blockd_disk_read(int fd, const char *path, uint64_t offset, void *p,
                     size_t n) EMBER_MUST_CHECK;
/* Writes n bytes to a new file at `path` and closes it; on failure the file
 * is removed. */
int blockd_disk_write_file(const char *path, const void *p, size_t n) EMBER_MUST_CHECK;
/* rename(2) that logs; `from` is removed when the rename fails. */
int blockd_disk_rename(const char *from, const char *to) EMBER_MUST_CHECK;
/* unlink(2) that logs failures other than a missing file. */
void blockd_disk_unlink(const char *path);

#endif
