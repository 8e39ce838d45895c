/* _ember_fast.PairGroups: groupByKey's reduce-side grouping, keyed on the
 * key's bytes.
 *
 * ExternalGroupBy.mergeValues appends each record's value to data[key]. With
 * PageRank's links that is 10M records into 2M groups, and each record cost a
 * hash of a fresh str, two or three cache misses in the dict (index, entry,
 * the stored key's bytes) and a list append that reallocates as the list
 * grows. Here records whose key is an exact str or bytes are grouped in a
 * table keyed on (type, bytes), which for exactly those types is the key's
 * equality; a batch's slots are prefetched before it is looked up. Values are
 * kept in record order with the key's index, and the lists are made at their
 * final size only when the groups go into the dict (flush): one list per key
 * in first-seen order, its values in record order, the key object the first
 * record's, which is what the dict loop builds; a value that is an exact str
 * may be an equal exact str of an earlier record instead of its own object
 * (pyexec_str_table.c: one object per equal value, so later dicts of them
 * match by identity).
 *
 * add() is _ember_fast.group(data, iterator, False, n) with the same result
 * tuple. The table is used only while data is empty; the first record that is
 * not an exact 2-tuple with such a key moves the groups into data (flush) and
 * that record and the rest go through group()'s own loop, with its errors.
 * The caller flushes before it reads data (a spill, the end): flush() with no
 * argument returns a new dict of the groups (made at its final size, so no
 * second dict exists at once), flush(data) fills data, which must be empty
 * while the table holds groups (else they would replace data's lists).
 *
 * Memory: add() returns a 7th item, the bytes the table's own arrays hold,
 * which the caller counts with its estimate of the groups. A flush frees the
 * per-record arrays as soon as the values are placed and the per-key arrays
 * at its end, so nothing of the table outlives it (spills, later rounds). */
#include "pyexec.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define KEY_INLINE 20
#define BATCH 64
#define KIND_BYTES 8            /* str kinds are 1, 2 and 4 */

/* Records one table may hold (ids are uint32_t); past it the groups go into
 * data and the rest goes through the dict loop, as group() would. A static
 * only so that a test can lower it (_set_records_cap). */
static Py_ssize_t records_cap = (Py_ssize_t)UINT32_MAX - 1;

struct key_entry {
    uint64_t hash;
    PyObject *key;              /* strong: the first record's key */
    uint32_t count;             /* values so far */
    uint32_t len;               /* bytes */
    uint32_t kind;
    char head[KEY_INLINE];
};

typedef struct {
    PyObject_HEAD
    struct key_entry *entries;  /* first-seen order */
    Py_ssize_t used, room;
    uint64_t *slots;            /* 0 empty, else the hash's high half << 32 | entry index + 1 */
    size_t mask;
    uint32_t *ids;              /* per record, in order: its key's entry index */
    PyObject **values;          /* per record: its value, or an equal exact str (strong) */
    Py_ssize_t records, records_room;
    struct pyexec_str_table strs;   /* one object per equal str value (pyexec_str_table.c) */
} PairGroups;

#define SLOT_TAG(h) ((h) & 0xffffffff00000000u)

/* A record the table takes: its key's bytes, kind and hash. */
struct keyed {
    PyObject *record;           /* strong */
    const char *bytes;
    Py_ssize_t len;
    uint32_t kind;
    uint64_t hash;
};

/* 1 when record is (key, value) with a key whose bytes define its equality:
 * an exact str (compact, so equal strs have the same kind and data) or exact
 * bytes. Fills *out (record borrowed). */
static int keyed_record(PyObject *record, struct keyed *out)
{
    if (!PyTuple_CheckExact(record) || PyTuple_GET_SIZE(record) != 2)
        return 0;
    PyObject *key = PyTuple_GET_ITEM(record, 0);
    if (PyUnicode_CheckExact(key)) {
        if (!PyUnicode_IS_READY(key) || !PyUnicode_IS_COMPACT(key))
            return 0;
        out->kind = (uint32_t)PyUnicode_KIND(key);
        out->bytes = PyUnicode_DATA(key);
        out->len = PyUnicode_GET_LENGTH(key) * (Py_ssize_t)out->kind;
    } else if (PyBytes_CheckExact(key)) {
        out->kind = KIND_BYTES;
        out->bytes = PyBytes_AS_STRING(key);
        out->len = PyBytes_GET_SIZE(key);
    } else {
        return 0;
    }
    if (out->len > (Py_ssize_t)UINT32_MAX)
        return 0;
    out->hash = pyexec_hash_bytes(out->bytes, out->len, out->kind);
    return 1;
}

