/* _ember_fast.dump_records / load_records: shuffle frames of simple records
 * without pickle.
 *
 * A map task's shuffle output is millions of small records — (str, int),
 * (str, float), (str, [str, ...]), ((str, str), None) — and pickle spends most
 * of its time on its memo (a dict entry per tuple and str). These functions
 * encode a list whose items are built only from None, bool, int (64-bit),
 * float, str, bytes, tuple and list, all of exactly those types, and give
 * back equal objects of the same types (floats bit for bit). Anything else —
 * a subclass, a bigger int, a str with a lone surrogate, a list that appears
 * twice (pickle would keep the sharing), nesting deeper than MAX_DEPTH — makes
 * dump_records return None and the caller pickles the batch instead.
 *
 * Frame: 0xE5 0x01, a varint count, then each value as a tag byte and its
 * data (varint lengths, zigzag varint ints, 8 little-endian bytes per float).
 * A pickle frame starts with 0x80 (PROTO), so a reader tells them apart by the
 * first byte. load_records raises ValueError for a frame that does not parse.
 *
 * Cache blocks use the same frames, and groupByKey's cached partitions hold
 * (key, ResultIterable) records: once the runtime registered the class
 * (set_result_iterable), an instance of exactly it whose `data` is exactly a
 * list is written as tag 'R' + that list, and read back as cls(list) — what
 * its __reduce__ makes pickle give (any other instance: pickle). */
#include "pyexec.h"

#include <string.h>

#define MAX_DEPTH 64

enum { T_NONE = 'N', T_TRUE = 'T', T_FALSE = 'F', T_INT = 'i', T_FLOAT = 'f', T_STR = 's',
       T_BYTES = 'b', T_TUPLE = '(', T_LIST = '[', T_RESULT_ITERABLE = 'R' };

/* ember.resultiterable.ResultIterable once the runtime registered it, else NULL. */
static PyObject *result_iterable_type;
static PyObject *data_name;     /* "data", interned */

struct out {
    char *data;
    size_t len, cap;
    /* lists already written (pointer set, open addressing; 0 empty) */
    uintptr_t *lists;
    size_t lists_mask, lists_used;
};

static int reserve(struct out *o, size_t more)
{
    if (o->len + more <= o->cap)
        return 0;
    size_t cap = o->cap ? o->cap : 4096;
    while (cap < o->len + more)
        cap *= 2;
    char *data = PyMem_Realloc(o->data, cap);
    if (!data) {
        PyErr_NoMemory();
        return -1;
    }
    o->data = data;
    o->cap = cap;
    return 0;
}

static int put_varint(struct out *o, uint64_t v)
{
    if (reserve(o, 10) != 0)
        return -1;
    while (v >= 0x80) {
        o->data[o->len++] = (char)(v | 0x80);
        v >>= 7;
    }
    o->data[o->len++] = (char)v;
    return 0;
}

static int put_bytes(struct out *o, char tag, const char *p, size_t n)
{
    if (reserve(o, 1) != 0)
        return -1;
    o->data[o->len++] = tag;
    if (put_varint(o, n) != 0 || reserve(o, n) != 0)
        return -1;
    memcpy(o->data + o->len, p, n);
    o->len += n;
    return 0;
}

/* 1 when list was not written before (now remembered), 0 when it was, -1 on error. */
static int first_sight(struct out *o, PyObject *list)
{
    if ((o->lists_used + 1) * 2 > o->lists_mask + 1) {
        size_t cap = o->lists ? (o->lists_mask + 1) * 2 : 256;
        uintptr_t *set = PyMem_Calloc(cap, sizeof(*set));
        if (!set) {
            PyErr_NoMemory();
            return -1;
        }
        for (size_t i = 0; o->lists && i <= o->lists_mask; i++) {
            if (!o->lists[i])
                continue;
            size_t s = (o->lists[i] >> 4) * 0x9e3779b97f4a7c15u >> 20 & (cap - 1);
            while (set[s])
                s = (s + 1) & (cap - 1);
            set[s] = o->lists[i];
        }
        PyMem_Free(o->lists);
        o->lists = set;
        o->lists_mask = cap - 1;
    }
    uintptr_t p = (uintptr_t)list;
    size_t s = (p >> 4) * 0x9e3779b97f4a7c15u >> 20 & o->lists_mask;
    while (o->lists[s]) {
        if (o->lists[s] == p)
            return 0;
        s = (s + 1) & o->lists_mask;
    }
    o->lists[s] = p;
    o->lists_used++;
    return 1;
}

