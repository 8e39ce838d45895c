/* _ember_io: frame I/O for the Python runtime, with the GIL released while
 * blocked in read() or write().
 *
 * Frames read come through a buffer: one read() takes whatever the pipe
 * holds (the worker writes a small task's header, functions and inputs in
 * one write()), where reading each length and each payload on its own was
 * eight read() calls for a one-record task. Payloads of half the buffer or
 * more are read straight into their bytes object.
 *
 * Small frames and markers written are held in a buffer and go to the worker
 * in one write() when it fills, when flush() is called (the runtime does at
 * the end of each task), and before every read: a one-element task's output,
 * END marker and metrics frame used to be five writes, each waking the
 * worker's task thread. Holding back output until the next read cannot
 * deadlock: the worker never waits for output before it has sent a task's input. */
#include "pyexec.h"

#include <arpa/inet.h>
#include <errno.h>
#include <unistd.h>

#include "frame.h"

#define PENDING_MAX 65536
#define INPUT_MAX 65536

static int io_in_fd = 0, io_out_fd = 1;
static char pending[PENDING_MAX];   /* whole frames not written yet */
static size_t pending_len;
static char input[INPUT_MAX];       /* bytes read, not taken yet: input[input_at..input_end) */
static size_t input_at, input_end;

/* Writes the held frames; 0 or an EMBER_E* code. Called with the GIL held. */
static int flush_pending(void)
{
    int rc;
    size_t len = pending_len;

    if (len == 0)
        return 0;
    pending_len = 0;
    Py_BEGIN_ALLOW_THREADS
    rc = ember_write_full(io_out_fd, pending, len);
    Py_END_ALLOW_THREADS
    return rc;
}

static void hold(const void *data, size_t len)
{
    memcpy(pending + pending_len, data, len);
    pending_len += len;
}

void pyexec_io_set_fds(int in_fd, int out_fd)
{
    io_in_fd = in_fd;
    io_out_fd = out_fd;
}

/* Reads what the pipe holds into the free end of the input buffer, blocking
 * until at least one byte came; held output goes first, since the worker
 * may wait for it before writing more (a read that would not block does
 * not flush). 0, EMBER_EEOF at end of file, or another EMBER_E* code. */
static int fill_input(void)
{
    ssize_t n;

    if (input_at == input_end) {
        input_at = input_end = 0;
    } else if (input_at > 0) {
        memmove(input, input + input_at, input_end - input_at);
        input_end -= input_at;
        input_at = 0;
    }
    if (flush_pending() != 0)
        return EMBER_EIO;
    Py_BEGIN_ALLOW_THREADS
    do
        n = read(io_in_fd, input + input_end, INPUT_MAX - input_end);
    while (n < 0 && errno == EINTR);
    Py_END_ALLOW_THREADS
    if (n == 0)
        return EMBER_EEOF;
    if (n < 0)
        return EMBER_EIO;
    input_end += (size_t)n;
    return 0;
}

/* Copies the next n bytes of input to p: the buffered ones, then straight
 * from the pipe when the rest is large, else through the buffer. */
static int take_input(char *p, size_t n)
{
    while (n > 0) {
        size_t have = input_end - input_at, step = have < n ? have : n;
        int rc;

        memcpy(p, input + input_at, step);
        input_at += step;
        p += step;
        n -= step;
        if (n == 0)
            break;
        if (n >= INPUT_MAX / 2) {
            if (flush_pending() != 0)
                return EMBER_EIO;
            Py_BEGIN_ALLOW_THREADS
            rc = ember_read_full(io_in_fd, p, n);
            Py_END_ALLOW_THREADS
            return rc == 0 ? 0 : EMBER_EIO;
        }
        rc = fill_input();
        if (rc != 0)
            return EMBER_EIO;
    }
    return 0;
}

/* read_frame() -> bytes for a data frame, an int for a marker (-1 END,
 * -2 ERROR); raises EOFError when the worker closed the pipe. */
static PyObject *io_read_frame(PyObject *self, PyObject *unused)
{
    uint32_t be;
    int32_t len;
    int rc = 0;
    PyObject *bytes;

    while (rc == 0 && input_end - input_at < 4)
        rc = fill_input();
    if (rc == EMBER_EEOF && input_end == input_at)
        return PyErr_Format(PyExc_EOFError, "worker closed the pipe");
    if (rc != 0)
        return PyErr_Format(PyExc_OSError, "reading a frame header failed");
    memcpy(&be, input + input_at, 4);
    input_at += 4;
    len = (int32_t)ntohl(be);
    if (len < 0)
        return PyLong_FromLong(len);
    bytes = PyBytes_FromStringAndSize(NULL, len);
    if (!bytes)
        return NULL;
    if (take_input(PyBytes_AS_STRING(bytes), (size_t)len) != 0) {
        Py_DECREF(bytes);
        return PyErr_Format(PyExc_EOFError, "truncated frame of %d bytes", (int)len);
    }
    return bytes;
}

/* write_frame(data[, prefix]): one frame holding prefix then data. The prefix
 * (a shuffle's reduce partition, a cache write's index) is written from its own
 * buffer, so a large pickle is never copied to put 4 bytes in front of it. */
