/* stats_render: turns the shared stats segment into the documents served on the control paths.
 *
 * One table of metric descriptions (stats_table.h: name, help, type, unit, scope, labels, JSON place
 * and where the value lives) feeds both formats: adding a figure is one row there. Each render first
 * takes a snapshot (stats_snapshot.h: every worker slot copied, every live process's /proc figures
 * read), so a scrape answered by any worker reports totals for all, and the figures of one document
 * agree with each other.
 *
 * Conventions the table follows (and the unit and integration tests check): counters end in _total,
 * durations are stored in nanoseconds and shown in seconds with names ending in _seconds, sizes end
 * in _bytes; `code` holds the exact status code; per-process figures carry worker="<index>" or
 * worker="master"; the lateness histogram carries arrival="kernel"|"handler". */
#ifndef MOCKUPSTREAM_STATS_RENDER_H
#define MOCKUPSTREAM_STATS_RENDER_H

#include "stats.h"
#include "strbuf.h"

/* The JSON status document (GET /stats), documented in README.md. Sets out->failed on failure. */
void stats_render_json(const struct stats_segment *segment, struct strbuf *out);

/* Prometheus text exposition format 0.0.4 (GET /metrics). Sets out->failed on failure. */
void stats_render_prometheus(const struct stats_segment *segment, struct strbuf *out);

#endif
