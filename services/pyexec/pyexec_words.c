/* _ember_fast.WordCounts: word count's map side in C, straight from text frames.
 *
 * textFile -> flatMap(lambda l: l.split()) -> map(lambda w: (w, c)) ->
 * reduceByKey(add) makes, per word, a str, a list per line, a tuple per word
 * and a dict update with an int addition. ember/fused_text.py recognises that
 * chain and counts here instead: ASCII frames are split on bytes (str.split's
 * ASCII whitespace, or lines then a one-character separator as
 * _text_lines + str.split(sep) do), words are counted in a table keyed by their
 * bytes, and a word's str is made once, when it is first seen. A frame with
 * other bytes is split by Python and its words are counted here (feed_words).
 *
 * The table stands for the dict the Python loop would build: `keys` holds the
 * same keys in the same order (values None, so sys.getsizeof agrees), items()
 * and sample() give (word, c * count) with the value c itself for a word seen
 * once, as `data[k] = v` then `data[k] + v` give. count() stops after a given
 * number of words so that the caller makes its memory checks where the Python
 * loop makes them. Fails only with MemoryError (or TypeError on bad arguments). */
#include "pyexec.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* A counted word, in first-seen order. Its first WORD_INLINE bytes are kept
 * here so that most comparisons stay in this cache line. */
#define WORD_INLINE 12
struct word {
    uint64_t count;
    PyObject *key;          /* strong: the word's str */
    uint32_t len;
    char head[WORD_INLINE];
};

/* Words split off ahead of counting: their slots, then their entries, are
 * prefetched meanwhile. */
#define AHEAD 16
struct pending {
    const char *bytes;
    Py_ssize_t len;
    uint64_t hash;
    PyObject *key;          /* borrowed from the fed list, or NULL */
};

typedef struct {
    PyObject_HEAD
    PyObject *keys;         /* dict: the words in first-seen order, values None */
    PyObject *constant;     /* the c of (w, c), an int */
    int sep;                /* -1: whitespace (str.split()); else the separator byte */
    struct word *words;     /* first-seen order */
    Py_ssize_t used, room;
    uint64_t *slots;        /* 0 empty, else the hash's high half << 32 | index into words + 1 */
    size_t mask;
    struct pending ahead[AHEAD];
    int ahead_first, ahead_count;
    /* what count() reads next: a frame's bytes, or a list of str words */
    PyObject *source;
    const char *buf;
    Py_ssize_t len, pos;
    Py_ssize_t line_end, next_line;   /* separator mode: the current line */
    int in_line;
} WordCounts;

/* ASCII whitespace for str.split(): \t \n \v \f \r, \x1c-\x1f and space. */
static unsigned char is_space[256];

static uint64_t hash_bytes(const char *p, Py_ssize_t n)
{
    uint64_t h = 0xcbf29ce484222325u ^ (uint64_t)n;       /* FNV-1a, then a final mix */
    for (Py_ssize_t i = 0; i < n; i++) {
        h ^= (unsigned char)p[i];
        h *= 0x100000001b3u;
    }
    h ^= h >> 31;
    h *= 0x9e3779b97f4a7c15u;
    return h ^ (h >> 29);
}

/* Zeroed memory for the table's arrays; big ones in huge pages where the
 * kernel gives them on request (madvise mode): a table of a few hundred
 * thousand words is probed at random, and with 4 KiB pages nearly every
 * probe of a cold word would also miss the TLB. */
#define HUGE_PAGE ((size_t)2 << 20)
static void *table_alloc(size_t bytes)
{
    if (bytes < HUGE_PAGE) {
        void *p = calloc(1, bytes);
        if (!p)
            PyErr_NoMemory();
        return p;
    }
    size_t rounded = (bytes + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1);
    void *p = aligned_alloc(HUGE_PAGE, rounded);
    if (!p) {
        PyErr_NoMemory();
        return NULL;
    }
    (void)madvise(p, rounded, MADV_HUGEPAGE);   /* a hint: 4 KiB pages work too */
    memset(p, 0, rounded);
    return p;
}

