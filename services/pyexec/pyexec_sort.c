/* _ember_fast's pieces of sortByKey: the sampling loop, the range partitioner's
 * bisect on the map side and a stable radix sort of integer-keyed records on
 * the reduce side.
 *
 * Range partitioning (ember.shuffle.RangePartitioner, registered with
 * set_range_partitioner): the partition of a key is bisect_left of
 * keyfunc(key) in the sorted bounds, counted from the end when descending.
 * pyexec_range_partition does the same comparisons as _bisect, in the same
 * order, so user keys see the same __lt__ calls and raise the same errors; it
 * only drops two Python calls per record.
 *
 * sort_by_int_key(records, reverse) sorts a list in place exactly as
 * records.sort(key=itemgetter(0), reverse=reverse) would when every record is
 * a tuple (exactly) whose first item is an int (exactly) in 64 bits: Python
 * orders such keys numerically and its sort is stable (also reversed: equal
 * keys keep their order), and so is an LSD radix sort, in O(n) instead of
 * O(n log n) comparisons. For any other list it returns False without
 * touching it, and the caller sorts with list.sort (same result, same errors).
 *
 * draws_below is the loop of ember.rddsampler.SortKeySampler (sortByKey's count
 * and key sample in one pass): a draw per record, the records drawn low kept. */
#include "pyexec.h"

#include <stdint.h>
#include <string.h>

/* ember.shuffle.RangePartitioner once the runtime registered it, else NULL. */
static PyObject *range_partitioner_type;

int pyexec_is_range_partitioner(PyObject *partitioner)
{
    return range_partitioner_type && (PyObject *)Py_TYPE(partitioner) == range_partitioner_type;
}

/* The bounds as C integers when every one is an int (exactly) in 64 bits:
 * an int key is then placed without a Python comparison (ints compare as
 * numbers, so the index is the same). NULL otherwise (an exception set only
 * when out of memory). */
static long long *int_bounds(PyObject *bounds)
{
    Py_ssize_t n = PyTuple_GET_SIZE(bounds);
    long long *values = PyMem_Malloc((size_t)(n ? n : 1) * sizeof(*values));
    if (!values) {
        PyErr_NoMemory();
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *bound = PyTuple_GET_ITEM(bounds, i);
        int overflow = 0;
        if (PyLong_CheckExact(bound))
            values[i] = PyLong_AsLongLongAndOverflow(bound, &overflow);
        if (!PyLong_CheckExact(bound) || overflow) {
            PyMem_Free(values);
            return NULL;
        }
    }
    return values;
}

int pyexec_range_load(PyObject *partitioner, struct pyexec_range *out)
{
    PyObject *bounds = PyObject_GetAttrString(partitioner, "bounds");
    PyObject *ascending = bounds ? PyObject_GetAttrString(partitioner, "ascending") : NULL;
    PyObject *count = ascending ? PyObject_GetAttrString(partitioner, "numPartitions") : NULL;
    PyObject *keyfunc = count ? PyObject_GetAttrString(partitioner, "keyfunc") : NULL;
    int rc = -1;
    if (!keyfunc)
        goto out;
    int asc = PyObject_IsTrue(ascending);
    Py_ssize_t n = PyLong_CheckExact(count) ? PyLong_AsSsize_t(count) : -1;
    if (asc < 0 || (n == -1 && PyErr_Occurred()))
        goto out;
    if (!PyTuple_CheckExact(bounds) || n < 1) {
        rc = 1;                        /* not the shape it is made with: call it instead */
        goto out;
    }
    out->int_bounds = int_bounds(bounds);
    if (!out->int_bounds && PyErr_Occurred())
        goto out;
    out->bounds = Py_NewRef(bounds);
    out->keyfunc = keyfunc == Py_None ? NULL : Py_NewRef(keyfunc);
    out->ascending = asc;
    out->num_partitions = n;
    rc = 0;
out:
    Py_XDECREF(bounds);
    Py_XDECREF(ascending);
    Py_XDECREF(count);
    Py_XDECREF(keyfunc);
    return rc;
}

