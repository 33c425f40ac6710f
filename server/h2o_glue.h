/* h2o_glue: running h2o's evloop inside a libev loop.
 *
 * THIS IS THE ONLY FILE THAT TOUCHES h2o 2.2.5 INTERNALS (private struct layout and `_`-prefixed
 * fields). Everything else uses h2o's public API. If libh2o is upgraded, re-check this file first.
 *
 * h2o's evloop owns an epoll fd that libev watches with an ev_io. h2o_send() from a libev callback
 * only queues work inside h2o, so before libev blocks the worker must run h2o until nothing is
 * pending, and arm a libev timer for h2o's own next timeout. */
#ifndef MOCKUPSTREAM_H2O_GLUE_H
#define MOCKUPSTREAM_H2O_GLUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <h2o.h>

/* Finds the epoll fd inside `loop` and checks that it really is one (via /proc/self/fd).
 * Returns 0 and sets *out_fd, or -1 with a message in err. */
int h2o_glue_epoll_fd(h2o_evloop_t *loop, int *out_fd, char *err, size_t err_size);

/* True if h2o has callbacks, socket state changes or an expired timeout waiting to run. */
bool h2o_glue_has_pending_work(h2o_evloop_t *loop);

/* Runs h2o's loop without blocking until nothing is pending. */
void h2o_glue_run_until_idle(h2o_evloop_t *loop);

/* Milliseconds until h2o's earliest timeout (0 if due), or UINT64_MAX if it has none. */
uint64_t h2o_glue_next_timeout_ms(h2o_evloop_t *loop);

#endif
