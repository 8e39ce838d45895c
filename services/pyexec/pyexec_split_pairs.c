/* _ember_fast.SplitPairsWriter: distinct's map side of split text lines, from the
 * text frames straight to shuffle record frames.
 *
 * `textFile(...).map(lambda line: tuple(line.split())).distinct(n)` (PageRank's
 * edges) sends on, once its map side stopped combining (most records new),
 * every line as the record (tuple(line.split()), None), bucketed by
 * portable_hash of the tuple and written by dump_records. Made as objects,
 * each line is a tuple and its strs built by split_lines, read by partition
 * and dump_records and freed: memory traffic for nothing. Here an ASCII frame
 * is cut into lines and fields exactly as split_lines cuts it
 * (pyexec_lines.c), each field's hash is what hash() of its str gives
 * (_Py_HashBytes over the ASCII bytes, as str's own hash; cached nowhere),
 * the tuple's hash is ember.shuffle.portable_hash's mix, and the record's
 * bytes are what dump_records writes for it (pyexec_records.c: tags '(' 's'
 * 'N', varint lengths); a bucket goes out as a frame (with the shuffle's
 * 4-byte reduce id in front) once it holds frame_bytes. So each bucket gets
 * the records partition and dump_records give it, in the same order and
 * number; only where its frames are cut differs (frame_bytes here, the
 * adaptive batch size there). A frame with a non-ASCII byte is refused (feed
 * gives -1) and left to the object path. Raises MemoryError, TypeError and
 * ValueError on bad arguments, RuntimeError when used before __init__. */
#include "pyexec.h"

#include <string.h>

/* The record frame of pyexec_records.c (load_records reads what take writes:
 * python-client/tests/test_split_pairs.py). */

/* ASCII whitespace for str.split(), as pyexec_lines.c. */
static unsigned char is_space[256];

struct bucket {
    char *data;
    size_t len, cap;
    Py_ssize_t records;
};

typedef struct {
    PyObject_HEAD
    struct bucket *buckets;
    Py_ssize_t num_reduce;
    int sep;                     /* -1: str.split(); else the separator byte */
    size_t frame_bytes;          /* a bucket's records go out as a frame past this */
    PyObject *done;              /* list of (frame, records) not handed out yet */
} SplitPairsWriter;

/* Room for one record of at most this many bytes past frame_bytes: a bucket's
 * buffer starts at frame_bytes plus this (or plus the first record, if larger), so
 * it is not doubled by the record that crosses frame_bytes. */
#define RECORD_MARGIN 4096

static int reserve(struct bucket *b, size_t more, size_t frame_bytes)
{
    if (b->len + more <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : frame_bytes + (more > RECORD_MARGIN ? more : RECORD_MARGIN);
    while (cap < b->len + more)
        cap *= 2;
    char *data = PyMem_Realloc(b->data, cap);
    if (!data) {
        PyErr_NoMemory();
        return -1;
    }
    b->data = data;
    b->cap = cap;
    return 0;
}

/* Writes v as a varint at p; returns the bytes written (at most 10). */
static size_t varint_at(char *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (char)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (char)v;
    return n;
}

/* The fields of a line: [start, end) pairs, split as str.split()/str.split(sep). */
struct fields {
    Py_ssize_t *at;              /* 2 per field */
    Py_ssize_t count, cap;
};

static int add_field(struct fields *f, Py_ssize_t start, Py_ssize_t end)
{
    if (f->count == f->cap) {
        Py_ssize_t cap = f->cap ? f->cap * 2 : 16;
        Py_ssize_t *at = PyMem_Realloc(f->at, (size_t)cap * 2 * sizeof(*at));
        if (!at) {
            PyErr_NoMemory();
            return -1;
        }
        f->at = at;
        f->cap = cap;
    }
    f->at[2 * f->count] = start;
    f->at[2 * f->count + 1] = end;
    f->count++;
    return 0;
}

static int split_fields(const unsigned char *b, Py_ssize_t n, int sep, struct fields *f)
{
    f->count = 0;
    Py_ssize_t i = 0;
    if (sep < 0) {
        for (;;) {
            while (i < n && is_space[b[i]])
                i++;
            if (i == n)
                return 0;
            Py_ssize_t start = i;
            while (i < n && !is_space[b[i]])
                i++;
            if (add_field(f, start, i) != 0)
                return -1;
        }
    }
    for (;;) {
        const unsigned char *hit = memchr(b + i, sep, (size_t)(n - i));
        Py_ssize_t end = hit ? hit - b : n;
        if (add_field(f, i, end) != 0)
            return -1;
        if (!hit)
            return 0;
        i = end + 1;
    }
}

/* Moves bucket index's records into a frame on w->done: the 4-byte reduce
 * id the shuffle writer puts in front, then the record frame. */
static int finish_frame(SplitPairsWriter *w, Py_ssize_t index)
{
    struct bucket *b = &w->buckets[index];
    if (!b->records)
        return 0;
    char head[4 + 2 + 10];
    uint32_t id = (uint32_t)index;
    head[0] = (char)(id >> 24);
    head[1] = (char)(id >> 16);
    head[2] = (char)(id >> 8);
    head[3] = (char)id;
    head[4] = (char)RECORDS_MAGIC;
    head[5] = RECORDS_VERSION;
    size_t head_len = 6 + varint_at(head + 6, (uint64_t)b->records);
    PyObject *frame = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(head_len + b->len));
    if (!frame)
        return -1;
    memcpy(PyBytes_AS_STRING(frame), head, head_len);
    memcpy(PyBytes_AS_STRING(frame) + head_len, b->data, b->len);
    PyObject *entry = Py_BuildValue("(Nn)", frame, b->records);
    if (!entry)
        return -1;
    int rc = PyList_Append(w->done, entry);
    Py_DECREF(entry);
    if (rc == 0) {
        b->len = 0;
        b->records = 0;
    }
    return rc;
}

