/* Tests of common/frame.c over a real pipe: data frames, markers, EOF, limits. */
#include <unistd.h>

#include "frame.h"
#include "test.h"

int main(void)
{
    int fds[2];
    struct ember_buf buf;
    int32_t marker = 99;

    if (pipe(fds) != 0)
        return 2;
    ember_buf_init(&buf, 0);
    CHECK(ember_frame_write(fds[1], "hello", 5) == 0, "write data frame");
    CHECK(ember_frame_write(fds[1], "", 0) == 0, "write empty frame");
    CHECK(ember_frame_write_marker(fds[1], EMBER_FRAME_END) == 0, "write END");
    CHECK(ember_frame_read(fds[0], &buf, &marker) == 0 && marker == 0 && buf.len == 5
              && memcmp(buf.data, "hello", 5) == 0,
          "data frame: marker %d len %zu", marker, buf.len);
    CHECK(ember_frame_read(fds[0], &buf, &marker) == 0 && marker == 0 && buf.len == 0,
          "empty frame: len %zu", buf.len);
    CHECK(ember_frame_read(fds[0], &buf, &marker) == 0 && marker == EMBER_FRAME_END,
          "END marker: got %d", marker);

    /* An unknown negative length is a protocol error, not a marker. */
    CHECK(ember_frame_write_marker(fds[1], -77) == 0, "write bogus marker");
    CHECK(ember_frame_read(fds[0], &buf, &marker) == EMBER_EIO, "bogus marker rejected");

    /* A frame over the buffer's cap is refused. */
    struct ember_buf small;
    ember_buf_init(&small, 4);
    CHECK(ember_frame_write(fds[1], "toolong", 7) == 0, "write long frame");
    CHECK(ember_frame_read(fds[0], &small, &marker) == EMBER_ETOOBIG, "cap enforced");
    ember_buf_free(&small);

    close(fds[1]);
    char drain[16];
    while (read(fds[0], drain, sizeof(drain)) > 0) {
    }
    CHECK(ember_frame_read(fds[0], &buf, &marker) == EMBER_EEOF, "clean EOF");
    close(fds[0]);
    ember_buf_free(&buf);
    return TEST_EXIT();
}