static const char *entry_bytes(const struct key_entry *e)
{
    return e->kind == KIND_BYTES ? PyBytes_AS_STRING(e->key) : PyUnicode_DATA(e->key);
}

static int same_key(const struct key_entry *e, const struct keyed *r)
{
    if (e->hash != r->hash || e->len != (uint32_t)r->len || e->kind != r->kind)
        return 0;
    if (r->len <= KEY_INLINE)
        return memcmp(e->head, r->bytes, (size_t)r->len) == 0;
    return memcmp(e->head, r->bytes, KEY_INLINE) == 0
           && memcmp(entry_bytes(e) + KEY_INLINE, r->bytes + KEY_INLINE,
                     (size_t)r->len - KEY_INLINE) == 0;
}

static int grow_slots(PairGroups *g)
{
    size_t cap = g->slots ? (g->mask + 1) * 2 : 1024;
    uint64_t *slots = calloc(cap, sizeof(*slots));
    if (!slots) {
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < g->used; i++) {
        uint64_t h = g->entries[i].hash;
        size_t s = h & (cap - 1);
        while (slots[s])
            s = (s + 1) & (cap - 1);
        slots[s] = SLOT_TAG(h) | (uint64_t)(i + 1);
    }
    free(g->slots);
    g->slots = slots;
    g->mask = cap - 1;
    return 0;
}

/* Makes room for one more record and one more key, so that adding one
 * cannot fail half way. */
static int reserve(PairGroups *g)
{
    if (g->records == g->records_room) {
        Py_ssize_t room = g->records_room ? g->records_room * 2 : 4096;
        uint32_t *ids = realloc(g->ids, (size_t)room * sizeof(*ids));
        if (ids)
            g->ids = ids;
        PyObject **values = ids ? realloc(g->values, (size_t)room * sizeof(*values)) : NULL;
        if (!values) {
            PyErr_NoMemory();
            return -1;
        }
        g->values = values;
        g->records_room = room;
    }
    if (g->used == g->room) {
        Py_ssize_t room = g->room ? g->room * 2 : 1024;
        struct key_entry *entries = realloc(g->entries, (size_t)room * sizeof(*entries));
        if (!entries) {
            PyErr_NoMemory();
            return -1;
        }
        g->entries = entries;
        g->room = room;
    }
    if (!g->slots || (size_t)(g->used + 1) * 2 > g->mask + 1)
        return grow_slots(g);
    return 0;
}

/* Adds r's value under its key; *new_key is set for a key not seen before.
 * Takes nothing from r (the value, or the str table's equal str, gets a new
 * reference). */
static int add_keyed(PairGroups *g, const struct keyed *r, int *new_key)
{
    if (reserve(g) != 0)
        return -1;
    size_t s = r->hash & g->mask;
    struct key_entry *e = NULL;
    for (;;) {
        uint64_t slot = g->slots[s];
        if (!slot)
            break;
        if (SLOT_TAG(slot) == SLOT_TAG(r->hash)) {
            struct key_entry *known = &g->entries[(slot & 0xffffffffu) - 1];
            if (same_key(known, r)) {
                e = known;
                break;
            }
        }
        s = (s + 1) & g->mask;
    }
    if (!e) {
        e = &g->entries[g->used];
        e->hash = r->hash;
        e->key = Py_NewRef(PyTuple_GET_ITEM(r->record, 0));
        e->count = 0;
        e->len = (uint32_t)r->len;
        e->kind = r->kind;
        memcpy(e->head, r->bytes, (size_t)(r->len < KEY_INLINE ? r->len : KEY_INLINE));
        g->slots[s] = SLOT_TAG(r->hash) | (uint64_t)(++g->used);
        *new_key = 1;
    }
    e->count++;
    g->ids[g->records] = (uint32_t)(e - g->entries);
    g->values[g->records++] = pyexec_str_table_canon(&g->strs, PyTuple_GET_ITEM(r->record, 1));
    return 0;
}

