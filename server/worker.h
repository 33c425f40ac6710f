/* worker: one worker process: its libev loop, listeners, delay queue and protocol front ends.
 *
 * `struct worker` is the process's whole mutable state (besides its stats slot in shared memory):
 * everything a callback needs is reached from it. Both protocol paths use the worker_hold_*
 * functions below so held requests are counted and timed the same way whichever path carries them. */
#ifndef MOCKUPSTREAM_WORKER_H
#define MOCKUPSTREAM_WORKER_H

#include <ev.h>
#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "delay.h"
#include "handler.h"
#include "http1_server.h"
#include "stats.h"

struct h2o_frontend;
struct h2o_limits;
struct h2o_frontend_shared;

/* Exit statuses of a worker process, read by the master. */
#define WORKER_EXIT_OK 0
#define WORKER_EXIT_STARTUP_FAILED 2
#define WORKER_EXIT_DRAIN_TIMEOUT 3

struct worker_listener {
    struct worker *worker;
    int fd;
    enum stats_listener kind;
    ev_io watcher;
};

/* What the master hands a worker at fork time. */
struct worker_setup {
    unsigned index;
    const struct config *config;
    struct stats_segment *stats;
    struct h2o_frontend_shared *h2o_shared;
    const int *listener_fds; /* config->listener_count fds for this worker */
};

struct worker {
    unsigned index;
    const struct config *config;
    struct stats_worker_slot *slot;
    struct handler_context handler;
    struct ev_loop *loop;
    struct delay_queue delays;
    struct h2o_frontend *h2o;   /* HTTP/2 and TLS */
    struct h2o_limits *h2o_limits; /* bounds h2o 2.2.5 lacks (h2o_limits.h) */
    struct http1_server http1;  /* cleartext HTTP/1.1 */

    struct worker_listener listeners[CONFIG_MAX_LISTENERS];
    size_t listener_count;
    bool accept_paused;       /* out of file descriptors: listeners stopped until one closes */
    bool fd_exhaustion_logged; /* this episode was logged; cleared by the next successful accept */
    uint64_t fd_exhaustion_logged_at_ns; /* flapping near the limit logs at most every 10 s */
    ev_timer accept_resume_timer;

    ev_prepare before_block_watcher; /* flushes due responses and h2o's queued work */
    ev_signal sigterm_watcher;
    bool draining;
    uint64_t drain_deadline_ns;
    uint64_t drain_quiet_since_ns; /* when held requests reached 0 during a drain */
    ev_timer drain_timer;
};

/* Runs a worker process until it exits; never returns. */
void worker_main(const struct worker_setup *setup) __attribute__((noreturn));

/* Queues a benchmark response for `delay_ns` after `arrival_ns`, when the request's last byte
 * reached the host (CLOCK_MONOTONIC; the kernel's receive time where the path knows it, else when it
 * was read). Returns 0, or -1 (out of memory: answer 503 now). */
int worker_hold(struct worker *worker, struct delay_entry *entry, uint64_t delay_ns, uint64_t arrival_ns);

/* Call from the entry's on_due callback: counts it released and records its lateness. */
void worker_hold_released(struct worker *worker, const struct delay_entry *entry, uint64_t now_ns);

/* The client went away while the response was held: dequeues it and counts it cancelled. */
void worker_hold_cancel(struct worker *worker, struct delay_entry *entry);

/* A connection accepted on a listener of `kind` closed. */
void worker_connection_closed(struct worker *worker, enum stats_listener kind);

#endif