/* The bytes of a counted word's str: its ASCII data or its cached UTF-8. */
static const char *key_bytes(PyObject *key)
{
    return PyUnicode_IS_ASCII(key) ? (const char *)PyUnicode_1BYTE_DATA(key)
                                   : PyUnicode_AsUTF8(key);   /* cached when first counted */
}

#define SLOT_TAG(h) ((h) & 0xffffffff00000000u)

static int grow(WordCounts *w)
{
    size_t cap = w->slots ? (w->mask + 1) * 2 : 1024;
    uint64_t *slots = table_alloc(cap * sizeof(*slots));
    if (!slots)
        return -1;
    for (Py_ssize_t i = 0; i < w->used; i++) {
        uint64_t h = hash_bytes(key_bytes(w->words[i].key), w->words[i].len);
        size_t s = h & (cap - 1);
        while (slots[s])
            s = (s + 1) & (cap - 1);
        slots[s] = SLOT_TAG(h) | (uint64_t)(i + 1);
    }
    free(w->slots);
    w->slots = slots;
    w->mask = cap - 1;
    return 0;
}

static int same_word(const struct word *e, const char *p, Py_ssize_t n)
{
    if (e->len != (uint64_t)n)
        return 0;
    if (n <= WORD_INLINE)
        return memcmp(e->head, p, (size_t)n) == 0;
    return memcmp(e->head, p, WORD_INLINE) == 0
           && memcmp(key_bytes(e->key) + WORD_INLINE, p + WORD_INLINE,
                     (size_t)(n - WORD_INLINE)) == 0;
}

/* Counts one word of n bytes at p with hash h. key is its str when the caller
 * has one (borrowed), else NULL and an ASCII str is made for a new word. */
static int add_word(WordCounts *w, const char *p, Py_ssize_t n, uint64_t h, PyObject *key)
{
    size_t s = h & w->mask;
    for (;;) {
        uint64_t slot = w->slots[s];
        if (!slot)
            break;
        if (SLOT_TAG(slot) == SLOT_TAG(h)) {
            struct word *e = &w->words[(slot & 0xffffffffu) - 1];
            if (same_word(e, p, n)) {
                e->count++;
                return 0;
            }
        }
        s = (s + 1) & w->mask;
    }
    if (w->used >= (Py_ssize_t)UINT32_MAX - 1 || n > (Py_ssize_t)UINT32_MAX) {
        PyErr_SetString(PyExc_MemoryError, "too many distinct words");
        return -1;
    }
    if (key) {
        Py_INCREF(key);
    } else {
        key = PyUnicode_New(n, 127);
        if (!key)
            return -1;
        memcpy(PyUnicode_1BYTE_DATA(key), p, (size_t)n);
    }
    if (PyDict_SetItem(w->keys, key, Py_None) != 0) {
        Py_DECREF(key);
        return -1;
    }
    if (w->used == w->room) {
        Py_ssize_t room = w->room ? w->room * 2 : 1024;
        struct word *words = table_alloc((size_t)room * sizeof(*words));
        if (!words) {
            Py_DECREF(key);
            return -1;
        }
        if (w->used)
            memcpy(words, w->words, (size_t)w->used * sizeof(*words));
        free(w->words);
        w->words = words;
        w->room = room;
    }
    struct word *e = &w->words[w->used];
    e->count = 1;
    e->key = key;
    e->len = (uint32_t)n;
    memcpy(e->head, p, (size_t)(n < WORD_INLINE ? n : WORD_INLINE));
    w->slots[s] = SLOT_TAG(h) | (uint64_t)(++w->used);
    if ((size_t)w->used * 2 > w->mask + 1)
        return grow(w);
    return 0;
}

static void drop_source(WordCounts *w)
{
    w->ahead_first = w->ahead_count = 0;
    Py_CLEAR(w->source);
    w->buf = NULL;
    w->len = w->pos = 0;
    w->in_line = 0;
}

static void clear_words(WordCounts *w)
{
    for (Py_ssize_t i = 0; i < w->used; i++)
        Py_DECREF(w->words[i].key);
    w->used = 0;
    if (w->slots)
        memset(w->slots, 0, (w->mask + 1) * sizeof(*w->slots));
}

