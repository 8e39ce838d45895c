/* _ember_fast's per-key steps of a stage's narrow operations, in C:
 *
 * - ResultIterableBase: the slots of ember.resultiterable.ResultIterable
 *   (__init__, __iter__, __len__). Inside pyexec the class derives from it
 *   instead of defining them in Python, so a group's construction, iteration
 *   and len() (PageRank's `list(urls)` asks for both) run no Python frame.
 *   The attributes stay ordinary instance attributes (data, index, maxindex),
 *   set and read through the normal attribute protocol, as the Python methods
 *   do.
 * - map_values(f, iterator): RDD.mapValues' map(lambda kv: (kv[0], f(kv[1])),
 *   iterator) without the wrapper's frame per record.
 * - count(iterable): RDD.count's sum(1 for _ in iterable) without a generator
 *   step per record.
 *
 * Each does exactly what the Python code it replaces does, in the same order,
 * with the same calls into user code and the same exceptions; only a traceback
 * lacks the replaced frame. */
#include "pyexec.h"

static PyObject *str_data, *str_index, *str_maxindex, *int_zero, *int_one;

/* ResultIterable.__init__(self, data):
 *     self.data = data; self.index = 0; self.maxindex = len(data) */
static int values_init(PyObject *self, PyObject *args, PyObject *kwds)
{
    static char *names[] = {"data", NULL};
    PyObject *data;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O:__init__", names, &data))
        return -1;
    if (PyObject_SetAttr(self, str_data, data) != 0
        || PyObject_SetAttr(self, str_index, int_zero) != 0)
        return -1;
    Py_ssize_t n = PyObject_Size(data);
    if (n < 0)
        return -1;
    PyObject *maxindex = PyLong_FromSsize_t(n);
    if (!maxindex)
        return -1;
    int rc = PyObject_SetAttr(self, str_maxindex, maxindex);
    Py_DECREF(maxindex);
    return rc;
}

/* ResultIterable.__iter__: iter(self.data) */
static PyObject *values_iter(PyObject *self)
{
    PyObject *data = PyObject_GetAttr(self, str_data);
    if (!data)
        return NULL;
    PyObject *it = PyObject_GetIter(data);
    Py_DECREF(data);
    return it;
}

/* ResultIterable.__len__: len(self.data) */
static Py_ssize_t values_len(PyObject *self)
{
    PyObject *data = PyObject_GetAttr(self, str_data);
    if (!data)
        return -1;
    Py_ssize_t n = PyObject_Size(data);
    Py_DECREF(data);
    return n;
}

static PySequenceMethods values_as_sequence = {.sq_length = values_len};
static PyMappingMethods values_as_mapping = {.mp_length = values_len};

static PyTypeObject values_type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "_ember_fast.ResultIterableBase",
    .tp_basicsize = sizeof(PyObject),
    .tp_as_sequence = &values_as_sequence,
    .tp_as_mapping = &values_as_mapping,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_doc = "ember.resultiterable.ResultIterable's __init__, __iter__ and __len__ in C.",
    .tp_iter = values_iter,
    .tp_init = values_init,
    /* tp_new is object's (set in pyexec_values_add): it also sets up the
     * instance's inline attribute values, which values_init's setattrs then
     * fill without making a dict (PyType_GenericNew would not). */
};

/* The iterator map_values returns. */
typedef struct {
    PyObject_HEAD
    PyObject *f;
    PyObject *records;
} MapValues;

