/* master: forks the workers, restarts any that dies, and turns SIGTERM/SIGINT into a drain.
 *
 * The master runs no event loop (libev's default loop would install a SIGCHLD handler that the
 * children inherit); it waits for signals synchronously with sigtimedwait(). */
#ifndef MOCKUPSTREAM_MASTER_H
#define MOCKUPSTREAM_MASTER_H

#include "config.h"
#include "h2o_frontend.h"
#include "stats.h"

/* Exit statuses of the whole server. */
#define MASTER_EXIT_OK 0
#define MASTER_EXIT_FAILED 1
#define MASTER_EXIT_DRAIN_TIMEOUT 3

struct master_setup {
    const struct config *config;
    struct stats_segment *stats;
    struct h2o_frontend_shared *h2o_shared;
    int *listener_fds; /* config->workers rows of config->listener_count fds */
};

/* Runs until the workers have drained after a signal. Returns the process exit status. */
int master_run(const struct master_setup *setup);

/* Blocks the signals master_run waits for; call before creating anything a worker inherits. */
void master_block_signals(void);

#endif
