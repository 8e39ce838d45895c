/* blockd_local.h - reading a block a process on this host handed over as a
 * sealed memfd (PutBlockLocal), so its bytes do not cross a socket. */
#ifndef EMBER_BLOCKD_LOCAL_H
#define EMBER_BLOCKD_LOCAL_H

#include <stddef.h>
#include <stdint.h>

/* Maps the memfd at `path` ("/proc/<pid>/fd/<fd>") read-only after checking
 * that it is the one named "ember-block-<token>", exactly `size` bytes long
 * and sealed against writing, shrinking and growing (so the mapping cannot
 * change under the reader nor fault past its end). 0 and *data (NULL for an
 * empty block) on success; otherwise -1 and *why, a new sentence (*data untouched). */
int blockd_local_map(const char *path, const char *token, uint64_t size, const uint8_t **data,
                     char **why);
void blockd_local_unmap(const uint8_t *data, uint64_t size);

#endif