static PyObject *io_write_frame(PyObject *self, PyObject *args)
{
    Py_buffer view, pre = {.buf = NULL, .len = 0};
    size_t total;
    int rc = 0;

    if (!PyArg_ParseTuple(args, "y*|y*:write_frame", &view, &pre))
        return NULL;
    total = (size_t)pre.len + (size_t)view.len;
    if (total > EMBER_FRAME_MAX) {
        rc = EMBER_ETOOBIG;
        goto out;
    }
    if (pending_len + 4 + total > PENDING_MAX)
        rc = flush_pending();
    if (rc == 0 && 4 + total <= PENDING_MAX) {
        uint32_t be = htonl((uint32_t)total);
        hold(&be, 4);
        if (pre.len)
            hold(pre.buf, (size_t)pre.len);
        hold(view.buf, (size_t)view.len);
    } else if (rc == 0) {
        uint32_t be = htonl((uint32_t)total);
        Py_BEGIN_ALLOW_THREADS
        rc = ember_write_full(io_out_fd, &be, 4);
        if (rc == 0 && pre.len)
            rc = ember_write_full(io_out_fd, pre.buf, (size_t)pre.len);
        if (rc == 0)
            rc = ember_write_full(io_out_fd, view.buf, (size_t)view.len);
        Py_END_ALLOW_THREADS
    }
out:
    PyBuffer_Release(&view);
    PyBuffer_Release(&pre);         /* nothing to release when no prefix came */
    if (rc != 0)
        return PyErr_Format(PyExc_BrokenPipeError, "writing a frame failed: %s",
                            ember_strerror(rc));
    Py_RETURN_NONE;
}

static PyObject *io_write_marker(PyObject *self, PyObject *arg)
{
    long marker = PyLong_AsLong(arg);
    int rc;

    if (marker == -1 && PyErr_Occurred())
        return NULL;
    if (marker >= 0)
        return PyErr_Format(PyExc_ValueError, "markers are negative, got %ld", marker);
    rc = pending_len + 4 > PENDING_MAX ? flush_pending() : 0;
    if (rc == 0) {
        uint32_t be = htonl((uint32_t)(int32_t)marker);
        hold(&be, 4);
    }
    if (rc != 0)
        return PyErr_Format(PyExc_BrokenPipeError, "writing a marker failed");
    Py_RETURN_NONE;
}

static PyObject *io_flush(PyObject *self, PyObject *unused)
{
    int rc = flush_pending();

    if (rc != 0)
        return PyErr_Format(PyExc_BrokenPipeError, "writing held frames failed: %s",
                            ember_strerror(rc));
    Py_RETURN_NONE;
}

static PyObject *io_release_arenas(PyObject *self, PyObject *unused)
{
    pyexec_arenas_release();
    Py_RETURN_NONE;
}

static PyObject *io_arena_pool(PyObject *self, PyObject *unused)
{
    size_t held, limit;
    unsigned long long reused;

    pyexec_arenas_stats(&held, &reused, &limit);
    return Py_BuildValue("{s:n,s:K,s:n}", "held", (Py_ssize_t)held, "reused", reused,
                         "limit", (Py_ssize_t)limit);
}

static PyObject *io_release_heap(PyObject *self, PyObject *unused)
{
    pyexec_heap_release();
    Py_RETURN_NONE;
}

static PyObject *io_bound_heap(PyObject *self, PyObject *arg)
{
    unsigned long long budget = PyLong_AsUnsignedLongLong(arg);

    if (budget == (unsigned long long)-1 && PyErr_Occurred())
        return NULL;
    return PyLong_FromSize_t(pyexec_heap_budget((size_t)budget));
}

static PyObject *io_heap(PyObject *self, PyObject *unused)
{
    size_t free_bytes, limit;

    pyexec_heap_stats(&free_bytes, &limit);
    return Py_BuildValue("{s:n,s:n}", "free", (Py_ssize_t)free_bytes, "limit",
                         (Py_ssize_t)limit);
}

static PyMethodDef io_methods[] = {
    {"flush", io_flush, METH_NOARGS, "Write the frames held back (before a pause or a read)."},
    {"read_frame", io_read_frame, METH_NOARGS, "Read one frame: bytes, or an int marker."},
    {"write_frame", io_write_frame, METH_VARARGS,
     "write_frame(data[, prefix]): write one data frame holding prefix then data."},
    {"write_marker", io_write_marker, METH_O, "Write a negative marker."},
    {"release_arenas", io_release_arenas, METH_NOARGS,
     "Unmap the freed pymalloc arenas kept for reuse (pyexec_arenas.c)."},
    {"arena_pool", io_arena_pool, METH_NOARGS,
     "The arena pool: bytes held, arenas reused, the limit (0: off)."},
    {"release_heap", io_release_heap, METH_NOARGS,
     "Give glibc's free heap memory back to the kernel (pyexec_heap.c)."},
    {"bound_heap", io_bound_heap, METH_O,
     "bound_heap(budget): keep at most budget/4 in the heap (0: no budget); the keep."},
    {"heap", io_heap, METH_NOARGS,
     "glibc's heap: free bytes it holds, the limit kept at its top (0: glibc's defaults)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef io_module = {
    PyModuleDef_HEAD_INIT, "_ember_io", "Frame I/O between ember-pyexec and its worker.", -1,
    io_methods,
};

PyObject *pyexec_io_init(void)
{
    PyObject *m = PyModule_Create(&io_module);
    if (m && (PyModule_AddIntConstant(m, "END", EMBER_FRAME_END) < 0
              || PyModule_AddIntConstant(m, "ERROR", EMBER_FRAME_ERROR) < 0
              || PyModule_AddIntConstant(m, "CACHE", EMBER_FRAME_CACHE) < 0)) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