/* The next word of an ASCII frame: 1 with [*start, *start + *n), 0 at its end. */
static int next_space_word(WordCounts *w, const char **start, Py_ssize_t *n)
{
    const unsigned char *b = (const unsigned char *)w->buf;
    Py_ssize_t i = w->pos, len = w->len;
    while (i < len && is_space[b[i]])
        i++;
    if (i == len) {
        w->pos = i;
        return 0;
    }
    Py_ssize_t j = i + 1;
    while (j < len && !is_space[b[j]])
        j++;
    *start = w->buf + i;
    *n = j - i;
    w->pos = j;
    return 1;
}

/* Separator mode: the frame's lines as _text_lines makes them (split at \n,
 * no piece after a final \n, one trailing \r dropped), each split at sep. */
static int next_sep_word(WordCounts *w, const char **start, Py_ssize_t *n)
{
    if (!w->in_line) {
        Py_ssize_t begin = w->pos;
        if (begin > w->len || (begin == w->len && w->len > 0 && w->buf[w->len - 1] == '\n'))
            return 0;
        const char *nl = memchr(w->buf + begin, '\n', (size_t)(w->len - begin));
        Py_ssize_t end = nl ? nl - w->buf : w->len;
        w->next_line = end + 1;
        if (end > begin && w->buf[end - 1] == '\r')
            end--;
        w->line_end = end;
        w->in_line = 1;
    }
    Py_ssize_t i = w->pos;
    const char *hit = memchr(w->buf + i, w->sep, (size_t)(w->line_end - i));
    *start = w->buf + i;
    if (hit) {
        *n = hit - *start;
        w->pos = hit - w->buf + 1;
    } else {
        *n = w->line_end - i;
        w->pos = w->next_line;
        w->in_line = 0;
    }
    return 1;
}

/* Splits off the next word of what was fed: 1, 0 at its end, -1 on error. */
static int next_word(WordCounts *w, struct pending *out)
{
    if (PyList_CheckExact(w->source)) {
        if (w->pos >= PyList_GET_SIZE(w->source))
            return 0;
        PyObject *word = PyList_GET_ITEM(w->source, w->pos);
        Py_ssize_t n;
        const char *p = PyUnicode_CheckExact(word) ? PyUnicode_AsUTF8AndSize(word, &n) : NULL;
        if (!p) {
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_TypeError, "feed_words needs a list of str");
            return -1;
        }
        w->pos++;
        *out = (struct pending){p, n, 0, word};
        return 1;
    }
    const char *p;
    Py_ssize_t n;
    int got = w->sep < 0 ? next_space_word(w, &p, &n) : next_sep_word(w, &p, &n);
    if (got)
        *out = (struct pending){p, n, 0, NULL};
    return got;
}

/* count(max_words) -> words counted from what was fed (fewer: it is used up).
 * Words are split off and hashed AHEAD of their counting, and their slot
 * prefetched, so that the table's cache misses overlap. */
static PyObject *wc_count(WordCounts *w, PyObject *arg)
{
    Py_ssize_t max_words = PyLong_AsSsize_t(arg);
    if (max_words == -1 && PyErr_Occurred())
        return NULL;
    Py_ssize_t done = 0;
    int more = w->source != NULL;
    while (done < max_words) {
        while (more && w->ahead_count < AHEAD) {
            struct pending *next = &w->ahead[(w->ahead_first + w->ahead_count) % AHEAD];
            int got = next_word(w, next);
            if (got < 0)
                return NULL;
            if (!got) {
                more = 0;
                break;
            }
            next->hash = hash_bytes(next->bytes, next->len);
            __builtin_prefetch(&w->slots[next->hash & w->mask]);
            w->ahead_count++;
        }
        if (!w->ahead_count)
            break;
        if (w->ahead_count > AHEAD / 2) {
            /* halfway: its slot has arrived, fetch the word it points to */
            const struct pending *later = &w->ahead[(w->ahead_first + AHEAD / 2) % AHEAD];
            uint64_t slot = w->slots[later->hash & w->mask];
            if (slot)
                __builtin_prefetch(&w->words[(slot & 0xffffffffu) - 1]);
        }
        struct pending *word = &w->ahead[w->ahead_first];
        if (add_word(w, word->bytes, word->len, word->hash, word->key) != 0)
            return NULL;
        w->ahead_first = (w->ahead_first + 1) % AHEAD;
        w->ahead_count--;
        done++;
    }
    return PyLong_FromSsize_t(done);
}

