/* stats_render: turns the shared stats segment into the documents served on the control paths.
 *
 * Both renderers read every worker slot with relaxed loads and sum them, so a scrape answered by any
 * worker reports totals for all. One table of metric descriptions feeds both formats. */
#ifndef MOCKUPSTREAM_STATS_RENDER_H
#define MOCKUPSTREAM_STATS_RENDER_H

#include "stats.h"
#include "strbuf.h"

/* The JSON status document (GET /stats), documented in README.md. */
void stats_render_json(const struct stats_segment *segment, struct strbuf *out);

/* Prometheus text exposition format 0.0.4 (GET /metrics). */
void stats_render_prometheus(const struct stats_segment *segment, struct strbuf *out);

#endif
