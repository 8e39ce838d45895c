/* _ember_fast: the per-record loops of a shuffle's map side, in C.
 *
 * ember.shuffle.combine_locally and ember.worker_runtime._write_shuffle call
 * these (and ember.join its hash join's probe loop) when they run inside ember-pyexec (on the driver the module does not
 * exist and the Python loops run). Each function does exactly what the Python
 * loop it replaces does, in the same order, with the same calls into user
 * code and the same exceptions; it only drops the interpreter's per-record
 * overhead. Both return after a bounded number of records so that the Python
 * side keeps its memory checks. */
#include "pyexec.h"

static PyObject *operator_add;     /* operator.add: merged with PyNumber_Add, which it is */
static PyObject *zero;             /* 0, for record[0] on records that are not tuples */

/* Unpacks `k, v = record` with Python's own errors. New references. */
int pyexec_unpack_pair(PyObject *record, PyObject **k, PyObject **v)
{
    if (PyTuple_CheckExact(record) && PyTuple_GET_SIZE(record) == 2) {
        *k = Py_NewRef(PyTuple_GET_ITEM(record, 0));
        *v = Py_NewRef(PyTuple_GET_ITEM(record, 1));
        return 0;
    }
    PyObject *it = PyObject_GetIter(record);
    if (!it) {
        /* CPython's wording for what is not iterable at all; an error the
         * object's own __iter__ raised passes unchanged. */
        if (PyErr_ExceptionMatches(PyExc_TypeError) && Py_TYPE(record)->tp_iter == NULL
            && !PySequence_Check(record))
            PyErr_Format(PyExc_TypeError, "cannot unpack non-iterable %.200s object",
                         Py_TYPE(record)->tp_name);
        return -1;
    }
    PyObject *items[3] = {NULL, NULL, NULL};
    int n = 0;
    for (; n < 3; n++) {
        items[n] = PyIter_Next(it);
        if (!items[n])
            break;
    }
    Py_DECREF(it);
    if (PyErr_Occurred() || n != 2) {
        for (int i = 0; i < 3; i++)
            Py_XDECREF(items[i]);
        if (!PyErr_Occurred()) {
            if (n < 2)
                PyErr_Format(PyExc_ValueError,
                             "not enough values to unpack (expected 2, got %d)", n);
            else
                PyErr_SetString(PyExc_ValueError, "too many values to unpack (expected 2)");
        }
        return -1;
    }
    *k = items[0];
    *v = items[1];
    return 0;
}

/* The next record of iterator, unpacked: 1 with new references in *k and *v,
 * 0 at the end, -1 with an exception set. */
static int next_pair(PyObject *iterator, PyObject **k, PyObject **v)
{
    PyObject *record = PyIter_Next(iterator);
    if (!record)
        return PyErr_Occurred() ? -1 : 0;
    int rc = pyexec_unpack_pair(record, k, v);
    Py_DECREF(record);
    return rc == 0 ? 1 : -1;
}

/* merge(old, v), with operator.add done directly and None meaning
 * ember.shuffle.keep_first (old). New reference. old is held for the call:
 * the dict that lends it could change under Python code (an __add__). */
static PyObject *merge_values(PyObject *merge, PyObject *old, PyObject *v)
{
    if (merge == Py_None)
        return Py_NewRef(old);
    PyObject *result;
    Py_INCREF(old);
    if (merge == operator_add)
        result = PyNumber_Add(old, v);
    else
        result = PyObject_Vectorcall(merge, (PyObject *[]){old, v}, 2, NULL);
    Py_DECREF(old);
    return result;
}

/* old += v when that cannot be told from data[k] = old + v: both exact
 * floats (float + float is the C double sum, as float.__add__ computes it) and
 * the dict the only holder of old (reference count 1), so no one else sees it
 * change. Saves reduceByKey(add) over floats (PageRank's contributions) a
 * float's allocation and a second dict lookup per record. Returns 1 if done. */
static int add_float_in_place(PyObject *merge, PyObject *old, PyObject *v)
{
    if (merge != operator_add || !PyFloat_CheckExact(old) || !PyFloat_CheckExact(v)
        || Py_REFCNT(old) != 1)
        return 0;
    ((PyFloatObject *)old)->ob_fval += PyFloat_AS_DOUBLE(v);
    return 1;
}

