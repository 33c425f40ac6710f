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
 *
 * Size: a slot is about 19 KiB (most of it the exact status codes, 2 x 2 x 501 counters), so the
 * segment reserves about 19 MiB of address space for STATS_MAX_WORKERS slots. Pages are only backed
 * when touched, and only the running workers' slots are ever touched: 2 workers cost about 40 KiB.
 *
 * What each field means to a reader, and how /stats and /metrics present it, is described once in
 * stats_table.c's metric table. */
#ifndef MOCKUPSTREAM_STATS_H
#define MOCKUPSTREAM_STATS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "listener_kind.h"

#define STATS_MAX_WORKERS 1024

enum stats_protocol {
    STATS_PROTOCOL_HTTP1,
    STATS_PROTOCOL_HTTP2,
    STATS_PROTOCOL_COUNT,
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

/* Faults carried out, by kind, in fault.h's order without FAULT_NONE (reset, close, hang, partial,
 * garbage; fault.c checks the count). */
#define STATS_FAULT_KINDS 5

/* Why a connection closed (the first reason that applied). h2o 2.2.5 does not say why it closes a
 * connection of its own accord (the client left, its idle timeout, a protocol error): those are
 * STATS_CLOSE_OTHER on the connections h2o serves (HTTP/2). */
enum stats_close_reason {
    STATS_CLOSE_CLIENT,          /* the client closed, reset, asked for it (Connection: close, HTTP/1.0), or a write failed */
    STATS_CLOSE_IDLE,            /* --idle-timeout between requests */
    STATS_CLOSE_REQUEST_TIMEOUT, /* --request-timeout: a request (or TLS handshake) too slow, a response not read */
    STATS_CLOSE_MAX_REQUESTS,    /* --max-requests-per-connection */
    STATS_CLOSE_MAX_AGE,         /* --max-connection-age */
    STATS_CLOSE_DRAIN,           /* SIGTERM */
    STATS_CLOSE_FAULT,           /* a fault ended it (reset, close, partial, garbage, a hang's timeout) */
    STATS_CLOSE_PROTOCOL_ERROR,  /* a refused request (4xx and close), a failed TLS handshake */
    STATS_CLOSE_OTHER,           /* out of memory, or h2o's own reasons (see above) */
    STATS_CLOSE_REASON_COUNT,
};

/* What a delayed response's due time was measured from. The two differ in what they include, so
 * their lateness is kept apart and never summed by accident:
 * - KERNEL: the kernel's receive stamp of the request's last byte (the project's own HTTP/1.1 loop,
 *   cleartext and TLS). Time the request waited in its socket for a busy worker counts as lateness.
 * - HANDLER: when h2o handed the request over (HTTP/2: h2o reads the socket itself). Time spent in
 *   the socket and inside h2o before the hand-over is invisible to it. */
enum stats_arrival {
    STATS_ARRIVAL_KERNEL,
    STATS_ARRIVAL_HANDLER,
    STATS_ARRIVAL_COUNT,
};

/* Exact status codes 100..599 are counted one by one (index status - 100); anything else a caller
 * passes (a bug) lands in STATS_STATUS_OTHER, which the renderers show as code "other" and, as before
 * exact codes existed, in the 5xx class. */
#define STATS_STATUS_FIRST 100
#define STATS_STATUS_LAST 599
#define STATS_STATUS_OTHER (STATS_STATUS_LAST - STATS_STATUS_FIRST + 1)
#define STATS_STATUS_SLOTS (STATS_STATUS_OTHER + 1)

/* Index into the status dimension of stats_worker_slot.requests for an HTTP status code. */
static inline size_t stats_status_index(int status)
{
    return status >= STATS_STATUS_FIRST && status <= STATS_STATUS_LAST ? (size_t)(status - STATS_STATUS_FIRST)
                                                                       : (size_t)STATS_STATUS_OTHER;
}

/* Every histogram shares one set of bucket upper bounds (inclusive, in nanoseconds): 1 us .. 100 s
 * with ten steps per decade (1, 1.25, 1.5, 2, 2.5, 3, 4, 5, 6, 8 x 10^k), fine enough for the p99 of a
 * ~35 us lateness distribution and wide enough for the longest delay --max-delay allows by default.
 * The bucket after the last bound (index STATS_HISTOGRAM_BUCKET_COUNT) is +Inf. One set of bounds
 * costs the lateness histogram 20 buckets above 1 s it rarely fills; in exchange every histogram
 * renders, merges and is read the same way. */
#define STATS_HISTOGRAM_BUCKET_COUNT 81
extern const uint64_t stats_histogram_bucket_upper_ns[STATS_HISTOGRAM_BUCKET_COUNT];

/* A histogram of durations. Buckets are not cumulative here (the renderers accumulate). */
struct stats_histogram {
    uint64_t buckets[STATS_HISTOGRAM_BUCKET_COUNT + 1];
    uint64_t count; /* written after the bucket: a reader never sees more in count than in the buckets */
    uint64_t sum_ns;
    uint64_t max_ns;
};

/* One worker's counters. Every field is written by that worker only. */
struct stats_worker_slot {
    /* identity */
    int64_t pid;                 /* current process, 0 if not running */
    uint64_t restarts;           /* times the master restarted this slot's worker */
    uint64_t started_at_unix_ns; /* when the current process started (process_start_time_seconds reads /proc) */