static int put_value(struct out *o, PyObject *v, int depth);

/* A ResultIterable: 'R' + its data when that is exactly a list (as put_value). */
static int put_result_iterable(struct out *o, PyObject *v, int depth)
{
    /* An attribute lookup, not the instance dict: 3.11 keeps an instance's
     * attributes without a dict until asked for one, and making it is slow. */
    PyObject *data = PyObject_GetAttr(v, data_name);
    if (!data) {
        if (!PyErr_ExceptionMatches(PyExc_AttributeError))
            return -1;
        PyErr_Clear();
        return 0;
    }
    if (!PyList_CheckExact(data)) {
        Py_DECREF(data);
        return 0;
    }
    o->data[o->len++] = T_RESULT_ITERABLE;
    int rc = put_value(o, data, depth + 1);
    Py_DECREF(data);
    return rc;
}

/* 1 written, 0 not encodable (nothing is said why), -1 error set. */
static int put_value(struct out *o, PyObject *v, int depth)
{
    if (reserve(o, 1 + 10) != 0)
        return -1;
    if (v == Py_None) {
        o->data[o->len++] = T_NONE;
        return 1;
    }
    if (v == Py_True || v == Py_False) {
        o->data[o->len++] = v == Py_True ? T_TRUE : T_FALSE;
        return 1;
    }
    PyTypeObject *type = Py_TYPE(v);
    if (type == &PyLong_Type) {
        int overflow = 0;
        long long x = PyLong_AsLongLongAndOverflow(v, &overflow);
        if (overflow)
            return 0;
        if (x == -1 && PyErr_Occurred())
            return -1;
        o->data[o->len++] = T_INT;
        return put_varint(o, ((uint64_t)x << 1) ^ (uint64_t)(x >> 63)) == 0 ? 1 : -1;
    }
    if (type == &PyFloat_Type) {
        double d = PyFloat_AS_DOUBLE(v);
        uint64_t bits;
        memcpy(&bits, &d, 8);
        o->data[o->len++] = T_FLOAT;
        if (reserve(o, 8) != 0)
            return -1;
        for (int i = 0; i < 8; i++)
            o->data[o->len++] = (char)(bits >> (8 * i));
        return 1;
    }
    if (type == &PyUnicode_Type) {
        if (PyUnicode_IS_ASCII(v))
            return put_bytes(o, T_STR, (const char *)PyUnicode_1BYTE_DATA(v),
                             (size_t)PyUnicode_GET_LENGTH(v)) == 0 ? 1 : -1;
        PyObject *utf8 = PyUnicode_AsUTF8String(v);    /* not cached in v: v may live on */
        if (!utf8) {
            if (!PyErr_ExceptionMatches(PyExc_UnicodeEncodeError))
                return -1;
            PyErr_Clear();                  /* a lone surrogate: pickle keeps it */
            return 0;
        }
        int rc = put_bytes(o, T_STR, PyBytes_AS_STRING(utf8), (size_t)PyBytes_GET_SIZE(utf8));
        Py_DECREF(utf8);
        return rc == 0 ? 1 : -1;
    }
    if (type == &PyBytes_Type)
        return put_bytes(o, T_BYTES, PyBytes_AS_STRING(v), (size_t)PyBytes_GET_SIZE(v)) == 0
                   ? 1 : -1;
    if (result_iterable_type && (PyObject *)type == result_iterable_type && depth < MAX_DEPTH)
        return put_result_iterable(o, v, depth);
    if ((type != &PyTuple_Type && type != &PyList_Type) || depth >= MAX_DEPTH)
        return 0;
    int is_list = type == &PyList_Type;
    if (is_list) {
        int first = first_sight(o, v);
        if (first <= 0)
            return first;
    }
    Py_ssize_t n = is_list ? PyList_GET_SIZE(v) : PyTuple_GET_SIZE(v);
    o->data[o->len++] = is_list ? T_LIST : T_TUPLE;
    if (put_varint(o, (uint64_t)n) != 0)
        return -1;
    for (Py_ssize_t i = 0; i < n; i++) {
        /* a list's items are read again each time: a __eq__ or __del__ run by
         * this loop cannot change a list under us, since only exact built-in
         * types are written, but its length is checked as Python would */
        if (is_list && i >= PyList_GET_SIZE(v))
            return 0;
        PyObject *item = is_list ? PyList_GET_ITEM(v, i) : PyTuple_GET_ITEM(v, i);
        int rc = put_value(o, item, depth + 1);
        if (rc <= 0)
            return rc;
    }
    return is_list && PyList_GET_SIZE(v) != n ? 0 : 1;
}