void pyexec_range_clear(struct pyexec_range *range)
{
    Py_CLEAR(range->bounds);
    Py_CLEAR(range->keyfunc);
    PyMem_Free(range->int_bounds);
    range->int_bounds = NULL;
}

/* bisect_left of an int key in int bounds. */
static Py_ssize_t bisect_int(const long long *bounds, Py_ssize_t n, long long key)
{
    Py_ssize_t lo = 0, hi = n;
    while (lo < hi) {
        Py_ssize_t mid = lo + (hi - lo) / 2;
        if (bounds[mid] < key)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* RangePartitioner.__call__(key): bisect_left(bounds, keyfunc(key)), from the
 * end when descending; -1 with an exception set on error. */
Py_ssize_t pyexec_range_partition(const struct pyexec_range *range, PyObject *key)
{
    PyObject *item = range->keyfunc ? PyObject_CallOneArg(range->keyfunc, key) : Py_NewRef(key);
    if (!item)
        return -1;
    Py_ssize_t lo = 0, hi = PyTuple_GET_SIZE(range->bounds);
    if (range->int_bounds && PyLong_CheckExact(item)) {
        int overflow = 0;
        long long key = PyLong_AsLongLongAndOverflow(item, &overflow);
        if (!overflow) {
            Py_DECREF(item);
            lo = bisect_int(range->int_bounds, hi, key);
            return range->ascending ? lo : range->num_partitions - 1 - lo;
        }
    }
    while (lo < hi) {                  /* _bisect's internal_bisect_left */
        Py_ssize_t mid = (Py_ssize_t)(((size_t)lo + (size_t)hi) / 2);
        int less = PyObject_RichCompareBool(PyTuple_GET_ITEM(range->bounds, mid), item, Py_LT);
        if (less < 0) {
            Py_DECREF(item);
            return -1;
        }
        if (less)
            lo = mid + 1;
        else
            hi = mid;
    }
    Py_DECREF(item);
    return range->ascending ? lo : range->num_partitions - 1 - lo;
}

/* set_range_partitioner(cls): the class pyexec_range_partition computes. */
static PyObject *fast_set_range_partitioner(PyObject *self, PyObject *cls)
{
    if (!PyType_Check(cls)) {
        PyErr_SetString(PyExc_TypeError, "set_range_partitioner(cls: type)");
        return NULL;
    }
    Py_XSETREF(range_partitioner_type, Py_NewRef(cls));
    Py_RETURN_NONE;
}

struct keyed {
    uint64_t key;                      /* the int key, mapped to sort in unsigned order */
    PyObject *record;                  /* borrowed from the list */
};

/* The 8 byte-digits of every key counted in one pass; a digit whose count is
 * n in one bucket needs no pass. */
static void radix_sort(struct keyed *a, struct keyed *tmp, Py_ssize_t n)
{
    enum { DIGITS = 8 };
    size_t counts[DIGITS][256] = {{0}};
    for (Py_ssize_t i = 0; i < n; i++)
        for (int d = 0; d < DIGITS; d++)
            counts[d][(a[i].key >> (8 * d)) & 0xFF]++;
    struct keyed *src = a, *dst = tmp;
    for (int d = 0; d < DIGITS; d++) {
        size_t *count = counts[d];
        if (count[(src[0].key >> (8 * d)) & 0xFF] == (size_t)n)
            continue;                  /* every key has this digit */
        size_t offset = 0;
        for (int b = 0; b < 256; b++) {
            size_t c = count[b];
            count[b] = offset;
            offset += c;
        }
        for (Py_ssize_t i = 0; i < n; i++)
            dst[count[(src[i].key >> (8 * d)) & 0xFF]++] = src[i];
        struct keyed *swap = src;
        src = dst;
        dst = swap;
    }
    if (src != a)
        memcpy(a, src, (size_t)n * sizeof(*a));
}

/* A new tuple equal to record (exactly a tuple), with new ints (in 64 bits)
 * and floats and the same other items; untracked by the collector when it
 * holds only those (as CPython's own collections untrack such a tuple). */
static PyObject *copy_record(PyObject *record)
{
    Py_ssize_t n = PyTuple_GET_SIZE(record);
    PyObject *copy = PyTuple_New(n);
    int atomic = 1;
    if (!copy)
        return NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PyTuple_GET_ITEM(record, i), *fresh = NULL;
        int overflow = 0;
        long long v = PyLong_CheckExact(item) ? PyLong_AsLongLongAndOverflow(item, &overflow) : 0;
        if (PyLong_CheckExact(item) && !overflow)
            fresh = PyLong_FromLongLong(v);
        else if (PyFloat_CheckExact(item))
            fresh = PyFloat_FromDouble(PyFloat_AS_DOUBLE(item));
        else {
            fresh = Py_NewRef(item);
            atomic &= !PyObject_IS_GC(item);
        }
        if (!fresh) {
            Py_DECREF(copy);
            return NULL;
        }
        PyTuple_SET_ITEM(copy, i, fresh);
    }
    if (atomic)
        PyObject_GC_UnTrack(copy);
    return copy;
}

/* The records of a (key-sorted) run made anew in their new order, so that
 * reading them in order reads memory in order: a reader of sorted records
 * otherwise takes a cache miss on each tuple and each of its ints (the bench
 * suite's digest of a sorted partition ran 1.7 times slower). The copies are
 * all made before the old records are freed, so that they come from fresh
 * memory one after another. 0, or -1 (out of memory) with the list as it
 * was: items[] still holds the records in their old order. */
static int compact_sorted(PyObject **items, const struct keyed *sorted, Py_ssize_t n)
{
    PyObject **copies = PyMem_Malloc((size_t)n * sizeof(*copies));
    if (!copies)
        return -1;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (i + 8 < n) {
            PyObject *ahead = sorted[i + 8].record;
            __builtin_prefetch(ahead);
            if (i + 16 < n)
                __builtin_prefetch(sorted[i + 16].record);
            for (Py_ssize_t j = 0; j < PyTuple_GET_SIZE(ahead) && j < 2; j++)
                __builtin_prefetch(PyTuple_GET_ITEM(ahead, j));
        }
        copies[i] = copy_record(sorted[i].record);
        if (!copies[i]) {
            while (i-- > 0)
                Py_DECREF(copies[i]);
            PyMem_Free(copies);
            return -1;
        }
    }
    for (Py_ssize_t i = 0; i < n; i++) {     /* freed in the order they lie in memory */
        PyObject *old = items[i];
        items[i] = copies[i];
        Py_DECREF(old);
    }
    PyMem_Free(copies);
    return 0;
}

