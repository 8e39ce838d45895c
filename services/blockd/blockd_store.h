/* The block manager's store: blocks named by id, written as chunks appended in
 * order and read through reference-counted views. It keeps the bytes of
 * complete blocks in memory within a limit, evicting the least recently used
 * ones to its spill directory or dropping them by storage level, and owns
 * every byte and file it holds. Safe to call from any thread; disk writes are
 * done outside its lock. Fails with EMBER_EINVAL (bad id, chunk out of order),
 * EMBER_ENOENT (no such block) and EMBER_EIO (a disk error it could not
 * work around, already logged with the path). */
#ifndef EMBER_BLOCKD_STORE_H
#define EMBER_BLOCKD_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

struct blockd_store;
/* A view of a complete block: immutable bytes, in memory or in a file, that
 * stay readable while a reference is held, even after the block was removed,
 * replaced or evicted in the store. */
struct blockd_block;

/* What may happen to a block under memory pressure; the values are those of
 * blockd.proto's BlockStorage. */
enum blockd_storage {
    BLOCKD_PINNED = 0,          /* spilled to disk, never dropped */
    BLOCKD_MEMORY_ONLY = 1,     /* dropped, and listed by blockd_store_dropped */
    BLOCKD_MEMORY_AND_DISK = 2, /* spilled to disk */
    BLOCKD_DISK_ONLY = 3,       /* written to disk as it arrives, never kept in memory */
};

struct blockd_store_stats {
    uint64_t blocks;          /* complete blocks, in memory or on disk */
    uint64_t bytes_in_memory; /* bytes of complete blocks in memory */
    uint64_t bytes_on_disk;   /* bytes of complete blocks on disk */
    uint64_t evictions;       /* blocks pushed out of memory (spilled or dropped) */
    uint64_t writes;          /* blocks being written (not yet visible) */
    uint64_t write_bytes;     /* bytes received so far for those */
    uint64_t gets;            /* blockd_store_get calls that found their block */
    uint64_t puts;            /* blocks completed (a replacement counts too) */
};

/* On success *out is a new, empty store (free it with blockd_store_free).
 * memory_limit is in bytes (0: no limit, nothing is evicted). `dir` (borrowed)
 * is the spill directory: created with its parents (mode 0700) and emptied of
 * block files; EMBER_EIO when that fails. */
int blockd_store_new(uint64_t memory_limit, const char *dir,
                     struct blockd_store **out) EMBER_MUST_CHECK;
/* Frees the store and its references to blocks, and removes its block files
 * and its directory (unless other files are in it). Views still held stay
 * readable until released. No other call may be in flight. NULL is fine. */
void blockd_store_free(struct blockd_store *s);

/* 1 when `id` may name a block: 1 to 200 characters of [A-Za-z0-9_]. */
int blockd_store_valid_id(const char *id);

/* Appends `len` bytes (copied) at `offset` of block `id`. The first chunk of a
 * write has offset 0 (which also restarts an unfinished write of that id) and
 * sets its storage level; each next one the number of bytes written so far
 * (the chunk before must have returned). `last` completes the block, which
 * then becomes visible and atomically replaces any complete block of the same
 * id; then, while the memory in use (complete blocks in memory and writes
 * buffered in memory) is over the limit, least recently used blocks are
 * evicted, by this call. A write that alone exceeds the limit goes to disk as
 * it arrives, or for MEMORY_ONLY is dropped on completion; either way the put
 * succeeds. A bad id or an out-of-order chunk is EMBER_EINVAL and changes
 * nothing; EMBER_EIO (a PINNED write whose disk file failed and could not be
 * read back) drops the unfinished write. */
int blockd_store_put_chunk(struct blockd_store *s, const char *id, uint64_t offset,
                           const void *data, size_t len, int last,
                           enum blockd_storage storage) EMBER_MUST_CHECK;

/* The whole block `id` in one go, as a mapping of `len` bytes the store takes
 * over (blockd_block_release unmaps it once no reader holds it): exactly what
 * blockd_store_put_chunk of its bytes in order would store, without copying
 * them. EMBER_ENOENT (nothing changed, the mapping is still the caller's) when
 * those chunks would not have stayed in memory (DISK_ONLY, a block larger than
 * the limit) or for an empty block: put its chunks instead. EMBER_EINVAL for a
 * bad id or level. */
int blockd_store_put_mapped(struct blockd_store *s, const char *id, uint8_t *data, size_t len,
                            enum blockd_storage storage) EMBER_MUST_CHECK;

/* On success *out is a new reference to complete block `id` (release it with
 * blockd_block_release), which becomes the most recently used; EMBER_ENOENT
 * when there is no complete block `id`, EMBER_EIO when its file cannot be
 * opened. */
int blockd_store_get(struct blockd_store *s, const char *id,
                     struct blockd_block **out) EMBER_MUST_CHECK;
uint64_t blockd_block_size(const struct blockd_block *b);
/* Identifies the write that made the block: every completed write of any id
 * gets a new one (also across restarts), so a reader can tell a block it saw
 * from one written again under the same id since. */
uint64_t blockd_block_generation(const struct blockd_block *b);
/* The bytes of a block held in memory; NULL when the view reads a file
 * (use blockd_block_read). */
const uint8_t *blockd_block_data(const struct blockd_block *b);
/* Copies bytes [offset, offset + n) of the block, which must lie inside it,
 * into `buf`: from memory, or with pread from its file (EMBER_EIO, logged). */
int blockd_block_read(const struct blockd_block *b, uint64_t offset, void *buf,
                      size_t n) EMBER_MUST_CHECK;
/* Drops one reference; the last one frees the bytes or closes the file. NULL
 * is fine. */
void blockd_block_release(struct blockd_block *b);

/* Removes every block whose id starts with `prefix`, with its file, and drops
 * unfinished writes of such ids. Returns the number of complete blocks removed. */
size_t blockd_store_remove_prefix(struct blockd_store *s, const char *prefix);

/* Ids of the blocks dropped (not spilled) since they were last forgotten,
 * oldest first, without duplicates. Returns their number; *out is a new array
 * of new strings (free them with blockd_store_free_ids), NULL when there are
 * none. A block stored again under a listed id leaves the list. */
size_t blockd_store_dropped(struct blockd_store *s, char ***out);
/* Removes `ids` (borrowed), once reported, from the dropped list. */
void blockd_store_forget_dropped(struct blockd_store *s, char *const *ids, size_t n);
void blockd_store_free_ids(char **ids, size_t n);

void blockd_store_stats(struct blockd_store *s, struct blockd_store_stats *out);

#endif
