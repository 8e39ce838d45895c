/* One str object per distinct value among the values PairGroups keeps.
 *
 * PageRank's links are 10M urls in lists, and each occurrence was its own
 * str, decoded from the shuffle. Every later iteration then looks each of
 * them up in the map side's combine dict (url -> contribution): the dict's
 * key is the first occurrence, the probe another object, so each lookup
 * read the stored key's hash and bytes, a cache miss a third of the
 * iteration's samples waited on. With one object per url in a partition the
 * dict matches by identity, and the cached partition holds ~600k strs
 * instead of 2.5M.
 *
 * Equal exact strs are interchangeable (immutable, compared by value), so
 * handing the first one out instead of an equal one changes only id() and
 * `is`, which CPython itself never promises for equal strs. Only exact,
 * compact strs are shared (a subclass could carry state); anything else is
 * returned as it is. The table holds a reference to each str it hands out.
 *
 * Values that rarely repeat would only pay for the table: from the SAMPLE-th
 * str on, a new value finds the table off when fewer than a quarter of the
 * strs so far were repeats; it empties and stays off until it is cleared
 * (PairGroups' flush). The rate is counted from an empty table, so values
 * spread evenly over many more distinct ones than SAMPLE (each repeating a
 * few times, late) turn it off too: they keep their own objects, as before
 * the table. A failed allocation also turns it off (sharing is an
 * optimisation: it never makes an error). */
#include "pyexec.h"

#include <stdint.h>
#include <stdlib.h>

#define HEAD 16
#define SAMPLE 20000

struct pyexec_str_entry {
    uint64_t hash;
    PyObject *str;              /* strong */
    uint32_t len;               /* bytes */
    uint32_t kind;
    char head[HEAD];
};

static void drop_entries(struct pyexec_str_table *t)
{
    for (Py_ssize_t i = 0; i < t->used; i++)
        Py_DECREF(t->entries[i].str);
    free(t->entries);
    free(t->slots);
    t->entries = NULL;
    t->slots = NULL;
    t->used = t->room = 0;
    t->mask = 0;
}

void pyexec_str_table_clear(struct pyexec_str_table *t)
{
    drop_entries(t);
    t->seen = t->repeats = 0;
    t->off = 0;
}

static void turn_off(struct pyexec_str_table *t)
{
    drop_entries(t);
    t->off = 1;
}

/* Room for one more entry at a load of at most one half; 0 when there is none. */
static int reserve(struct pyexec_str_table *t)
{
    if (t->used == t->room) {
        Py_ssize_t room = t->room ? t->room * 2 : 1024;
        struct pyexec_str_entry *entries = realloc(t->entries, (size_t)room * sizeof(*entries));
        if (!entries)
            return 0;
        t->entries = entries;
        t->room = room;
    }
    if (t->slots && (size_t)(t->used + 1) * 2 <= t->mask + 1)
        return 1;
    size_t cap = t->slots ? (t->mask + 1) * 2 : 2048;
    uint32_t *slots = calloc(cap, sizeof(*slots));
    if (!slots)
        return 0;
    for (Py_ssize_t i = 0; i < t->used; i++) {
        size_t s = t->entries[i].hash & (cap - 1);
        while (slots[s])
            s = (s + 1) & (cap - 1);
        slots[s] = (uint32_t)(i + 1);
    }
    free(t->slots);
    t->slots = slots;
    t->mask = cap - 1;
    return 1;
}

static int same(const struct pyexec_str_entry *e, uint64_t hash, const char *bytes, Py_ssize_t len,
                uint32_t kind)
{
    if (e->hash != hash || e->len != (uint32_t)len || e->kind != kind)
        return 0;
    if (len <= HEAD)
        return memcmp(e->head, bytes, (size_t)len) == 0;
    return memcmp(e->head, bytes, HEAD) == 0
           && memcmp((const char *)PyUnicode_DATA(e->str) + HEAD, bytes + HEAD,
                     (size_t)len - HEAD) == 0;
}

PyObject *pyexec_str_table_canon(struct pyexec_str_table *t, PyObject *value)
{
    if (t->off || !PyUnicode_CheckExact(value) || !PyUnicode_IS_READY(value)
        || !PyUnicode_IS_COMPACT(value))
        return Py_NewRef(value);
    uint32_t kind = (uint32_t)PyUnicode_KIND(value);
    const char *bytes = PyUnicode_DATA(value);
    Py_ssize_t len = PyUnicode_GET_LENGTH(value) * (Py_ssize_t)kind;
    if (len > (Py_ssize_t)UINT32_MAX)   /* past an entry's length field: this one unshared */
        return Py_NewRef(value);
    if (t->used >= (Py_ssize_t)UINT32_MAX - 1 || !reserve(t)) {
        turn_off(t);
        return Py_NewRef(value);
    }
    uint64_t hash = pyexec_hash_bytes(bytes, len, kind);
    size_t s = hash & t->mask;
    t->seen++;
    for (uint32_t slot; (slot = t->slots[s]) != 0; s = (s + 1) & t->mask) {
        struct pyexec_str_entry *e = &t->entries[slot - 1];
        if (same(e, hash, bytes, len, kind)) {
            t->repeats++;
            return Py_NewRef(e->str);
        }
    }
    if (t->seen >= SAMPLE && t->repeats * 4 < t->seen) {
        turn_off(t);
        return Py_NewRef(value);
    }
    struct pyexec_str_entry *e = &t->entries[t->used];
    e->hash = hash;
    e->str = Py_NewRef(value);
    e->len = (uint32_t)len;
    e->kind = kind;
    memcpy(e->head, bytes, (size_t)(len < HEAD ? len : HEAD));
    t->slots[s] = (uint32_t)(++t->used);
    return Py_NewRef(value);
}

Py_ssize_t pyexec_str_table_bytes(const struct pyexec_str_table *t)
{
    return t->room * (Py_ssize_t)sizeof(*t->entries)
           + (t->slots ? (Py_ssize_t)(t->mask + 1) * (Py_ssize_t)sizeof(*t->slots) : 0);
}
