/* The pipe frame reader (common/frame.c) over fuzzed bytes: the first byte
 * sets the buffer's cap (0: none), the rest is what the pipe delivers. Frames
 * are read until the first error or the end; a data frame must fit its cap. */
#define _GNU_SOURCE
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int fd = -1;
    struct ember_buf buf;
    int32_t marker;
    size_t cap;

    if (size == 0)
        return 0;
    if (fd < 0)
        fd = memfd_create("frames", 0);
    cap = (size_t)data[0] * 64;
    if (ftruncate(fd, 0) != 0 || pwrite(fd, data + 1, size - 1, 0) != (ssize_t)(size - 1)
        || lseek(fd, 0, SEEK_SET) != 0)
        abort();
    ember_buf_init(&buf, cap);
    while (ember_frame_read(fd, &buf, &marker) == 0) {
        if (marker == 0 && cap && buf.len > cap)
            abort();
        if (marker != 0 && marker != EMBER_FRAME_END && marker != EMBER_FRAME_ERROR
            && marker != EMBER_FRAME_CACHE)
            abort();
    }
    ember_buf_free(&buf);
    return 0;
}
