/* blockd_local.h - reading a block a process on this host handed over as a
 * sealed memfd (PutBlockLocal), so its bytes do not cross a socket. */
#ifndef EMBER_BLOCKD_LOCAL_H
#define EMBER_BLOCKD_LOCAL_H

#include <stddef.h>
#include <stdint.h>

#define BLOCKD_LOCAL_REFUSED (-1)    /* it is not (or we cannot see) that memfd */
#define BLOCKD_LOCAL_TRY_LATER (-2)  /* out of descriptors, memory or mappings now */

/* Maps the memfd at `path` ("/proc/<pid>/fd/<fd>") read-only after checking
 * that it is the one named "ember-block-<token>", exactly `size` bytes long
 * and sealed against writing, shrinking and growing (so the mapping cannot
 * change under the reader nor fault past its end). 0 and *data (NULL for an
 * empty block) on success; otherwise BLOCKD_LOCAL_REFUSED or
 * BLOCKD_LOCAL_TRY_LATER and *why, a new sentence (*data untouched). */
int blockd_local_map(const char *path, const char *token, uint64_t size, const uint8_t **data,
                     char **why);
void blockd_local_unmap(const uint8_t *data, uint64_t size);

#endif