/* combine(data, iterator, create, merge, max_records) -> (consumed, exhausted)
 *
 * For up to max_records records (k, v) of iterator:
 *     data[k] = merge(data[k], v) if k in data else create(v)
 * where create None means the value itself (reduceByKey's combiner) and merge
 * None keeps data[k] (ember.shuffle.keep_first, distinct's). */
static PyObject *fast_combine(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 5) {
        PyErr_SetString(PyExc_TypeError, "combine(data, iterator, create, merge, max_records)");
        return NULL;
    }
    PyObject *data = args[0], *iterator = args[1], *create = args[2], *merge = args[3];
    Py_ssize_t max_records = PyLong_AsSsize_t(args[4]);
    if (max_records == -1 && PyErr_Occurred())
        return NULL;
    if (!PyDict_CheckExact(data) || !PyIter_Check(iterator)) {
        PyErr_SetString(PyExc_TypeError, "combine needs a dict and an iterator");
        return NULL;
    }
    Py_ssize_t consumed = 0;
    int exhausted = 0;
    while (consumed < max_records) {
        PyObject *k, *v;
        int got = next_pair(iterator, &k, &v);
        if (got < 0)
            return NULL;
        if (got == 0) {
            exhausted = 1;
            break;
        }
        consumed++;
        PyObject *old = PyDict_GetItemWithError(data, k);   /* borrowed */
        PyObject *updated;
        if (old && add_float_in_place(merge, old, v)) {
            Py_DECREF(k);
            Py_DECREF(v);
            continue;
        }
        if (old)
            updated = merge_values(merge, old, v);
        else if (PyErr_Occurred())
            updated = NULL;
        else if (create == Py_None)
            updated = Py_NewRef(v);
        else
            updated = PyObject_CallOneArg(create, v);
        int rc = updated ? PyDict_SetItem(data, k, updated) : -1;
        Py_XDECREF(updated);
        Py_DECREF(k);
        Py_DECREF(v);
        if (rc != 0)
            return NULL;
    }
    return Py_BuildValue("(nO)", consumed, exhausted ? Py_True : Py_False);
}

/* Adds one (k, vs) record to data in extend mode: vs (made a list if it is
 * not one) becomes k's list, or extends it; an empty vs only makes sure k has
 * a list. Sets *first to vs's first value (new reference) when it has one.
 * Returns the number of values added, or -1. */
static Py_ssize_t group_extend(PyObject *data, PyObject *k, PyObject *vs, int *new_key,
                               PyObject **first)
{
    PyObject *list = PyList_CheckExact(vs) ? Py_NewRef(vs) : PySequence_List(vs);
    if (!list)
        return -1;
    Py_ssize_t n = PyList_GET_SIZE(list);
    PyObject *values = PyDict_GetItemWithError(data, k);   /* borrowed */
    int rc = 0;
    if (values) {
        if (!PyList_Check(values)) {
            PyErr_SetString(PyExc_TypeError, "grouped values must be lists");
            rc = -1;
        } else if (n == 1) {    /* one value (groupByKey's map side past grouping) */
            rc = PyList_Append(values, PyList_GET_ITEM(list, 0));
        } else if (n) {
            rc = PyList_SetSlice(values, PY_SSIZE_T_MAX, PY_SSIZE_T_MAX, list);
        }
    } else if (PyErr_Occurred()) {
        rc = -1;
    } else {
        *new_key = 1;
        if (n) {
            rc = PyDict_SetItem(data, k, list);
        } else {
            PyObject *empty = PyList_New(0);
            rc = empty ? PyDict_SetItem(data, k, empty) : -1;
            Py_XDECREF(empty);
        }
    }
    if (rc == 0 && n)
        *first = Py_NewRef(PyList_GET_ITEM(list, 0));
    Py_DECREF(list);
    return rc == 0 ? n : -1;
}

