/* _ember_fast.merge_float_frame: reduceByKey(add)'s reduce-side merge read
 * straight from a record frame (pyexec_records.c's format), for PageRank's
 * (str, float) shuffle records.
 *
 * The Python loop decodes each frame into a list of (key, value) tuples and
 * runs data[k] = data[k] + v if k in data else v over it (_ember_fast.combine,
 * summing a float the dict alone holds in place). Here a record that is a
 * pair of an ASCII str and a float is merged as it is read: no tuple, no list,
 * no float for a key already there, and the same dict, the same additions in
 * the same order. The first record of any other shape stops the call, and
 * the caller merges the rest of that frame the Python way (from a
 * load_records of it), so everything else behaves as before. */
#include "pyexec.h"

#include <string.h>

static int read_varint(const unsigned char **p, const unsigned char *end, uint64_t *v)
{
    uint64_t x = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (*p >= end)
            return -1;
        unsigned char b = *(*p)++;
        x |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = x;
            return 0;
        }
    }
    return -1;
}

/* Parses one ('(' 2, 's' ASCII key, 'f' value) record at *p; 0 and *p past it,
 * or -1 (any other shape, or a short frame) with *p untouched. */
static int str_float_pair(const unsigned char **p, const unsigned char *end,
                          const unsigned char **key, Py_ssize_t *key_len, double *value)
{
    const unsigned char *q = *p;
    uint64_t n;
    if (q >= end || *q++ != '(' || read_varint(&q, end, &n) != 0 || n != 2)
        return -1;
    if (q >= end || *q++ != 's' || read_varint(&q, end, &n) != 0
        || n > (uint64_t)(end - q))
        return -1;
    const unsigned char *k = q;
    for (uint64_t i = 0; i < n; i++)
        if (k[i] & 0x80)
            return -1;                 /* not ASCII: load_records decodes it */
    q += n;
    if (q >= end || *q++ != 'f' || end - q < 8)
        return -1;
    uint64_t bits = 0;
    for (int i = 0; i < 8; i++)
        bits |= (uint64_t)q[i] << (8 * i);
    memcpy(value, &bits, sizeof(*value));
    *key = k;
    *key_len = (Py_ssize_t)n;
    *p = q + 8;
    return 0;
}

/* Merges one record the way _ember_fast.combine does with merge operator.add. */
static int merge_one(PyObject *data, const unsigned char *k, Py_ssize_t len, double v)
{
    PyObject *key = PyUnicode_New(len, 127);
    if (!key)
        return -1;
    memcpy(PyUnicode_DATA(key), k, (size_t)len);
    PyObject *old = PyDict_GetItemWithError(data, key);    /* borrowed */
    if (old && PyFloat_CheckExact(old) && Py_REFCNT(old) == 1) {
        ((PyFloatObject *)old)->ob_fval += v;
        Py_DECREF(key);
        return 0;
    }
    if (!old && PyErr_Occurred()) {
        Py_DECREF(key);
        return -1;
    }
    PyObject *value = PyFloat_FromDouble(v);
    PyObject *updated = NULL;
    if (value && old) {
        Py_INCREF(old);       /* an __add__ of a subclass may change the dict */
        updated = PyNumber_Add(old, value);
        Py_DECREF(old);
    } else if (value)
        updated = Py_NewRef(value);
    int rc = updated ? PyDict_SetItem(data, key, updated) : -1;
    Py_XDECREF(updated);
    Py_XDECREF(value);
    Py_DECREF(key);
    return rc;
}

/* merge_float_frame(data, frame, offset, remaining, max_records)
 *     -> (consumed, offset, remaining, stopped)
 *
 * Merges up to max_records records of the record frame into data, from byte
 * offset with `remaining` records left (offset 0: from the start, the header
 * is read here). stopped: the record at the returned offset is not an (ASCII
 * str, float) pair (or does not parse): the caller merges the frame's last
 * `remaining` records itself. */
static PyObject *fast_merge_float_frame(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 5 || !PyDict_CheckExact(args[0])) {
        PyErr_SetString(PyExc_TypeError,
                        "merge_float_frame(dict, frame, offset, remaining, max_records)");
        return NULL;
    }
    PyObject *data = args[0];
    Py_ssize_t offset = PyLong_AsSsize_t(args[2]);
    Py_ssize_t remaining = PyLong_AsSsize_t(args[3]);
    Py_ssize_t max_records = PyLong_AsSsize_t(args[4]);
    if ((offset == -1 || remaining == -1 || max_records == -1) && PyErr_Occurred())
        return NULL;
    Py_buffer view;
    if (PyObject_GetBuffer(args[1], &view, PyBUF_SIMPLE) != 0)
        return NULL;
    PyObject *result = NULL;
    const unsigned char *start = view.buf, *end = start + view.len, *p;
    if (offset < 0 || offset > view.len || remaining < 0) {
        PyErr_SetString(PyExc_ValueError, "merge_float_frame: offset out of the frame");
        goto out;
    }
    p = start + offset;
    if (offset == 0) {
        uint64_t n;
        int header = view.len >= 2 && start[0] == RECORDS_MAGIC && start[1] == RECORDS_VERSION;
        if (header)
            p = start + 2;
        if (!header || read_varint(&p, end, &n) != 0 || n > (uint64_t)(end - p)) {
            /* load_records raises its own error for it */
            result = Py_BuildValue("(nnnO)", (Py_ssize_t)0, (Py_ssize_t)0, (Py_ssize_t)-1,
                                   Py_True);
            goto out;
        }
        remaining = (Py_ssize_t)n;
    }
    Py_ssize_t consumed = 0;
    int stopped = 0;
    while (consumed < max_records && remaining > 0) {
        const unsigned char *key;
        Py_ssize_t key_len;
        double value;
        if (str_float_pair(&p, end, &key, &key_len, &value) != 0) {
            stopped = 1;
            break;
        }
        if (merge_one(data, key, key_len, value) != 0)
            goto out;
        consumed++;
        remaining--;
    }
    if (!stopped && remaining == 0 && p != end)
        stopped = 1;    /* trailing bytes: load_records of the frame raises */
    result = Py_BuildValue("(nnnO)", consumed, (Py_ssize_t)(p - start), remaining,
                           stopped ? Py_True : Py_False);
out:
    PyBuffer_Release(&view);
    return result;
}

static PyMethodDef merge_methods[] = {
    {"merge_float_frame", (PyCFunction)(void (*)(void))fast_merge_float_frame, METH_FASTCALL,
     "merge_float_frame(dict, frame, offset, remaining, max_records) -> "
     "(consumed, offset, remaining, stopped)"},
    {NULL, NULL, 0, NULL},
};

int pyexec_merge_add(PyObject *module)
{
    return PyModule_AddFunctions(module, merge_methods);
}
