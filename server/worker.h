/* worker: one worker process: its libev loop, listeners, delay queue and protocol front ends.
 *
 * `struct worker` is the process's whole mutable state (besides its stats slot in shared memory):
 * everything a callback needs is reached from it. It owns the request core (request_core.h) and gives
 * it to both protocol paths, which never reach the worker itself. */
#ifndef MOCKUPSTREAM_WORKER_H
#define MOCKUPSTREAM_WORKER_H

#include <ev.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "config.h"
#include "delay.h"
#include "http1_server.h"
#include "request_core.h"
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
    enum listener_kind kind;
    ev_io watcher;
};

/* What the master hands a worker at fork time. */
struct worker_setup {
    unsigned index;
    pid_t master_pid;     /* the parent, as it was before fork */
    const struct config *config;
    struct stats_segment *stats;
    struct h2o_frontend_shared *h2o_shared;
    const int *listener_fds; /* config->listener_count fds for this worker */
};

struct worker {
    unsigned index;
    const struct config *config;
    struct stats_worker_slot *slot;
    struct ev_loop *loop;
    struct delay_queue delays;
    struct request_core core;   /* what both protocol paths hand requests to */
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

#endif
