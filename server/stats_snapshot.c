#include "stats_snapshot.h"

#include <stdlib.h>
#include <string.h>

/* Every field of a slot is a 64-bit counter written by one worker: copy it word by word with relaxed
 * loads, so no word is torn (memcpy gives no such promise). */
_Static_assert(sizeof(struct stats_worker_slot) % sizeof(uint64_t) == 0, "a slot is whole 64-bit words");
static void slot_copy(struct stats_worker_slot *copy, const struct stats_worker_slot *live)
{
    const uint64_t *from = (const uint64_t *)live;
    uint64_t *to = (uint64_t *)copy;
    for (size_t i = 0; i < sizeof(*live) / sizeof(uint64_t); i++)
        to[i] = __atomic_load_n(&from[i], __ATOMIC_RELAXED);
}

int stats_snapshot_take(struct stats_snapshot *snap, const struct stats_segment *segment)
{
    snap->segment = segment;
    snap->workers = segment->info.workers < STATS_MAX_WORKERS ? segment->info.workers : STATS_MAX_WORKERS;
    snap->slots = malloc((snap->workers ? snap->workers : 1) * sizeof(*snap->slots));
    snap->processes = calloc(snap->workers + 1, sizeof(*snap->processes));
    snap->process_present = calloc(snap->workers + 1, sizeof(*snap->process_present));
    if (snap->slots == NULL || snap->processes == NULL || snap->process_present == NULL)
        return -1;
    for (uint32_t w = 0; w < snap->workers; w++)
        slot_copy(&snap->slots[w], &segment->workers[w]);
    for (uint32_t p = 0; p <= snap->workers; p++) {
        int64_t pid = p < snap->workers ? snap->slots[p].pid : segment->info.master_pid;
        snap->process_present[p] = pid > 0 && process_metrics_read((pid_t)pid, &snap->processes[p]) == 0;
    }
    return 0;
}

void stats_snapshot_release(struct stats_snapshot *snap)
{
    free(snap->slots);
    free(snap->processes);
    free(snap->process_present);
    memset(snap, 0, sizeof(*snap));
}

/* Adds one slot's values of `m` into acc[group]. */
static void add_slot(const struct stats_metric *m, const struct stats_worker_slot *slot, uint64_t *acc)
{
    if (m->slot_value != NULL) {
        for (size_t i = 0; i < m->count; i++)
            acc[stats_view_group_of(m->view, i)] += m->slot_value(slot, i);
        return;
    }
    const uint64_t *field = (const uint64_t *)((const char *)slot + m->offset);
    for (size_t i = 0; i < m->count; i++)
        /* most of the 2,004 status counters are 0: skip them before the division that groups them */
        if (field[i] != 0)
            acc[stats_view_group_of(m->view, i)] += field[i];
}

void stats_snapshot_values(const struct stats_snapshot *snap, const struct stats_metric *m, long worker, uint64_t *acc)
{
    memset(acc, 0, stats_view_group_count(m->view, m->count) * sizeof(*acc));
    if (m->source == STATS_SOURCE_INFO) {
        acc[0] = m->info_value(snap->segment);
        return;
    }
    if (worker >= 0) {
        add_slot(m, &snap->slots[worker], acc);
        return;
    }
    for (uint32_t w = 0; w < snap->workers; w++)
        add_slot(m, &snap->slots[w], acc);
}

void stats_snapshot_histograms(const struct stats_snapshot *snap, const struct stats_metric *m, struct stats_histogram *acc)
{
    memset(acc, 0, stats_view_group_count(m->view, m->count) * sizeof(*acc));
    for (uint32_t w = 0; w < snap->workers; w++) {
        const struct stats_histogram *h = (const struct stats_histogram *)((const char *)&snap->slots[w] + m->offset);
        for (size_t i = 0; i < m->count; i++) {
            struct stats_histogram *a = &acc[stats_view_group_of(m->view, i)];
            for (int b = 0; b <= STATS_HISTOGRAM_BUCKET_COUNT; b++) {
                a->buckets[b] += h[i].buckets[b];
                /* the count is the bucket sum, so +Inf always equals _count whatever a writer was doing */
                a->count += h[i].buckets[b];
            }
            a->sum_ns += h[i].sum_ns;
            if (h[i].max_ns > a->max_ns)
                a->max_ns = h[i].max_ns;
        }
    }
}

uint64_t stats_snapshot_process_value(const struct stats_snapshot *snap, const struct stats_metric *m, uint32_t process)
{
    return *(const uint64_t *)((const char *)&snap->processes[process] + m->offset);
}