/* Adds one (k, v) record to data in append mode. Returns 1 or -1. */
Py_ssize_t pyexec_group_append(PyObject *data, PyObject *k, PyObject *v, int *new_key)
{
    PyObject *values = PyDict_GetItemWithError(data, k);   /* borrowed */
    if (values)
        return PyList_Check(values) ? (PyList_Append(values, v) == 0 ? 1 : -1)
                                    : (PyErr_SetString(PyExc_TypeError,
                                                       "grouped values must be lists"), -1);
    if (PyErr_Occurred())
        return -1;
    PyObject *list = PyList_New(1);
    if (!list)
        return -1;
    PyList_SET_ITEM(list, 0, Py_NewRef(v));
    *new_key = 1;
    int rc = PyDict_SetItem(data, k, list);
    Py_DECREF(list);
    return rc == 0 ? 1 : -1;
}

/* group(data, iterator, extend, max_records)
 *     -> (consumed, exhausted, new_keys, values_added, sample_key, sample_value)
 *
 * groupByKey's loops: for up to max_records records (k, v) of iterator, append
 * v to data[k] (a new list [v] for a new key); with extend, each record is
 * (k, values) and data[k] is extended by them (the record's own list becomes
 * data[k] for a new key, as in ExternalGroupBy.mergeCombiners). The last key
 * and value seen are returned for the caller's size sampling. */
static PyObject *fast_group(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "group(data, iterator, extend, max_records)");
        return NULL;
    }
    PyObject *data = args[0], *iterator = args[1];
    int extend = PyObject_IsTrue(args[2]);
    Py_ssize_t max_records = PyLong_AsSsize_t(args[3]);
    if (extend < 0 || (max_records == -1 && PyErr_Occurred()))
        return NULL;
    if (!PyDict_CheckExact(data) || !PyIter_Check(iterator)) {
        PyErr_SetString(PyExc_TypeError, "group needs a dict and an iterator");
        return NULL;
    }
    Py_ssize_t consumed = 0, new_keys = 0, added = 0;
    PyObject *sample_key = Py_NewRef(Py_None), *sample_value = Py_NewRef(Py_None);
    int exhausted = 0;
    while (consumed < max_records) {
        PyObject *k, *v;
        int got = next_pair(iterator, &k, &v);
        if (got < 0)
            goto fail;
        if (got == 0) {
            exhausted = 1;
            break;
        }
        consumed++;
        int new_key = 0;
        PyObject *first = NULL;
        Py_ssize_t n = extend ? group_extend(data, k, v, &new_key, &first)
                              : pyexec_group_append(data, k, v, &new_key);
        if (n > 0) {
            Py_SETREF(sample_value, extend ? first : Py_NewRef(v));
            Py_SETREF(sample_key, Py_NewRef(k));
        }
        Py_DECREF(k);
        Py_DECREF(v);
        if (n < 0)
            goto fail;
        new_keys += new_key;
        added += n;
    }
    PyObject *result = Py_BuildValue("(nOnnOO)", consumed, exhausted ? Py_True : Py_False,
                                     new_keys, added, sample_key, sample_value);
    Py_DECREF(sample_key);
    Py_DECREF(sample_value);
    return result;
fail:
    Py_DECREF(sample_key);
    Py_DECREF(sample_value);
    return NULL;
}

/* ember.shuffle.portable_hash: hash(), except None is 0 and a tuple mixes
 * its items' portable hashes (Python's old tuple hash, kept so that keys land
 * in the same partition on every worker whatever the hash of tuples does).
 * Python does the arithmetic on unbounded ints and masks with sys.maxsize;
 * its low 63 bits are those of the same arithmetic on uint64_t. */
static Py_hash_t portable_hash(PyObject *x, int *subclass)
{
    if (x == Py_None)
        return 0;
    if (!PyTuple_Check(x))
        return PyObject_Hash(x);
    if (!PyTuple_CheckExact(x)) {     /* may iterate its own way: Python's rule decides */
        *subclass = 1;
        return 0;
    }
    uint64_t h = 0x345678;
    Py_ssize_t n = PyTuple_GET_SIZE(x);
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_hash_t item = portable_hash(PyTuple_GET_ITEM(x, i), subclass);
        if (item == -1 && PyErr_Occurred())
            return -1;
        h ^= (uint64_t)item;
        h *= 1000003u;
        h &= (uint64_t)PY_SSIZE_T_MAX;
    }
    h ^= (uint64_t)n;
    return (Py_hash_t)h;     /* below 2**63, so never -1 */
}

