/* Broadcast values: fetched from their source block manager into ours once
 * per host, sent to each pyexec once (it keeps the unpickled value). */
#include "worker.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"

static int slot_has(const struct pyexec_slot *slot, uint64_t id)
{
    for (size_t i = 0; i < slot->n_broadcasts; i++)
        if (slot->broadcasts[i] == id)
            return 1;
    return 0;
}

/* Our block manager's copy, fetched from the source the first time. */
static int local_copy(struct worker *w, const Ember__BroadcastRef *ref, struct ember_buf *value,
                      char **error)
{
    char *ignored = NULL;

    if (worker_fetch_block_to_buf(w, w->block_addr, ref->block_id, value, &ignored) == 0)
        return 0;
    free(ignored);
    value->len = 0;
    if (worker_fetch_block_to_buf(w, ref->location, ref->block_id, value, error) != 0)
        return EMBER_ERPC;
    if (worker_store_block(w, w->block_addr, ref->block_id, EMBER__BLOCK_STORAGE__PINNED, value,
                           1, &ignored) != 0) {
        ember_log_warn("broadcast=%llu not kept locally: %s", (unsigned long long)ref->id,
                       ignored);
        free(ignored);
    }
    ember_log_debug("broadcast=%llu fetched from %s, %zu bytes", (unsigned long long)ref->id,
                    ref->location, value->len);
    return 0;
}

int worker_broadcasts_to_load(struct worker *w, const Ember__TaskSpec *spec,
                              const struct pyexec_slot *slot, struct broadcast_load **out,
                              size_t *n, char **error)
{
    struct broadcast_load *loads = ember_xcalloc(spec->n_broadcasts + 1, sizeof(*loads));
    size_t count = 0;

    for (size_t i = 0; i < spec->n_broadcasts; i++) {
        const Ember__BroadcastRef *ref = spec->broadcasts[i];
        if (slot_has(slot, ref->id))
            continue;
        loads[count].id = ref->id;
        ember_buf_init(&loads[count].value, 0);
        count++;
        /* One fetch per host: tasks wanting the same value wait for the first. */
        pthread_mutex_lock(&w->broadcast_lock);
        int rc = local_copy(w, ref, &loads[count - 1].value, error);
        pthread_mutex_unlock(&w->broadcast_lock);
        if (rc != 0) {
            worker_broadcast_loads_free(loads, count);
            return rc;
        }
    }
    *out = loads;
    *n = count;
    return 0;
}

void worker_broadcasts_loaded(struct pyexec_slot *slot, const struct broadcast_load *loads,
                              size_t n)
{
    slot->broadcasts =
        ember_xrealloc(slot->broadcasts, (slot->n_broadcasts + n + 1) * sizeof(uint64_t));
    for (size_t i = 0; i < n; i++)
        slot->broadcasts[slot->n_broadcasts++] = loads[i].id;
}

void worker_broadcast_loads_free(struct broadcast_load *loads, size_t n)
{
    for (size_t i = 0; i < n; i++)
        ember_buf_free(&loads[i].value);
    free(loads);
}
