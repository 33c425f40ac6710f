/* stats_snapshot: one consistent read of the stats segment and of the server's processes, taken at
 * the start of a render (internal to the stats renderers).
 *
 * Every running worker's slot is copied once, word by word with relaxed loads, and each live
 * process's /proc figures are read once (process_metrics.h). Reading the live slots once per figure
 * would let a busy worker count requests between, say, requests.total and workers[].requests of the
 * same document, which would then disagree; the copy costs about 1 us per worker (19 KiB each). */
#ifndef MOCKUPSTREAM_STATS_SNAPSHOT_H
#define MOCKUPSTREAM_STATS_SNAPSHOT_H

#include <stdbool.h>
#include <stdint.h>

#include "process_metrics.h"
#include "stats.h"
#include "stats_table.h"

struct stats_snapshot {
    const struct stats_segment *segment;
    uint32_t workers;                  /* slots read: the configured workers */
    struct stats_worker_slot *slots;   /* [workers], copied */
    struct process_metrics *processes; /* [0, workers): the workers, [workers]: the master */
    bool *process_present;             /* same indexes: false for a worker restarting, or no master pid */
};

/* Copies the slots and reads the processes. Returns 0, or -1 out of memory (release it anyway). */
int stats_snapshot_take(struct stats_snapshot *snap, const struct stats_segment *segment);
void stats_snapshot_release(struct stats_snapshot *snap);

/* The values of `m` (not a histogram) into acc[group] (stats_view_group_count groups): of worker
 * `worker`, or summed over every worker when worker is -1. */
void stats_snapshot_values(const struct stats_snapshot *snap, const struct stats_metric *m, long worker, uint64_t *acc);

/* The histograms of `m` summed over every worker into acc[group]. */
void stats_snapshot_histograms(const struct stats_snapshot *snap, const struct stats_metric *m, struct stats_histogram *acc);

/* The value of a STATS_SOURCE_PROCESS metric for process index `process` (present ones only). */
uint64_t stats_snapshot_process_value(const struct stats_snapshot *snap, const struct stats_metric *m, uint32_t process);

#endif
