/* _ember_fast.split_lines: `textFile(...).map(lambda line: tuple(line.split()))` in C.
 *
 * PageRank's edges (and most parsed text) make, per line, a str for the line,
 * a list of its fields, their strs and a tuple, and call a lambda. ember/fused_text.py
 * recognises the chain and hands the raw text frames here: an ASCII frame is
 * cut into lines as _text_lines cuts it (at \n, no line after a final \n, one
 * trailing \r dropped) and each line into its fields as str.split() (ASCII
 * whitespace) or str.split(sep) (a one-character ASCII separator) does, and
 * the fields' tuple is made directly. A frame with another byte is left to
 * Python (None). Fails only with MemoryError (or TypeError on bad arguments). */
#include "pyexec.h"

#include <string.h>

/* ASCII whitespace for str.split(): \t \n \v \f \r, \x1c-\x1f and space. */
static unsigned char is_space[256];

/* A field's str: what decoding the bytes gives (the shared one-character and
 * empty strs included). New reference. */
static PyObject *field(const char *p, Py_ssize_t n)
{
    if (n <= 1)
        return PyUnicode_FromStringAndSize(p, n);
    PyObject *s = PyUnicode_New(n, 127);
    if (s)
        memcpy(PyUnicode_DATA(s), p, (size_t)n);
    return s;
}

/* The tuple of the fields of [p, p + n): str.split() (sep < 0) or str.split(sep). */
static PyObject *split_line(const char *p, Py_ssize_t n, int sep)
{
    PyObject *fields[8];
    PyObject *list = NULL;     /* past 8 fields */
    Py_ssize_t count = 0, i = 0;
    const unsigned char *b = (const unsigned char *)p;
    for (;;) {
        Py_ssize_t start, end;
        if (sep < 0) {
            while (i < n && is_space[b[i]])
                i++;
            if (i == n)
                break;
            start = i;
            while (i < n && !is_space[b[i]])
                i++;
            end = i;
        } else {
            if (i > n)
                break;
            const char *hit = memchr(p + i, sep, (size_t)(n - i));
            start = i;
            end = hit ? hit - p : n;
            i = end + 1;
        }
        PyObject *s = field(p + start, end - start);
        if (!s)
            goto fail;
        if (count < 8 && !list) {
            fields[count++] = s;
            continue;
        }
        if (!list) {
            list = PyList_New(0);
            for (Py_ssize_t j = 0; list && j < count; j++)
                if (PyList_Append(list, fields[j]) != 0)
                    Py_CLEAR(list);
            if (!list) {
                Py_DECREF(s);
                goto fail;
            }
            for (Py_ssize_t j = 0; j < count; j++)
                Py_DECREF(fields[j]);
            count = 0;
        }
        int rc = PyList_Append(list, s);
        Py_DECREF(s);
        if (rc != 0)
            goto fail;
    }
    if (list) {
        PyObject *t = PyList_AsTuple(list);
        Py_DECREF(list);
        return t;
    }
    PyObject *t = PyTuple_New(count);
    if (!t)
        goto fail;
    for (Py_ssize_t j = 0; j < count; j++)
        PyTuple_SET_ITEM(t, j, fields[j]);
    /* A tuple of strs can be in no cycle: the collector would untrack it at
     * its first pass (_PyTuple_MaybeUntrack); done now, the young passes the
     * millions of edges trigger do not walk them. */
    PyObject_GC_UnTrack(t);
    return t;
fail:
    for (Py_ssize_t j = 0; j < count; j++)
        Py_DECREF(fields[j]);
    Py_XDECREF(list);
    return NULL;
}

/* split_lines(frame: bytes, sep: None or a one-character ASCII str other than
 * \r and \n) -> [tuple(line.split(sep)) for line in _text_lines(frame)], or
 * None when the frame has a non-ASCII byte. */
static PyObject *fast_split_lines(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 || !PyBytes_CheckExact(args[0])) {
        PyErr_SetString(PyExc_TypeError, "split_lines(frame: bytes, sep)");
        return NULL;
    }
    int sep = -1;
    if (args[1] != Py_None) {
        if (!PyUnicode_CheckExact(args[1]) || PyUnicode_GET_LENGTH(args[1]) != 1
            || PyUnicode_READ_CHAR(args[1], 0) >= 0x80 || PyUnicode_READ_CHAR(args[1], 0) == '\r'
            || PyUnicode_READ_CHAR(args[1], 0) == '\n') {
            PyErr_SetString(PyExc_TypeError,
                            "split_lines needs None or a one-character ASCII separator");
            return NULL;
        }
        sep = (int)PyUnicode_READ_CHAR(args[1], 0);
    }
    const char *buf = PyBytes_AS_STRING(args[0]);
    Py_ssize_t len = PyBytes_GET_SIZE(args[0]);
    if (!pyexec_text_is_ascii(buf, len))
        Py_RETURN_NONE;
    PyObject *out = PyList_New(0);
    if (!out)
        return NULL;
    Py_ssize_t at = 0, start, line_len;
    while (pyexec_next_line(buf, len, &at, &start, &line_len)) {
        PyObject *t = split_line(buf + start, line_len, sep);
        int rc = t ? PyList_Append(out, t) : -1;
        Py_XDECREF(t);
        if (rc != 0) {
            Py_DECREF(out);
            return NULL;
        }
    }
    return out;
}

static PyMethodDef lines_methods[] = {
    {"split_lines", (PyCFunction)(void (*)(void))fast_split_lines, METH_FASTCALL,
     "split_lines(frame, sep) -> list of tuple(line.split(sep)), or None (not ASCII)"},
    {NULL, NULL, 0, NULL},
};

int pyexec_lines_add(PyObject *module)
{
    static const char spaces[] = "\t\n\v\f\r\x1c\x1d\x1e\x1f ";
    for (const char *c = spaces; *c; c++)
        is_space[(unsigned char)*c] = 1;
    return PyModule_AddFunctions(module, lines_methods);
}
