/* http1_server: the lean cleartext HTTP/1.1 path, on the worker's own libev loop.
 *
 * h2o 2.2.5's HTTP/1 path stops and restarts reading around every request (~5 syscalls each). Here
 * a connection keeps one read watcher for its whole life, a request costs one read() and one
 * write(), reads go into a per-worker scratch buffer (an idle keep-alive connection owns no buffer),
 * and the default benchmark response is preformatted once per second (http1_response.h).
 *
 * What to answer, holding and counting go through the request core (request_core.h), exactly as on
 * the h2o path; this file carries the answer out in HTTP/1.1 (cleartext, or TLS over tls_io.h). A connection that turns out to
 * speak HTTP/2 is handed to h2o: unread if its first bytes (peeked) are the prior-knowledge preface
 * or an Upgrade: h2c request, else with the bytes read so far (an upgrade after HTTP/1.1 requests).
 * Timeouts: `--idle-timeout` between requests; `--request-timeout` from the first byte of a request
 * to its last, for a TLS handshake from accept, and for writing a response from the last write that
 * made progress (a client that stops reading is closed, a slow one is not). */
#ifndef MOCKUPSTREAM_HTTP1_SERVER_H
#define MOCKUPSTREAM_HTTP1_SERVER_H

#include <ev.h>
#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "arrival.h"
#include "config.h"
#include "http1_response.h"
#include "stats.h"
#include "timeout_list.h"

struct h2o_frontend;
struct request_core;

struct http1_server {
    struct ev_loop *loop;
    struct request_core *core;         /* decides, holds and counts requests */
    const struct config *config;
    struct h2o_frontend *h2o;          /* takes the connections that turn out to speak HTTP/2 */
    struct timeout_list idle;          /* keep-alive connections between requests */
    struct timeout_list request;       /* connections reading a request or writing a response */
    char *scratch;                     /* read buffer shared by all connections of the worker */
    size_t scratch_size;
    struct http1_response_cache responses;
    uint64_t input_arrival_ns;         /* when the input being processed arrived (see arrival_recv) */
    struct arrival_reader arrivals;
    SSL_CTX *ssl_ctx;                  /* the TLS listener's context; NULL without --tls-listen */
    bool connection_limits;            /* --max-requests-per-connection or --max-connection-age is set */
};

/* Sets the server up on `loop`: requests go to `core`, HTTP/2 connections to `h2o`; `ssl_ctx` serves
 * the TLS listener (NULL without one). Returns 0 or -1 (out of memory). */
int http1_server_init(struct http1_server *server, struct ev_loop *loop, struct request_core *core, struct h2o_frontend *h2o,
                      SSL_CTX *ssl_ctx);

/* Serves an accepted connection (takes ownership of fd). A TLS connection whose ClientHello
 * offers h2 is handed to h2o unread; any other TLS connection is served here over OpenSSL. */
void http1_server_accept(struct http1_server *server, int fd, enum listener_kind kind);

/* Responses partly written, waiting for their client to read (a large body to a slow reader). */
size_t http1_server_responses_in_flight(const struct http1_server *server);

/* Drain: closes idle keep-alive connections now; the others close after their current response. */
void http1_server_request_shutdown(struct http1_server *server);

#endif
