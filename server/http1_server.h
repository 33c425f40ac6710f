/* http1_server: the lean cleartext HTTP/1.1 path, on the worker's own libev loop.
 *
 * h2o 2.2.5's HTTP/1 path stops and restarts reading around every request (~5 syscalls each). Here
 * a connection keeps one read watcher for its whole life, a request costs one read() and one
 * write(), reads go into a per-worker scratch buffer (an idle keep-alive connection owns no buffer),
 * and the benchmark response is preformatted once per second (for its Date header).
 *
 * Routing goes through handler_route(), exactly as on the h2o path. A connection that turns out to
 * speak HTTP/2 is handed to h2o: unread if its first bytes (peeked) are the prior-knowledge preface
 * or an Upgrade: h2c request, else with the bytes read so far (an upgrade after HTTP/1.1 requests).
 * Timeouts: `--idle-timeout` between requests; `--request-timeout` from the first byte of a request
 * to its last, for a TLS handshake from accept, and for writing a response from the last write that
 * made progress (a client that stops reading is closed, a slow one is not). */
#ifndef MOCKUPSTREAM_HTTP1_SERVER_H
#define MOCKUPSTREAM_HTTP1_SERVER_H

#include <ev.h>
#include <openssl/ssl.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "arrival.h"
#include "stats.h"
#include "strbuf.h"

struct worker;
struct http1_conn;

/* Connections whose deadlines all use the same timeout, oldest first, behind one libev timer. */
struct http1_timeout_list {
    struct http1_conn *head, *tail;
    uint64_t timeout_ns;
    ev_timer timer;
    struct http1_server *server;
};

struct http1_server {
    struct worker *worker;
    struct http1_timeout_list idle;    /* keep-alive connections between requests */
    struct http1_timeout_list request; /* connections reading a request or writing a response */
    char *scratch;                     /* read buffer shared by all connections of the worker */
    size_t scratch_size;
    /* the benchmark response, head and body, for keep-alive and for close; rebuilt every second */
    struct strbuf response_keep_alive, response_close;
    size_t response_head_bytes;   /* head length in both (they differ only in the Connection value) */
    size_t response_close_head_bytes;
    int response_body_inline;     /* body copied after the head (small bodies): one write() */
    time_t response_date;
    struct strbuf error_head;     /* scratch for non-benchmark response heads */
    uint64_t input_arrival_ns;    /* when the input being processed arrived (see arrival_recv) */
    struct arrival_reader arrivals;
    SSL_CTX *ssl_ctx;             /* the TLS listener's context; NULL without --tls-listen */
};

/* Sets up the server for `worker` (its loop, config and stats); `ssl_ctx` serves the TLS listener
 * (NULL without one). Returns 0 or -1 (out of memory). */
int http1_server_init(struct http1_server *server, struct worker *worker, SSL_CTX *ssl_ctx);

/* Serves an accepted connection (takes ownership of fd). A TLS connection whose ClientHello
 * offers h2 is handed to h2o unread; any other TLS connection is served here over OpenSSL. */
void http1_server_accept(struct http1_server *server, int fd, enum stats_listener kind);

/* Drain: closes idle keep-alive connections now; the others close after their current response. */
void http1_server_request_shutdown(struct http1_server *server);

#endif