static void free_records(PairGroups *g)
{
    free(g->ids);
    free(g->values);
    g->ids = NULL;
    g->values = NULL;
    g->records = g->records_room = 0;
}

/* Drops every reference and frees every array: an empty table holds nothing. */
static void clear_table(PairGroups *g)
{
    for (Py_ssize_t i = 0; i < g->records; i++)
        Py_DECREF(g->values[i]);
    for (Py_ssize_t i = 0; i < g->used; i++)
        Py_DECREF(g->entries[i].key);
    free_records(g);
    pyexec_str_table_clear(&g->strs);
    free(g->entries);
    free(g->slots);
    g->entries = NULL;
    g->slots = NULL;
    g->used = g->room = 0;
    g->mask = 0;
}

/* Bytes the table's arrays hold now (what the caller counts beside its
 * estimate of the groups themselves). */
static Py_ssize_t table_bytes(const PairGroups *g)
{
    return g->records_room * (Py_ssize_t)(sizeof(*g->ids) + sizeof(*g->values))
           + g->room * (Py_ssize_t)sizeof(*g->entries)
           + (g->slots ? (Py_ssize_t)(g->mask + 1) * (Py_ssize_t)sizeof(*g->slots) : 0)
           + pyexec_str_table_bytes(&g->strs);
}

/* The lists of every key (new references in lists[]), filled in record
 * order; the values' references move into them and the per-record arrays
 * are freed. Each list is made empty with room for its values, and the sizes
 * are set once every value is in place: a collection (PyList_New may run
 * one) only ever sees lists of 0 items, never one of NULL slots. */
static int make_lists(PairGroups *g, PyObject **lists)
{
    PyObject ***next = PyMem_Malloc((size_t)g->used * sizeof(*next));
    if (!next) {
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < g->used; i++) {
        PyObject *list = PyList_New(0);
        PyObject **items = list ? PyMem_Malloc((size_t)g->entries[i].count * sizeof(*items)) : NULL;
        if (!items) {
            if (list)
                PyErr_NoMemory();
            Py_XDECREF(list);
            while (i--)
                Py_DECREF(lists[i]);
            PyMem_Free(next);
            return -1;
        }
        ((PyListObject *)list)->ob_item = items;
        ((PyListObject *)list)->allocated = g->entries[i].count;
        lists[i] = list;
        next[i] = items;
    }
    for (Py_ssize_t r = 0; r < g->records; r++) {
        if (r + 16 < g->records)
            __builtin_prefetch(next[g->ids[r + 16]], 1);
        *next[g->ids[r]]++ = g->values[r];
    }
    for (Py_ssize_t i = 0; i < g->used; i++)
        Py_SET_SIZE(lists[i], g->entries[i].count);
    g->records = 0;                 /* the references are the lists' now */
    free_records(g);
    PyMem_Free(next);
    return 0;
}

/* Moves the groups into dict (empty: the caller sees to it), keys in
 * first-seen order, and empties the table, freeing each array as soon as
 * it is no longer needed. */
static int flush_into(PairGroups *g, PyObject *dict)
{
    if (!g->used)
        return 0;
    free(g->slots);                 /* only lookups use them */
    g->slots = NULL;
    g->mask = 0;
    PyObject **lists = PyMem_Malloc((size_t)g->used * sizeof(*lists));
    int rc = lists ? make_lists(g, lists) : (PyErr_NoMemory(), -1);
    if (rc == 0) {
        for (Py_ssize_t i = 0; i < g->used; i++) {
            if (i + 8 < g->used)
                __builtin_prefetch(g->entries[i + 8].key);   /* its hash is read next */
            if (rc == 0)
                rc = PyDict_SetItem(dict, g->entries[i].key, lists[i]);
            Py_DECREF(lists[i]);
        }
    }
    PyMem_Free(lists);
    clear_table(g);
    return rc;
}

/* The result tuple of _ember_fast.group. */
struct tally {
    Py_ssize_t consumed, new_keys, added;
    PyObject *sample_key, *sample_value;    /* strong */
};

static void sample(struct tally *t, PyObject *k, PyObject *v)
{
    Py_SETREF(t->sample_key, Py_NewRef(k));
    Py_SETREF(t->sample_value, Py_NewRef(v));
}

