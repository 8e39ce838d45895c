/* ember-pyexec's pieces: process set-up (dying with the worker, keeping fd 1
 * for frames), the embedded interpreter, and the _ember_io module through
 * which ember/worker_runtime.py reads and writes frames. */
#ifndef EMBER_PYEXEC_H
#define EMBER_PYEXEC_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>  /* must come before any system header */

#include <stdint.h>
#include <string.h>

/* Dies with the spawning worker thread; EMBER_EDEAD if it is already gone. */
int pyexec_guard_parent(void);
/* Moves the frame channel off fd 1 (to *out_fd) and points fd 1 at stderr, so
 * print() in user code never corrupts the protocol. */
int pyexec_claim_stdout(int *out_fd);
/* Registers _ember_io and starts an isolated interpreter with hash seed 0. */
int pyexec_interp_start(const char *argv0);
/* Runs ember.worker_runtime.main(); 0 when the worker closed the pipe. */
int pyexec_run(int in_fd, int out_fd);
/* Finalises the interpreter; returns the process exit code. */
int pyexec_interp_stop(int rc);

/* For pyexec_io.c: the module's init function and the fds it uses. */
void pyexec_io_set_fds(int in_fd, int out_fd);
PyObject *pyexec_io_init(void);

/* pyexec_arenas.c: keeps freed pymalloc arenas for reuse (EMBER_PYEXEC_ARENA_POOL);
 * install before the interpreter starts. EMBER_EINVAL for a malformed size. */
int pyexec_arenas_install(void);
void pyexec_arenas_release(void);
void pyexec_arenas_stats(size_t *held, unsigned long long *reused, size_t *limit);
/* "512m", "1g", "65536": bytes; -1 when malformed. */
long long pyexec_parse_bytes(const char *text);

/* pyexec_heap.c: keeps glibc's freed heap memory for reuse (EMBER_PYEXEC_HEAP_KEEP):
 * M_MMAP_THRESHOLD = min(keep/2, 32 MiB), M_TRIM_THRESHOLD = keep (the free top
 * of the heap stays under it: after a free of 64 KiB or more that leaves more,
 * glibc cuts the top down to M_TOP_PAD), M_TOP_PAD = keep/2. Install before the
 * interpreter starts. EMBER_EINVAL for a malformed size. */
int pyexec_heap_install(void);
/* Bounds the keep by a quarter of a task's memory budget (bytes; 0: none); the keep in force. */
size_t pyexec_heap_budget(size_t budget);
void pyexec_heap_release(void);
void pyexec_heap_stats(size_t *free_bytes, size_t *limit);

/* pyexec_fast.c: _ember_fast, the shuffle's per-record loops in C. */
PyObject *pyexec_fast_init(void);
/* From pyexec_fast.c for pyexec_groups.c: `k, v = record` with Python's errors (new
 * references), and group()'s append of v to data[k] (1 or -1; *new_key set for a new key). */
int pyexec_unpack_pair(PyObject *record, PyObject **k, PyObject **v);
Py_ssize_t pyexec_group_append(PyObject *data, PyObject *k, PyObject *v, int *new_key);
/* A hash of a str's or bytes' data (kind 1, 2 or 4 bytes per character, 1
 * for bytes) that PairGroups' key table and the str table share. */
static inline uint64_t pyexec_hash_bytes(const char *p, Py_ssize_t n, uint32_t kind)
{
    uint64_t h = 0x9e3779b97f4a7c15u ^ (uint64_t)n ^ ((uint64_t)kind << 56);
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = (h ^ w) * 0xff51afd7ed558ccdu;
        h ^= h >> 32;
        p += 8;
        n -= 8;
    }
    uint64_t w = 0;
    memcpy(&w, p, (size_t)n);
    h = (h ^ w) * 0xc4ceb9fe1a85ec53u;
    h ^= h >> 29;
    h *= 0x9e3779b97f4a7c15u;
    return h ^ (h >> 32);
}
/* pyexec_str_table.c: hands out one str object per distinct exact str value
 * (PairGroups' values), so that equal values are one object; zeroed = empty. */
