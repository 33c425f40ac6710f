/* stats_table: what every figure of /stats and /metrics is, described once (internal to the stats
 * renderers: stats_snapshot reads the figures, stats_render prints them).
 *
 * One row per figure: its Prometheus family (name, help, type), its place in the JSON document, its
 * unit, whether it is server-wide, per worker or per process, how its values group into labels
 * (a "view"), and where its values live (a slot field, a value derived from slot fields, the process
 * info, or the process's /proc figures). Adding a counter is a slot field, its recording function
 * and one row here; the renderers need no change. The rows follow Prometheus' conventions, which
 * tests/unit/test_stats.c and promtool check: counters end in _total, stored nanoseconds print as
 * seconds under a name ending in _seconds, sizes end in _bytes. */
#ifndef MOCKUPSTREAM_STATS_TABLE_H
#define MOCKUPSTREAM_STATS_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "stats.h"

enum stats_metric_type { STATS_METRIC_COUNTER, STATS_METRIC_GAUGE, STATS_METRIC_HISTOGRAM };

/* What the stored number is; decides how both formats print it. */
enum stats_metric_unit {
    STATS_UNIT_COUNT,
    STATS_UNIT_BYTES,
    STATS_UNIT_NS, /* stored in nanoseconds, shown in seconds (the name ends in _seconds) */
};

enum stats_metric_scope {
    STATS_SCOPE_SERVER,  /* one figure per label set, summed over every worker slot (or from the process info) */
    STATS_SCOPE_WORKER,  /* one per worker slot: worker="<index>"; JSON: in workers[index] */
    STATS_SCOPE_PROCESS, /* one per live process: worker="<index>" or "master"; JSON: in workers[index] and master */
};

/* How the values read from a slot are grouped into label sets (Prometheus) or keys (JSON "{}"). */
enum stats_view {
    STATS_VIEW_NONE,             /* every value summed into one figure */
    STATS_VIEW_LISTENER,         /* listener="http|tls|stats" */
    STATS_VIEW_VIOLATION,        /* kind="<violation>" */
    STATS_VIEW_FAULT,            /* kind="reset|close|hang|partial|garbage" */
    STATS_VIEW_CLOSE_REASON,     /* reason="client|idle|request_timeout|..." */
    STATS_VIEW_ARRIVAL,          /* arrival="kernel|handler" */
    STATS_VIEW_REQUEST,          /* protocol, tls, code (exact status; only codes seen are rendered) */
    STATS_VIEW_REQUEST_PROTOCOL, /* JSON keys http1, http1_tls, http2, http2_tls */
    STATS_VIEW_REQUEST_CLASS,    /* JSON keys 1xx .. 5xx (a status outside 100..599 counts as 5xx) */
    STATS_VIEW_REQUEST_STATUS,   /* JSON keys "200", "404" ... (only codes seen) */
};

/* The most groups a view has (protocol x tls x status), and the most a histogram view has. */
#define STATS_VIEW_MAX_GROUPS ((size_t)STATS_PROTOCOL_COUNT * 2 * STATS_STATUS_SLOTS)
#define STATS_VIEW_MAX_HISTOGRAM_GROUPS ((size_t)STATS_ARRIVAL_COUNT)

enum stats_metric_source {
    STATS_SOURCE_SLOT,      /* `count` uint64_t at `offset` in a worker slot, or slot_value(slot, i) */
    STATS_SOURCE_HISTOGRAM, /* `count` struct stats_histogram at `offset` in a worker slot (server-wide rows only) */
    STATS_SOURCE_INFO,      /* info_value(segment): server-wide, not per slot */
    STATS_SOURCE_PROCESS,   /* the uint64_t at `offset` in the struct process_metrics read for each process */
};

struct stats_metric {
    const char *name; /* Prometheus family; NULL: JSON only */
    const char *help;
    /* Dotted place in the JSON document (for STATS_SCOPE_WORKER and STATS_SCOPE_PROCESS, inside the
     * worker's or the master's object); "{}" stands for the view's key. NULL: Prometheus only. */
    const char *json_path;
    enum stats_metric_type type;
    enum stats_metric_unit unit;
    enum stats_metric_scope scope;
    enum stats_view view;
    enum stats_metric_source source;
    size_t offset, count;
    uint64_t (*slot_value)(const struct stats_worker_slot *slot, size_t i);
    uint64_t (*info_value)(const struct stats_segment *segment);
};

/* Every figure, in the order both documents show them. */
extern const struct stats_metric stats_metrics[];
extern const size_t stats_metric_count;

/* Strings of the process info: labels of mockupstream_build_info, keys of the JSON document. */
struct stats_build_field {
    const char *label;
    const char *json_path;
    size_t offset; /* of a NUL-terminated char array in struct stats_process_info */
};
extern const struct stats_build_field stats_build_fields[];
extern const size_t stats_build_field_count;
/* The behaviour flags as given (canonical text): /stats config.*, /metrics mockupstream_config_info. */
extern const struct stats_build_field stats_config_fields[];
extern const size_t stats_config_field_count;

/* Groups of `view` for a source of `count` values. */
size_t stats_view_group_count(enum stats_view view, size_t count);

/* The group of value i. For the request views, i indexes requests[protocol][tls][status] flat. */
size_t stats_view_group_of(enum stats_view view, size_t i);

/* Views with hundreds of possible groups show only those with a count. */
bool stats_view_is_sparse(enum stats_view view);

/* The JSON key of group g (what "{}" stands for). */
void stats_view_json_key(enum stats_view view, size_t g, char *buf, size_t size);

/* The Prometheus labels of group g, without braces ("" for STATS_VIEW_NONE and the JSON-only views). */
void stats_view_labels(enum stats_view view, size_t g, char *buf, size_t size);

#endif