/* Groups batch[0..n) in the table, prefetching their slots first; the
 * records' references are dropped whatever happens. */
static int add_batch(PairGroups *g, struct keyed *batch, int n, struct tally *t)
{
    int rc = 0;
    /* read_batch asked for each record's first slot; now that they are in,
     * ask for the entries they name (a hint only: the lookup starts afresh). */
    for (int i = 0; g->slots && i < n; i++) {
        uint64_t slot = g->slots[batch[i].hash & g->mask];
        if (slot)
            __builtin_prefetch(&g->entries[(slot & 0xffffffffu) - 1]);
    }
    for (int i = 0; i < n; i++) {
        if (rc == 0) {
            int new_key = 0;
            rc = add_keyed(g, &batch[i], &new_key);
            if (rc == 0) {
                t->new_keys += new_key;
                t->added++;
                sample(t, PyTuple_GET_ITEM(batch[i].record, 0),
                       PyTuple_GET_ITEM(batch[i].record, 1));
            }
        }
        Py_DECREF(batch[i].record);
    }
    return rc;
}

/* group()'s step for one record in the dict. Takes record's reference. */
static int add_to_dict(PyObject *data, PyObject *record, struct tally *t)
{
    PyObject *k, *v;
    int rc = pyexec_unpack_pair(record, &k, &v);
    Py_DECREF(record);
    if (rc != 0)
        return -1;
    int new_key = 0;
    Py_ssize_t n = pyexec_group_append(data, k, v, &new_key);
    if (n > 0) {
        sample(t, k, v);
        t->new_keys += new_key;
        t->added += n;
    }
    Py_DECREF(k);
    Py_DECREF(v);
    return n < 0 ? -1 : 0;
}

/* Reads up to `want` records: those the table takes into batch (as long as
 * it may take them), stopping after the first it may not (*other). Returns
 * the batch's length; *ended 1 at the end, -1 when the iterator raised. */
static int read_batch(PairGroups *g, PyObject *iterator, int use_table, int want,
                      struct keyed *batch, PyObject **other, int *ended)
{
    int n = 0;
    while (n < want) {
        PyObject *record = PyIter_Next(iterator);
        if (!record) {
            *ended = PyErr_Occurred() ? -1 : 1;
            break;
        }
        if (!use_table || !keyed_record(record, &batch[n])) {
            *other = record;
            break;
        }
        batch[n].record = record;
        if (g->slots)
            __builtin_prefetch(&g->slots[batch[n].hash & g->mask]);
        n++;
    }
    return n;
}

static PyObject *pg_add(PairGroups *g, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3 || !PyDict_CheckExact(args[0]) || !PyIter_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "add(data: dict, iterator, max_records)");
        return NULL;
    }
    PyObject *data = args[0], *iterator = args[1];
    Py_ssize_t max_records = PyLong_AsSsize_t(args[2]);
    if (max_records == -1 && PyErr_Occurred())
        return NULL;
    if (g->used > 0 && PyDict_GET_SIZE(data) > 0) {
        PyErr_SetString(PyExc_RuntimeError, "PairGroups.add: flush before adding to the dict");
        return NULL;
    }
    struct tally t = {0, 0, 0, Py_NewRef(Py_None), Py_NewRef(Py_None)};
    int use_table = g->used > 0 || PyDict_GET_SIZE(data) == 0;
    int ended = 0, rc = 0;
    struct keyed batch[BATCH];
    while (rc == 0 && !ended && t.consumed < max_records) {
        if (use_table && g->records > records_cap - BATCH) {
            /* Full (see records_cap): data is empty while the table is used. */
            rc = flush_into(g, data);
            use_table = 0;
            if (rc != 0)
                break;
        }
        Py_ssize_t want = max_records - t.consumed;
        PyObject *other = NULL;
        int n = read_batch(g, iterator, use_table, want < BATCH ? (int)want : BATCH, batch,
                           &other, &ended);
        t.consumed += n + (other != NULL);
        PyObject *type, *value, *traceback;
        PyErr_Fetch(&type, &value, &traceback);     /* the iterator's error comes after */
        rc = add_batch(g, batch, n, &t);
        if (rc != 0 && other)
            Py_DECREF(other);
        else if (other) {
            if (use_table && flush_into(g, data) != 0) {
                Py_DECREF(other);
                rc = -1;
            } else {
                use_table = 0;
                rc = add_to_dict(data, other, &t);
            }
        }
        if (rc == 0)
            PyErr_Restore(type, value, traceback);
        else {
            Py_XDECREF(type);
            Py_XDECREF(value);
            Py_XDECREF(traceback);
        }
    }
    PyObject *result = NULL;
    if (rc == 0 && ended >= 0)
        result = Py_BuildValue("(nOnnOOn)", t.consumed, ended ? Py_True : Py_False, t.new_keys,
                               t.added, t.sample_key, t.sample_value, table_bytes(g));
    Py_DECREF(t.sample_key);
    Py_DECREF(t.sample_value);
    return result;
}