/* sort_by_int_key(records: list, reverse[, compact]) -> bool (see the top). */
static PyObject *fast_sort_by_int_key(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if ((nargs != 2 && nargs != 3) || !PyList_CheckExact(args[0])) {
        PyErr_SetString(PyExc_TypeError, "sort_by_int_key(records: list, reverse[, compact])");
        return NULL;
    }
    PyObject *list = args[0];
    int reverse = PyObject_IsTrue(args[1]);
    int compact = nargs == 3 ? PyObject_IsTrue(args[2]) : 0;
    if (reverse < 0 || compact < 0)
        return NULL;
    Py_ssize_t n = PyList_GET_SIZE(list);
    struct keyed *a = PyMem_Malloc((size_t)(n ? n : 1) * sizeof(*a));
    if (!a)
        return PyErr_NoMemory();
    PyObject **items = PySequence_Fast_ITEMS(list);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *record = items[i];
        /* The records are scattered over the heap: ask for the tuples and
         * their keys ahead of the loop (most of its time was cache misses). */
        if (i + 16 < n)
            __builtin_prefetch(items[i + 16]);
        if (i + 8 < n && PyTuple_CheckExact(items[i + 8]) && PyTuple_GET_SIZE(items[i + 8]) > 0)
            __builtin_prefetch(PyTuple_GET_ITEM(items[i + 8], 0));
        if (!PyTuple_CheckExact(record) || PyTuple_GET_SIZE(record) < 1 ||
            !PyLong_CheckExact(PyTuple_GET_ITEM(record, 0))) {
            PyMem_Free(a);
            Py_RETURN_FALSE;
        }
        int overflow = 0;
        long long v = PyLong_AsLongLongAndOverflow(PyTuple_GET_ITEM(record, 0), &overflow);
        if (overflow) {
            PyMem_Free(a);
            Py_RETURN_FALSE;
        }
        /* Flipping the sign bit makes unsigned order the signed order;
         * complementing it gives the descending order, still stable. */
        uint64_t key = (uint64_t)v ^ (UINT64_C(1) << 63);
        a[i].key = reverse ? ~key : key;
        a[i].record = record;
    }
    if (n > 1) {
        struct keyed *tmp = PyMem_Malloc((size_t)n * sizeof(*tmp));
        if (!tmp) {
            PyMem_Free(a);
            return PyErr_NoMemory();
        }
        radix_sort(a, tmp, n);
        PyMem_Free(tmp);
        /* Nothing ran Python code since the records were read: the list
         * holds the same references, only their order changes (or equal
         * copies of them: no Python code runs while they are made either). */
        if (!compact || compact_sorted(items, a, n) != 0) {
            PyErr_Clear();     /* a copy failed (no memory): the plain reorder needs none */
            for (Py_ssize_t i = 0; i < n; i++)
                items[i] = a[i].record;
        }
    }
    PyMem_Free(a);
    Py_RETURN_TRUE;
}