struct pyexec_str_table {
    struct pyexec_str_entry *entries;
    Py_ssize_t used, room;
    uint32_t *slots;            /* 0 empty, else entry index + 1 */
    size_t mask;
    Py_ssize_t seen, repeats;
    int off;                    /* values rarely repeat, or out of memory */
};
/* A new reference: an equal exact str the table already holds, else value
 * itself (kept for the next equal one when it is an exact compact str).
 * Never fails and never sets an exception: a failed allocation turns the
 * table off, since sharing is only an optimisation. */
PyObject *pyexec_str_table_canon(struct pyexec_str_table *t, PyObject *value);
void pyexec_str_table_clear(struct pyexec_str_table *t);
Py_ssize_t pyexec_str_table_bytes(const struct pyexec_str_table *t);
/* pyexec_groups.c: adds PairGroups (groupByKey's reduce side keyed on the key's bytes). */
int pyexec_groups_add(PyObject *module);
/* pyexec_words.c: adds _ember_fast.WordCounts (word count's map side) to module. */
int pyexec_words_add(PyObject *module);
/* pyexec_records.c: adds dump_records/load_records (shuffle frames without pickle). */
int pyexec_records_add(PyObject *module);
/* pyexec_lines.c: adds split_lines (text frames to tuples of fields). */
int pyexec_lines_add(PyObject *module);
/* pyexec_split_pairs.c: adds SplitPairsWriter (distinct's map side of split text lines). */
int pyexec_split_pairs_add(PyObject *module);

/* pyexec_values.c: adds ResultIterableBase, map_values and count (per-key steps of
 * groupByKey's values, mapValues and count). */
int pyexec_values_add(PyObject *module);
/* pyexec_merge.c: adds merge_float_frame (reduceByKey(add)'s reduce side from record frames). */
int pyexec_merge_add(PyObject *module);

/* A record frame (pyexec_records.c) starts with these two bytes. */
#define RECORDS_MAGIC 0xE5
#define RECORDS_VERSION 0x01

/* Text frames (split_lines, SplitPairsWriter): 1 when no byte is past ASCII. */
static inline int pyexec_text_is_ascii(const char *buf, Py_ssize_t len)
{
    unsigned char any = 0;
    for (Py_ssize_t i = 0; i < len; i++)
        any |= (unsigned char)buf[i];
    return !(any & 0x80);
}

/* The next line of a text frame from *at: 1 with its start and length (no
 * \n, nor a \r before it), or 0 when none is left. As "".split("\n") is
 * [""], an empty frame is one empty line, and no line follows a final \n. */
static inline int pyexec_next_line(const char *buf, Py_ssize_t len, Py_ssize_t *at,
                                   Py_ssize_t *start, Py_ssize_t *line_len)
{
    Py_ssize_t begin = *at;
    if (begin >= len && !(begin == 0 && len == 0))
        return 0;
    const char *nl = memchr(buf + begin, '\n', (size_t)(len - begin));
    Py_ssize_t end = nl ? nl - buf : len;
    *at = end + 1;
    if (end > begin && buf[end - 1] == '\r')
        end--;
    *start = begin;
    *line_len = end - begin;
    return 1;
}

/* pyexec_sort.c: adds sort_by_int_key and set_range_partitioner (sortByKey). */
int pyexec_sort_add(PyObject *module);
/* A registered ember.shuffle.RangePartitioner's fields, read once per call of
 * _ember_fast.partition. */
struct pyexec_range {
    PyObject *bounds;                  /* a tuple */
    PyObject *keyfunc;                 /* NULL: the key itself */
    long long *int_bounds;             /* the bounds when all are ints in 64 bits, else NULL */
    int ascending;
    Py_ssize_t num_partitions;
};
/* True when partitioner is exactly the registered RangePartitioner class. */
int pyexec_is_range_partitioner(PyObject *partitioner);
/* Reads its fields: 0, 1 when they are not what RangePartitioner makes (call
 * it from Python then), -1 with an exception set. */
int pyexec_range_load(PyObject *partitioner, struct pyexec_range *out);
void pyexec_range_clear(struct pyexec_range *range);
/* Its __call__(key) in C: the partition, or -1 with an exception set. */
Py_ssize_t pyexec_range_partition(const struct pyexec_range *range, PyObject *key);

#endif
