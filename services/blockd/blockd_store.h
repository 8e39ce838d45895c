/* The block manager's in-memory store: blocks named by id, written as chunks
 * appended in order and read through reference-counted views. It owns every
 * byte it holds and is safe to call from any thread. Fails with EMBER_EINVAL
 * (chunk out of order), EMBER_ENOENT (no such block) and EMBER_ETOOBIG (a
 * block larger than the store's memory). */
#ifndef EMBER_BLOCKD_STORE_H
#define EMBER_BLOCKD_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

struct blockd_store;
/* A complete block: immutable bytes that stay valid while a reference is held,
 * even after the block was removed or replaced in the store. */
struct blockd_block;

struct blockd_store_stats {
    uint64_t blocks;          /* complete blocks */
    uint64_t bytes_in_memory; /* bytes of complete blocks */
    uint64_t writes;          /* blocks being written (not yet visible) */
    uint64_t write_bytes;     /* bytes received so far for those */
    uint64_t gets;            /* blockd_store_get calls that found their block */
    uint64_t puts;            /* blocks completed (a replacement counts too) */
};

/* Returns a new, empty store; free it with blockd_store_free. memory_limit
 * (bytes, 0 for none) caps the size of one block. */
struct blockd_store *blockd_store_new(uint64_t memory_limit);
/* Frees the store and its references to blocks; views still held stay valid
 * until released. NULL is fine. */
void blockd_store_free(struct blockd_store *s);

/* Appends `len` bytes (copied) at `offset` of block `id`. The first chunk of a
 * write has offset 0 (which also restarts an unfinished write of that id), each
 * next one the number of bytes written so far; `last` completes the block,
 * which then becomes visible and atomically replaces any complete block of the
 * same id. An out-of-order chunk is EMBER_EINVAL and changes nothing; a block
 * past the memory limit is EMBER_ETOOBIG and its unfinished write is dropped. */
int blockd_store_put_chunk(struct blockd_store *s, const char *id, uint64_t offset,
                           const void *data, size_t len, int last) EMBER_MUST_CHECK;

/* On success *out is a new reference to complete block `id` (release it with
 * blockd_block_release); EMBER_ENOENT when there is no complete block `id`. */
int blockd_store_get(struct blockd_store *s, const char *id,
                     struct blockd_block **out) EMBER_MUST_CHECK;
const uint8_t *blockd_block_data(const struct blockd_block *b);
size_t blockd_block_size(const struct blockd_block *b);
/* Drops one reference; the last one frees the bytes. NULL is fine. */
void blockd_block_release(struct blockd_block *b);

/* Removes every block whose id starts with `prefix` and drops unfinished
 * writes of such ids. Returns the number of complete blocks removed. */
size_t blockd_store_remove_prefix(struct blockd_store *s, const char *prefix);

void blockd_store_stats(struct blockd_store *s, struct blockd_store_stats *out);

#endif