/* feed(frame: bytes) -> True, or False (nothing fed) when it has a non-ASCII byte. */
static PyObject *wc_feed(WordCounts *w, PyObject *frame)
{
    if (!PyBytes_CheckExact(frame)) {
        PyErr_SetString(PyExc_TypeError, "feed needs bytes");
        return NULL;
    }
    const unsigned char *b = (const unsigned char *)PyBytes_AS_STRING(frame);
    Py_ssize_t n = PyBytes_GET_SIZE(frame);
    unsigned char any = 0;
    for (Py_ssize_t i = 0; i < n; i++)
        any |= b[i];
    if (any & 0x80)
        Py_RETURN_FALSE;
    drop_source(w);
    w->source = Py_NewRef(frame);
    w->buf = PyBytes_AS_STRING(frame);
    w->len = n;
    Py_RETURN_TRUE;
}

/* feed_words(words: list of str): the words of a frame Python split. */
static PyObject *wc_feed_words(WordCounts *w, PyObject *words)
{
    if (!PyList_CheckExact(words)) {
        PyErr_SetString(PyExc_TypeError, "feed_words needs a list of str");
        return NULL;
    }
    drop_source(w);
    w->source = Py_NewRef(words);
    Py_RETURN_NONE;
}

/* The value the Python loop holds for a word seen count times: c, c + c, ... */
static PyObject *value_of(WordCounts *w, uint64_t count)
{
    if (count == 1)
        return Py_NewRef(w->constant);
    PyObject *n = PyLong_FromUnsignedLongLong(count);
    if (!n)
        return NULL;
    PyObject *v = PyNumber_Multiply(w->constant, n);
    Py_DECREF(n);
    return v;
}

static PyObject *item_of(WordCounts *w, Py_ssize_t i)
{
    PyObject *v = value_of(w, w->words[i].count);
    if (!v)
        return NULL;
    PyObject *item = PyTuple_Pack(2, w->words[i].key, v);
    Py_DECREF(v);
    return item;
}

/* items() -> [(word, value)] in first-seen order */
static PyObject *wc_items(WordCounts *w, PyObject *unused)
{
    PyObject *list = PyList_New(w->used);
    if (!list)
        return NULL;
    for (Py_ssize_t i = 0; i < w->used; i++) {
        PyObject *item = item_of(w, i);
        if (!item) {
            Py_DECREF(list);
            return NULL;
        }
        PyList_SET_ITEM(list, i, item);
    }
    return list;
}

/* sample(first, last) -> the first `first` items, then the last `last` newest first
 * (what islice(d.items(), first) and islice(reversed(d.items()), last) give). */
static PyObject *wc_sample(WordCounts *w, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "sample(first, last)");
        return NULL;
    }
    Py_ssize_t first = PyLong_AsSsize_t(args[0]), last = PyLong_AsSsize_t(args[1]);
    if ((first == -1 || last == -1) && PyErr_Occurred())
        return NULL;
    first = first < 0 ? 0 : first > w->used ? w->used : first;
    last = last < 0 ? 0 : last > w->used ? w->used : last;
    PyObject *list = PyList_New(0);
    if (!list)
        return NULL;
    for (Py_ssize_t k = 0; k < first + last; k++) {
        PyObject *item = item_of(w, k < first ? k : w->used - 1 - (k - first));
        if (!item || PyList_Append(list, item) != 0) {
            Py_XDECREF(item);
            Py_DECREF(list);
            return NULL;
        }
        Py_DECREF(item);
    }
    return list;
}

/* clear(): forgets every word (a new, empty `keys`), keeps what is fed. */
static PyObject *wc_clear(WordCounts *w, PyObject *unused)
{
    PyObject *keys = PyDict_New();
    if (!keys)
        return NULL;
    clear_words(w);
    Py_SETREF(w->keys, keys);
    Py_RETURN_NONE;
}

