/* Length-prefixed frames on pipes between a worker and its ember-pyexec:
 * a 4-byte big-endian signed length, then that many bytes. Negative lengths
 * are markers with no payload of their own (END, ERROR); see
 * docs/ARCHITECTURE.md "Worker <-> pyexec protocol". */
#ifndef EMBER_FRAME_H
#define EMBER_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "util.h"

#define EMBER_FRAME_END (-1)    /* end of input / success, then one metrics frame */
#define EMBER_FRAME_ERROR (-2)  /* task failed, then one traceback frame */
#define EMBER_FRAME_CACHE (-3)  /* the next frame is for a cache block: 4-byte slot + batch */
#define EMBER_FRAME_MAX (1 << 30)

int ember_frame_write(int fd, const void *payload, size_t len) EMBER_MUST_CHECK;
int ember_frame_write_marker(int fd, int32_t marker) EMBER_MUST_CHECK;
/* Reads one frame. A data frame replaces buf's contents and sets *marker to 0;
 * a marker sets *marker (buf untouched). EMBER_EEOF on a clean EOF before the
 * header, EMBER_EIO on a short read or an invalid length. */
int ember_frame_read(int fd, struct ember_buf *buf, int32_t *marker) EMBER_MUST_CHECK;
/* Reads exactly n bytes from src: 0, EMBER_EEOF if nothing came, EMBER_EIO otherwise. */
typedef int (*ember_read_fn)(void *src, void *p, size_t n);
/* ember_frame_read from any byte source (the worker's buffered pyexec pipe). */
int ember_frame_read_from(ember_read_fn read_full, void *src, struct ember_buf *buf,
                          int32_t *marker) EMBER_MUST_CHECK;
/* Writes all n bytes, retrying on EINTR. */
int ember_write_full(int fd, const void *p, size_t n) EMBER_MUST_CHECK;
/* Reads exactly n bytes: 0, EMBER_EEOF if nothing came, EMBER_EIO otherwise. */
int ember_read_full(int fd, void *p, size_t n) EMBER_MUST_CHECK;

#endif
