/* request_core: what happens to a request between its protocol path and the stats, once for every
 * path (the lean HTTP/1.1 loop, cleartext and TLS; HTTP/2 through h2o).
 *
 * A protocol path parses a request and hands it to request_core_decide(), which asks the handler
 * what to answer (handler_route). The path then calls request_core_start() with a delay entry it
 * embeds in its own request object: the core either says "send now" or holds the entry in the
 * worker's delay queue until it is due. When it is due the path's on_due callback runs; it calls
 * request_core_release() first (counts the release and its lateness) and sends. When the client goes
 * away first, the path calls request_core_cancel(). Every response sent, held or not, is counted by
 * request_core_count(). So the hold rule, the counting and the stats a response feeds are written
 * here once; the paths only carry the answer out in their protocol.
 *
 * The core is owned by the worker, which gives it to both paths at init; the paths never reach the
 * worker itself. What the worker must hear from below (a connection closed, so accepting may resume)
 * goes through the callback it registers here. */
#ifndef MOCKUPSTREAM_REQUEST_CORE_H
#define MOCKUPSTREAM_REQUEST_CORE_H

#include <stdbool.h>
#include <stdint.h>

#include "body_fill.h"
#include "config.h"
#include "delay.h"
#include "handler.h"
#include "prng.h"
#include "stats.h"

/* A listener kind with a stable address, for callbacks that carry one pointer (h2o's on_close). */
struct request_core_listener {
    struct request_core *core;
    enum listener_kind kind;
};

struct request_core {
    const struct config *config;
    struct handler_context handler;
    struct stats_worker_slot *slot; /* this worker's counters */
    struct delay_queue *delays;     /* this worker's held requests */
    struct prng rng;                /* this worker's stream of --seed */
    struct body_fill fill;          /* bodies of sizes other than the configured body's */
    struct spec_cache specs;        /* specs requests carried lately, parsed once (spec_cache.h) */
    bool draining;                  /* set by the owner at SIGTERM: responses from now on close their connection */
    bool load_rules;                /* --delay-per-held or --max-held is set */
    size_t hangs_now;               /* hang faults in the delay queue: a drain does not wait for them */
    struct request_core_listener listeners[LISTENER_KIND_COUNT];
    /* the owner's hook: a connection closed (the worker resumes accepting if it had paused) */
    void (*on_connection_closed)(void *owner);
    void *owner;
};

/* Sets the core up for one worker, drawing from stream `rng_stream` of --seed (prng.h). Reserves the
 * body fill's address space. Returns 0, or -1 with errno set. */
int request_core_init(struct request_core *core, const struct config *config, const struct stats_segment *stats,
                      struct stats_worker_slot *slot, uint64_t rng_stream, struct delay_queue *delays,
                      void (*on_connection_closed)(void *owner), void *owner);

/* What to answer `req` (see handler.h); release `res` with handler_response_release. Then the load
 * rules, for benchmark answers (not refusals): --delay-per-held adds its duration per request this
 * worker holds now (capped by --max-delay), and --max-held replaces an answer that would wait while
 * the worker holds that many by a 503 with Retry-After: 1, sent at once. */
void request_core_decide(struct request_core *core, const struct handler_request *req, struct handler_response *res);

enum request_core_start_result {
    REQUEST_CORE_SEND_NOW, /* no delay: send `res` now */
    REQUEST_CORE_HELD,     /* queued: entry->on_due (set by the caller) runs at arrival_ns + res->delay_ns */
    REQUEST_CORE_REFUSED,  /* could not be held (out of memory): `res` was replaced by a 503 to send now */
};

/* Applies the hold rule: a response with a delay waits for it, from `arrival_ns` (CLOCK_MONOTONIC,
 * when the request reached the host as far as the path knows, see enum request_arrival). */
enum request_core_start_result request_core_start(struct request_core *core, struct delay_entry *entry,
                                                  struct handler_response *res, uint64_t arrival_ns);

/* A request's bytes took `receive_ns` from its first to its last (as far as the path can tell). */
void request_core_received(struct request_core *core, uint64_t receive_ns);

/* Call first thing in on_due: counts the release and records its lateness (now_ns - due) under
 * where the path's arrival times come from (stats.h: the kernel's receive stamp on the lean HTTP/1.1
 * path, h2o's hand-over on HTTP/2), so the two measurements are never summed. */
void request_core_release(struct request_core *core, const struct delay_entry *entry, enum stats_arrival arrival,
                          uint64_t now_ns);

/* The client went away while the response was held: dequeues it and counts it cancelled. Harmless if
 * the entry is not queued. */
void request_core_cancel(struct request_core *core, struct delay_entry *entry);

/* One response, as sent. */
struct request_core_outcome {
    enum stats_protocol protocol;
    enum listener_kind listener;
    const struct handler_response *response;
    uint64_t request_body_bytes;  /* received (0 for a refused body) */
    uint64_t response_body_bytes; /* sent (0 for HEAD) */
};

/* Counts a response the path has sent (or handed to its transport). */
void request_core_count(struct request_core *core, const struct request_core_outcome *outcome);

/* A fault (res->fault, never FAULT_NONE) is being carried out instead of a response: counts it.
 * The path does not call request_core_count for it. */
void request_core_fault(struct request_core *core, enum fault_kind kind);

/* FAULT_HANG: holds `entry` (set entry->on_due first) for --request-timeout from now, as a request
 * that will never be answered: it counts in held_now until the path's on_due (the timeout: close or
 * reset) calls request_core_hang_over, or the client leaves first (request_core_cancel). */
void request_core_hang(struct request_core *core, struct delay_entry *entry, uint64_t now_ns);

/* A hang's timeout fired (first thing in its on_due). */
void request_core_hang_over(struct request_core *core);

/* The client left during a hang (request_core_cancel for an entry held by request_core_hang). */
void request_core_hang_cancel(struct request_core *core, struct delay_entry *entry);

/* Paced bodies (handler_pace_part_*): queues the path's pacing `entry` (its own, never the held one)
 * to fire `offset_ns` after `head_sent_ns`, for the next part. Not a held request: nothing is
 * counted, but the entry is in the delay queue, so a drain waits for the body to finish. Returns 0,
 * or -1 (out of memory: the path sends the rest of the body at once). */
int request_core_pace(struct request_core *core, struct delay_entry *entry, uint64_t head_sent_ns, uint64_t offset_ns);

/* The client left while a body was paced: dequeues `entry` if it is queued. */
void request_core_pace_stop(struct request_core *core, struct delay_entry *entry);

/* A connection accepted on a listener of `kind` closed (or was never served), for `reason`. */
void request_core_connection_closed(struct request_core *core, enum listener_kind kind, enum stats_close_reason reason);

/* The age at which a new connection is to close (--max-connection-age with its jitter: uniform in
 * [0.9 x age, age], so connections opened together do not close together), or 0 without the flag.
 * Draws from the worker's prng only when the flag is set. */
uint64_t request_core_connection_age_limit_ns(struct request_core *core);

/* A request broke a protocol rule of kind `violation` (counted once per kind per request). */
void request_core_violation(struct request_core *core, enum stats_violation violation);

#endif
