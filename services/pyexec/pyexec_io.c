/* _ember_io: frame I/O for the Python runtime, with the GIL released while
 * blocked in read() or write().
 *
 * Small frames and markers written are held in a buffer and go to the worker
 * in one write() when it fills, when flush() is called (the runtime does at
 * the end of each task), and before every read: a one-element task's output,
 * END marker and metrics frame used to be five writes, each waking the
 * worker's task thread. Holding back output until the next read cannot
 * deadlock: the worker never waits for output before it has sent a task's input. */
#include "pyexec.h"

#include <arpa/inet.h>

#include "frame.h"

#define PENDING_MAX 65536

static int io_in_fd = 0, io_out_fd = 1;
static char pending[PENDING_MAX];   /* whole frames not written yet */
static size_t pending_len;

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

/* read_frame() -> bytes for a data frame, an int for a marker (-1 END,
 * -2 ERROR); raises EOFError when the worker closed the pipe. */
static PyObject *io_read_frame(PyObject *self, PyObject *unused)
{
    uint32_t be;
    int32_t len;
    int rc;
    PyObject *bytes;

    if (flush_pending() != 0)
        return PyErr_Format(PyExc_BrokenPipeError, "writing held frames failed");
    Py_BEGIN_ALLOW_THREADS
    rc = ember_read_full(io_in_fd, &be, 4);
    Py_END_ALLOW_THREADS
    if (rc == EMBER_EEOF)
        return PyErr_Format(PyExc_EOFError, "worker closed the pipe");
    if (rc != 0)
        return PyErr_Format(PyExc_OSError, "reading a frame header failed");
    len = (int32_t)ntohl(be);
    if (len < 0)
        return PyLong_FromLong(len);
    bytes = PyBytes_FromStringAndSize(NULL, len);
    if (!bytes)
        return NULL;
    char *p = PyBytes_AS_STRING(bytes);
    Py_BEGIN_ALLOW_THREADS
    rc = ember_read_full(io_in_fd, p, (size_t)len);
    Py_END_ALLOW_THREADS
    if (rc != 0) {
        Py_DECREF(bytes);
        return PyErr_Format(PyExc_EOFError, "truncated frame of %d bytes", (int)len);
    }
    return bytes;
}

static PyObject *io_write_frame(PyObject *self, PyObject *arg)
{
    Py_buffer view;
    int rc;

    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) != 0)
        return NULL;
    if (pending_len + 4 + (size_t)view.len > PENDING_MAX)
        rc = flush_pending();
    else
        rc = 0;
    if (rc == 0 && 4 + (size_t)view.len <= PENDING_MAX) {
        uint32_t be = htonl((uint32_t)view.len);
        hold(&be, 4);
        hold(view.buf, (size_t)view.len);
    } else if (rc == 0) {
        Py_BEGIN_ALLOW_THREADS
        rc = ember_frame_write(io_out_fd, view.buf, (size_t)view.len);
        Py_END_ALLOW_THREADS
    }
    PyBuffer_Release(&view);
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

static PyMethodDef io_methods[] = {
    {"flush", io_flush, METH_NOARGS, "Write the frames held back (before a pause or a read)."},
    {"read_frame", io_read_frame, METH_NOARGS, "Read one frame: bytes, or an int marker."},
    {"write_frame", io_write_frame, METH_O, "Write one data frame."},
    {"write_marker", io_write_marker, METH_O, "Write a negative marker."},
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