/* The reduce partition of key: partitioner(key) % num_reduce, with
 * ember.shuffle.portable_hash and a RangePartitioner (range, else NULL)
 * computed here. */
static Py_ssize_t reduce_partition(PyObject *key, PyObject *partitioner, int portable,
                                   const struct pyexec_range *range,
                                   PyObject *num_reduce_obj, Py_ssize_t num_reduce)
{
    if (range) {
        Py_ssize_t p = pyexec_range_partition(range, key);
        if (p == -1 && PyErr_Occurred())
            return -1;
        Py_ssize_t r = p % num_reduce;          /* Python's %: the sign of the divisor */
        return r < 0 ? r + num_reduce : r;
    }
    if (portable) {
        int subclass = 0;
        Py_hash_t h = portable_hash(key, &subclass);
        if (h == -1 && PyErr_Occurred())
            return -1;
        if (!subclass) {
            Py_ssize_t r = (Py_ssize_t)(h % num_reduce);
            return r < 0 ? r + num_reduce : r;
        }
    }
    PyObject *hashed = PyObject_CallOneArg(partitioner, key);
    if (!hashed)
        return -1;
    PyObject *rem = PyNumber_Remainder(hashed, num_reduce_obj);
    Py_DECREF(hashed);
    if (!rem)
        return -1;
    Py_ssize_t r = PyLong_AsSsize_t(rem);
    Py_DECREF(rem);
    if (r == -1 && PyErr_Occurred())
        return -1;
    if (r < 0 || r >= num_reduce) {
        PyErr_Format(PyExc_ValueError, "partitioner gave %zd for %zd reduce partitions", r,
                     num_reduce);
        return -1;
    }
    return r;
}

/* The record partition() buckets: itself, or with pairs (groupByKey's map
 * side) `(k, v)` as `for k, v in records` unpacks it, with its errors: an
 * exact 2-tuple as it is, anything else as a new tuple. New reference. */
static PyObject *bucketed_record(PyObject *record, int pairs)
{
    if (!pairs || (PyTuple_CheckExact(record) && PyTuple_GET_SIZE(record) == 2))
        return Py_NewRef(record);
    PyObject *k, *v;
    if (pyexec_unpack_pair(record, &k, &v) != 0)
        return NULL;
    PyObject *pair = PyTuple_Pack(2, k, v);
    Py_DECREF(k);
    Py_DECREF(v);
    return pair;
}

/* partition(iterator, partitioner, portable, buckets, max_len[, pairs]) -> int
 *
 * Appends each record of iterator to buckets[partitioner(record[0]) % len(buckets)]
 * until one bucket holds max_len records (returns its index) or the iterator
 * is exhausted (returns -1). portable_hash and sortByKey's RangePartitioner
 * are computed in C (pyexec_sort.c), any other partitioner is called. With
 * pairs true each record is first unpacked as a (key, value) pair
 * (bucketed_record). */
