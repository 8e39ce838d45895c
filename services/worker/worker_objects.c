/* Cached partitions a pyexec keeps as Python objects: which inputs of a task
 * it is served from them, and what we know of the blocks they came from.
 * The block manager stays the source of truth: objects are used only while it
 * holds the same block (id, address and generation) they were made from, so a
 * block evicted, lost, unpersisted or written again is read (or recomputed)
 * as if there were no objects. */
#define _GNU_SOURCE
#include "worker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct held_object *find_held(const struct pyexec_slot *slot, const char *block_id,
                                           const char *addr)
{
    for (size_t i = 0; i < slot->n_held; i++)
        if (strcmp(slot->held[i].block_id, block_id) == 0 && strcmp(slot->held[i].addr, addr) == 0)
            return &slot->held[i];
    return NULL;
}

int worker_objects_score(const struct pyexec_slot *slot, void *arg)
{
    const Ember__TaskSpec *spec = arg;
    int n = 0;

    for (size_t i = 0; i < spec->n_inputs; i++) {
        const Ember__TaskInput *in = spec->inputs[i];
        if (in->kind == EMBER__TASK_INPUT__KIND__CACHED && find_held(slot, in->block_id,
                                                                     in->block_addr))
            n++;
    }
    return n;
}

/* spark.ember.pyexec.objectCache set to 0 (any unit) turns the objects off. */
static int objects_off(const Ember__TaskSpec *spec)
{
    for (size_t i = 0; i < spec->n_properties; i++) {
        const char *value = spec->properties[i]->value;
        char *end;
        if (strcmp(spec->properties[i]->key, "spark.ember.pyexec.objectCache") != 0)
            continue;
        double budget = strtod(value, &end);
        return end != value && budget <= 0;
    }
    return 0;
}

void worker_objects_plan(struct worker *w, const struct pyexec_slot *slot,
                         const Ember__TaskSpec *spec, struct object_plan *plan)
{
    size_t i;
    json_t *id;
    int off = objects_off(spec);

    memset(plan, 0, sizeof(*plan));
    plan->n_inputs = spec->n_inputs;
    plan->from_objects = ember_xcalloc(spec->n_inputs + 1, 1);
    plan->generations = ember_xcalloc(spec->n_inputs + 1, sizeof(uint64_t));
    plan->object_inputs = json_object();
    plan->keep_inputs = json_object();
    plan->drop = json_array();
    for (i = 0; i < spec->n_inputs; i++) {
        const Ember__TaskInput *in = spec->inputs[i];
        const struct held_object *held;
        char key[24];
        if (in->kind != EMBER__TASK_INPUT__KIND__CACHED || off)
            continue;
        snprintf(key, sizeof(key), "%zu", i);
        /* Asked before any byte is read: a block written again after this
         * answer differs from what we record, and is read again next time. */
        if (worker_block_generation(w, in->block_addr, in->block_id, &plan->generations[i]) != 0)
            plan->generations[i] = 0;
        held = find_held(slot, in->block_id, in->block_addr);
        if (held && plan->generations[i] != 0 && held->generation == plan->generations[i]) {
            plan->from_objects[i] = 1;
            json_object_set_new(plan->object_inputs, key, json_string(in->block_id));
        } else {
            json_object_set_new(plan->keep_inputs, key, json_string(in->block_id));
        }
    }
    /* What it keeps that we cannot vouch for (made by a failed task, or left
     * from a block since gone) only takes its memory. */
    json_array_foreach(slot->objects, i, id) {
        const char *block_id = json_string_value(id);
        int known = 0;
        for (size_t k = 0; block_id && k < slot->n_held && !known; k++)
            known = strcmp(slot->held[k].block_id, block_id) == 0;
        if (block_id && !known)
            json_array_append_new(plan->drop, json_string(block_id));
    }
}

static void set_held(struct held_object *h, const char *block_id, const char *addr,
                     uint64_t generation)
{
    h->block_id = ember_xstrdup(block_id);
    h->addr = ember_xstrdup(addr);
    h->generation = generation;
}

static void free_held(struct held_object *held, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(held[i].block_id);
        free(held[i].addr);
    }
    free(held);
}

/* What the task left in the pyexec for block_id, if it touched it: 1 with
 * *h set, 0 when the task did not touch it, -1 when its objects are unknown. */
static int touched(struct worker *w, const Ember__TaskSpec *spec, const struct object_plan *plan,
                   const uint8_t *stored, const char *block_id, struct held_object *h)
{
    for (size_t i = 0; i < spec->n_cache_writes; i++) {
        uint64_t gen;
        if (strcmp(spec->cache_writes[i]->block_id, block_id) != 0)
            continue;
        /* Computed here: the objects are the block just stored, when it was.
         * (Another attempt of the same partition storing it here between our
         * put and this question would be taken for ours: the master runs one
         * attempt of a partition at a time, so only a written-off attempt
         * could, and it computes the same lineage.) */
        if (!stored || !stored[i]
            || worker_block_generation(w, w->block_addr, block_id, &gen) != 0)
            return -1;
        set_held(h, block_id, w->block_addr, gen);
        return 1;
    }
    for (size_t i = 0; i < spec->n_inputs; i++) {
        const Ember__TaskInput *in = spec->inputs[i];
        if (in->kind != EMBER__TASK_INPUT__KIND__CACHED || strcmp(in->block_id, block_id) != 0
            || plan->from_objects[i])
            continue;
        if (plan->generations[i] == 0)
            return -1;
        set_held(h, block_id, in->block_addr, plan->generations[i]);
        return 1;
    }
    return 0;
}

void worker_objects_after_task(struct worker *w, struct pyexec_slot *slot,
                               const Ember__TaskSpec *spec, const struct object_plan *plan,
                               json_t *reported, const uint8_t *stored)
{
    size_t n_ids = json_is_array(reported) ? json_array_size(reported) : 0;
    struct held_object *held = ember_xcalloc(n_ids + 1, sizeof(*held));
    size_t n = 0;

    for (size_t i = 0; i < n_ids; i++) {
        const char *block_id = json_string_value(json_array_get(reported, i));
        const struct held_object *before;
        if (!block_id)
            continue;
        int rc = touched(w, spec, plan, stored, block_id, &held[n]);
        if (rc > 0) {
            n++;
        } else if (rc == 0) {
            /* Untouched by this task: still what we knew of it before, if anything. */
            for (size_t k = 0; k < slot->n_held; k++) {
                before = &slot->held[k];
                if (strcmp(before->block_id, block_id) == 0) {
                    set_held(&held[n++], block_id, before->addr, before->generation);
                    break;
                }
            }
        }
    }
    free_held(slot->held, slot->n_held);
    slot->held = held;
    slot->n_held = n;
    if (json_is_array(reported)) {     /* else it keeps what it said before, less what it
                                        * stored in the failed task (it drops those itself) */
        json_decref(slot->objects);
        slot->objects = json_incref(reported);
    }
}

void worker_object_plan_free(struct object_plan *plan)
{
    free(plan->from_objects);
    free(plan->generations);
    json_decref(plan->object_inputs);
    json_decref(plan->keep_inputs);
    json_decref(plan->drop);
    memset(plan, 0, sizeof(*plan));
}
