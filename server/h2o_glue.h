/* h2o_glue: running h2o's evloop inside a libev loop, and the guards the project puts around libh2o.
 *
 * THIS IS THE ONLY FILE THAT TOUCHES h2o 2.2.5 INTERNALS (private struct layout, `_`-prefixed
 * fields, the writable token table, and one library function wrapped by symbol interposition).
 * Everything else uses h2o's public API. If libh2o is upgraded, re-check this file first.
 *
 * h2o's evloop owns an epoll fd that libev watches with an ev_io. h2o_send() from a libev callback
 * only queues work inside h2o, so before libev blocks the worker must run h2o until nothing is
 * pending, and arm a libev timer for h2o's own next timeout.
 *
 * h2o's clock (`_now`, wall-clock milliseconds) only advances inside h2o_evloop_run(). Every timer
 * h2o arms records `_now` as its start, and the `Date` of a response comes from a cache keyed by
 * `_now`. Code entering h2o from a libev callback (accept, a held response's send, drain) must call
 * h2o_glue_clock_refresh() first, or a timer armed there starts in the past (a 10 s TLS handshake
 * timeout armed after 10 s of quiet fires at once) and `Date` is as old as the last h2o run. */
#ifndef MOCKUPSTREAM_H2O_GLUE_H
#define MOCKUPSTREAM_H2O_GLUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <h2o.h>

/* ---- process-wide guards: set once at start-up, before forking ---- */

/* Installs the guards (see h2o_glue.c for each one's reason):
 *  - HTTP/2 requests carrying connection-specific header fields (connection, transfer-encoding,
 *    upgrade, http2-settings), `te` other than "trailers", or `host` reach the handler instead of
 *    making h2o end the whole connection (it decides from the writable token table); the handler
 *    ignores, refuses and counts them per request.
 *  - HTTP/2 header blocks are measured before h2o decodes them: a block whose decoded list exceeds
 *    max_list_bytes (name + value bytes) or max_fields fields is decoded only as far as the HPACK
 *    dynamic table needs, and the request is marked (h2o_glue_header_list_refusal). cache-digest
 *    fields are never decoded (h2o decoded each one, ~190 KiB per reference, for server push, which
 *    this server never does).
 * Returns 0, or -1 with a message in err if this libh2o is not the one the guards were written for. */
int h2o_glue_init(size_t max_list_bytes, size_t max_fields, char *err, size_t err_size);

/* ---- per request ---- */

/* If h2o_glue_init's header-list limits refused this request's header block, the text of the
 * refusal (for a 431 body), with its length in *len; else NULL. */
const char *h2o_glue_header_list_refusal(const h2o_req_t *req, size_t *len);

/* True if the request's authority came from no :authority (h2o fills in the host's default). */
bool h2o_glue_authority_was_absent(const h2o_req_t *req);

/* ---- the loop ---- */

/* Finds the epoll fd inside `loop` and checks that it really is one (via /proc/self/fd).
 * Returns 0 and sets *out_fd, or -1 with a message in err. */
int h2o_glue_epoll_fd(h2o_evloop_t *loop, int *out_fd, char *err, size_t err_size);

/* Sets h2o's clock to now. Call at every entry into h2o from outside h2o_evloop_run(). */
void h2o_glue_clock_refresh(h2o_evloop_t *loop);

/* True if h2o has callbacks or socket state changes waiting to run (timeouts aside). */
bool h2o_glue_has_pending_io(h2o_evloop_t *loop);

/* True if h2o has callbacks, socket state changes or an expired timeout waiting to run. */
bool h2o_glue_has_pending_work(h2o_evloop_t *loop);

/* Runs h2o's loop without blocking until nothing is pending. */
void h2o_glue_run_until_idle(h2o_evloop_t *loop);

/* Milliseconds until h2o's earliest timeout (0 if due), or UINT64_MAX if it has none. */
uint64_t h2o_glue_next_timeout_ms(h2o_evloop_t *loop);

/* The HTTP/2 connections h2o holds in `ctx`, as opaque ids, oldest first (h2o appends new ones):
 * writes up to `max` of them to out[] and returns how many there are. */
size_t h2o_glue_http2_connections(h2o_context_t *ctx, const void **out, size_t max);

/* The oldest HTTP/2 connection h2o still holds in `ctx` (an id as above), or NULL if none. */
const void *h2o_glue_http2_oldest_connection(h2o_context_t *ctx);

#endif