static PyObject *fast_partition(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 5 && nargs != 6) {
        PyErr_SetString(PyExc_TypeError,
                        "partition(iterator, partitioner, portable, buckets, max_len[, pairs])");
        return NULL;
    }
    PyObject *iterator = args[0], *partitioner = args[1], *buckets = args[3];
    int portable = PyObject_IsTrue(args[2]);
    int pairs = nargs == 6 ? PyObject_IsTrue(args[5]) : 0;
    Py_ssize_t max_len = PyLong_AsSsize_t(args[4]);
    if (portable < 0 || pairs < 0 || (max_len == -1 && PyErr_Occurred()))
        return NULL;
    if (!PyIter_Check(iterator) || !PyList_CheckExact(buckets) || PyList_GET_SIZE(buckets) == 0) {
        PyErr_SetString(PyExc_TypeError, "partition needs an iterator and a list of lists");
        return NULL;
    }
    Py_ssize_t num_reduce = PyList_GET_SIZE(buckets);
    struct pyexec_range range_fields = {0};
    const struct pyexec_range *range = NULL;
    if (pyexec_is_range_partitioner(partitioner)) {
        int loaded = pyexec_range_load(partitioner, &range_fields);
        if (loaded < 0)
            return NULL;
        if (loaded == 0)
            range = &range_fields;
    }
    PyObject *num_reduce_obj = PyLong_FromSsize_t(num_reduce);
    if (!num_reduce_obj) {
        pyexec_range_clear(&range_fields);
        return NULL;
    }
    Py_ssize_t full = -1;
    for (;;) {
        PyObject *next = PyIter_Next(iterator);
        if (!next) {
            if (PyErr_Occurred())
                goto fail;
            break;
        }
        PyObject *record = bucketed_record(next, pairs);
        Py_DECREF(next);
        if (!record)
            goto fail;
        PyObject *key = PyTuple_CheckExact(record) && PyTuple_GET_SIZE(record) > 0
                            ? Py_NewRef(PyTuple_GET_ITEM(record, 0))
                            : PyObject_GetItem(record, zero);
        Py_ssize_t r = key ? reduce_partition(key, partitioner, portable, range,
                                              num_reduce_obj, num_reduce)
                           : -1;
        Py_XDECREF(key);
        PyObject *bucket = r >= 0 ? PyList_GET_ITEM(buckets, r) : NULL;
        if (bucket && !PyList_Check(bucket)) {
            PyErr_SetString(PyExc_TypeError, "buckets must be lists");
            bucket = NULL;
        }
        int rc = bucket ? PyList_Append(bucket, record) : -1;
        Py_DECREF(record);
        if (rc != 0)
            goto fail;
        if (PyList_GET_SIZE(bucket) >= max_len) {
            full = r;
            break;
        }
    }
    Py_DECREF(num_reduce_obj);
    pyexec_range_clear(&range_fields);
    return PyLong_FromSsize_t(full);
fail:
    Py_DECREF(num_reduce_obj);
    pyexec_range_clear(&range_fields);
    return NULL;
}

/* portable_hash(x) -> int, or None where a tuple subclass leaves it to Python. */
static PyObject *fast_portable_hash(PyObject *self, PyObject *x)
{
    int subclass = 0;
    Py_hash_t h = portable_hash(x, &subclass);
    if (h == -1 && PyErr_Occurred())
        return NULL;
    if (subclass)
        Py_RETURN_NONE;
    return PyLong_FromSsize_t(h);
}

/* Appends (k, (v, w)) to out. Returns 0 or -1. */
static int append_joined(PyObject *out, PyObject *k, PyObject *v, PyObject *w)
{
    PyObject *pair = PyTuple_Pack(2, v, w);
    if (!pair)
        return -1;
    PyObject *record = PyTuple_Pack(2, k, pair);
    Py_DECREF(pair);
    if (!record)
        return -1;
    int rc = PyList_Append(out, record);
    Py_DECREF(record);
    return rc;
}

/* Probes index with one right record (k, w), as ember.join._probe's loop body. */
static int probe_one(PyObject *index, PyObject *several, PyObject *out, PyObject *matched,
                     int outer_right, PyObject *k, PyObject *w)
{
    PyObject *v = PyDict_GetItemWithError(index, k);   /* borrowed */
    if (!v) {
        if (PyErr_Occurred())
            return -1;
        return outer_right ? append_joined(out, k, Py_None, w) : 0;
    }
    /* Held: adding k to matched may run k's own __eq__, which could change index. */
    Py_INCREF(v);
    int rc = matched != Py_None ? PySet_Add(matched, k) : 0;
    if (rc == 0 && (PyObject *)Py_TYPE(v) != several)
        rc = append_joined(out, k, v, w);
    else
        for (Py_ssize_t i = 0; rc == 0 && i < PyList_GET_SIZE(v); i++)
            rc = append_joined(out, k, PyList_GET_ITEM(v, i), w);
    Py_DECREF(v);
    return rc;
}