static Py_ssize_t wc_len(WordCounts *w)
{
    return w->used;
}

static PyObject *wc_get_keys(WordCounts *w, void *unused)
{
    return Py_NewRef(w->keys);
}

/* WordCounts(sep, constant): sep None (whitespace) or one ASCII character other
 * than \r and \n; constant an int. */
static PyObject *wc_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    PyObject *sep, *constant;
    if (!PyArg_ParseTuple(args, "OO:WordCounts", &sep, &constant))
        return NULL;
    int sep_byte = -1;
    if (sep != Py_None) {
        if (!PyUnicode_CheckExact(sep) || PyUnicode_GET_LENGTH(sep) != 1
            || PyUnicode_READ_CHAR(sep, 0) >= 128 || PyUnicode_READ_CHAR(sep, 0) == '\n'
            || PyUnicode_READ_CHAR(sep, 0) == '\r') {
            PyErr_SetString(PyExc_ValueError,
                            "sep must be None or one ASCII character other than \\r and \\n");
            return NULL;
        }
        sep_byte = (int)PyUnicode_READ_CHAR(sep, 0);
    }
    if (!PyLong_CheckExact(constant)) {
        PyErr_SetString(PyExc_TypeError, "constant must be an int");
        return NULL;
    }
    WordCounts *w = (WordCounts *)type->tp_alloc(type, 0);
    if (!w)
        return NULL;
    w->sep = sep_byte;
    w->constant = Py_NewRef(constant);
    w->keys = PyDict_New();
    if (!w->keys || grow(w) != 0) {
        Py_DECREF(w);
        return NULL;
    }
    return (PyObject *)w;
}

static void wc_dealloc(WordCounts *w)
{
    clear_words(w);
    free(w->words);
    free(w->slots);
    drop_source(w);
    Py_XDECREF(w->keys);
    Py_XDECREF(w->constant);
    Py_TYPE(w)->tp_free((PyObject *)w);
}

static PyMethodDef wc_methods[] = {
    {"feed", (PyCFunction)wc_feed, METH_O,
     "feed(frame) -> True, or False when the frame has a non-ASCII byte (not fed)"},
    {"feed_words", (PyCFunction)wc_feed_words, METH_O, "feed_words(list of str)"},
    {"count", (PyCFunction)wc_count, METH_O,
     "count(max_words) -> words counted from what was fed"},
    {"items", (PyCFunction)wc_items, METH_NOARGS, "items() -> [(word, value)], first seen first"},
    {"sample", (PyCFunction)(void (*)(void))wc_sample, METH_FASTCALL,
     "sample(first, last) -> the first items, then the last ones newest first"},
    {"clear", (PyCFunction)wc_clear, METH_NOARGS, "clear(): forget every word"},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef wc_getset[] = {
    {"keys", (getter)wc_get_keys, NULL, "dict of the words counted, first seen first", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PySequenceMethods wc_as_sequence = {.sq_length = (lenfunc)wc_len};

static PyTypeObject word_counts_type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "_ember_fast.WordCounts",
    .tp_basicsize = sizeof(WordCounts),
    .tp_dealloc = (destructor)wc_dealloc,
    .tp_as_sequence = &wc_as_sequence,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "WordCounts(sep, constant): word count's map-side combine from text frames.",
    .tp_methods = wc_methods,
    .tp_getset = wc_getset,
    .tp_new = wc_new,
};

int pyexec_words_add(PyObject *module)
{
    static const char spaces[] = "\t\n\v\f\r\x1c\x1d\x1e\x1f ";
    for (const char *c = spaces; *c; c++)
        is_space[(unsigned char)*c] = 1;
    if (PyType_Ready(&word_counts_type) != 0)
        return -1;
    Py_INCREF(&word_counts_type);
    if (PyModule_AddObject(module, "WordCounts", (PyObject *)&word_counts_type) != 0) {
        Py_DECREF(&word_counts_type);
        return -1;
    }
    return 0;
}
