/* stats: counters shared by all worker processes.
 *
 * The master maps one fixed-size segment (no pointers inside) before forking. Each worker owns one
 * cache-line-aligned slot and is its only writer; anyone may read any slot at any time to render
 * totals. Writers use relaxed atomic stores of (old + n) rather than read-modify-write instructions:
 * there is a single writer per slot, so no increment is lost and no bus lock is taken. Readers use
 * relaxed atomic loads: a scrape sees each counter at some recent value, never torn.
 *
 * A worker that is restarted takes over the same slot and keeps adding to it, so totals stay
 * monotonic; stats_slot_reset_after_death() clears the gauges the dead process left behind.
 */
#ifndef MOCKUPSTREAM_STATS_H
#define MOCKUPSTREAM_STATS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define STATS_MAX_WORKERS 1024

enum stats_protocol {
    STATS_PROTOCOL_HTTP1,
    STATS_PROTOCOL_HTTP2,
    STATS_PROTOCOL_COUNT,
};

/* Where a connection arrived: the benchmark port (cleartext), the TLS port, or the stats-only port. */
enum stats_listener {
    STATS_LISTENER_HTTP,
    STATS_LISTENER_TLS,
    STATS_LISTENER_STATS,
    STATS_LISTENER_COUNT,
};

/* Requests that broke a protocol rule, by kind, so a benchmarker learns what their client does wrong.
 * Each is handled on its own request: served anyway (the rule is one nginx does not enforce either)
 * or refused with a 4xx on that request only, never by closing a connection other requests share.
 * A request is counted once per kind it shows. */
enum stats_violation {
    /* HTTP/2 request with connection, keep-alive, proxy-connection, transfer-encoding, upgrade or
     * http2-settings (RFC 9113 8.2.2 calls it malformed): the fields are ignored, the request served */
    STATS_VIOLATION_HTTP2_CONNECTION_SPECIFIC_HEADER,
    STATS_VIOLATION_HTTP2_TE_NOT_TRAILERS,       /* `te` other than "trailers" (RFC 9113 8.2.2): 400 */
    STATS_VIOLATION_HTTP2_MISSING_AUTHORITY,     /* neither :authority nor host (RFC 9113 8.3.1): 400 */
    STATS_VIOLATION_HTTP2_EMPTY_PATH,            /* empty :path (RFC 9113 8.3.1): 400 */
    STATS_VIOLATION_HTTP2_HEADER_LIST_TOO_LARGE, /* decoded header list past the HTTP/1.1 limits: 431 */
    STATS_VIOLATION_COUNT,
};

/* Status classes 1xx..5xx map to 0..4. */
#define STATS_CODE_CLASS_COUNT 5

/* Lateness histogram: upper bounds (inclusive, in nanoseconds) of each bucket; the last bucket of the
 * array (index STATS_LATENESS_BUCKET_COUNT) is +Inf. The bounds run 1 us .. 1 s with ten steps per
 * decade (1, 1.25, 1.5, 2, 2.5, 3, 4, 5, 6, 8), fine enough to compute p99 of a ~35 us distribution. */
#define STATS_LATENESS_BUCKET_COUNT 61
extern const uint64_t stats_lateness_bucket_upper_ns[STATS_LATENESS_BUCKET_COUNT];

/* One worker's counters. Every field is written by that worker only. */
struct stats_worker_slot {
    /* identity */
    int64_t pid;                 /* current process, 0 if not running */
    uint64_t restarts;           /* times the master restarted this slot's worker */
    uint64_t started_at_unix_ns; /* when the current process started */

    /* benchmark requests completed, by protocol, TLS or not, and status class */
    uint64_t requests[STATS_PROTOCOL_COUNT][2 /* tls */][STATS_CODE_CLASS_COUNT];
    /* requests to /stats, /metrics, /healthz (never in `requests`) */
    uint64_t control_requests;
    /* requests whose client went away while they were held */
    uint64_t requests_cancelled;
    /* requests that broke a protocol rule, by kind (also counted in `requests` by their status) */
    uint64_t protocol_violations[STATS_VIOLATION_COUNT];

    /* requests waiting for their delay right now, and the highest that has been */
    uint64_t held_now;
    uint64_t held_peak;

    /* connections by listener; open now = accepted - closed */
    uint64_t connections_accepted[STATS_LISTENER_COUNT];
    uint64_t connections_closed[STATS_LISTENER_COUNT];
    /* accept() failures because the process ran out of file descriptors (EMFILE/ENFILE) */
    uint64_t accept_fd_exhausted;

    uint64_t request_body_bytes;  /* request bodies received (benchmark requests) */
    uint64_t response_body_bytes; /* response bodies sent (benchmark requests) */

    /* delay lateness: time the response was handed to the socket minus the time it was due */
    uint64_t lateness_buckets[STATS_LATENESS_BUCKET_COUNT + 1];
    uint64_t lateness_count;
    uint64_t lateness_sum_ns;
    uint64_t lateness_max_ns;
} __attribute__((aligned(64)));

/* Facts about the process, written by the master before forking, read-only afterwards. */
struct stats_process_info {
    char version[32];
    char h2o_version[32];
    char libev_version[16];
    char libev_backend[16];
    char allocator[48];   /* e.g. "jemalloc 5.3.0-0-g54eaed1d..." or "system" */
    char timer_method[48];
    uint64_t start_unix_ns;
    uint64_t start_monotonic_ns;
    uint64_t delay_ns;
    uint64_t open_file_limit;
    uint32_t workers;
};

struct stats_segment {
    struct stats_process_info info;
    struct stats_worker_slot workers[STATS_MAX_WORKERS];
};

/* Maps a zeroed shared segment (MAP_SHARED | MAP_ANONYMOUS) that survives fork. NULL on failure. */
struct stats_segment *stats_segment_create(void);

/* Increments a counter owned by the calling worker. */
static inline void stats_add(uint64_t *counter, uint64_t n)
{
    __atomic_store_n(counter, *counter + n, __ATOMIC_RELAXED);
}

/* Decrements a gauge owned by the calling worker. */
static inline void stats_sub(uint64_t *counter, uint64_t n)
{
    __atomic_store_n(counter, *counter - n, __ATOMIC_RELAXED);
}

/* Reads any slot's counter from any process. */
static inline uint64_t stats_read(const uint64_t *counter)
{
    return __atomic_load_n(counter, __ATOMIC_RELAXED);
}

/* A request started waiting for its delay / stopped waiting (answered or cancelled). */
void stats_held_inc(struct stats_worker_slot *slot);
void stats_held_dec(struct stats_worker_slot *slot);

/* Records one delayed response's lateness. */
void stats_lateness_record(struct stats_worker_slot *slot, uint64_t lateness_ns);

/* Counts a completed benchmark request. `status` is the HTTP status code. */
void stats_request_done(struct stats_worker_slot *slot, enum stats_protocol protocol, int tls, int status,
                        uint64_t request_body_bytes, uint64_t response_body_bytes);

/* Called by the master when a worker process died: its connections and held requests are gone. */
void stats_slot_reset_after_death(struct stats_worker_slot *slot);

/* Index of the histogram bucket for `lateness_ns` (STATS_LATENESS_BUCKET_COUNT is +Inf). */
size_t stats_lateness_bucket_index(uint64_t lateness_ns);

#endif