/* dump_records(records: list, prefix: bytes) -> prefix + frame, or None when
 * some record is not made only of the simple types above. */
static PyObject *fast_dump_records(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 || !PyList_CheckExact(args[0]) || !PyBytes_CheckExact(args[1])) {
        PyErr_SetString(PyExc_TypeError, "dump_records(records: list, prefix: bytes)");
        return NULL;
    }
    PyObject *records = args[0], *prefix = args[1];
    struct out o = {0};
    PyObject *result = NULL;
    Py_ssize_t n = PyList_GET_SIZE(records);
    size_t head = (size_t)PyBytes_GET_SIZE(prefix);
    if (reserve(&o, head + 2) != 0)
        goto out;
    memcpy(o.data, PyBytes_AS_STRING(prefix), head);
    o.len = head;
    o.data[o.len++] = (char)RECORDS_MAGIC;
    o.data[o.len++] = RECORDS_VERSION;
    if (put_varint(&o, (uint64_t)n) != 0)
        goto out;
    for (Py_ssize_t i = 0; i < n; i++) {
        /* A bucket of a shuffle holds every few records of the input: they
         * are scattered over the heap, and most of the time went in cache
         * misses. Ask for the records ahead, and for the items of a tuple
         * asked for before (read only: nothing here runs Python code). */
        if (i + 16 < n)
            __builtin_prefetch(PyList_GET_ITEM(records, i + 16));
        if (i + 8 < n) {
            PyObject *ahead = PyList_GET_ITEM(records, i + 8);
            if (Py_IS_TYPE(ahead, &PyTuple_Type))
                for (Py_ssize_t j = 0; j < PyTuple_GET_SIZE(ahead) && j < 2; j++)
                    __builtin_prefetch(PyTuple_GET_ITEM(ahead, j));
        }
        int rc = put_value(&o, PyList_GET_ITEM(records, i), 0);
        if (rc < 0)
            goto out;
        if (rc == 0 || PyList_GET_SIZE(records) != n) {
            result = Py_NewRef(Py_None);
            goto out;
        }
    }
    result = PyBytes_FromStringAndSize(o.data, (Py_ssize_t)o.len);
out:
    PyMem_Free(o.data);
    PyMem_Free(o.lists);
    return result;
}

struct in {
    const unsigned char *p, *end;
};

static int bad_frame(void)
{
    PyErr_SetString(PyExc_ValueError, "corrupt record frame");
    return -1;
}

static int get_varint(struct in *in, uint64_t *v)
{
    uint64_t x = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (in->p >= in->end)
            return bad_frame();
        unsigned char b = *in->p++;
        x |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = x;
            return 0;
        }
    }
    return bad_frame();
}