/* draws_below(records: list, draw, bound) -> [(u, record)]: calls draw() once
 * per record, in order, and keeps the records whose draw u is below bound (the
 * Bernoulli sampler's test, `draw() < bound`), for SortKeySampler. */
static PyObject *fast_draws_below(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3 || !PyList_CheckExact(args[0]) || !PyFloat_CheckExact(args[2])) {
        PyErr_SetString(PyExc_TypeError, "draws_below(records: list, draw, bound: float)");
        return NULL;
    }
    PyObject *records = args[0], *draw = args[1], *bound = args[2];
    double limit = PyFloat_AS_DOUBLE(bound);
    PyObject *kept = PyList_New(0);
    if (!kept)
        return NULL;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(records); i++) {  /* draw may change the list */
        PyObject *u = PyObject_CallNoArgs(draw);
        if (!u)
            goto fail;
        int below = PyFloat_CheckExact(u) ? PyFloat_AS_DOUBLE(u) < limit
                                          : PyObject_RichCompareBool(u, bound, Py_LT);
        if (below > 0 && i < PyList_GET_SIZE(records)) {
            PyObject *pair = PyTuple_Pack(2, u, PyList_GET_ITEM(records, i));
            below = pair ? PyList_Append(kept, pair) : -1;
            Py_XDECREF(pair);
        }
        Py_DECREF(u);
        if (below < 0)
            goto fail;
    }
    return kept;
fail:
    Py_DECREF(kept);
    return NULL;
}

static PyMethodDef sort_methods[] = {
    {"draws_below", (PyCFunction)(void (*)(void))fast_draws_below, METH_FASTCALL,
     "draws_below(records, draw, bound) -> [(u, record)] for each record whose draw() u "
     "is below bound"},
    {"sort_by_int_key", (PyCFunction)(void (*)(void))fast_sort_by_int_key, METH_FASTCALL,
     "sort_by_int_key(records, reverse[, compact]) -> bool: records.sort(key=itemgetter(0), "
     "reverse=reverse) done as a radix sort when every key is an int in 64 bits, with "
     "compact the records replaced by equal copies laid out in the new order; False "
     "(records untouched) otherwise"},
    {"set_range_partitioner", fast_set_range_partitioner, METH_O,
     "set_range_partitioner(cls): partition with cls's bounds in C"},
    {NULL, NULL, 0, NULL},
};

int pyexec_sort_add(PyObject *module)
{
    return PyModule_AddFunctions(module, sort_methods);
}