/* Appends the record (tuple(fields), None) of line [p, p + n) to its bucket. */
static int write_line(SplitPairsWriter *w, const char *p, Py_ssize_t n, struct fields *f)
{
    const unsigned char *b = (const unsigned char *)p;
    if (split_fields(b, n, w->sep, f) != 0)
        return -1;
    /* ember.shuffle.portable_hash of the tuple (as pyexec_fast.c's), with
     * each item's hash that of its str */
    uint64_t h = 0x345678;
    size_t bytes = 1 + 10 + 1 + 10 + 1;
    for (Py_ssize_t j = 0; j < f->count; j++) {
        Py_ssize_t start = f->at[2 * j], len = f->at[2 * j + 1] - start;
        Py_hash_t item = _Py_HashBytes(p + start, len);
        h ^= (uint64_t)item;
        h *= 1000003u;
        h &= (uint64_t)PY_SSIZE_T_MAX;
        bytes += 1 + 10 + (size_t)len;
    }
    h ^= (uint64_t)f->count;
    Py_ssize_t index = (Py_ssize_t)(h % (uint64_t)w->num_reduce);
    struct bucket *bucket = &w->buckets[index];
    if (reserve(bucket, bytes, w->frame_bytes) != 0)
        return -1;
    char *o = bucket->data + bucket->len;
    *o++ = '(';
    o += varint_at(o, 2);
    *o++ = '(';
    o += varint_at(o, (uint64_t)f->count);
    for (Py_ssize_t j = 0; j < f->count; j++) {
        Py_ssize_t start = f->at[2 * j], len = f->at[2 * j + 1] - start;
        *o++ = 's';
        o += varint_at(o, (uint64_t)len);
        memcpy(o, p + start, (size_t)len);
        o += len;
    }
    *o++ = 'N';
    bucket->len = (size_t)(o - bucket->data);
    bucket->records++;
    /* Frames of about a shuffle's usual size: the reduce side decodes a frame
     * and merges its records while they are still in the CPU's cache (frames
     * of 512 KiB made distinct's reduce side a fifth slower). */
    return bucket->len >= w->frame_bytes ? finish_frame(w, index) : 0;
}

/* 0 when __init__ ran to its end; else -1 with RuntimeError (a writer made by
 * __new__ alone, or whose __init__ failed, has no buckets to write into). */
static int check_ready(SplitPairsWriter *w)
{
    if (w->buckets && w->num_reduce > 0 && w->done)
        return 0;
    PyErr_SetString(PyExc_RuntimeError, "SplitPairsWriter not initialised (call __init__)");
    return -1;
}

/* feed(frame: bytes) -> the records written (its lines, as split_lines cuts
 * them), or -1 when the frame has a non-ASCII byte (nothing written). */
static PyObject *writer_feed(SplitPairsWriter *w, PyObject *frame)
{
    if (!PyBytes_CheckExact(frame)) {
        PyErr_SetString(PyExc_TypeError, "feed(frame: bytes)");
        return NULL;
    }
    if (check_ready(w) != 0)
        return NULL;
    const char *buf = PyBytes_AS_STRING(frame);
    Py_ssize_t len = PyBytes_GET_SIZE(frame);
    if (!pyexec_text_is_ascii(buf, len))
        return PyLong_FromLong(-1);
    struct fields f = {0};
    Py_ssize_t lines = 0, at = 0, start, line_len;
    while (pyexec_next_line(buf, len, &at, &start, &line_len)) {
        if (write_line(w, buf + start, line_len, &f) != 0) {
            PyMem_Free(f.at);
            return NULL;
        }
        lines++;
    }
    PyMem_Free(f.at);
    return PyLong_FromSsize_t(lines);
}