static PyObject *pg_flush(PairGroups *g, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs > 1 || (nargs == 1 && !PyDict_CheckExact(args[0]))) {
        PyErr_SetString(PyExc_TypeError, "flush([data: dict])");
        return NULL;
    }
    if (nargs == 0) {
        /* A new dict at its final size: cheaper than growing one, and no
         * second dict to copy from. */
        PyObject *groups = _PyDict_NewPresized(g->used);
        if (groups && flush_into(g, groups) != 0)
            Py_CLEAR(groups);
        return groups;
    }
    PyObject *data = args[0];
    if (g->used > 0 && PyDict_GET_SIZE(data) > 0) {
        PyErr_SetString(PyExc_RuntimeError,
                        "PairGroups.flush: data must be empty while the table holds groups");
        return NULL;
    }
    if (flush_into(g, data) != 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *pg_set_records_cap(PyObject *cls, PyObject *arg)
{
    (void)cls;
    Py_ssize_t cap = PyLong_AsSsize_t(arg);
    if (cap == -1 && PyErr_Occurred())
        return NULL;
    if (cap < BATCH || cap > (Py_ssize_t)UINT32_MAX - 1) {
        PyErr_SetString(PyExc_ValueError, "records cap out of range");
        return NULL;
    }
    Py_ssize_t old = records_cap;
    records_cap = cap;
    return PyLong_FromSsize_t(old);
}

static Py_ssize_t pg_len(PairGroups *g)
{
    return g->used;
}

static void pg_dealloc(PairGroups *g)
{
    clear_table(g);
    Py_TYPE(g)->tp_free((PyObject *)g);
}

static PyObject *pg_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    if (PyTuple_GET_SIZE(args) || (kwargs && PyDict_GET_SIZE(kwargs))) {
        PyErr_SetString(PyExc_TypeError, "PairGroups() takes no arguments");
        return NULL;
    }
    return type->tp_alloc(type, 0);     /* zeroed: an empty table */
}

static PyMethodDef pg_methods[] = {
    {"add", (PyCFunction)(void (*)(void))pg_add, METH_FASTCALL,
     "add(data, iterator, max_records) -> group(data, iterator, False, max_records)'s tuple"},
    {"flush", (PyCFunction)(void (*)(void))pg_flush, METH_FASTCALL,
     "flush() -> a new dict of the groups; flush(data): moves them into data (empty)"},
    {"_set_records_cap", (PyCFunction)pg_set_records_cap, METH_O | METH_STATIC,
     "tests only: sets the records one table holds, returns the old cap"},
    {NULL, NULL, 0, NULL},
};

static PySequenceMethods pg_as_sequence = {.sq_length = (lenfunc)pg_len};

static PyTypeObject pair_groups_type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "_ember_fast.PairGroups",
    .tp_basicsize = sizeof(PairGroups),
    .tp_dealloc = (destructor)pg_dealloc,
    .tp_as_sequence = &pg_as_sequence,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "PairGroups(): groupByKey's reduce side keyed on str and bytes keys' bytes.",
    .tp_methods = pg_methods,
    .tp_new = pg_new,
};

int pyexec_groups_add(PyObject *module)
{
    if (PyType_Ready(&pair_groups_type) != 0)
        return -1;
    Py_INCREF(&pair_groups_type);
    if (PyModule_AddObject(module, "PairGroups", (PyObject *)&pair_groups_type) != 0) {
        Py_DECREF(&pair_groups_type);
        return -1;
    }
    return 0;
}