    /* benchmark requests completed, by protocol, TLS or not, and exact status (stats_status_index) */
    uint64_t requests[STATS_PROTOCOL_COUNT][2 /* tls */][STATS_STATUS_SLOTS];
    /* requests to /stats, /metrics, /healthz (never in `requests`) */
    uint64_t control_requests;
    /* requests whose client went away while they were held */
    uint64_t requests_cancelled;
    /* requests that broke a protocol rule, by kind (also counted in `requests` by their status) */
    uint64_t protocol_violations[STATS_VIOLATION_COUNT];
    /* faults carried out (the delay over, the client still there), by kind; not in `requests` */
    uint64_t faults[STATS_FAULT_KINDS];

    /* requests waiting for their delay right now, and the highest that has been */
    uint64_t held_now;
    uint64_t held_peak;

    /* connections by listener; open now = accepted - closed */
    uint64_t connections_accepted[LISTENER_KIND_COUNT];
    uint64_t connections_closed[LISTENER_KIND_COUNT];
    /* the same closes, by reason */
    uint64_t connections_closed_by_reason[STATS_CLOSE_REASON_COUNT];
    /* accept() failures because the process ran out of file descriptors (EMFILE/ENFILE) */
    uint64_t accept_fd_exhausted;

    uint64_t request_body_bytes;  /* request bodies received (benchmark requests) */
    uint64_t response_body_bytes; /* response bodies sent (benchmark requests) */

    /* delay lateness: time the response was handed to the socket minus the time it was due */
    struct stats_histogram lateness[STATS_ARRIVAL_COUNT];
    /* the delay each benchmark response was given (what a client should measure, plus network) */
    struct stats_histogram applied_delay;
    /* request receive time: first byte of a request to its last (head and body) */
    struct stats_histogram request_receive;
} __attribute__((aligned(64)));

/* Facts about the process, written by the master before forking, read-only afterwards. */
/* Room for a --delay, --status or --body-size spec's canonical text (distribution.h), with the NUL. */
#define STATS_SPEC_TEXT_BYTES 1024

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
    int64_t master_pid; /* the master process, for its process_* metrics (0: unknown, not rendered) */
    /* the behaviour flags in canonical text (distribution_describe), for config_info */
    char delay_spec[STATS_SPEC_TEXT_BYTES];
    char status_spec[STATS_SPEC_TEXT_BYTES];
    char body_size_spec[STATS_SPEC_TEXT_BYTES];
    char seed[24];
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

/* Records one delayed response's lateness (now - due), measured from an arrival of kind `arrival`. */
void stats_lateness_record_arrival(struct stats_worker_slot *slot, enum stats_arrival arrival, uint64_t lateness_ns);

/* Records the delay a benchmark response was given (the value drawn or asked for, after --max-delay),
 * once per response whose delay was decided: 0 included (sent at once), so the histogram is the
 * distribution actually served. Refusals that never had a delay are not recorded. */
void stats_applied_delay_record(struct stats_worker_slot *slot, uint64_t delay_ns);

/* Records one benchmark request's receive time: from the arrival of its first byte to that of its
 * last (head and body; 0 when it came in one read). */
void stats_request_receive_record(struct stats_worker_slot *slot, uint64_t receive_ns);

/* Counts a completed benchmark request. `status` is the HTTP status code. */
void stats_request_done(struct stats_worker_slot *slot, enum stats_protocol protocol, int tls, int status,
                        uint64_t request_body_bytes, uint64_t response_body_bytes);

/* Called by the master when a worker process died: its connections and held requests are gone. */
void stats_slot_reset_after_death(struct stats_worker_slot *slot);

/* Index of the histogram bucket for `value_ns` (STATS_HISTOGRAM_BUCKET_COUNT is +Inf). */
size_t stats_histogram_bucket_index(uint64_t value_ns);

/* Adds one observation to a histogram of the calling worker's slot. */
void stats_histogram_record(struct stats_histogram *histogram, uint64_t value_ns);

#endif