/* frames() -> [(frame, records), ...]: the frames finished since the last
 * call, each the 4-byte big-endian reduce id and the record frame. */
static PyObject *writer_frames(SplitPairsWriter *w, PyObject *unused)
{
    if (check_ready(w) != 0)
        return NULL;
    PyObject *fresh = PyList_New(0);
    if (!fresh)
        return NULL;
    PyObject *done = w->done;
    w->done = fresh;
    return done;
}

/* flush() -> frames() after every bucket's records went into a frame. */
static PyObject *writer_flush(SplitPairsWriter *w, PyObject *unused)
{
    if (check_ready(w) != 0)
        return NULL;
    for (Py_ssize_t i = 0; i < w->num_reduce; i++)
        if (finish_frame(w, i) != 0)
            return NULL;
    return writer_frames(w, NULL);
}

static int writer_init(SplitPairsWriter *w, PyObject *args, PyObject *kwargs)
{
    Py_ssize_t num_reduce, frame_bytes;
    PyObject *sep_obj;
    static char *names[] = {"num_reduce", "sep", "frame_bytes", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "nOn", names, &num_reduce, &sep_obj,
                                     &frame_bytes))
        return -1;
    if (frame_bytes < 1) {
        PyErr_SetString(PyExc_ValueError, "frame_bytes must be at least 1");
        return -1;
    }
    if (num_reduce < 1) {
        PyErr_SetString(PyExc_ValueError, "num_reduce must be at least 1");
        return -1;
    }
    int sep = -1;
    if (sep_obj != Py_None) {
        if (!PyUnicode_CheckExact(sep_obj) || PyUnicode_GET_LENGTH(sep_obj) != 1
            || PyUnicode_READ_CHAR(sep_obj, 0) >= 0x80 || PyUnicode_READ_CHAR(sep_obj, 0) == '\r'
            || PyUnicode_READ_CHAR(sep_obj, 0) == '\n') {
            PyErr_SetString(PyExc_TypeError,
                            "SplitPairsWriter needs None or a one-character ASCII separator");
            return -1;
        }
        sep = (int)PyUnicode_READ_CHAR(sep_obj, 0);
    }
    /* a second __init__ starts over; if it fails, the writer is left not
     * initialised (check_ready) rather than half made */
    for (Py_ssize_t i = 0; w->buckets && i < w->num_reduce; i++)
        PyMem_Free(w->buckets[i].data);
    PyMem_Free(w->buckets);
    w->buckets = NULL;
    w->num_reduce = 0;
    Py_CLEAR(w->done);
    PyObject *done = PyList_New(0);
    if (!done)
        return -1;
    w->buckets = PyMem_Calloc((size_t)num_reduce, sizeof(*w->buckets));
    if (!w->buckets) {
        Py_DECREF(done);
        PyErr_NoMemory();
        return -1;
    }
    w->num_reduce = num_reduce;
    w->done = done;
    w->sep = sep;
    w->frame_bytes = (size_t)frame_bytes;
    return 0;
}

static void writer_dealloc(SplitPairsWriter *w)
{
    for (Py_ssize_t i = 0; w->buckets && i < w->num_reduce; i++)
        PyMem_Free(w->buckets[i].data);
    PyMem_Free(w->buckets);
    Py_XDECREF(w->done);
    Py_TYPE(w)->tp_free((PyObject *)w);
}

static PyMethodDef writer_methods[] = {
    {"feed", (PyCFunction)writer_feed, METH_O,
     "feed(frame) -> records written, or -1 (not ASCII: nothing written)"},
    {"frames", (PyCFunction)writer_frames, METH_NOARGS,
     "frames() -> [(reduce id + record frame, records)] finished since the last call"},
    {"flush", (PyCFunction)writer_flush, METH_NOARGS,
     "flush() -> frames(), every bucket's records included"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject SplitPairsWriterType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "_ember_fast.SplitPairsWriter",
    .tp_basicsize = sizeof(SplitPairsWriter),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "SplitPairsWriter(num_reduce, sep, frame_bytes): text frames to the shuffle "
              "record frames of (tuple(line.split(sep)), None) bucketed by portable_hash",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)writer_init,
    .tp_dealloc = (destructor)writer_dealloc,
    .tp_methods = writer_methods,
};

int pyexec_split_pairs_add(PyObject *module)
{
    static const char spaces[] = "\t\n\v\f\r\x1c\x1d\x1e\x1f ";
    for (const char *c = spaces; *c; c++)
        is_space[(unsigned char)*c] = 1;
    if (PyType_Ready(&SplitPairsWriterType) != 0)
        return -1;
    return PyModule_AddObjectRef(module, "SplitPairsWriter", (PyObject *)&SplitPairsWriterType);
}