static PyObject *get_value(struct in *in, int depth)
{
    if (in->p >= in->end || depth > MAX_DEPTH) {
        bad_frame();
        return NULL;
    }
    unsigned char tag = *in->p++;
    uint64_t n;
    switch (tag) {
    case T_NONE:
        return Py_NewRef(Py_None);
    case T_TRUE:
        return Py_NewRef(Py_True);
    case T_FALSE:
        return Py_NewRef(Py_False);
    case T_INT:
        if (get_varint(in, &n) != 0)
            return NULL;
        return PyLong_FromLongLong((long long)(n >> 1) ^ -(long long)(n & 1));
    case T_FLOAT: {
        if (in->end - in->p < 8) {
            bad_frame();
            return NULL;
        }
        uint64_t bits = 0;
        for (int i = 0; i < 8; i++)
            bits |= (uint64_t)in->p[i] << (8 * i);
        in->p += 8;
        double d;
        memcpy(&d, &bits, 8);
        return PyFloat_FromDouble(d);
    }
    case T_STR:
    case T_BYTES: {
        if (get_varint(in, &n) != 0)
            return NULL;
        if (n > (uint64_t)(in->end - in->p)) {
            bad_frame();
            return NULL;
        }
        const char *s = (const char *)in->p;
        in->p += n;
        return tag == T_STR ? PyUnicode_DecodeUTF8(s, (Py_ssize_t)n, NULL)
                            : PyBytes_FromStringAndSize(s, (Py_ssize_t)n);
    }
    case T_TUPLE:
    case T_LIST: {
        if (get_varint(in, &n) != 0)
            return NULL;
        if (n > (uint64_t)(in->end - in->p)) {   /* every item takes a byte at least */
            bad_frame();
            return NULL;
        }
        PyObject *seq = tag == T_TUPLE ? PyTuple_New((Py_ssize_t)n) : PyList_New((Py_ssize_t)n);
        if (!seq)
            return NULL;
        for (uint64_t i = 0; i < n; i++) {
            PyObject *item = get_value(in, depth + 1);
            if (!item) {
                Py_DECREF(seq);
                return NULL;
            }
            if (tag == T_TUPLE)
                PyTuple_SET_ITEM(seq, (Py_ssize_t)i, item);
            else
                PyList_SET_ITEM(seq, (Py_ssize_t)i, item);
        }
        return seq;
    }
    case T_RESULT_ITERABLE: {
        if (!result_iterable_type || in->p >= in->end || *in->p != T_LIST) {
            bad_frame();
            return NULL;
        }
        PyObject *data = get_value(in, depth + 1);
        if (!data)
            return NULL;
        PyObject *values = PyObject_CallOneArg(result_iterable_type, data);
        Py_DECREF(data);
        return values;
    }
    default:
        bad_frame();
        return NULL;
    }
}

/* set_result_iterable(cls): the class written as tag 'R' (see the top). */
static PyObject *fast_set_result_iterable(PyObject *self, PyObject *cls)
{
    if (!PyType_Check(cls)) {
        PyErr_SetString(PyExc_TypeError, "set_result_iterable(cls: type)");
        return NULL;
    }
    if (!data_name && !(data_name = PyUnicode_InternFromString("data")))
        return NULL;
    Py_XSETREF(result_iterable_type, Py_NewRef(cls));
    Py_RETURN_NONE;
}

/* load_records(frame: bytes) -> list: the records dump_records wrote. */
static PyObject *fast_load_records(PyObject *self, PyObject *frame)
{
    Py_buffer view;
    if (PyObject_GetBuffer(frame, &view, PyBUF_SIMPLE) != 0)
        return NULL;
    struct in in = {view.buf, (const unsigned char *)view.buf + view.len};
    PyObject *list = NULL;
    uint64_t n;
    if (view.len < 2 || in.p[0] != RECORDS_MAGIC || in.p[1] != RECORDS_VERSION) {
        bad_frame();
        goto out;
    }
    in.p += 2;
    if (get_varint(&in, &n) != 0)
        goto out;
    if (n > (uint64_t)(in.end - in.p)) {
        bad_frame();
        goto out;
    }
    list = PyList_New((Py_ssize_t)n);
    if (!list)
        goto out;
    /* No collections while the frame's containers are made: each would walk
     * the young objects only to find them all alive (the next one sees them). */
    int collecting = PyGC_Disable();
    for (uint64_t i = 0; i < n; i++) {
        PyObject *item = get_value(&in, 0);
        if (!item) {
            Py_CLEAR(list);
            break;
        }
        PyList_SET_ITEM(list, (Py_ssize_t)i, item);
    }
    if (collecting)
        PyGC_Enable();
    if (list && in.p != in.end) {
        Py_CLEAR(list);
        bad_frame();
    }
out:
    PyBuffer_Release(&view);
    return list;
}

static PyMethodDef records_methods[] = {
    {"dump_records", (PyCFunction)(void (*)(void))fast_dump_records, METH_FASTCALL,
     "dump_records(records, prefix) -> prefix + frame, or None (pickle them instead)"},
    {"load_records", fast_load_records, METH_O, "load_records(frame) -> list of records"},
    {"set_result_iterable", fast_set_result_iterable, METH_O,
     "set_result_iterable(cls): write exact instances with a list as tag 'R'"},
    {NULL, NULL, 0, NULL},
};

int pyexec_records_add(PyObject *module)
{
    if (PyModule_AddFunctions(module, records_methods) != 0)
        return -1;
    if (PyModule_AddIntConstant(module, "RECORDS_VERSION", RECORDS_VERSION) != 0)
        return -1;
    return PyModule_AddIntConstant(module, "RECORDS_MAGIC", RECORDS_MAGIC);
}