/* probe(index, several, iterator, out, matched, outer_right, max_records) -> exhausted
 *
 * The probe loop of ember.join's co-partitioned hash join for up to
 * max_records right records (k, w) of iterator: appends to the list out
 * (k, (v, w)) for each left value v of k (the values of a list of type
 * `several`, or the value itself), or (k, (None, w)) when k has none and
 * outer_right; adds matched keys to the set matched unless it is None.
 * Records appended before an exception stay in out. */
static PyObject *fast_probe(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 7) {
        PyErr_SetString(PyExc_TypeError,
                        "probe(index, several, iterator, out, matched, outer_right, max_records)");
        return NULL;
    }
    PyObject *index = args[0], *several = args[1], *iterator = args[2], *out = args[3];
    PyObject *matched = args[4];
    int outer_right = PyObject_IsTrue(args[5]);
    Py_ssize_t max_records = PyLong_AsSsize_t(args[6]);
    if (outer_right < 0 || (max_records == -1 && PyErr_Occurred()))
        return NULL;
    if (!PyDict_CheckExact(index) || !PyType_Check(several)
        || !PyType_IsSubtype((PyTypeObject *)several, &PyList_Type) || !PyIter_Check(iterator)
        || !PyList_CheckExact(out) || (matched != Py_None && !PySet_CheckExact(matched))) {
        PyErr_SetString(PyExc_TypeError,
                        "probe needs a dict, a list type, an iterator, a list and a set or None");
        return NULL;
    }
    for (Py_ssize_t n = 0; n < max_records; n++) {
        PyObject *k, *w;
        int got = next_pair(iterator, &k, &w);
        if (got < 0)
            return NULL;
        if (got == 0)
            Py_RETURN_TRUE;
        int rc = probe_one(index, several, out, matched, outer_right, k, w);
        Py_DECREF(k);
        Py_DECREF(w);
        if (rc != 0)
            return NULL;
    }
    Py_RETURN_FALSE;
}

static PyMethodDef fast_methods[] = {
    {"group", (PyCFunction)(void (*)(void))fast_group, METH_FASTCALL,
     "group(data, iterator, extend, max_records) -> (consumed, exhausted, new_keys, "
     "values_added, sample_key, sample_value)"},
    {"portable_hash", fast_portable_hash, METH_O, "ember.shuffle.portable_hash, in C."},
    {"combine", (PyCFunction)(void (*)(void))fast_combine, METH_FASTCALL,
     "combine(data, iterator, create, merge, max_records) -> (consumed, exhausted)"},
    {"partition", (PyCFunction)(void (*)(void))fast_partition, METH_FASTCALL,
     "partition(iterator, partitioner, portable, buckets, max_len[, pairs]) -> full bucket or -1"},
    {"probe", (PyCFunction)(void (*)(void))fast_probe, METH_FASTCALL,
     "probe(index, several, iterator, out, matched, outer_right, max_records) -> exhausted"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef fast_module = {
    PyModuleDef_HEAD_INIT, "_ember_fast", "The shuffle's per-record loops in C.", -1,
    fast_methods,
};

PyObject *pyexec_fast_init(void)
{
    PyObject *operator_module = PyImport_ImportModule("operator");
    if (!operator_module)
        return NULL;
    operator_add = PyObject_GetAttrString(operator_module, "add");
    Py_DECREF(operator_module);
    zero = PyLong_FromLong(0);
    if (!operator_add || !zero)
        return NULL;
    PyObject *module = PyModule_Create(&fast_module);
    if (module && (pyexec_words_add(module) != 0 || pyexec_records_add(module) != 0 ||
                   pyexec_sort_add(module) != 0 || pyexec_values_add(module) != 0 ||
                   pyexec_lines_add(module) != 0 ||
                   pyexec_split_pairs_add(module) != 0 || pyexec_groups_add(module) != 0 ||
                   pyexec_merge_add(module) != 0))
        Py_CLEAR(module);
    return module;
}

#ifdef EMBER_FAST_EXTENSION
/* Built also as an importable extension (build/lib), so that tests can hold
 * these loops against the Python ones they replace. */
PyMODINIT_FUNC PyInit__ember_fast(void)
{
    return pyexec_fast_init();
}
#endif
