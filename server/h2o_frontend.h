/* h2o_frontend: the protocol path served by libh2o (HTTP/2, TLS, and any connection handed to it).
 *
 * The shared part (two h2o_globalconf_t, one for benchmark listeners and one for the control-only
 * listener, and the SSL_CTX) is built in the master before forking. Each worker then creates its own
 * h2o evloop and contexts. Requests are routed by handler_route() like on every other path; held
 * responses wait in the worker's delay queue and are cancelled when h2o frees the request (client
 * reset the stream or closed the connection). What to answer, holding and counting go through the
 * request core (request_core.h), as on the lean HTTP/1.1 path. */
#ifndef MOCKUPSTREAM_H2O_FRONTEND_H
#define MOCKUPSTREAM_H2O_FRONTEND_H

#include <ev.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <h2o.h>

#include "config.h"
#include "stats.h"

struct request_core;

struct h2o_frontend_shared {
    h2o_globalconf_t benchmark_conf;
    h2o_globalconf_t control_conf;
    SSL_CTX *ssl_ctx; /* NULL without --tls-listen */
};

struct h2o_frontend {
    struct ev_loop *ev_loop;   /* the worker's libev loop, which watches h2o's */
    struct request_core *core; /* decides, holds and counts requests */
    h2o_evloop_t *loop;
    h2o_context_t benchmark_ctx;
    h2o_context_t control_ctx;
    h2o_accept_ctx_t accept_ctx[LISTENER_KIND_COUNT];
    ev_io epoll_watcher;
    ev_timer timeout_watcher;
    bool connection_limits;    /* --max-requests-per-connection or --max-connection-age is set */
    /* the HTTP/2 connections open when the drain began (sorted ids, see h2o_frontend_drained) */
    const void **drain_connections;
    size_t drain_connection_count;
};

/* Builds the shared configuration. Returns 0, or -1 with one line in err (e.g. a bad certificate)
 * having released whatever it had built. */
int h2o_frontend_shared_init(struct h2o_frontend_shared *shared, const struct config *cfg, char *err, size_t err_size);

/* Releases the shared configuration (master, at exit). */
void h2o_frontend_shared_dispose(struct h2o_frontend_shared *shared);

/* Creates this worker's h2o loop and contexts and starts watching them from `ev_loop`; requests go
 * to `core`. Returns 0, or -1 with one line in err. */
int h2o_frontend_init(struct h2o_frontend *frontend, struct ev_loop *ev_loop, struct request_core *core,
                      struct h2o_frontend_shared *shared, char *err, size_t err_size);

/* Serves an accepted connection (takes ownership of fd). */
void h2o_frontend_accept(struct h2o_frontend *frontend, int fd, enum listener_kind kind);

/* Takes over a cleartext connection another path has already read from (HTTP/2 preface or
 * Upgrade: h2c): h2o starts from `bytes`, as if it had read them itself. Takes ownership of fd. */
void h2o_frontend_adopt(struct h2o_frontend *frontend, int fd, enum listener_kind kind, const char *bytes, size_t len);

/* Runs h2o's queued work and arms the libev timer for h2o's next timeout; call before blocking. */
void h2o_frontend_flush(struct h2o_frontend *frontend);

/* Drain: HTTP/1 responses from now on carry Connection: close, HTTP/2 connections get GOAWAY. h2o
 * 2.2.5 sends a first GOAWAY naming stream 2^31-1 at once and, a second later (RFC 9113 6.8), the
 * final one naming the last stream it accepted; a connection closes after that when its streams are
 * done. */
void h2o_frontend_request_shutdown(struct h2o_frontend *frontend);

/* True once every HTTP/2 connection open at h2o_frontend_request_shutdown has had its final GOAWAY
 * written and has closed; a draining worker must not exit before (unless its drain deadline passes).
 * A connection h2o takes on after that (a TLS handshake or h2c hand-over that was under way) gets no
 * GOAWAY from h2o 2.2.5 and is not waited for: it closes when the worker exits. */
bool h2o_frontend_drained(struct h2o_frontend *frontend);

/* How many of those connections are still open (0 when drained): at the drain deadline, each is a
 * response cut short. */
size_t h2o_frontend_draining_connections(struct h2o_frontend *frontend);

#endif