static PyObject *map_values_next(MapValues *m)
{
    PyObject *kv = PyIter_Next(m->records);
    if (!kv)
        return NULL;                   /* the end, or the records' exception */
    PyObject *k, *v;
    if (PyTuple_CheckExact(kv) && PyTuple_GET_SIZE(kv) >= 2) {
        k = Py_NewRef(PyTuple_GET_ITEM(kv, 0));
        v = Py_NewRef(PyTuple_GET_ITEM(kv, 1));
    } else {
        k = PyObject_GetItem(kv, int_zero);
        v = k ? PyObject_GetItem(kv, int_one) : NULL;
    }
    Py_DECREF(kv);
    PyObject *fv = v ? PyObject_CallOneArg(m->f, v) : NULL;
    PyObject *record = fv ? PyTuple_Pack(2, k, fv) : NULL;
    Py_XDECREF(k);
    Py_XDECREF(v);
    Py_XDECREF(fv);
    return record;
}

static int map_values_traverse(MapValues *m, visitproc visit, void *arg)
{
    Py_VISIT(m->f);
    Py_VISIT(m->records);
    return 0;
}

static void map_values_dealloc(MapValues *m)
{
    PyObject_GC_UnTrack(m);
    Py_XDECREF(m->f);
    Py_XDECREF(m->records);
    PyObject_GC_Del(m);
}

static PyTypeObject map_values_type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "_ember_fast.map_values_iterator",
    .tp_basicsize = sizeof(MapValues),
    .tp_dealloc = (destructor)map_values_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_traverse = (traverseproc)map_values_traverse,
    .tp_iter = PyObject_SelfIter,
    .tp_iternext = (iternextfunc)map_values_next,
};

/* map_values(f, iterable) -> iterator of (kv[0], f(kv[1])) for kv in iterable */
static PyObject *fast_map_values(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "map_values(f, iterable)");
        return NULL;
    }
    PyObject *records = PyObject_GetIter(args[1]);
    if (!records)
        return NULL;
    MapValues *m = PyObject_GC_New(MapValues, &map_values_type);
    if (!m) {
        Py_DECREF(records);
        return NULL;
    }
    m->f = Py_NewRef(args[0]);
    m->records = records;
    PyObject_GC_Track(m);
    return (PyObject *)m;
}

/* count(iterable) -> the number of its elements (sum(1 for _ in iterable)) */
static PyObject *fast_count(PyObject *self, PyObject *iterable)
{
    PyObject *it = PyObject_GetIter(iterable);
    if (!it)
        return NULL;
    iternextfunc next = Py_TYPE(it)->tp_iternext;
    Py_ssize_t n = 0;
    PyObject *x;
    while ((x = next(it)) != NULL) {
        Py_DECREF(x);
        n++;
    }
    Py_DECREF(it);
    if (PyErr_Occurred()) {
        if (!PyErr_ExceptionMatches(PyExc_StopIteration))
            return NULL;
        PyErr_Clear();
    }
    return PyLong_FromSsize_t(n);
}

static PyMethodDef values_methods[] = {
    {"map_values", (PyCFunction)(void (*)(void))fast_map_values, METH_FASTCALL,
     "map_values(f, iterable) -> iterator of (kv[0], f(kv[1])) for kv in iterable"},
    {"count", fast_count, METH_O, "count(iterable) -> number of elements"},
    {NULL, NULL, 0, NULL},
};

int pyexec_values_add(PyObject *module)
{
    if (!str_data) {
        str_data = PyUnicode_InternFromString("data");
        str_index = PyUnicode_InternFromString("index");
        str_maxindex = PyUnicode_InternFromString("maxindex");
        int_zero = PyLong_FromLong(0);
        int_one = PyLong_FromLong(1);
        if (!str_data || !str_index || !str_maxindex || !int_zero || !int_one)
            return -1;
    }
    values_type.tp_new = PyBaseObject_Type.tp_new;
    if (PyType_Ready(&values_type) != 0 || PyType_Ready(&map_values_type) != 0)
        return -1;
    if (PyModule_AddFunctions(module, values_methods) != 0)
        return -1;
    Py_INCREF(&values_type);
    if (PyModule_AddObject(module, "ResultIterableBase", (PyObject *)&values_type) != 0) {
        Py_DECREF(&values_type);
        return -1;
    }
    return 0;
}
